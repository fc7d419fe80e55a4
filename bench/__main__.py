"""``python -m bench [--full] [--dask] [--no-race] [--no-sparse] [--out DIR] [--no-plots]``:
run the benchmarks, write the report (``bench/results/report.md`` with PNG plots and
``results.json``) and print the summary table. The time-to-accuracy race
(``bench.race_bench``: fastgd's default ``LogisticRegression()`` against scikit-learn's
solvers, ``SGDClassifier``, Vowpal Wabbit and PyTorch on four problems, whole fits; about
5 minutes) runs first and is the report's headline, unless ``--no-race``
(``--race-scale F`` runs it on a fraction of the rows). The sparse section (``bench.sparse_bench``:
SGD on 100000 CSR rows against scikit-learn, lazy against dense-velocity momentum as d
grows) is appended unless ``--no-sparse``, and the concurrency and memory section
(``bench.reliability_bench``: two fits in two threads against one after the other, and
the peak memory of fits on a 1 GB X and on 1e7×20 float32) unless ``--no-reliability``,
and the section on ``fit`` as a user calls it (``bench.fit_bench``: its set-up against one
epoch, SGD through the whole ``fit`` against scikit-learn's, the block shuffle against
the uniform one) unless ``--no-fit``, and the cross-validation section
(``bench.cv_bench``: ``LogisticRegressionCV``'s 50 models in one pass against one fit,
``GridSearchCV`` of fastgd and of ``SGDClassifier`` and scikit-learn's
``LogisticRegressionCV``, dense and sparse) unless ``--no-cv``.
``--optimizers`` adds the update-rule section (``bench.optimizers_bench``: time to
accuracy of every update rule against scikit-learn's solvers on text-like sparse and on
dense data, and the sparse epoch time at d = 2^14 against 2^20; about 15 minutes).
``--dask`` adds the Dask sections
(``bench.dask_bench``): seconds per epoch on a 2-worker ``LocalCluster`` against the same
fit in memory, and the averaged mode (logistic mini-batch on 1 and 2 workers, epoch time
and test accuracy, with a simulated 1-16 worker convergence plot)."""

import argparse
import pathlib

