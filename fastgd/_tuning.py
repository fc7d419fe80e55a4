"""Tuning constants of the compiled kernels (Numba and Cython), each defined once.

Both compiled backends read these values; neither defines its own. Where the dense
and the sparse kernels deliberately differ (how far ahead they prefetch), the two
values are two constants here.

When they are read:

- the Numba kernels read them as compile-time constants (a jitted function freezes the
  module globals it reads). Numba's on-disk cache is keyed on each kernel's own file,
  not on this one: after changing a value here, delete ``fastgd/_numba/__pycache__``;
- the Cython kernels compile some in as C constants (the dense kernels
  DENSE_PREFETCH_AHEAD, FOUR_ROWS_MAX_BYTES, LOSS_BLOCK_ROWS, PATH_WINDOW_ROWS and
  CACHE_LINE_BYTES, the sparse ones LO_BITS: ``fastgd/_cython/_tuning.pxi`` says why): ``setup.py`` reads them from this
  file's source into a header when it builds the extensions. A change here rebuilds
  the extensions (this file is one of their ``depends``), and an extension built with
  other values raises ImportError on import, asking for the rebuild. The others are
  read into C variables when the extension is imported (``fastgd/_cython/_sparse.pyx``
  says why the sparse kernels' cache line and prefetch distances must be variables);
- :data:`PARALLEL_MIN_VALUES` alone is read by both backends at each call, so that
  tests can lower it here (``monkeypatch.setattr(fastgd._tuning, "PARALLEL_MIN_VALUES",
  0)``: the ``threads_always`` fixture) to exercise the threads on small data.

Which change results: the block rule (MIN_BLOCK_ROWS, MAX_BLOCKS, MAX_BUFFER), the
four-row path (FOUR_ROWS_MAX_BYTES), the catch-up interval (SYNC_MIN_STEPS) and the
split of the power tables (LO_BITS) each decide an order of summation or a product, so
changing one changes iterates in the last bits. LOSS_BLOCK_ROWS changes the order in
which a batch's loss is summed (the reported loss, in the last bits), not its gradient.
The prefetch distances, the cache line and PARALLEL_MIN_VALUES change speed only
(the blocks, not the threads, fix the order of a full batch's sum).
"""

import numpy as np

# ----------------------------------------------------------------- dense: row blocks
# A full batch (and, in the Cython kernels, any batch of at least 2 * MIN_BLOCK_ROWS
# rows) sums its gradient over fixed row blocks, each into its own buffer, and adds the
# buffers in block order: blocks of at least MIN_BLOCK_ROWS rows, at most MAX_BLOCKS of
# them, and at most MAX_BUFFER block-buffer elements in all (K x (d + 1) per block).
# The blocks depend only on the shape, so the sum is the same bits for any number of
# threads. Read by the Numba epoch (through ``block_bounds``) and by the Cython epoch's
# C block count ``_n_blocks`` (``fastgd/_cython/_kernels.pxi``), and MAX_BLOCKS also
# caps the Cython epoch's OpenMP threads.
MIN_BLOCK_ROWS = 2048
MAX_BLOCKS = 64
MAX_BUFFER = 1 << 22

# A batch of fewer values than this (rows x (d + 1)) is summed on one thread: waking
# threads costs more than they save (on a busy machine, much more). Read at each call by
# both dense epochs (Numba and Cython), so tests can lower it here.
PARALLEL_MIN_VALUES = 1 << 18

# ----------------------------------------------------------------- dense: rows
# Rows ahead in the visiting order whose cache lines (X's row, Y's row and, unless every
# sample weight is 1, the weight) are prefetched in shuffled batches: random-order SGD
# is bound by the latency of fetching each row from memory. Dense Numba and Cython
# kernels.
DENSE_PREFETCH_AHEAD = 6

