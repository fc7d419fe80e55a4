"""The Cython backend's own guarantees: a clear ImportError when it is not built, and a
kernel that refuses arrays it was not written for instead of reading out of bounds.

(Its equivalence with the NumPy reference runs in test_backends.py, over every backend.)
"""

import sys

import numpy as np
import pytest

from fastgd import LinearRegression, LogisticRegression, _tuning
from fastgd import _params as P
from fastgd._backends import get_backend

from ._grids import grid
from .conftest import make_data

kernels = pytest.importorskip("fastgd._cython._kernels", reason="the cython extension is not built")


def _builds():
    """The compiled builds of the kernels that this machine can run (the baseline one, and
    the AVX2 one where it was built and the CPU has AVX2 and FMA)."""
    import importlib

    mods = [kernels]
    if kernels.cpu_has_avx2_fma():
        try:
            mods.append(importlib.import_module("fastgd._cython._kernels_avx2"))
        except ImportError:
            pass
    return mods


BUILDS = _builds()
BUILD_IDS = [m.__name__.rsplit(".", 1)[1] for m in BUILDS]


@pytest.fixture(params=BUILDS, ids=BUILD_IDS)
def build(request):
    return request.param


def test_missing_extension_gives_an_import_error_saying_how_to_build(monkeypatch):
    monkeypatch.delitem(sys.modules, "fastgd._cython.kernels", raising=False)
    monkeypatch.setitem(sys.modules, "fastgd._cython._kernels", None)  # import fails
    with pytest.raises(ImportError, match=r"backend 'cython' is not available.*pip install -e \."):
        get_backend("cython")
    X, y = make_data("regression", n=20)
    with pytest.raises(ImportError, match="gcc"):
        LinearRegression(backend="cython").fit(X, y)
    # the other backends are unaffected
    assert LinearRegression(backend="numpy", max_iter=2, tol=None).fit(X, y).n_iter_ == 2


def _args(n=6, d=3, K=1, loss=0, dtype=np.float64):
    rng = np.random.default_rng(0)
    codes = np.zeros(P.N_CODES, dtype=np.int64)
    codes[P.LOSS] = loss
    codes[P.BATCH_SIZE] = 2
    codes[P.FIT_INTERCEPT] = 1
    codes[P.N_THREADS] = 1
    hp = np.zeros(P.N_HP)
    hp[P.ETA0] = 0.1
    return {
        "X": rng.standard_normal((n, d)).astype(dtype),
        "Y": np.ones((n, 1), dtype=dtype),
        "sw": np.ones(n, dtype=dtype),
        "order": np.arange(n, dtype=np.int64),
        "state": np.zeros((2, K, d + 1), dtype=dtype),
        "hp": hp,
        "codes": codes,
    }


def test_valid_call_runs(build):
    args = _args()
    assert build.epoch(**args) > 0
    assert np.abs(args["state"][0]).max() > 0


@pytest.mark.parametrize(
    "change,error,match",
    [
        (lambda a: a.update(X=np.asfortranarray(a["X"])), ValueError, "contiguous"),
        (lambda a: a.update(X=a["X"][::2]), ValueError, "contiguous"),
        (lambda a: a.update(X=a["X"].astype(np.float32)), ValueError, "dtype mismatch"),
        (lambda a: a.update(X=a["X"].astype(np.int64)), TypeError, "No matching signature"),
        (lambda a: a.update(Y=a["Y"][:3]), ValueError, "rows"),
        (lambda a: a.update(sw=a["sw"][:3]), ValueError, "rows"),
        (lambda a: a.update(order=np.array([0, 1, 2, 3, 4, 6], dtype=np.int64)), ValueError, "outside"),
        (lambda a: a.update(order=np.array([0, 1, 2, 3, 4, -1], dtype=np.int64)), ValueError, "outside"),
        (lambda a: a.update(order=np.arange(6, dtype=np.int32)), ValueError, "dtype mismatch"),
        (lambda a: a.update(state=np.zeros((2, 1, 3))), ValueError, "state"),
        (lambda a: a["codes"].__setitem__(P.BATCH_SIZE, 0), ValueError, "batch"),
        (lambda a: a["codes"].__setitem__(P.LOSS, 2), ValueError, "outputs"),  # softmax, K=1
        (lambda a: a.update(hp=np.zeros(2)), ValueError, "layout"),
    ],
    ids=["fortran", "strided", "mixed-dtype", "int", "short-Y", "short-sw", "order-high", "order-negative",
         "order-int32", "state-shape", "batch-0", "loss-vs-outputs", "short-hp"],
)
def test_kernel_rejects_what_it_was_not_written_for(build, change, error, match):
    args = _args()
    change(args)
    before = args["state"].copy()
    with pytest.raises(error, match=match):
        build.epoch(**args)
    np.testing.assert_array_equal(args["state"], before)  # nothing was touched


