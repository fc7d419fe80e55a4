"""Many models in one pass: a grid of ``alpha`` x ``l1_ratio`` on each of several folds
of the rows, fitted by one ``path_epoch`` kernel call per epoch.

A gradient step on a linear model is bound by reading the rows, not by its arithmetic,
so the kernels read each row once and use it for every model that trains on it (see
``fastgd._numpy.path`` for the contract). Model ``m`` of fold ``f`` equals the fit of
its own estimator (``alpha``, ``l1_ratio`` set) on the fold's training rows, visited in
the epoch's row order filtered to them: the same step size (``learning_rate="auto"``
computed from the fold's rows), the same batches, the same stopping rule (each model is
judged by a :class:`fastgd._run.Run` of its own: ``tol``, ``n_iter_no_change``, the
stall rules, ``early_stopping`` on a split of the fold's rows, divergence), so models
stop independently; a stopped model costs nothing in later epochs.

:func:`fit_path` is the public entry; ``LogisticRegressionCV`` and
``LinearRegressionCV`` (``fastgd.linear_model``) are built on it.
"""

import numbers
import time
import warnings

import numpy as np
import scipy.sparse as sp
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state

from . import _params as P
from . import _shuffle, _sparse
from ._backends import get_backend, resolve
from ._losses import LOSSES
from ._numpy.path import fold_rows
from ._optimizers import OPTIMIZERS, uses_lazy_update
from ._penalties import penalty_strengths, penalty_value
from ._run import (
    DENSE_STEP_WARN_RATIO,
    DenseStepWarning,
    DivergenceError,
    Run,
    batch_rows,
    call_kernel,
    checked_step,
    n_threads,
    state_slots,
)
from ._schedules import SCHEDULES
from ._smoothness import (
    EIGEN_MAX_ROWS,
    adaptive_step,
    auto_step,
    dense_row_sq_norms,
    mean_row_l1,
    row_sq_norms,
    top_eigenvalue,
)
from ._validation import validation_rows, weight_scale

__all__ = ["ALPHA_EPS", "Path", "alpha_grid", "alpha_max", "fit_path", "path_backend"]

# the automatic grid: alpha_max * logspace(0, log10(ALPHA_EPS), n_alphas)
ALPHA_EPS = 1e-4

_PATH_MODULES = {
    "cython": "fastgd._cython.path",
    "numba": "fastgd._numba.path",
    "numpy": "fastgd._numpy.path",
}


def path_backend(name):
    """The module holding backend ``name``'s ``path_epoch`` (dense and CSR input)."""
    import importlib

    return importlib.import_module(_PATH_MODULES[resolve(name)])


class Path:
    """Every model of a :func:`fit_path` call.

    Attributes
    ----------
    alphas : ndarray of shape (n_alphas,)
    l1_ratios : ndarray of shape (n_l1_ratios,)
    folds : list of (train, test) index arrays, one per fold
    coefs : ndarray of shape (n_folds, n_alphas, n_l1_ratios, n_outputs, n_features + 1)
        Each model's reported weights (the average once averaging has started), in
        float64, the intercept in the last column.
    n_iter : ndarray of shape (n_folds, n_alphas, n_l1_ratios)
        Epochs each model ran.
    converged : ndarray of bool, same shape
        Whether the model met its stopping criterion before ``max_iter``.
    diverged : ndarray of bool, same shape
        Whether the model diverged (its ``coefs`` are then NaN).
    loss_curves : list of lists, in the models' order (fold, alpha, l1_ratio)
    validation_scores : list of lists or None
        With ``early_stopping``, each model's score on its fold's validation split
        after each epoch.
    backend : str
        The backend that ran.
    etas : ndarray of shape (n_folds, n_alphas, n_l1_ratios)
        Each model's initial step size (``learning_rate="auto"``: computed from its
        fold's rows).
    """

    def __init__(self, **fields):
        self.__dict__.update(fields)

    def __repr__(self):
        return (f"Path({len(self.folds)} folds x {len(self.alphas)} alphas x {len(self.l1_ratios)} l1_ratios, "
                f"backend={self.backend!r})")


