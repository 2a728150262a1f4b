"""The hidden ``.by-id``, ``.by-handle`` and ``.by-doi`` directories (issue 20, item 1).

``MOUNT/.by-id/<id>`` is the object whose repository id is ``<id>``; ``MOUNT/.by-handle/
<prefix>/<suffix>`` the one with that handle; ``MOUNT/.by-doi/<prefix>/<suffix>`` the one with
that DOI. Each name costs one ``Backend.resolve`` (its result, found or not, is cached for the
listing TTL); the directories between (``.by-handle/<prefix>``) cost nothing. They exist where
the backend's ``Capabilities.resolves`` has the kind; elsewhere a lookup is ENOENT with one log
line. Listed, they show what was looked up in them so far (an index cannot be enumerated).

A DOI or handle whose suffix itself holds a ``/`` is not reachable this way (one directory
level per ``/`` would be needed, and a DOI does not say how many it has).
"""

from __future__ import annotations

from docfs.backends.base import Backend, Entry, IdKind
from docfs.vfs.hidden import HiddenProvider, VirtualDir
from docfs.vfs.inodes import Node
from docfs.vfs.state import MountState


class KeyDir(VirtualDir):
    """One level of an identifier: the last level resolves, the others only collect parts."""

    def __init__(self, backend: Backend, kind: str, levels: int, parts: tuple[str, ...] = ()):
        self.backend, self.kind, self.levels, self.parts = backend, kind, levels, parts

    async def child(self, name: str) -> Entry | VirtualDir | None:
        parts = (*self.parts, name)
        if len(parts) < self.levels:
            return KeyDir(self.backend, self.kind, self.levels, parts)
        return await self.backend.resolve(self.kind, "/".join(parts))


class ByKind(HiddenProvider):
    """``.by-<kind>`` in the mount's root, where the backend resolves ``kind``."""

    kind: str
    #: directory levels of a key: 1 for an id, 2 for ``prefix/suffix``
    levels: int = 1

    def missing(self, backend: Backend, where: Entry) -> str | None:
        if self.kind in backend.capabilities.resolves:
            return None
        return f"{backend.name} has no lookup by {self.kind} (see README, 'Finding things')"

    def open(self, state: MountState, where: Node) -> VirtualDir:
        return KeyDir(state.backend, self.kind, self.levels)


class ById(ByKind):
    name = ".by-id"
    kind = IdKind.ID


class ByHandle(ByKind):
    name = ".by-handle"
    kind = IdKind.HANDLE
    levels = 2


class ByDoi(ByKind):
    name = ".by-doi"
    kind = IdKind.DOI
    levels = 2


#: the providers of this module, for ``filesystem.HIDDEN_PROVIDERS``
ID_PROVIDERS: tuple[HiddenProvider, ...] = (ById(), ByHandle(), ByDoi())
