"""The on-disk content cache: LRU by bytes, keyed by (remote, entry id, version).

Files live under ``<cache>/content/`` named by a hash of their key, so a changed file (new
version) can never be served from an old copy. A download streams into ``<name>.part``; readers
are served from that file as soon as the bytes they asked for have arrived, and every reader of
the same key shares the one download. When the download completes and its size (and MD5, where
the repository gives one) match, the file is renamed to its final name; a ``.part`` file is
never served after a restart. Use order is kept in the files' mtimes, so the LRU survives
restarts. Files that are open are pinned and never evicted.

For backends with byte ranges a file is filled in blocks instead (``BlockDownload``): a read
fetches only the blocks it touches, several blocks are fetched in parallel, and a sequential
reader makes the cache read ahead of it. The file becomes a complete cache entry once every
block is there and verified, exactly like a streamed one.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import shutil
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import trio

from docfs import errors
from docfs.backends.base import Entry, Sink
from docfs.vfs.filewriter import FileWriter

log = logging.getLogger("docfs.cache")

Fetch = Callable[[Sink], Awaitable[None]]


@dataclass
class Download:
    key: str
    path: Path
    expected: int | None
    received: int = 0
    done: bool = False
    error: BaseException | None = None
    _progress: trio.Event = field(default_factory=trio.Event)

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


#: block size of ranged downloads, and how many blocks a sequential reader gets ahead
BLOCK_SIZE = 4 << 20
READ_AHEAD = 4
#: parallel block requests per file
BLOCK_FETCHERS = 4
#: a block-filled file up to this size is MD5-checked at once, a bigger one in a worker thread
INLINE_VERIFY = 1 << 20

#: fetches bytes [start, end) of the file
RangeFetch = Callable[[Sink, int, int], Awaitable[None]]


def _checked_md5(path: Path) -> str | OSError:
    """The MD5 hex digest of a file's content, or why it could not be read."""
    md5 = hashlib.md5(usedforsecurity=False)
    try:
        with open(path, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                md5.update(chunk)
    except OSError as exc:
        return exc
    return md5.hexdigest()


async def _md5_of(path: Path, size: int) -> str | OSError:
    """``_checked_md5`` of a complete cache file: at once when small, else in a worker thread
    (reading 256 MiB back on the trio thread would stall every FUSE request ~0.5 s)."""
    if size <= INLINE_VERIFY:
        return _checked_md5(path)
    return await trio.to_thread.run_sync(_checked_md5, path)


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
        self.slots = trio.Semaphore(BLOCK_FETCHERS)
        self.fd = os.open(path, os.O_WRONLY)
        os.ftruncate(self.fd, size)  # sparse: blocks land at their offsets

    def block_range(self, offset: int, size: int) -> range:
        last = min(offset + max(size, 1), self.size) - 1
        return range(offset // BLOCK_SIZE, max(last, offset) // BLOCK_SIZE + 1)

    def missing(self) -> list[int]:
        return [b for b in range(self.count) if not self.present[b]]

    def start(self, block: int, nursery: trio.Nursery, on_block: Callable[[], None]) -> None:
        if block >= self.count or self.present[block] or block in self.pending:
            return
        self.pending[block] = trio.Event()
        nursery.start_soon(self._fetch, block, on_block)

    async def _fetch(self, block: int, on_block: Callable[[], None]) -> None:
        start = block * BLOCK_SIZE
        end = min(self.size, start + BLOCK_SIZE)
        position = start

        async def sink(chunk: bytes) -> None:
            nonlocal position
            view = memoryview(chunk)
            while view:
                written = os.pwrite(self.fd, view, position)
                position += written
                view = view[written:]
            self.filled[block] = position - start
            self._wake()

        try:
            async with self.slots:
                await self.fetch(sink, start, end)
            if position != end:
                raise errors.ProtocolError(
                    f"range {start}-{end}: got {position - start} bytes, expected {end - start}"
                )
            self.present[block] = 1
            self.received += end - start
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
            self.pending.pop(block).set()
            self._wake()
            on_block()

    def _wake(self) -> None:
        grew, self._grew = self._grew, trio.Event()
        grew.set()

    async def wait(self, offset: int, size: int) -> None:
        """Until bytes [offset, offset + size) (within the file) are in it."""
        end = min(offset + max(size, 1), self.size)
        for block in self.block_range(offset, size):
            first = block * BLOCK_SIZE
            need = min(end, first + BLOCK_SIZE) - first
            while not self.present[block] and self.filled[block] < need:
                if self.error is not None:
                    if isinstance(self.error, errors.DocfsError):
                        raise self.error
                    raise errors.RemoteUnavailable(f"download failed: {self.error}")
                if block not in self.pending:
                    raise errors.RemoteUnavailable("block was not requested")
                await self._grew.wait()


@dataclass
class Handle:
    """An open cached file: a file descriptor plus the download still filling it, if any."""

    key: str
    fd: int
    size: int | None
    download: Download | None
    blocks: BlockDownload | None = None
    #: where the last read of this handle ended (sequential readers get read-ahead)
    next_offset: int = 0


class ContentCache:
    def __init__(self, root: Path, limit: int, namespace: str) -> None:
        self.dir = root / "content"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.limit = limit
        self.namespace = namespace
        self._files: OrderedDict[str, int] = OrderedDict()  # key → size, least recent first
        #: sum of ``_files``: ``used`` is asked on every open and release, too often to add up
        self._stored = 0
        self._pins: dict[str, int] = {}
        self._downloads: dict[str, Download] = {}
        self._blocks: dict[str, BlockDownload] = {}
        self._block_entries: dict[str, Entry] = {}
        self._scan()

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
        for _, name, size in sorted(found):
            self._keep(name, size)
        self._evict()

    def key(self, entry: Entry) -> str:
        raw = f"{self.namespace}\0{entry.id}\0{entry.version}".encode()
        return hashlib.sha256(raw).hexdigest()[:40]

    def path(self, key: str) -> Path:
        return self.dir / key

    @property
    def used(self) -> int:
        in_flight = sum(d.received for d in self._downloads.values())
        in_blocks = sum(b.received for b in self._blocks.values())
        return self._stored + in_flight + in_blocks

    def contains(self, entry: Entry) -> bool:
        return self.key(entry) in self._files

    def _keep(self, key: str, size: int) -> None:
        """A complete file joins the cache (most recently used); the byte total follows."""
        self._stored += size - self._files.get(key, 0)
        self._files[key] = size
        self._files.move_to_end(key)

    def _forget(self, key: str) -> int:
        size = self._files.pop(key)
        self._stored -= size
        return size

    def _touch(self, key: str) -> None:
        self._files.move_to_end(key)
        with contextlib.suppress(OSError):
            os.utime(self.path(key))

    def _evict(self, room: int = 0) -> None:
        """Drop least recently used, unpinned files until ``room`` more bytes fit."""
        excess = self.used + room - self.limit
        if excess <= 0:
            return
        for key in list(self._files):
            if excess <= 0:
                break
            if self._pins.get(key):
                continue
            size = self._forget(key)
            self.path(key).unlink(missing_ok=True)
            excess -= size
            log.debug("evicted %s (%d bytes)", key, size)

    def _pin(self, key: str) -> None:
        self._pins[key] = self._pins.get(key, 0) + 1

    def _unpin(self, key: str) -> None:
        left = self._pins.get(key, 1) - 1
        if left <= 0:
            self._pins.pop(key, None)
        else:
            self._pins[key] = left

    # ---- open / read / release -------------------------------------------------------------

    def open(
        self,
        entry: Entry,
        fetch: Fetch,
        nursery: trio.Nursery,
        ranged: RangeFetch | None = None,
    ) -> Handle:
        """A handle on the content of ``entry``; starts (or joins) the download if needed.

        With ``ranged`` (and a known size) the file is filled block by block on demand.
        """
        key = self.key(entry)
        self._pin(key)
        try:
            if key in self._files:
                self._touch(key)
                fd = os.open(self.path(key), os.O_RDONLY)
                return Handle(key, fd, self._files[key], None)
            if ranged is not None and entry.size:
                blocks = self._blocks.get(key)
                if blocks is None:
                    blocks = self._start_blocks(key, entry, ranged)
                fd = os.open(blocks.path, os.O_RDONLY)
                return Handle(key, fd, entry.size, None, blocks)
            download = self._downloads.get(key)
            if download is None:
                download = self._start(key, entry, fetch, nursery)
            fd = os.open(download.path, os.O_RDONLY)
            return Handle(key, fd, entry.size, download)
        except BaseException:
            self._unpin(key)
            raise

    def _start(self, key: str, entry: Entry, fetch: Fetch, nursery: trio.Nursery) -> Download:
        self._evict(entry.size or 0)
        download = Download(key, self.dir / f"{key}.part", entry.size)
        # create the file now so readers can open it before the first byte arrives
        download.path.write_bytes(b"")
        self._downloads[key] = download
        self._pin(key)  # held by the download itself until it ends
        nursery.start_soon(self._run, download, entry, fetch)
        return download

    def _start_blocks(self, key: str, entry: Entry, fetch: RangeFetch) -> BlockDownload:
        assert entry.size is not None
        self._evict(entry.size)
        path = self.dir / f"{key}.part"
        path.write_bytes(b"")
        blocks = BlockDownload(key, path, entry.size, fetch)
        self._blocks[key] = blocks
        self._pin(key)  # held until every block is there (or it failed)
        self._block_entries[key] = entry
        return blocks

    def _block_arrived(self, blocks: BlockDownload, nursery: trio.Nursery) -> None:
        """After each block: finish the file when complete, give up when failed."""
        if blocks.done or blocks.verifying or self._blocks.get(blocks.key) is not blocks:
            return  # finished, being finished or given up already
        if blocks.error is not None:
            if not blocks.pending:
                self._end_blocks(blocks, complete=False)
            return
        if blocks.pending or blocks.missing():
            return
        if not self._block_entries[blocks.key].meta.get("checksum.md5"):
            self._end_blocks(blocks, complete=True)  # nothing to check it against
        elif blocks.size <= INLINE_VERIFY:
            # little to read: finished before the last reader is answered, as before
            self._verify(blocks, _checked_md5(blocks.path))
        else:
            blocks.verifying = True
            nursery.start_soon(self._verify_in_thread, blocks)

    async def _verify_in_thread(self, blocks: BlockDownload) -> None:
        self._verify(blocks, await _md5_of(blocks.path, blocks.size))

    def _verify(self, blocks: BlockDownload, digest: str | OSError) -> None:
        """Keep the file if ``digest`` is the MD5 the repository gave."""
        entry = self._block_entries[blocks.key]
        expected_md5 = entry.meta.get("checksum.md5") or ""
        if isinstance(digest, OSError):
            blocks.error = digest
            log.warning("download of %r failed: cache file: %s", entry.name, digest)
            self._end_blocks(blocks, complete=False)
            return
        if digest != expected_md5.lower():
            log.warning("download of %r: MD5 mismatch; not cached", entry.name)
            blocks.error = errors.ProtocolError(f"download of {entry.name!r}: MD5 mismatch")
            self._end_blocks(blocks, complete=False)
            return
        self._end_blocks(blocks, complete=True)

    def _end_blocks(self, blocks: BlockDownload, complete: bool) -> None:
        os.close(blocks.fd)
        del self._blocks[blocks.key]
        del self._block_entries[blocks.key]
        if complete:
            os.rename(blocks.path, self.path(blocks.key))
            self._keep(blocks.key, blocks.size)
            blocks.done = True
        else:
            blocks.path.unlink(missing_ok=True)
        blocks.ended.set()
        self._unpin(blocks.key)
        self._evict()

    def _request_blocks(
        self, handle: Handle, offset: int, size: int, nursery: trio.Nursery
    ) -> None:
        blocks = handle.blocks
        assert blocks is not None
        needed = blocks.block_range(offset, size)
        wanted = list(needed)
        if offset == handle.next_offset and offset > 0:
            # a sequential reader: keep READ_AHEAD blocks in flight ahead of it
            wanted.extend(range(needed.stop, needed.stop + READ_AHEAD))
        for block in wanted:
            blocks.start(block, nursery, lambda: self._block_arrived(blocks, nursery))

    async def _run(self, download: Download, entry: Entry, fetch: Fetch) -> None:
        expected_md5 = entry.meta.get("checksum.md5")
        fd = os.open(download.path, os.O_WRONLY)
        writer = FileWriter(fd, download.advance)
        try:
            await fetch(writer.write)
            await writer.finish()
            if download.expected is not None and download.received != download.expected:
                raise errors.ProtocolError(
                    f"download of {entry.name!r}: got {download.received} bytes, "
                    f"the repository says {download.expected}"
                )
            if expected_md5:
                # hashed once every byte is in the file, not while they stream in: readers
                # get their bytes as they land either way, and hashing alongside took CPU
                # that receiving, writing and answering the reads need (a cold 256 MiB dd
                # through the mount ~12% faster)
                digest = await _md5_of(download.path, download.received)
                if isinstance(digest, OSError):
                    raise digest
                if digest != expected_md5.lower():
                    raise errors.ProtocolError(f"download of {entry.name!r}: MD5 mismatch")
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
            self._unpin(download.key)
            self._evict()

    async def read(
        self, handle: Handle, offset: int, size: int, nursery: trio.Nursery | None = None
    ) -> bytes:
        blocks = handle.blocks
        if blocks is not None and not blocks.done and offset < blocks.size:
            assert nursery is not None, "ranged reads need the nursery to fetch blocks"
            self._request_blocks(handle, offset, size, nursery)
            await blocks.wait(offset, size)
            handle.next_offset = offset + size
            return os.pread(handle.fd, size, offset)
        handle.next_offset = offset + size
        download = handle.download
        if download is not None and not download.done:
            upto = offset + size
            if handle.size is not None:
                upto = min(upto, handle.size)
            await download.wait_for(upto)
        return os.pread(handle.fd, size, offset)

    async def complete(self, handle: Handle, nursery: trio.Nursery | None = None) -> Path:
        """Wait for the whole file; returns the path of the cached copy."""
        download = handle.download
        if download is not None:
            # every byte may have arrived while the verification and rename are still to come
            await download.wait_for(1 << 62)
        blocks = handle.blocks
        if blocks is not None and not blocks.done:
            assert nursery is not None
            every = range(blocks.count)
            for block in every:
                blocks.start(block, nursery, lambda: self._block_arrived(blocks, nursery))
            await blocks.wait(0, blocks.size)
            self._block_arrived(blocks, nursery)  # in case every block was here already
            await blocks.ended.wait()
            if not blocks.done:
                raise errors.RemoteUnavailable(f"could not complete {handle.key}")
        return self.path(handle.key)

    def release(self, handle: Handle) -> None:
        os.close(handle.fd)
        self._unpin(handle.key)
        self._evict()

    def drop(self, entry: Entry) -> None:
        """Forget the cached copy of ``entry`` (e.g. after it was removed)."""
        key = self.key(entry)
        if key in self._files and not self._pins.get(key):
            self._forget(key)
            self.path(key).unlink(missing_ok=True)

    def adopt(self, entry: Entry, src: Path) -> None:
        """Take a file we just uploaded as the cached copy of its new version (no download)."""
        key = self.key(entry)
        if key in self._files:
            return
        size = src.stat().st_size
        if size > self.limit:
            return
        self._evict(size)
        tmp = self.dir / f"{key}.part"
        try:
            os.link(src, tmp)
        except OSError:
            shutil.copyfile(src, tmp)
        os.rename(tmp, self.path(key))
        self._keep(key, size)

    def arriving(self, entry: Entry) -> bool:
        """Every byte of ``entry`` is here or on its way without further asking: cached, or a
        whole-file download of it runs (being checked included), or every block of a ranged
        one arrived. Another reader joining now costs no transfer of its own."""
        key = self.key(entry)
        if key in self._files or key in self._downloads:
            return True
        blocks = self._blocks.get(key)
        return blocks is not None and blocks.error is None and not blocks.missing()
