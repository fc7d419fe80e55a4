# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
# cython: initializedcheck=False, nonecheck=False, infer_types=False
"""Cython kernels: one ``epoch`` call runs one epoch of gradient descent for any batch size.

The algorithm is the one documented in ``fastgd._numpy.kernels.epoch`` (the reference),
written as loops over typed memoryviews with one source for float32 and float64 (the
fused type ``floating``). Losses and schedules arrive as integer codes from their
registries; the codes this file implements are listed in ``LOSS_CODES`` and
``SCHEDULE_CODES``, and an epoch with any other code raises ``ValueError`` before it
starts, so a registry entry without a branch here fails loudly in the tests.

A batch of at least ``2 * MIN_BLOCK_ROWS`` rows (full batch included) is summed over
fixed row blocks, each into its own buffer, and the buffers are added in block order.
The blocks depend only on the batch's length, so the result is bit-for-bit the same for
any number of threads. With ``n_threads > 1`` the blocks are handed out one at a time to
OpenMP threads (``prange``, dynamic schedule: a thread slowed by other work on the
machine takes fewer blocks) when the extension was built with OpenMP, and run one after the other
otherwise (``OPENMP`` says which). GNU OpenMP cannot run a parallel region in a process
forked from a parent that has used one (the child hangs), so a child forked after this
module ran a parallel region sums its blocks on one thread: same result, no hang.

Every array's dtype and contiguity is checked by Cython when the call starts, and
``epoch`` checks shapes, codes and indices before it enters the loops: the loops
themselves trust their inputs.
"""

from cython cimport floating
from cython.parallel cimport prange
from libc.math cimport exp, log, log1p, pow
from libc.stdint cimport int64_t

import os

import numpy as np

from .. import _params as P
from .._losses import LOG as _LOG, MULTINOMIAL as _MULTINOMIAL, SQUARED as _SQUARED
from .._schedules import CONSTANT as _CONSTANT, INVSCALING as _INVSCALING, OPTIMAL as _OPTIMAL

cdef extern from *:
    """
    #if defined(__GNUC__) || defined(__clang__)
    #define FASTGD_PREFETCH(p) __builtin_prefetch((const void *)(p))
    #else
    #define FASTGD_PREFETCH(p) ((void)0)
    #endif
    #ifdef _OPENMP
    #define FASTGD_OPENMP 1
    #else
    #define FASTGD_OPENMP 0
    #endif
    """
    void FASTGD_PREFETCH(const void *p) noexcept nogil
    int FASTGD_OPENMP

OPENMP = bool(FASTGD_OPENMP)

# whether this process ran an OpenMP parallel region, and whether it may run one
cdef bint _omp_used = False
cdef bint _omp_usable = True


def _after_fork_in_child():
    global _omp_usable
    if _omp_used:
        _omp_usable = False


def openmp_usable():
    """Whether an epoch in this process may share its blocks among OpenMP threads."""
    return bool(FASTGD_OPENMP) and _omp_usable


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)

# registry codes as C constants (read once from the registries at import)
cdef int64_t SQUARED = _SQUARED
cdef int64_t LOG = _LOG
cdef int64_t MULTINOMIAL = _MULTINOMIAL
cdef int64_t CONSTANT = _CONSTANT
cdef int64_t INVSCALING = _INVSCALING
cdef int64_t OPTIMAL = _OPTIMAL

# the accumulator of a gradient: the data's dtype in an epoch, float64 in ``gradient``
ctypedef fused acc_t:
    float
    double

LOSS_CODES = (_SQUARED, _LOG, _MULTINOMIAL)
SCHEDULE_CODES = (_CONSTANT, _INVSCALING, _OPTIMAL)

# blocked batches: blocks of at least this many rows, at most MAX_BLOCKS blocks, at most
# MAX_BUFFER block-buffer elements in all (the same rule as the numba backend)
MIN_BLOCK_ROWS = 2048
MAX_BLOCKS = 64
MAX_BUFFER = 1 << 22

