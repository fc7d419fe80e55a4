"""Learning-rate registry: each public ``learning_rate`` name is one :class:`Schedule`
entry that carries everything the rest of the code needs to know about it.

Kernels know three step-size rules, by integer code; ``t`` counts weight updates
from 1:

* ``CONSTANT``:   ``eta = eta0``
* ``INVSCALING``: ``eta = eta0 / t ** power_t``
* ``OPTIMAL``:    ``eta = 1 / (alpha * (t0 + t - 1))`` (scikit-learn's form, with
  ``t0 = 1 / (alpha * sqrt(1 / sqrt(alpha)))`` so that the first step is ``alpha**-0.25``)

An entry names its kernel code, where its first step comes from (``eta0``, or the data:
``fastgd._spec.initial_step``), what a stall of the stopping criterion
does (:func:`stop_on_stall`, :func:`divide_on_stall`, :func:`restart_on_stall`), how
many epochs without improvement make a stall, and the advice a divergence message
gives. The resolved fit (``fastgd._spec``) and the judge (``fastgd._judge``) read these
facts; no driver keeps a list of names of its own.

Adding a rule: one entry here; a new kernel code also needs one branch in each compiled
backend's step size (``_step_size`` in ``fastgd/_numba/kernels.py`` and in
``fastgd/_cython/_scalars.pxi``) and in :func:`step_size`, the NumPy reference.
``tests/test_backends.py`` runs every code on every backend.
"""

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

CONSTANT = 0
INVSCALING = 1
OPTIMAL = 2

# a stall divides the step by this factor ("adaptive"; "auto" for mini-batches) ...
STALL_FACTOR = 5.0
# ... and "adaptive" stops once the step would fall below this
ADAPTIVE_MIN_ETA = 1e-6
# "auto" acts on at most this many stalls; the next one stops the fit ...
AUTO_REDUCTIONS = 2
# ... each of them judged over at least this many updates (or n_iter_no_change epochs
# if fewer)
AUTO_STALL_UPDATES = 1000


def step_size(code, t, eta0, power_t, t0, alpha):
    """The step-size rule (``t`` counts from 1): the NumPy reference's, and compiled
    as it is into the Numba kernels (so it stays within what Numba compiles; the
    error's message is a constant, which compiles in a fraction of the time of a
    formatted one; the kernel entry points reject unknown codes before any loop)."""
    if code == CONSTANT:
        return eta0
    if code == INVSCALING:
        return eta0 / t**power_t
    if code == OPTIMAL:
        return 1.0 / (alpha * (t0 + (t - 1)))  # t - 1 in integers: t0 is not lost next to t
    raise ValueError("unknown schedule code")


def optimal_t0(alpha):
    """Offset of the "optimal" schedule (scikit-learn's heuristic for a unit margin)."""
    typw = np.sqrt(1.0 / np.sqrt(alpha))
    return 1.0 / (typw * alpha)


# ------------------------------------------------------------------ what a stall does
# Each takes the step, the stalls acted on so far and whether the batches are smaller
# than the data; it returns None to stop the fit, or ``(step, restart)``: the step to go
# on with and whether the momentum restarts (the velocity is set to zero).


def stop_on_stall(eta, reductions, minibatch):
    """The fit has converged."""


def divide_on_stall(eta, reductions, minibatch):
    """Divide the step by STALL_FACTOR while it stays above ADAPTIVE_MIN_ETA."""
    if eta / STALL_FACTOR < ADAPTIVE_MIN_ETA:
        return None
    return eta / STALL_FACTOR, False


def restart_on_stall(eta, reductions, minibatch):
    """Restart the momentum (the velocity carries the oscillation) and, for
    mini-batches, divide the step by STALL_FACTOR to shrink the gradient noise; at most
    AUTO_REDUCTIONS times."""
    if reductions == AUTO_REDUCTIONS:
        return None
    return (eta / STALL_FACTOR if minibatch else eta), True


# ------------------------------------------------------------------ patience
def epochs_patience(n_iter_no_change, reductions, updates_per_epoch):
    """``n_iter_no_change`` epochs without improvement make a stall."""
    return n_iter_no_change


def updates_patience(n_iter_no_change, reductions, updates_per_epoch):
    """The first AUTO_REDUCTIONS stalls are judged over at least AUTO_STALL_UPDATES
    updates rather than ``n_iter_no_change`` epochs: on large data one epoch without
    improvement means the step has reached its noise floor, and waiting epochs longer
    there only costs time."""
    if reductions < AUTO_REDUCTIONS:
        return min(n_iter_no_change, -(-AUTO_STALL_UPDATES // updates_per_epoch))
    return n_iter_no_change


_SMALLER_ETA0 = (
    "Use a smaller eta0, or learning_rate='auto' (the default), which picks a stable "
    "step from the data."
)


@dataclass(frozen=True)
class Schedule:
    """One ``learning_rate`` rule."""

    code: int  # the kernels' step-size rule
    from_data: bool  # the first step is computed from the data (else it is eta0)
    on_stall: Callable  # (eta, reductions, minibatch) -> None (stop) or (eta, restart)
    patience: Callable  # (n_iter_no_change, reductions, updates_per_epoch) -> epochs
    hint: str  # what a divergence message advises; ``{alpha!r}`` is filled in
    needs_alpha: bool = False  # the step is a function of alpha, which must be > 0
    t0: Callable | None = None  # alpha -> the offset hp[OPTIMAL_T0] of the code


SCHEDULES = {
    "auto": Schedule(
        code=CONSTANT, from_data=True, on_stall=restart_on_stall, patience=updates_patience,
        hint="The automatic step was estimated on other rows (partial_fit) or the data are "
        "extreme: use learning_rate='constant' with a smaller eta0, or rescale X.",
    ),
    "constant": Schedule(code=CONSTANT, from_data=False, on_stall=stop_on_stall, patience=epochs_patience,
                         hint=_SMALLER_ETA0),
    "adaptive": Schedule(code=CONSTANT, from_data=False, on_stall=divide_on_stall, patience=epochs_patience,
                         hint=_SMALLER_ETA0),
    "invscaling": Schedule(code=INVSCALING, from_data=False, on_stall=stop_on_stall, patience=epochs_patience,
                           hint=_SMALLER_ETA0),
    "optimal": Schedule(
        code=OPTIMAL, from_data=False, on_stall=stop_on_stall, patience=epochs_patience,
        hint="learning_rate='optimal' sets the step from alpha alone, 1 / (alpha (t0 + t - 1)), "
        "which does not suit these data with alpha={alpha!r}: use "
        "learning_rate='auto' (the default), which picks a stable step from the data.",
        needs_alpha=True, t0=optimal_t0,
    ),
}

# the kernel codes, each once
SCHEDULE_CODES = tuple(sorted({s.code for s in SCHEDULES.values()}))
