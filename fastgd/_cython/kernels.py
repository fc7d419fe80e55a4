"""The Cython backend: kernels compiled from ``_kernels.pyx`` when the package is built.

See ``fastgd/_cython/_kernels.pyx`` for the kernels and ``fastgd._numpy.kernels`` for
the algorithm they implement.
"""

try:
    from ._kernels import OPENMP, block_bounds, epoch, gradient
except ImportError as exc:  # the package was used from a source tree without building
    raise ImportError(
        "the compiled extension fastgd._cython._kernels is missing; build it by "
        "installing fastgd from its source tree with `pip install -e .` (or `pip install .`), "
        "which needs a C compiler such as gcc"
    ) from exc

__all__ = ["OPENMP", "block_bounds", "epoch", "gradient"]
