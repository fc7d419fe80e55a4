"""fastgd.optimize: numerical_gradient and minimize against known answers."""

import warnings

import numpy as np
import pytest
import scipy.optimize

from fastgd import minimize, numerical_gradient
from fastgd.optimize import DIVERGENCE_FACTOR

# ----------------------------------------------------------------------------------
# functions with known gradients

A = np.array([[1.0, -2.0, 0.5], [0.3, 0.8, -1.1], [2.0, 0.1, 0.4], [-0.7, 1.5, 0.9]])
B = np.array([1.0, 0.0, 1.0, 0.0])
M = np.array([[0.5, -1.0, 2.0], [1.5, 0.3, -0.7]])


def logistic(w):
    # L2-regularised logistic loss: strongly convex, so it has one minimiser
    z = A @ w
    return np.mean(np.logaddexp(0.0, z) - B * z) + 0.05 * np.sum(w**2)


def logistic_grad(w):
    z = A @ w
    return A.T @ (1.0 / (1.0 + np.exp(-z)) - B) / len(B) + 0.1 * w


def rosen(x):
    return (1 - x[0]) ** 2 + 100 * (x[1] - x[0] ** 2) ** 2


def rosen_grad(x):
    return np.array(
        [-2 * (1 - x[0]) - 400 * x[0] * (x[1] - x[0] ** 2), 200 * (x[1] - x[0] ** 2)]
    )


FUNCTIONS = {
    # name: (f, gradient, point)
    "exp-sin": (
        lambda x: np.sum(np.exp(x) * np.sin(3 * x)),
        lambda x: np.exp(x) * (np.sin(3 * x) + 3 * np.cos(3 * x)),
        np.array([0.3, -1.2, 1.7]),
    ),
    "log-norm": (
        lambda x: np.log1p(np.sum(x**2)),
        lambda x: 2 * x / (1 + np.sum(x**2)),
        np.array([0.5, -2.0, 3.0, 0.1]),
    ),
    "rosenbrock": (rosen, rosen_grad, np.array([-1.2, 1.0])),
    "logistic": (logistic, logistic_grad, np.array([0.4, -0.3, 1.2])),
    "matrix-tanh": (
        lambda X: np.sum(np.tanh(X) * M),
        lambda X: (1 - np.tanh(X) ** 2) * M,
        np.array([[0.2, -0.5, 1.0], [0.7, -1.3, 0.05]]),
    ),
    "scalar-cubic": (lambda x: x**3 - 2 * x, lambda x: 3 * x**2 - 2, np.array(1.7)),
    "large-scale": (
        lambda x: np.sum(x**2) + x[0] * x[1],
        lambda x: 2 * x + np.array([x[1], x[0]]),
        np.array([3.0e5, -1.2e4]),
    ),
    # defined for x > 0 only, at points closer to 0 than the first step of 7.4e-4
    "log-near-zero": (
        lambda x: np.sum(np.log(x)),
        lambda x: 1 / x,
        np.array([1e-4, 2e-3, 0.5]),
    ),
    "mixed-scales": (
        lambda x: np.sum(np.cos(x / np.array([1e-3, 1.0, 1e3]))),
        lambda x: -np.sin(x / np.array([1e-3, 1.0, 1e3])) / np.array([1e-3, 1.0, 1e3]),
        np.array([2e-4, 0.6, 900.0]),
    ),
}


def relative_error(a, b):
    return np.linalg.norm(np.ravel(a - b)) / np.linalg.norm(np.ravel(b))


# ----------------------------------------------------------------------------------
# numerical_gradient


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_numerical_gradient_matches_analytic(name):
    f, grad, x = FUNCTIONS[name]
    g = numerical_gradient(f, x)
    assert g.shape == np.shape(x)
    assert g.dtype == np.float64
    assert relative_error(g, grad(x)) < 1e-10


def test_numerical_gradient_is_far_better_than_a_fixed_step():
    # the accuracy claim in the docstring, against the textbook h = 1e-4 central difference
    f, grad, x = FUNCTIONS["exp-sin"]
    fixed = np.array(
        [(f(x + 1e-4 * e) - f(x - 1e-4 * e)) / 2e-4 for e in np.eye(len(x))]
    )
    ours = relative_error(numerical_gradient(f, x), grad(x))
    assert ours < 1e-10
    assert ours < relative_error(fixed, grad(x)) / 100


