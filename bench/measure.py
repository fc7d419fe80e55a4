"""Measurements other than seconds per epoch: the memory floor, time to accuracy and
cold start."""

import json
import math
import os
import pathlib
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from fastgd.benchmarking import n_threads

from .data import classification
from .methods import SEED, timed_fit

REPO = pathlib.Path(__file__).resolve().parents[1]


def n_cores():
    """Cores this process may run on: the threads fastgd's estimators use by default
    (``n_jobs=None``)."""
    return n_threads(None)


# ------------------------------------------------------------------------ memory floor
def memory_floor(X, repeats=7, threads=None):
    """Seconds for one streaming read of ``X`` with every core: X's rows are cut into one
    contiguous block per thread and each thread sums its block with NumPy (whose
    reductions release the GIL, so the threads run in parallel). The fastest of
    ``repeats``. An epoch reads all of X at least once, so this is its lower bound."""
    threads = threads or n_cores()
    bounds = np.linspace(0, X.shape[0], threads + 1).astype(np.int64)
    blocks = [X[bounds[k]:bounds[k + 1]] for k in range(threads)]
    best = math.inf
    with ThreadPoolExecutor(max_workers=threads) as pool:
        for _ in range(repeats):
            tic = time.perf_counter()
            total = sum(pool.map(lambda block: float(block.sum()), blocks))
            best = min(best, time.perf_counter() - tic)
    if not np.isfinite(total):  # the sum is only there to be used
        raise FloatingPointError("non-finite data in the memory-floor read")
    return best


# ---------------------------------------------------------------------- time to accuracy
def classification_split(n_train, n_test, d, seed=1):
    """Train/test data for the time-to-accuracy race: :func:`bench.data.classification`
    (``make_classification`` with ``d // 5`` informative and ``d // 10`` redundant
    features); the last ``n_test`` rows are the test set (the generator shuffles the
    rows)."""
    X, y = classification(n_train + n_test, d, seed)
    return X[:n_train], y[:n_train], X[n_train:], y[n_train:]


def _epochs_of(est):
    n_iter = getattr(est, "n_iter_", None)
    return int(np.max(n_iter)) if n_iter is not None else None


def _fit_and_score(est, X, y, X_test, y_test):
    """Fit ``est``: wall-clock seconds of the fit, test accuracy, epochs (iterations)."""
    wall = timed_fit(est, X, y)
    return {"wall_s": wall, "accuracy": float(est.score(X_test, y_test)), "epochs": _epochs_of(est)}


def tta_reference(X, y, X_test, y_test):
    """scikit-learn ``LogisticRegression()`` (lbfgs, all defaults): wall-clock seconds of
    its fit, test accuracy, iterations."""
    from sklearn.linear_model import LogisticRegression

    return _fit_and_score(LogisticRegression(), X, y, X_test, y_test)


TTA_METHODS = ("fastgd", "sklearn SGDClassifier")


def _tta_estimator(method, max_iter=None):
    """``method`` with its default parameters (and a fixed seed), and ``max_iter`` if
    given. Its first ``max_iter`` epochs are those of the all-default fit: the stopping
    rule (``tol``) stays on, since it also drives the step-size schedule (fastgd's "auto"
    shrinks its step when the objective stalls)."""
    limit = {} if max_iter is None else {"max_iter": max_iter}
    if method == "fastgd":
        from fastgd import LogisticRegression

        return LogisticRegression(random_state=SEED, **limit)
    if method == "sklearn SGDClassifier":
        from sklearn.linear_model import SGDClassifier

        return SGDClassifier(random_state=SEED, **limit)
    raise ValueError(method)


def tta_search(method, X, y, X_test, y_test, target, k_max=20, cap_s=60.0):
    """Wall-clock seconds until ``method`` (default parameters) reaches test accuracy
    ``target``: fits from scratch with ``max_iter = 1, 2, 3, ...``, everything else at
    its default, each timed whole (input validation, set-up and epochs); the first whose
    test accuracy is at least ``target`` gives the answer. Stops unreached after
    ``k_max`` epochs, ``cap_s`` seconds of fitting, or when a fit stops before
    ``max_iter`` (its stopping rule fired: more epochs give the same model). Returns the
    reached epoch count (or None), its wall-clock seconds, and every point tried."""
    points = []
    spent = 0.0
    for k in range(1, k_max + 1):
        fit = _fit_and_score(_tta_estimator(method, k), X, y, X_test, y_test)
        spent += fit["wall_s"]
        points.append({"epochs": k, "wall_s": fit["wall_s"], "accuracy": fit["accuracy"]})
        if fit["accuracy"] >= target:
            return {"reached_epochs": k, "wall_s": fit["wall_s"], "accuracy": fit["accuracy"], "points": points}
        if spent >= cap_s or fit["epochs"] < k:
            break
    best = max(points, key=lambda p: p["accuracy"])
    return {"reached_epochs": None, "wall_s": math.nan, "accuracy": best["accuracy"], "points": points}


def tta_default(method, X, y, X_test, y_test):
    """``method`` with all defaults (its own stopping rule): wall-clock, accuracy, epochs."""
    return _fit_and_score(_tta_estimator(method), X, y, X_test, y_test)


# --------------------------------------------------------------------------- cold start
def cold_start(backend, cache_dir, timeout=600):
    """Run ``bench._coldstart`` for ``backend`` in a fresh interpreter with
    ``NUMBA_CACHE_DIR=cache_dir`` and return its timings (see that module) plus
    ``process_s``, the subprocess's whole wall-clock (interpreter start included)."""
    env = dict(os.environ, NUMBA_CACHE_DIR=str(cache_dir))
    tic = time.perf_counter()
    command = [sys.executable, "-m", "bench._coldstart", backend]
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    process = time.perf_counter() - tic
    if done.returncode != 0:
        raise RuntimeError(f"cold-start run for {backend!r} failed:\n{done.stderr[-2000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["process_s"] = process
    return result


def cold_and_warm(backend):
    """Two fresh processes sharing a new, empty Numba cache directory: the first compiles
    every kernel it needs (cold), the second loads them from the cache (warm)."""
    with tempfile.TemporaryDirectory(prefix="fastgd-bench-cache-") as cache:
        cold = cold_start(backend, cache)
        warm = cold_start(backend, cache)
    return cold, warm
