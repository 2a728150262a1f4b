"""Write man/docfs.1 from the command's own argparse parser (argparse-manpage), and README's
table of every mount option from the option table (``docfs.options`` and the descriptors).

Run after changing the command line or an option: ``.venv/bin/python scripts/manpage.py``. The
page is committed and installed by the package (``share/man/man1``); tests check that the page
matches the parser and the README's table matches the option table, so neither can go stale.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from build_manpages.manpage import Manpage

from docfs import __version__, registry
from docfs.cli import build_parser
from docfs.options import MOUNT_OPTIONS, markdown_table

PAGE = Path(__file__).resolve().parents[1] / "man" / "docfs.1"
README = PAGE.parents[1] / "README.md"
BEGIN = "<!-- options table: written by scripts/manpage.py from docfs/options.py -->\n"
END = "<!-- end of the options table -->\n"
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


def options_table() -> str:
    """The README's table of every mount option, the repository types' own ones last."""
    owned = [
        (" and ".join(t.label for t in registry.option_owners(o.option.name)), o.option)
        for _, o in registry.type_options()
    ]
    unique = list({option.name: (owner, option) for owner, option in owned}.values())
    return markdown_table(MOUNT_OPTIONS, unique)


def readme(text: str) -> str:
    """README with its options table replaced by the current one."""
    head, sep, rest = text.partition(BEGIN)
    _, sep2, tail = rest.partition(END)
    if not sep or not sep2:
        raise SystemExit(f"README.md has no options table markers ({BEGIN.strip()})")
    return head + BEGIN + options_table() + END + tail


def main() -> int:
    text = render()
    current = README.read_text()
    if "--check" in sys.argv:
        return 0 if PAGE.read_text() == text else 1
    if "--check-readme" in sys.argv:
        return 0 if readme(current) == current else 1
    PAGE.write_text(text)
    README.write_text(readme(current))
    print(f"wrote {PAGE} and the options table of {README}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
