r"""A two-layer neural network trained by gradient descent
=======================================================

Network: 2 inputs, 10 tanh units, 1 sigmoid output, on scikit-learn's ``make_moons``.
Loss: binary cross-entropy, averaged over the 200 points. The gradient with respect to
all 41 weights comes from backpropagation (the chain rule, applied from the output
back), checked against :func:`fastgd.numerical_gradient`, and
:func:`fastgd.minimize` with ``jac=True`` trains the network by full-batch gradient
descent with momentum. The picture shows the decision boundary.

Run it as ``python examples/07_neural_network.py [output directory]``; it writes
``07_decision_boundary.png`` and ``07_weights.npz`` (the trained weights, packed).
"""
import os

import matplotlib.pyplot as plt
import numpy as np
from _common import output_dir
from sklearn.datasets import make_moons

from fastgd import minimize, numerical_gradient

HIDDEN = 10


def unpack(theta):
    """Split the flat parameter vector into W1 (2, H), b1 (H,), w2 (H,), b2 ()."""
    h = HIDDEN
    W1 = theta[: 2 * h].reshape(2, h)
    b1 = theta[2 * h : 3 * h]
    w2 = theta[3 * h : 4 * h]
    b2 = theta[4 * h]
    return W1, b1, w2, b2


def forward(theta, X):
    """Hidden activations and output logits."""
    W1, b1, w2, b2 = unpack(theta)
    hidden = np.tanh(X @ W1 + b1)
    return hidden, hidden @ w2 + b2


def loss(theta, X, y):
    _, z = forward(theta, X)
    # binary cross-entropy of sigmoid(z), written stably: log(1 + e^z) - y z
    return np.mean(np.logaddexp(0.0, z) - y * z)


def loss_and_grad(theta, X, y):
    """The loss and its gradient by backpropagation."""
    w2 = unpack(theta)[2]
    n = len(y)
    hidden, z = forward(theta, X)
    value = np.mean(np.logaddexp(0.0, z) - y * z)
    dz = (1.0 / (1.0 + np.exp(-z)) - y) / n  # d loss / d z_i
    d_w2 = hidden.T @ dz
    d_b2 = dz.sum()
    d_pre = np.outer(dz, w2) * (1.0 - hidden**2)  # back through tanh
    d_W1 = X.T @ d_pre
    d_b1 = d_pre.sum(axis=0)
    return value, np.concatenate([d_W1.ravel(), d_b1, d_w2, [d_b2]])


def relative_error(a, b):
    return np.linalg.norm(a - b) / max(np.linalg.norm(a), np.linalg.norm(b))


def main():
    out = output_dir()
    plt.switch_backend("Agg")
    X, y = make_moons(n_samples=200, noise=0.2, random_state=0)
    y = y.astype(float)
    theta0 = np.random.default_rng(0).normal(scale=0.5, size=4 * HIDDEN + 1)
    print(f"parameters: {theta0.size}")

    # Gradient check: backpropagation against central differences.
    _, backprop = loss_and_grad(theta0, X, y)
    numeric = numerical_gradient(loss, theta0, args=(X, y))
    print(f"gradient check: relative error {relative_error(backprop, numeric):.3e}")

    res = minimize(
        loss_and_grad,
        theta0,
        args=(X, y),
        jac=True,
        learning_rate=0.5,
        momentum=0.9,
        max_iter=500,
        tol=1e-6,
    )
    _, z = forward(res.x, X)
    accuracy = np.mean((z > 0) == (y == 1))
    print(
        f"trained: {res.nit} steps, loss {res.fun:.10f} (from {res.fun_path[0]:.10f})"
    )
    print(f"training accuracy: {accuracy:.4f}")
    np.savez(os.path.join(out, "07_weights.npz"), theta=res.x, hidden=HIDDEN)

    fig, axes = plt.subplots(1, 2, figsize=(10, 4), layout="constrained")
    xx, yy = np.meshgrid(np.linspace(-1.7, 2.7, 200), np.linspace(-1.3, 1.8, 160))
    _, grid_z = forward(res.x, np.column_stack([xx.ravel(), yy.ravel()]))
    prob = (1.0 / (1.0 + np.exp(-grid_z))).reshape(xx.shape)
    axes[0].contourf(
        xx, yy, prob, levels=np.linspace(0, 1, 11), cmap="RdBu_r", alpha=0.35
    )
    axes[0].contour(xx, yy, prob, levels=[0.5], colors="k", linewidths=1.5)
    for label, color in ((0, "tab:blue"), (1, "tab:red")):
        mask = y == label
        axes[0].scatter(
            X[mask, 0],
            X[mask, 1],
            color=color,
            edgecolors="k",
            s=18,
            label=f"class {label}",
        )
    axes[0].legend(fontsize=8, loc="lower left")
    axes[0].set_title(
        f"decision boundary (training accuracy {accuracy:.1%})", fontsize=10
    )
    axes[1].semilogy(res.fun_path)
    axes[1].set_xlabel("step")
    axes[1].set_ylabel("cross-entropy")
    axes[1].set_title("training loss", fontsize=10)
    fig.savefig(
        os.path.join(out, "07_decision_boundary.png"), dpi=80, bbox_inches="tight"
    )
    plt.close("all")


if __name__ == "__main__":
    main()
