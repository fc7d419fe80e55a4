"""``python -m bench [--full] [--out DIR] [--no-plots]``: run the benchmarks, write the
report (``bench/results/report.md`` with PNG plots and ``results.json``) and print the
summary table."""

import argparse
import pathlib

from .report import FULL, QUICK, run


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
    args = parser.parse_args(argv)
    config = FULL if args.full else QUICK
    changes = {}
    if args.no_plots:
        changes["plots"] = False
    if args.no_cold_start:
        changes["cold_start"] = False
    if changes:
        from dataclasses import replace

        config = replace(config, **changes)
    run(config, args.out)


if __name__ == "__main__":
    main()
