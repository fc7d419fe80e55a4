"""The package's structure: no import circles, and the layering the design promises.

The import graph is read from the source (every ``import`` of a fastgd module, at module
level or inside a function, in ``.py``, ``.pyx`` and ``.pxi`` files): a function-level
import that only dodges a circle still shows up as one here. The graph must have no
cycle, and every module must import in a fresh interpreter whatever was imported
before it (all of them in alphabetical order, then in reverse order).
"""

import ast
import pathlib
import re
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "fastgd"


def _module_name(path):
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _resolve(importer, is_package, level, target):
    """The absolute name of a relative import ``from .<level> target``."""
    base = importer.split(".") if is_package else importer.split(".")[:-1]
    if level > 1:
        base = base[: len(base) - (level - 1)]
    return ".".join(base + ([target] if target else []))


# (a .pxi is included into the .pyx files named after it: its imports are theirs)
_CYTHON_FROM = re.compile(r"^\s*from\s+(\.+)([\w.]*)\s+c?import\s+([\w\s,()]+?)(?:\s+as\s+\w+)?\s*$", re.MULTILINE)


def _sources():
    """``{module: [(path, text)]}`` for every fastgd module (.py, .pyx; a .pxi counted
    with the .pyx files that include it)."""
    sources = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        sources.setdefault(_module_name(path), []).append((path, path.read_text()))
    for path in sorted(PACKAGE.rglob("*.pyx")):
        text = path.read_text()
        for inc in re.findall(r'^include\s+"([^"]+)"', text, re.MULTILINE):
            inc_path = path.parent / inc
            text += "\n" + inc_path.read_text()
            for inc2 in re.findall(r'^include\s+"([^"]+)"', inc_path.read_text(), re.MULTILINE):
                text += "\n" + (path.parent / inc2).read_text()
        sources.setdefault(_module_name(path), []).append((path, text))
    return sources


def import_graph():
    """``{module: {fastgd modules it imports}}``, every import counted (also inside
    functions)."""
    sources = _sources()
    modules = set(sources)
    graph = {m: set() for m in modules}

    def add(importer, name, names=()):
        # ``from . import x`` imports the submodule x when there is one
        for n in names:
            if f"{name}.{n}" in modules:
                graph[importer].add(f"{name}.{n}")
        if name in modules and name != importer:
            graph[importer].add(name)

    for module, files in sources.items():
        for path, text in files:
            is_package = path.name == "__init__.py"
            if path.suffix == ".py":
                for node in ast.walk(ast.parse(text)):
                    if isinstance(node, ast.Import):
                        for alias in node.names:
                            if alias.name.startswith("fastgd"):
                                add(module, alias.name)
                    elif isinstance(node, ast.ImportFrom):
                        if node.level:
                            name = _resolve(module, is_package, node.level, node.module)
                        else:
                            name = node.module or ""
                        if name.startswith("fastgd"):
                            add(module, name, [a.name for a in node.names])
            else:
                for dots, target, names in _CYTHON_FROM.findall(text):
                    name = _resolve(module, False, len(dots), target or None)
                    add(module, name, [n.strip(" ()") for n in names.split(",")])
    return graph


def _cycles(graph):
    """Every strongly connected component with more than one module (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def _reachable(graph, start):
    seen, todo = set(), [start]
    while todo:
        for w in graph.get(todo.pop(), ()):
            if w not in seen:
                seen.add(w)
                todo.append(w)
    return seen


def test_the_graph_is_read_from_the_source():
    """The reader sees the imports it must see (a reader that saw none would find no
    circle anywhere)."""
    graph = import_graph()
    assert "fastgd._run" in graph["fastgd._base"]
    assert "fastgd._validation" in graph["fastgd._run"]
    assert "fastgd._dask" in graph["fastgd._base"]  # (inside a function: Dask input only)
    assert "fastgd._checks" in graph["fastgd._numba.kernels"]
    assert "fastgd._checks" in graph["fastgd._cython._sparse"]  # a .pyx
    assert "fastgd._params" in graph["fastgd._cython._kernels"]  # through its .pxi
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_circle():
    assert _cycles(import_graph()) == []


def test_dask_driver_does_not_import_the_estimator_base():
    """The Dask driver builds on the epoch driver and the validation, never on the
    estimators: neither directly nor through another module."""
    graph = import_graph()
    assert "fastgd._base" not in _reachable(graph, "fastgd._dask")
    assert "fastgd.linear_model" not in _reachable(graph, "fastgd._dask")
    pytest.importorskip("dask.array")
    code = "import sys, fastgd._dask; print(sorted(m for m in sys.modules if m.startswith('fastgd')))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         timeout=120, check=True).stdout
    assert "'fastgd._run'" in out
    assert "'fastgd._base'" not in out and "'fastgd.linear_model'" not in out


def _importable_modules():
    names = sorted(import_graph())
    missing = []
    for optional, module in (("dask", "fastgd._dask"), ("matplotlib", "fastgd.plotting"),
                             ("numba", "fastgd._numba")):
        try:
            __import__(optional)
        except ImportError:
            missing.append(module)
    return [n for n in names if not any(n == m or n.startswith(m + ".") for m in missing)]


@pytest.mark.parametrize("order", ["alphabetical", "reverse"])
def test_every_module_imports_in_a_fresh_interpreter(order):
    names = _importable_modules()
    if order == "reverse":
        names = names[::-1]
    assert len(names) > 20
    code = (
        "import importlib, sys\n"
        f"for name in {names!r}:\n"
        "    try:\n"
        "        importlib.import_module(name)\n"
        "    except ImportError as exc:\n"
        "        if 'compiled extension' not in str(exc):  # (a source tree without its build)\n"
        "            raise\n"
        "print('ok', len(sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300,
                         check=False)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("ok")
