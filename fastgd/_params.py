"""Layout of the two small vectors every epoch kernel receives.

The estimator packs its hyper-parameters into one float64 vector (``hp``) and its
integer switches into one int64 vector (``codes``) so that kernel signatures stay short
and identical across backends. The index constants below are the only definition of
that layout; every backend imports them.
"""

# float64 hyper-parameter vector ``hp``
ETA0 = 0          # base step size (the constant step for constant/adaptive/auto)
POWER_T = 1       # invscaling exponent
OPTIMAL_T0 = 2    # offset t0 of the "optimal" schedule
L2 = 3            # L2 strength alpha * (1 - l1_ratio) (already resolved per penalty)
L1 = 4            # L1 strength alpha * l1_ratio (already resolved per penalty)
MOMENTUM = 5      # mu
ALPHA = 6         # alpha, for the "optimal" schedule
BETA_1 = 7        # Adam's first-moment decay
BETA_2 = 8        # Adam's second-moment decay; RMSprop's smoothing constant
EPSILON = 9       # the adaptive rules' denominator offset
N_HP = 10

# int64 code vector ``codes``
LOSS = 0           # code from fastgd._losses
SCHEDULE = 1       # code from fastgd._schedules
NESTEROV = 2       # 0 or 1
FIT_INTERCEPT = 3  # 0 or 1
BATCH_SIZE = 4     # rows per step, 1 <= batch_size <= n_samples
T_START = 5        # weight updates made before this epoch
N_THREADS = 6      # threads a kernel may use (>= 1)
OPTIMIZER = 7      # code from fastgd._optimizers
AVERAGE_START = 8  # 0: no averaging; else the last state slot is the mean of the iterates
                   # of updates t >= AVERAGE_START (see fastgd._optimizers)
N_CODES = 9
