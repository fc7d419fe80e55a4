"""The Cython backend: kernels compiled from ``_kernels.pxi`` when the package is built.

The source is compiled twice on x86-64 with GCC or Clang (see ``setup.py``): ``_kernels`` for the baseline
instruction set and ``_kernels_avx2`` for CPUs with AVX2 and FMA. This module exports
the second where the CPU has those instructions and it was built, the first otherwise;
``ISA`` says which. Setting the environment variable ``FASTGD_CYTHON_ISA=baseline``
before the import forces the baseline build. Both compute the same iterates (to
rounding: the vector width changes how each dot product is summed).

See ``fastgd/_cython/_kernels.pxi`` for the kernels, ``fastgd._numpy.kernels`` for
the algorithm they implement and ``fastgd._tuning`` for their tuning constants
(``block_bounds`` is ``fastgd._tuning.block_bounds``, the Numba kernels' too).
"""

import importlib
import os

from . import load_extension

_kernels = load_extension("_kernels")


def _select():
    if os.environ.get("FASTGD_CYTHON_ISA", "").lower() != "baseline" and _kernels.cpu_has_avx2_fma():
        try:
            return importlib.import_module("._kernels_avx2", __package__), "avx2"
        except ImportError:  # not built (not x86-64, or MSVC)
            pass
    return _kernels, "baseline"


_module, ISA = _select()
OPENMP = _module.OPENMP
block_bounds = _module.block_bounds
epoch = _module.epoch
gradient = _module.gradient
path_epoch_dense = _module.path_epoch_dense  # (the many-models kernel: see fastgd._cython.path)
path_epoch_csr = _module.path_epoch_csr

__all__ = ["ISA", "OPENMP", "block_bounds", "epoch", "gradient", "path_epoch_csr", "path_epoch_dense"]
