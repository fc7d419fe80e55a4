"""What a benchmark run measures: :class:`Config`, the two configurations of
``python -m bench`` (:data:`QUICK`, the default: every section at reduced sizes, about 3
minutes on 2 cores; :data:`FULL`, ``--full``: the complete report), a tiny one for tests
(:func:`tiny_config`), the batch sizes, models and peers, and :func:`batch_label`, the
name of a batch size and dtype in the report, the plots and the pytest-benchmark groups.
"""

from dataclasses import dataclass, replace

from .methods import MLP, SGD, TORCH

BATCHES = (1, 32, 256, "full")
MODELS = ("linear", "logistic")
PEERS = (SGD, MLP, TORCH)


@dataclass(frozen=True)
class Config:
    """What one benchmark run measures."""

    name: str
    sizes: tuple  # ((n, d, epochs), ...): the data sizes and the epochs each fit runs
    batches: tuple = BATCHES
    models: tuple = MODELS
    float32_full: bool = True  # full batch in float32 as well
    threads: bool = True  # full batch float64 with n_jobs=1 too (target 3; 2+ cores)
    peers: tuple = PEERS
    cap_s: float = 10.0  # a fit that would spend longer in its epochs runs fewer epochs
    min_s: float = 0.5  # fast fits repeat (at most 3 times) until this much was timed
    scaling_d: int = 20
    scaling_n: tuple = ()  # n values of the scaling sweep (linear, batch 32 and full)
    scaling_epochs: int = 3
    scaling_numpy_max_n: int = 2_000_000  # the NumPy backend skips larger sweep sizes (slow)
    tta: tuple = None  # (n_train, n_test, d) of the time-to-accuracy race, or None
    tta_k_max: int = 20
    tta_cap_s: float = 60.0
    cold_start: bool = True
    plots: bool = True
    # the time-to-accuracy race (bench.race_bench), the report's headline: the fraction of
    # its problems' rows (None: no race), of their features (tests), and the seconds each
    # method may spend per problem (None: race_bench.CAP_S x race_scale)
    race_scale: float = 1.0
    race_d_scale: float = 1.0
    race_cap_s: float = None
    race_threads: int = 1  # threads of every method's BLAS/OpenMP/PyTorch (0: library defaults)
    # cold start: every backend, or only the estimators' default one ("default")
    cold_start_backends: str = "all"
    # the sections after the epoch timings (bench.sections.SECTIONS), each at this size
    # ("quick": reduced, "full": the complete one, "tiny": seconds, for tests)
    sections: tuple = ("sparse", "fit", "cv", "reliability")
    section_size: str = "full"


QUICK = Config(
    name="quick",
    sizes=((50_000, 50, 3),),
    cap_s=3.0,
    min_s=0.2,
    scaling_n=(25_000, 100_000, 400_000),
    scaling_epochs=2,
    tta=(30_000, 7_500, 100),
    tta_k_max=10,
    tta_cap_s=15.0,
    race_scale=0.15,
    cold_start_backends="default",
    section_size="quick",
)

FULL = Config(
    name="full",
    sizes=((10_000, 10, 50), (200_000, 100, 10), (1_000_000, 20, 5)),
    cap_s=60.0,
    min_s=1.0,
    # target 9: per-row epoch time from 1e4 to 1e7 rows (1e7 x 20 float64 is 1.6 GB); the
    # NumPy backend stops at scaling_numpy_max_n (its batch-32 epochs at 1e7 take seconds each)
    scaling_n=(10_000, 30_000, 100_000, 300_000, 1_000_000, 3_000_000, 10_000_000),
    tta=(200_000, 50_000, 100),
    tta_k_max=50,
    tta_cap_s=300.0,
)


def tiny_config(**changes):
    """A configuration that runs in seconds (for tests and trying things out)."""
    base = Config(
        name="tiny",
        sizes=((400, 5, 2),),
        cap_s=1.0,
        min_s=0.0,
        scaling_n=(400, 800),
        scaling_epochs=2,
        tta=(1000, 500, 10),
        tta_k_max=5,
        tta_cap_s=5.0,
        cold_start=False,
        race_scale=0.01,
        race_d_scale=0.05,
        race_cap_s=2.0,
        sections=(),
        section_size="tiny",
    )
    return replace(base, **changes)


def batch_label(batch, dtype="float64"):
    """``batch`` as the report names it, `` f32`` appended for float32 (``"full f32"``)."""
    label = str(batch)
    return label + " f32" if dtype == "float32" else label
