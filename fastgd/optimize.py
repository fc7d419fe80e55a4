"""General gradient descent on any function: ``minimize`` and ``numerical_gradient``.

These are the teaching tools of fastgd: they work on any Python function of an array of
any shape, keep every iterate so that the path can be drawn (see :mod:`fastgd.plotting`),
and follow the same update rule as the estimators (momentum in the PyTorch convention).

``scipy`` is imported only for :class:`scipy.optimize.OptimizeResult`, the result type.
"""

import inspect
import math
import numbers

import numpy as np

__all__ = ["minimize", "numerical_gradient"]

_EPS = np.finfo(np.float64).eps
# First step of the five-point central difference, relative to max(|x_i|, 1). Its error
# is about h**4 |f^(5)| / 30 (truncation) + 1.5 eps |f| / h (rounding); eps ** (1/5)
# balances the two for a function that varies on the scale of max(|x_i|, 1).
_STEP = _EPS**0.2
# Halve the step at most this many times looking for agreement (2**-30 ~ 1e-9)
_MAX_HALVINGS = 30

# minimize stops as diverged when f(x_k) - f(x_0) exceeds this many times max(1, |f(x_0)|)
DIVERGENCE_FACTOR = 1e10

# minimize's status codes
CONVERGED, MAX_ITER, DIVERGED, UNBOUNDED, CALLBACK_STOP = 0, 1, 2, 3, 99


# --------------------------------------------------------------------------------------
# numerical_gradient


def _as_float_array(x, name):
    """A float64 copy of ``x`` (any shape), or a TypeError/ValueError naming the problem."""
    try:
        arr = np.asarray(x)  # the astype below makes the copy
    except Exception as exc:  # ragged lists and the like
        raise TypeError(
            f"{name} must be a real number or an array of real numbers: {exc}"
        ) from exc
    if arr.dtype.kind not in "biuf":
        raise TypeError(
            f"{name} must be a real number or an array of real numbers, got dtype {arr.dtype}"
        )
    arr = arr.astype(np.float64)
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite; it contains NaN or infinity")
    return arr


def _scalar_value(value, where):
    """``value`` as a Python float; a ValueError/TypeError if it is not one real number."""
    arr = np.asarray(value)
    if arr.dtype.kind not in "biuf":
        raise TypeError(
            f"{where} must return a real number, got {type(value).__name__}"
            f" of dtype {arr.dtype}"
        )
    if arr.size != 1:
        raise ValueError(
            f"{where} must return a scalar, got an array of shape {arr.shape}"
            " (for one value per row, use numerical_gradient(..., batched=True))"
        )
    return float(arr.reshape(()))


def _derivative(along, center, h):
    """Derivative along one coordinate by five-point central differences, refined.

    ``along(offsets)`` returns f at ``center + offsets`` (arrays of ``center``'s shape:
    one coordinate of one point, or one coordinate of every row when batched). Starting
    from step ``h``, the step is halved until the five-point estimates with steps ``h``
    and ``h/2`` agree to within their rounding error, and the latter is returned (its
    truncation error is then below rounding, so extrapolating further gains nothing). A
    function that varies on a smaller scale than ``h``, or is undefined at
    ``center +- 2h``, just takes a few more halvings. Where no step gives agreement, the
    estimate with the smallest disagreement is returned; NaN where f was never finite.
    """
    h = (center + h) - center  # a step that center + h represents exactly
    f1, fm1, f2, fm2 = (along(k * h) for k in (1.0, -1.0, 2.0, -2.0))
    scale = np.fmax(np.fmax(abs(f1), abs(fm1)), np.fmax(abs(f2), abs(fm2)))
    coarse = (8.0 * (f1 - fm1) - (f2 - fm2)) / (12.0 * h)
    best = np.full(center.shape, np.nan)
    best_err = np.full(center.shape, np.inf)
    open_ = np.ones(center.shape, dtype=bool)
    for halving in range(_MAX_HALVINGS):
        half = 0.5 * h
        fh, fmh = along(half), along(-half)
        # five-point formula with step h/2: points +-h/2 and +-h
        fine = (8.0 * (fh - fmh) - (f1 - fm1)) / (12.0 * half)
        err = abs(fine - coarse)
        scale = np.fmax(scale, np.fmax(abs(fh), abs(fmh)))
        noise = 8.0 * _EPS * scale / half  # rounding error of `fine`, generously
        better = open_ & (err < best_err)  # False where err is NaN
        best[better] = fine[better]
        best_err[better] = err[better]
        open_ &= ~(err <= noise)  # agreement within rounding: done
        open_ &= ~((halving >= 3) & (err > 100.0 * best_err))  # rounding took over
        if not open_.any():
            break
        h, f1, fm1, coarse = half, fh, fmh, fine
    return best


