"""Sparse (CSR) input: epoch times on text-like data, and the lazy momentum update
against a dense-velocity step as the number of features grows.

``python -m bench.sparse_bench [--rows N] [--nnz K]`` prints the two Markdown tables;
:func:`run` returns their rows (dicts) for the report (``python -m bench`` appends them).
:data:`METHOD` says how it measures.
"""

import argparse
import math
import time
import warnings

from .data import make_sparse, row_norms  # noqa: F401 (the section's data, also used from here)
from .methods import ALPHA, MOMENTUM, SEED, log_objective

METHOD = """\
Data: ``rows`` rows of ``d`` hashed features with about ``nnz`` non-zeros per row; the
columns of each row are drawn from a Zipf-like law (column of rank r has probability
proportional to 1 / (r + 10), ranks scattered over the ``d`` columns by a fixed random
permutation), the values are positive (TF-IDF-like) and each row has unit norm; labels
are the sign of a random linear score plus noise. Float64, CSR with int32 indices (as
scikit-learn's vectorizers make them). Every method runs logistic regression with the
L2 penalty ``alpha = 1e-4`` on the training rows in a new random order each epoch.

*Epoch time*: fastgd SGD (batch 1, momentum 0.9, ``learning_rate="auto"``), epoch
seconds from ``time_curve_`` (the mean of the timed epochs after one warm-up fit);
scikit-learn ``SGDClassifier(loss="log_loss")`` (per sample, no momentum, its default
"optimal" step), by difference of a fit of 3 epochs and a fit of 1 epoch. The NumPy
reference takes the dense O(d) step and calls scipy per batch: it is timed on the
first ``numpy_rows`` rows and its epoch time is extrapolated linearly in the rows
("extrapolated" in the table). The objective is the training objective after the timed
fit (``objective``; fastgd's definition), so speed is not shown without accuracy.

*Lazy vs dense velocity*: one epoch of the same sparse kernel with the lazy update
(``lazy=True``, the default) and with the dense step forced (``lazy=False``: every
coordinate's velocity and weight move at every step, as in the NumPy reference), batch
1, momentum 0.9, constant step. The dense step at large ``d`` would take minutes per
epoch, so it is timed on the first ``dense_rows`` rows; the table gives microseconds per
step, and the epoch time at ``rows`` rows implied by it.
"""


def objective(X, y, coef, intercept, alpha=ALPHA):
    """Mean logistic loss + alpha / 2 ||w||^2, in float64 (:func:`bench.methods.log_objective`)."""
    return log_objective(X, y, coef, intercept, alpha)


def _fastgd(backend, X, y, epochs):
    from fastgd import LogisticRegression

    def fit(k):
        return LogisticRegression(
            backend=backend, batch_size=1, momentum=MOMENTUM, alpha=ALPHA, max_iter=k, tol=None, random_state=SEED
        ).fit(X, y)

    fit(1)  # warm-up (loads the compiled kernels)
    est = fit(epochs)
    return est.time_curve_[-1] / epochs, objective(X, y, est.coef_, est.intercept_)


def _sklearn(X, y, epochs):
    from sklearn.linear_model import SGDClassifier

    def fit(k):
        est = SGDClassifier(loss="log_loss", alpha=ALPHA, max_iter=k, tol=None, random_state=SEED)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tic = time.perf_counter()
            est.fit(X, y)
        return est, time.perf_counter() - tic

    _, one = fit(1)
    _, one_b = fit(1)
    est, k = fit(epochs)
    per_epoch = (k - min(one, one_b)) / (epochs - 1)
    note = ""
    if not per_epoch > 0:  # set-up noise larger than the epochs: the upper bound instead
        per_epoch = k / epochs
        note = "set-up included (the difference was not positive)"
    return per_epoch, objective(X, y, est.coef_, est.intercept_), note


def _kernel_epoch(backend, X, y, lazy):
    """Seconds of one sparse-kernel epoch over all rows of X (batch 1, momentum 0.9,
    constant step, L2): the estimator's set-up, then the kernel call alone is timed."""
    from fastgd import LogisticRegression
    from fastgd.benchmarking import epoch_runner

    est = LogisticRegression(backend=backend, batch_size=1, momentum=MOMENTUM, alpha=ALPHA,
                             learning_rate="constant", eta0=0.1, random_state=SEED)
    run = epoch_runner(est, X, y)
    order = run.permutation()
    tic = time.perf_counter()
    run.kernel_epoch(order, lazy=lazy)
    return time.perf_counter() - tic


# the section's sizes: "full" (the complete report), "quick" (python -m bench's default:
# fewer rows, and the estimators' default backend only, so no kernel is compiled for it),
# "tiny" (seconds, the tests)
SIZES = {
    "full": {},
    "quick": {"rows": 20_000, "scaling_d": (2**14, 2**20), "backends": "default"},
    "tiny": {"rows": 600, "nnz": 8, "d": 512, "scaling_d": (64, 512), "epochs": 2, "numpy_rows": 100,
             "dense_rows": 50},
}


