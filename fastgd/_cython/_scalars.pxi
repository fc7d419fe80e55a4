# Included by the dense kernels (_kernels.pxi) and the sparse ones (_sparse.pyx): the
# registry codes and hp positions as C constants, the step size and the scalar losses,
# written once for both.

# registry codes as C constants (read once from the registries at import)
cdef int64_t SQUARED = _SQUARED
cdef int64_t LOG = _LOG
cdef int64_t MULTINOMIAL = _MULTINOMIAL
cdef int64_t CONSTANT = _CONSTANT
cdef int64_t INVSCALING = _INVSCALING
cdef int64_t OPTIMAL = _OPTIMAL

# positions in hp as C constants
cdef Py_ssize_t P_ETA0 = P.ETA0, P_POWER_T = P.POWER_T, P_OPTIMAL_T0 = P.OPTIMAL_T0
cdef Py_ssize_t P_L2 = P.L2, P_L1 = P.L1, P_MOMENTUM = P.MOMENTUM, P_ALPHA = P.ALPHA


cdef inline double _step_size(int64_t code, int64_t t, double eta0, double power_t,
                              double t0, double alpha) noexcept nogil:
    if code == INVSCALING:
        return eta0 / pow(<double> t, power_t)
    if code == OPTIMAL:
        return 1.0 / (alpha * (t0 + <double> (t - 1)))  # t - 1 in integers: t0 is not lost next to t
    return eta0  # CONSTANT (other codes are rejected before the loops start)


cdef inline double _loss_grad_single(int64_t code, floating *p, floating y) noexcept nogil:
    """``_loss_grad`` for one output and a single-output loss (squared or log): small
    enough to be inlined into the row loops."""
    cdef double z, e, value, sig
    cdef floating r
    if code == SQUARED:
        r = p[0] - y
        p[0] = r
        return 0.5 * r * r
    z = p[0]
    if z > 0:
        e = exp(-z)
        value = z * (1.0 - y) + log1p(e)
        sig = 1.0 / (1.0 + e)
    else:
        e = exp(z)
        value = log1p(e) - y * z
        sig = e / (1.0 + e)
    p[0] = <floating> (sig - y)
    return value


cdef inline double _loss_grad(int64_t code, floating *p, const floating *y,
                              Py_ssize_t K) noexcept nogil:
    """Return the loss of one row; overwrite ``p`` (its K raw outputs) with dloss/dp."""
    cdef Py_ssize_t k, c
    cdef floating r
    cdef double s, z, e, mx
    if code == SQUARED:
        s = 0.0
        for k in range(K):
            r = p[k] - y[k]
            p[k] = r
            s += 0.5 * r * r
        return s
    if code == LOG:
        return _loss_grad_single(code, p, y[0])
    # MULTINOMIAL: y holds the class index
    c = <Py_ssize_t> y[0]
    z = p[c]
    mx = p[0]
    for k in range(1, K):
        if p[k] > mx:
            mx = p[k]
    s = 0.0
    for k in range(K):
        e = exp(p[k] - mx)
        p[k] = <floating> e
        s += <floating> e
    for k in range(K):
        p[k] = <floating> (p[k] / s)
    p[c] -= 1
    return log(s) + mx - z
