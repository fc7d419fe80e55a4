"""Numba kernels for sparse (CSR) input, with the lazy O(nnz) momentum update.

The algorithm is the reference's (``fastgd._numpy.sparse.epoch``, which is the dense
``fastgd._numpy.kernels.epoch`` on CSR rows). A naive step moves every coordinate,
because the velocity decays everywhere: O(d) per step however few non-zeros a batch
has. This kernel instead moves only the coordinates the batch touches, and brings the
others up to date when they are next read:

* A coordinate ``j`` whose data gradient is zero for a step still moves, linearly: with
  ``l2`` the L2 strength, ``mu`` the momentum and a constant step ``eta``,
  ``(w, v) <- A (w, v)`` with ``A = [[1 - eta l2, -eta mu], [l2, mu]]`` (heavy ball:
  ``v = mu v + l2 w; w -= eta v``) or ``A = [[1 - eta l2 (1 + mu), -eta mu^2], [l2, mu]]``
  (Nesterov: ``w -= eta (l2 w + mu v)``). Without L2 this is the geometric sum
  ``w -= eta mu (1 - mu^k) / (1 - mu) v``, ``v <- mu^k v``; without momentum, the decay
  ``w <- (1 - eta l2)^k w``. One matrix covers them all.
* ``last[j]`` is the step at which coordinate ``j`` was last brought up to date (during a
  batch, the coordinates it touches hold their slot in a compact gradient buffer there
  instead, so a non-zero costs one random read besides the weights); before a row reads it, ``(w, v)`` of every output are multiplied by ``A^k``, ``k`` the steps
  missed. The powers ``A^0 .. A^T`` are tabulated once per epoch (T + 1 products of 2x2
  matrices, O(T)), so a catch-up costs four multiplications per output.
* Every coordinate is brought up to date every ``T`` steps and at the end of the epoch,
  so ``state`` on return is the dense algorithm's. ``T = min(steps in the epoch,
  max(SYNC_MIN_STEPS, d))``: a full catch-up costs O(K d) and comes at most once every
  ``d`` steps, O(K) per step amortised, and the table stays O(max(SYNC_MIN_STEPS, d)).
* The intercept has a gradient at every step: it is updated at every step (O(K)).

Exactness: the iterates equal the dense algorithm's up to rounding (``A^k`` is built by
``k`` products in float64, so the relative error grows like ``k`` units in the last
place; the tests hold it to 1e-10 in float64).

Where no exact lazy form is used, the kernel takes the dense step (O(K d) per step,
the reference's update): with an L1 part in the penalty ("l1", "elasticnet"; the
soft-threshold after every step is not linear), and with a step size that changes
within an epoch ("invscaling", "optimal"; ``A`` changes every step). ``lazy=False``
forces the dense step for any setting (the benchmark's dense-velocity baseline).

Full batch runs on one thread (``n_jobs`` is not used for sparse input).
"""

import numpy as np
from llvmlite import ir
from numba import config, njit, types
from numba.core import cgutils
from numba.extending import intrinsic

from .. import _params as P
from .._schedules import CONSTANT
from .._sparse import check_epoch
from .kernels import _step_size
from .losses import loss_and_grad

# a full catch-up happens at least every max(SYNC_MIN_STEPS, d) steps (and each epoch's end)
SYNC_MIN_STEPS = 4096
# rows ahead in the visiting order whose values and indices are prefetched, and rows
# ahead whose coordinates' weights, velocities and steps are (shuffled SGD otherwise
# waits on memory for each row)
PREFETCH_AHEAD = 4
PREFETCH_NEAR = 2
CACHE_LINE_ITEMS = 8


@intrinsic
def _prefetch(typingctx, arr, idx):
    """``__builtin_prefetch(&arr[idx])`` for a 1-D array (LLVM's prefetch intrinsic)."""
    if not isinstance(arr, types.Array) or arr.ndim != 1 or not isinstance(idx, types.Integer):
        return None
    sig = types.void(arr, idx)

    def codegen(context, builder, signature, args):
        ary = context.make_array(signature.args[0])(context, builder, args[0])
        ptr = builder.gep(ary.data, [args[1]])
        i8p = ir.IntType(8).as_pointer()
        i32 = ir.IntType(32)
        fn = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32]), "llvm.prefetch"
        )
        builder.call(fn, [builder.bitcast(ptr, i8p), i32(0), i32(3), i32(1)])
        return context.get_dummy_value()

    return sig, codegen


