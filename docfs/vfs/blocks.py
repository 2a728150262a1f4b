"""Ranged downloads: a file filled block by block with range requests, in any order.

For backends with byte ranges a read fetches only the blocks it touches, several blocks are
fetched in parallel, and a sequential reader makes the cache read ahead of it (the policy is
``ContentCache._request_blocks``). A block's bytes are handed to readers as they land; the file
becomes a complete cache entry once every block is there and verified.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Awaitable, Callable
from pathlib import Path

import trio

from docfs import errors
from docfs.backends.base import Sink
from docfs.hashing import INLINE_MAX

log = logging.getLogger("docfs.cache")

#: when the last reader leaves a stream with at most this much still to come, it is finished
#: (and verified and cached) rather than cancelled. Small: a file manager sniffs every file of
#: a folder, and finishing each one that had less than 1 MiB to go cost a 60-file folder of
#: small documents more than the 5% of its size a visit may cost (issue 25)
FINISH_BELOW = 256 << 10

#: block size of ranged downloads, and how many blocks a sequential reader gets ahead
BLOCK_SIZE = 4 << 20
READ_AHEAD = 4
#: parallel block requests per file
BLOCK_FETCHERS = 4
#: a small read at the start of a ranged file fetches only this much of its first block
FIRST_FETCH = 256 << 10
#: a block-filled file up to this size is checked at once, a bigger one in a worker thread
INLINE_VERIFY = INLINE_MAX

#: fetches bytes [start, end) of the file
RangeFetch = Callable[[Sink, int, int], Awaitable[None]]


class BlockDownload:
    """A file being filled block by block with range requests, in any order."""

    def __init__(self, key: str, path: Path, size: int, fetch: RangeFetch) -> None:
        self.key, self.path, self.size, self.fetch = key, path, size, fetch
        self.count = max(1, -(-size // BLOCK_SIZE))
        self.present = bytearray(self.count)
        #: bytes from each block's start already in the file: a reader waits for its bytes,
        #: not for the whole block (4 MiB at a WAN's pace would be its time to first byte)
        self.filled = [0] * self.count
        self._grew = trio.Event()
        self.pending: dict[int, trio.Event] = {}
        self.error: BaseException | None = None
        self.done = False
        #: set when the download ended, complete and verified (``done``) or not
        self.ended = trio.Event()
        #: every block is here and the MD5 check runs in a worker thread
        self.verifying = False
        self.received = 0
        #: the last reader left: in-flight fetches are cancelled and the bytes from the
        #: start of the file on become its kept prefix (``ContentCache._leave``)
        self.stopping = False
        self._scopes: dict[int, trio.CancelScope] = {}
        #: where each fetch in flight ends
        self._ends: dict[int, int] = {}
        self.slots = trio.Semaphore(BLOCK_FETCHERS)
        self.fd = os.open(path, os.O_WRONLY)
        os.ftruncate(self.fd, size)  # sparse: blocks land at their offsets

    def block_range(self, offset: int, size: int) -> range:
        last = min(offset + max(size, 1), self.size) - 1
        return range(offset // BLOCK_SIZE, max(last, offset) // BLOCK_SIZE + 1)

    def missing(self) -> list[int]:
        return [b for b in range(self.count) if not self.present[b]]

    def start(
        self,
        block: int,
        nursery: trio.Nursery,
        on_block: Callable[[], None],
        upto: int | None = None,
    ) -> None:
        """Fetch the rest of ``block`` (only up to byte ``upto`` of the file, if given)."""
        if block >= self.count or self.present[block] or block in self.pending or self.stopping:
            return
        first = block * BLOCK_SIZE
        start = first + self.filled[block]
        end = min(self.size, first + BLOCK_SIZE)
        if upto is not None:
            if start >= upto:
                return  # that much is here already
            end = min(end, upto)
        self.pending[block] = trio.Event()
        self._ends[block] = end
        nursery.start_soon(self._fetch, block, start, end, on_block)

    async def _fetch(self, block: int, start: int, end: int, on_block: Callable[[], None]) -> None:
        first = block * BLOCK_SIZE
        position = start

        async def sink(chunk: bytes) -> None:
            nonlocal position
            view = memoryview(chunk)
            while view:
                written = os.pwrite(self.fd, view, position)
                position += written
                self.received += written
                view = view[written:]
            self.filled[block] = position - first
            self._wake()

        scope = self._scopes[block] = trio.CancelScope()
        try:
            with scope:
                async with self.slots:
                    await self.fetch(sink, start, end)
            if scope.cancelled_caught and position != end:
                return  # stopped (``stop``): what arrived stays in ``filled``
            if position != end:
                raise errors.ProtocolError(
                    f"range {start}-{end}: got {position - start} bytes, expected {end - start}"
                )
            if end == min(self.size, first + BLOCK_SIZE):
                self.present[block] = 1
        except BaseException as exc:
            if self.error is None:
                self.error = exc
            if not isinstance(exc, Exception):
                raise
            if isinstance(exc, errors.DocfsError):
                log.warning("block %d of %s failed: %s", block, self.key, exc)
            else:
                log.exception("block %d of %s failed", block, self.key)
        finally:
            del self._scopes[block], self._ends[block]
            self.pending.pop(block).set()
            self._wake()
            on_block()

    def stop(self) -> None:
        """Start no more fetches, and cancel those in flight unless little is left of them
        (then their bytes are worth more than the request they would cost again);
        ``on_block`` runs as each ends."""
        self.stopping = True
        left = sum(
            end - block * BLOCK_SIZE - self.filled[block] for block, end in self._ends.items()
        )
        if left > FINISH_BELOW:
            for scope in self._scopes.values():
                scope.cancel()

    def prefix(self) -> int:
        """How many bytes from the start of the file are in it, in one run."""
        for block in range(self.count):
            first = block * BLOCK_SIZE
            if self.filled[block] < min(self.size, first + BLOCK_SIZE) - first:
                return first + self.filled[block]
        return self.size

    def _wake(self) -> None:
        grew, self._grew = self._grew, trio.Event()
        grew.set()

    async def wait(self, offset: int, size: int, request: Callable[[], None]) -> None:
        """Until bytes [offset, offset + size) (within the file) are in it; ``request()``
        starts the fetches they need, again after each arrival (a first fetch of a block may
        have stopped short of them)."""
        end = min(offset + max(size, 1), self.size)
        while True:
            request()
            short = False
            for block in self.block_range(offset, size):
                first = block * BLOCK_SIZE
                need = min(end, first + BLOCK_SIZE) - first
                if not self.present[block] and self.filled[block] < need:
                    short = True
                    if block not in self.pending and self.error is None:
                        raise errors.RemoteUnavailable("block was not requested")
                    break
            if not short:
                return
            if self.error is not None:
                if isinstance(self.error, errors.DocfsError):
                    raise self.error
                raise errors.RemoteUnavailable(f"download failed: {self.error}")
            await self._grew.wait()
