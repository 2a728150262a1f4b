"""The state of one mount, shared by the reads, writes and extended attributes.

``MountState`` holds what every part of the filesystem reads and changes: the backend, the
options, the inode table, the content cache, the staging area and lost+found, the remembered
attributes and dates, the write-back queue and the open file handles — plus the few helpers
all of them use (a node's path and attributes, a handle's lookup, the download functions).
The parts (``listings``, ``writes``, ``uploads``, ``xattrs``) each take the state; only
``Filesystem`` (a ``MountState`` with the parts attached) is called from outside the vfs.
"""

from __future__ import annotations

import logging
import os
import stat
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import trio

from docfs import errors
from docfs.backends.base import Backend, Entry, Sink
from docfs.vfs.content import ContentCache, Fetch, Handle, RangeFetch
from docfs.vfs.dates import FirstSeen
from docfs.vfs.inodes import ROOT_INODE, InodeTable, Node
from docfs.vfs.metadata import Freshness
from docfs.vfs.names import DEFAULT_LOCAL_ONLY, LocalNames
from docfs.vfs.offline import Offline
from docfs.vfs.pins import PinList
from docfs.vfs.spares import SpareFiles
from docfs.vfs.staging import AttrStore, LostFound, Staging
from docfs.vfs.thumbnails import ThumbnailWriter
from docfs.vfs.writeback import WriteBack

log = logging.getLogger("docfs.vfs")

BLOCK = 4096


@dataclass
class Options:
    read_only: bool = False
    dir_cache_time: float = 60.0
    local_only: tuple[str, ...] = DEFAULT_LOCAL_ONLY
    #: seconds before a closed file is uploaded from the queue; None = upload at close
    write_back: float | None = None
    transfers: int = 4
    #: files are opened with FOPEN_DIRECT_IO: reads bypass the kernel's page cache
    direct_io: bool = False
    #: thumbnailers/indexers may not open uncached files over this many bytes (0: no guard;
    #: None: 10 MiB without byte ranges, 16 MiB with); see ``docfs.vfs.thumbnails``
    thumbnail_max: int | None = None
    #: process names the guard knows as thumbnailers (None: ``DEFAULT_THUMBNAILERS``)
    thumbnailers: tuple[str, ...] | None = None
    #: process names whose directory listings get the repository's thumbnails (None:
    #: ``DEFAULT_FILE_MANAGERS``); see ``docfs.vfs.thumbnails``
    file_managers: tuple[str, ...] | None = None
    #: list the metadata files (``.metadata.json``, ``.metadata/``) in directories too;
    #: they answer a lookup either way (see ``docfs.vfs.metafiles``)
    metadata_files: bool = False
    #: the most results one ``.search/QUERY/`` lists (issue 20)
    search_limit: int = 1000
    uid: int = field(default_factory=os.getuid)
    gid: int = field(default_factory=os.getgid)
    #: bytes pinned folders may hold (``docfs pin``; not counted against the cache size)
    pin_size: int = 10 << 30


@dataclass
class Attr:
    ino: int
    mode: int
    nlink: int
    uid: int
    gid: int
    size: int
    mtime: float
    ctime: float
    #: ``mtime`` exactly, in nanoseconds (what the kernel is given)
    mtime_ns: int = 0


@dataclass
class StatFs:
    block_size: int
    blocks: int
    free_blocks: int
    files: int
    free_files: int
    name_max: int = 255


@dataclass
class OpenFile:
    node: Node
    cached: Handle | None
    writer: bool = False


