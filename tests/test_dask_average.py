"""The averaged Dask mode (``dask_mode="average"``) on a real ``distributed`` cluster.

Every worker runs mini-batch SGD over the blocks it holds, and the states are averaged
(weighted by rows) every ``sync_every`` steps or once per epoch. Checked here: one
worker is the sequential fit; k workers equal a NumPy simulation of k local runs
averaged at the same points (the reference kernel, one step per call); ``sync_every=1``
with equal batches is large-batch SGD; determinism, ``partial_fit``, warm starts,
divergence; no X block travels; a worker lost mid-fit raises and leaves the model as
it was.
"""

import logging
import os
import pickle
import time

import numpy as np
import pytest
from sklearn.utils._param_validation import InvalidParameterError

distributed = pytest.importorskip("distributed")
dask = pytest.importorskip("dask")
da = pytest.importorskip("dask.array")

from fastgd import DivergenceError, LinearRegression, LogisticRegression
from fastgd import _dask as fdask
from fastgd import _params as P
from fastgd._numpy.kernels import epoch as numpy_epoch
from fastgd._penalties import penalty_value
from fastgd._run import prepared

from .conftest import clear_transfer_logs, make_data, moved_keys

CHUNKS = (20, 25, 10, 15, 20)  # 90 rows; with batch 10 the 25-row block ends on a 5-row batch
OWNERS = (0, 1, 1, 0, 1)  # which of the two workers holds each block


def _cluster():
    return distributed.LocalCluster(
        n_workers=2, processes=True, threads_per_worker=1, dashboard_address=None, silence_logs=logging.ERROR
    )


@pytest.fixture(scope="module")
def client():
    with _cluster() as cluster, distributed.Client(cluster) as c:
        yield c


def placed(client, chunks, owners, *arrays):
    """Dask arrays with the given row chunks, chunk i persisted on worker ``owners[i]``
    (an index into the sorted worker addresses)."""
    workers = sorted(client.nthreads())
    out = []
    for a in arrays:
        a = np.asarray(a)
        parts, lo = [], 0
        for size, w in zip(chunks, owners, strict=True):
            piece = da.from_array(a[lo:lo + size], chunks=(size,) + a.shape[1:])
            parts.append(client.persist(piece, workers=[workers[w]]))
            lo += size
        out.append(da.concatenate(parts))
    return out


def simulate(cls, params, X, y, chunks, owners, epochs, sync_every):
    """k local runs averaged at the same points, written out step by step with the NumPy
    reference kernel: returns (state, loss curve, t)."""
    run = prepared(cls(**params), X, y)  # the in-memory targets, weights, hp and codes
    hp = run.hp.copy()
    hp[P.ETA0] = run.eta
    codes = run.codes.copy()
    batch = int(codes[P.BATCH_SIZE])
    offsets = np.cumsum((0,) + tuple(chunks[:-1]))
    rng = np.random.RandomState(params["random_state"])
    state = np.zeros_like(run.state)
    t, curve = 0, []
    for _ in range(epochs):
        # each worker's steps (rows of each batch) in the order it visits its blocks
        streams = {}
        for b, seed in fdask.epoch_plan(rng, len(chunks), shuffle=True):
            rows = offsets[b] + fdask.block_order(seed, chunks[b])
            streams.setdefault(owners[b], []).extend(rows[i:i + batch] for i in range(0, len(rows), batch))
        longest = max(len(s) for s in streams.values())
        period = sync_every or longest
        pen = penalty_value(state[0][:, :-1], run.l2, run.l1)
        total = 0.0
        for r in range(0, longest, period):
            states, weights, steps = [], [], []
            for w in sorted(streams):
                mine = streams[w][r:r + period]
                if not mine:
                    continue
                local = state.copy()
                for i, rows in enumerate(mine):
                    c = codes.copy()
                    c[P.T_START] = t + i
                    c[P.BATCH_SIZE] = len(rows)
                    total += numpy_epoch(
                        X[rows], run.Y[rows], run.sw[rows], np.arange(len(rows), dtype=np.int64), local, hp, c
                    )
                states.append(local)
                weights.append(sum(len(rows) for rows in mine))
                steps.append(len(mine))
            state = sum(wt * s for wt, s in zip(weights, states, strict=True)) / sum(weights)
            t += max(steps)
        curve.append(total / X.shape[0] + pen)
    return state, curve, t


