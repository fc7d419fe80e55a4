"""Seconds per epoch on a 2-worker Dask ``LocalCluster`` against the same fit in memory,
and the averaged mode (``dask_mode="average"``) against the sequential one.

``python -m bench.dask_bench [--rows N] [--features D] [--chunk-rows C] [--epochs E]``
prints the Markdown tables; :func:`run` returns the first table's rows (dicts) for a
report, :func:`run_average` the second's (logistic mini-batch: 1 worker, 2 workers
sequential and averaged, in memory; epoch time and test accuracy), and
:func:`simulate_workers` the convergence of the averaged mode with 1 to 16 workers
(simulated in one process; :func:`plot_simulation` draws it).

:data:`METHOD` and :data:`AVERAGE_METHOD` say how they measure (the report prints them
beside the tables).
"""

import argparse
import contextlib
import logging
import time

import numpy as np

SEED = 0

METHOD = """\
The cluster has two worker processes with one thread each (the in-memory fits get the
same two cores: the numba full-batch kernel with ``n_jobs=1`` and ``n_jobs=2``). The
data are generated on the workers and gathered once for the in-memory fits, so both
sides fit the same numbers and the final objectives can be compared. Epoch times are
the median over epochs of ``time_curve_`` steps; "set-up" is the rest of the fit's wall
time (for Dask: loading and checking the blocks, encoding the targets). The "fixed
cost" rows fit data of the same number of blocks but only 1000 rows per block: what
an epoch costs on the cluster when there is next to nothing to compute (scheduling
one task per block and, for mini-batches, passing the state from block to block).
The mini-batch rows use ``dask_mode="sequential"`` (the model visits the blocks one
after another); the averaged mode has its own table.
"""

AVERAGE_METHOD = """\
Logistic regression, mini-batch, shuffled, ``learning_rate="auto"``, ``tol=None``, the
same number of epochs everywhere. The data (Gaussian features, labels from a fixed
linear model plus Gaussian noise, so the best accuracy is below 1) are generated on the
workers; the test set is generated the same way in this process. "1 worker" is a
cluster of one worker process with one thread holding every block (the averaged mode
is then the sequential fit); "2 workers" two processes with one thread each, block i
on worker i % 2 (half of the blocks each). Epoch times are the median over epochs of ``time_curve_``
steps; accuracy is on the test set after the last epoch. One run on a shared machine:
compare the ratios, not the seconds.
"""


@contextlib.contextmanager
def _client(n_workers):
    """A ``Client`` of a new ``LocalCluster``: ``n_workers`` processes of one thread each."""
    from distributed import Client, LocalCluster

    with (
        LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True, dashboard_address=None,
                     silence_logs=logging.ERROR) as cluster,
        Client(cluster) as client,
    ):
        yield client


def _epoch_seconds(model):
    steps = np.diff([0.0] + list(model.time_curve_))
    return float(np.median(steps))


def _fit(model, X, y):
    """``(model, wall-clock seconds of model.fit(X, y))``."""
    tic = time.perf_counter()
    model.fit(X, y)
    return model, time.perf_counter() - tic


