"""Opus 2's route table and the code every request passes through: the length rule, token
authentication (``X-API-Token`` or the profile's header, or a bearer token), the system API
switch, the per-token rate limiter, and the API's JSON error body for every failure including
Starlette's own 404 and 405."""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Awaitable, Callable

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from docfs.emulators.opus2.documents import DocumentRoutes
from docfs.emulators.opus2.folders import FolderRoutes
from docfs.emulators.opus2.model import Token, User
from docfs.emulators.opus2.parsing import require_length
from docfs.emulators.opus2.people import PeopleRoutes
from docfs.emulators.opus2.projects import ProjectRoutes
from docfs.emulators.opus2.wire import ApiError

Handler = Callable[[Request, User], Awaitable[Response]]


class Routes(PeopleRoutes, ProjectRoutes, FolderRoutes, DocumentRoutes):
    """Every route group, the table that maps requests to them, and the request pipeline."""

    def routes(self) -> list[BaseRoute]:
        prefix = ("/" + self.profile.path_prefix.strip("/")).rstrip("/")
        p = "/projects/{projectId}"
        d = p + "/documents/{documentId}"
        update = ["POST", "PATCH"]
        table: list[tuple[str, Handler, list[str]]] = [
            ("/tokens", self._h_tokens, ["GET"]),
            ("/tokens", self._h_token_add, ["POST"]),
            ("/tokens", self._h_token_delete, ["DELETE"]),
            ("/roles", self._h_roles, ["GET"]),
            ("/users", self._h_users, ["GET"]),
            ("/users", self._h_users_add, ["POST"]),
            ("/user/id/{userId}", self._h_user_by_id, ["GET"]),
            ("/user/byemail", self._h_user_by_email, ["GET"]),
            ("/teams", self._h_teams, ["GET"]),
            ("/teams/{teamId}/users", self._h_team_users, ["GET"]),
            ("/teams/{teamId}/users/{email}", self._h_team_user_add, ["PUT"]),
            ("/teams/{teamId}/users/{email}", self._h_team_user_remove, ["DELETE"]),
            ("/templates", self._h_templates, ["GET"]),
            ("/projects", self._h_projects, ["GET"]),
            ("/projects", self._h_project_add, ["POST"]),
            (p, self._h_project, ["GET"]),
            (p + "/", self._h_project, ["GET"]),
            (p + "/teams", self._h_project_teams, ["GET"]),
            (p + "/teams/{teamId}", self._h_project_team_put, ["PUT"]),
            (p + "/teams/{teamId}", self._h_project_team_delete, ["DELETE"]),
            (p + "/users", self._h_project_users, ["GET"]),
            (p + "/users/{email}", self._h_project_user_put, ["PUT"]),
            (p + "/users/{email}", self._h_project_user_delete, ["DELETE"]),
            (p + "/fields", self._h_fields, ["GET"]),
            (p + "/folders", self._h_folders, ["GET"]),
            (p + "/folders", self._h_folder_add, ["POST"]),
            (p + "/folders/{folderId}/", self._h_folder_delete, ["DELETE"]),
            (p + "/folders/{folderId}", self._h_folder_delete, ["DELETE"]),
            (p + "/folders/{name:path}", self._h_folder_by_name, ["GET"]),
            (p + "/documents", self._h_documents, ["GET"]),
            (p + "/documents", self._h_document_add, ["POST"]),
            (p + "/documents/folder/{folderId}", self._h_folder_documents, ["GET"]),
            ("/" + self.profile.download_path.strip("/"), self._h_content, ["GET"]),
            (d + "/replace", self._h_replace, update),
            (d + "/fields/{fieldId}", self._h_field_put, ["PUT", *update]),
            (d, self._h_document, ["GET"]),
            (d + "/{folderId}", self._h_move, ["PUT", *update]),
        ]
        if self.profile.document_rename:
            table.append((d, self._h_rename, update))
        if self.profile.document_delete:
            table.append((d, self._h_document_delete, ["DELETE"]))
        return [Route(prefix + path, self._endpoint(h), methods=m) for path, h, m in table]

    def _endpoint(self, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            try:
                require_length(request)
                with self._state:
                    token = self._authenticate(request)
                    user = self._users[token.user_id]
                    rate_headers = self._admit(token)
                response = await handler(request, user)
            except ApiError as exc:
                return exc.response()
            response.headers.update(rate_headers)
            return response

        return endpoint

    async def _starlette_error(self, request: Request, exc: HTTPException) -> Response:
        message = "Resource not found" if exc.status_code == 404 else exc.detail
        return ApiError(exc.status_code, message, headers=exc.headers).response()

    def _authenticate(self, request: Request) -> Token:
        value = request.headers.get(self.profile.auth_header) or request.headers.get("x-api-token")
        if not value:
            scheme, _, credential = request.headers.get("authorization", "").partition(" ")
            value = credential.strip() if scheme.lower() == "bearer" else ""
        if not value:
            raise ApiError(401, "The API token is missing")
        token = self._tokens.get(value)
        if token is None:
            raise ApiError(401, "The provided API token is invalid")
        if token.expires_at is not None and token.expires_at <= self.now():
            raise ApiError(401, "The provided API token has expired")
        if not self._api_enabled:
            raise ApiError(403, "Access to the integrations API is not enabled")
        return token

    def _admit(self, token: Token) -> dict[str, str]:
        """Count the request in the token's rolling window, or refuse it."""
        limit = self._rate_limit
        if limit <= 0:
            return {}
        window = self._rate_window
        now = time.monotonic()
        hits = self._hits.setdefault(token.value, deque())
        while hits and hits[0] <= now - window:
            hits.popleft()
        if len(hits) >= limit:
            wait = max(1, math.ceil(hits[0] + window - now))
            headers = {
                "Retry-After": str(wait),
                "X-RateLimit-Limit": str(limit),
                "X-RateLimit-Remaining": "0",
                "X-RateLimit-Reset": str(wait),
            }
            status = self.profile.rate_limit_status
            raise ApiError(status, "API rate limit exceeded", headers=headers)
        hits.append(now)
        return {
            "X-RateLimit-Limit": str(limit),
            "X-RateLimit-Remaining": str(limit - len(hits)),
            "X-RateLimit-Reset": str(max(1, math.ceil(hits[0] + window - now))),
        }
