"""Shared estimator logic: parameters, validation, the epoch loop, stopping, divergence.

The estimator layer guarantees every array a kernel receives is C-contiguous and of the
kernel's dtype (float32 or float64 for the data, int64 for the row order), and that the
kernel sees nothing else: no Python objects, no random numbers. All randomness (the
per-epoch permutations, the validation split) is drawn here from ``random_state``, so
every backend visits the rows in the same order.
"""

import contextlib
import copy
import functools
import numbers
import os
import threading
import time
import warnings
from abc import abstractmethod
from concurrent.futures import ThreadPoolExecutor
from typing import ClassVar, NamedTuple

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import (
    _check_sample_weight,
    check_is_fitted,
    validate_data,
)

from . import _params as P
from . import _sparse
from ._backends import BACKENDS, get_backend
from ._losses import LOSSES
from ._penalties import PENALTIES, penalty_strengths, penalty_value
from ._schedules import SCHEDULES, auto_learning_rate, optimal_t0, step_size

FLOAT_DTYPES = (np.float64, np.float32)

# "adaptive" divides the step by this factor when the objective stalls ...
ADAPTIVE_FACTOR = 5.0
# ... and stops once the step falls below this
ADAPTIVE_MIN_ETA = 1e-6
# an objective this many times the first epoch's is treated as divergence
DIVERGENCE_FACTOR = 1e10
# "auto" divides its computed step by ADAPTIVE_FACTOR at most this many times on stalls
AUTO_REDUCTIONS = 2
# ... each judged over at least this many updates (or n_iter_no_change epochs if fewer)
AUTO_STALL_UPDATES = 1000


class DivergenceError(FloatingPointError):
    """Raised when a fit diverges: the objective or the weights become non-finite, or the
    objective grows past DIVERGENCE_FACTOR (1e10) times a reference: the larger of the
    objective of the all-zero model on the call's data and, when the call continues a
    fitted model (``partial_fit``, ``warm_start``), that model's first epoch's objective
    (or, where neither is known or positive, the call's own first epoch's objective).

    The estimator keeps the state it had before the call (a fitted model stays usable).
    """


def _is_dask(obj):
    """Whether ``obj`` is a Dask collection (array, dataframe, series), without importing
    dask: its type is defined in a ``dask`` (or the former ``dask_expr``) module."""
    return type(obj).__module__.split(".")[0] in ("dask", "dask_expr")


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
        if _is_dask(X):
            return _dask_module().map_method(self, method.__name__, X)
        return method(self, X)

    return wrapper


class _Data(NamedTuple):
    """Validated training data as the kernels take it, plus what it implies."""

    X: np.ndarray  # (n, d) float32/float64, C-contiguous; or a scipy.sparse CSR matrix
    Y: np.ndarray  # (n, m) same dtype: targets encoded for the loss
    sw: np.ndarray  # (n,) same dtype: sample weights times class weights
    loss: str  # name in fastgd._losses.LOSSES
    n_outputs: int  # K, rows of the weight matrix
    fitted: dict  # target-related fitted attributes to set on success (classes_, ...)


