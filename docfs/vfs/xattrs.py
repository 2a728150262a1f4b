"""Extended attributes: a repository's metadata as ``user.<namespace>.<key>``.

Reading shows every metadata key of an entry (completed with ``Backend.stat`` where a listing
carried only part of it) plus ``user.docfs.id`` and ``user.docfs.version``; writing and
removing go to ``Backend.set_meta``. Names outside ``user.`` answer ENOTSUP.
"""

from __future__ import annotations

from docfs import errors
from docfs.backends.base import Entry, Op
from docfs.vfs.checks import refuse, vanishes
from docfs.vfs.inodes import Node
from docfs.vfs.state import MountState


class Xattrs:
    """The extended attributes of a mount's nodes."""

    def __init__(self, state: MountState) -> None:
        self.state = state

    def _xattrs(self, node: Node) -> dict[str, str]:
        ns = self.state.backend.capabilities.meta_namespace
        values = {f"user.{ns}.{k}": v for k, v in node.entry.meta.items()}
        values["user.docfs.id"] = node.entry.object_id or node.entry.id
        if node.entry.version:
            values["user.docfs.version"] = node.entry.version
        # kept for offline use (``docfs pin``): the node or a folder above it is pinned
        pinned = self.state.pins.covers(self.state.path(node)) is not None
        values["user.docfs.pinned"] = "1" if pinned else "0"
        return values

    async def _complete_meta(self, node: Node) -> None:
        """Fetch the full metadata of an entry whose listing carried only part of it."""
        if node.entry.partial_meta and node.staged is None and not node.local:
            node.entry = await self.state.backend.stat(node.entry)

    async def getxattr(self, ino: int, name: str) -> bytes:
        if not name.startswith("user."):
            # ENOTSUP (not ENODATA) tells ls and cp to stop asking for security.selinux and
            # the POSIX ACL names on this filesystem: three requests per file fewer for ls -l
            raise errors.AttributeNotSupported(name)
        node = self.state.inodes.get(ino)
        if name.startswith(f"user.{self.state.backend.capabilities.meta_namespace}."):
            await self._complete_meta(node)
        value = self._xattrs(node).get(name)
        if value is None:
            raise errors.NoAttribute(name)
        return value.encode("utf-8")

    async def listxattr(self, ino: int) -> list[str]:
        node = self.state.inodes.get(ino)
        await self._complete_meta(node)
        return sorted(self._xattrs(node))

    async def setxattr(self, ino: int, name: str, value: bytes) -> None:
        node = self.state.inodes.get(ino)
        key = self._meta_key(name)
        refuse(self.state, node, Op.SET_META, "setxattr")
        text = value.decode("utf-8", errors="replace")
        with vanishes(self.state, node):
            self._meta_changed(node, await self.state.backend.set_meta(node.entry, key, text))

    async def removexattr(self, ino: int, name: str) -> None:
        node = self.state.inodes.get(ino)
        key = self._meta_key(name)
        if key not in node.entry.meta:
            raise errors.NoAttribute(name)
        refuse(self.state, node, Op.SET_META, "removexattr")
        with vanishes(self.state, node):
            self._meta_changed(node, await self.state.backend.set_meta(node.entry, key, None))

    def _meta_changed(self, node: Node, entry: Entry) -> None:
        renamed = entry.name != node.entry.name
        node.entry = entry
        if renamed:
            # the name comes from the metadata (e.g. an item's title): re-list the parent
            self.state.invalidate(node.parent)

    def _meta_key(self, name: str) -> str:
        prefix = f"user.{self.state.backend.capabilities.meta_namespace}."
        if not name.startswith(prefix) or len(name) == len(prefix):
            raise errors.AttributeNotSupported(
                f"extended attribute {name!r}: only {prefix}* is stored"
            )
        return name[len(prefix) :]
