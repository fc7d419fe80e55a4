"""Estimator behaviour: shapes, dtypes, state carried between calls, errors."""

import pickle
import re
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning

import fastgd
import fastgd._run
from fastgd import DivergenceError, LinearRegression, LogisticRegression
from fastgd._backends import get_backend

from .conftest import make_data

QUIET = {"max_iter": 5, "tol": None, "random_state": 0}


# ----------------------------------------------------------------------------- shapes
def test_regressor_shapes(backend):
    X, y = make_data("regression")
    est = LinearRegression(backend=backend, **QUIET).fit(X, y)
    assert est.coef_.shape == (4,) and np.ndim(est.intercept_) == 0
    assert est.predict(X).shape == (60,)
    X, Y = make_data("multioutput")
    est = LinearRegression(backend=backend, **QUIET).fit(X, Y)
    assert est.coef_.shape == (2, 4) and est.intercept_.shape == (2,)
    assert est.predict(X).shape == (60, 2)
    np.testing.assert_allclose(est.predict(X), X @ est.coef_.T + est.intercept_)


def test_multioutput_equals_separate_fits(backend):
    X, Y = make_data("multioutput", n=50)
    params = dict(backend=backend, batch_size=7, **QUIET)
    both = LinearRegression(**params).fit(X, Y)
    for k in range(2):
        single = LinearRegression(**params).fit(X, Y[:, k])
        np.testing.assert_allclose(both.coef_[k], single.coef_, rtol=1e-12)
        np.testing.assert_allclose(both.intercept_[k], single.intercept_, rtol=1e-12)


@pytest.mark.parametrize("kind,n_classes", [("binary", 2), ("multiclass", 3)])
def test_classifier_shapes_and_probabilities(backend, kind, n_classes):
    X, y = make_data(kind)
    est = LogisticRegression(backend=backend, **QUIET).fit(X, y)
    np.testing.assert_array_equal(est.classes_, np.unique(y))
    rows = 1 if n_classes == 2 else n_classes
    assert est.coef_.shape == (rows, 4) and est.intercept_.shape == (rows,)
    proba = est.predict_proba(X)
    assert proba.shape == (60, n_classes)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    np.testing.assert_allclose(np.log(proba), est.predict_log_proba(X), atol=1e-12)
    dec = est.decision_function(X)
    if n_classes == 2:
        assert dec.shape == (60,)
        np.testing.assert_allclose(proba[:, 1], 1 / (1 + np.exp(-dec)))
    else:
        assert dec.shape == (60, 3)
    np.testing.assert_array_equal(est.predict(X), est.classes_[np.argmax(proba, axis=1)])
    assert est.score(X, y) > 0.8


def test_multiclass_is_softmax_not_one_vs_rest(backend):
    X, y = make_data("multiclass")
    est = LogisticRegression(backend=backend, **QUIET).fit(X, y)
    z = est.decision_function(X)
    p = np.exp(z - z.max(1, keepdims=True))
    np.testing.assert_allclose(est.predict_proba(X), p / p.sum(1, keepdims=True))


# ----------------------------------------------------------------------------- dtypes
def test_float32_stays_float32(backend):
    X, y = make_data("multiclass", dtype=np.float32)
    est = LogisticRegression(backend=backend, **QUIET).fit(X, y)
    assert est.coef_.dtype == np.float32 and est.intercept_.dtype == np.float32
    X, y = make_data("regression", dtype=np.float32)
    assert LinearRegression(backend=backend, **QUIET).fit(X, y).coef_.dtype == np.float32


class RecordingBackend:
    """Wraps a backend and records what its kernel receives."""

    def __init__(self, name):
        self.inner = get_backend(name)
        self.calls = []

    def epoch(self, **kwargs):
        self.calls.append(kwargs)
        return self.inner.epoch(**kwargs)

    def gradient(self, **kwargs):  # ("newton-sketch"'s pass)
        self.calls.append(kwargs)
        return self.inner.gradient(**kwargs)


