"""Opus 2's folders routes: listing, lookup by name or path, creation, and deletion (with the
wire profile's status for a folder that is not empty)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from docfs.emulators.opus2.handlers import Handlers
from docfs.emulators.opus2.model import User
from docfs.emulators.opus2.parsing import json_object
from docfs.emulators.opus2.wire import ApiError


class FolderRoutes(Handlers):
    """Folders."""

    async def _h_folders(self, request: Request, user: User) -> Response:
        with self._state:
            project = self._project(request.path_params["projectId"], user)
            folders = self._sorted_folders(project.id)
            return self._paged(request, [self._folder_json(f) for f in folders])

    async def _h_folder_by_name(self, request: Request, user: User) -> Response:
        name = request.path_params["name"].rstrip("/")
        with self._state:
            project = self._project(request.path_params["projectId"], user)
            folders = self._sorted_folders(project.id)
            if "/" in name:
                wanted = "/" + name.strip("/")
                found = next((f for f in folders if self._folder_path(f) == wanted), None)
            else:
                found = next((f for f in folders if f.name == name), None)
            if found is None:
                raise ApiError(404, "Folder not found")
            return JSONResponse(self._folder_json(found))

    async def _h_folder_add(self, request: Request, user: User) -> Response:
        data = await json_object(request)
        name = data.get("name")
        if not isinstance(name, str) or not name.strip():
            raise ApiError(400, "name is required")
        with self._state:
            project = self._project(request.path_params["projectId"], user, write=True)
            parent = self._json_id(data.get("parentId"), "parentId", optional=True)
            folder = self._create_folder(project, name, parent)
            return JSONResponse(self._folder_json(folder), 201)

    async def _h_folder_delete(self, request: Request, user: User) -> Response:
        with self._state:
            project = self._project(request.path_params["projectId"], user, write=True)
            folder = self._folder(project, request.path_params["folderId"])
            busy = any(f.parent_id == folder.id for f in self._folders.values()) or any(
                d.folder_id == folder.id for d in self._documents.values()
            )
            if busy:
                # undocumented by the vendor (its only 409 is "You cannot delete the only
                # version of a document"): the status is the wire profile's guess
                raise ApiError(self.profile.folder_not_empty_status, "Folder is not empty")
            answer = self._folder_json(folder)
            del self._folders[folder.id]
            return JSONResponse(answer)
