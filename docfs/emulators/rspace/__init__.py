"""A protocol-faithful emulator of the RSpace ELN REST API v1 (``/api/v1``).

It follows ``shared/reference/rspace.md`` (server ``rspace-web`` 2.26 development line, client
rspace-client 2.7.4): ``apiKey`` and OAuth bearer authentication with the real 401 bodies, the
folder tree with ``typesToInclude`` and 0-based pagination whose ``_links`` are absolute and built
from the configured server URL (tree links drop ``typesToInclude``; share-listing links point at
``/forms``), documents with form fields, HTML normalisation and ``<fileId=N>`` linking, Gallery
files routed to a section by the filename extension, new file versions, sharing, groups, the
``ApiError`` body with its odd internal codes (404 → 50301, permission denied → 401), the
``X-Rate-Limit-*`` headers and optional throttling (429 without ``Retry-After``).

Releases and settings (``docfs emulate rspace --server-version/--setting``, see
docs/protocols/rspace.md): 2.15 has no ``POST /documents/move`` (rspace-web added
``DocumentsApi.moveDocuments`` in October 2025, released in 2.16.0; before it the path falls to
``/documents/{id}``, which has no POST: 405); ``api.fileuploadRateLimit.enabled`` turns on the
upload quota of ``APIFileUploadThrottlingInterceptor`` (MB per hour and per day, 429 / 42902 with
``X-Upload-Limit-Limit``/``-Remaining``); ``api.throttling.enabled`` the request throttle.

State lives in memory and is guarded by one lock, so tests may use the backdoor (``add_user``,
``add_folder``, ``add_document``, ``add_file``, ``replace_file_data``, ``expire_tokens`` …) from
another thread while the server runs. Request log, planned faults and latency come from
``Emulator``. Where the reference leaves a behaviour open it names an "emulator default"; this
module implements exactly those defaults (e.g. 404 for double-slash paths, 413/41301 for
uploads over the limit, 500/50001 for a non-existent ``parentFolderId`` on ``POST /folders``).
"""

from __future__ import annotations

import csv
import io
import json
import math
import mimetypes
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from docfs.emulators.base import (
    Emulator,
    ServerProfile,
    ServerSetting,
    UnknownServerOption,
    version_key,
)

API = "/api/v1"
DEFAULT_API_KEY = "docfsDemoApiKey0123456789"
DEFAULT_USERNAME = "user1a"
DEFAULT_PASSWORD = "user1a-Passw0rd"
#: what ``GET /status`` reports by default (``rspaceVersion`` is the bare pom version)
DEFAULT_VERSION = "2.16.0"
#: the first release with ``POST /documents/move``
MOVE_SINCE = "2.16"
#: ``APIFileUploadThrottlingInterceptor.BYTES_PER_MB``
BYTES_PER_MB = 1048576
#: ``ThrottleInterval`` lengths of the upload quota's two definitions, in seconds
UPLOAD_PERIODS = (("hour", 3600.0), ("day", 86400.0))
#: what ``DocumentTagManagerImpl.apiSaveTagForDocument`` refuses in a tag, checked in this order
TAG_FORBIDDEN = ("<", ">", "\\", "/")
#: bodies above this size are streamed in chunks of this size (so resets can cut them)
CHUNK = 64 * 1024
MAX_UPLOAD = 50 * 1024 * 1024
DEFAULT_ORDER = "lastModified desc"
ORDERS = (
    "name asc",
    "name desc",
    "created asc",
    "created desc",
    "lastModified asc",
    "lastModified desc",
)
TREE_TYPES = ("folder", "notebook", "document", "snippet")
SECTIONS = (
    "Images",
    "Audios",
    "Videos",
    "Chemistry",
    "Documents",
    "Miscellaneous",
    "PdfDocuments",
    "Snippets",
)


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


#: extension → section, checked in this order (audio and video first), as MediaUtils does
SECTION_EXTENSIONS: tuple[tuple[str, frozenset[str]], ...] = (
    ("Audios", _words("mp3 wma aac ogg wav")),
    ("Videos", _words("mp4 avi flv mpg mpeg 3gp wmv mov hdmov m4v")),
    ("Images", _words("tif tiff jpeg jpg gif png bmp")),
    ("Documents", _words("pdf odt ods odp doc rtf txt docx ppt pptx xls xlsx csv pps md")),
    (
        "Chemistry",
        _words(
            "skc mrv cxsmiles cxsmarts cdx cdxml csrdf cml csmol cssdf csrxn mol mol2 pdb "
            "rxn rdf smiles smarts sdf inchi"
        ),
    ),
)
EXTENSION_UPGRADES = frozenset(
    {("doc", "docx"), ("csv", "xlsx"), ("xls", "xlsx"), ("pps", "pptx"), ("ppt", "pptx")}
)
IMAGE_CONTENT_TYPES = {
    "png": "image/x-png",
    "jpg": "image/jpeg",
    "jpeg": "image/jpeg",
    "gif": "image/gif",
    "tif": "application/octet-stream",
    "tiff": "application/octet-stream",
    "bmp": "application/octet-stream",
}
MEDIA_TYPE_SECTIONS = {
    "image": frozenset({"Images"}),
    "av": frozenset({"Audios", "Videos"}),
    "chemistry": frozenset({"Chemistry"}),
}
STATUS_NAMES = {
    400: "BAD_REQUEST",
    401: "UNAUTHORIZED",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    409: "CONFLICT",
    413: "PAYLOAD_TOO_LARGE",
    415: "UNSUPPORTED_MEDIA_TYPE",
    422: "UNPROCESSABLE_ENTITY",
    429: "TOO_MANY_REQUESTS",
    500: "INTERNAL_SERVER_ERROR",
}
_APIKEY_RE = re.compile(r"[A-Za-z_0-9]+")
_LINK_RE = re.compile(r"<(fileId|docId)=(\d+)>")
_LINKED_FILE_RE = re.compile(r'data-rsfileid="(\d+)"')
_P_SPLIT_RE = re.compile(r"(?i)<p(?:\s[^>]*)?>|</p>")
_SHARED_SYSTEM = ("Shared", "LabGroups", "CollaborationGroups", "IndividualShareItems")

# --------------------------------------------------------------------------------------------
# small pure helpers


def section_for_filename(filename: str) -> str:
    """The Gallery section a file goes to, from its extension only (no extension → Misc)."""
    ext = extension(filename)
    for section, exts in SECTION_EXTENSIONS:
        if ext in exts:
            return section
    return "Miscellaneous"


def extension(filename: str) -> str:
    base = filename.rsplit("/", 1)[-1]
    return base.rsplit(".", 1)[1].lower() if "." in base else ""


def iso(ts: float) -> str:
    """``yyyy-MM-dd'T'HH:mm:ss.SSS'Z'`` in UTC, as ISO8601DateTimeSerialiser writes it."""
    dt = datetime.fromtimestamp(ts, UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def _error_timestamp() -> str:
    # Instant.now().toString(): variable fractional precision
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def _content_type(filename: str) -> str:
    ext = extension(filename)
    if ext in IMAGE_CONTENT_TYPES:
        return IMAGE_CONTENT_TYPES[ext]
    guessed, _ = mimetypes.guess_type("x." + ext) if ext else (None, None)
    return guessed or "application/octet-stream"


def _image_matches(ext: str, data: bytes) -> bool:
    """The emulator's stand-in for the server's Tika sniffing of image uploads."""
    if ext == "png":
        return data.startswith(b"\x89PNG\r\n\x1a\n")
    if ext in ("jpg", "jpeg"):
        return data.startswith(b"\xff\xd8\xff")
    if ext == "gif":
        return data.startswith((b"GIF87a", b"GIF89a"))
    if ext == "bmp":
        return data.startswith(b"BM")
    if ext in ("tif", "tiff"):
        return data.startswith((b"II*\x00", b"MM\x00*"))
    return True


def normalise_html(html: str) -> str:
    """What the server's editor pipeline does to text-field HTML (idempotent).

    Paragraphs are trimmed, closed and put one per line; plain text becomes one paragraph.
    """
    text = html.strip()
    if not text:
        return ""
    if _P_SPLIT_RE.search(text) is None:
        return f"<p>{text}</p>" if not text.startswith("<") else text
    parts = [p.strip() for p in _P_SPLIT_RE.split(text)]
    return "\n".join(f"<p>{p}</p>" for p in parts if p)


def clean_name(name: str) -> str:
    """Trim and replace newlines, as ``RecordManager.renameRecord`` does."""
    return re.sub(r"[\r\n]+", " ", name).strip()


# --------------------------------------------------------------------------------------------
# state


@dataclass
class _User:
    id: int
    username: str
    email: str
    first_name: str
    last_name: str
    password: str
    api_key: str | None
    pi: bool = False
    enabled: bool = True
    api_enabled: bool = True
    home: int = 0
    folders: dict[str, int] = field(default_factory=dict)


@dataclass
class _Field:
    id: int
    name: str
    type: str
    content: str
    modified: float
    column: int


@dataclass
class _Form:
    id: int
    name: str
    fields: list[tuple[str, str]]
    version: int = 1


@dataclass
class _Record:
    """One row of the shared record sequence: folder, notebook, document, media or snippet."""

    id: int
    kind: str  # FOLDER NOTEBOOK DOCUMENT MEDIA SNIPPET
    name: str
    owner: int
    parent: int | None
    created: float
    modified: float
    gallery: bool = False
    system: bool = False
    shared_folder: bool = False
    role: str = ""  # HOME GALLERY SECTION API_INBOX SHARED GROUP …
    section: str | None = None
    children: list[int] = field(default_factory=list)
    deleted: bool = False
    # documents
    form: int = 0
    fields: list[_Field] = field(default_factory=list)
    tags: str | None = None
    version: int = 1
    signed: bool = False
    edit_locked: bool = False
    # media
    data: bytes = b""
    content_type: str = ""
    caption: str = ""
    blob_missing: bool = False
    file_locked: bool = False
    # snippets
    content: str = ""


@dataclass
class _Group:
    id: int
    name: str
    unique_name: str
    type: str
    members: list[tuple[int, str]]
    folder: int
    snippet_folder: int


@dataclass
class _Share:
    id: int
    item: int
    sharer: int
    target_type: str  # USER or GROUP
    target: int
    permission: str
    folder: int


@dataclass
class _Bucket:
    """A token bucket: ``capacity`` requests per ``period`` seconds."""

    capacity: float
    period: float
    tokens: float = -1.0
    stamp: float = 0.0

    def refill(self, now: float) -> None:
        if self.tokens < 0:
            self.tokens, self.stamp = self.capacity, now
            return
        rate = self.capacity / self.period
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * rate)
        self.stamp = now

    def wait_ms(self) -> int:
        if self.tokens >= 1:
            return 0
        return math.ceil((1 - self.tokens) * self.period / self.capacity * 1000)


@dataclass
class _Allowance:
    """One upload-quota definition of ``ApiFileUploadThrottlerImpl``: ``limit`` MB per
    ``period`` seconds, a token bucket that starts full and refills continuously."""

    limit: float
    period: float
    allowance: float = -1.0
    stamp: float = 0.0

    def refill(self, now: float) -> None:
        if self.allowance < 0 and self.stamp == 0.0:
            self.allowance, self.stamp = self.limit, now
            return
        self.allowance = min(
            self.limit, self.allowance + (now - self.stamp) * self.limit / self.period
        )
        self.stamp = now

    def allows(self, mb: float) -> bool:
        # ``isAllowed``: a full allowance lets one file larger than the limit through
        if abs(self.allowance - self.limit) < 0.01:
            return True
        return self.allowance - mb > 0


def _java_double(value: float) -> str:
    """A double as Java's ``"" + d`` writes it (``100.0``, ``99.5``)."""
    text = repr(float(value))
    return text if ("." in text or "e" in text or "n" in text) else text + ".0"