@pytest.fixture
def recorder(monkeypatch, backend):
    rec = RecordingBackend(backend)
    monkeypatch.setattr(fastgd._run, "get_backend", lambda name: rec)
    return rec


def test_c_contiguous_float_input_is_not_copied(recorder):
    X, y = make_data("regression", n=100)
    LinearRegression(**QUIET).fit(X, y)
    assert all(call["X"] is X or np.shares_memory(call["X"], X) for call in recorder.calls)
    X32 = X.astype(np.float32)
    LinearRegression(**QUIET).fit(X32, y)
    assert np.shares_memory(recorder.calls[-1]["X"], X32)


@pytest.mark.parametrize(
    "make",
    [
        lambda X: np.asfortranarray(X),
        lambda X: np.repeat(X, 2, axis=0)[::2],  # strided rows
        lambda X: np.hstack([X, X])[:, ::2],  # strided columns
        lambda X: (X * 10).astype(np.int64),
        lambda X: (X * 10).astype(np.int32),
        lambda X: X > 0,
        lambda X: X.astype(object),
        lambda X: X.astype(np.float16),
        lambda X: X.tolist(),
    ],
    ids=["fortran", "row-stride", "col-stride", "int64", "int32", "bool", "object", "float16", "list"],
)
def test_kernels_only_see_contiguous_float_arrays(recorder, make):
    X, y = make_data("binary", n=40)
    Xin = make(X)
    est = LogisticRegression(**QUIET).fit(Xin, y)
    assert recorder.calls
    for call in recorder.calls:
        epoch = "state" in call  # (else a gradient pass of "newton-sketch", the default here)
        for name in ("X", "Y", "sw", "state" if epoch else "W"):
            arr = call[name]
            assert arr.flags.c_contiguous, name
            assert arr.dtype in (np.float32, np.float64), name
            assert arr.dtype == call["X"].dtype, name
        if epoch:
            assert call["order"].dtype == np.int64 and call["order"].flags.c_contiguous
            assert call["hp"].dtype == np.float64
        else:
            assert call["G"].dtype == np.float64 and call["G"].flags.c_contiguous
        assert call["codes"].dtype == np.int64
    # and the fit equals the fit on the converted array
    ref = LogisticRegression(**QUIET).fit(np.asarray(Xin, dtype=call["X"].dtype), y)
    np.testing.assert_allclose(est.coef_, ref.coef_, rtol=1e-12)


@pytest.mark.parametrize("n,d", [(1, 3), (2, 1), (5, 1)])
def test_tiny_inputs(backend, n, d):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((n, d))
    y = rng.standard_normal(n)
    est = LinearRegression(backend=backend, **QUIET).fit(X, y)
    assert np.all(np.isfinite(est.coef_))
    if n >= 2:
        yc = np.array([0, 1] * n)[:n]
        clf = LogisticRegression(backend=backend, **QUIET).fit(X, yc)
        assert clf.predict(X).shape == (n,)


# ----------------------------------------------------------------------------- state
def test_deterministic_for_fixed_random_state(backend):
    X, y = make_data("multiclass")
    sgd = {"optimizer": "sgd", "max_iter": 3, "tol": None}  # (shuffled mini-batches)
    a = LogisticRegression(backend=backend, random_state=7, **sgd).fit(X, y)
    b = LogisticRegression(backend=backend, random_state=7, **sgd).fit(X, y)
    c = LogisticRegression(backend=backend, random_state=8, **sgd).fit(X, y)
    np.testing.assert_array_equal(a.coef_, b.coef_)
    assert not np.array_equal(a.coef_, c.coef_)


def test_pickle_round_trip(backend):
    X, y = make_data("multiclass")
    est = LogisticRegression(backend=backend, **QUIET).fit(X, y)
    again = pickle.loads(pickle.dumps(est))
    np.testing.assert_array_equal(again.predict_proba(X), est.predict_proba(X))
    # and it trains on exactly as the original would
    est.partial_fit(X, y)
    again.partial_fit(X, y)
    np.testing.assert_array_equal(again.coef_, est.coef_)


