"""The time-to-accuracy race: what a user gets from each tool's defaults, fit whole.

Six logistic-regression problems (:data:`PROBLEMS`: dense n ≫ d, wide dense,
10-class multinomial, sparse rows with random weights, tf-idf over a large vocabulary,
20-class tf-idf), each split 80/20 into training and test rows, and on each every
method with its own defaults (:func:`methods_for`): fastgd's ``LogisticRegression()``
(its table names the update rule ``optimizer="auto"`` chose); scikit-learn's
``LogisticRegression`` (lbfgs, newton-cholesky on the dense problems, saga),
``SGDClassifier(loss="log_loss")`` plain and averaged, and ``SGDClassifier()`` (its
default hinge loss, one-vs-rest for several classes); Vowpal Wabbit (binary sparse
problems) and a plain PyTorch loop when they are installed.

``python -m bench.race_bench [--scale F] [--out DIR]`` runs the race alone, prints its
Markdown section and writes ``race.json`` and ``race_accuracy_vs_time.png`` into
``DIR`` (default ``bench/results``); ``python -m bench`` runs it first and puts its
table at the top of the report (``--no-race`` skips it). :data:`METHOD` says how each
number is measured; :func:`run_race` is the whole race, :func:`race_problem` one
problem, :func:`ladder` one method on one problem.
"""

import argparse
import contextlib
import json
import math
import os
import pathlib
import sys
import time
import warnings
from dataclasses import asdict, dataclass, replace

import numpy as np

from .data import Problem, make_problem
from .formatting import fmt_num, fmt_ratio, fmt_time, md_table
from .methods import log_objective as objective
from .methods import missing, vw_lines

SEED = 0
TARGET_MARGIN = 0.002  # the target: the best peer's test accuracy minus 0.2 points
EPS = 1e-9  # accuracies are counts / n_test: a fit at exactly the target reaches it
CAP_S = 20.0  # at full size: the most seconds one method may spend on one problem
MIN_CAP_S = 2.0  # the cap never goes below this at small scales
WARM_ROWS = 1000  # rows of the warm-up fits (taken from the test rows, never timed)
TORCH_EPOCHS = (1, 2, 4)  # the PyTorch loop's ladder; its "whole fit" is the last
TORCH_BATCH = 256
VW_PASSES = (1, 2, 4)  # Vowpal Wabbit: 1 pass is its default, more while the cap allows
FASTGD = "fastgd LogisticRegression()"
PNG = "race_accuracy_vs_time.png"  # the plot's file name, next to the report
# every method runs on one thread (BLAS, OpenMP, PyTorch): on a shared machine a second
# thread mostly measures the other processes' load (see METHOD); 0 = the libraries' defaults
THREADS = 1

METHOD = """\
Each problem is generated deterministically and split at random into 80% training and
20% test rows. Every method runs with **its own defaults** (only a seed fixed), so the
table shows what a user gets without tuning. Times are wall-clock seconds of the whole
`fit` call (input validation and set-up included) in this one process, after a warm-up
fit of every method on 1000 other rows (the first test rows; never timed), so fastgd's
compiled kernels are loaded from the cache rather than compiled. Every method runs on the
number of threads above (BLAS, OpenMP and PyTorch limited alike; fastgd's default
mini-batch fit uses one): on a shared machine a second thread mostly measures the other
processes' load.

- **whole fit**: the method's default fit, its own stopping rule deciding the
  iterations (in brackets). It follows fits of `max_iter` = 1 and 2 (to time an
  iteration), with its `max_iter` lowered to what the cap leaves if need be: a fit that
  stops on its own before its `max_iter` is the default fit (with everything else at its
  default, `max_iter = k` runs the first k iterations of the default fit). PyTorch has no
  default length: its fit is 4 epochs of `torch.optim.Adam` (default step) on
  mini-batches of 256; Vowpal Wabbit's default is one pass over its text input (the text
  is written before, untimed: see the note).
- **test accuracy** of that fit; **objective**: fastgd's training objective at fastgd's
  default penalty, evaluated here in float64 from each method's `coef_` and `intercept_`
  (mean log loss, softmax cross-entropy for 10 classes, + alpha · ½‖W‖² with the
  alpha fastgd's default fit chooses on the problem), so all rows are comparable
  whatever each tool minimises.
- **time to target**: the target is the best test accuracy among the peers' whole fits
  (every method but fastgd; for one over cap, its last fit) minus 0.2 points. Each
  method is refitted from scratch with `max_iter` = 4, 8, 16, … below its whole fit's
  iterations (Vowpal Wabbit: 2, 4 passes; PyTorch: 2 epochs) until a fit reaches the
  target, then the gap to the last fit short of it is halved (6, then 5 or 7, between 4
  and 8); the time to target is the wall-clock of the quickest fit reaching it. A peer's
  ladder stops where its next fit would take over 1.5× the fastest peer's time to target
  (it can no longer be the fastest): "≤" marks a time to target found without the fits in
  between.
- **cap**: every method may spend at most the cap in fits on one problem, all its fits
  counted. A method whose default fit is not reached within it is reported **over cap**,
  with the accuracy of its last fit, never dropped.
- **verdict**: met when fastgd's default estimator reaches the target sooner than every
  peer; the ratio is fastgd's time to target ÷ the fastest peer's.
"""


