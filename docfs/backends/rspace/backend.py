"""Writing to RSpace: uploads, links into documents, fields, folders, notebooks, moves, tags.

``RSpaceBackend`` is the class a mount uses: the read side (``RSpaceReader``) plus writes.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx
import trio

from docfs import errors
from docfs.backends.base import Entry, Kind, Op
from docfs.backends.rspace import finding
from docfs.backends.rspace.common import (
    _CREATE_MAP,
    _DELETE_DOC_MAP,
    _DELETE_FOLDER_MAP,
    _MOVE_MAP,
    _PUT_MAP,
    _TREE_MAP,
    _UPLOAD_MAP,
    _VERSION_MAP,
    DOCUMENT,
    FIELD,
    FOLDER,
    GALLERY,
    GALLERY_DIRS,
    GFOLDER,
    HOME,
    LINKED,
    MEDIA,
    NOTEBOOK,
    SECTION,
    TAG_FORBIDDEN,
    UPLOAD_SECTIONS,
    WORKSPACE_DIRS,
    _check_name,
    _json,
    _num,
    _sendable,
    _ts,
    log,
    repeated_tag,
    section_for,
)
from docfs.backends.rspace.reading import RSpaceReader
from docfs.backends.rspace.searching import RSpaceSearching


class RSpaceBackend(RSpaceReader, RSpaceSearching):
    """RSpace ELN API v1: Workspace, notebooks, documents and the Gallery."""

    async def create_file(self, parent: Entry, name: str, src: Path) -> Entry:
        kind = parent.extra.get("type")
        if kind in (SECTION, GFOLDER):
            return await self._upload_to_gallery(parent, name, src)
        if kind == DOCUMENT:
            return await self._attach(parent, name, src)
        if kind in WORKSPACE_DIRS:
            log.warning(
                "RSpace stores files only in the Gallery: copy %r into Gallery/%s (or into a "
                "document directory to attach it)",
                name,
                section_for(name),
            )
            raise errors.NotSupported("plain files go into a Gallery section or a document")
        log.warning("RSpace: files cannot be created in %r", parent.name)
        raise errors.NotSupported(f"cannot create files in {parent.name!r}")

    def check_name(self, parent: Entry, name: str, kind: Kind) -> None:
        """Refuse at once (EINVAL, no request) what the server would refuse or store changed.

        Folders and documents: RSpace trims names, replaces newlines and allows 255
        characters. Files: the extension alone picks the Gallery section, so a file can never
        be stored in another section's folder; audio and video cannot be linked into a
        document; the name travels as the multipart filename, which cannot carry some
        characters (``_check_filename``). The same checks run again before each upload.
        """
        if kind is Kind.DIR:
            _check_name(name)
            return
        ptype = parent.extra.get("type")
        if ptype in (SECTION, GFOLDER):
            self._check_section(parent, name)
        elif ptype == DOCUMENT:
            self._check_attachable(name)

    @staticmethod
    def _check_filename(name: str) -> None:
        """Refuse what the multipart filename cannot carry unchanged (``_sendable``)."""
        if not _sendable(name):
            log.warning(
                "RSpace: %r cannot be uploaded under this name (no quote, backslash or line "
                "break in Gallery file names)",
                name,
            )
            raise errors.InvalidArgument(f"RSpace cannot store {name!r} unchanged")

    @classmethod
    def _check_section(cls, parent: Entry, name: str) -> str:
        cls._check_filename(name)
        section, wanted = parent.extra.get("section", ""), section_for(name)
        if section != wanted:
            log.warning(
                "RSpace puts %r in the Gallery section %s, not %s: copy it there",
                name,
                wanted,
                section,
            )
            raise errors.InvalidArgument(f"{name!r} belongs in Gallery/{wanted}")
        return section

    @classmethod
    def _check_attachable(cls, name: str) -> str:
        cls._check_filename(name)
        section = section_for(name)
        if section in ("Audios", "Videos"):
            log.warning("RSpace cannot link audio or video files into documents: %r", name)
            raise errors.InvalidArgument("audio and video files cannot be linked into documents")
        return section

    async def _upload_to_gallery(self, parent: Entry, name: str, src: Path) -> Entry:
        section = self._check_section(parent, name)
        info = await self._upload(
            "/files",
            endpoint="files.upload",
            filename=name,
            src=src,
            fields={"folderId": parent.extra["id"]},
            status_map=_UPLOAD_MAP,
        )
        media = self._remember(info, 0.0)  # fetched=0: the next listing re-reads it once
        return self._media_entry(
            int(info["id"]),
            str(info["name"]),
            parent.extra["id"],
            media,
            _ts(info.get("created")),
            "",
            section,
        )

    async def _attach(self, doc_entry: Entry, name: str, src: Path) -> Entry:
        section = self._check_attachable(name)
        doc = await self._get(f"/documents/{_num(doc_entry)}", endpoint="documents.get")
        text = next((f for f in doc.get("fields") or [] if f.get("type") == "text"), None)
        if text is None:
            log.warning(
                "RSpace: document %r has no text field to link %r from", doc_entry.name, name
            )
            raise errors.NotSupported("the document has no text field to link the file from")
        info = await self._upload(
            "/files",
            endpoint="files.upload",
            filename=name,
            src=src,
            fields={},
            status_map=_UPLOAD_MAP,
        )
        content = str(text.get("content") or "") + f"<fileId={info['id']}>"
        try:
            response = await self._send_json(
                "PUT",
                f"/documents/{doc['id']}",
                {"fields": [{"id": text["id"], "content": content}]},
                endpoint="documents.update",
                status_map=_PUT_MAP,
            )
        except errors.DocfsError:
            log.warning(
                "uploaded %r to Gallery/%s/Api Inbox (GL%s) but could not link it into %r",
                name,
                section,
                info["id"],
                doc_entry.name,
            )
            raise
        updated = _json(response)
        for fld in updated.get("fields") or []:
            for f in fld.get("files") or []:
                if f["id"] == info["id"]:
                    return self._linked_entry(updated, f)
        return self._linked_entry(updated, info)

    async def replace_file(self, entry: Entry, src: Path) -> Entry:
        kind = entry.extra.get("type")
        if kind == FIELD:
            return await self._write_field(entry, src)
        if kind not in (MEDIA, LINKED):
            raise errors.NotSupported(f"{entry.name!r} cannot be overwritten")
        # the server renames the file to the uploaded filename: send the current name
        info = await self._upload(
            f"/files/{_num(entry)}/file",
            endpoint="files.version",
            filename=entry.name,
            src=src,
            fields={},
            status_map=_VERSION_MAP,
        )
        # use this answer, not GET /files/{id}: that one may be served from a stale cache
        media = self._remember(info, 0.0)
        if kind == LINKED:
            return self._linked_entry(
                {"globalId": entry.id.split("/")[0], "id": entry.extra["doc"]}, info
            )
        return self._media_entry(
            int(info["id"]),
            str(info["name"]),
            entry.extra.get("parent", ""),
            media,
            time.time(),
            entry.meta.get("owner", ""),
            entry.extra.get("section", ""),
        )

    async def _write_field(self, entry: Entry, src: Path) -> Entry:
        raw = await trio.to_thread.run_sync(src.read_bytes)
        try:
            content = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise errors.InvalidArgument(f"{entry.name}: field content must be UTF-8") from None
        response = await self._send_json(
            "PUT",
            f"/documents/{entry.extra['doc']}",
            {"fields": [{"id": int(entry.extra["id"]), "content": content}]},
            endpoint="documents.update",
            status_map=_PUT_MAP,
        )
        doc = _json(response)
        for child in self._document_children(doc, entry):
            if child.id == entry.id:
                return child
        raise errors.ProtocolError("RSpace update answer lacks the field just written")

    async def mkdir(self, parent: Entry, name: str) -> Entry:
        kind = parent.extra.get("type")
        _check_name(name)
        if Op.MKDIR not in parent.ops:
            log.warning("RSpace: no new folders inside %r", parent.name)
            raise errors.NotSupported(f"cannot create directories in {parent.name!r}")
        if kind == NOTEBOOK:
            response = await self._create(
                parent,
                "/documents",
                {"name": name, "parentFolderId": _num(parent)},
                endpoint="documents.create",
            )
            return self._document_entry(_json(response), parent.extra["id"])
        return await self._new_folder(parent, name, notebook=False)

    async def _create(
        self, parent: Entry, path: str, body: dict[str, Any], *, endpoint: str
    ) -> httpx.Response:
        """POST a new folder or document; a 500 means "no such parent" only if it is gone.

        RSpace answers 500 for a parent folder that does not exist (docs/protocols/rspace.md,
        "Creating in a folder that is gone"), and for any
        other failure too: with the parent still there, the 500 is a transient failure, which
        the vfs checks for and retries without making a duplicate.
        """
        try:
            return await self._send_json(
                "POST", path, body, endpoint=endpoint, status_map=_CREATE_MAP
            )
        except errors.NotFound as exc:
            if exc.status != 500:
                raise
            try:
                await self.stat(parent)
            except errors.NotFound:
                raise exc from None
            raise errors.RemoteUnavailable(str(exc), status=500) from None

    async def mkdir_notebook(self, parent: Entry, name: str) -> Entry:
        """A new notebook (``docfs mkdir --notebook``): only in Workspace folders."""
        _check_name(name)
        if parent.extra.get("type") not in (HOME, FOLDER) or Op.MKDIR not in parent.ops:
            log.warning("RSpace: notebooks can only be created in Workspace folders")
            raise errors.NotSupported(f"cannot create a notebook in {parent.name!r}")
        return await self._new_folder(parent, name, notebook=True)

    async def _new_folder(self, parent: Entry, name: str, *, notebook: bool) -> Entry:
        response = await self._create(
            parent,
            "/folders",
            {"name": name, "parentFolderId": _num(parent), "notebook": notebook},
            endpoint="folders.create",
        )
        info = _json(response)
        gallery = parent.extra.get("type") in GALLERY_DIRS
        return self._dir_entry(
            gid=str(info["globalId"]),
            name=str(info["name"]),
            kind=NOTEBOOK if notebook else GFOLDER if gallery else FOLDER,
            parent=parent.extra["id"],
            modified=str(info["lastModified"]),
            owner={"homeFolderId": self._home},
            system=False,
            section=parent.extra.get("section", "") if gallery else "",
        )

    # ---- ``docfs import`` (docfs/backends/rspace/importing.py) -----------------------------

    async def upload_to_inbox(self, name: str, src: Path) -> dict[str, Any]:
        """Upload ``src`` as ``name`` to its Gallery section's Api Inbox (``POST /files`` with
        no folder), ready to be linked from a document; refuses at once what no document can
        link (audio, video) or no multipart filename can carry."""
        self._check_attachable(name)
        return await self._upload(
            "/files",
            endpoint="files.upload",
            filename=name,
            src=src,
            fields={},
            status_map=_UPLOAD_MAP,
        )

    async def create_document(self, parent: Entry, name: str, content: str) -> Entry:
        """A Basic Document named ``name`` in a Workspace folder or notebook (an entry there),
        its one text field ``content`` (``<fileId=N>`` links the Gallery file N)."""
        _check_name(name)
        if parent.extra.get("type") not in (HOME, FOLDER, NOTEBOOK) or Op.MKDIR not in parent.ops:
            raise errors.NotSupported(f"cannot create documents in {parent.name!r}")
        response = await self._create(
            parent,
            "/documents",
            {"name": name, "parentFolderId": _num(parent), "fields": [{"content": content}]},
            endpoint="documents.create",
        )
        return self._document_entry(_json(response), parent.extra["id"])

    # ---- finding (docfs/backends/rspace/finding.py) ----------------------------------------

    async def resolve(self, kind: str, key: str) -> Entry | None:
        return await finding.resolve(self, kind, key)

    def web_url(self, entry: Entry) -> str | None:
        return finding.web_url(self, entry)

    def refusal_hint(self, entry: Entry, op: Op) -> str | None:
        if op is Op.REPLACE and entry.extra.get("type") in (MEDIA, LINKED):
            return (
                "RSpace names a new version after the uploaded file, and a quote, backslash or "
                "line break cannot be sent unchanged: copy it to a new name and write that"
            )
        if op is Op.CREATE_FILE and entry.extra.get("type") in (HOME, FOLDER, NOTEBOOK):
            return (
                "RSpace keeps files in the Gallery: copy it into Gallery/<section>, "
                "or into a document's directory to attach it to the document"
            )
        return _more_hints(entry, op)

    async def remove(self, entry: Entry) -> None:
        kind = entry.extra.get("type")
        if kind == DOCUMENT:
            await self._call(
                "DELETE",
                f"/documents/{_num(entry)}",
                endpoint="documents.delete",
                status_map=_DELETE_DOC_MAP,
            )
            return
        if kind in (FOLDER, NOTEBOOK, GFOLDER) and Op.REMOVE in entry.ops:
            # the server deletes non-empty folders whole: keep POSIX rmdir semantics
            data = await self._get(
                f"/folders/tree/{_num(entry)}",
                endpoint="folders.tree",
                params={"pageSize": 1, "pageNumber": 0},
                status_map=_TREE_MAP,
            )
            if int(data.get("totalHits", 0)) > 0:
                raise errors.NotEmpty(f"{entry.name!r} is not empty")
            await self._call(
                "DELETE",
                f"/folders/{_num(entry)}",
                endpoint="folders.delete",
                status_map=_DELETE_FOLDER_MAP,
            )
            return
        if kind in (MEDIA, LINKED):
            log.warning("RSpace has no way to delete a Gallery file (%r)", entry.name)
        elif kind == FIELD:
            log.warning(
                "RSpace: a field (%r) cannot be deleted alone; remove the whole document",
                entry.name,
            )
        else:
            log.warning("RSpace: %r cannot be removed", entry.name)
        raise errors.NotSupported(f"cannot remove {entry.name!r}")

    async def rename(self, entry: Entry, new_parent: Entry, new_name: str) -> Entry:
        kind = entry.extra.get("type")
        moving = new_parent.extra.get("id") != entry.extra.get("parent")
        if not moving and new_name == entry.name:
            return entry
        if kind == DOCUMENT:
            return await self._rename_document(entry, new_parent, new_name, moving)
        if kind in (FOLDER, NOTEBOOK):
            if new_name != entry.name:
                log.warning("RSpace cannot rename folders or notebooks (%r)", entry.name)
                raise errors.NotSupported("RSpace cannot rename folders or notebooks")
            if not moving:
                return entry
            if new_parent.extra.get("type") in GALLERY_DIRS:
                raise self._unmovable(entry, "into the Gallery")
            if new_parent.extra.get("type") not in (HOME, FOLDER):
                raise errors.InvalidArgument("folders and notebooks cannot go into a notebook")
            if not self._move_api:
                raise await self._no_move_api(entry)
            await self._move(entry, new_parent)
            return self._moved(entry, new_parent)
        if kind == MEDIA and moving:
            raise self._unmovable(entry, "to another Gallery folder")
        log.warning("RSpace cannot rename %r", entry.name)
        raise errors.NotSupported(f"RSpace cannot rename {entry.name!r}")

    @staticmethod
    def _unmovable(entry: Entry, where: str) -> errors.DocfsError:
        """A move no API call makes: EPERM, not EXDEV.

        EXDEV makes ``mv`` copy and then delete the source. A Gallery file cannot be deleted,
        so that would leave a second copy behind and fail; a document or folder copied into
        the Gallery would turn into a folder of ``.html`` files and stop half way at the first
        file that belongs to another section. So the move is refused up front.
        """
        log.warning("RSpace cannot move %r %s (copy it with cp instead)", entry.name, where)
        return errors.NotSupported(f"RSpace cannot move {entry.name!r} {where}")

    async def _rename_document(
        self, entry: Entry, new_parent: Entry, new_name: str, moving: bool
    ) -> Entry:
        target = new_parent.extra.get("type")
        if moving and target in GALLERY_DIRS:
            raise self._unmovable(entry, "into the Gallery")
        if moving and target not in WORKSPACE_DIRS:
            raise errors.NotSupported(f"a document cannot go into {new_parent.name!r}")
        if new_name != entry.name:
            _check_name(new_name)
        if moving and not self._move_api:
            raise await self._no_move_api(entry)
        if moving:
            await self._move(entry, new_parent)
        result = self._moved(entry, new_parent) if moving else entry
        if new_name != entry.name:
            response = await self._send_json(
                "PUT",
                f"/documents/{_num(entry)}",
                {"name": new_name},
                endpoint="documents.update",
                status_map=_PUT_MAP,
            )
            result = self._document_entry(_json(response), result.extra["parent"])
        return result

    async def _no_move_api(self, entry: Entry) -> errors.DocfsError:
        """A move on a server without ``POST /documents/move`` (before 2.16), refused locally.

        EXDEV only where ``mv``'s copy and delete gives the same result: an empty folder
        (``mkdir`` + ``rmdir``). A document copied elsewhere would become a folder of
        ``.html`` files (a new folder is never a document) and its fields cannot be deleted
        one by one; a notebook would become a plain folder; a non-empty folder holds such
        documents. Those are EPERM, with the reason in the log.
        """
        where = f"RSpace {'.'.join(map(str, self._release or ()))}".rstrip()
        if entry.extra.get("type") == FOLDER:
            data = await self._get(
                f"/folders/tree/{_num(entry)}",
                endpoint="folders.tree",
                params={"pageSize": 1, "pageNumber": 0},
                status_map=_TREE_MAP,
            )
            if int(data.get("totalHits", 0)) == 0:
                log.info("%s has no move API; mv copies the empty folder %r", where, entry.name)
                return errors.CrossDevice(f"{where} has no move API")
        log.warning(
            "%s has no move API (POST /documents/move is new in RSpace 2.16): cannot move %r; "
            "move it in the RSpace web interface",
            where,
            entry.name,
        )
        return errors.NotSupported(f"{where} cannot move {entry.name!r}")

    async def _move(self, entry: Entry, new_parent: Entry) -> None:
        try:
            await self._send_json(
                "POST",
                "/documents/move",
                {
                    "docId": _num(entry),
                    "sourceFolderId": int(entry.extra["parent"]),
                    "targetFolderId": _num(new_parent),
                },
                endpoint="documents.move",
                status_map=_MOVE_MAP,
            )
        except errors.NotSupported as exc:
            if exc.status in (404, 405):
                # /status gave no release that told us: remember, and refuse like one
                self._move_api = False
                raise await self._no_move_api(entry) from None
            log.warning("RSpace refused to move %r into %r: %s", entry.name, new_parent.name, exc)
            raise

    @staticmethod
    def _moved(entry: Entry, new_parent: Entry) -> Entry:
        return Entry(
            id=entry.id,
            name=entry.name,
            kind=entry.kind,
            size=entry.size,
            mtime=entry.mtime,
            version=entry.version,
            meta=entry.meta,
            read_only=entry.read_only,
            ops=entry.ops,
            extra={**entry.extra, "parent": new_parent.extra["id"]},
        )

    def meta_separator(self, entry: Entry, key: str) -> str | None:
        # the server keeps a document's tags as one comma-separated string
        return "," if entry.extra.get("type") == DOCUMENT and key == "tags" else None

    async def update_meta(self, entry: Entry, changes: Mapping[str, list[str] | None]) -> Entry:
        """Tags are a document's only writable key: one ``PUT /documents/{id}``."""
        for key in changes:
            if entry.extra.get("type") != DOCUMENT or key != "tags":
                raise errors.NotSupported(f"user.rspace.{key} is read-only here")
        tags = changes.get("tags")
        return await self.set_meta(entry, "tags", ",".join(tags) if tags else None)

    async def set_meta(self, entry: Entry, key: str, value: str | None) -> Entry:
        if entry.extra.get("type") != DOCUMENT or key != "tags":
            raise errors.NotSupported(f"user.rspace.{key} is read-only here")
        tags = value or ""
        bad = [c for c in TAG_FORBIDDEN if c in tags]
        if bad:
            log.warning("RSpace refuses tags containing %s: %r", " ".join(bad), tags)
            raise errors.InvalidArgument("RSpace tags may not contain <, >, \\ or /")
        # DocumentTagManagerImpl.apiSaveTagForDocument maps the stored tags by value
        # (Collectors.toMap): a tag stored twice fails every later change of them with a 500
        # (docs/protocols/rspace.md, "Tags"), so none is written twice, and a document that
        # already holds one (written elsewhere) is refused with a clear line
        if repeated_tag(tags):
            log.warning("RSpace cannot store a tag twice in one document: %r", tags)
            raise errors.InvalidArgument(f"repeated tag in {tags!r}")
        if repeated_tag(entry.meta.get("tags", "")):
            log.warning(
                "RSpace cannot change the tags of %r: its tags %r hold one twice, which makes "
                "the server fail; remove the repeat in RSpace's web interface",
                entry.name,
                entry.meta.get("tags", ""),
            )
            raise errors.InvalidArgument(f"{entry.name!r}: repeated tag on the server")
        response = await self._send_json(
            "PUT",
            f"/documents/{_num(entry)}",
            {"tags": tags},
            endpoint="documents.update",
            status_map=_PUT_MAP,
        )
        doc = _json(response)
        await self._home_id()
        shares = await self._item_shares(int(doc["id"])) if self._owned(doc.get("owner")) else []
        return self._document_entry(doc, entry.extra.get("parent", ""), shares)


