"""The folder tree and its permissions: creating entries and versions, walking the tree, and
what a user may do where (rooms, My documents, Trash, Archive).
"""

from __future__ import annotations

from docfs.emulators.docspace.accounts import Accounts
from docfs.emulators.docspace.model import (
    CREATE,
    EDIT,
    FILE_SECURITY_KEYS,
    FOLDER_SECURITY_KEYS,
    FT_ARCHIVE,
    FT_TRASH,
    FT_USER,
    FT_VIRTUAL_ROOMS,
    FULL,
    NONE,
    READ,
    ROOM_FILESHARE,
    ApiError,
    Content,
    FileObj,
    FolderObj,
    User,
    Version,
    access_denied,
    invalid_operation,
    not_found,
)


class Tree(Accounts):
    """The folder tree: new entries and versions, walks, and access levels."""

    #: what the builder makes thumbnails of (``ThumbnailSettings.Formats`` for documents,
    #: converted by the Document Server to ``DocThumbnailExtension``, jpg; images are
    #: ``Global.ImageThumbnailExtension``, up to ``MaxImageFileSize`` 30 MiB)
    THUMBNAIL_DOCS = frozenset(
        (
            ".doc",
            ".docm",
            ".docx",
            ".dot",
            ".dotx",
            ".epub",
            ".fodt",
            ".htm",
            ".html",
            ".odt",
            ".ott",
            ".pdf",
            ".rtf",
            ".txt",
            ".xps",
            ".djvu",
            ".odp",
            ".otp",
            ".pot",
            ".potx",
            ".pps",
            ".ppsx",
            ".ppt",
            ".pptx",
            ".csv",
            ".ods",
            ".ots",
            ".xls",
            ".xlsx",
            ".xlsm",
        )
    )

    THUMBNAIL_IMAGES = frozenset(
        [".bmp", ".gif", ".jpeg", ".jpg", ".pbm", ".png", ".tiff", ".tif", ".tga", ".webp", ".heic"]
    )

    MAX_IMAGE_FILE_SIZE = 30 << 20

    #: the size of the stored thumbnail the handler serves by default (the first of
    #: ``thumbnail:sizes``; a choice: the configured sizes live outside the server source)
    THUMBNAIL_SIZE = (256, 192)

    def _thumbnail_wanted(self, file: FileObj) -> bool:
        """``Builder.CanCreateThumbnail``: a known format, not too large an image, not in Trash."""
        ext = file.ext.lower()
        if ext in self.THUMBNAIL_IMAGES:
            return file.current.content.size <= self.MAX_IMAGE_FILE_SIZE
        return ext in self.THUMBNAIL_DOCS and (
            self._root_of(file.folder_id).folder_type != FT_TRASH
        )

    def _new_system_folder(self, title: str, folder_type: int, owner: str | None = None) -> int:
        now = self.now()
        folder = FolderObj(
            id=next(self._folder_ids),
            title=title,
            parent_id=None,
            folder_type=folder_type,
            created=now,
            created_by=owner or "",
            modified=now,
            modified_by=owner or "",
            owner=owner,
        )
        self.folders[folder.id] = folder
        return folder.id

    def _new_folder(
        self, title: str, parent_id: int, folder_type: int, uid: str, room_type: int | None = None
    ) -> FolderObj:
        if parent_id not in self.folders:
            raise not_found("The folder could not be found")
        now = self.now()
        folder = FolderObj(
            id=next(self._folder_ids),
            title=title,
            parent_id=parent_id,
            folder_type=folder_type,
            created=now,
            created_by=uid,
            modified=now,
            modified_by=uid,
            room_type=room_type,
        )
        self.folders[folder.id] = folder
        return folder

    def _new_file(
        self, title: str, folder_id: int, content: Content, uid: str, comment: str
    ) -> FileObj:
        if folder_id not in self.folders:
            raise not_found("The folder could not be found")
        now = self.now()
        file = FileObj(
            id=next(self._file_ids),
            title=title,
            folder_id=folder_id,
            created=now,
            created_by=uid,
            versions=[Version(1, 1, content, now, uid, comment)],
            modified=now,
            modified_by=uid,
        )
        self.files[file.id] = file
        return file

    def _push_version(
        self, file: FileObj, content: Content, uid: str, comment: str, keep_group: bool = False
    ) -> None:
        now = self.now()
        last = file.current
        group = last.group if keep_group else last.group + 1
        file.versions.append(Version(last.number + 1, group, content, now, uid, comment))
        file.modified, file.modified_by = now, uid

    @staticmethod
    def _version(file: FileObj, number: int) -> Version:
        for version in file.versions:
            if version.number == number:
                return version
        raise not_found("The file version could not be found")

    def _chain(self, folder_id: int) -> list[FolderObj]:
        """The folders from the section root down to ``folder_id``."""
        chain = []
        current: int | None = folder_id
        while current is not None:
            folder = self.folders[current]
            chain.append(folder)
            current = folder.parent_id
        return chain[::-1]

    def _root_of(self, folder_id: int) -> FolderObj:
        return self._chain(folder_id)[0]

    def _subfolders(self, folder_id: int) -> list[FolderObj]:
        return [f for f in self.folders.values() if f.parent_id == folder_id]

    def _files_in(self, folder_id: int, converting: bool = False) -> list[FileObj]:
        """Files of a folder; files under conversion are hidden unless asked for (§4.2)."""
        return [
            f
            for f in self.files.values()
            if f.folder_id == folder_id and (converting or f.converting_until is None)
        ]

    def _by_parent(
        self, converting: bool = False
    ) -> tuple[dict[int | None, list[FolderObj]], dict[int, list[FileObj]]]:
        """Every folder and file grouped by its parent, in one pass over the portal (asking
        ``_subfolders``/``_files_in`` folder by folder scans everything once per folder:
        quadratic over a big room's tree)."""
        subfolders: dict[int | None, list[FolderObj]] = {}
        for folder in self.folders.values():
            subfolders.setdefault(folder.parent_id, []).append(folder)
        files: dict[int, list[FileObj]] = {}
        for file in self.files.values():
            if converting or file.converting_until is None:
                files.setdefault(file.folder_id, []).append(file)
        return subfolders, files

    @staticmethod
    def _subtree(
        folder: FolderObj, subfolders: dict[int | None, list[FolderObj]]
    ) -> list[FolderObj]:
        """``folder`` and every folder below it (``subfolders`` from ``_by_parent``)."""
        tree, i = [folder], 0
        while i < len(tree):
            tree.extend(subfolders.get(tree[i].id, ()))
            i += 1
        return tree

    def _destroy_folder(self, folder_id: int) -> None:
        for sub in self._subfolders(folder_id):
            self._destroy_folder(sub.id)
        for file in self._files_in(folder_id, True):
            del self.files[file.id]
        self.folders.pop(folder_id, None)

    def _is_live(self, folder_id: int) -> bool:
        """Inside My documents or an active room (not Trash, not Archive)."""
        return self._root_of(folder_id).folder_type in (FT_USER, FT_VIRTUAL_ROOMS)

    def _room_of(self, folder_id: int) -> FolderObj | None:
        chain = self._chain(folder_id)
        if chain[0].folder_type in (FT_VIRTUAL_ROOMS, FT_ARCHIVE) and len(chain) > 1:
            return chain[1]
        return None

    def _level(self, user: User | None, folder_id: int) -> int:
        """What ``user`` may do inside ``folder_id`` (NONE … FULL)."""
        if user is None:
            return NONE
        chain = self._chain(folder_id)
        root = chain[0]
        if root.folder_type in (FT_USER, FT_TRASH):
            return FULL if root.owner == user.id else NONE
        if root.folder_type in (FT_VIRTUAL_ROOMS, FT_ARCHIVE):
            if len(chain) == 1:
                return READ
            return FULL if user.admin else chain[1].members.get(user.id, NONE)
        return NONE

    def _require_read(self, user: User | None, folder_id: int) -> None:
        if self._level(user, folder_id) < READ:
            raise access_denied()

    def _may_modify(self, user: User, folder_id: int, created_by: str) -> bool:
        """Delete/rename/move rights on an item stored in ``folder_id``."""
        level = self._level(user, folder_id)
        return level == FULL or (level == CREATE and created_by == user.id)

    def _edit_refusal(self, user: User, file: FileObj) -> ApiError | None:
        """Why ``user`` cannot write a new version of ``file`` (None if they can)."""
        if not self._is_live(file.folder_id):
            return invalid_operation("The file is in the trash or in an archived room")
        if self._level(user, file.folder_id) < EDIT:
            return access_denied()
        if file.locked_by not in (None, user.id):
            return invalid_operation("The file is locked")
        if file.editing:
            return invalid_operation("The file is currently being edited")
        return None

    def _may_edit_history(self, user: User | None, file: FileObj) -> bool:
        """FileSecurity's ``EditHistory`` (version comments): in a room only a room manager
        or content creator has it — not an editor; in My documents its owner (FileSecurity.cs,
        ``case FilesSecurityActions.EditHistory``)."""
        return (
            user is not None
            and self._is_live(file.folder_id)
            and self._level(user, file.folder_id) >= CREATE
        )

    def _check_create_in(self, user: User, folder: FolderObj) -> None:
        if folder.id in (self.rooms_root_id, self.archive_root_id):
            raise invalid_operation("Cannot create items directly in this section")
        if not self._is_live(folder.id):
            raise invalid_operation("Cannot create items in the trash or an archived room")
        if self._level(user, folder.id) < CREATE:
            raise access_denied()

    def _deny_download(self, user: User | None, folder_id: int) -> bool:
        room = self._room_of(folder_id)
        return room is not None and room.deny_download and self._level(user, folder_id) != FULL

    def _file_security(self, user: User | None, file: FileObj) -> dict[str, bool]:
        level = self._level(user, file.folder_id)
        live = self._is_live(file.folder_id)
        in_trash = self._root_of(file.folder_id).folder_type == FT_TRASH
        readable = level >= READ
        edit = user is not None and self._edit_refusal(user, file) is None
        modify = (
            user is not None
            and live
            and self._may_modify(user, file.folder_id, file.created_by)
            and file.locked_by in (None, user.id)
        )
        download = readable and not self._deny_download(user, file.folder_id)
        security = dict.fromkeys(FILE_SECURITY_KEYS, False)
        security.update(
            Read=readable,
            Comment=edit,
            Review=edit,
            FillForms=edit,
            Edit=edit,
            Lock=edit,
            EditHistory=self._may_edit_history(user, file),
            Convert=edit,
            ReadHistory=readable,
            Download=download,
            Copy=download,
            CopyLink=readable,
            Embed=readable,
            Delete=modify or (in_trash and level == FULL),
            Rename=modify,
            Move=modify,
            Duplicate=modify,
        )
        return security

    def _folder_security(self, user: User | None, folder: FolderObj) -> dict[str, bool]:
        level = self._level(user, folder.id)
        live = self._is_live(folder.id)
        in_trash = self._root_of(folder.id).folder_type == FT_TRASH
        section = folder.parent_id is None
        is_room = folder.room_type is not None
        if folder.id == self.rooms_root_id:
            create = user is not None and user.admin
        else:
            create = (live and level >= CREATE and not section) or (
                section and folder.folder_type == FT_USER and level == FULL
            )
        modify = (
            user is not None
            and live
            and not section
            and (level == FULL if is_room else self._may_modify(user, folder.id, folder.created_by))
        )
        security = dict.fromkeys(FOLDER_SECURITY_KEYS, False)
        security.update(
            Read=level >= READ,
            Create=create,
            CreateFrom=create,
            CopyTo=create,
            MoveTo=create,
            Delete=modify or (in_trash and not section and level == FULL),
            Rename=modify,
            Move=modify and not is_room,
            Copy=level >= READ and not section,
            Duplicate=modify,
            EditRoom=is_room and modify,
            EditAccess=is_room and modify,
            Pin=is_room,
            Mute=is_room,
            ReadHistory=level >= READ,
            Download=level >= READ and not self._deny_download(user, folder.id),
        )
        return security

    def _fileshare(self, user: User | None, folder_id: int) -> int:
        """The ``access`` field: FileShare of the user on items in ``folder_id``."""
        level = self._level(user, folder_id)
        if self._room_of(folder_id) is None:
            return 0 if level == FULL else 2
        return ROOM_FILESHARE.get(level, 0)