PROBLEMS = (
    Problem("dense", "dense n ≫ d", 200_000, 100),
    Problem("wide", "wide dense", 40_000, 2_000),
    Problem("multinomial", "10-class multinomial", 200_000, 100, classes=10),
    Problem("sparse", "sparse text-like", 200_000, 2**18, nnz=50),
    Problem("tfidf", "tf-idf, large vocabulary", 220_000, 2**20, nnz=50, text=True),
    Problem("text20", "20-class tf-idf", 125_000, 2**18, classes=20, nnz=60, text=True),
)


def problems(scale=1.0, d_scale=1.0):
    """:data:`PROBLEMS` with ``scale`` × the rows and ``d_scale`` × the features (the
    sparse problem's d rounded to a power of two; tests use both to run in seconds)."""
    out = []
    for p in PROBLEMS:
        n = max(400, round(p.n * scale))
        if p.sparse:
            d = 2 ** max(8, round(math.log2(p.d * d_scale)))
            nnz = max(5, min(p.nnz, round(p.nnz * math.sqrt(d_scale))))
        else:
            d, nnz = max(5, round(p.d * d_scale)), 0
        out.append(replace(p, n=n, d=d, nnz=nnz))
    return out


def cap_for(scale, cap_s=CAP_S):
    """The per-method cap at ``scale`` (proportional, at least :data:`MIN_CAP_S`)."""
    return max(MIN_CAP_S, cap_s * min(1.0, scale))


# ------------------------------------------------------------------------- objective
def fastgd_penalty(X=None):
    """``(alpha, l2, l1)``: the penalty every row's objective is evaluated at, the one
    fastgd's default ``LogisticRegression()`` chooses on training rows ``X``
    (``alpha="auto"``: 1 / n for its dense Newton-type rule, none for the sparse
    recipe; without ``X``: the fixed default), read at run time."""
    from fastgd import LogisticRegression
    from fastgd.benchmarking import penalty_strengths

    est = LogisticRegression()
    l2, l1 = penalty_strengths(est, X)
    return l2 + l1, l2, l1


def accuracy(X, y, coef, intercept):
    """Test accuracy of a linear classifier given by its weights."""
    W = np.atleast_2d(np.asarray(coef, dtype=np.float64))
    Z = np.asarray(X @ W.T, dtype=np.float64) + np.asarray(intercept, dtype=np.float64).reshape(-1)
    pred = (Z[:, 0] > 0).astype(np.int64) if W.shape[0] == 1 else np.argmax(Z, axis=1)
    return float(np.mean(pred == np.asarray(y)))


# --------------------------------------------------------------------------- methods
@dataclass
class Method:
    """One contender: ``fit(data, k)`` fits it with ``k`` iterations (``max_iter``,
    passes or epochs) and returns ``{"wall_s", "accuracy", "iterations", "coef",
    "intercept"}``; ``rungs`` are the ``k`` of its ladder; ``default`` is its default
    ``k`` (a fit that stops before ``k`` on its own is its default fit as well)."""

    name: str
    kind: str  # "fastgd" or "peer"
    fit: object
    rungs: tuple
    default: int
    warm: object = None  # warm(X, y): the untimed warm-up fit
    stops: bool = True  # a fit may stop before k on its own (max_iter); else k passes/epochs
    skipped: str = ""  # why the method is not run (not installed, not for this problem)


def _doubling(default):
    """1, 2, 4, ... below ``default``, then ``default``."""
    rungs, k = [], 1
    while k < default:
        rungs.append(k)
        k *= 2
    return tuple(rungs + [default])


def _sklearn_like(make):
    """``fit(data, k)`` for an estimator with ``max_iter``, ``coef_``, ``intercept_`` and
    ``n_iter_``; ``make(max_iter)`` builds it (everything else at its defaults)."""

    def fit(data, k):
        Xtr, ytr, Xte, yte = data
        est = make(k)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tic = time.perf_counter()
            est.fit(Xtr, ytr)
            wall = time.perf_counter() - tic
        out = {
            "wall_s": wall, "accuracy": float(est.score(Xte, yte)), "iterations": int(np.max(est.n_iter_)),
            "coef": est.coef_, "intercept": est.intercept_,
        }
        if hasattr(est, "optimizer_"):
            out["optimizer"] = est.optimizer_
        return out

    def warm(X, y):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            make(2).fit(X, y)

    return fit, warm


def _default_max_iter(cls):
    return int(cls().get_params()["max_iter"])


def torch_reason():
    """None if torch imports, else why the PyTorch row is skipped."""
    reason = missing("torch")
    return reason and f"skipped: {reason}"


def vw_reason():
    """None if Vowpal Wabbit's Python package imports, else why its row is skipped."""
    reason = missing("vowpalwabbit")
    return reason and f"skipped: {reason}"


