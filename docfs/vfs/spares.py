"""Empty files made ahead of need, so the trio thread renames a file instead of creating one.

Creating a file is the slow metadata operation on some filesystems: on the ext4 of the machines
the benchmarks run on it costs ~1.5 ms of kernel CPU, against ~0.03 ms for a rename between two
directories. ``cp -r`` of small files into the mount creates two files per file on the trio
thread (the staged copy, and in write-back mode the queue entry's JSON), stalling every FUSE
request meanwhile. ``SpareFiles`` creates them in a worker thread, in a directory of its own (a
create holds its directory's lock, which a rename out of another directory does not wait for),
and hands them out by rename. Until its task runs, or when it runs dry, ``take`` says no and the
caller creates the file itself: spares make writes faster, never different.
"""

from __future__ import annotations

import itertools
import logging
import os
import shutil
from pathlib import Path

import trio

log = logging.getLogger("docfs.spares")


class SpareFiles:
    def __init__(self, root: Path, *, keep: int = 64) -> None:
        self.dir = root / "spare"
        # spares of an earlier run are as good as new, but their names are unknown: start over
        shutil.rmtree(self.dir, ignore_errors=True)
        self.dir.mkdir(parents=True)
        self.keep = keep
        self._ready: list[Path] = []
        self._names = itertools.count(1)
        #: set when the pool runs low; nothing is made before the first ``take`` (a mount that
        #: is only read never pays for spares)
        self._wanted = trio.Event()
        #: files made / takes served by a spare / takes that found none (tests, benchmarks)
        self.made = 0
        self.served = 0
        self.missed = 0

    def take(self, dest: Path) -> bool:
        """Move an empty file (mode 0600) to ``dest``; False if none is ready."""
        if len(self._ready) <= self.keep // 2:
            self._wanted.set()
        while self._ready:
            spare = self._ready.pop()
            try:
                os.rename(spare, dest)
            except FileNotFoundError:
                continue  # removed behind our back: try the next one
            self.served += 1
            return True
        self.missed += 1
        return False

    def _make(self, paths: list[Path]) -> list[Path]:
        """(worker thread) Create these empty files; returns those that were made."""
        made = []
        for path in paths:
            try:
                os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
            except OSError as exc:
                # a full disk or a vanished cache dir: the callers create their own files
                log.debug("cannot make spare files in %s: %s", self.dir, exc)
                break
            made.append(path)
        return made

    async def run(self) -> None:
        """Keep up to ``keep`` spares ready, refilling whenever ``take`` finds the pool low."""
        while True:
            await self._wanted.wait()
            self._wanted = trio.Event()
            wanted = self.keep - len(self._ready)
            if wanted <= 0:
                continue
            paths = [self.dir / str(next(self._names)) for _ in range(wanted)]
            # not abandoned on cancel: a thread still making files after the daemon stopped
            # would race whoever removes the cache directory (a batch takes ~0.1 s)
            made = await trio.to_thread.run_sync(self._make, paths)
            self.made += len(made)
            self._ready.extend(made)
            if len(made) < len(paths):
                await trio.sleep(1.0)  # do not spin on a full disk
