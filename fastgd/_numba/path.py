"""Numba kernel of many models on one pass: ``path_epoch`` (contract and reference:
``fastgd._numpy.path``), dense or CSR rows.

Each row of the epoch's order is read once; every model whose fold trains on it
(``train[i, f]``) takes its outputs, its loss and its gradient from it, and a fold's
models step when the fold's batch is complete (batches are counted per fold, so each
model takes exactly the steps of its own fit). The step is the single-model kernels'
``_step`` (every update rule, schedule, penalty and averaging), on the model's rows of
the state, ``hp`` and ``codes``. For CSR rows the step is the dense one (O(K d) per
update), as in the NumPy reference.

With ``codes[0, N_THREADS] > 1`` the models to run are dealt round-robin to threads
(``fastgd._checks.model_parts``: balanced whatever the folds), each running this
``nogil`` kernel over every row for its own models (no model is written by two
threads; each keeps its own fold counters).
"""

import numpy as np
import scipy.sparse as sp
from numba import njit

from .. import _checks, _tuning
from .. import _params as P
from .._checks import model_parts
from .._losses import LOG, MULTINOMIAL
from ._cache import reports_damaged_cache
from .kernels import (
    FASTMATH,
    N_SCALARS,
    _accumulate,
    _executor,
    _labels_in_range,
    _order_in_range,
    _outputs,
    _outputs4,
    _prefetch_row,
    _scratch,
    _step,
    _take_row,
    _unit_weights,
)
from .losses import loss_and_grad, loss_grad_single, single_losses


@njit(cache=True, nogil=True, error_model="numpy")
def _fold_counts(train, model_fold, model_part, codes, part):
    """Rows per fold, each fold's batch size, and which folds this part has models of."""
    n, F = train.shape
    n_f = np.zeros(F, dtype=np.int64)
    for i in range(n):
        for f in range(F):
            n_f[f] += train[i, f]
    batch = np.ones(F, dtype=np.int64)
    mine = np.zeros(F, dtype=np.bool_)
    for m in range(model_fold.shape[0]):
        f = model_fold[m]
        if f >= 0:
            batch[f] = codes[m, P.BATCH_SIZE]
            if model_part[m] == part:
                mine[f] = True
    return n_f, batch, mine


@njit(cache=True, nogil=True, error_model="numpy")
def _all_full_batch(n_f, batch, model_fold):
    """Whether every fold with a model to run takes its rows in one full batch: then the
    rows are read as stored. Decided over all folds, not per thread's part, so that the
    result does not depend on the number of threads."""
    for m in range(model_fold.shape[0]):
        f = model_fold[m]
        if f >= 0 and batch[f] < n_f[f]:
            return False
    return True


