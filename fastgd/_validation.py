"""Input validation for a fit: the arrays a kernel will see, the targets encoded for the
loss, and the sample weights (times class weights) normalised to mean 1.

The estimator layer guarantees every array a kernel receives is C-contiguous and of the
kernel's dtype (float32 or float64 for the data, int64 for the row order); this module
makes the data so. The estimator supplies the target encoding through two hooks
(``_targets``, ``_class_weights``); everything else here is a plain function, shared by
the in-memory driver (``fastgd._run``) and the Dask driver (``fastgd._dask``).
"""

import copy
from typing import NamedTuple

import numpy as np
from sklearn.utils.validation import (
    _assert_all_finite,
    _check_sample_weight,
    validate_data,
)

from . import _sparse

FLOAT_DTYPES = (np.float64, np.float32)


class Data(NamedTuple):
    """Validated training data as the kernels take it, plus what it implies."""

    X: np.ndarray  # (n, d) float32/float64, C-contiguous; or a scipy.sparse CSR matrix
    Y: np.ndarray  # (n, m) same dtype: targets encoded for the loss
    sw: np.ndarray  # (n,) same dtype: sample weights times class weights
    loss: str  # name in fastgd._losses.LOSSES
    n_outputs: int  # K, rows of the weight matrix
    fitted: dict  # target-related fitted attributes to set on success (classes_, ...)
    # whether X is known to hold no NaN or infinity (see validate_inputs' defer_finite)
    finite: bool = True


def is_dask(obj):
    """Whether ``obj`` is a Dask collection (array, dataframe, series), without importing
    dask: its type is defined in a ``dask`` (or the former ``dask_expr``) module."""
    return type(obj).__module__.split(".")[0] in ("dask", "dask_expr")


def validate_inputs(est, X, y, sample_weight, *, first, classes=None, partial=False, defer_finite=False):
    """Validated, encoded training data for estimator ``est`` (sample weights not yet
    normalised: see :func:`normalise_weights`).

    With ``defer_finite``, X is not yet checked for NaN and infinities (``Data.finite``
    is False): a fit reads every value of X in its first epoch anyway, and a NaN or an
    infinity there makes the epoch's objective non-finite (0 * inf and 0 * NaN are NaN,
    even for a row of weight 0). The caller must then call :func:`require_finite` when
    anything in the fit turns out non-finite, before reporting that, and on rows the
    epochs do not read (a held-out validation split). This saves a separate pass over X
    (about as long as a full-batch epoch) on every fit."""
    if isinstance(X, np.ndarray) and X.dtype.kind == "f" and not X.dtype.isnative:
        # big-endian float32 would otherwise become float64 (not a dtype in the list)
        X = X.astype(X.dtype.newbyteorder("="))
    _sparse.check_structure(X)  # before scipy reads a malformed matrix's indices
    X, y = validate_data(
        est,
        X,
        y,
        reset=first,
        accept_sparse=["csr"],
        dtype=list(FLOAT_DTYPES),
        order="C",
        multi_output=est._multi_output,
        y_numeric=not est._is_classifier,
        ensure_all_finite=not defer_finite,
    )
    Y, n_outputs, loss, fitted = est._targets(y, first=first, classes=classes, partial=partial)
    Y = np.ascontiguousarray(Y, dtype=X.dtype)
    if sample_weight is None:
        sw = np.ones(X.shape[0], dtype=X.dtype)
    else:  # rejects NaN, infinity and negative weights
        sw = _check_sample_weight(sample_weight, X, dtype=X.dtype, ensure_non_negative=True, copy=True)
    cw = est._class_weights(Y, fitted)
    if cw is not None:
        sw = sw * cw.astype(X.dtype, copy=False)
    top = float(np.max(sw)) if sw.shape[0] else 1.0
    if top > 0.0 and not 2.0**-64 <= top <= 2.0**64:
        # weights only count relative to each other (they are normalised to mean 1):
        # bring the largest into [0.5, 1) by an exact power of two, so that their sum
        # cannot overflow (weights of 1e308 summed to inf and became all 0) and n / sum
        # cannot (weights of 1e-320 became inf)
        sw = np.ldexp(sw, -int(np.frexp(top)[1])).astype(X.dtype, copy=False)
    return Data(X, Y, sw, loss, n_outputs, fitted, finite=not defer_finite)


def require_finite(est, X):
    """Raise scikit-learn's ValueError ("Input X contains NaN", "... infinity") if the
    dense or CSR ``X`` holds a NaN or an infinity."""
    _assert_all_finite(X.data if _sparse.issparse(X) else X, input_name="X", estimator_name=type(est).__name__)


def validate_predict(est, X):
    """X as a prediction takes it (dense C-contiguous float, or CSR), checked against the
    fitted estimator's features."""
    _sparse.check_structure(X)  # before scipy's product trusts a malformed matrix's indices
    return validate_data(est, X, reset=False, accept_sparse=["csr"], dtype=list(FLOAT_DTYPES), order="C")


