# Included by _kernels.pyx and _kernels_avx2.pyx: one source, compiled for two
# instruction sets (see setup.py)
"""Cython kernels: one ``epoch`` call runs one epoch of gradient descent for any batch size.

The algorithm is the one documented in ``fastgd._numpy.kernels.epoch`` (the reference),
written as loops over typed memoryviews with one source for float32 and float64 (the
fused type ``floating``). Losses and schedules arrive as integer codes from their
registries; an epoch with a code that is not in a registry raises ``ValueError`` before
it starts (``fastgd._checks``), and ``tests/test_backends.py`` runs every registry code
on every backend, so a registry entry without a branch here fails loudly in the tests.

This source is compiled twice (``setup.py``): ``_kernels`` for the compiler's baseline
instruction set and, on x86-64 with GCC or Clang, ``_kernels_avx2`` with AVX2 and FMA;
the backend (``fastgd._cython.kernels``) uses the second where the CPU runs it. Both are
built with reassociation allowed (``-fassociative-math`` without ``-ffinite-math-only``:
NaN and infinity still propagate), so the per-row dot products are summed in vector
lanes: the result differs from a serial sum in the last bits only, and is the same on
every call.

A batch of at least ``2 * MIN_BLOCK_ROWS`` rows (full batch included) is summed over
fixed row blocks, each into its own buffer, and the buffers are added in block order.
The blocks depend only on the batch's shape (their count is ``fastgd._tuning.n_blocks``,
computed in C by ``_n_blocks``), so the result is bit-for-bit the same for any number of
threads. With ``n_threads > 1`` the blocks are handed out one at a time to
OpenMP threads (``prange``, dynamic schedule: a thread slowed by other work on the
machine takes fewer blocks) when the extension was built with OpenMP, and run one after
the other otherwise (``OPENMP`` says which). GNU OpenMP cannot run a parallel region in
a process forked from a parent that has used one (the child hangs), so a child forked
after a parallel region sums its blocks on one thread: same result, no hang
(``fastgd._cython._forksafe``).

The rows of a batch, a block or a fold's segment go through one row loop,
``_add_rows``, for the single-model and the many-models kernels alike (a ``Span``
says which rows, in which order, and whether to prefetch). Single-output rows (squared
error with one target, log loss) go in blocks: the block's outputs first, four rows at
a time where the rows are narrow or in cache, then its losses, then its gradients. The
log loss's blocks are ``LOSS_BLOCK_ROWS`` rows, so that its losses run in one loop in
vector lanes (its ``exp``/``log1p`` are the branch-free ones of ``fastgd._vmath``, in C
in ``fastgd_log_losses``, compiled without reassociation); the squared error's are four
rows. ``vexp_values``/``vlog1p_values`` run those two functions over arrays, for tests.

The C helpers (prefetching, the dot products, the four-row products with vector types,
the vectorised ``exp``/``log1p`` and the log loss) are in headers next to this file,
``fastgd_helpers.h`` and ``fastgd_vmath.h``. The loops take their scratch and settings
in structs (``Span``, ``Shape``, ``Codes``, ``Rule``; ``Path`` and ``Part`` for many
models), so that no function takes more than a few arguments.

SGD (``batch_size=1``) fuses the gradient and the step in one pass over the row's
features: the same arithmetic as a one-row batch through ``_step``, without the gradient
buffer.

``path_epoch_dense``/``path_epoch_csr`` run one epoch of many models on one pass over
the rows (``fastgd._cython.path``, the section "many models" at the end of this file).

Every array's dtype and contiguity is checked by Cython when the call starts, and
``epoch``/``gradient`` check shapes, codes and indices before they enter the loops
(``fastgd._checks.check_epoch``/``check_gradient``, the checks every backend runs): the
loops themselves trust their inputs.

The tuning constants (the block rule, the prefetch distance, the four-row width, the
loss block, the many-models kernel's window, the cache line, PARALLEL_MIN_VALUES) are
defined in ``fastgd._tuning``, shared with the Numba kernels. The prefetch distance, the
four-row width, the loss block, the window and the cache line are compiled in as C
constants (``_tuning.pxi``), the block rule's constants are read when the module
is imported, and PARALLEL_MIN_VALUES by each epoch.
"""

from cython cimport floating
from cython.parallel cimport prange
from libc.math cimport exp, log, log1p, pow, sqrt
from libc.stdint cimport int64_t, uint8_t

import numpy as np

from .. import _params as P
from .. import _checks, _tuning
from . import _forksafe
from .._losses import LOG as _LOG, MULTINOMIAL as _MULTINOMIAL, SQUARED as _SQUARED
from .._schedules import CONSTANT as _CONSTANT, INVSCALING as _INVSCALING, OPTIMAL as _OPTIMAL
from .._optimizers import ADAGRAD as _ADAGRAD, ADAM as _ADAM, RMSPROP as _RMSPROP, SGD as _SGD

# the C helpers, in headers next to this file (setup.py: include_dirs and depends)
cdef extern from "fastgd_helpers.h" nogil:
    void FASTGD_PREFETCH(const void *p) noexcept
    int FASTGD_OPENMP
    int FASTGD_AVX2
    int fastgd_cpu_has_avx2_fma() noexcept
    double fastgd_dot_d(const double *a, const double *b, Py_ssize_t n) noexcept
    float fastgd_dot_f(const float *a, const float *b, Py_ssize_t n) noexcept
    void fastgd_dot4_d(const double *w, const double *x0, const double *x1, const double *x2,
                       const double *x3, Py_ssize_t n, double *out) noexcept
    void fastgd_dot4_f(const float *w, const float *x0, const float *x1, const float *x2,
                       const float *x3, Py_ssize_t n, float *out) noexcept
    void fastgd_axpy4_d(double *g, const double *x0, const double *x1, const double *x2,
                        const double *x3, const double *c, Py_ssize_t n) noexcept
    void fastgd_axpy4_f(float *g, const float *x0, const float *x1, const float *x2,
                        const float *x3, const float *c, Py_ssize_t n) noexcept

cdef extern from "fastgd_vmath.h" nogil:
    void fastgd_log_losses(const double *z, const double *y, const double *w, double *g,
                           double *v, Py_ssize_t m) noexcept
    void fastgd_vexp_array(const double *x, double *out, Py_ssize_t n) noexcept
    void fastgd_vlog1p_array(const double *x, double *out, Py_ssize_t n) noexcept
    const double fastgd_exp_c[]
    const double fastgd_log1p_c[]
    const double fastgd_vmath_scalars[]
    int FASTGD_N_EXP_C
    int FASTGD_N_LOG1P_C

OPENMP = bool(FASTGD_OPENMP)
# whether this module was compiled for AVX2 + FMA (it then needs a CPU that has them)
AVX2 = bool(FASTGD_AVX2)


