"""Linear and logistic regression trained by (mini-batch, momentum) gradient descent."""

from typing import ClassVar

import numpy as np
from sklearn.base import ClassifierMixin, RegressorMixin
from sklearn.metrics import r2_score
from sklearn.utils._param_validation import StrOptions
from sklearn.utils.class_weight import compute_class_weight
from sklearn.utils.multiclass import check_classification_targets

from ._base import BaseGD, _dask_aware
from ._cv import BaseCV, accuracy_scores, cv_constraints, r2_scores, store_parameters

_COMMON_DOC = """
    All parameters are keyword-only.

    batch_size : int >= 1, "full" or "auto", default="auto"
        Rows per step: 1 is SGD, ``"full"`` (or any int >= n_samples) is batch gradient
        descent, anything between is mini-batch. ``"auto"``: full batch for
        ``optimizer="newton-sketch"`` (the only batch it takes), else 32.
    learning_rate : {"auto", "constant", "invscaling", "adaptive", "optimal"}, default="auto"
        Step-size schedule, with ``t`` the update count from 1:

        - ``"auto"``: a constant step computed from the data's smoothness for the chosen
          batch size and momentum (see "The algorithm and its conventions" in the
          user guide);
          ``eta0`` is ignored and the step is reported in ``learning_rate_``. When the
          stopping criterion fires, the momentum is restarted (velocity set to zero)
          and, for mini-batches, the step is divided by 5 to shrink the gradient noise;
          the fit stops at the third such stall. The first two stalls are judged over
          enough epochs for 1000 updates (one epoch on large data), at most
          ``n_iter_no_change``: once a step no longer improves the objective it has
          reached its noise floor. With ``tol=None`` the step stays constant throughout.
        - ``"constant"``: ``eta0``.
        - ``"invscaling"``: ``eta0 / t ** power_t``.
        - ``"adaptive"``: ``eta0``, divided by 5 each time the stopping criterion fails
          for ``n_iter_no_change`` epochs; stops once below 1e-6.
        - ``"optimal"``: ``1 / (alpha * (t0 + t - 1))``, scikit-learn's form.
    eta0 : float > 0, default=0.01
        Initial step for "constant", "invscaling" and "adaptive".
    power_t : float >= 0, default=0.25
        Exponent of "invscaling".
    momentum : float in [0, 1), default=0.9
        Momentum ``mu`` in the PyTorch convention: ``v = mu v + g; w -= eta v``.
    nesterov : bool, default=False
        Nesterov momentum: ``w -= eta (g + mu v)``; requires ``momentum > 0``.
    optimizer : {"auto", "sgd", "adagrad", "rmsprop", "adam", "newton-sketch"}, default="auto"
        ``"auto"`` chooses the rule from the data once per fit (``partial_fit``: on the
        first call; a ``warm_start`` fit keeps the fitted choice) and reports it in
        ``optimizer_``: "newton-sketch" on dense in-memory rows where its curvature is
        affordable (``20 (d + 1)^2 <= 8 n``) and the other parameters ask for no
        stochastic steps (``batch_size``, ``learning_rate``, ``average`` and
        ``nesterov`` at their defaults, no L1 part); "adagrad" on sparse input of at
        least 10,000 rows when the fit has no penalty (the default ``alpha="auto"``
        gives none there), every step O(nnz); "sgd" (momentum) everywhere else
        (``partial_fit``, Dask input, the CV grids, wide dense data). The user guide's "Defaults" page
        gives the measurements behind the rule. The update rule, applied to the gradient ``g`` of the objective (the batch's
        mean loss gradient plus ``l2 w``; the intercept is never penalised), every
        coordinate on its own, as ``torch.optim`` does with the same gradient:

        - ``"sgd"``: ``v = mu v + g; w -= eta v`` (``momentum``, ``nesterov``).
        - ``"adagrad"``: ``s += g**2; w -= eta g / (sqrt(s) + epsilon)``.
        - ``"rmsprop"``: ``s = beta_2 s + (1 - beta_2) g**2;
          w -= eta g / (sqrt(s) + epsilon)`` (``beta_2`` is PyTorch's ``alpha``).
        - ``"adam"``: ``m = beta_1 m + (1 - beta_1) g``, ``s`` as RMSprop's, and
          ``w -= eta / (1 - beta_1**t) m / (sqrt(s) / sqrt(1 - beta_2**t) + epsilon)``.
        - ``"newton-sketch"``: one full-batch step per pass, ``w -= eta P^-1 g``, with
          ``P`` the objective's curvature on a sample of rows (per class for the
          softmax; its diagonal on wide data) and ``eta`` from a line search; ``tol``
          bounds its Newton decrement relative to the objective. Dense in-memory rows, ``fit`` only, an L2
          penalty or none (see the user guide's "Update rules").

        ``momentum`` and ``nesterov`` apply to "sgd" only; ``beta_1`` to "adam";
        ``beta_2`` to "rmsprop" and "adam"; ``epsilon`` to the three adaptive rules.
        With ``learning_rate="auto"``, the adaptive rules' step is computed from the
        rows' mean L1 norm (their first update moves each coordinate by about ``eta``;
        see the user guide's "Update rules"). An L1 penalty is the
        proximal step of each rule's own per-coordinate step (``eta l1 / (sqrt(s) +
        epsilon)`` for the adaptive ones). On sparse input, "sgd" without L1 and with a
        constant step updates only the coordinates a batch touches (O(nnz) per step);
        the other settings take the dense O(n_features) step at every update, and the
        fit warns when that is costly.
    beta_1 : float in [0, 1), default=0.9
        Adam's first-moment decay.
    beta_2 : float in [0, 1), default=0.999
        Adam's second-moment decay; RMSprop's smoothing constant.
    epsilon : float > 0, default=1e-8
        Added to the adaptive rules' denominator.
    average : bool or int >= 1, default=False
        Averaged gradient descent (scikit-learn's meaning): ``True`` reports in
        ``coef_`` and ``intercept_`` the mean of the iterates over all updates; an int
        ``n`` the mean of the iterates after the updates at which at least ``n``
        samples have been seen (until then the iterate itself). The iterate itself
        goes on being updated (training continues from it in ``partial_fit`` and with
        ``warm_start``); the average never feeds back into the steps. Works with every
        update rule and batch size. Early stopping scores the average.
    penalty : {"l2", "l1", "elasticnet"} or None, default="l2"
        Regularisation ``alpha (0.5 (1 - rho) ||W||^2 + rho ||W||_1)`` with ``rho`` 0 for
        "l2", 1 for "l1" and ``l1_ratio`` for "elasticnet". L1 is applied as a
        soft-threshold after each step. The intercept is never penalised.
    alpha : float >= 0 or "auto", default="auto"
        Penalty strength. ``"auto"`` (reported in ``alpha_``): 0, no penalty, where
        ``optimizer`` resolves to the sparse recipe (AdaGrad on sparse input of at least
        10,000 rows, stopped on held-out rows: there ``1e-4`` capped the test accuracy
        and any L2 part makes every AdaGrad step dense); ``1 / n_samples`` (the rows it
        trains on) where it resolves to "newton-sketch", the penalty of scikit-learn's
        ``LogisticRegression()`` (C=1) and ``Ridge()`` without sample weights; else
        ``1e-4``.
    l1_ratio : float in [0, 1], default=0.15
        Elastic-net mix ``rho``.
    fit_intercept : bool, default=True
        Whether to fit an intercept.
    max_iter : int >= 1, default=100
        Maximum number of epochs (passes over the training data).
    tol : float >= 0 or None, default=1e-4
        Stop when the epoch objective (or, with early stopping, the validation score)
        has not improved by ``tol`` for ``n_iter_no_change`` consecutive epochs. None runs
        all ``max_iter`` epochs.
    n_iter_no_change : int >= 1, default=5
        See ``tol``.
    early_stopping : bool or "auto", default="auto"
        ``"auto"``: on where the fit runs the sparse recipe without a penalty (see
        ``optimizer``) or ``fit`` is given ``X_val``, ``y_val``; off elsewhere and for
        the CV classes (their folds choose).
        Stop on a validation score (accuracy for the classifier, R^2 for the regressor)
        instead of the training objective: on the ``X_val``, ``y_val`` passed to ``fit``,
        or else on ``validation_fraction`` of the training rows held out (stratified for
        the classifier). Dask input needs ``X_val``, ``y_val`` (NotImplementedError
        without them). The fitted model is the one of the epoch with the best
        validation score (as scikit-learn's ``MLPClassifier`` keeps its best), not
        the last epoch's.
    validation_fraction : float in (0, 1), default=0.1
        See ``early_stopping``.
    shuffle : bool or "blocks", default=True
        True: visit the rows in a new uniform random permutation each epoch (drawn
        from ``random_state``). "blocks": visit contiguous blocks of about 16 KB of X
        in a new random order each epoch, the rows of every 16 consecutive blocks of
        that order shuffled among themselves (a CorgiPile-style block shuffle: the
        rows a step reads are near each other in memory, so an epoch of small batches
        runs at nearly the speed of storage order). False: storage order. Every
        backend visits the same order. Full batch always reads the rows in storage
        order (the order cannot change the step, only the rounding). On Dask input,
        True and "blocks" both mean a new block order and a new row order within each
        block per epoch; batches never cross blocks (see ``fastgd._dask``).
    random_state : int, RandomState instance or None, default=None
        Seeds the permutations and the validation split.
    warm_start : bool, default=False
        Start ``fit`` from the previous solution: weights, intercept, velocity and update
        counter carry over.
    n_jobs : int or None, default=None
        Threads for kernels that can use them: the full-batch gradient of the numba and
        cython backends (and cython mini-batches of 4096 rows or more); a batch of fewer
        than 2**18 values (rows x (features + 1)) runs on one thread. None or -1 uses
        every core available to the process, -2 all but one, and so on. Results do not
        depend on it: the rows are summed in fixed blocks. Sparse input and Dask input
        do not use it (on Dask the workers are the parallelism).
    dask_mode : {"average", "sequential"}, default="average"
        How mini-batch and SGD epochs run on Dask input (see ``fastgd._dask`` and the
        README's Dask section). Ignored for in-memory input and for full batch (which
        is exact and parallel on Dask already).

        - ``"average"``: every worker runs the epoch kernel at once over the blocks it
          holds (in the block and row order drawn from ``random_state``), all starting
          from the same state; every ``sync_every`` steps the workers' states (weights,
          intercept and every optimizer slot, e.g. the velocity) are averaged, weighted
          by the rows each worker visited since the last sync. An epoch then costs
          about 1/k of the sequential one on k workers, plus one small exchange of
          states per sync. It is not the in-memory fit: with a sync every step and equal
          batches it is mini-batch SGD with k times the batch; with one sync per epoch
          each worker walks its own share of the data and the average lands between
          their solutions (on the benchmark data it reached the sequential fit's test
          accuracy in the same number of epochs). ``t_`` advances by the steps of the
          longest-running worker per sync: the steps the averaged model takes. With a
          single worker (or without a ``distributed`` client) it is the sequential fit.
        - ``"sequential"``: the model visits the blocks one after another, so only one
          worker computes at a time; the fit equals the in-memory fit over the same
          visiting order whenever every block holds a whole number of batches.

        The default is "average": on a cluster it is the mode whose epochs get shorter
        with more workers, and in the measurements (README) it converged per epoch as
        well as the sequential mode.
    sync_every : int >= 1 or None, default=None
        With ``dask_mode="average"``: combine the workers' states every ``sync_every``
        steps of each worker (a sync may fall inside a block; that block's rows of
        the round are then gathered into a copy first), or once per epoch (None). More
        syncs bring the fit closer to large-batch SGD at the price of one round trip
        of the states (``(slots, K, d + 1)`` values per worker) per sync.
    backend : {"auto", "cython", "numba", "numpy"}, default="auto"
        ``"cython"``: kernels compiled when fastgd is installed (no start-up cost).
        ``"numba"``: kernels compiled on first use for this CPU and cached on disk (the
        first fit of each kind in a new environment compiles for seconds). ``"numpy"``:
        the vectorised NumPy reference. ``"auto"``: the Cython kernels when the
        extension is built (always, for ``pip install``), else Numba, else NumPy;
        ``backend_`` says which ran. All give the same iterates up to rounding.
    verbose : int, default=0
        If positive, print one line per epoch: epoch, objective, step size, updates made,
        time.

    Attributes
    ----------
    coef_ : ndarray
        Weights, float32 for float32 input, else float64.
    intercept_ : ndarray or float
    n_iter_ : int
        Epochs run.
    t_ : int
        Weight updates made.
    backend_ : str
        The backend that ran the last fit ("cython", "numba" or "numpy"; "auto"
        resolved).
    loss_curve_ : list of float
        Each epoch's objective: the weighted mean loss over the epoch's batches, each
        taken before its step (for full batch, exactly the objective at the epoch's
        starting weights), plus the penalty at the epoch's starting weights. These are
        the iterate's weights: with ``average``, ``objective`` evaluates the average.
    time_curve_ : list of float
        Seconds spent in epochs, cumulative, at the end of each epoch (aligned with
        ``loss_curve_``; set-up such as the step-size estimate is not included).
    learning_rate_ : float
        The step size used by the last update (for "auto", the computed step).
    optimizer_ : str
        The update rule that ran (``optimizer="auto"`` resolved).
    alpha_ : float
        The penalty strength that ran (``alpha="auto"`` resolved).
    validation_scores_ : list of float
        With ``early_stopping``: the validation score after each epoch.
    n_features_in_ : int
    feature_names_in_ : ndarray of str
"""