def test_numerical_gradient_does_not_modify_x_even_if_f_does():
    x = np.array([1.0, 2.0, 3.0])
    before = x.copy()

    def vandal(v):
        value = np.sum(v**2)
        v[:] = 99.0  # f scribbles on its argument
        return value

    g = numerical_gradient(vandal, x)
    np.testing.assert_array_equal(x, before)
    np.testing.assert_allclose(g, 2 * before, rtol=1e-10)


def test_numerical_gradient_accepts_lists_and_ints_and_args():
    g = numerical_gradient(
        lambda v, a, b: a * v[0] ** 2 + b * v[1], [3, -1], args=(2.0, 5.0)
    )
    np.testing.assert_allclose(g, [12.0, 5.0], rtol=1e-10)


def test_numerical_gradient_scalar_point_gives_0d_array():
    g = numerical_gradient(np.exp, 0.0)
    assert g.shape == ()
    assert abs(float(g) - 1.0) < 1e-10


def test_batched_rows_matrix():
    # f maps an (n, 3) array row-wise to n values; row r of the result is the gradient of
    # value r with respect to row r
    rng = np.random.default_rng(0)
    X = rng.normal(size=(7, 3))

    def f(Z):
        return np.sum(np.sin(Z) ** 2, axis=1) + Z[:, 0] * Z[:, 2]

    expected = 2 * np.sin(X) * np.cos(X)
    expected[:, 0] += X[:, 2]
    expected[:, 2] += X[:, 0]
    G = numerical_gradient(f, X, batched=True)
    assert G.shape == X.shape
    np.testing.assert_allclose(G, expected, rtol=1e-9, atol=1e-11)


def test_batched_rows_of_scalars_and_of_matrices():
    x = np.linspace(-2, 2, 9)
    np.testing.assert_allclose(
        numerical_gradient(np.sin, x, batched=True), np.cos(x), rtol=1e-9, atol=1e-11
    )
    rng = np.random.default_rng(1)
    W = rng.normal(size=(4, 2, 2))  # four 2x2 points
    G = numerical_gradient(lambda Z: np.sum(Z**3, axis=(1, 2)), W, batched=True)
    np.testing.assert_allclose(G, 3 * W**2, rtol=1e-9, atol=1e-11)


def test_batched_cost_does_not_grow_with_the_rows():
    # a smooth function: four calls at steps +-h, +-2h and two at +-h/2 per coordinate
    # agree at once, for 1 row as for 50
    for n in (1, 50):
        calls = []

        def f(Z, calls=calls):
            calls.append(Z.shape)
            return np.sum(Z**2, axis=1)

        numerical_gradient(f, np.ones((n, 3)), batched=True)
        assert calls == [(n, 3)] * 18


def test_batched_agrees_with_row_by_row():
    rng = np.random.default_rng(2)
    X = rng.normal(size=(5, 3))
    batched = numerical_gradient(
        lambda Z: np.array([logistic(r) for r in Z]), X, batched=True
    )
    for r in range(5):
        np.testing.assert_allclose(batched[r], logistic_grad(X[r]), rtol=1e-8)


@pytest.mark.parametrize(
    "call, error, match",
    [
        (lambda: numerical_gradient(3.0, [1.0]), TypeError, "f must be callable"),
        (lambda: numerical_gradient(np.sum, [1.0, np.nan]), ValueError, "finite"),
        (lambda: numerical_gradient(np.sum, ["a", "b"]), TypeError, "real"),
        (lambda: numerical_gradient(np.sum, [1 + 2j]), TypeError, "real"),
        (lambda: numerical_gradient(np.sum, [[1.0], [1.0, 2.0]]), TypeError, "real"),
        (
            lambda: numerical_gradient(lambda v: v, [1.0, 2.0]),
            ValueError,
            "batched=True",
        ),
        (lambda: numerical_gradient(lambda v: "x", [1.0]), TypeError, "real number"),
        (
            lambda: numerical_gradient(
                lambda Z: Z.sum(), np.ones((3, 2)), batched=True
            ),
            ValueError,
            r"shape \(3,\)",
        ),
        (
            lambda: numerical_gradient(np.sin, 1.0, batched=True),
            ValueError,
            "at least one",
        ),
        (
            lambda: numerical_gradient(lambda v: np.log(v[0]), [0.0]),
            ValueError,
            "not finite",
        ),
    ],
)
def test_numerical_gradient_errors(call, error, match):
    with pytest.raises(error, match=match), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        call()


