"""Many models in one pass: ``fit_path`` and the ``path_epoch`` kernels against
independent fits, and the cross-validated estimators built on them.

The backbone: every model of a path equals its own estimator fitted alone on its fold's
training rows, visiting them in the path's row order (each epoch's permutation of all
rows, filtered to the fold's), to 1e-10 in float64, on every backend. The cases cover
each loss, dense and CSR rows, float32, every batch regime (SGD, mini-batch, full
batch), an adaptive rule, averaging, the elastic net, sample and class weights and
early stopping; each case runs on every backend.
"""

import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV, StratifiedKFold
from sklearn.utils import check_random_state
from sklearn.utils.class_weight import compute_class_weight
from sklearn.utils.estimator_checks import parametrize_with_checks

import fastgd
from fastgd import (
    LinearRegression,
    LinearRegressionCV,
    LogisticRegression,
    LogisticRegressionCV,
    _base,
    _path,
    _shuffle,
    fit_path,
)
from fastgd import _params as P
from fastgd._backends import BACKENDS, path_backend
from fastgd._numpy.path import fold_rows
from fastgd._run import Run
from fastgd._validation import validation_rows

ALL_BACKENDS = sorted(BACKENDS)


def _data(n=90, d=4, kind="binary", seed=0, dtype=np.float64):
    rng = np.random.RandomState(seed)
    X = rng.randn(n, d).astype(dtype)
    z = X @ rng.randn(d)
    if kind == "binary":
        y = (z + 0.5 * rng.randn(n) > 0).astype(int)
    elif kind == "multi":
        y = np.digitize(z + 0.3 * rng.randn(n), [-0.5, 0.5])
    else:  # two regression targets
        y = np.column_stack([z, -z + 1.0]) + 0.1 * rng.randn(n, 2)
    return X, y


# (name, estimator class, data kind, estimator params, extras)
CASES = [
    ("logistic-minibatch-elasticnet", LogisticRegression, "binary",
     {"batch_size": 7, "penalty": "elasticnet"}, {}),
    ("multinomial-sgd", LogisticRegression, "multi", {"batch_size": 1}, {}),
    ("multinomial-sgd-float32", LogisticRegression, "multi", {"batch_size": 1}, {"dtype": np.float32}),
    ("regression-full-csr", LinearRegression, "targets", {"batch_size": "full", "max_iter": 40}, {"sparse": True}),
    ("adam-average-weights", LogisticRegression, "binary",
     {"batch_size": 5, "optimizer": "adam", "average": True, "class_weight": "balanced"}, {"sample_weight": True}),
    ("momentum-invscaling-early-stopping", LinearRegression, "targets",
     {"batch_size": 4, "learning_rate": "invscaling", "eta0": 0.01, "early_stopping": True, "n_iter_no_change": 3}, {}),
    ("sgd-csr-l1", LogisticRegression, "binary", {"batch_size": 3, "penalty": "l1", "momentum": 0.0}, {"sparse": True}),
]
ALPHAS = [1e-3, 0.05]


def _orders(seed, n, shuffle, X, epochs):
    rng = check_random_state(seed)
    block = _shuffle.block_rows(X)
    return [_shuffle.draw_order(rng, n, shuffle, block).astype(np.int64) for _ in range(epochs)]


def _independent(est, X, y, sw, train_rows, orders, monkeypatch):
    """``est`` fitted on the rows ``train_rows`` alone, epoch e visiting them in
    ``orders[e]`` filtered to them."""
    n = X.shape[0]
    rows = np.sort(train_rows)
    if est.early_stopping is True:  # the fit trains on the rows its validation split keeps
        Y = clone(est)._prepare(X[rows], y[rows], None, first=True).Y
        keep, _ = validation_rows(Y, check_random_state(est.random_state), est.validation_fraction,
                                  est._is_classifier)
        train_rows = rows[keep]
    mask = np.zeros((n, 1), dtype=np.uint8)
    mask[train_rows, 0] = 1
    local = [fold_rows(mask, o, 0)[1] for o in orders]

    class FixedOrder(Run):
        def _permutation(self, m):
            return local.pop(0)

    monkeypatch.setattr(_base, "Run", FixedOrder)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(X[rows], y[rows], None if sw is None else sw[rows])
    return est


