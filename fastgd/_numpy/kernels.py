"""The NumPy reference kernel: one epoch of mini-batch gradient descent, vectorised per batch.

This is the ground truth the compiled backends are tested against and the "pure NumPy"
baseline of the benchmarks. See :func:`epoch` for the exact algorithm.
"""

import numpy as np

from .. import _params as P
from .._losses import LOSS_BY_CODE
from .._schedules import step_size


def epoch(X, Y, sw, order, state, hp, codes):
    """Run one epoch in place and return the sum of ``sw_i * loss_i`` over its rows.

    Parameters
    ----------
    X : (n, d) float32/float64, C-contiguous
    Y : (n, m) same dtype; targets as the loss expects them (see ``fastgd._losses``)
    sw : (n,) same dtype; sample weights normalised to mean 1 over the training set
    order : (n,) int64; the rows in the order they are visited
    state : (2, K, d + 1) same dtype; ``state[0]`` = weights with the intercept in the
        last column, ``state[1]`` = velocity. Updated in place.
    hp : float64 vector, layout in ``fastgd._params``
    codes : int64 vector, layout in ``fastgd._params``

    Each step takes the next ``batch_size`` rows ``B`` of ``order`` (the last batch may be
    shorter) and, with ``t`` the update count from 1 and ``eta`` the schedule's step:

        g   = sum_{i in B} sw_i * dloss_i/dW / |B| + l2 * W      (no l2 on the intercept)
        v   = mu * v + g
        W  -= eta * v                  (Nesterov: W -= eta * (g + mu * v))
        W   = sign(W) * max(|W| - eta * l1, 0)                   (not the intercept)

    The loss of each row is taken at the weights before its batch's step.
    """
    n, d = X.shape
    W = state[0]
    V = state[1]
    loss = LOSS_BY_CODE[int(codes[P.LOSS])]
    batch = int(codes[P.BATCH_SIZE])
    t = int(codes[P.T_START])
    mu = hp[P.MOMENTUM]
    l2 = hp[P.L2]
    l1 = hp[P.L1]
    mask = np.ones(d + 1, dtype=X.dtype)  # which columns the step touches
    if not codes[P.FIT_INTERCEPT]:
        mask[d] = 0.0
    decay = np.full(d + 1, l2)
    decay[d] = 0.0
    total = 0.0
    G = np.empty_like(W)
    for start in range(0, n, batch):
        idx = order[start:start + batch]
        if len(idx) == n:  # full batch: any order gives the same sum, so use X as stored
            idx = slice(None)
        Xb = X[idx]
        Pb = Xb @ W[:, :d].T + W[:, d]
        values, D = loss.value_grad(Pb, Y[idx])
        swb = sw[idx]
        total += float(swb @ values)
        D = D * swb[:, None]
        G[:, :d] = D.T @ Xb
        G[:, d] = D.sum(axis=0)
        G /= Xb.shape[0]
        G += decay * W
        G *= mask
        t += 1
        eta = step_size(int(codes[P.SCHEDULE]), t, hp[P.ETA0], hp[P.POWER_T], hp[P.OPTIMAL_T0], hp[P.ALPHA])
        V *= mu
        V += G
        if codes[P.NESTEROV]:
            W -= eta * (G + mu * V)
        else:
            W -= eta * V
        if l1 > 0.0:
            Wd = W[:, :d]
            np.copyto(Wd, np.sign(Wd) * np.maximum(np.abs(Wd) - eta * l1, 0.0))
    return total
