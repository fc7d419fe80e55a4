"""Numba kernel of many models on one pass: ``path_epoch`` (contract and reference:
``fastgd._numpy.path``), dense or CSR rows.

Each row of the epoch's order is read once; every model whose fold trains on it
(``train[i, f]``) takes its outputs, its loss and its gradient from it, and a fold's
models step when the fold's batch is complete (batches are counted per fold, so each
model takes exactly the steps of its own fit). The step is the single-model kernels'
``_step`` (every update rule, schedule, penalty and averaging), on the model's rows of
the state, ``hp`` and ``codes``. For CSR rows the step is the dense one (O(K d) per
update), as in the NumPy reference.

With ``codes[0, N_THREADS] > 1`` the folds are shared among threads, each running
this ``nogil`` kernel over every row for its own folds' models (no model is written by
two threads).
"""

import numpy as np
import scipy.sparse as sp
from numba import njit

from .. import _checks, _tuning
from .. import _params as P
from .._losses import MULTINOMIAL
from ._cache import reports_damaged_cache
from ._intrinsics import prefetch
from .kernels import (
    FASTMATH,
    N_SCALARS,
    _executor,
    _labels_in_range,
    _order_in_range,
    _step,
)
from .losses import loss_and_grad, loss_grad_single


@njit(cache=True, nogil=True, error_model="numpy")
def _fold_counts(train, model_fold, codes, part, n_parts):
    """Rows per fold, each fold's batch size, and which folds this part runs."""
    n, F = train.shape
    n_f = np.zeros(F, dtype=np.int64)
    for i in range(n):
        for f in range(F):
            n_f[f] += train[i, f]
    batch = np.ones(F, dtype=np.int64)
    mine = np.zeros(F, dtype=np.bool_)
    for m in range(model_fold.shape[0]):
        f = model_fold[m]
        if f >= 0 and f % n_parts == part:
            mine[f] = True
            batch[f] = codes[m, P.BATCH_SIZE]
    return n_f, batch, mine


