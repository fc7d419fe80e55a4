"""fastgd.plotting: each function draws the expected artists, headless (Agg)."""

import subprocess
import sys

import numpy as np
import pytest

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")

import matplotlib.pyplot as plt
from matplotlib.contour import ContourSet
from matplotlib.quiver import Quiver

from fastgd import (
    LinearRegression,
    minimize,
    plotting,
)


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def quartic(x):
    return 0.5 * x**4 - 4 * x**3 + 10 * x**2 - 7 * x + 2


def bowl(x):
    return x[0] ** 2 + 3 * x[1] ** 2


def bowl_grad(x):
    return np.array([2 * x[0], 6 * x[1]])


def artists(ax, kind):
    return [c for c in ax.collections if isinstance(c, kind)]


# ----------------------------------------------------------------------------------
# plot_path


def test_plot_path_one_variable():
    res = minimize(quartic, 5.0, learning_rate=0.1)
    ax = plotting.plot_path(quartic, res)
    curve, path = ax.lines[:2]
    # the curve is f over the window, which covers every iterate
    np.testing.assert_allclose(
        curve.get_ydata(), quartic(curve.get_xdata()), rtol=1e-12
    )
    lo, hi = ax.get_xlim()
    assert lo < res.path.min() and res.path.max() < hi
    # the iterates, in order, at their values
    np.testing.assert_array_equal(path.get_xdata(), res.path)
    np.testing.assert_array_equal(path.get_ydata(), res.fun_path)
    # numbered from 0; iterates crowded together near the minimum are not all numbered
    numbers = [int(t.get_text()) for t in ax.texts]
    assert numbers[:2] == [0, 1]
    assert numbers == sorted(numbers) and len(numbers) < min(res.nit + 1, 12)
    for t in ax.texts:
        k = int(t.get_text())
        assert t.xy == (res.path[k], res.fun_path[k])


def test_plot_path_one_variable_shape_1_and_numbered():
    # x0 of shape (1,) is also one variable; numbered=0 writes no numbers
    res = minimize(lambda x: x[0] ** 2, [4.0], learning_rate=0.1, max_iter=5, tol=0.0)
    ax = plotting.plot_path(lambda x: x[0] ** 2, res, numbered=0)
    assert len(ax.texts) == 0
    np.testing.assert_allclose(
        ax.lines[1].get_xdata(), 4.0 * 0.8 ** np.arange(6), rtol=1e-12
    )
    ax = plotting.plot_path(lambda x: x[0] ** 2, res, numbered=3, xlim=(0, 6))
    assert [t.get_text() for t in ax.texts] == ["0", "1", "2"]
    assert ax.get_xlim() == (0.0, 6.0)


def test_plot_path_two_variables_contours_and_arrows():
    res = minimize(bowl, [-3.0, 2.0], jac=bowl_grad, learning_rate=0.1, max_iter=15)
    ax = plotting.plot_path(bowl, res, levels=10)
    (contours,) = artists(ax, ContourSet)
    assert 2 <= len(contours.levels) <= 10
    (arrows,) = artists(ax, Quiver)
    # one arrow per step, from each iterate to the next
    assert arrows.N == res.nit == 15
    np.testing.assert_allclose(arrows.X, res.path[:-1, 0])
    np.testing.assert_allclose(arrows.Y, res.path[:-1, 1])
    np.testing.assert_allclose(arrows.U, np.diff(res.path[:, 0]))
    np.testing.assert_allclose(arrows.V, np.diff(res.path[:, 1]))
    # start (circle) and end (star) markers
    markers = [
        (line.get_marker(), tuple(np.ravel(line.get_xydata()))) for line in ax.lines
    ]
    assert ("o", tuple(res.path[0])) in markers
    assert ("*", tuple(res.path[-1])) in markers


def test_plot_path_explicit_levels_and_several_results():
    plain = minimize(bowl, [-3.0, 2.0], jac=bowl_grad, learning_rate=0.1, max_iter=10)
    heavy = minimize(
        bowl, [-3.0, 2.0], jac=bowl_grad, learning_rate=0.05, momentum=0.8, max_iter=10
    )
    _, ax = plt.subplots()
    out = plotting.plot_path(
        bowl, plain, heavy, labels=["plain", "momentum"], ax=ax, levels=[1.0, 4.0, 9.0]
    )
    assert out is ax
    (contours,) = artists(ax, ContourSet)
    np.testing.assert_array_equal(contours.levels, [1.0, 4.0, 9.0])
    assert len(artists(ax, Quiver)) == 2
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["plain", "momentum"]


