"""DocSpace authentication: a login token renewed before it expires, or an API key."""

import time
from collections.abc import Iterable

import httpx

from docfs import errors
from docfs.backends._http import HttpClient, login_refused
from docfs.backends.base import Credentials
from docfs.backends.docspace.common import API, LOGIN_STATUS_MAP, parse_date, unwrap


class DocSpaceSession:
    """Login token (renewed before ``expires``) or API key, sent in ``Authorization``."""

    #: renew this long before the announced expiry (at most a tenth of the lifetime)
    MARGIN = 30.0

    def __init__(self, credentials: Credentials) -> None:
        token = credentials.token
        self._user = credentials.user
        self._password = credentials.password
        self.api_key = token if token and token.startswith("sk-") else None
        self._token = token if token and not self.api_key else None
        self._expires: float | None = None
        self._margin = self.MARGIN
        #: bumped on every login, so concurrent 403s trigger one re-login only
        self.generation = 0

    @property
    def can_login(self) -> bool:
        return bool(self._user and self._password) and self.api_key is None

    def apply(self, request: httpx.Request) -> None:
        if self.api_key:
            request.headers["Authorization"] = f"Bearer {self.api_key}"
        elif self._token:
            # the raw form: "Bearer <JWT-looking token>" would go to the JWT handler
            # (docs/protocols/docspace.md, "Login and how the token travels")
            request.headers["Authorization"] = self._token

    def needs_login(self) -> bool:
        if not self.can_login:
            return False
        if self._token is None:
            return True
        return self._expires is not None and time.time() >= self._expires - self._margin

    async def login(self, http: HttpClient) -> None:
        if not self.can_login:
            raise errors.AuthenticationFailed(
                "DocSpace: the session is no longer valid and no password is configured"
            )
        try:
            response = await http.request(
                "POST",
                f"{API}/authentication",
                endpoint="login",
                json={"userName": self._user, "password": self._password},
                auth=False,
                idempotent=True,  # a login has no side effect worth guarding
                status_map=LOGIN_STATUS_MAP,
            )
        except errors.AuthenticationFailed as exc:
            # the user must see what to fix, not an HTTP status of an URL: 401 is a wrong
            # password or an unknown user, 403 the brute-force lockout (docs/protocols/
            # docspace.md, "Login and how the token travels")
            why = (
                "too many failed logins, the portal blocks this account for a minute"
                if exc.status == 403
                else "wrong e-mail or password"
            )
            raise login_refused("DocSpace", self._user, why, exc) from None
        answer = unwrap(response)
        if not isinstance(answer, dict):
            raise errors.ProtocolError("DocSpace: unexpected login answer")
        if answer.get("tfa") or answer.get("sms"):
            raise errors.AuthenticationFailed(
                "DocSpace: two-factor authentication is on for this account; use an API key"
            )
        token = answer.get("token")
        if not isinstance(token, str) or not token:
            raise errors.ProtocolError("DocSpace: the login answer has no token")
        now = time.time()
        self._token = token
        self._expires = parse_date(answer.get("expires"))
        if self._expires is not None:
            self._margin = min(self.MARGIN, max(0.0, (self._expires - now) / 10))
        self.generation += 1

    def expired(self, response: httpx.Response) -> bool:
        # protected endpoints answer 401 for a dead token; 403s are checked by the backend
        return response.status_code == 401 and self.can_login and self._token is not None

    def invalidate(self) -> None:
        self._token = None

    def secrets(self) -> Iterable[str]:
        return [s for s in (self._password, self._token, self.api_key) if s]
