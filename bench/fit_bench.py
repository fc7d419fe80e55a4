"""``fit`` as a user calls it: what its set-up costs next to an epoch, SGD through the
whole ``fit`` against scikit-learn's, and the block shuffle against the uniform one.

``python -m bench.fit_bench [--quick]`` prints the Markdown section; ``python -m bench``
appends it to the report (unless ``--no-fit``). :data:`METHOD` says how it measures.
"""

import argparse
import time
import warnings

import numpy as np

from .data import dense_problem, make_sparse, split
from .formatting import fmt_ratio, fmt_time, md_table

SEED = 0
SETUP_MAX = 0.10  # set-up <= 10 % of one epoch
SGD_MIN = {True: 4.0, "blocks": 8.0}  # fastgd epoch through fit, x faster than scikit-learn
SHUFFLES = (True, "blocks", False)
SHUFFLE_NAME = {True: "uniform (shuffle=True)", "blocks": 'blocks (shuffle="blocks")', False: "storage order (shuffle=False)"}

METHOD = """\
*Set-up*: each step ``fit`` takes before its first epoch, timed alone on the same data
(median of 5): parameter and input validation (X is not scanned for NaN here: the first
pass over it finds them), the step size of ``learning_rate="auto"`` (the pass over
the row norms where the batch is smaller than the data, the top eigenvalue of 10,000
sampled rows where it is larger than 1) and the first row order. "set-up, whole" is the
wall time of ``fit`` less its epochs (``time_curve_``) for a fit of 2 epochs,
``tol=None``, median of 5: everything outside the epochs, the commit of the fitted
attributes included. It is compared with one epoch (the mean of those fits' epochs).

*SGD through fit*: batch 1, momentum 0.9, default ``learning_rate="auto"``, 3 epochs,
``tol=None``; the wall time of the whole ``fit`` call divided by 3, median of 3 fits
after a warm-up fit on 2,000 rows. scikit-learn's ``SGDRegressor`` /
``SGDClassifier(loss="log_loss")`` with ``max_iter=3, tol=None``, the same way (median
of 2). The objective is fastgd's (``objective``) after the fit.

*Shuffles*: logistic regression with every default except ``shuffle`` and
``max_iter`` (batch 32), refitted with ``max_iter`` = 1, 2, 3 and 5 (``tol=None``) on
80 % of the rows and scored on the other 20 %: dense 200,000 x 100 in random order, the
same rows stored sorted by label (the case a block shuffle could get wrong), and
text-like sparse 200,000 x 2^18 (``bench.sparse_bench.make_sparse``).
"""


def _median_time(fn, repeats):
    times = []
    for _ in range(repeats):
        tic = time.perf_counter()
        fn()
        times.append(time.perf_counter() - tic)
    return float(np.median(times))


# ------------------------------------------------------------------ set-up
def setup_rows(n=200_000, d=100, batches=(1, 32, "full"), stream=print):
    from fastgd import LinearRegression, LogisticRegression
    from fastgd.benchmarking import setup_steps

    X, y_lin, y_bin = dense_problem(n, d)
    rows = []
    for model, cls, y in (("linear", LinearRegression, y_lin), ("logistic", LogisticRegression, y_bin)):
        for batch in batches:
            params = {"batch_size": batch, "max_iter": 2, "tol": None, "random_state": 0}
            cls(**params).fit(X[:2000], y[:2000])  # kernels loaded
            steps = setup_steps(cls(**params), X, y)
            if batch == "full":  # full batch reads X in storage order: no row order to draw
                steps["first row order"] = None
            steps = {name: _median_time(step, 5) if step else 0.0 for name, step in steps.items()}
            whole, epochs = [], []
            for _ in range(5):
                tic = time.perf_counter()
                fitted = cls(**params).fit(X, y)
                wall = time.perf_counter() - tic
                whole.append(wall - fitted.time_curve_[-1])
                epochs.append(fitted.time_curve_[-1] / len(fitted.time_curve_))
            row = {"model": model, "n": n, "d": d, "batch": batch, "steps": steps,
                   "setup_s": float(np.median(whole)), "epoch_s": float(np.median(epochs))}
            rows.append(row)
            stream(f"set-up {model} batch {batch}: {fmt_time(row['setup_s'])} against an epoch of {fmt_time(row['epoch_s'])}")
    return rows


# ------------------------------------------------------------------ SGD through fit
def sgd_rows(sizes=((200_000, 100), (1_000_000, 20)), epochs=3, stream=print):
    from sklearn.linear_model import SGDClassifier, SGDRegressor

    from fastgd import LinearRegression, LogisticRegression

    rows = []
    for n, d in sizes:
        X, y_lin, y_bin = dense_problem(n, d)
        for model, cls, peer, y in (("linear", LinearRegression, SGDRegressor, y_lin),
                                    ("logistic", LogisticRegression, SGDClassifier, y_bin)):
            peer_params = {"max_iter": epochs, "tol": None, "random_state": 0}
            if model == "logistic":
                peer_params["loss"] = "log_loss"
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                sk = _median_time(lambda peer=peer, X=X, y=y, p=peer_params: peer(**p).fit(X, y), 2) / epochs
            row = {"model": model, "n": n, "d": d, "sklearn_s": sk}
            for shuffle in (True, "blocks"):
                params = {"batch_size": 1, "max_iter": epochs, "tol": None, "random_state": 0, "shuffle": shuffle}
                cls(**params).fit(X[:2000], y[:2000])
                fitted = []
                seconds = _median_time(lambda cls=cls, X=X, y=y, p=params, out=fitted: out.append(cls(**p).fit(X, y)), 3) / epochs
                row[str(shuffle)] = {"seconds": seconds, "objective": float(fitted[-1].objective(X, y))}
            rows.append(row)
            stream(f"SGD through fit {model} {n}x{d}: scikit-learn {fmt_time(sk)}, uniform "
                   f"{fmt_time(row['True']['seconds'])}, blocks {fmt_time(row['blocks']['seconds'])} per epoch")
    return rows