# ----------------------------------------------------------------------------------
# minimize: iterates and results


def test_plain_gradient_descent_iterates_exactly():
    # on 0.5 * sum(c x^2) a step multiplies x_i by (1 - lr c_i): x_k = (1 - lr c)^k x0
    c = np.array([1.0, 3.0])
    x0 = np.array([2.0, -1.0])
    res = minimize(
        lambda x: 0.5 * np.sum(c * x**2),
        x0,
        jac=lambda x: c * x,
        learning_rate=0.2,
        max_iter=25,
        tol=0.0,
    )
    k = np.arange(26)[:, None]
    np.testing.assert_allclose(
        res.path, (1 - 0.2 * c) ** k * x0, rtol=1e-13, atol=1e-300
    )
    np.testing.assert_allclose(
        res.fun_path, 0.5 * np.sum(c * res.path**2, axis=1), rtol=1e-14
    )
    assert res.nit == 25 and res.status == 1 and not res.success
    assert "max_iter" in res.message


def _heavy_ball(grad, x0, lr, mu, steps):
    """Polyak's form x_{k+1} = x_k - lr g(x_k) + mu (x_k - x_{k-1})."""
    xs = [np.array(x0, dtype=float)]
    prev = xs[0]
    for _ in range(steps):
        x = xs[-1]
        xs.append(x - lr * grad(x) + mu * (x - prev))
        prev = x
    return np.array(xs)


def test_momentum_equals_polyak_heavy_ball():
    x0 = np.array([-1.2, 1.0])
    res = minimize(
        rosen,
        x0,
        jac=rosen_grad,
        learning_rate=1e-3,
        momentum=0.8,
        max_iter=40,
        tol=0.0,
    )
    np.testing.assert_allclose(
        res.path, _heavy_ball(rosen_grad, x0, 1e-3, 0.8, 40), rtol=1e-12
    )


def test_nesterov_follows_its_update_rule():
    # v <- mu v + g(x);  x <- x - lr (g(x) + mu v)
    x0 = np.array([-1.2, 1.0])
    lr, mu = 1e-3, 0.8
    x, v, expected = x0.copy(), np.zeros(2), [x0.copy()]
    for _ in range(30):
        g = rosen_grad(x)
        v = mu * v + g
        x = x - lr * (g + mu * v)
        expected.append(x.copy())
    res = minimize(
        rosen,
        x0,
        jac=rosen_grad,
        learning_rate=lr,
        momentum=mu,
        nesterov=True,
        max_iter=30,
        tol=0.0,
    )
    np.testing.assert_allclose(res.path, np.array(expected), rtol=1e-12)


@pytest.mark.parametrize("nesterov", [False, True])
def test_rosenbrock_minimum_with_momentum(nesterov):
    res = minimize(
        rosen,
        [-1.2, 1.0],
        jac=rosen_grad,
        learning_rate=1e-3,
        momentum=0.9,
        nesterov=nesterov,
        max_iter=10000,
        tol=1e-9,
    )
    assert res.success, res.message
    np.testing.assert_allclose(res.x, [1.0, 1.0], atol=1e-7)
    assert np.linalg.norm(res.jac) <= 1e-9
    np.testing.assert_allclose(res.jac, rosen_grad(res.x), rtol=1e-12)


def test_minimum_matches_scipy_bfgs_with_numerical_gradient():
    # jac=None: numerical gradients; the minimiser of the logistic loss from BFGS
    ref = scipy.optimize.minimize(
        logistic, np.zeros(3), jac=logistic_grad, method="BFGS", options={"gtol": 1e-12}
    )
    res = minimize(logistic, np.zeros(3), learning_rate=1.0, momentum=0.5, tol=1e-10)
    assert res.success, res.message
    np.testing.assert_allclose(res.x, ref.x, rtol=1e-8)
    assert res.njev == 0
    # per iterate: fun once, then 6 calls per coordinate for its numerical gradient
    assert res.nfev == (res.nit + 1) * (1 + 6 * 3)


