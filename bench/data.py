"""The benchmark problems: every data generator of ``bench/``, deterministic, in memory.

* ``"linear"`` / ``"logistic"`` (:func:`make_data`, the epoch timings): Gaussian
  features, ``y = X w + 0.3 + 0.5 * noise`` with ``w ~ N(0, 1/d)`` (so ``y`` has
  unit-order scale and the optimal objective is about 0.125); scikit-learn's
  ``make_classification`` (:func:`classification`: two classes, ``d // 5`` informative
  and ``d // 10`` redundant features, 1 % flipped labels).
* :func:`dense_problem`: standard normal features, a random linear score plus noise
  (the fit and update-rule sections).
* :func:`multinomial_data`: a multinomial logit model, K classes.
* :func:`make_sparse`: text-like CSR rows (hashed features, Zipf-like column
  frequencies, unit-norm rows), labels from random weights.
* :func:`make_clicks`: one-hot hashed categorical fields (click logs), labels from a
  logistic model.
* :func:`make_text`: tf-idf rows of documents drawn from a topic model (a Zipf
  background vocabulary and one topic of rarer words per class), any number of classes.
* :class:`Problem` and :func:`make_problem`: a named logistic problem of any of these
  kinds, split 80/20 (:func:`split`) into training and test rows (the race and the
  cross-validation section).
"""

import functools
import math
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

SEED = 0


