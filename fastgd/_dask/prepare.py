"""Input preparation on Dask collections: X, y and the sample weights as blocks aligned
to X's row chunks, converted and checked where they live; only small summaries (NaN,
infinity, negative weights, labels with their counts and weight sums) reach the client,
which finds the classes, the class weights and the weight normalisation; each block
then encodes its targets and scales its weights."""

import warnings

import dask.array as da
import numpy as np
from sklearn.exceptions import DataConversionWarning
from sklearn.utils.validation import _check_feature_names, _check_n_features

from .._backends import get_backend
from .._spec import settings
from .._validation import FLOAT_DTYPES, Data, is_dask, weight_scale
from .blocks import _executor


def _to_array(obj):
    """A Dask array from a Dask array, dataframe or series."""
    if hasattr(obj, "to_dask_array"):
        obj = obj.to_dask_array(lengths=True)
    if not isinstance(obj, da.Array):
        raise TypeError(f"Expected a Dask array, dataframe or series; got {type(obj).__name__}.")
    return obj


def _known_rows(a):
    if any(np.isnan(c) for c in a.chunks[0]):
        a = a.compute_chunk_sizes()
    return a


def _as_matrix(est, X, *, reset, known_rows=True):
    """X as a 2-D Dask array of dense NumPy blocks with one column chunk; checks the
    feature names and count against the estimator (sets them when ``reset``)."""
    # a Dask dataframe's _meta is an empty pandas frame with its columns
    _check_feature_names(est, X._meta if hasattr(X, "columns") else X, reset=reset)
    X = _to_array(X)
    if X.ndim != 2:
        raise ValueError(
            f"Expected a 2D array, got a {X.ndim}D Dask array of shape {X.shape} instead. "
            "Reshape your data with X.reshape(-1, 1) if it has a single feature."
        )
    meta = getattr(X, "_meta", None)
    if type(meta) is not np.ndarray:
        raise TypeError(
            f"fastgd needs Dask arrays of dense NumPy blocks; this one has blocks of type "
            f"{type(meta).__module__}.{type(meta).__name__}."
        )
    if X.dtype.kind == "c":
        raise ValueError("Complex data not supported.")
    if known_rows:
        X = _known_rows(X)
    name = type(est).__name__
    if X.shape[1] == 0:
        raise ValueError(f"Found array with 0 feature(s) (shape={X.shape}) while a minimum of 1 is required by {name}.")
    if known_rows and X.shape[0] == 0:
        raise ValueError(f"Found array with 0 sample(s) (shape={X.shape}) while a minimum of 1 is required by {name}.")
    _check_n_features(est, X, reset=reset)
    if len(X.chunks[1]) > 1:
        X = X.rechunk({1: -1})
    return X


def _rows_like(v, X, name):
    """``v`` (Dask or in memory) as a Dask array chunked like X's rows."""
    if getattr(v, "ndim", None) is None or not hasattr(v, "shape"):
        v = np.asarray(v)
    if is_dask(v):
        v = _known_rows(_to_array(v))
    if v.ndim == 0:
        raise ValueError(f"{name} must be an array of one row per sample, got a scalar.")
    if v.shape[0] != X.shape[0]:
        raise ValueError(
            f"Found input variables with inconsistent numbers of samples: {[X.shape[0], v.shape[0]]} "
            f"(X and {name})."
        )
    chunks = (X.chunks[0],) + tuple((s,) for s in v.shape[1:])
    if isinstance(v, da.Array):
        return v.rechunk(chunks)
    return da.from_array(np.asarray(v), chunks=chunks)


def _check_summaries(summaries, is_classifier, dtype):
    def first_bad(field, i):
        return any(s[field][i] for s in summaries)

    for field, label in (("X", "X"), ("y", "y"), ("sw", "sample_weight")):
        if field == "y" and is_classifier:
            continue  # labels are checked by check_classification_targets
        if first_bad(field, 0):
            raise ValueError(f"Input {label} contains NaN.")
        if first_bad(field, 1):
            raise ValueError(f"Input {label} contains infinity or a value too large for {dtype!r}.")
    if any(s["sw_negative"] for s in summaries):
        raise ValueError("Negative values in data passed to `sample_weight`")


