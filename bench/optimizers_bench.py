"""Update rules (``optimizer``, ``average``): time to accuracy against the usual tools,
and the sparse epoch time as the number of features grows.

``python -m bench.optimizers_bench [--rows N] [--no-scaling]`` prints the Markdown
section; ``python -m bench --optimizers`` appends it to the report. :data:`METHOD` says
how it measures.
"""

import argparse
import time
import warnings

import numpy as np

from .data import dense_problem, make_sparse
from .data import split as _split
from .methods import missing, vw_lines

SEED = 0
METHOD = """\
*Time to accuracy*: each method fits logistic regression on 80% of the rows with its
own defaults (scikit-learn's ``SGDClassifier(loss="log_loss")`` and
``LogisticRegression`` with lbfgs and saga, and lbfgs once more at the SGD tools' default
penalty ``alpha = 1e-4``, i.e. ``C = 1 / (1e-4 n)``: the accuracy of the optimum those
defaults aim at; fastgd's ``LogisticRegression`` with the
default ``optimizer`` and each other update rule; Vowpal Wabbit when it is installed)
and is scored on the other 20%. The target is lbfgs's test accuracy minus 0.2 points.
"fit" is the whole ``fit`` call, set-up included, one process, after a warm-up fit on
other rows (so compiled kernels are loaded, not compiled). For the epoch-wise methods,
"epochs to target" refits with ``max_iter = 1, 2, 3, 5`` epochs (``tol=None``) and
gives the first that reaches the target and its fit time. Sparse data: the text-like
generator of the sparse section (``bench.sparse_bench.make_sparse``: hashed features,
Zipf-like column frequencies, unit-norm rows). Dense data: standard normal features,
labels from a random linear score plus noise.

*Sparse epoch time against d*: seconds per epoch of fastgd (cython, batch 32) at
``d = 2**14`` and ``d = 2**20`` (same rows and non-zeros per row) for each update rule
and schedule (penalty as noted), from ``time_curve_`` after a warm-up fit. A ratio near
1 is an O(nnz) step; settings that take the dense O(d) step are timed on fewer rows and
their epoch time extrapolated to all rows ("extrapolated").
"""


def dense_data(n, d, seed=SEED):
    """``(X, y)``: :func:`bench.data.dense_problem`'s features and 0/1 labels."""
    X, _, y = dense_problem(n, d, seed)
    return X, y


def _timed(make, X, y, Xte, yte):
    est = make()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tic = time.perf_counter()
        est.fit(X, y)
        seconds = time.perf_counter() - tic
    return seconds, float(est.score(Xte, yte)), est


def _vw(X, y, Xte, yte):
    reason = missing("vowpalwabbit")
    if reason:
        return None, f"skipped: {reason}"
    from vowpalwabbit import Workspace

    train, test = vw_lines(X, y), vw_lines(Xte, yte)
    tic = time.perf_counter()
    vw = Workspace("--loss_function logistic --quiet -b 20")
    for line in train:
        vw.learn(line)
    seconds = time.perf_counter() - tic
    pred = np.array([vw.predict(line) for line in test])
    vw.finish()
    return (seconds, float(np.mean((pred > 0) == (yte > 0)))), ""


