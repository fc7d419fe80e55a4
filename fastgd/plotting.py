"""Pictures of gradient descent (needs matplotlib: ``pip install "fastgd[plot]"``).

- :func:`plot_path`: the iterates of :func:`fastgd.minimize` on the function: for one
  variable the curve with the numbered iterates, for two the contour lines with the path
  drawn as arrows.
- :func:`plot_gradient_field`: the field of ``-grad f`` (the direction a step takes).
- :func:`plot_learning_rates`: one start, several learning rates, side by side.
- :func:`plot_loss_curve`: training curves (``loss_curve_``) of fitted fastgd estimators,
  per epoch or per second.

Every function returns the matplotlib ``Axes`` (or ``Figure``) it drew on, so the
picture can be adjusted, saved with ``savefig`` or shown. Nothing here needs a display:
with the ``Agg`` backend (``MPLBACKEND=Agg``) everything works headless. matplotlib is
imported on the first call, not when this module is imported.
"""

import math

import numpy as np

from .optimize import CONVERGED, DIVERGED, _scalar_value, minimize, numerical_gradient

__all__ = ["plot_gradient_field", "plot_learning_rates", "plot_loss_curve", "plot_path"]

# how many iterates get a number in a 1-D picture (more would be unreadable)
MAX_NUMBERED = 12


def _pyplot():
    try:
        import matplotlib.pyplot as plt
    except ImportError as exc:  # pragma: no cover - exercised by hiding matplotlib
        raise ImportError(
            'fastgd.plotting needs matplotlib; install it with: pip install "fastgd[plot]"'
        ) from exc
    return plt


def _new_axes(ax):
    if ax is None:
        _, ax = _pyplot().subplots()
    return ax


def _check_callable(f, name="f"):
    if not callable(f):
        raise TypeError(f"{name} must be callable, got {type(f).__name__}")


def _check_int(value, name, low):
    """``value`` if it is an int >= ``low`` (not a bool); else a ValueError naming it."""
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, np.integer))
        or value < low
    ):
        raise ValueError(f"{name} must be an int >= {low}, got {value!r}")
    return value


def _check_limits(lim, name):
    """(lo, hi) floats with lo < hi, both finite; else a ValueError naming ``name``."""
    try:
        lo, hi = (float(v) for v in lim)
    except (TypeError, ValueError) as exc:
        raise ValueError(
            f"{name} must be a pair of numbers (low, high), got {lim!r}"
        ) from exc
    if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
        raise ValueError(f"{name} must be finite with low < high, got {lim!r}")
    return lo, hi


