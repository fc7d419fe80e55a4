"""The resolved fit: every decision about one model's fit, made once.

:func:`build` reads the estimator's parameters and the validated data and returns a
frozen :class:`FitSpec`: the registry entries (loss, update rule, schedule, penalty),
the penalty strengths, the rows per step, the threads, the kernels' ``hp``/``codes``
vectors, the state's shape and the initial step. The drivers (``fastgd._run`` in
memory, ``fastgd._path`` for many models, ``fastgd._dask`` on blocks) read the spec and
never the estimator: this module, the estimators and the cross-validation classes are
the only code that reads an estimator's parameters.

The initial step comes from the data for ``learning_rate="auto"``. Each driver gathers
the data's step statistics its own way (in-memory rows, one fold's rows, Dask blocks:
a :class:`fastgd._smoothness.StepStats` record holding only what :func:`step_needs`
asks for), and :func:`initial_step` is the one function that turns such a record into
a step.
"""

import math
import os
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from . import _params as P
from ._backends import resolve
from ._losses import LOSSES
from ._optimizers import OPTIMIZERS, state_size
from ._penalties import PENALTIES, penalty_strengths
from ._schedules import SCHEDULES
from ._smoothness import StepNeeds, adaptive_step, auto_step

__all__ = ["AUTO", "DEFAULT_BATCH_SIZE", "Choice", "DataKind", "newton_preconditioner", "newton_sample_rows", "FitSpec", "batch_rows", "build", "checked_step", "choose", "data_kind",
           "initial_state", "initial_step", "n_threads", "resolved", "settings", "step_needs"]

AUTO = "auto"

# ``alpha="auto"`` where the fit does not take the sparse recipe below: scikit-learn's
# SGDClassifier default, the penalty the dense fits were measured with
DEFAULT_ALPHA = 1e-4

# the sparse recipe of ``optimizer="auto"`` (AdaGrad, no penalty, stopped on held-out
# rows) from this many rows: below it, holding out a tenth of the rows costs more
# accuracy than the penalty-free rule gains (the user guide's "Defaults" page), and
# momentum SGD with ``DEFAULT_ALPHA`` stays the choice
SPARSE_RECIPE_MIN_ROWS = 10_000

# ``batch_size="auto"``: rows per step of the stochastic rules ("newton-sketch" takes
# full-batch steps)
DEFAULT_BATCH_SIZE = 32

# "newton-sketch": its curvature sample holds this many rows per coefficient (d + 1);
# the preconditioned spectrum of least squares then lies within about
# (1 +- sqrt(1 / 20))^2 of 1
NEWTON_SAMPLE_PER_FEATURE = 20
# ... and more where forming its curvature costs at most this many passes' worth of the
# data's values (near-separable classes put their curvature on few rows, which a small
# sample misses: 3 ordered classes on 30 columns of 80,000 rows took 33 passes with
# 20 rows per coefficient, 11 with n / (d + 1) rows; a larger budget made the 10-class
# and the binary fits of 100 columns slower than the passes it saved)
NEWTON_SAMPLE_PASSES = 1
# squared error's curvature does not change with the weights: a larger sample, once
NEWTON_SAMPLE_PER_FEATURE_QUADRATIC = 100
# the full (d + 1)-square curvature is formed only where one refresh costs at most this
# many passes' worth of the data's values (m (d + 1)^2 <= NEWTON_FACTOR_PASSES n (d + 1)),
# else its diagonal is the preconditioner
NEWTON_FACTOR_PASSES = 8


@dataclass(frozen=True)
class DataKind:
    """What ``optimizer="auto"`` and the other data-aware defaults look at: whether
    the rows are sparse, and how many there are."""

    sparse: bool
    n_rows: int  # -1 where unknown (Dask dataframes)
    n_features: int = -1  # -1 where unknown


def data_kind(X):
    """The :class:`DataKind` of in-memory training rows ``X`` (a CSR matrix or an
    ndarray)."""
    return DataKind(sparse=not isinstance(X, np.ndarray), n_rows=int(X.shape[0]), n_features=int(X.shape[1]))


