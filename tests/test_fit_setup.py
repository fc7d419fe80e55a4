"""What ``fit`` does before and around its epochs: the "auto" backend, the finiteness
check of X that the first epoch stands in for, the label encoding's counting path, the
automatic step's statistics, and the block shuffle's row orders."""

import numpy as np
import pytest
import scipy.sparse as sp

import fastgd
import fastgd._backends
import fastgd._smoothness
from fastgd import LinearRegression, LogisticRegression
from fastgd._shuffle import block_rows, block_shuffle
from fastgd._smoothness import (
    _gram_eigenvalue,
    auto_learning_rate,
    auto_step,
    dense_row_sq_norms,
    max_row_smoothness,
    top_eigenvalue,
)
from fastgd.linear_model import _encode_small_integers

from .conftest import ALL_BACKENDS, FAST_BACKENDS, make_data

QUIET = {"max_iter": 3, "tol": None, "random_state": 0}


# ------------------------------------------------------------------ backend="auto"
def test_auto_is_the_default_and_runs_cython_when_built():
    assert LinearRegression().backend == "auto" and LogisticRegression().backend == "auto"
    X, y = make_data("binary", n=80)
    auto = LogisticRegression(**QUIET).fit(X, y)
    cy = LogisticRegression(backend="cython", **QUIET).fit(X, y)
    assert auto.backend_ == "cython" and cy.backend_ == "cython"
    np.testing.assert_array_equal(auto.coef_, cy.coef_)
    numba = LinearRegression(backend="numba", **QUIET).fit(*make_data("regression"))
    assert numba.backend_ == "numba"


def test_auto_falls_back_in_order(monkeypatch):
    real = fastgd._backends.get_backend
    missing = set()

    def get_backend(name, sparse=False):
        if name in missing:
            raise ImportError(f"{name} is not built")
        return real(name, sparse)

    monkeypatch.setattr(fastgd._backends, "get_backend", get_backend)
    for gone, expected in (({"cython"}, "numba"), ({"cython", "numba"}, "numpy"), (set(), "cython")):
        missing.clear()
        missing.update(gone)
        monkeypatch.setattr(fastgd._backends, "_resolved", None)
        assert fastgd._backends.resolve("auto") == expected
        assert fastgd._backends.resolve("numba") == "numba"  # an explicit name is kept


def test_auto_backend_on_sparse_and_dask_records_what_ran():
    X, y = make_data("regression", n=50)
    est = LinearRegression(**QUIET).fit(sp.csr_matrix(X), y)
    assert est.backend_ == "cython"
    da = pytest.importorskip("dask.array")
    est = LinearRegression(**QUIET, batch_size="full").fit(da.from_array(X, chunks=20), da.from_array(y, chunks=20))
    assert est.backend_ == "cython"
    ref = LinearRegression(**QUIET, optimizer="sgd", batch_size="full", backend="numpy").fit(X, y)
    np.testing.assert_allclose(est.coef_, ref.coef_, rtol=1e-10, atol=1e-12)


# ------------------------------------------------------------------ finiteness of X
def _with_bad(X, value, row):
    X = X.copy()
    X[row, 1] = value
    return X


@pytest.mark.parametrize("backend", ALL_BACKENDS)
@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize(("batch_size", "learning_rate"), [(1, "auto"), (7, "constant"), ("full", "auto"), (7, "invscaling")])
@pytest.mark.parametrize("sparse", [False, True], ids=["dense", "csr"])
def test_nan_or_inf_in_x_is_reported_as_such(backend, value, batch_size, learning_rate, sparse):
    """The first epoch reads every value: a NaN or an infinity anywhere (even in a row
    of weight 0) is reported as the input's fault, never as a divergence or a step."""
    X, y = make_data("regression", n=50)
    Xc, yc = make_data("multiclass", n=50)
    sw = np.ones(50)
    sw[37] = 0.0
    for est, data, target in (
        (LinearRegression, X, y),
        (LogisticRegression, Xc, yc),
    ):
        bad = _with_bad(data, value, 37)
        bad = sp.csr_matrix(bad) if sparse else bad
        model = est(backend=backend, batch_size=batch_size, learning_rate=learning_rate, **QUIET)
        with pytest.raises(ValueError, match="Input X contains (NaN|infinity)"):
            model.fit(bad, target, sample_weight=sw)
        assert not hasattr(model, "coef_")


