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

The emulator is a stack of mixins over one typed state (``state.PortalState``), one concern per
module: ``accounts`` → ``tree`` (folders, files, versions, permissions) → ``rendering`` (DTOs,
envelopes) → ``operations`` (time-driven work, delete/move/copy) → ``uploads`` → ``backdoor``
(what tests call) → ``routes.base`` (rate limiter, dispatch) → the route groups in ``routes/``,
whose ``__init__`` holds only the table. Module-level pieces live in ``model`` (constants,
dataclasses, errors, title rules), ``wire`` (request parsing) and ``ratelimit``.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterable
from typing import Any

from docfs.emulators.base import ServerProfile, ServerSetting, UnknownServerOption
from docfs.emulators.docspace.model import (
    CHUNK_UPLOAD_SIZE,
    DAY,
    FT_ARCHIVE,
    FT_VIRTUAL_ROOMS,
    MAX_UPLOAD_SIZE,
    SESSION_TTL,
    TITLE_MAX_REQUEST,
    TITLE_MAX_STORED,
    ApiError,
    ChunkRecord,
    DownloadRecord,
    sanitize_title,
    saved_title,
)
from docfs.emulators.docspace.ratelimit import RateLimitConfig, RateLimiter
from docfs.emulators.docspace.routes import DocSpaceRoutes
from docfs.emulators.docspace.wire import LEADING_SPACE_SUPPORTED

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


class DocSpaceEmulator(DocSpaceRoutes):
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
