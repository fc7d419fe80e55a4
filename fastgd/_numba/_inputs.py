"""Read-only views of the arrays a Numba kernel only reads.

Numba types a read-only array apart from a writable one of the same dtype and layout,
so an entry point called with both (a read-only memory map or a frozen ``hp`` vector,
then an ordinary array) would be compiled, and cached, twice: about 5 to 10 s for each
kernel signature on 2 cores. The entry points pass every input they do not write through
:func:`read_only`, so every call shares the one read-only signature. A view costs well
under a microsecond and copies nothing.
"""


import numpy as np


def read_only(*arrays):
    """``arrays`` as read-only views (an array already read-only, or anything that is not
    a NumPy array, is returned as it is: the entry checks that follow reject the latter)."""
    out = []
    for a in arrays:
        if isinstance(a, np.ndarray) and a.flags.writeable:
            a = a.view()
            a.flags.writeable = False
        out.append(a)
    return out
