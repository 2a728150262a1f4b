"""DocSpace constants, name and title rules, the answer envelope and small helpers."""

import logging
import re
from datetime import datetime
from typing import Any, TypeVar

import httpx

from docfs import errors
from docfs.backends._http import StatusMap

log = logging.getLogger("docfs.docspace")
T = TypeVar("T")

API = "/api/2.0"
#: ``Thumbnail.Created`` of ``thumbnailStatus`` (Waiting 0, Created 1, Error 2, NotRequired 3,
#: Creating 4: ``products/ASC.Files/Core/Core/Entries/Thumbnail.cs``)
THUMBNAIL_CREATED = 1
PAGE = 100
DEFAULT_CHUNK = 10 * 1024 * 1024
TITLE_MAX = 165
INVALID_NAME = re.compile(r"[\t*+:\"<>?|\\/]")

# FolderType values the mapping cares about
FT_TRASH, FT_USER, FT_ROOMS, FT_ARCHIVE = 3, 5, 14, 20
READ_ONLY_ROOTS = frozenset({FT_TRASH, FT_ARCHIVE})
SECTION_NAMES = {
    FT_USER: "My documents",
    FT_ROOMS: "Rooms",
    FT_TRASH: "Trash",
    FT_ARCHIVE: "Archive",
}
ST_FAILED = 4
OP_DELETE = 2  # FileOperationType.Delete

#: statuses DocSpace uses differently from the defaults (docs/protocols/docspace.md, "Error
#: statuses"): 402 is quota, 415 a refused type
STATUS_MAP: dict[int, type[errors.DocfsError]] = {
    # a 401 that outlived the re-login: the credentials themselves are refused
    401: errors.AuthenticationFailed,
    402: errors.QuotaExceeded,
    415: errors.NotSupported,
}
LOGIN_STATUS_MAP: StatusMap = {
    401: errors.AuthenticationFailed,
    403: errors.AuthenticationFailed,
}


def parse_date(value: Any) -> float | None:
    """``2024-01-01T12:00:00.0000000+03:00`` or ``…Z`` → seconds since the epoch."""
    if not isinstance(value, str) or not value:
        return None
    text = value.strip().replace("Z", "+00:00")
    # Python wants at most six fraction digits
    text = re.sub(r"(\.\d{6})\d+", r"\1", text)
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        return None


def extension(name: str) -> str:
    dot = name.rfind(".")
    return name[dot:].lower() if dot >= 0 else ""


def check_name(name: str) -> None:
    """Refuse names the server would store differently rather than lose track of them
    (docs/protocols/docspace.md, "Same titles and title sanitation")."""
    if not name or name != name.strip():
        raise errors.InvalidArgument(f"DocSpace trims titles: {name!r} cannot be stored as is")
    if INVALID_NAME.search(name):
        raise errors.InvalidArgument(
            f'DocSpace replaces TAB * + : " < > ? | \\ / in titles: {name!r} is refused'
        )
    if len(name) > TITLE_MAX:
        raise errors.InvalidArgument(f"DocSpace titles are at most {TITLE_MAX} characters")


def server_title(name: str) -> str:
    """The title DocSpace stores when it saves ``name`` (docs/protocols/docspace.md,
    "Every save re-titles the file"; ``FileDao.SaveFileAsync``/``ReplaceFileVersionAsync``):
    the extension lower-cased, a trailing dot when there is none. A rename keeps a title as
    given, so after a save that changed it the backend renames the file back."""
    dot = name.rfind(".")
    ext = name[dot:] if 0 <= dot < len(name) - 1 else ""
    stem = name[:dot] if dot >= 0 else name
    return stem + "." + ext.strip().lower().lstrip(".")


def survives_save(title: str) -> bool:
    """Whether a file titled ``title`` keeps its title through a save: the server re-titles
    (``server_title``) and a rename can give it back, unless it is a title no request may
    carry (made by another client or cut by the server, e.g. 166 to 170 characters)."""
    if server_title(title) == title:
        return True
    try:
        check_name(title)
    except errors.InvalidArgument:
        return False
    return True


def utf16_length(text: str) -> int:
    """.NET's ``string.Length`` (the server's comment limit counts UTF-16 code units)."""
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


#: ``FileDao.UpdateCommentAsync`` keeps the first 255 characters of a comment, silently
COMMENT_MAX = 255
#: the part filename of every chunk: the numbered-chunk handler counts the part's header
#: in characters, not bytes (ChunkedUploaderHandler.cs), so a non-ASCII filename there makes
#: every chunk look longer than it is; the web client sends a Blob, named "blob". The title
#: comes from the upload session.
CHUNK_FILENAME = "blob"
#: how many times a save whose answer was lost is checked and, if absent, done again
SAVE_ATTEMPTS = 3
#: after a request that got no answer, the pauses before each look at the server's state
LOOK_AGAIN = (0.0, 0.5, 1.5, 4.0)


def unwrap(response: httpx.Response) -> Any:
    """The ``response`` of the envelope; the body is checked before the status is trusted."""
    try:
        body = response.json()
    except ValueError:
        raise errors.ProtocolError(
            f"DocSpace: {response.request.method} {response.url.path}: not JSON"
        ) from None
    if not isinstance(body, dict):
        raise errors.ProtocolError("DocSpace: the answer is not an envelope")
    if body.get("status") == 1 or "error" in body:
        message = (body.get("error") or {}).get("message") or "request refused"
        raise errors.InvalidArgument(f"DocSpace: {message}", status=response.status_code)
    return body.get("response")


def op_error(message: str) -> errors.DocfsError:
    """Map a file operation's ``error`` text to an error class."""
    low = message.lower()
    if "access denied" in low or "permission" in low or "locked" in low or "edited" in low:
        return errors.PermissionDenied(f"DocSpace: {message}")
    if "not found" in low or "could not be found" in low:
        return errors.NotFound(f"DocSpace: {message}")
    if "into itself" in low:
        return errors.InvalidArgument(f"DocSpace: {message}")
    return errors.RemoteUnavailable(f"DocSpace: {message}")