def _encode_small_integers(y):
    """``(classes, index of each label)`` of 1-D integer (or boolean) labels spanning
    fewer than ``2 n + 1024`` values, by counting (O(n): no sort); None for other
    labels, which ``np.unique`` and ``np.searchsorted`` encode. Same result as those."""
    y = np.asarray(y)
    if y.ndim != 1 or y.dtype.kind not in "biu" or y.shape[0] == 0:
        return None
    lo, hi = int(y.min()), int(y.max())
    if hi - lo >= 2 * y.shape[0] + 1024 or hi > np.iinfo(np.intp).max:
        return None
    shifted = y.astype(np.intp) - lo if lo else y.astype(np.intp, copy=False)
    present = np.flatnonzero(np.bincount(shifted, minlength=hi - lo + 1))
    lookup = np.zeros(hi - lo + 1, dtype=np.intp)
    lookup[present] = np.arange(present.shape[0])
    classes = (present + lo).astype(y.dtype)
    return classes, lookup[shifted]


def _unique_classes(classes):
    """The sorted distinct labels of partial_fit's ``classes``: 1-D, no NaN, and not a mix
    of strings and numbers (``np.asarray([0, 1, "a"])`` would silently make every label a
    string, and ``y`` of numbers would then match none)."""
    items = classes.tolist() if isinstance(classes, np.ndarray) else list(np.ravel(np.asarray(classes, dtype=object)))
    arr = np.asarray(classes)
    if arr.ndim != 1:
        raise ValueError(f"classes must be a 1-D array of labels, got shape {arr.shape}.")
    if len({isinstance(c, (str, bytes)) for c in items}) > 1:
        raise ValueError(f"classes mixes strings and numbers: {classes!r}; use labels of one type.")
    if any(isinstance(c, float) and np.isnan(c) for c in items):
        raise ValueError(f"classes contains NaN: {classes!r}.")
    return np.unique(arr)


