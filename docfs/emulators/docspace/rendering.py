"""The JSON the DocSpace API answers with: FileDto, FolderDto, listings, operations, API keys,
the success and error envelopes, and the ``fields=`` trimming.
"""

from __future__ import annotations

import json
import secrets
import urllib.parse
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from docfs.emulators.docspace.model import (
    FT_TRASH,
    READ,
    ApiError,
    ApiKey,
    FileObj,
    FolderObj,
    Operation,
    UploadSession,
    User,
    Version,
    file_type,
    format_date,
    size_string,
)
from docfs.emulators.docspace.state import Ctx, Void
from docfs.emulators.docspace.tree import Tree

#: keys a ``fields=`` trimmed FolderContentDto keeps so that paging still works (our choice)
_ALWAYS_KEPT = frozenset({"startindex", "count", "total"})


def trim_fields(payload: Any, fields: str) -> Any:
    """DynamicIgnoreConverter: ``fields=files.id,files.title,folders.id`` (one nesting level)."""
    top: set[str] = set()
    nested: dict[str, set[str]] = {}
    for item in fields.split(","):
        head, _, rest = item.strip().partition(".")
        if not head:
            continue
        if rest:
            nested.setdefault(head.lower(), set()).add(rest.lower())
        else:
            top.add(head.lower())

    def keep(obj: Any, wanted: set[str]) -> Any:
        if isinstance(obj, list):
            return [keep(o, wanted) for o in obj]
        if isinstance(obj, dict) and wanted:
            return {k: v for k, v in obj.items() if k.lower() in wanted}
        return obj

    if isinstance(payload, list):
        return keep(payload, top)
    if not isinstance(payload, dict):
        return payload
    out: dict[str, Any] = {}
    for key, value in payload.items():
        low = key.lower()
        if low in nested:
            out[key] = keep(value, nested[low])
        elif low in top or low in _ALWAYS_KEPT:
            out[key] = value
    return out


