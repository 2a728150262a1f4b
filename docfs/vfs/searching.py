"""The hidden ``.search`` and ``.versions`` directories (issue 20), as ``docfs.vfs.hidden``
providers.

``DIR/.search/QUERY/`` lists what the repository's own search finds for QUERY (in its own
query language) below DIR — the mount's root searches the whole repository — one search
request per page of results, kept for ``dir_cache_time``. Each result is the object itself
(the tree's own node when the tree knows it: ``docfs.vfs.hidden``), named as in a listing
(namesakes get the id suffix a listing gives them). The number of results is capped
(``Options.search_limit``): the backend is asked for one more, so a cut is known, and said in
one log line, without a request past the page that shows it.

``DIR/.versions/FILE/`` lists the earlier versions of DIR/FILE as read-only files
``v<N>[.<date>]<ext>`` read byte-exact from the repository (the backend gives each version an
``Entry`` of its own, so the current file's node and cache are never touched). Restoring is an
ordinary overwrite: ``cp .versions/f/v2.pdf f`` makes a new version. Where the repository keeps
versions of directories (DSpace 7 items), ``ITEM/.versions/`` also lists the item's earlier
versions as read-only directories ``v<N>[.<date>]``.

A repository without a search API whose listings are worth searching
(``Capabilities.search_local``, Opus 2) is searched here: names and metadata values over the
mount's own cached listings below DIR, listing only what is not cached yet.

A repository without the API answers ENOENT at once, with one log line saying why
(``Capabilities.search_missing`` / ``versions_missing``), and sends nothing.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence

from docfs import errors
from docfs.backends.base import Backend, Entry, Version
from docfs.vfs.hidden import HiddenProvider, VirtualDir
from docfs.vfs.inodes import ROOT_INODE, Node
from docfs.vfs.listings import Listings
from docfs.vfs.names import assign_names
from docfs.vfs.state import MountState

log = logging.getLogger("docfs.vfs.searching")

SEARCH_DIR = ".search"
VERSIONS_DIR = ".versions"


def version_name(version: Version, file_name: str) -> str:
    """``v2.2026-12-06.pdf``: the number, the day it was stored (UTC), the file's extension."""
    _, ext = os.path.splitext(file_name)
    day = (
        f".{time.strftime('%Y-%m-%d', time.gmtime(version.created))}"
        if version.created is not None
        else ""
    )
    return f"v{version.number}{day}{ext}"


class _Cached(VirtualDir):
    """A virtual directory whose whole content is made at once and kept for the TTL."""

    def __init__(self, state: MountState) -> None:
        self.state = state
        self._content: dict[str, Entry] = {}
        self._at: float | None = None

    async def make(self) -> dict[str, Entry]:
        """The whole content, asked of the repository (once per TTL)."""
        raise NotImplementedError

    async def _load(self) -> dict[str, Entry]:
        if not self.state.fresh.fresh(self._at):
            self._content = await self.make()
            self._at = self.state.fresh.now()
        return self._content

    async def child(self, name: str) -> Entry | VirtualDir | None:
        return (await self._load()).get(name)

    async def list(self) -> Sequence[tuple[str, Entry | VirtualDir]] | None:
        return sorted((await self._load()).items())


# ---- .search -----------------------------------------------------------------------------


class SearchResults(_Cached):
    """``DIR/.search/QUERY/``: the results of one query."""

    def __init__(self, state: MountState, scope: Node, query: str) -> None:
        super().__init__(state)
        self.scope, self.query = scope, query

    async def make(self) -> dict[str, Entry]:
        state, backend = self.state, self.state.backend
        whole = self.scope.ino == ROOT_INODE
        where = f"{state.path(self.scope).rstrip('/')}/{SEARCH_DIR}/{self.query}"
        caps = backend.capabilities
        if not whole and not (caps.search_scoped or caps.search_local):
            why = f"{backend.name} cannot limit a search to a directory: use MOUNT/{SEARCH_DIR}"
            log.warning("%s: %s (ENOENT)", where, why)
            raise errors.NotFound(f"{where}: {why}")
        limit = state.options.search_limit
        found: list[Entry] = []
        try:
            if backend.capabilities.search_local:
                found = await self._local(limit + 1)
            else:
                source = backend.search(None if whole else self.scope.entry, self.query, limit + 1)
                async for entry in source:
                    found.append(entry)
        except errors.NotSupported as exc:
            log.warning("%s: %s (ENOENT)", where, exc)
            raise errors.NotFound(f"{where}: {exc}") from None
        except errors.InvalidArgument as exc:
            log.warning("%s: %s (EINVAL)", where, exc)
            raise
        if len(found) > limit:
            log.warning(
                "%s: more than %d results, showing the first %d (--search-limit)",
                where,
                limit,
                limit,
            )
            found = found[:limit]
        log.info("%s: %d result(s)", where, len(found))
        return assign_names(found, ((e.name, e.id) for e in found))

    async def _local(self, limit: int) -> list[Entry]:
        """A repository without a search API (``Capabilities.search_local``): the mount's own
        listings below the scope, breadth first, matched here. Listings still fresh cost
        nothing; a repository with tree listings (``Capabilities.tree``) fills a whole change
        scope with one of them."""
        listings = Listings(self.state)
        found: list[Entry] = []
        pending = [self.scope]
        while pending and len(found) < limit:
            directory = pending.pop(0)
            children = await listings.ensure_listed(directory)
            for name in sorted(children):
                node = self.state.inodes.find(children[name])
                if node is None or node.local:
                    continue
                if local_match(node.entry, self.query):
                    found.append(node.entry)
                if node.is_dir:
                    pending.append(node)
        return found[:limit]


