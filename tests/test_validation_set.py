"""A validation set passed to ``fit`` (``X_val``, ``y_val``, ``sample_weight_val``) for
early stopping: the same fit as holding out those rows, checked like the training data,
weighted by ``sample_weight_val``, and refused with a named error where it makes no
sense (as scikit-learn's HistGradientBoosting refuses it)."""

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state

from fastgd import LinearRegression, LogisticRegression

from .conftest import make_data

CASES = {
    "regression": LinearRegression,
    "multioutput": LinearRegression,
    "binary": LogisticRegression,
    "multiclass": LogisticRegression,
}


def held_out_rows(y, n, fraction, seed, stratify):
    """The (training, validation) rows ``early_stopping=True`` holds out with
    ``random_state=seed``: scikit-learn's split drawn from the fit's random stream."""
    train, val = train_test_split(
        np.arange(n), test_size=fraction, random_state=check_random_state(seed),
        stratify=y if stratify else None,
    )
    return np.sort(train), np.sort(val)


@pytest.mark.parametrize("batch_size", ["full", 16])
@pytest.mark.parametrize("kind", sorted(CASES))
def test_equals_the_held_out_split(kind, batch_size):
    cls = CASES[kind]
    X, y = make_data(kind, n=200, seed=3)
    params = {"early_stopping": True, "validation_fraction": 0.2, "random_state": 0, "batch_size": batch_size,
                  "shuffle": False, "n_iter_no_change": 3, "max_iter": 200, "tol": 1e-3}
    held = cls(**params).fit(X, y)
    train, val = held_out_rows(y, len(y), 0.2, 0, cls is LogisticRegression)
    given = cls(**params).fit(X[train], y[train], X_val=X[val], y_val=y[val])
    assert 1 < held.n_iter_ < 200  # the validation score stopped it
    assert given.n_iter_ == held.n_iter_
    assert given.validation_scores_ == held.validation_scores_
    assert given.best_validation_score_ == held.best_validation_score_
    np.testing.assert_array_equal(given.coef_, held.coef_)
    np.testing.assert_array_equal(given.intercept_, held.intercept_)
    assert given.loss_curve_ == held.loss_curve_


def test_scores_are_the_validation_sets():
    X, y = make_data("binary", n=200, seed=1)
    X_val, y_val = make_data("binary", n=50, seed=2)
    est = LogisticRegression(early_stopping=True, random_state=0, max_iter=4, tol=None).fit(
        X, y, X_val=X_val, y_val=y_val
    )
    assert est.n_iter_ == 4 and len(est.validation_scores_) == 4
    # the fitted model is the epoch that scored best: its accuracy on (X_val, y_val), in
    # 1/50 steps, is the best score
    assert est.score(X_val, y_val) == est.best_validation_score_ == max(est.validation_scores_)
    reg = LinearRegression(early_stopping=True, random_state=0, max_iter=3, tol=None)
    Xr, yr = make_data("regression", n=100, seed=1)
    Xr_val, yr_val = make_data("regression", n=30, seed=2)
    reg.fit(Xr, yr, X_val=Xr_val, y_val=yr_val)
    assert max(reg.validation_scores_) == pytest.approx(reg.score(Xr_val, yr_val), rel=1e-12)


@pytest.mark.parametrize("kind", ["regression", "multiclass"])
def test_sample_weight_val_weights_the_score(kind):
    cls = CASES[kind]
    X, y = make_data(kind, n=150, seed=4)
    X_val, y_val = make_data(kind, n=40, seed=5)
    params = {"early_stopping": True, "random_state": 0, "max_iter": 5, "tol": None}
    # zero weights drop rows, a weight of 2 repeats one
    w = np.ones(40)
    w[:10] = 0.0
    w[10] = 2.0
    weighted = cls(**params).fit(X, y, X_val=X_val, y_val=y_val, sample_weight_val=w)
    rows = np.r_[10, 10:40]
    repeated = cls(**params).fit(X, y, X_val=X_val[rows], y_val=y_val[rows])
    np.testing.assert_allclose(weighted.validation_scores_, repeated.validation_scores_, rtol=1e-12)
    plain = cls(**params).fit(X, y, X_val=X_val, y_val=y_val)
    assert weighted.validation_scores_ != plain.validation_scores_
    np.testing.assert_array_equal(weighted.coef_, plain.coef_)  # the training is the same


