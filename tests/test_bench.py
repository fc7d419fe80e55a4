"""The benchmark report machinery (bench/) on tiny sizes: every case runs, the report has
the expected rows and columns, and every number in it is finite. No timing is asserted."""

import io
import json
import math
import re

import numpy as np
import pytest

pytest.importorskip("matplotlib")

from bench import methods, report


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    log = io.StringIO()
    results, path = report.run(report.tiny_config(), out, stream=log)
    return results, path, log.getvalue()


def test_report_runs_every_case(tiny_run):
    results, _, log = tiny_run
    assert results.errors == []
    backends = results.meta["backends"]
    assert "numpy" in backends and backends[-1] == "numpy"
    # progress: "[ i/N] label" for every task, the last one "N/N"
    counts = re.findall(r"\[\s*(\d+)/(\d+)\]", log)
    assert counts and counts[-1][0] == counts[-1][1] == str(len(counts))
    cfg = results.config
    ((_, _, epochs),) = cfg["sizes"]
    for model in cfg["models"]:
        for batch in cfg["batches"]:
            dtypes = ("float64", "float32") if batch == "full" else ("float64",)
            for dtype in dtypes:
                rows = [r for r in results.epochs if (r["model"], r["batch"], r["dtype"]) == (model, batch, dtype)]
                expected = set(backends)
                if dtype == "float64":
                    expected.add(methods.SGD if batch == 1 else methods.MLP)
                assert {r["method"] for r in rows} == expected
                for r in rows:
                    assert r["seconds_per_epoch"] > 0 and math.isfinite(r["seconds_per_epoch"])
                    assert math.isfinite(r["objective"]) and math.isfinite(r["score"])
                    assert math.isfinite(r["floor_s"]) and r["floor_s"] > 0
                    assert r["epochs"] == epochs
                # every backend runs the same algorithm: same objective
                tol = 1e-4 if dtype == "float32" else 1e-9
                ref = next(r for r in rows if r["method"] == "numpy")["objective"]
                for r in rows:
                    if r["kind"] == "fastgd":
                        assert r["objective"] == pytest.approx(ref, rel=tol)


def test_report_file(tiny_run):
    results, path, log = tiny_run
    text = path.read_text()
    summary = text.split("## Summary", 1)[1].split("\n## ", 1)[0]
    table = [line for line in summary.splitlines() if line.startswith("|")]
    header = [c.strip() for c in table[0].strip("|").split("|")]
    backends = results.meta["backends"]
    assert header[:3] == ["model", "n×d", "batch"]
    assert header[3:3 + len(backends)] == backends
    assert "scikit-learn" in header
    compiled = [b for b in backends if b != "numpy"]
    assert [f"{b} vs numpy" for b in compiled] == [h for h in header if h.endswith("vs numpy")]
    body = [[c.strip() for c in line.strip("|").split("|")] for line in table[2:]]
    labels = [(row[0], row[2]) for row in body]
    assert labels == [
        (model, batch) for model in ("linear", "logistic") for batch in ("1", "32", "256", "full", "full f32")
    ]
    for row in body:
        for cell in row[3:3 + len(backends)]:
            # "<time> <unit> (<objective>)"
            m = re.fullmatch(r"([0-9.]+) (µs|ms|s) \(([-0-9.e+]+)\)", cell)
            assert m, cell
            assert float(m.group(1)) > 0 and np.isfinite(float(m.group(3)))
        ratios = row[-len(compiled) - 2:]
        if row[2].endswith("f32"):  # the peers run float64 only
            assert ratios[-2] == "—"
            del ratios[-2]
        for cell in ratios:
            assert re.fullmatch(r"[0-9.e+]+×", cell), cell
    for section in ("## Time to accuracy", "## Seconds per epoch, every run", "## Memory floor", "## Scaling with n", "## Plots"):
        assert section in text
    # the summary is printed too
    assert table[0] in log
    # plots exist and are linked
    for name in ("epoch_time_linear", "epoch_time_logistic", "speedup_over_numpy", "objective_vs_time", "accuracy_vs_time", "scaling"):
        png = path.parent / f"{name}.png"
        assert png.stat().st_size > 1000
        assert f"({name}.png)" in text
    raw = json.loads((path.parent / "results.json").read_text())
    assert len(raw["epochs"]) == len(results.epochs)


