"""Fitting and predicting on Dask collections: the rows stay where they live.

Imported by the estimators only when they are given a Dask array, dataframe or series
(``fastgd._validation.is_dask``), so fastgd works without dask installed.

Blocks
    A block is one chunk of rows of X; its columns are merged into one chunk first (a
    one-time rechunk if X is chunked along columns). ``y`` and ``sample_weight`` (Dask or
    NumPy) are aligned to X's row chunks. Dask dataframes and series go through
    ``.to_dask_array(lengths=True)``; unknown chunk sizes are computed. Empty chunks are
    skipped.

Preparation (once per ``fit``/``partial_fit``/``objective`` call)
    Each block is converted where it lives (float32/float64 kept, anything else becomes
    float64; C-contiguous) and checked: NaN and infinity in X, y and sample_weight,
    negative weights, and for classifiers its distinct labels with their counts and
    weight sums. Only these small summaries reach the client, which raises the same
    errors as an in-memory fit, finds the classes (the union of the blocks' labels: one
    small reduction), the class weights and the weight normalisation. Each block then
    encodes its targets and scales its weights, and the result is kept on its worker
    for the whole fit and released afterwards.

Full batch (``batch_size="full"`` or >= n_samples)
    Each epoch, every block computes its summed gradient and weighted loss with the
    backend's ``gradient`` kernel, where it lives; the K x (d+1) float64 sums come back
    and are added in block order on the client, which takes the epoch's one step with
    ``fastgd._numpy.kernels.apply_step`` (the reference step). Equal to the in-memory
    full-batch fit up to summation order (1e-10 in float64).

Mini-batch and SGD, ``dask_mode="sequential"``
    Each epoch the model state (weights, intercept, velocity) visits the blocks one
    after the other and the backend's ``epoch`` kernel runs on each block where it lives;
    only the state travels, from worker to worker. With ``shuffle=True`` the block order
    is a new permutation each epoch (``random_state.permutation(n_blocks)``) and each
    block visits its rows in the permutation ``RandomState(seed).permutation(n_rows)``
    of a seed drawn next from ``random_state`` (one per visited block, in visiting
    order), so only seeds travel, not n-sized permutations. With ``shuffle=False`` the
    blocks and their rows are visited in storage order, as in memory. Batches never
    cross a block boundary: a block of ``m`` rows makes ``ceil(m / batch_size)`` steps,
    its last batch possibly shorter, and the update counter ``t_`` advances by that. So
    the fit equals the in-memory fit over the concatenated visiting order whenever every
    block's length is a multiple of ``batch_size`` (always for SGD).

Mini-batch and SGD, ``dask_mode="average"`` (the default)
    Each epoch draws the same plan (block order and seeds) as the sequential mode. The
    blocks are grouped by the worker holding them (a worker's group: its blocks in plan
    order; groups ordered by their first block in storage order, so that the result
    depends on the block layout only, not on worker addresses). Every group runs at
    once from the same state, where its blocks live, with the same row orders and step
    counts per block as the sequential mode; every ``sync_every`` steps of each worker
    (None: at the end of the epoch) the states are combined by :func:`average_states`
    and the next round starts from the combination (:func:`average_rounds` cuts the
    epoch into rounds). The update counter advances per round by the largest number of
    steps a worker made in it, and a worker's steps in a round count from the round's
    start, so the schedules see the averaged model's steps. The whole epoch is
    submitted at once: per round, one task per worker (pinned to it, reading only its
    blocks) and one unpinned combining task, so only states travel (worker to combiner
    to worker), never blocks and never through the client until the epoch's end.

    The combination averages every slot of the ``(n_slots, K, d + 1)`` state
    elementwise, weighted by each worker's rows since the last sync. Why each kind of
    slot is right to average: every slot is the common state at the last sync plus a
    local increment, so the average keeps the common part exactly and weights each
    increment by the share of the rows that produced it. For the weights and the
    momentum velocity (and an Adam-style first moment) the increment of one step is
    linear in the batch gradient, so with a sync after every step and equal batches the
    average is exactly the step of one batch of all the workers' rows (with batches of
    unequal sizes too, thanks to the row weights; L1's soft-threshold is the exception,
    being nonlinear). Accumulators of squared gradients (AdaGrad, RMSprop, Adam's second
    moment) estimate the same per-row quantity on every worker, so their average is
    that estimate over all the rows and keeps the scale the step was tuned for (a sum
    would shrink the steps k-fold). An averaged iterate is linear in the iterates: the
    average of the workers' averages is the average of their iterates.

Step size "auto"
    The blocks' step statistics (:func:`block_stats`) are those of the same rows in
    memory: ``max_i s_i ||x_i||^2`` is a blockwise maximum, and the eigenvalue and the
    mean row L1 norm are computed on the client over the same evenly spaced rows the
    in-memory estimate uses (every ``n // 10000``-th row, at most 20000 rows, gathered
    once); ``fastgd._spec.initial_step`` turns them into the step.

Early stopping
    ``early_stopping=True`` needs a validation set passed to ``fit`` (``X_val``,
    ``y_val``, optionally ``sample_weight_val``; NumPy, sparse or Dask): it is computed
    into this process once, checked like in-memory validation data and scored on the
    client after each epoch. Without it, NotImplementedError: there is no blockwise
    held-out split of ``validation_fraction``.

Not supported
    ``n_jobs`` does not apply: the parallelism is that of the Dask workers.

Where it runs
    On the ``distributed`` client that Dask would use for X (``dask.base.get_scheduler``):
    every task that reads a block is restricted to the worker(s) holding it, so no block
    is ever sent to another worker or to the client. If such a worker leaves the cluster
    during a fit, the fit raises RuntimeError (the model is left unchanged). With Dask's
    local schedulers (no client) the blocks are computed once into this process, which
    is then the one worker (the averaged mode is the sequential one).
"""