class _ModelRun(Run):
    """The judge of one model of the grid: :class:`fastgd._run.Run`'s counters, curves,
    stopping rule and divergence check, without data of its own (its epochs run in the
    shared ``path_epoch`` call); ``hp``/``codes`` are its rows of the call's arrays."""

    def __init__(self, est, loss, n, state, eta, hp, codes, reference, X_val, Y_val):
        self.rng = None
        self.setup(est, loss, n, state, 0, eta, hp, codes, X_val, Y_val, None, 0, None)
        if reference is not None and np.isfinite(reference) and reference > 0:
            self.reference, self.reference_name = reference, "the all-zero model's objective"
        self.stopped = False
        self.diverged = False
        self.start_judging()


def _splits(cv, X, y_for_cv, classifier):
    """``(train, test)`` index pairs from ``cv`` (None: one fold of every row)."""
    if cv is None:
        n = X.shape[0]
        return [(np.arange(n), np.arange(0))]
    from sklearn.model_selection import check_cv

    splitter = check_cv(cv, y_for_cv, classifier=classifier)
    return [(np.asarray(tr, dtype=np.int64), np.asarray(te, dtype=np.int64))
            for tr, te in splitter.split(X, y_for_cv)]


def _row_sq_norms(X, threads):
    return row_sq_norms(X) if sp.issparse(X) else dense_row_sq_norms(X, threads)


