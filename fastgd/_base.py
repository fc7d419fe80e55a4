"""The estimator base: parameters, the ``fit``/``partial_fit`` skeleton, failure
atomicity and the commit of fitted attributes, prediction and the objective.

Validation lives in ``fastgd._validation``; a fit is resolved once by
``fastgd._spec`` (every decision about it, the initial step included), and its epochs
run in a driver that reads only that resolved fit: ``fastgd._run`` in memory,
``fastgd._dask`` on Dask input (imported on the first Dask collection), each judged by
``fastgd._judge``. All randomness (the per-epoch permutations, the validation
split) is drawn from ``random_state`` in Python, so every backend visits the rows in
the same order.
"""

import contextlib
import copy
import functools
import numbers
from abc import abstractmethod
from typing import ClassVar

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from ._backends import AUTO, BACKENDS
from ._callbacks import LIVE_KEYS, CallbackSupport, FitCallbacks, managed
from ._optimizers import OPTIMIZERS
from ._penalties import PENALTIES, penalty_strengths, penalty_value
from ._judge import DivergenceError, reported_weights
from ._newton import NewtonRun
from ._run import Run, weighted_loss
from ._schedules import SCHEDULES
from ._spec import choose, data_kind, settings
from ._validation import (
    is_dask,
    normalise_weights,
    require_finite,
    split_validation,
    validate_inputs,
    validate_predict,
    validate_validation,
    validation_given,
)

__all__ = ["BaseGD", "DivergenceError"]

def _dask_module():
    """``fastgd._dask``, imported on the first Dask input (never for NumPy input)."""
    try:
        from . import _dask
    except ImportError as exc:
        raise ImportError(
            f"fastgd needs dask.array to fit or predict on Dask collections ({exc}); "
            'install it with: pip install "fastgd[dask]"'
        ) from exc
    return _dask


def _dask_aware(method):
    """For a method ``f(self, X)``: on a Dask collection, return a lazy Dask array that
    applies ``f`` to each block of rows where it lives (``fastgd._dask.map_method``)."""

    @functools.wraps(method)
    def wrapper(self, X):
        if is_dask(X):
            return _dask_module().map_method(self, method.__name__, X)
        return method(self, X)

    return wrapper


