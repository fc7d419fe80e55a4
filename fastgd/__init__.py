"""fastgd: linear and logistic regression by fast (mini-batch, momentum) gradient descent.

Estimators follow the scikit-learn API; kernels run on Numba (default) or NumPy.
Importing fastgd loads neither Numba nor any compiled kernel: they load on first fit.
"""

from ._base import DivergenceError
from .linear_model import LinearRegression, LogisticRegression

__version__ = "0.1.0"

__all__ = ["LinearRegression", "LogisticRegression", "DivergenceError", "__version__"]
