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
* For speed (the same in the Cython kernel): the state is copied once per epoch into one
  record per coordinate in a work buffer, its K weights, K velocities and the int64
  step (32 bytes for K = 1 in float64), so a non-zero costs one random memory access
  instead of three; the powers come from two small tables, ``A^k = A^(128 m) A^l``
  (one table of T entries is 8 MB at T = 2^18: a second cache miss per non-zero), both
  factors applied without a branch; with batches of one row and K = 1, a row takes
  two passes over its non-zeros (catch up and multiply; gradient and step), a repeated
  column (non-canonical CSR) is detected in the first and its gradients summed first.
  The work buffers are kept per thread between calls (``fastgd._sparse.work_buffer``).
  Prefetching is spread over the loops: the records of the row two places ahead, one
  per non-zero of the current row's first pass, and the entries of the row four places
  ahead, a cache line per non-zero of the second pass (asked for in a burst, they fill
  the miss buffers and the loads stall anyway). At the end of the epoch the last
  catch-up is fused with copying the records back into ``state``.
* Every coordinate is brought up to date every ``T`` steps and at the end of the epoch,
  so ``state`` on return is the dense algorithm's. ``T = min(steps in the epoch,
  max(SYNC_MIN_STEPS, d))``: a full catch-up costs O(K d) and comes at most once every
  ``d`` steps, O(K) per step amortised, and the table stays O(max(SYNC_MIN_STEPS, d)).
* The intercept has a gradient at every step: it is updated at every step (O(K)).

Exactness: the iterates equal the dense algorithm's up to rounding (``A^k`` is built by
``k`` products in float64, so the relative error grows like ``k`` units in the last
place; the tests hold it to 1e-10 in float64).

The other update rules (``fastgd._optimizers``): AdaGrad and RMSprop without a penalty
have a lazy form too, in the same batch loop (``_lazy_batches``): an untouched
coordinate's gradient is zero, so only RMSprop's accumulator moves, by a power of
``beta_2``, applied where momentum SGD's catch-up is.

