# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
# cython: initializedcheck=False, nonecheck=False, infer_types=False
"""Cython kernels for sparse (CSR) input, with the lazy O(nnz) momentum update.

The same algorithm and lazy update as ``fastgd._numba.sparse`` (see its docstring for
the math): coordinates a batch does not touch are brought up to date when next read,
by tabulated powers of the 2x2 gradient-free step; every coordinate is brought up to
date every ``T`` steps and at the end of the epoch. AdaGrad and RMSprop without a
penalty step lazily too (``_lazy_adaptive_run``). The dense step (O(K d) per step) is
taken wherever ``fastgd._optimizers.uses_lazy_update`` says no exact lazy form exists
(an L1 part, momentum SGD with a time-varying step, Adam, the adaptive rules with L2,
averaging), and with ``lazy=False``.
One thread.

Every array's dtype and contiguity is checked by Cython when the call starts, and
``epoch`` checks shapes, codes, the CSR structure (indices in ``[0, d)``, ``indptr``
from 0, non-decreasing, ending at nnz) and the row order before it enters the loops
(``fastgd._checks.check_sparse_epoch``, the checks every backend runs).

The tuning constants (SYNC_MIN_STEPS, the prefetch distances, LO_BITS, the cache line)
are defined in ``fastgd._tuning``, shared with the Numba kernels: LO_BITS is compiled in
as a C constant (``_tuning.pxi``), the others are read when the module is imported.
"""

from cython cimport floating
from libc.math cimport exp, log, log1p, pow, sqrt
from libc.stdint cimport int64_t
from libc.string cimport memcpy

import numpy as np

from .. import _params as P
from .. import _tuning
from .._schedules import CONSTANT as _CONSTANT, INVSCALING as _INVSCALING, OPTIMAL as _OPTIMAL
from .._optimizers import ADAGRAD as _ADAGRAD, ADAM as _ADAM, RMSPROP as _RMSPROP, SGD as _SGD
from .._checks import check_sparse_epoch
from .._optimizers import uses_lazy_update
from .._sparse import record_size, work_buffer

cdef extern from *:
    """
    #if defined(__GNUC__) || defined(__clang__)
    #define FASTGD_SPARSE_PREFETCH(p) __builtin_prefetch((const void *)(p))
    #else
    #define FASTGD_SPARSE_PREFETCH(p) ((void)0)
    #endif
    """
    void FASTGD_SPARSE_PREFETCH(const void *p) noexcept nogil

include "_tuning.pxi"

# These are read from fastgd._tuning when the module is imported, into variables on
# purpose: with the cache line a compile-time constant, GCC 12 (-O3) dropped the
# prefetches of _prefetch_ahead (the rows ahead: indptr, entries, target, weight) from
# _lazy_batches and _dense_run (9 prefetch instructions left 2 in _lazy_batches), and
# the mini-batch epoch took 1.5x the time (200000 x 2^18 CSR, 50 non-zeros a row,
# batch 32: 300 ms against 200 ms).
cdef Py_ssize_t PREFETCH_AHEAD = _tuning.SPARSE_PREFETCH_AHEAD
cdef Py_ssize_t PREFETCH_NEAR = _tuning.SPARSE_PREFETCH_NEAR
cdef Py_ssize_t CACHE_LINE = _tuning.CACHE_LINE_BYTES
cdef Py_ssize_t SYNC_MIN_STEPS = _tuning.SYNC_MIN_STEPS

from .._losses import LOG as _LOG, MULTINOMIAL as _MULTINOMIAL, SQUARED as _SQUARED

include "_scalars.pxi"


def _matrix_powers(double a1, double b1, double c1, double e1, Py_ssize_t m):
    """``tab[k] = (a, b, c, e)`` with ``M^k = [[a, b], [c, e]]``, k = 0 .. m, for
    ``M = [[a1, b1], [c1, e1]]`` (float64)."""
    tab_np = np.empty((m + 1, 4))
    cdef double[:, ::1] tab = tab_np
    cdef double a, b, c, e
    cdef Py_ssize_t k
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
    return tab_np


def _powers(Py_ssize_t T, double eta, double mu, double l2, bint nesterov):
    """``tab[k] = (a, b, c, e)`` with ``A^k = [[a, b], [c, e]]``, k = 0 .. T (float64)."""
    if nesterov:
        return _matrix_powers(1.0 - eta * l2 * (1.0 + mu), -eta * mu * mu, l2, mu, T)
    return _matrix_powers(1.0 - eta * l2, -eta * mu, l2, mu, T)


