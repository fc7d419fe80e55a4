"""Parameter grids in two tiers: a pairwise covering set in the default run, the whole
product with ``pytest --full``.

``grid(names, *values)`` returns the whole Cartesian product of ``values`` as
``pytest.param`` objects for one ``pytest.mark.parametrize(names, ...)``. A greedy
covering picks a small subset in which every pair of values of any two parameters
appears at least once (so every backend meets every registry entry, every loss every
penalty, and so on); the other combinations carry the ``full`` marker, which the default
run deselects (see ``tests/conftest.py``). The choice is deterministic: the same lists
give the same subset in every process.
"""

import itertools

import pytest


def pairwise(*values, must=0):
    """Indices ``(i0, i1, ...)`` of a small set of combinations of ``values`` (one
    sequence per parameter) in which every pair of values of every two parameters
    appears at least once, and so does every combination of the first ``must``
    parameters. Greedy: each step takes the combination that covers the most pairs not
    yet covered (a missing combination of the first ``must`` counting more than any
    number of pairs; the first such in product order, so the result is deterministic)."""
    sizes = [len(v) for v in values]
    if not sizes:
        return [()]
    if any(s == 0 for s in sizes):
        return []
    dims = list(itertools.combinations(range(len(sizes)), 2))
    uncovered = {(a, b, i, j) for a, b in dims for i in range(sizes[a]) for j in range(sizes[b])}
    musts = set(itertools.product(*(range(s) for s in sizes[:must])))
    candidates = list(itertools.product(*(range(s) for s in sizes)))
    weight = len(dims) + 1
    chosen = []
    while uncovered or musts:
        best, best_gain = None, 0
        for combo in candidates:
            gain = sum((a, b, combo[a], combo[b]) in uncovered for a, b in dims)
            gain += weight * (combo[:must] in musts)
            if gain > best_gain:
                best, best_gain = combo, gain
        chosen.append(best)
        uncovered -= {(a, b, best[a], best[b]) for a, b in dims}
        musts.discard(best[:must])
    return chosen


def _id(value):
    if isinstance(value, str):
        return value
    if value is None or isinstance(value, (bool, int, float)):
        return str(value)
    return None


def grid(*values, ids=None, cross=0):
    """The whole product of ``values`` as ``pytest.param`` objects; the combinations
    outside :func:`pairwise`'s covering set are marked ``full`` (run by ``pytest
    --full``). The first ``cross`` parameters (e.g. the backend) are crossed in whole
    with the covering set of the others, so each of their values gets the same cases. A value that is a tuple stands for several parameters that move together
    (e.g. ``(momentum, nesterov)``) and is spread into them. ``ids``: an optional
    function of one value giving its id part."""
    head = list(itertools.product(*(range(len(v)) for v in values[:cross])))
    keep = {h + tail for h in head for tail in pairwise(*values[cross:])}
    params = []
    for combo in itertools.product(*(range(len(v)) for v in values)):
        row = [values[k][i] for k, i in enumerate(combo)]
        flat, parts = [], []
        for v in row:
            flat.extend(v if isinstance(v, tuple) else (v,))
            part = ids(v) if ids is not None else None
            if part is None:
                part = "-".join(_id(x) or repr(x) for x in (v if isinstance(v, tuple) else (v,)))
            parts.append(part)
        marks = () if combo in keep else (pytest.mark.full,)
        params.append(pytest.param(*flat, marks=marks, id="-".join(parts)))
    return params
