"""The data-aware defaults: ``optimizer="auto"``, ``alpha="auto"`` and
``early_stopping="auto"`` (``fastgd._spec.choose``), which rule each kind of data gets,
that the choice is made once per fit and kept where a fit continues, that it works with
every feature of the estimators, and that the default fit on text-like data is not a
silently bad model."""

import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.exceptions import ConvergenceWarning

from fastgd import LinearRegression, LogisticRegression, LogisticRegressionCV
from fastgd._smoothness import adaptive_step, mean_row_l1
from fastgd._spec import DEFAULT_ALPHA, SPARSE_RECIPE_MIN_ROWS, DataKind, choose, settings

BIG = SPARSE_RECIPE_MIN_ROWS


def text_like(n, d, words=20, seed=0, classes=2, share=0.08, flip=0.05):
    """tf-idf-like CSR rows: Zipf background words plus a share of class-topic words;
    unit-norm rows; labels with ``flip`` of them redrawn."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, classes, n)
    lengths = 1 + rng.poisson(words, n)
    rows = np.repeat(np.arange(n), lengths)
    t = rows.shape[0]
    ranks = np.minimum((np.exp(rng.random(t) * np.log(d)) - 1).astype(np.int64), d - 1)
    cols = rng.permutation(d)[ranks]
    m = min(2000, d)
    topics = np.stack([rng.choice(d, m, replace=False) for _ in range(classes)])
    topical = rng.random(t) < share
    tr = np.minimum((np.exp(rng.random(t) * np.log(m)) - 1).astype(np.int64), m - 1)
    cols = np.where(topical, topics[y[rows], tr], cols)
    X = sp.csr_matrix((np.ones(t), (rows, cols)), shape=(n, d))
    X.sum_duplicates()
    X.data = 1.0 + np.log(X.data)
    X = sp.csr_matrix(sp.diags(1.0 / np.sqrt(np.asarray(X.multiply(X).sum(axis=1)).ravel() + 1e-300)) @ X)
    flipped = rng.random(n) < flip
    y = np.where(flipped, rng.integers(0, classes, n), y)
    return X, y


def kind(sparse=True, n=BIG):
    return DataKind(sparse=sparse, n_rows=n)


def chosen(k, **params):
    return choose(settings(LogisticRegression(**params)), k)


# ------------------------------------------------------------------ the rule itself
@pytest.mark.parametrize(
    ("k", "params", "expect"),
    [
        (kind(sparse=False, n=10**6), {}, ("sgd", DEFAULT_ALPHA, False)),
        (kind(sparse=False, n=100), {}, ("sgd", DEFAULT_ALPHA, False)),
        (kind(sparse=True, n=BIG), {}, ("adagrad", 0.0, True)),
        (kind(sparse=True, n=BIG - 1), {}, ("sgd", DEFAULT_ALPHA, False)),
        (kind(sparse=True, n=1), {}, ("sgd", DEFAULT_ALPHA, False)),
        # a penalty asked for keeps momentum SGD (lazy with an L2 part) and no held-out rows
        (kind(), {"alpha": 1e-5}, ("sgd", 1e-5, False)),
        (kind(), {"penalty": "l1"}, ("sgd", DEFAULT_ALPHA, False)),
        (kind(), {"penalty": "elasticnet", "alpha": 1e-3}, ("sgd", 1e-3, False)),
        # no penalty asked for: the sparse recipe
        (kind(), {"penalty": None}, ("adagrad", 0.0, True)),
        (kind(), {"alpha": 0.0}, ("adagrad", 0.0, True)),
        # an explicit rule: "auto" alpha and stopping follow it
        (kind(), {"optimizer": "adagrad"}, ("adagrad", 0.0, True)),
        (kind(), {"optimizer": "rmsprop"}, ("rmsprop", 0.0, True)),
        (kind(), {"optimizer": "adam"}, ("adam", DEFAULT_ALPHA, False)),
        (kind(), {"optimizer": "sgd"}, ("sgd", DEFAULT_ALPHA, False)),
        (kind(sparse=False), {"optimizer": "adagrad"}, ("adagrad", DEFAULT_ALPHA, False)),
        # settings that ask for momentum or for a penalty in the schedule
        (kind(), {"nesterov": True}, ("sgd", DEFAULT_ALPHA, False)),
        (kind(), {"learning_rate": "optimal"}, ("sgd", DEFAULT_ALPHA, False)),
        # explicit early stopping either way
        (kind(), {"early_stopping": False}, ("adagrad", 0.0, False)),
        (kind(sparse=False), {"early_stopping": True}, ("sgd", DEFAULT_ALPHA, True)),
        # Dask input: dense blocks, rows counted later
        (kind(sparse=False, n=-1), {}, ("sgd", DEFAULT_ALPHA, False)),
    ],
)
def test_choice_by_data_kind(k, params, expect):
    c = chosen(k, **params)
    assert (c.optimizer, c.alpha, c.early_stopping) == expect


def test_grids_never_take_the_sparse_recipe():
    """A CV grid's penalty is given and its folds choose the model: momentum SGD, no
    held-out rows, whatever the data."""
    c = choose(settings(LogisticRegression()), kind(), grid=True)
    assert (c.optimizer, c.early_stopping) == ("sgd", False)


def test_fits_report_the_choice():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((300, 4))
    y = (X[:, 0] > 0).astype(int)
    dense = LogisticRegression(random_state=0).fit(X, y)
    assert (dense.optimizer_, dense.alpha_) == ("newton-sketch", 1 / 300)
    minibatch = LogisticRegression(random_state=0, batch_size=32).fit(X, y)
    assert (minibatch.optimizer_, minibatch.alpha_) == ("sgd", DEFAULT_ALPHA)
    assert not hasattr(dense, "validation_scores_")
    Xs, ys = text_like(BIG, 2**12, seed=1)
    sparse = LogisticRegression(random_state=0, max_iter=3).fit(Xs, ys)
    assert (sparse.optimizer_, sparse.alpha_) == ("adagrad", 0.0)
    assert len(sparse.validation_scores_) == sparse.n_iter_
    # objective() is the fitted model's objective: no penalty term where alpha_ is 0
    W = np.concatenate([sparse.coef_.ravel(), sparse.intercept_])
    z = Xs @ W[:-1] + W[-1]
    assert sparse.objective(Xs, ys) == pytest.approx(np.mean(np.logaddexp(0, z) - ys * z), rel=1e-9)
    # the parameters themselves are untouched (scikit-learn's rule)
    assert sparse.get_params()["optimizer"] == "auto" and sparse.get_params()["alpha"] == "auto"


def test_small_sparse_keeps_the_fixed_recipe():
    Xs, ys = text_like(2000, 2**12, seed=2)
    est = LogisticRegression(random_state=0).fit(Xs, ys)
    assert (est.optimizer_, est.alpha_) == ("sgd", DEFAULT_ALPHA)


def test_regressor_takes_the_same_rule():
    Xs, _ = text_like(BIG, 2**10, seed=3)
    y = np.asarray(Xs[:, :50].sum(axis=1)).ravel()
    est = LinearRegression(random_state=0, max_iter=3).fit(Xs, y)
    assert est.optimizer_ == "adagrad" and est.alpha_ == 0.0
    assert np.all(np.isfinite(est.coef_))


# ------------------------------------------------------------------ made once, kept
def test_partial_fit_keeps_the_first_calls_choice():
    Xs, ys = text_like(BIG, 2**10, seed=4)
    est = LogisticRegression(random_state=0)
    est.partial_fit(Xs, ys, classes=[0, 1])
    assert est.optimizer_ == "adagrad"
    # a later call on a few rows (which alone would choose momentum SGD) continues it
    est.partial_fit(Xs[:100], ys[:100])
    assert est.optimizer_ == "adagrad" and est.alpha_ == 0.0 and est.t_ > 0
    # a new fit chooses again from its own data
    est.fit(Xs[:500], ys[:500])
    assert est.optimizer_ == "sgd"


def test_warm_start_keeps_the_fitted_choice():
    Xs, ys = text_like(BIG, 2**10, seed=5)
    est = LogisticRegression(random_state=0, max_iter=2, warm_start=True).fit(Xs, ys)
    t = est.t_
    est.fit(Xs[:3000], ys[:3000])
    assert est.optimizer_ == "adagrad" and est.t_ > t


# ------------------------------------------------------------------ with every feature
def test_auto_with_average_float32_and_weights():
    Xs, ys = text_like(BIG, 2**9, seed=6)
    X32 = Xs.astype(np.float32)
    sw = np.random.default_rng(0).uniform(0.5, 2.0, Xs.shape[0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # (averaging takes the dense step: DenseStepWarning)
        est = LogisticRegression(random_state=0, max_iter=2, average=True, class_weight="balanced")
        est.fit(X32, ys, sample_weight=sw)
    assert est.optimizer_ == "adagrad" and est.coef_.dtype == np.float32
    assert np.all(np.isfinite(est.coef_)) and est.score(X32, ys) > 0.6


def test_multiclass_sparse_and_its_step():
    """Softmax over K classes: the adaptive rules' step is the binary one / sqrt(K)."""
    Xs, ys = text_like(BIG, 2**10, seed=7, classes=4)
    est = LogisticRegression(random_state=0, max_iter=2, early_stopping=False).fit(Xs, ys)
    assert est.optimizer_ == "adagrad" and est.coef_.shape == (4, 2**10)
    binary = adaptive_step(mean_row_l1(Xs, True), optimizer="adagrad", beta_2=0.999)
    assert est.learning_rate_ == pytest.approx(binary / 2.0, rel=1e-7)
    assert est.score(Xs, ys) > 0.5


