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
"""

import os
import platform
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
        built = []
        for ext in self.extensions:
            if ext.name.endswith("_avx2"):
                if ctype == "msvc" or not _x86_64():
                    continue  # the baseline build is used
                ext.extra_compile_args = optimise + AVX2 + compile_args
            else:
                ext.extra_compile_args = optimise + compile_args
            ext.extra_link_args = link_args
            built.append(ext)
        self.extensions = built
        super().build_extensions()


extensions = [
    Extension("fastgd._cython._kernels", ["fastgd/_cython/_kernels.pyx"], depends=["fastgd/_cython/_kernels.pxi", "fastgd/_cython/_scalars.pxi"]),
    Extension(
        "fastgd._cython._kernels_avx2",
        ["fastgd/_cython/_kernels_avx2.pyx"],
        depends=["fastgd/_cython/_kernels.pxi", "fastgd/_cython/_scalars.pxi"],
    ),
    Extension(
        "fastgd._cython._sparse",
        ["fastgd/_cython/_sparse.pyx"],
        depends=["fastgd/_cython/_scalars.pxi"],
    ),
]

setup(
    ext_modules=cythonize(extensions, compiler_directives={"language_level": 3}),
    cmdclass={"build_ext": BuildExt},
)
