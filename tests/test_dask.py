"""Fitting on Dask arrays on a real ``distributed`` cluster (2 worker processes).

Equivalence with in-memory fits (full batch to 1e-10; mini-batch and SGD with
``dask_mode="sequential"`` and the same visiting order; the averaged mode is in
``test_dask_average.py``), uneven chunks and a one-row chunk, float32, multiclass, multi-output,
lazy predictions, validation, and that no X block ever leaves its worker.
"""

import logging
import subprocess
import sys
import types
import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

distributed = pytest.importorskip("distributed")
da = pytest.importorskip("dask.array")
import dask

from fastgd import DivergenceError, LinearRegression, LogisticRegression
from fastgd import _dask as fdask
from fastgd._backends import get_backend

from .conftest import ALL_BACKENDS, clear_transfer_logs, make_data, moved_keys
from .conftest import assert_same_fit as same_fit

N = 61
CHUNKS = (20, 1, 25, 15)  # uneven, with a one-row chunk
CASES = {  # kind -> estimator class
    "regression": LinearRegression,
    "multioutput": LinearRegression,
    "binary": LogisticRegression,
    "multiclass": LogisticRegression,
}


@pytest.fixture(scope="module")
def client():
    with (
        distributed.LocalCluster(
            n_workers=2,
            processes=True,
            threads_per_worker=1,
            dashboard_address=None,
            silence_logs=logging.ERROR,
        ) as cluster,
        distributed.Client(cluster) as c,
    ):
        yield c


def to_dask(client, chunks, *arrays):
    """Dask arrays with the given row chunks, persisted: their blocks live on workers."""
    out = []
    for a in arrays:
        if a is None:
            out.append(None)
            continue
        a = np.asarray(a)
        out.append(da.from_array(a, chunks=(chunks,) + a.shape[1:]))
    return client.persist(out) if client is not None else out


def assert_same_fit(ref, got, rtol=1e-10, atol=1e-12):
    same_fit(ref, got, rtol=rtol, atol=atol)
    assert np.abs(ref.coef_).max() > 1e-3  # the fit moved


# ------------------------------------------------------------------ equivalence
@pytest.mark.parametrize("backend", ALL_BACKENDS)
@pytest.mark.parametrize("kind", sorted(CASES))
def test_full_batch_equals_in_memory(client, backend, kind):
    cls = CASES[kind]
    X, y = make_data(kind, n=N, seed=2)
    sw = np.random.default_rng(0).uniform(0.5, 2.0, N)
    params = {
        "batch_size": "full",
        "max_iter": 4,
        "tol": None,
        "momentum": 0.9,
        "nesterov": kind == "binary",
        "penalty": "elasticnet",
        "alpha": 0.05,
        "l1_ratio": 0.3,
        "backend": backend,
    }
    if kind == "multiclass":
        params["class_weight"] = "balanced"
    if kind == "binary":
        params["class_weight"] = {"yes": 2.0}
    ref = cls(**params).fit(X, y, sample_weight=sw)
    Xd, yd, swd = to_dask(client, CHUNKS, X, y, sw)
    got = cls(**params).fit(Xd, yd, sample_weight=swd)
    assert_same_fit(ref, got)
    assert got.learning_rate_ == ref.learning_rate_  # "auto" sees the same rows
    assert got.coef_.dtype == np.float64
    if cls is LogisticRegression:
        np.testing.assert_array_equal(got.classes_, ref.classes_)


@pytest.mark.parametrize("backend", ALL_BACKENDS)
def test_sgd_in_storage_order_equals_in_memory(client, backend):
    X, y = make_data("multioutput", n=N)
    params = {"batch_size": 1, "shuffle": False, "max_iter": 3, "tol": None, "backend": backend, "dask_mode": "sequential"}
    ref = LinearRegression(**params).fit(X, y)
    got = LinearRegression(**params).fit(*to_dask(client, CHUNKS, X, y))
    assert_same_fit(ref, got)
    assert got.t_ == 3 * N


