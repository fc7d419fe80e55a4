"""fastgd's benchmark suite.

``python -m bench`` (quick) or ``python -m bench --full`` writes ``bench/results/report.md``
with PNG plots and prints a summary table; ``pytest bench --benchmark-only`` runs the
epoch timings as pytest-benchmark cases. What each number means: ``bench/README.md``.

Modules: ``config`` (what a run measures: the quick, full and tiny configurations),
``data`` (the data sets), ``methods`` (fastgd backends and the peers, each timed per
epoch), ``measure`` (memory floor, time to accuracy, cold start), ``runner`` (the plan of
a run and its cases, with progress, into ``Results``), ``targets`` (the performance-target
checks), ``formatting`` (numbers and Markdown tables), ``render`` (the Markdown report,
``results.json``), ``plots`` (the PNG plots), ``report`` (``run``: all of it, for
``python -m bench``); ``race_bench`` (the time-to-accuracy race of each tool's defaults,
the report's headline); the extra sections ``sparse_bench``, ``reliability_bench`` and
``dask_bench``.
"""