def _torch_fit(problem):
    """``fit(data, epochs)``: a plain PyTorch logistic regression, ``torch.optim.Adam``
    with its default step on shuffled mini-batches of :data:`TORCH_BATCH`, float32 (torch's
    default); dense X through ``torch.nn.Linear``, sparse X through
    ``torch.nn.EmbeddingBag`` (mode "sum", the values as per-sample weights). The time
    includes building the tensors."""

    def fit(data, epochs):
        import torch

        Xtr, ytr, Xte, yte = data
        out = 1 if problem.classes == 2 else problem.classes
        torch.manual_seed(SEED)
        tic = time.perf_counter()
        n, d = Xtr.shape
        gen = torch.Generator().manual_seed(SEED)
        if problem.sparse:
            bag = torch.nn.EmbeddingBag(d, out, mode="sum")
            torch.nn.init.zeros_(bag.weight)
            bias = torch.nn.Parameter(torch.zeros(out))
            params = [bag.weight, bias]
        else:
            layer = torch.nn.Linear(d, out)
            params = list(layer.parameters())
            Xt = torch.as_tensor(Xtr, dtype=torch.float32)
        if out == 1:
            yt = torch.as_tensor(ytr, dtype=torch.float32)
            loss_fn = torch.nn.functional.binary_cross_entropy_with_logits
        else:
            yt = torch.as_tensor(ytr, dtype=torch.int64)
            loss_fn = torch.nn.functional.cross_entropy
        opt = torch.optim.Adam(params)
        for _ in range(epochs):
            order = torch.randperm(n, generator=gen)
            if problem.sparse:
                shuffled = Xtr[order.numpy()]
                indptr = torch.as_tensor(shuffled.indptr.astype(np.int64))
                indices = torch.as_tensor(shuffled.indices.astype(np.int64))
                values = torch.as_tensor(shuffled.data, dtype=torch.float32)
                ys = yt[order]
            for lo in range(0, n, TORCH_BATCH):
                hi = min(n, lo + TORCH_BATCH)
                if problem.sparse:
                    a, b = int(indptr[lo]), int(indptr[hi])
                    z = bag(indices[a:b], indptr[lo:hi] - a, per_sample_weights=values[a:b]) + bias
                    target = ys[lo:hi]
                else:
                    idx = order[lo:hi]
                    z = layer(Xt[idx])
                    target = yt[idx]
                loss = loss_fn(z[:, 0] if out == 1 else z, target)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
        wall = time.perf_counter() - tic
        with torch.no_grad():
            if problem.sparse:
                coef, intercept = bag.weight.detach().numpy().T.astype(np.float64), bias.detach().numpy()
            else:
                coef, intercept = layer.weight.detach().numpy(), layer.bias.detach().numpy()
        coef, intercept = np.array(coef, dtype=np.float64), np.array(intercept, dtype=np.float64)
        return {"wall_s": wall, "accuracy": accuracy(Xte, yte, coef, intercept), "iterations": epochs,
                "coef": coef, "intercept": intercept}

    def warm(X, y):
        fit((X, y, X[:10], y[:10]), 1)

    return fit, warm


VW_CONSTANT = 11650396  # the hash of Vowpal Wabbit's constant (intercept) feature


def _vw_fit():
    """``fit(data, passes)``: Vowpal Wabbit with its defaults and the logistic loss
    (``--loss_function logistic``), learning from its text format line by line, ``passes``
    times over the lines (the text is made beforehand, untimed: ``text_s``)."""
    cache = {"X": None}  # the text of the last data set (the training X it was made of)

    def lines(data):
        if cache["X"] is not data[0]:
            Xtr, ytr, Xte, yte = data
            tic = time.perf_counter()
            made = (vw_lines(Xtr, ytr), vw_lines(Xte, yte))
            cache.update(X=Xtr, lines=made, text_s=time.perf_counter() - tic)
        return (*cache["lines"], cache["text_s"])

    def fit(data, passes):
        from vowpalwabbit import Workspace

        d, yte = data[0].shape[1], data[3]
        train, test, text_s = lines(data)
        tic = time.perf_counter()
        vw = Workspace("--loss_function logistic --quiet")
        for _ in range(passes):
            for line in train:
                vw.learn(line)
        wall = time.perf_counter() - tic
        pred = np.array([vw.predict(line) for line in test])
        # the weights of the columns (numeric feature names hash to themselves plus the
        # default namespace's 0) and of the constant feature
        coef = np.array([[vw.get_weight(vw.hash_feature(str(j), 0)) for j in range(d)]])
        intercept = np.array([vw.get_weight(VW_CONSTANT)])
        vw.finish()
        return {"wall_s": wall, "accuracy": float(np.mean((pred > 0) == (yte > 0))), "iterations": passes,
                "coef": coef, "intercept": intercept, "text_s": text_s}

    def warm(X, y):
        from vowpalwabbit import Workspace

        vw = Workspace("--loss_function logistic --quiet")
        for line in vw_lines(X[:50], y[:50]):
            vw.learn(line)
        vw.finish()

    return fit, warm


