"""Concurrency and memory: what the reliability tests cannot time or afford.

``python -m bench.reliability_bench [--quick]`` prints two Markdown tables; :func:`run`
returns their rows for the report (``python -m bench`` appends them). :data:`METHOD` says
how each number is taken.
"""

import argparse
import json
import subprocess
import sys
import threading
import time

import numpy as np

METHOD = """\
*Concurrent fits*: two estimators, each with ``n_jobs=1``, fit on two different data
sets of the same size (momentum 0.9, 20 epochs, 60 for full batch, ``tol=None``), first
one after the other, then at the same time in two Python threads (after one warm-up fit;
the fastest of three repetitions of each).
Speed-up = sequential wall time ÷ concurrent wall time: 2 means the two fits ran fully in
parallel (the kernels hold no GIL while they run), 1 means they took turns. The fits'
coefficients are compared with the sequential ones, bit for bit.

*Peak memory*: each case runs in a fresh Python process. X is generated in blocks of
rows into one C-contiguous array (so generating it never needs more than X plus a
block), then the process's peak resident set (``VmHWM``) is reset, one fit runs (the
default "auto" step, ``max_iter`` epochs, ``tol=None``), and the peak is read again.
Extra = peak during the fit − resident set before it: everything the fit allocated
beside X (weights, targets, permutations, the auto step's sample, the kernel's buffers).
"""


# ----------------------------------------------------------------------------- threads
def _data(n, d, seed):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    y = X @ rng.standard_normal(d) + rng.standard_normal(n)
    return X, y


def concurrency(backend, batch_size, n=200_000, d=50, max_iter=None, repeats=3):
    """One row of the concurrency table: sequential and concurrent seconds for two fits
    (``max_iter`` epochs: by default 20 for SGD and mini-batch, 60 for full batch, so that
    the epochs outweigh the fit's set-up), the fastest of ``repeats`` of each."""
    from fastgd import LinearRegression

    if max_iter is None:
        max_iter = 60 if batch_size == "full" else 20
    sets = [_data(n, d, seed) for seed in (1, 2)]

    def fit(i, out):
        est = LinearRegression(backend=backend, batch_size=batch_size, n_jobs=1, momentum=0.9,
                               max_iter=max_iter, tol=None, random_state=0)
        out[i] = est.fit(*sets[i]).coef_

    warm = {}
    fit(0, warm)
    sequential, concurrent = {}, {}
    seq_s = conc_s = float("inf")
    for _ in range(repeats):
        tic = time.perf_counter()
        for i in range(2):
            fit(i, sequential)
        seq_s = min(seq_s, time.perf_counter() - tic)
        threads = [threading.Thread(target=fit, args=(i, concurrent)) for i in range(2)]
        tic = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        conc_s = min(conc_s, time.perf_counter() - tic)
    same = all(np.array_equal(sequential[i], concurrent[i]) for i in range(2))
    return {"backend": backend, "batch": batch_size, "n": n, "d": d, "epochs": max_iter,
            "sequential_s": seq_s, "concurrent_s": conc_s, "speedup": seq_s / conc_s, "identical": same}


# ----------------------------------------------------------------------------- memory
CHILD = r"""
import json, sys, time
import numpy as np
n, d, dtype, backend, batch, max_iter = json.loads(sys.argv[1])
batch = batch if batch == "full" else int(batch)

def rss(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field):
                return int(line.split()[1]) * 1024

from fastgd import LinearRegression
X = np.empty((n, d), dtype=dtype)
rng = np.random.default_rng(0)
w = rng.standard_normal(d)
y = np.empty(n)
for start in range(0, n, 100_000):
    block = rng.standard_normal((min(100_000, n - start), d))
    X[start:start + len(block)] = block
    y[start:start + len(block)] = block @ w
y += rng.standard_normal(n)
est = LinearRegression(backend=backend, batch_size=batch, max_iter=max_iter, tol=None, random_state=0)
est.fit(X[:1000], y[:1000])  # imports and compiled kernels loaded before the baseline
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")  # reset VmHWM (the peak) to the current resident set
before = rss("VmRSS:")
tic = time.perf_counter()
est.fit(X, y)
seconds = time.perf_counter() - tic
print(json.dumps({"x_bytes": X.nbytes, "before": before, "peak": rss("VmHWM:"),
                  "seconds": seconds, "finite": bool(np.all(np.isfinite(est.coef_)))}))
"""


