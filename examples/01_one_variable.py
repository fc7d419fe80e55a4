r"""Gradient descent on a function of one variable
===============================================

:math:`f(x) = 0.5 x^4 - 4 x^3 + 10 x^2 - 7 x + 2` has two minima: a local one near
x = 3.27 and the global one near x = 0.47, separated by a local maximum near x = 2.26.
The script first shows the derivative as the limit of secant slopes, then where
gradient descent ends from x0 = 4 (learning rates 0.1 and 0.2) and from x0 = 5. Where
it ends depends on the start and on the learning rate: the first step decides which
valley (basin) the iterates fall into.

Run it as ``python examples/01_one_variable.py [output directory]``; it writes
``01_derivative.png`` and ``01_one_variable.png``.
"""
import os

import matplotlib.pyplot as plt
import numpy as np
from _common import output_dir

from fastgd import minimize, numerical_gradient
from fastgd.plotting import plot_path

COEFFS = [0.5, -4.0, 10.0, -7.0, 2.0]  # highest power first, as numpy.polyval wants


def f(x):
    return np.polyval(COEFFS, x)


def fprime(x):
    return np.polyval(np.polyder(COEFFS), x)


def fsecond(x):
    return np.polyval(np.polyder(COEFFS, 2), x)


def main():
    out = output_dir()
    plt.switch_backend("Agg")

    # The derivative is the limit of secant slopes: (f(x + h) - f(x)) / h as h -> 0.
    x = 4.0
    print(f"derivative at x = {x}: exact f'(x) = {fprime(x):.12g}")
    for h in (1.0, 0.1, 0.01, 0.001):
        print(f"  secant slope with h = {h:g}: {(f(x + h) - f(x)) / h:.12g}")
    print(f"  numerical_gradient: {float(numerical_gradient(f, x)):.12g}")

    # Where f' = 0: minima where f'' > 0, maxima where f'' < 0.
    critical = np.sort(np.roots(np.polyder(COEFFS)).real)
    for c in critical:
        kind = "minimum" if fsecond(c) > 0 else "maximum"
        print(
            f"critical point x = {c:.12g}: f = {f(c):.12g}, f'' = {fsecond(c):.6g} ({kind})"
        )
    minima = [c for c in critical if fsecond(c) > 0]
    best = min(minima, key=f)
    peak = next(c for c in critical if fsecond(c) < 0)

    runs = [(4.0, 0.1), (4.0, 0.2), (5.0, 0.1)]
    results = []
    for x0, lr in runs:
        res = minimize(f, x0, jac=fprime, learning_rate=lr, max_iter=5000)
        results.append(res)
        end = float(res.x)
        which = "global" if np.isclose(end, best, atol=1e-6) else "local"
        x1 = float(res.path[1])
        side = "left" if x1 < peak else "right"
        print(
            f"start {x0:g}, learning rate {lr:g}: ends at x = {end:.12g}, f = {res.fun:.12g}"
            f" ({which} minimum) after {res.nit} steps, success = {res.success}"
        )
        print(
            f"  why: the first step goes from {x0:g} to {x1:.6g}, {side} of the local"
            f" maximum at {peak:.6g}, into the {which} minimum's valley; there"
            f" learning rate * f'' = {lr * fsecond(end):.4g} (below 2, so the minimum is"
            " stable; close to 2, the iterates zig-zag around it and converge slowly)"
        )

    # Picture 1: secant lines approaching the tangent at x = 4.
    fig, ax = plt.subplots(figsize=(5, 3.6))
    grid = np.linspace(2.5, 5.2, 300)
    ax.plot(grid, f(grid), color="0.3", label="f")
    for h in (1.0, 0.5, 0.2):
        slope = (f(x + h) - f(x)) / h
        ax.plot(
            grid,
            f(x) + slope * (grid - x),
            "--",
            linewidth=0.9,
            label=f"secant, h = {h:g}",
        )
    ax.plot(
        grid,
        f(x) + fprime(x) * (grid - x),
        linewidth=1.5,
        label=f"tangent, slope {fprime(x):g}",
    )
    ax.plot([x], [f(x)], "ko")
    ax.set_ylim(0, 16)
    ax.set_xlabel("x")
    ax.legend(fontsize=8)
    ax.set_title("The derivative: the limit of secant slopes", fontsize=10)
    fig.tight_layout()
    fig.savefig(os.path.join(out, "01_derivative.png"), dpi=90, bbox_inches="tight")

    # Picture 2: the three runs.
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.6), layout="constrained")
    for ax, (x0, lr), res in zip(axes, runs, results):
        plot_path(f, res, ax=ax, xlim=(-0.3, 5.3), ylim=(-1, 31))
        ax.set_title(
            f"x0 = {x0:g}, η = {lr:g}: ends at {float(res.x):.4f}", fontsize=10
        )
    fig.savefig(os.path.join(out, "01_one_variable.png"), dpi=90, bbox_inches="tight")
    plt.close("all")


if __name__ == "__main__":
    main()
