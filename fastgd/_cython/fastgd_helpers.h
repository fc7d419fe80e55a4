/* The Cython kernels' C helpers (fastgd/_cython/_kernels.pxi and _sparse.pyx use them
   through `cdef extern from "fastgd_helpers.h"`): prefetching, the build's flags, the
   CPU check of the AVX2 build, and the dense kernels' dot products. Included by the
   C that Cython generates, after Python.h (Py_ssize_t). */
#ifndef FASTGD_HELPERS_H
#define FASTGD_HELPERS_H

#include <stddef.h>
#include <string.h>

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

/* whether this module was compiled for AVX2 + FMA */
#ifdef __AVX2__
#define FASTGD_AVX2 1
#else
#define FASTGD_AVX2 0
#endif

/* whether this CPU runs the AVX2 + FMA build (x86-64 with GCC or Clang only) */
static inline int fastgd_cpu_has_avx2_fma(void) {
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

/* Four rows at a time (fastgd_dot4: four rows' dot products with one vector w in one
   pass, L partial sums per row; fastgd_axpy4: g += c0 x0 + c1 x1 + c2 x2 + c3 x3 in
   one pass over g). With GCC and Clang the partial sums are vector types (one vector
   per row: 4 doubles or 8 floats on AVX2), which the compiler keeps in registers
   (arrays of partial sums it compiled with transposes and spills: 4x slower at 100
   columns); loads and stores go through memcpy (no alignment assumed). Elsewhere,
   plain loops. */
#if defined(__GNUC__) || defined(__clang__)
#define FASTGD_DOT4(NAME, T, L)                                                  \
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
                        const T *x3, const T *c, Py_ssize_t n) {                 \
    typedef T V __attribute__((vector_size(L * sizeof(T))));                     \
    T c0 = c[0], c1 = c[1], c2 = c[2], c3 = c[3];                                \
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
#define FASTGD_DOT4(NAME, T, L)                                                  \
static inline void NAME(const T *w, const T *x0, const T *x1, const T *x2,       \
                        const T *x3, Py_ssize_t n, T *out) {                     \
    T s0 = 0, s1 = 0, s2 = 0, s3 = 0;                                            \
    Py_ssize_t j;                                                                \
    for (j = 0; j < n; j++) {                                                    \
        T wj = w[j];                                                             \
        s0 += wj * x0[j]; s1 += wj * x1[j]; s2 += wj * x2[j]; s3 += wj * x3[j];  \
    }                                                                            \
    out[0] = s0; out[1] = s1; out[2] = s2; out[3] = s3;                          \
}
#define FASTGD_AXPY4(NAME, T, L)                                                 \
static inline void NAME(T *g, const T *x0, const T *x1, const T *x2,             \
                        const T *x3, const T *c, Py_ssize_t n) {                 \
    T c0 = c[0], c1 = c[1], c2 = c[2], c3 = c[3];                                \
    Py_ssize_t j;                                                                \
    for (j = 0; j < n; j++) g[j] += (c0 * x0[j] + c1 * x1[j]) + (c2 * x2[j] + c3 * x3[j]); \
}
#endif
FASTGD_DOT4(fastgd_dot4_d, double, 4)
FASTGD_DOT4(fastgd_dot4_f, float, 8)
FASTGD_AXPY4(fastgd_axpy4_d, double, 4)
FASTGD_AXPY4(fastgd_axpy4_f, float, 8)

#endif
