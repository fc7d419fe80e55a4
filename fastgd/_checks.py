"""The checks every kernel entry point (dense and sparse, every backend) runs before any
loop that trusts its arguments.

The compiled loops read memory through raw indices (no bounds checks), so an argument
of the wrong dtype, layout or shape, a row index outside ``[0, n)`` or a class index
outside ``[0, K)`` would read or write outside the arrays. The estimators never pass
such arguments; these checks make a direct call with them raise ``ValueError`` instead.

Every backend calls them: :func:`check_epoch` / :func:`check_gradient` for dense input,
:func:`check_sparse_epoch` (with :func:`check_csr`) for CSR input; the codes they accept
are derived from the registries (``LOSS_CODES``, ``SCHEDULE_CODES``). Every check is O(1)
except two O(n) passes: the row order's range, only when the batch is shuffled
(a full batch reads X as stored and never ``order``), and the class indices of the
multinomial loss. Both passes can be supplied by the caller (the compiled backends pass
one-pass compiled functions); the defaults are NumPy expressions.
"""

import numpy as np

from . import _params as P
from ._losses import LOSS_BY_CODE, LOSS_CODES
from ._optimizers import OPTIMIZER_CODES, n_state
from ._schedules import SCHEDULE_CODES

__all__ = ["LOSS_CODES", "OPTIMIZER_CODES", "SCHEDULE_CODES"]  # (the codes every backend implements)
FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def order_in_range(order, n):
    """Whether every entry of the int64 ``order`` is in [0, n) (one pass: a negative
    entry is a huge unsigned one)."""
    return order.shape[0] == 0 or int(order.view(np.uint64).max()) < n


def labels_in_range(Y, K):
    """Whether ``Y[:, 0]`` holds class indices 0 .. K - 1 (whole numbers, no NaN)."""
    labels = Y[:, 0]
    return bool(np.all((labels >= 0) & (labels < K) & (labels == np.floor(labels))))


def _array(name, a):
    if not isinstance(a, np.ndarray):
        raise TypeError(f"{name} must be a NumPy array, got {type(a).__name__}")
    return a


def check_floats(named, contiguous=True):
    """``named``: (name, array) pairs, the first X. One float dtype (float32 or float64)
    throughout, C-contiguous when ``contiguous``."""
    dtype = None
    for name, a in named:
        _array(name, a)
        if dtype is None:
            dtype = a.dtype
            if dtype not in FLOAT_DTYPES:
                raise ValueError(f"{name} must be float32 or float64 (native byte order), got {dtype}")
        elif a.dtype != dtype:
            raise ValueError(f"{name} has dtype {a.dtype} but {named[0][0]} has {dtype}")
        if contiguous and not a.flags.c_contiguous:
            raise ValueError(f"{name} must be C-contiguous")
    return dtype


def check_layout(hp, codes):
    """``hp`` float64 and ``codes`` int64, 1-D, with the layout of ``fastgd._params``."""
    if _array("codes", codes).dtype != np.int64 or codes.ndim != 1 or codes.shape[0] < P.N_CODES:
        raise ValueError("codes must have the layout of fastgd._params (int64, N_CODES entries)")
    if hp is not None and (_array("hp", hp).dtype != np.float64 or hp.ndim != 1 or hp.shape[0] < P.N_HP):
        raise ValueError("hp must have the layout of fastgd._params (float64, N_HP entries)")


def check_codes(codes, backend, schedule=True):
    """The loss code, the schedule code and the batch size (``schedule``: an epoch)."""
    loss = codes[P.LOSS]
    if loss not in LOSS_CODES:
        raise ValueError(f"fastgd: unknown loss code {loss} in the {backend} backend")
    if schedule:
        if codes[P.OPTIMIZER] not in OPTIMIZER_CODES:
            raise ValueError(f"fastgd: unknown optimizer code {codes[P.OPTIMIZER]} in the {backend} backend")
        if codes[P.SCHEDULE] not in SCHEDULE_CODES:
            raise ValueError(f"fastgd: unknown schedule code {codes[P.SCHEDULE]} in the {backend} backend")
        if codes[P.BATCH_SIZE] < 1:
            raise ValueError(f"batch size must be >= 1, got {codes[P.BATCH_SIZE]}")


