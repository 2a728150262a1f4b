"""RSpace ELN (REST API v1) as directories and files.

The remote URL is the server's base URL, e.g. ``https://rspace.example.org``; every API call
goes to ``{url}/api/v1/…`` and OAuth tokens come from ``{url}/oauth/token``.

Mapping (see ``shared/reference/rspace.md`` §10):

- root: the user's Home folder; its children come from ``GET /folders/tree/{home}`` pages of
  100, following ``totalHits`` (never the ``next`` links, which drop filters and may point to
  another host). Workspace folders and notebooks are directories; so is the ``Gallery``, its
  sections and their sub-folders. Snippets are not shown.
- a document is a directory: one ``<field name>.html`` file per field (the content exactly as
  the server returns it) plus the Gallery files linked from its fields, all from one
  ``GET /documents/{id}``.
- Gallery media are files. The tree has no sizes, so sizes and versions come from the paged
  ``GET /files`` listing (100 per page), kept in an index that is refreshed only for files whose
  tree ``lastModified`` is newer than the moment they were indexed: ``ls -l`` of a Gallery folder
  costs its tree pages plus, at most, a few ``/files`` pages, never one request per file.

Writes: a new file in a Gallery folder → ``POST /files`` (refused at create, EINVAL, by
``check_name`` when the extension belongs to another section: the log names the right one);
overwriting a Gallery file → ``POST /files/{id}/file`` (a new version under the same name); a
new file in a document directory → upload to the Gallery (the section's ``Api Inbox``) and a
``<fileId=N>`` link appended to the document's first text field; writing a field file →
``PUT /documents/{id}``;
mkdir → ``POST /folders`` (in a notebook: ``POST /documents``, a new entry;
``mkdir_notebook`` makes notebooks); rmdir → ``DELETE /folders/{id}`` after checking emptiness;
removing a document directory → ``DELETE /documents/{id}``; renaming a document → ``PUT``;
moving a document, folder or notebook → ``POST /documents/move`` (only from RSpace 2.16: on an
older server, told by ``GET /status``, a move fails locally; see ``_no_move_api``). The API cannot
rename a folder,
nor delete, rename or move a Gallery file, nor move anything into the Gallery: those fail locally
with EPERM, a log line and no request (not EXDEV: ``mv``'s copy-and-delete would leave the
undeletable original behind). Workspace folders take no plain files (EPERM).

Metadata (``user.rspace.*``): ``globalId`` and ``owner`` everywhere, ``caption`` on Gallery
files; documents also ``tags`` (writable), ``form`` and ``shares`` (JSON) — those three only on
entries from ``stat()`` (the tree has no tags), which ``extra["meta"] == "partial"`` signals.

Authentication: an API key (``Credentials.token`` alone) sent as the ``apiKey`` header, or OAuth
(``Credentials.user`` + ``password``, with ``token`` = ``"client_id:client_secret"``): a password
grant, refreshed before expiry and once on a 401. RSpace answers 401 also for "forbidden" on
folders and 404 for forbidden documents and files, so statuses are mapped per call. Throttled
servers answer 429 without ``Retry-After``; the wait comes from ``X-Rate-Limit-WaitTimeMillis``.
An upload over the server's upload quota (``api.fileuploadRateLimit.enabled``) also answers 429,
with ``X-Upload-Limit-*`` headers: that is EDQUOT at once, never re-sent (see ``_quota_error``).
Server behaviour by release and setting: docs/protocols/rspace.md.
"""

from __future__ import annotations

import contextlib
import email.utils
import hashlib
import json
import logging
import re
import secrets
import time
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar

import httpx
import trio

from docfs import errors
from docfs.backends._http import HttpClient, Limits, StatusMap
from docfs.backends.base import Capabilities, Credentials, Entry, Kind, Op, Sink
from docfs.backends.http_backend import HttpBackend

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


# --------------------------------------------------------------------------------------------
# authentication


class _RateWatch:
    """Remembers the server's advice on how long to wait (``X-Rate-Limit-WaitTimeMillis``)."""

    def __init__(self) -> None:
        self.wait: float | None = None

    def observe(self, response: httpx.Response) -> None:
        raw = response.headers.get("X-Rate-Limit-WaitTimeMillis")
        if raw is not None and response.status_code == 429:
            try:
                self.wait = max(0.0, float(raw) / 1000)
            except ValueError:
                self.wait = None


class ApiKeySession:
    """The ``apiKey`` header: stateless, no login, nothing to refresh."""

    def __init__(self, key: str, watch: _RateWatch) -> None:
        self._key = key
        self._watch = watch

    def apply(self, request: httpx.Request) -> None:
        request.headers["apiKey"] = self._key

    def needs_login(self) -> bool:
        return False

    async def login(self, http: HttpClient) -> None:
        return None

    def expired(self, response: httpx.Response) -> bool:
        # a 401 is a bad key or "forbidden"; logging in again cannot help either way
        self._watch.observe(response)
        return False

    def secrets(self) -> Iterable[str]:
        return [self._key]


class OAuthSession:
    """OAuth password grant at ``/oauth/token``; refreshed before expiry and once on a 401."""

    def __init__(
        self, user: str, password: str, client_id: str, client_secret: str, watch: _RateWatch
    ) -> None:
        self._user = user
        self._password = password
        self._client_id = client_id
        self._client_secret = client_secret
        self._watch = watch
        self._access: str | None = None
        self._refresh: str | None = None
        self._expires = 0.0

    def apply(self, request: httpx.Request) -> None:
        if self._access:
            request.headers["Authorization"] = f"Bearer {self._access}"

    def needs_login(self) -> bool:
        return self._access is None or time.monotonic() >= self._expires

    async def login(self, http: HttpClient) -> None:
        tokens = None
        if self._refresh:
            try:
                tokens = await self._grant(
                    http,
                    {"grant_type": "refresh_token", "refresh_token": self._refresh},
                    {400: errors.PermissionDenied, 401: errors.PermissionDenied},
                )
            except errors.PermissionDenied:
                log.info("OAuth refresh token refused; logging in with the password")
        if tokens is None:
            try:
                tokens = await self._grant(
                    http,
                    {"grant_type": "password", "username": self._user, "password": self._password},
                    {400: errors.AuthenticationFailed, 401: errors.AuthenticationFailed},
                )
            except errors.AuthenticationFailed as exc:
                # the user must see what to fix, not an HTTP status of an URL
                raise errors.AuthenticationFailed(
                    f"RSpace refused the login of {self._user}: wrong username or password, "
                    f"or wrong OAuth client id or secret (HTTP {exc.status})",
                    status=exc.status,
                ) from None
        try:
            self._access = str(tokens["access_token"])
            self._refresh = str(tokens.get("refresh_token") or self._refresh or "") or None
            lifetime = float(tokens.get("expires_in", 3600))
        except (KeyError, TypeError, ValueError) as exc:
            raise errors.ProtocolError("RSpace OAuth: unexpected token answer") from exc
        # refresh a little early so that a request never carries a token about to lapse
        self._expires = time.monotonic() + lifetime - min(30.0, lifetime / 10)

    async def _grant(
        self, http: HttpClient, form: dict[str, str], status_map: StatusMap
    ) -> dict[str, Any]:
        form = {**form, "client_id": self._client_id, "client_secret": self._client_secret}
        response = await http.request(
            "POST",
            "/oauth/token",
            endpoint="oauth.token",
            data=form,
            headers=JSON_ACCEPT,
            auth=False,
            idempotent=True,  # a repeated grant only replaces the token pair
            status_map=status_map,
        )
        data = _json(response)
        if not isinstance(data, dict):
            raise errors.ProtocolError("RSpace OAuth: token answer is not an object")
        return data

    def expired(self, response: httpx.Response) -> bool:
        self._watch.observe(response)
        return response.status_code == 401 and "authorization" in response.request.headers

    def secrets(self) -> Iterable[str]:
        return [s for s in (self._password, self._client_secret, self._access, self._refresh) if s]


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError as exc:
        raise errors.ProtocolError(
            f"RSpace answered {response.status_code} with a body that is not JSON"
        ) from exc


