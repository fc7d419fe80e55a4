"""Numba kernels: one ``epoch`` call runs one epoch of gradient descent for any batch size.

The algorithm is the one documented in ``fastgd._numpy.kernels.epoch`` (the reference);
this is the same computation written as loops. Losses and schedules arrive as integer
codes from their registries (a jitted function passed as an argument, or a kernel built
in a closure, would defeat ``cache=True``).

Full batch (``batch_size >= n``) sums the gradient over fixed row blocks, each into its
own buffer, and adds the buffers in block order. The blocks depend only on the data's
shape, so the result is bit-for-bit the same for any number of threads; with
``n_threads > 1`` the blocks are shared among Python threads running the ``nogil``
kernel (no Numba threading layer is involved, so fits are safe to run concurrently from
several threads and after ``fork``).

Note for developers: Numba's on-disk cache is keyed on this file only. After changing a
constant in ``fastgd._params``/``_losses``/``_schedules``, clear ``__pycache__`` here.
"""

import os
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from numba import njit

from .. import _params as P
from .._schedules import CONSTANT, INVSCALING, OPTIMAL
from .losses import loss_and_grad

# full batch: blocks of at least this many rows ...
MIN_BLOCK_ROWS = 2048
# ... and at most this many blocks, or this many block-buffer elements in all
MAX_BLOCKS = 64
MAX_BUFFER = 1 << 22


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
def _add_row(X, Y, sw, W, i, loss, p, G):
    """Add row i's weighted loss gradient to G (K, d+1); return its weighted loss."""
    d = X.shape[1]
    K = W.shape[0]
    for k in range(K):
        acc = W[k, d]
        for j in range(d):
            acc += W[k, j] * X[i, j]
        p[k] = acc
    value = sw[i] * loss_and_grad(loss, p, Y[i])
    for k in range(K):
        c = sw[i] * p[k]
        for j in range(d):
            G[k, j] += c * X[i, j]
        G[k, d] += c
    return value


@njit(cache=True, nogil=True)
def _step(state, G, n_rows, t, hp, codes, s):
    """One update from the summed batch gradient G of ``n_rows`` rows; zeroes G.

    ``s`` is a scratch vector of 6 in the data's dtype (allocated once per epoch, not
    per step): the step's scalars go through it so float32 data is computed in float32.
    """
    W = state[0]
    V = state[1]
    K, cols = W.shape
    d = cols - 1
    n_cols = cols if codes[P.FIT_INTERCEPT] != 0 else d
    nesterov = codes[P.NESTEROV] != 0
    s[0] = hp[P.MOMENTUM]
    s[1] = hp[P.L2]
    s[2] = _step_size(codes[P.SCHEDULE], t, hp[P.ETA0], hp[P.POWER_T], hp[P.OPTIMAL_T0], hp[P.ALPHA])
    s[3] = 1.0 / n_rows
    s[4] = s[2] * hp[P.L1]
    s[5] = 0.0
    mu, l2, eta, inv_b, shrink, zero = s[0], s[1], s[2], s[3], s[4], s[5]
    for k in range(K):
        if n_cols == d:
            G[k, d] = zero  # no intercept: its gradient is dropped
        for j in range(n_cols):
            g = G[k, j] * inv_b
            G[k, j] = zero
            if j < d:
                g += l2 * W[k, j]
            v = mu * V[k, j] + g
            V[k, j] = v
            if nesterov:
                w = W[k, j] - eta * (g + mu * v)
            else:
                w = W[k, j] - eta * v
            if j < d and shrink > zero:
                if w > shrink:
                    w -= shrink
                elif w < -shrink:
                    w += shrink
                else:
                    w = zero
            W[k, j] = w


@njit(cache=True, nogil=True)
def _minibatch_epoch(X, Y, sw, order, state, hp, codes):
    n = X.shape[0]
    K, cols = state.shape[1], state.shape[2]
    loss = codes[P.LOSS]
    batch = codes[P.BATCH_SIZE]
    t = codes[P.T_START]
    G = np.zeros((K, cols), dtype=X.dtype)
    p = np.empty(K, dtype=X.dtype)
    scratch = np.empty(6, dtype=X.dtype)
    total = 0.0
    for start in range(0, n, batch):
        stop = min(start + batch, n)
        for ii in range(start, stop):
            total += _add_row(X, Y, sw, state[0], order[ii], loss, p, G)
        t += 1
        _step(state, G, stop - start, t, hp, codes, scratch)
    return total


@njit(cache=True, nogil=True)
def _block_gradients(X, Y, sw, W, loss, bounds, first, stride, parts, losses):
    """Blocks first, first + stride, ...: block b sums rows bounds[b]:bounds[b+1] into
    parts[b] and its weighted loss into losses[b]."""
    p = np.empty(W.shape[0], dtype=X.dtype)
    for b in range(first, parts.shape[0], stride):
        total = 0.0
        for i in range(bounds[b], bounds[b + 1]):
            total += _add_row(X, Y, sw, W, i, loss, p, parts[b])
        losses[b] = total


@njit(cache=True, nogil=True)
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
    _step(state, G, n_rows, codes[P.T_START] + 1, hp, codes, np.empty(6, dtype=G.dtype))
    return total


def block_bounds(n, n_outputs, n_cols):
    """Row boundaries of the full-batch blocks: a function of the shape only."""
    n_blocks = max(1, min(MAX_BLOCKS, n // MIN_BLOCK_ROWS, MAX_BUFFER // (n_outputs * n_cols)))
    return np.linspace(0, n, n_blocks + 1).astype(np.int64)


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


def epoch(X, Y, sw, order, state, hp, codes):
    """One epoch in place; returns the sum of ``sw_i * loss_i``. See the NumPy reference."""
    n = X.shape[0]
    if codes[P.BATCH_SIZE] < n:
        return _minibatch_epoch(X, Y, sw, order, state, hp, codes)
    K, cols = state.shape[1], state.shape[2]
    bounds = block_bounds(n, K, cols)
    n_blocks = len(bounds) - 1
    parts = np.zeros((n_blocks, K, cols), dtype=X.dtype)
    losses = np.zeros(n_blocks)
    loss = codes[P.LOSS]
    n_threads = int(min(codes[P.N_THREADS], n_blocks))
    if n_threads <= 1:
        _block_gradients(X, Y, sw, state[0], loss, bounds, 0, 1, parts, losses)
    else:
        pool = _executor(n_threads)
        futures = [
            pool.submit(
                _block_gradients, X, Y, sw, state[0], loss, bounds, j, n_threads, parts, losses
            )
            for j in range(n_threads)
        ]
        for f in futures:
            f.result()
    return _full_batch_step(state, parts, losses, n, hp, codes)


def gradient(X, Y, sw, W, codes, G):
    """Add ``sum_i sw_i * dloss_i/dW`` over all rows to ``G`` (K, d+1) float64 and return
    ``sum_i sw_i * loss_i``; no step. See ``fastgd._numpy.kernels.gradient``.

    One thread, rows in storage order (the Dask driver runs one such call per block,
    in parallel over the workers). ``G`` is float64 whatever the data's dtype.
    """
    bounds = np.array([0, X.shape[0]], dtype=np.int64)
    losses = np.zeros(1)
    _block_gradients(X, Y, sw, W, codes[P.LOSS], bounds, 0, 1, G[np.newaxis], losses)
    return float(losses[0])
