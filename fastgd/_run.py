"""The in-memory driver: one ``fit``/``partial_fit`` call's epochs on in-memory data.

:class:`Run` owns the working state (weights, intercept, velocity) until the call
succeeds. It reads the resolved fit (``fastgd._spec.FitSpec``), never the estimator.
Each epoch draws its row order (the fit's random stream; the next permutation is drawn
on a background thread while the current epoch runs) and calls the backend's ``epoch``
kernel once; its :class:`fastgd._judge.Judge` then judges the epoch (divergence,
stopping, stalls, curves). The Dask driver (``fastgd._dask``) runs its epochs on
blocks through the same loop, replacing only :meth:`Run.epoch`; the many-models
driver (``fastgd._path``) uses a model and a judge per model of its grid.

:func:`prepared` is the supported hook for code that times epochs (``bench/``): a run
ready to go on validated data, with :meth:`Run.epoch`, ``state`` and
:meth:`Run.kernel_args`.
"""

import concurrent.futures
import copy
import os
import threading
import time
import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from sklearn.utils import check_random_state

from . import _shuffle, _sparse
from ._backends import get_backend
from ._judge import DivergenceError, Judge, Model, reported_weights
from ._losses import LOSSES
from ._optimizers import OPTIMIZERS
from ._penalties import penalty_value
from ._schedules import CONSTANT
from ._shuffle import draw_order
from ._smoothness import memory_stats
from ._spec import batch_rows, build, data_kind, n_threads, settings
from ._validation import normalise_weights

__all__ = ["DenseStepWarning", "DivergenceError", "Run", "batch_rows", "call_kernel", "initial_eta",
           "n_threads", "prepared", "reported_weights", "spec_of", "weighted_loss"]

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


def weighted_loss(X, Y, sw, W, loss):
    """``sum_i sw_i * loss_i`` in float64 at the float64 weights ``W`` (K, d + 1): the
    data term of ``BaseGD.objective`` (the Dask driver sums it over blocks)."""
    X = X.astype(np.float64, copy=False)
    values, _ = LOSSES[loss].value_grad(np.asarray(X @ W[:, :-1].T) + W[:, -1], Y.astype(np.float64))
    return float(sw.astype(np.float64) @ values)


def spec_of(est, data):
    """The resolved fit (``fastgd._spec.FitSpec``) of ``est`` on in-memory ``data``:
    the step statistics of its rows gathered in memory. An estimator whose call has
    not chosen its data-aware defaults yet (a caller outside ``fit``: ``prepared``,
    the benchmarks, which run the kernels' epochs) has them chosen from ``data`` on a
    copy, among the rules the kernels step (ValueError for "newton-sketch")."""
    if getattr(est, "_choice", None) is None:
        est = copy.copy(est)
        optimizer = settings(est).optimizer
        if optimizer in OPTIMIZERS and OPTIMIZERS[optimizer].steps != "kernel":
            raise ValueError(f"the epoch hooks time the kernels' update rules; optimizer={optimizer!r} "
                             f"steps in its own driver (pass an optimizer such as 'sgd')")
        # (the hooks run the kernels' epochs: "auto" chooses among the kernels' rules,
        # as for partial_fit)
        est._choose(data_kind(data.X), keep=False, partial=True)
    X = data.X
    return build(est, loss=data.loss, n_rows=X.shape[0], n_outputs=data.n_outputs, n_features=X.shape[1],
                 dtype=X.dtype, stats=lambda needs, s: memory_stats(X, data.sw, s.fit_intercept, needs, s.threads))


