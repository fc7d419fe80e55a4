"""fastgd's benchmark suite.

``python -m bench`` (quick) or ``python -m bench --full`` writes ``bench/results/report.md``
with PNG plots and prints a summary table; ``pytest bench --benchmark-only`` runs the
epoch timings as pytest-benchmark cases. What each number means: ``bench/README.md``.

Modules: ``data`` (the data sets), ``methods`` (fastgd backends and the peers, each timed
per epoch), ``measure`` (memory floor, time to accuracy, cold start), ``report`` (the
plan, the run, the Markdown report), ``plots``.
"""
