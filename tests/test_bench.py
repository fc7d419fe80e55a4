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
from bench.config import tiny_config
from bench.render import scaling_exponents
from bench.runner import Results
from bench.targets import evaluate_targets, targets_lines


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    log = io.StringIO()
    results, path = report.run(tiny_config(), out, stream=log)
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
                    if methods.TORCH in results.meta["peers"]:  # torch installed
                        expected.add(methods.TORCH)
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
    exps = scaling_exponents(results)
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


def test_dask_average_simulation_is_the_averaged_mode():
    """The simulated 1-16 worker curves run the averaged mode's own rounds: with one
    worker they are the accuracies of the Dask fit (local scheduler: one worker) after
    each epoch, and the tables and the plot are made from them."""
    dask = pytest.importorskip("dask")
    da = pytest.importorskip("dask.array")
    from bench import dask_bench
    from fastgd import LogisticRegression

    n, d, batch = 3200, 5, 16
    curves = dask_bench.simulate_workers(rows=n, features=d, epochs=2, batch=batch, workers=(1, 4), test_rows=1000)
    X, y = dask_bench._logistic_data(np.random, n, d, None, dask_bench.SEED)
    X_test, y_test = dask_bench._logistic_data(np.random, 1000, d, None, dask_bench.SEED + 1)
    with dask.config.set(scheduler="synchronous"):
        Xd, yd = da.from_array(X, chunks=(n // 16, -1)), da.from_array(y, chunks=n // 16)
        for epochs in (1, 2):
            model = LogisticRegression(batch_size=batch, max_iter=epochs, tol=None, random_state=dask_bench.SEED)
            accuracy = float(np.mean(model.fit(Xd, yd).predict(X_test) == y_test))
            assert curves[1, None][epochs - 1] == accuracy
    assert set(curves) == {(1, None), (4, None), ("in memory", None)}
    assert all(0.6 < a <= 1.0 for curve in curves.values() for a in curve)
    assert "| 4 | per epoch |" in dask_bench.simulation_table(curves)


# ------------------------------------------------------------------ performance targets
def test_targets_section_and_threads_rows(tiny_run):
    results, path, log = tiny_run
    text = path.read_text()
    # the targets section comes right after the summary
    after_summary = text.split("## Summary", 1)[1].split("\n## ", 1)[1]
    assert after_summary.startswith("Performance targets")
    section = after_summary.split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| ") and not line.startswith("| #")]
    assert {int(line.split("|")[1]) for line in rows} == set(range(1, 11))
    verdicts = {line.split("|")[6].strip().strip("*") for line in rows}
    assert verdicts <= {"met", "missed", "partial", "not measured", "not applicable", "info"}
    # stored in results.json, the same rows as the report
    raw = json.loads((path.parent / "results.json").read_text())
    assert [t["target"] for t in raw["targets"]] == [t["target"] for t in results.targets]
    assert len(raw["targets"]) == len(rows)
    assert "- Performance targets: " in log  # their verdicts counted in the one-screen summary
    # threads: n_jobs=1 rows for every model and compiled backend (2+ cores)
    compiled = [b for b in results.meta["backends"] if b != "numpy"]
    if results.meta["machine"]["cores"] > 1:
        got = {(r["model"], r["method"]) for r in results.threads}
        assert got == {(m, b) for m in results.config["models"] for b in compiled}
        for r in results.threads:
            assert r["n_jobs"] == 1 and r["batch"] == "full" and r["dtype"] == "float64"
            assert r["seconds_per_epoch"] > 0
            every = next(e for e in results.epochs if (e["model"], e["method"], e["batch"], e["dtype"]) == (r["model"], r["method"], "full", "float64"))
            assert r["objective"] == pytest.approx(every["objective"], rel=1e-9)  # same fit, one thread
        assert "## Threads" in text
        t3 = [t for t in results.targets if t["target"] == 3]
        # the tiny sizes are none of the targets' (200000x100, 1000000x20)
        assert [t["verdict"] for t in t3] == ["not measured"] and "target sizes" in t3[0]["note"]
    else:
        assert results.threads == []


def _hand_made(good=True, cores=2, sizes=((200_000, 100, 5), (1_000_000, 20, 5)), scaling_n=(10**4, 10**5, 10**6, 10**7)):
    """A Results with known numbers at the target sizes (linear model only): ``good`` meets
    every target, otherwise each one misses."""
    res = Results(
        config={"name": "hand", "sizes": list(sizes), "models": ["linear"], "float32_full": True, "scaling_d": 20},
        meta={"backends": ["numba", "cython", "numpy"], "default_backend": "numba", "machine": {"cores": cores}},
    )

    def add(rows, n, d, batch, dtype, method, seconds):
        rows.append({"model": "linear", "n": n, "d": d, "batch": batch, "dtype": dtype, "method": method, "seconds_per_epoch": seconds})

    for n, d, _ in sizes:
        res.floor.append({"n": n, "d": d, "dtype": "float64", "seconds": 1.0, "bytes": n * d * 8})
        # (numba, cython) seconds per epoch
        full = (1.2, 1.1) if good else (1.5, 2.0)  # / floor 1.3; cython vs numba 1.25
        f32 = (0.6, 0.55) if good else (1.0, 1.5)  # / float64 0.6
        one_thread = (2.0, 1.9) if good else (2.0, 3.0)  # / all cores 1.6
        batch1 = (10.0, 9.0) if good else (20.0, 30.0)  # SGD 50: 4x
        batch32 = (10.0, 10.0) if good else (10.0, 15.0)  # numpy below: 10x at 1e6 x 20, 3x at 2e5 x 100
        for i, b in enumerate(("numba", "cython")):
            add(res.epochs, n, d, "full", "float64", b, full[i])
            add(res.epochs, n, d, "full", "float32", b, f32[i])
            add(res.threads, n, d, "full", "float64", b, one_thread[i])
            add(res.epochs, n, d, 1, "float64", b, batch1[i])
            add(res.epochs, n, d, 32, "float64", b, batch32[i])
        add(res.epochs, n, d, 1, "float64", methods.SGD, 50.0)
        add(res.epochs, n, d, 32, "float64", "numpy", (120.0 if good else 20.0))
    res.tta = {
        "n_train": 200_000, "n_test": 50_000, "d": 100, "target": 0.87,
        "lbfgs": {"wall_s": 3.0, "accuracy": 0.872, "epochs": 40},
        "methods": {"fastgd": {
            "default": {"wall_s": 1.0, "accuracy": 0.871, "epochs": 4},
            "search": {"reached_epochs": 2, "wall_s": 0.5 if good else 1.0, "accuracy": 0.871, "points": []},
        }},
    }
    warm = {"import_fastgd_s": 0.01, "import_s": 0.4, "first_fit_s": 0.3} if good else {"import_fastgd_s": 0.5, "import_s": 0.4, "first_fit_s": 0.9}
    res.cold_start = [{"backend": "numba", "cache": "cold", "import_fastgd_s": 0.01, "import_s": 0.4,
                       "first_fit_s": 0.05 if good else 9.0},
                      {"backend": "numba", "cache": "warm", **warm}]
    per_row = (1.0, 1.1, 0.9, 1.0) if good else (1.0, 1.0, 1.0, 2.0)
    for n, p in zip(scaling_n, per_row):
        res.scaling.append({"n": n, "d": 20, "method": "numba", "batch": 32, "seconds_per_epoch": p * 1e-7 * n})
    # the race: fastgd 0.5 s against the fastest peer's 2 s (good), or 3 s and not reached (bad)
    verdicts = [
        {"target": 0.86, "fastgd_s": 0.5 if good else 3.0, "fastest_peer": "saga", "fastest_peer_s": 2.0,
         "ratio": 0.25 if good else 1.5, "met": good, "best_peer": "lbfgs", "best_peer_accuracy": 0.862},
        {"target": 0.66, "fastgd_s": 0.1 if good else None, "fastest_peer": "VW", "fastest_peer_s": 0.6,
         "ratio": 0.1 / 0.6 if good else None, "met": good, "best_peer": "VW", "best_peer_accuracy": 0.662},
    ]
    res.race = {"scale": 1.0, "d_scale": 1.0, "problems": [{"label": f"problem {i}", "verdict": v} for i, v in enumerate(verdicts)]}
    return res


def _verdicts(targets):
    return {t["target"]: {x["verdict"] for x in targets if x["target"] == t["target"] and x["verdict"] != "info"} for t in targets}


def test_targets_met_on_hand_made_numbers():
    targets = evaluate_targets(_hand_made(good=True))
    assert _verdicts(targets) == {k: {"met"} for k in range(1, 11)}
    t1 = next(t for t in targets if t["target"] == 1 and t["case"] == "linear 200000×100 numba")
    assert t1["value"] == pytest.approx(1.2) and "1.2× floor" in t1["measured"]
    t6 = [t for t in targets if t["target"] == 6]
    assert t6[0]["value"] == pytest.approx(6.0) and t6[1]["verdict"] == "info" and t6[1]["value"] == pytest.approx(3.0)
    t8 = [t for t in targets if t["target"] == 8]
    assert [t["value"] for t in t8] == [pytest.approx(0.01), pytest.approx(0.7), pytest.approx(0.05)]
    assert t8[2]["case"] == "numba (default), empty JIT cache: first fit beyond the imports"
    lines = targets_lines(_hand_made(good=True))
    assert any("| 5 |" in line and "12× faster than numpy" in line for line in lines)


def test_targets_missed_on_hand_made_numbers():
    targets = evaluate_targets(_hand_made(good=False))
    assert _verdicts(targets) == {k: {"missed"} for k in range(1, 11)}
    t7 = [t for t in targets if t["target"] == 7 and t["case"].startswith("full f64 (")]
    assert t7[0]["value"] == pytest.approx(2.0 / 1.5) and "misses:" in t7[0]["note"]
    t5 = {t["case"]: t["value"] for t in targets if t["target"] == 5}
    assert t5 == pytest.approx({"linear 200000×100 numba": 2.0, "linear 200000×100 cython": 20 / 15,
                                "linear 1000000×20 numba": 2.0, "linear 1000000×20 cython": 20 / 15})
    assert any("**missed**" in line for line in targets_lines(_hand_made(good=False)))


def test_targets_partial_not_measured_and_not_applicable():
    res = _hand_made(good=True, cores=1, sizes=((200_000, 100, 5),), scaling_n=(25_000, 50_000, 100_000, 200_000))
    res.cold_start = []
    targets = evaluate_targets(res)
    by = _verdicts(targets)
    assert by[3] == {"not applicable"}
    assert by[9] == {"partial"}
    assert by[8] == {"not measured"}
    big = [t for t in targets if t["target"] in (1, 5) and t["case"] == "1000000×20"]
    assert [t["verdict"] for t in big] == ["not measured", "not measured"]
    assert all("--full" in t["note"] for t in big)
    # the race at another size is shown but not judged
    res.tta["n_train"] = 1000
    assert {t["verdict"] for t in evaluate_targets(res) if t["target"] == 6} == {"not measured", "info"}
    # the headline race at another scale: its ratios shown, not judged; no race: not measured
    res.race["scale"] = 0.01
    t10 = [t for t in evaluate_targets(res) if t["target"] == 10]
    assert [t["verdict"] for t in t10] == ["not measured", "not measured"]
    assert t10[0]["value"] == pytest.approx(0.25) and "scale 0.01" in t10[0]["note"]
    res.race = {}
    t10 = [t for t in evaluate_targets(res) if t["target"] == 10]
    assert [t["verdict"] for t in t10] == ["not measured"] and "no race" in t10[0]["note"]


def test_cold_start_script_reports_bare_import():
    import subprocess
    import sys

    from bench.measure import REPO

    done = subprocess.run([sys.executable, "-m", "bench._coldstart", "numpy"], cwd=REPO, capture_output=True, text=True, timeout=300, check=True)
    timings = json.loads(done.stdout.strip().splitlines()[-1])
    assert 0 < timings["import_fastgd_s"] <= timings["import_s"]
    assert timings["first_fit_s"] > 0 and timings["other_fits_s"] > 0


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


def test_reliability_section_runs():
    """The concurrency and memory section on tiny data: concurrent fits equal sequential
    ones bit for bit, and the child process measures a peak above its baseline that is
    below the size of X plus a fixed amount (no copy of X)."""
    from bench import reliability_bench

    conc, mem = reliability_bench.run(
        stream=lambda line: None, n=3000,
        memory_cases=[(200_000, 50, "float64", "numba", 1)], concurrency_cases=[("numba", 1), ("cython", "full")],
    )
    assert [r["identical"] for r in conc] == [True, True]
    for r in conc:
        assert r["sequential_s"] > 0 and r["concurrent_s"] > 0
    (m,) = mem
    assert "error" not in m, m
    assert m["finite"] and m["x_bytes"] == 200_000 * 50 * 8
    assert 0 < m["extra"] < 0.5 * m["x_bytes"]
    text = reliability_bench.section(conc, mem)
    assert "| numba | 1 | 3000×50 |" in text and "| 200000×50 | float64 | numba | 1 | 80 |" in text


def test_optimizers_section_runs():
    """The update-rule section on tiny data: every method has a finite time and an
    accuracy in [0, 1], the target is lbfgs's accuracy minus 0.2 points, and the epoch
    time table flags the settings that take the dense step."""
    from bench import optimizers_bench
    from bench.sparse_bench import make_sparse

    X, y = make_sparse(1500, 2048, 10)
    rows, target = optimizers_bench.race(X, y, True, stream=lambda line: None)
    assert rows[0]["method"].endswith("(lbfgs)")
    assert target == pytest.approx(rows[0]["accuracy"] - 0.002)
    names = [r["method"] for r in rows]
    assert "fastgd LogisticRegression()" in names and 'fastgd optimizer="adagrad", penalty=None' in names
    for r in rows:
        if "fit_s" in r:
            assert r["fit_s"] > 0 and 0.0 <= r["accuracy"] <= 1.0
            assert r["reached"] == (r["accuracy"] >= target)
    scale, ds = optimizers_bench.scaling(rows=600, nnz=8, ds=(256, 4096), dense_rows=100, stream=lambda line: None)
    by = {(r["optimizer"], r["learning_rate"], r["penalty"]): r for r in scale}
    assert not by[("adagrad", "auto", None)]["dense_4096"]
    assert by[("adam", "auto", None)]["dense_4096"] and by[("sgd+average", "auto", "l2")]["dense_4096"]
    text = optimizers_bench.section({"tiny": (rows, target)}, scale, ds)
    assert "| fastgd LogisticRegression() |" in text and "d = 2^12 (s)" in text


def test_fit_section_runs_on_small_data():
    """The fit section's three tables from a quick run: every set-up step timed, the
    verdicts computed from the ratios, every shuffle and problem present."""
    from bench import fit_bench

    setup, sgd, shuffles = fit_bench.run(quick=True, stream=lambda line: None)
    assert len(setup) == 6 and len(sgd) == 2 and len(shuffles) == 9
    for r in setup:
        assert set(r["steps"]) == {"validation", "step size", "first row order"}
        assert all(v >= 0 and math.isfinite(v) for v in r["steps"].values())
        assert r["setup_s"] > 0 and r["epoch_s"] > 0
    for r in sgd:
        assert r["sklearn_s"] > 0
        for key in ("True", "blocks"):
            assert r[key]["seconds"] > 0 and 0 < r[key]["objective"] < 1.0
    for r in shuffles:
        assert [p["epochs"] for p in r["points"]] == [1, 2]
        assert all(0.5 < p["accuracy"] <= 1.0 for p in r["points"])
    text = fit_bench.section(setup, sgd, shuffles)
    assert "### Set-up against one epoch" in text and 'blocks (shuffle="blocks")' in text
    ratio = setup[0]["setup_s"] / setup[0]["epoch_s"]
    row = next(line for line in text.splitlines() if line.startswith("| linear | 20000×20 | 1 |"))
    assert row.endswith("| met |" if ratio <= fit_bench.SETUP_MAX else "| **missed** |")


# ------------------------------------------------------------------- the headline race
def test_race_is_the_headline(tiny_run):
    """The race ran on every problem with real numbers: accuracies above chance, positive
    times, the target and every time to target computed from the fits, target 10 from the
    verdicts, its table first in the report (right after the machine block) and its plot
    written and linked."""
    from bench import race_bench

    results, path, log = tiny_run
    race = results.race
    assert [res["problem"]["key"] for res in race["problems"]] == [p.key for p in race_bench.PROBLEMS]
    assert race["wall_s"] > 0 and race["cap_s"] == results.config["race_cap_s"] and race["threads"] == 1
    for res in race["problems"]:
        rows = res["rows"]
        assert rows[0]["method"] == race_bench.FASTGD and rows[0]["kind"] == "fastgd"
        ran = [r for r in rows if "skipped" not in r]
        assert {r["method"] for r in ran} >= {race_bench.FASTGD, 'scikit-learn LogisticRegression(solver="lbfgs")',
                                               'scikit-learn SGDClassifier(loss="log_loss")'}
        binary = res["problem"]["classes"] == 2
        for r in ran:
            assert r["points"] and r["spent_s"] > 0 and math.isfinite(r["fit"]["objective"]) and r["fit"]["objective"] > 0
            for p in r["points"]:
                assert p["wall_s"] > 0 and 0.0 <= p["accuracy"] <= 1.0 and p["iterations"] >= 1
            if r["method"].startswith(("fastgd", "scikit-learn")):
                # the real estimators learn something (PyTorch's few Adam steps on tiny data may not)
                assert (0.5 if binary else 1.0 / res["problem"]["classes"]) < r["fit"]["accuracy"] <= 1.0
                assert not r["over_cap"] and sum(p["default"] for p in r["points"]) == 1
        for r in rows:
            if "skipped" in r:
                assert r["skipped"]  # the reason is given
        v = res["verdict"]
        peers = [r for r in ran if r["kind"] == "peer"]
        assert v["target"] == pytest.approx(max(r["fit"]["accuracy"] for r in peers) - 0.002)
        for r in ran:
            hits = [p["wall_s"] for p in r["points"] if p["accuracy"] >= v["target"]]
            assert r["time_to_target_s"] == (min(hits) if hits else None)
        assert v["fastest_peer_s"] == min(r["time_to_target_s"] for r in peers if r["time_to_target_s"] is not None)
        if v["fastgd_s"] is not None:
            assert v["ratio"] == pytest.approx(v["fastgd_s"] / v["fastest_peer_s"]) and v["met"] == (v["ratio"] < 1)
    # target 10: one row per problem, its value the verdict's ratio; not judged at this scale
    t10 = [t for t in results.targets if t["target"] == 10]
    assert [t["case"] for t in t10] == [res["label"] for res in race["problems"]]
    for t, res in zip(t10, race["problems"]):
        assert t["verdict"] == "not measured" and "scale 0.01" in t["note"]
        ratio = res["verdict"]["ratio"]
        assert t["value"] == (pytest.approx(ratio) if ratio is not None else None)
    # the report: the race right after the machine block, before the summary, with its plot
    text = path.read_text()
    head, rest = text.split("\n## ", 1)
    assert "Machine:" in head and rest.startswith("Time-to-accuracy race")
    race_part = rest.split("\n## Summary", 1)[0]
    assert "| problem | target (best peer − 0.2 points) |" in race_part
    for res in race["problems"]:
        assert f"### {res['label']}" in race_part
    assert f"]({race_bench.PNG})" in race_part and f"({race_bench.PNG})" not in text.split("## Plots", 1)[1]
    assert (path.parent / race_bench.PNG).stat().st_size > 10_000
    raw = json.loads((path.parent / "results.json").read_text())
    assert len(raw["race"]["problems"]) == len(race_bench.PROBLEMS) and "_runner" not in raw["race"]["problems"][0]["rows"][0]
    assert "Time-to-accuracy race" in log  # the headline is printed too


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_race_objective_is_fastgds():
    """The race's objective is fastgd's own ``objective`` (default penalty) for binary,
    multinomial and sparse fits."""
    from bench import race_bench
    from bench.data import make_sparse, multinomial_data
    from fastgd import LogisticRegression

    rng = np.random.default_rng(0)
    Xm, ym = multinomial_data(600, 6, 4)
    Xs, ys = make_sparse(400, 256, 8)
    for X, y in ((rng.standard_normal((500, 5)), rng.integers(0, 2, 500)), (Xm, ym), (Xs, ys)):
        _, l2, l1 = race_bench.fastgd_penalty(X)
        est = LogisticRegression(max_iter=3, random_state=0).fit(X, y)
        assert l2 + l1 == est.alpha_
        ours = race_bench.objective(X, y, est.coef_, est.intercept_, l2, l1)
        assert ours == pytest.approx(est.objective(X, y), rel=1e-10)
        assert race_bench.accuracy(X, y, est.coef_, est.intercept_) == pytest.approx(est.score(X, y))


def test_race_ladder_caps_and_prunes():
    """A method that cannot finish its default fit within the cap is over cap (its last
    fit kept), the capped fit never runs more than the cap affords, and a peer's ladder
    stops once its next fit would take over PRUNE x the fastest peer's time."""
    from bench import race_bench

    def fake(per, setup=0.0, stops_at=None):
        def fit(data, k):
            iterations = min(k, stops_at or k)
            return {"wall_s": setup + per * iterations, "accuracy": 0.5 + 0.4 * (1 - 0.5 ** iterations),
                    "iterations": iterations, "coef": np.zeros((1, 2)), "intercept": np.zeros(1)}
        return fit

    X, y = np.zeros((4, 2)), np.array([0, 1, 0, 1])
    data = (X, y, X, y)
    slow = race_bench.Method("slow", "peer", fake(1.0), race_bench._doubling(1000), 1000)
    row = race_bench.whole_fit(slow, data, 10.0, 1e-4)
    assert row["over_cap"] and not any(p["default"] for p in row["points"])
    assert row["spent_s"] <= 10.0 and row["fit"]["max_iter"] == max(p["max_iter"] for p in row["points"])
    quick = race_bench.Method("quick", "peer", fake(0.01, 0.01, stops_at=20), race_bench._doubling(100), 100)
    row = race_bench.whole_fit(quick, data, 10.0, 1e-4)
    assert not row["over_cap"] and row["fit"]["iterations"] == 20 and row["fit"]["default"]
    target = 0.5 + 0.4 * (1 - 0.5 ** 6)  # reached at 6 iterations: the rung of 8, then halving 4 ... 8
    race_bench.ladder(row, target)
    assert race_bench.time_to_target(row, target) == pytest.approx(0.01 + 0.01 * 6)
    assert [p["max_iter"] for p in row["points"]] == [1, 2, 4, 5, 6, 8, 100]
    # the same method, pruned: the fastest peer reached the target in 0.02 s
    row = race_bench.whole_fit(quick, data, 10.0, 1e-4)
    race_bench.ladder(row, target, fastest_peer_s=0.02)
    assert "pruned_s" in row and [p["max_iter"] for p in row["points"]] == [1, 2, 100]


def test_race_bench_runs_alone(tmp_path, capsys):
    """``python -m bench.race_bench --scale F --problems ...`` prints the section and writes
    race.json and the plot."""
    from bench import race_bench

    race_bench.main(["--scale", "0.002", "--problems", "dense", "--cap", "2", "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert "## Time-to-accuracy race" in out and "### dense n ≫ d: 400 × 100" in out
    raw = json.loads((tmp_path / "race.json").read_text())
    assert [res["problem"]["key"] for res in raw["problems"]] == ["dense"] and raw["cap_s"] == 2
    assert (tmp_path / race_bench.PNG).stat().st_size > 10_000


def test_race_skips_missing_tools_with_the_reason(monkeypatch):
    """Vowpal Wabbit and PyTorch are optional: without them their rows say why."""
    from bench import race_bench

    monkeypatch.setattr(race_bench, "vw_reason", lambda: "skipped: vowpalwabbit is not installed (test)")
    monkeypatch.setattr(race_bench, "torch_reason", lambda: "skipped: torch is not installed (test)")
    sparse = next(p for p in race_bench.problems(0.01, 0.05) if p.sparse)
    by = {m.name: m for m in race_bench.methods_for(sparse)}
    assert by["Vowpal Wabbit (--loss_function logistic)"].skipped.endswith("(test)")
    assert by[f"PyTorch Adam, batch {race_bench.TORCH_BATCH}"].skipped.endswith("(test)")
    assert "Hessian" in by['scikit-learn LogisticRegression(solver="newton-cholesky")'].skipped
    assert not by[race_bench.FASTGD].skipped


def test_cv_section_runs_on_small_data():
    """The cross-validation section from a quick run: every method on both problems,
    real accuracies and times, the verdicts computed from the ratios."""
    from bench import cv_bench

    rows = cv_bench.run(quick=True, stream=lambda line: None)
    assert len(rows) == 10
    assert {r["method"] for r in rows} == set(cv_bench.methods(np.zeros((10, 2)), np.arange(10) % 2, np.ones(2)))
    for r in rows:
        assert r["seconds"] > 0 and 0.6 < r["accuracy"] <= 1.0 and r["alpha"] > 0
    cv = next(r for r in rows if r["method"] == "fastgd LogisticRegressionCV")
    assert 1 <= cv["epochs"] <= 100 and cv["refit_epochs"] >= 1
    text = cv_bench.section(rows)
    for v in cv_bench.verdicts(rows):
        line = next(x for x in text.splitlines() if x.startswith(f"| {v['problem']} | CV fit ÷ one fit |"))
        assert line.endswith("| met |" if v["vs_one_fit"] <= cv_bench.ONE_FIT_MAX else "| **missed** |")


# ------------------------------------------------------------- the main job and its summary
def test_report_says_its_sizes_and_summarises_on_one_screen(tiny_run):
    """The report and the terminal name the mode and the sizes run, say how to get the
    complete report, and summarise every part in a few lines (the one-screen summary)."""
    results, path, log = tiny_run
    text = path.read_text()
    glance = text.split("## At a glance", 1)[1].split("\n## ", 1)[0]
    assert "Mode **tiny**" in glance and "python -m bench --full" in glance
    assert "400×5 (2 epochs)" in glance and "scale 0.01 of its rows" in glance
    bullets = [line for line in glance.splitlines() if line.startswith("- ")]
    assert any(line.startswith("- Performance targets: ") for line in bullets)
    assert len(glance.splitlines()) < 40
    # the glance comes right after the race's headline and plot, before the race's details
    assert text.index("## Time-to-accuracy race") < text.index("## At a glance") < text.index("## The race in detail")
    assert "Mode **tiny**" in log
    # progress: after every case, how many are done and about how long is left
    left = re.findall(r"\[\s*(\d+)/(\d+) done, \d+ s so far, about (?:\d+ min )?\d+ s left\]", log)
    assert len(left) == int(left[-1][1]) and left[-1][0] == left[-1][1]


def test_sections_summarise_themselves():
    """A section run through :mod:`bench.sections` at tiny size gives its Markdown, its
    summary line (with the numbers of its rows) and its rows."""
    from bench import sections

    done = sections.SECTIONS["sparse"].run("tiny", lambda line: None)
    epochs = done["rows"]["epochs"]
    assert "## Sparse input" in done["markdown"]
    (line,) = done["summary"]
    for r in epochs:
        if r["method"].startswith("fastgd") and r["method"] != "fastgd numpy":
            assert f"{r['method']} " in line and f"{r['vs_sklearn']:.3g}× faster" in line


def test_bench_uses_only_the_public_api_and_the_hook():
    """bench/ reaches below fastgd's public names only through ``fastgd.benchmarking``."""
    import pathlib

    root = pathlib.Path(__file__).resolve().parents[1] / "bench"
    private = re.compile(r"(?:from|import)\s+fastgd\._|from\s+fastgd\s+import\s+_|\b(?:est|estimator|fitted)\._[a-z]")
    hits = [f"{p.name}: {m.group()}" for p in root.glob("*.py") for m in private.finditer(p.read_text())]
    assert hits == []
    import fastgd.benchmarking as hook

    assert set(hook.backend_names()) == {"cython", "numba", "numpy"} and hook.backend_error("numpy") is None


def _saved_run(path, number, benchmarks):
    """A pytest-benchmark saved run with ``benchmarks``: ``(name, group, median, final_loss)``."""
    data = {"machine_info": {}, "commit_info": {}, "datetime": "2026-12-07T00:00:00", "version": "5.1.0",
            "benchmarks": [{"group": group, "name": name, "fullname": f"bench/bench_epochs.py::{name}",
                            "extra_info": {"final_loss": loss},
                            "stats": {"median": median, "min": median / 2, "mean": median, "max": median * 2}}
                           for name, group, median, loss in benchmarks]}
    path.mkdir(parents=True, exist_ok=True)
    out = path / f"{number:04d}_abc{number}_20261207_000000.json"
    out.write_text(json.dumps(data))
    return out


def test_compare_prints_the_ratios_of_two_saved_runs(tmp_path, capsys):
    from bench import compare
    from bench.__main__ import main

    store = tmp_path / ".benchmarks" / "Linux-CPython-3.11-64bit"
    a = _saved_run(store, 1, [("test_a", "g1", 2.0, 0.5), ("test_b", "g1", 4.0, 0.25), ("test_c", "g2", 1.0, 0.1),
                              ("test_gone", "g2", 1.0, None)])
    b = _saved_run(store, 2, [("test_a", "g1", 1.0, 0.5), ("test_b", "g1", 8.0, 0.25), ("test_c", "g2", 3.0, 0.1),
                              ("test_new", "g2", 1.0, None)])
    rows = compare.ratios(compare.load(a), compare.load(b))
    assert [(r["group"], r["ratio"]) for r in rows] == [("g1", 0.5), ("g1", 2.0), ("g2", 3.0)]
    assert rows[0]["a_loss"] == rows[0]["b_loss"] == 0.5
    summary = compare.summary(rows)
    assert [s[:2] for s in summary] == [("all", 3), ("g1", 2), ("g2", 1)]
    assert summary[0][2] == pytest.approx(2.0) and summary[0][3] == pytest.approx(3.0 ** (1 / 3))
    assert summary[1][2] == pytest.approx(1.25) and summary[1][3] == pytest.approx(1.0)
    assert compare.ratios(compare.load(a), compare.load(b), "min")[0]["a_s"] == 1.0
    # runs named by number (as pytest-benchmark numbers them), by a part of the name, or by path
    assert compare.resolve("1", tmp_path / ".benchmarks") == a
    assert compare.resolve("0002", tmp_path / ".benchmarks") == b
    assert compare.resolve("abc2", tmp_path / ".benchmarks") == b
    with pytest.raises(ValueError, match="several"):
        compare.resolve("abc", tmp_path / ".benchmarks")
    with pytest.raises(FileNotFoundError):
        compare.resolve("7", tmp_path / ".benchmarks")
    assert main(["compare", "1", str(b), "--storage", str(tmp_path / ".benchmarks")]) == 0
    out = capsys.readouterr().out
    assert "| test_a | g1 | 2 s | 1 s | 0.500 | 0.5 | 0.5 |" in out
    assert "| all | 3 | 2.000 | 1.442 |" in out and "| g1 | 2 | 1.250 | 1.000 |" in out
    assert "only in A (1): test_gone" in out and "only in B (1): test_new" in out
