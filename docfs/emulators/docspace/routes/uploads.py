"""Handlers for uploads: ``/upload``, ``/insert``, chunked sessions (``ChunkedUploader.ashx`` and
the 3.7 REST ``/session`` routes), ``edit_session`` and ``saveediting``
(``docs/protocols/docspace.md`` §6, §7).
"""

from __future__ import annotations

from typing import Any

import anyio
from starlette.requests import Request
from starlette.responses import Response

from docfs.emulators.docspace.model import (
    ApiError,
    BytesContent,
    ChunkError,
    ChunkRecord,
    FileObj,
    FolderObj,
    KiB,
    UploadSession,
    User,
    ValidationFailed,
    argument_error,
    not_found,
    quota_error,
    saved_title,
)
from docfs.emulators.docspace.routes.base import Dispatch
from docfs.emulators.docspace.state import VOID, Created, Ctx
from docfs.emulators.docspace.wire import (
    Part,
    as_bool,
    as_int,
    lookup,
    numbered_chunk_length,
    parse_multipart,
)


class UploadRoutes(Dispatch):
    """Uploads of every kind, and ``ChunkedUploader.ashx``."""

    async def _multipart(self, ctx: Ctx) -> list[Part]:
        length = int(ctx.request.headers.get("content-length") or 0)
        if length > self.max_upload_size + 64 * KiB:
            # the body is refused before it is read: over the non-chunked cap (§6.1)
            raise quota_error("The file exceeds the maximum upload size")
        body = await ctx.request.body()
        return parse_multipart(body, ctx.request.headers.get("content-type", ""))

    @staticmethod
    def _file_part(parts: list[Part], *names: str) -> Part | None:
        """The binder takes the named part if present, else the first part with a file name."""
        for part in parts:
            if part.name.lower() in names and part.filename is not None:
                return part
        return next((p for p in parts if p.filename is not None), None)

    async def _h_upload(self, ctx: Ctx) -> Any:
        parts = await self._multipart(ctx)
        part = self._file_part(parts, "file")
        if part is None:
            raise argument_error("No file was sent")
        if not part.data:
            # a 0-byte part is refused (docs/protocols/docspace.md, "Emulator choices")
            raise argument_error("Empty file")
        if len(part.data) > self.max_upload_size:
            raise quota_error("The file exceeds the maximum upload size")
        create_new = as_bool(ctx.request.query_params.get("createNewIfExist"))
        user = ctx.need_user()
        with self._state:
            folder = self._folder_ref(ctx, ctx.request.path_params["folderId"])
            self._require_read(user, folder.id)
            self._upload_target(user, folder)
            title = part.filename or "file"
            file = self._store_upload(
                user, folder, title, BytesContent(part.data), create_new, convert=True
            )
            return [self._file_dto(ctx, file)]

    async def _h_insert(self, ctx: Ctx) -> Any:
        content_type = ctx.request.headers.get("content-type", "")
        q = ctx.request.query_params
        title = q.get("title")
        create_new = as_bool(q.get("createNewIfExist"))
        if content_type.startswith("multipart/"):
            parts = await self._multipart(ctx)
            fields = {p.name.lower(): p.data.decode("utf-8", "replace") for p in parts}
            part = self._file_part(parts, "file", "stream")
            if part is None:
                raise argument_error("No file was sent")
            data = part.data
            title = fields.get("title") or title or part.filename
            create_new = as_bool(fields.get("createnewifexist"), create_new)
        else:
            data = await ctx.request.body()
        if not title:
            raise ValidationFailed({"title": ["The title field is required."]})
        if len(data) > self.max_upload_size:
            raise quota_error("The file exceeds the maximum upload size")
        user = ctx.need_user()
        with self._state:
            folder = self._folder_ref(ctx, ctx.request.path_params["folderId"])
            self._require_read(user, folder.id)
            self._upload_target(user, folder)
            file = self._store_upload(
                user, folder, title, BytesContent(data), create_new, convert=True
            )
            return self._file_dto(ctx, file)

    async def _session_request(self, ctx: Ctx) -> tuple[User, FolderObj, str, int, bool]:
        body = await self._body(ctx)
        name = lookup(body, "fileName")
        if not isinstance(name, str) or not name.strip():
            raise ValidationFailed({"fileName": ["The fileName field is required."]})
        size = as_int(lookup(body, "fileSize", 0), "fileSize")
        user = ctx.need_user()
        with self._state:
            folder = self._folder_ref(ctx, ctx.request.path_params["folderId"])
            self._require_read(user, folder.id)
            self._upload_target(user, folder)
        return user, folder, name, size, as_bool(lookup(body, "createNewIfExist"))

    async def _h_create_session(self, ctx: Ctx) -> Any:
        user, folder, name, size, create_new = await self._session_request(ctx)
        with self._state:
            session = self._new_session(user, folder, name, size, create_new)
            # double wrapped: response.success/data (§6.4a)
            return {"success": True, "data": self._session_data(ctx, session)}

    async def _h_edit_session(self, ctx: Ctx) -> Any:
        size_text = ctx.request.query_params.get("fileSize")
        if size_text is None:
            raise ValidationFailed({"fileSize": ["The fileSize field is required."]})
        size = as_int(size_text, "fileSize")
        keep = as_bool(ctx.request.query_params.get("keepVersion"))
        user = ctx.need_user()
        with self._state:
            file = self._file_ref(ctx)
            refusal = self._edit_refusal(user, file)
            if refusal is not None:
                raise refusal
            folder = self.folders[file.folder_id]
            session = self._new_session(user, folder, file.title, size, False, file_id=file.id)
            session.keep_version = keep
            return {"success": True, "data": self._session_data(ctx, session)}

    async def _h_save_editing(self, ctx: Ctx) -> Any:
        parts = await self._multipart(ctx)
        fields = {p.name.lower(): p.data.decode("utf-8", "replace") for p in parts}
        part = self._file_part(parts, "file")
        if part is None:
            raise argument_error("No file was sent")
        user = ctx.need_user()
        with self._state:
            file = self._file_ref(ctx)
            refusal = self._edit_refusal(user, file)
            if refusal is not None and not (file.editing and as_bool(fields.get("forcesave"))):
                raise refusal
            self._push_version(file, BytesContent(part.data), user.id, "Edited")
            file.title = saved_title(file.title)  # FileDao.SaveFileAsync re-titles every save
            return self._file_dto(ctx, file)

    def _rest_guard(self) -> None:
        """The REST session routes exist from server 3.7.0 on (§6.4b)."""
        if self.server_version < (3, 7, 0):
            raise not_found("Not found")

    async def _h_rest_session(self, ctx: Ctx) -> Any:
        self._rest_guard()
        user, folder, name, size, create_new = await self._session_request(ctx)
        with self._state:
            return self._session_data(ctx, self._new_session(user, folder, name, size, create_new))

    def _rest_session_of(self, ctx: Ctx) -> UploadSession:
        folder = self._folder_ref(ctx, ctx.request.path_params["folderId"])
        try:
            session = self._session_of(ctx.user, ctx.request.path_params["sid"])
        except ChunkError:
            raise not_found("The upload session could not be found or has expired") from None
        if session.folder_id != folder.id:
            raise not_found("The upload session could not be found or has expired")
        return session

    async def _rest_chunk(self, ctx: Ctx, numbered: bool) -> Any:
        self._rest_guard()
        parts = await self._multipart(ctx)
        part = self._file_part(parts, "file")
        if part is None:
            raise argument_error("No file was sent")
        number = None
        if numbered:
            number = as_int(ctx.request.query_params.get("chunkNumber", ""), "chunkNumber")
        with self._state:
            session = self._rest_session_of(ctx)
            file = self._put_chunk(session, number, part.data)
            if file is None:
                return self._session_data(ctx, session)
            return Created(self._upload_result(ctx, file, snake=False))

    async def _h_rest_chunk(self, ctx: Ctx) -> Any:
        return await self._rest_chunk(ctx, numbered=False)

    async def _h_rest_numbered(self, ctx: Ctx) -> Any:
        return await self._rest_chunk(ctx, numbered=True)

    async def _h_rest_finalize(self, ctx: Ctx) -> Any:
        self._rest_guard()
        with self._state:
            session = self._rest_session_of(ctx)
            return Created(self._upload_result(ctx, self._commit(session), snake=False))

    async def _h_rest_abort(self, ctx: Ctx) -> Any:
        self._rest_guard()
        with self._state:
            session = self._rest_session_of(ctx)
            del self._sessions[session.id]
            return VOID

    async def _h_chunk(self, request: Request) -> Response:
        """Not in the envelope; errors are HTTP 200 with ``success: false`` (§6.4a)."""
        q = request.query_params
        headers = {k.lower(): v for k, v in request.headers.items()}
        body = await request.body()
        if self.save_delay and not as_bool(q.get("upload")) and not as_bool(q.get("abort")):
            # a slow store: the request is received and is saved later, whether or not the
            # client is still waiting for the answer (the server does not undo it)
            await anyio.sleep(self.save_delay)
        with self._state:
            self._advance()
            principal = self._authenticate(headers, dict(request.cookies))
            ctx = Ctx(request, principal, str(request.base_url).rstrip("/"))
            try:
                session = self._session_of(ctx.user, q.get("uid", ""))
                if as_bool(q.get("abort")):
                    del self._sessions[session.id]
                    return self._chunk_answer(True, {})
                if as_bool(q.get("finalize")):
                    file: FileObj | None = self._commit(session)
                else:
                    parts = parse_multipart(body, headers.get("content-type", ""))
                    part = self._file_part(parts, "file")
                    if part is None:
                        raise ChunkError("No file was sent")
                    number = None
                    length = None
                    if as_bool(q.get("upload")):
                        # ChunkedRequestType.UploadAsync: the length is computed, not measured
                        if q.get("chunkNumber"):
                            number = as_int(q.get("chunkNumber"), "chunkNumber")
                        length = numbered_chunk_length(
                            int(headers.get("content-length") or len(body)),
                            headers.get("content-type", ""),
                            parts[0],
                        )
                    self._chunks.append(ChunkRecord(session.id, number, len(part.data)))
                    file = self._put_chunk(session, number, part.data, length)
            except (ChunkError, ApiError) as exc:
                return self._chunk_answer(False, None, str(exc))
            except ValidationFailed:
                return self._chunk_answer(False, None, "Invalid chunk number")
            if file is None:
                return self._chunk_answer(True, self._session_data(ctx, session))
            return self._chunk_answer(True, self._upload_result(ctx, file, snake=True), status=201)

    def _chunk_answer(
        self, success: bool, data: Any, message: str = "", status: int = 200
    ) -> Response:
        body: dict[str, Any] = {"success": success}
        if data is not None:
            body["data"] = data
        body["message"] = message
        return self._json(body, status)
