"""The compiled kernels' vectorisable exp and log1p (``fastgd._vmath``) against NumPy, in
ulps over a grid that includes the extremes, and the log loss they compute through each
backend's kernel at outputs far outside exp's range, infinite or NaN."""

import importlib
import math

import numpy as np
import pytest

from fastgd import _params as P
from fastgd._backends import get_backend
from fastgd._losses import LOG

numba = pytest.importorskip("numba")

from fastgd._numba import kernels as NK
from fastgd._numba.losses import vexp, vlog1p

EXP_ULPS = 2  # measured: 1 (Numba with the kernels' fastmath, both Cython builds)
LOG1P_ULPS = 3  # measured: 3 with the kernels' fastmath (reassociation), 1 without


def _ulps(a, b):
    """Distance in ulps between float64 arrays (0 where equal or both NaN)."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    same = (a == b) | (np.isnan(a) & np.isnan(b))
    # the integer order of doubles of one sign (both signs never meet here: exp > 0, log1p >= 0)
    d = np.abs(a.view(np.int64) - b.view(np.int64)).astype(np.float64)
    d[same] = 0.0
    d[np.isnan(a) != np.isnan(b)] = np.inf
    return d


def _exp_grid():
    rng = np.random.default_rng(0)
    e_max = 709.782712893384  # log of the largest double
    special = [0.0, -0.0, 1e-300, -1e-300, 5e-324, 1.0, -1.0, np.inf, -np.inf, np.nan,
               e_max, np.nextafter(e_max, np.inf), np.nextafter(e_max, 0.0), 710.0, 1e308,
               -708.3964185322641,  # the smallest normal result
               -708.4, -740.0, -744.44, -745.1332191019411, -745.1332191019412, -745.14,
               -746.0, -1e308, 0.5 * math.log(2), -0.5 * math.log(2)]
    return np.concatenate([
        rng.uniform(-750, 712, 200_000),  # every exponent, subnormal results and overflow included
        rng.uniform(-1, 1, 50_000),
        -np.exp(rng.uniform(-745, 6.6, 50_000)),  # tiny to large |x|, the loss's -|z|
        np.array(special),
    ])


def _log1p_grid():
    rng = np.random.default_rng(1)
    special = [0.0, 5e-324, 1e-310, 2.2250738585072014e-308, 1e-300, 1e-17, 1e-8, 0.5, 1.0,
               np.nan, 0.41421356237309515, np.nextafter(0.41421356237309515, 1.0),
               np.nextafter(0.41421356237309515, 0.0), np.nextafter(1.0, 0.0)]
    return np.concatenate([rng.uniform(0, 1, 100_000), np.exp(rng.uniform(-745, 0, 100_000)), np.array(special)])


def _numba_values(fn, x):
    """``fn`` over x in a loop compiled with the kernels' fastmath flags (as in the
    kernels; without the JIT, plain Python on NumPy scalars)."""

    @numba.njit(fastmath=NK.FASTMATH, error_model="numpy")
    def loop(x, out):
        for i in range(x.shape[0]):
            out[i] = fn(x[i])

    out = np.empty_like(x)
    loop(x, out)
    return out


def _cython_modules():
    out = []
    for name in ("fastgd._cython._kernels", "fastgd._cython._kernels_avx2"):
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        if name.endswith("avx2") and not module.cpu_has_avx2_fma():
            continue
        out.append(module)
    return out


def _implementations():
    """(name, exp over an array, log1p over an array, grid stride) for every compiled
    implementation (without the JIT, every 50th point of the grids: plain Python is slow)."""
    stride = 50 if numba.config.DISABLE_JIT else 1
    impls = [("numba", lambda x: _numba_values(vexp, x), lambda x: _numba_values(vlog1p, x), stride)]
    for module in _cython_modules():
        impls.append((module.__name__, module.vexp_values, module.vlog1p_values, 1))
    return impls


IMPLS = _implementations()
FIELDS = ("name", "exp", "log1p", "stride")


@pytest.mark.parametrize(FIELDS, IMPLS, ids=[i[0] for i in IMPLS])
def test_exp_within_a_few_ulps_of_numpy(name, exp, log1p, stride):
    x = np.concatenate([_exp_grid()[:-30:stride], _exp_grid()[-30:]])  # (every special value)
    got = exp(x)
    with np.errstate(over="ignore"):
        want = np.exp(x)
    assert _ulps(got, want).max() <= EXP_ULPS
    # the edges exactly: limits, NaN, overflow, the last subnormals
    tail = np.array([np.inf, -np.inf, np.nan, 710.0, -746.0, -745.14, 709.782712893384])
    got = exp(tail)
    assert np.isinf(got[0]) and got[0] > 0 and got[1] == 0 and np.isnan(got[2])
    assert np.isinf(got[3]) and got[4] == 0 and got[5] == 0 and np.isfinite(got[6])


@pytest.mark.parametrize(FIELDS, IMPLS, ids=[i[0] for i in IMPLS])
def test_log1p_within_a_few_ulps_of_numpy(name, exp, log1p, stride):
    x = np.concatenate([_log1p_grid()[:-20:stride], _log1p_grid()[-20:]])
    got = log1p(x)
    assert _ulps(got, np.log1p(x)).max() <= LOG1P_ULPS
    edge = log1p(np.array([0.0, 5e-324, 1e-310, np.nan]))
    assert edge[0] == 0 and edge[1] == 5e-324 and edge[2] == 1e-310 and np.isnan(edge[3])


# outputs z of the log loss: far beyond exp's range, near 0, infinite and NaN
Z = [0.0, -0.0, 1e-20, -1e-20, 0.3, -0.3, 5.0, -5.0, 36.0, -36.0, 40.0, -40.0, 700.0, -700.0,
     745.5, -745.5, 800.0, -800.0, 1e5, -1e5, 1e300, -1e300, np.inf, -np.inf, np.nan]


def _scalar_log_loss(z, y):
    """The value and derivative of the log loss as the scalar kernels compute them."""
    if z > 0:
        e = math.exp(-z)
        return z * (1.0 - y) + math.log1p(e), 1.0 / (1.0 + e) - y
    if math.isnan(z):
        return math.nan, math.nan
    e = math.exp(z)
    with np.errstate(invalid="ignore"):
        return float(np.log1p(e) - np.float64(y) * z), e / (1.0 + e) - y


def _close(got, want):
    if math.isnan(want) or math.isinf(want):
        return (math.isnan(got) and math.isnan(want)) or got == want
    return abs(got - want) <= 1e-15 * abs(want) + 1e-300


@pytest.mark.parametrize("backend", ["numba", "cython"])
@pytest.mark.parametrize("y", [0.0, 1.0])
def test_log_loss_at_extreme_outputs_through_the_kernel(backend, y):
    """One row, X = [[z]] and W = [[1, 0]], so the kernel's output is z itself: its loss
    and gradient (``gradient``, through the block loss loop) are the scalar formulas'
    values; NaN stays NaN (the driver detects divergence by it), |z| beyond exp's range
    gives the sigmoid's limits and a loss of |z| on the wrong side."""
    kernels = get_backend(backend)
    codes = np.zeros(P.N_CODES, dtype=np.int64)
    codes[P.LOSS] = LOG
    W = np.array([[1.0, 0.0]])
    for z in Z:
        G = np.zeros((1, 2))
        with np.errstate(all="ignore"):
            total = kernels.gradient(np.array([[z]]), np.array([[y]]), np.ones(1), W, codes, G)
            value, g = _scalar_log_loss(z, y)
        assert _close(total, value), (z, y, total, value)
        assert _close(G[0, 1], g), (z, y, G[0, 1], g)  # the intercept's gradient: dloss/dz
        if abs(z) >= 745.5 and not math.isinf(z):  # exp(-|z|) is 0: the limits
            assert G[0, 1] == ((1.0 if z > 0 else 0.0) - y)
            assert total == (abs(z) if (z > 0) != (y > 0) else 0.0)
