"""The inode table: one stable inode per remote object for the life of a mount.

A ``Node`` holds the latest ``Entry`` of its object, where it sits (parent inode and local
name), the kernel's lookup count, and for directories the last listing. Inode numbers are
never reused while the mount lives, so a kernel that still remembers an old inode can never
reach a different object through it.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from docfs.backends.base import Entry
from docfs.errors import NotFound

if TYPE_CHECKING:
    from docfs.vfs.staging import Staged

ROOT_INODE = 1  # what the kernel calls the mount point (pyfuse3.ROOT_INODE)


@dataclass(slots=True)
class ChangeFeed:
    """Where a change scope's feed was last read: ``synced`` is the wall time changes are
    asked for since, ``checked`` when (monotonic) that was."""

    synced: float
    checked: float | None


@dataclass(slots=True)
class Node:
    ino: int
    entry: Entry
    parent: int
    name: str
    lookups: int = 0
    #: local name → inode, from the last listing (None: never listed)
    children: dict[str, int] | None = None
    listed_at: float | None = None
    #: names that exist only here (staged new files, local-only names): name → inode
    local_children: dict[str, int] = field(default_factory=dict)
    #: children unlinked here that only go with this directory (Op.REMOVE_WITH_DIR): hidden
    #: until the directory is removed, or until the next listing shows they are still there
    hidden: set[str] | None = None
    #: open file handles on this node; an open node is never dropped
    opened: int = 0
    #: version last handed to the kernel on open (for keep_cache)
    kernel_version: str | None = None
    #: the object is gone from the server (or was removed here)
    detached: bool = False
    #: the local copy while the file is written (reads see it too)
    staged: Staged | None = None
    #: not on the server (yet): a new file before its upload, or a local-only name
    local: bool = False
    #: never uploaded (editor swap files, desktop droppings, rsync temp names)
    local_only: bool = False
    #: mtime (integer nanoseconds: a float loses the last digits, and ``rsync
    #: --modify-window=-1`` compares them all) and mode set by utimens/chmod (the repository
    #: has no place for them)
    mtime_override: int | None = None
    mode_override: int | None = None
    #: the write-back job that will upload this node's content
    pending_job: str | None = None
    #: change scopes (Entry.change_scope): where their change feed stands (None: not read yet)
    feed: ChangeFeed | None = None
    #: last full listing (monotonic); change-feed refreshes do not count
    full_listed_at: float | None = None

    @property
    def is_dir(self) -> bool:
        return self.entry.is_dir

    def child(self, name: str) -> int | None:
        """The inode ``child_names()`` gives ``name``, without copying the listing (a lookup
        in a directory of N entries is then O(1), and a walk of it O(N), not O(N²))."""
        local = self.local_children.get(name)
        if local is not None:
            return local
        if self.hidden and name in self.hidden:
            return None
        return (self.children or {}).get(name)

    def child_names(self) -> dict[str, int]:
        merged = dict(self.children or {})
        for name in self.hidden or ():
            merged.pop(name, None)
        merged.update(self.local_children)
        return merged


class InodeTable:
    def __init__(self, root: Entry) -> None:
        self._next = itertools.count(ROOT_INODE + 1)
        self._nodes: dict[int, Node] = {}
        self._by_id: dict[str, int] = {}
        #: new id → the id name suffixes are made from (see ``rekey``)
        self._naming: dict[str, str] = {}
        #: object id → inode of a node found through a hidden directory before any listing
        #: showed it (``place_found``): the first listing that shows it takes the node over
        self._found: dict[str, int] = {}
        node = Node(ROOT_INODE, root, ROOT_INODE, "")
        node.lookups = 1  # the kernel holds the root for the whole mount
        self._nodes[ROOT_INODE] = node
        self._by_id[root.id] = ROOT_INODE

    def __len__(self) -> int:
        return len(self._nodes)

    def get(self, ino: int) -> Node:
        try:
            return self._nodes[ino]
        except KeyError:
            raise NotFound(f"inode {ino} is not known") from None

    def find(self, ino: int) -> Node | None:
        return self._nodes.get(ino)

    def by_id(self, entry_id: str) -> Node | None:
        ino = self._by_id.get(entry_id)
        return None if ino is None else self._nodes.get(ino)

    def by_object(self, object_id: str) -> Node | None:
        """A live node of the server object ``object_id`` (``Entry.object_id``: one object
        may be listed in several places). A scan: only for the rare lookups by identifier."""
        for node in self._nodes.values():
            if node.entry.object_id == object_id and not node.detached:
                return node
        return None

    def place(self, entry: Entry, parent: int, name: str) -> Node:
        """The node of ``entry`` (same inode as before if the object is known), updated."""
        ino = self._by_id.get(entry.id)
        node = self._nodes.get(ino) if ino is not None else None
        if node is None:
            node = self._take_found(entry)
        if node is None:
            node = Node(next(self._next), entry, parent, name)
            self._nodes[node.ino] = node
            self._by_id[entry.id] = node.ino
        else:
            node.entry, node.parent, node.name, node.detached = entry, parent, name, False
        return node

    def place_found(self, entry: Entry, parent: int, name: str) -> Node:
        """``place`` for an object found by identifier (``docfs.vfs.hidden``) that no listing
        has shown: a listing that shows it later, even under a per-place id (an item in the
        collection it is listed in), keeps its inode."""
        node = self.place(entry, parent, name)
        self._found[entry.object_id or entry.id] = node.ino
        return node

    def _take_found(self, entry: Entry) -> Node | None:
        ino = self._found.pop(entry.object_id or entry.id, None)
        node = self._nodes.get(ino) if ino is not None else None
        if node is None or node.detached:
            return None
        if self._by_id.get(node.entry.id) == node.ino:
            del self._by_id[node.entry.id]
        self._by_id[entry.id] = node.ino
        return node

    def rekey(self, node: Node, entry: Entry) -> None:
        """Give ``node`` a new entry whose id may differ (a local file got its remote id)."""
        if self._by_id.get(node.entry.id) == node.ino:
            del self._by_id[node.entry.id]
        if not node.local and entry.id != node.entry.id:
            # a remote object replaced by a new one (an overwrite in DSpace 7): its name
            # suffix, if it needs one, stays the one made from the first id
            self._naming[entry.id] = self.naming_id(node.entry.id)
        node.entry, node.local, node.detached = entry, False, False
        self._by_id[entry.id] = node.ino

    def naming_id(self, entry_id: str) -> str:
        """The id a name suffix is made from (see ``rekey``)."""
        return self._naming.get(entry_id, entry_id)

    def detach(self, node: Node) -> None:
        """The object is gone: forget its id; drop the node once the kernel forgets it too."""
        node.detached = True
        if self._by_id.get(node.entry.id) == node.ino:
            del self._by_id[node.entry.id]
        self._maybe_drop(node)

    def add_local(self, entry: Entry, parent: int, name: str) -> Node:
        """A node for something that exists only here (no remote id yet)."""
        node = Node(next(self._next), entry, parent, name, local=True)
        self._nodes[node.ino] = node
        return node

    def remember(self, ino: int, count: int = 1) -> None:
        self.get(ino).lookups += count

    def forget(self, ino: int, count: int) -> None:
        node = self._nodes.get(ino)
        if node is None:
            return
        node.lookups = max(0, node.lookups - count)
        self._maybe_drop(node)

    def _maybe_drop(self, node: Node) -> None:
        if node.ino != ROOT_INODE and node.detached and node.lookups == 0 and node.opened == 0:
            self._nodes.pop(node.ino, None)

    def release(self, node: Node) -> None:
        """A file handle on ``node`` was closed."""
        node.opened -= 1
        self._maybe_drop(node)
