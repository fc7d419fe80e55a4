"""The benchmark run: ``run(config, out_dir)`` is the whole job of ``python -m bench``.

It runs the cases of ``config`` with progress (:mod:`bench.runner`), writes the report
(:mod:`bench.render`; the performance targets: :mod:`bench.targets`) and prints the
summary. The configurations are in :mod:`bench.config` (:data:`QUICK`, :data:`FULL`;
tests use :func:`tiny_config`).

What other code imported from here before those modules existed (the configurations,
:class:`Results`, the report's sections, :func:`evaluate_targets`, ...) is re-exported.
"""

import sys

from .config import (
    BATCHES,
    FULL,
    MODELS,
    PEERS,
    QUICK,
    Config,
    batch_label,
    tiny_config,
)
from .render import (
    cold_lines,
    glance_lines,
    sizes_lines,
    report_lines,
    scaling_exponents,
    summary_table,
    threads_lines,
    tta_lines,
    write,
)
from .runner import Results, Runner
from .targets import TARGET_NAMES, evaluate_targets, targets_lines

# run() and, for code written before the split, the names other modules used from here
__all__ = [
    "BATCHES",
    "FULL",
    "MODELS",
    "PEERS",
    "QUICK",
    "TARGET_NAMES",
    "Config",
    "Results",
    "Runner",
    "batch_label",
    "cold_lines",
    "evaluate_targets",
    "report_lines",
    "run",
    "scaling_exponents",
    "summary_table",
    "targets_lines",
    "threads_lines",
    "tiny_config",
    "tta_lines",
    "write",
]


def run(config, out_dir, stream=None):
    """Run ``config``, write the report into ``out_dir``, print the one-screen summary (the
    race's headline, the sizes, a line or two per section, the epoch summary table);
    return ``(results, report_path)``."""
    stream = stream or sys.stdout
    runner = Runner(config, stream=stream)
    results = runner.run()
    path = write(results, out_dir, plots=config.plots)
    if results.race.get("problems"):
        from .race_bench import headline_lines

        print(file=stream)
        print(f"Time-to-accuracy race ({results.race['wall_s']:.0f} s, scale {results.race['scale']:g}):", file=stream)
        print("\n".join(headline_lines(results.race)), file=stream)
    print(file=stream)
    print("\n".join(sizes_lines(results) + glance_lines(results)), file=stream)
    print(file=stream)
    print("\n".join(summary_table(results)), file=stream)
    if results.errors:
        print(f"\n{len(results.errors)} case(s) failed; see the report.", file=stream)
    print(f"\nReport: {path} ({results.meta['wall_s']:.0f} s)", file=stream, flush=True)
    return results, path