def check_targets(n, Y, sw, K, codes, labels_ok=labels_in_range):
    """The outputs the loss needs, the rows of Y and sw against n, and (multinomial)
    the class indices."""
    loss = codes[P.LOSS]
    entry = LOSS_BY_CODE[int(loss)]
    if K < entry.min_outputs or (entry.max_outputs is not None and K > entry.max_outputs):
        raise ValueError(f"{K} outputs do not fit loss code {loss}")
    m = entry.target_columns(K)
    if Y.ndim != 2 or sw.ndim != 1 or Y.shape[0] != n or Y.shape[1] < m or sw.shape[0] != n:
        raise ValueError(f"X has {n} rows but Y has shape {Y.shape} and sw {sw.shape} rows")
    if n and entry.class_targets and not labels_ok(Y, K):
        raise ValueError(f"multinomial targets must be class indices in [0, {K})")


def check_epoch(X, Y, sw, order, state, hp, codes, backend, contiguous=True,
                in_range=order_in_range, labels_ok=labels_in_range):
    """Everything a dense ``epoch(X, Y, sw, order, state, hp, codes)`` trusts."""
    check_layout(hp, codes)
    check_codes(codes, backend)
    check_floats((("X", X), ("Y", Y), ("sw", sw), ("state", state)), contiguous)
    if X.ndim != 2:
        raise ValueError(f"X must be 2-D, got {X.ndim} dimensions")
    n, d = X.shape
    S = n_state(codes)
    if state.ndim != 3 or state.shape[0] != S or state.shape[2] != d + 1:
        raise ValueError(f"state must have shape ({S}, K, {d + 1}) for these codes, got {state.shape}")
    check_targets(n, Y, sw, state.shape[1], codes, labels_ok)
    if _array("order", order).dtype != np.int64 or order.ndim != 1:
        raise ValueError(f"order must be a 1-D int64 array, got {order.dtype} with {order.ndim} dimensions")
    if contiguous and not order.flags.c_contiguous:
        raise ValueError("order must be C-contiguous")
    if order.shape[0] != n:
        raise ValueError(f"X has {n} rows but order has {order.shape[0]} entries")
    # (a full batch reads X as stored and never ``order``)
    if n and codes[P.BATCH_SIZE] < n and not in_range(order, n):
        raise ValueError("order holds a row index outside [0, n)")


def check_gradient(X, Y, sw, W, codes, G, backend, contiguous=True, labels_ok=labels_in_range):
    """Everything a dense ``gradient(X, Y, sw, W, codes, G)`` trusts."""
    check_layout(None, codes)
    check_codes(codes, backend, schedule=False)
    check_floats((("X", X), ("Y", Y), ("sw", sw), ("W", W)), contiguous)
    if X.ndim != 2:
        raise ValueError(f"X must be 2-D, got {X.ndim} dimensions")
    n, d = X.shape
    K = W.shape[0] if W.ndim == 2 else 0
    if (W.ndim != 2 or W.shape[1] != d + 1 or _array("G", G).ndim != 2 or G.shape[0] != K
            or G.shape[1] != d + 1):
        raise ValueError(f"W and G must have shape (K, {d + 1}), got {W.shape} and {G.shape}")
    if G.dtype != np.float64 or (contiguous and not G.flags.c_contiguous):
        raise ValueError(f"G must be a C-contiguous float64 array, got {G.dtype}")
    check_targets(n, Y, sw, K, codes, labels_ok)


# --------------------------------------------------------------------------- sparse (CSR)
def check_csr(data, indices, indptr, n, d):
    """Raise ValueError unless ``(data, indices, indptr)`` is a valid CSR structure of
    ``n`` rows and ``d`` columns: what a kernel's loops trust."""
    if data.ndim != 1 or indices.ndim != 1 or indptr.ndim != 1:
        raise ValueError("data, indices and indptr must be 1-D")
    nnz = data.shape[0]
    if indices.shape[0] != nnz:
        raise ValueError(f"indices has {indices.shape[0]} entries but data has {nnz}")
    if indptr.shape[0] != n + 1:
        raise ValueError(f"indptr must have n + 1 = {n + 1} entries, got {indptr.shape[0]}")
    ip = np.asarray(indptr)
    if ip[0] != 0 or ip[-1] != nnz:
        raise ValueError(f"indptr must start at 0 and end at nnz = {nnz}, got {ip[0]} and {ip[-1]}")
    if n and np.any(ip[1:] < ip[:-1]):
        raise ValueError("indptr must be non-decreasing")
    if nnz:
        idx = np.asarray(indices)
        if idx.dtype.kind == "i":  # one pass: a negative index is a huge unsigned one
            bad = idx.view(np.dtype(f"u{idx.dtype.itemsize}")).max() >= d
        else:
            bad = idx.min() < 0 or idx.max() >= d
        if bad:
            raise ValueError(f"indices must lie in [0, {d})")