def test_jac_forms_agree():
    x0 = np.array([0.5, -0.5, 0.5])
    common = {"learning_rate": 0.5, "max_iter": 200, "tol": 1e-9}
    by_callable = minimize(logistic, x0, jac=logistic_grad, **common)
    by_pair = minimize(
        lambda w: (logistic(w), logistic_grad(w)), x0, jac=True, **common
    )
    numeric = minimize(logistic, x0, jac=None, **common)
    np.testing.assert_array_equal(by_callable.path, by_pair.path)
    np.testing.assert_allclose(numeric.path, by_callable.path, rtol=1e-9, atol=1e-12)
    assert by_callable.nfev == by_callable.njev == by_callable.nit + 1
    assert by_pair.njev == 0 and by_pair.nfev == by_pair.nit + 1


def test_shapes_scalar_and_matrix():
    res = minimize(lambda x: (x - 3.0) ** 2, 0.0, jac=lambda x: 2 * (x - 3.0))
    assert res.x.shape == () and res.path.shape == (res.nit + 1,)
    assert res.path[0] == 0.0 and abs(float(res.x) - 3.0) < 1e-8
    target = np.arange(6.0).reshape(2, 3)
    res = minimize(lambda X: np.sum((X - target) ** 2), np.zeros((2, 3)))
    assert res.x.shape == (2, 3) and res.jac.shape == (2, 3)
    assert res.path.shape == (res.nit + 1, 2, 3) and res.fun_path.shape == (
        res.nit + 1,
    )
    np.testing.assert_allclose(res.x, target, atol=1e-8)


def test_x0_is_not_modified_and_args_are_passed():
    x0 = np.array([1.0, 2.0])
    res = minimize(lambda x, c: np.sum((x - c) ** 2), x0, (np.array([5.0, -5.0]),))
    np.testing.assert_array_equal(x0, [1.0, 2.0])
    np.testing.assert_array_equal(res.path[0], [1.0, 2.0])
    np.testing.assert_allclose(res.x, [5.0, -5.0], atol=1e-8)


def test_tol_is_on_the_gradient_norm_and_checked_before_each_step():
    grad = lambda x: 2 * x
    res = minimize(
        lambda x: np.sum(x**2), [3.0, 4.0], jac=grad, learning_rate=0.1, tol=1e-3
    )
    assert res.success and res.status == 0
    assert (
        np.linalg.norm(grad(res.path[-1])) <= 1e-3 < np.linalg.norm(grad(res.path[-2]))
    )
    # |grad f(x_k)| = 10 * 0.8^k, so the first k with 10 * 0.8^k <= 1e-3 is 42
    assert res.nit == 42
    at_minimum = minimize(lambda x: np.sum(x**2), [0.0, 0.0], jac=grad)
    assert (
        at_minimum.nit == 0 and at_minimum.success and at_minimum.path.shape == (1, 2)
    )


def test_tol_with_momentum_also_needs_a_short_step():
    grad = lambda x: 2 * x
    res = minimize(
        lambda x: np.sum(x**2),
        [3.0, 4.0],
        jac=grad,
        learning_rate=0.1,
        momentum=0.9,
        tol=1e-3,
    )
    assert res.success
    assert np.linalg.norm(grad(res.path[-1])) <= 1e-3
    assert np.linalg.norm(res.path[-1] - res.path[-2]) <= 1e-3
    # an earlier iterate had a small gradient but was moving fast: not a stop
    norms = np.linalg.norm(2 * res.path[:-1], axis=1)
    steps = np.r_[0.0, np.linalg.norm(np.diff(res.path[:-1], axis=0), axis=1)]
    assert not np.any((norms <= 1e-3) & (steps <= 1e-3))
    assert np.any((norms <= 0.05) & (steps > 1e-3))


def test_max_iter_zero():
    res = minimize(lambda x: np.sum(x**2), [1.0], max_iter=0)
    assert res.nit == 0 and res.status == 1 and not res.success
    assert res.path.shape == (1, 1) and res.fun == 1.0


# ----------------------------------------------------------------------------------
# divergence


