"""Running a configuration: :class:`Runner` plans its cases and runs them with progress,
into a :class:`Results`; :func:`machine` and :func:`backend_status` say what was measured
on and with. :func:`find_row` and :func:`epoch_seconds` look rows of the results up.
"""

import datetime
import math
import os
import platform
import subprocess
import sys
import time
import traceback
from dataclasses import asdict, dataclass, field

import numpy as np

from . import data as bench_data
from . import measure, methods
from .config import batch_label
from .formatting import fmt_num, fmt_ratio, fmt_time
from .methods import MLP, SGD, TORCH


def default_backend():
    """The backend the estimators' default ``backend`` runs (``"auto"`` resolved)."""
    from fastgd.benchmarking import default_backend as default

    return default()


def backend_status():
    """``(available, skipped)``: the fastgd backends that import (the estimators' default
    first, the NumPy reference last) and ``{name: reason}`` for those that do not."""
    from fastgd.benchmarking import backend_error, backend_names

    names = backend_names()
    errors = {name: backend_error(name) for name in names}
    available = [name for name in names if errors[name] is None]
    skipped = {name: error for name, error in errors.items() if error is not None}
    default = default_backend()
    available.sort(key=lambda name: (name != default, name == "numpy", names.index(name)))
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


def _duration(seconds):
    """``seconds`` as "1 min 05 s" or "42 s"."""
    seconds = max(0, round(seconds))
    return f"{seconds // 60} min {seconds % 60:02d} s" if seconds >= 60 else f"{seconds} s"


# ------------------------------------------------------------------------------ results
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
    targets: list = field(default_factory=list)  # targets.evaluate_targets(), filled by render.write()
    race: dict = field(default_factory=dict)  # bench.race_bench.run_race()'s fields, the report's headline
    # bench.sections: {name: {"title", "size", "markdown", "summary", "rows"}}, in run order
    sections: dict = field(default_factory=dict)

    def floor_of(self, n, d, dtype):
        for row in self.floor:
            if (row["n"], row["d"], row["dtype"]) == (n, d, dtype):
                return row["seconds"]
        return math.nan


def find_row(rows, **key):
    """The first of ``rows`` (dicts) whose items include ``key``, or None."""
    for row in rows:
        if all(row.get(k) == v for k, v in key.items()):
            return row
    return None


def epoch_seconds(rows, model, n, d, batch, dtype, method):
    """Seconds per epoch of that case in ``rows``; NaN when it is not there."""
    row = find_row(rows, model=model, n=n, d=d, batch=batch, dtype=dtype, method=method)
    return row["seconds_per_epoch"] if row else math.nan


