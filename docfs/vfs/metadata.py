"""Freshness of cached listings and attributes: a TTL with an injectable clock.

Listings are kept for ``ttl`` seconds (``--dir-cache-time``); within that time lookups,
``getattr`` and ``readdir`` are answered without a request, and a name missing from a fresh
listing is a negative answer (ENOENT) without a request. After it, the next access re-lists.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

Clock = Callable[[], float]


@dataclass
class Freshness:
    ttl: float = 60.0
    clock: Clock = field(default=time.monotonic)

    def now(self) -> float:
        return self.clock()

    def fresh(self, stamp: float | None) -> bool:
        return stamp is not None and self.clock() - stamp < self.ttl

    def fresh_for(self, stamp: float | None, ttls: float) -> bool:
        """Younger than ``ttls`` times the TTL."""
        return stamp is not None and self.clock() - stamp < self.ttl * ttls
