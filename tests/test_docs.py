"""The documentation's sources cover the package: every public name has its entry in
the API reference, every user-guide page is in a table of contents, and every example
opens with the title the gallery shows. (The build itself, ``sphinx-build -W``, runs in
``.ci/run``.)"""

import ast
import pathlib
import re

import fastgd
from fastgd import plotting

ROOT = pathlib.Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"


def autosummary_entries(text):
    """The names listed under the ``.. autosummary::`` directives of ``text``."""
    names = []
    for block in re.findall(r"\.\. autosummary::\n((?:   .*\n|\n)+)", text):
        names += [line.strip() for line in block.splitlines() if line.strip() and not line.strip().startswith(":")]
    return names


def test_every_public_name_is_in_the_api_reference():
    listed = autosummary_entries((DOCS / "api.rst").read_text())
    public = sorted(set(fastgd.__all__) - {"__version__"}) + sorted(plotting.__all__)
    assert sorted(listed) == sorted(public)
    assert len(listed) == 14


def test_every_user_guide_page_is_in_its_toctree():
    index = (DOCS / "user_guide" / "index.rst").read_text()
    listed = set(re.findall(r"^   (\w+)$", index, flags=re.MULTILINE))
    pages = {p.stem for p in (DOCS / "user_guide").glob("*.rst")} - {"index"}
    assert listed == pages
    assert {"algorithm", "update_rules", "choosing", "sparse", "dask", "reliability", "performance"} <= pages


def test_examples_open_with_a_gallery_title():
    scripts = sorted((ROOT / "examples").glob("[0-9][0-9]_*.py"))
    assert len(scripts) == 7
    for script in scripts:
        doc = ast.get_docstring(ast.parse(script.read_text()), clean=False)
        title, underline = doc.splitlines()[:2]
        assert title.strip() and set(underline) == {"="} and len(underline) >= len(title), script.name


def test_intersphinx_is_off_unless_asked_for():
    conf = (DOCS / "conf.py").read_text()
    assert 'INTERSPHINX = os.environ.get("FASTGD_DOCS_INTERSPHINX") == "1"' in conf
    assert conf.index("if INTERSPHINX:") < conf.index("intersphinx_mapping")
