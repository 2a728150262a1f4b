"""Uploads: a staged file's bytes to the server, at close or through the write-back queue.

The last close (``flush``) or ``fsync`` of a dirty file uploads it — ``create_file`` for a new
name, ``replace_file`` for an existing one — and ``close()`` returns the result; with write-back
the bytes go to the durable queue instead and ``upload_done`` follows the upload's result. A
failed upload leaves the bytes in lost+found. A create whose answer was lost is looked for
before it is sent again (``CREATE_RETRY``), so a retry never makes a duplicate.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import shutil
from collections.abc import Awaitable, Callable
from typing import Any

from docfs import errors
from docfs.backends.base import Entry, landing_window, until_visible
from docfs.retry import RetryPolicy
from docfs.vfs.checks import vanishes
from docfs.vfs.inodes import Node
from docfs.vfs.listings import Listings
from docfs.vfs.names import restore
from docfs.vfs.staging import Staged
from docfs.vfs.state import MountState
from docfs.vfs.writeback import Job

log = logging.getLogger("docfs.writes")

#: a create whose answer was lost is sent at most three times in all; instead of a pause, each
#: retry first looks whether the last try landed after all (``_arrived``)
CREATE_RETRY = RetryPolicy(attempts=3, base=0.0, jitter=False)


class Uploads:
    """Getting staged bytes to the server; the base of ``Writes`` (one state, two concerns)."""

    def __init__(self, state: MountState, listings: Listings) -> None:
        self.state = state
        self.listings = listings
        #: names the snapshots uploads are made from (two commits of one file may overlap)
        self._snapshots = itertools.count(1)

    def _stays_local(self, parent: Node, name: str) -> bool:
        return parent.local_only or self.state.names.is_local_only(name)

    def _is_temporary(self, name: str) -> bool:
        return self.state.names.is_temporary(name)

    def _unlink_local(self, node: Node) -> None:
        self._drop_job(node)
        parent = self.state.inodes.find(node.parent)
        if parent is not None and parent.local_children.get(node.name) == node.ino:
            del parent.local_children[node.name]
        if node.staged is not None and node.opened == 0:
            self.state.staging.discard(node.staged)
            node.staged = None
        self.state.inodes.detach(node)

    def _attach_remote(self, node: Node, entry: Entry) -> None:
        """``node`` (a local file) now exists on the server as ``entry``."""
        parent = self.state.inodes.get(node.parent)
        parent.local_children.pop(node.name, None)
        if parent.children is not None:
            parent.children[node.name] = node.ino
        self.state.inodes.rekey(node, entry)

    async def commit(self, node: Node) -> None:
        """Upload the staged copy of ``node`` (new file or new version)."""
        staged = node.staged
        if staged is None or node.local_only or node.detached:
            return
        if node.local and self._is_temporary(node.name):
            return  # uploaded when renamed to its final name
        parent = self.state.inodes.get(node.parent)
        remote_name = restore(node.name)
        path = self.state.path(node)
        if node.local and self.state.backend.package_file(parent.entry, remote_name):
            await self._apply_package_file(node, parent, remote_name, path)
            return
        if self.state.options.write_back is not None:
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
                with self.state.backend.uploading(path, snapshot.size):
                    if node.local:
                        entry = await self._create_remote(parent, remote_name, snapshot)
                        self._attach_remote(node, entry)
                    else:
                        with vanishes(self.state, node):
                            entry = await self.state.backend.replace_file(node.entry, snapshot.path)
                        # some repositories give new content a new id (DSpace 7): follow it
                        self.state.inodes.rekey(node, entry)
            except errors.DocfsError as exc:
                kept = self.state.lost_found.keep(snapshot, path, str(exc))
                log.error("upload of %s failed: %s; the data is kept in %s", path, exc, kept)
                staged.dirty = False
                if node.local:
                    self._unlink_local(node)
                else:
                    # remembered attributes change only with a committed version: an mtime
                    # meant for the new bytes (set while dirty, or a renamed file's) on the
                    # old ones would make the next rsync skip the file for good (issue 18.1)
                    node.mtime_override, node.mode_override = self.state.attrs.get(
                        node.entry.id, node.entry.version
                    )
                raise
            staged.dirty = False
            self.state.content.adopt(entry, snapshot.path)
        finally:
            os.close(snapshot.fd)
            snapshot.path.unlink(missing_ok=True)
        node.kernel_version = None
        self.state.attrs.put(entry.id, entry.version, node.mtime_override, node.mode_override)
        log.info("uploaded %s (%d bytes)", path, entry.size or 0)

    async def _apply_package_file(
        self, node: Node, parent: Node, remote_name: str, path: str
    ) -> None:
        """A deposit package's file (issue 21): it becomes the parent's metadata, not content.

        The node stays a local file with its bytes for the mount's life, so a later stat,
        read, ``utimes`` or rsync rename finds it; writing it again applies it again. In
        write-back mode too it is applied at once: it is small and changes how the files
        queued after it land."""
        staged = node.staged
        assert staged is not None
        try:
            entry = await self.state.backend.apply_package_file(
                parent.entry, remote_name, staged.path
            )
        except errors.DocfsError as exc:
            kept = self.state.lost_found.keep(staged, path, str(exc))
            log.error("%s was not applied: %s; the data is kept in %s", path, exc, kept)
            staged.dirty = False
            self._unlink_local(node)
            raise
        staged.dirty = False
        # the parent's metadata (maybe its name) changed: the next listing shows it
        self.state.inodes.rekey(parent, entry)
        log.info("applied %s to %s", path, self.state.path(parent))

    async def _commit_quietly(self, node: Node) -> None:
        with contextlib.suppress(errors.DocfsError):  # commit logged it and kept the data
            await self.commit(node)
        if node.staged is not None and not node.staged.dirty and node.staged.writers == 0:
            self.state.staging.discard(node.staged)
            node.staged = None

    async def _enqueue(self, node: Node, parent: Node, remote_name: str, path: str) -> None:
        """Write-back: hand the staged bytes to the durable queue; close returns at once."""
        wb = self.state.writeback
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
        self.state.job_nodes[job.id] = node.ino
        staged.dirty = False

    def upload_done(self, job: Job, entry: Entry) -> None:
        """A write-back upload finished: the node (if still there) now is ``entry``."""
        ino = self.state.job_nodes.pop(job.id, None)
        if ino is None:
            # queued by an earlier run: no node of ours stands for it
            self.state.attrs.put(entry.id, entry.version, job.mtime_ns, job.mode)
            self.state.invalidate_by_id(job.parent["id"])
            return
        node = self.state.inodes.find(ino)
        mtime, mode = job.mtime_ns, job.mode
        if node is not None and node.pending_job == job.id:
            mtime, mode = node.mtime_override, node.mode_override
        self.state.attrs.put(entry.id, entry.version, mtime, mode)
        if node is None or node.detached:
            if job.target is None:
                # removed while its upload was running: remove it from the server too
                log.info("%s was deleted while uploading; removing it", job.path)
                self.state.nursery.start_soon(self._remove_quietly, entry)
            return
        if node.pending_job != job.id:
            return  # a newer version is queued
        node.pending_job = None
        if node.local:
            self._attach_remote(node, entry)
        else:
            self.state.inodes.rekey(node, entry)
        node.kernel_version = None
        staged = node.staged
        if staged is not None and not staged.dirty:
            self.state.content.adopt(entry, staged.path)
            if staged.writers == 0:
                self.state.staging.discard(staged)
                node.staged = None

    async def _remove_quietly(self, entry: Entry) -> None:
        with contextlib.suppress(errors.DocfsError):
            await self.state.backend.remove(entry)

    def _drop_job(self, node: Node) -> None:
        """Forget the queued upload of a node being removed.

        An upload already in flight cannot be stopped: ``upload_done`` finds the node gone
        and removes the new object again.
        """
        wb = self.state.writeback
        if node.pending_job is None or wb is None:
            return
        if wb.cancel(node.pending_job):
            self.state.job_nodes.pop(node.pending_job, None)
        node.pending_job = None

    async def _create_remote(self, parent: Node, name: str, staged: Any) -> Entry:
        """``create_file``; after a lost answer, look before sending it again (no duplicates)."""
        size = staged.size

        async def send() -> Entry:
            return await self.state.backend.create_file(parent.entry, name, staged.path)

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
                    known = {self.state.inodes.get(i).entry.id for i in children}
                found = await self._arrived(parent, name, same, known, self._settle_time(exc))
                if found is not None:
                    log.info("%s of %s had arrived; its answer was lost", what, name)
                    return found
                log.info("%s of %s did not arrive; sending it again", what, name)
        raise AssertionError("unreachable")

    def _settle_time(self, exc: errors.RemoteUnavailable) -> float:
        """How long the request may still land (``landing_window``) at the backend's
        request timeout."""
        return landing_window(exc, self.state.backend.request_timeout)

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
            async for found in self.state.backend.list_dir(parent.entry):
                if found.name == name and same(found) and found.id not in known:
                    return found
            return None

        return await until_visible(look, settle, name)
