"""The averaged epoch (``dask_mode="average"``): the epoch's plan of block visits,
its rounds, the combination of the workers' states, and the two tasks of a round (a
worker's share, the sync). See ``fastgd._dask`` for what is averaged and why."""


import numpy as np

from .. import _params as P
from .._backends import get_backend


def epoch_plan(rng, n_blocks, shuffle):
    """The visits of one mini-batch epoch: ``(block, seed)`` pairs in visiting order.

    ``seed`` gives the block's row order (:func:`block_order`); None means storage order.
    """
    if not shuffle:
        return [(b, None) for b in range(n_blocks)]
    order = rng.permutation(n_blocks)
    seeds = rng.randint(0, 2**31 - 1, size=n_blocks)
    return [(int(b), int(s)) for b, s in zip(order, seeds, strict=True)]


def average_rounds(plan, owners, sizes, batch, sync_every):
    """The rounds of one averaged epoch (``dask_mode="average"``).

    ``plan`` is the epoch's :func:`epoch_plan`; ``owners[b]`` names the worker holding
    block ``b``. A worker's *group* is its blocks in plan order; groups are ordered by
    their first block in storage order (not by worker address), so that the result
    depends only on the block layout. Block ``b`` of ``sizes[b]`` rows makes
    ``ceil(sizes[b] / batch)`` steps, as in the sequential mode.

    With ``sync_every=None`` there is one round: every worker runs all its blocks. With
    an int ``s``, round ``r`` runs steps ``r*s .. (r+1)*s - 1`` of every worker's step
    sequence (cut inside a block where need be); a worker whose steps ran out sits the
    remaining rounds out.

    Returns a list of rounds; a round is ``(steps, parts)``, ``steps`` the largest
    number of steps a worker makes in it (what the update counter advances by), and
    ``parts`` a list of ``(owner, pieces)`` in group order, a piece being
    ``(block, seed, first_step, end_step)``.
    """
    groups = {}
    for b, seed in plan:
        groups.setdefault(owners[b], []).append((b, seed))
    ordered = sorted(groups, key=lambda o: min(b for b, _ in groups[o]))
    per_group = []  # for each group: its rounds, each a list of pieces
    for owner in ordered:
        cuts = [[]]
        used = 0  # steps in the current round
        for b, seed in groups[owner]:
            steps = -(-sizes[b] // batch)
            lo = 0
            while lo < steps:
                if sync_every is not None and used == sync_every:
                    cuts.append([])
                    used = 0
                hi = steps if sync_every is None else min(steps, lo + sync_every - used)
                cuts[-1].append((b, seed, lo, hi))
                used += hi - lo
                lo = hi
        per_group.append((owner, cuts))
    n_rounds = max(len(cuts) for _, cuts in per_group)
    rounds = []
    for r in range(n_rounds):
        parts = [(owner, cuts[r]) for owner, cuts in per_group if r < len(cuts) and cuts[r]]
        steps = max(sum(hi - lo for _, _, lo, hi in pieces) for _, pieces in parts)
        rounds.append((steps, parts))
    return rounds


def average_states(states, rows):
    """The combined state of one sync: every slot (weights and intercept, velocity, any
    other optimizer state) averaged elementwise, weighted by ``rows``, each worker's
    number of rows since the last sync; computed in float64, returned in the states'
    dtype. A single state is returned unchanged (so one worker is the sequential fit)."""
    if len(states) == 1:
        return states[0]
    total = float(sum(rows))
    acc = np.zeros(states[0].shape, dtype=np.float64)
    for state, r in zip(states, rows, strict=True):
        acc += (r / total) * state
    return acc.astype(states[0].dtype, copy=False)


def block_order(seed, n_rows):
    """The order in which a block visits its rows."""
    if seed is None:
        return np.arange(n_rows, dtype=np.int64)
    return np.random.RandomState(seed).permutation(n_rows).astype(np.int64)


def _local_task(start, backend, hp, codes, t_start, pieces, *blocks):
    """One worker's share of an averaged round: starting from ``start`` = (state, loss
    so far), run its ``pieces`` (see :func:`average_rounds`) one after the other on its
    ``blocks``; return (state, rows visited, sum of weighted losses)."""
    state = start[0].copy()  # never modify another task's result
    kernel = get_backend(backend).epoch
    batch = int(codes[P.BATCH_SIZE])
    codes = codes.copy()
    t = int(t_start)
    rows = 0
    total = 0.0
    for (_, seed, lo, hi), (X, Y, sw) in zip(pieces, blocks, strict=True):
        m = X.shape[0]
        order = block_order(seed, m)
        step_rows = min(batch, m)  # the kernels cap the batch at the block's rows
        if lo > 0 or hi * step_rows < m:  # part of the block: its rows of these steps
            sel = order[lo * step_rows:min(hi * step_rows, m)]
            X, Y, sw = X[sel], Y[sel], sw[sel]
            order = np.arange(sel.shape[0], dtype=np.int64)
        codes[P.T_START] = t
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            total += float(kernel(X, Y, sw, order, state, hp, codes))
        t += hi - lo
        rows += X.shape[0]
    return state, rows, total


def _average_task(start, *results):
    """The sync after a round: the workers' states averaged (:func:`average_states`),
    and the loss so far plus theirs."""
    states, rows, totals = zip(*results, strict=True)
    return average_states(list(states), list(rows)), start[1] + float(sum(totals))
