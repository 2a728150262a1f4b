"""Opus 2 Platform (v8) inbound Documents API emulator, after ``shared/reference/opus2.md``.

Every route of the vendor's table (tokens, roles, users, teams, projects with their teams and
users, templates, folders, documents with ``afterDate`` and ``rejectDuplicate``, folder
listings, move, replace, fields) plus the download route of the wire profile, served under
``profile.path_prefix``. Behaviour that the vendor documents: the ``X-API-Token`` header (a
``Bearer`` token works too), 200/201 and the 400/401/403/404/409/500 errors with their messages,
HEAD on every GET route, POST and PATCH interchangeable on update routes, 411 for a PUT with
neither a body nor ``Content-Length: 0``, the system switch "Allowing access to the integrations
API" and the per-project switch "Download docs via API", read-only project members, and a rate
limiter of ``rate_limit`` requests per rolling ``rate_window`` seconds per token (429 or, by
profile, 503, with ``Retry-After`` and ``X-RateLimit-*``). Everything the vendor leaves open
follows the ``Opus2Profile`` the emulator is built with, so the same state can be served in the
reference's default profile or in an alternative one.

State is in memory and guarded by one lock, because tests call the backdoor methods (``add_*``,
``replace_document``, ``set_download_via_api``…) from their own thread while uvicorn serves.

``docfs emulate opus2 --token T --rate-limit N`` maps to ``Opus2Emulator(token=T, rate_limit=N)``
(``--demo``: ``demo_opus2.seed_demo``); the token then belongs to the seeded default user, who
has Read/Write on the demo projects. ``profile=Opus2Profile.load(path)`` serves another profile.
Planned faults (500s, stalls, resets mid-body) and latency come from the ``Emulator`` base; a
planned error status answers with the base's HTML body, not the JSON error body of this API.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import mimetypes
import random
import re
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, unquote

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from docfs.backends.opus2 import ALTERNATIVE_PROFILE, DEFAULT_PROFILE, Opus2Profile
from docfs.emulators.base import Emulator, ServerProfile, ServerSetting, UnknownServerOption

READ_WRITE = "ReadWrite"
READ = "Read"
_ACCESS = (READ, READ_WRITE)
_CHUNK = 64 * 1024
_FIELD_TYPES = ("text", "date", "number", "choice")
_ROLES = (("role-admin", "Administrator"), ("role-user", "Standard user"), ("role-ext", "External"))
_TEMPLATES = (("tpl-lit", "Litigation"), ("tpl-arb", "Arbitration"), ("tpl-blank", "Blank"))
_DATE_ONLY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


class ApiError(Exception):
    """An error answer: ``{"status": …, "message": …}`` plus optional extra keys."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        headers: Mapping[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = dict(headers or {})
        self.extra = extra

    def response(self) -> Response:
        body = {"status": self.status, "message": self.message, **self.extra}
        return JSONResponse(body, status_code=self.status, headers=self.headers)


@dataclass
class _User:
    id: str
    email: str
    name: str
    role_id: str
    admin: bool
    created_at: float


@dataclass
class _Token:
    id: str
    name: str
    user_id: str
    value: str
    created_at: float
    expires_at: float | None = None


@dataclass
class _Team:
    id: str
    name: str
    members: set[str] = field(default_factory=set)  # user ids


@dataclass
class _Field:
    id: str
    name: str
    type: str
    choices: tuple[str, ...] = ()


@dataclass
class _Project:
    id: str
    name: str
    template_id: str
    created_at: float
    updated_at: float
    download_via_api: bool = True
    members: dict[str, str] = field(default_factory=dict)  # user id → access
    teams: dict[str, str] = field(default_factory=dict)  # team id → access
    fields: dict[str, _Field] = field(default_factory=dict)


@dataclass
class _Folder:
    id: str
    project_id: str
    name: str
    parent_id: str | None
    created_at: float
    updated_at: float


@dataclass
class _Version:
    id: str
    number: int
    data: bytes
    checksum: str
    created_at: float


@dataclass
class _Document:
    id: str
    project_id: str
    name: str
    folder_id: str | None
    mime_type: str
    created_at: float
    updated_at: float
    versions: list[_Version]
    values: dict[str, Any] = field(default_factory=dict)  # field id → value

    @property
    def current(self) -> _Version:
        return self.versions[-1]


@dataclass
class _Part:
    headers: dict[str, str]
    data: bytes
    name: str
    filename: str | None


Handler = Callable[[Request, _User], Awaitable[Response]]


