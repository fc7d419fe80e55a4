"""Sparse (CSR) input: a fit on a sparse matrix equals the fit on the same data densified.

Each backend's sparse kernel is held to the dense NumPy reference (1e-10 in float64):
the NumPy sparse kernel is the dense algorithm on CSR rows, and the compiled kernels
update lazily (O(nnz) per step), so this is the test of the lazy update. Also: CSR
oddities (unsorted indices, explicit zeros, duplicates, empty rows and columns), other
formats, index dtypes, prediction, and the kernels' input checks.
"""

import numpy as np
import pytest
import scipy.sparse as sp

from fastgd import LinearRegression, LogisticRegression
from fastgd import _params as P
from fastgd._backends import get_backend
from fastgd._sparse import kernel_arrays

from ._grids import grid
from .conftest import ALL_BACKENDS, FAST_BACKENDS, make_data

LOSS_CASES = {
    "squared_error": (LinearRegression, "multioutput"),
    "log_loss": (LogisticRegression, "binary"),
    "multinomial": (LogisticRegression, "multiclass"),
}
MOMENTA = [(0.0, False), (0.9, False), (0.9, True)]


def sparse_data(kind, n=60, d=15, seed=0, density=0.3, dtype=np.float64):
    """make_data with most entries zeroed, an empty row and an all-zero column."""
    X, y = make_data(kind, n=n, d=d, seed=seed, scale=0.5)
    rng = np.random.default_rng(seed + 100)
    X[rng.random(X.shape) > density] = 0.0
    X[4] = 0.0  # an empty row
    X[:, 2] = 0.0  # a column that is never touched
    return X.astype(dtype), y


def assert_same(a, b, rtol=1e-10, atol=1e-12):
    np.testing.assert_allclose(a.coef_, b.coef_, rtol=rtol, atol=atol)
    np.testing.assert_allclose(a.intercept_, b.intercept_, rtol=rtol, atol=atol)
    np.testing.assert_allclose(a.loss_curve_, b.loss_curve_, rtol=rtol, atol=atol)
    np.testing.assert_allclose(a._state, b._state, rtol=rtol, atol=atol)  # velocity too
    assert a.t_ == b.t_ and a.n_iter_ == b.n_iter_


def fit_dense_and_sparse(cls, X, y, Xs=None, dense_backend="numpy", sample_weight=None, **params):
    params = {"max_iter": 3, "tol": None, "random_state": 3, **params}
    backend = params.pop("backend", "numpy")
    dense = cls(backend=dense_backend, **params).fit(X, y, sample_weight=sample_weight)
    sparse = cls(backend=backend, **params).fit(
        sp.csr_matrix(X) if Xs is None else Xs, y, sample_weight=sample_weight
    )
    return dense, sparse


# ------------------------------------------------------------------ sparse == dense
@pytest.mark.parametrize(
    "backend,loss,batch_size,momentum,nesterov,penalty",
    grid(ALL_BACKENDS, sorted(LOSS_CASES), [1, 7, "full"], MOMENTA, ["l2", None, "l1", "elasticnet"], cross=1),
)
def test_sparse_fit_equals_dense_fit(backend, loss, batch_size, momentum, nesterov, penalty):
    cls, kind = LOSS_CASES[loss]
    X, y = sparse_data(kind)
    dense, sparse = fit_dense_and_sparse(
        cls, X, y, backend=backend, batch_size=batch_size, momentum=momentum, nesterov=nesterov,
        penalty=penalty, alpha=0.02, l1_ratio=0.4, learning_rate="constant", eta0=0.2,
    )
    assert_same(dense, sparse)
    assert np.abs(dense.coef_).max() > 1e-3  # the fit moved


@pytest.mark.parametrize(
    "backend,learning_rate,batch_size",
    grid(ALL_BACKENDS, ["auto", "adaptive", "invscaling", "optimal"], [1, 5], cross=1),
)
def test_every_schedule(backend, learning_rate, batch_size):
    X, y = sparse_data("multiclass", seed=1)
    dense, sparse = fit_dense_and_sparse(
        LogisticRegression, X, y, backend=backend, batch_size=batch_size, learning_rate=learning_rate,
        eta0=0.1, alpha=0.01, max_iter=4,
    )
    assert_same(dense, sparse)
    assert sparse.learning_rate_ == dense.learning_rate_


