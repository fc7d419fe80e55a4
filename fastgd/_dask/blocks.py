"""The executor layer: where the blocks live and how tasks reach them.

:func:`_executor` picks the distributed client Dask would use for X (:class:`_Cluster`:
every task that reads a block is pinned to the worker holding it) or this process
(:class:`_Local`: Dask's local schedulers, the blocks computed once into memory).
:class:`_Blocks` is the handle the drivers use: gather a function's results over the
blocks, map them to new blocks, chain a carried state through visits, or run an
averaged epoch's rounds."""

import itertools
import uuid

import dask
import dask.array as da
import numpy as np

from .averaging import _average_task, _local_task

# while waiting for tasks on a cluster, check this often (seconds) that the workers they
# need are alive: a lost worker raises within about this long after the scheduler knows
# (``dask.config.set({"fastgd.worker-check-interval": seconds})`` changes it)
POLL_S = 2.0


def poll_seconds():
    """How often waits on a cluster look for lost workers (``POLL_S``, or the Dask
    configuration's ``fastgd.worker-check-interval``)."""
    return float(dask.config.get("fastgd.worker-check-interval", POLL_S))


# scheduler states of a task that will not finish: its only allowed worker has left
# (``no-worker``), it failed, or its result was lost and cannot be recomputed
_STUCK = frozenset({"no-worker", "erred", "forgotten"})


def _stuck_tasks(dask_scheduler, keys):
    """The keys among ``keys`` whose task will not finish (run on the scheduler): the
    task, or one it waits on (dependencies not yet in memory, followed down), is in a
    state of :data:`_STUCK` or unknown to the scheduler."""
    stuck = []
    for k in keys:
        todo, seen = [dask_scheduler.tasks.get(k)], set()
        while todo:
            ts = todo.pop()
            if ts is None or ts.state in _STUCK:
                stuck.append(k)
                break
            if ts.key in seen or ts.state == "memory":
                continue
            seen.add(ts.key)
            todo.extend(ts.dependencies)
    return stuck


def _executor(X):
    """The distributed client Dask would use for X, else this process."""
    try:
        from distributed import Client
    except ImportError:
        return _Local()
    scheduler = dask.base.get_scheduler(collections=[X])
    client = getattr(scheduler, "__self__", None)
    if isinstance(client, Client):
        return _Cluster(client)
    return _Local()


class _Blocks:
    """Handles to blocks (tuples in memory, or futures on a cluster) and their sizes."""

    def __init__(self, ex, handles, sizes, n_features, dtype):
        self.ex = ex
        self.handles = list(handles)
        self.sizes = [int(s) for s in sizes]
        self.offsets = [int(o) for o in np.concatenate([[0], np.cumsum(self.sizes)[:-1]])]
        self.shape = (int(sum(self.sizes)), int(n_features))
        self.dtype = np.dtype(dtype)

    def gather_each(self, fn, *args, per_block=None):
        """``[fn(block_b, per_block[b], *args) for b]``, run where the blocks are."""
        return self.ex.gather_each(fn, self.handles, args, per_block)

    def map_each(self, fn, *args):
        """New blocks ``fn(block_b, *args)``, kept where the blocks are."""
        return _Blocks(self.ex, self.ex.map_each(fn, self.handles, args), self.sizes, self.shape[1], self.dtype)

    def chain(self, fn, visits, carried, *args):
        """``carried = fn(block_b, carried, *args, *extra)`` for ``(b, extra)`` in
        ``visits``, each call where its block is; returns the last ``carried``."""
        return self.ex.chain(fn, self.handles, visits, carried, args)

    def owners(self):
        """Which worker holds each block (one name per block; one for all of them
        without a cluster)."""
        return self.ex.owners(self.handles)

    def rounds(self, rounds, carried, backend, hp, codes, t):
        """Run an averaged epoch's ``rounds`` (:func:`average_rounds`) from ``carried``
        = (state, 0.0): each round's pieces where their blocks live, then
        :func:`_average_task`. Returns (state, summed loss, steps)."""
        return self.ex.rounds(self.handles, rounds, carried, (backend, hp, codes), t)

    def release(self):
        self.handles = []


