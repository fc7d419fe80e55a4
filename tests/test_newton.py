"""optimizer="newton-sketch": full-batch steps preconditioned by a sampled curvature.

The rule's steps are taken by the driver (``fastgd._newton``) between gradient passes of
the backends' kernels; the tests check the passes agree across backends, the first step
is the Newton step, converged fits are the exact optimum, ill-conditioning does not hurt,
and every setting it cannot take is a clear error.
"""

import numpy as np
import pytest
import scipy.linalg
import scipy.optimize
import scipy.sparse as sp
from sklearn.linear_model import LogisticRegression as SkLogisticRegression

from .conftest import FAST_BACKENDS, assert_same_fit, make_data
from fastgd import LinearRegression, LogisticRegression, LogisticRegressionCV
from fastgd._newton import factored, gradient_blocks, sample_rows
from fastgd._optimizers import KERNEL_OPTIMIZERS, OPTIMIZER_CODES, OPTIMIZERS
from fastgd._spec import DataKind, choose, newton_preconditioner, settings

NEWTON = {"optimizer": "newton-sketch"}


def _exact_least_squares(X, y, alpha):
    """The minimiser of mean(0.5 (y - Xw - b)^2) + alpha/2 ||w||^2 (normal equations)."""
    n, d = X.shape
    A = np.hstack([X, np.ones((n, 1))])
    H = A.T @ A / n
    H[:d, :d] += alpha * np.eye(d)
    return np.linalg.solve(H, A.T @ y / n)


def _exact_logistic(X, y, alpha, multinomial=False):
    """The objective's minimum by scikit-learn's lbfgs at tol 1e-12 (C = 1/(alpha n))."""
    ref = SkLogisticRegression(C=1.0 / (alpha * X.shape[0]), tol=1e-12, max_iter=100_000).fit(X, y)
    return ref


# ------------------------------------------------------------------ the registry
def test_registry_entry_is_a_driver_rule():
    entry = OPTIMIZERS["newton-sketch"]
    assert entry.steps == "driver" and entry.slots == () and entry.update is None
    assert "newton-sketch" not in KERNEL_OPTIMIZERS
    assert entry.code not in OPTIMIZER_CODES  # (the kernels refuse its code)
    assert set(KERNEL_OPTIMIZERS) == {"sgd", "adagrad", "rmsprop", "adam"}


# ------------------------------------------------------------------ agreement
@pytest.mark.parametrize("backend", FAST_BACKENDS)
@pytest.mark.parametrize("kind", ["regression", "binary", "multiclass", "multioutput"])
def test_backends_agree_with_the_reference(backend, kind):
    cls = LogisticRegression if kind in ("binary", "multiclass") else LinearRegression
    X, y = make_data(kind, n=3000, d=6, seed=3)
    params = {**NEWTON, "max_iter": 6, "tol": None}
    ref = cls(backend="numpy", **params).fit(X, y)
    fast = cls(backend=backend, **params).fit(X, y)
    assert_same_fit(ref, fast)
    assert ref.n_iter_ == 6 and ref.optimizer_ == "newton-sketch"


@pytest.mark.parametrize("backend", FAST_BACKENDS)
def test_float32_agrees_within_its_bound(backend):
    X, y = make_data("binary", n=2000, d=5, seed=4)
    params = {**NEWTON, "max_iter": 5, "tol": None}
    ref = LogisticRegression(backend="numpy", **params).fit(X, y)
    fast = LogisticRegression(backend=backend, **params).fit(X.astype(np.float32), y)
    assert fast.coef_.dtype == np.float32
    np.testing.assert_allclose(fast.coef_, ref.coef_, rtol=1e-4, atol=1e-5)


