r"""Linear regression by hand-written gradient descent
===================================================

Simple linear regression :math:`y \approx w_0 + w_1 x`. The objective is the mean of
half the squared residuals,

.. math:: J(w_0, w_1) = \frac{1}{2n} \sum_i (w_0 + w_1 x_i - y_i)^2,

with partial derivatives

.. math:: \frac{\partial J}{\partial w_0} = \operatorname{mean}(r_i), \quad
   \frac{\partial J}{\partial w_1} = \operatorname{mean}(r_i x_i), \quad
   r_i = w_0 + w_1 x_i - y_i.

Both are computed from the *same* :math:`(w_0, w_1)` before either is changed: a
simultaneous update. The answer is compared with :class:`fastgd.LinearRegression`
running the same full-batch steps, and with the closed form (least squares).

Run it as ``python examples/05_linear_regression.py [output directory]``; it writes
``05_linear_regression.png`` and ``05_linear_regression_data.npz`` (the data).
"""
import os

import matplotlib.pyplot as plt
import numpy as np
from _common import output_dir

from fastgd import LinearRegression

LEARNING_RATE = 0.4
STEPS = 1000


def make_data(n=50, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.uniform(0.0, 2.0, n)
    y = 2.0 + 3.0 * x + 0.3 * rng.standard_normal(n)
    return x, y


def gradient_descent(x, y, learning_rate, steps):
    """Simultaneous updates of (w0, w1); returns them and J after 0, 1, ..., steps
    steps (steps + 1 values, like minimize's fun_path)."""
    w0, w1 = 0.0, 0.0
    history = []
    for _ in range(steps):
        r = w0 + w1 * x - y
        history.append(0.5 * np.mean(r**2))
        g0 = np.mean(r)
        g1 = np.mean(r * x)
        w0, w1 = (
            w0 - learning_rate * g0,
            w1 - learning_rate * g1,
        )  # both from the old values
    history.append(0.5 * np.mean((w0 + w1 * x - y) ** 2))
    return w0, w1, history


def main():
    out = output_dir()
    plt.switch_backend("Agg")
    x, y = make_data()
    np.savez(os.path.join(out, "05_linear_regression_data.npz"), x=x, y=y)

    w0, w1, history = gradient_descent(x, y, LEARNING_RATE, STEPS)
    print(f"hand-written gradient descent: w0 = {w0:.12f}, w1 = {w1:.12f}")

    # The same algorithm in fastgd: full batch, constant step, no momentum, no penalty,
    # a fixed number of epochs (one step each).
    model = LinearRegression(
        batch_size="full",
        learning_rate="constant",
        eta0=LEARNING_RATE,
        momentum=0.0,
        penalty=None,
        max_iter=STEPS,
        tol=None,
    ).fit(x[:, None], y)
    print(
        f"fastgd.LinearRegression: w0 = {float(model.intercept_):.12f},"
        f" w1 = {float(model.coef_[0]):.12f}"
    )

    # Closed form: solve the least-squares problem [1 x] w = y directly.
    design = np.column_stack([np.ones_like(x), x])
    (c0, c1), *_ = np.linalg.lstsq(design, y, rcond=None)
    print(f"closed form (least squares): w0 = {c0:.12f}, w1 = {c1:.12f}")

    print(f"objective after {STEPS} steps: {history[-1]:.12f}")

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4), layout="constrained")
    axes[0].plot(x, y, "o", markersize=4, label="data")
    grid = np.linspace(0, 2, 2)
    axes[0].plot(grid, w0 + w1 * grid, label=f"fit: y = {w0:.2f} + {w1:.2f} x")
    axes[0].set_xlabel("x")
    axes[0].set_ylabel("y")
    axes[0].legend(fontsize=8)
    axes[1].semilogy(np.arange(101), history[:101])
    axes[1].set_xlabel("step")
    axes[1].set_ylabel("J(w0, w1)")
    axes[1].set_title("the first 100 steps", fontsize=10)
    fig.savefig(
        os.path.join(out, "05_linear_regression.png"), dpi=80, bbox_inches="tight"
    )
    plt.close("all")


if __name__ == "__main__":
    main()
