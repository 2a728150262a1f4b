"""Login state of a DSpace 7+ mount: the JWT bearer token (refreshed before it expires and
before long uploads) and the CSRF token pair (docs/protocols/dspace7.md, "Login: a JWT and a
CSRF token")."""

from __future__ import annotations

import base64
import json
import logging
import time
from collections.abc import Iterable

import httpx

from docfs import errors
from docfs.backends._http import HttpClient, login_refused
from docfs.backends.base import Credentials

log = logging.getLogger("docfs.dspace7")

CSRF_HEADER = "DSPACE-XSRF-TOKEN"
CSRF_REQUEST_HEADER = "X-XSRF-TOKEN"
CSRF_COOKIE = "DSPACE-XSRF-COOKIE"
MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
#: a token with less than this share of its lifetime left is refreshed before an upload
UPLOAD_FRESHNESS = 0.5


def jwt_expiry(token: str) -> float | None:
    """The ``exp`` claim of a JWT (seconds since the epoch), read without verifying it."""
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        return float(claims["exp"])
    except (IndexError, ValueError, KeyError, TypeError):
        return None


def _cookie(request: httpx.Request, name: str) -> str | None:
    for pair in request.headers.get("cookie", "").split(";"):
        key, _, value = pair.strip().partition("=")
        if key == name and value:
            return str(value)
    return None