class ApiError(Exception):
    """An error answered with the server's ``ApiError`` body."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        internal: int | None = None,
        errors: Sequence[str] | None = None,
        message_code: str | None = None,
        data: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.internal = internal if internal is not None else status * 100 + 1
        self.errors = list(errors) if errors is not None else [message]
        self.message_code = message_code
        self.data = data
        self.headers = dict(headers or {})

    def body(self) -> dict[str, Any]:
        return {
            "status": STATUS_NAMES.get(self.status, str(self.status)),
            "httpCode": self.status,
            "internalCode": self.internal,
            "message": self.message,
            "messageCode": self.message_code,
            "errors": self.errors,
            "iso8601Timestamp": _error_timestamp(),
            "data": self.data,
        }


def _validation(*problems: tuple[str, Any, str], object_name: str = "request") -> ApiError:
    """400 / 40002 as a Spring ``BindException`` renders it."""
    return ApiError(
        400,
        f"Errors detected: {len(problems)}",
        internal=40002,
        errors=[f"{f}: {m}" for f, _, m in problems],
        data={
            "validationErrors": [
                {"field": f, "rejectedValue": v, "objectName": object_name, "message": m}
                for f, v, m in problems
            ]
        },
    )


def _not_found(kind: str, ident: object) -> ApiError:
    return ApiError(
        404,
        f"{kind} with id [{ident}] could not be retrieved - possibly it has been deleted, "
        "does not exist, or you do not have permission to access it.",
        internal=50301,
        errors=[""],
    )


def _unauthorised(message: str) -> ApiError:
    return ApiError(401, message, internal=40101, errors=["Authorisation error"])


def _illegal(message: str, *, message_code: str | None = None) -> ApiError:
    return ApiError(422, message, internal=42201, errors=[message], message_code=message_code)


@dataclass
class _Ctx:
    """One authenticated API request, as the handlers see it."""

    user: _User
    method: str
    args: tuple[str, ...]
    query: list[tuple[str, str]]
    headers: Mapping[str, str]
    body: bytes
    base: str

    def param(self, name: str) -> str | None:
        for k, v in self.query:
            if k == name:
                return v
        return None

    def params(self, name: str) -> list[str]:
        return [v for k, v in self.query if k == name]

    def json(self) -> Any:
        if not self.body.strip():
            raise ApiError(400, "Required request body is missing", internal=40009)
        try:
            return json.loads(self.body)
        except ValueError:
            raise ApiError(
                400, "JSON parse error: malformed request body", internal=40009
            ) from None

    def link(self, path: str, rel: str = "self") -> dict[str, str]:
        return {"link": f"{self.base}{path}", "rel": rel}


Handler = Callable[[_Ctx], Response]


def _tomcat_header(value: str) -> str:
    """A header value as Tomcat writes it: ISO-8859-1, with control characters and anything
    above U+00FF turned into spaces (``Http11OutputBuffer`` cannot send them). The download's
    ``Content-Disposition`` holds the file name unescaped: without this a name with a NUL or a
    character such as U+2215 crashed the emulator instead of being sent."""
    return "".join(
        " " if (ord(c) < 32 and c != "\t") or ord(c) == 127 or ord(c) > 255 else c for c in value
    )


def _json(data: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    # the server pretty-prints its JSON
    body = json.dumps(data, indent=2, ensure_ascii=False).encode("utf-8")
    return Response(body, status_code=status, media_type="application/json", headers=headers)


def _int_arg(value: str, name: str = "id") -> int:
    try:
        return int(value)
    except ValueError:
        raise ApiError(
            400,
            f"Failed to convert value of type 'java.lang.String' to required type 'java.lang.Long'"
            f'; For input string: "{value}"',
            internal=40006,
            errors=[f"{name} should be of type java.lang.Long"],
        ) from None


def parse_multipart(body: bytes, content_type: str) -> tuple[dict[str, str], dict[str, Any]]:
    """Form fields and file parts (``name → (filename, bytes)``) of a multipart body."""
    match = re.search(r'boundary="?([^";]+)"?', content_type)
    if not content_type.lower().startswith("multipart/form-data") or match is None:
        raise ApiError(
            415,
            f"Content type '{content_type}' not supported",
            internal=41501,
        )
    delimiter = b"--" + match.group(1).encode("latin-1")
    fields: dict[str, str] = {}
    files: dict[str, Any] = {}
    for chunk in body.split(delimiter)[1:]:
        if chunk.startswith(b"--"):
            break
        head, sep, data = chunk.partition(b"\r\n\r\n")
        if not sep:
            continue
        data = data[:-2] if data.endswith(b"\r\n") else data
        disposition = ""
        for line in head.decode("utf-8", "replace").split("\r\n"):
            if line.lower().startswith("content-disposition:"):
                disposition = line
        name = re.search(r'\bname="([^"]*)"', disposition)
        filename = re.search(r'\bfilename="([^"]*)"', disposition)
        if name is None:
            continue
        if filename is not None:
            files[name.group(1)] = (filename.group(1), data)
        else:
            fields[name.group(1)] = data.decode("utf-8", "replace")
    return fields, files


# --------------------------------------------------------------------------------------------
# the emulator


class RSpaceEmulator(Emulator):
    """RSpace ELN API v1 in memory. Keyword-only options:

    ``api_key``/``username``/``password``: the seeded user (the key is accepted for it);
    ``oauth_clients``: ``{client_id: secret}`` for ``POST /oauth/token`` (password grant);
    ``token_lifetime``: seconds an OAuth access token lives; ``throttling`` with
    ``rate_limit=(requests, seconds)``, ``hourly_limit``, ``daily_limit``, ``global_limit``;
    ``server_url``: the configured URL that ``_links`` are built from (default: the address the
    server listens on); ``max_upload``: bytes per multipart request; ``stale_file_cache``:
    reproduce the server's ``@Cacheable`` ``GET /files/{id}`` (10 entries, 3600 s);
    ``version``: what ``/status`` reports, and the release whose routes are served;
    ``upload_quota``: ``(MB per hour, MB per day)`` turns on the upload quota.
    """

    name = "rspace"
    versions = ("2.15", "2.16")
    server_settings = {
        "api.fileuploadRateLimit.enabled": ServerSetting(
            "false", "quota on uploaded MB per user (429 / 42902)", ("true", "false")
        ),
        "api.user.fileuploadRateLimit.hour": ServerSetting("100", "upload quota, MB per hour"),
        "api.user.fileuploadRateLimit.day": ServerSetting("1000", "upload quota, MB per day"),
        "api.throttling.enabled": ServerSetting(
            "false", "request throttle: 15 per 15 s, 1000/hour, 5000/day", ("true", "false")
        ),
    }

    @classmethod
    def options_for(cls, profile: ServerProfile) -> dict[str, Any]:
        options: dict[str, Any] = {
            "version": f"{profile.version}.0",
            "throttling": profile.flag("api.throttling.enabled"),
        }
        if profile.flag("api.fileuploadRateLimit.enabled"):
            try:
                options["upload_quota"] = (
                    float(profile.setting("api.user.fileuploadRateLimit.hour")),
                    float(profile.setting("api.user.fileuploadRateLimit.day")),
                )
            except ValueError:
                raise UnknownServerOption(
                    "rspace: api.user.fileuploadRateLimit.hour/.day are numbers of MB"
                ) from None
        return options

    def __init__(
        self,
        *,
        latency_ms: float = 0.0,
        seed: int | None = None,
        api_key: str | None = DEFAULT_API_KEY,
        username: str = DEFAULT_USERNAME,
        password: str = DEFAULT_PASSWORD,
        oauth_clients: Mapping[str, str] | None = None,
        token_lifetime: float = 3600.0,
        throttling: bool = False,
        rate_limit: tuple[int, float] = (15, 15.0),
        hourly_limit: int = 1000,
        daily_limit: int = 5000,
        global_limit: tuple[int, float] = (75, 15.0),
        server_url: str | None = None,
        max_upload: int = MAX_UPLOAD,
        stale_file_cache: bool = False,
        version: str = DEFAULT_VERSION,
        upload_quota: tuple[float, float] | None = None,
    ) -> None:
        super().__init__(latency_ms=latency_ms, seed=seed)
        self._state = threading.RLock()
        self.upload_quota = upload_quota
        self._upload_allowances: dict[str, list[_Allowance]] = {}
        self._route_table: list[tuple[re.Pattern[str], dict[str, Handler]]] | None = None
        self.server_url = server_url.rstrip("/") if server_url else None
        self.version = version
        self.max_upload = max_upload
        self.token_lifetime = token_lifetime
        self.api_enabled = True
        self.throttling = throttling
        self.rate_limit = rate_limit
        self.hourly_limit = hourly_limit
        self.daily_limit = daily_limit
        self.global_limit = global_limit
        self.stale_file_cache = stale_file_cache
        self._buckets: dict[str, list[_Bucket]] = {}
        self._global_bucket: _Bucket | None = None
        self._records: dict[int, _Record] = {}
        self._users: dict[int, _User] = {}
        self._forms: dict[int, _Form] = {}
        self._groups: dict[int, _Group] = {}
        self._shares: dict[int, _Share] = {}
        self._oauth_clients: dict[str, str] = dict(oauth_clients or {})
        self._access: dict[str, tuple[int, str, float]] = {}
        self._refresh: dict[str, tuple[int, str]] = {}
        self._file_cache: OrderedDict[int, tuple[dict[str, Any], float]] = OrderedDict()
        self._seq = {"record": 100, "user": 0, "form": 0, "field": 0, "group": 0, "share": 0}
        self._last_ts = 0.0
        self.basic_form = self.add_form("Basic Document", [("Data", "text")])
        self.default_user = self.add_user(username, api_key=api_key, password=password, pi=True)

    # ---- routing ---------------------------------------------------------------------------

    def routes(self) -> list[BaseRoute]:
        methods = ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"]
        return [Route("/{path:path}", self._dispatch, methods=methods)]

    def _table(self) -> list[tuple[re.Pattern[str], dict[str, Handler]]]:
        if self._route_table is None:
            self._route_table = self._build_table()
        return self._route_table

    def _build_table(self) -> list[tuple[re.Pattern[str], dict[str, Handler]]]:
        t: list[tuple[str, dict[str, Handler]]] = [
            (r"/status", {"GET": self._status}),
            (r"/status/touch", {"POST": self._status}),
            (r"/folders/tree", {"GET": self._tree}),
            (r"/folders/tree/([^/]+)", {"GET": self._tree}),
            (r"/folders", {"POST": self._create_folder}),
            (r"/folders/([^/]+)", {"GET": self._get_folder, "DELETE": self._delete_folder}),
            (r"/documents", {"GET": self._list_documents, "POST": self._create_document}),
            (r"/documents/move", {"POST": self._move}),
            (
                r"/documents/([^/]+)",
                {
                    "GET": self._get_document,
                    "PUT": self._update_document,
                    "DELETE": self._delete_document,
                },
            ),
            (r"/files", {"GET": self._list_files, "POST": self._upload}),
            (r"/files/([^/]+)", {"GET": self._get_file}),
            (r"/files/([^/]+)/file", {"GET": self._download, "POST": self._new_version}),
            (r"/snippets/([^/]+)", {"GET": self._get_snippet}),
            (r"/snippets/([^/]+)/content", {"GET": self._snippet_content}),
            (
                r"/share",
                {"GET": self._list_shares, "POST": self._share, "PUT": self._update_share},
            ),
            (r"/share/([^/]+)", {"DELETE": self._unshare}),
            (r"/share/document/([^/]+)", {"GET": self._document_shares}),
            (r"/groups", {"GET": self._list_groups}),
            (r"/groups/([^/]+)", {"GET": self._get_group}),
        ]
        if version_key(self.version) < version_key(MOVE_SINCE):
            # no moveDocuments before 2.16: POST /documents/move meets /documents/{id} (405)
            t = [(p, h) for p, h in t if p != r"/documents/move"]
        return [(re.compile(p), h) for p, h in t]

    async def _dispatch(self, request: Request) -> Response:
        path = request.url.path
        if path == "/oauth/token":
            if request.method != "POST":
                return PlainTextResponse("Method Not Allowed", status_code=405)
            return self._oauth(await request.body(), request.headers.get("content-type", ""))
        if not path.startswith(API + "/"):
            return PlainTextResponse("Not Found", status_code=404)
        sub = path[len(API) :]
        matches = [(m, h) for p, h in self._table() if (m := p.fullmatch(sub)) is not None]
        if not matches:
            # unknown routes (and double-slash paths) have no ApiError body
            return PlainTextResponse("Not Found", status_code=404)
        handler = None
        args: tuple[str, ...] = ()
        for m, handlers in matches:
            if request.method in handlers:
                handler, args = handlers[request.method], m.groups()
                break
        if handler is None:
            allowed = sorted({meth for _, hs in matches for meth in hs})
            error = ApiError(
                405,
                f"Request method '{request.method}' is not supported",
                internal=40501,
                errors=[f"Supported methods are {', '.join(allowed)}"],
            )
            return _json(error.body(), 405, {"Allow": ", ".join(allowed)})
        return await self._api_call(request, handler, args)

    async def _api_call(
        self, request: Request, handler: Handler, args: tuple[str, ...]
    ) -> Response:
        csv_wanted = "text/csv" in request.headers.get("accept", "")
        rate_headers: dict[str, str] = {}
        try:
            rate_headers = self._throttle(request.headers)
            too_large = ApiError(
                413, f"Maximum upload size of {self.max_upload} bytes exceeded", internal=41301
            )
            if int(request.headers.get("content-length") or 0) > self.max_upload:
                raise too_large
            body = await request.body()
            if len(body) > self.max_upload:  # chunked bodies carry no Content-Length
                raise too_large
            # registered for "/api/**/files" only, before authentication (WebConfig)
            if self.upload_quota is not None and request.url.path == API + "/files":
                rate_headers.update(self._upload_quota(request.method, request.headers, body))
            with self._state:
                user = self._authenticate(request.headers)
                ctx = _Ctx(
                    user=user,
                    method=request.method,
                    args=args,
                    query=parse_qsl(request.url.query, keep_blank_values=True),
                    headers=request.headers,
                    body=body,
                    base=self._base(request) + API,
                )
                try:
                    response = handler(ctx)
                except (KeyError, TypeError, ValueError, AttributeError) as exc:
                    # what the server's catch-all handler answers for unexpected failures
                    raise ApiError(
                        500, f"Unexpected error: {type(exc).__name__}", internal=50001
                    ) from exc
        except ApiError as exc:
            rate_headers.update(exc.headers)
            if csv_wanted and request.url.path.startswith(API + "/documents/"):
                return self._csv_error(exc, rate_headers)
            return _json(exc.body(), exc.status, rate_headers)
        for k, v in rate_headers.items():
            response.headers[k] = v
        return response

    def _base(self, request: Request) -> str:
        if self.server_url:
            return self.server_url
        # the configured URL is the listening address, never the client's Host header
        server = request.scope.get("server") or ("127.0.0.1", 80)
        return f"http://{server[0]}:{server[1]}"

    @staticmethod
    def _csv_error(exc: ApiError, headers: Mapping[str, str]) -> Response:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["status", "httpCode", "internalCode", "message", "errors"])
        body = exc.body()
        writer.writerow(
            [body["status"], exc.status, exc.internal, exc.message, ",".join(exc.errors)]
        )
        return Response(out.getvalue(), exc.status, headers=headers, media_type="text/csv")

    # ---- auth and throttling ---------------------------------------------------------------

    def _authenticate(self, headers: Mapping[str, str]) -> _User:
        key = headers.get("apikey", "")
        if key:
            if not _APIKEY_RE.fullmatch(key):
                raise _unauthorised("API key invalid - must match regexp:[A-Za-z_0-9]+")
            user = next((u for u in self._users.values() if u.api_key == key), None)
            if user is None:
                raise _unauthorised(f"User could not be authenticated for token {key[:4]}...")
            return self._check_enabled(user)
        auth = headers.get("authorization", "")
        if not auth:
            raise _unauthorised(
                "API authentication information is missing - please include your apiKey as a "
                "header in the format 'apiKey:myAPikey' or with OAuth in the format "
                "'Authorization: Bearer <myAccessToken>'."
            )
        parts = auth.split()
        if len(parts) != 2 or parts[0] != "Bearer":
            raise _unauthorised(
                'Authorization header for OAuth must be in the form "Bearer <myAccessToken>"'
            )
        grant = self._access.get(parts[1])
        if grant is None or grant[2] < time.time():
            raise _unauthorised("OAuth token is invalid or expired.")
        return self._check_enabled(self._users[grant[0]])

    def _check_enabled(self, user: _User) -> _User:
        if not user.enabled:
            raise _unauthorised(
                f"Api access denied as account for user '{user.username}', who is associated "
                "with provided authentication token, is locked or disabled"
            )
        if not self.api_enabled:
            raise _unauthorised("Access to API has been disabled by RSpace administrator.")
        if not user.api_enabled:
            raise _unauthorised(f"Access to API has been disabled for user '{user.username}'")
        return user

    def _throttle(self, headers: Mapping[str, str]) -> dict[str, str]:
        """Rate headers for every API response; raises 429 when over a limit (if enabled)."""
        if not self.throttling:
            dummy = {"Limit": "10", "Remaining": "10.0", "Wait": "100"}
            return {
                "X-Rate-Limit-Limit": dummy["Limit"],
                "X-Rate-Limit-Remaining": dummy["Remaining"],
                "X-Rate-Limit-WaitTimeTillNextRequestMillis-quarter_min": dummy["Wait"],
                "X-Rate-Limit-Limit-hour": dummy["Limit"],
                "X-Rate-Limit-Remaining-hour": dummy["Remaining"],
                "X-Rate-Limit-WaitTimeTillNextRequestMillis-hour": dummy["Wait"],
                "X-Rate-Limit-Limit-day": dummy["Limit"],
                "X-Rate-Limit-Remaining-day": dummy["Remaining"],
                "X-Rate-Limit-WaitTimeTillNextRequestMillis-day": dummy["Wait"],
                "X-Rate-Limit-MinWaitIntervalMillis": dummy["Wait"],
                "X-Rate-Limit-WaitTimeMillis": dummy["Wait"],
            }
        key = headers.get("apikey") or headers.get("authorization") or "anonymousApiUser"
        now = time.monotonic()
        with self._state:
            buckets = self._buckets.setdefault(
                key,
                [
                    _Bucket(self.rate_limit[0], self.rate_limit[1]),
                    _Bucket(self.hourly_limit, 3600.0),
                    _Bucket(self.daily_limit, 86400.0),
                ],
            )
            if self._global_bucket is None:
                self._global_bucket = _Bucket(*self.global_limit)
            every = [*buckets, self._global_bucket]
            for b in every:
                b.refill(now)
            allowed = all(b.tokens >= 1 for b in every)
            if allowed:
                for b in every:
                    b.tokens -= 1
            quarter, hour, day = buckets
            result = {
                "X-Rate-Limit-Limit": str(self.rate_limit[0]),
                "X-Rate-Limit-Remaining": repr(round(quarter.tokens, 3)),
                "X-Rate-Limit-WaitTimeTillNextRequestMillis-quarter_min": str(quarter.wait_ms()),
                "X-Rate-Limit-Limit-hour": str(self.hourly_limit),
                "X-Rate-Limit-Remaining-hour": repr(round(hour.tokens, 3)),
                "X-Rate-Limit-WaitTimeTillNextRequestMillis-hour": str(hour.wait_ms()),
                "X-Rate-Limit-Limit-day": str(self.daily_limit),
                "X-Rate-Limit-Remaining-day": repr(round(day.tokens, 3)),
                "X-Rate-Limit-WaitTimeTillNextRequestMillis-day": str(day.wait_ms()),
                "X-Rate-Limit-MinWaitIntervalMillis": "0",
                "X-Rate-Limit-WaitTimeMillis": str(max(b.wait_ms() for b in every)),
            }
            if not allowed:
                n, s = self.rate_limit
                message = (
                    f"Too many requests: please restrict requests to no more than {n} per "
                    f"{s:g} seconds on average"
                )
                # deliberately no Retry-After: the real interceptor does not set one
                raise ApiError(429, message, internal=42901, headers=result)
            return result

    def _upload_quota(self, method: str, headers: Mapping[str, str], body: bytes) -> dict[str, str]:
        """``APIFileUploadThrottlingInterceptor.preHandle``: count the multipart file parts in
        MB against the hourly and daily allowance of the raw ``apiKey`` (else the
        ``Authorization`` value, else ``anonymousApiUser``); the headers carry the hourly
        limit and what is left of it, on success and on the 429 alike."""
        content_type = headers.get("content-type", "")
        if method != "POST" or not content_type.lower().startswith("multipart/"):
            return {}  # not a MultipartHttpServletRequest: passes
        try:
            _, files = parse_multipart(body, content_type)
        except ApiError:
            return {}
        mb = sum(len(data) for _, data in files.values()) / BYTES_PER_MB
        key = headers.get("apikey") or headers.get("authorization") or "anonymousApiUser"
        assert self.upload_quota is not None
        now = time.monotonic()
        with self._state:
            allowances = self._upload_allowances.setdefault(
                key,
                [
                    _Allowance(limit, period)
                    for limit, (_, period) in zip(self.upload_quota, UPLOAD_PERIODS, strict=True)
                ],
            )
            refused: _Allowance | None = None
            for allowance in allowances:  # doProceed: in interval order, hour before day
                allowance.refill(now)
                if not allowance.allows(mb):
                    refused = allowance
                    break
                allowance.allowance -= mb
            hour = allowances[0]
            result = {
                "X-Upload-Limit-Limit": _java_double(hour.limit),
                "X-Upload-Limit-Remaining": _java_double(hour.allowance),
            }
        if refused is not None:
            message = (
                "File upload limit exceeded: please restrict upload to no more than "
                f"{int(refused.limit)} Mb per {refused.period:.0f}  seconds on average"
            )
            raise ApiError(429, message, internal=42902, errors=[""], headers=result)
        return result

    def _oauth(self, body: bytes, content_type: str) -> Response:
        if content_type.lower().startswith("multipart/"):
            form, _ = parse_multipart(body, content_type)
        else:
            form = dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
        with self._state:
            client = form.get("client_id", "")
            if not client or self._oauth_clients.get(client) != form.get("client_secret"):
                return _json({"error": "invalid_client", "error_description": "Bad client"}, 401)
            grant = form.get("grant_type")
            user: _User | None = None
            if grant == "password":
                user = next(
                    (
                        u
                        for u in self._users.values()
                        if u.username == form.get("username")
                        and u.password == form.get("password")
                        and u.enabled
                    ),
                    None,
                )
            elif grant == "refresh_token":
                held = self._refresh.get(form.get("refresh_token", ""))
                if held is not None and held[1] == client:
                    user = self._users[held[0]]
            else:
                return _json({"error": "unsupported_grant_type"}, 400)
            if user is None:
                return _json(
                    {"error": "invalid_grant", "error_description": "Bad credentials"}, 400
                )
            # only one token pair is valid per user and client: a new grant revokes the old
            for store in (self._access, self._refresh):
                for tok in [t for t, v in store.items() if v[0] == user.id and v[1] == client]:
                    del store[tok]
            access, refresh = self._token(), self._token()
            self._access[access] = (user.id, client, time.time() + self.token_lifetime)
            self._refresh[refresh] = (user.id, client)
            return _json(
                {
                    "scope": "all",
                    "access_token": access,
                    "refresh_token": refresh,
                    "expires_in": int(self.token_lifetime),
                }
            )

    def _token(self) -> str:
        alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
        return "".join(self._random.choice(alphabet) for _ in range(32))

    # ---- generic record helpers ------------------------------------------------------------

    def _next(self, kind: str) -> int:
        self._seq[kind] += 1
        return self._seq[kind]

    def _now(self) -> float:
        # strictly increasing, so "lastModified desc" orders reliably
        now = max(time.time(), self._last_ts + 0.001)
        self._last_ts = now
        return now

    def _new_record(
        self, kind: str, name: str, owner: int, parent: int | None, **kw: Any
    ) -> _Record:
        now = self._now()
        parent_rec = self._records.get(parent) if parent is not None else None
        rec = _Record(
            id=self._next("record"),
            kind=kind,
            name=name,
            owner=owner,
            parent=parent,
            created=now,
            modified=now,
            **kw,
        )
        if parent_rec is not None:
            rec.gallery = rec.gallery or parent_rec.gallery
            if rec.section is None and parent_rec.role != "GALLERY":
                rec.section = parent_rec.section
            parent_rec.children.append(rec.id)
        self._records[rec.id] = rec
        return rec

    def _rec(self, ident: int) -> _Record | None:
        return self._records.get(ident)

    def _ancestors(self, rec: _Record) -> Iterator[_Record]:
        seen = {rec.id}
        current = rec
        while current.parent is not None and current.parent not in seen:
            parent = self._records.get(current.parent)
            if parent is None:
                return
            seen.add(parent.id)
            yield parent
            current = parent

    def _is_deleted(self, rec: _Record) -> bool:
        return rec.deleted or any(a.deleted for a in self._ancestors(rec))

    def _group_folder_of(self, rec: _Record) -> _Group | None:
        for r in (rec, *self._ancestors(rec)):
            if r.role == "GROUP":
                return next((g for g in self._groups.values() if g.folder == r.id), None)
        return None

    def _member(self, group: _Group, user: _User) -> bool:
        return any(uid == user.id for uid, _ in group.members)

    def _shares_for(self, rec: _Record) -> list[_Share]:
        return [s for s in self._shares.values() if s.item == rec.id]

    def _shared_with(self, rec: _Record, user: _User) -> _Share | None:
        for share in self._shares_for(rec):
            if share.target_type == "USER" and share.target == user.id:
                return share
            group = self._groups.get(share.target) if share.target_type == "GROUP" else None
            if group is not None and self._member(group, user):
                return share
        return None

    def _can_read(self, user: _User, rec: _Record) -> bool:
        if rec.owner == user.id:
            return True
        group = self._group_folder_of(rec)
        if group is not None and self._member(group, user):
            return True
        containers = [rec, *self._ancestors(rec)]
        return any(self._shared_with(r, user) is not None for r in containers)

    def _can_edit(self, user: _User, rec: _Record) -> bool:
        if rec.owner == user.id:
            return True
        containers = [rec, *self._ancestors(rec)]
        return any(
            (s := self._shared_with(r, user)) is not None and s.permission == "EDIT"
            for r in containers
        )

    def _global_id(self, rec: _Record) -> str:
        if rec.kind == "FOLDER":
            return ("GF" if rec.gallery else "FL") + str(rec.id)
        prefix = {"NOTEBOOK": "NB", "DOCUMENT": "SD", "MEDIA": "GL", "SNIPPET": "ST"}
        return prefix[rec.kind] + str(rec.id)

    def _visible_folder(self, ctx: _Ctx, ident: int) -> _Record:
        """A folder or notebook the caller may read: 404 if missing, 401 if forbidden."""
        rec = self._rec(ident)
        if rec is None or rec.kind not in ("FOLDER", "NOTEBOOK"):
            raise _not_found("Folder", ident)
        if self._is_deleted(rec):
            raise _unauthorised(
                f"Unauthorized attempt by {ctx.user.username} to open a deleted folder"
            )
        if not self._can_read(ctx.user, rec):
            raise _unauthorised(
                f"Unauthorized attempt by {ctx.user.username} to open an unauthorised folder"
            )
        return rec

    def _visible(self, ctx: _Ctx, ident: int, kinds: tuple[str, ...], label: str) -> _Record:
        """A document or media record the caller may read; anything else is 404."""
        rec = self._rec(ident)
        if (
            rec is None
            or rec.kind not in kinds
            or self._is_deleted(rec)
            or not self._can_read(ctx.user, rec)
        ):
            raise _not_found(label, ident)
        return rec

    # ---- JSON models -----------------------------------------------------------------------

    def _user_json(self, user: _User) -> dict[str, Any]:
        return {
            "id": user.id,
            "username": user.username,
            "email": user.email,
            "firstName": user.first_name,
            "lastName": user.last_name,
            "homeFolderId": user.home,
            "workbenchId": None,
            "hasPiRole": user.pi,
            "hasSysAdminRole": False,
            "_links": [],
        }

    def _folder_json(self, ctx: _Ctx, rec: _Record, with_path: bool = False) -> dict[str, Any]:
        path = None
        if with_path:
            home = ctx.user.home
            path = [
                self._folder_json(ctx, a)
                for a in self._ancestors(rec)
                if a.id != home and a.kind in ("FOLDER", "NOTEBOOK")
            ]
        return {
            "id": rec.id,
            "globalId": self._global_id(rec),
            "name": rec.name,
            "created": iso(rec.created),
            "lastModified": iso(rec.modified),
            "parentFolderId": rec.parent if rec.owner == ctx.user.id else None,
            "notebook": rec.kind == "NOTEBOOK",
            "systemFolder": rec.system,
            "sharedFolder": rec.shared_folder,
            "mediaType": rec.section if rec.gallery and rec.role != "GALLERY" else None,
            "pathToRootFolder": path,
            "_links": [ctx.link(f"/folders/{rec.id}")],
        }

    def _tree_item(self, ctx: _Ctx, rec: _Record, listed: int) -> dict[str, Any]:
        item: dict[str, Any] = {
            "id": rec.id,
            "globalId": self._global_id(rec),
            "name": rec.name,
            "created": iso(rec.created),
            "lastModified": iso(rec.modified),
            "parentFolderId": listed,
            "type": rec.kind,
        }
        if rec.kind == "FOLDER":
            item["systemFolder"] = rec.system
            item["sharedFolder"] = rec.shared_folder
        path = {
            "FOLDER": "/folders/",
            "NOTEBOOK": "/folders/",
            "DOCUMENT": "/documents/",
            "MEDIA": "/files/",
            "SNIPPET": "/snippets/",
        }[rec.kind]
        item["_links"] = [ctx.link(f"{path}{rec.id}")]
        item["owner"] = self._user_json(self._users[rec.owner])
        return item

    def _form_json(self, ctx: _Ctx, form: _Form) -> dict[str, Any]:
        return {
            "id": form.id,
            "globalId": f"FM{form.id}",
            "stableId": f"{form.id}{form.name.replace(' ', '')[:8]}",
            "version": form.version,
            "name": form.name,
            "tags": None,
            "formState": "PUBLISHED",
            "accessControl": {"ownerType": "WRITE", "groupType": "READ", "worldType": "READ"},
            "iconId": -1,
            "_links": [ctx.link(f"/forms/{form.id}")],
        }

    def _file_json(self, ctx: _Ctx, rec: _Record) -> dict[str, Any]:
        return {
            "id": rec.id,
            "globalId": self._global_id(rec),
            "name": rec.name,
            "caption": rec.caption,
            "contentType": rec.content_type,
            "created": iso(rec.created),
            "size": len(rec.data),
            "version": rec.version,
            "parentFolderId": rec.parent,
            "_links": [
                ctx.link(f"/files/{rec.id}"),
                ctx.link(f"/files/{rec.id}/file", "enclosure"),
            ],
        }

    def _field_json(self, ctx: _Ctx, fld: _Field) -> dict[str, Any]:
        files = []
        for fid in dict.fromkeys(int(x) for x in _LINKED_FILE_RE.findall(fld.content)):
            media = self._rec(fid)
            if media is not None and media.kind == "MEDIA" and not self._is_deleted(media):
                files.append(self._file_json(ctx, media))
        return {
            "id": fld.id,
            "globalId": f"FD{fld.id}",
            "name": fld.name,
            "type": fld.type,
            "content": fld.content,
            "lastModified": iso(fld.modified),
            "columnIndex": fld.column,
            "files": files,
            "listOfMaterials": [],
            "_links": [],
        }

    def _doc_json(self, ctx: _Ctx, rec: _Record, full: bool) -> dict[str, Any]:
        own = rec.owner == ctx.user.id
        parent = self._rec(rec.parent) if rec.parent is not None else None
        data: dict[str, Any] = {
            "id": rec.id,
            "globalId": self._global_id(rec),
            "version": rec.version,
            "name": rec.name,
            "created": iso(rec.created),
            "lastModified": iso(rec.modified),
            "parentFolderId": rec.parent if own else None,
            "grandParentId": parent.parent if own and parent is not None else None,
            "signed": rec.signed,
            "tags": rec.tags,
            "tagMetaData": rec.tags,
            "form": self._form_json(ctx, self._forms[rec.form]),
            "owner": self._user_json(self._users[rec.owner]),
        }
        if full:
            data["fields"] = [self._field_json(ctx, f) for f in rec.fields]
        data["_links"] = [ctx.link(f"/documents/{rec.id}")]
        return data

    def _share_json(self, ctx: _Ctx, share: _Share) -> dict[str, Any]:
        item = self._records[share.item]
        return {
            "id": share.id,
            "sharedItemId": share.item,
            "shareItemName": item.name,
            "sharedTargetId": share.target,
            "sharedTargetType": share.target_type,
            "permission": share.permission,
            "_links": [ctx.link(f"/share/{share.id}")],
        }

    def _group_json(self, group: _Group) -> dict[str, Any]:
        rank = {"PI": 0, "LAB_ADMIN": 1}
        members = sorted(
            group.members, key=lambda m: (rank.get(m[1], 2), self._users[m[0]].username)
        )
        return {
            "id": group.id,
            "globalId": f"GP{group.id}",
            "name": group.name,
            "uniqueName": group.unique_name,
            "type": group.type,
            "sharedFolderId": group.folder,
            "sharedSnippetFolderId": group.snippet_folder,
            "raid": None,
            "members": [
                {"id": uid, "username": self._users[uid].username, "role": role}
                for uid, role in members
            ],
            "_links": [],
        }

    # ---- pagination ------------------------------------------------------------------------

    def _paging(self, ctx: _Ctx, orders: Sequence[str] = ORDERS) -> tuple[int, int, str]:
        problems: list[tuple[str, Any, str]] = []
        number = size = 0
        raw_number, raw_size = ctx.param("pageNumber"), ctx.param("pageSize")
        try:
            number = int(raw_number) if raw_number not in (None, "") else 0
            if number < 0:
                problems.append(("pageNumber", number, "Page number must be 0 or greater."))
        except ValueError:
            problems.append(("pageNumber", raw_number, "Failed to convert pageNumber"))
        try:
            size = int(raw_size) if raw_size not in (None, "") else 20
            if not 1 <= size <= 100:
                problems.append(("pageSize", size, "Page size must be between 1 and 100."))
        except ValueError:
            problems.append(("pageSize", raw_size, "Failed to convert pageSize"))
        order = ctx.param("orderBy") or DEFAULT_ORDER
        if order not in orders:
            problems.append(
                ("orderBy", order, f"Invalid order by clause {order} - should be one of {orders}")
            )
        if problems:
            raise _validation(*problems, object_name="apiPaginationCriteria")
        return number, size, order

    @staticmethod
    def _sort(items: list[_Record], order: str) -> list[_Record]:
        key_name, _, direction = order.partition(" ")
        keys: dict[str, Callable[[_Record], Any]] = {
            "name": lambda r: (r.name.casefold(), r.id),
            "created": lambda r: (r.created, r.id),
            "lastModified": lambda r: (r.modified, r.id),
            "sharee": lambda r: (r.name.casefold(), r.id),
        }
        return sorted(items, key=keys[key_name], reverse=direction == "desc")

    @staticmethod
    def _page_links(
        ctx: _Ctx,
        path: str,
        page: int,
        size: int,
        order: str,
        total: int,
        extra: Sequence[tuple[str, str]] = (),
    ) -> list[dict[str, str]]:
        def url(n: int) -> str:
            query: list[tuple[str, str]] = []
            if size != 20:
                query.append(("pageSize", str(size)))
            query.append(("pageNumber", str(n)))
            if order != DEFAULT_ORDER:
                query.append(("orderBy", order))
            query.extend(extra)
            return f"{ctx.base}{path}?{urlencode(query, quote_via=quote)}"

        links = []
        if page > 0:
            links.append({"link": url(page - 1), "rel": "prev"})
        if page - 1 > 0:
            links.append({"link": url(0), "rel": "first"})
        if total > (page + 1) * size:
            links.append({"link": url(page + 1), "rel": "next"})
        if total > (page + 2) * size:
            links.append({"link": url((total - 1) // size), "rel": "last"})
        links.append({"link": url(page), "rel": "self"})
        return links

    # ---- status ----------------------------------------------------------------------------

    def _status(self, ctx: _Ctx) -> Response:
        return _json({"message": "OK", "rspaceVersion": self.version})

    # ---- folders ---------------------------------------------------------------------------

    def _tree(self, ctx: _Ctx) -> Response:
        page, size, order = self._paging(ctx)
        types: list[str] = []
        for raw in ctx.params("typesToInclude"):
            types.extend(t.strip() for t in raw.split(",") if t.strip())
        bad = [t for t in types if t not in TREE_TYPES]
        if bad:
            raise _illegal(f"typesToInclude terms must be one of: {', '.join(TREE_TYPES)}")
        if ctx.args:
            folder = self._visible_folder(ctx, _int_arg(ctx.args[0]))
            path = f"/folders/tree/{folder.id}"
        else:
            folder, path = self._records[ctx.user.home], "/folders/tree"
        wanted = {"FOLDER": "folder", "NOTEBOOK": "notebook", "DOCUMENT": "document"}
        wanted |= {"MEDIA": "document", "SNIPPET": "snippet"}
        children = []
        for cid in folder.children:
            rec = self._records[cid]
            if self._is_deleted(rec) or not self._can_read(ctx.user, rec):
                continue
            # the Gallery root stays visible whatever the filter
            if types and wanted[rec.kind] not in types and rec.role != "GALLERY":
                continue
            children.append(rec)
        children = self._sort(children, order)
        chunk = children[page * size : (page + 1) * size]
        return _json(
            {
                "folderId": folder.id,
                "totalHits": len(children),
                "pageNumber": page,
                "records": [self._tree_item(ctx, r, folder.id) for r in chunk],
                # typesToInclude is not carried into the links (server behaviour)
                "_links": self._page_links(ctx, path, page, size, order, len(children)),
            }
        )

    def _get_folder(self, ctx: _Ctx) -> Response:
        rec = self._visible_folder(ctx, _int_arg(ctx.args[0]))
        with_path = (ctx.param("includePathToRootFolder") or "").lower() == "true"
        return _json(self._folder_json(ctx, rec, with_path))

    def _create_folder(self, ctx: _Ctx) -> Response:
        body = ctx.json()
        if not isinstance(body, dict):
            raise ApiError(400, "JSON parse error: expected an object", internal=40009)
        raw_name = body.get("name") or ""
        notebook = bool(body.get("notebook"))
        parent_id = body.get("parentFolderId")
        if len(raw_name) > 255:
            raise _validation(("name", raw_name, "Name cannot be longer than 255 characters"))
        if parent_id is not None and (not isinstance(parent_id, int) or parent_id < 1):
            raise _validation(("parentFolderId", parent_id, "must be greater than or equal to 1"))
        name = clean_name(raw_name) or ("Untitled Notebook" if notebook else "Untitled Folder")
        if parent_id is None:
            parent = self._records[ctx.user.home]
        else:
            found = self._rec(parent_id)
            if found is None:
                raise ApiError(500, f"Folder {parent_id} could not be loaded", internal=50001)
            parent = found
        self._check_folder_parent(ctx, parent, notebook)
        rec = self._new_record(
            "NOTEBOOK" if notebook else "FOLDER",
            name,
            ctx.user.id,
            parent.id,
            shared_folder=self._group_folder_of(parent) is not None,
        )
        return _json(self._folder_json(ctx, rec), 201)

    def _check_folder_parent(self, ctx: _Ctx, parent: _Record, notebook: bool) -> None:
        if parent.kind == "NOTEBOOK":
            raise _validation(
                (
                    "parentFolderId",
                    parent.id,
                    "Notebooks and folders cannot be created inside notebooks.",
                )
            )
        if parent.kind != "FOLDER":
            raise ApiError(500, f"Folder {parent.id} could not be loaded", internal=50001)
        if self._is_deleted(parent) or not self._can_read(ctx.user, parent):
            raise _unauthorised(
                f"Unauthorized attempt by {ctx.user.username} to create a folder in [{parent.id}]"
            )
        if parent.gallery and notebook:
            raise _validation(
                ("parentFolderId", parent.id, "Notebooks cannot be created in the Gallery.")
            )
        if parent.role == "GALLERY":
            raise _validation(
                (
                    "parentFolderId",
                    parent.id,
                    "You cannot create a top-level folder in the Gallery; create folder in one "
                    "of the sub-galleries (Images, Documents etc.)",
                )
            )
        if parent.role in ("SHARED", "LABGROUPS", "COLLABGROUPS", "INDIVIDUAL"):
            raise _illegal(f"Cannot create a folder in the system folder '{parent.name}'")
        if parent.owner != ctx.user.id and self._group_folder_of(parent) is None:
            raise _unauthorised(
                f"Unauthorized attempt by {ctx.user.username} to create a folder in [{parent.id}]"
            )

    def _delete_folder(self, ctx: _Ctx) -> Response:
        ident = _int_arg(ctx.args[0])
        rec = self._rec(ident)
        if rec is None or rec.kind not in ("FOLDER", "NOTEBOOK"):
            raise _not_found("Folder", ident)
        if rec.system or rec.role == "HOME":
            raise _illegal("Cannot delete user home folder or a system folder")
        if self._is_deleted(rec) or rec.owner != ctx.user.id:
            raise _unauthorised(
                f"Unauthorized attempt by {ctx.user.username} to delete folder [{ident}]"
            )
        self._soft_delete(rec)
        return Response(status_code=204)

    def _soft_delete(self, rec: _Record) -> None:
        rec.deleted = True
        rec.modified = self._now()
        stack = [rec]
        while stack:
            current = stack.pop()
            for share in self._shares_for(current):
                self._remove_share(share)
            stack.extend(
                self._records[c] for c in current.children if self._records[c].parent == current.id
            )

    def _move(self, ctx: _Ctx) -> Response:
        body = ctx.json()
        if not isinstance(body, dict):
            raise ApiError(400, "JSON parse error: expected an object", internal=40009)
        problems = [
            (k, body.get(k), "must not be null")
            for k in ("docId", "sourceFolderId", "targetFolderId")
            if not isinstance(body.get(k), int)
        ]
        if problems:
            raise _validation(*problems, object_name="moveRequest")
        item = self._rec(body["docId"])
        source = self._rec(body["sourceFolderId"])
        target = self._rec(body["targetFolderId"])
        if item is None or source is None or target is None:
            raise _illegal("Move failed: item, source or target folder does not exist")
        if self._is_deleted(item) or item.owner != ctx.user.id:
            raise _unauthorised(f"Unauthorized attempt by {ctx.user.username} to move [{item.id}]")
        if item.id not in source.children and item.parent is not None:
            # WorkspaceServiceImpl.getMoveSourceFolder: a wrong source id is replaced by the
            # item's own parent, not refused
            actual = self._rec(item.parent)
            source = actual if actual is not None else source
        self._check_move(ctx, item, source, target)
        source.children.remove(item.id)
        target.children.append(item.id)
        item.parent = target.id
        item.modified = self._now()
        return Response(status_code=204)

    def _check_move(self, ctx: _Ctx, item: _Record, source: _Record, target: _Record) -> None:
        if item.kind == "MEDIA" or item.gallery:
            raise _illegal("Move failed: Gallery items cannot be moved with this method")
        # WorkspaceServiceImpl.validateMove: IllegalArgumentException → 422
        if source.id == target.id:
            raise _illegal(f"Source and target folder are the same. Id: {source.id}")
        if target.id == item.id:
            raise _illegal(f"Attempt to move record with ID: {item.id} to itself")
        if item.id in target.children:
            raise _illegal(f"Record with ID: {item.id} already in target folder")
        if (
            target.kind not in ("FOLDER", "NOTEBOOK")
            or target.gallery
            or target.role
            in (
                "SHARED",
                "LABGROUPS",
                "COLLABGROUPS",
                "INDIVIDUAL",
            )
        ):
            raise _illegal(f"Move failed: [{target.id}] is not a valid target folder")
        if self._is_deleted(target) or not (
            target.owner == ctx.user.id or self._group_folder_of(target) is not None
        ):
            raise _unauthorised(
                f"Unauthorized attempt by {ctx.user.username} to add an item to a folder"
            )
        # the model's move (BaseRecord.doMove / Folder.addChild) refuses these; the controller
        # turns the failed result into RuntimeException("document.move.errors.failed") → 500
        if any(a.id == item.id for a in self._ancestors(target)) or (
            target.kind == "NOTEBOOK" and item.kind != "DOCUMENT"
        ):
            raise ApiError(500, "Error performing move. ", internal=50001, errors=[""])

    # ---- documents -------------------------------------------------------------------------

    def _readable_documents(self, user: _User) -> list[_Record]:
        return [
            r
            for r in self._records.values()
            if r.kind == "DOCUMENT" and not self._is_deleted(r) and self._can_read(user, r)
        ]

    def _list_documents(self, ctx: _Ctx) -> Response:
        page, size, order = self._paging(ctx)
        query, advanced = ctx.param("query"), ctx.param("advancedQuery")
        filt = ctx.param("filter")
        if query is not None and len(query) > 2000:
            raise _validation(("query", query[:20], "Max query length is 2000."))
        if query and advanced:
            raise _illegal("Please specify either a 'query' or an 'advancedQuery', not both")
        docs = self._readable_documents(ctx.user)
        if filt == "sharedWithMe":
            docs = [d for d in docs if d.owner != ctx.user.id]
        elif filt == "favorites":
            docs = []
        elif filt:
            raise _validation(("filter", filt, "must be one of favorites, sharedWithMe"))
        if query:
            self._check_term(query)
            docs = [d for d in docs if self._matches(d, "global", query)]
        elif advanced:
            docs = self._advanced(docs, advanced)
        docs = self._sort(docs, order)
        extra = [
            (k, v)
            for k, v in (("query", query), ("advancedQuery", advanced), ("filter", filt))
            if v
        ]
        return _json(
            {
                "totalHits": len(docs),
                "pageNumber": page,
                "documents": [
                    self._doc_json(ctx, d, False) for d in docs[page * size : (page + 1) * size]
                ],
                "_links": self._page_links(ctx, "/documents", page, size, order, len(docs), extra),
            }
        )

    @staticmethod
    def _check_term(term: str) -> None:
        if len(term.strip()) < 2:
            raise _illegal("Search term must be at least 2 characters")

    def _matches(self, doc: _Record, kind: str, term: str) -> bool:
        needle = term.casefold().strip("*")
        text = {
            "name": doc.name,
            "tag": doc.tags or "",
            "fullText": " ".join(re.sub("<[^>]+>", " ", f.content) for f in doc.fields),
            "form": self._forms[doc.form].name,
            "owner": self._users[doc.owner].username,
        }
        if kind == "global":
            return any(needle in v.casefold() for v in text.values()) or needle == (
                self._global_id(doc).casefold()
            )
        if kind in text:
            return needle in text[kind].casefold()
        if kind in ("created", "lastModified"):
            low, _, high = term.partition(";")
            ts = doc.created if kind == "created" else doc.modified
            return self._in_range(ts, low, high)
        if kind == "records":
            ids = {int(x) for x in re.findall(r"\d+", term)}
            return any(r.id in ids for r in (doc, *self._ancestors(doc)))
        return needle in " ".join(text.values()).casefold()

    @staticmethod
    def _in_range(ts: float, low: str, high: str) -> bool:
        def parse(value: str, end: bool) -> float | None:
            if not value:
                return None
            try:
                dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError:
                raise _illegal(f"Cannot parse the search term {value}") from None
            if dt.tzinfo is None:
                dt = dt.replace(tzinfo=UTC)
            stamp = dt.timestamp()
            return stamp + 86400 if end and len(value) == 10 else stamp

        lo, hi = parse(low, False), parse(high, True)
        return (lo is None or ts >= lo) and (hi is None or ts < hi)

    def _advanced(self, docs: list[_Record], raw: str) -> list[_Record]:
        try:
            query = json.loads(raw)
            terms = [(t["queryType"], str(t["query"])) for t in query["terms"]]
            operator = str(query.get("operator", "and")).lower()
        except (ValueError, KeyError, TypeError):
            raise _illegal(f"Cannot parse the search term {raw[:50]}") from None
        if not terms:
            raise _illegal("No search term provided")
        if any(kind == "records" for kind, _ in terms) and len(terms) < 2:
            raise _illegal("Filtering by folder/document IDs must also include a search term")
        for kind, term in terms:
            if kind not in ("records", "created", "lastModified"):
                self._check_term(term)
        combine = all if operator == "and" else any
        return [d for d in docs if combine(self._matches(d, k, t) for k, t in terms)]

    def _get_document(self, ctx: _Ctx) -> Response:
        ident = _int_arg(ctx.args[0])
        doc = self._visible(ctx, ident, ("DOCUMENT",), "Document")
        if "text/csv" in ctx.headers.get("accept", ""):
            out = io.StringIO()
            writer = csv.writer(out, lineterminator="\n")
            writer.writerow(["id", "globalId", "name", "type", "lastModified", "content"])
            for f in doc.fields:
                writer.writerow([f.id, f"FD{f.id}", f.name, f.type, iso(f.modified), f.content])
            return Response(out.getvalue(), media_type="text/csv")
        return _json(self._doc_json(ctx, doc, True))

    def _resolve_form(self, spec: Any) -> _Form:
        if spec is None:
            return self._forms[self.basic_form]
        if not isinstance(spec, dict):
            raise _illegal("form must be an object with an id or a globalId")
        ident, gid = spec.get("id"), spec.get("globalId")
        from_gid = None
        if gid is not None:
            match = re.fullmatch(r"(?:FM|IT)(\d+)", str(gid))
            if match is None:
                raise _illegal(f"Invalid syntax of oid [{gid}]")
            from_gid = int(match.group(1))
        if ident is not None and from_gid is not None and ident != from_gid:
            raise _illegal(f"Form id {ident} and globalId {gid} do not match")
        chosen = ident if ident is not None else from_gid
        if chosen is None:
            return self._forms[self.basic_form]
        if chosen not in self._forms:
            raise _illegal(f"Form with id [{chosen}] does not exist")
        return self._forms[chosen]

    def _document_target(self, ctx: _Ctx, parent_id: Any) -> _Record:
        if parent_id is None:
            return self._api_inbox(ctx.user)
        if not isinstance(parent_id, int) or parent_id < 1:
            raise _validation(("parentFolderId", parent_id, "must be greater than or equal to 1"))
        target = self._rec(parent_id)
        if (
            target is None
            or target.kind not in ("FOLDER", "NOTEBOOK")
            or self._is_deleted(target)
            or not self._can_read(ctx.user, target)
        ):
            raise _unauthorised(
                f"Unauthorized attempt by {ctx.user.username} to add an item to a folder"
            )
        roles = {a.role for a in (target, *self._ancestors(target))}
        if target.gallery or roles & {"TEMPLATES", "SHARED", "GROUP"}:
            raise _illegal(
                f"Workspace Target folder (id={target.id}) must be in the workspace, not in the "
                "Gallery, Templates or Shared folders"
            )
        return target

    def _api_inbox(self, user: _User) -> _Record:
        home = self._records[user.home]
        for cid in home.children:
            rec = self._records[cid]
            if rec.role == "API_INBOX" and not rec.deleted:
                return rec
        return self._new_record(
            "FOLDER", "Api Inbox", user.id, home.id, system=True, role="API_INBOX"
        )

    def _create_document(self, ctx: _Ctx) -> Response:
        body = ctx.json()
        if not isinstance(body, dict):
            raise ApiError(400, "JSON parse error: expected an object", internal=40009)
        raw_name = body.get("name") or ""
        if len(raw_name) > 255:
            raise _validation(("name", raw_name, "Name cannot be longer than 255 characters"))
        tags = self._check_tags(body.get("tags"))
        form = self._resolve_form(body.get("form"))
        target = self._document_target(ctx, body.get("parentFolderId"))
        incoming = body.get("fields")
        if incoming is not None and (
            not isinstance(incoming, list) or len(incoming) != len(form.fields)
        ):
            count = len(incoming) if isinstance(incoming, list) else 0
            raise _illegal(f'"fields" array should have {len(form.fields)} fields, but had {count}')
        now = self._now()
        fields = [
            _Field(self._next("field"), fname, ftype, "", now, i)
            for i, (fname, ftype) in enumerate(form.fields)
        ]
        for i, (fld, spec) in enumerate(zip(fields, incoming or [], strict=False)):
            self._apply_field(ctx, fld, spec, i)
        doc = self._new_record(
            "DOCUMENT",
            clean_name(raw_name) or "Untitled document",
            ctx.user.id,
            target.id,
            form=form.id,
            fields=fields,
            tags=tags,
        )
        return _json(self._doc_json(ctx, doc, True), 201)

    @staticmethod
    def _check_tags(tags: Any) -> str | None:
        if tags is None:
            return None
        if not isinstance(tags, str):
            raise _illegal("tags must be a comma-separated string")
        if len(tags) > 8000:
            raise _validation(("tags", tags[:20], "size must be between 0 and 8000"))
        # DocumentTagManagerImpl.apiSaveTagForDocument, per comma-separated tag
        for tag in tags.split(","):
            for forbidden in TAG_FORBIDDEN:
                if forbidden in tag:
                    raise _illegal(f"The value: {forbidden} may not be used in tags")
        return tags

    def _apply_field(self, ctx: _Ctx, fld: _Field, spec: Any, index: int) -> None:
        if not isinstance(spec, dict):
            raise _illegal(f"Field {index + 1} must be an object")
        if spec.get("type") not in (None, fld.type):
            raise _illegal(f"Field {index + 1} has type {fld.type}, not {spec.get('type')}")
        if spec.get("name") not in (None, fld.name):
            raise _illegal(f"Field {index + 1} has name {fld.name}, not {spec.get('name')}")
        if "content" not in spec or spec["content"] is None:
            return
        content = str(spec["content"])
        if fld.type == "text":
            content = self._expand_links(ctx, normalise_html(content), index + 1)
        fld.content = content
        fld.modified = self._now()

    def _expand_links(self, ctx: _Ctx, html: str, field_no: int) -> str:
        def replace(match: re.Match[str]) -> str:
            kind, ident = match.group(1), int(match.group(2))
            rec = self._rec(ident)
            if kind == "docId":
                if rec is None or rec.kind not in ("DOCUMENT", "FOLDER", "NOTEBOOK"):
                    raise _illegal(
                        f"Record with docId={ident} from field {field_no} cannot be accessed"
                    )
                gid = self._global_id(rec)
                return (
                    f'<a class="linkedRecord mceNonEditable" data-globalid="{gid}" '
                    f'href="/globalId/{gid}">{gid}: {rec.name}</a>'
                )
            if (
                rec is None
                or rec.kind != "MEDIA"
                or self._is_deleted(rec)
                or not self._can_read(ctx.user, rec)
            ):
                raise _illegal(
                    f"Attachment with fileId={ident} from field {field_no} cannot be accessed"
                )
            if rec.section in ("Audios", "Videos"):
                raise _illegal(
                    "Linking to audio/video attachments is not supported yet, please link this "
                    f"attachment manually (fileId={ident})"
                )
            if rec.section == "Images":
                return (
                    f'<img class="imageDropped inlineImageThumbnail" data-rsfileid="{ident}" '
                    f'src="/thumbnail/data?sourceType=IMAGE&amp;sourceId={ident}" '
                    f'alt="image {rec.name}" />'
                )
            return (
                f'<div class="attachmentDiv mceNonEditable" data-rsfileid="{ident}">'
                f'<a class="attachmentLinked" href="/Streamfile/{ident}" target="_blank">'
                f"{rec.name}</a></div>"
            )

        return _LINK_RE.sub(replace, html)

    def _update_document(self, ctx: _Ctx) -> Response:
        ident = _int_arg(ctx.args[0])
        doc = self._visible(ctx, ident, ("DOCUMENT",), "Document")
        if not self._can_edit(ctx.user, doc):
            raise _not_found("Document", ident)
        body = ctx.json()
        if not isinstance(body, dict):
            raise ApiError(400, "JSON parse error: expected an object", internal=40009)
        if doc.signed:
            raise _validation(("id", ident, "This document has already been signed."))
        if doc.edit_locked:
            raise ApiError(
                409,
                f"Document [{ident}] is currently being edited by another user",
                internal=40901,
            )
        raw_name = body.get("name")
        if isinstance(raw_name, str) and len(raw_name) > 255:
            raise _validation(("name", raw_name, "Name cannot be longer than 255 characters"))
        tags = self._check_tags(body.get("tags"))
        if body.get("form") is not None and self._resolve_form(body["form"]).id != doc.form:
            raise _illegal("The form of a document cannot be changed")
        updates = self._match_fields(doc, body.get("fields"))
        for fld, spec in updates:
            self._apply_field(ctx, fld, spec, fld.column)
        if isinstance(raw_name, str) and clean_name(raw_name):
            doc.name = clean_name(raw_name)[:255]
        if "tags" in body and body["tags"] is not None:
            doc.tags = tags or None
        doc.version += 1
        doc.modified = self._now()
        return _json(self._doc_json(ctx, doc, True))

    @staticmethod
    def _match_fields(doc: _Record, incoming: Any) -> list[tuple[_Field, Any]]:
        """All fields in order (ids optional) or a subset with ids, as the server accepts."""
        if not incoming:
            return []
        if not isinstance(incoming, list):
            raise _illegal('"fields" must be an array')
        by_id = {f.id: f for f in doc.fields}
        if len(incoming) == len(doc.fields):
            pairs = list(zip(doc.fields, incoming, strict=True))
            if all(not isinstance(s, dict) or s.get("id") in (None, f.id) for f, s in pairs):
                return pairs
        result = []
        for spec in incoming:
            ident = spec.get("id") if isinstance(spec, dict) else None
            if ident not in by_id:
                raise _illegal(
                    f"At least one ID in the incoming form fields does not exist in form "
                    f"[{doc.form}]. Persisted field form IDs are {sorted(by_id)}; supplied IDs "
                    f"are [{ident}]."
                )
            result.append((by_id[ident], spec))
        return result

    def _delete_document(self, ctx: _Ctx) -> Response:
        ident = _int_arg(ctx.args[0])
        doc = self._rec(ident)
        if (
            doc is None
            or doc.kind != "DOCUMENT"
            or self._is_deleted(doc)
            or doc.owner != ctx.user.id
        ):
            raise _not_found("Document", ident)
        if self._group_folder_of(doc) is not None:
            raise _illegal("Item to delete must be in user's folder tree, not a shared folder")
        self._soft_delete(doc)
        return Response(status_code=204)

    # ---- files -----------------------------------------------------------------------------

    def _list_files(self, ctx: _Ctx) -> Response:
        page, size, order = self._paging(ctx)
        media_type = ctx.param("mediaType")
        if media_type is not None and media_type not in ("image", "av", "document", "chemistry"):
            raise _validation(
                ("mediaType", media_type, "mediaType must be one of image, av, document, chemistry")
            )
        files = [
            r
            for r in self._records.values()
            if r.kind == "MEDIA" and not self._is_deleted(r) and r.owner == ctx.user.id
        ]
        if media_type == "document":
            others = set().union(*MEDIA_TYPE_SECTIONS.values())
            files = [f for f in files if f.section not in others]
        elif media_type is not None:
            files = [f for f in files if f.section in MEDIA_TYPE_SECTIONS[media_type]]
        files = self._sort(files, order)
        extra = [("mediaType", media_type)] if media_type else []
        return _json(
            {
                "totalHits": len(files),
                "pageNumber": page,
                "files": [self._file_json(ctx, f) for f in files[page * size : (page + 1) * size]],
                "_links": self._page_links(ctx, "/files", page, size, order, len(files), extra),
            }
        )

    def _get_file(self, ctx: _Ctx) -> Response:
        ident = _int_arg(ctx.args[0])
        rec = self._visible(ctx, ident, ("MEDIA",), "File")
        if not self.stale_file_cache:
            return _json(self._file_json(ctx, rec))
        # @Cacheable on the id alone: 10 entries, 3600 s, evicted only by renames
        cached = self._file_cache.get(ident)
        if cached is None or time.monotonic() - cached[1] > 3600:
            cached = (self._file_json(ctx, rec), time.monotonic())
            self._file_cache[ident] = cached
            while len(self._file_cache) > 10:
                self._file_cache.popitem(last=False)
        self._file_cache.move_to_end(ident)
        return _json(cached[0])

    def _download(self, ctx: _Ctx) -> Response:
        ident = _int_arg(ctx.args[0])
        rec = self._visible(ctx, ident, ("MEDIA",), "File")
        data = b"" if rec.blob_missing else rec.data
        headers = {
            "Content-Disposition": _tomcat_header(f'attachment; filename="{rec.name}"'),
            "X-Content-Type-Options": "nosniff",
        }
        if len(data) <= CHUNK:
            return Response(data, media_type=rec.content_type, headers=headers)

        def chunks() -> Iterator[bytes]:
            for i in range(0, len(data), CHUNK):
                yield data[i : i + CHUNK]

        # large bodies go out chunked, as the servlet container does for unbuffered copies
        return StreamingResponse(chunks(), media_type=rec.content_type, headers=headers)

    def _upload(self, ctx: _Ctx) -> Response:
        fields, files = parse_multipart(ctx.body, ctx.headers.get("content-type", ""))
        if "file" not in files:
            raise ApiError(400, "Required request part 'file' is not present", internal=40004)
        filename, data = files["file"]
        caption = fields.get("caption", "")
        if len(caption) > 250:
            raise _illegal("Caption cannot be longer than 250 characters")
        section = section_for_filename(filename)
        raw_folder = fields.get("folderId")
        if raw_folder:
            folder_id = _int_arg(raw_folder, "folderId")
            target = self._rec(folder_id)
            if (
                target is None
                or target.kind != "FOLDER"
                or self._is_deleted(target)
                or not self._can_read(ctx.user, target)
            ):
                raise _unauthorised(
                    f"Unauthorized attempt by {ctx.user.username} to add an item to a folder"
                )
            if target.shared_folder:
                # a shared folder as target is replaced by the section's Api Inbox
                target = self._gallery_inbox(ctx.user, section)
            elif not target.gallery or target.section != section:
                raise _illegal(
                    f"Target folder (id={folder_id}) must be either Gallery folder {section} or a "
                    f"subfolder of {section}"
                )
        else:
            target = self._gallery_inbox(ctx.user, section)
        self._check_image(filename, data)
        rec = self._new_record(
            "MEDIA",
            filename,
            ctx.user.id,
            target.id,
            data=data,
            content_type=_content_type(filename),
            caption=caption,
            section=section,
        )
        return _json(self._file_json(ctx, rec), 201)

    @staticmethod
    def _check_image(filename: str, data: bytes) -> None:
        ext = extension(filename)
        if not _image_matches(ext, data):
            raise _illegal(
                f"File {filename} was rejected: its content does not match the {ext} type "
                "claimed by its file extension.",
                message_code="errors.upload.imageContentMismatch",
            )

    def _gallery_inbox(self, user: _User, section: str) -> _Record:
        sec = self._records[user.folders[section]]
        for cid in sec.children:
            rec = self._records[cid]
            if rec.role == "API_INBOX" and not rec.deleted:
                return rec
        return self._new_record(
            "FOLDER", "Api Inbox", user.id, sec.id, system=True, role="API_INBOX"
        )

    def _new_version(self, ctx: _Ctx) -> Response:
        ident = _int_arg(ctx.args[0])
        rec = self._rec(ident)
        if (
            rec is None
            or rec.kind != "MEDIA"
            or self._is_deleted(rec)
            or not self._can_edit(ctx.user, rec)
        ):
            raise _not_found("File", ident)
        _, files = parse_multipart(ctx.body, ctx.headers.get("content-type", ""))
        if "file" not in files:
            raise ApiError(400, "Required request part 'file' is not present", internal=40004)
        filename, data = files["file"]
        old, new = extension(rec.name), extension(filename)
        if old != new and (old, new) not in EXTENSION_UPGRADES:
            raise _illegal(
                f"The new file extension '{new}' must match the original extension '{old}'"
            )
        if rec.file_locked:
            raise ApiError(500, f"File [{ident}] is locked for editing", internal=50001)
        self._check_image(filename, data)
        if filename != rec.name:
            self._file_cache.pop(ident, None)  # rename events evict the cached ApiFile
        rec.name = filename
        rec.data = data
        rec.blob_missing = False
        rec.content_type = _content_type(filename)
        rec.version += 1
        rec.modified = self._now()
        return _json(self._file_json(ctx, rec), 201)

    # ---- snippets --------------------------------------------------------------------------

    def _get_snippet(self, ctx: _Ctx) -> Response:
        rec = self._visible(ctx, _int_arg(ctx.args[0]), ("SNIPPET",), "Snippet")
        return _json(
            {
                "id": rec.id,
                "globalId": self._global_id(rec),
                "name": rec.name,
                "owner": self._user_json(self._users[rec.owner]),
                "content": rec.content,
                "_links": [ctx.link(f"/snippets/{rec.id}")],
            }
        )

    def _snippet_content(self, ctx: _Ctx) -> Response:
        rec = self._visible(ctx, _int_arg(ctx.args[0]), ("SNIPPET",), "Snippet")
        return PlainTextResponse(rec.content)

    # ---- sharing and groups ----------------------------------------------------------------

    def _share(self, ctx: _Ctx) -> Response:
        body = ctx.json()
        if not isinstance(body, dict):
            raise ApiError(400, "JSON parse error: expected an object", internal=40009)
        items = body.get("itemsToShare") or []
        groups = body.get("groups") or []
        users = body.get("users") or []
        problems: list[tuple[str, Any, str]] = []
        if not isinstance(items, list) or not 1 <= len(items) <= 255:
            problems.append(("itemsToShare", items, "size must be between 1 and 255"))
        if not groups and not users:
            problems.append(("groups", groups, "At least one user or group must be specified"))
        targets: list[tuple[str, dict[str, Any]]] = []
        for kind, specs in (("GROUP", groups), ("USER", users)):
            for spec in specs if isinstance(specs, list) else []:
                perm = str(spec.get("permission") or "READ").upper()
                if perm not in ("READ", "EDIT") or not isinstance(spec.get("id"), int):
                    problems.append(("permission", spec.get("permission"), "must be READ or EDIT"))
                targets.append((kind, {**spec, "permission": perm}))
        if problems:
            raise _validation(*problems, object_name="sharePost")
        created: list[_Share] = []
        failed: list[int] = []
        for raw in items:
            for kind, spec in targets:
                share = self._share_one(ctx.user, raw, kind, spec)
                if share is None:
                    failed.append(raw)
                else:
                    created.append(share)
        if not created:
            raise _unauthorised(
                f"Unauthorized attempt by {ctx.user.username} to share items {items}"
            )
        return _json(
            {
                "shareInfos": [self._share_json(ctx, s) for s in created],
                "failedShares": list(dict.fromkeys(failed)),
                "_links": [],
            },
            201,
        )

    def _share_one(self, user: _User, raw: Any, kind: str, spec: dict[str, Any]) -> _Share | None:
        item = self._rec(raw) if isinstance(raw, int) else None
        if (
            item is None
            or item.kind not in ("DOCUMENT", "NOTEBOOK", "SNIPPET")
            or (item.gallery and item.kind != "SNIPPET")
            or self._is_deleted(item)
            or item.owner != user.id
        ):
            return None
        if kind == "GROUP":
            group = self._groups.get(spec["id"])
            if group is None or not self._member(group, user):
                return None
            folder = group.folder
            wanted = self._rec(spec["sharedFolderId"]) if spec.get("sharedFolderId") else None
            if (
                wanted is not None
                and wanted.kind == "FOLDER"
                and self._group_folder_of(wanted) is group
            ):
                folder = wanted.id
        else:
            target_user = self._users.get(spec["id"])
            if (
                target_user is None
                or target_user.id == user.id
                or not any(
                    self._member(g, user) and self._member(g, target_user)
                    for g in self._groups.values()
                )
            ):
                return None
            folder = target_user.folders["IndividualShareItems"]
        if any(
            s.item == item.id and s.target_type == kind and s.target == spec["id"]
            for s in self._shares.values()
        ):
            return None
        share = _Share(
            self._next("share"), item.id, user.id, kind, spec["id"], spec["permission"], folder
        )
        self._shares[share.id] = share
        self._records[folder].children.append(item.id)
        return share

    def _remove_share(self, share: _Share) -> None:
        self._shares.pop(share.id, None)
        folder = self._records.get(share.folder)
        if folder is not None and share.item in folder.children:
            folder.children.remove(share.item)

    def _list_shares(self, ctx: _Ctx) -> Response:
        orders = (*ORDERS, "sharee asc", "sharee desc")
        page, size, order = self._paging(ctx, orders)
        query = ctx.param("query")
        wanted: set[int] = set()
        for raw in ctx.params("sharedItemIds"):
            wanted.update(_int_arg(x, "sharedItemIds") for x in raw.split(",") if x.strip())
        shares = [s for s in self._shares.values() if s.sharer == ctx.user.id]
        if wanted:
            shares = [s for s in shares if s.item in wanted]
        if query:
            q = query.casefold()
            shares = [
                s
                for s in shares
                if q in self._records[s.item].name.casefold()
                or q in (str(s.item), self._global_id(self._records[s.item]).casefold())
            ]
        key_name, _, direction = order.partition(" ")

        def key(s: _Share) -> Any:
            if key_name == "sharee":
                target = (
                    self._users[s.target].username
                    if s.target_type == "USER"
                    else self._groups[s.target].name
                )
                return (target.casefold(), s.id)
            if key_name == "name":
                return (self._records[s.item].name.casefold(), s.id)
            return (s.id,)

        shares.sort(key=key, reverse=direction == "desc")
        extra = [("query", query)] if query else []
        result: dict[str, Any] = {
            "totalHits": len(shares),
            "pageNumber": page,
            "shares": [self._share_json(ctx, s) for s in shares[page * size : (page + 1) * size]],
            # server bug reproduced: ApiShareSearchResult links point at /forms
            "_links": self._page_links(ctx, "/forms", page, size, order, len(shares), extra),
        }
        if wanted:
            result["folderShares"] = []
        return _json(result)

    def _update_share(self, ctx: _Ctx) -> Response:
        body = ctx.json()
        ident = body.get("shareId") if isinstance(body, dict) else None
        share = self._shares.get(ident) if isinstance(ident, int) else None
        if share is None or share.sharer != ctx.user.id:
            raise _not_found("Share", ident)
        perm = str(body.get("permission") or "").upper()
        if perm not in ("READ", "EDIT"):
            raise _illegal(f"Invalid permission {perm}")
        share.permission = perm
        return Response(status_code=204)

    def _unshare(self, ctx: _Ctx) -> Response:
        ident = _int_arg(ctx.args[0])
        share = self._shares.get(ident)
        if share is None or share.sharer != ctx.user.id:
            raise _not_found("Share", ident)
        self._remove_share(share)
        return Response(status_code=204)

    def _document_shares(self, ctx: _Ctx) -> Response:
        ident = _int_arg(ctx.args[0])
        doc = self._rec(ident)
        if doc is None or doc.kind not in ("DOCUMENT", "NOTEBOOK") or doc.owner != ctx.user.id:
            raise _not_found("Document", ident)
        return _json(
            {
                "sharedDocId": doc.id,
                "sharedDocName": doc.name,
                "directShares": [self._share_json(ctx, s) for s in self._shares_for(doc)],
                "notebookShares": [],
                "_links": [],
            }
        )

    def _list_groups(self, ctx: _Ctx) -> Response:
        groups = [g for g in self._groups.values() if self._member(g, ctx.user)]
        groups.sort(key=lambda g: (g.name.casefold(), g.id))
        return _json([self._group_json(g) for g in groups])

    def _get_group(self, ctx: _Ctx) -> Response:
        ident = _int_arg(ctx.args[0])
        group = self._groups.get(ident)
        if group is None or not self._member(group, ctx.user):
            raise _not_found("Group", ident)
        return _json(self._group_json(group))

    # ---- backdoor: users, groups, forms ----------------------------------------------------

    def add_user(
        self,
        username: str,
        *,
        api_key: str | None = None,
        password: str | None = None,
        pi: bool = False,
        first_name: str | None = None,
        last_name: str = "User",
    ) -> int:
        """Create a user with the folders a fresh account gets; returns the user id."""
        with self._state:
            user = _User(
                id=self._next("user"),
                username=username,
                email=f"{username}@example.org",
                first_name=first_name or username.capitalize(),
                last_name=last_name,
                password=password or f"{username}-pw",
                api_key=api_key,
                pi=pi,
            )
            self._users[user.id] = user
            self._init_folders(user)
            return user.id

    def _init_folders(self, user: _User) -> None:
        home = self._new_record("FOLDER", user.username, user.id, None, role="HOME")
        user.home = home.id
        gallery = self._new_record(
            "FOLDER", "Gallery", user.id, home.id, gallery=True, system=True, role="GALLERY"
        )
        for section in SECTIONS:
            sec = self._new_record(
                "FOLDER", section, user.id, gallery.id, system=True, role="SECTION", section=section
            )
            user.folders[section] = sec.id
        self._new_record("FOLDER", "Examples", user.id, user.folders["Images"], system=True)
        snippets_shared = self._new_record(
            "FOLDER", "SNIPPETS_Shared", user.id, user.folders["Snippets"], system=True
        )
        for sub in ("LabGroups", "CollaborationGroups", "IndividualShareItems"):
            rec = self._new_record(
                "FOLDER", f"SNIPPETS_{sub}", user.id, snippets_shared.id, system=True
            )
            user.folders[f"SNIPPETS_{sub}"] = rec.id
        shared = self._new_record("FOLDER", "Shared", user.id, home.id, system=True, role="SHARED")
        roles = {"LabGroups": "LABGROUPS", "CollaborationGroups": "COLLABGROUPS"}
        roles["IndividualShareItems"] = "INDIVIDUAL"
        for sub, role in roles.items():
            rec = self._new_record("FOLDER", sub, user.id, shared.id, system=True, role=role)
            user.folders[sub] = rec.id
        self._new_record("FOLDER", "Templates", user.id, home.id, system=True, role="TEMPLATES")

    def _user(self, username: str | None) -> _User:
        if username is None:
            return self._users[self.default_user]
        for user in self._users.values():
            if user.username == username:
                return user
        raise KeyError(f"no user {username!r}")

    def user_id(self, username: str | None = None) -> int:
        with self._state:
            return self._user(username).id

    def home_id(self, username: str | None = None) -> int:
        """The id of a user's Home folder (the default user's without a name)."""
        with self._state:
            return self._user(username).home

    def gallery_id(self, username: str | None = None) -> int:
        with self._state:
            home = self._records[self._user(username).home]
            return next(c for c in home.children if self._records[c].role == "GALLERY")

    def folder_id(self, name: str, username: str | None = None) -> int:
        """A system folder of a user: a section name, ``LabGroups``, ``IndividualShareItems``…"""
        with self._state:
            return self._user(username).folders[name]

    def set_api_key(self, username: str | None, key: str | None) -> None:
        """Regenerate (or, with None, revoke) a user's API key."""
        with self._state:
            self._user(username).api_key = key

    def set_user_enabled(self, username: str | None, enabled: bool) -> None:
        with self._state:
            self._user(username).enabled = enabled

    def set_user_api_enabled(self, username: str | None, enabled: bool) -> None:
        with self._state:
            self._user(username).api_enabled = enabled

    def add_oauth_client(self, client_id: str, secret: str) -> None:
        with self._state:
            self._oauth_clients[client_id] = secret

    def expire_tokens(self, *, refresh: bool = False) -> None:
        """Invalidate every OAuth access token (and refresh tokens too, if asked)."""
        with self._state:
            self._access.clear()
            if refresh:
                self._refresh.clear()

    def add_form(self, name: str, fields: Sequence[tuple[str, str]]) -> int:
        """A published form with ``(field name, type)`` pairs; returns the form id."""
        with self._state:
            form = _Form(self._next("form"), name, list(fields))
            self._forms[form.id] = form
            return form.id

    def add_group(
        self,
        name: str,
        members: Sequence[str],
        *,
        pi: str | None = None,
        group_type: str = "LAB_GROUP",
        admins: Sequence[str] = (),
    ) -> int:
        """A group of existing users; its shared folder appears in each member's LabGroups."""
        with self._state:
            pi_user = self._user(pi or members[0])
            folder = self._new_record(
                "FOLDER",
                f"{name}_SHARED",
                pi_user.id,
                pi_user.folders["LabGroups"],
                shared_folder=True,
                role="GROUP",
            )
            snippet_folder = self._new_record(
                "FOLDER",
                f"{name}_SHARED",
                pi_user.id,
                pi_user.folders["SNIPPETS_LabGroups"],
                shared_folder=True,
            )
            roster: list[tuple[int, str]] = []
            for username in members:
                user = self._user(username)
                role = (
                    "PI" if user.id == pi_user.id else "LAB_ADMIN" if username in admins else "USER"
                )
                roster.append((user.id, role))
                if user.id != pi_user.id:
                    self._records[user.folders["LabGroups"]].children.append(folder.id)
            group = _Group(
                self._next("group"),
                name,
                re.sub(r"\W+", "", name) + str(self._seq["group"]),
                group_type,
                roster,
                folder.id,
                snippet_folder.id,
            )
            self._groups[group.id] = group
            return group.id

    def add_share(
        self,
        item: int,
        *,
        group: int | None = None,
        user: str | None = None,
        permission: str = "READ",
    ) -> int:
        """Share a document or notebook as its owner would; returns the share id."""
        with self._state:
            owner = self._users[self._records[item].owner]
            if group is not None:
                kind, target = "GROUP", group
            else:
                kind, target = "USER", self._user(user).id
            share = self._share_one(owner, item, kind, {"id": target, "permission": permission})
            if share is None:
                raise ValueError(f"item {item} cannot be shared with {kind} {target}")
            return share.id

    # ---- backdoor: content -----------------------------------------------------------------

    def _owner_of(self, parent: int, username: str | None) -> _User:
        if username is not None:
            return self._user(username)
        return self._users[self._records[parent].owner]

    def add_folder(
        self, parent: int, name: str, *, notebook: bool = False, username: str | None = None
    ) -> int:
        """A folder (or notebook) under ``parent``, owned by the parent's owner by default."""
        with self._state:
            owner = self._owner_of(parent, username)
            parent_rec = self._records[parent]
            rec = self._new_record(
                "NOTEBOOK" if notebook else "FOLDER",
                name,
                owner.id,
                parent,
                shared_folder=self._group_folder_of(parent_rec) is not None,
            )
            return rec.id

    def add_document(
        self,
        parent: int,
        name: str,
        *,
        fields: Mapping[str, str] | Sequence[str] | None = None,
        form: int | None = None,
        tags: str | None = None,
        username: str | None = None,
    ) -> int:
        """A document; ``fields`` maps field names (or positions) to raw HTML content.

        ``<fileId=N>`` markers in text fields are expanded as the API would.
        """
        with self._state:
            owner = self._owner_of(parent, username)
            frm = self._forms[form or self.basic_form]
            now = self._now()
            values: list[str | None] = [None] * len(frm.fields)
            if isinstance(fields, Mapping):
                for i, (fname, _) in enumerate(frm.fields):
                    values[i] = fields.get(fname)
            elif fields is not None:
                for i, text in enumerate(fields):
                    values[i] = text
            flds = []
            ctx = self._backdoor_ctx(owner)
            for i, ((fname, ftype), content) in enumerate(zip(frm.fields, values, strict=True)):
                fld = _Field(self._next("field"), fname, ftype, "", now, i)
                if content is not None:
                    self._apply_field(ctx, fld, {"content": content}, i)
                flds.append(fld)
            rec = self._new_record(
                "DOCUMENT", name, owner.id, parent, form=frm.id, fields=flds, tags=tags
            )
            return rec.id

    def _backdoor_ctx(self, user: _User) -> _Ctx:
        base = (self.server_url or "http://127.0.0.1") + API
        return _Ctx(user, "GET", (), [], {}, b"", base)

    def add_file(
        self,
        folder: int | None,
        name: str,
        data: bytes,
        *,
        caption: str = "",
        username: str | None = None,
    ) -> int:
        """A Gallery file in ``folder`` (None: the section's Api Inbox); no section check."""
        with self._state:
            section = section_for_filename(name)
            if folder is None:
                owner = self._user(username)
                folder = self._gallery_inbox(owner, section).id
            else:
                owner = self._owner_of(folder, username)
            parent = self._records[folder]
            rec = self._new_record(
                "MEDIA",
                name,
                owner.id,
                folder,
                data=data,
                content_type=_content_type(name),
                caption=caption,
                section=parent.section or section,
            )
            return rec.id

    def add_snippet(self, name: str, content: str, *, username: str | None = None) -> int:
        with self._state:
            owner = self._user(username)
            rec = self._new_record(
                "SNIPPET", name, owner.id, owner.folders["Snippets"], content=content
            )
            return rec.id

    def link_file(self, document: int, file: int, field_index: int = 0) -> None:
        """Append ``<fileId=file>`` to a document's field (a new revision), as a user would."""
        with self._state:
            doc = self._records[document]
            fld = doc.fields[field_index]
            ctx = self._backdoor_ctx(self._users[doc.owner])
            self._apply_field(ctx, fld, {"content": fld.content + f"<fileId={file}>"}, field_index)
            doc.version += 1
            doc.modified = self._now()

    def set_field(self, document: int, field_name: str, html: str) -> None:
        """Change a field behind the client's back (normalised, new revision)."""
        with self._state:
            doc = self._records[document]
            fld = next(f for f in doc.fields if f.name == field_name)
            ctx = self._backdoor_ctx(self._users[doc.owner])
            self._apply_field(ctx, fld, {"content": html}, fld.column)
            doc.version += 1
            doc.modified = self._now()

    def replace_file_data(self, file: int, data: bytes, name: str | None = None) -> None:
        """A new version of a Gallery file behind the client's back."""
        with self._state:
            rec = self._records[file]
            rec.data = data
            if name is not None:
                rec.name = name
            rec.version += 1
            rec.modified = self._now()

    def rename(self, ident: int, name: str) -> None:
        with self._state:
            rec = self._records[ident]
            rec.name = name
            rec.modified = self._now()
            self._file_cache.pop(ident, None)

    def delete(self, ident: int) -> None:
        """Soft-delete any record (and so its subtree) behind the client's back."""
        with self._state:
            self._soft_delete(self._records[ident])

    def set_document_flags(
        self, document: int, *, signed: bool | None = None, edit_locked: bool | None = None
    ) -> None:
        """Sign a document, or mark it open in the web editor (PUT then answers 409)."""
        with self._state:
            doc = self._records[document]
            if signed is not None:
                doc.signed = signed
            if edit_locked is not None:
                doc.edit_locked = edit_locked

    def set_file_flags(
        self, file: int, *, locked: bool | None = None, blob_missing: bool | None = None
    ) -> None:
        """Lock a file (new versions answer 500) or lose its blob (download answers empty)."""
        with self._state:
            rec = self._records[file]
            if locked is not None:
                rec.file_locked = locked
            if blob_missing is not None:
                rec.blob_missing = blob_missing

    # ---- backdoor: inspection --------------------------------------------------------------

    def record(self, ident: int) -> dict[str, Any]:
        """A snapshot of any record: kind, name, parent, owner, deleted, version, size…"""
        with self._state:
            rec = self._records[ident]
            return {
                "id": rec.id,
                "kind": rec.kind,
                "name": rec.name,
                "parent": rec.parent,
                "owner": self._users[rec.owner].username,
                "deleted": self._is_deleted(rec),
                "version": rec.version,
                "size": len(rec.data),
                "section": rec.section,
                "tags": rec.tags,
                "caption": rec.caption,
                "globalId": self._global_id(rec),
            }

    def children(self, ident: int) -> list[dict[str, Any]]:
        """Snapshots of the live children of a folder, in insertion order."""
        with self._state:
            rec = self._records[ident]
            return [self.record(c) for c in rec.children if not self._is_deleted(self._records[c])]

    def find(self, name: str, *, kind: str | None = None) -> list[int]:
        """Ids of live records with this name (and kind)."""
        with self._state:
            return [
                r.id
                for r in self._records.values()
                if r.name == name and (kind is None or r.kind == kind) and not self._is_deleted(r)
            ]

    def file_data(self, ident: int) -> bytes:
        with self._state:
            return self._records[ident].data

    def fields(self, document: int) -> dict[str, str]:
        """Field name → current content of a document."""
        with self._state:
            return {f.name: f.content for f in self._records[document].fields}

    def field_ids(self, document: int) -> list[int]:
        with self._state:
            return [f.id for f in self._records[document].fields]

    def shares(self) -> list[dict[str, Any]]:
        with self._state:
            return [
                {
                    "id": s.id,
                    "item": s.item,
                    "sharer": self._users[s.sharer].username,
                    "targetType": s.target_type,
                    "target": s.target,
                    "permission": s.permission,
                    "folder": s.folder,
                }
                for s in self._shares.values()
            ]
