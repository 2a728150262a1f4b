"""RSpace authentication: an ``apiKey`` header, or an OAuth password grant with refresh."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

import httpx

from docfs import errors
from docfs.backends._http import HttpClient, StatusMap, login_refused
from docfs.backends.rspace.common import JSON_ACCEPT, _json, log


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
                why = "wrong username or password, or wrong OAuth client id or secret"
                raise login_refused("RSpace", self._user, why, exc) from None
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
