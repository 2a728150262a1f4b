"""``python -m docfs``: the same as the ``docfs`` command."""

import sys

from docfs.cli import main

sys.exit(main())
