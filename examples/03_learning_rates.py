r"""Learning rates: too small, about right, too large, far too large
=================================================================

:math:`f(x) = 0.5 (x_0^2 + 4 x_1^2)` from (-4, 3). Its curvatures are 1 along
:math:`x_0` and 4 along :math:`x_1`, so a gradient step with learning rate
:math:`\eta` multiplies :math:`x_0` by :math:`1 - \eta` and :math:`x_1` by
:math:`1 - 4\eta`. The iterates shrink when both factors lie in (-1, 1), that is
:math:`\eta < 2/4`:

- :math:`\eta` = 0.02: factors 0.98 and 0.92, a slow crawl;
- :math:`\eta` = 0.25: 0.75 and 0: :math:`x_1` is solved in one step, :math:`x_0`
  follows quickly;
- :math:`\eta` = 0.45: 0.55 and -0.8: :math:`x_1` overshoots the valley floor at every
  step (zig-zag);
- :math:`\eta` = 0.55: 0.45 and -1.2: each overshoot is larger than the last, the run
  diverges.

Run it as ``python examples/03_learning_rates.py [output directory]``; it writes
``03_learning_rates.png``.
"""
import os

import matplotlib.pyplot as plt
import numpy as np
from _common import output_dir

from fastgd import minimize
from fastgd.plotting import plot_learning_rates

CURVATURES = np.array([1.0, 4.0])
RATES = [0.02, 0.25, 0.45, 0.55]
MAX_ITER = 100


def f(x):
    return 0.5 * np.sum(CURVATURES * x**2)


def grad(x):
    return CURVATURES * x


def main():
    out = output_dir()
    plt.switch_backend("Agg")
    x0 = np.array([-4.0, 3.0])
    for lr in RATES:
        res = minimize(f, x0, jac=grad, learning_rate=lr, max_iter=MAX_ITER)
        factors = 1 - lr * CURVATURES
        print(
            f"learning rate {lr:g}: factors per step {factors[0]:.3g} and {factors[1]:.3g};"
            f" status {res.status}, {res.nit} steps, x = [{res.x[0]:.12e}, {res.x[1]:.12e}],"
            f" f = {res.fun:.12e}"
        )
        print(f"  {res.message}")

    fig = plot_learning_rates(f, x0, RATES, jac=grad, max_iter=MAX_ITER)
    fig.savefig(os.path.join(out, "03_learning_rates.png"), dpi=80, bbox_inches="tight")
    plt.close("all")


if __name__ == "__main__":
    main()
