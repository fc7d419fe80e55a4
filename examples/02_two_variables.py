r"""Gradient descent on a function of two variables
================================================

:math:`f(x_0, x_1) = x_0^2 + x_1^2`, started at (-3, 4). The gradient is the vector of
partial derivatives, :math:`(2 x_0, 2 x_1)`; a step moves against it. With learning rate
0.1 each step multiplies x by 1 - 2 * 0.1 = 0.8, so the iterates run straight to the
minimum at 0. The numerical gradient (:func:`fastgd.numerical_gradient`) is compared
with the analytic one, and the field of :math:`-\nabla f` is drawn.

Run it as ``python examples/02_two_variables.py [output directory]``; it writes
``02_path.png`` and ``02_gradient_field.png``.
"""
import os

import matplotlib.pyplot as plt
import numpy as np
from _common import output_dir

from fastgd import minimize, numerical_gradient
from fastgd.plotting import plot_gradient_field, plot_path


def f(x):
    return x[0] ** 2 + x[1] ** 2


def grad(x):
    return np.array([2.0 * x[0], 2.0 * x[1]])


def main():
    out = output_dir()
    plt.switch_backend("Agg")
    x0 = np.array([-3.0, 4.0])

    numeric = numerical_gradient(f, x0)
    exact = grad(x0)
    print(
        f"gradient at {x0.tolist()}: analytic {exact.tolist()}, numerical {numeric.tolist()}"
    )
    print(f"largest difference: {np.max(np.abs(numeric - exact)):.3e}")

    res_numeric = minimize(f, x0, learning_rate=0.1)  # jac=None: numerical gradient
    res_exact = minimize(f, x0, jac=grad, learning_rate=0.1)
    for name, res in (("numerical", res_numeric), ("analytic", res_exact)):
        print(
            f"{name} gradient: x = [{res.x[0]:.12e}, {res.x[1]:.12e}], f = {res.fun:.12e},"
            f" {res.nit} steps, success = {res.success}"
        )
    steps = min(res_numeric.nit, res_exact.nit) + 1
    gap = np.max(np.abs(res_numeric.path[:steps] - res_exact.path[:steps]))
    print(f"largest difference between the two paths: {gap:.3e}")
    for k in (1, 2, 3):
        print(f"iterate {k}: {res_exact.path[k].tolist()}")

    ax = plot_path(f, res_exact)
    ax.set_title("x0² + x1² from (-3, 4), learning rate 0.1", fontsize=10)
    ax.figure.savefig(os.path.join(out, "02_path.png"), dpi=90, bbox_inches="tight")

    ax = plot_gradient_field(f, (-5, 5), (-5, 5), jac=grad, density=13)
    ax.plot(res_exact.path[:, 0], res_exact.path[:, 1], ".-", color="C1", label="path")
    ax.legend(fontsize=8)
    ax.set_title("-∇f points straight downhill, across the contour lines", fontsize=10)
    ax.figure.savefig(
        os.path.join(out, "02_gradient_field.png"), dpi=90, bbox_inches="tight"
    )
    plt.close("all")


if __name__ == "__main__":
    main()
