"""Finding RSpace objects by global id, and their pages in the web UI (issue 20).

RSpace names every object by a global id: ``SD`` documents, ``NB`` notebooks, ``FL`` folders,
``GF`` Gallery folders, ``GL`` Gallery files. ``resolve`` reads one with one request
(docs/protocols/rspace.md, "Finding objects by identifier"): ``GET /documents/{n}`` (its tags,
form and shares are read when the extended attributes are, like a listed document's),
``GET /folders/{n}`` (folders, notebooks, Gallery folders) or ``GET /files/{n}``. Fields
(``FD``) are parts of a document, not objects of their own: not looked up.

The web UI's page of any object is ``/globalId/{id}``: RSpace's ``GlobalLookupController``
redirects it to the document editor, notebook, workspace folder, Gallery or file stream.
``parse_ref`` also reads those pages' own addresses back into a global id.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, unquote, urlsplit

from docfs import errors
from docfs.backends.base import Entry, IdKind

if TYPE_CHECKING:
    from docfs.backends.rspace.backend import RSpaceBackend

GLOBAL_ID = re.compile(r"^(SD|NB|FL|GF|GL)(\d+)$", re.IGNORECASE)
#: page addresses of the web UI (``GlobalLookupController``'s targets) → global id prefix
PAGES = (
    (re.compile(r"/globalId/([A-Za-z]{2}\d+)"), ""),
    (re.compile(r"/workspace/editor/structuredDocument/(\d+)"), "SD"),
    (re.compile(r"/notebookEditor/(\d+)"), "NB"),
    (re.compile(r"/workspace/(\d+)"), "FL"),
    (re.compile(r"/gallery/(\d+)"), "GF"),
    (re.compile(r"/Streamfile/(\d+)"), "GL"),
)


def parse_ref(text: str) -> tuple[str, str] | None:
    """``(IdKind.ID, global id)`` of a global id or an RSpace page address."""
    text = text.strip()
    if "://" not in text:
        found = GLOBAL_ID.match(text)
        return (IdKind.ID, text.upper()) if found else None
    parts = urlsplit(text)
    path = unquote(parts.path)
    for pattern, prefix in PAGES:
        match = pattern.search(path)
        if match:
            gid = (prefix + match.group(1)).upper()
            return (IdKind.ID, gid) if GLOBAL_ID.match(gid) else None
    # e.g. /workspace?settingsKey=…&recordId=123 is not a stable address; a globalId=… is
    query = parse_qs(parts.query).get("globalId")
    if query and GLOBAL_ID.match(query[0]):
        return IdKind.ID, query[0].upper()
    return None


async def resolve(backend: RSpaceBackend, kind: str, key: str) -> Entry | None:
    found = GLOBAL_ID.match(key) if kind == IdKind.ID else None
    if found is None:
        return None
    prefix, num = found.group(1).upper(), int(found.group(2))
    try:
        if prefix == "SD":
            await backend._home_id()  # ownership is judged against the Home folder
            doc = await backend._get(f"/documents/{num}", endpoint="documents.get")
            parent = doc.get("parentFolderId")
            # without ``form`` the entry is partial: tags, form and shares (one more request
            # for the owner) are read when the extended attributes are
            brief = {k: v for k, v in doc.items() if k != "form"}
            return backend._document_entry(brief, "" if parent is None else str(parent))
        return await backend.entry_by_id(f"{prefix}{num}")
    except errors.NotFound:
        return None


def web_url(backend: RSpaceBackend, entry: Entry) -> str | None:
    gid = entry.meta.get("globalId", "")
    if gid.upper().startswith("FD"):
        gid = entry.id.split("/", 1)[0]  # a field: its document's page
    if not gid:
        return None
    return f"{str(backend.http.base_url).rstrip('/')}/globalId/{gid}"