def newton_sample_rows(n, d, quadratic):
    """The rows of "newton-sketch"'s curvature sample for ``n`` rows of ``d`` features
    (``quadratic``: squared error, whose curvature is formed once): at least
    :data:`NEWTON_SAMPLE_PER_FEATURE` (or ``..._QUADRATIC``) per coefficient, and up to
    what forming the curvature in :data:`NEWTON_SAMPLE_PASSES` passes' worth of the
    data's values allows (``m (d + 1) <= NEWTON_SAMPLE_PASSES n``)."""
    per = NEWTON_SAMPLE_PER_FEATURE_QUADRATIC if quadratic else NEWTON_SAMPLE_PER_FEATURE
    return int(min(n, max(per * (d + 1), NEWTON_SAMPLE_PASSES * n // (d + 1))))


def newton_preconditioner(n, d):
    """"full" where forming "newton-sketch"'s ``(d + 1)``-square curvature is
    affordable on ``n`` rows of ``d`` features (see :data:`NEWTON_FACTOR_PASSES`), else
    "diagonal"."""
    m = NEWTON_SAMPLE_PER_FEATURE * (d + 1)
    return "full" if min(n, m) * (d + 1) <= NEWTON_FACTOR_PASSES * max(n, 1) else "diagonal"


@dataclass(frozen=True)
class Choice:
    """The data-aware defaults of one fit, resolved: the update rule (``optimizer_``),
    the penalty strength (``alpha_``) and whether held-out rows stop the fit."""

    optimizer: str
    alpha: float
    early_stopping: bool
    per_row: bool = False  # alpha is 1 / the number of training rows (see on_rows)

    def on_rows(self, n_rows):
        """This choice for a fit that trains on ``n_rows`` rows only (those early
        stopping did not hold out): a per-row ``alpha`` follows them."""
        if not self.per_row or n_rows < 1:
            return self
        return replace(self, alpha=1.0 / n_rows)


def _check_driver_rule(s, kind, grid, partial):
    """Raise ValueError where the settings ``s`` or the data ``kind`` do not fit an
    update rule the driver steps ("newton-sketch": full-batch steps on dense in-memory
    rows, a line-searched step, an L2 penalty or none)."""
    name = f"optimizer={s.optimizer!r}"
    if partial:
        problem = ("partial_fit takes one stochastic epoch per call; use fit (warm_start=True continues a "
                   "fitted model), or another optimizer")
    elif grid:
        problem = ("the CV classes and fit_path train their grids of models with the kernels' stochastic rules; "
                   "use optimizer='auto' or 'sgd' there, or fit each model on its own")
    elif kind.sparse:
        problem = (f"its curvature is a (d + 1)-square matrix, out of reach on sparse input of "
                   f"{kind.n_features if kind.n_features >= 0 else 'many'} columns; use optimizer='adagrad' or "
                   f"'auto' on sparse input")
    elif kind.n_rows < 0:
        problem = ("it runs on in-memory data; on Dask input use optimizer='sgd' with batch_size='full' "
                   "(exact full-batch steps on the workers) or 'auto'")
    elif s.penalty in ("l1", "elasticnet") and s.l1_ratio != 0 or s.penalty == "l1":
        problem = "an L1 part of the penalty has no proximal step in its metric; use penalty='l2' or None"
    elif s.learning_rate != AUTO:
        problem = f"it sizes its step by a line search: learning_rate must be 'auto' (got {s.learning_rate!r})"
    elif s.average:
        problem = f"averaging is for stochastic steps: average must be False (got {s.average!r})"
    elif s.batch_size not in (AUTO, "full"):
        problem = f"it takes full-batch steps: batch_size must be 'auto' or 'full' (got {s.batch_size!r})"
    else:
        return
    raise ValueError(f"{s.name}: {name} cannot run here: {problem}.")


def choose(s, kind, *, grid=False, validation=False, partial=False):
    """The :class:`Choice` for settings ``s`` (their "auto" values) on data of kind
    ``kind`` (:class:`DataKind`); ``grid``: the models of a regularisation path or a CV
    grid, whose penalty is given and whose folds' held-out rows choose the model.

    * ``optimizer="auto"``: "newton-sketch" on dense in-memory rows where its full
      curvature is affordable (:func:`newton_preconditioner`) and nothing asks for
      stochastic steps (``batch_size``, ``learning_rate``, ``average``, ``nesterov`` at
      their defaults, an L2 penalty or none): it needs a handful of passes where one
      global step needs tens. AdaGrad on sparse rows (at least
      :data:`SPARSE_RECIPE_MIN_ROWS` of them) when the fit has no penalty (the default
      ``alpha="auto"``, ``alpha=0`` or ``penalty=None``): its per-coordinate steps suit
      features of very different frequencies, shrink the step of the intercept and of
      frequent words on their own, and every step is O(nnz). Momentum SGD ("sgd")
      everywhere else (dense rows, a penalty, small data).
    * ``alpha="auto"``: 0 (no penalty) where that sparse recipe runs (the held-out rows
      regularise it: an L2 penalty would make every AdaGrad step dense, and
      ``alpha=1e-4`` capped the accuracy); ``1 / n_rows`` (the rows it trains on) for
      "newton-sketch" (the penalty of scikit-learn's unweighted ``LogisticRegression()``
      and ``Ridge()``: it vanishes as the rows grow; sample weights stay relative, as
      everywhere in fastgd, so scaling them changes nothing, and a scale-free rule should not be held back by a fixed
      penalty on unscaled columns); else :data:`DEFAULT_ALPHA`.
    * ``early_stopping="auto"``: on where the sparse recipe runs (without a penalty,
      the held-out score is what stops it before it fits noise) and wherever
      ``validation`` (a validation set passed to ``fit``) is given; off elsewhere and
      for grids.

    ValueError where an explicit rule does not fit the data or the call (``partial``:
    ``partial_fit``): "newton-sketch" on sparse or Dask input, in a grid, and so on.
    """
    big_sparse = kind.sparse and (kind.n_rows < 0 or kind.n_rows >= SPARSE_RECIPE_MIN_ROWS)
    free = s.penalty is None or (s.alpha == AUTO and s.penalty == "l2") or s.alpha == 0
    optimizer = s.optimizer
    if optimizer == AUTO:
        # (nesterov=True asks for momentum; learning_rate="optimal" for a penalty)
        adagrad = big_sparse and free and not grid and not s.nesterov and not s.schedule.needs_alpha
        newton = (not kind.sparse and kind.n_rows > 0 and kind.n_features > 0 and not grid and not partial
                  and s.penalty in ("l2", None) and s.learning_rate == AUTO and not s.average
                  and s.batch_size in (AUTO, "full") and not s.nesterov
                  and newton_preconditioner(kind.n_rows, kind.n_features) == "full")
        optimizer = "adagrad" if adagrad else "newton-sketch" if newton else "sgd"
    rule = OPTIMIZERS[optimizer]
    if rule.steps == "driver":
        _check_driver_rule(s, kind, grid, partial)
    # the sparse recipe: a rule that is adaptive and lazy as long as there is no L2 part
    recipe = big_sparse and rule.adaptive and rule.lazy(False, True) and not s.schedule.needs_alpha
    alpha = s.alpha
    per_row = False
    if alpha == AUTO:
        if recipe and s.penalty in ("l2", None):
            alpha = 0.0
        elif rule.steps == "driver" and kind.n_rows > 0:
            alpha, per_row = 1.0 / kind.n_rows, True
        else:
            alpha = DEFAULT_ALPHA
    early = s.early_stopping
    if early == AUTO:
        early = bool((recipe and (s.penalty is None or alpha == 0) and not grid) or validation)
    return Choice(optimizer=optimizer, alpha=float(alpha), early_stopping=bool(early), per_row=per_row)


def n_threads(n_jobs):
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


def batch_rows(batch_size, n):
    """Rows per step for the ``batch_size`` parameter on ``n`` rows ("auto" unresolved:
    :data:`DEFAULT_BATCH_SIZE`)."""
    if batch_size == "full":
        return n
    if batch_size == AUTO:
        return min(DEFAULT_BATCH_SIZE, n)
    return min(int(batch_size), n)


@dataclass(frozen=True)
class Settings:
    """The estimator's parameters as one fit reads them, taken once (before the data
    are known: the Dask input preparation needs some of them)."""

    name: str  # the estimator's class name, for messages
    penalty: Any
    alpha: float
    l1_ratio: float
    fit_intercept: bool
    max_iter: int
    tol: Any
    n_iter_no_change: int
    early_stopping: bool
    validation_fraction: float
    shuffle: Any
    random_state: Any
    learning_rate: str
    eta0: float
    power_t: float
    optimizer: str
    momentum: float
    nesterov: bool
    beta_1: float
    beta_2: float
    epsilon: float
    average: Any
    batch_size: Any
    n_jobs: Any
    backend: str
    dask_mode: str
    sync_every: Any
    verbose: Any
    class_weight: Any
    is_classifier: bool
    score: Callable  # (W, X, Y, sw) -> the validation score (higher is better)
    class_weights: Callable  # (Y, fitted) -> per-row multipliers from class_weight

    @property
    def schedule(self):
        return SCHEDULES[self.learning_rate]

    @property
    def rule(self):
        if self.optimizer == AUTO:
            raise RuntimeError("fastgd: optimizer='auto' read before the fit chose it (an internal error)")
        return OPTIMIZERS[self.optimizer]

    @property
    def threads(self):
        return n_threads(self.n_jobs)


def settings(est):
    """The :class:`Settings` of estimator ``est``, its "auto" values as chosen for the
    current call (``est._choice``, a :class:`Choice` set by the estimator from the data
    before anything reads the settings; before that they stay "auto")."""
    raw = Settings(
        name=type(est).__name__, penalty=est.penalty,
        alpha=est.alpha, l1_ratio=est.l1_ratio, fit_intercept=bool(est.fit_intercept), max_iter=est.max_iter,
        tol=est.tol, n_iter_no_change=est.n_iter_no_change, early_stopping=est.early_stopping,
        validation_fraction=est.validation_fraction, shuffle=est.shuffle, random_state=est.random_state,
        learning_rate=est.learning_rate, eta0=est.eta0, power_t=est.power_t, optimizer=est.optimizer,
        momentum=est.momentum, nesterov=est.nesterov, beta_1=est.beta_1, beta_2=est.beta_2,
        epsilon=est.epsilon, average=est.average, batch_size=est.batch_size, n_jobs=est.n_jobs,
        backend=est.backend, dask_mode=est.dask_mode, sync_every=est.sync_every, verbose=est.verbose,
        class_weight=getattr(est, "class_weight", None), is_classifier=est._is_classifier,
        score=est._score_state, class_weights=est._class_weights,
    )
    choice = getattr(est, "_choice", None)
    if choice is None:
        return raw
    return resolved(raw, choice)


def resolved(s, choice):
    """Settings ``s`` with their "auto" values replaced by ``choice``'s (and
    ``batch_size="auto"`` by the rule's: full batch for "newton-sketch", else
    :data:`DEFAULT_BATCH_SIZE`)."""
    optimizer = choice.optimizer if s.optimizer == AUTO else s.optimizer
    batch_size = s.batch_size
    if batch_size == AUTO:
        batch_size = "full" if OPTIMIZERS[optimizer].steps == "driver" else DEFAULT_BATCH_SIZE
    return replace(
        s,
        batch_size=batch_size,
        optimizer=optimizer,
        alpha=choice.alpha if s.alpha == AUTO else s.alpha,
        early_stopping=choice.early_stopping if s.early_stopping == AUTO else s.early_stopping,
    )


@dataclass(frozen=True, eq=False)
class FitSpec:
    """One model's fit, resolved (see the module docstring). ``hp`` and ``codes`` are
    the kernels' vectors for the first epoch; drivers copy them into their own arrays."""

    settings: Settings
    loss_name: str
    loss: Any  # fastgd._losses.Loss
    rule: Any  # fastgd._optimizers.Optimizer
    schedule: Any  # fastgd._schedules.Schedule
    penalty_rule: Any  # fastgd._penalties.Penalty
    l2: float
    l1: float
    n_rows: int
    n_outputs: int
    n_features: int
    dtype: np.dtype
    batch: int  # rows per step
    threads: int
    backend: str  # the backend that runs ("auto" resolved)
    hp: np.ndarray
    codes: np.ndarray
    state_shape: tuple
    eta: float  # the initial step
    eta_source: str  # where it came from, for messages

    def __getattr__(self, name):
        # the estimator's parameters, as read once (``spec.tol``, ``spec.verbose``, ...)
        if name == "settings":
            raise AttributeError(name)
        return getattr(self.settings, name)

    @property
    def updates_per_epoch(self):
        return -(-self.n_rows // self.batch)

    def zero_objective(self, Y, sw):
        """The all-zero model's objective on ``(Y, sw)`` (the loss registry's)."""
        return self.loss.zero_objective(Y, sw, self.n_outputs)


def initial_state(est, data):
    """Zero weights, intercepts and update-rule state (and average) for a fit of
    ``est`` on ``data``: (slots, n_outputs, n_features + 1) in the data's dtype."""
    slots = state_size(settings(est).rule, bool(est.average))
    return np.zeros((slots, data.n_outputs, data.X.shape[1] + 1), dtype=data.X.dtype)


def step_needs(s, n):
    """Which step statistics :func:`initial_step` reads for settings ``s`` on ``n``
    rows: the largest weighted squared row norm where batches are smaller than the data,
    the top eigenvalue where they hold more than one row (or all of them), and the mean
    row L1 norm for the adaptive rules; none for a step given as ``eta0``."""
    if not s.schedule.from_data:
        return StepNeeds(max_row=False, eigen=False, mean_l1=False)
    if s.rule.adaptive:
        return StepNeeds(max_row=False, eigen=False, mean_l1=True)
    b = batch_rows(s.batch_size, n)
    return StepNeeds(max_row=b < n, eigen=b > 1 or b >= n, mean_l1=False)


def checked_step(eta, source, dtype):
    """``eta``, once it is known to be a positive finite step in ``dtype`` (the data's,
    in which the kernels compute); ``source`` says where it came from, for the error."""
    # the kernels compute in the data's dtype: a step that is 0 there would leave the
    # weights where they start (a silent all-zero model), an infinite one gives NaN
    with np.errstate(over="ignore", under="ignore"):
        in_dtype = dtype.type(eta)
    if not (np.isfinite(in_dtype) and in_dtype > 0):
        raise ValueError(
            f"The step size {eta:.4g} ({source}) is {float(in_dtype):g} in "
            f"{dtype.name}, the data's dtype: gradient descent cannot take it. "
            "Rescale X" + (" or pass it as float64." if dtype != np.float64 else ".")
        )
    return eta


def initial_step(s, loss, stats, dtype, n_outputs=1):
    """``(step, where it came from)``: the step a fit with settings ``s`` and loss
    ``loss`` (a name) starts from, given the step statistics ``stats`` of its rows
    (:class:`fastgd._smoothness.StepStats`, as :func:`step_needs` asks); ``eta0`` where
    the schedule does not take the step from the data. Checked to be a positive finite
    step in ``dtype``. The one place a step is made from statistics."""
    if not s.schedule.from_data:
        return checked_step(float(s.eta0), f"eta0={s.eta0!r}", dtype), f"eta0={s.eta0!r}"
    source = "learning_rate='auto' computed it from X"
    # (invalid: statistics of X that are not finite, X's finiteness not checked yet, make
    # a step that is not finite either; the estimator then reports the NaN in X)
    with np.errstate(invalid="ignore"):
        if s.rule.adaptive:
            eta = adaptive_step(stats.mean_l1, optimizer=s.optimizer, beta_2=float(s.beta_2))
            if LOSSES[loss].class_targets and n_outputs > 1:  # (a softmax over the classes)
                eta = float(f"{eta / math.sqrt(n_outputs):.8g}")
        else:
            l2, _ = penalty_strengths(s.penalty, s.alpha, s.l1_ratio)
            eta = auto_step(n=stats.n, batch_size=batch_rows(s.batch_size, stats.n),
                            max_row_smoothness=stats.max_row, top_eigenvalue=stats.eigen,
                            curvature=LOSSES[loss].curvature, l2=l2, momentum=float(s.momentum))
    return checked_step(eta, source, dtype), source


def build(est_or_settings, *, loss, n_rows, n_outputs, n_features, dtype, stats, threads=None):
    """The :class:`FitSpec` of a fit of an estimator (or its :class:`Settings`) on
    ``n_rows`` rows of ``n_features`` features in ``dtype`` with ``n_outputs`` outputs
    of the loss named ``loss``. ``stats`` is a function ``(StepNeeds, Settings) ->
    StepStats`` giving the rows' step statistics (called only where the step comes from
    the data).
    ``threads`` replaces ``n_jobs``'s thread count (the Dask driver's tasks take one)."""
    s = est_or_settings if isinstance(est_or_settings, Settings) else settings(est_or_settings)
    dtype = np.dtype(dtype)
    needs = step_needs(s, n_rows)
    record = stats(needs, s) if any(needs) else None
    eta, source = initial_step(s, loss, record, dtype, n_outputs)
    l2, l1 = penalty_strengths(s.penalty, s.alpha, s.l1_ratio)
    rule, schedule = s.rule, s.schedule
    batch = batch_rows(s.batch_size, n_rows)
    threads = s.threads if threads is None else int(threads)
    hp = np.zeros(P.N_HP)
    hp[P.ETA0] = eta
    hp[P.POWER_T] = s.power_t
    hp[P.L2] = l2
    hp[P.L1] = l1
    hp[P.MOMENTUM] = s.momentum
    hp[P.ALPHA] = s.alpha
    hp[P.BETA_1] = s.beta_1
    hp[P.BETA_2] = s.beta_2
    hp[P.EPSILON] = s.epsilon
    if schedule.t0 is not None:
        hp[P.OPTIMAL_T0] = schedule.t0(s.alpha)
    codes = np.zeros(P.N_CODES, dtype=np.int64)
    codes[P.LOSS] = LOSSES[loss].code
    codes[P.SCHEDULE] = schedule.code
    codes[P.NESTEROV] = int(bool(s.nesterov))
    codes[P.FIT_INTERCEPT] = int(bool(s.fit_intercept))
    codes[P.BATCH_SIZE] = batch
    codes[P.N_THREADS] = threads
    codes[P.OPTIMIZER] = rule.code
    codes[P.AVERAGE_START] = 0  # (no averaging until the driver says when it starts)
    hp.flags.writeable = False
    codes.flags.writeable = False
    return FitSpec(
        settings=s, loss_name=loss, loss=LOSSES[loss], rule=rule, schedule=schedule, penalty_rule=PENALTIES[s.penalty],
        l2=l2, l1=l1, n_rows=int(n_rows), n_outputs=int(n_outputs), n_features=int(n_features), dtype=dtype,
        batch=batch, threads=threads, backend=resolve(s.backend), hp=hp, codes=codes,
        state_shape=(state_size(rule, bool(s.average)), int(n_outputs), int(n_features) + 1),
        eta=eta, eta_source=source,
    )
