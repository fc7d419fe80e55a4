"""Sparse (CSR) input: the estimator-side helpers and the checks every sparse kernel runs.

The estimators accept ``scipy.sparse`` matrices and arrays. CSR is used as given; any
other format (CSC, COO, ...) is converted to CSR once, by scikit-learn's
``validate_data``. Neither sorted column indices nor a canonical format are required:
every sparse kernel reads a row's entries in storage order, and duplicate entries of
one row and column add up, as they do in ``scipy.sparse`` products. Explicit zeros are
harmless.

The kernels take the three CSR arrays ``data`` (the data's dtype), ``indices`` and
``indptr``, both int64: the estimator converts int32 index arrays once per ``fit`` /
``partial_fit`` call (:func:`kernel_arrays`), so each compiled kernel is written for
exactly one index type. :func:`check_csr` is the check every kernel module runs before
its loops: indices in ``[0, d)``, ``indptr`` starting at 0, non-decreasing and ending
at ``len(data)``.
"""

import mmap
import threading

import numpy as np
import scipy.sparse as sp


def issparse(X):
    return sp.issparse(X)


def kernel_arrays(X):
    """``(data, indices, indptr)`` of a CSR matrix as the kernels take them: C-contiguous,
    ``data`` in X's dtype, ``indices`` and ``indptr`` int64 (copied only when needed)."""
    if X.format != "csr":
        raise TypeError(f"expected a CSR matrix, got format {X.format!r}")
    nnz = int(X.indptr[-1])  # (scipy may store more entries than the rows use)
    data = np.ascontiguousarray(X.data[:nnz])
    indices = np.ascontiguousarray(X.indices[:nnz], dtype=np.int64)
    indptr = np.ascontiguousarray(X.indptr, dtype=np.int64)
    return data, indices, indptr


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


def check_structure(X):
    """Raise ValueError unless a ``scipy.sparse`` matrix's index arrays describe a valid
    matrix of its shape (no-op for anything else). Checked before any use: scipy's own
    routines (products, format conversions) trust them, and read or write out of bounds
    on a matrix built without checks (``csr_matrix((data, indices, indptr))`` checks the
    lengths only; assigning ``.indices`` checks nothing). O(nnz), one pass per array."""
    if not sp.issparse(X):
        return
    fmt = X.format
    if fmt in ("csr", "csc", "bsr"):
        rows, cols = X.shape
        if fmt == "bsr":
            R, C = X.blocksize
            rows, cols = rows // R, cols // C
        major, minor = (rows, cols) if fmt != "csc" else (cols, rows)
        arrays = (("indices", X.indices), ("indptr", X.indptr))
        _check_index_arrays(arrays)
        indices, indptr = X.indices, X.indptr
        if indptr.ndim != 1 or indptr.shape[0] != major + 1:
            raise ValueError(
                f"malformed sparse {fmt} matrix: indptr must have {major + 1} entries, got {indptr.shape}"
            )
        stored = min(indices.shape[0], X.data.shape[0]) if indices.ndim == 1 else -1
        if indptr[0] != 0 or not 0 <= indptr[-1] <= stored:
            raise ValueError(
                f"malformed sparse {fmt} matrix: indptr must start at 0 and end at most at the "
                f"{stored} stored entries, got {indptr[0]} and {indptr[-1]}"
            )
        if major and np.any(indptr[1:] < indptr[:-1]):
            raise ValueError(f"malformed sparse {fmt} matrix: indptr must be non-decreasing")
        _check_range(f"sparse {fmt} matrix", "indices", indices[:indptr[-1]], minor)
    elif fmt == "coo":
        coords = X.coords if hasattr(X, "coords") else (X.row, X.col)
        _check_index_arrays(tuple(zip(("row", "col"), coords)))
        for name, c, size in zip(("row", "col"), coords, X.shape):
            if c.ndim != 1 or c.shape[0] != X.data.shape[0]:
                raise ValueError(f"malformed sparse coo matrix: {name} must have one entry per stored value")
            _check_range("sparse coo matrix", name, c, size)


def _check_index_arrays(arrays):
    for name, a in arrays:
        if not isinstance(a, np.ndarray) or a.dtype.kind not in "iu":
            raise ValueError(f"malformed sparse matrix: {name} must be an integer array, got {getattr(a, 'dtype', type(a))}")


def _check_range(what, name, idx, size):
    if idx.shape[0]:
        if not idx.dtype.isnative:
            idx = idx.astype(idx.dtype.newbyteorder("="))
        if idx.dtype.kind == "i":  # one pass: a negative index is a huge unsigned one
            bad = idx.view(np.dtype(f"u{idx.dtype.itemsize}")).max() >= size
        else:
            bad = idx.max() >= size
        if bad:
            raise ValueError(f"malformed {what}: {name} must lie in [0, {size})")


