"""Loss registry: name -> integer code, NumPy reference value/gradient, curvature bound.

Each loss maps the raw outputs ``P`` (n, K) of a batch and its targets ``Y`` (n, m) to
the per-row loss (n,) and the gradient ``dloss/dP`` (n, K):

* ``squared_error``: ``0.5 * sum_k (y_k - p_k)**2``; ``Y`` holds the K targets.
* ``log_loss``: binary logistic loss with one sigmoid output; ``Y`` holds 0/1 (m=1).
* ``multinomial``: softmax cross-entropy over K outputs; ``Y`` holds the class index
  as a float (m=1).

The per-row loss values are float64 whatever the dtype of ``P``, as in the compiled
kernels (which compute each row's loss in double): in float32 a squared residual
overflows from 1.8e19, where the float64 value (and the compiled kernels' objective) is
still finite. The gradients are in the dtype of ``P``.

``curvature`` bounds the second derivative of the loss in ``p`` (1 for squared error,
1/4 for the sigmoid, 1/2 for the softmax); the automatic step size uses it.
``curvature_diag`` gives the second derivatives themselves, per row and output, at given
raw outputs (the diagonal of each row's Hessian in ``p``; for the softmax, its
class-to-class terms are left out): ``optimizer="newton-sketch"`` weighs its sample's
curvature with it.

Each entry also says how many outputs the loss takes (``min_outputs``, ``max_outputs``),
what its targets are (one column per output, or one column of class indices), and the
objective of the all-zero model on given targets (the driver's reference for
divergence), and its ``alpha_max`` rule (:meth:`Loss.alpha_max`, the top of the
automatic ``alpha`` grid). The kernel checks (``fastgd._checks``) and the epoch drivers read these
facts; nothing else keeps a list of losses.

Adding a loss: one entry here, one scalar function in every compiled backend
(``loss_and_grad`` in ``fastgd/_numba/losses.py``, ``_loss_grad`` in
``fastgd/_cython/_scalars.pxi``); ``tests/test_backends.py`` runs every entry on every
backend and fails where one is missing.
"""

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

SQUARED = 0
LOG = 1
MULTINOMIAL = 2


def _squared(P, Y):
    R = P - Y
    return 0.5 * np.einsum("ik,ik->i", R, R, dtype=np.float64), R


def _log(P, Y):
    z = P[:, 0].astype(np.float64, copy=False)
    y = Y[:, 0].astype(np.float64, copy=False)
    # log(1 + exp(z)) - y z, evaluated without overflow for either sign of z
    loss = np.logaddexp(0.0, z) - y * z
    # the stable sigmoid: exp(-log(1 + exp(-z)))
    sig = np.exp(-np.logaddexp(0.0, -z))
    return loss, (sig - y)[:, None].astype(P.dtype, copy=False)


def _multinomial(P, Y):
    c = Y[:, 0].astype(np.intp)
    mx = P.max(axis=1, keepdims=True)
    E = np.exp(P - mx)
    s = E.sum(axis=1)
    rows = np.arange(P.shape[0])
    # in float64: mx - P[rows, c] can overflow float32
    loss = np.log(s.astype(np.float64)) + mx[:, 0].astype(np.float64) - P[rows, c].astype(np.float64)
    G = E / s[:, None]
    G[rows, c] -= 1
    return loss, G


def _curvature_squared(P):
    return np.ones(P.shape)


def _curvature_log(P):
    p = np.exp(-np.logaddexp(0.0, -P.astype(np.float64)))
    return p * (1.0 - p)


def _curvature_multinomial(P):
    E = np.exp(P - P.max(axis=1, keepdims=True))
    p = E / E.sum(axis=1, keepdims=True)
    return p * (1.0 - p)


def _zero_squared(Y, sw, K):
    """0.5 * sum_i s_i ||y_i||^2 / n: the all-zero model predicts 0."""
    sq = np.einsum("ik,ik->i", Y, Y, dtype=np.float64)
    return 0.5 * float(np.dot(sw.astype(np.float64, copy=False), sq)) / max(Y.shape[0], 1)


def _zero_log(Y, sw, K):
    """Every probability 1/2, whatever the labels."""
    return float(np.log(2.0))


def _zero_multinomial(Y, sw, K):
    """Every class probability 1/K, whatever the labels."""
    return float(np.log(K))


@dataclass(frozen=True)
class Loss:
    code: int
    value_grad: Callable  # (P, Y) -> (loss per row, dloss/dP), the NumPy reference
    curvature: float      # bound on d2 loss / dp2
    min_outputs: int      # K, the rows of the weight matrix, is at least this ...
    max_outputs: int | None  # ... and at most this (None: no limit)
    class_targets: bool   # Y is one column of class indices in [0, K) (else K targets)
    zero_objective: Callable  # (Y, sw, K) -> the all-zero model's mean weighted loss
    #                           (sw normalised to mean 1, as the driver has it)
    zero_needs_targets: bool  # whether zero_objective reads Y and sw
    zero_output: Callable | None  # K -> the all-zero model's predicted mean of each
    #                               target column (None: 0, its raw output)
    curvature_diag: Callable  # P (n, K) -> d2 loss / dp_k2 per row and output, float64

    @property
    def constant_curvature(self):
        """Whether the loss's curvature is the same at every output (squared error)."""
        return self.curvature_diag is _curvature_squared

    @property
    def single_output(self):
        """Whether the loss has exactly one output (its kernels' scalar path always)."""
        return self.max_outputs == 1

    def target_columns(self, K):
        """The columns of Y the loss reads for K outputs."""
        return 1 if self.class_targets or self.single_output else K

    def alpha_max(self, X, Y, sw, K, fit_intercept):
        """The smallest ``alpha`` at which an L1 penalty keeps every coefficient at 0:
        the largest absolute gradient of the mean weighted loss with respect to a
        coefficient, at the model with zero coefficients and the best constant
        intercept (scikit-learn's ``alpha_max`` rule of its elastic-net path). 1.0 where
        that gradient is 0 (constant targets, or all-zero features).

        The gradient of each of these losses in the raw output is ``prediction -
        target`` (one-hot targets for class indices), so the rule needs only the
        targets and what the zero model predicts (``zero_output``)."""
        sw = np.asarray(sw, dtype=np.float64)
        total = float(sw.sum())
        if self.class_targets:
            R = np.zeros((Y.shape[0], K))
            R[np.arange(Y.shape[0]), Y[:, 0].astype(np.intp)] = 1.0
        else:
            R = np.asarray(Y, dtype=np.float64).copy()
        if fit_intercept:
            R -= (sw @ R) / total
        elif self.zero_output is not None:
            R -= self.zero_output(K)
        R *= sw[:, None]
        G = X.T @ R if sp.issparse(X) else np.asarray(X, dtype=np.float64).T @ R
        top = float(np.max(np.abs(G))) / total if G.size else 0.0
        return top if np.isfinite(top) and top > 0 else 1.0


LOSSES = {
    "squared_error": Loss(
        code=SQUARED, value_grad=_squared, curvature=1.0, min_outputs=1, max_outputs=None,
        class_targets=False, zero_objective=_zero_squared, zero_needs_targets=True, zero_output=None,
        curvature_diag=_curvature_squared,
    ),
    "log_loss": Loss(
        code=LOG, value_grad=_log, curvature=0.25, min_outputs=1, max_outputs=1,
        class_targets=False, zero_objective=_zero_log, zero_needs_targets=False,
        zero_output=lambda K: 0.5,  # the sigmoid of 0
        curvature_diag=_curvature_log,
    ),
    "multinomial": Loss(
        code=MULTINOMIAL, value_grad=_multinomial, curvature=0.5, min_outputs=2, max_outputs=None,
        class_targets=True, zero_objective=_zero_multinomial, zero_needs_targets=False,
        zero_output=lambda K: 1.0 / K,  # the softmax of K zeros
        curvature_diag=_curvature_multinomial,
    ),
}

LOSS_BY_CODE = {loss.code: loss for loss in LOSSES.values()}
LOSS_CODES = tuple(LOSS_BY_CODE)