class _Local:
    """Dask's local schedulers: blocks are computed once into this process."""

    def load(self, X, y, sw, dtype, is_classifier):
        tasks, sizes = _load_tasks(X, y, sw, dtype, is_classifier)
        return _Blocks(self, dask.compute(*tasks), sizes, X.shape[1], dtype)

    @staticmethod
    def gather_each(fn, handles, args, per_block):
        if per_block is None:
            return [fn(h, *args) for h in handles]
        return [fn(h, extra, *args) for h, extra in zip(handles, per_block, strict=True)]

    @staticmethod
    def map_each(fn, handles, args):
        return [fn(h, *args) for h in handles]

    @staticmethod
    def chain(fn, handles, visits, carried, args):
        for b, extra in visits:
            carried = fn(handles[b], carried, *args, *extra)
        return carried

    @staticmethod
    def owners(handles):
        return [None] * len(handles)  # this process is the one worker

    @staticmethod
    def rounds(handles, rounds, carried, args, t):
        start = t
        for steps, parts in rounds:
            results = [_local_task(carried, *args, t, pieces, *[handles[p[0]] for p in pieces]) for _, pieces in parts]
            carried = _average_task(carried, *results)
            t += steps
        return carried[0], carried[1], t - start


def _load_tasks(X, y, sw, dtype, is_classifier):
    """Delayed stage-1 tasks of the non-empty row chunks, and their sizes."""
    xs = X.to_delayed().ravel()
    ys = y.to_delayed().ravel()
    ss = sw.to_delayed().ravel() if isinstance(sw, da.Array) else [sw] * len(xs)
    keep = [i for i, size in enumerate(X.chunks[0]) if size > 0]
    load = dask.delayed(_load, pure=True)
    tasks = [load(xs[i], ys[i], ss[i], dtype, is_classifier) for i in keep]
    return tasks, [X.chunks[0][i] for i in keep]


