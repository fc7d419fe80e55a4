"""Convergence to known optima on scikit-learn's bundled datasets, and no divergence with
default parameters on unscaled data."""

import warnings

import numpy as np
import pytest
from sklearn.datasets import (
    load_breast_cancer,
    load_diabetes,
    load_digits,
    load_iris,
    load_wine,
)
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression as SkLogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from fastgd import LinearRegression, LogisticRegression

LOADERS = {
    "breast_cancer": load_breast_cancer,
    "iris": load_iris,
    "wine": load_wine,
    "digits": load_digits,
}


def standardised(loader):
    X, y = loader(return_X_y=True)
    return StandardScaler().fit_transform(X), y


@pytest.mark.parametrize("nesterov", [False, True])
def test_full_batch_reaches_least_squares(backend, nesterov):
    X, y = standardised(load_diabetes)
    Xt = np.hstack([X, np.ones((len(y), 1))])
    solution = np.linalg.lstsq(Xt, y, rcond=None)[0]
    optimum = 0.5 * np.mean((Xt @ solution - y) ** 2)
    est = LinearRegression(
        batch_size="full", penalty=None, max_iter=500, tol=None, nesterov=nesterov, backend=backend
    ).fit(X, y)
    assert est.objective(X, y) == pytest.approx(optimum, rel=1e-4)
    np.testing.assert_allclose(est.coef_, solution[:-1], rtol=1e-3, atol=1e-2)


@pytest.mark.parametrize(
    "name,alpha,epochs",
    [("breast_cancer", 1e-3, 2000), ("iris", 1e-3, 2000), ("wine", 1e-3, 2000), ("digits", 1e-2, 500)],
)
def test_full_batch_reaches_lbfgs_optimum(backend, name, alpha, epochs):
    """fastgd's objective sum(loss)/n + alpha/2 ||W||^2 is scikit-learn's with C = 1/(n alpha)."""
    X, y = standardised(LOADERS[name])
    n = len(y)
    sk = SkLogisticRegression(C=1.0 / (n * alpha), tol=1e-12, max_iter=10_000).fit(X, y)
    est = LogisticRegression(
        batch_size="full", alpha=alpha, max_iter=epochs, tol=None, nesterov=True, backend=backend
    ).fit(X, y)
    assert est.coef_.shape == sk.coef_.shape
    ours = est.objective(X, y)
    est._state[0][:, :-1] = sk.coef_  # evaluate scikit-learn's solution with our objective
    est._state[0][:, -1] = sk.intercept_
    optimum = est.objective(X, y)
    assert ours == pytest.approx(optimum, rel=1e-4)
    assert ours >= optimum * (1 - 1e-9)  # lbfgs converged: we cannot beat it by much


@pytest.mark.parametrize("name", sorted(LOADERS))
def test_default_minibatch_accuracy_matches_lbfgs(name):
    X, y = LOADERS[name](return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0, stratify=y)
    scaler = StandardScaler().fit(X_train)
    X_train, X_test = scaler.transform(X_train), scaler.transform(X_test)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est = LogisticRegression(random_state=0).fit(X_train, y_train)
    alpha = est.alpha_  # (the penalty alpha="auto" chose)
    sk = SkLogisticRegression(C=1.0 / (len(y_train) * alpha), max_iter=10_000).fit(X_train, y_train)
    assert est.score(X_test, y_test) >= sk.score(X_test, y_test) - 0.01


def test_default_minibatch_regression_matches_least_squares():
    X, y = load_diabetes(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)
    scaler = StandardScaler().fit(X_train)
    X_train, X_test = scaler.transform(X_train), scaler.transform(X_test)
    Xt = np.hstack([X_train, np.ones((len(y_train), 1))])
    w = np.linalg.lstsq(Xt, y_train, rcond=None)[0]
    pred = X_test @ w[:-1] + w[-1]
    r2_exact = 1 - np.sum((y_test - pred) ** 2) / np.sum((y_test - y_test.mean()) ** 2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est = LinearRegression(random_state=0).fit(X_train, y_train)
    assert est.score(X_test, y_test) == pytest.approx(r2_exact, abs=0.01)


@pytest.mark.parametrize("batch_size", [1, 32, "full"])
@pytest.mark.parametrize("scaling", ["x1e4", "mixed"])
@pytest.mark.parametrize("name", ["diabetes", "breast_cancer", "wine"])
def test_defaults_never_diverge_on_unscaled_data(name, scaling, batch_size):
    loader = load_diabetes if name == "diabetes" else LOADERS[name]
    X, y = loader(return_X_y=True)
    if scaling == "x1e4":
        X = X * 1e4
    else:  # columns spread over seven orders of magnitude
        X = X * 10.0 ** np.random.default_rng(0).uniform(-3, 4, size=X.shape[1])
    cls = LinearRegression if name == "diabetes" else LogisticRegression
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est = cls(batch_size=batch_size, max_iter=20, random_state=0).fit(X, y)
    assert np.all(np.isfinite(est.coef_)) and np.all(np.isfinite(est.intercept_))
    assert np.all(np.isfinite(est.loss_curve_))
    assert est.loss_curve_[-1] < est.loss_curve_[0]
    if batch_size == "full":  # deterministic steps: never above the starting objective
        assert max(est.loss_curve_) <= est.loss_curve_[0] * (1 + 1e-9)