def test_cv_classes_with_auto():
    Xs, ys = text_like(BIG, 2**9, seed=8)
    cv = LogisticRegressionCV(alphas=[1e-3, 1e-5], cv=2, max_iter=3, random_state=0).fit(Xs, ys)
    assert cv.best_estimator_.optimizer_ == "sgd"
    assert cv.score(Xs, ys) > 0.6


def test_dask_input_with_auto():
    da = pytest.importorskip("dask.array")
    rng = np.random.default_rng(0)
    X = rng.standard_normal((400, 3))
    y = (X[:, 0] > 0).astype(int)
    est = LogisticRegression(random_state=0, batch_size="full", max_iter=5)
    est.fit(da.from_array(X, chunks=200), da.from_array(y, chunks=200))
    assert (est.optimizer_, est.alpha_) == ("sgd", DEFAULT_ALPHA)
    # (in memory, "auto" would take the Newton-type rule, which runs in memory only)
    ref = LogisticRegression(optimizer="sgd", random_state=0, batch_size="full", max_iter=5).fit(X, y)
    np.testing.assert_allclose(est.coef_, ref.coef_, rtol=1e-10, atol=1e-12)


# ------------------------------------------------------------------ hostile inputs
@pytest.mark.parametrize("case", ["one row", "one column", "all-zero rows", "tiny nnz"])
def test_hostile_inputs_under_auto(case):
    rng = np.random.default_rng(0)
    if case == "one row":
        X, y = sp.csr_matrix(np.ones((1, 3))), np.array([1.0])
        est = LinearRegression().fit(X, y)
        assert est.optimizer_ == "sgd"
    else:
        n = BIG + 10
        if case == "one column":
            X = sp.csr_matrix(rng.standard_normal((n, 1)))
        elif case == "all-zero rows":
            X = sp.random(n, 50, density=0.05, format="csr", random_state=0)
            X = sp.csr_matrix(sp.diags((np.arange(n) % 3 != 0).astype(float)) @ X)  # a third of the rows empty
        else:  # a huge vocabulary, about one non-zero in a hundred rows
            rows = np.flatnonzero(rng.random(n) < 0.01)
            X = sp.csr_matrix((np.ones(rows.shape[0]), (rows, rng.integers(0, 2**20, rows.shape[0]))),
                              shape=(n, 2**20))
        y = (rng.random(n) < 0.5).astype(int)
        est = LogisticRegression(random_state=0, max_iter=3).fit(X, y)
        assert est.optimizer_ == "adagrad"
    assert np.all(np.isfinite(est.coef_)) and np.all(np.isfinite(est.intercept_))


