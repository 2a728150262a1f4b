"""The RSpace ELN held in memory: users, forms, records (folders, notebooks, documents,
Gallery files, snippets), groups and shares, and the domain operations on them.

``Store`` is the typed state every other part of the emulator (rendering, auth, limits, routes,
backdoor) is a mixin over: lookups, the read/edit permission rules (owner, group folder,
shares), soft deletion, sharing one item, the Api Inbox folders, and writing a form field
(HTML normalisation and ``<fileId=N>``/``<docId=N>`` link expansion).
"""

from __future__ import annotations

import re
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from typing import Any

from docfs.emulators.base import Emulator
from docfs.emulators.rspace.content import normalise_html
from docfs.emulators.rspace.context import Ctx
from docfs.emulators.rspace.errors import illegal, not_found, unauthorised
from docfs.emulators.rspace.records import Field, Form, Group, Record, Share, User

LINK_RE = re.compile(r"<(fileId|docId)=(\d+)>")


class Store(Emulator):
    """The emulator's state, guarded by one lock (``_state``): uvicorn serves requests in its
    own thread while tests call the backdoor from theirs."""

    _state: threading.RLock
    #: what ``/status`` reports, and the release whose routes are served
    version: str
    #: the configured URL ``_links`` are built from (None: the listening address)
    server_url: str | None
    max_upload: int
    token_lifetime: float
    api_enabled: bool
    stale_file_cache: bool
    _records: dict[int, Record]
    _users: dict[int, User]
    _forms: dict[int, Form]
    _groups: dict[int, Group]
    _shares: dict[int, Share]
    _oauth_clients: dict[str, str]
    #: access token → (user id, client id, expiry)
    _access: dict[str, tuple[int, str, float]]
    #: refresh token → (user id, client id)
    _refresh: dict[str, tuple[int, str]]
    _file_cache: OrderedDict[int, tuple[dict[str, Any], float]]
    _seq: dict[str, int]
    _last_ts: float
    basic_form: int
    default_user: int

    # ---- generic record helpers ------------------------------------------------------------

    def _next(self, kind: str) -> int:
        self._seq[kind] += 1
        return self._seq[kind]

    def _now(self) -> float:
        # strictly increasing, so "lastModified desc" orders reliably
        now = max(time.time(), self._last_ts + 0.001)
        self._last_ts = now
        return now

    def _new_record(
        self, kind: str, name: str, owner: int, parent: int | None, **kw: Any
    ) -> Record:
        now = self._now()
        parent_rec = self._records.get(parent) if parent is not None else None
        rec = Record(
            id=self._next("record"),
            kind=kind,
            name=name,
            owner=owner,
            parent=parent,
            created=now,
            modified=now,
            **kw,
        )
        if parent_rec is not None:
            rec.gallery = rec.gallery or parent_rec.gallery
            if rec.section is None and parent_rec.role != "GALLERY":
                rec.section = parent_rec.section
            parent_rec.children.append(rec.id)
        self._records[rec.id] = rec
        return rec

    def _rec(self, ident: int) -> Record | None:
        return self._records.get(ident)

    def _ancestors(self, rec: Record) -> Iterator[Record]:
        seen = {rec.id}
        current = rec
        while current.parent is not None and current.parent not in seen:
            parent = self._records.get(current.parent)
            if parent is None:
                return
            seen.add(parent.id)
            yield parent
            current = parent

    def _is_deleted(self, rec: Record) -> bool:
        return rec.deleted or any(a.deleted for a in self._ancestors(rec))

    def _group_folder_of(self, rec: Record) -> Group | None:
        for r in (rec, *self._ancestors(rec)):
            if r.role == "GROUP":
                return next((g for g in self._groups.values() if g.folder == r.id), None)
        return None

    def _member(self, group: Group, user: User) -> bool:
        return any(uid == user.id for uid, _ in group.members)

    def _shares_for(self, rec: Record) -> list[Share]:
        return [s for s in self._shares.values() if s.item == rec.id]

    def _shared_with(self, rec: Record, user: User) -> Share | None:
        for share in self._shares_for(rec):
            if share.target_type == "USER" and share.target == user.id:
                return share
            group = self._groups.get(share.target) if share.target_type == "GROUP" else None
            if group is not None and self._member(group, user):
                return share
        return None

    def _can_read(self, user: User, rec: Record) -> bool:
        if rec.owner == user.id:
            return True
        group = self._group_folder_of(rec)
        if group is not None and self._member(group, user):
            return True
        containers = [rec, *self._ancestors(rec)]
        return any(self._shared_with(r, user) is not None for r in containers)

    def _can_edit(self, user: User, rec: Record) -> bool:
        if rec.owner == user.id:
            return True
        containers = [rec, *self._ancestors(rec)]
        return any(
            (s := self._shared_with(r, user)) is not None and s.permission == "EDIT"
            for r in containers
        )

    def _global_id(self, rec: Record) -> str:
        if rec.kind == "FOLDER":
            return ("GF" if rec.gallery else "FL") + str(rec.id)
        prefix = {"NOTEBOOK": "NB", "DOCUMENT": "SD", "MEDIA": "GL", "SNIPPET": "ST"}
        return prefix[rec.kind] + str(rec.id)

    def _visible_folder(self, ctx: Ctx, ident: int) -> Record:
        """A folder or notebook the caller may read: 404 if missing, 401 if forbidden."""
        rec = self._rec(ident)
        if rec is None or rec.kind not in ("FOLDER", "NOTEBOOK"):
            raise not_found("Folder", ident)
        if self._is_deleted(rec):
            raise unauthorised(
                f"Unauthorized attempt by {ctx.user.username} to open a deleted folder"
            )
        if not self._can_read(ctx.user, rec):
            raise unauthorised(
                f"Unauthorized attempt by {ctx.user.username} to open an unauthorised folder"
            )
        return rec

    def _visible(self, ctx: Ctx, ident: int, kinds: tuple[str, ...], label: str) -> Record:
        """A document or media record the caller may read; anything else is 404."""
        rec = self._rec(ident)
        if (
            rec is None
            or rec.kind not in kinds
            or self._is_deleted(rec)
            or not self._can_read(ctx.user, rec)
        ):
            raise not_found(label, ident)
        return rec

    # ---- operations shared by the handlers and the backdoor --------------------------------

    def _soft_delete(self, rec: Record) -> None:
        rec.deleted = True
        rec.modified = self._now()
        stack = [rec]
        while stack:
            current = stack.pop()
            for share in self._shares_for(current):
                self._remove_share(share)
            stack.extend(
                self._records[c] for c in current.children if self._records[c].parent == current.id
            )

    def _gallery_inbox(self, user: User, section: str) -> Record:
        sec = self._records[user.folders[section]]
        for cid in sec.children:
            rec = self._records[cid]
            if rec.role == "API_INBOX" and not rec.deleted:
                return rec
        return self._new_record(
            "FOLDER", "Api Inbox", user.id, sec.id, system=True, role="API_INBOX"
        )

    def _share_one(self, user: User, raw: Any, kind: str, spec: dict[str, Any]) -> Share | None:
        item = self._rec(raw) if isinstance(raw, int) else None
        if (
            item is None
            or item.kind not in ("DOCUMENT", "NOTEBOOK", "SNIPPET")
            or (item.gallery and item.kind != "SNIPPET")
            or self._is_deleted(item)
            or item.owner != user.id
        ):
            return None
        if kind == "GROUP":
            group = self._groups.get(spec["id"])
            if group is None or not self._member(group, user):
                return None
            folder = group.folder
            wanted = self._rec(spec["sharedFolderId"]) if spec.get("sharedFolderId") else None
            if (
                wanted is not None
                and wanted.kind == "FOLDER"
                and self._group_folder_of(wanted) is group
            ):
                folder = wanted.id
        else:
            target_user = self._users.get(spec["id"])
            if (
                target_user is None
                or target_user.id == user.id
                or not any(
                    self._member(g, user) and self._member(g, target_user)
                    for g in self._groups.values()
                )
            ):
                return None
            folder = target_user.folders["IndividualShareItems"]
        if any(
            s.item == item.id and s.target_type == kind and s.target == spec["id"]
            for s in self._shares.values()
        ):
            return None
        share = Share(
            self._next("share"), item.id, user.id, kind, spec["id"], spec["permission"], folder
        )
        self._shares[share.id] = share
        self._records[folder].children.append(item.id)
        return share

    def _remove_share(self, share: Share) -> None:
        self._shares.pop(share.id, None)
        folder = self._records.get(share.folder)
        if folder is not None and share.item in folder.children:
            folder.children.remove(share.item)

    # ---- writing a form field -------------------------------------------------------------

    def _apply_field(self, ctx: Ctx, fld: Field, spec: Any, index: int) -> None:
        if not isinstance(spec, dict):
            raise illegal(f"Field {index + 1} must be an object")
        if spec.get("type") not in (None, fld.type):
            raise illegal(f"Field {index + 1} has type {fld.type}, not {spec.get('type')}")
        if spec.get("name") not in (None, fld.name):
            raise illegal(f"Field {index + 1} has name {fld.name}, not {spec.get('name')}")
        if "content" not in spec or spec["content"] is None:
            return
        content = str(spec["content"])
        if fld.type == "text":
            content = self._expand_links(ctx, normalise_html(content), index + 1)
        fld.content = content
        fld.modified = self._now()

    def _expand_links(self, ctx: Ctx, html: str, field_no: int) -> str:
        def replace(match: re.Match[str]) -> str:
            kind, ident = match.group(1), int(match.group(2))
            rec = self._rec(ident)
            if kind == "docId":
                if rec is None or rec.kind not in ("DOCUMENT", "FOLDER", "NOTEBOOK"):
                    raise illegal(
                        f"Record with docId={ident} from field {field_no} cannot be accessed"
                    )
                gid = self._global_id(rec)
                return (
                    f'<a class="linkedRecord mceNonEditable" data-globalid="{gid}" '
                    f'href="/globalId/{gid}">{gid}: {rec.name}</a>'
                )
            if (
                rec is None
                or rec.kind != "MEDIA"
                or self._is_deleted(rec)
                or not self._can_read(ctx.user, rec)
            ):
                raise illegal(
                    f"Attachment with fileId={ident} from field {field_no} cannot be accessed"
                )
            if rec.section in ("Audios", "Videos"):
                raise illegal(
                    "Linking to audio/video attachments is not supported yet, please link this "
                    f"attachment manually (fileId={ident})"
                )
            if rec.section == "Images":
                return (
                    f'<img class="imageDropped inlineImageThumbnail" data-rsfileid="{ident}" '
                    f'src="/thumbnail/data?sourceType=IMAGE&amp;sourceId={ident}" '
                    f'alt="image {rec.name}" />'
                )
            return (
                f'<div class="attachmentDiv mceNonEditable" data-rsfileid="{ident}">'
                f'<a class="attachmentLinked" href="/Streamfile/{ident}" target="_blank">'
                f"{rec.name}</a></div>"
            )

        return LINK_RE.sub(replace, html)