class MountState:
    """Everything one mount knows; see the module docstring."""

    def __init__(
        self,
        backend: Backend,
        root: Entry,
        content: ContentCache,
        options: Options | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.backend = backend
        self.options = options or Options()
        self.content = content
        self.inodes = InodeTable(root)
        self.fresh = Freshness(self.options.dir_cache_time, clock)
        self.names = LocalNames(self.options.local_only)
        self.mounted_at = time.time()
        self._nursery: trio.Nursery | None = None
        self.files: dict[int, OpenFile] = {}
        self._next_fh = 1
        cache_root = content.dir.parent
        self.spares = SpareFiles(cache_root)
        self.staging = Staging(cache_root, self.spares)
        self.lost_found = LostFound(cache_root)
        self.attrs = AttrStore(cache_root)
        self.dates = FirstSeen(cache_root)
        self.writeback: WriteBack | None = None
        #: writes the repository's thumbnails into the freedesktop cache (set by the daemon)
        self.thumbnails: ThumbnailWriter | None = None
        #: write-back job id → inode of the node it uploads
        self.job_nodes: dict[str, int] = {}
        #: inodes of the hidden virtual directories (``docfs.vfs.hidden``): listed by their
        #: provider, never by the backend
        self.virtual_dirs: set[int] = set()
        # ---- offline use (issue 22): the server's reachability, the pinned folders ----
        self.offline = Offline(backend)
        self.pins = PinList(cache_root)
        #: called with each directory just listed (the pins fetch what changed in theirs)
        self.on_listed: list[Callable[[Node], None]] = []
        leftovers = any((cache_root / "queue").glob("*.json"))
        if self.options.write_back is not None or leftovers:
            # a queue left by an earlier run is uploaded even if this mount writes synchronously
            self.writeback = WriteBack(
                cache_root,
                backend,
                self.lost_found,
                delay=self.options.write_back or 0.0,
                transfers=self.options.transfers,
                spares=self.spares,
            )

    @property
    def nursery(self) -> trio.Nursery:
        if self._nursery is None:
            raise RuntimeError("Filesystem.start() was not called")
        return self._nursery

    def new_handle(self) -> int:
        fh, self._next_fh = self._next_fh, self._next_fh + 1
        return fh

    def handle_of(self, fh: int) -> OpenFile:
        try:
            return self.files[fh]
        except KeyError:
            raise errors.BadHandle(f"file handle {fh}") from None

    def attr(self, node: Node) -> Attr:
        entry = node.entry
        if node.mtime_override is not None:
            # what utimens set, in nanoseconds: given back exactly
            mtime_ns = node.mtime_override
            mtime = mtime_ns / 1e9
        else:
            shown = self.dates.mtime(entry) or entry.mtime
            if shown is None:
                parent = self.inodes.find(node.parent)
                shown = parent.entry.mtime if parent and parent.entry.mtime else self.mounted_at
            mtime, mtime_ns = shown, int(shown * 1e9)
        writable = not (self.options.read_only or entry.read_only)
        if node.is_dir:
            mode = stat.S_IFDIR | (0o755 if writable else 0o555)
            nlink, size = 2, BLOCK
        else:
            mode = stat.S_IFREG | (0o644 if writable else 0o444)
            nlink = 1
            size = node.staged.size if node.staged is not None else entry.size or 0
        if node.mode_override is not None:
            mode = stat.S_IFMT(mode) | (node.mode_override & 0o7777)
        return Attr(
            node.ino, mode, nlink, self.options.uid, self.options.gid, size, mtime, mtime, mtime_ns
        )

    def path(self, node: Node) -> str:
        parts: list[str] = []
        while node.ino != ROOT_INODE:
            parts.append(node.name)
            parent = self.inodes.find(node.parent)
            if parent is None:
                break
            node = parent
        return "/" + "/".join(reversed(parts))

    def invalidate(self, ino: int) -> None:
        """Make the next access to directory ``ino`` re-list it."""
        node = self.inodes.find(ino)
        if node is not None:
            node.listed_at = None

    def invalidate_by_id(self, entry_id: str) -> None:
        """Make the next access to the directory of remote object ``entry_id`` re-list it."""
        node = self.inodes.by_id(entry_id)
        if node is not None:
            node.listed_at = None

    def fetcher(self, entry: Entry) -> Fetch:
        async def fetch(sink: Sink, start: int) -> None:
            if not await self.offline.reachable():
                raise self.offline.refuse(repr(entry.name))  # at once, not after the retries
            # from ``start``: the rest of a kept prefix (backends without ranges skip the
            # bytes before it in a whole-file answer)
            await self.backend.download(entry, sink, start)

        return fetch

    def range_fetcher(self, entry: Entry) -> RangeFetch | None:
        """Block fetches for backends with byte ranges (None: stream the whole file)."""
        if not self.backend.capabilities.ranges or entry.transformed or not entry.byte_ranges:
            return None

        async def fetch(sink: Sink, start: int, end: int) -> None:
            if not await self.offline.reachable():
                raise self.offline.refuse(repr(entry.name))
            await self.backend.download(entry, sink, start, end)

        return fetch

    def open_content(self, node: Node) -> Handle:
        """A content-cache handle on ``node``'s remote bytes (sends nothing yet)."""
        return self.content.open(
            node.entry, self.fetcher(node.entry), self.nursery, self.range_fetcher(node.entry)
        )
