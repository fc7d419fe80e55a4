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
from .._losses import MULTINOMIAL
from ._cache import reports_damaged_cache
from ._inputs import read_only
from .kernels import (
    CACHED,
    FASTMATH,
    N_SCALARS,
    _add_rows_multi,
    _add_rows_single,
    _executor,
    _labels_in_range,
    _order_in_range,
    _prefetch_row,
    _scratch,
    _step,
    _unit_weights,
)
from .losses import loss_and_grad, loss_grad_single


@njit(cache=True, nogil=True, error_model="numpy")
def _plan(train, models, part):
    """What this part runs: the rows per fold ``n_f``, each fold's batch size, each
    model's step count ``t`` (from ``T_START``), the fold's models of this part
    (``members[f, :n_members[f]]``), and whether the rows are read as stored; the
    losses of this part's models are zeroed.

    The rows are read as stored when every fold with a model to run takes its rows in
    one full batch: decided over all folds, not per part, so that the result does not
    depend on the number of threads."""
    state, hp, codes, model_fold, model_part, losses = models
    n, F = train.shape
    M = model_fold.shape[0]
    n_f = np.zeros(F, dtype=np.int64)
    for i in range(n):
        for f in range(F):
            n_f[f] += train[i, f]
    batch = np.ones(F, dtype=np.int64)
    members = np.empty((F, max(M, 1)), dtype=np.int64)
    n_members = np.zeros(F, dtype=np.int64)
    t = np.zeros(M, dtype=np.int64)
    for m in range(M):
        t[m] = codes[m, P.T_START]
        f = model_fold[m]
        if f >= 0:
            batch[f] = codes[m, P.BATCH_SIZE]
            if model_part[m] == part:
                losses[m] = 0.0
                members[f, n_members[f]] = m
                n_members[f] += 1
    stored = True
    for m in range(M):
        f = model_fold[m]
        if f >= 0 and batch[f] < n_f[f]:
            stored = False
    return n_f, batch, t, members, n_members, stored


@njit(cache=True, nogil=True, error_model="numpy", fastmath=FASTMATH)
def _dense_rows(X, Y, sw, order, train, scale, models, part, single_rows, multi_rows):
    """The rows go by windows of ``PATH_WINDOW_ROWS`` of the order: each row is read
    from memory once, for the first model of each fold it trains, and from cache for
    the fold's other models. A window's rows are dealt to their folds' segments; a
    segment is handed to each of its fold's models when the fold's batch is complete
    (then they step) or at the window's end (the weights do not change within a batch,
    so its rows' gradients may be summed in parts). A row is prefetched
    ``DENSE_PREFETCH_AHEAD`` places before it is dealt, and a segment's rows go through
    the single-model epoch's row loops as rows in cache (four at a time).

    ``models`` is ``(state, hp, codes, model_fold, model_part, losses)``: the kernel runs
    the models m with ``model_part[m] == part``. ``(single_rows, multi_rows)`` is
    ``(True, None)`` for one output (log loss or squared error, by blocks) and ``(None,
    True)`` for several or the multinomial loss: Numba drops a branch on an argument
    that is None before it types the function, so each signature compiles one row loop
    (see ``fastgd._numba.kernels``)."""
    n, d = X.shape
    state, hp, codes, model_fold, model_part, losses = models
    M, K = state.shape[0], state.shape[2]
    F = train.shape[1]
    loss = codes[0, P.LOSS]
    unit = _unit_weights(sw)
    data = (X, Y, sw, unit)
    n_f, batch, t, members, n_members, stored = _plan(train, models, part)
    ahead = _tuning.DENSE_PREFETCH_AHEAD
    window = _tuning.PATH_WINDOW_ROWS
    seg = np.empty((F, window), dtype=np.int64)
    seg_len = np.zeros(F, dtype=np.int64)
    cnt = np.zeros(F, dtype=np.int64)
    seen = np.zeros(F, dtype=np.int64)
    G = np.zeros((M, K, d + 1), dtype=X.dtype)
    Ps = np.empty((4, K), dtype=X.dtype)
    S = _scratch()
    sc = np.empty(N_SCALARS, dtype=X.dtype)
    for w0 in range(0, n, window):
        w1 = min(n, w0 + window)
        # (one copy of the hand-over below, inlined with the step: w1 itself is the
        # window's end, where every fold hands over what it holds without stepping)
        for ii in range(w0, w1 + 1):
            end = ii == w1
            i = 0 if end else (ii if stored else order[ii])
            if not end and ii + ahead < n:  # (every fold's models read the row from cache)
                _prefetch_row(X, Y, sw, ii + ahead if stored else order[ii + ahead], unit)
            for f in range(F):
                if n_members[f] == 0:
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
                # fold f's segment to each of its models; with ``step`` the batch is
                # complete: its gradient is scaled by the fold's weight factor, and the
                # models step
                rows = seg[f, : seg_len[f]]
                c = scale[f]
                for q in range(n_members[f]):
                    m = members[f, q]
                    Gm = G[m]
                    value = 0.0
                    if single_rows is not None:  # (the squared error by blocks too)
                        value = _add_rows_single(data, state[m, 0], rows, 0, rows.shape[0], CACHED, loss, Ps, Gm, S)
                    if multi_rows is not None:
                        value = _add_rows_multi(data, state[m, 0], rows, 0, rows.shape[0], CACHED, loss, Ps, Gm)
                    losses[m] += c * value
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
def _sparse_rows(csr, Y, sw, order, train, scale, models, part):
    """CSR rows (``csr`` is ``(data, indices, indptr, d)``), one at a time in the order:
    each model of each fold the row trains takes its outputs, loss and gradient from it,
    and steps when its fold's batch is complete. ``models``: as for ``_dense_rows``."""
    data, indices, indptr, d = csr
    state, hp, codes, model_fold, model_part, losses = models
    n = indptr.shape[0] - 1
    M, K = state.shape[0], state.shape[2]
    F = train.shape[1]
    loss = codes[0, P.LOSS]
    single = K == 1 and loss != MULTINOMIAL
    n_f, batch, t, members, n_members, stored = _plan(train, models, part)
    cnt = np.zeros(F, dtype=np.int64)
    seen = np.zeros(F, dtype=np.int64)
    G = np.zeros((M, K, d + 1), dtype=data.dtype)
    Ps = np.empty((1, K), dtype=data.dtype)
    s = np.empty(N_SCALARS, dtype=data.dtype)
    for ii in range(n):
        i = ii if stored else order[ii]
        lo, hi = indptr[i], indptr[i + 1]
        for f in range(F):
            if n_members[f] == 0 or train[i, f] == 0:
                continue
            cnt[f] += 1
            seen[f] += 1
            done = cnt[f] == batch[f] or seen[f] == n_f[f]
            wi = sw[i] * scale[f]
            for q in range(n_members[f]):
                m = members[f, q]
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
                if done:
                    t[m] += 1
                    _step(state[m], G[m], cnt[f], t[m], hp[m], codes[m], s)
            if done:
                cnt[f] = 0