def check_sparse_epoch(data, indices, indptr, Y, sw, order, state, hp=None, codes=None, backend=None,
                       labels_ok=None):
    """The checks of a sparse ``epoch`` call before any loop that trusts its inputs:
    dtypes (one float dtype throughout, int64 indices, indptr and order), shapes, the
    CSR structure (:func:`check_csr`) and the row order's indices; given ``codes``, also
    the layout of ``hp`` and ``codes``, the codes, and the targets the loss reads (the
    outputs it needs, Y's columns, multinomial class indices in [0, K): see
    :func:`check_targets`)."""
    for name, a in (("data", data), ("indices", indices), ("indptr", indptr), ("Y", Y), ("sw", sw),
                    ("order", order), ("state", state)):
        if not isinstance(a, np.ndarray):
            raise TypeError(f"{name} must be a NumPy array, got {type(a).__name__}")
        if not a.flags.c_contiguous:
            raise ValueError(f"{name} must be C-contiguous")
    if codes is not None:
        check_layout(hp, codes)
        check_codes(codes, backend)
    dtype = data.dtype
    if dtype not in (np.float32, np.float64):
        raise ValueError(f"data must be float32 or float64, got {dtype}")
    for name, a in (("Y", Y), ("sw", sw), ("state", state)):
        if a.dtype != dtype:
            raise ValueError(f"{name} has dtype {a.dtype} but data has {dtype}")
    for name, a in (("indices", indices), ("indptr", indptr), ("order", order)):
        if a.dtype != np.int64:
            raise ValueError(f"{name} must be int64, got {a.dtype}")
    S = n_state(codes) if codes is not None else state.shape[0] if state.ndim == 3 else 0
    if state.ndim != 3 or state.shape[0] != S or S < 2 or state.shape[1] < 1 or state.shape[2] < 1:
        raise ValueError(f"state must have shape ({S or 2}, K, d + 1) for these codes, got {state.shape}")
    n = order.shape[0]
    check_csr(data, indices, indptr, n, state.shape[2] - 1)
    if Y.ndim != 2 or Y.shape[0] != n or sw.shape != (n,) or order.shape != (n,):
        raise ValueError(
            f"X has {n} rows but Y has shape {Y.shape}, sw {sw.shape} and order {order.shape}"
        )
    if n and (order.min() < 0 or order.max() >= n):
        raise ValueError("order holds a row index outside [0, n)")
    if codes is not None:
        check_targets(n, Y, sw, state.shape[1], codes, labels_ok or labels_in_range)


# --------------------------------------------------------------------------- many models
def check_csr_arrays(data, indices, indptr, n, d):
    """The CSR arrays of a many-models call: C-contiguous NumPy arrays, a float
    ``data``, int64 ``indices`` and ``indptr``, and a valid structure (:func:`check_csr`)."""
    for name, a in (("data", data), ("indices", indices), ("indptr", indptr)):
        if not _array(name, a).flags.c_contiguous:
            raise ValueError(f"{name} must be C-contiguous")
    if data.dtype not in FLOAT_DTYPES:
        raise ValueError(f"data must be float32 or float64, got {data.dtype}")
    if indices.dtype != np.int64 or indptr.dtype != np.int64:
        raise ValueError(f"indices and indptr must be int64, got {indices.dtype} and {indptr.dtype}")
    check_csr(data, indices, indptr, n, d)


