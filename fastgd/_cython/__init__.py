"""The Cython backend: the dense kernels (``kernels``), the sparse ones (``sparse``) and
the many-models kernel (``path``), each over a compiled extension of this package."""

import importlib


def load_extension(name):
    """The compiled extension module ``name`` of this package; an ImportError saying how
    to build it when it is missing (the package used from a source tree without
    building)."""
    try:
        return importlib.import_module(f".{name}", __name__)
    except ImportError as exc:
        raise ImportError(
            f"the compiled extension {__name__}.{name} is missing; build it by "
            "installing fastgd from its source tree with `pip install -e .` (or `pip install .`), "
            "which needs a C compiler such as gcc"
        ) from exc
