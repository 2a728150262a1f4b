"""Work the portal does on its own clock (file operations, conversions, session expiry) and the
delete/move/copy domain operations the ``fileops`` routes queue (``docs/protocols/docspace.md`` §8).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from docfs.emulators.docspace.model import (
    FT_DEFAULT,
    FT_TRASH,
    MUST_CONVERT,
    READ,
    ST_COMPLETED,
    ST_FAILED,
    ApiError,
    FileObj,
    FolderObj,
    Operation,
    User,
    access_denied,
    available_title,
    invalid_operation,
    not_found,
)
from docfs.emulators.docspace.rendering import Rendering


class Operations(Rendering):
    """Time-driven work and the delete/move/copy operations."""

    def _advance(self) -> None:
        """Finish due operations and conversions, drop idle upload sessions."""
        now = self.now()
        for op in [o for o in self._operations if not o.finished and o.due <= now]:
            try:
                op.apply()
                op.status = ST_COMPLETED
            except ApiError as exc:
                op.status, op.error = ST_FAILED, exc.message
        for file in list(self.files.values()):
            if file.converting_until is not None and file.converting_until <= now:
                self._finish_conversion(file)
        for sid, session in list(self._sessions.items()):
            if session.touched + self.session_ttl <= now:
                del self._sessions[sid]

    def _finish_conversion(self, file: FileObj) -> None:
        """§6.6: the same entry becomes a new OOXML version, or a second file is added."""
        file.converting_until = None
        ext = file.ext
        target = file.title[: len(file.title) - len(ext)] + MUST_CONVERT[ext]
        owner = self.users.get(file.created_by)
        if owner is not None and owner.store_original:
            self._new_file(
                target, file.folder_id, file.current.content, file.created_by, "Converted"
            )
        else:
            file.title = target
            self._push_version(file, file.current.content, file.created_by, "Converted")

    def _start_operation(
        self,
        user: User,
        kind: int,
        hold: bool,
        apply: Callable[[], None],
        files: list[int],
        folders: list[int],
    ) -> Operation:
        op = Operation(
            id=str(uuid.uuid4()),
            user_id=user.id,
            kind=kind,
            due=self.now() + self.operation_delay,
            hold=hold,
            apply=apply,
            files=files,
            folders=folders,
        )
        self._operations.append(op)
        return op

    def _operation_results(self, user: User, only: str | None = None) -> list[dict[str, Any]]:
        """FileOperationsManager.GetOperationResults: finished tasks are dequeued (§8.4)."""
        self._advance()
        out = []
        for op in list(self._operations):
            if op.user_id != user.id:
                continue
            if op.finished:
                self._operations.remove(op)
                if not op.hold:
                    continue
            if only is None or op.id == only:
                out.append(self._op_dto(op))
        return out

    def _delete_file(self, user: User, file_id: int, immediately: bool) -> None:
        file = self.files.get(file_id)
        if file is None:
            raise not_found("The file could not be found")
        in_trash = self._root_of(file.folder_id).folder_type == FT_TRASH
        if not self._file_security(user, file)["Delete"]:
            raise access_denied()
        if file.editing:
            raise invalid_operation("The file is currently being edited")
        if immediately or in_trash:
            del self.files[file_id]
        else:
            file.origin_folder_id, file.folder_id = file.folder_id, user.trash_id

    def _delete_folder(self, user: User, folder_id: int, immediately: bool) -> None:
        folder = self.folders.get(folder_id)
        if folder is None:
            raise not_found("The folder could not be found")
        if not self._folder_security(user, folder)["Delete"]:
            raise access_denied()
        in_trash = self._root_of(folder_id).folder_type == FT_TRASH
        if immediately or in_trash or folder.room_type is not None:
            self._destroy_folder(folder_id)
        else:
            folder.origin_folder_id, folder.parent_id = folder.parent_id, user.trash_id

    def _transfer(
        self,
        user: User,
        file_ids: list[int],
        folder_ids: list[int],
        dest_id: int,
        resolve: int,
        copy: bool,
    ) -> None:
        dest = self.folders.get(dest_id)
        if dest is None:
            raise not_found("The destination folder could not be found")
        self._check_create_in(user, dest)
        for folder_id in folder_ids:
            folder = self.folders.get(folder_id)
            if folder is None:
                raise not_found("The folder could not be found")
            self._transfer_folder(user, folder, dest, resolve, copy)
        for file_id in file_ids:
            file = self.files.get(file_id)
            if file is None:
                raise not_found("The file could not be found")
            self._transfer_file(user, file, dest, resolve, copy)

    def _transfer_file(
        self, user: User, file: FileObj, dest: FolderObj, resolve: int, copy: bool
    ) -> None:
        """FileMoveCopyOperation for one file (§8.5)."""
        if self._level(user, file.folder_id) < READ:
            raise access_denied()
        if not copy and not self._file_security(user, file)["Move"]:
            raise access_denied()
        if not copy and file.folder_id == dest.id:
            return
        title = file.title
        siblings = [f for f in self._files_in(dest.id) if f.id != file.id]
        clash = next((f for f in siblings if f.title.lower() == title.lower()), None)
        if clash is not None:
            if resolve == 0:
                return
            if resolve == 1:
                self._push_version(clash, file.current.content, user.id, "Overwritten")
                if not copy:
                    del self.files[file.id]
                return
            title = available_title(title, {f.title.lower() for f in siblings})
        if copy:
            self._new_file(title, dest.id, file.current.content, user.id, "Copied")
        else:
            file.folder_id, file.title = dest.id, title

    def _transfer_folder(
        self, user: User, folder: FolderObj, dest: FolderObj, resolve: int, copy: bool
    ) -> None:
        if folder.parent_id is None or folder.room_type is not None:
            raise invalid_operation("Sections and rooms cannot be moved or copied this way")
        if dest.id == folder.id or any(d.id == folder.id for d in self._chain(dest.id)):
            raise invalid_operation("A folder cannot be moved into itself")
        if not copy and not self._folder_security(user, folder)["Move"]:
            raise access_denied()
        if not copy and folder.parent_id == dest.id:
            return
        siblings = [f for f in self._subfolders(dest.id) if f.id != folder.id]
        clash = next((f for f in siblings if f.title.lower() == folder.title.lower()), None)
        if clash is not None and resolve != 2:
            # Skip and Overwrite merge into the same-named folder
            for sub in self._subfolders(folder.id):
                self._transfer_folder(user, sub, clash, resolve, copy)
            for file in self._files_in(folder.id, True):
                self._transfer_file(user, file, clash, resolve, copy)
            if not copy and not self._subfolders(folder.id) and not self._files_in(folder.id, True):
                del self.folders[folder.id]
            return
        title = folder.title
        if clash is not None:
            title = available_title(title, {f.title.lower() for f in siblings}, is_folder=True)
        if copy:
            twin = self._new_folder(title, dest.id, FT_DEFAULT, user.id)
            for sub in self._subfolders(folder.id):
                self._transfer_folder(user, sub, twin, resolve, True)
            for file in self._files_in(folder.id):
                self._transfer_file(user, file, twin, resolve, True)
        else:
            folder.parent_id, folder.title = dest.id, title
