"""Two LLVM intrinsics for the Numba kernels: a data prefetch and an atomic counter.

``prefetch(X, i, j)`` asks the CPU to bring the cache line holding ``X[i, j]`` towards
the core (``llvm.prefetch``: read, keep in all cache levels, data); it computes nothing
and cannot fault. ``next_index(counter)`` returns ``counter[0]`` and adds one to it
atomically, so that threads can hand out blocks of work among themselves.

Both are module-level ``@intrinsic`` functions, so kernels that call them keep
``cache=True``. Under ``NUMBA_DISABLE_JIT=1`` they are plain Python: ``prefetch`` does
nothing and ``next_index`` takes a lock.
"""

import threading

from numba import config, types
from numba.core import cgutils
from numba.extending import intrinsic

if config.DISABLE_JIT:
    _lock = threading.Lock()

    def prefetch(X, i, j):
        """No-op without the JIT."""

    def next_index(counter):
        """``counter[0]``, then add one (under a lock without the JIT)."""
        with _lock:
            value = int(counter[0])
            counter[0] = value + 1
        return value

else:
    from llvmlite import ir

    @intrinsic
    def prefetch(typingctx, X, i, j):
        """Prefetch the cache line holding ``X[i, j]`` (X a 2-D array, i and j integers)."""
        if not (isinstance(X, types.Array) and X.ndim == 2):
            return None
        if not (isinstance(i, types.Integer) and isinstance(j, types.Integer)):
            return None

        def codegen(context, builder, signature, args):
            aryty, ity, jty = signature.args
            ary = context.make_array(aryty)(context, builder, value=args[0])
            inds = [
                context.cast(builder, args[1], ity, types.intp),
                context.cast(builder, args[2], jty, types.intp),
            ]
            ptr = cgutils.get_item_pointer(context, builder, aryty, ary, inds)
            i8p = ir.IntType(8).as_pointer()
            i32 = ir.IntType(32)
            fnty = ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32])
            fn = cgutils.get_or_insert_function(builder.module, fnty, _PREFETCH_NAME)
            builder.call(fn, [builder.bitcast(ptr, i8p), i32(0), i32(3), i32(1)])
            return context.get_dummy_value()

        return types.void(X, i, j), codegen

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

    def _prefetch_name():
        from llvmlite import binding

        # typed pointers before LLVM 15: the intrinsic is named after its i8* argument
        return "llvm.prefetch.p0" if binding.llvm_version_info[0] >= 15 else "llvm.prefetch.p0i8"

    _PREFETCH_NAME = _prefetch_name()
