"""``python -m kva``: the ``kva`` command (see :mod:`kva.launcher.cli`)."""

import sys

from kva.launcher.cli import main

sys.exit(main())
