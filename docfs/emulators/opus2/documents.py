"""Opus 2's documents routes: listings (``afterDate``, by folder), upload with
``rejectDuplicate``, replace, move, the profile's optional rename and delete, field values, and
the download route of the wire profile (ranges, the "Download docs via API" switch)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from docfs.emulators.opus2.handlers import Handlers
from docfs.emulators.opus2.model import User, coerce_value, content_checksum
from docfs.emulators.opus2.parsing import byte_range, json_object, rfc5987
from docfs.emulators.opus2.rendering import body_chunks
from docfs.emulators.opus2.wire import ApiError


class DocumentRoutes(Handlers):
    """Documents and their content."""

    async def _h_documents(self, request: Request, user: User) -> Response:
        after = self._after(request)
        with self._state:
            project = self._project(request.path_params["projectId"], user)
            docs = [
                self._doc_json(d)
                for d in self._sorted_docs(project.id)
                if after is None or d.updated_at > after
            ]
            return self._paged(request, docs)

    async def _h_folder_documents(self, request: Request, user: User) -> Response:
        after = self._after(request)
        with self._state:
            project = self._project(request.path_params["projectId"], user)
            folder = self._folder(project, request.path_params["folderId"])
            docs = [
                self._doc_json(d)
                for d in self._sorted_docs(project.id)
                if d.folder_id == folder.id and (after is None or d.updated_at > after)
            ]
            return self._paged(request, docs)

    async def _h_document(self, request: Request, user: User) -> Response:
        with self._state:
            project = self._project(request.path_params["projectId"], user)
            return JSONResponse(
                self._doc_json(self._document(project, request.path_params["documentId"]))
            )

    async def _h_document_add(self, request: Request, user: User) -> Response:
        name, part, parts = await self._upload(request)
        folder_part = parts.get(self.profile.upload_folder_part)
        folder_id = folder_part.data.decode().strip() if folder_part else ""
        reject = request.query_params.get("rejectDuplicate", "").lower() == "true"
        checksum = content_checksum(part.data)
        with self._state:
            project = self._project(request.path_params["projectId"], user, write=True)
            target = folder_id or None
            if target is not None:
                self._folder(project, target)
            if reject:
                for doc in self._sorted_docs(project.id):
                    same = doc.folder_id == target and doc.name == name
                    if same and doc.current.checksum == checksum:
                        raise ApiError(409, "Duplicate document", documentId=self._oid(doc.id))
            mime = part.headers.get("content-type")
            if mime == "application/octet-stream":
                mime = None
            doc = self._create_document(project, name, part.data, target, mime)
            return JSONResponse(self._doc_json(doc), 201)

    async def _h_replace(self, request: Request, user: User) -> Response:
        name, part, _ = await self._upload(request)
        rename = request.query_params.get("replaceName", "").lower() == "true"
        with self._state:
            project = self._project(request.path_params["projectId"], user, write=True)
            doc = self._document(project, request.path_params["documentId"])
            self._new_version(doc, part.data)
            if rename:
                doc.name = name
            return JSONResponse(self._doc_json(doc))

    async def _h_move(self, request: Request, user: User) -> Response:
        with self._state:
            project = self._project(request.path_params["projectId"], user, write=True)
            doc = self._document(project, request.path_params["documentId"])
            folder = self._folder(project, request.path_params["folderId"])
            doc.folder_id = folder.id
            doc.updated_at = self.now()
            return JSONResponse(self._doc_json(doc))

    async def _h_rename(self, request: Request, user: User) -> Response:
        data = await json_object(request)
        name = data.get("name")
        if not isinstance(name, str) or not name.strip() or "/" in name:
            raise ApiError(400, "Invalid document name")
        with self._state:
            project = self._project(request.path_params["projectId"], user, write=True)
            doc = self._document(project, request.path_params["documentId"])
            doc.name = name
            doc.updated_at = self.now()
            return JSONResponse(self._doc_json(doc))

    async def _h_document_delete(self, request: Request, user: User) -> Response:
        with self._state:
            project = self._project(request.path_params["projectId"], user, write=True)
            doc = self._document(project, request.path_params["documentId"])
            answer = self._doc_json(doc)
            del self._documents[doc.id]
            return JSONResponse(answer)

    async def _h_field_put(self, request: Request, user: User) -> Response:
        data = await json_object(request)
        if "value" not in data:
            raise ApiError(400, "value is required")
        with self._state:
            project = self._project(request.path_params["projectId"], user, write=True)
            doc = self._document(project, request.path_params["documentId"])
            definition = project.fields.get(request.path_params["fieldId"])
            if definition is None:
                raise ApiError(404, "Field not found")
            doc.values[definition.id] = coerce_value(definition, data["value"])
            doc.updated_at = self.now()
            return JSONResponse(self._doc_json(doc))

    async def _h_content(self, request: Request, user: User) -> Response:
        with self._state:
            project = self._project(request.path_params["projectId"], user)
            doc = self._document(project, request.path_params["documentId"])
            if not project.download_via_api:
                raise ApiError(
                    403, "Downloading documents via the API is disabled for this project"
                )
            data = doc.current.data
            headers = {
                "ETag": f'"{doc.current.id}"',
                "Content-Type": doc.mime_type,
                "Content-Disposition": f"attachment; filename*=UTF-8''{rfc5987(doc.name)}",
            }
        start, stop, status = 0, len(data), 200
        if self.profile.ranges:
            headers["Accept-Ranges"] = "bytes"
            wanted = request.headers.get("range")
            if wanted:
                start, stop, status = byte_range(wanted, len(data))
                if status == 206:
                    headers["Content-Range"] = f"bytes {start}-{stop - 1}/{len(data)}"
        headers["Content-Length"] = str(stop - start)
        if request.method == "HEAD":
            return Response(status_code=status, headers=headers)
        return StreamingResponse(
            body_chunks(data, start, stop), status_code=status, headers=headers
        )
