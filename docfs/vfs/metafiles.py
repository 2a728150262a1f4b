"""Metadata files (issue 21): an object's metadata as a JSON file any editor can change.

Every object with metadata answers a lookup of ``DIR/.metadata.json`` (a directory's own) or
``DIR/.metadata/NAME.json`` (the file ``NAME``'s): a JSON object whose keys are those of the
extended attributes, each value a list of strings where the repository allows several
(``Backend.meta_separator``), else a string. They are *hidden names*: answered by lookup, never
listed, so ``cp -r``/``rsync -a`` out of the mount do not pick them up — unless the mount runs
with ``--metadata-files`` (``Options.metadata_files``), which lists them too.

Writing one (in place, or a temporary file renamed onto it, as ``sed -i``, editors and rsync
do) diffs what was written against what was read and sends only the keys the writer changed,
in one ``Backend.update_meta``. Before that the server's current metadata is read: a key the
writer changed that also changed on the server since it was read is a conflict (EBUSY, one log
line, nothing sent); a key that changed only on the server keeps the server's value. Nothing
is sent when nothing changed. A write that fails (EINVAL, EPERM, EBUSY…) keeps the written
bytes in lost+found (in place) or in the temporary file (rename).

The nodes are ordinary inodes (``InodeTable.add_local``) marked ``local_only`` and kept out of
every listing's ``children``; ``Filesystem`` hands each operation on them to this module
first. The mtime shown is the owner's, or what ``utimens`` set for this exact content
(remembered per content digest in the attribute store, so ``rsync -a`` finds nothing to do
the second time).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
from dataclasses import dataclass
from typing import Any

import trio

from docfs import errors
from docfs.backends.base import Entry, Kind, Op
from docfs.vfs.checks import vanishes
from docfs.vfs.inodes import Node
from docfs.vfs.listings import Listings
from docfs.vfs.staging import Staged
from docfs.vfs.state import Attr, MountState

log = logging.getLogger("docfs.vfs.metafiles")

META_FILE = ".metadata.json"
META_DIR = ".metadata"
SUFFIX = ".json"

#: metadata as compared: key → values (a single value is a list of one)
Meta = dict[str, list[str]]


@dataclass(slots=True)
class _MetaNode:
    #: the object whose metadata the file is; for a ``.metadata`` directory, its directory
    owner: int
    is_dir: bool


@dataclass(slots=True)
class _Open:
    node: Node
    owner: int
    #: the bytes a reader sees: rendered once at open, so every read of it agrees
    content: bytes
    #: a writer's copy (None: a reader)
    staged: Staged | None = None
    dirty: bool = False
    #: a reader read from it: its content is the base of the next write
    seen: bool = False


class MetaFiles:
    """The metadata files of a mount (see the module docstring)."""

    def __init__(self, state: MountState, listings: Listings) -> None:
        self.state = state
        self.listings = listings
        self._nodes: dict[int, _MetaNode] = {}
        #: owner inode → its metadata file's inode; directory inode → its ``.metadata``
        self._file_of: dict[int, int] = {}
        self._dir_of: dict[int, int] = {}
        #: owner inode → the metadata as last read through its file (the 3-way base)
        self._base: dict[int, Meta] = {}
        self._handles: dict[int, _Open] = {}
        self._locks: dict[int, trio.Lock] = {}

    # ---- which nodes are ours --------------------------------------------------------------

    def owns(self, ino: int) -> bool:
        return ino in self._nodes

    def owns_handle(self, fh: int) -> bool:
        return fh in self._handles

    def _has_meta(self, node: Node) -> bool:
        if node.local or node.local_only or node.detached or node.ino in self._nodes:
            return False
        return bool(node.entry.meta) or node.entry.allows(Op.SET_META)

    def _meta_dir(self, node: Node) -> _MetaNode | None:
        meta = self._nodes.get(node.ino)
        return meta if meta is not None and meta.is_dir else None

    async def find(self, parent: Node, name: str) -> Node | None:
        """The metadata node ``name`` in ``parent``; None: not a metadata name (ask the
        listing). Raises NotFound for a metadata name with nothing behind it."""
        meta_dir = self._meta_dir(parent)
        if meta_dir is not None:
            if name in parent.local_children:
                return None  # a temporary file written here (rsync, sed)
            holder = self.state.inodes.get(meta_dir.owner)
            if not name.endswith(SUFFIX):
                raise errors.NotFound(name)
            ino = (await self.listings.ensure_listed(holder)).get(name[: -len(SUFFIX)])
            owner = self.state.inodes.find(ino) if ino is not None else None
            if owner is None or owner.is_dir or not self._has_meta(owner):
                raise errors.NotFound(name)
            return await self._file_node(owner, parent.ino, name)
        if name not in (META_FILE, META_DIR) or parent.ino in self._nodes:
            return None
        if not parent.is_dir or parent.local or parent.local_only:
            return None
        if name == META_FILE:
            await self._fresh(parent)
            if not self._has_meta(parent):
                raise errors.NotFound(name)
            return await self._file_node(parent, parent.ino, name)
        return self._dir_node(parent)

    async def _file_node(self, owner: Node, parent_ino: int, name: str) -> Node:
        ino = self._file_of.get(owner.ino)
        node = self.state.inodes.find(ino) if ino is not None else None
        if node is None or node.detached:
            entry = Entry(
                id=f"metadata-file:{owner.ino}",
                name=name,
                kind=Kind.FILE,
                size=0,
                mtime=None,
                version="",
            )
            node = self.state.inodes.add_local(entry, parent_ino, name)
            node.local_only = True  # never uploaded, whatever happens to it
            self._nodes[node.ino] = _MetaNode(owner.ino, False)
            self._file_of[owner.ino] = node.ino
        await self._refresh(node)
        return node

    def _dir_node(self, holder: Node) -> Node:
        ino = self._dir_of.get(holder.ino)
        node = self.state.inodes.find(ino) if ino is not None else None
        if node is None or node.detached:
            entry = Entry(
                id=f"metadata-dir:{holder.ino}",
                name=META_DIR,
                kind=Kind.DIR,
                size=None,
                mtime=holder.entry.mtime,
                version="",
            )
            node = self.state.inodes.add_local(entry, holder.ino, META_DIR)
            # temporary files written here (rsync's, sed's) stay local: the generic write
            # path keeps them in ``local_children``, and a rename onto a metadata file here
            # comes to ``rename_onto``
            node.local_only = True
            node.children, node.listed_at = {}, float("inf")
            self._nodes[node.ino] = _MetaNode(holder.ino, True)
            self._dir_of[holder.ino] = node.ino
        node.entry = dataclasses.replace(node.entry, mtime=self.state.attr(holder).mtime)
        return node

    # ---- listings ----------------------------------------------------------------------------

    async def listed(self, directory: Node, children: dict[str, int]) -> dict[str, int]:
        """The metadata names to list in ``directory`` (with ``--metadata-files``)."""
        if not self.state.options.metadata_files or directory.ino in self._nodes:
            return {}
        if directory.local or directory.local_only:
            return {}
        shown: dict[str, int] = {}
        if self._has_meta(directory):
            shown[META_FILE] = (await self._file_node(directory, directory.ino, META_FILE)).ino
        if any(self._is_meta_owner(ino) for ino in children.values()):
            shown[META_DIR] = self._dir_node(directory).ino
        return shown

    def _is_meta_owner(self, ino: int) -> bool:
        node = self.state.inodes.find(ino)
        return node is not None and not node.is_dir and self._has_meta(node)

    async def list_dir(self, node: Node) -> dict[str, int]:
        """The children of a ``.metadata`` directory: one ``NAME.json`` per file with
        metadata, and the temporary files being written there."""
        meta = self._nodes[node.ino]
        holder = self.state.inodes.get(meta.owner)
        shown: dict[str, int] = {}
        for name, ino in (await self.listings.ensure_listed(holder)).items():
            if self._is_meta_owner(ino):
                owner = self.state.inodes.get(ino)
                shown[name + SUFFIX] = (await self._file_node(owner, node.ino, name + SUFFIX)).ino
        shown.update(node.local_children)
        return shown

    # ---- content -----------------------------------------------------------------------------

    def _values(self, entry: Entry) -> Meta:
        out: Meta = {}
        for key, text in entry.meta.items():
            sep = self.state.backend.meta_separator(entry, key)
            values = text.split(sep) if sep else [text]
            if sep and text == "":
                values = []
            out[key] = values
        return {k: v for k, v in out.items() if v}

    def _render(self, owner: Node) -> bytes:
        shown: dict[str, Any] = {}
        for key, values in self._values(owner.entry).items():
            multiple = self.state.backend.meta_separator(owner.entry, key) is not None
            shown[key] = values if multiple else values[0]
        text = json.dumps(shown, indent=2, ensure_ascii=False, sort_keys=True)
        return (text + "\n").encode("utf-8")

    def _attr_key(self, owner: Node) -> str:
        return f"metadata:{owner.entry.id}"

    async def _fresh(self, owner: Node) -> None:
        """``owner``'s entry as fresh as its listing (complete where a listing was not)."""
        await self.listings.refresh_parent(owner)
        if owner.entry.partial_meta and not owner.local:
            with vanishes(self.state, owner):
                owner.entry = await self.state.backend.stat(owner.entry)

    async def _refresh(self, node: Node) -> bytes:
        """Render ``node``'s content and bring its size, mode and date up to date."""
        owner = self.state.inodes.get(self._nodes[node.ino].owner)
        content = self._render(owner)
        writable = owner.entry.allows(Op.SET_META)
        node.entry = dataclasses.replace(
            node.entry,
            size=len(content),
            mtime=self.state.attr(owner).mtime,
            read_only=not writable,
        )
        digest = hashlib.sha256(content).hexdigest()
        node.mtime_override, node.mode_override = self.state.attrs.get(
            self._attr_key(owner), digest
        )
        return content

    async def getattr(self, node: Node) -> Attr:
        meta = self._nodes[node.ino]
        owner = self.state.inodes.get(meta.owner)
        if meta.is_dir:
            await self.listings.refresh_parent(owner)
            self._dir_node(owner)
        else:
            await self._fresh(owner)
            await self._refresh(node)
        return self.state.attr(node)

    # ---- open, read, write, close ------------------------------------------------------------

    async def open(self, node: Node, write: bool, truncate: bool) -> int:
        meta = self._nodes[node.ino]
        if meta.is_dir:
            raise errors.IsADirectory(self.state.path(node))
        owner = self.state.inodes.get(meta.owner)
        await self._fresh(owner)
        content = await self._refresh(node)
        handle = _Open(node, owner.ino, content)
        if write or truncate:
            self._check_writable(owner, node)
            handle.staged = self.state.staging.new()
            if truncate:
                handle.dirty = True
            else:
                os.pwrite(handle.staged.fd, content, 0)
        node.opened += 1
        fh = self.state.new_handle()
        self._handles[fh] = handle
        return fh

    def _check_writable(self, owner: Node, node: Node) -> None:
        path = self.state.path(node)
        if self.state.options.read_only:
            raise errors.ReadOnly(f"write {path}: the mount is read-only")
        if not owner.entry.allows(Op.SET_META):
            raise errors.NotSupported(
                f"write {path}: {self.state.backend.name} has no writable metadata here"
            )

    def read(self, fh: int, offset: int, size: int) -> bytes:
        handle = self._handles[fh]
        if handle.staged is not None:
            return os.pread(handle.staged.fd, size, offset)
        if not handle.seen:
            # what a reader saw is what a later write is compared with (the 3-way base)
            handle.seen = True
            self._base[handle.owner] = _parse(handle.content, self.state.path(handle.node))
        return handle.content[offset : offset + size]

    def write(self, fh: int, offset: int, data: bytes) -> int:
        handle = self._handles[fh]
        if handle.staged is None:
            raise errors.BadHandle("file is not open for writing")
        written = os.pwrite(handle.staged.fd, data, offset)
        handle.dirty = True
        handle.node.mtime_override = None
        return written

    async def flush(self, fh: int) -> None:
        """close(): a changed file is applied now, and close() returns the result."""
        handle = self._handles[fh]
        staged = handle.staged
        if staged is None or not handle.dirty:
            return
        handle.dirty = False
        owner = self.state.inodes.get(handle.owner)
        path = self.state.path(handle.node)
        with open(staged.path, "rb") as src:
            raw = src.read()
        try:
            await self.apply(owner, raw, path)
        except errors.DocfsError as exc:
            kept = self.state.lost_found.keep(staged, path, str(exc))
            log.error("%s was not applied: %s; what was written is kept in %s", path, exc, kept)
            raise
        await self._refresh(handle.node)

    async def release(self, fh: int) -> None:
        handle = self._handles.pop(fh, None)
        if handle is None:
            return
        if handle.staged is not None:
            self.state.staging.discard(handle.staged)
        self.state.inodes.release(handle.node)

    def truncate(self, fh: int | None, node: Node, size: int) -> None:
        for candidate, handle in self._handles.items():
            if handle.node is node and handle.staged is not None and fh in (None, candidate):
                os.ftruncate(handle.staged.fd, size)
                handle.dirty = True
                return
        raise errors.InvalidArgument(
            f"truncate {self.state.path(node)}: write a metadata file (its keys) instead"
        )

    def set_times(self, node: Node, mtime_ns: int | None, mode: int | None) -> None:
        """utimens/chmod: kept for this content (``rsync -a`` and ``cp -p`` set them)."""
        meta = self._nodes[node.ino]
        if mtime_ns is not None:
            node.mtime_override = mtime_ns
        if mode is not None:
            node.mode_override = mode & 0o7777
        if meta.is_dir:
            return
        owner = self.state.inodes.get(meta.owner)
        digest = hashlib.sha256(self._render(owner)).hexdigest()
        self.state.attrs.put(self._attr_key(owner), digest, node.mtime_override, node.mode_override)

    # ---- rename onto a metadata file ---------------------------------------------------------

    async def rename_onto(self, src: Node, target: Node) -> None:
        """``rename(src, target)``: the temporary file ``src`` (sed -i, an editor, rsync) is
        the new content of the metadata file ``target``. ``src``'s inode then stands for the
        metadata file: the kernel already points the name at it."""
        meta = self._nodes[target.ino]
        owner = self.state.inodes.get(meta.owner)
        if src.ino in self._nodes:
            raise errors.NotSupported("rename: metadata files cannot be renamed")
        if not src.local or src.staged is None:
            # a file of the repository: mv copies it into the metadata file instead
            raise errors.CrossDevice("rename onto a metadata file from a repository file")
        self._check_writable(owner, target)
        path = self.state.path(target)
        with open(src.staged.path, "rb") as data:
            raw = data.read()
        await self.apply(owner, raw, path)
        mtime_ns, mode = src.mtime_override, src.mode_override
        # the source's inode becomes the metadata file (the kernel moved the name to it)
        holder = self.state.inodes.find(src.parent)
        if holder is not None and holder.local_children.get(src.name) == src.ino:
            del holder.local_children[src.name]
        if src.opened == 0:
            self.state.staging.discard(src.staged)
            src.staged = None
        src.local_only = True
        src.parent, src.name = target.parent, target.name
        src.entry = dataclasses.replace(target.entry, id=f"metadata-file:{owner.ino}:{src.ino}")
        self._nodes[src.ino] = _MetaNode(owner.ino, False)
        self._file_of[owner.ino] = src.ino
        self.state.inodes.detach(target)
        await self._refresh(src)
        if mtime_ns is not None or mode is not None:
            # rsync sets the times on its temporary file before the rename
            self.set_times(src, mtime_ns, mode)

    # ---- applying a written file -------------------------------------------------------------

    async def apply(self, owner: Node, raw: bytes, path: str) -> None:
        """Send what the writer changed in ``raw`` (a whole metadata file) to the server."""
        written = _parse(raw, path)
        for key, values in written.items():
            self._check_value(owner.entry, key, values, path)
        lock = self._locks.setdefault(owner.ino, trio.Lock())
        async with lock:
            base = self._base.get(owner.ino)
            if base is None:
                base = self._values(owner.entry)  # nothing read: what the mount showed
            if written == base:
                return  # nothing changed: not even a look at the server
            mine = {k for k in base.keys() | written.keys() if base.get(k) != written.get(k)}
            with vanishes(self.state, owner):
                now_entry = await self.state.backend.stat(owner.entry)
            now = self._values(now_entry)
            changes: dict[str, list[str] | None] = {}
            conflicts: list[str] = []
            for key in sorted(mine):
                want = written.get(key)
                if now.get(key) == want:
                    continue  # the server has it already
                if now.get(key) != base.get(key):
                    conflicts.append(key)
                else:
                    changes[key] = want
            self._changed(owner, now_entry)
            if conflicts:
                self._base[owner.ino] = now
                raise errors.Busy(
                    f"{path}: {', '.join(conflicts)} changed on the server since the file was "
                    "read, and here too; nothing was sent: read the file again and redo the "
                    "change"
                )
            if not changes:
                self._base[owner.ino] = now
                return
            log.info("%s: changing %s", path, ", ".join(sorted(changes)))
            with vanishes(self.state, owner):
                entry = await self.state.backend.update_meta(now_entry, changes)
            self._changed(owner, entry)
            self._base[owner.ino] = self._values(entry)

    def _check_value(self, entry: Entry, key: str, values: list[str], path: str) -> None:
        sep = self.state.backend.meta_separator(entry, key)
        if sep is None and len(values) > 1:
            raise errors.InvalidArgument(f"{path}: {key} holds one value, not a list")
        if sep is not None and any(sep in v for v in values):
            raise errors.InvalidArgument(f"{path}: a value of {key} may not contain {sep!r}")

    def _changed(self, owner: Node, entry: Entry) -> None:
        renamed = entry.name != owner.entry.name
        owner.entry = entry
        if renamed:
            # the name comes from the metadata (an item's title): re-list the parent
            self.state.invalidate(owner.parent)

    # ---- the rest of the namespace -----------------------------------------------------------

    def check_new(self, parent: Node, name: str, what: str) -> None:
        """Refuse to create a metadata name where none answers (an object without metadata),
        and directories inside ``.metadata``: they would become repository files."""
        inside = self._meta_dir(parent) is not None
        if (inside and what == "mkdir") or (not inside and name in (META_FILE, META_DIR)):
            raise errors.NotSupported(
                f"{what} {self.state.path(parent).rstrip('/')}/{name}: a name docfs keeps for "
                "metadata files"
            )

    def unlink(self, node: Node) -> None:
        """``rm`` of a metadata file removes nothing (``rm -r`` of its directory must not fail
        on it): the file answers again at the next lookup."""
        log.debug("unlink %s: a metadata file goes only with its object", self.state.path(node))


def _parse(raw: bytes, path: str) -> Meta:
    """A metadata file's JSON as key → values; EINVAL (with the reason) if it is not one."""
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise errors.InvalidArgument(f"{path}: not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise errors.InvalidArgument(f"{path}: expected a JSON object of key → values")
    out: Meta = {}
    for key, value in data.items():
        if value is None:
            continue
        if isinstance(value, str):
            out[key] = [value]
        elif isinstance(value, list) and all(isinstance(v, str) for v in value):
            if value:
                out[key] = list(value)
        else:
            raise errors.InvalidArgument(
                f"{path}: the value of {key!r} must be a string or a list of strings"
            )
    return out