def test_n_jobs_changes_no_bit():
    X, y = make_data("multiclass", n=9000, d=5, seed=5)
    fits = [LogisticRegression(**NEWTON, n_jobs=j, max_iter=4, tol=None).fit(X, y) for j in (1, 2, 3)]
    for other in fits[1:]:
        np.testing.assert_array_equal(other.coef_, fits[0].coef_)
    # and no random stream is read: the fit is the same for every random_state
    again = LogisticRegression(**NEWTON, random_state=123, max_iter=4, tol=None).fit(X, y)
    np.testing.assert_array_equal(again.coef_, fits[0].coef_)


# ------------------------------------------------------------------ the rule itself
def test_first_step_is_the_newton_step_when_the_sample_is_every_row():
    """Below the sample size every row is in the sample: the first step from zero is
    exactly w = -H^-1 g at zero (for least squares, the optimum itself)."""
    X, y = make_data("regression", n=200, d=4, seed=6)
    alpha = 0.01
    est = LinearRegression(**NEWTON, alpha=alpha, max_iter=1, tol=None).fit(X, y)
    exact = _exact_least_squares(X, y, alpha)
    np.testing.assert_allclose(np.r_[est.coef_, est.intercept_], exact, rtol=1e-10)
    # logistic: one step from zero with H = X'DX/n + alpha I, D = 1/4 (its sample holds
    # 20 rows per coefficient: all 90 rows here)
    Xb, yb = make_data("binary", n=90, d=4, seed=6)
    yb01 = (yb == np.unique(yb)[1]).astype(float)
    est = LogisticRegression(**NEWTON, alpha=alpha, max_iter=1, tol=None).fit(Xb, yb)
    A = np.hstack([Xb, np.ones((90, 1))])
    H = 0.25 * A.T @ A / 90
    H[:4, :4] += alpha * np.eye(4)
    g = A.T @ (0.5 - yb01) / 90
    np.testing.assert_allclose(np.r_[est.coef_[0], est.intercept_], -np.linalg.solve(H, g), rtol=1e-9)
    assert est.learning_rate_ == 1.0


def test_the_objective_never_increases_and_the_step_is_reported():
    X, y = make_data("multiclass", n=4000, d=6, seed=7, scale=3.0)
    est = LogisticRegression(**NEWTON, max_iter=30, tol=None).fit(X, y)
    curve = np.array(est.loss_curve_)
    assert np.all(np.diff(curve) <= 1e-12 * np.abs(curve[:-1]))
    assert 0 < est.learning_rate_ <= 1.0


def test_sample_rows_and_blocks():
    rows = sample_rows(1000, 101)
    assert len(rows) == 101 and rows[0] == 0 and rows[-1] == 999 and np.all(np.diff(rows) > 0)
    np.testing.assert_array_equal(sample_rows(50, 80), np.arange(50))
    cuts = gradient_blocks(1_000_000)
    assert cuts[0] == 0 and cuts[-1] == 1_000_000 and len(cuts) == 65
    assert list(gradient_blocks(100)) == [0, 100]


def test_factor_of_a_singular_curvature():
    A = np.ones((3, 3))  # rank one: a shift makes it factor
    scale, chol = factored(A)
    solved = scale * scipy.linalg.cho_solve(chol, scale * np.ones(3))
    assert np.all(np.isfinite(solved))


# ------------------------------------------------------------------ converged = optimum
def test_converged_least_squares_is_the_normal_equations_solution():
    rng = np.random.default_rng(8)
    X = rng.standard_normal((20_000, 12)) * np.logspace(-2, 2, 12) + rng.uniform(-5, 5, 12)
    y = X @ (rng.standard_normal(12) / np.logspace(-2, 2, 12)) + rng.standard_normal(20_000)
    est = LinearRegression(**NEWTON, tol=1e-12, max_iter=100).fit(X, y)
    w = _exact_least_squares(X, y, est.alpha_)
    f_opt = 0.5 * np.mean((y - X @ w[:-1] - w[-1]) ** 2) + 0.5 * est.alpha_ * w[:-1] @ w[:-1]
    assert est.objective(X, y) == pytest.approx(f_opt, rel=1e-6)
    assert est.alpha_ == 1 / 20_000


