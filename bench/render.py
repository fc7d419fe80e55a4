"""The report: its Markdown sections (the race's headline first:
:func:`bench.race_bench.section_lines`; :func:`summary_table`, :func:`tta_lines`,
:func:`cold_lines`, :func:`threads_lines`, the whole of :func:`report_lines`) and
:func:`write`, which writes ``report.md``, ``results.json`` and the plots of a run's
:class:`~bench.runner.Results`. The "Performance targets" section is
:func:`bench.targets.targets_lines`.
"""

import json
import math
import pathlib
from dataclasses import asdict

import numpy as np

from . import race_bench
from .config import batch_label
from .formatting import fmt_num, fmt_ratio, fmt_time, md_table
from .methods import MLP, SGD
from .runner import epoch_seconds, find_row
from .targets import evaluate_targets, machine_cores, targets_lines


def _cell(row):
    if row is None:
        return "—"
    after = ""
    if row["epochs"] != row.get("nominal_epochs", row["epochs"]):  # capped: fewer epochs
        after = f" after {row['epochs']} epoch{'s' if row['epochs'] != 1 else ''}"
    return f"{fmt_time(row['seconds_per_epoch'])} ({fmt_num(row['objective'], 6)}{after})"


def _case_keys(results):
    """(model, n, d, batch, dtype) of every epoch case, in run order."""
    return list(dict.fromkeys((r["model"], r["n"], r["d"], r["batch"], r["dtype"]) for r in results.epochs))


def summary_table(results):
    """Markdown lines: one row per case, seconds per epoch and final objective of every
    backend and peer, and the speed ratios measured in this run."""
    backends = results.meta.get("backends", [])
    compiled = [b for b in backends if b != "numpy"]
    default = compiled[0] if compiled else None
    peers = [p for p in results.meta.get("peers", []) if p != SGD and p != MLP]
    header = ["model", "n×d", "batch"] + backends + ["scikit-learn"] + peers
    header += [f"{b} vs numpy" for b in compiled]
    if default:
        header += [f"{default} vs scikit-learn", f"{default} ÷ floor"]
    rows = []
    for model, n, d, batch, dtype in _case_keys(results):
        key = {"model": model, "n": n, "d": d, "batch": batch, "dtype": dtype}
        found = {m: find_row(results.epochs, method=m, **key) for m in backends + [SGD, MLP] + peers}
        sk = found[SGD] or found[MLP]
        sk_cell = "—" if sk is None else f"{'SGD' if sk['method'] == SGD else 'MLP'} {_cell(sk)}"
        row = [model, f"{n}×{d}", batch_label(batch, dtype)] + [_cell(found[b]) for b in backends]
        row += [sk_cell] + [_cell(found[p]) for p in peers]
        numpy_row = found.get("numpy")
        for b in compiled:
            ok = found[b] is not None and numpy_row is not None
            row.append(fmt_ratio(numpy_row["seconds_per_epoch"] / found[b]["seconds_per_epoch"]) if ok else "—")
        if default:
            mine = found[default]
            row.append(fmt_ratio(sk["seconds_per_epoch"] / mine["seconds_per_epoch"]) if mine and sk else "—")
            row.append(fmt_ratio(mine["seconds_per_epoch"] / mine["floor_s"]) if mine else "—")
        rows.append(row)
    return md_table(header, rows)


def tta_lines(results):
    tta = results.tta
    if not tta or "lbfgs" not in tta:
        return []
    ref = tta["lbfgs"]
    header = ["method", "parameters", "epochs (lbfgs: iterations)", "wall-clock", "test accuracy", "lbfgs time ÷ this"]
    rows = [["sklearn LogisticRegression", "defaults (lbfgs)", fmt_num(ref["epochs"]), fmt_time(ref["wall_s"]), f"{ref['accuracy']:.4f}", "1×"]]
    for method, found in tta["methods"].items():
        default = found.get("default")
        if default:
            rows.append([
                method, "defaults (own stopping rule)", fmt_num(default["epochs"]), fmt_time(default["wall_s"]),
                f"{default['accuracy']:.4f}", fmt_ratio(ref["wall_s"] / default["wall_s"]),
            ])
        search = found.get("search")
        if search:
            reached = search["reached_epochs"] is not None
            rows.append([
                method,
                "defaults, max_iter = fewest epochs reaching the target" if reached else "defaults, max_iter = 1, 2, …: target not reached",
                str(search["reached_epochs"] if reached else len(search["points"])),
                fmt_time(search["wall_s"]),
                f"{search['accuracy']:.4f}",
                fmt_ratio(ref["wall_s"] / search["wall_s"]) if reached else "—",
            ])
    intro = (
        f"Logistic regression, make_classification {tta['n_train']} training + {tta['n_test']} "
        f"test rows × {tta['d']} features; target test accuracy {tta['target']:.4f} "
        f"(lbfgs − 0.2 points). Wall-clock of one whole fit (validation, set-up, epochs)."
    )
    return [intro, ""] + md_table(header, rows)


