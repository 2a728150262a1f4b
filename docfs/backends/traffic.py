"""What a backend's traffic looks like to the rest of docfs: limits, counters, uploads in flight.

Neutral ground between the backends and the vfs/control channel: the HTTP client fills these
in (``docfs.backends._http``), the backend protocol hands them out (``Backend.traffic``,
``Backend.uploading``), and ``docfs status`` shows them — none of the readers knows HTTP.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field


@dataclass
class EndpointStats:
    requests: int = 0
    retries: int = 0
    errors: int = 0
    bytes_sent: int = 0
    bytes_received: int = 0


@dataclass
class Transfer:
    """One file upload in flight (``HttpClient.uploading``): the bytes of its request bodies
    that left so far, counted as the body iterator hands them to the connection (what the
    kernel took), not when the request was built; ``started`` is ``time.monotonic()`` at its
    start, so a rate and an ETA need no first sample."""

    path: str
    size: int
    key: str
    started: float
    sent: int = 0

    @property
    def rate(self) -> float | None:
        elapsed = time.monotonic() - self.started
        return self.sent / elapsed if elapsed > 0 and self.sent else None

    @property
    def eta(self) -> float | None:
        rate = self.rate
        return max(0, self.size - self.sent) / rate if rate else None


@dataclass
class Limits:
    """Per-remote limits; ``None`` rate means unlimited."""

    requests_per_second: float | None = None
    burst: int = 10
    concurrency: int = 8
    timeout: float = 30.0
    #: bytes per second for downloads and uploads together (``--bwlimit``); None: unlimited
    bandwidth: int | None = None


@dataclass(frozen=True)
class Traffic:
    """A snapshot of one backend's requests so far (``Backend.traffic``)."""

    #: per endpoint name (``items``, ``content``…)
    endpoints: dict[str, EndpointStats] = field(default_factory=dict)
    #: requests that waited for the client-side rate limit, and the seconds they waited
    rate_limit_waits: int = 0
    rate_limit_seconds: float = 0.0
    #: uploads in flight
    transfers: list[Transfer] = field(default_factory=list)
    #: ``--bwlimit`` in bytes per second (None: none), the transfers that waited for it and
    #: the seconds they waited
    bandwidth_limit: int | None = None
    bandwidth_waits: int = 0
    bandwidth_seconds: float = 0.0
