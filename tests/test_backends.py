"""Every backend matches the NumPy reference: same iterates to 1e-10 in float64.

The grid covers every loss x penalty x schedule x batch size {1, 7, 32, full} x
momentum {0, 0.9} x Nesterov, with shuffling, through the public estimators: the whole
product with ``pytest --full``, a pairwise covering set (every two of those values
together at least once, on every backend) in the default run.
"""

import numpy as np
import pytest
import scipy.sparse as sp

from fastgd import LinearRegression, LogisticRegression
from fastgd import _params as P
from fastgd._backends import get_backend
from fastgd._losses import LOSSES
from fastgd._penalties import PENALTIES
from fastgd._schedules import SCHEDULE_CODES, SCHEDULES

from ._grids import grid
from .conftest import FAST_BACKENDS, assert_same_fit, make_data

# registry name -> (estimator class, data kind)
LOSS_CASES = {
    "squared_error": (LinearRegression, "multioutput"),
    "log_loss": (LogisticRegression, "binary"),
    "multinomial": (LogisticRegression, "multiclass"),
}
MOMENTA = [(0.0, False), (0.9, False), (0.9, True)]
BATCHES = [1, 7, 32, "full"]


def test_every_loss_has_a_case():
    assert set(LOSS_CASES) == set(LOSSES)


def fit_pair(backend, cls, X, y, sample_weight=None, **params):
    params = dict(max_iter=3, tol=None, random_state=3, **params)
    ref = cls(backend="numpy", **params).fit(X, y, sample_weight=sample_weight)
    fast = cls(backend=backend, **params).fit(X, y, sample_weight=sample_weight)
    return ref, fast


@pytest.mark.parametrize(
    "backend,loss,penalty,learning_rate,batch_size,momentum,nesterov",
    grid(FAST_BACKENDS, sorted(LOSSES), list(PENALTIES), sorted(SCHEDULES), BATCHES, MOMENTA, cross=1),
)
def test_matches_reference(backend, loss, penalty, learning_rate, batch_size, momentum, nesterov):
    cls, kind = LOSS_CASES[loss]
    X, y = make_data(kind, n=50)
    ref, fast = fit_pair(
        backend,
        cls,
        X,
        y,
        penalty=penalty,
        alpha=0.05,
        l1_ratio=0.4,
        learning_rate=learning_rate,
        eta0=0.1,
        batch_size=batch_size,
        momentum=momentum,
        nesterov=nesterov,
    )
    assert_same_fit(ref, fast)
    # the fit moved: a test of equal zeros would prove nothing
    assert np.abs(ref.coef_).max() > 1e-3


@pytest.mark.parametrize("backend", FAST_BACKENDS)
@pytest.mark.parametrize("kind", ["regression", "binary", "multiclass"])
def test_matches_reference_with_weights(backend, kind):
    cls = LinearRegression if kind == "regression" else LogisticRegression
    X, y = make_data(kind, n=45, seed=1)
    sw = np.random.default_rng(0).uniform(0, 3, size=len(y))
    sw[:5] = 0.0
    extra = {"class_weight": "balanced"} if kind != "regression" else {}
    ref, fast = fit_pair(backend, cls, X, y, sample_weight=sw, batch_size=4, **extra)
    assert_same_fit(ref, fast)


@pytest.mark.parametrize("backend", FAST_BACKENDS)
@pytest.mark.parametrize("kind", ["multioutput", "binary", "multiclass"])
def test_no_intercept_and_no_shuffle(backend, kind):
    cls = LinearRegression if kind == "multioutput" else LogisticRegression
    X, y = make_data(kind, n=30, seed=2)
    ref, fast = fit_pair(backend, cls, X, y, fit_intercept=False, shuffle=False, batch_size=8)
    assert_same_fit(ref, fast)
    assert np.all(fast.intercept_ == 0.0)


