"""Sphinx configuration of the fastgd documentation.

Build from the repository root (after ``pip install -e ".[docs]"``)::

    sphinx-build -W -b html docs docs/_build/html

Everything is built offline. Links into the NumPy, SciPy, scikit-learn and matplotlib
documentation (intersphinx) need the network and are off unless
``FASTGD_DOCS_INTERSPHINX=1`` is set.
"""

import os
import pathlib
import shutil
import sys

from sphinx_gallery.scrapers import figure_rst

DOCS = pathlib.Path(__file__).resolve().parent
ROOT = DOCS.parent
sys.path.insert(0, str(ROOT))  # the fastgd of this checkout, whatever is installed

import fastgd  # noqa: E402

project = "fastgd"
author = "the fastgd developers"
copyright = "the fastgd developers"  # noqa: A001 - Sphinx's name
version = release = fastgd.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
]
INTERSPHINX = os.environ.get("FASTGD_DOCS_INTERSPHINX") == "1"
if INTERSPHINX:
    extensions.append("sphinx.ext.intersphinx")
    intersphinx_mapping = {
        "python": ("https://docs.python.org/3", None),
        "numpy": ("https://numpy.org/doc/stable", None),
        "scipy": ("https://docs.scipy.org/doc/scipy", None),
        "sklearn": ("https://scikit-learn.org/stable", None),
        "matplotlib": ("https://matplotlib.org/stable", None),
        "dask": ("https://docs.dask.org/en/stable", None),
    }

exclude_patterns = ["_build", "auto_examples/*.ipynb", "auto_examples/*.py", "auto_examples/*.zip",
                    "auto_examples/*.md5", "auto_examples/*.json", "sg_execution_times.rst"]
templates_path = ["_templates"]
html_static_path = []
html_theme = "pydata_sphinx_theme"
html_title = f"fastgd {release}"
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
}
html_sidebars = {"index": [], "getting_started": []}

# every reference must resolve (nitpicky); the names below are other projects' (linked
# only with intersphinx on)
nitpicky = True
suppress_warnings = ["config.cache"]  # (sphinx_gallery_conf holds the scraper function)
nitpick_ignore = [] if INTERSPHINX else [
    ("py:class", name)
    for name in (
        "sklearn.base.BaseEstimator", "sklearn.base.RegressorMixin", "sklearn.base.ClassifierMixin",
        "sklearn.callback._callback_support.CallbackSupportMixin", "sklearn.callback.CallbackSupportMixin",
        "sklearn.utils._metadata_requests._MetadataRequester", "scipy.optimize.OptimizeResult",
        "FloatingPointError", "fastgd._base.BaseGD", "fastgd._callbacks.CallbackSupport",
    )
]

autosummary_generate = True
autodoc_typehints = "none"
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = True
numpydoc_xref_ignore = "all"  # only the names below become links
numpydoc_xref_aliases = {
    "LinearRegression": "fastgd.LinearRegression",
    "LogisticRegression": "fastgd.LogisticRegression",
    "DivergenceError": "fastgd.DivergenceError",
}
if INTERSPHINX:
    numpydoc_xref_aliases.update({
        "ndarray": "numpy.ndarray",
        "OptimizeResult": "scipy.optimize.OptimizeResult",
        "Axes": "matplotlib.axes.Axes",
        "Figure": "matplotlib.figure.Figure",
    })


# The example scripts save their pictures with savefig into $FASTGD_EXAMPLES_OUT (see
# examples/_common.py) and close them: this scraper shows in the gallery the PNG files
# each script wrote.
GALLERY_OUT = DOCS / "_build" / "example_pictures"
shutil.rmtree(GALLERY_OUT, ignore_errors=True)
GALLERY_OUT.mkdir(parents=True)
os.environ["FASTGD_EXAMPLES_OUT"] = str(GALLERY_OUT)
os.environ.setdefault("MPLBACKEND", "Agg")


def saved_png_scraper(block, block_vars, gallery_conf):
    """The PNG files the example wrote since the last call, in name order."""
    seen = gallery_conf.setdefault("_fastgd_seen_pictures", set())
    new = sorted(p for p in GALLERY_OUT.glob("*.png") if p.name not in seen)
    names = []
    for picture, target in zip(new, block_vars["image_path_iterator"]):
        shutil.copyfile(picture, target)
        seen.add(picture.name)
        names.append(target)
    return figure_rst(names, gallery_conf["src_dir"])


sphinx_gallery_conf = {
    "examples_dirs": str(ROOT / "examples"),
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/\d\d_",  # run every numbered example
    "ignore_pattern": r"_common\.py",
    "image_scrapers": (saved_png_scraper,),
    "within_subsection_order": "FileNameSortKey",
    "download_all_examples": False,
    "remove_config_comments": True,
    "abort_on_example_error": True,
    "reset_modules": (),
    "doc_module": (),
    "backreferences_dir": None,
    "show_memory": False,
    "line_numbers": False,
}


def _only_our_aliases(app, config):
    """numpydoc links built-in and NumPy type names (int, ndarray, ...) to other
    projects' docs; without intersphinx those links cannot resolve, so keep only ours."""
    if not INTERSPHINX:
        config.numpydoc_xref_aliases_complete = dict(config.numpydoc_xref_aliases)


def setup(app):
    app.connect("config-inited", _only_our_aliases, priority=900)  # after numpydoc's