def local_match(entry: Entry, query: str) -> bool:
    """``query`` in ``entry`` for a local search: ``KEY:text`` where KEY is one of the entry's
    metadata keys matches that value; else the name or any metadata value. Case-insensitive
    substrings, as a user types them."""
    key, colon, text = query.partition(":")
    if colon and key in entry.meta:
        return text.casefold() in entry.meta[key].casefold()
    needle = query.casefold()
    return needle in entry.name.casefold() or any(
        needle in value.casefold() for value in entry.meta.values()
    )


class SearchDir(VirtualDir):
    """``DIR/.search/``: one directory per query looked up in it (not enumerable)."""

    def __init__(self, state: MountState, scope: Node) -> None:
        self.state, self.scope = state, scope

    async def child(self, name: str) -> Entry | VirtualDir | None:
        if not name.strip():
            return None
        results = SearchResults(self.state, self.scope, name)
        # searched on lookup: a query the repository refuses fails ``cd`` and ``ls`` alike
        await results.child("")
        return results


class SearchProvider(HiddenProvider):
    """``.search`` in every directory (the repository decides which ones it can scope to)."""

    name = SEARCH_DIR
    root_only = False

    def missing(self, backend: Backend, where: Entry) -> str | None:
        caps = backend.capabilities
        return None if caps.search or caps.search_local else caps.search_missing

    def open(self, state: MountState, where: Node) -> VirtualDir:
        return SearchDir(state, where)


# ---- .versions ---------------------------------------------------------------------------


class FileVersions(_Cached):
    """``DIR/.versions/FILE/``: the earlier versions of one file, read-only snapshots."""

    frozen_children = True

    def __init__(self, state: MountState, file: Node) -> None:
        super().__init__(state)
        self.file = file

    async def make(self) -> dict[str, Entry]:
        if self.file.local or self.file.detached:
            return {}  # not (or no longer) on the server: no history there
        versions = await _versions_of(self.state, self.file)
        return {version_name(v, self.file.name): v.entry for v in versions}


async def _versions_of(state: MountState, node: Node) -> list[Version]:
    """``Backend.versions`` of ``node``; a refusal is ENOENT with one log line."""
    try:
        return await state.backend.versions(node.entry)
    except errors.NotSupported as exc:
        where = f"{state.path(node)} ({VERSIONS_DIR})"
        log.warning("%s: %s (ENOENT)", where, exc)
        raise errors.NotFound(f"{where}: {exc}") from None


class VersionsDir(_Cached):
    """``DIR/.versions/``: one directory per file of DIR looked up in it and, where the
    repository keeps versions of directories (``Capabilities.dir_versions``), DIR's own
    earlier versions as read-only directories ``v<N>[.<date>]``."""

    frozen_children = True

    def __init__(self, state: MountState, where: Node) -> None:
        super().__init__(state)
        self.where = where
        # the listing of DIR (the cached one while fresh) tells which file a name is
        self._listings = Listings(state)

    async def make(self) -> dict[str, Entry]:
        if not self.state.backend.capabilities.dir_versions:
            return {}
        versions = await _versions_of(self.state, self.where)
        return {version_name(v, ""): v.entry for v in versions}

    async def child(self, name: str) -> Entry | VirtualDir | None:
        own = await super().child(name)
        if own is not None:
            return own
        children = await self._listings.ensure_listed(self.where)
        ino = children.get(name)
        node = self.state.inodes.find(ino) if ino is not None else None
        if node is None or node.is_dir:
            return None
        caps = self.state.backend.capabilities
        if not caps.versions:
            log.warning(
                "%s/%s: %s (ENOENT)", self.state.path(node), VERSIONS_DIR, caps.versions_missing
            )
            return None
        versions = FileVersions(self.state, node)
        await versions.child("")  # asked on lookup, like a search
        return versions

    async def list(self) -> Sequence[tuple[str, Entry | VirtualDir]] | None:
        if not self.state.backend.capabilities.dir_versions:
            return None  # the files looked up so far
        return await super().list()


class VersionsProvider(HiddenProvider):
    """``.versions`` in every directory of a repository that keeps versions."""

    name = VERSIONS_DIR
    root_only = False

    def missing(self, backend: Backend, where: Entry) -> str | None:
        caps = backend.capabilities
        return None if caps.versions or caps.dir_versions else caps.versions_missing

    def open(self, state: MountState, where: Node) -> VirtualDir:
        return VersionsDir(state, where)


#: the providers of this module, for ``filesystem.HIDDEN_PROVIDERS``
PROVIDERS: tuple[HiddenProvider, ...] = (SearchProvider(), VersionsProvider())
