"""A protocol-faithful emulator of the RSpace ELN REST API v1 (``/api/v1``).

It follows docs/protocols/rspace.md (server ``rspace-web`` 2.26 development line, client
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
``Emulator``. Where the server's source leaves a behaviour open, docs/protocols/rspace.md ("What
the emulator chooses") names the choice made here (e.g. 404 for double-slash paths, 413/41301
for uploads over the limit, 500/50001 for a non-existent ``parentFolderId`` on ``POST
/folders``).

The package is split by responsibility: ``settings`` (defaults and fixed limits), ``content``
(sections, content types, HTML), ``records`` and ``model`` (the state and its domain
operations), ``errors`` and ``rendering`` (``ApiError`` bodies, JSON shapes, paged links),
``context`` (the request as handlers see it), ``auth`` and ``limits`` (authentication, OAuth,
throttle, upload quota), ``routes`` (table and dispatch) with ``routes_folders``,
``routes_documents``, ``routes_files`` and ``routes_sharing`` (handlers by resource), and
``backdoor`` (what tests use). Each part is a mixin over ``model.Store``, the one typed state
they share: handlers and backdoor work on the same records under the same lock, and mixins keep
every method a plain ``self._x`` call, as it was in the single class.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

from docfs.emulators.base import ServerProfile, ServerSetting, UnknownServerOption
from docfs.emulators.rspace.backdoor import Backdoor
from docfs.emulators.rspace.content import (
    clean_name,
    extension,
    normalise_html,
    section_for_filename,
)
from docfs.emulators.rspace.context import parse_multipart
from docfs.emulators.rspace.errors import ApiError
from docfs.emulators.rspace.rendering import iso
from docfs.emulators.rspace.routes import Routes
from docfs.emulators.rspace.settings import (
    API,
    DEFAULT_API_KEY,
    DEFAULT_PASSWORD,
    DEFAULT_USERNAME,
    DEFAULT_VERSION,
    MAX_UPLOAD,
    MOVE_SINCE,
)

__all__ = [
    "API",
    "DEFAULT_API_KEY",
    "DEFAULT_PASSWORD",
    "DEFAULT_USERNAME",
    "DEFAULT_VERSION",
    "MAX_UPLOAD",
    "MOVE_SINCE",
    "ApiError",
    "RSpaceEmulator",
    "clean_name",
    "extension",
    "iso",
    "normalise_html",
    "parse_multipart",
    "section_for_filename",
]


class RSpaceEmulator(Routes, Backdoor):
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
        self._upload_allowances = {}
        self._route_table = None
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
        self._buckets = {}
        self._global_bucket = None
        self._records = {}
        self._users = {}
        self._forms = {}
        self._groups = {}
        self._shares = {}
        self._oauth_clients = dict(oauth_clients or {})
        self._access = {}
        self._refresh = {}
        self._file_cache = OrderedDict()
        self._seq = {"record": 100, "user": 0, "form": 0, "field": 0, "group": 0, "share": 0}
        self._last_ts = 0.0
        self.basic_form = self.add_form("Basic Document", [("Data", "text")])
        self.default_user = self.add_user(username, api_key=api_key, password=password, pi=True)