def race(X, y, sparse, stream=print):
    """Rows of the time-to-accuracy table for one problem."""
    from sklearn.linear_model import LogisticRegression as SkLR
    from sklearn.linear_model import SGDClassifier

    from fastgd import LogisticRegression

    Xtr, ytr, Xte, yte = _split(X, y)
    # warm-up: load the compiled kernels for every setting on a few rows
    for opt in ("sgd", "adagrad", "rmsprop", "adam"):
        for avg, pen in ((False, "l2"), (True, "l2"), (False, None)):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                LogisticRegression(optimizer=opt, average=avg, penalty=pen, max_iter=2).fit(Xtr[:2000], ytr[:2000])
    rows = []
    lbfgs_s, lbfgs_acc, _ = _timed(lambda: SkLR(max_iter=1000), Xtr, ytr, Xte, yte)
    target = lbfgs_acc - 0.002
    rows.append({"method": "scikit-learn LogisticRegression (lbfgs)", "fit_s": lbfgs_s, "accuracy": lbfgs_acc})
    stream(f"lbfgs {lbfgs_s:.2f} s accuracy {lbfgs_acc:.4f} (target {target:.4f})")
    n_train = Xtr.shape[0]
    methods = [
        # the optimum of the objective every SGD default here minimises (alpha = 1e-4,
        # scikit-learn SGDClassifier's and fastgd's default): what their accuracy can reach
        ("scikit-learn LogisticRegression (lbfgs), alpha=1e-4 as the SGD defaults",
         lambda **k: SkLR(C=1.0 / (1e-4 * n_train), max_iter=1000), False),
        ("scikit-learn LogisticRegression (saga)", lambda **k: SkLR(solver="saga", max_iter=1000), False),
        ("scikit-learn SGDClassifier", lambda **k: SGDClassifier(loss="log_loss", random_state=SEED, **k), True),
        ("scikit-learn SGDClassifier(average=True)",
         lambda **k: SGDClassifier(loss="log_loss", average=True, random_state=SEED, **k), True),
        ("fastgd LogisticRegression()", lambda **k: LogisticRegression(random_state=SEED, **k), True),
    ]
    if sparse:
        # the settings whose sparse step is lazy (O(nnz)); the others (Adam, the
        # adaptive rules with L2, average) take the dense O(d) step, seconds per epoch
        # at d = 2^18 (the epoch-time table below)
        for opt in ("adagrad", "rmsprop"):
            methods.append((f'fastgd optimizer="{opt}", penalty=None',
                            lambda o=opt, **k: LogisticRegression(optimizer=o, penalty=None, random_state=SEED,
                                                                  **k), True))
    else:
        for opt in ("adagrad", "rmsprop", "adam"):
            methods.append((f'fastgd optimizer="{opt}"',
                            lambda o=opt, **k: LogisticRegression(optimizer=o, random_state=SEED, **k), True))
        methods.append(('fastgd average=True',
                        lambda **k: LogisticRegression(average=True, random_state=SEED, **k), True))
    for name, make, epochwise in methods:
        seconds, acc, _ = _timed(make, Xtr, ytr, Xte, yte)
        row = {"method": name, "fit_s": seconds, "accuracy": acc}
        if epochwise:
            for k in (1, 2, 3, 5):
                kw = {"max_iter": k, "tol": None}
                s_k, acc_k, _ = _timed(lambda kw=kw, make=make: make(**kw), Xtr, ytr, Xte, yte)
                if acc_k >= target:
                    row["epochs_to_target"] = k
                    row["seconds_to_target"] = s_k
                    break
        rows.append(row)
        stream(f"{name}: {seconds:.2f} s accuracy {acc:.4f} "
               f"to target: {row.get('epochs_to_target', '-')} epochs {row.get('seconds_to_target', float('nan')):.2f} s")
    if sparse:
        vw, note = _vw(Xtr, ytr, Xte, yte)
        if vw is None:
            rows.append({"method": "Vowpal Wabbit, one pass", "note": note})
        else:
            rows.append({"method": "Vowpal Wabbit, one pass (learning from parsed text)", "fit_s": vw[0],
                         "accuracy": vw[1]})
        stream(f"Vowpal Wabbit: {vw if vw else note}")
    for r in rows:
        r["reached"] = r.get("accuracy", 0.0) >= target
    return rows, target


SCALING = [
    ("sgd", "auto", "l2"), ("sgd", "invscaling", "l2"), ("sgd", "optimal", "l2"),
    ("adagrad", "auto", None), ("adagrad", "invscaling", None), ("rmsprop", "auto", None),
    ("adagrad", "auto", "l2"), ("adam", "auto", None), ("sgd+average", "auto", "l2"),
]


