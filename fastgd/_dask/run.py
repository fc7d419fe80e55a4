"""The Dask driver's entry points (``fit``, ``partial_fit``, the objective, blockwise
prediction) and its epochs: :class:`DaskRun`, the in-memory driver's loop whose
:meth:`DaskRun.epoch` runs on blocks where they live, and the block tasks it sends."""

import warnings

import numpy as np
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted

from .. import _params as P
from .. import _run
from .._backends import get_backend
from .._numpy.kernels import apply_step
from .._penalties import penalty_value
from .._run import Run
from .._smoothness import EIGEN_MAX_ROWS, StepStats, max_row_smoothness, mean_row_l1, top_eigenvalue
from .._spec import DataKind, build, settings
from .._validation import FLOAT_DTYPES, validate_validation, validation_given
from .averaging import average_rounds, block_order, epoch_plan
from .prepare import _as_matrix, _prepare


# what the data-aware defaults see of Dask input: dense blocks (CSR blocks are refused)
# of rows counted only once they are loaded (the dense choices do not depend on them)
DASK_KIND = DataKind(sparse=False, n_rows=-1)


def fit(est, X, y, sample_weight, X_val=None, y_val=None, sample_weight_val=None):
    """``BaseGD.fit`` on Dask input (see the module docstring)."""
    est._validate_params()
    est._choose(DASK_KIND, validation=X_val is not None or y_val is not None)
    s = settings(est)
    validation = validation_given(s.early_stopping, X_val, y_val, sample_weight_val)
    data = _prepare(est, X, y, sample_weight, first=True, fitting=True, validation=validation)
    try:
        val = validate_validation(est, data, X_val, y_val, sample_weight_val) if validation else ()
        return est._fit_epochs(DaskRun, data, check_random_state(s.random_state), *val)
    finally:
        data.X.release()


def partial_fit(est, X, y, classes, sample_weight):
    """``BaseGD.partial_fit`` on Dask input: one epoch over the blocks."""
    first = not hasattr(est, "_state")
    est._validate_params()
    est._choose(DASK_KIND, keep=not first, partial=True)
    data = _prepare(est, X, y, sample_weight, first=first, classes=classes, partial=True)
    try:
        return est._partial_fit_epoch(DaskRun, data, first)
    finally:
        data.X.release()


def weighted_loss(est, X, y, sample_weight, W):
    """``BaseGD.objective``'s data term on Dask input: ``(sum_i s_i loss_i, n)`` with the
    normalised weights, the float64 losses summed blockwise."""
    data = _prepare(est, X, y, sample_weight, first=False, partial=True, check_params=False)
    try:
        totals = data.X.gather_each(_objective_task, W, est._loss)
    finally:
        data.X.release()
    return float(np.sum(totals)), data.X.shape[0]


def map_method(est, name, X):
    """A lazy Dask array applying the in-memory method ``name`` to each block of X."""
    check_is_fitted(est, "_state")
    X = _as_matrix(est, X, reset=False, known_rows=False)
    dtype = X.dtype if X.dtype in FLOAT_DTYPES else np.dtype(np.float64)
    with warnings.catch_warnings():  # a probe of one row, for the output's shape and dtype
        warnings.simplefilter("ignore")
        probe = np.asarray(getattr(est, name)(np.zeros((1, X.shape[1]), dtype=dtype)))
    trailing = probe.shape[1:]
    if trailing:
        kwargs = {"chunks": (X.chunks[0],) + tuple((s,) for s in trailing)}
    else:
        kwargs = {"drop_axis": 1}
    return X.map_blocks(
        _method_block,
        est,
        name,
        trailing,
        probe.dtype,
        dtype=probe.dtype,
        meta=np.empty((0,) * probe.ndim, dtype=probe.dtype),
        **kwargs,
    )


