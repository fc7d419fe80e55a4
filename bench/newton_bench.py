"""Dense fits by ``optimizer="newton-sketch"`` (what "auto" picks on dense in-memory
rows) against the momentum-SGD recipe it replaced and against the solvers a user would
pick instead, on generators of several kinds.

``python -m bench.newton_bench [--scale F] [--problems KEYS] [--threads T]`` fits, on
each problem (80/20 split, whole ``fit`` calls timed after a warm-up on other rows):

* ``fastgd default``: ``LinearRegression()`` / ``LogisticRegression()`` as they are;
* ``fastgd sgd``: ``optimizer="sgd"`` (mini-batches of 32, ``alpha=1e-4``), the dense
  default before the Newton-type rule;
* ``fastgd newton-sketch`` where "auto" does not pick it (wide data: its diagonal
  preconditioner);
* scikit-learn: ``Ridge()`` for least squares; ``LogisticRegression()`` with lbfgs and
  with newton-cholesky (C=1: the penalty fastgd's default now has, ``alpha = 1/n``), and
  ``SGDClassifier(loss="log_loss")``.

It prints one Markdown table per problem: test R² or accuracy, seconds, and the passes
over X (fastgd: its epochs, each one pass; scikit-learn: its ``n_iter_``, iterations of
its own kind: lbfgs's take one or more passes each, newton-cholesky's one pass and a
``d × d`` factorisation).
"""

import argparse
import time
import warnings

import numpy as np

from .data import classification, multinomial_data, split
from .formatting import fmt_time, md_table
from .race_bench import thread_limit

SEED = 0


def _least_squares_unscaled(n, d=50, seed=1):
    """Columns on scales 1e-2 .. 1e2 with offsets, a linear target plus noise."""
    rng = np.random.default_rng(seed)
    scales = np.logspace(-2, 2, d)
    X = rng.standard_normal((n, d)) * scales + rng.uniform(-5, 5, d)
    y = X @ (rng.standard_normal(d) / scales) + 3.0 * rng.standard_normal(n)
    return X, y


def _least_squares_correlated(n, d=80, seed=2):
    """Columns from 10 latent factors plus a little noise (condition number ~1e4)."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 10)) @ rng.standard_normal((10, d)) + 0.05 * rng.standard_normal((n, d))
    y = X @ rng.standard_normal(d) + rng.standard_normal(n)
    return X, y


def _ill_conditioned(n, d=120, seed=3):
    """Binary labels on strongly correlated, unevenly scaled columns."""
    rng = np.random.default_rng(seed)
    scales = np.logspace(-1.5, 1.5, d)
    X = (rng.standard_normal((n, 10)) @ rng.standard_normal((10, d)) + 0.1 * rng.standard_normal((n, d))) * scales
    y = (X @ (rng.standard_normal(d) / scales) / 3 + rng.logistic(size=n) > 0).astype(np.int64)
    return X, y


def _noisy_binary(n, d=50, seed=4):
    """Gaussian columns, 30 % of the labels flipped."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    y = (X @ rng.standard_normal(d) > 0).astype(np.int64)
    flip = rng.random(n) < 0.3
    y[flip] = 1 - y[flip]
    return X, y