def _as_path(result, position):
    """The iterates of ``result`` (an OptimizeResult with ``path``, or an array)."""
    path = getattr(result, "path", result)
    try:
        path = np.asarray(path, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise TypeError(
            f"result {position} must be a minimize() result (with .path) or an array of"
            " iterates"
        ) from exc
    if path.ndim == 0 or path.shape[0] == 0:
        raise ValueError(f"result {position} has an empty path")
    return path


def _dimension(paths):
    """Number of variables (1 or 2) of the paths and the shape ``f`` expects."""
    shapes = {p.shape[1:] for p in paths}
    if len(shapes) != 1:
        raise ValueError(
            f"the results' iterates have different shapes: {sorted(shapes)}"
        )
    (shape,) = shapes
    d = int(np.prod(shape, dtype=int))
    if d not in (1, 2):
        raise ValueError(
            f"plot_path draws functions of one or two variables; these iterates have {d}"
        )
    return d, shape


def _evaluate(f, points, shape, args):
    """f at each row of ``points`` (m, d), called with arrays of ``shape``; NaN where f
    fails to give a finite number (so that contours skip it)."""

    values = np.empty(len(points))
    with np.errstate(all="ignore"):
        for i, p in enumerate(points):
            values[i] = _scalar_value(f(p.reshape(shape).copy(), *args), "f")
    values[~np.isfinite(values)] = np.nan
    return values


def _window(points, pad_fraction=0.15):
    """(lo, hi) around the finite values of ``points`` with some room."""
    points = points[np.isfinite(points)]
    if points.size == 0:
        raise ValueError(
            "nothing finite to draw: f (or the path) is not finite in the window"
        )
    lo, hi = float(points.min()), float(points.max())
    span = hi - lo
    pad = pad_fraction * span if span > 0 else max(1.0, abs(lo) * 0.5)
    return lo - pad, hi + pad


def _contour_levels(Z, n):
    """Levels at quantiles of the grid's values: dense near the minimum, where the
    interesting part of the path usually is, rather than evenly spaced in value."""
    finite = Z[np.isfinite(Z)]
    if finite.size == 0:
        raise ValueError("f is not finite anywhere in the plotted window")
    levels = np.unique(np.quantile(finite, np.linspace(0.0, 1.0, n + 2)[1:-1]))
    return levels if levels.size >= 2 else None


def _contours(ax, f, xlim, ylim, shape, args, levels, resolution, **style):
    xs = np.linspace(*xlim, resolution)
    ys = np.linspace(*ylim, resolution)
    X, Y = np.meshgrid(xs, ys)
    Z = _evaluate(f, np.column_stack([X.ravel(), Y.ravel()]), shape, args).reshape(
        X.shape
    )
    if isinstance(levels, (int, np.integer)) and not isinstance(levels, bool):
        levels = _contour_levels(Z, int(levels))
    style = {"cmap": "viridis", "linewidths": 0.8, **style}
    return ax.contour(X, Y, Z, levels=levels, **style)


def _comparable(xlim, ylim):
    return 0.25 <= (xlim[1] - xlim[0]) / (ylim[1] - ylim[0]) <= 4


def _square_window(xlim, ylim):
    """Widen the narrower of two comparable ranges so the window is square. Ranges more
    than 4:1 apart (a long valley) are left alone."""
    if not _comparable(xlim, ylim):
        return xlim, ylim
    half = max(xlim[1] - xlim[0], ylim[1] - ylim[0]) / 2
    cx, cy = sum(xlim) / 2, sum(ylim) / 2
    return (cx - half, cx + half), (cy - half, cy + half)


def _window_2d(points, xlim, ylim):
    """The window for ``points`` (m, 2): given limits checked, missing ones around the
    points with some room; square (if comparable) when neither is given."""
    if xlim is None and ylim is None:
        return _square_window(_window(points[:, 0]), _window(points[:, 1]))
    xlim = _check_limits(xlim, "xlim") if xlim is not None else _window(points[:, 0])
    ylim = _check_limits(ylim, "ylim") if ylim is not None else _window(points[:, 1])
    return xlim, ylim


def _plane_axes(ax, xlim, ylim):
    """Limits and labels of a picture of the (x[0], x[1]) plane, with equal scales on both
    axes (so the gradient is visibly perpendicular to the contour lines) unless that
    would squash the picture into a strip."""
    ax.set_xlim(*xlim)
    ax.set_ylim(*ylim)
    if _comparable(xlim, ylim):
        ax.set_aspect("equal", adjustable="box")
    ax.set_xlabel("x[0]")
    ax.set_ylabel("x[1]")


def _declutter(points, window):
    """Indices of the points to number: each at least 4% of the window away from every
    point numbered before it (clustered late iterates would overprint each other)."""
    spans = np.array([w[1] - w[0] for w in window])
    chosen = []
    for k, p in enumerate(points):
        if not np.all(np.isfinite(p)):
            continue
        if all(np.max(np.abs(p - points[j]) / spans) >= 0.04 for j in chosen):
            chosen.append(k)
    return chosen


def plot_path(
    f,
    *results,
    args=(),
    labels=None,
    ax=None,
    xlim=None,
    ylim=None,
    levels=15,
    resolution=60,
    numbered=MAX_NUMBERED,
):
    """Draw the iterates of one or more :func:`fastgd.minimize` runs on ``f``.

    One variable: the curve ``f`` with each run's iterates as connected markers, the
    first ``numbered`` of them labelled 0, 1, 2, ... Two variables: contour lines of ``f``
    with each run's path as arrows from iterate to iterate, the start marked by a circle
    and the end by a star.

    Parameters
    ----------
    f : callable
        The function, called as ``f(x, *args)`` with ``x`` shaped like the iterates.
    *results : OptimizeResult or array_like
        Results of :func:`fastgd.minimize` (their ``path``), or arrays of iterates
        ``(k, ...)``. All must have the same number of variables, 1 or 2.
    args : tuple, default=()
        Extra arguments for ``f``.
    labels : list of str, optional
        Legend entries, one per result.
    ax : matplotlib Axes, optional
        Where to draw; a new figure is made if None.
    xlim, ylim : (low, high), optional
        The window. By default it covers every iterate with a margin. ``ylim`` is the
        second variable's range in 2-D and the value range in 1-D. Iterates outside the
        window are clipped (useful when a run diverges).
    levels : int or sequence of float, default=15
        Contour levels in 2-D: a number (placed at quantiles of ``f`` over the window,
        so they are dense near the minimum) or explicit values.
    resolution : int, default=60
        Grid points per axis for the contours (``f`` is called ``resolution**2`` times)
        and a multiple of it for the 1-D curve.
    numbered : int, default=12
        In 1-D, the first ``numbered`` iterates get their number written, except those
        that would overprint one already numbered (iterates crowding near a minimum).

    Returns
    -------
    matplotlib.axes.Axes
    """
    _check_callable(f)
    if not results:
        raise ValueError("plot_path needs at least one result to draw")
    if not isinstance(args, tuple):
        args = (args,)
    if labels is not None:
        labels = list(labels)
        if len(labels) != len(results):
            raise ValueError(f"got {len(labels)} labels for {len(results)} results")
    _check_int(resolution, "resolution", 2)
    _check_int(numbered, "numbered", 0)
    paths = [_as_path(r, i) for i, r in enumerate(results)]
    d, shape = _dimension(paths)
    flat = [p.reshape(len(p), d) for p in paths]
    ax = _new_axes(ax)
    colors = _pyplot().rcParams["axes.prop_cycle"].by_key()["color"]

    if d == 1:
        xlim = (
            _check_limits(xlim, "xlim")
            if xlim is not None
            else _window(np.concatenate(flat))
        )
        grid = np.linspace(*xlim, 8 * resolution)
        curve = _evaluate(f, grid[:, None], shape, args)
        ax.plot(grid, curve, color="0.35", linewidth=1.2, label="f(x)")
        ylim = _check_limits(ylim, "ylim") if ylim is not None else _window(curve, 0.08)
        for i, (path, result) in enumerate(zip(flat, results)):
            xs = path[:, 0]
            fun_path = getattr(result, "fun_path", None)
            if fun_path is not None and len(fun_path) == len(xs):
                ys = np.asarray(fun_path, dtype=float)
            else:
                ys = _evaluate(f, path, shape, args)
            color = colors[(i + 1) % len(colors)]
            label = labels[i] if labels else None
            ax.plot(
                xs, ys, "o--", color=color, markersize=4, linewidth=0.8, label=label
            )
            first = np.column_stack([xs[:numbered], ys[:numbered]])
            for k in _declutter(first, (xlim, ylim)):
                ax.annotate(
                    str(k),
                    (xs[k], ys[k]),
                    textcoords="offset points",
                    xytext=(4, 5),
                    fontsize=8,
                    color=color,
                    annotation_clip=True,
                )
        ax.set_xlim(*xlim)
        ax.set_ylim(*ylim)
        ax.set_xlabel("x")
        ax.set_ylabel("f(x)")
    else:
        xlim, ylim = _window_2d(np.concatenate(flat), xlim, ylim)
        _contours(ax, f, xlim, ylim, shape, args, levels, resolution)
        for i, path in enumerate(flat):
            color = colors[(i + 1) % len(colors)]
            label = labels[i] if labels else None
            if len(path) > 1:
                steps = np.diff(path, axis=0)
                ax.quiver(
                    path[:-1, 0],
                    path[:-1, 1],
                    steps[:, 0],
                    steps[:, 1],
                    angles="xy",
                    scale_units="xy",
                    scale=1,
                    color=color,
                    width=0.006,
                    headwidth=4,
                    headlength=5,
                    headaxislength=4.5,
                    label=label,
                )
            ax.plot(*path[0], "o", color=color, markersize=6)
            ax.plot(
                *path[-1],
                "*",
                color=color,
                markersize=11,
                markeredgecolor="k",
                markeredgewidth=0.5,
            )
        _plane_axes(ax, xlim, ylim)
    if labels:
        ax.legend(fontsize=8)
    return ax


def plot_gradient_field(
    f, xlim, ylim, *, jac=None, args=(), ax=None, density=15, contours=True, levels=15
):
    """Arrows of ``-grad f`` on a grid: the direction (and size) of a gradient step.

    Parameters
    ----------
    f : callable
        A function of two variables, ``f(x, *args)`` with ``x`` of shape (2,).
    xlim, ylim : (low, high)
        The window.
    jac : callable, optional
        ``jac(x, *args)``, the gradient; by default :func:`fastgd.numerical_gradient`.
    args : tuple, default=()
    ax : matplotlib Axes, optional
    density : int, default=15
        Arrows per axis.
    contours : bool, default=True
        Also draw contour lines of ``f`` (the arrows cross them at right angles).
    levels : int or sequence of float, default=15
        Contour levels, as in :func:`plot_path`.

    Returns
    -------
    matplotlib.axes.Axes
    """

    _check_callable(f)
    if jac is not None:
        _check_callable(jac, "jac")
    if not isinstance(args, tuple):
        args = (args,)
    xlim = _check_limits(xlim, "xlim")
    ylim = _check_limits(ylim, "ylim")
    _check_int(density, "density", 2)
    ax = _new_axes(ax)
    if contours:
        _contours(ax, f, xlim, ylim, (2,), args, levels, 60, cmap=None, colors="0.75")
    X, Y = np.meshgrid(np.linspace(*xlim, density), np.linspace(*ylim, density))
    G = np.empty(X.shape + (2,))
    for idx in np.ndindex(X.shape):
        point = np.array([X[idx], Y[idx]])
        if jac is None:
            G[idx] = numerical_gradient(f, point, args=args)
        else:
            g = np.asarray(jac(point, *args), dtype=float)
            if g.shape != (2,):
                raise ValueError(
                    f"jac must return an array of shape (2,), got {g.shape}"
                )
            G[idx] = g
    magnitude = np.hypot(G[..., 0], G[..., 1])
    # the longest arrow spans one grid cell: long enough to see, too short to overlap
    cell = min(xlim[1] - xlim[0], ylim[1] - ylim[0]) / (density - 1)
    biggest = float(np.max(magnitude))
    scale = biggest / cell if biggest > 0 else 1.0
    ax.quiver(
        X,
        Y,
        -G[..., 0],
        -G[..., 1],
        magnitude,
        angles="xy",
        scale_units="xy",
        scale=scale,
        cmap="plasma",
        pivot="tail",
        width=0.004,
    )
    _plane_axes(ax, xlim, ylim)
    ax.set_title("-∇f")
    return ax


def _outcome(res):

    if res.status == CONVERGED:
        return f"converged in {res.nit} steps"
    if res.status == DIVERGED:
        return f"diverged after {res.nit} steps"
    if res.fun > res.fun_path[0]:
        return f"growing: f = {res.fun:.3g} after {res.nit} steps"
    return f"f = {res.fun:.3g} after {res.nit} steps"


def plot_learning_rates(
    f,
    x0,
    learning_rates,
    *,
    jac=None,
    args=(),
    momentum=0.0,
    nesterov=False,
    max_iter=50,
    tol=1e-8,
    xlim=None,
    ylim=None,
    **plot_kwargs,
):
    """The same start, several learning rates: one panel each, side by side.

    Runs ``minimize(f, x0, learning_rate=lr, ...)`` for each ``lr`` and draws each path
    with :func:`plot_path` in the same window, titled with the learning rate and the
    outcome (converged in k steps / diverged / still going). Typical picture: a small
    rate crawls, a good one converges, a larger one overshoots and zig-zags, a too large
    one diverges.

    Parameters
    ----------
    f, x0, jac, args, momentum, nesterov, max_iter, tol
        As in :func:`fastgd.minimize`.
    learning_rates : sequence of float
        One panel per learning rate.
    xlim, ylim : (low, high), optional
        The common window. By default it covers the start and every iterate of the runs
        that did not diverge or grow (a diverging path leaves the window, which is the
        point of the picture).
    **plot_kwargs
        Passed on to :func:`plot_path` (``levels``, ``resolution``, ``numbered``).

    Returns
    -------
    matplotlib.figure.Figure
        With one Axes per learning rate (``fig.axes``).
    """

    rates = [learning_rates] if np.ndim(learning_rates) == 0 else list(learning_rates)
    if not rates:
        raise ValueError("learning_rates must contain at least one learning rate")
    results = [
        minimize(
            f,
            x0,
            args,
            jac=jac,
            learning_rate=lr,
            momentum=momentum,
            nesterov=nesterov,
            max_iter=max_iter,
            tol=tol,
        )
        for lr in rates
    ]
    paths = [_as_path(r, i) for i, r in enumerate(results)]
    d, _ = _dimension(paths)
    tame = [
        p.reshape(len(p), d)
        for p, r in zip(paths, results)
        if r.status != DIVERGED and r.fun <= r.fun_path[0]
    ]
    start = paths[0][:1].reshape(1, d)
    everything = np.concatenate([start] + tame)
    if d == 2:
        xlim, ylim = _window_2d(everything, xlim, ylim)
    elif xlim is None:
        xlim = _window(everything[:, 0])

    plt = _pyplot()
    fig, axes = plt.subplots(
        1,
        len(rates),
        figsize=(3.1 * len(rates), 3.3),
        squeeze=False,
        layout="constrained",
    )
    for ax, lr, res in zip(axes[0], rates, results):
        plot_path(f, res, args=args, ax=ax, xlim=xlim, ylim=ylim, **plot_kwargs)
        ax.set_title(f"η = {float(lr):g}: {_outcome(res)}", fontsize=9)
    return fig


def _label_for(est, others):
    """The estimator's class name and the parameters in which it differs from the others."""
    name = type(est).__name__
    if not hasattr(est, "get_params") or len(others) < 2:
        return name
    params = est.get_params(deep=False)
    differing = []
    for key, value in params.items():
        values = [
            o.get_params(deep=False).get(key) if hasattr(o, "get_params") else None
            for o in others
        ]
        if any(repr(v) != repr(value) for v in values):
            differing.append(f"{key}={value!r}")
    names = {type(o).__name__ for o in others}
    if len(names) == 1 and differing:
        return ", ".join(differing)
    return f"{name}({', '.join(differing)})"


def plot_loss_curve(*estimators, x="epoch", labels=None, ax=None, logy=None):
    """Training curves of fitted fastgd estimators: ``loss_curve_`` against the epoch or
    the time spent.

    Parameters
    ----------
    *estimators : fitted fastgd estimators
        Anything with ``loss_curve_`` (and ``time_curve_`` for ``x="time"``), for
        instance the same model fitted with ``batch_size="full"``, ``32`` and ``1``.
    x : {"epoch", "time"}, default="epoch"
        ``"epoch"``: the objective of epoch 1, 2, ...; ``"time"``: against the
        cumulative seconds spent in epochs (``time_curve_``).
    labels : list of str, optional
        Legend entries; by default the parameters in which the estimators differ.
    ax : matplotlib Axes, optional
    logy : bool, optional
        Logarithmic objective axis; by default when every value is positive.

    Returns
    -------
    matplotlib.axes.Axes
    """
    if not estimators:
        raise ValueError("plot_loss_curve needs at least one fitted estimator")
    if x not in ("epoch", "time"):
        raise ValueError(f'x must be "epoch" or "time", got {x!r}')
    if labels is not None:
        labels = list(labels)
        if len(labels) != len(estimators):
            raise ValueError(
                f"got {len(labels)} labels for {len(estimators)} estimators"
            )
    curves = []
    for i, est in enumerate(estimators):
        loss = getattr(est, "loss_curve_", None)
        if loss is None:
            raise ValueError(
                f"estimator {i} ({type(est).__name__}) has no loss_curve_: fit it first"
            )
        loss = np.asarray(loss, dtype=float)
        if x == "time":
            times = getattr(est, "time_curve_", None)
            if times is None or len(times) != len(loss):
                raise ValueError(
                    f"estimator {i} ({type(est).__name__}) has no time_curve_ aligned with"
                    " its loss_curve_"
                )
            xs = np.asarray(times, dtype=float)
        else:
            xs = np.arange(1, len(loss) + 1)
        curves.append((xs, loss))
    ax = _new_axes(ax)
    for i, (est, (xs, loss)) in enumerate(zip(estimators, curves)):
        label = labels[i] if labels else _label_for(est, estimators)
        ax.plot(
            xs, loss, marker="o" if len(loss) <= 30 else None, markersize=3, label=label
        )
    if logy is None:
        logy = all(np.all(loss > 0) for _, loss in curves)
    if logy:
        ax.set_yscale("log")
    ax.set_xlabel("epoch" if x == "epoch" else "seconds (cumulative, in epochs)")
    ax.set_ylabel("objective")
    ax.legend(fontsize=8)
    return ax