class LinearRegression(RegressorMixin, BaseGD):
    __doc__ = (
        """Least-squares linear regression by gradient descent (mini-batch, momentum).

    Minimises ``sum_i s_i 0.5 ||y_i - W x_i - b||^2 / sum_i s_i + penalty`` for one or
    several targets.

    Parameters
    ----------"""
        + _COMMON_DOC
    )

    _is_classifier = False
    _multi_output = True

    def __init__(
        self,
        *,
        batch_size="auto",
        learning_rate="auto",
        eta0=0.01,
        power_t=0.25,
        momentum=0.9,
        nesterov=False,
        optimizer="auto",
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-8,
        average=False,
        penalty="l2",
        alpha="auto",
        l1_ratio=0.15,
        fit_intercept=True,
        max_iter=100,
        tol=1e-4,
        n_iter_no_change=5,
        early_stopping="auto",
        validation_fraction=0.1,
        shuffle=True,
        random_state=None,
        warm_start=False,
        n_jobs=None,
        backend="auto",
        dask_mode="average",
        sync_every=None,
        verbose=0,
    ):
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.eta0 = eta0
        self.power_t = power_t
        self.momentum = momentum
        self.nesterov = nesterov
        self.optimizer = optimizer
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.average = average
        self.penalty = penalty
        self.alpha = alpha
        self.l1_ratio = l1_ratio
        self.fit_intercept = fit_intercept
        self.max_iter = max_iter
        self.tol = tol
        self.n_iter_no_change = n_iter_no_change
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.shuffle = shuffle
        self.random_state = random_state
        self.warm_start = warm_start
        self.n_jobs = n_jobs
        self.backend = backend
        self.dask_mode = dask_mode
        self.sync_every = sync_every
        self.verbose = verbose

    def _targets(self, y, *, first, classes=None, partial=False):
        y = np.asarray(y)
        if first:
            ndim = y.ndim
        else:
            ndim = self._y_ndim
            if y.ndim != ndim or (ndim == 2 and y.shape[1] != self._state.shape[1]):
                raise ValueError(
                    f"y has shape {y.shape}, but this model was fitted on y with "
                    f"{'1 dimension' if ndim == 1 else f'{self._state.shape[1]} targets'}."
                )
        Y = y.reshape(-1, 1) if y.ndim == 1 else y
        return Y, Y.shape[1], "squared_error", {"_y_ndim": ndim}

    def _class_weights(self, Y, fitted):
        return None

    def _score_state(self, W, X, Y, sw=None):
        if X.shape[0] < 2:  # r2_score would warn and return NaN, and the fit never stop
            raise ValueError(
                f"early_stopping=True scores by R^2, which needs at least 2 validation "
                f"samples; validation_fraction={self.validation_fraction} leaves {X.shape[0]}."
            )
        pred = np.asarray(X @ W[:, :-1].T) + W[:, -1]
        return r2_score(Y, pred, sample_weight=sw)

    def _set_coef(self, coef, intercept):
        if self._y_ndim == 1:
            self.coef_ = coef[0]
            self.intercept_ = intercept[0]
        else:
            self.coef_ = coef
            self.intercept_ = intercept

    @_dask_aware
    def predict(self, X):
        """Predicted targets, shape (n_samples,) or (n_samples, n_targets)."""
        out = self._decision(X)
        return out[:, 0] if self._y_ndim == 1 else out

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags


class LogisticRegression(ClassifierMixin, BaseGD):
    __doc__ = (
        """Logistic regression by gradient descent (mini-batch, momentum).

    Two classes use one sigmoid output (``coef_`` has one row); three or more use a
    multinomial softmax over all classes (one row per class), not one-vs-rest. Minimises
    ``sum_i s_i logloss_i / sum_i s_i + penalty`` with ``s`` the sample weights times the
    class weights.

    Parameters
    ----------"""
        + _COMMON_DOC.replace(
            "    backend :",
            """    class_weight : dict, "balanced" or None, default=None
        Weights per class, multiplied into the sample weights; "balanced" uses
        ``n_samples / (n_classes * bincount(y))``.
    backend :""",
        )
        + """    classes_ : ndarray of shape (n_classes,)
"""
    )

    _is_classifier = True
    _multi_output = False
    _parameter_constraints: ClassVar[dict] = {
        **BaseGD._parameter_constraints,
        "class_weight": [dict, StrOptions({"balanced"}), None],
    }

    def __init__(
        self,
        *,
        batch_size="auto",
        learning_rate="auto",
        eta0=0.01,
        power_t=0.25,
        momentum=0.9,
        nesterov=False,
        optimizer="auto",
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-8,
        average=False,
        penalty="l2",
        alpha="auto",
        l1_ratio=0.15,
        fit_intercept=True,
        max_iter=100,
        tol=1e-4,
        n_iter_no_change=5,
        early_stopping="auto",
        validation_fraction=0.1,
        shuffle=True,
        random_state=None,
        warm_start=False,
        class_weight=None,
        n_jobs=None,
        backend="auto",
        dask_mode="average",
        sync_every=None,
        verbose=0,
    ):
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.eta0 = eta0
        self.power_t = power_t
        self.momentum = momentum
        self.nesterov = nesterov
        self.optimizer = optimizer
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.average = average
        self.penalty = penalty
        self.alpha = alpha
        self.l1_ratio = l1_ratio
        self.fit_intercept = fit_intercept
        self.max_iter = max_iter
        self.tol = tol
        self.n_iter_no_change = n_iter_no_change
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.shuffle = shuffle
        self.random_state = random_state
        self.warm_start = warm_start
        self.class_weight = class_weight
        self.n_jobs = n_jobs
        self.backend = backend
        self.dask_mode = dask_mode
        self.sync_every = sync_every
        self.verbose = verbose

    def _targets(self, y, *, first, classes=None, partial=False):
        # integer labels of a fit are encoded by counting (every such y is a valid
        # target); others are checked and sorted (np.unique), then looked up
        encoded = _encode_small_integers(y) if first and not partial else None
        if encoded is None:
            check_classification_targets(y)
        if first:
            if encoded is not None:
                all_classes = encoded[0]
            elif partial:
                if classes is None:
                    raise ValueError("classes must be passed on the first call to partial_fit.")
                all_classes = _unique_classes(classes)
            else:
                all_classes = np.unique(y)
            if len(all_classes) < 2:
                raise ValueError(
                    f"LogisticRegression needs samples of at least 2 classes in the data; "
                    f"got only one class: {all_classes!r}."
                )
            if self.class_weight == "balanced" and partial:
                raise ValueError(
                    "class_weight='balanced' is not supported by partial_fit, which sees one "
                    "chunk at a time: compute the weights once with "
                    "sklearn.utils.class_weight.compute_class_weight('balanced', classes=classes, "
                    "y=y) over (a sample of) all targets and pass them as a dict."
                )
        else:
            all_classes = self.classes_
            if classes is not None and not np.array_equal(np.unique(np.asarray(classes)), all_classes):
                raise ValueError(
                    f"classes={classes!r} differs from the classes of the first partial_fit "
                    f"call, {all_classes!r}."
                )
        if encoded is not None:
            idx = encoded[1]
        else:
            idx = np.searchsorted(all_classes, y)
            idx = np.minimum(idx, len(all_classes) - 1)
            unknown = all_classes[idx] != y
            if np.any(unknown):
                raise ValueError(
                    f"y contains labels not in classes {all_classes!r}: "
                    f"{np.unique(np.asarray(y)[unknown])!r}."
                )
        n_classes = len(all_classes)
        if n_classes == 2:
            return idx.reshape(-1, 1), 1, "log_loss", {"classes_": all_classes}
        return idx.reshape(-1, 1), n_classes, "multinomial", {"classes_": all_classes}

    def _class_weights(self, Y, fitted):
        if self.class_weight is None:
            return None
        classes = fitted["classes_"]
        idx = Y[:, 0].astype(np.intp)
        if self.class_weight == "balanced":
            per_class = compute_class_weight("balanced", classes=classes, y=classes[idx])
        else:
            unknown = set(self.class_weight) - set(classes.tolist())
            if unknown:
                raise ValueError(
                    f"class_weight names labels {sorted(unknown, key=str)!r} that are not "
                    f"among the classes {classes!r}."
                )
            per_class = np.ones(len(classes))
            for i, c in enumerate(classes.tolist()):
                if c in self.class_weight:
                    value = float(self.class_weight[c])
                    if not np.isfinite(value) or value < 0:
                        raise ValueError(f"class_weight[{c!r}] must be finite and >= 0, got {value!r}.")
                    per_class[i] = value
        return per_class[idx]

    def _score_state(self, W, X, Y, sw=None):
        z = np.asarray(X @ W[:, :-1].T) + W[:, -1]
        pred = (z[:, 0] > 0).astype(np.intp) if W.shape[0] == 1 else np.argmax(z, axis=1)
        return float(np.average(pred == Y[:, 0].astype(np.intp), weights=sw))

    def _set_coef(self, coef, intercept):
        self.coef_ = coef
        self.intercept_ = intercept

    @_dask_aware
    def decision_function(self, X):
        """Raw outputs: shape (n_samples,) for two classes (positive = ``classes_[1]``),
        else (n_samples, n_classes)."""
        z = self._decision(X)
        return z[:, 0] if z.shape[1] == 1 else z

    @_dask_aware
    def predict(self, X):
        """Predicted class labels."""
        z = self.decision_function(X)
        idx = (z > 0).astype(np.intp) if z.ndim == 1 else np.argmax(z, axis=1)
        return self.classes_[idx]

    @_dask_aware
    def predict_log_proba(self, X):
        """Log of the class probabilities, shape (n_samples, n_classes)."""
        z = self.decision_function(X)
        if z.ndim == 1:
            return np.column_stack([-np.logaddexp(0, z), -np.logaddexp(0, -z)])
        # shift first, then subtract the (small) log-sum: ``z - (mx + lse)`` would round
        # lse away next to a large mx (rows of float32 probabilities summed to 0.74 at
        # |z| ~ 1e7)
        shifted = z - z.max(axis=1, keepdims=True)
        return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))

    @_dask_aware
    def predict_proba(self, X):
        """Class probabilities (sigmoid for two classes, softmax otherwise)."""
        return np.exp(self.predict_log_proba(X))


