"""What tests drive the RSpace emulator with: users, groups, forms and OAuth clients, content
created or changed behind the client's back, account and token switches, and snapshots."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from docfs.emulators.rspace.content import SECTIONS, content_type_for, section_for_filename
from docfs.emulators.rspace.context import Ctx
from docfs.emulators.rspace.model import Store
from docfs.emulators.rspace.records import Field, Form, Group, User
from docfs.emulators.rspace.settings import API


class Backdoor(Store):
    """The Python side door tests use; every method takes the state lock."""

    # ---- backdoor: users, groups, forms ----------------------------------------------------

    def add_user(
        self,
        username: str,
        *,
        api_key: str | None = None,
        password: str | None = None,
        pi: bool = False,
        first_name: str | None = None,
        last_name: str = "User",
    ) -> int:
        """Create a user with the folders a fresh account gets; returns the user id."""
        with self._state:
            user = User(
                id=self._next("user"),
                username=username,
                email=f"{username}@example.org",
                first_name=first_name or username.capitalize(),
                last_name=last_name,
                password=password or f"{username}-pw",
                api_key=api_key,
                pi=pi,
            )
            self._users[user.id] = user
            self._init_folders(user)
            return user.id

    def _init_folders(self, user: User) -> None:
        home = self._new_record("FOLDER", user.username, user.id, None, role="HOME")
        user.home = home.id
        gallery = self._new_record(
            "FOLDER", "Gallery", user.id, home.id, gallery=True, system=True, role="GALLERY"
        )
        for section in SECTIONS:
            sec = self._new_record(
                "FOLDER", section, user.id, gallery.id, system=True, role="SECTION", section=section
            )
            user.folders[section] = sec.id
        self._new_record("FOLDER", "Examples", user.id, user.folders["Images"], system=True)
        snippets_shared = self._new_record(
            "FOLDER", "SNIPPETS_Shared", user.id, user.folders["Snippets"], system=True
        )
        for sub in ("LabGroups", "CollaborationGroups", "IndividualShareItems"):
            rec = self._new_record(
                "FOLDER", f"SNIPPETS_{sub}", user.id, snippets_shared.id, system=True
            )
            user.folders[f"SNIPPETS_{sub}"] = rec.id
        shared = self._new_record("FOLDER", "Shared", user.id, home.id, system=True, role="SHARED")
        roles = {"LabGroups": "LABGROUPS", "CollaborationGroups": "COLLABGROUPS"}
        roles["IndividualShareItems"] = "INDIVIDUAL"
        for sub, role in roles.items():
            rec = self._new_record("FOLDER", sub, user.id, shared.id, system=True, role=role)
            user.folders[sub] = rec.id
        self._new_record("FOLDER", "Templates", user.id, home.id, system=True, role="TEMPLATES")

    def _user(self, username: str | None) -> User:
        if username is None:
            return self._users[self.default_user]
        for user in self._users.values():
            if user.username == username:
                return user
        raise KeyError(f"no user {username!r}")

    def user_id(self, username: str | None = None) -> int:
        with self._state:
            return self._user(username).id

    def home_id(self, username: str | None = None) -> int:
        """The id of a user's Home folder (the default user's without a name)."""
        with self._state:
            return self._user(username).home

    def gallery_id(self, username: str | None = None) -> int:
        with self._state:
            home = self._records[self._user(username).home]
            return next(c for c in home.children if self._records[c].role == "GALLERY")

    def folder_id(self, name: str, username: str | None = None) -> int:
        """A system folder of a user: a section name, ``LabGroups``, ``IndividualShareItems``…"""
        with self._state:
            return self._user(username).folders[name]

    def set_api_key(self, username: str | None, key: str | None) -> None:
        """Regenerate (or, with None, revoke) a user's API key."""
        with self._state:
            self._user(username).api_key = key

    def set_user_enabled(self, username: str | None, enabled: bool) -> None:
        with self._state:
            self._user(username).enabled = enabled

    def set_user_api_enabled(self, username: str | None, enabled: bool) -> None:
        with self._state:
            self._user(username).api_enabled = enabled

    def add_oauth_client(self, client_id: str, secret: str) -> None:
        with self._state:
            self._oauth_clients[client_id] = secret

    def expire_tokens(self, *, refresh: bool = False) -> None:
        """Invalidate every OAuth access token (and refresh tokens too, if asked)."""
        with self._state:
            self._access.clear()
            if refresh:
                self._refresh.clear()

    def add_form(self, name: str, fields: Sequence[tuple[str, str]]) -> int:
        """A published form with ``(field name, type)`` pairs; returns the form id."""
        with self._state:
            form = Form(self._next("form"), name, list(fields))
            self._forms[form.id] = form
            return form.id

    def add_group(
        self,
        name: str,
        members: Sequence[str],
        *,
        pi: str | None = None,
        group_type: str = "LAB_GROUP",
        admins: Sequence[str] = (),
    ) -> int:
        """A group of existing users; its shared folder appears in each member's LabGroups."""
        with self._state:
            pi_user = self._user(pi or members[0])
            folder = self._new_record(
                "FOLDER",
                f"{name}_SHARED",
                pi_user.id,
                pi_user.folders["LabGroups"],
                shared_folder=True,
                role="GROUP",
            )
            snippet_folder = self._new_record(
                "FOLDER",
                f"{name}_SHARED",
                pi_user.id,
                pi_user.folders["SNIPPETS_LabGroups"],
                shared_folder=True,
            )
            roster: list[tuple[int, str]] = []
            for username in members:
                user = self._user(username)
                role = (
                    "PI" if user.id == pi_user.id else "LAB_ADMIN" if username in admins else "USER"
                )
                roster.append((user.id, role))
                if user.id != pi_user.id:
                    self._records[user.folders["LabGroups"]].children.append(folder.id)
            group = Group(
                self._next("group"),
                name,
                re.sub(r"\W+", "", name) + str(self._seq["group"]),
                group_type,
                roster,
                folder.id,
                snippet_folder.id,
            )
            self._groups[group.id] = group
            return group.id

    def add_share(
        self,
        item: int,
        *,
        group: int | None = None,
        user: str | None = None,
        permission: str = "READ",
    ) -> int:
        """Share a document or notebook as its owner would; returns the share id."""
        with self._state:
            owner = self._users[self._records[item].owner]
            if group is not None:
                kind, target = "GROUP", group
            else:
                kind, target = "USER", self._user(user).id
            share = self._share_one(owner, item, kind, {"id": target, "permission": permission})
            if share is None:
                raise ValueError(f"item {item} cannot be shared with {kind} {target}")
            return share.id

    # ---- backdoor: content -----------------------------------------------------------------

    def _owner_of(self, parent: int, username: str | None) -> User:
        if username is not None:
            return self._user(username)
        return self._users[self._records[parent].owner]

    def add_folder(
        self, parent: int, name: str, *, notebook: bool = False, username: str | None = None
    ) -> int:
        """A folder (or notebook) under ``parent``, owned by the parent's owner by default."""
        with self._state:
            owner = self._owner_of(parent, username)
            parent_rec = self._records[parent]
            rec = self._new_record(
                "NOTEBOOK" if notebook else "FOLDER",
                name,
                owner.id,
                parent,
                shared_folder=self._group_folder_of(parent_rec) is not None,
            )
            return rec.id

    def add_document(
        self,
        parent: int,
        name: str,
        *,
        fields: Mapping[str, str] | Sequence[str] | None = None,
        form: int | None = None,
        tags: str | None = None,
        username: str | None = None,
    ) -> int:
        """A document; ``fields`` maps field names (or positions) to raw HTML content.

        ``<fileId=N>`` markers in text fields are expanded as the API would.
        """
        with self._state:
            owner = self._owner_of(parent, username)
            frm = self._forms[form or self.basic_form]
            now = self._now()
            values: list[str | None] = [None] * len(frm.fields)
            if isinstance(fields, Mapping):
                for i, (fname, _) in enumerate(frm.fields):
                    values[i] = fields.get(fname)
            elif fields is not None:
                for i, text in enumerate(fields):
                    values[i] = text
            flds = []
            ctx = self._backdoor_ctx(owner)
            for i, ((fname, ftype), content) in enumerate(zip(frm.fields, values, strict=True)):
                fld = Field(self._next("field"), fname, ftype, "", now, i)
                if content is not None:
                    self._apply_field(ctx, fld, {"content": content}, i)
                flds.append(fld)
            rec = self._new_record(
                "DOCUMENT", name, owner.id, parent, form=frm.id, fields=flds, tags=tags
            )
            return rec.id

    def _backdoor_ctx(self, user: User) -> Ctx:
        base = (self.server_url or "http://127.0.0.1") + API
        return Ctx(user, "GET", (), [], {}, b"", base)

    def add_file(
        self,
        folder: int | None,
        name: str,
        data: bytes,
        *,
        caption: str = "",
        username: str | None = None,
    ) -> int:
        """A Gallery file in ``folder`` (None: the section's Api Inbox); no section check."""
        with self._state:
            section = section_for_filename(name)
            if folder is None:
                owner = self._user(username)
                folder = self._gallery_inbox(owner, section).id
            else:
                owner = self._owner_of(folder, username)
            parent = self._records[folder]
            rec = self._new_record(
                "MEDIA",
                name,
                owner.id,
                folder,
                data=data,
                content_type=content_type_for(name),
                caption=caption,
                section=parent.section or section,
            )
            return rec.id

    def add_snippet(self, name: str, content: str, *, username: str | None = None) -> int:
        with self._state:
            owner = self._user(username)
            rec = self._new_record(
                "SNIPPET", name, owner.id, owner.folders["Snippets"], content=content
            )
            return rec.id

    def link_file(self, document: int, file: int, field_index: int = 0) -> None:
        """Append ``<fileId=file>`` to a document's field (a new revision), as a user would."""
        with self._state:
            doc = self._records[document]
            fld = doc.fields[field_index]
            ctx = self._backdoor_ctx(self._users[doc.owner])
            self._apply_field(ctx, fld, {"content": fld.content + f"<fileId={file}>"}, field_index)
            doc.version += 1
            doc.modified = self._now()

    def set_field(self, document: int, field_name: str, html: str) -> None:
        """Change a field behind the client's back (normalised, new revision)."""
        with self._state:
            doc = self._records[document]
            fld = next(f for f in doc.fields if f.name == field_name)
            ctx = self._backdoor_ctx(self._users[doc.owner])
            self._apply_field(ctx, fld, {"content": html}, fld.column)
            doc.version += 1
            doc.modified = self._now()

    def replace_file_data(self, file: int, data: bytes, name: str | None = None) -> None:
        """A new version of a Gallery file behind the client's back."""
        with self._state:
            rec = self._records[file]
            rec.data = data
            if name is not None:
                rec.name = name
            rec.version += 1
            rec.modified = self._now()

    def rename(self, ident: int, name: str) -> None:
        with self._state:
            rec = self._records[ident]
            rec.name = name
            rec.modified = self._now()
            self._file_cache.pop(ident, None)

    def delete(self, ident: int) -> None:
        """Soft-delete any record (and so its subtree) behind the client's back."""
        with self._state:
            self._soft_delete(self._records[ident])

    def set_document_flags(
        self, document: int, *, signed: bool | None = None, edit_locked: bool | None = None
    ) -> None:
        """Sign a document, or mark it open in the web editor (PUT then answers 409)."""
        with self._state:
            doc = self._records[document]
            if signed is not None:
                doc.signed = signed
            if edit_locked is not None:
                doc.edit_locked = edit_locked

    def set_file_flags(
        self, file: int, *, locked: bool | None = None, blob_missing: bool | None = None
    ) -> None:
        """Lock a file (new versions answer 500) or lose its blob (download answers empty)."""
        with self._state:
            rec = self._records[file]
            if locked is not None:
                rec.file_locked = locked
            if blob_missing is not None:
                rec.blob_missing = blob_missing

    # ---- backdoor: inspection --------------------------------------------------------------

    def record(self, ident: int) -> dict[str, Any]:
        """A snapshot of any record: kind, name, parent, owner, deleted, version, size…"""
        with self._state:
            rec = self._records[ident]
            return {
                "id": rec.id,
                "kind": rec.kind,
                "name": rec.name,
                "parent": rec.parent,
                "owner": self._users[rec.owner].username,
                "deleted": self._is_deleted(rec),
                "version": rec.version,
                "size": len(rec.data),
                "section": rec.section,
                "tags": rec.tags,
                "caption": rec.caption,
                "globalId": self._global_id(rec),
            }

    def children(self, ident: int) -> list[dict[str, Any]]:
        """Snapshots of the live children of a folder, in insertion order."""
        with self._state:
            rec = self._records[ident]
            return [self.record(c) for c in rec.children if not self._is_deleted(self._records[c])]

    def find(self, name: str, *, kind: str | None = None) -> list[int]:
        """Ids of live records with this name (and kind)."""
        with self._state:
            return [
                r.id
                for r in self._records.values()
                if r.name == name and (kind is None or r.kind == kind) and not self._is_deleted(r)
            ]

    def file_data(self, ident: int) -> bytes:
        with self._state:
            return self._records[ident].data

    def fields(self, document: int) -> dict[str, str]:
        """Field name → current content of a document."""
        with self._state:
            return {f.name: f.content for f in self._records[document].fields}

    def field_ids(self, document: int) -> list[int]:
        with self._state:
            return [f.id for f in self._records[document].fields]

    def shares(self) -> list[dict[str, Any]]:
        with self._state:
            return [
                {
                    "id": s.id,
                    "item": s.item,
                    "sharer": self._users[s.sharer].username,
                    "targetType": s.target_type,
                    "target": s.target,
                    "permission": s.permission,
                    "folder": s.folder,
                }
                for s in self._shares.values()
            ]
