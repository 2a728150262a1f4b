"""The DocSpace portal's data: constants, users, rooms, folders, files, versions, sessions.

The enums and limits are the server's (FolderType, FileShare, FileOperationType…; see
``docs/protocols/docspace.md``); the dataclasses are the emulator's in-memory state, the
``ApiError`` family the errors a handler raises, and the title helpers the server's title rules.
"""

from __future__ import annotations

import itertools
import random
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone

KiB = 1 << 10


MiB = 1 << 20


DAY = 86400.0


#: what the server answers as ``chunkUploadSize`` (files:uploader:chunk-size)
CHUNK_UPLOAD_SIZE = 10 * MiB


#: web:available-file-size, the cap of non-chunked uploads
MAX_UPLOAD_SIZE = 100 * MiB


#: how a download body is cut into ASGI messages (so planned resets can land mid-body)
STREAM_CHUNK = 64 * KiB


TITLE_MAX_REQUEST = 165


TITLE_MAX_STORED = 170


SESSION_TTL = 12 * 3600.0


# FolderType (DocSpace-server products/ASC.Files/Core/Core/Entries/Folder.cs)
FT_DEFAULT, FT_TRASH, FT_USER, FT_VIRTUAL_ROOMS, FT_ARCHIVE = 0, 3, 5, 14, 20


#: RoomType → the FolderType of a room of that type
ROOM_FOLDER_TYPE = {1: 15, 2: 16, 5: 19, 6: 22, 8: 29, 9: 31}


ROOM_TYPE_NAMES = {
    "fillingformsroom": 1,
    "editingroom": 2,
    "customroom": 5,
    "publicroom": 6,
    "virtualdataroom": 8,
    "airoom": 9,
}


CONFLICT_NAMES = {"skip": 0, "overwrite": 1, "duplicate": 2}


# FileOperationType and DistributedTaskStatus
OP_MOVE, OP_COPY, OP_DELETE = 0, 1, 2


ST_RUNNING, ST_COMPLETED, ST_FAILED = 1, 2, 4


# internal access levels (what a user may do somewhere), mapped to FileShare ints for the DTOs
NONE, READ, EDIT, CREATE, FULL = 0, 1, 2, 3, 4


ACCESS_NAMES = {"read": READ, "editor": EDIT, "content_creator": CREATE, "manager": FULL}


ROOM_FILESHARE = {READ: 2, EDIT: 10, CREATE: 11, FULL: 9}


INVALID_TITLE_CHARS = re.compile(r"[\t*+:\"<>?|\\/]|[\ud800-\udfff]")


FILE_TYPES: dict[int, tuple[str, ...]] = {
    1: (".zip", ".rar", ".7z", ".tar", ".gz", ".tgz", ".bz2"),
    2: (".mp4", ".avi", ".mkv", ".mov", ".webm", ".m4v"),
    3: (".mp3", ".wav", ".ogg", ".flac", ".m4a", ".aac"),
    4: (".png", ".jpg", ".jpeg", ".gif", ".bmp", ".svg", ".webp", ".tif", ".tiff"),
    5: (".xlsx", ".xls", ".ods", ".csv", ".xlsb", ".xlt", ".ots", ".fods"),
    6: (".pptx", ".ppt", ".odp", ".pps", ".pot", ".otp", ".fodp"),
    7: (".docx", ".doc", ".odt", ".rtf", ".txt", ".md", ".htm", ".html", ".epub", ".fb2", ".ott"),
    10: (".pdf",),
    11: (".vsdx",),
}


#: extensions /upload converts to OOXML (ONLYOFFICE's format registry, "auto-convert")
MUST_CONVERT: dict[str, str] = {
    **dict.fromkeys(
        (".doc", ".dot", ".odt", ".ott", ".rtf", ".epub", ".fb2", ".htm", ".html", ".mht"),
        ".docx",
    ),
    **dict.fromkeys((".mhtml", ".xml", ".wps", ".wpt", ".stw", ".sxw", ".fodt"), ".docx"),
    **dict.fromkeys((".xls", ".xlt", ".xlsb", ".ods", ".ots", ".fods", ".et", ".ett"), ".xlsx"),
    **dict.fromkeys((".sxc",), ".xlsx"),
    **dict.fromkeys((".ppt", ".pot", ".pps", ".odp", ".otp", ".fodp", ".dps", ".dpt"), ".pptx"),
}


