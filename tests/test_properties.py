"""Property-based tests (hypothesis): random shapes, dtypes, parameters and data scales.

Each example draws a tiny problem (n <= 40 rows, d <= 6 features, at most 5 epochs):
one of the four target kinds (regression, multi-output regression, binary, multiclass),
so every loss through both estimators; float32 or float64; features of scale 10**k and
regression targets of scale 10**k for k in -6..6; every penalty, schedule, batch size
(1, small, larger than n, "full"), every update rule, averaging, momentum 0 or > 0,
Nesterov, fit_intercept, shuffle,
sample and class weights. The properties:

1. a fit either succeeds or raises a documented error (ValueError, TypeError or
   DivergenceError, and a failed fit leaves the estimator unfitted);
2. numba, cython and sparse (CSR) input on all three backends give the NumPy
   reference's iterates (and its errors);
3. whatever succeeded predicts finite values; probabilities lie in [0, 1] and rows sum
   to 1; the objective is finite; t_ counts the updates;
4. float32 and float64 fits agree to float32 precision on reasonably conditioned data;
5. k partial_fit calls equal a fit of k epochs; a full-batch epoch's loss_curve_ entry
   is the objective at its starting weights; integer sample weights equal repeated rows
   (full batch).

Reproducible by default: the "fastgd-ci" profile is derandomized (the same examples on
every run) and keeps no example database. ``HYPOTHESIS_PROFILE=dev`` runs ten times as
many random examples per test (an exploratory run; not the default).
"""

import math
import os
import warnings
from dataclasses import dataclass, field

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import HealthCheck, event, given, note, settings
from hypothesis import strategies as st
from sklearn.exceptions import ConvergenceWarning

from fastgd import LinearRegression, LogisticRegression
from fastgd._optimizers import KERNEL_OPTIMIZERS
from fastgd._run import DivergenceError
from fastgd._schedules import optimal_t0
from fastgd._smoothness import auto_learning_rate

from .conftest import ALL_BACKENDS, FAST_BACKENDS