# ------------------------------------------------------------------ the returned model
def test_early_stopping_returns_the_best_epoch():
    X, y = text_like(5000, 2**11, seed=9, flip=0.3)
    Xs, ys, Xv, yv = X[:4000], y[:4000], X[4000:], y[4000:]
    est = LogisticRegression(optimizer="adagrad", penalty=None, early_stopping=True, tol=None, max_iter=8,
                             random_state=0).fit(Xs, ys, X_val=Xv, y_val=yv)
    assert len(est.validation_scores_) == 8
    assert est.score(Xv, yv) == pytest.approx(max(est.validation_scores_), abs=1e-12)


def test_convergence_warning_names_the_gap():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((2000, 5))
    y = (X[:, 0] + 0.3 * rng.standard_normal(2000) > 0).astype(int)
    with pytest.warns(ConvergenceWarning, match=r"still fell by [0-9.e-]+.* over the last 2 epochs"):
        LogisticRegression(max_iter=3, random_state=0).fit(X, y)


def test_default_fit_on_text_is_not_a_silently_bad_model():
    """The failure the fixed recipe had: on tf-idf rows it could stop near chance with
    no warning. The default fit must reach the accuracy of its objective's exact
    optimum (to 1 point) or say it did not converge."""
    from sklearn.linear_model import LogisticRegression as Exact

    X, y = text_like(20_000, 2**14, words=25, seed=11, share=0.05, flip=0.1)
    X, y, Xt, yt = X[:15_000], y[:15_000], X[15_000:], y[15_000:]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        est = LogisticRegression(random_state=0).fit(X, y)
    warned = any(issubclass(w.category, ConvergenceWarning) for w in caught)
    accuracy = est.score(Xt, yt)
    # the exact optimum of the objective the default fit minimises (alpha_ = 0: no
    # penalty, so the weakest penalty lbfgs solves reliably), and scikit-learn's default
    exact = Exact(C=1e4, max_iter=5000, tol=1e-8).fit(X, y).score(Xt, yt)
    sklearn_default = Exact(max_iter=1000).fit(X, y).score(Xt, yt)
    assert est.alpha_ == 0.0
    assert warned or accuracy >= max(exact, sklearn_default) - 0.01, (accuracy, exact, sklearn_default)
    # and the recipe it replaced is no better
    fixed = LogisticRegression(optimizer="sgd", alpha=1e-4, early_stopping=False, random_state=0).fit(X, y)
    assert accuracy >= fixed.score(Xt, yt) - 0.005