#: what the converter takes (``extsConvertible``; our choice of the registry's list: the
#: document, spreadsheet, presentation and PDF types): in a watermarked room these download
#: as PDFs
CONVERTIBLE: dict[str, list[str]] = {
    ext: sorted({".pdf", MUST_CONVERT.get(ext, ".pdf")})
    for kind in (5, 6, 7, 10)
    for ext in FILE_TYPES[kind]
}


#: what ``POST …/file`` accepts without ``enableExternalExt`` (other titles get ``.docx``)
CREATABLE = (".docx", ".xlsx", ".pptx", ".pdf")


#: the bytes a new document gets from its "template": an empty ZIP archive
TEMPLATE_BODY = b"PK\x05\x06" + bytes(18)


FILE_SECURITY_KEYS = (
    "Read",
    "Comment",
    "FillForms",
    "Review",
    "Edit",
    "Delete",
    "CustomFilter",
    "Rename",
    "ReadHistory",
    "Lock",
    "EditHistory",
    "Copy",
    "Move",
    "Duplicate",
    "Download",
    "Convert",
    "CopyLink",
    "Embed",
)


FOLDER_SECURITY_KEYS = (
    "Read",
    "Create",
    "CreateFrom",
    "Delete",
    "EditRoom",
    "Rename",
    "ReadHistory",
    "CopyTo",
    "Copy",
    "MoveTo",
    "Move",
    "Pin",
    "Mute",
    "EditAccess",
    "Duplicate",
    "Download",
    "CopySharedLink",
)


class Content:
    """The bytes of one file version; large test files are generated instead of stored."""

    size: int

    def read(self, start: int, end: int) -> bytes:
        """Bytes [start, end)."""
        raise NotImplementedError

    def all(self) -> bytes:
        return self.read(0, self.size)


class BytesContent(Content):
    """Content held as bytes (uploads, small seeded files)."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.size = len(data)

    def read(self, start: int, end: int) -> bytes:
        return self.data[start:end]


class PatternContent(Content):
    """``size`` deterministic pseudo-random bytes that are never held in memory at once."""

    BLOCK = 1 * MiB

    def __init__(self, size: int, seed: int) -> None:
        self.size = size
        self.seed = seed
        self._block = random.Random(seed).randbytes(self.BLOCK)

    def read(self, start: int, end: int) -> bytes:
        end = min(end, self.size)
        parts = []
        pos = start
        while pos < end:
            block_no, offset = divmod(pos, self.BLOCK)
            take = min(end - pos, self.BLOCK - offset)
            chunk = self._block[offset : offset + take]
            if offset == 0:
                # the block number in each block's first byte tells equal blocks apart
                chunk = bytes([chunk[0] ^ (block_no & 0xFF)]) + chunk[1:]
            parts.append(chunk)
            pos += take
        return b"".join(parts)


@dataclass
class User:
    """A portal account with its My documents (optional) and Trash sections."""

    id: str
    email: str
    password: str = field(repr=False)
    display_name: str
    admin: bool = True
    has_my: bool = True
    two_factor: str | None = None  # None, "app" or "sms"
    disabled: bool = False
    store_original: bool = False
    my_id: int = 0
    trash_id: int = 0


@dataclass
class ApiKey:
    """An ``sk-…`` key with its scopes (``*`` = everything)."""

    id: str
    key: str = field(repr=False)
    user_id: str
    name: str
    scopes: tuple[str, ...]
    created: float
    expires: float | None


@dataclass
class Token:
    """A login token's owner and expiry (portal clock)."""

    user_id: str
    expires: float


@dataclass
class Version:
    """One content version of a file."""

    number: int
    group: int
    content: Content
    created: float
    author: str
    comment: str


