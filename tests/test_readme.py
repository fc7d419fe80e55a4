"""The README's usage example runs as written, the set-up and documentation commands it
names exist in this repository, and its links into the documentation resolve."""

import pathlib
import re
import warnings

from sklearn.exceptions import ConvergenceWarning

ROOT = pathlib.Path(__file__).resolve().parents[1]
README = ROOT / "README.md"


def _blocks():
    """``(language, text)`` of every fenced code block of the README."""
    blocks, language, lines = [], None, []
    for line in README.read_text().splitlines():
        if line.startswith("```"):
            if language is None:
                language, lines = line[3:].strip(), []
            else:
                blocks.append((language, "\n".join(lines) + "\n"))
                language = None
        elif language is not None:
            lines.append(line)
    return blocks


def _commands():
    """The commands of the README's plain code blocks (comments stripped)."""
    return [
        line.split("#")[0].strip()
        for language, text in _blocks()
        if language == ""
        for line in text.splitlines()
        if line.split("#")[0].strip()
    ]


def test_readme_usage_example_runs():
    blocks = [text for language, text in _blocks() if language == "python"]
    assert blocks, "README has no python example"
    namespace = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for block in blocks:
            exec(compile(block, str(README), "exec"), namespace)  # noqa: S102 - the README's own code
    clf = namespace["clf"]
    assert clf.score(namespace["X"], namespace["y"]) > 0.95
    assert 0 < clf.learning_rate_ < 1
    assert namespace["reg"].t_ == namespace["reg"].n_iter_ * len(namespace["y"])  # SGD: a step per row
    ada = namespace["ada"]  # averaged Adam: its state holds the two moments and the average
    assert ada._state.shape[0] == 4 and ada.score(namespace["X"], namespace["y"]) > 0.95


def test_readme_commands_exist():
    commands = _commands()
    for expected in (
        'pip install -e ".[test]"',
        "python -m bench",
        "pytest",
        'pip install -e ".[docs]"',
        "sphinx-build -W -b html docs docs/_build/html",
    ):
        assert expected in commands, expected
    # (tomllib is Python 3.11+; the extras are "name = [...]" lists in pyproject.toml)
    pyproject = (ROOT / "pyproject.toml").read_text()
    optional = pyproject.split("[project.optional-dependencies]")[1].split("\n[")[0]
    extras = {
        name: re.findall(r'"([^"]+)"', body)
        for name, body in re.findall(r"^(\w+) = \[(.*?)\]$", optional, flags=re.MULTILINE | re.DOTALL)
    }
    for command in commands:
        for extra in re.findall(r'"\.\[(\w+)\]"', command):
            assert extra in extras, f"README installs the missing extra [{extra}]"
    assert {"sphinx>=7", "numpydoc>=1.6", "sphinx-gallery>=0.17", "pydata-sphinx-theme>=0.15"} <= set(extras["docs"])
    assert (ROOT / "bench" / "__main__.py").is_file()  # python -m bench
    assert 'testpaths = ["tests"]' in pyproject  # plain pytest runs the suite
    assert (ROOT / "docs" / "conf.py").is_file() and (ROOT / "docs" / "index.rst").is_file()
    # CI runs the same commands
    ci = (ROOT / ".ci" / "run").read_text()
    # (the README's plain ``pytest`` is one of CI's timed steps)
    assert 'pip install -e ".[test]"' in ci and re.search(r'^step "[^"]*" pytest$', ci, re.MULTILINE)
    assert 'pip install -e ".[docs]"' in ci and "sphinx-build -W -b html docs docs/_build/html" in ci


def test_readme_links_resolve():
    links = re.findall(r"\]\(([^)#]+)\)", README.read_text())
    local = [link for link in links if not link.startswith("http")]
    assert len(local) >= 12
    for link in local:
        assert (ROOT / link).is_file(), link


def test_readme_stays_short():
    assert len(README.read_text().splitlines()) <= 150
