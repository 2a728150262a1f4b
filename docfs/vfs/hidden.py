"""Hidden directories: read-only views made by docfs that ``readdir`` never shows.

Like ZFS's ``.zfs`` with ``snapdir=hidden``, a hidden directory (``.by-id``, ``.by-handle``,
``.search``, ``.versions``…) is in no listing, so ``ls``, ``find``, ``cp -r``, ``rsync -a`` and
file managers never walk into it, but a lookup of its name answers (``ls .by-id/SD123``).

A ``HiddenProvider`` in the registry (``docfs.vfs.filesystem.HIDDEN_PROVIDERS``: adding one
is a line there; tests pass their own to ``Filesystem(hidden=…)``) says which name it answers,
where (the mount's root only, or every directory) and — from the backend's capabilities, never
from the repository's name — whether this backend has the API for it: a backend without it
answers ENOENT at once with one log line saying why. What it opens is a ``VirtualDir``: it
resolves a child name on lookup to a repository object (``Entry``) or to another virtual
directory, and lists what it holds when it is itself listed.

Rules every hidden directory follows here, so a provider need not care:

- *read-only*: any write in a virtual directory, or to it, is EROFS before any request
  (``Hidden.refuse``); a provider whose children are snapshots (old versions) asks for them
  to be read-only too (``VirtualDir.frozen_children``);
- *cached like a listing*: a name resolved (or not found) is answered from memory for
  ``dir_cache_time``; a listing of the virtual directory likewise;
- *same inode*: an object the tree already knows is answered with the tree's own node, so
  ``.by-id/X`` and ``Community/Collection/X`` are one inode, one cache entry, one set of
  open handles. We chose this over a symlink to the tree path because a symlink needs the
  object's path, which costs a listing of every directory above it (and its unique name in
  each) — one resolve request could not answer it. The tree's node is found by id, or by
  ``Entry.object_id`` where the tree lists one object under per-place ids (a DSpace item in
  each of its collections), and keeps the tree's entry. An object the tree does not know yet
  is placed under the virtual directory (``InodeTable.place_found``); the first listing of the
  tree that shows it takes the node over, inode and all. One cost of this: the kernel keeps
  one name per directory inode and moves it between the paths as they are used, so a rename
  of a directory *through* a hidden path is ESTALE (the kernel's answer, before docfs is
  asked); in the tree it works.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import ClassVar

from docfs import errors
from docfs.backends.base import Backend, Entry, Kind
from docfs.vfs.inodes import ROOT_INODE, Node
from docfs.vfs.state import MountState

log = logging.getLogger("docfs.vfs")

#: ``Entry.id`` prefix of the entries docfs makes for virtual directories (no server has it)
VIRTUAL_ID = "docfs-virtual:"


class VirtualDir(ABC):
    """A directory docfs makes: resolves names on lookup, lists itself when listed."""

    #: its children are snapshots docfs serves (e.g. old versions), not the repository's
    #: live objects: writes to them are EROFS as well
    frozen_children: ClassVar[bool] = False

    @abstractmethod
    async def child(self, name: str) -> Entry | VirtualDir | None:
        """What ``name`` is in this directory (None: nothing — ENOENT)."""

    async def list(self) -> Sequence[tuple[str, Entry | VirtualDir]] | None:
        """Its whole content when it is listed; None (the default): the names looked up in
        it so far, still cached (an index like ``.by-id`` cannot be enumerated)."""
        return None


class HiddenProvider(ABC):
    """One hidden name in the registry: where it exists and what it opens."""

    #: the name looked up, e.g. ``.by-id``
    name: ClassVar[str]
    #: only in the mount's root (an index over the whole repository); False: in every
    #: directory (e.g. ``DIR/.versions``)
    root_only: ClassVar[bool] = True

    @abstractmethod
    def missing(self, backend: Backend, where: Entry) -> str | None:
        """Why ``backend`` has no such directory in ``where`` (None: it has)."""

    @abstractmethod
    def open(self, state: MountState, where: Node) -> VirtualDir:
        """The virtual directory ``name`` inside the directory ``where``."""


class Hidden:
    """The hidden directories of one mount (a part of ``Filesystem``)."""

    def __init__(self, state: MountState, providers: Sequence[HiddenProvider] = ()) -> None:
        self.state = state
        self.providers = {p.name: p for p in providers}
        self._dirs: dict[int, VirtualDir] = {}
        #: virtual directory inode → name → (inode or None for "not found", when resolved)
        self._looked: dict[int, dict[str, tuple[int | None, float]]] = {}
        #: inodes that are snapshots (children of a ``frozen_children`` directory)
        self._frozen: set[int] = set()
        self._explained: set[str] = set()

    def is_virtual(self, ino: int) -> bool:
        return ino in self._dirs

    # ---- lookup -----------------------------------------------------------------------------

    async def lookup(self, parent: Node, name: str) -> Node | None:
        """The node of ``name`` in ``parent`` if it is hidden or inside a hidden directory;
        None: an ordinary name (the caller looks in the listing). NotFound if it is hidden
        but this backend has no API for it."""
        vdir = self._dirs.get(parent.ino)
        if vdir is not None:
            return await self._child(parent, vdir, name)
        provider = self.providers.get(name)
        if provider is None or (provider.root_only and parent.ino != ROOT_INODE):
            return None
        if not parent.is_dir or parent.local:
            return None
        reason = provider.missing(self.state.backend, parent.entry)
        if reason is not None:
            self._explain(name, reason)
            raise errors.NotFound(f"{self.state.path(parent).rstrip('/')}/{name}: {reason}")
        return self._virtual_node(parent, name, lambda: provider.open(self.state, parent))

    def _explain(self, name: str, reason: str) -> None:
        """The one log line of a missing hidden directory: once per name at INFO (the errno,
        ENOENT, is an ordinary answer that ``fuse_ops`` logs only at DEBUG)."""
        level = logging.DEBUG if name in self._explained else logging.INFO
        self._explained.add(name)
        log.log(level, "%s: %s (ENOENT)", name, reason)

    def _virtual_node(
        self, parent: Node, name: str, make: Callable[[], VirtualDir] | VirtualDir
    ) -> Node:
        """The node of virtual directory ``name`` in ``parent``: the same one each time."""
        entry_id = f"{VIRTUAL_ID}{parent.ino}/{name}"
        node = self.state.inodes.by_id(entry_id)
        if node is not None and node.ino in self._dirs:
            return node
        vdir = make if isinstance(make, VirtualDir) else make()
        entry = Entry(
            id=entry_id,
            name=name,
            kind=Kind.DIR,
            size=None,
            mtime=self.state.mounted_at,
            version="",
            read_only=True,
        )
        node = self.state.inodes.place(entry, parent.ino, name)
        self._dirs[node.ino] = vdir
        self.state.virtual_dirs.add(node.ino)
        return node

    async def _child(self, parent: Node, vdir: VirtualDir, name: str) -> Node:
        looked = self._looked.setdefault(parent.ino, {})
        cached = looked.get(name)
        if cached is not None and self.state.fresh.fresh(cached[1]):
            ino = cached[0]
            if ino is None:
                raise errors.NotFound(f"{self.state.path(parent)}/{name}")
            node = self.state.inodes.find(ino)
            if node is not None and not node.detached:
                return node
        found = await vdir.child(name)
        if found is None:
            looked[name] = (None, self.state.fresh.now())
            raise errors.NotFound(f"{self.state.path(parent)}/{name}")
        node = self._adopt(parent, vdir, name, found)
        looked[name] = (node.ino, self.state.fresh.now())
        return node

    def _adopt(self, parent: Node, vdir: VirtualDir, name: str, found: Entry | VirtualDir) -> Node:
        if isinstance(found, VirtualDir):
            return self._virtual_node(parent, name, found)
        inodes = self.state.inodes
        known = inodes.by_id(found.id)
        if (known is None or known.detached) and found.object_id is not None:
            # listed elsewhere under a per-place id (an item in the collection it is listed
            # in): the same server object all the same
            known = inodes.by_object(found.object_id)
        if known is not None and not known.detached:
            # the object itself: the tree's node (same inode). Its entry stays the tree's: a
            # listing knows the context (the collection it is in, the project's rights) that
            # a lookup by id may not, and the tree's listing keeps it fresh
            node = known
        else:
            node = inodes.place_found(found, parent.ino, name)
        if vdir.frozen_children:
            self._frozen.add(node.ino)
        return node

    # ---- listing ---------------------------------------------------------------------------

    async def list(self, node: Node) -> dict[str, int]:
        """The children of virtual directory ``node`` (cached for the TTL)."""
        vdir = self._dirs[node.ino]
        if node.children is not None and self.state.fresh.fresh(node.listed_at):
            return node.child_names()
        listed = await vdir.list()
        now = self.state.fresh.now()
        children: dict[str, int] = {}
        if listed is None:
            for name, (ino, at) in self._looked.get(node.ino, {}).items():
                if ino is not None and self.state.fresh.fresh(at) and self.state.inodes.find(ino):
                    children[name] = ino
        else:
            looked = self._looked.setdefault(node.ino, {})
            for name, found in listed:
                child = self._adopt(node, vdir, name, found)
                children[name] = child.ino
                looked[name] = (child.ino, now)
        node.children, node.listed_at = children, now
        return node.child_names()

    # ---- writes ----------------------------------------------------------------------------

    def refuse(self, what: str, *inodes: int) -> None:
        """EROFS, before any request, if any of ``inodes`` (the directories written in, or
        the node written) is a virtual directory or a snapshot in one."""
        for ino in inodes:
            if ino in self._dirs or ino in self._frozen:
                node = self.state.inodes.find(ino)
                path = self.state.path(node) if node is not None else f"inode {ino}"
                raise errors.ReadOnly(f"{what} {path}: hidden directories are read-only")
