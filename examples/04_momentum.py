r"""Momentum
========

Part 1, a long narrow valley: :math:`f(x) = 0.5 (x_0^2 + 25 x_1^2)` from (-10, 1.5).
Plain gradient descent needs a learning rate below 2/25 for the steep :math:`x_1`
direction, so it bounces between the valley walls while crawling along the shallow
:math:`x_0` direction. With momentum the velocity :math:`v \leftarrow \mu v + g`
averages the gradients: the bounces cancel, the steady pull along the valley adds up,
and the path is smoother and shorter.

Part 2, a shallow local minimum: :math:`f(x) = 0.5 x^4 - 4 x^3 + 10 x^2 - 7 x + 2`
(the first example) from x = 4. Plain gradient descent stops in the local minimum near
3.27; with momentum 0.9 the iterate keeps enough speed to roll over the bump at 2.26
and settles in the global minimum near 0.47.

Run it as ``python examples/04_momentum.py [output directory]``; it writes
``04_momentum_valley.png`` and ``04_momentum_local_minimum.png``.
"""
import os

import matplotlib.pyplot as plt
import numpy as np
from _common import output_dir

from fastgd import minimize
from fastgd.plotting import plot_path

CURVATURES = np.array([1.0, 25.0])
COEFFS = [0.5, -4.0, 10.0, -7.0, 2.0]


def valley(x):
    return 0.5 * np.sum(CURVATURES * x**2)


def valley_grad(x):
    return CURVATURES * x


def bumpy(x):
    return np.polyval(COEFFS, x)


def bumpy_grad(x):
    return np.polyval(np.polyder(COEFFS), x)


def report(name, res):
    x = np.atleast_1d(res.x)
    print(
        f"{name}: {res.nit} steps, x = [{', '.join(f'{v:.12g}' for v in x)}],"
        f" f = {res.fun:.12g}, success = {res.success}"
    )


def main():
    out = output_dir()
    plt.switch_backend("Agg")

    x0 = np.array([-10.0, 1.5])
    runs = {
        "valley, plain (learning rate 0.075)": {"learning_rate": 0.075},
        "valley, momentum 0.7 (learning rate 0.03)": {
            "learning_rate": 0.03,
            "momentum": 0.7,
        },
        "valley, Nesterov 0.7 (learning rate 0.03)": {
            "learning_rate": 0.03,
            "momentum": 0.7,
            "nesterov": True,
        },
    }
    valley_results = {}
    for name, kwargs in runs.items():
        res = minimize(valley, x0, jac=valley_grad, max_iter=2000, **kwargs)
        valley_results[name] = res
        report(name, res)

    first_two = list(valley_results.values())[:2]
    fig, axes = plt.subplots(1, 2, figsize=(10, 2.6), layout="constrained")
    for ax, res, title in zip(
        axes, first_two, ["plain gradient descent", "momentum 0.7"]
    ):
        plot_path(valley, res, ax=ax, xlim=(-11, 1.5), ylim=(-2, 2), levels=12)
        ax.set_title(f"{title}: {res.nit} steps", fontsize=10)
    fig.savefig(
        os.path.join(out, "04_momentum_valley.png"), dpi=80, bbox_inches="tight"
    )

    plain = minimize(bumpy, 4.0, jac=bumpy_grad, learning_rate=0.03, max_iter=2000)
    heavy = minimize(
        bumpy, 4.0, jac=bumpy_grad, learning_rate=0.03, momentum=0.9, max_iter=2000
    )
    report("bump, plain (learning rate 0.03)", plain)
    report("bump, momentum 0.9 (learning rate 0.03)", heavy)
    ax = plot_path(
        bumpy,
        plain,
        heavy,
        labels=["plain", "momentum 0.9"],
        xlim=(-0.3, 4.3),
        ylim=(-0.5, 8),
        numbered=0,
    )
    ax.set_title("Momentum rolls past the shallow minimum", fontsize=10)
    ax.figure.savefig(
        os.path.join(out, "04_momentum_local_minimum.png"), dpi=80, bbox_inches="tight"
    )
    plt.close("all")


if __name__ == "__main__":
    main()
