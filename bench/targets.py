"""The performance targets: ten checks, each judged from the numbers of one run.

:func:`evaluate_targets` returns one row per target and, where it applies, per model,
size and compiled backend (case, measured value, threshold, verdict, note);
:func:`targets_lines` writes them as the report's "Performance targets" section. Every
verdict compares a ratio measured in the run with its limit below; nothing is hard-coded.

The checks, in target order (``TARGET_NAMES`` has each one's title):

1. :func:`full_batch_near_memory_floor`
2. :func:`float32_full_batch_against_float64`
3. :func:`threads_speedup`
4. :func:`sgd_against_sklearn`
5. :func:`minibatch_against_numpy`
6. :func:`time_to_accuracy_against_lbfgs`
7. :func:`backends_agree_in_speed`
8. :func:`import_and_first_fit`
9. :func:`epoch_time_scales_linearly`
10. :func:`race_time_to_target`
"""

import math

import numpy as np

from .config import FULL, QUICK
from .formatting import fmt_ratio, fmt_time, md_table
from .methods import SGD
from .runner import epoch_seconds, find_row

# the sizes targets 1-5 and 7 name; smaller data (10000x10) are overhead, not these kernels
TARGET_SIZES = ((200_000, 100), (1_000_000, 20))
FLOOR_MAX = 1.3  # 1: full batch epoch <= 1.3 x the memory floor
F32_MAX = 0.6  # 2: full batch float32 epoch <= 0.6 x the float64 epoch
THREADS_MIN = 1.6  # 3: all cores >= 1.6 x faster than n_jobs=1
SGD_MIN = 4.0  # 4: batch 1 >= 4 x faster than scikit-learn's SGD
NUMPY_MIN = {(200_000, 100): 3.0, (1_000_000, 20): 10.0}  # 5: batch 32 against NumPy
TTA_SIZE = (200_000, 100)  # 6: the race's n_train x d
LBFGS_MIN = 5.0  # 6: reaches lbfgs's accuracy - 0.2 points >= 5 x sooner
BACKEND_MAX = 1.25  # 7: Cython and Numba within 1.25 x of each other
IMPORT_MAX_S = 0.3  # 8: import fastgd
FIRST_FIT_MAX_S = 1.0  # 8: import (with the estimators) + first 1000x10 fit, warm cache
FRESH_FIT_MAX_S = 0.2  # 8: the first fit beyond the imports, empty JIT cache (a fresh install)
SCALING_BAND = 0.25  # 9: every per-row epoch time within +-25 % of their median
SCALING_RANGE = (10_000, 10_000_000)  # 9: the rows it should hold over
SCALING_D = 20
RACE_MAX = 1.0  # 10: fastgd's time to the race's target ÷ the fastest peer's, below 1 (sooner)

MET, MISSED, PARTIAL = "met", "missed", "partial"
NOT_MEASURED, NOT_APPLICABLE, INFO = "not measured", "not applicable", "info"

TARGET_NAMES = {
    1: "full batch epoch ÷ memory floor",
    2: "full batch: float32 epoch ÷ float64 epoch",
    3: "full batch: n_jobs=1 epoch ÷ all-cores epoch",
    4: "batch 1 (shuffled): scikit-learn SGD epoch ÷ fastgd epoch",
    5: "batch 32 (shuffled): NumPy backend epoch ÷ this backend's",
    6: "logistic time to lbfgs accuracy − 0.2 points: lbfgs wall-clock ÷ fastgd's",
    7: "Cython vs Numba: slower ÷ faster, same kernel and case",
    8: "cold start in a fresh process",
    9: "seconds per epoch per row against n (linear, d = 20)",
    10: "race: fastgd's default fit reaches the best peer's test accuracy − 0.2 points sooner than every peer "
        "(fastgd's time ÷ the fastest peer's)",
}


def _ok(value, op, limit):
    if op == "<":
        return value < limit
    return value <= limit if op == "≤" else value >= limit