@pytest.mark.parametrize("backend", FAST_BACKENDS)
def test_lazy_catch_up_over_long_gaps(backend):
    """Long gaps between touches (a rare column) with L2 and both momenta."""
    rng = np.random.default_rng(5)
    n, d = 400, 40
    X = rng.standard_normal((n, d)) * (rng.random((n, d)) < 0.1)
    X[rng.random(n) < 0.97, 7] = 0.0  # column 7 seen a few times per epoch
    y = X @ rng.standard_normal(d) + 0.1 * rng.standard_normal(n)
    for nesterov in (False, True):
        dense, sparse = fit_dense_and_sparse(
            LinearRegression, X, y, backend=backend, batch_size=1, momentum=0.95, nesterov=nesterov,
            alpha=0.01, learning_rate="constant", eta0=0.002, max_iter=3,
        )
        assert_same(dense, sparse)
        assert np.abs(sparse.coef_[7]) > 1e-4


@pytest.mark.parametrize("backend", FAST_BACKENDS)
@pytest.mark.parametrize("sync_steps", [1, 3, 7, 1000])
@pytest.mark.parametrize("K", [1, 3])
def test_full_catch_ups_within_an_epoch(backend, sync_steps, K):
    """Full catch-ups every ``sync_steps`` steps leave the iterates unchanged."""
    rng = np.random.default_rng(6)
    args = kernel_args(50, 20)
    args["state"] = np.zeros((2, K, 21))
    args["Y"] = rng.integers(0, K, (50, 1)).astype(np.float64) if K > 1 else args["Y"]
    args["codes"][P.LOSS] = 2 if K > 1 else 0
    args["hp"][P.L2] = 0.02
    args["order"] = rng.permutation(50).astype(np.int64)
    ref = {**args, "state": args["state"].copy()}
    get_backend("numpy", sparse=True).epoch(**ref)
    get_backend(backend, sparse=True).epoch(**args, sync_steps=sync_steps)
    np.testing.assert_allclose(args["state"], ref["state"], rtol=1e-10, atol=1e-13)


@pytest.mark.parametrize("backend", FAST_BACKENDS)
def test_no_intercept_no_shuffle_sample_and_class_weights(backend):
    X, y = sparse_data("multiclass", seed=2)
    sw = np.random.default_rng(0).uniform(0.2, 3.0, X.shape[0])
    dense, sparse = fit_dense_and_sparse(
        LogisticRegression, X, y, backend=backend, batch_size=3, fit_intercept=False, shuffle=False,
        class_weight="balanced", sample_weight=sw, learning_rate="constant", eta0=0.2,
    )
    assert_same(dense, sparse)


