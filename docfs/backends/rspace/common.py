"""RSpace constants, per-call status maps and small helpers shared by the backend's parts."""

from __future__ import annotations

import email.utils
import hashlib
import logging
import re
import time
from datetime import datetime
from typing import Any

import httpx

from docfs import errors
from docfs.backends._http import StatusMap
from docfs.backends.base import Entry

log = logging.getLogger("docfs.backends.rspace")

API = "/api/v1"
PAGE = 100
JSON_ACCEPT = {"Accept": "application/json"}
#: the server's multipart limit (``files.maxUploadSize``), minus room for the form framing
MAX_UPLOAD = 50 * 1024 * 1024 - 64 * 1024
#: rounds of waiting out a 429 on top of the HTTP layer's own retries
RATE_ROUNDS = 4
MAX_NAME = 255
#: the first release with ``POST /documents/move`` (rspace-web ``DocumentsApi.moveDocuments``,
#: added October 2025, released in 2.16.0); older servers answer 404/405 to it
MOVE_SINCE = (2, 16)
#: characters ``DocumentTagManagerImpl.apiSaveTagForDocument`` refuses in a tag (422)
TAG_FORBIDDEN = ("<", ">", "\\", "/")


def repeated_tag(tags: str) -> bool:
    """Whether a comma-separated tag string names one tag twice, as the server splits it
    (Java's ``split(",")``: trailing empty strings dropped; an empty tag is a value too)."""
    values = tags.split(",")
    while len(values) > 1 and values[-1] == "":
        values.pop()
    return len(set(values)) != len(values)


_SECTION_EXTENSIONS: tuple[tuple[str, frozenset[str]], ...] = (
    ("Audios", frozenset({"mp3", "wma", "aac", "ogg", "wav"})),
    (
        "Videos",
        frozenset({"mp4", "avi", "flv", "mpg", "mpeg", "3gp", "wmv", "mov", "hdmov", "m4v"}),
    ),
    ("Images", frozenset({"tif", "tiff", "jpeg", "jpg", "gif", "png", "bmp"})),
    (
        "Documents",
        frozenset(
            {"pdf", "odt", "ods", "odp", "doc", "rtf", "txt", "docx", "ppt", "pptx"}
            | {"xls", "xlsx", "csv", "pps", "md"}
        ),
    ),
    (
        "Chemistry",
        frozenset(
            {"skc", "mrv", "cxsmiles", "cxsmarts", "cdx", "cdxml", "csrdf", "cml", "csmol"}
            | {"cssdf", "csrxn", "mol", "mol2", "pdb", "rxn", "rdf", "smiles", "smarts"}
            | {"sdf", "inchi"}
        ),
    ),
)
#: sections that some extension routes to (uploads into the others always fail)
UPLOAD_SECTIONS = frozenset({s for s, _ in _SECTION_EXTENSIONS} | {"Miscellaneous"})
_UNCREATABLE = frozenset({"Shared", "LabGroups", "CollaborationGroups", "IndividualShareItems"})

# entry kinds kept in Entry.extra["type"]
HOME, FOLDER, NOTEBOOK, DOCUMENT = "HOME", "FOLDER", "NOTEBOOK", "DOCUMENT"
GALLERY, SECTION, GFOLDER, MEDIA = "GALLERY", "SECTION", "GFOLDER", "MEDIA"
FIELD, LINKED = "FIELD", "LINKED"
WORKSPACE_DIRS = frozenset({HOME, FOLDER, NOTEBOOK})
GALLERY_DIRS = frozenset({GALLERY, SECTION, GFOLDER})

# per-call status maps: RSpace's "forbidden" is 401 on folders and 404 on documents and files
_TREE_MAP: StatusMap = {401: errors.PermissionDenied, 404: errors.NotFound}
_FOLDER_STAT_MAP: StatusMap = {401: errors.NotFound, 404: errors.NotFound}
_CREATE_MAP: StatusMap = {
    400: errors.NotSupported,
    401: errors.PermissionDenied,
    422: errors.NotSupported,
    500: errors.NotFound,
}
_UPLOAD_MAP: StatusMap = {
    401: errors.PermissionDenied,
    413: errors.TooLarge,
    422: errors.InvalidArgument,
}
_VERSION_MAP: StatusMap = {404: errors.NotFound, 422: errors.InvalidArgument}
_PUT_MAP: StatusMap = {
    400: errors.ReadOnly,  # signed documents
    404: errors.NotFound,
    409: errors.Conflict,  # open in the web editor
    422: errors.InvalidArgument,
}
_MOVE_MAP: StatusMap = {
    401: errors.PermissionDenied,
    # a release without the move route (only if /status did not tell us so beforehand)
    404: errors.NotSupported,
    405: errors.NotSupported,
    422: errors.InvalidArgument,
    # DocumentsApiController.moveDocuments: a move the service reports as failed is a
    # RuntimeException("document.move.errors.failed") → 500, not a server fault worth a retry
    500: errors.NotSupported,
}
_DELETE_DOC_MAP: StatusMap = {404: errors.NotFound, 422: errors.PermissionDenied}
_DELETE_FOLDER_MAP: StatusMap = {
    401: errors.PermissionDenied,
    404: errors.NotFound,
    422: errors.NotSupported,
}


def section_for(filename: str) -> str:
    """The Gallery section the server puts a file in, from its extension alone."""
    base = filename.rsplit("/", 1)[-1]
    ext = base.rsplit(".", 1)[1].lower() if "." in base else ""
    for section, exts in _SECTION_EXTENSIONS:
        if ext in exts:
            return section
    return "Miscellaneous"


def _ts(value: str | None) -> float | None:
    if not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def _server_time(response: httpx.Response) -> float:
    """The server's clock (``Date``, whole seconds, rounded down); ours if it sent none."""
    date = response.headers.get("date")
    if date:
        try:
            return email.utils.parsedate_to_datetime(date).timestamp()
        except (TypeError, ValueError):
            pass
    return time.time()


def _clean(name: str) -> str:
    return re.sub(r"[\r\n]+", " ", name).strip()


def _check_name(name: str) -> None:
    """Refuse names the server would store differently (trimmed, newlines replaced)."""
    if not name or _clean(name) != name:
        raise errors.InvalidArgument(f"RSpace trims names and drops newlines: {name!r}")
    if len(name) > MAX_NAME:
        raise errors.InvalidArgument("RSpace names are at most 255 characters")


def _sendable(filename: str) -> bool:
    """Whether a multipart ``filename="…"`` carries this name unchanged: a quote or backslash
    must be escaped there, and whether the server's parser undoes the escape is not documented
    (the emulator's does not: ``a\\b.txt`` came back with a doubled backslash, ``q"x.txt``
    lost its extension); a line break ends the header line. Found by the name fuzzer of
    tests/reliability."""
    return not any(c in filename for c in '"\\\r\n')


def release(version: object) -> tuple[int, ...] | None:
    """``rspaceVersion`` as numbers (``"2.16.0"`` → ``(2, 16, 0)``); None if it has none."""
    found = re.match(r"\s*v?(\d+(?:\.\d+)*)", str(version or ""))
    return tuple(int(p) for p in found.group(1).split(".")) if found else None


def _megabytes(value: str | None) -> str:
    """An ``X-Upload-Limit-*`` value (a Java double such as ``99.03``) for a log line."""
    try:
        return f"{float(value or ''):.1f}"
    except ValueError:
        return "?"


def _num(entry: Entry) -> int:
    return int(entry.extra["id"])


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError as exc:
        raise errors.ProtocolError(
            f"RSpace answered {response.status_code} with a body that is not JSON"
        ) from exc