def test_time_to_accuracy_and_scaling(tiny_run):
    results, _, _ = tiny_run
    tta = results.tta
    assert 0.5 < tta["lbfgs"]["accuracy"] <= 1.0
    assert tta["target"] == pytest.approx(tta["lbfgs"]["accuracy"] - 0.002)
    for method in ("fastgd", "sklearn SGDClassifier"):
        search = tta["methods"][method]["search"]
        points = search["points"]
        assert [p["epochs"] for p in points] == list(range(1, len(points) + 1))
        if search["reached_epochs"] is not None:
            assert search["accuracy"] >= tta["target"]
            assert all(p["accuracy"] < tta["target"] for p in points[:-1])
        assert math.isfinite(tta["methods"][method]["default"]["wall_s"])
    exps = report.scaling_exponents(results)
    assert {m for m, _ in exps} == set(results.meta["backends"])
    assert all(math.isfinite(e) for e in exps.values())


def test_objective_matches_fastgd():
    """The report's objective is the estimators' own (default penalty)."""
    from bench.data import make_data

    for model in ("linear", "logistic"):
        X, y = make_data(model, 300, 4)
        est = methods.fastgd_estimator(model, max_iter=3).fit(X, y)
        ours = methods.objective(model, X, y, est.coef_, est.intercept_)
        assert ours == pytest.approx(est.objective(X, y), rel=1e-12)


def test_memory_floor_is_positive():
    from bench.measure import memory_floor

    X = np.ones((5000, 8))
    assert 0 < memory_floor(X, repeats=2) < 10


def test_dask_section_runs_and_full_batch_matches_in_memory():
    """``python -m bench --dask`` on tiny data: every row is there, and the full-batch fit on
    the cluster ends at the in-memory objective (speed is never shown without it)."""
    pytest.importorskip("distributed")
    from bench import dask_bench

    rows = dask_bench.run(rows=4000, chunk_rows=1000, epochs=2, stream=lambda line: None)
    where = [(r["mode"], r["where"]) for r in rows]
    assert len(where) == 7 and len(set(where)) == 7
    full = {r["where"]: r for r in rows if r["mode"] == "full batch"}
    dask_obj = full["Dask, 2 workers"]["final_objective"]
    assert dask_obj == pytest.approx(full["in memory, 1 thread"]["final_objective"], rel=1e-10)
    assert all(math.isfinite(r["epoch_s"]) and r["epoch_s"] > 0 for r in rows)
    assert "| full batch | Dask, 2 workers | 4,000 |" in dask_bench.table(rows)


def test_sparse_section_runs():
    """The sparse section on tiny data: every row is there and every number is finite;
    fastgd's compiled backends end at the same objective (same algorithm, same seed)."""
    from bench import sparse_bench

    epoch_rows, lazy_rows = sparse_bench.run(
        rows=600, nnz=8, d=512, scaling_d=(64, 512), epochs=2, numpy_rows=100, dense_rows=50,
        stream=lambda line: None,
    )
    methods_ = [r["method"] for r in epoch_rows]
    assert methods_[0] == "sklearn SGDClassifier" and "fastgd numba" in methods_ and "fastgd numpy" in methods_
    for r in epoch_rows:
        assert r["epoch_s"] > 0 and math.isfinite(r["vs_sklearn"])
    objs = [r["objective"] for r in epoch_rows if r["method"] in ("fastgd numba", "fastgd cython")]
    assert objs[0] == pytest.approx(objs[-1], rel=1e-10)
    assert {(r["backend"], r["d"]) for r in lazy_rows} >= {("numba", 64), ("numba", 512)}
    for r in lazy_rows:
        assert r["lazy_s"] > 0 and r["dense_s"] > 0 and 0 < r["nnz"] <= 8
    text = sparse_bench.section(epoch_rows, lazy_rows, 600, 8, 512)
    assert "| fastgd numba |" in text and "| numba | 512 |" in text


def test_sparse_bench_data():
    from bench import sparse_bench

    X, y = sparse_bench.make_sparse(500, 1000, 20)
    assert X.shape == (500, 1000) and X.has_canonical_format and X.indices.dtype == np.int32
    np.testing.assert_allclose(sparse_bench.row_norms(X), 1.0)
    assert 15 < X.nnz / 500 <= 20 and set(np.unique(y)) == {0, 1}
