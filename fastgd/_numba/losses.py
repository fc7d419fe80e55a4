"""Scalar loss functions for the Numba kernels, one branch per ``fastgd._losses`` code."""

from math import exp, log, log1p

from numba import njit

from .._losses import LOG, MULTINOMIAL, SQUARED


@njit(cache=True, nogil=True)
def loss_and_grad(code, p, y):
    """Return the loss of one row; overwrite ``p`` (its K raw outputs) with dloss/dp.

    ``y`` is the row of Y: the K targets (squared error), the 0/1 label (log loss) or
    the class index (multinomial).
    """
    K = p.shape[0]
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
        p[0] = sig - yy
        return value
    if code == MULTINOMIAL:
        c = int(y[0])
        zc = p[c]
        mx = p[0]
        for k in range(1, K):
            mx = max(mx, p[k])
        s = 0.0
        for k in range(K):
            e = exp(p[k] - mx)
            p[k] = e
            s += e
        for k in range(K):
            p[k] = p[k] / s
        p[c] -= 1.0
        return log(s) + mx - zc
    raise ValueError("fastgd: unknown loss code in the numba backend")