def test_partial_fit_continues_like_fit(backend):
    """Velocity, step counter and schedule carry over between partial_fit calls."""
    X, y = make_data("regression", n=30)
    params = {"backend": backend, "batch_size": 4, "shuffle": False, "learning_rate": "invscaling", "eta0": 0.2}
    full = LinearRegression(max_iter=3, tol=None, **params).fit(X, y)
    part = LinearRegression(**params)
    for _ in range(3):
        part.partial_fit(X, y)
    np.testing.assert_allclose(part.coef_, full.coef_, rtol=1e-12)
    np.testing.assert_allclose(part.loss_curve_, full.loss_curve_, rtol=1e-12)
    assert part.t_ == full.t_ == 3 * 8
    assert part.n_iter_ == 3


def test_partial_fit_classifier_needs_classes_and_knows_them(backend):
    X, y = make_data("multiclass")
    est = LogisticRegression(backend=backend)
    with pytest.raises(ValueError, match="classes must be passed"):
        est.partial_fit(X, y)
    est.partial_fit(X[:20], y[:20], classes=[10, 11, 12])
    est.partial_fit(X[20:], y[20:])
    assert est.coef_.shape == (3, 4)
    with pytest.raises(ValueError, match="labels not in classes"):
        est.partial_fit(X[:5], np.array([10, 11, 13, 10, 10]))
    with pytest.raises(ValueError, match="has 3 features"):
        est.partial_fit(X[:, :3], y)
    with pytest.raises(ValueError, match="balanced"):
        LogisticRegression(class_weight="balanced").partial_fit(X, y, classes=[10, 11, 12])


def test_warm_start_continues_training(backend):
    X, y = make_data("binary")
    params = {"backend": backend, "batch_size": "full", "max_iter": 4, "tol": None}
    once = LogisticRegression(**params).fit(X, y)
    warm = LogisticRegression(warm_start=True, **params).fit(X, y)
    warm.fit(X, y)
    twice = LogisticRegression(**{**params, "max_iter": 8}).fit(X, y)
    np.testing.assert_allclose(warm.coef_, twice.coef_, rtol=1e-12)
    assert warm.t_ == 8
    assert warm.loss_curve_[0] == pytest.approx(once.objective(X, y))
    cold = LogisticRegression(**params).fit(X, y).fit(X, y)
    np.testing.assert_array_equal(cold.coef_, once.coef_)


def test_early_stopping(backend):
    X, y = make_data("binary", n=300)
    est = LogisticRegression(backend=backend, early_stopping=True, random_state=0, n_iter_no_change=3)
    est.fit(X, y)
    assert len(est.validation_scores_) == est.n_iter_ < 100
    assert 0.8 < est.best_validation_score_ <= 1.0
    no_es = LogisticRegression(backend=backend, random_state=0, max_iter=3, tol=None).fit(X, y)
    assert not hasattr(no_es, "validation_scores_")


def test_adaptive_divides_the_step(backend):
    X, y = make_data("regression", n=100)
    est = LinearRegression(backend=backend, learning_rate="adaptive", eta0=0.05, tol=1e-3, max_iter=300)
    est.fit(X, y)
    ratio = 0.05 / est.learning_rate_
    assert ratio >= 5 and np.isclose(np.log(ratio) / np.log(5), round(np.log(ratio) / np.log(5)))


def test_auto_reduces_the_minibatch_step_on_stalls():
    X, y = make_data("regression", n=300)
    est = LinearRegression(optimizer="sgd", backend="numpy", random_state=0, max_iter=300).fit(X, y)
    const = LinearRegression(optimizer="sgd", backend="numpy", random_state=0, max_iter=1, tol=None).fit(X, y)
    assert est.learning_rate_ == pytest.approx(const.learning_rate_ / 25)
    assert est.n_iter_ < 300


