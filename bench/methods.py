"""The timed methods: every fastgd backend and the peers, each run for whole epochs.

Every function here returns an :class:`EpochTiming`: seconds per epoch (set-up excluded),
the number of epochs the measured fit ran, and the objective and score of the weights it
ended with, computed the same way for every method by :func:`objective` and
:func:`score`. Speed is never reported without the result it bought.

How set-up is kept out of the epoch time:

* fastgd: the estimator records the seconds spent in its epochs (``time_curve_``); the
  validation of the input and the automatic step size are outside it.
* scikit-learn peers have no such record, so they are timed by difference: a fit of
  ``k`` epochs minus a fit of one epoch, divided by ``k - 1`` (the set-up is the same in
  both). Each is the fastest of its repeats.
* torch: the loop over epochs is timed directly (tensors are built before).
"""

import contextlib
import importlib
import io
import math
import re
import time
import warnings
from dataclasses import dataclass, field

import numpy as np

# the penalty every objective is evaluated with: fastgd's and scikit-learn's default alpha
ALPHA = 1e-4
MOMENTUM = 0.9
SEED = 0

# display names of the peers
SGD = "sklearn SGD"
MLP = "sklearn MLP"
TORCH = "torch SGD"


@dataclass
class EpochTiming:
    """One method on one case: seconds per epoch and what the epochs achieved."""

    method: str
    seconds_per_epoch: float
    epochs: int  # epochs run by the fit the objective and score come from
    objective: float  # objective() of the final weights
    score: float  # R^2 (linear) or accuracy (logistic) on the training data
    # (cumulative seconds in epochs, objective as reported during training) per epoch
    curve: list = field(default_factory=list)
    note: str = ""
    learning_rate: float = math.nan  # the step used (fastgd: learning_rate_)


def _weights_and_output(X, coef, intercept):
    """``(w, X w + b)`` in float64 for a single-output linear model."""
    w = np.asarray(coef, dtype=np.float64).reshape(-1)
    b = float(np.asarray(intercept, dtype=np.float64).reshape(-1)[0])
    return w, np.asarray(X, dtype=np.float64) @ w + b


def log_objective(X, y, coef, intercept, l2=ALPHA, l1=0.0):
    """fastgd's training objective of a logistic model (``LogisticRegression.objective``)
    in float64, for dense or CSR ``X``: mean log loss (one output, labels 0/1) or softmax
    cross-entropy (one row of ``coef`` per class, labels 0..K-1) +
    ``0.5 l2 ||W||^2 + l1 ||W||_1``."""
    W = np.atleast_2d(np.asarray(coef, dtype=np.float64))
    b = np.asarray(intercept, dtype=np.float64).reshape(-1)
    Z = np.asarray(X @ W.T, dtype=np.float64) + b
    y = np.asarray(y)
    if W.shape[0] == 1:
        z = Z[:, 0]
        loss = np.mean(np.logaddexp(0.0, -np.where(y > 0.5, z, -z)))  # the margin of the true class
    else:
        top = Z.max(axis=1)
        lse = top + np.log(np.exp(Z - top[:, None]).sum(axis=1))
        loss = np.mean(lse - Z[np.arange(Z.shape[0]), y])
    return float(loss + 0.5 * l2 * float(np.vdot(W, W)) + l1 * float(np.abs(W).sum()))


def objective(model, X, y, coef, intercept, alpha=ALPHA):
    """The training objective of fastgd's estimators (default penalty), in float64:
    ``mean loss + alpha / 2 * ||w||^2`` with the squared error ``(y - p)^2 / 2`` for
    "linear" and the logistic loss (labels 0/1; :func:`log_objective`) for "logistic"."""
    if model != "linear":
        return log_objective(X, y, coef, intercept, alpha)
    w, p = _weights_and_output(X, coef, intercept)
    return float(0.5 * np.mean((y - p) ** 2) + 0.5 * alpha * (w @ w))