@dataclass
class FileObj:
    """A file: its versions (the last is current), lock and conversion state."""

    id: int
    title: str
    folder_id: int
    created: float
    created_by: str
    versions: list[Version]
    modified: float
    modified_by: str
    locked_by: str | None = None
    editing: bool = False
    converting_until: float | None = None
    origin_folder_id: int | None = None
    #: the thumbnail the builder made: (version number, image bytes, media type)
    thumbnail: tuple[int, bytes, str] | None = None

    @property
    def current(self) -> Version:
        return self.versions[-1]

    @property
    def ext(self) -> str:
        return extension(self.title)


@dataclass
class FolderObj:
    """A folder, a room (``room_type`` set) or a section root (no parent)."""

    id: int
    title: str
    parent_id: int | None
    folder_type: int
    created: float
    created_by: str
    modified: float
    modified_by: str
    room_type: int | None = None
    deny_download: bool = False
    #: room members: user id → access level
    members: dict[str, int] = field(default_factory=dict)
    #: the user a My documents or Trash section belongs to
    owner: str | None = None
    origin_folder_id: int | None = None
    #: a room's watermark text (``SettingsWatermark``): its documents download as PDFs
    watermark: str | None = None


@dataclass
class UploadSession:
    """A chunked upload: chunk slots by number, committed when complete."""

    id: str
    user_id: str
    folder_id: int
    title: str
    total: int
    created: float
    touched: float
    create_new: bool
    use_chunks: bool
    file_id: int | None = None  # set for edit_session: commit = new version of this file
    keep_version: bool = False
    chunks: dict[int, bytes] = field(default_factory=dict)
    #: the length the server recorded for each chunk (a numbered chunk's is computed, see
    #: ``numbered_chunk_length``); ``finalize`` sums these, not the bytes
    lengths: dict[int, int] = field(default_factory=dict)


@dataclass
class Operation:
    """An asynchronous file operation; ``apply`` runs when it is due."""

    id: str
    user_id: str
    kind: int
    due: float
    hold: bool
    apply: Callable[[], None] = field(repr=False)
    status: int = ST_RUNNING
    error: str = ""
    files: list[int] = field(default_factory=list)
    folders: list[int] = field(default_factory=list)

    @property
    def finished(self) -> bool:
        return self.status > ST_RUNNING


@dataclass(frozen=True)
class DownloadRecord:
    """One content answer (``filehandler.ashx`` or storage): which bytes of what were sent."""

    file_id: int
    version: int
    #: the ``Range`` header as received (None: the whole file was asked for)
    range: str | None
    #: the bytes sent, [start, end); nothing for a refused range
    start: int
    end: int
    status: int


@dataclass(frozen=True)
class ChunkRecord:
    """One chunk received by ``ChunkedUploader.ashx`` (sessions are gone once committed)."""

    session_id: str
    #: ``chunkNumber`` for numbered chunks; None for sequential ones and "no chunks" bodies
    number: int | None
    size: int