@njit(cache=True, nogil=True, error_model="numpy", fastmath=FASTMATH, inline="always")
def _segment(X, Y, sw, W, rows, s, unit, loss, single, P, G, S, fetch):
    """Add the weighted loss gradients of the rows ``rows[:s]`` (global row indices) at
    the weights W (K, d + 1) to G; return their weighted loss (weights ``sw``, unscaled).

    One output: blocks of up to ``LOSS_BLOCK_ROWS`` rows, the outputs four rows at a
    time (one pass over W for four dot products), the block's losses in one loop (the
    log loss's vectorised ``exp``, ``single_losses``), the gradients four rows at a time
    (one pass over G). The rows are in cache for every model but the first of a fold
    (which prefetches ahead when ``fetch``), so four at a time pays at any row width.
    Several outputs: row by row."""
    d = X.shape[1]
    total = 0.0
    ahead = _tuning.DENSE_PREFETCH_AHEAD
    if not single:
        for r in range(s):
            i = rows[r]
            if fetch and r + ahead < s:
                _prefetch_row(X, Y, sw, rows[r + ahead], unit)
            _outputs(W, X, i, P, 0)
            value = loss_and_grad(loss, P, 0, Y, i)
            wi = sw[0] if unit else sw[i]
            total += wi * value
            _accumulate(G, X, i, P, 0, wi)
        return total
    start = 0
    while start < s:
        m = min(S.shape[1], s - start)
        r = 0
        while r < m:
            q = start + r
            if fetch:
                for a in range(q + ahead, min(q + ahead + 4, s)):
                    _prefetch_row(X, Y, sw, rows[a], unit)
            if r + 4 <= m:
                i0, i1, i2, i3 = rows[q], rows[q + 1], rows[q + 2], rows[q + 3]
                _outputs4(W, X, i0, i1, i2, i3, P)
                _take_row(Y, sw, i0, unit, S, r, P[0, 0])
                _take_row(Y, sw, i1, unit, S, r + 1, P[1, 0])
                _take_row(Y, sw, i2, unit, S, r + 2, P[2, 0])
                _take_row(Y, sw, i3, unit, S, r + 3, P[3, 0])
                r += 4
            else:
                i = rows[q]
                _outputs(W, X, i, P, 0)
                _take_row(Y, sw, i, unit, S, r, P[0, 0])
                r += 1
        if loss == LOG:
            total += single_losses(loss, S, m)
        else:  # squared error: cheap, row by row
            for r in range(m):
                value, g = loss_grad_single(loss, S[0, r], S[1, r])
                S[3, r] = S[2, r] * g
                total += S[2, r] * value
        r = 0
        while r + 4 <= m:
            q = start + r
            i0, i1, i2, i3 = rows[q], rows[q + 1], rows[q + 2], rows[q + 3]
            for u in range(4):
                P[u, 0] = S[3, r + u]  # (through P: the products below stay in X's dtype)
            c0, c1, c2, c3 = P[0, 0], P[1, 0], P[2, 0], P[3, 0]
            for j in range(d):
                G[0, j] = G[0, j] + c0 * X[i0, j] + c1 * X[i1, j] + c2 * X[i2, j] + c3 * X[i3, j]
            G[0, d] = G[0, d] + c0 + c1 + c2 + c3
            r += 4
        while r < m:
            i = rows[start + r]
            P[0, 0] = S[3, r]
            c = P[0, 0]
            for j in range(d):
                G[0, j] += c * X[i, j]
            G[0, d] += c
            r += 1
        start += m
    return total


@njit(cache=True, nogil=True, error_model="numpy", fastmath=FASTMATH)
def _dense_rows(X, Y, sw, order, train, scale, state, hp, codes, model_fold, losses, model_part, part):
    """The rows go by windows of ``PATH_WINDOW_ROWS`` of the order: each row is read
    from memory once, for the first model of each fold it trains, and from cache for
    the fold's other models. A window's rows are dealt to their folds' segments; a
    segment is handed to each of its fold's models when the fold's batch is complete
    (then they step) or at the window's end (the weights do not change within a batch,
    so its rows' gradients may be summed in parts)."""
    n, d = X.shape
    M, K = state.shape[0], state.shape[2]
    F = train.shape[1]
    loss = codes[0, P.LOSS]
    single = K == 1 and loss != MULTINOMIAL
    unit = _unit_weights(sw)
    n_f, batch, mine = _fold_counts(train, model_fold, model_part, codes, part)
    models = np.empty((F, max(M, 1)), dtype=np.int64)
    n_models = np.zeros(F, dtype=np.int64)
    t = np.zeros(M, dtype=np.int64)
    for m in range(M):
        t[m] = codes[m, P.T_START]
        f = model_fold[m]
        if f >= 0 and model_part[m] == part:
            losses[m] = 0.0
            models[f, n_models[f]] = m
            n_models[f] += 1
    window = _tuning.PATH_WINDOW_ROWS
    seg = np.empty((F, window), dtype=np.int64)
    seg_len = np.zeros(F, dtype=np.int64)
    cnt = np.zeros(F, dtype=np.int64)
    seen = np.zeros(F, dtype=np.int64)
    G = np.zeros((M, K, d + 1), dtype=X.dtype)
    Ps = np.empty((4, K), dtype=X.dtype)
    S = _scratch()
    sc = np.empty(N_SCALARS, dtype=X.dtype)
    stored = _all_full_batch(n_f, batch, model_fold)
    for w0 in range(0, n, window):
        w1 = min(n, w0 + window)
        # (one call site of _flush, inlined with the step: w1 itself is the window's end,
        # where every fold hands over what it holds without stepping)
        for ii in range(w0, w1 + 1):
            end = ii == w1
            i = 0 if end else (ii if stored else order[ii])
            for f in range(F):
                if not mine[f]:
                    continue
                if end:
                    if seg_len[f] == 0:
                        continue
                    step = False
                else:
                    if train[i, f] == 0:
                        continue
                    seg[f, seg_len[f]] = i
                    seg_len[f] += 1
                    cnt[f] += 1
                    seen[f] += 1
                    step = cnt[f] == batch[f] or seen[f] == n_f[f]
                    if not step:
                        continue
                _flush(X, Y, sw, seg, seg_len, cnt, f, step, models, n_models, scale, state, hp, codes, t,
                       losses, loss, single, unit, Ps, G, S, sc)


