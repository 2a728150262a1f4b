"""Opus 2 authentication: a user's API token, from the configuration or a file."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import httpx
import trio

from docfs import errors
from docfs.backends._http import HttpClient
from docfs.wire.opus2_profile import Opus2Profile


class Opus2Session:
    """The ``X-API-Token`` of a user, made in the Opus 2 UI; there is no login endpoint.

    A token is regenerated or revoked in the UI, never refreshed through the API. When it comes
    from a file, a 401 makes the session read the file again and retry once, so a mount picks up
    a regenerated token without a restart; a token given inline cannot change, so a 401 is final.
    """

    def __init__(self, profile: Opus2Profile, token: str | None, token_file: Path | None) -> None:
        self._profile = profile
        self._inline = token
        self._file = token_file
        self._token: str | None = None

    def apply(self, request: httpx.Request) -> None:
        if self._token is None:
            return
        if self._profile.auth == "bearer":
            request.headers["Authorization"] = f"Bearer {self._token}"
        else:
            request.headers[self._profile.auth_header] = self._token

    def needs_login(self) -> bool:
        return self._token is None

    async def login(self, http: HttpClient) -> None:
        token = self._inline
        if self._file is not None:
            try:
                token = (await trio.Path(self._file).read_text(encoding="utf-8")).strip()
            except OSError as exc:
                raise errors.AuthenticationFailed(
                    f"opus2: cannot read the token file {self._file}: {exc.strerror}"
                ) from None
        if not token:
            raise errors.AuthenticationFailed("opus2: no API token configured")
        self._token = token

    def expired(self, response: httpx.Response) -> bool:
        return response.status_code == 401 and self._file is not None

    def secrets(self) -> Iterable[str]:
        return [s for s in (self._token, self._inline) if s]


# ---------------------------------------------------------------------------------------------