def test_auto_judges_its_first_stalls_over_1000_updates(capsys):
    """With 1250 updates per epoch, one epoch without improvement is a stall for the
    first two reductions of "auto"; the last stall still waits n_iter_no_change epochs."""
    X, y = make_data("regression", n=40_000)
    est = LinearRegression(optimizer="sgd", backend="numba", random_state=0, max_iter=60, verbose=1).fit(X, y)
    lines = capsys.readouterr().out.splitlines()
    stalls = [line for line in lines if line.startswith("-- No improvement")]
    assert [line.split(" epochs")[0] for line in stalls] == ["-- No improvement for 1"] * 2
    const = LinearRegression(optimizer="sgd", backend="numba", random_state=0, max_iter=1, tol=None).fit(X, y)
    assert est.learning_rate_ == pytest.approx(const.learning_rate_ / 25)
    # after the second reduction: n_iter_no_change (5) epochs without improvement
    second = next(i for i, line in enumerate(lines) if line == stalls[1])
    assert sum(line.startswith("-- Epoch") for line in lines[second:]) >= est.n_iter_no_change
    assert any(line.startswith("-- Converged") for line in lines)


def test_verbose_prints_one_line_per_epoch(backend, capsys):
    X, y = make_data("regression")
    LinearRegression(optimizer="sgd", backend=backend, verbose=1, max_iter=3, tol=None).fit(X, y)
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("-- Epoch")]
    assert len(lines) == 3
    assert re.match(r"-- Epoch 3: objective [\d.e+-]+, step size [\d.e+-]+, updates 6, [\d.]+ s", lines[-1])


def test_convergence_warning_when_max_iter_is_reached(backend):
    X, y = make_data("regression")
    with pytest.warns(ConvergenceWarning, match="max_iter=2"):
        LinearRegression(optimizer="sgd", backend=backend, max_iter=2, tol=1e-12).fit(X, y)


def test_class_weight_shifts_predictions(backend):
    X, y = make_data("binary", n=200)
    base = LogisticRegression(backend=backend, **QUIET).fit(X, y)
    heavy = LogisticRegression(backend=backend, class_weight={"yes": 20.0}, **QUIET).fit(X, y)
    assert np.sum(heavy.predict(X) == "yes") > np.sum(base.predict(X) == "yes")
    # a class weight is a sample weight
    sw = np.where(y == "yes", 20.0, 1.0)
    as_sw = LogisticRegression(backend=backend, **QUIET).fit(X, y, sample_weight=sw)
    np.testing.assert_allclose(heavy.coef_, as_sw.coef_, rtol=1e-12)


def test_clone_keeps_params():
    est = LogisticRegression(batch_size=7, momentum=0.5, nesterov=True, backend="numpy")
    assert clone(est).get_params() == est.get_params()


def test_feature_names(backend):
    pd = pytest.importorskip("pandas")
    X, y = make_data("regression")
    df = pd.DataFrame(X, columns=list("abcd"))
    est = LinearRegression(backend=backend, **QUIET).fit(df, y)
    np.testing.assert_array_equal(est.feature_names_in_, list("abcd"))
    assert est.n_features_in_ == 4


# ----------------------------------------------------------------------------- errors
def test_divergence_raises_and_keeps_the_previous_model(backend):
    X, y = make_data("regression", n=100)
    X = X * 100
    est = LinearRegression(backend=backend, **QUIET).fit(X, y)
    coef = est.coef_.copy()
    est.set_params(learning_rate="constant", eta0=10.0)
    with pytest.raises(DivergenceError, match=r"diverged in epoch \d+.*step size 10.*smaller eta0"):
        est.fit(X, y)
    np.testing.assert_array_equal(est.coef_, coef)
    assert np.all(np.isfinite(est.predict(X)))


@pytest.mark.parametrize(
    "params,scale_y,match",
    [
        ({"learning_rate": "constant", "eta0": 100.0}, 1.0, "Use a smaller eta0"),
        ({"learning_rate": "optimal", "alpha": 1e300}, 1.0, "sets the step from alpha alone.*alpha=1e\\+300"),
        ({}, 1e300, "loss itself is not finite.*rescale X or y"),
    ],
    ids=["constant", "optimal", "overflowing-loss"],
)
def test_divergence_message_names_the_likely_cause(params, scale_y, match):
    X, y = make_data("regression", n=50)
    with pytest.raises(DivergenceError, match=match):
        LinearRegression(max_iter=3, tol=None, **params).fit(X * 10, y * scale_y)