def cold_lines(results):
    if not results.cold_start:
        return []
    header = ["backend", "JIT cache", "import fastgd", "import (with estimators)", "first fit", "7 more fits", "whole process", "compiling (cold − warm fits)"]
    rows = []
    for r in results.cold_start:
        compiling = ""
        warm = find_row(results.cold_start, backend=r["backend"], cache="warm")
        if r["cache"] == "cold" and warm:
            extra = (r["first_fit_s"] + r["other_fits_s"]) - (warm["first_fit_s"] + warm["other_fits_s"])
            compiling = fmt_time(extra) if extra > 0.05 else "none measurable"
        rows.append([
            r["backend"], r["cache"], fmt_time(r.get("import_fastgd_s")), fmt_time(r["import_s"]), fmt_time(r["first_fit_s"]),
            fmt_time(r["other_fits_s"]), fmt_time(r["process_s"]), compiling,
        ])
    return md_table(header, rows)


def scaling_exponents(results):
    """``{(method, batch): slope}`` of log(seconds per epoch) against log(n)."""
    out = {}
    for key in dict.fromkeys((r["method"], r["batch"]) for r in results.scaling):
        pts = [(r["n"], r["seconds_per_epoch"]) for r in results.scaling if (r["method"], r["batch"]) == key]
        if len(pts) >= 2:
            n, s = np.log(np.array(pts, dtype=float)).T
            out[key] = float(np.polyfit(n, s, 1)[0])
    return out


def threads_lines(results):
    if not results.threads:
        return []
    rows = []
    for r in results.threads:
        every = epoch_seconds(results.epochs, r["model"], r["n"], r["d"], "full", "float64", r["method"])
        rows.append([
            r["model"], f"{r['n']}×{r['d']}", r["method"], fmt_time(r["seconds_per_epoch"]), fmt_time(every),
            fmt_ratio(r["seconds_per_epoch"] / every), fmt_num(r["objective"]),
        ])
    cores = machine_cores(results)
    header = ["model", "n×d", "backend", "n_jobs=1", f"all {cores} cores", "speed-up", "objective (n_jobs=1)"]
    return md_table(header, rows)


def sizes_lines(results):
    """What this run measured at which sizes, and how to get the complete report."""
    cfg = results.config
    race = results.race or {}
    lines = [f"Mode **{cfg['name']}**. Sizes of this run:", ""]
    if race.get("problems"):
        lines.append(f"- time-to-accuracy race: scale {race['scale']:g} of its rows ("
                     + "; ".join(res["label"].split(": ", 1)[1] for res in race["problems"])
                     + f"), cap {race['cap_s']:g} s per method and problem")
    lines.append("- seconds per epoch: " + ", ".join(f"{n}×{d} ({k} epochs)" for n, d, k in cfg["sizes"])
                 + f"; scaling sweep n = {', '.join(str(n) for n in cfg['scaling_n'])} at d = {cfg['scaling_d']}")
    if cfg.get("tta"):
        lines.append("- time to accuracy against lbfgs: {} training + {} test rows × {}".format(*cfg["tta"]))
    for sec in results.sections.values():
        lines.append(f"- {sec['title']} ({sec['size']} sizes): {sec.get('sizes', '')}")
    if cfg["name"] != "full":
        lines += ["", "`python -m bench --full` runs the complete report: the race at its full sizes (scale 1), "
                  "200000×100 and 1000000×20 epoch timings, the scaling sweep to 1e7 rows and every section at "
                  "its full size (tens of minutes on 2 cores)."]
    return lines + [""]