if config.DISABLE_JIT:  # NUMBA_DISABLE_JIT=1: the kernels run as Python; no prefetch

    def _prefetch(arr, idx):
        pass


def uses_lazy_update(hp, codes):
    """Whether the kernel updates lazily (O(nnz) per step) for these settings."""
    return hp[P.L1] == 0.0 and codes[P.SCHEDULE] == CONSTANT


@njit(cache=True, nogil=True)
def _powers(T, eta, mu, l2, nesterov):
    """``tab[k] = (a, b, c, e)`` with ``A^k = [[a, b], [c, e]]``, k = 0 .. T (float64)."""
    tab = np.empty((T + 1, 4))
    if nesterov:
        a1 = 1.0 - eta * l2 * (1.0 + mu)
        b1 = -eta * mu * mu
    else:
        a1 = 1.0 - eta * l2
        b1 = -eta * mu
    c1 = l2
    e1 = mu
    tab[0, 0] = 1.0
    tab[0, 1] = 0.0
    tab[0, 2] = 0.0
    tab[0, 3] = 1.0
    for k in range(1, T + 1):
        a = tab[k - 1, 0]
        b = tab[k - 1, 1]
        c = tab[k - 1, 2]
        e = tab[k - 1, 3]
        tab[k, 0] = a1 * a + b1 * c
        tab[k, 1] = a1 * b + b1 * e
        tab[k, 2] = c1 * a + e1 * c
        tab[k, 3] = c1 * b + e1 * e
    return tab


@njit(cache=True, nogil=True)
def _catch_up(W, V, j, k, tab):
    """Apply the ``k`` missed gradient-free steps to coordinate j of every output."""
    a = tab[k, 0]
    b = tab[k, 1]
    c = tab[k, 2]
    e = tab[k, 3]
    for kk in range(W.shape[0]):
        w = W[kk, j]
        v = V[kk, j]
        W[kk, j] = a * w + b * v
        V[kk, j] = c * w + e * v


@njit(cache=True, nogil=True)
def _sync(W, V, last, t, tab):
    """Bring every feature coordinate up to step t."""
    for j in range(last.shape[0]):
        k = t - last[j]
        if k > 0:
            _catch_up(W, V, j, k, tab)
            last[j] = t


@njit(cache=True, nogil=True)
def _update(W, V, kk, j, g, mu, eta, nesterov, shrink):
    """The step of one coordinate from its full gradient g (L2 included)."""
    v = mu * V[kk, j] + g
    V[kk, j] = v
    if nesterov:
        w = W[kk, j] - eta * (g + mu * v)
    else:
        w = W[kk, j] - eta * v
    if shrink > 0.0:
        if w > shrink:
            w -= shrink
        elif w < -shrink:
            w += shrink
        else:
            w = 0.0
    W[kk, j] = w