def _prepare(est, X, y, sample_weight, *, first, classes=None, partial=False, fitting=False, check_params=True,
             validation=False):
    """Validate and load the blocks; return the data (``fastgd._validation.Data``) with
    ``data.X`` a :class:`_Blocks` (``data.Y`` and ``data.sw`` are None: they live in the
    blocks)."""
    if check_params:
        est._validate_params()
        est._check_param_combinations()
    cfg = settings(est)
    if fitting and cfg.early_stopping and not validation:
        raise NotImplementedError(
            "early_stopping=True on Dask input needs a validation set passed to fit as "
            "X_val and y_val (in memory or Dask): holding out validation_fraction is not "
            "supported on Dask input (there is no blockwise validation split)."
        )
    backend = get_backend(cfg.backend)
    for kernel in ("epoch", "gradient"):
        if not hasattr(backend, kernel):
            raise ValueError(f"backend={cfg.backend!r} has no {kernel!r} kernel, which Dask input needs.")
    X = _as_matrix(est, X, reset=first)
    if y is None:
        raise ValueError(f"{type(est).__name__} requires y to be passed, but the target y is None.")
    y = _rows_like(y, X, "y")
    if cfg.is_classifier:
        if y.ndim == 2 and y.shape[1] == 1:
            warnings.warn(
                "A column-vector y was passed when a 1d array was expected. Please change "
                "the shape of y to (n_samples, ), for example using ravel().",
                DataConversionWarning,
                stacklevel=4,
            )
            y = y[:, 0]
        if y.ndim != 1:
            raise ValueError(f"y should be a 1d array, got an array of shape {y.shape} instead.")
    elif y.ndim > 2:
        raise ValueError(f"y must have 1 or 2 dimensions, got shape {y.shape}.")
    elif y.dtype.kind == "O":  # as scikit-learn's y_numeric: object targets become float
        y = y.astype(np.float64)
    sw = None
    if sample_weight is not None:
        if not is_dask(sample_weight) and np.ndim(sample_weight) == 0:
            sw = float(sample_weight)
        else:
            sw = _rows_like(sample_weight, X, "sample_weight")
            if sw.ndim != 1:
                raise ValueError("Sample weights must be 1D array or scalar")
    dtype = X.dtype if X.dtype in FLOAT_DTYPES else np.dtype(np.float64)
    ex = _executor(X)
    loaded = ex.load(X, y, sw, dtype, cfg.is_classifier)
    try:
        summaries = loaded.gather_each(_summary, cfg.is_classifier)
        _check_summaries(summaries, cfg.is_classifier, dtype)
        n = loaded.shape[0]
        if cfg.is_classifier:
            labels = np.unique(np.concatenate([s["labels"] for s in summaries]))
            counts = np.zeros(len(labels), dtype=np.int64)
            weights = np.zeros(len(labels))
            for s in summaries:
                pos = np.searchsorted(labels, s["labels"])
                counts[pos] += s["counts"]
                weights[pos] += s["weights"]
            # the hook decides everything from the distinct labels: classes, errors
            _, n_outputs, loss, fitted = est._targets(labels, first=first, classes=classes, partial=partial)
            all_classes = fitted["classes_"]
            per_class = _per_class_weights(cfg, all_classes, labels, counts, n, fitted)
            pos = np.searchsorted(all_classes, labels)
            total = float(np.sum(weights * (per_class[pos] if per_class is not None else 1.0)))
        else:
            # the hook checks y's dimensions against the model: a stand-in of y's shape
            # (a zero-strided view, no memory) suffices
            stub = np.broadcast_to(np.zeros(()), y.shape)
            _, n_outputs, loss, fitted = est._targets(stub, first=first, classes=classes, partial=partial)
            all_classes = per_class = None
            total = float(np.sum([s["weight"] for s in summaries]))
        blocks = loaded.map_each(_encode, all_classes, per_class, weight_scale(n, total))
    finally:
        loaded.release()
    return Data(blocks, None, None, loss, n_outputs, fitted)


def _per_class_weights(s, classes, labels, counts, n, fitted):
    """Per-class multipliers for ``classes`` (None without class weights); ``s``: the
    estimator's settings."""
    if s.class_weight is None:
        return None
    if s.class_weight == "balanced":
        # sklearn's compute_class_weight("balanced"): n / (n_classes * bincount(y))
        full = np.zeros(len(classes), dtype=np.int64)
        full[np.searchsorted(classes, labels)] = counts
        return n / (len(classes) * full.astype(np.float64))
    # a dict: the hook validates it and gives one weight per class
    return s.class_weights(np.arange(len(classes), dtype=np.float64).reshape(-1, 1), fitted)


def _nonfinite(a):
    """(contains NaN, contains infinity), with an O(1)-memory pass in the common case."""
    with np.errstate(over="ignore", invalid="ignore"):
        if np.isfinite(np.sum(a, dtype=np.float64)):
            return False, False
    return bool(np.isnan(a).any()), bool(np.isinf(a).any())


def _summary(block, is_classifier):
    """The small record the client needs from a loaded block."""
    X, y, sw = block
    out = {"X": _nonfinite(X), "sw": _nonfinite(sw), "sw_negative": bool((sw < 0).any())}
    if is_classifier:
        labels, inverse = np.unique(y, return_inverse=True)
        out["labels"] = labels
        out["counts"] = np.bincount(inverse.ravel(), minlength=len(labels))
        out["weights"] = np.bincount(inverse.ravel(), weights=sw, minlength=len(labels))
    else:
        out["y"] = _nonfinite(y)
        out["weight"] = float(np.sum(sw, dtype=np.float64))
    return out


def _encode(block, classes, class_weights, scale):
    """Stage 2: targets encoded for the loss, weights times class weights, normalised."""
    X, y, sw = block
    if classes is not None:
        idx = np.searchsorted(classes, y)
        Y = np.ascontiguousarray(idx.reshape(-1, 1), dtype=X.dtype)
        if class_weights is not None:
            sw = sw * class_weights[idx].astype(X.dtype, copy=False)
    else:
        Y = y
    return X, Y, np.ascontiguousarray(sw * scale, dtype=X.dtype)
