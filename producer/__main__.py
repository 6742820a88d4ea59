"""``python -m producer ...`` is ``kva produce ...``."""

import sys

from kva.cli import main

sys.exit(main(["produce", *sys.argv[1:]]))
