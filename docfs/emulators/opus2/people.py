"""Opus 2's tokens, roles, templates, users and teams routes."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from docfs.emulators.opus2.handlers import Handlers
from docfs.emulators.opus2.model import User
from docfs.emulators.opus2.parsing import json_body, json_object
from docfs.emulators.opus2.wire import ROLES, TEMPLATES, ApiError


class PeopleRoutes(Handlers):
    """Tokens, roles, templates, users, teams."""

    async def _h_tokens(self, request: Request, user: User) -> Response:
        with self._state:
            tokens = [t for t in self._tokens.values() if user.admin or t.user_id == user.id]
            return JSONResponse([self._token_json(t) for t in tokens])

    async def _h_token_add(self, request: Request, user: User) -> Response:
        data = await json_object(request)
        name = data.get("name")
        if not isinstance(name, str) or not name:
            raise ApiError(400, "name is required")
        with self._state:
            owner_id = self._json_id(data.get("userId"), "userId")
            assert owner_id is not None
            if owner_id not in self._users:
                raise ApiError(404, "User not found")
            if owner_id != user.id:
                self._require_admin(user)
            value = self.add_token(owner_id, name=name)
            return JSONResponse({**self._token_json(self._tokens[value]), "token": value}, 201)

    async def _h_token_delete(self, request: Request, user: User) -> Response:
        body = await request.body()
        data = await json_object(request) if body.strip() else dict(request.query_params)
        name = data.get("name")
        with self._state:
            owner = data.get("userId")
            owner_id = str(owner) if owner is not None else user.id
            if owner_id != user.id:
                self._require_admin(user)
            token = next(
                (t for t in self._tokens.values() if t.user_id == owner_id and t.name == name), None
            )
            if token is None:
                raise ApiError(404, "Token not found")
            del self._tokens[token.value]
            return JSONResponse(self._token_json(token))

    async def _h_roles(self, request: Request, user: User) -> Response:
        return JSONResponse([{"id": rid, "name": name} for rid, name in ROLES])

    async def _h_templates(self, request: Request, user: User) -> Response:
        return JSONResponse([{"id": tid, "name": name} for tid, name in TEMPLATES])

    async def _h_users(self, request: Request, user: User) -> Response:
        with self._state:
            users = sorted(self._users.values(), key=lambda u: u.email)
            return self._paged(request, [self._user_json(u) for u in users])

    async def _h_users_add(self, request: Request, user: User) -> Response:
        data = await json_body(request)
        entries = data if isinstance(data, list) else [data]
        with self._state:
            self._require_admin(user)
            for entry in entries:
                if not isinstance(entry, dict) or not isinstance(entry.get("email"), str):
                    raise ApiError(400, "Each user needs an email")
                if any(u.email.lower() == entry["email"].lower() for u in self._users.values()):
                    raise ApiError(409, f"User {entry['email']} already exists")
                role = entry.get("roleId", "role-user")
                if role not in dict(ROLES):
                    raise ApiError(400, "Unknown roleId")
            created = [
                self.add_user(
                    e["email"],
                    name=e.get("name") if isinstance(e.get("name"), str) else None,
                    admin=e.get("roleId") == "role-admin",
                    role_id=e.get("roleId", "role-user"),
                )
                for e in entries
            ]
            return JSONResponse([self._user_json(self._users[uid]) for uid in created], 201)

    async def _h_user_by_id(self, request: Request, user: User) -> Response:
        with self._state:
            found = self._users.get(request.path_params["userId"])
            if found is None:
                raise ApiError(404, "User not found")
            return JSONResponse(self._user_json(found))

    async def _h_user_by_email(self, request: Request, user: User) -> Response:
        email = request.query_params.get("email")
        if not email:
            raise ApiError(400, "email is required")
        with self._state:
            try:
                return JSONResponse(self._user_json(self._user_ref(email)))
            except KeyError:
                raise ApiError(404, "User not found") from None

    async def _h_teams(self, request: Request, user: User) -> Response:
        with self._state:
            return JSONResponse(
                [{"id": self._oid(t.id), "name": t.name} for t in self._teams.values()]
            )

    async def _h_team_users(self, request: Request, user: User) -> Response:
        with self._state:
            team = self._team(request)
            members = sorted((self._users[m] for m in team.members), key=lambda u: u.email)
            return JSONResponse([self._user_json(u) for u in members])

    async def _h_team_user_add(self, request: Request, user: User) -> Response:
        with self._state:
            self._require_admin(user)
            team = self._team(request)
            member = self._user_param(request)
            team.members.add(member.id)
            return JSONResponse(self._user_json(member))

    async def _h_team_user_remove(self, request: Request, user: User) -> Response:
        with self._state:
            self._require_admin(user)
            team = self._team(request)
            member = self._user_param(request)
            if member.id not in team.members:
                raise ApiError(404, "User is not in this team")
            team.members.discard(member.id)
            return JSONResponse(self._user_json(member))