class DSpace7Session:
    """Login state: JWT bearer token plus the CSRF token pair (``http.session`` protocol)."""

    def __init__(self, credentials: Credentials, prefix: str) -> None:
        self._user = credentials.user
        self._password = credentials.password
        self._given_token = credentials.token
        self._jwt: str | None = credentials.token
        self._expires: float | None = None
        self._lifetime: float | None = None
        if self._jwt:
            self._note_expiry(self._jwt)
        self._prefix = prefix
        #: the last token seen in a DSPACE-XSRF-TOKEN header; sent back both as that header
        #: and as the DSPACE-XSRF-COOKIE cookie (the http client keeps no cookie jar)
        self._csrf: str | None = None
        #: the last rejection was a CSRF 403: fetch a token, the login itself is fine
        self._csrf_only = False
        #: an upload wants a token with plenty of lifetime left
        self._want_fresh = False
        #: DSpace 8+ serves GET /security/csrf; None until known
        self.csrf_endpoint: bool | None = None

    @property
    def can_login(self) -> bool:
        return bool(self._user and self._password)

    @property
    def authenticated(self) -> bool:
        return self._jwt is not None or self.can_login

    # ---- Session protocol ------------------------------------------------------------------

    def apply(self, request: httpx.Request) -> None:
        if self._jwt:
            request.headers["Authorization"] = f"Bearer {self._jwt}"
        if request.method in MUTATING:
            cookie = _cookie(request, CSRF_COOKIE)
            token = cookie or self._csrf
            if token:
                request.headers[CSRF_REQUEST_HEADER] = token
                if cookie is None:
                    existing = request.headers.get("cookie")
                    pair = f"{CSRF_COOKIE}={token}"
                    request.headers["cookie"] = f"{existing}; {pair}" if existing else pair

    def needs_login(self) -> bool:
        if self._want_fresh or self._csrf_only:
            return True
        if self._jwt is None:
            return self.can_login
        return self._near_expiry()

    async def login(self, http: HttpClient) -> None:
        self._want_fresh = False
        if self._csrf_only:
            self._csrf_only = False
            await self.ensure_csrf(http)
            if not self._near_expiry():
                return
        if self._jwt is not None and not self._expired() and await self._refresh(http):
            return
        if self.can_login:
            await self._password_login(http)
            return
        self._jwt = None
        if self._given_token is not None:
            raise errors.PermissionDenied("DSpace login token expired; no password to renew it")

    def note_csrf(self, response: httpx.Response) -> None:
        """Keep the token a response hands out (the backend's response hook calls this for
        every answer, a refused login's included)."""
        token = response.headers.get(CSRF_HEADER)
        if token:
            self._csrf = str(token)

    def expired(self, response: httpx.Response) -> bool:
        token = response.headers.get(CSRF_HEADER)
        status = response.status_code
        if status == 401 and self.can_login:
            # the token was revoked or expired early: log in again with the password
            self._jwt = None
            return True
        if status == 403 and response.request.method in MUTATING and token:
            # DSpace answers a bad or missing CSRF token with 403 and a fresh token
            self._csrf_only = True
            return True
        return False

    def person(self) -> str | None:
        """The logged-in EPerson's uuid: the ``eid`` claim of the JWT (read, not verified)."""
        if not self._jwt:
            return None
        try:
            payload = self._jwt.split(".")[1]
            claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
            return str(claims["eid"])
        except (IndexError, ValueError, KeyError, TypeError):
            return None

    def secrets(self) -> Iterable[str]:
        return [s for s in (self._password, self._jwt, self._given_token, self._csrf) if s]

    # ---- token handling --------------------------------------------------------------------

    def want_fresh_token(self) -> None:
        """Ask for a refresh at the next request if less than half the lifetime is left
        (a long upload must not outlive its token: DSpace#12351)."""
        if self._jwt is None or self._expires is None or self._lifetime is None:
            return
        if self._expires - time.time() < self._lifetime * UPLOAD_FRESHNESS:
            self._want_fresh = True

    def _note_expiry(self, token: str) -> None:
        self._expires = jwt_expiry(token)
        self._lifetime = None if self._expires is None else max(1.0, self._expires - time.time())

    def _margin(self) -> float:
        return 0.0 if self._lifetime is None else min(300.0, self._lifetime / 4)

    def _near_expiry(self) -> bool:
        return self._expires is not None and time.time() >= self._expires - self._margin()

    def _expired(self) -> bool:
        return self._expires is not None and time.time() >= self._expires

    def _take_token(self, response: httpx.Response) -> None:
        header = response.headers.get("Authorization", "")
        token = header.replace("Bearer ", "").strip()
        if not token:
            raise errors.ProtocolError("DSpace login answered without an Authorization header")
        self._jwt = token
        self._note_expiry(token)

    async def ensure_csrf(self, http: HttpClient, *, force: bool = False) -> None:
        """Make sure a CSRF token is at hand: 8+ has ``GET /security/csrf``; on 7.x any
        response of the server may carry one (else the 403 of the first POST brings it)."""
        if not force and self._csrf:
            return
        if self.csrf_endpoint is False:
            # 7.x: the root document (read by connect) hands one out unless the server only
            # does so in the 403 of the first POST, which _password_login handles
            return
        try:
            await http.request(
                "GET", f"{self._prefix}/security/csrf", endpoint="security/csrf", auth=False
            )
        except errors.NotFound:
            self.csrf_endpoint = False
        else:
            self.csrf_endpoint = True  # and the hook kept the token it answered

    def _csrf_headers(self) -> dict[str, str]:
        token = self._csrf
        if not token:
            return {}
        return {CSRF_REQUEST_HEADER: token, "Cookie": f"{CSRF_COOKIE}={token}"}

    async def _password_login(self, http: HttpClient) -> None:
        await self.ensure_csrf(http)
        assert self._user is not None and self._password is not None
        for attempt in range(2):
            try:
                response = await http.request(
                    "POST",
                    f"{self._prefix}/authn/login",
                    endpoint="authn/login",
                    data={"user": self._user, "password": self._password},
                    headers=self._csrf_headers(),
                    auth=False,
                    idempotent=True,
                    status_map={401: errors.AuthenticationFailed},
                )
            except errors.AuthenticationFailed as exc:
                raise login_refused("DSpace", self._user, "wrong e-mail or password", exc) from None
            except errors.PermissionDenied as exc:
                # a 403 here is the CSRF check (7.x hands out the token in that 403)
                if exc.status == 403 and attempt == 0:
                    continue
                raise
            self._take_token(response)
            log.info("logged in to DSpace as %s", self._user)
            return

    async def _refresh(self, http: HttpClient) -> bool:
        """``POST /authn/login`` with only the Bearer header gives a new token."""
        await self.ensure_csrf(http)
        headers = self._csrf_headers()
        headers["Authorization"] = f"Bearer {self._jwt}"
        try:
            response = await http.request(
                "POST",
                f"{self._prefix}/authn/login",
                endpoint="authn/login",
                headers=headers,
                auth=False,
                idempotent=True,
            )
            self._take_token(response)
        except errors.DocfsError as exc:
            log.info("token refresh failed (%s); logging in again", type(exc).__name__)
            return False
        log.debug("DSpace login token refreshed")
        return True