class _FoldSteps:
    """The step sizes of ``learning_rate="auto"`` on one fold's rows, as
    ``fastgd._run.initial_eta`` computes them on those rows alone (the statistics
    gathered once per fold, the formula per model)."""

    def __init__(self, est, X, rows, sw, loss, sq):
        self.est, self.loss = est, loss
        self.n = rows.shape[0]
        fi = bool(est.fit_intercept)
        step = max(1, self.n // EIGEN_MAX_ROWS)
        sample = rows[::step]
        b = batch_rows(est.batch_size, self.n)
        schedule = SCHEDULES[est.learning_rate]
        self.source = "learning_rate='auto' computed it from X"
        self.adaptive = schedule.from_data and OPTIMIZERS[est.optimizer].adaptive
        self.from_data = schedule.from_data
        with np.errstate(invalid="ignore", over="ignore"):
            if self.adaptive:
                self.scale = mean_row_l1(X[sample], fi)
            elif self.from_data:
                self.max_row = float(np.max(sw * (sq[rows] + (1.0 if fi else 0.0)))) if b < self.n else 0.0
                self.eigen = top_eigenvalue(X[sample], sw[::step], fi) if b > 1 or b >= self.n else 0.0

    def eta(self, est, dtype):
        if self.adaptive:
            eta = adaptive_step(self.scale, optimizer=est.optimizer, beta_2=float(est.beta_2))
        elif self.from_data:
            l2, _ = penalty_strengths(est.penalty, est.alpha, est.l1_ratio)
            eta = auto_step(n=self.n, batch_size=batch_rows(est.batch_size, self.n),
                            max_row_smoothness=self.max_row, top_eigenvalue=self.eigen,
                            curvature=LOSSES[self.loss].curvature, l2=l2, momentum=float(est.momentum))
        else:
            return checked_step(float(est.eta0), f"eta0={est.eta0!r}", dtype)
        return checked_step(eta, self.source, dtype)


class _FoldArrays:
    """Each fold's rows as the single-model sparse kernel takes them (CSR arrays, targets,
    normalised weights), made on first use, for the models that run one after another."""

    def __init__(self, X, Y, sw, train, scale, backend_name):
        self.X, self.Y, self.sw, self.train, self.scale = X, Y, sw, train, scale
        self.kernel = get_backend(backend_name, sparse=True).epoch
        self.folds = {}

    def epochs(self, order, models, model_fold, state, hp, codes, losses):
        """One epoch of each of ``models``, on its fold's rows in ``order``."""
        locals_ = {}
        for m in models:
            f = int(model_fold[m])
            if f not in self.folds:
                rows = np.flatnonzero(self.train[:, f])
                self.folds[f] = (_sparse.kernel_arrays(sp.csr_matrix(self.X[rows])),
                                 np.ascontiguousarray(self.Y[rows]),
                                 np.ascontiguousarray(self.sw[rows] * self.scale[f]))
            if f not in locals_:
                locals_[f] = fold_rows(self.train, order, f)[1]
            (data, indices, indptr), Yf, swf = self.folds[f]
            losses[m] = self.kernel(data, indices, indptr, Yf, swf, locals_[f], state[m], hp[m], codes[m])


def _warn_dense_steps(est, X, K, batch):
    """``fastgd.DenseStepWarning`` when the shared pass's dense steps on CSR rows cost
    more than ten times the batch's non-zeros (as a single fit warns)."""
    n, d = X.shape
    per_batch = max(X.nnz / max(n, 1) * batch * K, 1.0)
    if K * d > DENSE_STEP_WARN_RATIO * per_batch:
        warnings.warn(
            f"On this sparse input, optimizer={est.optimizer!r} with penalty={est.penalty!r}, "
            f"learning_rate={est.learning_rate!r} and average={est.average!r} takes the dense step in "
            f"every model: each update moves all {K * d} coefficients, about {K * d / per_batch:.0f}x the "
            f"work of the batch's non-zeros. Use larger batches, or settings that step lazily (see "
            f"fastgd.DenseStepWarning).",
            DenseStepWarning,
            stacklevel=3,
        )


def alpha_max(X, Y, sw, loss, n_outputs, fit_intercept):
    """The smallest ``alpha`` at which an L1 penalty keeps every coefficient at 0: the
    largest absolute gradient of the mean weighted loss with respect to a coefficient,
    at the model with zero coefficients and the best constant intercept (scikit-learn's
    ``alpha_max`` rule of its elastic-net path, for each loss). 1.0 where that gradient
    is 0 (constant targets, or all-zero features)."""
    sw = np.asarray(sw, dtype=np.float64)
    total = float(sw.sum())
    if loss == "multinomial":
        R = np.zeros((Y.shape[0], n_outputs))
        R[np.arange(Y.shape[0]), Y[:, 0].astype(np.intp)] = 1.0
    else:
        R = np.asarray(Y, dtype=np.float64).copy()
    if fit_intercept:
        R -= (sw @ R) / total
    elif loss != "squared_error":
        R -= 1.0 / (2 if loss == "log_loss" else n_outputs)  # the zero model's probabilities
    R *= sw[:, None]
    G = X.T @ R if sp.issparse(X) else np.asarray(X, dtype=np.float64).T @ R
    top = float(np.max(np.abs(G))) / total if G.size else 0.0
    return top if np.isfinite(top) and top > 0 else 1.0


def alpha_grid(estimator, X, y, n_alphas, sample_weight=None):
    """The ``n_alphas`` alphas that ``fit_path(estimator, X, y, alphas=n_alphas)`` tries:
    log-spaced from :func:`alpha_max` of the validated data down to ``ALPHA_EPS``
    times it."""
    data = clone(estimator)._prepare(X, y, sample_weight, first=True)
    return _grid(data, estimator.fit_intercept, n_alphas)


def _grid(data, fit_intercept, n_alphas):
    top = alpha_max(data.X, data.Y, data.sw, data.loss, data.n_outputs, fit_intercept)
    return top * np.logspace(0, np.log10(ALPHA_EPS), int(n_alphas))


def fit_path(estimator, X, y, *, alphas, l1_ratios=None, cv=None, sample_weight=None):
    """Fit ``estimator`` for every ``alpha`` x ``l1_ratio`` on every fold of ``cv`` in
    one pass over the rows per epoch.

    Parameters
    ----------
    estimator : fastgd.LinearRegression or fastgd.LogisticRegression
        Its parameters (``batch_size``, ``optimizer``, ``learning_rate``, ``average``,
        ``max_iter``, ``tol``, ``early_stopping``, ``random_state``, ``backend``, ...)
        apply to every model; ``alpha`` and ``l1_ratio`` are replaced by the grid's. It
        is not changed.
    X : {array-like, sparse matrix} of shape (n_samples, n_features)
    y : array-like of shape (n_samples,) or (n_samples, n_targets)
    alphas : int or array-like of non-negative floats
        An int ``n``: ``n`` alphas log-spaced from ``alpha_max`` (the smallest alpha at
        which an L1 penalty keeps every coefficient at zero, from the data) down to
        1e-4 times it.
    l1_ratios : array-like of floats in [0, 1], default=None
        None: the estimator's ``l1_ratio`` alone (it matters for
        ``penalty="elasticnet"`` only).
    cv : None, int, cross-validation splitter or iterable of (train, test), default=None
        None: one fold of every row (the regularisation path itself); otherwise as
        scikit-learn's ``check_cv`` (stratified for a classifier).
    sample_weight : array-like of shape (n_samples,), default=None

    Returns
    -------
    Path
        Every model's weights, epochs and curves; model ``(f, a, l)`` equals
        ``estimator`` with ``alpha=alphas[a]``, ``l1_ratio=l1_ratios[l]`` fitted on fold
        ``f``'s training rows, visiting them in the order the call's random stream
        gives (each epoch's permutation of all rows, filtered to the fold's).
    """
    est = estimator
    probe = clone(est)
    data = probe._prepare(X, y, sample_weight, first=True)
    if isinstance(alphas, numbers.Integral) and not isinstance(alphas, bool) and alphas >= 1:
        alphas = _grid(data, est.fit_intercept, alphas)
    alphas = np.asarray(alphas, dtype=np.float64).ravel()
    if l1_ratios is None:
        l1_ratios = np.array([float(est.l1_ratio)])
    l1_ratios = np.asarray(l1_ratios, dtype=np.float64).ravel()
    if alphas.size == 0 or not np.all(np.isfinite(alphas)) or np.any(alphas < 0):
        raise ValueError(f"alphas must be a positive integer or a non-empty list of non-negative finite floats, "
                         f"got {alphas!r}")
    if l1_ratios.size == 0 or np.any(~(l1_ratios >= 0)) or np.any(l1_ratios > 1):
        raise ValueError(f"l1_ratios must be a non-empty list of floats in [0, 1], got {l1_ratios!r}")
    # every model's estimator, validated as its own fit validates it
    grid = []
    for a in alphas:
        for r in l1_ratios:
            m = clone(est).set_params(alpha=float(a), l1_ratio=float(r))
            m._validate_params()
            m._check_param_combinations()
            grid.append(m)
    X, Y, sw = data.X, data.Y, data.sw
    n, d = X.shape
    K = data.n_outputs
    classifier = est._is_classifier
    folds = _splits(cv, X, data.fitted["classes_"][Y[:, 0].astype(np.int64)] if classifier else Y[:, 0], classifier)
    F = len(folds)
    G = len(grid)
    M = F * G
    dtype = X.dtype
    train = np.zeros((n, F), dtype=np.uint8)
    scale = np.empty(F, dtype=dtype)
    threads = n_threads(est.n_jobs)
    backend_name = resolve(est.backend)
    kernel = path_backend(backend_name).path_epoch
    sq = _row_sq_norms(X, threads) if SCHEDULES[est.learning_rate].from_data else None
    S = state_slots(est)
    state = np.zeros((M, S, K, d + 1), dtype=dtype)
    hp = np.zeros((M, P.N_HP))
    codes = np.zeros((M, P.N_CODES), dtype=np.int64)
    runs = []
    fold_n = np.empty(F, dtype=np.int64)
    for f, (tr, _) in enumerate(folds):
        rows = np.sort(tr)
        X_val = Y_val = None
        if est.early_stopping:
            # the split an independent fit on these rows draws first from random_state
            keep, held = validation_rows(Y[rows], check_random_state(est.random_state),
                                         est.validation_fraction, classifier)
            X_val, Y_val = X[rows[held]], Y[rows[held]]
            rows = rows[keep]
        if rows.shape[0] == 0:
            raise ValueError(f"fold {f} has no training rows")
        train[rows, f] = 1
        fold_n[f] = rows.shape[0]
        scale[f] = weight_scale(rows.shape[0], float(np.sum(sw[rows], dtype=np.float64)))
        swf = sw[rows] * scale[f] if scale[f] != 1.0 else sw[rows]
        steps = _FoldSteps(est, X, rows, swf, data.loss, sq)
        reference = LOSSES[data.loss].zero_objective(Y[rows], swf, K)
        for g, m_est in enumerate(grid):
            m = f * G + g
            runs.append(_ModelRun(m_est, data.loss, rows.shape[0], state[m], steps.eta(m_est, dtype),
                                  hp[m], codes[m], reference, X_val, Y_val))
    codes[:, P.N_THREADS] = threads
    model_fold = np.repeat(np.arange(F, dtype=np.int64), G)
    active = model_fold.copy()
    # sparse rows: the models whose steps the single-model kernels take lazily (O(nnz),
    # not O(K d)) run one after another through them, each on its fold's rows; the
    # shared pass takes the dense step, which costs more than that at any d worth CSR
    lazy = np.array([sp.issparse(X) and not est.average and uses_lazy_update(hp[m], codes[m]) for m in range(M)],
                    dtype=bool)
    alone = _FoldArrays(X, Y, sw, train, scale, backend_name) if lazy.any() else None
    if sp.issparse(X) and not lazy.all():
        _warn_dense_steps(est, X, K, int(codes[0, P.BATCH_SIZE]))
    losses = np.zeros(M)
    stored = X.nnz if sp.issparse(X) else X.size
    rng = check_random_state(est.random_state)
    block = _shuffle.block_rows(X)
    in_order = np.arange(n, dtype=np.int64)
    Xk = sp.csr_array(X) if sp.issparse(X) else X
    if sp.issparse(Xk):
        data_, indices, indptr = (np.ascontiguousarray(a) for a in (Xk.data, Xk.indices, Xk.indptr))
        Xk = sp.csr_array((data_, indices.astype(np.int64), indptr.astype(np.int64)), shape=X.shape)
    for epoch in range(1, est.max_iter + 1):
        live = np.flatnonzero(active >= 0)
        if live.size == 0:
            break
        shuffled = est.shuffle and any(codes[m, P.BATCH_SIZE] < fold_n[active[m]] for m in live)
        order = _shuffle.draw_order(rng, n, est.shuffle, block).astype(np.int64, copy=False) if shuffled else in_order
        pens = {}
        for m in live:
            run = runs[m]
            run.begin_epoch([run.n_rows], int(codes[m, P.BATCH_SIZE]))
            pens[m] = penalty_value(state[m, 0][:, :-1], run.l2, run.l1)
        tic = time.perf_counter()
        shared = np.where(lazy, -1, active)
        if np.any(shared >= 0):
            # (on a worker thread when long, so that Ctrl-C stops the fit at once)
            call_kernel(kernel, {"X": Xk, "Y": Y, "sw": sw, "order": order, "train": train, "scale": scale,
                                 "state": state, "hp": hp, "codes": codes, "model_fold": shared, "losses": losses},
                        stored * int(np.count_nonzero(shared >= 0)) * K)
        if alone is not None:
            with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
                alone.epochs(order, [m for m in live if lazy[m]], model_fold, state, hp, codes, losses)
        seconds = time.perf_counter() - tic
        for m in live:
            run = runs[m]
            run.end_epoch(run.n_rows, run._updates_per_epoch())
            objective = float(losses[m]) / run.n_rows + pens[m]
            try:
                stop = run.judge(epoch, objective, seconds, stop_early=True)
            except DivergenceError:
                run.diverged = stop = True
            if stop:
                active[m] = -1
    missed = [r.finish_judging(est.max_iter, stop_early=True, warn=False) and not r.diverged for r in runs]
    diverged = [r.diverged for r in runs]
    shape = (F, len(alphas), len(l1_ratios))
    coefs = np.stack([r.weights().astype(np.float64) for r in runs]).reshape(shape + (K, d + 1))
    coefs[np.asarray(diverged).reshape(shape)] = np.nan
    if any(missed):
        warnings.warn(
            f"{sum(missed)} of {M} models reached max_iter={est.max_iter} epochs before the stopping "
            f"criterion (tol={est.tol}, n_iter_no_change={est.n_iter_no_change}) was met; increase "
            f"max_iter if their fits are not good enough.",
            ConvergenceWarning,
            stacklevel=3,
        )
    if any(diverged):
        bad = sorted({float(r.est.alpha) for r in runs if r.diverged})
        warnings.warn(
            f"{sum(diverged)} of {M} models diverged (alpha in {bad}); they are scored NaN and never chosen. "
            f"A smaller step (eta0) or learning_rate='auto' avoids it.",
            RuntimeWarning,
            stacklevel=3,
        )
    return Path(
        alphas=alphas,
        l1_ratios=l1_ratios,
        folds=folds,
        coefs=coefs,
        n_iter=np.array([r.n_epochs for r in runs]).reshape(shape),
        converged=~np.asarray(missed).reshape(shape) & ~np.asarray(diverged).reshape(shape),
        diverged=np.asarray(diverged).reshape(shape),
        loss_curves=[list(r.curve) for r in runs],
        validation_scores=[list(r.val_scores) for r in runs] if est.early_stopping else None,
        backend=backend_name,
        etas=np.array([r.eta for r in runs]).reshape(shape),
        _data=data,
    )
