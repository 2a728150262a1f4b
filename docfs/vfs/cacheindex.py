"""The bookkeeping of the content cache: which files it has, their use order, what may go.

``CacheIndex`` is the part of ``ContentCache`` (``docfs.vfs.content``) that knows no downloads:
the complete files by key with their sizes in least-recently-used order, the keys open (never
evicted), and the cache control of issue 22 — files *held* for a pinned folder (``hold``, kept
in ``held.json`` next to ``content/`` so they survive restarts) are never evicted and do not
count against the LRU limit (the pins have their own budget, ``--pin-size``); ``max_age``
evicts content not read for that long; ``min_free`` keeps that much free on the cache's
filesystem: a new download first evicts, then is refused with ENOSPC rather than fill the disk.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import time
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path

import trio

from docfs import errors
from docfs.backends.base import Entry

log = logging.getLogger("docfs.cache")

#: a kept prefix of a file whose download was stopped: ``<key>.partial``
PARTIAL = ".partial"


class CacheIndex:
    """See the module docstring; ``ContentCache`` adds the downloads."""

    def __init__(
        self,
        root: Path,
        limit: int,
        namespace: str,
        *,
        max_age: float | None = None,
        min_free: int = 0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.dir = root / "content"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.limit = limit
        self.namespace = namespace
        #: content not read for this many seconds is evicted (None: kept while it fits)
        self.max_age = max_age
        #: bytes kept free on the cache's filesystem (0: no floor)
        self.min_free = min_free
        self._clock = clock
        #: key → wall time of its last use (for ``max_age``)
        self._used_at: dict[str, float] = {}
        #: keys held for pinned folders → a label (the file's path in the mount); never evicted
        self._held_file = root / "held.json"
        self.held: dict[str, str] = _load_held(self._held_file)
        self._files: OrderedDict[str, int] = OrderedDict()  # key → size, least recent first
        #: sum of ``_files``: ``used`` is asked on every open and release, too often to add up
        self._stored = 0
        self._pins: dict[str, int] = {}

    # ---- bookkeeping -----------------------------------------------------------------------

    def key(self, entry: Entry) -> str:
        raw = f"{self.namespace}\0{entry.id}\0{entry.version}".encode()
        return hashlib.sha256(raw).hexdigest()[:40]

    def path(self, key: str) -> Path:
        return self.dir / key

    @property
    def used(self) -> int:
        """Bytes counted against ``limit``: everything but the held (pinned) files."""
        return self._stored - self.held_bytes + self._in_flight()

    def _in_flight(self) -> int:
        """Bytes received by downloads still running (the content cache counts them)."""
        return 0

    def _coming(self) -> int:
        """Bytes still to arrive for the downloads running now."""
        return 0

    @property
    def held_bytes(self) -> int:
        return sum(self._files.get(key, 0) for key in self.held)

    def contains(self, entry: Entry) -> bool:
        return self.key(entry) in self._files

    def _keep(self, key: str, size: int) -> None:
        """A complete file joins the cache (most recently used); the byte total follows."""
        self._stored += size - self._files.get(key, 0)
        self._files[key] = size
        self._files.move_to_end(key)
        self._used_at[key] = self._clock()

    def _forget(self, key: str) -> int:
        size = self._files.pop(key)
        self._stored -= size
        self._used_at.pop(key, None)
        return size

    def _touch(self, key: str) -> None:
        self._files.move_to_end(key)
        self._used_at[key] = self._clock()
        with contextlib.suppress(OSError):
            os.utime(self.path(key))

    def _evictable(self, key: str) -> bool:
        """Neither open, downloading nor held for a pin."""
        return not self._pins.get(key.removesuffix(PARTIAL)) and key not in self.held

    def _evict(self, room: int = 0) -> None:
        """Drop least recently used, unpinned files until ``room`` more bytes fit; then
        those not used for ``max_age``."""
        excess = self.used + room - self.limit
        if excess > 0:
            self._evict_lru(excess)
        self.expire()

    def _evict_lru(self, excess: int) -> None:
        # only when something must go: a copy of every key per adopted upload or download
        # was ~0.1 ms with 5,000 cached files (issue 24, B5), and grew with the cache
        for key in list(self._files):
            if excess <= 0:
                break
            if not self._evictable(key):
                continue
            excess -= self._remove(key)

    def _remove(self, key: str) -> int:
        size = self._forget(key)
        self.path(key).unlink(missing_ok=True)
        log.debug("evicted %s (%d bytes)", key, size)
        return size

    def expire(self) -> int:
        """Evict what was not used for ``max_age`` seconds; returns how many files went."""
        if self.max_age is None:
            return 0
        cutoff = self._clock() - self.max_age
        gone = 0
        for key in list(self._files):  # least recently used first: stop at the first young one
            if self._used_at.get(key, 0.0) >= cutoff:
                break
            if self._evictable(key):
                self._remove(key)
                gone += 1
        return gone

    async def run(self) -> None:
        """Evict content past ``max_age`` even when nobody opens anything."""
        if self.max_age is None:
            return
        while True:
            await trio.sleep(max(1.0, min(60.0, self.max_age / 4)))
            self.expire()

    # ---- the free-space floor --------------------------------------------------------------

    def _free(self) -> int:
        st = os.statvfs(self.dir)
        return st.f_bavail * st.f_frsize

    def _make_room(self, room: int, name: str) -> None:
        """Before a download of ``room`` bytes: evict (LRU first) until ``min_free`` bytes
        stay free on the cache's filesystem once it is in; raise ENOSPC when even that is not
        enough (rather than fill the disk: the user's other programs need it too). When
        evicting everything that may go would not make room, nothing is evicted."""
        self._evict(room)
        if not self.min_free:
            return
        short = self.min_free + room + self._coming() - self._free()
        evictable = [k for k in self._files if self._evictable(k)]
        if short > sum(self._files[k] for k in evictable):
            log.warning(
                "not downloading %r: the cache's filesystem would have less than %d bytes "
                "free (--cache-min-free); evict with `docfs cache clear` or unpin",
                name,
                self.min_free,
            )
            raise errors.QuotaExceeded(f"cache filesystem below --cache-min-free for {name!r}")
        for key in evictable:  # least recently used first
            if short <= 0:
                break
            short -= self._remove(key)

    # ---- held (pinned) files ---------------------------------------------------------------

    def hold(self, entry: Entry, label: str, *, save: bool = True) -> bool:
        """Keep the cached copy of ``entry`` for good (a pinned file); False if not cached.
        Another copy held under the same ``label`` (an older version) is let go. Without
        ``save`` the caller calls ``save_held`` (once for a pin of many files, not per file)."""
        key = self.key(entry)
        if key not in self._files:
            return False
        for old in [k for k, v in self.held.items() if v == label and k != key]:
            del self.held[old]
        self.held[key] = label
        if save:
            self.save_held()
        return True

    def unhold(self, keys: list[str]) -> None:
        """The files of ``keys`` become ordinary cache content (LRU) again."""
        for key in keys:
            self.held.pop(key, None)
        self.save_held()
        self._evict()

    def is_held(self, entry: Entry) -> bool:
        return self.key(entry) in self.held

    def size_of(self, key: str) -> int:
        return self._files.get(key, 0)

    def save_held(self) -> None:
        tmp = self._held_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.held))
        os.replace(tmp, self._held_file)

    def clear(self, keys: list[str] | None = None) -> tuple[int, int]:
        """Drop cached content (of ``keys``; None: all) that is neither open nor held;
        returns files and bytes dropped."""
        files = dropped = 0
        wanted = None if keys is None else {n for k in keys for n in (k, k + PARTIAL)}
        for key in list(self._files):
            if (wanted is None or key in wanted) and self._evictable(key):
                dropped += self._remove(key)
                files += 1
        return files, dropped

    def _pin(self, key: str) -> None:
        self._pins[key] = self._pins.get(key, 0) + 1

    def _unpin(self, key: str) -> None:
        left = self._pins.get(key, 1) - 1
        if left <= 0:
            self._pins.pop(key, None)
        else:
            self._pins[key] = left


def _load_held(path: Path) -> dict[str, str]:
    """The held keys of an earlier run (a damaged file holds nothing: pins fetch again)."""
    try:
        held = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(held, dict):
        return {}
    return {str(k): str(v) for k, v in held.items()}
