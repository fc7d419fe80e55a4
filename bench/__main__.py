"""``python -m bench``: the benchmark report; ``python -m bench compare RUN_A RUN_B``: the
ratios of two saved pytest-benchmark runs (:mod:`bench.compare`).

The default run (``QUICK`` in :mod:`bench.config`, about 3 minutes on 2 cores) leads
with the time-to-accuracy race (``bench.race_bench``: fastgd's default
``LogisticRegression()`` against scikit-learn's solvers, ``SGDClassifier``, Vowpal
Wabbit and PyTorch, whole fits) at a fraction of its rows, then a one-screen summary,
then every section at reduced sizes: seconds per epoch of every backend and peer, the
performance targets, time to accuracy against lbfgs, cold start, scaling, and the
sections of :mod:`bench.sections` (sparse input, ``fit`` as a user calls it,
cross-validation, concurrency and memory). ``--full`` runs the complete report (tens of
minutes). ``--no-race``, ``--no-sparse``, ``--no-fit``, ``--no-cv`` and
``--no-reliability`` skip a part; ``--optimizers`` and ``--dask`` add theirs. The report
goes to ``bench/results/report.md`` with PNG plots and ``results.json``.
"""

import argparse
import pathlib
import sys
from dataclasses import replace

from .config import FULL, QUICK
from .report import run


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["compare"]:
        from .compare import main as compare

        return compare(argv[1:])
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Run fastgd's benchmarks, write bench/results/report.md (with PNG plots and "
        "results.json) and print a one-screen summary. Run from the repository root. "
        "'python -m bench compare RUN_A RUN_B' prints the ratios of two saved pytest-benchmark runs.",
    )
    parser.add_argument("--full", action="store_true",
                        help="the complete report: the race at full size, 200000x100 and 1000000x20, every section "
                        "at full size (tens of minutes on 2 cores; the default takes about 3 minutes)")
    parser.add_argument(
        "--out", type=pathlib.Path, default=pathlib.Path(__file__).resolve().parent / "results",
        help="where the report goes (default: bench/results)",
    )
    switches = {  # the on/off options: flag -> help
        "--no-plots": "skip the PNG plots",
        "--no-cold-start": "skip the cold-start subprocesses",
        "--dask": "add the Dask section: a 2-worker LocalCluster against in memory (needs fastgd[dask])",
        "--no-race": "skip the time-to-accuracy race (the report's headline table)",
        "--no-sparse": "skip the sparse (CSR) section",
        "--optimizers": "add the update-rule section: time to accuracy against scikit-learn, sparse epoch time against d",
        "--no-reliability": "skip the concurrency and peak-memory section",
        "--no-cv": "skip the cross-validation section (10 alphas x 5 folds against GridSearchCV and scikit-learn)",
        "--no-fit": "skip the section on fit as a user calls it (set-up against an epoch, SGD through fit, shuffles)",
    }
    for flag, text in switches.items():
        parser.add_argument(flag, action="store_true", help=text)
    parser.add_argument(
        "--race-scale", type=float, default=None, metavar="F",
        help="run the race on this fraction of its problems' rows (default 0.15; 1 with --full: the full sizes)",
    )
    parser.add_argument(
        "--race-threads", type=int, default=None, metavar="N",
        help="threads of every raced method's BLAS, OpenMP and PyTorch (default 1; 0: the libraries' defaults)",
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
    skip = {name for name in ("sparse", "fit", "cv", "reliability") if getattr(args, f"no_{name}")}
    changes = {"sections": tuple(s for s in config.sections if s not in skip)
               + (("optimizers",) if args.optimizers else ())}
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
    config = replace(config, **changes)
    _, report = run(config, args.out)
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
