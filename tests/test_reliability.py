"""Reliability: failure atomicity (KeyboardInterrupt included), the GIL released by the
kernels, memory (no copy of X), determinism, and pickling across installations.

Hostile inputs are in ``test_hostile.py`` and property-based tests in
``test_properties.py``.
"""

import _thread
import pickle
import subprocess
import sys
import threading
import time
import tracemalloc

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.base import clone

import fastgd._run
from fastgd import LinearRegression, LogisticRegression
from fastgd import _params as P
from fastgd._backends import get_backend
from fastgd._validation import normalise_weights

from .conftest import ALL_BACKENDS, FAST_BACKENDS, make_data

QUIET = {"max_iter": 3, "tol": None, "random_state": 0}


def fitted_state(est):
    """Everything a fit or partial_fit sets or consumes, as comparable values (the
    wall-clock ``time_curve_`` aside)."""
    state = {}
    for name, value in vars(est).items():
        if name == "time_curve_":
            continue
        if isinstance(value, np.random.RandomState):
            value = value.get_state(legacy=False)
            value = (value["state"]["key"].tobytes(), value["state"]["pos"], value["has_gauss"])
        state[name] = value
    return state


def assert_same_state(a, b):
    sa, sb = fitted_state(a), fitted_state(b)
    assert sorted(sa) == sorted(sb)
    for name in sa:
        if isinstance(sa[name], np.ndarray):
            np.testing.assert_array_equal(sa[name], sb[name], err_msg=name)
            assert sa[name].dtype == sb[name].dtype, name
        else:
            assert sa[name] == sb[name], name


class InterruptingBackend:
    """A backend whose ``epoch`` raises KeyboardInterrupt on its ``after``-th call (as a
    Ctrl-C delivered while that epoch's kernel runs surfaces when it returns)."""

    def __init__(self, name, after, sparse=False):
        self.inner = get_backend(name, sparse=sparse)
        self.after = after
        self.calls = 0

    def epoch(self, **kwargs):
        self.calls += 1
        total = self.inner.epoch(**kwargs)
        if self.calls == self.after:
            raise KeyboardInterrupt
        return total


def interrupt_epoch(monkeypatch, backend, after):
    rec = {}

    def fake(name, sparse=False):
        rec["backend"] = InterruptingBackend(name, after, sparse)
        return rec["backend"]

    monkeypatch.setattr(fastgd._run, "get_backend", fake)
    return rec


# ----------------------------------------------------------------------------- atomicity
@pytest.mark.parametrize("sparse", [False, True], ids=["dense", "sparse"])
@pytest.mark.parametrize("method", ["fit", "partial_fit", "warm_start"])
def test_keyboard_interrupt_between_epochs_leaves_the_model_as_it_was(backend, method, sparse, monkeypatch):
    X, y = make_data("multiclass", n=80)
    if sparse:
        X = sp.csr_matrix(np.where(np.abs(X) > 0.2, X, 0.0))
    est = LogisticRegression(backend=backend, batch_size=8, momentum=0.9, max_iter=4, tol=None,
                             random_state=0, warm_start=method == "warm_start")
    est.fit(X, y)
    est.partial_fit(X, y)  # velocity, counters and the partial_fit stream all in use
    twin = pickle.loads(pickle.dumps(est))
    rec = interrupt_epoch(monkeypatch, backend, after=1 if method == "partial_fit" else 3)
    with pytest.raises(KeyboardInterrupt):
        if method == "partial_fit":
            est.partial_fit(X, y)
        else:
            est.fit(X, y)
    assert rec["backend"].calls == rec["backend"].after  # it was interrupted mid-call
    assert_same_state(est, twin)
    # and it goes on exactly as the untouched twin does
    monkeypatch.undo()
    est.partial_fit(X, y)
    twin.partial_fit(X, y)
    assert_same_state(est, twin)