def score(model, X, y, coef, intercept):
    """R^2 for "linear", accuracy (0/1 labels) for "logistic"."""
    _, p = _weights_and_output(X, coef, intercept)
    if model == "linear":
        return float(1.0 - np.sum((y - p) ** 2) / np.sum((y - np.mean(y)) ** 2))
    return float(np.mean((p > 0) == (y > 0.5)))


def _epochs_within(epochs, seconds_one, cap_s):
    """How many of ``epochs`` fit in ``cap_s`` at ``seconds_one`` each (at least 1)."""
    if seconds_one <= 0:
        return epochs
    return int(max(1, min(epochs, math.floor(cap_s / seconds_one))))


# ---------------------------------------------------------------------------- fastgd
def fastgd_estimator(model, **params):
    """A fastgd estimator for ``model`` with the benchmark's settings (the kernels'
    momentum SGD with momentum 0.9, exactly ``max_iter`` epochs, fixed seed) updated by
    ``params``."""
    from fastgd import LinearRegression, LogisticRegression

    cls = LinearRegression if model == "linear" else LogisticRegression
    settings = {"optimizer": "sgd", "momentum": MOMENTUM, "tol": None, "random_state": SEED}
    settings.update(params)
    return cls(**settings)


def time_fastgd(backend, model, X, y, batch, epochs, cap_s=10.0, min_s=0.3, repeats=3, params=None):
    """Seconds per epoch of fastgd's ``backend``: one probe fit of one epoch, then fits of
    up to ``epochs`` epochs (fewer if they would exceed ``cap_s``), repeated while the
    timed total is under ``min_s`` (at most ``repeats`` times); the fastest counts.
    ``params``: more estimator parameters (e.g. ``{"n_jobs": 1}``)."""
    extra = dict(params or {})

    def fit(k):
        return fastgd_estimator(model, backend=backend, batch_size=batch, max_iter=k, **extra).fit(X, y)

    est = fit(1)
    k = _epochs_within(epochs, est.time_curve_[-1], cap_s)
    best = est.time_curve_[-1] if k == 1 else math.inf
    spent = 0.0
    for _ in range(repeats if k > 1 else 0):
        est = fit(k)
        best = min(best, est.time_curve_[-1] / k)
        spent += est.time_curve_[-1]
        if spent >= min_s:
            break
    return EpochTiming(
        method=backend,
        seconds_per_epoch=best,
        epochs=est.n_iter_,
        objective=objective(model, X, y, est.coef_, est.intercept_),
        score=score(model, X, y, est.coef_, est.intercept_),
        curve=list(zip(est.time_curve_, est.loss_curve_)),
        learning_rate=float(est.learning_rate_),
    )


def epoch_stepper(model, backend, X, y, batch):
    """``(step, weights)`` for timing single epochs of a fastgd estimator: ``step()`` runs
    exactly what one epoch of ``fit`` runs (the row permutation and the kernel call),
    with the input validation and the automatic step size done once, here;
    ``weights()`` returns ``(coef, intercept)`` of the current state.

    It uses the benchmarks' hook (``fastgd.benchmarking.epoch_runner``); the
    pytest-benchmark files use it so that each round is one epoch and nothing else.
    """
    from fastgd.benchmarking import epoch_runner

    run = epoch_runner(fastgd_estimator(model, backend=backend, batch_size=batch, max_iter=1), X, y)
    return run.epoch, run.weights


# ---------------------------------------------------------------------- scikit-learn
def runs_batch(method, batch):
    """Whether ``method`` is timed at batch size ``batch``: scikit-learn's SGD is per
    sample (batch 1 only), its MLP takes the other batch sizes; every other method all."""
    if method == SGD:
        return batch == 1
    if method == MLP:
        return batch != 1
    return True


