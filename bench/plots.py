"""The report's PNG plots (matplotlib, Agg backend: no display needed)."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import NullFormatter

from .config import batch_label


def epoch_time_bars(results, model, path):
    """Seconds per epoch per batch size, one bar per backend and peer, log scale; the
    memory floor as a dashed line."""
    sizes = [(n, d) for n, d, _ in results.config["sizes"]]
    sizes = [s for s in sizes if any((r["model"], r["n"], r["d"]) == (model, *s) for r in results.epochs)]
    if not sizes:
        return None
    fig, axes = _panels(len(sizes))
    for ax, (n, d) in zip(axes, sizes, strict=True):
        rows = [r for r in results.epochs if (r["model"], r["n"], r["d"]) == (model, n, d)]
        seconds = {(r["method"], batch_label(r["batch"], r["dtype"])): r["seconds_per_epoch"] for r in rows}
        groups = list(dict.fromkeys(g for _, g in seconds))
        names = list(dict.fromkeys(name for name, _ in seconds))
        width = 0.8 / len(names)
        for j, name in enumerate(names):
            shown = [(i, g) for i, g in enumerate(groups) if (name, g) in seconds]
            offset = (j - (len(names) - 1) / 2) * width
            ax.bar([i + offset for i, _ in shown], [seconds[name, g] for _, g in shown], width=width, label=name)
        floor = results.floor_of(n, d, "float64")
        if np.isfinite(floor):
            ax.axhline(floor, color="k", linestyle="--", linewidth=1, label="memory floor")
        ax.set_xticks(range(len(groups)), [f"batch {g}" for g in groups])
        _finish(ax, f"{model} regression, {n}×{d}", "seconds per epoch")
    return _save(fig, path)


def speedup_over_numpy(results, path):
    """Each compiled backend's speed-up over the NumPy backend, by batch size."""
    compiled = [b for b in results.meta.get("backends", []) if b != "numpy"]
    models = list(dict.fromkeys(r["model"] for r in results.epochs))
    if not compiled or not models:
        return None
    fig, axes = _panels(len(models))
    for ax, model in zip(axes, models, strict=True):
        for n, d, _ in results.config["sizes"]:
            rows = [r for r in results.epochs if (r["model"], r["n"], r["d"]) == (model, n, d)]
            for backend in compiled:
                xs, ys = [], []
                for r in rows:
                    if r["method"] != backend:
                        continue
                    ref = [q for q in rows if q["method"] == "numpy" and (q["batch"], q["dtype"]) == (r["batch"], r["dtype"])]
                    if ref:
                        xs.append(batch_label(r["batch"], r["dtype"]))
                        ys.append(ref[0]["seconds_per_epoch"] / r["seconds_per_epoch"])
                if xs:
                    ax.plot(xs, ys, marker="o", label=f"{backend}, {n}×{d}")
        ax.axhline(1.0, color="k", linewidth=0.8)
        _finish(ax, f"{model} regression", "speed-up over numpy (numpy time ÷ time)", xlabel="batch size")
    return _save(fig, path)


def objective_vs_time(results, path):
    """Objective during training against seconds in epochs, on the largest size, float64:
    the default backend, the NumPy reference and the peers, one colour per batch size
    (the objective as reported during each epoch)."""
    sizes = results.config["sizes"]
    if not results.epochs or not sizes:
        return None
    n, d, _ = max(sizes, key=lambda s: s[0] * s[1])
    backends = results.meta.get("backends", [])
    shown = backends[:1] + (["numpy"] if "numpy" in backends[1:] else [])
    models = list(dict.fromkeys(r["model"] for r in results.epochs))
    fig, axes = _panels(len(models), height=4.8)
    batches = list(dict.fromkeys(str(r["batch"]) for r in results.epochs))
    colors = {b: f"C{i}" for i, b in enumerate(batches)}
    styles = {name: style for name, style in zip(shown, ("-", "--"), strict=False)}
    for ax, model in zip(axes, models, strict=True):
        rows = [
            r for r in results.epochs
            if (r["model"], r["n"], r["d"], r["dtype"]) == (model, n, d, "float64") and r.get("curve")
            and (r["method"] in shown or r["kind"] == "peer")
        ]
        for r in rows:
            t, v = np.array(r["curve"], dtype=float).T
            ax.plot(t, v, marker=".", color=colors[str(r["batch"])], linestyle=styles.get(r["method"], ":"),
                    label=f"{r['method']}, batch {r['batch']}")
        _log_x(ax)
        _finish(ax, f"{model} regression, {n}×{d}", "training objective (mean over each epoch)",
                xlabel="seconds in epochs", fontsize=7, ncol=2)
    return _save(fig, path)