@pytest.mark.parametrize("classes", [2, 4])
def test_converged_logistic_is_the_lbfgs_optimum(classes):
    rng = np.random.default_rng(9)
    X = rng.standard_normal((6000, 8))
    W = rng.standard_normal((classes, 8))
    y = np.argmax(X @ W.T + rng.gumbel(size=(6000, classes)), axis=1) if classes > 2 else (
        X @ W[0] + rng.logistic(size=6000) > 0).astype(int)
    est = LogisticRegression(**NEWTON, tol=1e-12, max_iter=200).fit(X, y)
    ref = _exact_logistic(X, y, est.alpha_)
    shadow = LogisticRegression(**NEWTON, max_iter=1, tol=None).fit(X, y)
    K = est.coef_.shape[0]
    shadow._state[0] = np.hstack([ref.coef_, ref.intercept_[:, None]]) if K > 1 else np.r_[ref.coef_[0], ref.intercept_][None]
    f_opt = shadow.objective(X, y)
    assert est.objective(X, y) == pytest.approx(f_opt, rel=1e-6)
    assert est.objective(X, y) <= f_opt * (1 + 1e-9)


@pytest.mark.parametrize("case", ["scaled columns", "duplicated columns", "constant column"])
@pytest.mark.parametrize("loss", ["squared_error", "log_loss"])
def test_ill_conditioning_neither_diverges_nor_stalls(case, loss):
    rng = np.random.default_rng(10)
    n, d = 5000, 6
    X = rng.standard_normal((n, d))
    signal = X @ rng.standard_normal(d)
    if case == "scaled columns":
        X = X * np.logspace(-4, 4, d)
    elif case == "duplicated columns":
        X = np.hstack([X, X[:, :3]])
    else:
        X = np.hstack([X, np.full((n, 1), 3.0)])
    if loss == "squared_error":
        y = signal + 0.1 * rng.standard_normal(n)
        est = LinearRegression(**NEWTON, tol=1e-12, max_iter=100).fit(X, y)
        f_opt = 0.5 * np.mean((y - X @ (w := _exact_least_squares(X, y, est.alpha_))[:-1] - w[-1]) ** 2) \
            + 0.5 * est.alpha_ * w[:-1] @ w[:-1]
    else:
        y = (signal + rng.logistic(size=n) > 0).astype(int)
        est = LogisticRegression(**NEWTON, tol=1e-12, max_iter=100).fit(X, y)

        def f(v):
            z = X @ v[:-1] + v[-1]
            return np.mean(np.logaddexp(0, z) - y * z) + 0.5 * est.alpha_ * v[:-1] @ v[:-1]

        def g(v):
            z = X @ v[:-1] + v[-1]
            r = 1 / (1 + np.exp(-z)) - y
            return np.r_[X.T @ r / n + est.alpha_ * v[:-1], r.mean()]

        start = np.r_[est.coef_.ravel(), est.intercept_]
        opt = scipy.optimize.minimize(f, start, jac=g, method="L-BFGS-B", options={"gtol": 1e-14, "ftol": 1e-16})
        f_opt = min(opt.fun, f(start))
    assert np.all(np.isfinite(est.coef_))
    assert est.n_iter_ < 100
    assert est.objective(X, y) == pytest.approx(f_opt, rel=1e-6)


def test_wide_data_takes_the_diagonal_preconditioner(capsys):
    X, y = make_data("binary", n=300, d=60, seed=11)
    assert newton_preconditioner(300, 60) == "diagonal"
    est = LogisticRegression(**NEWTON, verbose=1, max_iter=300, tol=1e-10).fit(X, y)
    assert "diagonal preconditioner" in capsys.readouterr().out
    ref = _exact_logistic(X, y, est.alpha_)
    shadow = LogisticRegression(**NEWTON, max_iter=1, tol=None).fit(X, y)
    shadow._state[0] = np.r_[ref.coef_[0], ref.intercept_][None]
    assert est.objective(X, y) == pytest.approx(shadow.objective(X, y), rel=1e-5)
    # "auto" does not pick the rule where only the diagonal is affordable
    assert LogisticRegression(max_iter=3, tol=None).fit(X, y).optimizer_ == "sgd"