class BaseGD(CallbackSupport, BaseEstimator):
    """Common base of the fastgd estimators (not public)."""

    _parameter_constraints: ClassVar[dict] = {
        "batch_size": [Interval(numbers.Integral, 1, None, closed="left"), StrOptions({"full", AUTO})],
        "learning_rate": [StrOptions(set(SCHEDULES))],
        "eta0": [Interval(numbers.Real, 0, None, closed="neither")],
        "power_t": [Interval(numbers.Real, 0, None, closed="left")],
        "momentum": [Interval(numbers.Real, 0, 1, closed="left")],
        "nesterov": ["boolean"],
        "optimizer": [StrOptions({AUTO, *OPTIMIZERS})],
        "beta_1": [Interval(numbers.Real, 0, 1, closed="left")],
        "beta_2": [Interval(numbers.Real, 0, 1, closed="left")],
        "epsilon": [Interval(numbers.Real, 0, None, closed="neither")],
        "average": ["boolean", Interval(numbers.Integral, 0, None, closed="left")],
        "penalty": [StrOptions({p for p in PENALTIES if p is not None}), None],
        "alpha": [Interval(numbers.Real, 0, None, closed="left"), StrOptions({AUTO})],
        "l1_ratio": [Interval(numbers.Real, 0, 1, closed="both")],
        "fit_intercept": ["boolean"],
        "max_iter": [Interval(numbers.Integral, 1, None, closed="left")],
        "tol": [Interval(numbers.Real, 0, None, closed="left"), None],
        "n_iter_no_change": [Interval(numbers.Integral, 1, None, closed="left")],
        "early_stopping": ["boolean", StrOptions({AUTO})],
        "validation_fraction": [Interval(numbers.Real, 0, 1, closed="neither")],
        "shuffle": ["boolean", StrOptions({"blocks"})],
        "random_state": ["random_state"],
        "warm_start": ["boolean"],
        "n_jobs": [Interval(numbers.Integral, 1, None, closed="left"), Interval(numbers.Integral, None, -1, closed="right"), None],
        "backend": [StrOptions({AUTO, *BACKENDS})],
        "dask_mode": [StrOptions({"average", "sequential"})],
        "sync_every": [Interval(numbers.Integral, 1, None, closed="left"), None],
        "verbose": ["verbose"],
    }

    # ------------------------------------------------------------------ hooks
    @abstractmethod
    def _targets(self, y, *, first, classes=None, partial=False):
        """Validate y and encode it for the kernels.

        Returns ``(Y, n_outputs, loss_name, fitted)`` where ``Y`` is (n, m)
        float (the dtype is set by the caller), and ``fitted`` is a dict of the
        target-related fitted attributes (e.g. ``classes_``) to set on success.
        """

    @abstractmethod
    def _class_weights(self, Y, fitted):
        """Per-row multipliers from ``class_weight`` (or None)."""

    @abstractmethod
    def _score_state(self, W, X, Y, sw=None):
        """Validation score (higher is better) of weights ``W`` (K, d+1) on encoded data,
        weighted by ``sw`` when given."""

    # ------------------------------------------------------------------ public
    def fit(self, X, y, sample_weight=None, *, X_val=None, y_val=None, sample_weight_val=None):
        """Fit the model by gradient descent for at most ``max_iter`` epochs.

        Parameters
        ----------
        X : {array-like, sparse matrix, dask array} of shape (n_samples, n_features)
            Training data. Sparse input is used as CSR (other formats are converted
            once); Dask collections are fitted where their blocks live.
        y : array-like of shape (n_samples,) or (n_samples, n_targets)
            Targets (class labels for the classifier).
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weights; the objective is their weighted mean loss.
        X_val : {array-like, sparse matrix, dask array} of shape (n_val, n_features), \
default=None
            Validation data for early stopping, used instead of holding out
            ``validation_fraction`` of the training rows; requires
            ``early_stopping=True``. Checked like ``X`` (same number of features, same
            feature names). A Dask collection is computed into memory once per fit.
        y_val : array-like of shape (n_val,) or (n_val, n_targets), default=None
            Validation targets; required with ``X_val``. For the classifier every label
            must be one of the training data's classes.
        sample_weight_val : array-like of shape (n_val,), default=None
            Weights of the validation score (weighted accuracy, weighted R^2).

        Returns
        -------
        self : object
            The fitted estimator.
        """
        with managed(self), self._atomic():
            if is_dask(X):
                return _dask_module().fit(self, X, y, sample_weight, X_val, y_val, sample_weight_val)
            return self._fit(X, y, sample_weight, X_val, y_val, sample_weight_val)

    def _fit(self, X, y, sample_weight, X_val=None, y_val=None, sample_weight_val=None):
        data = self._prepare(X, y, sample_weight, first=True, defer_finite=True)
        self._choose(data_kind(data.X), validation=X_val is not None or y_val is not None)
        early_stopping = settings(self).early_stopping
        with self._finite_or_raise(data):
            rng = check_random_state(self.random_state)
            val = ()
            if validation_given(early_stopping, X_val, y_val, sample_weight_val):
                val = validate_validation(self, data, X_val, y_val, sample_weight_val)
            elif early_stopping:
                data, X_val, Y_val = split_validation(data, rng, self.validation_fraction, self._is_classifier)
                self._choice = self._choice.on_rows(data.X.shape[0])  # (the rows it trains on)
                require_finite(self, X_val)  # (rows no epoch reads)
                val = (X_val, Y_val)
            data = data._replace(sw=normalise_weights(data.sw))
            return self._fit_epochs(NewtonRun if settings(self).rule.steps == "driver" else Run, data, rng, *val)

    @contextlib.contextmanager
    def _finite_or_raise(self, data):
        """For data whose finiteness check was deferred (``Data.finite`` False, see
        ``fastgd._validation.validate_inputs``): when the fit fails on something
        non-finite (a divergence, a step size or a statistic of X that is not finite),
        raise the input's own error instead ("Input X contains NaN") if X holds a NaN
        or an infinity."""
        try:
            yield
        except (ValueError, FloatingPointError):
            if not data.finite:
                try:
                    require_finite(self, data.X)
                except ValueError as bad:
                    raise bad from None
            raise

    def _fit_epochs(self, run_cls, data, rng, X_val=None, Y_val=None, sw_val=None):
        """``fit`` from validated data with normalised weights; ``run_cls`` runs the
        epochs (``fastgd._run.Run`` in memory, ``fastgd._dask.DaskRun`` on Dask blocks)
        and resolves the fit (``run_cls.resolve``, its own step statistics)."""
        spec = run_cls.resolve(self, data)
        state = np.zeros(spec.state_shape, dtype=data.X.dtype)
        seen, avg_start = 0, None
        if self.warm_start and hasattr(self, "_state") and self._state.shape == state.shape:
            state[...] = self._state
            t = self.t_
            seen, avg_start = getattr(self, "_seen", 0), getattr(self, "_avg_start", None)
        else:
            t = 0
        validation = (X_val, Y_val, sw_val) if X_val is not None else None
        run = run_cls(spec, data, state, rng, t=t, seen=seen, avg_start=avg_start, validation=validation)
        run.set_reference(fitted_first=self._first_objective() if t > 0 else None)
        run.callbacks = FitCallbacks.start(self, data, self.max_iter, "fit")
        run.epochs(self.max_iter, stop_early=True)
        self._commit(run, data, reset_curves=True, partial_rng=None)
        if run.callbacks is not None:
            run.callbacks.finish()
        return self

    def _first_objective(self):
        """The fitted model's first epoch's objective (None if there is none)."""
        curve = getattr(self, "loss_curve_", None)
        return curve[0] if curve else None

    def partial_fit(self, X, y, classes=None, sample_weight=None):
        """Run one epoch over the given rows, continuing from the current state.

        The velocity, the update counter ``t_`` and the step size carry over between
        calls, and the permutations continue one random stream. For a classifier,
        ``classes`` must be given on the first call. ``tol``, ``early_stopping`` and the
        stall rules of "adaptive"/"auto" apply to ``fit`` only. With "auto", the step is
        estimated on the first call's rows and only ever lowered by later calls.
        """
        with managed(self), self._atomic():
            if is_dask(X):
                return _dask_module().partial_fit(self, X, y, classes, sample_weight)
            return self._partial_fit(X, y, classes, sample_weight)

    def _partial_fit(self, X, y, classes, sample_weight):
        first = not hasattr(self, "_state")
        data = self._prepare(X, y, sample_weight, first=first, classes=classes, partial=True, defer_finite=True)
        self._choose(data_kind(data.X), keep=not first, partial=True)
        with self._finite_or_raise(data):
            data = data._replace(sw=normalise_weights(data.sw))
            return self._partial_fit_epoch(Run, data, first)

    def _partial_fit_epoch(self, run_cls, data, first):
        """``partial_fit`` from validated data with normalised weights; ``run_cls`` as
        for :meth:`_fit_epochs`."""
        spec = run_cls.resolve(self, data)
        state = np.zeros(spec.state_shape, dtype=data.X.dtype)
        seen, avg_start = 0, None
        if first:
            t = 0
            eta = spec.eta
        else:
            if self._state.shape[1:] == state.shape[1:] and self._state.shape[0] == 1 and self.optimizer == AUTO:
                # (a model fitted by a rule without slots: "auto" went on with another)
                self._state = np.concatenate([self._state, np.zeros_like(state[1:])])
            if self._state.shape != state.shape:
                raise ValueError(
                    f"partial_fit cannot continue a model fitted with another optimizer or average "
                    f"(its state has shape {self._state.shape}, optimizer={spec.optimizer!r} and "
                    f"average={self.average!r} need {state.shape}); call fit first."
                )
            state[...] = self._state
            t = self.t_
            seen, avg_start = getattr(self, "_seen", 0), getattr(self, "_avg_start", None)
            eta = self._eta
            if spec.schedule.from_data:
                # never take a larger step than new rows allow
                eta = min(eta, spec.eta)
        rng = None if first else getattr(self, "_partial_rng", None)
        # the stream of permutations continues across calls; a failed call draws nothing
        rng = check_random_state(self.random_state) if rng is None else copy.deepcopy(rng)
        run = run_cls(spec, data, state, rng, t=t, eta=eta, seen=seen, avg_start=avg_start)
        run.set_reference(fitted_first=None if first else self._first_objective())
        run.callbacks = FitCallbacks.start(self, data, 1, "partial_fit")
        run.epochs(1, stop_early=False)
        self._commit(run, data, reset_curves=first, partial_rng=rng)
        if run.callbacks is not None:
            run.callbacks.finish()
        return self

    @contextlib.contextmanager
    def _atomic(self):
        """All or nothing: if the call raises (bad input, divergence, a KeyboardInterrupt
        between epochs), the estimator is left exactly as it was, fitted attributes,
        velocity, counters and random stream included.

        Input validation sets ``n_features_in_`` (and ``feature_names_in_``) early, and a
        successful call replaces the attribute dictionary in one assignment
        (:meth:`_commit`), so restoring the dictionary the call started with undoes any
        of it. A ``numpy.random.RandomState`` passed as ``random_state`` is rewound too:
        a failed call draws nothing from it.
        """
        saved = dict(self.__dict__)
        rs = self.random_state if isinstance(self.random_state, np.random.RandomState) else None
        rs_state = rs.get_state() if rs is not None else None
        try:
            yield
        except BaseException:
            # (the callbacks' bookkeeping stays until their teardown)
            self.__dict__ = {**saved, **{k: self.__dict__[k] for k in LIVE_KEYS if k in self.__dict__}}
            if rs is not None:
                rs.set_state(rs_state)
            raise

    # ------------------------------------------------------------------ helpers
    def _choose(self, kind, *, keep=None, validation=False, partial=False):
        """Resolve the "auto" parameters (``optimizer``, ``alpha``, ``early_stopping``)
        for this call from the data's kind (``fastgd._spec.choose``), once, before
        anything reads the settings. With ``keep`` (a ``partial_fit`` after the first;
        None: ``warm_start``, for ``fit``) a fitted model keeps the choice it was fitted
        with. ``validation``: ``fit`` was given a validation set (``X_val``, ``y_val``),
        which turns ``early_stopping="auto"`` on; ``partial``: a ``partial_fit`` call."""
        if keep is None:
            keep = self.warm_start
        kept = getattr(self, "_choice", None)
        if keep and kept is not None and hasattr(self, "_state"):
            if not (partial and self.optimizer == AUTO and OPTIMIZERS[kept.optimizer].steps == "driver"):
                return
            # partial_fit after a fit whose "auto" rule steps in the driver: the choice
            # for partial_fit, continuing from the fitted weights (_partial_fit_epoch)
        self._choice = None  # (settings() of the parameters themselves)
        s = settings(self)
        self._choice = choice = choose(s, kind, validation=validation, partial=partial)
        if s.verbose and AUTO in (s.optimizer, s.alpha, s.early_stopping):
            data = "sparse" if kind.sparse else "dense"
            rows = f", {kind.n_rows:,} rows" if kind.n_rows >= 0 else ""
            print(f"-- {data} input{rows}: optimizer={choice.optimizer!r}, alpha={choice.alpha:g}, "
                  f"early_stopping={choice.early_stopping} (the \"auto\" defaults; see the user guide's Defaults)")

    def _check_param_combinations(self):
        if self.nesterov and self.momentum <= 0:
            raise ValueError(f"nesterov=True requires momentum > 0 (got momentum={self.momentum!r}).")
        if self.nesterov and self.optimizer != AUTO and "nesterov" not in OPTIMIZERS[self.optimizer].params:
            takes = sorted(n for n, o in OPTIMIZERS.items() if "nesterov" in o.params)
            raise ValueError(
                f"nesterov=True applies to optimizer={' or '.join(map(repr, takes))} only "
                f"(got optimizer={self.optimizer!r})."
            )
        if SCHEDULES[self.learning_rate].needs_alpha and self.alpha != AUTO and self.alpha <= 0:
            raise ValueError(f"learning_rate={self.learning_rate!r} requires alpha > 0 (got alpha={self.alpha!r}).")

    def _prepare(self, X, y, sample_weight, *, first, classes=None, partial=False, defer_finite=False):
        """Validate parameters and inputs for a fit; return the validated data
        (``fastgd._validation.Data``, sample weights not yet normalised; with
        ``defer_finite``, X not yet checked for NaN and infinities)."""
        self._validate_params()
        self._check_param_combinations()
        return validate_inputs(self, X, y, sample_weight, first=first, classes=classes, partial=partial,
                               defer_finite=defer_finite)

    def _set_progress(self, *, state, eta, loss, t, seen, avg_start, backend, partial_rng):
        """Set what a later call continues from: the state, the step, the loss, the
        update and sample counts, the averaging start, the backend that ran and the
        random stream of ``partial_fit``."""
        self._state = state
        self._eta = eta
        self._loss = loss
        self.t_ = t
        self._seen = seen
        self._avg_start = avg_start
        self.backend_ = backend
        self._partial_rng = partial_rng

    def _commit(self, run, data, *, reset_curves, partial_rng):
        """Set the fitted attributes; only called once a fit has succeeded.

        They are set on a shallow copy whose attribute dictionary then replaces this
        estimator's in one assignment, so an interrupt (KeyboardInterrupt) can never
        leave a mix of old and new attributes.
        """
        new = object.__new__(type(self))
        new.__dict__ = dict(self.__dict__)
        for name, value in data.fitted.items():
            setattr(new, name, value)
        new._set_progress(state=run.state, eta=run.eta, loss=data.loss, t=run.t, seen=run.seen,
                          avg_start=run.avg_start, backend=run.backend_name, partial_rng=partial_rng)
        if reset_curves or not hasattr(new, "loss_curve_"):
            new.loss_curve_ = list(run.curve)
            new.time_curve_ = list(run.times)
            new.n_iter_ = run.n_epochs
        else:
            new.loss_curve_ = new.loss_curve_ + run.curve
            start = new.time_curve_[-1] if new.time_curve_ else 0.0
            new.time_curve_ = new.time_curve_ + [start + s for s in run.times]
            new.n_iter_ += run.n_epochs
        if run.val_scores is not None:
            new.validation_scores_ = list(run.val_scores)
            new.best_validation_score_ = max(run.val_scores)
        elif hasattr(new, "validation_scores_") and reset_curves:
            del new.validation_scores_
            del new.best_validation_score_
        new.learning_rate_ = run.eta_last
        new.optimizer_ = run.spec.optimizer
        new.alpha_ = float(run.spec.alpha)
        W = run.weights()
        new._set_coef(W[:, :-1].copy(), W[:, -1].copy())
        self.__dict__ = new.__dict__

    def _decision(self, X):
        check_is_fitted(self, "_state")
        X = validate_predict(self, X)
        W = self._weights()
        return np.asarray(X @ W[:, :-1].T) + W[:, -1]

    def _weights(self):
        """The fitted model (K, d + 1): the average of the iterates once averaging has
        started, else the iterate."""
        # (getattr: a model pickled before averaging existed has no _avg_start)
        return reported_weights(self._state, getattr(self, "_avg_start", None), self.t_)

    def objective(self, X, y, sample_weight=None):
        """The penalised training objective of the fitted model on ``(X, y)``, in float64:
        ``sum_i s_i loss_i / sum_i s_i + alpha * (0.5 (1 - rho) ||W||^2 + rho ||W||_1)``
        with ``rho`` as set by ``penalty`` (the quantity gradient descent minimises)."""
        check_is_fitted(self, "_state")
        W = self._weights().astype(np.float64)
        if is_dask(X):
            total, n = _dask_module().weighted_loss(self, X, y, sample_weight, W)
        else:
            data = validate_inputs(self, X, y, sample_weight, first=False, partial=True)
            sw = normalise_weights(data.sw)
            total, n = weighted_loss(data.X, data.Y, sw, W, self._loss), data.X.shape[0]
        s = settings(self)
        l2, l1 = penalty_strengths(s.penalty, s.alpha, s.l1_ratio)
        return total / n + penalty_value(W[:, :-1], l2, l1)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        return tags
