"""The epoch driver: one ``fit``/``partial_fit`` call's epochs, and the one place that
calls a backend's ``epoch`` kernel on in-memory data.

:class:`Run` owns the working state (weights, intercept, velocity) until the call
succeeds. Each epoch draws its row order (the estimator's random stream; the next
permutation is drawn on a background thread while the current epoch runs), calls the
kernel once, and then judges the epoch: divergence (:class:`DivergenceError`), the
stopping criterion (``tol``, ``n_iter_no_change``, early stopping on a validation set),
what a stall does for the learning-rate rule, verbose output and the loss and time
curves. The Dask driver (``fastgd._dask``) subclasses :class:`Run` and replaces only
:meth:`Run.epoch`.

:func:`prepared` is the supported hook for code that times epochs (``bench/``): a run
ready to go on validated data, with :meth:`Run.epoch`, ``state`` and
:meth:`Run.kernel_args`.
"""

import concurrent.futures
import os
import threading
import time
import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state

from . import _params as P
from . import _shuffle, _sparse
from ._backends import get_backend, resolve
from ._losses import LOSSES
from ._optimizers import OPTIMIZERS, state_size
from ._penalties import penalty_strengths, penalty_value
from ._schedules import CONSTANT, SCHEDULES, step_size
from ._shuffle import draw_order
from ._smoothness import adaptive_learning_rate, auto_learning_rate
from ._validation import normalise_weights

# an objective this many times the reference (see DivergenceError) is a divergence
DIVERGENCE_FACTOR = 1e10
# an epoch of at least this much work (stored values of X times outputs) called from the
# main thread runs its kernel on a worker thread while the main thread waits, so that
# Ctrl-C (SIGINT) takes effect at once instead of when the kernel returns: a kernel
# holds the thread that called it, and Python runs signal handlers in the main thread
# only between bytecodes. Smaller epochs (under a few milliseconds) run in place.
INTERRUPTIBLE_MIN_WORK = 1 << 22
# ... and the waiting main thread returns to Python this often (seconds), so that a
# signal delivered to another thread is seen too
INTERRUPT_POLL_S = 0.05


# sparse input warns when a dense step costs more than this many times the batch's
# non-zeros
DENSE_STEP_WARN_RATIO = 10


class DenseStepWarning(UserWarning):
    """Warned when sparse input is fitted with the dense O(n_features) step at every
    update and that costs more than ten times the batch's non-zeros.

    The iterates are the same as with a lazy step; only the time differs. Which
    settings step lazily is listed in the user guide's "Update rules" page: momentum
    SGD with a constant step and no L1 part, AdaGrad and RMSprop without a penalty, and
    none with ``average``.
    """


class DivergenceError(FloatingPointError):
    """Raised when a fit diverges: the objective or the weights become non-finite, or the
    objective grows past DIVERGENCE_FACTOR (1e10) times a reference: the larger of the
    objective of the all-zero model on the call's data and, when the call continues a
    fitted model (``partial_fit``, ``warm_start``), that model's first epoch's objective
    (or, where neither is known or positive, the call's own first epoch's objective).

    The estimator keeps the state it had before the call (a fitted model stays usable).
    """


def weighted_loss(X, Y, sw, W, loss):
    """``sum_i sw_i * loss_i`` in float64 at the float64 weights ``W`` (K, d + 1): the
    data term of ``BaseGD.objective`` (the Dask driver sums it over blocks)."""
    X = X.astype(np.float64, copy=False)
    values, _ = LOSSES[loss].value_grad(np.asarray(X @ W[:, :-1].T) + W[:, -1], Y.astype(np.float64))
    return float(sw.astype(np.float64) @ values)




def reported_weights(state, avg_start, t):
    """``state[-1]`` (the average) once averaging has started (``avg_start`` < ``t``),
    else ``state[0]``."""
    if avg_start is not None and t > avg_start:
        return state[-1]
    return state[0]


