"""The data's smoothness, and from it the step size of ``learning_rate="auto"``.

Two statistics of the data bound the curvature of the objective: the largest eigenvalue
of ``Xt' S Xt / n`` (on at most ``EIGEN_MAX_ROWS`` evenly spaced rows:
:func:`top_eigenvalue`) and the largest weighted squared row norm
(:func:`max_row_smoothness`, one pass over X that also finds a NaN or an infinity in
it). :func:`auto_step` turns them into a step for a batch size
and a momentum; the adaptive rules' step (:func:`adaptive_step`) reads the rows' mean
L1 norm (:func:`mean_row_l1`) instead.

A :class:`StepStats` record carries these statistics of some rows, and
``fastgd._spec.initial_step`` is the one function that turns a record into a step.
Each driver fills the record its own way: :func:`memory_stats` on in-memory rows,
``fastgd._path`` on one fold's rows, ``fastgd._dask`` from blocks.
"""

from concurrent.futures import ThreadPoolExecutor
from typing import NamedTuple

import numpy as np
import scipy.sparse as sp

# the estimate of the top eigenvalue uses at most this many evenly spaced rows
EIGEN_MAX_ROWS = 10_000
# ... from their (d + 1) x (d + 1) second-moment matrix and an eigensolver up to this many
# columns (one BLAS product of m (d + 1)^2: a few milliseconds at d = 100, where the
# power iteration's 60 passes over the rows took 25 ms on isotropic data), by power
# iteration beyond
GRAM_MAX_COLUMNS = 257
# the pass over every row's squared norm is split over threads from this many values
THREADED_MIN_VALUES = 1 << 20


class StepNeeds(NamedTuple):
    """Which statistics a step reads (``fastgd._spec.step_needs``)."""

    max_row: bool
    eigen: bool
    mean_l1: bool


class StepStats(NamedTuple):
    """The step statistics of ``n`` rows: the largest weighted squared row norm
    (:func:`max_row_smoothness`), the top eigenvalue of the weighted second-moment
    matrix (:func:`top_eigenvalue`) and the mean row L1 norm (:func:`mean_row_l1`);
    a statistic the step does not read is left at its default."""

    n: int
    max_row: float = 0.0
    eigen: float = 0.0
    mean_l1: float = 1.0


def memory_stats(X, sw, fit_intercept, needs, n_threads=1):
    """The :class:`StepStats` of in-memory rows ``X`` (weights ``sw``), those ``needs``
    asks for."""
    # (invalid: X's finiteness may not be checked yet, and a NaN in it is reported as
    # such by the estimator when the step comes out non-finite)
    with np.errstate(invalid="ignore"):
        return StepStats(
            n=X.shape[0],
            max_row=max_row_smoothness(X, sw, fit_intercept, n_threads) if needs.max_row else 0.0,
            eigen=top_eigenvalue(X, sw, fit_intercept) if needs.eigen else 0.0,
            mean_l1=mean_row_l1(X, fit_intercept) if needs.mean_l1 else 1.0,
        )


