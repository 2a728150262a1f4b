"""The write path: create, write, close, mkdir, rmdir, unlink, rename, attributes.

Written against the backend protocol only: a backend gets all of this by implementing the
write methods and declaring, per entry, which operations exist (``Entry.ops``). Operations an
entry does not allow are refused here, before any request, with EPERM (EROFS on a read-only
mount) and one log line.

Files open for writing live in the staging area; the last close (``flush``) or ``fsync`` of a
dirty file uploads it — ``create_file`` for a new name, ``replace_file`` for an existing one — and
``close()`` returns the result. A failed upload leaves the bytes in lost+found. Names that
programs keep to themselves never reach the server; rsync-style temporary names are uploaded
when they are renamed to their final name, as one upload (or one new version).
"""

from __future__ import annotations

import itertools
import os
import time

from docfs import errors
from docfs.backends.base import Entry, Kind, Op
from docfs.vfs.checks import refuse, vanishes
from docfs.vfs.inodes import Node
from docfs.vfs.names import restore
from docfs.vfs.staging import Staged
from docfs.vfs.state import Attr, OpenFile
from docfs.vfs.uploads import CREATE_RETRY as CREATE_RETRY
from docfs.vfs.uploads import Uploads

RENAME_NOREPLACE = 1
RENAME_EXCHANGE = 2
_local_ids = itertools.count(1)