def _target(num, case, value, measured, op, limit, *, note="", verdict=None, unit="×", what=None):
    """One row of the targets table (and of ``results.targets``): the verdict is ``value
    op limit`` unless given; no finite value means "not measured"."""
    finite = value is not None and np.isfinite(value)
    if verdict is None:
        verdict = (MET if _ok(value, op, limit) else MISSED) if finite else NOT_MEASURED
    if not finite and not measured:
        measured = "—"
    return {
        "target": num,
        "what": what or TARGET_NAMES[num],
        "case": case,
        "value": float(value) if finite else None,
        "measured": measured,
        "op": op,
        "limit": limit,
        "threshold": f"{op} {limit:g}{unit}" if unit != "s" else f"{op} {limit:g} s",
        "verdict": verdict,
        "note": note,
    }


def _run_sizes(results):
    return [(int(s[0]), int(s[1])) for s in results.config.get("sizes", ())]


def _not_in_run(results, num, n, d, limit, op="≥"):
    """The row of a target size this run did not measure."""
    note = "not in this run's sizes"
    modes = [cfg.name for cfg in (QUICK, FULL) if any(s[:2] == (n, d) for s in cfg.sizes)]
    if modes == [FULL.name]:
        note += f" ({n}×{d} runs with --full)"
    elif modes:
        note += f" ({n}×{d} is in the {' and '.join(modes)} runs)"
    return _target(num, f"{n}×{d}", None, "", op, limit, note=note)


def _compiled(results):
    return [b for b in results.meta.get("backends", []) if b != "numpy"]


def _cases(results, sizes=None):
    """(model, n, d, backend) for the run's sizes (or ``sizes``), models and compiled
    backends."""
    sizes = _run_sizes(results) if sizes is None else sizes
    return [(m, n, d, b) for n, d in sizes for m in results.config.get("models", ()) for b in _compiled(results)]


def _target_sizes(results):
    """The run's sizes that the targets name (TARGET_SIZES)."""
    return [size for size in _run_sizes(results) if size in TARGET_SIZES]


def _no_target_size(results, num, op, limit):
    """The "not measured" row of a target when none of TARGET_SIZES is in this run, else
    None."""
    if _target_sizes(results):
        return None
    sizes = ", ".join(f"{n}×{d}" for n, d in TARGET_SIZES)
    return _target(num, "all", None, "", op, limit, note=f"none of the target sizes ({sizes}) in this run")


def _missing_note(value):
    return "" if np.isfinite(value) else "no timing in this run (failed, skipped or not planned)"


def machine_cores(results):
    """The cores of the machine the run measured on (None if not recorded)."""
    return results.meta.get("machine", {}).get("cores")


def full_batch_near_memory_floor(results):
    """Target 1: full batch float64 epoch ÷ the memory floor (one streaming read of X) at
    each target size, per model and compiled backend: at most ``FLOOR_MAX``."""
    out = []
    for n, d in TARGET_SIZES:
        if (n, d) not in _run_sizes(results):
            out.append(_not_in_run(results, 1, n, d, FLOOR_MAX, op="≤"))
            continue
        for model, _, _, b in _cases(results, [(n, d)]):
            ratio = epoch_seconds(results.epochs, model, n, d, "full", "float64", b) / results.floor_of(n, d, "float64")
            out.append(_target(1, f"{model} {n}×{d} {b}", ratio, f"{b} {fmt_ratio(ratio)} floor", "≤", FLOOR_MAX,
                               note=_missing_note(ratio)))
    return out


def float32_full_batch_against_float64(results):
    """Target 2: full batch float32 epoch ÷ float64 epoch at the run's target sizes, per model
    and compiled backend: at most ``F32_MAX``."""
    if not results.config.get("float32_full", True):
        return [_target(2, "all", None, "", "≤", F32_MAX, note="float32 not in this run's configuration")]
    out = [row for row in [_no_target_size(results, 2, "≤", F32_MAX)] if row]
    for model, n, d, b in _cases(results, _target_sizes(results)):
        ratio = epoch_seconds(results.epochs, model, n, d, "full", "float32", b) / epoch_seconds(results.epochs, model, n, d, "full", "float64", b)
        out.append(_target(2, f"{model} {n}×{d} {b}", ratio, f"{b} f32 {fmt_ratio(ratio)} f64", "≤", F32_MAX,
                           note=_missing_note(ratio)))
    return out


