# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
# cython: initializedcheck=False, nonecheck=False, infer_types=False
"""Cython kernels for sparse (CSR) input, with the lazy O(nnz) momentum update.

The same algorithm and lazy update as ``fastgd._numba.sparse`` (see its docstring for
the math): coordinates a batch does not touch are brought up to date when next read,
by tabulated powers of the 2x2 gradient-free step; every coordinate is brought up to
date every ``T`` steps and at the end of the epoch. AdaGrad and RMSprop without a
penalty step lazily too (``_lazy_batches``). The dense step (O(K d) per step) is
taken wherever ``fastgd._optimizers.uses_lazy_update`` says no exact lazy form exists
(an L1 part, momentum SGD with a time-varying step, Adam, the adaptive rules with L2,
averaging), and with ``lazy=False``.
One thread.

``epoch`` checks dtypes, contiguity, shapes, codes, the CSR structure (indices in
``[0, d)``, ``indptr`` from 0, non-decreasing, ending at nnz) and the row order before
it enters the loops (``fastgd._checks.check_sparse_epoch``, the checks every backend
runs); Cython checks each array's dtype and contiguity again as it takes a typed view
of it. The loops take the epoch's arrays and scratch in structs (``Rows``, ``Lazy``,
``Codes``).

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

# FASTGD_PREFETCH, in a header next to this file (setup.py: include_dirs and depends)
cdef extern from "fastgd_helpers.h" nogil:
    void FASTGD_PREFETCH(const void *p) noexcept

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


cdef inline void _mul2(const double *a, const double *b, double *out) noexcept:
    """``out = a b`` for 2x2 matrices stored as rows ``(a, b, c, e)`` of ``[[a, b], [c, e]]``."""
    out[0] = a[0] * b[0] + a[1] * b[2]
    out[1] = a[0] * b[1] + a[1] * b[3]
    out[2] = a[2] * b[0] + a[3] * b[2]
    out[3] = a[2] * b[1] + a[3] * b[3]


def _matrix_powers(m, Py_ssize_t count):
    """``tab[k] = M^k``, k = 0 .. count, for the 2x2 matrix ``M`` given as its row
    ``m = (a, b, c, e)`` (each row of the table likewise; float64)."""
    tab_np = np.empty((count + 1, 4))
    cdef double[:, ::1] tab = tab_np
    cdef double M[4]
    cdef Py_ssize_t k
    for k in range(4):
        M[k] = m[k]
    tab_np[0] = (1.0, 0.0, 0.0, 1.0)
    for k in range(1, count + 1):
        _mul2(M, &tab[k - 1, 0], &tab[k, 0])
    return tab_np


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
    ``m 2^LO_BITS <= T``, each row ``(a, b, c, e)`` with ``A^k = [[a, b], [c, e]]``, for
    A the gradient-free step of (weight, velocity)."""
    cdef Py_ssize_t B = 1 << LO_BITS
    if nesterov:
        A = (1.0 - eta * l2 * (1.0 + mu), -eta * mu * mu, l2, mu)
    else:
        A = (1.0 - eta * l2, -eta * mu, l2, mu)
    lo = _matrix_powers(A, B)
    hi = _matrix_powers(lo[B], T >> LO_BITS)
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


# The epoch's rows: the CSR arrays, targets, weights and order (void where in the data's
# dtype: each loop casts to its ``floating``).
cdef struct Rows:
    const void *data
    const int64_t *indices
    const int64_t *indptr
    const void *Y          # (n, ycols)
    const void *sw
    const int64_t *order   # (n,)
    Py_ssize_t n, ycols
    Py_ssize_t K, d        # outputs, features


# The lazy update's work: the coordinate records, the batch's touched coordinates and
# their gradients, and how a record is brought up to date.
cdef struct Lazy:
    void *R                # d records of S entries of the data's dtype
    Py_ssize_t S
    int64_t *touched       # (d,) the batch's touched coordinates
    void *Gs               # (d, K) their gradients
    Py_ssize_t T           # momentum SGD: every coordinate is brought up to date every T steps
    const double *lo       # momentum SGD: the power tables (``_power_tables``); NULL otherwise
    const double *hi
    double b2              # the adaptive rules: each missed step scales the accumulators by b2