class _Cluster:
    """A distributed client: every task that reads a block is restricted to the
    worker(s) holding that block, so blocks never move."""

    def __init__(self, client):
        self.client = client
        self.token = uuid.uuid4().hex[:12]
        self.count = itertools.count()
        self.holders = {}

    def _key(self, what):
        return f"fastgd-{what}-{self.token}-{next(self.count)}"

    def load(self, X, y, sw, dtype, is_classifier):
        from distributed import futures_of

        # make the chunks live on the workers (a no-op for persisted data), then load
        # each X chunk where it is; only the small y and weight chunks may move to it
        parts = [X, y] + ([sw] if isinstance(sw, da.Array) else [])
        parts = self.client.persist(parts)
        by_key = {f.key: f for p in parts for f in futures_of(p)}
        xs, ys = ([by_key[k] for k in _flat_keys(p)] for p in parts[:2])
        ss = [by_key[k] for k in _flat_keys(parts[2])] if len(parts) == 3 else [sw] * len(xs)
        keep = [i for i, size in enumerate(X.chunks[0]) if size > 0]
        self._wait([xs[i] for i in keep], [], stage="before the training blocks were loaded")
        who = self.client.who_has([xs[i] for i in keep])
        pins = [list(who.get(xs[i].key, ())) or None for i in keep]
        handles = [
            self.client.submit(
                _load,
                xs[i],
                ys[i],
                ss[i],
                dtype,
                is_classifier,
                key=self._key("load"),
                workers=pin,
                allow_other_workers=False,
            )
            for i, pin in zip(keep, pins, strict=True)
        ]
        del parts, by_key, xs, ys, ss
        self._wait(handles, pins)  # from here on, where each block lives is known
        return _Blocks(self, handles, [X.chunks[0][i] for i in keep], X.shape[1], dtype)

    def _submit(self, what, fn, handle, where, *args):
        return self.client.submit(
            fn, handle, *args, key=self._key(what), workers=where, allow_other_workers=False
        )

    def _where(self, handles):
        """The workers holding each block, asked once per set of blocks: blocks do not
        move (a worker that leaves is caught by ``_wait``)."""
        key = tuple(h.key for h in handles)
        if key not in self.holders:
            who = self.client.who_has(handles)
            self.holders = {key: [list(who.get(h.key, ())) or None for h in handles]}
        return self.holders[key]

    def _wait(self, futures, where, stage="during the fit"):
        """Wait for the futures. Every ``poll_seconds()`` without them all done, look
        for a lost worker: one a task is pinned to (``where``) that has left, or a task
        the scheduler can no longer run (its only allowed worker left, its input was
        lost); then cancel them and raise RuntimeError. The fit's model is unchanged
        (the estimator's call is atomic)."""
        from distributed import wait

        pinned = {w for ws in where if ws for w in ws}
        while True:
            try:
                wait(futures, timeout=poll_seconds())
                return
            except TimeoutError:
                lost = sorted(pinned - set(self.client.nthreads()))
                stuck = []
                if not lost:
                    pending = [f.key for f in futures if not f.done()]
                    stuck = self.client.run_on_scheduler(_stuck_tasks, keys=pending)
                if lost or stuck:
                    self.client.cancel(futures)
                    who = (f"Dask worker(s) {lost} holding training blocks left the cluster" if lost else
                           f"{len(stuck)} task(s) on the training blocks can no longer run (a worker "
                           "holding their data left the cluster)")
                    raise RuntimeError(f"{who} {stage}; the model is unchanged. Fit again.") from None

    def gather_each(self, fn, handles, args, per_block):
        where = self._where(handles)
        extras = [()] * len(handles) if per_block is None else [(e,) for e in per_block]
        futures = [
            self._submit(fn.__name__.strip("_"), fn, h, w, *extra, *args)
            for h, w, extra in zip(handles, where, extras, strict=True)
        ]
        self._wait(futures, where)
        return self.client.gather(futures)

    def map_each(self, fn, handles, args):
        where = self._where(handles)
        futures = [self._submit("block", fn, h, w, *args) for h, w in zip(handles, where, strict=True)]
        self._wait(futures, where)
        return futures

    def chain(self, fn, handles, visits, carried, args):
        where = self._where(handles)
        futures = []
        for b, extra in visits:
            carried = self._submit("epoch", fn, handles[b], where[b], carried, *args, *extra)
            futures.append(carried)
        self._wait(futures, where)
        return futures[-1].result()


    def owners(self, handles):
        # a block held by several workers (replicated) belongs to the first by name
        return [min(ws) if ws else None for ws in self._where(handles)]

    def rounds(self, handles, rounds, carried, args, t):
        """Submit the whole epoch at once: each round's local tasks pinned to their
        blocks' worker, each sync an unpinned task on the local results; only the states
        (and a few scalars) travel, worker to sync task to worker."""
        where = self._where(handles)
        start = t
        futures = []
        for steps, parts in rounds:
            local = [
                self.client.submit(
                    _local_task,
                    carried,
                    *args,
                    t,
                    pieces,
                    *[handles[p[0]] for p in pieces],
                    key=self._key("local"),
                    workers=[owner] if owner is not None else where[pieces[0][0]],
                    allow_other_workers=False,
                )
                for owner, pieces in parts
            ]
            carried = self.client.submit(_average_task, carried, *local, key=self._key("average"))
            futures += local + [carried]
            t += steps
        self._wait(futures, where)
        state, total = carried.result()
        return state, total, t - start


def _flat_keys(a):
    """The keys of a 2-D (row chunks x 1) or 1-D Dask array, in row-chunk order."""
    keys = a.__dask_keys__()
    return [k[0] if isinstance(k, list) else k for k in keys]


def _load(Xb, yb, swb, dtype, is_classifier):
    """Stage 1: X as the kernels take it; y and the sample weights as given."""
    X = np.ascontiguousarray(Xb, dtype=dtype)
    y = np.asarray(yb)
    if not is_classifier:
        y = np.ascontiguousarray(y.reshape(X.shape[0], -1), dtype=dtype)
    if swb is None:
        sw = np.ones(X.shape[0], dtype=dtype)
    elif np.ndim(swb) == 0:
        sw = np.full(X.shape[0], swb, dtype=dtype)
    else:
        sw = np.asarray(swb, dtype=dtype)
    return X, y, sw