PARAMS = {  # kind -> (estimator, parameters)
    "regression": (
        LinearRegression,
        {"batch_size": 10, "momentum": 0.9, "nesterov": True, "alpha": 0.01, "learning_rate": "invscaling", "eta0": 0.2},
    ),
    "multiclass": (LogisticRegression, {"batch_size": 10, "momentum": 0.9, "penalty": "elasticnet", "alpha": 0.01}),
}


# ------------------------------------------------------------------ equivalences
@pytest.mark.parametrize("sync_every", [None, 3])
@pytest.mark.parametrize("kind", sorted(PARAMS))
def test_two_workers_equal_the_simulation(client, kind, sync_every):
    cls, params = PARAMS[kind]
    params = {**params, "max_iter": 3, "tol": None, "random_state": 7, "backend": "numpy"}
    X, y = make_data(kind, n=sum(CHUNKS), seed=3)
    got = cls(dask_mode="average", sync_every=sync_every, **params).fit(*placed(client, CHUNKS, OWNERS, X, y))
    state, curve, t = simulate(cls, params, X, y, CHUNKS, OWNERS, 3, sync_every)
    np.testing.assert_allclose(got._state, state, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(got.loss_curve_, curve, rtol=1e-10, atol=1e-12)
    assert got.t_ == t
    # worker 0 holds 35 rows (2 + 2 steps), worker 1 holds 55 (3 + 1 + 2 steps)
    assert t == 3 * (6 if sync_every is None else 3 + 3)
    # and it is not the sequential fit
    seq = cls(dask_mode="sequential", **params).fit(*placed(client, CHUNKS, OWNERS, X, y))
    assert np.abs(seq._state[0] - got._state[0]).max() > 1e-3
    assert seq.t_ == 3 * 10


@pytest.mark.parametrize("optimizer", ["adagrad", "rmsprop", "adam"])
def test_every_update_rule_equals_the_simulation(client, optimizer):
    """The combination averages every slot of the rule's state (accumulators, moments)
    by rows, as the simulation does."""
    params = {"batch_size": 10, "optimizer": optimizer, "learning_rate": "constant", "eta0": 0.05, "max_iter": 2,
              "tol": None, "random_state": 7, "backend": "cython"}
    X, y = make_data("multiclass", n=sum(CHUNKS), seed=3)
    got = LogisticRegression(dask_mode="average", sync_every=3, **params).fit(*placed(client, CHUNKS, OWNERS, X, y))
    state, curve, t = simulate(LogisticRegression, params, X, y, CHUNKS, OWNERS, 2, 3)
    np.testing.assert_allclose(got._state, state, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(got.loss_curve_, curve, rtol=1e-10, atol=1e-12)
    assert got.t_ == t and np.abs(state[-1]).max() > 0


@pytest.mark.parametrize("backend", ["numpy", "numba"])
@pytest.mark.parametrize("sync_every", [None, 2])
def test_one_worker_is_the_sequential_fit(client, backend, sync_every):
    cls, params = PARAMS["multiclass"]
    params = {**params, "max_iter": 3, "tol": None, "random_state": 1, "backend": backend}
    X, y = make_data("multiclass", n=sum(CHUNKS), seed=5)
    data = placed(client, CHUNKS, (1,) * len(CHUNKS), X, y)  # every block on one worker
    seq = cls(dask_mode="sequential", **params).fit(*data)
    avg = cls(dask_mode="average", sync_every=sync_every, **params).fit(*data)
    np.testing.assert_allclose(avg._state, seq._state, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(avg.loss_curve_, seq.loss_curve_, rtol=1e-10, atol=1e-12)
    assert avg.t_ == seq.t_ == 3 * 10
    # one block: the same
    one = placed(client, (sum(CHUNKS),), (0,), X, y)
    seq = cls(dask_mode="sequential", **params).fit(*one)
    avg = cls(dask_mode="average", sync_every=sync_every, **params).fit(*one)
    np.testing.assert_allclose(avg._state, seq._state, rtol=1e-10, atol=1e-12)


def test_sync_every_step_is_large_batch_sgd(client):
    """Two workers, equal batches, a sync after every step: averaging the states (the
    weights and the velocity are linear in the batch gradient) takes exactly the step of
    one batch of both workers' rows, so the fit is the in-memory fit with twice the
    batch over the interleaved visiting order."""
    chunks, owners, batch, epochs = (10, 20, 10, 20), (0, 0, 1, 1), 5, 2  # 30 rows on each worker
    X, y = make_data("binary", n=60, seed=8)
    offsets = np.cumsum((0,) + chunks[:-1])
    rng = np.random.RandomState(4)
    orders = []
    for _ in range(epochs):
        streams = {0: [], 1: []}
        for b, seed in fdask.epoch_plan(rng, len(chunks), shuffle=True):
            streams[owners[b]].extend(offsets[b] + fdask.block_order(seed, chunks[b]))
        # step i of the big fit: worker 0's batch i, then worker 1's
        orders.append(np.concatenate([np.r_[streams[0][i:i + batch], streams[1][i:i + batch]] for i in range(0, 30, batch)]))

    class Replay(np.random.RandomState):
        def permutation(self, n):
            return orders.pop(0)

    params = {"max_iter": epochs, "tol": None, "momentum": 0.9, "nesterov": True, "alpha": 0.01, "backend": "numpy"}
    params.update(learning_rate="invscaling", eta0=0.5)  # "auto" would depend on the batch size
    got = LogisticRegression(batch_size=batch, sync_every=1, random_state=4, dask_mode="average", **params).fit(
        *placed(client, chunks, owners, X, y)
    )
    ref = LogisticRegression(batch_size=2 * batch, random_state=Replay(0), **params).fit(X, y)
    np.testing.assert_allclose(got._state, ref._state, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(got.loss_curve_, ref.loss_curve_, rtol=1e-10, atol=1e-12)
    assert got.t_ == ref.t_ == epochs * 6


# ------------------------------------------------------------------ estimator behaviour
def test_deterministic_partial_fit_warm_start_and_divergence(client):
    cls, params = PARAMS["multiclass"]
    params = {**params, "tol": None, "random_state": 2, "backend": "numpy", "dask_mode": "average", "sync_every": 2}
    X, y = make_data("multiclass", n=sum(CHUNKS), seed=6)
    data = placed(client, CHUNKS, OWNERS, X, y)
    three = cls(max_iter=3, **params).fit(*data)
    again = cls(max_iter=3, **params).fit(*data)
    np.testing.assert_array_equal(again._state, three._state)
    assert again.loss_curve_ == three.loss_curve_
    # partial_fit continues the random stream: three calls are three epochs of fit
    part = cls(**params)
    for _ in range(3):
        part.partial_fit(*data, classes=[10, 11, 12])
    np.testing.assert_allclose(part._state, three._state, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(part.loss_curve_, three.loss_curve_, rtol=1e-12)
    assert part.t_ == three.t_ and part.n_iter_ == 3
    # warm start: 2 + 2 epochs in storage order are 4 epochs
    params["shuffle"] = False
    four = cls(max_iter=4, **params).fit(*data)
    warm = cls(max_iter=2, warm_start=True, **params).fit(*data)
    warm.fit(*data)
    np.testing.assert_allclose(warm._state, four._state, rtol=1e-12, atol=1e-14)
    assert warm.t_ == four.t_
    # a divergence raises and leaves the model as it was
    before = pickle.dumps(four)
    with pytest.raises(DivergenceError, match="diverged"):
        four.set_params(learning_rate="constant", eta0=1e6, momentum=0.0, max_iter=20).fit(
            *placed(client, CHUNKS, OWNERS, X * 100, y)
        )
    restored = pickle.loads(before)
    np.testing.assert_array_equal(four._state, restored._state)
    assert four.loss_curve_ == restored.loss_curve_


def test_ignored_for_in_memory_input_and_full_batch(client):
    X, y = make_data("regression", n=sum(CHUNKS), seed=9)
    params = {"max_iter": 3, "tol": None, "random_state": 0, "backend": "numpy"}
    for batch in (10, "full"):
        a = LinearRegression(batch_size=batch, dask_mode="average", sync_every=1, **params).fit(X, y)
        b = LinearRegression(batch_size=batch, dask_mode="sequential", **params).fit(X, y)
        np.testing.assert_array_equal(a.coef_, b.coef_)
    data = placed(client, CHUNKS, OWNERS, X, y)
    a = LinearRegression(batch_size="full", dask_mode="average", sync_every=1, **params).fit(*data)
    b = LinearRegression(batch_size="full", dask_mode="sequential", **params).fit(*data)
    np.testing.assert_array_equal(a.coef_, b.coef_)
    assert a.t_ == 3


@pytest.mark.parametrize(
    "params, match",
    [
        ({"dask_mode": "parallel"}, "'dask_mode' parameter"),
        ({"dask_mode": None}, "'dask_mode' parameter"),
        ({"sync_every": 0}, "'sync_every' parameter"),
        ({"sync_every": 2.5}, "'sync_every' parameter"),
    ],
)
def test_bad_parameters_are_named(params, match):
    X, y = make_data("binary", n=20)
    with pytest.raises(InvalidParameterError, match=match):
        LogisticRegression(**params).fit(X, y)  # checked for in-memory input too
    assert issubclass(InvalidParameterError, ValueError)


def test_rounds_cut_inside_blocks():
    plan = [(2, None), (0, None), (1, None)]
    owners, sizes = ["b", "a", "a"], [10, 7, 25]
    # worker "a" visits block 2 (3 steps) then block 1 (1 step); "b" block 0 (1 step);
    # "b" comes first: it holds the first block in storage order
    assert fdask.average_rounds(plan, owners, sizes, batch=10, sync_every=2) == [
        (2, [("b", [(0, None, 0, 1)]), ("a", [(2, None, 0, 2)])]),
        (2, [("a", [(2, None, 2, 3), (1, None, 0, 1)])]),
    ]
    assert fdask.average_rounds(plan, owners, sizes, batch=10, sync_every=None) == [
        (4, [("b", [(0, None, 0, 1)]), ("a", [(2, None, 0, 3), (1, None, 0, 1)])])
    ]
    assert len(fdask.average_rounds(plan, owners, sizes, batch=1, sync_every=7)) == 32 // 7 + 1
    # the average of each slot, weighted by rows; one state unchanged
    s1, s2 = np.ones((3, 1, 2)), np.arange(6.0).reshape(3, 1, 2)
    np.testing.assert_allclose(fdask.average_states([s1, s2], [30, 10]), 0.75 * s1 + 0.25 * s2, rtol=1e-15)
    assert fdask.average_states([s2], [5]) is s2


# ------------------------------------------------------------------ data stay put
def test_no_x_block_travels(client):
    X, y = make_data("binary", n=sum(CHUNKS), seed=1)
    Xd, yd = placed(client, CHUNKS, OWNERS, X, y)
    Xd, yd = client.persist([Xd, yd])
    distributed.wait([Xd, yd])
    x_keys = {str(k[0]) for k in Xd.__dask_keys__()}
    before = client.who_has(distributed.futures_of(Xd))

    client.run(clear_transfer_logs)
    params = {"batch_size": 4, "max_iter": 2, "tol": None, "random_state": 0, "dask_mode": "average"}
    LogisticRegression(sync_every=3, **params).fit(Xd, yd)
    LogisticRegression(**params).partial_fit(Xd, yd, classes=["no", "yes"])
    keys = {k for ks in client.run(moved_keys).values() for k in ks}
    # the logs work: the states did travel between the workers
    assert any(k.startswith(("fastgd-local", "fastgd-average")) for k in keys)
    assert not {k for k in keys if k in x_keys}
    assert not [k for k in keys if k.startswith(("fastgd-load", "fastgd-block"))]
    assert client.who_has(distributed.futures_of(Xd)) == before


async def die():
    os._exit(1)


@pytest.mark.filterwarnings("ignore:Port 8787 is already in use")
def test_worker_lost_mid_fit_raises_and_leaves_the_model(monkeypatch):
    monkeypatch.setattr(fdask.blocks, "POLL_S", 0.25)
    X, y = make_data("binary", n=sum(CHUNKS), seed=2)
    with _cluster() as cluster, distributed.Client(cluster) as client:
        data = placed(client, CHUNKS, OWNERS, X, y)
        params = {"batch_size": 5, "tol": None, "random_state": 0, "dask_mode": "average", "backend": "numpy"}
        est = LogisticRegression(max_iter=2, **params).fit(*data)
        before = pickle.dumps(est)
        victim = sorted(client.nthreads())[1]
        calls = []
        original = fdask.DaskRun.epoch

        def epoch_then_lose_a_worker(self):
            calls.append(1)
            if len(calls) == 2:  # the second epoch: a block holder dies
                client.run(die, workers=[victim], wait=False)
            return original(self)

        monkeypatch.setattr(fdask.DaskRun, "epoch", epoch_then_lose_a_worker)
        with pytest.raises(RuntimeError, match=r"left the cluster during the fit; the model is unchanged"):
            est.set_params(max_iter=5).fit(*data)
    assert len(calls) == 2
    restored = pickle.loads(before)
    for name in ("coef_", "intercept_", "_state", "t_", "n_iter_", "loss_curve_"):
        np.testing.assert_array_equal(getattr(est, name), getattr(restored, name), err_msg=name)


@pytest.mark.filterwarnings("ignore:Port 8787 is already in use")
@pytest.mark.parametrize("moment", ["before loading", "during loading", "last epoch"])
def test_worker_lost_at_any_moment_raises_within_the_bound(monkeypatch, moment):
    """A worker holding training blocks killed before the fit, while its blocks load, or
    in the last epoch: the fit raises RuntimeError within a few check intervals (it used
    to hang before loading), and the fitted model is unchanged."""
    X, y = make_data("binary", n=sum(CHUNKS), seed=2)
    params = {"batch_size": 5, "tol": None, "random_state": 0, "dask_mode": "average", "backend": "numpy"}
    with dask.config.set({"fastgd.worker-check-interval": 0.25}), _cluster() as cluster, \
            distributed.Client(cluster) as client:
        data = placed(client, CHUNKS, OWNERS, X, y)
        est = LogisticRegression(max_iter=2, **params).fit(*data)
        before = pickle.dumps(est)
        victim = sorted(client.nthreads())[1]

        def kill():
            client.run(die, workers=[victim], wait=False)
            deadline = time.monotonic() + 10.0
            while victim in client.nthreads() and time.monotonic() < deadline:
                time.sleep(0.05)

        if moment == "before loading":
            kill()
        elif moment == "during loading":
            original_load = fdask.blocks._Cluster.load

            def load_then_lose_a_worker(self, *args, **kwargs):
                kill()
                return original_load(self, *args, **kwargs)

            monkeypatch.setattr(fdask.blocks._Cluster, "load", load_then_lose_a_worker)
        else:
            original_epoch = fdask.DaskRun.epoch
            calls = []

            def last_epoch_loses_a_worker(self):
                calls.append(1)
                if len(calls) == 3:
                    kill()
                return original_epoch(self)

            monkeypatch.setattr(fdask.DaskRun, "epoch", last_epoch_loses_a_worker)
        tic = time.monotonic()
        with pytest.raises(RuntimeError, match=r"left the cluster.*the model is unchanged"):
            est.set_params(max_iter=3).fit(*data)
        assert time.monotonic() - tic < 30.0
    restored = pickle.loads(before)
    for name in ("coef_", "intercept_", "_state", "t_", "n_iter_", "loss_curve_"):
        np.testing.assert_array_equal(getattr(est, name), getattr(restored, name), err_msg=name)
