"""Hostile inputs: each gets a clear error or a correct result, never a crash,
a hang or a NaN model.

``CASES`` is the one table of estimator-level inputs, dense and sparse, run on every
backend; ``KERNEL_CASES`` calls the kernel entry points directly with malformed arrays.
``test_no_case_crashes_the_interpreter`` runs both tables in a child process, so a
segfault (which the in-process tests cannot survive) fails one test instead of the run.

What each kind of case expects, and why:

- invalid values (NaN/inf in X, y, sample_weight, class_weight or a parameter; a
  negative weight or class weight; complex, non-numeric or mixed-type data; a mismatch
  of lengths or of the feature count; 0 rows or 0 columns; a single class; a malformed
  sparse matrix): ``ValueError`` (or ``TypeError`` for a type sklearn rejects, e.g.
  ``np.matrix``) whose message names the problem, as scikit-learn's estimators do;
- representations of valid data (read-only memory maps, views of any stride, big-endian,
  float16, integer, boolean, numeric-string and object arrays, DataFrames of mixed
  dtypes, int32/int64 sparse indices, sparse matrices with unused storage): the fit
  succeeds and equals the fit on the plain C-contiguous float array, bit for bit where
  the kernel sees the same array, to rounding otherwise;
- magnitudes: gradient descent is linear in y from zero weights, so y * 1e150 gives
  coef_ * 1e150; and with ``learning_rate="auto"`` (no intercept, no penalty) the step
  scales as 1 / scale**2, so X * 1e±100 gives the unscaled fit's predictions (the
  iterates are the same up to the scale). Where float64 cannot represent the problem
  (X * 1e300: its squares overflow; X * 1e-300: they underflow to 0, and no step
  can move a weight; y * 1e300: the loss overflows; a step size that is 0 or inf in
  float32) the fit raises a ``ValueError`` (``DivergenceError`` for a loss that overflows
  during the fit) saying so, instead of returning an all-zero or NaN model. A user of
  scikit-learn expects either the scale-covariant answer or an error, never a model
  that silently did not move;
- degenerate but valid inputs (one row, n < batch_size, a class weight of 0, uniform
  sample weights of 1e308 or 1e-320, huge alpha/tol/power_t): a finite, correct fit
  (equal to the equivalent plain fit where there is one).
"""

import os
import re
import subprocess
import sys
import tempfile
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytest
import scipy.sparse as sp

from fastgd import DivergenceError, LinearRegression, LogisticRegression
from fastgd import _params as P
from fastgd._backends import get_backend
from fastgd._sparse import kernel_arrays

from .conftest import ALL_BACKENDS

Q = {"max_iter": 3, "tol": None, "random_state": 0}
NO_SCALE = {**Q, "fit_intercept": False, "penalty": None}  # GD then scale-covariant in X
RESULT = "result"


