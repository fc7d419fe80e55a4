"""Properties the Numba kernels' speed depends on, checked on the compiled code.

Each test guards one measured cause of slowness (see the commit history of
``fastgd/_numba/kernels.py``): reference counting in the row loops, float32 data
computed in float64, and the intrinsics (prefetch, atomic counter) the loops use.
"""

import re
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

numba = pytest.importorskip("numba")

from fastgd._numba import kernels as K
from fastgd._numba._intrinsics import next_index, prefetch, prefetch1

jit_only = pytest.mark.skipif(numba.config.DISABLE_JIT, reason="inspects compiled code")
# every test compiles fresh copies of kernels (no cache) to inspect them: the full tier
pytestmark = pytest.mark.full


def _fresh(fn):
    """A copy of a kernel compiled here (not loaded from the cache, so it can be inspected)."""
    options = {k: v for k, v in fn.targetoptions.items() if k not in ("nopython", "cache")}
    return numba.njit(**options, cache=False)(fn.py_func)


def _row_args(dtype, n=64, d=20):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((n, d)).astype(dtype)
    Y = rng.standard_normal((n, 1)).astype(dtype)
    sw = np.ones(n, dtype=dtype)
    W = rng.standard_normal((1, d + 1)).astype(dtype)
    return X, Y, sw, W, np.arange(n, dtype=np.int64), np.empty((4, 1), dtype), np.zeros((1, d + 1), dtype)


def _scratch():
    """The float64 block scratch of ``_add_rows_single``."""
    return np.empty((4, K._tuning.LOSS_BLOCK_ROWS))


def _function_ir(fn, sig, name):
    """The LLVM IR of the function ``name`` inside ``fn``'s compiled module."""
    ir = fn.inspect_llvm(sig)
    for body in re.split(r"\n(?=define )", ir):
        head = body.split("\n", 1)[0]
        if head.startswith("define") and name in head and "cpython" not in head and "cfunc" not in head:
            return body
    raise AssertionError(f"{name} not found in the IR")


@jit_only
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_single_output_row_loop_counts_no_references(dtype):
    """Atomic incref/decref per row (array views, calls with array arguments) cost more
    than the arithmetic at small d, and contend between threads: the loop has none."""
    X, Y, sw, W, order, Ps, G = _row_args(dtype)
    # the log loss's loop by blocks and the squared error's row by row
    for name, extra in (("_add_rows_single", (K.LOG, Ps, G, _scratch())), ("_add_rows_rowwise", (Ps, G))):
        fn = _fresh(getattr(K, name))
        for how in (K.STORED, K.AHEAD):
            fn((X, Y, sw, False), W, order, 0, 63, how, *extra)
        for sig in fn.signatures:
            body = _function_ir(fn, sig, name)
            assert "NRT_incref" not in body and "NRT_decref" not in body
            assert not re.search(r"call [^@]*@_ZN", body), "the row loop calls another jitted function"


@jit_only
def test_float32_rows_are_not_computed_in_float64():
    """A float64 scalar (a Python float, a float64 loss gradient) times float32 data
    promotes the whole loop to float64 and halves its vector width."""
    fn = _fresh(K._add_rows_single)
    X, Y, sw, W, order, Ps, G = _row_args(np.float32)
    fn((X, Y, sw, False), W, order, 0, 63, K.STORED, K.LOG, Ps, G, _scratch())
    body = _function_ir(fn, fn.signatures[0], "_add_rows_single")
    assert not re.search(r"fpext <\d+ x float>", body)
    assert re.search(r"fmul [\w ]*<\d+ x float>", body), "the float32 loops are not vectorised"


@jit_only
def test_dot_products_are_vectorised():
    """Without reassociation the dot product is one serial chain of FMAs."""
    fn = _fresh(K._add_rows_single)
    X, Y, sw, W, order, Ps, G = _row_args(np.float64, d=100)
    fn((X, Y, sw, False), W, order, 0, 63, K.STORED, K.LOG, Ps, G, _scratch())
    body = _function_ir(fn, fn.signatures[0], "_add_rows_single")
    assert re.search(r"fadd reassoc[\w ]* <\d+ x double>", body)


