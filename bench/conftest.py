"""pytest-benchmark set-up for ``pytest bench``: collects ``bench_*.py`` and holds the sizes.

Sizes are selected by name with ``-k``: ``pytest bench --benchmark-disable -k small`` is a
quick smoke run of every case; ``pytest bench --benchmark-only`` times them all.
"""

import pytest

from bench.config import batch_label
from fastgd.benchmarking import backend_error, backend_names

# name -> (n, d); "small" is what the smoke run uses
SIZES = {"small": (10_000, 10), "medium": (200_000, 100), "large": (1_000_000, 20)}
# timed rounds (one epoch each) per size
ROUNDS = {"small": 20, "medium": 3, "large": 2}


def pytest_collect_file(file_path, parent):
    """Collect ``bench_*.py`` in this folder (pytest's default is ``test_*.py``)."""
    if file_path.suffix == ".py" and file_path.name.startswith("bench_"):
        return pytest.Module.from_parent(parent, path=file_path)
    return None


def group(model, batch, size, dtype="float64"):
    """pytest-benchmark group ``"{model} batch {batch}|{n}x{d}"``: every backend and peer of one case
    side by side."""
    n, d = SIZES[size]
    return f"{model} batch {batch_label(batch, dtype)}|{n}x{d}"


def require_backend(name):
    """Skip (with the reason) when backend ``name`` does not import here."""
    reason = backend_error(name)
    if reason is not None:
        pytest.skip(reason)


ALL_BACKENDS = list(backend_names())
