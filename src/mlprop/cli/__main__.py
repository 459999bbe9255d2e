"""``python -m mlprop.cli``: the same as the ``mlprop`` console script."""

import sys

from mlprop.cli import main

sys.exit(main())
