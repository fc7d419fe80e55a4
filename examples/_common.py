"""What the example scripts share (not an example itself).

The scripts run as ``python examples/NN_name.py``, so this directory is on ``sys.path``
and they import it as ``from _common import output_dir``.
"""

import os
import sys


def output_dir():
    """First argument, else $FASTGD_EXAMPLES_OUT, else the current directory."""
    path = (
        sys.argv[1] if len(sys.argv) > 1 else os.environ.get("FASTGD_EXAMPLES_OUT", ".")
    )
    os.makedirs(path, exist_ok=True)
    return path
