"""scikit-learn's estimator checks over every estimator x backend.

No check is marked as an expected failure: all pass, including the sample-weight
equivalence check (weights are normalised to mean 1, so a weight of 2 acts like a
repeated row in expectation, and the fit converges tightly on the check's data).
"""

import pytest
from sklearn.utils.estimator_checks import parametrize_with_checks

from fastgd import LinearRegression, LogisticRegression
from fastgd._backends import BACKENDS

ESTIMATORS = [
    cls(backend=backend, random_state=0)
    for cls in (LinearRegression, LogisticRegression)
    for backend in sorted(BACKENDS)
]


# the checks fit tiny data sets with the default tol; reaching max_iter there is expected
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@parametrize_with_checks(ESTIMATORS)
def test_sklearn_compatible(estimator, check):
    check(estimator)
