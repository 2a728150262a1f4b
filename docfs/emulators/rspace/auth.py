"""RSpace authentication: the ``apiKey`` header or an OAuth bearer token (with the real 401
messages), account and API enablement, and ``POST /oauth/token`` (password and refresh grants)."""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from urllib.parse import parse_qsl

from starlette.responses import Response

from docfs.emulators.rspace.context import parse_multipart
from docfs.emulators.rspace.errors import unauthorised
from docfs.emulators.rspace.model import Store
from docfs.emulators.rspace.records import User
from docfs.emulators.rspace.rendering import json_response

APIKEY_RE = re.compile(r"[A-Za-z_0-9]+")


class Auth(Store):
    """Who a request is, and the OAuth token endpoint."""

    def _authenticate(self, headers: Mapping[str, str]) -> User:
        key = headers.get("apikey", "")
        if key:
            if not APIKEY_RE.fullmatch(key):
                raise unauthorised("API key invalid - must match regexp:[A-Za-z_0-9]+")
            user = next((u for u in self._users.values() if u.api_key == key), None)
            if user is None:
                raise unauthorised(f"User could not be authenticated for token {key[:4]}...")
            return self._check_enabled(user)
        auth = headers.get("authorization", "")
        if not auth:
            raise unauthorised(
                "API authentication information is missing - please include your apiKey as a "
                "header in the format 'apiKey:myAPikey' or with OAuth in the format "
                "'Authorization: Bearer <myAccessToken>'."
            )
        parts = auth.split()
        if len(parts) != 2 or parts[0] != "Bearer":
            raise unauthorised(
                'Authorization header for OAuth must be in the form "Bearer <myAccessToken>"'
            )
        grant = self._access.get(parts[1])
        if grant is None or grant[2] < time.time():
            raise unauthorised("OAuth token is invalid or expired.")
        return self._check_enabled(self._users[grant[0]])

    def _check_enabled(self, user: User) -> User:
        if not user.enabled:
            raise unauthorised(
                f"Api access denied as account for user '{user.username}', who is associated "
                "with provided authentication token, is locked or disabled"
            )
        if not self.api_enabled:
            raise unauthorised("Access to API has been disabled by RSpace administrator.")
        if not user.api_enabled:
            raise unauthorised(f"Access to API has been disabled for user '{user.username}'")
        return user

    def _oauth(self, body: bytes, content_type: str) -> Response:
        if content_type.lower().startswith("multipart/"):
            form, _ = parse_multipart(body, content_type)
        else:
            form = dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
        with self._state:
            client = form.get("client_id", "")
            if not client or self._oauth_clients.get(client) != form.get("client_secret"):
                return json_response(
                    {"error": "invalid_client", "error_description": "Bad client"}, 401
                )
            grant = form.get("grant_type")
            user: User | None = None
            if grant == "password":
                user = next(
                    (
                        u
                        for u in self._users.values()
                        if u.username == form.get("username")
                        and u.password == form.get("password")
                        and u.enabled
                    ),
                    None,
                )
            elif grant == "refresh_token":
                held = self._refresh.get(form.get("refresh_token", ""))
                if held is not None and held[1] == client:
                    user = self._users[held[0]]
            else:
                return json_response({"error": "unsupported_grant_type"}, 400)
            if user is None:
                return json_response(
                    {"error": "invalid_grant", "error_description": "Bad credentials"}, 400
                )
            # only one token pair is valid per user and client: a new grant revokes the old
            for store in (self._access, self._refresh):
                for tok in [t for t, v in store.items() if v[0] == user.id and v[1] == client]:
                    del store[tok]
            access, refresh = self._token(), self._token()
            self._access[access] = (user.id, client, time.time() + self.token_lifetime)
            self._refresh[refresh] = (user.id, client)
            return json_response(
                {
                    "scope": "all",
                    "access_token": access,
                    "refresh_token": refresh,
                    "expires_in": int(self.token_lifetime),
                }
            )

    def _token(self) -> str:
        alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
        return "".join(self._random.choice(alphabet) for _ in range(32))