cdef inline void _bring_up(floating *rec, const Lazy *lz, Py_ssize_t K, int64_t k) noexcept nogil:
    """Apply the ``k >= 0`` steps a coordinate's record missed: momentum SGD's
    gradient-free steps (``_catch_up``), or the adaptive rules' decay of the
    accumulators (RMSprop's ``beta_2**k``; AdaGrad's b2 is 1: nothing)."""
    cdef Py_ssize_t kk
    cdef floating decay
    if lz.lo != NULL:
        _catch_up(rec, K, k, lz.lo, lz.hi)
    elif lz.b2 != 1.0 and k > 0:
        decay = <floating> pow(lz.b2, <double> k)
        for kk in range(K):
            rec[K + kk] *= decay


cdef void _sync(floating *R, const Lazy *lz, Py_ssize_t K, Py_ssize_t d, int64_t t) noexcept nogil:
    """Bring every feature coordinate's record R up to step t."""
    cdef Py_ssize_t j
    cdef floating *rec
    cdef int64_t lj
    for j in range(d):
        rec = R + j * lz.S
        lj = _last(rec, K)
        if t > lj:
            _bring_up(rec, lz, K, t - lj)
            _set_last(rec, K, t)


cdef void _records_in(const Lazy *lz, const floating *W, const floating *V, Py_ssize_t K,
                      Py_ssize_t d, int64_t t) noexcept nogil:
    """Copy the state's weights W and second slot V (K x (d+1), C order) into the
    records, up to date at step t."""
    cdef floating *rec
    cdef Py_ssize_t j, kk
    for j in range(d):
        rec = <floating *> lz.R + j * lz.S
        for kk in range(K):
            rec[kk] = W[kk * (d + 1) + j]
            rec[K + kk] = V[kk * (d + 1) + j]
        _set_last(rec, K, t)


cdef void _records_out(const Lazy *lz, floating *W, floating *V, Py_ssize_t K, Py_ssize_t d,
                       int64_t t) noexcept nogil:
    """Bring every record up to step t and copy it back into W and V."""
    cdef floating *rec
    cdef Py_ssize_t j, kk
    cdef int64_t lj
    for j in range(d):
        rec = <floating *> lz.R + j * lz.S
        lj = _last(rec, K)
        if t > lj:
            _bring_up(rec, lz, K, t - lj)
        for kk in range(K):
            W[kk * (d + 1) + j] = rec[kk]
            V[kk * (d + 1) + j] = rec[K + kk]


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
        FASTGD_PREFETCH(c + off)
        if off < nx:
            FASTGD_PREFETCH(x + off)
        off += CACHE_LINE
    if hi > lo:  # the last line, when the row does not start on a line
        FASTGD_PREFETCH(c + nc - 1)
        FASTGD_PREFETCH(x + nx - 1)


cdef inline void _prefetch_ahead(const floating *data, const Rows *x, Py_ssize_t ii) noexcept nogil:
    """Prefetch for the row at position ii of the order: later rows' entries (``data``
    is ``x.data``), target and weight (shuffled SGD waits on memory for each
    otherwise)."""
    cdef Py_ssize_t i
    cdef const int64_t *order = x.order
    if ii + 2 * PREFETCH_AHEAD < x.n:
        FASTGD_PREFETCH(&x.indptr[order[ii + 2 * PREFETCH_AHEAD]])
    if ii + PREFETCH_AHEAD < x.n:
        i = order[ii + PREFETCH_AHEAD]
        _prefetch_row(data, x.indices, x.indptr, i)
        FASTGD_PREFETCH(<const floating *> x.Y + i * x.ycols)
        FASTGD_PREFETCH(<const floating *> x.sw + i)