def test_minibatch_with_shuffled_blocks_equals_in_memory_with_that_order(client):
    """Blocks of whole batches: the fit is the in-memory fit over the visiting order of
    ``epoch_plan``/``block_order`` (replayed here through the in-memory random_state)."""
    X, y = make_data("multiclass", n=60, seed=4)
    chunks, batch, epochs = (20, 10, 25, 5), 5, 3
    offsets = np.cumsum((0,) + chunks[:-1])
    plan_rng = np.random.RandomState(11)
    orders = []
    for _ in range(epochs):
        plan = fdask.epoch_plan(plan_rng, len(chunks), shuffle=True)
        assert sorted(b for b, _ in plan) == [0, 1, 2, 3]
        orders.append(np.concatenate([offsets[b] + fdask.block_order(s, chunks[b]) for b, s in plan]))
    assert not np.array_equal(orders[0], np.arange(60))

    class Replay(np.random.RandomState):
        def permutation(self, n):
            order = orders.pop(0)
            assert len(order) == n
            return order

    params = {"batch_size": batch, "max_iter": epochs, "tol": None, "momentum": 0.9, "nesterov": True, "alpha": 0.01}
    params["dask_mode"] = "sequential"  # (ignored in memory)
    got = LogisticRegression(random_state=11, **params).fit(*to_dask(client, chunks, X, y))
    ref = LogisticRegression(random_state=Replay(0), **params).fit(X, y)
    assert_same_fit(ref, got)
    assert got.t_ == epochs * 60 // batch
    # and shuffling changes the fit; a fixed random_state reproduces it
    unshuffled = LogisticRegression(shuffle=False, **params).fit(*to_dask(client, chunks, X, y))
    assert np.abs(unshuffled.coef_ - got.coef_).max() > 1e-3
    again = LogisticRegression(random_state=11, **params).fit(*to_dask(client, chunks, X, y))
    np.testing.assert_array_equal(again.coef_, got.coef_)


