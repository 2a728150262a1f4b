"""Writing a download into its cache file in a thread of its own.

Writing 256 MiB costs the trio thread a good part of what receiving them costs, and that
thread also answers the reads waiting for those bytes. ``os.write`` releases the GIL, so a
writer thread per download lets it run on another core (started only
past the first ``INLINE`` bytes, which are written at once: small files need no thread). The trio
side queues chunks and is told, in batches, how far the file has been written: a reader is
served only bytes that are in the file. At most ``BACKLOG`` bytes wait in the queue; beyond
that the download waits for the disk.
"""

from __future__ import annotations

import contextlib
import os
import queue
import threading
from collections.abc import Callable

import trio

BACKLOG = 16 << 20
#: the first bytes of a download are written on the trio thread (see ``write``)
INLINE = 256 << 10


class FileWriter:
    """Append chunks to ``fd`` in a worker thread; ``progress(written)`` is called
    on the trio thread as bytes land."""

    def __init__(self, fd: int, progress: Callable[[int], None]) -> None:
        self._fd = fd
        self._progress = progress
        self._token = trio.lowlevel.current_trio_token()
        self._queue: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
        self._abort = False
        self._error: OSError | None = None
        self.queued = 0
        #: bytes in the file (written by the thread; read on the trio thread)
        self._written = 0
        self._reported = 0
        self._report_pending = False
        self._room = trio.Event()
        self._finished = trio.Event()
        #: started by the first chunk past ``INLINE``: a small file never needs it
        self._thread: threading.Thread | None = None

    # ---- worker thread ---------------------------------------------------------------------

    def _work(self) -> None:
        try:
            while (chunk := self._queue.get()) is not None:
                if self._abort or self._error is not None:
                    continue
                try:
                    view = memoryview(chunk)
                    while view:
                        view = view[os.write(self._fd, view) :]
                except OSError as exc:
                    self._error = exc
                    continue
                self._written += len(chunk)
                if not self._report_pending:
                    # one wake-up of the trio loop per batch of writes, not per chunk
                    self._report_pending = True
                    self._call_soon(self._report)
        finally:
            self._call_soon(self._finished.set)

    def _call_soon(self, fn: Callable[[], None]) -> None:
        # after the daemon is gone nobody is waiting any more
        with contextlib.suppress(trio.RunFinishedError):
            self._token.run_sync_soon(fn)

    # ---- trio thread -----------------------------------------------------------------------

    def _report(self) -> None:
        self._report_pending = False
        written = self._written
        if written != self._reported:
            self._reported = written
            self._progress(written)
        if self.queued - written <= BACKLOG:
            self._room.set()

    async def write(self, chunk: bytes) -> None:
        if self._error is not None:
            raise self._error
        if self.queued + len(chunk) <= INLINE:
            # the first bytes are written right here: a reader waiting for them would
            # otherwise wait for two thread hand-overs (the thread has nothing queued yet)
            view = memoryview(chunk)
            while view:
                view = view[os.write(self._fd, view) :]
            self.queued += len(chunk)
            self._written = self._reported = self.queued
            self._progress(self.queued)
            return
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._work, name="docfs-cache-writer", daemon=True
            )
            self._thread.start()
        self.queued += len(chunk)
        self._queue.put(chunk)
        while self.queued - self._reported > BACKLOG and self._error is None:
            self._room = trio.Event()
            await self._room.wait()

    async def finish(self) -> None:
        """Wait until every chunk is in the file."""
        if self._thread is None:
            return  # all written inline
        self._queue.put(None)
        await self._finished.wait()
        self._thread.join()
        if self._error is not None:
            raise self._error
        self._report()

    def abort(self) -> None:
        """Stop writing (a failed or cancelled download) and wait for the thread: the file
        descriptor may be closed right after this returns."""
        self._abort = True
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join()
