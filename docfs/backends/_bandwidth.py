"""``--bwlimit``: one byte budget for everything a mount downloads and uploads.

A token bucket of bytes, shared by the upload bodies (``CountingStream``, on the trio thread)
and the download bodies (received by worker threads, ``_threaded.py``), so a big ``cp`` in
either direction, or both at once, stays under the limit together: a shared office line keeps
room for everyone else. The bucket is filled at ``rate`` bytes per second up to ``burst``; a
taker reserves its bytes at once (the bucket may go below zero) and waits until the bucket
would have held them. Reservations are made under a lock and the waiting is done outside it,
each by its own kind of sleep (trio's, or a thread's wait that the reader's leaving cuts
short), so concurrent takers share the rate in the order they came and none holds another up
beyond its share.

One clock serves both sides: ``time.monotonic`` (trio's clock is not readable from a thread);
the tests give a trio ``MockClock``'s instead and take on the trio side only.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import trio

log = logging.getLogger("docfs.http")

#: the bucket holds this many seconds of the rate at most: a copy that starts after a pause
#: goes at full speed for this long (within ±10% of the limit over a 10 s copy)
BURST_SECONDS = 0.125
#: ... but at least one piece of a body (a download's batch, an upload's ``COUNT_PIECE``)
MIN_BURST = 64 << 10


class Bandwidth:
    """A byte-rate limit shared by every transfer of one mount (see the module)."""

    def __init__(
        self,
        rate: float,
        burst: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if rate <= 0:
            raise ValueError(f"bandwidth limit must be positive, not {rate}")
        self.rate = float(rate)
        self.burst = float(burst if burst is not None else max(MIN_BURST, rate * BURST_SECONDS))
        self._clock = clock
        self._lock = threading.Lock()
        self._tokens = self.burst
        self._stamp = clock()
        #: transfers that had to wait for the limit, and the seconds they waited in all
        self.waits = 0
        self.waited = 0.0

    def reserve(self, size: int) -> float:
        """Take ``size`` bytes from the budget; the seconds to wait before sending them."""
        with self._lock:
            now = self._clock()
            self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
            self._stamp = now
            self._tokens -= size
            if self._tokens >= 0:
                return 0.0
            delay = -self._tokens / self.rate
            self.waits += 1
            self.waited += delay
            return delay

    async def take(self, size: int) -> None:
        """(trio) Wait until ``size`` bytes may go."""
        delay = self.reserve(size)
        if delay > 0:
            await trio.sleep(delay)

    def take_blocking(self, size: int, pause: Callable[[float], None]) -> None:
        """(a thread) Wait until ``size`` bytes may go; ``pause(seconds)`` waits (and may return
        early when the transfer is abandoned)."""
        delay = self.reserve(size)
        if delay > 0:
            pause(delay)
