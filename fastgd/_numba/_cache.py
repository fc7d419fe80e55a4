"""A damaged on-disk cache of the Numba kernels becomes an error that says what to delete.

Numba keeps each compiled kernel in an index (``.nbi``) and a data file (``.nbc``) under
``NUMBA_CACHE_DIR`` (else ``fastgd/_numba/__pycache__``). Processes that compile at the
same time, a read-only directory and a cache copied from another CPU are all handled by
Numba itself (``tests/test_jit_cache.py``), but a truncated or overwritten file makes
every later load fail with an unpickling error that names no file (Numba 0.68): the
kernel entry points re-raise it as :class:`DamagedCacheError`, naming the directory.
"""

import functools
import os
import pickle

from numba import config

__all__ = ["DamagedCacheError", "cache_dir", "reports_damaged_cache"]


class DamagedCacheError(RuntimeError):
    """The on-disk cache of the Numba kernels could not be read."""


def cache_dir():
    """The directory that holds the kernels' cache files (delete it to start afresh)."""
    return config.CACHE_DIR or os.path.join(os.path.dirname(os.path.abspath(__file__)), "__pycache__")


def _damaged(exc):
    if isinstance(exc, (pickle.UnpicklingError, EOFError)):
        return True
    # machine code that does not parse (bytes changed inside a data file)
    return isinstance(exc, RuntimeError) and "LLVM" in str(exc) and "pars" in str(exc)


def reports_damaged_cache(entry):
    """Wrap a kernel entry point: a failed load from the cache raises
    :class:`DamagedCacheError` with the directory to delete; anything else passes."""

    @functools.wraps(entry)
    def wrapper(*args, **kwargs):
        try:
            return entry(*args, **kwargs)
        except Exception as exc:
            if not _damaged(exc):
                raise
            raise DamagedCacheError(
                f"fastgd's Numba kernels could not be loaded from their on-disk cache, which is "
                f"damaged ({type(exc).__name__}: {exc}). Delete the directory {cache_dir()} "
                "(Numba compiles the kernels again on the next fit), or use backend='cython'."
            ) from exc

    return wrapper
