"""The filesystem semantics, independent of the kernel: what fuse_ops and control call.

Every method takes and returns plain values (inodes, ``str`` names, ``Attr``) and raises
``DocfsError``; fuse_ops turns those into pyfuse3 types and errno. ``Filesystem`` is the mount's
state (``MountState``) with its parts attached — ``Listings`` (directory listings for the TTL),
``Writes`` (the write path and its uploads) and ``Xattrs`` — and the one entry point from
outside the vfs: the reads are here, everything else is handed to its part. File content goes
through the ``ContentCache``; writes go through the staging area.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence

import trio

from docfs import errors
from docfs.backends.base import Backend, Entry
from docfs.vfs import searching
from docfs.vfs.byid import ID_PROVIDERS
from docfs.vfs.content import ContentCache
from docfs.vfs.hidden import Hidden, HiddenProvider
from docfs.vfs.inodes import Node
from docfs.vfs.listings import FULL_LISTING_EVERY as FULL_LISTING_EVERY
from docfs.vfs.listings import Listings
from docfs.vfs.metafiles import MetaFiles
from docfs.vfs.pins import Json, Pinning
from docfs.vfs.state import BLOCK, Attr, MountState, OpenFile, StatFs
from docfs.vfs.state import Options as Options
from docfs.vfs.walks import Walkers
from docfs.vfs.writes import Writes
from docfs.vfs.xattrs import Xattrs

__all__ = ["Attr", "Filesystem", "OpenFile", "Options", "StatFs"]

#: the registry of hidden directories (``docfs.vfs.hidden``): which names a lookup answers
#: although no listing shows them; whether one exists on a mount is the backend's say
HIDDEN_PROVIDERS: tuple[HiddenProvider, ...] = (
    *ID_PROVIDERS,  # .by-id, .by-handle, .by-doi
    *searching.PROVIDERS,  # .search, .versions
)


class Filesystem(MountState):
    def __init__(
        self,
        backend: Backend,
        root: Entry,
        content: ContentCache,
        options: Options | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        hidden: Sequence[HiddenProvider] | None = None,
    ) -> None:
        super().__init__(backend, root, content, options, clock=clock)
        self.listings = Listings(self)
        self.hidden = Hidden(self, HIDDEN_PROVIDERS if hidden is None else hidden)
        self.writes = Writes(self, self.listings)
        self.xattrs = Xattrs(self)
        #: the hidden metadata files (issue 21): asked first by the operations below
        self.metafiles = MetaFiles(self, self.listings)
        self._dir_handles: dict[int, list[tuple[str, int]]] = {}
        self.pinning = Pinning(self, self.listings)
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
        self.offline.start(nursery, self._probe)
        nursery.start_soon(self.content.run)

    # ---- attributes and listings -----------------------------------------------------------

    async def getattr(self, ino: int) -> Attr:
        node = self.inodes.get(ino)
        if self.metafiles.owns(ino):
            return await self.metafiles.getattr(node)
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

    def locate(self, ino: int) -> str | None:
        """The path of inode ``ino`` inside the mount: in the tree where the tree knows the
        object, else in the hidden directory it was found through (None: not known)."""
        node = self.inodes.find(ino)
        return None if node is None else self.path(node)

    async def lookup(self, parent_ino: int, name: str) -> Attr:
        """The child ``name`` of ``parent_ino``; counts one kernel lookup."""
        parent = self.inodes.get(parent_ino)
        if not parent.is_dir:
            raise errors.NotADirectory(self.path(parent))
        hidden = await self.hidden.lookup(parent, name)
        meta = None if hidden is not None else await self.metafiles.find(parent, name)
        if hidden is not None:
            node = hidden
        elif meta is not None:
            node = meta
        elif name in parent.local_children:
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
        if self.hidden.is_virtual(ino):
            children = await self.hidden.list(node)
        elif self.metafiles.owns(ino):
            children = await self.metafiles.list_dir(node)
        else:
            walk = self.walkers.walks(pid)
            children = await self.listings.ensure_listed(node, walk)
            if walk:
                self.listings.prefetch_siblings(node)
            children = {**children, **await self.metafiles.listed(node, children)}
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
        if node.detached and (write or truncate or node.local):
            # reached through a name the kernel still caches: writes here would go nowhere
            raise errors.Stale(f"{node.name}: dropped; looked up again")
        if self.metafiles.owns(ino):
            return await self.metafiles.open(node, write, truncate), False
        if write or truncate:
            self.hidden.refuse("write", ino)
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
        if self.metafiles.owns_handle(fh):
            return self.metafiles.read(fh, offset, size)
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
        if self.metafiles.owns_handle(fh):
            await self.metafiles.release(fh)
            return
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
        self.hidden.refuse("create", parent_ino)
        self.metafiles.check_new(self.inodes.get(parent_ino), name, "create")
        return await self.writes.create(parent_ino, name, mode)

    async def write(self, fh: int, offset: int, data: bytes) -> int:
        if self.metafiles.owns_handle(fh):
            return self.metafiles.write(fh, offset, data)
        return await self.writes.write(fh, offset, data)

    async def flush(self, fh: int) -> None:
        if self.metafiles.owns_handle(fh):
            await self.metafiles.flush(fh)
            return
        await self.writes.flush(fh)

    async def fsync(self, fh: int) -> None:
        if self.metafiles.owns_handle(fh):
            await self.metafiles.flush(fh)
            return
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
        self.hidden.refuse("setattr", ino)
        if self.metafiles.owns(ino):
            return await self._meta_setattr(ino, size, mode, mtime, uid, gid, fh, mtime_ns)
        return await self.writes.setattr(
            ino, size=size, mode=mode, mtime=mtime, uid=uid, gid=gid, fh=fh, mtime_ns=mtime_ns
        )

    async def mkdir(self, parent_ino: int, name: str, mode: int) -> Attr:
        self.hidden.refuse("mkdir", parent_ino)
        self.metafiles.check_new(self.inodes.get(parent_ino), name, "mkdir")
        return await self.writes.mkdir(parent_ino, name, mode)

    async def rmdir(self, parent_ino: int, name: str) -> None:
        self.hidden.refuse("rmdir", parent_ino)
        if await self.metafiles.find(self.inodes.get(parent_ino), name) is not None:
            return  # a ``.metadata`` directory goes only with its directory (rm -r)
        await self.writes.rmdir(parent_ino, name)

    async def unlink(self, parent_ino: int, name: str) -> None:
        self.hidden.refuse("unlink", parent_ino)
        meta = await self.metafiles.find(self.inodes.get(parent_ino), name)
        if meta is not None:
            self.metafiles.unlink(meta)
            return
        await self.writes.unlink(parent_ino, name)

    async def rename(
        self, old_parent: int, old_name: str, new_parent: int, new_name: str, flags: int = 0
    ) -> None:
        self.hidden.refuse("rename", old_parent, new_parent)
        if await self.metafiles.find(self.inodes.get(old_parent), old_name) is not None:
            raise errors.NotSupported(f"rename {old_name}: metadata files stay where they are")
        target = await self.metafiles.find(self.inodes.get(new_parent), new_name)
        if target is not None:
            if target.is_dir:
                raise errors.NotSupported(f"rename onto {new_name}: a metadata directory")
            source = await self.writes.child(self.inodes.get(old_parent), old_name)
            if source is None:
                raise errors.NotFound(old_name)
            await self.metafiles.rename_onto(source, target)
            return
        await self.writes.rename(old_parent, old_name, new_parent, new_name, flags)

    async def _meta_setattr(
        self,
        ino: int,
        size: int | None,
        mode: int | None,
        mtime: float | None,
        uid: int | None,
        gid: int | None,
        fh: int | None,
        mtime_ns: int | None,
    ) -> Attr:
        """setattr of a metadata file or directory (see ``docfs.vfs.metafiles``)."""
        node = self.inodes.get(ino)
        if uid not in (None, self.options.uid) or gid not in (None, self.options.gid):
            raise errors.NotSupported("chown: files belong to the mounting user")
        if mtime_ns is None and mtime is not None:
            mtime_ns = round(mtime * 1e9)
        if size is not None:
            self.metafiles.truncate(fh, node, size)
        if mode is not None or mtime_ns is not None:
            self.metafiles.set_times(node, mtime_ns, mode)
        return self.attr(node)

    # ---- extended attributes (see ``Xattrs``) ----------------------------------------------

    async def getxattr(self, ino: int, name: str) -> bytes:
        return await self.xattrs.getxattr(ino, name)

    async def listxattr(self, ino: int) -> list[str]:
        return await self.xattrs.listxattr(ino)

    async def setxattr(self, ino: int, name: str, value: bytes) -> None:
        self.hidden.refuse("setxattr", ino)
        if self.metafiles.owns(ino):
            raise errors.AttributeNotSupported(f"{name}: a metadata file has no attributes")
        await self.xattrs.setxattr(ino, name, value)

    async def removexattr(self, ino: int, name: str) -> None:
        self.hidden.refuse("removexattr", ino)
        if self.metafiles.owns(ino):
            raise errors.AttributeNotSupported(f"{name}: a metadata file has no attributes")
        await self.xattrs.removexattr(ino, name)

    # ---- offline use and cache control (issue 22; see ``Pinning`` and ``Offline``) ---------

    async def _probe(self) -> None:
        """Ask the server something cheap: is it back? (the first page of the root)"""
        root = self.inodes.get(1).entry
        async with contextlib.aclosing(self.backend.list_dir(root)) as entries:  # type: ignore[type-var]
            async for _ in entries:
                break

    async def pin(self, path: str, progress: Callable[[Json], Awaitable[None]]) -> Json:
        return await self.pinning.pin(path, progress)

    def unpin(self, path: str) -> Json:
        return self.pinning.unpin(path)

    def pinned(self) -> Json:
        return self.pinning.pinned()

    def cache_clear(self, path: str) -> Json:
        """Drop cached content below ``path`` that is not pinned, open or being written; the
        listings stay. Asks the server nothing."""
        if path.strip("/") == "":
            files, dropped = self.content.clear()
        else:
            top = self.listings.cached_node(path)
            if top is None:
                raise errors.NotFound(f"{path}: not in the mount's cache")
            keys, todo = [], [top]
            while todo:
                node = todo.pop()
                if not node.is_dir:
                    keys.append(self.content.key(node.entry))
                    continue
                for ino in node.child_names().values():
                    child = self.inodes.find(ino)
                    if child is not None and child.parent == node.ino:
                        todo.append(child)
            files, dropped = self.content.clear(keys)
        return {"ok": True, "files": files, "bytes": dropped}
