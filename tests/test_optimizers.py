"""The update-rule registry (``optimizer``) and averaging (``average``) on every backend.

* Every registry entry meets every compiled backend, dense and sparse, and matches the
  NumPy reference to 1e-10 in float64. The other factors (loss, penalty, schedule,
  batch size, averaging) are covered pairwise: every pair of values of any two factors
  appears in at least one case (the full product is some 8,000 fits).
* The reference itself is checked against the update rules written out by hand from
  their PyTorch definitions (full batch, so that the iterates are deterministic).
* Averaging against a hand-written running mean; ``partial_fit`` sequences against one
  ``fit``; the parameters' checks; the defaults on badly scaled features.
"""

import itertools
import warnings

import numpy as np
import pytest
import scipy.sparse as sp

from fastgd import LinearRegression, LogisticRegression
from fastgd import _params as P
from fastgd._backends import get_backend
from fastgd._optimizers import OPTIMIZER_CODES, KERNEL_OPTIMIZERS, n_state
from fastgd._penalties import PENALTIES
from fastgd._schedules import SCHEDULES

from ._grids import pairwise
from .conftest import FAST_BACKENDS, make_data

LOSS_CASES = {
    "squared_error": (LinearRegression, "multioutput"),
    "log_loss": (LogisticRegression, "binary"),
    "multinomial": (LogisticRegression, "multiclass"),
}
FACTORS = {  # the must-have combination first: optimizer x backend x sparse
    "optimizer": sorted(KERNEL_OPTIMIZERS),
    "backend": FAST_BACKENDS,
    "sparse": [False, True],
    "loss": sorted(LOSS_CASES),
    "penalty": list(PENALTIES),
    "learning_rate": sorted(SCHEDULES),
    "batch_size": [1, 7, "full"],
    "average": [False, True, 70],
}


def pairwise_cases(factors, must=("optimizer", "backend", "sparse")):
    """A small set of cases in which every pair of values of any two factors appears,
    and every combination of the ``must`` factors (listed first in ``factors``)."""
    names = list(factors)
    assert names[: len(must)] == list(must)
    chosen = pairwise(*factors.values(), must=len(must))
    return [{n: factors[n][c[k]] for k, n in enumerate(names)} for c in chosen]


CASES = pairwise_cases(FACTORS)


def test_the_grid_covers_every_pair_and_every_entry_on_every_backend():
    seen = {(c["optimizer"], c["backend"], c["sparse"]) for c in CASES}
    assert seen == set(itertools.product(KERNEL_OPTIMIZERS, FAST_BACKENDS, [False, True]))
    for a, b in itertools.combinations(FACTORS, 2):
        got = {(repr(c[a]), repr(c[b])) for c in CASES}
        assert got == {(repr(x), repr(y)) for x in FACTORS[a] for y in FACTORS[b]}, (a, b)
    assert len(CASES) < 120  # lean: the full product is 8640 fits


def test_every_registry_entry_is_documented_and_consistent():
    assert sorted(o.code for o in KERNEL_OPTIMIZERS.values()) == list(OPTIMIZER_CODES)
    for name, entry in KERNEL_OPTIMIZERS.items():
        codes = np.zeros(P.N_CODES, dtype=np.int64)
        codes[P.OPTIMIZER] = entry.code
        assert n_state(codes) == 1 + len(entry.slots)
        codes[P.AVERAGE_START] = 1
        assert n_state(codes) == 2 + len(entry.slots)
        assert f'"{name}"' in LogisticRegression.__doc__


