"""The filesystem semantics, independent of the kernel: what fuse_ops calls.

Every method takes and returns plain values (inodes, ``str`` names, ``Attr``) and raises
``DocfsError``; fuse_ops turns those into pyfuse3 types and errno. Directory listings are
fetched whole on first use and kept for the TTL; file content goes through the
``ContentCache``; writes go through the staging area (see ``writes.py``).
"""

from __future__ import annotations

import logging
import os
import stat
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import trio

from docfs import errors
from docfs.backends.base import Backend, Entry, Sink
from docfs.vfs.content import ContentCache, Fetch, Handle, RangeFetch
from docfs.vfs.dates import FirstSeen
from docfs.vfs.inodes import ROOT_INODE, InodeTable, Node
from docfs.vfs.metadata import Freshness
from docfs.vfs.names import DEFAULT_LOCAL_ONLY, LocalNames, assign_names
from docfs.vfs.spares import SpareFiles
from docfs.vfs.staging import AttrStore, LostFound, Staging
from docfs.vfs.thumbnails import ThumbnailWriter
from docfs.vfs.writeback import WriteBack
from docfs.vfs.writes import Writes

log = logging.getLogger("docfs.vfs")

BLOCK = 4096
#: with a change feed, directories are still listed in full once every this many TTLs
FULL_LISTING_EVERY = 10


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
    uid: int = field(default_factory=os.getuid)
    gid: int = field(default_factory=os.getgid)


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