def normalise_weights(sw):
    """Scale weights to mean 1, so a batch's mean of ``sw_i * grad_i`` is an unbiased
    estimate of the full weighted-mean gradient for any batch size."""
    scale = weight_scale(sw.shape[0], float(np.sum(sw, dtype=np.float64)))
    if scale == 1.0:  # unit weights (no sample_weight): no second array of n values
        return sw
    return np.ascontiguousarray(sw * scale, dtype=sw.dtype)


def weight_scale(n, total):
    """The factor that gives ``n`` weights summing to ``total`` a mean of 1 (see
    :func:`normalise_weights`); the Dask driver sums ``total`` blockwise."""
    if not total > 0.0:
        raise ValueError("sample_weight (times class_weight) must not sum to zero.")
    scale = n / total
    if not (np.isfinite(total) and np.isfinite(scale) and scale > 0.0):
        # (in memory the weights are first brought near 1 by a power of two; the Dask
        # driver only has their blockwise sum)
        raise ValueError(
            f"sample_weight (times class_weight) sums to {total:.4g} over {n} samples, beyond "
            "what float64 can normalise; divide the weights by a common factor (only their "
            "ratios matter)."
        )
    return scale


def split_validation(data, rng, validation_fraction, stratify):
    """``(training data, X_val, Y_val)``: ``validation_fraction`` of the rows held out
    (stratified on the encoded class when ``stratify``), both parts in storage order."""
    train, val = validation_rows(data.Y, rng, validation_fraction, stratify)
    X, Y, sw = data.X, data.Y, data.sw
    return data._replace(X=X[train], Y=Y[train], sw=sw[train]), X[val], Y[val]


def validation_rows(Y, rng, validation_fraction, stratify):
    """The row positions ``(train, val)`` of :func:`split_validation` for encoded
    targets ``Y`` (sorted; one draw from ``rng``)."""
    from sklearn.model_selection import (
        train_test_split,  # (a slow import, needed rarely)
    )

    n = Y.shape[0]
    try:
        train, val = train_test_split(
            np.arange(n), test_size=validation_fraction, random_state=rng,
            stratify=Y[:, 0] if stratify else None,
        )
    except ValueError as exc:
        raise ValueError(
            f"early_stopping=True could not hold out validation_fraction="
            f"{validation_fraction} of {n} samples: {exc}"
        ) from None
    if len(train) == 0 or len(val) == 0:
        raise ValueError(
            f"early_stopping=True with validation_fraction={validation_fraction} "
            f"leaves an empty training or validation set for {n} samples."
        )
    return np.sort(train), np.sort(val)


def validation_given(early_stopping, X_val, y_val, sample_weight_val):
    """Whether ``fit`` was given a validation set; raises for an incomplete one, or one
    given without early stopping (``early_stopping``: the estimator's parameter), as
    scikit-learn's HistGradientBoosting does."""
    if X_val is None and y_val is None:
        if sample_weight_val is not None:
            raise ValueError("sample_weight_val is provided, but X_val and y_val were not provided.")
        return False
    if y_val is None:
        raise ValueError("X_val is provided, but y_val was not provided.")
    if X_val is None:
        raise ValueError("y_val is provided, but X_val was not provided.")
    if not early_stopping:
        raise ValueError(
            "X_val and y_val are passed to fit while early_stopping=False: the validation "
            "set is only used for early stopping; set early_stopping=True, or leave them out."
        )
    return True


def validate_validation(est, data, X_val, y_val, sample_weight_val):
    """``(X_val, Y_val, sw_val)`` as the validation score takes them: checked like the
    training data (the same conversions and checks; the features and feature names of
    the training data ``data``, already validated; the classifier's labels among the
    training classes), the targets encoded as for training, ``sw_val`` None without
    ``sample_weight_val``. Dask collections are computed into memory first; class
    weights do not apply to the validation score."""
    X_val, y_val, sample_weight_val = (v.compute() if is_dask(v) else v for v in (X_val, y_val, sample_weight_val))
    # the target hooks of a fitted model check y against what the training data fixed
    # (classes, number of targets): a shallow copy holding those, not yet this estimator's
    fitted = copy.copy(est)
    fitted.__dict__.update(data.fitted)
    fitted._state = np.empty((2, data.n_outputs, 0))
    if hasattr(fitted, "class_weight"):
        fitted.class_weight = None
    try:
        val = validate_inputs(fitted, X_val, y_val, sample_weight_val, first=False, partial=True)
    except (ValueError, TypeError) as exc:
        raise type(exc)(f"In the validation data (X_val, y_val, sample_weight_val): {exc}") from None
    n = val.X.shape[0]
    if not est._is_classifier and n < 2:
        raise ValueError(
            f"early_stopping=True scores by R^2, which needs at least 2 validation samples; "
            f"X_val has {n}."
        )
    return val.X, val.Y, (None if sample_weight_val is None else val.sw)
