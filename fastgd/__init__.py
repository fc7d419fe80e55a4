"""fastgd: linear and logistic regression by fast (mini-batch, momentum) gradient descent.

Estimators follow the scikit-learn API; kernels run on Cython (the default when built),
Numba or NumPy.
Importing fastgd is cheap: public names load on first use (PEP 562), and Numba or a
compiled kernel loads on the first fit.
"""

import importlib

__version__ = "0.1.0"

# public name -> module that defines it (relative to this package)
_LAZY = {
    "LinearRegression": ".linear_model",
    "LogisticRegression": ".linear_model",
    "LinearRegressionCV": ".linear_model",
    "LogisticRegressionCV": ".linear_model",
    "fit_path": "._path",
    "Path": "._path",
    "DenseStepWarning": "._run",
    "DivergenceError": "._run",
    "minimize": ".optimize",
    "numerical_gradient": ".optimize",
}

__all__ = [  # the keys of _LAZY (a test checks) and the version
    "DenseStepWarning",
    "DivergenceError",
    "LinearRegression",
    "LinearRegressionCV",
    "LogisticRegression",
    "LogisticRegressionCV",
    "Path",
    "__version__",
    "fit_path",
    "minimize",
    "numerical_gradient",
]


def __getattr__(name):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'fastgd' has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