@pytest.mark.parametrize("backend", FAST_BACKENDS)
def test_nan_in_held_out_or_training_rows_with_early_stopping(backend):
    X, y = make_data("binary", n=60)
    for row in range(0, 60, 7):  # rows on both sides of the validation split
        with pytest.raises(ValueError, match="Input X contains NaN"):
            LogisticRegression(backend=backend, early_stopping=True, **QUIET).fit(_with_bad(X, np.nan, row), y)


@pytest.mark.parametrize("backend", ALL_BACKENDS)
def test_nan_in_partial_fit_leaves_the_model_as_it_was(backend):
    X, y = make_data("regression", n=40)
    est = LinearRegression(backend=backend, random_state=0).partial_fit(X, y)
    before = (est.coef_.copy(), est.t_, est._state.copy())
    with pytest.raises(ValueError, match="Input X contains infinity"):
        est.partial_fit(_with_bad(X, np.inf, 3), y)
    np.testing.assert_array_equal(est.coef_, before[0])
    assert est.t_ == before[1]
    np.testing.assert_array_equal(est._state, before[2])


def test_multioutput_and_float32_nan_reported():
    X, Y = make_data("multioutput", n=40)
    with pytest.raises(ValueError, match="Input X contains NaN"):
        LinearRegression(**QUIET).fit(_with_bad(X, np.nan, 0), Y)
    with pytest.raises(ValueError, match="Input X contains infinity"):
        LinearRegression(**QUIET).fit(_with_bad(X.astype(np.float32), np.inf, 39), Y[:, 0])


def test_finite_data_are_fitted_as_before():
    """A deferred check changes nothing for finite data: the same iterates as the
    reference, and no copy of X."""
    X, y = make_data("binary", n=70)
    a = LogisticRegression(backend="cython", batch_size=4, **QUIET).fit(X, y)
    b = LogisticRegression(backend="numpy", batch_size=4, **QUIET).fit(X, y)
    np.testing.assert_allclose(a.coef_, b.coef_, rtol=1e-10, atol=1e-12)


# ------------------------------------------------------------------ labels
@pytest.mark.parametrize("seed", range(6))
def test_counting_label_encoding_equals_unique(seed):
    rng = np.random.default_rng(seed)
    dtype = [np.int64, np.int8, np.uint8, np.int32, np.uint16, bool][seed]
    lo, hi = (0, 2) if dtype is bool else (-50 if np.iinfo(dtype).min else 3, 40)
    y = rng.integers(lo, hi, size=200).astype(dtype)
    classes, idx = _encode_small_integers(y)
    expected = np.unique(y)
    np.testing.assert_array_equal(classes, expected)
    assert classes.dtype == expected.dtype
    np.testing.assert_array_equal(idx, np.searchsorted(expected, y))


def test_label_encoding_falls_back_where_counting_does_not_pay():
    assert _encode_small_integers(np.array([0, 10**9])) is None  # a wide span
    assert _encode_small_integers(np.array([1.0, 2.0])) is None  # floats
    assert _encode_small_integers(np.array([[0, 1]])) is None  # 2-D
    assert _encode_small_integers(np.array([2**63 + 1, 2**63 + 2], dtype=np.uint64)) is None


