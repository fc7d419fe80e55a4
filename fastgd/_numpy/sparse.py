"""The NumPy reference for sparse (CSR) input: the dense algorithm, on CSR rows.

:func:`epoch` is ``fastgd._numpy.kernels.epoch`` with each batch's rows taken from a
``scipy.sparse`` CSR matrix instead of a dense array: the predictions and the summed
gradient are sparse products, and the step is the dense one
(``fastgd._numpy.kernels.apply_step``: every coordinate's velocity and weight move at
every step, O(d) per step). It is the ground truth the compiled sparse kernels, which
update lazily, are tested against.
"""

import numpy as np
import scipy.sparse as sp

from .. import _params as P
from .._checks import check_csr, check_sparse_epoch
from .._losses import LOSS_BY_CODE
from .kernels import run_batches


def _matrix(data, indices, indptr, d):
    n = indptr.shape[0] - 1
    check_csr(data, indices, indptr, n, d)
    return sp.csr_array((data, indices, indptr), shape=(n, d), copy=False)


def epoch(data, indices, indptr, Y, sw, order, state, hp, codes):
    """Run one epoch in place and return the sum of ``sw_i * loss_i`` over its rows.

    ``data``, ``indices`` (int64) and ``indptr`` (int64, n + 1 entries) are the CSR
    arrays of X (n rows, ``d = state.shape[2] - 1`` columns); indices need not be
    sorted, and duplicate entries add up. Every other argument, and the algorithm, are
    those of ``fastgd._numpy.kernels.epoch``.
    """
    check_sparse_epoch(data, indices, indptr, Y, sw, order, state, hp, codes, "numpy")
    return run_batches(_matrix(data, indices, indptr, state.shape[2] - 1), Y, sw, order, state, hp, codes)


def gradient(data, indices, indptr, Y, sw, W, codes, G):
    """The sparse form of ``fastgd._numpy.kernels.gradient``: add the summed weighted
    gradient of all rows to ``G`` (K, d + 1) float64 and return ``sum_i sw_i * loss_i``."""
    d = W.shape[1] - 1
    X = _matrix(data, indices, indptr, d)
    loss = LOSS_BY_CODE[int(codes[P.LOSS])]
    values, D = loss.value_grad(np.asarray(X @ W[:, :d].T) + W[:, d], Y)
    total = float(sw @ values)
    D = (D * sw[:, None]).astype(np.float64, copy=False)
    G[:, :d] += np.asarray(X.astype(np.float64).T @ D).T
    G[:, d] += D.sum(axis=0)
    return total