# --------------------------------------------------------------------------------------------
# sharing results


@dataclass(frozen=True)
class Group:
    id: int
    name: str
    unique_name: str
    type: str
    shared_folder_id: int | None
    #: (user id, username, role)
    members: tuple[tuple[int, str, str], ...]


@dataclass(frozen=True)
class ShareInfo:
    id: int
    item_id: int
    item_name: str
    target_id: int
    target_type: str
    permission: str

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ShareInfo:
        return cls(
            id=int(data["id"]),
            item_id=int(data["sharedItemId"]),
            # the model says shareItemName; the spec's example says sharedItemName
            item_name=str(data.get("shareItemName") or data.get("sharedItemName") or ""),
            target_id=int(data["sharedTargetId"]),
            target_type=str(data["sharedTargetType"]),
            permission=str(data["permission"]),
        )


@dataclass(frozen=True)
class ShareResult:
    shares: tuple[ShareInfo, ...]
    #: ids of items that could not be shared
    failed: tuple[int, ...]


@dataclass
class _MediaInfo:
    size: int
    version: int
    caption: str
    #: server time (whole seconds) when this was read
    fetched: float
    #: the tree's ``lastModified`` this was checked against; another value makes it stale
    modified: float | None = None

    def stale(self, modified: float) -> bool:
        if self.modified is not None:
            return self.modified != modified
        return self.fetched <= modified


@dataclass
class _FilesCursor:
    """How far one directory listing has read the ``/files`` pages."""

    page: int = 0
    done: bool = False


# --------------------------------------------------------------------------------------------
# the backend


