r"""Batch vs stochastic vs mini-batch gradient descent
===================================================

The same least-squares problem (2000 rows, 10 features) is fitted three ways for 20
epochs (passes over the data) each, without momentum and with fastgd's default step
size for each batch size:

- batch (full) gradient descent: one step per epoch, on the exact gradient;
- mini-batch: a step per 32 rows, 63 per epoch, on a noisy estimate of the gradient;
- SGD: a step per row, 2000 per epoch, on a very noisy estimate.

Many cheap noisy steps get close to the optimum within the first epoch; batch gradient
descent needs several epochs, but then converges exactly, while the gradient noise
keeps mini-batch and SGD hovering above the optimum (a constant step never averages it
out). The training curves (:func:`fastgd.plotting.plot_loss_curve`) show the objective
per epoch and per second.

Run it as ``python examples/06_batch_sgd_minibatch.py [output directory]``; it writes
``06_loss_curves.png``.
"""
import os

import matplotlib.pyplot as plt
import numpy as np
from _common import output_dir
from sklearn.datasets import make_regression

from fastgd import LinearRegression
from fastgd.plotting import plot_loss_curve

EPOCHS = 20


def make_data():
    return make_regression(n_samples=2000, n_features=10, noise=10.0, random_state=0)


def main():
    out = output_dir()
    plt.switch_backend("Agg")
    X, y = make_data()

    # The optimum, from the closed form: half the mean squared residual of least squares.
    design = np.column_stack([np.ones(len(X)), X])
    w, *_ = np.linalg.lstsq(design, y, rcond=None)
    optimum = 0.5 * np.mean((design @ w - y) ** 2)
    print(f"optimal objective (least squares): {optimum:.10f}")

    models = {}
    for name, batch_size in (("batch", "full"), ("mini-batch", 32), ("SGD", 1)):
        settings = {
            "batch_size": batch_size,
            "momentum": 0.0,
            "penalty": None,
            "tol": None,
        }
        # warm-up: the first fit in a process loads the compiled kernels; keep that out
        # of the timings
        LinearRegression(**settings, max_iter=1).fit(X[:50], y[:50])
        model = LinearRegression(**settings, max_iter=EPOCHS, random_state=0).fit(X, y)
        models[name] = model
        print(
            f"{name}: batch_size = {batch_size}, {model.n_iter_} epochs, {model.t_} steps,"
            f" objective = {model.objective(X, y):.10f},"
            f" {model.time_curve_[-1]:.3f} s in epochs"
        )

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6), layout="constrained")
    labels = list(models)
    plot_loss_curve(*models.values(), x="epoch", labels=labels, ax=axes[0])
    plot_loss_curve(*models.values(), x="time", labels=labels, ax=axes[1])
    axes[0].set_title("objective per epoch", fontsize=10)
    axes[1].set_title("objective per second", fontsize=10)
    fig.savefig(os.path.join(out, "06_loss_curves.png"), dpi=80, bbox_inches="tight")
    plt.close("all")


if __name__ == "__main__":
    main()