# The lazy update keeps each feature coordinate's state in one record of the work buffer
# R (one cache line or less): the K weights, the K velocities and the step ``last`` at
# which they are up to date (an int64, read and written through memcpy), so a non-zero
# costs one random memory access instead of three (W[k, j], V[k, j] and last[j] live d
# entries apart in ``state``). ``state`` is copied into R when the epoch starts and back
# when it ends (O(K d), after the final catch-up).
# The powers of A come from two small tables: A^k = A^(k_hi 2^LO_BITS) A^(k_lo)
# (``fastgd._tuning.LO_BITS``), k_lo = k & LO_MASK.
cdef enum:
    LO_MASK = (1 << LO_BITS) - 1
# during a batch of one row, a touched coordinate's ``last`` holds MARK
cdef enum:
    MARK = -1


def _power_tables(Py_ssize_t T, double eta, double mu, double l2, bint nesterov):
    """``(lo, hi)``: ``lo[k] = A^k`` for k < 2^LO_BITS and ``hi[m] = A^(m 2^LO_BITS)`` for
    ``m 2^LO_BITS <= T``, each row ``(a, b, c, e)`` with ``A^k = [[a, b], [c, e]]``."""
    cdef Py_ssize_t B = 1 << LO_BITS
    lo = _powers(B, eta, mu, l2, nesterov)
    hi = _matrix_powers(lo[B, 0], lo[B, 1], lo[B, 2], lo[B, 3], T >> LO_BITS)
    return np.ascontiguousarray(lo[:B]), hi


cdef inline int64_t _last(const floating *rec, Py_ssize_t K) noexcept nogil:
    cdef int64_t v
    memcpy(&v, rec + 2 * K, sizeof(int64_t))
    return v


cdef inline void _set_last(floating *rec, Py_ssize_t K, int64_t v) noexcept nogil:
    memcpy(rec + 2 * K, &v, sizeof(int64_t))


cdef inline void _catch_up(floating *rec, Py_ssize_t K, int64_t k, const double *lo,
                           const double *hi) noexcept nogil:
    """Apply the ``k >= 0`` missed gradient-free steps to a coordinate's record: always
    both factors, without a branch (``lo[0]`` and ``hi[0]`` are the identity; whether k
    has a high part is unpredictable for a shuffled order). The eight table entries are
    read before the record is written (they could alias it, as far as the compiler
    knows), and the product of the two factors stays in registers."""
    cdef const double *m = lo + 4 * (k & LO_MASK)
    cdef const double *h = hi + 4 * (k >> LO_BITS)
    cdef double a = m[0], b = m[1], c = m[2], e = m[3]
    cdef double a2 = h[0], b2 = h[1], c2 = h[2], e2 = h[3], w, v, w1, v1
    cdef Py_ssize_t kk
    for kk in range(K):
        w = rec[kk]
        v = rec[K + kk]
        w1 = a * w + b * v
        v1 = c * w + e * v
        rec[kk] = <floating> (a2 * w1 + b2 * v1)
        rec[K + kk] = <floating> (c2 * w1 + e2 * v1)


cdef void _sync(floating *R, Py_ssize_t S, Py_ssize_t K, Py_ssize_t d, int64_t t,
                const double *lo, const double *hi) noexcept nogil:
    """Bring every feature coordinate up to step t."""
    cdef Py_ssize_t j
    cdef floating *rec
    cdef int64_t lj
    for j in range(d):
        rec = R + j * S
        lj = _last(rec, K)
        if t > lj:
            _catch_up(rec, K, t - lj, lo, hi)
            _set_last(rec, K, t)


cdef inline void _update(floating *W, floating *V, floating g, floating mu,
                         floating eta, bint nesterov, floating shrink) noexcept nogil:
    """The step of one coordinate (weight *W, velocity *V) from its full gradient g (L2
    included)."""
    cdef floating v = mu * V[0] + g
    cdef floating w
    V[0] = v
    if nesterov:
        w = W[0] - eta * (g + mu * v)
    else:
        w = W[0] - eta * v
    if shrink > 0:
        if w > shrink:
            w = w - shrink
        elif w < -shrink:
            w = w + shrink
        else:
            w = 0
    W[0] = w


