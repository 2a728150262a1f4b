"""Connection plumbing of the HTTP layer: TLS settings, origins, and the httpx client
without a cookie jar (each backend's ``Session`` sets its own cookies)."""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

import httpx


def origin(url: httpx.URL) -> tuple[str, str, int | None]:
    """Scheme, host and port (the default port filled in): what "the same server" means when
    credentials decide whether to follow a redirect."""
    port = url.port or {"http": 80, "https": 443}.get(url.scheme)
    return url.scheme, url.host, port


def tls_context(verify: bool = True, ca_bundle: Path | None = None) -> ssl.SSLContext | bool:
    """What httpx's ``verify`` gets: the system's CAs, plus ``ca_bundle``'s; or no checks."""
    if not verify:
        return False
    context = ssl.create_default_context()
    if ca_bundle is not None:
        context.load_verify_locations(cafile=str(ca_bundle))
    return context


class NoCookies(httpx.Cookies):
    """A cookie jar that keeps nothing: each backend's ``Session`` sets the cookies it needs."""

    def extract_cookies(self, response: httpx.Response) -> None:
        return None


class Client(httpx.AsyncClient):
    """``httpx.AsyncClient`` without its cookie jar.

    A jar would resend stale credentials after a re-login and cookies by host, not port; and
    its urllib-based bookkeeping (a ``Cookie`` header merged into every request, every
    response's ``Set-Cookie`` parsed) was ~15% of the client's CPU per small upload.
    """

    def __init__(self, **kwargs: Any) -> None:
        self._no_cookies = NoCookies()
        super().__init__(**kwargs)

    @property
    def cookies(self) -> httpx.Cookies:
        return self._no_cookies

    @cookies.setter
    def cookies(self, cookies: Any) -> None:
        raise TypeError("docfs sessions set their own cookies; the client keeps none")