# -------------------------------------------------------------------------------- run
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
    def _add(self, label, fn, seconds=1.0):
        """A case: its progress label, the function that runs it, and a rough estimate of
        its seconds on 2 cores (only the estimate of the time left uses it)."""
        self.tasks.append((label, fn, seconds))

    def _plan(self):
        cfg = self.config
        if cfg.race_scale:
            from . import race_bench

            cap = race_bench.cap_for(cfg.race_scale) if cfg.race_cap_s is None else cfg.race_cap_s
            for problem in race_bench.problems(cfg.race_scale, cfg.race_d_scale):
                self._add(f"race: {problem.label}", lambda p=problem: self._race(p), 5 * cap)
        self._add("warm up the kernels (a tiny fit per backend, batch size, dtype and model)", self._warm_up, 60)
        for n, d, epochs in cfg.sizes:
            self._add(f"data {n}x{d}", lambda n=n, d=d: self._make_data(n, d), n * d / 2e6)
            dtypes = ("float64", "float32") if cfg.float32_full else ("float64",)
            case_s = max(0.2, n * d / 1e7)  # the rough seconds of one epoch case
            for dtype in dtypes:
                self._add(f"memory floor {n}x{d} {dtype}", lambda n=n, d=d, t=dtype: self._floor(n, d, t), case_s)
            for model in cfg.models:
                for batch in cfg.batches:
                    cases = [(b, "float64") for b in self.backends]
                    if batch == "full" and cfg.float32_full:
                        cases += [(b, "float32") for b in self.backends]
                    for method, dtype in cases + [(p, "float64") for p in self.peers]:
                        if not methods.runs_batch(method, batch):
                            continue
                        label = f"{model} {n}x{d} batch {batch_label(batch, dtype)} {method}"
                        self._add(label, lambda a=(model, n, d, epochs, batch, method, dtype): self._epochs(*a), case_s)
                    if batch == "full" and cfg.threads and measure.n_cores() > 1:
                        # right after the all-cores rows, on the same data
                        for backend in self.backends:
                            if backend == "numpy":
                                continue
                            label = f"{model} {n}x{d} batch full n_jobs=1 {backend}"
                            self._add(label, lambda a=(model, n, d, epochs, backend): self._threads(*a), case_s)
        for n in cfg.scaling_n:
            d = cfg.scaling_d
            case_s = max(0.2, n * d / 1e7)
            self._add(f"scaling data and memory floor {n}x{d}", lambda n=n, d=d: self._scaling_data(n, d), case_s)
            for backend in self.backends:
                if backend == "numpy" and n > cfg.scaling_numpy_max_n:
                    continue
                for batch in (32, "full"):
                    label = f"scaling linear {n}x{d} batch {batch} {backend}"
                    self._add(label, lambda a=(n, d, batch, backend): self._scaling(*a), case_s)
        if cfg.tta:
            n_train, n_test, d = cfg.tta
            seconds = n_train * d / 2e6
            self._add(f"time to accuracy: data {n_train}+{n_test}x{d}", self._tta_data, seconds)
            self._add("time to accuracy: sklearn LogisticRegression(lbfgs)", self._tta_lbfgs, seconds)
            for method in measure.TTA_METHODS:
                self._add(f"time to accuracy: {method}, all defaults", lambda m=method: self._tta_default(m), seconds)
                self._add(f"time to accuracy: {method}, max_iter=1,2,... until the target",
                          lambda m=method: self._tta_search(m), 3 * seconds)
        if cfg.cold_start:
            cold = self.backends if cfg.cold_start_backends == "all" else self.backends[:1]  # the default first
            for backend in cold:
                self._add(f"cold start {backend}: fresh processes, empty then filled JIT cache",
                          lambda b=backend: self._cold(b), 5 if backend == "cython" else 40)
        from .sections import SECTIONS

        for name in cfg.sections:
            section = SECTIONS[name]
            self._add(f"{section.title} ({cfg.section_size} sizes)", lambda s=name: self._section(s),
                      section.seconds[cfg.section_size])

    # ------------------------------------------------------------------------- tasks
    def _race(self, problem):
        """One problem of the time-to-accuracy race (:func:`bench.race_bench.race_problem`);
        the first one starts the race's record, every one updates its total time."""
        from . import race_bench

        cfg = self.config
        if not self.results.race:
            self.results.race = race_bench.new_race(cfg.race_scale, cfg.race_d_scale, cfg.race_cap_s, cfg.race_threads)
        race = self.results.race
        result = race_bench.race_problem(problem, race["cap_s"], stream=lambda line: self.say("    " + line),
                                         threads=cfg.race_threads)
        race_bench.add_result(race, result)
        v = result["verdict"]
        return (f"target {v['target']:.4f}: fastgd {fmt_time(v['fastgd_s'])}, fastest peer {fmt_time(v['fastest_peer_s'])} "
                f"({fmt_ratio(v['ratio'])}); {fmt_time(result['wall_s'])}")

    def _warm_up(self):
        """Compile (or load from the cache) every kernel the timed fits use: each batch size
        of the configuration in float64, full batch in float32 (the only float32 case),
        and full batch with one thread."""
        batches = list(dict.fromkeys((*self.config.batches, 32, "full")))
        for backend in self.backends:
            for dtype in ("float64", "float32"):
                for model in self.config.models:
                    X, y = bench_data.make_data(model, 300, 5, dtype=dtype)
                    for batch in batches if dtype == "float64" else ["full"]:
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
        every = find_row(self.results.epochs, model=model, n=n, d=d, batch="full", dtype="float64", method=backend)
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

    def _section(self, name):
        """One of :data:`bench.sections.SECTIONS` at the configuration's section size."""
        from .sections import SECTIONS

        size = self.config.section_size
        done = SECTIONS[name].run(size, lambda line: self.say("    " + line))
        self.results.sections[name] = {"title": SECTIONS[name].title, "size": size, **done}
        return "; ".join(done["summary"])[:160]

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
        planned = sum(seconds for _, _, seconds in self.tasks)
        done = 0.0  # the estimates of the cases done
        for i, (label, fn, seconds) in enumerate(self.tasks, 1):
            tic = time.perf_counter()
            self.say(f"[{i:>{width}}/{total}] {label} ...")
            try:
                outcome = fn()
            except Exception as exc:  # noqa: BLE001 (report it and go on with the other cases)
                self.results.errors.append({"task": label, "error": f"{type(exc).__name__}: {exc}"})
                self.say(f"    FAILED: {type(exc).__name__}: {exc}")
                traceback.print_exc(file=self.stream)
                outcome = None
            done += seconds
            spent = time.perf_counter() - start
            # the rest of the estimates, scaled by how this run compares with them so far
            left = (planned - done) * spent / max(done, 1e-9)
            if outcome is not None:
                self.say(f"    {outcome}  [{time.perf_counter() - tic:.1f} s]")
            self.say(f"    [{i:>{width}}/{total} done, {spent:.0f} s so far, about {_duration(left)} left]")
        bench_data.clear_cache()
        self._tta_arrays = None
        self.results.meta["wall_s"] = time.perf_counter() - start
        return self.results

