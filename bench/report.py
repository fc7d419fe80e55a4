"""The benchmark run: plan the cases, run them with progress, write the report.

``run(config, out_dir)`` is the whole job of ``python -m bench``; :data:`QUICK` and
:data:`FULL` are its two configurations (tests use a tiny one).
"""

import datetime
import json
import math
import os
import pathlib
import platform
import subprocess
import sys
import time
import traceback
from dataclasses import asdict, dataclass, field, replace

import numpy as np

from . import data as bench_data
from . import measure, methods
from .methods import MLP, SGD, TORCH

BATCHES = (1, 32, 256, "full")
MODELS = ("linear", "logistic")
PEERS = (SGD, MLP, TORCH)


@dataclass(frozen=True)
class Config:
    """What one benchmark run measures."""

    name: str
    sizes: tuple  # ((n, d, epochs), ...): the data sizes and the epochs each fit runs
    batches: tuple = BATCHES
    models: tuple = MODELS
    float32_full: bool = True  # full batch in float32 as well
    threads: bool = True  # full batch float64 with n_jobs=1 too (target 3; 2+ cores)
    peers: tuple = PEERS
    cap_s: float = 10.0  # a fit that would spend longer in its epochs runs fewer epochs
    min_s: float = 0.5  # fast fits repeat (at most 3 times) until this much was timed
    scaling_d: int = 20
    scaling_n: tuple = ()  # n values of the scaling sweep (linear, batch 32 and full)
    scaling_epochs: int = 3
    scaling_numpy_max_n: int = 2_000_000  # the NumPy backend skips larger sweep sizes (slow)
    tta: tuple = None  # (n_train, n_test, d) of the time-to-accuracy race, or None
    tta_k_max: int = 20
    tta_cap_s: float = 60.0
    cold_start: bool = True
    plots: bool = True


QUICK = Config(
    name="quick",
    sizes=((10_000, 10, 20), (200_000, 100, 5)),
    scaling_n=(25_000, 50_000, 100_000, 200_000, 400_000),
    tta=(200_000, 50_000, 100),
    tta_k_max=30,
    tta_cap_s=90.0,
)

FULL = Config(
    name="full",
    sizes=((10_000, 10, 50), (200_000, 100, 10), (1_000_000, 20, 5)),
    cap_s=60.0,
    min_s=1.0,
    # target 9: per-row epoch time from 1e4 to 1e7 rows (1e7 x 20 float64 is 1.6 GB); the
    # NumPy backend stops at scaling_numpy_max_n (its batch-32 epochs at 1e7 take seconds each)
    scaling_n=(10_000, 30_000, 100_000, 300_000, 1_000_000, 3_000_000, 10_000_000),
    tta=(200_000, 50_000, 100),
    tta_k_max=50,
    tta_cap_s=300.0,
)


# ----------------------------------------------------------------------------- helpers
def batch_label(batch, dtype="float64"):
    label = str(batch)
    return label + " f32" if dtype == "float32" else label


def fmt_time(seconds):
    if seconds is None or not np.isfinite(seconds):
        return "—"
    if seconds < 1e-3:
        return f"{seconds * 1e6:.3g} µs"
    if seconds < 1.0:
        return f"{seconds * 1e3:.3g} ms"
    return f"{seconds:.3g} s"


def fmt_ratio(ratio):
    if ratio is None or not np.isfinite(ratio):
        return "—"
    return f"{ratio:.3g}×"


def fmt_num(value, digits=6):
    if value is None or not np.isfinite(value):
        return "—" if value is None else str(value)
    return f"{value:.{digits}g}"


def md_table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return lines


def default_backend():
    """The estimators' default ``backend``."""
    from fastgd import LinearRegression

    return LinearRegression().get_params()["backend"]


def backend_status():
    """``(available, skipped)``: the fastgd backends that import (the estimators' default
    first, the NumPy reference last) and ``{name: reason}`` for those that do not."""
    from fastgd._backends import BACKENDS, get_backend

    available, skipped = [], {}
    for name in BACKENDS:
        try:
            get_backend(name)
        except ImportError as exc:
            skipped[name] = str(exc)
        else:
            available.append(name)
    default = default_backend()
    available.sort(key=lambda name: (name != default, name == "numpy", list(BACKENDS).index(name)))
    return available, skipped


