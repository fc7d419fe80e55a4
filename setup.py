"""Build script. The package metadata lives in pyproject.toml; this file declares the
compiled extensions of the Cython backend (dense kernels ``_kernels``/``_kernels_avx2``
and sparse kernels ``_sparse``) and builds them with OpenMP where the compiler supports
it (one thread otherwise).

The dense kernels (``fastgd/_cython/_kernels.pxi``) are compiled twice on x86-64 with
GCC or Clang: ``_kernels`` for the baseline instruction set, which runs on every CPU, and
``_kernels_avx2`` with AVX2 and FMA, which the backend picks at import time when the CPU
has them. All extensions allow reassociation (``-fassociative-math``, the flags it
needs, and no ``-ffinite-math-only``, so NaN and infinity still propagate), which lets
the compiler sum dot products in vector lanes.

With the environment variable ``FASTGD_SANITIZE=1`` at build time (GCC or Clang), every
extension is compiled and linked with AddressSanitizer and UndefinedBehaviorSanitizer
(``-fsanitize=address,undefined -fno-sanitize-recover=undefined
-fno-omit-frame-pointer -g``) and at ``-O1`` instead of ``-O3`` (the level the sanitizers
recommend: reports name the right lines and frames, which inlining at -O3 merges, and
the build is quicker); the other flags, OpenMP and the AVX2 build are unchanged. Python
itself is not instrumented, so the runtimes must be preloaded (``LD_PRELOAD``);
``.ci/sanitize`` builds such a copy of the tree and runs the kernel tests on it (build in
a copy: the switch is not part of setuptools' up-to-date check, so going back to a normal
build in the same tree needs ``build_ext --force``). Unset (or any other value), nothing
changes.

The C helpers of the kernels (prefetching, the dot products, the vectorised ``exp``/``log1p``
and the log loss) are headers next to the Cython sources, ``fastgd/_cython/*.h``: the
extensions find them through ``include_dirs``, list them among their ``depends`` (a
change rebuilds them), and MANIFEST.in ships them in the sdist.

The kernels' tuning constants are defined in ``fastgd/_tuning.py`` and the constants of
their vectorised ``exp``/``log1p`` in ``fastgd/_vmath.py``; the build writes the ones the
C loops need (``C_TUNING``, ``fastgd._vmath.C_CONSTANTS``) into a header,
``fastgd_tuning.h`` (:func:`write_tuning_header`), so that they are compiled in. A
change there rebuilds the extensions (both files are among their ``depends``), and an
extension built with other values refuses to import.
"""

import ast
import operator
import os
import platform
import runpy
import sysconfig
import tempfile

from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

OPENMP_FLAGS = {"msvc": (["/openmp"], [])}
DEFAULT_OPENMP = (["-fopenmp"], ["-fopenmp"])


# reassociation without giving up NaN/infinity semantics (GCC and Clang)
REASSOCIATE = ["-fno-math-errno", "-fno-trapping-math", "-fno-signed-zeros", "-fassociative-math"]
AVX2 = ["-mavx2", "-mfma"]

TUNING = os.path.join("fastgd", "_tuning.py")
VMATH = os.path.join("fastgd", "_vmath.py")
TUNING_HEADER = "fastgd_tuning.h"
# the constants of fastgd/_tuning.py the Cython kernels compile in (fastgd/_cython/_tuning.pxi)
C_TUNING = ("DENSE_PREFETCH_AHEAD", "FOUR_ROWS_MAX_BYTES", "LOSS_BLOCK_ROWS", "PATH_WINDOW_ROWS", "CACHE_LINE_BYTES",
            "LO_BITS")
_INT_OPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
            ast.FloorDiv: operator.floordiv, ast.LShift: operator.lshift}


def _int_value(node):
    """The value of an integer expression of literals and + - * // << (nothing else)."""
    if isinstance(node, ast.Constant) and type(node.value) is int:
        return node.value
    if isinstance(node, ast.BinOp) and type(node.op) in _INT_OPS:
        return _INT_OPS[type(node.op)](_int_value(node.left), _int_value(node.right))
    raise ValueError(f"{TUNING}: not an integer constant expression: {ast.unparse(node)}")


def tuning_constants(names=C_TUNING):
    """``{name: value}`` of ``names``, read from the source of fastgd/_tuning.py (the
    build environment need not have NumPy, which that module imports)."""
    with open(TUNING) as f:
        tree = ast.parse(f.read(), TUNING)
    found = {node.targets[0].id: node.value for node in tree.body
             if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)}
    return {name: _int_value(found[name]) for name in names}


def vmath_constants():
    """``{name: value}`` of ``C_CONSTANTS`` in fastgd/_vmath.py (run on its own: it needs
    only the standard library)."""
    module = runpy.run_path(VMATH)
    return {name: module[name] for name in module["C_CONSTANTS"]}


