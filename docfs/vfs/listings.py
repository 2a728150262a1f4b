"""Directory listings: fetched whole on first use, kept for the TTL, refreshed when stale.

A stale listing is refreshed through its change scope's feed where the backend has one
(``Backend.changes``), else listed again (one tree listing for a whole scope where the backend
can). A listing that fails because the server is away is served from what is cached, with one
warning; a directory that answers 404 is dropped and its parent re-listed.
"""

from __future__ import annotations

import logging
import time

import trio

from docfs import errors
from docfs.backends.base import Entry
from docfs.vfs.inodes import ROOT_INODE, ChangeFeed, Node
from docfs.vfs.names import assign_names
from docfs.vfs.state import MountState

log = logging.getLogger("docfs.vfs")

#: with a change feed, directories are still listed in full once every this many TTLs
FULL_LISTING_EVERY = 10
#: a walking program that had to wait for a directory's listing gets this many of its next
#: siblings listed in the background meanwhile (the backend's own limits still apply)
PREFETCH_SIBLINGS = 4


class _Order:
    """A parent's children in the order a walk opens them (sorted, as readdir gives them), for
    one listing of it (``listed_at``), and how far a walk's prefetch has looked at them."""

    __slots__ = ("index", "listed_at", "names", "scanned")

    def __init__(self, listed_at: float | None, names: list[str]) -> None:
        self.listed_at = listed_at
        self.names = names
        self.index = {name: i for i, name in enumerate(names)}
        #: the siblings before this position were listed, or started, when last looked at
        self.scanned = 0


