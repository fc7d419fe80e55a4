"""The benchmarks' entry to fastgd's internals: what ``bench/`` needs beyond the public
estimators, in one small module.

A benchmark times parts of a fit that the estimators do not expose on their own: one
epoch without the set-up around it, one kernel call, each set-up step alone, the
averaged Dask mode's rounds without a cluster. Everything here is built from the same
code ``fit`` runs, so what is timed is what a user's fit does. The private modules it
reads may be reorganised at any time; this module keeps its names and meanings, so the
benchmarks change in one place when they are.

Not for fitting models: use the estimators.
"""

import copy
import numpy as np

__all__ = [
    "EpochRunner",
    "alpha_grid",
    "backend_error",
    "backend_names",
    "default_backend",
    "epoch_runner",
    "n_threads",
    "penalty_strengths",
    "setup_steps",
    "simulate_average",
]


def backend_names():
    """The names of every backend fastgd knows, in its preference order
    (``"cython"``, ``"numba"``, ``"numpy"``), whether they import here or not."""
    from ._backends import BACKENDS

    return tuple(BACKENDS)


def backend_error(name, sparse=False):
    """None when backend ``name`` (its CSR kernels when ``sparse``) imports here, else
    the reason it does not, with the install hint."""
    from ._backends import get_backend

    try:
        get_backend(name, sparse=sparse)
    except ImportError as exc:
        return str(exc)
    return None


def default_backend():
    """The backend the estimators' default ``backend="auto"`` runs in this process."""
    from ._backends import resolve
    from .linear_model import LinearRegression

    return resolve(LinearRegression().get_params()["backend"])


def n_threads(n_jobs=None):
    """The threads a fit with ``n_jobs`` uses (None: every core this process may run on)."""
    from ._run import n_threads as threads

    return threads(n_jobs)


def penalty_strengths(est, X=None):
    """``(l2, l1)``: the strengths of ``est``'s penalty (its ``penalty``, ``alpha`` and
    ``l1_ratio``), the terms ``0.5 * l2 * ||W||^2 + l1 * ||W||_1`` of its objective.
    ``alpha="auto"``: the fitted ``alpha_``; before a fit, what a fit on training rows
    ``X`` would choose (an unweighted ``fit``), or without ``X`` 1e-4."""
    from ._penalties import penalty_strengths as strengths
    from ._spec import AUTO, DEFAULT_ALPHA, choose, data_kind, settings

    params = est.get_params()
    alpha = params["alpha"]
    if alpha == AUTO:  # the fitted model's, else the one "auto" would choose
        alpha = getattr(est, "alpha_", None)
        if alpha is None:
            alpha = DEFAULT_ALPHA if X is None else choose(settings(copy.copy(est)), data_kind(X)).alpha
    return strengths(params["penalty"], alpha, params.get("l1_ratio", 0.0))


def alpha_grid(est, X, y, n_alphas):
    """The ``n_alphas`` alphas that ``LogisticRegressionCV(alphas=n_alphas)`` (or
    ``fit_path(est, X, y, alphas=n_alphas)``) tries on ``(X, y)``."""
    from ._path import alpha_grid as grid

    return grid(est, X, y, n_alphas)


class EpochRunner:
    """A new fit of an estimator, set up and ready for its first epoch (see
    :func:`epoch_runner`)."""

    def __init__(self, run):
        self._run = run

    def epoch(self):
        """Run exactly what one epoch of ``fit`` runs (the row order and one kernel
        call); return the epoch's objective."""
        return self._run.epoch()

    def weights(self):
        """``(coef, intercept)`` of the first model now: copies, shapes ``(d,)`` and ``(1,)``."""
        W = self._run.state[0]
        return W[0, :-1].copy(), W[0, -1:].copy()

    def permutation(self):
        """A random row order drawn from the fit's random stream (int64)."""
        return self._run.rng.permutation(self._run.X.shape[0]).astype(np.int64)

    def kernel_epoch(self, order, **options):
        """One call of the backend's epoch kernel over the rows in ``order`` (the state
        is updated in place), with kernel ``options`` such as ``lazy=False`` for sparse
        input; nothing else runs."""
        run = self._run
        return run.backend.epoch(**run.kernel_args(order), **options)


def epoch_runner(est, X, y, sample_weight=None):
    """An :class:`EpochRunner` for a new fit of ``est`` on ``(X, y)``: everything ``fit``
    does before its first epoch is done here (validation, the initial step, the random
    stream), so each :meth:`EpochRunner.epoch` is one epoch and nothing else. ``est``
    is not changed."""
    from ._run import prepared

    return EpochRunner(prepared(est, X, y, sample_weight))


def setup_steps(est, X, y):
    """``{name: step}``: each step ``est.fit(X, y)`` takes before its first epoch, as a
    function of no arguments that runs that step alone: ``"validation"`` (parameters and
    input; X is not scanned for NaN), ``"step size"`` (the initial step, e.g. the data
    pass of ``learning_rate="auto"``) and ``"first row order"`` (the first epoch's
    shuffle)."""
    from ._run import initial_eta
    from ._shuffle import block_rows, draw_order
    from ._validation import normalise_weights, validate_inputs

    def validation():
        est._validate_params()
        est._check_param_combinations()
        return validate_inputs(est, X, y, None, first=True, defer_finite=True)

    data = validation()
    data = data._replace(sw=normalise_weights(data.sw))
    rows = block_rows(X)
    return {
        "validation": validation,
        "step size": lambda: initial_eta(est, data),
        "first row order": lambda: draw_order(np.random.RandomState(0), X.shape[0], True, rows),
    }


def simulate_average(est, X, y, n_blocks, n_workers, epochs, sync_every=None, backend="numba"):
    """The averaged Dask mode (``dask_mode="average"``) run in this process without a
    cluster: ``X`` cut into ``n_blocks`` blocks, block ``b`` on worker ``b % n_workers``,
    each epoch the mode's own rounds (one thread per worker). Returns the state's
    weights after each epoch: one ``(K, d + 1)`` array (intercept last) per epoch."""
    import itertools

    from sklearn.utils import check_random_state

    from . import _dask as fdask
    from . import _params as P
    from ._run import prepared
    from ._spec import settings

    run = prepared(est, X, y)
    hp = run.hp.copy()
    hp[P.ETA0] = run.eta
    codes = run.codes.copy()
    codes[P.N_THREADS] = 1  # one thread per worker
    batch = int(codes[P.BATCH_SIZE])
    edges = np.linspace(0, X.shape[0], n_blocks + 1).astype(int)
    blocks = [(X[a:b], run.Y[a:b], run.sw[a:b]) for a, b in itertools.pairwise(edges)]
    sizes = [b[0].shape[0] for b in blocks]
    rng = check_random_state(settings(est).random_state)
    state, t, out = np.zeros_like(run.state), 0, []
    for _ in range(epochs):
        plan = fdask.epoch_plan(rng, n_blocks, shuffle=True)
        rounds = fdask.average_rounds(plan, [b % n_workers for b in range(n_blocks)], sizes, batch, sync_every)
        state, _, steps = fdask.blocks._Local.rounds(blocks, rounds, (state, 0.0), (backend, hp, codes), t)
        t += steps
        out.append(state[0].copy())
    return out