class RSpaceBackend(HttpBackend):
    """RSpace ELN API v1: Workspace, notebooks, documents and the Gallery."""

    name = "rspace"
    capabilities: ClassVar[Capabilities] = Capabilities(
        ops=frozenset(Op),
        ranges=False,
        move=True,
        meta_namespace="rspace",
        duplicate_names=True,
    )
    #: hosted servers throttle 15 requests / 15 s per user (and ask for ≥ 100 ms between calls)
    default_limits: ClassVar[Limits] = Limits(
        requests_per_second=1.0, burst=15, concurrency=4, timeout=30.0
    )

    def __init__(self, http: HttpClient, credentials: Credentials) -> None:
        super().__init__(http, credentials)
        self._watch = _RateWatch()
        self._home: int | None = None
        self._media: dict[int, _MediaInfo] = {}
        self._media_lock = trio.Lock()
        #: the server's release from ``GET /status`` (None: unknown, moves are tried)
        self._release: tuple[int, ...] | None = None
        #: False once the server showed it has no ``POST /documents/move``
        self._move_api = True
        http.final_error = self._quota_error

    # ---- session and requests --------------------------------------------------------------

    def _make_session(self) -> ApiKeySession | OAuthSession:
        creds = self.credentials
        if creds.user and creds.password:
            client_id, sep, client_secret = (creds.token or "").partition(":")
            if not sep or not client_id or not client_secret:
                raise errors.AuthenticationFailed(
                    "RSpace OAuth needs the app's client id and secret as the token "
                    "('client_id:client_secret')"
                )
            return OAuthSession(creds.user, creds.password, client_id, client_secret, self._watch)
        if creds.token:
            return ApiKeySession(creds.token, self._watch)
        raise errors.AuthenticationFailed("RSpace needs an API key (or OAuth credentials)")

    def _ensure_session(self) -> None:
        if self.http.session is None:
            session = self._make_session()
            self.http.redactor.add(*session.secrets())
            self.http.session = session

    async def connect(self) -> None:
        """Check the credentials with ``GET /status`` (a 401 here is a bad key)."""
        self._ensure_session()
        try:
            data = await self._get(
                "/status", endpoint="status", status_map={401: errors.AuthenticationFailed}
            )
        except errors.AuthenticationFailed as exc:
            if isinstance(self.http.session, OAuthSession):
                raise  # the token grant's own refusal says what is wrong
            # the user must see what to fix, not an HTTP status of an URL (nor the server's
            # message, which quotes the start of the key)
            raise errors.AuthenticationFailed(
                "RSpace refused the API key: it is wrong, revoked, or the API is disabled for "
                f"this account (HTTP {exc.status})",
                status=exc.status,
            ) from None
        if not isinstance(data, dict) or data.get("message") != "OK":
            raise errors.ProtocolError("RSpace /status did not answer OK")
        version = data.get("rspaceVersion")
        self._release = release(version)
        if self._release is not None and self._release[:2] < MOVE_SINCE:
            self._move_api = False
            log.info(
                "connected to RSpace %s: it has no move API (new in 2.16), so mv between "
                "folders is refused locally",
                version,
            )
        else:
            log.info("connected to RSpace %s", version)

    @staticmethod
    def _quota_error(response: httpx.Response, message: str) -> errors.DocfsError | None:
        """RSpace's upload quota: EDQUOT at once, with the limits, never re-sent.

        ``APIFileUploadThrottlingInterceptor`` answers an upload over the user's megabytes per
        hour or per day with 429 (``FileUploadLimitExceededException``, internalCode 42902) and
        ``X-Upload-Limit-Limit``/``-Remaining`` (the hourly limit and what is left of it, in
        MB). It carries no wait that a retry could honour (the ``X-Rate-Limit-*`` headers
        describe the request throttle), and re-sending the body only uses up more quota.
        """
        if response.status_code != 429:
            return None
        limit = response.headers.get("X-Upload-Limit-Limit")
        left = response.headers.get("X-Upload-Limit-Remaining")
        code = None
        with contextlib.suppress(ValueError):
            body = response.json()
            code = body.get("internalCode") if isinstance(body, dict) else None
        if limit is None and left is None and code != 42902:
            return None  # the request throttle: the HTTP layer waits and retries
        return errors.DiskQuotaExceeded(
            f"{message}: the RSpace upload quota is used up "
            f"(limit {_megabytes(limit)} MB per hour, {_megabytes(left)} MB left; the server "
            "also counts a daily limit). Try again later or ask the RSpace administrator "
            "(api.fileuploadRateLimit)",
            status=429,
        )

    async def _call(self, method: str, path: str, *, endpoint: str, **kw: Any) -> httpx.Response:
        """One API request; a 429 that outlives the HTTP layer's retries is waited out."""
        self._ensure_session()
        for attempt in range(RATE_ROUNDS):
            try:
                return await self.http.request(method, API + path, endpoint=endpoint, **kw)
            except errors.RateLimited as exc:
                if attempt + 1 >= RATE_ROUNDS:
                    raise
                # no Retry-After on RSpace's 429: use its X-Rate-Limit-WaitTimeMillis
                wait = exc.retry_after if exc.retry_after is not None else self._watch.wait
                wait = min(60.0, max(0.1, wait if wait is not None else 1.0))
                log.info("RSpace throttled %s %s; waiting %.1f s", method, endpoint, wait)
                await trio.sleep(wait)
        raise AssertionError("unreachable")

    async def _get(
        self,
        path: str,
        *,
        endpoint: str,
        params: Mapping[str, Any] | None = None,
        status_map: StatusMap | None = None,
    ) -> Any:
        response = await self._call(
            "GET",
            path,
            endpoint=endpoint,
            params=params,
            headers=JSON_ACCEPT,
            status_map=status_map,
        )
        return _json(response)

    async def _send_json(
        self, method: str, path: str, body: Any, *, endpoint: str, status_map: StatusMap
    ) -> httpx.Response:
        return await self._call(
            method, path, endpoint=endpoint, json=body, headers=JSON_ACCEPT, status_map=status_map
        )

    async def _multipart(
        self,
        path: str,
        *,
        endpoint: str,
        filename: str,
        src: Path,
        fields: Mapping[str, str],
        status_map: StatusMap,
    ) -> dict[str, Any]:
        """POST a file as multipart/form-data; never retried blindly (only 429/503)."""
        size = src.stat().st_size
        if size > MAX_UPLOAD:
            raise errors.TooLarge(f"RSpace accepts uploads up to 50 MB; {filename!r} is {size} B")
        data = await trio.to_thread.run_sync(src.read_bytes)
        boundary = "docfs" + secrets.token_hex(16)
        parts = bytearray()
        for key, value in fields.items():
            parts += (
                f'--{boundary}\r\nContent-Disposition: form-data; name="{key}"\r\n\r\n{value}\r\n'
            ).encode()
        quoted = filename.replace("\\", "\\\\").replace('"', '\\"')
        parts += (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
            f'filename="{quoted}"\r\nContent-Type: application/octet-stream\r\n\r\n'
        ).encode()
        parts += data + f"\r\n--{boundary}--\r\n".encode()
        response = await self._call(
            "POST",
            path,
            endpoint=endpoint,
            body=bytes(parts),
            headers={**JSON_ACCEPT, "Content-Type": f"multipart/form-data; boundary={boundary}"},
            idempotent=False,
            status_map=status_map,
        )
        info = _json(response)
        if not isinstance(info, dict) or "id" not in info:
            raise errors.ProtocolError("RSpace upload answer has no file id")
        return info

    # ---- entries ---------------------------------------------------------------------------

    async def _home_id(self) -> int:
        if self._home is None:
            data = await self._get(
                "/folders/tree", endpoint="folders.tree", params={"pageSize": 1, "pageNumber": 0}
            )
            self._home = int(data["folderId"])
        return self._home

    def _owned(self, owner: Mapping[str, Any] | None) -> bool:
        return bool(owner) and owner is not None and owner.get("homeFolderId") == self._home

    @staticmethod
    def _folder_ops(kind: str, name: str, section: str, system: bool, owned: bool) -> frozenset[Op]:
        if kind == HOME:
            return frozenset({Op.MKDIR})
        if kind == GALLERY:
            return frozenset()
        if kind in (SECTION, GFOLDER):
            ops = {Op.MKDIR}
            if section in UPLOAD_SECTIONS:
                ops.add(Op.CREATE_FILE)
            if kind == GFOLDER and not system and owned:
                ops.add(Op.REMOVE)
            return frozenset(ops)
        if kind == NOTEBOOK:
            return frozenset({Op.MKDIR, Op.REMOVE, Op.RENAME}) if owned else frozenset()
        if system:
            return frozenset() if name in _UNCREATABLE else frozenset({Op.MKDIR})
        if owned:
            return frozenset({Op.MKDIR, Op.REMOVE, Op.RENAME})
        return frozenset({Op.MKDIR})  # e.g. a group's shared folder

    def _dir_entry(
        self,
        *,
        gid: str,
        name: str,
        kind: str,
        parent: str,
        modified: str,
        owner: Mapping[str, Any] | None,
        system: bool,
        section: str = "",
    ) -> Entry:
        owned = self._owned(owner)
        meta = {"globalId": gid}
        if owner:
            meta["owner"] = str(owner.get("username", ""))
        return Entry(
            id=gid,
            name=name,
            kind=Kind.DIR,
            size=0,
            mtime=_ts(modified),
            version=modified,
            meta=meta,
            ops=self._folder_ops(kind, name, section, system, owned),
            extra={
                "type": kind,
                "id": gid[2:],
                "parent": parent,
                "section": section,
                "system": "1" if system else "",
                "owned": "1" if owned else "",
            },
        )

    def _document_entry(
        self,
        doc: Mapping[str, Any],
        parent: str,
        shares: Sequence[ShareInfo] | None = None,
    ) -> Entry:
        """A document directory; ``doc`` is a tree record or an ``ApiDocument``."""
        owner = doc.get("owner")
        owned = self._owned(owner)
        meta = {"globalId": str(doc["globalId"])}
        if owner:
            meta["owner"] = str(owner.get("username", ""))
        full = "form" in doc
        if full:
            meta["tags"] = str(doc.get("tags") or "")
            meta["form"] = str((doc.get("form") or {}).get("name") or "")
            meta["shares"] = json.dumps(
                [
                    {
                        "id": s.id,
                        "target": f"{s.target_type}:{s.target_id}",
                        "permission": s.permission,
                    }
                    for s in shares or ()
                ]
            )
        ops = {Op.CREATE_FILE, Op.SET_META}
        if owned:
            ops |= {Op.REMOVE, Op.RENAME}
        return Entry(
            id=str(doc["globalId"]),
            name=str(doc["name"]),
            kind=Kind.DIR,
            size=0,
            mtime=_ts(doc.get("lastModified")),
            version=str(doc.get("lastModified")),
            meta=meta,
            ops=frozenset(ops),
            extra={
                "type": DOCUMENT,
                "id": str(doc["id"]),
                "parent": parent,
                "owned": "1" if owned else "",
                "meta": "full" if full else "partial",
            },
            partial_meta=not full,
            prefilled=bool(doc.get("fields")),
        )

    def _media_entry(
        self,
        file_id: int,
        name: str,
        parent: str,
        info: _MediaInfo | None,
        mtime: float | None,
        owner: str = "",
        section: str = "",
    ) -> Entry:
        meta = {"globalId": f"GL{file_id}"}
        if owner:
            meta["owner"] = owner
        if info is not None:
            meta["caption"] = info.caption
        return Entry(
            id=f"GL{file_id}",
            name=name,
            kind=Kind.FILE,
            size=info.size if info is not None else None,
            mtime=mtime,
            version=str(info.version) if info is not None else f"t{mtime}",
            meta=meta,
            # a new version takes the uploaded filename as its name (see ``replace_file``)
            ops=frozenset({Op.REPLACE, Op.RENAME} if _sendable(name) else {Op.RENAME}),
            extra={"type": MEDIA, "id": str(file_id), "parent": parent, "section": section},
        )

    def _tree_entry(
        self, rec: Mapping[str, Any], parent: Entry, media: Mapping[int, _MediaInfo]
    ) -> Entry | None:
        kind, gid, name = rec.get("type"), str(rec["globalId"]), str(rec["name"])
        parent_id = parent.extra["id"]
        ptype = parent.extra["type"]
        owner = rec.get("owner")
        if kind == "FOLDER" or kind == "NOTEBOOK":
            section = ""
            if kind == "NOTEBOOK":
                dkind = NOTEBOOK
            elif not gid.startswith("GF"):
                dkind = FOLDER
            elif ptype == HOME:
                dkind = GALLERY
            elif ptype == GALLERY:
                dkind, section = SECTION, name
            else:
                dkind, section = GFOLDER, parent.extra.get("section", "")
            return self._dir_entry(
                gid=gid,
                name=name,
                kind=dkind,
                parent=parent_id,
                modified=str(rec["lastModified"]),
                owner=owner,
                system=bool(rec.get("systemFolder")),
                section=section,
            )
        if kind == "DOCUMENT":
            return self._document_entry(rec, parent_id)
        if kind == "MEDIA":
            file_id = int(rec["id"])
            return self._media_entry(
                file_id,
                name,
                parent_id,
                media.get(file_id),
                _ts(rec.get("lastModified")),
                str((owner or {}).get("username", "")),
                parent.extra.get("section", ""),
            )
        return None  # snippets (and unknown kinds) are not files of this mapping

    def _document_children(self, doc: Mapping[str, Any], parent: Entry) -> list[Entry]:
        gid = str(doc["globalId"])
        entries: list[Entry] = []
        seen: set[int] = set()
        for fld in doc.get("fields") or []:
            content = str(fld.get("content") or "")
            entries.append(
                Entry(
                    id=f"{gid}/FD{fld['id']}",
                    name=f"{fld['name']}.html",
                    kind=Kind.FILE,
                    size=len(content.encode("utf-8")),
                    mtime=_ts(fld.get("lastModified")),
                    version=_digest(content),
                    meta={"globalId": f"FD{fld['id']}", "type": str(fld.get("type", ""))},
                    # a field goes only with its document (``rm -r`` of the document works)
                    ops=frozenset({Op.REPLACE, Op.REMOVE_WITH_DIR}),
                    extra={"type": FIELD, "id": str(fld["id"]), "doc": str(doc["id"])},
                )
            )
        for fld in doc.get("fields") or []:
            for f in fld.get("files") or []:
                if int(f["id"]) in seen:
                    continue
                seen.add(int(f["id"]))
                entries.append(self._linked_entry(doc, f))
        return entries

    @staticmethod
    def _linked_entry(doc: Mapping[str, Any], f: Mapping[str, Any]) -> Entry:
        return Entry(
            id=f"{doc['globalId']}/GL{f['id']}",
            name=str(f["name"]),
            kind=Kind.FILE,
            size=int(f["size"]),
            mtime=_ts(f.get("created")),
            version=str(f.get("version")),
            meta={"globalId": f"GL{f['id']}", "caption": str(f.get("caption") or "")},
            ops=frozenset(
                {Op.REPLACE, Op.REMOVE_WITH_DIR}
                if _sendable(str(f["name"]))
                else {Op.REMOVE_WITH_DIR}
            ),
            extra={"type": LINKED, "id": str(f["id"]), "doc": str(doc["id"])},
        )

    # ---- reading ---------------------------------------------------------------------------

    async def root(self) -> Entry:
        home = await self._home_id()
        info = await self._get(f"/folders/{home}", endpoint="folders.get")
        entry = self._dir_entry(
            gid=str(info["globalId"]),
            name=str(info["name"]),
            kind=HOME,
            parent="",
            modified=str(info["lastModified"]),
            owner={"homeFolderId": home},
            system=False,
        )
        return entry

    async def list_dir(self, directory: Entry) -> AsyncIterator[Entry]:
        kind = directory.extra.get("type")
        if kind == DOCUMENT:
            doc = await self._get(f"/documents/{_num(directory)}", endpoint="documents.get")
            for entry in self._document_children(doc, directory):
                yield entry
            return
        if kind not in WORKSPACE_DIRS and kind not in GALLERY_DIRS:
            raise errors.NotSupported(f"{directory.name!r} is not a directory")
        await self._home_id()
        page = 0
        cursor = _FilesCursor()  # one walk through /files per listing, not one per tree page
        while True:
            data = await self._get(
                f"/folders/tree/{_num(directory)}",
                endpoint="folders.tree",
                params={"pageSize": PAGE, "pageNumber": page},
                status_map=_TREE_MAP,
            )
            records = data.get("records") or []
            media: dict[int, _MediaInfo] = {}
            if any(r.get("type") == "MEDIA" for r in records):
                media = await self._media_infos(records, cursor)
            for rec in records:
                child = self._tree_entry(rec, directory, media)
                if child is not None:
                    yield child
            page += 1
            # follow totalHits, never the next link (it drops typesToInclude)
            if not records or page * PAGE >= int(data.get("totalHits", 0)):
                return

    async def _media_infos(
        self, records: Sequence[Mapping[str, Any]], cursor: _FilesCursor
    ) -> dict[int, _MediaInfo]:
        """Sizes and versions of the MEDIA records, from the index or fresh ``/files`` pages."""
        stamps = {
            int(r["id"]): _ts(r.get("lastModified")) or 0.0
            for r in records
            if r.get("type") == "MEDIA"
        }
        async with self._media_lock:
            wanted = {
                i
                for i, modified in stamps.items()
                if (info := self._media.get(i)) is None or info.stale(modified)
            }
            if wanted:
                await self._refresh_media(wanted, cursor)
                # read after this tree page: valid until the tree shows another lastModified
                for i in wanted:
                    if i in self._media:
                        self._media[i].modified = stamps[i]
            return {i: self._media[i] for i in stamps if i in self._media}

    async def _refresh_media(self, wanted: set[int], cursor: _FilesCursor) -> None:
        # /files is newest first, like the tree: files changed since they were indexed come
        # early, and a listing's later tree pages continue where its earlier ones stopped
        missing = set(wanted)
        while missing and not cursor.done:
            response = await self._call(
                "GET",
                "/files",
                endpoint="files.list",
                params={"pageSize": PAGE, "pageNumber": cursor.page},
                headers=JSON_ACCEPT,
            )
            fetched, data = _server_time(response), _json(response)
            for f in data.get("files") or []:
                self._remember(f, fetched)
                missing.discard(int(f["id"]))
            cursor.page += 1
            if not data.get("files") or cursor.page * PAGE >= int(data.get("totalHits", 0)):
                cursor.done = True
        for file_id in missing:
            # not in the caller's own /files listing (e.g. a colleague's file in a group folder)
            try:
                response = await self._call(
                    "GET", f"/files/{file_id}", endpoint="files.get", headers=JSON_ACCEPT
                )
            except errors.NotFound:
                continue
            self._remember(_json(response), _server_time(response))

    def _remember(self, f: Mapping[str, Any], fetched: float) -> _MediaInfo:
        info = _MediaInfo(
            size=int(f["size"]),
            version=int(f["version"]),
            caption=str(f.get("caption") or ""),
            fetched=fetched,
        )
        self._media[int(f["id"])] = info
        return info

    async def stat(self, entry: Entry) -> Entry:
        await self._home_id()  # ownership is judged against the Home folder
        kind = entry.extra.get("type")
        if kind in WORKSPACE_DIRS or kind in GALLERY_DIRS:
            info = await self._get(
                f"/folders/{_num(entry)}", endpoint="folders.get", status_map=_FOLDER_STAT_MAP
            )
            return self._dir_entry(
                gid=str(info["globalId"]),
                name=str(info["name"]),
                kind=str(kind),
                parent=entry.extra.get("parent", ""),
                modified=str(info["lastModified"]),
                owner={
                    "homeFolderId": self._home if entry.extra.get("owned") else None,
                    "username": entry.meta.get("owner", ""),
                },
                system=bool(info.get("systemFolder")),
                section=entry.extra.get("section", ""),
            )
        if kind == DOCUMENT:
            return await self._full_document(_num(entry), entry.extra.get("parent", ""))
        if kind == MEDIA:
            response = await self._call(
                "GET", f"/files/{_num(entry)}", endpoint="files.get", headers=JSON_ACCEPT
            )
            info = self._remember(_json(response), _server_time(response))
            name = str(_json(response)["name"])
            mtime = entry.mtime if str(info.version) == entry.version else _server_time(response)
            return self._media_entry(
                _num(entry),
                name,
                entry.extra.get("parent", ""),
                info,
                mtime,
                entry.meta.get("owner", ""),
                entry.extra.get("section", ""),
            )
        if kind in (FIELD, LINKED):
            doc = await self._get(f"/documents/{entry.extra['doc']}", endpoint="documents.get")
            for child in self._document_children(doc, entry):
                if child.id == entry.id:
                    return child
            raise errors.NotFound(f"{entry.name!r} is no longer part of the document")
        raise errors.NotFound(f"unknown RSpace entry {entry.id!r}")

    async def _full_document(self, doc_id: int, parent: str) -> Entry:
        """A document with tags, form and (for its owner: one more request) its shares."""
        doc = await self._get(f"/documents/{doc_id}", endpoint="documents.get")
        shares = await self._item_shares(int(doc["id"])) if self._owned(doc.get("owner")) else []
        return self._document_entry(doc, parent, shares)

    async def entry_by_id(self, global_id: str) -> Entry:
        """The entry of a global id (``SD12``, ``NB3``, ``FL4``, ``GF5``, ``GL6``).

        For callers that know an object by the id the mount shows (``user.docfs.id``) rather
        than by a listing, such as ``docfs share``. A field or a linked file
        (``SD12/FD34``) is not an object of its own here.
        """
        match = re.fullmatch(r"([A-Za-z]{2})(\d+)", global_id)
        if match is None:
            raise errors.InvalidArgument(f"not an RSpace global id: {global_id!r}")
        prefix, num = match.group(1).upper(), int(match.group(2))
        home = await self._home_id()
        if prefix == "SD":
            # parentFolderId is set only for the owner's own documents
            doc = await self._get(f"/documents/{num}", endpoint="documents.get")
            parent = doc.get("parentFolderId")
            return await self._full_document(num, "" if parent is None else str(parent))
        if prefix in ("FL", "NB", "GF"):
            info = await self._get(
                f"/folders/{num}", endpoint="folders.get", status_map=_FOLDER_STAT_MAP
            )
            return self._folder_from_api(info, home)
        if prefix == "GL":
            response = await self._call(
                "GET", f"/files/{num}", endpoint="files.get", headers=JSON_ACCEPT
            )
            data = _json(response)
            media = self._remember(data, _server_time(response))
            return self._media_entry(
                num,
                str(data["name"]),
                str(data.get("parentFolderId") or ""),
                media,
                _ts(data.get("created")),
                section=section_for(str(data["name"])),
            )
        raise errors.NotSupported(f"{global_id}: not a folder, notebook, document or file")

    def _folder_from_api(self, info: Mapping[str, Any], home: int) -> Entry:
        """An entry from an ``ApiFolder``, which has no owner: ``parentFolderId`` tells."""
        gid, name = str(info["globalId"]), str(info["name"])
        media_type = info.get("mediaType")
        system = bool(info.get("systemFolder"))
        if int(info["id"]) == home:
            kind = HOME
        elif info.get("notebook"):
            kind = NOTEBOOK
        elif not gid.startswith("GF"):
            kind = FOLDER
        elif not media_type:
            kind = GALLERY  # the Gallery root is the only GF folder without a section
        else:
            kind = SECTION if system and name == media_type else GFOLDER
        parent = info.get("parentFolderId")
        # the server fills parentFolderId only for the caller's own folders
        owned = kind == HOME or parent is not None
        return self._dir_entry(
            gid=gid,
            name=name,
            kind=kind,
            parent="" if parent is None else str(parent),
            modified=str(info["lastModified"]),
            owner={"homeFolderId": home if owned else None},
            system=system,
            section=str(media_type or ""),
        )

    async def download(
        self, entry: Entry, sink: Sink, start: int = 0, end: int | None = None
    ) -> None:
        kind = entry.extra.get("type")
        if kind == FIELD:
            doc = await self._get(f"/documents/{entry.extra['doc']}", endpoint="documents.get")
            field = next(
                (f for f in doc.get("fields") or [] if str(f["id"]) == entry.extra["id"]), None
            )
            if field is None:
                raise errors.NotFound(f"field {entry.name!r} is gone")
            data = str(field.get("content") or "").encode("utf-8")
            await sink(data[start:end])
            return
        if kind not in (MEDIA, LINKED):
            raise errors.NotSupported(f"{entry.name!r} is not a file")
        delivered = 0
        for attempt in range(RATE_ROUNDS):
            try:
                delivered = await self.http.download(
                    f"{API}/files/{_num(entry)}/file",
                    sink,
                    endpoint="files.download",
                    start=start,
                    end=end,
                    ranges=False,  # the server ignores Range
                    status_map={404: errors.NotFound},
                )
                break
            except errors.RateLimited:
                if attempt + 1 >= RATE_ROUNDS:
                    raise
                await trio.sleep(min(60.0, max(0.1, self._watch.wait or 1.0)))
        expected = (entry.size or 0) if end is None else min(end, entry.size or 0)
        if delivered == 0 and expected > start:
            # the server logs a missing blob and answers 200 with an empty body
            raise errors.RemoteUnavailable(
                f"RSpace sent no bytes for {entry.name!r} (its stored file is missing)"
            )

    # ---- writing ---------------------------------------------------------------------------

    async def create_file(self, parent: Entry, name: str, src: Path) -> Entry:
        kind = parent.extra.get("type")
        if kind in (SECTION, GFOLDER):
            return await self._upload_to_gallery(parent, name, src)
        if kind == DOCUMENT:
            return await self._attach(parent, name, src)
        if kind in WORKSPACE_DIRS:
            log.warning(
                "RSpace stores files only in the Gallery: copy %r into Gallery/%s (or into a "
                "document directory to attach it)",
                name,
                section_for(name),
            )
            raise errors.NotSupported("plain files go into a Gallery section or a document")
        log.warning("RSpace: files cannot be created in %r", parent.name)
        raise errors.NotSupported(f"cannot create files in {parent.name!r}")

    def check_name(self, parent: Entry, name: str, kind: Kind) -> None:
        """Refuse at once (EINVAL, no request) what the server would refuse or store changed.

        Folders and documents: RSpace trims names, replaces newlines and allows 255
        characters. Files: the extension alone picks the Gallery section, so a file can never
        be stored in another section's folder; audio and video cannot be linked into a
        document; the name travels as the multipart filename, which cannot carry some
        characters (``_check_filename``). The same checks run again before each upload.
        """
        if kind is Kind.DIR:
            _check_name(name)
            return
        ptype = parent.extra.get("type")
        if ptype in (SECTION, GFOLDER):
            self._check_section(parent, name)
        elif ptype == DOCUMENT:
            self._check_attachable(name)

    @staticmethod
    def _check_filename(name: str) -> None:
        """Refuse what the multipart filename cannot carry unchanged (``_sendable``)."""
        if not _sendable(name):
            log.warning(
                "RSpace: %r cannot be uploaded under this name (no quote, backslash or line "
                "break in Gallery file names)",
                name,
            )
            raise errors.InvalidArgument(f"RSpace cannot store {name!r} unchanged")

    @classmethod
    def _check_section(cls, parent: Entry, name: str) -> str:
        cls._check_filename(name)
        section, wanted = parent.extra.get("section", ""), section_for(name)
        if section != wanted:
            log.warning(
                "RSpace puts %r in the Gallery section %s, not %s: copy it there",
                name,
                wanted,
                section,
            )
            raise errors.InvalidArgument(f"{name!r} belongs in Gallery/{wanted}")
        return section

    @classmethod
    def _check_attachable(cls, name: str) -> str:
        cls._check_filename(name)
        section = section_for(name)
        if section in ("Audios", "Videos"):
            log.warning("RSpace cannot link audio or video files into documents: %r", name)
            raise errors.InvalidArgument("audio and video files cannot be linked into documents")
        return section

    async def _upload_to_gallery(self, parent: Entry, name: str, src: Path) -> Entry:
        section = self._check_section(parent, name)
        info = await self._multipart(
            "/files",
            endpoint="files.upload",
            filename=name,
            src=src,
            fields={"folderId": parent.extra["id"]},
            status_map=_UPLOAD_MAP,
        )
        media = self._remember(info, 0.0)  # fetched=0: the next listing re-reads it once
        return self._media_entry(
            int(info["id"]),
            str(info["name"]),
            parent.extra["id"],
            media,
            _ts(info.get("created")),
            "",
            section,
        )

    async def _attach(self, doc_entry: Entry, name: str, src: Path) -> Entry:
        section = self._check_attachable(name)
        doc = await self._get(f"/documents/{_num(doc_entry)}", endpoint="documents.get")
        text = next((f for f in doc.get("fields") or [] if f.get("type") == "text"), None)
        if text is None:
            log.warning(
                "RSpace: document %r has no text field to link %r from", doc_entry.name, name
            )
            raise errors.NotSupported("the document has no text field to link the file from")
        info = await self._multipart(
            "/files",
            endpoint="files.upload",
            filename=name,
            src=src,
            fields={},
            status_map=_UPLOAD_MAP,
        )
        content = str(text.get("content") or "") + f"<fileId={info['id']}>"
        try:
            response = await self._send_json(
                "PUT",
                f"/documents/{doc['id']}",
                {"fields": [{"id": text["id"], "content": content}]},
                endpoint="documents.update",
                status_map=_PUT_MAP,
            )
        except errors.DocfsError:
            log.warning(
                "uploaded %r to Gallery/%s/Api Inbox (GL%s) but could not link it into %r",
                name,
                section,
                info["id"],
                doc_entry.name,
            )
            raise
        updated = _json(response)
        for fld in updated.get("fields") or []:
            for f in fld.get("files") or []:
                if f["id"] == info["id"]:
                    return self._linked_entry(updated, f)
        return self._linked_entry(updated, info)

    async def replace_file(self, entry: Entry, src: Path) -> Entry:
        kind = entry.extra.get("type")
        if kind == FIELD:
            return await self._write_field(entry, src)
        if kind not in (MEDIA, LINKED):
            raise errors.NotSupported(f"{entry.name!r} cannot be overwritten")
        # the server renames the file to the uploaded filename: send the current name
        info = await self._multipart(
            f"/files/{_num(entry)}/file",
            endpoint="files.version",
            filename=entry.name,
            src=src,
            fields={},
            status_map=_VERSION_MAP,
        )
        # use this answer, not GET /files/{id}: that one may be served from a stale cache
        media = self._remember(info, 0.0)
        if kind == LINKED:
            return self._linked_entry(
                {"globalId": entry.id.split("/")[0], "id": entry.extra["doc"]}, info
            )
        return self._media_entry(
            int(info["id"]),
            str(info["name"]),
            entry.extra.get("parent", ""),
            media,
            time.time(),
            entry.meta.get("owner", ""),
            entry.extra.get("section", ""),
        )

    async def _write_field(self, entry: Entry, src: Path) -> Entry:
        raw = await trio.to_thread.run_sync(src.read_bytes)
        try:
            content = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise errors.InvalidArgument(f"{entry.name}: field content must be UTF-8") from None
        response = await self._send_json(
            "PUT",
            f"/documents/{entry.extra['doc']}",
            {"fields": [{"id": int(entry.extra["id"]), "content": content}]},
            endpoint="documents.update",
            status_map=_PUT_MAP,
        )
        doc = _json(response)
        for child in self._document_children(doc, entry):
            if child.id == entry.id:
                return child
        raise errors.ProtocolError("RSpace update answer lacks the field just written")

    async def mkdir(self, parent: Entry, name: str) -> Entry:
        kind = parent.extra.get("type")
        _check_name(name)
        if Op.MKDIR not in parent.ops:
            log.warning("RSpace: no new folders inside %r", parent.name)
            raise errors.NotSupported(f"cannot create directories in {parent.name!r}")
        if kind == NOTEBOOK:
            response = await self._create(
                parent,
                "/documents",
                {"name": name, "parentFolderId": _num(parent)},
                endpoint="documents.create",
            )
            return self._document_entry(_json(response), parent.extra["id"])
        return await self._new_folder(parent, name, notebook=False)

    async def _create(
        self, parent: Entry, path: str, body: dict[str, Any], *, endpoint: str
    ) -> httpx.Response:
        """POST a new folder or document; a 500 means "no such parent" only if it is gone.

        RSpace answers 500 for a parent folder that does not exist (reference §3), and for any
        other failure too: with the parent still there, the 500 is a transient failure, which
        the vfs checks for and retries without making a duplicate.
        """
        try:
            return await self._send_json(
                "POST", path, body, endpoint=endpoint, status_map=_CREATE_MAP
            )
        except errors.NotFound as exc:
            if exc.status != 500:
                raise
            try:
                await self.stat(parent)
            except errors.NotFound:
                raise exc from None
            raise errors.RemoteUnavailable(str(exc), status=500) from None

    async def mkdir_notebook(self, parent: Entry, name: str) -> Entry:
        """A new notebook (``docfs mkdir --notebook``): only in Workspace folders."""
        _check_name(name)
        if parent.extra.get("type") not in (HOME, FOLDER) or Op.MKDIR not in parent.ops:
            log.warning("RSpace: notebooks can only be created in Workspace folders")
            raise errors.NotSupported(f"cannot create a notebook in {parent.name!r}")
        return await self._new_folder(parent, name, notebook=True)

    async def _new_folder(self, parent: Entry, name: str, *, notebook: bool) -> Entry:
        response = await self._create(
            parent,
            "/folders",
            {"name": name, "parentFolderId": _num(parent), "notebook": notebook},
            endpoint="folders.create",
        )
        info = _json(response)
        gallery = parent.extra.get("type") in GALLERY_DIRS
        return self._dir_entry(
            gid=str(info["globalId"]),
            name=str(info["name"]),
            kind=NOTEBOOK if notebook else GFOLDER if gallery else FOLDER,
            parent=parent.extra["id"],
            modified=str(info["lastModified"]),
            owner={"homeFolderId": self._home},
            system=False,
            section=parent.extra.get("section", "") if gallery else "",
        )

    def refusal_hint(self, entry: Entry, op: Op) -> str | None:
        if op is Op.REPLACE and entry.extra.get("type") in (MEDIA, LINKED):
            return (
                "RSpace names a new version after the uploaded file, and a quote, backslash or "
                "line break cannot be sent unchanged: copy it to a new name and write that"
            )
        if op is Op.CREATE_FILE and entry.extra.get("type") in (HOME, FOLDER, NOTEBOOK):
            return (
                "RSpace keeps files in the Gallery: copy it into Gallery/<section>, "
                "or into a document's directory to attach it to the document"
            )
        return _more_hints(entry, op)

    async def remove(self, entry: Entry) -> None:
        kind = entry.extra.get("type")
        if kind == DOCUMENT:
            await self._call(
                "DELETE",
                f"/documents/{_num(entry)}",
                endpoint="documents.delete",
                status_map=_DELETE_DOC_MAP,
            )
            return
        if kind in (FOLDER, NOTEBOOK, GFOLDER) and Op.REMOVE in entry.ops:
            # the server deletes non-empty folders whole: keep POSIX rmdir semantics
            data = await self._get(
                f"/folders/tree/{_num(entry)}",
                endpoint="folders.tree",
                params={"pageSize": 1, "pageNumber": 0},
                status_map=_TREE_MAP,
            )
            if int(data.get("totalHits", 0)) > 0:
                raise errors.NotEmpty(f"{entry.name!r} is not empty")
            await self._call(
                "DELETE",
                f"/folders/{_num(entry)}",
                endpoint="folders.delete",
                status_map=_DELETE_FOLDER_MAP,
            )
            return
        if kind in (MEDIA, LINKED):
            log.warning("RSpace has no way to delete a Gallery file (%r)", entry.name)
        elif kind == FIELD:
            log.warning(
                "RSpace: a field (%r) cannot be deleted alone; remove the whole document",
                entry.name,
            )
        else:
            log.warning("RSpace: %r cannot be removed", entry.name)
        raise errors.NotSupported(f"cannot remove {entry.name!r}")

    async def rename(self, entry: Entry, new_parent: Entry, new_name: str) -> Entry:
        kind = entry.extra.get("type")
        moving = new_parent.extra.get("id") != entry.extra.get("parent")
        if not moving and new_name == entry.name:
            return entry
        if kind == DOCUMENT:
            return await self._rename_document(entry, new_parent, new_name, moving)
        if kind in (FOLDER, NOTEBOOK):
            if new_name != entry.name:
                log.warning("RSpace cannot rename folders or notebooks (%r)", entry.name)
                raise errors.NotSupported("RSpace cannot rename folders or notebooks")
            if not moving:
                return entry
            if new_parent.extra.get("type") in GALLERY_DIRS:
                raise self._unmovable(entry, "into the Gallery")
            if new_parent.extra.get("type") not in (HOME, FOLDER):
                raise errors.InvalidArgument("folders and notebooks cannot go into a notebook")
            if not self._move_api:
                raise await self._no_move_api(entry)
            await self._move(entry, new_parent)
            return self._moved(entry, new_parent)
        if kind == MEDIA and moving:
            raise self._unmovable(entry, "to another Gallery folder")
        log.warning("RSpace cannot rename %r", entry.name)
        raise errors.NotSupported(f"RSpace cannot rename {entry.name!r}")

    @staticmethod
    def _unmovable(entry: Entry, where: str) -> errors.DocfsError:
        """A move no API call makes: EPERM, not EXDEV.

        EXDEV makes ``mv`` copy and then delete the source. A Gallery file cannot be deleted,
        so that would leave a second copy behind and fail; a document or folder copied into
        the Gallery would turn into a folder of ``.html`` files and stop half way at the first
        file that belongs to another section. So the move is refused up front.
        """
        log.warning("RSpace cannot move %r %s (copy it with cp instead)", entry.name, where)
        return errors.NotSupported(f"RSpace cannot move {entry.name!r} {where}")

    async def _rename_document(
        self, entry: Entry, new_parent: Entry, new_name: str, moving: bool
    ) -> Entry:
        target = new_parent.extra.get("type")
        if moving and target in GALLERY_DIRS:
            raise self._unmovable(entry, "into the Gallery")
        if moving and target not in WORKSPACE_DIRS:
            raise errors.NotSupported(f"a document cannot go into {new_parent.name!r}")
        if new_name != entry.name:
            _check_name(new_name)
        if moving and not self._move_api:
            raise await self._no_move_api(entry)
        if moving:
            await self._move(entry, new_parent)
        result = self._moved(entry, new_parent) if moving else entry
        if new_name != entry.name:
            response = await self._send_json(
                "PUT",
                f"/documents/{_num(entry)}",
                {"name": new_name},
                endpoint="documents.update",
                status_map=_PUT_MAP,
            )
            result = self._document_entry(_json(response), result.extra["parent"])
        return result

    async def _no_move_api(self, entry: Entry) -> errors.DocfsError:
        """A move on a server without ``POST /documents/move`` (before 2.16), refused locally.

        EXDEV only where ``mv``'s copy and delete gives the same result: an empty folder
        (``mkdir`` + ``rmdir``). A document copied elsewhere would become a folder of
        ``.html`` files (a new folder is never a document) and its fields cannot be deleted
        one by one; a notebook would become a plain folder; a non-empty folder holds such
        documents. Those are EPERM, with the reason in the log.
        """
        where = f"RSpace {'.'.join(map(str, self._release or ()))}".rstrip()
        if entry.extra.get("type") == FOLDER:
            data = await self._get(
                f"/folders/tree/{_num(entry)}",
                endpoint="folders.tree",
                params={"pageSize": 1, "pageNumber": 0},
                status_map=_TREE_MAP,
            )
            if int(data.get("totalHits", 0)) == 0:
                log.info("%s has no move API; mv copies the empty folder %r", where, entry.name)
                return errors.CrossDevice(f"{where} has no move API")
        log.warning(
            "%s has no move API (POST /documents/move is new in RSpace 2.16): cannot move %r; "
            "move it in the RSpace web interface",
            where,
            entry.name,
        )
        return errors.NotSupported(f"{where} cannot move {entry.name!r}")

    async def _move(self, entry: Entry, new_parent: Entry) -> None:
        try:
            await self._send_json(
                "POST",
                "/documents/move",
                {
                    "docId": _num(entry),
                    "sourceFolderId": int(entry.extra["parent"]),
                    "targetFolderId": _num(new_parent),
                },
                endpoint="documents.move",
                status_map=_MOVE_MAP,
            )
        except errors.NotSupported as exc:
            if exc.status in (404, 405):
                # /status gave no release that told us: remember, and refuse like one
                self._move_api = False
                raise await self._no_move_api(entry) from None
            log.warning("RSpace refused to move %r into %r: %s", entry.name, new_parent.name, exc)
            raise

    @staticmethod
    def _moved(entry: Entry, new_parent: Entry) -> Entry:
        return Entry(
            id=entry.id,
            name=entry.name,
            kind=entry.kind,
            size=entry.size,
            mtime=entry.mtime,
            version=entry.version,
            meta=entry.meta,
            read_only=entry.read_only,
            ops=entry.ops,
            extra={**entry.extra, "parent": new_parent.extra["id"]},
        )

    async def set_meta(self, entry: Entry, key: str, value: str | None) -> Entry:
        if entry.extra.get("type") != DOCUMENT or key != "tags":
            raise errors.NotSupported(f"user.rspace.{key} is read-only here")
        tags = value or ""
        bad = [c for c in TAG_FORBIDDEN if c in tags]
        if bad:
            log.warning("RSpace refuses tags containing %s: %r", " ".join(bad), tags)
            raise errors.InvalidArgument("RSpace tags may not contain <, >, \\ or /")
        response = await self._send_json(
            "PUT",
            f"/documents/{_num(entry)}",
            {"tags": tags},
            endpoint="documents.update",
            status_map=_PUT_MAP,
        )
        doc = _json(response)
        await self._home_id()
        shares = await self._item_shares(int(doc["id"])) if self._owned(doc.get("owner")) else []
        return self._document_entry(doc, entry.extra.get("parent", ""), shares)

    # ---- sharing ---------------------------------------------------------------------------

    async def groups(self) -> list[Group]:
        """The groups the user belongs to (``GET /groups``, a bare array)."""
        data = await self._get("/groups", endpoint="groups.list")
        return [
            Group(
                id=int(g["id"]),
                name=str(g.get("name") or ""),
                unique_name=str(g.get("uniqueName") or ""),
                type=str(g.get("type") or ""),
                shared_folder_id=g.get("sharedFolderId"),
                members=tuple(
                    (int(m["id"]), str(m.get("username") or ""), str(m.get("role") or ""))
                    for m in g.get("members") or []
                ),
            )
            for g in data
        ]

    @staticmethod
    def pick_group(groups: Sequence[Group], spec: str) -> Group:
        """The one group ``spec`` names: display name, unique name, ``GP`` id or number."""
        ident = spec[2:] if spec.upper().startswith("GP") and spec[2:].isdigit() else spec
        matches = [
            g
            for g in groups
            if (ident.isdigit() and g.id == int(ident)) or spec in (g.name, g.unique_name)
        ]
        if len(matches) != 1:
            found = "no" if not matches else "several"
            raise errors.InvalidArgument(f"{found} groups match {spec!r}")
        return matches[0]

    @staticmethod
    def _shareable(entry: Entry) -> int:
        if entry.extra.get("type") not in (DOCUMENT, NOTEBOOK):
            raise errors.NotSupported("RSpace shares documents and notebooks only")
        return _num(entry)

    async def share(
        self,
        entry: Entry,
        *,
        groups: Sequence[str] = (),
        users: Sequence[str] = (),
        permission: str = "read",
        folder: Entry | None = None,
    ) -> ShareResult:
        """Share a document or notebook with groups (name or id) and users (username)."""
        item = self._shareable(entry)
        perm = permission.upper()
        if perm not in ("READ", "EDIT"):
            raise errors.InvalidArgument("permission is read or edit")
        if not groups and not users:
            raise errors.InvalidArgument("share with at least one group or user")
        known = await self.groups()
        group_specs = []
        for spec in groups:
            group = self.pick_group(known, spec)
            body: dict[str, Any] = {"id": group.id, "permission": perm}
            if folder is not None:
                body["sharedFolderId"] = _num(folder)
            group_specs.append(body)
        user_specs = []
        for username in users:
            ids = {uid for g in known for uid, name, _ in g.members if name == username}
            if len(ids) != 1:
                raise errors.InvalidArgument(f"{username!r} is not a member of your groups")
            user_specs.append({"id": ids.pop(), "permission": perm})
        try:
            response = await self._send_json(
                "POST",
                "/share",
                {"itemsToShare": [item], "groups": group_specs, "users": user_specs},
                endpoint="share.create",
                status_map={401: errors.PermissionDenied, 422: errors.InvalidArgument},
            )
        except errors.PermissionDenied:
            # the server answers 401 when not one of the shares could be made
            raise errors.PermissionDenied(
                f"RSpace shared {entry.name!r} with none of them: already shared with them, "
                "or not yours to share"
            ) from None
        data = _json(response)
        # the server says failedShares; older documentation says failedShareIds
        failed = data.get("failedShares", data.get("failedShareIds")) or []
        return ShareResult(
            shares=tuple(ShareInfo.from_json(s) for s in data.get("shareInfos") or []),
            failed=tuple(int(x) for x in failed),
        )

    async def _item_shares(self, item: int) -> list[ShareInfo]:
        return [s async for s in self._share_pages({"sharedItemIds": str(item)})]

    async def _share_pages(self, params: Mapping[str, str]) -> AsyncIterator[ShareInfo]:
        page = 0
        while True:
            data = await self._get(
                "/share",
                endpoint="share.list",
                params={**params, "pageSize": PAGE, "pageNumber": page, "orderBy": "name asc"},
            )
            shares = data.get("shares") or []
            for s in shares:
                yield ShareInfo.from_json(s)
            page += 1
            # the listing's links point at /forms (a server bug): count pages ourselves
            if not shares or page * PAGE >= int(data.get("totalHits", 0)):
                return

    async def shares(self, entry: Entry | None = None) -> AsyncIterator[ShareInfo]:
        """The user's shares, all or those of one document or notebook (paged)."""
        params = {"sharedItemIds": str(self._shareable(entry))} if entry is not None else {}
        async for share in self._share_pages(params):
            yield share

    async def unshare(
        self, entry: Entry, *, groups: Sequence[str] = (), users: Sequence[str] = ()
    ) -> list[ShareInfo]:
        """Remove the shares of ``entry`` (only those with these groups/users if given).

        Returns the shares removed: ``DELETE /share/{id}`` takes share ids, found by listing.
        """
        item = self._shareable(entry)
        targets: set[tuple[str, int]] = set()
        if groups or users:
            known = await self.groups()
            targets |= {("GROUP", self.pick_group(known, g).id) for g in groups}
            for username in users:
                ids = {uid for g in known for uid, name, _ in g.members if name == username}
                targets |= {("USER", uid) for uid in ids}
        removed: list[ShareInfo] = []
        for share in await self._item_shares(item):
            if targets and (share.target_type, share.target_id) not in targets:
                continue
            await self._call(
                "DELETE",
                f"/share/{share.id}",
                endpoint="share.delete",
                status_map={404: errors.NotFound},
            )
            removed.append(share)
        return removed


