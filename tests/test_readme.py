"""The README's usage example runs as written."""

import pathlib
import re
import warnings

from sklearn.exceptions import ConvergenceWarning

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"


def test_readme_usage_example_runs():
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.DOTALL)
    assert blocks, "README has no python example"
    namespace = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for block in blocks:
            exec(compile(block, str(README), "exec"), namespace)  # noqa: S102 - the README's own code
    clf = namespace["clf"]
    assert clf.score(namespace["X"], namespace["y"]) > 0.95
    assert 0 < clf.learning_rate_ < 1
