"""The row orders an epoch visits, drawn in Python from the fit's random stream (so
every backend visits the same rows in the same order).

``shuffle=True`` draws a uniform permutation of the rows. Shuffled SGD then fetches each
row from a random place in memory: at 200,000 x 100 float64 an epoch took 1.5-1.7 times
as long as in storage order on this project's 2-core test machine, the difference
being memory latency, which prefetching hides only in part.

``shuffle="blocks"`` (:func:`block_shuffle`) visits contiguous blocks of about
``BLOCK_BYTES`` of X in a random order and shuffles the rows within each buffer of
``BUFFER_BLOCKS`` consecutive blocks of that order: the rows a step reads lie in a few
pages already being streamed in, and a buffer fits in the cache. This is the scheme of
CorgiPile (Xu et al., SIGMOD 2022), an in-memory form of its block-wise shuffle with a
buffer-level tuple shuffle. Each epoch draws new blocks' order and new within-buffer
orders; the rows of a batch come from up to ``BUFFER_BLOCKS`` places spread over the
data. Rows of ``BLOCK_BYTES`` or more are blocks of one row, and the order is then a
uniform permutation again.
"""

import itertools

import numpy as np

# bytes of X per block of contiguous rows (at least one row), and blocks per buffer
# whose rows are shuffled among themselves: 16 x 16 KB = 256 KB, within a core's L2.
# Measured at 200,000 x 100 float64 (Cython, batch 1, 2-core machine): epochs within
# 5 % of storage order for blocks of 4-16 KB and buffers of 4-16 blocks, against 1.55x
# for the uniform permutation; at 1,000,000 x 20, within 10 % (1.7x uniform).
BLOCK_BYTES = 16 * 1024
BUFFER_BLOCKS = 16

SHUFFLES = (False, True, "blocks")


def block_rows(X, indices_itemsize=8):
    """Rows per block for ``X`` (dense, or CSR by its mean stored bytes per row with
    indices of ``indices_itemsize`` bytes): at least 1."""
    n = X.shape[0]
    if n == 0:
        return 1
    if hasattr(X, "indptr"):  # CSR
        row_bytes = X.nnz / n * (X.data.itemsize + indices_itemsize)
    else:
        row_bytes = X.shape[1] * np.dtype(X.dtype).itemsize
    return max(1, int(BLOCK_BYTES // max(row_bytes, 1.0)))


def block_shuffle(rng, n, rows, buffer_blocks=BUFFER_BLOCKS):
    """A permutation of ``range(n)`` (int64) that visits blocks of ``rows`` contiguous
    rows in the random order ``rng.permutation(n_blocks)`` and shuffles the rows within
    each run of ``buffer_blocks`` consecutive blocks of that order (``rng.shuffle``,
    one run after another). ``rng`` is a ``numpy.random.RandomState``."""
    rows = max(1, int(rows))
    n_blocks = -(-n // rows)
    starts = rng.permutation(n_blocks).astype(np.int64) * rows
    lengths = np.minimum(rows, n - starts)
    ends = np.cumsum(lengths)
    # row at position p of block b (placed at ends[b] - lengths[b]): starts[b] + offset
    order = np.repeat(starts - (ends - lengths), lengths) + np.arange(n, dtype=np.int64)
    cuts = np.concatenate([[0], ends[buffer_blocks - 1::buffer_blocks]])
    if cuts[-1] != n:
        cuts = np.append(cuts, n)
    for lo, hi in itertools.pairwise(cuts):
        rng.shuffle(order[lo:hi])
    return order


def draw_order(rng, n, shuffle, rows):
    """The order of an epoch of ``n`` rows for the ``shuffle`` parameter (True: a
    uniform permutation; "blocks": :func:`block_shuffle` with blocks of ``rows``)."""
    if isinstance(shuffle, str) and shuffle == "blocks":
        return block_shuffle(rng, n, rows)
    return rng.permutation(n)
