"""One model's progress and its judge.

:class:`Model` is one model's working state between epochs: the ``(slots, K, d + 1)``
state the kernels update in place, its rows of the kernels' ``hp``/``codes`` vectors,
the step, the update count and the averaging counters. :class:`Judge` decides after
each epoch what happens to it: divergence (:class:`DivergenceError`), the loss and
time curves, verbose output, the callbacks, the validation score, the stopping
criterion (``tol``, ``n_iter_no_change``) and what a stall does for the learning-rate
rule (a smaller step, a momentum restart, or stop).

Every driver uses them (composition): ``fastgd._run.Run`` for in-memory data and, on
Dask blocks, ``fastgd._dask``; ``fastgd._path`` keeps one of each per model of its
grid, so each model is judged exactly as its own fit would be.
"""

import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning

from . import _params as P
from ._optimizers import average_slot
from ._schedules import step_size

__all__ = ["DIVERGENCE_FACTOR", "NOT_YET", "DivergenceError", "Judge", "Model", "average_start", "reported_weights"]

# an objective this many times the reference (see DivergenceError) is a divergence
DIVERGENCE_FACTOR = 1e10

# codes[AVERAGE_START] while averaging has not started: no update count reaches it
NOT_YET = np.iinfo(np.int64).max


class DivergenceError(FloatingPointError):
    """Raised when a fit diverges: the objective or the weights become non-finite, or the
    objective grows past DIVERGENCE_FACTOR (1e10) times a reference: the larger of the
    objective of the all-zero model on the call's data and, when the call continues a
    fitted model (``partial_fit``, ``warm_start``), that model's first epoch's objective
    (or, where neither is known or positive, the call's own first epoch's objective).

    The estimator keeps the state it had before the call (a fitted model stays usable).
    """


def reported_weights(state, avg_start, t):
    """The average of the iterates (the state's ``AVERAGE`` slot) once averaging has
    started (``avg_start`` < ``t``), else the weights (its ``WEIGHTS`` slot, 0)."""
    if avg_start is not None and t > avg_start:
        return average_slot(state)
    return state[0]