class Rendering(Tree):
    """DTOs and envelopes: how the portal's state looks on the wire."""

    def _thumbnail_fields(self, ctx: Ctx, file: FileObj, chosen: Version) -> dict[str, Any]:
        """``thumbnailStatus`` and, when Created, ``thumbnailUrl`` (``FileDto.cs``)."""
        thumb = file.thumbnail
        if thumb is not None and thumb[0] == chosen.number:
            hash_ = abs(hash(self._date(max(file.created, file.modified)))) % (1 << 31)
            return {
                "thumbnailStatus": 1,
                "thumbnailUrl": f"{ctx.base}/filehandler.ashx?action=thumb&fileid={file.id}"
                f"&version={chosen.number}&hash={hash_}",
            }
        # Waiting until the builder has run, NotRequired for what it never makes
        return {"thumbnailStatus": 0 if self._thumbnail_wanted(file) else 3}

    def _date(self, stamp: float) -> str:
        return format_date(stamp, self.tz_offset_minutes)

    def _employee(self, uid: str, base: str) -> dict[str, Any]:
        user = self.users.get(uid)
        name = user.display_name if user else "Administrator"
        avatar = "/static/images/default_user_photo_size_82-82.png"
        return {
            "id": uid or "00000000-0000-0000-0000-000000000000",
            "displayName": name,
            "avatar": avatar,
            "avatarOriginal": avatar,
            "avatarMax": avatar,
            "avatarMedium": avatar,
            "avatarSmall": avatar,
            "profileUrl": f"{base}/accounts/people/filter?search={urllib.parse.quote(name)}",
            "hasAvatar": False,
            "isAnonim": False,
        }

    def _common(
        self, user: User | None, base: str, folder_id: int, created: float, modified: float
    ) -> dict[str, Any]:
        root = self._root_of(folder_id)
        return {
            "access": self._fileshare(user, folder_id),
            "shared": False,
            "sharedForUser": False,
            "parentShared": False,
            "created": self._date(created),
            # the getter clamps: updated is never earlier than created
            "updated": self._date(max(created, modified)),
            "rootFolderType": root.folder_type,
            "rootFolderId": root.id,
            "isFavorite": False,
            "canShare": False,
        }

    def _file_dto(self, ctx: Ctx, file: FileObj, version: Version | None = None) -> dict[str, Any]:
        chosen = version or file.current
        size = chosen.content.size
        view_url = f"{ctx.base}/filehandler.ashx?action=download&fileid={file.id}"
        if version is not None and version is not file.current:
            view_url += f"&version={version.number}"
        kind = file_type(file.title)
        dto: dict[str, Any] = {
            "folderId": file.folder_id,
            "version": chosen.number,
            "versionGroup": chosen.group,
            "contentLength": size_string(size),
            "fileStatus": 4 if file.converting_until is not None else (1 if file.editing else 0),
            "mute": False,
            "viewUrl": view_url,
            "webUrl": (
                f"{ctx.base}/doceditor?fileid={file.id}&version={chosen.number}"
                if kind in (5, 6, 7, 10)
                else view_url
            ),
            "fileType": kind,
            "fileExst": file.ext,
            "comment": chosen.comment,
            **self._thumbnail_fields(ctx, file, chosen),
            "encrypted": False,
            "id": file.id,
            "title": file.title,
            "security": self._file_security(ctx.user, file),
            "createdBy": self._employee(file.created_by, ctx.base),
            "updatedBy": self._employee(chosen.author, ctx.base),
            "fileEntryType": 2,
        }
        if size:
            # NullIfDefault: a 0-byte file has no pureContentLength at all
            dto["pureContentLength"] = size
        if file.locked_by is not None:
            dto["locked"] = True
            dto["lockedBy"] = self._employee(file.locked_by, ctx.base)["displayName"]
        common = self._common(ctx.user, ctx.base, file.folder_id, file.created, chosen.created)
        if version is None:
            common["updated"] = self._date(max(file.created, file.modified))
        dto.update(common)
        self._add_origin(dto, file.folder_id, file.origin_folder_id)
        return dto

    def _add_origin(self, dto: dict[str, Any], folder_id: int, origin: int | None) -> None:
        """Trash context: where a deleted item came from."""
        if origin is None or self._root_of(folder_id).folder_type != FT_TRASH:
            return
        source = self.folders.get(origin)
        if source is not None:
            dto["originId"] = source.id
            dto["originTitle"] = source.title
            room = self._room_of(source.id)
            if room is not None:
                dto["originRoomId"] = room.id
                dto["originRoomTitle"] = room.title

    def _folder_dto(self, ctx: Ctx, folder: FolderObj) -> dict[str, Any]:
        user = ctx.user
        subfolders = [s for s in self._subfolders(folder.id) if self._level(user, s.id) >= READ]
        dto: dict[str, Any] = {
            "parentId": folder.parent_id or 0,
            "filesCount": len(self._files_in(folder.id)),
            "foldersCount": len(subfolders),
            "isShareable": folder.room_type is not None,
            "new": 0,
            "mute": False,
            "pinned": False,
            "private": False,
            "indexing": False,
            "denyDownload": folder.deny_download,
            "type": folder.folder_type,
            "inRoom": self._room_of(folder.id) is not None,
            "id": folder.id,
            "title": folder.title,
            "security": self._folder_security(user, folder),
            "createdBy": self._employee(folder.created_by, ctx.base),
            "updatedBy": self._employee(folder.modified_by, ctx.base),
            "fileEntryType": 1,
        }
        if folder.room_type is not None:
            dto["roomType"] = folder.room_type
            if folder.watermark is not None:
                # WatermarkDtoHelper: present only on rooms that have one (nulls are omitted)
                dto["watermark"] = {"additions": 1, "text": folder.watermark, "rotate": -45}
            dto["tags"] = []
            folders_in, files_in = self._by_parent(converting=True)
            dto["usedSpace"] = sum(
                f.current.content.size
                for sub in self._subtree(folder, folders_in)
                for f in files_in.get(sub.id, ())
            )
        dto.update(self._common(user, ctx.base, folder.id, folder.created, folder.modified))
        self._add_origin(dto, folder.id, folder.origin_folder_id)
        return dto

    def _path_parts(self, folder: FolderObj) -> list[dict[str, Any]]:
        parts = []
        for item in self._chain(folder.id):
            part: dict[str, Any] = {"id": item.id, "title": item.title}
            if item.room_type is not None:
                part["roomType"] = item.room_type
            part["folderType"] = item.folder_type
            parts.append(part)
        return parts

    def _content_dto(
        self,
        ctx: Ctx,
        folder: FolderObj,
        folders: list[FolderObj],
        files: list[FileObj],
        start: int,
        count: int,
    ) -> dict[str, Any]:
        """FolderContentDto: one page of ``folders + files`` (folders first, §4.3)."""
        entries: list[FolderObj | FileObj] = [*folders, *files]
        page = entries[start : start + count]
        return {
            "files": [self._file_dto(ctx, e) for e in page if isinstance(e, FileObj)],
            "folders": [self._folder_dto(ctx, e) for e in page if isinstance(e, FolderObj)],
            "current": self._folder_dto(ctx, folder),
            "pathParts": self._path_parts(folder),
            "startIndex": start,
            "count": len(page),
            "total": len(entries),
            "new": 0,
        }

    def _session_data(self, ctx: Ctx, session: UploadSession) -> dict[str, Any]:
        return {
            "id": session.id,
            "path": [f.id for f in self._chain(session.folder_id)],
            "created": self._date(session.created),
            "expired": self._date(session.touched + self.session_ttl),
            "location": f"{ctx.base}/ChunkedUploader.ashx?uid={session.id}",
            "bytes_total": session.total,
        }

    def _op_dto(self, op: Operation) -> dict[str, Any]:
        if op.finished:
            progress = 100
        else:
            elapsed = self.now() - (op.due - self.operation_delay)
            progress = min(99, int(100 * elapsed / self.operation_delay))
        return {
            "id": op.id,
            "Operation": op.kind,
            "progress": max(0, progress),
            "error": op.error,
            "processed": str(len(op.files) + len(op.folders) if op.finished else 0),
            "finished": op.finished,
            "status": op.status,
        }

    @staticmethod
    def _json(body: Any, status: int, headers: dict[str, str] | None = None) -> Response:
        data = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
        return Response(data, status, headers, media_type="application/json; charset=utf-8")

    def _envelope(self, request: Request, payload: Any, status: int = 200) -> Response:
        """SuccessApiResponse (§2.1)."""
        body: dict[str, Any] = {}
        if isinstance(payload, Void) or payload is None:
            count = 0
        else:
            body["response"] = payload
            count = len(payload) if isinstance(payload, list) else 1
        body["count"] = count
        body["links"] = [{"href": str(request.url), "action": request.method}]
        body["status"] = 0
        body["statusCode"] = status
        return self._json(body, status)

    def _error_response(self, exc: ApiError) -> Response:
        """CustomExceptionHandler (§2.2)."""
        error: dict[str, Any] = {"message": exc.message}
        if exc.detailed:
            error["type"] = exc.kind
            error["stack"] = f"   at {exc.kind}..ctor()\n   at ASC.Api.Core.Emulated()"
            error["hresult"] = -2146233088
        return self._json({"error": error, "status": 1, "statusCode": exc.status}, exc.status)

    def _validation_response(self, request: Request, errors: dict[str, list[str]]) -> Response:
        """CustomResponseFilterAttribute: HTTP 400, success-shaped, ``status: 1`` (§2.3)."""
        problem = {
            "type": "https://tools.ietf.org/html/rfc9110#section-15.5.1",
            "title": "One or more validation errors occurred.",
            "status": 400,
            "errors": errors,
            "traceId": f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-00",
        }
        body = {
            "response": problem,
            "count": 1,
            "links": [{"href": str(request.url), "action": request.method}],
            "status": 1,
            "statusCode": 400,
        }
        return self._json(body, 400)

    def _key_dto(self, key: ApiKey, with_key: bool) -> dict[str, Any]:
        dto: dict[str, Any] = {
            "id": key.id,
            "name": key.name,
            "permissions": list(key.scopes),
            "createOn": self._date(key.created),
            "isActive": True,
        }
        if key.expires is not None:
            dto["expiresAt"] = self._date(key.expires)
        if with_key:
            # the key string is shown only once, in the create answer
            dto["key"] = key.key
        else:
            dto["key"] = key.key[:6] + "****"
        return dto
