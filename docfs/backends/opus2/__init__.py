"""Opus 2 Platform (v8) inbound Documents API: projects, folders and documents as a filesystem.

The URL a user gives is the tenant's base URL (``https://xyz.example.com``). The backend appends
``profile.path_prefix`` (default: nothing, so the projects list is ``{tenant}/projects``) and the
endpoint paths of the vendor's article. The vendor publishes no Swagger, so everything the
article leaves open — paging parameters, JSON envelopes, id types, date format, the download
route, the upload encoding, optional endpoints — is an ``Opus2Profile`` setting. The defaults
are the wire profile of ``shared/reference/opus2.md`` §2; a customer who has the Swagger adapts
docfs with a TOML or JSON profile file instead of code.

Mapping:

========================  ==================================================================
filesystem                Opus 2 call
========================  ==================================================================
``/``                     GET ``projects`` (paged): one directory per project
``/<project>/…``          GET ``projects/{p}/folders`` (one flat, paged listing builds the tree)
                          + GET ``documents/folder/{f}`` (paged); documents at the project root
                          come from GET ``projects/{p}/documents`` (paged, ``folderId`` null)
file attributes           ``size``, ``updatedAt``, ``versionId`` from the listing, never per file
read                      GET ``…/documents/{d}/content`` (``Range`` when the profile allows)
new file                  POST ``documents?rejectDuplicate=true`` (multipart ``file``,
                          ``folderId``); a retry after a lost answer gets 409 and finds the
                          document that did arrive by listing the folder
overwrite                 POST ``…/documents/{d}/replace``: a new version, same id
``mv`` between folders    PUT ``…/documents/{d}/{folderId}`` (same project; else EXDEV)
mkdir / rmdir             POST ``folders`` / DELETE ``folders/{f}/`` (the profile's
                          ``folder_not_empty_status``, a guess, → ENOTEMPTY)
rename / rm of documents  not in the API: EPERM and a log line, no request (unless the
                          profile enables ``document_rename`` / ``document_delete``)
xattrs                    ``user.opus2.<field name>`` (GET ``fields`` + PUT ``…/fields/{id}``),
                          ``user.opus2.version`` and ``user.opus2.id`` (read-only)
refresh                   ``changed_since()``: GET ``documents?afterDate=…``
whole project             ``walk_project()``: the folders list + the project-wide documents list
========================  ==================================================================

Which defaults the vendor documents and which are guesses: docs/protocols/opus2.md and the
README. The vendor's only 409 is "You cannot delete the only version of a document"; a 409 is
never read as "folder not empty" unless the profile says that is what the tenant answers. The
download route is not in the vendor's article at all: a read that meets 404/405 there logs how
to set ``download_path``.

Every request counts against the tenant's rate limit (default 50 per rolling minute per token),
so ``Opus2Profile.limits()`` paces the client below it; a 429 that comes anyway is retried after
its ``Retry-After`` by the HTTP layer.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import mimetypes
import secrets
import tempfile
import tomllib
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote

import httpx
import trio

from docfs import errors
from docfs.backends._http import HttpClient, Limits, StatusMap
from docfs.backends.base import Capabilities, Credentials, Entry, Kind, Op, Sink
from docfs.backends.http_backend import HttpBackend

log = logging.getLogger("docfs.backends.opus2")

# ---------------------------------------------------------------------------------------------
# the wire profile


@dataclass(frozen=True)
class Opus2Profile:
    """Everything about the wire format that the vendor has not published (reference §2).

    The backend reads the settings it needs; the emulator serves whatever profile it is given,
    so tests can prove the backend adapts to another one.
    """

    #: path between the tenant URL and the endpoints, e.g. ``/api/v8``
    path_prefix: str = ""
    #: ``header``: ``<auth_header>: <token>``; ``bearer``: ``Authorization: Bearer <token>``
    auth: Literal["header", "bearer"] = "header"
    auth_header: str = "X-API-Token"
    #: ``page``: page number + page size; ``offset``: item offset + limit
    paging: Literal["page", "offset"] = "page"
    #: query parameter carrying the page number (``page`` paging) or the offset
    page_param: str = "page"
    #: query parameter carrying the page size (or limit)
    size_param: str = "pageSize"
    first_page: int = 1
    #: the page size the backend asks for: the server's maximum, every request counts
    page_size: int = 500
    #: the server's default and maximum page size (used by the emulator)
    default_page_size: int = 100
    max_page_size: int = 500
    #: key of the array in a paged answer; its total count (``None``: the server sends none)
    items_key: str = "items"
    total_key: str | None = "total"
    #: ids are JSON numbers (else opaque strings); ids sent in JSON bodies follow suit
    numeric_ids: bool = False
    #: strftime/strptime format of dates in JSON and in ``afterDate`` (always UTC)
    date_format: str = "%Y-%m-%dT%H:%M:%SZ"
    #: download route, relative to the prefix. NOT in the vendor's article (only the project
    #: setting "Download docs via API" is): a guess, to be set per tenant
    download_path: str = "projects/{projectId}/documents/{documentId}/content"
    #: the download route honours single byte ranges
    ranges: bool = True
    #: multipart part names of an upload
    upload_file_part: str = "file"
    upload_folder_part: str = "folderId"
    #: also send the name as ``filename*=UTF-8''…`` (RFC 6266/5987), which the server prefers to
    #: ``filename="…"``; RFC 7578 forbids it in form data, so a server that refuses or misreads
    #: it can be told ``false`` (names with ``\`` or ``%22``/``%0D``/``%0A`` may then change)
    upload_filename_star: bool = True
    #: project key telling the token user's access (``ReadWrite`` / ``Read``); ``None``: unknown
    access_key: str | None = "access"
    #: the tenant's rate limit: requests per rolling window of ``rate_window`` seconds per token
    rate_limit: int = 50
    rate_window: float = 60.0
    #: status the server answers when the limit is exceeded (429, or 503 on some tenants)
    rate_limit_status: int = 429
    #: optional endpoints that some tenants have (not in the vendor's table):
    #: DELETE ``projects/{p}/documents/{d}``
    document_delete: bool = False
    #: PATCH ``projects/{p}/documents/{d}`` with ``{"name": …}``
    document_rename: bool = False
    #: status of DELETE ``folders/{f}/`` on a folder that still holds something (a guess: the
    #: vendor documents no answer for it; its only 409 is "You cannot delete the only version
    #: of a document"); this status from that route is ENOTEMPTY, any other keeps its meaning
    folder_not_empty_status: int = 409

    def __post_init__(self) -> None:
        if self.auth not in ("header", "bearer"):
            raise ValueError(f"opus2 profile: auth must be 'header' or 'bearer', not {self.auth!r}")
        if self.paging not in ("page", "offset"):
            raise ValueError(f"opus2 profile: paging must be 'page' or 'offset': {self.paging!r}")
        if min(self.page_size, self.default_page_size, self.max_page_size) < 1:
            raise ValueError("opus2 profile: page sizes must be positive")
        if self.rate_limit < 0 or self.rate_window <= 0:
            raise ValueError("opus2 profile: rate_limit must be >= 0 and rate_window > 0")
        if self.rate_limit_status not in (429, 503):
            raise ValueError("opus2 profile: rate_limit_status must be 429 or 503")
        if not 400 <= self.folder_not_empty_status <= 499:
            raise ValueError("opus2 profile: folder_not_empty_status must be a 4xx status")
        if "{projectId}" not in self.download_path or "{documentId}" not in self.download_path:
            raise ValueError("opus2 profile: download_path needs {projectId} and {documentId}")

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> Opus2Profile:
        """Build a profile from configuration values, checking names and types."""
        defaults = cls()
        names = {f.name for f in dataclasses.fields(cls)}
        values: dict[str, Any] = {}
        for key, value in data.items():
            if key not in names:
                raise ValueError(f"opus2 profile: unknown setting {key!r}")
            values[key] = _checked_setting(key, value, getattr(defaults, key))
        return cls(**values)

    @classmethod
    def load(cls, path: Path) -> Opus2Profile:
        """Read a profile from TOML (a ``[profile]`` table or top-level keys) or JSON."""
        text = path.read_text(encoding="utf-8")
        data = json.loads(text) if path.suffix.lower() == ".json" else tomllib.loads(text)
        if isinstance(data, dict) and isinstance(data.get("profile"), dict):
            data = data["profile"]
        if not isinstance(data, dict):
            raise ValueError(f"opus2 profile {path}: expected a table of settings")
        return cls.from_mapping(data)

    def replace(self, **changes: Any) -> Opus2Profile:
        return dataclasses.replace(self, **changes)

    def limits(self) -> Limits:
        """Client pacing that can never exceed ``rate_limit`` in any rolling window.

        A token bucket lets through at most ``burst + rate * window`` requests in a window, so
        the rate is what is left of the limit after the burst, minus one for arrival jitter.
        """
        if self.rate_limit <= 0:
            return Limits(concurrency=4, timeout=60.0)
        burst = max(1, min(5, self.rate_limit // 10))
        spare = max(1, self.rate_limit - burst - 1)
        return Limits(
            requests_per_second=spare / self.rate_window,
            burst=burst,
            concurrency=4,
            timeout=60.0,
        )

    def format_date(self, when: float) -> str:
        return datetime.fromtimestamp(when, UTC).strftime(self.date_format)

    def parse_date(self, value: object) -> float | None:
        """Seconds since the epoch from a JSON date (ISO 8601 or the profile's format)."""
        if not isinstance(value, str) or not value:
            return None
        try:
            stamp = datetime.fromisoformat(value)
        except ValueError:
            try:
                stamp = datetime.strptime(value, self.date_format)
            except ValueError:
                return None
        if stamp.tzinfo is None:
            stamp = stamp.replace(tzinfo=UTC)
        return stamp.timestamp()


_NULLABLE = frozenset({"total_key", "access_key"})


def _checked_setting(key: str, value: Any, default: Any) -> Any:
    if value is None and key in _NULLABLE:
        return None
    ok: bool
    if isinstance(default, bool):
        ok = isinstance(value, bool)
    elif isinstance(default, float):
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        value = float(value) if ok else value
    elif isinstance(default, int):
        ok = isinstance(value, int) and not isinstance(value, bool)
    else:
        ok = isinstance(value, str)
    if not ok:
        raise ValueError(f"opus2 profile: {key} has the wrong type ({type(value).__name__})")
    return value


#: the reference's default wire profile
DEFAULT_PROFILE = Opus2Profile()

#: a deliberately different profile that tests (and the emulator) use to prove the backend
#: adapts by configuration: prefixed paths, bearer auth, offset paging in a ``data`` envelope,
#: numeric ids, fractional-second dates, another download route without ranges, other upload
#: part names, 503 for rate limiting, and the two optional document endpoints
ALTERNATIVE_PROFILE = Opus2Profile(
    path_prefix="/api/v8",
    auth="bearer",
    paging="offset",
    page_param="offset",
    size_param="limit",
    page_size=200,
    default_page_size=50,
    max_page_size=200,
    items_key="data",
    total_key="totalCount",
    numeric_ids=True,
    date_format="%Y-%m-%dT%H:%M:%S.%fZ",
    download_path="projects/{projectId}/documents/{documentId}/download",
    ranges=False,
    upload_file_part="document",
    upload_folder_part="parentFolderId",
    access_key=None,
    rate_limit_status=503,
    document_delete=True,
    document_rename=True,
)


def load_profile(source: Opus2Profile | Mapping[str, Any] | Path | str | None) -> Opus2Profile:
    """A profile from an object, a mapping of settings, a file path, or ``None`` (default)."""
    if source is None:
        return DEFAULT_PROFILE
    if isinstance(source, Opus2Profile):
        return source
    if isinstance(source, str | Path):
        return Opus2Profile.load(Path(source))
    return Opus2Profile.from_mapping(source)


# ---------------------------------------------------------------------------------------------
# authentication


class Opus2Session:
    """The ``X-API-Token`` of a user, made in the Opus 2 UI; there is no login endpoint.

    A token is regenerated or revoked in the UI, never refreshed through the API. When it comes
    from a file, a 401 makes the session read the file again and retry once, so a mount picks up
    a regenerated token without a restart; a token given inline cannot change, so a 401 is final.
    """

    def __init__(self, profile: Opus2Profile, token: str | None, token_file: Path | None) -> None:
        self._profile = profile
        self._inline = token
        self._file = token_file
        self._token: str | None = None

    def apply(self, request: httpx.Request) -> None:
        if self._token is None:
            return
        if self._profile.auth == "bearer":
            request.headers["Authorization"] = f"Bearer {self._token}"
        else:
            request.headers[self._profile.auth_header] = self._token

    def needs_login(self) -> bool:
        return self._token is None

    async def login(self, http: HttpClient) -> None:
        token = self._inline
        if self._file is not None:
            try:
                token = (await trio.Path(self._file).read_text(encoding="utf-8")).strip()
            except OSError as exc:
                raise errors.AuthenticationFailed(
                    f"opus2: cannot read the token file {self._file}: {exc.strerror}"
                ) from None
        if not token:
            raise errors.AuthenticationFailed("opus2: no API token configured")
        self._token = token

    def expired(self, response: httpx.Response) -> bool:
        return response.status_code == 401 and self._file is not None

    def secrets(self) -> Iterable[str]:
        return [s for s in (self._token, self._inline) if s]


# ---------------------------------------------------------------------------------------------
# the backend

_T_PROJECT = "project"
_T_FOLDER = "folder"
_T_DOCUMENT = "document"
_ROOT_ID = "opus2:/"
#: meta keys docfs sets itself; a project field of the same name is hidden behind them
_RESERVED_META = frozenset({"id", "version"})
#: multipart bodies up to this size are built in memory, larger ones in a temporary file
_INLINE_UPLOAD = 1 << 20
#: seconds subtracted from an ``afterDate`` cut-off (see ``changed_since``)
_AFTER_DATE_MARGIN = 1.0

_AUTH: StatusMap = {401: errors.AuthenticationFailed}
#: a 409 anywhere else is the vendor's "You cannot delete the only version of a document": a
#: refusal (EPERM), never "exists" or "not empty"
_DELETE: StatusMap = {**_AUTH, 403: errors.PermissionDenied, 409: errors.NotSupported}

_DOC_OPS = frozenset({Op.REPLACE, Op.SET_META, Op.RENAME})
_DIR_OPS = frozenset({Op.CREATE_FILE, Op.MKDIR})


@dataclass
class _Upload:
    body: bytes | Path
    content_type: str
    temp: Path | None = None

    def discard(self) -> None:
        if self.temp is not None:
            self.temp.unlink(missing_ok=True)


class Opus2Backend(HttpBackend):
    """Projects → folders → documents of one Opus 2 tenant, over its inbound Documents API."""

    name = "opus2"
    # class-level: everything some profile can do; instances narrow it to their profile
    capabilities = Capabilities(
        ops=frozenset(Op),
        ranges=True,
        move=True,
        meta_namespace="opus2",
        duplicate_names=True,
        changes=True,  # afterDate: one request refreshes a whole project
        tree=True,  # one flat folders listing (and the documents list) fills a project
    )
    default_limits = DEFAULT_PROFILE.limits()

    def __init__(
        self,
        http: HttpClient,
        credentials: Credentials,
        *,
        profile: Opus2Profile | Mapping[str, Any] | Path | str | None = None,
        token_file: Path | None = None,
    ) -> None:
        super().__init__(http, credentials)
        self.profile = load_profile(profile)
        # The protocol declares capabilities per class; a profile decides ranges per tenant, so
        # the instance shadows the class attribute (mypy forbids a plain assignment to a ClassVar).
        object.__setattr__(
            self,
            "capabilities",
            dataclasses.replace(type(self).capabilities, ranges=self.profile.ranges),
        )
        self.session = Opus2Session(self.profile, credentials.token, token_file)
        #: the download-route hint is logged once per mount
        self._download_hinted = False
        http.session = self.session

    # ---- helpers ------------------------------------------------------------------------

    def _path(self, *parts: str) -> str:
        prefix = self.profile.path_prefix.strip("/")
        joined = "/".join(p.strip("/") for p in parts)
        return f"/{prefix}/{joined}" if prefix else f"/{joined}"

    def _project_path(self, pid: str, *rest: str) -> str:
        return self._path("projects", _q(pid), *rest)

    def _json_id(self, value: str) -> str | int:
        return int(value) if self.profile.numeric_ids else value

    @staticmethod
    def _json(response: httpx.Response) -> Any:
        try:
            return response.json()
        except ValueError:
            raise errors.ProtocolError(
                f"opus2: {response.request.method} {response.request.url.path}: answer is not JSON"
            ) from None

    async def _get(
        self, path: str, *, endpoint: str, params: Mapping[str, Any] | None = None
    ) -> Any:
        response = await self.http.request(
            "GET", path, endpoint=endpoint, params=params, status_map=_AUTH
        )
        return self._json(response)

    async def _pages(
        self, path: str, *, endpoint: str, params: Mapping[str, Any] | None = None
    ) -> AsyncIterator[Mapping[str, Any]]:
        """Yield the items of a paged list, stopping as soon as the answer shows the end."""
        profile = self.profile
        seen = 0
        index = 0
        while True:
            query = dict(params or {})
            if profile.paging == "page":
                query[profile.page_param] = profile.first_page + index
            else:
                query[profile.page_param] = seen
            query[profile.size_param] = profile.page_size
            body = await self._get(path, endpoint=endpoint, params=query)
            items, total, size = self._unwrap(body)
            for item in items:
                yield item
            seen += len(items)
            index += 1
            if not items or not isinstance(body, dict):
                return
            if total is not None:
                if seen >= total:
                    return
            elif size is not None and len(items) < size:
                return
            # neither a total nor the page size in the answer: only an empty page ends the list

    def _unwrap(self, body: Any) -> tuple[list[Mapping[str, Any]], int | None, int | None]:
        if isinstance(body, list):
            raw: Any = body
            total = size = None
        elif isinstance(body, dict):
            raw = body.get(self.profile.items_key)
            total = (
                _int_or_none(body.get(self.profile.total_key)) if self.profile.total_key else None
            )
            size = _int_or_none(body.get(self.profile.size_param))
        else:
            raw = None
            total = size = None
        if not isinstance(raw, list) or not all(isinstance(i, dict) for i in raw):
            raise errors.ProtocolError(
                f"opus2: paged answer without a list under {self.profile.items_key!r}"
            )
        return raw, total, size

    # ---- entries --------------------------------------------------------------------------

    def _project_entry(self, data: Mapping[str, Any]) -> Entry:
        pid = _sid(data.get("id"))
        access = data.get(self.profile.access_key) if self.profile.access_key else None
        writable = access is None or str(access).replace("/", "").lower() != "read"
        return Entry(
            id=f"p:{pid}",
            name=str(data.get("name") or pid),
            kind=Kind.DIR,
            size=None,
            mtime=self.profile.parse_date(data.get("updatedAt")),
            version=str(data.get("updatedAt") or ""),
            meta={"id": pid},
            read_only=not writable,
            ops=_DIR_OPS if writable else frozenset(),
            extra={"type": _T_PROJECT, "project": pid, "writable": _flag(writable)},
            change_scope=True,
        )

    def _folder_entry(
        self, data: Mapping[str, Any], pid: str, writable: bool, base_path: str = ""
    ) -> Entry:
        fid = _sid(data.get("id"))
        name = str(data.get("name") or fid)
        path = data.get("path")
        if not isinstance(path, str) or not path:
            path = f"{base_path}/{name}"  # a profile without paths: build it from the parent
        parent = data.get("parentId")
        return Entry(
            id=f"f:{pid}:{fid}",
            name=name,
            kind=Kind.DIR,
            size=None,
            mtime=self.profile.parse_date(data.get("updatedAt")),
            version=str(data.get("updatedAt") or ""),
            meta={"id": fid},
            read_only=not writable,
            ops=(_DIR_OPS | {Op.REMOVE}) if writable else frozenset(),
            extra={
                "type": _T_FOLDER,
                "project": pid,
                "folder": fid,
                "parent": _sid(parent) if parent is not None else "",
                "path": path,
                "writable": _flag(writable),
            },
        )

    def _document_entry(self, data: Mapping[str, Any], pid: str, writable: bool) -> Entry:
        did = _sid(data.get("id"))
        version = data.get("version")
        version_id = data.get("versionId")
        checksum = data.get("checksum")
        meta: dict[str, str] = {}
        fields = data.get("fields")
        if isinstance(fields, list):
            for item in fields:
                if isinstance(item, dict) and item.get("name") and item.get("value") is not None:
                    meta[str(item["name"])] = _meta_text(item["value"])
        meta["id"] = did
        if version is not None:
            meta["version"] = str(version)
        ops = set(_DOC_OPS)
        if self.profile.document_delete:
            ops.add(Op.REMOVE)
        return Entry(
            id=f"d:{pid}:{did}",
            name=str(data.get("name") or did),
            kind=Kind.FILE,
            size=_int_or_none(data.get("size")),
            mtime=self.profile.parse_date(data.get("updatedAt")),
            # versionId changes with every replace; field updates leave it (content unchanged)
            version=str(version_id or checksum or version or ""),
            meta=meta,
            read_only=not writable,
            ops=frozenset(ops) if writable else frozenset(),
            extra={
                "type": _T_DOCUMENT,
                "project": pid,
                "document": did,
                "folder": _sid(data.get("folderId")) if data.get("folderId") is not None else "",
                "checksum": str(checksum or ""),
                "writable": _flag(writable),
            },
        )

    @staticmethod
    def _writable(entry: Entry) -> bool:
        return entry.extra.get("writable", "yes") == "yes"

    # ---- reading ---------------------------------------------------------------------------

    async def connect(self) -> None:
        """Read the token and check it with the smallest possible projects page."""
        await self.http.ensure_session()
        size_key = self.profile.size_param
        try:
            await self._get(self._path("projects"), endpoint="projects", params={size_key: 1})
        except errors.AuthenticationFailed as exc:
            # the user must see what to fix, not an HTTP status of an URL (reference §2: a
            # 401 is an invalid, expired or revoked token)
            raise errors.AuthenticationFailed(
                "Opus 2 refused the API token, which is wrong, expired or revoked "
                f"(HTTP {exc.status})",
                status=exc.status,
            ) from None

    async def root(self) -> Entry:
        return Entry(
            id=_ROOT_ID,
            name="",
            kind=Kind.DIR,
            size=None,
            mtime=None,
            version="",
            extra={"type": "root"},
        )

    async def list_dir(self, directory: Entry) -> AsyncIterator[Entry]:
        kind = directory.extra.get("type")
        if kind == "root":
            async for item in self._pages(self._path("projects"), endpoint="projects"):
                yield self._project_entry(item)
            return
        if kind not in (_T_PROJECT, _T_FOLDER):
            raise errors.NotSupported(f"opus2: {directory.name!r} is not a directory")
        pid = directory.extra["project"]
        folder = directory.extra.get("folder", "") if kind == _T_FOLDER else ""
        writable = self._writable(directory)
        # one flat listing holds every folder of the project; keep the direct children
        async for item in self._pages(self._project_path(pid, "folders"), endpoint="folders"):
            parent = item.get("parentId")
            if (_sid(parent) if parent is not None else "") == folder:
                yield self._folder_entry(item, pid, writable, directory.extra.get("path", ""))
        if folder:
            path = self._project_path(pid, "documents", "folder", _q(folder))
            async for item in self._pages(path, endpoint="documents"):
                yield self._document_entry(item, pid, writable)
            return
        # no route lists the project root alone: the project-wide list, filtered
        async for item in self._pages(self._project_path(pid, "documents"), endpoint="documents"):
            if item.get("folderId") is None:
                yield self._document_entry(item, pid, writable)

    async def walk_project(self, project: Entry) -> AsyncIterator[tuple[str, Entry]]:
        """Every folder and document of a project as ``(parent entry id, entry)``, parents first.

        Two paged lists (all folders, all documents) instead of two requests per directory:
        the way to fill a cache for a whole project under a budget of 50 requests a minute.
        """
        if project.extra.get("type") != _T_PROJECT:
            raise errors.NotSupported("opus2: walk_project needs a project")
        pid = project.extra["project"]
        writable = self._writable(project)
        raw = [
            item
            async for item in self._pages(self._project_path(pid, "folders"), endpoint="folders")
        ]
        by_id = {_sid(item.get("id")): item for item in raw}
        entries: dict[str, Entry] = {}

        def place(fid: str, trail: frozenset[str] = frozenset()) -> Entry:
            # parents before children, whatever order the server lists them in
            if fid in entries:
                return entries[fid]
            item = by_id[fid]
            parent = item.get("parentId")
            up = _sid(parent) if parent is not None else ""
            base = ""
            if up in by_id and up not in trail and up != fid:  # a cycle would recurse forever
                base = place(up, trail | {fid}).extra["path"]
            entries[fid] = self._folder_entry(item, pid, writable, base)
            return entries[fid]

        for fid in by_id:
            place(fid)
        for entry in sorted(entries.values(), key=lambda e: e.extra["path"].count("/")):
            parent = entry.extra["parent"]
            yield (f"f:{pid}:{parent}" if parent in by_id else project.id), entry
        async for item in self._pages(self._project_path(pid, "documents"), endpoint="documents"):
            doc = self._document_entry(item, pid, writable)
            folder = doc.extra["folder"]
            yield (f"f:{pid}:{folder}" if folder in by_id else project.id), doc

    async def changed_since(self, directory: Entry, since: float) -> AsyncIterator[Entry]:
        """Documents of a project (or folder) updated after ``since``: the cheap refresh.

        ``afterDate`` is strictly after, and a tenant may keep times at a coarser resolution
        than the clock that ``since`` came from; asking from one second earlier can only repeat
        documents the caller already has, never miss one changed in the boundary second.
        """
        kind = directory.extra.get("type")
        if kind not in (_T_PROJECT, _T_FOLDER):
            raise errors.NotSupported("opus2: afterDate works on projects and folders")
        pid = directory.extra["project"]
        path = (
            self._project_path(pid, "documents", "folder", _q(directory.extra["folder"]))
            if kind == _T_FOLDER
            else self._project_path(pid, "documents")
        )
        params = {"afterDate": self.profile.format_date(since - _AFTER_DATE_MARGIN)}
        writable = self._writable(directory)
        async for item in self._pages(path, endpoint="changes", params=params):
            yield self._document_entry(item, pid, writable)

    def list_tree(self, scope: Entry) -> AsyncIterator[tuple[str, Entry]]:
        return self.walk_project(scope)

    async def changes(self, scope: Entry, since: float) -> AsyncIterator[tuple[str, Entry]]:
        """Documents of a project changed after ``since``, with the id of their directory."""
        pid = scope.extra["project"]
        async for entry in self.changed_since(scope, since):
            folder = entry.extra.get("folder", "")
            yield (f"f:{pid}:{folder}" if folder else f"p:{pid}"), entry

    async def stat(self, entry: Entry) -> Entry:
        kind = entry.extra.get("type")
        if kind == "root":
            return await self.root()
        pid = entry.extra.get("project", "")
        if kind == _T_PROJECT:
            data = await self._get(self._project_path(pid) + "/", endpoint="project")
            return self._project_entry(_as_object(data))
        if kind == _T_FOLDER:
            return await self._stat_folder(entry)
        if kind == _T_DOCUMENT:
            data = await self._get(
                self._project_path(pid, "documents", _q(entry.extra["document"])),
                endpoint="document",
            )
            return self._document_entry(_as_object(data), pid, self._writable(entry))
        raise errors.NotFound(f"opus2: unknown entry {entry.id!r}")

    async def _stat_folder(self, entry: Entry) -> Entry:
        # the API reads one folder by name or path only; the path of the listing finds it
        pid = entry.extra["project"]
        path = entry.extra["path"]
        data = _as_object(
            await self._get(self._project_path(pid, "folders", _q(path)), endpoint="folder")
        )
        if _sid(data.get("id")) != entry.extra["folder"]:
            raise errors.NotFound(f"opus2: folder {path!r} is gone")
        base = path.rsplit("/", 1)[0]
        return self._folder_entry(data, pid, self._writable(entry), base)

    async def download(
        self, entry: Entry, sink: Sink, start: int = 0, end: int | None = None
    ) -> None:
        if entry.extra.get("type") != _T_DOCUMENT:
            raise errors.NotSupported(f"opus2: {entry.name!r} is not a document")
        route = self.profile.download_path.format(
            projectId=_q(entry.extra["project"]), documentId=_q(entry.extra["document"])
        )
        try:
            await self.http.download(
                self._path(route),
                sink,
                endpoint="content",
                start=start,
                end=end,
                ranges=self.profile.ranges,
                status_map=_AUTH,
            )
        except (errors.NotFound, errors.NotSupported) as exc:
            if exc.status in (404, 405) and not self._download_hinted:
                # the vendor documents no download route: ours may not be the tenant's
                self._download_hinted = True
                log.warning(
                    "Opus 2 answered %s to the download route %r, which the vendor does not "
                    "document (docfs guesses it): if no file can be read, set download_path "
                    "in the remote's wire profile (see the README, Opus 2)",
                    exc.status,
                    self.profile.download_path,
                )
            raise

    # ---- writing ---------------------------------------------------------------------------

    def _target_folder(self, parent: Entry) -> tuple[str, str]:
        kind = parent.extra.get("type")
        if kind == _T_PROJECT:
            return parent.extra["project"], ""
        if kind == _T_FOLDER:
            return parent.extra["project"], parent.extra["folder"]
        raise errors.NotSupported("opus2: documents and folders live inside projects")

    def refusal_hint(self, entry: Entry, op: Op) -> str | None:
        kind = entry.extra.get("type")
        if kind == "root":
            return "projects are made in Opus 2 itself: files and folders go inside a project"
        if not self._writable(entry):
            return "your access to this project is read-only: a project administrator can change it"
        if kind == _T_PROJECT and op in (Op.REMOVE, Op.RENAME):
            return "projects are renamed and removed in Opus 2 itself"
        if kind == _T_FOLDER and op is Op.RENAME:
            return (
                "the Documents API cannot rename folders: make a new folder and move the "
                "documents into it (mv)"
            )
        if kind == _T_DOCUMENT and op is Op.REMOVE:
            return (
                "the Documents API cannot delete documents: delete it in Opus 2 (or set "
                "document_delete = true in the remote's wire profile if the tenant has the call)"
            )
        if op is Op.SET_META and kind != _T_DOCUMENT:
            return "only documents have fields (user.opus2.<field name>)"
        return None

    def check_name(self, parent: Entry, name: str, kind: Kind) -> None:
        """Refuse at once (EINVAL, no request) a name the server answers 400 for, so a new
        file fails at ``open`` and not at close with its data in lost+found."""
        _check_name(name, kind)

    async def create_file(self, parent: Entry, name: str, src: Path) -> Entry:
        _check_name(name, Kind.FILE)
        pid, folder = self._target_folder(parent)
        fields = {self.profile.upload_folder_part: folder} if folder else {}
        upload = await self._upload(src, name, fields)
        try:
            response = await self.http.request(
                "POST",
                self._project_path(pid, "documents"),
                endpoint="upload",
                params={"rejectDuplicate": "true"},
                headers={"Content-Type": upload.content_type},
                body=upload.body,
                status_map=_AUTH,
            )
        except errors.AlreadyExists:
            # a document of this name and checksum is there already (our own earlier attempt
            # whose answer was lost, or an identical upload): that document is the result
            existing = await self._find_same(parent, name, src)
            if existing is None:
                raise
            log.info("opus2: %r already in the folder (same checksum); not uploaded again", name)
            return existing
        finally:
            upload.discard()
        return self._document_entry(_as_object(self._json(response)), pid, True)

    async def _find_same(self, parent: Entry, name: str, src: Path) -> Entry | None:
        digest = "sha256:" + await trio.to_thread.run_sync(_sha256, src)
        size = src.stat().st_size
        async for child in self.list_dir(parent):
            if child.is_dir or child.name != name:
                continue
            checksum = child.extra.get("checksum", "")
            if checksum == digest or (not checksum and child.size == size):
                return child
        return None

    async def replace_file(self, entry: Entry, src: Path) -> Entry:
        self._require_document(entry, "replace")
        pid = entry.extra["project"]
        # the name stays what it is (reference §2: unless ``replaceName=true``, never sent), so
        # the filename only has to pass the server's check: a blank or "/" name would not
        upload = await self._upload(src, _replace_filename(entry.name), {})
        try:
            response = await self.http.request(
                "POST",
                self._project_path(pid, "documents", _q(entry.extra["document"]), "replace"),
                endpoint="replace",
                headers={"Content-Type": upload.content_type},
                body=upload.body,
                status_map=_AUTH,
            )
        finally:
            upload.discard()
        return self._document_entry(_as_object(self._json(response)), pid, True)

    async def mkdir(self, parent: Entry, name: str) -> Entry:
        _check_name(name, Kind.DIR)
        pid, folder = self._target_folder(parent)
        response = await self.http.request(
            "POST",
            self._project_path(pid, "folders"),
            endpoint="mkdir",
            json={"name": name, "parentId": self._json_id(folder) if folder else None},
            status_map=_AUTH,
        )
        data = _as_object(self._json(response))
        return self._folder_entry(data, pid, True, parent.extra.get("path", ""))

    async def remove(self, entry: Entry) -> None:
        kind = entry.extra.get("type")
        pid = entry.extra.get("project", "")
        if kind == _T_FOLDER:
            await self.http.request(
                "DELETE",
                self._project_path(pid, "folders", _q(entry.extra["folder"])) + "/",
                endpoint="rmdir",
                status_map={**_DELETE, self.profile.folder_not_empty_status: errors.NotEmpty},
            )
            return
        if kind == _T_DOCUMENT:
            if not self.profile.document_delete:
                raise _refused("delete", entry, "DELETE projects/{p}/documents/{d}")
            try:
                await self.http.request(
                    "DELETE",
                    self._project_path(pid, "documents", _q(entry.extra["document"])),
                    endpoint="delete",
                    status_map=_DELETE,
                )
            except errors.NotSupported as exc:
                log.warning("Opus 2 refused to delete %r: %s", entry.name, exc)
                raise
            return
        raise _refused("delete", entry, "DELETE projects/{p}")

    async def rename(self, entry: Entry, new_parent: Entry, new_name: str) -> Entry:
        if entry.extra.get("type") != _T_DOCUMENT:
            raise _refused("rename", entry, "a folder rename/move endpoint")
        pid = entry.extra["project"]
        if new_parent.extra.get("project") != pid:
            raise self._unmovable(entry, "to another project")
        target = (
            new_parent.extra.get("folder", "") if new_parent.extra.get("type") == _T_FOLDER else ""
        )
        moving = target != entry.extra.get("folder", "")
        renaming = new_name != entry.name
        if moving and not target:
            # the move route needs a folder id; the project root has none
            raise self._unmovable(entry, "to the top level of a project")
        if renaming and not self.profile.document_rename:
            # refuse before any request, so a move is never half done
            raise _refused("rename", entry, "PATCH projects/{p}/documents/{d}")
        if renaming:
            _check_name(new_name, Kind.FILE)
        did = _q(entry.extra["document"])
        result = entry
        writable = self._writable(entry)
        if moving:
            response = await self.http.request(
                "PUT",
                self._project_path(pid, "documents", did, _q(target)),
                endpoint="move",
                status_map=_AUTH,
            )
            result = self._document_entry(_as_object(self._json(response)), pid, writable)
        if renaming:
            response = await self.http.request(
                "PATCH",
                self._project_path(pid, "documents", did),
                endpoint="rename",
                json={"name": new_name},
                status_map=_AUTH,
            )
            result = self._document_entry(_as_object(self._json(response)), pid, writable)
        return result

    def _unmovable(self, entry: Entry, where: str) -> errors.DocfsError:
        """A move no API call makes. EXDEV makes ``mv`` copy and then delete the source; that
        only works where the profile can delete documents, else it would leave a second copy
        behind and fail, so the move is refused up front (EPERM, a log line, no request)."""
        if self.profile.document_delete:
            return errors.CrossDevice(f"opus2: no API call moves a document {where}")
        log.info("opus2: cannot move %r %s: the API has no such move", entry.name, where)
        return errors.NotSupported(f"opus2: the API cannot move {entry.name!r} {where}")

    async def set_meta(self, entry: Entry, key: str, value: str | None) -> Entry:
        self._require_document(entry, "set fields of")
        if key in _RESERVED_META:
            raise errors.ReadOnly(f"opus2: {key} is set by the server")
        pid = entry.extra["project"]
        definition = await self._field(pid, key)
        if value is None and key not in entry.meta:
            raise errors.NoAttribute(f"opus2: field {key!r} is not set")
        payload = {"value": None if value is None else _typed_value(definition, value)}
        field_id = _sid(definition.get("fieldId", definition.get("id")))
        try:
            response = await self.http.request(
                "PUT",
                self._project_path(
                    pid, "documents", _q(entry.extra["document"]), "fields", _q(field_id)
                ),
                endpoint="field",
                json=payload,
                status_map=_AUTH,
            )
        except errors.InvalidArgument as exc:
            kind = definition.get("type", "?")
            raise errors.InvalidArgument(
                f"opus2: the server refused {value!r} for field {key!r} ({kind}): {exc}",
                status=exc.status,
            ) from None
        return self._document_entry(_as_object(self._json(response)), pid, self._writable(entry))

    async def _field(self, pid: str, name: str) -> Mapping[str, Any]:
        body = await self._get(self._project_path(pid, "fields"), endpoint="fields")
        items = body.get(self.profile.items_key) if isinstance(body, dict) else body
        for item in items if isinstance(items, list) else []:
            if isinstance(item, dict) and item.get("name") == name:
                return item
        raise errors.NotSupported(f"opus2: the project has no field named {name!r}")

    async def _upload(self, src: Path, filename: str, fields: Mapping[str, str]) -> _Upload:
        profile = self.profile
        return await _multipart(
            src, filename, profile.upload_file_part, fields, star=profile.upload_filename_star
        )

    @staticmethod
    def _require_document(entry: Entry, action: str) -> None:
        if entry.extra.get("type") != _T_DOCUMENT:
            raise errors.NotSupported(f"opus2: cannot {action} {entry.name!r}: not a document")


# ---------------------------------------------------------------------------------------------
# small helpers


def _q(value: str) -> str:
    """One path segment: ids and names are opaque, so even ``/`` is escaped."""
    return quote(value, safe="")


def _sid(value: object) -> str:
    if value is None or isinstance(value, bool) or not isinstance(value, str | int):
        raise errors.ProtocolError(f"opus2: unexpected id {value!r}")
    return str(value)


def _flag(value: bool) -> str:
    return "yes" if value else "no"


def _int_or_none(value: object) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return int(value)


def _as_object(data: Any) -> Mapping[str, Any]:
    if not isinstance(data, dict) or "id" not in data:
        raise errors.ProtocolError("opus2: expected a JSON object with an id")
    return data


def _meta_text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ", ".join(_meta_text(v) for v in value)
    return str(value)


def _typed_value(definition: Mapping[str, Any], value: str) -> Any:
    """The JSON value for a field: numbers as numbers; text that is no number is sent as is,
    so that the server, which owns the validation, answers with its own 400."""
    if definition.get("type") == "number":
        for parse in (int, float):
            try:
                return parse(value)
            except ValueError:
                continue
    return value


def _refused(action: str, entry: Entry, endpoint: str) -> errors.NotSupported:
    log.info("opus2: cannot %s %r: the API has no %s endpoint", action, entry.name, endpoint)
    return errors.NotSupported(f"opus2: the API cannot {action} {entry.name!r}")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _check_name(name: str, kind: Kind) -> None:
    """The server's rule (emulator, found by the name fuzzer of tests/reliability): a document
    name must not be blank, a folder name not empty, and neither may hold a slash (a local
    U+2215 DIVISION SLASH becomes ``/`` when docfs restores names); the server answers 400
    for the others."""
    what = "folder" if kind is Kind.DIR else "document"
    if "/" in name:
        raise errors.InvalidArgument(f"Opus 2 refuses a {what} name with a slash: {name!r}")
    if not (name if kind is Kind.DIR else name.strip()):
        raise errors.InvalidArgument(f"Opus 2 refuses a blank {what} name: {name!r}")


def _replace_filename(name: str) -> str:
    """A filename for a replace upload, which keeps the document's name: the name itself
    (extension and all, in case the server looks at it) unless the server would refuse it."""
    safe = name.replace("/", "_")
    return safe if safe.strip() else "document"


def _filename_params(name: str, star: bool = True) -> str:
    """The ``filename`` parameters of the file part, which the server stores exactly.

    The server unescapes quoted pairs in ``filename="…"`` and then the HTML5 form encoding of
    a quote and line breaks (``%22``, ``%0D``, ``%0A``), so no quoted form carries a name that
    holds those sequences; ``filename*=UTF-8''<percent-encoded>`` does, and the server prefers
    it. The quoted fallback, for servers without ``filename*``, escapes a backslash as a quoted
    pair (as the server unescapes it) and a quote and line breaks in the HTML5 encoding (a
    quoted pair ``\\"`` would end the value early in an HTML5 parser); UTF-8 goes as is.
    """
    fallback = (
        name.replace("\\", "\\\\").replace('"', "%22").replace("\r", "%0D").replace("\n", "%0A")
    )
    params = f'filename="{fallback}"'
    if star:
        params += f"; filename*=UTF-8''{quote(name, safe='')}"
    return params


async def _multipart(
    src: Path, filename: str, file_part: str, fields: Mapping[str, str], *, star: bool = True
) -> _Upload:
    """``multipart/form-data`` with text ``fields`` and the file last, as bytes or a temp file.

    The HTTP layer streams a ``Path`` body from disk and re-opens it on a retry, so a large
    upload becomes a temporary file holding the whole encoded body next to the source.
    """
    boundary = "docfs-" + secrets.token_hex(16)
    head = bytearray()
    for key, value in fields.items():
        head += (
            f'--{boundary}\r\nContent-Disposition: form-data; name="{key}"\r\n\r\n{value}\r\n'
        ).encode()
    mime = mimetypes.guess_type(filename)[0] or "application/octet-stream"
    head += (
        f'--{boundary}\r\nContent-Disposition: form-data; name="{file_part}"; '
        f"{_filename_params(filename, star)}\r\nContent-Type: {mime}\r\n\r\n"
    ).encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    content_type = f"multipart/form-data; boundary={boundary}"
    if src.stat().st_size <= _INLINE_UPLOAD:
        data = await trio.to_thread.run_sync(src.read_bytes)
        return _Upload(bytes(head) + data + tail, content_type)
    temp = await trio.to_thread.run_sync(_spool, src, bytes(head), tail)
    return _Upload(temp, content_type, temp)


def _spool(src: Path, head: bytes, tail: bytes) -> Path:
    try:
        # next to the source: same filesystem as the staging area, not a RAM-backed /tmp
        fd, name = tempfile.mkstemp(prefix=f".{src.name[:40]}.", suffix=".part", dir=src.parent)
    except OSError:
        fd, name = tempfile.mkstemp(prefix="docfs-opus2-", suffix=".part")
    with open(fd, "wb") as out, src.open("rb") as source:
        out.write(head)
        while chunk := source.read(1 << 20):
            out.write(chunk)
        out.write(tail)
    return Path(name)
