"""The base of every backend that talks HTTP: it owns its ``HttpClient``.

The backend protocol (``docfs.backends.base``) knows no HTTP; this class answers its questions
(traffic, uploads in flight, recovery, timeout) from the client, so neither the vfs nor the
control channel ever touches ``backend.http``.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager

from docfs.backends._http import HttpClient
from docfs.backends.base import Backend, Credentials
from docfs.backends.traffic import Traffic, Transfer


class HttpBackend(Backend):
    """A backend whose repository is an HTTP API reached through ``self.http``."""

    def __init__(self, http: HttpClient, credentials: Credentials) -> None:
        super().__init__(credentials)
        self.http = http

    def traffic(self) -> Traffic:
        waits, waited = self.http.rate_limit_waits()
        bandwidth = self.http.bandwidth
        return Traffic(
            endpoints=dict(self.http.stats),
            rate_limit_waits=waits,
            rate_limit_seconds=waited,
            transfers=list(self.http.transfers.values()),
            bandwidth_limit=self.http.limits.bandwidth,
            bandwidth_waits=bandwidth.waits if bandwidth is not None else 0,
            bandwidth_seconds=bandwidth.waited if bandwidth is not None else 0.0,
        )

    def uploading(
        self, path: str, size: int, key: str | None = None
    ) -> AbstractContextManager[Transfer]:
        return self.http.uploading(path, size, key)

    def on_recovery(self, callback: Callable[[], None]) -> None:
        self.http.on_recovery.append(callback)

    def on_unreachable(self, callback: Callable[[], None]) -> None:
        self.http.on_unreachable.append(callback)

    @property
    def request_timeout(self) -> float:
        return self.http.limits.timeout

    async def aclose(self) -> None:
        await self.http.aclose()