def methods_for(problem, threads=THREADS):
    """The contenders on ``problem`` (fastgd first); those not run carry ``skipped``.
    ``threads``: fastgd's ``n_jobs`` (its own thread pool is not one threadpoolctl
    limits; 0 or None: its default, every core)."""
    from sklearn.linear_model import LogisticRegression as SkLR
    from sklearn.linear_model import SGDClassifier

    from fastgd import LogisticRegression

    out = []
    n_jobs = threads or None
    fit, warm = _sklearn_like(lambda k: LogisticRegression(random_state=SEED, max_iter=k, n_jobs=n_jobs))
    out.append(Method(FASTGD, "fastgd", fit, _doubling(_default_max_iter(LogisticRegression)),
                      _default_max_iter(LogisticRegression), warm))
    sk_iter = _default_max_iter(SkLR)
    for solver in ("lbfgs", "newton-cholesky", "saga"):
        name = f'scikit-learn LogisticRegression(solver="{solver}")'
        fit, warm = _sklearn_like(lambda k, s=solver: SkLR(solver=s, max_iter=k, random_state=SEED))
        skipped = "not run on sparse data (it forms the d × d Hessian)" if solver == "newton-cholesky" and problem.sparse else ""
        out.append(Method(name, "peer", fit, _doubling(sk_iter), sk_iter, warm, skipped=skipped))
    sgd_iter = _default_max_iter(SGDClassifier)
    for average in (False, True):
        name = 'scikit-learn SGDClassifier(loss="log_loss"' + (", average=True)" if average else ")")
        fit, warm = _sklearn_like(
            lambda k, a=average: SGDClassifier(loss="log_loss", average=a, max_iter=k, random_state=SEED)
        )
        out.append(Method(name, "peer", fit, _doubling(sgd_iter), sgd_iter, warm))
    fit, warm = _sklearn_like(lambda k: SGDClassifier(max_iter=k, random_state=SEED))
    out.append(Method("scikit-learn SGDClassifier() (hinge)", "peer", fit, _doubling(sgd_iter), sgd_iter, warm))
    reason = vw_reason()
    if reason is None and not (problem.sparse and problem.classes == 2):
        reason = ("not run: dense rows would first have to be written out as its text format "
                  "(longer than any fit here); it runs on the binary sparse problems")
    fit, warm = _vw_fit() if reason is None else (None, None)
    out.append(Method("Vowpal Wabbit (--loss_function logistic)", "peer", fit, VW_PASSES, 1, warm, False,
                      reason or ""))
    reason = torch_reason()
    fit, warm = _torch_fit(problem) if reason is None else (None, None)
    out.append(Method(f"PyTorch Adam, batch {TORCH_BATCH}", "peer", fit, TORCH_EPOCHS, TORCH_EPOCHS[-1], warm, False,
                      reason or ""))
    return out


# ---------------------------------------------------------------------------- ladder
def _per_iteration(points):
    """``(setup, seconds per iteration)`` from the fits so far: from the two with the
    most iterations when their times grow, else all of a single fit's time per iteration
    (an over-estimate: it keeps the capped fit within the cap)."""
    done = sorted(points, key=lambda p: (p["iterations"], p["max_iter"]))
    last = done[-1]
    if len(done) >= 2:
        prev = done[-2]
        slope = (last["wall_s"] - prev["wall_s"]) / max(1, last["iterations"] - prev["iterations"])
        if slope > 0:
            per = max(slope, last["wall_s"] / (4 * max(1, last["iterations"])))
            return max(0.0, last["wall_s"] - per * last["iterations"]), per
    return 0.0, last["wall_s"] / max(1, last["iterations"])


def _affordable(points, seconds):
    """The most iterations one fit can run in ``seconds`` (from the fits so far)."""
    setup, per = _per_iteration(points)
    return int((seconds - setup) / per) if per > 0 else 10**9


class _Runner:
    """One method on one problem: its fits (``points``) and the seconds spent."""

    def __init__(self, method, data, cap_s, stream):
        self.method, self.data, self.cap_s, self.stream = method, data, cap_s, stream
        self.points, self.spent, self.fits = [], 0.0, {}

    def fit(self, k, label=""):
        fit = self.method.fit(self.data, k)
        self.spent += fit["wall_s"]
        point = {"max_iter": k, "wall_s": fit["wall_s"], "accuracy": fit["accuracy"],
                 "iterations": fit["iterations"], "default": False}
        self.points.append(point)
        self.fits[k] = fit
        if self.stream:
            self.stream(f"    max_iter={k}: {fmt_time(fit['wall_s'])}, accuracy {fit['accuracy']:.4f}, "
                        f"{fit['iterations']} iterations{label}")
        return point

    @property
    def left(self):
        return self.cap_s - self.spent


def whole_fit(method, data, cap_s, l2, l1=0.0, stream=None):
    """Phase 1 of a method on a problem: a fit of one iteration (to time one), then the
    default fit, its ``max_iter`` lowered to what the rest of ``cap_s`` affords (if
    lowered and the fit did not stop on its own, the row is **over cap**). Returns the
    row: ``points`` (``max_iter``, ``wall_s``, ``accuracy``, ``iterations``,
    ``default``), ``fit`` (the default fit, or the last one when over cap, with its
    ``objective``), ``over_cap``, ``spent_s``; ``_runner`` carries on in :func:`ladder`."""
    run = _Runner(method, data, cap_s, stream)

    def finished(point):  # stopped on its own before max_iter, or ran the default max_iter
        return point["iterations"] < point["max_iter"] or point["max_iter"] == method.default

    last = run.fit(method.rungs[0])
    default = last if finished(last) else None
    if default is None and method.stops and len(method.rungs) > 2 and 2 * last["wall_s"] < run.left:
        # a second short fit separates the set-up from the time per iteration
        last = run.fit(method.rungs[1])
        default = last if finished(last) else None
        first = run.points[0]
        if (default is None and len(method.rungs) > 3 and last["wall_s"] - first["wall_s"] < 0.2 * last["wall_s"]
                and 2 * last["wall_s"] < run.left):
            # set-up dominated (or noise): a third fit tells the time per iteration apart
            last = run.fit(method.rungs[2])
            default = last if finished(last) else None
    for _ in range(2):  # a second try only when the first one's estimate left much time unused
        if default is not None or run.left < (0.3 * cap_s if len(run.points) > 2 else 0.0):
            break
        k = min(method.default, _affordable(run.points, run.left))
        if k <= max(p["max_iter"] for p in run.points):
            break
        label = " (the default fit)" if k == method.default else f" (default fit, max_iter lowered from {method.default})"
        last = run.fit(k, label)
        default = last if finished(last) else None
    if default is not None:
        default["default"] = True
    fit = run.fits[last["max_iter"]]
    row = {
        "method": method.name, "kind": method.kind, "points": run.points, "cap_s": cap_s,
        "over_cap": default is None,
        "fit": {**last, "objective": objective(data[0], data[1], fit["coef"], fit["intercept"], l2, l1)},
        "_runner": run,
    }
    if "text_s" in fit:
        row["text_s"] = fit["text_s"]
    if "optimizer" in fit:
        row["optimizer"] = fit["optimizer"]
    row["spent_s"] = run.spent
    return row