def _derivative_scalar(along, center, h):
    """:func:`_derivative` for one coordinate of one point, in Python floats (the
    common case of a scalar function, where array overhead would dominate)."""
    h = (center + h) - center
    f1, fm1, f2, fm2 = along(h), along(-h), along(2.0 * h), along(-2.0 * h)
    scale = max(abs(f1), abs(fm1), abs(f2), abs(fm2))
    coarse = (8.0 * (f1 - fm1) - (f2 - fm2)) / (12.0 * h)
    best, best_err = math.nan, math.inf
    for halving in range(_MAX_HALVINGS):
        half = 0.5 * h
        fh, fmh = along(half), along(-half)
        fine = (8.0 * (fh - fmh) - (f1 - fm1)) / (12.0 * half)
        err = abs(fine - coarse)
        if err < best_err:  # False for NaN
            best, best_err = fine, err
        scale = max(scale, abs(fh), abs(fmh))
        if err <= 8.0 * _EPS * scale / half:
            break
        if halving >= 3 and err > 100.0 * best_err:
            break
        h, f1, fm1, coarse = half, fh, fmh, fine
    return best


def _five_point(f, x, batched, args, name="f"):
    """Gradient of ``f`` at ``x`` (a float64 array, not modified), one coordinate at a
    time with :func:`_derivative`. May contain NaN where f was not finite: the public
    function and ``minimize`` each decide what to do with that.
    """
    grad = np.empty_like(x)
    if batched:
        n = x.shape[0]
        flat_x = x.reshape(n, -1)
        flat_g = grad.reshape(n, -1)
        for j in range(flat_x.shape[1]):
            column = flat_x[:, j].copy()

            def along(offset, j=j, column=column):
                xp = flat_x.copy()
                xp[:, j] = column + offset
                out = np.asarray(f(xp.reshape(x.shape), *args))
                if out.shape != (n,):
                    raise ValueError(
                        f"with batched=True, {name} must return one value per row: shape"
                        f" ({n},), got {out.shape}"
                    )
                if out.dtype.kind not in "biuf":
                    raise TypeError(
                        f"{name} must return real numbers, got dtype {out.dtype}"
                    )
                return out.astype(np.float64)

            with np.errstate(all="ignore"):
                flat_g[:, j] = _derivative(
                    along, column, _STEP * np.fmax(abs(column), 1.0)
                )
        return grad

    flat_x = x.reshape(-1)
    flat_g = grad.reshape(-1)
    for i in range(flat_x.size):
        center = float(flat_x[i])

        def along(offset, i=i, center=center):
            xp = flat_x.copy()
            xp[i] = center + offset
            return _scalar_value(f(xp.reshape(x.shape), *args), name)

        with np.errstate(all="ignore"):
            flat_g[i] = _derivative_scalar(along, center, _STEP * max(abs(center), 1.0))
    return grad