def test_plot_path_accepts_a_plain_array_of_iterates():
    path = np.array([[1.0, 1.0], [0.5, 0.2], [0.1, 0.0]])
    ax = plotting.plot_path(bowl, path)
    (arrows,) = artists(ax, Quiver)
    assert arrows.N == 2


@pytest.mark.parametrize(
    "call, error, match",
    [
        (lambda: plotting.plot_path(3, np.zeros((2, 2))), TypeError, "callable"),
        (lambda: plotting.plot_path(bowl), ValueError, "at least one result"),
        (
            lambda: plotting.plot_path(np.sum, np.zeros((2, 3))),
            ValueError,
            "one or two",
        ),
        (
            lambda: plotting.plot_path(bowl, np.zeros((2, 2)), labels=["a", "b"]),
            ValueError,
            "labels",
        ),
        (
            lambda: plotting.plot_path(bowl, np.zeros((2, 2)), xlim=(1, 0)),
            ValueError,
            "xlim",
        ),
        (
            lambda: plotting.plot_path(bowl, np.zeros((2, 2)), ylim="wide"),
            ValueError,
            "ylim",
        ),
        (
            lambda: plotting.plot_path(bowl, np.zeros((2, 2)), np.zeros((2, 1))),
            ValueError,
            "different shapes",
        ),
        (
            lambda: plotting.plot_path(lambda x: x, np.zeros((2, 2))),
            ValueError,
            "f must return a scalar",
        ),
        (
            lambda: plotting.plot_path(bowl, np.zeros((2, 2)), resolution=1),
            ValueError,
            "resolution",
        ),
    ],
)
def test_plot_path_errors(call, error, match):
    with pytest.raises(error, match=match):
        call()


# ----------------------------------------------------------------------------------
# plot_gradient_field


@pytest.mark.parametrize("jac", [bowl_grad, None])
def test_plot_gradient_field_arrows_are_minus_the_gradient(jac):
    ax = plotting.plot_gradient_field(bowl, (-2, 2), (-1, 3), jac=jac, density=5)
    (field,) = artists(ax, Quiver)
    assert field.N == 25
    X, Y = np.asarray(field.X), np.asarray(field.Y)
    assert sorted(set(np.round(X, 12))) == [-2.0, -1.0, 0.0, 1.0, 2.0]
    assert sorted(set(np.round(Y, 12))) == [-1.0, 0.0, 1.0, 2.0, 3.0]
    np.testing.assert_allclose(field.U, -2 * X, atol=1e-9)
    np.testing.assert_allclose(field.V, -6 * Y, atol=1e-9)
    assert len(artists(ax, ContourSet)) == 1
    assert ax.get_xlim() == (-2.0, 2.0) and ax.get_ylim() == (-1.0, 3.0)


def test_plot_gradient_field_without_contours_and_errors():
    ax = plotting.plot_gradient_field(bowl, (-1, 1), (-1, 1), contours=False)
    assert artists(ax, ContourSet) == []
    assert len(artists(ax, Quiver)) == 1
    with pytest.raises(ValueError, match="ylim"):
        plotting.plot_gradient_field(bowl, (-1, 1), (2, 2))
    with pytest.raises(ValueError, match="density"):
        plotting.plot_gradient_field(bowl, (-1, 1), (-1, 1), density=1)
    with pytest.raises(ValueError, match=r"shape \(2,\)"):
        plotting.plot_gradient_field(bowl, (-1, 1), (-1, 1), jac=lambda x: np.zeros(3))
    with pytest.raises(TypeError, match="jac must be callable"):
        plotting.plot_gradient_field(bowl, (-1, 1), (-1, 1), jac=True)


# ----------------------------------------------------------------------------------
# plot_learning_rates


def test_plot_learning_rates_two_variables():
    # curvatures 2 and 6: learning rates above 2/6 diverge
    rates = [0.01, 0.1, 0.3, 0.4]
    fig = plotting.plot_learning_rates(
        bowl, [-3.0, 2.0], rates, jac=bowl_grad, max_iter=150
    )
    assert len(fig.axes) == 4
    titles = [ax.get_title() for ax in fig.axes]
    assert titles[0].startswith("η = 0.01: f = ")  # still crawling after 150 steps
    assert "converged in" in titles[1] and "converged in" in titles[2]
    assert "diverged after" in titles[3]
    for ax, lr in zip(fig.axes, rates):
        (arrows,) = artists(ax, Quiver)
        expected = minimize(
            bowl, [-3.0, 2.0], jac=bowl_grad, learning_rate=lr, max_iter=150
        )
        assert arrows.N == expected.nit
        assert len(artists(ax, ContourSet)) == 1
    # one common window, which the diverging path leaves
    assert len({ax.get_xlim() for ax in fig.axes}) == 1
    assert len({ax.get_ylim() for ax in fig.axes}) == 1
    lo, hi = fig.axes[3].get_ylim()
    diverged = minimize(
        bowl, [-3.0, 2.0], jac=bowl_grad, learning_rate=0.4, max_iter=150
    )
    assert np.abs(diverged.path[:, 1]).max() > 100 * max(abs(lo), abs(hi))


