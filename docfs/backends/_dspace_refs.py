"""What ``docfs resolve`` makes of a DSpace reference (6 and 7+ alike): a uuid, a handle, a DOI,
or a web URL of either UI, of the REST API or of a resolver.

- ``hdl:123456789/42``, ``123456789/42``, ``https://hdl.handle.net/123456789/42`` and any
  ``…/handle/123456789/42[/…]`` page (JSPUI, XMLUI and the Angular UI use that form) → handle;
- ``doi:10.5072/abc``, ``https://doi.org/10.5072/abc`` → DOI;
- a uuid, bare or anywhere in a URL's path (``/items/<uuid>``, ``/entities/publication/<uuid>``,
  ``/server/api/core/bitstreams/<uuid>``, ``/bitstreams/<uuid>/download``) → id.
"""

from __future__ import annotations

import re
from urllib.parse import unquote, urlsplit

from docfs.backends.base import IdKind

UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
#: a handle: a prefix (digits and dots, e.g. ``123456789`` or ``10.1000.1``) and a suffix
HANDLE = re.compile(r"^(\d[\d.]*)/([^/?#\s]+)")
DOI = re.compile(r"^(10\.\d+)/(\S+)$")


def parse_ref(text: str) -> tuple[str, str] | None:
    """``(IdKind, key)`` of a DSpace reference, or None if it is none."""
    text = text.strip()
    lowered = text.lower()
    for scheme in ("hdl:", "info:hdl/"):
        if lowered.startswith(scheme):
            return _handle(text[len(scheme) :])
    if lowered.startswith("doi:"):
        return _doi(text[4:])
    if "://" in text:
        parts = urlsplit(text)
        path = unquote(parts.path)
        host = parts.netloc.lower()
        if host.endswith("doi.org"):
            return _doi(path.lstrip("/"))
        if host.endswith("hdl.handle.net"):
            return _handle(path.lstrip("/"))
        found = re.search(r"/handle/(.+)$", path)
        if found:
            return _handle(found.group(1))
        uuid = UUID.search(path)
        return (IdKind.ID, uuid.group(0).lower()) if uuid else None
    if UUID.fullmatch(text):
        return IdKind.ID, text.lower()
    return _handle(text)


def _handle(text: str) -> tuple[str, str] | None:
    found = HANDLE.match(text.strip())
    return (IdKind.HANDLE, f"{found.group(1)}/{found.group(2)}") if found else None


def _doi(text: str) -> tuple[str, str] | None:
    found = DOI.match(text.strip())
    return (IdKind.DOI, f"{found.group(1)}/{found.group(2)}") if found else None