def _more_hints(entry: Entry, op: Op) -> str | None:
    """``refusal_hint`` for the refusals of the mapping that are not about names."""
    kind = entry.extra.get("type")
    if kind == GALLERY:
        return (
            "the Gallery holds its sections only: copy files into Gallery/<section> "
            f"({', '.join(sorted(UPLOAD_SECTIONS))})"
        )
    if op is Op.CREATE_FILE and kind in (SECTION, GFOLDER):
        return f"the API uploads only into the sections {', '.join(sorted(UPLOAD_SECTIONS))}"
    if op is Op.MKDIR and kind == DOCUMENT:
        return "a document holds its fields and attached files: make the folder beside it"
    if entry.extra.get("system") and op in (Op.MKDIR, Op.REMOVE, Op.RENAME):
        return "RSpace makes and keeps this folder (and those in Shared) itself"
    if kind == MEDIA and op is Op.REMOVE:
        return "the API cannot delete Gallery files: delete it in RSpace's web interface"
    if kind == MEDIA and op is Op.SET_META:
        return "the API cannot change a Gallery file's caption"
    if kind in (FIELD, LINKED) and op in (Op.RENAME, Op.SET_META):
        return "a document's files follow its form and its fields: rename the document instead"
    if not entry.extra.get("owned") and op in (Op.REMOVE, Op.RENAME, Op.MKDIR):
        return "this is not yours (shared with you or made by RSpace): only its owner can change it"
    return None
