"""Users, login tokens and API keys: who a request is from (the server's auth selector)."""

from __future__ import annotations

import secrets

from docfs.emulators.base import (
    Scope,
)
from docfs.emulators.docspace.model import Token, User
from docfs.emulators.docspace.state import PortalState, Principal


class Accounts(PortalState):
    """Finding users, issuing tokens and telling who sent a request."""

    def _user_by_email(self, email: str) -> User:
        for user in self.users.values():
            if user.email.lower() == email.lower():
                return user
        raise KeyError(f"no user {email!r}")

    def _owner_id(self, email: str | None) -> str:
        if email is not None:
            return self._user_by_email(email).id
        if not self.users:
            raise KeyError("add a user first")
        return next(iter(self.users.values())).id

    def _issue_token(self, user: User) -> Token:
        lifetime = self.token_lifetime
        expires = self.now() + lifetime if lifetime is not None else float("inf")
        token = Token(user.id, expires)
        self._tokens[secrets.token_urlsafe(48)] = token
        return token

    def _token_value(self, token: Token) -> str:
        return next(k for k, v in self._tokens.items() if v is token)

    def _authenticate(self, headers: dict[str, str], cookies: dict[str, str]) -> Principal | None:
        """The ForwardDefaultSelector of §1.2: Basic, ``Bearer sk-…``, else cookie then header."""
        auth = headers.get("authorization", "").strip()
        if auth.lower().startswith("basic "):
            return self._basic(auth[6:].strip())
        if auth.lower().startswith("bearer sk-") and self.server_version >= (3, 1, 0):
            return self._api_key(auth[7:].strip())
        raw = cookies.get("asc_auth_key") or auth
        if raw.lower().startswith("bearer "):
            raw = raw[7:].strip()
        token = self._tokens.get(raw) if raw else None
        if token is None or token.expires <= self.now():
            return None
        user = self.users.get(token.user_id)
        return Principal(user) if user is not None and not user.disabled else None

    def _basic(self, encoded: str) -> Principal | None:
        import base64
        import binascii

        try:
            email, _, password = base64.b64decode(encoded).decode().partition(":")
            user = self._user_by_email(email)
        except (binascii.Error, UnicodeDecodeError, KeyError):
            return None
        ok = secrets.compare_digest(user.password, password) and not user.disabled
        return Principal(user) if ok else None

    def _api_key(self, key: str) -> Principal | None:
        found = self._keys.get(key)
        if found is None or (found.expires is not None and found.expires <= self.now()):
            return None
        user = self.users.get(found.user_id)
        return Principal(user, found.scopes) if user is not None else None

    @staticmethod
    def _scope_allows(scopes: tuple[str, ...] | None, path: str, method: str) -> bool:
        """AuthorizationExtension.ScopesMap: read routes take read or write, others write."""
        if scopes is None or not scopes or "*" in scopes:
            return True
        if path.startswith("/api/2.0/files/rooms"):
            area = "rooms"
        elif path.startswith("/api/2.0/people") or path.startswith("/api/2.0/keys"):
            area = "accounts"
        else:
            area = "files"
        wanted = {f"{area}:write", f"{area}:*"}
        if method in ("GET", "HEAD"):
            wanted.add(f"{area}:read")
        return bool(wanted & set(scopes))

    def _limiter_key(self, scope: Scope) -> str:
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        cookies: dict[str, str] = {}
        for part in headers.get("cookie", "").split(";"):
            key, _, value = part.strip().partition("=")
            if key:
                cookies[key] = value
        with self._state:
            principal = self._authenticate(headers, cookies)
        if principal is not None:
            return "user:" + principal.user.id
        client = scope.get("client") or ("?", 0)
        return f"ip:{client[0]}"
