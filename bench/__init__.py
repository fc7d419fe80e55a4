"""fastgd's benchmark suite.

``python -m bench`` (every section at reduced sizes, a few minutes) or ``python -m bench
--full`` (the complete report) writes ``bench/results/report.md`` with PNG plots and
prints a one-screen summary; ``pytest bench --benchmark-only`` runs the epoch timings as
pytest-benchmark cases, and ``python -m bench compare RUN_A RUN_B`` prints the ratios of
two saved runs. What each number means: ``bench/README.md``.

Modules: ``config`` (what a run measures: the quick, full and tiny configurations),
``data`` (every problem: the data sets and generators of every section), ``methods``
(fastgd backends and the peers, each timed per epoch; the one objective; which optional
peers import), ``measure`` (memory floor, time to accuracy, cold start), ``runner`` (the
plan of a run and its cases, with progress and the time left, into ``Results``),
``targets`` (the performance-target checks), ``formatting`` (numbers and Markdown
tables), ``render`` (the Markdown report, ``results.json``), ``plots`` (the PNG plots),
``report`` (``run``: all of it, for ``python -m bench``); ``race_bench`` (the
time-to-accuracy race of each tool's defaults, the report's headline); ``sections`` (the
sections after the epoch timings, each at a size: ``sparse_bench``, ``fit_bench``,
``cv_bench``, ``reliability_bench``, ``optimizers_bench``), ``dask_bench``; ``compare``
(two saved pytest-benchmark runs). Below fastgd's public names the benchmarks use only
``fastgd.benchmarking``.
"""