def test_divergence_by_growth():
    # x_k = (-2)^k on x^2 with learning rate 1.5; f_k = 4^k. Stop at the first k with
    # f_k - f_0 > 1e10 * max(1, f_0): 4^17 - 1 > 1e10 > 4^16 - 1
    assert 4**17 - 1 > DIVERGENCE_FACTOR > 4**16 - 1
    res = minimize(lambda x: x**2, 1.0, jac=lambda x: 2 * x, learning_rate=1.5)
    assert res.status == 2 and not res.success
    assert "learning rate 1.5 is too large" in res.message
    assert res.nit == 17
    np.testing.assert_array_equal(res.path, (-2.0) ** np.arange(18))
    assert res.fun == 4.0**17


def test_divergence_to_overflow_keeps_the_finite_path_without_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        res = minimize(lambda x: np.sum(x**8), [1.5, -1.0], learning_rate=1.0)
    assert res.status == 2 and not res.success
    assert "too large" in res.message
    assert np.all(np.isfinite(res.path)) and np.all(np.isfinite(res.fun_path))
    assert res.path.shape == (res.nit + 1, 2)
    np.testing.assert_array_equal(res.x, res.path[-1])


def test_divergence_to_nan_value():
    def f(x):
        return x**2 if abs(x) < 10 else np.nan

    res = minimize(f, 1.0, jac=lambda x: 2 * x, learning_rate=1.2)
    # x_k = (-1.4)^k: 1, -1.4, 1.96, -2.744, 3.8416, -5.37824, 7.529536, then -10.54...
    assert res.status == 2 and res.nit == 6
    assert "fun = nan" in res.message and "too large" in res.message
    np.testing.assert_allclose(res.path, (-1.4) ** np.arange(7), rtol=1e-15)


def test_unbounded_below():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        res = minimize(lambda x: -np.sum(x**4), [1.0, 2.0], jac=lambda x: -4 * x**3)
    assert res.status == 3 and not res.success
    assert "unbounded below" in res.message
    assert np.all(np.isfinite(res.path))


# ----------------------------------------------------------------------------------
# callbacks


def test_callback_receives_copies_of_every_iterate():
    seen = []

    def callback(xk):
        seen.append(xk.copy())
        xk[:] = 1e6  # must not affect the descent

    res = minimize(
        lambda x: np.sum(x**2),
        [3.0, 4.0],
        jac=lambda x: 2 * x,
        max_iter=10,
        callback=callback,
    )
    assert res.nit == 10 and len(seen) == 10
    np.testing.assert_array_equal(np.array(seen), res.path[1:])
    np.testing.assert_allclose(res.path[-1], 0.8**10 * np.array([3.0, 4.0]), rtol=1e-14)


@pytest.mark.parametrize("how", ["return", "raise"])
def test_callback_stops(how):
    def callback(xk):
        if np.linalg.norm(xk) < 1.0:
            if how == "raise":
                raise StopIteration
            return True
        return None

    res = minimize(
        lambda x: np.sum(x**2), [3.0, 4.0], jac=lambda x: 2 * x, callback=callback
    )
    # |x_k| = 5 * 0.8^k drops below 1 at k = 8
    assert res.nit == 8 and res.status == 99 and not res.success
    assert "callback" in res.message


def test_callback_intermediate_result():
    results = []

    def callback(intermediate_result):
        results.append(intermediate_result)

    res = minimize(lambda x: np.sum(x**2), [3.0, 4.0], max_iter=5, callback=callback)
    assert [r.nit for r in results] == [1, 2, 3, 4, 5]
    np.testing.assert_array_equal([r.fun for r in results], res.fun_path[1:])
    np.testing.assert_array_equal(np.array([r.x for r in results]), res.path[1:])


# ----------------------------------------------------------------------------------
# scipy.optimize.minimize(method=minimize)


def test_as_scipy_custom_method():
    ref = scipy.optimize.minimize(
        logistic, np.zeros(3), jac=logistic_grad, method="BFGS", options={"gtol": 1e-12}
    )
    res = scipy.optimize.minimize(
        logistic,
        np.zeros(3),
        jac=logistic_grad,
        method=minimize,
        tol=1e-10,
        options={"learning_rate": 1.0, "momentum": 0.5, "maxiter": 500},
    )
    assert isinstance(res, scipy.optimize.OptimizeResult)
    assert res.success, res.message
    np.testing.assert_allclose(res.x, ref.x, rtol=1e-8)
    assert res.path.shape == (res.nit + 1, 3)


