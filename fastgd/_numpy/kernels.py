"""The NumPy reference kernel: one epoch of mini-batch gradient descent, vectorised per batch.

This is the ground truth the compiled backends are tested against and the "pure NumPy"
baseline of the benchmarks. See :func:`epoch` for the exact algorithm.
"""

import numpy as np

from .. import _params as P
from .._checks import check_epoch, check_gradient
from .._losses import LOSS_BY_CODE
from .._optimizers import OPTIMIZER_BY_CODE, average_step
from .._schedules import step_size


def epoch(X, Y, sw, order, state, hp, codes):
    """Run one epoch in place and return the sum of ``sw_i * loss_i`` over its rows.

    Parameters
    ----------
    X : (n, d) float32/float64, C-contiguous
    Y : (n, m) same dtype; targets as the loss expects them (see ``fastgd._losses``)
    sw : (n,) same dtype; sample weights normalised to mean 1 over the training set
    order : (n,) int64; the rows in the order they are visited
    state : (S, K, d + 1) same dtype; ``state[0]`` = weights with the intercept in the
        last column, then the update rule's slots and, when averaging, the average
        (``fastgd._optimizers``: ``S = n_state(codes)``). Updated in place.
    hp : float64 vector, layout in ``fastgd._params``
    codes : int64 vector, layout in ``fastgd._params``

    Each step takes the next ``batch_size`` rows ``B`` of ``order`` (the last batch may be
    shorter) and, with ``t`` the update count from 1 and ``eta`` the schedule's step:

        g   = sum_{i in B} sw_i * dloss_i/dW / |B| + l2 * W      (no l2 on the intercept)
        W  -= the update rule's step from g (``fastgd._optimizers``; "sgd":
              v = mu * v + g, W -= eta * v, Nesterov: W -= eta * (g + mu * v))
        W   = sign(W) * max(|W| - eta * l1 / D, 0)               (not the intercept;
              D = 1 for "sgd", the adaptive rules' denominator otherwise)
        A  += (W - A) / (t - t_a + 1)  (averaging, once t >= t_a = codes[AVERAGE_START] > 0)

    The loss of each row is taken at the weights before its batch's step.

    The arguments are checked first (``fastgd._checks.check_epoch``), as in the compiled
    backends, so that a malformed call raises instead of broadcasting or wrapping
    negative indices; C-contiguity is not required here.
    """
    check_epoch(X, Y, sw, order, state, hp, codes, "numpy", contiguous=False)
    return run_batches(X, Y, sw, order, state, hp, codes)


def run_batches(X, Y, sw, order, state, hp, codes):
    """The loop of :func:`epoch` on rows ``X`` held as a dense array or a SciPy CSR
    matrix (``fastgd._numpy.sparse``), once the arguments are checked: each batch's
    predictions and summed gradient, then :func:`apply_step`."""
    n = X.shape[0]
    W = state[0]
    d = W.shape[1] - 1
    dense = isinstance(X, np.ndarray)
    loss = LOSS_BY_CODE[int(codes[P.LOSS])]
    batch = int(codes[P.BATCH_SIZE])
    t = int(codes[P.T_START])
    total = 0.0
    G = np.empty_like(W)
    for start in range(0, n, batch):
        idx = order[start:start + batch]
        # full batch: any order gives the same sum, so use X as stored
        full = len(idx) == n
        Xb, Yb, swb = (X, Y, sw) if full else (X[idx], Y[idx], sw[idx])
        Pb = np.asarray(Xb @ W[:, :d].T) + W[:, d]
        values, D = loss.value_grad(Pb.astype(W.dtype, copy=False), Yb)
        total += float(swb @ values)
        D = D * swb[:, None]
        G[:, :d] = D.T @ Xb if dense else np.asarray(Xb.T @ D).T
        G[:, d] = D.sum(axis=0)
        t += 1
        apply_step(state, G, Xb.shape[0], t, hp, codes)
    return total


def apply_step(state, G, n_rows, t, hp, codes):
    """Take one step in place from ``G``, the *summed* weighted gradient of a batch.

    ``G`` (K, d + 1) holds ``sum_{i in B} sw_i * dloss_i/dW`` over the ``n_rows`` rows of
    the batch, in the data's dtype or in float64; it is overwritten. ``t`` is the count
    of this update (from 1). This is the step of :func:`epoch`, written once: the epoch
    kernel calls it for each batch, and the Dask driver (``fastgd._dask``) calls it once
    per full-batch epoch with the block gradients summed over the cluster.
    """
    W = state[0]
    d = W.shape[1] - 1
    G /= n_rows
    G[:, :d] += hp[P.L2] * W[:, :d]  # the intercept is not penalised ...
    if not codes[P.FIT_INTERCEPT]:
        G[:, d] = 0.0  # ... and without one, it never moves
    eta = step_size(int(codes[P.SCHEDULE]), t, hp[P.ETA0], hp[P.POWER_T], hp[P.OPTIMAL_T0], hp[P.ALPHA])
    D = OPTIMIZER_BY_CODE[int(codes[P.OPTIMIZER])].update(state, G, eta, t, hp, codes)
    l1 = hp[P.L1]
    if l1 > 0.0:
        Wd = W[:, :d]
        shrink = eta * l1 / (D[:, :d] if np.ndim(D) else D)
        np.copyto(Wd, np.sign(Wd) * np.maximum(np.abs(Wd) - shrink, 0.0))
    average_step(state, t, codes)


def gradient(X, Y, sw, W, codes, G):
    """Add the summed weighted gradient of all rows of ``X`` to ``G``; no step is taken.

    Parameters
    ----------
    X, Y, sw : a block of rows, as for :func:`epoch`
    W : (K, d + 1) same dtype as X; the weights, intercept in the last column (read only)
    codes : int64 vector, layout in ``fastgd._params`` (only ``codes[LOSS]`` is read)
    G : (K, d + 1) float64; ``sum_i sw_i * dloss_i/dW`` over the rows is *added* to it
        (unnormalised; the intercept's gradient in the last column). Float64 whatever
        the data's dtype, so that summing many blocks loses nothing to float32.

    Returns ``sum_i sw_i * loss_i`` (float). Used by the Dask driver: each block's
    gradient is computed where the block lives and the sums meet in
    :func:`apply_step`.
    """
    check_gradient(X, Y, sw, W, codes, G, "numpy", contiguous=False)
    d = X.shape[1]
    loss = LOSS_BY_CODE[int(codes[P.LOSS])]
    values, D = loss.value_grad(X @ W[:, :d].T + W[:, d], Y)
    total = float(sw @ values)
    D = (D * sw[:, None]).astype(np.float64, copy=False)
    G[:, :d] += D.T @ X.astype(np.float64, copy=False)
    G[:, d] += D.sum(axis=0)
    return total
