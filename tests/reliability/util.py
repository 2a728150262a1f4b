"""Helpers shared by the reliability tests: trees of small files, waiting, writing with close."""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable
from pathlib import Path

from tests.reliability.targets import TEMP_NAME, Place, Target

#: sizes around the emulators' 8 KiB buffer (above it answers are chunked) and a few blocks
SIZES = (0, 1, 100, 4096, 8191, 8193, 20_000, 70_000)


def make_tree(root: Path, dirs: int, per_dir: int, seed: int = 0) -> dict[str, bytes]:
    """``dirs`` directories of ``per_dir`` files each, small, with reproducible content.

    The names end in ``.txt``: every backend takes those where these tests write (RSpace
    picks a Gallery section by extension, and ``.txt`` belongs to Documents).
    """
    files: dict[str, bytes] = {}
    for d in range(dirs):
        (root / f"set-{d}").mkdir(parents=True, exist_ok=True)
        for f in range(per_dir):
            size = SIZES[(d + f) % len(SIZES)]
            seed_bytes = f"{seed}/{d}/{f}".encode()
            block = hashlib.sha256(seed_bytes).digest()
            data = (block * (size // len(block) + 1))[:size]
            rel = f"set-{d}/file-{f:02d}.txt"
            (root / rel).write_bytes(data)
            files[rel] = data
    return files


def flat_files(count: int, seed: int = 0) -> dict[str, bytes]:
    """``count`` files by name (no directory), as ``make_tree`` makes them."""
    files: dict[str, bytes] = {}
    for f in range(count):
        size = SIZES[f % len(SIZES)]
        block = hashlib.sha256(f"{seed}/flat/{f}".encode()).digest()
        files[f"file-{f:02d}.txt"] = (block * (size // len(block) + 1))[:size]
    return files


def write_files(root: Path, files: dict[str, bytes]) -> list[str]:
    """Write ``files`` under ``root``; the paths, sorted (arguments for ``cp``)."""
    root.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (root / name).write_bytes(data)
    return sorted(str(root / name) for name in files)


def read_tree(root: Path) -> dict[str, bytes]:
    """Every regular file under ``root`` by its relative path."""
    found: dict[str, bytes] = {}
    for dirpath, _, names in os.walk(root):
        for name in names:
            path = Path(dirpath) / name
            found[str(path.relative_to(root))] = path.read_bytes()
    return found


def temp_names_on_server(target: Target, place: Place) -> list[str]:
    """Names on the server below a container, or sent to it, that look like temporary files."""
    names = [n.split("/", 1)[1] for n in target.tree(place)]
    names += target.sent_names()
    return [n for n in names if TEMP_NAME.search(n)]


def wait_for(condition: Callable[[], bool], limit: float = 60.0, step: float = 0.02) -> None:
    """Poll until ``condition`` holds; the limit only stops a hang, it measures nothing."""
    deadline = time.monotonic() + limit
    while not condition():
        assert time.monotonic() < deadline, "the condition never came true"
        time.sleep(step)


def write_and_close(path: Path, data: bytes) -> None:
    """open/write/close: the upload happens at close, so that is where its error shows."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)
