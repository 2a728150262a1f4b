"""Requests to RSpace: the session, the throttle and quota handling, JSON and multipart calls.

``RSpaceApi`` holds the state every other part of the backend shares (the Home folder, the
Gallery media index, what the server's release can do).
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import httpx
import trio

from docfs import errors
from docfs.backends._http import HttpClient, Limits, StatusMap
from docfs.backends._multipart import Field, FilePart, Multipart
from docfs.backends.base import Capabilities, Credentials, IdKind, Op
from docfs.backends.http_backend import HttpBackend
from docfs.backends.rspace.common import (
    API,
    JSON_ACCEPT,
    MAX_UPLOAD,
    MOVE_SINCE,
    RATE_ROUNDS,
    _json,
    _megabytes,
    log,
    release,
)
from docfs.backends.rspace.records import _MediaInfo
from docfs.backends.rspace.session import ApiKeySession, OAuthSession, _RateWatch


class RSpaceApi(HttpBackend):
    """The state and request helpers every part of ``RSpaceBackend`` shares."""

    name = "rspace"
    capabilities: ClassVar[Capabilities] = Capabilities(
        ops=frozenset(Op),
        ranges=False,
        move=True,
        meta_namespace="rspace",
        duplicate_names=True,
        search=True,
        search_scoped=True,
        versions_missing=(
            "the RSpace API lists no earlier versions: DocumentsApiController and FilesApi "
            "serve only the current revision (old ones appear only in exports)"
        ),
        # global ids (SD, NB, FL, GF, GL): see docfs/backends/rspace/finding.py
        resolves=frozenset({IdKind.ID}),
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

    async def _upload(
        self,
        path: str,
        *,
        endpoint: str,
        filename: str,
        src: Path,
        fields: Mapping[str, str],
        status_map: StatusMap,
    ) -> dict[str, Any]:
        """POST a file as multipart/form-data (the file part last, after ``fields``); never
        retried blindly (only 429/503)."""
        size = src.stat().st_size
        if size > MAX_UPLOAD:
            raise errors.TooLarge(f"RSpace accepts uploads up to 50 MB; {filename!r} is {size} B")
        # streamed from the staged file, re-read from the start on a retry (never in memory)
        body = Multipart(
            [*(Field(key, value) for key, value in fields.items()), FilePart("file", src, filename)]
        )
        response = await self._call(
            "POST",
            path,
            endpoint=endpoint,
            body=body,
            headers={**JSON_ACCEPT, "Content-Type": body.content_type},
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