# ------------------------------------------------------------------ profiles
for _name, _derandomize in (("fastgd-ci", True), ("fastgd-dev", False)):
    settings.register_profile(
        _name,
        derandomize=_derandomize,
        database=None,
        deadline=None,
        print_blob=True,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
_PROFILE = "fastgd-dev" if os.environ.get("HYPOTHESIS_PROFILE") == "dev" else "fastgd-ci"
_SCALE = 10 if _PROFILE == "fastgd-dev" else 1


def profile(max_examples):
    """This file's settings: the profile chosen above with ``max_examples`` (times ten in
    the dev profile). Applied per test, so other test files' settings are untouched."""
    return settings(settings.get_profile(_PROFILE), max_examples=max_examples * _SCALE, deadline=None)


EPS32 = float(np.finfo(np.float32).eps)
EPS64 = float(np.finfo(np.float64).eps)
KINDS = ["regression", "multioutput", "binary", "multiclass"]
SCHEDULES = ["auto", "constant", "invscaling", "optimal", "adaptive"]
PENALTIES = [None, "l2", "l1", "elasticnet"]
DOCUMENTED_ERRORS = (ValueError, TypeError, DivergenceError)


# ------------------------------------------------------------------ strategies
@dataclass
class Problem:
    kind: str
    X: np.ndarray
    y: np.ndarray
    sample_weight: np.ndarray | None
    params: dict = field(default_factory=dict)

    @property
    def cls(self):
        return LinearRegression if self.kind in ("regression", "multioutput") else LogisticRegression

    def estimator(self, **overrides):
        return self.cls(**{**self.params, **overrides})

    def __repr__(self):  # what hypothesis prints for a failing example
        with np.printoptions(precision=17, threshold=10_000):
            return (
                f"Problem(kind={self.kind!r}, X={self.X.dtype}{self.X.shape}={self.X!r}, "
                f"y={self.y!r}, sample_weight={self.sample_weight!r}, params={self.params!r})"
            )


def _data(draw, kind, dtype, n, d, x_exp, y_exp):
    seed = draw(st.integers(0, 2**32 - 1), label="seed")
    rng = np.random.default_rng(seed)
    sparsity = draw(st.sampled_from([0.0, 0.5, 0.8]), label="sparsity")
    Z = rng.standard_normal((n, d))
    Z[rng.random((n, d)) < sparsity] = 0.0
    # X is made in its own dtype and the targets representable in it, so that a float32
    # problem and its float64 copy are the same problem
    X = (Z * 10.0**x_exp).astype(dtype)
    k = {"regression": 1, "multioutput": 2, "binary": 1, "multiclass": draw(st.sampled_from([3, 4]))}[kind]
    W = rng.standard_normal((k, d)) * 2
    S = Z @ W.T + rng.standard_normal(k) * 0.5 + rng.standard_normal((n, k)) * 0.3
    if kind == "regression":
        y = (S[:, 0] * 10.0**y_exp).astype(dtype).astype(np.float64)
    elif kind == "multioutput":
        y = (S * 10.0**y_exp).astype(dtype).astype(np.float64)
    elif kind == "binary":
        labels = draw(st.sampled_from([(0, 1), (-1, 1), ("no", "yes")]), label="labels")
        y = np.where(S[:, 0] > 0, labels[1], labels[0])
    else:
        y = np.argmax(S, axis=1) + 10
    return X, y, rng


@st.composite
def problems(
    draw,
    kinds=tuple(KINDS),
    dtypes=(np.float64, np.float32),
    n=(1, 40),
    d=(1, 6),
    x_exps=(-6, 6),
    y_exps=(-6, 6),
    schedules=tuple(SCHEDULES),
    momenta=(0.0, 0.5, 0.9, 0.99),
    optimizers=tuple(KERNEL_OPTIMIZERS),
    eta0_exps=(-6, 0),
    allow_invalid=False,
    tol=True,
):
    kind = draw(st.sampled_from(kinds), label="kind")
    dtype = draw(st.sampled_from(dtypes), label="dtype")
    n = draw(st.integers(*n), label="n")
    d = draw(st.integers(*d), label="d")
    x_exp = draw(st.integers(*x_exps), label="feature scale exponent")
    y_exp = draw(st.integers(*y_exps), label="target scale exponent") if kind in ("regression", "multioutput") else 0
    X, y, rng = _data(draw, kind, dtype, n, d, x_exp, y_exp)

    weights = draw(st.sampled_from([None, "uniform", "integer"]), label="sample_weight")
    if weights is None:
        sw = None
    elif weights == "uniform":
        sw = rng.uniform(0.0, 3.0, n).astype(dtype).astype(np.float64)
        sw[rng.random(n) < 0.2] = 0.0
        if not sw.any():
            sw[0] = 1.0
    else:
        sw = rng.integers(0, 4, n).astype(np.float64)
        if not sw.any():
            sw[0] = 1.0

    learning_rate = draw(st.sampled_from(schedules), label="learning_rate")
    penalty = draw(st.sampled_from(PENALTIES), label="penalty")
    alpha = draw(st.sampled_from([0.0, 1e-6, 1e-4, 1e-2, 1.0]), label="alpha")
    if learning_rate == "optimal" and alpha == 0.0 and not allow_invalid:
        alpha = 1e-2
    momentum = draw(st.sampled_from(momenta), label="momentum")
    optimizer = draw(st.sampled_from(optimizers), label="optimizer")
    nesterov = (draw(st.booleans(), label="nesterov") if ((momentum > 0 and optimizer == "sgd") or allow_invalid)
                else False)
    average = draw(st.sampled_from([False, True, 1, 30]), label="average")
    batch_size = draw(
        st.one_of(st.just(1), st.integers(2, 8), st.just("full"), st.integers(41, 64)), label="batch_size"
    )
    params = {
        "learning_rate": learning_rate,
        "eta0": 10.0 ** draw(st.integers(*eta0_exps), label="eta0 exponent"),
        "power_t": draw(st.sampled_from([0.25, 0.5, 1.0]), label="power_t"),
        "penalty": penalty,
        "alpha": alpha,
        "l1_ratio": draw(st.sampled_from([0.0, 0.15, 0.5, 1.0]), label="l1_ratio"),
        "batch_size": batch_size,
        "momentum": momentum,
        "nesterov": nesterov,
        "optimizer": optimizer,
        "average": average,
        "beta_1": draw(st.sampled_from([0.0, 0.9]), label="beta_1"),
        "beta_2": draw(st.sampled_from([0.9, 0.999]), label="beta_2"),
        "epsilon": 10.0 ** draw(st.integers(-8, -1), label="epsilon exponent"),
        "fit_intercept": draw(st.booleans(), label="fit_intercept"),
        "shuffle": draw(st.booleans(), label="shuffle"),
        "max_iter": draw(st.integers(1, 5), label="max_iter"),
        "tol": draw(st.sampled_from([None, 1e-4]), label="tol") if tol else None,
        "n_iter_no_change": draw(st.integers(1, 2), label="n_iter_no_change"),
        "random_state": draw(st.integers(0, 2**16), label="random_state"),
    }
    if kind in ("binary", "multiclass"):
        class_weight = draw(st.sampled_from([None, "balanced", "dict"]), label="class_weight")
        if class_weight == "dict":
            classes = np.unique(y).tolist()
            class_weight = {c: float(w) for c, w in zip(classes, rng.uniform(0.5, 2.0, len(classes)))}
        params["class_weight"] = class_weight
    return Problem(kind, X, y, sw, params)


def fit(problem, backend="numpy", sparse=False, X=None, **overrides):
    """Fit ``problem`` (sparse: on its CSR matrix); returns the estimator or the documented
    exception it raised. Anything else propagates and fails the test."""
    est = problem.estimator(backend=backend, **overrides)
    X = problem.X if X is None else X
    X = sp.csr_matrix(X) if sparse else X
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        try:
            return est.fit(X, problem.y, sample_weight=problem.sample_weight)
        except DOCUMENTED_ERRORS as exc:
            return exc


def describe_error(exc):
    """A short label for the statistics: the error type and its message's first words."""
    return f"{type(exc).__name__}: {' '.join(str(exc).split()[:6])}"


def max_abs(a):
    a = np.asarray(a, dtype=np.float64)
    return float(np.abs(a).max()) if a.size else 0.0


def n_updates(n, batch_size, epochs):
    b = n if batch_size == "full" else min(int(batch_size), n)
    return epochs * math.ceil(n / b)


# ------------------------------------------------------------------ checks on a fitted model
def check_fitted(est, problem):
    """Property 3: a successful fit is finite and usable, whatever the data."""
    X, dtype = problem.X, problem.X.dtype
    assert est.coef_.dtype == dtype
    assert np.all(np.isfinite(est.coef_)) and np.all(np.isfinite(est.intercept_))
    assert 1 <= est.n_iter_ <= problem.params["max_iter"]
    assert len(est.loss_curve_) == est.n_iter_
    assert np.all(np.isfinite(est.loss_curve_)) and min(est.loss_curve_) >= 0.0
    if not problem.params.get("early_stopping"):
        assert est.t_ == n_updates(X.shape[0], problem.params["batch_size"], est.n_iter_)
    if not problem.params["fit_intercept"]:
        assert np.all(est.intercept_ == 0.0)
    if problem.params.get("early_stopping"):  # (were NaN with one validation row)
        assert len(est.validation_scores_) == est.n_iter_
        assert np.all(np.isfinite(est.validation_scores_))
    objective = est.objective(X, problem.y, sample_weight=problem.sample_weight)
    assert np.isfinite(objective) and objective >= 0.0
    pred = est.predict(X)
    if problem.cls is LinearRegression:
        assert pred.shape == problem.y.shape
        assert np.all(np.isfinite(pred)), "finite weights gave non-finite predictions"
        return
    classes = est.classes_
    assert set(np.unique(pred)) <= set(classes.tolist())
    z = est.decision_function(X)
    assert z.shape == ((X.shape[0],) if len(classes) == 2 else (X.shape[0], len(classes)))
    assert np.all(np.isfinite(z)), "finite weights gave non-finite decision values"
    proba = est.predict_proba(X)
    assert proba.shape == (X.shape[0], len(classes))
    assert np.all(np.isfinite(proba))
    assert np.all((proba >= 0.0) & (proba <= 1.0))
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=0, atol=8 * np.finfo(proba.dtype).eps * len(classes))
    # the most probable class is the predicted one, unless two are (nearly) tied
    top2 = np.sort(proba, axis=1)[:, -2:]
    clear = top2[:, 1] - top2[:, 0] > 1e-5
    np.testing.assert_array_equal(classes[np.argmax(proba, axis=1)][clear], pred[clear])
    log_proba = est.predict_log_proba(X)
    assert not np.any(np.isnan(log_proba)) and np.all(log_proba <= 0.0)