def _c_literal(value):
    """An int, a float (as an exact hexadecimal literal) or a tuple of floats (a brace
    initialiser) in C."""
    if isinstance(value, tuple):
        return "{" + ", ".join(_c_literal(v) for v in value) + "}"
    if isinstance(value, float):
        return f"({value.hex()})"
    return str(int(value))


def write_tuning_header(directory):
    """Write ``fastgd_tuning.h`` (``#define FASTGD_<NAME> <value>`` for each of C_TUNING
    and of fastgd._vmath's C_CONSTANTS) into ``directory``."""
    os.makedirs(directory, exist_ok=True)
    lines = [f"/* written by setup.py from {TUNING} and {VMATH}: the kernels' constants */",
             "#ifndef FASTGD_TUNING_H", "#define FASTGD_TUNING_H"]
    lines += [f"#define FASTGD_{name} {value}" for name, value in tuning_constants().items()]
    lines += [f"#define FASTGD_{name} {_c_literal(value)}" for name, value in vmath_constants().items()]
    lines += ["#endif", ""]
    with open(os.path.join(directory, TUNING_HEADER), "w") as f:
        f.write("\n".join(lines))


def _x86_64():
    machine = (sysconfig.get_platform().split("-")[-1] or platform.machine()).lower()
    return machine in ("x86_64", "amd64")


def _compiles_with(compiler, compile_args, link_args):
    """Whether a tiny OpenMP program compiles and links with these flags."""
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "omp_check.c")
        with open(src, "w") as f:
            f.write("#include <omp.h>\nint main(void) { return omp_get_max_threads() > 0 ? 0 : 1; }\n")
        try:
            objects = compiler.compile([src], output_dir=tmp, extra_postargs=compile_args)
            compiler.link_executable(objects, "omp_check", output_dir=tmp, extra_postargs=link_args)
        except Exception:  # noqa: BLE001 - any compiler or linker failure means: no OpenMP
            return False
    return True


class BuildExt(build_ext):
    def build_extensions(self):
        ctype = self.compiler.compiler_type
        compile_args, link_args = OPENMP_FLAGS.get(ctype, DEFAULT_OPENMP)
        if os.environ.get("FASTGD_NO_OPENMP") or not _compiles_with(self.compiler, compile_args, link_args):
            print("fastgd: building the cython backend without OpenMP (one thread)")
            compile_args, link_args = [], []
        optimise = ["/O2"] if ctype == "msvc" else ["-O3"] + REASSOCIATE
        header_dir = os.path.join(self.build_temp, "fastgd_include")
        write_tuning_header(header_dir)
        built = []
        for ext in self.extensions:
            ext.include_dirs = [*ext.include_dirs, header_dir]
            if ext.name.endswith("_avx2"):
                if ctype == "msvc" or not _x86_64():
                    continue  # the baseline build is used
                ext.extra_compile_args = optimise + AVX2 + compile_args
            else:
                ext.extra_compile_args = optimise + compile_args
            ext.extra_link_args = link_args
            built.append(ext)
        self.extensions = built
        if os.environ.get("FASTGD_SANITIZE") == "1" and ctype != "msvc":  # see the docstring
            print("fastgd: building the cython backend with AddressSanitizer and UBSan (-O1)")
            sanitize = ["-fsanitize=address,undefined", "-fno-sanitize-recover=undefined", "-fno-omit-frame-pointer", "-g"]
            for ext in built:
                ext.extra_compile_args = ext.extra_compile_args + sanitize + ["-O1"]  # -O1 after -O3 wins
                ext.extra_link_args = ext.extra_link_args + sanitize
        super().build_extensions()


# the C helpers' headers (fastgd/_cython/*.h, used through `cdef extern from "name.h"`)
# are found through include_dirs; with the .pxi files they are among the depends, so a
# change to any of them rebuilds the extensions that use it
CYTHON_DIR = os.path.join("fastgd", "_cython")
HELPERS = os.path.join(CYTHON_DIR, "fastgd_helpers.h")
SHARED_DEPENDS = [os.path.join(CYTHON_DIR, "_scalars.pxi"), os.path.join(CYTHON_DIR, "_tuning.pxi"), HELPERS,
                  TUNING, VMATH]
DENSE_DEPENDS = [os.path.join(CYTHON_DIR, "_kernels.pxi"), os.path.join(CYTHON_DIR, "fastgd_vmath.h"),
                 *SHARED_DEPENDS]
extensions = [
    Extension("fastgd._cython._kernels", ["fastgd/_cython/_kernels.pyx"], include_dirs=[CYTHON_DIR],
              depends=DENSE_DEPENDS),
    Extension("fastgd._cython._kernels_avx2", ["fastgd/_cython/_kernels_avx2.pyx"], include_dirs=[CYTHON_DIR],
              depends=DENSE_DEPENDS),
    Extension("fastgd._cython._sparse", ["fastgd/_cython/_sparse.pyx"], include_dirs=[CYTHON_DIR],
              depends=SHARED_DEPENDS),
]

setup(
    ext_modules=cythonize(extensions, compiler_directives={"language_level": 3}),
    cmdclass={"build_ext": BuildExt},
)