def peak_memory(n, d, dtype, backend, batch, max_iter=2):
    """One row of the memory table, measured in a child process."""
    args = json.dumps([n, d, dtype, backend, batch, max_iter])
    out = subprocess.run([sys.executable, "-c", CHILD, args], capture_output=True, text=True, timeout=900,
                         check=False)
    row = {"n": n, "d": d, "dtype": dtype, "backend": backend, "batch": batch}
    if out.returncode != 0:
        return {**row, "error": out.stderr.strip().splitlines()[-1] if out.stderr.strip() else str(out.returncode)}
    got = json.loads(out.stdout.strip().splitlines()[-1])
    extra = got["peak"] - got["before"]
    return {**row, **got, "extra": extra, "extra_fraction": extra / got["x_bytes"]}


QUICK_MEMORY = [
    (1_250_000, 100, "float64", "numba", 1),  # 1 GB X
    (1_250_000, 100, "float64", "cython", "full"),
    (10_000_000, 20, "float32", "numba", 1),  # 0.8 GB X
    (10_000_000, 20, "float32", "cython", "full"),
]
CONCURRENCY = [("numba", 1), ("cython", 1), ("numba", "full"), ("cython", "full")]


# the section's sizes: "full" (the complete report), "quick" (python -m bench's default),
# "tiny" (seconds: --quick here)
SIZES = {
    "full": {},
    "quick": {"n": 30_000, "memory_cases": [(200_000, 100, "float64", "cython", "full")]},
    "tiny": {"n": 20_000, "memory_cases": [(100_000, 20, "float64", "numba", 1)]},
}


def run(stream=print, memory_cases=QUICK_MEMORY, concurrency_cases=CONCURRENCY, n=200_000):
    conc = []
    for backend, batch in concurrency_cases:
        row = concurrency(backend, batch, n=n)
        conc.append(row)
        stream(f"concurrent {backend} batch {batch}: {row['speedup']:.2f}x")
    mem = []
    for case in memory_cases:
        row = peak_memory(*case)
        mem.append(row)
        stream(f"memory {case}: " + (row.get("error") or f"{row['extra'] / 1e6:.0f} MB extra ({row['extra_fraction']:.1%} of X)"))
    return conc, mem


def section(conc, mem):
    lines = ["", "## Concurrency and memory", "", METHOD.strip(), ""]
    lines += ["| backend | batch | n×d | sequential s | concurrent s | speed-up | identical |", "|---|---|---|---:|---:|---:|---|"]
    for r in conc:
        lines.append(f"| {r['backend']} | {r['batch']} | {r['n']}×{r['d']} | {r['sequential_s']:.3f} | "
                     f"{r['concurrent_s']:.3f} | {r['speedup']:.2f}× | {'yes' if r['identical'] else '**no**'} |")
    lines += ["", "| n×d | dtype | backend | batch | X MB | extra MB | extra ÷ X | fit s |", "|---|---|---|---|---:|---:|---:|---:|"]
    for r in mem:
        if "error" in r:
            lines.append(f"| {r['n']}×{r['d']} | {r['dtype']} | {r['backend']} | {r['batch']} | | **failed: {r['error']}** | | |")
            continue
        lines.append(f"| {r['n']}×{r['d']} | {r['dtype']} | {r['backend']} | {r['batch']} | {r['x_bytes'] / 1e6:.0f} | "
                     f"{r['extra'] / 1e6:.0f} | {r['extra_fraction']:.1%} | {r['seconds']:.2f} |")
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m bench.reliability_bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes (seconds; for trying it out)")
    args = parser.parse_args(argv)
    conc, mem = run(**SIZES["tiny" if args.quick else "full"])
    print(section(conc, mem))


if __name__ == "__main__":
    main()
