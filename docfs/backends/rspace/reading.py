"""Reading RSpace: the tree, the Gallery media index, stat, lookups by global id, downloads."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

import trio

from docfs import errors
from docfs.backends.base import Entry, Sink
from docfs.backends.rspace.common import (
    _FOLDER_STAT_MAP,
    _TREE_MAP,
    API,
    DOCUMENT,
    FIELD,
    FOLDER,
    GALLERY,
    GALLERY_DIRS,
    GFOLDER,
    HOME,
    JSON_ACCEPT,
    LINKED,
    MEDIA,
    NOTEBOOK,
    PAGE,
    RATE_ROUNDS,
    SECTION,
    WORKSPACE_DIRS,
    _json,
    _num,
    _server_time,
    _ts,
    section_for,
)
from docfs.backends.rspace.records import _FilesCursor, _MediaInfo
from docfs.backends.rspace.shares import RSpaceSharing


class RSpaceReader(RSpaceSharing):
    """The read side of ``RSpaceBackend``."""

    async def root(self) -> Entry:
        home = await self._home_id()
        info = await self._get(f"/folders/{home}", endpoint="folders.get")
        entry = self._dir_entry(
            gid=str(info["globalId"]),
            name=str(info["name"]),
            kind=HOME,
            parent="",
            modified=str(info["lastModified"]),
            owner={"homeFolderId": home},
            system=False,
        )
        return entry

    async def list_dir(self, directory: Entry) -> AsyncIterator[Entry]:
        kind = directory.extra.get("type")
        if kind == DOCUMENT:
            doc = await self._get(f"/documents/{_num(directory)}", endpoint="documents.get")
            for entry in self._document_children(doc, directory):
                yield entry
            return
        if kind not in WORKSPACE_DIRS and kind not in GALLERY_DIRS:
            raise errors.NotSupported(f"{directory.name!r} is not a directory")
        await self._home_id()
        page = 0
        cursor = _FilesCursor()  # one walk through /files per listing, not one per tree page
        while True:
            data = await self._get(
                f"/folders/tree/{_num(directory)}",
                endpoint="folders.tree",
                params={"pageSize": PAGE, "pageNumber": page},
                status_map=_TREE_MAP,
            )
            records = data.get("records") or []
            media: dict[int, _MediaInfo] = {}
            if any(r.get("type") == "MEDIA" for r in records):
                media = await self._media_infos(records, cursor)
            for rec in records:
                child = self._tree_entry(rec, directory, media)
                if child is not None:
                    yield child
            page += 1
            # follow totalHits, never the next link (it drops typesToInclude)
            if not records or page * PAGE >= int(data.get("totalHits", 0)):
                return

    async def _media_infos(
        self, records: Sequence[Mapping[str, Any]], cursor: _FilesCursor
    ) -> dict[int, _MediaInfo]:
        """Sizes and versions of the MEDIA records, from the index or fresh ``/files`` pages."""
        stamps = {
            int(r["id"]): _ts(r.get("lastModified")) or 0.0
            for r in records
            if r.get("type") == "MEDIA"
        }
        async with self._media_lock:
            wanted = {
                i
                for i, modified in stamps.items()
                if (info := self._media.get(i)) is None or info.stale(modified)
            }
            if wanted:
                await self._refresh_media(wanted, cursor)
                # read after this tree page: valid until the tree shows another lastModified
                for i in wanted:
                    if i in self._media:
                        self._media[i].modified = stamps[i]
            return {i: self._media[i] for i in stamps if i in self._media}

    async def _refresh_media(self, wanted: set[int], cursor: _FilesCursor) -> None:
        # /files is newest first, like the tree: files changed since they were indexed come
        # early, and a listing's later tree pages continue where its earlier ones stopped
        missing = set(wanted)
        while missing and not cursor.done:
            response = await self._call(
                "GET",
                "/files",
                endpoint="files.list",
                params={"pageSize": PAGE, "pageNumber": cursor.page},
                headers=JSON_ACCEPT,
            )
            fetched, data = _server_time(response), _json(response)
            for f in data.get("files") or []:
                self._remember(f, fetched)
                missing.discard(int(f["id"]))
            cursor.page += 1
            if not data.get("files") or cursor.page * PAGE >= int(data.get("totalHits", 0)):
                cursor.done = True
        for file_id in missing:
            # not in the caller's own /files listing (e.g. a colleague's file in a group folder)
            try:
                response = await self._call(
                    "GET", f"/files/{file_id}", endpoint="files.get", headers=JSON_ACCEPT
                )
            except errors.NotFound:
                continue
            self._remember(_json(response), _server_time(response))

    def _remember(self, f: Mapping[str, Any], fetched: float) -> _MediaInfo:
        info = _MediaInfo(
            size=int(f["size"]),
            version=int(f["version"]),
            caption=str(f.get("caption") or ""),
            fetched=fetched,
        )
        self._media[int(f["id"])] = info
        return info

    async def stat(self, entry: Entry) -> Entry:
        await self._home_id()  # ownership is judged against the Home folder
        kind = entry.extra.get("type")
        if kind in WORKSPACE_DIRS or kind in GALLERY_DIRS:
            info = await self._get(
                f"/folders/{_num(entry)}", endpoint="folders.get", status_map=_FOLDER_STAT_MAP
            )
            return self._dir_entry(
                gid=str(info["globalId"]),
                name=str(info["name"]),
                kind=str(kind),
                parent=entry.extra.get("parent", ""),
                modified=str(info["lastModified"]),
                owner={
                    "homeFolderId": self._home if entry.extra.get("owned") else None,
                    "username": entry.meta.get("owner", ""),
                },
                system=bool(info.get("systemFolder")),
                section=entry.extra.get("section", ""),
            )
        if kind == DOCUMENT:
            return await self._full_document(_num(entry), entry.extra.get("parent", ""))
        if kind == MEDIA:
            response = await self._call(
                "GET", f"/files/{_num(entry)}", endpoint="files.get", headers=JSON_ACCEPT
            )
            info = self._remember(_json(response), _server_time(response))
            name = str(_json(response)["name"])
            mtime = entry.mtime if str(info.version) == entry.version else _server_time(response)
            return self._media_entry(
                _num(entry),
                name,
                entry.extra.get("parent", ""),
                info,
                mtime,
                entry.meta.get("owner", ""),
                entry.extra.get("section", ""),
            )
        if kind in (FIELD, LINKED):
            doc = await self._get(f"/documents/{entry.extra['doc']}", endpoint="documents.get")
            for child in self._document_children(doc, entry):
                if child.id == entry.id:
                    return child
            raise errors.NotFound(f"{entry.name!r} is no longer part of the document")
        raise errors.NotFound(f"unknown RSpace entry {entry.id!r}")

    async def _full_document(self, doc_id: int, parent: str) -> Entry:
        """A document with tags, form and (for its owner: one more request) its shares."""
        doc = await self._get(f"/documents/{doc_id}", endpoint="documents.get")
        shares = await self._item_shares(int(doc["id"])) if self._owned(doc.get("owner")) else []
        return self._document_entry(doc, parent, shares)

    async def entry_by_id(self, global_id: str) -> Entry:
        """The entry of a global id (``SD12``, ``NB3``, ``FL4``, ``GF5``, ``GL6``).

        For callers that know an object by the id the mount shows (``user.docfs.id``) rather
        than by a listing, such as ``docfs share``. A field or a linked file
        (``SD12/FD34``) is not an object of its own here.
        """
        match = re.fullmatch(r"([A-Za-z]{2})(\d+)", global_id)
        if match is None:
            raise errors.InvalidArgument(f"not an RSpace global id: {global_id!r}")
        prefix, num = match.group(1).upper(), int(match.group(2))
        home = await self._home_id()
        if prefix == "SD":
            # parentFolderId is set only for the owner's own documents
            doc = await self._get(f"/documents/{num}", endpoint="documents.get")
            parent = doc.get("parentFolderId")
            return await self._full_document(num, "" if parent is None else str(parent))
        if prefix in ("FL", "NB", "GF"):
            info = await self._get(
                f"/folders/{num}", endpoint="folders.get", status_map=_FOLDER_STAT_MAP
            )
            return self._folder_from_api(info, home)
        if prefix == "GL":
            response = await self._call(
                "GET", f"/files/{num}", endpoint="files.get", headers=JSON_ACCEPT
            )
            data = _json(response)
            media = self._remember(data, _server_time(response))
            return self._media_entry(
                num,
                str(data["name"]),
                str(data.get("parentFolderId") or ""),
                media,
                _ts(data.get("created")),
                section=section_for(str(data["name"])),
            )
        raise errors.NotSupported(f"{global_id}: not a folder, notebook, document or file")

    def _folder_from_api(self, info: Mapping[str, Any], home: int) -> Entry:
        """An entry from an ``ApiFolder``, which has no owner: ``parentFolderId`` tells."""
        gid, name = str(info["globalId"]), str(info["name"])
        media_type = info.get("mediaType")
        system = bool(info.get("systemFolder"))
        if int(info["id"]) == home:
            kind = HOME
        elif info.get("notebook"):
            kind = NOTEBOOK
        elif not gid.startswith("GF"):
            kind = FOLDER
        elif not media_type:
            kind = GALLERY  # the Gallery root is the only GF folder without a section
        else:
            kind = SECTION if system and name == media_type else GFOLDER
        parent = info.get("parentFolderId")
        # the server fills parentFolderId only for the caller's own folders
        owned = kind == HOME or parent is not None
        return self._dir_entry(
            gid=gid,
            name=name,
            kind=kind,
            parent="" if parent is None else str(parent),
            modified=str(info["lastModified"]),
            owner={"homeFolderId": home if owned else None},
            system=system,
            section=str(media_type or ""),
        )

    async def download(
        self, entry: Entry, sink: Sink, start: int = 0, end: int | None = None
    ) -> None:
        kind = entry.extra.get("type")
        if kind == FIELD:
            doc = await self._get(f"/documents/{entry.extra['doc']}", endpoint="documents.get")
            field = next(
                (f for f in doc.get("fields") or [] if str(f["id"]) == entry.extra["id"]), None
            )
            if field is None:
                raise errors.NotFound(f"field {entry.name!r} is gone")
            data = str(field.get("content") or "").encode("utf-8")
            await sink(data[start:end])
            return
        if kind not in (MEDIA, LINKED):
            raise errors.NotSupported(f"{entry.name!r} is not a file")
        delivered = 0
        for attempt in range(RATE_ROUNDS):
            try:
                delivered = await self.http.download(
                    f"{API}/files/{_num(entry)}/file",
                    sink,
                    endpoint="files.download",
                    start=start,
                    end=end,
                    ranges=False,  # the server ignores Range
                    status_map={404: errors.NotFound},
                )
                break
            except errors.RateLimited:
                if attempt + 1 >= RATE_ROUNDS:
                    raise
                await trio.sleep(min(60.0, max(0.1, self._watch.wait or 1.0)))
        expected = (entry.size or 0) if end is None else min(end, entry.size or 0)
        if delivered == 0 and expected > start:
            # the server logs a missing blob and answers 200 with an empty body
            raise errors.RemoteUnavailable(
                f"RSpace sent no bytes for {entry.name!r} (its stored file is missing)"
            )
