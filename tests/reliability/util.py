"""Helpers shared by the reliability tests: trees of small files and the server's view of them."""

from __future__ import annotations

import hashlib
import os
import re
from collections import Counter
from pathlib import Path
from urllib.parse import parse_qs

from docfs.emulators.dspace6 import DSpace6Emulator

#: sizes around the emulator's 8 KiB buffer (above it answers are chunked) and a few blocks
SIZES = (0, 1, 100, 4096, 8191, 8193, 20_000, 70_000)

#: rsync's temporary names and docfs's other write-then-rename patterns
TEMP_NAME = re.compile(r"^\..+\.[A-Za-z0-9]{6}$|\.tmp\d*$|\.part$")


def make_tree(root: Path, dirs: int, per_dir: int, seed: int = 0) -> dict[str, bytes]:
    """``dirs`` directories of ``per_dir`` files each, small, with reproducible content."""
    files: dict[str, bytes] = {}
    for d in range(dirs):
        (root / f"set-{d}").mkdir(parents=True, exist_ok=True)
        for f in range(per_dir):
            size = SIZES[(d + f) % len(SIZES)]
            seed_bytes = f"{seed}/{d}/{f}".encode()
            block = hashlib.sha256(seed_bytes).digest()
            data = (block * (size // len(block) + 1))[:size]
            rel = f"set-{d}/file-{f:02d}.dat"
            (root / rel).write_bytes(data)
            files[rel] = data
    return files


def read_tree(root: Path) -> dict[str, bytes]:
    """Every regular file under ``root`` by its relative path."""
    found: dict[str, bytes] = {}
    for dirpath, _, names in os.walk(root):
        for name in names:
            path = Path(dirpath) / name
            found[str(path.relative_to(root))] = path.read_bytes()
    return found


def server_tree(e: DSpace6Emulator, collection: str) -> dict[str, bytes]:
    """``item title/bitstream name`` → bytes, for one collection (ORIGINAL bundle only)."""
    found: dict[str, bytes] = {}
    for item in e.items_of(collection):
        for b in e.bitstreams_of(item["uuid"]):
            if b["bundle"] == "ORIGINAL":
                found[f"{item['title']}/{b['name']}"] = e.bitstream_data(b["uuid"])
    return found


def duplicates(e: DSpace6Emulator, collection: str) -> list[str]:
    """Names that exist more than once: items in the collection, or files in one item."""
    items = e.items_of(collection)
    dups = [t for t, n in Counter(i["title"] for i in items).items() if n > 1]
    for item in items:
        names = Counter(b["name"] for b in e.bitstreams_of(item["uuid"]))
        dups += [f"{item['title']}/{n}" for n, c in names.items() if c > 1]
    return dups


def temp_names_on_server(e: DSpace6Emulator, collection: str) -> list[str]:
    """Names on the server, or sent to it, that look like temporary files."""
    names = [n.split("/", 1)[1] for n in server_tree(e, collection)]
    bad = [n for n in names if TEMP_NAME.search(n)]
    for request in e.requests("POST", r"/bitstreams$"):
        for sent in parse_qs(request.query).get("name", []):
            if TEMP_NAME.search(sent):
                bad.append(sent)
    return bad
