"""The Cython backend's sparse (CSR) kernels, compiled from ``_sparse.pyx``.

See ``fastgd._numba.sparse`` for the lazy update, ``fastgd._numpy.sparse`` for the
algorithm they implement and ``fastgd._tuning`` for their tuning constants.
"""

try:
    from ._sparse import epoch, uses_lazy_update
except ImportError as exc:  # the package was used from a source tree without building
    raise ImportError(
        "the compiled extension fastgd._cython._sparse is missing; build it by "
        "installing fastgd from its source tree with `pip install -e .` (or `pip install .`), "
        "which needs a C compiler such as gcc"
    ) from exc

__all__ = ["epoch", "uses_lazy_update"]
