"""The driver of ``optimizer="newton-sketch"``: full-batch steps preconditioned by a
curvature estimated from a sample of rows, with a line search.

Each epoch is one pass over the rows: the backend's ``gradient`` kernel (the same kernel
on every backend, run on row blocks in parallel) gives the objective ``f`` and the
gradient ``g`` of the penalised objective at the current weights ``w``. The step is
``w <- w - eta P^-1 g``, where ``P`` is the curvature of the objective estimated on a
fixed sample ``S`` of ``m`` evenly spaced rows (:func:`sample_rows`; the intercept a
column of ones):

* squared error: ``P = X_S' X_S / m + l2 I``, the Hessian itself on the sample: it does
  not depend on ``w`` and is factored once per call;
* log loss, binary: ``P = X_S' D X_S / m + l2 I`` with ``D = p (1 - p)`` at the current
  weights, refreshed at every accepted step;
* log loss, K classes, where its ``K^2`` blocks cost no more to form than the
  budget above (``K m (d + 1) <= NEWTON_FACTOR_PASSES n``, and ``K (d + 1) <= 1024``):
  the softmax's whole Hessian on the sample, block ``(k, l)`` being
  ``X_S' diag(p_k (delta_kl - p_l)) X_S / m``, factored as one matrix;
* log loss, K classes, elsewhere: the block-diagonal part of the softmax Hessian, one such matrix
  per class with ``D_k = p_k (1 - p_k)`` (the class-to-class blocks are left out; the
  line search makes up for what that misses). The softmax does not change when the same
  vector is added to every class's weights, so along those directions the Hessian is
  the penalty's alone, ``l2 I``, and it maps the rest (the directions whose classes sum
  to zero) to themselves. The step therefore splits the gradient: its mean over the
  classes gets the exact step ``-mean / l2`` (it is the penalty's gradient alone), the
  rest the block-diagonal solve, centred over the classes. Without that split the
  blocks, which see the data's curvature in the common directions too, would move along
  them at a rate of about ``l2`` over that curvature per pass.

The penalty ``l2`` never applies to the intercept. ``P`` is factored as its Jacobi
scaling ``S^-1/2 P S^-1/2`` (unit diagonal) by Cholesky, so columns of very different
scales do not lose digits; a singular curvature (duplicated columns without a penalty)
gets the smallest diagonal shift that makes the factor exist.

**Wide data.** The sample needs ``m`` well above ``d`` rows, and forming ``P`` costs
``m (d + 1)^2`` per refresh. Where that is more than :data:`fastgd._spec.NEWTON_FACTOR_PASSES` passes' worth
of the data's ``n (d + 1)`` values, the preconditioner is the diagonal of ``P`` instead
(a Jacobi step; "diagonal" in verbose output); ``optimizer="auto"`` does not pick the
rule there.

**Line search.** A step ``eta`` (1 at first, the Newton step) is accepted when the next
pass finds the Armijo decrease ``f(w + eta p) <= f(w) + c eta g'p``; otherwise that pass
only tells the driver to go back to ``w`` with a smaller step (the minimiser of the
quadratic through ``f(w)``, ``g'p`` and the rejected value, kept within [0.1, 0.5] of
``eta``). After an accepted step the next ``eta`` doubles (at most 1) when the decrease
was at least 3/4 of what the quadratic model predicted and the step was not itself a
backtrack, and is kept otherwise. The
objective of the accepted points never increases: the rule cannot diverge.
``learning_rate_`` is the last ``eta``.

**Stopping.** The judge's ``tol`` is read as a bound on the Newton decrement relative to
the objective: the fit has converged when the decrease the quadratic model predicts for
a full step, ``-g'p / 2``, is at most ``tol`` times the objective ``f`` (so that the stop
does not depend on the scale of y: an absolute bound stopped a least-squares fit of
``y * 1e-4`` after 2 passes at a test R^2 of 0.71 against the optimum's 0.85), or the
objective's rounding; with early stopping, the held-out score decides as for every rule.

What an epoch reports (``loss_curve_``) is the objective at the point the model stands
on after the pass's verdict: the new point if accepted, the last accepted one if not.
The state after the last epoch is that point plus the step the pass computed (as every
full-batch rule's state is its last step's result).
"""

import math
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import scipy.linalg
import scipy.special

from . import _params as P
from ._optimizers import SGD
from ._penalties import penalty_value
from ._run import Run, call_kernel
from ._spec import NEWTON_FACTOR_PASSES, newton_preconditioner, newton_sample_rows

__all__ = ["GRADIENT_BLOCKS", "NewtonRun", "factored", "gradient_blocks", "sample_rows"]

