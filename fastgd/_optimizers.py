"""Update-rule registry: each public ``optimizer`` name is one :class:`Optimizer` entry.

A step receives the batch's gradient ``g`` of the objective (the weighted mean loss
gradient of the batch plus ``l2 * w``; the intercept is never penalised) and the step
size ``eta`` of the learning-rate schedule (``fastgd._schedules``) at update ``t``
(counted from 1). Each rule keeps its own state, ``slots`` arrays of the weights' shape,
and updates every coordinate (every weight and every intercept) on its own:

* ``"sgd"``: heavy-ball momentum in PyTorch's convention, ``v = mu v + g``, then
  ``w -= eta v`` (Nesterov: ``w -= eta (g + mu v)``); ``mu = 0`` is plain SGD.
  Slot: the velocity ``v``.
* ``"adagrad"``: ``s += g**2``, ``w -= eta g / (sqrt(s) + eps)`` (``torch.optim.Adagrad``
  without its learning-rate decay, initial accumulator 0). Slot: ``s``.
* ``"rmsprop"``: ``s = beta_2 s + (1 - beta_2) g**2``, ``w -= eta g / (sqrt(s) + eps)``
  (``torch.optim.RMSprop`` with ``alpha = beta_2``, no momentum, not centred). Slot: ``s``.
* ``"adam"``: ``m = beta_1 m + (1 - beta_1) g``, ``s = beta_2 s + (1 - beta_2) g**2``,
  ``w -= (eta / (1 - beta_1**t)) m / (sqrt(s) / sqrt(1 - beta_2**t) + eps)``
  (``torch.optim.Adam`` with bias correction, not AMSGrad). Slots: ``m``, ``s``.

* ``"newton-sketch"``: ``w -= eta P^-1 g`` with ``g`` the full-batch gradient, ``P`` the
  objective's curvature estimated on a sample of rows and ``eta`` from a line search. It
  is not a per-coordinate update: the in-memory driver ``fastgd._newton`` takes its
  steps between gradient passes of the kernels, which never see its code
  (``steps="driver"``; :data:`KERNEL_OPTIMIZERS` are the rest). No slots.

An L1 part of the penalty is applied after the step as the proximal step of the rule's
own per-coordinate step: ``w = sign(w) max(|w| - eta l1 / D, 0)`` with ``D = 1`` for
"sgd", ``sqrt(s) + eps`` for "adagrad"/"rmsprop" and Adam's denominator above.

**Averaging** (the estimators' ``average``) adds one slot after the rule's own: the
running mean of the iterates, ``a += (w - a) / (t - t_a + 1)`` after every update
``t >= t_a`` (the first averaged update, ``codes[AVERAGE_START]``; 0: none). It
covers weights and intercepts, never feeds back into the steps, and is what ``coef_`` /
``intercept_`` report once averaging has started.

The state array every kernel updates in place is ``(1 + len(slots) [+ 1], K, d + 1)``:
``state[0]`` the weights (intercepts in the last column), then the slots, then the
average where asked. :func:`n_state` is the one definition of that count; the kernel
checks read it.

Adding a rule: one entry here with its NumPy reference ``update``, and one branch in
each compiled backend's per-coordinate update (``fastgd/_numba/kernels.py``,
``fastgd/_cython/_kernels.pxi``, and the two sparse kernels);
``tests/test_optimizers.py`` runs every entry on every backend and fails where one is
missing.
"""

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from . import _params as P
from ._schedules import CONSTANT

SGD = 0
ADAGRAD = 1
RMSPROP = 2
ADAM = 3
NEWTON_SKETCH = 4

# the names of the state slots every rule has: the weights first, and with averaging
# the running mean after the rule's own slots (see Optimizer.index)
WEIGHTS = "weights"
AVERAGE = "average"


def average_slot(state):
    """The running mean of the iterates in ``state`` (kept with averaging): the slot
    after the rule's own, which is the state's last."""
    return state[state.shape[0] - 1]


# ---------------------------------------------------------------- NumPy reference updates
# Each takes the state, the full gradient G (K, d + 1) of the step (penalty included;
# overwritten freely), the step eta, the update count t, hp and codes; it moves
# state[0] and its own slots in place and returns D: the per-coordinate denominator of
# its step (broadcastable to G), for the L1 proximal step.


def _sgd(state, G, eta, t, hp, codes):
    W, V = state[0], state[1]
    mu = hp[P.MOMENTUM]
    V *= mu
    V += G
    if codes[P.NESTEROV]:
        W -= eta * (G + mu * V)
    else:
        W -= eta * V
    return 1.0


def _adagrad(state, G, eta, t, hp, codes):
    W, S = state[0], state[1]
    S += G * G
    D = np.sqrt(S) + hp[P.EPSILON]
    W -= eta * G / D
    return D


def _rmsprop(state, G, eta, t, hp, codes):
    W, S = state[0], state[1]
    b2 = hp[P.BETA_2]
    S *= b2
    S += (1.0 - b2) * (G * G)
    D = np.sqrt(S) + hp[P.EPSILON]
    W -= eta * G / D
    return D