cdef inline void _prefetch_row(const floating *data, const int64_t *indices,
                               const int64_t *indptr, Py_ssize_t i) noexcept nogil:
    """Ask for row i's values and column indices ahead of use."""
    cdef Py_ssize_t lo = indptr[i], hi = indptr[i + 1]
    cdef const char *x = <const char *> (data + lo)
    cdef const char *c = <const char *> (indices + lo)
    cdef Py_ssize_t off = 0, nx = (hi - lo) * sizeof(floating), nc = (hi - lo) * sizeof(int64_t)
    while off < nc:
        FASTGD_SPARSE_PREFETCH(c + off)
        if off < nx:
            FASTGD_SPARSE_PREFETCH(x + off)
        off += CACHE_LINE
    if hi > lo:  # the last line, when the row does not start on a line
        FASTGD_SPARSE_PREFETCH(c + nc - 1)
        FASTGD_SPARSE_PREFETCH(x + nx - 1)


cdef inline void _prefetch_ahead(const floating *data, const int64_t *indices,
                                 const int64_t *indptr, const int64_t *order, Py_ssize_t n,
                                 Py_ssize_t ii, const floating *R, Py_ssize_t S,
                                 const floating *Y, Py_ssize_t ycols,
                                 const floating *sw) noexcept nogil:
    """Prefetch for the row at position ii of the order: later rows' entries, target and
    weight, and nearer rows' coordinate records (shuffled SGD waits on memory for each
    otherwise)."""
    cdef Py_ssize_t i, q
    if ii + 2 * PREFETCH_AHEAD < n:
        FASTGD_SPARSE_PREFETCH(&indptr[order[ii + 2 * PREFETCH_AHEAD]])
    if ii + PREFETCH_AHEAD < n:
        i = order[ii + PREFETCH_AHEAD]
        _prefetch_row(data, indices, indptr, i)
        FASTGD_SPARSE_PREFETCH(Y + i * ycols)
        FASTGD_SPARSE_PREFETCH(sw + i)
    if R != NULL and ii + PREFETCH_NEAR < n:
        i = order[ii + PREFETCH_NEAR]
        for q in range(indptr[i], indptr[i + 1]):
            FASTGD_SPARSE_PREFETCH(R + indices[q] * S)


cdef double _lazy_sgd1(const floating *data, const int64_t *indices, const int64_t *indptr,
                       const floating *Y, Py_ssize_t ycols, const floating *sw,
                       const int64_t *order, Py_ssize_t n, floating *W, floating *V, Py_ssize_t d, floating *R, Py_ssize_t S,
                       int64_t *touched, floating *Gs, Py_ssize_t T, const double *lo,
                       const double *hi, int64_t t, int64_t loss, bint nesterov,
                       bint fit_intercept, floating eta, floating mu, floating l2,
                       int64_t *t_end) noexcept nogil:
    """The lazy epoch for batches of one row and one output (K = 1): two passes over the
    row, the catch-up fused with the product and the gradient with the step. A row with
    a repeated column (non-canonical CSR) sums each coordinate's gradient in Gs first.
    Returns the loss sum and sets *t_end to the final step (records are caught up to it
    as they are copied back)."""
    cdef double total = 0.0
    cdef Py_ssize_t ii, i, q, s, lo_q, hi_q, nt, steps = 0
    cdef int64_t lj, j
    cdef floating *rec
    cdef floating acc, c, g, v, wi, wb = W[d], vb = V[d]
    cdef bint dup
    cdef Py_ssize_t pa = 0, pb = 0, ca = 0, cb = 0
    for ii in range(n):
        # the records of the row PREFETCH_NEAR ahead are asked for one per non-zero of
        # this row's first pass (a burst of them would fill the miss buffers)
        # likewise the entries of the row PREFETCH_AHEAD ahead, a line of each array per
        # non-zero of the second pass
        if ii + 2 * PREFETCH_AHEAD < n:
            FASTGD_SPARSE_PREFETCH(&indptr[order[ii + 2 * PREFETCH_AHEAD]])
        ca = cb = 0
        if ii + PREFETCH_AHEAD < n:
            i = order[ii + PREFETCH_AHEAD]
            ca = indptr[i]
            cb = indptr[i + 1]
            FASTGD_SPARSE_PREFETCH(Y + i * ycols)
            FASTGD_SPARSE_PREFETCH(sw + i)
            if cb > ca:
                FASTGD_SPARSE_PREFETCH(indices + cb - 1)
                FASTGD_SPARSE_PREFETCH(data + cb - 1)
        if ii + PREFETCH_NEAR < n:
            pa = indptr[order[ii + PREFETCH_NEAR]]
            pb = indptr[order[ii + PREFETCH_NEAR] + 1]
        i = order[ii]
        lo_q = indptr[i]
        hi_q = indptr[i + 1]
        dup = False
        acc = wb
        for q in range(lo_q, hi_q):
            if pa < pb:
                FASTGD_SPARSE_PREFETCH(R + indices[pa] * S)
                pa += 1
            rec = R + indices[q] * S
            lj = _last(rec, 1)
            if lj != MARK:
                _catch_up(rec, 1, t - lj, lo, hi)
                _set_last(rec, 1, MARK)
            else:
                dup = True
            acc = acc + rec[0] * data[q]
        while pa < pb:
            FASTGD_SPARSE_PREFETCH(R + indices[pa] * S)
            pa += 1
        wi = sw[i]
        total += wi * _loss_grad(loss, &acc, Y + i * ycols, 1)
        c = wi * acc
        t += 1
        if not dup:
            for q in range(lo_q, hi_q):
                if ca < cb:
                    FASTGD_SPARSE_PREFETCH(indices + ca)
                    FASTGD_SPARSE_PREFETCH(data + ca)
                    ca += CACHE_LINE // sizeof(int64_t)
                rec = R + indices[q] * S
                g = c * data[q] + l2 * rec[0]
                v = mu * rec[1] + g
                rec[1] = v
                if nesterov:
                    rec[0] = rec[0] - eta * (g + mu * v)
                else:
                    rec[0] = rec[0] - eta * v
                _set_last(rec, 1, t)
        else:
            nt = 0
            for q in range(lo_q, hi_q):
                j = indices[q]
                rec = R + j * S
                lj = _last(rec, 1)
                if lj == MARK:
                    touched[nt] = j
                    Gs[nt] = c * data[q]
                    nt += 1
                    _set_last(rec, 1, -1 - nt)
                else:
                    Gs[-2 - lj] += c * data[q]
            for s in range(nt):
                rec = R + touched[s] * S
                _update(&rec[0], &rec[1], Gs[s] + l2 * rec[0], mu, eta, nesterov, 0)
                _set_last(rec, 1, t)
        while ca < cb:
            FASTGD_SPARSE_PREFETCH(indices + ca)
            FASTGD_SPARSE_PREFETCH(data + ca)
            ca += CACHE_LINE // sizeof(int64_t)
        if fit_intercept:
            v = mu * vb + c
            vb = v
            if nesterov:
                wb = wb - eta * (c + mu * v)
            else:
                wb = wb - eta * v
        steps += 1
        if steps % T == 0:
            _sync(R, S, 1, d, t, lo, hi)
    W[d] = wb
    V[d] = vb
    t_end[0] = t  # the records are brought up to t as they are copied back
    return total


