"""Numba kernels: one call runs one epoch of mini-batch gradient descent for any batch size.

The algorithm is the one documented in ``fastgd._numpy.kernels.epoch`` (the reference);
this is the same computation written as loops. Losses and schedules arrive as integer
codes from their registries (a jitted function passed as an argument, or a kernel built
in a closure, would defeat ``cache=True``).

Note for developers: Numba's on-disk cache is keyed on this file only. After changing a
constant in ``fastgd._params``/``_losses``/``_schedules``, clear ``__pycache__`` here.
"""

import numpy as np
from numba import njit

from .. import _params as P
from .._schedules import CONSTANT, INVSCALING, OPTIMAL
from .losses import loss_and_grad


@njit(cache=True, nogil=True)
def _step_size(code, t, eta0, power_t, t0, alpha):
    if code == CONSTANT:
        return eta0
    if code == INVSCALING:
        return eta0 / t**power_t
    if code == OPTIMAL:
        return 1.0 / (alpha * (t0 + t - 1.0))
    raise ValueError("fastgd: unknown schedule code in the numba backend")


@njit(cache=True, nogil=True)
def epoch(X, Y, sw, order, state, hp, codes):
    """One epoch in place; returns the sum of ``sw_i * loss_i``. See the NumPy reference."""
    n, d = X.shape
    K = state.shape[1]
    W = state[0]
    V = state[1]
    loss = codes[P.LOSS]
    schedule = codes[P.SCHEDULE]
    nesterov = codes[P.NESTEROV] != 0
    n_cols = d + 1 if codes[P.FIT_INTERCEPT] != 0 else d
    batch = codes[P.BATCH_SIZE]
    t = codes[P.T_START]
    # scalars in the data's dtype, so float32 data is computed in float32
    s = np.empty(5, dtype=X.dtype)
    s[0] = hp[P.MOMENTUM]
    s[1] = hp[P.L2]
    mu = s[0]
    l2 = s[1]
    l1 = hp[P.L1]

    G = np.zeros((K, d + 1), dtype=X.dtype)
    p = np.empty(K, dtype=X.dtype)
    total = 0.0
    for start in range(0, n, batch):
        stop = min(start + batch, n)
        # accumulate the batch gradient at the current weights
        for ii in range(start, stop):
            i = order[ii]
            for k in range(K):
                acc = W[k, d]
                for j in range(d):
                    acc += W[k, j] * X[i, j]
                p[k] = acc
            total += sw[i] * loss_and_grad(loss, p, Y[i])
            for k in range(K):
                c = sw[i] * p[k]
                for j in range(d):
                    G[k, j] += c * X[i, j]
                G[k, d] += c
        t += 1
        s[2] = _step_size(schedule, t, hp[P.ETA0], hp[P.POWER_T], hp[P.OPTIMAL_T0], hp[P.ALPHA])
        s[3] = 1.0 / (stop - start)
        s[4] = s[2] * l1
        eta = s[2]
        inv_b = s[3]
        shrink = s[4]
        # momentum step (the intercept is the last column, never penalised)
        for k in range(K):
            for j in range(n_cols):
                g = G[k, j] * inv_b
                if j < d:
                    g += l2 * W[k, j]
                v = mu * V[k, j] + g
                V[k, j] = v
                if nesterov:
                    w = W[k, j] - eta * (g + mu * v)
                else:
                    w = W[k, j] - eta * v
                if j < d and shrink > 0:
                    if w > shrink:
                        w -= shrink
                    elif w < -shrink:
                        w += shrink
                    else:
                        w = 0.0
                W[k, j] = w
                G[k, j] = 0.0
            G[k, d] = 0.0
    return total
