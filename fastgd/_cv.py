"""The cross-validated estimators' base: ``alphas`` x ``l1_ratios`` on every fold in one
pass per epoch (``fastgd._path.fit_path``), scored on each fold's held-out rows, the
best refitted on every row.

``LogisticRegressionCV`` and ``LinearRegressionCV`` (``fastgd.linear_model``) name
their parameters; this module holds what they share.
"""

import numbers
from typing import ClassVar

import numpy as np
from sklearn.base import BaseEstimator, clone
from sklearn.metrics import check_scoring, r2_score
from sklearn.utils._param_validation import Interval
from sklearn.utils.validation import check_is_fitted

from ._path import fit_path
from ._validation import is_dask

# the base estimator's parameters a CV estimator does not take: the grid replaces alpha
# and l1_ratio; a CV fit always starts from zero and runs in memory
_NOT_TAKEN = ("alpha", "l1_ratio", "warm_start", "dask_mode", "sync_every")


def store_parameters(est, arguments):
    """Set each of ``__init__``'s ``arguments`` (its ``locals()``) as the attribute of its
    name, unchanged (scikit-learn's rule for ``__init__``)."""
    for name, value in arguments.items():
        if name != "self":
            setattr(est, name, value)


def cv_constraints(base_class):
    """The parameter constraints of the CV estimator over ``base_class``."""
    base = {k: v for k, v in base_class._parameter_constraints.items() if k not in _NOT_TAKEN}
    return {
        **base,
        "alphas": [Interval(numbers.Integral, 1, None, closed="left"), "array-like"],
        "l1_ratios": ["array-like", None],
        "cv": ["cv_object"],
        "scoring": [str, callable, None],
        "refit": ["boolean"],
    }