@njit(cache=True, nogil=True)
def _epoch(data, indices, indptr, Y, sw, order, state, hp, codes, lazy, sync_steps):
    n = order.shape[0]
    W = state[0]
    V = state[1]
    K, cols = W.shape
    d = cols - 1
    loss = codes[P.LOSS]
    batch = codes[P.BATCH_SIZE]
    t = codes[P.T_START]
    nesterov = codes[P.NESTEROV] != 0
    fit_intercept = codes[P.FIT_INTERCEPT] != 0
    schedule = codes[P.SCHEDULE]
    mu = hp[P.MOMENTUM]
    l2 = hp[P.L2]
    l1 = hp[P.L1]
    if l1 != 0.0 or schedule != CONSTANT:
        lazy = False
    G = np.zeros((K, cols), dtype=data.dtype)  # dense mode: the batch's gradient
    Gi = np.zeros(K, dtype=data.dtype)  # the intercept's gradient
    p = np.empty((1, K), dtype=data.dtype)  # the row's outputs, as loss_and_grad takes them
    n_steps = (n + batch - 1) // batch
    if lazy:
        T = min(n_steps, sync_steps if sync_steps > 0 else max(SYNC_MIN_STEPS, d))
        tab = _powers(T, hp[P.ETA0], mu, l2, nesterov)
        # last[j] >= 0: coordinate j is up to date at step last[j]; during a batch, a
        # coordinate the batch touches is up to date and holds -(its slot + 1) instead:
        # touched[slot] = j and Gs[slot] is its gradient (one array read per non-zero)
        last = np.full(d, t, dtype=np.int64)
        touched = np.empty(d, dtype=np.int64)
        Gs = np.zeros((d, K), dtype=data.dtype)
    else:
        T = 1
        tab = np.empty((1, 4))
        last = np.empty(0, dtype=np.int64)
        touched = np.empty(0, dtype=np.int64)
        Gs = np.zeros((0, K), dtype=data.dtype)
    flat = state.reshape(state.size)  # W[k, j] = flat[k * cols + j], V[k, j] = flat[(K + k) * cols + j]
    total = 0.0
    for steps, start in enumerate(range(0, n, batch), 1):
        stop = min(start + batch, n)
        n_touched = 0
        for ii in range(start, stop):
            if ii + 2 * PREFETCH_AHEAD < n:
                _prefetch(indptr, order[ii + 2 * PREFETCH_AHEAD])
            if ii + PREFETCH_AHEAD < n:
                r = order[ii + PREFETCH_AHEAD]
                for q in range(indptr[r], indptr[r + 1], CACHE_LINE_ITEMS):
                    _prefetch(indices, q)
                    _prefetch(data, q)
            if lazy and ii + PREFETCH_NEAR < n:
                r = order[ii + PREFETCH_NEAR]
                for q in range(indptr[r], indptr[r + 1]):
                    j = indices[q]
                    _prefetch(last, j)
                    _prefetch(flat, j)
                    _prefetch(flat, K * cols + j)
            i = order[ii]
            lo = indptr[i]
            hi = indptr[i + 1]
            if lazy:
                for q in range(lo, hi):
                    j = indices[q]
                    lj = last[j]
                    if lj >= 0:
                        if t > lj:
                            _catch_up(W, V, j, t - lj, tab)
                        touched[n_touched] = j
                        for kk in range(K):
                            Gs[n_touched, kk] = 0.0
                        n_touched += 1
                        last[j] = -n_touched
            for kk in range(K):
                acc = W[kk, d]
                for q in range(lo, hi):
                    acc += W[kk, indices[q]] * data[q]
                p[0, kk] = acc
            wi = sw[i]
            total += wi * loss_and_grad(loss, p, 0, Y, i)
            for kk in range(K):
                c = wi * p[0, kk]
                if lazy:
                    for q in range(lo, hi):
                        Gs[-last[indices[q]] - 1, kk] += c * data[q]
                else:
                    for q in range(lo, hi):
                        G[kk, indices[q]] += c * data[q]
                Gi[kk] += c
        t += 1
        inv_b = 1.0 / (stop - start)
        eta = _step_size(schedule, t, hp[P.ETA0], hp[P.POWER_T], hp[P.OPTIMAL_T0], hp[P.ALPHA])
        shrink = eta * l1
        if lazy:
            for q in range(n_touched):
                j = touched[q]
                for kk in range(K):
                    g = Gs[q, kk] * inv_b + l2 * W[kk, j]
                    _update(W, V, kk, j, g, mu, eta, nesterov, 0.0)
                last[j] = t
        else:
            for kk in range(K):
                for j in range(d):
                    g = G[kk, j] * inv_b + l2 * W[kk, j]
                    G[kk, j] = 0.0
                    _update(W, V, kk, j, g, mu, eta, nesterov, shrink)
        for kk in range(K):
            if fit_intercept:
                _update(W, V, kk, d, Gi[kk] * inv_b, mu, eta, nesterov, 0.0)
            Gi[kk] = 0.0
        if lazy and steps % T == 0:
            _sync(W, V, last, t, tab)
    if lazy:
        _sync(W, V, last, t, tab)
    return total


def epoch(data, indices, indptr, Y, sw, order, state, hp, codes, lazy=True, sync_steps=0):
    """One epoch in place; returns the sum of ``sw_i * loss_i``. See
    ``fastgd._numpy.sparse.epoch`` for the contract and the module docstring for the
    lazy update; ``lazy=False`` takes the dense O(K d) step at every step, and
    ``sync_steps > 0`` sets the interval ``T`` of the full catch-ups (for tests)."""
    check_epoch(data, indices, indptr, Y, sw, order, state)
    return _epoch(data, indices, indptr, Y, sw, order, state, hp, codes, bool(lazy), int(sync_steps))