@pytest.mark.parametrize("backend", FAST_BACKENDS)
@pytest.mark.parametrize("kind", ["multioutput", "binary", "multiclass"])
@pytest.mark.parametrize("batch_size", [1, 32, "full"])
def test_float32_close_to_float64(backend, kind, batch_size):
    cls = LinearRegression if kind == "multioutput" else LogisticRegression
    X, y = make_data(kind, n=80, seed=4)
    params = {"max_iter": 5, "tol": None, "random_state": 0, "batch_size": batch_size, "backend": backend}
    f64 = cls(**params).fit(X, y)
    f32 = cls(**params).fit(X.astype(np.float32), y)
    assert f32.coef_.dtype == np.float32
    assert f64.coef_.dtype == np.float64
    np.testing.assert_allclose(f32.coef_, f64.coef_, rtol=1e-4, atol=1e-4 * np.abs(f64.coef_).max())
    np.testing.assert_allclose(f32.intercept_, f64.intercept_, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("backend", FAST_BACKENDS)
def test_float32_kernel_matches_float32_reference(backend):
    X, y = make_data("multiclass", n=40, dtype=np.float32)
    ref, fast = fit_pair(backend, LogisticRegression, X, y, batch_size=5)
    assert fast.coef_.dtype == np.float32
    assert_same_fit(ref, fast, rtol=1e-5, atol=1e-6)


def _kernel_args(dtype, loss_code=0, schedule_code=0):
    X = np.ones((4, 2), dtype=dtype)
    Y = np.ones((4, 1), dtype=dtype)  # target 1, label 1, class index 1
    sw = np.ones(4, dtype=dtype)
    order = np.arange(4, dtype=np.int64)
    n_outputs = 2 if loss_code == LOSSES["multinomial"].code else 1
    state = np.zeros((2, n_outputs, 3), dtype=dtype)
    hp = np.zeros(P.N_HP)
    hp[P.ETA0] = 0.1
    hp[P.ALPHA] = 0.1
    hp[P.OPTIMAL_T0] = 100.0  # first optimal step 1 / (alpha * t0) = 0.1
    codes = np.zeros(P.N_CODES, dtype=np.int64)
    codes[P.LOSS] = loss_code
    codes[P.SCHEDULE] = schedule_code
    codes[P.BATCH_SIZE] = 2
    codes[P.FIT_INTERCEPT] = 1
    return {"X": X, "Y": Y, "sw": sw, "order": order, "state": state, "hp": hp, "codes": codes}


@pytest.mark.parametrize("backend", ["numpy"] + FAST_BACKENDS)
@pytest.mark.parametrize(
    "field,code", [("loss", c.code) for c in LOSSES.values()] + [("schedule", c) for c in SCHEDULE_CODES]
)
def test_every_registry_code_runs_on_every_backend(backend, field, code):
    kernels = get_backend(backend)
    args = _kernel_args(np.float64, **{f"{field}_code": code})
    total = kernels.epoch(**args)
    assert np.isfinite(total) and total > 0
    assert np.all(np.isfinite(args["state"]))
    assert args["state"][0, -1, 2] > 0.0  # the intercept moved towards the target


@pytest.mark.parametrize("backend", ["numpy"] + FAST_BACKENDS)
@pytest.mark.parametrize(
    "field,code", [("loss", c.code) for c in LOSSES.values()] + [("schedule", c) for c in SCHEDULE_CODES]
)
def test_every_registry_code_runs_on_every_sparse_backend(backend, field, code):
    """The sparse (CSR) kernels implement every registry code too: one epoch equals the
    dense NumPy reference's."""
    args = _kernel_args(np.float64, **{f"{field}_code": code})
    args["X"][1, 0] = 0.0  # (a stored zero is not an entry)
    ref = {k: v.copy() for k, v in args.items()}
    expected = get_backend("numpy").epoch(**ref)
    X = sp.csr_matrix(args.pop("X"))
    total = get_backend(backend, sparse=True).epoch(
        data=X.data, indices=X.indices.astype(np.int64), indptr=X.indptr.astype(np.int64), **args
    )
    np.testing.assert_allclose(total, expected, rtol=1e-12)
    np.testing.assert_allclose(args["state"], ref["state"], rtol=1e-12, atol=1e-15)
    assert args["state"][0, -1, 2] > 0.0  # the intercept moved towards the target


@pytest.mark.parametrize("backend", ["numpy"] + FAST_BACKENDS)
@pytest.mark.parametrize("field", ["loss", "schedule"])
def test_unknown_code_fails_loudly(backend, field):
    kernels = get_backend(backend)
    args = _kernel_args(np.float64, **{f"{field}_code": 99})
    with pytest.raises((ValueError, KeyError)):
        kernels.epoch(**args)


@pytest.mark.parametrize("backend", FAST_BACKENDS)
@pytest.mark.parametrize("kind", ["multioutput", "multiclass"])
def test_full_batch_threads_give_identical_results(backend, kind, threads_always):
    """Full batch sums fixed row blocks (several here), so n_jobs cannot change a bit."""
    cls = LinearRegression if kind == "multioutput" else LogisticRegression
    X, y = make_data(kind, n=9000, seed=5)
    params = {"batch_size": "full", "max_iter": 4, "tol": None, "backend": backend}
    fits = [cls(n_jobs=n_jobs, **params).fit(X, y) for n_jobs in (1, 2, 3, None)]
    for other in fits[1:]:
        np.testing.assert_array_equal(other.coef_, fits[0].coef_)
        np.testing.assert_array_equal(other.loss_curve_, fits[0].loss_curve_)
    ref = cls(**{**params, "backend": "numpy"}).fit(X, y)
    assert_same_fit(ref, fits[0])


@pytest.mark.parametrize("backend", FAST_BACKENDS)
@pytest.mark.parametrize("batch_size", [16, "full"])
def test_concurrent_fits_in_threads_match_sequential_fits(backend, batch_size, threads_always):
    from concurrent.futures import ThreadPoolExecutor

    # each fit asks for a different n_jobs, so the shared pool grows while others use it
    datasets = [(make_data("multiclass", n=5000, seed=s), s + 1) for s in range(4)]
    params = {"batch_size": batch_size, "max_iter": 3, "tol": None, "random_state": 0, "backend": backend}

    def fit(case):
        (X, y), n_jobs = case
        return LogisticRegression(n_jobs=n_jobs, **params).fit(X, y).coef_

    sequential = [fit(case) for case in datasets]
    with ThreadPoolExecutor(4) as pool:
        threaded = list(pool.map(fit, datasets))
    for a, b in zip(sequential, threaded, strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("backend", ["numpy"] + FAST_BACKENDS)
@pytest.mark.parametrize("loss", sorted(LOSSES))
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_gradient_kernel_matches_a_direct_computation(backend, loss, dtype):
    """``gradient`` (one block's summed gradient, for the Dask driver) on every backend,
    against the registry's NumPy value/gradient written out by hand."""
    kernels = get_backend(backend)
    rng = np.random.default_rng(7)
    n, d = 37, 5
    K = 1 if loss == "log_loss" else 3
    X = rng.standard_normal((n, d)).astype(dtype)
    if loss == "squared_error":
        Y = rng.standard_normal((n, K))
    elif loss == "log_loss":
        Y = rng.integers(0, 2, (n, 1)).astype(float)
    else:
        Y = rng.integers(0, K, (n, 1)).astype(float)
    Y = Y.astype(dtype)
    sw = rng.uniform(0, 2, n).astype(dtype)
    W = rng.standard_normal((K, d + 1)).astype(dtype)
    codes = np.zeros(P.N_CODES, dtype=np.int64)
    codes[P.LOSS] = LOSSES[loss].code
    values, D = LOSSES[loss].value_grad((X @ W[:, :d].T + W[:, d]).astype(np.float64), Y.astype(np.float64))
    D = D * sw[:, None]
    expected = np.hstack([D.T @ X.astype(np.float64), D.sum(axis=0)[:, None]])
    G = np.ones((K, d + 1))  # gradient() adds to G
    total = kernels.gradient(X, Y, sw, W, codes, G)
    rtol = 1e-10 if dtype == np.float64 else 1e-4
    np.testing.assert_allclose(total, sw.astype(np.float64) @ values, rtol=rtol)
    np.testing.assert_allclose(G - 1.0, expected, rtol=rtol, atol=rtol * np.abs(expected).max())
    assert G.dtype == np.float64
