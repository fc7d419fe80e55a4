"""Seconds per epoch on a 2-worker Dask ``LocalCluster`` against the same fit in memory.

``python -m bench.dask_bench [--rows N] [--features D] [--chunk-rows C] [--epochs E]``
prints a Markdown table; :func:`run` returns its rows (dicts) for a report.

:data:`METHOD` says how it measures (the report prints it beside the table).
"""

import argparse
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
"""


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
    from distributed import Client, LocalCluster, wait

    from fastgd import LinearRegression

    modes = {  # label -> estimator parameters
        "full batch": {"batch_size": "full", "learning_rate": "constant", "eta0": 0.1},
        f"mini-batch {batch}, shuffled": {"batch_size": batch, "learning_rate": "constant", "eta0": 0.005},
    }
    out = []
    with (
        LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            silence_logs=logging.ERROR,
        ) as cluster,
        Client(cluster) as client,
    ):
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
    args = parser.parse_args(argv)
    rows = run(args.rows, args.features, args.chunk_rows, args.epochs, args.batch)
    print(table(rows))
    return rows


if __name__ == "__main__":
    main()