def scaling(rows=100_000, nnz=50, ds=(2**14, 2**20), dense_rows=2000, stream=print):
    """Rows of the sparse epoch-time table: seconds per epoch at each d."""
    from fastgd import LogisticRegression
    from fastgd import DenseStepWarning

    out = []
    data = {d: make_sparse(rows, d, nnz) for d in ds}
    for opt, lr, pen in SCALING:
        row = {"optimizer": opt, "learning_rate": lr, "penalty": pen}
        for d in ds:
            X, y = data[d]
            params = {"optimizer": opt.split("+")[0], "average": opt.endswith("average"), "learning_rate": lr,
                          "penalty": pen, "backend": "cython", "batch_size": 32, "random_state": SEED, "tol": None}
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                LogisticRegression(max_iter=1, **params).fit(X[:dense_rows], y[:dense_rows])
            dense = any(issubclass(w.category, DenseStepWarning) for w in caught)
            n_fit = dense_rows if dense else rows
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                est = LogisticRegression(max_iter=2, **params).fit(X[:n_fit], y[:n_fit])
            per_epoch = est.time_curve_[-1] / 2 * rows / n_fit
            row[d] = per_epoch
            row[f"dense_{d}"] = dense
        row["ratio"] = row[ds[-1]] / row[ds[0]]
        out.append(row)
        stream(f"{opt} {lr} {pen}: " + ", ".join(f"d=2^{int(np.log2(d))} {row[d]:.3f} s" for d in ds)
               + f", ratio {row['ratio']:.2f}")
    return out, ds


def section(races, scale=None, ds=None):
    lines = ["", "## Update rules: time to accuracy", "", METHOD, ""]
    for title, (rows, target) in races.items():
        lines += [f"### {title} (target: test accuracy {target:.4f})", "",
                  "| method | fit (s) | test accuracy | reaches target | epochs to target | fit to target (s) |",
                  "|---|---:|---:|:---:|---:|---:|"]
        for r in rows:
            if "fit_s" not in r:
                lines.append(f"| {r['method']} | — | — | — | {r.get('note', '')} | |")
                continue
            epochs = r.get("epochs_to_target", "—")
            to_target = f"{r['seconds_to_target']:.2f}" if "seconds_to_target" in r else "—"
            lines.append(f"| {r['method']} | {r['fit_s']:.2f} | {r['accuracy']:.4f} | "
                         f"{'yes' if r['reached'] else 'no'} | {epochs} | {to_target} |")
        lines.append("")
    if scale:
        d0, d1 = ds
        lines += ["### Sparse epoch time against the number of features", "",
                  (f"| optimizer | learning_rate | penalty | d = 2^{int(np.log2(d0))} (s) | d = 2^{int(np.log2(d1))} (s) "
                  "| ratio |"), "|---|---|---|---:|---:|---:|"]
        for r in scale:
            note = " (dense step, extrapolated)" if r[f"dense_{d1}"] else ""
            lines.append(f"| {r['optimizer']} | {r['learning_rate']} | {r['penalty']} | {r[d0]:.3f} | "
                         f"{r[d1]:.3f}{note} | {r['ratio']:.2f} |")
        lines.append("")
    return "\n".join(lines)


def run(rows=200_000, dense_rows=200_000, with_scaling=True, stream=print):
    races = {}
    stream("sparse, text-like")
    X, y = make_sparse(rows, 2**18, 50)
    races[f"Sparse text-like, {rows} × 2^18, ~50 non-zeros per row"] = race(X, y, True, stream)
    stream("dense")
    X, y = dense_data(dense_rows, 100)
    races[f"Dense {dense_rows} × 100"] = race(X, y, False, stream)
    scale = ds = None
    if with_scaling:
        stream("sparse epoch time against d")
        scale, ds = scaling(stream=stream)
    return section(races, scale, ds)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m bench.optimizers_bench")
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--no-scaling", action="store_true")
    args = parser.parse_args(argv)
    print(run(rows=args.rows, dense_rows=args.rows, with_scaling=not args.no_scaling))


if __name__ == "__main__":
    main()