def row_sq_norms(X):
    """Squared Euclidean norm of each row of a sparse matrix, in float64 (duplicate
    entries are summed first, as in ``X.toarray()``)."""
    X = X.tocsr().astype(np.float64)
    if not X.has_canonical_format:
        X = X.copy()
        X.sum_duplicates()
    rows = np.repeat(np.arange(X.shape[0]), np.diff(X.indptr))
    return np.bincount(rows, weights=X.data * X.data, minlength=X.shape[0])


def check_epoch(data, indices, indptr, Y, sw, order, state, hp=None, codes=None, backend=None,
                labels_ok=None):
    """The checks of a sparse ``epoch`` call before any loop that trusts its inputs:
    dtypes (one float dtype throughout, int64 indices, indptr and order), shapes, the
    CSR structure (:func:`check_csr`) and the row order's indices; given ``codes``, also
    the layout of ``hp`` and ``codes``, the codes, and the targets the loss reads (the
    outputs it needs, Y's columns, multinomial class indices in [0, K); see
    ``fastgd._checks``)."""
    from . import _checks

    for name, a in (("data", data), ("indices", indices), ("indptr", indptr), ("Y", Y), ("sw", sw),
                    ("order", order), ("state", state)):
        if not isinstance(a, np.ndarray):
            raise TypeError(f"{name} must be a NumPy array, got {type(a).__name__}")
        if not a.flags.c_contiguous:
            raise ValueError(f"{name} must be C-contiguous")
    if codes is not None:
        _checks.check_layout(hp, codes)
        _checks.check_codes(codes, backend)
    dtype = data.dtype
    if dtype not in (np.float32, np.float64):
        raise ValueError(f"data must be float32 or float64, got {dtype}")
    for name, a in (("Y", Y), ("sw", sw), ("state", state)):
        if a.dtype != dtype:
            raise ValueError(f"{name} has dtype {a.dtype} but data has {dtype}")
    for name, a in (("indices", indices), ("indptr", indptr), ("order", order)):
        if a.dtype != np.int64:
            raise ValueError(f"{name} must be int64, got {a.dtype}")
    if state.ndim != 3 or state.shape[0] != 2 or state.shape[1] < 1 or state.shape[2] < 1:
        raise ValueError(f"state must have shape (2, K, d + 1), got {state.shape}")
    n = order.shape[0]
    check_csr(data, indices, indptr, n, state.shape[2] - 1)
    if Y.ndim != 2 or Y.shape[0] != n or sw.shape != (n,) or order.shape != (n,):
        raise ValueError(
            f"X has {n} rows but Y has shape {Y.shape}, sw {sw.shape} and order {order.shape}"
        )
    if n and (order.min() < 0 or order.max() >= n):
        raise ValueError("order holds a row index outside [0, n)")
    if codes is not None:
        _checks.check_targets(n, Y, sw, state.shape[1], codes, labels_ok or _checks.labels_in_range)


# The compiled kernels' lazy update keeps its coordinate records in a work buffer of
# O(K d) bytes, kept per thread between calls: a new multi-megabyte buffer each epoch
# comes from the OS as fresh pages, whose faults and zeroing are a sizeable part of an
# epoch at large d.
_work = threading.local()
HUGE_PAGE = 1 << 21


def work_buffer(name, nbytes):
    """A uint8 buffer of at least ``nbytes`` bytes (64-byte aligned), reused by this
    thread's later calls for the same ``name``. One of a megabyte or more is mapped on its
    own, 2 MiB aligned, with transparent huge pages asked for where the OS has them (the
    records are read at random: with 4 KiB pages, most reads would also miss the TLB)."""
    buf = getattr(_work, name, None)
    if buf is None or buf.shape[0] < nbytes:
        if nbytes < HUGE_PAGE // 2 or not hasattr(mmap, "MADV_HUGEPAGE"):
            raw = np.empty(nbytes + 64, dtype=np.uint8)
            off = (-raw.ctypes.data) % 64
            buf = raw[off:off + nbytes]
        else:
            size = -(-nbytes // HUGE_PAGE) * HUGE_PAGE
            m = mmap.mmap(-1, size + HUGE_PAGE, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
            raw = np.frombuffer(m, dtype=np.uint8)
            off = (-raw.ctypes.data) % HUGE_PAGE
            try:
                m.madvise(mmap.MADV_HUGEPAGE, off, size)
            except OSError:  # no transparent huge pages here: 4 KiB pages
                pass
            buf = raw[off:off + size]
        setattr(_work, name, buf)
    return buf[:nbytes]


def record_size(K, itemsize):
    """Entries of the state's dtype per coordinate record of the lazy update: K weights,
    K velocities and an int64 step, rounded up to 16, 32 or 64 bytes for small K (a
    record then never straddles two cache lines)."""
    nbytes = 2 * K * itemsize + 8
    nbytes += -nbytes % 8
    for size in (16, 32, 64):
        if nbytes <= size:
            return size // itemsize
    return nbytes // itemsize