cdef double _lazy_batches(const floating *data, const int64_t *indices, const int64_t *indptr,
                          const floating *Y, Py_ssize_t ycols, const floating *sw,
                          const int64_t *order, Py_ssize_t n, Py_ssize_t batch, floating *W,
                          floating *V, Py_ssize_t K, Py_ssize_t d, floating *R, Py_ssize_t S,
                          int64_t *touched, floating *Gs, floating *p, floating *Gi,
                          Py_ssize_t T, const double *lo, const double *hi, int64_t t,
                          int64_t loss, bint nesterov, bint fit_intercept, floating eta,
                          floating mu, floating l2, int64_t *t_end) noexcept nogil:
    """The lazy epoch for any batch size and K: ``last`` of a coordinate the batch touches
    holds -(its slot + 1), touched[slot] = j and Gs[slot * K : (slot + 1) * K] is its
    gradient. Returns the loss sum and sets *t_end to the final step (records are caught
    up to it as they are copied back)."""
    cdef double total = 0.0
    cdef Py_ssize_t start, stop, ii, i, q, kk, lo_q, hi_q, n_touched, cols = d + 1, steps = 0
    cdef Py_ssize_t pa, pb
    cdef int64_t lj, j
    cdef floating *rec
    cdef floating acc, c, wi, inv_b
    start = 0
    while start < n:
        stop = start + batch
        if stop > n:
            stop = n
        n_touched = 0
        for ii in range(start, stop):
            # the records of the row PREFETCH_NEAR ahead: one per non-zero of this row
            _prefetch_ahead(data, indices, indptr, order, n, ii, NULL, S, Y, ycols, sw)
            pa = pb = 0
            if ii + PREFETCH_NEAR < n:
                pa = indptr[order[ii + PREFETCH_NEAR]]
                pb = indptr[order[ii + PREFETCH_NEAR] + 1]
            i = order[ii]
            lo_q = indptr[i]
            hi_q = indptr[i + 1]
            for q in range(lo_q, hi_q):
                if pa < pb:
                    FASTGD_SPARSE_PREFETCH(R + indices[pa] * S)
                    pa += 1
                j = indices[q]
                rec = R + j * S
                lj = _last(rec, K)
                if lj >= 0:
                    if t > lj:
                        _catch_up(rec, K, t - lj, lo, hi)
                    touched[n_touched] = j
                    for kk in range(K):
                        Gs[n_touched * K + kk] = 0
                    n_touched += 1
                    _set_last(rec, K, -n_touched)
            while pa < pb:
                FASTGD_SPARSE_PREFETCH(R + indices[pa] * S)
                pa += 1
            for kk in range(K):
                acc = W[kk * cols + d]
                for q in range(lo_q, hi_q):
                    acc = acc + R[indices[q] * S + kk] * data[q]
                p[kk] = acc
            wi = sw[i]
            total += wi * _loss_grad(loss, p, Y + i * ycols, K)
            for kk in range(K):
                c = wi * p[kk]
                for q in range(lo_q, hi_q):
                    Gs[(-_last(R + indices[q] * S, K) - 1) * K + kk] += c * data[q]
                Gi[kk] += c
        t += 1
        steps += 1
        inv_b = <floating> (1.0 / (stop - start))
        for q in range(n_touched):
            rec = R + touched[q] * S
            for kk in range(K):
                _update(&rec[kk], &rec[K + kk], Gs[q * K + kk] * inv_b + l2 * rec[kk], mu, eta,
                        nesterov, 0)
            _set_last(rec, K, t)
        for kk in range(K):
            if fit_intercept:
                _update(&W[kk * cols + d], &V[kk * cols + d], Gi[kk] * inv_b, mu, eta, nesterov, 0)
            Gi[kk] = 0
        if steps % T == 0:
            _sync(R, S, K, d, t, lo, hi)
        start = stop
    t_end[0] = t  # the records are brought up to t as they are copied back
    return total


