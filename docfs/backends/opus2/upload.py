"""The multipart body of an Opus 2 upload (a new document or a new version)."""

from __future__ import annotations

import mimetypes
import secrets
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import trio

#: multipart bodies up to this size are built in memory, larger ones in a temporary file
_INLINE_UPLOAD = 1 << 20


@dataclass
class _Upload:
    body: bytes | Path
    content_type: str
    temp: Path | None = None

    def discard(self) -> None:
        if self.temp is not None:
            self.temp.unlink(missing_ok=True)


def _filename_params(name: str, star: bool = True) -> str:
    """The ``filename`` parameters of the file part, which the server stores exactly.

    The server unescapes quoted pairs in ``filename="…"`` and then the HTML5 form encoding of
    a quote and line breaks (``%22``, ``%0D``, ``%0A``), so no quoted form carries a name that
    holds those sequences; ``filename*=UTF-8''<percent-encoded>`` does, and the server prefers
    it. The quoted fallback, for servers without ``filename*``, escapes a backslash as a quoted
    pair (as the server unescapes it) and a quote and line breaks in the HTML5 encoding (a
    quoted pair ``\\"`` would end the value early in an HTML5 parser); UTF-8 goes as is.
    """
    fallback = (
        name.replace("\\", "\\\\").replace('"', "%22").replace("\r", "%0D").replace("\n", "%0A")
    )
    params = f'filename="{fallback}"'
    if star:
        params += f"; filename*=UTF-8''{quote(name, safe='')}"
    return params


async def _multipart(
    src: Path, filename: str, file_part: str, fields: Mapping[str, str], *, star: bool = True
) -> _Upload:
    """``multipart/form-data`` with text ``fields`` and the file last, as bytes or a temp file.

    The HTTP layer streams a ``Path`` body from disk and re-opens it on a retry, so a large
    upload becomes a temporary file holding the whole encoded body next to the source.
    """
    boundary = "docfs-" + secrets.token_hex(16)
    head = bytearray()
    for key, value in fields.items():
        head += (
            f'--{boundary}\r\nContent-Disposition: form-data; name="{key}"\r\n\r\n{value}\r\n'
        ).encode()
    mime = mimetypes.guess_type(filename)[0] or "application/octet-stream"
    head += (
        f'--{boundary}\r\nContent-Disposition: form-data; name="{file_part}"; '
        f"{_filename_params(filename, star)}\r\nContent-Type: {mime}\r\n\r\n"
    ).encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    content_type = f"multipart/form-data; boundary={boundary}"
    if src.stat().st_size <= _INLINE_UPLOAD:
        data = await trio.to_thread.run_sync(src.read_bytes)
        return _Upload(bytes(head) + data + tail, content_type)
    temp = await trio.to_thread.run_sync(_spool, src, bytes(head), tail)
    return _Upload(temp, content_type, temp)


def _spool(src: Path, head: bytes, tail: bytes) -> Path:
    try:
        # next to the source: same filesystem as the staging area, not a RAM-backed /tmp
        fd, name = tempfile.mkstemp(prefix=f".{src.name[:40]}.", suffix=".part", dir=src.parent)
    except OSError:
        fd, name = tempfile.mkstemp(prefix="docfs-opus2-", suffix=".part")
    with open(fd, "wb") as out, src.open("rb") as source:
        out.write(head)
        while chunk := source.read(1 << 20):
            out.write(chunk)
        out.write(tail)
    return Path(name)