def test_a_failed_fit_draws_nothing_from_a_random_state_instance(monkeypatch):
    X, y = make_data("regression", n=50)
    rs = np.random.RandomState(3)
    est = LinearRegression(batch_size=4, max_iter=5, tol=None, random_state=rs)
    interrupt_epoch(monkeypatch, "numpy", after=3)
    with pytest.raises(KeyboardInterrupt):
        est.fit(X, y)
    monkeypatch.undo()
    assert not hasattr(est, "coef_")
    np.testing.assert_array_equal(rs.get_state()[1], np.random.RandomState(3).get_state()[1])
    fresh = LinearRegression(batch_size=4, max_iter=5, tol=None, random_state=np.random.RandomState(3))
    np.testing.assert_array_equal(est.fit(X, y).coef_, fresh.fit(X, y).coef_)


def test_asynchronous_interrupts_never_leave_a_half_updated_model():
    """Ctrl-C (``_thread.interrupt_main``) at random moments of partial_fit calls: after
    each call, interrupted or not, the model is exactly the one after some whole number
    of successful calls, never a mix of the attributes of two."""
    X, y = make_data("regression", n=3000, d=20, seed=4)
    params = {"backend": "numba", "batch_size": 1, "momentum": 0.9, "random_state": 0}
    ref = LinearRegression(**params)
    states = [{}]
    for _ in range(60):
        ref.partial_fit(X, y)
        states.append(pickle.loads(pickle.dumps(ref)))
    tic = time.perf_counter()
    ref.partial_fit(X, y)
    per_call = time.perf_counter() - tic
    rng = np.random.default_rng(0)
    est = LinearRegression(**params)
    done = interrupted = 0
    for _ in range(150):
        if done == len(states) - 1:
            break
        timer = threading.Timer(rng.uniform(0, 1.5 * per_call), _thread.interrupt_main)
        try:
            timer.start()
            est.partial_fit(X, y)
            timer.join()
        except KeyboardInterrupt:
            interrupted += 1
        timer.join()
        try:  # an interrupt that arrived just after the call ends up here
            time.sleep(0)
            time.sleep(0)
        except KeyboardInterrupt:
            interrupted += 1
        if not hasattr(est, "t_"):
            assert done == 0
            continue
        # the model matches the state after `done` or `done + 1` successful calls
        matches = [k for k in (done, done + 1) if k > 0 and est.t_ == states[k].t_]
        assert matches, (est.t_, done)
        done = matches[0]
        assert_same_state(est, states[done])
    assert interrupted > 10 and done > 10  # both outcomes were exercised


INTERRUPT_CHILD = """
import json, os, signal, sys, threading, time
import numpy as np
import fastgd._run
from fastgd import LogisticRegression
backend, poll = sys.argv[1], sys.argv[2] == "poll"
if not poll:  # the control: every kernel runs on the calling (main) thread
    fastgd._run.INTERRUPTIBLE_MIN_WORK = float("inf")
rng = np.random.default_rng(0)
X = rng.standard_normal((200_000, 100)); y = rng.integers(0, 50, 200_000)  # 50 classes
params = dict(backend=backend, batch_size=1, learning_rate="constant", eta0=1e-3, tol=None,
              random_state=0)
est = LogisticRegression(max_iter=2, **params).fit(X[:2000], y[:2000])
before = est.coef_.copy()
tic = time.perf_counter()
LogisticRegression(max_iter=1, **params).fit(X[:50_000], y[:50_000])
epoch = 4 * (time.perf_counter() - tic)  # one epoch over all rows, about
sent = []
def interrupt():
    time.sleep(0.5 * epoch)  # in the middle of the first epoch
    sent.append(time.perf_counter())
    os.kill(os.getpid(), signal.SIGINT)
threading.Thread(target=interrupt).start()
try:
    est.set_params(warm_start=True, max_iter=3).fit(X, y)
    outcome = "finished"
except KeyboardInterrupt:
    outcome = "interrupted"
latency = time.perf_counter() - sent[0]
print(json.dumps({"outcome": outcome, "latency": latency, "epoch": epoch,
                  "unchanged": bool(np.array_equal(before, est.coef_))}))
"""


