"""``python -m bench.cv_bench [--quick]``: choosing ``alpha`` by cross-validation, every
model of the grid in one pass (``fastgd.LogisticRegressionCV``) against the ways a user
would do it otherwise.

On each problem (dense 200,000×100 logistic; sparse text-like CSR, 50,000×2^18), with the grid of 10
alphas × 5 folds that ``LogisticRegressionCV(alphas=10, cv=5)`` computes from the
training rows, whole fits are timed as a user calls them (validation and set-up
included):

- fastgd ``LogisticRegressionCV`` (50 models and the refit of the best);
- one default ``fastgd.LogisticRegression()`` fit (what the CV fit is measured against);
- ``GridSearchCV(fastgd.LogisticRegression(), {"alpha": grid}, cv=5)``;
- scikit-learn's ``LogisticRegressionCV`` (lbfgs) with ``Cs = 1 / (alpha n_train)``,
  the same penalty on scikit-learn's scale (its objective is ``C`` times the summed loss
  plus ``||w||^2 / 2``; ``n_train`` the rows a fold trains on);
- ``GridSearchCV(SGDClassifier(loss="log_loss"), {"alpha": grid}, cv=5)``.

Each method runs once (they take seconds to minutes; the ratios are far from 1) and
reports the alpha it chose and that model's accuracy on a held-out 20 % of the rows.
Targets: the CV fit at most 3× one fit's time, at least 10× faster than the fastgd grid
search and than scikit-learn's ``LogisticRegressionCV``, and the chosen model's test
accuracy within 0.2 points of scikit-learn's.
"""

import argparse
import time
import warnings

import numpy as np

from .data import Problem, make_problem
from .formatting import fmt_ratio, fmt_time, md_table

SEED = 0
N_ALPHAS = 10
FOLDS = 5
ONE_FIT_MAX = 3.0  # the CV fit ÷ one fit
FASTER_MIN = 10.0  # the fastgd grid search ÷ the CV fit, and scikit-learn's CV ÷ the CV fit
ACCURACY_POINTS = 0.2  # |accuracy - scikit-learn's| in points


# (dense n, dense d, sparse n, sparse d) of each size: "full" (the complete report),
# "quick" (python -m bench's default), "tiny" (seconds: --quick here, and the tests)
SIZES = {"full": (200_000, 100, 50_000, 2**18), "quick": (10_000, 20, 1_000, 2**12), "tiny": (2_000, 10, 2_000, 2**9)}


def problems(quick=False, size=None):
    """``[(name, X_train, y_train, X_test, y_test)]`` at ``size`` (``quick``: "tiny")."""
    dense_n, dense_d, sparse_n, sparse_d = SIZES[size or ("tiny" if quick else "full")]
    return [(f"dense {dense_n}×{dense_d}", *make_problem(Problem("dense", "dense", dense_n, dense_d))),
            (f"sparse {sparse_n}×2^{int(np.log2(sparse_d))}, 50 nnz/row",
             *make_problem(Problem("sparse", "sparse", sparse_n, sparse_d, nnz=50)))]


def _timed(fn):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tic = time.perf_counter()
        out = fn()
        return out, time.perf_counter() - tic


def methods(Xtr, ytr, alphas):
    """``{name: fit()}`` for the methods of the comparison on ``alphas``."""
    from sklearn.linear_model import LogisticRegressionCV as SkLogisticRegressionCV
    from sklearn.linear_model import SGDClassifier
    from sklearn.model_selection import GridSearchCV, StratifiedKFold

    import fastgd

    folds = StratifiedKFold(FOLDS)
    n_train = Xtr.shape[0] * (FOLDS - 1) / FOLDS
    return {
        "fastgd LogisticRegressionCV": lambda: fastgd.LogisticRegressionCV(
            alphas=alphas, cv=folds, random_state=SEED).fit(Xtr, ytr),
        "fastgd LogisticRegression() (one fit)": lambda: fastgd.LogisticRegression(random_state=SEED).fit(Xtr, ytr),
        "GridSearchCV(fastgd LogisticRegression)": lambda: GridSearchCV(
            fastgd.LogisticRegression(random_state=SEED), {"alpha": list(alphas)}, cv=folds).fit(Xtr, ytr),
        "scikit-learn LogisticRegressionCV (lbfgs)": lambda: SkLogisticRegressionCV(
            Cs=list(1.0 / (alphas * n_train)), cv=folds).fit(Xtr, ytr),
        "GridSearchCV(SGDClassifier)": lambda: GridSearchCV(
            SGDClassifier(loss="log_loss", random_state=SEED), {"alpha": list(alphas)}, cv=folds).fit(Xtr, ytr),
    }


