"""Extended attributes: a repository's metadata as ``user.<namespace>.<key>``.

Reading shows every metadata key of an entry (completed with ``Backend.stat`` where a listing
carried only part of it) plus ``user.docfs.id``, ``user.docfs.version``, the read-only
``user.docfs.url`` (the object's page in the repository's web interface, ``Backend.web_url``)
and ``user.docfs.checksum`` (``md5:<hex>``, ``sha256:<hex>``) where the repository gives a
digest of the stored bytes (``Entry.checksum``, from the listing: no request); writing and
removing go to ``Backend.set_meta``. Names outside ``user.`` answer ENOTSUP.
"""

from __future__ import annotations

from docfs import errors
from docfs.backends.base import Entry, Op
from docfs.vfs.checks import refuse, vanishes
from docfs.vfs.checksums import expected
from docfs.vfs.inodes import Node
from docfs.vfs.state import MountState

#: the object's page in the repository's web interface: read-only
URL_XATTR = "user.docfs.url"

#: the repository's digest of a file's stored bytes, ``<algorithm>:<hex>`` (``docfs verify``)
CHECKSUM_XATTR = "user.docfs.checksum"


def _checksum(node: Node) -> str | None:
    """``md5:<hex>`` for a file whose repository gave a checksum, or None.

    Only while the mount's bytes are the server's: a file written here and not uploaded yet
    (staged and changed, queued for write-back, new) has no digest the server vouches for, and
    showing the old version's would make a changed file look unchanged or the reverse.
    """
    if node.is_dir or node.local or node.pending_job is not None:
        return None
    if node.staged is not None and node.staged.dirty:
        return None
    checksum = expected(node.entry)
    return None if checksum is None else f"{checksum.algorithm}:{checksum.value}"


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
        checksum = _checksum(node)
        if checksum is not None:
            values[CHECKSUM_XATTR] = checksum
        if not node.local and node.ino not in self.state.virtual_dirs:
            url = self.state.backend.web_url(node.entry)
            if url:
                values[URL_XATTR] = url
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
        self._not_url(name)
        key = self._meta_key(name)
        refuse(self.state, node, Op.SET_META, "setxattr")
        text = value.decode("utf-8", errors="replace")
        with vanishes(self.state, node):
            self._meta_changed(node, await self.state.backend.set_meta(node.entry, key, text))

    async def removexattr(self, ino: int, name: str) -> None:
        node = self.state.inodes.get(ino)
        self._not_url(name)
        key = self._meta_key(name)
        if key not in node.entry.meta:
            raise errors.NoAttribute(name)
        refuse(self.state, node, Op.SET_META, "removexattr")
        with vanishes(self.state, node):
            self._meta_changed(node, await self.state.backend.set_meta(node.entry, key, None))

    def _not_url(self, name: str) -> None:
        # ENOTSUP like the other user.docfs.* names: ``cp -a``/``rsync -X`` of a file copied
        # out of a mount back into one then skips it quietly instead of failing on it
        if name == URL_XATTR:
            raise errors.AttributeNotSupported(
                f"{name}: read-only (the object's page in the repository's web interface)"
            )

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
