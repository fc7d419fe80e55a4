"""The benchmark data sets: dense, deterministic, generated in memory.

* ``"linear"``: Gaussian features, ``y = X w + 0.3 + 0.5 * noise`` with
  ``w ~ N(0, 1/d)`` (so ``y`` has unit-order scale and the optimal objective is about
  0.125).
* ``"logistic"``: scikit-learn's ``make_classification`` (two classes, ``d // 5``
  informative and ``d // 10`` redundant features, 1 % flipped labels).
"""

import functools

import numpy as np


def classification(n, d, seed):
    """``make_classification(n, d)`` with ``d // 5`` informative and ``d // 10`` redundant
    features (integer labels 0/1, not cached): the "logistic" data and the
    time-to-accuracy race's."""
    from sklearn.datasets import make_classification

    return make_classification(
        n_samples=n,
        n_features=d,
        n_informative=max(2, d // 5),
        n_redundant=d // 10,
        random_state=seed,
    )


@functools.lru_cache(maxsize=4)
def _float64(model, n, d, seed):
    if model == "linear":
        rng = np.random.default_rng(seed)
        X = rng.standard_normal((n, d))
        w = rng.standard_normal(d) / np.sqrt(d)
        y = X @ w + 0.3 + 0.5 * rng.standard_normal(n)
    elif model == "logistic":
        X, y = classification(n, d, seed)
        y = y.astype(np.float64)
    else:
        raise ValueError(f"unknown model {model!r}")
    return np.ascontiguousarray(X), y


@functools.lru_cache(maxsize=2)
def _float32(model, n, d, seed):
    X, y = _float64(model, n, d, seed)
    return np.ascontiguousarray(X, dtype=np.float32), y


def make_data(model, n, d, dtype="float64", seed=0):
    """``(X, y)`` for ``model`` ("linear" or "logistic"), C-contiguous, cached (the same
    call returns the same arrays: do not modify them). ``y`` is float64 (0/1 for
    "logistic")."""
    if np.dtype(dtype) == np.float32:
        return _float32(model, n, d, seed)
    return _float64(model, n, d, seed)


def clear_cache():
    """Drop the cached arrays (the large sizes take hundreds of MB)."""
    _float32.cache_clear()
    _float64.cache_clear()
