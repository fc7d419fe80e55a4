"""The report's sections after the epoch timings, each run at a size (``"full"``,
``"quick"``, ``"tiny"``): :data:`SECTIONS` maps a name to its title and to a function
``run(size, stream)`` that returns ``{"markdown", "summary", "rows"}``: the section's
Markdown, one or two lines for the report's one-screen summary, and its raw rows for
``results.json``. :class:`bench.runner.Runner` runs the sections a configuration names,
as cases of the same progress counter.
"""

from dataclasses import dataclass

from .formatting import fmt_ratio, fmt_time


@dataclass(frozen=True)
class Section:
    title: str
    run: object
    seconds: dict  # rough seconds per size on 2 cores, for the progress line's estimate


def _range(values):
    values = sorted(v for v in values if v == v)
    if not values:
        return "—"
    lo, hi = values[0], values[-1]
    return fmt_ratio(lo) if fmt_ratio(lo) == fmt_ratio(hi) else f"{fmt_ratio(lo)}–{fmt_ratio(hi)}"


def sparse(size, stream):
    from . import sparse_bench

    params = {"rows": 100_000, "nnz": 50, "d": 2**18, "scaling_d": (2**14, 2**18, 2**20), **sparse_bench.SIZES[size]}
    epoch_rows, lazy_rows = sparse_bench.run(**params, stream=stream)
    fast = [r for r in epoch_rows if r["method"].startswith("fastgd") and r["method"] != "fastgd numpy"]
    widest = max(r["d"] for r in lazy_rows) if lazy_rows else None
    summary = [
        f"Sparse input ({params['rows']:,} rows × 2^{params['d'].bit_length() - 1}, SGD batch 1): "
        + ", ".join(f"{r['method']} {fmt_time(r['epoch_s'])} per epoch, {fmt_ratio(r['vs_sklearn'])} faster than "
                    "scikit-learn" for r in fast)
        + (f"; the lazy update {_range(r['speedup'] for r in lazy_rows if r['d'] == widest)} faster than the "
           f"dense-velocity step at d = 2^{widest.bit_length() - 1}" if widest else "")
    ]
    markdown = sparse_bench.section(epoch_rows, lazy_rows, params["rows"], params["nnz"], params["d"])
    sizes = (f"{params['rows']:,} rows, ~{params['nnz']} non-zeros per row, d = 2^{params['d'].bit_length() - 1}; "
             f"the lazy update at d = {', '.join(f'2^{d.bit_length() - 1}' for d in params['scaling_d'])}")
    return {"markdown": markdown, "summary": summary, "sizes": sizes,
            "rows": {"epochs": epoch_rows, "lazy": lazy_rows}}


def fit(size, stream):
    from . import fit_bench

    setup, sgd, shuffles = fit_bench.run(size=size, stream=stream)
    worst = max(setup, key=lambda r: r["setup_s"] / r["epoch_s"])
    summary = [
        f"fit as a user calls it: set-up at most {100 * worst['setup_s'] / worst['epoch_s']:.0f} % of an epoch "
        f"(target ≤ {100 * fit_bench.SETUP_MAX:.0f} %; {worst['model']} batch {worst['batch']}, "
        f"{worst['n']}×{worst['d']}); SGD through fit {_range(r['sklearn_s'] / r['True']['seconds'] for r in sgd)} "
        f"faster than scikit-learn (uniform shuffle), {_range(r['sklearn_s'] / r['blocks']['seconds'] for r in sgd)} "
        "with the block shuffle"
    ]
    sizes = "; ".join(dict.fromkeys([f"{r['n']}×{r['d']}" for r in setup + sgd] + [r["problem"] for r in shuffles]))
    return {"markdown": fit_bench.section(setup, sgd, shuffles), "summary": summary, "sizes": sizes,
            "rows": {"setup": setup, "sgd": sgd, "shuffles": shuffles}}


def cv(size, stream):
    from . import cv_bench

    rows = cv_bench.run(size=size, stream=stream)
    summary = [
        f"Cross-validation, {v['problem']}: LogisticRegressionCV = {fmt_ratio(v['vs_one_fit'])} one fit "
        f"(target ≤ {cv_bench.ONE_FIT_MAX:g}×), {fmt_ratio(v['vs_grid_search'])} faster than GridSearchCV(fastgd), "
        f"{fmt_ratio(v['vs_sklearn_cv'])} than scikit-learn's LogisticRegressionCV; accuracy "
        f"{v['accuracy_gap']:.2f} points from scikit-learn's"
        for v in cv_bench.verdicts(rows)
    ]
    sizes = "; ".join(dict.fromkeys(r["problem"] for r in rows))
    return {"markdown": cv_bench.section(rows), "summary": summary, "sizes": sizes, "rows": rows}


def reliability(size, stream):
    from . import reliability_bench

    conc, mem = reliability_bench.run(stream=stream, **reliability_bench.SIZES[size])
    fine = [r for r in mem if "error" not in r]
    shares = ", ".join(f"{r['extra_fraction']:.0%}" for r in fine) or "—"
    summary = [
        f"Concurrency: two fits in two threads {_range(r['speedup'] for r in conc)} faster than one after the other "
        f"(2× = fully parallel), coefficients {'identical' if all(r['identical'] for r in conc) else '**not identical**'}"
        f"; peak memory of a fit beside X: {shares} of X"
        + (f" ({len(mem) - len(fine)} failed)" if len(fine) < len(mem) else "")
    ]
    sizes = "; ".join(dict.fromkeys([f"fits of {r['n']}×{r['d']}" for r in conc]
                                    + [f"X of {r['n']}×{r['d']} {r['dtype']}" for r in mem]))
    return {"markdown": reliability_bench.section(conc, mem), "summary": summary, "sizes": sizes,
            "rows": {"concurrency": conc, "memory": mem}}


def optimizers(size, stream):
    from . import optimizers_bench

    markdown = optimizers_bench.run(stream=stream)
    return {"markdown": markdown, "summary": ["Update rules: see the section"], "sizes": "200000 rows", "rows": {}}


SECTIONS = {
    "sparse": Section("Sparse input (CSR)", sparse, {"full": 40, "quick": 8, "tiny": 2}),
    "fit": Section("fit as a user calls it", fit, {"full": 90, "quick": 15, "tiny": 5}),
    "cv": Section("Choosing alpha by cross-validation", cv, {"full": 300, "quick": 20, "tiny": 5}),
    "reliability": Section("Concurrency and memory", reliability, {"full": 40, "quick": 12, "tiny": 5}),
    "optimizers": Section("Update rules", optimizers, {"full": 900, "quick": 900, "tiny": 900}),
}
