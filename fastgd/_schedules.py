"""Learning-rate schedule registry and the automatic step size.

Kernels know three step-size rules, by integer code; ``t`` counts weight updates
from 1:

* ``CONSTANT``:   ``eta = eta0``
* ``INVSCALING``: ``eta = eta0 / t ** power_t``
* ``OPTIMAL``:    ``eta = 1 / (alpha * (t0 + t - 1))`` (scikit-learn's form, with
  ``t0 = 1 / (alpha * sqrt(1 / sqrt(alpha)))`` so that the first step is ``alpha**-0.25``)

The public ``learning_rate`` names map onto them: ``"auto"`` is a constant step computed
from the data (:func:`auto_learning_rate`), ``"adaptive"`` is a constant step that the
estimator divides by 5 between epochs when the objective stalls.
"""

import numpy as np

CONSTANT = 0
INVSCALING = 1
OPTIMAL = 2

# public name -> kernel code
SCHEDULES = {
    "auto": CONSTANT,
    "constant": CONSTANT,
    "adaptive": CONSTANT,
    "invscaling": INVSCALING,
    "optimal": OPTIMAL,
}


def step_size(code, t, eta0, power_t, t0, alpha):
    """The NumPy reference of the kernels' step-size rule (``t`` counts from 1)."""
    if code == CONSTANT:
        return eta0
    if code == INVSCALING:
        return eta0 / t**power_t
    if code == OPTIMAL:
        return 1.0 / (alpha * (t0 + (t - 1)))  # t - 1 in integers: t0 is not lost next to t
    raise ValueError(f"unknown schedule code {code}")


def optimal_t0(alpha):
    """Offset of the "optimal" schedule (scikit-learn's heuristic for a unit margin)."""
    typw = np.sqrt(1.0 / np.sqrt(alpha))
    return 1.0 / (typw * alpha)