def _ordinal(n, d=30, seed=5):
    """Three ordered classes cut from one direction: nearly separable, large weights."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    score = X[:, 0] + X[:, 1] + 0.1 * rng.standard_normal(n)
    return X, np.digitize(score, [-1.0, 1.0]).astype(np.int64)


# key -> (title, "regression" or "classification", function of scale returning (X, y))
PROBLEMS = {
    "ls-unscaled": ("least squares, 500,000 × 50, unscaled columns with offsets", "regression",
                    lambda f: _least_squares_unscaled(int(500_000 * f))),
    "ls-corr": ("least squares, 300,000 × 80, correlated columns", "regression",
                lambda f: _least_squares_correlated(int(300_000 * f))),
    "binary": ("binary, make_classification 200,000 × 100", "classification",
               lambda f: classification(int(200_000 * f), 100, SEED)),
    "ill": ("binary, 200,000 × 120, correlated and scaled columns", "classification",
            lambda f: _ill_conditioned(int(200_000 * f))),
    "noisy": ("binary, 200,000 × 50, 30 % flipped labels", "classification",
              lambda f: _noisy_binary(int(200_000 * f))),
    "multi10": ("10-class multinomial, 200,000 × 100", "classification",
                lambda f: multinomial_data(int(200_000 * f), 100, 10)),
    "ordinal": ("3 ordered classes, nearly separable, 100,000 × 30", "classification",
                lambda f: _ordinal(int(100_000 * f))),
    "wide": ("wide binary, make_classification 40,000 × 2,000", "classification",
             lambda f: classification(int(40_000 * f), 2000, SEED)),
}


def methods(task, X, threads=1):
    """``[(name, factory)]`` for ``task`` on training rows ``X``; fastgd's ``n_jobs``
    is ``threads`` (threadpoolctl limits the others)."""
    import sklearn.linear_model as sk

    import fastgd
    from fastgd.benchmarking import penalty_strengths

    if task == "regression":
        out = [("fastgd default", lambda: fastgd.LinearRegression(random_state=SEED, n_jobs=threads)),
               ("fastgd sgd (the former default)", lambda: fastgd.LinearRegression(optimizer="sgd", random_state=SEED, n_jobs=threads))]
        if penalty_strengths(fastgd.LinearRegression(), X)[0] == 1e-4:
            out.append(("fastgd newton-sketch", lambda: fastgd.LinearRegression(optimizer="newton-sketch", n_jobs=threads)))
        out.append(("scikit-learn Ridge()", lambda: sk.Ridge()))
        return out
    out = [("fastgd default", lambda: fastgd.LogisticRegression(random_state=SEED, n_jobs=threads)),
           ("fastgd sgd (the former default)", lambda: fastgd.LogisticRegression(optimizer="sgd", random_state=SEED, n_jobs=threads))]
    if penalty_strengths(fastgd.LogisticRegression(), X)[0] == 1e-4:  # ("auto" did not pick it)
        out.append(("fastgd newton-sketch", lambda: fastgd.LogisticRegression(optimizer="newton-sketch", n_jobs=threads)))
    out += [
        ('scikit-learn LogisticRegression(solver="lbfgs")', lambda: sk.LogisticRegression(max_iter=1000)),
        ('scikit-learn LogisticRegression(solver="newton-cholesky")',
         lambda: sk.LogisticRegression(solver="newton-cholesky", max_iter=1000)),
        ('scikit-learn SGDClassifier(loss="log_loss")', lambda: sk.SGDClassifier(loss="log_loss", random_state=SEED)),
    ]
    return out


def _passes(est):
    n = getattr(est, "n_iter_", None)
    if n is None:
        return "1 (closed form)"
    n = int(np.max(n))
    return f"{n}" + (f" ({est.optimizer_})" if hasattr(est, "optimizer_") else "")


def run_problem(key, scale=1.0, threads=1, stream=print):
    title, task, make = PROBLEMS[key]
    X, y = make(scale)
    Xtr, ytr, Xte, yte = split(X, y)
    rows = []
    with thread_limit(threads), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name, factory in methods(task, Xtr, threads):
            factory().fit(Xte[:2000], yte[:2000])  # (warm-up: JIT, imports)
            tic = time.perf_counter()
            est = factory().fit(Xtr, ytr)
            seconds = time.perf_counter() - tic
            score = est.score(Xte, yte)
            rows.append([name, f"{score:.4f}", fmt_time(seconds), _passes(est)])
            stream(f"  {name}: {score:.4f} in {fmt_time(seconds)}, passes {rows[-1][3]}")
    head = ["method", "test R²" if task == "regression" else "test accuracy", "whole fit", "passes over X"]
    return "\n".join([f"### {title} ({threads} thread{'s' if threads > 1 else ''})", "", *md_table(head, rows)])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=float, default=1.0, help="rows × this (default 1)")
    parser.add_argument("--problems", default=",".join(PROBLEMS), help="comma-separated subset of " + ", ".join(PROBLEMS))
    parser.add_argument("--threads", type=int, default=1, help="threads for every method (default 1)")
    args = parser.parse_args(argv)
    tables = []
    for key in args.problems.split(","):
        print(PROBLEMS[key][0])
        tables.append(run_problem(key, args.scale, args.threads))
    print()
    print("\n\n".join(tables))


if __name__ == "__main__":
    main()
