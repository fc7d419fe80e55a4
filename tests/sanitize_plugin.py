"""Pytest plugin for ``.ci/sanitize`` only (``-p tests.sanitize_plugin``): counts the
calls into the compiled (Cython) kernels during the run, so that a sanitizer run that
passes is known to have exercised them.

At session start every compiled entry point is replaced by a counting wrapper: the
backend modules' ``fastgd._cython.kernels.epoch``/``.gradient`` and
``fastgd._cython.sparse.epoch``, the extension modules' own ``epoch``/``gradient``
(``fastgd._cython._kernels``, ``_kernels_avx2``, ``_sparse``), which some tests call
directly, and the many-models kernels ``path_epoch_dense``/``path_epoch_csr`` wherever
they are bound (the extension modules, ``fastgd._cython.kernels``, ``fastgd._cython.path``). A wrapper passes its arguments through unchanged and lets every exception
through; it counts the call before making it (a call the kernel refuses still ran its
checks in compiled code). Each original is wrapped once, so a call through
``fastgd._cython.kernels.epoch``, which is one of the extension modules' ``epoch``, is
counted once. The totals are printed at the end of the session and, when the
environment variable ``FASTGD_SANITIZE_COUNTS`` names a file, written there as
``dense_epoch gradient sparse_epoch path_epoch`` for the script to check.

When ``FASTGD_SANITIZE_ROOT`` is set, the session also refuses to start unless
``fastgd`` and its extension modules are imported from under that directory (the
sanitized copy, not the editable install of the repository).
"""

import functools
import importlib
import os
import threading

_COUNTS = {"dense epoch": 0, "gradient": 0, "sparse epoch": 0, "path epoch": 0}
_LOCK = threading.Lock()
_WRAPPED = {}  # id(original) -> wrapper
_SEEN = []  # (module name, file) of the modules wrapped

# (module, attribute, counter)
_ENTRY_POINTS = (
    ("fastgd._cython._kernels", "epoch", "dense epoch"),
    ("fastgd._cython._kernels", "gradient", "gradient"),
    ("fastgd._cython._kernels_avx2", "epoch", "dense epoch"),
    ("fastgd._cython._kernels_avx2", "gradient", "gradient"),
    ("fastgd._cython._sparse", "epoch", "sparse epoch"),
    ("fastgd._cython.kernels", "epoch", "dense epoch"),
    ("fastgd._cython.kernels", "gradient", "gradient"),
    ("fastgd._cython.sparse", "epoch", "sparse epoch"),
    # the many-models kernels (dense and CSR rows), where they are bound
    *((module, entry, "path epoch")
      for module in ("fastgd._cython._kernels", "fastgd._cython._kernels_avx2", "fastgd._cython.kernels",
                     "fastgd._cython.path")
      for entry in ("path_epoch_dense", "path_epoch_csr")),
)


def _counting(original, key):
    if id(original) in _WRAPPED:
        return _WRAPPED[id(original)]

    @functools.wraps(original)
    def wrapper(*args, **kwargs):
        with _LOCK:
            _COUNTS[key] += 1
        return original(*args, **kwargs)

    wrapper._sanitize_original = original
    _WRAPPED[id(original)] = wrapper
    return wrapper


def _check_root(name, path):
    root = os.environ.get("FASTGD_SANITIZE_ROOT")
    if root and not os.path.realpath(path).startswith(os.path.realpath(root) + os.sep):
        raise RuntimeError(f"sanitizer run: {name} was imported from {path}, not from the sanitized copy {root}")


def install():
    import fastgd

    _check_root("fastgd", fastgd.__file__)
    for module_name, attr, key in _ENTRY_POINTS:
        try:
            module = importlib.import_module(module_name)
        except ImportError:  # _kernels_avx2 is not built off x86-64
            continue
        _check_root(module_name, module.__file__)
        if (module_name, module.__file__) not in _SEEN:
            _SEEN.append((module_name, module.__file__))
        current = getattr(module, attr)
        if getattr(current, "_sanitize_original", None) is None:
            setattr(module, attr, _counting(current, key))


def total():
    return sum(_COUNTS.values())


def pytest_sessionstart(session):
    install()


def pytest_report_header(config):
    import fastgd

    lines = [f"sanitizer: fastgd from {fastgd.__file__}"]
    lines += [f"sanitizer: {name} from {path}" for name, path in _SEEN if path.endswith((".so", ".pyd"))]
    return lines


def pytest_terminal_summary(terminalreporter):
    details = ", ".join(f"{key} {n}" for key, n in _COUNTS.items())
    for line in pytest_report_header(None):
        terminalreporter.write_line(line)
    terminalreporter.write_line(f"sanitizer: {total()} compiled-kernel calls ({details})")
    path = os.environ.get("FASTGD_SANITIZE_COUNTS")
    if path:
        with open(path, "w") as f:
            f.write(" ".join(str(n) for n in _COUNTS.values()) + "\n")
