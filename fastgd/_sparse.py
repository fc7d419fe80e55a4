"""Sparse (CSR) input: the estimator-side helpers and the sparse kernels' work buffers.

The estimators accept ``scipy.sparse`` matrices and arrays. CSR is used as given; any
other format (CSC, COO, ...) is converted to CSR once, by scikit-learn's
``validate_data``. Neither sorted column indices nor a canonical format are required:
every sparse kernel reads a row's entries in storage order, and duplicate entries of
one row and column add up, as they do in ``scipy.sparse`` products. Explicit zeros are
harmless.

The kernels take the three CSR arrays ``data`` (the data's dtype), ``indices`` and
``indptr``, both int64: the estimator converts int32 index arrays once per ``fit`` /
``partial_fit`` call (:func:`kernel_arrays`), so each compiled kernel is written for
exactly one index type. The checks every sparse kernel runs before its loops are in
``fastgd._checks`` (``check_csr``, ``check_sparse_epoch``); :func:`check_structure`
here checks a user's matrix before scipy reads it.
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
    K velocities (or AdaGrad/RMSprop accumulators) and an int64 step, rounded up to 16,
    32 or 64 bytes for small K (a record then never straddles two cache lines)."""
    nbytes = 2 * K * itemsize + 8
    nbytes += -nbytes % 8
    for size in (16, 32, 64):
        if nbytes <= size:
            return size // itemsize
    return nbytes // itemsize
