"""The one file-digest helper (docfs.hashing) against hashlib on whole bytes."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import trio

from docfs.hashing import PIECE, file_digest, file_digest_async


def test_digest_of_a_file_larger_than_a_piece_matches_hashlib(tmp_path: Path) -> None:
    data = os.urandom(PIECE * 2 + 123)
    path = tmp_path / "f"
    path.write_bytes(data)
    assert file_digest(path) == hashlib.md5(data).hexdigest()
    assert file_digest(path, "sha256") == hashlib.sha256(data).hexdigest()
    assert trio.run(file_digest_async, path) == hashlib.md5(data).hexdigest()


def test_digest_of_an_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty"
    path.write_bytes(b"")
    assert file_digest(path) == hashlib.md5(b"").hexdigest()