def check_path(n, d, Y, sw, order, train, scale, state, hp, codes, model_fold, losses, backend,
               contiguous=True, in_range=order_in_range, labels_ok=labels_in_range):
    """Everything a ``path_epoch`` call (M models on one pass, see
    ``fastgd._numpy.path``) trusts beyond its data (X or the CSR arrays, ``n`` rows of
    ``d`` columns, checked by the caller): one float dtype, the shapes of the per-model
    arrays, each model's codes, one loss, optimizer and averaging for all models, one
    batch size per fold, the folds' row masks and weight scales, and the row order."""
    dtype = check_floats((("Y", Y), ("sw", sw), ("state", state), ("scale", scale)), contiguous)
    for name, a, dt in (("order", order, np.int64), ("train", train, np.uint8), ("hp", hp, np.float64),
                        ("codes", codes, np.int64), ("model_fold", model_fold, np.int64),
                        ("losses", losses, np.float64)):
        if _array(name, a).dtype != dt:
            raise ValueError(f"{name} must be {np.dtype(dt).name}, got {a.dtype}")
        if contiguous and not a.flags.c_contiguous:
            raise ValueError(f"{name} must be C-contiguous")
    if state.ndim != 4 or state.shape[3] != d + 1:
        raise ValueError(f"state must have shape (M, S, K, {d + 1}), got {state.shape}")
    M, S, K = state.shape[:3]
    if hp.shape != (M, P.N_HP) or codes.shape != (M, P.N_CODES):
        raise ValueError(f"hp and codes must have shapes ({M}, {P.N_HP}) and ({M}, {P.N_CODES}), "
                         f"got {hp.shape} and {codes.shape}")
    if model_fold.shape != (M,) or losses.shape != (M,):
        raise ValueError(f"model_fold and losses must have shape ({M},), got {model_fold.shape} and {losses.shape}")
    if train.ndim != 2 or train.shape[0] != n:
        raise ValueError(f"train must have shape ({n}, n_folds), got {train.shape}")
    F = train.shape[1]
    if scale.shape != (F,):
        raise ValueError(f"scale must have shape ({F},), got {scale.shape}")
    if M and (model_fold.min() < -1 or model_fold.max() >= F):
        raise ValueError(f"model_fold must lie in [-1, {F})")
    if train.size and train.max() > 1:
        raise ValueError("train must hold 0 or 1")
    if order.ndim != 1 or order.shape[0] != n:
        raise ValueError(f"X has {n} rows but order has shape {order.shape}")
    if n and not in_range(order, n):
        raise ValueError("order holds a row index outside [0, n)")
    batch = {}
    for m in range(M):
        c = codes[m]
        check_codes(c, backend)
        for field in (P.LOSS, P.OPTIMIZER, P.NESTEROV, P.FIT_INTERCEPT, P.SCHEDULE):
            if c[field] != codes[0, field]:
                raise ValueError(f"model {m} has codes[{field}] = {c[field]}, model 0 {codes[0, field]}: "
                                 "the models of one call share their loss, rule and switches")
        if (c[P.AVERAGE_START] > 0) != (codes[0, P.AVERAGE_START] > 0):
            raise ValueError("the models of one call either all average or none does")
        f = int(model_fold[m])
        if f >= 0 and batch.setdefault(f, int(c[P.BATCH_SIZE])) != c[P.BATCH_SIZE]:
            raise ValueError(f"the models of fold {f} have different batch sizes")
    if S != n_state(codes[0]):
        raise ValueError(f"state must have {n_state(codes[0])} slots for these codes, got {S}")
    if M:
        check_targets(n, Y, sw, K, codes[0], labels_ok)
    return dtype


def model_parts(model_fold, n_threads):
    """``(model_part, parts)``: the models to run (``model_fold >= 0``) dealt
    round-robin to ``parts = min(n_threads, their number)`` threads (``model_part[m]``:
    model m's thread, -1 for a model not run), so that every thread has as many models
    as any other, whatever the folds. Whether a part reads the rows as stored is
    decided by the kernels over every fold, so the result does not depend on it."""
    live = np.flatnonzero(model_fold >= 0)
    parts = int(max(1, min(n_threads, live.shape[0])))
    model_part = np.full(model_fold.shape[0], -1, dtype=np.int64)
    model_part[live] = np.arange(live.shape[0]) % parts
    return model_part, parts
