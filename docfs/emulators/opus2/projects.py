"""Opus 2's projects routes: listing and creating projects, their teams and users with their
access, and field definitions."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from docfs.emulators.opus2.handlers import Handlers
from docfs.emulators.opus2.model import Project, User
from docfs.emulators.opus2.parsing import json_object
from docfs.emulators.opus2.wire import ACCESS, READ_WRITE, TEMPLATES, ApiError


class ProjectRoutes(Handlers):
    """Projects, their members and fields."""

    async def _h_projects(self, request: Request, user: User) -> Response:
        with self._state:
            visible = [p for p in self._projects.values() if self._access(p, user) is not None]
            visible.sort(key=lambda p: (p.name, p.id))
            return self._paged(request, [self._project_json(p, user) for p in visible])

    async def _h_project_add(self, request: Request, user: User) -> Response:
        data = await json_object(request)
        name = data.get("name")
        template = data.get("templateId", "tpl-blank")
        if not isinstance(name, str) or not name.strip():
            raise ApiError(400, "name is required")
        if template not in dict(TEMPLATES):
            raise ApiError(400, "Unknown templateId")
        with self._state:
            self._require_admin(user)
            pid = self.add_project(name, members={user.id: READ_WRITE}, template_id=template)
            return JSONResponse(self._project_json(self._projects[pid], user), 201)

    async def _h_project(self, request: Request, user: User) -> Response:
        with self._state:
            project = self._project(request.path_params["projectId"], user)
            return JSONResponse(self._project_json(project, user))

    async def _h_project_teams(self, request: Request, user: User) -> Response:
        with self._state:
            project = self._project(request.path_params["projectId"], user)
            return JSONResponse(
                [
                    {"id": self._oid(tid), "name": self._teams[tid].name, "access": access}
                    for tid, access in project.teams.items()
                    if tid in self._teams
                ]
            )

    async def _access_body(self, request: Request) -> str:
        body = await request.body()
        if not body.strip():
            return READ_WRITE
        data = await json_object(request)
        access = data.get("access", READ_WRITE)
        if access not in ACCESS:
            raise ApiError(400, "access must be ReadWrite or Read")
        return str(access)

    def _admin_project(self, request: Request, user: User) -> Project:
        self._require_admin(user)
        project = self._projects.get(request.path_params["projectId"])
        if project is None:
            raise ApiError(404, "Project not found")
        return project

    async def _h_project_team_put(self, request: Request, user: User) -> Response:
        access = await self._access_body(request)
        with self._state:
            project = self._admin_project(request, user)
            team = self._team(request)
            project.teams[team.id] = access
            return JSONResponse({"id": self._oid(team.id), "name": team.name, "access": access})

    async def _h_project_team_delete(self, request: Request, user: User) -> Response:
        with self._state:
            project = self._admin_project(request, user)
            team = self._team(request)
            if project.teams.pop(team.id, None) is None:
                raise ApiError(404, "Team is not in this project")
            return JSONResponse({"id": self._oid(team.id), "name": team.name})

    async def _h_project_users(self, request: Request, user: User) -> Response:
        with self._state:
            project = self._project(request.path_params["projectId"], user)
            members = sorted((self._users[u] for u in project.members), key=lambda u: u.email)
            return JSONResponse(
                [{**self._user_json(u), "access": project.members[u.id]} for u in members]
            )

    async def _h_project_user_put(self, request: Request, user: User) -> Response:
        access = await self._access_body(request)
        with self._state:
            project = self._admin_project(request, user)
            member = self._user_param(request)
            project.members[member.id] = access
            return JSONResponse({**self._user_json(member), "access": access})

    async def _h_project_user_delete(self, request: Request, user: User) -> Response:
        with self._state:
            project = self._admin_project(request, user)
            member = self._user_param(request)
            if project.members.pop(member.id, None) is None:
                raise ApiError(404, "User is not in this project")
            return JSONResponse(self._user_json(member))

    async def _h_fields(self, request: Request, user: User) -> Response:
        with self._state:
            project = self._project(request.path_params["projectId"], user)
            return JSONResponse([self._field_json(f) for f in project.fields.values()])
