"""Many models in one pass: a grid of ``alpha`` x ``l1_ratio`` on each of several folds
of the rows, fitted by one ``path_epoch`` kernel call per epoch.

A gradient step on a linear model is bound by reading the rows, not by its arithmetic,
so the kernels read each row once and use it for every model that trains on it (see
``fastgd._numpy.path`` for the contract). Model ``m`` of fold ``f`` equals the fit of
its own estimator (``alpha``, ``l1_ratio`` set) on the fold's training rows, visited in
the epoch's row order filtered to them: the same step size (``learning_rate="auto"``
computed from the fold's rows), the same batches, the same stopping rule (each model has
its own resolved fit, ``fastgd._spec.FitSpec``, and its own
:class:`fastgd._judge.Judge`: ``tol``, ``n_iter_no_change``, the stall rules,
``early_stopping`` on a split of the fold's rows, divergence), so models stop
independently; a stopped model costs nothing in later epochs.

:func:`fit_path` is the public entry; ``LogisticRegressionCV`` and
``LinearRegressionCV`` (``fastgd.linear_model``) are built on it.
"""

import functools
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
from ._backends import get_backend, path_backend, resolve
from ._judge import DivergenceError, Judge, Model
from ._losses import LOSSES
from ._numpy.path import fold_rows
from ._optimizers import uses_lazy_update
from ._penalties import penalty_value
from ._run import DENSE_STEP_WARN_RATIO, DenseStepWarning, call_kernel
from ._smoothness import EIGEN_MAX_ROWS, StepStats, dense_row_sq_norms, mean_row_l1, row_sq_norms, top_eigenvalue
from ._spec import build, choose, data_kind, initial_state, resolved, settings
from ._validation import validation_rows, weight_scale

__all__ = ["ALPHA_EPS", "Path", "alpha_grid", "alpha_max", "fit_path"]