# ------------------------------------------------------------------ where "auto" picks it
def test_auto_picks_newton_on_dense_in_memory_rows():
    s = settings(LogisticRegression())
    dense = DataKind(sparse=False, n_rows=200_000, n_features=100)
    assert choose(s, dense).optimizer == "newton-sketch"
    assert choose(s, dense).alpha == 1 / 200_000
    assert choose(s, DataKind(sparse=False, n_rows=40_000, n_features=2000)).optimizer == "sgd"  # wide
    assert choose(s, DataKind(sparse=False, n_rows=-1)).optimizer == "sgd"  # Dask
    assert choose(s, dense, grid=True).optimizer == "sgd"
    assert choose(s, dense, partial=True).optimizer == "sgd"
    for params in ({"batch_size": 32}, {"learning_rate": "constant"}, {"average": True},
                   {"penalty": "l1"}, {"nesterov": True, "momentum": 0.9}):
        assert choose(settings(LogisticRegression(**params)), dense).optimizer == "sgd", params
    assert choose(settings(LogisticRegression(batch_size="full")), dense).optimizer == "newton-sketch"


def test_the_automatic_penalty_is_per_row_and_weights_stay_relative():
    X, y = make_data("binary", n=40, seed=12)
    counts = np.random.default_rng(1).integers(1, 4, size=len(y))
    weighted = LogisticRegression(tol=1e-12, max_iter=100).fit(X, y, sample_weight=counts)
    scaled = LogisticRegression(tol=1e-12, max_iter=100).fit(X, y, sample_weight=1e3 * counts)
    assert weighted.alpha_ == scaled.alpha_ == 1 / 40
    np.testing.assert_allclose(weighted.coef_, scaled.coef_, rtol=1e-10)
    # integer weights are repeated rows at the same alpha
    repeated = LogisticRegression(alpha=1 / 40, tol=1e-12, max_iter=100).fit(np.repeat(X, counts, 0),
                                                                             np.repeat(y, counts))
    np.testing.assert_allclose(weighted.coef_, repeated.coef_, rtol=1e-7)
    # early stopping's held-out rows are not trained on: 1 / the rest
    held = LogisticRegression(early_stopping=True, validation_fraction=0.25, max_iter=5).fit(X, y)
    assert held.alpha_ == 1 / 30


def test_warm_start_early_stopping_and_no_intercept():
    X, y = make_data("binary", n=3000, d=5, seed=13)
    first = LogisticRegression(**NEWTON, warm_start=True, max_iter=2, tol=None).fit(X, y)
    n2 = first.n_iter_
    first.set_params(max_iter=3).fit(X, y)
    straight = LogisticRegression(**NEWTON, max_iter=5, tol=None).fit(X, y)
    # (the continued fit starts its line search afresh: close, not identical)
    assert first.objective(X, y) <= LogisticRegression(**NEWTON, max_iter=n2, tol=None).fit(X, y).objective(X, y)
    assert first.objective(X, y) == pytest.approx(straight.objective(X, y), rel=1e-3)
    es = LogisticRegression(**NEWTON, early_stopping=True, max_iter=50).fit(X, y)
    assert es.optimizer_ == "newton-sketch" and len(es.validation_scores_) == es.n_iter_
    flat = LogisticRegression(**NEWTON, fit_intercept=False, max_iter=20).fit(X, y)
    assert flat.intercept_[0] == 0.0 and np.all(np.isfinite(flat.coef_))


def test_partial_fit_after_an_auto_newton_fit_goes_on_with_sgd():
    X, y = make_data("binary", n=500, seed=14)
    est = LogisticRegression(random_state=0).fit(X, y)
    assert est.optimizer_ == "newton-sketch"
    before = est.score(X, y)
    est.partial_fit(X, y)
    assert est.optimizer_ == "sgd" and est.score(X, y) >= before - 0.05