def machine():
    """What the numbers were measured on."""
    import numba
    import scipy
    import sklearn

    import fastgd

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            names = [line.split(":", 1)[1].strip() for line in f if line.startswith("model name")]
        cpu = names[0] if names else cpu
    except OSError:
        pass
    memory = None
    try:
        with open("/proc/meminfo") as f:
            kb = int(next(line for line in f if line.startswith("MemTotal")).split()[1])
        memory = f"{kb / 2**20:.0f} GiB"
    except (OSError, StopIteration, ValueError):
        pass
    info = {
        "cpu": cpu,
        "cores": measure.n_cores(),
        "memory": memory,
        "os": platform.platform(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "scikit-learn": sklearn.__version__,
        "numba": numba.__version__,
        "fastgd": fastgd.__version__,
    }
    try:  # the code measured
        commit = subprocess.run(
            ["git", "describe", "--always", "--dirty"], cwd=measure.REPO, capture_output=True, text=True, timeout=10, check=False
        ).stdout.strip()
    except OSError:
        commit = ""
    if commit:
        info["git commit"] = commit
    if methods.torch_available() is None:
        import torch

        info["torch"] = torch.__version__
    try:
        info["load average at start"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        pass
    return info


# -------------------------------------------------------------------------------- run
@dataclass
class Results:
    config: dict
    meta: dict = field(default_factory=dict)
    skipped: dict = field(default_factory=dict)
    floor: list = field(default_factory=list)  # {n, d, dtype, seconds}
    epochs: list = field(default_factory=list)  # one dict per method and case
    scaling: list = field(default_factory=list)
    threads: list = field(default_factory=list)  # full batch float64 epochs with n_jobs=1
    tta: dict = field(default_factory=dict)
    cold_start: list = field(default_factory=list)
    errors: list = field(default_factory=list)
    targets: list = field(default_factory=list)  # evaluate_targets(), filled by write()

    def floor_of(self, n, d, dtype):
        for row in self.floor:
            if (row["n"], row["d"], row["dtype"]) == (n, d, dtype):
                return row["seconds"]
        return math.nan


class Runner:
    """Plans the tasks of a configuration and runs them, printing progress."""

    def __init__(self, config, stream=None):
        self.config = config
        self.stream = stream or sys.stdout
        self.backends, skipped = backend_status()
        self.results = Results(config=asdict(config))
        self.results.skipped.update({f"backend {k}": v for k, v in skipped.items()})
        self.peers = []
        for peer in config.peers:
            reason = methods.torch_available() if peer == TORCH else None
            if reason is None:
                self.peers.append(peer)
            else:
                self.results.skipped[peer] = reason
        self.tasks = []
        self._tta_arrays = None
        self._plan()

    def say(self, text):
        print(text, file=self.stream, flush=True)

    # ------------------------------------------------------------------------ plan
    def _add(self, label, fn):
        self.tasks.append((label, fn))

    def _plan(self):
        cfg = self.config
        self._add("warm up the kernels (a tiny fit per backend, batch size, dtype and model)", self._warm_up)
        for n, d, epochs in cfg.sizes:
            self._add(f"data {n}x{d}", lambda n=n, d=d: self._make_data(n, d))
            dtypes = ("float64", "float32") if cfg.float32_full else ("float64",)
            for dtype in dtypes:
                self._add(f"memory floor {n}x{d} {dtype}", lambda n=n, d=d, t=dtype: self._floor(n, d, t))
            for model in cfg.models:
                for batch in cfg.batches:
                    cases = [(b, "float64") for b in self.backends]
                    if batch == "full" and cfg.float32_full:
                        cases += [(b, "float32") for b in self.backends]
                    for method, dtype in cases + [(p, "float64") for p in self.peers]:
                        if not methods.runs_batch(method, batch):
                            continue
                        label = f"{model} {n}x{d} batch {batch_label(batch, dtype)} {method}"
                        self._add(label, lambda a=(model, n, d, epochs, batch, method, dtype): self._epochs(*a))
                    if batch == "full" and cfg.threads and measure.n_cores() > 1:
                        # right after the all-cores rows, on the same data
                        for backend in self.backends:
                            if backend == "numpy":
                                continue
                            label = f"{model} {n}x{d} batch full n_jobs=1 {backend}"
                            self._add(label, lambda a=(model, n, d, epochs, backend): self._threads(*a))
        for n in cfg.scaling_n:
            d = cfg.scaling_d
            self._add(f"scaling data and memory floor {n}x{d}", lambda n=n, d=d: self._scaling_data(n, d))
            for backend in self.backends:
                if backend == "numpy" and n > cfg.scaling_numpy_max_n:
                    continue
                for batch in (32, "full"):
                    label = f"scaling linear {n}x{d} batch {batch} {backend}"
                    self._add(label, lambda a=(n, d, batch, backend): self._scaling(*a))
        if cfg.tta:
            n_train, n_test, d = cfg.tta
            self._add(f"time to accuracy: data {n_train}+{n_test}x{d}", self._tta_data)
            self._add("time to accuracy: sklearn LogisticRegression(lbfgs)", self._tta_lbfgs)
            for method in measure.TTA_METHODS:
                self._add(f"time to accuracy: {method}, all defaults", lambda m=method: self._tta_default(m))
                self._add(f"time to accuracy: {method}, max_iter=1,2,... until the target", lambda m=method: self._tta_search(m))
        if cfg.cold_start:
            for backend in self.backends:
                self._add(f"cold start {backend}: fresh processes, empty then filled JIT cache", lambda b=backend: self._cold(b))

    # ------------------------------------------------------------------------- tasks
    def _warm_up(self):
        """Compile (or load from the cache) every kernel the timed fits use: each batch size
        of the configuration and dtype, and full batch with one thread."""
        batches = list(dict.fromkeys((*self.config.batches, 32, "full")))
        for backend in self.backends:
            for dtype in ("float64", "float32"):
                for model in self.config.models:
                    X, y = bench_data.make_data(model, 300, 5, dtype=dtype)
                    for batch in batches:
                        methods.fastgd_estimator(model, backend=backend, batch_size=batch, max_iter=2).fit(X, y)
                    methods.fastgd_estimator(model, backend=backend, batch_size="full", max_iter=2, n_jobs=1).fit(X, y)
        return ", ".join(self.backends)

    def _make_data(self, n, d):
        bench_data.clear_cache()
        for model in self.config.models:
            bench_data.make_data(model, n, d)
        return f"{n * d * 8 / 1e6:.0f} MB per model in float64"

    def _floor(self, n, d, dtype):
        X, _ = bench_data.make_data(self.config.models[0], n, d, dtype=dtype)
        seconds = self._record_floor(X, dtype)
        return f"{fmt_time(seconds)} ({X.nbytes / seconds / 1e9:.3g} GB/s)"

    def _record_floor(self, X, dtype):
        """Measure the memory floor of ``X``, add it to the results; return its seconds."""
        n, d = X.shape
        seconds = measure.memory_floor(X)
        self.results.floor.append({"n": n, "d": d, "dtype": dtype, "seconds": seconds, "bytes": X.nbytes})
        return seconds

    def _learning_rate_for(self, model, n, d, batch):
        for row in self.results.epochs:
            key = (row["model"], row["n"], row["d"], row["batch"], row["dtype"], row["kind"])
            if key == (model, n, d, batch, "float64", "fastgd") and np.isfinite(row["learning_rate"]):
                return row["learning_rate"]
        X, y = bench_data.make_data(model, n, d)
        return methods.fastgd_estimator(model, batch_size=batch, max_iter=1).fit(X, y).learning_rate_

    def _epochs(self, model, n, d, epochs, batch, method, dtype):
        cfg = self.config
        X, y = bench_data.make_data(model, n, d, dtype=dtype)
        if method == TORCH:
            rate = self._learning_rate_for(model, n, d, batch)
            timing = methods.time_torch(model, X, y, batch, epochs, rate, cap_s=cfg.cap_s)
            kind = "peer"
        elif method in (SGD, MLP):
            timing = methods.time_sklearn(method, model, X, y, batch, epochs, cap_s=cfg.cap_s, min_s=cfg.min_s)
            kind = "peer"
        else:
            timing = methods.time_fastgd(method, model, X, y, batch, epochs, cap_s=cfg.cap_s, min_s=cfg.min_s)
            kind = "fastgd"
        self.results.epochs.append(self._row(model, n, d, dtype, batch, kind, timing, nominal_epochs=epochs))
        return (
            f"{fmt_time(timing.seconds_per_epoch)}/epoch, objective {fmt_num(timing.objective)} "
            f"after {timing.epochs} epochs"
        )

    def _threads(self, model, n, d, epochs, backend):
        """Full batch float64 with one thread (``n_jobs=1``); the all-cores time is the
        epoch row of the same case."""
        cfg = self.config
        X, y = bench_data.make_data(model, n, d)
        timing = methods.time_fastgd(
            backend, model, X, y, "full", epochs, cap_s=cfg.cap_s, min_s=cfg.min_s, params={"n_jobs": 1}
        )
        row = self._row(model, n, d, "float64", "full", "fastgd", timing, nominal_epochs=epochs, n_jobs=1)
        del row["curve"]
        self.results.threads.append(row)
        every = _find(self.results.epochs, model=model, n=n, d=d, batch="full", dtype="float64", method=backend)
        speed = timing.seconds_per_epoch / every["seconds_per_epoch"] if every else math.nan
        return (
            f"{fmt_time(timing.seconds_per_epoch)}/epoch with 1 thread; all {measure.n_cores()} cores: "
            f"{fmt_ratio(speed)} faster"
        )

    def _row(self, model, n, d, dtype, batch, kind, timing, **extra):
        """The results row of one timing: the case, ``timing``'s fields, ``extra`` and the
        memory floor of the data (``floor_s``)."""
        row = {"model": model, "n": n, "d": d, "dtype": dtype, "batch": batch, "kind": kind}
        row.update(asdict(timing), **extra)
        row["floor_s"] = self.results.floor_of(n, d, dtype)
        return row

    def _scaling_data(self, n, d):
        bench_data.clear_cache()
        X, _ = bench_data.make_data("linear", n, d)
        seconds = self.results.floor_of(n, d, "float64")
        if not np.isfinite(seconds):  # not measured with the epoch cases
            seconds = self._record_floor(X, "float64")
        return f"memory floor {fmt_time(seconds)}"

    def _scaling(self, n, d, batch, backend):
        cfg = self.config
        X, y = bench_data.make_data("linear", n, d)
        timing = methods.time_fastgd(backend, "linear", X, y, batch, cfg.scaling_epochs, cap_s=cfg.cap_s, min_s=cfg.min_s)
        row = self._row("linear", n, d, "float64", batch, "fastgd", timing)
        del row["curve"]
        self.results.scaling.append(row)
        return f"{fmt_time(timing.seconds_per_epoch)}/epoch, objective {fmt_num(timing.objective)}"

    def _tta_data(self):
        bench_data.clear_cache()
        n_train, n_test, d = self.config.tta
        self._tta_arrays = measure.classification_split(n_train, n_test, d)
        self.results.tta = {"n_train": n_train, "n_test": n_test, "d": d, "methods": {}}
        return "make_classification"

    def _tta_lbfgs(self):
        ref = measure.tta_reference(*self._tta_arrays)
        self.results.tta["lbfgs"] = ref
        self.results.tta["target"] = ref["accuracy"] - 0.002
        return f"{fmt_time(ref['wall_s'])}, test accuracy {ref['accuracy']:.4f}"

    def _tta_search(self, method):
        tta = self.results.tta
        k_max = self.config.tta_k_max
        default = tta["methods"].get(method, {}).get("default")
        if default and default["epochs"]:  # fits of more epochs stop where the default fit did
            k_max = min(k_max, default["epochs"])
        found = measure.tta_search(method, *self._tta_arrays, tta["target"], k_max=k_max, cap_s=self.config.tta_cap_s)
        tta["methods"].setdefault(method, {})["search"] = found
        if found["reached_epochs"] is None:
            return f"not reached in {len(found['points'])} epochs (best accuracy {found['accuracy']:.4f})"
        return f"{fmt_time(found['wall_s'])} ({found['reached_epochs']} epochs), accuracy {found['accuracy']:.4f}"

    def _tta_default(self, method):
        result = measure.tta_default(method, *self._tta_arrays)
        self.results.tta["methods"].setdefault(method, {})["default"] = result
        return f"{fmt_time(result['wall_s'])} ({result['epochs']} epochs), accuracy {result['accuracy']:.4f}"

    def _cold(self, backend):
        cold, warm = measure.cold_and_warm(backend)
        for cache, values in (("cold", cold), ("warm", warm)):
            self.results.cold_start.append({"backend": backend, "cache": cache, **values})
        return (
            f"first fit {fmt_time(cold['first_fit_s'])} cold, {fmt_time(warm['first_fit_s'])} warm"
        )

    # --------------------------------------------------------------------------- run
    def run(self):
        start = time.perf_counter()
        self.results.meta = {
            "date": datetime.datetime.now().isoformat(timespec="minutes"),
            "mode": self.config.name,
            "machine": machine(),
            "backends": list(self.backends),
            "default_backend": default_backend(),
            "peers": list(self.peers),
        }
        total = len(self.tasks)
        self.say(
            f"fastgd benchmarks ({self.config.name}): {total} cases; backends "
            f"{', '.join(self.backends)}; peers {', '.join(self.peers) or 'none'}"
        )
        for name, reason in self.results.skipped.items():
            self.say(f"skipped {name}: {reason}")
        width = len(str(total))
        for i, (label, fn) in enumerate(self.tasks, 1):
            tic = time.perf_counter()
            self.say(f"[{i:>{width}}/{total}] {label} ...")
            try:
                outcome = fn()
            except Exception as exc:  # noqa: BLE001 (report it and go on with the other cases)
                self.results.errors.append({"task": label, "error": f"{type(exc).__name__}: {exc}"})
                self.say(f"    FAILED: {type(exc).__name__}: {exc}")
                traceback.print_exc(file=self.stream)
                continue
            self.say(f"    {outcome}  [{time.perf_counter() - tic:.1f} s, {total - i} left]")
        bench_data.clear_cache()
        self._tta_arrays = None
        self.results.meta["wall_s"] = time.perf_counter() - start
        return self.results


# ---------------------------------------------------------------------------- tables
def _find(rows, **key):
    for row in rows:
        if all(row.get(k) == v for k, v in key.items()):
            return row
    return None


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
        found = {m: _find(results.epochs, method=m, **key) for m in backends + [SGD, MLP] + peers}
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
        warm = _find(results.cold_start, backend=r["backend"], cache="warm")
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


# ----------------------------------------------------------------------------- targets
# Issue 5's performance targets. Each verdict is computed from this run's numbers.
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
SCALING_BAND = 0.25  # 9: every per-row epoch time within +-25 % of their median
SCALING_RANGE = (10_000, 10_000_000)  # 9: the rows it should hold over
SCALING_D = 20

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
    8: "cold start, fresh process, warm JIT cache",
    9: "seconds per epoch per row against n (linear, d = 20)",
}


def _ok(value, op, limit):
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


def _epoch_s(rows, model, n, d, batch, dtype, method):
    row = _find(rows, model=model, n=n, d=d, batch=batch, dtype=dtype, method=method)
    return row["seconds_per_epoch"] if row else math.nan


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


def _t1(results):
    out = []
    for n, d in TARGET_SIZES:
        if (n, d) not in _run_sizes(results):
            out.append(_not_in_run(results, 1, n, d, FLOOR_MAX, op="≤"))
            continue
        for model, _, _, b in _cases(results, [(n, d)]):
            ratio = _epoch_s(results.epochs, model, n, d, "full", "float64", b) / results.floor_of(n, d, "float64")
            out.append(_target(1, f"{model} {n}×{d} {b}", ratio, f"{b} {fmt_ratio(ratio)} floor", "≤", FLOOR_MAX,
                               note=_missing_note(ratio)))
    return out


def _t2(results):
    if not results.config.get("float32_full", True):
        return [_target(2, "all", None, "", "≤", F32_MAX, note="float32 not in this run's configuration")]
    out = [row for row in [_no_target_size(results, 2, "≤", F32_MAX)] if row]
    for model, n, d, b in _cases(results, _target_sizes(results)):
        ratio = _epoch_s(results.epochs, model, n, d, "full", "float32", b) / _epoch_s(results.epochs, model, n, d, "full", "float64", b)
        out.append(_target(2, f"{model} {n}×{d} {b}", ratio, f"{b} f32 {fmt_ratio(ratio)} f64", "≤", F32_MAX,
                           note=_missing_note(ratio)))
    return out


def _cores(results):
    return results.meta.get("machine", {}).get("cores")


def _t3(results):
    cores = _cores(results)
    if cores is not None and cores <= 1:
        return [_target(3, "all", None, "", "≥", THREADS_MIN, verdict=NOT_APPLICABLE, note="this machine has 1 core")]
    what = f"{TARGET_NAMES[3]} ({cores or '?'} cores)"
    out = [row for row in [_no_target_size(results, 3, "≥", THREADS_MIN)] if row]
    for model, n, d, b in _cases(results, _target_sizes(results)):
        ratio = _epoch_s(results.threads, model, n, d, "full", "float64", b) / _epoch_s(results.epochs, model, n, d, "full", "float64", b)
        out.append(_target(3, f"{model} {n}×{d} {b}", ratio, f"{b} {fmt_ratio(ratio)} faster on {cores} cores", "≥",
                           THREADS_MIN, note=_missing_note(ratio), what=what))
    return out


def _t4(results):
    out = [row for row in [_no_target_size(results, 4, "≥", SGD_MIN)] if row]
    for model, n, d, b in _cases(results, _target_sizes(results)):
        ratio = _epoch_s(results.epochs, model, n, d, 1, "float64", SGD) / _epoch_s(results.epochs, model, n, d, 1, "float64", b)
        out.append(_target(4, f"{model} {n}×{d} {b}", ratio, f"{b} {fmt_ratio(ratio)} faster than SGD", "≥", SGD_MIN,
                           note=_missing_note(ratio)))
    return out


def _t5(results):
    out = []
    for n, d in TARGET_SIZES:
        limit = NUMPY_MIN[(n, d)]
        if (n, d) not in _run_sizes(results):
            out.append(_not_in_run(results, 5, n, d, limit))
            continue
        for model, _, _, b in _cases(results, [(n, d)]):
            ratio = _epoch_s(results.epochs, model, n, d, 32, "float64", "numpy") / _epoch_s(results.epochs, model, n, d, 32, "float64", b)
            out.append(_target(5, f"{model} {n}×{d} {b}", ratio, f"{b} {fmt_ratio(ratio)} faster than numpy", "≥", limit,
                               note=_missing_note(ratio)))
    return out


def _t6(results):
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


T7_KERNELS = (  # (label, rows attribute, batch, dtype)
    ("batch 1", "epochs", 1, "float64"),
    ("batch 32", "epochs", 32, "float64"),
    ("full f64", "epochs", "full", "float64"),
    ("full f32", "epochs", "full", "float32"),
    ("full f64 n_jobs=1", "threads", "full", "float64"),
)


def backend_pairs(results):
    """Every Cython/Numba pair of target 7: one dict per kernel, model and size with both
    epoch times and ``ratio`` = the slower's ÷ the faster's."""
    pairs = []
    for label, attr, batch, dtype in T7_KERNELS:
        rows = getattr(results, attr)
        for n, d in _target_sizes(results):
            for model in results.config.get("models", ()):
                nb = _epoch_s(rows, model, n, d, batch, dtype, "numba")
                cy = _epoch_s(rows, model, n, d, batch, dtype, "cython")
                if not (np.isfinite(nb) and np.isfinite(cy)):
                    continue
                pairs.append({
                    "kernel": label, "model": model, "n": n, "d": d, "numba_s": nb, "cython_s": cy,
                    "ratio": max(nb / cy, cy / nb), "faster": "cython" if cy < nb else "numba",
                })
    return pairs


def _t7(results):
    backends = results.meta.get("backends", [])
    if not {"numba", "cython"} <= set(backends):
        return [_target(7, "all", None, "", "≤", BACKEND_MAX, note="needs both the numba and the cython backend")]
    pairs = backend_pairs(results)
    out = []
    for label, *_ in T7_KERNELS:
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


def _t8(results):
    rows = results.cold_start
    if not rows:
        return [_target(8, "import fastgd", None, "", "≤", IMPORT_MAX_S, unit="s", note="no cold start in this run"),
                _target(8, "import + first fit", None, "", "≤", FIRST_FIT_MAX_S, unit="s", note="no cold start in this run")]
    default = results.meta.get("default_backend") or (_compiled(results) or [None])[0]
    backends = list(dict.fromkeys(r["backend"] for r in rows))
    backends.sort(key=lambda b: b != default)
    out = []
    for b in backends:
        warm = _find(rows, backend=b, cache="warm")
        info = b != default
        label = f"{b}{' (default)' if not info else ''}, warm cache"
        imp = (warm or {}).get("import_fastgd_s")
        fit = (warm or {}).get("import_s", math.nan) + (warm or {}).get("first_fit_s", math.nan)
        for case, value, limit in (("import fastgd", imp, IMPORT_MAX_S), ("import + first 1000×10 fit", fit, FIRST_FIT_MAX_S)):
            value = math.nan if value is None else value
            row = _target(8, f"{label}: {case}", value, fmt_time(value), "≤", limit, unit="s")
            if info and row["verdict"] != NOT_MEASURED:
                row["note"] = f"information (not the default backend): {'within' if row['verdict'] == MET else 'over'}"
                row["verdict"] = INFO
            out.append(row)
    return out


def _t9(results):
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


def evaluate_targets(results):
    """Issue 5's nine targets evaluated on ``results``: a list of rows (``target``,
    ``what``, ``case``, ``value``, ``measured``, ``op``, ``limit``, ``threshold``,
    ``verdict`` (met / missed / partial / not measured / not applicable / info), ``note``),
    in target order. Every verdict is computed from the numbers in ``results``."""
    out = []
    for evaluate in (_t1, _t2, _t3, _t4, _t5, _t6, _t7, _t8, _t9):
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
        "Issue 5's targets, each evaluated from this run's measurements (ratios within this",
        f"run; momentum 0.9; {_cores(results)} cores). Verdicts: {tally}. 'not measured': the",
        "case is not in this run (e.g. 1000000×20 runs with --full) or its timing failed.",
        "",
    ]
    header = ["#", "target", "case", "measured", "threshold", "verdict", "note"]
    rows = []
    for r in targets:
        verdict = f"**{r['verdict']}**" if r["verdict"] == MISSED else r["verdict"]
        rows.append([r["target"], r["what"], r["case"], r["measured"], r["threshold"], verdict, r["note"]])
    return lines + md_table(header, rows)