def threads_speedup(results):
    """Target 3: full batch float64 epoch with ``n_jobs=1`` ÷ the all-cores epoch of the same
    case, at the run's target sizes: at least ``THREADS_MIN`` (not applicable on 1 core)."""
    cores = machine_cores(results)
    if cores is not None and cores <= 1:
        return [_target(3, "all", None, "", "≥", THREADS_MIN, verdict=NOT_APPLICABLE, note="this machine has 1 core")]
    what = f"{TARGET_NAMES[3]} ({cores or '?'} cores)"
    out = [row for row in [_no_target_size(results, 3, "≥", THREADS_MIN)] if row]
    for model, n, d, b in _cases(results, _target_sizes(results)):
        ratio = epoch_seconds(results.threads, model, n, d, "full", "float64", b) / epoch_seconds(results.epochs, model, n, d, "full", "float64", b)
        out.append(_target(3, f"{model} {n}×{d} {b}", ratio, f"{b} {fmt_ratio(ratio)} faster on {cores} cores", "≥",
                           THREADS_MIN, note=_missing_note(ratio), what=what))
    return out


def sgd_against_sklearn(results):
    """Target 4: scikit-learn SGD's epoch ÷ fastgd's batch-1 (shuffled) epoch at the run's
    target sizes, per model and compiled backend: at least ``SGD_MIN``."""
    out = [row for row in [_no_target_size(results, 4, "≥", SGD_MIN)] if row]
    for model, n, d, b in _cases(results, _target_sizes(results)):
        ratio = epoch_seconds(results.epochs, model, n, d, 1, "float64", SGD) / epoch_seconds(results.epochs, model, n, d, 1, "float64", b)
        out.append(_target(4, f"{model} {n}×{d} {b}", ratio, f"{b} {fmt_ratio(ratio)} faster than SGD", "≥", SGD_MIN,
                           note=_missing_note(ratio)))
    return out


def minibatch_against_numpy(results):
    """Target 5: the NumPy backend's batch-32 epoch ÷ each compiled backend's, at each target
    size: at least ``NUMPY_MIN`` of that size."""
    out = []
    for n, d in TARGET_SIZES:
        limit = NUMPY_MIN[(n, d)]
        if (n, d) not in _run_sizes(results):
            out.append(_not_in_run(results, 5, n, d, limit))
            continue
        for model, _, _, b in _cases(results, [(n, d)]):
            ratio = epoch_seconds(results.epochs, model, n, d, 32, "float64", "numpy") / epoch_seconds(results.epochs, model, n, d, 32, "float64", b)
            out.append(_target(5, f"{model} {n}×{d} {b}", ratio, f"{b} {fmt_ratio(ratio)} faster than numpy", "≥", limit,
                               note=_missing_note(ratio)))
    return out