def test_batches_do_not_cross_blocks(client):
    """t_ counts ceil(rows / batch_size) updates per block."""
    X, y = make_data("regression", n=N)
    got = LinearRegression(batch_size=8, max_iter=2, tol=None, random_state=0, dask_mode="sequential").fit(*to_dask(client, CHUNKS, X, y))
    assert got.t_ == 2 * sum(-(-c // 8) for c in CHUNKS)  # 2 * (3 + 1 + 4 + 2)


def test_float32_stays_float32(client):
    X, y = make_data("multiclass", n=N, dtype=np.float32)
    params = {"optimizer": "sgd", "batch_size": "full", "max_iter": 5, "tol": None}
    got = LogisticRegression(**params).fit(*to_dask(client, CHUNKS, X, y))
    ref64 = LogisticRegression(**params).fit(*to_dask(client, CHUNKS, X.astype(np.float64), y))
    ref32 = LogisticRegression(**params).fit(X, y)
    assert got.coef_.dtype == np.float32
    np.testing.assert_allclose(got.coef_, ref64.coef_, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(got.coef_, ref32.coef_, rtol=1e-4, atol=1e-5)
    Xd = to_dask(client, CHUNKS, X)[0]
    assert got.predict_proba(Xd).dtype == np.float32


def test_warm_start_and_partial_fit(client):
    X, y = make_data("binary", n=N)
    Xd, yd = to_dask(client, (30, 31), X, y)
    params = {"optimizer": "sgd", "batch_size": "full", "tol": None}
    four = LogisticRegression(max_iter=4, **params).fit(Xd, yd)
    warm = LogisticRegression(max_iter=2, warm_start=True, **params).fit(Xd, yd)
    warm.fit(Xd, yd)
    np.testing.assert_allclose(warm.coef_, four.coef_, rtol=1e-12)
    assert warm.t_ == 4
    # partial_fit: blocks of whole batches in storage order = in-memory partial_fit
    Xd, yd = to_dask(client, (20, 10, 30, 1), X, y)
    params = {"batch_size": 10, "shuffle": False, "dask_mode": "sequential"}
    with pytest.raises(ValueError, match="classes must be passed"):
        LogisticRegression(**params).partial_fit(Xd, yd)
    ref = LogisticRegression(**params)
    got = LogisticRegression(**params)
    for _ in range(2):
        ref.partial_fit(X, y, classes=["no", "yes"])
        got.partial_fit(Xd, yd, classes=["no", "yes"])
    np.testing.assert_allclose(got.coef_, ref.coef_, rtol=1e-10)
    assert got.t_ == ref.t_ == 14
    assert got.n_iter_ == 2
    with pytest.raises(ValueError, match="labels not in classes"):
        got.partial_fit(*to_dask(client, (N,), X, np.where(y == "yes", "maybe", y)))


# ------------------------------------------------------------------ predictions
def test_predictions_are_lazy_and_blockwise(client):
    X, y = make_data("multiclass", n=N)
    Xd, yd = to_dask(client, CHUNKS, X, y)
    clf = LogisticRegression(batch_size="full", max_iter=5, tol=None).fit(Xd, yd)
    for name in ("predict", "decision_function", "predict_proba", "predict_log_proba"):
        out = getattr(clf, name)(Xd)
        assert isinstance(out, da.Array), name
        assert out.chunks[0] == CHUNKS
        expected = getattr(clf, name)(X)
        if name == "predict":
            np.testing.assert_array_equal(out.compute(), expected)
        else:
            np.testing.assert_allclose(out.compute(), expected, rtol=1e-12)
    assert clf.score(Xd, yd) == pytest.approx(clf.score(X, y))
    X, y = make_data("multioutput", n=N)
    Xd, yd = to_dask(client, CHUNKS, X, y)
    reg = LinearRegression(batch_size="full", max_iter=5, tol=None).fit(Xd, yd)
    assert reg.predict(Xd).shape == (N, 2)
    reg1 = LinearRegression(batch_size="full", max_iter=5, tol=None).fit(Xd, yd[:, 0])
    pred = reg1.predict(Xd)
    assert pred.shape == (N,) and isinstance(pred, da.Array)
    np.testing.assert_allclose(pred.compute(), reg1.predict(X), rtol=1e-12)
    assert reg1.objective(Xd, yd[:, 0]) == pytest.approx(reg1.objective(X, y[:, 0]), rel=1e-12)
    with pytest.raises(ValueError, match="features"):
        reg1.predict(Xd[:, :3])


# ------------------------------------------------------------------ data stay put
def test_x_blocks_never_leave_their_worker(client):
    X, y = make_data("binary", n=N)
    Xd, yd = to_dask(client, CHUNKS, X, y)
    x_keys = {str(k[0]) for k in Xd.__dask_keys__()}
    distributed.wait([Xd, yd])
    before = client.who_has(distributed.futures_of(Xd))
    assert all(len(holders) == 1 for holders in before.values())

    client.run(clear_transfer_logs)
    clf = LogisticRegression(batch_size="full", max_iter=3, tol=None).fit(Xd, yd)
    LogisticRegression(batch_size=4, max_iter=2, tol=None, random_state=0, dask_mode="sequential").fit(Xd, yd)
    clf.partial_fit(Xd, yd)
    clf.predict(Xd).compute()
    keys = {k for ks in client.run(moved_keys).values() for k in ks}
    # the logs work: the gradients and states did travel (to the client and between workers)
    assert any(k.startswith("fastgd-gradient") for k in keys)
    assert any(k.startswith("fastgd-epoch") for k in keys)
    assert not {k for k in keys if k in x_keys}
    assert not [k for k in keys if k.startswith(("fastgd-load", "fastgd-block"))]
    assert client.who_has(distributed.futures_of(Xd)) == before  # not even copied


# ------------------------------------------------------------------ validation
@pytest.mark.parametrize(
    "where, value, match",
    [
        ("X", np.nan, "Input X contains NaN"),
        ("X", np.inf, "Input X contains infinity"),
        ("y", np.nan, "Input y contains NaN"),
        ("sw", -1.0, "Negative values in data passed to `sample_weight`"),
        ("sw", np.inf, "Input sample_weight contains infinity"),
    ],
)
def test_bad_values_are_found_blockwise(client, where, value, match):
    X, y = make_data("regression", n=N)
    sw = np.ones(N)
    {"X": X, "y": y, "sw": sw}[where][45] = value  # in the third block
    reg = LinearRegression(max_iter=2)
    with pytest.raises(ValueError, match=match):
        reg.fit(*to_dask(client, CHUNKS, X, y), sample_weight=to_dask(client, CHUNKS, sw)[0])
    assert not hasattr(reg, "n_features_in_")  # a failed fit leaves nothing behind


def test_bad_shapes_labels_and_parameters(client):
    X, y = make_data("binary", n=N)
    Xd, yd = to_dask(client, CHUNKS, X, y)
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        LogisticRegression().fit(Xd, yd[:-1])
    with pytest.raises(ValueError, match="2D array"):
        LogisticRegression().fit(Xd[:, 0], yd)
    with pytest.raises(ValueError, match="at least 2 classes"):
        LogisticRegression().fit(Xd, da.from_array(np.full(N, "yes"), chunks=20))
    with pytest.raises(ValueError, match="Unknown label type"):
        LogisticRegression().fit(Xd, da.from_array(np.linspace(0, 1, N), chunks=20))
    with pytest.raises(NotImplementedError, match="early_stopping=True on Dask input needs a validation set"):
        LogisticRegression(early_stopping=True).fit(Xd, yd)
    with pytest.raises(ValueError, match="early_stopping=False"):
        LogisticRegression(early_stopping=False).fit(Xd, yd, X_val=X, y_val=y)
    with pytest.raises(ValueError, match="momentum"):
        LogisticRegression(nesterov=True, momentum=0.0).fit(Xd, yd)
    with pytest.raises(ValueError, match="must not sum to zero"):
        LogisticRegression().fit(Xd, yd, sample_weight=np.zeros(N))
    for huge_or_tiny in (1e308, 1e-320):  # the sum overflows; n / sum overflows
        with pytest.raises(ValueError, match="beyond what float64 can normalise"):
            LogisticRegression().fit(Xd, yd, sample_weight=np.full(N, huge_or_tiny))
    # in-memory y and weights, chunked like X, and a column-vector y
    ref = LogisticRegression(optimizer="sgd", batch_size="full", max_iter=2, tol=None).fit(X, y, sample_weight=2.0)
    with pytest.warns(Warning, match="column-vector y"):
        got = LogisticRegression(optimizer="sgd", batch_size="full", max_iter=2, tol=None).fit(
            Xd, y[:, None], sample_weight=2.0)
    np.testing.assert_allclose(got.coef_, ref.coef_, rtol=1e-10)


@pytest.mark.parametrize("kind", ["binary", "regression"])
def test_early_stopping_on_a_validation_set(client, kind):
    """X_val, y_val make early stopping possible on Dask input, in memory or Dask, and
    the fit equals the in-memory fit with the same validation set."""
    cls = CASES[kind]
    X, y = make_data(kind, n=N, seed=3)
    X_val, y_val = make_data(kind, n=30, seed=4)
    params = {"optimizer": "sgd", "batch_size": "full", "early_stopping": True, "n_iter_no_change": 2, "tol": 1e-3, "max_iter": 100}
    ref = cls(**params).fit(X, y, X_val=X_val, y_val=y_val)
    assert 2 < ref.n_iter_ < 100  # stopped by the validation score
    Xd, yd = to_dask(client, CHUNKS, X, y)
    for X_v, y_v in [(X_val, y_val), to_dask(client, (15, 15), X_val, y_val)]:
        got = cls(**params).fit(Xd, yd, X_val=X_v, y_val=y_v)
        assert_same_fit(ref, got)
        np.testing.assert_allclose(got.validation_scores_, ref.validation_scores_, rtol=1e-10)
    with pytest.raises(ValueError, match="validation data .*expecting 4 features"):
        cls(**params).fit(Xd, yd, X_val=X_val[:, :3], y_val=y_val)


def test_divergence_and_convergence_warning(client):
    X, y = make_data("regression", n=N)
    Xd, yd = to_dask(client, CHUNKS, X * 100, y)
    reg = LinearRegression(batch_size="full", max_iter=3, tol=None).fit(Xd, yd)
    coef = reg.coef_.copy()
    with pytest.raises(DivergenceError, match="diverged"):
        reg.set_params(learning_rate="constant", eta0=10.0, max_iter=50).fit(Xd, yd)
    np.testing.assert_array_equal(reg.coef_, coef)
    with pytest.warns(ConvergenceWarning, match="max_iter=2"):
        LinearRegression(batch_size="full", max_iter=2, tol=1e-12).fit(Xd, yd)


def test_auto_step_uses_the_same_rows_as_in_memory(client):
    """Past 10000 rows the eigenvalue estimate samples every (n // 10000)-th row: the
    blocks must pick the same global rows."""
    rng = np.random.default_rng(5)
    n = 25_001
    X = rng.standard_normal((n, 3)) * [1.0, 3.0, 0.2]
    y = X @ [1.0, -2.0, 0.5]
    params = {"batch_size": 64, "max_iter": 1, "tol": None, "shuffle": False}
    ref = LinearRegression(**params).fit(X, y)
    got = LinearRegression(**params).fit(*to_dask(client, (7001, 9000, 9000), X, y))
    assert got.learning_rate_ == ref.learning_rate_


# ------------------------------------------------------------------ without a cluster
def test_local_scheduler_without_client():
    X, y = make_data("multioutput", n=N)
    params = {"optimizer": "sgd", "batch_size": "full", "max_iter": 3, "tol": None, "momentum": 0.5}
    ref = LinearRegression(**params).fit(X, y)
    with dask.config.set(scheduler="synchronous"):
        Xd, yd = to_dask(None, CHUNKS, X, y)
        assert isinstance(fdask.blocks._executor(Xd), fdask.blocks._Local)
        got = LinearRegression(**params).fit(Xd, yd)
        pred = got.predict(Xd).compute()
    assert_same_fit(ref, got)
    np.testing.assert_allclose(pred, ref.predict(X), rtol=1e-10)


def test_backend_without_gradient_kernel_is_named(monkeypatch):
    X, y = make_data("regression", n=10)
    epoch_only = types.SimpleNamespace(epoch=get_backend("numpy").epoch)
    monkeypatch.setattr(fdask.prepare, "get_backend", lambda name: epoch_only)
    with pytest.raises(ValueError, match="no 'gradient' kernel"):
        LinearRegression().fit(*to_dask(None, (10,), X, y))
    monkeypatch.setattr(fdask.prepare, "get_backend", lambda name: object())
    with pytest.raises(ValueError, match="no 'epoch' kernel"):
        LinearRegression().fit(*to_dask(None, (10,), X, y))


def test_missing_dask_gives_the_install_command(monkeypatch):
    import fastgd

    monkeypatch.setitem(sys.modules, "fastgd._dask", None)  # import fails, as without dask
    monkeypatch.delattr(fastgd, "_dask")
    fake = type("Array", (), {"__module__": "dask.array.core"})()
    with pytest.raises(ImportError, match=r'pip install "fastgd\[dask\]"'):
        LinearRegression().fit(fake, np.zeros(3))
    X, y = make_data("regression", n=10)
    reg = LinearRegression(max_iter=2, tol=None).fit(X, y)  # NumPy input does not need dask
    with pytest.raises(ImportError, match="fastgd"):
        reg.predict(fake)


def test_numpy_fits_do_not_import_dask():
    code = (
        "import sys, numpy as np; from fastgd import LinearRegression; "
        "m = LinearRegression(max_iter=2, backend='numpy').fit(np.eye(5), np.arange(5.0)); m.predict(np.eye(5)); "
        "print(sorted(k for k in sys.modules if k.split('.')[0] in ('dask', 'distributed')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# ------------------------------------------------------------------ optional
@pytest.mark.filterwarnings("ignore:Dask currently has limited support for converting pandas")
def test_dataframe_and_series(client):
    dd = pytest.importorskip("dask.dataframe")
    pd = pytest.importorskip("pandas")
    X, y = make_data("binary", n=N)
    frame = pd.DataFrame(X, columns=[f"f{j}" for j in range(X.shape[1])])
    ddf = dd.from_pandas(frame, npartitions=3)
    ys = dd.from_pandas(pd.Series(y), npartitions=3)
    params = {"optimizer": "sgd", "batch_size": "full", "max_iter": 3, "tol": None}
    got = LogisticRegression(**params).fit(ddf, ys)
    ref = LogisticRegression(**params).fit(frame, y)
    np.testing.assert_allclose(got.coef_, ref.coef_, rtol=1e-10)
    np.testing.assert_array_equal(got.feature_names_in_, ref.feature_names_in_)
    np.testing.assert_array_equal(got.predict(ddf).compute(), ref.predict(frame))


def test_dask_ml_incremental(client):
    wrappers = pytest.importorskip("dask_ml.wrappers")
    X, y = make_data("binary", n=N)
    Xd, yd = to_dask(client, (20, 20, 21), X, y)
    inc = wrappers.Incremental(
        LogisticRegression(batch_size=5, shuffle=False), scoring="accuracy", shuffle_blocks=False
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        inc.fit(Xd, yd, classes=["no", "yes"])
    ref = LogisticRegression(batch_size=5, shuffle=False)
    for lo, hi in ((0, 20), (20, 40), (40, 61)):
        ref.partial_fit(X[lo:hi], y[lo:hi], classes=["no", "yes"])
    np.testing.assert_allclose(inc.estimator_.coef_, ref.coef_, rtol=1e-10)


# ------------------------------------------------------------------ reliability
def test_failed_dask_fit_leaves_a_fitted_model_as_it_was(client, monkeypatch):
    """A Dask fit that fails (a NaN found on a worker, or Ctrl-C between epochs) leaves
    the model fitted before it exactly as it was."""
    import pickle

    X, y = make_data("multiclass", n=N)
    est = LogisticRegression(batch_size="full", max_iter=3, tol=None, momentum=0.9).fit(X, y)
    before = pickle.dumps(est)
    bad = X.copy()
    bad[45, 1] = np.nan  # in the third block
    with pytest.raises(ValueError, match="Input X contains NaN"):
        est.fit(*to_dask(client, CHUNKS, bad[:, :3], y))  # another feature count, too
    calls = []

    def interrupted(self):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return original(self)

    original = fdask.DaskRun.epoch
    monkeypatch.setattr(fdask.DaskRun, "epoch", interrupted)
    with pytest.raises(KeyboardInterrupt):
        est.fit(*to_dask(client, CHUNKS, X, y))
    assert len(calls) == 2
    restored = pickle.loads(before)
    for name in ("coef_", "intercept_", "_state", "t_", "n_iter_", "loss_curve_", "n_features_in_", "classes_"):
        np.testing.assert_array_equal(getattr(est, name), getattr(restored, name), err_msg=name)


hypothesis = pytest.importorskip("hypothesis")
st = hypothesis.strategies


@st.composite
def _dask_problem(draw):
    n = draw(st.integers(2, 30))
    cuts = sorted(draw(st.sets(st.integers(1, n - 1), max_size=4))) if n > 2 else []
    chunks = tuple(np.diff([0, *cuts, n]).tolist())
    kind = draw(st.sampled_from(sorted(CASES)))
    params = {
        "optimizer": "sgd",  # (Dask input runs the kernels' rules)
        "batch_size": draw(st.sampled_from(["full", 1])),
        "shuffle": False,  # storage order: the in-memory fit visits the same rows
        "max_iter": draw(st.integers(1, 3)),
        "tol": None,
        "momentum": draw(st.sampled_from([0.0, 0.9])),
        "penalty": draw(st.sampled_from([None, "l2", "elasticnet"])),
        "alpha": 0.01,
        "fit_intercept": draw(st.booleans()),
        "backend": draw(st.sampled_from(ALL_BACKENDS)),
        "dask_mode": "sequential",  # the in-memory fit's visiting order (test_dask_average.py: "average")
    }
    dtype = draw(st.sampled_from([np.float64, np.float32]))
    seed = draw(st.integers(0, 2**16))
    scale = 10.0 ** draw(st.integers(-3, 3))
    return kind, n, chunks, params, dtype, seed, scale


@hypothesis.settings(max_examples=25, deadline=None, derandomize=True, database=None,
                     suppress_health_check=[hypothesis.HealthCheck.too_slow])
@hypothesis.given(problem=_dask_problem())
def test_property_dask_fit_equals_in_memory_fit(client, problem):
    """Random row chunkings (one-row blocks included), kinds, dtypes, scales, backends and
    parameters: a Dask fit has the in-memory fit's outcome (the same error type, or the
    same iterates to 1e-10 in float64, 1e-4 in float32)."""
    kind, n, chunks, params, dtype, seed, scale = problem
    X, y = make_data(kind, n=n, seed=seed, dtype=np.float64)
    X = (X * scale).astype(dtype)
    cls = CASES[kind]
    outcome = {}
    for where, args in (("memory", (X, y)), ("dask", to_dask(client, chunks, X, y))):
        try:
            outcome[where] = cls(**params).fit(*args)
        except (ValueError, DivergenceError) as exc:
            outcome[where] = type(exc)
    ref, got = outcome["memory"], outcome["dask"]
    if isinstance(ref, type) or isinstance(got, type):
        assert got == ref, (got, ref)
        return
    tol = 1e-10 if dtype == np.float64 else 1e-4
    scale_ = max(1.0, float(np.abs(ref.coef_).max()))
    np.testing.assert_allclose(got.coef_, ref.coef_, rtol=tol, atol=tol * scale_)
    np.testing.assert_allclose(got.intercept_, ref.intercept_, rtol=tol, atol=tol * scale_)
    assert got.t_ == ref.t_ and got.coef_.dtype == ref.coef_.dtype
