"""Build script. The package metadata lives in pyproject.toml; this file declares the
compiled extensions of the Cython backend (dense and sparse kernels) and builds it with OpenMP where the compiler
supports it (one thread otherwise)."""

import os
import tempfile

from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

OPENMP_FLAGS = {"msvc": (["/openmp"], [])}
DEFAULT_OPENMP = (["-fopenmp"], ["-fopenmp"])


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
        optimise = ["/O2"] if ctype == "msvc" else ["-O3"]
        for ext in self.extensions:
            ext.extra_compile_args = optimise + compile_args
            ext.extra_link_args = link_args
        super().build_extensions()


extensions = [
    Extension(
        "fastgd._cython._kernels",
        ["fastgd/_cython/_kernels.pyx"],
    ),
    Extension(
        "fastgd._cython._sparse",
        ["fastgd/_cython/_sparse.pyx"],
    ),
]

setup(
    ext_modules=cythonize(extensions, compiler_directives={"language_level": 3}),
    cmdclass={"build_ext": BuildExt},
)
