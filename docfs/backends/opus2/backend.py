"""Writing to an Opus 2 tenant: uploads, new versions, folders, moves and fields.

``Opus2Backend`` is the class a mount uses: the read side (``Opus2Reader``) plus writes.
"""

from __future__ import annotations

import mimetypes
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from docfs import errors
from docfs.backends._multipart import Field, FilePart, Multipart
from docfs.backends.base import Entry, Kind, Op
from docfs.backends.opus2 import finding
from docfs.backends.opus2.api import (
    _AUTH,
    _DELETE,
    _RESERVED_META,
    _T_DOCUMENT,
    _T_FOLDER,
    _T_PROJECT,
    _as_object,
    _check_name,
    _q,
    _refused,
    _replace_filename,
    _sid,
    _typed_value,
    log,
)
from docfs.backends.opus2.reading import Opus2Reader
from docfs.hashing import file_digest_async
from docfs.wire.opus2_profile import Opus2Profile


class Opus2Backend(Opus2Reader):
    """Projects → folders → documents of one Opus 2 tenant, over its inbound Documents API."""

    # ---- finding (docfs/backends/opus2/finding.py) -----------------------------------------

    async def resolve(self, kind: str, key: str) -> Entry | None:
        return await finding.resolve(self, kind, key)

    def _target_folder(self, parent: Entry) -> tuple[str, str]:
        kind = parent.extra.get("type")
        if kind == _T_PROJECT:
            return parent.extra["project"], ""
        if kind == _T_FOLDER:
            return parent.extra["project"], parent.extra["folder"]
        raise errors.NotSupported("opus2: documents and folders live inside projects")

    def refusal_hint(self, entry: Entry, op: Op) -> str | None:
        kind = entry.extra.get("type")
        if kind == "root":
            return "projects are made in Opus 2 itself: files and folders go inside a project"
        if not self._writable(entry):
            return "your access to this project is read-only: a project administrator can change it"
        if kind == _T_PROJECT and op in (Op.REMOVE, Op.RENAME):
            return "projects are renamed and removed in Opus 2 itself"
        if kind == _T_FOLDER and op is Op.RENAME:
            return (
                "the Documents API cannot rename folders: make a new folder and move the "
                "documents into it (mv)"
            )
        if kind == _T_DOCUMENT and op is Op.REMOVE:
            return (
                "the Documents API cannot delete documents: delete it in Opus 2 (or set "
                "document_delete = true in the remote's wire profile if the tenant has the call)"
            )
        if op is Op.SET_META and kind != _T_DOCUMENT:
            return "only documents have fields (user.opus2.<field name>)"
        return None

    def check_name(self, parent: Entry, name: str, kind: Kind) -> None:
        """Refuse at once (EINVAL, no request) a name the server answers 400 for, so a new
        file fails at ``open`` and not at close with its data in lost+found."""
        _check_name(name, kind)

    async def create_file(self, parent: Entry, name: str, src: Path) -> Entry:
        _check_name(name, Kind.FILE)
        pid, folder = self._target_folder(parent)
        fields = {self.profile.upload_folder_part: folder} if folder else {}
        body = upload_body(self.profile, src, name, fields)
        try:
            response = await self.http.request(
                "POST",
                self._project_path(pid, "documents"),
                endpoint="upload",
                params={"rejectDuplicate": "true"},
                headers={"Content-Type": body.content_type},
                body=body,
                status_map=_AUTH,
            )
        except errors.AlreadyExists:
            # a document of this name and checksum is there already (our own earlier attempt
            # whose answer was lost, or an identical upload): that document is the result
            existing = await self._find_same(parent, name, src)
            if existing is None:
                raise
            log.info("opus2: %r already in the folder (same checksum); not uploaded again", name)
            return existing
        return self._document_entry(_as_object(self._json(response)), pid, True)

    async def _find_same(self, parent: Entry, name: str, src: Path) -> Entry | None:
        digest = "sha256:" + await file_digest_async(src, "sha256")
        size = src.stat().st_size
        async for child in self.list_dir(parent):
            if child.is_dir or child.name != name:
                continue
            checksum = child.extra.get("checksum", "")
            if checksum == digest or (not checksum and child.size == size):
                return child
        return None

    async def replace_file(self, entry: Entry, src: Path) -> Entry:
        self._require_document(entry, "replace")
        pid = entry.extra["project"]
        # the name stays what it is (docs/protocols/opus2.md: unless ``replaceName=true``, never
        # sent), so the filename only has to pass the server's check: a blank or "/" name would not
        body = upload_body(self.profile, src, _replace_filename(entry.name), {})
        response = await self.http.request(
            "POST",
            self._project_path(pid, "documents", _q(entry.extra["document"]), "replace"),
            endpoint="replace",
            headers={"Content-Type": body.content_type},
            body=body,
            status_map=_AUTH,
        )
        return self._document_entry(_as_object(self._json(response)), pid, True)

    async def mkdir(self, parent: Entry, name: str) -> Entry:
        _check_name(name, Kind.DIR)
        pid, folder = self._target_folder(parent)
        response = await self.http.request(
            "POST",
            self._project_path(pid, "folders"),
            endpoint="mkdir",
            json={"name": name, "parentId": self._json_id(folder) if folder else None},
            status_map=_AUTH,
        )
        data = _as_object(self._json(response))
        return self._folder_entry(data, pid, True, parent.extra.get("path", ""))

    async def remove(self, entry: Entry) -> None:
        kind = entry.extra.get("type")
        pid = entry.extra.get("project", "")
        if kind == _T_FOLDER:
            await self.http.request(
                "DELETE",
                self._project_path(pid, "folders", _q(entry.extra["folder"])) + "/",
                endpoint="rmdir",
                status_map={**_DELETE, self.profile.folder_not_empty_status: errors.NotEmpty},
            )
            return
        if kind == _T_DOCUMENT:
            if not self.profile.document_delete:
                raise _refused("delete", entry, "DELETE projects/{p}/documents/{d}")
            try:
                await self.http.request(
                    "DELETE",
                    self._project_path(pid, "documents", _q(entry.extra["document"])),
                    endpoint="delete",
                    status_map=_DELETE,
                )
            except errors.NotSupported as exc:
                log.warning("Opus 2 refused to delete %r: %s", entry.name, exc)
                raise
            return
        raise _refused("delete", entry, "DELETE projects/{p}")

    async def rename(self, entry: Entry, new_parent: Entry, new_name: str) -> Entry:
        if entry.extra.get("type") != _T_DOCUMENT:
            raise _refused("rename", entry, "a folder rename/move endpoint")
        pid = entry.extra["project"]
        if new_parent.extra.get("project") != pid:
            raise self._unmovable(entry, "to another project")
        target = (
            new_parent.extra.get("folder", "") if new_parent.extra.get("type") == _T_FOLDER else ""
        )
        moving = target != entry.extra.get("folder", "")
        renaming = new_name != entry.name
        if moving and not target:
            # the move route needs a folder id; the project root has none
            raise self._unmovable(entry, "to the top level of a project")
        if renaming and not self.profile.document_rename:
            # refuse before any request, so a move is never half done
            raise _refused("rename", entry, "PATCH projects/{p}/documents/{d}")
        if renaming:
            _check_name(new_name, Kind.FILE)
        did = _q(entry.extra["document"])
        result = entry
        writable = self._writable(entry)
        if moving:
            response = await self.http.request(
                "PUT",
                self._project_path(pid, "documents", did, _q(target)),
                endpoint="move",
                status_map=_AUTH,
            )
            result = self._document_entry(_as_object(self._json(response)), pid, writable)
        if renaming:
            response = await self.http.request(
                "PATCH",
                self._project_path(pid, "documents", did),
                endpoint="rename",
                json={"name": new_name},
                status_map=_AUTH,
            )
            result = self._document_entry(_as_object(self._json(response)), pid, writable)
        return result

    def _unmovable(self, entry: Entry, where: str) -> errors.DocfsError:
        """A move no API call makes. EXDEV makes ``mv`` copy and then delete the source; that
        only works where the profile can delete documents, else it would leave a second copy
        behind and fail, so the move is refused up front (EPERM, a log line, no request)."""
        if self.profile.document_delete:
            return errors.CrossDevice(f"opus2: no API call moves a document {where}")
        log.info("opus2: cannot move %r %s: the API has no such move", entry.name, where)
        return errors.NotSupported(f"opus2: the API cannot move {entry.name!r} {where}")

    async def set_meta(self, entry: Entry, key: str, value: str | None) -> Entry:
        self._require_document(entry, "set fields of")
        if key in _RESERVED_META:
            raise errors.ReadOnly(f"opus2: {key} is set by the server")
        pid = entry.extra["project"]
        definition = await self._field(pid, key)
        if value is None and key not in entry.meta:
            raise errors.NoAttribute(f"opus2: field {key!r} is not set")
        payload = {"value": None if value is None else _typed_value(definition, value)}
        field_id = _sid(definition.get("fieldId", definition.get("id")))
        try:
            response = await self.http.request(
                "PUT",
                self._project_path(
                    pid, "documents", _q(entry.extra["document"]), "fields", _q(field_id)
                ),
                endpoint="field",
                json=payload,
                status_map=_AUTH,
            )
        except errors.InvalidArgument as exc:
            kind = definition.get("type", "?")
            raise errors.InvalidArgument(
                f"opus2: the server refused {value!r} for field {key!r} ({kind}): {exc}",
                status=exc.status,
            ) from None
        return self._document_entry(_as_object(self._json(response)), pid, self._writable(entry))

    async def _field(self, pid: str, name: str) -> Mapping[str, Any]:
        body = await self._get(self._project_path(pid, "fields"), endpoint="fields")
        items = body.get(self.profile.items_key) if isinstance(body, dict) else body
        for item in items if isinstance(items, list) else []:
            if isinstance(item, dict) and item.get("name") == name:
                return item
        raise errors.NotSupported(f"opus2: the project has no field named {name!r}")

    @staticmethod
    def _require_document(entry: Entry, action: str) -> None:
        if entry.extra.get("type") != _T_DOCUMENT:
            raise errors.NotSupported(f"opus2: cannot {action} {entry.name!r}: not a document")


# ---------------------------------------------------------------------------------------------
# small helpers


def upload_body(
    profile: Opus2Profile, src: Path, filename: str, fields: Mapping[str, str]
) -> Multipart:
    """The multipart body of an upload: the profile's text fields, then the file, streamed
    from ``src`` (no copy) under the profile's part name.

    The filename goes as the shared encoder quotes it (``docfs/backends/_multipart.py``), plus
    ``filename*=UTF-8''…`` unless the profile turns it off: the server stores ``filename*``
    exactly and prefers it; in ``filename="…"`` it undoes quoted pairs and the HTML form
    encoding of line breaks, so a name with a quote, a backslash or a line break arrives whole
    either way.
    """
    mime = mimetypes.guess_type(filename)[0] or "application/octet-stream"
    file = FilePart(
        profile.upload_file_part,
        src,
        filename,
        mime,
        filename_star=profile.upload_filename_star,
    )
    return Multipart([*(Field(key, value) for key, value in fields.items()), file])
