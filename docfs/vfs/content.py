"""The on-disk content cache: LRU by bytes, keyed by (remote, entry id, version).

Files live under ``<cache>/content/`` named by a hash of their key, so a changed file (new
version) can never be served from an old copy. A download streams into ``<name>.part``; readers
are served from that file as soon as the bytes they asked for have arrived, and every reader of
the same key shares the one download. When the download completes and its size (and MD5, where
the repository gives one) match, the file is renamed to its final name; a ``.part`` file is
never served after a restart. Use order is kept in the files' mtimes, so the LRU survives
restarts. Files that are open are pinned and never evicted.

The bookkeeping (use order, eviction, files held for pinned folders, the age and free-space
limits) is ``CacheIndex`` in ``docfs.vfs.cacheindex``.

For backends with byte ranges a file is filled in blocks instead (``BlockDownload``): a read
fetches only the blocks it touches, several blocks are fetched in parallel, and a sequential
reader makes the cache read ahead of it. The file becomes a complete cache entry once every
block is there and verified, exactly like a streamed one.

Downloads follow reads (issue 25): opening a file sends no request, the first read does. A
stream runs only so far ahead of what its readers asked for (``STREAM_AHEAD``, or as far again
as they have read); a small read at the start of a ranged file fetches ``FIRST_FETCH`` bytes,
not a whole block. When the last handle closes on a stream that is far from complete, the
transfer is cancelled and the bytes received are kept as ``<name>.partial``: a prefix of the
file whose size is its length, served without a request to the next reader that stays inside
it, and continued from where it stopped (one request from byte 0 where the backend has no
ranges) by one that needs more. Only the complete file is verified against the checksum; a
prefix is what the server sent, exactly as a reader of a running download is served.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import trio

from docfs import errors
from docfs.backends.base import Entry, Sink
from docfs.vfs import checksums
from docfs.vfs.blocks import BLOCK_FETCHERS as BLOCK_FETCHERS
from docfs.vfs.blocks import BLOCK_SIZE as BLOCK_SIZE
from docfs.vfs.blocks import FINISH_BELOW, FIRST_FETCH, INLINE_VERIFY, READ_AHEAD, BlockDownload
from docfs.vfs.blocks import RangeFetch as RangeFetch
from docfs.vfs.cacheindex import PARTIAL as PARTIAL
from docfs.vfs.cacheindex import CacheIndex
from docfs.vfs.filewriter import FileWriter

log = logging.getLogger("docfs.cache")

#: streams bytes [start, end of file) of a file into the sink
Fetch = Callable[[Sink, int], Awaitable[None]]

#: a stream may receive this far past the furthest byte a reader asked for, or as far again as
#: that byte, whichever is more: a sniffer's 4 KiB read costs a few hundred KiB, not the file,
#: and a sequential reader's window doubles as it goes (its reads never wait for it)
STREAM_AHEAD = 64 << 10
#: "the whole file" as a reader's demand
EVERYTHING = 1 << 62


@dataclass
class Download:
    key: str
    path: Path
    expected: int | None
    received: int = 0
    done: bool = False
    error: BaseException | None = None
    _progress: trio.Event = field(default_factory=trio.Event)
    #: the furthest byte a reader asked for (EVERYTHING: run to the end)
    demand: int = 0
    #: bytes handed to the cache file's writer (``received`` counts those written)
    given: int = 0
    _wanted: trio.Event = field(default_factory=trio.Event)
    #: cancels the transfer when the last reader leaves (``stopped``)
    scope: trio.CancelScope = field(default_factory=trio.CancelScope)
    stopped: bool = False
    #: set when the download is over: complete, failed, or stopped with its prefix kept
    ended: trio.Event = field(default_factory=trio.Event)

    def want(self, upto: int) -> None:
        """A reader asks for bytes up to ``upto``: let the stream run further if it waits."""
        if upto > self.demand:
            self.demand = upto
            wanted, self._wanted = self._wanted, trio.Event()
            wanted.set()

    async def room(self) -> None:
        """Until the stream may take its next chunk (see ``STREAM_AHEAD``)."""
        while self.given >= max(self.demand + STREAM_AHEAD, 2 * self.demand):
            await self._wanted.wait()

    def advance(self, received: int) -> None:
        """``received`` bytes are in the file now: wake the readers."""
        self.received = received
        self.notify()

    def notify(self) -> None:
        """Wake every waiting reader (each chunk: an Event per chunk is cheap)."""
        event, self._progress = self._progress, trio.Event()
        event.set()

    async def wait_for(self, upto: int) -> None:
        """Until ``upto`` bytes are there, the download ended, or it failed."""
        while self.received < upto and not self.done and self.error is None:
            await self._progress.wait()
        if self.error is not None and self.received < upto:
            if isinstance(self.error, errors.DocfsError):
                raise self.error
            raise errors.RemoteUnavailable(f"download failed: {self.error}")


@dataclass
class Handle:
    """An open cached file. Nothing is fetched at open: the first read that needs bytes gives
    the handle its source (``ContentCache._attach``) — the complete copy, a kept prefix, or
    the download filling the file — and a file descriptor on it."""

    key: str
    entry: Entry
    size: int | None
    fetch: Fetch
    ranged: RangeFetch | None
    nursery: trio.Nursery
    fd: int = -1
    download: Download | None = None
    blocks: BlockDownload | None = None
    #: ``fd`` is the complete, verified copy
    complete: bool = False
    #: ``fd`` is a kept prefix: bytes [0, prefix) are there, nothing is being fetched
    prefix: int = 0
    #: where the last read of this handle ended (sequential readers get read-ahead)
    next_offset: int = 0


class ContentCache(CacheIndex):
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
        super().__init__(root, limit, namespace, max_age=max_age, min_free=min_free, clock=clock)
        #: open handles per key: the download of a file nobody holds open is stopped
        self._readers: dict[str, int] = {}
        self._downloads: dict[str, Download] = {}
        self._blocks: dict[str, BlockDownload] = {}
        self._block_entries: dict[str, Entry] = {}
        self._scan()

    def _in_flight(self) -> int:
        in_flight = sum(d.received for d in self._downloads.values())
        return in_flight + sum(b.received for b in self._blocks.values())

    def _coming(self) -> int:
        coming = sum(
            max(0, (d.expected or d.received) - d.received) for d in self._downloads.values()
        )
        return coming + sum(b.size - b.received for b in self._blocks.values())

    # ---- bookkeeping -----------------------------------------------------------------------

    def _scan(self) -> None:
        found: list[tuple[float, str, int]] = []
        for path in self.dir.iterdir():
            if path.suffix == ".part":
                # left by a crash or kill: its content is unverified, never serve it
                path.unlink(missing_ok=True)
                continue
            st = path.stat()
            found.append((st.st_mtime, path.name, st.st_size))
        for mtime, name, size in sorted(found):
            self._keep(name, size)
            self._used_at[name] = mtime
        for key in [k for k in self.held if k not in self._files]:
            del self.held[key]  # removed behind our back: the pin fetches it again
        self._evict()

    # ---- open / read / release -------------------------------------------------------------

    def open(
        self,
        entry: Entry,
        fetch: Fetch,
        nursery: trio.Nursery,
        ranged: RangeFetch | None = None,
    ) -> Handle:
        """A handle on the content of ``entry``; no request until a read needs bytes.

        With ``ranged`` (and a known size) the file is filled block by block on demand.
        """
        key = self.key(entry)
        handle = Handle(key, entry, entry.size, fetch, ranged if entry.size else None, nursery)
        self._pin(key)
        self._readers[key] = self._readers.get(key, 0) + 1
        if key in self._files:
            try:
                self._use_complete(handle)
            except BaseException:
                self.release(handle)
                raise
        return handle

    def _use_complete(self, handle: Handle) -> None:
        self._touch(handle.key)
        fd = os.open(self.path(handle.key), os.O_RDONLY)
        self._set_fd(handle, fd)
        handle.size = self._files[handle.key]
        handle.complete = True

    @staticmethod
    def _set_fd(handle: Handle, fd: int) -> None:
        if handle.fd >= 0:
            os.close(handle.fd)
        handle.fd = fd

    async def _attach(self, handle: Handle, upto: int) -> None:
        """Give ``handle`` what serves bytes up to ``upto``: the complete copy, the kept
        prefix if they are in it, else the download (joined, or started now)."""
        key = handle.key
        while True:
            if key in self._files:
                self._use_complete(handle)
                return
            download = self._downloads.get(key)
            if download is not None and download.stopped:
                await download.ended.wait()  # its prefix is kept in a moment: then use it
                continue
            blocks = self._blocks.get(key)
            if blocks is not None and blocks.stopping:
                # a reader again before the stop settled: go on (fetches cancelled meanwhile
                # are asked for again from where they stopped)
                blocks.stopping = False
            if download is None and blocks is None:
                prefix = self._files.get(key + PARTIAL)
                if prefix is not None and upto <= prefix:
                    self._touch(key + PARTIAL)
                    self._set_fd(handle, os.open(self.dir / (key + PARTIAL), os.O_RDONLY))
                    handle.prefix = prefix
                    return
                if handle.ranged is not None:
                    blocks = self._start_blocks(key, handle.entry, handle.ranged)
                else:
                    download = self._start(key, handle.entry, handle.fetch, handle.nursery)
            path = blocks.path if blocks is not None else self.dir / f"{key}.part"
            self._set_fd(handle, os.open(path, os.O_RDONLY))
            handle.download, handle.blocks, handle.prefix = download, blocks, 0
            return

    def _take_partial(self, key: str, path: Path) -> int:
        """Make a kept prefix of ``key`` the start of a new download's file ``path``; returns
        its length (0: none, ``path`` is created empty)."""
        name = key + PARTIAL
        if name not in self._files:
            path.write_bytes(b"")
            return 0
        size = self._forget(name)
        os.rename(self.dir / name, path)
        return size

    def _start(self, key: str, entry: Entry, fetch: Fetch, nursery: trio.Nursery) -> Download:
        path = self.dir / f"{key}.part"
        # create the file now so readers can open it before the first byte arrives
        self._make_room((entry.size or 0) - self._files.get(key + PARTIAL, 0), entry.name)
        base = self._take_partial(key, path)
        download = Download(key, path, entry.size, received=base, given=base)
        self._downloads[key] = download
        self._pin(key)  # held by the download itself until it ends
        nursery.start_soon(self._run, download, entry, fetch)
        return download

    def _start_blocks(self, key: str, entry: Entry, fetch: RangeFetch) -> BlockDownload:
        assert entry.size is not None
        path = self.dir / f"{key}.part"
        self._make_room(entry.size - self._files.get(key + PARTIAL, 0), entry.name)
        base = self._take_partial(key, path)
        blocks = BlockDownload(key, path, entry.size, fetch)
        # a kept prefix counts as fetched: whole blocks, and the start of the next one
        for block in range(blocks.count):
            first = block * BLOCK_SIZE
            have = min(base - first, min(entry.size, first + BLOCK_SIZE) - first)
            if have <= 0:
                break
            blocks.filled[block] = have
            if first + have == min(entry.size, first + BLOCK_SIZE):
                blocks.present[block] = 1
        blocks.received = base
        self._blocks[key] = blocks
        self._pin(key)  # held until every block is there (or it failed)
        self._block_entries[key] = entry
        return blocks

    def _block_arrived(self, blocks: BlockDownload, nursery: trio.Nursery) -> None:
        """After each block: finish the file when complete, give up when failed."""
        if blocks.done or blocks.verifying or self._blocks.get(blocks.key) is not blocks:
            return  # finished, being finished or given up already
        if blocks.stopping and blocks.error is None and blocks.missing():
            if not blocks.pending:
                self._settle(blocks)
            return
        if blocks.error is not None:
            if not blocks.pending:
                self._end_blocks(blocks, complete=False)
            return
        if blocks.pending or blocks.missing():
            return
        checksum = checksums.expected(self._block_entries[blocks.key])
        if checksum is None:
            self._end_blocks(blocks, complete=True)  # nothing to check it against
        elif blocks.size <= INLINE_VERIFY:
            # little to read: finished before the last reader is answered, as before
            self._verify(blocks, checksums.digest(blocks.path, checksum.algorithm))
        else:
            blocks.verifying = True
            nursery.start_soon(self._verify_in_thread, blocks)

    async def _verify_in_thread(self, blocks: BlockDownload) -> None:
        checksum = checksums.expected(self._block_entries[blocks.key])
        assert checksum is not None  # (checked by _block_arrived)
        self._verify(
            blocks, await checksums.digest_async(blocks.path, checksum.algorithm, blocks.size)
        )

    def _verify(self, blocks: BlockDownload, digest: str | OSError) -> None:
        """Keep the file if ``digest`` is the checksum the repository gave."""
        entry = self._block_entries[blocks.key]
        checksum = checksums.expected(entry)
        assert checksum is not None  # (checked by _block_arrived)
        if isinstance(digest, OSError):
            blocks.error = digest
            log.warning("download of %r failed: cache file: %s", entry.name, digest)
            self._end_blocks(blocks, complete=False)
            return
        if digest != checksum.value:
            what = checksums.label(checksum)
            log.warning("download of %r: %s mismatch; not cached", entry.name, what)
            blocks.error = errors.ProtocolError(f"download of {entry.name!r}: {what} mismatch")
            self._end_blocks(blocks, complete=False)
            return
        self._end_blocks(blocks, complete=True)

    def _end_blocks(self, blocks: BlockDownload, complete: bool, keep: int = 0) -> None:
        """Finish a block download: the complete file joins the cache; else the first
        ``keep`` bytes are kept as a prefix (stopped) or the file goes (failed)."""
        del self._blocks[blocks.key]
        del self._block_entries[blocks.key]
        if complete:
            os.close(blocks.fd)
            os.rename(blocks.path, self.path(blocks.key))
            self._keep(blocks.key, blocks.size)
            blocks.done = True
        elif keep > 0:
            os.ftruncate(blocks.fd, keep)  # the blocks beyond a gap are dropped
            os.close(blocks.fd)
            self._keep_prefix(blocks.key, blocks.path, keep)
        else:
            os.close(blocks.fd)
            blocks.path.unlink(missing_ok=True)
        blocks.ended.set()
        self._unpin(blocks.key)
        self._evict()

    def _settle(self, blocks: BlockDownload) -> None:
        """A stopped block download with nothing in flight: bytes from the start of the file
        only become its kept prefix (on disk, across restarts); with blocks elsewhere too (a
        zip's directory at its end, a seek) it stays as it is for this mount, and a reader
        of those bytes again asks for nothing."""
        prefix = blocks.prefix()
        if sum(blocks.filled) > prefix:
            blocks.stopping = False
        else:
            self._end_blocks(blocks, complete=False, keep=prefix)

    def _request_blocks(
        self, handle: Handle, offset: int, size: int, nursery: trio.Nursery
    ) -> None:
        blocks = handle.blocks
        assert blocks is not None
        arrived = partial(self._block_arrived, blocks, nursery)
        sequential = offset == handle.next_offset and offset > 0
        end = offset + size
        if end <= FIRST_FETCH and not (sequential and end > FIRST_FETCH // 2):
            # a small read at the start (a sniff of the file's type, a thumbnailer's header
            # read in a few small pieces): FIRST_FETCH bytes, not a whole block; a reader
            # that goes on sequentially past half of them gets the rest and read-ahead
            # (while it reads the second half: the next request's wait is hidden)
            blocks.start(0, nursery, arrived, upto=FIRST_FETCH)
            return
        needed = blocks.block_range(offset, size)
        wanted = list(needed)
        if sequential:
            # a sequential reader: keep READ_AHEAD blocks in flight ahead of it
            wanted.extend(range(needed.stop, needed.stop + READ_AHEAD))
        for block in wanted:
            blocks.start(block, nursery, arrived)

    async def _run(self, download: Download, entry: Entry, fetch: Fetch) -> None:
        checksum = checksums.expected(entry)
        base = download.received
        fd = os.open(download.path, os.O_WRONLY)
        os.lseek(fd, base, os.SEEK_SET)
        writer = FileWriter(fd, lambda written: download.advance(base + written))

        async def sink(chunk: bytes) -> None:
            await download.room()
            download.given += len(chunk)
            await writer.write(chunk)

        try:
            with download.scope:
                await fetch(sink, base)
            if download.scope.cancelled_caught:
                # the last reader left (``_leave``): what arrived is kept as a prefix
                await writer.finish()
                self._keep_prefix(download.key, download.path, os.fstat(fd).st_size)
                return
            await writer.finish()
            if download.expected is not None and download.received != download.expected:
                raise errors.ProtocolError(
                    f"download of {entry.name!r}: got {download.received} bytes, "
                    f"the repository says {download.expected}"
                )
            if checksum is not None:
                # hashed once every byte is in the file, not while they stream in: readers
                # get their bytes as they land either way, and hashing alongside took CPU
                # that receiving, writing and answering the reads need (a cold 256 MiB dd
                # through the mount ~12% faster)
                digest = await checksums.digest_async(
                    download.path, checksum.algorithm, download.received
                )
                if isinstance(digest, OSError):
                    raise digest
                if digest != checksum.value:
                    raise errors.ProtocolError(
                        f"download of {entry.name!r}: {checksums.label(checksum)} mismatch"
                    )
            os.rename(download.path, self.path(download.key))
            self._keep(download.key, download.received)
            download.done = True
        except BaseException as exc:
            writer.abort()
            download.error = exc
            download.path.unlink(missing_ok=True)
            if isinstance(exc, errors.DocfsError):
                log.warning("download of %r failed: %s", entry.name, exc)
            elif isinstance(exc, OSError):
                log.warning("download of %r failed: cache file: %s", entry.name, exc)
            elif isinstance(exc, Exception):
                log.exception("download of %r failed", entry.name)
            else:
                raise
        finally:
            os.close(fd)
            del self._downloads[download.key]
            download.notify()
            download.ended.set()
            self._unpin(download.key)
            self._evict()

    def _keep_prefix(self, key: str, path: Path, size: int) -> None:
        """A stopped download's file ``path`` becomes the kept prefix ``<key>.partial`` (its
        size is its length: bytes in order from 0, as the server sent them)."""
        if size <= 0:
            path.unlink(missing_ok=True)
            return
        name = key + PARTIAL
        os.rename(path, self.dir / name)
        self._keep(name, size)
        log.debug("kept the first %d bytes of %s", size, key)

    async def read(
        self, handle: Handle, offset: int, size: int, nursery: trio.Nursery | None = None
    ) -> bytes:
        nursery = nursery or handle.nursery
        end = offset + size
        if handle.size is not None:
            end = min(end, handle.size)
        if handle.fd < 0 or (
            not handle.complete
            and handle.download is None
            and handle.blocks is None
            and end > handle.prefix
        ):
            await self._attach(handle, end)
        blocks = handle.blocks
        if blocks is not None and not blocks.done and offset < blocks.size:
            await blocks.wait(
                offset, size, lambda: self._request_blocks(handle, offset, size, nursery)
            )
            handle.next_offset = offset + size
            return os.pread(handle.fd, size, offset)
        handle.next_offset = offset + size
        download = handle.download
        if download is not None and not download.done:
            download.want(end)
            await download.wait_for(end)
        return os.pread(handle.fd, size, offset)

    async def complete(self, handle: Handle, nursery: trio.Nursery | None = None) -> Path:
        """Wait for the whole file; returns the path of the cached copy."""
        nursery = nursery or handle.nursery
        if not handle.complete and handle.download is None and handle.blocks is None:
            await self._attach(handle, EVERYTHING)
        download = handle.download
        if download is not None:
            download.want(EVERYTHING)
            # every byte may have arrived while the verification and rename are still to come
            await download.wait_for(EVERYTHING)
        blocks = handle.blocks
        if blocks is not None and not blocks.done:
            arrived = partial(self._block_arrived, blocks, nursery)

            def every() -> None:
                for block in range(blocks.count):
                    blocks.start(block, nursery, arrived)

            await blocks.wait(0, blocks.size, every)
            self._block_arrived(blocks, nursery)  # in case every block was here already
            await blocks.ended.wait()
            if not blocks.done:
                raise errors.RemoteUnavailable(f"could not complete {handle.key}")
        return self.path(handle.key)

    def release(self, handle: Handle) -> None:
        if handle.fd >= 0:
            os.close(handle.fd)
            handle.fd = -1
        key = handle.key
        self._unpin(key)
        left = self._readers.get(key, 1) - 1
        if left > 0:
            self._readers[key] = left
        else:
            self._readers.pop(key, None)
            self._leave(key)
        self._evict()

    def _leave(self, key: str) -> None:
        """The last handle on ``key`` closed: a stream far from complete is stopped (its
        prefix is kept), one nearly complete is let run to the end."""
        blocks = self._blocks.get(key)
        if (
            blocks is not None
            and not blocks.verifying
            and not blocks.stopping
            and blocks.missing()  # else it is being finished: verified, then kept
        ):
            blocks.stop()
            if not blocks.pending:
                self._settle(blocks)  # nothing in flight (else the last fetch to end does)
        download = self._downloads.get(key)
        if download is None or download.done or download.stopped:
            return
        if download.expected is not None and (
            download.expected - download.received <= FINISH_BELOW
        ):
            download.want(EVERYTHING)
            return
        download.stopped = True
        download.scope.cancel()

    def drop(self, entry: Entry) -> None:
        """Forget the cached copy of ``entry`` (e.g. after it was removed)."""
        key = self.key(entry)
        if self._pins.get(key):
            return
        for name in (key, key + PARTIAL):
            if name in self._files:
                self._forget(name)
                (self.dir / name).unlink(missing_ok=True)

    def adopt(self, entry: Entry, src: Path) -> None:
        """Take a file we just uploaded as the cached copy of its new version (no download)."""
        key = self.key(entry)
        if key in self._files:
            return
        size = src.stat().st_size
        if size > self.limit:
            return
        try:
            self._make_room(size, entry.name)
        except errors.QuotaExceeded:
            return  # uploaded all the same: the next reader downloads it
        # a link is atomic: straight to the final name, one rename fewer per small upload
        # (issue 24, B5); a leftover there, or no hard links, go by a .part file and a rename
        try:
            os.link(src, self.path(key))
        except OSError:
            tmp = self.dir / f"{key}.part"
            tmp.unlink(missing_ok=True)
            try:
                os.link(src, tmp)
            except OSError:
                shutil.copyfile(src, tmp)
            os.rename(tmp, self.path(key))
        self._keep(key, size)

    def arriving(self, entry: Entry) -> bool:
        """Every byte of ``entry`` is here or on its way without further asking: cached, or a
        download of it that a reader asked to run to the end (or that has every byte, being
        checked), or every block of a ranged one arrived. Another reader joining now costs no
        transfer of its own; joining a stream held near a sniffer's bytes would."""
        key = self.key(entry)
        if key in self._files:
            return True
        download = self._downloads.get(key)
        if download is not None and download.error is None and not download.stopped:
            end = download.expected
            if download.demand >= EVERYTHING or (
                end is not None and max(download.demand, download.received) >= end
            ):
                return True
        blocks = self._blocks.get(key)
        return blocks is not None and blocks.error is None and not blocks.missing()