def _chosen_alpha(name, fitted, n_train):
    if name.startswith("fastgd LogisticRegressionCV"):
        return fitted.alpha_
    if name.startswith("scikit-learn"):
        return float(1.0 / (fitted.C_[0] * n_train))
    if name.startswith("GridSearchCV"):
        return fitted.best_params_["alpha"]
    return fitted.alpha_


def run(quick=False, stream=print, size=None):
    """One row per problem × method: seconds, chosen alpha, test accuracy (:data:`SIZES`)."""
    import fastgd
    from fastgd.benchmarking import alpha_grid

    rows = []
    for problem, Xtr, ytr, Xte, yte in problems(quick, size):
        # the grid LogisticRegressionCV(alphas=10) computes (the set-up of every method's grid)
        alphas = alpha_grid(fastgd.LogisticRegression(), Xtr, ytr, N_ALPHAS)
        # warm-up: the kernels' first call in this process (not a user's first fit)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fastgd.LogisticRegressionCV(alphas=alphas[:2], cv=2, max_iter=2).fit(Xtr[:500], ytr[:500])
        n_train = Xtr.shape[0] * (FOLDS - 1) / FOLDS
        for name, fit in methods(Xtr, ytr, alphas).items():
            fitted, seconds = _timed(fit)
            accuracy = float(np.mean(fitted.predict(Xte) == yte))
            row = {"problem": problem, "method": name, "seconds": seconds,
                   "alpha": float(_chosen_alpha(name, fitted, n_train)), "accuracy": accuracy}
            if name.startswith("fastgd LogisticRegressionCV"):
                row["epochs"] = float(np.mean(fitted.n_iter_))
                row["refit_epochs"] = int(fitted.best_estimator_.n_iter_)
            rows.append(row)
            stream(f"{problem}: {name} {seconds:.2f} s, alpha {row['alpha']:.3g}, accuracy {accuracy:.4f}")
    return rows


def verdicts(rows):
    """Per problem: the three time targets and the accuracy target, from the rows."""
    out = []
    for problem in dict.fromkeys(r["problem"] for r in rows):
        by = {r["method"]: r for r in rows if r["problem"] == problem}
        cv = by["fastgd LogisticRegressionCV"]
        one = by["fastgd LogisticRegression() (one fit)"]
        grid = by["GridSearchCV(fastgd LogisticRegression)"]
        sk = by["scikit-learn LogisticRegressionCV (lbfgs)"]
        out.append({
            "problem": problem,
            "vs_one_fit": cv["seconds"] / one["seconds"],
            "vs_grid_search": grid["seconds"] / cv["seconds"],
            "vs_sklearn_cv": sk["seconds"] / cv["seconds"],
            "accuracy_gap": 100 * abs(cv["accuracy"] - sk["accuracy"]),
        })
    return out


def _met(ok):
    return "met" if ok else "**missed**"


def section(rows):
    lines = ["", "## Choosing alpha by cross-validation: 10 alphas × 5 folds", "", __doc__.split("\n\n", 1)[1].strip(),
             "", *md_table(["data", "method", "wall time", "chosen alpha", "test accuracy", "epochs (mean, refit)"],
                           [[r["problem"], r["method"], fmt_time(r["seconds"]), f"{r['alpha']:.3g}",
                             f"{r['accuracy']:.4f}",
                             f"{r['epochs']:.1f}, {r['refit_epochs']}" if "epochs" in r else ""] for r in rows]),
             "", "### Targets", ""]
    body = []
    for v in verdicts(rows):
        body += [
            [v["problem"], "CV fit ÷ one fit", fmt_ratio(v["vs_one_fit"]), f"≤ {ONE_FIT_MAX:g}×",
             _met(v["vs_one_fit"] <= ONE_FIT_MAX)],
            [v["problem"], "GridSearchCV(fastgd) ÷ CV fit", fmt_ratio(v["vs_grid_search"]), f"≥ {FASTER_MIN:g}×",
             _met(v["vs_grid_search"] >= FASTER_MIN)],
            [v["problem"], "scikit-learn LogisticRegressionCV ÷ CV fit", fmt_ratio(v["vs_sklearn_cv"]),
             f"≥ {FASTER_MIN:g}×", _met(v["vs_sklearn_cv"] >= FASTER_MIN)],
            [v["problem"], "test accuracy, difference to scikit-learn's", f"{v['accuracy_gap']:.2f} points",
             f"≤ {ACCURACY_POINTS:g}", _met(v["accuracy_gap"] <= ACCURACY_POINTS)],
        ]
    lines += [*md_table(["data", "ratio", "measured", "target", "verdict"], body), ""]
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m bench.cv_bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small data (seconds), for a smoke run")
    args = parser.parse_args(argv)
    print(section(run(quick=args.quick)))


if __name__ == "__main__":
    main()