def cpu_has_avx2_fma():
    """Whether the CPU this process runs on has AVX2 and FMA (the ``_kernels_avx2`` build)."""
    return bool(fastgd_cpu_has_avx2_fma())


def openmp_usable():
    """Whether an epoch in this process may share its blocks among OpenMP threads."""
    return bool(FASTGD_OPENMP) and _forksafe.usable


include "_scalars.pxi"

# the accumulator of a gradient: the data's dtype in an epoch, float64 in ``gradient``
ctypedef fused acc_t:
    float
    double

include "_tuning.pxi"

from .. import _vmath

# the constants of fastgd._vmath this module was compiled with (fastgd_tuning.h)
_VMATH_SCALARS = ("EXP_MAX", "EXP_HI", "EXP_LO", "LOG2E", "ROUND_BIAS", "LN2_HI", "LN2_LO",
                  "TINY_K", "TINY_SHIFT", "TINY_SCALE", "SQRT2_M1")
BUILT_VMATH = {name: fastgd_vmath_scalars[j] for j, name in enumerate(_VMATH_SCALARS)}
BUILT_VMATH["EXP_COEFFS"] = tuple(fastgd_exp_c[j] for j in range(FASTGD_N_EXP_C))
BUILT_VMATH["LOG1P_COEFFS"] = tuple(fastgd_log1p_c[j] for j in range(FASTGD_N_LOG1P_C))
_stale = sorted(set(_vmath.C_CONSTANTS) ^ set(BUILT_VMATH)) or sorted(
    name for name, value in BUILT_VMATH.items() if getattr(_vmath, name) != value)
if _stale:
    raise ImportError(
        f"{__name__} was built with other values of {', '.join(_stale)} than fastgd._vmath has; "
        "rebuild it (pip install -e . or python setup.py build_ext --inplace)"
    )


def vexp_values(const double[::1] x):
    """``exp`` of each value of ``x`` by the kernels' vectorisable exp (``fastgd._vmath``),
    compiled as in the log loss's loop: for tests."""
    out = np.empty(x.shape[0])
    cdef double[::1] o = out
    if x.shape[0]:
        fastgd_vexp_array(&x[0], &o[0], x.shape[0])
    return out


def vlog1p_values(const double[::1] x):
    """``log1p`` of each value of ``x`` (``0 <= x <= 1``) by the kernels' vectorisable
    log1p (``fastgd._vmath``), compiled as in the log loss's loop: for tests."""
    out = np.empty(x.shape[0])
    cdef double[::1] o = out
    if x.shape[0]:
        fastgd_vlog1p_array(&x[0], &o[0], x.shape[0])
    return out

# the block rule's constants (fastgd._tuning), read when the module is imported
cdef Py_ssize_t MIN_BLOCK_ROWS = _tuning.MIN_BLOCK_ROWS
cdef Py_ssize_t MAX_BLOCKS = _tuning.MAX_BLOCKS
cdef Py_ssize_t MAX_BUFFER = _tuning.MAX_BUFFER

cdef inline floating _dot(const floating *a, const floating *b, Py_ssize_t n) noexcept nogil:
    if floating is double:
        return fastgd_dot_d(a, b, n)
    else:
        return fastgd_dot_f(a, b, n)


cdef inline void _dot4(const floating *w, const floating *x0, const floating *x1,
                       const floating *x2, const floating *x3, Py_ssize_t n,
                       floating *out) noexcept nogil:
    if floating is double:
        fastgd_dot4_d(w, x0, x1, x2, x3, n, out)
    else:
        fastgd_dot4_f(w, x0, x1, x2, x3, n, out)


cdef inline void _add4(acc_t *G, const floating *x0, const floating *x1, const floating *x2,
                       const floating *x3, const floating *c, Py_ssize_t n) noexcept nogil:
    """``G[:n] += c[0] x0 + c[1] x1 + c[2] x2 + c[3] x3`` in one pass over G (in the
    data's dtype; ``gradient`` adds float32 rows to a float64 G in a plain loop)."""
    cdef Py_ssize_t j
    if floating is double and acc_t is double:
        fastgd_axpy4_d(<double *> G, <const double *> x0, <const double *> x1, <const double *> x2,
                       <const double *> x3, <const double *> c, n)
    elif floating is float and acc_t is float:
        fastgd_axpy4_f(<float *> G, <const float *> x0, <const float *> x1, <const float *> x2,
                       <const float *> x3, <const float *> c, n)
    else:
        for j in range(n):
            G[j] += ((c[0] * x0[j] + c[1] * x1[j]) + (c[2] * x2[j] + c[3] * x3[j]))


cdef inline void _prefetch_row(const floating *x, Py_ssize_t row_bytes, const floating *y,
                               const floating *w, bint unit_sw) noexcept nogil:
    """Prefetch every cache line of a row of X, its row of Y and (unless all weights
    are 1) its sample weight."""
    cdef Py_ssize_t off = 0
    while off < row_bytes:
        FASTGD_PREFETCH((<const char *> x) + off)
        off += CACHE_LINE_BYTES
    if row_bytes > 0:
        FASTGD_PREFETCH((<const char *> x) + row_bytes - 1)  # a row may straddle one more line
    FASTGD_PREFETCH(y)
    if not unit_sw:
        FASTGD_PREFETCH(w)


# The rows one call of the row loops (``_add_rows``) takes, in their order: X's rows
# ``rows[0:count]`` (a batch's place in the epoch's order, or a fold's segment), or X's
# rows ``first:first + count`` as stored when ``rows`` is NULL.
cdef struct Span:
    const int64_t *rows
    Py_ssize_t first, count
    Py_ssize_t fetch    # rows[r + DENSE_PREFETCH_AHEAD] is prefetched while that place is < fetch
    Py_ssize_t K        # outputs
    int64_t loss
    bint unit_sw        # every sample weight is 1 (they are not read)
    bint four           # four rows at a time at any width (else rows of at most FOUR_ROWS_MAX_BYTES)


cdef inline Span _span_part(const Span *s, Py_ssize_t lo, Py_ssize_t hi) noexcept nogil:
    """The places ``lo:hi`` of span ``s``."""
    cdef Span part = s[0]
    part.count = hi - lo
    if part.rows != NULL:
        part.rows = part.rows + lo
        part.fetch -= lo
    else:
        part.first += lo
    return part


cdef inline Py_ssize_t _at(const Span *s, Py_ssize_t r) noexcept nogil:
    """The row of X at place r of the span."""
    return s.rows[r] if s.rows != NULL else s.first + r


