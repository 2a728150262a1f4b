"""Reading DocSpace: the sections, listings, stat, rooms with a watermark, downloads, thumbnails."""

import dataclasses
import functools
from collections.abc import AsyncIterator, Sequence
from typing import Any

from docfs import errors
from docfs.backends._thumbs import fetch_bytes
from docfs.backends._together import all_at_once
from docfs.backends.base import Entry, Kind, Op, Sink, Thumbnail
from docfs.backends.docspace.api import DocSpaceApi
from docfs.backends.docspace.common import (
    API,
    FT_ROOMS,
    FT_TRASH,
    FT_USER,
    PAGE,
    STATUS_MAP,
    extension,
    log,
)

#: pages of a walk's listings asked for at once (at most; never more than the concurrency
#: cap), once the first page told how many there are: a batch waits for its slowest page, so
#: a room of 1,000 files (10 recursive pages) is two round trips rather than four; the client's
#: rate limit still paces them, and a batch's pages (at most 100 entries each) are all that is
#: held at once
PAGES_AHEAD = 16
#: ``FilterType.FilesOnly`` (ASC.Files ``FilterType``)
FILES_ONLY = 1


def _count(value: object) -> int:
    """A folder's ``filesCount`` (0 if missing or not a number)."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


class DocSpaceReader(DocSpaceApi):
    """The read side of ``DocSpaceBackend``."""

    # ---- reading --------------------------------------------------------------------------

    async def root(self) -> Entry:
        return Entry(
            id="root",
            name="",
            kind=Kind.DIR,
            size=None,
            mtime=None,
            version="",
            extra={"kind": "root"},
        )

    async def list_dir(self, directory: Entry) -> AsyncIterator[Entry]:
        kind = directory.extra.get("kind")
        if kind == "root":
            for entry in await self._sections():
                yield entry
            return
        path = f"{API}/files/rooms" if kind == "rooms" else f"{API}/files/{self._raw_id(directory)}"
        marked = directory.extra.get("watermark") == "1"
        async for page in self._content_pages(path):
            for dto in page.get("folders") or []:
                yield self._inherit(self._folder_entry(dto), marked)
            for dto in page.get("files") or []:
                yield await self._as_served(self._inherit(self._file_entry(dto), marked))

    async def _content_pages(
        self, path: str, params: dict[str, str | int] | None = None, ahead: bool = False
    ) -> AsyncIterator[dict[str, Any]]:
        """The pages (``FolderContentDto``) of a folder listing, ``startIndex`` on to
        ``total``; ``ahead``: once the first page told ``total``, the others are asked for
        ``PAGES_AHEAD`` at a time (yielded in order; the rate limit still applies)."""
        start = 0
        while True:
            page = await self._content_page(path, start, params)
            yield page
            got = len(page.get("folders") or []) + len(page.get("files") or [])
            start += got
            total = int(page.get("total") or 0)
            if not got or start >= total:
                return
            if ahead:
                break
        offsets = list(range(start, total, PAGE))
        width = max(1, min(PAGES_AHEAD, self.http.limits.concurrency))
        for first in range(0, len(offsets), width):
            batch = offsets[first : first + width]
            pages = await all_at_once(
                functools.partial(self._content_page, path, params=params), batch
            )
            for page in pages:
                yield page

    async def _content_page(
        self, path: str, start: int, params: dict[str, str | int] | None
    ) -> dict[str, Any]:
        page = await self._call(
            "GET",
            path,
            endpoint="list",
            params={"count": PAGE, "startIndex": start, **(params or {})},
        )
        if not isinstance(page, dict):
            raise errors.ProtocolError("DocSpace: a listing without FolderContentDto")
        return page

    async def list_dir_deep(
        self, directory: Entry
    ) -> AsyncIterator[tuple[Entry, Sequence[Entry] | None]]:
        """A folder's children, and the files of those of its subfolders that hold no folders
        (``foldersCount`` 0) from one recursive listing of all files below it: ``filterType=
        FilesOnly`` with ``withSubFolders=true`` (each file with its ``folderId``;
        docs/protocols/docspace.md, "A walk"). Used where that costs fewer pages than the
        subfolders it fills in would cost requests."""
        if directory.extra.get("kind") in ("root", "rooms"):
            async for entry in self.list_dir(directory):
                yield entry, None
            return
        path = f"{API}/files/{self._raw_id(directory)}"
        marked = directory.extra.get("watermark") == "1"
        children: list[Entry] = []
        leaves: dict[str, Entry] = {}
        files_below = 0
        seen: set[str] = set()
        async for page in self._content_pages(path, ahead=True):
            for dto in page.get("folders") or []:
                entry = self._inherit(self._folder_entry(dto), marked)
                if entry.id in seen:
                    continue  # pages fetched at once may overlap when the folder changes
                seen.add(entry.id)
                children.append(entry)
                files_below += _count(dto.get("filesCount"))
                if dto.get("foldersCount") == 0:
                    leaves[str(dto["id"])] = entry
            for dto in page.get("files") or []:
                entry = self._inherit(self._file_entry(dto), marked)
                if entry.id not in seen:
                    seen.add(entry.id)
                    children.append(await self._as_served(entry))
                    files_below += 1
        found: dict[str, list[Entry]] = {}
        # at least this many pages: deeper files make it more, but the walk lists those too
        if leaves and -(-files_below // PAGE) < len(leaves):
            found = {folder_id: [] for folder_id in leaves}
            recursive: dict[str, str | int] = {"filterType": FILES_ONLY, "withSubFolders": "true"}
            async for page in self._content_pages(path, recursive, ahead=True):
                if -(-int(page.get("total") or 0) // PAGE) >= len(leaves):
                    # more files below than the estimate (deeper folders): the leaves are
                    # cheaper one by one; this page is all it cost
                    found = {}
                    break
                for dto in page.get("files") or []:
                    leaf = leaves.get(str(dto.get("folderId")))
                    if leaf is not None and f"f{dto.get('id')}" not in seen:
                        seen.add(f"f{dto.get('id')}")
                        entry = self._inherit(self._file_entry(dto), "watermark" in leaf.extra)
                        found[str(dto["folderId"])].append(await self._as_served(entry))
        for entry in children:
            yield entry, found.get(entry.extra.get("folder_id", "")) if entry.is_dir else None

    async def _sections(self) -> list[Entry]:
        """My documents, Rooms (and Trash) from one ``@root`` request."""
        roots = await self._call(
            "GET",
            f"{API}/files/@root",
            endpoint="root",
            params={"count": 1, "withoutTrash": str(not self.show_trash).lower()},
        )
        wanted = {FT_USER, FT_ROOMS} | ({FT_TRASH} if self.show_trash else set())
        out = []
        for content in roots or []:
            current = content.get("current") or {}
            if current.get("type") in wanted:
                out.append(self._folder_entry(current))
        order = {FT_USER: 0, FT_ROOMS: 1, FT_TRASH: 2}
        return sorted(out, key=lambda e: order.get(int(e.meta["folder_type"]), 9))

    async def stat(self, entry: Entry) -> Entry:
        if entry.extra.get("kind") == "root":
            return await self.root()
        if entry.kind is Kind.FILE:
            dto = await self._call(
                "GET", f"{API}/files/file/{self._raw_id(entry)}", endpoint="file"
            )
            fresh = self._file_entry(dto)
        else:
            dto = await self._call(
                "GET", f"{API}/files/folder/{self._raw_id(entry)}", endpoint="folder"
            )
            fresh = self._folder_entry(dto)
        if fresh.extra["in_trash"] == "1" and entry.extra.get("in_trash") != "1":
            # deleted behind our back: it lives on in Trash, but not where we knew it
            raise errors.NotFound(f"DocSpace: {entry.name!r} was moved to the Trash")
        fresh = self._inherit(fresh, entry.extra.get("watermark") == "1")
        return await self._as_served(fresh) if fresh.kind is Kind.FILE else fresh

    # ---- rooms with a watermark -------------------------------------------------------------

    @staticmethod
    def _inherit(entry: Entry, watermark: bool) -> Entry:
        """Everything below a room with a watermark is served through it."""
        if not watermark or entry.extra.get("watermark") == "1":
            return entry
        return dataclasses.replace(entry, extra={**entry.extra, "watermark": "1"})

    async def _as_served(self, entry: Entry) -> Entry:
        """A file of a room with a watermark, as the server serves it.

        FileHandler.ashx.cs converts every file the converter takes (``extsConvertible``) in
        such a room to a PDF with the watermark on each download, sends it whole and ignores
        ``Range``: its length is not ``pureContentLength``. The size the mount shows must be
        the length a read gets, so the served length is asked for once per version (a GET
        whose body is not read) and the file is read whole, never by ranges (two requests
        may get two different renderings).
        """
        if entry.extra.get("watermark") != "1" or not entry.size:
            return entry
        if self._convertible is not None and extension(entry.name) not in self._convertible:
            return entry
        key = (self._raw_id(entry), entry.extra.get("version", "0"))
        served = self._served_sizes.get(key)
        if served is None:
            served = await self._served_length(entry)
            self._served_sizes[key] = served
        if served == entry.size:
            return entry  # served as stored (the converter did not take it)
        if not self._watermark_logged:
            self._watermark_logged = True
            log.warning(
                "DocSpace: files in rooms with a watermark are converted to watermarked PDFs "
                "when read (first seen: %r, %d bytes stored, %d served): the mount shows and "
                "reads what the server serves, whole, without byte ranges",
                entry.name,
                entry.size,
                served,
            )
        return dataclasses.replace(
            entry,
            size=served,
            version=f"{entry.version}.w{served}",
            byte_ranges=False,
            # the only bytes a reader gets are the PDF: a write through the mount would start
            # from it and upload PDF plus change as the file's next version
            ops=entry.ops - {Op.REPLACE},
            extra={**entry.extra, "stored_size": str(entry.size)},
        )

    async def _served_length(self, entry: Entry) -> int:
        """The length of what a download of ``entry`` sends (its headers; the body unread
        unless there is no ``Content-Length``)."""
        params = {
            "action": "download",
            "fileid": self._raw_id(entry),
            "version": entry.extra.get("version", "0"),
        }
        async with self.http.stream(
            "GET",
            "/filehandler.ashx",
            endpoint="download-length",
            params=params,
            status_map=STATUS_MAP,
        ) as response:
            length = response.headers.get("content-length")
            if length is not None and length.isdigit():
                return int(length)
            total = 0
            async for chunk in response.aiter_bytes():
                total += len(chunk)
            return total

    async def download(
        self, entry: Entry, sink: Sink, start: int = 0, end: int | None = None
    ) -> None:
        size = entry.size or 0
        if end is not None and end >= size:
            end = None
        if start >= size or (end is not None and start >= end):
            return  # nothing to send (a suffix or empty range is never asked for)
        delivered = 0

        async def counting(chunk: bytes) -> None:
            nonlocal delivered
            delivered += len(chunk)
            await sink(chunk)

        params = {
            "action": "download",
            "fileid": self._raw_id(entry),
            "version": entry.extra.get("version", "0"),
        }
        for attempt in range(2):
            generation = self.session.generation
            try:
                await self.http.download(
                    "/filehandler.ashx",
                    counting,
                    endpoint="download",
                    start=start + delivered,
                    end=end,
                    ranges=self.capabilities.ranges and entry.byte_ranges,
                    params=params,
                    status_map=STATUS_MAP,
                )
                if not entry.byte_ranges and end is None and start + delivered != size:
                    # a watermarked rendering of another length than the one listed: the
                    # next listing shows the new one; this read cannot be served
                    key = (self._raw_id(entry), entry.extra.get("version", "0"))
                    self._served_sizes[key] = start + delivered
                    raise errors.Conflict(
                        f"DocSpace: {entry.name!r} was served with {start + delivered} bytes, "
                        f"not {size}: the watermarked rendering changed; read it again"
                    )
                return
            except errors.PermissionDenied as exc:
                if attempt or not await self._token_was_rejected(exc, generation):
                    raise

    # ---- thumbnails --------------------------------------------------------------------------

    async def thumbnail_data(self, thumbnail: Thumbnail) -> bytes:
        """``filehandler.ashx?action=thumb`` (``FileHandler.ashx.cs#ThumbnailFile``): the
        stored thumbnail of the default size, in the server's ``files:thumbnail:exts``."""
        file_id, _, version = thumbnail.ref.partition(":")
        return await fetch_bytes(
            self.http,
            "/filehandler.ashx",
            "thumb",
            params={"action": "thumb", "fileid": file_id, "version": version},
            status_map=STATUS_MAP,
        )
