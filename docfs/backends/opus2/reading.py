"""Reading an Opus 2 tenant: listings, whole-project walks, refreshes, stat and downloads."""

from __future__ import annotations

from collections.abc import AsyncIterator

from docfs import errors
from docfs.backends.base import Entry, Kind, Sink
from docfs.backends.opus2.api import (
    _AFTER_DATE_MARGIN,
    _AUTH,
    _ROOT_ID,
    _T_DOCUMENT,
    _T_FOLDER,
    _T_PROJECT,
    Opus2Api,
    _as_object,
    _q,
    _sid,
    log,
)


class Opus2Reader(Opus2Api):
    """The read side of ``Opus2Backend``."""

    async def connect(self) -> None:
        """Read the token and check it with the smallest possible projects page."""
        await self.http.ensure_session()
        size_key = self.profile.size_param
        try:
            await self._get(self._path("projects"), endpoint="projects", params={size_key: 1})
        except errors.AuthenticationFailed as exc:
            # the user must see what to fix, not an HTTP status of an URL (docs/protocols/
            # opus2.md: a 401 is an invalid, expired or revoked token)
            raise errors.AuthenticationFailed(
                "Opus 2 refused the API token, which is wrong, expired or revoked "
                f"(HTTP {exc.status})",
                status=exc.status,
            ) from None

    async def root(self) -> Entry:
        return Entry(
            id=_ROOT_ID,
            name="",
            kind=Kind.DIR,
            size=None,
            mtime=None,
            version="",
            extra={"type": "root"},
        )

    async def list_dir(self, directory: Entry) -> AsyncIterator[Entry]:
        kind = directory.extra.get("type")
        if kind == "root":
            async for item in self._pages(self._path("projects"), endpoint="projects"):
                yield self._project_entry(item)
            return
        if kind not in (_T_PROJECT, _T_FOLDER):
            raise errors.NotSupported(f"opus2: {directory.name!r} is not a directory")
        pid = directory.extra["project"]
        folder = directory.extra.get("folder", "") if kind == _T_FOLDER else ""
        writable = self._writable(directory)
        # one flat listing holds every folder of the project; keep the direct children
        async for item in self._pages(self._project_path(pid, "folders"), endpoint="folders"):
            parent = item.get("parentId")
            if (_sid(parent) if parent is not None else "") == folder:
                yield self._folder_entry(item, pid, writable, directory.extra.get("path", ""))
        if folder:
            path = self._project_path(pid, "documents", "folder", _q(folder))
            async for item in self._pages(path, endpoint="documents"):
                yield self._document_entry(item, pid, writable)
            return
        # no route lists the project root alone: the project-wide list, filtered
        async for item in self._pages(self._project_path(pid, "documents"), endpoint="documents"):
            if item.get("folderId") is None:
                yield self._document_entry(item, pid, writable)

    async def walk_project(self, project: Entry) -> AsyncIterator[tuple[str, Entry]]:
        """Every folder and document of a project as ``(parent entry id, entry)``, parents first.

        Two paged lists (all folders, all documents) instead of two requests per directory:
        the way to fill a cache for a whole project under a budget of 50 requests a minute.
        """
        if project.extra.get("type") != _T_PROJECT:
            raise errors.NotSupported("opus2: walk_project needs a project")
        pid = project.extra["project"]
        writable = self._writable(project)
        raw = [
            item
            async for item in self._pages(self._project_path(pid, "folders"), endpoint="folders")
        ]
        by_id = {_sid(item.get("id")): item for item in raw}
        entries: dict[str, Entry] = {}

        def place(fid: str, trail: frozenset[str] = frozenset()) -> Entry:
            # parents before children, whatever order the server lists them in
            if fid in entries:
                return entries[fid]
            item = by_id[fid]
            parent = item.get("parentId")
            up = _sid(parent) if parent is not None else ""
            base = ""
            if up in by_id and up not in trail and up != fid:  # a cycle would recurse forever
                base = place(up, trail | {fid}).extra["path"]
            entries[fid] = self._folder_entry(item, pid, writable, base)
            return entries[fid]

        for fid in by_id:
            place(fid)
        for entry in sorted(entries.values(), key=lambda e: e.extra["path"].count("/")):
            parent = entry.extra["parent"]
            yield (f"f:{pid}:{parent}" if parent in by_id else project.id), entry
        async for item in self._pages(self._project_path(pid, "documents"), endpoint="documents"):
            doc = self._document_entry(item, pid, writable)
            folder = doc.extra["folder"]
            yield (f"f:{pid}:{folder}" if folder in by_id else project.id), doc

    async def changed_since(self, directory: Entry, since: float) -> AsyncIterator[Entry]:
        """Documents of a project (or folder) updated after ``since``: the cheap refresh.

        ``afterDate`` is strictly after, and a tenant may keep times at a coarser resolution
        than the clock that ``since`` came from; asking from one second earlier can only repeat
        documents the caller already has, never miss one changed in the boundary second.
        """
        kind = directory.extra.get("type")
        if kind not in (_T_PROJECT, _T_FOLDER):
            raise errors.NotSupported("opus2: afterDate works on projects and folders")
        pid = directory.extra["project"]
        path = (
            self._project_path(pid, "documents", "folder", _q(directory.extra["folder"]))
            if kind == _T_FOLDER
            else self._project_path(pid, "documents")
        )
        params = {"afterDate": self.profile.format_date(since - _AFTER_DATE_MARGIN)}
        writable = self._writable(directory)
        async for item in self._pages(path, endpoint="changes", params=params):
            yield self._document_entry(item, pid, writable)

    def list_tree(self, scope: Entry) -> AsyncIterator[tuple[str, Entry]]:
        return self.walk_project(scope)

    async def changes(self, scope: Entry, since: float) -> AsyncIterator[tuple[str, Entry]]:
        """Documents of a project changed after ``since``, with the id of their directory."""
        pid = scope.extra["project"]
        async for entry in self.changed_since(scope, since):
            folder = entry.extra.get("folder", "")
            yield (f"f:{pid}:{folder}" if folder else f"p:{pid}"), entry

    async def stat(self, entry: Entry) -> Entry:
        kind = entry.extra.get("type")
        if kind == "root":
            return await self.root()
        pid = entry.extra.get("project", "")
        if kind == _T_PROJECT:
            data = await self._get(self._project_path(pid) + "/", endpoint="project")
            return self._project_entry(_as_object(data))
        if kind == _T_FOLDER:
            return await self._stat_folder(entry)
        if kind == _T_DOCUMENT:
            data = await self._get(
                self._project_path(pid, "documents", _q(entry.extra["document"])),
                endpoint="document",
            )
            return self._document_entry(_as_object(data), pid, self._writable(entry))
        raise errors.NotFound(f"opus2: unknown entry {entry.id!r}")

    async def _stat_folder(self, entry: Entry) -> Entry:
        # the API reads one folder by name or path only; the path of the listing finds it
        pid = entry.extra["project"]
        path = entry.extra["path"]
        data = _as_object(
            await self._get(self._project_path(pid, "folders", _q(path)), endpoint="folder")
        )
        if _sid(data.get("id")) != entry.extra["folder"]:
            raise errors.NotFound(f"opus2: folder {path!r} is gone")
        base = path.rsplit("/", 1)[0]
        return self._folder_entry(data, pid, self._writable(entry), base)

    async def download(
        self, entry: Entry, sink: Sink, start: int = 0, end: int | None = None
    ) -> None:
        if entry.extra.get("type") != _T_DOCUMENT:
            raise errors.NotSupported(f"opus2: {entry.name!r} is not a document")
        route = self.profile.download_path.format(
            projectId=_q(entry.extra["project"]), documentId=_q(entry.extra["document"])
        )
        try:
            await self.http.download(
                self._path(route),
                sink,
                endpoint="content",
                start=start,
                end=end,
                ranges=self.profile.ranges,
                status_map=_AUTH,
            )
        except (errors.NotFound, errors.NotSupported) as exc:
            if exc.status in (404, 405) and not self._download_hinted:
                # the vendor documents no download route: ours may not be the tenant's
                self._download_hinted = True
                log.warning(
                    "Opus 2 answered %s to the download route %r, which the vendor does not "
                    "document (docfs guesses it): if no file can be read, set download_path "
                    "in the remote's wire profile (see the README, Opus 2)",
                    exc.status,
                    self.profile.download_path,
                )
            raise