def test_kernel_rejects_class_indices_outside_the_outputs(build):
    args = _args(K=3, loss=2)
    args["Y"][4, 0] = 3.0
    with pytest.raises(ValueError, match="class indices"):
        build.epoch(**args)
    args["Y"][4, 0] = 1.5
    with pytest.raises(ValueError, match="class indices"):
        build.epoch(**args)


@pytest.mark.parametrize(
    "dtype,loss,K,batch,nesterov,l1",
    grid([np.float64, np.float32], [(0, 2), (1, 1), (2, 3)], [1, 7, 5000], [(0, 0.0), (1, 0.0), (0, 0.01)],
         ids=lambda v: v.__name__ if isinstance(v, type) else None),
)
def test_every_build_matches_the_reference(build, dtype, loss, K, batch, nesterov, l1, threads_always):
    """Each compiled build (baseline and AVX2) against the NumPy reference, over the
    kernel's paths: fused SGD, mini-batch, blocked full batch (5000 rows, 2 blocks,
    summed on 2 threads); plain, Nesterov and L1 steps; the three losses."""
    from fastgd._numpy import kernels as reference

    rng = np.random.default_rng(3)
    n, d = 5000, 9
    X = rng.standard_normal((n, d)).astype(dtype)
    Y = rng.standard_normal((n, K)).astype(dtype) if loss == 0 else rng.integers(0, max(K, 2), (n, 1)).astype(dtype)
    sw = rng.uniform(0.5, 1.5, n).astype(dtype)
    order = rng.permutation(n).astype(np.int64)
    hp = np.zeros(P.N_HP)
    hp[[P.ETA0, P.MOMENTUM, P.L2, P.L1]] = [0.01, 0.9, 1e-3, l1]
    codes = np.zeros(P.N_CODES, dtype=np.int64)
    codes[[P.LOSS, P.BATCH_SIZE, P.FIT_INTERCEPT, P.NESTEROV, P.N_THREADS]] = [loss, batch, 1, nesterov, 2]
    states = []
    for mod in (reference, build):
        state = np.zeros((2, K, d + 1), dtype=dtype)
        totals = [mod.epoch(X, Y, sw, order, state, hp, codes) for _ in range(2)]
        states.append((state, totals))
    rtol = 1e-10 if dtype == np.float64 else 2e-3
    np.testing.assert_allclose(states[1][0], states[0][0], rtol=rtol, atol=rtol * 1e-2)
    np.testing.assert_allclose(states[1][1], states[0][1], rtol=rtol)
    assert np.abs(states[1][0][0]).max() > 1e-4  # the fit moved


def test_read_only_inputs_fit_like_writable_ones():
    X, y = make_data("multiclass", n=60)
    ref = LogisticRegression(backend="cython", max_iter=3, tol=None, random_state=0).fit(X, y)
    X.setflags(write=False)
    y.setflags(write=False)
    est = LogisticRegression(backend="cython", max_iter=3, tol=None, random_state=0).fit(X, y)
    np.testing.assert_array_equal(est.coef_, ref.coef_)


@pytest.mark.parametrize("rows", [1, 4095, 4096, 10_000, 200_000, 10**7])
@pytest.mark.parametrize("K,cols", [(1, 11), (5, 101), (50, 5001)])
def test_blocks_cover_the_batch_like_the_numba_blocks(rows, K, cols):
    bounds = kernels.block_bounds(rows, K, cols)
    assert bounds[0] == 0 and bounds[-1] == rows and np.all(np.diff(bounds) > 0)
    assert len(bounds) - 1 <= _tuning.MAX_BLOCKS
    assert (len(bounds) - 1) * K * cols <= max(_tuning.MAX_BUFFER, K * cols)
    numba_kernels = pytest.importorskip("fastgd._numba.kernels")
    assert len(bounds) == len(numba_kernels.block_bounds(rows, K, cols))