def _weights(est):
    coef = np.atleast_2d(est.coef_)
    return np.column_stack([coef, np.atleast_1d(est.intercept_)])


def _case_params():
    """Every case on every backend; Numba's float32 case (a compile of the float32
    many-models kernel, about 100 s on 2 cores) only with --full."""
    for case in CASES:
        for backend in ALL_BACKENDS:
            full = backend == "numba" and case[4].get("dtype") == np.float32
            yield pytest.param(case, backend, id=f"{case[0]}-{backend}", marks=(pytest.mark.full,) if full else ())


@pytest.mark.parametrize("case,backend", list(_case_params()))
def test_every_model_equals_its_independent_fit(case, backend, monkeypatch):
    _, cls, kind, params, extra = case
    X, y = _data(kind=kind, dtype=extra.get("dtype", np.float64))
    n = X.shape[0]
    sw = np.random.RandomState(1).uniform(0.5, 2.0, n) if extra.get("sample_weight") else None
    Xfit = sp.csr_matrix(np.where(np.abs(X) < 0.5, 0, X)) if extra.get("sparse") else X
    params = {"max_iter": 25, "random_state": 3, "backend": backend, **params}
    est = cls(**params)
    l1_ratios = [0.2, 0.7] if params.get("penalty") == "elasticnet" else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        path = fit_path(est, Xfit, y, alphas=ALPHAS, l1_ratios=l1_ratios, cv=3, sample_weight=sw)
    assert path.backend == backend
    assert path.coefs.shape[:3] == (3, 2, 1 if l1_ratios is None else 2)
    assert np.all(path.n_iter >= 1)
    if params.get("class_weight") == "balanced":  # (the CV estimators: from every row)
        classes = np.unique(y)
        params["class_weight"] = dict(zip(classes, compute_class_weight("balanced", classes=classes, y=y)))
    orders = _orders(3, n, True, Xfit, params["max_iter"])
    worst = 0.0
    for f, (train, _) in enumerate(path.folds):
        for a, alpha in enumerate(path.alphas):
            for r, l1_ratio in enumerate(path.l1_ratios):
                alone = _independent(cls(**{**params, "alpha": alpha, "l1_ratio": l1_ratio}), Xfit, y, sw, train,
                                     list(orders), monkeypatch)
                assert alone.n_iter_ == path.n_iter[f, a, r]
                worst = max(worst, float(np.max(np.abs(_weights(alone) - path.coefs[f, a, r]))))
                np.testing.assert_allclose(path.loss_curves[(f * len(path.alphas) + a) * len(path.l1_ratios) + r],
                                           alone.loss_curve_, rtol=1e-5 if X.dtype == np.float32 else 1e-10)
    assert worst <= (1e-4 if X.dtype == np.float32 else 1e-10)


def test_models_differ_along_the_grid():
    """The comparison above could pass with every model left at zero: the path does
    move them, and a larger alpha shrinks more."""
    X, y = _data(n=200)
    path = fit_path(LogisticRegression(random_state=0, backend="numba"), X, y, alphas=[1e-4, 1.0], cv=2)
    norms = np.linalg.norm(path.coefs[..., :-1], axis=(-2, -1))  # (folds, alphas, 1)
    assert np.all(norms[:, 0] > 2 * norms[:, 1]) and np.all(norms[:, 1] > 0)