def threads_lines(results):
    if not results.threads:
        return []
    rows = []
    for r in results.threads:
        every = _epoch_s(results.epochs, r["model"], r["n"], r["d"], "full", "float64", r["method"])
        rows.append([
            r["model"], f"{r['n']}×{r['d']}", r["method"], fmt_time(r["seconds_per_epoch"]), fmt_time(every),
            fmt_ratio(r["seconds_per_epoch"] / every), fmt_num(r["objective"]),
        ])
    cores = _cores(results)
    header = ["model", "n×d", "backend", "n_jobs=1", f"all {cores} cores", "speed-up", "objective (n_jobs=1)"]
    return md_table(header, rows)


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
                ref = _find(rows, method="numpy", batch=r["batch"], dtype=r["dtype"])
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
    if plots:
        lines += ["", "## Plots", ""]
        lines += [f"![{p.stem}]({p.name})" for p in plots]
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


def run(config, out_dir, stream=None):
    """Run ``config``, write the report into ``out_dir``, print the summary; return
    ``(results, report_path)``."""
    stream = stream or sys.stdout
    runner = Runner(config, stream=stream)
    results = runner.run()
    path = write(results, out_dir, plots=config.plots)
    print(file=stream)
    print("\n".join(summary_table(results)), file=stream)
    print(file=stream)
    print("\n".join(targets_lines(results, results.targets)), file=stream)
    if results.tta:
        print(file=stream)
        print("\n".join(tta_lines(results)), file=stream)
    if results.cold_start:
        print(file=stream)
        print("\n".join(cold_lines(results)), file=stream)
    if results.errors:
        print(f"\n{len(results.errors)} case(s) failed; see the report.", file=stream)
    print(f"\nReport: {path} ({results.meta['wall_s']:.0f} s)", file=stream, flush=True)
    return results, path


def tiny_config(**changes):
    """A configuration that runs in seconds (for tests and trying things out)."""
    base = Config(
        name="tiny",
        sizes=((400, 5, 2),),
        cap_s=1.0,
        min_s=0.0,
        scaling_n=(400, 800),
        scaling_epochs=2,
        tta=(1000, 500, 10),
        tta_k_max=5,
        tta_cap_s=5.0,
        cold_start=False,
    )
    return replace(base, **changes)
