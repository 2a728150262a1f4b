"""The write path: create, write, upload on close, mkdir, rmdir, unlink, rename, attributes.

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

import contextlib
import itertools
import logging
import os
import shutil
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import TYPE_CHECKING, Any

from docfs import errors
from docfs.backends.base import Entry, Kind, Op, landing_window, until_visible
from docfs.retry import RetryPolicy
from docfs.vfs.inodes import Node
from docfs.vfs.names import restore
from docfs.vfs.staging import Staged
from docfs.vfs.writeback import Job

if TYPE_CHECKING:
    from docfs.vfs.filesystem import Attr, Filesystem

log = logging.getLogger("docfs.writes")

RENAME_NOREPLACE = 1
RENAME_EXCHANGE = 2
_local_ids = itertools.count(1)
#: a create whose answer was lost is sent at most three times in all; instead of a pause, each
#: retry first looks whether the last try landed after all (``_arrived``)
CREATE_RETRY = RetryPolicy(attempts=3, base=0.0, jitter=False)


class Writes:
    """The write operations of a ``Filesystem`` (which owns all the state)."""

    def __init__(self, fs: Filesystem) -> None:
        self.fs = fs
        #: names the snapshots uploads are made from (two commits of one file may overlap)
        self._snapshots = itertools.count(1)

    # ---- checks ----------------------------------------------------------------------------

    def _refuse(self, node: Node, op: Op, what: str, name: str | None = None) -> None:
        """Raise unless ``op`` is allowed on ``node`` (or, given the ``name`` of the new entry,
        inside it). The message is the refusal's one log line (``fuse_ops`` logs it with the
        errno): it names the path refused — the new entry, not its parent — and the backend's
        hint of what to do instead."""
        if self.fs.options.read_only:
            raise errors.ReadOnly(
                f"{what} {self._refused_path(node, name)}: the mount is read-only"
            )
        if node.local_only:
            return
        if not node.entry.allows(op):
            backend = self.fs.backend
            hint = backend.refusal_hint(node.entry, op)
            raise errors.NotSupported(
                f"{what} {self._refused_path(node, name)}: {backend.name} has no such "
                f"operation here{f'; {hint}' if hint else ''}"
            )

    def _refused_path(self, node: Node, name: str | None) -> str:
        path = self.fs.path(node)
        return path if name is None else f"{path.rstrip('/')}/{name}"

    def _stays_local(self, parent: Node, name: str) -> bool:
        return parent.local_only or self.fs.names.is_local_only(name)

    def _is_temporary(self, name: str) -> bool:
        return self.fs.names.is_temporary(name)

    async def _child(self, parent: Node, name: str) -> Node | None:
        if not parent.is_dir:
            raise errors.NotADirectory(self.fs.path(parent))
        if name in parent.local_children:
            return self.fs.inodes.get(parent.local_children[name])
        if parent.local_only:
            return None
        ino = (await self.fs.ensure_listed(parent)).get(name)
        return None if ino is None else self.fs.inodes.find(ino)

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
        node = self.fs.inodes.add_local(entry, parent.ino, name)
        node.local_only = self._stays_local(parent, name)
        if kind is Kind.DIR:
            node.children, node.listed_at = {}, float("inf")
        parent.local_children[name] = node.ino
        return node

    def _unlink_local(self, node: Node) -> None:
        self._drop_job(node)
        parent = self.fs.inodes.find(node.parent)
        if parent is not None and parent.local_children.get(node.name) == node.ino:
            del parent.local_children[node.name]
        if node.staged is not None and node.opened == 0:
            self.fs.staging.discard(node.staged)
            node.staged = None
        self.fs.inodes.detach(node)

    @contextlib.contextmanager
    def _vanishes(self, node: Node) -> Iterator[None]:
        """A 404 for ``node`` means it vanished from the server: its parent's listing, which
        still shows it, is stale. Re-list it on the next access, so ``ls`` agrees with ENOENT."""
        try:
            yield
        except errors.NotFound:
            self.fs.invalidate(node.parent)
            raise

    def _attach_remote(self, node: Node, entry: Entry) -> None:
        """``node`` (a local file) now exists on the server as ``entry``."""
        parent = self.fs.inodes.get(node.parent)
        parent.local_children.pop(node.name, None)
        if parent.children is not None:
            parent.children[node.name] = node.ino
        self.fs.inodes.rekey(node, entry)

    # ---- create / open / write / close -----------------------------------------------------

    async def create(self, parent_ino: int, name: str, mode: int) -> tuple[int, Attr]:
        parent = self.fs.inodes.get(parent_ino)
        if await self._child(parent, name) is not None:
            raise errors.AlreadyExists(name)
        if not self._stays_local(parent, name):
            self._refuse(parent, Op.CREATE_FILE, "create", name)
            if not self._is_temporary(name):
                self.fs.backend.check_name(parent.entry, restore(name), Kind.FILE)
        elif self.fs.options.read_only:
            raise errors.ReadOnly("create: read-only mount")
        node = self._new_local(parent, name, Kind.FILE)
        node.staged = self.fs.staging.new()
        # a created file is uploaded on close even if nothing is written (touch)
        node.staged.dirty = True
        if mode & 0o7777 not in (0o644, 0o666, 0):
            node.mode_override = mode & 0o7777
        node.lookups += 1
        fh = self._open_writer(node)
        return fh, self.fs.attr(node)

    def _owned(self, node: Node) -> Staged:
        """``node``'s staged file, ready to change: copied first if the write-back queue holds
        a hard link to it (the queued bytes must stay what was closed)."""
        staged = node.staged
        assert staged is not None
        if staged.shared:
            fresh = self.fs.staging.new(staged.path)
            fresh.writers, fresh.dirty = staged.writers, staged.dirty
            self.fs.staging.discard(staged)
            node.staged = staged = fresh
        return staged

    def _open_writer(self, node: Node) -> int:
        from docfs.vfs.filesystem import OpenFile

        assert node.staged is not None
        node.staged.writers += 1
        node.opened += 1
        fh = self.fs.new_handle()
        self.fs.files[fh] = OpenFile(node, None, writer=True)
        return fh

    async def _stage(self, node: Node, truncate: bool) -> None:
        """Give ``node`` a staged copy: empty, or its current content."""
        if node.staged is not None:
            return
        if truncate or node.local:
            node.staged = self.fs.staging.new()
            return
        await self.fs.refresh_parent(node)
        handle = self.fs.content.open(
            node.entry,
            self.fs.fetcher(node.entry),
            self.fs.nursery,
            self.fs.range_fetcher(node.entry),
        )
        try:
            with self._vanishes(node):
                complete = await self.fs.content.complete(handle, self.fs.nursery)
            node.staged = self.fs.staging.new(complete)
        finally:
            self.fs.content.release(handle)

    async def open_for_write(self, node: Node, truncate: bool) -> int:
        if not node.local:
            self._refuse(node, Op.REPLACE, "write")
        elif self.fs.options.read_only:
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
        handle = self.fs.handle_of(fh)
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
        handle = self.fs.handle_of(fh)
        staged = handle.node.staged
        if handle.writer and staged is not None and staged.dirty and staged.writers <= 1:
            await self.commit(handle.node)

    async def fsync(self, fh: int) -> None:
        handle = self.fs.handle_of(fh)
        if handle.node.staged is not None and handle.node.staged.dirty:
            await self.commit(handle.node)
        job = handle.node.pending_job
        if job is not None and self.fs.writeback is not None:
            # write-back: fsync(2) returns once the queued copy is durable
            await self.fs.writeback.wait_durable(job)

    async def release_writer(self, node: Node) -> None:
        staged = node.staged
        if staged is None:
            return
        staged.writers -= 1
        if staged.writers > 0:
            return
        if staged.dirty and not node.local_only and not self._is_temporary(node.name):
            # flush did not run (or failed and was retried): try once more, in the background
            self.fs.nursery.start_soon(self._commit_quietly, node)
            return
        if not node.local and not staged.dirty and node.pending_job is None:
            self.fs.staging.discard(staged)
            node.staged = None

    async def _commit_quietly(self, node: Node) -> None:
        with contextlib.suppress(errors.DocfsError):  # commit logged it and kept the data
            await self.commit(node)
        if node.staged is not None and not node.staged.dirty and node.staged.writers == 0:
            self.fs.staging.discard(node.staged)
            node.staged = None

    async def commit(self, node: Node) -> None:
        """Upload the staged copy of ``node`` (new file or new version)."""
        staged = node.staged
        if staged is None or node.local_only or node.detached:
            return
        if node.local and self._is_temporary(node.name):
            return  # uploaded when renamed to its final name
        parent = self.fs.inodes.get(node.parent)
        remote_name = restore(node.name)
        path = self.fs.path(node)
        if self.fs.options.write_back is not None:
            await self._enqueue(node, parent, remote_name, path)
            return
        # upload a snapshot: a writer that reopens the file meanwhile must not change the bytes
        # being sent (a backend declares the size first and reads the body afterwards: DocSpace
        # answered "uploadSize != bytesTotal"). A hard link is a snapshot only because
        # ``shared`` makes every later write go to a copy (``_owned``); it stays set, since
        # the cache may adopt this inode below
        staged.shared = True
        snap_path = staged.path.with_name(f"{staged.path.name}.up{next(self._snapshots)}")
        try:
            os.link(staged.path, snap_path)
        except OSError:  # a cache on a filesystem without hard links: a copy is a snapshot too
            shutil.copyfile(staged.path, snap_path)
        snapshot = Staged(snap_path, os.open(snap_path, os.O_RDONLY))
        try:
            try:
                # counted as it leaves, for docfs status (see HttpClient.uploading)
                with self.fs.backend.uploading(path, snapshot.size):
                    if node.local:
                        entry = await self._create_remote(parent, remote_name, snapshot)
                        self._attach_remote(node, entry)
                    else:
                        with self._vanishes(node):
                            entry = await self.fs.backend.replace_file(node.entry, snapshot.path)
                        # some repositories give new content a new id (DSpace 7): follow it
                        self.fs.inodes.rekey(node, entry)
            except errors.DocfsError as exc:
                kept = self.fs.lost_found.keep(snapshot, path, str(exc))
                log.error("upload of %s failed: %s; the data is kept in %s", path, exc, kept)
                staged.dirty = False
                if node.local:
                    self._unlink_local(node)
                else:
                    # remembered attributes change only with a committed version: an mtime
                    # meant for the new bytes (set while dirty, or a renamed file's) on the
                    # old ones would make the next rsync skip the file for good (issue 18.1)
                    node.mtime_override, node.mode_override = self.fs.attrs.get(
                        node.entry.id, node.entry.version
                    )
                raise
            staged.dirty = False
            self.fs.content.adopt(entry, snapshot.path)
        finally:
            os.close(snapshot.fd)
            snapshot.path.unlink(missing_ok=True)
        node.kernel_version = None
        self.fs.attrs.put(entry.id, entry.version, node.mtime_override, node.mode_override)
        log.info("uploaded %s (%d bytes)", path, entry.size or 0)

    async def _enqueue(self, node: Node, parent: Node, remote_name: str, path: str) -> None:
        """Write-back: hand the staged bytes to the durable queue; close returns at once."""
        wb = self.fs.writeback
        assert wb is not None
        if node.pending_job is not None and not wb.cancel(node.pending_job):
            # its previous version is being uploaded right now: let that finish first, so a
            # new file is not created twice
            await wb.wait_for(node.pending_job)
        # taken after the wait: a write meanwhile may have replaced it (see _owned)
        staged = node.staged
        assert staged is not None
        target = None if node.local else node.entry
        job = await wb.enqueue(
            staged,
            parent.entry,
            remote_name,
            target,
            path,
            node.mtime_override,
            node.mode_override,
        )
        node.pending_job = job.id
        self.fs.job_nodes[job.id] = node.ino
        staged.dirty = False

    def upload_done(self, job: Job, entry: Entry) -> None:
        """A write-back upload finished: the node (if still there) now is ``entry``."""
        ino = self.fs.job_nodes.pop(job.id, None)
        if ino is None:
            # queued by an earlier run: no node of ours stands for it
            self.fs.attrs.put(entry.id, entry.version, job.mtime_ns, job.mode)
            self.fs.invalidate_by_id(job.parent["id"])
            return
        node = self.fs.inodes.find(ino)
        mtime, mode = job.mtime_ns, job.mode
        if node is not None and node.pending_job == job.id:
            mtime, mode = node.mtime_override, node.mode_override
        self.fs.attrs.put(entry.id, entry.version, mtime, mode)
        if node is None or node.detached:
            if job.target is None:
                # removed while its upload was running: remove it from the server too
                log.info("%s was deleted while uploading; removing it", job.path)
                self.fs.nursery.start_soon(self._remove_quietly, entry)
            return
        if node.pending_job != job.id:
            return  # a newer version is queued
        node.pending_job = None
        if node.local:
            self._attach_remote(node, entry)
        else:
            self.fs.inodes.rekey(node, entry)
        node.kernel_version = None
        staged = node.staged
        if staged is not None and not staged.dirty:
            self.fs.content.adopt(entry, staged.path)
            if staged.writers == 0:
                self.fs.staging.discard(staged)
                node.staged = None

    async def _remove_quietly(self, entry: Entry) -> None:
        with contextlib.suppress(errors.DocfsError):
            await self.fs.backend.remove(entry)

    def _drop_job(self, node: Node) -> None:
        """Forget the queued upload of a node being removed.

        An upload already in flight cannot be stopped: ``upload_done`` finds the node gone
        and removes the new object again.
        """
        wb = self.fs.writeback
        if node.pending_job is None or wb is None:
            return
        if wb.cancel(node.pending_job):
            self.fs.job_nodes.pop(node.pending_job, None)
        node.pending_job = None

    async def _create_remote(self, parent: Node, name: str, staged: Any) -> Entry:
        """``create_file``; after a lost answer, look before sending it again (no duplicates)."""
        size = staged.size

        async def send() -> Entry:
            return await self.fs.backend.create_file(parent.entry, name, staged.path)

        return await self._create_once(
            parent, name, send, lambda e: not e.is_dir and e.size == size, "upload"
        )

    async def _create_once(
        self,
        parent: Node,
        name: str,
        send: Callable[[], Awaitable[Entry]],
        same: Callable[[Entry], bool],
        what: str,
    ) -> Entry:
        """Create ``name`` in ``parent`` with ``send``: a POST, so not blindly repeatable.

        When its answer is lost (connection cut, 5xx) the server may or may not have acted;
        a fresh listing tells which, so a retry never makes a duplicate. ``mkdir`` needs this
        as much as uploads do: a lost answer to "create item" must not fail ``cp -r``.
        """
        # what the parent held before: a match among these is not ours (taken lazily, after
        # a failure, since our own entry joins the children only after a success)
        known: set[str] | None = None
        for attempt in range(CREATE_RETRY.attempts):
            try:
                return await send()
            except errors.RemoteUnavailable as exc:
                if CREATE_RETRY.gives_up(attempt):
                    raise
                if known is None:
                    children = (parent.children or {}).values()
                    known = {self.fs.inodes.get(i).entry.id for i in children}
                found = await self._arrived(parent, name, same, known, self._settle_time(exc))
                if found is not None:
                    log.info("%s of %s had arrived; its answer was lost", what, name)
                    return found
                log.info("%s of %s did not arrive; sending it again", what, name)
        raise AssertionError("unreachable")

    def _settle_time(self, exc: errors.RemoteUnavailable) -> float:
        """How long the request may still land (``landing_window``) at the backend's
        request timeout."""
        return landing_window(exc, self.fs.backend.request_timeout)

    async def _arrived(
        self,
        parent: Node,
        name: str,
        same: Callable[[Entry], bool],
        known: set[str],
        settle: float,
    ) -> Entry | None:
        """The entry a request whose answer was lost created, or None once it can no longer
        land: the listing is read again with growing pauses until ``settle`` seconds pass."""

        async def look() -> Entry | None:
            async for found in self.fs.backend.list_dir(parent.entry):
                if found.name == name and same(found) and found.id not in known:
                    return found
            return None

        return await until_visible(look, settle, name)

    # ---- namespace -------------------------------------------------------------------------

    async def mkdir(self, parent_ino: int, name: str, mode: int) -> Attr:
        parent = self.fs.inodes.get(parent_ino)
        if await self._child(parent, name) is not None:
            raise errors.AlreadyExists(name)
        if self._stays_local(parent, name):
            if self.fs.options.read_only:
                raise errors.ReadOnly("mkdir: read-only mount")
            node = self._new_local(parent, name, Kind.DIR)
        else:
            self._refuse(parent, Op.MKDIR, "mkdir", name)
            remote_name = restore(name)
            self.fs.backend.check_name(parent.entry, remote_name, Kind.DIR)

            async def send() -> Entry:
                return await self.fs.backend.mkdir(parent.entry, remote_name)

            entry = await self._create_once(parent, remote_name, send, lambda e: e.is_dir, "mkdir")
            node = self.fs.inodes.place(entry, parent.ino, name)
            if not entry.prefilled:
                node.children, node.listed_at = {}, self.fs.fresh.now()
            if parent.children is not None:
                parent.children[name] = node.ino
        node.lookups += 1
        return self.fs.attr(node)

    async def rmdir(self, parent_ino: int, name: str) -> None:
        parent = self.fs.inodes.get(parent_ino)
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
        self._refuse(node, Op.REMOVE, "rmdir")
        if await self.fs.ensure_listed(node):
            raise errors.NotEmpty(name)
        await self.fs.backend.remove_from(node.entry, parent.entry)
        self._forget_child(parent, node)

    def _forget_child(self, parent: Node, node: Node) -> None:
        if parent.children is not None and parent.children.get(node.name) == node.ino:
            del parent.children[node.name]
        self.fs.inodes.detach(node)

    async def unlink(self, parent_ino: int, name: str) -> None:
        parent = self.fs.inodes.get(parent_ino)
        node = await self._child(parent, name)
        if node is None:
            raise errors.NotFound(name)
        if node.is_dir:
            raise errors.IsADirectory(name)
        if node.local:
            self._unlink_local(node)
            return
        if node.entry.allows(Op.REMOVE_WITH_DIR) and not node.entry.allows(Op.REMOVE):
            if self.fs.options.read_only:
                raise errors.ReadOnly("unlink: read-only mount")
            # goes with its directory: hide it now; rmdir of the directory removes it
            if parent.hidden is None:
                parent.hidden = set()
            parent.hidden.add(name)
            return
        self._refuse(node, Op.REMOVE, "unlink")
        self._drop_job(node)
        await self.fs.backend.remove(node.entry)
        self.fs.content.drop(node.entry)
        self.fs.attrs.put(node.entry.id, node.entry.version, None, None)
        self._forget_child(parent, node)

    async def rename(
        self,
        old_parent: int,
        old_name: str,
        new_parent: int,
        new_name: str,
        flags: int = 0,
    ) -> None:
        src_dir, dst_dir = self.fs.inodes.get(old_parent), self.fs.inodes.get(new_parent)
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
            self._refuse(dst_dir, Op.CREATE_FILE, "rename", new_name)
            self.fs.backend.check_name(dst_dir.entry, restore(new_name), Kind.FILE)
        if dst is not None and not dst.is_dir and not dst.local and final:
            # the usual write-then-rename: the temp file's bytes become a new version
            self._refuse(dst, Op.REPLACE, "rename")
            await self._replace_with(dst, src)
            return
        if dst is not None:
            if dst.is_dir and (dst.local_children or dst.children):
                raise errors.NotEmpty(new_name)
            if dst.local:
                self._unlink_local(dst)
            else:
                await self.unlink(dst_dir.ino, new_name)
        old_dir = self.fs.inodes.get(src.parent)
        old_dir.local_children.pop(src.name, None)
        src.parent, src.name = dst_dir.ino, new_name
        dst_dir.local_children[new_name] = src.ino
        src.local_only = self._stays_local(dst_dir, new_name)
        if src.pending_job is not None and self.fs.writeback is not None:
            # queued already: the queue uploads it under its new name
            self.fs.writeback.rename(
                src.pending_job, dst_dir.entry, restore(new_name), self.fs.path(src)
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
            self.fs.staging.discard(dst.staged)
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
                    self.fs.staging.discard(staged)
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
        old_dir = self.fs.inodes.find(heir.parent)
        if old_dir is not None:
            if old_dir.local_children.get(heir.name) == heir.ino:
                del old_dir.local_children[heir.name]
            if old_dir.children is not None and old_dir.children.get(heir.name) == heir.ino:
                del old_dir.children[heir.name]
        self._drop_job(heir)
        heir.staged, gone.staged = gone.staged, None
        heir.pending_job, gone.pending_job = gone.pending_job, None
        if heir.pending_job is not None:
            self.fs.job_nodes[heir.pending_job] = heir.ino
        heir.mtime_override, heir.mode_override = gone.mtime_override, gone.mode_override
        heir.local_only = False
        heir.kernel_version = None
        self.fs.inodes.rekey(heir, gone.entry)
        heir.parent, heir.name = gone.parent, gone.name
        parent = self.fs.inodes.find(gone.parent)
        if parent is not None and parent.children is not None:
            parent.children[gone.name] = heir.ino
        self.fs.inodes.detach(gone)

    async def _rename_remote(
        self, src: Node, dst_dir: Node, new_name: str, dst: Node | None
    ) -> None:
        if self._stays_local(dst_dir, new_name) or self._is_temporary(new_name):
            # e.g. an editor's backup rename: the copy fallback keeps the server consistent
            raise errors.CrossDevice("rename to a local-only name")
        old_dir = self.fs.inodes.get(src.parent)
        if old_dir.ino != dst_dir.ino and not self.fs.backend.capabilities.move:
            raise errors.CrossDevice(f"{self.fs.backend.name} cannot move between directories")
        if dst is not None and not dst.is_dir:
            # rename over an existing file: the target gets a new version, the source goes
            self._refuse(dst, Op.REPLACE, "rename")
            self._refuse(src, Op.REMOVE, "rename")
            if dst.staged is not None and dst.staged.writers:
                raise errors.DocfsError("rename: the target is open for writing")
            await self._stage(src, truncate=False)
            assert src.staged is not None
            staged, src.staged = src.staged, None
            if dst.staged is not None and dst.staged is not staged:
                self.fs.staging.discard(dst.staged)
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
                    self.fs.staging.discard(staged)
                raise
            if dst.pending_job is None and not staged.writers:
                self.fs.staging.discard(staged)
                dst.staged = None
            removed = src.entry
            self._succeed(src, dst)
            await self.fs.backend.remove(removed)
            return
        if dst is not None:
            await self.rmdir(dst_dir.ino, new_name)
        self._refuse(src, Op.RENAME, "rename")
        self.fs.backend.check_name(dst_dir.entry, restore(new_name), src.entry.kind)
        with self._vanishes(src):
            entry = await self.fs.backend.rename(src.entry, dst_dir.entry, restore(new_name))
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
        node = self.fs.inodes.get(ino)
        if mtime_ns is None and mtime is not None:
            mtime_ns = round(mtime * 1e9)
        if uid not in (None, self.fs.options.uid) or gid not in (None, self.fs.options.gid):
            raise errors.NotSupported("chown: files belong to the mounting user")
        if (size is not None or mode is not None or mtime_ns is not None) and (
            self.fs.options.read_only
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
                self.fs.attrs.put(
                    node.entry.id, node.entry.version, node.mtime_override, node.mode_override
                )
        return self.fs.attr(node)

    async def _truncate(self, node: Node, size: int, fh: int | None) -> None:
        if node.is_dir:
            raise errors.IsADirectory(self.fs.path(node))
        if node.staged is None and size == (node.entry.size or 0) and not node.local:
            return
        if node.staged is None and not node.local:
            self._refuse(node, Op.REPLACE, "truncate")
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
                    self.fs.staging.discard(staged)
                    node.staged = None

    async def setxattr(self, ino: int, name: str, value: bytes) -> None:
        node = self.fs.inodes.get(ino)
        key = self._meta_key(name)
        self._refuse(node, Op.SET_META, "setxattr")
        text = value.decode("utf-8", errors="replace")
        with self._vanishes(node):
            self._meta_changed(node, await self.fs.backend.set_meta(node.entry, key, text))

    async def removexattr(self, ino: int, name: str) -> None:
        node = self.fs.inodes.get(ino)
        key = self._meta_key(name)
        if key not in node.entry.meta:
            raise errors.NoAttribute(name)
        self._refuse(node, Op.SET_META, "removexattr")
        with self._vanishes(node):
            self._meta_changed(node, await self.fs.backend.set_meta(node.entry, key, None))

    def _meta_changed(self, node: Node, entry: Entry) -> None:
        renamed = entry.name != node.entry.name
        node.entry = entry
        if renamed:
            # the name comes from the metadata (e.g. an item's title): re-list the parent
            self.fs.invalidate(node.parent)

    def _meta_key(self, name: str) -> str:
        prefix = f"user.{self.fs.backend.capabilities.meta_namespace}."
        if not name.startswith(prefix) or len(name) == len(prefix):
            raise errors.AttributeNotSupported(
                f"extended attribute {name!r}: only {prefix}* is stored"
            )
        return name[len(prefix) :]