cdef inline void _fetch(const floating[:, ::1] X, const floating[:, ::1] Y, const floating[::1] sw,
                        const Span *s, Py_ssize_t r) noexcept nogil:
    """Prefetch the row DENSE_PREFETCH_AHEAD places after place r of the span, if the
    span asks for it (``fetch``)."""
    cdef Py_ssize_t a = r + DENSE_PREFETCH_AHEAD, i
    if a < s.fetch:
        i = s.rows[a]
        _prefetch_row(&X[i, 0], X.shape[1] * sizeof(floating), &Y[i, 0], &sw[i], s.unit_sw)


cdef inline double _block_losses(int64_t loss, double *z, const double *y, const double *w,
                                 double *g, double *v, Py_ssize_t m) noexcept nogil:
    """The weighted losses of a block of m rows of one output, in double: from outputs
    z, targets y and weights w, set g to ``w dloss/dz`` and return ``sum w loss`` (z and
    v: scratch). The log loss in one loop in vector lanes (``fastgd_log_losses``, with
    the vectorisable exp and log1p of ``fastgd._vmath``); the squared error, which has
    no exp to vectorise, row by row."""
    cdef Py_ssize_t r
    cdef double total = 0.0, value
    if loss == LOG:
        fastgd_log_losses(z, y, w, g, v, m)
        for r in range(m):
            total += v[r]
        return total
    for r in range(m):
        value = _loss_grad_single(loss, &z[r], y[r])
        g[r] = w[r] * z[r]
        total += w[r] * value
    return total


cdef double _add_rows_rowwise(const floating[:, ::1] X, const floating[:, ::1] Y,
                              const floating[::1] sw, const floating *W, const Span *s,
                              floating *p, acc_t *G) noexcept nogil:
    """``_add_rows`` for several outputs (or the multinomial loss): row by row (``p``: a
    scratch of K)."""
    cdef Py_ssize_t d = X.shape[1], cols = d + 1, K = s.K
    cdef Py_ssize_t r, i, j, k
    cdef const floating *x
    cdef const floating *w
    cdef floating acc, c, wi
    cdef double total = 0.0
    for r in range(s.count):
        _fetch(X, Y, sw, s, r)
        i = _at(s, r)
        x = &X[i, 0]
        for k in range(K):
            w = W + k * cols
            acc = w[d] + _dot(w, x, d)
            p[k] = acc
        wi = 1 if s.unit_sw else sw[i]
        total += wi * _loss_grad(s.loss, p, &Y[i, 0], K)
        for k in range(K):
            c = wi * p[k]
            for j in range(d):
                G[k * cols + j] += c * x[j]
            G[k * cols + d] += c
    return total


cdef double _add_rows_single(const floating[:, ::1] X, const floating[:, ::1] Y,
                             const floating[::1] sw, const floating *W, const Span *s,
                             floating *p, acc_t *G) noexcept nogil:
    """``_add_rows`` for one output (squared error or log loss), by blocks of rows: the
    block's outputs first (with its targets and weights, in double), then its losses
    in one loop (``_block_losses``), then its gradients, the rows read again (from
    cache). The log loss takes blocks of LOSS_BLOCK_ROWS rows (its exp and log1p run in
    vector lanes over the block); the squared error, with no exp to vectorise, blocks
    of four rows (or one), read again from the nearest cache. Four rows go at a time
    where the span says so (rows in cache) or the rows are at most
    FOUR_ROWS_MAX_BYTES: four dot products in one pass over W (``_dot4``), then the
    four rows' gradients in one pass over G (``_add4``: a quarter of the loads and
    stores of G). ``p``: a scratch of 4."""
    cdef Py_ssize_t d = X.shape[1]
    cdef Py_ssize_t r, q, k, i, j, start, m
    cdef Py_ssize_t rows[4]
    cdef const floating *x
    cdef floating acc, c
    cdef floating c4[4]
    cdef double total = 0.0
    cdef bint four = s.four or d * <Py_ssize_t> sizeof(floating) <= FOUR_ROWS_MAX_BYTES
    cdef Py_ssize_t block = LOSS_BLOCK_ROWS if s.loss == LOG else (4 if four else 1)
    # the block's outputs, targets, weights, gradients and losses
    cdef double zb[LOSS_BLOCK_ROWS]
    cdef double yb[LOSS_BLOCK_ROWS]
    cdef double wb[LOSS_BLOCK_ROWS]
    cdef double gb[LOSS_BLOCK_ROWS]
    cdef double vb[LOSS_BLOCK_ROWS]
    start = 0
    while start < s.count:
        m = s.count - start
        if m > block:
            m = block
        r = 0
        while four and r + 4 <= m:
            q = start + r
            for k in range(4):
                _fetch(X, Y, sw, s, q + k)
                rows[k] = _at(s, q + k)
            _dot4(W, &X[rows[0], 0], &X[rows[1], 0], &X[rows[2], 0], &X[rows[3], 0], d, p)
            for k in range(4):
                i = rows[k]
                acc = W[d] + p[k]
                zb[r + k] = acc
                yb[r + k] = Y[i, 0]
                wb[r + k] = 1 if s.unit_sw else sw[i]
            r += 4
        while r < m:
            q = start + r
            _fetch(X, Y, sw, s, q)
            i = _at(s, q)
            acc = W[d] + _dot(W, &X[i, 0], d)
            zb[r] = acc
            yb[r] = Y[i, 0]
            wb[r] = 1 if s.unit_sw else sw[i]
            r += 1
        total += _block_losses(s.loss, zb, yb, wb, gb, vb, m)
        r = 0
        while four and r + 4 <= m:
            q = start + r
            for k in range(4):
                c4[k] = <floating> gb[r + k]
            _add4(G, &X[_at(s, q), 0], &X[_at(s, q + 1), 0], &X[_at(s, q + 2), 0],
                  &X[_at(s, q + 3), 0], c4, d)
            G[d] += ((c4[0] + c4[1]) + (c4[2] + c4[3]))
            r += 4
        while r < m:
            x = &X[_at(s, start + r), 0]
            c = <floating> gb[r]
            for j in range(d):
                G[j] += c * x[j]
            G[d] += c
            r += 1
        start += m
    return total


cdef inline double _add_rows(const floating[:, ::1] X, const floating[:, ::1] Y,
                             const floating[::1] sw, const floating *W, const Span *s,
                             floating *p, acc_t *G) noexcept nogil:
    """Add the weighted loss gradients of the span's rows at the weights W (K x (d+1), C
    order) to G (K x (d+1)) and return their weighted loss (weights ``sw``). ``p`` is a
    scratch of 4 K. The rows whose place is below ``s.fetch`` are prefetched a few
    places ahead (rows in random order; rows read before, or as stored, are not). One
    output: ``_add_rows_single``; several: ``_add_rows_rowwise``."""
    if s.K == 1 and s.loss != MULTINOMIAL:
        return _add_rows_single(X, Y, sw, W, s, p, G)
    return _add_rows_rowwise(X, Y, sw, W, s, p, G)