PRUNE = 1.5  # a peer's ladder stops at rungs expected to take this × the fastest peer's time to target


def ladder(row, target, fastest_peer_s=None):
    """Phase 2: refit the method of ``row`` with its rungs in order (``max_iter`` 2, 4, 8,
    ... below its whole fit's; Vowpal Wabbit and PyTorch: their other pass or epoch
    counts) until one reaches ``target``, then halve the gap between the last fit short
    of it and the first reaching it (``max_iter`` 6, then 5 or 7, between 4 and 8), all
    within the rest of its cap. A peer's ladder also stops at a fit expected to take over
    :data:`PRUNE` × ``fastest_peer_s`` (it can no longer be the fastest);
    ``row["pruned_s"]`` then holds that expected time (``row["cut_s"]``: at the cap)."""
    run = row.pop("_runner")
    method = run.method
    done = {p["max_iter"] for p in run.points}

    def affordable(k):
        """Whether a fit of ``k`` fits the cap and, for a peer, the pruning bound; else
        records why not."""
        setup, per = _per_iteration(run.points)
        expected = setup + per * k
        if expected > run.left:
            row["cut_s"] = expected
            return False
        if method.kind == "peer" and fastest_peer_s is not None and expected > PRUNE * fastest_peer_s:
            row["pruned_s"] = expected
            return False
        return True

    for k in method.rungs:
        if any(reaches(p, target) and p["iterations"] < k for p in run.points):
            break  # a fit of fewer iterations (every rung below it run) reached the target
        if k in done or (method.stops and k >= row["fit"]["iterations"]):
            continue
        if not affordable(k) or reaches(run.fit(k), target):
            break
    # between the last fit short of the target and the first reaching it, halve the gap
    # (a doubling ladder alone would round every time to target up to a power of two)
    while "cut_s" not in row and "pruned_s" not in row:
        hits = [p["iterations"] for p in run.points if reaches(p, target)]
        if not hits:
            break
        hi = min(hits)
        misses = [p["iterations"] for p in run.points if not reaches(p, target) and p["iterations"] < hi]
        lo = max(misses) if misses else 0
        if hi - lo <= 1 or lo == 0:
            break
        if not affordable((lo + hi) // 2):
            break
        run.fit((lo + hi) // 2)
    row["points"] = sorted(run.points, key=lambda p: p["max_iter"])
    row["spent_s"] = run.spent
    return row


def reaches(point, target):
    """Whether a fit's test accuracy reaches ``target``."""
    return point["accuracy"] >= target - EPS


def time_to_target(row, target):
    """The wall-clock of ``row``'s quickest fit reaching ``target``, or None."""
    hits = [p["wall_s"] for p in row.get("points", []) if reaches(p, target)]
    return min(hits) if hits else None


def set_target(rows):
    """The target of a problem: the best test accuracy of the peers' whole fits − 0.2
    points; returns ``(target, best peer row)``."""
    peers = [r for r in rows if r["kind"] == "peer" and r.get("points")]
    best = max(peers, key=lambda r: r["fit"]["accuracy"])
    return best["fit"]["accuracy"] - TARGET_MARGIN, best


def judge(rows):
    """Every row's time to the target and the problem's verdict fields."""
    target, best = set_target(rows)
    peers = [r for r in rows if r["kind"] == "peer" and r.get("points")]
    for r in rows:
        r["time_to_target_s"] = time_to_target(r, target) if r.get("points") else None
    mine = next(r for r in rows if r["kind"] == "fastgd")
    reached = [r for r in peers if r["time_to_target_s"] is not None]
    fastest = min(reached, key=lambda r: r["time_to_target_s"])
    ours = mine["time_to_target_s"]
    ratio = ours / fastest["time_to_target_s"] if ours is not None else None
    return {
        "best_peer": best["method"], "best_peer_accuracy": best["fit"]["accuracy"], "target": target,
        "fastgd_s": ours, "fastest_peer": fastest["method"], "fastest_peer_s": fastest["time_to_target_s"],
        "ratio": ratio, "met": ratio is not None and ratio < 1.0,
    }


@contextlib.contextmanager
def thread_limit(threads):
    """Limit BLAS and OpenMP (threadpoolctl) and PyTorch to ``threads`` threads; ``None``
    or 0: leave every library's default."""
    if not threads:
        yield
        return
    from threadpoolctl import threadpool_limits

    torch = None
    if torch_reason() is None:
        import torch
    before = torch.get_num_threads() if torch is not None else None
    with threadpool_limits(limits=threads):
        if torch is not None:
            torch.set_num_threads(threads)
        try:
            yield
        finally:
            if torch is not None:
                torch.set_num_threads(before)


def race_problem(problem, cap_s, stream=print, data=None, threads=THREADS):
    """Race every method on ``problem``: ``{"problem", "label", "n_train", "n_test",
    "rows", "verdict", "wall_s"}``. ``threads``: see :func:`thread_limit`."""
    tic = time.perf_counter()
    data = make_problem(problem) if data is None else data
    Xtr, _, Xte, yte = data
    stream(f"{problem.label}: {Xtr.shape[0]:,} training, {Xte.shape[0]:,} test rows (cap {cap_s:g} s per method)")
    alpha, l2, l1 = fastgd_penalty(Xtr)
    methods = methods_for(problem, threads)
    rows = []
    with thread_limit(threads):
        warm_X, warm_y = Xte[:WARM_ROWS], yte[:WARM_ROWS]
        for m in methods:
            if not m.skipped:
                m.warm(warm_X, warm_y)
        for m in methods:
            if m.skipped:
                rows.append({"method": m.name, "kind": m.kind, "skipped": m.skipped})
                stream(f"  {m.name}: {m.skipped}")
                continue
            stream(f"  {m.name}: whole fit")
            try:
                rows.append(whole_fit(m, data, cap_s, l2, l1, stream=stream))
            except Exception as exc:  # noqa: BLE001 (one tool failing must not end the race)
                rows.append({"method": m.name, "kind": m.kind, "skipped": f"failed: {type(exc).__name__}: {exc}"})
                stream(f"    FAILED: {type(exc).__name__}: {exc}")
        target, best = set_target(rows)
        stream(f"  target {target:.4f} ({best['method']} {best['fit']['accuracy']:.4f} − 0.2 points); ladders:")
        # fastgd first, then the peers quickest to the target so far: the pruning bound
        # (the fastest peer's time) is then as low as it gets as early as it can
        run = [r for r in rows if "_runner" in r]
        run.sort(key=lambda r: (r["kind"] != "fastgd", time_to_target(r, target) or math.inf, r["spent_s"]))
        for r in run:
            known = [time_to_target(q, target) for q in rows if q["kind"] == "peer" and q.get("points") and q is not r]
            known = [t for t in known if t is not None]
            stream(f"  {r['method']}: ladder")
            try:
                ladder(r, target, min(known) if known else None)
            except Exception as exc:  # noqa: BLE001 (its whole fit stands; the ladder stops)
                r.pop("_runner", None)
                r["ladder_error"] = f"{type(exc).__name__}: {exc}"
                stream(f"    FAILED: {r['ladder_error']}")
    verdict = judge(rows)
    stream(f"  target {verdict['target']:.4f}: fastgd {fmt_time(verdict['fastgd_s'])}, fastest peer "
           f"{verdict['fastest_peer']} {fmt_time(verdict['fastest_peer_s'])}")
    return {"problem": asdict(problem), "label": problem.label, "n_train": int(Xtr.shape[0]),
            "n_test": int(Xte.shape[0]), "rows": rows, "verdict": verdict, "alpha": alpha,
            "wall_s": time.perf_counter() - tic}


def _load():
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "unknown"


def new_race(scale=1.0, d_scale=1.0, cap_s=None, threads=THREADS):
    """The record of a race, no problem run yet: ``{"scale", "d_scale", "cap_s",
    "threads", "alpha", "load_start", "problems": [], "wall_s", "load_end"}``."""
    cap = cap_for(scale) if cap_s is None else cap_s
    return {"scale": scale, "d_scale": d_scale, "cap_s": cap, "threads": threads, "alpha": fastgd_penalty()[0],
            "load_start": _load(), "problems": [], "wall_s": 0.0, "load_end": _load()}


def add_result(race, result):
    """Add one problem's :func:`race_problem` result to ``race`` (its time to the total)."""
    race["problems"].append(result)
    race["wall_s"] += result["wall_s"]
    race["load_end"] = _load()


def run_race(scale=1.0, d_scale=1.0, cap_s=None, stream=print, keys=None, threads=THREADS):
    """The whole race (:func:`new_race`'s record with every problem's result); ``keys``
    restricts it to some problems."""
    race = new_race(scale, d_scale, cap_s, threads)
    for problem in problems(scale, d_scale):
        if keys is None or problem.key in keys:
            add_result(race, race_problem(problem, race["cap_s"], stream=stream, threads=threads))
    return race


# ---------------------------------------------------------------------------- report
def _fit_cell(row):
    if "skipped" in row:
        return "—"
    fit = row["fit"]
    if row["over_cap"]:
        return f"**over cap** (> {row['cap_s']:g} s; not converged after {fit['iterations']})"
    return f"{fmt_time(fit['wall_s'])} ({fit['iterations']})"


def _ttt_cell(row):
    if "skipped" in row:
        return "—"
    t = row["time_to_target_s"]
    if t is None:
        return "not reached"
    hit = next(p for p in row["points"] if p["wall_s"] == t)
    cell = f"{fmt_time(t)} ({_point_label(hit)})"
    if "pruned_s" in row or "cut_s" in row:
        cell = f"≤ {cell}"  # its ladder stopped before reaching the target: fits between were not run
    return cell


def _point_label(point):
    """A fit of the ladder as the table names it: ``max_iter=k``, or ``whole fit``."""
    return "whole fit" if point["default"] else f"max_iter={point['max_iter']}"


def verdict_text(result):
    v = result["verdict"]
    if v["fastgd_s"] is None:
        return (f"**missed**: fastgd's default estimator does not reach {v['target']:.4f}; the fastest peer "
                f"({v['fastest_peer']}) does in {fmt_time(v['fastest_peer_s'])}")
    word = "met" if v["met"] else "**missed**"
    return (f"{word}: fastgd {fmt_time(v['fastgd_s'])} ÷ fastest peer ({v['fastest_peer']}) "
            f"{fmt_time(v['fastest_peer_s'])} = {fmt_ratio(v['ratio'])}")


def headline_lines(race):
    """The report's headline: one row per problem (target, fastgd's and the fastest
    peer's time to it, the ratio, the verdict)."""
    header = ["problem", "target (best peer − 0.2 points)", "fastgd time to target", "fastest peer",
              "its time to target", "fastgd ÷ fastest peer", "verdict"]
    rows = []
    judged = race.get("scale") == 1.0 and race.get("d_scale", 1.0) == 1.0
    for res in race["problems"]:
        v = res["verdict"]
        verdict = "met" if v["met"] else "**missed**"
        if not judged:  # target 10 is judged at the full sizes only
            verdict = f"{'met' if v['met'] else 'missed'} here; judged at scale 1 only"
        rows.append([
            res["label"], f"{v['target']:.4f} ({v['best_peer']} {v['best_peer_accuracy']:.4f})",
            fmt_time(v["fastgd_s"]) if v["fastgd_s"] is not None else "not reached", v["fastest_peer"],
            fmt_time(v["fastest_peer_s"]), fmt_ratio(v["ratio"]), verdict,
        ])
    return md_table(header, rows)


def detail_lines(result):
    """The table of one problem: one row per method."""
    header = ["method", "whole fit (iterations)", "test accuracy", "objective", "time to target",
              "fits (max_iter; time in all)", "note"]
    rows = []
    for r in result["rows"]:
        if "skipped" in r:
            rows.append([r["method"], "—", "—", "—", "—", "", r["skipped"]])
            continue
        fit = r["fit"]
        note = []
        if r["over_cap"]:
            note.append(f"accuracy and objective of its last fit (max_iter={fit['max_iter']})")
        if "pruned_s" in r:
            note.append(f"ladder stopped: its next fit (~{fmt_time(r['pruned_s'])}) would take over {PRUNE:g}× the "
                        "fastest peer's time to target")
        elif "cut_s" in r:
            note.append(f"ladder stopped at its cap (next fit ~{fmt_time(r['cut_s'])})")
        if "ladder_error" in r:
            note.append(f"ladder failed: {r['ladder_error']}")
        if "text_s" in r:
            note.append(f"writing the rows as text took {fmt_time(r['text_s'])}, not counted")
        if "optimizer" in r:
            note.append(f"optimizer_={r['optimizer']!r}")
        rows.append([
            r["method"], _fit_cell(r), f"{fit['accuracy']:.4f}", fmt_num(fit["objective"], 6), _ttt_cell(r),
            ", ".join("whole" if p["default"] else str(p["max_iter"]) for p in r["points"])
            + f" ({fmt_time(r['spent_s'])})", "; ".join(note),
        ])
    return md_table(header, rows)


def _threads_text(threads):
    if not threads:
        return "threads: every library's default (all cores)"
    return f"{threads} thread{'s' if threads != 1 else ''} per method (BLAS, OpenMP, PyTorch)"


def section_lines(race, plot=None, heading="##"):
    """The race's Markdown section (headline table, method, one table per problem)."""
    return head_lines(race, plot, heading) + detail_lines_all(race, heading)


def _alphas_text(race):
    """The problems' objective penalties, for the section's first paragraph."""
    parts = [f"{p['problem']['key']} {p.get('alpha', race['alpha']):.3g}" for p in race["problems"]]
    return "alpha: " + ", ".join(parts) if parts else f"alpha {race['alpha']:g}"


def head_lines(race, plot=None, heading="##"):
    """The start of the race's section: its title, the headline table and the plot."""
    lines = [
        f"{heading} Time-to-accuracy race: each tool's defaults, whole fits", "",
        (f"Scale {race['scale']:g} (rows); cap {race['cap_s']:g} s per method and problem; "
         f"{_threads_text(race.get('threads'))}; the whole race took "
         f"{fmt_time(race['wall_s'])} (load average {race['load_start']} at its start, {race['load_end']} at "
         f"its end). Every objective at the penalty fastgd's default fit chooses for the problem "
         f"({_alphas_text(race)}). How each number is "
         "measured: below the table and in [bench/README.md](../README.md)."),
        "",
    ]
    lines += headline_lines(race)
    lines += [""]
    if plot:
        lines += [f"![race accuracy against time]({plot})", ""]
    return lines


def detail_lines_all(race, heading="##"):
    """The rest of the race's section: how it measures and one table per problem."""
    lines = [f"{heading}# How the race measures", "", METHOD.strip(), ""]
    for res in race["problems"]:
        lines += [f"{heading}# {res['label']}", "",
                  (f"{res['n_train']:,} training and {res['n_test']:,} test rows; {fmt_time(res['wall_s'])} for this "
                   f"problem. Verdict: {verdict_text(res)}."), ""]
        lines += detail_lines(res) + [""]
    return lines


def plot(race, path):
    """Test accuracy against wall-clock seconds of the fit, one panel per problem: each
    method's ladder (its default fit as a star), the target as a dashed line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import NullFormatter

    results = race["problems"]
    if not results:
        return None
    cols = min(2, len(results))
    nrows = (len(results) + cols - 1) // cols
    fig, axes = plt.subplots(nrows, cols, figsize=(6.8 * cols, 4.2 * nrows + 1.2), squeeze=False)
    names = list(dict.fromkeys(r["method"] for res in results for r in res["rows"] if r.get("points")))
    colors = {name: f"C{i}" for i, name in enumerate(names)}
    handles = {}
    for ax, res in zip(axes.flat, results, strict=False):
        for r in res["rows"]:
            pts = r.get("points")
            if not pts:
                continue
            color = colors[r["method"]]
            ordered = sorted(pts, key=lambda p: (p["iterations"], p["max_iter"]))  # the ladder's order
            (line,) = ax.plot([p["wall_s"] for p in ordered], [p["accuracy"] for p in ordered], marker="o",
                              markersize=3, color=color, linewidth=2.4 if r["kind"] == "fastgd" else 1.1)
            handles.setdefault(r["method"], line)
            for p in pts:
                if p["default"]:
                    ax.plot([p["wall_s"]], [p["accuracy"]], marker="*", markersize=13, linestyle="none", color=color)
            if r["over_cap"]:
                last = ordered[-1]
                ax.annotate("over cap", (last["wall_s"], last["accuracy"]), fontsize=6, color=color,
                            xytext=(3, -8), textcoords="offset points")
        v = res["verdict"]
        handles["target"] = ax.axhline(v["target"], color="k", linestyle="--", linewidth=1)
        accs = [p["accuracy"] for r in res["rows"] for p in r.get("points", [])]
        ours = [p["accuracy"] for r in res["rows"] if r["kind"] == "fastgd" for p in r.get("points", [])]
        lo = min(max(min(accs), v["target"] - 0.06), max(ours or accs) - 0.01)  # fastgd's best always shown
        ax.set_ylim(lo - 0.005, max(accs) + 0.005)
        ax.set_xscale("log")
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel("wall-clock seconds of the whole fit")
        ax.set_ylabel("test accuracy")
        ax.set_title(f"{res['label']} — {verdict_text(res).split(':')[0].strip('*')}", fontsize=9)
    for ax in list(axes.flat)[len(results):]:
        ax.set_visible(False)
    labels = [n if n != "target" else "target: best peer's whole fit − 0.2 points" for n in handles]
    fig.legend(list(handles.values()), labels, loc="lower center", ncol=3, fontsize=7.5, frameon=False)
    fig.suptitle("Time-to-accuracy race: each method refitted with max_iter = 1, 2, 4, … (star: its whole default fit)",
                 fontsize=10)
    fig.tight_layout(rect=(0, 1.1 / (4.2 * nrows + 1.2), 1, 0.97))
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def jsonable(race):
    """``race`` without the NumPy scalars (for ``json.dumps``)."""
    return json.loads(json.dumps(race, default=lambda v: v.item() if hasattr(v, "item") else str(v)))


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m bench.race_bench",
        description="The time-to-accuracy race alone: print its Markdown section, write race.json and "
        "race_accuracy_vs_time.png.",
    )
    parser.add_argument("--scale", type=float, default=1.0,
                        help="fraction of each problem's rows (default 1: the full sizes; the cap scales with it)")
    parser.add_argument("--cap", type=float, default=None,
                        help=f"seconds per method and problem (default {CAP_S:g} × scale, at least {MIN_CAP_S:g})")
    parser.add_argument("--threads", type=int, default=THREADS,
                        help=f"threads of every method's BLAS, OpenMP and PyTorch (default {THREADS}; 0: the libraries' "
                        "defaults, every core)")
    parser.add_argument("--problems", default=None,
                        help="comma-separated subset of " + ", ".join(p.key for p in PROBLEMS))
    parser.add_argument("--out", type=pathlib.Path, default=pathlib.Path(__file__).resolve().parent / "results",
                        help="where race.json and the plot go (default: bench/results)")
    args = parser.parse_args(argv)
    keys = None if args.problems is None else set(args.problems.split(","))
    race = run_race(scale=args.scale, cap_s=args.cap, keys=keys, threads=args.threads,
                    stream=lambda line: print(line, flush=True))
    args.out.mkdir(parents=True, exist_ok=True)
    png = plot(race, args.out / PNG)
    (args.out / "race.json").write_text(json.dumps(jsonable(race), indent=1))
    print()
    print("\n".join(section_lines(race, png.name if png else None)))
    print(f"\nrace.json and the plot: {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
