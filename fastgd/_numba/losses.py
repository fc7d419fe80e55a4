"""Loss functions for the Numba kernels, one branch per ``fastgd._losses`` code: scalar
ones for a row, and :func:`single_losses` for a block of single-output rows, which runs
in vector lanes (its ``exp`` and ``log1p`` are :func:`vexp` and :func:`vlog1p`, the
method of ``fastgd._vmath``)."""

from math import exp, isnan, log, log1p

import numpy as np
from numba import njit

from .. import _vmath as V
from .._losses import LOG, MULTINOMIAL, SQUARED
from ._intrinsics import sub_in_order

_E = V.EXP_COEFFS
_L = V.LOG1P_COEFFS


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _horner(C, x):
    """``C[0] + C[1] x + ... + C[-1] x^(len(C) - 1)`` by Horner's rule, highest power
    first (C a tuple of constants: the loop has a fixed count, and is unrolled)."""
    top = len(C) - 1
    q = C[top]
    for k in range(top - 1, -1, -1):
        q = q * x + C[k]
    return q


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def vexp(x):
    """``exp(x)`` of a float64, within 1 ulp, in straight-line code (selects, no branch,
    no call), so that a loop of it runs in vector lanes: the method and the constants
    are ``fastgd._vmath``'s."""
    # (selects, not min/max: a NaN goes through them, and is given back at the end)
    xs = V.EXP_HI if x > V.EXP_HI else x  # noqa: FURB136
    xs = V.EXP_LO if xs < V.EXP_LO else xs  # noqa: FURB136
    xs = 0.0 if isnan(xs) else xs
    k = np.int32(xs * V.LOG2E + (V.ROUND_BIAS + 0.5)) - np.int32(V.ROUND_BIAS)
    kf = np.float64(k)
    r = sub_in_order(sub_in_order(xs, kf * V.LN2_HI), kf * V.LN2_LO)
    q = _horner(_E, r) * r + 1.0
    p = q * r + 1.0
    tiny = k < V.TINY_K
    k = k + np.int32(V.TINY_SHIFT) if tiny else k
    y = np.int64(np.float64(p).view(np.int64) + (np.int64(k) << 52)).view(np.float64)
    y = y * V.TINY_SCALE if tiny else y
    y = np.inf if x > V.EXP_MAX else y
    return x if isnan(x) else y


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def vlog1p(x):
    """``log1p(x)`` of a float64 ``0 <= x <= 1`` (or NaN), within 3 ulp, in straight-line
    code: see :func:`vexp` and ``fastgd._vmath``."""
    big = x > V.SQRT2_M1
    f = (x - 1.0) * 0.5 if big else x
    kf = 1.0 if big else 0.0
    s = f / (2.0 + f)
    z = s * s
    R = _horner(_L, z) * z
    hfsq = 0.5 * f * f
    return kf * V.LN2_HI - ((hfsq - (s * (hfsq + R) + kf * V.LN2_LO)) - f)


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def single_losses(code, S, m):
    """The weighted log losses of a block of ``m`` rows (one output), in float64 (NaN
    for other codes: the squared error goes row by row, ``_add_rows_rowwise``): from
    the outputs ``S[0, :m]``, targets ``S[1, :m]`` and weights ``S[2, :m]``, set ``S[3, :m]`` to ``w dloss/dz`` and return
    ``sum w loss``.

    One loop over the block with no call and no branch inside (the log loss's sign
    cases are selects, its ``exp``/``log1p`` are :func:`vexp`/:func:`vlog1p`), so that
    it runs in vector lanes. The same values as :func:`loss_grad_single` up to the
    last bits of ``exp``/``log1p``; a NaN output gives NaN, ``|z|`` beyond ``exp``'s
    range gives the sigmoid's limits 0 and 1 and a loss of ``|z|`` (wrong side) or 0.
    """
    total = 0.0
    if code == LOG:
        for r in range(m):
            z = S[0, r]
            y = S[1, r]
            w = S[2, r]
            e = vexp(-abs(z))  # in (0, 1]: exp(-z) for z > 0, exp(z) otherwise
            value = vlog1p(e) + (z * (1.0 - y) if z > 0 else -(y * z))
            sig = (1.0 if z > 0 else e) / (1.0 + e)
            S[3, r] = w * (sig - y)
            total += w * value
    else:
        total = np.nan
    return total


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def loss_grad_single(code, z, y):
    """Return (loss, dloss/dz) of one row of a single-output loss (squared error with one
    target, log loss) from its raw output ``z`` and target ``y``; NaN for other codes.

    Scalars in and out, inlined into the kernels' row loops: no call and no reference
    counting per row. :func:`loss_and_grad` uses it for the log loss.
    """
    if code == SQUARED:
        r = z - y
        return 0.5 * r * r, r
    if code == LOG:
        if z > 0:
            e = exp(-z)
            value = z * (1.0 - y) + log1p(e)
            sig = 1.0 / (1.0 + e)
        else:
            e = exp(z)
            value = log1p(e) - y * z
            sig = e / (1.0 + e)
        return value, sig - y
    return np.nan, np.nan


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def loss_and_grad(code, P, r, Y, i):
    """Return the loss of row i; overwrite ``P[r]`` (its K raw outputs) with dloss/dp.

    ``Y[i]`` is the row's target: the K targets (squared error), the 0/1 label (log
    loss) or the class index (multinomial). An unknown code gives NaN (the Python
    ``epoch`` checks the code before any loop runs).

    Inlined into the kernels' row loops, with arrays and indices coming in rather than
    row views, and one ``return``: then Numba emits no reference counting (atomic
    operations, contended between threads) per row.
    """
    K = P.shape[1]
    value = np.nan
    if code == SQUARED:
        value = 0.0
        for k in range(K):
            res = P[r, k] - Y[i, k]
            P[r, k] = res
            value += 0.5 * res * res
    elif code == LOG:
        value, g = loss_grad_single(LOG, P[r, 0], Y[i, 0])
        P[r, 0] = g
    elif code == MULTINOMIAL:
        c = int(Y[i, 0])
        zc = P[r, c]
        mx = P[r, 0]
        for k in range(1, K):
            mx = max(mx, P[r, k])
        s = 0.0
        for k in range(K):
            e = exp(P[r, k] - mx)
            P[r, k] = e
            s += e
        for k in range(K):
            P[r, k] = P[r, k] / s
        P[r, c] -= 1.0
        value = log(s) + mx - zc
    return value
