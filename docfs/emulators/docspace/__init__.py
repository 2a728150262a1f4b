"""ONLYOFFICE DocSpace emulator: ``/api/2.0``, ``filehandler.ashx`` and ``ChunkedUploader.ashx``.

Follows the wire reference of ``docs/protocols/docspace.md`` (server 3.7.2; older behaviour
through ``server_version``); the § numbers below are its sections:

* the success envelope (``response``, ``count``, ``links``, ``status``, ``statusCode``), the
  error envelope, and validation errors that come back *success-shaped* with ``status: 1`` (§2);
* login tokens sent raw, as ``Bearer`` or as the ``asc_auth_key`` cookie (the cookie wins), API keys
  ``sk-…`` only as ``Bearer`` (server ≥ 3.1.0), brute-force lockout (403), 2FA answers, 401 with an
  empty body on protected routes and 403 "Access denied" on anonymous-allowed ones (§1);
* ``@my``, ``@root``, ``@trash``, ``rooms``; folder listings with ``count`` ≤ 100 and
  ``startIndex``, folders before files, ``total`` inside ``response``, converting files hidden (§4);
* ``FileDto`` with a display-string ``contentLength``, ``pureContentLength`` absent for empty
  files, dates with the portal's offset (§3, §4.5);
* downloads with one byte range, the leading-space ``Content-Range`` and 400 on suffix ranges, and
  an optional 302 mode to a "storage" URL (§5);
* uploads: multipart ``/upload`` (same title → new version, ``createNewIfExist``), ``/insert``,
  chunked sessions whose chunks must be exactly ``chunkUploadSize`` (``.ashx`` errors are HTTP 200
  with ``success:false``), the 3.7 REST ``/session`` routes, ``edit_session``, ``saveediting``,
  empty files through ``/file``, auto-conversion of ``/upload`` behind a switch (§6, §7);
* rename with the extension kept, delete/move/copy as asynchronous file operations whose finished
  records are reported once (§8), rooms (§9);
* the rate limiter: 1500 requests/min per user, 50 concurrent GETs, 15 concurrent writes and
  10 000 POST/PUT a day → 429 with ``X-RateLimit-*`` and ``Retry-After``; or the older platform's
  "500 per 10 s → 503 + Retry-After" rule (``RateLimitConfig.workspace()``) (§10).

Where the server's source leaves a question open the emulator follows that file's "Emulator
choices". The default listing order is by title (``AZ``), folders first. Conversion keeps the
bytes (only the name and version change): there is no document server here.

State is in memory and guarded by one re-entrant lock: tests call the backdoor from their own
thread while uvicorn serves requests in another. Nothing here contacts another host.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import mimetypes
import re
import secrets
import threading
import time
import urllib.parse
from collections.abc import AsyncIterator, Iterable
from typing import Any

import anyio
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from docfs.emulators.base import (
    LoggedRequest,
    Receive,
    Scope,
    Send,
    ServerProfile,
    ServerSetting,
    UnknownServerOption,
)
from docfs.emulators.docspace.backdoor import Backdoor
from docfs.emulators.docspace.model import (
    CHUNK_UPLOAD_SIZE,
    CONFLICT_NAMES,
    CONVERTIBLE,
    CREATABLE,
    DAY,
    EDIT,
    FILE_TYPES,
    FT_ARCHIVE,
    FT_DEFAULT,
    FT_TRASH,
    FT_VIRTUAL_ROOMS,
    FULL,
    MAX_UPLOAD_SIZE,
    MUST_CONVERT,
    OP_COPY,
    OP_DELETE,
    OP_MOVE,
    READ,
    ROOM_FOLDER_TYPE,
    ROOM_TYPE_NAMES,
    SESSION_TTL,
    STREAM_CHUNK,
    TEMPLATE_BODY,
    TITLE_MAX_REQUEST,
    TITLE_MAX_STORED,
    ApiError,
    BytesContent,
    ChunkError,
    ChunkRecord,
    Content,
    DownloadRecord,
    FileObj,
    FolderObj,
    KiB,
    Operation,
    UploadSession,
    User,
    ValidationFailed,
    access_denied,
    argument_error,
    available_title,
    cut_comment,
    extension,
    file_type,
    invalid_operation,
    not_found,
    quota_error,
    sanitize_title,
    saved_title,
)
from docfs.emulators.docspace.ratelimit import RateLimitConfig, RateLimiter
from docfs.emulators.docspace.rendering import trim_fields
from docfs.emulators.docspace.state import VOID, Created, Ctx, Handler, Unauthorized, Void
from docfs.emulators.docspace.wire import (
    LEADING_SPACE_SUPPORTED,
    Part,
    as_bool,
    as_int,
    enum_value,
    lookup,
    numbered_chunk_length,
    parse_multipart,
    parse_range,
)
from docfs.emulators.samples import minimal_pdf

# what tests, the demo data and the conformance adapters import from the package
__all__ = [
    "CHUNK_UPLOAD_SIZE",
    "LEADING_SPACE_SUPPORTED",
    "MAX_UPLOAD_SIZE",
    "SESSION_TTL",
    "TITLE_MAX_REQUEST",
    "TITLE_MAX_STORED",
    "ApiError",
    "ChunkRecord",
    "DocSpaceEmulator",
    "DownloadRecord",
    "RateLimitConfig",
    "RateLimiter",
    "sanitize_title",
    "saved_title",
]


def watermarked_pdf(title: str, data: bytes, text: str, user: User | None) -> bytes:
    """The converter's output for a watermarked room: a PDF unlike the stored bytes.

    A real server renders the document with the watermark (text, user name, e-mail, IP,
    date, room name per ``WatermarkAdditions``); ours is stable for a user and a version so
    that tests can compare two downloads.
    """
    digest = hashlib.sha256(data).hexdigest()
    who = user.email if user is not None else "anonymous"
    return minimal_pdf(title, [f"Watermark: {text}", f"Viewer: {who}", f"Content {digest}"])


def _html(status: int, message: str) -> Response:
    body = f"<html><body><h1>{status}</h1><p>{message}</p></body></html>"
    return Response(body, status, media_type="text/html; charset=utf-8")


def _storage_range(header: str, size: int) -> tuple[int, int] | None:
    """RFC 9110 single-range semantics, suffix ranges included (what S3 does)."""
    spec = header.strip()
    if not spec.lower().startswith("bytes="):
        return None
    first = spec[6:].split(",")[0].strip()
    start_text, _, end_text = first.partition("-")
    if not start_text:
        length = int(end_text)
        return max(0, size - length), size - 1
    start = int(start_text)
    end = min(int(end_text), size - 1) if end_text else size - 1
    if start > end:
        raise ValueError("unsatisfiable")
    return start, end


async def _stream(content: Content, start: int, end: int) -> AsyncIterator[bytes]:
    """The body in 64 KiB messages, so a planned reset can cut it mid-way."""
    pos = start
    while pos < end:
        nxt = min(end, pos + STREAM_CHUNK)
        yield content.read(pos, nxt)
        pos = nxt


class DocSpaceEmulator(Backdoor):
    """An ONLYOFFICE DocSpace portal in memory (see the module docstring for what it covers)."""

    name = "docspace"

    #: releases with differences the emulator shows: API keys arrive in 3.1.0, the REST
    #: ``/session`` upload routes in 3.7.0 (``server_version``)
    versions = ("3.0.4", "3.1.0", "3.6.0", "3.7.2")

    server_settings = {
        "chunkUploadSize": ServerSetting(
            str(CHUNK_UPLOAD_SIZE),
            "files:uploader:chunk-size in bytes (GET files/settings → chunkUploadSize)",
        ),
        "watermarkedRoom": ServerSetting(
            "off",
            "the demo data includes a room with a watermark (documents download as PDFs)",
            ("off", "on"),
        ),
        "conversion": ServerSetting(
            "on", "uploads of old formats are converted to OOXML (extsMustConvert)", ("on", "off")
        ),
    }

    roles = ("admin", "user")

    @classmethod
    def options_for(cls, profile: ServerProfile) -> dict[str, Any]:
        try:
            chunk = int(profile.setting("chunkUploadSize"))
        except ValueError:
            raise UnknownServerOption("docspace: chunkUploadSize must be a number") from None
        if chunk < 1:
            raise UnknownServerOption("docspace: chunkUploadSize must be positive")
        return {
            "server_version": profile.version,
            "chunk_upload_size": chunk,
            "conversion": profile.flag("conversion"),
        }

    def __init__(
        self,
        *,
        latency_ms: float = 0.0,
        seed: int | None = None,
        user: str | None = None,
        password: str | None = None,
        api_key: str | None = None,
        server_version: str = "3.7.2",
        rate_limits: RateLimitConfig | None = None,
        rate_limiting: bool = True,
        chunk_upload_size: int = CHUNK_UPLOAD_SIZE,
        max_upload_size: int = MAX_UPLOAD_SIZE,
        token_lifetime: float | None = 365 * DAY,
        tz_offset_minutes: int = 180,
        operation_delay: float = 0.05,
        conversion: bool = True,
        conversion_delay: float = 0.2,
        download_redirect: bool = False,
        login_attempts: int = 5,
        login_window: float = 60.0,
        login_block: float = 60.0,
        session_ttl: float = SESSION_TTL,
        content_range_leading_space: bool | None = None,
        rejected_extensions: Iterable[str] = (),
    ) -> None:
        """Build an empty portal; ``user``/``password`` (and ``api_key``) seed its owner.

        ``rate_limits`` defaults to the cloud values of §10.1 (``rate_limiting=False`` turns the
        limiter off); ``server_version`` below 3.7 hides the REST ``/session`` routes and below
        3.1 the API keys. ``token_lifetime=None`` gives tokens without expiry (the tenant's
        "session lifetime 0"). ``content_range_leading_space=None`` writes the quirk whenever the
        serving HTTP stack can carry it (see ``LEADING_SPACE_SUPPORTED``).
        ``rejected_extensions`` are refused by the upload filter (415), none by default.
        """
        self._state = threading.RLock()
        self.server_version = tuple(int(p) for p in server_version.split(".")[:3])
        self.chunk_upload_size = chunk_upload_size
        self.max_upload_size = max_upload_size
        self.token_lifetime = token_lifetime
        self.tz_offset_minutes = tz_offset_minutes
        self.operation_delay = operation_delay
        self.conversion = conversion
        self.conversion_delay = conversion_delay
        self.download_redirect = download_redirect
        self.storage_base = None
        self.login_attempts = login_attempts
        self.login_window = login_window
        self.login_block = login_block
        self.session_ttl = session_ttl
        self.leading_space = (
            LEADING_SPACE_SUPPORTED
            if content_range_leading_space is None
            else content_range_leading_space
        )
        self.update_if_exist = False
        #: seconds a saving ``ChunkedUploader.ashx`` request (one body, or ``finalize``) takes
        #: once received: a busy server or slow storage (tests of lost answers)
        self.save_delay = 0.0
        self.rejected_extensions = frozenset(e.lower() for e in rejected_extensions)
        self._limiter = RateLimiter(rate_limits or RateLimitConfig()) if rate_limiting else None
        self._clock_offset = 0.0
        self._folder_ids = itertools.count(1)
        self._file_ids = itertools.count(1)
        self.users = {}
        self.folders = {}
        self.files = {}
        self._tokens = {}
        self._keys = {}
        self._sessions = {}
        self._operations = []
        self._login_failures = {}
        self._login_blocked = {}
        self._storage_links = {}
        #: (path, whether an Authorization header or auth cookie came along) per storage GET
        self.storage_requests = []
        #: every content answer and every chunk, for tests (cleared with the request log)
        self._downloads = []
        self._chunks = []
        self.rooms_root_id = self._new_system_folder("Rooms", FT_VIRTUAL_ROOMS)
        self.archive_root_id = self._new_system_folder("Archive", FT_ARCHIVE)
        super().__init__(latency_ms=latency_ms, seed=seed)
        if user is not None:
            self.add_user(user, password or "")
            if api_key is not None:
                self.add_api_key(user, key=api_key)

    def _thumb(
        self, fileid: str, version: str, headers: dict[str, str], request: Request
    ) -> Response:
        """``FileHandler.ThumbnailFile``: 404 unknown, 403 no download right, 204 while the
        thumbnail is not Created, else the stored image with its length."""
        with self._state:
            self._advance()
            principal = self._authenticate(headers, dict(request.cookies))
            user = principal.user if principal else None
            file = self.files.get(int(fileid)) if fileid.isdigit() else None
            if file is None:
                return Response(status_code=404)
            if self._level(user, file.folder_id) < READ or self._deny_download(
                user, file.folder_id
            ):
                return Response(status_code=403)
            wanted = int(version) if version.isdigit() and int(version) > 0 else None
            thumb = file.thumbnail
            if thumb is None or thumb[0] != (wanted or file.current.number):
                return Response(status_code=204)
            return Response(thumb[1], 200, media_type=thumb[2])

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The global rate limiter sits in front of everything, like ASP.NET's middleware."""
        limiter = self._limiter
        if scope["type"] != "http" or limiter is None:
            await super().__call__(scope, receive, send)
            return
        key = self._limiter_key(scope)
        method = scope["method"]
        rejection = limiter.acquire(key, method, self.now())
        if rejection is not None:
            await self._reject(scope, send, limiter.config.status, rejection)
            return
        try:
            await super().__call__(scope, receive, send)
        finally:
            limiter.release(key, method)

    async def _reject(self, scope: Scope, send: Send, status: int, headers: dict[str, str]) -> None:
        stamp = time.monotonic()
        entry = LoggedRequest(
            method=scope["method"],
            path=scope["path"],
            query=scope.get("query_string", b"").decode("latin-1"),
            status=status,
            start=stamp,
            end=stamp,
            fault="rate-limited",
        )
        with self._lock:
            self.log.append(entry)
        raw = [(k.lower().encode(), v.encode()) for k, v in headers.items()]
        raw.append((b"content-length", b"0"))
        await send({"type": "http.response.start", "status": status, "headers": raw})
        await send({"type": "http.response.body", "body": b""})

    def _route(
        self, path: str, handler: Handler, methods: list[str], anonymous: bool = False
    ) -> Route:
        async def endpoint(request: Request) -> Response:
            return await self._dispatch(request, handler, anonymous)

        return Route(path, endpoint, methods=methods)

    async def _dispatch(self, request: Request, handler: Handler, anonymous: bool) -> Response:
        headers = {k.lower(): v for k, v in request.headers.items()}
        with self._state:
            self._advance()
            principal = self._authenticate(headers, dict(request.cookies))
        if principal is None and not anonymous:
            # the ASP.NET challenge: 401 with an empty body (§1.4)
            return Response(status_code=401)
        if principal is not None and not self._scope_allows(
            principal.scopes, request.url.path, request.method
        ):
            return Response(status_code=403)
        ctx = Ctx(request, principal, str(request.base_url).rstrip("/"))
        try:
            result = await handler(ctx)
        except ValidationFailed as exc:
            return self._validation_response(request, exc.errors)
        except ApiError as exc:
            return self._error_response(exc)
        except Unauthorized:
            return Response(status_code=401)
        status = 200
        if isinstance(result, Created):
            result, status = result.payload, 201
        fields = request.query_params.get("fields")
        if fields and not isinstance(result, Void):
            result = trim_fields(result, fields)
        return self._envelope(request, result, status)

    @staticmethod
    async def _body(ctx: Ctx, required: bool = True) -> dict[str, Any]:
        raw = await ctx.request.body()
        if not raw.strip():
            if required:
                raise ValidationFailed({"": ["A non-empty request body is required."]})
            return {}
        try:
            body = json.loads(raw)
        except ValueError:
            raise ValidationFailed({"$": ["The JSON value could not be converted."]}) from None
        if not isinstance(body, dict):
            raise ValidationFailed({"$": ["The JSON value could not be converted."]})
        return body

    @staticmethod
    def _title(body: dict[str, Any], name: str = "title") -> str:
        """A request DTO title: required, at most 165 characters."""
        title = lookup(body, name)
        if not isinstance(title, str) or not title.strip():
            raise ValidationFailed({name: [f"The {name} field is required."]})
        if len(title) > TITLE_MAX_REQUEST:
            raise ValidationFailed(
                {name: [f"The field {name} must be a string with a maximum length of 165."]}
            )
        return title

    def _folder_ref(self, ctx: Ctx, ref: str) -> FolderObj:
        user = ctx.user
        if ref in ("@my", "@trash"):
            if user is None:
                raise Unauthorized()
            folder_id = user.my_id if ref == "@my" else user.trash_id
            if not folder_id:
                raise not_found("My documents is not available for this user")
        elif ref.isdigit():
            folder_id = int(ref)
        else:
            raise not_found("The folder could not be found")
        folder = self.folders.get(folder_id)
        if folder is None:
            raise not_found("The folder could not be found")
        return folder

    def _file_ref(self, ctx: Ctx) -> FileObj:
        ref = ctx.request.path_params["fileId"]
        file = self.files.get(int(ref)) if ref.isdigit() else None
        if file is None:
            raise not_found("The file could not be found")
        if self._level(ctx.user, file.folder_id) < READ:
            raise access_denied()
        return file

    def routes(self) -> list[BaseRoute]:
        """Literal paths come before ``{folderId}``: Starlette takes the first match."""
        r = self._route
        api = "/api/2.0"
        files = f"{api}/files"
        routes = [
            r(f"{api}/authentication", self._h_login, ["POST"], anonymous=True),
            r(f"{api}/authentication.json", self._h_login, ["POST"], anonymous=True),
            r(f"{api}/authentication", self._h_is_authenticated, ["GET"], anonymous=True),
            r(f"{api}/authentication/logout", self._h_logout, ["POST"], anonymous=True),
            r(f"{api}/people/@self", self._h_self, ["GET"]),
            r(f"{api}/keys", self._h_create_key, ["POST"]),
            r(f"{api}/keys", self._h_list_keys, ["GET"]),
            r(f"{files}/settings", self._h_settings, ["GET"]),
            r(f"{files}/updateifexist", self._h_update_if_exist, ["PUT"]),
            r(f"{files}/@root", self._h_root, ["GET"]),
            r(f"{files}/rooms", self._h_rooms, ["GET"]),
            r(f"{files}/rooms", self._h_create_room, ["POST"]),
            r(f"{files}/rooms/{{roomId}}", self._h_room_info, ["GET"]),
            r(f"{files}/rooms/{{roomId}}", self._h_update_room, ["PUT"]),
            r(f"{files}/rooms/{{roomId}}", self._h_delete_room, ["DELETE"]),
            r(f"{files}/fileops", self._h_operations, ["GET"]),
            r(f"{files}/fileops/delete", self._h_ops_delete, ["PUT"]),
            r(f"{files}/fileops/move", self._h_ops_move, ["PUT"]),
            r(f"{files}/fileops/copy", self._h_ops_copy, ["PUT"]),
            r(f"{files}/fileops/emptytrash", self._h_ops_empty_trash, ["PUT"]),
            r(f"{files}/file/{{fileId}}", self._h_file_info, ["GET"], anonymous=True),
            r(f"{files}/file/{{fileId}}", self._h_update_file, ["PUT"], anonymous=True),
            r(f"{files}/file/{{fileId}}", self._h_delete_file, ["DELETE"]),
            r(f"{files}/file/{{fileId}}/history", self._h_history, ["GET"], anonymous=True),
            r(f"{files}/file/{{fileId}}/edit_session", self._h_edit_session, ["POST"]),
            r(f"{files}/file/{{fileId}}/saveediting", self._h_save_editing, ["PUT"]),
            r(f"{files}/file/{{fileId}}/comment", self._h_comment, ["PUT"]),
            r(f"{files}/file/{{fileId}}/lock", self._h_lock, ["PUT"]),
            r(f"{files}/folder/{{folderId}}", self._h_folder_info, ["GET"], anonymous=True),
            r(f"{files}/folder/{{folderId}}", self._h_create_folder, ["POST"]),
            r(f"{files}/folder/{{folderId}}", self._h_rename_folder, ["PUT"]),
            r(f"{files}/folder/{{folderId}}", self._h_delete_folder, ["DELETE"]),
            r(f"{files}/folder/{{folderId}}/path", self._h_path, ["GET"], anonymous=True),
            r(f"{files}/{{folderId}}/upload", self._h_upload, ["POST"]),
            r(f"{files}/{{folderId}}/insert", self._h_insert, ["POST"]),
            r(f"{files}/{{folderId}}/file", self._h_create_file, ["POST"]),
            r(f"{files}/{{folderId}}/upload/create_session", self._h_create_session, ["POST"]),
            r(f"{files}/{{folderId}}/session", self._h_rest_session, ["POST"]),
            r(f"{files}/{{folderId}}/session/{{sid}}", self._h_rest_chunk, ["POST"]),
            r(f"{files}/{{folderId}}/session/{{sid}}/upload", self._h_rest_numbered, ["POST"]),
            r(f"{files}/{{folderId}}/session/{{sid}}/finalize", self._h_rest_finalize, ["PUT"]),
            r(f"{files}/{{folderId}}/session/{{sid}}", self._h_rest_abort, ["DELETE"]),
            r(f"{files}/{{folderId}}", self._h_list, ["GET"], anonymous=True),
        ]
        routes += [
            Route("/filehandler.ashx", self._h_download, methods=["GET"]),
            Route("/ChunkedUploader.ashx", self._h_chunk, methods=["POST"]),
            Route("/storage/{key}", self._h_storage, methods=["GET"]),
        ]
        return list(routes)

    async def _h_login(self, ctx: Ctx) -> Any:
        body = await self._body(ctx)
        login = str(lookup(body, "userName") or "")
        password = str(lookup(body, "password") or "")
        client = ctx.request.client
        key = (login.lower(), client.host if client else "?")
        with self._state:
            now = self.now()
            if self._login_blocked.get(key, 0.0) > now:
                raise ApiError(
                    403,
                    "Too many login attempts. Please try again later.",
                    "ASC.Web.Core.BruteForceCredentialException",
                    detailed=False,
                )
            user = next((u for u in self.users.values() if u.email.lower() == key[0]), None)
            if user is None or not secrets.compare_digest(user.password, password):
                self._login_failed(key, now)
                raise ApiError(401, "User authentication failed", detailed=False)
            self._login_failures.pop(key, None)
            if user.disabled:
                raise invalid_operation("The user is disabled")
            if user.two_factor is not None:
                return self._two_factor_answer(ctx, user)
            token = self._issue_token(user)
            answer: dict[str, Any] = {"token": self._token_value(token)}
            if not as_bool(lookup(body, "session")) and token.expires != float("inf"):
                answer["expires"] = self._date(token.expires)
            return answer

    def _login_failed(self, key: tuple[str, str], now: float) -> None:
        """BruteForceLoginManager: N failures within the period block the pair."""
        failures = [t for t in self._login_failures.get(key, []) if t > now - self.login_window]
        failures.append(now)
        self._login_failures[key] = failures
        if len(failures) >= self.login_attempts:
            self._login_blocked[key] = now + self.login_block
            self._login_failures.pop(key, None)

    def _two_factor_answer(self, ctx: Ctx, user: User) -> dict[str, Any]:
        confirm = f"{ctx.base}/wizard?type=TfaActivation&email={urllib.parse.quote(user.email)}"
        if user.two_factor == "sms":
            return {"sms": True, "phoneNoise": "+1 *** *** 42", "confirmUrl": confirm}
        return {"tfa": True, "tfaKey": "", "confirmUrl": confirm}

    async def _h_is_authenticated(self, ctx: Ctx) -> Any:
        return ctx.principal is not None

    async def _h_logout(self, ctx: Ctx) -> Any:
        auth = ctx.request.headers.get("authorization", "")
        raw = ctx.request.cookies.get("asc_auth_key") or auth.removeprefix("Bearer ").strip()
        with self._state:
            self._tokens.pop(raw, None)
        return VOID

    async def _h_self(self, ctx: Ctx) -> Any:
        user = ctx.need_user()
        with self._state:
            dto = self._employee(user.id, ctx.base)
        dto.update(
            email=user.email,
            userName=user.email.split("@")[0],
            isAdmin=user.admin,
            isOwner=False,
            isVisitor=False,
            status=1,
            activationStatus=1,
        )
        return dto

    async def _h_create_key(self, ctx: Ctx) -> Any:
        if self.server_version < (3, 1, 0):
            raise not_found("Not found")
        body = await self._body(ctx)
        user = ctx.need_user()
        permissions = lookup(body, "permissions") or ["*"]
        days = lookup(body, "expiresInDays")
        key = self.add_api_key(
            user.email,
            scopes=[str(p) for p in permissions],
            name=str(lookup(body, "name") or "key"),
            expires_in_days=as_int(days, "expiresInDays") if days is not None else None,
        )
        with self._state:
            return self._key_dto(self._keys[key], with_key=True)

    async def _h_list_keys(self, ctx: Ctx) -> Any:
        if self.server_version < (3, 1, 0):
            raise not_found("Not found")
        user = ctx.need_user()
        with self._state:
            return [self._key_dto(k, False) for k in self._keys.values() if k.user_id == user.id]

    async def _h_settings(self, ctx: Ctx) -> Any:
        exts_convert = sorted(MUST_CONVERT) if self.conversion else []
        every = sorted({e for exts in FILE_TYPES.values() for e in exts})
        return {
            "chunkUploadSize": self.chunk_upload_size,
            "maxUploadThreadCount": 15,
            "maxUploadFilesCount": 5,
            "extsUploadable": every,
            "extsMustConvert": exts_convert,
            "extsConvertible": {e: CONVERTIBLE[e] for e in sorted(CONVERTIBLE)},
            "storeOriginalFiles": bool(ctx.user and ctx.user.store_original),
            "updateIfExist": self.update_if_exist,
            "fileDownloadUrlString": f"{ctx.base}/filehandler.ashx?action=download&fileid={{0}}",
            "fileWebViewerUrlString": f"{ctx.base}/doceditor?fileid={{0}}",
        }

    async def _h_update_if_exist(self, ctx: Ctx) -> Any:
        body = await self._body(ctx)
        with self._state:
            # stored, not consulted by uploads (§6.2, "Emulator choices")
            self.update_if_exist = as_bool(lookup(body, "set"))
            return self.update_if_exist

    @staticmethod
    def _paging(ctx: Ctx) -> tuple[int, int]:
        """``count`` is [Range(1, 100)], default 100; ``startIndex`` from 0 (§4.2)."""
        q = ctx.request.query_params
        count = as_int(q.get("count", "100"), "count")
        if not 1 <= count <= 100:
            raise ValidationFailed({"count": ["The field count must be between 1 and 100."]})
        start = as_int(q.get("startIndex", "0"), "startIndex")
        return count, max(0, start)

    async def _h_list(self, ctx: Ctx) -> Any:
        count, start = self._paging(ctx)
        with self._state:
            folder = self._folder_ref(ctx, ctx.request.path_params["folderId"])
            self._require_read(ctx.user, folder.id)
            folders, files = self._content(ctx.user, folder, ctx)
            return self._content_dto(ctx, folder, folders, files, start, count)

    def _content(
        self, user: User | None, folder: FolderObj, ctx: Ctx
    ) -> tuple[list[FolderObj], list[FileObj]]:
        """Children after filters and sorting; recursive in the cases of the §4.2 gotcha."""
        q = ctx.request.query_params
        filter_type = as_int(q.get("filterType", "0"), "filterType")
        search = (q.get("filterValue") or "").lower()
        wanted_ext = (q.get("extension") or "").lower()
        trash = self._root_of(folder.id).folder_type == FT_TRASH
        recursive = (
            as_bool(q.get("withSubFolders"), True)
            and bool(filter_type or search or wanted_ext)
            and not trash
        )
        scope = [folder, *self._descendants(folder.id)] if recursive else [folder]
        readable = [s for s in scope if self._level(user, s.id) >= READ]
        folders = [
            sub
            for s in readable
            for sub in self._subfolders(s.id)
            if self._level(user, sub.id) >= READ
        ]
        files = [f for s in readable for f in self._files_in(s.id)]
        folders, files = self._filter(folders, files, filter_type, search, wanted_ext)
        return self._sort(folders, files, q.get("sortBy"), q.get("sortOrder"))

    @staticmethod
    def _filter(
        folders: list[FolderObj],
        files: list[FileObj],
        filter_type: int,
        search: str,
        wanted_ext: str,
    ) -> tuple[list[FolderObj], list[FileObj]]:
        by_type = {3: (7,), 4: (6,), 5: (5,), 7: (4,), 10: (1,), 12: (2, 3), 22: (10,), 25: (11,)}
        if filter_type in (1, 11) or filter_type in by_type:
            folders = []
        if filter_type == 2:
            files = []
        if filter_type in by_type:
            files = [f for f in files if file_type(f.title) in by_type[filter_type]]
        if wanted_ext:
            files = [f for f in files if f.ext == "." + wanted_ext.lstrip(".")]
        if search:
            folders = [f for f in folders if search in f.title.lower()]
            files = [f for f in files if search in f.title.lower()]
        return folders, files

    @staticmethod
    def _sort(
        folders: list[FolderObj], files: list[FileObj], sort_by: str | None, order: str | None
    ) -> tuple[list[FolderObj], list[FileObj]]:
        key = (sort_by or "AZ").lower()
        descending = (order or "").lower() in ("descending", "1")

        def folder_key(f: FolderObj) -> Any:
            if key == "dateandtime":
                return (f.modified, f.id)
            if key == "dateandtimecreation":
                return (f.created, f.id)
            return (f.title.lower(), f.id)

        def file_key(f: FileObj) -> Any:
            if key == "dateandtime":
                return (f.modified, f.id)
            if key == "dateandtimecreation":
                return (f.created, f.id)
            if key == "size":
                return (f.current.content.size, f.id)
            if key == "type":
                return (f.ext, f.title.lower(), f.id)
            return (f.title.lower(), f.id)

        return (
            sorted(folders, key=folder_key, reverse=descending),
            sorted(files, key=file_key, reverse=descending),
        )

    async def _h_root(self, ctx: Ctx) -> Any:
        count, start = self._paging(ctx)
        user = ctx.need_user()
        without_trash = as_bool(ctx.request.query_params.get("withoutTrash"))
        with self._state:
            sections = [user.my_id, self.rooms_root_id, self.archive_root_id]
            if not without_trash:
                sections.append(user.trash_id)
            out = []
            for folder_id in sections:
                if not folder_id:
                    continue  # no My documents for this user
                folder = self.folders[folder_id]
                folders, files = self._content(user, folder, ctx)
                out.append(self._content_dto(ctx, folder, folders, files, start, count))
            return out

    async def _h_rooms(self, ctx: Ctx) -> Any:
        count, start = self._paging(ctx)
        user = ctx.need_user()
        area = (ctx.request.query_params.get("searchArea") or "active").lower()
        with self._state:
            root_id = self.archive_root_id if area in ("archive", "1") else self.rooms_root_id
            folder = self.folders[root_id]
            rooms, _ = self._content(user, folder, ctx)
            wanted = ctx.request.query_params.getlist("type")
            if wanted:
                types = {enum_value(t, ROOM_TYPE_NAMES, "type") for t in wanted}
                rooms = [room for room in rooms if room.room_type in types]
            return self._content_dto(ctx, folder, rooms, [], start, count)

    async def _h_file_info(self, ctx: Ctx) -> Any:
        version = ctx.request.query_params.get("version")
        with self._state:
            file = self._file_ref(ctx)
            if version is not None and as_int(version, "version") > 0:
                return self._file_dto(ctx, file, self._version(file, int(version)))
            return self._file_dto(ctx, file)

    async def _h_history(self, ctx: Ctx) -> Any:
        with self._state:
            file = self._file_ref(ctx)
            return [self._file_dto(ctx, file, v) for v in reversed(file.versions)]

    async def _h_folder_info(self, ctx: Ctx) -> Any:
        with self._state:
            folder = self._folder_ref(ctx, ctx.request.path_params["folderId"])
            self._require_read(ctx.user, folder.id)
            return self._folder_dto(ctx, folder)

    async def _h_path(self, ctx: Ctx) -> Any:
        with self._state:
            folder = self._folder_ref(ctx, ctx.request.path_params["folderId"])
            self._require_read(ctx.user, folder.id)
            return [self._folder_dto(ctx, f) for f in self._chain(folder.id)]

    async def _h_create_folder(self, ctx: Ctx) -> Any:
        body = await self._body(ctx)
        title = self._title(body)
        user = ctx.need_user()
        with self._state:
            parent = self._folder_ref(ctx, ctx.request.path_params["folderId"])
            self._require_read(user, parent.id)
            self._check_create_in(user, parent)
            # no duplicate check: two folders may share a title (§8.1)
            folder = self._new_folder(sanitize_title(title), parent.id, FT_DEFAULT, user.id)
            return self._folder_dto(ctx, folder)

    async def _h_rename_folder(self, ctx: Ctx) -> Any:
        body = await self._body(ctx)
        title = self._title(body)
        user = ctx.need_user()
        with self._state:
            folder = self._folder_ref(ctx, ctx.request.path_params["folderId"])
            self._require_read(user, folder.id)
            if not self._is_live(folder.id):
                raise invalid_operation("The folder is in the trash or an archived room")
            if not self._folder_security(user, folder)["Rename"]:
                raise access_denied()
            folder.title = sanitize_title(title)
            folder.modified, folder.modified_by = self.now(), user.id
            return self._folder_dto(ctx, folder)

    async def _h_update_file(self, ctx: Ctx) -> Any:
        body = await self._body(ctx)
        last_version = as_int(lookup(body, "lastVersion", 0) or 0, "lastVersion")
        title = self._title(body) if lookup(body, "title") is not None else None
        with self._state:
            file = self._file_ref(ctx)
            user = ctx.need_user()
            if last_version > 0:
                self._restore_version(user, file, last_version)
            if title is not None:
                self._rename_file(user, file, title)
            return self._file_dto(ctx, file)

    def _rename_file(self, user: User, file: FileObj, title: str) -> None:
        """EntryManager.FileRenameAsync: the extension cannot change; no clash check (§8.1)."""
        if not self._is_live(file.folder_id):
            raise invalid_operation("The file is in the trash or an archived room")
        if file.locked_by not in (None, user.id):
            raise invalid_operation("The file is locked")
        if not self._file_security(user, file)["Rename"]:
            raise access_denied()
        new_title = sanitize_title(title)
        old_ext = file.ext
        if extension(new_title) != old_ext:
            new_title += old_ext  # EntryManager.FileRenameAsync: title += ext (lower-case)
        if new_title != file.title:
            file.title = new_title
            file.modified, file.modified_by = self.now(), user.id

    def _restore_version(self, user: User, file: FileObj, number: int) -> None:
        refusal = self._edit_refusal(user, file)
        if refusal is not None:
            raise refusal
        old = self._version(file, number)
        self._push_version(file, old.content, user.id, f"Restored from version {number}")

    async def _h_comment(self, ctx: Ctx) -> Any:
        body = await self._body(ctx)
        user = ctx.need_user()
        comment = cut_comment(str(lookup(body, "comment") or ""))
        with self._state:
            file = self._file_ref(ctx)
            refusal = self._edit_refusal(user, file)
            if refusal is not None:
                raise refusal
            number = as_int(lookup(body, "version", file.current.number), "version")
            self._version(file, number).comment = comment
            return comment

    async def _h_lock(self, ctx: Ctx) -> Any:
        body = await self._body(ctx)
        user = ctx.need_user()
        with self._state:
            file = self._file_ref(ctx)
            if file.locked_by not in (None, user.id):
                raise invalid_operation("The file is locked")
            if self._level(user, file.folder_id) < EDIT:
                raise access_denied()
            file.locked_by = user.id if as_bool(lookup(body, "lockFile")) else None
            return self._file_dto(ctx, file)

    async def _h_create_file(self, ctx: Ctx) -> Any:
        body = await self._body(ctx)
        title = self._title(body)
        user = ctx.need_user()
        with self._state:
            folder = self._folder_ref(ctx, ctx.request.path_params["folderId"])
            self._require_read(user, folder.id)
            self._check_create_in(user, folder)
            title = sanitize_title(title)
            content = BytesContent(TEMPLATE_BODY)
            if as_bool(lookup(body, "enableExternalExt")):
                content = BytesContent(b"")
            elif extension(title) not in CREATABLE:
                title += ".docx"
            siblings = {f.title.lower() for f in self._files_in(folder.id)}
            if title.lower() in siblings:
                title = available_title(title, siblings)
            file = self._new_file(saved_title(title), folder.id, content, user.id, "Created")
            return self._file_dto(ctx, file)

    def _room_ref(self, ctx: Ctx) -> FolderObj:
        ref = ctx.request.path_params["roomId"]
        room = self.folders.get(int(ref)) if ref.isdigit() else None
        if room is None or room.room_type is None:
            raise not_found("The room could not be found")
        self._require_read(ctx.user, room.id)
        return room

    async def _h_create_room(self, ctx: Ctx) -> Any:
        body = await self._body(ctx)
        title = self._title(body)
        if lookup(body, "roomType") is None:
            raise ValidationFailed({"roomType": ["The roomType field is required."]})
        room_type = enum_value(lookup(body, "roomType"), ROOM_TYPE_NAMES, "roomType")
        user = ctx.need_user()
        with self._state:
            if not user.admin:
                raise access_denied()
            room = self._new_folder(
                sanitize_title(title),
                self.rooms_root_id,
                ROOM_FOLDER_TYPE[room_type],
                user.id,
                room_type=room_type,
            )
            room.members[user.id] = FULL
            room.deny_download = as_bool(lookup(body, "denyDownload"))
            return self._folder_dto(ctx, room)

    async def _h_room_info(self, ctx: Ctx) -> Any:
        with self._state:
            return self._folder_dto(ctx, self._room_ref(ctx))

    async def _h_update_room(self, ctx: Ctx) -> Any:
        body = await self._body(ctx)
        user = ctx.need_user()
        with self._state:
            room = self._room_ref(ctx)
            if not self._folder_security(user, room)["EditRoom"]:
                raise access_denied()
            if lookup(body, "title") is not None:
                room.title = sanitize_title(self._title(body))
            if lookup(body, "denyDownload") is not None:
                room.deny_download = as_bool(lookup(body, "denyDownload"))
            room.modified, room.modified_by = self.now(), user.id
            return self._folder_dto(ctx, room)

    async def _h_delete_room(self, ctx: Ctx) -> Any:
        body = await self._body(ctx, required=False)
        user = ctx.need_user()
        with self._state:
            room = self._room_ref(ctx)
            room_id = room.id
            op = self._start_operation(
                user,
                OP_DELETE,
                not as_bool(lookup(body, "deleteAfter")),
                lambda: self._delete_folder(user, room_id, True),
                [],
                [room_id],
            )
            # VirtualRoomsController.DeleteRoom: the *first* of the user's operation results,
            # which is another operation whenever one is listed before this one (every
            # finished one is dequeued by the same call); rooms are always deleted at once
            results = self._operation_results(user)
            return results[0] if results else self._op_dto(op)

    async def _h_delete_file(self, ctx: Ctx) -> Any:
        body = await self._body(ctx)
        user = ctx.need_user()
        with self._state:
            file = self._file_ref(ctx)
            return self._queue_delete(ctx, user, body, [file.id], [])

    async def _h_delete_folder(self, ctx: Ctx) -> Any:
        body = await self._body(ctx)
        user = ctx.need_user()
        with self._state:
            folder = self._folder_ref(ctx, ctx.request.path_params["folderId"])
            self._require_read(user, folder.id)
            if folder.parent_id is None:
                raise access_denied()
            return self._queue_delete(ctx, user, body, [], [folder.id])

    def _queue_delete(
        self, ctx: Ctx, user: User, body: dict[str, Any], files: list[int], folders: list[int]
    ) -> Any:
        immediately = as_bool(lookup(body, "immediately"))

        def apply() -> None:
            for folder_id in folders:
                self._delete_folder(user, folder_id, immediately)
            for file_id in files:
                self._delete_file(user, file_id, immediately)

        op = self._start_operation(
            user, OP_DELETE, not as_bool(lookup(body, "deleteAfter")), apply, files, folders
        )
        return self._operations_answer(ctx, user, body, op)

    def _operations_answer(self, ctx: Ctx, user: User, body: dict[str, Any], op: Operation) -> Any:
        """The operation list, or only ``op`` with ``returnSingleOperation`` (query or body).

        Either way every finished task of the user is dequeued (§8.4).
        """
        results = self._operation_results(user)
        single = ctx.request.query_params.get("ReturnSingleOperation") or lookup(
            body, "returnSingleOperation"
        )
        if as_bool(single):
            return next((o for o in results if o["id"] == op.id), self._op_dto(op))
        return results

    @staticmethod
    def _ids(body: dict[str, Any], name: str) -> list[int]:
        values = lookup(body, name) or []
        if not isinstance(values, list):
            raise ValidationFailed({name: [f"The JSON value could not be converted for {name}."]})
        return [as_int(v, name) for v in values]

    async def _h_ops_delete(self, ctx: Ctx) -> Any:
        body = await self._body(ctx)
        user = ctx.need_user()
        with self._state:
            return self._queue_delete(
                ctx, user, body, self._ids(body, "fileIds"), self._ids(body, "folderIds")
            )

    async def _h_ops_move(self, ctx: Ctx) -> Any:
        return await self._queue_transfer(ctx, copy=False)

    async def _h_ops_copy(self, ctx: Ctx) -> Any:
        return await self._queue_transfer(ctx, copy=True)

    async def _queue_transfer(self, ctx: Ctx, copy: bool) -> Any:
        body = await self._body(ctx)
        user = ctx.need_user()
        files, folders = self._ids(body, "fileIds"), self._ids(body, "folderIds")
        if lookup(body, "destFolderId") is None:
            raise ValidationFailed({"destFolderId": ["The destFolderId field is required."]})
        dest = as_int(lookup(body, "destFolderId"), "destFolderId")
        resolve = enum_value(
            lookup(body, "conflictResolveType", 0), CONFLICT_NAMES, "conflictResolveType"
        )
        with self._state:
            op = self._start_operation(
                user,
                OP_COPY if copy else OP_MOVE,
                not as_bool(lookup(body, "deleteAfter")),
                lambda: self._transfer(user, files, folders, dest, resolve, copy),
                files,
                folders,
            )
            return self._operations_answer(ctx, user, body, op)

    async def _h_ops_empty_trash(self, ctx: Ctx) -> Any:
        user = ctx.need_user()
        with self._state:
            trash = user.trash_id
            files = [f.id for f in self._files_in(trash, True)]
            folders = [f.id for f in self._subfolders(trash)]
            return self._queue_delete(ctx, user, {"immediately": True}, files, folders)

    async def _h_operations(self, ctx: Ctx) -> Any:
        user = ctx.need_user()
        with self._state:
            return self._operation_results(user, ctx.request.query_params.get("id"))

    async def _multipart(self, ctx: Ctx) -> list[Part]:
        length = int(ctx.request.headers.get("content-length") or 0)
        if length > self.max_upload_size + 64 * KiB:
            # the body is refused before it is read: over the non-chunked cap (§6.1)
            raise quota_error("The file exceeds the maximum upload size")
        body = await ctx.request.body()
        return parse_multipart(body, ctx.request.headers.get("content-type", ""))

    @staticmethod
    def _file_part(parts: list[Part], *names: str) -> Part | None:
        """The binder takes the named part if present, else the first part with a file name."""
        for part in parts:
            if part.name.lower() in names and part.filename is not None:
                return part
        return next((p for p in parts if p.filename is not None), None)

    async def _h_upload(self, ctx: Ctx) -> Any:
        parts = await self._multipart(ctx)
        part = self._file_part(parts, "file")
        if part is None:
            raise argument_error("No file was sent")
        if not part.data:
            # a 0-byte part is refused (docs/protocols/docspace.md, "Emulator choices")
            raise argument_error("Empty file")
        if len(part.data) > self.max_upload_size:
            raise quota_error("The file exceeds the maximum upload size")
        create_new = as_bool(ctx.request.query_params.get("createNewIfExist"))
        user = ctx.need_user()
        with self._state:
            folder = self._folder_ref(ctx, ctx.request.path_params["folderId"])
            self._require_read(user, folder.id)
            self._upload_target(user, folder)
            title = part.filename or "file"
            file = self._store_upload(
                user, folder, title, BytesContent(part.data), create_new, convert=True
            )
            return [self._file_dto(ctx, file)]

    async def _h_insert(self, ctx: Ctx) -> Any:
        content_type = ctx.request.headers.get("content-type", "")
        q = ctx.request.query_params
        title = q.get("title")
        create_new = as_bool(q.get("createNewIfExist"))
        if content_type.startswith("multipart/"):
            parts = await self._multipart(ctx)
            fields = {p.name.lower(): p.data.decode("utf-8", "replace") for p in parts}
            part = self._file_part(parts, "file", "stream")
            if part is None:
                raise argument_error("No file was sent")
            data = part.data
            title = fields.get("title") or title or part.filename
            create_new = as_bool(fields.get("createnewifexist"), create_new)
        else:
            data = await ctx.request.body()
        if not title:
            raise ValidationFailed({"title": ["The title field is required."]})
        if len(data) > self.max_upload_size:
            raise quota_error("The file exceeds the maximum upload size")
        user = ctx.need_user()
        with self._state:
            folder = self._folder_ref(ctx, ctx.request.path_params["folderId"])
            self._require_read(user, folder.id)
            self._upload_target(user, folder)
            file = self._store_upload(
                user, folder, title, BytesContent(data), create_new, convert=True
            )
            return self._file_dto(ctx, file)

    async def _session_request(self, ctx: Ctx) -> tuple[User, FolderObj, str, int, bool]:
        body = await self._body(ctx)
        name = lookup(body, "fileName")
        if not isinstance(name, str) or not name.strip():
            raise ValidationFailed({"fileName": ["The fileName field is required."]})
        size = as_int(lookup(body, "fileSize", 0), "fileSize")
        user = ctx.need_user()
        with self._state:
            folder = self._folder_ref(ctx, ctx.request.path_params["folderId"])
            self._require_read(user, folder.id)
            self._upload_target(user, folder)
        return user, folder, name, size, as_bool(lookup(body, "createNewIfExist"))

    async def _h_create_session(self, ctx: Ctx) -> Any:
        user, folder, name, size, create_new = await self._session_request(ctx)
        with self._state:
            session = self._new_session(user, folder, name, size, create_new)
            # double wrapped: response.success/data (§6.4a)
            return {"success": True, "data": self._session_data(ctx, session)}

    async def _h_edit_session(self, ctx: Ctx) -> Any:
        size_text = ctx.request.query_params.get("fileSize")
        if size_text is None:
            raise ValidationFailed({"fileSize": ["The fileSize field is required."]})
        size = as_int(size_text, "fileSize")
        keep = as_bool(ctx.request.query_params.get("keepVersion"))
        user = ctx.need_user()
        with self._state:
            file = self._file_ref(ctx)
            refusal = self._edit_refusal(user, file)
            if refusal is not None:
                raise refusal
            folder = self.folders[file.folder_id]
            session = self._new_session(user, folder, file.title, size, False, file_id=file.id)
            session.keep_version = keep
            return {"success": True, "data": self._session_data(ctx, session)}

    async def _h_save_editing(self, ctx: Ctx) -> Any:
        parts = await self._multipart(ctx)
        fields = {p.name.lower(): p.data.decode("utf-8", "replace") for p in parts}
        part = self._file_part(parts, "file")
        if part is None:
            raise argument_error("No file was sent")
        user = ctx.need_user()
        with self._state:
            file = self._file_ref(ctx)
            refusal = self._edit_refusal(user, file)
            if refusal is not None and not (file.editing and as_bool(fields.get("forcesave"))):
                raise refusal
            self._push_version(file, BytesContent(part.data), user.id, "Edited")
            file.title = saved_title(file.title)  # FileDao.SaveFileAsync re-titles every save
            return self._file_dto(ctx, file)

    def _rest_guard(self) -> None:
        """The REST session routes exist from server 3.7.0 on (§6.4b)."""
        if self.server_version < (3, 7, 0):
            raise not_found("Not found")

    async def _h_rest_session(self, ctx: Ctx) -> Any:
        self._rest_guard()
        user, folder, name, size, create_new = await self._session_request(ctx)
        with self._state:
            return self._session_data(ctx, self._new_session(user, folder, name, size, create_new))

    def _rest_session_of(self, ctx: Ctx) -> UploadSession:
        folder = self._folder_ref(ctx, ctx.request.path_params["folderId"])
        try:
            session = self._session_of(ctx.user, ctx.request.path_params["sid"])
        except ChunkError:
            raise not_found("The upload session could not be found or has expired") from None
        if session.folder_id != folder.id:
            raise not_found("The upload session could not be found or has expired")
        return session

    async def _rest_chunk(self, ctx: Ctx, numbered: bool) -> Any:
        self._rest_guard()
        parts = await self._multipart(ctx)
        part = self._file_part(parts, "file")
        if part is None:
            raise argument_error("No file was sent")
        number = None
        if numbered:
            number = as_int(ctx.request.query_params.get("chunkNumber", ""), "chunkNumber")
        with self._state:
            session = self._rest_session_of(ctx)
            file = self._put_chunk(session, number, part.data)
            if file is None:
                return self._session_data(ctx, session)
            return Created(self._upload_result(ctx, file, snake=False))

    async def _h_rest_chunk(self, ctx: Ctx) -> Any:
        return await self._rest_chunk(ctx, numbered=False)

    async def _h_rest_numbered(self, ctx: Ctx) -> Any:
        return await self._rest_chunk(ctx, numbered=True)

    async def _h_rest_finalize(self, ctx: Ctx) -> Any:
        self._rest_guard()
        with self._state:
            session = self._rest_session_of(ctx)
            return Created(self._upload_result(ctx, self._commit(session), snake=False))

    async def _h_rest_abort(self, ctx: Ctx) -> Any:
        self._rest_guard()
        with self._state:
            session = self._rest_session_of(ctx)
            del self._sessions[session.id]
            return VOID

    async def _h_chunk(self, request: Request) -> Response:
        """Not in the envelope; errors are HTTP 200 with ``success: false`` (§6.4a)."""
        q = request.query_params
        headers = {k.lower(): v for k, v in request.headers.items()}
        body = await request.body()
        if self.save_delay and not as_bool(q.get("upload")) and not as_bool(q.get("abort")):
            # a slow store: the request is received and is saved later, whether or not the
            # client is still waiting for the answer (the server does not undo it)
            await anyio.sleep(self.save_delay)
        with self._state:
            self._advance()
            principal = self._authenticate(headers, dict(request.cookies))
            ctx = Ctx(request, principal, str(request.base_url).rstrip("/"))
            try:
                session = self._session_of(ctx.user, q.get("uid", ""))
                if as_bool(q.get("abort")):
                    del self._sessions[session.id]
                    return self._chunk_answer(True, {})
                if as_bool(q.get("finalize")):
                    file: FileObj | None = self._commit(session)
                else:
                    parts = parse_multipart(body, headers.get("content-type", ""))
                    part = self._file_part(parts, "file")
                    if part is None:
                        raise ChunkError("No file was sent")
                    number = None
                    length = None
                    if as_bool(q.get("upload")):
                        # ChunkedRequestType.UploadAsync: the length is computed, not measured
                        if q.get("chunkNumber"):
                            number = as_int(q.get("chunkNumber"), "chunkNumber")
                        length = numbered_chunk_length(
                            int(headers.get("content-length") or len(body)),
                            headers.get("content-type", ""),
                            parts[0],
                        )
                    self._chunks.append(ChunkRecord(session.id, number, len(part.data)))
                    file = self._put_chunk(session, number, part.data, length)
            except (ChunkError, ApiError) as exc:
                return self._chunk_answer(False, None, str(exc))
            except ValidationFailed:
                return self._chunk_answer(False, None, "Invalid chunk number")
            if file is None:
                return self._chunk_answer(True, self._session_data(ctx, session))
            return self._chunk_answer(True, self._upload_result(ctx, file, snake=True), status=201)

    def _chunk_answer(
        self, success: bool, data: Any, message: str = "", status: int = 200
    ) -> Response:
        body: dict[str, Any] = {"success": success}
        if data is not None:
            body["data"] = data
        body["message"] = message
        return self._json(body, status)

    async def _h_download(self, request: Request) -> Response:
        """FileHandler.DownloadFile: one byte range, the leading-space Content-Range (§5)."""
        q = request.query_params
        headers = {k.lower(): v for k, v in request.headers.items()}
        if q.get("action") == "thumb":
            return self._thumb(q.get("fileid", ""), q.get("version", ""), headers, request)
        if q.get("action") not in ("download", "stream"):
            return _html(400, "Invalid action")
        with self._state:
            self._advance()
            principal = self._authenticate(headers, dict(request.cookies))
            user = principal.user if principal else None
            fileid = q.get("fileid", "")
            file = self.files.get(int(fileid)) if fileid.isdigit() else None
            if file is None:
                return _html(404, "The file could not be found")
            if self._level(user, file.folder_id) < READ or self._deny_download(
                user, file.folder_id
            ):
                return _html(403, "Access denied")
            version = file.current
            if q.get("version", "").isdigit() and int(q["version"]) > 0:
                try:
                    version = self._version(file, int(q["version"]))
                except ApiError:
                    return _html(404, "The file version could not be found")
            title = file.title
            source = (file.id, version.number)
            room = self._room_of(file.folder_id)
            if room is not None and room.watermark is not None and file.ext in CONVERTIBLE:
                # FileHandler.ashx.cs: IsWatermarkEnabled → ext = ".pdf" and the converter's
                # stream is sent whole (length = its own length, Range never consulted)
                body = watermarked_pdf(title, version.content.all(), room.watermark, user)
                pdf_title = title[: len(title) - len(file.ext)] + ".pdf"
                return self._send_content(BytesContent(body), pdf_title, None, False, source)
            if self.download_redirect:
                return self._redirect_to_storage(request, file.id, version.number)
        return self._send_content(
            version.content, title, headers.get("range"), self.leading_space, source
        )

    def _redirect_to_storage(self, request: Request, file_id: int, version: int) -> Response:
        key = secrets.token_urlsafe(24)
        self._storage_links[key] = (file_id, version, self.now() + 3600)
        base = self.storage_base or str(request.base_url).rstrip("/")
        return Response(status_code=302, headers={"Location": f"{base}/storage/{key}"})

    async def _h_storage(self, request: Request) -> Response:
        """The "S3" behind redirect mode: signed URL, standard Range semantics, no auth."""
        headers = {k.lower(): v for k, v in request.headers.items()}
        with self._state:
            self.storage_requests.append(
                (request.url.path, "authorization" in headers or "cookie" in headers)
            )
            link = self._storage_links.get(request.path_params["key"])
            file = self.files.get(link[0]) if link else None
            if link is None or file is None or link[2] < self.now():
                return _html(403, "Request has expired")
            content = self._version(file, link[1]).content
            title = file.title
        return self._send_content(
            content, title, headers.get("range"), False, (link[0], link[1]), storage=True
        )

    def _send_content(
        self,
        content: Content,
        title: str,
        range_header: str | None,
        leading_space: bool,
        source: tuple[int, int],
        storage: bool = False,
    ) -> Response:
        size = content.size
        media = mimetypes.guess_type(title)[0] or "application/octet-stream"
        # the plain-ASCII fallback name; control characters (a NUL in a title) cannot go into
        # a header at all (Kestrel refuses them), so they become "_" like the other misfits
        ascii_name = re.sub(r'[\x00-\x1f\x7f?"]', "_", title.encode("ascii", "replace").decode())
        headers = {
            "Accept-Ranges": "bytes",
            "Content-Disposition": (
                f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''"
                + urllib.parse.quote(title)
            ),
        }
        start, end, status = 0, size - 1, 200
        if range_header:
            try:
                parsed = (
                    _storage_range(range_header, size)
                    if storage
                    else parse_range(range_header, size)
                )
            except ValueError:
                refused = 400 if not storage else 416
                self._record_download(source, range_header, 0, 0, refused)
                return _html(refused, "Invalid range")
            if parsed is not None:
                start, end = parsed
                status = 206
                prefix = " " if leading_space else ""
                headers["Content-Range"] = f"{prefix}bytes {start}-{end}/{size}"
        self._record_download(source, range_header, start, end + 1, status)
        headers["Content-Length"] = str(end - start + 1)
        return StreamingResponse(
            _stream(content, start, end + 1), status, headers=headers, media_type=media
        )

    def _record_download(
        self, source: tuple[int, int], range_header: str | None, start: int, end: int, status: int
    ) -> None:
        record = DownloadRecord(source[0], source[1], range_header, start, max(start, end), status)
        with self._state:
            self._downloads.append(record)
