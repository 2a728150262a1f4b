"""Handlers for listings, file and folder info, create/rename/lock/comment and rooms
(``docs/protocols/docspace.md`` §4, §8, §9).
"""

from __future__ import annotations

from typing import Any

from docfs.emulators.docspace.model import (
    CREATABLE,
    EDIT,
    FT_DEFAULT,
    FT_TRASH,
    FULL,
    OP_DELETE,
    READ,
    ROOM_FOLDER_TYPE,
    ROOM_TYPE_NAMES,
    TEMPLATE_BODY,
    BytesContent,
    FileObj,
    FolderObj,
    User,
    ValidationFailed,
    access_denied,
    available_title,
    cut_comment,
    extension,
    file_type,
    invalid_operation,
    not_found,
    sanitize_title,
    saved_title,
)
from docfs.emulators.docspace.routes.base import Dispatch
from docfs.emulators.docspace.state import Ctx
from docfs.emulators.docspace.wire import as_bool, as_int, enum_value, lookup


class FolderRoutes(Dispatch):
    """Listings, info, create/rename/lock/comment, rooms."""

    @staticmethod
    def _paging(ctx: Ctx) -> tuple[int, int]:
        """``count`` is [Range(1, 100)], default 100; ``startIndex`` from 0 (§4.2)."""
        q = ctx.request.query_params
        count = as_int(q.get("count", "100"), "count")
        if not 1 <= count <= 100:
            raise ValidationFailed({"count": ["The field count must be between 1 and 100."]})
        start = as_int(q.get("startIndex", "0"), "startIndex")
        return count, max(0, start)

    async def _h_list(self, ctx: Ctx) -> Any:
        count, start = self._paging(ctx)
        with self._state:
            folder = self._folder_ref(ctx, ctx.request.path_params["folderId"])
            self._require_read(ctx.user, folder.id)
            folders, files = self._content(ctx.user, folder, ctx)
            return self._content_dto(ctx, folder, folders, files, start, count)

    def _content(
        self, user: User | None, folder: FolderObj, ctx: Ctx
    ) -> tuple[list[FolderObj], list[FileObj]]:
        """Children after filters and sorting; recursive in the cases of the §4.2 gotcha."""
        q = ctx.request.query_params
        filter_type = as_int(q.get("filterType", "0"), "filterType")
        search = (q.get("filterValue") or "").lower()
        wanted_ext = (q.get("extension") or "").lower()
        trash = self._root_of(folder.id).folder_type == FT_TRASH
        recursive = (
            as_bool(q.get("withSubFolders"), True)
            and bool(filter_type or search or wanted_ext)
            and not trash
        )
        if recursive:
            # grouped in one pass: asked folder by folder, a page of a 5,000-folder room took
            # seconds (B10's baseline timed out on it)
            subfolders, files_of = self._by_parent()
            scope = self._subtree(folder, subfolders)
        else:
            scope = [folder]
            subfolders = {folder.id: self._subfolders(folder.id)}
            files_of = {folder.id: self._files_in(folder.id)}
        readable = [s for s in scope if self._level(user, s.id) >= READ]
        folders = [
            sub
            for s in readable
            for sub in subfolders.get(s.id, ())
            if self._level(user, sub.id) >= READ
        ]
        files = [f for s in readable for f in files_of.get(s.id, ())]
        folders, files = self._filter(folders, files, filter_type, search, wanted_ext)
        return self._sort(folders, files, q.get("sortBy"), q.get("sortOrder"))

    @staticmethod
    def _filter(
        folders: list[FolderObj],
        files: list[FileObj],
        filter_type: int,
        search: str,
        wanted_ext: str,
    ) -> tuple[list[FolderObj], list[FileObj]]:
        by_type = {3: (7,), 4: (6,), 5: (5,), 7: (4,), 10: (1,), 12: (2, 3), 22: (10,), 25: (11,)}
        if filter_type in (1, 11) or filter_type in by_type:
            folders = []
        if filter_type == 2:
            files = []
        if filter_type in by_type:
            files = [f for f in files if file_type(f.title) in by_type[filter_type]]
        if wanted_ext:
            files = [f for f in files if f.ext == "." + wanted_ext.lstrip(".")]
        if search:
            folders = [f for f in folders if search in f.title.lower()]
            files = [f for f in files if search in f.title.lower()]
        return folders, files

    @staticmethod
    def _sort(
        folders: list[FolderObj], files: list[FileObj], sort_by: str | None, order: str | None
    ) -> tuple[list[FolderObj], list[FileObj]]:
        key = (sort_by or "AZ").lower()
        descending = (order or "").lower() in ("descending", "1")

        def folder_key(f: FolderObj) -> Any:
            if key == "dateandtime":
                return (f.modified, f.id)
            if key == "dateandtimecreation":
                return (f.created, f.id)
            return (f.title.lower(), f.id)

        def file_key(f: FileObj) -> Any:
            if key == "dateandtime":
                return (f.modified, f.id)
            if key == "dateandtimecreation":
                return (f.created, f.id)
            if key == "size":
                return (f.current.content.size, f.id)
            if key == "type":
                return (f.ext, f.title.lower(), f.id)
            return (f.title.lower(), f.id)

        return (
            sorted(folders, key=folder_key, reverse=descending),
            sorted(files, key=file_key, reverse=descending),
        )

    async def _h_root(self, ctx: Ctx) -> Any:
        count, start = self._paging(ctx)
        user = ctx.need_user()
        without_trash = as_bool(ctx.request.query_params.get("withoutTrash"))
        with self._state:
            sections = [user.my_id, self.rooms_root_id, self.archive_root_id]
            if not without_trash:
                sections.append(user.trash_id)
            out = []
            for folder_id in sections:
                if not folder_id:
                    continue  # no My documents for this user
                folder = self.folders[folder_id]
                folders, files = self._content(user, folder, ctx)
                out.append(self._content_dto(ctx, folder, folders, files, start, count))
            return out

    async def _h_rooms(self, ctx: Ctx) -> Any:
        count, start = self._paging(ctx)
        user = ctx.need_user()
        area = (ctx.request.query_params.get("searchArea") or "active").lower()
        with self._state:
            root_id = self.archive_root_id if area in ("archive", "1") else self.rooms_root_id
            folder = self.folders[root_id]
            rooms, _ = self._content(user, folder, ctx)
            wanted = ctx.request.query_params.getlist("type")
            if wanted:
                types = {enum_value(t, ROOM_TYPE_NAMES, "type") for t in wanted}
                rooms = [room for room in rooms if room.room_type in types]
            return self._content_dto(ctx, folder, rooms, [], start, count)

    async def _h_file_info(self, ctx: Ctx) -> Any:
        version = ctx.request.query_params.get("version")
        with self._state:
            file = self._file_ref(ctx)
            if version is not None and as_int(version, "version") > 0:
                return self._file_dto(ctx, file, self._version(file, int(version)))
            return self._file_dto(ctx, file)

    async def _h_history(self, ctx: Ctx) -> Any:
        with self._state:
            file = self._file_ref(ctx)
            return [self._file_dto(ctx, file, v) for v in reversed(file.versions)]

    async def _h_folder_info(self, ctx: Ctx) -> Any:
        with self._state:
            folder = self._folder_ref(ctx, ctx.request.path_params["folderId"])
            self._require_read(ctx.user, folder.id)
            return self._folder_dto(ctx, folder)

    async def _h_path(self, ctx: Ctx) -> Any:
        with self._state:
            folder = self._folder_ref(ctx, ctx.request.path_params["folderId"])
            self._require_read(ctx.user, folder.id)
            return [self._folder_dto(ctx, f) for f in self._chain(folder.id)]

    async def _h_create_folder(self, ctx: Ctx) -> Any:
        body = await self._body(ctx)
        title = self._title(body)
        user = ctx.need_user()
        with self._state:
            parent = self._folder_ref(ctx, ctx.request.path_params["folderId"])
            self._require_read(user, parent.id)
            self._check_create_in(user, parent)
            # no duplicate check: two folders may share a title (§8.1)
            folder = self._new_folder(sanitize_title(title), parent.id, FT_DEFAULT, user.id)
            return self._folder_dto(ctx, folder)

    async def _h_rename_folder(self, ctx: Ctx) -> Any:
        body = await self._body(ctx)
        title = self._title(body)
        user = ctx.need_user()
        with self._state:
            folder = self._folder_ref(ctx, ctx.request.path_params["folderId"])
            self._require_read(user, folder.id)
            if not self._is_live(folder.id):
                raise invalid_operation("The folder is in the trash or an archived room")
            if not self._folder_security(user, folder)["Rename"]:
                raise access_denied()
            folder.title = sanitize_title(title)
            folder.modified, folder.modified_by = self.now(), user.id
            return self._folder_dto(ctx, folder)

    async def _h_update_file(self, ctx: Ctx) -> Any:
        body = await self._body(ctx)
        last_version = as_int(lookup(body, "lastVersion", 0) or 0, "lastVersion")
        title = self._title(body) if lookup(body, "title") is not None else None
        with self._state:
            file = self._file_ref(ctx)
            user = ctx.need_user()
            if last_version > 0:
                self._restore_version(user, file, last_version)
            if title is not None:
                self._rename_file(user, file, title)
            return self._file_dto(ctx, file)

    def _rename_file(self, user: User, file: FileObj, title: str) -> None:
        """EntryManager.FileRenameAsync: the extension cannot change; no clash check (§8.1)."""
        if not self._is_live(file.folder_id):
            raise invalid_operation("The file is in the trash or an archived room")
        if file.locked_by not in (None, user.id):
            raise invalid_operation("The file is locked")
        if not self._file_security(user, file)["Rename"]:
            raise access_denied()
        new_title = sanitize_title(title)
        old_ext = file.ext
        if extension(new_title) != old_ext:
            new_title += old_ext  # EntryManager.FileRenameAsync: title += ext (lower-case)
        if new_title != file.title:
            file.title = new_title
            file.modified, file.modified_by = self.now(), user.id

    def _restore_version(self, user: User, file: FileObj, number: int) -> None:
        refusal = self._edit_refusal(user, file)
        if refusal is not None:
            raise refusal
        old = self._version(file, number)
        self._push_version(file, old.content, user.id, f"Restored from version {number}")

    async def _h_comment(self, ctx: Ctx) -> Any:
        # FilesController.UpdateFileComment → FileStorageService.UpdateCommentAsync: the
        # version is `required` (UpdateComment), the file is read at that version, then the
        # EditHistory right, the lock and the Trash are checked — not whether the file is open
        # in the editor; FileDao.UpdateCommentAsync cuts the comment to 255 characters
        body = await self._body(ctx)
        user = ctx.need_user()
        raw_version = lookup(body, "version")
        if raw_version is None:
            raise ValidationFailed(
                {
                    "$": [
                        "JSON deserialization for type 'UpdateComment' was missing required "
                        "properties, including the following: version"
                    ]
                }
            )
        number = as_int(raw_version, "version")
        comment = cut_comment(str(lookup(body, "comment") or ""))
        with self._state:
            file = self._file_ref(ctx)
            version = next((v for v in file.versions if v.number == number), None)
            if version is None:
                raise invalid_operation("The required file was not found")
            if not self._may_edit_history(user, file):
                raise invalid_operation("You do not have enough permissions to edit the file")
            if file.locked_by not in (None, user.id):
                raise invalid_operation("The file is currently locked by another user")
            if not self._is_live(file.folder_id):
                raise invalid_operation("You are not allowed to preview the elements in the Trash")
            version.comment = comment
            return comment

    async def _h_lock(self, ctx: Ctx) -> Any:
        body = await self._body(ctx)
        user = ctx.need_user()
        with self._state:
            file = self._file_ref(ctx)
            if file.locked_by not in (None, user.id):
                raise invalid_operation("The file is locked")
            if self._level(user, file.folder_id) < EDIT:
                raise access_denied()
            file.locked_by = user.id if as_bool(lookup(body, "lockFile")) else None
            return self._file_dto(ctx, file)

    async def _h_create_file(self, ctx: Ctx) -> Any:
        body = await self._body(ctx)
        title = self._title(body)
        user = ctx.need_user()
        with self._state:
            folder = self._folder_ref(ctx, ctx.request.path_params["folderId"])
            self._require_read(user, folder.id)
            self._check_create_in(user, folder)
            title = sanitize_title(title)
            content = BytesContent(TEMPLATE_BODY)
            if as_bool(lookup(body, "enableExternalExt")):
                content = BytesContent(b"")
            elif extension(title) not in CREATABLE:
                title += ".docx"
            siblings = {f.title.lower() for f in self._files_in(folder.id)}
            if title.lower() in siblings:
                title = available_title(title, siblings)
            file = self._new_file(saved_title(title), folder.id, content, user.id, "Created")
            return self._file_dto(ctx, file)

    def _room_ref(self, ctx: Ctx) -> FolderObj:
        ref = ctx.request.path_params["roomId"]
        room = self.folders.get(int(ref)) if ref.isdigit() else None
        if room is None or room.room_type is None:
            raise not_found("The room could not be found")
        self._require_read(ctx.user, room.id)
        return room

    async def _h_create_room(self, ctx: Ctx) -> Any:
        body = await self._body(ctx)
        title = self._title(body)
        if lookup(body, "roomType") is None:
            raise ValidationFailed({"roomType": ["The roomType field is required."]})
        room_type = enum_value(lookup(body, "roomType"), ROOM_TYPE_NAMES, "roomType")
        user = ctx.need_user()
        with self._state:
            if not user.admin:
                raise access_denied()
            room = self._new_folder(
                sanitize_title(title),
                self.rooms_root_id,
                ROOM_FOLDER_TYPE[room_type],
                user.id,
                room_type=room_type,
            )
            room.members[user.id] = FULL
            room.deny_download = as_bool(lookup(body, "denyDownload"))
            return self._folder_dto(ctx, room)

    async def _h_room_info(self, ctx: Ctx) -> Any:
        with self._state:
            return self._folder_dto(ctx, self._room_ref(ctx))

    async def _h_update_room(self, ctx: Ctx) -> Any:
        body = await self._body(ctx)
        user = ctx.need_user()
        with self._state:
            room = self._room_ref(ctx)
            if not self._folder_security(user, room)["EditRoom"]:
                raise access_denied()
            if lookup(body, "title") is not None:
                room.title = sanitize_title(self._title(body))
            if lookup(body, "denyDownload") is not None:
                room.deny_download = as_bool(lookup(body, "denyDownload"))
            room.modified, room.modified_by = self.now(), user.id
            return self._folder_dto(ctx, room)

    async def _h_delete_room(self, ctx: Ctx) -> Any:
        body = await self._body(ctx, required=False)
        user = ctx.need_user()
        with self._state:
            room = self._room_ref(ctx)
            room_id = room.id
            op = self._start_operation(
                user,
                OP_DELETE,
                not as_bool(lookup(body, "deleteAfter")),
                lambda: self._delete_folder(user, room_id, True),
                [],
                [room_id],
            )
            # VirtualRoomsController.DeleteRoom: the *first* of the user's operation results,
            # which is another operation whenever one is listed before this one (every
            # finished one is dequeued by the same call); rooms are always deleted at once
            results = self._operation_results(user)
            return results[0] if results else self._op_dto(op)