@pytest.mark.parametrize("labels", [np.array([-3, 5, 5, 11]), np.array([0, 2**40, 0, 2**40])])
def test_integer_and_string_labels_fit_the_same(labels):
    """Integer labels (counted) and strings of the same order (sorted by np.unique)
    give the same encoding, hence bit-identical fits."""
    X, _ = make_data("multiclass", n=60)
    y = labels[np.arange(60) % len(labels)]
    rank = np.searchsorted(np.unique(y), y)
    names = np.array(["alpha", "beta", "gamma"])[rank]
    a = LogisticRegression(**QUIET).fit(X, y)
    b = LogisticRegression(**QUIET).fit(X, names)
    np.testing.assert_array_equal(a.classes_, np.unique(y))
    np.testing.assert_array_equal(a.coef_, b.coef_)
    np.testing.assert_array_equal(a.predict(X), np.unique(y)[np.searchsorted(b.classes_, b.predict(X))])
    with pytest.raises(ValueError, match="at least 2 classes"):
        LogisticRegression().fit(X, np.full(60, 7))


# ------------------------------------------------------------------ the automatic step
@pytest.mark.parametrize("fit_intercept", [True, False])
@pytest.mark.parametrize("scale", [1.0, 1e120, 1e-120])
def test_gram_eigenvalue_is_the_converged_power_iteration(fit_intercept, scale):
    rng = np.random.default_rng(1)
    X = (rng.standard_normal((400, 12)) + 0.3) @ rng.standard_normal((12, 12))
    sw = rng.random(400) + 0.5
    exact = _gram_eigenvalue(X, sw, fit_intercept)
    Xt = np.hstack([X, np.ones((400, 1)) * fit_intercept]) * np.sqrt(sw)[:, None]
    assert exact == pytest.approx(np.linalg.eigvalsh(Xt.T @ Xt / 400)[-1], rel=1e-12)
    power = top_eigenvalue(X, sw, fit_intercept, n_iter=5000, rtol=1e-15)
    assert power == pytest.approx(exact, rel=1e-9)
    if fit_intercept and scale != 1.0:
        assert _gram_eigenvalue(X * scale, sw, fit_intercept) is None  # left to the power iteration
    else:
        assert _gram_eigenvalue(X * scale, sw, fit_intercept) == pytest.approx(exact * scale**2, rel=1e-13)


def test_sparse_rows_take_the_same_eigenvalue_as_dense():
    X, _ = make_data("regression", n=300, d=20)
    X[np.abs(X) < 0.2] = 0.0
    sw = np.linspace(0.5, 1.5, 300)
    for fit_intercept in (True, False):
        assert top_eigenvalue(sp.csr_matrix(X), sw, fit_intercept) == top_eigenvalue(X, sw, fit_intercept)


def test_threaded_row_norms_equal_one_thread(monkeypatch):
    X, _ = make_data("regression", n=1001, d=7)
    one = dense_row_sq_norms(X, 1)
    np.testing.assert_array_equal(one, np.einsum("ij,ij->i", X, X))
    monkeypatch.setattr(fastgd._smoothness, "THREADED_MIN_VALUES", 100)
    np.testing.assert_array_equal(dense_row_sq_norms(X, 3), one)
    X[500, 3] = np.nan  # the pass finds a NaN
    assert np.isnan(max_row_smoothness(X, np.ones(1001), True, n_threads=3))


@pytest.mark.parametrize("batch_size", [1, 8, 60])
def test_auto_step_reads_only_the_statistics_it_needs(batch_size):
    X, _ = make_data("regression", n=60, d=5)
    sw = np.ones(60)
    full = auto_step(n=60, batch_size=batch_size, max_row_smoothness=max_row_smoothness(X, sw, True),
                     top_eigenvalue=top_eigenvalue(X, sw, True), curvature=1.0, l2=1e-4, momentum=0.9)
    got = auto_learning_rate(X, sw, fit_intercept=True, curvature=1.0, l2=1e-4, batch_size=batch_size, momentum=0.9)
    assert got == full


