"""Shared fixtures: the backends, dtypes and small data sets the tests run over; and the
two tiers of the suite.

The default run (plain ``pytest``, the README's command) is the lean tier: every backend
meets every registry entry at least once (pairwise grids, see ``tests/_grids.py``).
Tests and grid cases marked ``full`` (the rest of the exhaustive grids, soak runs, tests
that compile into empty caches in subprocesses) are deselected unless ``pytest --full``
is given; CI runs them. ``pytest --full -m full`` runs the full tier alone.
"""

import numpy as np
import pytest

from fastgd._backends import BACKENDS

ALL_BACKENDS = sorted(BACKENDS)
FAST_BACKENDS = [b for b in ALL_BACKENDS if b != "numpy"]  # compared against the reference


@pytest.fixture(params=ALL_BACKENDS)
def backend(request):
    return request.param


@pytest.fixture(params=FAST_BACKENDS)
def fast_backend(request):
    return request.param


def make_data(kind, n=60, d=4, seed=0, dtype=np.float64, scale=0.25):
    """Small, well-conditioned data for each target kind.

    kind: "regression" (1 target), "multioutput" (2 targets), "binary", "multiclass"
    (3 classes). Rows have squared norm about ``d * scale**2`` so that every schedule,
    including scikit-learn's aggressive "optimal", is stable on them.
    """
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d)) * scale
    W = rng.standard_normal((3, d)) * 4
    Z = X @ W.T + rng.standard_normal(3) * 0.3
    if kind == "regression":
        y = Z[:, 0] + 0.1 * rng.standard_normal(n)
    elif kind == "multioutput":
        y = Z[:, :2] + 0.1 * rng.standard_normal((n, 2))
    elif kind == "binary":
        y = np.where(Z[:, 0] + 0.5 * rng.standard_normal(n) > 0, "yes", "no")
    elif kind == "multiclass":
        y = np.argmax(Z + 0.5 * rng.standard_normal((n, 3)), axis=1) + 10
    else:
        raise ValueError(kind)
    return X.astype(dtype), y


def assert_same_fit(ref, fast, rtol=1e-10, atol=1e-12):
    """Two fits that ran the same algorithm: the same weights, intercepts and objective
    curve to ``rtol``/``atol``, and the same update and epoch counts."""
    np.testing.assert_allclose(fast.coef_, ref.coef_, rtol=rtol, atol=atol)
    np.testing.assert_allclose(fast.intercept_, ref.intercept_, rtol=rtol, atol=atol)
    np.testing.assert_allclose(fast.loss_curve_, ref.loss_curve_, rtol=rtol, atol=atol)
    assert fast.t_ == ref.t_
    assert fast.n_iter_ == ref.n_iter_


def clear_transfer_logs(dask_worker):
    """(run on every worker with ``client.run``) Forget the worker's data transfers."""
    dask_worker.transfer_incoming_log.clear()
    dask_worker.transfer_outgoing_log.clear()


def moved_keys(dask_worker):
    """(run on every worker with ``client.run``) The keys the worker sent or received
    since :func:`clear_transfer_logs`."""
    logs = list(dask_worker.transfer_incoming_log) + list(dask_worker.transfer_outgoing_log)
    return sorted({str(k) for entry in logs for k in entry["keys"]})


@pytest.fixture
def threads_always(monkeypatch):
    """Full batches use threads however small (the kernels otherwise sum batches of
    fewer than PARALLEL_MIN_VALUES values on one thread), so small test data exercise
    the threaded path. Both compiled backends read the threshold from
    ``fastgd._tuning`` at each call."""
    import fastgd._tuning

    monkeypatch.setattr(fastgd._tuning, "PARALLEL_MIN_VALUES", 0)


def pytest_addoption(parser):
    parser.addoption(
        "--full",
        action="store_true",
        default=False,
        help="also run the tests marked 'full' (exhaustive grids, soak, subprocess cache "
        "tests): CI's long tier",
    )


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "full: exhaustive-grid case, soak or subprocess test; runs only with --full",
    )


def pytest_collection_modifyitems(config, items):
    if config.getoption("--full"):
        return
    keep = [item for item in items if item.get_closest_marker("full") is None]
    if len(keep) < len(items):
        dropped = [item for item in items if item.get_closest_marker("full") is not None]
        config.hook.pytest_deselected(items=dropped)
        items[:] = keep


def pytest_report_header(config):
    if config.getoption("--full"):
        return "fastgd tiers: lean + full (--full)"
    return "fastgd tiers: lean only (pytest --full adds the exhaustive grids, soak and subprocess tests)"