# ------------------------------------------------------------------ property 1 (and 3)
@profile(max_examples=150)
@given(
    problem=problems(allow_invalid=True),
    backend=st.sampled_from(ALL_BACKENDS),
    sparse=st.booleans(),
    early_stopping=st.booleans(),
)
def test_fit_succeeds_or_raises_a_documented_error(problem, backend, sparse, early_stopping):
    """Property 1 and 3: anything but ValueError/TypeError/DivergenceError fails the test
    (it propagates from ``fit``); a failed fit leaves no fitted attribute behind; a
    successful one predicts finite values."""
    if early_stopping:
        problem.params.update(early_stopping=True, validation_fraction=0.25)
    est = problem.estimator(backend=backend)
    X = sp.csr_matrix(problem.X) if sparse else problem.X
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        try:
            est.fit(X, problem.y, sample_weight=problem.sample_weight)
        except DOCUMENTED_ERRORS as exc:
            event(describe_error(exc))
            assert str(exc), "an error without a message"
            assert not hasattr(est, "coef_") and not hasattr(est, "n_features_in_")
            return
    event("fitted")
    check_fitted(est, problem)


# ------------------------------------------------------------------ property 2
VARIANTS = [(b, False) for b in FAST_BACKENDS] + [(b, True) for b in ALL_BACKENDS]


