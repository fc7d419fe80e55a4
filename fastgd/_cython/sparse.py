"""The Cython backend's sparse (CSR) kernels, compiled from ``_sparse.pyx``.

See ``fastgd._numba.sparse`` for the lazy update, ``fastgd._numpy.sparse`` for the
algorithm they implement and ``fastgd._tuning`` for their tuning constants.
"""

from . import load_extension

_sparse = load_extension("_sparse")
epoch = _sparse.epoch
uses_lazy_update = _sparse.uses_lazy_update

__all__ = ["epoch", "uses_lazy_update"]