_CV_DOC = """
    alphas : int or array-like of non-negative floats, default=10
        The regularisation strengths tried. An int ``n``: ``n`` values log-spaced from
        ``alpha_max``, the smallest alpha at which an L1 penalty keeps every
        coefficient at zero (the largest gradient of the loss with respect to a
        coefficient at the zero model, scikit-learn's rule for its elastic-net paths),
        down to ``1e-4 * alpha_max``, computed from the training data.
    l1_ratios : array-like of floats in [0, 1], default=None
        The elastic-net mixings tried (``penalty="elasticnet"`` only); None: 0.15 (the
        estimator's default ``l1_ratio``) alone.
    cv : int, cross-validation splitter or iterable, default=5
        As scikit-learn's ``check_cv``: an int is the number of folds of a
        (Stratified, for the classifier) KFold without shuffling.
    scoring : str, callable or None, default=None
        How each fold's held-out rows score a model: None is the estimator's ``score``
        (accuracy for the classifier, R^2 for the regressor), computed for all models
        of a fold in one product; otherwise a scikit-learn scorer.
    refit : bool, default=True
        Fit the best ``alpha`` (and ``l1_ratio``) on every row, starting from the mean
        of its fold models; False: the model is that mean itself.

    Every other parameter is the estimator's own (below) and applies to every model of
    the grid. All ``n_folds x n_alphas x n_l1_ratios`` models are fitted together: each
    epoch reads every row once for all the models it trains (``fastgd.fit_path``), and
    each model stops on its own stopping rule. Each model equals the estimator fitted
    alone on its fold's training rows, visiting them in the order of the call's random
    stream.
"""