def output_scale(est, problem):
    """The scale of the model's outputs, in their units: the largest ``sum_j |x_ij w_kj|
    + |b_k|`` over the training rows (what a prediction's rounding error is relative to),
    at least the largest target for a regressor and 1 (a logit of order one) for a
    classifier."""
    W = np.atleast_2d(np.asarray(est.coef_, dtype=np.float64))
    b = np.abs(np.atleast_1d(np.asarray(est.intercept_, dtype=np.float64)))
    X = np.abs(problem.X.astype(np.float64))
    scale = float(np.max(X @ np.abs(W).T + b))
    if problem.cls is LinearRegression:
        return max(scale, max_abs(problem.y))
    return max(scale, 1.0)


def assert_same_iterates(ref, other, problem, rtol, label):
    """Same iterates up to rounding, judged in the units of the outputs: with ``S`` the
    output scale (``output_scale``) of the reference, the intercepts may differ by
    ``rtol * S``, the coefficient of feature j by ``rtol * S / max_i |x_ij|`` (the same
    change in the outputs) and each epoch's objective by ``rtol`` relative to it or to
    ``S**2`` (squared error) / ``S`` (log losses), the objective's own units. Rounding
    errors in a dot product are relative to its terms, not to its (possibly cancelled)
    value, hence a scale from the terms rather than from each coordinate."""
    assert other.n_iter_ == ref.n_iter_, label
    assert other.t_ == ref.t_, label
    S = output_scale(ref, problem)
    col = np.abs(problem.X.astype(np.float64)).max(axis=0)
    col[col == 0] = col.max() if col.max() > 0 else 1.0
    coef_tol = rtol * S / col
    excess = np.abs(np.asarray(other.coef_, np.float64) - ref.coef_) / coef_tol
    assert np.all(excess <= 1.0), (
        f"{label} coef_ differs by up to {excess.max():.3g} x its tolerance (S={S:.3g}, rtol={rtol:g}):\n"
        f"{other.coef_!r}\nreference\n{ref.coef_!r}"
    )
    np.testing.assert_allclose(other.intercept_, ref.intercept_, rtol=0, atol=rtol * S, err_msg=f"{label} intercept_")
    loss_unit = S**2 if problem.cls is LinearRegression else S
    np.testing.assert_allclose(
        other.loss_curve_, ref.loss_curve_, rtol=rtol, atol=rtol * loss_unit, err_msg=f"{label} loss_curve_"
    )