# (the check is a function of its own, called with the memoryviews: the entry point
# keeps its size, and with it the C compiler's inlining of the loops into it)
def _check_epoch(data, indices, indptr, Y, sw, order, state, hp, codes):
    """``fastgd._checks.check_sparse_epoch`` on the typed memoryviews, as arrays."""
    check_sparse_epoch(np.asarray(data), np.asarray(indices), np.asarray(indptr), np.asarray(Y),
                       np.asarray(sw), np.asarray(order), np.asarray(state), np.asarray(hp),
                       np.asarray(codes), "cython")


def epoch(const floating[::1] data, const int64_t[::1] indices, const int64_t[::1] indptr,
          const floating[:, ::1] Y, const floating[::1] sw, const int64_t[::1] order,
          floating[:, :, ::1] state, const double[::1] hp, const int64_t[::1] codes,
          bint lazy=True, Py_ssize_t sync_steps=0):
    """One epoch in place; returns the sum of ``sw_i * loss_i``. See
    ``fastgd._numpy.sparse.epoch`` for the contract and ``fastgd._numba.sparse`` for the
    lazy update; ``lazy=False`` takes the dense O(K d) step at every step, and
    ``sync_steps > 0`` sets the interval ``T`` of the full catch-ups (for tests)."""
    _check_epoch(data, indices, indptr, Y, sw, order, state, hp, codes)
    cdef Py_ssize_t n = order.shape[0], K = state.shape[1], cols = state.shape[2], d = cols - 1
    cdef int64_t loss = codes[P.LOSS]
    cdef int64_t schedule = codes[P.SCHEDULE]
    cdef bint nesterov = codes[P.NESTEROV] != 0
    cdef bint fit_intercept = codes[P.FIT_INTERCEPT] != 0
    cdef Py_ssize_t batch = min(codes[P.BATCH_SIZE], max(n, 1))
    cdef int64_t t = codes[P.T_START]
    cdef floating mu = <floating> hp[P_MOMENTUM]
    cdef floating l2 = <floating> hp[P_L2]
    cdef double l1 = hp[P_L1]
    if not uses_lazy_update(np.asarray(hp), np.asarray(codes)):
        lazy = False
    dtype = np.float32 if floating is float else np.float64
    cdef floating[::1] Gi = np.zeros(K, dtype=dtype)  # the intercept's gradient
    cdef floating[::1] p = np.empty(K, dtype=dtype)
    cdef Py_ssize_t n_steps = (n + batch - 1) // batch
    cdef Py_ssize_t T, S
    cdef floating *R
    cdef int64_t[::1] touched
    cdef floating[::1] Gs
    cdef const double[:, ::1] lo_t
    cdef const double[:, ::1] hi_t
    if lazy and codes[P.OPTIMIZER] != SGD:  # AdaGrad, RMSprop (see uses_lazy_update)
        if n == 0:
            return 0.0
        return _lazy_adaptive_run(data, indices, indptr, Y, sw, order, state, hp, n, batch, K, d,
                                  t, loss, schedule, fit_intercept, codes[P.OPTIMIZER], p, Gi, dtype)
    if lazy:
        if n == 0:
            return 0.0
        T = min(n_steps, sync_steps if sync_steps > 0 else max(SYNC_MIN_STEPS, d))
        lo_t, hi_t = _power_tables(T, hp[P_ETA0], hp[P_MOMENTUM], hp[P_L2], nesterov)
        S = record_size(K, sizeof(floating))
        # the records, 64-byte aligned; touched and Gs hold at most one slot per coordinate
        buf = work_buffer("records", max(d, 1) * S * sizeof(floating))
        R = <floating *> <size_t> buf.ctypes.data
        touched = work_buffer("touched", max(d, 1) * 8).view(np.int64)
        Gs = work_buffer("slots", max(d, 1) * K * sizeof(floating)).view(dtype)
        return _lazy_run(data, indices, indptr, Y, sw, order, state, n, batch, K, d, R, S,
                         touched, Gs, p, Gi, T, lo_t, hi_t, t, loss, nesterov,
                         fit_intercept, <floating> hp[P_ETA0], mu, l2)
    return _dense_run(data, indices, indptr, Y, sw, order, state, hp, n, batch, K, d, t, loss,
                      schedule, nesterov, fit_intercept, mu, l2, l1, codes[P.OPTIMIZER],
                      codes[P.AVERAGE_START])


