"""Upload internals: the target folder, same-title versions, chunked sessions and their commit
(``docs/protocols/docspace.md`` §6, §7 and "Chunked uploads").
"""

from __future__ import annotations

import math
import uuid
from typing import Any

from docfs.emulators.docspace.model import (
    MUST_CONVERT,
    ApiError,
    BytesContent,
    ChunkError,
    Content,
    FileObj,
    FolderObj,
    UploadSession,
    User,
    argument_error,
    available_title,
    extension,
    not_found,
    quota_error,
    sanitize_title,
    saved_title,
)
from docfs.emulators.docspace.operations import Operations
from docfs.emulators.docspace.state import Ctx


class Uploads(Operations):
    """Storing uploads: simple ones, and chunked sessions."""

    def _upload_target(self, user: User, folder: FolderObj) -> FolderObj:
        """FileUploader.GetFolderIdAsync: no uploads into Rooms/Archive roots or Trash."""
        self._check_create_in(user, folder)
        return folder

    def _check_extension(self, title: str) -> None:
        """The upload filter: NotSupportedException → 415, without type or stack."""
        if extension(title) in self.rejected_extensions:
            raise ApiError(415, "The file type is not supported", detailed=False)

    def _store_upload(
        self,
        user: User,
        folder: FolderObj,
        title: str,
        content: Content,
        create_new: bool,
        convert: bool,
    ) -> FileObj:
        """§6.2: same title → new version when editable; ``createNewIfExist`` → ``name (1)``."""
        title = sanitize_title(title)
        self._check_extension(title)
        siblings = self._files_in(folder.id)
        same = [f for f in siblings if f.title.lower() == title.lower()]
        result: FileObj | None = None
        if same and not create_new:
            target = same[0]
            if self._edit_refusal(user, target) is None:
                self._push_version(target, content, user.id, "Uploaded")
                result = target
        elif same:
            title = available_title(title, {f.title.lower() for f in siblings})
        if result is None:
            result = self._new_file(title, folder.id, content, user.id, "Uploaded")
        result.title = saved_title(result.title)  # FileDao.SaveFileAsync, new file or version
        if convert and self.conversion and result.ext in MUST_CONVERT:
            result.converting_until = self.now() + self.conversion_delay
        return result

    def _new_session(
        self,
        user: User,
        folder: FolderObj,
        title: str,
        total: int,
        create_new: bool,
        file_id: int | None = None,
    ) -> UploadSession:
        if total < 0:
            raise argument_error("fileSize must not be negative")
        self._check_extension(title)
        now = self.now()
        session = UploadSession(
            id=str(uuid.UUID(int=self._random.getrandbits(128), version=4)),
            user_id=user.id,
            folder_id=folder.id,
            title=sanitize_title(title),
            total=total,
            created=now,
            touched=now,
            create_new=create_new,
            # InitAsync: below one chunk the whole body comes in a single request
            use_chunks=total >= self.chunk_upload_size,
            file_id=file_id,
        )
        self._sessions[session.id] = session
        return session

    def _session_of(self, user: User | None, sid: str) -> UploadSession:
        session = self._sessions.get(sid)
        if session is None or user is None or session.user_id != user.id:
            raise ChunkError("Not authorized or session with specified upload id already expired")
        return session

    def _expected_chunks(self, session: UploadSession) -> int:
        return max(1, math.ceil(session.total / self.chunk_upload_size))

    def _put_chunk(
        self, session: UploadSession, number: int | None, data: bytes, length: int | None = None
    ) -> FileObj | None:
        """Store one chunk; returns the file when this chunk completed the upload.

        ``length`` is what the server believes the chunk's length is (FileUploader.cs
        ``UploadChunkAsync`` checks it against the chunk size, and ``finalize`` sums it);
        None: the bytes were measured.
        """
        length = len(data) if length is None else length
        if length > self.chunk_upload_size:
            raise quota_error("The chunk is larger than the allowed chunk size")
        session.touched = self.now()
        if not session.use_chunks:
            session.chunks[1] = data
            session.lengths[1] = len(data)
            return self._commit(session)
        sequential = number is None
        slot = len(session.chunks) + 1 if number is None else number
        if slot < 1:
            raise argument_error("chunkNumber must be positive")
        session.chunks[slot] = data
        session.lengths[slot] = length
        if sequential and len(session.chunks) >= self._expected_chunks(session):
            return self._commit(session)
        return None

    def _commit(self, session: UploadSession) -> FileObj:
        """CommonChunkedUploadSessionHolder: sum the slots 1..n; must equal the total."""
        slots = range(1, self._expected_chunks(session) + 1)
        uploaded = sum(session.lengths.get(i, 0) for i in slots)
        if uploaded != session.total:
            raise argument_error("uploadSize != bytesTotal")
        data = b"".join(session.chunks.get(i, b"") for i in slots)
        del self._sessions[session.id]
        user = self.users[session.user_id]
        if session.file_id is not None:
            file = self.files.get(session.file_id)
            if file is None:
                raise not_found("The file could not be found")
            refusal = self._edit_refusal(user, file)
            if refusal is not None:
                raise refusal
            self._push_version(file, BytesContent(data), user.id, "Edited", session.keep_version)
            file.title = saved_title(file.title)  # FileDao.SaveFileAsync re-titles every save
            return file
        folder = self.folders.get(session.folder_id)
        if folder is None:
            raise not_found("The folder could not be found")
        # the session path never converts (§6.6)
        return self._store_upload(
            user, folder, session.title, BytesContent(data), session.create_new, convert=False
        )

    def _upload_result(self, ctx: Ctx, file: FileObj, snake: bool) -> dict[str, Any]:
        """The completion object: ``provider_key`` on .ashx, ``providerKey`` on REST."""
        return {
            "id": file.id,
            "folderId": file.folder_id,
            "version": file.current.number,
            "title": file.title,
            "provider_key" if snake else "providerKey": "",
            "uploaded": True,
            "file": self._file_dto(ctx, file),
        }