def average_start(average, seen, t, segments, batch):
    """The update count after which averaging starts (``codes[AVERAGE_START] - 1``), if it
    starts in an epoch that follows ``t`` updates and ``seen`` samples, else None. The
    epoch visits ``segments`` (row counts: ``[n]`` in memory, the blocks in visiting
    order on Dask), each in batches of ``batch`` rows that never cross a segment.
    ``average``: True averages every iterate; an int ``n`` the iterates of the updates
    after which at least ``n`` samples have been seen (scikit-learn's meaning)."""
    need = 1 if average is True else int(average)
    for rows in segments:
        if 0 < rows and need - seen <= rows:
            # the first update u (1-based) with seen + min(u batch, rows) >= need
            return t + max(1, -(-(need - seen) // batch)) - 1
        seen += rows
        t += -(-rows // batch)
    return None


class Model:
    """One model between epochs: its state (updated in place by the kernels), its
    ``hp``/``codes`` rows (filled from the spec, in place: a driver of many models
    passes rows of its own arrays), the step ``eta``, the update count ``t``, the
    samples ``seen`` and the update after which averaging started (``avg_start``)."""

    def __init__(self, spec, state, *, t=0, eta=None, seen=0, avg_start=None, hp=None, codes=None):
        if state.shape[0] != spec.state_shape[0]:
            raise ValueError(f"state of shape {state.shape} does not fit optimizer={spec.optimizer!r}, "
                             f"average={spec.average!r}")
        self.spec = spec
        self.state = state
        self.hp = np.array(spec.hp) if hp is None else hp
        self.codes = np.array(spec.codes) if codes is None else codes
        self.hp[:] = spec.hp
        self.codes[:] = spec.codes
        self.t = int(t)
        self.eta = float(spec.eta if eta is None else eta)
        self.seen = int(seen)
        self.avg_start = avg_start

    def current_eta(self):
        """The step of the next update (the schedule's rule at ``t``)."""
        t = max(self.t, 1)
        return float(step_size(self.spec.schedule.code, t, self.eta, self.hp[P.POWER_T], self.hp[P.OPTIMAL_T0],
                               self.hp[P.ALPHA]))

    def begin_epoch(self, segments, batch):
        """Set the step, the update count and the averaging start for the next epoch,
        which visits ``segments`` (row counts, see :func:`average_start`) in batches of
        ``batch`` rows."""
        self.hp[P.ETA0] = self.eta
        self.codes[P.T_START] = self.t
        average = self.spec.average
        if average:
            if self.avg_start is None:
                self.avg_start = average_start(average, self.seen, self.t, segments, batch)
            # (the kernels take the first averaged update)
            self.codes[P.AVERAGE_START] = NOT_YET if self.avg_start is None else self.avg_start + 1

    def end_epoch(self, n_rows, updates):
        self.t += updates
        self.seen += n_rows

    def weights(self):
        """The model the fit reports (``coef_``, ``intercept_``, predictions, validation
        scores): the average of the iterates once averaging has started, else the
        iterate."""
        return reported_weights(self.state, self.avg_start, self.t)

    def restart(self):
        """Zero the slots a momentum restart zeroes (the update rule's ``restart``)."""
        for index in self.spec.rule.restart_indices:
            self.state[index] = 0.0


class Judge:
    """Judges one model's epochs (see the module docstring). ``owner`` is what the
    callbacks see (the driver's run); ``validation`` the held-out ``(X, Y, sw)`` scored
    after each epoch with early stopping, or None."""

    def __init__(self, spec, model, *, validation=None, owner=None):
        self.spec = spec
        self.model = model
        self.owner = owner
        self.callbacks = None  # fastgd._callbacks.FitCallbacks when callbacks are set
        self.validation = validation
        self.reference = self.reference_name = None  # what divergence is measured against
        self.reductions = 0
        self.curve = []
        self.times = []  # cumulative seconds in epochs at the end of each epoch
        self.val_scores = [] if validation is not None else None
        self.n_epochs = 0
        self.eta_last = model.current_eta()
        self.start()

    def set_reference(self, zero_objective, fitted_first=None):
        """Set what divergence is measured against (see ``DivergenceError``): the larger
        of the all-zero model's objective and, for a call that continues a fitted model,
        that model's first epoch's objective (``fitted_first``). Against the all-zero
        model, a fit whose objective grows a billion-fold within its first epoch, or over
        many ``partial_fit`` calls of one epoch each, is caught too; the fitted model's
        first objective keeps a continuing call on data of another scale from being
        taken for a divergence."""
        candidates = [(zero_objective, "the all-zero model's objective")]
        if fitted_first is not None:
            candidates.append((fitted_first, "the fitted model's first epoch's objective"))
        known = [c for c in candidates if c[0] is not None and np.isfinite(c[0]) and c[0] > 0]
        self.reference, self.reference_name = max(known) if known else (None, None)

    def start(self):
        """Reset what :meth:`judge` keeps between epochs (a call's first epoch is next)."""
        self._best = np.inf
        self._no_improvement = 0
        self.converged = False
        self._elapsed = 0.0
        # with early stopping: the best validation score of this call and the state
        # that scored it (the model the call returns)
        self._best_score = -np.inf
        self._best_state = None

    def patience(self):
        """Epochs without improvement that make a stall (the schedule's ``patience``)."""
        return self.spec.schedule.patience(self.spec.n_iter_no_change, self.reductions, self.spec.updates_per_epoch)

    def on_stall(self):
        """What a stall does: the schedule's ``on_stall`` gives the step to go on with
        and whether the momentum restarts, or says stop. Returns False when the fit
        should stop instead."""
        model = self.model
        minibatch = self.spec.batch < self.spec.n_rows
        outcome = self.spec.schedule.on_stall(model.eta, self.reductions, minibatch)
        if outcome is None:
            return False
        model.eta, restart = outcome
        if restart:
            model.restart()
        self.reductions += 1
        self.eta_last = model.current_eta()
        return True

    def _divergence_hint(self, objective, epoch):
        """What to do about a divergence, by its likely cause."""
        if epoch == 1 and not np.isfinite(objective) and np.all(np.isfinite(self.model.state)):
            return (
                "The loss itself is not finite at these weights: the targets or features are "
                "too large for it in floating point; rescale X or y."
            )
        return self.spec.schedule.hint.format(alpha=self.spec.alpha)

    def _check_divergence(self, epoch, objective):
        spec = self.spec
        first = self.curve[0] if self.curve else objective
        reference = self.reference if self.reference is not None else first
        if (
            not np.isfinite(objective)
            or not np.all(np.isfinite(self.model.state))
            or objective > DIVERGENCE_FACTOR * max(reference, np.finfo(np.float64).tiny)
        ):
            against = (
                f"from {first:.4g} in the first epoch" if self.reference is None
                else f"{self.reference_name} is {self.reference:.4g}"
            )
            raise DivergenceError(
                f"{spec.name} diverged in epoch {epoch}: the objective became {objective:.4g} "
                f"({against}) with "
                f"step size {self.eta_last:.4g} (learning_rate={spec.learning_rate!r}). "
                + self._divergence_hint(objective, epoch)
            )

    def judge(self, epoch, objective, seconds, *, stop_early):
        """Judge epoch ``epoch`` of this call, which took ``seconds`` and ended at
        ``objective``: raise :class:`DivergenceError` on a divergence, record the
        curves, run the callbacks, score the validation set and apply the stopping
        criterion and the stall rules. Returns whether the call should stop."""
        spec = self.spec
        self._elapsed += seconds
        self.n_epochs += 1
        self.eta_last = self.model.current_eta()
        self._check_divergence(epoch, objective)
        self.curve.append(objective)
        self.times.append(self._elapsed)
        if spec.verbose:
            print(
                f"-- Epoch {len(self.curve)}: objective {objective:.6g}, step size "
                f"{self.eta_last:.4g}, updates {self.model.t}, {seconds:.4f} s"
            )
        stop = self.callbacks is not None and self.callbacks.epoch_end(self.owner)
        if not stop_early:
            return False
        if self.validation is not None:
            score = spec.score(self.model.weights(), *self.validation)
            self.val_scores.append(score)
            if score > self._best_score:
                self._best_score = score
                self._best_state = self.model.state.copy()
            criterion = -score
        else:
            criterion = objective
        if stop:  # a callback asked to stop: no ConvergenceWarning
            self.converged = True
            if spec.verbose:
                print(f"-- Stopped by a callback after {epoch} epochs")
            return True
        return self._stopping(epoch, criterion)

    def _stopping(self, epoch, criterion):
        """The stopping criterion and the stall rules on this epoch's ``criterion``."""
        spec = self.spec
        if spec.tol is None:
            return False
        if criterion > self._best - spec.tol:
            self._no_improvement += 1
        else:
            self._no_improvement = 0
        self._best = min(self._best, criterion)
        if self._no_improvement < self.patience():
            return False
        if self.on_stall():
            if spec.verbose:
                print(f"-- No improvement for {self._no_improvement} epochs: step size {self.model.eta:.4g}")
            self._no_improvement = 0
            return False
        self.converged = True
        if spec.verbose:
            print(f"-- Converged after {epoch} epochs")
        return True

    def converge(self, epoch):
        """The driver's rule says the fit has converged after ``epoch`` (for
        "newton-sketch": its Newton decrement is within ``tol``)."""
        self.converged = True
        if self.spec.verbose:
            print(f"-- Converged after {epoch} epochs")

    def _gap(self):
        """How far the stopping criterion was from being met, for the warning: the
        change of the criterion over the last ``n_iter_no_change`` epochs."""
        k = self.spec.n_iter_no_change
        if self.val_scores:
            values, what, sign = self.val_scores, "the validation score", 1.0
        else:
            values, what, sign = self.curve, "the objective", -1.0
        if len(values) < 2:
            return ""
        first, last = values[max(0, len(values) - 1 - k)], values[-1]
        change = sign * (last - first)
        epochs = min(k, len(values) - 1)
        verb = "rose" if sign > 0 else "fell"
        if not np.isfinite(change) or change <= 0:
            return f" ({what} did not improve over the last {epochs} epochs, but the stall rule had not yet stopped it)"
        relative = f", {change / abs(first):.2%} of it" if first else ""
        return f" ({what} still {verb} by {change:.3g}{relative} over the last {epochs} epochs)"

    def finish(self, max_epochs, *, stop_early, warn=True):
        """After the last epoch: warn (``ConvergenceWarning``) when the call ran out of
        epochs before its stopping criterion was met; returns whether it did."""
        spec = self.spec
        if self._best_state is not None and self.val_scores[-1] < self._best_score:
            # early stopping returns the epoch that scored best on the held-out rows
            self.model.state[...] = self._best_state
        self._best_state = None
        missed = bool(stop_early and spec.tol is not None and not self.converged)
        if missed and warn:
            warnings.warn(
                f"{spec.name} reached max_iter={max_epochs} epochs before the stopping criterion "
                f"(tol={spec.tol}, n_iter_no_change={spec.n_iter_no_change}) was met{self._gap()}; "
                f"increase max_iter if the fit is not good enough.",
                ConvergenceWarning,
                stacklevel=7,  # the user's fit() or partial_fit() call
            )
        return missed
