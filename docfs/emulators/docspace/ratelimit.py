"""The DocSpace rate limiter: per-user windows and concurrency caps.

See ``docs/protocols/docspace.md`` §10.
"""

from __future__ import annotations

import math
import threading
from collections import deque
from dataclasses import dataclass

from docfs.emulators.docspace.model import DAY


@dataclass
class RateLimitConfig:
    """The global limiter of §10.1 (DocSpace) or the older platform's rule of §10.2."""

    per_window: int = 1500
    window_seconds: float = 60.0
    concurrent_get: int | None = 50
    concurrent_write: int | None = 15
    daily_writes: int | None = 10_000
    #: 429 (DocSpace) or 503 (ONLYOFFICE Workspace)
    status: int = 429
    #: Retry-After sent when a concurrency limit rejects (the limiter has no lease time)
    concurrency_retry_after: int = 1

    @classmethod
    def workspace(cls, per_window: int = 500, window_seconds: float = 10.0) -> RateLimitConfig:
        """ "500 requests per 10 s from one IP with one account → 503 + Retry-After"."""
        return cls(
            per_window=per_window,
            window_seconds=window_seconds,
            concurrent_get=None,
            concurrent_write=None,
            daily_writes=None,
            status=503,
        )


class RateLimiter:
    """Sliding window + concurrency + daily write limits per user (or client IP)."""

    def __init__(self, config: RateLimitConfig) -> None:
        self.config = config
        self._lock = threading.Lock()
        self._stamps: dict[str, deque[float]] = {}
        self._in_flight: dict[tuple[str, bool], int] = {}
        self._daily: dict[tuple[str, int], int] = {}

    def acquire(self, key: str, method: str, now: float) -> dict[str, str] | None:
        """Take a slot, or return the rejection headers."""
        cfg = self.config
        is_get = method in ("GET", "HEAD", "OPTIONS")
        with self._lock:
            stamps = self._stamps.setdefault(key, deque())
            while stamps and stamps[0] <= now - cfg.window_seconds:
                stamps.popleft()
            if len(stamps) >= cfg.per_window:
                reset = stamps[0] + cfg.window_seconds - now
                return _limit_headers(cfg.per_window, reset)
            cap = cfg.concurrent_get if is_get else cfg.concurrent_write
            if cap is not None and self._in_flight.get((key, is_get), 0) >= cap:
                return _limit_headers(cap, cfg.concurrency_retry_after)
            day = int(now // DAY)
            counts_daily = method in ("POST", "PUT") and cfg.daily_writes is not None
            if counts_daily and self._daily.get((key, day), 0) >= (cfg.daily_writes or 0):
                return _limit_headers(cfg.daily_writes or 0, (day + 1) * DAY - now)
            stamps.append(now)
            self._in_flight[(key, is_get)] = self._in_flight.get((key, is_get), 0) + 1
            if counts_daily:
                self._daily[(key, day)] = self._daily.get((key, day), 0) + 1
            return None

    def release(self, key: str, method: str) -> None:
        is_get = method in ("GET", "HEAD", "OPTIONS")
        with self._lock:
            self._in_flight[(key, is_get)] -= 1


def _limit_headers(limit: int, reset: float) -> dict[str, str]:
    seconds = str(max(1, math.ceil(reset)))
    return {
        "X-RateLimit-Limit": str(limit),
        "X-RateLimit-Remaining": "0",
        "X-RateLimit-Reset": seconds,
        "Retry-After": seconds,
    }