cdef double _lazy_adaptive_run(const floating[::1] data, const int64_t[::1] indices,
                               const int64_t[::1] indptr, const floating[:, ::1] Y,
                               const floating[::1] sw, const int64_t[::1] order,
                               floating[:, :, ::1] state, const double[::1] hp, Py_ssize_t n,
                               Py_ssize_t batch, Py_ssize_t K, Py_ssize_t d, int64_t t,
                               int64_t loss, int64_t schedule, bint fit_intercept,
                               int64_t optimizer, floating[::1] p, floating[::1] Gi, dtype):
    """AdaGrad and RMSprop without a penalty on the weights and without averaging: only
    the coordinates a batch touches move (O(nnz) per step); RMSprop's ``s_j`` takes the
    ``beta_2**k`` of the ``k`` steps it missed when next touched, and at the end of the
    epoch. The records are ``_lazy_batches``' (K weights, K accumulators, the step, which
    holds -(place + 1) in the batch's compact gradient ``Gs`` while a batch touches the
    coordinate); see ``_lazy_adaptive_epoch`` in ``fastgd._numba.sparse``."""
    cdef Py_ssize_t m = max(d, 1), cols = d + 1
    cdef Py_ssize_t S = record_size(K, sizeof(floating))
    buf = work_buffer("records", m * S * sizeof(floating))
    cdef floating *R = <floating *> <size_t> buf.ctypes.data
    cdef int64_t[::1] touched = work_buffer("touched", m * 8).view(np.int64)
    cdef floating[::1] Gs = work_buffer("slots", m * K * sizeof(floating)).view(dtype)
    cdef floating *W = &state[0, 0, 0]
    cdef floating *S1 = &state[1, 0, 0]
    cdef floating *rec
    cdef bint rms = optimizer != ADAGRAD
    cdef double b2 = hp[P_BETA_2], eta_d
    cdef double total = 0.0
    cdef Py_ssize_t start, stop, ii, i, q, kk, j, lo_q, hi_q, n_touched
    cdef int64_t lj, place
    cdef floating acc, c, wi, inv_b, decay
    cdef Rule r
    with nogil:
        for j in range(d):  # state -> records
            rec = R + j * S
            for kk in range(K):
                rec[kk] = W[kk * cols + j]
                rec[K + kk] = S1[kk * cols + j]
            _set_last(rec, K, t)
        start = 0
        while start < n:
            stop = start + batch
            if stop > n:
                stop = n
            n_touched = 0
            for ii in range(start, stop):
                _prefetch_ahead(&data[0], &indices[0], &indptr[0], &order[0], n, ii, R, S,
                                &Y[0, 0], Y.shape[1], &sw[0])
                i = order[ii]
                lo_q = indptr[i]
                hi_q = indptr[i + 1]
                for q in range(lo_q, hi_q):
                    rec = R + indices[q] * S
                    lj = _last(rec, K)
                    if lj >= 0:  # first touched in this batch: the decay it missed, a place
                        if rms and t > lj:
                            decay = <floating> pow(b2, <double> (t - lj))
                            for kk in range(K):
                                rec[K + kk] *= decay
                        touched[n_touched] = indices[q]
                        for kk in range(K):
                            Gs[n_touched * K + kk] = 0
                        n_touched += 1
                        _set_last(rec, K, -n_touched)
                for kk in range(K):
                    acc = W[kk * cols + d]
                    for q in range(lo_q, hi_q):
                        acc = acc + R[indices[q] * S + kk] * data[q]
                    p[kk] = acc
                wi = sw[i]
                total += wi * _loss_grad(loss, &p[0], &Y[i, 0], K)
                for kk in range(K):
                    c = wi * p[kk]
                    for q in range(lo_q, hi_q):
                        Gs[(-_last(R + indices[q] * S, K) - 1) * K + kk] += c * data[q]
                    Gi[kk] += c
            t += 1
            inv_b = <floating> (1.0 / (stop - start))
            eta_d = _step_size(schedule, t, hp[P_ETA0], hp[P_POWER_T], hp[P_OPTIMAL_T0], hp[P_ALPHA])
            _set_rule(&r, optimizer, t, 0, eta_d, hp)
            for q in range(n_touched):
                rec = R + touched[q] * S
                for kk in range(K):
                    _adaptive_coord(&rec[kk], &rec[K + kk], &rec[K + kk], Gs[q * K + kk] * inv_b, &r,
                                    False)
                _set_last(rec, K, t)
            for kk in range(K):
                if fit_intercept:
                    _adaptive_coord(&W[kk * cols + d], &S1[kk * cols + d], &S1[kk * cols + d],
                                    Gi[kk] * inv_b, &r, False)
                Gi[kk] = 0
            start = stop
        for j in range(d):  # the final decay, and records -> state
            rec = R + j * S
            lj = _last(rec, K)
            if rms and lj < t:
                decay = <floating> pow(b2, <double> (t - lj))
                for kk in range(K):
                    rec[K + kk] *= decay
            for kk in range(K):
                W[kk * cols + j] = rec[kk]
                S1[kk * cols + j] = rec[K + kk]
    return total


