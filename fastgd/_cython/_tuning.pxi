# Included by the dense kernels (_kernels.pxi) and the sparse ones (_sparse.pyx): the
# tuning constants of fastgd/_tuning.py (defined and explained there) that the loops
# need as C constants. (The others are read from fastgd._tuning: see each module.)
#
# setup.py writes them from fastgd/_tuning.py into the header fastgd_tuning.h when it
# builds the extensions (its C_TUNING), so the loops see literals. Each was a literal
# before it moved to fastgd._tuning; read from a variable at run time, LO_BITS (the
# shift and mask of the lazy update's table lookup) made the sparse mini-batch epoch
# about 3% slower (200000 x 2^18 CSR, 50 non-zeros a row, batch 32: 207 ms against
# 201 ms, min of 10 epochs). A module built with other values than fastgd._tuning's
# refuses to import (rebuild it).

cdef extern from "fastgd_tuning.h":
    enum:
        DENSE_PREFETCH_AHEAD "FASTGD_DENSE_PREFETCH_AHEAD"
        FOUR_ROWS_MAX_BYTES "FASTGD_FOUR_ROWS_MAX_BYTES"
        LOSS_BLOCK_ROWS "FASTGD_LOSS_BLOCK_ROWS"
        PATH_WINDOW_ROWS "FASTGD_PATH_WINDOW_ROWS"
        CACHE_LINE_BYTES "FASTGD_CACHE_LINE_BYTES"
        LO_BITS "FASTGD_LO_BITS"

# the values this module was compiled with
BUILT_TUNING = {"DENSE_PREFETCH_AHEAD": DENSE_PREFETCH_AHEAD, "FOUR_ROWS_MAX_BYTES": FOUR_ROWS_MAX_BYTES,
                "LOSS_BLOCK_ROWS": LOSS_BLOCK_ROWS, "PATH_WINDOW_ROWS": PATH_WINDOW_ROWS,
                "CACHE_LINE_BYTES": CACHE_LINE_BYTES, "LO_BITS": LO_BITS}
_stale = sorted(name for name, value in BUILT_TUNING.items() if getattr(_tuning, name) != value)
if _stale:
    raise ImportError(
        f"{__name__} was built with other values of {', '.join(_stale)} than fastgd._tuning has; "
        "rebuild it (pip install -e . or python setup.py build_ext --inplace)"
    )