def _fit_pair(case, dtype=np.float64):
    cls, kind = LOSS_CASES[case["loss"]]
    X, y = make_data(kind, n=80, d=5, dtype=dtype)
    if case["sparse"]:
        X = X.copy()
        X[np.abs(X) < 0.15] = 0.0
        X = sp.csr_matrix(X)
    params = {
        "optimizer": case["optimizer"], "average": case["average"], "penalty": case["penalty"], "alpha": 0.05,
        "l1_ratio": 0.4, "learning_rate": case["learning_rate"], "eta0": 0.05, "batch_size": case["batch_size"],
        "max_iter": 3, "tol": None, "random_state": 3, "momentum": 0.5,
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # (the dense-step warning of sparse settings)
        ref = cls(backend="numpy", **params).fit(X, y)
        fast = cls(backend=case["backend"], **params).fit(X, y)
    return ref, fast


@pytest.mark.parametrize("case", CASES, ids=lambda c: "-".join(f"{v}" for v in c.values()))
def test_matches_reference(case):
    ref, fast = _fit_pair(case)
    np.testing.assert_allclose(fast._state, ref._state, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(fast.coef_, ref.coef_, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(fast.intercept_, ref.intercept_, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(fast.loss_curve_, ref.loss_curve_, rtol=1e-10, atol=1e-12)
    assert fast.t_ == ref.t_
    # the fit moved, and the rule's state is in use (a test of equal zeros proves nothing)
    assert np.abs(ref.coef_).max() > 1e-3
    assert np.abs(ref._state[1]).max() > 0
    if case["average"]:
        assert not np.allclose(ref._state[-1], ref._state[0])
        np.testing.assert_array_equal(ref.coef_.ravel(), ref._state[-1][:, :-1].ravel())


@pytest.mark.parametrize("optimizer", sorted(KERNEL_OPTIMIZERS))
@pytest.mark.parametrize("backend", FAST_BACKENDS)
def test_float32_close_to_float64(optimizer, backend):
    case = {"optimizer": optimizer, "backend": backend, "sparse": False, "loss": "log_loss", "penalty": "l2",
                "learning_rate": "constant", "batch_size": 7, "average": True}
    _, f64 = _fit_pair(case)
    _, f32 = _fit_pair(case, dtype=np.float32)
    assert f32.coef_.dtype == np.float32
    np.testing.assert_allclose(f32.coef_, f64.coef_, rtol=2e-3, atol=2e-4)


# ------------------------------------------------------------------ the rules by hand
def _objective_gradient(X, y, w, b, alpha):
    """Gradient of mean log loss + 0.5 alpha ||w||^2 (binary, labels 0/1)."""
    z = X @ w + b
    r = 1.0 / (1.0 + np.exp(-z)) - y
    return X.T @ r / len(y) + alpha * w, r.mean()


def _by_hand(optimizer, X, y, steps, lr, alpha, b1=0.9, b2=0.999, eps=1e-8, mu=0.9):
    """The iterates of torch.optim's rules, written out from their documentation (with
    weight decay in the gradient as the loss would carry it; no L2 on the intercept)."""
    d = X.shape[1]
    theta = np.zeros(d + 1)
    s1 = np.zeros(d + 1)
    s2 = np.zeros(d + 1)
    for t in range(1, steps + 1):
        gw, gb = _objective_gradient(X, y, theta[:d], theta[d], alpha)
        g = np.append(gw, gb)
        if optimizer == "sgd":  # torch.optim.SGD(momentum=mu): buf = mu buf + g
            s1 = mu * s1 + g
            theta = theta - lr * s1
        elif optimizer == "adagrad":  # state_sum += g^2; p -= lr g / (sqrt(state_sum) + eps)
            s1 = s1 + g * g
            theta = theta - lr * g / (np.sqrt(s1) + eps)
        elif optimizer == "rmsprop":  # v = alpha v + (1 - alpha) g^2; p -= lr g / (sqrt(v) + eps)
            s1 = b2 * s1 + (1 - b2) * g * g
            theta = theta - lr * g / (np.sqrt(s1) + eps)
        elif optimizer == "adam":
            s1 = b1 * s1 + (1 - b1) * g
            s2 = b2 * s2 + (1 - b2) * g * g
            m_hat = s1 / (1 - b1**t)
            v_hat = s2 / (1 - b2**t)
            theta = theta - lr * m_hat / (np.sqrt(v_hat) + eps)
    return theta


@pytest.mark.parametrize("optimizer", sorted(KERNEL_OPTIMIZERS))
@pytest.mark.parametrize("backend", ["numpy"] + FAST_BACKENDS)
def test_full_batch_iterates_follow_the_torch_formulas(optimizer, backend):
    X, y = make_data("binary", n=60, d=4)
    y01 = (y == "yes").astype(float)
    steps, lr, alpha = 25, 0.05, 0.01
    expected = _by_hand(optimizer, X, y01, steps, lr, alpha)
    est = LogisticRegression(optimizer=optimizer, batch_size="full", learning_rate="constant", eta0=lr,
                             alpha=alpha, momentum=0.9, max_iter=steps, tol=None, backend=backend).fit(X, y)
    got = np.append(est.coef_.ravel(), est.intercept_)
    np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-12)
    assert np.abs(expected).max() > 0.05


def test_rules_differ_from_each_other():
    """The four rules are four rules (a dispatch that ran one for all would pass the
    reference comparisons)."""
    X, y = make_data("binary", n=60, d=4)
    coefs = [LogisticRegression(optimizer=o, batch_size=8, learning_rate="constant", eta0=0.05,
                                max_iter=3, tol=None, random_state=0, backend="cython").fit(X, y).coef_
             for o in sorted(KERNEL_OPTIMIZERS)]
    for a, b in itertools.combinations(coefs, 2):
        assert np.abs(a - b).max() > 1e-3


# ------------------------------------------------------------------ averaging
@pytest.mark.parametrize("backend", ["numpy"] + FAST_BACKENDS)
@pytest.mark.parametrize("average", [True, 7 * 60 + 1])
def test_average_is_the_running_mean_of_the_iterates(backend, average):
    """Full batch: one iterate per epoch, so partial_fit exposes each; the average must
    be their mean from the first update after ``average`` samples were seen."""
    X, y = make_data("regression", n=60, d=4)
    params = {"batch_size": "full", "learning_rate": "constant", "eta0": 0.3, "optimizer": "adam", "tol": None,
                  "backend": backend}
    raw = LinearRegression(**params)
    iterates = []
    for _ in range(12):
        raw.partial_fit(X, y)
        iterates.append(np.append(raw.coef_, raw.intercept_))
    avg = LinearRegression(average=average, max_iter=12, **params).fit(X, y)
    first = 0 if average is True else 7  # samples seen after update u: 60 u >= 421 from u = 8
    expected = np.mean(iterates[first:], axis=0)
    np.testing.assert_allclose(np.append(avg.coef_, avg.intercept_), expected, rtol=1e-10)
    # the iterate itself is the plain fit's
    np.testing.assert_allclose(avg._state[0][0], iterates[-1], rtol=1e-10)
    assert np.abs(expected - iterates[-1]).max() > 1e-3


def test_average_reports_the_iterate_until_it_starts():
    X, y = make_data("regression", n=60, d=4)
    est = LinearRegression(average=10_000, max_iter=3, tol=None, random_state=0).fit(X, y)
    plain = LinearRegression(optimizer="sgd", max_iter=3, tol=None, random_state=0).fit(X, y)
    np.testing.assert_array_equal(est.coef_, plain.coef_)
    assert est._avg_start is None


@pytest.mark.parametrize("optimizer", sorted(KERNEL_OPTIMIZERS))
@pytest.mark.parametrize("average", [False, True, 100])
def test_partial_fit_sequence_equals_one_fit(optimizer, average):
    X, y = make_data("binary", n=60, d=4)
    params = {"optimizer": optimizer, "average": average, "batch_size": 7, "learning_rate": "constant",
                  "eta0": 0.05, "random_state": 5, "backend": "numba"}
    fit = LogisticRegression(max_iter=4, tol=None, **params).fit(X, y)
    part = LogisticRegression(**params)
    for _ in range(4):
        part.partial_fit(X, y, classes=["no", "yes"])
    np.testing.assert_allclose(part._state, fit._state, rtol=1e-12)
    np.testing.assert_allclose(part.coef_, fit.coef_, rtol=1e-12)
    assert part.t_ == fit.t_ and part._avg_start == fit._avg_start


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_warm_start_continues_the_rule_and_the_average(optimizer):
    """A warm-started fit continues the rule's state, the update count (Adam's bias
    correction) and the running mean: the same as one partial_fit sequence whose second
    half draws its permutations afresh from random_state."""
    X, y = make_data("binary", n=60, d=4)
    params = {"optimizer": optimizer, "average": True, "batch_size": 7, "learning_rate": "constant",
                  "eta0": 0.05, "random_state": 5, "backend": "numpy", "tol": None}
    warm = LogisticRegression(max_iter=2, warm_start=True, **params).fit(X, y)
    warm.fit(X, y)
    part = LogisticRegression(**params)
    for _ in range(2):
        part.partial_fit(X, y, classes=["no", "yes"])
    part._partial_rng = None  # (the second fit's stream starts again from random_state)
    for _ in range(2):
        part.partial_fit(X, y)
    np.testing.assert_allclose(warm._state, part._state, rtol=1e-12)
    assert warm.t_ == part.t_ == 4 * 9


# ------------------------------------------------------------------ the kernel contract
@pytest.mark.parametrize("backend", ["numpy"] + FAST_BACKENDS)
@pytest.mark.parametrize("sparse", [False, True])
def test_kernels_reject_a_state_of_the_wrong_size(backend, sparse):
    X, _ = make_data("regression", n=20, d=3)
    Y = np.zeros((20, 1))
    codes = np.zeros(P.N_CODES, dtype=np.int64)
    codes[P.BATCH_SIZE] = 4
    codes[P.OPTIMIZER] = KERNEL_OPTIMIZERS["adam"].code
    hp = np.zeros(P.N_HP)
    hp[P.ETA0] = 0.1
    state = np.zeros((2, 1, 4))  # adam needs 3 slots
    args = {"Y": Y, "sw": np.ones(20), "order": np.arange(20, dtype=np.int64), "state": state, "hp": hp, "codes": codes}
    if sparse:
        A = sp.csr_matrix(X)
        args.update(data=A.data, indices=A.indices.astype(np.int64), indptr=A.indptr.astype(np.int64))
    else:
        args.update(X=X)
    kernel = get_backend(backend, sparse=sparse).epoch
    with pytest.raises(ValueError, match=r"state must have shape \(3, K"):
        kernel(**args)
    codes[P.OPTIMIZER] = 99
    with pytest.raises(ValueError, match="unknown optimizer code 99"):
        kernel(**args)


# ------------------------------------------------------------------ parameters
@pytest.mark.parametrize("params,match", [
    ({"optimizer": "lbfgs"}, "optimizer"),
    ({"beta_1": 1.0}, "beta_1"),
    ({"beta_2": -0.1}, "beta_2"),
    ({"epsilon": 0.0}, "epsilon"),
    ({"average": -1}, "average"),
    ({"average": 1.5}, "average"),
    ({"optimizer": "adam", "nesterov": True}, "nesterov=True applies to optimizer='sgd'"),
])
def test_bad_parameters_are_named(params, match):
    X, y = make_data("binary", n=30, d=3)
    with pytest.raises(ValueError, match=match):
        LogisticRegression(**params).fit(X, y)


def test_partial_fit_refuses_another_rule():
    X, y = make_data("binary", n=30, d=3)
    est = LogisticRegression(optimizer="sgd").partial_fit(X, y, classes=["no", "yes"])
    before = est.coef_.copy()
    est.set_params(optimizer="adam")
    with pytest.raises(ValueError, match="another optimizer or average"):
        est.partial_fit(X, y)
    np.testing.assert_array_equal(est.coef_, before)


@pytest.mark.parametrize("optimizer", sorted(KERNEL_OPTIMIZERS))
@pytest.mark.parametrize("scaling", ["times_1e4", "mixed"])
@pytest.mark.parametrize("batch_size", [1, 32, "full"])
def test_auto_step_does_not_diverge_on_badly_scaled_features(optimizer, scaling, batch_size):
    X, y = make_data("binary", n=200, d=6, scale=1.0)
    if scaling == "times_1e4":
        X = X * 1e4
    else:
        X = X * np.logspace(-3, 4, X.shape[1])
    est = LogisticRegression(optimizer=optimizer, batch_size=batch_size, max_iter=30, random_state=0,
                             backend="cython")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning is fine here; divergence is not
        est.fit(X, y)
    assert np.all(np.isfinite(est.coef_))
    # better than the all-zero model (objective log 2)
    assert est.objective(X, y) < np.log(2.0)


# ------------------------------------------------------------------ sparse: lazy steps
def _wide_sparse(n=120, d=3000, nnz=6, seed=0):
    rng = np.random.default_rng(seed)
    rows = np.repeat(np.arange(n), nnz)
    cols = rng.integers(0, d, size=n * nnz)
    X = sp.csr_matrix((rng.standard_normal(n * nnz), (rows, cols)), shape=(n, d))
    y = (X @ rng.standard_normal(d) > 0).astype(int)
    return X, y


@pytest.mark.parametrize("optimizer", ["adagrad", "rmsprop"])
@pytest.mark.parametrize("backend", FAST_BACKENDS)
@pytest.mark.parametrize("batch_size", [1, 7, "full"])
@pytest.mark.parametrize("learning_rate", ["constant", "invscaling"])
def test_lazy_adaptive_sparse_step_matches_the_dense_algorithm(optimizer, backend, batch_size, learning_rate):
    """Without a penalty on the weights, AdaGrad and RMSprop move only the touched
    coordinates (RMSprop's accumulator decays as a power when next read), for every
    schedule; the iterates are the dense algorithm's."""
    X, y = _wide_sparse()
    params = {"optimizer": optimizer, "penalty": None, "batch_size": batch_size, "learning_rate": learning_rate,
                  "eta0": 0.05, "max_iter": 3, "tol": None, "random_state": 1}
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a lazy step warns of nothing
        fast = LogisticRegression(backend=backend, **params).fit(X, y)
    ref = LogisticRegression(backend="numpy", **params).fit(X, y)
    np.testing.assert_allclose(fast._state, ref._state, rtol=1e-10, atol=1e-13)
    run_codes = np.zeros(P.N_CODES, dtype=np.int64)
    run_codes[P.OPTIMIZER] = KERNEL_OPTIMIZERS[optimizer].code
    run_codes[P.SCHEDULE] = SCHEDULES[learning_rate].code
    from fastgd._optimizers import uses_lazy_update
    assert uses_lazy_update(np.zeros(P.N_HP), run_codes)
    # RMSprop decayed the accumulators of untouched coordinates too: none is left as a
    # plain sum of the squares it saw
    assert np.count_nonzero(ref._state[1]) > 100


@pytest.mark.parametrize("params", [
    {"optimizer": "adam", "penalty": None},
    {"optimizer": "adagrad"},  # l2 by default
    {"optimizer": "sgd", "average": True},
    {"optimizer": "sgd", "learning_rate": "invscaling"},
])
def test_a_dense_step_on_wide_sparse_input_warns(params):
    from fastgd._run import DenseStepWarning
    X, y = _wide_sparse()
    with pytest.warns(DenseStepWarning, match="takes the dense step: each update moves all 3000"):
        LogisticRegression(max_iter=2, tol=None, **params).fit(X, y)


def test_the_default_sparse_fit_takes_lazy_steps_and_does_not_warn():
    X, y = _wide_sparse()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        LogisticRegression(max_iter=2, tol=None).fit(X, y)