from .config import FULL, QUICK
from .report import run


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Run fastgd's benchmarks, write bench/results/report.md (with PNG plots and "
        "results.json) and print the summary table. Run from the repository root.",
    )
    parser.add_argument("--full", action="store_true", help="the larger sizes (1000000×20 too); tens of minutes")
    parser.add_argument(
        "--out", type=pathlib.Path, default=pathlib.Path(__file__).resolve().parent / "results",
        help="where the report goes (default: bench/results)",
    )
    parser.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    parser.add_argument("--no-cold-start", action="store_true", help="skip the cold-start subprocesses")
    parser.add_argument(
        "--dask", action="store_true",
        help="add the Dask section: a 2-worker LocalCluster against in memory (needs fastgd[dask])",
    )
    parser.add_argument(
        "--no-race", action="store_true",
        help="skip the time-to-accuracy race (the report's headline table; about 5 minutes)",
    )
    parser.add_argument(
        "--race-scale", type=float, default=None, metavar="F",
        help="run the race on this fraction of its problems' rows (default 1: the full sizes)",
    )
    parser.add_argument(
        "--race-threads", type=int, default=None, metavar="N",
        help="threads of every raced method's BLAS, OpenMP and PyTorch (default 1; 0: the libraries' defaults)",
    )
    parser.add_argument("--no-sparse", action="store_true", help="skip the sparse (CSR) section")
    parser.add_argument(
        "--optimizers", action="store_true",
        help="add the update-rule section: time to accuracy against scikit-learn, sparse epoch time against d",
    )
    parser.add_argument(
        "--no-reliability", action="store_true", help="skip the concurrency and peak-memory section"
    )
    parser.add_argument(
        "--no-cv", action="store_true",
        help="skip the cross-validation section (10 alphas x 5 folds against GridSearchCV and scikit-learn)",
    )
    parser.add_argument(
        "--no-fit", action="store_true",
        help="skip the section on fit as a user calls it (set-up against an epoch, SGD through fit, shuffles)",
    )
    parser.add_argument(
        "--dask-rows", type=int, default=10_000_000,
        help="rows of the Dask data (float64; default 1e7, 1.6 GB at 20 features)",
    )
    parser.add_argument(
        "--dask-features", type=int, default=20,
        help="features of the averaged-mode Dask data (the issue's second size: --dask-rows 2000000 "
        "--dask-features 100)",
    )
    args = parser.parse_args(argv)
    config = FULL if args.full else QUICK
    changes = {}
    if args.no_plots:
        changes["plots"] = False
    if args.no_cold_start:
        changes["cold_start"] = False
    if args.no_race:
        changes["race_scale"] = None
    elif args.race_scale is not None:
        changes["race_scale"] = args.race_scale
    if args.race_threads is not None:
        changes["race_threads"] = args.race_threads
    if changes:
        from dataclasses import replace

        config = replace(config, **changes)
    _, report = run(config, args.out)
    if not args.no_sparse:
        from . import sparse_bench

        print("\nSparse input (CSR)", flush=True)
        epoch_rows, lazy_rows = sparse_bench.run(stream=lambda line: print("  " + line, flush=True))
        section = sparse_bench.section(epoch_rows, lazy_rows, 100_000, 50, 2**18)
        with open(report, "a", encoding="utf-8") as f:
            f.write(section)
        print(section)
    if not args.no_fit:
        from . import fit_bench

        print("\nfit as a user calls it", flush=True)
        section = fit_bench.section(*fit_bench.run(stream=lambda line: print("  " + line, flush=True)))
        with open(report, "a", encoding="utf-8") as f:
            f.write(section)
        print(section)
    if not args.no_cv:
        from . import cv_bench

        print("\nChoosing alpha by cross-validation", flush=True)
        section = cv_bench.section(cv_bench.run(stream=lambda line: print("  " + line, flush=True)))
        with open(report, "a", encoding="utf-8") as f:
            f.write(section)
        print(section)
    if not args.no_reliability:
        from . import reliability_bench

        print("\nConcurrency and memory", flush=True)
        conc, mem = reliability_bench.run(stream=lambda line: print("  " + line, flush=True))
        section = reliability_bench.section(conc, mem)
        with open(report, "a", encoding="utf-8") as f:
            f.write(section)
        print(section)
    if args.optimizers:
        from . import optimizers_bench

        print("\nUpdate rules", flush=True)
        section = optimizers_bench.run(stream=lambda line: print("  " + line, flush=True))
        with open(report, "a", encoding="utf-8") as f:
            f.write(section)
        print(section)
    if args.dask:
        from . import dask_bench

        print("\nDask: a 2-worker LocalCluster against in memory", flush=True)
        chunk = max(1000, args.dask_rows // 10)
        rows = dask_bench.run(rows=args.dask_rows, chunk_rows=chunk, stream=lambda line: print("  " + line, flush=True))
        section = (
            f"\n## Dask: {args.dask_rows:,} x 20 float64 in blocks of {chunk:,} rows\n\n"
            + dask_bench.METHOD.strip()
            + "\n\n"
            + dask_bench.table(rows)
            + "\n"
        )
        with open(report, "a", encoding="utf-8") as f:
            f.write(section)
        print(section)
        print("\nDask, averaged mode: 1 and 2 workers, sequential and averaged", flush=True)
        average = dask_bench.run_average(
            rows=args.dask_rows, features=args.dask_features, chunk_rows=chunk,
            stream=lambda line: print("  " + line, flush=True),
        )
        curves = dask_bench.simulate_workers()
        png = None
        if config.plots:
            png = dask_bench.plot_simulation(curves, report.parent / "dask_average_workers.png").name
        section = dask_bench.average_section(average, curves, args.dask_rows, args.dask_features, chunk, png)
        with open(report, "a", encoding="utf-8") as f:
            f.write(section)
        print(section)


if __name__ == "__main__":
    main()
