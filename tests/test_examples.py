"""Every worked example in examples/ runs headless, writes its pictures, and prints numbers
that agree with answers computed here independently (roots of the derivative, closed-form
iterates, least squares, scikit-learn's log loss, scipy's finite differences)."""

import math
import os
import pathlib
import re
import runpy
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("matplotlib")

EXAMPLES = pathlib.Path(__file__).resolve().parents[1] / "examples"
QUARTIC = [0.5, -4.0, 10.0, -7.0, 2.0]
NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"


def run_example(name, out):
    env = dict(os.environ, MPLBACKEND="Agg")
    env.pop("FASTGD_EXAMPLES_OUT", None)
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / name), str(out)],
        check=False,
        cwd=out,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def find(pattern, text):
    """The groups of the one line matching ``pattern`` (NUMBER placeholders as {n})."""
    regex = pattern.format(n=f"({NUMBER})")
    matches = re.findall(regex, text)
    assert len(matches) == 1, f"{regex!r} matched {len(matches)} times in:\n{text}"
    groups = matches[0] if isinstance(matches[0], tuple) else (matches[0],)
    return [float(g) if re.fullmatch(NUMBER, g) else g for g in groups]


def assert_pictures(out, *names):
    for name in names:
        data = (out / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n", name
        assert len(data) > 5_000, f"{name} looks empty"


def quartic_minima():
    """Real roots of f' where f'' > 0, sorted: [global, local] for this quartic."""
    roots = np.roots(np.polyder(QUARTIC))
    real = np.sort(roots[np.abs(roots.imag) < 1e-12].real)
    minima = [r for r in real if np.polyval(np.polyder(QUARTIC, 2), r) > 0]
    assert len(minima) == 2
    return minima


def descent_on_diagonal_quadratic(curvatures, x0, lr, max_iter, tol=1e-8):
    """(status, steps) of plain gradient descent on 0.5 sum(c x^2) from the closed form
    x_k = (1 - lr c)^k x0, with minimize's rules: converged when |grad| <= tol (checked
    before each step), diverged when f_k - f_0 > 1e10 max(1, |f_0|)."""
    c, x0 = np.asarray(curvatures), np.asarray(x0)
    f0 = 0.5 * np.sum(c * x0**2)
    for k in range(max_iter + 1):
        x = (1 - lr * c) ** k * x0
        if k > 0 and 0.5 * np.sum(c * x**2) - f0 > 1e10 * max(1.0, abs(f0)):
            return 2, k
        if np.linalg.norm(c * x) <= tol:
            return 0, k
    return 1, max_iter


def test_example_01_one_variable(tmp_path):
    out = run_example("01_one_variable.py", tmp_path)
    fprime = np.polyder(QUARTIC)
    (exact,) = find(r"exact f'\(x\) = {n}", out)
    assert exact == np.polyval(fprime, 4.0) == 9.0
    f = lambda x: np.polyval(QUARTIC, x)
    slopes = []
    for h in (1.0, 0.1, 0.01, 0.001):
        (slope,) = find(rf"secant slope with h = {h:g}: {{n}}", out)
        assert slope == pytest.approx((f(4.0 + h) - f(4.0)) / h, rel=1e-10)
        slopes.append(slope)
    assert np.all(
        np.diff(np.abs(np.array(slopes) - 9.0)) < 0
    )  # the secants approach f'
    (numeric,) = find(r"numerical_gradient: {n}", out)
    assert numeric == pytest.approx(9.0, rel=1e-10)

    global_min, local_min = quartic_minima()
    assert np.polyval(QUARTIC, global_min) < np.polyval(QUARTIC, local_min)
    expected = {
        (4.0, 0.1): ("local", local_min),
        (4.0, 0.2): ("global", global_min),
        (5.0, 0.1): ("global", global_min),
    }
    for (x0, lr), (which, root) in expected.items():
        end, fun, label, steps = find(
            rf"start {x0:g}, learning rate {lr:g}: ends at x = {{n}}, f = {{n}} \((\w+)"
            r" minimum\) after {n} steps, success = True",
            out,
        )
        assert label == which
        assert abs(end - root) < 1e-8
        assert fun == pytest.approx(np.polyval(QUARTIC, root), rel=1e-10)
        assert steps >= 1
    assert_pictures(tmp_path, "01_derivative.png", "01_one_variable.png")


def test_example_02_two_variables(tmp_path):
    out = run_example("02_two_variables.py", tmp_path)
    analytic0, analytic1, numeric0, numeric1 = find(
        r"analytic \[{n}, {n}\], numerical \[{n}, {n}\]", out
    )
    assert (analytic0, analytic1) == (-6.0, 8.0)
    np.testing.assert_allclose([numeric0, numeric1], [-6.0, 8.0], rtol=1e-10)
    # x_k = 0.8^k x0; |grad f(x_k)| = 10 * 0.8^k first reaches 1e-8 at k = 93
    x0 = np.array([-3.0, 4.0])
    k = next(k for k in range(1000) if np.linalg.norm(2 * 0.8**k * x0) <= 1e-8)
    assert k == 93
    for name, rtol in (("numerical", 1e-8), ("analytic", 1e-12)):
        x_a, x_b, fun, steps = find(
            rf"{name} gradient: x = \[{{n}}, {{n}}\], f = {{n}}, {{n}} steps, success = True",
            out,
        )
        assert steps == k
        np.testing.assert_allclose([x_a, x_b], 0.8**k * x0, rtol=rtol)
        assert fun == pytest.approx(0.64**k * 25, rel=1e-7)
    (gap,) = find(r"largest difference between the two paths: {n}", out)
    assert gap < 1e-9
    for step in (1, 2, 3):
        a, b = find(rf"iterate {step}: \[{{n}}, {{n}}\]", out)
        np.testing.assert_allclose([a, b], 0.8**step * x0, rtol=1e-14)
    assert_pictures(tmp_path, "02_path.png", "02_gradient_field.png")


def test_example_03_learning_rates(tmp_path):
    out = run_example("03_learning_rates.py", tmp_path)
    c, x0 = np.array([1.0, 4.0]), np.array([-4.0, 3.0])
    outcomes = {}
    for lr in (0.02, 0.25, 0.45, 0.55):
        fac0, fac1, status, steps, xa, xb, fun = find(
            rf"learning rate {lr:g}: factors per step {{n}} and {{n}}; status {{n}},"
            r" {n} steps, x = \[{n}, {n}\], f = {n}",
            out,
        )
        np.testing.assert_allclose([fac0, fac1], 1 - lr * c, atol=1e-12)
        expected_status, expected_steps = descent_on_diagonal_quadratic(c, x0, lr, 100)
        assert (status, steps) == (expected_status, expected_steps)
        x = (1 - lr * c) ** expected_steps * x0
        np.testing.assert_allclose([xa, xb], x, rtol=1e-10, atol=1e-300)
        assert fun == pytest.approx(0.5 * np.sum(c * x**2), rel=1e-10)
        outcomes[lr] = status
    # crawl (max_iter reached), converge, zig-zag but converge, diverge
    assert outcomes == {0.02: 1, 0.25: 0, 0.45: 0, 0.55: 2}
    assert "learning rate 0.55 is too large" in out
    assert_pictures(tmp_path, "03_learning_rates.png")


def heavy_ball_steps(c, x0, lr, mu, tol=1e-8, max_iter=2000):
    """Steps of Polyak's heavy ball x+ = x - lr grad + mu (x - x_prev) on 0.5 sum(c x^2)
    until |grad| <= tol and the last step <= tol."""
    x_prev = x = np.asarray(x0, dtype=float)
    for k in range(max_iter + 1):
        if np.linalg.norm(c * x) <= tol and np.linalg.norm(x - x_prev) <= tol:
            return k
        x_prev, x = x, x - lr * c * x + mu * (x - x_prev)
    raise AssertionError("heavy ball did not converge")


def test_example_04_momentum(tmp_path):
    out = run_example("04_momentum.py", tmp_path)
    c, x0 = np.array([1.0, 25.0]), np.array([-10.0, 1.5])
    results = {}
    for name in ("plain", "momentum", "Nesterov"):
        steps, xa, xb = find(
            rf"valley, {name}[^:]*: {{n}} steps, x = \[{{n}}, {{n}}\], f = {NUMBER},"
            r" success = True",
            out,
        )
        assert np.linalg.norm(c * np.array([xa, xb])) <= 1e-8  # at the minimum (0, 0)
        results[name] = steps
    assert results["plain"] == descent_on_diagonal_quadratic(c, x0, 0.075, 2000)[1]
    assert results["momentum"] == heavy_ball_steps(c, x0, 0.03, 0.7)
    assert results["momentum"] < results["plain"] / 2
    assert results["Nesterov"] < results["plain"]

    global_min, local_min = quartic_minima()
    (plain_end,) = find(r"bump, plain[^:]*: \d+ steps, x = \[{n}\]", out)
    (heavy_end,) = find(r"bump, momentum 0.9[^:]*: \d+ steps, x = \[{n}\]", out)
    assert abs(plain_end - local_min) < 1e-8
    assert abs(heavy_end - global_min) < 1e-8
    assert_pictures(tmp_path, "04_momentum_valley.png", "04_momentum_local_minimum.png")


def test_example_05_linear_regression(tmp_path):
    out = run_example("05_linear_regression.py", tmp_path)
    data = np.load(tmp_path / "05_linear_regression_data.npz")
    x, y = data["x"], data["y"]
    assert x.shape == y.shape == (50,)
    slope, intercept = np.polyfit(x, y, 1)  # least squares, computed another way
    hand = find(r"hand-written gradient descent: w0 = {n}, w1 = {n}", out)
    library = find(r"fastgd.LinearRegression: w0 = {n}, w1 = {n}", out)
    closed = find(r"closed form \(least squares\): w0 = {n}, w1 = {n}", out)
    np.testing.assert_allclose(closed, [intercept, slope], atol=1e-11)
    np.testing.assert_allclose(hand, [intercept, slope], atol=1e-10)
    np.testing.assert_allclose(library, hand, atol=1e-11)
    (objective,) = find(r"objective after 1000 steps: {n}", out)
    assert objective == pytest.approx(
        0.5 * np.mean((intercept + slope * x - y) ** 2), rel=1e-9
    )
    assert_pictures(tmp_path, "05_linear_regression.png")


def test_example_06_batch_sgd_minibatch(tmp_path):
    from sklearn.datasets import make_regression
    from sklearn.linear_model import LinearRegression as OrdinaryLeastSquares

    out = run_example("06_batch_sgd_minibatch.py", tmp_path)
    X, y = make_regression(n_samples=2000, n_features=10, noise=10.0, random_state=0)
    ols = OrdinaryLeastSquares().fit(X, y)
    optimum = 0.5 * np.mean((ols.predict(X) - y) ** 2)
    (printed_optimum,) = find(r"optimal objective \(least squares\): {n}", out)
    assert printed_optimum == pytest.approx(optimum, rel=1e-10)
    objectives = {}
    for name, batch in (("batch", "full"), ("mini-batch", "32"), ("SGD", "1")):
        epochs, steps, objective, seconds = find(
            rf"{name}: batch_size = {batch}, {{n}} epochs, {{n}} steps, objective = {{n}},"
            r" {n} s in epochs",
            out,
        )
        per_epoch = 1 if batch == "full" else math.ceil(2000 / int(batch))
        assert (epochs, steps) == (20, 20 * per_epoch)
        assert objective >= optimum * (1 - 1e-12)  # nothing beats least squares
        assert seconds > 0
        objectives[name] = objective
    assert objectives["batch"] == pytest.approx(optimum, rel=1e-9)  # converged
    # the noisy methods hover above the optimum, within half of it
    for name in ("mini-batch", "SGD"):
        assert optimum * 1.01 < objectives[name] < optimum * 1.5
    assert_pictures(tmp_path, "06_loss_curves.png")


def test_example_07_neural_network(tmp_path, monkeypatch):
    from scipy.optimize import approx_fprime
    from sklearn.datasets import make_moons
    from sklearn.metrics import log_loss

    out = run_example("07_neural_network.py", tmp_path)
    (rel_err,) = find(r"gradient check: relative error {n}", out)
    assert rel_err < 1e-6
    steps, loss, start_loss = find(r"trained: {n} steps, loss {n} \(from {n}\)", out)
    (accuracy,) = find(r"training accuracy: {n}", out)

    # the trained weights, evaluated here with scikit-learn's log loss
    saved = np.load(tmp_path / "07_weights.npz")
    theta, h = saved["theta"], int(saved["hidden"])
    X, y = make_moons(n_samples=200, noise=0.2, random_state=0)
    W1, b1, w2, b2 = (
        theta[: 2 * h].reshape(2, h),
        theta[2 * h : 3 * h],
        theta[3 * h : 4 * h],
        theta[4 * h],
    )
    prob = 1 / (1 + np.exp(-(np.tanh(X @ W1 + b1) @ w2 + b2)))
    assert loss == pytest.approx(log_loss(y, prob), rel=1e-8)
    assert accuracy == pytest.approx(np.mean((prob > 0.5) == (y == 1)), abs=1e-4)
    assert accuracy >= 0.95
    assert loss < start_loss / 10 and steps == 500

    # backpropagation against scipy's forward differences, at another point (the
    # script imports _common from its own directory, which `python script.py` puts on
    # sys.path and runpy does not)
    monkeypatch.syspath_prepend(str(EXAMPLES))
    module = runpy.run_path(str(EXAMPLES / "07_neural_network.py"), run_name="example7")
    point = np.random.default_rng(5).normal(size=theta.size)
    Xf = X.astype(float)
    yf = y.astype(float)
    _, backprop = module["loss_and_grad"](point, Xf, yf)
    numeric = approx_fprime(point, module["loss"], 1e-7, Xf, yf)
    np.testing.assert_allclose(backprop, numeric, rtol=1e-4, atol=1e-6)
    assert_pictures(tmp_path, "07_decision_boundary.png")