@njit(cache=True, nogil=True, error_model="numpy", fastmath=FASTMATH, inline="always")
def _flush(X, Y, sw, seg, seg_len, cnt, f, step, models, n_models, scale, state, hp, codes, t, losses, loss,
           single, unit, Ps, G, S, sc):
    """Hand fold f's segment to each of its models; with ``step``, the batch is complete:
    scale its gradient by the fold's weight factor and take the step."""
    s = seg_len[f]
    rows = seg[f]
    c = scale[f]
    for q in range(n_models[f]):
        m = models[f, q]
        W = state[m, 0]
        Gm = G[m]
        losses[m] += c * _segment(X, Y, sw, W, rows, s, unit, loss, single, Ps, Gm, S, q == 0)
        if step:
            for k in range(Gm.shape[0]):
                for j in range(Gm.shape[1]):
                    Gm[k, j] = Gm[k, j] * c
            t[m] += 1
            _step(state[m], Gm, cnt[f], t[m], hp[m], codes[m], sc)
    seg_len[f] = 0
    if step:
        cnt[f] = 0


@njit(cache=True, nogil=True, error_model="numpy", fastmath=FASTMATH)
def _sparse_rows(data, indices, indptr, d, Y, sw, order, train, scale, state, hp, codes, model_fold, losses,
                 model_part, part):
    n = indptr.shape[0] - 1
    M, K = state.shape[0], state.shape[2]
    F = train.shape[1]
    loss = codes[0, P.LOSS]
    single = K == 1 and loss != MULTINOMIAL
    n_f, batch, mine = _fold_counts(train, model_fold, model_part, codes, part)
    cnt = np.zeros(F, dtype=np.int64)
    seen = np.zeros(F, dtype=np.int64)
    live = np.zeros(F, dtype=np.bool_)
    done = np.zeros(F, dtype=np.bool_)
    t = np.zeros(M, dtype=np.int64)
    for m in range(M):
        t[m] = codes[m, P.T_START]
        f = model_fold[m]
        if f >= 0 and model_part[m] == part:
            losses[m] = 0.0
    G = np.zeros((M, K, d + 1), dtype=data.dtype)
    Ps = np.empty((1, K), dtype=data.dtype)
    s = np.empty(N_SCALARS, dtype=data.dtype)
    stored = _all_full_batch(n_f, batch, model_fold)
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
            if f < 0 or not live[f] or model_part[m] != part:
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
        run = lambda part: _sparse_rows(data, indices, indptr, d, Y, sw, order, train, scale, state,
                                        hp, codes, model_fold, losses, model_part, part)
    else:
        _checks.check_floats((("X", X),))
        if X.ndim != 2:
            raise ValueError(f"X must be 2-D, got {X.ndim} dimensions")
        n, d = X.shape
        dtype = _checks.check_path(n, d, Y, sw, order, train, scale, state, hp, codes, model_fold, losses,
                                   "numba", in_range=_order_in_range, labels_ok=_labels_in_range)
        if X.dtype != dtype:
            raise ValueError(f"X has dtype {X.dtype} but Y has {dtype}")
        run = lambda part: _dense_rows(X, Y, sw, order, train, scale, state, hp, codes,
                                       model_fold, losses, model_part, part)
    if state.shape[0] == 0 or n == 0:
        return
    model_part, parts = model_parts(model_fold, int(codes[0, P.N_THREADS]))
    if parts <= 1:
        run(0)
        return
    futures = [_executor(parts - 1).submit(run, p) for p in range(1, parts)]
    run(0)
    for fut in futures:
        fut.result()