# rows ahead in the visiting order whose data are prefetched (random order SGD is bound
# by the latency of fetching each row from memory)
cdef Py_ssize_t PREFETCH_AHEAD = 6
cdef Py_ssize_t CACHE_LINE = 64
cdef Py_ssize_t MIN_BLOCK_ROWS_C = MIN_BLOCK_ROWS
cdef Py_ssize_t MAX_BLOCKS_C = MAX_BLOCKS
cdef Py_ssize_t MAX_BUFFER_C = MAX_BUFFER

# positions in hp as C constants
cdef Py_ssize_t P_ETA0 = P.ETA0, P_POWER_T = P.POWER_T, P_OPTIMAL_T0 = P.OPTIMAL_T0
cdef Py_ssize_t P_L2 = P.L2, P_L1 = P.L1, P_MOMENTUM = P.MOMENTUM, P_ALPHA = P.ALPHA


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


cdef double _add_rows(const floating[:, ::1] X, const floating[:, ::1] Y,
                      const floating[::1] sw, const floating[:, ::1] W,
                      const int64_t[::1] order, Py_ssize_t lo, Py_ssize_t hi,
                      int64_t loss, floating *p, acc_t *G) noexcept nogil:
    """Add the weighted loss gradients of rows order[lo:hi] to G (K x (d+1), C order)
    and return their weighted loss. Rows a few places ahead in ``order`` are prefetched."""
    cdef Py_ssize_t n = X.shape[0], d = X.shape[1], K = W.shape[0], cols = d + 1
    cdef Py_ssize_t ii, i, j, k, off, ahead
    cdef Py_ssize_t row_bytes = d * sizeof(floating)
    cdef const floating *x
    cdef const floating *w
    cdef floating acc, c, wi
    cdef double total = 0.0
    for ii in range(lo, hi):
        ahead = ii + PREFETCH_AHEAD
        if ahead < n:
            x = &X[order[ahead], 0]
            off = 0
            while off < row_bytes:
                FASTGD_PREFETCH((<const char *> x) + off)
                off += CACHE_LINE
            FASTGD_PREFETCH(&Y[order[ahead], 0])
            FASTGD_PREFETCH(&sw[order[ahead]])
        i = order[ii]
        x = &X[i, 0]
        for k in range(K):
            w = &W[k, 0]
            acc = w[d]
            for j in range(d):
                acc += w[j] * x[j]
            p[k] = acc
        wi = sw[i]
        total += wi * _loss_grad(loss, p, &Y[i, 0], K)
        for k in range(K):
            c = wi * p[k]
            for j in range(d):
                G[k * cols + j] += c * x[j]
            G[k * cols + d] += c
    return total


cdef inline double _add_block(const floating[:, ::1] X, const floating[:, ::1] Y,
                              const floating[::1] sw, const floating[:, ::1] W,
                              const int64_t[::1] order, Py_ssize_t start, Py_ssize_t rows,
                              Py_ssize_t b, Py_ssize_t nb, int64_t loss, floating[:, ::1] p,
                              floating[:, :, ::1] parts) noexcept nogil:
    """Block b of nb of the batch order[start:start + rows], summed into parts[b] with its
    own scratch row p[b]; returns its weighted loss."""
    return _add_rows(X, Y, sw, W, order, start + (b * rows) // nb, start + ((b + 1) * rows) // nb,
                     loss, &p[b, 0], &parts[b, 0, 0])


cdef void _step(floating[:, :, ::1] state, floating *G, Py_ssize_t n_rows, int64_t t,
                const double[::1] hp, bint nesterov, bint fit_intercept,
                int64_t schedule) noexcept nogil:
    """One update from the summed batch gradient G of ``n_rows`` rows; zeroes G."""
    cdef Py_ssize_t K = state.shape[1], cols = state.shape[2], d = cols - 1
    cdef Py_ssize_t n_cols = cols if fit_intercept else d
    cdef Py_ssize_t k, j
    cdef double eta_d = _step_size(schedule, t, hp[P_ETA0], hp[P_POWER_T], hp[P_OPTIMAL_T0], hp[P_ALPHA])
    cdef floating mu = <floating> hp[P_MOMENTUM]
    cdef floating l2 = <floating> hp[P_L2]
    cdef floating eta = <floating> eta_d
    cdef floating inv_b = <floating> (1.0 / n_rows)
    cdef floating shrink = <floating> (eta * hp[P_L1])
    cdef floating g, v, w
    for k in range(K):
        if not fit_intercept:
            G[k * cols + d] = 0  # no intercept: its gradient is dropped
        for j in range(n_cols):
            g = G[k * cols + j] * inv_b
            G[k * cols + j] = 0
            if j < d:
                g = g + l2 * state[0, k, j]
            v = mu * state[1, k, j] + g
            state[1, k, j] = v
            if nesterov:
                w = state[0, k, j] - eta * (g + mu * v)
            else:
                w = state[0, k, j] - eta * v
            if j < d and shrink > 0:
                if w > shrink:
                    w = w - shrink
                elif w < -shrink:
                    w = w + shrink
                else:
                    w = 0
            state[0, k, j] = w


