# Included by the dense kernels (_kernels.pxi) and the sparse ones (_sparse.pyx): the
# registry codes and the hp and codes positions as C constants, a model's codes
# (``Codes``) and an update's scalars (``Rule``), the step size, the adaptive rules'
# coordinate step and the scalar losses, written once for both.

# registry codes as C constants (read once from the registries at import)
cdef int64_t SQUARED = _SQUARED
cdef int64_t LOG = _LOG
cdef int64_t MULTINOMIAL = _MULTINOMIAL
cdef int64_t CONSTANT = _CONSTANT
cdef int64_t INVSCALING = _INVSCALING
cdef int64_t OPTIMAL = _OPTIMAL
cdef int64_t SGD = _SGD
cdef int64_t ADAGRAD = _ADAGRAD
cdef int64_t RMSPROP = _RMSPROP
cdef int64_t ADAM = _ADAM

# positions in hp as C constants
cdef Py_ssize_t P_ETA0 = P.ETA0, P_POWER_T = P.POWER_T, P_OPTIMAL_T0 = P.OPTIMAL_T0
cdef Py_ssize_t P_L2 = P.L2, P_L1 = P.L1, P_MOMENTUM = P.MOMENTUM, P_ALPHA = P.ALPHA
cdef Py_ssize_t P_BETA_1 = P.BETA_1, P_BETA_2 = P.BETA_2, P_EPSILON = P.EPSILON

# positions in codes as C constants
cdef Py_ssize_t P_LOSS = P.LOSS, P_SCHEDULE = P.SCHEDULE, P_OPTIMIZER = P.OPTIMIZER
cdef Py_ssize_t P_NESTEROV = P.NESTEROV, P_FIT_INTERCEPT = P.FIT_INTERCEPT, P_T_START = P.T_START
cdef Py_ssize_t P_BATCH_SIZE = P.BATCH_SIZE, P_AVERAGE_START = P.AVERAGE_START


# One model's codes (a row of ``codes``, ``fastgd._params``), read once.
cdef struct Codes:
    int64_t loss, schedule, optimizer
    int64_t t          # the updates taken before this call
    int64_t t_a        # averaging from this update on (0: none)
    int64_t batch      # rows per update
    bint nesterov, fit_intercept


cdef inline Codes _read_codes(const int64_t *codes) noexcept nogil:
    cdef Codes c
    c.loss = codes[P_LOSS]
    c.schedule = codes[P_SCHEDULE]
    c.optimizer = codes[P_OPTIMIZER]
    c.t = codes[P_T_START]
    c.t_a = codes[P_AVERAGE_START]
    c.batch = codes[P_BATCH_SIZE]
    c.nesterov = codes[P_NESTEROV] != 0
    c.fit_intercept = codes[P_FIT_INTERCEPT] != 0
    return c


# The adaptive update rules' scalars for one step (``fastgd._optimizers``), in double;
# each use casts to the data's dtype, so float32 data is updated in float32.
cdef struct Rule:
    int64_t code
    double b1, b2, eps
    double eta         # the step
    double adam_step   # Adam: eta / (1 - beta_1**t); else eta
    double sqrt_bc2    # Adam: sqrt(1 - beta_2**t); else 1
    double shrink      # eta * l1 (the L1 proximal step before the rule's scaling)
    double avg         # averaging: 1 / (t - t_a + 1) once t >= t_a > 0, else 0


cdef inline double _step_size(int64_t code, int64_t t, double eta0, double power_t,
                              double t0, double alpha) noexcept nogil:
    if code == INVSCALING:
        return eta0 / pow(<double> t, power_t)
    if code == OPTIMAL:
        return 1.0 / (alpha * (t0 + <double> (t - 1)))  # t - 1 in integers: t0 is not lost next to t
    return eta0  # CONSTANT (other codes are rejected before the loops start)


cdef inline void _set_rule(Rule *r, const Codes *c, int64_t t, const double *hp) noexcept nogil:
    """The scalars of update ``t`` (its step from the schedule) of a model with these
    codes and hyper-parameters ``hp``."""
    cdef double eta = _step_size(c.schedule, t, hp[P_ETA0], hp[P_POWER_T], hp[P_OPTIMAL_T0], hp[P_ALPHA])
    r.code = c.optimizer
    r.b1 = hp[P_BETA_1]
    r.b2 = hp[P_BETA_2]
    r.eps = hp[P_EPSILON]
    r.eta = eta
    r.shrink = eta * hp[P_L1]
    if r.code == ADAM:
        r.adam_step = eta / (1.0 - pow(r.b1, <double> t))
        r.sqrt_bc2 = sqrt(1.0 - pow(r.b2, <double> t))
    else:
        r.adam_step = eta
        r.sqrt_bc2 = 1.0
    r.avg = 1.0 / <double> (t - c.t_a + 1) if c.t_a > 0 and t >= c.t_a else 0.0


cdef inline floating _soft(floating w, floating shrink) noexcept nogil:
    """Soft-threshold (the L1 prox) of ``w`` by ``shrink`` > 0."""
    if w > shrink:
        return w - shrink
    if w < -shrink:
        return w + shrink
    return 0


cdef inline void _adaptive_coord(floating *w, floating *s1, floating *s2, floating g,
                                 const Rule *r, bint shrink) noexcept nogil:
    """The adaptive rules' step of one coordinate from its full gradient ``g``; ``s2``
    is read by Adam only. With ``shrink``, then the L1 proximal step ``eta l1 / D``."""
    cdef floating m, v, den, x
    cdef floating b1 = <floating> r.b1, b2 = <floating> r.b2
    if r.code == ADAM:
        m = b1 * s1[0] + (1 - b1) * g
        v = b2 * s2[0] + (1 - b2) * (g * g)
        s1[0] = m
        s2[0] = v
        den = <floating> sqrt(v) / <floating> r.sqrt_bc2 + <floating> r.eps
        x = w[0] - (<floating> r.adam_step * m) / den
    else:
        if r.code == ADAGRAD:
            v = s1[0] + g * g
        else:  # RMSPROP
            v = b2 * s1[0] + (1 - b2) * (g * g)
        s1[0] = v
        den = <floating> sqrt(v) + <floating> r.eps
        x = w[0] - (<floating> r.eta * g) / den
    if shrink:
        x = _soft(x, <floating> r.shrink / den)
    w[0] = x


cdef inline void _average(const floating *w, floating *a, Py_ssize_t cols,
                          double weight) noexcept nogil:
    """The running mean of the iterates: a += (w - a) / (t - t_a + 1) (``weight``)."""
    cdef Py_ssize_t j
    cdef floating c = <floating> weight
    if weight > 0:
        for j in range(cols):
            a[j] = a[j] + (w[j] - a[j]) * c


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
