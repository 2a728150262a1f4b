"""Finding DocSpace files and folders by id, and their pages in the web UI (issue 20).

File ids and folder ids (rooms are folders) are separate sequences, so a key names its kind as
the mount's ``user.docfs.id`` does: ``f123`` a file, ``d45`` a folder; a bare number is taken
as a file first, then as a folder. One request each (docs/protocols/docspace.md, "Finding
objects by identifier"): ``GET files/file/{id}`` or ``GET files/folder/{id}``. An object in the
Trash is not found (the tree does not show it either).

Web pages: a file's ``webUrl`` (the document editor, as the server gives it), else
``/doceditor?fileid={id}``; a room ``/rooms/shared/filter?folder={id}``, another folder
``/rooms/shared/{id}/filter?folder={id}`` (the addresses ONLYOFFICE's own apps link to).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, urlsplit

from docfs import errors
from docfs.backends.base import Entry, IdKind, Kind
from docfs.backends.docspace.common import API

if TYPE_CHECKING:
    from docfs.backends.docspace.backend import DocSpaceBackend

KEY = re.compile(r"^([fd]?)(\d+)$")


def parse_ref(text: str) -> tuple[str, str] | None:
    """``(IdKind.ID, "f123" | "d45" | "123")`` of an id or a DocSpace page address."""
    text = text.strip()
    if "://" not in text:
        return (IdKind.ID, text.lower()) if KEY.match(text.lower()) else None
    parts = urlsplit(text)
    query = {k.lower(): v for k, v in parse_qs(parts.query).items()}
    if query.get("fileid") and query["fileid"][0].isdigit():
        return IdKind.ID, f"f{query['fileid'][0]}"
    if query.get("folder") and query["folder"][0].isdigit():
        return IdKind.ID, f"d{query['folder'][0]}"
    found = re.search(r"/rooms/[a-z]+/(\d+)", parts.path)
    return (IdKind.ID, f"d{found.group(1)}") if found else None


async def resolve(backend: DocSpaceBackend, kind: str, key: str) -> Entry | None:
    found = KEY.match(key) if kind == IdKind.ID else None
    if found is None:
        return None
    prefix, number = found.group(1), found.group(2)
    for what in ("file", "folder") if not prefix else ("file" if prefix == "f" else "folder",):
        try:
            dto = await backend._call("GET", f"{API}/files/{what}/{number}", endpoint=what)
        except errors.NotFound:
            continue
        if not isinstance(dto, dict):
            raise errors.ProtocolError(f"GET files/{what}/{number}: unexpected answer")
        entry = backend._file_entry(dto) if what == "file" else backend._folder_entry(dto)
        return None if entry.extra.get("in_trash") == "1" else entry
    return None


def web_url(backend: DocSpaceBackend, entry: Entry) -> str | None:
    base = str(backend.http.base_url).rstrip("/")
    if entry.kind is Kind.FILE:
        file_id = entry.extra.get("file_id", "")
        return entry.meta.get("web_url") or (
            f"{base}/doceditor?fileid={file_id}" if file_id else None
        )
    folder = entry.extra.get("folder_id", "")
    if not folder:
        return None
    if "room_type" in entry.meta:
        return f"{base}/rooms/shared/filter?folder={folder}"
    return f"{base}/rooms/shared/{folder}/filter?folder={folder}"
