"""One ``multipart/form-data`` encoder for every backend's uploads (RFC 7578).

The body is described, not built: text fields are encoded up front (they are small), a file
part is a ``Path`` read from disk in pieces while the request goes out. ``Multipart`` is a
``StreamBody`` of the HTTP layer (``_http.py``): every attempt (a retry, a re-login) opens it
again from the start, its exact length is known before the first byte leaves (so the request
carries a ``Content-Length``, which the servers' upload size checks want), and no copy of the
file is made, in memory or in a temporary file.

**The one filename-quoting rule.** ``filename="…"`` is a quoted-string. Inside it a backslash
and a double quote are written as quoted pairs (``\\\\``, ``\\"``, RFC 7578 section 4.2 with
RFC 9110's quoted-string), and CR and LF (which no quoted-string may hold: they would end the
header line) as ``%0D`` and ``%0A``, as browsers do (the HTML form-data encoding). Other
characters, UTF-8 included, go as they are: RFC 7578 section 4.2 allows raw UTF-8 and every
browser sends it so. Why this rule, server by server (DSpace: docs/protocols/dspace7.md,
"Uploads"):

- DSpace 7+ (Spring's ``StandardMultipartHttpServletRequest``) reads the part's name with
  ``ContentDisposition.parse``, which undoes exactly the quoted pairs ``\\"`` and ``\\\\``
  (``decodeQuotedPairs`` in spring-web's ``ContentDisposition.java``) and no percent
  encoding, so a name with a quote or a backslash arrives as it is. The HTML form-data
  encoding of a quote (``%22``), which the old DSpace 7 encoder sent, arrived as ``%22``.
- ONLYOFFICE DocSpace (ASP.NET Core) names every chunk ``blob`` (the title comes from the
  upload session), so the rule never meets a name there.
- RSpace refuses to upload a name holding a quote, a backslash or a line break (whether its
  parser undoes the quoted pairs is not documented: ``_sendable`` in the RSpace backend), so
  the rule never meets such a name there.
- Opus 2 unescapes quoted pairs and then the HTML encoding of a quote and line breaks (see
  the Opus 2 backend), so both forms reach it, and it prefers ``filename*`` (RFC 6266
  section 4.3), which ``FilePart.filename_star`` adds for it alone (RFC 7578 section 4.2 says
  form data must not use it, and Spring would prefer it too).

A quoted pair ``\\"`` is what a parser that knows only the HTML form-data encoding would
misread (it ends the value there); none of the servers above is one. CR and LF have no quoted
form that any of them decodes; the HTML encoding at least keeps the header line whole, so the
part is still a file part.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO
from urllib.parse import quote

import trio

from docfs import errors
from docfs.backends._http_body import StreamBody

#: how much of a file is read at once while the body goes out (one worker-thread hop each)
PIECE = 1 << 20
#: a file up to this size is read in one go, without a worker thread (a thread hop costs
#: more than reading it)
SMALL_FILE = 256 << 10


def quote_filename(name: str) -> str:
    """``name`` as the inside of a quoted ``filename="…"`` (the rule in the module docstring)."""
    return name.replace("\\", "\\\\").replace('"', '\\"').replace("\r", "%0D").replace("\n", "%0A")


@dataclass(frozen=True)
class Field:
    """A form field whose value is text (sent as UTF-8) or bytes."""

    name: str
    value: str | bytes
    #: the part's ``Content-Type`` header, if it needs one (e.g. ``application/json``)
    content_type: str | None = None


@dataclass(frozen=True)
class FilePart:
    """A file part whose content is read from ``path`` while the body is sent."""

    name: str
    path: Path
    #: the name the server sees (never the staging file's own name by accident)
    filename: str
    content_type: str = "application/octet-stream"
    #: also send ``filename*=UTF-8''…`` (RFC 6266), for a server that prefers it
    filename_star: bool = False
    #: send only ``length`` bytes from ``offset`` (one chunk of a chunked upload); ``None``:
    #: the whole file, which must keep its size until it is sent
    offset: int = 0
    length: int | None = None


Part = Field | FilePart


class Multipart(StreamBody):
    """A ``multipart/form-data`` body of ``parts``, in that order, streamed on every ``open``.

    The file sizes are taken when the body is made: a file that changes size before an
    attempt has finished being sent fails that attempt (``Conflict``) rather than sending
    a body that disagrees with its ``Content-Length``.
    """

    def __init__(self, parts: Sequence[Part], boundary: str | None = None) -> None:
        self.boundary = boundary or "docfs-" + secrets.token_hex(16)
        #: the encoded body: bytes as they are, and a ``_Slice`` for each file's content
        self._segments: list[bytes | _Slice] = []
        pending = bytearray()
        for part in parts:
            pending += f"--{self.boundary}\r\n".encode()
            if isinstance(part, FilePart):
                disposition = (
                    f'form-data; name="{quote_filename(part.name)}"; '
                    f'filename="{quote_filename(part.filename)}"'
                )
                if part.filename_star:
                    disposition += f"; filename*=UTF-8''{quote(part.filename, safe='')}"
                pending += (
                    f"Content-Disposition: {disposition}\r\n"
                    f"Content-Type: {part.content_type}\r\n\r\n"
                ).encode()
                self._segments.append(bytes(pending))
                self._segments.append(_Slice.of(part))
                pending = bytearray(b"\r\n")
            else:
                name = quote_filename(part.name)
                pending += f'Content-Disposition: form-data; name="{name}"\r\n'.encode()
                if part.content_type is not None:
                    pending += f"Content-Type: {part.content_type}\r\n".encode()
                value = part.value.encode() if isinstance(part.value, str) else part.value
                pending += b"\r\n" + value + b"\r\n"
        pending += f"--{self.boundary}--\r\n".encode()
        self._segments.append(bytes(pending))
        self._length = sum(
            len(segment) if isinstance(segment, bytes) else segment.size
            for segment in self._segments
        )

    @property
    def length(self) -> int:
        return self._length

    @property
    def content_type(self) -> str:
        """The request's ``Content-Type`` header (it names the boundary)."""
        return f"multipart/form-data; boundary={self.boundary}"

    def open(self) -> _Reader:
        """A reader of the whole body from its first byte (one per attempt)."""
        return _Reader(self._segments)


