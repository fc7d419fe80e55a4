"""Fitting and predicting on Dask collections: the rows stay where they live.

Imported by the estimators only when they are given a Dask array, dataframe or series
(``fastgd._validation.is_dask``), so fastgd works without dask installed.

One module per job: ``run`` (the entry points and :class:`DaskRun`, whose epochs run
on blocks), ``averaging`` (the averaged epoch's plan and its combination of states),
``prepare`` (the input preparation) and ``blocks`` (the executor layer: where blocks
live and how tasks reach them).

Blocks
    A block is one chunk of rows of X; its columns are merged into one chunk first (a
    one-time rechunk if X is chunked along columns). ``y`` and ``sample_weight`` (Dask or
    NumPy) are aligned to X's row chunks. Dask dataframes and series go through
    ``.to_dask_array(lengths=True)``; unknown chunk sizes are computed. Empty chunks are
    skipped.

Preparation (once per ``fit``/``partial_fit``/``objective`` call)
    Each block is converted where it lives (float32/float64 kept, anything else becomes
    float64; C-contiguous) and checked: NaN and infinity in X, y and sample_weight,
    negative weights, and for classifiers its distinct labels with their counts and
    weight sums. Only these small summaries reach the client, which raises the same
    errors as an in-memory fit, finds the classes (the union of the blocks' labels: one
    small reduction), the class weights and the weight normalisation. Each block then
    encodes its targets and scales its weights, and the result is kept on its worker
    for the whole fit and released afterwards.

Full batch (``batch_size="full"`` or >= n_samples)
    Each epoch, every block computes its summed gradient and weighted loss with the
    backend's ``gradient`` kernel, where it lives; the K x (d+1) float64 sums come back
    and are added in block order on the client, which takes the epoch's one step with
    ``fastgd._numpy.kernels.apply_step`` (the reference step). Equal to the in-memory
    full-batch fit up to summation order (1e-10 in float64).

Mini-batch and SGD, ``dask_mode="sequential"``
    Each epoch the model state (weights, intercept, velocity) visits the blocks one
    after the other and the backend's ``epoch`` kernel runs on each block where it lives;
    only the state travels, from worker to worker. With ``shuffle=True`` the block order
    is a new permutation each epoch (``random_state.permutation(n_blocks)``) and each
    block visits its rows in the permutation ``RandomState(seed).permutation(n_rows)``
    of a seed drawn next from ``random_state`` (one per visited block, in visiting
    order), so only seeds travel, not n-sized permutations. With ``shuffle=False`` the
    blocks and their rows are visited in storage order, as in memory. Batches never
    cross a block boundary: a block of ``m`` rows makes ``ceil(m / batch_size)`` steps,
    its last batch possibly shorter, and the update counter ``t_`` advances by that. So
    the fit equals the in-memory fit over the concatenated visiting order whenever every
    block's length is a multiple of ``batch_size`` (always for SGD).

Mini-batch and SGD, ``dask_mode="average"`` (the default)
    Each epoch draws the same plan (block order and seeds) as the sequential mode. The
    blocks are grouped by the worker holding them (a worker's group: its blocks in plan
    order; groups ordered by their first block in storage order, so that the result
    depends on the block layout only, not on worker addresses). Every group runs at
    once from the same state, where its blocks live, with the same row orders and step
    counts per block as the sequential mode; every ``sync_every`` steps of each worker
    (None: at the end of the epoch) the states are combined by :func:`average_states`
    and the next round starts from the combination (:func:`average_rounds` cuts the
    epoch into rounds). The update counter advances per round by the largest number of
    steps a worker made in it, and a worker's steps in a round count from the round's
    start, so the schedules see the averaged model's steps. The whole epoch is
    submitted at once: per round, one task per worker (pinned to it, reading only its
    blocks) and one unpinned combining task, so only states travel (worker to combiner
    to worker), never blocks and never through the client until the epoch's end.

    The combination averages every slot of the ``(n_slots, K, d + 1)`` state
    elementwise, weighted by each worker's rows since the last sync. Why each kind of
    slot is right to average: every slot is the common state at the last sync plus a
    local increment, so the average keeps the common part exactly and weights each
    increment by the share of the rows that produced it. For the weights and the
    momentum velocity (and an Adam-style first moment) the increment of one step is
    linear in the batch gradient, so with a sync after every step and equal batches the
    average is exactly the step of one batch of all the workers' rows (with batches of
    unequal sizes too, thanks to the row weights; L1's soft-threshold is the exception,
    being nonlinear). Accumulators of squared gradients (AdaGrad, RMSprop, Adam's second
    moment) estimate the same per-row quantity on every worker, so their average is
    that estimate over all the rows and keeps the scale the step was tuned for (a sum
    would shrink the steps k-fold). An averaged iterate is linear in the iterates: the
    average of the workers' averages is the average of their iterates.

Step size "auto"
    The blocks' step statistics (:func:`block_stats`) are those of the same rows in
    memory: ``max_i s_i ||x_i||^2`` is a blockwise maximum, and the eigenvalue and the
    mean row L1 norm are computed on the client over the same evenly spaced rows the
    in-memory estimate uses (every ``n // 10000``-th row, at most 20000 rows, gathered
    once); ``fastgd._spec.initial_step`` turns them into the step.

Early stopping
    ``early_stopping=True`` needs a validation set passed to ``fit`` (``X_val``,
    ``y_val``, optionally ``sample_weight_val``; NumPy, sparse or Dask): it is computed
    into this process once, checked like in-memory validation data and scored on the
    client after each epoch. Without it, NotImplementedError: there is no blockwise
    held-out split of ``validation_fraction``.

Not supported
    ``n_jobs`` does not apply: the parallelism is that of the Dask workers.

Where it runs
    On the ``distributed`` client that Dask would use for X (``dask.base.get_scheduler``):
    every task that reads a block is restricted to the worker(s) holding it, so no block
    is ever sent to another worker or to the client. If such a worker leaves the cluster
    during a fit, the fit raises RuntimeError (the model is left unchanged). With Dask's
    local schedulers (no client) the blocks are computed once into this process, which
    is then the one worker (the averaged mode is the sequential one).
"""

from .averaging import average_rounds, average_states, block_order, epoch_plan
from .run import DaskRun, block_stats, fit, map_method, partial_fit, weighted_loss

__all__ = ["DaskRun", "average_rounds", "average_states", "block_order", "block_stats", "epoch_plan", "fit",
           "map_method", "partial_fit", "weighted_loss"]