def sklearn_peer(name, model, batch, n):
    """``(factory, batch_label)``: ``factory(k)`` builds the peer set to run exactly ``k``
    epochs; None if the peer does not run this batch size.

    * ``sklearn SGD``: ``SGDRegressor`` / ``SGDClassifier(loss="log_loss")`` with their
      default steps; per sample, no momentum, so batch 1 only.
    * ``sklearn MLP``: ``MLPRegressor`` / ``MLPClassifier`` with no hidden layer (a linear
      or logistic model), ``solver="sgd"``, momentum 0.9 (not Nesterov), the given batch
      size and the default constant step 0.001; batch sizes above 1.
    """
    if not runs_batch(name, batch):
        return None
    if name == SGD:
        from sklearn.linear_model import SGDClassifier, SGDRegressor

        if model == "linear":
            return lambda k, verbose=0: SGDRegressor(max_iter=k, tol=None, random_state=SEED, verbose=verbose)
        return lambda k, verbose=0: SGDClassifier(
            loss="log_loss", max_iter=k, tol=None, random_state=SEED, verbose=verbose
        )
    if name == MLP:
        from sklearn.neural_network import MLPClassifier, MLPRegressor

        cls = MLPRegressor if model == "linear" else MLPClassifier
        size = n if batch == "full" else int(batch)

        def factory(k, verbose=0):
            return cls(
                hidden_layer_sizes=(),
                solver="sgd",
                momentum=MOMENTUM,
                nesterovs_momentum=False,
                batch_size=size,
                learning_rate="constant",
                max_iter=k,
                tol=0.0,
                n_iter_no_change=k + 1,  # never stop before max_iter
                shuffle=True,
                random_state=SEED,
                verbose=verbose,
            )

        return factory
    raise ValueError(f"unknown peer {name!r}")


def _peer_weights(est):
    if hasattr(est, "coefs_"):  # MLP without hidden layers: one (d, 1) layer
        return est.coefs_[0][:, 0], est.intercepts_[0]
    return est.coef_, est.intercept_


_SGD_LINE = re.compile(r"Avg\. loss: ([-+0-9.eEinfa]+)(?:, Objective: ([-+0-9.eEinfa]+))?")


def _sgd_curve(text):
    """Per-epoch objectives from SGDRegressor/SGDClassifier's verbose output (the mean
    loss over the epoch's samples, plus the penalty where scikit-learn prints it)."""
    values = []
    for m in _SGD_LINE.finditer(text):
        values.append(float(m.group(2) or m.group(1)))
    return values