@dataclass(frozen=True)
class _Slice:
    """The bytes of a file part: ``size`` bytes of ``path`` from ``offset``; ``whole``: all
    of it (then the file must still have exactly that size when it is read)."""

    path: Path
    offset: int
    size: int
    whole: bool

    @classmethod
    def of(cls, part: FilePart) -> _Slice:
        if part.length is None:
            return cls(part.path, 0, part.path.stat().st_size, True)
        return cls(part.path, part.offset, part.length, False)


class _Reader:
    """One pass over a ``Multipart`` body; ``close`` releases the file it is reading."""

    def __init__(self, segments: Sequence[bytes | _Slice]) -> None:
        self._segments = segments
        self._handle: IO[bytes] | None = None

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._pieces()

    async def _pieces(self) -> AsyncIterator[bytes]:
        for segment in self._segments:
            if isinstance(segment, bytes):
                yield segment
                continue
            path, size = segment.path, segment.size
            self.close()
            self._handle = handle = path.open("rb")
            stored = os.fstat(handle.fileno()).st_size
            fits = stored == size if segment.whole else stored >= segment.offset + size
            if not fits:
                raise errors.Conflict(f"{path.name} changed size while being uploaded")
            handle.seek(segment.offset)
            if size <= SMALL_FILE:
                # a slice ends before the file does: never read past it
                data = handle.read(size + 1 if segment.whole else size)
                if len(data) != size:
                    raise errors.Conflict(f"{path.name} changed size while being uploaded")
                left = 0
                if data:
                    yield data
            else:
                left = size
                while left > 0:
                    piece = await trio.to_thread.run_sync(handle.read, min(PIECE, left))
                    if not piece:
                        break
                    left -= len(piece)
                    yield piece
            if left or (segment.whole and handle.read(1)):
                raise errors.Conflict(f"{path.name} changed size while being uploaded")
            self.close()

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None

    def __enter__(self) -> _Reader:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
