"""Search in Opus 2 (issue 20): the API has no search, so docfs searches locally.

The endpoints Opus 2 documents (docs/protocols/opus2.md) list a project's folders and
documents but search nothing, and list no earlier versions of a document. ``search`` lists
each project in scope as a whole (``walk_project``: the flat folder list and the paged
document list, the cheapest way to see a project) and matches here: a bare query is a
case-insensitive substring of the name or of any metadata field value, ``FIELD:text`` a
substring of that one field (``Custodian:smith``). The result of one search is kept like any
listing by the mount; a new query lists again.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

from docfs.backends.base import Entry, Kind
from docfs.backends.opus2.api import _T_DOCUMENT, _T_FOLDER, _T_PROJECT
from docfs.backends.opus2.reading import Opus2Reader

_FIELD = re.compile(r"([^:\s][^:]*):(.+)", re.DOTALL)


def matches(entry: Entry, query: str) -> bool:
    """Whether ``entry`` answers ``query`` (see the module docstring)."""
    field = _FIELD.fullmatch(query)
    if field is not None and field.group(1) in entry.meta:
        return field.group(2).casefold() in entry.meta[field.group(1)].casefold()
    needle = query.casefold()
    if needle in entry.name.casefold():
        return True
    # ``id`` and ``version`` are ours, not fields of the document
    return any(
        needle in value.casefold()
        for key, value in entry.meta.items()
        if key not in ("id", "version")
    )


class Opus2Searching(Opus2Reader):
    """``Backend.search`` by listing and matching locally."""

    async def search(self, scope: Entry | None, query: str, limit: int) -> AsyncIterator[Entry]:
        kind = scope.extra.get("type") if scope is not None else "root"
        if scope is None or kind == "root":
            projects = [p async for p in self.list_dir(await self.root())]
        elif kind == _T_PROJECT:
            projects = [scope]
        else:
            # a folder: its project's tree, kept to what lies below the folder
            pid = scope.extra["project"]
            projects = [
                Entry(
                    id=f"p:{pid}",
                    name=pid,
                    kind=Kind.DIR,
                    size=None,
                    mtime=None,
                    version="",
                    extra={**scope.extra, "type": _T_PROJECT},
                )
            ]
        below = {scope.extra.get("folder", "")} if kind == _T_FOLDER and scope else None
        sent = 0
        for project in projects:
            async for _parent, entry in self.walk_project(project):
                if below is not None:
                    up = entry.extra.get("parent" if entry.is_dir else "folder", "")
                    if up not in below:
                        continue
                    if entry.extra.get("type") == _T_FOLDER:
                        below.add(entry.extra["folder"])
                if entry.extra.get("type") not in (_T_FOLDER, _T_DOCUMENT):
                    continue
                if matches(entry, query):
                    yield entry
                    sent += 1
                    if sent >= limit:
                        return
