"""The algorithm as documented, written out by hand and compared with the estimators."""

import numpy as np
import pytest

from fastgd import LinearRegression, LogisticRegression
from fastgd._smoothness import auto_learning_rate

from .conftest import make_data


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


@pytest.mark.parametrize("alpha", [0.0, 0.3])
def test_full_batch_no_momentum_is_plain_gradient_descent(backend, alpha):
    X, y = make_data("regression", n=40, seed=5)
    eta, epochs = 0.5, 7
    w, b = np.zeros(X.shape[1]), 0.0
    for _ in range(epochs):
        r = X @ w + b - y
        w, b = w - eta * (X.T @ r / len(y) + alpha * w), b - eta * r.mean()
    est = LinearRegression(
        batch_size="full", momentum=0.0, learning_rate="constant", eta0=eta, alpha=alpha,
        max_iter=epochs, tol=None, backend=backend,
    ).fit(X, y)
    np.testing.assert_allclose(est.coef_, w, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(est.intercept_, b, rtol=1e-12, atol=1e-14)
    assert est.t_ == epochs and est.n_iter_ == epochs


@pytest.mark.parametrize("nesterov", [False, True])
def test_full_batch_momentum_is_the_pytorch_formula(backend, nesterov):
    """torch.optim.SGD (dampening 0): v = mu v + g; w -= eta v  (Nesterov: w -= eta (g + mu v))."""
    X, y = make_data("binary", n=50, seed=6)
    t = (y == "yes").astype(float)
    eta, mu, alpha, epochs = 0.8, 0.9, 0.01, 9
    w, b = np.zeros(X.shape[1]), 0.0
    vw, vb = np.zeros_like(w), 0.0
    for _ in range(epochs):
        r = sigmoid(X @ w + b) - t
        gw, gb = X.T @ r / len(t) + alpha * w, r.mean()
        vw, vb = mu * vw + gw, mu * vb + gb
        if nesterov:
            w, b = w - eta * (gw + mu * vw), b - eta * (gb + mu * vb)
        else:
            w, b = w - eta * vw, b - eta * vb
    est = LogisticRegression(
        batch_size="full", momentum=mu, nesterov=nesterov, learning_rate="constant", eta0=eta,
        alpha=alpha, max_iter=epochs, tol=None, backend=backend,
    ).fit(X, y)
    np.testing.assert_allclose(est.coef_[0], w, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(est.intercept_[0], b, rtol=1e-12, atol=1e-14)


def test_sgd_step_by_step_in_storage_order(backend):
    """batch_size=1, shuffle=False: one update per row, in order, with invscaling."""
    X, y = make_data("regression", n=9, seed=7)
    eta0, power_t, mu = 0.3, 0.5, 0.5
    w, b, vw, vb, t = np.zeros(X.shape[1]), 0.0, np.zeros(X.shape[1]), 0.0, 0
    for _ in range(2):
        for i in range(len(y)):
            t += 1
            eta = eta0 / t**power_t
            r = X[i] @ w + b - y[i]
            vw, vb = mu * vw + r * X[i] + 1e-4 * w, mu * vb + r
            w, b = w - eta * vw, b - eta * vb
    est = LinearRegression(
        batch_size=1, shuffle=False, momentum=mu, learning_rate="invscaling", eta0=eta0,
        power_t=power_t, max_iter=2, tol=None, backend=backend,
    ).fit(X, y)
    np.testing.assert_allclose(est.coef_, w, rtol=1e-12)
    np.testing.assert_allclose(est.intercept_, b, rtol=1e-12)
    assert est.t_ == 18
    assert est.learning_rate_ == pytest.approx(eta0 / 18**power_t)


def test_multinomial_full_batch_by_hand(backend):
    X, y = make_data("multiclass", n=30, seed=8)
    classes, idx = np.unique(y, return_inverse=True)
    onehot = np.eye(3)[idx]
    eta, epochs = 1.0, 4
    W, b = np.zeros((3, X.shape[1])), np.zeros(3)
    for _ in range(epochs):
        Z = X @ W.T + b
        Pr = np.exp(Z - Z.max(1, keepdims=True))
        Pr /= Pr.sum(1, keepdims=True)
        R = Pr - onehot
        W, b = W - eta * (R.T @ X / len(y)), b - eta * R.mean(0)
    est = LogisticRegression(
        batch_size="full", momentum=0.0, learning_rate="constant", eta0=eta, penalty=None,
        max_iter=epochs, tol=None, backend=backend,
    ).fit(X, y)
    np.testing.assert_array_equal(est.classes_, classes)
    np.testing.assert_allclose(est.coef_, W, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(est.intercept_, b, rtol=1e-12, atol=1e-14)


def test_l1_is_a_soft_threshold_after_each_step(backend):
    X, y = make_data("regression", n=40, seed=9)
    eta, alpha, epochs = 0.5, 0.5, 6
    w, b = np.zeros(X.shape[1]), 0.0
    for _ in range(epochs):
        r = X @ w + b - y
        w, b = w - eta * (X.T @ r / len(y)), b - eta * r.mean()
        w = np.sign(w) * np.maximum(np.abs(w) - eta * alpha, 0.0)
    est = LinearRegression(
        batch_size="full", momentum=0.0, learning_rate="constant", eta0=eta, penalty="l1",
        alpha=alpha, max_iter=epochs, tol=None, backend=backend,
    ).fit(X, y)
    np.testing.assert_allclose(est.coef_, w, rtol=1e-12, atol=1e-14)
    assert np.sum(est.coef_ == 0.0) == np.sum(w == 0.0) >= 1  # exact zeros, as by hand


def test_integer_sample_weights_equal_repeated_rows_in_full_batch(backend):
    X, y = make_data("binary", n=30, seed=10)
    counts = np.random.default_rng(1).integers(0, 4, size=len(y))
    params = {"batch_size": "full", "max_iter": 20, "tol": None, "backend": backend, "random_state": 0,
              "alpha": 1e-4}  # ("auto" would be 1 / the rows: 1 / 30 against 1 / sum(counts))
    weighted = LogisticRegression(**params).fit(X, y, sample_weight=counts)
    repeated = LogisticRegression(**params).fit(np.repeat(X, counts, 0), np.repeat(y, counts))
    np.testing.assert_allclose(weighted.coef_, repeated.coef_, rtol=1e-10)
    np.testing.assert_allclose(weighted.loss_curve_, repeated.loss_curve_, rtol=1e-10)


def test_sample_weight_scale_does_not_matter(backend):
    X, y = make_data("regression", n=30, seed=11)
    sw = np.random.default_rng(2).uniform(0.5, 2, size=len(y))
    a = LinearRegression(batch_size=4, max_iter=3, tol=None, random_state=0, backend=backend)
    b = LinearRegression(batch_size=4, max_iter=3, tol=None, random_state=0, backend=backend)
    a.fit(X, y, sample_weight=sw)
    b.fit(X, y, sample_weight=sw * 1000.0)
    np.testing.assert_allclose(a.coef_, b.coef_, rtol=1e-9)


def test_full_batch_loss_curve_is_the_objective_at_each_epoch_start(backend):
    X, y = make_data("multiclass", n=40, seed=12)
    params = {"batch_size": "full", "max_iter": 5, "tol": None, "backend": backend, "alpha": 0.01}
    curve = LogisticRegression(**params).fit(X, y).loss_curve_
    assert curve[0] == pytest.approx(np.log(3))  # zero weights: uniform softmax
    for k in range(1, 5):
        model = LogisticRegression(**{**params, "max_iter": k}).fit(X, y)
        assert curve[k] == pytest.approx(model.objective(X, y), rel=1e-12)
    assert all(np.diff(curve) < 0)


def test_auto_learning_rate_formula():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((500, 5)) * np.array([3.0, 1, 1, 1, 0.5])
    sw = np.ones(500)
    Xt = np.hstack([X, np.ones((500, 1))])
    lam = np.linalg.eigvalsh(Xt.T @ Xt / 500)[-1]
    L_max = np.max(np.sum(Xt**2, axis=1))
    common = {"fit_intercept": True, "l2": 0.01}
    # full batch: 1 / L, momentum does not enter
    eta = auto_learning_rate(X, sw, curvature=1.0, batch_size=500, momentum=0.9, **common)
    assert eta == pytest.approx(1 / (lam + 0.01), rel=1e-6)
    # SGD: (1 - mu) / L_max, log loss scales the curvature by 1/4
    eta = auto_learning_rate(X, sw, curvature=0.25, batch_size=1, momentum=0.9, **common)
    assert eta == pytest.approx(0.1 / (0.25 * L_max + 0.01), rel=1e-8)  # rounded to 8 digits
    # mini-batch: between the two
    b = 32
    L_det = 500 * (b - 1) / (b * 499) * (lam + 0.01)
    L_noise = (500 - b) / (b * 499) * (L_max + 0.01)
    eta = auto_learning_rate(X, sw, curvature=1.0, batch_size=b, momentum=0.5, **common)
    assert eta == pytest.approx(1 / (L_det + L_noise / 0.5), rel=1e-6)


@pytest.mark.parametrize("scale", [1e-3, 1.0, 1e4])
def test_auto_learning_rate_scales_with_the_data(scale):
    X, y = make_data("regression", n=200, seed=13)
    sgd = {"optimizer": "sgd", "penalty": None, "max_iter": 1, "tol": None, "fit_intercept": False}
    scaled = LinearRegression(backend="numpy", **sgd)
    base = LinearRegression(backend="numpy", **sgd)
    eta = base.fit(X, y).learning_rate_
    assert 0 < eta < np.inf
    assert scaled.fit(X * scale, y).learning_rate_ == pytest.approx(eta / scale**2)


def test_optimal_schedule_first_step():
    X, y = make_data("binary", n=20, seed=14)
    alpha = 0.01
    est = LogisticRegression(learning_rate="optimal", alpha=alpha, batch_size=20, max_iter=1, tol=None,
                             momentum=0.0, backend="numpy").fit(X, y)
    # one update (full batch): the step of t = 1 is alpha ** -0.25
    assert est.t_ == 1
    assert est.learning_rate_ == pytest.approx(alpha**-0.25)


def test_stall_rules_are_the_schedules_own():
    """Each learning-rate entry says what a stall does and how long one takes."""
    from fastgd._schedules import SCHEDULES

    assert SCHEDULES["constant"].on_stall(0.1, 0, True) is None
    assert SCHEDULES["invscaling"].on_stall(0.1, 0, True) is None
    assert SCHEDULES["adaptive"].on_stall(0.1, 3, True) == (pytest.approx(0.02), False)
    assert SCHEDULES["adaptive"].on_stall(4e-6, 0, True) is None  # 8e-7 < 1e-6: stop
    assert SCHEDULES["auto"].on_stall(0.1, 0, True) == (pytest.approx(0.02), True)
    assert SCHEDULES["auto"].on_stall(0.1, 1, False) == (0.1, True)  # full batch: same step
    assert SCHEDULES["auto"].on_stall(0.1, 2, True) is None  # the third stall stops
    assert SCHEDULES["constant"].patience(5, 0, 400) == 5
    assert SCHEDULES["auto"].patience(5, 0, 400) == 3  # ceil(1000 / 400) epochs
    assert SCHEDULES["auto"].patience(5, 0, 10) == 5
    assert SCHEDULES["auto"].patience(5, 2, 400) == 5
    assert [name for name, s in SCHEDULES.items() if s.from_data] == ["auto"]
    assert [name for name, s in SCHEDULES.items() if s.needs_alpha] == ["optimal"]


@pytest.mark.parametrize("loss", ["squared_error", "log_loss", "multinomial"])
def test_loss_registry_zero_objective_is_the_all_zero_models(loss):
    """A loss entry's all-zero-model objective equals its own per-row losses at zero
    outputs, weighted (the divergence reference the driver uses)."""
    from fastgd._losses import LOSSES

    entry = LOSSES[loss]
    rng = np.random.default_rng(0)
    K = 1 if loss == "log_loss" else 3
    n = 50
    if entry.class_targets:
        Y = rng.integers(0, K, (n, 1)).astype(float)
    elif loss == "log_loss":
        Y = rng.integers(0, 2, (n, 1)).astype(float)
    else:
        Y = rng.standard_normal((n, K)) * 3
    sw = rng.uniform(0.5, 1.5, n)
    sw /= sw.mean()  # (the driver's weights are normalised to mean 1)
    values, _ = entry.value_grad(np.zeros((n, K)), Y)
    assert entry.zero_objective(Y, sw, K) == pytest.approx(float(sw @ values) / n, rel=1e-12)
    assert entry.target_columns(K) == Y.shape[1]
    assert K >= entry.min_outputs and (entry.max_outputs is None or K <= entry.max_outputs)
