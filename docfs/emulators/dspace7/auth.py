"""DSpace 7 authentication: HS256 JWT login and short-lived tokens, the CSRF token dance, and
the root, ``/authn/*``, ``/security/csrf`` and EPerson routes."""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import time
import uuid as uuidlib
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import Response

from docfs.emulators.dspace7.context import Ctx
from docfs.emulators.dspace7.handlers import Handlers
from docfs.emulators.dspace7.model import EPerson
from docfs.emulators.dspace7.wire import (
    API_PATH,
    CSRF_COOKIE,
    CSRF_HEADER,
    CSRF_REQUEST_HEADER,
    JSON,
    SERVER_PATH,
    WWW_AUTHENTICATE,
    Fail,
    b64url,
    b64url_decode,
)


class Auth(Handlers):
    """Tokens, CSRF and the authentication routes."""

    # ---- tokens --------------------------------------------------------------------------

    def _sign(self, person: EPerson, kind: str, lifetime: float) -> str:
        header = b64url(json.dumps({"alg": "HS256"}, separators=(",", ":")).encode())
        claims = {
            "eid": person.uuid,
            "sg": [],
            # whole seconds, truncated, as java.util.Date becomes a JWT NumericDate
            "exp": math.floor(time.time() + lifetime),
            # tokens issued within one second must still differ (refresh gives a new one)
            "jti": uuidlib.uuid4().hex,
        }
        payload = b64url(json.dumps(claims, separators=(",", ":")).encode())
        signature = hmac.new(
            self._key(person, kind), f"{header}.{payload}".encode(), hashlib.sha256
        ).digest()
        return f"{header}.{payload}.{b64url(signature)}"

    def _key(self, person: EPerson, kind: str) -> bytes:
        return self._secret + f":{kind}:{person.uuid}:{person.salt}".encode()

    def _verify(self, token: str, kind: str) -> EPerson | None:
        """The token's EPerson, or None if it is malformed, forged, revoked or expired."""
        try:
            header, payload, signature = token.strip().split(".")
            claims = json.loads(b64url_decode(payload))
            person = self._epersons.get(str(claims.get("eid")))
            if person is None:
                return None
            expected = hmac.new(
                self._key(person, kind), f"{header}.{payload}".encode(), hashlib.sha256
            ).digest()
            if not hmac.compare_digest(expected, b64url_decode(signature)):
                return None
            if float(claims["exp"]) <= time.time():
                return None
            return person
        except (ValueError, KeyError, TypeError, AttributeError):
            return None

    def _caller(self, request: Request, *, allow_short_lived: bool) -> EPerson | None:
        """Who is asking: Bearer header (``Bearer `` removed with ``replace``, so a bare token
        works), the ``Authorization-cookie`` cookie, or a short-lived token in the query."""
        header = request.headers.get("authorization") or request.cookies.get("Authorization-cookie")
        if header:
            # an expired or invalid token makes the request anonymous (docs/protocols/dspace7.md,
            # "Authentication and CSRF")
            person = self._verify(header.replace("Bearer ", ""), "login")
            if person is not None:
                return person
        token = request.query_params.get("authentication-token")
        if token and allow_short_lived:
            return self._verify(token, "short")
        return None

    # ---- CSRF ----------------------------------------------------------------------------

    def _wants_token(self, request: Request) -> bool:
        """A response carries a fresh token when the request had no CSRF cookie (except GETs
        in lazy mode, which exercises the clients' retry-on-403 path)."""
        if request.cookies.get(CSRF_COOKIE):
            return False
        return not (self.lazy_csrf and request.method in ("GET", "HEAD"))

    @staticmethod
    def _csrf_ok(request: Request) -> bool:
        cookie = request.cookies.get(CSRF_COOKIE)
        header = request.headers.get(CSRF_REQUEST_HEADER)
        return bool(cookie) and bool(header) and hmac.compare_digest(cookie or "", header or "")

    @staticmethod
    def _attach_token(request: Request, response: Response) -> None:
        token = str(uuidlib.uuid4())
        response.headers[CSRF_HEADER] = token
        if request.url.scheme == "https":
            flags = "HttpOnly; SameSite=None; Secure"
        else:
            flags = "HttpOnly; SameSite=Lax"
        response.headers.append("set-cookie", f"{CSRF_COOKIE}={token}; Path={SERVER_PATH}; {flags}")

    # ---- root, authentication ------------------------------------------------------------

    def _root(self, ctx: Ctx) -> Response:
        base = ctx.api[: -len(API_PATH)]
        endpoints = {
            "authn": "authn",
            "communities": "core/communities",
            "collections": "core/collections",
            "items": "core/items",
            "bundles": "core/bundles",
            "bitstreams": "core/bitstreams",
            "bitstreamformats": "core/bitstreamformats",
            "discover": "discover",
            "pid": "pid",
            "workspaceitems": "submission/workspaceitems",
            "workflowitems": "workflow/workflowitems",
            "epersons": "eperson/epersons",
        }
        if self.major >= 8:
            endpoints["security"] = "security"
        return self._json(
            {
                "dspaceUI": base,
                "dspaceName": "DSpace emulator (docfs)",
                "dspaceServer": base + SERVER_PATH,
                "dspaceVersion": f"DSpace {self.version}",
                "type": "root",
                "_links": {k: {"href": f"{ctx.api}/{v}"} for k, v in endpoints.items()},
            }
        )

    def _csrf(self, ctx: Ctx) -> Response:
        response = self._empty(204)
        self._attach_token(ctx.request, response)
        return response

    def _login(self, ctx: Ctx) -> Response:
        form = self._form(ctx)
        user = form.get("user") or ctx.param("user")
        password = form.get("password") or ctx.param("password")
        person: EPerson | None = None
        if user is not None and password is not None:
            try:
                candidate = self._person(user)
            except KeyError:
                candidate = None
            if candidate is not None and hmac.compare_digest(candidate.password, password):
                person = candidate
        elif ctx.caller is not None:
            person = ctx.caller  # refresh: only the Bearer header was sent
        if person is None:
            raise Fail(401, "Authentication failed!", {"WWW-Authenticate": WWW_AUTHENTICATE})
        token = self._sign(person, "login", self.jwt_lifetime)
        response = self._empty(200, {"Authorization": f"Bearer {token}"})
        self._attach_token(ctx.request, response)  # the CSRF token rotates on login
        return response

    @staticmethod
    def _form(ctx: Ctx) -> dict[str, str]:
        content_type = ctx.request.headers.get("content-type", "")
        if not ctx.body or "x-www-form-urlencoded" not in content_type:
            return {}
        return dict(parse_qsl(ctx.body.decode("utf-8", "replace"), keep_blank_values=True))

    def _logout(self, ctx: Ctx) -> Response:
        if ctx.caller is not None:
            ctx.caller.salt += 1  # invalidates every token of that EPerson
        response = self._empty(204)
        self._attach_token(ctx.request, response)
        return response

    def _status(self, ctx: Ctx) -> Response:
        person = ctx.caller
        data: JSON = {
            "okay": True,
            "authenticated": person is not None,
            "type": "status",
            "_links": {"self": {"href": f"{ctx.api}/authn/status"}},
        }
        headers = {}
        if person is None:
            headers["WWW-Authenticate"] = WWW_AUTHENTICATE
        else:
            data["authenticationMethod"] = "password"
            data["_links"]["eperson"] = {"href": f"{ctx.api}/eperson/epersons/{person.uuid}"}
            data["_links"]["specialGroups"] = {"href": f"{ctx.api}/authn/status/specialGroups"}
            data["_embedded"] = {"eperson": self._eperson_json(ctx, person)}
        return self._json(data, headers=headers)

    def _eperson(self, ctx: Ctx, uuid: str) -> Response:
        person = self._epersons.get(uuid)
        if person is None:
            raise Fail(404)
        if ctx.caller is None:
            raise Fail(401)
        if not (ctx.caller.admin or ctx.caller is person):
            raise Fail(403)
        return self._json(self._eperson_json(ctx, person))

    def _short_lived(self, ctx: Ctx) -> Response:
        if ctx.caller is None:
            raise Fail(401)
        token = self._sign(ctx.caller, "short", self.short_lived_lifetime)
        return self._json(
            {
                "token": token,
                "type": "shortlivedtoken",
                "_links": {"self": {"href": f"{ctx.api}/authn/shortlivedtokens"}},
            }
        )