def timed_fit(est, X, y):
    """Wall-clock seconds of ``est.fit(X, y)``, warnings silenced (ConvergenceWarning: the
    benchmarks cap the epochs on purpose)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tic = time.perf_counter()
        est.fit(X, y)
        return time.perf_counter() - tic


def _wall_fit(factory, k, X, y, verbose=0):
    est = factory(k, verbose=verbose)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        wall = timed_fit(est, X, y)
    return est, wall, out.getvalue()


def time_sklearn(name, model, X, y, batch, epochs, cap_s=10.0, min_s=0.3, repeats=3):
    """Seconds per epoch of a scikit-learn peer, by difference: (fastest fit of ``k``
    epochs - fastest fit of 1 epoch) / (k - 1), with ``k`` up to ``epochs`` (fewer if the
    fits would exceed ``cap_s``, but at least 2). None if the peer skips this batch."""
    factory = sklearn_peer(name, model, batch, X.shape[0])
    if factory is None:
        return None
    _, one, _ = _wall_fit(factory, 1, X, y)  # also loads and warms the peer
    k = max(2, _epochs_within(epochs, one, cap_s))
    ones, ks = [one], []
    for _ in range(repeats):
        _, wall1, _ = _wall_fit(factory, 1, X, y)
        est, wallk, text = _wall_fit(factory, k, X, y, verbose=int(name == SGD))
        ones.append(wall1)
        ks.append(wallk)
        if sum(ks) >= min_s:
            break
    per_epoch = (min(ks) - min(ones)) / (k - 1)
    note = ""
    if not per_epoch > 0:  # set-up noise larger than the epochs: fall back to the upper bound
        per_epoch = min(ks) / k
        note = "set-up included (the difference was not positive)"
    if name == SGD:
        values = _sgd_curve(text)
    else:
        values = list(est.loss_curve_)
    coef, intercept = _peer_weights(est)
    return EpochTiming(
        method=name,
        seconds_per_epoch=per_epoch,
        epochs=k,
        objective=objective(model, X, y, coef, intercept),
        score=score(model, X, y, coef, intercept),
        curve=[(per_epoch * (i + 1), v) for i, v in enumerate(values)],
        note=note,
    )


# ----------------------------------------------------------------------------- torch
def missing(module):
    """None if the optional peer ``module`` (``"torch"``, ``"vowpalwabbit"``) imports,
    else why it does not: every section skips that peer with this reason."""
    try:
        importlib.import_module(module)
    except Exception as exc:  # noqa: BLE001 (ImportError, or a broken installation)
        return f"{module} is not installed or does not import ({type(exc).__name__}: {exc})"
    return None


def torch_available():
    """None if torch imports, else the reason it does not."""
    return missing("torch")


def vw_lines(X, y):
    """Vowpal Wabbit's text format of the CSR rows ``X`` (labels -1/+1, features named by
    their column): what its peers learn from, made before any fit is timed."""
    X = X.tocsr()
    tokens = [f"{j}:{v:.6g}" for j, v in zip(X.indices.tolist(), X.data.tolist(), strict=True)]
    ptr = X.indptr.tolist()
    return [("1 | " if label else "-1 | ") + " ".join(tokens[ptr[i]:ptr[i + 1]])
            for i, label in enumerate(np.asarray(y).tolist())]


def time_torch(model, X, y, batch, epochs, learning_rate, cap_s=10.0):
    """Seconds per epoch of a plain PyTorch loop: ``torch.nn.Linear`` + ``torch.optim.SGD``
    (momentum 0.9, weight decay ``ALPHA`` on the weights only, the step fastgd's "auto"
    chose for the same batch size), mean squared error / 2 or the logistic loss, a new
    permutation each epoch (rows in order for full batch), on CPU in X's dtype."""
    import torch

    n, d = X.shape
    dtype = torch.float64 if X.dtype == np.float64 else torch.float32
    Xt = torch.from_numpy(np.ascontiguousarray(X))
    yt = torch.from_numpy(np.asarray(y, dtype=X.dtype))
    layer = torch.nn.Linear(d, 1, dtype=dtype)
    with torch.no_grad():
        layer.weight.zero_()
        layer.bias.zero_()
    optimizer = torch.optim.SGD(
        [
            {"params": [layer.weight], "weight_decay": ALPHA},
            {"params": [layer.bias], "weight_decay": 0.0},
        ],
        lr=learning_rate,
        momentum=MOMENTUM,
    )
    if model == "linear":
        def loss_fn(p, t):
            return 0.5 * torch.mean((p - t) ** 2)
    else:
        loss_fn = torch.nn.functional.binary_cross_entropy_with_logits
    size = n if batch == "full" else int(batch)
    generator = torch.Generator().manual_seed(SEED)
    curve = []
    elapsed = 0.0
    for _ in range(epochs):
        tic = time.perf_counter()
        order = torch.arange(n) if size >= n else torch.randperm(n, generator=generator)
        total = 0.0
        for start in range(0, n, size):
            rows = order[start:start + size]
            xb, tb = (Xt, yt) if size >= n else (Xt[rows], yt[rows])
            optimizer.zero_grad()
            loss = loss_fn(layer(xb)[:, 0], tb)
            loss.backward()
            optimizer.step()
            total += float(loss.detach()) * len(tb)
        elapsed += time.perf_counter() - tic
        curve.append((elapsed, total / n))
        if elapsed >= cap_s:
            break
    coef = layer.weight.detach().numpy()[0]
    intercept = layer.bias.detach().numpy()
    return EpochTiming(
        method=TORCH,
        seconds_per_epoch=elapsed / len(curve),
        epochs=len(curve),
        objective=objective(model, X, y, coef, intercept),
        score=score(model, X, y, coef, intercept),
        curve=curve,
        learning_rate=learning_rate,
    )