@pytest.mark.parametrize("n", [2000, BIG])
def test_default_fit_on_csr_steps_lazily(n):
    """Whatever the default chooses on CSR rows takes O(nnz) steps: the settings the
    sparse kernels step lazily, and no DenseStepWarning."""
    from fastgd._optimizers import uses_lazy_update
    from fastgd._run import DenseStepWarning, spec_of
    from fastgd._validation import normalise_weights

    Xs, ys = text_like(n, 2**16, seed=13)
    est = LogisticRegression(random_state=0, max_iter=2)
    data = est._prepare(Xs, ys, None, first=True)
    spec = spec_of(est, data._replace(sw=normalise_weights(data.sw)))
    assert uses_lazy_update(spec.hp, spec.codes)
    with warnings.catch_warnings():
        warnings.simplefilter("error", DenseStepWarning)
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(Xs, ys)
    assert est.optimizer_ == ("adagrad" if n >= BIG else "sgd")


def test_a_validation_set_turns_auto_early_stopping_on():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((500, 3))
    y = (X[:, 0] > 0).astype(int)
    est = LogisticRegression(random_state=0, max_iter=4, tol=None).fit(X[:400], y[:400], X_val=X[400:],
                                                                       y_val=y[400:])
    assert len(est.validation_scores_) == 4
    with pytest.raises(ValueError, match="early_stopping=False"):
        LogisticRegression(early_stopping=False).fit(X[:400], y[:400], X_val=X[400:], y_val=y[400:])


def test_verbose_says_what_auto_chose(capsys):
    Xs, ys = text_like(BIG, 2**9, seed=14)
    LogisticRegression(verbose=1, max_iter=1, random_state=0).fit(Xs, ys)
    first = capsys.readouterr().out.splitlines()[0]
    assert first.startswith(f"-- sparse input, {BIG:,} rows: optimizer='adagrad', alpha=0, early_stopping=True")