cdef inline double _add_block(const floating[:, ::1] X, const floating[:, ::1] Y,
                              const floating[::1] sw, const floating *W, const Span *batch,
                              Py_ssize_t b, Py_ssize_t nb, floating[:, ::1] buf) noexcept nogil:
    """Block b of nb of the batch, summed into buf[b, :K (d+1)] with the rest of
    buf[b] as its scratch outputs; returns its weighted loss."""
    cdef Span part = _span_part(batch, (b * batch.count) // nb, ((b + 1) * batch.count) // nb)
    return _add_rows(X, Y, sw, W, &part, &buf[b, batch.K * (X.shape[1] + 1)], &buf[b, 0])


cdef inline void _update(floating *w, floating *v, const floating *G, floating scale,
                         Py_ssize_t d, floating mu, floating l2, floating eta,
                         floating shrink, bint nesterov) noexcept nogil:
    """The step of d penalised coordinates from their data gradient ``G * scale``:
    ``g = G scale + l2 w; v = mu v + g; w -= eta v`` (Nesterov: ``w -= eta (g + mu v)``),
    then the L1 soft-threshold when ``shrink > 0``. Each loop has no branch inside, so
    that it runs in vector lanes."""
    cdef Py_ssize_t j
    cdef floating g, vj
    if nesterov:
        for j in range(d):
            g = G[j] * scale + l2 * w[j]
            vj = mu * v[j] + g
            v[j] = vj
            w[j] = w[j] - eta * (g + mu * vj)
    else:
        for j in range(d):
            g = G[j] * scale + l2 * w[j]
            vj = mu * v[j] + g
            v[j] = vj
            w[j] = w[j] - eta * vj
    if shrink > 0:
        for j in range(d):
            w[j] = _soft(w[j], shrink)


cdef inline void _update_intercept(floating *w, floating *v, floating g, floating mu,
                                   floating eta, bint nesterov) noexcept nogil:
    """The step of one intercept (never penalised) from its gradient ``g``."""
    cdef floating vj = mu * v[0] + g
    v[0] = vj
    if nesterov:
        w[0] = w[0] - eta * (g + mu * vj)
    else:
        w[0] = w[0] - eta * vj


# The shape of one model's state: slots (weights, the rule's slots, the average) x
# outputs x columns (d + 1), C order.
cdef struct Shape:
    Py_ssize_t slots, K, cols


cdef inline void _step_output(floating *state, const Shape *sh, Py_ssize_t k, const floating *G,
                              floating scale, floating gi, const double *hp, const Rule *r,
                              const Codes *c) noexcept nogil:
    """Output k's step from the data gradient ``G * scale`` of its d weights and ``gi``
    of its intercept, and the running average of its iterates."""
    cdef Py_ssize_t slot = sh.K * sh.cols, d = sh.cols - 1
    cdef floating *w = state + k * sh.cols
    cdef floating *s1 = w + slot
    cdef floating *s2 = w + 2 * slot if r.code == ADAM else s1
    cdef floating mu = <floating> hp[P_MOMENTUM], l2 = <floating> hp[P_L2]
    cdef floating eta = <floating> r.eta
    cdef Py_ssize_t j
    cdef bint shrink = r.shrink > 0
    if r.code == SGD:
        _update(w, s1, G, scale, d, mu, l2, eta, <floating> (eta * hp[P_L1]), c.nesterov)
        if c.fit_intercept:  # without one, the intercept's gradient is dropped
            _update_intercept(&w[d], &s1[d], gi, mu, eta, c.nesterov)
    else:
        for j in range(d):
            _adaptive_coord(&w[j], &s1[j], &s2[j], G[j] * scale + l2 * w[j], r, shrink)
        if c.fit_intercept:
            _adaptive_coord(&w[d], &s1[d], &s2[d], gi, r, False)
    _average(w, w + (sh.slots - 1) * slot, sh.cols, r.avg)


cdef void _step(floating *state, const Shape *sh, floating *G, Py_ssize_t n_rows, int64_t t,
                const double *hp, const Codes *c) noexcept nogil:
    """Update ``t`` from the summed batch gradient G (K x (d+1)) of ``n_rows`` rows;
    zeroes G."""
    cdef Py_ssize_t k, j
    cdef floating inv_b = <floating> (1.0 / n_rows)
    cdef Rule r
    _set_rule(&r, c, t, hp)
    for k in range(sh.K):
        _step_output(state, sh, k, &G[k * sh.cols], inv_b, G[k * sh.cols + sh.cols - 1] * inv_b, hp, &r, c)
        for j in range(sh.cols):
            G[k * sh.cols + j] = 0


cdef double _sgd_rows(const floating[:, ::1] X, const floating[:, ::1] Y,
                      const floating[::1] sw, const Span *s, floating *state, const Shape *sh,
                      const double *hp, const Codes *c, floating *p) noexcept nogil:
    """SGD over the span's rows, one step per row starting after update ``c.t``; returns
    their weighted loss (each taken before its row's step). The same arithmetic as a
    one-row batch through ``_add_rows`` and ``_step`` (``G = sw_i dloss_i/dp x_i``,
    scaled by ``1 / 1``), fused into one pass over the row's features."""
    cdef Py_ssize_t d = X.shape[1], K = sh.K
    cdef Py_ssize_t r, i, k
    cdef const floating *x
    cdef const floating *w
    cdef floating acc, wi
    cdef double total = 0.0
    cdef int64_t t = c.t
    cdef bint single = K == 1 and c.loss != MULTINOMIAL
    cdef Rule rule
    for r in range(s.count):
        _fetch(X, Y, sw, s, r)
        i = _at(s, r)
        x = &X[i, 0]
        for k in range(K):
            w = state + k * sh.cols
            acc = w[d] + _dot(w, x, d)
            p[k] = acc
        wi = 1 if s.unit_sw else sw[i]
        if single:
            total += wi * _loss_grad_single(c.loss, p, Y[i, 0])
        else:
            total += wi * _loss_grad(c.loss, p, &Y[i, 0], K)
        t += 1
        _set_rule(&rule, c, t, hp)
        for k in range(K):
            # the row's gradient: x times wi dloss/dp, and that factor for the intercept
            _step_output(state, sh, k, x, wi * p[k], wi * p[k], hp, &rule, c)
    return total


cdef bint _all_ones(const floating[::1] sw) noexcept nogil:
    """Whether every weight is exactly 1 (no sample or class weights): the loops then
    skip reading them, one memory access less per row in random order, with the same
    arithmetic (``1 * x`` is ``x``)."""
    cdef Py_ssize_t i
    for i in range(sw.shape[0]):
        if sw[i] != 1:
            return False
    return True


cdef inline Py_ssize_t _n_blocks(Py_ssize_t rows, Py_ssize_t K, Py_ssize_t cols) noexcept nogil:
    """``fastgd._tuning.n_blocks`` in C, for the nogil loop (block ``b`` of ``nb`` is
    rows ``b * rows // nb`` to ``(b + 1) * rows // nb`` of the batch)."""
    cdef Py_ssize_t b = rows // MIN_BLOCK_ROWS
    if b > MAX_BLOCKS:
        b = MAX_BLOCKS
    if b > MAX_BUFFER // (K * cols):
        b = MAX_BUFFER // (K * cols)
    return b if b > 1 else 1


def c_n_blocks(Py_ssize_t rows, Py_ssize_t n_outputs, Py_ssize_t n_cols):
    """The block count the epoch's C loop computes (``_n_blocks``), for tests: it must
    equal ``fastgd._tuning.n_blocks``."""
    return _n_blocks(rows, n_outputs, n_cols)


# the full-batch block rule, written once (the Numba kernels export the same function)
block_bounds = _tuning.block_bounds


cdef bint _in_range(const int64_t[::1] order, int64_t n) noexcept:
    """Whether every entry of ``order`` is in [0, n) (one pass, no temporaries)."""
    cdef Py_ssize_t i
    cdef bint ok = True
    with nogil:
        for i in range(order.shape[0]):
            ok &= (order[i] >= 0) & (order[i] < n)
    return ok


def _order_in_range(order, n):
    """``in_range`` for ``fastgd._checks.check_epoch``: ``_in_range`` (one pass, no
    temporaries) on an int64 array."""
    return _in_range(order, n)


# The entry points' checks are fastgd._checks', run on the typed memoryviews as arrays.
# (Each is a function of its own, called with the memoryviews: the entry points keep
# their size, and with it the C compiler's inlining of the loops into them.)
def _check_epoch(X, Y, sw, order, state, hp, codes):
    """``fastgd._checks.check_epoch`` on the typed memoryviews, as arrays."""
    _checks.check_epoch(np.asarray(X), np.asarray(Y), np.asarray(sw), np.asarray(order),
                        np.asarray(state), np.asarray(hp), np.asarray(codes), "cython",
                        in_range=_order_in_range)


def _check_gradient(X, Y, sw, W, codes, G):
    """``fastgd._checks.check_gradient`` on the typed memoryviews, as arrays."""
    _checks.check_gradient(np.asarray(X), np.asarray(Y), np.asarray(sw), np.asarray(W),
                           np.asarray(codes), np.asarray(G), "cython")


def epoch(const floating[:, ::1] X, const floating[:, ::1] Y, const floating[::1] sw,
          const int64_t[::1] order, floating[:, :, ::1] state, const double[::1] hp,
          const int64_t[::1] codes):
    """One epoch in place; returns the sum of ``sw_i * loss_i``. See the NumPy reference."""
    _check_epoch(X, Y, sw, order, state, hp, codes)
    cdef Py_ssize_t n = X.shape[0], K = state.shape[1], cols = state.shape[2]
    cdef Codes c = _read_codes(&codes[0])
    cdef Shape sh = Shape(state.shape[0], K, cols)
    cdef Py_ssize_t batch = min(c.batch, max(n, 1))
    cdef int64_t t = c.t
    cdef int n_threads = <int> max(1, min(codes[P.N_THREADS], MAX_BLOCKS))
    dtype = np.float32 if floating is float else np.float64
    # blocks of the largest batch (a shorter last batch has as many blocks or fewer)
    cdef Py_ssize_t max_blocks = _n_blocks(batch, K, cols)
    # Each block sums into its own row of ``buf``: its gradient (K * cols values), then
    # its scratch outputs (4 K values). Rows are padded to whole cache lines plus one, so
    # threads summing neighbouring blocks never write to the same cache line.
    cdef Py_ssize_t line = CACHE_LINE_BYTES // sizeof(floating)
    cdef Py_ssize_t pad = ((K * cols + 4 * K + line - 1) // line + 1) * line
    cdef floating[:, ::1] buf = np.zeros((max_blocks, pad), dtype=dtype)
    cdef double[::1] block_loss = np.zeros(max_blocks)
    cdef floating *S = &state[0, 0, 0]
    cdef const floating *W = S
    if not (FASTGD_OPENMP and _forksafe.usable):
        n_threads = 1
    elif n_threads > 1 and max_blocks > 1:
        _forksafe.used = True
    cdef double total = 0.0
    cdef Py_ssize_t start, stop, rows, nb, b, j
    cdef Py_ssize_t size = K * cols
    cdef floating *G = &buf[0, 0]
    cdef floating *Gb
    cdef int nt
    cdef Span whole, part
    cdef Py_ssize_t parallel_min = _tuning.PARALLEL_MIN_VALUES  # (read at each call)
    with nogil:
        # the epoch's rows in its order, prefetched ahead
        whole = Span(&order[0], 0, n, n, K, c.loss, _all_ones(sw), False)
        start = 0
        if batch == 1:
            total = _sgd_rows(X, Y, sw, &whole, S, &sh, &hp[0], &c, &buf[0, size])
            start = n
        elif batch >= n:  # a full batch is summed over X as stored (any order gives the same sum)
            whole.rows = NULL
            whole.fetch = 0
        while start < n:
            stop = start + batch
            if stop > n:
                stop = n
            rows = stop - start
            part = _span_part(&whole, start, stop)
            nb = _n_blocks(rows, K, cols)
            if nb == 1:
                total += _add_rows(X, Y, sw, W, &part, &buf[0, size], G)
            else:
                nt = n_threads if n_threads < nb else <int> nb
                if rows * cols < parallel_min:
                    nt = 1  # too little work to be worth waking other threads
                if nt > 1:  # (a region with one thread would still enter OpenMP)
                    for b in prange(nb, num_threads=nt, schedule="dynamic", chunksize=1):
                        block_loss[b] = _add_block(X, Y, sw, W, &part, b, nb, buf)
                else:
                    for b in range(nb):
                        block_loss[b] = _add_block(X, Y, sw, W, &part, b, nb, buf)
                total += block_loss[0]
                for b in range(1, nb):
                    total += block_loss[b]
                    Gb = &buf[b, 0]
                    for j in range(size):
                        G[j] += Gb[j]
                        Gb[j] = 0
            t += 1
            _step(S, &sh, G, rows, t, &hp[0], &c)
            start = stop
    return total


def gradient(const floating[:, ::1] X, const floating[:, ::1] Y, const floating[::1] sw,
             const floating[:, ::1] W, const int64_t[::1] codes, double[:, ::1] G):
    """Add ``sum_i sw_i * dloss_i/dW`` over all rows (in storage order) to ``G`` (K, d+1),
    float64 whatever the data's dtype, and return ``sum_i sw_i * loss_i``; no step.
    See ``fastgd._numpy.kernels.gradient``. One thread (the Dask driver runs one call
    per block, in parallel over its workers)."""
    _check_gradient(X, Y, sw, W, codes, G)
    cdef Py_ssize_t n = X.shape[0], K = W.shape[0]
    dtype = np.float32 if floating is float else np.float64
    cdef floating[::1] p = np.empty(4 * K, dtype=dtype)
    cdef double total = 0.0
    # X's rows as stored, every weight read
    cdef Span rows = Span(NULL, 0, n, 0, K, codes[P.LOSS], False, False)
    if n == 0:
        return 0.0
    with nogil:
        total = _add_rows(X, Y, sw, &W[0, 0], &rows, &p[0], &G[0, 0])
    return total


# --------------------------------------------------------------------------- many models
# ``path_epoch`` (contract and reference: ``fastgd._numpy.path``; the same loops as the
# Numba kernel ``fastgd._numba.path``): M models on one pass over the rows, dense or CSR.
# A fold's models step (``_step``, on the model's rows of state, hp and codes) when the
# fold's batch is complete, batches being counted per fold, so each model takes exactly
# the steps of its own fit.
#
# Dense rows (``_path_dense_part``) go by windows of PATH_WINDOW_ROWS rows of the order:
# each row of a window is dealt to the segment of each fold that trains on it, and a
# fold's segment is handed to each of the fold's models (``_path_flush``) when the fold's
# batch is complete (then they step) or at the window's end (without a step: the weights
# do not change within a batch, so the batch's gradient may be summed in parts). A row
# is read from memory once, by the fold's first model (which prefetches ahead), and
# from cache by the fold's other models and the other folds' models; each model takes
# the segment's rows with the single-model epoch's row loops (``_add_rows``: one output
# by blocks, four rows at a time at any width, the rows being in cache; several outputs
# row by row). CSR rows (``_path_part_csr``) go one at a time, every model whose
# fold trains on the row taking it in turn.
#
# The models are dealt round-robin to ``parts`` (``fastgd._checks.model_parts``), one
# OpenMP thread each; no model is written by two parts, each part keeps its folds' counters,
# segments and scratch in its own rows of the buffers, and whether the rows are read as
# stored (every fold with a model in one full batch) is decided for all parts
# together, so the result is bit for bit the same for any number of parts.


# One many-models call: its arrays (void where in the data's dtype: each loop casts to
# its ``floating``) and sizes, shared by its parts (which write only their models' rows).
cdef struct Path:
    void *state                # (M, S, K, cols)
    void *G                    # (M, K, cols): the models' batch gradients
    const void *scale          # (F,): each fold's loss scale
    const double *hp           # (M, N_HP)
    const int64_t *codes       # (M, N_CODES)
    double *losses             # (M,)
    int64_t *t                 # (M,): each model's update count
    const int64_t *order       # (n,)
    const uint8_t *train       # (n, F): which folds train on each row
    const int64_t *model_fold  # (M,)
    const int64_t *model_part  # (M,)
    const int64_t *n_f         # (F,): each fold's rows
    const int64_t *batch       # (F,): each fold's batch size
    const int64_t *models      # (F, M): each fold's models, in model order
    const int64_t *n_models    # (F,)
    Py_ssize_t n, M, F, n_hp, n_codes
    Shape shape                # one model's state
    bint stored                # the rows are read as stored (every fold in one full batch)
    bint unit_sw               # every sample weight is 1 (dense rows)


# One part's scratch: its own rows of the call's buffers.
cdef struct Part:
    Py_ssize_t part
    int64_t *cnt       # (F,) rows in the fold's current batch
    int64_t *seen      # (F,) rows of the fold seen in this epoch
    int64_t *seg_len   # (F,) rows in the fold's segment (dense)
    uint8_t *mine      # (F,) the fold has a model in this part
    uint8_t *live      # (F,) the fold trains on the current row (CSR)
    uint8_t *done      # (F,) the current row completes the fold's batch (CSR)
    int64_t *segs      # (F, PATH_WINDOW_ROWS) the folds' segments (dense)
    void *p            # (4 K) scratch outputs, in the data's dtype


cdef inline void _path_start(const Path *P, Part *q) noexcept nogil:
    """Zero the part's counters; mark its folds and reset its models' losses and update
    counts."""
    cdef Py_ssize_t f, m
    for f in range(P.F):
        q.cnt[f] = 0
        q.seen[f] = 0
        q.seg_len[f] = 0
        q.mine[f] = False
    for m in range(P.M):
        f = P.model_fold[m]
        if f >= 0 and P.model_part[m] == q.part:
            q.mine[f] = True
            P.losses[m] = 0.0
            P.t[m] = P.codes[m * P.n_codes + P_T_START]


cdef inline void _path_step(floating *state, floating *G, const Path *P, Py_ssize_t m,
                            Py_ssize_t n_rows) noexcept nogil:
    """Model m's step from its batch gradient of ``n_rows`` rows (already scaled)."""
    cdef Codes c = _read_codes(P.codes + m * P.n_codes)
    cdef Py_ssize_t size = P.shape.K * P.shape.cols
    P.t[m] += 1
    _step(state + m * P.shape.slots * size, &P.shape, G + m * size, n_rows, P.t[m], P.hp + m * P.n_hp, &c)


cdef inline void _path_flush(const floating[:, ::1] X, const floating[:, ::1] Y, const floating[::1] sw,
                             const Path *P, Part *q, Py_ssize_t f, bint step) noexcept nogil:
    """Hand fold f's segment (``q.seg_len[f]`` rows) to each of the part's models of the
    fold: each adds the rows' weighted gradients to its G at its current weights, and
    their weighted loss (weights ``sw``) times ``scale[f]`` to its loss; the fold's
    first model prefetches the rows ahead, the others find them in cache. With ``step``
    the fold's batch (``q.cnt[f]`` rows) is complete: each model's G is multiplied by
    ``scale[f]`` and the model steps."""
    cdef Py_ssize_t size = P.shape.K * P.shape.cols, s = q.seg_len[f]
    cdef Py_ssize_t k, m, j
    cdef floating *state = <floating *> P.state
    cdef floating *G = <floating *> P.G
    cdef floating c = (<const floating *> P.scale)[f]
    cdef floating *g
    cdef double total
    cdef Span seg = Span(q.segs + f * PATH_WINDOW_ROWS, 0, s, s, P.shape.K,
                         P.codes[P_LOSS], P.unit_sw, True)
    for k in range(P.n_models[f]):
        m = P.models[f * P.M + k]
        if P.model_part[m] != q.part:
            continue
        g = G + m * size
        total = _add_rows(X, Y, sw, state + m * P.shape.slots * size, &seg, <floating *> q.p, g)
        seg.fetch = 0  # (the first model prefetched the rows)
        P.losses[m] += c * total
        if step:
            for j in range(size):
                g[j] = g[j] * c
            _path_step(state, G, P, m, q.cnt[f])


cdef void _path_dense_part(const floating[:, ::1] X, const floating[:, ::1] Y, const floating[::1] sw,
                           const Path *P, Part *q) noexcept nogil:
    """The epoch of the part's models on dense rows, read in windows of
    PATH_WINDOW_ROWS rows of the order (as stored when ``P.stored``): each row is dealt
    to the segment of each of the part's folds that trains on it; a segment is handed
    to its fold's models (``_path_flush``) when the fold's batch is complete (cnt ==
    batch, or the fold's last row: seen == n_f), with a step, and at the window's end
    without one."""
    cdef Py_ssize_t F = P.F
    cdef Py_ssize_t w0, w1, ii, i, f
    _path_start(P, q)
    w0 = 0
    while w0 < P.n:
        w1 = w0 + PATH_WINDOW_ROWS
        if w1 > P.n:
            w1 = P.n
        for ii in range(w0, w1):
            i = ii if P.stored else P.order[ii]
            for f in range(F):
                if not q.mine[f] or P.train[i * F + f] == 0:
                    continue
                q.segs[f * PATH_WINDOW_ROWS + q.seg_len[f]] = i
                q.seg_len[f] += 1
                q.cnt[f] += 1
                q.seen[f] += 1
                if q.cnt[f] == P.batch[f] or q.seen[f] == P.n_f[f]:
                    _path_flush(X, Y, sw, P, q, f, True)
                    q.seg_len[f] = 0
                    q.cnt[f] = 0
        # the window's end: every fold hands over what it holds, without a step
        for f in range(F):
            if q.mine[f] and q.seg_len[f] > 0:
                _path_flush(X, Y, sw, P, q, f, False)
                q.seg_len[f] = 0
        w0 = w1


# CSR rows: the arrays of a matrix with int64 indices (data in the data's dtype)
cdef struct Csr:
    const void *data
    const int64_t *indices
    const int64_t *indptr


cdef void _path_part_csr(const Csr *x, const floating[:, ::1] Y, const floating[::1] sw,
                         const Path *P, Part *q) noexcept nogil:
    """The epoch of the part's models on CSR rows, one row at a time (in storage order
    when ``P.stored``, else in the order)."""
    cdef Py_ssize_t M = P.M, K = P.shape.K, F = P.F, d = P.shape.cols - 1
    cdef Py_ssize_t size = K * P.shape.cols
    cdef floating *state = <floating *> P.state
    cdef floating *G = <floating *> P.G
    cdef const floating *scale = <const floating *> P.scale
    cdef const floating *data = <const floating *> x.data
    cdef floating *p = <floating *> q.p
    cdef int64_t loss = P.codes[P_LOSS]
    cdef bint single = K == 1 and loss != MULTINOMIAL
    cdef Py_ssize_t ii, i, f, m, k, j, nnz = 0
    cdef const floating *xv = NULL
    cdef const int64_t *xi = NULL
    cdef floating *w
    cdef floating *g
    cdef floating acc, c, wi
    cdef double value
    cdef bint hit, anyf
    _path_start(P, q)
    for ii in range(P.n):
        i = ii if P.stored else P.order[ii]
        anyf = False
        for f in range(F):
            hit = q.mine[f] and P.train[i * F + f] != 0
            q.live[f] = hit
            if hit:
                q.cnt[f] += 1
                q.seen[f] += 1
                q.done[f] = q.cnt[f] == P.batch[f] or q.seen[f] == P.n_f[f]
                anyf = True
        if not anyf:
            continue
        xv = data + x.indptr[i]
        xi = x.indices + x.indptr[i]
        nnz = x.indptr[i + 1] - x.indptr[i]
        for m in range(M):
            f = P.model_fold[m]
            if f < 0 or not q.live[f] or P.model_part[m] != q.part:
                continue
            wi = sw[i] * scale[f]
            for k in range(K):
                w = state + m * P.shape.slots * size + k * P.shape.cols
                acc = w[d]
                for j in range(nnz):
                    acc += w[xi[j]] * xv[j]
                p[k] = acc
            if single:
                value = _loss_grad_single(loss, p, Y[i, 0])
            else:
                value = _loss_grad(loss, p, &Y[i, 0], K)
            P.losses[m] += wi * value
            for k in range(K):
                c = wi * p[k]
                g = G + m * size + k * P.shape.cols
                for j in range(nnz):
                    g[xi[j]] += c * xv[j]
                g[d] += c
            if q.done[f]:
                _path_step(state, G, P, m, q.cnt[f])
        for f in range(F):
            if q.live[f] and q.done[f]:
                q.cnt[f] = 0


cdef void _path_run(floating[:, :, :, ::1] state, tuple arrays, X, tuple csr, int parts):
    """The epoch of ``path_epoch`` on checked arguments: ``arrays`` is (Y, sw, order,
    train, scale, hp, codes, model_fold, losses, model_part), ``csr`` (data, indices,
    indptr) for CSR rows or None for dense rows X. Sets up the scratch of ``parts``
    parts, the folds' row counts, batch sizes and models, then runs the parts (OpenMP
    threads when ``parts > 1``)."""
    Y_, sw_, order_, train_, scale_, hp_, codes_, model_fold_, losses_, model_part_ = arrays
    cdef const floating[:, ::1] Xd = X
    cdef const floating[:, ::1] Y = Y_
    cdef const floating[::1] sw = sw_
    cdef const int64_t[::1] order = order_
    cdef const uint8_t[:, ::1] train = train_
    cdef const floating[::1] scale = scale_
    cdef const double[:, ::1] hp = hp_
    cdef const int64_t[:, ::1] codes = codes_
    cdef const int64_t[::1] model_fold = model_fold_
    cdef double[::1] losses = losses_
    cdef const int64_t[::1] model_part = model_part_
    cdef const floating[::1] data
    cdef const int64_t[::1] indices
    cdef const int64_t[::1] indptr
    cdef Py_ssize_t n = order.shape[0], M = state.shape[0], K = state.shape[2], F = train.shape[1]
    cdef Py_ssize_t i, f, m, part
    cdef bint sparse = csr is not None
    cdef Csr x = Csr(NULL, NULL, NULL)
    dtype = np.float32 if floating is float else np.float64
    if sparse:
        data, indices, indptr = csr
        x.indptr = &indptr[0]
        if data.shape[0]:
            x.data = &data[0]
            x.indices = &indices[0]
    # each part's scratch rows padded to whole cache lines plus one, so that two parts
    # never write to the same line: counters (cnt, seen, the segments' lengths), flags,
    # the dense segments (a window of rows per fold) and the outputs (4 K)
    cdef Py_ssize_t line = CACHE_LINE_BYTES
    cdef int64_t[:, ::1] counts = np.zeros((parts, ((3 * F * 8 + line - 1) // line + 1) * line // 8),
                                           dtype=np.int64)
    cdef uint8_t[:, ::1] flags = np.zeros((parts, ((3 * F + line - 1) // line + 1) * line), dtype=np.uint8)
    cdef int64_t[:, ::1] segs = np.zeros((parts, 1 if sparse else F * PATH_WINDOW_ROWS + line // 8),
                                         dtype=np.int64)
    cdef Py_ssize_t per = line // sizeof(floating)
    cdef floating[:, ::1] outputs = np.zeros((parts, ((4 * K + per - 1) // per + 1) * per), dtype=dtype)
    cdef floating[:, :, ::1] G = np.zeros((M, K, state.shape[3]), dtype=dtype)
    cdef int64_t[::1] t = np.zeros(M, dtype=np.int64)
    cdef int64_t[::1] n_f = np.zeros(F, dtype=np.int64)
    cdef int64_t[::1] batch = np.ones(F, dtype=np.int64)
    cdef uint8_t[::1] has = np.zeros(F, dtype=np.uint8)
    # each fold's models, in model order (the dense loop hands a fold's segment to them)
    cdef int64_t[:, ::1] models = np.zeros((F, M), dtype=np.int64)
    cdef int64_t[::1] n_models = np.zeros(F, dtype=np.int64)
    parts_np = np.zeros(parts * sizeof(Part), dtype=np.uint8)
    cdef Part *q = <Part *> <size_t> parts_np.ctypes.data
    cdef Path P
    P.state = &state[0, 0, 0, 0]
    P.G = &G[0, 0, 0]
    P.scale = &scale[0] if F else NULL
    P.hp = &hp[0, 0]
    P.codes = &codes[0, 0]
    P.losses = &losses[0]
    P.t = &t[0]
    P.order = &order[0] if n else NULL
    P.train = &train[0, 0] if n and F else NULL
    P.model_fold = &model_fold[0]
    P.model_part = &model_part[0]
    P.n_f = &n_f[0] if F else NULL
    P.batch = &batch[0] if F else NULL
    P.models = &models[0, 0] if F else NULL
    P.n_models = &n_models[0] if F else NULL
    P.n = n
    P.M = M
    P.F = F
    P.n_hp = hp.shape[1]
    P.n_codes = codes.shape[1]
    P.shape = Shape(state.shape[1], K, state.shape[3])
    for part in range(parts):
        q[part] = Part(part, &counts[part, 0], &counts[part, F], &counts[part, 2 * F], &flags[part, 0],
                       &flags[part, F], &flags[part, 2 * F], &segs[part, 0], &outputs[part, 0])
    with nogil:
        for i in range(n):
            for f in range(F):
                n_f[f] += train[i, f]
        for m in range(M):
            f = model_fold[m]
            if f >= 0:
                has[f] = 1
                batch[f] = codes[m, P_BATCH_SIZE]
                models[f, n_models[f]] = m
                n_models[f] += 1
        # every fold with a model in one full batch: the rows are read as stored (decided
        # for all parts together, so that the sums do not depend on the thread count)
        P.stored = True
        for f in range(F):
            if has[f] and batch[f] < n_f[f]:
                P.stored = False
        P.unit_sw = False if sparse else _all_ones(sw)
        if parts > 1:
            for part in prange(parts, num_threads=parts, schedule="static", chunksize=1):
                if sparse:
                    _path_part_csr(&x, Y, sw, &P, &q[part])
                else:
                    _path_dense_part(Xd, Y, sw, &P, &q[part])
        elif sparse:
            _path_part_csr(&x, Y, sw, &P, &q[0])
        else:
            _path_dense_part(Xd, Y, sw, &P, &q[0])


def _path_parts(codes, model_fold):
    """``(model_part, parts)``: the models dealt round-robin to ``codes[0, N_THREADS]``
    parts at most (``fastgd._checks.model_parts``); one part where this process may
    not run OpenMP regions (``_forksafe``)."""
    threads = int(codes[0, P.N_THREADS])
    if threads > 1 and not (FASTGD_OPENMP and _forksafe.usable):
        threads = 1
    model_part, parts = _checks.model_parts(model_fold, threads)
    if parts > 1:
        _forksafe.used = True
    return model_part, parts


def _path_epoch(X, csr, x_dtype, shape, args):
    """Check the arguments ``args`` (Y, sw, order, train, scale, state, hp, codes,
    model_fold, losses) of an epoch on rows of ``shape`` (n, d) (``fastgd._checks.check_path``;
    the rows' own checks are the caller's), then run it (``_path_run``): CSR rows when
    ``csr`` is (data, indices, indptr), else dense rows X."""
    n, d = shape
    Y, sw, order, train, scale, state, hp, codes, model_fold, losses = args
    dtype = _checks.check_path(n, d, *args, "cython", in_range=_order_in_range)
    if x_dtype != dtype:
        raise ValueError(f"X has dtype {x_dtype} but Y has {dtype}")
    if state.shape[0] == 0:
        return
    model_part, parts = _path_parts(codes, model_fold)
    arrays = (Y, sw, order, train, scale, hp, codes, model_fold, losses, model_part)
    if dtype == np.float32:
        _path_run[float](state, arrays, X, csr, parts)
    else:
        _path_run[double](state, arrays, X, csr, parts)


def path_epoch_dense(X, Y, sw, order, train, scale, state, hp, codes, model_fold, losses):
    """One epoch of M models in place on dense C-contiguous rows X; ``losses[m]`` is set
    to model m's sum of ``w_i * loss_i``. See ``fastgd._numpy.path.path_epoch``.

    The arguments are checked (``fastgd._checks.check_path``) before any loop runs."""
    _checks.check_floats((("X", X),))
    if X.ndim != 2:
        raise ValueError(f"X must be 2-D, got {X.ndim} dimensions")
    _path_epoch(X, None, X.dtype, X.shape, (Y, sw, order, train, scale, state, hp, codes, model_fold, losses))


def path_epoch_csr(X, Y, sw, order, train, scale, state, hp, codes, model_fold, losses):
    """``path_epoch_dense`` for CSR rows: X is a ``scipy.sparse`` CSR matrix with int64
    indices. The step is the dense one (O(K d) per update), as in the NumPy reference.

    The arguments are checked (``fastgd._checks.check_csr_arrays`` and ``check_path``)
    before any loop runs."""
    n, d = (int(s) for s in X.shape)
    _checks.check_csr_arrays(X.data, X.indices, X.indptr, n, d)
    _path_epoch(None, (X.data, X.indices, X.indptr), X.data.dtype, (n, d),
                (Y, sw, order, train, scale, state, hp, codes, model_fold, losses))