def time_to_accuracy_against_lbfgs(results):
    """Target 6: lbfgs's wall-clock ÷ that of fastgd's fewest-epochs fit reaching the race's
    target accuracy, whole fits: at least ``LBFGS_MIN``; judged only on a race of
    ``TTA_SIZE``. The all-default fit's ratio is a row of information."""
    tta = results.tta
    if not tta or "lbfgs" not in tta:
        return [_target(6, "logistic", None, "", "≥", LBFGS_MIN, note="no time-to-accuracy race in this run")]
    case = f"logistic {tta['n_train']}×{tta['d']}"
    off_size = (tta["n_train"], tta["d"]) != TTA_SIZE
    note = f"the race ran on {tta['n_train']}×{tta['d']}, not {TTA_SIZE[0]}×{TTA_SIZE[1]}" if off_size else ""
    ref = tta["lbfgs"]["wall_s"]
    found = tta.get("methods", {}).get("fastgd", {})
    search, default = found.get("search"), found.get("default")
    out = []
    if search is None:
        out.append(_target(6, case, None, "", "≥", LBFGS_MIN, note="fastgd's search did not run"))
    elif search["reached_epochs"] is None:
        out.append(_target(
            6, case, None, f"target accuracy not reached (best {search['accuracy']:.4f} in {len(search['points'])} epochs)",
            "≥", LBFGS_MIN, verdict=MISSED if not off_size else NOT_MEASURED, note=note,
        ))
    else:
        ratio = ref / search["wall_s"]
        out.append(_target(
            6, case, ratio, f"{fmt_ratio(ratio)} sooner ({fmt_time(search['wall_s'])}, {search['reached_epochs']} epochs, "
            f"vs lbfgs {fmt_time(ref)})", "≥", LBFGS_MIN, note=note,
            verdict=NOT_MEASURED if off_size else None,
        ))
    if default is not None:
        ratio = ref / default["wall_s"]
        reached = default["accuracy"] >= tta["target"]
        out.append(_target(
            6, case + ", default fit (own stopping rule)", ratio,
            f"{fmt_ratio(ratio)} ({fmt_time(default['wall_s'])}, {default['epochs']} epochs, accuracy "
            f"{default['accuracy']:.4f}{'' if reached else ', under the target'})",
            "≥", LBFGS_MIN, verdict=INFO, note="information: the all-default fit, whole",
        ))
    return out


BACKEND_KERNELS = (  # target 7's kernels: (label, rows attribute, batch, dtype)
    ("batch 1", "epochs", 1, "float64"),
    ("batch 32", "epochs", 32, "float64"),
    ("full f64", "epochs", "full", "float64"),
    ("full f32", "epochs", "full", "float32"),
    ("full f64 n_jobs=1", "threads", "full", "float64"),
)


def backend_pairs(results):
    """Every Cython/Numba pair of target 7 (:func:`backends_agree_in_speed`): one dict per kernel, model and size with both
    epoch times and ``ratio`` = the slower's ÷ the faster's."""
    pairs = []
    for label, attr, batch, dtype in BACKEND_KERNELS:
        rows = getattr(results, attr)
        for n, d in _target_sizes(results):
            for model in results.config.get("models", ()):
                nb = epoch_seconds(rows, model, n, d, batch, dtype, "numba")
                cy = epoch_seconds(rows, model, n, d, batch, dtype, "cython")
                if not (np.isfinite(nb) and np.isfinite(cy)):
                    continue
                pairs.append({
                    "kernel": label, "model": model, "n": n, "d": d, "numba_s": nb, "cython_s": cy,
                    "ratio": max(nb / cy, cy / nb), "faster": "cython" if cy < nb else "numba",
                })
    return pairs


def backends_agree_in_speed(results):
    """Target 7: Cython against Numba, the slower epoch ÷ the faster, for every kernel of
    ``BACKEND_KERNELS``: the worst case per kernel at most ``BACKEND_MAX``, the cases over
    it listed."""
    backends = results.meta.get("backends", [])
    if not {"numba", "cython"} <= set(backends):
        return [_target(7, "all", None, "", "≤", BACKEND_MAX, note="needs both the numba and the cython backend")]
    pairs = backend_pairs(results)
    out = []
    for label, *_ in BACKEND_KERNELS:
        mine = [p for p in pairs if p["kernel"] == label]
        if not mine:
            out.append(_target(7, label, None, "", "≤", BACKEND_MAX, note="not measured in this run"))
            continue
        worst = max(mine, key=lambda p: p["ratio"])
        misses = [p for p in mine if p["ratio"] > BACKEND_MAX]
        note = "; ".join(f"{p['model']} {p['n']}×{p['d']}: {p['faster']} {fmt_ratio(p['ratio'])} faster" for p in misses)
        row = _target(
            7, f"{label} (worst of {len(mine)})", worst["ratio"],
            f"{worst['faster']} {fmt_ratio(worst['ratio'])} faster ({worst['model']} {worst['n']}×{worst['d']})",
            "≤", BACKEND_MAX, note=("misses: " + note) if misses else "",
        )
        row["cases"] = mine
        out.append(row)
    return out


