"""What the hidden ``.search/QUERY/`` and ``.versions/FILE/`` directories hold (issue 20).

``Finding`` turns a backend's ``search`` and ``versions`` answers into the listing of one
such directory: local name → read-only ``Entry``. A search result is the object itself (its
file or directory entry, read through the backend like in the tree), named as in the tree
(namesakes get the id suffix a listing gives them); an earlier version is a file
``v<N>[.<date>]<ext>``. A repository without the API answers ``NotFound`` at once with one
log line saying why (``Capabilities.search_missing`` / ``versions_missing``), never a request.
The number of results is capped (``Options.search_limit``): the backend is asked for one
more, so a cut is known, and said, without a request past the page that shows it.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from typing import TYPE_CHECKING

from docfs import errors
from docfs.backends.base import Entry, Version
from docfs.vfs.names import assign_names

if TYPE_CHECKING:
    from docfs.vfs.inodes import Node
    from docfs.vfs.state import MountState

log = logging.getLogger("docfs.vfs.finding")

SEARCH_DIR = ".search"
VERSIONS_DIR = ".versions"


def read_only(entry: Entry) -> Entry:
    """``entry`` as a hidden directory shows it: nothing can be written through it."""
    return dataclasses.replace(entry, read_only=True, ops=frozenset(), thumbnail=None)


def version_name(version: Version, file_name: str) -> str:
    """``v2.2026-12-06.pdf``: the number, the day it was stored (UTC), the file's extension."""
    _, ext = os.path.splitext(file_name)
    day = (
        f".{time.strftime('%Y-%m-%d', time.gmtime(version.created))}"
        if version.created is not None
        else ""
    )
    return f"v{version.number}{day}{ext}"


class Finding:
    """The listings of the hidden directories; their nodes are the caller's."""

    def __init__(self, state: MountState) -> None:
        self.state = state

    def _refuse(self, what: str, why: str) -> errors.NotFound:
        log.warning("%s: %s", what, why)
        return errors.NotFound(f"{what}: {why}")

    async def search(self, scope: Node, query: str, *, whole: bool) -> dict[str, Entry]:
        """The results of ``query`` below the directory ``scope`` (``whole``: the mount's
        root, searched without a scope)."""
        backend = self.state.backend
        caps = backend.capabilities
        where = f"{self.state.path(scope) or '/'}{SEARCH_DIR}/{query}"
        if not caps.search:
            raise self._refuse(where, caps.search_missing)
        if not whole and not caps.search_scoped:
            raise self._refuse(
                where, f"{backend.name} cannot limit a search to a directory: search at the top"
            )
        if not query.strip():
            raise errors.NotFound(f"{where}: an empty query")
        limit = self.state.options.search_limit
        found: list[Entry] = []
        try:
            async for entry in backend.search(None if whole else scope.entry, query, limit + 1):
                found.append(entry)
        except errors.NotSupported as exc:
            raise self._refuse(where, str(exc)) from None
        except errors.InvalidArgument as exc:
            log.warning("%s: %s", where, exc)
            raise
        if len(found) > limit:
            log.warning(
                "%s: more than %d results; showing the first %d (--search-limit)",
                where,
                limit,
                limit,
            )
            found = found[:limit]
        log.info("%s: %d result(s)", where, len(found))
        named = assign_names(found, ((e.name, e.id) for e in found))
        return {name: read_only(entry) for name, entry in named.items()}

    async def versions(self, file: Node) -> dict[str, Entry]:
        """The earlier versions of the file ``file``."""
        backend = self.state.backend
        caps = backend.capabilities
        where = f"{self.state.path(file)} ({VERSIONS_DIR})"
        if file.is_dir:
            raise errors.NotFound(f"{where}: a directory has no versions")
        if not caps.versions:
            raise self._refuse(where, caps.versions_missing)
        if file.local:
            return {}  # not uploaded yet: no history on the server
        versions = await backend.versions(file.entry)
        return {version_name(v, file.name): read_only(v.entry) for v in versions}