def batch_rows(batch_size, n):
    """Rows per step for the ``batch_size`` parameter on ``n`` rows."""
    if batch_size == "full":
        return n
    return min(int(batch_size), n)


# codes[AVERAGE_START] while averaging has not started: no update count reaches it
NOT_YET = np.iinfo(np.int64).max


def state_slots(est):
    """The state's first dimension for ``est``'s ``optimizer`` and ``average``: the
    weights, the update rule's slots and the average (``fastgd._optimizers``)."""
    return state_size(OPTIMIZERS[est.optimizer], est.average)


def initial_state(est, data):
    """Zero weights, intercepts and update-rule state (and average):
    (slots, n_outputs, n_features + 1)."""
    return np.zeros((state_slots(est), data.n_outputs, data.X.shape[1] + 1), dtype=data.X.dtype)


def average_start(average, seen, t, segments, batch):
    """The update count after which averaging starts (``codes[AVERAGE_START] - 1``), if it
    starts in an epoch that follows ``t`` updates and ``seen`` samples, else None. The
    epoch visits ``segments`` (row counts: ``[n]`` in memory, the blocks in visiting
    order on Dask), each in batches of ``batch`` rows that never cross a segment.
    ``average``: True averages every iterate; an int ``n`` the iterates of the updates
    after which at least ``n`` samples have been seen (scikit-learn's meaning)."""
    need = 1 if average is True else int(average)
    for rows in segments:
        if 0 < rows and need - seen <= rows:
            # the first update u (1-based) with seen + min(u batch, rows) >= need
            return t + max(1, -(-(need - seen) // batch)) - 1
        seen += rows
        t += -(-rows // batch)
    return None


def initial_eta(est, data):
    """The step size a fit of ``est`` on in-memory ``data`` starts from: computed from the
    data for ``learning_rate="auto"``, else ``eta0``; checked to be a positive finite
    step in the data's dtype."""
    # (invalid: X's finiteness may not be checked yet, and a NaN in it is reported as
    # such by the estimator when the step comes out non-finite)
    with np.errstate(invalid="ignore"):
        eta, source = _initial_step(est, data)
    return checked_step(eta, source, data.X.dtype)


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


def _initial_step(est, data):
    """``(step, where it came from)`` before the check of :func:`initial_eta`."""
    if SCHEDULES[est.learning_rate].from_data and OPTIMIZERS[est.optimizer].adaptive:
        eta = adaptive_learning_rate(
            data.X, fit_intercept=est.fit_intercept, optimizer=est.optimizer, beta_2=float(est.beta_2),
        )
        source = "learning_rate='auto' computed it from X"
    elif SCHEDULES[est.learning_rate].from_data:
        l2, _ = penalty_strengths(est.penalty, est.alpha, est.l1_ratio)
        eta = auto_learning_rate(
            data.X,
            data.sw,
            fit_intercept=est.fit_intercept,
            curvature=LOSSES[data.loss].curvature,
            l2=l2,
            batch_size=batch_rows(est.batch_size, data.X.shape[0]),
            momentum=float(est.momentum),
            n_threads=n_threads(est.n_jobs),
        )
        source = "learning_rate='auto' computed it from X"
    else:
        eta = float(est.eta0)
        source = f"eta0={est.eta0!r}"
    return eta, source


def prepared(est, X, y, sample_weight=None):
    """A :class:`Run` of a new fit of ``est`` on ``(X, y)``, ready for its first epoch.

    Everything ``fit`` does before its epochs is done here (parameter and input
    validation, weight normalisation, the initial step, the random stream from
    ``random_state``); early stopping's validation split is not made. ``run.epoch()``
    then runs exactly what one epoch of ``fit`` runs (the row order and one kernel call)
    and returns the epoch's objective; ``run.state`` is the (slots, K, d + 1) state
    (``state[0]``: weights with the intercept last); ``run.kernel_args(order)`` gives the
    keyword arguments of the backend's ``epoch`` kernel (``run.backend``) for timing the
    kernel alone. The estimator itself is not changed.
    """
    data = est._prepare(X, y, sample_weight, first=True)
    data = data._replace(sw=normalise_weights(data.sw))
    return Run(est, data, initial_state(est, data), 0, initial_eta(est, data), check_random_state(est.random_state))


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


_pools = {}  # name -> (pid, one-thread pool)
_pools_lock = threading.Lock()


def _thread(name):
    """The process's one-thread pool ``name``, recreated in a forked child (whose threads
    did not survive the fork): "order" draws the next epoch's permutation while an epoch
    runs, "kernel" runs long kernels for the main thread (:func:`call_kernel`)."""
    with _pools_lock:
        pid, pool = _pools.get(name, (None, None))
        if pool is None or pid != os.getpid():
            pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"fastgd-{name}")
            _pools[name] = (os.getpid(), pool)
        return pool


def _quiet_call(kernel, kwargs):
    """``kernel(**kwargs)`` with NumPy's floating-point warnings off (the driver judges
    non-finite results itself); NumPy's error state is per thread."""
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        return kernel(**kwargs)


def call_kernel(kernel, kwargs, work):
    """Run ``kernel(**kwargs)`` and return its result. From the main thread, with at
    least INTERRUPTIBLE_MIN_WORK of ``work``, the call runs on a worker thread while this
    one waits, so a KeyboardInterrupt is raised here within INTERRUPT_POLL_S; the
    abandoned call then finishes on its own, writing only into the arrays it was given
    (the run's working state, which the failed call discards)."""
    if work < INTERRUPTIBLE_MIN_WORK or threading.current_thread() is not threading.main_thread():
        return _quiet_call(kernel, kwargs)
    future = _thread("kernel").submit(_quiet_call, kernel, kwargs)
    while True:
        try:
            return future.result(timeout=INTERRUPT_POLL_S)
        except concurrent.futures.TimeoutError:
            continue


class Run:
    """One call's worth of epochs: owns the working state until the fit succeeds."""

    def __init__(self, est, data, state, t, eta, rng, X_val=None, Y_val=None, sw_val=None, seen=0,
                 avg_start=None):
        self.X, self.Y, self.sw = data.X, data.Y, data.sw
        # sparse input: the CSR arrays (int64 indices, converted once per call) and the
        # backend's sparse kernels
        self.csr = _sparse.kernel_arrays(data.X) if _sparse.issparse(data.X) else None
        self.backend_name = resolve(est.backend)  # ("auto" resolved: what runs)
        self.backend = (get_backend(self.backend_name, sparse=True) if self.csr is not None
                        else get_backend(self.backend_name))
        self.rng = rng
        self.setup(est, data.loss, data.X.shape[0], state, t, eta, np.zeros(P.N_HP), np.zeros(P.N_CODES, dtype=np.int64),
                   X_val, Y_val, sw_val, seen, avg_start)
        if self.csr is not None:
            self._warn_dense_step()
        self.in_order = None  # 0, 1, ..., n - 1, made on first use
        # rows per block of shuffle="blocks" (the CSR indices are int64 in the kernels)
        self.block_rows = _shuffle.block_rows(data.X)
        self.more_epochs = False  # whether another epoch follows the current one
        self.pending_order = None  # the next epoch's permutation, being drawn

    def setup(self, est, loss, n, state, t, eta, hp, codes, X_val, Y_val, sw_val, seen, avg_start):
        """What a run keeps of one model on ``n`` training rows: its state, counters,
        curves and judging, and its ``hp``/``codes`` vectors (filled here, in place:
        ``fastgd._path`` passes rows of its per-model arrays)."""
        self.est = est
        self.loss = loss
        self.n_rows = n
        self.reference = self.reference_name = None  # what divergence is measured against
        self.state = state
        self.t = int(t)
        self.eta = float(eta)
        self.reductions = 0
        self.X_val, self.Y_val, self.sw_val = X_val, Y_val, sw_val
        self.callbacks = None  # fastgd._callbacks.FitCallbacks when callbacks are set
        self.curve = []
        self.times = []  # cumulative seconds in epochs at the end of each epoch
        self.val_scores = [] if X_val is not None else None
        self.n_epochs = 0
        self.l2, self.l1 = penalty_strengths(est.penalty, est.alpha, est.l1_ratio)
        self.hp = hp
        hp[:] = 0.0
        self.hp[P.POWER_T] = est.power_t
        self.hp[P.L2] = self.l2
        self.hp[P.L1] = self.l1
        self.hp[P.MOMENTUM] = est.momentum
        self.hp[P.ALPHA] = est.alpha
        self.hp[P.BETA_1] = est.beta_1
        self.hp[P.BETA_2] = est.beta_2
        self.hp[P.EPSILON] = est.epsilon
        self.optimizer = OPTIMIZERS[est.optimizer]
        # averaging: samples seen before this call and the update count after which
        # averaging started (None: not yet, or no averaging)
        self.seen = int(seen)
        self.avg_start = avg_start
        self.schedule = SCHEDULES[est.learning_rate]
        if self.schedule.t0 is not None:
            self.hp[P.OPTIMAL_T0] = self.schedule.t0(est.alpha)
        self.codes = codes
        codes[:] = 0
        self.codes[P.LOSS] = LOSSES[loss].code
        self.codes[P.SCHEDULE] = self.schedule.code
        self.codes[P.NESTEROV] = int(bool(est.nesterov))
        self.codes[P.FIT_INTERCEPT] = int(bool(est.fit_intercept))
        self.codes[P.BATCH_SIZE] = batch_rows(est.batch_size, n)
        self.codes[P.N_THREADS] = n_threads(est.n_jobs)
        self.codes[P.OPTIMIZER] = self.optimizer.code
        self.codes[P.AVERAGE_START] = 0  # (no averaging)
        if state.shape[0] != state_slots(est):
            raise ValueError(f"state of shape {state.shape} does not fit optimizer={est.optimizer!r}, "
                             f"average={est.average!r}")
        self.eta_last = self._current_eta()

    def _warn_dense_step(self):
        """Warn when sparse input takes the dense O(K d) step at every update (see
        ``fastgd._optimizers.uses_lazy_update``) and that costs more than reading the
        batch's non-zeros several times over."""
        est = self.est
        lazy = (self.l1 == 0.0 and not est.average
                and self.optimizer.lazy(self.l2 > 0.0, self.schedule.code == CONSTANT))
        n, d = self.X.shape
        K = self.state.shape[1]
        per_batch = max(self.csr[0].shape[0] / max(n, 1) * int(self.codes[P.BATCH_SIZE]) * K, 1.0)
        if lazy or K * d <= DENSE_STEP_WARN_RATIO * per_batch:
            return
        warnings.warn(
            f"On this sparse input, optimizer={est.optimizer!r} with penalty={est.penalty!r}, "
            f"learning_rate={est.learning_rate!r} and average={est.average!r} takes the dense "
            f"step: each update moves all {K * d} coefficients, about {K * d / per_batch:.0f}x the "
            f"work of the batch's non-zeros. Updates that touch only the batch's non-zeros need "
            f"optimizer='sgd', a constant step (learning_rate 'auto', 'constant' or 'adaptive'), "
            f"no L1 part and average=False; or use larger batches.",
            DenseStepWarning,
            stacklevel=5,
        )

    @staticmethod
    def initial_eta(est, data):
        """The step size a fit starts from (:func:`initial_eta`, on in-memory data)."""
        return initial_eta(est, data)

    def _current_eta(self):
        t = max(self.t, 1)
        return float(step_size(self.schedule.code, t, self.eta, self.hp[P.POWER_T], self.hp[P.OPTIMAL_T0], self.hp[P.ALPHA]))

    def _permutation(self, n):
        """This epoch's row order, the next draw of the fit's random stream: a
        permutation, or with ``shuffle="blocks"`` a block shuffle
        (``fastgd._shuffle``).

        When another epoch follows in this call (``self.more_epochs``), the next
        permutation is drawn on a background thread while this epoch's kernel runs
        (NumPy draws it without the GIL, and the kernels release it): at a million rows
        a permutation costs about 12 ms, a sizeable part of an SGD epoch. The stream is
        the same as drawing them one after the other; a fit that stops early leaves one
        drawn permutation unused.
        """
        pending, self.pending_order = self.pending_order, None
        draw = (draw_order, self.rng, n, self.est.shuffle, self.block_rows)
        order = pending.result() if pending is not None else draw[0](*draw[1:])
        if self.more_epochs:
            self.pending_order = _thread("order").submit(*draw)
        return order.astype(np.int64, copy=False)

    def kernel_args(self, order):
        """The keyword arguments of the backend's ``epoch`` kernel for this epoch's row
        ``order``: the data (dense ``X``, or the CSR arrays), targets, weights, the state
        (updated in place by the call) and the ``hp``/``codes`` vectors."""
        if self.csr is not None:
            data, indices, indptr = self.csr
            X = {"data": data, "indices": indices, "indptr": indptr}
        else:
            X = {"X": self.X}
        return dict(X, Y=self.Y, sw=self.sw, order=order, state=self.state, hp=self.hp, codes=self.codes)

    def epoch(self):
        """Run one epoch: the row order, then the kernel, once; return the epoch's
        objective (see ``loss_curve_``). The only place an estimator calls a backend."""
        n = self.X.shape[0]
        # full batch: the order cannot matter, so read X in storage order (streaming)
        shuffle = self.est.shuffle and self.codes[P.BATCH_SIZE] < n
        if shuffle:
            order = self._permutation(n)
        else:
            if self.in_order is None:
                self.in_order = np.arange(n, dtype=np.int64)
            order = self.in_order
        self.begin_epoch([n], int(self.codes[P.BATCH_SIZE]))
        pen = penalty_value(self.state[0][:, :-1], self.l2, self.l1)
        stored = self.csr[0].shape[0] if self.csr is not None else self.X.size
        total = call_kernel(self.backend.epoch, self.kernel_args(order), stored * self.state.shape[1])
        self.end_epoch(n, self._updates_per_epoch())
        return float(total) / n + pen

    def begin_epoch(self, segments, batch):
        """Set the step, the update count and the averaging start for the next epoch,
        which visits ``segments`` (row counts, see :func:`average_start`) in batches of
        ``batch`` rows (the Dask driver calls it too)."""
        self.hp[P.ETA0] = self.eta
        self.codes[P.T_START] = self.t
        if self.est.average:
            if self.avg_start is None:
                self.avg_start = average_start(self.est.average, self.seen, self.t, segments, batch)
            # (the kernels take the first averaged update)
            self.codes[P.AVERAGE_START] = NOT_YET if self.avg_start is None else self.avg_start + 1

    def end_epoch(self, n_rows, updates):
        self.t += updates
        self.seen += n_rows

    def weights(self):
        """The model the fit reports (``coef_``, ``intercept_``, predictions, validation
        scores): the average of the iterates once averaging has started, else the
        iterate ``state[0]``."""
        return reported_weights(self.state, self.avg_start, self.t)

    def _updates_per_epoch(self):
        return -(-self.n_rows // int(self.codes[P.BATCH_SIZE]))

    def _on_stall(self):
        """What a stall does: the schedule's ``on_stall`` gives the step to go on with
        and whether the momentum restarts, or says stop. Returns False when the fit
        should stop instead."""
        minibatch = self.codes[P.BATCH_SIZE] < self.n_rows
        outcome = self.schedule.on_stall(self.eta, self.reductions, minibatch)
        if outcome is None:
            return False
        self.eta, restart = outcome
        if restart:
            for slot in self.optimizer.restart:
                self.state[slot] = 0.0
        self.reductions += 1
        self.eta_last = self._current_eta()
        return True

    def _patience(self):
        """Epochs without improvement that make a stall (the schedule's ``patience``)."""
        return self.schedule.patience(self.est.n_iter_no_change, self.reductions, self._updates_per_epoch())

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
        data, in float64, without a pass over X (the loss registry's ``zero_objective``)."""
        return LOSSES[self.loss].zero_objective(self.Y, self.sw, self.state.shape[1])

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
        return self.schedule.hint.format(alpha=est.alpha)

    def _epochs(self, max_epochs, *, stop_early):
        self.start_judging()
        for epoch in range(1, max_epochs + 1):
            if self.callbacks is not None:
                self.callbacks.epoch_begin(self)
            tic = time.perf_counter()
            self.more_epochs = epoch < max_epochs
            objective = self.epoch()
            if self.judge(epoch, objective, time.perf_counter() - tic, stop_early=stop_early):
                break
        self.finish_judging(max_epochs, stop_early=stop_early)

    def start_judging(self):
        """Reset what :meth:`judge` keeps between epochs (a call's first epoch is next)."""
        self._best = np.inf
        self._no_improvement = 0
        self.converged = False
        self._elapsed = 0.0

    def judge(self, epoch, objective, seconds, *, stop_early):
        """Judge epoch ``epoch`` of this call, which took ``seconds`` and ended at
        ``objective``: raise :class:`DivergenceError` on a divergence, record the
        curves, run the callbacks, score the validation set and apply the stopping
        criterion and the stall rules. Returns whether the call should stop.

        Split from the loop so that a driver that runs several models' epochs in one
        kernel call (``fastgd._path``) judges each model exactly as its own fit would.
        """
        est = self.est
        tol = est.tol
        name = type(est).__name__
        self._elapsed += seconds
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
        self.times.append(self._elapsed)
        if est.verbose:
            print(
                f"-- Epoch {len(self.curve)}: objective {objective:.6g}, step size "
                f"{self.eta_last:.4g}, updates {self.t}, {seconds:.4f} s"
            )
        stop = self.callbacks is not None and self.callbacks.epoch_end(self)
        if not stop_early:
            return False
        if self.X_val is not None:
            score = est._score_state(self.weights(), self.X_val, self.Y_val, self.sw_val)
            self.val_scores.append(score)
            criterion = -score
        else:
            criterion = objective
        if stop:  # a callback asked to stop: no ConvergenceWarning
            self.converged = True
            if est.verbose:
                print(f"-- Stopped by a callback after {epoch} epochs")
            return True
        if tol is not None:
            if criterion > self._best - tol:
                self._no_improvement += 1
            else:
                self._no_improvement = 0
            self._best = min(self._best, criterion)
            if self._no_improvement >= self._patience():
                if self._on_stall():
                    if est.verbose:
                        print(f"-- No improvement for {self._no_improvement} epochs: step size {self.eta:.4g}")
                    self._no_improvement = 0
                else:
                    self.converged = True
                    if est.verbose:
                        print(f"-- Converged after {epoch} epochs")
                    return True
        return False

    def finish_judging(self, max_epochs, *, stop_early, warn=True):
        """After the last epoch: warn (``ConvergenceWarning``) when the call ran out of
        epochs before its stopping criterion was met; returns whether it did."""
        est = self.est
        missed = bool(stop_early and est.tol is not None and not self.converged)
        if missed and warn:
            warnings.warn(
                f"{type(est).__name__} reached max_iter={max_epochs} epochs before the stopping criterion "
                f"(tol={est.tol}, n_iter_no_change={est.n_iter_no_change}) was met; increase "
                f"max_iter if the fit is not good enough.",
                ConvergenceWarning,
                stacklevel=7,  # the user's fit() or partial_fit() call
            )
        return missed
