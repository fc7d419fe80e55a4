"""Backend lookup: ``get_backend(name)`` returns the module holding that backend's kernels.

Every backend module provides ``epoch(X, Y, sw, order, state, hp, codes)`` (one epoch,
in place) and ``gradient(X, Y, sw, W, codes, G)`` (one block's summed gradient, no step;
the Dask driver's full batch), with the contracts documented in ``fastgd._numpy.kernels``. Backends are imported on first use, so
``import fastgd`` loads neither Numba nor a compiled extension.

Sparse (CSR) input has its own kernel modules, ``get_backend(name, sparse=True)``: each
provides ``epoch(data, indices, indptr, Y, sw, order, state, hp, codes)`` with the
contract of the dense ``epoch`` (see ``fastgd._numpy.sparse``). The many-models
kernels, ``path_epoch`` (see ``fastgd._numpy.path``), are ``path_backend(name)``. The
three tables (:data:`BACKENDS`, :data:`SPARSE_BACKENDS`, :data:`PATH_BACKENDS`) are
the one list of kernel modules.

``"auto"`` (the estimators' default) is not a backend of its own: :func:`resolve` turns
it into the first of :data:`AUTO_ORDER` whose dense and sparse kernels import. That is
the Cython extension whenever fastgd was installed with ``pip`` (it is compiled then, so
the first fit starts at once), else Numba, else the NumPy reference.
"""

import importlib
import threading

BACKENDS = {
    "cython": "fastgd._cython.kernels",
    "numba": "fastgd._numba.kernels",
    "numpy": "fastgd._numpy.kernels",
}

SPARSE_BACKENDS = {
    "cython": "fastgd._cython.sparse",
    "numba": "fastgd._numba.sparse",
    "numpy": "fastgd._numpy.sparse",
}

# the many-models kernels, ``path_epoch`` (dense and CSR input; see fastgd._numpy.path)
PATH_BACKENDS = {
    "cython": "fastgd._cython.path",
    "numba": "fastgd._numba.path",
    "numpy": "fastgd._numpy.path",
}

# "auto" takes the first of these that imports (dense and sparse kernels both)
AUTO = "auto"
AUTO_ORDER = ("cython", "numba", "numpy")

_INSTALL_HINT = {
    "numba": "The numba backend needs the 'numba' package: pip install numba.",
    "cython": "The cython backend is compiled when fastgd is installed; use backend='numba' "
    "meanwhile.",
}


_resolved = None
_resolve_lock = threading.Lock()


def resolve(name):
    """The backend that ``name`` runs: ``name`` itself, or for ``"auto"`` the first of
    :data:`AUTO_ORDER` whose kernels import (decided once per process)."""
    global _resolved
    if name != AUTO:
        return name
    with _resolve_lock:
        if _resolved is None:
            for candidate in AUTO_ORDER:
                try:
                    get_backend(candidate)
                    get_backend(candidate, sparse=True)
                except ImportError:
                    continue
                _resolved = candidate
                break
        return _resolved


def path_backend(name):
    """The module holding backend ``name``'s ``path_epoch`` (dense and CSR input)."""
    return importlib.import_module(PATH_BACKENDS[resolve(name)])


def get_backend(name, sparse=False):
    """Return the kernel module of backend ``name`` (``"auto"``: see :func:`resolve`;
    ValueError if unknown, ImportError with an install hint if its dependencies are
    missing); its sparse (CSR) kernels when ``sparse``."""
    name = resolve(name)
    try:
        module = (SPARSE_BACKENDS if sparse else BACKENDS)[name]
    except KeyError:
        raise ValueError(
            f"Unknown backend {name!r}; choose one of {sorted(BACKENDS)}."
        ) from None
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        hint = _INSTALL_HINT.get(name, "")
        raise ImportError(f"fastgd backend {name!r} is not available: {exc}. {hint}") from exc
