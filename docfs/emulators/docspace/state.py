"""The typed state every part of the DocSpace emulator shares, the clock, and the request context.

``PortalState`` declares the attributes ``DocSpaceEmulator.__init__`` sets; the mixins of this
package (``Accounts`` → ``Tree`` → ``Rendering`` → ``Operations`` → ``Uploads`` → ``Backdoor``
→ ``Dispatch`` → the route groups) each add one responsibility on top of the layers below.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request

from docfs.emulators.base import (
    Emulator,
)
from docfs.emulators.docspace.model import (
    ApiKey,
    ChunkRecord,
    DownloadRecord,
    FileObj,
    FolderObj,
    Operation,
    Token,
    UploadSession,
    User,
    access_denied,
)
from docfs.emulators.docspace.ratelimit import RateLimiter


@dataclass
class Principal:
    """Who a request is from: a user, with API-key scopes if a key was used."""

    user: User
    #: API-key scopes; None for login tokens and Basic auth (full access)
    scopes: tuple[str, ...] | None = None


@dataclass
class Ctx:
    """What a handler knows about its request."""

    request: Request
    principal: Principal | None
    base: str

    @property
    def user(self) -> User | None:
        return self.principal.user if self.principal else None

    def need_user(self) -> User:
        if self.principal is None:
            raise access_denied()
        return self.principal.user


Handler = Callable[[Ctx], Awaitable[Any]]


class Void:
    """Marker for actions that return nothing: the envelope then has no ``response``."""


VOID = Void()


@dataclass
class Created:
    """A handler result sent with HTTP 201 inside the envelope."""

    payload: Any


class Unauthorized(Exception):
    """Raised where the server would challenge: 401 with an empty body."""


class PortalState(Emulator):
    """The attributes of a portal (set by ``DocSpaceEmulator.__init__``) and its clock."""

    _state: threading.RLock
    server_version: tuple[int, ...]
    chunk_upload_size: int
    max_upload_size: int
    token_lifetime: float | None
    tz_offset_minutes: int
    operation_delay: float
    conversion: bool
    conversion_delay: float
    download_redirect: bool
    storage_base: str | None
    login_attempts: int
    login_window: float
    login_block: float
    session_ttl: float
    leading_space: bool
    update_if_exist: bool
    save_delay: float
    rejected_extensions: frozenset[str]
    _limiter: RateLimiter | None
    _clock_offset: float
    _folder_ids: Iterator[int]
    _file_ids: Iterator[int]
    users: dict[str, User]
    folders: dict[int, FolderObj]
    files: dict[int, FileObj]
    _tokens: dict[str, Token]
    _keys: dict[str, ApiKey]
    _sessions: dict[str, UploadSession]
    _operations: list[Operation]
    _login_failures: dict[tuple[str, str], list[float]]
    _login_blocked: dict[tuple[str, str], float]
    _storage_links: dict[str, tuple[int, int, float]]
    storage_requests: list[tuple[str, bool]]
    _downloads: list[DownloadRecord]
    _chunks: list[ChunkRecord]
    rooms_root_id: int
    archive_root_id: int

    def now(self) -> float:
        """The portal's clock (wall time plus what ``advance_clock`` added)."""
        return time.time() + self._clock_offset

    def advance_clock(self, seconds: float) -> None:
        """Move the portal's clock forward: tokens, upload sessions and limits age with it."""
        with self._state:
            self._clock_offset += seconds