# One-output rows of at most this many bytes are taken four at a time (four dot
# products in one pass over W, then one pass over G adding the four rows' gradients).
# Measured, full batch: four at a time is faster for 160-byte rows (1e6 x 20 float64);
# for 400-byte rows (400000 x 50 float64, 200000 x 100 float32) one at a time takes
# 0.85x the time, and for 800-byte rows (200000 x 100 float64) four at a time takes
# 2.8x the time (reading four rows at once from memory). Dense Numba and Cython kernels.
FOUR_ROWS_MAX_BYTES = 256

# The many-models kernels (path_epoch) read the row order in windows of this many rows:
# a window's rows are dealt to the folds they train and handed, from cache, to each of
# a fold's models (128 rows of 100 float64 values: 102 kB, within a core's L2 cache).
# Dense Numba and Cython kernels; changing it changes iterates in the last bits only.
PATH_WINDOW_ROWS = 128

# Single-output rows (squared error with one target, log loss) go in blocks of this
# many: the block's outputs first, then its losses in one loop that runs in vector lanes
# (the log loss's exp and log1p are fastgd._vmath's), then its gradients, the rows read
# again from cache (32 rows of 100 float64 values: 25.6 kB, within a 32 kB L1 cache).
# Dense Numba and Cython kernels; a multiple of 4 (the four-row path).
LOSS_BLOCK_ROWS = 32

# The size of a cache line: the stride of the prefetches over a row (dense and sparse,
# both backends; the sparse kernels step through the int64 column indices,
# CACHE_LINE_BYTES // 8 entries a line) and the padding of the Cython epoch's block
# buffers (whole lines plus one, so threads summing neighbouring blocks never write to
# the same line).
CACHE_LINE_BYTES = 64

# ----------------------------------------------------------------- sparse (CSR)
# Every coordinate is brought up to date (a full catch-up, O(K d)) at least every
# max(SYNC_MIN_STEPS, d) steps and at the end of each epoch, so the table of powers of
# the gradient-free step stays O(max(SYNC_MIN_STEPS, d)). Sparse Numba and Cython
# kernels.
SYNC_MIN_STEPS = 4096

# Rows ahead in the visiting order whose values and column indices (and target and
# weight) are prefetched, and rows ahead whose coordinates' records (weights,
# velocities, step) are: shuffled SGD otherwise waits on memory for each row. Closer
# than the dense kernels' DENSE_PREFETCH_AHEAD: a sparse row asks for one record per
# non-zero, and a burst of them fills the miss buffers. Sparse Numba and Cython kernels.
SPARSE_PREFETCH_AHEAD = 4
SPARSE_PREFETCH_NEAR = 2

# The powers of the gradient-free step come from two small tables,
# A^k = A^(k_hi 2^LO_BITS) A^(k_lo) with k_lo < 2^LO_BITS: a lookup in one table of T
# entries (8 MB at T = 2^18) would be a second cache miss per non-zero. Sparse Numba
# and Cython kernels.
LO_BITS = 7


def n_blocks(n, n_outputs, n_cols):
    """The number of row blocks a batch of ``n`` rows is summed over (K = ``n_outputs``,
    ``n_cols`` = d + 1): a function of the shape only. The Cython epoch's nogil loop
    computes the same count in C (``_n_blocks``; ``tests/test_cython.py`` compares)."""
    return max(1, min(MAX_BLOCKS, n // MIN_BLOCK_ROWS, MAX_BUFFER // (n_outputs * n_cols)))


def block_bounds(n, n_outputs, n_cols):
    """Row boundaries of the full-batch blocks, ``n_blocks(n, n_outputs, n_cols) + 1``
    int64 values from 0 to ``n``: a function of the shape only.

    The Numba epoch sums over exactly these blocks. The Cython epoch takes as many
    blocks and ends block ``b`` of ``nb`` at ``(b + 1) * n // nb`` (integer arithmetic in
    its nogil loop), which at some shapes is one row later than the boundary here, where
    ``linspace``'s product rounds down (28684 rows in 14 blocks: 14342 there, 14341
    here). Each backend keeps its own boundaries, so that neither backend's results
    change; the count is the shared rule.
    """
    return np.linspace(0, n, n_blocks(n, n_outputs, n_cols) + 1).astype(np.int64)
