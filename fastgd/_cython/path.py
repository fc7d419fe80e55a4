"""Cython kernel of many models on one pass: ``path_epoch`` (contract and reference:
``fastgd._numpy.path``), dense or CSR rows.

The loop is the Numba kernel's (``fastgd._numba.path``), compiled from
``fastgd/_cython/_kernels.pxi`` (``path_epoch_dense``, ``path_epoch_csr``) in both builds
of the dense kernels, the AVX2 one where the CPU runs it (``fastgd._cython.kernels``).
Each row of the epoch's order is read once; every model whose fold trains on it takes
its outputs, its loss and its gradient from it, and a fold's models step when the
fold's batch is complete (batches counted per fold). The step is the single-model
kernels' ``_step``, on the model's rows of the state, ``hp`` and ``codes``; for CSR
rows it is the dense step (O(K d) per update), as in the NumPy reference.

The loops run without the GIL. With ``codes[0, N_THREADS] > 1`` (and OpenMP, see
``fastgd._cython._forksafe``) the folds are shared among OpenMP threads, fold ``f`` to
part ``f % parts``, each part running over every row for its own folds' models (no
model is written by two threads; the result does not depend on the thread count).

Both compiled entries check their arguments (``fastgd._checks.check_path``, and
``check_csr_arrays`` for CSR) before any loop runs.
"""

import scipy.sparse as sp

from .kernels import path_epoch_csr, path_epoch_dense


def path_epoch(X, Y, sw, order, train, scale, state, hp, codes, model_fold, losses):
    """One epoch of M models in place; see ``fastgd._numpy.path.path_epoch``. ``X`` is a
    dense C-contiguous array or a ``scipy.sparse`` CSR matrix with int64 indices."""
    if sp.issparse(X):
        if X.format != "csr":
            raise ValueError(f"X must be a CSR matrix, got {X.format}")
        path_epoch_csr(X.data, X.indices, X.indptr, X.shape, Y, sw, order, train, scale, state, hp, codes,
                       model_fold, losses)
    else:
        path_epoch_dense(X, Y, sw, order, train, scale, state, hp, codes, model_fold, losses)
