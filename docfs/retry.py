"""The one retry policy: how many tries, how long to wait between them.

Three loops retry in docfs, each with its own numbers: the HTTP layer (a handful of quick
tries with full jitter, honouring a server's ``Retry-After`` up to a cap), the vfs's creates
whose answer was lost (three sends, each after looking whether the last one landed), and the
write-back queue (tries without end, pauses doubling up to five minutes). They differ in their
parameters, not in their rules, so the rules live here once: a loop asks the policy whether
another try is allowed and how long to pause before it.

Neutral ground: neither the backends nor the vfs own it, so both import it without either
importing the other.
"""

from __future__ import annotations

import random
import sys
from dataclasses import dataclass

#: ``attempts`` of a loop that never gives up (the write-back queue keeps a file until it is
#: uploaded or refused for good)
UNLIMITED = sys.maxsize


@dataclass
class RetryPolicy:
    """Tries and pauses of one retry loop.

    The pause before try ``attempt + 1`` (``attempt`` counts from 0, the try that just failed)
    is ``base * 2**attempt`` capped at ``cap``; with ``jitter`` a uniformly random part of
    that (full jitter: spreads the retries of many clients over the window). A server's
    ``Retry-After`` replaces the computed pause, unless it is longer than
    ``max_retry_after``: then the loop gives up and the error goes to the caller.
    """

    #: tries in all, the first included (``UNLIMITED``: never give up)
    attempts: int = 5
    base: float = 0.2
    cap: float = 10.0
    #: a Retry-After longer than this is not waited for: the error goes to the caller
    max_retry_after: float = 60.0
    jitter: bool = True

    def backoff(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to pause after the failed try ``attempt`` (0-based)."""
        if retry_after is not None:
            return retry_after
        # the exponent is bounded: a loop without end would overflow a float after ~1000 tries
        ceiling = min(self.cap, self.base * 2.0 ** min(attempt, 64))
        return random.uniform(0, ceiling) if self.jitter else ceiling

    def gives_up(self, attempt: int) -> bool:
        """The failed try ``attempt`` (0-based) was the last one allowed."""
        return attempt + 1 >= self.attempts

    def waits_for(self, retry_after: float | None) -> bool:
        """A server's ``Retry-After`` (None: it gave none) is short enough to wait for."""
        return retry_after is None or retry_after <= self.max_retry_after
