"""DSpace 6's login: Spring Security's JSESSIONID cookie (docs/protocols/dspace6.md, "Login").

``POST /login`` with a form body answers 200 and the cookie; every other call answers 401 both
to "not logged in" and to "not allowed", and the server drops an idle session after its
timeout, so the session renews itself before that and once more after a 401.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable

import httpx

from docfs import errors
from docfs.backends._http import HttpClient, login_refused
from docfs.backends.base import Credentials

log = logging.getLogger("docfs.backends.dspace6")

JSON = {"Accept": "application/json"}


class CookieSession:
    """``JSESSIONID`` from ``POST /login``; anonymous when no credentials are given.

    A DSpace 6 session that timed out does not fail requests: the server silently treats the
    old cookie as anonymous, and listings just lose their private entries. So besides the
    one re-login on 401, a session idle for longer than ``idle_timeout`` (below Tomcat's
    default of 30 minutes) is renewed before the next request.
    """

    def __init__(self, credentials: Credentials, idle_timeout: float = 25 * 60) -> None:
        self._email = credentials.user
        self._password = credentials.password
        self._cookie: str | None = None
        self.idle_timeout = idle_timeout
        self._last_used = 0.0

    @property
    def anonymous(self) -> bool:
        return not (self._email and self._password)

    def needs_login(self) -> bool:
        if self.anonymous:
            return False
        idle = time.monotonic() - self._last_used
        return self._cookie is None or idle > self.idle_timeout

    def apply(self, request: httpx.Request) -> None:
        if self._cookie is not None:
            request.headers["Cookie"] = f"JSESSIONID={self._cookie}"
            self._last_used = time.monotonic()

    def expired(self, response: httpx.Response) -> bool:
        return response.status_code == 401 and not self.anonymous

    def secrets(self) -> Iterable[str]:
        return [s for s in (self._password, self._cookie) if s]

    async def login(self, http: HttpClient) -> None:
        assert self._email and self._password
        self._cookie = None
        try:
            response = await http.request(
                "POST",
                "/login",
                endpoint="login",
                data={"email": self._email, "password": self._password},
                headers=JSON,
                auth=False,
                # a login only makes a new session: repeating it after a lost answer is
                # harmless, and a flaky server must not turn a session renewal into a failure
                idempotent=True,
                # a refused login is final: never retried, never re-logged
                status_map={401: errors.AuthenticationFailed, 403: errors.AuthenticationFailed},
            )
        except errors.AuthenticationFailed as exc:
            raise login_refused("DSpace", self._email, "wrong e-mail or password", exc) from None
        cookie = response.cookies.get("JSESSIONID")
        if not cookie:
            raise errors.ProtocolError("DSpace login answered without a JSESSIONID cookie")
        self._cookie = cookie
        self._last_used = time.monotonic()
        log.info("logged in to DSpace as %s", self._email)
