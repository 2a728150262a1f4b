"""RSpace's request throttle (``X-Rate-Limit-*`` headers, 429 / 42901 without ``Retry-After``)
and the upload quota of ``APIFileUploadThrottlingInterceptor`` (MB per hour and day, 42902)."""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import dataclass

from docfs.emulators.rspace.context import parse_multipart
from docfs.emulators.rspace.errors import ApiError
from docfs.emulators.rspace.model import Store
from docfs.emulators.rspace.settings import BYTES_PER_MB, UPLOAD_PERIODS


@dataclass
class Bucket:
    """A token bucket: ``capacity`` requests per ``period`` seconds."""

    capacity: float
    period: float
    tokens: float = -1.0
    stamp: float = 0.0

    def refill(self, now: float) -> None:
        if self.tokens < 0:
            self.tokens, self.stamp = self.capacity, now
            return
        rate = self.capacity / self.period
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * rate)
        self.stamp = now

    def wait_ms(self) -> int:
        if self.tokens >= 1:
            return 0
        return math.ceil((1 - self.tokens) * self.period / self.capacity * 1000)


@dataclass
class Allowance:
    """One upload-quota definition of ``ApiFileUploadThrottlerImpl``: ``limit`` MB per
    ``period`` seconds, a token bucket that starts full and refills continuously."""

    limit: float
    period: float
    allowance: float = -1.0
    stamp: float = 0.0

    def refill(self, now: float) -> None:
        if self.allowance < 0 and self.stamp == 0.0:
            self.allowance, self.stamp = self.limit, now
            return
        self.allowance = min(
            self.limit, self.allowance + (now - self.stamp) * self.limit / self.period
        )
        self.stamp = now

    def allows(self, mb: float) -> bool:
        # ``isAllowed``: a full allowance lets one file larger than the limit through
        if abs(self.allowance - self.limit) < 0.01:
            return True
        return self.allowance - mb > 0


def java_double(value: float) -> str:
    """A double as Java's ``"" + d`` writes it (``100.0``, ``99.5``)."""
    text = repr(float(value))
    return text if ("." in text or "e" in text or "n" in text) else text + ".0"