def numerical_gradient(f, x, *, args=(), batched=False):
    """Gradient of ``f`` at ``x`` by central differences, accurate to about 1e-10.

    Each coordinate ``x_i`` is moved by ``±h`` and ``±2h`` and the five-point formula
    ``D(h) = (8 (f(x+h) - f(x-h)) - (f(x+2h) - f(x-2h))) / (12 h)`` is used, whose error
    is fourth order in ``h``. The step is chosen per coordinate: it starts at
    ``h = eps**(1/5) * max(|x_i|, 1)`` (about 7.4e-4 for ``|x_i| <= 1``, where rounding
    and truncation errors balance for a function that varies on the scale of ``x_i``)
    and is halved until ``D(h)`` and ``D(h/2)`` agree to within rounding error; the
    result is ``D(h/2)``. On smooth functions this agrees with the exact gradient to
    about 1e-12 to 1e-10 relative to the function's scale, where a fixed step of 1e-4
    gives about 1e-8 at best. A function
    that varies on a much smaller scale than ``x_i`` (``cos(1000 x)``), or is undefined a
    step away (``log(x)`` at ``x = 1e-4``), costs a few more halvings instead of giving a
    wrong answer. Cost: six calls of ``f`` per coordinate when the first halving
    agrees, two more per further halving.

    Parameters
    ----------
    f : callable
        ``f(x, *args)`` returns a real number, where ``x`` has the shape of ``x``.
        With ``batched=True``, see below.
    x : float or array_like of any shape
        The point. It is never modified: ``f`` receives fresh float64 copies.
    args : tuple, default=()
        Extra positional arguments for ``f``.
    batched : bool, default=False
        Many points at once. ``x`` has shape ``(n, ...)``: ``n`` rows, each a point (a
        scalar for 1-D ``x``, a vector for 2-D ``x``, and so on), and ``f(x)`` must return
        an array of shape ``(n,)`` whose entry ``r`` depends only on row ``r`` (the function
        applied row by row, as vectorised NumPy code usually does). The result has the
        shape of ``x``: row ``r`` is the gradient of ``f``'s ``r``-th value with respect to
        row ``r``. Every row is perturbed at once, so this costs four calls of ``f`` per
        coordinate of a row, whatever ``n``.

    Returns
    -------
    ndarray of float64, same shape as ``x``

    Raises
    ------
    TypeError
        ``f`` is not callable, or ``x`` or ``f``'s values are not real numbers.
    ValueError
        ``x`` is not finite, ``f`` returns an array where a scalar is expected (or the
        wrong shape when batched), or ``f`` is not finite at a point it was evaluated at.

    Examples
    --------
    >>> import numpy as np
    >>> g = numerical_gradient(lambda v: v[0] ** 2 + 3 * v[1], np.array([1.0, 2.0]))
    >>> np.allclose(g, [2.0, 3.0], rtol=1e-10)
    True
    >>> numerical_gradient(np.sin, np.array([0.0, np.pi]), batched=True).round(10)
    array([ 1., -1.])
    """
    if not callable(f):
        raise TypeError(f"f must be callable, got {type(f).__name__}")
    if not isinstance(args, tuple):
        args = (args,)
    xw = _as_float_array(x, "x")
    if batched and xw.ndim == 0:
        raise ValueError(
            "with batched=True, x must have at least one dimension (the rows)"
        )
    grad = _five_point(f, xw, bool(batched), args)
    if not np.all(np.isfinite(grad)):
        bad = np.unravel_index(np.flatnonzero(~np.isfinite(grad))[0], grad.shape)
        raise ValueError(
            f"f is not finite near x at index {tuple(int(i) for i in bad)}: the numerical"
            " gradient there is undefined"
        )
    return grad


# --------------------------------------------------------------------------------------
# minimize


def _check_real(value, name, low=None, low_open=False, high=None, high_open=False):
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    if low is not None and (value < low or (low_open and value == low)):
        bound = f"> {low}" if low_open else f">= {low}"
        raise ValueError(f"{name} must be {bound}, got {value}")
    if high is not None and (value > high or (high_open and value == high)):
        bound = f"< {high}" if high_open else f"<= {high}"
        raise ValueError(f"{name} must be {bound}, got {value}")
    return value