def accuracy_vs_time(results, path):
    """Time-to-accuracy race: test accuracy against wall-clock per fit."""
    tta = results.tta
    if not tta or "lbfgs" not in tta:
        return None
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    for method, found in tta["methods"].items():
        points = found.get("search", {}).get("points", [])
        if points:
            ax.plot([p["wall_s"] for p in points], [p["accuracy"] for p in points], marker="o",
                    label=f"{method} (max_iter = 1, 2, ...)")
        default = found.get("default")
        if default:
            ax.plot([default["wall_s"]], [default["accuracy"]], marker="*", markersize=12, linestyle="none",
                    label=f"{method}, defaults")
    ref = tta["lbfgs"]
    ax.plot([ref["wall_s"]], [ref["accuracy"]], marker="s", linestyle="none", color="k", label="sklearn lbfgs")
    ax.axhline(tta["target"], color="k", linestyle="--", linewidth=1, label="target (lbfgs − 0.2 points)")
    _log_x(ax)
    _finish(ax, f"logistic regression, {tta['n_train']}×{tta['d']}", "test accuracy",
            xlabel="wall-clock seconds of the fit", log_y=False)
    return _save(fig, path)


def scaling(results, path):
    """Seconds per epoch against n (log-log) with a line of slope 1 for reference."""
    if not results.scaling:
        return None
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    keys = list(dict.fromkeys((r["method"], r["batch"]) for r in results.scaling))
    for method, batch in keys:
        rows = sorted((r for r in results.scaling if (r["method"], r["batch"]) == (method, batch)), key=lambda r: r["n"])
        ax.plot([r["n"] for r in rows], [r["seconds_per_epoch"] for r in rows], marker="o", label=f"{method}, batch {batch}")
    floors = sorted((r["n"], r["seconds"]) for r in results.floor if r["d"] == results.config["scaling_d"])
    if floors:
        ax.plot(*zip(*floors, strict=True), color="k", linestyle="--", label="memory floor")
        n0, s0 = floors[0]
        ns = np.array([n0, floors[-1][0]], dtype=float)
        ax.plot(ns, s0 * ns / n0 * 0.5, color="grey", linestyle=":", label="slope 1 (linear)")
    _log_x(ax)
    _finish(ax, f"linear regression, d = {results.config['scaling_d']}", "seconds per epoch", xlabel="n (rows)")
    return _save(fig, path)


def _panels(count, height=4.5):
    """A figure with ``count`` axes side by side (6.5 inches wide each) and their list."""
    fig, axes = plt.subplots(1, count, figsize=(6.5 * count, height), squeeze=False)
    return fig, list(axes[0])


def _finish(ax, title, ylabel, xlabel=None, log_y=True, **legend):
    """Title, axis labels, log y axis (unless ``log_y`` is false) and the legend
    (``legend``: its keyword arguments, font size 8 unless given)."""
    if log_y:
        ax.set_yscale("log")
    if xlabel is not None:
        ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(**{"fontsize": 8, **legend})


def _save(fig, path):
    """Lay out, write ``path`` as PNG and close ``fig``; returns ``path``."""
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _log_x(ax):
    """Log x axis labelled at the powers of ten only."""
    ax.set_xscale("log")
    ax.xaxis.set_minor_formatter(NullFormatter())


def make_all(results, out):
    """Every plot that has data, as PNG files in ``out``; returns their paths."""
    made = []
    for model in dict.fromkeys(r["model"] for r in results.epochs):
        made.append(epoch_time_bars(results, model, out / f"epoch_time_{model}.png"))
    made.append(speedup_over_numpy(results, out / "speedup_over_numpy.png"))
    made.append(objective_vs_time(results, out / "objective_vs_time.png"))
    made.append(accuracy_vs_time(results, out / "accuracy_vs_time.png"))
    made.append(scaling(results, out / "scaling.png"))
    if results.race.get("problems"):
        from . import race_bench

        made.append(race_bench.plot(results.race, out / race_bench.PNG))
    return [p for p in made if p is not None]

