"""The two-tier grids of the suite: the default run's covering set really covers every
pair (and every backend's cases are the same), and ``--full`` gets the whole product."""

import itertools

import pytest

from ._grids import grid, pairwise


@pytest.mark.parametrize("sizes,must", [((2, 3, 4, 5, 3, 3), 0), ((4, 2, 2, 3, 4, 5, 3, 3), 3), ((3,), 0), ((2, 2), 1)])
def test_pairwise_covers_every_pair_and_every_must_combination(sizes, must):
    values = [list(range(s)) for s in sizes]
    chosen = pairwise(*values, must=must)
    for a, b in itertools.combinations(range(len(sizes)), 2):
        assert {(c[a], c[b]) for c in chosen} == set(itertools.product(values[a], values[b]))
    assert {c[:must] for c in chosen} == set(itertools.product(*values[:must]))
    assert len(set(chosen)) == len(chosen)
    if len(sizes) > 2:
        total = 1
        for s in sizes:
            total *= s
        assert len(chosen) < total / 4  # far fewer than the product
    assert pairwise(*values, must=must) == chosen  # deterministic


def test_grid_marks_all_but_the_covering_set_and_crosses_the_first():
    params = grid(["a", "b"], [1, 2, 3], [(0.0, False), (0.9, True)], ["x", "y", None], cross=1)
    assert len(params) == 2 * 3 * 2 * 3
    lean = [p.values for p in params if not p.marks]
    assert all(len(v) == 5 for v in lean)  # the tuple is spread into two parameters
    by_backend = {b: sorted(repr(v[1:]) for v in lean if v[0] == b) for b in "ab"}
    assert by_backend["a"] == by_backend["b"]  # each crossed value gets the same cases
    for p in params:
        assert [m.name for m in p.marks] in ([], ["full"])
    assert len({p.id for p in params}) == len(params)