class Opus2Emulator(Emulator):
    """A tenant of the Opus 2 Platform with its inbound Documents API."""

    name = "opus2"
    #: the vendor publishes no Swagger: what the article leaves open is the wire profile,
    #: selectable here (``docfs emulate opus2 --setting wire_profile=alternative``)
    server_settings = {
        "wire_profile": ServerSetting(
            "default",
            "the reference's default wire profile, or the alternative one of the tests "
            "(prefix /api/v8, bearer auth, offset paging, …; docs/protocols/opus2.md)",
            ("default", "alternative"),
        ),
        "folder_not_empty_status": ServerSetting(
            "409", "status of DELETE folders/{f}/ on a folder that is not empty (a guess)"
        ),
    }

    @classmethod
    def options_for(cls, profile: ServerProfile) -> dict[str, Any]:
        wire = ALTERNATIVE_PROFILE if profile.setting("wire_profile") == "alternative" else None
        raw = profile.setting("folder_not_empty_status")
        base = wire or DEFAULT_PROFILE
        try:
            if int(raw) != base.folder_not_empty_status:
                wire = base.replace(folder_not_empty_status=int(raw))
        except ValueError:
            raise UnknownServerOption(
                f"opus2: folder_not_empty_status must be a 4xx status, not {raw!r}"
            ) from None
        return {"profile": wire} if wire is not None else {}

    def __init__(
        self,
        *,
        latency_ms: float = 0.0,
        seed: int | None = None,
        profile: Opus2Profile | None = None,
        token: str | None = None,
        rate_limit: int | None = 50,
        rate_window: float = 60.0,
        token_ttl: float | None = None,
        api_enabled: bool = True,
    ) -> None:
        """``token``: the default user's API token (generated when omitted); ``rate_limit``:
        requests per ``rate_window`` seconds per token (``None`` or 0: unlimited);
        ``token_ttl``: lifetime in seconds of tokens made from now on (``None``: no expiry)."""
        # routes() runs inside the base constructor and needs these
        self.profile = profile or DEFAULT_PROFILE
        self._state = threading.RLock()
        self._ids = random.Random(seed)
        self._counter = 1000
        self._clock_offset = 0.0
        self._frozen_at: float | None = None
        self._rate_limit = rate_limit or 0
        self._rate_window = rate_window
        self._token_ttl = token_ttl
        self._api_enabled = api_enabled
        self._hits: dict[str, deque[float]] = {}
        self._users: dict[str, _User] = {}
        self._tokens: dict[str, _Token] = {}
        self._teams: dict[str, _Team] = {}
        self._projects: dict[str, _Project] = {}
        self._folders: dict[str, _Folder] = {}
        self._documents: dict[str, _Document] = {}
        super().__init__(latency_ms=latency_ms, seed=seed)
        # unknown routes and wrong methods answer with this API's JSON error body too; Starlette
        # types handlers for any Exception, this one only ever receives HTTPException
        self._app.add_exception_handler(HTTPException, self._starlette_error)  # type: ignore[arg-type]
        self.default_user_id = self.add_user("docfs@example.com", name="docfs API user", admin=True)
        self.default_token = self.add_token(self.default_user_id, name="docfs", value=token)

    # ================================================================ backdoor: time and limits

    def now(self) -> float:
        """The tenant's clock (seconds since the epoch): wall time, or the frozen time, plus
        ``advance_clock`` shifts."""
        with self._state:
            base = time.time() if self._frozen_at is None else self._frozen_at
            return base + self._clock_offset

    def freeze_clock(self, at: float | None) -> None:
        """Stop the clock at ``at`` (``None``: run with wall time again), for exact timestamps."""
        with self._state:
            self._frozen_at = at
            self._clock_offset = 0.0

    def advance_clock(self, seconds: float) -> None:
        """Move the tenant's clock forward, so that ``afterDate`` tests need no sleeping."""
        with self._state:
            self._clock_offset += seconds

    def set_rate_limit(self, limit: int | None, window: float | None = None) -> None:
        """Change the limit (requests per rolling window per token; ``None``/0: unlimited)."""
        with self._state:
            self._rate_limit = limit or 0
            if window is not None:
                self._rate_window = window
            self._hits.clear()

    def set_api_enabled(self, enabled: bool) -> None:
        """The system-wide "Allowing access to the integrations API" setting."""
        with self._state:
            self._api_enabled = enabled

    def rate_limited(self) -> int:
        """How many requests the rate limiter refused so far (from the request log)."""
        status = self.profile.rate_limit_status
        return sum(1 for r in self.requests() if r.status == status and r.fault is None)

    # ================================================================ backdoor: users and tokens

    def add_user(
        self,
        email: str,
        *,
        name: str | None = None,
        admin: bool = False,
        role_id: str | None = None,
    ) -> str:
        """Create a user; returns its id."""
        with self._state:
            if any(u.email.lower() == email.lower() for u in self._users.values()):
                raise ValueError(f"user {email} exists")
            user = _User(
                id=self._new_id(),
                email=email,
                name=name or email.split("@")[0],
                role_id=role_id or ("role-admin" if admin else "role-user"),
                admin=admin,
                created_at=self.now(),
            )
            self._users[user.id] = user
            return user.id

    def add_token(
        self,
        user: str,
        *,
        name: str = "token",
        value: str | None = None,
        ttl: float | None = None,
    ) -> str:
        """Create an API token for a user (id or email); returns the token value."""
        with self._state:
            owner = self._user_ref(user)
            lifetime = ttl if ttl is not None else self._token_ttl
            token = _Token(
                id=self._new_id(),
                name=name,
                user_id=owner.id,
                value=value or self._token_value(owner.id),
                created_at=self.now(),
                expires_at=self.now() + lifetime if lifetime is not None else None,
            )
            self._tokens[token.value] = token
            return token.value

    def revoke_token(self, value: str) -> None:
        """Revoke a token, as an operator does in the UI."""
        with self._state:
            self._tokens.pop(value, None)

    def rotate_token(self, value: str) -> str:
        """Regenerate a token (the old one stops working); returns the new value."""
        with self._state:
            old = self._tokens.pop(value)
            return self.add_token(old.user_id, name=old.name)

    def expire_token(self, value: str) -> None:
        """Make a token expired now."""
        with self._state:
            self._tokens[value].expires_at = self.now() - 1

    def add_team(self, name: str, members: Iterable[str] = ()) -> str:
        """Create a team of users (ids or emails); returns its id."""
        with self._state:
            team = _Team(self._new_id(), name, {self._user_ref(m).id for m in members})
            self._teams[team.id] = team
            return team.id

    # ================================================================ backdoor: projects

    def add_project(
        self,
        name: str,
        *,
        members: Mapping[str, str] | None = None,
        download_via_api: bool = True,
        template_id: str = "tpl-lit",
    ) -> str:
        """Create a project; ``members`` maps user ids/emails to ``ReadWrite``/``Read``
        (default: the default user with ``ReadWrite``). Returns the project id."""
        with self._state:
            now = self.now()
            project = _Project(self._new_id(), name, template_id, now, now, download_via_api)
            for user, access in (members or {self.default_user_id: READ_WRITE}).items():
                project.members[self._user_ref(user).id] = _check_access(access)
            self._projects[project.id] = project
            return project.id

    def set_access(self, project_id: str, user: str, access: str | None) -> None:
        """Give a user ``ReadWrite`` or ``Read`` on a project, or remove them (``None``)."""
        with self._state:
            project = self._projects[project_id]
            uid = self._user_ref(user).id
            if access is None:
                project.members.pop(uid, None)
            else:
                project.members[uid] = _check_access(access)

    def set_team_access(self, project_id: str, team_id: str, access: str | None) -> None:
        with self._state:
            project = self._projects[project_id]
            if access is None:
                project.teams.pop(team_id, None)
            else:
                project.teams[team_id] = _check_access(access)

    def set_download_via_api(self, project_id: str, enabled: bool) -> None:
        """The per-project "Download docs via API" setting."""
        with self._state:
            self._projects[project_id].download_via_api = enabled

    def add_field(
        self, project_id: str, name: str, type: str = "text", choices: Iterable[str] = ()
    ) -> str:
        """Define a metadata field (``text``/``date``/``number``/``choice``); returns its id."""
        if type not in _FIELD_TYPES:
            raise ValueError(f"field type {type!r}")
        with self._state:
            definition = _Field(self._new_id(), name, type, tuple(choices))
            self._projects[project_id].fields[definition.id] = definition
            return definition.id

    # ================================================================ backdoor: folders, documents

    def add_folder(self, project_id: str, name: str, parent_id: str | None = None) -> str:
        """Create a folder; returns its id."""
        with self._state:
            return self._create_folder(self._projects[project_id], name, parent_id).id

    def ensure_path(self, project_id: str, path: str) -> str | None:
        """The id of the folder at ``/A/B`` (created as needed); ``None`` for the project root."""
        with self._state:
            parent: str | None = None
            for part in [p for p in path.split("/") if p]:
                found = next(
                    (
                        f
                        for f in self._folders.values()
                        if f.project_id == project_id and f.parent_id == parent and f.name == part
                    ),
                    None,
                )
                parent = found.id if found else self.add_folder(project_id, part, parent)
            return parent

    def add_document(
        self,
        project_id: str,
        name: str,
        data: bytes,
        *,
        folder_id: str | None = None,
        mime_type: str | None = None,
        fields: Mapping[str, Any] | None = None,
    ) -> str:
        """Create a document (version 1); ``fields`` maps field names to values. Returns its id."""
        with self._state:
            project = self._projects[project_id]
            doc = self._create_document(project, name, data, folder_id, mime_type)
            for key, value in (fields or {}).items():
                definition = self._field_named(project, key)
                doc.values[definition.id] = _coerce(definition, value)
            return doc.id

    def seed_tree(
        self, project_id: str, tree: Mapping[str, Any], parent_id: str | None = None
    ) -> None:
        """Create folders (nested mappings) and documents (bytes values) from a dict."""
        for name, value in tree.items():
            if isinstance(value, Mapping):
                self.seed_tree(project_id, value, self.add_folder(project_id, name, parent_id))
            else:
                self.add_document(project_id, name, bytes(value), folder_id=parent_id)

    def replace_document(self, document_id: str, data: bytes) -> None:
        """Upload a new version behind the client's back."""
        with self._state:
            self._new_version(self._documents[document_id], data)

    def move_document(self, document_id: str, folder_id: str | None) -> None:
        with self._state:
            doc = self._documents[document_id]
            doc.folder_id = folder_id
            doc.updated_at = self.now()

    def set_field(self, document_id: str, name: str, value: Any) -> None:
        with self._state:
            doc = self._documents[document_id]
            definition = self._field_named(self._projects[doc.project_id], name)
            doc.values[definition.id] = _coerce(definition, value)
            doc.updated_at = self.now()

    def delete_folder(self, folder_id: str) -> None:
        """Remove a folder and everything in it behind the client's back."""
        with self._state:
            doomed = {folder_id}
            while more := {
                f.id for f in self._folders.values() if f.parent_id in doomed and f.id not in doomed
            }:
                doomed |= more
            for fid in doomed:
                del self._folders[fid]
            for doc in [d for d in self._documents.values() if d.folder_id in doomed]:
                del self._documents[doc.id]

    def delete_document(self, document_id: str) -> None:
        """Remove a document behind the client's back (as a UI user can)."""
        with self._state:
            del self._documents[document_id]

    def document(self, document_id: str) -> dict[str, Any]:
        """A snapshot of a document: its JSON plus ``content`` (bytes of the current version)."""
        with self._state:
            doc = self._documents[document_id]
            return {**self._doc_json(doc), "content": doc.current.data}

    def documents(self, project_id: str, folder_id: str | None = None) -> list[dict[str, Any]]:
        """Snapshots (JSON, no content) of a project's documents in one folder (root: ``None``)."""
        with self._state:
            return [
                self._doc_json(d) for d in self._sorted_docs(project_id) if d.folder_id == folder_id
            ]

    def folders(self, project_id: str) -> list[dict[str, Any]]:
        with self._state:
            return [self._folder_json(f) for f in self._sorted_folders(project_id)]

    def find_document(self, project_id: str, name: str) -> str:
        """The id of the only document called ``name`` in the project."""
        with self._state:
            found = [
                d.id
                for d in self._documents.values()
                if d.project_id == project_id and d.name == name
            ]
        if len(found) != 1:
            raise KeyError(f"{len(found)} documents named {name!r}")
        return found[0]

    # ================================================================ internals

    def _new_id(self) -> str:
        with self._state:
            if self.profile.numeric_ids:
                self._counter += 1
                return str(self._counter)
            return f"{self._ids.getrandbits(64):016x}"

    def _token_value(self, user_id: str) -> str:
        # JWT-looking, as the vendor's tokens are; never parsed by anyone
        head = base64.urlsafe_b64encode(b'{"alg":"HS256","typ":"JWT"}').rstrip(b"=").decode()
        claims = json.dumps({"userId": user_id, "n": self._ids.getrandbits(32)}).encode()
        body = base64.urlsafe_b64encode(claims).rstrip(b"=").decode()
        return f"{head}.{body}.{self._ids.getrandbits(128):032x}"

    def _oid(self, value: str | None) -> str | int | None:
        if value is None:
            return None
        return int(value) if self.profile.numeric_ids else value

    def _stamp(self, when: float) -> str:
        return self.profile.format_date(when)

    def _user_ref(self, ref: str) -> _User:
        if ref in self._users:
            return self._users[ref]
        for user in self._users.values():
            if user.email.lower() == ref.lower():
                return user
        raise KeyError(f"no user {ref!r}")

    def _field_named(self, project: _Project, name: str) -> _Field:
        for definition in project.fields.values():
            if definition.name == name:
                return definition
        raise KeyError(f"no field {name!r}")

    def _folder_path(self, folder: _Folder) -> str:
        parts = [folder.name]
        parent = folder.parent_id
        while parent is not None:
            above = self._folders[parent]
            parts.append(above.name)
            parent = above.parent_id
        return "/" + "/".join(reversed(parts))

    def _sorted_folders(self, project_id: str) -> list[_Folder]:
        folders = [f for f in self._folders.values() if f.project_id == project_id]
        return sorted(folders, key=lambda f: (self._folder_path(f), f.id))

    def _sorted_docs(self, project_id: str) -> list[_Document]:
        docs = [d for d in self._documents.values() if d.project_id == project_id]
        return sorted(docs, key=lambda d: (d.name, d.id))

    def _create_folder(self, project: _Project, name: str, parent_id: str | None) -> _Folder:
        if not name or "/" in name:
            raise ApiError(400, "Invalid folder name")
        if parent_id is not None:
            parent = self._folders.get(parent_id)
            if parent is None or parent.project_id != project.id:
                raise ApiError(404, "Parent folder not found")
        for other in self._folders.values():
            if (
                other.project_id == project.id
                and other.parent_id == parent_id
                and other.name == name
            ):
                raise ApiError(409, "A folder with this name already exists")
        now = self.now()
        folder = _Folder(self._new_id(), project.id, name, parent_id, now, now)
        self._folders[folder.id] = folder
        return folder

    def _create_document(
        self,
        project: _Project,
        name: str,
        data: bytes,
        folder_id: str | None,
        mime_type: str | None,
    ) -> _Document:
        if folder_id is not None:
            folder = self._folders.get(folder_id)
            if folder is None or folder.project_id != project.id:
                raise ApiError(404, "Folder not found")
        now = self.now()
        doc = _Document(
            id=self._new_id(),
            project_id=project.id,
            name=name,
            folder_id=folder_id,
            mime_type=mime_type or mimetypes.guess_type(name)[0] or "application/octet-stream",
            created_at=now,
            updated_at=now,
            versions=[_Version(self._new_id(), 1, data, _checksum(data), now)],
        )
        self._documents[doc.id] = doc
        return doc

    def _new_version(self, doc: _Document, data: bytes) -> None:
        now = self.now()
        number = doc.current.number + 1
        doc.versions.append(_Version(self._new_id(), number, data, _checksum(data), now))
        doc.updated_at = now

    # ---- JSON shapes ------------------------------------------------------------------------

    def _user_json(self, user: _User) -> dict[str, Any]:
        return {
            "id": self._oid(user.id),
            "email": user.email,
            "name": user.name,
            "roleId": user.role_id,
            "createdAt": self._stamp(user.created_at),
        }

    def _token_json(self, token: _Token) -> dict[str, Any]:
        return {
            "id": self._oid(token.id),
            "name": token.name,
            "userId": self._oid(token.user_id),
            "createdAt": self._stamp(token.created_at),
            "expiresAt": self._stamp(token.expires_at) if token.expires_at is not None else None,
        }

    def _project_json(self, project: _Project, user: _User) -> dict[str, Any]:
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

    def _folder_json(self, folder: _Folder) -> dict[str, Any]:
        return {
            "id": self._oid(folder.id),
            "name": folder.name,
            "parentId": self._oid(folder.parent_id),
            "path": self._folder_path(folder),
            "createdAt": self._stamp(folder.created_at),
            "updatedAt": self._stamp(folder.updated_at),
        }

    def _doc_json(self, doc: _Document) -> dict[str, Any]:
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

    def _field_json(self, definition: _Field) -> dict[str, Any]:
        data: dict[str, Any] = {
            "fieldId": self._oid(definition.id),
            "name": definition.name,
            "type": definition.type,
        }
        if definition.type == "choice":
            data["choices"] = list(definition.choices)
        return data

    # ---- access -----------------------------------------------------------------------------

    def _access(self, project: _Project, user: _User) -> str | None:
        levels = set()
        if user.id in project.members:
            levels.add(project.members[user.id])
        for team_id, access in project.teams.items():
            team = self._teams.get(team_id)
            if team is not None and user.id in team.members:
                levels.add(access)
        if READ_WRITE in levels:
            return READ_WRITE
        return READ if levels else None

    def _project(self, project_id: str, user: _User, *, write: bool = False) -> _Project:
        project = self._projects.get(project_id)
        if project is None:
            raise ApiError(404, "Project not found")
        access = self._access(project, user)
        if access is None:
            raise ApiError(403, "You do not have access to this project")
        if write and access != READ_WRITE:
            raise ApiError(403, "You do not have permission to modify this project")
        return project

    def _document(self, project: _Project, document_id: str) -> _Document:
        doc = self._documents.get(document_id)
        if doc is None or doc.project_id != project.id:
            raise ApiError(404, "Document not found")
        return doc

    def _folder(self, project: _Project, folder_id: str) -> _Folder:
        folder = self._folders.get(folder_id)
        if folder is None or folder.project_id != project.id:
            raise ApiError(404, "Folder not found")
        return folder

    @staticmethod
    def _require_admin(user: _User) -> None:
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

    # ================================================================ HTTP plumbing

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
                _require_length(request)
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

    def _authenticate(self, request: Request) -> _Token:
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

    def _admit(self, token: _Token) -> dict[str, str]:
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

    def _paged(self, request: Request, items: list[dict[str, Any]]) -> Response:
        profile = self.profile
        query = request.query_params
        size = min(
            _int_query(query, profile.size_param, profile.default_page_size, 1),
            profile.max_page_size,
        )
        if profile.paging == "page":
            page = _int_query(query, profile.page_param, profile.first_page, profile.first_page)
            start = (page - profile.first_page) * size
            position = page
        else:
            start = position = _int_query(query, profile.page_param, 0, 0)
        body: dict[str, Any] = {
            profile.items_key: items[start : start + size],
            profile.page_param: position,
            profile.size_param: size,
        }
        if profile.total_key:
            body[profile.total_key] = len(items)
        return JSONResponse(body)

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

    # ================================================================ handlers: tokens and users

    async def _h_tokens(self, request: Request, user: _User) -> Response:
        with self._state:
            tokens = [t for t in self._tokens.values() if user.admin or t.user_id == user.id]
            return JSONResponse([self._token_json(t) for t in tokens])

    async def _h_token_add(self, request: Request, user: _User) -> Response:
        data = await _json_object(request)
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

    async def _h_token_delete(self, request: Request, user: _User) -> Response:
        body = await request.body()
        data = await _json_object(request) if body.strip() else dict(request.query_params)
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

    async def _h_roles(self, request: Request, user: _User) -> Response:
        return JSONResponse([{"id": rid, "name": name} for rid, name in _ROLES])

    async def _h_templates(self, request: Request, user: _User) -> Response:
        return JSONResponse([{"id": tid, "name": name} for tid, name in _TEMPLATES])

    async def _h_users(self, request: Request, user: _User) -> Response:
        with self._state:
            users = sorted(self._users.values(), key=lambda u: u.email)
            return self._paged(request, [self._user_json(u) for u in users])

    async def _h_users_add(self, request: Request, user: _User) -> Response:
        data = await _json_body(request)
        entries = data if isinstance(data, list) else [data]
        with self._state:
            self._require_admin(user)
            for entry in entries:
                if not isinstance(entry, dict) or not isinstance(entry.get("email"), str):
                    raise ApiError(400, "Each user needs an email")
                if any(u.email.lower() == entry["email"].lower() for u in self._users.values()):
                    raise ApiError(409, f"User {entry['email']} already exists")
                role = entry.get("roleId", "role-user")
                if role not in dict(_ROLES):
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

    async def _h_user_by_id(self, request: Request, user: _User) -> Response:
        with self._state:
            found = self._users.get(request.path_params["userId"])
            if found is None:
                raise ApiError(404, "User not found")
            return JSONResponse(self._user_json(found))

    async def _h_user_by_email(self, request: Request, user: _User) -> Response:
        email = request.query_params.get("email")
        if not email:
            raise ApiError(400, "email is required")
        with self._state:
            try:
                return JSONResponse(self._user_json(self._user_ref(email)))
            except KeyError:
                raise ApiError(404, "User not found") from None

    async def _h_teams(self, request: Request, user: _User) -> Response:
        with self._state:
            return JSONResponse(
                [{"id": self._oid(t.id), "name": t.name} for t in self._teams.values()]
            )

    def _team(self, request: Request) -> _Team:
        team = self._teams.get(request.path_params["teamId"])
        if team is None:
            raise ApiError(404, "Team not found")
        return team

    def _user_param(self, request: Request) -> _User:
        try:
            return self._user_ref(request.path_params["email"])  # already percent-decoded
        except KeyError:
            raise ApiError(404, "User not found") from None

    async def _h_team_users(self, request: Request, user: _User) -> Response:
        with self._state:
            team = self._team(request)
            members = sorted((self._users[m] for m in team.members), key=lambda u: u.email)
            return JSONResponse([self._user_json(u) for u in members])

    async def _h_team_user_add(self, request: Request, user: _User) -> Response:
        with self._state:
            self._require_admin(user)
            team = self._team(request)
            member = self._user_param(request)
            team.members.add(member.id)
            return JSONResponse(self._user_json(member))

    async def _h_team_user_remove(self, request: Request, user: _User) -> Response:
        with self._state:
            self._require_admin(user)
            team = self._team(request)
            member = self._user_param(request)
            if member.id not in team.members:
                raise ApiError(404, "User is not in this team")
            team.members.discard(member.id)
            return JSONResponse(self._user_json(member))

    # ================================================================ handlers: projects

    async def _h_projects(self, request: Request, user: _User) -> Response:
        with self._state:
            visible = [p for p in self._projects.values() if self._access(p, user) is not None]
            visible.sort(key=lambda p: (p.name, p.id))
            return self._paged(request, [self._project_json(p, user) for p in visible])

    async def _h_project_add(self, request: Request, user: _User) -> Response:
        data = await _json_object(request)
        name = data.get("name")
        template = data.get("templateId", "tpl-blank")
        if not isinstance(name, str) or not name.strip():
            raise ApiError(400, "name is required")
        if template not in dict(_TEMPLATES):
            raise ApiError(400, "Unknown templateId")
        with self._state:
            self._require_admin(user)
            pid = self.add_project(name, members={user.id: READ_WRITE}, template_id=template)
            return JSONResponse(self._project_json(self._projects[pid], user), 201)

    async def _h_project(self, request: Request, user: _User) -> Response:
        with self._state:
            project = self._project(request.path_params["projectId"], user)
            return JSONResponse(self._project_json(project, user))

    async def _h_project_teams(self, request: Request, user: _User) -> Response:
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
        data = await _json_object(request)
        access = data.get("access", READ_WRITE)
        if access not in _ACCESS:
            raise ApiError(400, "access must be ReadWrite or Read")
        return str(access)

    def _admin_project(self, request: Request, user: _User) -> _Project:
        self._require_admin(user)
        project = self._projects.get(request.path_params["projectId"])
        if project is None:
            raise ApiError(404, "Project not found")
        return project

    async def _h_project_team_put(self, request: Request, user: _User) -> Response:
        access = await self._access_body(request)
        with self._state:
            project = self._admin_project(request, user)
            team = self._team(request)
            project.teams[team.id] = access
            return JSONResponse({"id": self._oid(team.id), "name": team.name, "access": access})

    async def _h_project_team_delete(self, request: Request, user: _User) -> Response:
        with self._state:
            project = self._admin_project(request, user)
            team = self._team(request)
            if project.teams.pop(team.id, None) is None:
                raise ApiError(404, "Team is not in this project")
            return JSONResponse({"id": self._oid(team.id), "name": team.name})

    async def _h_project_users(self, request: Request, user: _User) -> Response:
        with self._state:
            project = self._project(request.path_params["projectId"], user)
            members = sorted((self._users[u] for u in project.members), key=lambda u: u.email)
            return JSONResponse(
                [{**self._user_json(u), "access": project.members[u.id]} for u in members]
            )

    async def _h_project_user_put(self, request: Request, user: _User) -> Response:
        access = await self._access_body(request)
        with self._state:
            project = self._admin_project(request, user)
            member = self._user_param(request)
            project.members[member.id] = access
            return JSONResponse({**self._user_json(member), "access": access})

    async def _h_project_user_delete(self, request: Request, user: _User) -> Response:
        with self._state:
            project = self._admin_project(request, user)
            member = self._user_param(request)
            if project.members.pop(member.id, None) is None:
                raise ApiError(404, "User is not in this project")
            return JSONResponse(self._user_json(member))

    async def _h_fields(self, request: Request, user: _User) -> Response:
        with self._state:
            project = self._project(request.path_params["projectId"], user)
            return JSONResponse([self._field_json(f) for f in project.fields.values()])

    # ================================================================ handlers: folders

    async def _h_folders(self, request: Request, user: _User) -> Response:
        with self._state:
            project = self._project(request.path_params["projectId"], user)
            folders = self._sorted_folders(project.id)
            return self._paged(request, [self._folder_json(f) for f in folders])

    async def _h_folder_by_name(self, request: Request, user: _User) -> Response:
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

    async def _h_folder_add(self, request: Request, user: _User) -> Response:
        data = await _json_object(request)
        name = data.get("name")
        if not isinstance(name, str) or not name.strip():
            raise ApiError(400, "name is required")
        with self._state:
            project = self._project(request.path_params["projectId"], user, write=True)
            parent = self._json_id(data.get("parentId"), "parentId", optional=True)
            folder = self._create_folder(project, name, parent)
            return JSONResponse(self._folder_json(folder), 201)

    async def _h_folder_delete(self, request: Request, user: _User) -> Response:
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

    # ================================================================ handlers: documents

    async def _h_documents(self, request: Request, user: _User) -> Response:
        after = self._after(request)
        with self._state:
            project = self._project(request.path_params["projectId"], user)
            docs = [
                self._doc_json(d)
                for d in self._sorted_docs(project.id)
                if after is None or d.updated_at > after
            ]
            return self._paged(request, docs)

    async def _h_folder_documents(self, request: Request, user: _User) -> Response:
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

    async def _h_document(self, request: Request, user: _User) -> Response:
        with self._state:
            project = self._project(request.path_params["projectId"], user)
            return JSONResponse(
                self._doc_json(self._document(project, request.path_params["documentId"]))
            )

    async def _upload(self, request: Request) -> tuple[str, _Part, dict[str, _Part]]:
        """The document name, the file part and all parts of an upload (400 if malformed)."""
        parts = _parse_multipart(request.headers.get("content-type", ""), await request.body())
        part = parts.get(self.profile.upload_file_part)
        if part is None or part.filename is None:
            raise ApiError(400, f"Missing file part '{self.profile.upload_file_part}'")
        if not part.filename.strip() or "/" in part.filename:
            raise ApiError(400, "Invalid document name")
        return part.filename, part, parts

    async def _h_document_add(self, request: Request, user: _User) -> Response:
        name, part, parts = await self._upload(request)
        folder_part = parts.get(self.profile.upload_folder_part)
        folder_id = folder_part.data.decode().strip() if folder_part else ""
        reject = request.query_params.get("rejectDuplicate", "").lower() == "true"
        checksum = _checksum(part.data)
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

    async def _h_replace(self, request: Request, user: _User) -> Response:
        name, part, _ = await self._upload(request)
        rename = request.query_params.get("replaceName", "").lower() == "true"
        with self._state:
            project = self._project(request.path_params["projectId"], user, write=True)
            doc = self._document(project, request.path_params["documentId"])
            self._new_version(doc, part.data)
            if rename:
                doc.name = name
            return JSONResponse(self._doc_json(doc))

    async def _h_move(self, request: Request, user: _User) -> Response:
        with self._state:
            project = self._project(request.path_params["projectId"], user, write=True)
            doc = self._document(project, request.path_params["documentId"])
            folder = self._folder(project, request.path_params["folderId"])
            doc.folder_id = folder.id
            doc.updated_at = self.now()
            return JSONResponse(self._doc_json(doc))

    async def _h_rename(self, request: Request, user: _User) -> Response:
        data = await _json_object(request)
        name = data.get("name")
        if not isinstance(name, str) or not name.strip() or "/" in name:
            raise ApiError(400, "Invalid document name")
        with self._state:
            project = self._project(request.path_params["projectId"], user, write=True)
            doc = self._document(project, request.path_params["documentId"])
            doc.name = name
            doc.updated_at = self.now()
            return JSONResponse(self._doc_json(doc))

    async def _h_document_delete(self, request: Request, user: _User) -> Response:
        with self._state:
            project = self._project(request.path_params["projectId"], user, write=True)
            doc = self._document(project, request.path_params["documentId"])
            answer = self._doc_json(doc)
            del self._documents[doc.id]
            return JSONResponse(answer)

    async def _h_field_put(self, request: Request, user: _User) -> Response:
        data = await _json_object(request)
        if "value" not in data:
            raise ApiError(400, "value is required")
        with self._state:
            project = self._project(request.path_params["projectId"], user, write=True)
            doc = self._document(project, request.path_params["documentId"])
            definition = project.fields.get(request.path_params["fieldId"])
            if definition is None:
                raise ApiError(404, "Field not found")
            doc.values[definition.id] = _coerce(definition, data["value"])
            doc.updated_at = self.now()
            return JSONResponse(self._doc_json(doc))

    async def _h_content(self, request: Request, user: _User) -> Response:
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
                "Content-Disposition": f"attachment; filename*=UTF-8''{_rfc5987(doc.name)}",
            }
        start, stop, status = 0, len(data), 200
        if self.profile.ranges:
            headers["Accept-Ranges"] = "bytes"
            wanted = request.headers.get("range")
            if wanted:
                start, stop, status = _byte_range(wanted, len(data))
                if status == 206:
                    headers["Content-Range"] = f"bytes {start}-{stop - 1}/{len(data)}"
        headers["Content-Length"] = str(stop - start)
        if request.method == "HEAD":
            return Response(status_code=status, headers=headers)
        return StreamingResponse(_chunks(data, start, stop), status_code=status, headers=headers)


