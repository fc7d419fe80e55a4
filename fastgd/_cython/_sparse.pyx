# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
# cython: initializedcheck=False, nonecheck=False, infer_types=False
"""Cython kernels for sparse (CSR) input, with the lazy O(nnz) momentum update.

The same algorithm and lazy update as ``fastgd._numba.sparse`` (see its docstring for
the math): coordinates a batch does not touch are brought up to date when next read,
by tabulated powers of the 2x2 gradient-free step; every coordinate is brought up to
date every ``T`` steps and at the end of the epoch. The dense step (O(K d) per step) is
taken with an L1 penalty part, with a time-varying step size, or with ``lazy=False``.
One thread.

Every array's dtype and contiguity is checked by Cython when the call starts, and
``epoch`` checks shapes, codes, the CSR structure (indices in ``[0, d)``, ``indptr``
from 0, non-decreasing, ending at nnz) and the row order before it enters the loops.
"""

from cython cimport floating
from libc.math cimport exp, log, log1p, pow
from libc.stdint cimport int64_t

import numpy as np

from .. import _params as P
from .._schedules import CONSTANT as _CONSTANT, INVSCALING as _INVSCALING, OPTIMAL as _OPTIMAL
from .._sparse import check_epoch
from ._kernels import SCHEDULE_CODES, _check_rows

cdef extern from *:
    """
    #if defined(__GNUC__) || defined(__clang__)
    #define FASTGD_SPARSE_PREFETCH(p) __builtin_prefetch((const void *)(p))
    #else
    #define FASTGD_SPARSE_PREFETCH(p) ((void)0)
    #endif
    """
    void FASTGD_SPARSE_PREFETCH(const void *p) noexcept nogil

# rows ahead in the visiting order whose entries are prefetched (shuffled SGD waits on
# fetching each row from memory otherwise)
cdef Py_ssize_t PREFETCH_AHEAD = 4
# ... and rows this far ahead have their coordinates' weights, velocities and steps fetched
cdef Py_ssize_t PREFETCH_NEAR = 2
cdef Py_ssize_t CACHE_LINE = 64

cdef int64_t CONSTANT = _CONSTANT
cdef int64_t INVSCALING = _INVSCALING
cdef int64_t OPTIMAL = _OPTIMAL

# a full catch-up happens at least every max(SYNC_MIN_STEPS, d) steps (and each epoch's end)
SYNC_MIN_STEPS = 4096

cdef Py_ssize_t P_ETA0 = P.ETA0, P_POWER_T = P.POWER_T, P_OPTIMAL_T0 = P.OPTIMAL_T0
cdef Py_ssize_t P_L2 = P.L2, P_L1 = P.L1, P_MOMENTUM = P.MOMENTUM, P_ALPHA = P.ALPHA

from .._losses import LOG as _LOG, MULTINOMIAL as _MULTINOMIAL, SQUARED as _SQUARED

cdef int64_t SQUARED = _SQUARED
cdef int64_t LOG = _LOG
cdef int64_t MULTINOMIAL = _MULTINOMIAL


# the step size and the scalar losses: the same as in _kernels.pyx (which has no .pxd to
# share them through)
cdef inline double _step_size(int64_t code, int64_t t, double eta0, double power_t,
                              double t0, double alpha) noexcept nogil:
    if code == INVSCALING:
        return eta0 / pow(<double> t, power_t)
    if code == OPTIMAL:
        return 1.0 / (alpha * (t0 + t - 1.0))
    return eta0  # CONSTANT (other codes are rejected before the loops start)


cdef inline double _loss_grad(int64_t code, floating *p, const floating *y,
                              Py_ssize_t K) noexcept nogil:
    """Return the loss of one row; overwrite ``p`` (its K raw outputs) with dloss/dp."""
    cdef Py_ssize_t k, c
    cdef floating r
    cdef double s, z, yy, e, value, sig, mx
    if code == SQUARED:
        s = 0.0
        for k in range(K):
            r = p[k] - y[k]
            p[k] = r
            s += 0.5 * r * r
        return s
    if code == LOG:
        z = p[0]
        yy = y[0]
        if z > 0:
            e = exp(-z)
            value = z * (1.0 - yy) + log1p(e)
            sig = 1.0 / (1.0 + e)
        else:
            e = exp(z)
            value = log1p(e) - yy * z
            sig = e / (1.0 + e)
        p[0] = <floating> (sig - yy)
        return value
    # MULTINOMIAL: y holds the class index
    c = <Py_ssize_t> y[0]
    z = p[c]
    mx = p[0]
    for k in range(1, K):
        if p[k] > mx:
            mx = p[k]
    s = 0.0
    for k in range(K):
        e = exp(p[k] - mx)
        p[k] = <floating> e
        s += <floating> e
    for k in range(K):
        p[k] = <floating> (p[k] / s)
    p[c] -= 1
    return log(s) + mx - z


def uses_lazy_update(hp, codes):
    """Whether the kernel updates lazily (O(nnz) per step) for these settings."""
    return hp[P.L1] == 0.0 and codes[P.SCHEDULE] == _CONSTANT


