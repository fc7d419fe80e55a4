"""Cython kernel of many models on one pass: ``path_epoch`` (contract and reference:
``fastgd._numpy.path``), dense or CSR rows.

The loops are the Numba kernel's (``fastgd._numba.path``), compiled from
``fastgd/_cython/_kernels.pxi`` (``path_epoch_dense``, ``path_epoch_csr``) in both builds
of the dense kernels, the AVX2 one where the CPU runs it (``fastgd._cython.kernels``).
A fold's models step when the fold's batch is complete (batches counted per fold, so
each model takes exactly the steps of its own fit). The step is the single-model
kernels' ``_step``, on the model's rows of the state, ``hp`` and ``codes``.

Dense rows go by windows of ``PATH_WINDOW_ROWS`` (``fastgd._tuning``, compiled in) of
the epoch's order: each row of a window is dealt to the segment of each fold that
trains on it (``train[i, f]``), and a fold's segment is handed to each of the fold's
models when the fold's batch is complete (then they step) or at the window's end (the
weights do not change within a batch, so its rows' gradients may be summed in parts).
Each row is read from memory once, by the fold's first model (which prefetches
ahead), and from cache by the fold's other models; each model takes the segment with
the single-model epoch's row loop (one output: blocks of rows, ``LOSS_BLOCK_ROWS`` for the
log loss with its vectorised ``exp``/``log1p``, four for the squared error, four rows
at a time with vector-typed products; several outputs: row by row). CSR rows go one at a time, every model whose fold trains on the row taking
it in turn; the step is the dense one (O(K d) per update), as in the NumPy reference.

The loops run without the GIL. With ``codes[0, N_THREADS] > 1`` (and OpenMP, see
``fastgd._cython._forksafe``) the models are dealt round-robin to OpenMP threads
(``fastgd._checks.model_parts``: balanced whatever the folds), each running over every
row for its own models with its own fold counters, segments and scratch (no model is written by two threads; whether
the rows are read as stored, every fold with a model in one full batch, is decided
over all folds, so the result does not depend on the thread count).

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
        path_epoch_csr(X, Y, sw, order, train, scale, state, hp, codes, model_fold, losses)
    else:
        path_epoch_dense(X, Y, sw, order, train, scale, state, hp, codes, model_fold, losses)