def test_stopped_models_are_left_alone_by_the_kernel():
    """model_fold = -1: the model's state and loss are not touched."""
    X, y = _data()
    for name in ALL_BACKENDS:
        kernel = path_backend(name).path_epoch
        n, d = X.shape
        state = np.random.RandomState(0).randn(2, 2, 1, d + 1)
        before = state.copy()
        hp = np.zeros((2, P.N_HP))
        hp[:, P.ETA0] = 0.1
        codes = np.zeros((2, P.N_CODES), dtype=np.int64)
        codes[:, P.LOSS] = 1  # log loss
        codes[:, P.BATCH_SIZE] = 5
        codes[:, P.FIT_INTERCEPT] = 1
        codes[:, P.N_THREADS] = 1
        train = np.ones((n, 1), dtype=np.uint8)
        losses = np.full(2, -7.0)
        Y = y.reshape(-1, 1).astype(np.float64)
        kernel(X, Y, np.ones(n), np.arange(n, dtype=np.int64), train, np.ones(1), state, hp, codes,
               np.array([-1, 0], dtype=np.int64), losses)
        assert losses[0] == -7.0 and losses[1] > 0, name
        np.testing.assert_array_equal(state[0], before[0])
        assert not np.array_equal(state[1], before[1]), name


@pytest.mark.parametrize("backend", ALL_BACKENDS)
def test_kernel_rejects_malformed_calls(backend):
    kernel = path_backend(backend).path_epoch
    X, y = _data(n=20)
    n, d = X.shape
    Y = y.reshape(-1, 1).astype(np.float64)

    def call(**over):
        args = {"X": X, "Y": Y, "sw": np.ones(n), "order": np.arange(n, dtype=np.int64),
                    "train": np.ones((n, 2), dtype=np.uint8), "scale": np.ones(2), "state": np.zeros((2, 2, 1, d + 1)),
                    "hp": np.zeros((2, P.N_HP)), "codes": np.tile(np.array([1, 0, 0, 1, 4, 0, 1, 0, 0]), (2, 1)),
                    "model_fold": np.array([0, 1], dtype=np.int64), "losses": np.zeros(2)}
        args.update(over)
        kernel(*args.values())

    call()  # well formed
    bad = [
        {"model_fold": np.array([0, 2], dtype=np.int64)},  # no fold 2
        {"train": np.ones((n - 1, 2), dtype=np.uint8)},
        {"train": np.full((n, 2), 2, dtype=np.uint8)},
        {"order": np.r_[np.arange(n - 1), n].astype(np.int64)},
        {"state": np.zeros((2, 2, 1, d))},
        {"hp": np.zeros((1, P.N_HP))},
        {"scale": np.ones(3)},
        {"codes": np.array([[1, 0, 0, 1, 4, 0, 1, 0, 0], [0, 0, 0, 1, 4, 0, 1, 0, 0]])},  # two losses
        {"model_fold": np.array([0, 0], dtype=np.int64),
             "codes": np.array([[1, 0, 0, 1, 4, 0, 1, 0, 0], [1, 0, 0, 1, 5, 0, 1, 0, 0]])},  # two batches in a fold
        {"sw": np.ones(n, dtype=np.float32)},
        {"losses": np.zeros(2, dtype=np.float32)},
    ]
    for over in bad:
        with pytest.raises(ValueError):
            call(**over)


# ---------------------------------------------------------------- the CV estimators
def test_logistic_cv_scores_and_choice():
    X, y = _data(n=300, kind="multi", d=6)
    cv = LogisticRegressionCV(alphas=[1e-4, 1e-2, 1.0], cv=3, random_state=0, backend="numba").fit(X, y)
    assert cv.scores_.shape == (3, 3, 1)
    assert cv.coefs_paths_.shape == (3, 3, 1, 3, 7)
    assert cv.n_iter_.shape == (3, 3, 1)
    mean = cv.scores_.mean(axis=0)[:, 0]
    assert cv.alpha_ == cv.alphas_[int(np.argmax(mean))]
    assert cv.l1_ratio_ is None
    # each score is the fold model's own accuracy on the fold's held-out rows
    for f, (_, test) in enumerate(StratifiedKFold(3).split(X, y)):
        for a in range(3):
            W = cv.coefs_paths_[f, a, 0]
            pred = np.argmax(X[test] @ W[:, :-1].T + W[:, -1], axis=1)
            assert cv.scores_[f, a, 0] == pytest.approx(np.mean(pred == y[test]))
    # a scikit-learn scorer gives the same numbers
    named = LogisticRegressionCV(alphas=[1e-4, 1e-2, 1.0], cv=3, random_state=0, backend="numba",
                                 scoring="accuracy").fit(X, y)
    np.testing.assert_allclose(named.scores_, cv.scores_)
    assert cv.score(X, y) > 0.8
    np.testing.assert_array_equal(cv.classes_, [0, 1, 2])
    assert cv.predict_proba(X).shape == (300, 3)