def overshoot(problem):
    """``max(1, eta_1 * L_max / (1 - mu))``: how far the first (largest) step goes beyond the step
    that is stable for every single row, ``1 / L_max`` with ``L_max = c max_i s_i
    ||(x_i, 1)||^2 + l2`` (``c`` the loss curvature, ``s`` the normalised sample times
    class weights). That is what "auto" computes for batch_size=1 without momentum, so
    it is read from such a fit. A step with ``eta L > 1`` multiplies perturbations (and
    rounding errors) along the row by up to ``eta L``; a stable step does not."""
    probe = fit(problem, "numpy", learning_rate="auto", batch_size=1, momentum=0.0, nesterov=False,
                max_iter=1, tol=None, early_stopping=False)
    if isinstance(probe, Exception):
        return 1.0
    rule = problem.params["learning_rate"]
    if rule == "auto":
        first = fit(problem, "numpy", max_iter=1, tol=None)
        eta = first.learning_rate_ if not isinstance(first, Exception) else probe.learning_rate_
    elif rule == "optimal":
        eta = 1.0 / (problem.params["alpha"] * optimal_t0(problem.params["alpha"]))
    else:
        eta = problem.params["eta0"]
    # heavy ball and Nesterov: the effective step is eta / (1 - mu)
    return max(1.0, eta / probe.learning_rate_ / (1.0 - problem.params["momentum"]))


# the compiled backends and sparse input may differ from the NumPy reference by this
# many epsilons (of the data's dtype) per update, in output units (see
# assert_same_iterates), times the overshoot of the step: each update rounds differently
# (other summation orders, fused multiply-adds), a few eps of the output scale; the
# errors add up over the updates, and a step beyond 1/L_max multiplies them by up to
# eta L_max / (1 - mu) (overshoot). Measured worst over ~2500 random examples: 15 eps in
# all (not per update) after dividing by the overshoot; median below 0.1. Where the step
# overshoots, the amplification compounds over updates (the exploratory run found 118
# eps per update and unit of overshoot: softmax, "optimal" with alpha 1e-6, momentum),
# so there the tolerance is at least sqrt(eps): half the digits.
BACKEND_EPS_PER_UPDATE = 64.0


def stop_was_a_near_tie(ref, other, problem, rtol):
    """Whether the stopping rule (``tol`` over ``n_iter_no_change`` epochs) was within
    rounding of its threshold at some epoch both fits ran: the only legitimate reason for
    two fits that agree to ``rtol`` to stop after different numbers of epochs."""
    tol = problem.params["tol"]
    if tol is None:
        return False
    S = output_scale(ref, problem)
    unit = S**2 if problem.cls is LinearRegression else S
    curve = np.asarray(ref.loss_curve_)
    for e in range(1, min(ref.n_iter_, other.n_iter_)):
        margin = curve[e] - (curve[:e].min() - tol)
        if abs(margin) <= 2 * rtol * max(abs(curve[e]), unit):
            return True
    return False


@profile(max_examples=120)
@given(problem=problems())
def test_backends_and_sparse_input_match_the_numpy_reference(problem):
    """Property 2: numba and cython on dense input, and all three backends on the same
    data as a CSR matrix, give the dense NumPy reference's iterates (``coef_``,
    ``intercept_``, ``loss_curve_``, ``t_``, ``n_iter_``) up to rounding, and raise the
    error it raises. Differences allowed: BACKEND_EPS_PER_UPDATE eps per update in
    output units, times the step's overshoot (at least sqrt(eps) when it overshoots); a different stopping epoch only where the ``tol`` rule was a near tie
    (then the runs part ways legitimately and only their common epochs are compared)."""
    ref = fit(problem, "numpy")
    note(f"reference: {ref!r}")
    event("reference " + (describe_error(ref) if isinstance(ref, Exception) else "fitted"))
    eps = float(np.finfo(problem.X.dtype).eps)
    amplification = overshoot(problem)
    for backend, sparse in VARIANTS:
        label = f"{backend}{' sparse' if sparse else ''}"
        other = fit(problem, backend, sparse=sparse)
        if isinstance(ref, Exception) or isinstance(other, Exception):
            assert type(other) is type(ref), f"{label}: {other!r} where the reference gave {ref!r}"
            continue
        rtol = BACKEND_EPS_PER_UPDATE * eps * max(ref.t_, 1) * amplification
        if amplification > 1.0:
            # overshooting steps (nonlinear losses especially) can amplify rounding
            # over many updates, beyond any per-update bound: there, half the digits
            rtol = max(rtol, math.sqrt(eps))
        if other.n_iter_ != ref.n_iter_ and stop_was_a_near_tie(ref, other, problem, rtol):
            event("stopped at a near tie of the tol rule")
            common = min(ref.n_iter_, other.n_iter_)
            np.testing.assert_allclose(other.loss_curve_[:common], ref.loss_curve_[:common], rtol=rtol)
            continue
        assert_same_iterates(ref, other, problem, rtol, label)


