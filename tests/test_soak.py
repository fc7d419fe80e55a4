"""Soak: many calls in one process leak nothing, and a stream of ``partial_fit`` calls is
one ``fit``.

- ``partial_fit`` on a stream of small chunks, for every backend, dense and CSR: the
  process's resident memory is flat after a warm-up (least-squares slope of RSS
  against the call number), and the model equals one epoch of ``fit`` over the
  concatenated stream.
- a thousand fits of every kind in one process: no thread, file descriptor or memory
  is left behind.

A call costs 1.2 to 3 ms whatever the backend, most of it scikit-learn's parameter
and input validation, so by default a stream is 3,000 calls (2,000 for the NumPy
reference; about 30 s for the six streams); ``FASTGD_SOAK=1`` runs 10,000 calls per
stream (about 2 minutes).
"""

import os
import threading

import numpy as np
import pytest
import scipy.sparse as sp

from fastgd import LinearRegression, LogisticRegression

from .conftest import ALL_BACKENDS

# thousands of calls per stream: the full tier (pytest --full)
pytestmark = pytest.mark.full

SOAK = os.environ.get("FASTGD_SOAK") == "1"
# calls per stream: the NumPy reference's CSR kernel takes 3 ms a call, so fewer for it
N_CALLS = {"numpy": 10_000 if SOAK else 2_000, "numba": 10_000 if SOAK else 3_000,
           "cython": 10_000 if SOAK else 3_000}
WARM_UP = 1_000  # calls before memory has to be flat
EVERY = 100  # calls between RSS samples
SLOPE_BOUND = 1024  # bytes per call
D = 10
TRUE_COEF = np.linspace(-1.0, 1.0, D)
TRUE_INTERCEPT = 0.5
PAGE = os.sysconf("SC_PAGE_SIZE")