def top_eigenvalue(X, sw, fit_intercept, n_iter=30, max_rows=EIGEN_MAX_ROWS, rtol=1e-4):
    """Largest eigenvalue of ``Xt' diag(sw) Xt / n`` (float64).

    ``Xt`` is X with a column of ones appended when ``fit_intercept``. At most
    ``max_rows`` evenly spaced rows are used, gathered once into a contiguous array: the
    estimate is a matter of scale, not of digits, and its cost must stay small next to
    one epoch. Rows of up to ``GRAM_MAX_COLUMNS`` columns (with the intercept's; sparse
    ones as dense) take the exact eigenvalue of their second-moment matrix; wider rows,
    power iteration, which stops when the Rayleigh quotient changes by less than ``rtol``
    (relative), after at most ``n_iter`` rounds.
    """
    n, d = X.shape
    step = max(1, n // max_rows)
    sparse = sp.issparse(X)
    ws = np.asarray(sw[::step], dtype=np.float64)
    if ws.shape[0] and d + 1 <= GRAM_MAX_COLUMNS:
        # (sparse rows too, as dense ones: the same step as for the same data dense)
        lam = _gram_eigenvalue(X[::step].toarray() if sparse else X[::step], ws, fit_intercept)
        if lam is not None:
            return lam
    if sparse:  # CSR: the same rows, products by scipy
        Xs = sp.csr_array(X[::step], dtype=np.float64)
    else:
        Xs = np.ascontiguousarray(X[::step], dtype=np.float64)
    m = Xs.shape[0]
    v = np.random.default_rng(0).standard_normal(d + 1)  # fixed start: deterministic
    if not fit_intercept:
        v[d] = 0.0
    lam = 0.0
    for _ in range(n_iter):
        # scaled by its largest entry first: the squares of the entries of X' X v
        # overflow (or underflow) for data of 1e100 (1e-100), whose own squares do not,
        # and a norm of inf (0) ended the iteration early, with lambda underestimated
        top = np.max(np.abs(v))
        if top == 0.0 or not np.isfinite(top):
            break
        v = v / top
        v = v / np.linalg.norm(v)
        # einsum rather than BLAS: single-threaded, so a busy machine cannot stall it
        # on a descheduled BLAS thread (these products take about a millisecond)
        u = ws * ((Xs @ v[:d] if sparse else np.einsum("ij,j->i", Xs, v[:d])) + v[d])
        w = np.empty(d + 1)
        w[:d] = (Xs.T @ u if sparse else np.einsum("ij,i->j", Xs, u)) / m
        w[d] = u.sum() / m if fit_intercept else 0.0
        previous, lam = lam, float(v @ w)  # Rayleigh quotient
        v = w
        if abs(lam - previous) <= rtol * abs(lam):
            break
    return lam


def _gram_eigenvalue(Xs, ws, fit_intercept):
    """The largest eigenvalue of ``Xt' diag(ws) Xt / m`` of the rows ``Xs`` (m x d,
    any float dtype, computed in float64) from the (d + 1) x (d + 1) matrix itself: one product and a
    symmetric eigensolver, exact for the sample.

    The rows (with their ones column) are first scaled by the power of two ``s`` that
    brings the largest entry into [0.5, 1), and the eigenvalue divided by ``s**2``: exact
    scalings, so data of 1e100 or 1e-100 (whose products would overflow or underflow)
    get the same step relative to their scale. None where that scaling would push the
    ones column itself out of range (an intercept with entries beyond 2**+-300) or the
    data are not finite: the power iteration, which rescales as it goes, takes those."""
    m, d = Xs.shape
    # (Xs may be a strided view of X in its own dtype: gathered once, into A)
    top = max(float(np.max(Xs)), -float(np.min(Xs))) if Xs.size else 0.0
    if not np.isfinite(top):
        return None
    if top == 0.0:
        return float(np.mean(ws)) if fit_intercept else 0.0
    exponent = int(np.frexp(top)[1])
    if fit_intercept and abs(exponent) > 300:
        return None
    scale = np.ldexp(1.0, -exponent)
    A = np.empty((m, d + 1))
    A[:, :d] = Xs
    A[:, :d] *= scale
    A[:, d] = scale if fit_intercept else 0.0
    if np.any(ws != 1.0):
        A *= np.sqrt(ws)[:, np.newaxis]
    C = (A.T @ A) / m
    return float(np.ldexp(np.linalg.eigvalsh(C)[-1], 2 * exponent))


def auto_learning_rate(X, sw, *, fit_intercept, curvature, l2, batch_size, momentum, n_threads=1):
    """The constant step size used by ``learning_rate="auto"``.

    With ``c`` the loss curvature bound (1 squared error, 1/4 logistic, 1/2 softmax),
    ``L = c * lambda_max(Xt' S Xt / n) + l2`` the smoothness of the full objective
    (``Xt`` = X with a ones column when fitting an intercept, ``S`` the normalised sample
    weights; lambda_max by power iteration) and ``L_max = c * max_i s_i ||xt_i||^2 + l2``
    the worst single-row smoothness, a mini-batch of ``b`` rows out of ``n`` has expected
    smoothness ``L_b = L_det + L_noise`` with

        L_det   = n (b - 1) / (b (n - 1)) * L
        L_noise = (n - b) / (b (n - 1)) * L_max

    (``b = 1`` gives ``L_max``, ``b = n`` gives ``L``). Momentum ``mu`` multiplies the
    effective step by ``1 / (1 - mu)`` and with it the gradient noise, so the step is

        eta = 1 / (L_det + L_noise / (1 - mu))

    Full batch therefore uses ``1 / L`` (heavy ball and Nesterov are stable up to about
    ``1.3 / L`` for any ``mu < 1``) and SGD ``(1 - mu) / L_max``. Both scale with the data,
    so no feature scaling makes the default diverge. ``n_threads`` share the pass over
    the rows.
    """
    n = X.shape[0]
    b = min(batch_size, n)
    # each statistic only where the formula reads it: SGD (b = 1 < n) needs no
    # eigenvalue, full batch no pass over every row
    return auto_step(
        n=n,
        batch_size=batch_size,
        max_row_smoothness=max_row_smoothness(X, sw, fit_intercept, n_threads) if b < n else 0.0,
        top_eigenvalue=top_eigenvalue(X, sw, fit_intercept) if b > 1 or b >= n else 0.0,
        curvature=curvature,
        l2=l2,
        momentum=momentum,
    )


def dense_row_sq_norms(X, n_threads=1):
    """``||x_i||^2`` of each row of a dense C-contiguous X, in float64: one streaming pass,
    split over ``n_threads`` threads when X holds at least ``THREADED_MIN_VALUES`` values
    (NumPy's sum of products runs without the GIL). A row holding NaN or an infinity
    gets a NaN or infinite norm, so the pass doubles as the finiteness check of X."""
    n = X.shape[0]
    out = np.empty(n)
    parts = int(min(n_threads, max(1, X.size // THREADED_MIN_VALUES)))

    def part(lo, hi):
        np.einsum("ij,ij->i", X[lo:hi], X[lo:hi], dtype=np.float64, out=out[lo:hi])

    if parts <= 1:
        part(0, n)
        return out
    cuts = np.linspace(0, n, parts + 1).astype(np.int64)
    with ThreadPoolExecutor(max_workers=parts - 1, thread_name_prefix="fastgd-norms") as pool:
        futures = [pool.submit(part, cuts[k], cuts[k + 1]) for k in range(1, parts)]
        part(cuts[0], cuts[1])
        for f in futures:
            f.result()
    return out


def max_row_smoothness(X, sw, fit_intercept, n_threads=1):
    """``max_i s_i ||xt_i||^2`` in float64 (``xt_i`` = row i with a 1 appended when
    ``fit_intercept``); of a block of rows, its share of the whole data's maximum. NaN
    or infinite when X holds a NaN or an infinity (or the squares overflow)."""
    if sp.issparse(X):
        sq = row_sq_norms(X)
    else:
        sq = dense_row_sq_norms(X, n_threads)
    if sq.shape[0] and np.max(sq) == 0.0 and (X.count_nonzero() if sp.issparse(X) else np.any(X)):
        # every square underflowed: the smoothness, and with it the step, would be that of
        # all-zero data, and gradient descent on such data moves no weight in float64
        big = float(np.max(np.abs(X.data if sp.issparse(X) else X)))
        raise ValueError(
            f"X's values are too small for gradient descent in float64: the largest, {big:.3g}, "
            "squares to 0 (underflow), so no step size can move the weights; rescale X."
        )
    sq = sq + (1.0 if fit_intercept else 0.0)
    return float(np.max(np.asarray(sw, dtype=np.float64) * sq))


def auto_step(*, n, batch_size, max_row_smoothness, top_eigenvalue, curvature, l2, momentum):
    """The formula of :func:`auto_learning_rate` from the data's two statistics:
    ``max_row_smoothness = max_i s_i ||xt_i||^2`` and ``top_eigenvalue`` =
    ``lambda_max(Xt' S Xt / n)`` as :func:`top_eigenvalue` estimates it. Split out so
    that data held in blocks (Dask) can gather the statistics and share the formula."""
    b = min(batch_size, n)
    L_max = curvature * max_row_smoothness + l2
    if b >= n:
        L_det = curvature * top_eigenvalue + l2
        L_noise = 0.0
    else:
        L = curvature * top_eigenvalue + l2
        L_det = n * (b - 1) / (b * (n - 1)) * L
        L_noise = (n - b) / (b * (n - 1)) * L_max
    denom = L_det + L_noise / (1.0 - momentum)
    if not np.isfinite(denom):
        raise ValueError(
            "learning_rate='auto' could not estimate the data's smoothness "
            "(the squared row norms overflow); rescale X."
        )
    if denom <= 0.0:  # all-zero data: any step is stable
        return 1.0
    # BLAS results can differ in the last bits with memory alignment; rounding to 8
    # significant digits keeps fits bit-for-bit reproducible for a fixed random_state
    return float(f"{1.0 / denom:.8g}")


def row_sq_norms(X):
    """Squared Euclidean norm of each row of a sparse matrix, in float64 (duplicate
    entries are summed first, as in ``X.toarray()``)."""
    X = X.tocsr().astype(np.float64)
    if not X.has_canonical_format:
        X = X.copy()
        X.sum_duplicates()
    rows = np.repeat(np.arange(X.shape[0]), np.diff(X.indptr))
    return np.bincount(rows, weights=X.data * X.data, minlength=X.shape[0])


# learning_rate="auto" for the adaptive rules: how far each rule's first update moves
# the output of a row of mean L1 norm (see adaptive_learning_rate). Chosen from test
# accuracy after 1 and 3 epochs on two problems (bench.optimizers_bench's generators:
# text-like sparse 60000 x 2^18 with penalty=None, dense 50000 x 100 with the default
# L2), among 0.03-3: AdaGrad and RMSprop were best at 3 on both (sparse, one epoch:
# 0.770 and 0.772 against 0.755 and 0.756 at 1), Adam at 0.1 (0.768; 0.750 at 0.03,
# 0.764 at 0.3, 0.744 at 1); dense accuracy was within 0.1 point of lbfgs for all of
# them from 0.3 to 3 (Adam 0.03 to 0.3).
ADAPTIVE_OUTPUT_STEP = {"adagrad": 3.0, "rmsprop": 3.0, "adam": 0.1}


def mean_row_l1(X, fit_intercept, max_rows=EIGEN_MAX_ROWS):
    """Mean of ``||xt_i||_1`` over at most ``max_rows`` evenly spaced rows (float64),
    ``xt_i`` = row i with a 1 appended when ``fit_intercept``."""
    step = max(1, X.shape[0] // max_rows)
    Xs = X[::step]
    if sp.issparse(Xs):
        l1 = np.asarray(abs(sp.csr_array(Xs, dtype=np.float64)).sum(axis=1)).ravel()
    else:
        l1 = np.abs(np.asarray(Xs, dtype=np.float64)).sum(axis=1)
    return float(np.mean(l1)) + (1.0 if fit_intercept else 0.0) if l1.shape[0] else 1.0


def adaptive_learning_rate(X, *, fit_intercept, optimizer, beta_2):
    """The step of ``learning_rate="auto"`` for the adaptive rules ("adagrad",
    "rmsprop", "adam").

    Their first update moves every coordinate by about ``eta`` whatever the gradient's
    scale (AdaGrad and Adam by exactly ``eta``, RMSprop by ``eta / sqrt(1 - beta_2)``),
    so a row's output moves by about ``eta ||xt||_1``. The step is chosen so that this
    is ``ADAPTIVE_OUTPUT_STEP[optimizer]`` for a row of mean L1 norm: it scales with the
    features (no rescaling of X makes it diverge). Later updates move a coordinate by
    ``eta`` times the ratio of its recent mean gradient to its root mean square
    gradient, of order one or less.
    """
    return adaptive_step(mean_row_l1(X, fit_intercept), optimizer=optimizer, beta_2=beta_2)


def adaptive_step(scale, *, optimizer, beta_2):
    """The formula of :func:`adaptive_learning_rate` from the rows' mean L1 norm
    ``scale`` (:func:`mean_row_l1`; the Dask driver gathers it blockwise)."""
    if not np.isfinite(scale):
        raise ValueError("learning_rate='auto' could not measure the rows' scale (it overflows); rescale X.")
    if scale <= 0.0:  # all-zero data (no intercept): any step moves nothing
        scale = 1.0
    eta = ADAPTIVE_OUTPUT_STEP[optimizer] / scale
    if optimizer == "rmsprop":
        eta *= np.sqrt(1.0 - beta_2)
    return float(f"{eta:.8g}")