# ------------------------------------------------------------------ shuffles
def shuffle_rows(n=200_000, d=100, sparse_d=2**18, ladder=(1, 2, 3, 5), stream=print):
    from fastgd import LogisticRegression

    X, _, y = dense_problem(n, d)
    Xtr, ytr, Xte, yte = split(X, y)
    by_label = np.argsort(ytr, kind="stable")
    Xs, ys = make_sparse(n, sparse_d, seed=SEED)
    problems = [
        (f"dense {n}×{d}", Xtr, ytr, Xte, yte),
        (f"dense {n}×{d}, stored sorted by label", np.ascontiguousarray(Xtr[by_label]), ytr[by_label], Xte, yte),
        (f"sparse {n}×2^{int(np.log2(sparse_d))}", *split(Xs, ys)),
    ]
    rows = []
    for name, Xa, ya, Xb, yb in problems:
        for shuffle in SHUFFLES:
            step = max(1, Xa.shape[0] // 2000)  # (a warm-up on rows of both labels)
            LogisticRegression(shuffle=shuffle, max_iter=1, tol=None, random_state=0).fit(Xa[::step], ya[::step])
            points = []
            for k in ladder:
                est = LogisticRegression(shuffle=shuffle, max_iter=k, tol=None, random_state=0)
                tic = time.perf_counter()
                est.fit(Xa, ya)
                wall = time.perf_counter() - tic
                points.append({"epochs": k, "fit_s": wall, "epoch_s": est.time_curve_[-1] / k,
                               "accuracy": float(est.score(Xb, yb))})
            rows.append({"problem": name, "shuffle": shuffle, "points": points})
            last = points[-1]
            stream(f"{name} {SHUFFLE_NAME[shuffle]}: {fmt_time(last['epoch_s'])} per epoch, accuracy "
                   f"{last['accuracy']:.4f} after {last['epochs']} epochs")
    return rows


# ------------------------------------------------------------------ report
def _verdict(ok):
    return "met" if ok else "**missed**"


def section(setup, sgd, shuffles):
    lines = ["", "## fit as a user calls it", "", METHOD.strip(), ""]
    if setup:
        lines += ["### Set-up against one epoch", ""]
        names = list(setup[0]["steps"])
        body = []
        for r in setup:
            ratio = r["setup_s"] / r["epoch_s"]
            body.append([r["model"], f"{r['n']}×{r['d']}", str(r["batch"])]
                        + [fmt_time(r["steps"][k]) for k in names]
                        + [fmt_time(r["setup_s"]), fmt_time(r["epoch_s"]), f"{100 * ratio:.0f} %",
                           _verdict(ratio <= SETUP_MAX)])
        lines += [*md_table(["model", "n×d", "batch", *names, "set-up, whole", "one epoch", "set-up ÷ epoch",
                            f"≤ {100 * SETUP_MAX:.0f} %"], body), ""]
    if sgd:
        lines += ["### SGD (batch 1) through fit, seconds per epoch", ""]
        body = []
        for r in sgd:
            cells = [r["model"], f"{r['n']}×{r['d']}", fmt_time(r["sklearn_s"])]
            for shuffle in (True, "blocks"):
                m = r[str(shuffle)]
                speed = r["sklearn_s"] / m["seconds"]
                cells += [f"{fmt_time(m['seconds'])} ({m['objective']:.5g})", fmt_ratio(speed),
                          f"{_verdict(speed >= SGD_MIN[shuffle])} (≥ {SGD_MIN[shuffle]:g}×)"]
            body.append(cells)
        lines += [*md_table(["model", "n×d", "scikit-learn SGD", "uniform (objective)", "vs scikit-learn", "target",
                            "blocks (objective)", "vs scikit-learn", "target"], body), ""]
    if shuffles:
        lines += ["### Uniform against block shuffle: epoch time and test accuracy", ""]
        ladder = [p["epochs"] for p in shuffles[0]["points"]]
        body = []
        for r in shuffles:
            body.append([r["problem"], SHUFFLE_NAME[r["shuffle"]], fmt_time(r["points"][-1]["epoch_s"])]
                        + [f"{p['accuracy']:.4f}" for p in r["points"]])
        lines += [*md_table(["data", "order", "time / epoch", *[f"accuracy, {k} ep." for k in ladder]], body), ""]
    return "\n".join(lines) + "\n"


# the section's sizes: "full" (the complete report), "quick" (python -m bench's default),
# "tiny" (seconds: --quick here, and the tests)
SIZES = {
    "full": ({}, {}, {}),
    "quick": ({"n": 50_000, "d": 50}, {"sizes": ((50_000, 50),)},
              {"n": 20_000, "d": 50, "sparse_d": 2**14, "ladder": (1, 2, 3)}),
    "tiny": ({"n": 20_000, "d": 20}, {"sizes": ((20_000, 20),)},
             {"n": 10_000, "d": 20, "sparse_d": 2**12, "ladder": (1, 2)}),
}


def run(quick=False, stream=print, size=None):
    """The three tables' rows at ``size`` (:data:`SIZES`; ``quick``: "tiny")."""
    setup, sgd, shuffles = SIZES[size or ("tiny" if quick else "full")]
    return (setup_rows(**setup, stream=stream), sgd_rows(**sgd, stream=stream),
            shuffle_rows(**shuffles, stream=stream))


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m bench.fit_bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small data (seconds), for a smoke run")
    args = parser.parse_args(argv)
    print(section(*run(quick=args.quick)))


if __name__ == "__main__":
    main()