def rss():
    """Resident set size in bytes (/proc/self/statm: pages)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE


def os_threads():
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("Threads:"))


def open_fds():
    return len(os.listdir("/proc/self/fd"))


def chunk(i, sparse):
    """Chunk ``i`` of the stream: 16, 24 or 32 rows (whole batches of 8), from a generator
    seeded by ``i`` alone, so any chunk can be made again."""
    rng = np.random.default_rng([2024, i])
    rows = 16 + 8 * (i % 3)
    X = rng.standard_normal((rows, D))
    if sparse:
        X[np.abs(X) < 0.8] = 0.0  # about 40% non-zero
    y = X @ TRUE_COEF + TRUE_INTERCEPT + 0.01 * rng.standard_normal(rows)
    return (sp.csr_matrix(X) if sparse else X), y


# (the rule fixed: the stream's first call and the one fit over all its rows would
# otherwise choose from data of different sizes)
STREAM = {"batch_size": 8, "learning_rate": "constant", "eta0": 0.01, "momentum": 0.9, "shuffle": False,
          "random_state": 0, "optimizer": "sgd", "alpha": 1e-4, "early_stopping": False}


def slope_per_call(calls, samples):
    """Least-squares slope of RSS (bytes) against the call number, after the warm-up."""
    calls, samples = np.asarray(calls, dtype=float), np.asarray(samples, dtype=float)
    keep = calls > WARM_UP
    return np.polyfit(calls[keep], samples[keep], 1)[0]


@pytest.mark.parametrize("sparse", [False, True], ids=["dense", "sparse"])
def test_a_long_partial_fit_stream_is_flat_in_memory_and_equals_one_fit(backend, sparse):
    """N_CALLS partial_fit calls, RSS sampled every EVERY calls: after WARM_UP calls its
    slope is under SLOPE_BOUND bytes per call. Measured: 0 to 150 B per call over 3,000
    calls, 0 to 90 over 10,000, all of it ``loss_curve_`` and ``time_curve_``, which
    grow by one float each per call by design (75 B per call under tracemalloc; the
    slope is 0 with them trimmed); a leaked 12 x 10 array per call reads 1,500.

    The model then equals ``fit(max_iter=1, tol=None)`` on the concatenated chunks (and
    ``t_`` is the number of batches): bit for bit with the dense kernels of every
    backend and the NumPy CSR reference, which do the same operations in the same
    order; to 1e-10 relative with the Numba and Cython CSR kernels, whose lazy catch-up
    (``fastgd._numba.sparse``) brings every coordinate up to date at the end of each
    epoch, so at other steps for one call per chunk than for one epoch, and rounds
    there (equal here at 3,000 calls; 1.3e-16 apart for Numba at 10,000)."""
    n_calls = N_CALLS[backend]
    est = LinearRegression(backend=backend, **STREAM)
    calls, samples = [], []
    for i in range(n_calls):
        est.partial_fit(*chunk(i, sparse))
        if (i + 1) % EVERY == 0:
            calls.append(i + 1)
            samples.append(rss())
    slope = slope_per_call(calls, samples)
    print(f"\n{backend} {'sparse' if sparse else 'dense'}: RSS slope {slope:.1f} B/call over calls "
          f"{WARM_UP}-{n_calls}, RSS {samples[-1] / 2**20:.1f} MiB")
    assert slope < SLOPE_BOUND, f"{slope:.0f} bytes per call"
    assert est.n_iter_ == len(est.loss_curve_) == n_calls

    chunks = [chunk(i, sparse) for i in range(n_calls)]
    X_all = sp.vstack([X for X, _ in chunks], format="csr") if sparse else np.vstack([X for X, _ in chunks])
    y_all = np.concatenate([y for _, y in chunks])
    one = LinearRegression(backend=backend, max_iter=1, tol=None, **STREAM).fit(X_all, y_all)
    assert est.t_ == one.t_ == X_all.shape[0] // 8
    if not sparse or backend == "numpy":
        np.testing.assert_array_equal(est.coef_, one.coef_)
        np.testing.assert_array_equal(est.intercept_, one.intercept_)
    else:
        np.testing.assert_allclose(est.coef_, one.coef_, rtol=1e-10, atol=0)
        np.testing.assert_allclose(est.intercept_, one.intercept_, rtol=1e-10, atol=0)
    # and it learned the stream's model (the comparison is not between two zero models)
    np.testing.assert_allclose(est.coef_, TRUE_COEF, atol=0.02)
    np.testing.assert_allclose(est.intercept_, TRUE_INTERCEPT, atol=0.02)


def test_a_thousand_fits_leave_no_thread_descriptor_or_memory_behind(threads_always):
    """1,005 fits on 200 x 5 data: every backend, dense and CSR, fit and partial_fit,
    regression and classification, and a threaded full batch (n_jobs=2 on 6,000 rows:
    two row blocks, fewer than 4,096 rows are one block and one thread; threads even for
    so few values). The pools fastgd starts once (the background permutation thread,
    the Numba kernels' pool, OpenMP's for Cython) exist after the first round; after it,
    Python's and the OS's thread counts and the open file descriptors never change, and
    RSS at the end is within 2 MiB of RSS after the fifth round."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((200, 5))
    y = X @ np.arange(1.0, 6.0) + 0.1 * rng.standard_normal(200)
    labels = (y > 0).astype(int) + (y > 2)
    Xs = sp.csr_matrix(np.where(np.abs(X) > 0.5, X, 0.0))
    X_big = rng.standard_normal((6000, 5))
    y_big = X_big @ np.arange(1.0, 6.0)
    quick = {"max_iter": 2, "tol": None, "random_state": 0}

    def one_round(r):
        for backend in ALL_BACKENDS:
            LinearRegression(backend=backend, batch_size=8, **quick).fit(X, y)
            LinearRegression(backend=backend, batch_size=8, **quick).fit(Xs, y)
            LogisticRegression(backend=backend, batch_size=4, **quick).fit(X, labels)
            LinearRegression(backend=backend, batch_size=16, random_state=r).partial_fit(Xs, y).partial_fit(X, y)
            LinearRegression(backend=backend, batch_size="full", n_jobs=2, **quick).fit(X_big, y_big)
        return 5 * len(ALL_BACKENDS)  # fits (the partial_fit pair counted once)

    def counts():
        return {"python threads": threading.active_count(), "OS threads": os_threads(), "fds": open_fds()}

    fits = one_round(0)
    after_first = counts()
    names = sorted(t.name for t in threading.enumerate())
    assert any(n.startswith("fastgd-order") for n in names) and any(n.startswith("fastgd_") for n in names), names
    seen = []
    r = 1
    while fits < 1000:
        fits += one_round(r)
        seen.append(counts())
        if r == 5:
            warm_rss = rss()
        r += 1
    end_rss = rss()
    print(f"\nafter round 1: {after_first}; last: {seen[-1]}; {fits} fits; RSS round 5 "
          f"{warm_rss / 2**20:.1f} MiB, end {end_rss / 2**20:.1f} MiB ({(end_rss - warm_rss) / 1024:+.0f} KiB)")
    assert all(c == after_first for c in seen), [c for c in seen if c != after_first][:3]
    assert end_rss - warm_rss < 2 * 2**20