# Armijo's constant and the bounds of a backtracking step (fractions of the last step)
ARMIJO = 1e-4
BACKTRACK_MIN, BACKTRACK_MAX = 0.1, 0.5
# a step this small makes no change the objective can see: the fit has converged
ETA_FLOOR = 1e-10
# the softmax's whole (K (d + 1))-square Hessian is factored up to this size
COUPLED_MAX_SIZE = 1024
# objectives this many machine epsilons (of the data's dtype) apart are the same number
ROUNDING = 16

# the gradient pass sums fixed blocks of rows in a fixed order, whatever the number of
# threads, so that n_jobs never changes a result: at most this many blocks ...
GRADIENT_BLOCKS = 64
# ... of at least this many rows
GRADIENT_BLOCK_MIN_ROWS = 2048


def _pool(threads):
    """A pool of ``threads`` threads for the gradient pass (made again in a forked child,
    whose threads did not survive the fork)."""
    key = (os.getpid(), threads)
    pool = _pools.get(key)
    if pool is None:
        pool = _pools[key] = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="fastgd-newton")
    return pool


_pools = {}
_controller = []  # threadpoolctl's controller, made on first use (about 10 ms)


def _blas_one_thread():
    """A context in which BLAS runs on one thread: the driver's own threads run the
    gradient pass and the classes' curvatures, and BLAS threads that spin after a call
    would take the cores from them."""
    if not _controller:
        from threadpoolctl import ThreadpoolController

        _controller.append(ThreadpoolController())
    return _controller[0].limit(limits=1, user_api="blas")


def sample_rows(n, m):
    """The ``m`` rows of the curvature sample among ``n``: evenly spaced (every
    ``n / m``-th row, the first and the last included). A systematic sample needs no
    random stream, so the fit is the same for every ``random_state`` and ``n_jobs``,
    and rows stored in order of their label or of time are covered in proportion."""
    if m >= n:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, m).round().astype(np.int64))