@pytest.mark.parametrize("backend", FAST_BACKENDS)
def test_ctrl_c_takes_effect_within_an_epoch(backend):
    """A real SIGINT in the middle of a long epoch (about a second: 200000 x 100, 50
    classes, SGD) raises KeyboardInterrupt within 0.5 s and leaves the warm-started model
    as it was. The control run, with every kernel on the main thread, waits for the
    kernel to return: there the interrupt comes a sizeable part of an epoch late."""
    import json

    def child(mode):
        out = subprocess.run([sys.executable, "-c", INTERRUPT_CHILD, backend, mode], capture_output=True,
                             text=True, timeout=300, check=True)
        return json.loads(out.stdout.strip().splitlines()[-1])

    fast = child("poll")
    assert fast["outcome"] == "interrupted" and fast["unchanged"], fast
    assert fast["latency"] < 0.5, fast
    assert fast["epoch"] > 0.5, fast  # the epoch was long enough for this to mean something
    control = child("inline")
    assert control["outcome"] == "interrupted" and control["unchanged"], control
    assert control["latency"] > 0.2 * control["epoch"], control


# ----------------------------------------------------------------------------- threads
@pytest.mark.parametrize("backend", FAST_BACKENDS)
@pytest.mark.parametrize("batch_size", [1, 64, "full"])
def test_kernels_release_the_gil(backend, batch_size):
    """While one thread is inside a kernel, another thread runs Python code: the main
    thread records time stamps while a worker runs one epoch; with the GIL held for the
    whole kernel, no stamp could fall inside it."""
    kernels = get_backend(backend)
    rng = np.random.default_rng(0)
    n, d = 300_000, 40
    X = rng.standard_normal((n, d))
    Y = rng.standard_normal((n, 1))
    sw = np.ones(n)
    order = rng.permutation(n)
    hp = np.zeros(P.N_HP)
    hp[P.ETA0] = 1e-4
    hp[P.MOMENTUM] = 0.9
    codes = np.zeros(P.N_CODES, dtype=np.int64)
    codes[P.BATCH_SIZE] = n if batch_size == "full" else batch_size
    codes[P.FIT_INTERCEPT] = 1
    codes[P.N_THREADS] = 1
    state = np.zeros((2, 1, d + 1))
    windows = []
    stamps = []

    def middle_stamps():
        """Stamps in the middle half of a kernel call: with the GIL held for the whole
        call, the main thread could record none there."""
        return sum(1 for a, b in windows for s in stamps if a + (b - a) / 4 < s < b - (b - a) / 4)

    def work():
        for _ in range(200):
            tic = time.perf_counter()
            kernels.epoch(X=X, Y=Y, sw=sw, order=order, state=state, hp=hp, codes=codes)
            windows.append((tic, time.perf_counter()))
            if sum(b - a for a, b in windows) > 0.1 and middle_stamps() >= 10:
                return

    worker = threading.Thread(target=work)
    worker.start()
    while worker.is_alive():
        stamps.append(time.perf_counter())
        time.sleep(0.0005)
    worker.join()
    assert sum(b - a for a, b in windows) > 0.1  # long enough to tell
    assert middle_stamps() >= 10, (len(windows), len(stamps))


# ----------------------------------------------------------------------------- memory
def traced_peak(call):
    """Peak bytes allocated (tracemalloc: NumPy and Python allocations) during ``call()``."""
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        base, _ = tracemalloc.get_traced_memory()
        call()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak - base