@njit(cache=True, nogil=True, error_model="numpy", fastmath=FASTMATH)
def _dense_rows(X, Y, sw, order, train, scale, state, hp, codes, model_fold, losses, part, n_parts):
    n, d = X.shape
    M, K = state.shape[0], state.shape[2]
    F = train.shape[1]
    loss = codes[0, P.LOSS]
    single = K == 1 and loss != MULTINOMIAL
    n_f, batch, mine = _fold_counts(train, model_fold, codes, part, n_parts)
    cnt = np.zeros(F, dtype=np.int64)
    seen = np.zeros(F, dtype=np.int64)
    live = np.zeros(F, dtype=np.bool_)
    done = np.zeros(F, dtype=np.bool_)
    t = np.zeros(M, dtype=np.int64)
    for m in range(M):
        t[m] = codes[m, P.T_START]
        f = model_fold[m]
        if f >= 0 and mine[f]:
            losses[m] = 0.0
    G = np.zeros((M, K, d + 1), dtype=X.dtype)
    Ps = np.empty((1, K), dtype=X.dtype)
    s = np.empty(N_SCALARS, dtype=X.dtype)
    # every fold of this part in one full batch: read the rows as stored
    stored = True
    for f in range(F):
        if mine[f] and batch[f] < n_f[f]:
            stored = False
    step = max(1, _tuning.CACHE_LINE_BYTES // X.itemsize)
    for ii in range(n):
        i = ii if stored else order[ii]
        if not stored and ii + _tuning.DENSE_PREFETCH_AHEAD < n:
            nxt = order[ii + _tuning.DENSE_PREFETCH_AHEAD]
            for j in range(0, d, step):
                prefetch(X, nxt, j)
        anyf = False
        for f in range(F):
            hit = mine[f] and train[i, f] != 0
            live[f] = hit
            if hit:
                cnt[f] += 1
                seen[f] += 1
                done[f] = cnt[f] == batch[f] or seen[f] == n_f[f]
                anyf = True
        if not anyf:
            continue
        for m in range(M):
            f = model_fold[m]
            if f < 0 or not live[f]:
                continue
            wi = sw[i] * scale[f]
            for k in range(K):
                acc = state[m, 0, k, d]
                for j in range(d):
                    acc += state[m, 0, k, j] * X[i, j]
                Ps[0, k] = acc
            if single:
                value, g = loss_grad_single(loss, Ps[0, 0], Y[i, 0])
                Ps[0, 0] = g
            else:
                value = loss_and_grad(loss, Ps, 0, Y, i)
            losses[m] += wi * value
            for k in range(K):
                c = wi * Ps[0, k]
                for j in range(d):
                    G[m, k, j] += c * X[i, j]
                G[m, k, d] += c
            if done[f]:
                t[m] += 1
                _step(state[m], G[m], cnt[f], t[m], hp[m], codes[m], s)
        for f in range(F):
            if live[f] and done[f]:
                cnt[f] = 0


@njit(cache=True, nogil=True, error_model="numpy", fastmath=FASTMATH)
def _sparse_rows(data, indices, indptr, d, Y, sw, order, train, scale, state, hp, codes, model_fold, losses,
                 part, n_parts):
    n = indptr.shape[0] - 1
    M, K = state.shape[0], state.shape[2]
    F = train.shape[1]
    loss = codes[0, P.LOSS]
    single = K == 1 and loss != MULTINOMIAL
    n_f, batch, mine = _fold_counts(train, model_fold, codes, part, n_parts)
    cnt = np.zeros(F, dtype=np.int64)
    seen = np.zeros(F, dtype=np.int64)
    live = np.zeros(F, dtype=np.bool_)
    done = np.zeros(F, dtype=np.bool_)
    t = np.zeros(M, dtype=np.int64)
    for m in range(M):
        t[m] = codes[m, P.T_START]
        f = model_fold[m]
        if f >= 0 and mine[f]:
            losses[m] = 0.0
    G = np.zeros((M, K, d + 1), dtype=data.dtype)
    Ps = np.empty((1, K), dtype=data.dtype)
    s = np.empty(N_SCALARS, dtype=data.dtype)
    stored = True
    for f in range(F):
        if mine[f] and batch[f] < n_f[f]:
            stored = False
    for ii in range(n):
        i = ii if stored else order[ii]
        anyf = False
        for f in range(F):
            hit = mine[f] and train[i, f] != 0
            live[f] = hit
            if hit:
                cnt[f] += 1
                seen[f] += 1
                done[f] = cnt[f] == batch[f] or seen[f] == n_f[f]
                anyf = True
        if not anyf:
            continue
        lo, hi = indptr[i], indptr[i + 1]
        for m in range(M):
            f = model_fold[m]
            if f < 0 or not live[f]:
                continue
            wi = sw[i] * scale[f]
            for k in range(K):
                acc = state[m, 0, k, d]
                for p in range(lo, hi):
                    acc += state[m, 0, k, indices[p]] * data[p]
                Ps[0, k] = acc
            if single:
                value, g = loss_grad_single(loss, Ps[0, 0], Y[i, 0])
                Ps[0, 0] = g
            else:
                value = loss_and_grad(loss, Ps, 0, Y, i)
            losses[m] += wi * value
            for k in range(K):
                c = wi * Ps[0, k]
                for p in range(lo, hi):
                    G[m, k, indices[p]] += c * data[p]
                G[m, k, d] += c
            if done[f]:
                t[m] += 1
                _step(state[m], G[m], cnt[f], t[m], hp[m], codes[m], s)
        for f in range(F):
            if live[f] and done[f]:
                cnt[f] = 0


@reports_damaged_cache
def path_epoch(X, Y, sw, order, train, scale, state, hp, codes, model_fold, losses):
    """One epoch of M models in place; see ``fastgd._numpy.path.path_epoch``. ``X`` is a
    dense C-contiguous array or a ``scipy.sparse`` CSR matrix with int64 indices."""
    if sp.issparse(X):
        data, indices, indptr = X.data, X.indices, X.indptr
        n, d = X.shape
        _checks.check_csr_arrays(data, indices, indptr, n, d)
        dtype = _checks.check_path(n, d, Y, sw, order, train, scale, state, hp, codes, model_fold, losses,
                                   "numba", in_range=_order_in_range, labels_ok=_labels_in_range)
        if data.dtype != dtype:
            raise ValueError(f"X has dtype {data.dtype} but Y has {dtype}")
        run = lambda part, parts: _sparse_rows(data, indices, indptr, d, Y, sw, order, train, scale, state,
                                               hp, codes, model_fold, losses, part, parts)
    else:
        _checks.check_floats((("X", X),))
        if X.ndim != 2:
            raise ValueError(f"X must be 2-D, got {X.ndim} dimensions")
        n, d = X.shape
        dtype = _checks.check_path(n, d, Y, sw, order, train, scale, state, hp, codes, model_fold, losses,
                                   "numba", in_range=_order_in_range, labels_ok=_labels_in_range)
        if X.dtype != dtype:
            raise ValueError(f"X has dtype {X.dtype} but Y has {dtype}")
        run = lambda part, parts: _dense_rows(X, Y, sw, order, train, scale, state, hp, codes,
                                              model_fold, losses, part, parts)
    if state.shape[0] == 0 or n == 0:
        return
    folds = np.unique(model_fold[model_fold >= 0])
    parts = int(min(codes[0, P.N_THREADS], folds.shape[0])) if folds.shape[0] else 1
    if parts <= 1:
        run(0, 1)
        return
    futures = [_executor(parts - 1).submit(run, p, parts) for p in range(1, parts)]
    run(0, parts)
    for fut in futures:
        fut.result()
