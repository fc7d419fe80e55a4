"""Every update rule and averaging on Dask input: the full batch is exact (the blocks'
gradients summed, one reference step), and sequential mini-batches over blocks of whole
batches in storage order are the in-memory fit over the same batches (the averaged
mode, ``dask_mode="average"``, is checked for every rule in ``test_dask_average.py``)."""

import logging

import numpy as np
import pytest

da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("distributed")

from fastgd import LinearRegression, LogisticRegression
from fastgd._optimizers import KERNEL_OPTIMIZERS

from .conftest import make_data


@pytest.fixture(scope="module")
def client():
    with (
        distributed.LocalCluster(n_workers=2, processes=False, threads_per_worker=1, dashboard_address=None,
                                 silence_logs=logging.ERROR) as cluster,
        distributed.Client(cluster) as c,
    ):
        yield c


def _dask(client, chunks, *arrays):
    return client.persist([da.from_array(np.asarray(a), chunks=(chunks,) + np.asarray(a).shape[1:]) for a in arrays])


def _same(ref, got):
    np.testing.assert_allclose(got._state, ref._state, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(got.coef_, ref.coef_, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(got.loss_curve_, ref.loss_curve_, rtol=1e-10, atol=1e-12)
    assert got.t_ == ref.t_ and got._avg_start == ref._avg_start


@pytest.mark.parametrize("optimizer", sorted(KERNEL_OPTIMIZERS))
@pytest.mark.parametrize("average", [False, True])
def test_full_batch_equals_in_memory(client, optimizer, average):
    X, y = make_data("binary", n=60)
    params = {"optimizer": optimizer, "average": average, "batch_size": "full", "learning_rate": "auto", "max_iter": 6,
                  "tol": None, "backend": "numba"}
    ref = LogisticRegression(**params).fit(X, y)
    got = LogisticRegression(**params).fit(*_dask(client, 25, X, y))
    _same(ref, got)
    assert np.abs(ref.coef_).max() > 1e-3


@pytest.mark.parametrize("optimizer", sorted(KERNEL_OPTIMIZERS))
def test_minibatches_over_blocks_equal_in_memory(client, optimizer):
    """Blocks of 20 rows, batches of 5, storage order: the same batches as in memory;
    averaging from the 37th sample on starts at the same update over the blocks."""
    X, y = make_data("multioutput", n=60)
    params = {"optimizer": optimizer, "average": 37, "batch_size": 5, "shuffle": False, "learning_rate": "constant",
              "eta0": 0.05, "max_iter": 3, "tol": None, "backend": "cython"}
    ref = LinearRegression(**params).fit(X, y)
    got = LinearRegression(dask_mode="sequential", **params).fit(*_dask(client, 20, X, y))
    _same(ref, got)
    assert ref._avg_start == 7  # the 8th update brings the samples seen to 40 >= 37
    # and partial_fit continues the rule's state and the average on Dask too
    ref.partial_fit(X, y)
    got.partial_fit(*_dask(client, 20, X, y))  # (dask_mode="sequential" carries over)
    _same(ref, got)