def test_next_index_counts_once_per_call_across_threads():
    counter = np.zeros(1, dtype=np.int64)

    @numba.njit(nogil=True)
    def take(counter, times):
        last = -1
        for _ in range(times):
            last = next_index(counter)
        return last

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda _: take(counter, 10000), range(4)))
    assert counter[0] == 40000


def test_prefetch_reads_nothing_and_changes_nothing():
    X = np.arange(12.0).reshape(3, 4)
    x = np.arange(5.0)

    @numba.njit
    def touch(X, x):
        for i in range(X.shape[0]):
            prefetch(X, i, 0)
            prefetch(X, i, X.shape[1] - 1)
        for i in range(x.shape[0]):
            prefetch1(x, i)
        return X.sum() + x.sum()

    assert touch(X, x) == 66.0 + 10.0
    np.testing.assert_array_equal(X, np.arange(12.0).reshape(3, 4))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_unit_weights_shortcut_gives_the_same_bits(dtype):
    """With all weights 1 the shuffled loops read sw[0] instead of sw[i] (one random
    cache line fewer per row): the sums must be bit-identical to reading sw[i]."""
    X, Y, sw, W, order, Ps, _ = _row_args(dtype, n=203, d=7)
    order = np.random.default_rng(1).permutation(203).astype(np.int64)
    assert K._unit_weights(sw) and not K._unit_weights(np.append(sw, 2.0))
    # both one-output row loops: the log loss's by blocks, the squared error's row by row
    for single in (True, False):
        out = []
        for unit in (True, False):
            G = np.zeros((1, 8), dtype)
            if single:
                total = K._add_rows_single((X, Y, sw, unit), W, order, 0, 203, K.AHEAD, K.LOG, Ps, G, _scratch())
            else:
                total = K._add_rows_rowwise((X, Y, sw, unit), W, order, 0, 203, K.AHEAD, Ps, G)
            out.append((total, G))
        assert np.isfinite(out[0][0]) and out[0][0] == out[1][0]
        np.testing.assert_array_equal(out[0][1], out[1][1])


def test_the_thread_threshold_is_read_from_tuning_at_each_call(monkeypatch):
    """``PARALLEL_MIN_VALUES`` lives in ``fastgd._tuning`` and the epoch reads it at each
    call: lowering it there (as the ``threads_always`` fixture does) sends a small full
    batch to the thread pool, with the same bits as on one thread."""
    from fastgd import _params as P
    from fastgd import _tuning

    rng = np.random.default_rng(2)
    n, d = 3 * _tuning.MIN_BLOCK_ROWS, 3  # three blocks, far below the threshold
    X = rng.standard_normal((n, d))
    Y = rng.standard_normal((n, 1))
    hp = np.zeros(P.N_HP)
    hp[P.ETA0] = 0.1
    codes = np.zeros(P.N_CODES, dtype=np.int64)
    codes[[P.BATCH_SIZE, P.FIT_INTERCEPT, P.N_THREADS]] = [n, 1, 2]
    pools = []
    executor = K._executor
    monkeypatch.setattr(K, "_executor", lambda n_threads: pools.append(n_threads) or executor(n_threads))
    states = []
    for threshold in (_tuning.PARALLEL_MIN_VALUES, 0):
        monkeypatch.setattr(_tuning, "PARALLEL_MIN_VALUES", threshold)
        state = np.zeros((2, 1, d + 1))
        K.epoch(X, Y, np.ones(n), np.arange(n, dtype=np.int64), state, hp, codes)
        states.append(state)
        assert pools == ([1] if threshold == 0 else [])  # one other thread, from the pool
    np.testing.assert_array_equal(states[0], states[1])