# ------------------------------------------------------------------ shuffle="blocks"
@pytest.mark.parametrize(("n", "rows"), [(0, 4), (1, 4), (10, 3), (97, 5), (200, 1), (50, 80)])
def test_block_shuffle_is_a_permutation_of_whole_blocks(n, rows):
    order = block_shuffle(np.random.RandomState(3), n, rows, buffer_blocks=4)
    assert order.dtype == np.int64
    np.testing.assert_array_equal(np.sort(order), np.arange(n))
    # each run of 4 blocks' worth of positions holds whole blocks of consecutive rows
    blocks = order // rows
    pos = 0
    while pos < n:
        chunk = blocks[pos:]
        members = []
        size = 0
        for b in dict.fromkeys(chunk):
            if len(members) == 4:
                break
            members.append(b)
            size += min(rows, n - b * rows)
        assert sorted(set(blocks[pos:pos + size])) == sorted(members)
        pos += size


def test_block_shuffle_draws_a_new_order_each_time_from_the_stream():
    rng = np.random.RandomState(0)
    a, b = block_shuffle(rng, 1000, 10), block_shuffle(rng, 1000, 10)
    assert not np.array_equal(a, b)
    np.testing.assert_array_equal(a, block_shuffle(np.random.RandomState(0), 1000, 10))
    # the rows of a buffer are mixed, not left in block order
    assert not np.array_equal(a[:160], np.sort(a[:160]))


def test_block_rows_from_row_bytes():
    assert block_rows(np.zeros((10, 100))) == 16384 // 800
    assert block_rows(np.zeros((10, 100), dtype=np.float32)) == 16384 // 400
    assert block_rows(np.zeros((10, 5000))) == 1
    M = sp.random(1000, 10_000, density=0.005, format="csr", random_state=0)  # ~50 per row
    assert block_rows(M) == int(16384 // (M.nnz / 1000 * 16))


@pytest.mark.parametrize("backend", FAST_BACKENDS)
@pytest.mark.parametrize("sparse", [False, True], ids=["dense", "csr"])
def test_block_shuffle_same_iterates_on_every_backend(backend, sparse):
    X, y = make_data("binary", n=400, d=6)
    if sparse:
        X[np.abs(X) < 0.15] = 0.0
        X = sp.csr_matrix(X)
    kw = dict(shuffle="blocks", batch_size=3, momentum=0.9, **QUIET)
    ref = LogisticRegression(backend="numpy", **kw).fit(X, y)
    got = LogisticRegression(backend=backend, **kw).fit(X, y)
    np.testing.assert_allclose(got.coef_, ref.coef_, rtol=1e-10, atol=1e-12)
    uniform = LogisticRegression(backend=backend, **{**kw, "shuffle": True}).fit(X, y)
    assert not np.allclose(uniform.coef_, got.coef_, rtol=1e-6)  # another order


def test_block_shuffle_converges_on_sorted_data():
    """Rows stored sorted by label: blocks mix them within each buffer of 16 blocks, and
    the fit reaches the accuracy of the uniform shuffle."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((6000, 10))
    y = (X @ rng.standard_normal(10) + 0.3 * rng.standard_normal(6000) > 0).astype(int)
    order = np.argsort(y, kind="stable")
    X, y = X[order], y[order]
    kw = {"batch_size": 8, "max_iter": 5, "tol": None, "random_state": 0}
    blocks = LogisticRegression(shuffle="blocks", **kw).fit(X, y)
    uniform = LogisticRegression(shuffle=True, **kw).fit(X, y)
    in_order = LogisticRegression(shuffle=False, **kw).fit(X, y)
    assert blocks.score(X, y) > uniform.score(X, y) - 0.01
    assert blocks.objective(X, y) < uniform.objective(X, y) * 1.02
    assert in_order.objective(X, y) > uniform.objective(X, y) * 1.02  # the order matters here


def test_shuffle_parameter_is_validated():
    X, y = make_data("regression")
    with pytest.raises(ValueError, match="shuffle"):
        LinearRegression(shuffle="rows").fit(X, y)
