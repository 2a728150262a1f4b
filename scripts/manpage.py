"""Write man/docfs.1 from the command's own argparse parser (argparse-manpage).

Run after changing the command line: ``.venv/bin/python scripts/manpage.py``. The page is
committed and installed by the package (``share/man/man1``); a test checks it matches the
parser, so it cannot go stale.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from build_manpages.manpage import Manpage

from docfs import __version__
from docfs.cli import build_parser

PAGE = Path(__file__).resolve().parents[1] / "man" / "docfs.1"
#: the month of the release the page describes (the .TH date); move it with the version
DATE = "2026-12"


def render() -> str:
    data = {
        "project_name": "docfs",
        "version": __version__,
        "description": "mount document repositories (DSpace, RSpace, Opus 2, DocSpace) as "
        "directories",
        "manual_title": "docfs manual",
        # the page changes with the parser, not with the day it was made
        "date": DATE,
    }
    # argparse wraps to the terminal's width: the same page on every terminal
    width = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = "100"
    try:
        return str(Manpage(build_parser(), data))
    finally:
        if width is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = width


def main() -> int:
    text = render()
    if "--check" in sys.argv:
        return 0 if PAGE.read_text() == text else 1
    PAGE.write_text(text)
    print(f"wrote {PAGE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