def data(n=40, d=3, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    y = X @ np.array([1.0, 2.0, -1.0, 0.5][:d]) + 0.5 + 0.1 * rng.standard_normal(n)
    yb = (y > 0.5).astype(np.int64)
    yc = np.digitize(y, np.quantile(y, [1 / 3, 2 / 3]))
    return X, y, yb, yc


X0, Y0, YB0, YC0 = data()


def csr(X, index_dtype=None):
    M = sp.csr_matrix(X)
    if index_dtype is not None:
        M.indices = M.indices.astype(index_dtype)
        M.indptr = M.indptr.astype(index_dtype)
    return M


def malformed(fmt="csr", how="index_high"):
    """A copy of X0 in format ``fmt`` corrupted after construction (scipy checks nothing
    when arrays are assigned)."""
    M = {"csr": sp.csr_matrix, "csc": sp.csc_matrix, "coo": sp.coo_matrix}[fmt](X0)
    if fmt == "coo":
        M.row[3] = 10**6 if how == "index_high" else -1
        return M
    if how == "index_high":
        M.indices[5] = 10**6
    elif how == "index_negative":
        M.indices[5] = -1
    elif how == "indptr_decreasing":
        M.indptr[1], M.indptr[2] = M.indptr[2], M.indptr[1]
    elif how == "indptr_short":
        M.indptr = M.indptr[:-2].copy()
    elif how == "indptr_past_end":
        M.indptr[-1] += 7
    elif how == "indices_float":
        M.indices = M.indices.astype(np.float64)
    return M


def corrupt_int64_csr():
    M = csr(X0, np.int64)
    M.indices[2] = 99
    return M


def unused_storage():
    """A valid CSR matrix storing more entries than its rows use (scipy ignores them)."""
    M = sp.csr_matrix(X0)
    M.data = np.r_[M.data, 123.0]
    M.indices = np.r_[M.indices, 0].astype(M.indices.dtype)
    return M


_TMP = tempfile.mkdtemp(prefix="fastgd-hostile-")


def read_only_memmap(a, name):
    """``a`` saved to a file and memory-mapped read-only (the mapping cannot be written)."""
    path = os.path.join(_TMP, f"{name}-{os.getpid()}.npy")
    if not os.path.exists(path):
        np.save(path, a)
    m = np.load(path, mmap_mode="r")
    assert isinstance(m, np.memmap) and not m.flags.writeable
    return m


def read_only(a):
    a = a.copy()
    a.setflags(write=False)
    return a


def frame(X):
    import pandas as pd

    return pd.DataFrame({"i": (X[:, 0] * 10).astype(np.int64), "f": X[:, 1], "b": X[:, 2] > 0})


def frame_as_array(X):
    return np.column_stack([(X[:, 0] * 10).astype(np.int64), X[:, 1], X[:, 2] > 0]).astype(np.float64)


@dataclass(frozen=True)
class Case:
    """``run(backend)`` makes the call; ``expect`` an exception type (its message must
    match ``match``) or RESULT: ``run`` then returns ``(estimator, X)`` and the fit must
    be finite (coef_, intercept_, predictions on X) and pass ``check(estimator, backend)``."""

    name: str
    run: Callable
    expect: object
    match: str = ""
    check: Callable = None
    sparse: bool = False


CASES = []


def case(name, expect, match="", check=None, sparse=False):
    def add(run):
        CASES.append(Case(name, run, expect, match, check, sparse))
        return run

    return add


def fit(cls, X, y, backend, sample_weight=None, **params):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return cls(backend=backend, **{**Q, **params}).fit(X, y, sample_weight=sample_weight)


def same_as(cls, X, y, exact=True, sample_weight=None, rtol=1e-12, **params):
    """Check: the fit equals the fit of ``cls(**params)`` on (X, y, sample_weight)."""

    def check(est, backend):
        ref = fit(cls, X, y, backend, sample_weight=sample_weight, **params)
        if exact:
            np.testing.assert_array_equal(est.coef_, ref.coef_)
            np.testing.assert_array_equal(est.intercept_, ref.intercept_)
        else:
            np.testing.assert_allclose(est.coef_, ref.coef_, rtol=rtol, atol=1e-300)
            np.testing.assert_allclose(est.intercept_, ref.intercept_, rtol=rtol, atol=1e-300)

    return check


def nonfinite(a, where, value):
    a = np.array(a, dtype=float)
    a.flat[where] = value
    return a


def with_sparse_nonfinite(value):
    M = csr(X0)
    M.data[4] = value
    return M


# ------------------------------------------------------------------ NaN / inf in data
for _v, _word in ((np.nan, "NaN"), (np.inf, "infinity"), (-np.inf, "infinity")):
    _t = str(_v)
    case(f"dense/LogisticRegression.fit/X {_t}", ValueError, _word)(
        lambda b, v=_v: fit(LogisticRegression, nonfinite(X0, 7, v), YB0, b))
    case(f"dense/LinearRegression.partial_fit/X {_t}", ValueError, _word)(
        lambda b, v=_v: LinearRegression(backend=b).partial_fit(nonfinite(X0, 7, v), Y0))
    case(f"dense/LogisticRegression.fit/sample_weight {_t}", ValueError, _word + "|[Nn]egative")(
        lambda b, v=_v: fit(LogisticRegression, X0, YB0, b, sample_weight=nonfinite(np.ones(40), 3, v)))
    case(f"sparse/LinearRegression.fit/data {_t}", ValueError, _word, sparse=True)(
        lambda b, v=_v: fit(LinearRegression, with_sparse_nonfinite(v), Y0, b))
    case(f"sparse/LogisticRegression.partial_fit/data {_t}", ValueError, _word, sparse=True)(
        lambda b, v=_v: LogisticRegression(backend=b).partial_fit(with_sparse_nonfinite(v), YB0, classes=[0, 1]))
case("dense/LinearRegression.fit/y inf", ValueError, "infinity")(
    lambda b: fit(LinearRegression, X0, nonfinite(Y0, 2, np.inf), b))
case("dense/LogisticRegression.fit/y NaN", ValueError, "NaN")(
    lambda b: fit(LogisticRegression, X0, nonfinite(YB0, 2, np.nan), b))
case("dense/LogisticRegression.partial_fit/y NaN", ValueError, "NaN")(
    lambda b: LogisticRegression(backend=b).partial_fit(X0, nonfinite(YB0, 2, np.nan), classes=[0, 1]))


def fitted(cls=LogisticRegression, b="numpy", X=X0, **params):
    y = YC0 if cls is LogisticRegression else Y0
    return fit(cls, X, y, b, **params)


for _method in ("predict", "predict_proba", "decision_function", "predict_log_proba"):
    case(f"dense/LogisticRegression.{_method}/X NaN", ValueError, "NaN")(
        lambda b, m=_method: getattr(fitted(b=b), m)(nonfinite(X0, 5, np.nan)))
    case(f"sparse/LogisticRegression.{_method}/data inf", ValueError, "infinity", sparse=True)(
        lambda b, m=_method: getattr(fitted(b=b), m)(with_sparse_nonfinite(np.inf)))
case("dense/LinearRegression.predict/X inf", ValueError, "infinity")(
    lambda b: fitted(LinearRegression, b).predict(nonfinite(X0, 5, np.inf)))
case("dense/LinearRegression.score/y NaN", ValueError, "NaN")(
    lambda b: fitted(LinearRegression, b).score(X0, nonfinite(Y0, 5, np.nan)))
case("dense/LogisticRegression.score/X NaN", ValueError, "NaN")(
    lambda b: fitted(b=b).score(nonfinite(X0, 5, np.nan), YC0))
case("dense/LinearRegression.objective/y NaN", ValueError, "NaN")(
    lambda b: fitted(LinearRegression, b).objective(X0, nonfinite(Y0, 5, np.nan)))
case("dense/LogisticRegression.objective/sample_weight inf", ValueError, "infinity")(
    lambda b: fitted(b=b).objective(X0, YC0, sample_weight=nonfinite(np.ones(40), 0, np.inf)))
case("sparse/LinearRegression.objective/data NaN", ValueError, "NaN", sparse=True)(
    lambda b: fitted(LinearRegression, b).objective(with_sparse_nonfinite(np.nan), Y0))

# ------------------------------------------------------------------ parameters
for _param, _values in {
    "eta0": (np.nan, np.inf, -np.inf),
    "alpha": (np.nan, -np.inf),
    "l1_ratio": (np.nan, np.inf),
    "power_t": (np.nan, np.inf),
    "momentum": (np.nan, np.inf),
    "tol": (np.nan, np.inf),
    "validation_fraction": (np.nan, np.inf),
}.items():
    for _v in _values:
        case(f"dense/LinearRegression.fit/{_param}={_v}", ValueError, f"'{_param}' parameter")(
            lambda b, p=_param, v=_v: fit(LinearRegression, X0, Y0, b, **{p: v, "early_stopping": True}))
case("sparse/LogisticRegression.partial_fit/eta0=nan", ValueError, "'eta0' parameter", sparse=True)(
    lambda b: LogisticRegression(backend=b, eta0=np.nan).partial_fit(csr(X0), YB0, classes=[0, 1]))
case("dense/LinearRegression.fit/eta0=1e300 constant", DivergenceError, r"diverged.*smaller eta0")(
    lambda b: fit(LinearRegression, X0, Y0, b, learning_rate="constant", eta0=1e300))
case("dense/LogisticRegression.fit/alpha=1e300 optimal", DivergenceError, "diverged")(
    lambda b: fit(LogisticRegression, X0, YB0, b, learning_rate="optimal", alpha=1e300))
case("dense/LinearRegression.fit/alpha=1e-300 optimal", DivergenceError, "diverged")(
    lambda b: fit(LinearRegression, X0, Y0, b, learning_rate="optimal", alpha=1e-300))


def tiny_coef(est, backend):
    assert np.abs(est.coef_).max() < 1e-250


case("dense/LinearRegression.fit/alpha=1e300 (weights pinned at 0)", RESULT, check=tiny_coef)(
    lambda b: (fit(LinearRegression, X0, Y0, b, alpha=1e300), X0))
case("dense/LinearRegression.fit/eta0=1e-300 constant (weights barely move)", RESULT, check=tiny_coef)(
    lambda b: (fit(LinearRegression, X0, Y0, b, learning_rate="constant", eta0=1e-300), X0))
case("dense/LinearRegression.fit/power_t=1e300 (step 0 after the first)", RESULT,
     check=same_as(LinearRegression, X0, Y0, exact=False, learning_rate="constant", eta0=0.01, max_iter=1,
                   batch_size=40))(
    lambda b: (fit(LinearRegression, X0, Y0, b, learning_rate="invscaling", eta0=0.01, power_t=1e300,
                   batch_size=40, max_iter=1), X0))
case("dense/LinearRegression.fit/momentum=1-1e-16", RESULT)(
    lambda b: (fit(LinearRegression, X0, Y0, b, momentum=1 - 1e-16), X0))
case("dense/LinearRegression.fit/tol=1e300 (stops after n_iter_no_change)", RESULT,
     check=lambda est, b: est.n_iter_ < 100)(
    lambda b: (fit(LinearRegression, X0, Y0, b, tol=1e300, max_iter=100), X0))
case("dense/LogisticRegression.fit/validation_fraction=1e-300 (one row for two classes)", ValueError,
     "could not hold out")(
    lambda b: fit(LogisticRegression, X0, YB0, b, early_stopping=True, validation_fraction=1e-300))
case("dense/LogisticRegression.fit/validation_fraction=1-1e-16", ValueError, "empty|could not hold out")(
    lambda b: fit(LogisticRegression, X0, YB0, b, early_stopping=True, validation_fraction=1 - 1e-16))
case("dense/float32 LinearRegression.fit/eta0=1e-300 (0 in float32)", ValueError, "step size.*float32")(
    lambda b: fit(LinearRegression, X0.astype(np.float32), Y0, b, learning_rate="constant", eta0=1e-300))
case("dense/float32 LinearRegression.fit/eta0=1e300 (inf in float32)", ValueError, "step size.*float32")(
    lambda b: fit(LinearRegression, X0.astype(np.float32), Y0, b, learning_rate="constant", eta0=1e300))

# ------------------------------------------------------------------ class_weight
for _v in (np.nan, np.inf, -1.0):
    case(f"dense/LogisticRegression.fit/class_weight value {_v}", ValueError, r"class_weight\[1\] must be finite and >= 0")(
        lambda b, v=_v: fit(LogisticRegression, X0, YB0, b, class_weight={1: v}))
    case(f"sparse/LogisticRegression.fit/class_weight value {_v}", ValueError, r"class_weight\[2\] must be finite",
         sparse=True)(lambda b, v=_v: fit(LogisticRegression, csr(X0), YC0, b, class_weight={2: v}))
case("dense/LogisticRegression.fit/class_weight all 0", ValueError, "must not sum to zero")(
    lambda b: fit(LogisticRegression, X0, YB0, b, class_weight={0: 0, 1: 0}))
case("dense/LogisticRegression.fit/class_weight names a missing label", ValueError, "class_weight names labels.*7")(
    lambda b: fit(LogisticRegression, X0, YB0, b, class_weight={7: 2.0}))
case("dense/LogisticRegression.fit/class_weight value 'a'", ValueError, "could not convert")(
    lambda b: fit(LogisticRegression, X0, YB0, b, class_weight={0: "a"}))
case("dense/LogisticRegression.fit/class_weight 0 for one class", RESULT,
     check=same_as(LogisticRegression, X0, YC0, exact=False, sample_weight=(YC0 != 1).astype(float)))(
    lambda b: (fit(LogisticRegression, X0, YC0, b, class_weight={1: 0.0}), X0))
case("dense/LogisticRegression.fit/class_weight 1e308 for every class (sum overflows)", RESULT,
     check=same_as(LogisticRegression, X0, YB0, exact=False))(
    lambda b: (fit(LogisticRegression, X0, YB0, b, class_weight={0: 1e308, 1: 1e308}), X0))

# ------------------------------------------------------------------ sample_weight
case("dense/LinearRegression.fit/sample_weight too short", ValueError, "sample_weight|samples")(
    lambda b: fit(LinearRegression, X0, Y0, b, sample_weight=np.ones(39)))
case("dense/LinearRegression.fit/sample_weight 2-D", ValueError, "1D")(
    lambda b: fit(LinearRegression, X0, Y0, b, sample_weight=np.ones((40, 1))))
case("dense/LogisticRegression.fit/sample_weight all 0", ValueError, "non-zero|sum to zero")(
    lambda b: fit(LogisticRegression, X0, YB0, b, sample_weight=np.zeros(40)))
case("sparse/LinearRegression.fit/sample_weight too long", ValueError, "sample_weight|samples", sparse=True)(
    lambda b: fit(LinearRegression, csr(X0), Y0, b, sample_weight=np.ones(41)))
case("dense/LinearRegression.fit/sample_weight strings", ValueError, "could not convert")(
    lambda b: fit(LinearRegression, X0, Y0, b, sample_weight=np.array(["a"] * 40)))
for _w in (1e308, 1e-320):
    # (1e-320 is subnormal, so not exactly uniform: the same fit to rounding)
    case(f"dense/LinearRegression.fit/sample_weight all {_w}", RESULT,
         check=same_as(LinearRegression, X0, Y0, exact=_w > 1))(
        lambda b, w=_w: (fit(LinearRegression, X0, Y0, b, sample_weight=np.full(40, w)), X0))
    case(f"sparse/LogisticRegression.fit/sample_weight all {_w}", RESULT,
         check=same_as(LogisticRegression, csr(X0), YC0, exact=_w > 1), sparse=True)(
        lambda b, w=_w: (fit(LogisticRegression, csr(X0), YC0, b, sample_weight=np.full(40, w)), X0))

# ------------------------------------------------------------------ labels and targets
_MIXED = np.array([1, "a"] * 20, dtype=object)
case("dense/LogisticRegression.fit/labels of mixed types (object array)", ValueError, "Unknown label type|Mix of")(
    lambda b: fit(LogisticRegression, X0, _MIXED, b))
case("sparse/LogisticRegression.fit/labels of mixed types (object array)", ValueError, "Unknown label type|Mix of",
     sparse=True)(lambda b: fit(LogisticRegression, csr(X0), _MIXED, b))
case("dense/LogisticRegression.fit/labels of mixed types (list: strings, as in scikit-learn)", RESULT,
     check=lambda est, b: np.testing.assert_array_equal(est.classes_, ["1", "a"]))(
    lambda b: (fit(LogisticRegression, X0, [1, "a"] * 20, b), X0))
case("dense/LogisticRegression.partial_fit/classes of mixed types", ValueError, "classes mixes strings and numbers")(
    lambda b: LogisticRegression(backend=b).partial_fit(X0, YB0, classes=[0, 1, "a"]))
case("dense/LogisticRegression.partial_fit/classes with NaN", ValueError, "classes contains NaN")(
    lambda b: LogisticRegression(backend=b).partial_fit(X0, YB0, classes=[0.0, 1.0, np.nan]))
case("dense/LogisticRegression.partial_fit/label not in classes", ValueError, "not in classes")(
    lambda b: LogisticRegression(backend=b).partial_fit(X0, YC0, classes=[0, 1]))
case("dense/LogisticRegression.fit/continuous y", ValueError, "Unknown label type")(
    lambda b: fit(LogisticRegression, X0, Y0, b))
case("dense/LogisticRegression.fit/y 2-D", ValueError, "1d")(
    lambda b: fit(LogisticRegression, X0, np.column_stack([YB0, YB0]), b))
case("dense/LinearRegression.fit/y strings", ValueError, "could not convert|numeric")(
    lambda b: fit(LinearRegression, X0, np.array(["a"] * 40), b))
case("dense/LinearRegression.fit/y complex", ValueError, "Complex")(
    lambda b: fit(LinearRegression, X0, Y0 + 1j, b))
case("dense/LinearRegression.fit/y 3-D", ValueError, "dim 3")(
    lambda b: fit(LinearRegression, X0, Y0.reshape(40, 1, 1), b))
case("dense/LogisticRegression.fit/single class", ValueError, "at least 2 classes")(
    lambda b: fit(LogisticRegression, X0, np.ones(40), b))
case("sparse/LogisticRegression.fit/single class", ValueError, "at least 2 classes", sparse=True)(
    lambda b: fit(LogisticRegression, csr(X0), np.zeros(40), b))
case("dense/LogisticRegression.partial_fit/single class in classes", ValueError, "at least 2 classes")(
    lambda b: LogisticRegression(backend=b).partial_fit(X0, np.ones(40), classes=[1]))

# ------------------------------------------------------------------ magnitudes
case("dense/LinearRegression.fit/X * 1e300 (squares overflow)", ValueError, "overflow.*rescale X")(
    lambda b: fit(LinearRegression, X0 * 1e300, Y0, b))
case("sparse/LogisticRegression.fit/X * 1e300 (squares overflow)", ValueError, "overflow.*rescale X", sparse=True)(
    lambda b: fit(LogisticRegression, csr(X0 * 1e300), YB0, b))
case("dense/LinearRegression.fit/X * 1e-300 (squares underflow to 0)", ValueError, "too small.*underflow.*rescale X")(
    lambda b: fit(LinearRegression, X0 * 1e-300, Y0, b))
case("sparse/LogisticRegression.fit/X * 1e-300 (squares underflow to 0)", ValueError, "too small.*rescale X",
     sparse=True)(lambda b: fit(LogisticRegression, csr(X0 * 1e-300), YB0, b, fit_intercept=False))
case("dense/LinearRegression.partial_fit/X * 1e-300", ValueError, "too small")(
    lambda b: LinearRegression(backend=b).partial_fit(X0 * 1e-300, Y0))
case("dense/LinearRegression.fit/X * 1e-160, no intercept (step overflows)", ValueError, "step size inf")(
    lambda b: fit(LinearRegression, X0 * 1e-160, Y0, b, **NO_SCALE))
case("dense/float32 LinearRegression.fit/X * 1e30 (step 0 in float32)", ValueError, "step size.*0 in float32")(
    lambda b: fit(LinearRegression, (X0 * 1e30).astype(np.float32), Y0, b))
case("dense/LinearRegression.fit/y * 1e300 (loss overflows)", DivergenceError, "objective became inf")(
    lambda b: fit(LinearRegression, X0, Y0 * 1e300, b))


def scaled_like(X, y, scale, cls=LinearRegression, params=NO_SCALE):
    """Check: predictions equal those of the fit on ``X / scale`` (GD with the auto step
    is scale-covariant without intercept and penalty)."""

    def check(est, backend):
        ref = fit(cls, X / scale, y, backend, **params)
        if cls is LinearRegression:
            np.testing.assert_allclose(est.predict(X), ref.predict(X / scale), rtol=1e-8, atol=1e-10)
        else:
            np.testing.assert_allclose(est.predict_proba(X), ref.predict_proba(X / scale), rtol=1e-8, atol=1e-10)

    return check


for _s in (1e100, 1e-100, 1e-150):
    case(f"dense/LinearRegression.fit/X * {_s:g}, no intercept: same predictions", RESULT,
         check=scaled_like(X0 * _s, Y0, _s))(lambda b, s=_s: (fit(LinearRegression, X0 * s, Y0, b, **NO_SCALE), X0 * s))
    # (sparse rows take a kernel rule: so does the dense reference)
    case(f"sparse/LogisticRegression.fit/X * {_s:g}, no intercept: same probabilities", RESULT, sparse=True,
         check=scaled_like(X0 * _s, YC0, _s, LogisticRegression, params={**NO_SCALE, "optimizer": "sgd"}))(
        lambda b, s=_s: (fit(LogisticRegression, csr(X0 * s), YC0, b, **NO_SCALE), X0 * s))


def y_scaled(scale, **params):
    def check(est, backend):
        ref = fit(LinearRegression, X0, Y0, backend, **params)
        np.testing.assert_allclose(est.coef_, ref.coef_ * scale, rtol=1e-9, atol=1e-300)
        np.testing.assert_allclose(est.intercept_, ref.intercept_ * scale, rtol=1e-9, atol=1e-300)

    return check


for _s in (1e150, 1e-300):
    case(f"dense/LinearRegression.fit/y * {_s:g}: coef_ * {_s:g}", RESULT, check=y_scaled(_s))(
        lambda b, s=_s: (fit(LinearRegression, X0, Y0 * s, b), X0))
case("sparse/LinearRegression.fit/y * 1e150: coef_ * 1e150", RESULT, check=y_scaled(1e150, optimizer="sgd"),
     sparse=True)(
    lambda b: (fit(LinearRegression, csr(X0), Y0 * 1e150, b), X0))

# ------------------------------------------------------------------ dtypes
case("dense/LinearRegression.fit/complex X", ValueError, "Complex")(
    lambda b: fit(LinearRegression, X0 + 1j, Y0, b))
case("sparse/LinearRegression.fit/complex X", ValueError, "Complex", sparse=True)(
    lambda b: fit(LinearRegression, csr(X0 + 1j), Y0, b))
case("dense/LogisticRegression.predict/complex X", ValueError, "Complex")(
    lambda b: fitted(b=b).predict(X0 + 0j))
case("dense/LinearRegression.fit/X of non-numeric strings", ValueError, "could not convert|numeric")(
    lambda b: fit(LinearRegression, np.full((40, 3), "x"), Y0, b))
case("dense/LinearRegression.fit/object X with None", (ValueError, TypeError), "float|NaN|None")(
    lambda b: fit(LinearRegression, np.where(X0 > 1, None, X0.astype(object)), Y0, b))
case("dense/LinearRegression.fit/X of numeric strings", RESULT, check=same_as(LinearRegression, X0, Y0))(
    lambda b: (fit(LinearRegression, X0.astype(str), Y0, b), X0))
case("dense/LinearRegression.fit/np.matrix", TypeError, "np.matrix is not supported")(
    lambda b: fit(LinearRegression, np.matrix(X0), Y0, b))
case("dense/LinearRegression.predict/np.matrix", TypeError, "np.matrix is not supported")(
    lambda b: fitted(LinearRegression, b).predict(np.matrix(X0)))
for _dt in (">f8", ">f4", "<f2", "longdouble", "int32", "uint8", "bool"):
    _Xd = (X0 * (10 if _dt[-1] in "t28" else 1)).astype(_dt)
    # big-endian floats keep their precision (">f4" is fitted as float32); every other
    # dtype becomes float64
    _native = _Xd.astype(np.float32 if _dt == ">f4" else np.float64)
    case(f"dense/LinearRegression.fit/X {np.dtype(_dt).str}", RESULT,
         check=same_as(LinearRegression, _native, Y0, exact=_dt in (">f8", ">f4")))(
        lambda b, Xd=_Xd: (fit(LinearRegression, Xd, Y0, b), Xd))
    if _dt in ("int32", "uint8", "bool"):  # (scipy.sparse has no big-endian data)
        case(f"sparse/LogisticRegression.fit/data {np.dtype(_dt).str}", RESULT, sparse=True,
             check=same_as(LogisticRegression, csr(_native), YB0, exact=False))(
            lambda b, Xd=_Xd: (fit(LogisticRegression, csr(Xd), YB0, b), Xd.astype(np.float64)))
case("dense/LogisticRegression.predict_proba/X >f8", RESULT,
     check=lambda est, b: np.testing.assert_array_equal(est.predict_proba(X0.astype(">f8")), est.predict_proba(X0)))(
    lambda b: (fitted(b=b), X0))
case("dense/LinearRegression.fit/DataFrame of int, float and bool columns", RESULT,
     check=same_as(LinearRegression, frame_as_array(X0), Y0))(
    lambda b: (fit(LinearRegression, frame(X0), Y0, b), frame(X0)))
case("dense/LinearRegression.fit/DataFrame with a string column", ValueError, "could not convert|numeric")(
    lambda b: fit(LinearRegression, frame(X0).assign(s="x"), Y0, b))

# ------------------------------------------------------------------ layouts and memory
_VIEWS = {
    "Fortran order": lambda X: np.asfortranarray(X),
    "negative row stride": lambda X: X[::-1].copy()[::-1],
    "column stride": lambda X: np.repeat(X, 2, axis=1)[:, ::2],
    "transposed view": lambda X: np.ascontiguousarray(X.T).T,
}
for _k, _f in _VIEWS.items():
    case(f"dense/LogisticRegression.fit/{_k}", RESULT, check=same_as(LogisticRegression, X0, YC0))(
        lambda b, f=_f: (fit(LogisticRegression, f(X0), YC0, b), X0))
case("dense/LinearRegression.fit/read-only memmap X, y, sample_weight", RESULT,
     check=same_as(LinearRegression, X0, Y0, sample_weight=np.linspace(0.5, 2, 40)))(
    lambda b: (fit(LinearRegression, read_only_memmap(X0, "X"), read_only_memmap(Y0, "y"), b,
                   sample_weight=read_only_memmap(np.linspace(0.5, 2, 40), "sw")), X0))
case("dense/LogisticRegression.fit/read-only memmap float32 X", RESULT,
     check=same_as(LogisticRegression, X0.astype(np.float32), YC0))(
    lambda b: (fit(LogisticRegression, read_only_memmap(X0.astype(np.float32), "X32"), YC0, b), X0))
case("dense/LogisticRegression.predict_proba/read-only memmap", RESULT,
     check=lambda est, b: np.testing.assert_array_equal(est.predict_proba(read_only_memmap(X0, "X")),
                                                        est.predict_proba(X0)))(lambda b: (fitted(b=b), X0))
case("dense/LinearRegression.partial_fit/read-only arrays", RESULT,
     check=lambda est, b: np.testing.assert_array_equal(
         est.coef_, LinearRegression(backend=b, random_state=0).partial_fit(X0, Y0).coef_))(
    lambda b: (LinearRegression(backend=b, random_state=0).partial_fit(read_only(X0), read_only(Y0)), X0))


def read_only_csr():
    M = csr(X0)
    for a in (M.data, M.indices, M.indptr):
        a.setflags(write=False)
    return M


case("sparse/LogisticRegression.fit/read-only CSR arrays", RESULT, sparse=True,
     check=same_as(LogisticRegression, csr(X0), YB0))(lambda b: (fit(LogisticRegression, read_only_csr(), YB0, b), X0))
for _idx in (np.int32, np.int64):
    case(f"sparse/LinearRegression.fit/{np.dtype(_idx).name} indices", RESULT, sparse=True,
         check=same_as(LinearRegression, csr(X0), Y0))(
        lambda b, i=_idx: (fit(LinearRegression, csr(X0, i), Y0, b), X0))
case("sparse/LinearRegression.fit/unused storage after indptr[-1]", RESULT, sparse=True,
     check=same_as(LinearRegression, csr(X0), Y0))(lambda b: (fit(LinearRegression, unused_storage(), Y0, b), X0))
case("sparse/LinearRegression.predict/unused storage after indptr[-1]", RESULT, sparse=True,
     check=lambda est, b: np.testing.assert_allclose(est.predict(unused_storage()), est.predict(X0), rtol=1e-12))(
    lambda b: (fitted(LinearRegression, b), X0))
case("sparse/LogisticRegression.fit/CSC and COO of a non-contiguous view", RESULT, sparse=True,
     check=same_as(LogisticRegression, csr(X0), YC0))(
    lambda b: (fit(LogisticRegression, sp.csc_matrix(np.asfortranarray(X0)), YC0, b), X0))

# ------------------------------------------------------------------ malformed sparse
for _how in ("index_high", "index_negative", "indptr_decreasing", "indptr_short", "indptr_past_end", "indices_float"):
    for _fmt in ("csr", "csc"):
        case(f"sparse/LinearRegression.fit/malformed {_fmt}: {_how}", ValueError, "malformed sparse", sparse=True)(
            lambda b, f=_fmt, h=_how: fit(LinearRegression, malformed(f, h), Y0, b))
    case(f"sparse/LogisticRegression.predict/malformed csr: {_how}", ValueError, "malformed sparse", sparse=True)(
        lambda b, h=_how: fitted(b=b).predict(malformed("csr", h)))
    case(f"sparse/LinearRegression.predict/malformed csr: {_how}", ValueError, "malformed sparse", sparse=True)(
        lambda b, h=_how: fitted(LinearRegression, b).predict(malformed("csr", h)))
case("sparse/LinearRegression.objective/malformed csr", ValueError, "malformed sparse", sparse=True)(
    lambda b: fitted(LinearRegression, b).objective(malformed("csr"), Y0))
case("sparse/LogisticRegression.partial_fit/malformed csr", ValueError, "malformed sparse", sparse=True)(
    lambda b: LogisticRegression(backend=b).partial_fit(malformed("csr", "indptr_decreasing"), YB0, classes=[0, 1]))
case("sparse/LogisticRegression.score/malformed csc", ValueError, "malformed sparse", sparse=True)(
    lambda b: fitted(b=b).score(malformed("csc"), YC0))
for _how in ("index_high", "index_negative"):
    case(f"sparse/LinearRegression.fit/malformed coo: {_how}", ValueError, "malformed sparse", sparse=True)(
        lambda b, h=_how: fit(LinearRegression, malformed("coo", h), Y0, b))
case("sparse/LogisticRegression.decision_function/malformed coo", ValueError, "malformed sparse", sparse=True)(
    lambda b: fitted(b=b).decision_function(malformed("coo")))
case("sparse/LinearRegression.fit/malformed csr with int64 indices", ValueError, "malformed sparse", sparse=True)(
    lambda b: fit(LinearRegression, corrupt_int64_csr(), Y0, b))

# ------------------------------------------------------------------ shapes
_EMPTY = {
    "0 rows": (X0[:0], Y0[:0], "0 sample"),
    "0 columns": (X0[:, :0], Y0, "0 feature"),
}
for _k, (_X, _y, _m) in _EMPTY.items():
    case(f"dense/LinearRegression.fit/{_k}", ValueError, _m)(lambda b, X=_X, y=_y: fit(LinearRegression, X, y, b))
    case(f"sparse/LogisticRegression.fit/{_k}", ValueError, _m, sparse=True)(
        lambda b, X=_X, y=_y: fit(LogisticRegression, csr(X), (y > 0).astype(int), b))
    case(f"dense/LinearRegression.partial_fit/{_k}", ValueError, _m)(
        lambda b, X=_X, y=_y: LinearRegression(backend=b).partial_fit(X, y))
case("dense/LogisticRegression.predict/0 rows", ValueError, "0 sample")(lambda b: fitted(b=b).predict(X0[:0]))
case("sparse/LinearRegression.predict/0 rows", ValueError, "0 sample", sparse=True)(
    lambda b: fitted(LinearRegression, b).predict(csr(X0[:0])))
case("dense/LinearRegression.predict/0 columns", ValueError, "0 feature")(
    lambda b: fitted(LinearRegression, b).predict(X0[:, :0]))
case("dense/LinearRegression.fit/X 1-D", ValueError, "2D array")(lambda b: fit(LinearRegression, X0[:, 0], Y0, b))
case("dense/LinearRegression.fit/X 3-D", ValueError, "dim 3")(
    lambda b: fit(LinearRegression, X0.reshape(40, 3, 1), Y0, b))
case("dense/LinearRegression.fit/y shorter than X", ValueError, "inconsistent numbers of samples")(
    lambda b: fit(LinearRegression, X0, Y0[:-1], b))
case("sparse/LogisticRegression.fit/y longer than X", ValueError, "inconsistent numbers of samples", sparse=True)(
    lambda b: fit(LogisticRegression, csr(X0), np.r_[YB0, 0], b))
case("dense/LinearRegression.partial_fit/y shorter than X", ValueError, "inconsistent numbers of samples")(
    lambda b: LinearRegression(backend=b).partial_fit(X0, Y0[:-3]))
case("dense/LogisticRegression.objective/y shorter than X", ValueError, "inconsistent numbers of samples")(
    lambda b: fitted(b=b).objective(X0, YC0[:-1]))
for _d in (2, 4):
    _Xd = np.hstack([X0, X0])[:, :_d]
    for _m in ("predict", "decision_function", "predict_proba", "predict_log_proba"):
        case(f"dense/LogisticRegression.{_m}/{_d} features after fitting 3", ValueError, f"{_d} features")(
            lambda b, X=_Xd, m=_m: getattr(fitted(b=b), m)(X))
    case(f"sparse/LogisticRegression.predict_proba/{_d} features after fitting 3", ValueError, f"{_d} features",
         sparse=True)(lambda b, X=_Xd: fitted(b=b).predict_proba(csr(X)))
    case(f"dense/LinearRegression.partial_fit/{_d} features after fitting 3", ValueError, f"{_d} features")(
        lambda b, X=_Xd: fitted(LinearRegression, b).partial_fit(X, Y0))
    case(f"sparse/LogisticRegression.partial_fit/{_d} features after fitting 3", ValueError, f"{_d} features",
         sparse=True)(lambda b, X=_Xd: fitted(b=b).partial_fit(csr(X), YC0))
    case(f"dense/LinearRegression.score/{_d} features after fitting 3", ValueError, f"{_d} features")(
        lambda b, X=_Xd: fitted(LinearRegression, b).score(X, Y0))
    case(f"dense/LinearRegression.objective/{_d} features after fitting 3", ValueError, f"{_d} features")(
        lambda b, X=_Xd: fitted(LinearRegression, b).objective(X, Y0))
case("dense/LinearRegression.partial_fit/2 targets after 1", ValueError, "shape")(
    lambda b: fitted(LinearRegression, b).partial_fit(X0, np.column_stack([Y0, Y0])))
case("dense/LinearRegression.fit/n < batch_size: the full batch", RESULT,
     check=same_as(LinearRegression, X0, Y0, batch_size="full", optimizer="sgd"))(
    lambda b: (fit(LinearRegression, X0, Y0, b, batch_size=1000), X0))
case("sparse/LogisticRegression.fit/n < batch_size: the full batch", RESULT, sparse=True,
     check=same_as(LogisticRegression, csr(X0), YC0, batch_size="full"))(
    lambda b: (fit(LogisticRegression, csr(X0), YC0, b, batch_size=1000), X0))
case("dense/LinearRegression.fit/single row", RESULT)(lambda b: (fit(LinearRegression, X0[:1], Y0[:1], b), X0[:1]))
case("sparse/LinearRegression.fit/single row, batch_size 1", RESULT, sparse=True)(
    lambda b: (fit(LinearRegression, csr(X0[:1]), Y0[:1], b, batch_size=1), X0[:1]))
case("dense/LogisticRegression.fit/single row", ValueError, "at least 2 classes")(
    lambda b: fit(LogisticRegression, X0[:1], YB0[:1], b))
case("dense/LogisticRegression.fit/two rows, two classes", RESULT)(
    lambda b: (fit(LogisticRegression, X0[:2], np.array([0, 1]), b), X0[:2]))
case("dense/LogisticRegression.partial_fit/single row of 3 classes", RESULT)(
    lambda b: (LogisticRegression(backend=b).partial_fit(X0[:1], YC0[:1], classes=[0, 1, 2]), X0))
case("sparse/LinearRegression.fit/all-zero matrix (no stored entries)", RESULT, sparse=True,
     check=lambda est, b: np.testing.assert_array_equal(est.coef_, 0.0))(
    lambda b: (fit(LinearRegression, sp.csr_matrix((40, 3)), Y0, b), np.zeros((40, 3))))

N_DENSE = sum(not c.sparse for c in CASES)
N_SPARSE = sum(c.sparse for c in CASES)
assert len({c.name for c in CASES}) == len(CASES), "case names must be unique"


def run_case(c, backend):
    """Run one case; return None if it behaved as expected, else a description."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out = c.run(backend)
    except Exception as exc:  # noqa: BLE001 (any exception is an outcome to judge)
        if c.expect is RESULT:
            return f"raised {type(exc).__name__}: {exc}"
        if not isinstance(exc, c.expect):
            return f"raised {type(exc).__name__} instead of {c.expect}: {exc}"
        if not re.search(c.match, str(exc)):
            return f"message {str(exc)!r} does not match {c.match!r}"
        return None
    if c.expect is not RESULT:
        return f"returned instead of raising {c.expect}"
    est, X = out
    for name in ("coef_", "intercept_"):
        if not np.all(np.isfinite(getattr(est, name))):
            return f"{name} is not finite"
    pred = est.predict_proba(X) if hasattr(est, "predict_proba") else est.predict(X)
    if not np.all(np.isfinite(pred)):
        return "predictions are not finite"
    if c.check is not None:
        try:
            c.check(est, backend)
        except AssertionError as exc:
            return f"wrong result: {exc}"
    return None


@pytest.mark.parametrize("backend", ALL_BACKENDS)
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_hostile_input(case, backend):
    problem = run_case(case, backend)
    assert problem is None, f"{case.name} on {backend}: {problem}"


# ------------------------------------------------------------------ kernel entry points
def dense_args(n=6, d=3, K=1, loss=0, batch=2):
    rng = np.random.default_rng(0)
    codes = np.zeros(P.N_CODES, dtype=np.int64)
    codes[P.LOSS] = loss
    codes[P.BATCH_SIZE] = batch
    codes[P.FIT_INTERCEPT] = 1
    codes[P.N_THREADS] = 1
    hp = np.zeros(P.N_HP)
    hp[P.ETA0] = 0.1
    Y = np.ones((n, 1)) if loss else rng.standard_normal((n, K))
    return {"X": rng.standard_normal((n, d)), "Y": Y, "sw": np.ones(n), "order": np.arange(n, dtype=np.int64),
            "state": np.zeros((2, K, d + 1)), "hp": hp, "codes": codes}


def gradient_args(K=1, loss=0):
    a = dense_args(K=K, loss=loss)
    return {"X": a["X"], "Y": a["Y"], "sw": a["sw"], "W": np.zeros((K, 4)), "codes": a["codes"], "G": np.zeros((K, 4))}


def sparse_args(K=1, loss=0):
    a = dense_args(K=K, loss=loss)
    X = a.pop("X") * (np.arange(18).reshape(6, 3) % 2)
    data, indices, indptr = kernel_arrays(sp.csr_matrix(X))
    return {"data": data, "indices": indices, "indptr": indptr, **a}


def _set(name, value):
    return lambda a: a.update({name: value(a) if callable(value) else value})


def _code(field, value):
    return lambda a: a["codes"].__setitem__(field, value)


def _multinomial(label):
    def change(a):
        a["codes"][P.LOSS] = 2
        a["state" if "state" in a else "W"] = np.zeros((2, 3, 4)) if "state" in a else np.zeros((3, 4))
        if "G" in a:
            a["G"] = np.zeros((3, 4))
        a["Y"] = np.zeros((6, 1))
        a["Y"][4, 0] = label

    return change


_COMMON = {  # for every entry point
    "Y float32": _set("Y", lambda a: a["Y"].astype(np.float32)),
    "sw float32": _set("sw", lambda a: a["sw"].astype(np.float32)),
    "sw int64": _set("sw", lambda a: a["sw"].astype(np.int64)),
    "Y non-contiguous": _set("Y", lambda a: np.repeat(a["Y"], 2, axis=1)[:, ::2]),
    "sw strided": _set("sw", lambda a: np.repeat(a["sw"], 2)[::2]),
    "Y shorter": _set("Y", lambda a: a["Y"][:3].copy()),
    "sw shorter": _set("sw", lambda a: a["sw"][:3].copy()),
    "sw longer": _set("sw", np.ones(9)),
    "Y 1-D": _set("Y", lambda a: a["Y"][:, 0].copy()),
    "Y list": _set("Y", lambda a: a["Y"].tolist()),
    "codes float64": _set("codes", lambda a: a["codes"].astype(np.float64)),
    "codes too short": _set("codes", lambda a: a["codes"][:2].copy()),
    "unknown loss code": _code(P.LOSS, 99),
    "negative loss code": _code(P.LOSS, -1),
    "softmax with 1 output": _code(P.LOSS, 2),
    "log loss with 3 outputs": lambda a: (_multinomial(1)(a), _code(P.LOSS, 1)(a)),
    "class index = K": _multinomial(3),
    "class index -1": _multinomial(-1),
    "class index 1.5": _multinomial(1.5),
    "class index NaN": _multinomial(np.nan),
    "class index 1e300": _multinomial(1e300),
}
_EPOCH = {  # for both epochs
    "order index n": lambda a: a["order"].__setitem__(5, 6),
    "order index 1e6": lambda a: a["order"].__setitem__(5, 10**6),
    "order index -1": lambda a: a["order"].__setitem__(5, -1),
    "order int32": _set("order", lambda a: a["order"].astype(np.int32)),
    "order float64": _set("order", lambda a: a["order"].astype(np.float64)),
    "order shorter": _set("order", lambda a: a["order"][:3].copy()),
    "order strided": _set("order", lambda a: np.repeat(a["order"], 2)[::2]),
    "state float32": _set("state", lambda a: a["state"].astype(np.float32)),
    "state (2, 1, 2) (fewer columns than X)": _set("state", np.zeros((2, 1, 2))),
    "state (1, 1, 4)": _set("state", np.zeros((1, 1, 4))),
    "state 2-D": _set("state", np.zeros((2, 4))),
    "state non-contiguous": _set("state", lambda a: np.repeat(a["state"], 2, axis=2)[:, :, ::2]),
    "squared loss, 2 outputs, Y of 1 column": _set("state", np.zeros((2, 2, 4))),
    "hp too short": _set("hp", np.zeros(2)),
    "hp int64": _set("hp", lambda a: a["hp"].astype(np.int64)),
    "unknown schedule code": _code(P.SCHEDULE, 99),
    "batch size 0": _code(P.BATCH_SIZE, 0),
    "batch size -3": _code(P.BATCH_SIZE, -3),
}
_DENSE = {
    "X int64": _set("X", lambda a: a["X"].astype(np.int64)),
    "X float32 (others float64)": _set("X", lambda a: a["X"].astype(np.float32)),
    "X float16": _set("X", lambda a: a["X"].astype(np.float16)),
    "X big-endian": _set("X", lambda a: a["X"].astype(">f8")),
    "X object": _set("X", lambda a: a["X"].astype(object)),
    "X Fortran": _set("X", lambda a: np.asfortranarray(a["X"])),
    "X row stride": _set("X", lambda a: np.repeat(a["X"], 2, axis=0)[::2]),
    "X 1-D": _set("X", lambda a: a["X"].ravel()),
    "X 3-D": _set("X", lambda a: a["X"][:, :, None]),
    "X list": _set("X", lambda a: a["X"].tolist()),
    "X more rows than Y": _set("X", np.ones((9, 3))),
}
_GRADIENT = {
    "W float32": _set("W", lambda a: a["W"].astype(np.float32)),
    "W (1, 3)": _set("W", np.zeros((1, 3))),
    "W 1-D": _set("W", np.zeros(4)),
    "G (2, 4)": _set("G", np.zeros((2, 4))),
    "G float32": _set("G", lambda a: a["G"].astype(np.float32)),
    "G non-contiguous": _set("G", lambda a: np.zeros((1, 8))[:, ::2]),
}
_SPARSE = {
    "indices out of range": lambda a: a["indices"].__setitem__(0, 3),
    "indices negative": lambda a: a["indices"].__setitem__(0, -1),
    "indices int32": _set("indices", lambda a: a["indices"].astype(np.int32)),
    "indptr int32": _set("indptr", lambda a: a["indptr"].astype(np.int32)),
    "indptr decreasing": lambda a: a["indptr"].__setitem__(2, a["indptr"][3] + 1),
    "indptr too short": _set("indptr", lambda a: a["indptr"][:-1].copy()),
    "indptr past the end": lambda a: a["indptr"].__setitem__(-1, a["indptr"][-1] + 5),
    "indptr starts at 1": lambda a: a["indptr"].__setitem__(0, 1),
    "indices shorter than data": _set("indices", lambda a: a["indices"][:-1].copy()),
    "data int64": _set("data", lambda a: a["data"].astype(np.int64)),
    "data float32 (others float64)": _set("data", lambda a: a["data"].astype(np.float32)),
    "data strided": _set("data", lambda a: np.repeat(a["data"], 2)[::2]),
    "data 2-D": _set("data", lambda a: a["data"][:, None]),
}
# (entry point, case name, change); which backends accept it (the NumPy reference reads
# any layout: it does not need C-contiguous arrays, and gives the contiguous call's result)
KERNEL_CASES = (
    [("epoch", k, f) for k, f in {**_COMMON, **_EPOCH, **_DENSE, "state (2, 1, 9)": _set("state", np.zeros((2, 1, 9)))}.items()]
    + [("gradient", k, f) for k, f in {**_COMMON, **_DENSE, **_GRADIENT}.items()]
    + [("sparse epoch", k, f) for k, f in {**_COMMON, **_EPOCH, **_SPARSE}.items()]
)
NUMPY_ACCEPTS = {"X Fortran", "X row stride", "Y non-contiguous", "sw strided", "order strided",
                 "state non-contiguous", "G non-contiguous"}
N_KERNEL = len(KERNEL_CASES)


def run_kernel_case(entry, name, change, backend):
    """None if the call raised ValueError/TypeError (leaving the state untouched), or, for
    the NumPy reference and a layout it accepts, returned the contiguous call's result."""
    make = {"epoch": dense_args, "gradient": gradient_args, "sparse epoch": sparse_args}[entry]
    module = get_backend(backend, sparse=entry == "sparse epoch")
    call = module.gradient if entry == "gradient" else module.epoch
    args = make()
    change(args)
    out = args.get("state", args.get("G"))
    before = np.array(out, copy=True) if isinstance(out, np.ndarray) else None
    try:
        with np.errstate(all="ignore"):
            call(**args)
    except (ValueError, TypeError) as exc:
        if before is not None and before.shape == out.shape and not np.array_equal(before, out, equal_nan=True):
            return f"raised {exc!r} but changed the state"
        return None
    except Exception as exc:  # noqa: BLE001 (reported as the wrong exception)
        return f"raised {type(exc).__name__}: {exc}"
    if backend == "numpy" and name in NUMPY_ACCEPTS:
        ref = make()
        call(**ref)
        key = "state" if "state" in ref else "G"
        return None if np.allclose(ref[key], args[key], rtol=1e-12) else "wrong result on a strided array"
    return "returned instead of raising"


@pytest.mark.parametrize("backend", ALL_BACKENDS)
@pytest.mark.parametrize("entry,name,change", KERNEL_CASES, ids=[f"{e}/{n}" for e, n, _ in KERNEL_CASES])
def test_kernel_entry_points_reject_malformed_arrays(entry, name, change, backend):
    problem = run_kernel_case(entry, name, change, backend)
    assert problem is None, f"{entry} {name} on {backend}: {problem}"


def test_the_numba_kernel_checks_are_jitted_one_pass_functions():
    """The numba epoch's O(n) checks run in jitted code (the order's range only when the
    batch is shuffled): they cost about 0.2% of an SGD epoch at 1e6 x 20 (0.12 ms of 50)."""
    from fastgd._numba import kernels

    order = np.array([0, 2, 1], dtype=np.int64)
    assert kernels._order_in_range(order, 3) and not kernels._order_in_range(order, 2)
    assert not kernels._order_in_range(np.array([0, -1], dtype=np.int64), 2)
    Y = np.array([[0.0], [2.0]])
    assert kernels._labels_in_range(Y, 3) and not kernels._labels_in_range(Y, 2)
    assert not kernels._labels_in_range(np.array([[np.nan]]), 3)
    # a full batch never reads ``order``, so it is not checked (and costs nothing)
    args = dense_args(batch=6)
    args["order"][0] = 10**9
    kernels.epoch(**args)
    assert np.all(np.isfinite(args["state"]))


def test_zero_rows_leave_the_state_alone():
    """An epoch over no rows takes no step on every backend (numba's divided by zero)."""
    for backend in ALL_BACKENDS:
        args = dense_args()
        args.update(X=np.zeros((0, 3)), Y=np.zeros((0, 1)), sw=np.zeros(0), order=np.zeros(0, dtype=np.int64))
        args["state"][...] = 1.0
        assert get_backend(backend).epoch(**args) == 0.0
        np.testing.assert_array_equal(args["state"], 1.0)


# ------------------------------------------------------------------ crash-proof
def child_main():
    """Run every case of both tables on every backend; one line per case and backend."""
    import faulthandler

    faulthandler.enable()
    n = 0
    for backend in ALL_BACKENDS:
        for c in CASES:
            problem = run_case(c, backend)
            print(f"case|{backend}|{c.name}|{'ok' if problem is None else problem}", flush=True)
            n += 1
        for entry, name, change in KERNEL_CASES:
            problem = run_kernel_case(entry, name, change, backend)
            print(f"kernel|{backend}|{entry}/{name}|{'ok' if problem is None else problem}", flush=True)
            n += 1
    print(f"DONE {n}", flush=True)


def test_no_case_crashes_the_interpreter():
    """Every case, dense, sparse and kernel-level, on every backend, in one child process:
    it must exit normally (not killed by a signal such as SIGSEGV, -11), within the
    timeout, having reported an outcome for every case."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    code = "import tests.test_hostile as h; h.child_main()"
    try:
        proc = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=300,
                              check=False)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"the child hung; last output: {(exc.stdout or '')[-2000:]}")
    assert proc.returncode == 0, f"child exited with {proc.returncode}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    lines = [line for line in proc.stdout.splitlines() if line.startswith(("case|", "kernel|"))]
    expected = len(ALL_BACKENDS) * (len(CASES) + len(KERNEL_CASES))
    assert len(lines) == expected and proc.stdout.rstrip().endswith(f"DONE {expected}")
    bad = [line for line in lines if not line.endswith("|ok")]
    assert not bad, "\n".join(bad)


def test_case_count():
    """The counts the issue's closing note reports (per backend; x3 backends)."""
    assert len(CASES) == N_DENSE + N_SPARSE
    assert N_DENSE >= 140 and N_SPARSE >= 75 and N_KERNEL >= 140