def glance_lines(results):
    """The one-screen summary of everything after the race: a line or two per section."""
    lines = []
    compiled = [b for b in results.meta.get("backends", []) if b != "numpy"]
    default = compiled[0] if compiled else None
    if default and results.epochs:
        n, d = max((r["n"], r["d"]) for r in results.epochs)
        rows = [r for r in results.epochs if (r["n"], r["d"], r["method"], r["dtype"]) == (n, d, default, "float64")]
        speed = []
        for r in rows:
            ref = find_row(results.epochs, model=r["model"], n=n, d=d, batch=r["batch"], dtype="float64", method="numpy")
            if ref:
                speed.append(ref["seconds_per_epoch"] / r["seconds_per_epoch"])
        sk = [find_row(results.epochs, model=r["model"], n=n, d=d, batch=1, dtype="float64", method=SGD) for r in rows
              if r["batch"] == 1]
        mine = {r["model"]: r for r in rows if r["batch"] == 1}
        vs_sk = [s["seconds_per_epoch"] / mine[s["model"]]["seconds_per_epoch"] for s in sk if s]
        full = [r["seconds_per_epoch"] / r["floor_s"] for r in rows if r["batch"] == "full"]
        lines.append(f"- Seconds per epoch, {n}×{d}, {default} (the default backend): {_spread(speed)} faster than "
                     f"the NumPy backend, batch 1 {_spread(vs_sk)} faster than scikit-learn's SGD, full batch "
                     f"{_spread(full)} the memory floor; every backend and batch size in the summary table below")
    if results.targets:
        counts = {}
        for t in results.targets:
            counts[t["verdict"]] = counts.get(t["verdict"], 0) + 1
        missed = sorted({t["target"] for t in results.targets if t["verdict"] == "missed"})
        lines.append("- Performance targets: " + ", ".join(f"{v} {k}" for k, v in counts.items())
                     + (f" (missed: {', '.join(str(m) for m in missed)})" if missed else ""))
    tta = results.tta
    if tta and "lbfgs" in tta:
        search = tta["methods"].get("fastgd", {}).get("search") or {}
        if search.get("reached_epochs"):
            lines.append(f"- Time to lbfgs's accuracy − 0.2 points: fastgd {fmt_time(search['wall_s'])} "
                         f"({search['reached_epochs']} epochs), lbfgs {fmt_time(tta['lbfgs']['wall_s'])}: "
                         f"{fmt_ratio(tta['lbfgs']['wall_s'] / search['wall_s'])} sooner")
        else:
            lines.append(f"- Time to lbfgs's accuracy − 0.2 points: fastgd does not reach it "
                         f"(lbfgs {fmt_time(tta['lbfgs']['wall_s'])})")
    for r in results.cold_start:
        if r["cache"] == "warm":
            lines.append(f"- Cold start, {r['backend']}, warm JIT cache: import fastgd {fmt_time(r.get('import_fastgd_s'))}, "
                         f"import with the estimators and first fit {fmt_time(r['import_s'] + r['first_fit_s'])}")
    for sec in results.sections.values():
        lines += [f"- {line}" for line in sec["summary"]]
    return lines


def _spread(ratios):
    ratios = sorted(r for r in ratios if np.isfinite(r))
    if not ratios:
        return "—"
    return fmt_ratio(ratios[0]) if len(ratios) == 1 else f"{fmt_ratio(ratios[0])}–{fmt_ratio(ratios[-1])}"