def initial_eta(est, data):
    """The step size a fit of ``est`` on in-memory ``data`` starts from: computed from the
    data for ``learning_rate="auto"``, else ``eta0``; checked to be a positive finite
    step in the data's dtype."""
    return spec_of(est, data).eta


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
    spec = spec_of(est, data)
    return Run(spec, data, np.zeros(spec.state_shape, dtype=data.X.dtype), check_random_state(spec.random_state))


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
    """One call's worth of epochs on in-memory data: owns the working state until the
    fit succeeds. ``spec`` is the resolved fit (``fastgd._spec.FitSpec``), ``rng`` the
    random stream of the row orders; the ``state``, the update count ``t``, the step
    ``eta`` (None: the spec's), the samples ``seen`` and the averaging start
    ``avg_start`` are where the call starts (a continued fit carries them over);
    ``validation`` is early stopping's ``(X_val, Y_val, sw_val)``, or None."""

    def __init__(self, spec, data, state, rng, *, t=0, eta=None, seen=0, avg_start=None, validation=None):
        self.spec = spec
        self.X, self.Y, self.sw = data.X, data.Y, data.sw
        # sparse input: the CSR arrays (int64 indices, converted once per call) and the
        # backend's sparse kernels
        self.csr = _sparse.kernel_arrays(data.X) if _sparse.issparse(data.X) else None
        self.backend_name = spec.backend  # ("auto" resolved: what runs)
        self.backend = (get_backend(self.backend_name, sparse=True) if self.csr is not None
                        else get_backend(self.backend_name))
        self.rng = rng
        self.model = Model(spec, state, t=t, eta=eta, seen=seen, avg_start=avg_start)
        self.judge = Judge(spec, self.model, validation=validation, owner=self)
        if self.csr is not None:
            self._warn_dense_step()
        self.in_order = None  # 0, 1, ..., n - 1, made on first use
        # rows per block of shuffle="blocks" (the CSR indices are int64 in the kernels)
        self.block_rows = _shuffle.block_rows(data.X)
        self.more_epochs = False  # whether another epoch follows the current one
        self.pending_order = None  # the next epoch's permutation, being drawn

    resolve = staticmethod(spec_of)  # the resolved fit, step statistics in memory

    # what the estimator commits and the callbacks read: the model's and the judge's
    state = property(lambda self: self.model.state)
    hp = property(lambda self: self.model.hp)
    codes = property(lambda self: self.model.codes)
    t = property(lambda self: self.model.t)
    eta = property(lambda self: self.model.eta)
    seen = property(lambda self: self.model.seen)
    avg_start = property(lambda self: self.model.avg_start)
    l2 = property(lambda self: self.spec.l2)
    l1 = property(lambda self: self.spec.l1)
    curve = property(lambda self: self.judge.curve)
    times = property(lambda self: self.judge.times)
    val_scores = property(lambda self: self.judge.val_scores)
    n_epochs = property(lambda self: self.judge.n_epochs)
    eta_last = property(lambda self: self.judge.eta_last)

    @property
    def callbacks(self):
        return self.judge.callbacks

    @callbacks.setter
    def callbacks(self, value):
        self.judge.callbacks = value

    def weights(self):
        """The model the fit reports (see ``fastgd._judge.Model.weights``)."""
        return self.model.weights()

    def _warn_dense_step(self):
        """Warn when sparse input takes the dense O(K d) step at every update (see
        ``fastgd._optimizers.uses_lazy_update``) and that costs more than reading the
        batch's non-zeros several times over."""
        spec = self.spec
        lazy = (spec.l1 == 0.0 and not spec.average
                and spec.rule.lazy(spec.l2 > 0.0, spec.schedule.code == CONSTANT))
        n, d = self.X.shape
        K = self.state.shape[1]
        per_batch = max(self.csr[0].shape[0] / max(n, 1) * spec.batch * K, 1.0)
        if lazy or K * d <= DENSE_STEP_WARN_RATIO * per_batch:
            return
        warnings.warn(
            f"On this sparse input, optimizer={spec.optimizer!r} with penalty={spec.settings.penalty!r}, "
            f"learning_rate={spec.learning_rate!r} and average={spec.average!r} takes the dense "
            f"step: each update moves all {K * d} coefficients, about {K * d / per_batch:.0f}x the "
            f"work of the batch's non-zeros. Updates that touch only the batch's non-zeros need "
            f"optimizer='sgd', a constant step (learning_rate 'auto', 'constant' or 'adaptive'), "
            f"no L1 part and average=False; or use larger batches.",
            DenseStepWarning,
            stacklevel=5,
        )

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
        draw = (draw_order, self.rng, n, self.spec.shuffle, self.block_rows)
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
        objective (see ``loss_curve_``)."""
        n = self.X.shape[0]
        batch = self.spec.batch
        # full batch: the order cannot matter, so read X in storage order (streaming)
        if self.spec.shuffle and batch < n:
            order = self._permutation(n)
        else:
            if self.in_order is None:
                self.in_order = np.arange(n, dtype=np.int64)
            order = self.in_order
        self.model.begin_epoch([n], batch)
        pen = penalty_value(self.state[0][:, :-1], self.spec.l2, self.spec.l1)
        stored = self.csr[0].shape[0] if self.csr is not None else self.X.size
        total = call_kernel(self.backend.epoch, self.kernel_args(order), stored * self.state.shape[1])
        self.model.end_epoch(n, self.spec.updates_per_epoch)
        return float(total) / n + pen

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
        return self.spec.zero_objective(self.Y, self.sw)

    def set_reference(self, *, fitted_first=None):
        """Set what divergence is measured against (``fastgd._judge.Judge.set_reference``);
        ``fitted_first``: the continued model's first epoch's objective, if any."""
        self.judge.set_reference(self.zero_objective(), fitted_first)

    def _epochs(self, max_epochs, *, stop_early):
        judge = self.judge
        judge.start()
        for epoch in range(1, max_epochs + 1):
            if judge.callbacks is not None:
                judge.callbacks.epoch_begin(self)
            tic = time.perf_counter()
            self.more_epochs = epoch < max_epochs
            objective = self.epoch()
            if judge.judge(epoch, objective, time.perf_counter() - tic, stop_early=stop_early):
                break
            if stop_early and self.converged():
                judge.converge(epoch)
                break
        judge.finish(max_epochs, stop_early=stop_early)

    def converged(self):
        """Whether the rule itself says the fit has converged (beyond the judge's test
        on the objective): never for the kernels' rules."""
        return False
