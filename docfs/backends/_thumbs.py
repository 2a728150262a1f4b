"""Shared by the DSpace backends: which THUMBNAIL bitstream shows which original, and a
bounded download of a thumbnail's bytes.

DSpace's media filters store a thumbnail of ``x.pdf`` in the item's THUMBNAIL bundle under the
name ``x.pdf.jpg`` (``JPEGFilter``/``PDFBoxThumbnail.getFilteredName`` in DSpace 6 and 7), and
DSpace 7 finds the thumbnail of a bitstream by the pattern ``^<name>.([^.]+)$`` over that bundle
(``BitstreamServiceImpl.getThumbnail``); see docs/protocols/thumbnails.md.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from docfs import errors
from docfs.backends._http import HttpClient
from docfs.backends.base import Thumbnail

#: a thumbnail larger than this is not a thumbnail: not fetched further
MAX_THUMBNAIL_BYTES = 4 << 20


def match_thumbnails(
    originals: Iterable[tuple[str, str]], thumbnails: Iterable[tuple[str, str]]
) -> list[Thumbnail]:
    """``(id, name)`` of the ORIGINAL and THUMBNAIL bitstreams → a thumbnail per original.

    ``<name>.<extension>`` with one extension (no dot) matches, as in DSpace 7; the first
    such thumbnail wins, in bundle order."""
    by_name: dict[str, str] = {}
    for ident, name in thumbnails:
        stem, dot, extension = name.rpartition(".")
        if dot and stem and extension:
            by_name.setdefault(stem, ident)
    found = []
    for ident, name in originals:
        thumb = by_name.get(name)
        if thumb is not None:
            found.append(Thumbnail(file_id=ident, ref=thumb))
    return found


async def fetch_bytes(http: HttpClient, url: str, endpoint: str, **options: Any) -> bytes:
    """The whole body at ``url``, refused past ``MAX_THUMBNAIL_BYTES`` (``options`` go to
    ``HttpClient.download``: query parameters, a status map)."""
    parts: list[bytes] = []
    received = 0

    async def sink(chunk: bytes) -> None:
        nonlocal received
        received += len(chunk)
        if received > MAX_THUMBNAIL_BYTES:
            raise errors.ProtocolError(f"{url}: a thumbnail of more than {received} bytes")
        parts.append(chunk)

    await http.download(url, sink, endpoint=endpoint, ranges=False, **options)
    return b"".join(parts)