cdef double _lazy_run(const floating[::1] data, const int64_t[::1] indices,
                      const int64_t[::1] indptr, const floating[:, ::1] Y,
                      const floating[::1] sw, const int64_t[::1] order,
                      floating[:, :, ::1] state, Py_ssize_t n, Py_ssize_t batch, Py_ssize_t K,
                      Py_ssize_t d, floating *R, Py_ssize_t S, int64_t[::1] touched,
                      floating[::1] Gs, floating[::1] p, floating[::1] Gi, Py_ssize_t T,
                      const double[:, ::1] lo, const double[:, ::1] hi, int64_t t,
                      int64_t loss, bint nesterov, bint fit_intercept, floating eta,
                      floating mu, floating l2):
    cdef floating *W = &state[0, 0, 0]
    cdef floating *V = &state[1, 0, 0]
    cdef floating *rec
    cdef Py_ssize_t j, kk, cols = d + 1
    cdef int64_t t_end = t, lj
    cdef double total
    with nogil:
        for j in range(d):  # state -> records
            rec = R + j * S
            for kk in range(K):
                rec[kk] = W[kk * cols + j]
                rec[K + kk] = V[kk * cols + j]
            _set_last(rec, K, t)
        if batch == 1 and K == 1:
            total = _lazy_sgd1(&data[0], &indices[0], &indptr[0], &Y[0, 0], Y.shape[1], &sw[0],
                               &order[0],
                               n, W, V, d, R, S, &touched[0], &Gs[0], T, &lo[0, 0], &hi[0, 0],
                               t, loss, nesterov, fit_intercept, eta, mu, l2, &t_end)
        else:
            total = _lazy_batches(&data[0], &indices[0], &indptr[0], &Y[0, 0], Y.shape[1],
                                  &sw[0], &order[0], n, batch, W, V, K, d, R, S, &touched[0],
                                  &Gs[0], &p[0], &Gi[0], T, &lo[0, 0], &hi[0, 0], t, loss,
                                  nesterov, fit_intercept, eta, mu, l2, &t_end)
        for j in range(d):  # the final catch-up, and records -> state
            rec = R + j * S
            lj = _last(rec, K)
            if t_end > lj:
                _catch_up(rec, K, t_end - lj, &lo[0, 0], &hi[0, 0])
            for kk in range(K):
                W[kk * cols + j] = rec[kk]
                V[kk * cols + j] = rec[K + kk]
    return total