def gradient_blocks(n):
    """The row bounds of the gradient pass's blocks on ``n`` rows."""
    blocks = max(1, min(GRADIENT_BLOCKS, n // GRADIENT_BLOCK_MIN_ROWS))
    return np.linspace(0, n, blocks + 1).astype(np.int64)


def factored(Pk):
    """``(scale, Cholesky factor)`` of the symmetric positive semi-definite ``Pk``: the
    factor of ``Pk / sqrt(diag diag')``, shifted by the smallest multiple of the
    identity (1e-12, 1e-10, ... of its unit diagonal) that makes it positive definite."""
    diag = np.diag(Pk).copy()
    diag[~(diag > 0)] = 1.0
    scale = 1.0 / np.sqrt(diag)
    unit = Pk * scale[:, None] * scale[None, :]
    shift = 0.0
    for exponent in range(-14, 1, 2):
        try:
            return scale, scipy.linalg.cho_factor(unit + shift * np.eye(unit.shape[0]), lower=True,
                                                  check_finite=False)
        except np.linalg.LinAlgError:
            shift = 10.0**exponent
    raise np.linalg.LinAlgError("the curvature sample has no Cholesky factor (it holds non-finite values)")


class NewtonRun(Run):
    """The in-memory run of ``optimizer="newton-sketch"`` (see the module docstring): a
    :class:`fastgd._run.Run` whose epoch is one gradient pass and one preconditioned
    step."""

    def __init__(self, spec, data, state, rng, **kwargs):
        super().__init__(spec, data, state, rng, **kwargs)
        n, d = self.X.shape
        K = self.state.shape[1]
        self.quadratic = spec.loss.constant_curvature
        self.kind = newton_preconditioner(n, d)
        m = newton_sample_rows(n, d, self.quadratic)
        # the softmax's whole Hessian (the classes coupled) where forming its K^2 blocks
        # costs no more than the per-class blocks' budget of passes
        self.coupled = (spec.loss.class_targets and K > 1 and self.kind == "full"
                        and K * m * (d + 1) <= NEWTON_FACTOR_PASSES * n and K * (d + 1) <= COUPLED_MAX_SIZE)
        rows = sample_rows(n, m)
        # the sample with the intercept's column of ones (its outputs are A W'), and its
        # rows' weights summing to 1: formed once, read at every refresh
        self.sample_A = np.ones((len(rows), d + 1))
        self.sample_A[:, :d] = self.X[rows]
        sw = np.asarray(self.sw[rows], dtype=np.float64)
        self.sample_weights = sw / max(sw.sum(), np.finfo(np.float64).tiny)
        cuts = gradient_blocks(n)
        self.blocks = list(zip(cuts[:-1], cuts[1:]))  # (the gradient pass's row bounds)
        self.penalised = np.ones(d + 1)
        self.penalised[d] = 0.0  # (the intercept is never penalised)
        self.fit_intercept = bool(spec.fit_intercept)
        # the kernels' codes for a gradient pass (they read the loss only)
        self.gradient_codes = np.array(spec.codes)
        self.gradient_codes[P.OPTIMIZER] = SGD
        self.w = self.state[0].astype(np.float64)  # the point being judged
        self.accepted = None  # (w, f, direction, slope) of the last accepted point
        self.factors = None
        self.step = 1.0
        self.decrement = None  # -g'p / 2 at the last accepted point
        self.backtracked = False  # whether the point being judged came from a backtrack
        self.model.eta = self.step
        if spec.verbose:
            what = "the classes' whole Hessian" if self.coupled else f"{self.kind} preconditioner"
            print(f"-- newton-sketch: curvature from {m:,} of {n:,} rows, {what}")

    # ------------------------------------------------------------------ a pass
    def gradient(self, W):
        """``(objective, gradient)`` of the penalised objective at ``W`` (K, d + 1),
        float64: one pass of the backend's ``gradient`` kernel over row blocks, on the
        fit's threads."""
        X, Y, sw = self.X, self.Y, self.sw
        n, d = X.shape
        Wk = np.ascontiguousarray(W, dtype=X.dtype)

        def block(a, b):
            G = np.zeros(W.shape)
            total = call_kernel(self.backend.gradient, dict(X=X[a:b], Y=Y[a:b], sw=sw[a:b], W=Wk,
                                                            codes=self.gradient_codes, G=G), 0)
            return total, G

        threads = min(self.spec.threads, len(self.blocks))
        if threads <= 1:
            results = [block(a, b) for a, b in self.blocks]
        else:
            results = list(_pool(threads).map(lambda ab: block(*ab), self.blocks))
        total = math.fsum(r[0] for r in results)
        G = results[0][1]
        for _, more in results[1:]:
            G += more
        G /= n
        G[:, :d] += self.spec.l2 * W[:, :d]
        if not self.fit_intercept:
            G[:, d] = 0.0
        return total / n + penalty_value(W[:, :d], self.spec.l2, 0.0), G

    # ------------------------------------------------------------------ the curvature
    def curvatures(self, W):
        """The sample's curvature per output: a list of K ``(d + 1)``-square matrices
        (the penalty included), or of K diagonals for the diagonal preconditioner."""
        Xa = self.sample_A
        d = Xa.shape[1] - 1
        D = self.spec.loss.curvature_diag(Xa @ W.T) * self.sample_weights[:, None]

        def one(k):
            if self.kind == "full":
                Pk = (Xa * D[:, k:k + 1]).T @ Xa
                Pk[np.diag_indices(d + 1)] += self.spec.l2 * self.penalised
            else:
                Pk = (Xa * Xa).T @ D[:, k] + self.spec.l2 * self.penalised
            if not self.fit_intercept:  # (the intercept stays 0: a unit curvature of its own)
                if Pk.ndim == 2:
                    Pk[d, :] = Pk[:, d] = 0.0
                    Pk[d, d] = 1.0
                else:
                    Pk[d] = 1.0
            return Pk

        K = W.shape[0]
        threads = min(self.spec.threads, K)
        if threads <= 1:
            return [one(k) for k in range(K)]
        return list(_pool(threads).map(one, range(K)))

    def coupled_curvature(self, W):
        """The softmax's whole Hessian on the sample, ``(K (d + 1))``-square: block
        ``(k, l)`` is ``X_S' diag(p_k (delta_kl - p_l)) X_S / m`` (the penalty on the
        weights' diagonal; the common direction of the classes keeps only the penalty's
        curvature, as it should)."""
        Xa, weights = self.sample_A, self.sample_weights
        K, D1 = W.shape[0], Xa.shape[1]
        d = D1 - 1
        prob = scipy.special.softmax(Xa @ W.T, axis=1)
        H = np.empty((K * D1, K * D1))
        for k in range(K):
            for l in range(k, K):
                c = weights * prob[:, k] * ((1.0 if k == l else 0.0) - prob[:, l])
                block = (Xa * c[:, None]).T @ Xa
                H[k * D1:(k + 1) * D1, l * D1:(l + 1) * D1] = block
                H[l * D1:(l + 1) * D1, k * D1:(k + 1) * D1] = block.T
        H[np.diag_indices(K * D1)] += self.spec.l2 * np.tile(self.penalised, K)
        if not self.fit_intercept:  # (the intercepts stay 0: a unit curvature of their own)
            for k in range(K):
                i = k * D1 + d
                H[i, :] = H[:, i] = 0.0
                H[i, i] = 1.0
        return H

    def refresh(self, W):
        first = self.factors is None
        self.factors = []
        if first:
            self._check_sample()
        if self.coupled:
            self.factors.append(factored(self.coupled_curvature(W)))
            return
        for Pk in self.curvatures(W):
            if Pk.ndim == 1:
                Pk = Pk.copy()
                Pk[~(Pk > 0)] = 1.0
                self.factors.append(Pk)
            else:
                self.factors.append(factored(Pk))

    def _check_sample(self):
        """ValueError where a column of the sample holds values whose squares underflow
        to 0: the curvature would call that column flat, and no step can fit it."""
        Xs = self.sample_A
        lost = np.any(Xs != 0, axis=0) & ~(np.einsum("ij,ij->j", Xs, Xs) > 0)
        if np.any(lost):
            big = float(np.max(np.abs(Xs[:, lost])))
            raise ValueError(
                f"X's values are too small for gradient descent in float64: the largest of a column, {big:.3g}, "
                "squares to 0 (underflow), so no step can fit its weight; rescale X."
            )

    def direction(self, G):
        """``-P^-1 G``, per output; for the softmax, split into the classes' common part
        and the rest (see the module docstring)."""
        softmax = self.spec.loss.class_targets and G.shape[0] > 1
        if softmax:
            common = G.mean(axis=0)
            G = G - common
        p = np.empty_like(G)
        if self.coupled:  # (the whole Hessian is singular along the classes' common
            # intercept, and without a penalty along their common weights: the centring
            # below keeps the solve's rounding there from moving the model)
            scale, chol = self.factors[0]
            p[...] = (-scale * scipy.linalg.cho_solve(chol, scale * G.ravel(), check_finite=False)).reshape(G.shape)
        for k, factor in enumerate(self.factors if not self.coupled else ()):
            if isinstance(factor, np.ndarray):
                p[k] = -G[k] / factor
            else:
                scale, chol = factor
                p[k] = -scale * scipy.linalg.cho_solve(chol, scale * G[k], check_finite=False)
        if softmax:
            p -= p.mean(axis=0)
            l2 = self.spec.l2
            if l2 > 0:  # (the common part of the weights: the penalty's own Newton step)
                p[:, :-1] -= common[:-1] / l2
        if not self.fit_intercept:
            p[:, -1] = 0.0
        return p

    # ------------------------------------------------------------------ an epoch
    def epoch(self):
        n = self.X.shape[0]
        self.model.begin_epoch([n], n)
        f, G = self.gradient(self.w)
        prior = self.accepted
        if prior is not None:
            w0, f0, p0, slope0 = prior
            actual = f - f0
            # (a change within the rounding of the data's dtype counts as no increase)
            rounding = ROUNDING * np.finfo(self.X.dtype).eps * abs(f0)
            if not (np.isfinite(f) and actual <= ARMIJO * self.step * slope0 + rounding):
                # rejected: back to the accepted point with a smaller step
                curve = actual - self.step * slope0
                shrunk = -slope0 * self.step**2 / (2.0 * curve) if np.isfinite(curve) and curve > 0 else 0.0
                self.step = min(max(shrunk, BACKTRACK_MIN * self.step), BACKTRACK_MAX * self.step)
                self.backtracked = True
                self._move_to(w0 + self.step * p0)
                return f0
            predicted = self.step * slope0 * (1.0 - 0.5 * self.step)
            if predicted < 0 and actual <= 0.75 * predicted and not self.backtracked:
                self.step = min(1.0, 2.0 * self.step)
            self.backtracked = False
        if self.factors is None or not self.quadratic:
            self.refresh(self.w)
        p = self.direction(G)
        slope = float(np.sum(G * p))
        if not (np.all(np.isfinite(p)) and slope <= 0):  # (a direction lost to rounding)
            slope, p = 0.0, np.zeros_like(p)
        self.decrement = -0.5 * slope
        self.accepted = (self.w, f, p, slope)
        self._move_to(self.w + self.step * p)
        return f

    def _move_to(self, w):
        """End the epoch at the point ``w`` (the next pass judges it): one update."""
        self.w = w
        self.state[0] = w
        self.model.eta = self.step
        self.model.end_epoch(self.X.shape[0], 1)

    def epochs(self, max_epochs, *, stop_early):
        with _blas_one_thread():
            super().epochs(max_epochs, stop_early=stop_early)

    def converged(self):
        """Whether the Newton decrement (or the step) says the fit has converged."""
        tol = self.spec.tol
        if tol is None or self.decrement is None:
            return False
        f = abs(self.accepted[1])
        floor = ROUNDING * np.finfo(self.X.dtype).eps * f
        return self.decrement <= max(tol * f, floor) or self.step < ETA_FLOOR
