/* The kernels' vectorisable exp and log1p, and the log loss of a block of rows (used by
   fastgd/_cython/_kernels.pxi through `cdef extern from "fastgd_vmath.h"`; included by
   the C that Cython generates, after Python.h: Py_ssize_t). */
#ifndef FASTGD_VMATH_H
#define FASTGD_VMATH_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
/* written by setup.py: fastgd._vmath's constants, FASTGD_* */
#include "fastgd_tuning.h"

/* The log loss of a block of outputs with a vectorisable exp and log1p: the method
   and the constants (FASTGD_* from fastgd/_vmath.py, through fastgd_tuning.h) are
   fastgd._vmath's. Straight-line code (selects, integer views by memcpy), so the
   block's loop runs in vector lanes. The range reduction needs its subtractions in
   their order: these functions are compiled without reassociation (GCC: the
   optimize attribute, which also keeps them out of line, in their own function;
   Clang: its fp pragma), whatever the extension's flags. */
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

#endif
