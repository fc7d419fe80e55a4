"""Penalty registry: name -> how ``alpha`` and ``l1_ratio`` split into L2 and L1 strengths.

The penalised objective is ``alpha * (0.5 * (1 - rho) * ||W||^2 + rho * ||W||_1)``;
each penalty fixes ``rho``. Kernels receive only the two resolved strengths
``l2 = alpha * (1 - rho)`` and ``l1 = alpha * rho``: the L2 part enters the gradient,
the L1 part is applied as a soft-threshold after each step. The intercept is never
penalised.
"""

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Penalty:
    """One ``penalty``: how ``alpha`` and ``l1_ratio`` split into ``(l2, l1)``."""

    strengths: Callable  # (alpha, l1_ratio) -> (l2, l1)


PENALTIES = {
    None: Penalty(strengths=lambda alpha, l1_ratio: (0.0, 0.0)),
    "l2": Penalty(strengths=lambda alpha, l1_ratio: (alpha, 0.0)),
    "l1": Penalty(strengths=lambda alpha, l1_ratio: (0.0, alpha)),
    "elasticnet": Penalty(strengths=lambda alpha, l1_ratio: (alpha * (1.0 - l1_ratio), alpha * l1_ratio)),
}


def penalty_strengths(penalty, alpha, l1_ratio):
    """Return ``(l2, l1)`` for a penalty name."""
    return tuple(float(v) for v in PENALTIES[penalty].strengths(float(alpha), float(l1_ratio)))


def penalty_value(W, l2, l1):
    """``0.5 * l2 * ||W||^2 + l1 * ||W||_1`` in float64 (W excludes the intercept)."""
    W = np.asarray(W, dtype=np.float64)
    return 0.5 * l2 * float(np.vdot(W, W)) + l1 * float(np.abs(W).sum())