cdef double _lazy_sgd1(const Rows *x, floating *W, floating *V, const Lazy *lz, const Codes *c,
                       const double *hp, int64_t *t_end) noexcept nogil:
    """The lazy epoch for batches of one row and one output (K = 1): two passes over the
    row, the catch-up fused with the product and the gradient with the step. A row with
    a repeated column (non-canonical CSR) sums each coordinate's gradient in Gs first.
    Returns the loss sum and sets *t_end to the final step (records are caught up to it
    as they are copied back)."""
    cdef const floating *data = <const floating *> x.data
    cdef const int64_t *indices = x.indices
    cdef const int64_t *indptr = x.indptr
    cdef const int64_t *order = x.order
    cdef const floating *Y = <const floating *> x.Y
    cdef const floating *sw = <const floating *> x.sw
    cdef floating *R = <floating *> lz.R
    cdef floating *Gs = <floating *> lz.Gs
    cdef const double *lo = lz.lo
    cdef const double *hi = lz.hi
    cdef Py_ssize_t n = x.n, d = x.d, S = lz.S
    cdef floating eta = <floating> hp[P_ETA0], mu = <floating> hp[P_MOMENTUM], l2 = <floating> hp[P_L2]
    cdef int64_t t = c.t
    cdef bint nesterov = c.nesterov
    cdef double total = 0.0
    cdef Py_ssize_t ii, i, q, s, lo_q, hi_q, nt, steps = 0
    cdef int64_t lj, j
    cdef floating *rec
    cdef floating acc, cg, g, v, wi, wb = W[d], vb = V[d]
    cdef bint dup
    cdef Py_ssize_t pa = 0, pb = 0, ca = 0, cb = 0
    for ii in range(n):
        # the records of the row PREFETCH_NEAR ahead are asked for one per non-zero of
        # this row's first pass (a burst of them would fill the miss buffers)
        # likewise the entries of the row PREFETCH_AHEAD ahead, a line of each array per
        # non-zero of the second pass
        if ii + 2 * PREFETCH_AHEAD < n:
            FASTGD_PREFETCH(&indptr[order[ii + 2 * PREFETCH_AHEAD]])
        ca = cb = 0
        if ii + PREFETCH_AHEAD < n:
            i = order[ii + PREFETCH_AHEAD]
            ca = indptr[i]
            cb = indptr[i + 1]
            FASTGD_PREFETCH(Y + i * x.ycols)
            FASTGD_PREFETCH(sw + i)
            if cb > ca:
                FASTGD_PREFETCH(indices + cb - 1)
                FASTGD_PREFETCH(data + cb - 1)
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
                FASTGD_PREFETCH(R + indices[pa] * S)
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
            FASTGD_PREFETCH(R + indices[pa] * S)
            pa += 1
        wi = sw[i]
        total += wi * _loss_grad(c.loss, &acc, Y + i * x.ycols, 1)
        cg = wi * acc
        t += 1
        if not dup:
            for q in range(lo_q, hi_q):
                if ca < cb:
                    FASTGD_PREFETCH(indices + ca)
                    FASTGD_PREFETCH(data + ca)
                    ca += CACHE_LINE // sizeof(int64_t)
                rec = R + indices[q] * S
                g = cg * data[q] + l2 * rec[0]
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
                    lz.touched[nt] = j
                    Gs[nt] = cg * data[q]
                    nt += 1
                    _set_last(rec, 1, -1 - nt)
                else:
                    Gs[-2 - lj] += cg * data[q]
            for s in range(nt):
                rec = R + lz.touched[s] * S
                _update(&rec[0], &rec[1], Gs[s] + l2 * rec[0], mu, eta, nesterov, 0)
                _set_last(rec, 1, t)
        while ca < cb:
            FASTGD_PREFETCH(indices + ca)
            FASTGD_PREFETCH(data + ca)
            ca += CACHE_LINE // sizeof(int64_t)
        if c.fit_intercept:
            v = mu * vb + cg
            vb = v
            if nesterov:
                wb = wb - eta * (cg + mu * v)
            else:
                wb = wb - eta * v
        steps += 1
        if steps % lz.T == 0:
            _sync(R, lz, 1, d, t)
    W[d] = wb
    V[d] = vb
    t_end[0] = t  # the records are brought up to t as they are copied back
    return total