# ------------------------------------------------------------------ clear errors
@pytest.mark.parametrize(("params", "match"), [
    ({"batch_size": 32}, "batch_size must be 'auto' or 'full'"),
    ({"learning_rate": "constant"}, "learning_rate must be 'auto'"),
    ({"average": True}, "average must be False"),
    ({"penalty": "l1"}, "L1 part"),
    ({"penalty": "elasticnet", "l1_ratio": 0.5}, "L1 part"),
])
def test_settings_it_cannot_take(params, match):
    X, y = make_data("binary")
    with pytest.raises(ValueError, match=match):
        LogisticRegression(**NEWTON, **params).fit(X, y)


def test_inputs_and_calls_it_cannot_take():
    X, y = make_data("binary", n=100)
    with pytest.raises(ValueError, match="sparse input"):
        LogisticRegression(**NEWTON).fit(sp.csr_matrix(X), y)
    with pytest.raises(ValueError, match="partial_fit"):
        LogisticRegression(**NEWTON).partial_fit(X, y, classes=np.unique(y))
    with pytest.raises(ValueError, match="CV classes"):
        LogisticRegressionCV(**NEWTON, alphas=3, cv=2, max_iter=3).fit(X, y)
    da = pytest.importorskip("dask.array")
    with pytest.raises(ValueError, match="Dask input"):
        LogisticRegression(**NEWTON).fit(da.from_array(X, chunks=50), da.from_array(y, chunks=50))


@pytest.mark.parametrize("scale", [1e-4, 1.0, 1e3])
def test_the_stop_does_not_depend_on_the_scale_of_y(scale):
    """The Newton decrement is judged relative to the objective: a least-squares fit of
    y * 1e-4 takes the passes of y's (an absolute bound stopped it after 2, R² 0.71)."""
    from sklearn.linear_model import Ridge

    rng = np.random.default_rng(15)
    scales = np.logspace(-2, 2, 20)
    X = rng.standard_normal((20_000, 20)) * scales + rng.uniform(-5, 5, 20)
    y = (X @ (rng.standard_normal(20) / scales) + 3.0 * rng.standard_normal(20_000)) * scale
    est = LinearRegression().fit(X, y)
    unit = LinearRegression().fit(X, y / scale)
    assert est.optimizer_ == "newton-sketch" and est.n_iter_ == unit.n_iter_
    ridge = Ridge(alpha=1.0).fit(X, y)  # (the same penalty: alpha = 1 / n in fastgd's terms)
    assert est.score(X, y) == pytest.approx(ridge.score(X, y), abs=1e-5)


@pytest.mark.parametrize(("n", "d", "classes", "mode"), [(6000, 8, 4, "the classes' whole Hessian"),
                                                         (3000, 20, 6, "full preconditioner")])
def test_softmax_modes_reach_the_optimum(n, d, classes, mode, capsys):
    """Few classes: the softmax's whole Hessian on the sample; more: its per-class blocks.
    Both reach lbfgs's optimum, and the classes' common intercept does not drift."""
    rng = np.random.default_rng(16)
    X = rng.standard_normal((n, d))
    y = np.argmax(X @ rng.standard_normal((classes, d)).T + rng.gumbel(size=(n, classes)), axis=1)
    est = LogisticRegression(**NEWTON, tol=1e-12, max_iter=300, verbose=1).fit(X, y)
    assert mode in capsys.readouterr().out
    ref = _exact_logistic(X, y, est.alpha_)
    shadow = LogisticRegression(**NEWTON, max_iter=1, tol=None).fit(X, y)
    shadow._state[0] = np.hstack([ref.coef_, ref.intercept_[:, None]])
    assert est.objective(X, y) == pytest.approx(shadow.objective(X, y), rel=1e-6)
    assert abs(est.intercept_.mean()) < 1e-6
