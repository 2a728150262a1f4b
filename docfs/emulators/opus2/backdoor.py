"""What tests (and the demo data) use to build, change and inspect an Opus 2 tenant behind the
client's back: the clock, rate limits and the API switch, users and tokens, projects and their
access, fields, folders and documents, and snapshots. Each takes the lock, so tests may call
them from another thread while the server runs. The routes create users, tokens and projects
through the same methods."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from docfs.emulators.opus2.model import (
    Field,
    Project,
    Team,
    Token,
    User,
    check_access,
    coerce_value,
)
from docfs.emulators.opus2.rendering import Rendering
from docfs.emulators.opus2.wire import FIELD_TYPES, READ_WRITE


class Backdoor(Rendering):
    """Building, changing and inspecting the tenant."""

    # ================================================================ time and limits

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

    # ================================================================ users and tokens

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
            user = User(
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
            token = Token(
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
            team = Team(self._new_id(), name, {self._user_ref(m).id for m in members})
            self._teams[team.id] = team
            return team.id

    # ================================================================ projects

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
            project = Project(self._new_id(), name, template_id, now, now, download_via_api)
            for user, access in (members or {self.default_user_id: READ_WRITE}).items():
                project.members[self._user_ref(user).id] = check_access(access)
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
                project.members[uid] = check_access(access)

    def set_team_access(self, project_id: str, team_id: str, access: str | None) -> None:
        with self._state:
            project = self._projects[project_id]
            if access is None:
                project.teams.pop(team_id, None)
            else:
                project.teams[team_id] = check_access(access)

    def set_download_via_api(self, project_id: str, enabled: bool) -> None:
        """The per-project "Download docs via API" setting."""
        with self._state:
            self._projects[project_id].download_via_api = enabled

    def add_field(
        self, project_id: str, name: str, type: str = "text", choices: Iterable[str] = ()
    ) -> str:
        """Define a metadata field (``text``/``date``/``number``/``choice``); returns its id."""
        if type not in FIELD_TYPES:
            raise ValueError(f"field type {type!r}")
        with self._state:
            definition = Field(self._new_id(), name, type, tuple(choices))
            self._projects[project_id].fields[definition.id] = definition
            return definition.id

    # ================================================================ folders, documents

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
                doc.values[definition.id] = coerce_value(definition, value)
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
            doc.values[definition.id] = coerce_value(definition, value)
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