def _more_hints(entry: Entry, op: Op) -> str | None:
    """``refusal_hint`` for the refusals of the mapping that are not about names."""
    kind = entry.extra.get("type")
    if kind == GALLERY:
        return (
            "the Gallery holds its sections only: copy files into Gallery/<section> "
            f"({', '.join(sorted(UPLOAD_SECTIONS))})"
        )
    if op is Op.CREATE_FILE and kind in (SECTION, GFOLDER):
        return f"the API uploads only into the sections {', '.join(sorted(UPLOAD_SECTIONS))}"
    if op is Op.MKDIR and kind == DOCUMENT:
        return "a document holds its fields and attached files: make the folder beside it"
    if entry.extra.get("system") and op in (Op.MKDIR, Op.REMOVE, Op.RENAME):
        return "RSpace makes and keeps this folder (and those in Shared) itself"
    if kind == MEDIA and op is Op.REMOVE:
        return "the API cannot delete Gallery files: delete it in RSpace's web interface"
    if kind == MEDIA and op is Op.SET_META:
        return "the API cannot change a Gallery file's caption"
    if kind in (FIELD, LINKED) and op in (Op.RENAME, Op.SET_META):
        return "a document's files follow its form and its fields: rename the document instead"
    if not entry.extra.get("owned") and op in (Op.REMOVE, Op.RENAME, Op.MKDIR):
        return "this is not yours (shared with you or made by RSpace): only its owner can change it"
    return None
