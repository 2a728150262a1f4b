"""Requests to DocSpace and the entries built from its DTOs: the state every part shares.

``DocSpaceApi`` sends every request (the write gate, the re-login after a 403 that means a dead
token), maps folder and file DTOs to entries, and holds what the other parts share: the running
file operations, the served sizes of watermarked files, the upload chunk size.
"""

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, ClassVar

import trio

from docfs import errors
from docfs.backends._http import HttpClient, Limits, StatusMap
from docfs.backends._multipart import Multipart
from docfs.backends.base import Capabilities, Credentials, Entry, IdKind, Kind, Op
from docfs.backends.docspace.common import (
    API,
    DEFAULT_CHUNK,
    FT_ROOMS,
    FT_TRASH,
    LOOK_AGAIN,
    READ_ONLY_ROOTS,
    SECTION_NAMES,
    STATUS_MAP,
    THUMBNAIL_CREATED,
    T,
    parse_date,
    survives_save,
    unwrap,
)
from docfs.backends.docspace.session import DocSpaceSession
from docfs.backends.http_backend import HttpBackend


class DocSpaceApi(HttpBackend):
    """The state, request plumbing and DTO mapping every part of ``DocSpaceBackend`` shares."""

    name: ClassVar[str] = "docspace"
    capabilities: ClassVar[Capabilities] = Capabilities(
        ops=frozenset(Op),
        ranges=True,
        move=True,
        meta_namespace="docspace",
        duplicate_names=True,
        search=True,
        search_scoped=True,
        versions=True,
        # files/file/{id}, files/folder/{id}: see docfs/backends/docspace/finding.py
        resolves=frozenset({IdKind.ID}),
        deep=True,
    )
    #: 1500 requests per minute (a bucket of 25 plus 24.5/s never exceeds 1500 in 60 s) and
    #: 50 concurrent requests; writes are further capped at 15 by the backend itself
    default_limits: ClassVar[Limits] = Limits(
        requests_per_second=24.5, burst=25, concurrency=50, timeout=60.0
    )
    WRITE_CONCURRENCY = 15

    def __init__(
        self,
        http: HttpClient,
        credentials: Credentials,
        *,
        show_trash: bool = True,
        permanent_delete: bool = False,
        room_type: str = "CustomRoom",
        poll_interval: float = 0.05,
        operation_timeout: float = 600.0,
    ) -> None:
        super().__init__(http, credentials)
        self.session = DocSpaceSession(credentials)
        http.session = self.session
        http.redactor.add(*credentials.secrets())
        self.show_trash = show_trash
        self.permanent_delete = permanent_delete
        self.room_type = room_type
        self.poll_interval = poll_interval
        self.operation_timeout = operation_timeout
        self.chunk_size = DEFAULT_CHUNK
        self._writes = trio.CapacityLimiter(self.WRITE_CONCURRENCY)
        self._auth_lock = trio.Lock()
        self._ops_lock = trio.Lock()
        #: finished operation records seen in any answer, by id (a poll may dequeue another's)
        self._finished_ops: dict[str, dict[str, Any]] = {}
        self._running_ops: set[str] = set()
        #: what the server converts in rooms with a watermark (``extsConvertible``; None:
        #: unknown, every file there is measured)
        self._convertible: frozenset[str] | None = None
        #: (file id, version) → the length a download sends, for files of such rooms
        self._served_sizes: dict[tuple[str, str], int] = {}
        self._watermark_logged = False

    # ---- plumbing -------------------------------------------------------------------------

    async def connect(self) -> None:
        await self.http.ensure_session()
        settings = await self._call("GET", f"{API}/files/settings", endpoint="settings")
        if isinstance(settings, dict) and isinstance(settings.get("chunkUploadSize"), int):
            self.chunk_size = settings["chunkUploadSize"]
        convertible = settings.get("extsConvertible") if isinstance(settings, dict) else None
        if isinstance(convertible, dict):
            self._convertible = frozenset(str(ext).lower() for ext in convertible)

    @asynccontextmanager
    async def _gate(self, method: str) -> AsyncIterator[None]:
        """The server allows 15 concurrent writes (50 reads: the HttpClient's own cap)."""
        if method == "GET":
            yield
        else:
            async with self._writes:
                yield

    async def _call(
        self,
        method: str,
        path: str,
        *,
        endpoint: str,
        params: dict[str, Any] | None = None,
        json: Any = None,
        body: bytes | Multipart | None = None,
        headers: dict[str, str] | None = None,
        idempotent: bool | None = None,
        status_map: StatusMap | None = None,
    ) -> Any:
        """One API request → the envelope's ``response``; a 403 may mean a dead token."""
        smap = {**STATUS_MAP, **(status_map or {})}
        for attempt in range(2):
            generation = self.session.generation
            try:
                async with self._gate(method):
                    response = await self.http.request(
                        method,
                        path,
                        endpoint=endpoint,
                        params=params,
                        json=json,
                        body=body,
                        headers=headers,
                        idempotent=idempotent,
                        status_map=smap,
                    )
                return unwrap(response)
            except errors.PermissionDenied as exc:
                if attempt or not await self._token_was_rejected(exc, generation):
                    raise
        raise AssertionError("unreachable")

    async def _token_was_rejected(self, exc: errors.PermissionDenied, generation: int) -> bool:
        """After a 403: ask ``GET /authentication``; log in again if the token is dead."""
        if isinstance(exc, errors.AuthenticationFailed) or exc.status != 403:
            return False
        async with self._auth_lock:
            if self.session.generation != generation:
                return True  # another task logged in meanwhile: just retry
            response = await self.http.request(
                "GET", f"{API}/authentication", endpoint="auth-check"
            )
            if unwrap(response) is not False:
                return False  # a real permission error
            if not self.session.can_login:
                raise errors.AuthenticationFailed("DocSpace: the token or API key was rejected")
            self.session.invalidate()
            await self.http.ensure_session()
            return True

    # ---- mapping --------------------------------------------------------------------------

    def _folder_entry(self, dto: dict[str, Any]) -> Entry:
        folder_id = dto["id"]
        folder_type = dto.get("type")
        root_type = dto.get("rootFolderType")
        security = dto.get("security") or {}
        is_section = not dto.get("parentId")
        is_room = "roomType" in dto
        read_only = root_type in READ_ONLY_ROOTS
        if is_section:
            kind = "rooms" if folder_type == FT_ROOMS else "section"
            name = SECTION_NAMES.get(folder_type or 0, str(dto.get("title", folder_id)))
        else:
            kind = "room" if is_room else "folder"
            name = str(dto.get("title", ""))
        ops: set[Op] = set()
        if not read_only:
            if kind == "rooms":
                if security.get("Create"):
                    ops.add(Op.MKDIR)
            elif security.get("Create"):
                ops |= {Op.CREATE_FILE, Op.MKDIR}
            if not is_section:
                if security.get("Rename") or (is_room and security.get("EditRoom")):
                    ops.add(Op.RENAME)
                if security.get("Delete"):
                    ops.add(Op.REMOVE)
        meta = {"id": str(folder_id), "folder_type": str(folder_type)}
        if is_room:
            meta["room_type"] = str(dto["roomType"])
        watermark = is_room and isinstance(dto.get("watermark"), dict)
        self._common_meta(meta, dto)
        return Entry(
            id=f"d{folder_id}",
            name=name,
            kind=Kind.DIR,
            size=None,
            mtime=parse_date(dto.get("updated")),
            version=str(dto.get("updated", "")),
            meta=meta,
            read_only=read_only,
            ops=frozenset(ops),
            extra={
                "kind": kind,
                "folder_id": str(folder_id),
                "parent": f"d{dto.get('parentId')}",
                "in_trash": "1" if root_type == FT_TRASH else "0",
                **({"watermark": "1"} if watermark else {}),
            },
        )

    def _file_entry(self, dto: dict[str, Any]) -> Entry:
        file_id = dto["id"]
        size = int(dto.get("pureContentLength") or 0)
        version = int(dto.get("version") or 1)
        group = int(dto.get("versionGroup") or version)
        security = dto.get("security") or {}
        root_type = dto.get("rootFolderType")
        read_only = root_type in READ_ONLY_ROOTS
        ops: set[Op] = set()
        if not read_only:
            # the comment, a file's one writable key, needs EditHistory (UpdateCommentAsync),
            # which a room's editors lack although they have Edit (FileSecurity.cs)
            if security.get("EditHistory"):
                ops.add(Op.SET_META)
            if security.get("Edit") and survives_save(str(dto.get("title", ""))):
                ops.add(Op.REPLACE)
            if security.get("Rename"):
                ops.add(Op.RENAME)
            if security.get("Delete"):
                ops.add(Op.REMOVE)
        meta = {
            "id": str(file_id),
            "version": str(version),
            "version_group": str(group),
            "comment": str(dto.get("comment") or ""),
        }
        if dto.get("webUrl"):
            meta["web_url"] = str(dto["webUrl"])
        if dto.get("locked"):
            meta["locked_by"] = str(dto.get("lockedBy") or "")
        self._common_meta(meta, dto)
        thumbnail = None
        if dto.get("thumbnailStatus") == THUMBNAIL_CREATED and dto.get("thumbnailUrl"):
            # the builder made one and the listing says so (FileDto.cs): fetched by id/version
            thumbnail = f"{file_id}:{version}"
        return Entry(
            id=f"f{file_id}",
            name=str(dto.get("title", "")),
            kind=Kind.FILE,
            size=size,
            mtime=parse_date(dto.get("updated")),
            version=f"{version}.{group}.{size}",
            meta=meta,
            read_only=read_only,
            ops=frozenset(ops),
            extra={
                "kind": "file",
                "file_id": str(file_id),
                "parent": f"d{dto.get('folderId')}",
                "version": str(version),
                "in_trash": "1" if root_type == FT_TRASH else "0",
            },
            thumbnail=thumbnail,
        )

    @staticmethod
    def _common_meta(meta: dict[str, str], dto: dict[str, Any]) -> None:
        if dto.get("created"):
            meta["created"] = str(dto["created"])
        for key, name in (("createdBy", "created_by"), ("updatedBy", "updated_by")):
            person = dto.get(key)
            if isinstance(person, dict) and person.get("displayName"):
                meta[name] = str(person["displayName"])

    @staticmethod
    def _raw_id(entry: Entry) -> str:
        # from ``extra`` first: an earlier version's entry has an id of its own (searching.py)
        return entry.extra.get("file_id") or entry.extra.get("folder_id") or entry.id[1:]

    async def _retitle(self, entry: Entry, title: str) -> Entry:
        item = self._raw_id(entry)
        kind = entry.extra.get("kind")
        if entry.kind is Kind.FILE:
            dto = await self._call(
                "PUT", f"{API}/files/file/{item}", endpoint="rename", json={"title": title}
            )
            return self._file_entry(dto)
        path = f"{API}/files/rooms/{item}" if kind == "room" else f"{API}/files/folder/{item}"
        dto = await self._call("PUT", path, endpoint="rename", json={"title": title})
        return self._folder_entry(dto)

    async def _look(self, exc: errors.DocfsError, check: Callable[[], Awaitable[T]]) -> T | None:
        """``check`` whether a request that failed with ``exc`` took effect after all.

        An error status is the server's last word: one look. Without an answer (a reset, a
        timeout) the request may still be on its way or being processed: "not there yet"
        is not "absent", so it looks again a few times, further apart, before concluding.
        """
        delays = (0.0,) if exc.status is not None else LOOK_AGAIN
        for delay in delays:
            await trio.sleep(delay)
            found = await check()
            if found:
                return found
        return None