class Filesystem:
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
        self._list_locks: dict[int, trio.Lock] = {}
        self._dir_handles: dict[int, list[tuple[str, int]]] = {}
        self.files: dict[int, OpenFile] = {}
        self._next_fh = 1
        self._stale_warned: set[int] = set()
        cache_root = content.dir.parent
        self.spares = SpareFiles(cache_root)
        self.staging = Staging(cache_root, self.spares)
        self.lost_found = LostFound(cache_root)
        self.attrs = AttrStore(cache_root)
        self.dates = FirstSeen(cache_root)
        self.writes = Writes(self)
        self.writeback: WriteBack | None = None
        #: writes the repository's thumbnails into the freedesktop cache (set by the daemon)
        self.thumbnails: ThumbnailWriter | None = None
        #: write-back job id → inode of the node it uploads
        self.job_nodes: dict[str, int] = {}
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
            self.writeback.on_done = self.writes.upload_done

    def start(self, nursery: trio.Nursery) -> None:
        """Give the filesystem the daemon's nursery for downloads and uploads."""
        self._nursery = nursery
        nursery.start_soon(self.spares.run)
        if self.writeback is not None:
            nursery.start_soon(self.writeback.run)
        nursery.start_soon(self.backend.run)

    @property
    def nursery(self) -> trio.Nursery:
        if self._nursery is None:
            raise RuntimeError("Filesystem.start() was not called")
        return self._nursery

    def new_handle(self) -> int:
        fh, self._next_fh = self._next_fh, self._next_fh + 1
        return fh

    # ---- attributes ------------------------------------------------------------------------

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

    async def getattr(self, ino: int) -> Attr:
        node = self.inodes.get(ino)
        await self.refresh_parent(node)
        return self.attr(node)

    async def refresh_parent(self, node: Node) -> None:
        """Re-list the parent of ``node`` if its listing is stale (new size/version)."""
        if node.ino == ROOT_INODE or node.detached:
            return
        parent = self.inodes.find(node.parent)
        if parent is not None and parent.children is not None:
            await self.ensure_listed(parent)

    # ---- listings --------------------------------------------------------------------------

    async def ensure_listed(self, node: Node) -> dict[str, int]:
        if not node.is_dir:
            raise errors.NotADirectory(self.path(node))
        if self.fresh.fresh(node.listed_at):
            return node.child_names()
        lock = self._list_locks.setdefault(node.ino, trio.Lock())
        async with lock:
            # another task may have listed it while we waited for the lock
            if not self.fresh.fresh(node.listed_at):
                try:
                    if not await self._refresh_from_changes(node):
                        await self._list(node)
                except errors.RemoteUnavailable:
                    if node.children is None:
                        raise
                    if node.ino not in self._stale_warned:
                        self._stale_warned.add(node.ino)
                        log.warning(
                            "server unavailable: serving the cached listing of %r",
                            self.path(node),
                        )
                except errors.NotFound:
                    self._vanished(node)
                    raise
        return node.child_names()

    def _scope_of(self, node: Node) -> Node | None:
        """The nearest change scope at or above ``node`` (None without a change feed)."""
        if not self.backend.capabilities.changes:
            return None
        current: Node | None = node
        while current is not None:
            if current.entry.change_scope:
                return current
            if current.ino == ROOT_INODE:
                return None
            current = self.inodes.find(current.parent)
        return None

    async def _refresh_from_changes(self, node: Node) -> bool:
        """Refresh a stale listing through its scope's change feed; False: list it instead.

        A change feed reports new and changed entries, not deletions, so every directory is
        still listed in full once every ``FULL_LISTING_EVERY`` TTLs.
        """
        scope = self._scope_of(node)
        if (
            scope is None
            or node.children is None
            or scope.scope_synced is None
            or not self.fresh.fresh_for(node.full_listed_at, FULL_LISTING_EVERY)
        ):
            return False
        if not self.fresh.fresh(scope.scope_checked):
            started = time.time()
            async for parent_id, entry in self.backend.changes(scope.entry, scope.scope_synced):
                self._apply_change(parent_id, entry)
            scope.scope_synced, scope.scope_checked = started, self.fresh.now()
        if node.children is None or node.listed_at is None:
            return False  # the feed showed something new here: list it
        node.listed_at = scope.scope_checked
        return True

    def _apply_change(self, parent_id: str, entry: Entry) -> None:
        known = self.inodes.by_id(entry.id)
        holder = self.inodes.find(known.parent) if known is not None else None
        if (
            known is not None
            and known.entry.name == entry.name
            and (holder is not None and holder.entry.id == parent_id)
        ):
            if known.staged is None and known.pending_job is None:
                known.entry = entry  # new size/version: the next open gets the new content
            return
        # new, or renamed: its directory (if we hold a listing of it) must be listed again
        parent = self.inodes.by_id(parent_id)
        if parent is not None:
            parent.listed_at = None

    async def _list(self, node: Node) -> None:
        started = time.time()
        if node.entry.change_scope and self.backend.capabilities.tree:
            await self._list_tree(node)
        else:
            self._apply_listing(node, [e async for e in self.backend.list_dir(node.entry)])
        if node.entry.change_scope and node.scope_synced is None:
            node.scope_synced, node.scope_checked = started, node.listed_at

    async def _list_tree(self, scope: Node) -> None:
        """List a whole change scope with one tree listing: every directory below it at once."""
        groups: dict[str, list[Entry]] = {}
        async for parent_id, entry in self.backend.list_tree(scope.entry):
            groups.setdefault(parent_id, []).append(entry)
        pending, seen = [scope], {scope.ino}
        while pending:
            current = pending.pop()
            self._apply_listing(current, groups.get(current.entry.id, []))
            for ino in (current.children or {}).values():
                child = self.inodes.find(ino)
                if child is not None and child.is_dir and ino not in seen:
                    seen.add(ino)
                    pending.append(child)

    def _apply_listing(self, node: Node, entries: list[Entry]) -> None:
        named = assign_names(entries, ((e.name, e.id) for e in entries), self.inodes.naming_id)
        self.dates.note(entries)  # the files new here keep the date they show now
        children: dict[str, int] = {}
        for name, entry in named.items():
            if name in node.local_children:
                continue  # a local file of that name shadows the remote one until it is uploaded
            child = self.inodes.place(entry, node.ino, name)
            if child.staged is None:
                child.mtime_override, child.mode_override = self.attrs.get(entry.id, entry.version)
            children[name] = child.ino
        kept = set(children.values())
        for name, ino in (node.children or {}).items():
            old = self.inodes.find(ino)
            if ino in kept or old is None or old.parent != node.ino or old.name != name:
                continue
            # gone from the server (not moved elsewhere in our tree)
            if self.inodes.by_id(old.entry.id) is old:
                self.inodes.detach(old)
        node.children = children
        node.listed_at = node.full_listed_at = self.fresh.now()
        node.hidden = None
        self._stale_warned.discard(node.ino)

    def _vanished(self, node: Node) -> None:
        """``node`` answered 404: drop it and make its parent re-list."""
        parent = self.inodes.find(node.parent)
        if parent is not None and node.ino != ROOT_INODE:
            parent.listed_at = None
            self.inodes.detach(node)

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

    def path(self, node: Node) -> str:
        parts: list[str] = []
        while node.ino != ROOT_INODE:
            parts.append(node.name)
            parent = self.inodes.find(node.parent)
            if parent is None:
                break
            node = parent
        return "/" + "/".join(reversed(parts))

    async def lookup(self, parent_ino: int, name: str) -> Attr:
        """The child ``name`` of ``parent_ino``; counts one kernel lookup."""
        parent = self.inodes.get(parent_ino)
        if not parent.is_dir:
            raise errors.NotADirectory(self.path(parent))
        if name in parent.local_children:
            node = self.inodes.get(parent.local_children[name])
        else:
            children = await self.ensure_listed(parent)
            ino = children.get(name)
            if ino is None:
                raise errors.NotFound(name)
            node = self.inodes.get(ino)
        node.lookups += 1
        return self.attr(node)

    def remember(self, ino: int) -> None:
        """The kernel took a reference through readdirplus."""
        self.inodes.remember(ino)

    def forget(self, ino: int, count: int) -> None:
        self.inodes.forget(ino, count)

    async def opendir(self, ino: int) -> int:
        node = self.inodes.get(ino)
        children = await self.ensure_listed(node)
        dh = self.new_handle()
        # a snapshot: offsets stay valid while the listing changes underneath
        self._dir_handles[dh] = sorted(children.items())
        return dh

    def entries_from(self, dh: int, start: int) -> Iterator[tuple[str, Attr, int]]:
        """Directory entries from snapshot offset ``start``, each with the offset after it.

        Lazy: the kernel's reply buffer fills after a few hundred entries, so attributes are
        made only for what is sent (computing them all on every call was quadratic). Offsets
        are positions in the snapshot, so an entry that vanished meanwhile shifts nothing.
        """
        items = self._dir_handles.get(dh, [])
        for index in range(start, len(items)):
            name, ino = items[index]
            node = self.inodes.find(ino)
            if node is not None:
                yield name, self.attr(node), index + 1

    def readdir(self, dh: int, start: int) -> list[tuple[str, Attr]]:
        """The whole rest of a directory handle (for callers without a reply buffer)."""
        return [(name, attr) for name, attr, _ in self.entries_from(dh, start)]

    def releasedir(self, dh: int) -> None:
        self._dir_handles.pop(dh, None)

    # ---- reading ---------------------------------------------------------------------------

    async def open(self, ino: int, write: bool, truncate: bool = False) -> tuple[int, bool]:
        """Open a file; returns the handle and whether the kernel may keep its page cache."""
        node = self.inodes.get(ino)
        if node.is_dir:
            raise errors.IsADirectory(self.path(node))
        if write or truncate:
            return await self.writes.open_for_write(node, truncate), False
        cached = None
        if node.staged is None:
            await self.refresh_parent(node)
            cached = self.content.open(
                node.entry, self.fetcher(node.entry), self.nursery, self.range_fetcher(node.entry)
            )
        node.opened += 1
        # the kernel may keep its pages only of content that was complete and verified when
        # it was read: bytes of a download that later failed its checksum must not linger
        complete = cached is not None and cached.complete
        version = node.entry.version if complete else None
        keep = version is not None and node.kernel_version == version
        node.kernel_version = version
        fh = self.new_handle()
        self.files[fh] = OpenFile(node, cached)
        return fh, keep

    def fetcher(self, entry: Entry) -> Fetch:
        async def fetch(sink: Sink, start: int) -> None:
            # from ``start``: the rest of a kept prefix (backends without ranges skip the
            # bytes before it in a whole-file answer)
            await self.backend.download(entry, sink, start)

        return fetch

    def range_fetcher(self, entry: Entry) -> RangeFetch | None:
        """Block fetches for backends with byte ranges (None: stream the whole file)."""
        if not self.backend.capabilities.ranges or entry.transformed or not entry.byte_ranges:
            return None

        async def fetch(sink: Sink, start: int, end: int) -> None:
            await self.backend.download(entry, sink, start, end)

        return fetch

    async def read(self, fh: int, offset: int, size: int) -> bytes:
        handle = self.handle_of(fh)
        staged = handle.node.staged
        if staged is not None:
            # a file being written reads as its staged bytes, for every reader
            return os.pread(staged.fd, size, offset)
        if handle.cached is None:
            return b""
        try:
            return await self.content.read(handle.cached, offset, size, self.nursery)
        except errors.NotFound:
            self._vanished(handle.node)  # gone from the server: the listing must say so too
            raise

    def handle_of(self, fh: int) -> OpenFile:
        try:
            return self.files[fh]
        except KeyError:
            raise errors.BadHandle(f"file handle {fh}") from None

    async def release(self, fh: int) -> None:
        handle = self.files.pop(fh, None)
        if handle is None:
            return
        if handle.cached is not None:
            self.content.release(handle.cached)
        if handle.writer:
            await self.writes.release_writer(handle.node)
        self.inodes.release(handle.node)

    # ---- extended attributes ---------------------------------------------------------------

    def _xattrs(self, node: Node) -> dict[str, str]:
        ns = self.backend.capabilities.meta_namespace
        values = {f"user.{ns}.{k}": v for k, v in node.entry.meta.items()}
        values["user.docfs.id"] = node.entry.object_id or node.entry.id
        if node.entry.version:
            values["user.docfs.version"] = node.entry.version
        return values

    async def _complete_meta(self, node: Node) -> None:
        """Fetch the full metadata of an entry whose listing carried only part of it."""
        if node.entry.partial_meta and node.staged is None and not node.local:
            node.entry = await self.backend.stat(node.entry)

    async def getxattr(self, ino: int, name: str) -> bytes:
        if not name.startswith("user."):
            # ENOTSUP (not ENODATA) tells ls and cp to stop asking for security.selinux and
            # the POSIX ACL names on this filesystem: three requests per file fewer for ls -l
            raise errors.AttributeNotSupported(name)
        node = self.inodes.get(ino)
        if name.startswith(f"user.{self.backend.capabilities.meta_namespace}."):
            await self._complete_meta(node)
        value = self._xattrs(node).get(name)
        if value is None:
            raise errors.NoAttribute(name)
        return value.encode("utf-8")

    async def listxattr(self, ino: int) -> list[str]:
        node = self.inodes.get(ino)
        await self._complete_meta(node)
        return sorted(self._xattrs(node))

    def statfs(self) -> StatFs:
        # repositories have no meaningful capacity: report plenty so copies are not refused
        total = 1 << 40
        return StatFs(BLOCK, total // BLOCK, total // BLOCK, 1 << 30, 1 << 30)