cdef inline Py_ssize_t _n_blocks(Py_ssize_t rows, Py_ssize_t K, Py_ssize_t cols) noexcept nogil:
    cdef Py_ssize_t b = rows // MIN_BLOCK_ROWS_C
    if b > MAX_BLOCKS_C:
        b = MAX_BLOCKS_C
    if b > MAX_BUFFER_C // (K * cols):
        b = MAX_BUFFER_C // (K * cols)
    return b if b > 1 else 1


def block_bounds(Py_ssize_t rows, Py_ssize_t n_outputs, Py_ssize_t n_cols):
    """Boundaries of the blocks a batch of ``rows`` rows is summed over (for tests)."""
    b = _n_blocks(rows, n_outputs, n_cols)
    return np.array([(i * rows) // b for i in range(b + 1)], dtype=np.int64)


def _check_rows(X, Y, sw, K, codes):
    """The loss code, the outputs it needs and the rows of Y and sw against X."""
    n = X.shape[0]
    loss = codes[P.LOSS]
    if codes.shape[0] < P.N_CODES:
        raise ValueError("codes must have the layout of fastgd._params")
    if loss not in LOSS_CODES:
        raise ValueError(f"fastgd: unknown loss code {loss} in the cython backend")
    if K < 1 or (loss == _LOG and K != 1) or (loss == _MULTINOMIAL and K < 2):
        raise ValueError(f"{K} outputs do not fit loss code {loss}")
    m = K if loss == _SQUARED else 1
    if Y.shape[0] != n or Y.shape[1] < m or sw.shape[0] != n:
        raise ValueError(f"X has {n} rows but Y has shape {tuple(Y.shape)[:2]} and sw {sw.shape[0]} rows")
    if n and loss == _MULTINOMIAL:
        labels = np.asarray(Y)[:, 0]
        if not np.all((labels >= 0) & (labels < K) & (labels == np.floor(labels))):
            raise ValueError(f"multinomial targets must be class indices in [0, {K})")


def _check(X, Y, sw, order, state, hp, codes):
    """Shapes, codes and indices, checked before any loop that trusts them."""
    n, d = X.shape[0], X.shape[1]
    if state.shape[0] != 2 or state.shape[2] != d + 1:
        raise ValueError(f"state must have shape (2, K, {d + 1}), got {tuple(state.shape)}")
    if hp.shape[0] < P.N_HP:
        raise ValueError("hp must have the layout of fastgd._params")
    _check_rows(X, Y, sw, state.shape[1], codes)
    if codes[P.SCHEDULE] not in SCHEDULE_CODES:
        raise ValueError(f"fastgd: unknown schedule code {codes[P.SCHEDULE]} in the cython backend")
    if codes[P.BATCH_SIZE] < 1:
        raise ValueError(f"batch size must be >= 1, got {codes[P.BATCH_SIZE]}")
    if order.shape[0] != n:
        raise ValueError(f"X has {n} rows but order has {order.shape[0]} entries")
    if n:
        order_np = np.asarray(order)
        if order_np.min() < 0 or order_np.max() >= n:
            raise ValueError("order holds a row index outside [0, n)")


def epoch(const floating[:, ::1] X, const floating[:, ::1] Y, const floating[::1] sw,
          const int64_t[::1] order, floating[:, :, ::1] state, const double[::1] hp,
          const int64_t[::1] codes):
    """One epoch in place; returns the sum of ``sw_i * loss_i``. See the NumPy reference."""
    _check(X, Y, sw, order, state, hp, codes)
    cdef Py_ssize_t n = X.shape[0], K = state.shape[1], cols = state.shape[2]
    cdef int64_t loss = codes[P.LOSS]
    cdef int64_t schedule = codes[P.SCHEDULE]
    cdef bint nesterov = codes[P.NESTEROV] != 0
    cdef bint fit_intercept = codes[P.FIT_INTERCEPT] != 0
    cdef Py_ssize_t batch = min(codes[P.BATCH_SIZE], max(n, 1))
    cdef int64_t t = codes[P.T_START]
    cdef int n_threads = <int> max(1, min(codes[P.N_THREADS], MAX_BLOCKS))
    global _omp_used
    dtype = np.float32 if floating is float else np.float64
    # blocks of the largest batch (a shorter last batch has as many blocks or fewer)
    cdef Py_ssize_t max_blocks = _n_blocks(batch, K, cols)
    cdef floating[:, ::1] G = np.zeros((K, cols), dtype=dtype)
    cdef floating[:, ::1] p = np.empty((max_blocks, K), dtype=dtype)
    cdef floating[:, :, ::1] parts = np.zeros((max_blocks, K, cols), dtype=dtype)
    cdef double[::1] block_loss = np.zeros(max_blocks)
    cdef const floating[:, ::1] W = state[0]
    if not (FASTGD_OPENMP and _omp_usable):
        n_threads = 1
    elif n_threads > 1 and max_blocks > 1:
        _omp_used = True
    cdef double total = 0.0
    cdef Py_ssize_t start, stop, rows, nb, b, k, j
    cdef int nt
    with nogil:
        start = 0
        while start < n:
            stop = start + batch
            if stop > n:
                stop = n
            rows = stop - start
            nb = _n_blocks(rows, K, cols)
            if nb == 1:
                total += _add_rows(X, Y, sw, W, order, start, stop, loss, &p[0, 0], &G[0, 0])
            else:
                nt = n_threads if n_threads < nb else <int> nb
                if nt > 1:  # (a region with one thread would still enter OpenMP)
                    for b in prange(nb, num_threads=nt, schedule="dynamic", chunksize=1):
                        block_loss[b] = _add_block(X, Y, sw, W, order, start, rows, b, nb, loss, p, parts)
                else:
                    for b in range(nb):
                        block_loss[b] = _add_block(X, Y, sw, W, order, start, rows, b, nb, loss, p, parts)
                for b in range(nb):
                    total += block_loss[b]
                    for k in range(K):
                        for j in range(cols):
                            G[k, j] += parts[b, k, j]
                            parts[b, k, j] = 0
            t += 1
            _step(state, &G[0, 0], rows, t, hp, nesterov, fit_intercept, schedule)
            start = stop
    return total


def gradient(const floating[:, ::1] X, const floating[:, ::1] Y, const floating[::1] sw,
             const floating[:, ::1] W, const int64_t[::1] codes, double[:, ::1] G):
    """Add ``sum_i sw_i * dloss_i/dW`` over all rows (in storage order) to ``G`` (K, d+1),
    float64 whatever the data's dtype, and return ``sum_i sw_i * loss_i``; no step.
    See ``fastgd._numpy.kernels.gradient``. One thread (the Dask driver runs one call
    per block, in parallel over its workers)."""
    cdef Py_ssize_t n = X.shape[0], d = X.shape[1], K = W.shape[0]
    if W.shape[1] != d + 1 or G.shape[0] != K or G.shape[1] != d + 1:
        raise ValueError(
            f"W and G must have shape ({K}, {d + 1}), got {tuple(W.shape)[:2]} and {tuple(G.shape)[:2]}"
        )
    _check_rows(X, Y, sw, K, codes)
    order_np = np.arange(n, dtype=np.int64)
    cdef const int64_t[::1] order = order_np
    cdef int64_t loss = codes[P.LOSS]
    dtype = np.float32 if floating is float else np.float64
    cdef floating[::1] p = np.empty(K, dtype=dtype)
    cdef double total = 0.0
    if n == 0:
        return 0.0
    with nogil:
        total = _add_rows(X, Y, sw, W, order, 0, n, loss, &p[0], &G[0, 0])
    return total
