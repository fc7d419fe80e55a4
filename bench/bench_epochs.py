"""Seconds per epoch of every fastgd backend: one round = one epoch of the estimator
(row permutation and kernel call; input validation and the automatic step size are done
before timing). Momentum 0.9, the automatic step; the objective of the final weights is
in ``extra_info``."""

import numpy as np
import pytest

from bench.config import BATCHES, MODELS
from bench.conftest import ALL_BACKENDS, ROUNDS, SIZES, group, require_backend
from bench.data import make_data
from bench.methods import epoch_stepper, objective


def _run(benchmark, backend, model, batch, size, dtype):
    require_backend(backend)
    n, d = SIZES[size]
    X, y = make_data(model, n, d, dtype=dtype)
    step, weights = epoch_stepper(model, backend, X, y, batch)
    if backend != "numpy":
        step()  # loads the compiled kernel for these dtypes, starts the thread pool
    benchmark.group = group(model, batch, size, dtype)
    benchmark.pedantic(step, rounds=ROUNDS[size], iterations=1)
    coef, intercept = weights()
    final = objective(model, X, y, coef, intercept)
    benchmark.extra_info.update(backend=backend, dtype=dtype, final_loss=final)
    assert np.isfinite(final)


@pytest.mark.parametrize("size", list(SIZES))
@pytest.mark.parametrize("batch", BATCHES, ids=lambda b: f"b{b}")
@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("backend", ALL_BACKENDS)
def test_epoch(benchmark, backend, model, batch, size):
    _run(benchmark, backend, model, batch, size, "float64")


@pytest.mark.parametrize("size", list(SIZES))
@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("backend", ALL_BACKENDS)
def test_full_batch_float32(benchmark, backend, model, size):
    _run(benchmark, backend, model, "full", size, "float32")
