"""Cold start, run in a fresh interpreter: ``python -m bench._coldstart BACKEND``.

Prints one JSON line with
* ``import_fastgd_s``: the bare ``import fastgd``, timed on its own, first (fastgd loads
  its public names lazily, on first use);
* ``import_s``: the whole import, ``import_fastgd_s`` included: ``import fastgd`` and
  ``from fastgd import LinearRegression, LogisticRegression`` (this loads NumPy and
  scikit-learn; not the backend);
* ``first_fit_s``: the first fit, ``LinearRegression(backend=BACKEND)`` with default
  parameters on 1000 x 10 float64 data: loads the backend, and with Numba compiles the
  mini-batch kernel or loads it from the on-disk cache;
* ``other_fits_s``: seven more small fits that need the remaining kernels: logistic
  regression, full batch, float32.
The parent chooses ``NUMBA_CACHE_DIR`` (empty for a cold start, filled for a warm one).
"""

import json
import sys
import time


def main(backend):
    tic = time.perf_counter()
    import fastgd  # noqa: F401

    import_fastgd_s = time.perf_counter() - tic
    from fastgd import LinearRegression, LogisticRegression

    import_s = time.perf_counter() - tic

    import numpy as np

    rng = np.random.default_rng(0)
    X = rng.standard_normal((1000, 10))
    y = X @ rng.standard_normal(10) + 0.1 * rng.standard_normal(1000)
    labels = (y > 0).astype(np.int64)

    tic = time.perf_counter()
    LinearRegression(backend=backend).fit(X, y)
    first_fit_s = time.perf_counter() - tic

    tic = time.perf_counter()
    for dtype in (np.float64, np.float32):
        Xd = X.astype(dtype)
        for batch in (32, "full"):
            if dtype is np.float32 or batch == "full":
                LinearRegression(backend=backend, batch_size=batch, max_iter=5, tol=None).fit(Xd, y)
            LogisticRegression(backend=backend, batch_size=batch, max_iter=5, tol=None).fit(Xd, labels)
    other_fits_s = time.perf_counter() - tic
    timings = {"import_fastgd_s": import_fastgd_s, "import_s": import_s}
    timings.update(first_fit_s=first_fit_s, other_fits_s=other_fits_s)
    print(json.dumps(timings))


if __name__ == "__main__":
    main(sys.argv[1])
