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

Single-output rows (squared error with one target, log loss) go in blocks of
``LOSS_BLOCK_ROWS``: the block's outputs first, then its losses in one loop that runs in
vector lanes (the log loss's ``exp``/``log1p`` are the branch-free ones of
``fastgd._vmath``, in C in ``fastgd_log_losses``, compiled without reassociation), then
its gradients. ``vexp_values``/``vlog1p_values`` run those two functions over arrays,
for tests.

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
    /* whether this CPU runs the AVX2 + FMA build (x86-64 with GCC or Clang only) */
    static int fastgd_cpu_has_avx2_fma(void) {
    #if (defined(__GNUC__) || defined(__clang__)) && (defined(__x86_64__) || defined(__i386__))
        __builtin_cpu_init();
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    #else
        return 0;
    #endif
    }
    /* Dot products with 16 independent partial sums (combined in a fixed order), so
       that the multiply-adds do not wait on each other; the compiler maps them onto
       vector lanes. Deterministic: the same inputs give the same bits on every call. */
    #define FASTGD_DOT(NAME, T)                                                      \
    static inline T NAME(const T *a, const T *b, Py_ssize_t n) {                     \
        T s[16] = {0}, tail = 0;                                                     \
        Py_ssize_t j = 0, k;                                                         \
        for (; j + 16 <= n; j += 16)                                                 \
            for (k = 0; k < 16; k++) s[k] += a[j + k] * b[j + k];                    \
        for (; j < n; j++) tail += a[j] * b[j];                                      \
        for (k = 0; k < 8; k++) s[k] += s[k + 8];                                    \
        for (k = 0; k < 4; k++) s[k] += s[k + 4];                                    \
        return ((s[0] + s[2]) + (s[1] + s[3])) + tail;                               \
    }
    FASTGD_DOT(fastgd_dot_d, double)
    FASTGD_DOT(fastgd_dot_f, float)
    /* Four rows' dot products with one vector w in one pass (L partial sums each). */
    #define FASTGD_DOT4(NAME, T, L)                                                  \
    static inline void NAME(const T *w, const T *x0, const T *x1, const T *x2,       \
                            const T *x3, Py_ssize_t n, T *out) {                     \
        T a0[L] = {0}, a1[L] = {0}, a2[L] = {0}, a3[L] = {0};                        \
        T t0 = 0, t1 = 0, t2 = 0, t3 = 0, s0, s1, s2, s3;                            \
        Py_ssize_t j = 0, k;                                                         \
        for (; j + L <= n; j += L)                                                   \
            for (k = 0; k < L; k++) {                                                \
                T wk = w[j + k];                                                     \
                a0[k] += wk * x0[j + k]; a1[k] += wk * x1[j + k];                    \
                a2[k] += wk * x2[j + k]; a3[k] += wk * x3[j + k];                    \
            }                                                                        \
        for (; j < n; j++) {                                                         \
            T wj = w[j];                                                             \
            t0 += wj * x0[j]; t1 += wj * x1[j]; t2 += wj * x2[j]; t3 += wj * x3[j];  \
        }                                                                            \
        s0 = t0; s1 = t1; s2 = t2; s3 = t3;                                          \
        for (k = 0; k < L; k++) {                                                    \
            s0 += a0[k]; s1 += a1[k]; s2 += a2[k]; s3 += a3[k];                      \
        }                                                                            \
        out[0] = s0; out[1] = s1; out[2] = s2; out[3] = s3;                          \
    }
    /* (one vector of partial sums per row: 4 doubles or 8 floats on AVX2) */
    FASTGD_DOT4(fastgd_dot4_d, double, 4)
    FASTGD_DOT4(fastgd_dot4_f, float, 8)
    /* The many-models kernels' four-row products (rows in cache): the same sums as
       FASTGD_DOT4 written with GCC/Clang vector types, which the compiler keeps in
       registers (FASTGD_DOT4's arrays of partial sums it compiled with transposes and
       spills: 4x slower at 100 columns), and the four rows' gradients added to g in one
       pass. Kept apart from the single-model kernels, whose compiled code (and with it
       their results' last bits) stays as it is. */
    #include <string.h>
    #if defined(__GNUC__) || defined(__clang__)
    #define FASTGD_VDOT4(NAME, T, L)                                                 \
    static inline void NAME(const T *w, const T *x0, const T *x1, const T *x2,       \
                            const T *x3, Py_ssize_t n, T *out) {                     \
        typedef T V __attribute__((vector_size(L * sizeof(T))));                     \
        V a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0}, wv, v;                             \
        T t0 = 0, t1 = 0, t2 = 0, t3 = 0, s0, s1, s2, s3;                            \
        Py_ssize_t j = 0; int k;                                                     \
        for (; j + L <= n; j += L) {                                                 \
            memcpy(&wv, w + j, sizeof wv);                                           \
            memcpy(&v, x0 + j, sizeof v); a0 += wv * v;                              \
            memcpy(&v, x1 + j, sizeof v); a1 += wv * v;                              \
            memcpy(&v, x2 + j, sizeof v); a2 += wv * v;                              \
            memcpy(&v, x3 + j, sizeof v); a3 += wv * v;                              \
        }                                                                            \
        for (; j < n; j++) {                                                         \
            T wj = w[j];                                                             \
            t0 += wj * x0[j]; t1 += wj * x1[j]; t2 += wj * x2[j]; t3 += wj * x3[j];  \
        }                                                                            \
        s0 = t0; s1 = t1; s2 = t2; s3 = t3;                                          \
        for (k = 0; k < L; k++) {                                                    \
            s0 += a0[k]; s1 += a1[k]; s2 += a2[k]; s3 += a3[k];                      \
        }                                                                            \
        out[0] = s0; out[1] = s1; out[2] = s2; out[3] = s3;                          \
    }
    #define FASTGD_AXPY4(NAME, T, L)                                                 \
    static inline void NAME(T *g, const T *x0, const T *x1, const T *x2,             \
                            const T *x3, T c0, T c1, T c2, T c3, Py_ssize_t n) {     \
        typedef T V __attribute__((vector_size(L * sizeof(T))));                     \
        V gv, v, u, e;                                                               \
        Py_ssize_t j = 0;                                                            \
        for (; j + L <= n; j += L) {                                                 \
            memcpy(&gv, g + j, sizeof gv);                                           \
            memcpy(&v, x0 + j, sizeof v); u = c0 * v;                                \
            memcpy(&v, x1 + j, sizeof v); u += c1 * v;                               \
            memcpy(&v, x2 + j, sizeof v); e = c2 * v;                                \
            memcpy(&v, x3 + j, sizeof v); e += c3 * v;                               \
            gv += u + e;                                                             \
            memcpy(g + j, &gv, sizeof gv);                                           \
        }                                                                            \
        for (; j < n; j++) g[j] += (c0 * x0[j] + c1 * x1[j]) + (c2 * x2[j] + c3 * x3[j]); \
    }
    #else
    #define FASTGD_VDOT4(NAME, T, L) FASTGD_DOT4(NAME, T, L)
    #define FASTGD_AXPY4(NAME, T, L)                                                 \
    static inline void NAME(T *g, const T *x0, const T *x1, const T *x2,             \
                            const T *x3, T c0, T c1, T c2, T c3, Py_ssize_t n) {     \
        Py_ssize_t j;                                                                \
        for (j = 0; j < n; j++) g[j] += (c0 * x0[j] + c1 * x1[j]) + (c2 * x2[j] + c3 * x3[j]); \
    }
    #endif
    FASTGD_VDOT4(fastgd_vdot4_d, double, 4)
    FASTGD_VDOT4(fastgd_vdot4_f, float, 8)
    FASTGD_AXPY4(fastgd_axpy4_d, double, 4)
    FASTGD_AXPY4(fastgd_axpy4_f, float, 8)
    #ifdef __AVX2__
    #define FASTGD_AVX2 1
    #else
    #define FASTGD_AVX2 0
    #endif
    /* The log loss of a block of outputs with a vectorisable exp and log1p: the method
       and the constants (FASTGD_* from fastgd/_vmath.py, through fastgd_tuning.h) are
       fastgd._vmath's. Straight-line code (selects, integer views by memcpy), so the
       block's loop runs in vector lanes. The range reduction needs its subtractions in
       their order: these functions are compiled without reassociation (GCC: the
       optimize attribute, which also keeps them out of line, in their own function;
       Clang: its fp pragma), whatever the extension's flags. */
    #include <math.h>
    #include <stdint.h>
    #include <string.h>
    #include "fastgd_tuning.h"
    #if defined(__clang__)
    #define FASTGD_IN_ORDER
    #define FASTGD_IN_ORDER_BODY _Pragma("clang fp reassociate(off)")
    #elif defined(__GNUC__)
    #define FASTGD_IN_ORDER __attribute__((optimize("no-associative-math")))
    #define FASTGD_IN_ORDER_BODY
    #else
    #define FASTGD_IN_ORDER
    #define FASTGD_IN_ORDER_BODY
    #endif
    static const double fastgd_exp_c[] = FASTGD_EXP_COEFFS;
    static const double fastgd_log1p_c[] = FASTGD_LOG1P_COEFFS;
    #define FASTGD_N_EXP_C ((int) (sizeof(fastgd_exp_c) / sizeof(double)))
    #define FASTGD_N_LOG1P_C ((int) (sizeof(fastgd_log1p_c) / sizeof(double)))
    static inline FASTGD_IN_ORDER double fastgd_vexp(double x) {
        FASTGD_IN_ORDER_BODY
        double xs = x > FASTGD_EXP_HI ? FASTGD_EXP_HI : x, kf, r, q, p, y;
        int32_t k;
        int tiny, j;
        uint64_t bits;
        xs = xs < FASTGD_EXP_LO ? FASTGD_EXP_LO : xs;
        xs = xs == xs ? xs : 0.0;  /* (a NaN is given back at the end) */
        k = (int32_t) (xs * FASTGD_LOG2E + (FASTGD_ROUND_BIAS + 0.5)) - FASTGD_ROUND_BIAS;
        kf = (double) k;
        r = (xs - kf * FASTGD_LN2_HI) - kf * FASTGD_LN2_LO;
        q = fastgd_exp_c[FASTGD_N_EXP_C - 1];
        for (j = FASTGD_N_EXP_C - 2; j >= 0; j--)
            q = q * r + fastgd_exp_c[j];
        q = q * r + 1.0;
        p = q * r + 1.0;
        tiny = k < FASTGD_TINY_K;
        k = tiny ? k + FASTGD_TINY_SHIFT : k;
        memcpy(&bits, &p, sizeof bits);
        bits += (uint64_t) (int64_t) k << 52;
        memcpy(&y, &bits, sizeof y);
        y = tiny ? y * FASTGD_TINY_SCALE : y;
        y = x > FASTGD_EXP_MAX ? HUGE_VAL : y;
        return x != x ? x : y;
    }
    static inline FASTGD_IN_ORDER double fastgd_vlog1p(double x) {  /* 0 <= x <= 1, or NaN */
        FASTGD_IN_ORDER_BODY
        int big = x > FASTGD_SQRT2_M1, j;
        double f = big ? (x - 1.0) * 0.5 : x, kf = big ? 1.0 : 0.0;
        double s = f / (2.0 + f), z = s * s, R, hfsq;
        R = fastgd_log1p_c[FASTGD_N_LOG1P_C - 1];
        for (j = FASTGD_N_LOG1P_C - 2; j >= 0; j--)
            R = R * z + fastgd_log1p_c[j];
        R = R * z;
        hfsq = 0.5 * f * f;
        return kf * FASTGD_LN2_HI - ((hfsq - (s * (hfsq + R) + kf * FASTGD_LN2_LO)) - f);
    }
    /* The log loss of m rows: g[r] = w[r] dloss/dz, v[r] = w[r] loss of output z[r],
       target y[r] (the same arithmetic as _loss_grad_single, with the sign cases as
       selects). */
    static FASTGD_IN_ORDER void fastgd_log_losses(const double *restrict z, const double *restrict y,
                                                  const double *restrict w, double *restrict g,
                                                  double *restrict v, Py_ssize_t m) {
        FASTGD_IN_ORDER_BODY
        Py_ssize_t r;
        for (r = 0; r < m; r++) {
            double zr = z[r], yr = y[r], e = fastgd_vexp(-fabs(zr));
            double value = fastgd_vlog1p(e) + (zr > 0 ? zr * (1.0 - yr) : -(yr * zr));
            double sig = (zr > 0 ? 1.0 : e) / (1.0 + e);
            g[r] = w[r] * (sig - yr);
            v[r] = w[r] * value;
        }
    }
    /* for tests: the two functions over arrays, compiled as in the loss loop */
    static FASTGD_IN_ORDER void fastgd_vexp_array(const double *restrict x, double *restrict out, Py_ssize_t n) {
        FASTGD_IN_ORDER_BODY
        Py_ssize_t i;
        for (i = 0; i < n; i++) out[i] = fastgd_vexp(x[i]);
    }
    static FASTGD_IN_ORDER void fastgd_vlog1p_array(const double *restrict x, double *restrict out, Py_ssize_t n) {
        FASTGD_IN_ORDER_BODY
        Py_ssize_t i;
        for (i = 0; i < n; i++) out[i] = fastgd_vlog1p(x[i]);
    }
    static const double fastgd_vmath_scalars[] = {
        FASTGD_EXP_MAX, FASTGD_EXP_HI, FASTGD_EXP_LO, FASTGD_LOG2E, FASTGD_ROUND_BIAS, FASTGD_LN2_HI,
        FASTGD_LN2_LO, FASTGD_TINY_K, FASTGD_TINY_SHIFT, FASTGD_TINY_SCALE, FASTGD_SQRT2_M1};
    """
    void FASTGD_PREFETCH(const void *p) noexcept nogil
    int FASTGD_OPENMP
    int FASTGD_AVX2
    int fastgd_cpu_has_avx2_fma() noexcept nogil
    double fastgd_dot_d(const double *a, const double *b, Py_ssize_t n) noexcept nogil
    float fastgd_dot_f(const float *a, const float *b, Py_ssize_t n) noexcept nogil
    void fastgd_dot4_d(const double *w, const double *x0, const double *x1, const double *x2,
                       const double *x3, Py_ssize_t n, double *out) noexcept nogil
    void fastgd_dot4_f(const float *w, const float *x0, const float *x1, const float *x2,
                       const float *x3, Py_ssize_t n, float *out) noexcept nogil
    void fastgd_vdot4_d(const double *w, const double *x0, const double *x1, const double *x2,
                        const double *x3, Py_ssize_t n, double *out) noexcept nogil
    void fastgd_vdot4_f(const float *w, const float *x0, const float *x1, const float *x2,
                        const float *x3, Py_ssize_t n, float *out) noexcept nogil
    void fastgd_axpy4_d(double *g, const double *x0, const double *x1, const double *x2, const double *x3,
                        double c0, double c1, double c2, double c3, Py_ssize_t n) noexcept nogil
    void fastgd_axpy4_f(float *g, const float *x0, const float *x1, const float *x2, const float *x3,
                        float c0, float c1, float c2, float c3, Py_ssize_t n) noexcept nogil
    void fastgd_log_losses(const double *z, const double *y, const double *w, double *g,
                           double *v, Py_ssize_t m) noexcept nogil
    void fastgd_vexp_array(const double *x, double *out, Py_ssize_t n) noexcept nogil
    void fastgd_vlog1p_array(const double *x, double *out, Py_ssize_t n) noexcept nogil
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


cdef inline void _vdot4(const floating *w, const floating *x0, const floating *x1,
                        const floating *x2, const floating *x3, Py_ssize_t n,
                        floating *out) noexcept nogil:
    if floating is double:
        fastgd_vdot4_d(w, x0, x1, x2, x3, n, out)
    else:
        fastgd_vdot4_f(w, x0, x1, x2, x3, n, out)


cdef inline void _axpy4(floating *g, const floating *x0, const floating *x1, const floating *x2,
                        const floating *x3, floating c0, floating c1, floating c2, floating c3,
                        Py_ssize_t n) noexcept nogil:
    if floating is double:
        fastgd_axpy4_d(g, x0, x1, x2, x3, c0, c1, c2, c3, n)
    else:
        fastgd_axpy4_f(g, x0, x1, x2, x3, c0, c1, c2, c3, n)


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


cdef inline double _single_losses(int64_t loss, const double *z, const double *y,
                                  const double *w, double *g, double *v,
                                  Py_ssize_t m) noexcept nogil:
    """The weighted log losses of a block of m rows of one output, in double: from outputs z, targets y and weights w, set g to
    ``w dloss/dz`` and return ``sum w loss`` (v: scratch). One loop each, in vector lanes
    (the log loss: ``fastgd_log_losses``, with the vectorisable exp and log1p of
    ``fastgd._vmath``)."""
    cdef Py_ssize_t r
    cdef double total = 0.0
    fastgd_log_losses(z, y, w, g, v, m)  # (only the log loss reaches the block loops)
    for r in range(m):
        total += v[r]
    return total


cdef double _add_rows_rowwise(const floating[:, ::1] X, const floating[:, ::1] Y,
                      const floating[::1] sw, const floating[:, ::1] W,
                      const int64_t[::1] order, Py_ssize_t lo, Py_ssize_t hi,
                      int64_t loss, floating *p, acc_t *G, bint unit_sw,
                      bint shuffled) noexcept nogil:
    """Add the weighted loss gradients of rows lo:hi to G (K x (d+1), C order) and return
    their weighted loss: rows order[lo:hi] when ``shuffled`` (prefetching the rows a few
    places ahead in ``order``), else X's rows lo:hi as stored. ``p`` is a scratch of 4 K.
    Every loss but the one-output log loss (see ``_add_rows``): each row visited once.

    With one output (the squared error) and rows of at most FOUR_ROWS_MAX_BYTES, rows
    go four at a time: four dot products, then one pass over G adding the four rows'
    gradients (a quarter of the loads and stores of G)."""
    cdef Py_ssize_t n = X.shape[0], d = X.shape[1], K = W.shape[0], cols = d + 1
    cdef Py_ssize_t ii, i, j, k, r, ahead
    cdef Py_ssize_t row_bytes = d * sizeof(floating)
    cdef Py_ssize_t rows[4]
    cdef const floating *x
    cdef const floating *x0
    cdef const floating *x1
    cdef const floating *x2
    cdef const floating *x3
    cdef const floating *w
    cdef floating acc, c, wi, c0, c1, c2, c3
    cdef double total = 0.0
    ii = lo
    if K == 1 and loss != MULTINOMIAL and row_bytes <= FOUR_ROWS_MAX_BYTES:
        w = &W[0, 0]
        while ii + 4 <= hi:
            for r in range(4):
                if shuffled:
                    ahead = ii + r + DENSE_PREFETCH_AHEAD
                    if ahead < n:
                        _prefetch_row(&X[order[ahead], 0], row_bytes, &Y[order[ahead], 0],
                                      &sw[order[ahead]], unit_sw)
                    rows[r] = order[ii + r]
                else:
                    rows[r] = ii + r
            x0 = &X[rows[0], 0]
            x1 = &X[rows[1], 0]
            x2 = &X[rows[2], 0]
            x3 = &X[rows[3], 0]
            _dot4(w, x0, x1, x2, x3, d, p)
            for r in range(4):
                i = rows[r]
                p[r] = w[d] + p[r]
                wi = 1 if unit_sw else sw[i]
                total += wi * _loss_grad_single(loss, &p[r], Y[i, 0])
                p[r] = wi * p[r]
            c0 = p[0]
            c1 = p[1]
            c2 = p[2]
            c3 = p[3]
            for j in range(d):
                G[j] += ((c0 * x0[j] + c1 * x1[j]) + (c2 * x2[j] + c3 * x3[j]))
            G[d] += ((c0 + c1) + (c2 + c3))
            ii += 4
    while ii < hi:
        if shuffled:
            ahead = ii + DENSE_PREFETCH_AHEAD
            if ahead < n:
                _prefetch_row(&X[order[ahead], 0], row_bytes, &Y[order[ahead], 0],
                              &sw[order[ahead]], unit_sw)
            i = order[ii]
        else:
            i = ii
        x = &X[i, 0]
        for k in range(K):
            w = &W[k, 0]
            acc = w[d] + _dot(w, x, d)
            p[k] = acc
        wi = 1 if unit_sw else sw[i]
        total += wi * _loss_grad(loss, p, &Y[i, 0], K)
        for k in range(K):
            c = wi * p[k]
            for j in range(d):
                G[k * cols + j] += c * x[j]
            G[k * cols + d] += c
        ii += 1
    return total


cdef double _add_rows_log(const floating[:, ::1] X, const floating[:, ::1] Y,
                      const floating[::1] sw, const floating[:, ::1] W,
                      const int64_t[::1] order, Py_ssize_t lo, Py_ssize_t hi,
                      int64_t loss, floating *p, acc_t *G, bint unit_sw,
                      bint shuffled) noexcept nogil:
    """Add the weighted loss gradients of rows lo:hi to G (K x (d+1), C order) and return
    their weighted loss: rows order[lo:hi] when ``shuffled`` (prefetching the rows a few
    places ahead in ``order``), else X's rows lo:hi as stored. ``p`` is a scratch of 4 K.

    For one output of the log loss only (``_add_rows`` sends every other loss to
    ``_add_rows_rowwise``). Rows go in blocks of LOSS_BLOCK_ROWS: the
    block's outputs first (with its targets and weights, in double), then its losses in
    one vectorised loop (``_single_losses``), then its gradients, the rows read again
    (from cache). Rows of at most FOUR_ROWS_MAX_BYTES go four at a time there: four dot
    products, then one pass over G adding the four rows' gradients (a quarter of the
    loads and stores of G)."""
    cdef Py_ssize_t n = X.shape[0], d = X.shape[1]
    cdef Py_ssize_t ii, i, j, r, q, ahead, start, m
    cdef Py_ssize_t row_bytes = d * sizeof(floating)
    cdef Py_ssize_t rows[4]
    cdef const floating *x
    cdef const floating *x0
    cdef const floating *x1
    cdef const floating *x2
    cdef const floating *x3
    cdef const floating *w
    cdef floating acc, c, c0, c1, c2, c3
    cdef double total = 0.0
    cdef bint four = row_bytes <= FOUR_ROWS_MAX_BYTES
    # the block's outputs, targets, weights, gradients and losses
    cdef double zb[LOSS_BLOCK_ROWS]
    cdef double yb[LOSS_BLOCK_ROWS]
    cdef double wb[LOSS_BLOCK_ROWS]
    cdef double gb[LOSS_BLOCK_ROWS]
    cdef double vb[LOSS_BLOCK_ROWS]
    w = &W[0, 0]
    start = lo
    while start < hi:
        m = hi - start
        if m > LOSS_BLOCK_ROWS:
            m = LOSS_BLOCK_ROWS
        r = 0
        while four and r + 4 <= m:
            ii = start + r
            for q in range(4):
                if shuffled:
                    ahead = ii + q + DENSE_PREFETCH_AHEAD
                    if ahead < n:
                        _prefetch_row(&X[order[ahead], 0], row_bytes, &Y[order[ahead], 0],
                                      &sw[order[ahead]], unit_sw)
                    rows[q] = order[ii + q]
                else:
                    rows[q] = ii + q
            _dot4(w, &X[rows[0], 0], &X[rows[1], 0], &X[rows[2], 0], &X[rows[3], 0], d, p)
            for q in range(4):
                i = rows[q]
                acc = w[d] + p[q]
                zb[r + q] = acc
                yb[r + q] = Y[i, 0]
                wb[r + q] = 1 if unit_sw else sw[i]
            r += 4
        while r < m:
            ii = start + r
            if shuffled:
                ahead = ii + DENSE_PREFETCH_AHEAD
                if ahead < n:
                    _prefetch_row(&X[order[ahead], 0], row_bytes, &Y[order[ahead], 0],
                                  &sw[order[ahead]], unit_sw)
                i = order[ii]
            else:
                i = ii
            acc = w[d] + _dot(w, &X[i, 0], d)
            zb[r] = acc
            yb[r] = Y[i, 0]
            wb[r] = 1 if unit_sw else sw[i]
            r += 1
        total += _single_losses(loss, zb, yb, wb, gb, vb, m)
        r = 0
        while four and r + 4 <= m:
            ii = start + r
            for q in range(4):
                rows[q] = order[ii + q] if shuffled else ii + q
            x0 = &X[rows[0], 0]
            x1 = &X[rows[1], 0]
            x2 = &X[rows[2], 0]
            x3 = &X[rows[3], 0]
            c0 = <floating> gb[r]
            c1 = <floating> gb[r + 1]
            c2 = <floating> gb[r + 2]
            c3 = <floating> gb[r + 3]
            for j in range(d):
                G[j] += ((c0 * x0[j] + c1 * x1[j]) + (c2 * x2[j] + c3 * x3[j]))
            G[d] += ((c0 + c1) + (c2 + c3))
            r += 4
        while r < m:
            i = order[start + r] if shuffled else start + r
            x = &X[i, 0]
            c = <floating> gb[r]
            for j in range(d):
                G[j] += c * x[j]
            G[d] += c
            r += 1
        start += m
    return total


cdef inline double _add_rows(const floating[:, ::1] X, const floating[:, ::1] Y,
                             const floating[::1] sw, const floating[:, ::1] W,
                             const int64_t[::1] order, Py_ssize_t lo, Py_ssize_t hi,
                             int64_t loss, floating *p, acc_t *G, bint unit_sw,
                             bint shuffled) noexcept nogil:
    """Add the weighted loss gradients of rows lo:hi to G and return their weighted loss
    (see ``_add_rows_rowwise``): the one-output log loss by blocks of LOSS_BLOCK_ROWS
    through the vectorised exp/log1p (``_add_rows_log``), every other loss row by row,
    each row visited once (the squared error has no exp to vectorise)."""
    if W.shape[0] == 1 and loss == LOG:
        return _add_rows_log(X, Y, sw, W, order, lo, hi, loss, p, G, unit_sw, shuffled)
    return _add_rows_rowwise(X, Y, sw, W, order, lo, hi, loss, p, G, unit_sw, shuffled)


cdef inline double _add_block(const floating[:, ::1] X, const floating[:, ::1] Y,
                              const floating[::1] sw, const floating[:, ::1] W,
                              const int64_t[::1] order, Py_ssize_t start, Py_ssize_t rows,
                              Py_ssize_t b, Py_ssize_t nb, int64_t loss, Py_ssize_t size,
                              floating[:, ::1] buf, bint unit_sw, bint shuffled) noexcept nogil:
    """Block b of nb of the batch order[start:start + rows], summed into buf[b, :size]
    with buf[b, size:] as its scratch outputs; returns its weighted loss."""
    return _add_rows(X, Y, sw, W, order, start + (b * rows) // nb, start + ((b + 1) * rows) // nb,
                     loss, &buf[b, size], &buf[b, 0], unit_sw, shuffled)


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


cdef inline void _adaptive_update(floating[:, :, ::1] state, Py_ssize_t k, const floating *G,
                                  floating scale, Py_ssize_t d, floating l2,
                                  const Rule *r) noexcept nogil:
    """The adaptive rules' step of output k's d penalised coordinates from their data
    gradient ``G * scale``: ``g = G scale + l2 w``."""
    cdef Py_ssize_t j
    cdef floating *w = &state[0, k, 0]
    cdef floating *s1 = &state[1, k, 0]
    cdef floating *s2 = &state[2, k, 0] if r.code == ADAM else s1
    cdef bint shrink = r.shrink > 0
    for j in range(d):
        _adaptive_coord(&w[j], &s1[j], &s2[j], G[j] * scale + l2 * w[j], r, shrink)


cdef inline void _adaptive_intercept(floating[:, :, ::1] state, Py_ssize_t k, Py_ssize_t d,
                                     floating g, const Rule *r) noexcept nogil:
    cdef floating *s1 = &state[1, k, d]
    cdef floating *s2 = &state[2, k, d] if r.code == ADAM else s1
    _adaptive_coord(&state[0, k, d], s1, s2, g, r, False)


cdef void _step(floating[:, :, ::1] state, floating *G, Py_ssize_t n_rows, int64_t t,
                const double[::1] hp, bint nesterov, bint fit_intercept,
                int64_t schedule, int64_t optimizer, int64_t t_a) noexcept nogil:
    """One update from the summed batch gradient G of ``n_rows`` rows; zeroes G."""
    cdef Py_ssize_t K = state.shape[1], cols = state.shape[2], d = cols - 1
    cdef Py_ssize_t k, j
    cdef Py_ssize_t last = state.shape[0] - 1
    cdef double eta_d = _step_size(schedule, t, hp[P_ETA0], hp[P_POWER_T], hp[P_OPTIMAL_T0], hp[P_ALPHA])
    cdef floating mu = <floating> hp[P_MOMENTUM]
    cdef floating l2 = <floating> hp[P_L2]
    cdef floating eta = <floating> eta_d
    cdef floating inv_b = <floating> (1.0 / n_rows)
    cdef floating shrink = <floating> (eta * hp[P_L1])
    cdef Rule r
    _set_rule(&r, optimizer, t, t_a, eta_d, hp)
    for k in range(K):
        if optimizer == SGD:
            _update(&state[0, k, 0], &state[1, k, 0], &G[k * cols], inv_b, d, mu, l2, eta,
                    shrink, nesterov)
            if fit_intercept:  # without one, the intercept's gradient is dropped
                _update_intercept(&state[0, k, d], &state[1, k, d], G[k * cols + d] * inv_b,
                                  mu, eta, nesterov)
        else:
            _adaptive_update(state, k, &G[k * cols], inv_b, d, l2, &r)
            if fit_intercept:
                _adaptive_intercept(state, k, d, G[k * cols + d] * inv_b, &r)
        _average(&state[0, k, 0], &state[last, k, 0], cols, r.avg)
        for j in range(cols):
            G[k * cols + j] = 0


cdef double _sgd_rows(const floating[:, ::1] X, const floating[:, ::1] Y,
                      const floating[::1] sw, const int64_t[::1] order, Py_ssize_t lo,
                      Py_ssize_t hi, floating[:, :, ::1] state, int64_t t,
                      const double[::1] hp, int64_t loss, int64_t schedule, bint nesterov,
                      bint fit_intercept, floating *p, bint unit_sw, int64_t optimizer,
                      int64_t t_a) noexcept nogil:
    """SGD over rows order[lo:hi], one step per row starting after update ``t``; returns
    their weighted loss (each taken before its row's step). The same arithmetic as a
    one-row batch through ``_add_rows`` and ``_step`` (``G = sw_i dloss_i/dp x_i``,
    scaled by ``1 / 1``), fused into one pass over the row's features."""
    cdef Py_ssize_t n = X.shape[0], d = X.shape[1], K = state.shape[1]
    cdef Py_ssize_t ii, i, j, k, off, ahead
    cdef Py_ssize_t last = state.shape[0] - 1
    cdef Py_ssize_t row_bytes = d * sizeof(floating)
    cdef const floating *x
    cdef floating *w
    cdef floating acc, c, wi
    cdef floating mu = <floating> hp[P_MOMENTUM]
    cdef floating l2 = <floating> hp[P_L2]
    cdef floating eta, shrink
    cdef double eta_d
    cdef double total = 0.0
    cdef bint single = K == 1 and loss != MULTINOMIAL
    cdef Rule r
    _set_rule(&r, optimizer, t + 1, t_a, hp[P_ETA0], hp)  # (set again at each row below)
    for ii in range(lo, hi):
        ahead = ii + DENSE_PREFETCH_AHEAD
        if ahead < n:
            _prefetch_row(&X[order[ahead], 0], row_bytes, &Y[order[ahead], 0],
                          &sw[order[ahead]], unit_sw)
        i = order[ii]
        x = &X[i, 0]
        for k in range(K):
            w = &state[0, k, 0]
            acc = w[d] + _dot(w, x, d)
            p[k] = acc
        wi = 1 if unit_sw else sw[i]
        if single:
            total += wi * _loss_grad_single(loss, p, Y[i, 0])
        else:
            total += wi * _loss_grad(loss, p, &Y[i, 0], K)
        t += 1
        eta_d = _step_size(schedule, t, hp[P_ETA0], hp[P_POWER_T], hp[P_OPTIMAL_T0], hp[P_ALPHA])
        eta = <floating> eta_d
        shrink = <floating> (eta * hp[P_L1])
        if optimizer != SGD or t_a > 0:
            _set_rule(&r, optimizer, t, t_a, eta_d, hp)
        else:
            r.avg = 0
        for k in range(K):
            c = wi * p[k]
            if optimizer == SGD:
                _update(&state[0, k, 0], &state[1, k, 0], x, c, d, mu, l2, eta, shrink, nesterov)
                if fit_intercept:
                    _update_intercept(&state[0, k, d], &state[1, k, d], c, mu, eta, nesterov)
            else:
                _adaptive_update(state, k, x, c, d, l2, &r)
                if fit_intercept:
                    _adaptive_intercept(state, k, d, c, &r)
            _average(&state[0, k, 0], &state[last, k, 0], d + 1, r.avg)
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
    cdef int64_t loss = codes[P.LOSS]
    cdef int64_t schedule = codes[P.SCHEDULE]
    cdef bint nesterov = codes[P.NESTEROV] != 0
    cdef bint fit_intercept = codes[P.FIT_INTERCEPT] != 0
    cdef int64_t optimizer = codes[P.OPTIMIZER]
    cdef int64_t t_a = codes[P.AVERAGE_START]
    cdef Py_ssize_t batch = min(codes[P.BATCH_SIZE], max(n, 1))
    cdef int64_t t = codes[P.T_START]
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
    cdef const floating[:, ::1] W = state[0]
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
    cdef bint unit_sw
    cdef Py_ssize_t parallel_min = _tuning.PARALLEL_MIN_VALUES  # (read at each call)
    # a full batch is summed over X as stored (any order gives the same sum), streaming
    cdef bint shuffled = batch < n
    with nogil:
        unit_sw = _all_ones(sw)
        start = 0
        if batch == 1:
            total = _sgd_rows(X, Y, sw, order, 0, n, state, t, hp, loss, schedule, nesterov,
                              fit_intercept, &buf[0, size], unit_sw, optimizer, t_a)
            start = n
        while start < n:
            stop = start + batch
            if stop > n:
                stop = n
            rows = stop - start
            nb = _n_blocks(rows, K, cols)
            if nb == 1:
                total += _add_rows(X, Y, sw, W, order, start, stop, loss, &buf[0, size], G, unit_sw,
                                   shuffled)
            else:
                nt = n_threads if n_threads < nb else <int> nb
                if rows * cols < parallel_min:
                    nt = 1  # too little work to be worth waking other threads
                if nt > 1:  # (a region with one thread would still enter OpenMP)
                    for b in prange(nb, num_threads=nt, schedule="dynamic", chunksize=1):
                        block_loss[b] = _add_block(X, Y, sw, W, order, start, rows, b, nb, loss,
                                                   size, buf, unit_sw, shuffled)
                else:
                    for b in range(nb):
                        block_loss[b] = _add_block(X, Y, sw, W, order, start, rows, b, nb, loss,
                                                   size, buf, unit_sw, shuffled)
                total += block_loss[0]
                for b in range(1, nb):
                    total += block_loss[b]
                    Gb = &buf[b, 0]
                    for j in range(size):
                        G[j] += Gb[j]
                        Gb[j] = 0
            t += 1
            _step(state, G, rows, t, hp, nesterov, fit_intercept, schedule, optimizer, t_a)
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
    order_np = np.arange(n, dtype=np.int64)
    cdef const int64_t[::1] order = order_np
    cdef int64_t loss = codes[P.LOSS]
    dtype = np.float32 if floating is float else np.float64
    cdef floating[::1] p = np.empty(4 * K, dtype=dtype)
    cdef double total = 0.0
    if n == 0:
        return 0.0
    with nogil:
        total = _add_rows(X, Y, sw, W, order, 0, n, loss, &p[0], &G[0, 0], False, False)
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
# the segment's rows in the single-model epoch's patterns (``_path_segment``: one output
# by blocks, four rows at a time at any width, the rows being in cache; several outputs
# row by row). CSR rows (``_path_part_csr``) go one at a time, every model whose
# fold trains on the row taking it in turn.
#
# The models are dealt round-robin to ``parts`` (``fastgd._checks.model_parts``), one
# OpenMP thread each; no model is written by two parts, each part keeps its folds' counters,
# segments and scratch in its own rows of the buffers, and whether the rows are read as
# stored (every fold with a model in one full batch) is decided for all parts
# together, so the result is bit for bit the same for any number of parts.


# positions in codes as C constants (the many-models loop reads each model's row of codes)
cdef Py_ssize_t P_LOSS = P.LOSS, P_SCHEDULE = P.SCHEDULE, P_OPTIMIZER = P.OPTIMIZER
cdef Py_ssize_t P_NESTEROV = P.NESTEROV, P_FIT_INTERCEPT = P.FIT_INTERCEPT, P_T_START = P.T_START
cdef Py_ssize_t P_BATCH_SIZE = P.BATCH_SIZE, P_AVERAGE_START = P.AVERAGE_START


cdef double _path_segment(const floating[:, ::1] X, const floating[:, ::1] Y, const floating[::1] sw,
                          const floating *W, Py_ssize_t K, const int64_t *rows, Py_ssize_t s,
                          int64_t loss, bint single, floating *p, floating *G, bint unit_sw,
                          bint fetch) noexcept nogil:
    """Add the weighted loss gradients of the rows ``rows[:s]`` at the weights W
    (K x (d+1), C order) to G (K x (d+1)); return their weighted loss (weights ``sw``,
    unscaled). ``p`` is a scratch of 4 K; with ``fetch`` the rows a few places ahead in
    ``rows`` are prefetched (the fold's first model: the others find them in cache).

    One output (``single``): blocks of up to LOSS_BLOCK_ROWS rows, the outputs four rows
    at a time (one pass over W for four dot products, ``_vdot4``), the block's losses in
    one loop (the log loss's vectorised exp/log1p, ``_single_losses``; the squared error
    row by row), the gradients four rows at a time (one pass over G, ``_axpy4``). The rows are in
    cache for every model but the fold's first, so four at a time pays at any row width
    (the single-model epoch takes wide rows one at a time: ``FOUR_ROWS_MAX_BYTES``).
    Several outputs: row by row (``_loss_grad``). The loops of ``_add_rows_log`` and
    ``_add_rows_rowwise`` on a row list, kept apart from them so that the single-model
    epoch's compiled code, and with it its results' last bits, stay as they were."""
    cdef Py_ssize_t d = X.shape[1], cols = d + 1
    cdef Py_ssize_t row_bytes = d * sizeof(floating)
    cdef Py_ssize_t r, q, a, i, i0, i1, i2, i3, j, k, start, m
    cdef const floating *x
    cdef const floating *x0
    cdef const floating *x1
    cdef const floating *x2
    cdef const floating *x3
    cdef const floating *w
    cdef floating acc, c, wi, c0, c1, c2, c3
    cdef double total = 0.0, value
    # the block's outputs, targets, weights, gradients and losses
    cdef double zb[LOSS_BLOCK_ROWS]
    cdef double yb[LOSS_BLOCK_ROWS]
    cdef double wb[LOSS_BLOCK_ROWS]
    cdef double gb[LOSS_BLOCK_ROWS]
    cdef double vb[LOSS_BLOCK_ROWS]
    if not single:
        for r in range(s):
            if fetch and r + DENSE_PREFETCH_AHEAD < s:
                a = rows[r + DENSE_PREFETCH_AHEAD]
                _prefetch_row(&X[a, 0], row_bytes, &Y[a, 0], &sw[a], unit_sw)
            i = rows[r]
            x = &X[i, 0]
            for k in range(K):
                w = W + k * cols
                acc = w[d] + _dot(w, x, d)
                p[k] = acc
            wi = 1 if unit_sw else sw[i]
            total += wi * _loss_grad(loss, p, &Y[i, 0], K)
            for k in range(K):
                c = wi * p[k]
                for j in range(d):
                    G[k * cols + j] += c * x[j]
                G[k * cols + d] += c
        return total
    w = W
    start = 0
    while start < s:
        m = s - start
        if m > LOSS_BLOCK_ROWS:
            m = LOSS_BLOCK_ROWS
        r = 0
        while r + 4 <= m:
            q = start + r
            for k in range(4):
                if fetch:
                    a = q + k + DENSE_PREFETCH_AHEAD
                    if a < s:
                        _prefetch_row(&X[rows[a], 0], row_bytes, &Y[rows[a], 0], &sw[rows[a]], unit_sw)
            _vdot4(w, &X[rows[q], 0], &X[rows[q + 1], 0], &X[rows[q + 2], 0], &X[rows[q + 3], 0], d, p)
            for k in range(4):
                i = rows[q + k]
                acc = w[d] + p[k]
                zb[r + k] = acc
                yb[r + k] = Y[i, 0]
                wb[r + k] = 1 if unit_sw else sw[i]
            r += 4
        while r < m:
            q = start + r
            if fetch and q + DENSE_PREFETCH_AHEAD < s:
                a = rows[q + DENSE_PREFETCH_AHEAD]
                _prefetch_row(&X[a, 0], row_bytes, &Y[a, 0], &sw[a], unit_sw)
            i = rows[q]
            acc = w[d] + _dot(w, &X[i, 0], d)
            zb[r] = acc
            yb[r] = Y[i, 0]
            wb[r] = 1 if unit_sw else sw[i]
            r += 1
        if loss == LOG:
            total += _single_losses(loss, zb, yb, wb, gb, vb, m)
        else:  # the squared error: cheap, row by row
            for r in range(m):
                value = _loss_grad_single(loss, &zb[r], yb[r])
                gb[r] = wb[r] * zb[r]
                total += wb[r] * value
        r = 0
        while r + 4 <= m:
            q = start + r
            i0 = rows[q]
            i1 = rows[q + 1]
            i2 = rows[q + 2]
            i3 = rows[q + 3]
            x0 = &X[i0, 0]
            x1 = &X[i1, 0]
            x2 = &X[i2, 0]
            x3 = &X[i3, 0]
            c0 = <floating> gb[r]
            c1 = <floating> gb[r + 1]
            c2 = <floating> gb[r + 2]
            c3 = <floating> gb[r + 3]
            _axpy4(G, x0, x1, x2, x3, c0, c1, c2, c3, d)
            G[d] += ((c0 + c1) + (c2 + c3))
            r += 4
        while r < m:
            x = &X[rows[start + r], 0]
            c = <floating> gb[r]
            for j in range(d):
                G[j] += c * x[j]
            G[d] += c
            r += 1
        start += m
    return total


cdef inline void _path_flush(const floating[:, ::1] X, const floating[:, ::1] Y, const floating[::1] sw,
                             const floating[::1] scale, floating[:, :, :, ::1] state,
                             const double[:, ::1] hp, const int64_t[:, ::1] codes, double[::1] losses,
                             floating[:, :, ::1] G, int64_t[::1] t, const int64_t[:, ::1] models,
                             const int64_t[::1] n_models, Py_ssize_t f, const int64_t *seg, Py_ssize_t s,
                             bint step, Py_ssize_t n_rows, floating *p, bint single,
                             bint unit_sw, const int64_t[::1] model_part, Py_ssize_t part) noexcept nogil:
    """Hand fold f's segment, the rows ``seg[:s]``, to each of the fold's models: each
    adds the rows' weighted gradients to its G at its current weights, and their
    weighted loss (weights ``sw``) times ``scale[f]`` to its loss; the fold's first
    model prefetches the rows ahead, the others find them in cache. With ``step`` the
    fold's batch (of ``n_rows`` rows) is complete: each model's G is multiplied by
    ``scale[f]`` and the model steps. Only the fold's models of part ``part``
    (``model_part``) are run."""
    cdef Py_ssize_t K = state.shape[2], size = K * state.shape[3]
    cdef Py_ssize_t q, m, j
    cdef int64_t loss = codes[0, P_LOSS]
    cdef int64_t schedule = codes[0, P_SCHEDULE]
    cdef int64_t optimizer = codes[0, P_OPTIMIZER]
    cdef bint nesterov = codes[0, P_NESTEROV] != 0
    cdef bint fit_intercept = codes[0, P_FIT_INTERCEPT] != 0
    cdef floating c = scale[f]
    cdef floating *g
    cdef double total
    cdef bint first = True
    for q in range(n_models[f]):
        m = models[f, q]
        if model_part[m] != part:
            continue
        g = &G[m, 0, 0]
        total = _path_segment(X, Y, sw, &state[m, 0, 0, 0], K, seg, s, loss, single, p, g, unit_sw, first)
        first = False
        losses[m] += c * total
        if step:
            for j in range(size):
                g[j] = g[j] * c
            t[m] += 1
            _step(state[m], g, n_rows, t[m], hp[m], nesterov, fit_intercept, schedule, optimizer,
                  codes[m, P_AVERAGE_START])


cdef void _path_dense_part(const floating[:, ::1] X, const floating[:, ::1] Y, const floating[::1] sw,
                           const int64_t[::1] order, const uint8_t[:, ::1] train,
                           const floating[::1] scale, floating[:, :, :, ::1] state,
                           const double[:, ::1] hp, const int64_t[:, ::1] codes,
                           const int64_t[::1] model_fold, double[::1] losses, floating[:, :, ::1] G,
                           int64_t[::1] t, const int64_t[::1] n_f, const int64_t[::1] batch,
                           const int64_t[:, ::1] models, const int64_t[::1] n_models,
                           int64_t[:, ::1] counts, uint8_t[:, ::1] flags, int64_t[:, ::1] segs,
                           floating[:, ::1] outputs, bint stored, bint unit_sw, Py_ssize_t part,
                           const int64_t[::1] model_part) noexcept nogil:
    """The epoch of part ``part``'s models (``model_part[m] == part``) on dense
    rows, read in windows of PATH_WINDOW_ROWS rows of the order (as stored when
    ``stored``): each row is dealt to the segment of each of the part's folds that
    trains on it; a segment is handed to its fold's models (``_path_flush``) when the
    fold's batch is complete (cnt == batch, or the fold's last row: seen == n_f), with a
    step, and at the window's end without one. ``counts[part]`` (cnt, seen and the
    segments' lengths), ``flags[part]``, ``segs[part]`` (a window of rows per fold) and
    ``outputs[part]`` are this part's; ``G`` and ``t`` the models' (each model belongs
    to one part)."""
    cdef Py_ssize_t n = X.shape[0], M = state.shape[0], K = state.shape[2], F = train.shape[1]
    cdef int64_t *cnt = &counts[part, 0]
    cdef int64_t *seen = &counts[part, F]
    cdef int64_t *seg_len = &counts[part, 2 * F]
    cdef uint8_t *mine = &flags[part, 0]
    cdef int64_t *seg0 = &segs[part, 0]
    cdef int64_t *seg
    cdef floating *p = &outputs[part, 0]
    cdef bint single = K == 1 and codes[0, P_LOSS] != MULTINOMIAL
    cdef Py_ssize_t w0, w1, ii, i, f, m
    for f in range(F):
        cnt[f] = 0
        seen[f] = 0
        seg_len[f] = 0
        mine[f] = False
    for m in range(M):
        f = model_fold[m]
        if f >= 0 and model_part[m] == part:
            mine[f] = True
            losses[m] = 0.0
            t[m] = codes[m, P_T_START]
    w0 = 0
    while w0 < n:
        w1 = w0 + PATH_WINDOW_ROWS
        if w1 > n:
            w1 = n
        for ii in range(w0, w1):
            i = ii if stored else order[ii]
            for f in range(F):
                if not mine[f] or train[i, f] == 0:
                    continue
                seg = seg0 + f * PATH_WINDOW_ROWS
                seg[seg_len[f]] = i
                seg_len[f] += 1
                cnt[f] += 1
                seen[f] += 1
                if cnt[f] == batch[f] or seen[f] == n_f[f]:
                    _path_flush(X, Y, sw, scale, state, hp, codes, losses, G, t, models, n_models, f, seg,
                                seg_len[f], True, cnt[f], p, single, unit_sw, model_part, part)
                    seg_len[f] = 0
                    cnt[f] = 0
        # the window's end: every fold hands over what it holds, without a step
        for f in range(F):
            if mine[f] and seg_len[f] > 0:
                _path_flush(X, Y, sw, scale, state, hp, codes, losses, G, t, models, n_models, f,
                            seg0 + f * PATH_WINDOW_ROWS, seg_len[f], False, cnt[f], p, single, unit_sw, model_part,
                            part)
                seg_len[f] = 0
        w0 = w1


cdef void _path_part_csr(Py_ssize_t n, Py_ssize_t d, const floating *data, const int64_t *indices,
                         const int64_t *indptr, const floating[:, ::1] Y, const floating[::1] sw,
                         const int64_t[::1] order, const uint8_t[:, ::1] train, const floating[::1] scale,
                         floating[:, :, :, ::1] state, const double[:, ::1] hp,
                         const int64_t[:, ::1] codes, const int64_t[::1] model_fold,
                         double[::1] losses, floating[:, :, ::1] G, int64_t[::1] t,
                         const int64_t[::1] n_f, const int64_t[::1] batch, const uint8_t[::1] has,
                         int64_t[:, ::1] counts, uint8_t[:, ::1] flags, floating[:, ::1] outputs,
                         bint stored, Py_ssize_t part, const int64_t[::1] model_part) noexcept nogil:
    """The epoch of part ``part``'s models (``model_part[m] == part``) on CSR
    rows ``data``/``indices`` from ``indptr[i]`` to ``indptr[i + 1]``, one row at a time
    (in storage order when ``stored``, else in ``order``). ``counts[part]``,
    ``flags[part]`` and ``outputs[part]`` are this part's scratch; ``G`` and ``t`` the
    models' (each model belongs to one part)."""
    cdef Py_ssize_t M = state.shape[0], K = state.shape[2], F = train.shape[1]
    cdef int64_t *cnt = &counts[part, 0]
    cdef int64_t *seen = &counts[part, F]
    cdef uint8_t *mine = &flags[part, 0]
    cdef uint8_t *live = &flags[part, F]
    cdef uint8_t *done = &flags[part, 2 * F]
    cdef floating *p = &outputs[part, 0]
    cdef int64_t loss = codes[0, P_LOSS]
    cdef int64_t schedule = codes[0, P_SCHEDULE]
    cdef int64_t optimizer = codes[0, P_OPTIMIZER]
    cdef bint nesterov = codes[0, P_NESTEROV] != 0
    cdef bint fit_intercept = codes[0, P_FIT_INTERCEPT] != 0
    cdef bint single = K == 1 and loss != MULTINOMIAL
    cdef Py_ssize_t ii, i, f, m, k, q, nnz = 0
    cdef const floating *xv = NULL
    cdef const int64_t *xi = NULL
    cdef floating *w
    cdef floating *g
    cdef floating acc, c, wi
    cdef double value
    cdef bint hit, anyf
    for f in range(F):
        cnt[f] = 0
        seen[f] = 0
        mine[f] = False
    for m in range(M):
        f = model_fold[m]
        if f >= 0 and model_part[m] == part:
            mine[f] = True
            losses[m] = 0.0
            t[m] = codes[m, P_T_START]
    for ii in range(n):
        if stored:
            i = ii
        else:
            i = order[ii]
        anyf = False
        for f in range(F):
            hit = mine[f] and train[i, f] != 0
            live[f] = hit
            if hit:
                cnt[f] += 1
                seen[f] += 1
                done[f] = cnt[f] == batch[f] or seen[f] == n_f[f]
                anyf = True
        if not anyf:
            continue
        xv = data + indptr[i]
        xi = indices + indptr[i]
        nnz = indptr[i + 1] - indptr[i]
        for m in range(M):
            f = model_fold[m]
            if f < 0 or not live[f] or model_part[m] != part:
                continue
            wi = sw[i] * scale[f]
            for k in range(K):
                w = &state[m, 0, k, 0]
                acc = w[d]
                for q in range(nnz):
                    acc += w[xi[q]] * xv[q]
                p[k] = acc
            if single:
                value = _loss_grad_single(loss, p, Y[i, 0])
            else:
                value = _loss_grad(loss, p, &Y[i, 0], K)
            losses[m] += wi * value
            for k in range(K):
                c = wi * p[k]
                g = &G[m, k, 0]
                for q in range(nnz):
                    g[xi[q]] += c * xv[q]
                g[d] += c
            if done[f]:
                t[m] += 1
                _step(state[m], &G[m, 0, 0], cnt[f], t[m], hp[m], nesterov, fit_intercept, schedule,
                      optimizer, codes[m, P_AVERAGE_START])
        for f in range(F):
            if live[f] and done[f]:
                cnt[f] = 0


cdef void _path_run(Py_ssize_t n, Py_ssize_t d, const floating[:, ::1] X, const floating[::1] data,
                    const int64_t[::1] indices, const int64_t[::1] indptr,
                    const floating[:, ::1] Y, const floating[::1] sw, const int64_t[::1] order,
                    const uint8_t[:, ::1] train, const floating[::1] scale,
                    floating[:, :, :, ::1] state, const double[:, ::1] hp,
                    const int64_t[:, ::1] codes, const int64_t[::1] model_fold,
                    double[::1] losses, const int64_t[::1] model_part, int parts):
    """The scratch of ``parts`` parts, the folds' row counts, batch sizes and models,
    then the parts (OpenMP threads when ``parts > 1``). Dense input when ``indptr`` is
    None."""
    cdef Py_ssize_t M = state.shape[0], K = state.shape[2], F = train.shape[1]
    cdef Py_ssize_t i, f, m, part
    cdef bint sparse = indptr is not None
    cdef bint stored = True
    cdef bint unit_sw = False
    dtype = np.float32 if floating is float else np.float64
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
    cdef floating[:, :, ::1] G = np.zeros((M, K, d + 1), dtype=dtype)
    cdef int64_t[::1] t = np.zeros(M, dtype=np.int64)
    cdef int64_t[::1] n_f = np.zeros(F, dtype=np.int64)
    cdef int64_t[::1] batch = np.ones(F, dtype=np.int64)
    cdef uint8_t[::1] has = np.zeros(F, dtype=np.uint8)
    # each fold's models, in model order (the dense loop hands a fold's segment to them)
    cdef int64_t[:, ::1] models = np.zeros((F, max(M, 1)), dtype=np.int64)
    cdef int64_t[::1] n_models = np.zeros(F, dtype=np.int64)
    cdef const floating *dp = NULL
    cdef const int64_t *ip = NULL
    cdef const int64_t *pp = NULL
    if M == 0:
        return
    if sparse:
        pp = &indptr[0]
        if data.shape[0]:
            dp = &data[0]
            ip = &indices[0]
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
        for f in range(F):
            if has[f] and batch[f] < n_f[f]:
                stored = False
        if not sparse:
            unit_sw = _all_ones(sw)
        if parts > 1:
            for part in prange(parts, num_threads=parts, schedule="static", chunksize=1):
                if sparse:
                    _path_part_csr(n, d, dp, ip, pp, Y, sw, order, train, scale, state, hp, codes, model_fold,
                                   losses, G, t, n_f, batch, has, counts, flags, outputs, stored, part, model_part)
                else:
                    _path_dense_part(X, Y, sw, order, train, scale, state, hp, codes, model_fold, losses, G, t,
                                     n_f, batch, models, n_models, counts, flags, segs, outputs, stored, unit_sw,
                                     part, model_part)
        elif sparse:
            _path_part_csr(n, d, dp, ip, pp, Y, sw, order, train, scale, state, hp, codes, model_fold,
                           losses, G, t, n_f, batch, has, counts, flags, outputs, stored, 0, model_part)
        else:
            _path_dense_part(X, Y, sw, order, train, scale, state, hp, codes, model_fold, losses, G, t,
                             n_f, batch, models, n_models, counts, flags, segs, outputs, stored, unit_sw, 0, model_part)


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


def path_epoch_dense(X, Y, sw, order, train, scale, state, hp, codes, model_fold, losses):
    """One epoch of M models in place on dense C-contiguous rows X; ``losses[m]`` is set
    to model m's sum of ``w_i * loss_i``. See ``fastgd._numpy.path.path_epoch``.

    The arguments are checked (``fastgd._checks.check_path``) before any loop runs."""
    _checks.check_floats((("X", X),))
    if X.ndim != 2:
        raise ValueError(f"X must be 2-D, got {X.ndim} dimensions")
    n, d = X.shape
    dtype = _checks.check_path(n, d, Y, sw, order, train, scale, state, hp, codes, model_fold, losses,
                               "cython", in_range=_order_in_range)
    if X.dtype != dtype:
        raise ValueError(f"X has dtype {X.dtype} but Y has {dtype}")
    model_part, parts = _path_parts(codes, model_fold)
    if dtype == np.float32:
        _path_run[float](n, d, X, None, None, None, Y, sw, order, train, scale, state, hp, codes,
                         model_fold, losses, model_part, parts)
    else:
        _path_run[double](n, d, X, None, None, None, Y, sw, order, train, scale, state, hp, codes,
                          model_fold, losses, model_part, parts)


def path_epoch_csr(data, indices, indptr, shape, Y, sw, order, train, scale, state, hp, codes,
                   model_fold, losses):
    """``path_epoch_dense`` for CSR rows: ``data``, ``indices`` and ``indptr`` (int64) of
    a matrix of ``shape`` (n, d). The step is the dense one (O(K d) per update), as in
    the NumPy reference.

    The arguments are checked (``fastgd._checks.check_csr_arrays`` and ``check_path``)
    before any loop runs."""
    n, d = (int(s) for s in shape)
    _checks.check_csr_arrays(data, indices, indptr, n, d)
    dtype = _checks.check_path(n, d, Y, sw, order, train, scale, state, hp, codes, model_fold, losses,
                               "cython", in_range=_order_in_range)
    if data.dtype != dtype:
        raise ValueError(f"X has dtype {data.dtype} but Y has {dtype}")
    model_part, parts = _path_parts(codes, model_fold)
    if dtype == np.float32:
        _path_run[float](n, d, None, data, indices, indptr, Y, sw, order, train, scale, state, hp, codes,
                         model_fold, losses, model_part, parts)
    else:
        _path_run[double](n, d, None, data, indices, indptr, Y, sw, order, train, scale, state, hp, codes,
                          model_fold, losses, model_part, parts)