# ------------------------------------------------------------------ property 4
def stable_eta0(problem, fraction):
    """``fraction`` of the step "auto" would take on this problem (1/L for its batch
    size and momentum): a constant step that is stable by construction."""
    X = problem.X.astype(np.float64)
    sw = np.ones(X.shape[0]) if problem.sample_weight is None else problem.sample_weight
    sw = sw * (X.shape[0] / sw.sum())
    est = problem.estimator()
    loss = {"regression": 1.0, "multioutput": 1.0, "binary": 0.25, "multiclass": 0.5}[problem.kind]
    l2 = {None: 0.0, "l2": 1.0, "l1": 0.0, "elasticnet": 1.0 - est.l1_ratio}[est.penalty] * est.alpha
    b = X.shape[0] if est.batch_size == "full" else min(est.batch_size, X.shape[0])
    step = auto_learning_rate(
        X, sw, fit_intercept=est.fit_intercept, curvature=loss, l2=l2, batch_size=b, momentum=est.momentum
    )
    return fraction * step


def float32_error(problem, backend):
    """Fit the float32 problem and its exact float64 copy; return (float32 fit, float64
    fit, the largest difference in output units divided by the output scale)."""
    f32 = fit(problem, backend)
    f64 = fit(problem, backend, X=problem.X.astype(np.float64))
    if isinstance(f32, Exception) or isinstance(f64, Exception):
        return f32, f64, None
    S = output_scale(f64, problem)
    col = np.abs(problem.X.astype(np.float64)).max(axis=0)
    err_coef = np.max(np.abs(np.asarray(f32.coef_, np.float64) - f64.coef_) * col) / S
    err_b = max_abs(np.asarray(f32.intercept_, np.float64) - f64.intercept_) / S
    return f32, f64, max(err_coef, err_b)


# the float32 fit may differ from the float64 fit by this many float32 epsilons per
# update, in output units (relative to output_scale): each update rounds its terms to
# float32 (a relative error of a few eps on quantities of the output scale, the step
# being stable), and a stable iteration does not amplify earlier errors, so they add up
# at most linearly in the number of updates. Measured worst over ~1500 random examples:
# 1.4 eps per update (median 0.03).
F32_EPS_PER_UPDATE = 8.0


@profile(max_examples=60)
@given(
    problem=problems(
        dtypes=(np.float32,), schedules=("auto", "constant", "invscaling", "adaptive"), momenta=(0.0, 0.5, 0.9), tol=False,
        optimizers=("sgd",),
    ),
    fraction=st.sampled_from([0.1, 0.5, 1.0]),
    backend=st.sampled_from(ALL_BACKENDS),
)
def test_float32_fit_agrees_with_float64_fit_to_float32_precision(problem, fraction, backend):
    """Property 4. The float32 problem and its exact float64 copy (X and the targets are
    representable in float32, so both fits solve the same problem), on reasonably
    conditioned runs: every feature and target scale, but a stable step (a fraction of
    1/L, as "auto" computes it, for the constant schedules), momentum at most 0.9 and at
    most 5 epochs. Momentum SGD only: the bound rests on its stable step (the adaptive
    rules divide by their accumulators' square roots, which float32 rounds differently
    near zero; ``tests/test_optimizers.py`` compares their float32 and float64 fits)."""
    problem.params["eta0"] = stable_eta0(problem, fraction)
    f32, f64, err = float32_error(problem, backend)
    if err is None:  # the same documented error (a single class) for both
        assert type(f32) is type(f64) and not isinstance(f64, DivergenceError), (f32, f64)
        event(describe_error(f64))
        return
    assert f32.coef_.dtype == np.float32 and f64.coef_.dtype == np.float64
    assert f32.t_ == f64.t_ and f32.n_iter_ == f64.n_iter_
    bound = F32_EPS_PER_UPDATE * EPS32 * f64.t_
    note(f"error {err:.3g} = {err / EPS32:.3g} eps32 over {f64.t_} updates, bound {bound:.3g}")
    assert err <= bound
    np.testing.assert_allclose(f32.loss_curve_, f64.loss_curve_, rtol=bound, atol=bound * (
        output_scale(f64, problem) ** 2 if problem.cls is LinearRegression else output_scale(f64, problem)
    ))
    event("fitted")


