"""scikit-learn's callbacks (``sklearn.callback``): a fit is one task with one subtask per
epoch; ``ProgressBar`` and ``ScoringMonitor`` work on it; the fitted estimator a hook
receives predicts with that epoch's weights; a callback can stop the fit; teardown
happens when a fit fails; and on a scikit-learn without the callback API the estimators
fit as before, without ``set_callbacks``."""

import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest

from fastgd import DivergenceError, LinearRegression, LogisticRegression

from .conftest import make_data

callback = pytest.importorskip("sklearn.callback")


class Recorder:
    """Records every hook call: (hook, task name, task id), and per epoch end a copy of
    the fitted estimator's coefficients and the score of the X, y it was given."""

    def __init__(self, stop_after=None):
        self.calls = []
        self.coefs = []
        self.scores = []
        self.stop_after = stop_after

    def setup(self, estimator, context):
        self.calls.append(("setup", context.task_name))

    def teardown(self, estimator, context):
        self.calls.append(("teardown", context.task_name))

    def on_fit_task_begin(self, estimator, context, *, X=None, y=None):
        self.calls.append(("begin", context.task_name, context.task_id))

    def on_fit_task_end(self, estimator, context, *, X=None, y=None, metadata=None, fitted_estimator=None):
        self.calls.append(("end", context.task_name, context.task_id))
        if context.task_name == "epoch":
            self.coefs.append(np.copy(fitted_estimator.coef_))
            if X is not None:
                self.scores.append(fitted_estimator.score(X, y, sample_weight=metadata["sample_weight"]))
            return self.stop_after is not None and context.task_id + 1 >= self.stop_after
        return False

    def epochs(self, hook):
        return [c[2] for c in self.calls if c[0] == hook and c[1] == "epoch"]


def test_one_task_per_epoch_with_each_epochs_model():
    X, y = make_data("multiclass", n=200, seed=1)
    rec = Recorder()
    params = {"batch_size": 16, "max_iter": 6, "tol": None, "random_state": 0}
    est = LogisticRegression(**params).set_callbacks(rec).fit(X, y)
    assert rec.calls[:2] == [("setup", "fit"), ("begin", "fit", 0)]
    assert rec.calls[-2:] == [("end", "fit", 0), ("teardown", "fit")]
    assert rec.epochs("begin") == rec.epochs("end") == list(range(6)) == list(range(est.n_iter_))
    assert len(rec.calls) == 4 + 2 * 6
    # after epoch k the hook's model is the model a fit of k epochs ends with
    for k in (1, 3, 6):
        np.testing.assert_array_equal(rec.coefs[k - 1], LogisticRegression(**{**params, "max_iter": k}).fit(X, y).coef_)
    assert rec.scores[-1] == est.score(X, y)
    assert not hasattr(est, "_callback_fit_ctx")  # the bookkeeping is gone after the fit


def test_a_fit_that_converges_early_has_as_many_epoch_tasks_as_epochs():
    X, y = make_data("regression", n=200, seed=2)
    rec = Recorder()
    est = LinearRegression(optimizer="sgd", batch_size="full", tol=1e-3, n_iter_no_change=2,
                           max_iter=500).set_callbacks(rec)
    est.fit(X, y)
    assert 2 < est.n_iter_ < 500
    assert rec.epochs("end") == list(range(est.n_iter_))


def test_partial_fit_is_one_epoch_task_per_call():
    X, y = make_data("binary", n=100, seed=3)
    rec = Recorder()
    est = LogisticRegression(random_state=0).set_callbacks(rec)
    for _ in range(3):
        est.partial_fit(X, y, classes=np.unique(y))
    assert [c for c in rec.calls if c[0] in ("setup", "teardown")] == [("setup", "partial_fit"), ("teardown", "partial_fit")] * 3
    assert rec.epochs("end") == [0, 0, 0]
    np.testing.assert_array_equal(rec.coefs[-1], est.coef_)


def test_a_callback_can_stop_the_fit():
    X, y = make_data("binary", n=150, seed=4)
    params = {"max_iter": 50, "tol": 1e-12, "n_iter_no_change": 50, "random_state": 0}
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no ConvergenceWarning: the callback stopped it
        est = LogisticRegression(**params).set_callbacks(Recorder(stop_after=3)).fit(X, y)
    assert est.n_iter_ == 3 and len(est.loss_curve_) == 3
    three = LogisticRegression(**{**params, "max_iter": 3, "tol": None}).fit(X, y)
    np.testing.assert_array_equal(est.coef_, three.coef_)