def run(rows=10_000_000, features=20, chunk_rows=1_000_000, epochs=5, batch=256, stream=print):
    """Measure and return the table rows (dicts). ``stream`` gets progress lines."""
    import dask.array as da
    from distributed import wait

    from fastgd import LinearRegression

    modes = {  # label -> estimator parameters
        "full batch": {"batch_size": "full", "learning_rate": "constant", "eta0": 0.1},
        f"mini-batch {batch}, shuffled": {
            "batch_size": batch, "learning_rate": "constant", "eta0": 0.005, "dask_mode": "sequential",
        },
    }
    out = []
    with _client(2) as client:
        def data(n, chunk):
            rng = da.random.default_rng(SEED)
            X = rng.standard_normal((n, features), chunks=(chunk, features))
            w = np.linspace(-1.0, 1.0, features)
            y = X @ w + 0.1 * rng.standard_normal(n, chunks=X.chunks[0])
            X, y = client.persist([X, y])
            wait([X, y])
            return X, y

        n_blocks = -(-rows // chunk_rows)
        stream(f"generating {rows} x {features} float64 on the workers ({rows * features * 8 / 1e9:.2f} GB), "
               f"{n_blocks} blocks")
        Xd, yd = data(rows, chunk_rows)
        Xt, yt = data(1000 * n_blocks, 1000)  # tiny: the fixed cost per epoch
        stream("gathering a copy for the in-memory fits")
        X, y = Xd.compute(), yd.compute()
        for label, params in modes.items():
            def make(params=params, **extra):
                return LinearRegression(max_iter=epochs, tol=None, random_state=SEED, **params, **extra)

            # warm up: numba kernels compiled or loaded in this process and on the workers
            make().set_params(max_iter=1).fit(X[:2000], y[:2000])
            make().set_params(max_iter=1).fit(Xt, yt)
            results = {}
            for where, (Xi, yi, extra) in {
                "in memory, 1 thread": (X, y, {"n_jobs": 1}),
                "in memory, 2 threads": (X, y, {"n_jobs": 2}),
                "Dask, 2 workers": (Xd, yd, {}),
                "Dask fixed cost (1000 rows per block)": (Xt, yt, {}),
            }.items():
                if where.endswith("2 threads") and params["batch_size"] != "full":
                    continue  # only the full-batch kernel uses threads
                stream(f"{label}: {where}")
                results[where] = (*_fit(make(**extra), Xi, yi), Xi.shape[0])
            base = _epoch_seconds(results["in memory, 1 thread"][0])
            for where, (model, wall, n) in results.items():
                sec = _epoch_seconds(model)
                out.append(
                    {
                        "mode": label,
                        "where": where,
                        "rows": n,
                        "epoch_s": sec,
                        "vs_in_memory": sec / base,
                        "setup_s": wall - model.time_curve_[-1],
                        "final_objective": model.loss_curve_[-1],
                    }
                )
    return out


def _logistic_data(rng_module, n, features, chunk, seed):
    """Gaussian X and labels ``X w + noise > 0`` (``w`` fixed), from ``rng_module``
    (``dask.array.random`` with chunks, or ``numpy.random``)."""
    w = np.linspace(-1.0, 1.0, features) * (4.0 / np.sqrt(features))
    rng = rng_module.default_rng(seed)
    kwargs = {"chunks": (chunk, features)} if chunk else {}
    X = rng.standard_normal((n, features), **kwargs)
    noise = rng.standard_normal(n, **({"chunks": chunk} if chunk else {}))
    return X, (X @ w + noise > 0).astype(np.int64)


def run_average(rows=10_000_000, features=20, chunk_rows=1_000_000, epochs=5, batch=256, test_rows=200_000,
                sync_every=(None,), stream=print):
    """Logistic mini-batch: in memory, a 1-worker cluster, and a 2-worker cluster in both
    modes (the averaged one for each ``sync_every``); returns the table rows (dicts)."""
    import dask.array as da
    from distributed import wait

    from fastgd import LogisticRegression

    X_test, y_test = _logistic_data(np.random, test_rows, features, None, SEED + 1)

    def make(**extra):
        return LogisticRegression(batch_size=batch, max_iter=epochs, tol=None, random_state=SEED, **extra)

    out = []

    def record(where, mode, model, wall, extra=None):
        out.append(
            {
                "where": where,
                "mode": mode,
                "epoch_s": _epoch_seconds(model),
                "setup_s": wall - model.time_curve_[-1],
                "final_objective": model.loss_curve_[-1],
                "test_accuracy": float(np.mean(model.predict(X_test) == y_test)),
                "t": model.t_,
                **(extra or {}),
            }
        )
        stream(f"{where}, {mode}: {out[-1]['epoch_s']:.3f} s/epoch, accuracy {out[-1]['test_accuracy']:.4f}")

    X = y = None
    for n_workers in (1, 2):
        with _client(n_workers) as client:
            stream(f"generating {rows} x {features} float64 on {n_workers} worker(s)")
            # block i on worker i % n_workers: an even split (the averaged epoch waits
            # for the worker with the most rows), the same numbers on either cluster
            Xl, yl = _logistic_data(da.random, rows, features, chunk_rows, SEED)
            workers = sorted(client.nthreads())
            parts, lo = [], 0
            for i, size in enumerate(Xl.chunks[0]):
                parts.append(client.persist([Xl[lo:lo + size], yl[lo:lo + size]], workers=[workers[i % n_workers]]))
                lo += size
            Xd = da.concatenate([p[0] for p in parts])
            yd = da.concatenate([p[1] for p in parts])
            wait([Xd, yd])
            rows_on = {w: 0 for w in workers}
            for i, size in enumerate(Xl.chunks[0]):
                rows_on[workers[i % n_workers]] += size
            stream(f"rows per worker: {sorted(rows_on.values())}")
            # warm up: the kernels compiled or loaded on every worker (every 50th row:
            # small blocks where the blocks are)
            make(dask_mode="average").set_params(max_iter=1).fit(Xd[::50], yd[::50])
            where = f"Dask, {n_workers} worker{'s' if n_workers > 1 else ''} x 1 thread"
            modes = [("sequential", None)] + [("average", s) for s in sync_every]
            if n_workers == 1:
                modes = [("average", None)]  # one worker: the two modes are the same fit
            for mode, s in modes:
                label = mode if mode == "sequential" else f"average, sync_every={s}"
                model, wall = _fit(make(dask_mode=mode, sync_every=s), Xd, yd)
                record(where, label, model, wall)
            if X is None:
                stream("gathering a copy for the in-memory fit")
                X, y = Xd.compute(), yd.compute()
    make().set_params(max_iter=1).fit(X[:2000], y[:2000])
    model, wall = _fit(make(n_jobs=1), X, y)
    record("in memory, 1 thread", "sequential", model, wall)
    one = next(r["epoch_s"] for r in out if r["where"].startswith("Dask, 1 worker"))
    for r in out:
        r["speedup_vs_1_worker"] = one / r["epoch_s"]
    return out


def average_table(rows):
    lines = [
        "| where | mode | s / epoch | speed-up vs 1 worker | test accuracy | final objective | updates t_ |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['where']} | {r['mode']} | {r['epoch_s']:.3f} | {r['speedup_vs_1_worker']:.2f} | "
            f"{r['test_accuracy']:.4f} | {r['final_objective']:.6f} | {r['t']:,} |"
        )
    return "\n".join(lines)


def simulate_workers(rows=400_000, features=20, n_blocks=16, epochs=5, batch=256, workers=(1, 2, 4, 8, 16),
                     sync_every=(None,), test_rows=100_000):
    """The averaged mode's convergence with 1 to 16 workers, simulated in this process:
    ``n_blocks`` blocks, block ``b`` on worker ``b % k``, each epoch the averaged mode's
    rounds run with its tasks (``fastgd.benchmarking.simulate_average``: no cluster, no timing).
    Returns ``{(k, sync_every): [test accuracy after each epoch]}``, with the sequential
    fit (in memory, the same data) as ``{("in memory", None): [...]}``."""
    from fastgd import LogisticRegression
    from fastgd.benchmarking import simulate_average

    X, y = _logistic_data(np.random, rows, features, None, SEED)
    X_test, y_test = _logistic_data(np.random, test_rows, features, None, SEED + 1)
    est = LogisticRegression(batch_size=batch, max_iter=epochs, tol=None, random_state=SEED)

    def accuracy(W):
        return float(np.mean(((X_test @ W[0, :-1] + W[0, -1]) > 0) == y_test))

    curves = {}
    for k in workers:
        for s in sync_every:
            states = simulate_average(est, X, y, n_blocks, k, epochs, sync_every=s)
            curves[k, s] = [accuracy(W) for W in states]
    reference = []
    for e in range(1, epochs + 1):
        fitted = est.set_params(max_iter=e).fit(X, y)
        reference.append(accuracy(np.column_stack([fitted.coef_.reshape(1, -1), fitted.intercept_.reshape(1, -1)])))
    curves["in memory", None] = reference
    return curves


def plot_simulation(curves, path):
    """Test accuracy per epoch for each simulated worker count (PNG at ``path``)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    for (k, s), curve in curves.items():
        epochs = range(1, len(curve) + 1)
        if k == "in memory":
            ax.plot(epochs, curve, "k--", label="in memory (sequential)")
        else:
            sync = "per epoch" if s is None else f"every {s} steps"
            ax.plot(epochs, curve, marker="o", label=f"{k} worker{'s' if k > 1 else ''}, sync {sync}")
    ax.set_xticks(range(1, max(len(c) for c in curves.values()) + 1))
    ax.set_xlabel("epoch")
    ax.set_ylabel("test accuracy")
    ax.set_title("dask_mode='average': convergence by number of workers (simulated)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def simulation_table(curves):
    epochs = len(next(iter(curves.values())))
    lines = [
        "| workers | sync | " + " | ".join(f"epoch {e}" for e in range(1, epochs + 1)) + " |",
        "|---|---|" + "---:|" * epochs,
    ]
    for (k, s), curve in curves.items():
        sync = "—" if k == "in memory" else ("per epoch" if s is None else f"every {s} steps")
        lines.append(f"| {k} | {sync} | " + " | ".join(f"{a:.4f}" for a in curve) + " |")
    return "\n".join(lines)


def average_section(rows, curves, n, features, chunk, png=None):
    """The report's Markdown section for :func:`run_average` and :func:`simulate_workers`."""
    text = (
        f"\n## Dask, averaged mode: logistic mini-batch, {n:,} x {features} float64 in blocks of {chunk:,} rows\n\n"
        + AVERAGE_METHOD.strip()
        + "\n\n"
        + average_table(rows)
        + "\n\nSimulated (one process, no timing): test accuracy after each epoch with 1 to 16 "
        "workers, 16 blocks, block b on worker b % k.\n\n"
        + simulation_table(curves)
        + "\n"
    )
    if png is not None:
        text += f"\n![averaged mode by number of workers]({png})\n"
    return text


def table(rows):
    lines = [
        "| mode | where | rows | s / epoch | × in memory (1 thread) | set-up s | final objective |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['mode']} | {r['where']} | {r['rows']:,} | {r['epoch_s']:.4f} | {r['vs_in_memory']:.2f} | "
            f"{r['setup_s']:.2f} | {r['final_objective']:.10g} |"
        )
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m bench.dask_bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--features", type=int, default=20)
    parser.add_argument("--chunk-rows", type=int, default=1_000_000)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--sync-every", type=int, nargs="*", default=[],
                        help="the averaged mode's sync_every values besides once per epoch")
    parser.add_argument("--only-average", action="store_true", help="skip the first table")
    parser.add_argument("--plot", default=None, help="write the simulated 1-16 worker convergence to this PNG")
    args = parser.parse_args(argv)
    rows = []
    if not args.only_average:
        rows = run(args.rows, args.features, args.chunk_rows, args.epochs, args.batch)
        print(table(rows))
    average = run_average(args.rows, args.features, args.chunk_rows, args.epochs, args.batch,
                          sync_every=[None, *args.sync_every])
    print(average_table(average))
    if args.plot:
        curves = simulate_workers(epochs=args.epochs, batch=args.batch, sync_every=[None, *args.sync_every])
        print(simulation_table(curves))
        print(plot_simulation(curves, args.plot))
    return rows, average


if __name__ == "__main__":
    main()