# ------------------------------------------------------------------ property 5
@profile(max_examples=60)
@given(problem=problems(tol=False), backend=st.sampled_from(ALL_BACKENDS), sparse=st.booleans())
def test_repeated_partial_fit_equals_fit(problem, backend, sparse):
    """k partial_fit calls on the same rows equal ``fit(max_iter=k, tol=None)``: the
    velocity, update counter, step size and permutation stream carry over (documented
    in ``partial_fit``). Same backend, same operations: bit for bit."""
    if problem.params.get("class_weight") == "balanced":  # not supported by partial_fit
        problem.params["class_weight"] = None
    k = problem.params["max_iter"]
    full = fit(problem, backend, sparse=sparse)
    if isinstance(full, Exception):
        # partial_fit judges divergence per call (see test_divergence_within_one_call_*)
        event(describe_error(full))
        return
    est = problem.estimator(backend=backend)
    X = sp.csr_matrix(problem.X) if sparse else problem.X
    classes = np.unique(problem.y) if problem.cls is LogisticRegression else None
    for _ in range(k):
        est.partial_fit(X, problem.y, classes=classes, sample_weight=problem.sample_weight)
    np.testing.assert_array_equal(est.coef_, full.coef_)
    np.testing.assert_array_equal(est.intercept_, full.intercept_)
    np.testing.assert_array_equal(est.loss_curve_, full.loss_curve_)
    np.testing.assert_array_equal(est._state, full._state)  # the velocity too
    assert est.t_ == full.t_ and est.n_iter_ == full.n_iter_ == k
    assert est.learning_rate_ == full.learning_rate_
    event("fitted")


@profile(max_examples=50)
@given(problem=problems(tol=False, dtypes=(np.float64,)), backend=st.sampled_from(ALL_BACKENDS))
def test_full_batch_loss_curve_is_the_objective_at_each_epochs_start(problem, backend):
    """Documented in ``loss_curve_``: for full batch, entry k is exactly the objective at
    the weights epoch k starts from, i.e. ``objective()`` of the fit of k epochs (the
    iterate's: with ``average``, ``objective()`` evaluates the reported average)."""
    k = problem.params["max_iter"]
    problem.params.update(batch_size="full", average=False)
    longer = fit(problem, backend, max_iter=k + 1)
    shorter = fit(problem, backend)
    if isinstance(longer, Exception) or isinstance(shorter, Exception):
        event(describe_error(longer if isinstance(longer, Exception) else shorter))
        return
    assert longer.n_iter_ == k + 1
    np.testing.assert_array_equal(longer.loss_curve_[:k], shorter.loss_curve_)
    objective = shorter.objective(problem.X, problem.y, sample_weight=problem.sample_weight)
    S = output_scale(shorter, problem)
    unit = S**2 if problem.cls is LinearRegression else S
    np.testing.assert_allclose(longer.loss_curve_[k], objective, rtol=1e-12, atol=1e-12 * unit)
    event("fitted")


@profile(max_examples=50)
@given(
    problem=problems(tol=False, dtypes=(np.float64,), schedules=("constant", "invscaling", "optimal", "adaptive")),
    backend=st.sampled_from(ALL_BACKENDS),
)
def test_integer_sample_weights_equal_repeated_rows_in_full_batch(problem, backend):
    """The objective is the weighted *mean* loss, so (full batch, where the row order
    cannot matter) weight w on a row is the row repeated w times. Not with "auto", whose
    step is rounded to 8 digits and so may differ in its last digit, nor with an integer
    ``average``, which counts samples (the repeated rows are more samples)."""
    rng = np.random.default_rng(problem.params["random_state"])
    n = problem.X.shape[0]
    # zero weights only for regression: a class whose rows all weigh zero is still
    # among classes_ of the weighted fit, but not of the repeated rows
    w = rng.integers(0 if problem.cls is LinearRegression else 1, 4, n)
    w[rng.integers(n)] = 1  # at least one row
    problem.sample_weight = w.astype(np.float64)
    problem.params.update(batch_size="full")
    if problem.params["average"] not in (False, True):  # counts samples: not the same
        problem.params["average"] = True
    if problem.params.get("class_weight") == "balanced":  # counts rows: not the same
        problem.params["class_weight"] = None
    weighted = fit(problem, backend)
    repeated = fit(
        Problem(problem.kind, np.repeat(problem.X, w, axis=0), np.repeat(problem.y, w, axis=0), None, problem.params),
        backend,
    )
    if isinstance(weighted, Exception) or isinstance(repeated, Exception):
        # a single class among the weighted rows is one in both
        assert type(weighted) is type(repeated), (weighted, repeated)
        event(describe_error(weighted))
        return
    assert_same_iterates(weighted, repeated, problem, 1e-10, "repeated rows")
    event("fitted")