@reports_damaged_cache
def path_epoch(X, Y, sw, order, train, scale, state, hp, codes, model_fold, losses):
    """One epoch of M models in place; see ``fastgd._numpy.path.path_epoch``. ``X`` is a
    dense C-contiguous array or a ``scipy.sparse`` CSR matrix with int64 indices."""
    # (read-only views: one compiled signature whether the caller's arrays are writable or not)
    Y, sw, order, train, hp, codes, model_fold = read_only(Y, sw, order, train, hp, codes, model_fold)
    if sp.issparse(X):
        data, indices, indptr = read_only(X.data, X.indices, X.indptr)
        n, d = X.shape
        _checks.check_csr_arrays(data, indices, indptr, n, d)
        dtype = _checks.check_path(n, d, Y, sw, order, train, scale, state, hp, codes, model_fold, losses,
                                   "numba", in_range=_order_in_range, labels_ok=_labels_in_range)
        if data.dtype != dtype:
            raise ValueError(f"X has dtype {data.dtype} but Y has {dtype}")
        run = lambda part: _sparse_rows((data, indices, indptr, d), Y, sw, order, train, scale,
                                        (state, hp, codes, model_fold, model_part, losses), part)
    else:
        _checks.check_floats((("X", X),))
        (X,) = read_only(X)
        if X.ndim != 2:
            raise ValueError(f"X must be 2-D, got {X.ndim} dimensions")
        n, d = X.shape
        dtype = _checks.check_path(n, d, Y, sw, order, train, scale, state, hp, codes, model_fold, losses,
                                   "numba", in_range=_order_in_range, labels_ok=_labels_in_range)
        if X.dtype != dtype:
            raise ValueError(f"X has dtype {X.dtype} but Y has {dtype}")
        one = state.shape[0] > 0 and state.shape[2] == 1 and codes[0, P.LOSS] != MULTINOMIAL
        rows = (True, None) if one else (None, True)
        run = lambda part: _dense_rows(X, Y, sw, order, train, scale,
                                       (state, hp, codes, model_fold, model_part, losses), part, *rows)
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
