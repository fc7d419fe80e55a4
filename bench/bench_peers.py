"""Seconds per epoch of the scikit-learn peers in the same groups as fastgd's backends:
``SGDRegressor``/``SGDClassifier(loss="log_loss")`` (per sample, batch 1) and
``MLPRegressor``/``MLPClassifier`` without hidden layers (``solver="sgd"``, momentum
0.9, batch 32, 256 and full). One round = one ``partial_fit`` call, which is one epoch
plus scikit-learn's input validation (a pass over X): an upper bound of the epoch. The
objective of the final weights is in ``extra_info``."""

import warnings

import numpy as np
import pytest

from bench.config import BATCHES, MODELS
from bench.conftest import ROUNDS, SIZES, group
from bench.data import make_data
from bench.methods import MLP, SGD, _peer_weights, objective, runs_batch, sklearn_peer

# (peer, batch size): SGD is per sample, the MLP runs mini-batches and full batch
PEER_CASES = [(peer, batch) for peer in (SGD, MLP) for batch in BATCHES if runs_batch(peer, batch)]


@pytest.mark.parametrize("size", list(SIZES))
@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize(
    ("peer", "batch"), PEER_CASES, ids=[f"{p.split()[1].lower()}-b{b}" for p, b in PEER_CASES]
)
def test_peer_epoch(benchmark, peer, batch, model, size):
    n, d = SIZES[size]
    factory = sklearn_peer(peer, model, batch, n)
    X, y = make_data(model, n, d)
    est = factory(1)
    kwargs = {"classes": np.array([0.0, 1.0])} if model == "logistic" else {}

    def step():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            est.partial_fit(X, y, **kwargs)

    step()  # creates the model (first call)
    benchmark.group = group(model, batch, size)
    benchmark.pedantic(step, rounds=ROUNDS[size], iterations=1)
    coef, intercept = _peer_weights(est)
    final = objective(model, X, y, coef, intercept)
    benchmark.extra_info.update(peer=peer, final_loss=final, includes="input validation (partial_fit)")
    assert np.isfinite(final)