class Listings:
    """The listing side of a mount (its state is the ``MountState``)."""

    def __init__(self, state: MountState) -> None:
        self.state = state
        self._list_locks: dict[int, trio.Lock] = {}
        self._stale_warned: set[int] = set()
        #: directories being listed ahead of a walk (``prefetch_siblings``)
        self._prefetching: set[int] = set()
        #: a parent's children in the order readdir gives them, per listing (its ``listed_at``)
        self._order: dict[int, _Order] = {}

    async def refresh_parent(self, node: Node) -> None:
        """Re-list the parent of ``node`` if its listing is stale (new size/version)."""
        if node.ino == ROOT_INODE or node.detached:
            return
        parent = self.state.inodes.find(node.parent)
        if parent is not None and parent.children is not None:
            await self.ensure_fresh(parent)

    async def ensure_listed(self, node: Node, deep: bool = False) -> dict[str, int]:
        """The children of ``node``, listed if the listing is not fresh; ``deep``: a program
        walks the tree, so the child directories' listings are taken from the same answers
        where the backend can (``Backend.list_dir_deep``)."""
        await self.ensure_fresh(node, deep)
        return node.child_names()

    async def ensure_fresh(self, node: Node, deep: bool = False) -> None:
        """``ensure_listed`` without the copy of the children (``Node.child`` reads them)."""
        if not node.is_dir:
            raise errors.NotADirectory(self.state.path(node))
        if node.ino in self.state.virtual_dirs:
            # a hidden directory (docfs.vfs.hidden): its provider lists it, on opendir
            return
        fresh = self.state.fresh
        if fresh.fresh(node.listed_at):
            return
        offline = self.state.offline
        if offline.offline and node.children is not None:
            # a server that does not answer is not asked: what is cached is served (and a
            # probe looks whether it is back)
            offline.stale_listing(self.state.path(node))
            offline.nudge()
            return
        if not await offline.reachable():
            raise offline.refuse(f"the listing of {self.state.path(node)!r}")
        lock = self._list_locks.setdefault(node.ino, trio.Lock())
        async with lock:
            # another task may have listed it while we waited for the lock
            if not fresh.fresh(node.listed_at):
                try:
                    if not await self._refresh_from_changes(node):
                        await self._list(node, deep)
                except errors.RemoteUnavailable:
                    if node.children is None:
                        raise
                    if offline.offline:
                        offline.stale_listing(self.state.path(node))
                    elif node.ino not in self._stale_warned:
                        self._stale_warned.add(node.ino)
                        log.warning(
                            "server unavailable: serving the cached listing of %r",
                            self.state.path(node),
                        )
                except errors.NotFound:
                    self.vanished(node)
                    raise

    def _scope_of(self, node: Node) -> Node | None:
        """The nearest change scope at or above ``node`` (None without a change feed)."""
        if not self.state.backend.capabilities.changes:
            return None
        current: Node | None = node
        while current is not None:
            if current.entry.change_scope:
                return current
            if current.ino == ROOT_INODE:
                return None
            current = self.state.inodes.find(current.parent)
        return None

    async def _refresh_from_changes(self, node: Node) -> bool:
        """Refresh a stale listing through its scope's change feed; False: list it instead.

        A change feed reports new and changed entries, not deletions, so every directory is
        still listed in full once every ``FULL_LISTING_EVERY`` TTLs.
        """
        fresh = self.state.fresh
        scope = self._scope_of(node)
        if (
            scope is None
            or node.children is None
            or scope.feed is None
            or not fresh.fresh_for(node.full_listed_at, FULL_LISTING_EVERY)
        ):
            return False
        feed = scope.feed
        if not fresh.fresh(feed.checked):
            started = time.time()
            async for parent_id, entry in self.state.backend.changes(scope.entry, feed.synced):
                self._apply_change(parent_id, entry)
            feed.synced, feed.checked = started, fresh.now()
        if node.children is None or node.listed_at is None:
            return False  # the feed showed something new here: list it
        node.listed_at = feed.checked
        return True

    def _apply_change(self, parent_id: str, entry: Entry) -> None:
        inodes = self.state.inodes
        known = inodes.by_id(entry.id)
        holder = inodes.find(known.parent) if known is not None else None
        if (
            known is not None
            and known.entry.name == entry.name
            and (holder is not None and holder.entry.id == parent_id)
        ):
            if known.staged is None and known.pending_job is None:
                known.entry = entry  # new size/version: the next open gets the new content
                for listed in self.state.on_listed:
                    listed(holder)
            return
        # new, or renamed: its directory (if we hold a listing of it) must be listed again
        self.state.invalidate_by_id(parent_id)

    async def _list(self, node: Node, deep: bool = False) -> None:
        started = time.time()
        backend = self.state.backend
        if node.entry.change_scope and backend.capabilities.tree:
            await self._list_tree(node)
        elif deep and backend.capabilities.deep:
            await self._list_deep(node)
        else:
            self._apply_listing(node, [e async for e in backend.list_dir(node.entry)])
        if node.entry.change_scope and node.feed is None:
            node.feed = ChangeFeed(started, node.listed_at)

    async def _list_tree(self, scope: Node) -> None:
        """List a whole change scope with one tree listing: every directory below it at once."""
        groups: dict[str, list[Entry]] = {}
        async for parent_id, entry in self.state.backend.list_tree(scope.entry):
            groups.setdefault(parent_id, []).append(entry)
        pending, seen = [scope], {scope.ino}
        while pending:
            current = pending.pop()
            self._apply_listing(current, groups.get(current.entry.id, []))
            for ino in (current.children or {}).values():
                child = self.state.inodes.find(ino)
                if child is not None and child.is_dir and ino not in seen:
                    seen.add(ino)
                    pending.append(child)

    async def _list_deep(self, node: Node) -> None:
        """List ``node`` with its child directories' listings where the answers carried them:
        each becomes that directory's listing, fresh for the usual TTL and dropped by the usual
        invalidations (a child listed fresh already is left as it is)."""
        pairs = [pair async for pair in self.state.backend.list_dir_deep(node.entry)]
        self._apply_listing(node, [entry for entry, _ in pairs])
        # the dates of every file below in one transaction, not one per directory
        self.state.dates.note(e for _, children in pairs for e in children or ())
        inodes = self.state.inodes
        for entry, children in pairs:
            if children is None or not entry.is_dir:
                continue
            child = inodes.by_id(entry.id)
            if child is None or child.parent != node.ino or not child.is_dir:
                continue  # shadowed by a local name, or not placed here
            if not self.state.fresh.fresh(child.listed_at):
                self._apply_listing(child, list(children))

    def prefetch_siblings(self, node: Node) -> None:
        """A walking program opened ``node``: it opens the directories after it next (in the
        order its parent's listing is read out), so those of the next few that are not listed
        are listed in the background now, at most ``PREFETCH_SIBLINGS`` at a time — latency
        hidden, no request the walk would not make itself (unless it stops early)."""
        parent = self.state.inodes.find(node.parent)
        nursery = self.state._nursery
        if parent is None or parent.children is None or nursery is None or node.detached:
            return
        order = self._order.get(parent.ino)
        if order is None or order.listed_at != parent.listed_at:
            order = _Order(parent.listed_at, sorted(parent.children))
            self._order[parent.ino] = order
            if len(self._order) > 8:  # a walk goes down one path: keep the last few parents
                del self._order[next(iter(self._order))]
        at = order.index.get(node.name)
        if at is None:
            return
        # siblings looked at already (listed, or being listed) are not looked at again: where
        # the parent's deep listing brought them all, each opendir of a walk looked at the
        # next eight for nothing (a quarter of the vfs's own time per directory: 20 -> 15 us)
        start = max(at + 1, order.scanned)
        for i in range(start, min(at + 1 + 2 * PREFETCH_SIBLINGS, len(order.names))):
            if len(self._prefetching) >= PREFETCH_SIBLINGS:
                return
            order.scanned = i + 1
            ino = parent.children.get(order.names[i])
            sibling = self.state.inodes.find(ino) if ino is not None else None
            if (
                sibling is None
                or not sibling.is_dir
                or sibling.ino in self._prefetching
                or self.state.fresh.fresh(sibling.listed_at)
            ):
                continue
            self._prefetching.add(sibling.ino)
            nursery.start_soon(self._prefetch, sibling)

    async def _prefetch(self, node: Node) -> None:
        try:
            await self.ensure_fresh(node, deep=True)
        except errors.DocfsError as exc:
            # the walk gets the error itself when it comes there (and lists again)
            log.debug("listing %r ahead of a walk: %s", self.state.path(node), exc)
        finally:
            self._prefetching.discard(node.ino)

    def _apply_listing(self, node: Node, entries: list[Entry]) -> None:
        state, inodes = self.state, self.state.inodes
        named = assign_names(entries, ((e.name, e.id) for e in entries), inodes.naming_id)
        state.dates.note(entries)  # the files new here keep the date they show now
        children: dict[str, int] = {}
        for name, entry in named.items():
            if name in node.local_children:
                continue  # a local file of that name shadows the remote one until it is uploaded
            child = inodes.place(entry, node.ino, name)
            if child.staged is None:
                child.mtime_override, child.mode_override = state.attrs.get(entry.id, entry.version)
            children[name] = child.ino
        kept = set(children.values())
        for name, ino in (node.children or {}).items():
            old = inodes.find(ino)
            if ino in kept or old is None or old.parent != node.ino or old.name != name:
                continue
            # gone from the server (not moved elsewhere in our tree)
            if inodes.by_id(old.entry.id) is old:
                inodes.detach(old)
        node.children = children
        node.listed_at = node.full_listed_at = state.fresh.now()
        node.hidden = None
        self._stale_warned.discard(node.ino)
        for listed in state.on_listed:
            listed(node)

    def vanished(self, node: Node) -> None:
        """``node`` answered 404: drop it and make its parent re-list."""
        parent = self.state.inodes.find(node.parent)
        if parent is not None and node.ino != ROOT_INODE:
            parent.listed_at = None
            self.state.inodes.detach(node)

    # ---- the control channel's refresh -----------------------------------------------------

    def cached_node(self, path: str) -> Node | None:
        """The node of ``path`` (inside the mount) if the mount knows it; never asks the
        server."""
        inodes = self.state.inodes
        node = inodes.find(ROOT_INODE)
        for part in (p for p in path.split("/") if p):
            if node is None or not node.is_dir:
                return None
            ino = node.child_names().get(part)
            node = inodes.find(ino) if ino is not None else None
        return node

    def forget_below(self, path: str) -> int:
        """Forget the cached listings at and below ``path`` (of a file: its directory's);
        returns how many were dropped."""
        inodes = self.state.inodes
        node = self.cached_node(path)
        if node is None:
            return 0
        if not node.is_dir:
            parent = inodes.find(node.parent)
            if parent is None:
                return 0
            node = parent
        dropped = 0
        todo = [node]
        while todo:
            current = todo.pop()
            if current.listed_at is not None:
                current.listed_at = None
                dropped += 1
            for ino in current.child_names().values():
                child = inodes.find(ino)
                if child is not None and child.is_dir and child.parent == current.ino:
                    todo.append(child)
        return dropped