@pytest.mark.parametrize("backend", FAST_BACKENDS)
def test_float32(backend):
    """Float32 sparse fits equal float32 dense fits to float32 precision."""
    X, y = sparse_data("binary", dtype=np.float32)
    for batch_size in (1, 8, "full"):
        dense, sparse = fit_dense_and_sparse(
            LogisticRegression, X, y, backend=backend, dense_backend=backend, batch_size=batch_size,
            learning_rate="constant", eta0=0.2, alpha=0.01,
        )
        assert sparse.coef_.dtype == np.float32
        np.testing.assert_allclose(sparse.coef_, dense.coef_, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(sparse.loss_curve_, dense.loss_curve_, rtol=1e-4)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("backend", FAST_BACKENDS)
def test_early_stopping_warm_start_partial_fit(backend):
    X, y = sparse_data("binary", n=80, seed=3)
    Xs = sp.csr_matrix(X)
    params = {"backend": backend, "batch_size": 4, "max_iter": 6, "tol": 1e-3, "n_iter_no_change": 2, "random_state": 1}
    dense = LogisticRegression(early_stopping=True, **params).fit(X, y)
    sparse = LogisticRegression(early_stopping=True, **params).fit(Xs, y)
    assert_same(dense, sparse)
    np.testing.assert_allclose(sparse.validation_scores_, dense.validation_scores_)
    dense = LogisticRegression(warm_start=True, **params).fit(X, y).fit(X, y)
    sparse = LogisticRegression(warm_start=True, **params).fit(Xs, y).fit(Xs, y)
    assert_same(dense, sparse)
    dense, sparse = LogisticRegression(**params), LogisticRegression(**params)
    for lo in (0, 30, 55):
        dense.partial_fit(X[lo:lo + 25], y[lo:lo + 25], classes=np.unique(y))
        sparse.partial_fit(Xs[lo:lo + 25], y[lo:lo + 25], classes=np.unique(y))
    assert_same(dense, sparse)


# ------------------------------------------------------------------ CSR oddities
def odd_csr(X, rng):
    """X as a CSR matrix with unsorted indices, explicit zeros and duplicate entries
    (each non-zero split into two entries that add up to it)."""
    rows, cols = np.nonzero(X)
    vals = X[rows, cols]
    part = rng.uniform(-1, 2, len(vals)) * vals
    zr, zc = np.nonzero(X == 0)
    pick = rng.random(len(zr)) < 0.1
    r = np.concatenate([rows, rows, zr[pick]])
    c = np.concatenate([cols, cols, zc[pick]])
    v = np.concatenate([part, vals - part, np.zeros(pick.sum())])
    perm = rng.permutation(len(r))
    r, c, v = r[perm], c[perm], v[perm]
    # build the CSR arrays by hand, in this (unsorted, duplicated) order
    order = np.argsort(r, kind="stable")
    indptr = np.concatenate([[0], np.cumsum(np.bincount(r, minlength=X.shape[0]))])
    M = sp.csr_matrix((v[order], c[order], indptr), shape=X.shape)
    assert not M.has_sorted_indices and not M.has_canonical_format
    np.testing.assert_allclose(M.toarray(), X, atol=1e-15)
    return M


@pytest.mark.parametrize("backend", ALL_BACKENDS)
@pytest.mark.parametrize("learning_rate", ["auto", "constant"])
def test_unsorted_explicit_zeros_and_duplicates(backend, learning_rate):
    X, y = sparse_data("multiclass", seed=4)
    M = odd_csr(X, np.random.default_rng(0))
    before = (M.data.copy(), M.indices.copy(), M.indptr.copy())
    dense, sparse = fit_dense_and_sparse(
        LogisticRegression, X, y, Xs=M, backend=backend, batch_size=2, learning_rate=learning_rate, eta0=0.2,
    )
    assert_same(dense, sparse)
    for a, b in zip(before, (M.data, M.indices, M.indptr)):
        np.testing.assert_array_equal(a, b)  # the caller's matrix is left alone
    np.testing.assert_allclose(sparse.predict_proba(M), dense.predict_proba(X), rtol=1e-10)


@pytest.mark.parametrize("backend", FAST_BACKENDS)
@pytest.mark.parametrize(
    "convert",
    [sp.csc_matrix, sp.coo_matrix, sp.csr_array, sp.csc_array, sp.coo_array, sp.lil_matrix],
    ids=lambda f: f.__name__,
)
def test_other_formats_and_sparse_arrays(backend, convert):
    X, y = sparse_data("regression", seed=5)
    dense, sparse = fit_dense_and_sparse(LinearRegression, X, y, Xs=convert(X), backend=backend, batch_size=3)
    assert_same(dense, sparse)
    np.testing.assert_allclose(sparse.predict(convert(X)), dense.predict(X), rtol=1e-10, atol=1e-12)
    assert sparse.score(convert(X), y) == pytest.approx(dense.score(X, y), rel=1e-10)


@pytest.mark.parametrize("index_dtype", [np.int32, np.int64])
def test_index_dtypes(index_dtype):
    X, y = sparse_data("binary", seed=6)
    M = sp.csr_matrix(X)
    M.indices = M.indices.astype(index_dtype)
    M.indptr = M.indptr.astype(index_dtype)
    assert M.indices.dtype == index_dtype
    dense, sparse = fit_dense_and_sparse(LogisticRegression, X, y, Xs=M, backend="numba", batch_size=1)
    assert_same(dense, sparse)
    _, indices, indptr = kernel_arrays(M)
    assert indices.dtype == indptr.dtype == np.int64


@pytest.mark.parametrize("backend", ALL_BACKENDS)
def test_predictions_on_sparse_input(backend):
    X, y = sparse_data("multiclass", seed=7)
    est = LogisticRegression(backend=backend, max_iter=3, tol=None, random_state=0).fit(sp.csr_matrix(X), y)
    for name in ("decision_function", "predict_proba", "predict_log_proba", "predict"):
        got = getattr(est, name)(sp.csr_array(X))
        want = getattr(est, name)(X)
        if name == "predict":
            np.testing.assert_array_equal(got, want)
        else:
            np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14)
    assert est.score(sp.csc_matrix(X), y) == est.score(X, y)
    assert est.objective(sp.csr_matrix(X), y) == pytest.approx(est.objective(X, y), rel=1e-12)


