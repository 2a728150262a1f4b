"""What a file's bytes are checked against: the repository's ``Entry.checksum``.

A complete download is kept only when its digest matches the checksum the repository gave,
and a write-back upload found on the server after a restart counts as ours only when the
digests agree. Any ``hashlib`` algorithm works; one this Python lacks is treated like no
checksum at all (the size still has to match). The digests come from ``docfs.hashing``.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from docfs.backends.base import Checksum, Entry
from docfs.hashing import file_digest, file_digest_async


def expected(entry: Entry) -> Checksum | None:
    """The checksum ``entry``'s bytes must have, or None (nothing to check against)."""
    checksum = entry.checksum
    if checksum is None or not checksum.value:
        return None
    if checksum.algorithm.lower() not in hashlib.algorithms_available:
        return None
    return Checksum(checksum.algorithm.lower(), checksum.value.lower())


def label(checksum: Checksum) -> str:
    """How log lines and errors name the algorithm (``MD5 mismatch``)."""
    return checksum.algorithm.upper()


def digest(path: Path, algorithm: str) -> str | OSError:
    """The hex digest of the file at ``path``, or why it could not be read."""
    try:
        return file_digest(path, algorithm)
    except OSError as exc:
        return exc


async def digest_async(path: Path, algorithm: str, size: int) -> str | OSError:
    """``digest`` without stalling the event loop on a large file (see ``docfs.hashing``)."""
    try:
        return await file_digest_async(path, algorithm, size=size)
    except OSError as exc:
        return exc
