"""Request bodies of the HTTP layer: what a body may be and how each attempt sends it.

A body is ``bytes``, a ``Path`` (a file streamed from disk, re-opened for every attempt) or a
``StreamBody`` (any body of known length opened again for every attempt, e.g. the multipart
encoder of ``_multipart.py``); so a retry or a re-login never needs an upload in memory. What
leaves is counted as it leaves (``CountingStream``), for the upload progress of ``docfs
status``.
"""

from __future__ import annotations

import abc
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Protocol

import httpx
import trio

from docfs.backends._bandwidth import Bandwidth
from docfs.backends.traffic import EndpointStats, Transfer

#: file bodies up to this size are read into memory instead of streamed from the disk
SMALL_BODY = 256 << 10


class BodyReader(Protocol):
    """One pass over a ``StreamBody``, from its first byte; closed after the attempt."""

    def __aiter__(self) -> AsyncIterator[bytes]: ...

    def close(self) -> None: ...


class StreamBody(abc.ABC):
    """A body streamed from its start again for every attempt, whose length is known before
    it is sent (the request carries a ``Content-Length``, not chunked encoding)."""

    @property
    @abc.abstractmethod
    def length(self) -> int: ...

    @abc.abstractmethod
    def open(self) -> BodyReader: ...


Body = bytes | Path | StreamBody | None


#: bodies are handed to the connection in pieces of at most this size (a multipart built in
#: memory is one ``bytes``; file bodies come in 1 MiB chunks), so progress moves as they leave,
#: also over a slow uplink where 1 MiB takes seconds
COUNT_PIECE = 256 << 10


class CountingStream(httpx.AsyncByteStream):
    """A request body that counts what the connection took: a chunk counts once the sender
    asks for the next one, i.e. after it was written to the socket. With a ``bandwidth``
    (``--bwlimit``) each piece waits for its share of the limit before it is handed over."""

    def __init__(
        self,
        inner: Any,
        stat: EndpointStats,
        transfer: Transfer | None,
        bandwidth: Bandwidth | None = None,
    ) -> None:
        self._inner = inner
        self._stat = stat
        self._transfer = transfer
        self._bandwidth = bandwidth
        #: bytes this attempt counted (taken back from the transfer when it is retried)
        self.counted = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._inner:
            for start in range(0, len(chunk), COUNT_PIECE):
                piece = chunk[start : start + COUNT_PIECE] if len(chunk) > COUNT_PIECE else chunk
                if self._bandwidth is not None:
                    await self._bandwidth.take(len(piece))
                yield piece
                self.counted += len(piece)
                self._stat.bytes_sent += len(piece)
                if self._transfer is not None:
                    self._transfer.sent += len(piece)

    async def aclose(self) -> None:
        close = getattr(self._inner, "aclose", None)
        if close is not None:
            await close()


def open_content(body: Body) -> tuple[Any, Any]:
    """What httpx sends for one attempt of ``body``, and the handle to close after it (or
    None)."""
    if isinstance(body, StreamBody):
        reader = body.open()
        return reader, reader
    if isinstance(body, Path):
        handle = body.open("rb")
        # a small file is read at once: two thread hops per upload cost more than the read
        small = os.fstat(handle.fileno()).st_size <= SMALL_BODY
        return (handle.read() if small else file_chunks(handle)), handle
    return body, None


def body_length(body: Body) -> int:
    if isinstance(body, StreamBody):
        return body.length
    return body.stat().st_size if isinstance(body, Path) else len(body or b"")


async def file_chunks(handle: Any, size: int = 1 << 20) -> AsyncIterator[bytes]:
    while True:
        chunk = await trio.to_thread.run_sync(handle.read, size)
        if not chunk:
            return
        yield chunk
