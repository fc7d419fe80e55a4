"""Whether this process may run OpenMP parallel regions (shared by both compiled kernel
modules, ``_kernels`` and ``_kernels_avx2``, which use the same OpenMP runtime).

GNU OpenMP hangs in a child process forked after its parent ran a parallel region, so
once a kernel has run one (``used``), a forked child runs its blocks on one thread
(``usable`` False): the same result, without the hang.
"""

import os

used = False
usable = True


def _after_fork_in_child():
    global usable
    if used:
        usable = False


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