def test_auto_step_size_equals_dense():
    from fastgd._smoothness import max_row_smoothness, top_eigenvalue

    X, _ = sparse_data("regression", n=300, d=30, seed=8)
    sw = np.random.default_rng(1).uniform(0.5, 2.0, X.shape[0])
    M = odd_csr(X, np.random.default_rng(2))
    for fit_intercept in (True, False):
        assert max_row_smoothness(M, sw, fit_intercept) == pytest.approx(
            max_row_smoothness(X, sw, fit_intercept), rel=1e-12
        )
        assert top_eigenvalue(M, sw, fit_intercept, max_rows=100) == pytest.approx(
            top_eigenvalue(X, sw, fit_intercept, max_rows=100), rel=1e-10
        )


# ------------------------------------------------------------------ kernel checks
def kernel_args(n=6, d=5):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((n, d)) * (rng.random((n, d)) < 0.5)
    data, indices, indptr = kernel_arrays(sp.csr_matrix(X))
    hp = np.zeros(P.N_HP)
    hp[P.ETA0] = 0.1
    hp[P.MOMENTUM] = 0.9
    codes = np.zeros(P.N_CODES, dtype=np.int64)
    codes[P.BATCH_SIZE] = 1
    codes[P.N_THREADS] = 1
    return {
        "data": data, "indices": indices, "indptr": indptr, "Y": rng.standard_normal((n, 1)),
        "sw": np.ones(n), "order": np.arange(n, dtype=np.int64), "state": np.zeros((2, 1, d + 1)),
        "hp": hp, "codes": codes,
    }


@pytest.mark.parametrize("backend", ALL_BACKENDS)
def test_kernel_matches_reference_on_unsorted_duplicated_csr(backend):
    """The kernels read a row's entries in storage order: no sorting is relied on."""
    rng = np.random.default_rng(3)
    X = rng.standard_normal((30, 8)) * (rng.random((30, 8)) < 0.4)
    M = odd_csr(X, rng)
    args = kernel_args(30, 8)
    args.update(zip(("data", "indices", "indptr"), kernel_arrays(M)))
    args["order"] = rng.permutation(30).astype(np.int64)
    args["hp"][P.L2] = 0.05
    ref = {**args, "state": args["state"].copy()}
    want = get_backend("numpy", sparse=True).epoch(**ref)
    got = get_backend(backend, sparse=True).epoch(**args)
    assert got == pytest.approx(want, rel=1e-12)
    np.testing.assert_allclose(args["state"], ref["state"], rtol=1e-10, atol=1e-13)
    assert np.abs(args["state"][0]).max() > 1e-3


@pytest.mark.parametrize("backend", ALL_BACKENDS)
@pytest.mark.parametrize(
    "corrupt,match",
    [
        (lambda a: a["indices"].__setitem__(0, 5), "indices must lie"),
        (lambda a: a["indices"].__setitem__(0, -1), "indices must lie"),
        (lambda a: a["indptr"].__setitem__(-1, a["indptr"][-1] + 1), "indptr must start at 0 and end"),
        (lambda a: a["indptr"].__setitem__(0, 1), "indptr must start at 0"),
        (lambda a: a.update(indptr=np.array([0, 3, 2, 5, 5, 6, len(a["data"])], dtype=np.int64)), "non-decreasing"),
        (lambda a: a.update(indptr=a["indptr"][:-1].copy()), "n \\+ 1"),
        (lambda a: a.update(indices=a["indices"][:-1].copy()), "indices has"),
        (lambda a: a.update(order=np.array([0, 1, 2, 3, 4, 6], dtype=np.int64)), "order holds"),
        (lambda a: a.update(sw=np.ones(5)), "rows"),
        (lambda a: a.update(state=np.zeros((2, 1, 4))), "indices must lie|state"),
    ],
)
def test_kernels_reject_bad_csr(backend, corrupt, match):
    args = kernel_args()
    corrupt(args)
    with pytest.raises(ValueError, match=match):
        get_backend(backend, sparse=True).epoch(**args)


@pytest.mark.parametrize("backend", FAST_BACKENDS)
def test_kernels_reject_int32_indices(backend):
    args = kernel_args()
    args["indices"] = args["indices"].astype(np.int32)
    with pytest.raises((ValueError, TypeError)):
        get_backend(backend, sparse=True).epoch(**args)


@pytest.mark.parametrize("backend", FAST_BACKENDS)
def test_dense_velocity_switch_gives_the_same_epoch(backend):
    """``lazy=False`` (the benchmark's dense-velocity baseline) runs the same algorithm."""
    module = get_backend(backend, sparse=True)
    args = kernel_args(40, 12)
    args["hp"][P.L2] = 0.01
    dense_args = {**args, "state": args["state"].copy()}
    assert module.uses_lazy_update(args["hp"], args["codes"])
    a = module.epoch(**args)
    b = module.epoch(**dense_args, lazy=False)
    assert a == pytest.approx(b, rel=1e-12)
    np.testing.assert_allclose(args["state"], dense_args["state"], rtol=1e-10, atol=1e-13)