def import_and_first_fit(results):
    """Target 8: cold start with a warm JIT cache, default backend: ``import fastgd`` within
    ``IMPORT_MAX_S`` and import with the estimators + the first 1000×10 fit within
    ``FIRST_FIT_MAX_S``; and with an empty JIT cache (a fresh install), the first fit
    beyond the imports within ``FRESH_FIT_MAX_S``; the other backends as information."""
    rows = results.cold_start
    if not rows:
        return [_target(8, "import fastgd", None, "", "≤", IMPORT_MAX_S, unit="s", note="no cold start in this run"),
                _target(8, "import + first fit", None, "", "≤", FIRST_FIT_MAX_S, unit="s", note="no cold start in this run"),
                _target(8, "first fit beyond the imports, empty JIT cache", None, "", "≤", FRESH_FIT_MAX_S, unit="s",
                        note="no cold start in this run")]
    default = results.meta.get("default_backend") or (_compiled(results) or [None])[0]
    backends = list(dict.fromkeys(r["backend"] for r in rows))
    backends.sort(key=lambda b: b != default)
    out = []
    for b in backends:
        warm = find_row(rows, backend=b, cache="warm")
        info = b != default
        label = f"{b}{' (default)' if not info else ''}"
        imp = (warm or {}).get("import_fastgd_s")
        fit = (warm or {}).get("import_s", math.nan) + (warm or {}).get("first_fit_s", math.nan)
        cold = find_row(rows, backend=b, cache="cold")
        fresh = (cold or {}).get("first_fit_s", math.nan)
        for case, value, limit in (("warm cache: import fastgd", imp, IMPORT_MAX_S),
                                   ("warm cache: import + first 1000×10 fit", fit, FIRST_FIT_MAX_S),
                                   ("empty JIT cache: first fit beyond the imports", fresh, FRESH_FIT_MAX_S)):
            value = math.nan if value is None else value
            row = _target(8, f"{label}, {case}", value, fmt_time(value), "≤", limit, unit="s")
            if info and row["verdict"] != NOT_MEASURED:
                row["note"] = f"information (not the default backend): {'within' if row['verdict'] == MET else 'over'}"
                row["verdict"] = INFO
            out.append(row)
    return out


def epoch_time_scales_linearly(results):
    """Target 9: the scaling sweep's seconds per epoch per row, per compiled backend and
    batch, every point within ``SCALING_BAND`` of their median; met only over
    ``SCALING_RANGE`` at d = ``SCALING_D``, partial over less."""
    d = results.config.get("scaling_d")
    rows = [r for r in results.scaling if r["method"] != "numpy"]
    if not rows:
        return [_target(9, "all", None, "", "≤", SCALING_BAND, unit="", note="no scaling sweep in this run")]
    lo_n, hi_n = SCALING_RANGE
    out = []
    for method, batch in dict.fromkeys((r["method"], r["batch"]) for r in rows):
        pts = sorted((r["n"], r["seconds_per_epoch"] / r["n"]) for r in rows if (r["method"], r["batch"]) == (method, batch))
        per_row = np.array([p for _, p in pts])
        ns = [n for n, _ in pts]
        rel = per_row / np.median(per_row)
        spread = float(max(rel.max() - 1.0, 1.0 - rel.min()))
        inside = spread <= SCALING_BAND
        covered = min(ns) <= lo_n and max(ns) >= hi_n and d == SCALING_D
        verdict = MISSED if not inside else (MET if covered else PARTIAL)
        note = "" if covered else f"the target spans n = {lo_n}–{hi_n} at d = {SCALING_D}; this run covers n = {min(ns)}–{max(ns)} at d = {d}"
        measured = (
            f"{rel.min():.2f}–{rel.max():.2f}× median ({per_row.min() * 1e9:.3g}–{per_row.max() * 1e9:.3g} ns/row, "
            f"{len(ns)} sizes)"
        )
        out.append(_target(9, f"{method} batch {batch}", spread, measured, "≤", SCALING_BAND, unit="",
                           verdict=verdict, note=note))
        out[-1]["threshold"] = f"every point within ±{SCALING_BAND:.0%} of the median"
        out[-1]["n_range"] = [min(ns), max(ns)]
    return out


