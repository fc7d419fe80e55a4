"""The NumPy reference of the many-models kernel: ``path_epoch`` runs one epoch of M
models that share one pass over the rows (a regularisation path, cross-validation
folds), dense or CSR.

Its definition is the single-model epoch (``fastgd._numpy.kernels.epoch``, or
``fastgd._numpy.sparse.epoch``) run for each model on its fold's rows: that equality is
what the compiled kernels, which read each row once for every model that trains on it,
are tested against.
"""

import numpy as np
import scipy.sparse as sp

from .._checks import check_csr, check_path
from . import kernels, sparse


def fold_rows(train, order, f):
    """The rows of fold ``f`` (``train[:, f] == 1``) in storage order, and the fold's
    visiting order: ``order`` filtered to those rows, as positions among them."""
    rows = np.flatnonzero(train[:, f])
    where = np.full(train.shape[0], -1, dtype=np.int64)
    where[rows] = np.arange(rows.shape[0])
    local = where[order]
    return rows, np.ascontiguousarray(local[local >= 0])


def path_epoch(X, Y, sw, order, train, scale, state, hp, codes, model_fold, losses):
    """One epoch of M models in place; ``losses[m]`` is set to model m's sum of
    ``w_i * loss_i`` over its rows.

    Parameters
    ----------
    X : (n, d) float32/float64 array, or a ``scipy.sparse`` CSR matrix (n, d)
    Y, sw, order : as for ``fastgd._numpy.kernels.epoch`` (``order``: all n rows)
    train : (n, F) uint8; ``train[i, f] = 1`` when row i trains the models of fold f
    scale : (F,) the data's dtype; fold f's sample weights are ``sw[i] * scale[f]``
        (``fastgd._validation.normalise_weights`` of its rows: mean 1 over them)
    state : (M, S, K, d + 1); ``state[m]`` is model m's state (see ``epoch``)
    hp : (M, N_HP) float64; codes : (M, N_CODES) int64 — model m's vectors. The models
        share the loss, the rule, the schedule and their switches; ``T_START``,
        ``AVERAGE_START``, the step and the penalties are each model's, and
        ``BATCH_SIZE`` each fold's
    model_fold : (M,) int64; the fold whose rows train model m, or -1: model m is
        left as it is this epoch (a model that has stopped)
    losses : (M,) float64, written

    Model m then takes exactly the steps of ``epoch`` on its fold's rows, with weights
    ``sw[rows] * scale[f]``, visited in ``order`` filtered to those rows: batches are
    formed per fold, and the last one of each fold may be shorter.
    """
    d = X.shape[1]
    if sp.issparse(X):
        check_csr(X.data, X.indices, X.indptr, X.shape[0], d)
    check_path(X.shape[0], d, Y, sw, order, train, scale, state, hp, codes, model_fold, losses,
               "numpy", contiguous=False)
    for f in np.unique(model_fold[model_fold >= 0]):
        rows, local = fold_rows(train, order, f)
        Xf, Yf = X[rows], Y[rows]
        swf = np.ascontiguousarray(sw[rows] * scale[f])
        for m in np.flatnonzero(model_fold == f):
            if sp.issparse(X):
                Xc = sp.csr_array(Xf)
                losses[m] = sparse.epoch(Xc.data, Xc.indices.astype(np.int64), Xc.indptr.astype(np.int64),
                                         Yf, swf, local, state[m], hp[m], codes[m])
            else:
                losses[m] = kernels.epoch(Xf, Yf, swf, local, state[m], hp[m], codes[m])
