"""Entries from RSpace's records: folders, notebooks, documents, fields, Gallery files."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from docfs.backends.base import Entry, Kind, Op
from docfs.backends.rspace.api import RSpaceApi
from docfs.backends.rspace.common import (
    _UNCREATABLE,
    DOCUMENT,
    FIELD,
    FOLDER,
    GALLERY,
    GFOLDER,
    HOME,
    LINKED,
    MEDIA,
    NOTEBOOK,
    SECTION,
    UPLOAD_SECTIONS,
    _digest,
    _sendable,
    _ts,
)
from docfs.backends.rspace.records import ShareInfo, _MediaInfo


class RSpaceEntries(RSpaceApi):
    """Builds entries; ownership is judged against the Home folder (``_home``)."""

    def _owned(self, owner: Mapping[str, Any] | None) -> bool:
        return bool(owner) and owner is not None and owner.get("homeFolderId") == self._home

    @staticmethod
    def _folder_ops(kind: str, name: str, section: str, system: bool, owned: bool) -> frozenset[Op]:
        if kind == HOME:
            return frozenset({Op.MKDIR})
        if kind == GALLERY:
            return frozenset()
        if kind in (SECTION, GFOLDER):
            ops = {Op.MKDIR}
            if section in UPLOAD_SECTIONS:
                ops.add(Op.CREATE_FILE)
            if kind == GFOLDER and not system and owned:
                ops.add(Op.REMOVE)
            return frozenset(ops)
        if kind == NOTEBOOK:
            return frozenset({Op.MKDIR, Op.REMOVE, Op.RENAME}) if owned else frozenset()
        if system:
            return frozenset() if name in _UNCREATABLE else frozenset({Op.MKDIR})
        if owned:
            return frozenset({Op.MKDIR, Op.REMOVE, Op.RENAME})
        return frozenset({Op.MKDIR})  # e.g. a group's shared folder

    def _dir_entry(
        self,
        *,
        gid: str,
        name: str,
        kind: str,
        parent: str,
        modified: str,
        owner: Mapping[str, Any] | None,
        system: bool,
        section: str = "",
    ) -> Entry:
        owned = self._owned(owner)
        meta = {"globalId": gid}
        if owner:
            meta["owner"] = str(owner.get("username", ""))
        return Entry(
            id=gid,
            name=name,
            kind=Kind.DIR,
            size=0,
            mtime=_ts(modified),
            version=modified,
            meta=meta,
            ops=self._folder_ops(kind, name, section, system, owned),
            extra={
                "type": kind,
                "id": gid[2:],
                "parent": parent,
                "section": section,
                "system": "1" if system else "",
                "owned": "1" if owned else "",
            },
        )

    def _document_entry(
        self,
        doc: Mapping[str, Any],
        parent: str,
        shares: Sequence[ShareInfo] | None = None,
    ) -> Entry:
        """A document directory; ``doc`` is a tree record or an ``ApiDocument``."""
        owner = doc.get("owner")
        owned = self._owned(owner)
        meta = {"globalId": str(doc["globalId"])}
        if owner:
            meta["owner"] = str(owner.get("username", ""))
        full = "form" in doc
        if full:
            meta["tags"] = str(doc.get("tags") or "")
            meta["form"] = str((doc.get("form") or {}).get("name") or "")
            meta["shares"] = json.dumps(
                [
                    {
                        "id": s.id,
                        "target": f"{s.target_type}:{s.target_id}",
                        "permission": s.permission,
                    }
                    for s in shares or ()
                ]
            )
        ops = {Op.CREATE_FILE, Op.SET_META}
        if owned:
            ops |= {Op.REMOVE, Op.RENAME}
        return Entry(
            id=str(doc["globalId"]),
            name=str(doc["name"]),
            kind=Kind.DIR,
            size=0,
            mtime=_ts(doc.get("lastModified")),
            version=str(doc.get("lastModified")),
            meta=meta,
            ops=frozenset(ops),
            extra={
                "type": DOCUMENT,
                "id": str(doc["id"]),
                "parent": parent,
                "owned": "1" if owned else "",
                "meta": "full" if full else "partial",
            },
            partial_meta=not full,
            prefilled=bool(doc.get("fields")),
        )

    def _media_entry(
        self,
        file_id: int,
        name: str,
        parent: str,
        info: _MediaInfo | None,
        mtime: float | None,
        owner: str = "",
        section: str = "",
    ) -> Entry:
        meta = {"globalId": f"GL{file_id}"}
        if owner:
            meta["owner"] = owner
        if info is not None:
            meta["caption"] = info.caption
        return Entry(
            id=f"GL{file_id}",
            name=name,
            kind=Kind.FILE,
            size=info.size if info is not None else None,
            mtime=mtime,
            version=str(info.version) if info is not None else f"t{mtime}",
            meta=meta,
            # a new version takes the uploaded filename as its name (see ``replace_file``)
            ops=frozenset({Op.REPLACE, Op.RENAME} if _sendable(name) else {Op.RENAME}),
            extra={"type": MEDIA, "id": str(file_id), "parent": parent, "section": section},
        )

    def _tree_entry(
        self, rec: Mapping[str, Any], parent: Entry, media: Mapping[int, _MediaInfo]
    ) -> Entry | None:
        kind, gid, name = rec.get("type"), str(rec["globalId"]), str(rec["name"])
        parent_id = parent.extra["id"]
        ptype = parent.extra["type"]
        owner = rec.get("owner")
        if kind == "FOLDER" or kind == "NOTEBOOK":
            section = ""
            if kind == "NOTEBOOK":
                dkind = NOTEBOOK
            elif not gid.startswith("GF"):
                dkind = FOLDER
            elif ptype == HOME:
                dkind = GALLERY
            elif ptype == GALLERY:
                dkind, section = SECTION, name
            else:
                dkind, section = GFOLDER, parent.extra.get("section", "")
            return self._dir_entry(
                gid=gid,
                name=name,
                kind=dkind,
                parent=parent_id,
                modified=str(rec["lastModified"]),
                owner=owner,
                system=bool(rec.get("systemFolder")),
                section=section,
            )
        if kind == "DOCUMENT":
            return self._document_entry(rec, parent_id)
        if kind == "MEDIA":
            file_id = int(rec["id"])
            return self._media_entry(
                file_id,
                name,
                parent_id,
                media.get(file_id),
                _ts(rec.get("lastModified")),
                str((owner or {}).get("username", "")),
                parent.extra.get("section", ""),
            )
        return None  # snippets (and unknown kinds) are not files of this mapping

    def _document_children(self, doc: Mapping[str, Any], parent: Entry) -> list[Entry]:
        gid = str(doc["globalId"])
        entries: list[Entry] = []
        seen: set[int] = set()
        for fld in doc.get("fields") or []:
            content = str(fld.get("content") or "")
            entries.append(
                Entry(
                    id=f"{gid}/FD{fld['id']}",
                    name=f"{fld['name']}.html",
                    kind=Kind.FILE,
                    size=len(content.encode("utf-8")),
                    mtime=_ts(fld.get("lastModified")),
                    version=_digest(content),
                    meta={"globalId": f"FD{fld['id']}", "type": str(fld.get("type", ""))},
                    # a field goes only with its document (``rm -r`` of the document works)
                    ops=frozenset({Op.REPLACE, Op.REMOVE_WITH_DIR}),
                    extra={"type": FIELD, "id": str(fld["id"]), "doc": str(doc["id"])},
                )
            )
        for fld in doc.get("fields") or []:
            for f in fld.get("files") or []:
                if int(f["id"]) in seen:
                    continue
                seen.add(int(f["id"]))
                entries.append(self._linked_entry(doc, f))
        return entries

    @staticmethod
    def _linked_entry(doc: Mapping[str, Any], f: Mapping[str, Any]) -> Entry:
        return Entry(
            id=f"{doc['globalId']}/GL{f['id']}",
            name=str(f["name"]),
            kind=Kind.FILE,
            size=int(f["size"]),
            mtime=_ts(f.get("created")),
            version=str(f.get("version")),
            meta={"globalId": f"GL{f['id']}", "caption": str(f.get("caption") or "")},
            ops=frozenset(
                {Op.REPLACE, Op.REMOVE_WITH_DIR}
                if _sendable(str(f["name"]))
                else {Op.REMOVE_WITH_DIR}
            ),
            extra={"type": LINKED, "id": str(f["id"]), "doc": str(doc["id"])},
        )
