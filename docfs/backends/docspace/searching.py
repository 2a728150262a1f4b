"""Search and versions in DocSpace (issue 20): search by title and the versions of a file.

Search is the folder content request with ``filterValue`` (``GET files/{folderId}``): the
server (``FoldersController.cs#GetFolderByFolderId`` → ``FileStorageService.cs``) matches the
text against titles and, because ``withSubFolders`` defaults to true and applies only when a
filter is given, returns matching files and folders from the whole subtree, paged with
``count``/``startIndex`` like any listing. The whole portal is searched section by section
(My documents, then Rooms); Trash is left out. Versions are ``GET files/file/{id}/history``
(``FilesController.cs#GetFileVersionInfo``: every version as a ``FileDto``, newest first), and
an old version's bytes are ``filehandler.ashx?action=download&fileid=N&version=V``, which
``download`` already sends from the entry's ``version``. See docs/protocols/docspace.md.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator

from docfs import errors
from docfs.backends.base import Entry, Version
from docfs.backends.docspace.common import API, FT_TRASH, PAGE, parse_date
from docfs.backends.docspace.reading import DocSpaceReader


async def search(
    backend: DocSpaceReader, scope: Entry | None, query: str, limit: int
) -> AsyncIterator[Entry]:
    """Matches of ``query`` below ``scope`` (None or the root: every section but Trash)."""
    if scope is None or scope.extra.get("kind") == "root":
        roots = [s for s in await backend._sections() if s.meta.get("folder_type") != str(FT_TRASH)]
    else:
        roots = [scope]
    found = 0
    for root in roots:
        async for entry in _search_below(backend, root, query, limit - found):
            found += 1
            yield entry
        if found >= limit:
            return


async def _search_below(
    backend: DocSpaceReader, folder: Entry, query: str, limit: int
) -> AsyncIterator[Entry]:
    folder_id = folder.extra.get("folder_id") or backend._raw_id(folder)
    marked = folder.extra.get("watermark") == "1"
    start = 0
    sent = 0
    while sent < limit:
        page = await backend._call(
            "GET",
            f"{API}/files/{folder_id}",
            endpoint="search",
            params={
                "filterValue": query,
                "withSubFolders": "true",
                "count": min(PAGE, limit - sent),
                "startIndex": start,
            },
        )
        if not isinstance(page, dict):
            raise errors.ProtocolError("DocSpace: a search answer without FolderContentDto")
        folders = page.get("folders") or []
        files = page.get("files") or []
        for dto in folders:
            yield backend._inherit(backend._folder_entry(dto), marked)
        for dto in files:
            yield await backend._as_served(backend._inherit(backend._file_entry(dto), marked))
        sent += len(folders) + len(files)
        start += len(folders) + len(files)
        if (not folders and not files) or start >= int(page.get("total") or 0):
            return


async def versions(backend: DocSpaceReader, entry: Entry) -> list[Version]:
    """The earlier versions of ``entry``, oldest first, each readable through ``download``."""
    history = await backend._call(
        "GET", f"{API}/files/file/{backend._raw_id(entry)}/history", endpoint="history"
    )
    if not isinstance(history, list):
        raise errors.ProtocolError("DocSpace: a version history that is not a list")
    current = int(entry.extra.get("version", "0") or 0)
    out: dict[int, Version] = {}
    for dto in history:
        number = int(dto.get("version") or 0)
        if number <= 0 or (current and number >= current):
            continue
        old = backend._file_entry(dto)
        # an id of its own (the file's is the current version's: the mount must not mistake
        # one for the other), read-only whatever the file's rights; ``download`` takes the
        # file id and version from ``extra``
        old = dataclasses.replace(
            old, id=f"{old.id}@v{number}", read_only=True, ops=frozenset(), thumbnail=None
        )
        out[number] = Version(number, parse_date(dto.get("updated") or dto.get("created")), old)
    return [out[n] for n in sorted(out)]
