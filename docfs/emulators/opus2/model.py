"""An Opus 2 tenant without HTTP: users, tokens, teams, projects, folders, documents with their
versions and field values, ``State`` (the typed shared state every part of the emulator works
on), and ``Model``, the domain operations on it (the tenant's clock, ids, creating folders and
documents, new versions, project access). Callers hold ``State._state``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import mimetypes
import random
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from docfs.emulators.opus2.wire import ACCESS, DATE_ONLY, READ, READ_WRITE, ApiError, Opus2Profile


@dataclass
class User:
    id: str
    email: str
    name: str
    role_id: str
    admin: bool
    created_at: float


@dataclass
class Token:
    id: str
    name: str
    user_id: str
    value: str
    created_at: float
    expires_at: float | None = None


@dataclass
class Team:
    id: str
    name: str
    members: set[str] = field(default_factory=set)  # user ids


@dataclass
class Field:
    id: str
    name: str
    type: str
    choices: tuple[str, ...] = ()


@dataclass
class Project:
    id: str
    name: str
    template_id: str
    created_at: float
    updated_at: float
    download_via_api: bool = True
    members: dict[str, str] = field(default_factory=dict)  # user id → access
    teams: dict[str, str] = field(default_factory=dict)  # team id → access
    fields: dict[str, Field] = field(default_factory=dict)


@dataclass
class Folder:
    id: str
    project_id: str
    name: str
    parent_id: str | None
    created_at: float
    updated_at: float


@dataclass
class Version:
    id: str
    number: int
    data: bytes
    checksum: str
    created_at: float


@dataclass
class Document:
    id: str
    project_id: str
    name: str
    folder_id: str | None
    mime_type: str
    created_at: float
    updated_at: float
    versions: list[Version]
    values: dict[str, Any] = field(default_factory=dict)  # field id → value

    @property
    def current(self) -> Version:
        return self.versions[-1]


class State:
    """The tenant's state and settings, shared by every part of the emulator
    (``Opus2Emulator.__init__`` sets them). Everything is guarded by ``_state``."""

    #: the wire profile the tenant is served in
    profile: Opus2Profile
    _state: threading.RLock
    _ids: random.Random
    #: the last numeric id handed out (profiles with ``numeric_ids``)
    _counter: int
    _clock_offset: float
    _frozen_at: float | None
    _rate_limit: int
    _rate_window: float
    _token_ttl: float | None
    _api_enabled: bool
    #: request times per token inside the rate-limit window
    _hits: dict[str, deque[float]]
    _users: dict[str, User]
    _tokens: dict[str, Token]
    _teams: dict[str, Team]
    _projects: dict[str, Project]
    _folders: dict[str, Folder]
    _documents: dict[str, Document]
    default_user_id: str
    default_token: str


class Model(State):
    """Domain operations on the tenant (callers hold the lock)."""

    def now(self) -> float:
        """The tenant's clock (seconds since the epoch): wall time, or the frozen time, plus
        ``advance_clock`` shifts."""
        with self._state:
            base = time.time() if self._frozen_at is None else self._frozen_at
            return base + self._clock_offset

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

    def _user_ref(self, ref: str) -> User:
        if ref in self._users:
            return self._users[ref]
        for user in self._users.values():
            if user.email.lower() == ref.lower():
                return user
        raise KeyError(f"no user {ref!r}")

    def _field_named(self, project: Project, name: str) -> Field:
        for definition in project.fields.values():
            if definition.name == name:
                return definition
        raise KeyError(f"no field {name!r}")

    def _folder_path(self, folder: Folder) -> str:
        parts = [folder.name]
        parent = folder.parent_id
        while parent is not None:
            above = self._folders[parent]
            parts.append(above.name)
            parent = above.parent_id
        return "/" + "/".join(reversed(parts))

    def _sorted_folders(self, project_id: str) -> list[Folder]:
        folders = [f for f in self._folders.values() if f.project_id == project_id]
        return sorted(folders, key=lambda f: (self._folder_path(f), f.id))

    def _sorted_docs(self, project_id: str) -> list[Document]:
        docs = [d for d in self._documents.values() if d.project_id == project_id]
        return sorted(docs, key=lambda d: (d.name, d.id))

    def _create_folder(self, project: Project, name: str, parent_id: str | None) -> Folder:
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
        folder = Folder(self._new_id(), project.id, name, parent_id, now, now)
        self._folders[folder.id] = folder
        return folder

    def _create_document(
        self,
        project: Project,
        name: str,
        data: bytes,
        folder_id: str | None,
        mime_type: str | None,
    ) -> Document:
        if folder_id is not None:
            folder = self._folders.get(folder_id)
            if folder is None or folder.project_id != project.id:
                raise ApiError(404, "Folder not found")
        now = self.now()
        doc = Document(
            id=self._new_id(),
            project_id=project.id,
            name=name,
            folder_id=folder_id,
            mime_type=mime_type or mimetypes.guess_type(name)[0] or "application/octet-stream",
            created_at=now,
            updated_at=now,
            versions=[Version(self._new_id(), 1, data, content_checksum(data), now)],
        )
        self._documents[doc.id] = doc
        return doc

    def _new_version(self, doc: Document, data: bytes) -> None:
        now = self.now()
        number = doc.current.number + 1
        doc.versions.append(Version(self._new_id(), number, data, content_checksum(data), now))
        doc.updated_at = now

    def _access(self, project: Project, user: User) -> str | None:
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


def content_checksum(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def check_access(access: str) -> str:
    if access not in ACCESS:
        raise ValueError(f"access must be one of {ACCESS}")
    return access


def coerce_value(definition: Field, value: Any) -> Any:
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
    if not DATE_ONLY.match(value):
        return False
    try:
        datetime.strptime(value, "%Y-%m-%d")
    except ValueError:
        return False
    return True