@pytest.mark.parametrize("backend", ALL_BACKENDS)
@pytest.mark.parametrize("batch_size", [1, 32, "full"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_fit_allocates_little_beside_x(backend, batch_size, dtype):
    """A fit on a C-contiguous float X (100 columns) allocates under 10% of X: no copy
    of X, only arrays of n values. The compiled backends allocate at most the sample
    weights, a copy of the targets and two int64 permutations (this epoch's and the
    next's, drawn in the background). The "auto" step's fixed-size sample is measured in
    the next test; here the step is given."""
    rng = np.random.default_rng(0)
    n, d = 20_000, 100
    X = rng.standard_normal((n, d)).astype(dtype)
    y = X[:, :5].sum(axis=1) + rng.standard_normal(n).astype(dtype)
    est = LinearRegression(backend=backend, batch_size=batch_size, learning_rate="constant", eta0=1e-3,
                           max_iter=2, tol=None, random_state=0)
    est.fit(X[:100], y[:100])  # imports, compiled kernels, thread pools
    extra = traced_peak(lambda: est.fit(X, y))
    assert extra < 0.10 * X.nbytes, f"{extra / X.nbytes:.1%} of X"
    if backend != "numpy":  # (the reference computes with per-batch temporaries)
        assert extra < n * (2 * X.itemsize + 16) * 1.05 + 100_000, f"{extra / n:.1f} bytes per row"
    assert np.all(np.isfinite(est.coef_))


@pytest.mark.parametrize("n", [30_000, 300_000])
def test_auto_step_memory_is_a_fixed_sample(n):
    """The "auto" step's power iteration copies at most EIGEN_MAX_ROWS rows (as float64)
    whatever n is: the same peak for ten times the rows."""
    from fastgd._smoothness import EIGEN_MAX_ROWS

    d = 20
    X = np.random.default_rng(0).standard_normal((n, d)).astype(np.float32)
    est = LinearRegression(max_iter=1, tol=None, random_state=0).fit(X[:100], X[:100, 0])
    extra = traced_peak(lambda: est.fit(X, X[:, 0]))
    per_row = 4 + 4 + 16  # weights and targets in float32, two int64 permutations
    assert extra < n * per_row * 1.1 + EIGEN_MAX_ROWS * (d + 1) * 8 * 1.5, extra


def test_unit_weights_are_not_copied():
    sw = np.ones(1000)
    assert normalise_weights(sw) is sw
    sw2 = np.full(1000, 2.0)
    np.testing.assert_array_equal(normalise_weights(sw2), np.ones(1000))


# ----------------------------------------------------------------------------- determinism
def _fit_coef(backend, batch_size, n_jobs, sparse=False, seed=0):
    X, y = make_data("multiclass", n=3000, d=12, seed=seed)
    if sparse:
        X = sp.csr_matrix(np.where(np.abs(X) > 0.2, X, 0.0))
    est = LogisticRegression(backend=backend, optimizer="sgd", batch_size=batch_size, n_jobs=n_jobs, momentum=0.9,
                             max_iter=3, tol=None, random_state=11).fit(X, y)
    return np.concatenate([est.coef_.ravel(), est.intercept_, est._state[1].ravel()])


@pytest.mark.parametrize("sparse", [False, True], ids=["dense", "sparse"])
@pytest.mark.parametrize("batch_size", [1, 32, "full"])
def test_n_jobs_never_changes_a_bit(backend, batch_size, sparse, threads_always):
    base = _fit_coef(backend, batch_size, 1, sparse)
    for n_jobs in (2, 4, -1):
        np.testing.assert_array_equal(_fit_coef(backend, batch_size, n_jobs, sparse), base)


RUN_IN_CHILD = """
import hashlib, pickle, sys
import numpy as np
sys.path.insert(0, {root!r})
from tests.test_reliability import _fit_coef
print(" ".join(hashlib.sha256(_fit_coef(b, bs, 2, sp).tobytes()).hexdigest()[:16]
               for b in ("numpy", "numba", "cython") for bs in (1, "full") for sp in (False, True)))
"""


def test_identical_bits_in_a_fresh_process():
    import hashlib
    import pathlib

    root = str(pathlib.Path(__file__).resolve().parents[1])
    out = subprocess.run([sys.executable, "-c", RUN_IN_CHILD.format(root=root)], capture_output=True,
                         text=True, timeout=300, check=True)
    here = " ".join(hashlib.sha256(_fit_coef(b, bs, 2, s).tobytes()).hexdigest()[:16]
                    for b in ("numpy", "numba", "cython") for bs in (1, "full") for s in (False, True))
    assert out.stdout.split() == here.split()


# ----------------------------------------------------------------------------- pickling
BLOCK_IMPORTS = """
import importlib.abc, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if any(name == b or name.startswith(b + ".") for b in {blocked!r}):
            raise ImportError("blocked for the test: " + name)
sys.meta_path.insert(0, Block())
"""

UNPICKLE_IN_CHILD = """
import pickle, sys
import numpy as np
payload = pickle.loads(sys.stdin.buffer.read())
est, X, y = payload["est"], payload["X"], payload["y"]
out = {{"predict": est.predict(X)}}
if hasattr(est, "predict_proba"):
    out["proba"] = est.predict_proba(X)
try:
    est.partial_fit(X, y)
    out["same_backend"] = "ok"
except ImportError as exc:
    out["same_backend"] = "ImportError: " + str(exc)
    out["after_failure"] = est.coef_.copy()
est.set_params(backend={fallback!r}).partial_fit(X, y)
out["continued"] = est.coef_
out["modules"] = sorted(m for m in ("numba", "fastgd._cython._kernels") if m in sys.modules)
sys.stdout.buffer.write(pickle.dumps(out))
"""


_MISSING = [
    ("numba", ["fastgd._cython"], "numpy", "numba-fit-no-cython"),
    ("cython", ["fastgd._cython"], "numba", "cython-fit-no-cython"),
    ("cython", ["numba", "fastgd._cython"], "numpy", "cython-fit-neither"),
    ("numba", ["numba"], "cython", "numba-fit-no-numba"),
]


# a child process each: every scenario once in the default run (the kinds alternating),
# both kinds for every scenario with --full
@pytest.mark.parametrize(
    "kind,fitted_with,blocked,fallback",
    [
        pytest.param(kind, fitted, blocked, fallback, id=f"{kind}-{name}",
                     marks=() if (i + k) % 2 == 0 else (pytest.mark.full,))
        for k, kind in enumerate(["regression", "multiclass"])
        for i, (fitted, blocked, fallback, name) in enumerate(_MISSING)
    ],
)
def test_unpickled_where_a_backend_is_missing(fitted_with, blocked, fallback, kind):
    """Fit with one backend, unpickle in a process where it cannot be imported: the
    model predicts as before (prediction needs no kernel), training with the missing
    backend fails with an ImportError that leaves the model intact, and switching the
    backend continues the fit exactly as it would in the original process."""
    X, y = make_data(kind, n=120, d=5)
    cls = LinearRegression if kind == "regression" else LogisticRegression
    est = cls(backend=fitted_with, batch_size=8, momentum=0.9, **QUIET).fit(X, y)
    code = BLOCK_IMPORTS.format(blocked=blocked) + UNPICKLE_IN_CHILD.format(fallback=fallback)
    payload = pickle.dumps({"est": est, "X": X, "y": y})
    out = subprocess.run([sys.executable, "-c", code], input=payload, capture_output=True, timeout=300, check=False)
    assert out.returncode == 0, out.stderr.decode()[-3000:]
    got = pickle.loads(out.stdout)
    np.testing.assert_array_equal(got["predict"], est.predict(X))
    if "proba" in got:
        np.testing.assert_array_equal(got["proba"], est.predict_proba(X))
    missing = ("fastgd._cython" if fitted_with == "cython" else fitted_with) in blocked
    if missing:
        assert got["same_backend"].startswith(f"ImportError: fastgd backend '{fitted_with}' is not available")
        np.testing.assert_array_equal(got["after_failure"], est.coef_)
    else:
        assert got["same_backend"] == "ok"
    for name in blocked:
        assert not any(m == name or m.startswith(name + ".") for m in got["modules"])
    here = pickle.loads(pickle.dumps(est))
    if not missing:
        here.partial_fit(X, y)
    here.set_params(backend=fallback).partial_fit(X, y)
    np.testing.assert_array_equal(got["continued"], here.coef_)


def test_clone_and_joblib(backend, tmp_path):
    import joblib

    X, y = make_data("multiclass", n=200)
    est = LogisticRegression(backend=backend, batch_size=16, momentum=0.5, **QUIET).fit(X, y)
    fresh = clone(est)
    assert fresh.get_params() == est.get_params() and not hasattr(fresh, "coef_")
    np.testing.assert_array_equal(fresh.fit(X, y).coef_, est.coef_)
    joblib.dump(est, tmp_path / "model.joblib")
    loaded = joblib.load(tmp_path / "model.joblib")
    assert_same_state(loaded, est)
    np.testing.assert_array_equal(loaded.predict_proba(X), est.predict_proba(X))


def test_joblib_parallel_processes_and_threads_match_sequential_fits():
    from joblib import Parallel, delayed

    def fit(backend, seed):
        X, y = make_data("multiclass", n=400, seed=seed)
        est = LogisticRegression(backend=backend, batch_size=8, momentum=0.9, **QUIET)
        return est.fit(X, y).coef_

    jobs = [(b, s) for b in ALL_BACKENDS for s in range(2)]
    sequential = [fit(b, s) for b, s in jobs]
    for prefer in ("processes", "threads"):
        results = Parallel(n_jobs=2, prefer=prefer)(delayed(fit)(b, s) for b, s in jobs)
        for a, b in zip(sequential, results, strict=True):
            np.testing.assert_array_equal(a, b)


FORK_SCRIPT = """
import os, sys
import numpy as np
from fastgd import LogisticRegression
import fastgd._tuning
fastgd._tuning.PARALLEL_MIN_VALUES = 0  # threads even for this small full batch
rng = np.random.default_rng(0)
X = rng.standard_normal((6000, 8)); y = (X[:, 0] + 0.3 * rng.standard_normal(6000) > 0).astype(int)

def fits():
    return [LogisticRegression(backend=b, batch_size=bs, n_jobs=2, max_iter=3, tol=None, random_state=0)
            .fit(X, y).coef_.tobytes() for b in ("numba", "cython") for bs in (1, 16, "full")]

parent = fits()  # the thread pools, the background permutation thread and OpenMP all started
pid = os.fork()
if pid == 0:
    ok = fits() == parent
    os._exit(0 if ok else 3)
_, status = os.waitpid(pid, 0)
print("child exit", os.waitstatus_to_exitcode(status), "parent again", fits() == parent)
"""


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="needs os.fork")
def test_fits_in_a_forked_child_match_the_parent():
    """A child forked after threaded fits (Numba's pool, the permutation thread, OpenMP)
    fits without hanging and gets the parent's bits; so does the parent afterwards."""
    out = subprocess.run([sys.executable, "-c", FORK_SCRIPT], capture_output=True, text=True, timeout=300,
                         check=False)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.split() == ["child", "exit", "0", "parent", "again", "True"]


CACHE_CHILD = """
import hashlib
import numpy as np
from fastgd import LinearRegression, LogisticRegression
rng = np.random.default_rng(0)
X = rng.standard_normal((300, 7))
y = X @ rng.standard_normal(7) + 0.1 * rng.standard_normal(300)
classes = (y > 0).astype(int) + (y > 1)
fits = [
    LinearRegression(backend="numba", batch_size=8, momentum=0.9, max_iter=3, tol=None, random_state=0).fit(X, y),
    LogisticRegression(backend="numba", batch_size=8, momentum=0.9, max_iter=3, tol=None, random_state=0).fit(X, classes),
    LogisticRegression(backend="numba", batch_size=1, momentum=0.9, max_iter=3, tol=None, random_state=0).fit(X, classes),
]
print(" ".join(hashlib.sha256(f.coef_.tobytes() + f._state.tobytes()).hexdigest()[:16] for f in fits))
"""


@pytest.mark.full  # two child processes, the first compiling into an empty cache
@pytest.mark.skipif(__import__("numba").config.DISABLE_JIT, reason="about the JIT's cache")
def test_numba_gives_the_same_bits_compiled_or_loaded_from_its_cache(tmp_path):
    """The first process on a machine compiles the Numba kernels, later ones load them
    from the on-disk cache: both must compute the same bits. (They did not when a
    fastmath loop sat in a separate jitted function: compiled in the same process as its
    caller, LLVM inlined and re-optimised it in the caller's context, and a caller
    loaded from the cache linked the separately compiled one, which summed in another
    order. The kernels' helpers are now inlined by Numba itself, so the code is the
    same either way.)"""
    import os

    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path)}
    runs = [subprocess.run([sys.executable, "-c", CACHE_CHILD], capture_output=True, text=True, env=env,
                           timeout=600, check=True).stdout.split() for _ in range(2)]
    assert any(tmp_path.rglob("*.nbc"))  # the first run wrote the cache the second read
    assert runs[0] == runs[1]