_CV_ATTRS = """
    Attributes
    ----------
    alpha_ : float
        The chosen ``alpha``.
    l1_ratio_ : float or None
        The chosen ``l1_ratio`` (None unless ``penalty="elasticnet"``).
    alphas_, l1_ratios_ : ndarray
        The grid.
    scores_ : ndarray of shape (n_folds, n_alphas, n_l1_ratios)
        Each model's score on its fold's held-out rows (NaN: it diverged).
    coefs_paths_ : ndarray of shape (n_folds, n_alphas, n_l1_ratios, n_outputs, n_features + 1)
        Each model's weights, the intercept in the last column.
    n_iter_ : ndarray of shape (n_folds, n_alphas, n_l1_ratios)
        Epochs each model ran.
    best_estimator_ : estimator
        The final model (refitted, or the folds' mean); ``coef_``, ``intercept_`` and
        the predictions are its.
    coef_, intercept_, n_features_in_, feature_names_in_ : as the estimator's
    backend_ : str
        The backend that ran the grid.
"""


class LogisticRegressionCV(ClassifierMixin, BaseCV):
    __doc__ = (
        """Logistic regression with ``alpha`` (and ``l1_ratio``) chosen by
    cross-validation, every model of the grid fitted in one pass over the rows per epoch.

    Parameters
    ----------"""
        + _CV_DOC
        + _CV_ATTRS
    )

    _base_class = LogisticRegression
    _parameter_constraints: ClassVar[dict] = cv_constraints(LogisticRegression)
    _default_scores = staticmethod(accuracy_scores)

    def __init__(
        self,
        *,
        alphas=10,
        l1_ratios=None,
        cv=5,
        scoring=None,
        refit=True,
        batch_size="auto",
        learning_rate="auto",
        eta0=0.01,
        power_t=0.25,
        momentum=0.9,
        nesterov=False,
        optimizer="auto",
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-8,
        average=False,
        penalty="l2",
        fit_intercept=True,
        max_iter=100,
        tol=1e-4,
        n_iter_no_change=5,
        early_stopping="auto",
        validation_fraction=0.1,
        shuffle=True,
        random_state=None,
        class_weight=None,
        n_jobs=None,
        backend="auto",
        verbose=0,
    ):
        store_parameters(self, locals())

    def decision_function(self, X):
        """Raw outputs of the final model (see ``LogisticRegression.decision_function``)."""
        return self._fitted().decision_function(X)

    def predict(self, X):
        """Predicted class labels of the final model."""
        return self._fitted().predict(X)

    def predict_proba(self, X):
        """Class probabilities of the final model."""
        return self._fitted().predict_proba(X)

    def predict_log_proba(self, X):
        """Log of the class probabilities of the final model."""
        return self._fitted().predict_log_proba(X)


