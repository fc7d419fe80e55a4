"""The data-aware defaults, checked: fastgd's default ``LogisticRegression()`` against
the recipe it replaced and against scikit-learn, on generators of several kinds.

``python -m bench.defaults_bench [--scale F] [--problems KEYS]`` fits, on each problem
(80/20 split, one thread each, whole ``fit`` calls timed after a warm-up):

* ``fastgd default``: ``LogisticRegression()`` as it is (its ``optimizer_`` and
  ``alpha_`` printed);
* ``fastgd fixed recipe``: ``optimizer="sgd", alpha=1e-4, early_stopping=False``, the
  defaults before the data-aware ones;
* scikit-learn's ``LogisticRegression()`` (lbfgs, C=1), ``SGDClassifier(loss="log_loss")``
  and ``SGDClassifier()`` (hinge).

It prints one Markdown table per run: test accuracy and seconds of each. The problems
differ in sparsity, vocabulary size, label noise, class count and number of rows
(:data:`PROBLEMS`); the user guide's "Defaults" page quotes a run.
"""

import argparse
import time
import warnings

import numpy as np

from .data import classification, make_clicks, make_sparse, make_text, multinomial_data, split
from .formatting import fmt_time, md_table
from .race_bench import thread_limit

SEED = 0

# key -> (title, function of scale returning (X, y))
PROBLEMS = {
    "tfidf": ("tf-idf, 2 classes, 2^20 words, 200,000 rows", lambda f: make_text(int(200_000 * f), 2**20, 2, 50, seed=1)),
    "tfidf-noisy": ("tf-idf, 2 classes, 2^18 words, 20 % flipped labels, 100,000 rows",
                    lambda f: make_text(int(100_000 * f), 2**18, 2, 30, seed=5, topic_share=0.06, flip=0.2)),
    "randw": ("random sparse weights, 2^18 columns, 200,000 rows", lambda f: make_sparse(int(200_000 * f), 2**18, 50, seed=3)),
    "clicks": ("hashed one-hot clicks, 2^20 columns, 200,000 rows", lambda f: make_clicks(int(200_000 * f), 2**20, seed=4)),
    "text5": ("tf-idf, 5 classes, 2^18 words, 60,000 rows",
              lambda f: make_text(int(60_000 * f), 2**18, 5, 40, seed=5, topic_share=0.05, flip=0.1)),
    "text20": ("tf-idf, 20 classes, 2^18 words, 100,000 rows", lambda f: make_text(int(100_000 * f), 2**18, 20, 60, seed=2)),
    "small-sparse": ("random sparse weights, 2^18 columns, 5,000 rows", lambda f: make_sparse(max(500, int(5_000 * f)), 2**18, 50, seed=6)),
    "dense": ("dense make_classification 200,000 × 100", lambda f: classification(int(200_000 * f), 100, 7)),
    "dense10": ("dense 10-class 200,000 × 100", lambda f: multinomial_data(int(200_000 * f), 100, 10, seed=8)),
}


def contenders():
    from sklearn.linear_model import LogisticRegression as SkLR
    from sklearn.linear_model import SGDClassifier

    from fastgd import LogisticRegression

    return {
        "fastgd default": lambda: LogisticRegression(random_state=SEED),
        "fastgd fixed recipe": lambda: LogisticRegression(optimizer="sgd", alpha=1e-4, early_stopping=False,
                                                          random_state=SEED),
        "lbfgs C=1": lambda: SkLR(max_iter=1000),
        "SGDClassifier(log_loss)": lambda: SGDClassifier(loss="log_loss", random_state=SEED),
        "SGDClassifier() hinge": lambda: SGDClassifier(random_state=SEED),
    }


def run(keys, scale, stream=print):
    rows = []
    makers = contenders()
    with thread_limit(1):
        for key in keys:
            title, make = PROBLEMS[key]
            X, y = make(scale)
            Xtr, ytr, Xte, yte = split(X, np.asarray(y, dtype=np.int64), seed=SEED)
            row = [title]
            for name, new in makers.items():
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    new().set_params(max_iter=2).fit(Xte[:1000], yte[:1000])  # warm-up, untimed
                    est = new()
                    tic = time.perf_counter()
                    est.fit(Xtr, ytr)
                    wall = time.perf_counter() - tic
                acc = est.score(Xte, yte)
                extra = f" ({est.optimizer_})" if name == "fastgd default" else ""
                row.append(f"{acc:.4f} / {fmt_time(wall)}{extra}")
                stream(f"  {key}: {name}: accuracy {acc:.4f} in {fmt_time(wall)}{extra}")
            rows.append(row)
    return md_table(["problem", *makers], rows)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m bench.defaults_bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of each problem's rows (default 1)")
    parser.add_argument("--problems", default=",".join(PROBLEMS), help="comma-separated subset of " + ", ".join(PROBLEMS))
    args = parser.parse_args(argv)
    lines = run(args.problems.split(","), args.scale, stream=lambda line: print(line, flush=True))
    print()
    print("test accuracy / seconds of the whole fit, one thread each")
    print()
    print("\n".join(lines))


if __name__ == "__main__":
    main()