class BaseCV(BaseEstimator):
    """Common base of ``LogisticRegressionCV`` and ``LinearRegressionCV`` (not public).

    Subclasses set ``_base_class`` (the estimator each model is) and list every
    parameter in their ``__init__``: the base class's, less ``_NOT_TAKEN``, plus
    ``alphas``, ``l1_ratios``, ``cv``, ``scoring`` and ``refit``.
    """

    _base_class: ClassVar[type]

    def _base_estimator(self):
        """An unfitted base estimator with this one's shared parameters."""
        names = self._base_class._get_param_names()
        params = {k: getattr(self, k) for k in names if k not in _NOT_TAKEN}
        return self._base_class(**params)

    def fit(self, X, y, sample_weight=None):
        """Fit every ``alpha`` x ``l1_ratio`` on every fold of ``cv`` in one pass over the
        rows per epoch, score each on its fold's held-out rows, choose the best mean
        score and (``refit``) fit it on every row, starting from the folds' mean model.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) (or (n_samples, n_targets) for the regressor)
        sample_weight : array-like of shape (n_samples,), default=None
            Weights of the training rows of every fit (not of the scores).

        Returns
        -------
        self
        """
        self._validate_params()
        if any(is_dask(v) for v in (X, y, sample_weight)):
            raise TypeError(f"{type(self).__name__} fits in-memory data only; compute the Dask collections first.")
        base = self._base_estimator()
        base._validate_params()
        path = fit_path(base, X, y, alphas=self.alphas, l1_ratios=self._l1_ratios(base), cv=self.cv,
                        sample_weight=sample_weight)
        data = path._data
        scores = self._fold_scores(base, path, data, y)
        mean = scores.mean(axis=0)
        if not np.any(np.isfinite(mean)):
            raise ValueError(f"{type(self).__name__}: every model of the grid diverged or scored NaN; "
                             "lower eta0 or use learning_rate='auto'.")
        # the first best in the grid's order: the largest alpha among equals
        a, r = np.unravel_index(int(np.nanargmax(mean)), mean.shape)
        best = base.set_params(alpha=float(path.alphas[a]), l1_ratio=float(path.l1_ratios[r]))
        W = np.mean(path.coefs[:, a, r], axis=0)
        if self.refit:
            fitted = self._refit(best, W, X, y, sample_weight, data, path._choice)
        else:
            fitted = _with_weights(clone(best), W, data, path._choice)
        self.alphas_ = path.alphas
        self.l1_ratios_ = path.l1_ratios
        self.alpha_ = float(path.alphas[a])
        self.l1_ratio_ = float(path.l1_ratios[r]) if base.penalty == "elasticnet" else None
        self.scores_ = scores
        self.coefs_paths_ = path.coefs
        self.n_iter_ = path.n_iter
        self.backend_ = path.backend
        self.best_estimator_ = fitted
        self.coef_ = fitted.coef_
        self.intercept_ = fitted.intercept_
        self.n_features_in_ = fitted.n_features_in_
        if hasattr(fitted, "feature_names_in_"):
            self.feature_names_in_ = fitted.feature_names_in_
        elif hasattr(self, "feature_names_in_"):
            del self.feature_names_in_
        for name in ("classes_",):
            if hasattr(fitted, name):
                setattr(self, name, getattr(fitted, name))
        return self

    def _l1_ratios(self, base):
        """``l1_ratios``, which only the elastic net takes (their range: ``fit_path``)."""
        if self.l1_ratios is not None and base.penalty != "elasticnet":
            raise ValueError(f"l1_ratios applies to penalty='elasticnet' only (got penalty={base.penalty!r}); "
                             "leave it None.")
        return self.l1_ratios

    def _fold_scores(self, base, path, data, y):
        """``scores_``: (n_folds, n_alphas, n_l1_ratios), each model on its fold's
        held-out rows; NaN for a diverged model or a fold without held-out rows."""
        F, A, L = path.n_iter.shape
        scores = np.full((F, A, L), np.nan)
        scorer = None if self.scoring is None else check_scoring(base, scoring=self.scoring)
        for f, (_, test) in enumerate(path.folds):
            if test.shape[0] == 0:
                continue
            Xt, Yt = data.X[test], data.Y[test]
            W = path.coefs[f].reshape(A * L, *path.coefs.shape[3:])  # (models, K, d + 1)
            if scorer is None:
                scores[f] = type(self)._default_scores(Xt, Yt, W).reshape(A, L)
                continue
            yt = _original_targets(self, data, Yt)
            for g in range(A * L):
                if np.all(np.isfinite(W[g])):
                    est = _with_weights(clone(base).set_params(alpha=float(path.alphas[g // L]),
                                                              l1_ratio=float(path.l1_ratios[g % L])), W[g], data,
                                       path._choice)
                    scores[f].flat[g] = scorer(est, Xt, yt)
        scores[path.diverged] = np.nan
        return scores

    def _refit(self, best, W, X, y, sample_weight, data, choice):
        """``best`` fitted on every row, starting from the weights ``W`` (with the
        grid's ``choice`` of the data-aware defaults)."""
        fitted = _with_weights(best, W, data, choice)
        fitted.set_params(warm_start=True)
        fitted.t_ = 0
        fitted.fit(X, y, sample_weight)
        fitted.set_params(warm_start=False)
        return fitted

    def _fitted(self):
        check_is_fitted(self, "best_estimator_")
        return self.best_estimator_

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        return tags


def _with_weights(est, W, data, choice):
    """``est`` as a fitted model of weights ``W`` (K, d + 1) on ``data``'s targets,
    with ``choice`` (``fastgd._spec.Choice``) of its data-aware defaults: state zero but
    for the weights, no epochs run."""
    from ._spec import initial_state, settings

    est._choice = choice

    for name, value in data.fitted.items():
        setattr(est, name, value)
    est.n_features_in_ = data.X.shape[1]
    state = initial_state(est, data)
    state[0] = W
    est._set_progress(state=state, eta=float(est.eta0), loss=data.loss, t=0, seen=0, avg_start=None, backend=None,
                      partial_rng=None)
    est.loss_curve_, est.time_curve_, est.n_iter_ = [], [], 0
    est.learning_rate_ = float(est.eta0)
    s = settings(est)
    est.optimizer_, est.alpha_ = s.optimizer, float(s.alpha)
    est._set_coef(state[0][:, :-1].copy(), state[0][:, -1].copy())
    return est


def _original_targets(est, data, Y):
    """The targets as the user gave them, for a scorer: class labels, or the target
    values (1-D for a 1-D ``y``)."""
    if "classes_" in data.fitted:
        return data.fitted["classes_"][Y[:, 0].astype(np.intp)]
    return Y[:, 0] if data.fitted.get("_y_ndim") == 1 else Y


def accuracy_scores(Xt, Yt, W):
    """Accuracy of the models W (models, K, d + 1) on the rows Xt with encoded targets
    Yt (the classifier's default ``scoring``, as its ``score``), in one product."""
    Z = _outputs(Xt, W)  # (n, models, K)
    pred = (Z[:, :, 0] > 0) if W.shape[1] == 1 else np.argmax(Z, axis=2)
    return np.mean(pred == Yt[:, :1].astype(np.intp), axis=0)


def r2_scores(Xt, Yt, W):
    """R^2 of the models W on the rows Xt (the regressor's default ``scoring``, as its
    ``score``: the mean over targets)."""
    Z = _outputs(Xt, W)
    out = np.full(W.shape[0], np.nan)
    if Xt.shape[0] < 2:
        return out
    for g in range(W.shape[0]):
        if np.all(np.isfinite(Z[:, g])):
            out[g] = r2_score(Yt, Z[:, g])
    return out


def _outputs(Xt, W):
    """Outputs (n, models, K) of the models W (models, K, d + 1) on the rows Xt, in one
    product."""
    M, K, cols = W.shape
    flat = W.reshape(M * K, cols)
    with np.errstate(all="ignore"):
        Z = np.asarray(Xt @ flat[:, :-1].T.astype(Xt.dtype, copy=False), dtype=np.float64) + flat[:, -1]
    return Z.reshape(Xt.shape[0], M, K)


__all__ = ["BaseCV", "accuracy_scores", "cv_constraints", "r2_scores"]
