"""Digests of files on disk: the one helper every checksum comparison uses.

A cache file checked after download, an upload matched against what the server lists, a
write-back job's fingerprint — all the same computation, so it lives once here. Reading goes
in 1 MiB pieces so a large file never sits in memory.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import trio

PIECE = 1 << 20
#: files up to this size are hashed in the calling thread; larger ones in a worker thread
INLINE_MAX = 1 << 20


def file_digest(path: Path, algorithm: str = "md5") -> str:
    """The lower-case hex digest of the file at ``path`` (``hashlib`` algorithm name)."""
    digest = hashlib.new(algorithm, usedforsecurity=False)
    with path.open("rb") as f:
        while piece := f.read(PIECE):
            digest.update(piece)
    return digest.hexdigest()


async def file_digest_async(path: Path, algorithm: str = "md5", *, size: int | None = None) -> str:
    """``file_digest`` without blocking the event loop for a large file (``size`` known or
    looked up): small files at once, larger ones in a worker thread."""
    if size is None:
        size = path.stat().st_size
    if size <= INLINE_MAX:
        return file_digest(path, algorithm)
    return await trio.to_thread.run_sync(file_digest, path, algorithm)