# the automatic grid: alpha_max * logspace(0, log10(ALPHA_EPS), n_alphas)
ALPHA_EPS = 1e-4

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
    optimizer : str
        The update rule every model ran (``optimizer="auto"`` resolved: "sgd" for a
        grid, whose penalty is given).
    """

    def __init__(self, **fields):
        self.__dict__.update(fields)

    def __repr__(self):
        return (f"Path({len(self.folds)} folds x {len(self.alphas)} alphas x {len(self.l1_ratios)} l1_ratios, "
                f"backend={self.backend!r})")


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


def _once(fn):
    """``fn(needs, settings)``, computed on the first call and kept for every later
    call with the same ``needs``."""
    kept = {}

    def once(needs, s):
        if needs not in kept:
            kept[needs] = fn(needs, s)
        return kept[needs]

    return once


def _fold_stats(X, rows, sw, fit_intercept, needs, sq):
    """The step statistics (``fastgd._smoothness.StepStats``) of one fold's ``rows`` of
    X with their normalised weights ``sw``, as an in-memory fit on those rows alone
    gathers them; ``sq()`` gives every row's squared norm (computed once per call)."""
    n = rows.shape[0]
    step = max(1, n // EIGEN_MAX_ROWS)
    sample = rows[::step]
    with np.errstate(invalid="ignore", over="ignore"):
        return StepStats(
            n=n,
            max_row=float(np.max(sw * (sq()[rows] + (1.0 if fit_intercept else 0.0)))) if needs.max_row else 0.0,
            eigen=top_eigenvalue(X[sample], sw[::step], fit_intercept) if needs.eigen else 0.0,
            mean_l1=mean_row_l1(X[sample], fit_intercept) if needs.mean_l1 else 1.0,
        )


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


def _warn_dense_steps(s, X, K, batch):
    """``fastgd.DenseStepWarning`` when the shared pass's dense steps on CSR rows cost
    more than ten times the batch's non-zeros (as a single fit warns); ``s``: the
    estimator's settings."""
    n, d = X.shape
    per_batch = max(X.nnz / max(n, 1) * batch * K, 1.0)
    if K * d > DENSE_STEP_WARN_RATIO * per_batch:
        warnings.warn(
            f"On this sparse input, optimizer={s.optimizer!r} with penalty={s.penalty!r}, "
            f"learning_rate={s.learning_rate!r} and average={s.average!r} takes the dense step in "
            f"every model: each update moves all {K * d} coefficients, about {K * d / per_batch:.0f}x the "
            f"work of the batch's non-zeros. Use larger batches, or settings that step lazily (see "
            f"fastgd.DenseStepWarning).",
            DenseStepWarning,
            stacklevel=4,
        )


def alpha_max(X, Y, sw, loss, n_outputs, fit_intercept):
    """The smallest ``alpha`` at which an L1 penalty keeps every coefficient at 0 for the
    loss named ``loss`` (its registry entry's rule, ``fastgd._losses.Loss.alpha_max``)."""
    return LOSSES[loss].alpha_max(X, Y, sw, n_outputs, fit_intercept)


def alpha_grid(estimator, X, y, n_alphas, sample_weight=None):
    """The ``n_alphas`` alphas that ``fit_path(estimator, X, y, alphas=n_alphas)`` tries:
    log-spaced from :func:`alpha_max` of the validated data down to ``ALPHA_EPS``
    times it."""
    data = clone(estimator)._prepare(X, y, sample_weight, first=True)
    return _grid(data, settings(estimator).fit_intercept, n_alphas)


def _grid(data, fit_intercept, n_alphas):
    top = alpha_max(data.X, data.Y, data.sw, data.loss, data.n_outputs, fit_intercept)
    return top * np.logspace(0, np.log10(ALPHA_EPS), int(n_alphas))


def _checked_grid(s, data, alphas, l1_ratios):
    """``alphas`` (an int: the automatic grid) and ``l1_ratios`` (None: the estimator's
    ``l1_ratio``) as checked float64 vectors."""
    if isinstance(alphas, numbers.Integral) and not isinstance(alphas, bool) and alphas >= 1:
        alphas = _grid(data, s.fit_intercept, alphas)
    alphas = np.asarray(alphas, dtype=np.float64).ravel()
    if l1_ratios is None:
        l1_ratios = np.array([float(s.l1_ratio)])
    l1_ratios = np.asarray(l1_ratios, dtype=np.float64).ravel()
    if alphas.size == 0 or not np.all(np.isfinite(alphas)) or np.any(alphas < 0):
        raise ValueError(f"alphas must be a positive integer or a non-empty list of non-negative finite floats, "
                         f"got {alphas!r}")
    if l1_ratios.size == 0 or np.any(~(l1_ratios >= 0)) or np.any(l1_ratios > 1):
        raise ValueError(f"l1_ratios must be a non-empty list of floats in [0, 1], got {l1_ratios!r}")
    return alphas, l1_ratios


class _Grid:
    """Every model of one :func:`fit_path` call: their state, ``hp``/``codes`` rows,
    :class:`fastgd._judge.Model` and :class:`fastgd._judge.Judge`, and the call's
    data. :meth:`set_up` builds it, :meth:`epoch` runs one epoch of the models still
    running, :meth:`result` makes the :class:`Path`."""

    @classmethod
    def set_up(cls, est, X, y, alphas, l1_ratios, cv, sample_weight):
        self = cls()
        data = self.data = clone(est)._prepare(X, y, sample_weight, first=True)
        # the data-aware defaults, chosen once for every model of the grid (a clone
        # carries no earlier fit's choice)
        raw = settings(clone(est))
        self.choice = choose(raw, data_kind(data.X), grid=True)
        s = self.s = resolved(raw, self.choice)
        self.alphas, self.l1_ratios = _checked_grid(s, data, alphas, l1_ratios)
        # every model's estimator, validated as its own fit validates it
        grid = []
        for a in self.alphas:
            for r in self.l1_ratios:
                m = clone(est).set_params(alpha=float(a), l1_ratio=float(r))
                m._validate_params()
                m._check_param_combinations()
                m._choice = self.choice
                grid.append(m)
        X, Y, sw = data.X, data.Y, data.sw
        n, d = X.shape
        K = data.n_outputs
        classifier = s.is_classifier
        self.folds = _splits(cv, X, data.fitted["classes_"][Y[:, 0].astype(np.int64)] if classifier else Y[:, 0],
                             classifier)
        F, G = len(self.folds), len(grid)
        M = F * G
        self.train = np.zeros((n, F), dtype=np.uint8)
        self.scale = np.empty(F, dtype=X.dtype)
        self.backend = resolve(s.backend)
        self.kernel = path_backend(self.backend).path_epoch
        sq = functools.cache(lambda: _row_sq_norms(X, s.threads))
        self.state = np.zeros((M, *initial_state(grid[0], data).shape), dtype=X.dtype)
        self.hp = np.zeros((M, P.N_HP))
        self.codes = np.zeros((M, P.N_CODES), dtype=np.int64)
        self.models, self.judges = [], []
        for f, (tr, _) in enumerate(self.folds):
            rows = np.sort(tr)
            validation = None
            if s.early_stopping:
                # the split an independent fit on these rows draws first from random_state
                keep, held = validation_rows(Y[rows], check_random_state(s.random_state), s.validation_fraction,
                                             classifier)
                validation = (X[rows[held]], Y[rows[held]], None)
                rows = rows[keep]
            if rows.shape[0] == 0:
                raise ValueError(f"fold {f} has no training rows")
            self.train[rows, f] = 1
            self.scale[f] = weight_scale(rows.shape[0], float(np.sum(sw[rows], dtype=np.float64)))
            swf = sw[rows] * self.scale[f] if self.scale[f] != 1.0 else sw[rows]
            # (gathered once per fold: every model of the grid asks for the same ones)
            stats = _once(lambda needs, ms, rows=rows, swf=swf: _fold_stats(X, rows, swf, ms.fit_intercept, needs, sq))
            reference = LOSSES[data.loss].zero_objective(Y[rows], swf, K)
            for g, m_est in enumerate(grid):
                m = f * G + g
                spec = build(m_est, loss=data.loss, n_rows=rows.shape[0], n_outputs=K, n_features=d, dtype=X.dtype,
                             stats=stats, threads=s.threads)
                model = Model(spec, self.state[m], hp=self.hp[m], codes=self.codes[m])
                judge = Judge(spec, model, validation=validation)
                judge.set_reference(reference)
                self.models.append(model)
                self.judges.append(judge)
        self.model_fold = np.repeat(np.arange(F, dtype=np.int64), G)
        self.active = self.model_fold.copy()
        self.diverged = np.zeros(M, dtype=bool)
        # sparse rows: the models whose steps the single-model kernels take lazily (O(nnz),
        # not O(K d)) run one after another through them, each on its fold's rows; the
        # shared pass takes the dense step, which costs more than that at any d worth CSR
        self.lazy = np.array([sp.issparse(X) and not s.average and uses_lazy_update(self.hp[m], self.codes[m])
                              for m in range(M)], dtype=bool)
        self.alone = _FoldArrays(X, Y, sw, self.train, self.scale, self.backend) if self.lazy.any() else None
        if sp.issparse(X) and not self.lazy.all():
            _warn_dense_steps(s, X, K, int(self.codes[0, P.BATCH_SIZE]))
        self.losses = np.zeros(M)
        self.stored = X.nnz if sp.issparse(X) else X.size
        self.rng = check_random_state(s.random_state)
        self.block = _shuffle.block_rows(X)
        self.in_order = np.arange(n, dtype=np.int64)
        Xk = sp.csr_array(X) if sp.issparse(X) else X
        if sp.issparse(Xk):
            data_, indices, indptr = (np.ascontiguousarray(a) for a in (Xk.data, Xk.indices, Xk.indptr))
            Xk = sp.csr_array((data_, indices.astype(np.int64), indptr.astype(np.int64)), shape=X.shape)
        self.Xk = Xk
        return self

    def epoch(self, epoch):
        """One epoch of every model still running; False when none is."""
        live = np.flatnonzero(self.active >= 0)
        if live.size == 0:
            return False
        models, data = self.models, self.data
        n = data.X.shape[0]
        shuffled = self.s.shuffle and any(models[m].spec.batch < models[m].spec.n_rows for m in live)
        order = (_shuffle.draw_order(self.rng, n, self.s.shuffle, self.block).astype(np.int64, copy=False)
                 if shuffled else self.in_order)
        pens = {}
        for m in live:
            spec = models[m].spec
            models[m].begin_epoch([spec.n_rows], spec.batch)
            pens[m] = penalty_value(self.state[m, 0][:, :-1], spec.l2, spec.l1)
        tic = time.perf_counter()
        shared = np.where(self.lazy, -1, self.active)
        if np.any(shared >= 0):
            # (on a worker thread when long, so that Ctrl-C stops the fit at once)
            call_kernel(self.kernel, {"X": self.Xk, "Y": data.Y, "sw": data.sw, "order": order, "train": self.train,
                                      "scale": self.scale, "state": self.state, "hp": self.hp, "codes": self.codes,
                                      "model_fold": shared, "losses": self.losses},
                        self.stored * int(np.count_nonzero(shared >= 0)) * data.n_outputs)
        if self.alone is not None:
            with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
                self.alone.epochs(order, [m for m in live if self.lazy[m]], self.model_fold, self.state, self.hp,
                                  self.codes, self.losses)
        seconds = time.perf_counter() - tic
        for m in live:
            spec = models[m].spec
            models[m].end_epoch(spec.n_rows, spec.updates_per_epoch)
            objective = float(self.losses[m]) / spec.n_rows + pens[m]
            try:
                stop = self.judges[m].judge(epoch, objective, seconds, stop_early=True)
            except DivergenceError:
                self.diverged[m] = stop = True
            if stop:
                self.active[m] = -1
        return True

    def result(self):
        """The :class:`Path` of the models (and the warnings of models that missed their
        stopping criterion or diverged)."""
        s, judges, models = self.s, self.judges, self.models
        M = len(models)
        diverged = self.diverged
        missed = np.array([j.finish(s.max_iter, stop_early=True, warn=False) for j in judges], dtype=bool) & ~diverged
        shape = (len(self.folds), len(self.alphas), len(self.l1_ratios))
        K, d1 = self.state.shape[2:]
        coefs = np.stack([mo.weights().astype(np.float64) for mo in models]).reshape(shape + (K, d1))
        coefs[diverged.reshape(shape)] = np.nan
        if missed.any():
            warnings.warn(
                f"{int(missed.sum())} of {M} models reached max_iter={s.max_iter} epochs before the stopping "
                f"criterion (tol={s.tol}, n_iter_no_change={s.n_iter_no_change}) was met; increase "
                f"max_iter if their fits are not good enough.",
                ConvergenceWarning,
                stacklevel=4,  # (the caller of fit_path's caller: a CV estimator's fit)
            )
        if diverged.any():
            bad = sorted({float(models[m].spec.alpha) for m in np.flatnonzero(diverged)})
            warnings.warn(
                f"{int(diverged.sum())} of {M} models diverged (alpha in {bad}); they are scored NaN and never "
                f"chosen. A smaller step (eta0) or learning_rate='auto' avoids it.",
                RuntimeWarning,
                stacklevel=4,  # (the caller of fit_path's caller: a CV estimator's fit)
            )
        return Path(
            alphas=self.alphas,
            l1_ratios=self.l1_ratios,
            folds=self.folds,
            coefs=coefs,
            n_iter=np.array([j.n_epochs for j in judges]).reshape(shape),
            converged=~missed.reshape(shape) & ~diverged.reshape(shape),
            diverged=diverged.reshape(shape),
            loss_curves=[list(j.curve) for j in judges],
            validation_scores=[list(j.val_scores) for j in judges] if s.early_stopping else None,
            backend=self.backend,
            etas=np.array([mo.eta for mo in models]).reshape(shape),
            optimizer=self.s.optimizer,
            _choice=self.choice,
            _data=self.data,
        )


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
    grid = _Grid.set_up(estimator, X, y, alphas, l1_ratios, cv, sample_weight)
    for epoch in range(1, grid.s.max_iter + 1):
        if not grid.epoch(epoch):
            break
    return grid.result()