def test_the_c_block_count_is_the_python_rule(build):
    """The epoch's nogil loop counts its blocks in C (``_n_blocks``); the rule is written
    once, in Python (``fastgd._tuning.n_blocks``, behind both backends' ``block_bounds``),
    and the C count must equal it for every shape."""
    assert build.block_bounds is _tuning.block_bounds
    rows = sorted({0, 1, 2, 2047, 2048, 4095, 4096, 6000, 28684, 131071, 10**7, 2**40}
                  | {m * _tuning.MIN_BLOCK_ROWS + e for m in range(1, 70) for e in (-1, 0, 1)})
    shapes = [(1, 2), (1, 11), (2, 5), (3, 21), (5, 101), (50, 5001), (1, 2**22), (7, 2**20), (1, 2**23)]
    for n in rows:
        for K, cols in shapes:
            nb = build.c_n_blocks(n, K, cols)
            assert nb == _tuning.n_blocks(n, K, cols), (n, K, cols)
            # the C loop ends block b at (b + 1) * n // nb: at most one row after the
            # Numba kernels' boundary (linspace), as fastgd._tuning.block_bounds says
            diff = (np.arange(nb + 1, dtype=np.int64) * n) // nb - _tuning.block_bounds(n, K, cols)
            assert np.all((diff == 0) | (diff == 1)), (n, K, cols)
    assert _tuning.block_bounds(28684, 1, 11)[7] == 14341 and 7 * 28684 // 14 == 14342


def test_large_minibatches_are_blocked_and_thread_independent(threads_always):
    """A mini-batch of >= 2 * MIN_BLOCK_ROWS rows is summed over blocks (in parallel with
    OpenMP); the result must not depend on n_jobs and must match the reference."""
    X, y = make_data("multioutput", n=10_000, seed=6)
    params = {"batch_size": 6000, "max_iter": 3, "tol": None, "random_state": 1}
    fits = [LinearRegression(backend="cython", n_jobs=j, **params).fit(X, y) for j in (1, 2)]
    np.testing.assert_array_equal(fits[0].coef_, fits[1].coef_)
    ref = LinearRegression(backend="numpy", **params).fit(X, y)
    np.testing.assert_allclose(fits[1].coef_, ref.coef_, rtol=1e-10)
    assert len(kernels.block_bounds(6000, 2, 5)) - 1 == 2


STALE_SCRIPT = """
import fastgd._tuning
fastgd._tuning.LO_BITS += 1  # as if _tuning.py had changed since the extension was built
try:
    import fastgd._cython._sparse
except ImportError as exc:
    print(exc)
"""


def test_an_extension_built_with_other_tuning_values_refuses_to_import():
    """The Cython kernels compile fastgd._tuning's constants in (setup.py writes them into
    a header): a module whose values differ from the module's says so and asks for a
    rebuild, instead of running with the old ones."""
    import subprocess

    out = subprocess.run([sys.executable, "-c", STALE_SCRIPT], capture_output=True, text=True, timeout=120,
                         check=False)
    assert out.returncode == 0, out.stderr
    assert "other values of LO_BITS" in out.stdout and "rebuild" in out.stdout
    assert kernels.BUILT_TUNING == {name: getattr(_tuning, name) for name in kernels.BUILT_TUNING}


FORK_SCRIPT = """
import os, numpy as np
from fastgd import LinearRegression
from fastgd._cython import _kernels
X = np.random.default_rng(0).standard_normal((30000, 10)); y = X.sum(1)  # above PARALLEL_MIN_VALUES
p = dict(backend="cython", optimizer="sgd", batch_size="full", max_iter=3, tol=None, n_jobs=2)
a = LinearRegression(**p).fit(X, y).coef_
pid = os.fork()
if pid == 0:
    b = LinearRegression(**p).fit(X, y).coef_
    print("child", np.array_equal(a, b), _kernels.openmp_usable(), flush=True)
    os._exit(0)
os.waitpid(pid, 0)
print("parent", _kernels.openmp_usable() == _kernels.OPENMP)
"""


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="needs os.fork")
def test_fork_after_a_threaded_fit_does_not_hang():
    """GNU OpenMP hangs in a forked child whose parent ran a parallel region; the child
    must fall back to one thread and give the same result."""
    import subprocess

    out = subprocess.run([sys.executable, "-c", FORK_SCRIPT], capture_output=True, text=True, timeout=120, check=False)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["child", "True", "False", "parent", "True"]