# ------------------------------------------------------------------ predict_proba at any scale
@profile(max_examples=60)
@given(
    n_classes=st.integers(2, 5),
    dtype=st.sampled_from([np.float32, np.float64]),
    exponent=st.integers(-3, 30),
    seed=st.integers(0, 2**32 - 1),
)
def test_predict_proba_rows_sum_to_one_at_any_decision_scale(n_classes, dtype, exponent, seed):
    """Rows at 10**exponent times points where the two leading classes tie (no
    intercept: the tie holds along the ray), so the decision values are huge and
    the probabilities split between two classes. Found by the fit property above:
    ``z - (max + logsumexp)`` rounded the log-sum away next to a large max (float32
    rows summed to 0.74 at |z| ~ 1e7); now the shift comes first."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((30, 3)).astype(dtype)
    y = np.arange(30) % n_classes
    est = LogisticRegression(fit_intercept=False, max_iter=2, tol=None, backend="numpy").fit(X, y)
    z = est.decision_function(X)
    W = np.atleast_2d(est.coef_).astype(np.float64)
    Q = rng.standard_normal((8, 3))
    if n_classes > 2:  # project onto the plane where classes 0 and 1 tie
        a = W[0] - W[1]
        Q -= np.outer(Q @ a, a) / (a @ a)
    else:  # the decision boundary itself
        Q -= np.outer(Q @ W[0], W[0]) / (W[0] @ W[0])
    Q = np.vstack([Q, rng.standard_normal((4, 3))]) * 10.0**exponent
    Q = Q.astype(dtype)
    z = est.decision_function(Q)
    proba = est.predict_proba(Q)
    assert np.all(np.isfinite(proba)) and np.all((proba >= 0) & (proba <= 1))
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=0, atol=8 * n_classes * np.finfo(dtype).eps)
    np.testing.assert_allclose(np.exp(est.predict_log_proba(Q)), proba, rtol=0, atol=0)
    assert np.all(np.isfinite(z))


# ------------------------------------------------------------------ found: divergence within one call
def _exploding_problem():
    """SGD at 100 times the stable step: each update multiplies the weight by -99, so one
    epoch of 8 rows takes the objective from 0.5 (at the zero start) to 4e31 (its running
    mean over the epoch, ``loss_curve_[0]``, is 5.43e26)."""
    X = np.full((8, 1), 10.0)
    y = np.ones(8)
    params = {
        "batch_size": 1, "learning_rate": "constant", "eta0": 1.0, "momentum": 0.0, "penalty": None,
        "fit_intercept": False, "shuffle": False, "tol": None, "backend": "numpy",
    }
    return X, y, params


@pytest.mark.parametrize("backend", ALL_BACKENDS)
@pytest.mark.parametrize("how", ["fit(max_iter=1)", "partial_fit x 3"])
def test_divergence_within_one_call_is_reported(backend, how):
    """Found by the agreement property (a float32 fit with max_iter=1 returned an objective
    of 3.5e56 for targets of scale 0.07). The objective grows by 1e32 within one epoch
    (fit), and by 1e32 more with each partial_fit call (up to 1e282 after nine calls,
    before the first non-finite value raised), while the weights stay finite: measured
    against the all-zero model's objective, DivergenceError is raised at once."""
    X, y, params = _exploding_problem()
    est = LinearRegression(**{**params, "backend": backend})
    with pytest.raises(DivergenceError, match=r"became 5\.43e\+26 \(the all-zero model's objective is 0\.5\)"):
        if how.startswith("fit"):
            est.set_params(max_iter=1).fit(X, y)
        else:
            for _ in range(3):
                est.partial_fit(X, y)
    assert not hasattr(est, "coef_")  # it failed on the first call, and kept nothing