def _powers(Py_ssize_t T, double eta, double mu, double l2, bint nesterov):
    """``tab[k] = (a, b, c, e)`` with ``A^k = [[a, b], [c, e]]``, k = 0 .. T (float64)."""
    tab_np = np.empty((T + 1, 4))
    cdef double[:, ::1] tab = tab_np
    cdef double a1, b1, c1 = l2, e1 = mu, a, b, c, e
    cdef Py_ssize_t k
    if nesterov:
        a1 = 1.0 - eta * l2 * (1.0 + mu)
        b1 = -eta * mu * mu
    else:
        a1 = 1.0 - eta * l2
        b1 = -eta * mu
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
    return tab_np


# The helpers take raw pointers: passing a memoryview slice to a function costs atomic
# reference counting per call, which would dominate a per-non-zero call.
# W, V point at state[0, 0, 0] and state[1, 0, 0]: element (k, j) is at k * cols + j.
cdef inline void _catch_up(floating *W, floating *V, Py_ssize_t K, Py_ssize_t cols,
                           Py_ssize_t j, int64_t k, const double *tab) noexcept nogil:
    """Apply the ``k`` missed gradient-free steps to coordinate j of every output."""
    cdef const double *m = tab + 4 * k
    cdef double a = m[0], b = m[1], c = m[2], e = m[3], w, v
    cdef Py_ssize_t kk, o
    for kk in range(K):
        o = kk * cols + j
        w = W[o]
        v = V[o]
        W[o] = <floating> (a * w + b * v)
        V[o] = <floating> (c * w + e * v)


cdef void _sync(floating *W, floating *V, Py_ssize_t K, Py_ssize_t cols, int64_t *last,
                Py_ssize_t d, int64_t t, const double *tab) noexcept nogil:
    """Bring every feature coordinate up to step t."""
    cdef Py_ssize_t j
    cdef int64_t k
    for j in range(d):
        k = t - last[j]
        if k > 0:
            _catch_up(W, V, K, cols, j, k, tab)
            last[j] = t


cdef inline void _update(floating *W, floating *V, Py_ssize_t o, floating g, floating mu,
                         floating eta, bint nesterov, floating shrink) noexcept nogil:
    """The step of one coordinate (offset o) from its full gradient g (L2 included)."""
    cdef floating v = mu * V[o] + g
    cdef floating w
    V[o] = v
    if nesterov:
        w = W[o] - eta * (g + mu * v)
    else:
        w = W[o] - eta * v
    if shrink > 0:
        if w > shrink:
            w = w - shrink
        elif w < -shrink:
            w = w + shrink
        else:
            w = 0
    W[o] = w


cdef inline void _prefetch_row(const floating[::1] data, const int64_t[::1] indices,
                               const int64_t[::1] indptr, Py_ssize_t i) noexcept nogil:
    """Ask for row i's values and column indices ahead of use."""
    cdef Py_ssize_t lo = indptr[i], hi = indptr[i + 1]
    cdef const char *x = <const char *> &data[lo] if hi > lo else NULL
    cdef const char *c = <const char *> &indices[lo] if hi > lo else NULL
    cdef Py_ssize_t off = 0, nx = (hi - lo) * sizeof(floating), nc = (hi - lo) * sizeof(int64_t)
    while off < nc:
        FASTGD_SPARSE_PREFETCH(c + off)
        if off < nx:
            FASTGD_SPARSE_PREFETCH(x + off)
        off += CACHE_LINE


