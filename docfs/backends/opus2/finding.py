"""Finding Opus 2 documents and projects by id (issue 20).

Opus 2 ids are per project: a document is ``GET projects/{pid}/documents/{did}``, so its key
is ``<project id>:<document id>`` (the mount's ``user.docfs.id`` form, ``d:<pid>:<did>``, is
taken too); a project is ``p:<pid>``. One request each. Folders cannot be looked up: the API
reads a folder by name or path only (docs/protocols/opus2.md). A document found only this way
(no listing showed it yet) is read-only: the project's access, which a listing carries, is
unknown. The vendor documents no addresses of its web interface: no ``user.docfs.url``.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from docfs import errors
from docfs.backends.base import Entry, IdKind
from docfs.backends.opus2.api import _as_object, _q

if TYPE_CHECKING:
    from docfs.backends.opus2.backend import Opus2Backend

DOCUMENT = re.compile(r"^(?:d:)?([^:/]+):([^:/]+)$")
PROJECT = re.compile(r"^p:([^:/]+)$")


def parse_ref(text: str) -> tuple[str, str] | None:
    """``(IdKind.ID, key)`` of ``PID:DID``, ``d:PID:DID`` or ``p:PID``."""
    text = text.strip()
    return (IdKind.ID, text) if DOCUMENT.match(text) or PROJECT.match(text) else None


async def resolve(backend: Opus2Backend, kind: str, key: str) -> Entry | None:
    if kind != IdKind.ID:
        return None
    try:
        project = PROJECT.match(key)
        if project:
            data = await backend._get(
                backend._project_path(project.group(1)) + "/", endpoint="project"
            )
            return backend._project_entry(_as_object(data))
        document = DOCUMENT.match(key)
        if document is None:
            return None
        pid, did = document.group(1), document.group(2)
        data = await backend._get(
            backend._project_path(pid, "documents", _q(did)), endpoint="document"
        )
        return backend._document_entry(_as_object(data), pid, False)
    except errors.NotFound:
        return None