def test_plot_learning_rates_one_variable_and_growing_title():
    fig = plotting.plot_learning_rates(
        quartic, 4.0, [0.1, 0.2], max_iter=40, numbered=3
    )
    assert len(fig.axes) == 2
    assert "converged in" in fig.axes[0].get_title()
    assert fig.axes[0].get_xlim() == fig.axes[1].get_xlim()
    fig = plotting.plot_learning_rates(lambda x: x**2, 1.0, 1.1, max_iter=5)
    # |1 - 2 * 1.1| = 1.2 > 1: f grows by 1.44 a step, not yet past the divergence bound
    assert (
        fig.axes[0].get_title() == f"η = 1.1: growing: f = {1.44**5:.3g} after 5 steps"
    )


def test_plot_learning_rates_errors():
    with pytest.raises(ValueError, match="at least one"):
        plotting.plot_learning_rates(bowl, [1.0, 1.0], [])
    with pytest.raises(ValueError, match="learning_rate must be > 0"):
        plotting.plot_learning_rates(bowl, [1.0, 1.0], [0.1, 0.0])


# ----------------------------------------------------------------------------------
# plot_loss_curve


@pytest.fixture(scope="module")
def fitted():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 3))
    y = X @ np.array([1.0, -2.0, 0.5]) + 0.1 * rng.normal(size=60)
    models = [
        LinearRegression(
            batch_size=b, max_iter=8, tol=None, random_state=0, backend="numpy"
        ).fit(X, y)
        for b in ("full", 1)
    ]
    return models


def test_plot_loss_curve_per_epoch(fitted):
    ax = plotting.plot_loss_curve(*fitted)
    assert len(ax.lines) == 2
    for line, model in zip(ax.lines, fitted):
        np.testing.assert_array_equal(line.get_xdata(), np.arange(1, 9))
        np.testing.assert_array_equal(line.get_ydata(), model.loss_curve_)
    # default labels: what differs between the estimators
    assert [t.get_text() for t in ax.get_legend().get_texts()] == [
        "batch_size='full'",
        "batch_size=1",
    ]
    assert ax.get_yscale() == "log" and ax.get_xlabel() == "epoch"


def test_plot_loss_curve_per_second(fitted):
    _, ax = plt.subplots()
    out = plotting.plot_loss_curve(
        *fitted, x="time", labels=["batch", "SGD"], ax=ax, logy=False
    )
    assert out is ax
    for line, model in zip(ax.lines, fitted):
        np.testing.assert_array_equal(line.get_xdata(), model.time_curve_)
        np.testing.assert_array_equal(line.get_ydata(), model.loss_curve_)
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["batch", "SGD"]
    assert ax.get_yscale() == "linear"


def test_plot_loss_curve_single_estimator_label(fitted):
    ax = plotting.plot_loss_curve(fitted[0])
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["LinearRegression"]


def test_plot_loss_curve_errors(fitted):
    with pytest.raises(ValueError, match="at least one"):
        plotting.plot_loss_curve()
    with pytest.raises(ValueError, match='"epoch" or "time"'):
        plotting.plot_loss_curve(*fitted, x="step")
    with pytest.raises(ValueError, match="fit it first"):
        plotting.plot_loss_curve(fitted[0], LinearRegression())
    with pytest.raises(ValueError, match="labels"):
        plotting.plot_loss_curve(*fitted, labels=["only one"])


# ----------------------------------------------------------------------------------
# matplotlib is optional and imported late


def test_importing_fastgd_plotting_does_not_import_matplotlib():
    code = (
        "import sys, fastgd.plotting, fastgd.optimize; "
        "assert 'matplotlib' not in sys.modules, 'matplotlib imported'; "
        "assert 'scipy' not in sys.modules, 'scipy imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_missing_matplotlib_says_how_to_install(monkeypatch):
    # a None entry in sys.modules makes "import matplotlib.pyplot" raise ImportError
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    with pytest.raises(ImportError, match=r'pip install "fastgd\[plot\]"'):
        plotting.plot_path(bowl, np.zeros((2, 2)))
