"""scikit-learn's callback API (``sklearn.callback``) for the fastgd estimators.

Where the installed scikit-learn has it, the estimators inherit its
``CallbackSupportMixin`` (so they have ``set_callbacks``), and a ``fit`` or
``partial_fit`` call is one task with one subtask per epoch: ``ProgressBar`` shows the
epochs of a long fit, ``ScoringMonitor`` scores the model after each epoch. Where it
does not (older scikit-learn), :data:`CallbackSupport` is an empty class and nothing
here runs.

Without callbacks a fit costs a few attribute tests per call and two ``is None`` tests
per epoch (about 0.7 µs per call and 0.1 µs per epoch). With callbacks, each epoch calls the hooks' ``on_fit_task_begin`` and
``on_fit_task_end``; the arguments a hook asks for are built only then: ``X`` (the
rows trained on; None on Dask input), ``y`` (their labels or targets, decoded from the
encoded targets on demand), ``metadata`` (``{"sample_weight": ...}``, the weights the
objective uses: normalised to mean 1, times ``class_weight``) and ``fitted_estimator``
(a copy of the estimator that predicts with the epoch's weights). A callback whose
``on_fit_task_end`` returns True stops the fit after that epoch (no
``ConvergenceWarning``); the model of the last epoch run is kept.
"""

import contextlib
import types

import numpy as np

try:
    from sklearn.callback import CallbackSupportMixin as _Mixin
    from sklearn.callback._callback_support import (
        callback_management_context as _manage,
    )
except ImportError:  # scikit-learn without the callback API
    _Mixin = _manage = None

#: whether the installed scikit-learn has ``sklearn.callback``
SUPPORTED = _Mixin is not None

if SUPPORTED:
    CallbackSupport = _Mixin
else:

    class CallbackSupport:
        """Stand-in for ``sklearn.callback.CallbackSupportMixin`` on a scikit-learn
        without it: no ``set_callbacks``, no callbacks."""


# the attributes scikit-learn's callback machinery keeps on the estimator during a call
# (a failed call restores the estimator's attributes, but these must survive until the
# callbacks' teardown)
LIVE_KEYS = ("_callback_fit_ctx", "_skl_callbacks_to_teardown")


def _wanted(est):
    return bool(getattr(est, "_skl_callbacks", None)) or hasattr(est, "_parent_callback_ctx")


def managed(est):
    """A context manager around a ``fit``/``partial_fit`` call that tears the callbacks
    down at its end, whether the call succeeds or raises."""
    if _manage is None or not _wanted(est):
        return contextlib.nullcontext()
    return _manage(est)


class FitCallbacks:
    """The callback tasks of one ``fit`` or ``partial_fit`` call: the root task and one
    subtask ("epoch") per epoch. :meth:`start` returns None when no callback is set."""

    def __init__(self, est, ctx, data):
        self.est = est
        self.ctx = ctx
        self.epoch_ctx = None
        self.fitted = data.fitted
        self.loss = data.loss
        in_memory = data.Y is not None
        self.X = data.X if in_memory else None
        self._Y = data.Y
        self.metadata = {"sample_weight": data.sw} if in_memory else None

    @classmethod
    def start(cls, est, data, max_epochs, task_name):
        """The callbacks of this call (their root task begun), or None."""
        if _manage is None or not _wanted(est):
            return None
        ctx = est._init_callback_context(task_name=task_name, max_subtasks=max_epochs)
        self = cls(est, ctx, data)
        ctx.call_on_fit_task_begin(estimator=est, X=self.X, y=self._y, metadata=self.metadata)
        return self

    def _y(self):
        """The targets of the rows trained on, as the user passes them (labels for a
        classifier), or None on Dask input."""
        Y = self._Y
        if Y is None:
            return None
        if "classes_" in self.fitted:
            return self.fitted["classes_"][Y[:, 0].astype(np.intp)]
        return Y[:, 0] if self.fitted.get("_y_ndim") == 1 else Y

    def _attributes(self, run):
        """What a copy of the estimator needs to predict with the run's current weights."""
        holder = types.SimpleNamespace(**self.fitted)
        W = run.weights()  # (the average once averaging has started)
        type(self.est)._set_coef(holder, W[:, :-1].copy(), W[:, -1].copy())
        return {
            **vars(holder),
            "_state": run.state.copy(),
            "_loss": self.loss,
            "_avg_start": run.avg_start,
            "_seen": run.seen,
            "t_": run.t,
            "n_iter_": run.n_epochs,
            "loss_curve_": list(run.curve),
            "learning_rate_": run.eta_last,
        }

    def _hooks(self, run):
        return {
            "estimator": self.est,
            "X": self.X,
            "y": self._y,
            "metadata": self.metadata,
            "reconstruction_attributes": lambda: self._attributes(run),
        }

    def epoch_begin(self, run):
        self.epoch_ctx = self.ctx.subcontext(task_name="epoch")
        self.epoch_ctx.call_on_fit_task_begin(**self._hooks(run))

    def epoch_end(self, run):
        """End the epoch's task; True when a callback asks the fit to stop."""
        return self.epoch_ctx.call_on_fit_task_end(**self._hooks(run))

    def finish(self):
        """End the root task, once the estimator holds the fitted model."""
        self.ctx.call_on_fit_task_end(
            estimator=self.est, X=self.X, y=self._y, metadata=self.metadata, reconstruction_attributes={}
        )
