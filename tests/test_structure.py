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


# ------------------------------------------------------------------ the resolved fit
# the modules that may read an estimator's parameters: the spec builder, the estimators
# and the cross-validation classes; every driver reads the resolved fit instead
READS_PARAMETERS = {"fastgd/_spec.py", "fastgd/linear_model.py", "fastgd/_base.py", "fastgd/_cv.py"}
# the names under which the package holds an estimator object
ESTIMATOR_NAMES = {"est", "estimator", "m_est", "probe", "base", "best", "fitted"}


def _parameter_names():
    import inspect

    from fastgd import linear_model

    names = set()
    for _, cls in inspect.getmembers(linear_model, inspect.isclass):
        if cls.__module__.startswith("fastgd") and hasattr(cls, "get_params") and not inspect.isabstract(cls):
            names |= set(cls().get_params())
    return names


def _parameter_reads(path, params):
    """``(line, text)`` of every read of an estimator parameter in ``path``: ``est.<param>``
    (or ``<anything>.est.<param>``) and ``getattr(est, "<param>")``."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Load) and node.attr in params:
            holder = node.value
            if (isinstance(holder, ast.Name) and holder.id in ESTIMATOR_NAMES) or (
                    isinstance(holder, ast.Attribute) and holder.attr == "est"):
                found.append((node.lineno, ast.unparse(node)))
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "getattr"
              and len(node.args) >= 2 and isinstance(node.args[0], ast.Name) and node.args[0].id in ESTIMATOR_NAMES
              and isinstance(node.args[1], ast.Constant) and node.args[1].value in params):
            found.append((node.lineno, ast.unparse(node)))
    return found


def test_the_reader_of_parameter_reads_sees_them():
    params = _parameter_names()
    assert {"tol", "batch_size", "optimizer", "learning_rate", "alphas", "cv"} <= params
    assert len(_parameter_reads(PACKAGE / "_spec.py", params)) > 20
    assert _parameter_reads(PACKAGE / "_cv.py", params)


def test_only_the_spec_builder_and_the_estimators_read_parameters():
    """No driver reads ``est.<param>``: they read the resolved fit (``fastgd._spec``)."""
    params = _parameter_names()
    offenders = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        if rel in READS_PARAMETERS:
            continue
        reads = _parameter_reads(path, params)
        if reads:
            offenders[rel] = reads
    assert offenders == {}


def _registry_calls(module, registry):
    """The values of the dict literal assigned to ``registry`` in ``module``'s source."""
    tree = ast.parse((PACKAGE / f"{module}.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == registry for t in node.targets):
            assert isinstance(node.value, ast.Dict), registry
            return node.value.values
    raise AssertionError(f"{registry} is not assigned in {module}")


@pytest.mark.parametrize(("module", "registry"), [("_losses", "LOSSES"), ("_optimizers", "OPTIMIZERS"),
                                                  ("_schedules", "SCHEDULES"), ("_penalties", "PENALTIES")])
def test_every_registry_entry_is_built_with_keywords(module, registry):
    import importlib

    entries = getattr(importlib.import_module(f"fastgd.{module}"), registry)
    values = _registry_calls(module, registry)
    assert len(values) == len(entries)
    for value in values:
        assert isinstance(value, ast.Call), ast.unparse(value)
        assert value.args == [], f"positional arguments in {ast.unparse(value)}"
        assert value.keywords


def test_update_rule_slots_are_named():
    """A restart names the slots it zeroes; the indices derive from the names."""
    from fastgd._optimizers import AVERAGE, OPTIMIZERS, WEIGHTS

    for entry in OPTIMIZERS.values():
        assert set(entry.restart) <= set(entry.slots)
        assert all(isinstance(name, str) for name in entry.restart)
        assert entry.index(WEIGHTS) == 0
        assert [entry.index(name) for name in entry.slots] == list(range(1, 1 + len(entry.slots)))
        assert entry.index(AVERAGE) == 1 + len(entry.slots)
    assert OPTIMIZERS["sgd"].restart_indices == (1,)
    assert OPTIMIZERS["adam"].restart_indices == (OPTIMIZERS["adam"].index("exp_avg"),) == (1,)


@pytest.mark.parametrize(
    "params",
    [{"batch_size": 8}, {"batch_size": 1, "momentum": 0.5}, {"batch_size": "full"}, {"optimizer": "adam"},
     {"optimizer": "rmsprop", "batch_size": 4}],
    ids=["minibatch", "sgd", "full", "adam", "rmsprop"],
)
def test_in_memory_fold_and_block_statistics_give_the_same_step(params):
    """The step statistics of the same rows, gathered in memory, as a fold's rows and
    from Dask blocks, give the same step through the one step function."""
    dask = pytest.importorskip("dask")
    import dask.array as da
    import numpy as np

    from fastgd import LinearRegression
    from fastgd._dask import block_stats
    from fastgd._dask.prepare import _prepare
    from fastgd._path import _fold_stats, _row_sq_norms, fit_path
    from fastgd._run import spec_of
    from fastgd._smoothness import memory_stats
    from fastgd._spec import data_kind, initial_step, settings, step_needs
    from fastgd._validation import normalise_weights

    rng = np.random.default_rng(0)
    n, d = 23_001, 5  # more rows than the eigenvalue's sample: every other row is used
    X = rng.normal(size=(n, d)) * np.array([1.0, 3.0, 0.5, 10.0, 1.0])
    y = X @ rng.normal(size=d) + rng.normal(size=n)
    sw = rng.uniform(0.5, 2.0, size=n)
    est = LinearRegression(**params)
    data = est._prepare(X, y, sw, first=True)
    data = data._replace(sw=normalise_weights(data.sw))
    est._choose(data_kind(data.X))
    s = settings(est)
    needs = step_needs(s, n)
    assert any(needs)
    rows = np.arange(n)
    records = {
        "memory": memory_stats(data.X, data.sw, s.fit_intercept, needs, 1),
        "fold": _fold_stats(data.X, rows, data.sw, s.fit_intercept, needs, lambda: _row_sq_norms(data.X, 1)),
    }
    with dask.config.set(scheduler="synchronous"):
        chunks = (5000, 7001, 11_000)
        blocks = _prepare(est, da.from_array(X, chunks=(chunks, d)), da.from_array(y, chunks=(chunks,)),
                          da.from_array(sw, chunks=(chunks,)), first=True)
        records["dask"] = block_stats(blocks.X, s.fit_intercept, needs)
    steps = {where: initial_step(s, data.loss, r, data.X.dtype)[0] for where, r in records.items()}
    assert steps["memory"] > 0
    np.testing.assert_allclose(steps["fold"], steps["memory"], rtol=1e-12)
    np.testing.assert_allclose(steps["dask"], steps["memory"], rtol=1e-12)
    # and through the drivers themselves: the spec in memory, the fold's model of fit_path
    assert spec_of(est, data).eta == steps["memory"]
    path = fit_path(est.set_params(max_iter=1, tol=None), X, y, alphas=[s.alpha], sample_weight=sw)
    np.testing.assert_allclose(path.etas[0, 0, 0], steps["memory"], rtol=1e-12)


def test_the_judge_is_used_never_inherited():
    """Every driver owns its judges (``fastgd._judge``); no class derives from the judge or
    the model, and the many-models driver builds on neither the in-memory driver's class
    nor its private methods."""
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef):
                bases = {ast.unparse(b).split(".")[-1] for b in node.bases}
                assert not bases & {"Judge", "Model"}, f"{path.name}: {node.name}"
    graph = import_graph()
    assert "fastgd._judge" in graph["fastgd._run"] and "fastgd._judge" in graph["fastgd._path"]
    path_source = (PACKAGE / "_path.py").read_text()
    assert "Run" not in re.findall(r"\b\w+\b", path_source.split('"""', 2)[2])

# ------------------------------------------------------------------ kernel signatures
# No kernel helper takes more than 12 positional parameters: related arrays and scalars
# travel together (Cython: structs such as Span, Path, Rows, Lazy; Numba: tuples such as
# the rows and their weights, unpacked once at the top of a jitted function).
MAX_PARAMETERS = 12


def test_no_numba_function_takes_more_than_twelve_positional_parameters():
    counts = {}
    for path in sorted((PACKAGE / "_numba").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.FunctionDef):
                counts[f"{path.name}:{node.name}"] = len(node.args.posonlyargs) + len(node.args.args)
    assert len(counts) > 40, "the kernel modules were not read"
    over = {name: n for name, n in counts.items() if n > MAX_PARAMETERS}
    assert not over, over


_SIGNATURE = re.compile(r"^[ \t]*c?p?def\s[^(=:#\n]*?\b(\w+)(?:\[\w+\])?\s*\(", re.M)


def _signatures(text):
    """``(name, parameters)`` of each ``def``/``cdef``/``cpdef`` function in Cython source
    text: the text between its parentheses split on the commas outside nested
    parentheses (a comma inside a memoryview's brackets counts, as a separate
    parameter would)."""
    for match in _SIGNATURE.finditer(text):
        depth, end = 1, match.end()
        while depth:
            depth += {"(": 1, ")": -1}.get(text[end], 0)
            end += 1
        inner = text[match.end():end - 1]
        depth, count = 0, 1 if inner.strip() else 0
        for ch in inner:
            depth += {"(": 1, ")": -1}.get(ch, 0)
            count += ch == "," and depth == 0
        yield match.group(1), count


def test_no_cython_function_takes_more_than_twelve_parameters():
    """The kernels keep their scratch and settings in structs (``Span``, ``Path``,
    ``Rows``, ``Lazy``, ...): no function of the Cython sources takes more than 12."""
    root = PACKAGE / "_cython"
    sources = sorted([*root.glob("*.pyx"), *root.glob("*.pxi")])
    found = {path.name: dict(_signatures(path.read_text())) for path in sources}
    assert {"_kernels.pxi", "_sparse.pyx", "_scalars.pxi"} <= set(found)
    assert found["_kernels.pxi"]["epoch"] == 11  # (7 arrays; 4 commas in brackets)
    assert found["_kernels.pxi"]["path_epoch_dense"] == 11
    assert sum(len(f) for f in found.values()) > 50
    too_long = {(name, fn): n for name, f in found.items() for fn, n in f.items() if n > MAX_PARAMETERS}
    assert not too_long