class LinearRegressionCV(RegressorMixin, BaseCV):
    __doc__ = (
        """Least-squares linear regression with ``alpha`` (and ``l1_ratio``) chosen by
    cross-validation, every model of the grid fitted in one pass over the rows per epoch.

    Parameters
    ----------"""
        + _CV_DOC
        + _CV_ATTRS
    )

    _base_class = LinearRegression
    _parameter_constraints: ClassVar[dict] = cv_constraints(LinearRegression)
    _default_scores = staticmethod(r2_scores)

    def __init__(
        self,
        *,
        alphas=10,
        l1_ratios=None,
        cv=5,
        scoring=None,
        refit=True,
        batch_size="auto",
        learning_rate="auto",
        eta0=0.01,
        power_t=0.25,
        momentum=0.9,
        nesterov=False,
        optimizer="auto",
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-8,
        average=False,
        penalty="l2",
        fit_intercept=True,
        max_iter=100,
        tol=1e-4,
        n_iter_no_change=5,
        early_stopping="auto",
        validation_fraction=0.1,
        shuffle=True,
        random_state=None,
        n_jobs=None,
        backend="auto",
        verbose=0,
    ):
        store_parameters(self, locals())

    def predict(self, X):
        """Predicted targets of the final model."""
        return self._fitted().predict(X)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags
