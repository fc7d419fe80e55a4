"""Three LLVM intrinsics for the Numba kernels: a data prefetch, an atomic counter and a
subtraction kept out of reassociation.

``prefetch(X, i, j)`` asks the CPU to bring the cache line holding ``X[i, j]`` towards
the core (``llvm.prefetch``: read, keep in all cache levels, data); it computes nothing
and cannot fault (``prefetch1(x, i)``: the same for ``x[i]`` of a 1-D array).
``next_index(counter)`` returns ``counter[0]`` and adds one to it
atomically, so that threads can hand out blocks of work among themselves.
``sub_in_order(a, b)`` is ``a - b`` (two floats of one type) as an ``fsub`` carrying the
``contract`` flag only: Numba's fastmath pass adds its flags (``reassoc`` among them)
to float instructions that have none, so this one keeps its place. The range reduction
of the vectorised ``exp`` (``fastgd._vmath``) needs its two subtractions done in their
order; reassociated, the error grew to 200 ulp at ``|x|`` near 700.

Both are module-level ``@intrinsic`` functions, so kernels that call them keep
``cache=True``. Under ``NUMBA_DISABLE_JIT=1`` they are plain Python: ``prefetch`` does
nothing, ``next_index`` takes a lock and ``sub_in_order`` subtracts.
"""

import threading

from numba import config, types
from numba.core import cgutils
from numba.extending import intrinsic

if config.DISABLE_JIT:
    _lock = threading.Lock()

    def prefetch(X, i, j):
        """No-op without the JIT."""

    def prefetch1(x, i):
        """No-op without the JIT."""

    def next_index(counter):
        """``counter[0]``, then add one (under a lock without the JIT)."""
        with _lock:
            value = int(counter[0])
            counter[0] = value + 1
        return value

    def sub_in_order(a, b):
        """``a - b``."""
        return a - b

else:
    from llvmlite import ir

    def _prefetch_codegen(context, builder, signature, args):
        aryty = signature.args[0]
        ary = context.make_array(aryty)(context, builder, value=args[0])
        inds = [context.cast(builder, v, t, types.intp) for v, t in zip(args[1:], signature.args[1:])]
        ptr = cgutils.get_item_pointer(context, builder, aryty, ary, inds)
        i8p = ir.IntType(8).as_pointer()
        i32 = ir.IntType(32)
        fnty = ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32])
        fn = cgutils.get_or_insert_function(builder.module, fnty, _PREFETCH_NAME)
        builder.call(fn, [builder.bitcast(ptr, i8p), i32(0), i32(3), i32(1)])
        return context.get_dummy_value()

    @intrinsic
    def prefetch(typingctx, X, i, j):
        """Prefetch the cache line holding ``X[i, j]`` (X a 2-D array, i and j integers)."""
        if isinstance(X, types.Array) and X.ndim == 2 and isinstance(i, types.Integer) and isinstance(j, types.Integer):
            return types.void(X, i, j), _prefetch_codegen
        return None

    @intrinsic
    def prefetch1(typingctx, x, i):
        """Prefetch the cache line holding ``x[i]`` (x a 1-D array, i an integer)."""
        if isinstance(x, types.Array) and x.ndim == 1 and isinstance(i, types.Integer):
            return types.void(x, i), _prefetch_codegen
        return None

    @intrinsic
    def next_index(typingctx, counter):
        """Atomically return ``counter[0]`` and add one to it (counter: int64 array)."""
        if not (isinstance(counter, types.Array) and counter.dtype == types.int64):
            return None

        def codegen(context, builder, signature, args):
            aryty = signature.args[0]
            ary = context.make_array(aryty)(context, builder, value=args[0])
            ptr = cgutils.get_item_pointer(context, builder, aryty, ary, [context.get_constant(types.intp, 0)])
            return builder.atomic_rmw("add", ptr, ir.Constant(ir.IntType(64), 1), "seq_cst")

        return types.int64(counter), codegen

    @intrinsic
    def sub_in_order(typingctx, a, b):
        """``a - b`` for two floats of one type, never reassociated (flag: contract)."""
        if not (isinstance(a, types.Float) and a == b):
            return None

        def codegen(context, builder, signature, args):
            return builder.fsub(args[0], args[1], flags=("contract",))

        return a(a, b), codegen

    def _prefetch_name():
        from llvmlite import binding

        # typed pointers before LLVM 15: the intrinsic is named after its i8* argument
        return "llvm.prefetch.p0" if binding.llvm_version_info[0] >= 15 else "llvm.prefetch.p0i8"

    _PREFETCH_NAME = _prefetch_name()
