"""What tests and the demo use to arrange and inspect the portal without HTTP: seeding users,
rooms, folders and files, settings (rate limits, redirects, conversion), the thumbnail builder,
snapshots of the tree and the download and chunk logs.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Iterable
from typing import Any

from docfs.emulators.docspace.model import (
    ACCESS_NAMES,
    DAY,
    FT_DEFAULT,
    FT_TRASH,
    FT_USER,
    FULL,
    OP_MOVE,
    ROOM_FOLDER_TYPE,
    ApiKey,
    BytesContent,
    ChunkRecord,
    Content,
    DownloadRecord,
    PatternContent,
    User,
)
from docfs.emulators.docspace.ratelimit import RateLimitConfig, RateLimiter
from docfs.emulators.docspace.uploads import Uploads
from docfs.emulators.thumbjpeg import encode_jpeg, picture_of
from docfs.vfs.imagecodec import Image, encode_png


class Backdoor(Uploads):
    """The test-facing API: seed, configure and inspect the portal."""

    def add_user(
        self,
        email: str,
        password: str,
        *,
        display_name: str | None = None,
        admin: bool = True,
        has_my_documents: bool = True,
        two_factor: str | None = None,
        disabled: bool = False,
    ) -> str:
        """Create a user with a My documents section and a Trash; returns the user id."""
        with self._state:
            uid = str(uuid.UUID(int=self._random.getrandbits(128), version=4))
            user = User(
                id=uid,
                email=email,
                password=password,
                display_name=display_name or email.split("@")[0].replace(".", " ").title(),
                admin=admin,
                has_my=has_my_documents,
                two_factor=two_factor,
                disabled=disabled,
            )
            if has_my_documents:
                user.my_id = self._new_system_folder("My documents", FT_USER, owner=uid)
            user.trash_id = self._new_system_folder("Trash", FT_TRASH, owner=uid)
            self.users[uid] = user
            return uid

    def add_api_key(
        self,
        email: str,
        *,
        scopes: Iterable[str] = ("*",),
        name: str = "docfs",
        key: str | None = None,
        expires_in_days: int | None = None,
    ) -> str:
        """Issue an API key (``sk-`` + 64 hex) for ``email``; returns the key string."""
        with self._state:
            user = self._user_by_email(email)
            key = key or "sk-" + secrets.token_hex(32)
            now = self.now()
            self._keys[key] = ApiKey(
                id=str(uuid.uuid4()),
                key=key,
                user_id=user.id,
                name=name,
                scopes=tuple(scopes),
                created=now,
                expires=now + expires_in_days * DAY if expires_in_days else None,
            )
            return key

    def expire_tokens(self, email: str | None = None) -> int:
        """Invalidate the login tokens of ``email`` (all users if None); returns how many."""
        with self._state:
            doomed = [
                t
                for t, tok in self._tokens.items()
                if email is None or tok.user_id == self._user_by_email(email).id
            ]
            for t in doomed:
                del self._tokens[t]
            return len(doomed)

    def revoke_api_key(self, key: str) -> None:
        """Delete an API key: requests with it are then anonymous."""
        with self._state:
            self._keys.pop(key, None)

    def user_id(self, email: str) -> str:
        """The user id (a GUID) of ``email``."""
        with self._state:
            return self._user_by_email(email).id

    def my_documents_id(self, email: str) -> int:
        """The folder id of the user's My documents (0 if they have none)."""
        with self._state:
            return self._user_by_email(email).my_id

    def trash_id(self, email: str) -> int:
        """The folder id of the user's Trash."""
        with self._state:
            return self._user_by_email(email).trash_id

    def add_room(
        self,
        title: str,
        *,
        owner: str | None = None,
        room_type: int = 5,
        deny_download: bool = False,
    ) -> int:
        """Create a room (default CustomRoom) managed by ``owner`` (an email)."""
        with self._state:
            uid = self._owner_id(owner)
            room = self._new_folder(
                title, self.rooms_root_id, ROOM_FOLDER_TYPE[room_type], uid, room_type=room_type
            )
            room.deny_download = deny_download
            room.members[uid] = FULL
            return room.id

    def share_room(self, room_id: int, email: str, access: str = "read") -> None:
        """Give ``email`` ``read``, ``editor``, ``content_creator`` or ``manager`` rights."""
        with self._state:
            self.folders[room_id].members[self._user_by_email(email).id] = ACCESS_NAMES[access]

    def set_deny_download(self, room_id: int, deny: bool = True) -> None:
        """Switch the room's ``denyDownload`` (downloads then 403 for non-managers)."""
        with self._state:
            self.folders[room_id].deny_download = deny

    def set_watermark(self, room_id: int, text: str | None = "CONFIDENTIAL") -> None:
        """Give a room a watermark (None: remove it): FileHandler.ashx.cs then serves each
        of its convertible files as a watermarked PDF, whole, whatever the ``Range``."""
        with self._state:
            self.folders[room_id].watermark = text

    def hold_operation(self, email: str) -> str:
        """Start a file operation of ``email`` that runs until ``finish_operation`` (another
        client of the same user, e.g. the web UI, moving a big folder)."""
        with self._state:
            user = self._user_by_email(email)
            op = self._start_operation(user, OP_MOVE, True, lambda: None, [], [])
            op.due = self.now() + 1e9  # until finish_operation
            return op.id

    def finish_operation(self, op_id: str) -> None:
        with self._state:
            for op in self._operations:
                if op.id == op_id:
                    op.due = self.now()

    def archive_room(self, room_id: int) -> None:
        """Move a room to the Archive section (its content becomes read-only)."""
        with self._state:
            self.folders[room_id].parent_id = self.archive_root_id

    def add_folder(self, parent_id: int, title: str, *, owner: str | None = None) -> int:
        """Create a folder (the title is stored as given); returns its id."""
        with self._state:
            return self._new_folder(title, parent_id, FT_DEFAULT, self._owner_id(owner)).id

    def add_file(
        self,
        folder_id: int,
        title: str,
        data: bytes | None = None,
        *,
        size: int | None = None,
        owner: str | None = None,
        comment: str = "Uploaded",
    ) -> int:
        """Store a file: ``data``, or ``size`` generated bytes (for large test files)."""
        content: Content = (
            BytesContent(data)
            if data is not None
            else PatternContent(size or 0, seed=self._random.getrandbits(32))
        )
        with self._state:
            return self._new_file(title, folder_id, content, self._owner_id(owner), comment).id

    def add_version(
        self, file_id: int, data: bytes, *, comment: str = "Edited", by: str | None = None
    ) -> int:
        """A new version behind the client's back; returns the new version number."""
        with self._state:
            file = self.files[file_id]
            self._push_version(file, BytesContent(data), self._owner_id(by), comment)
            return file.current.number

    def rename_file(self, file_id: int, title: str) -> None:
        """Rename behind the client's back (no sanitation, no extension rule)."""
        with self._state:
            self.files[file_id].title = title
            self.files[file_id].modified = self.now()

    def rename_folder(self, folder_id: int, title: str) -> None:
        """Rename a folder or room behind the client's back."""
        with self._state:
            self.folders[folder_id].title = title
            self.folders[folder_id].modified = self.now()

    def move_file(self, file_id: int, folder_id: int) -> None:
        """Move a file to another folder (or a Trash) behind the client's back."""
        with self._state:
            self.files[file_id].folder_id = folder_id

    def remove_file(self, file_id: int) -> None:
        """Delete permanently, behind the client's back."""
        with self._state:
            self.files.pop(file_id, None)

    def remove_folder(self, folder_id: int) -> None:
        """Delete a folder and its content permanently, behind the client's back."""
        with self._state:
            self._destroy_folder(folder_id)

    def lock_file(self, file_id: int, email: str | None) -> None:
        """Lock for ``email`` (others cannot write or rename); None unlocks."""
        with self._state:
            self.files[file_id].locked_by = None if email is None else self.user_id(email)

    def set_editing(self, file_id: int, editing: bool = True) -> None:
        """Mark a file as open in an editor (uploads then add a second file, §6.2)."""
        with self._state:
            self.files[file_id].editing = editing

    def set_store_original(self, email: str, store: bool) -> None:
        """The user's "store original files" setting (conversion adds a second file)."""
        with self._state:
            self._user_by_email(email).store_original = store

    def set_download_redirect(self, enabled: bool, storage_base: str | None = None) -> None:
        """302 mode: downloads redirect to ``storage_base`` (default: this server)."""
        with self._state:
            self.download_redirect = enabled
            self.storage_base = storage_base.rstrip("/") if storage_base else None

    def set_rate_limits(self, config: RateLimitConfig | None) -> None:
        """Replace the limiter (None turns it off); counters start afresh."""
        with self._state:
            self._limiter = RateLimiter(config) if config is not None else None

    def build_thumbnails(self, image_format: str = "jpg") -> list[int]:
        """One run of the ThumbnailBuilder over every file that waits for a thumbnail; returns
        their ids. Documents get JPEG (``DocThumbnailExtension``); images get
        ``image_format``: the real default (``files:thumbnail:exts``) is webp, which this
        emulator cannot encode, so it offers ``jpg`` (default here) and ``png``."""
        if image_format not in ("jpg", "png"):
            raise ValueError("image_format: jpg or png")
        made = []
        with self._state:
            for file in self.files.values():
                current = file.current
                if not self._thumbnail_wanted(file):
                    continue
                if file.thumbnail is not None and file.thumbnail[0] == current.number:
                    continue
                width, height = self.THUMBNAIL_SIZE
                picture = picture_of(current.content.read(0, 65536), width, height)
                if file.ext.lower() in self.THUMBNAIL_IMAGES and image_format == "png":
                    data, media = encode_png(Image(width, height, picture)), "image/png"
                else:
                    data, media = encode_jpeg(width, height, picture), "image/jpeg"
                file.thumbnail = (current.number, data, media)
                made.append(file.id)
        return made

    def file_content(self, file_id: int, version: int | None = None) -> bytes:
        """The bytes of the current (or a given) version."""
        with self._state:
            file = self.files[file_id]
            chosen = file.current if version is None else self._version(file, version)
            return chosen.content.all()

    def file_bytes(self, file_id: int, start: int, end: int, version: int | None = None) -> bytes:
        """Bytes [start, end) of the current (or a given) version; large files stay unbuilt."""
        with self._state:
            file = self.files[file_id]
            chosen = file.current if version is None else self._version(file, version)
            return chosen.content.read(start, end)

    def file_info(self, file_id: int) -> dict[str, Any]:
        """A plain snapshot: title, folder_id, version, version_group, size, comment…"""
        with self._state:
            file = self.files[file_id]
            return {
                "id": file.id,
                "title": file.title,
                "folder_id": file.folder_id,
                "version": file.current.number,
                "version_group": file.current.group,
                "versions": len(file.versions),
                "size": file.current.content.size,
                "comment": file.current.comment,
                "in_trash": self._root_of(file.folder_id).folder_type == FT_TRASH,
            }

    def folder_info(self, folder_id: int) -> dict[str, Any]:
        """A plain snapshot: title, parent_id, room_type, in_trash."""
        with self._state:
            folder = self.folders[folder_id]
            return {
                "id": folder.id,
                "title": folder.title,
                "parent_id": folder.parent_id,
                "room_type": folder.room_type,
                "in_trash": self._root_of(folder.id).folder_type == FT_TRASH,
            }

    def children(self, folder_id: int) -> list[tuple[str, int, str]]:
        """``("folder"|"file", id, title)`` of the direct children, converting files included."""
        with self._state:
            subs = [("folder", f.id, f.title) for f in self._subfolders(folder_id)]
            return subs + [("file", f.id, f.title) for f in self._files_in(folder_id, True)]

    def find(self, folder_id: int, title: str) -> list[int]:
        """Ids of the files and folders titled ``title`` in ``folder_id``."""
        return [i for _, i, t in self.children(folder_id) if t == title]

    def upload_sessions(self) -> list[dict[str, Any]]:
        """Open upload sessions with the size of each received chunk slot."""
        with self._state:
            return [
                {
                    "id": s.id,
                    "title": s.title,
                    "total": s.total,
                    "chunks": {n: len(c) for n, c in sorted(s.chunks.items())},
                }
                for s in self._sessions.values()
            ]

    def download_log(self) -> list[DownloadRecord]:
        """The content answers since the last ``clear_log``: file, version, Range, bytes sent."""
        with self._state:
            return list(self._downloads)

    def chunk_log(self) -> list[ChunkRecord]:
        """The upload chunks received since the last ``clear_log``, in arrival order."""
        with self._state:
            return list(self._chunks)

    def clear_log(self) -> None:
        """Forget the request log and the download and chunk records."""
        super().clear_log()
        with self._state:
            self._downloads.clear()
            self._chunks.clear()

    def pending_operations(self) -> int:
        """File operations still queued (running, or finished and not yet reported)."""
        with self._state:
            return len(self._operations)