def race_time_to_target(results):
    """Target 10, per problem of the race (:mod:`bench.race_bench`): fastgd's default
    ``LogisticRegression()`` reaches the target (the best peer's test accuracy − 0.2 points)
    sooner than every peer: its time to target ÷ the fastest peer's below ``RACE_MAX``.
    Missed when fastgd does not reach the target; judged only on the full sizes (scale 1),
    shown as "not measured" at other scales."""
    race = results.race or {}
    if not race.get("problems"):
        return [_target(10, "all", None, "", "<", RACE_MAX, note="no race in this run (--no-race)")]
    full = race.get("scale") == 1.0 and race.get("d_scale", 1.0) == 1.0
    off = "" if full else f"the race ran at scale {race.get('scale'):g} (rows), not the full sizes"
    out = []
    for res in race["problems"]:
        v = res["verdict"]
        peer = f"{v['fastest_peer']} {fmt_time(v['fastest_peer_s'])}"
        if v["fastgd_s"] is None:
            row = _target(10, res["label"], None, f"fastgd does not reach {v['target']:.4f}; fastest peer: {peer}", "<",
                          RACE_MAX, verdict=MISSED if full else NOT_MEASURED, note=off)
        else:
            row = _target(10, res["label"], v["ratio"],
                          f"{fmt_ratio(v['ratio'])} (fastgd {fmt_time(v['fastgd_s'])}, fastest peer: {peer})", "<",
                          RACE_MAX, verdict=None if full else NOT_MEASURED, note=off)
        row["target_accuracy"] = v["target"]
        out.append(row)
    return out


# the checks in target order: CHECKS[k - 1] evaluates target k
CHECKS = (
    full_batch_near_memory_floor,
    float32_full_batch_against_float64,
    threads_speedup,
    sgd_against_sklearn,
    minibatch_against_numpy,
    time_to_accuracy_against_lbfgs,
    backends_agree_in_speed,
    import_and_first_fit,
    epoch_time_scales_linearly,
    race_time_to_target,
)


def evaluate_targets(results):
    """The ten performance targets evaluated on ``results``: a list of rows (``target``,
    ``what``, ``case``, ``value``, ``measured``, ``op``, ``limit``, ``threshold``,
    ``verdict`` (met / missed / partial / not measured / not applicable / info), ``note``),
    in target order. Every verdict is computed from the numbers in ``results``."""
    out = []
    for evaluate in CHECKS:
        out += evaluate(results)
    return out


def targets_lines(results, targets=None):
    """Markdown lines of the "Performance targets" section."""
    targets = evaluate_targets(results) if targets is None else targets
    counts = {}
    for row in targets:
        counts[row["verdict"]] = counts.get(row["verdict"], 0) + 1
    tally = ", ".join(f"{k} {v}" for k, v in counts.items())
    lines = [
        "The performance targets, each evaluated from this run's measurements (ratios within this",
        f"run; momentum 0.9; {machine_cores(results)} cores). Verdicts: {tally}. 'not measured': the",
        "case is not in this run (e.g. 1000000×20 runs with --full) or its timing failed.",
        "",
    ]
    header = ["#", "target", "case", "measured", "threshold", "verdict", "note"]
    rows = []
    for r in targets:
        verdict = f"**{r['verdict']}**" if r["verdict"] == MISSED else r["verdict"]
        rows.append([r["target"], r["what"], r["case"], r["measured"], r["threshold"], verdict, r["note"]])
    return lines + md_table(header, rows)

