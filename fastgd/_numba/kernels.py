"""Numba kernels: one ``epoch`` call runs one epoch of gradient descent for any batch size.

The algorithm is the one documented in ``fastgd._numpy.kernels.epoch`` (the reference);
this is the same computation written as loops. Losses and schedules arrive as integer
codes from their registries (a jitted function passed as an argument, or a kernel built
in a closure, would defeat ``cache=True``).

Full batch (``batch_size >= n``) sums the gradient over fixed row blocks, each into its
own buffer, and adds the buffers in block order. The blocks depend only on the data's
shape, so the result is bit-for-bit the same for any number of threads; with
``n_threads > 1`` the blocks are shared among Python threads running the ``nogil``
kernel, each taking the next block from an atomic counter, the calling thread included
(no Numba threading layer is involved, so fits are safe to run concurrently from
several threads and after ``fork``).

What the speed rests on (each measured; ``tests/test_numba_perf.py`` checks the compiled
code for the first three):

- no reference counting in the row loops: helpers take arrays and row indices, never
  row views, and the single-output loop calls nothing (helpers are ``inline="always"``).
  Numba emits an atomic incref/decref pair per view and per call with array arguments
  that it cannot prune;
- single-output rows go in blocks of ``LOSS_BLOCK_ROWS``: outputs first, then the
  block's losses in one loop that runs in vector lanes (``single_losses``: the log
  loss's ``exp``/``log1p`` are the branch-free ones of ``fastgd._vmath``, where the C
  library's per row, and a branch on the output's sign, kept the loop scalar), then
  the gradients;
- ``fastmath=FASTMATH`` (reassociation, contraction; no ``nnan``/``ninf``) so dot
  products vectorise, and ``error_model="numpy"`` so no division can raise (codes are
  checked once, in Python, by ``epoch``);
- float32 data computed in float32: float64 scalars go through a float32 array first;
- shuffled rows are prefetched ``DENSE_PREFETCH_AHEAD`` places ahead (X's lines, Y,
  sw), and with unit sample weights sw[i] is not read at all;
- short rows are taken four at a time (``FOUR_ROWS_MAX_BYTES``).

The block rule, the prefetch distance and the other tuning constants are defined in
``fastgd._tuning`` (shared with the Cython kernels, with the measurements behind them).

Note for developers: Numba's on-disk cache is keyed on this file only. After changing a
constant in ``fastgd._tuning``/``_vmath``/``_params``/``_losses``/``_optimizers``/``_schedules``, clear
``__pycache__`` here.

Every helper that computes in floating point is inlined by Numba (``inline="always"``),
and the kernels whose loops reassociate (``fastmath``) are the top-level functions. A
fastmath loop in a separately jitted function was compiled differently depending on
whether its caller was compiled in the same process (LLVM inlined and re-optimised it in
the caller's context) or loaded from the on-disk cache (linked as compiled on its own):
the first process on a machine summed in another order than the later ones.
"""

import os
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from numba import njit

from .. import _checks, _tuning
from .. import _params as P
from .._losses import LOG, MULTINOMIAL, SQUARED
from .._optimizers import ADAGRAD, ADAM, SGD
from .._schedules import CONSTANT, step_size
from .._tuning import block_bounds
from ._cache import reports_damaged_cache
from ._inputs import read_only
from ._intrinsics import next_index, prefetch, prefetch1
from .losses import loss_and_grad, loss_grad_single, single_losses

# reassociation (vectorised dot products) and fused multiply-add; no nnan/ninf, so a
# NaN or an infinity still propagates to the estimator's divergence check
FASTMATH = {"reassoc", "contract", "nsz", "arcp"}


# the schedules' step size, the registry's own function compiled (inlined where it is used)
_step_size = njit(nogil=True, error_model="numpy", inline="always")(step_size)


# The helpers below take arrays and row indices, never row views: a view made in a hot
# loop and passed to a function costs reference-count updates (atomic) on every call.


@njit(cache=True, nogil=True, error_model="numpy", fastmath=FASTMATH, inline="always")
def _outputs(W, X, i, P, r):
    """P[r, k] = W[k, :d] . X[i] + W[k, d]."""
    d = X.shape[1]
    for k in range(W.shape[0]):
        acc = W[k, d]
        for j in range(d):
            acc += W[k, j] * X[i, j]
        P[r, k] = acc