@pytest.mark.parametrize(
    "params,match",
    [
        ({"batch_size": 0}, "'batch_size' parameter"),
        ({"batch_size": "half"}, "'batch_size' parameter"),
        ({"batch_size": 2.5}, "'batch_size' parameter"),
        ({"learning_rate": "fast"}, "'learning_rate' parameter"),
        ({"eta0": 0.0}, "'eta0' parameter"),
        ({"eta0": np.nan}, "'eta0' parameter"),
        ({"momentum": 1.0}, "'momentum' parameter"),
        ({"momentum": -0.1}, "'momentum' parameter"),
        ({"nesterov": True, "momentum": 0.0}, "nesterov=True requires momentum > 0"),
        ({"penalty": "l3"}, "'penalty' parameter"),
        ({"alpha": -1.0}, "'alpha' parameter"),
        ({"alpha": np.inf}, "'alpha' parameter"),
        ({"l1_ratio": 1.5}, "'l1_ratio' parameter"),
        ({"max_iter": 0}, "'max_iter' parameter"),
        ({"tol": -1.0}, "'tol' parameter"),
        ({"validation_fraction": 1.0}, "'validation_fraction' parameter"),
        ({"backend": "torch"}, "'backend' parameter"),
        ({"learning_rate": "optimal", "alpha": 0.0}, "'optimal' requires alpha > 0"),
        ({"n_jobs": 0}, "'n_jobs' parameter"),
    ],
)
def test_invalid_parameters_are_named(params, match):
    X, y = make_data("regression")
    with pytest.raises(ValueError, match=match):
        LinearRegression(**params).fit(X, y)


@pytest.mark.parametrize("where", ["X", "y", "sample_weight"])
@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_non_finite_input_is_rejected(backend, where, value):
    X, y = make_data("regression")
    sw = np.ones(len(y))
    {"X": X, "y": y, "sample_weight": sw}[where][3] = value
    with pytest.raises(ValueError, match="NaN|infinity|finite"):
        LinearRegression(backend=backend).fit(X, y, sample_weight=sw)


def test_bad_shapes_and_values_are_rejected():
    X, y = make_data("regression")
    with pytest.raises(ValueError, match="2D array"):
        LinearRegression().fit(X[:, 0], y)
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        LinearRegression().fit(X, y[:-1])
    with pytest.raises(ValueError, match="[Nn]egative"):
        LinearRegression().fit(X, y, sample_weight=-np.ones(len(y)))
    with pytest.raises(ValueError, match="non-zero|sum to zero"):
        LinearRegression().fit(X, y, sample_weight=np.zeros(len(y)))
    with pytest.raises(ValueError, match="sample_weight"):
        LinearRegression().fit(X, y, sample_weight=np.ones(3))
    with pytest.raises(ValueError):
        LinearRegression().fit(X, np.array(["a"] * len(y)))
    with pytest.raises(ValueError, match="at least 2 classes"):
        LogisticRegression().fit(X, np.zeros(len(y)))
    with pytest.raises(ValueError, match="Unknown label type"):
        LogisticRegression().fit(X, y)  # continuous target
    with pytest.raises(ValueError, match="class_weight names labels"):
        LogisticRegression(class_weight={"nope": 2.0}).fit(X, y > 0)
    est = LinearRegression(**QUIET).fit(X, y)
    with pytest.raises(ValueError, match="has 3 features"):
        est.predict(X[:, :3])
    with pytest.raises(ValueError, match="shape"):
        est.partial_fit(X, np.column_stack([y, y]))