def _norm(a):
    """Euclidean norm without overflow warnings (a huge vector's norm is inf)."""
    with np.errstate(over="ignore", invalid="ignore"):
        return float(np.linalg.norm(a))


def _callback_wants_result(callback):
    """True if ``callback`` takes one parameter named ``intermediate_result`` (scipy's
    newer callback convention), False for the classic ``callback(xk)``."""
    try:
        params = inspect.signature(callback).parameters
    except (TypeError, ValueError):  # some builtins have no signature
        return False
    return set(params) == {"intermediate_result"}


def minimize(
    fun,
    x0,
    args=(),
    *,
    jac=None,
    learning_rate=0.1,
    momentum=0.0,
    nesterov=False,
    max_iter=1000,
    tol=1e-8,
    callback=None,
    **options,
):
    """Minimise ``fun`` by gradient descent from ``x0``, keeping every iterate.

    Each iteration takes one step (``mu`` the momentum, ``eta`` the learning rate,
    ``g`` the gradient at the current iterate, ``v`` starting at zero)::

        v <- mu v + g
        x <- x - eta v                 (plain momentum; mu = 0 is plain gradient descent)
        x <- x - eta (g + mu v)        (nesterov=True)

    the PyTorch convention, as in fastgd's estimators.

    Parameters
    ----------
    fun : callable
        ``fun(x, *args)`` returns a real number; ``x`` has the shape of ``x0``. With
        ``jac=True`` it returns ``(value, gradient)``.
    x0 : float or array_like of any shape
        Start point (not modified). A scalar gives a scalar problem: ``res.x`` is then a
        0-d array and ``res.path`` is 1-D.
    args : tuple, default=()
        Extra positional arguments for ``fun`` and ``jac``.
    jac : None, False, True or callable, default=None
        The gradient: None/False computes it with :func:`numerical_gradient`; True means
        ``fun`` returns ``(value, gradient)``; a callable ``jac(x, *args)`` returns it.
    learning_rate : float > 0, default=0.1
    momentum : float in [0, 1), default=0.0
    nesterov : bool, default=False
        Nesterov momentum (requires ``momentum > 0``).
    max_iter : int >= 0, default=1000
        Maximum number of steps (``maxiter`` is accepted as an alias, as scipy spells it).
    tol : float >= 0, default=1e-8
        Converged when the gradient's Euclidean norm at the current iterate is ``<= tol``
        and, with momentum, the last step's length ``||x_k - x_{k-1}||`` is ``<= tol`` as
        well (an iterate moving fast through a flat point has not converged). Checked
        before every step, so a start point that already satisfies it gives ``nit = 0``.
    callback : callable, optional
        Called after every step as ``callback(xk)`` with a copy of the new iterate, or,
        if its only parameter is named ``intermediate_result``, with an
        ``OptimizeResult`` holding ``x``, ``fun``, ``jac`` and ``nit`` (scipy's
        conventions). Returning True or raising ``StopIteration`` stops the descent.
    **options
        Accepted for use as ``scipy.optimize.minimize(fun, x0, method=minimize, ...)``:
        scipy passes ``hess``, ``hessp``, ``bounds`` and ``constraints``, which must be
        unset (gradient descent uses none of them), and its ``options`` dict as keywords.
        Any other keyword with a value other than None is an error.

    Returns
    -------
    scipy.optimize.OptimizeResult
        ``x`` (shape of ``x0``), ``fun``, ``jac`` (gradient at ``x``), ``nit`` (steps
        taken), ``nfev`` (calls of ``fun``, including those of the numerical gradient),
        ``njev`` (calls of ``jac``), ``success``, ``status`` (0 converged, 1 ``max_iter``
        reached, 2 diverged, 3 the objective fell to -inf, 99 stopped by the callback),
        ``message``, ``path`` (every iterate, ``x0`` first: shape ``(nit + 1, *x0.shape)``)
        and ``fun_path`` (``fun`` at each, shape ``(nit + 1,)``).

        **Divergence**: if an iterate, its value or its gradient is not finite, or
        ``fun`` has grown by more than ``1e10 * max(1, |fun(x0)|)`` above ``fun(x0)``, the
        descent stops with ``success=False`` and a message saying the learning rate is
        too large. ``path`` keeps every iterate up to that point whose value is finite
        (an iterate that is not is left out), and ``x``/``fun`` are its last entry.

    Raises
    ------
    TypeError, ValueError
        For invalid arguments (named in the message), and when ``fun`` or the gradient
        at ``x0`` is not finite or has the wrong shape.

    Examples
    --------
    >>> res = minimize(lambda x: (x - 3.0) ** 2, 0.0, jac=lambda x: 2 * (x - 3.0))
    >>> round(float(res.x), 8), res.success, res.path.shape == (res.nit + 1,)
    (3.0, True, True)
    """
    from scipy.optimize import OptimizeResult

    # ---- arguments
    if not callable(fun):
        raise TypeError(f"fun must be callable, got {type(fun).__name__}")
    if not isinstance(args, tuple):
        args = (args,)
    if "maxiter" in options:
        maxiter = options.pop("maxiter")
        if maxiter is not None:
            if max_iter != 1000 and max_iter != maxiter:
                raise TypeError("give max_iter or maxiter, not both")
            max_iter = maxiter
    for key in ("hess", "hessp", "bounds"):
        if options.pop(key, None) is not None:
            raise ValueError(f"gradient descent does not use {key}; leave it unset")
    constraints = options.pop("constraints", ())
    if constraints is not None and len(constraints) > 0:
        raise ValueError("gradient descent cannot handle constraints; leave them unset")
    unknown = sorted(k for k, v in options.items() if v is not None)
    if unknown:
        raise TypeError(
            f"minimize() got unexpected keyword argument(s): {', '.join(unknown)}"
        )

    learning_rate = _check_real(learning_rate, "learning_rate", low=0.0, low_open=True)
    momentum = _check_real(momentum, "momentum", low=0.0, high=1.0, high_open=True)
    if not isinstance(nesterov, (bool, np.bool_)):
        raise TypeError(f"nesterov must be True or False, got {nesterov!r}")
    if nesterov and momentum == 0.0:
        raise ValueError("nesterov=True requires momentum > 0")
    if isinstance(max_iter, (bool, np.bool_)) or not isinstance(
        max_iter, numbers.Integral
    ):
        raise TypeError(f"max_iter must be an int, got {type(max_iter).__name__}")
    max_iter = int(max_iter)
    if max_iter < 0:
        raise ValueError(f"max_iter must be >= 0, got {max_iter}")
    tol = _check_real(tol, "tol", low=0.0)
    if callback is not None and not callable(callback):
        raise TypeError(
            f"callback must be callable or None, got {type(callback).__name__}"
        )
    if isinstance(jac, (bool, np.bool_)):
        jac = bool(jac)
    elif not (jac is None or callable(jac)):
        raise TypeError(
            f"jac must be None, True/False or a callable, got {type(jac).__name__}"
        )

    x = _as_float_array(x0, "x0")
    shape = x.shape

    # ---- evaluation of (value, gradient); counts calls
    counts = {"nfev": 0, "njev": 0}

    def counted_fun(z, *a):
        counts["nfev"] += 1
        return fun(z, *a)

    def check_gradient(g, where):
        g = np.asarray(g)
        if g.dtype.kind not in "biuf":
            raise TypeError(f"{where} must return real numbers, got dtype {g.dtype}")
        if g.shape != shape:
            raise ValueError(
                f"{where} returned shape {g.shape}; the gradient must have"
                f" the shape of x0, {shape}"
            )
        return g.astype(np.float64)  # a copy: the caller may reuse its buffer

    def evaluate(z):
        """(value, gradient) at z; the gradient may be non-finite (checked by caller)."""
        if jac is True:
            out = counted_fun(z.copy(), *args)
            if not (isinstance(out, (tuple, list)) and len(out) == 2):
                raise TypeError(
                    "with jac=True, fun must return a pair (value, gradient)"
                )
            value = _scalar_value(out[0], "fun")
            return value, check_gradient(out[1], "fun (its gradient)")
        value = _scalar_value(counted_fun(z.copy(), *args), "fun")
        if not math.isfinite(value):
            return value, np.full(shape, np.nan)
        if callable(jac):
            counts["njev"] += 1
            return value, check_gradient(jac(z.copy(), *args), "jac")
        with np.errstate(all="ignore"):
            return value, _five_point(counted_fun, z, False, args, "fun")

    fx, g = evaluate(x)
    if not math.isfinite(fx):
        raise ValueError(
            f"fun(x0) is not finite ({fx}); start from a point where it is"
        )
    if not np.all(np.isfinite(g)):
        raise ValueError(
            "the gradient at x0 is not finite; start from a point where it is"
        )

    wants_result = callback is not None and _callback_wants_result(callback)
    path = [x.copy()]
    fun_path = [fx]
    f0 = fx
    growth_bound = DIVERGENCE_FACTOR * max(1.0, abs(f0))
    v = np.zeros(shape)
    step_len = 0.0
    status = MAX_ITER
    nit = 0

    def lr_message(what, k):
        return (
            f"Diverged: {what} at iteration {k}; the learning rate {learning_rate:g} is"
            " too large for this function (try a smaller one)"
        )

    while True:
        if _norm(g) <= tol and (momentum == 0.0 or step_len <= tol):
            status = CONVERGED
            message = (
                f"Converged: gradient norm <= tol = {tol:g}"
                + (" and step length <= tol" if momentum else "")
                + f" after {nit} iterations"
            )
            break
        if nit >= max_iter:
            message = (
                f"Stopped: max_iter = {max_iter} iterations reached before convergence"
            )
            break

        # ---- one step
        with np.errstate(over="ignore", invalid="ignore"):
            if momentum:
                v = momentum * v + g
                step = g + momentum * v if nesterov else v
            else:
                step = g
            x_new = x - learning_rate * step
        k = nit + 1
        if not np.all(np.isfinite(x_new)):
            status, message = DIVERGED, lr_message("the iterate is not finite", k)
            break
        with np.errstate(over="ignore", invalid="ignore"):
            f_new, g_new = evaluate(x_new)
        if math.isnan(f_new) or f_new == math.inf:
            status, message = DIVERGED, lr_message(f"fun = {f_new}", k)
            break
        if f_new == -math.inf:
            status = UNBOUNDED
            message = (
                f"Stopped: fun fell to -inf at iteration {k}; the function may be"
                " unbounded below (or the learning rate too large)"
            )
            break

        step_len = _norm(x_new - x)
        x, fx, g = x_new, f_new, g_new
        nit = k
        path.append(x.copy())
        fun_path.append(fx)

        if fx - f0 > growth_bound:
            status = DIVERGED
            message = lr_message(f"fun grew from {f0:.6g} to {fx:.6g}", k)
            break
        if not np.all(np.isfinite(g)):
            status, message = DIVERGED, lr_message("the gradient is not finite", k)
            break

        if callback is not None:
            try:
                if wants_result:
                    stop = callback(
                        intermediate_result=OptimizeResult(
                            x=x.copy(), fun=fx, jac=g.copy(), nit=nit
                        )
                    )
                else:
                    stop = callback(x.copy())
            except StopIteration:
                stop = True
            if stop is True:
                status = CALLBACK_STOP
                message = f"Stopped by the callback after {nit} iterations"
                break

    return OptimizeResult(
        x=x,
        fun=fx,
        jac=g,
        nit=nit,
        nfev=counts["nfev"],
        njev=counts["njev"],
        success=status == CONVERGED,
        status=status,
        message=message,
        path=np.array(path).reshape((nit + 1,) + shape),
        fun_path=np.array(fun_path),
    )