@njit(cache=True, nogil=True, error_model="numpy", fastmath=FASTMATH, inline="always")
def _outputs4(W, X, i0, i1, i2, i3, P):
    """P[r, k] = W[k, :d] . X[i_r] + W[k, d] for four rows, in one pass over each W[k]."""
    d = X.shape[1]
    for k in range(W.shape[0]):
        a0 = W[k, d]
        a1 = a0
        a2 = a0
        a3 = a0
        for j in range(d):
            w = W[k, j]
            a0 += w * X[i0, j]
            a1 += w * X[i1, j]
            a2 += w * X[i2, j]
            a3 += w * X[i3, j]
        P[0, k] = a0
        P[1, k] = a1
        P[2, k] = a2
        P[3, k] = a3


@njit(cache=True, nogil=True, error_model="numpy")
def _unit_weights(sw):
    """Whether every sample weight is 1. Then the shuffled loops read sw[0] instead of
    sw[i] (the same value): one cache line fewer to fetch per row in random order."""
    for i in range(sw.shape[0]):
        if sw[i] != 1:
            return False
    return True


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _prefetch_row(X, Y, sw, i, unit):
    """Prefetch every cache line of row i of X, and row i of Y and (unless ``unit``) sw."""
    step = max(1, _tuning.CACHE_LINE_BYTES // X.itemsize)
    for j in range(0, X.shape[1], step):
        prefetch(X, i, j)
    prefetch(Y, i, 0)
    if not unit:
        prefetch1(sw, i)


@njit(cache=True, nogil=True, error_model="numpy", fastmath=FASTMATH, inline="always")
def _accumulate(G, X, i, P, r):
    """G[k, :d] += P[r, k] * X[i] and G[k, d] += P[r, k]."""
    d = X.shape[1]
    for k in range(G.shape[0]):
        c = P[r, k]
        for j in range(d):
            G[k, j] += c * X[i, j]
        G[k, d] += c


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _take_row(Y, sw, i, unit, S, r, z):
    """Row i's output ``z``, target and weight into column r of the float64 block S."""
    S[0, r] = z
    S[1, r] = Y[i, 0]
    S[2, r] = sw[0] if unit else sw[i]


# How ``_add_rows`` visits its rows lo:hi: as stored (``order`` is not read), through
# ``order`` prefetching the rows ahead (they come from memory), or through ``order`` with
# the rows in cache already (a many-models segment: its rows were prefetched as they
# were dealt).
STORED, AHEAD, CACHED = 0, 1, 2


@njit(cache=True, nogil=True, error_model="numpy", fastmath=FASTMATH, inline="always")
def _gradient4(G, X, i0, i1, i2, i3, P):
    """G[0, :d] += sum_r P[r, 0] X[i_r] and G[0, d] += sum_r P[r, 0] over four rows, in
    one pass over G."""
    d = X.shape[1]
    c0, c1, c2, c3 = P[0, 0], P[1, 0], P[2, 0], P[3, 0]
    for j in range(d):
        G[0, j] = G[0, j] + c0 * X[i0, j] + c1 * X[i1, j] + c2 * X[i2, j] + c3 * X[i3, j]
    G[0, d] = G[0, d] + c0 + c1 + c2 + c3


# (The row loops below pick their rows and prefetch in their own bodies: an inlined
# helper that reads an array on one branch only made Numba count references per row.)


@njit(cache=True, nogil=True, error_model="numpy", fastmath=FASTMATH, inline="always")
def _add_rows_single(data, W, order, lo, hi, how, loss, P, G, S):
    """``_add_rows`` for one output of the log loss (or of the squared error: the
    many-models kernel's segments), in blocks of up to ``S.shape[1]`` rows
    (``LOSS_BLOCK_ROWS``): the block's outputs first (into the float64 scratch S:
    outputs, targets, weights, gradients), then its losses in one vectorised loop
    (``single_losses``; the squared error's, cheap, row by row), then its gradients
    added to G, the rows read again (from cache). The loop calls nothing (every helper
    is inlined), so Numba counts no references per row."""
    X, Y, sw, unit = data
    n = order.shape[0]
    total = 0.0
    four = how == CACHED or X.shape[1] * X.itemsize <= _tuning.FOUR_ROWS_MAX_BYTES
    ahead = _tuning.DENSE_PREFETCH_AHEAD
    start = lo
    while start < hi:
        m = min(S.shape[1], hi - start)
        r = 0
        if four:
            while r + 4 <= m:
                ii = start + r
                if how == STORED:
                    i0, i1, i2, i3 = ii, ii + 1, ii + 2, ii + 3
                else:
                    if how == AHEAD:
                        for q in range(ii + ahead, min(ii + ahead + 4, n)):
                            _prefetch_row(X, Y, sw, order[q], unit)
                    i0, i1, i2, i3 = order[ii], order[ii + 1], order[ii + 2], order[ii + 3]
                _outputs4(W, X, i0, i1, i2, i3, P)
                _take_row(Y, sw, i0, unit, S, r, P[0, 0])
                _take_row(Y, sw, i1, unit, S, r + 1, P[1, 0])
                _take_row(Y, sw, i2, unit, S, r + 2, P[2, 0])
                _take_row(Y, sw, i3, unit, S, r + 3, P[3, 0])
                r += 4
        while r < m:
            ii = start + r
            if how == STORED:
                i = ii
            else:
                if how == AHEAD and ii + ahead < n:
                    _prefetch_row(X, Y, sw, order[ii + ahead], unit)
                i = order[ii]
            _outputs(W, X, i, P, 0)
            _take_row(Y, sw, i, unit, S, r, P[0, 0])
            r += 1
        if loss == LOG:
            total += single_losses(LOG, S, m)
        else:
            for r in range(m):
                value, g = loss_grad_single(SQUARED, S[0, r], S[1, r])
                S[3, r] = S[2, r] * g
                total += S[2, r] * value
        # (the gradients go through P: the products below stay in X's dtype)
        r = 0
        if four:
            while r + 4 <= m:
                ii = start + r
                if how == STORED:
                    i0, i1, i2, i3 = ii, ii + 1, ii + 2, ii + 3
                else:
                    i0, i1, i2, i3 = order[ii], order[ii + 1], order[ii + 2], order[ii + 3]
                for q in range(4):
                    P[q, 0] = S[3, r + q]
                _gradient4(G, X, i0, i1, i2, i3, P)
                r += 4
        while r < m:
            i = order[start + r] if how != STORED else start + r
            P[0, 0] = S[3, r]
            _accumulate(G, X, i, P, 0)
            r += 1
        start += m
    return total


@njit(cache=True, nogil=True, error_model="numpy", fastmath=FASTMATH, inline="always")
def _single_loss(Y, sw, i, unit, P, r):
    """Squared error, one output: replace row i's output P[r, 0] by its weighted loss
    gradient ``sw_i * dloss/dp`` (stored in the data's dtype) and return its weighted
    loss."""
    wi = sw[0] if unit else sw[i]
    value, g = loss_grad_single(SQUARED, P[r, 0], Y[i, 0])
    P[r, 0] = g  # (g may be float64: through P, the products below stay in X's dtype)
    P[r, 0] = wi * P[r, 0]
    return wi * value


@njit(cache=True, nogil=True, error_model="numpy", fastmath=FASTMATH, inline="always")
def _add_rows_multi(data, W, order, lo, hi, how, loss, P, G):
    """``_add_rows`` row by row, through ``loss_and_grad``: several outputs (or the
    multinomial loss)."""
    X, Y, sw, unit = data
    n = order.shape[0]
    total = 0.0
    for ii in range(lo, hi):
        if how == STORED:
            i = ii
        else:
            if how == AHEAD and ii + _tuning.DENSE_PREFETCH_AHEAD < n:
                _prefetch_row(X, Y, sw, order[ii + _tuning.DENSE_PREFETCH_AHEAD], unit)
            i = order[ii]
        _outputs(W, X, i, P, 0)
        value = loss_and_grad(loss, P, 0, Y, i)
        wi = sw[0] if unit else sw[i]
        total += wi * value
        for k in range(W.shape[0]):
            P[0, k] = wi * P[0, k]
        _accumulate(G, X, i, P, 0)
    return total


@njit(cache=True, nogil=True, error_model="numpy", fastmath=FASTMATH, inline="always")
def _add_rows_rowwise(data, W, order, lo, hi, how, P, G):
    """``_add_rows`` for one output and the squared error (no ``exp`` to vectorise):
    each row's output, loss and gradient in one visit, the row read once, four rows at
    a time where they go so. The loop calls nothing (every helper is inlined), so Numba
    counts no references per row. (The log loss through here measured up to 2x slower
    than by blocks at d = 20; the squared error by blocks, 8-50 % slower than here.)"""
    X, Y, sw, unit = data
    n = order.shape[0]
    total = 0.0
    ii = lo
    if how == CACHED or X.shape[1] * X.itemsize <= _tuning.FOUR_ROWS_MAX_BYTES:
        while ii + 4 <= hi:
            if how == STORED:
                i0, i1, i2, i3 = ii, ii + 1, ii + 2, ii + 3
            else:
                if how == AHEAD:
                    for q in range(ii + _tuning.DENSE_PREFETCH_AHEAD, min(ii + _tuning.DENSE_PREFETCH_AHEAD + 4, n)):
                        _prefetch_row(X, Y, sw, order[q], unit)
                i0, i1, i2, i3 = order[ii], order[ii + 1], order[ii + 2], order[ii + 3]
            _outputs4(W, X, i0, i1, i2, i3, P)
            total += _single_loss(Y, sw, i0, unit, P, 0)
            total += _single_loss(Y, sw, i1, unit, P, 1)
            total += _single_loss(Y, sw, i2, unit, P, 2)
            total += _single_loss(Y, sw, i3, unit, P, 3)
            _gradient4(G, X, i0, i1, i2, i3, P)
            ii += 4
    # (its own loop for the rows left, not _add_rows_multi's: Numba types every loss
    # of loss_and_grad wherever that is inlined, which lengthened the compile by 2 s)
    while ii < hi:
        if how == STORED:
            i = ii
        else:
            if how == AHEAD and ii + _tuning.DENSE_PREFETCH_AHEAD < n:
                _prefetch_row(X, Y, sw, order[ii + _tuning.DENSE_PREFETCH_AHEAD], unit)
            i = order[ii]
        _outputs(W, X, i, P, 0)
        total += _single_loss(Y, sw, i, unit, P, 0)
        _accumulate(G, X, i, P, 0)
        ii += 1
    return total


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _scratch():
    """The float64 scratch of ``_add_rows_single``: a block's outputs, targets, weights
    and gradients, ``LOSS_BLOCK_ROWS`` each."""
    return np.empty((4, _tuning.LOSS_BLOCK_ROWS))


# The row loops add the weighted loss gradients of the rows at places lo:hi (of
# ``order``, or of X as stored: ``how``) to G (K, d+1) and return their weighted loss.
# ``data`` is ``(X, Y, sw, unit)``, ``unit`` when every sample weight is 1 (then sw[0] is
# read instead of sw[i]: one cache line fewer per row in random order). P is a (4, K)
# scratch in X's dtype, S a (4, LOSS_BLOCK_ROWS) float64 one (:func:`_scratch`).
#
# One output of the log loss: rows go in blocks of ``LOSS_BLOCK_ROWS``, the losses of a
# block in one vectorised loop (``_add_rows_single``); of the squared error, one row at
# a time (``_add_rows_rowwise``); several outputs or the multinomial loss, row by row
# (``_add_rows_multi``). Rows of up to ``FOUR_ROWS_MAX_BYTES`` (or rows in cache) are
# taken four at a time: their outputs in one pass over W (four independent dot
# products), their gradients in one pass over G; wider rows go one at a time
# (measured: four at a time is then slower, reading four rows at once from memory).
# With ``how == AHEAD``, rows ``DENSE_PREFETCH_AHEAD`` places ahead in the order are
# prefetched (random row access is bound by memory latency). (The constants:
# ``fastgd._tuning``.)
#
# The epochs choose between the one-output log loss's loop and the others' by two
# arguments, ``(log_rows, other_rows)``: ``(True, None)`` or ``(None, True)``
# (``_which_rows``). Numba drops a branch on an argument that is None before it types
# the function, so each signature compiles its own row loops only (one with all three
# compiled 2-3x as long as the two apart; a branch on a flag left every loop in).


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _add_rows_other(data, W, order, lo, hi, how, loss, P, G):
    """The rows of every loss but the one-output log loss (see above)."""
    if W.shape[0] == 1 and loss == SQUARED:
        return _add_rows_rowwise(data, W, order, lo, hi, how, P, G)
    return _add_rows_multi(data, W, order, lo, hi, how, loss, P, G)


def _which_rows(K, loss):
    """The epochs' ``(log_rows, other_rows)`` for K outputs of this loss (see above)."""
    return (True, None) if K == 1 and loss == LOG else (None, True)


@njit(cache=True, nogil=True, error_model="numpy", fastmath=FASTMATH, inline="always")
def _shrink(w, shrink, zero):
    """Soft-threshold (the L1 prox) of ``w`` by ``shrink`` > 0; ``zero`` in w's dtype."""
    if w > shrink:
        return w - shrink
    if w < -shrink:
        return w + shrink
    return zero


# the step's scalars, in the data's dtype, in a scratch vector of N_SCALARS
N_SCALARS = 12
S_MU, S_L2, S_ETA, S_INV_B, S_SHRINK, S_ZERO = 0, 1, 2, 3, 4, 5
S_B1, S_B2, S_EPS, S_ADAM_STEP, S_SQRT_BC2, S_AVG = 6, 7, 8, 9, 10, 11


@njit(cache=True, nogil=True, error_model="numpy", fastmath=FASTMATH, inline="always")
def _update(W, V, k, U, iu, a, s, nesterov):
    """W[k, :d] and V[k, :d] from the gradient a * U[iu, :d] + l2 * W[k, :d], with the
    step's scalars (mu, l2, eta, the L1 shrinkage) from the scratch ``s``.

    The four loops differ only in Nesterov and in the L1 shrinkage, decided once here
    rather than per coordinate (so each loop vectorises).
    """
    d = W.shape[1] - 1
    mu, l2, eta, shrink, zero = s[S_MU], s[S_L2], s[S_ETA], s[S_SHRINK], s[S_ZERO]
    if nesterov:
        if shrink > zero:
            for j in range(d):
                g = a * U[iu, j] + l2 * W[k, j]
                v = mu * V[k, j] + g
                V[k, j] = v
                W[k, j] = _shrink(W[k, j] - eta * (g + mu * v), shrink, zero)
        else:
            for j in range(d):
                g = a * U[iu, j] + l2 * W[k, j]
                v = mu * V[k, j] + g
                V[k, j] = v
                W[k, j] = W[k, j] - eta * (g + mu * v)
    else:
        if shrink > zero:
            for j in range(d):
                g = a * U[iu, j] + l2 * W[k, j]
                v = mu * V[k, j] + g
                V[k, j] = v
                W[k, j] = _shrink(W[k, j] - eta * v, shrink, zero)
        else:
            for j in range(d):
                g = a * U[iu, j] + l2 * W[k, j]
                v = mu * V[k, j] + g
                V[k, j] = v
                W[k, j] = W[k, j] - eta * v


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _update_intercept(W, V, k, g, s, nesterov):
    """The intercept W[k, d] from its gradient g: no penalty, no shrinkage."""
    d = W.shape[1] - 1
    mu, eta = s[S_MU], s[S_ETA]
    v = mu * V[k, d] + g
    V[k, d] = v
    if nesterov:
        W[k, d] = W[k, d] - eta * (g + mu * v)
    else:
        W[k, d] = W[k, d] - eta * v


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _scalars(s, t, hp, codes):
    """Fill the scratch s (N_SCALARS values in the data's dtype, so that float32 data is
    updated in float32) with mu, l2, eta(t), 1, eta(t) * l1, 0, beta_1, beta_2,
    epsilon, Adam's eta(t) / (1 - beta_1**t) and sqrt(1 - beta_2**t), and the averaging
    weight 1 / (t - t_a + 1) (0 before update t_a)."""
    eta = _step_size(codes[P.SCHEDULE], t, hp[P.ETA0], hp[P.POWER_T], hp[P.OPTIMAL_T0], hp[P.ALPHA])
    s[S_MU] = hp[P.MOMENTUM]
    s[S_L2] = hp[P.L2]
    s[S_ETA] = eta
    s[S_INV_B] = 1.0
    s[S_SHRINK] = s[S_ETA] * hp[P.L1]
    s[S_ZERO] = 0.0
    b1 = hp[P.BETA_1]
    b2 = hp[P.BETA_2]
    s[S_B1] = b1
    s[S_B2] = b2
    s[S_EPS] = hp[P.EPSILON]
    if codes[P.OPTIMIZER] == ADAM:
        s[S_ADAM_STEP] = eta / (1.0 - b1**t)
        s[S_SQRT_BC2] = np.sqrt(1.0 - b2**t)
    else:
        s[S_ADAM_STEP] = eta
        s[S_SQRT_BC2] = 1.0
    t_a = codes[P.AVERAGE_START]
    s[S_AVG] = 1.0 / (t - t_a + 1) if t_a > 0 and t >= t_a else 0.0


@njit(cache=True, nogil=True, error_model="numpy", fastmath=FASTMATH, inline="always")
def _adaptive_coord(state, k, j, g, code, s, shrink):
    """The adaptive rules' step of coordinate (k, j) from its full gradient g
    (``fastgd._optimizers``), then the L1 proximal step ``shrink / D`` when
    ``shrink > 0``."""
    W = state[0]
    S1 = state[1]
    eps = s[S_EPS]
    if code == ADAM:
        S2 = state[2]
        b1 = s[S_B1]
        b2 = s[S_B2]
        m = b1 * S1[k, j] + (1 - b1) * g
        v = b2 * S2[k, j] + (1 - b2) * (g * g)
        S1[k, j] = m
        S2[k, j] = v
        den = np.sqrt(v) / s[S_SQRT_BC2] + eps
        w = W[k, j] - (s[S_ADAM_STEP] * m) / den
    else:
        if code == ADAGRAD:
            v = S1[k, j] + g * g
        else:  # RMSPROP
            b2 = s[S_B2]
            v = b2 * S1[k, j] + (1 - b2) * (g * g)
        S1[k, j] = v
        den = np.sqrt(v) + eps
        w = W[k, j] - (s[S_ETA] * g) / den
    if shrink > s[S_ZERO]:
        w = _shrink(w, shrink / den, s[S_ZERO])
    W[k, j] = w


@njit(cache=True, nogil=True, error_model="numpy", fastmath=FASTMATH, inline="always")
def _adaptive_update(state, k, U, iu, a, d, code, s):
    """W[k, :d] and its slots from the gradient a * U[iu, :d] + l2 * W[k, :d]."""
    W = state[0]
    l2 = s[S_L2]
    shrink = s[S_SHRINK]
    for j in range(d):
        _adaptive_coord(state, k, j, a * U[iu, j] + l2 * W[k, j], code, s, shrink)


@njit(cache=True, nogil=True, error_model="numpy", fastmath=FASTMATH, inline="always")
def _average(state, k, cols, s):
    """The running mean of the iterates, in the last slot: A += (W - A) / (t - t_a + 1)."""
    a = s[S_AVG]
    if a > s[S_ZERO]:
        W = state[0]
        A = state[state.shape[0] - 1]
        for j in range(cols):
            A[k, j] = A[k, j] + (W[k, j] - A[k, j]) * a


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _step(state, G, n_rows, t, hp, codes, s):
    """One update from the summed batch gradient G of ``n_rows`` rows; zeroes G.

    ``s`` is a scratch vector of N_SCALARS in the data's dtype (allocated once per
    epoch, not per step): the step's scalars go through it so float32 data is computed
    in float32.
    """
    W = state[0]
    V = state[1]
    K, cols = W.shape
    d = cols - 1
    fit_intercept = codes[P.FIT_INTERCEPT] != 0
    nesterov = codes[P.NESTEROV] != 0
    code = codes[P.OPTIMIZER]
    _scalars(s, t, hp, codes)
    s[S_INV_B] = 1.0 / n_rows
    inv_b, zero = s[S_INV_B], s[S_ZERO]
    for k in range(K):
        if code == SGD:
            _update(W, V, k, G, k, inv_b, s, nesterov)
            if fit_intercept:  # without one, the intercept's gradient is dropped
                _update_intercept(W, V, k, G[k, d] * inv_b, s, nesterov)
        else:
            _adaptive_update(state, k, G, k, inv_b, d, code, s)
            if fit_intercept:
                _adaptive_coord(state, k, d, G[k, d] * inv_b, code, s, zero)
        _average(state, k, cols, s)
        for j in range(cols):
            G[k, j] = zero


@njit(cache=True, nogil=True, error_model="numpy", fastmath=FASTMATH)
def _sgd_epoch(X, Y, sw, order, state, hp, codes):
    """batch_size == 1: each row's gradient goes straight into its step (no G)."""
    n, d = X.shape
    W = state[0]
    V = state[1]
    K = W.shape[0]
    loss = codes[P.LOSS]
    t = codes[P.T_START]
    fit_intercept = codes[P.FIT_INTERCEPT] != 0
    nesterov = codes[P.NESTEROV] != 0
    code = codes[P.OPTIMIZER]
    # the scalars change with t: a schedule, Adam's bias correction, averaging
    constant = codes[P.SCHEDULE] == CONSTANT and code != ADAM and codes[P.AVERAGE_START] == 0
    single = K == 1 and loss != MULTINOMIAL
    unit = _unit_weights(sw)
    Ps = np.empty((1, K), dtype=X.dtype)
    s = np.empty(N_SCALARS, dtype=X.dtype)
    _scalars(s, t + 1, hp, codes)
    total = 0.0
    for ii in range(n):
        if ii + _tuning.DENSE_PREFETCH_AHEAD < n:
            _prefetch_row(X, Y, sw, order[ii + _tuning.DENSE_PREFETCH_AHEAD], unit)
        i = order[ii]
        _outputs(W, X, i, Ps, 0)
        if single:
            value, g = loss_grad_single(loss, Ps[0, 0], Y[i, 0])
            Ps[0, 0] = g
        else:
            value = loss_and_grad(loss, Ps, 0, Y, i)
        wi = sw[0] if unit else sw[i]
        total += wi * value
        t += 1
        if not constant:
            _scalars(s, t, hp, codes)
        zero = s[S_ZERO]
        for k in range(K):
            c = wi * Ps[0, k]
            if code == SGD:
                _update(W, V, k, X, i, c, s, nesterov)
                if fit_intercept:
                    _update_intercept(W, V, k, c, s, nesterov)
            else:
                _adaptive_update(state, k, X, i, c, d, code, s)
                if fit_intercept:
                    _adaptive_coord(state, k, d, c, code, s, zero)
            _average(state, k, d + 1, s)
    return total


@njit(cache=True, nogil=True, error_model="numpy", fastmath=FASTMATH)
def _minibatch_epoch(X, Y, sw, order, state, hp, codes, log_rows, other_rows):
    """Batches of 2 to n - 1 rows: each batch's gradient summed into G (``_which_rows``
    for the last two arguments), then ``_step``."""
    n = X.shape[0]
    K, cols = state.shape[1], state.shape[2]
    loss = codes[P.LOSS]
    batch = codes[P.BATCH_SIZE]
    t = codes[P.T_START]
    G = np.zeros((K, cols), dtype=X.dtype)
    Ps = np.empty((4, K), dtype=X.dtype)
    S = _scratch()
    scratch = np.empty(N_SCALARS, dtype=X.dtype)
    W = state[0]
    data = (X, Y, sw, _unit_weights(sw))
    total = 0.0
    for start in range(0, n, batch):
        stop = min(start + batch, n)
        if log_rows is not None:
            total += _add_rows_single(data, W, order, start, stop, AHEAD, LOG, Ps, G, S)
        if other_rows is not None:
            total += _add_rows_other(data, W, order, start, stop, AHEAD, loss, Ps, G)
        t += 1
        _step(state, G, stop - start, t, hp, codes, scratch)
    return total


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _flush(parts, b, G):
    """parts[b] += G, then G = 0: a finished block's sum, from a thread's own buffer."""
    for k in range(G.shape[0]):
        for j in range(G.shape[1]):
            parts[b, k, j] += G[k, j]
            G[k, j] = 0


@njit(cache=True, nogil=True, error_model="numpy", fastmath=FASTMATH)
def _block_gradients(X, Y, sw, W, loss, bounds, counter, parts, losses, log_rows, other_rows):
    """Take blocks b = next_index(counter) until none is left: block b adds the sum over
    rows bounds[b]:bounds[b+1] (as stored) to parts[b] and its weighted loss to losses[b].

    Several threads may share one counter. Each sums its block into a buffer of its own
    and adds it to parts[b] when the block is done: blocks next to each other in
    ``parts`` share a cache line, which two threads writing row by row would pass back
    and forth.

    ``(log_rows, other_rows)``: which row loops (``_which_rows``)."""
    Ps = np.empty((4, W.shape[0]), dtype=X.dtype)
    S = _scratch()
    G = np.zeros_like(parts[0])
    data = (X, Y, sw, False)
    while True:
        b = next_index(counter)
        if b >= parts.shape[0]:
            break
        lo, hi = bounds[b], bounds[b + 1]
        if log_rows is not None:
            losses[b] += _add_rows_single(data, W, bounds, lo, hi, STORED, LOG, Ps, G, S)
        if other_rows is not None:
            losses[b] += _add_rows_other(data, W, bounds, lo, hi, STORED, loss, Ps, G)
        _flush(parts, b, G)


@njit(cache=True, nogil=True, error_model="numpy")
def _full_batch_step(state, parts, losses, n_rows, hp, codes):
    """Add the block gradients in block order and take the epoch's one step."""
    G = parts[0]
    total = losses[0]
    for b in range(1, parts.shape[0]):
        total += losses[b]
        Gb = parts[b]
        for k in range(G.shape[0]):
            for j in range(G.shape[1]):
                G[k, j] += Gb[k, j]
    _step(state, G, n_rows, codes[P.T_START] + 1, hp, codes, np.empty(N_SCALARS, dtype=G.dtype))
    return total


_pool = None
_pool_key = None
_pool_lock = threading.Lock()


def _executor(n_threads):
    """A process-wide thread pool, recreated after fork or when more threads are asked.

    A replaced pool is not shut down (another fit may still be submitting to it); its
    idle threads end when it is garbage collected.
    """
    global _pool, _pool_key
    with _pool_lock:
        if _pool is None or _pool_key[0] != os.getpid() or _pool_key[1] < n_threads:
            _pool = ThreadPoolExecutor(max_workers=n_threads, thread_name_prefix="fastgd")
            _pool_key = (os.getpid(), n_threads)
        return _pool


@njit(cache=True, nogil=True)
def _order_in_range(order, n):
    """Whether every entry of ``order`` is in [0, n): one pass, no temporaries."""
    ok = True
    for i in range(order.shape[0]):
        o = order[i]
        ok &= (o >= 0) & (o < n)
    return ok


@njit(cache=True, nogil=True)
def _labels_in_range(Y, K):
    """Whether ``Y[:, 0]`` holds class indices 0 .. K - 1 (whole numbers, no NaN)."""
    for i in range(Y.shape[0]):
        c = Y[i, 0]
        if not (c >= 0 and c < K and c == np.floor(c)):
            return False
    return True


@reports_damaged_cache
def epoch(X, Y, sw, order, state, hp, codes):
    """One epoch in place; returns the sum of ``sw_i * loss_i``. See the NumPy reference.

    The arguments are checked first (``fastgd._checks.check_epoch``: dtypes, layout,
    shapes, codes, the order's row indices when the batch is shuffled, multinomial class
    indices): the jitted loops trust them, and Numba would otherwise compile a new
    specialisation for any other dtype or layout (the inputs go in as read-only views:
    one signature whether the caller's arrays are writable or not)."""
    X, Y, sw, order, hp, codes = read_only(X, Y, sw, order, hp, codes)
    _checks.check_epoch(X, Y, sw, order, state, hp, codes, "numba",
                        in_range=_order_in_range, labels_ok=_labels_in_range)
    n = X.shape[0]
    if n == 0:
        return 0.0  # no rows, no step (a step of 0 rows would divide by zero)
    if codes[P.BATCH_SIZE] == 1 and n > 1:
        return _sgd_epoch(X, Y, sw, order, state, hp, codes)
    if codes[P.BATCH_SIZE] < n:
        return _minibatch_epoch(X, Y, sw, order, state, hp, codes, *_which_rows(state.shape[1], codes[P.LOSS]))
    K, cols = state.shape[1], state.shape[2]
    bounds = block_bounds(n, K, cols)
    n_blocks = len(bounds) - 1
    parts = np.zeros((n_blocks, K, cols), dtype=X.dtype)
    losses = np.zeros(n_blocks)
    counter = np.zeros(1, dtype=np.int64)
    loss = codes[P.LOSS]
    n_threads = int(min(codes[P.N_THREADS], n_blocks))
    if n * cols < _tuning.PARALLEL_MIN_VALUES:  # (read at each call)
        n_threads = 1  # too little work to be worth waking other threads
    args = (X, Y, sw, state[0], loss, bounds, counter, parts, losses, *_which_rows(K, loss))
    if n_threads <= 1:
        _block_gradients(*args)
    else:
        # the other threads take blocks from the shared counter, and so does this one
        futures = [_executor(n_threads - 1).submit(_block_gradients, *args) for _ in range(n_threads - 1)]
        _block_gradients(*args)
        for f in futures:
            f.result()
    return _full_batch_step(state, parts, losses, n, hp, codes)


@reports_damaged_cache
def gradient(X, Y, sw, W, codes, G):
    """Add ``sum_i sw_i * dloss_i/dW`` over all rows to ``G`` (K, d+1) float64 and return
    ``sum_i sw_i * loss_i``; no step. See ``fastgd._numpy.kernels.gradient``.

    One thread, rows in storage order (the Dask driver runs one such call per block,
    in parallel over the workers). ``G`` is float64 whatever the data's dtype.
    """
    X, Y, sw, W, codes = read_only(X, Y, sw, W, codes)
    _checks.check_gradient(X, Y, sw, W, codes, G, "numba", labels_ok=_labels_in_range)
    bounds = np.array([0, X.shape[0]], dtype=np.int64)
    losses = np.zeros(1)
    counter = np.zeros(1, dtype=np.int64)
    _block_gradients(X, Y, sw, W, codes[P.LOSS], bounds, counter, G[np.newaxis], losses,
                     *_which_rows(W.shape[0], codes[P.LOSS]))
    return float(losses[0])
