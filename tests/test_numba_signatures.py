"""The Numba kernels' helpers take few positional parameters: related arrays travel
together (the rows and their weights, the lazy update's records, the power tables, the
models' arrays) as tuples, unpacked once at the top of a jitted function."""

import ast
from pathlib import Path

import fastgd

MAX_POSITIONAL = 12
NUMBA = Path(fastgd.__file__).parent / "_numba"


def _positional_counts():
    for path in sorted(NUMBA.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.FunctionDef):
                yield f"{path.name}:{node.name}", len(node.args.posonlyargs) + len(node.args.args)


def test_no_numba_function_takes_more_than_twelve_positional_parameters():
    counts = dict(_positional_counts())
    assert len(counts) > 40, "the kernel modules were not read"
    over = {name: n for name, n in counts.items() if n > MAX_POSITIONAL}
    assert not over, over