class Limits(Store):
    """Token buckets per caller (and one global), and the per-caller upload allowances."""

    throttling: bool
    rate_limit: tuple[int, float]
    hourly_limit: int
    daily_limit: int
    global_limit: tuple[int, float]
    #: ``(MB per hour, MB per day)``, or None when the upload quota is off
    upload_quota: tuple[float, float] | None
    _buckets: dict[str, list[Bucket]]
    _global_bucket: Bucket | None
    _upload_allowances: dict[str, list[Allowance]]

    def _throttle(self, headers: Mapping[str, str]) -> dict[str, str]:
        """Rate headers for every API response; raises 429 when over a limit (if enabled)."""
        if not self.throttling:
            dummy = {"Limit": "10", "Remaining": "10.0", "Wait": "100"}
            return {
                "X-Rate-Limit-Limit": dummy["Limit"],
                "X-Rate-Limit-Remaining": dummy["Remaining"],
                "X-Rate-Limit-WaitTimeTillNextRequestMillis-quarter_min": dummy["Wait"],
                "X-Rate-Limit-Limit-hour": dummy["Limit"],
                "X-Rate-Limit-Remaining-hour": dummy["Remaining"],
                "X-Rate-Limit-WaitTimeTillNextRequestMillis-hour": dummy["Wait"],
                "X-Rate-Limit-Limit-day": dummy["Limit"],
                "X-Rate-Limit-Remaining-day": dummy["Remaining"],
                "X-Rate-Limit-WaitTimeTillNextRequestMillis-day": dummy["Wait"],
                "X-Rate-Limit-MinWaitIntervalMillis": dummy["Wait"],
                "X-Rate-Limit-WaitTimeMillis": dummy["Wait"],
            }
        key = headers.get("apikey") or headers.get("authorization") or "anonymousApiUser"
        now = time.monotonic()
        with self._state:
            buckets = self._buckets.setdefault(
                key,
                [
                    Bucket(self.rate_limit[0], self.rate_limit[1]),
                    Bucket(self.hourly_limit, 3600.0),
                    Bucket(self.daily_limit, 86400.0),
                ],
            )
            if self._global_bucket is None:
                self._global_bucket = Bucket(*self.global_limit)
            every = [*buckets, self._global_bucket]
            for b in every:
                b.refill(now)
            allowed = all(b.tokens >= 1 for b in every)
            if allowed:
                for b in every:
                    b.tokens -= 1
            quarter, hour, day = buckets
            result = {
                "X-Rate-Limit-Limit": str(self.rate_limit[0]),
                "X-Rate-Limit-Remaining": repr(round(quarter.tokens, 3)),
                "X-Rate-Limit-WaitTimeTillNextRequestMillis-quarter_min": str(quarter.wait_ms()),
                "X-Rate-Limit-Limit-hour": str(self.hourly_limit),
                "X-Rate-Limit-Remaining-hour": repr(round(hour.tokens, 3)),
                "X-Rate-Limit-WaitTimeTillNextRequestMillis-hour": str(hour.wait_ms()),
                "X-Rate-Limit-Limit-day": str(self.daily_limit),
                "X-Rate-Limit-Remaining-day": repr(round(day.tokens, 3)),
                "X-Rate-Limit-WaitTimeTillNextRequestMillis-day": str(day.wait_ms()),
                "X-Rate-Limit-MinWaitIntervalMillis": "0",
                "X-Rate-Limit-WaitTimeMillis": str(max(b.wait_ms() for b in every)),
            }
            if not allowed:
                n, s = self.rate_limit
                message = (
                    f"Too many requests: please restrict requests to no more than {n} per "
                    f"{s:g} seconds on average"
                )
                # deliberately no Retry-After: the real interceptor does not set one
                raise ApiError(429, message, internal=42901, headers=result)
            return result

    def _upload_quota(self, method: str, headers: Mapping[str, str], body: bytes) -> dict[str, str]:
        """``APIFileUploadThrottlingInterceptor.preHandle``: count the multipart file parts in
        MB against the hourly and daily allowance of the raw ``apiKey`` (else the
        ``Authorization`` value, else ``anonymousApiUser``); the headers carry the hourly
        limit and what is left of it, on success and on the 429 alike."""
        content_type = headers.get("content-type", "")
        if method != "POST" or not content_type.lower().startswith("multipart/"):
            return {}  # not a MultipartHttpServletRequest: passes
        try:
            _, files = parse_multipart(body, content_type)
        except ApiError:
            return {}
        mb = sum(len(data) for _, data in files.values()) / BYTES_PER_MB
        key = headers.get("apikey") or headers.get("authorization") or "anonymousApiUser"
        assert self.upload_quota is not None
        now = time.monotonic()
        with self._state:
            allowances = self._upload_allowances.setdefault(
                key,
                [
                    Allowance(limit, period)
                    for limit, (_, period) in zip(self.upload_quota, UPLOAD_PERIODS, strict=True)
                ],
            )
            refused: Allowance | None = None
            for allowance in allowances:  # doProceed: in interval order, hour before day
                allowance.refill(now)
                if not allowance.allows(mb):
                    refused = allowance
                    break
                allowance.allowance -= mb
            hour = allowances[0]
            result = {
                "X-Upload-Limit-Limit": java_double(hour.limit),
                "X-Upload-Limit-Remaining": java_double(hour.allowance),
            }
        if refused is not None:
            message = (
                "File upload limit exceeded: please restrict upload to no more than "
                f"{int(refused.limit)} Mb per {refused.period:.0f}  seconds on average"
            )
            raise ApiError(429, message, internal=42902, errors=[""], headers=result)
        return result
