"""What every group of Opus 2 handlers shares: project, document and folder lookups that answer
403/404, the administrator check, ids in JSON bodies, ``afterDate``, and reading uploads."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request

from docfs.emulators.opus2.backdoor import Backdoor
from docfs.emulators.opus2.model import Document, Folder, Project, Team, User
from docfs.emulators.opus2.parsing import Part, parse_multipart
from docfs.emulators.opus2.wire import READ_WRITE, ApiError


class Handlers(Backdoor):
    """Base of the route groups (``people``, ``projects``, ``folders``, ``documents``)."""

    def _project(self, project_id: str, user: User, *, write: bool = False) -> Project:
        project = self._projects.get(project_id)
        if project is None:
            raise ApiError(404, "Project not found")
        access = self._access(project, user)
        if access is None:
            raise ApiError(403, "You do not have access to this project")
        if write and access != READ_WRITE:
            raise ApiError(403, "You do not have permission to modify this project")
        return project

    def _document(self, project: Project, document_id: str) -> Document:
        doc = self._documents.get(document_id)
        if doc is None or doc.project_id != project.id:
            raise ApiError(404, "Document not found")
        return doc

    def _folder(self, project: Project, folder_id: str) -> Folder:
        folder = self._folders.get(folder_id)
        if folder is None or folder.project_id != project.id:
            raise ApiError(404, "Folder not found")
        return folder

    @staticmethod
    def _require_admin(user: User) -> None:
        if not user.admin:
            raise ApiError(403, "You do not have permission to perform this operation")

    def _json_id(self, value: Any, key: str, *, optional: bool = False) -> str | None:
        """An id from a JSON body: a number or a string as the profile says, else 400."""
        if value is None and optional:
            return None
        wanted: type = int if self.profile.numeric_ids else str
        if isinstance(value, bool) or not isinstance(value, wanted):
            raise ApiError(400, f"Invalid JSON type for {key}")
        return str(value)

    def _after(self, request: Request) -> float | None:
        raw = request.query_params.get("afterDate")
        if raw is None:
            return None
        try:
            stamp = datetime.strptime(raw, self.profile.date_format).replace(tzinfo=UTC)
        except ValueError:
            raise ApiError(
                400, "Invalid timestamp format. Use format yyyy-MM-ddTHH:mm:ssZ"
            ) from None
        return stamp.timestamp()

    def _team(self, request: Request) -> Team:
        team = self._teams.get(request.path_params["teamId"])
        if team is None:
            raise ApiError(404, "Team not found")
        return team

    def _user_param(self, request: Request) -> User:
        try:
            return self._user_ref(request.path_params["email"])  # already percent-decoded
        except KeyError:
            raise ApiError(404, "User not found") from None

    async def _upload(self, request: Request) -> tuple[str, Part, dict[str, Part]]:
        """The document name, the file part and all parts of an upload (400 if malformed)."""
        parts = parse_multipart(request.headers.get("content-type", ""), await request.body())
        part = parts.get(self.profile.upload_file_part)
        if part is None or part.filename is None:
            raise ApiError(400, f"Missing file part '{self.profile.upload_file_part}'")
        if not part.filename.strip() or "/" in part.filename:
            raise ApiError(400, "Invalid document name")
        return part.filename, part, parts