def test_refit_starts_from_the_fold_mean_and_fits_every_row():
    X, y = _data(n=200)
    common = {"alphas": [1e-3, 0.1], "cv": 4, "random_state": 0, "backend": "numba"}
    mean_only = LogisticRegressionCV(refit=False, **common).fit(X, y)
    a = list(mean_only.alphas_).index(mean_only.alpha_)
    W = mean_only.coefs_paths_[:, a, 0].mean(axis=0)
    np.testing.assert_allclose(_weights(mean_only), W)
    refit = LogisticRegressionCV(**common).fit(X, y)
    assert refit.alpha_ == mean_only.alpha_
    assert refit.best_estimator_.alpha == refit.alpha_
    assert refit.best_estimator_.n_iter_ >= 1
    # the refit is a fit on every row: its objective there beats the fold mean's
    best = refit.best_estimator_
    assert best.objective(X, y) <= mean_only.best_estimator_.objective(X, y) + 1e-12


def test_linear_cv_elasticnet_grid():
    X, y = _data(n=240, kind="targets", d=5)
    cv = LinearRegressionCV(alphas=4, l1_ratios=[0.1, 0.9], penalty="elasticnet", cv=3, random_state=0,
                            backend="numba").fit(X, y)
    assert cv.scores_.shape == (3, 4, 2)
    assert cv.l1_ratio_ in (0.1, 0.9)
    assert cv.alphas_[0] > cv.alphas_[-1] and cv.alphas_[-1] == pytest.approx(cv.alphas_[0] * _path.ALPHA_EPS)
    assert cv.score(X, y) > 0.9
    assert cv.predict(X).shape == y.shape


@pytest.mark.parametrize("kind", ["binary", "multi", "targets"])
def test_alpha_max_is_the_largest_gradient_at_the_null_model(kind):
    """alpha_max against the numerical gradient of the objective at zero coefficients
    and the best intercept."""
    X, y = _data(n=150, kind=kind)
    sw = np.random.RandomState(2).uniform(0.5, 2, X.shape[0])
    cls = LinearRegression if kind == "targets" else LogisticRegression
    est = cls(penalty=None, max_iter=2, tol=None, backend="numpy", random_state=0)
    data = est._prepare(X, y, sw, first=True)
    top = _path.alpha_max(data.X, data.Y, data.sw, data.loss, data.n_outputs, True)
    est.fit(X, y, sw)
    K = est._state.shape[1]
    # the best intercepts of the null model
    if kind == "targets":
        b = np.average(y, axis=0, weights=sw)
    elif kind == "binary":
        p = np.average(y, weights=sw)
        b = np.array([np.log(p / (1 - p))])
    else:
        p = np.array([np.average(y == c, weights=sw) for c in range(3)])
        b = np.log(p)
    grads = []
    for k in range(K):
        for j in range(X.shape[1]):
            def f(t, k=k, j=j):
                coef = np.zeros((K, X.shape[1]))
                coef[k, j] = t
                est._state[0][:, :-1] = coef
                est._state[0][:, -1] = b
                return est.objective(X, y, sw)
            h = 1e-6
            grads.append((f(h) - f(-h)) / (2 * h))
    assert top == pytest.approx(np.max(np.abs(grads)), rel=1e-5)


