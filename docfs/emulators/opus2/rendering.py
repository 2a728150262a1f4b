"""Opus 2's answers: the JSON of users, tokens, projects, folders, documents and fields in the
wire profile's id and date formats, the profile's page envelope, and download bodies."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from docfs.emulators.opus2.model import Document, Field, Folder, Model, Project, Token, User
from docfs.emulators.opus2.parsing import int_query
from docfs.emulators.opus2.wire import CHUNK


class Rendering(Model):
    """JSON shapes of the tenant's objects (callers hold the lock)."""

    def _oid(self, value: str | None) -> str | int | None:
        if value is None:
            return None
        return int(value) if self.profile.numeric_ids else value

    def _stamp(self, when: float) -> str:
        return self.profile.format_date(when)

    def _user_json(self, user: User) -> dict[str, Any]:
        return {
            "id": self._oid(user.id),
            "email": user.email,
            "name": user.name,
            "roleId": user.role_id,
            "createdAt": self._stamp(user.created_at),
        }

    def _token_json(self, token: Token) -> dict[str, Any]:
        return {
            "id": self._oid(token.id),
            "name": token.name,
            "userId": self._oid(token.user_id),
            "createdAt": self._stamp(token.created_at),
            "expiresAt": self._stamp(token.expires_at) if token.expires_at is not None else None,
        }

    def _project_json(self, project: Project, user: User) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": self._oid(project.id),
            "name": project.name,
            "templateId": project.template_id,
            "downloadViaApi": project.download_via_api,
            "createdAt": self._stamp(project.created_at),
            "updatedAt": self._stamp(project.updated_at),
        }
        if self.profile.access_key:
            data[self.profile.access_key] = self._access(project, user)
        return data

    def _folder_json(self, folder: Folder) -> dict[str, Any]:
        return {
            "id": self._oid(folder.id),
            "name": folder.name,
            "parentId": self._oid(folder.parent_id),
            "path": self._folder_path(folder),
            "createdAt": self._stamp(folder.created_at),
            "updatedAt": self._stamp(folder.updated_at),
        }

    def _doc_json(self, doc: Document) -> dict[str, Any]:
        project = self._projects[doc.project_id]
        version = doc.current
        return {
            "id": self._oid(doc.id),
            "name": doc.name,
            "folderId": self._oid(doc.folder_id),
            "size": len(version.data),
            "mimeType": doc.mime_type,
            "version": version.number,
            "versionId": self._oid(version.id),
            "checksum": version.checksum,
            "createdAt": self._stamp(doc.created_at),
            "updatedAt": self._stamp(doc.updated_at),
            "fields": [
                {"fieldId": self._oid(f.id), "name": f.name, "value": doc.values.get(f.id)}
                for f in project.fields.values()
            ],
        }

    def _field_json(self, definition: Field) -> dict[str, Any]:
        data: dict[str, Any] = {
            "fieldId": self._oid(definition.id),
            "name": definition.name,
            "type": definition.type,
        }
        if definition.type == "choice":
            data["choices"] = list(definition.choices)
        return data

    def _paged(self, request: Request, items: list[dict[str, Any]]) -> Response:
        profile = self.profile
        query = request.query_params
        size = min(
            int_query(query, profile.size_param, profile.default_page_size, 1),
            profile.max_page_size,
        )
        if profile.paging == "page":
            page = int_query(query, profile.page_param, profile.first_page, profile.first_page)
            start = (page - profile.first_page) * size
            position = page
        else:
            start = position = int_query(query, profile.page_param, 0, 0)
        body: dict[str, Any] = {
            profile.items_key: items[start : start + size],
            profile.page_param: position,
            profile.size_param: size,
        }
        if profile.total_key:
            body[profile.total_key] = len(items)
        return JSONResponse(body)


async def body_chunks(data: bytes, start: int, stop: int) -> AsyncIterator[bytes]:
    # ~64 KiB pieces, so a planned reset can cut a large body in the middle
    view = memoryview(data)
    for offset in range(start, stop, CHUNK):
        yield bytes(view[offset : min(stop, offset + CHUNK)])