def report_lines(results, plots=()):
    meta = results.meta
    cfg = results.config
    lines = [f"# fastgd benchmark report ({meta.get('mode')})", ""]
    lines.append(f"Run {meta.get('date')}, {meta.get('wall_s', math.nan):.0f} s in all. Machine:")
    lines.append("")
    lines += [f"- {k}: {v}" for k, v in meta.get("machine", {}).items()]
    lines += [
        "",
        "One run; the machine may be shared, so compare the ratios measured here rather than",
        "absolute times across runs. What each number means: [bench/README.md](../README.md).",
        "",
    ]
    if results.skipped:
        lines += ["Skipped:", ""] + [f"- {k}: {v}" for k, v in results.skipped.items()] + [""]
    if results.errors:
        lines += ["**Failed cases:**", ""] + [f"- {e['task']}: {e['error']}" for e in results.errors] + [""]
    if results.race.get("problems"):
        png = next((p.name for p in plots if p.name == race_bench.PNG), None)
        lines += race_bench.head_lines(results.race, png)
    lines += ["## At a glance", ""] + sizes_lines(results) + glance_lines(results) + [""]
    if results.race.get("problems"):
        lines += ["## The race in detail", ""] + race_bench.detail_lines_all(results.race)[2:] + [""]
    lines += [
        "## Summary",
        "",
        "Seconds per epoch (set-up excluded), momentum 0.9, with the objective after the",
        "fit's epochs in brackets; 'vs' columns are speed-ups (the other's time ÷ this time);",
        "'÷ floor' is the epoch time as a multiple of one streaming read of X.",
        "",
    ]
    lines += summary_table(results)
    lines += ["", "## Performance targets", ""] + targets_lines(results, results.targets or None)
    if results.tta:
        lines += ["", "## Time to accuracy", ""] + tta_lines(results)
    if results.cold_start:
        lines += ["", "## Cold start", ""] + cold_lines(results)

    lines += ["", "## Seconds per epoch, every run", ""]
    lines.append(
        "'numpy ÷ this': the NumPy backend's time over this one (same batch and dtype); "
        "'epochs': how many epochs the timed fit ran (fewer than asked when a fit would "
        "take longer than " + f"{cfg['cap_s']:g} s); objective and score (R² or training accuracy) "
        "of the weights it ended with."
    )
    for model in cfg["models"]:
        for n, d, _ in cfg["sizes"]:
            rows = [r for r in results.epochs if (r["model"], r["n"], r["d"]) == (model, n, d)]
            if not rows:
                continue
            table = []
            for r in rows:
                ref = find_row(rows, method="numpy", batch=r["batch"], dtype=r["dtype"])
                speed = ref["seconds_per_epoch"] / r["seconds_per_epoch"] if ref else math.nan
                table.append([
                    batch_label(r["batch"], r["dtype"]), r["method"], r["epochs"], fmt_time(r["seconds_per_epoch"]),
                    fmt_ratio(speed), fmt_ratio(r["seconds_per_epoch"] / r["floor_s"]),
                    fmt_num(r["objective"], 8), fmt_num(r["score"], 5), r["note"],
                ])
            lines += ["", f"### {model}, {n}×{d}", ""]
            lines += md_table(
                ["batch", "method", "epochs", "time / epoch", "numpy ÷ this", "÷ floor", "objective", "R² / accuracy", "note"],
                table,
            )
    if results.threads:
        lines += [
            "", "## Threads", "",
            (
                "Full batch, float64: seconds per epoch with `n_jobs=1` against all cores "
                "(`n_jobs=None`, the row of the same case above); speed-up = the first ÷ the second."
            ),
            "",
        ] + threads_lines(results)
    if results.floor:
        lines += ["", "## Memory floor", "", f"One streaming read of X with {meta.get('machine', {}).get('cores')} threads (fastest of 7).", ""]
        lines += md_table(
            ["n×d", "dtype", "MB", "seconds", "GB/s"],
            [[f"{r['n']}×{r['d']}", r["dtype"], f"{r['bytes'] / 1e6:.3g}", fmt_time(r["seconds"]), f"{r['bytes'] / r['seconds'] / 1e9:.3g}"] for r in results.floor],
        )
    if results.scaling:
        exps = scaling_exponents(results)
        lines += [
            "", "## Scaling with n", "",
            (
                f"Linear regression, d = {cfg['scaling_d']}, float64. Exponent: slope of "
                "log(time per epoch) against log(n); 1 is linear."
            ),
            "",
        ]
        lines += md_table(
            ["method", "batch", "exponent"], [[m, b, f"{e:.2f}"] for (m, b), e in exps.items()]
        )
        lines += [""]
        lines += md_table(
            ["n", "method", "batch", "time / epoch", "ns per row", "÷ floor", "objective"],
            [[r["n"], r["method"], r["batch"], fmt_time(r["seconds_per_epoch"]), f"{r['seconds_per_epoch'] / r['n'] * 1e9:.3g}",
              fmt_ratio(r["seconds_per_epoch"] / r["floor_s"]), fmt_num(r["objective"])] for r in results.scaling],
        )
    plots = [p for p in plots if p.name != race_bench.PNG]  # shown with the race, at the top
    if plots:
        lines += ["", "## Plots", ""]
        lines += [f"![{p.stem}]({p.name})" for p in plots]
    for sec in results.sections.values():
        lines += sec["markdown"].rstrip("\n").split("\n")
    return lines


def _jsonable(value):
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (np.floating, float)):
        return float(value) if np.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value


def write(results, out_dir, plots=True):
    """Write ``report.md``, ``results.json`` and (with matplotlib) the PNG plots into
    ``out_dir``; return the report's path."""
    out = pathlib.Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    pngs = []
    if plots:
        try:
            from . import plots as bench_plots
        except ImportError as exc:  # matplotlib missing
            results.skipped["plots"] = f"matplotlib is not importable ({exc})"
        else:
            pngs = bench_plots.make_all(results, out)
    results.targets = evaluate_targets(results)
    (out / "results.json").write_text(json.dumps(_jsonable(asdict(results)), indent=1))
    path = out / "report.md"
    path.write_text("\n".join(report_lines(results, pngs)) + "\n")
    return path