def test_sparse_validation_set_equals_dense():
    X, y = make_data("binary", n=120, seed=6)
    X_val, y_val = make_data("binary", n=40, seed=7)
    params = {"early_stopping": True, "random_state": 0, "max_iter": 6, "tol": None}
    dense = LogisticRegression(**params).fit(X, y, X_val=X_val, y_val=y_val)
    sparse = LogisticRegression(**params).fit(X, y, X_val=sp.csr_matrix(X_val), y_val=y_val)
    assert sparse.validation_scores_ == dense.validation_scores_


def test_float32_training_with_float64_validation():
    X, y = make_data("regression", n=100, seed=8, dtype=np.float32)
    X_val, y_val = make_data("regression", n=30, seed=9)
    est = LinearRegression(early_stopping=True, random_state=0, max_iter=3, tol=None)
    est.fit(X, y, X_val=X_val, y_val=y_val)
    assert est.coef_.dtype == np.float32
    assert max(est.validation_scores_) == pytest.approx(est.score(X_val, y_val), rel=1e-5)
    assert est.validation_scores_[-1] < max(est.validation_scores_)  # (so the best epoch's model was kept)


def _fit(cls, X, y, **kwargs):
    return cls(early_stopping=True, max_iter=3, tol=None, random_state=0).fit(X, y, **kwargs)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"early_stopping_off": True}, "early_stopping=False"),
        ({"X_val": "X"}, "X_val is provided, but y_val was not provided"),
        ({"y_val": "y"}, "y_val is provided, but X_val was not provided"),
        ({"sample_weight_val": "w"}, "sample_weight_val is provided, but X_val and y_val were not"),
        ({"X_val": "X3", "y_val": "y"}, r"validation data .*X has 3 features, but LogisticRegression is expecting 4"),
        ({"X_val": "X", "y_val": "y_unknown"}, r"validation data .*labels not in classes .*'maybe'"),
        ({"X_val": "X", "y_val": "y_short"}, r"validation data .*inconsistent numbers of samples"),
        ({"X_val": "X_nan", "y_val": "y"}, r"validation data .*Input X contains NaN"),
        ({"X_val": "X", "y_val": "y", "sample_weight_val": "w_negative"}, r"validation data .*Negative values"),
        ({"X_val": "X", "y_val": "y", "sample_weight_val": "w_zero"}, r"validation data .*at least one non-zero"),
    ],
)
def test_bad_validation_sets_are_named(kwargs, match):
    X, y = make_data("binary", n=60)
    values = {
        "X": X[:20], "X3": X[:20, :3], "X_nan": np.where(np.arange(4) == 2, np.nan, X[:20]),
        "y": y[:20], "y_unknown": np.append(y[:19], "maybe"), "y_short": y[:19],
        "w": np.ones(20), "w_negative": np.r_[-1.0, np.ones(19)], "w_zero": np.zeros(20),
    }
    est = LogisticRegression(early_stopping=True, max_iter=3, tol=None, random_state=0).fit(X, y)
    before = est.coef_.copy()
    if kwargs.pop("early_stopping_off", False):
        est.set_params(early_stopping=False)
        kwargs = {"X_val": "X", "y_val": "y"}
    with pytest.raises(ValueError, match=match):
        est.fit(X, y, **{k: values[v] for k, v in kwargs.items()})
    np.testing.assert_array_equal(est.coef_, before)  # a failed fit changes nothing


def test_regression_needs_two_validation_rows():
    X, y = make_data("regression", n=40)
    with pytest.raises(ValueError, match="at least 2 validation samples; X_val has 1"):
        _fit(LinearRegression, X, y, X_val=X[:1], y_val=y[:1])
    with pytest.raises(ValueError, match=r"validation data .*y has shape \(5, 2\), but this model was fitted on y with 1 dimension"):
        _fit(LinearRegression, X, y, X_val=X[:5], y_val=np.ones((5, 2)))


def test_feature_names_must_match():
    pd = pytest.importorskip("pandas")
    X, y = make_data("binary", n=60)
    frame = pd.DataFrame(X, columns=list("abcd"))
    other = pd.DataFrame(X[:20], columns=list("abce"))
    with pytest.raises(ValueError, match=r"validation data .*feature names"):
        _fit(LogisticRegression, frame, y, X_val=other, y_val=y[:20])
    est = _fit(LogisticRegression, frame, y, X_val=frame.iloc[:20], y_val=y[:20])
    assert list(est.feature_names_in_) == list("abcd")
