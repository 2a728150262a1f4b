"""The filesystem semantics, independent of the kernel: what fuse_ops and control call.

Every method takes and returns plain values (inodes, ``str`` names, ``Attr``) and raises
``DocfsError``; fuse_ops turns those into pyfuse3 types and errno. ``Filesystem`` is the mount's
state (``MountState``) with its parts attached — ``Listings`` (directory listings for the TTL),
``Writes`` (the write path and its uploads) and ``Xattrs`` — and the one entry point from
outside the vfs: the reads are here, everything else is handed to its part. File content goes
through the ``ContentCache``; writes go through the staging area.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator

import trio

from docfs import errors
from docfs.backends.base import Backend, Entry
from docfs.vfs.content import ContentCache
from docfs.vfs.inodes import Node
from docfs.vfs.listings import FULL_LISTING_EVERY as FULL_LISTING_EVERY
from docfs.vfs.listings import Listings
from docfs.vfs.state import BLOCK, Attr, MountState, OpenFile, StatFs
from docfs.vfs.state import Options as Options
from docfs.vfs.walks import Walkers
from docfs.vfs.writes import Writes
from docfs.vfs.xattrs import Xattrs

__all__ = ["Attr", "Filesystem", "OpenFile", "Options", "StatFs"]


class Filesystem(MountState):
    def __init__(
        self,
        backend: Backend,
        root: Entry,
        content: ContentCache,
        options: Options | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(backend, root, content, options, clock=clock)
        self.listings = Listings(self)
        self.writes = Writes(self, self.listings)
        self.xattrs = Xattrs(self)
        self._dir_handles: dict[int, list[tuple[str, int]]] = {}
        #: which programs get deep listings (``docfs.vfs.walks``)
        self.walkers = Walkers()
        if self.writeback is not None:
            self.writeback.on_done = self.writes.upload_done

    def start(self, nursery: trio.Nursery) -> None:
        """Give the filesystem the daemon's nursery for downloads and uploads."""
        self._nursery = nursery
        nursery.start_soon(self.spares.run)
        if self.writeback is not None:
            nursery.start_soon(self.writeback.run)
        nursery.start_soon(self.backend.run)

    # ---- attributes and listings -----------------------------------------------------------

    async def getattr(self, ino: int) -> Attr:
        node = self.inodes.get(ino)
        await self.listings.refresh_parent(node)
        return self.attr(node)

    async def refresh_parent(self, node: Node) -> None:
        """Re-list the parent of ``node`` if its listing is stale (new size/version)."""
        await self.listings.refresh_parent(node)

    async def ensure_listed(self, node: Node) -> dict[str, int]:
        """The children of directory ``node``, listed again if the listing is stale."""
        return await self.listings.ensure_listed(node)

    def refresh(self, path: str) -> int:
        """Forget the cached listings at and below ``path`` (the control channel's refresh);
        returns how many were dropped."""
        return self.listings.forget_below(path)

    async def lookup(self, parent_ino: int, name: str) -> Attr:
        """The child ``name`` of ``parent_ino``; counts one kernel lookup."""
        parent = self.inodes.get(parent_ino)
        if not parent.is_dir:
            raise errors.NotADirectory(self.path(parent))
        if name in parent.local_children:
            node = self.inodes.get(parent.local_children[name])
        else:
            await self.listings.ensure_fresh(parent)
            ino = parent.child(name)
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

    async def opendir(self, ino: int, pid: int | None = None) -> int:
        """Open directory ``ino`` for process ``pid`` (listing it if needed: with its children's
        listings when ``pid`` walks the tree, see ``docfs.vfs.walks``)."""
        node = self.inodes.get(ino)
        walk = self.walkers.walks(pid)
        children = await self.listings.ensure_listed(node, walk)
        if walk:
            self.listings.prefetch_siblings(node)
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
            await self.listings.refresh_parent(node)
            cached = self.open_content(node)
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
            self.listings.vanished(handle.node)  # gone from the server: the listing too
            raise

    async def release(self, fh: int) -> None:
        handle = self.files.pop(fh, None)
        if handle is None:
            return
        if handle.cached is not None:
            self.content.release(handle.cached)
        if handle.writer:
            await self.writes.release_writer(handle.node)
        self.inodes.release(handle.node)

    def statfs(self) -> StatFs:
        # repositories have no meaningful capacity: report plenty so copies are not refused
        total = 1 << 40
        return StatFs(BLOCK, total // BLOCK, total // BLOCK, 1 << 30, 1 << 30)

    # ---- writing (see ``Writes``) ----------------------------------------------------------

    async def create(self, parent_ino: int, name: str, mode: int) -> tuple[int, Attr]:
        return await self.writes.create(parent_ino, name, mode)

    async def write(self, fh: int, offset: int, data: bytes) -> int:
        return await self.writes.write(fh, offset, data)

    async def flush(self, fh: int) -> None:
        await self.writes.flush(fh)

    async def fsync(self, fh: int) -> None:
        await self.writes.fsync(fh)

    async def setattr(
        self,
        ino: int,
        *,
        size: int | None = None,
        mode: int | None = None,
        mtime: float | None = None,
        uid: int | None = None,
        gid: int | None = None,
        fh: int | None = None,
        mtime_ns: int | None = None,
    ) -> Attr:
        return await self.writes.setattr(
            ino, size=size, mode=mode, mtime=mtime, uid=uid, gid=gid, fh=fh, mtime_ns=mtime_ns
        )

    async def mkdir(self, parent_ino: int, name: str, mode: int) -> Attr:
        return await self.writes.mkdir(parent_ino, name, mode)

    async def rmdir(self, parent_ino: int, name: str) -> None:
        await self.writes.rmdir(parent_ino, name)

    async def unlink(self, parent_ino: int, name: str) -> None:
        await self.writes.unlink(parent_ino, name)

    async def rename(
        self, old_parent: int, old_name: str, new_parent: int, new_name: str, flags: int = 0
    ) -> None:
        await self.writes.rename(old_parent, old_name, new_parent, new_name, flags)

    # ---- extended attributes (see ``Xattrs``) ----------------------------------------------

    async def getxattr(self, ino: int, name: str) -> bytes:
        return await self.xattrs.getxattr(ino, name)

    async def listxattr(self, ino: int) -> list[str]:
        return await self.xattrs.listxattr(ino)

    async def setxattr(self, ino: int, name: str, value: bytes) -> None:
        await self.xattrs.setxattr(ino, name, value)

    async def removexattr(self, ino: int, name: str) -> None:
        await self.xattrs.removexattr(ino, name)