def test_sparse_input_is_accepted():
    """Sparse input is supported (tests/test_sparse.py has the details)."""
    X, y = make_data("regression")
    est = LinearRegression(optimizer="sgd", **QUIET).fit(sp.csr_matrix(X), y)
    dense = LinearRegression(optimizer="sgd", **QUIET).fit(X, y)
    np.testing.assert_allclose(est.predict(sp.csr_matrix(X)), dense.predict(X), rtol=1e-10)
    assert est.__sklearn_tags__().input_tags.sparse


def test_unfitted_estimator_raises():
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        LogisticRegression().predict(np.ones((2, 2)))


def test_unknown_backend_and_import_errors(monkeypatch):
    from fastgd import _backends

    with pytest.raises(ValueError, match="Unknown backend 'nope'"):
        get_backend("nope")
    monkeypatch.setitem(_backends.BACKENDS, "numba", "fastgd._no_such_module")
    with pytest.raises(ImportError, match="backend 'numba' is not available.*pip install numba"):
        get_backend("numba")


def test_public_names_resolve():
    assert set(fastgd.__all__) == set(fastgd._LAZY) | {"__version__"}
    for name in fastgd.__all__:
        assert getattr(fastgd, name) is not None
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        fastgd.nope  # noqa: B018


def test_import_is_lazy():
    import subprocess
    import sys

    code = (
        "import sys, fastgd; print(sorted(m for m in ('numba', 'sklearn', 'scipy') if m in sys.modules)); "
        "fastgd.LinearRegression; print('sklearn' in sys.modules, 'numba' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split("\n")[:2] == ["[]", "True False"]


def test_no_warnings_with_defaults_on_easy_data(backend):
    X, y = make_data("binary", n=200)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        LogisticRegression(backend=backend, random_state=0, max_iter=1000).fit(X, y)


@pytest.mark.parametrize("method", ["fit", "partial_fit"])
def test_failed_call_leaves_the_fitted_model_unchanged(backend, method):
    X, y = make_data("multiclass", n=80)
    est = LogisticRegression(backend=backend, **QUIET).fit(X, y)
    est.partial_fit(X, y)
    before = pickle.dumps(est)
    bad_calls = [
        lambda: getattr(est, method)(np.where(X > 1, np.nan, X[:, :3]), y),
        lambda: getattr(est, method)(X, y, sample_weight=-np.ones(len(y))),
        lambda: getattr(est, method)(X, np.full(len(y), 11)) if method == "fit" else est.partial_fit(X, y + 5),
    ]
    if method == "fit":  # divergence after validation has passed, on another feature count
        bad_calls.append(lambda: est.set_params(learning_rate="constant", eta0=1e6).fit(X[:, :3] * 1e3, y))
    else:
        bad_calls.append(lambda: est.partial_fit(X[:, :3], y))
    for call in bad_calls:
        with pytest.raises((ValueError, DivergenceError)):
            call()
        est.set_params(learning_rate="auto", eta0=0.01)
        after = pickle.loads(pickle.dumps(est))
        restored = pickle.loads(before)
        for name in ("coef_", "intercept_", "_state", "t_", "n_iter_", "loss_curve_", "n_features_in_", "classes_"):
            np.testing.assert_array_equal(getattr(after, name), getattr(restored, name), err_msg=name)
    # the permutation stream did not advance either: the next epoch is the one it would have been
    est.partial_fit(X, y)
    restored.partial_fit(X, y)
    np.testing.assert_array_equal(est.coef_, restored.coef_)


def test_time_curve_is_cumulative_and_aligned_with_loss_curve():
    X, y = make_data("regression", 200, 3, seed=3)
    est = LinearRegression(batch_size=16, max_iter=5, tol=None, random_state=0).fit(X, y)
    assert len(est.time_curve_) == len(est.loss_curve_) == 5
    assert np.all(np.diff(est.time_curve_) > 0) and est.time_curve_[0] > 0
    last = est.time_curve_[-1]
    est.partial_fit(X, y)
    assert len(est.time_curve_) == 6 and est.time_curve_[-1] > last
    est.fit(X, y)
    assert len(est.time_curve_) == 5
