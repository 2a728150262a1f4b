"""Offline: what the mount does while the server cannot be reached (issue 22).

The backend says when its server stops answering (``Backend.on_unreachable``: every try of a
request went unanswered) and when it answers again (``Backend.on_recovery``). In between the
mount is *offline*: listings are served from what is cached, also past ``--dir-cache-time``
(one log line for the whole outage, not one per directory); content that is cached (pinned
folders above all) is read as always, from local disk; a read that needs the server waits at
most ``QUICK`` seconds for one probe of the server and fails with EIO if it still does not
answer, instead of waiting through the retries' backoff for every file; and a probe asks the
server every ``PROBE_EVERY`` seconds, so the mount comes back without a remount as soon as it
answers (any request that gets an answer ends the outage too). Writes are not held
back: the write-back queue keeps them, sync mode fails ``close()`` with lost+found as before.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable

import trio

from docfs import errors
from docfs.backends.base import Backend

log = logging.getLogger("docfs.vfs")

#: seconds between two probes of an unreachable server
PROBE_EVERY = 2.0
#: the longest a read waits offline for a probe's answer
QUICK = 0.5
#: the least time between two probes (a burst of reads shares them)
PROBE_GAP = 0.1


class Offline:
    """Whether the server is reachable, since when not, and how many requests failed."""

    def __init__(self, backend: Backend, *, probe_every: float = PROBE_EVERY) -> None:
        self.backend = backend
        self.probe_every = probe_every
        #: wall time the outage began (None: online)
        self.since: float | None = None
        #: requests that failed (or were not sent) since then
        self.failed = 0
        self._errors_at_start = 0
        self._stale_logged = False
        self._changed = trio.Event()
        self._nursery: trio.Nursery | None = None
        self._probe: Callable[[], Awaitable[None]] | None = None
        self._probing: trio.Event | None = None
        self._probed_at = self._probe_began = float("-inf")
        backend.on_unreachable(self.went_down)
        backend.on_recovery(self.came_back)

    @property
    def offline(self) -> bool:
        return self.since is not None

    def _errors(self) -> int:
        return sum(s.errors for s in self.backend.traffic().endpoints.values())

    def went_down(self) -> None:
        if self.since is not None:
            return
        self.since = time.time()
        self.failed = 0
        self._errors_at_start = self._errors()
        self._stale_logged = False
        log.warning(
            "offline: the server does not answer; serving cached listings and content, "
            "retrying every %g s",
            self.probe_every,
        )
        self._wake()

    def came_back(self) -> None:
        if self.since is None:
            return
        log.info("online again after %.0f s offline", time.time() - self.since)
        self.since = None
        self._wake()

    def _wake(self) -> None:
        event, self._changed = self._changed, trio.Event()
        event.set()

    def refuse(self, what: str) -> errors.RemoteUnavailable:
        """The error for a request not sent because the mount is offline (counted)."""
        self.failed += 1
        return errors.RemoteUnavailable(f"offline: {what} is not cached")

    def stale_listing(self, path: str) -> None:
        """A listing past its time is served as it is: said once per outage."""
        if not self._stale_logged:
            self._stale_logged = True
            log.warning("offline: serving cached listings past --dir-cache-time (first: %r)", path)

    def report(self) -> dict[str, float | int] | None:
        """For ``docfs status``: since when, how many requests failed, the probe interval."""
        if self.since is None:
            return None
        failed = self.failed + max(0, self._errors() - self._errors_at_start)
        return {"since": self.since, "failed": failed, "retry_every": self.probe_every}

    # ---- probing -------------------------------------------------------------------------

    def start(self, nursery: trio.Nursery, probe: Callable[[], Awaitable[None]]) -> None:
        """Probe the server with ``probe`` while offline (every ``probe_every`` seconds, and
        when a read needs it: ``reachable``)."""
        self._nursery, self._probe = nursery, probe
        nursery.start_soon(self._loop)

    async def _loop(self) -> None:
        while True:
            if self.since is None:
                await self._changed.wait()
                continue
            with trio.move_on_after(self.probe_every):
                await self._changed.wait()
            if self.since is not None:
                await self.nudge().wait()

    def nudge(self) -> trio.Event:
        """Start a probe unless one runs (or one ended moments ago); set when it is over."""
        if self._probing is not None:
            return self._probing
        done = trio.Event()
        if self._nursery is None or trio.current_time() - self._probed_at < PROBE_GAP:
            done.set()
            return done
        self._probing = done
        self._probe_began = trio.current_time()
        self._nursery.start_soon(self._probe_once, done)
        return done

    async def _probe_once(self, done: trio.Event) -> None:
        try:
            assert self._probe is not None
            await self._probe()
        except errors.DocfsError as exc:
            log.debug("offline: probe failed: %s", exc)
        else:
            # an answer through a backend that does not report recoveries itself
            self.came_back()
        finally:
            self._probing = None
            self._probed_at = trio.current_time()
            done.set()

    async def reachable(self) -> bool:
        """Online, or back after a quick probe: a read offline waits at most ``QUICK``
        seconds for it (a server that is back serves at once; one still away fails the read
        fast, not after the retries' backoff)."""
        if self.since is None:
            return True
        asked = trio.current_time()
        with trio.move_on_after(QUICK):
            while self.since is not None:
                if self._probing is None and self._probe_began >= asked:
                    break  # a probe sent since the read asked: its failure is the answer
                gap = self._probed_at + PROBE_GAP - trio.current_time()
                if self._probing is None and gap > 0:
                    await trio.sleep(gap)  # one ended moments ago (it may predate the return)
                    continue
                await self.nudge().wait()
        return self.since is None