cdef inline double _batch_rows(const Rows *x, Py_ssize_t start, Py_ssize_t stop, const floating *W,
                               const Lazy *lz, const Codes *c, floating *p, floating *Gi,
                               Py_ssize_t *n_touched) noexcept nogil:
    """The rows order[start:stop] of a batch of the lazy epochs: each coordinate the
    batch touches is brought up to date when first touched (``_bring_up``) and given a
    place in the compact gradient ``Gs`` (its record's ``last`` holds -(place + 1)
    meanwhile, ``touched[place]`` the coordinate); the rows' gradients are added there
    and the intercepts' to Gi. Returns the rows' weighted loss; counts the places in
    *n_touched."""
    cdef const floating *data = <const floating *> x.data
    cdef const int64_t *indices = x.indices
    cdef const int64_t *indptr = x.indptr
    cdef floating *R = <floating *> lz.R
    cdef floating *Gs = <floating *> lz.Gs
    cdef Py_ssize_t K = x.K, S = lz.S, cols = x.d + 1
    cdef Py_ssize_t ii, i, q, kk, lo_q, hi_q, pa, pb
    cdef int64_t lj, j
    cdef floating *rec
    cdef floating acc, cg, wi
    cdef double total = 0.0
    for ii in range(start, stop):
        # the records of the row PREFETCH_NEAR ahead: one per non-zero of this row
        _prefetch_ahead(data, x, ii)
        pa = pb = 0
        if ii + PREFETCH_NEAR < x.n:
            pa = indptr[x.order[ii + PREFETCH_NEAR]]
            pb = indptr[x.order[ii + PREFETCH_NEAR] + 1]
        i = x.order[ii]
        lo_q = indptr[i]
        hi_q = indptr[i + 1]
        for q in range(lo_q, hi_q):
            if pa < pb:
                FASTGD_PREFETCH(R + indices[pa] * S)
                pa += 1
            j = indices[q]
            rec = R + j * S
            lj = _last(rec, K)
            if lj >= 0:  # first touched in this batch: the steps it missed, a place
                if c.t > lj:
                    _bring_up(rec, lz, K, c.t - lj)
                lz.touched[n_touched[0]] = j
                for kk in range(K):
                    Gs[n_touched[0] * K + kk] = 0
                n_touched[0] += 1
                _set_last(rec, K, -n_touched[0])
        while pa < pb:
            FASTGD_PREFETCH(R + indices[pa] * S)
            pa += 1
        for kk in range(K):
            acc = W[kk * cols + x.d]
            for q in range(lo_q, hi_q):
                acc = acc + R[indices[q] * S + kk] * data[q]
            p[kk] = acc
        wi = (<const floating *> x.sw)[i]
        total += wi * _loss_grad(c.loss, p, <const floating *> x.Y + i * x.ycols, K)
        for kk in range(K):
            cg = wi * p[kk]
            for q in range(lo_q, hi_q):
                Gs[(-_last(R + indices[q] * S, K) - 1) * K + kk] += cg * data[q]
            Gi[kk] += cg
    return total


cdef double _lazy_batches(const Rows *x, floating *W, floating *V, const Lazy *lz, const Codes *c,
                          const double *hp, floating *p, floating *Gi, int64_t *t_end) noexcept nogil:
    """The lazy epoch for any batch size and K: each batch's rows (``_batch_rows``),
    then the step of the coordinates it touched and of the intercepts. Momentum SGD
    (records: K weights and K velocities; every record is brought up to date every
    ``lz.T`` steps), or AdaGrad and RMSprop without a penalty on the weights and
    without averaging (records: K weights and K accumulators V; RMSprop's ``s_j``
    takes the ``beta_2**k`` of the ``k`` steps it missed when next touched, and at the
    end of the epoch; see ``_lazy_adaptive_epoch`` in ``fastgd._numba.sparse``).
    Returns the loss sum and sets *t_end to the final step (records are brought up to
    it as they are copied back)."""
    cdef floating *R = <floating *> lz.R
    cdef floating *Gs = <floating *> lz.Gs
    cdef floating eta = <floating> hp[P_ETA0], mu = <floating> hp[P_MOMENTUM], l2 = <floating> hp[P_L2]
    cdef Py_ssize_t K = x.K, d = x.d, cols = d + 1, S = lz.S
    cdef bint sgd = c.optimizer == SGD
    cdef double total = 0.0
    cdef Py_ssize_t start, stop, q, kk, n_touched, steps = 0
    cdef floating *rec
    cdef floating inv_b, g
    cdef Codes now = c[0]  # (now.t: the updates taken)
    cdef Rule r
    start = 0
    while start < x.n:
        stop = start + c.batch
        if stop > x.n:
            stop = x.n
        n_touched = 0
        total += _batch_rows(x, start, stop, W, lz, &now, p, Gi, &n_touched)
        now.t += 1
        steps += 1
        inv_b = <floating> (1.0 / (stop - start))
        if not sgd:
            _set_rule(&r, &now, now.t, hp)
        for q in range(n_touched):
            rec = R + lz.touched[q] * S
            for kk in range(K):
                g = Gs[q * K + kk] * inv_b
                if sgd:
                    _update(&rec[kk], &rec[K + kk], g + l2 * rec[kk], mu, eta, c.nesterov, 0)
                else:
                    _adaptive_coord(&rec[kk], &rec[K + kk], &rec[K + kk], g, &r, False)
            _set_last(rec, K, now.t)
        for kk in range(K):
            if c.fit_intercept:
                g = Gi[kk] * inv_b
                if sgd:
                    _update(&W[kk * cols + d], &V[kk * cols + d], g, mu, eta, c.nesterov, 0)
                else:
                    _adaptive_coord(&W[kk * cols + d], &V[kk * cols + d], &V[kk * cols + d], g, &r, False)
            Gi[kk] = 0
        if sgd and steps % lz.T == 0:
            _sync(R, lz, K, d, now.t)
        start = stop
    t_end[0] = now.t
    return total


