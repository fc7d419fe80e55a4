"""How the report writes numbers and tables: times with their unit, ratios, plain numbers
(``"—"`` for a missing or non-finite one) and Markdown tables. Shared by the progress lines
of :mod:`bench.runner`, the target rows of :mod:`bench.targets` and :mod:`bench.render`."""

import numpy as np


def fmt_time(seconds):
    if seconds is None or not np.isfinite(seconds):
        return "—"
    if seconds < 1e-3:
        return f"{seconds * 1e6:.3g} µs"
    if seconds < 1.0:
        return f"{seconds * 1e3:.3g} ms"
    return f"{seconds:.3g} s"


def fmt_ratio(ratio):
    if ratio is None or not np.isfinite(ratio):
        return "—"
    return f"{ratio:.3g}×"


def fmt_num(value, digits=6):
    if value is None or not np.isfinite(value):
        return "—" if value is None else str(value)
    return f"{value:.{digits}g}"


def md_table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return lines