def run(rows=100_000, nnz=50, d=2**18, scaling_d=(2**14, 2**18, 2**20), epochs=3, numpy_rows=1000,
        dense_rows=300, stream=print, backends=("numba", "cython")):
    """Both tables' rows: ``(epoch_rows, lazy_rows)``; ``backends``: the compiled backends
    timed ("default": the estimators' default one), those that import."""
    from fastgd.benchmarking import backend_error, default_backend

    if backends == "default":
        backends = (default_backend(),)
    backends = [b for b in backends if b != "numpy" and backend_error(b, sparse=True) is None]
    # warm the kernels on tiny data (numba loads or compiles; nothing here is timed)
    Xw, yw = make_sparse(200, 64, 5)
    for b in backends:
        _kernel_epoch(b, Xw, yw, True)
        _kernel_epoch(b, Xw, yw, False)
    stream(f"sparse: making {rows:,} x {d:,} with ~{nnz} non-zeros per row")
    X, y = make_sparse(rows, d, nnz)
    epoch_rows = []
    sk_s, sk_obj, note = _sklearn(X, y, epochs)
    epoch_rows.append({"method": "sklearn SGDClassifier", "epoch_s": sk_s, "objective": sk_obj, "note": note})
    stream(f"  sklearn SGDClassifier: {sk_s:.4f} s / epoch")
    for b in backends:
        sec, obj = _fastgd(b, X, y, epochs)
        epoch_rows.append({"method": f"fastgd {b}", "epoch_s": sec, "objective": obj, "note": ""})
        stream(f"  fastgd {b}: {sec:.4f} s / epoch")
    m = min(numpy_rows, rows)
    sec, obj = _fastgd("numpy", X[:m], y[:m], 1)
    epoch_rows.append({"method": "fastgd numpy", "epoch_s": sec * rows / m, "objective": math.nan,
                       "note": f"extrapolated from {m:,} rows"})
    stream(f"  fastgd numpy: {sec * rows / m:.4f} s / epoch (extrapolated)")
    for r in epoch_rows:
        r["vs_sklearn"] = sk_s / r["epoch_s"]
    X_d, y_d = X, y
    lazy_rows = []
    for dd in scaling_d:
        if dd != d:
            X, y = make_sparse(rows, dd, nnz)
        for b in backends:
            lazy_s = _kernel_epoch(b, X, y, True)
            m = min(dense_rows, rows)
            dense_part = _kernel_epoch(b, X[:m], y[:m], False)
            dense_s = dense_part * rows / m
            lazy_rows.append({
                "backend": b, "d": dd, "nnz": X.nnz / rows, "lazy_us": 1e6 * lazy_s / rows, "lazy_s": lazy_s,
                "dense_us": 1e6 * dense_part / m, "dense_s": dense_s, "speedup": dense_s / lazy_s,
            })
            stream(f"  d={dd:,} {b}: lazy {lazy_s:.4f} s / epoch, dense velocity {dense_s:.2f} s / epoch (extrapolated)")
        X, y = X_d, y_d
    return epoch_rows, lazy_rows


def tables(epoch_rows, lazy_rows):
    """The two Markdown tables."""
    a = [
        "| method | s / epoch | × faster than sklearn | objective | note |",
        "|---|---:|---:|---:|---|",
    ]
    for r in epoch_rows:
        obj = "—" if math.isnan(r["objective"]) else f"{r['objective']:.6g}"
        a.append(f"| {r['method']} | {r['epoch_s']:.4f} | {r['vs_sklearn']:.2f}× | {obj} | {r['note']} |")
    b = [
        (
            "| backend | d | nnz / row | lazy µs / step | lazy s / epoch | dense-velocity µs / step | "
            "dense-velocity s / epoch (extrapolated) | lazy speed-up |"
        ),
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in lazy_rows:
        b.append(
            f"| {r['backend']} | {r['d']:,} | {r['nnz']:.1f} | {r['lazy_us']:.3f} | {r['lazy_s']:.4f} | "
            f"{r['dense_us']:.1f} | {r['dense_s']:.2f} | {r['speedup']:.0f}× |"
        )
    return "\n".join(a), "\n".join(b)


def section(epoch_rows, lazy_rows, rows, nnz, d):
    a, b = tables(epoch_rows, lazy_rows)
    return (
        f"\n## Sparse input: {rows:,} rows, ~{nnz} non-zeros per row\n\n"
        + METHOD.strip()
        + f"\n\n### Epoch time, SGD, d = {d:,}\n\n" + a
        + "\n\n### Lazy vs dense velocity as d grows\n\n" + b + "\n"
    )


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m bench.sparse_bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--nnz", type=int, default=50)
    args = parser.parse_args(argv)
    epoch_rows, lazy_rows = run(rows=args.rows, nnz=args.nnz)
    print(section(epoch_rows, lazy_rows, args.rows, args.nnz, 2**18))


if __name__ == "__main__":
    main()