def _adam(state, G, eta, t, hp, codes):
    W, M, S = state[0], state[1], state[2]
    b1, b2 = hp[P.BETA_1], hp[P.BETA_2]
    M *= b1
    M += (1.0 - b1) * G
    S *= b2
    S += (1.0 - b2) * (G * G)
    bc1 = 1.0 - b1**t
    bc2 = 1.0 - b2**t
    D = np.sqrt(S) / np.sqrt(bc2) + hp[P.EPSILON]
    W -= (eta / bc1) * M / D
    return D


@dataclass(frozen=True)
class Optimizer:
    """One ``optimizer`` update rule."""

    code: int  # the kernels' update rule
    slots: tuple  # names of its state arrays after the weights, in order
    params: tuple  # the estimator parameters it reads (others are ignored)
    update: Callable | None  # the NumPy reference step (see above); None: steps="driver"
    restart: tuple  # names of the slots a momentum restart zeroes
    lazy: Callable  # (l2 > 0, constant step) -> whether the sparse kernels step lazily
    adaptive: bool  # the step is scaled per coordinate (the "auto" step differs)
    steps: str = "kernel"  # "kernel": the epoch kernels step it; "driver": fastgd._newton

    def __post_init__(self):
        unknown = set(self.restart) - set(self.slots)
        if unknown:
            raise ValueError(f"restart names slots the rule does not have: {sorted(unknown)}")

    def index(self, name):
        """The state index of slot ``name``: ``WEIGHTS`` (0), one of :attr:`slots`, or
        ``AVERAGE`` (the slot after the rule's own, kept with averaging)."""
        if name == WEIGHTS:
            return 0
        if name == AVERAGE:
            return 1 + len(self.slots)
        return 1 + self.slots.index(name)

    @property
    def restart_indices(self):
        """The state indices a momentum restart zeroes (from :attr:`restart`)."""
        return tuple(self.index(name) for name in self.restart)


def _lazy_sgd(l2, constant_step):
    # the gradient-free steps are linear in (w, v): tabulated powers of one 2x2 matrix
    return constant_step


def _lazy_without_l2(l2, constant_step):
    # a coordinate no row of the batch touches has a zero gradient: AdaGrad leaves it
    # as it is, RMSprop decays its s by beta_2 (a power when it is next read)
    return not l2


def _lazy_never(l2, constant_step):
    # Adam moves an untouched coordinate as long as its first moment is not zero
    return False


OPTIMIZERS = {
    "sgd": Optimizer(code=SGD, slots=("velocity",), params=("momentum", "nesterov"), update=_sgd,
                     restart=("velocity",), lazy=_lazy_sgd, adaptive=False),
    "adagrad": Optimizer(code=ADAGRAD, slots=("sum_sq",), params=("epsilon",), update=_adagrad,
                         restart=(), lazy=_lazy_without_l2, adaptive=True),
    "rmsprop": Optimizer(code=RMSPROP, slots=("avg_sq",), params=("beta_2", "epsilon"), update=_rmsprop,
                         restart=(), lazy=_lazy_without_l2, adaptive=True),
    "adam": Optimizer(code=ADAM, slots=("exp_avg", "exp_avg_sq"), params=("beta_1", "beta_2", "epsilon"),
                      update=_adam, restart=("exp_avg",), lazy=_lazy_never, adaptive=True),
    "newton-sketch": Optimizer(code=NEWTON_SKETCH, slots=(), params=(), update=None, restart=(),
                               lazy=_lazy_never, adaptive=False, steps="driver"),
}
# the rules the epoch kernels implement (every backend, dense and sparse, many models)
KERNEL_OPTIMIZERS = {name: o for name, o in OPTIMIZERS.items() if o.steps == "kernel"}
OPTIMIZER_BY_CODE = {o.code: o for o in OPTIMIZERS.values()}
OPTIMIZER_CODES = tuple(sorted(o.code for o in KERNEL_OPTIMIZERS.values()))


def state_size(entry, averaged):
    """The state's first dimension: the weights, ``entry``'s slots, and the average."""
    return 1 + len(entry.slots) + (1 if averaged else 0)


def n_state(codes):
    """The state's first dimension for ``codes``: the weights, the rule's slots, and the
    average when ``codes[AVERAGE_START] > 0``. Raises ValueError on an unknown code."""
    entry = OPTIMIZER_BY_CODE.get(int(codes[P.OPTIMIZER]))
    if entry is None:
        raise ValueError(f"fastgd: unknown optimizer code {codes[P.OPTIMIZER]}")
    return state_size(entry, averaging(codes))


def averaging(codes):
    return codes[P.AVERAGE_START] > 0


def average_step(state, t, codes):
    """The running mean of the iterates after update ``t`` (reference): the last slot."""
    t_a = int(codes[P.AVERAGE_START])
    if t_a > 0 and t >= t_a:
        A = average_slot(state)
        A += (state[0] - A) * (1.0 / (t - t_a + 1))


def uses_lazy_update(hp, codes):
    """Whether the compiled sparse kernels take O(nnz) steps (exactly the dense
    algorithm's iterates) for these settings; otherwise each step is the dense O(K d)
    one. No L1 part (the soft-threshold after each step is not linear), no averaging,
    and the rule's own condition (``Optimizer.lazy``)."""
    entry = OPTIMIZER_BY_CODE[int(codes[P.OPTIMIZER])]
    if hp[P.L1] != 0.0 or averaging(codes):
        return False
    return bool(entry.lazy(hp[P.L2] > 0.0, codes[P.SCHEDULE] == CONSTANT))