Where no exact lazy form is used (``fastgd._optimizers.uses_lazy_update`` says), the
kernel takes the dense step (O(K d) per step, the reference's update): with an L1 part
in the penalty ("l1", "elasticnet"; the soft-threshold after every step is not linear),
with momentum SGD and a step size that changes within an epoch ("invscaling",
"optimal"; ``A`` changes every step), with Adam, with AdaGrad or RMSprop and an L2
penalty, and with averaging. ``lazy=False`` forces the dense step for any setting (the
benchmark's dense-velocity baseline).

Full batch runs on one thread (``n_jobs`` is not used for sparse input).

The tuning constants (SYNC_MIN_STEPS, the prefetch distances SPARSE_PREFETCH_AHEAD and
SPARSE_PREFETCH_NEAR, LO_BITS, the cache line) are defined in ``fastgd._tuning``, shared
with the Cython kernels.
"""

import numpy as np
from llvmlite import ir
from numba import config, njit, types
from numba.core import cgutils
from numba.extending import intrinsic

from .. import _params as P
from .. import _tuning
from .._checks import check_sparse_epoch
from .._optimizers import ADAGRAD, SGD, uses_lazy_update
from .._sparse import record_size, work_buffer
from ._cache import reports_damaged_cache
from ._inputs import read_only
from .kernels import (
    N_SCALARS,
    S_B2,
    S_EPS,
    S_ETA,
    S_MU,
    S_ZERO,
    _adaptive_coord,
    _labels_in_range,
    _scalars,
    _step,
    _update_intercept,
)
from .losses import loss_and_grad

# A^k = A^(k_hi 2^LO_BITS) A^(k_lo) (``fastgd._tuning.LO_BITS``): k_lo = k & LO_MASK
LO_MASK = (1 << _tuning.LO_BITS) - 1
# during a step of one row (K = 1), a touched coordinate's step holds MARK
MARK = -1


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


@njit(cache=True, nogil=True)
def _matrix_powers(a1, b1, c1, e1, m):
    """``tab[k] = (a, b, c, e)`` with ``M^k = [[a, b], [c, e]]``, k = 0 .. m, for
    ``M = [[a1, b1], [c1, e1]]`` (float64)."""
    tab = np.empty((m + 1, 4))
    tab[0, 0] = 1.0
    tab[0, 1] = 0.0
    tab[0, 2] = 0.0
    tab[0, 3] = 1.0
    for k in range(1, m + 1):
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
def _powers(T, eta, mu, l2, nesterov):
    """``tab[k] = (a, b, c, e)`` with ``A^k = [[a, b], [c, e]]``, k = 0 .. T (float64)."""
    if nesterov:
        return _matrix_powers(1.0 - eta * l2 * (1.0 + mu), -eta * mu * mu, l2, mu, T)
    return _matrix_powers(1.0 - eta * l2, -eta * mu, l2, mu, T)


@njit(cache=True, nogil=True)
def _power_tables(T, eta, mu, l2, nesterov):
    """``(lo, hi)``: ``lo[k] = A^k`` for k < 2^LO_BITS and ``hi[m] = A^(m 2^LO_BITS)`` for
    ``m 2^LO_BITS <= T`` (``lo[0] = hi[0] = I``)."""
    B = 1 << _tuning.LO_BITS
    lo = _powers(B, eta, mu, l2, nesterov)
    hi = _matrix_powers(lo[B, 0], lo[B, 1], lo[B, 2], lo[B, 3], T >> _tuning.LO_BITS)
    return lo[:B].copy(), hi


# The lazy update keeps each feature coordinate's state in one record of a work buffer:
# R[j S : j S + 2K] = (w_0..w_{K-1}, v_0..v_{K-1}) of coordinate j, and the int64 step at
# which it is up to date in the same record, read through an int64 view of the buffer
# (Ri[j SI + LI]): a non-zero costs one random memory access instead of three (W[k, j],
# V[k, j] and last[j] lie d entries apart in ``state``).


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _catch_up(R, o, K, k, lo, hi):
    """Apply the ``k >= 0`` missed gradient-free steps to the record at R[o]: always both
    factors (lo[0] and hi[0] are the identity), without an unpredictable branch."""
    kl = k & LO_MASK
    kh = k >> _tuning.LO_BITS
    a = lo[kl, 0]
    b = lo[kl, 1]
    c = lo[kl, 2]
    e = lo[kl, 3]
    a2 = hi[kh, 0]
    b2 = hi[kh, 1]
    c2 = hi[kh, 2]
    e2 = hi[kh, 3]
    for kk in range(K):
        w = R[o + kk]
        v = R[o + K + kk]
        w1 = a * w + b * v
        v1 = c * w + e * v
        R[o + kk] = a2 * w1 + b2 * v1
        R[o + K + kk] = c2 * w1 + e2 * v1


@njit(cache=True, nogil=True, error_model="numpy")
def _sync(R, Ri, S, SI, LI, K, d, t, lo, hi):
    """Bring every feature coordinate up to step t."""
    for j in range(d):
        lj = Ri[j * SI + LI]
        if t > lj:
            _catch_up(R, j * S, K, t - lj, lo, hi)
            Ri[j * SI + LI] = t


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _update_rec(R, o, K, g, mu, eta, nesterov):
    """The step of the record entry R[o] (velocity at R[o + K]) from its full gradient g."""
    v = mu * R[o + K] + g
    R[o + K] = v
    if nesterov:
        R[o] = R[o] - eta * (g + mu * v)
    else:
        R[o] = R[o] - eta * v


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _prefetch_ahead(indices, indptr, data, order, n, ii, Yflat, ycols, sw):
    """Prefetch for the row at position ii of the order: later rows' entries, target and
    weight (shuffled SGD waits on memory for each otherwise)."""
    if ii + 2 * _tuning.SPARSE_PREFETCH_AHEAD < n:
        _prefetch(indptr, order[ii + 2 * _tuning.SPARSE_PREFETCH_AHEAD])
    if ii + _tuning.SPARSE_PREFETCH_AHEAD < n:
        r = order[ii + _tuning.SPARSE_PREFETCH_AHEAD]
        lo = indptr[r]
        hi = indptr[r + 1]
        for q in range(lo, hi, _tuning.CACHE_LINE_BYTES // 8):  # (a line of int64 indices)
            _prefetch(indices, q)
            _prefetch(data, q)
        if hi > lo:  # the last line, when the row does not start on a line
            _prefetch(indices, hi - 1)
            _prefetch(data, hi - 1)
        _prefetch(Yflat, r * ycols)
        _prefetch(sw, r)


@njit(cache=True, nogil=True, error_model="numpy")
def _lazy_sgd1(csr, Y, sw, order, state, hp, codes, work, tables):
    """The lazy epoch for batches of one row and one output (K = 1): two passes over the
    row, the catch-up fused with the product and the gradient with the step. A row with
    a repeated column (non-canonical CSR) sums each coordinate's gradient in Gs first.
    Returns the loss sum and the final step (the records are caught up to it as they are
    copied back). ``csr``, ``work`` and ``tables``: see ``_lazy_epoch``.

    Written out in full (no helper calls in the loops: an inlined helper taking arrays
    costs reference counting per call) and indexed with unsigned integers where the
    index is known non-negative (a signed index costs a wraparound fix per access)."""
    data, indices, indptr = csr
    R, Ri, S, touched, Gs = work
    T, lo, hi = tables
    n = order.shape[0]
    d = state.shape[2] - 1
    ycols = Y.shape[1]
    Yflat = Y.reshape(Y.size)
    p = np.empty((1, 1), dtype=state.dtype)  # the row's output, as loss_and_grad takes it
    t = codes[P.T_START]
    loss = codes[P.LOSS]
    nesterov = codes[P.NESTEROV] != 0
    fit_intercept = codes[P.FIT_INTERCEPT] != 0
    eta, mu, l2 = hp[P.ETA0], hp[P.MOMENTUM], hp[P.L2]
    SI = S * R.itemsize // 8  # a record's size in int64 entries
    uS = np.uint64(S)
    uSI = np.uint64(SI)
    LI = 2 * R.itemsize // 8  # the step's offset in a record, in int64 entries
    uLI = np.uint64(LI)
    u4 = np.uint64(4)
    uline = np.uint64(_tuning.CACHE_LINE_BYTES // 8)  # int64 indices per cache line
    lo1 = lo.reshape(lo.size)  # A^k's four entries at 4 k
    hi1 = hi.reshape(hi.size)
    wb = state[0, 0, d]
    vb = state[1, 0, d]
    total = 0.0
    for ii in range(n):
        # the entries of the row SPARSE_PREFETCH_AHEAD ahead are asked for a line of each array
        # per non-zero of this row's second pass
        if ii + 2 * _tuning.SPARSE_PREFETCH_AHEAD < n:
            _prefetch(indptr, order[ii + 2 * _tuning.SPARSE_PREFETCH_AHEAD])
        ca = np.uint64(0)
        cb = np.uint64(0)
        if ii + _tuning.SPARSE_PREFETCH_AHEAD < n:
            r = order[ii + _tuning.SPARSE_PREFETCH_AHEAD]
            ca = np.uint64(indptr[r])
            cb = np.uint64(indptr[r + 1])
            if cb > ca:  # the last line, when the row does not start on a line
                _prefetch(indices, cb - np.uint64(1))
                _prefetch(data, cb - np.uint64(1))
            _prefetch(Yflat, r * ycols)
            _prefetch(sw, r)
        # the records of the row SPARSE_PREFETCH_NEAR ahead are asked for one per non-zero of
        # this row's first pass (a burst of them would fill the miss buffers)
        pa = np.uint64(0)
        pb = np.uint64(0)
        if ii + _tuning.SPARSE_PREFETCH_NEAR < n:
            r = order[ii + _tuning.SPARSE_PREFETCH_NEAR]
            pa = np.uint64(indptr[r])
            pb = np.uint64(indptr[r + 1])
        i = order[ii]
        lo_q = np.uint64(indptr[i])
        hi_q = np.uint64(indptr[i + 1])
        dup = False
        acc = wb
        for q in range(lo_q, hi_q):
            if pa < pb:
                _prefetch(R, np.uint64(indices[pa]) * uS)
                pa += np.uint64(1)
            o = np.uint64(indices[q]) * uS
            oi = np.uint64(indices[q]) * uSI + uLI
            lj = Ri[oi]
            if lj != MARK:
                k = t - lj
                ml = np.uint64(k & LO_MASK) * u4
                mh = np.uint64(k >> _tuning.LO_BITS) * u4
                w = R[o]
                v = R[o + np.uint64(1)]
                w1 = lo1[ml] * w + lo1[ml + np.uint64(1)] * v
                v1 = lo1[ml + np.uint64(2)] * w + lo1[ml + np.uint64(3)] * v
                R[o] = hi1[mh] * w1 + hi1[mh + np.uint64(1)] * v1
                R[o + np.uint64(1)] = hi1[mh + np.uint64(2)] * w1 + hi1[mh + np.uint64(3)] * v1
                Ri[oi] = MARK
            else:
                dup = True
            acc += R[o] * data[q]
        while pa < pb:
            _prefetch(R, np.uint64(indices[pa]) * uS)
            pa += np.uint64(1)
        p[0, 0] = acc
        wi = sw[i]
        total += wi * loss_and_grad(loss, p, 0, Y, i)
        c = wi * p[0, 0]
        t += 1
        if not dup:
            for q in range(lo_q, hi_q):
                if ca < cb:
                    _prefetch(indices, ca)
                    _prefetch(data, ca)
                    ca += uline
                o = np.uint64(indices[q]) * uS
                g = c * data[q] + l2 * R[o]
                v = mu * R[o + np.uint64(1)] + g
                R[o + np.uint64(1)] = v
                if nesterov:
                    R[o] = R[o] - eta * (g + mu * v)
                else:
                    R[o] = R[o] - eta * v
                Ri[np.uint64(indices[q]) * uSI + uLI] = t
        else:
            nt = 0
            for q in range(lo_q, hi_q):
                j = indices[q]
                lj = Ri[j * SI + LI]
                if lj == MARK:
                    touched[nt] = j
                    Gs[nt] = c * data[q]
                    nt += 1
                    Ri[j * SI + LI] = -1 - nt
                else:
                    Gs[-2 - lj] += c * data[q]
            for s in range(nt):
                j = touched[s]
                o = j * S
                _update_rec(R, o, 1, Gs[s] + l2 * R[o], mu, eta, nesterov)
                Ri[j * SI + LI] = t
        while ca < cb:
            _prefetch(indices, ca)
            _prefetch(data, ca)
            ca += uline
        if fit_intercept:
            vb = mu * vb + c
            if nesterov:
                wb = wb - eta * (c + mu * vb)
            else:
                wb = wb - eta * vb
        if (ii + 1) % T == 0:
            _sync(R, Ri, S, SI, LI, 1, d, t, lo, hi)
    state[0, 0, d] = wb
    state[1, 0, d] = vb
    return total, t  # the records are brought up to t as they are copied back


@njit(cache=True, nogil=True, error_model="numpy")
def _lazy_batches(csr, Y, sw, order, state, hp, codes, work, tables):
    """The lazy epoch for any batch size and K, of momentum SGD or of AdaGrad and
    RMSprop: the step of a coordinate the batch touches holds -(its slot + 1),
    touched[slot] = j and Gs[slot * K : (slot + 1) * K] is its gradient. Returns the loss
    sum and the final step (the records are brought up to it as they are copied back).

    At its first touch in a batch, a coordinate takes the gradient-free steps it missed:
    momentum SGD's ``A^k`` (``_catch_up``), RMSprop's decay ``beta_2**k`` of its
    accumulator (AdaGrad's is unchanged). AdaGrad and RMSprop have no penalty on the
    weights here (``uses_lazy_update``), so an untouched coordinate's weight stays as
    it is; the records hold a coordinate's K weights and K accumulators."""
    data, indices, indptr = csr
    R, Ri, S, touched, Gs = work
    T, lo, hi = tables
    n = order.shape[0]
    W = state[0]
    V = state[1]
    K, cols = W.shape
    d = cols - 1
    loss = codes[P.LOSS]
    batch = codes[P.BATCH_SIZE]
    t = codes[P.T_START]
    code = codes[P.OPTIMIZER]
    nesterov = codes[P.NESTEROV] != 0
    fit_intercept = codes[P.FIT_INTERCEPT] != 0
    momentum = code == SGD
    rms = not momentum and code != ADAGRAD
    eta, mu, l2, b2 = hp[P.ETA0], hp[P.MOMENTUM], hp[P.L2], hp[P.BETA_2]
    s = np.empty(N_SCALARS, dtype=state.dtype)  # the step's scalars (momentum: constant)
    s[S_MU] = mu
    s[S_ETA] = eta
    SI = S * R.itemsize // 8  # a record's size in int64 entries
    LI = 2 * K * R.itemsize // 8  # the step's offset in it
    ycols = Y.shape[1]
    Yflat = Y.reshape(Y.size)
    Gi = np.zeros(K, dtype=W.dtype)
    p = np.empty((1, K), dtype=state.dtype)  # the row's outputs, as loss_and_grad takes them
    total = 0.0
    for steps, start in enumerate(range(0, n, batch), 1):
        stop = min(start + batch, n)
        n_touched = 0
        for ii in range(start, stop):
            # the records of the row SPARSE_PREFETCH_NEAR ahead: one per non-zero of this row
            _prefetch_ahead(indices, indptr, data, order, n, ii, Yflat, ycols, sw)
            pa = 0
            pb = 0
            if ii + _tuning.SPARSE_PREFETCH_NEAR < n:
                pa = indptr[order[ii + _tuning.SPARSE_PREFETCH_NEAR]]
                pb = indptr[order[ii + _tuning.SPARSE_PREFETCH_NEAR] + 1]
            i = order[ii]
            lo_q = indptr[i]
            hi_q = indptr[i + 1]
            for q in range(lo_q, hi_q):
                if pa < pb:
                    _prefetch(R, indices[pa] * S)
                    pa += 1
                j = indices[q]
                lj = Ri[j * SI + LI]
                if lj >= 0:  # first touched in this batch: the steps it missed, then a slot
                    if momentum:
                        _catch_up(R, j * S, K, t - lj, lo, hi)
                    elif rms and t > lj:
                        decay = b2 ** (t - lj)
                        for kk in range(K):
                            R[j * S + K + kk] *= decay
                    touched[n_touched] = j
                    for kk in range(K):
                        Gs[n_touched * K + kk] = 0.0
                    n_touched += 1
                    Ri[j * SI + LI] = -n_touched
            while pa < pb:
                _prefetch(R, indices[pa] * S)
                pa += 1
            for kk in range(K):
                acc = W[kk, d]
                for q in range(lo_q, hi_q):
                    acc += R[indices[q] * S + kk] * data[q]
                p[0, kk] = acc
            wi = sw[i]
            total += wi * loss_and_grad(loss, p, 0, Y, i)
            for kk in range(K):
                c = wi * p[0, kk]
                for q in range(lo_q, hi_q):
                    Gs[(-Ri[indices[q] * SI + LI] - 1) * K + kk] += c * data[q]
                Gi[kk] += c
        t += 1
        inv_b = 1.0 / (stop - start)
        if momentum:
            for q in range(n_touched):
                j = touched[q]
                o = j * S
                for kk in range(K):
                    _update_rec(R, o + kk, K, Gs[q * K + kk] * inv_b + l2 * R[o + kk], mu, eta, nesterov)
                Ri[j * SI + LI] = t
            for kk in range(K):
                if fit_intercept:
                    _update_intercept(W, V, kk, Gi[kk] * inv_b, s, nesterov)
                Gi[kk] = 0.0
            if steps % T == 0:
                _sync(R, Ri, S, SI, LI, K, d, t, lo, hi)
        else:
            _scalars(s, t, hp, codes)
            eta_t = s[S_ETA]
            eps = s[S_EPS]
            b2s = s[S_B2]
            for q in range(n_touched):
                j = touched[q]
                o = j * S
                for kk in range(K):
                    g = Gs[q * K + kk] * inv_b
                    if rms:
                        v = b2s * R[o + K + kk] + (1 - b2s) * (g * g)
                    else:
                        v = R[o + K + kk] + g * g
                    R[o + K + kk] = v
                    R[o + kk] = R[o + kk] - (eta_t * g) / (np.sqrt(v) + eps)
                Ri[j * SI + LI] = t
            for kk in range(K):
                if fit_intercept:
                    _adaptive_coord(state, kk, d, Gi[kk] * inv_b, code, s, s[S_ZERO])
                Gi[kk] = 0.0
    return total, t  # the records are brought up to t as they are copied back


@njit(cache=True, nogil=True, error_model="numpy")
def _lazy_epoch(csr, Y, sw, order, state, hp, codes, work, sync_steps):
    """The lazy epoch: ``state`` copied into the records, the epoch's steps
    (``_lazy_sgd1`` or ``_lazy_batches``), the last catch-up fused with copying the
    records back. ``csr`` is ``(data, indices, indptr)``; ``work`` is ``(R, Ri, S,
    touched, Gs)``: the records (R in the state's dtype, Ri the same buffer as int64,
    S a record's size in R's entries), the touched coordinates of a batch and their
    compact gradient; ``tables`` (built here) is ``(T, lo, hi)``: the full catch-up
    interval and the power tables of momentum SGD's gradient-free step (for AdaGrad and
    RMSprop, ``T`` alone is used: none)."""
    R, Ri, S, touched, Gs = work
    n = order.shape[0]
    K = state.shape[1]
    d = state.shape[2] - 1
    batch = codes[P.BATCH_SIZE]
    t = codes[P.T_START]
    momentum = codes[P.OPTIMIZER] == SGD
    rms = not momentum and codes[P.OPTIMIZER] != ADAGRAD
    n_steps = (n + batch - 1) // batch
    T = min(n_steps, sync_steps if sync_steps > 0 else max(_tuning.SYNC_MIN_STEPS, d))
    lo, hi = _power_tables(T if momentum else 0, hp[P.ETA0], hp[P.MOMENTUM], hp[P.L2], codes[P.NESTEROV] != 0)
    SI = S * R.itemsize // 8  # a record's size in int64 entries
    LI = 2 * K * R.itemsize // 8
    flat = state.reshape(state.size)  # W[k, j] = flat[k * cols + j], V[k, j] = flat[(K + k) * cols + j]
    cols = np.uint64(d + 1)
    uK = np.uint64(K)
    uS = np.uint64(S)
    uSI = np.uint64(SI)
    uLI = np.uint64(LI)
    for j in range(np.uint64(d)):  # state -> records
        for kk in range(uK):
            R[j * uS + kk] = flat[kk * cols + j]
            R[j * uS + uK + kk] = flat[(uK + kk) * cols + j]
        Ri[j * uSI + uLI] = t
    tables = (T, lo, hi)
    if batch == 1 and K == 1 and momentum:
        total, t_end = _lazy_sgd1(csr, Y, sw, order, state, hp, codes, work, tables)
    else:
        total, t_end = _lazy_batches(csr, Y, sw, order, state, hp, codes, work, tables)
    lo1 = lo.reshape(lo.size)  # A^k's four entries at 4 k
    hi1 = hi.reshape(hi.size)
    u1 = np.uint64(1)
    u2 = np.uint64(2)
    u3 = np.uint64(3)
    u4 = np.uint64(4)
    b2 = hp[P.BETA_2]
    for j in range(np.uint64(d)):  # the final catch-up, and records -> state
        o = j * uS
        k = t_end - Ri[j * uSI + uLI]
        if k > 0 and momentum:
            ml = np.uint64(k & LO_MASK) * u4
            mh = np.uint64(k >> _tuning.LO_BITS) * u4
            for kk in range(uK):
                w = R[o + kk]
                v = R[o + uK + kk]
                w1 = lo1[ml] * w + lo1[ml + u1] * v
                v1 = lo1[ml + u2] * w + lo1[ml + u3] * v
                R[o + kk] = hi1[mh] * w1 + hi1[mh + u1] * v1
                R[o + uK + kk] = hi1[mh + u2] * w1 + hi1[mh + u3] * v1
        elif k > 0 and rms:
            decay = b2**k
            for kk in range(uK):
                R[o + uK + kk] *= decay
        for kk in range(uK):
            flat[kk * cols + j] = R[o + kk]
            flat[(uK + kk) * cols + j] = R[o + uK + kk]
    return total


@njit(cache=True, nogil=True, error_model="numpy")
def _dense_epoch(data, indices, indptr, Y, sw, order, state, hp, codes):
    """The dense step (O(K d) per step): where ``uses_lazy_update`` is False, or
    lazy=False. The batch's gradient is summed from its CSR rows into G (K, d + 1),
    and the step is the dense kernels' ``_step`` (every update rule, schedule, penalty
    and averaging)."""
    n = order.shape[0]
    W = state[0]
    K, cols = W.shape
    d = cols - 1
    loss = codes[P.LOSS]
    batch = codes[P.BATCH_SIZE]
    t = codes[P.T_START]
    s = np.empty(N_SCALARS, dtype=data.dtype)  # the step's scalars
    G = np.zeros((K, cols), dtype=data.dtype)  # the batch's gradient
    p = np.empty((1, K), dtype=data.dtype)  # the row's outputs, as loss_and_grad takes them
    ycols = Y.shape[1]
    Yflat = Y.reshape(Y.size)
    total = 0.0
    for start in range(0, n, batch):
        stop = min(start + batch, n)
        for ii in range(start, stop):
            _prefetch_ahead(indices, indptr, data, order, n, ii, Yflat, ycols, sw)
            i = order[ii]
            lo = indptr[i]
            hi = indptr[i + 1]
            for kk in range(K):
                acc = W[kk, d]
                for q in range(lo, hi):
                    acc += W[kk, indices[q]] * data[q]
                p[0, kk] = acc
            wi = sw[i]
            total += wi * loss_and_grad(loss, p, 0, Y, i)
            for kk in range(K):
                c = wi * p[0, kk]
                for q in range(lo, hi):
                    G[kk, indices[q]] += c * data[q]
                G[kk, d] += c
        t += 1
        _step(state, G, stop - start, t, hp, codes, s)
    return total


@reports_damaged_cache
def epoch(data, indices, indptr, Y, sw, order, state, hp, codes, lazy=True, sync_steps=0):
    """One epoch in place; returns the sum of ``sw_i * loss_i``. See
    ``fastgd._numpy.sparse.epoch`` for the contract and the module docstring for the
    lazy update; ``lazy=False`` takes the dense O(K d) step at every step, and
    ``sync_steps > 0`` sets the interval ``T`` of the full catch-ups (for tests)."""
    # (read-only views: one compiled signature whether the caller's arrays are writable or not)
    data, indices, indptr, Y, sw, order, hp, codes = read_only(data, indices, indptr, Y, sw, order, hp, codes)
    check_sparse_epoch(data, indices, indptr, Y, sw, order, state, hp, codes, "numba", _labels_in_range)
    Y = np.ascontiguousarray(Y)  # read through a flat view for prefetching
    if not (lazy and uses_lazy_update(hp, codes)):
        return _dense_epoch(data, indices, indptr, Y, sw, order, state, hp, codes)
    n = order.shape[0]
    if n == 0:
        return 0.0
    K = state.shape[1]
    d = state.shape[2] - 1
    codes = codes.copy()
    codes[P.BATCH_SIZE] = min(int(codes[P.BATCH_SIZE]), n)
    (codes,) = read_only(codes)
    m = max(d, 1)
    S = record_size(K, state.itemsize)
    buf = work_buffer("records", m * S * state.itemsize)
    touched = work_buffer("touched", m * 8).view(np.int64)
    Gs = work_buffer("slots", m * K * state.itemsize).view(state.dtype)
    work = (buf.view(state.dtype), buf.view(np.int64), S, touched, Gs)
    return _lazy_epoch((data, indices, indptr), Y, sw, order, state, hp, codes, work, int(sync_steps))