# (the check is a function of its own, called with the arrays: the entry point
# keeps its size, and with it the C compiler's inlining of the loops into it)
def _check_epoch(data, indices, indptr, Y, sw, order, state, hp, codes):
    """``fastgd._checks.check_sparse_epoch`` on the arguments, as arrays."""
    check_sparse_epoch(np.asarray(data), np.asarray(indices), np.asarray(indptr), np.asarray(Y),
                       np.asarray(sw), np.asarray(order), np.asarray(state), np.asarray(hp),
                       np.asarray(codes), "cython")


def epoch(const floating[::1] data, indices, indptr, Y, sw, order, state, hp, codes, bint lazy=True,
          Py_ssize_t sync_steps=0):
    """One epoch in place; returns the sum of ``sw_i * loss_i``. See
    ``fastgd._numpy.sparse.epoch`` for the contract and ``fastgd._numba.sparse`` for the
    lazy update; ``lazy=False`` takes the dense O(K d) step at every step, and
    ``sync_steps > 0`` sets the interval ``T`` of the full catch-ups (for tests).
    The arrays are checked before any of them is read (``_check_epoch``); their
    dtypes are then the data's."""
    _check_epoch(data, indices, indptr, Y, sw, order, state, hp, codes)
    cdef const int64_t[::1] ind = indices
    cdef const int64_t[::1] ptr = indptr
    cdef const floating[:, ::1] y = Y
    cdef const floating[::1] w = sw
    cdef const int64_t[::1] o = order
    cdef floating[:, :, ::1] st = state
    cdef const double[::1] h = hp
    cdef const int64_t[::1] cd = codes
    cdef Py_ssize_t n = o.shape[0], K = st.shape[1], d = st.shape[2] - 1, m = max(d, 1)
    cdef Codes c = _read_codes(&cd[0])
    cdef Rows x = Rows(&data[0], &ind[0], &ptr[0], &y[0, 0], &w[0], &o[0], n, y.shape[1], K, d)
    cdef Lazy lz
    cdef int64_t t_end = c.t
    cdef double total
    c.batch = min(c.batch, max(n, 1))
    if not uses_lazy_update(np.asarray(hp), np.asarray(codes)):
        lazy = False
    dtype = np.float32 if floating is float else np.float64
    cdef floating[::1] Gi = np.zeros(K, dtype=dtype)  # the intercept's gradient
    cdef floating[::1] p = np.empty(K, dtype=dtype)
    cdef floating *W = &st[0, 0, 0]
    cdef floating *V = &st[1, 0, 0]  # (the velocity, or AdaGrad's/RMSprop's accumulator)
    if not lazy:
        return _dense_run(&x, st, &h[0], &c)
    if n == 0:
        return 0.0
    # the records, 64-byte aligned; touched and Gs hold at most one slot per coordinate
    lz.S = record_size(K, sizeof(floating))
    lz.R = <void *> <size_t> work_buffer("records", m * lz.S * sizeof(floating)).ctypes.data
    lz.touched = <int64_t *> <size_t> work_buffer("touched", m * 8).ctypes.data
    lz.Gs = <void *> <size_t> work_buffer("slots", m * K * sizeof(floating)).ctypes.data
    lz.lo = lz.hi = NULL
    lz.b2 = h[P_BETA_2] if c.optimizer == RMSPROP else 1.0
    lz.T = 0
    if c.optimizer == SGD:
        lz.T = min((n + c.batch - 1) // c.batch, sync_steps if sync_steps > 0 else max(SYNC_MIN_STEPS, d))
        lo_np, hi_np = _power_tables(lz.T, h[P_ETA0], h[P_MOMENTUM], h[P_L2], c.nesterov)
        lz.lo = <const double *> <size_t> lo_np.ctypes.data
        lz.hi = <const double *> <size_t> hi_np.ctypes.data
    with nogil:
        _records_in(&lz, W, V, K, d, c.t)
        if c.optimizer == SGD and c.batch == 1 and K == 1:
            total = _lazy_sgd1(&x, W, V, &lz, &c, &h[0], &t_end)
        else:
            total = _lazy_batches(&x, W, V, &lz, &c, &h[0], &p[0], &Gi[0], &t_end)
        _records_out(&lz, W, V, K, d, t_end)  # (the final catch-up)
    return total


cdef double _dense_run(const Rows *x, floating[:, :, ::1] state, const double *hp, const Codes *c):
    """The dense step (O(K d) per step): where ``uses_lazy_update`` is False, or
    lazy=False."""
    dtype = np.float32 if floating is float else np.float64
    cdef Py_ssize_t K = x.K, d = x.d, cols = d + 1, n = x.n
    cdef floating[:, ::1] G = np.zeros((K, cols), dtype=dtype)
    cdef floating[::1] Gi = np.zeros(K, dtype=dtype)
    cdef floating[::1] p = np.empty(K, dtype=dtype)
    cdef const floating *data = <const floating *> x.data
    cdef const int64_t *indices = x.indices
    cdef floating *W = &state[0, 0, 0]
    cdef floating *V = &state[1, 0, 0]  # (the velocity, or an adaptive rule's first slot)
    cdef floating *S2 = &state[2, 0, 0] if c.optimizer == ADAM else V  # (Adam's second)
    cdef floating *A = &state[state.shape[0] - 1, 0, 0]  # (the average, when t_a > 0)
    cdef floating mu = <floating> hp[P_MOMENTUM], l2 = <floating> hp[P_L2]
    cdef double l1 = hp[P_L1]
    cdef int64_t t = c.t
    cdef double total = 0.0
    cdef Py_ssize_t start, stop, ii, i, q, kk, j, lo, hi
    cdef floating acc, cg, wi, g, inv_b, eta, shrink
    cdef Rule r
    with nogil:
        start = 0
        while start < n:
            stop = start + c.batch
            if stop > n:
                stop = n
            for ii in range(start, stop):
                _prefetch_ahead(data, x, ii)
                i = x.order[ii]
                lo = x.indptr[i]
                hi = x.indptr[i + 1]
                for kk in range(K):
                    acc = W[kk * cols + d]
                    for q in range(lo, hi):
                        acc = acc + W[kk * cols + indices[q]] * data[q]
                    p[kk] = acc
                wi = (<const floating *> x.sw)[i]
                total += wi * _loss_grad(c.loss, &p[0], <const floating *> x.Y + i * x.ycols, K)
                for kk in range(K):
                    cg = wi * p[kk]
                    for q in range(lo, hi):
                        G[kk, indices[q]] += cg * data[q]
                    Gi[kk] += cg
            t += 1
            inv_b = <floating> (1.0 / (stop - start))
            _set_rule(&r, c, t, hp)
            eta = <floating> r.eta
            shrink = <floating> (r.eta * l1)
            for kk in range(K):
                for j in range(d):
                    g = G[kk, j] * inv_b + l2 * W[kk * cols + j]
                    G[kk, j] = 0
                    if c.optimizer == SGD:
                        _update(&W[kk * cols + j], &V[kk * cols + j], g, mu, eta, c.nesterov, shrink)
                    else:
                        _adaptive_coord(&W[kk * cols + j], &V[kk * cols + j], &S2[kk * cols + j], g,
                                        &r, l1 != 0.0)
                if c.fit_intercept:
                    if c.optimizer == SGD:
                        _update(&W[kk * cols + d], &V[kk * cols + d], Gi[kk] * inv_b, mu, eta, c.nesterov, 0)
                    else:
                        _adaptive_coord(&W[kk * cols + d], &V[kk * cols + d], &S2[kk * cols + d],
                                        Gi[kk] * inv_b, &r, False)
                Gi[kk] = 0
                _average(&W[kk * cols], &A[kk * cols], cols, r.avg)
            start = stop
    return total