# ------------------------------------------------------------------ lazy kernels' layout
@pytest.mark.parametrize("backend", FAST_BACKENDS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("batch,K", [(1, 1), (4, 1), (1, 3)])
def test_long_gaps_use_both_power_tables(backend, dtype, batch, K):
    """Gaps of 0 .. ~2000 steps (A^k = A^(128 m) A^l with m up to 15), one column seen
    only in the first and last rows, with and without a full catch-up inside the epoch."""
    rng = np.random.default_rng(11)
    n, d = 2000, 30
    X = rng.standard_normal((n, d)) * (rng.random((n, d)) < 0.15)
    X[:, 5] = 0.0
    X[0, 5], X[-1, 5] = 1.5, -2.0  # a gap of n - 1 steps
    X[:, 6] = rng.standard_normal(n) * (rng.random(n) < 0.02)
    args = kernel_args(n, d)
    args.update(zip(("data", "indices", "indptr"), kernel_arrays(sp.csr_matrix(X.astype(dtype)))))
    args["state"] = np.zeros((2, K, d + 1), dtype=dtype)
    args["Y"] = (rng.integers(0, K, (n, 1)) if K > 1 else rng.standard_normal((n, 1))).astype(dtype)
    args["sw"] = rng.uniform(0.5, 2.0, n).astype(dtype)
    args["codes"][P.LOSS] = 2 if K > 1 else 0
    args["codes"][P.BATCH_SIZE] = batch
    args["codes"][P.FIT_INTERCEPT] = 1
    args["codes"][P.T_START] = 7
    args["hp"][P.ETA0] = 0.01
    args["hp"][P.L2] = 0.03
    tol = {"rtol": 1e-10, "atol": 1e-12} if dtype == np.float64 else {"rtol": 2e-3, "atol": 2e-5}
    for sync_steps in (0, 300):
        state0 = rng.standard_normal((2, K, d + 1)).astype(dtype) * 0.1
        ref = {**args, "state": state0.copy()}
        want = get_backend("numpy", sparse=True).epoch(**ref)
        got_args = {**args, "state": state0.copy()}
        got = get_backend(backend, sparse=True).epoch(**got_args, sync_steps=sync_steps)
        assert got == pytest.approx(want, rel=1e-9 if dtype == np.float64 else 1e-3)
        np.testing.assert_allclose(got_args["state"], ref["state"], **tol)


def test_work_buffer_is_reused_aligned_and_per_thread():
    import threading

    from fastgd._sparse import record_size, work_buffer

    a = work_buffer("test-buffer", 1000)
    assert a.shape == (1000,) and a.ctypes.data % 64 == 0
    b = work_buffer("test-buffer", 500)
    assert b.ctypes.data == a.ctypes.data  # reused
    big = work_buffer("test-big", 3 << 20)
    assert big.shape == (3 << 20,) and big.ctypes.data % 64 == 0
    big[:] = 1  # writable
    other = []
    t = threading.Thread(target=lambda: other.append(work_buffer("test-buffer", 1000).ctypes.data))
    t.start()
    t.join()
    assert other[0] != a.ctypes.data  # another thread gets its own
    # K weights, K velocities and an int64 step per record, 16/32/64 bytes for small K
    assert record_size(1, 8) == 4 and record_size(1, 4) == 4
    assert record_size(3, 8) == 8 and record_size(2, 4) == 8 and record_size(10, 8) == 21


@pytest.mark.parametrize("backend", FAST_BACKENDS)
def test_concurrent_fits_in_threads_equal_sequential_fits(backend):
    """The lazy kernels' work buffers are per thread: fits running at once (the kernels
    release the GIL) give the sequential results."""
    from concurrent.futures import ThreadPoolExecutor

    X, y = sparse_data("binary", n=300, d=40, density=0.2)
    Xs = sp.csr_matrix(X)
    params = [{"momentum": m, "alpha": a} for m in (0.5, 0.9) for a in (0.01, 0.001)]

    def fit(p):
        return LogisticRegression(backend=backend, batch_size=1, max_iter=4, tol=None, random_state=1,
                                  learning_rate="constant", eta0=0.05, **p).fit(Xs, y)

    seq = [fit(p) for p in params]
    with ThreadPoolExecutor(4) as pool:
        par = list(pool.map(fit, params))
    for a, b in zip(seq, par):
        np.testing.assert_array_equal(a._state, b._state)