def classification(n, d, seed):
    """``make_classification(n, d)`` with ``d // 5`` informative and ``d // 10`` redundant
    features (integer labels 0/1, not cached): the "logistic" data and the
    time-to-accuracy race's."""
    from sklearn.datasets import make_classification

    return make_classification(
        n_samples=n,
        n_features=d,
        n_informative=max(2, d // 5),
        n_redundant=d // 10,
        random_state=seed,
    )


@functools.lru_cache(maxsize=4)
def _float64(model, n, d, seed):
    if model == "linear":
        rng = np.random.default_rng(seed)
        X = rng.standard_normal((n, d))
        w = rng.standard_normal(d) / np.sqrt(d)
        y = X @ w + 0.3 + 0.5 * rng.standard_normal(n)
    elif model == "logistic":
        X, y = classification(n, d, seed)
        y = y.astype(np.float64)
    else:
        raise ValueError(f"unknown model {model!r}")
    return np.ascontiguousarray(X), y


@functools.lru_cache(maxsize=2)
def _float32(model, n, d, seed):
    X, y = _float64(model, n, d, seed)
    return np.ascontiguousarray(X, dtype=np.float32), y


def make_data(model, n, d, dtype="float64", seed=0):
    """``(X, y)`` for ``model`` ("linear" or "logistic"), C-contiguous, cached (the same
    call returns the same arrays: do not modify them). ``y`` is float64 (0/1 for
    "logistic")."""
    if np.dtype(dtype) == np.float32:
        return _float32(model, n, d, seed)
    return _float64(model, n, d, seed)


def clear_cache():
    """Drop the cached arrays (the large sizes take hundreds of MB)."""
    _float32.cache_clear()
    _float64.cache_clear()


def dense_problem(n, d, seed=SEED):
    """``(X, y_regression, y_binary)``: standard normal features, a random linear score
    ``X w + 0.5 noise`` (``w ~ N(0, 4/d)``) and its sign as 0/1 labels."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    score = X @ (rng.standard_normal(d) / np.sqrt(d) * 2.0) + 0.5 * rng.standard_normal(n)
    return X, score, (score > 0).astype(np.int64)


def multinomial_data(n, d, classes, seed=SEED):
    """``(X, y)``: standard normal features, labels the argmax of a random linear score
    per class plus Gumbel noise (a multinomial logit model), so the classes are learnable
    but overlap."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    W = rng.standard_normal((classes, d)) * (3.0 / math.sqrt(d))
    scores = X @ W.T + rng.gumbel(size=(n, classes))
    return X, np.argmax(scores, axis=1).astype(np.int64)


def make_sparse(n, d, nnz=50, seed=SEED):
    """``(X, y)``: CSR (n, d) float64 with about ``nnz`` entries per row (duplicates summed,
    so a little fewer), unit-norm rows, labels 0/1; deterministic."""
    rng = np.random.default_rng(seed)
    # rank r with probability ~ 1 / (r + 10): the inverse of the continuous CDF
    # log((r + 10) / 10) / log((d + 10) / 10) at uniform draws
    u = rng.random(n * nnz)
    ranks = np.minimum((10.0 * np.exp(u * np.log((d + 10.0) / 10.0)) - 10.0).astype(np.int64), d - 1)
    cols = rng.permutation(d)[ranks]
    vals = rng.exponential(1.0, n * nnz)
    X = sp.csr_matrix((vals, cols, np.arange(0, n * nnz + 1, nnz)), shape=(n, d))
    X.sum_duplicates()
    norms = np.sqrt(np.bincount(np.repeat(np.arange(n), np.diff(X.indptr)), weights=X.data**2, minlength=n))
    X.data /= np.repeat(np.maximum(norms, 1e-300), np.diff(X.indptr))
    X.indices = X.indices.astype(np.int32)
    X.indptr = X.indptr.astype(np.int32)
    w = rng.standard_normal(d) * 3.0
    z = X @ w
    y = (z + 0.3 * rng.standard_normal(n) > np.median(z)).astype(np.int64)
    return X, y


def tfidf(counts):
    """The tf-idf rows of a CSR matrix of word counts: ``(1 + log count) * idf`` with
    scikit-learn's smooth ``idf = log((1 + n) / (1 + df)) + 1``, rows scaled to unit
    norm, int32 indices."""
    X = counts.tocsr(copy=True)
    X.sum_duplicates()
    df = np.bincount(X.indices, minlength=X.shape[1])
    idf = np.log((1.0 + X.shape[0]) / (1.0 + df)) + 1.0
    X.data = (1.0 + np.log(X.data)) * idf[X.indices]
    lengths = np.diff(X.indptr)
    norms = np.sqrt(np.bincount(np.repeat(np.arange(X.shape[0]), lengths), weights=X.data**2, minlength=X.shape[0]))
    X.data /= np.repeat(np.maximum(norms, 1e-300), lengths)
    X.indices = X.indices.astype(np.int32)
    X.indptr = X.indptr.astype(np.int32)
    return X


def make_text(n, d, classes=2, words=50, seed=SEED, topic_share=None, topic_words=None, flip=0.05):
    """``(X, y)``: tf-idf rows (CSR, ``d`` words) of ``n`` documents of about ``words``
    tokens, labels 0 .. ``classes - 1``; deterministic.

    Each token is, with probability ``topic_share``, a word of the document's class
    topic (``topic_words`` words of that class, drawn Zipf-like), else a word of the
    background vocabulary (all ``d`` words, Zipf-like: rank r with probability about
    1/r). A fraction ``flip`` of the labels is then redrawn uniformly. The defaults
    (3 % topic tokens over 30,000 words for two classes, 8 % over 5,000 for more) give
    test accuracies near 0.78 and 0.88 for scikit-learn's ``LogisticRegression()``."""
    rng = np.random.default_rng(seed)
    if topic_share is None:
        topic_share = 0.03 if classes == 2 else 0.08
    if topic_words is None:
        topic_words = min(d, 30_000 if classes == 2 else 5_000)
    y = rng.integers(0, classes, n)
    lengths = 1 + rng.poisson(words, n)
    rows = np.repeat(np.arange(n), lengths)
    tokens = rows.shape[0]

    def zipf(size, vocabulary):  # ranks 0 .. vocabulary - 1 with probability about 1 / (rank + 1)
        return np.minimum((np.exp(rng.random(size) * np.log(vocabulary)) - 1).astype(np.int64), vocabulary - 1)

    cols = rng.permutation(d)[zipf(tokens, d)]
    topics = np.stack([rng.choice(d, topic_words, replace=False) for _ in range(classes)])
    topical = rng.random(tokens) < topic_share
    cols = np.where(topical, topics[y[rows], zipf(tokens, topic_words)], cols)
    X = tfidf(sp.csr_matrix((np.ones(tokens), (rows, cols)), shape=(n, d)))
    flipped = rng.random(n) < flip
    y = np.where(flipped, rng.integers(0, classes, n), y).astype(np.int64)
    return X, y


def make_clicks(n, d, fields=30, seed=SEED):
    """``(X, y)``: click-log-like CSR rows: ``fields`` categorical fields, each of a
    random cardinality between 5 and 5,000 with Zipf-like value frequencies, one-hot and
    hashed into ``d`` columns (value 1, no scaling); labels drawn from a logistic model
    with a random weight per hashed column (so about a quarter of the rows are
    positive); deterministic."""
    rng = np.random.default_rng(seed)
    cardinality = rng.integers(5, 5000, fields)
    values = np.stack([np.minimum((np.exp(rng.random(n) * np.log(c)) - 1).astype(np.int64), c - 1)
                       for c in cardinality], axis=1)
    cols = (values * 1_000_003 + np.arange(fields) * 7_919_000_023) % d
    w = rng.standard_normal(d) * 0.5
    z = w[cols].sum(axis=1) - 1.0
    y = (rng.random(n) < 1.0 / (1.0 + np.exp(-z))).astype(np.int64)
    X = sp.csr_matrix((np.ones(n * fields), (np.repeat(np.arange(n), fields), cols.ravel())), shape=(n, d))
    X.sum_duplicates()
    X.indices = X.indices.astype(np.int32)
    X.indptr = X.indptr.astype(np.int32)
    return X, y


def row_norms(X):
    """Euclidean norm of each row of a CSR matrix."""
    return np.sqrt(np.asarray(X.multiply(X).sum(axis=1)).ravel())


def split(X, y, seed=SEED):
    """``(X_train, y_train, X_test, y_test)``: a random 80 % / 20 % split of the rows."""
    order = np.random.default_rng(seed + 1).permutation(X.shape[0])
    cut = int(0.8 * X.shape[0])
    return X[order[:cut]], y[order[:cut]], X[order[cut:]], y[order[cut:]]


@dataclass(frozen=True)
class Problem:
    """A logistic problem: ``n`` rows (before the 80/20 split) × ``d`` features;
    ``classes`` > 2 is multinomial, ``nnz`` > 0 sparse with about that many non-zeros
    per row (``text``: tf-idf rows of :func:`make_text`, else :func:`make_sparse`),
    else ``make_classification``."""

    key: str
    title: str
    n: int
    d: int
    classes: int = 2
    nnz: int = 0
    text: bool = False

    @property
    def sparse(self):
        return self.nnz > 0

    @property
    def label(self):
        d = f"2^{round(math.log2(self.d))}" if self.sparse else f"{self.d:,}"
        extra = f", ~{self.nnz} non-zeros per row" if self.sparse else ""
        classes = f", {self.classes} classes" if self.classes > 2 else ""
        return f"{self.title}: {self.n:,} × {d}{extra}{classes}"


def make_problem(problem, seed=SEED):
    """``(X_train, y_train, X_test, y_test)`` of ``problem``, deterministic (labels int64;
    dense X C-contiguous, sparse X CSR)."""
    if problem.text:
        X, y = make_text(problem.n, problem.d, problem.classes, problem.nnz, seed=seed)
    elif problem.sparse:
        X, y = make_sparse(problem.n, problem.d, problem.nnz, seed=seed)
    elif problem.classes > 2:
        X, y = multinomial_data(problem.n, problem.d, problem.classes, seed=seed)
    else:
        X, y = classification(problem.n, problem.d, seed)
        X = np.ascontiguousarray(X)
    Xtr, ytr, Xte, yte = split(X, np.asarray(y, dtype=np.int64), seed=seed)
    if not problem.sparse:
        Xtr, Xte = np.ascontiguousarray(Xtr), np.ascontiguousarray(Xte)
    return Xtr, ytr, Xte, yte
