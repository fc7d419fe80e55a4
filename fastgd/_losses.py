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

Adding a loss: one entry here, one branch in every compiled backend
(``fastgd/_numba/losses.py``); ``tests/test_backends.py`` runs every entry on every
backend and fails where one is missing.
"""

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

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


@dataclass(frozen=True)
class Loss:
    code: int
    value_grad: Callable  # (P, Y) -> (loss per row, dloss/dP), the NumPy reference
    curvature: float      # bound on d2 loss / dp2


LOSSES = {
    "squared_error": Loss(SQUARED, _squared, 1.0),
    "log_loss": Loss(LOG, _log, 0.25),
    "multinomial": Loss(MULTINOMIAL, _multinomial, 0.5),
}

LOSS_BY_CODE = {loss.code: loss for loss in LOSSES.values()}