def test_scipy_jac_true_args_and_callback():
    seen = []
    res = scipy.optimize.minimize(
        lambda x, c: (np.sum((x - c) ** 2), 2 * (x - c)),
        np.zeros(2),
        args=(np.array([1.0, -2.0]),),
        jac=True,
        method=minimize,
        callback=lambda xk: seen.append(xk),
        options={"max_iter": 7},
    )
    assert res.nit == 7 and len(seen) == 7
    # x_k = c (1 - 0.8^k)
    np.testing.assert_allclose(res.x, np.array([1.0, -2.0]) * (1 - 0.8**7), rtol=1e-14)


def test_scipy_rejects_bounds_and_constraints():
    with pytest.raises(ValueError, match="bounds"):
        scipy.optimize.minimize(
            rosen, [0.0, 0.0], method=minimize, bounds=[(0, 1), (0, 1)]
        )
    with pytest.raises(ValueError, match="constraints"):
        scipy.optimize.minimize(
            rosen,
            [0.0, 0.0],
            method=minimize,
            constraints={"type": "eq", "fun": lambda x: x[0]},
        )


# ----------------------------------------------------------------------------------
# argument validation


def _f(x):
    return float(np.sum(np.asarray(x) ** 2))


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"learning_rate": 0.0}, ValueError, "learning_rate must be > 0"),
        ({"learning_rate": -0.1}, ValueError, "learning_rate"),
        ({"learning_rate": np.nan}, ValueError, "learning_rate must be finite"),
        ({"learning_rate": np.inf}, ValueError, "learning_rate must be finite"),
        ({"learning_rate": "0.1"}, TypeError, "learning_rate must be a real number"),
        ({"momentum": 1.0}, ValueError, "momentum must be < 1"),
        ({"momentum": -0.1}, ValueError, "momentum must be >= 0"),
        ({"nesterov": True}, ValueError, "nesterov=True requires momentum > 0"),
        ({"nesterov": "yes", "momentum": 0.5}, TypeError, "nesterov"),
        ({"max_iter": -1}, ValueError, "max_iter must be >= 0"),
        ({"max_iter": 2.5}, TypeError, "max_iter must be an int"),
        ({"max_iter": True}, TypeError, "max_iter must be an int"),
        ({"tol": -1e-3}, ValueError, "tol must be >= 0"),
        ({"callback": 3}, TypeError, "callback must be callable"),
        ({"jac": "2-point"}, TypeError, "jac must be"),
        ({"learnig_rate": 0.1}, TypeError, "learnig_rate"),
        ({"hess": lambda x: np.eye(2)}, ValueError, "hess"),
        ({"max_iter": 5, "maxiter": 6}, TypeError, "not both"),
    ],
)
def test_minimize_argument_errors(kwargs, error, match):
    with pytest.raises(error, match=match):
        minimize(_f, [1.0, 2.0], **kwargs)


@pytest.mark.parametrize(
    "fun, x0, kwargs, error, match",
    [
        ("not callable", [1.0], {}, TypeError, "fun must be callable"),
        (_f, [1.0, np.inf], {}, ValueError, "x0 must be finite"),
        (_f, ["a"], {}, TypeError, "x0 must be a real number"),
        (lambda x: x, [1.0, 2.0], {}, ValueError, "fun must return a scalar"),
        (_f, [1.0, 2.0], {"jac": lambda x: np.zeros(3)}, ValueError, "shape"),
        (lambda x: np.inf, [1.0], {}, ValueError, r"fun\(x0\) is not finite"),
        (lambda x: 1.0, [1.0], {"jac": True}, TypeError, r"\(value, gradient\)"),
        (
            _f,
            [1.0],
            {"jac": lambda x: np.array([np.nan])},
            ValueError,
            "gradient at x0",
        ),
    ],
)
def test_minimize_function_errors(fun, x0, kwargs, error, match):
    with pytest.raises(error, match=match):
        minimize(fun, x0, **kwargs)
