"""The DocSpace backend a mount uses: reads, file operations and uploads, plus the rest of
the writes (folders and rooms, renames, comments) and the refusal hints."""

from collections.abc import AsyncIterator

from docfs import errors
from docfs.backends.base import Entry, Kind, Op, Version
from docfs.backends.docspace import finding, searching
from docfs.backends.docspace.common import (
    API,
    COMMENT_MAX,
    check_name,
    extension,
    survives_save,
    utf16_length,
)
from docfs.backends.docspace.uploads import DocSpaceUploads


class DocSpaceBackend(DocSpaceUploads):
    """ONLYOFFICE DocSpace ``/api/2.0`` (see the package docstring for the mapping)."""

    def check_name(self, parent: Entry, name: str, kind: Kind) -> None:
        check_name(name)

    def search(self, scope: Entry | None, query: str, limit: int) -> AsyncIterator[Entry]:
        return searching.search(self, scope, query, limit)

    async def versions(self, entry: Entry) -> list[Version]:
        return await searching.versions(self, entry)

    # ---- finding (docfs/backends/docspace/finding.py) --------------------------------------

    async def resolve(self, kind: str, key: str) -> Entry | None:
        return await finding.resolve(self, kind, key)

    def web_url(self, entry: Entry) -> str | None:
        return finding.web_url(self, entry)

    def refusal_hint(self, entry: Entry, op: Op) -> str | None:
        if op is Op.REPLACE and "stored_size" in entry.extra:
            return (
                "the room has a watermark: DocSpace serves this file as a watermarked PDF, "
                "so its own bytes cannot be read and changed here; edit it in DocSpace"
            )
        if op is Op.REPLACE and not survives_save(entry.name):
            return (
                "DocSpace re-titles a file on every save (extension in lower case, a dot "
                "added when there is none) and this title cannot be given back by a rename: "
                "copy the file to a new name instead"
            )
        return _more_hints(entry, op)

    async def mkdir(self, parent: Entry, name: str) -> Entry:
        check_name(name)
        kind = parent.extra.get("kind")
        if kind == "rooms":
            dto = await self._call(
                "POST",
                f"{API}/files/rooms",
                endpoint="room-create",
                json={"title": name, "roomType": self.room_type},
            )
        elif kind == "root":
            raise errors.NotSupported("DocSpace: the top level is fixed")
        else:
            # folders may share a title on the server: the caller checks for EEXIST first
            dto = await self._call(
                "POST",
                f"{API}/files/folder/{self._raw_id(parent)}",
                endpoint="mkdir",
                json={"title": name},
            )
        return self._folder_entry(dto)

    async def rename(self, entry: Entry, new_parent: Entry, new_name: str) -> Entry:
        check_name(new_name)
        kind = entry.extra.get("kind")
        if kind in ("root", "rooms", "section"):
            raise errors.NotSupported(f"DocSpace: {entry.name!r} cannot be renamed")
        old_ext = extension(entry.name)
        if entry.kind is Kind.FILE and old_ext and extension(new_name) != old_ext:
            # the server would append the old extension (b.md → b.md.txt): copy + delete
            raise errors.CrossDevice("DocSpace cannot change a file's extension")
        current = entry
        if new_parent.id != entry.extra.get("parent"):
            current = await self._move(entry, new_parent)
        if current.name != new_name:
            current = await self._retitle(current, new_name)
        return current

    def meta_writable(self, entry: Entry, key: str) -> bool:
        return entry.kind is Kind.FILE and key == "comment"

    async def set_meta(self, entry: Entry, key: str, value: str | None) -> Entry:
        if entry.kind is not Kind.FILE or key != "comment":
            raise errors.NotSupported(f"DocSpace: {key!r} is read-only")
        if value and utf16_length(value) > COMMENT_MAX:
            # FileDao.UpdateCommentAsync would keep the first 255 characters without a word
            raise errors.InvalidArgument(
                f"DocSpace keeps at most {COMMENT_MAX} characters of a comment; "
                f"this one has {utf16_length(value)}"
            )
        await self._call(
            "PUT",
            f"{API}/files/file/{self._raw_id(entry)}/comment",
            endpoint="comment",
            json={"version": int(entry.extra.get("version", "1")), "comment": value or ""},
        )
        return await self.stat(entry)


def _more_hints(entry: Entry, op: Op) -> str | None:
    """``refusal_hint`` for what the mapping and the user's access leave out."""
    kind = entry.extra.get("kind")
    if kind == "root":
        return (
            "the top level holds My documents, Rooms and Trash: "
            "files and folders go inside My documents or a room"
        )
    if entry.extra.get("in_trash") == "1" or entry.read_only:
        return "the Trash and archived rooms are read-only: restore it in DocSpace first"
    if kind == "rooms" and op is Op.CREATE_FILE:
        return "Rooms holds rooms only: mkdir Rooms/NAME makes a room; files go inside it"
    if kind == "rooms" and op is Op.MKDIR:
        return "your DocSpace account may not create rooms (a DocSpace or room admin can)"
    if kind in ("rooms", "section") and op in (Op.REMOVE, Op.RENAME):
        return "My documents, Rooms and Trash are DocSpace's own: they cannot change"
    what = {
        Op.CREATE_FILE: "add files",
        Op.MKDIR: "make folders",
        Op.REPLACE: "edit files",
        Op.SET_META: "comment versions (room admins and content creators can, editors cannot)",
        Op.REMOVE: "delete",
        Op.RENAME: "rename",
    }.get(op)
    if what is None:
        return None
    return f"your role in this room does not let you {what} here: a room admin can change it"