def test_a_failed_fit_tears_the_callbacks_down_and_changes_nothing():
    X, y = make_data("regression", n=100, seed=5)
    rec = Recorder()
    est = LinearRegression(max_iter=3, tol=None).fit(X, y)
    coef = est.coef_.copy()
    est.set_params(learning_rate="constant", eta0=1e6).set_callbacks(rec)
    with pytest.raises(DivergenceError):
        est.fit(X * 1e3, y)
    assert rec.calls[0] == ("setup", "fit") and rec.calls[-1] == ("teardown", "fit")
    assert ("end", "fit", 0) not in rec.calls
    np.testing.assert_array_equal(est.coef_, coef)
    assert not hasattr(est, "_callback_fit_ctx") and not hasattr(est, "_skl_callbacks_to_teardown")


def test_scoring_monitor_records_each_epoch():
    X, y = make_data("binary", n=200, seed=6)
    monitor = callback.ScoringMonitor(scoring="accuracy")
    est = LogisticRegression(max_iter=5, tol=None, random_state=0).set_callbacks(monitor).fit(X, y)
    rows = monitor.get_logs().data
    epochs = [r for r in rows if r["task_name"] == "epoch"]
    assert [r["task_id"] for r in epochs] == list(range(5))
    assert epochs[-1]["accuracy"] == est.score(X, y)
    assert all(0.5 < r["accuracy"] <= 1.0 for r in epochs)


def test_progress_bar_shows_the_fit(capsys):
    pytest.importorskip("rich")
    X, y = make_data("binary", n=100, seed=7)
    LogisticRegression(max_iter=4, tol=None).set_callbacks(callback.ProgressBar()).fit(X, y)
    out = capsys.readouterr().out
    assert "LogisticRegression - fit" in out
    assert "100%" in out


def test_progress_bar_propagates_from_a_grid_search(capsys):
    pytest.importorskip("rich")
    from sklearn.model_selection import GridSearchCV

    X, y = make_data("binary", n=100, seed=8)
    search = GridSearchCV(LogisticRegression(max_iter=3, tol=None), {"alpha": [1e-4, 1e-2]}, cv=2)
    search.set_callbacks(callback.ProgressBar()).fit(X, y)
    out = capsys.readouterr().out
    assert out.count("LogisticRegression - fit") == 5  # 2 candidates x 2 splits + refit


def test_clone_keeps_the_callbacks():
    from sklearn.base import clone

    rec = Recorder()
    est = clone(LinearRegression(max_iter=2, tol=None).set_callbacks(rec))
    est.fit(*make_data("regression", n=50))
    assert rec.epochs("end") == [0, 1]


def test_dask_fit_has_epoch_tasks_without_data():
    da = pytest.importorskip("dask.array")
    X, y = make_data("binary", n=60, seed=9)
    rec = Recorder()
    est = LogisticRegression(batch_size="full", max_iter=3, tol=None).set_callbacks(rec)
    est.fit(da.from_array(X, chunks=20), da.from_array(y, chunks=20))
    assert rec.epochs("end") == [0, 1, 2]
    assert rec.scores == []  # X and y stay blockwise: the hooks get X=None
    np.testing.assert_array_equal(rec.coefs[-1], est.coef_)


def test_verbose_output_is_unchanged_with_callbacks(capsys):
    X, y = make_data("regression", n=50)
    LinearRegression(max_iter=2, tol=None, verbose=1).set_callbacks(Recorder()).fit(X, y)
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("-- Epoch")]
    assert len(lines) == 2


def test_without_the_callback_api_the_estimators_fit_as_before():
    X, y = make_data("binary", n=80, seed=10)
    expected = LogisticRegression(max_iter=3, tol=None, random_state=0).fit(X, y).coef_
    code = textwrap.dedent(
        """
        import sys
        import types
        import sklearn.metrics, sklearn.model_selection  # (they import sklearn.callback)
        # from here on, sklearn.callback has none of its names, as on a scikit-learn
        # without the callback API
        sys.modules["sklearn.callback"] = types.ModuleType("sklearn.callback")
        sys.modules.pop("sklearn.callback._callback_support", None)
        from fastgd import LogisticRegression
        from fastgd import _callbacks
        from tests.conftest import make_data
        assert not _callbacks.SUPPORTED
        assert not hasattr(LogisticRegression(), "set_callbacks")
        X, y = make_data("binary", n=80, seed=10)
        est = LogisticRegression(max_iter=3, tol=None, random_state=0).fit(X, y)
        print(repr(est.coef_.tolist()))
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=300)
    assert out.returncode == 0, out.stderr
    np.testing.assert_array_equal(np.array(eval(out.stdout)), expected)