import itertools
import uuid
import warnings

import dask
import dask.array as da
import numpy as np
from sklearn.exceptions import DataConversionWarning
from sklearn.utils import check_random_state
from sklearn.utils.validation import (
    _check_feature_names,
    _check_n_features,
    check_is_fitted,
)

from . import _params as P
from . import _run
from ._backends import get_backend
from ._numpy.kernels import apply_step
from ._penalties import penalty_value
from ._run import Run
from ._smoothness import EIGEN_MAX_ROWS, StepStats, max_row_smoothness, mean_row_l1, top_eigenvalue
from ._spec import build, settings
from ._validation import (
    FLOAT_DTYPES,
    Data,
    is_dask,
    validate_validation,
    validation_given,
    weight_scale,
)

# while waiting for tasks pinned to workers, check this often (seconds) that they are alive
POLL_S = 2.0


# --------------------------------------------------------------------------- entry points
def fit(est, X, y, sample_weight, X_val=None, y_val=None, sample_weight_val=None):
    """``BaseGD.fit`` on Dask input (see the module docstring)."""
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


# --------------------------------------------------------------------------- the epochs
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


def epoch_plan(rng, n_blocks, shuffle):
    """The visits of one mini-batch epoch: ``(block, seed)`` pairs in visiting order.

    ``seed`` gives the block's row order (:func:`block_order`); None means storage order.
    """
    if not shuffle:
        return [(b, None) for b in range(n_blocks)]
    order = rng.permutation(n_blocks)
    seeds = rng.randint(0, 2**31 - 1, size=n_blocks)
    return [(int(b), int(s)) for b, s in zip(order, seeds, strict=True)]