class DaskRun(Run):
    """``fastgd._run.Run`` whose epochs run blockwise (only :meth:`epoch` differs); its
    model and judge are those of the in-memory driver."""

    @staticmethod
    def resolve(est, data):
        """The resolved fit on Dask blocks: the step statistics gathered blockwise
        (:func:`block_stats`), one thread per task (the workers are the parallelism)."""
        blocks = data.X
        return build(est, loss=data.loss, n_rows=blocks.shape[0], n_outputs=data.n_outputs,
                     n_features=blocks.shape[1], dtype=blocks.dtype,
                     stats=lambda needs, s: block_stats(blocks, s.fit_intercept, needs), threads=1)

    def zero_objective(self):
        """The all-zero model's objective where it needs no pass over the blocks (the
        classification losses); None where it reads the targets, which stay on the
        workers (squared error)."""
        return None if self.spec.loss.zero_needs_targets else super().zero_objective()

    def epoch(self):
        blocks = self.X  # a _Blocks
        n = blocks.shape[0]
        spec, model = self.spec, self.model
        pen = penalty_value(self.state[0][:, :-1], spec.l2, spec.l1)
        batch = spec.batch
        backend = self.backend_name
        if batch >= n:
            model.begin_epoch([n], n)
            results = blocks.gather_each(_gradient_task, backend, self.state[0].copy(), self.codes.copy())
            G = np.zeros(self.state.shape[1:], dtype=np.float64)
            total = 0.0
            for G_block, value in results:  # block order: reproducible sums
                G += G_block
                total += value
            with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
                apply_step(self.state, G, n, self.t + 1, self.hp, self.codes)
            model.end_epoch(n, 1)
        elif spec.dask_mode == "average":
            plan = epoch_plan(self.rng, len(blocks.sizes), spec.shuffle)
            owners = blocks.owners()
            rounds = average_rounds(plan, owners, blocks.sizes, batch, spec.sync_every)
            # averaging (the ``average`` parameter) counts the samples of all workers'
            # batches towards each update of the combined model
            model.begin_epoch([n], batch * max(1, len(set(owners))))
            state, total, steps = blocks.rounds(rounds, (self.state.copy(), 0.0), backend, self.hp.copy(),
                                                self.codes, self.t)
            self.state[...] = state
            model.end_epoch(n, steps)
        else:
            plan = epoch_plan(self.rng, len(blocks.sizes), spec.shuffle)
            model.begin_epoch([blocks.sizes[b] for b, _ in plan], batch)
            visits = []
            t = self.t
            for b, seed in plan:
                codes = self.codes.copy()
                codes[P.T_START] = t
                visits.append((b, (seed, codes)))
                t += -(-blocks.sizes[b] // batch)  # the kernels cap the batch at the block's rows
            state, total = blocks.chain(_epoch_task, visits, (self.state.copy(), 0.0), backend, self.hp.copy())
            self.state[...] = state
            model.end_epoch(n, t - self.t)
        return float(total) / n + pen


def block_stats(blocks, fit_intercept, needs):
    """The step statistics (``fastgd._smoothness.StepStats``) of Dask blocks, as an
    in-memory fit gathers them on the same rows: ``max_i s_i ||xt_i||^2`` is a blockwise
    maximum, and the eigenvalue and the mean row L1 norm are computed on the client over
    the same evenly spaced rows the in-memory estimate uses (every ``n // 10000``-th
    row, gathered once)."""
    n = blocks.shape[0]
    step = max(1, n // EIGEN_MAX_ROWS)
    stats = blocks.gather_each(_auto_stats_task, step, fit_intercept, needs.max_row, per_block=blocks.offsets)
    Xs = np.concatenate([s[1] for s in stats])
    ws = np.concatenate([s[2] for s in stats])
    return StepStats(
        n=n,
        max_row=max(s[0] for s in stats) if needs.max_row else 0.0,
        eigen=top_eigenvalue(Xs, ws, fit_intercept, max_rows=Xs.shape[0]) if needs.eigen else 0.0,
        mean_l1=mean_row_l1(Xs, fit_intercept, max_rows=Xs.shape[0]) if needs.mean_l1 else 1.0,
    )


def _gradient_task(block, backend, W, codes):
    X, Y, sw = block
    G = np.zeros(W.shape, dtype=np.float64)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        total = get_backend(backend).gradient(X, Y, sw, W, codes, G)
    return G, float(total)


def _epoch_task(block, carried, backend, hp, seed, codes):
    """One block's share of a mini-batch epoch; ``carried`` = (state, loss so far)."""
    X, Y, sw = block
    state, so_far = carried
    state = state.copy()  # never modify another task's result
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        total = get_backend(backend).epoch(X, Y, sw, block_order(seed, X.shape[0]), state, hp, codes)
    return state, so_far + float(total)


def _auto_stats_task(block, offset, step, fit_intercept, max_row):
    """max_i sw_i ||xt_i||^2 (where ``max_row``, else 0), and the rows whose global index
    is a multiple of ``step``."""
    X, _, sw = block
    rows = slice((-offset) % step, None, step)
    top = max_row_smoothness(X, sw, fit_intercept) if max_row else 0.0
    return top, X[rows].copy(), sw[rows].copy()


def _objective_task(block, W, loss):
    return _run.weighted_loss(*block, W, loss)


def _method_block(Xb, est, name, trailing, dtype):
    if Xb.shape[0] == 0:
        return np.empty((0,) + tuple(trailing), dtype=dtype)
    with warnings.catch_warnings():  # the block is an array; X had the names
        warnings.filterwarnings("ignore", message="X does not have valid feature names")
        return getattr(est, name)(Xb)
