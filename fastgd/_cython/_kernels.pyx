# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
# cython: initializedcheck=False, nonecheck=False, infer_types=False
# The kernels, compiled for the baseline instruction set: see _kernels.pxi.
include "_kernels.pxi"