class BaseGD(BaseEstimator):
    """Common base of the fastgd estimators (not public)."""

    _parameter_constraints: ClassVar[dict] = {
        "batch_size": [Interval(numbers.Integral, 1, None, closed="left"), StrOptions({"full"})],
        "learning_rate": [StrOptions(set(SCHEDULES))],
        "eta0": [Interval(numbers.Real, 0, None, closed="neither")],
        "power_t": [Interval(numbers.Real, 0, None, closed="left")],
        "momentum": [Interval(numbers.Real, 0, 1, closed="left")],
        "nesterov": ["boolean"],
        "penalty": [StrOptions({p for p in PENALTIES if p is not None}), None],
        "alpha": [Interval(numbers.Real, 0, None, closed="left")],
        "l1_ratio": [Interval(numbers.Real, 0, 1, closed="both")],
        "fit_intercept": ["boolean"],
        "max_iter": [Interval(numbers.Integral, 1, None, closed="left")],
        "tol": [Interval(numbers.Real, 0, None, closed="left"), None],
        "n_iter_no_change": [Interval(numbers.Integral, 1, None, closed="left")],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(numbers.Real, 0, 1, closed="neither")],
        "shuffle": ["boolean"],
        "random_state": ["random_state"],
        "warm_start": ["boolean"],
        "n_jobs": [Interval(numbers.Integral, 1, None, closed="left"), Interval(numbers.Integral, None, -1, closed="right"), None],
        "backend": [StrOptions(set(BACKENDS))],
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
    def _score_state(self, W, X, Y):
        """Validation score (higher is better) of weights ``W`` (K, d+1) on encoded data."""

    # ------------------------------------------------------------------ public
    def fit(self, X, y, sample_weight=None):
        """Fit the model by gradient descent for at most ``max_iter`` epochs.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Sparse input is used as CSR (other formats are converted once); see
            ``fastgd._sparse`` and the README's "Sparse input".
        y : array-like of shape (n_samples,) or (n_samples, n_targets)
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weights; the objective is their weighted mean loss.

        Returns
        -------
        self

        On Dask collections the data stay where they live: see ``fastgd._dask``.
        """
        with self._atomic():
            if _is_dask(X):
                return _dask_module().fit(self, X, y, sample_weight)
            return self._fit(X, y, sample_weight)

    def _fit(self, X, y, sample_weight):
        backend, data = self._prepare(X, y, sample_weight, first=True)
        rng = check_random_state(self.random_state)
        X_val = Y_val = None
        if self.early_stopping:
            data, X_val, Y_val = self._split_validation(data, rng)
        data = data._replace(sw=self._normalise_weights(data.sw))
        return self._fit_epochs(_Run, backend, data, rng, X_val, Y_val)

    def _fit_epochs(self, run_cls, backend, data, rng, X_val=None, Y_val=None):
        """``fit`` from validated data with normalised weights; ``run_cls`` runs the
        epochs (``_Run`` in memory, ``fastgd._dask._DaskRun`` on Dask blocks)."""
        state = self._initial_state(data)
        if self.warm_start and hasattr(self, "_state") and self._state.shape == state.shape:
            state[...] = self._state
            t = self.t_
        else:
            t = 0
        run = run_cls(self, backend, data, state, t, run_cls.initial_eta(self, data), rng, X_val, Y_val)
        run.set_reference(continuing=t > 0)
        run.epochs(self.max_iter, stop_early=True)
        self._commit(run, data, reset_curves=True, partial_rng=None)
        return self

    def partial_fit(self, X, y, classes=None, sample_weight=None):
        """Run one epoch over the given rows, continuing from the current state.

        The velocity, the update counter ``t_`` and the step size carry over between
        calls, and the permutations continue one random stream. For a classifier,
        ``classes`` must be given on the first call. ``tol``, ``early_stopping`` and the
        stall rules of "adaptive"/"auto" apply to ``fit`` only. With "auto", the step is
        estimated on the first call's rows and only ever lowered by later calls.
        """
        with self._atomic():
            if _is_dask(X):
                return _dask_module().partial_fit(self, X, y, classes, sample_weight)
            return self._partial_fit(X, y, classes, sample_weight)

    def _partial_fit(self, X, y, classes, sample_weight):
        first = not hasattr(self, "_state")
        backend, data = self._prepare(X, y, sample_weight, first=first, classes=classes, partial=True)
        data = data._replace(sw=self._normalise_weights(data.sw))
        return self._partial_fit_epoch(_Run, backend, data, first)

    def _partial_fit_epoch(self, run_cls, backend, data, first):
        """``partial_fit`` from validated data with normalised weights; ``run_cls`` as
        for :meth:`_fit_epochs`."""
        state = self._initial_state(data)
        if first:
            t = 0
            eta = run_cls.initial_eta(self, data)
        else:
            state[...] = self._state
            t = self.t_
            eta = self._eta
            if self.learning_rate == "auto":
                # never take a larger step than new rows allow
                eta = min(eta, run_cls.initial_eta(self, data))
        rng = None if first else getattr(self, "_partial_rng", None)
        # the stream of permutations continues across calls; a failed call draws nothing
        rng = check_random_state(self.random_state) if rng is None else copy.deepcopy(rng)
        run = run_cls(self, backend, data, state, t, eta, rng)
        run.set_reference(continuing=not first)
        run.epochs(1, stop_early=False)
        self._commit(run, data, reset_curves=first, partial_rng=rng)
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
            self.__dict__ = saved
            if rs is not None:
                rs.set_state(rs_state)
            raise

    # ------------------------------------------------------------------ helpers
    def _check_param_combinations(self):
        if self.nesterov and self.momentum <= 0:
            raise ValueError(f"nesterov=True requires momentum > 0 (got momentum={self.momentum!r}).")
        if self.learning_rate == "optimal" and self.alpha <= 0:
            raise ValueError(f"learning_rate='optimal' requires alpha > 0 (got alpha={self.alpha!r}).")

    def _prepare(self, X, y, sample_weight, *, first, classes=None, partial=False):
        """Validate parameters and inputs for a fit; return the backend and the data."""
        self._validate_params()
        self._check_param_combinations()
        return get_backend(self.backend), self._validate_inputs(
            X, y, sample_weight, first=first, classes=classes, partial=partial
        )

    def _validate_inputs(self, X, y, sample_weight, *, first, classes=None, partial=False):
        """Validated, encoded training data (sample weights not yet normalised)."""
        if isinstance(X, np.ndarray) and X.dtype.kind == "f" and not X.dtype.isnative:
            # big-endian float32 would otherwise become float64 (not a dtype in the list)
            X = X.astype(X.dtype.newbyteorder("="))
        _sparse.check_structure(X)  # before scipy reads a malformed matrix's indices
        X, y = validate_data(
            self,
            X,
            y,
            reset=first,
            accept_sparse=["csr"],
            dtype=list(FLOAT_DTYPES),
            order="C",
            multi_output=self._multi_output,
            y_numeric=not self._is_classifier,
        )
        Y, n_outputs, loss, fitted = self._targets(y, first=first, classes=classes, partial=partial)
        Y = np.ascontiguousarray(Y, dtype=X.dtype)
        if sample_weight is None:
            sw = np.ones(X.shape[0], dtype=X.dtype)
        else:  # rejects NaN, infinity and negative weights
            sw = _check_sample_weight(sample_weight, X, dtype=X.dtype, ensure_non_negative=True, copy=True)
        cw = self._class_weights(Y, fitted)
        if cw is not None:
            sw = sw * cw.astype(X.dtype, copy=False)
        top = float(np.max(sw)) if sw.shape[0] else 1.0
        if top > 0.0 and not 2.0**-64 <= top <= 2.0**64:
            # weights only count relative to each other (they are normalised to mean 1):
            # bring the largest into [0.5, 1) by an exact power of two, so that their sum
            # cannot overflow (weights of 1e308 summed to inf and became all 0) and n / sum
            # cannot (weights of 1e-320 became inf)
            sw = np.ldexp(sw, -int(np.frexp(top)[1])).astype(X.dtype, copy=False)
        return _Data(X, Y, sw, loss, n_outputs, fitted)

    @staticmethod
    def _initial_state(data):
        """Zero weights, intercept and velocity: (2, n_outputs, n_features + 1)."""
        return np.zeros((2, data.n_outputs, data.X.shape[1] + 1), dtype=data.X.dtype)

    @staticmethod
    def _normalise_weights(sw):
        """Scale weights to mean 1, so a batch's mean of ``sw_i * grad_i`` is an unbiased
        estimate of the full weighted-mean gradient for any batch size."""
        scale = _weight_scale(sw.shape[0], float(np.sum(sw, dtype=np.float64)))
        if scale == 1.0:  # unit weights (no sample_weight): no second array of n values
            return sw
        return np.ascontiguousarray(sw * scale, dtype=sw.dtype)

    def _split_validation(self, data, rng):
        from sklearn.model_selection import train_test_split

        n = data.X.shape[0]
        stratify = data.Y[:, 0] if self._is_classifier else None
        try:
            train, val = train_test_split(
                np.arange(n), test_size=self.validation_fraction, random_state=rng, stratify=stratify
            )
        except ValueError as exc:
            raise ValueError(
                f"early_stopping=True could not hold out validation_fraction="
                f"{self.validation_fraction} of {n} samples: {exc}"
            ) from None
        if len(train) == 0 or len(val) == 0:
            raise ValueError(
                f"early_stopping=True with validation_fraction={self.validation_fraction} "
                f"leaves an empty training or validation set for {n} samples."
            )
        train = np.sort(train)
        val = np.sort(val)
        X, Y, sw = data.X, data.Y, data.sw
        return data._replace(X=X[train], Y=Y[train], sw=sw[train]), X[val], Y[val]

    def _batch_rows(self, n):
        if self.batch_size == "full":
            return n
        return min(int(self.batch_size), n)

    def _initial_eta(self, data):
        if self.learning_rate == "auto":
            l2, _ = penalty_strengths(self.penalty, self.alpha, self.l1_ratio)
            eta = auto_learning_rate(
                data.X,
                data.sw,
                fit_intercept=self.fit_intercept,
                curvature=LOSSES[data.loss].curvature,
                l2=l2,
                batch_size=self._batch_rows(data.X.shape[0]),
                momentum=float(self.momentum),
            )
            source = "learning_rate='auto' computed it from X"
        else:
            eta = float(self.eta0)
            source = f"eta0={self.eta0!r}"
        # the kernels compute in the data's dtype: a step that is 0 there would leave the
        # weights where they start (a silent all-zero model), an infinite one gives NaN
        with np.errstate(over="ignore", under="ignore"):
            in_dtype = data.X.dtype.type(eta)
        if not (np.isfinite(in_dtype) and in_dtype > 0):
            raise ValueError(
                f"The step size {eta:.4g} ({source}) is {float(in_dtype):g} in "
                f"{data.X.dtype.name}, the data's dtype: gradient descent cannot take it. "
                "Rescale X" + (" or pass it as float64." if data.X.dtype != np.float64 else ".")
            )
        return eta

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
        new._state = run.state
        new._eta = run.eta
        new._loss = data.loss
        new._partial_rng = partial_rng
        new.t_ = run.t
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
        W = run.state[0]
        new._set_coef(W[:, :-1].copy(), W[:, -1].copy())
        self.__dict__ = new.__dict__

    def _decision(self, X):
        check_is_fitted(self, "_state")
        _sparse.check_structure(X)  # before scipy's product trusts a malformed matrix's indices
        X = validate_data(self, X, reset=False, accept_sparse=["csr"], dtype=list(FLOAT_DTYPES), order="C")
        W = self._state[0]
        return np.asarray(X @ W[:, :-1].T) + W[:, -1]

    def objective(self, X, y, sample_weight=None):
        """The penalised training objective of the fitted model on ``(X, y)``, in float64:
        ``sum_i s_i loss_i / sum_i s_i + alpha * (0.5 (1 - rho) ||W||^2 + rho ||W||_1)``
        with ``rho`` as set by ``penalty`` (the quantity gradient descent minimises)."""
        check_is_fitted(self, "_state")
        W = self._state[0].astype(np.float64)
        if _is_dask(X):
            total, n = _dask_module().weighted_loss(self, X, y, sample_weight, W)
        else:
            data = self._validate_inputs(X, y, sample_weight, first=False, partial=True)
            sw = self._normalise_weights(data.sw)
            total, n = _weighted_loss(data.X, data.Y, sw, W, self._loss), data.X.shape[0]
        l2, l1 = penalty_strengths(self.penalty, self.alpha, self.l1_ratio)
        return total / n + penalty_value(W[:, :-1], l2, l1)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        return tags