def average_rounds(plan, owners, sizes, batch, sync_every):
    """The rounds of one averaged epoch (``dask_mode="average"``).

    ``plan`` is the epoch's :func:`epoch_plan`; ``owners[b]`` names the worker holding
    block ``b``. A worker's *group* is its blocks in plan order; groups are ordered by
    their first block in storage order (not by worker address), so that the result
    depends only on the block layout. Block ``b`` of ``sizes[b]`` rows makes
    ``ceil(sizes[b] / batch)`` steps, as in the sequential mode.

    With ``sync_every=None`` there is one round: every worker runs all its blocks. With
    an int ``s``, round ``r`` runs steps ``r*s .. (r+1)*s - 1`` of every worker's step
    sequence (cut inside a block where need be); a worker whose steps ran out sits the
    remaining rounds out.

    Returns a list of rounds; a round is ``(steps, parts)``, ``steps`` the largest
    number of steps a worker makes in it (what the update counter advances by), and
    ``parts`` a list of ``(owner, pieces)`` in group order, a piece being
    ``(block, seed, first_step, end_step)``.
    """
    groups = {}
    for b, seed in plan:
        groups.setdefault(owners[b], []).append((b, seed))
    ordered = sorted(groups, key=lambda o: min(b for b, _ in groups[o]))
    per_group = []  # for each group: its rounds, each a list of pieces
    for owner in ordered:
        cuts = [[]]
        used = 0  # steps in the current round
        for b, seed in groups[owner]:
            steps = -(-sizes[b] // batch)
            lo = 0
            while lo < steps:
                if sync_every is not None and used == sync_every:
                    cuts.append([])
                    used = 0
                hi = steps if sync_every is None else min(steps, lo + sync_every - used)
                cuts[-1].append((b, seed, lo, hi))
                used += hi - lo
                lo = hi
        per_group.append((owner, cuts))
    n_rounds = max(len(cuts) for _, cuts in per_group)
    rounds = []
    for r in range(n_rounds):
        parts = [(owner, cuts[r]) for owner, cuts in per_group if r < len(cuts) and cuts[r]]
        steps = max(sum(hi - lo for _, _, lo, hi in pieces) for _, pieces in parts)
        rounds.append((steps, parts))
    return rounds


def average_states(states, rows):
    """The combined state of one sync: every slot (weights and intercept, velocity, any
    other optimizer state) averaged elementwise, weighted by ``rows``, each worker's
    number of rows since the last sync; computed in float64, returned in the states'
    dtype. A single state is returned unchanged (so one worker is the sequential fit)."""
    if len(states) == 1:
        return states[0]
    total = float(sum(rows))
    acc = np.zeros(states[0].shape, dtype=np.float64)
    for state, r in zip(states, rows, strict=True):
        acc += (r / total) * state
    return acc.astype(states[0].dtype, copy=False)


def block_order(seed, n_rows):
    """The order in which a block visits its rows."""
    if seed is None:
        return np.arange(n_rows, dtype=np.int64)
    return np.random.RandomState(seed).permutation(n_rows).astype(np.int64)


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


# --------------------------------------------------------------------------- block tasks
# Module-level functions, so that workers import them by name. A block is the tuple
# (X, Y, sw) of arrays as the kernels take them.


def _load(Xb, yb, swb, dtype, is_classifier):
    """Stage 1: X as the kernels take it; y and the sample weights as given."""
    X = np.ascontiguousarray(Xb, dtype=dtype)
    y = np.asarray(yb)
    if not is_classifier:
        y = np.ascontiguousarray(y.reshape(X.shape[0], -1), dtype=dtype)
    if swb is None:
        sw = np.ones(X.shape[0], dtype=dtype)
    elif np.ndim(swb) == 0:
        sw = np.full(X.shape[0], swb, dtype=dtype)
    else:
        sw = np.asarray(swb, dtype=dtype)
    return X, y, sw


def _nonfinite(a):
    """(contains NaN, contains infinity), with an O(1)-memory pass in the common case."""
    with np.errstate(over="ignore", invalid="ignore"):
        if np.isfinite(np.sum(a, dtype=np.float64)):
            return False, False
    return bool(np.isnan(a).any()), bool(np.isinf(a).any())


def _summary(block, is_classifier):
    """The small record the client needs from a loaded block."""
    X, y, sw = block
    out = {"X": _nonfinite(X), "sw": _nonfinite(sw), "sw_negative": bool((sw < 0).any())}
    if is_classifier:
        labels, inverse = np.unique(y, return_inverse=True)
        out["labels"] = labels
        out["counts"] = np.bincount(inverse.ravel(), minlength=len(labels))
        out["weights"] = np.bincount(inverse.ravel(), weights=sw, minlength=len(labels))
    else:
        out["y"] = _nonfinite(y)
        out["weight"] = float(np.sum(sw, dtype=np.float64))
    return out


def _encode(block, classes, class_weights, scale):
    """Stage 2: targets encoded for the loss, weights times class weights, normalised."""
    X, y, sw = block
    if classes is not None:
        idx = np.searchsorted(classes, y)
        Y = np.ascontiguousarray(idx.reshape(-1, 1), dtype=X.dtype)
        if class_weights is not None:
            sw = sw * class_weights[idx].astype(X.dtype, copy=False)
    else:
        Y = y
    return X, Y, np.ascontiguousarray(sw * scale, dtype=X.dtype)


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


def _local_task(start, backend, hp, codes, t_start, pieces, *blocks):
    """One worker's share of an averaged round: starting from ``start`` = (state, loss
    so far), run its ``pieces`` (see :func:`average_rounds`) one after the other on its
    ``blocks``; return (state, rows visited, sum of weighted losses)."""
    state = start[0].copy()  # never modify another task's result
    kernel = get_backend(backend).epoch
    batch = int(codes[P.BATCH_SIZE])
    codes = codes.copy()
    t = int(t_start)
    rows = 0
    total = 0.0
    for (_, seed, lo, hi), (X, Y, sw) in zip(pieces, blocks, strict=True):
        m = X.shape[0]
        order = block_order(seed, m)
        step_rows = min(batch, m)  # the kernels cap the batch at the block's rows
        if lo > 0 or hi * step_rows < m:  # part of the block: its rows of these steps
            sel = order[lo * step_rows:min(hi * step_rows, m)]
            X, Y, sw = X[sel], Y[sel], sw[sel]
            order = np.arange(sel.shape[0], dtype=np.int64)
        codes[P.T_START] = t
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            total += float(kernel(X, Y, sw, order, state, hp, codes))
        t += hi - lo
        rows += X.shape[0]
    return state, rows, total


def _average_task(start, *results):
    """The sync after a round: the workers' states averaged (:func:`average_states`),
    and the loss so far plus theirs."""
    states, rows, totals = zip(*results, strict=True)
    return average_states(list(states), list(rows)), start[1] + float(sum(totals))


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


# --------------------------------------------------------------------------- validation
def _to_array(obj):
    """A Dask array from a Dask array, dataframe or series."""
    if hasattr(obj, "to_dask_array"):
        obj = obj.to_dask_array(lengths=True)
    if not isinstance(obj, da.Array):
        raise TypeError(f"Expected a Dask array, dataframe or series; got {type(obj).__name__}.")
    return obj


def _known_rows(a):
    if any(np.isnan(c) for c in a.chunks[0]):
        a = a.compute_chunk_sizes()
    return a


def _as_matrix(est, X, *, reset, known_rows=True):
    """X as a 2-D Dask array of dense NumPy blocks with one column chunk; checks the
    feature names and count against the estimator (sets them when ``reset``)."""
    # a Dask dataframe's _meta is an empty pandas frame with its columns
    _check_feature_names(est, X._meta if hasattr(X, "columns") else X, reset=reset)
    X = _to_array(X)
    if X.ndim != 2:
        raise ValueError(
            f"Expected a 2D array, got a {X.ndim}D Dask array of shape {X.shape} instead. "
            "Reshape your data with X.reshape(-1, 1) if it has a single feature."
        )
    meta = getattr(X, "_meta", None)
    if type(meta) is not np.ndarray:
        raise TypeError(
            f"fastgd needs Dask arrays of dense NumPy blocks; this one has blocks of type "
            f"{type(meta).__module__}.{type(meta).__name__}."
        )
    if X.dtype.kind == "c":
        raise ValueError("Complex data not supported.")
    if known_rows:
        X = _known_rows(X)
    name = type(est).__name__
    if X.shape[1] == 0:
        raise ValueError(f"Found array with 0 feature(s) (shape={X.shape}) while a minimum of 1 is required by {name}.")
    if known_rows and X.shape[0] == 0:
        raise ValueError(f"Found array with 0 sample(s) (shape={X.shape}) while a minimum of 1 is required by {name}.")
    _check_n_features(est, X, reset=reset)
    if len(X.chunks[1]) > 1:
        X = X.rechunk({1: -1})
    return X


def _rows_like(v, X, name):
    """``v`` (Dask or in memory) as a Dask array chunked like X's rows."""
    if getattr(v, "ndim", None) is None or not hasattr(v, "shape"):
        v = np.asarray(v)
    if is_dask(v):
        v = _known_rows(_to_array(v))
    if v.ndim == 0:
        raise ValueError(f"{name} must be an array of one row per sample, got a scalar.")
    if v.shape[0] != X.shape[0]:
        raise ValueError(
            f"Found input variables with inconsistent numbers of samples: {[X.shape[0], v.shape[0]]} "
            f"(X and {name})."
        )
    chunks = (X.chunks[0],) + tuple((s,) for s in v.shape[1:])
    if isinstance(v, da.Array):
        return v.rechunk(chunks)
    return da.from_array(np.asarray(v), chunks=chunks)


def _check_summaries(summaries, is_classifier, dtype):
    def first_bad(field, i):
        return any(s[field][i] for s in summaries)

    for field, label in (("X", "X"), ("y", "y"), ("sw", "sample_weight")):
        if field == "y" and is_classifier:
            continue  # labels are checked by check_classification_targets
        if first_bad(field, 0):
            raise ValueError(f"Input {label} contains NaN.")
        if first_bad(field, 1):
            raise ValueError(f"Input {label} contains infinity or a value too large for {dtype!r}.")
    if any(s["sw_negative"] for s in summaries):
        raise ValueError("Negative values in data passed to `sample_weight`")


def _prepare(est, X, y, sample_weight, *, first, classes=None, partial=False, fitting=False, check_params=True,
             validation=False):
    """Validate and load the blocks; return the data (``fastgd._validation.Data``) with
    ``data.X`` a :class:`_Blocks` (``data.Y`` and ``data.sw`` are None: they live in the
    blocks)."""
    if check_params:
        est._validate_params()
        est._check_param_combinations()
    cfg = settings(est)
    if fitting and cfg.early_stopping and not validation:
        raise NotImplementedError(
            "early_stopping=True on Dask input needs a validation set passed to fit as "
            "X_val and y_val (in memory or Dask): holding out validation_fraction is not "
            "supported on Dask input (there is no blockwise validation split)."
        )
    backend = get_backend(cfg.backend)
    for kernel in ("epoch", "gradient"):
        if not hasattr(backend, kernel):
            raise ValueError(f"backend={cfg.backend!r} has no {kernel!r} kernel, which Dask input needs.")
    X = _as_matrix(est, X, reset=first)
    if y is None:
        raise ValueError(f"{type(est).__name__} requires y to be passed, but the target y is None.")
    y = _rows_like(y, X, "y")
    if cfg.is_classifier:
        if y.ndim == 2 and y.shape[1] == 1:
            warnings.warn(
                "A column-vector y was passed when a 1d array was expected. Please change "
                "the shape of y to (n_samples, ), for example using ravel().",
                DataConversionWarning,
                stacklevel=4,
            )
            y = y[:, 0]
        if y.ndim != 1:
            raise ValueError(f"y should be a 1d array, got an array of shape {y.shape} instead.")
    elif y.ndim > 2:
        raise ValueError(f"y must have 1 or 2 dimensions, got shape {y.shape}.")
    elif y.dtype.kind == "O":  # as scikit-learn's y_numeric: object targets become float
        y = y.astype(np.float64)
    sw = None
    if sample_weight is not None:
        if not is_dask(sample_weight) and np.ndim(sample_weight) == 0:
            sw = float(sample_weight)
        else:
            sw = _rows_like(sample_weight, X, "sample_weight")
            if sw.ndim != 1:
                raise ValueError("Sample weights must be 1D array or scalar")
    dtype = X.dtype if X.dtype in FLOAT_DTYPES else np.dtype(np.float64)
    ex = _executor(X)
    loaded = ex.load(X, y, sw, dtype, cfg.is_classifier)
    try:
        summaries = loaded.gather_each(_summary, cfg.is_classifier)
        _check_summaries(summaries, cfg.is_classifier, dtype)
        n = loaded.shape[0]
        if cfg.is_classifier:
            labels = np.unique(np.concatenate([s["labels"] for s in summaries]))
            counts = np.zeros(len(labels), dtype=np.int64)
            weights = np.zeros(len(labels))
            for s in summaries:
                pos = np.searchsorted(labels, s["labels"])
                counts[pos] += s["counts"]
                weights[pos] += s["weights"]
            # the hook decides everything from the distinct labels: classes, errors
            _, n_outputs, loss, fitted = est._targets(labels, first=first, classes=classes, partial=partial)
            all_classes = fitted["classes_"]
            per_class = _per_class_weights(cfg, all_classes, labels, counts, n, fitted)
            pos = np.searchsorted(all_classes, labels)
            total = float(np.sum(weights * (per_class[pos] if per_class is not None else 1.0)))
        else:
            # the hook checks y's dimensions against the model: a stand-in of y's shape
            # (a zero-strided view, no memory) suffices
            stub = np.broadcast_to(np.zeros(()), y.shape)
            _, n_outputs, loss, fitted = est._targets(stub, first=first, classes=classes, partial=partial)
            all_classes = per_class = None
            total = float(np.sum([s["weight"] for s in summaries]))
        blocks = loaded.map_each(_encode, all_classes, per_class, weight_scale(n, total))
    finally:
        loaded.release()
    return Data(blocks, None, None, loss, n_outputs, fitted)


def _per_class_weights(s, classes, labels, counts, n, fitted):
    """Per-class multipliers for ``classes`` (None without class weights); ``s``: the
    estimator's settings."""
    if s.class_weight is None:
        return None
    if s.class_weight == "balanced":
        # sklearn's compute_class_weight("balanced"): n / (n_classes * bincount(y))
        full = np.zeros(len(classes), dtype=np.int64)
        full[np.searchsorted(classes, labels)] = counts
        return n / (len(classes) * full.astype(np.float64))
    # a dict: the hook validates it and gives one weight per class
    return s.class_weights(np.arange(len(classes), dtype=np.float64).reshape(-1, 1), fitted)


# --------------------------------------------------------------------------- execution
def _executor(X):
    """The distributed client Dask would use for X, else this process."""
    try:
        from distributed import Client
    except ImportError:
        return _Local()
    scheduler = dask.base.get_scheduler(collections=[X])
    client = getattr(scheduler, "__self__", None)
    if isinstance(client, Client):
        return _Cluster(client)
    return _Local()


class _Blocks:
    """Handles to blocks (tuples in memory, or futures on a cluster) and their sizes."""

    def __init__(self, ex, handles, sizes, n_features, dtype):
        self.ex = ex
        self.handles = list(handles)
        self.sizes = [int(s) for s in sizes]
        self.offsets = [int(o) for o in np.concatenate([[0], np.cumsum(self.sizes)[:-1]])]
        self.shape = (int(sum(self.sizes)), int(n_features))
        self.dtype = np.dtype(dtype)

    def gather_each(self, fn, *args, per_block=None):
        """``[fn(block_b, per_block[b], *args) for b]``, run where the blocks are."""
        return self.ex.gather_each(fn, self.handles, args, per_block)

    def map_each(self, fn, *args):
        """New blocks ``fn(block_b, *args)``, kept where the blocks are."""
        return _Blocks(self.ex, self.ex.map_each(fn, self.handles, args), self.sizes, self.shape[1], self.dtype)

    def chain(self, fn, visits, carried, *args):
        """``carried = fn(block_b, carried, *args, *extra)`` for ``(b, extra)`` in
        ``visits``, each call where its block is; returns the last ``carried``."""
        return self.ex.chain(fn, self.handles, visits, carried, args)

    def owners(self):
        """Which worker holds each block (one name per block; one for all of them
        without a cluster)."""
        return self.ex.owners(self.handles)

    def rounds(self, rounds, carried, backend, hp, codes, t):
        """Run an averaged epoch's ``rounds`` (:func:`average_rounds`) from ``carried``
        = (state, 0.0): each round's pieces where their blocks live, then
        :func:`_average_task`. Returns (state, summed loss, steps)."""
        return self.ex.rounds(self.handles, rounds, carried, (backend, hp, codes), t)

    def release(self):
        self.handles = []


class _Local:
    """Dask's local schedulers: blocks are computed once into this process."""

    def load(self, X, y, sw, dtype, is_classifier):
        tasks, sizes = _load_tasks(X, y, sw, dtype, is_classifier)
        return _Blocks(self, dask.compute(*tasks), sizes, X.shape[1], dtype)

    @staticmethod
    def gather_each(fn, handles, args, per_block):
        if per_block is None:
            return [fn(h, *args) for h in handles]
        return [fn(h, extra, *args) for h, extra in zip(handles, per_block, strict=True)]

    @staticmethod
    def map_each(fn, handles, args):
        return [fn(h, *args) for h in handles]

    @staticmethod
    def chain(fn, handles, visits, carried, args):
        for b, extra in visits:
            carried = fn(handles[b], carried, *args, *extra)
        return carried

    @staticmethod
    def owners(handles):
        return [None] * len(handles)  # this process is the one worker

    @staticmethod
    def rounds(handles, rounds, carried, args, t):
        start = t
        for steps, parts in rounds:
            results = [_local_task(carried, *args, t, pieces, *[handles[p[0]] for p in pieces]) for _, pieces in parts]
            carried = _average_task(carried, *results)
            t += steps
        return carried[0], carried[1], t - start


def _load_tasks(X, y, sw, dtype, is_classifier):
    """Delayed stage-1 tasks of the non-empty row chunks, and their sizes."""
    xs = X.to_delayed().ravel()
    ys = y.to_delayed().ravel()
    ss = sw.to_delayed().ravel() if isinstance(sw, da.Array) else [sw] * len(xs)
    keep = [i for i, size in enumerate(X.chunks[0]) if size > 0]
    load = dask.delayed(_load, pure=True)
    tasks = [load(xs[i], ys[i], ss[i], dtype, is_classifier) for i in keep]
    return tasks, [X.chunks[0][i] for i in keep]


class _Cluster:
    """A distributed client: every task that reads a block is restricted to the
    worker(s) holding that block, so blocks never move."""

    def __init__(self, client):
        self.client = client
        self.token = uuid.uuid4().hex[:12]
        self.count = itertools.count()
        self.holders = {}

    def _key(self, what):
        return f"fastgd-{what}-{self.token}-{next(self.count)}"

    def load(self, X, y, sw, dtype, is_classifier):
        from distributed import futures_of, wait

        # make the chunks live on the workers (a no-op for persisted data), then load
        # each X chunk where it is; only the small y and weight chunks may move to it
        parts = [X, y] + ([sw] if isinstance(sw, da.Array) else [])
        parts = self.client.persist(parts)
        by_key = {f.key: f for p in parts for f in futures_of(p)}
        xs, ys = ([by_key[k] for k in _flat_keys(p)] for p in parts[:2])
        ss = [by_key[k] for k in _flat_keys(parts[2])] if len(parts) == 3 else [sw] * len(xs)
        keep = [i for i, size in enumerate(X.chunks[0]) if size > 0]
        wait([xs[i] for i in keep])
        who = self.client.who_has([xs[i] for i in keep])
        pins = [list(who.get(xs[i].key, ())) or None for i in keep]
        handles = [
            self.client.submit(
                _load,
                xs[i],
                ys[i],
                ss[i],
                dtype,
                is_classifier,
                key=self._key("load"),
                workers=pin,
                allow_other_workers=False,
            )
            for i, pin in zip(keep, pins, strict=True)
        ]
        del parts, by_key, xs, ys, ss
        self._wait(handles, pins)  # from here on, where each block lives is known
        return _Blocks(self, handles, [X.chunks[0][i] for i in keep], X.shape[1], dtype)

    def _submit(self, what, fn, handle, where, *args):
        return self.client.submit(
            fn, handle, *args, key=self._key(what), workers=where, allow_other_workers=False
        )

    def _where(self, handles):
        """The workers holding each block, asked once per set of blocks: blocks do not
        move (a worker that leaves is caught by ``_wait``)."""
        key = tuple(h.key for h in handles)
        if key not in self.holders:
            who = self.client.who_has(handles)
            self.holders = {key: [list(who.get(h.key, ())) or None for h in handles]}
        return self.holders[key]

    def _wait(self, futures, where):
        """Wait for the futures; raise if a worker a task is pinned to has left."""
        from distributed import wait

        pinned = {w for ws in where if ws for w in ws}
        while True:
            try:
                wait(futures, timeout=POLL_S)
                return
            except TimeoutError:
                lost = pinned - set(self.client.nthreads())
                if lost:
                    self.client.cancel(futures)
                    raise RuntimeError(
                        f"Dask worker(s) {sorted(lost)} holding training blocks left the cluster "
                        "during the fit; the model is unchanged. Fit again."
                    ) from None

    def gather_each(self, fn, handles, args, per_block):
        where = self._where(handles)
        extras = [()] * len(handles) if per_block is None else [(e,) for e in per_block]
        futures = [
            self._submit(fn.__name__.strip("_"), fn, h, w, *extra, *args)
            for h, w, extra in zip(handles, where, extras, strict=True)
        ]
        self._wait(futures, where)
        return self.client.gather(futures)

    def map_each(self, fn, handles, args):
        where = self._where(handles)
        futures = [self._submit("block", fn, h, w, *args) for h, w in zip(handles, where, strict=True)]
        self._wait(futures, where)
        return futures

    def chain(self, fn, handles, visits, carried, args):
        where = self._where(handles)
        futures = []
        for b, extra in visits:
            carried = self._submit("epoch", fn, handles[b], where[b], carried, *args, *extra)
            futures.append(carried)
        self._wait(futures, where)
        return futures[-1].result()


    def owners(self, handles):
        # a block held by several workers (replicated) belongs to the first by name
        return [min(ws) if ws else None for ws in self._where(handles)]

    def rounds(self, handles, rounds, carried, args, t):
        """Submit the whole epoch at once: each round's local tasks pinned to their
        blocks' worker, each sync an unpinned task on the local results; only the states
        (and a few scalars) travel, worker to sync task to worker."""
        where = self._where(handles)
        start = t
        futures = []
        for steps, parts in rounds:
            local = [
                self.client.submit(
                    _local_task,
                    carried,
                    *args,
                    t,
                    pieces,
                    *[handles[p[0]] for p in pieces],
                    key=self._key("local"),
                    workers=[owner] if owner is not None else where[pieces[0][0]],
                    allow_other_workers=False,
                )
                for owner, pieces in parts
            ]
            carried = self.client.submit(_average_task, carried, *local, key=self._key("average"))
            futures += local + [carried]
            t += steps
        self._wait(futures, where)
        state, total = carried.result()
        return state, total, t - start


def _flat_keys(a):
    """The keys of a 2-D (row chunks x 1) or 1-D Dask array, in row-chunk order."""
    keys = a.__dask_keys__()
    return [k[0] if isinstance(k, list) else k for k in keys]