def test_cv_input_errors():
    X, y = _data()
    with pytest.raises(ValueError, match="l1_ratios applies to penalty='elasticnet'"):
        LogisticRegressionCV(l1_ratios=[0.5], backend="numba").fit(X, y)
    with pytest.raises(ValueError, match="alphas"):
        LogisticRegressionCV(alphas=[-1.0], backend="numba").fit(X, y)
    with pytest.raises(ValueError, match="alphas"):
        fit_path(LogisticRegression(), X, y, alphas=[])
    with pytest.raises(ValueError, match="Input X contains NaN"):
        LogisticRegressionCV(backend="numba").fit(np.where(X > 2, np.nan, X), y)


def test_cv_matches_grid_search_of_the_same_models():
    """With one fold and the models' own orders, the CV estimator's scores are the
    scores GridSearchCV would give fitting each model alone."""
    X, y = _data(n=200)
    split = [(np.arange(0, 150), np.arange(150, 200))]
    cv = LogisticRegressionCV(alphas=[1e-3, 0.1], cv=split, random_state=0, backend="numba",
                              shuffle=False).fit(X, y)
    grid = GridSearchCV(LogisticRegression(random_state=0, backend="numba", shuffle=False),
                        {"alpha": [1e-3, 0.1]}, cv=split).fit(X, y)
    np.testing.assert_allclose(cv.scores_[0, :, 0], grid.cv_results_["split0_test_score"])
    assert cv.alpha_ == grid.best_params_["alpha"]


def test_fit_path_without_cv_is_the_regularisation_path():
    X, y = _data(n=120)
    path = fit_path(LogisticRegression(random_state=0, backend="numba", shuffle=False), X, y,
                    alphas=[1e-3, 1e-1])
    assert len(path.folds) == 1 and path.coefs.shape[:3] == (1, 2, 1)
    for a, alpha in enumerate([1e-3, 1e-1]):
        alone = LogisticRegression(random_state=0, backend="numba", shuffle=False, alpha=alpha,
                                   optimizer=path.optimizer).fit(X, y)
        np.testing.assert_allclose(path.coefs[0, a, 0], _weights(alone), atol=1e-10)


# the estimator checks, on small grids (each check fits every model of them)
CV_ESTIMATORS = [
    LogisticRegressionCV(alphas=3, cv=3, random_state=0),
    LinearRegressionCV(alphas=3, cv=3, random_state=0),
]


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@parametrize_with_checks(CV_ESTIMATORS, expected_failed_checks=lambda est: {
    "check_sample_weight_equivalence_on_dense_data":
        "a weight of 2 and a repeated row fall into different cross-validation folds",
    "check_sample_weight_equivalence_on_sparse_data":
        "a weight of 2 and a repeated row fall into different cross-validation folds",
})
def test_cv_sklearn_compatible(estimator, check):
    check(estimator)


def test_public_names():
    assert fastgd.LogisticRegressionCV is LogisticRegressionCV
    assert clone(LogisticRegressionCV(alphas=[1.0])).alphas == [1.0]


@pytest.mark.parametrize("backend", ["numba", "cython"])
def test_threads_change_nothing(backend):
    """The models are dealt to threads; every model's result is bit for bit the same
    with 1, 2 or 3 threads (mini-batch and full batch, folds of unequal sizes)."""
    X, y = _data(n=301, d=5)
    for batch_size in (8, "full"):
        coefs = [fit_path(LogisticRegression(backend=backend, random_state=1, n_jobs=threads, batch_size=batch_size,
                                             max_iter=8, tol=None), X, y, alphas=[1e-4, 1e-2, 1e-1], cv=4).coefs
                 for threads in (1, 2, 3)]
        np.testing.assert_array_equal(coefs[1], coefs[0])
        np.testing.assert_array_equal(coefs[2], coefs[0])
