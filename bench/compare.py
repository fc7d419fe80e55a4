"""``python -m bench compare RUN_A RUN_B``: per-benchmark ratios of two saved
pytest-benchmark runs, so that a kernel change is judged by before/after ratios.

Save runs with ``pytest bench --benchmark-only --benchmark-autosave`` (each lands in
``.benchmarks/<machine>/NNNN_<commit>_<date>.json``). ``RUN_A`` and ``RUN_B`` are each a
path to such a file, or a run as pytest-benchmark names it: its number (``1`` or
``0001``) or any part of its file name (a commit id, a date), found under ``--storage``
(default ``.benchmarks``). For every benchmark in both runs it prints A's and B's
median seconds per round (``--stat`` picks another statistic), the ratio B ÷ A (below 1:
B is faster) and the final objective of each (``extra_info["final_loss"]``), then the
median and the geometric mean of the ratios, overall and per group.
"""

import argparse
import json
import math
import pathlib
import re
import statistics

from .formatting import fmt_num, fmt_time, md_table

STATS = ("median", "min", "mean", "max")


def resolve(run, storage=".benchmarks"):
    """The saved run ``run`` names: a path to its JSON file, or its number or a part of
    its file name under ``storage``. FileNotFoundError when none matches, ValueError when
    several do."""
    path = pathlib.Path(run)
    if path.is_file():
        return path
    files = sorted(pathlib.Path(storage).glob("**/*.json"))
    if re.fullmatch(r"\d+", run):
        found = [f for f in files if re.match(r"\d+", f.name) and int(re.match(r"\d+", f.name).group()) == int(run)]
    else:
        found = [f for f in files if run in f.name]
    if not found:
        raise FileNotFoundError(f"no saved run {run!r}: not a file, and nothing matches under {storage}/ "
                                "(save one with: pytest bench --benchmark-only --benchmark-autosave)")
    if len(found) > 1:
        raise ValueError(f"{run!r} matches several saved runs: " + ", ".join(str(f) for f in found)
                         + "; give the path")
    return found[0]


def load(path):
    """``{fullname: benchmark}`` of a saved run (pytest-benchmark's JSON)."""
    data = json.loads(pathlib.Path(path).read_text())
    return {b.get("fullname") or b["name"]: b for b in data["benchmarks"]}


def ratios(a, b, stat="median"):
    """One row per benchmark in both runs (in A's order): ``name``, ``group``, ``a_s``,
    ``b_s`` (the ``stat`` of each, seconds per round), ``ratio`` (b ÷ a), ``a_loss``,
    ``b_loss`` (their final objectives, None where not recorded)."""
    rows = []
    for name, x in a.items():
        y = b.get(name)
        if y is None:
            continue
        a_s, b_s = float(x["stats"][stat]), float(y["stats"][stat])
        rows.append({
            "name": name, "group": x.get("group") or "", "a_s": a_s, "b_s": b_s,
            "ratio": b_s / a_s if a_s > 0 else math.nan,
            "a_loss": (x.get("extra_info") or {}).get("final_loss"),
            "b_loss": (y.get("extra_info") or {}).get("final_loss"),
        })
    return rows


def _gmean(values):
    return math.exp(statistics.fmean(math.log(v) for v in values))


def summary(rows):
    """``[(scope, count, median ratio, geometric mean ratio)]``: all benchmarks first,
    then each group."""
    out = []
    groups = [None] + list(dict.fromkeys(r["group"] for r in rows))
    for group in groups:
        values = [r["ratio"] for r in rows if (group is None or r["group"] == group) and r["ratio"] > 0]
        if values:
            out.append(("all" if group is None else group, len(values), statistics.median(values), _gmean(values)))
    return out


def _short(name):
    return name.split("::", 1)[-1]


def _cell(text):
    """``text`` in a Markdown table cell (the groups' ``|`` escaped)."""
    return str(text).replace("|", "\\|")


def report_lines(path_a, path_b, stat="median"):
    """The compare output: the per-benchmark table, the summary table, and the
    benchmarks found in one run only."""
    a, b = load(path_a), load(path_b)
    rows = ratios(a, b, stat)
    lines = [f"A: {path_a}", f"B: {path_b}",
             f"{stat} seconds per round; ratio = B ÷ A (below 1: B is faster)", ""]
    lines += md_table(
        ["benchmark", "group", f"A {stat}", f"B {stat}", "B ÷ A", "A final loss", "B final loss"],
        [[_short(r["name"]), _cell(r["group"]), fmt_time(r["a_s"]), fmt_time(r["b_s"]), f"{r['ratio']:.3f}",
          fmt_num(r["a_loss"], 8) if r["a_loss"] is not None else "—",
          fmt_num(r["b_loss"], 8) if r["b_loss"] is not None else "—"] for r in rows],
    )
    lines += [""] + md_table(["benchmarks", "count", "median B ÷ A", "geometric mean B ÷ A"],
                             [[_cell(scope), n, f"{med:.3f}", f"{gm:.3f}"] for scope, n, med, gm in summary(rows)])
    for label, mine, other in (("A", a, b), ("B", b, a)):
        only = [_short(name) for name in mine if name not in other]
        if only:
            lines += ["", f"only in {label} ({len(only)}): " + ", ".join(only)]
    return lines


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m bench compare", description=__doc__.split("\n\n")[0])
    parser.add_argument("run_a", metavar="RUN_A", help="the 'before' run: a path, a run number or part of its name")
    parser.add_argument("run_b", metavar="RUN_B", help="the 'after' run")
    parser.add_argument("--storage", default=".benchmarks",
                        help="where pytest-benchmark saved the runs (default .benchmarks)")
    parser.add_argument("--stat", choices=STATS, default="median", help="the statistic compared (default median)")
    args = parser.parse_args(argv)
    try:
        path_a, path_b = resolve(args.run_a, args.storage), resolve(args.run_b, args.storage)
    except (FileNotFoundError, ValueError) as exc:
        parser.error(str(exc))
    print("\n".join(report_lines(path_a, path_b, args.stat)))
    return 0