def epoch(const floating[::1] data, const int64_t[::1] indices, const int64_t[::1] indptr,
          const floating[:, ::1] Y, const floating[::1] sw, const int64_t[::1] order,
          floating[:, :, ::1] state, const double[::1] hp, const int64_t[::1] codes,
          bint lazy=True, Py_ssize_t sync_steps=0):
    """One epoch in place; returns the sum of ``sw_i * loss_i``. See
    ``fastgd._numpy.sparse.epoch`` for the contract and ``fastgd._numba.sparse`` for the
    lazy update; ``lazy=False`` takes the dense O(K d) step at every step, and
    ``sync_steps > 0`` sets the interval ``T`` of the full catch-ups (for tests)."""
    check_epoch(np.asarray(data), np.asarray(indices), np.asarray(indptr), np.asarray(Y),
                np.asarray(sw), np.asarray(order), np.asarray(state))
    if hp.shape[0] < P.N_HP:
        raise ValueError("hp must have the layout of fastgd._params")
    # the loss code and Y's columns (the dense check reads only X's row count)
    _check_rows(np.empty((order.shape[0], 0)), Y, sw, state.shape[1], codes)
    if codes[P.SCHEDULE] not in SCHEDULE_CODES:
        raise ValueError(f"fastgd: unknown schedule code {codes[P.SCHEDULE]} in the cython backend")
    if codes[P.BATCH_SIZE] < 1:
        raise ValueError(f"batch size must be >= 1, got {codes[P.BATCH_SIZE]}")
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
    if l1 != 0.0 or schedule != CONSTANT:
        lazy = False
    dtype = np.float32 if floating is float else np.float64
    cdef floating[:, ::1] G = np.zeros((K if not lazy else 0, cols), dtype=dtype)  # dense mode
    cdef floating[::1] Gi = np.zeros(K, dtype=dtype)  # the intercept's gradient
    cdef floating[::1] p = np.empty(K, dtype=dtype)
    cdef Py_ssize_t n_steps = (n + batch - 1) // batch
    cdef Py_ssize_t T = 1
    if lazy:
        T = min(n_steps, sync_steps if sync_steps > 0 else max(SYNC_MIN_STEPS, d))
    cdef const double[:, ::1] tab = _powers(T, hp[P_ETA0], hp[P_MOMENTUM], hp[P_L2], nesterov)
    # last[j] >= 0: up to date at step last[j]; during a batch, a touched coordinate holds
    # -(its slot + 1): touched[slot] = j, Gs[slot] its gradient (see fastgd._numba.sparse)
    cdef int64_t[::1] last = np.full(d if lazy else 0, t, dtype=np.int64)
    cdef int64_t[::1] touched = np.empty(d if lazy else 0, dtype=np.int64)
    cdef floating[:, ::1] Gs = np.zeros((d if lazy else 0, K), dtype=dtype)
    cdef double total = 0.0
    cdef Py_ssize_t start, stop, ii, i, q, kk, j, lo, hi, n_touched, steps = 0
    cdef int64_t lj
    cdef floating acc, c, wi, g, inv_b, eta, shrink
    cdef double eta_d
    cdef floating *W = &state[0, 0, 0]
    cdef floating *V = &state[1, 0, 0]
    cdef const double *tp = &tab[0, 0]
    cdef int64_t *lp = &last[0] if lazy and d > 0 else NULL
    with nogil:
        start = 0
        while start < n:
            stop = start + batch
            if stop > n:
                stop = n
            n_touched = 0
            for ii in range(start, stop):
                if ii + 2 * PREFETCH_AHEAD < n:
                    FASTGD_SPARSE_PREFETCH(&indptr[order[ii + 2 * PREFETCH_AHEAD]])
                if ii + PREFETCH_AHEAD < n:
                    _prefetch_row(data, indices, indptr, order[ii + PREFETCH_AHEAD])
                if lazy and ii + PREFETCH_NEAR < n:  # the coordinates of a nearer row
                    i = order[ii + PREFETCH_NEAR]
                    for q in range(indptr[i], indptr[i + 1]):
                        j = indices[q]
                        FASTGD_SPARSE_PREFETCH(&lp[j])
                        FASTGD_SPARSE_PREFETCH(&W[j])
                        FASTGD_SPARSE_PREFETCH(&V[j])
                i = order[ii]
                lo = indptr[i]
                hi = indptr[i + 1]
                if lazy:
                    for q in range(lo, hi):
                        j = indices[q]
                        lj = last[j]
                        if lj >= 0:
                            if t > lj:
                                _catch_up(W, V, K, cols, j, t - lj, tp)
                            touched[n_touched] = j
                            for kk in range(K):
                                Gs[n_touched, kk] = 0
                            n_touched += 1
                            last[j] = -n_touched
                for kk in range(K):
                    acc = W[kk * cols + d]
                    for q in range(lo, hi):
                        acc = acc + W[kk * cols + indices[q]] * data[q]
                    p[kk] = acc
                wi = sw[i]
                total += wi * _loss_grad(loss, &p[0], &Y[i, 0], K)
                for kk in range(K):
                    c = wi * p[kk]
                    if lazy:
                        for q in range(lo, hi):
                            Gs[-last[indices[q]] - 1, kk] += c * data[q]
                    else:
                        for q in range(lo, hi):
                            G[kk, indices[q]] += c * data[q]
                    Gi[kk] += c
            t += 1
            steps += 1
            inv_b = <floating> (1.0 / (stop - start))
            eta_d = _step_size(schedule, t, hp[P_ETA0], hp[P_POWER_T], hp[P_OPTIMAL_T0], hp[P_ALPHA])
            eta = <floating> eta_d
            shrink = <floating> (eta_d * l1)
            if lazy:
                for q in range(n_touched):
                    j = touched[q]
                    for kk in range(K):
                        g = Gs[q, kk] * inv_b + l2 * W[kk * cols + j]
                        _update(W, V, kk * cols + j, g, mu, eta, nesterov, 0)
                    last[j] = t
            else:
                for kk in range(K):
                    for j in range(d):
                        g = G[kk, j] * inv_b + l2 * W[kk * cols + j]
                        G[kk, j] = 0
                        _update(W, V, kk * cols + j, g, mu, eta, nesterov, shrink)
            for kk in range(K):
                if fit_intercept:
                    _update(W, V, kk * cols + d, Gi[kk] * inv_b, mu, eta, nesterov, 0)
                Gi[kk] = 0
            if lazy and steps % T == 0:
                _sync(W, V, K, cols, lp, d, t, tp)
            start = stop
        if lazy:
            _sync(W, V, K, cols, lp, d, t, tp)
    return total
