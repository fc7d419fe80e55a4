"""Scalar loss functions for the Numba kernels, one branch per ``fastgd._losses`` code."""

from math import exp, log, log1p

import numpy as np
from numba import njit

from .._losses import LOG, MULTINOMIAL, SQUARED


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