cdef double _dense_run(const floating[::1] data, const int64_t[::1] indices,
                       const int64_t[::1] indptr, const floating[:, ::1] Y,
                       const floating[::1] sw, const int64_t[::1] order,
                       floating[:, :, ::1] state, const double[::1] hp, Py_ssize_t n,
                       Py_ssize_t batch, Py_ssize_t K, Py_ssize_t d, int64_t t, int64_t loss,
                       int64_t schedule, bint nesterov, bint fit_intercept, floating mu,
                       floating l2, double l1, int64_t optimizer, int64_t t_a):
    """The dense step (O(K d) per step): where ``uses_lazy_update`` is False, or
    lazy=False."""
    dtype = np.float32 if floating is float else np.float64
    cdef Py_ssize_t cols = d + 1
    cdef floating[:, ::1] G = np.zeros((K, cols), dtype=dtype)
    cdef floating[::1] Gi = np.zeros(K, dtype=dtype)
    cdef floating[::1] p = np.empty(K, dtype=dtype)
    cdef floating *W = &state[0, 0, 0]
    cdef floating *V = &state[1, 0, 0]  # (the velocity, or an adaptive rule's first slot)
    cdef floating *S2 = &state[2, 0, 0] if optimizer == ADAM else V  # (Adam's second)
    cdef floating *A = &state[state.shape[0] - 1, 0, 0]  # (the average, when t_a > 0)
    cdef double total = 0.0, eta_d
    cdef Py_ssize_t start, stop, ii, i, q, kk, j, lo, hi
    cdef floating acc, c, wi, g, inv_b, eta, shrink
    cdef Rule r
    with nogil:
        start = 0
        while start < n:
            stop = start + batch
            if stop > n:
                stop = n
            for ii in range(start, stop):
                _prefetch_ahead(&data[0], &indices[0], &indptr[0], &order[0], n, ii, NULL, 0,
                                &Y[0, 0], Y.shape[1], &sw[0])
                i = order[ii]
                lo = indptr[i]
                hi = indptr[i + 1]
                for kk in range(K):
                    acc = W[kk * cols + d]
                    for q in range(lo, hi):
                        acc = acc + W[kk * cols + indices[q]] * data[q]
                    p[kk] = acc
                wi = sw[i]
                total += wi * _loss_grad(loss, &p[0], &Y[i, 0], K)
                for kk in range(K):
                    c = wi * p[kk]
                    for q in range(lo, hi):
                        G[kk, indices[q]] += c * data[q]
                    Gi[kk] += c
            t += 1
            inv_b = <floating> (1.0 / (stop - start))
            eta_d = _step_size(schedule, t, hp[P_ETA0], hp[P_POWER_T], hp[P_OPTIMAL_T0], hp[P_ALPHA])
            eta = <floating> eta_d
            shrink = <floating> (eta_d * l1)
            if optimizer == SGD:
                for kk in range(K):
                    for j in range(d):
                        g = G[kk, j] * inv_b + l2 * W[kk * cols + j]
                        G[kk, j] = 0
                        _update(&W[kk * cols + j], &V[kk * cols + j], g, mu, eta, nesterov, shrink)
                for kk in range(K):
                    if fit_intercept:
                        _update(&W[kk * cols + d], &V[kk * cols + d], Gi[kk] * inv_b, mu, eta,
                                nesterov, 0)
                    Gi[kk] = 0
            else:
                _set_rule(&r, optimizer, t, t_a, eta_d, hp)
                for kk in range(K):
                    for j in range(d):
                        g = G[kk, j] * inv_b + l2 * W[kk * cols + j]
                        G[kk, j] = 0
                        _adaptive_coord(&W[kk * cols + j], &V[kk * cols + j], &S2[kk * cols + j], g,
                                        &r, l1 != 0.0)
                for kk in range(K):
                    if fit_intercept:
                        _adaptive_coord(&W[kk * cols + d], &V[kk * cols + d], &S2[kk * cols + d],
                                        Gi[kk] * inv_b, &r, False)
                    Gi[kk] = 0
            if t_a > 0:
                _set_rule(&r, optimizer, t, t_a, eta_d, hp)
                for kk in range(K):
                    _average(&W[kk * cols], &A[kk * cols], cols, r.avg)
            start = stop
    return total

