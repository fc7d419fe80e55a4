"""The vectorisable ``exp`` and ``log1p`` of the compiled kernels' log loss: the method and
its constants, defined once for both backends.

The single-output row loops compute a block of outputs ``z`` first, then the log loss and
its derivative over the whole block in one loop (``fastgd/_numba/losses.py``
``single_losses``, ``fastgd/_cython/_kernels.pxi`` ``fastgd_log_losses``). A call to the C
library's ``exp``/``log1p`` per row, and the branch on the sign of ``z``, kept that loop
scalar; these two functions are straight-line code (selects, no branches), so the
compilers run the loop in vector lanes. Both work in float64 whatever the data's dtype,
like the loss itself.

``exp(x)``, any float64 ``x``, within 1 ulp of NumPy's as measured over a grid from
-750 to 712 with the kernels' compiler flags (``tests/test_vmath.py`` allows 2):

1. clamp ``x`` to ``[EXP_LO, EXP_HI]`` (a NaN stays NaN); below, the result rounds to
   0, above it is infinite anyway;
2. ``k = round(x / ln 2)``, through a float-to-int32 conversion of
   ``x log2(e) + ROUND_BIAS + 0.5`` (a NaN is replaced by 0 first: the conversion of a
   NaN is undefined in C);
3. Cody-Waite range reduction: ``r = (x - k LN2_HI) - k LN2_LO``, ``|r| <= ln(2) / 2``
   (plus rounding). The last 20 bits of ``LN2_HI`` are zero, so ``k LN2_HI`` is exact
   for ``|k| < 2^20`` and the first subtraction too; the two subtractions must be done in this order, which
   reassociation (allowed in the kernels) would not keep: the Numba kernels do them
   with ``fastgd._numba._intrinsics.sub_in_order``, the C function that holds them is
   compiled without reassociation;
4. ``exp(r)`` by its Taylor polynomial of degree 13 (:data:`EXP_COEFFS`, the
   coefficients ``1 / j!``; the truncation error is below 4e-18 relative), in Horner
   form;
5. ``2^k exp(r)`` by adding ``k`` to the exponent bits of ``exp(r)`` (an integer view).
   Where the result is subnormal (``k < TINY_K``) the exponent is raised by
   ``TINY_SHIFT`` first and the result multiplied by ``2^-TINY_SHIFT``: one rounding,
   to the subnormal the hardware gives;
6. ``x > EXP_MAX`` (= log of the largest double, infinity included) gives infinity,
   a NaN gives NaN.

``log1p(x)`` for ``0 <= x <= 1`` (the loss asks for ``log1p(exp(-|z|))``) or NaN,
within 3 ulp of NumPy's as compiled with the Numba kernels' reassociation (1 ulp
without, and in the C build):

1. ``1 + x = 2^k (1 + f)`` with ``k = 0, f = x`` when ``x <= SQRT2_M1`` and
   ``k = 1, f = (x - 1) / 2`` above, so that ``-0.29 < f < 0.42`` (``f = x`` needs no
   rounding, which keeps tiny ``x`` exact: ``log1p(x) = x``);
2. ``log(1 + f) = f - f^2 / 2 + s (f^2 / 2 + R)`` with ``s = f / (2 + f)`` and
   ``R = 2 s^2 / 3 + 2 s^4 / 5 + ...`` (the series of ``log((1 + s) / (1 - s))``,
   :data:`LOG1P_COEFFS` = ``2 / (2 j + 1)`` for ``j = 1 .. 9``; ``s^2 < 0.03``, so the
   truncation error is below 3e-17 relative);
3. ``+ k ln 2`` in two parts, ``LN2_HI + LN2_LO``.

No step depends on the order of the additions beyond rounding (the terms are small
next to the result), so reassociation costs at most an ulp here.

Under ``NUMBA_DISABLE_JIT=1`` the Numba functions run as Python on NumPy scalars, with
the same results.
"""

import math

# ---------------------------------------------------------------------------- exp
EXP_MAX = 709.782712893384  # log(DBL_MAX): 0x1.62e42fefa39efp+9; exp of more is inf
EXP_HI = 710.0  # the clamp: exp(710) is inf ...
EXP_LO = -746.0  # ... and exp(-746) < 2^-1075 rounds to 0
LOG2E = 1.4426950408889634  # 1 / ln 2
ROUND_BIAS = 1100  # k + ROUND_BIAS > 0 over the clamped range: truncation rounds down
LN2_HI = 0.6931471803691238  # 0x1.62e42fee00000p-1: ln 2 to 32 bits
LN2_LO = 1.9082149292705877e-10  # 0x1.a39ef35793c76p-33: ln 2 - LN2_HI
TINY_K = -1000  # below: the result is (nearly) subnormal; scale in two steps
TINY_SHIFT = 100
TINY_SCALE = 2.0**-TINY_SHIFT
# 1 / j! for j = 2 .. 13 (Horner from the last; the terms of degree 0 and 1 are 1)
EXP_COEFFS = tuple(1.0 / math.factorial(j) for j in range(2, 14))

# -------------------------------------------------------------------------- log1p
SQRT2_M1 = 0.41421356237309515  # above: 1 + x = 2 (1 + f) with f = (x - 1) / 2
# 2 / (2 j + 1) for j = 1 .. 9 (Horner in s^2 from the last)
LOG1P_COEFFS = tuple(2.0 / (2 * j + 1) for j in range(1, 10))

# the constants setup.py writes into the C header (fastgd_tuning.h) as FASTGD_<NAME>
C_CONSTANTS = ("EXP_MAX", "EXP_HI", "EXP_LO", "LOG2E", "ROUND_BIAS", "LN2_HI", "LN2_LO",
               "TINY_K", "TINY_SHIFT", "TINY_SCALE", "EXP_COEFFS", "SQRT2_M1", "LOG1P_COEFFS")