# ==================================================================== module helpers


def _checksum(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _check_access(access: str) -> str:
    if access not in _ACCESS:
        raise ValueError(f"access must be one of {_ACCESS}")
    return access


def _require_length(request: Request) -> None:
    # the vendor's note: a PUT without a body must say Content-Length: 0
    if request.method == "PUT" and not (
        "content-length" in request.headers or "transfer-encoding" in request.headers
    ):
        raise ApiError(411, "Length Required: send Content-Length: 0 with an empty PUT")


def _int_query(query: Mapping[str, str], key: str, default: int, minimum: int) -> int:
    raw = query.get(key)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(400, f"Invalid value for {key}") from None
    if value < minimum:
        raise ApiError(400, f"Invalid value for {key}")
    return value


async def _json_body(request: Request) -> Any:
    try:
        return json.loads(await request.body())
    except ValueError:
        raise ApiError(400, "Invalid JSON") from None


async def _json_object(request: Request) -> dict[str, Any]:
    data = await _json_body(request)
    if not isinstance(data, dict):
        raise ApiError(400, "Invalid JSON: expected an object")
    return data


def _coerce(definition: _Field, value: Any) -> Any:
    """Validate a field value against its type, the way the server answers 400."""
    if value is None:
        return None
    kind = definition.type
    ok = (
        (kind == "text" and isinstance(value, str))
        or (kind == "number" and isinstance(value, int | float) and not isinstance(value, bool))
        or (kind == "choice" and isinstance(value, str) and value in definition.choices)
        or (kind == "date" and isinstance(value, str) and _is_date(value))
    )
    if not ok:
        expected = {
            "text": "a string",
            "number": "a number",
            "date": "a date (yyyy-MM-dd)",
            "choice": "one of " + ", ".join(definition.choices),
        }[kind]
        raise ApiError(400, f"Invalid value for field '{definition.name}': expected {expected}")
    return value


def _is_date(value: str) -> bool:
    if not _DATE_ONLY.match(value):
        return False
    try:
        datetime.strptime(value, "%Y-%m-%d")
    except ValueError:
        return False
    return True


def _byte_range(header: str, length: int) -> tuple[int, int, int]:
    """(start, stop, status) for a single ``bytes=`` range; anything else is the whole body."""
    match = _RANGE.match(header.strip())
    if match is None or (not match.group(1) and not match.group(2)):
        return 0, length, 200
    first, last = match.group(1), match.group(2)
    if not first:
        start, stop = max(0, length - int(last)), length
    else:
        start = int(first)
        stop = min(length, int(last) + 1) if last else length
    if start >= length or stop <= start:
        raise ApiError(
            416, "Requested range not satisfiable", headers={"Content-Range": f"bytes */{length}"}
        )
    return start, stop, 206


async def _chunks(data: bytes, start: int, stop: int) -> AsyncIterator[bytes]:
    # ~64 KiB pieces, so a planned reset can cut a large body in the middle
    view = memoryview(data)
    for offset in range(start, stop, _CHUNK):
        yield bytes(view[offset : min(stop, offset + _CHUNK)])


def _rfc5987(name: str) -> str:
    return quote(name, safe="")


_PARAM = re.compile(r';\s*([A-Za-z0-9_*-]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^;]*)')


def _disposition(value: str) -> dict[str, str]:
    params: dict[str, str] = {}
    for key, raw in _PARAM.findall(";" + value.split(";", 1)[1] if ";" in value else ""):
        text = raw.strip()
        if text.startswith('"') and text.endswith('"'):
            text = re.sub(r"\\(.)", r"\1", text[1:-1])
            # browsers and httpx escape these three in the HTML5 encoding
            text = text.replace("%22", '"').replace("%0D", "\r").replace("%0A", "\n")
        key = key.lower()
        if key.endswith("*"):
            _charset, _, encoded = text.partition("''")
            params[key[:-1]] = unquote(encoded)
        else:
            params.setdefault(key, text)
    return params


def _parse_multipart(content_type: str, body: bytes) -> dict[str, _Part]:
    """The parts of a ``multipart/form-data`` body by field name (first one wins)."""
    kind, _, rest = content_type.partition(";")
    if kind.strip().lower() != "multipart/form-data":
        raise ApiError(400, "Expected multipart/form-data")
    boundary = _disposition("x" + ";" + rest).get("boundary") if rest else None
    if not boundary:
        raise ApiError(400, "Missing multipart boundary")
    delimiter = b"\r\n--" + boundary.encode("latin-1")
    pieces = (b"\r\n" + body).split(delimiter)
    parts: dict[str, _Part] = {}
    for piece in pieces[1:]:
        if piece.startswith(b"--"):
            break
        head, sep, data = piece.removeprefix(b"\r\n").partition(b"\r\n\r\n")
        if not sep:
            raise ApiError(400, "Malformed multipart body")
        headers: dict[str, str] = {}
        for line in head.decode("utf-8", "replace").split("\r\n"):
            key, _, value = line.partition(":")
            headers[key.strip().lower()] = value.strip()
        params = _disposition(headers.get("content-disposition", ""))
        if "name" in params:
            parts.setdefault(
                params["name"], _Part(headers, data, params["name"], params.get("filename"))
            )
    return parts
