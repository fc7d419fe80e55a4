# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
# cython: initializedcheck=False, nonecheck=False, infer_types=False
# The kernels, compiled with AVX2 and FMA (x86-64 only; see setup.py): see _kernels.pxi.
include "_kernels.pxi"