def _weighted_loss(X, Y, sw, W, loss):
    """``sum_i sw_i * loss_i`` in float64 at the float64 weights ``W`` (K, d + 1): the
    data term of ``BaseGD.objective`` (the Dask driver sums it over blocks)."""
    X = X.astype(np.float64, copy=False)
    values, _ = LOSSES[loss].value_grad(np.asarray(X @ W[:, :-1].T) + W[:, -1], Y.astype(np.float64))
    return float(sw.astype(np.float64) @ values)


def _weight_scale(n, total):
    """The factor that gives ``n`` weights summing to ``total`` a mean of 1 (see
    ``BaseGD._normalise_weights``); the Dask driver sums ``total`` blockwise."""
    if not total > 0.0:
        raise ValueError("sample_weight (times class_weight) must not sum to zero.")
    scale = n / total
    if not (np.isfinite(total) and np.isfinite(scale) and scale > 0.0):
        # (in memory the weights are first brought near 1 by a power of two; the Dask
        # driver only has their blockwise sum)
        raise ValueError(
            f"sample_weight (times class_weight) sums to {total:.4g} over {n} samples, beyond "
            "what float64 can normalise; divide the weights by a common factor (only their "
            "ratios matter)."
        )
    return scale


def _n_threads(n_jobs):
    """Threads for ``n_jobs``: None or -1 = every core this process may use, -2 = all but
    one, and so on."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    if n_jobs is None:
        return cores
    if n_jobs < 0:
        return max(1, cores + 1 + n_jobs)
    return int(n_jobs)


_background_pool = None
_background_key = None
_background_lock = threading.Lock()


def _background():
    """A one-thread pool for work that overlaps an epoch (the next permutation),
    recreated in a forked child, whose threads did not survive the fork."""
    global _background_pool, _background_key
    with _background_lock:
        if _background_pool is None or _background_key != os.getpid():
            _background_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="fastgd-order")
            _background_key = os.getpid()
        return _background_pool


class _Run:
    """One call's worth of epochs: owns the working state until the fit succeeds."""

    def __init__(self, est, backend, data, state, t, eta, rng, X_val=None, Y_val=None):
        self.est = est
        self.backend = backend
        self.X, self.Y, self.sw = data.X, data.Y, data.sw
        self.loss = data.loss
        self.reference = self.reference_name = None  # what divergence is measured against
        # sparse input: the CSR arrays (int64 indices, converted once per call) and the
        # backend's sparse kernels
        self.csr = _sparse.kernel_arrays(data.X) if _sparse.issparse(data.X) else None
        if self.csr is not None:
            self.backend = get_backend(est.backend, sparse=True)
        self.state = state
        self.t = int(t)
        self.eta = float(eta)
        self.reductions = 0
        self.rng = rng
        self.X_val, self.Y_val = X_val, Y_val
        self.curve = []
        self.times = []  # cumulative seconds in epochs at the end of each epoch
        self.val_scores = [] if X_val is not None else None
        self.n_epochs = 0
        n = data.X.shape[0]
        self.l2, self.l1 = penalty_strengths(est.penalty, est.alpha, est.l1_ratio)
        self.hp = np.zeros(P.N_HP, dtype=np.float64)
        self.hp[P.POWER_T] = est.power_t
        self.hp[P.L2] = self.l2
        self.hp[P.L1] = self.l1
        self.hp[P.MOMENTUM] = est.momentum
        self.hp[P.ALPHA] = est.alpha
        self.schedule = SCHEDULES[est.learning_rate]
        if est.learning_rate == "optimal":
            self.hp[P.OPTIMAL_T0] = optimal_t0(est.alpha)
        self.codes = np.zeros(P.N_CODES, dtype=np.int64)
        self.codes[P.LOSS] = LOSSES[data.loss].code
        self.codes[P.SCHEDULE] = self.schedule
        self.codes[P.NESTEROV] = int(bool(est.nesterov))
        self.codes[P.FIT_INTERCEPT] = int(bool(est.fit_intercept))
        self.codes[P.BATCH_SIZE] = est._batch_rows(n)
        self.codes[P.N_THREADS] = _n_threads(est.n_jobs)
        self.in_order = None  # 0, 1, ..., n - 1, made on first use
        self.more_epochs = False  # whether another epoch follows the current one
        self.pending_order = None  # the next epoch's permutation, being drawn
        self.eta_last = self._current_eta()

    @staticmethod
    def initial_eta(est, data):
        """The step size a fit starts from (``BaseGD._initial_eta``, on in-memory data)."""
        return est._initial_eta(data)

    def _current_eta(self):
        t = max(self.t, 1)
        return float(step_size(self.schedule, t, self.eta, self.hp[P.POWER_T], self.hp[P.OPTIMAL_T0], self.hp[P.ALPHA]))

    def _permutation(self, n):
        """This epoch's row order, the next permutation of the fit's random stream.

        When another epoch follows in this call (``self.more_epochs``), the next
        permutation is drawn on a background thread while this epoch's kernel runs
        (NumPy draws it without the GIL, and the kernels release it): at a million rows
        a permutation costs about 12 ms, a sizeable part of an SGD epoch. The stream is
        the same as drawing them one after the other; a fit that stops early leaves one
        drawn permutation unused.
        """
        pending, self.pending_order = self.pending_order, None
        order = pending.result() if pending is not None else self.rng.permutation(n)
        if self.more_epochs:
            self.pending_order = _background().submit(self.rng.permutation, n)
        return order.astype(np.int64, copy=False)

    def _one_epoch(self):
        """Run the kernel once; the only place an estimator calls a backend."""
        n = self.X.shape[0]
        # full batch: the order cannot matter, so read X in storage order (streaming)
        shuffle = self.est.shuffle and self.codes[P.BATCH_SIZE] < n
        if shuffle:
            order = self._permutation(n)
        else:
            if self.in_order is None:
                self.in_order = np.arange(n, dtype=np.int64)
            order = self.in_order
        self.hp[P.ETA0] = self.eta
        self.codes[P.T_START] = self.t
        pen = penalty_value(self.state[0][:, :-1], self.l2, self.l1)
        if self.csr is not None:
            data, indices, indptr = self.csr
            X = {"data": data, "indices": indices, "indptr": indptr}
        else:
            X = {"X": self.X}
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            total = self.backend.epoch(
                **X, Y=self.Y, sw=self.sw, order=order, state=self.state, hp=self.hp, codes=self.codes
            )
        self.t += -(-n // int(self.codes[P.BATCH_SIZE]))
        return float(total) / n + pen

    def _on_stall(self):
        """What a stall does: "adaptive" divides the step by ADAPTIVE_FACTOR while it stays
        above ADAPTIVE_MIN_ETA; "auto" restarts the momentum (the velocity carries the
        oscillation) and, for mini-batches, divides the step to shrink the gradient noise,
        at most AUTO_REDUCTIONS times. Returns False when the fit should stop instead."""
        rule = self.est.learning_rate
        if rule == "adaptive":
            if self.eta / ADAPTIVE_FACTOR < ADAPTIVE_MIN_ETA:
                return False
            self.eta /= ADAPTIVE_FACTOR
        elif rule == "auto":
            if self.reductions == AUTO_REDUCTIONS:
                return False
            self.state[1] = 0.0
            if self.codes[P.BATCH_SIZE] < self.X.shape[0]:
                self.eta /= ADAPTIVE_FACTOR
        else:
            return False
        self.reductions += 1
        self.eta_last = self._current_eta()
        return True

    def _patience(self):
        """Epochs without improvement that make a stall: ``n_iter_no_change``, except
        that "auto" judges its first AUTO_REDUCTIONS stalls over at least
        AUTO_STALL_UPDATES updates rather than n_iter_no_change epochs: on large data
        one epoch without improvement means the step has reached its noise floor, and
        waiting epochs longer there only costs time."""
        patience = self.est.n_iter_no_change
        if self.est.learning_rate == "auto" and self.reductions < AUTO_REDUCTIONS:
            updates = -(-self.X.shape[0] // int(self.codes[P.BATCH_SIZE]))
            patience = min(patience, -(-AUTO_STALL_UPDATES // updates))
        return patience

    def epochs(self, max_epochs, *, stop_early):
        try:
            self._epochs(max_epochs, stop_early=stop_early)
        finally:
            # a permutation still being drawn finishes before the call returns, so a
            # RandomState passed as random_state is left in one definite state
            if self.pending_order is not None:
                self.pending_order.result()
                self.pending_order = None

    def zero_objective(self):
        """The objective of the all-zero model (weights and intercept 0) on this call's
        data, in float64, without a pass over X; None where it is not known."""
        if self.loss == "squared_error":
            sq = np.einsum("ik,ik->i", self.Y, self.Y, dtype=np.float64)
            return 0.5 * float(np.dot(self.sw.astype(np.float64, copy=False), sq)) / max(self.Y.shape[0], 1)
        if self.loss == "log_loss":
            return float(np.log(2.0))
        if self.loss == "multinomial":
            return float(np.log(self.state.shape[1]))
        return None

    def set_reference(self, *, continuing):
        """Set what divergence is measured against (see ``DivergenceError``). Against
        the all-zero model, a fit whose objective grows a billion-fold within its first
        epoch, or over many ``partial_fit`` calls of one epoch each, is caught too; the
        fitted model's first objective keeps a continuing call on data of another scale
        from being taken for a divergence."""
        candidates = [(self.zero_objective(), "the all-zero model's objective")]
        if continuing and getattr(self.est, "loss_curve_", None):
            candidates.append((self.est.loss_curve_[0], "the fitted model's first epoch's objective"))
        known = [c for c in candidates if c[0] is not None and np.isfinite(c[0]) and c[0] > 0]
        self.reference, self.reference_name = max(known) if known else (None, None)

    def _divergence_hint(self, objective, epoch):
        """What to do about a divergence, by its likely cause."""
        est = self.est
        if epoch == 1 and not np.isfinite(objective) and np.all(np.isfinite(self.state)):
            return (
                "The loss itself is not finite at these weights: the targets or features are "
                "too large for it in floating point; rescale X or y."
            )
        if est.learning_rate == "optimal":
            return (
                f"learning_rate='optimal' sets the step from alpha alone, 1 / (alpha (t0 + t - 1)), "
                f"which does not suit these data with alpha={est.alpha!r}: use "
                "learning_rate='auto' (the default), which picks a stable step from the data."
            )
        if est.learning_rate == "auto":
            return (
                "The automatic step was estimated on other rows (partial_fit) or the data are "
                "extreme: use learning_rate='constant' with a smaller eta0, or rescale X."
            )
        return (
            "Use a smaller eta0, or learning_rate='auto' (the default), which picks a stable "
            "step from the data."
        )

    def _epochs(self, max_epochs, *, stop_early):
        est = self.est
        tol = est.tol
        best = np.inf
        no_improvement = 0
        converged = False
        name = type(est).__name__
        elapsed = 0.0
        for epoch in range(1, max_epochs + 1):
            tic = time.perf_counter()
            self.more_epochs = epoch < max_epochs
            objective = self._one_epoch()
            elapsed += time.perf_counter() - tic
            self.n_epochs += 1
            self.eta_last = self._current_eta()
            first = self.curve[0] if self.curve else objective
            reference = self.reference if self.reference is not None else first
            if (
                not np.isfinite(objective)
                or not np.all(np.isfinite(self.state))
                or objective > DIVERGENCE_FACTOR * max(reference, np.finfo(np.float64).tiny)
            ):
                against = (
                    f"from {first:.4g} in the first epoch" if self.reference is None
                    else f"{self.reference_name} is {self.reference:.4g}"
                )
                raise DivergenceError(
                    f"{name} diverged in epoch {epoch}: the objective became {objective:.4g} "
                    f"({against}) with "
                    f"step size {self.eta_last:.4g} (learning_rate={est.learning_rate!r}). "
                    + self._divergence_hint(objective, epoch)
                )
            self.curve.append(objective)
            self.times.append(elapsed)
            if est.verbose:
                print(
                    f"-- Epoch {len(self.curve)}: objective {objective:.6g}, step size "
                    f"{self.eta_last:.4g}, updates {self.t}, {time.perf_counter() - tic:.4f} s"
                )
            if not stop_early:
                continue
            if self.X_val is not None:
                score = est._score_state(self.state[0], self.X_val, self.Y_val)
                self.val_scores.append(score)
                criterion = -score
            else:
                criterion = objective
            if tol is not None:
                if criterion > best - tol:
                    no_improvement += 1
                else:
                    no_improvement = 0
                best = min(best, criterion)
                if no_improvement >= self._patience():
                    if self._on_stall():
                        if est.verbose:
                            print(f"-- No improvement for {no_improvement} epochs: step size {self.eta:.4g}")
                        no_improvement = 0
                    else:
                        converged = True
                        if est.verbose:
                            print(f"-- Converged after {epoch} epochs")
                        break
        if stop_early and tol is not None and not converged:
            warnings.warn(
                f"{name} reached max_iter={max_epochs} epochs before the stopping criterion "
                f"(tol={tol}, n_iter_no_change={est.n_iter_no_change}) was met; increase "
                f"max_iter if the fit is not good enough.",
                ConvergenceWarning,
                stacklevel=6,  # the user's fit() or partial_fit() call
            )