class ApiError(Exception):
    """An exception the server's handler turns into the error envelope (§2.2)."""

    def __init__(
        self, status: int, message: str, kind: str = "System.Exception", detailed: bool = True
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.kind = kind
        #: auth, brute-force, CustomHttpException and NotSupported errors carry no type/stack
        self.detailed = detailed


def not_found(what: str = "The item could not be found") -> ApiError:
    return ApiError(404, what, "ASC.Files.Core.ItemNotFoundException")


def access_denied() -> ApiError:
    return ApiError(403, "Access denied", "System.Security.SecurityException")


def invalid_operation(message: str) -> ApiError:
    return ApiError(403, message, "System.InvalidOperationException")


def argument_error(message: str) -> ApiError:
    return ApiError(400, message, "System.ArgumentException")


def quota_error(message: str) -> ApiError:
    return ApiError(402, message, "ASC.Core.Tenants.TenantQuotaException")


class ValidationFailed(Exception):
    """Model validation: HTTP 400 with a success-shaped envelope and ProblemDetails (§2.3)."""

    def __init__(self, errors: dict[str, list[str]]) -> None:
        super().__init__("validation")
        self.errors = errors


class ChunkError(Exception):
    """A ChunkedUploader.ashx failure: HTTP 200 with ``success: false`` (§6.4)."""


def extension(title: str) -> str:
    """``.ext`` trimmed and lower-cased, like FileUtility.GetFileExtension (.NET's
    ``Path.GetExtension``): ``""`` without a dot or when the dot is the last character."""
    dot = title.rfind(".")
    return title[dot:].strip().lower() if 0 <= dot < len(title) - 1 else ""


def file_type(title: str) -> int:
    ext = extension(title)
    for kind, exts in FILE_TYPES.items():
        if ext in exts:
            return kind
    return 0


def size_string(size: int) -> str:
    """FilesSizeToString: ``"{size:#,0.##} {unit}"`` with 1024-based units."""
    units = ("bytes", "KB", "MB", "GB", "TB")
    value = float(size)
    unit = 0
    while value >= 1024 and unit < len(units) - 1:
        value /= 1024
        unit += 1
    text = f"{value:,.2f}".rstrip("0").rstrip(".")
    return f"{text} {units[unit]}"


def sanitize_title(title: str) -> str:
    """Global.ReplaceInvalidCharsAndTruncate: trim, replace bad characters, cut at 170."""
    title = INVALID_TITLE_CHARS.sub("_", title.strip())
    if len(title) > TITLE_MAX_STORED:
        ext = extension(title)
        if ext and len(ext) <= 20:
            title = title[: TITLE_MAX_STORED - len(ext)] + title[-len(ext) :]
        else:
            title = title[:TITLE_MAX_STORED]
    return title


def saved_title(title: str) -> str:
    """The title ``FileDao.SaveFileAsync``/``ReplaceFileVersionAsync`` store ("make lowerCase").

    ``FileUtility.ReplaceFileExtension(title, FileUtility.GetFileExtension(title))``: .NET's
    ``Path.GetFileNameWithoutExtension`` + ``"."`` + the extension trimmed and lower-cased, so
    ``Photo.JPG`` becomes ``Photo.jpg`` and a title without an extension gets a trailing dot
    (``Makefile`` → ``Makefile.``). Every save does this (uploads, ``edit_session``,
    ``saveediting``, new files); a rename does not.
    """
    dot = title.rfind(".")
    stem = title[:dot] if dot >= 0 else title  # Path.GetFileNameWithoutExtension
    return stem + "." + extension(title).lstrip(".")


#: FileDao.UpdateCommentAsync keeps ``comment[..Math.Min(comment.Length, 255)]``
COMMENT_MAX = 255


def cut_comment(comment: str) -> str:
    """FileDao.UpdateCommentAsync: the first 255 UTF-16 code units, silently.

    (A cut through a surrogate pair would leave half a character; we drop it, as a JSON
    answer cannot carry it here.)"""
    if utf16_length(comment) <= COMMENT_MAX:
        return comment
    units = comment.encode("utf-16-le", "surrogatepass")[: 2 * COMMENT_MAX]
    return units.decode("utf-16-le", "ignore")


def available_title(title: str, taken: set[str], is_folder: bool = False) -> str:
    """``name (1).ext``, ``name (2).ext`` … (folders get the suffix at the end)."""
    ext = "" if is_folder else extension(title)
    stem = title[: len(title) - len(ext)] if ext else title
    for n in itertools.count(1):
        candidate = f"{stem} ({n}){title[len(stem) :]}"
        if candidate.lower() not in taken:
            return candidate
    raise AssertionError("unreachable")


def format_date(stamp: float, offset_minutes: int) -> str:
    """ApiDateTime.ToRoundTripString: seven fraction digits and ``±hh:mm`` (or ``Z``)."""
    tz = UTC if offset_minutes == 0 else timezone(timedelta(minutes=offset_minutes))
    moment = datetime.fromtimestamp(stamp, tz)
    text = moment.strftime("%Y-%m-%dT%H:%M:%S") + f".{moment.microsecond:06d}0"
    if offset_minutes == 0:
        return text + "Z"
    sign = "+" if offset_minutes > 0 else "-"
    hours, minutes = divmod(abs(offset_minutes), 60)
    return f"{text}{sign}{hours:02d}:{minutes:02d}"


def utf16_length(text: str) -> int:
    """``string.Length`` in .NET: UTF-16 code units, not bytes and not code points."""
    return len(text.encode("utf-16-le", "surrogatepass")) // 2