class Writes(Uploads):
    """The write operations of a mount (uploading is ``Uploads``' part)."""

    # ---- create / open / write / close -----------------------------------------------------

    async def child(self, parent: Node, name: str) -> Node | None:
        """The node ``name`` in directory ``parent`` (None: there is none)."""
        return await self._child(parent, name)

    async def _child(self, parent: Node, name: str) -> Node | None:
        if not parent.is_dir:
            raise errors.NotADirectory(self.state.path(parent))
        if name in parent.local_children:
            return self.state.inodes.get(parent.local_children[name])
        if parent.local_only:
            return None
        ino = (await self.listings.ensure_listed(parent)).get(name)
        return None if ino is None else self.state.inodes.find(ino)

    def _new_local(self, parent: Node, name: str, kind: Kind) -> Node:
        entry = Entry(
            id=f"local:{next(_local_ids)}",
            name=name,
            kind=kind,
            size=0,
            mtime=time.time(),
            version="",
            ops=frozenset(Op),
        )
        node = self.state.inodes.add_local(entry, parent.ino, name)
        node.local_only = self._stays_local(parent, name)
        if kind is Kind.DIR:
            node.children, node.listed_at = {}, float("inf")
        parent.local_children[name] = node.ino
        return node

    async def create(self, parent_ino: int, name: str, mode: int) -> tuple[int, Attr]:
        parent = self.state.inodes.get(parent_ino)
        if await self._child(parent, name) is not None:
            raise errors.AlreadyExists(name)
        if not self._stays_local(parent, name):
            refuse(self.state, parent, Op.CREATE_FILE, "create", name)
            if not self._is_temporary(name):
                self.state.backend.check_name(parent.entry, restore(name), Kind.FILE)
        elif self.state.options.read_only:
            raise errors.ReadOnly("create: read-only mount")
        node = self._new_local(parent, name, Kind.FILE)
        node.staged = self.state.staging.new()
        # a created file is uploaded on close even if nothing is written (touch)
        node.staged.dirty = True
        if mode & 0o7777 not in (0o644, 0o666, 0):
            node.mode_override = mode & 0o7777
        node.lookups += 1
        fh = self._open_writer(node)
        return fh, self.state.attr(node)

    def _owned(self, node: Node) -> Staged:
        """``node``'s staged file, ready to change: copied first if the write-back queue holds
        a hard link to it (the queued bytes must stay what was closed)."""
        staged = node.staged
        assert staged is not None
        if staged.shared:
            fresh = self.state.staging.new(staged.path)
            fresh.writers, fresh.dirty = staged.writers, staged.dirty
            self.state.staging.discard(staged)
            node.staged = staged = fresh
        return staged

    def _open_writer(self, node: Node) -> int:
        assert node.staged is not None
        node.staged.writers += 1
        node.opened += 1
        fh = self.state.new_handle()
        self.state.files[fh] = OpenFile(node, None, writer=True)
        return fh

    async def _stage(self, node: Node, truncate: bool) -> None:
        """Give ``node`` a staged copy: empty, or its current content."""
        if node.staged is not None:
            return
        if truncate or node.local:
            node.staged = self.state.staging.new()
            return
        await self.listings.refresh_parent(node)
        handle = self.state.content.open(
            node.entry,
            self.state.fetcher(node.entry),
            self.state.nursery,
            self.state.range_fetcher(node.entry),
        )
        try:
            with vanishes(self.state, node):
                complete = await self.state.content.complete(handle, self.state.nursery)
            node.staged = self.state.staging.new(complete)
        finally:
            self.state.content.release(handle)

    async def open_for_write(self, node: Node, truncate: bool) -> int:
        if not node.local:
            refuse(self.state, node, Op.REPLACE, "write")
        elif self.state.options.read_only:
            raise errors.ReadOnly("write: read-only mount")
        await self._stage(node, truncate)
        assert node.staged is not None
        if truncate and node.staged.size:
            os.ftruncate(self._owned(node).fd, 0)
            node.staged.dirty = True
        elif truncate:
            node.staged.dirty = True
        return self._open_writer(node)

    async def write(self, fh: int, offset: int, data: bytes) -> int:
        handle = self.state.handle_of(fh)
        staged = handle.node.staged
        if not handle.writer or staged is None:
            raise errors.BadHandle("file is not open for writing")
        staged = self._owned(handle.node)
        written = os.pwrite(staged.fd, data, offset)
        staged.dirty = True
        # a write makes the file new: an mtime set earlier no longer applies
        handle.node.mtime_override = None
        return written

    async def flush(self, fh: int) -> None:
        """close(): the last writer's close uploads a dirty file and returns the result.

        Known cost: ``sh -c 'echo x > f'`` (dash) opens with O_TRUNC, dup2s the descriptor and
        closes the original before writing, so an existing file gets an empty version first.
        Nothing in the FUSE flush tells that close apart from a program that really truncates
        and closes (``: > f``), whose close must report the upload's result."""
        handle = self.state.handle_of(fh)
        staged = handle.node.staged
        if handle.writer and staged is not None and staged.dirty and staged.writers <= 1:
            await self.commit(handle.node)

    async def fsync(self, fh: int) -> None:
        handle = self.state.handle_of(fh)
        if handle.node.staged is not None and handle.node.staged.dirty:
            await self.commit(handle.node)
        job = handle.node.pending_job
        if job is not None and self.state.writeback is not None:
            # write-back: fsync(2) returns once the queued copy is durable
            await self.state.writeback.wait_durable(job)

    async def release_writer(self, node: Node) -> None:
        staged = node.staged
        if staged is None:
            return
        staged.writers -= 1
        if staged.writers > 0:
            return
        if staged.dirty and not node.local_only and not self._is_temporary(node.name):
            # flush did not run (or failed and was retried): try once more, in the background
            self.state.nursery.start_soon(self._commit_quietly, node)
            return
        if not node.local and not staged.dirty and node.pending_job is None:
            self.state.staging.discard(staged)
            node.staged = None

    # ---- namespace -------------------------------------------------------------------------

    async def mkdir(self, parent_ino: int, name: str, mode: int) -> Attr:
        parent = self.state.inodes.get(parent_ino)
        if await self._child(parent, name) is not None:
            raise errors.AlreadyExists(name)
        if self._stays_local(parent, name):
            if self.state.options.read_only:
                raise errors.ReadOnly("mkdir: read-only mount")
            node = self._new_local(parent, name, Kind.DIR)
        else:
            refuse(self.state, parent, Op.MKDIR, "mkdir", name)
            remote_name = restore(name)
            self.state.backend.check_name(parent.entry, remote_name, Kind.DIR)

            async def send() -> Entry:
                return await self.state.backend.mkdir(parent.entry, remote_name)

            entry = await self._create_once(parent, remote_name, send, lambda e: e.is_dir, "mkdir")
            node = self.state.inodes.place(entry, parent.ino, name)
            if not entry.prefilled:
                node.children, node.listed_at = {}, self.state.fresh.now()
            if parent.children is not None:
                parent.children[name] = node.ino
        node.lookups += 1
        return self.state.attr(node)

    async def rmdir(self, parent_ino: int, name: str) -> None:
        parent = self.state.inodes.get(parent_ino)
        node = await self._child(parent, name)
        if node is None:
            raise errors.NotFound(name)
        if not node.is_dir:
            raise errors.NotADirectory(name)
        if node.local:
            if node.local_children:
                raise errors.NotEmpty(name)
            self._unlink_local(node)
            return
        refuse(self.state, node, Op.REMOVE, "rmdir")
        if await self.listings.ensure_listed(node):
            raise errors.NotEmpty(name)
        await self.state.backend.remove_from(node.entry, parent.entry)
        self._forget_child(parent, node)

    def _forget_child(self, parent: Node, node: Node) -> None:
        if parent.children is not None and parent.children.get(node.name) == node.ino:
            del parent.children[node.name]
        self.state.inodes.detach(node)

    async def unlink(self, parent_ino: int, name: str) -> None:
        parent = self.state.inodes.get(parent_ino)
        node = await self._child(parent, name)
        if node is None:
            raise errors.NotFound(name)
        if node.is_dir:
            raise errors.IsADirectory(name)
        if node.local:
            self._unlink_local(node)
            return
        if node.entry.allows(Op.REMOVE_WITH_DIR) and not node.entry.allows(Op.REMOVE):
            if self.state.options.read_only:
                raise errors.ReadOnly("unlink: read-only mount")
            # goes with its directory: hide it now; rmdir of the directory removes it
            if parent.hidden is None:
                parent.hidden = set()
            parent.hidden.add(name)
            return
        refuse(self.state, node, Op.REMOVE, "unlink")
        self._drop_job(node)
        await self.state.backend.remove(node.entry)
        self.state.content.drop(node.entry)
        self.state.attrs.put(node.entry.id, node.entry.version, None, None)
        self._forget_child(parent, node)

    async def rename(
        self,
        old_parent: int,
        old_name: str,
        new_parent: int,
        new_name: str,
        flags: int = 0,
    ) -> None:
        src_dir, dst_dir = self.state.inodes.get(old_parent), self.state.inodes.get(new_parent)
        src = await self._child(src_dir, old_name)
        if src is None:
            raise errors.NotFound(old_name)
        if flags & RENAME_EXCHANGE:
            raise errors.InvalidArgument("rename: exchange is not supported")
        dst = await self._child(dst_dir, new_name)
        if dst is src:
            return
        if dst is not None:
            if flags & RENAME_NOREPLACE:
                raise errors.AlreadyExists(new_name)
            if dst.is_dir != src.is_dir:
                raise (
                    errors.IsADirectory(new_name) if dst.is_dir else errors.NotADirectory(new_name)
                )
        if src.local:
            await self._rename_local(src, dst_dir, new_name, dst)
        else:
            await self._rename_remote(src, dst_dir, new_name, dst)

    async def _rename_local(
        self, src: Node, dst_dir: Node, new_name: str, dst: Node | None
    ) -> None:
        """A file not on the server yet: rename here; upload if the new name is a final one."""
        final = not self._stays_local(dst_dir, new_name) and not self._is_temporary(new_name)
        if final and not src.is_dir and dst is None:
            refuse(self.state, dst_dir, Op.CREATE_FILE, "rename", new_name)
            self.state.backend.check_name(dst_dir.entry, restore(new_name), Kind.FILE)
        if dst is not None and not dst.is_dir and not dst.local and final:
            # the usual write-then-rename: the temp file's bytes become a new version
            refuse(self.state, dst, Op.REPLACE, "rename")
            await self._replace_with(dst, src)
            return
        if dst is not None:
            if dst.is_dir and (dst.local_children or dst.children):
                raise errors.NotEmpty(new_name)
            if dst.local:
                self._unlink_local(dst)
            else:
                await self.unlink(dst_dir.ino, new_name)
        old_dir = self.state.inodes.get(src.parent)
        old_dir.local_children.pop(src.name, None)
        src.parent, src.name = dst_dir.ino, new_name
        dst_dir.local_children[new_name] = src.ino
        src.local_only = self._stays_local(dst_dir, new_name)
        if src.pending_job is not None and self.state.writeback is not None:
            # queued already: the queue uploads it under its new name
            self.state.writeback.rename(
                src.pending_job, dst_dir.entry, restore(new_name), self.state.path(src)
            )
        elif final and src.staged is not None and not src.is_dir:
            src.staged.dirty = True
            if src.staged.writers == 0:
                await self.commit(src)

    async def _replace_with(self, dst: Node, src: Node) -> None:
        """Make ``src``'s staged bytes the new content of ``dst``'s object, under ``src``'s
        inode (see ``_succeed``)."""
        staged = src.staged
        if staged is None:
            raise errors.InvalidArgument("rename: nothing staged")
        if dst.staged is not None and dst.staged is not staged:
            if dst.staged.writers:
                raise errors.DocfsError("rename: the target is open for writing")
            self.state.staging.discard(dst.staged)
        src.staged = None
        dst.staged = staged
        staged.dirty = True
        dst.mtime_override = src.mtime_override
        dst.mode_override = src.mode_override
        if staged.writers == 0:
            try:
                await self.commit(dst)
            except errors.DocfsError:
                self._unlink_local(src)  # its bytes are in lost+found
                raise
            finally:
                if not staged.dirty and dst.pending_job is None:
                    self.state.staging.discard(staged)
                    dst.staged = None
        self._succeed(src, dst)

    def _succeed(self, heir: Node, gone: Node) -> None:
        """After a rename over a file: ``heir`` (the source's inode) now stands for ``gone``'s
        remote object, with its staged bytes and queued upload; ``gone``'s inode is detached.

        The kernel moves the source's dentry to the new name, so the next open of that name
        reaches the source's inode without a lookup. Left detached, that inode dropped every
        later write without a word (found by the 16-process test of the reliability suite).
        Handles still open on the old target keep reading its old bytes, as POSIX wants.
        """
        old_dir = self.state.inodes.find(heir.parent)
        if old_dir is not None:
            if old_dir.local_children.get(heir.name) == heir.ino:
                del old_dir.local_children[heir.name]
            if old_dir.children is not None and old_dir.children.get(heir.name) == heir.ino:
                del old_dir.children[heir.name]
        self._drop_job(heir)
        heir.staged, gone.staged = gone.staged, None
        heir.pending_job, gone.pending_job = gone.pending_job, None
        if heir.pending_job is not None:
            self.state.job_nodes[heir.pending_job] = heir.ino
        heir.mtime_override, heir.mode_override = gone.mtime_override, gone.mode_override
        heir.local_only = False
        heir.kernel_version = None
        self.state.inodes.rekey(heir, gone.entry)
        heir.parent, heir.name = gone.parent, gone.name
        parent = self.state.inodes.find(gone.parent)
        if parent is not None and parent.children is not None:
            parent.children[gone.name] = heir.ino
        self.state.inodes.detach(gone)

    async def _rename_remote(
        self, src: Node, dst_dir: Node, new_name: str, dst: Node | None
    ) -> None:
        if self._stays_local(dst_dir, new_name) or self._is_temporary(new_name):
            # e.g. an editor's backup rename: the copy fallback keeps the server consistent
            raise errors.CrossDevice("rename to a local-only name")
        old_dir = self.state.inodes.get(src.parent)
        if old_dir.ino != dst_dir.ino and not self.state.backend.capabilities.move:
            raise errors.CrossDevice(f"{self.state.backend.name} cannot move between directories")
        if dst is not None and not dst.is_dir:
            # rename over an existing file: the target gets a new version, the source goes
            refuse(self.state, dst, Op.REPLACE, "rename")
            refuse(self.state, src, Op.REMOVE, "rename")
            if dst.staged is not None and dst.staged.writers:
                raise errors.DocfsError("rename: the target is open for writing")
            await self._stage(src, truncate=False)
            assert src.staged is not None
            staged, src.staged = src.staged, None
            if dst.staged is not None and dst.staged is not staged:
                self.state.staging.discard(dst.staged)
            dst.staged = staged
            staged.dirty = True
            dst.mtime_override, dst.mode_override = src.mtime_override, src.mode_override
            try:
                await self.commit(dst)
            except errors.DocfsError:
                # the target keeps its old bytes (the new ones are in lost+found)
                dst.staged = None
                if staged.writers:
                    src.staged = staged
                else:
                    self.state.staging.discard(staged)
                raise
            if dst.pending_job is None and not staged.writers:
                self.state.staging.discard(staged)
                dst.staged = None
            removed = src.entry
            self._succeed(src, dst)
            await self.state.backend.remove(removed)
            return
        if dst is not None:
            await self.rmdir(dst_dir.ino, new_name)
        refuse(self.state, src, Op.RENAME, "rename")
        self.state.backend.check_name(dst_dir.entry, restore(new_name), src.entry.kind)
        with vanishes(self.state, src):
            entry = await self.state.backend.rename(src.entry, dst_dir.entry, restore(new_name))
        if old_dir.children is not None and old_dir.children.get(src.name) == src.ino:
            del old_dir.children[src.name]
        src.entry, src.parent, src.name = entry, dst_dir.ino, new_name
        if dst_dir.children is not None:
            dst_dir.children[new_name] = src.ino

    # ---- attributes ------------------------------------------------------------------------

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
        """``mtime_ns`` (what the kernel sends) or ``mtime`` in seconds sets the mtime."""
        node = self.state.inodes.get(ino)
        if mtime_ns is None and mtime is not None:
            mtime_ns = round(mtime * 1e9)
        if uid not in (None, self.state.options.uid) or gid not in (None, self.state.options.gid):
            raise errors.NotSupported("chown: files belong to the mounting user")
        if (size is not None or mode is not None or mtime_ns is not None) and (
            self.state.options.read_only
        ):
            raise errors.ReadOnly("setattr: read-only mount")
        if size is not None:
            await self._truncate(node, size, fh)
        if mode is not None:
            node.mode_override = mode & 0o7777
        if mtime_ns is not None:
            node.mtime_override = mtime_ns
        if (mode is not None or mtime_ns is not None) and not node.local:
            dirty = node.staged is not None and node.staged.dirty
            if not dirty:
                self.state.attrs.put(
                    node.entry.id, node.entry.version, node.mtime_override, node.mode_override
                )
        return self.state.attr(node)

    async def _truncate(self, node: Node, size: int, fh: int | None) -> None:
        if node.is_dir:
            raise errors.IsADirectory(self.state.path(node))
        if node.staged is None and size == (node.entry.size or 0) and not node.local:
            return
        if node.staged is None and not node.local:
            refuse(self.state, node, Op.REPLACE, "truncate")
        await self._stage(node, truncate=size == 0)
        assert node.staged is not None
        os.ftruncate(self._owned(node).fd, size)
        node.staged.dirty = True
        node.mtime_override = None
        if node.staged.writers == 0:
            # truncate(2) on a closed file: no close will follow, upload now
            try:
                await self.commit(node)
            finally:
                staged = node.staged
                if not node.local and staged and not staged.dirty and node.pending_job is None:
                    self.state.staging.discard(staged)
                    node.staged = None
