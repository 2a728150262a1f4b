"""Saving to DocSpace: new files and new versions through chunked upload sessions.

A save that is not blindly repeatable and whose answer was lost is looked for on the server
before anything is sent again; the server's re-title of every save is undone by a rename
(docs/protocols/docspace.md).
"""

import functools
import math
import re
from collections.abc import AsyncGenerator, Awaitable, Callable
from contextlib import aclosing, suppress
from pathlib import Path
from typing import Any

import trio

from docfs import errors
from docfs.backends._multipart import Field, FilePart, Multipart
from docfs.backends.base import Entry, Kind
from docfs.backends.docspace.common import (
    API,
    CHUNK_FILENAME,
    PAGE,
    SAVE_ATTEMPTS,
    STATUS_MAP,
    check_name,
    extension,
    log,
    parse_date,
    server_title,
)
from docfs.backends.docspace.operations import DocSpaceOperations


class DocSpaceUploads(DocSpaceOperations):
    """New files and new versions."""

    # ---- writing --------------------------------------------------------------------------

    def _folder_target(self, parent: Entry) -> str:
        if parent.extra.get("kind") in ("root", "rooms") or parent.kind is not Kind.DIR:
            raise errors.NotSupported(f"DocSpace: files cannot be created in {parent.name!r}")
        return self._raw_id(parent)

    async def create_file(self, parent: Entry, name: str, src: Path) -> Entry:
        """A new file; a same-named file the caller has not seen yields ``name (1).ext``, a
        file named the same but for case does not (the new one keeps the name it was given).

        A save whose answer was lost is looked for (a file of this size created after the
        session opened) before anything is sent again; absent, the caller re-lists and calls
        again. The server's re-title of every save (``Makefile`` → ``Makefile.``,
        ``Photo.JPG`` → ``Photo.jpg``) is undone by a rename.
        """
        check_name(name)
        folder = self._folder_target(parent)
        size = src.stat().st_size
        if size == 0:
            dto = await self._create_empty(folder, name)
        else:

            def start() -> Awaitable[Any]:
                return self._call(
                    "POST",
                    f"{API}/files/{folder}/upload/create_session",
                    endpoint="upload-session",
                    json={"fileName": name, "fileSize": size, "createNewIfExist": True},
                    # opening a session creates no file: after a lost answer, open another
                    # (the abandoned one expires on the server)
                    idempotent=True,
                )

            async def landed(session: dict[str, Any]) -> dict[str, Any] | None:
                return await self._find_created(folder, name, size, session.get("created"))

            dto = await self._session_upload(start, src, size, landed)
        entry = self._file_entry(dto)
        if entry.name == server_title(name) != name:
            # the save re-titled it (FileDao.SaveFileAsync "make lowerCase"); a rename does not
            entry = await self._retitle(entry, name)
        elif entry.name != name and not await self._holds_title(folder, name):
            # the server matches titles without regard to case (docs/protocols/docspace.md,
            # "Same titles and title sanitation"): beside "Report.PDF" a new "report.pdf"
            # became "report (1).pdf", and the file vanished from where it was written. A
            # rename checks no clashes, so it gets its name back (found by the name fuzzer of
            # tests/reliability). Beside an unseen "report.pdf" it keeps the "(1)"
            entry = await self._retitle(entry, name)
        return entry

    async def _create_empty(self, folder: str, name: str) -> dict[str, Any]:
        """``POST …/file``; after a lost answer an empty file of that title is ours (even if
        it was there before, an empty file of that name is what was asked for); none: sent
        again."""
        for attempt in range(SAVE_ATTEMPTS):
            try:
                dto: dict[str, Any] = await self._call(
                    "POST",
                    f"{API}/files/{folder}/file",
                    endpoint="create",
                    json={"title": name, "enableExternalExt": True},
                )
                return dto
            except errors.RemoteUnavailable as exc:

                async def empty() -> dict[str, Any] | None:
                    for dto in await self._titled(folder, name):
                        if int(dto.get("pureContentLength") or 0) == 0:
                            return dto
                    return None

                found = await self._look(exc, empty)
                if found is not None:
                    log.info("DocSpace: creating %s had worked; its answer was lost", name)
                    return found
                if attempt + 1 >= SAVE_ATTEMPTS:
                    raise
                log.info("DocSpace: creating %s did not arrive; sending it again", name)
        raise AssertionError("unreachable")

    async def _titled(self, folder: str, name: str) -> list[dict[str, Any]]:
        """The files of ``folder`` that may be ``name`` after a save: as given, re-titled by
        the server, or numbered ``name (N)`` beside a clash; newest first."""
        stem = name[: name.rfind(".")] if "." in name else name
        wanted = {name.lower(), server_title(name).lower()}
        found: list[dict[str, Any]] = []
        async for dto in self._filtered_files(folder, stem):
            title = str(dto.get("title", "")).lower()
            numbered = title.startswith(stem.lower() + " (")
            if title in wanted or numbered:
                found.append(dto)
        return sorted(found, key=lambda d: int(d.get("id") or 0), reverse=True)

    async def _filtered_files(self, folder: str, text: str) -> AsyncGenerator[dict[str, Any]]:
        """The file DTOs of ``folder`` the server's ``filterValue`` matches, page by page."""
        start = 0
        while True:
            page = await self._call(
                "GET",
                f"{API}/files/{folder}",
                endpoint="list",
                params={"filterValue": text, "count": PAGE, "startIndex": start},
            )
            files = (page.get("files") or []) if isinstance(page, dict) else []
            folders = (page.get("folders") or []) if isinstance(page, dict) else []
            for dto in files:
                yield dto
            start += len(folders) + len(files)
            if (not files and not folders) or start >= int(page.get("total") or 0):
                return

    async def _find_created(
        self, folder: str, name: str, size: int, since: Any
    ) -> dict[str, Any] | None:
        """The file an upload session created, if its last request arrived: that title,
        that size, created after the session was opened (both times are the server's)."""
        # the session's time is a .NET DateTime: without a zone it cannot be compared with
        # the file's (the portal's offset), and the newest matching file is taken instead
        zoned = isinstance(since, str) and re.search(r"(Z|[+-]\d\d:\d\d)$", since.strip())
        opened = parse_date(since) if zoned else None
        for dto in await self._titled(folder, name):
            created = parse_date(dto.get("created"))
            if int(dto.get("pureContentLength") or 0) != size:
                continue
            if opened is None or (created is not None and created >= opened - 1):
                return dto
        return None

    async def _holds_title(self, folder: str, title: str) -> bool:
        """Whether ``folder`` holds a file titled exactly ``title`` (a filtered listing)."""
        async with aclosing(self._filtered_files(folder, title)) as files:
            async for dto in files:
                if dto.get("title") == title:
                    return True  # no further page is asked for
        return False

    async def replace_file(self, entry: Entry, src: Path) -> Entry:
        """A new version of the same file id (history keeps the old ones).

        After a lost answer the file's version tells whether the save arrived; if not, it is
        done again with a new session. The name the user gave survives the server's
        re-title of every save (a rename back, the only request that keeps a title as is).
        """
        size = src.stat().st_size
        file_id = self._raw_id(entry)
        old_version = int(entry.extra.get("version", "0") or 0)
        if size == 0:
            # the empty content is the (empty) file itself
            body = Multipart(
                [
                    Field("FileExtension", extension(entry.name)),
                    FilePart("File", src, CHUNK_FILENAME),
                ]
            )
            for attempt in range(SAVE_ATTEMPTS):
                try:
                    dto = await self._call(
                        "PUT",
                        f"{API}/files/file/{file_id}/saveediting",
                        endpoint="save-editing",
                        body=body,
                        headers={"Content-Type": body.content_type},
                        idempotent=False,  # a resend is another version: look first
                    )
                    break
                except errors.RemoteUnavailable as exc:
                    found = await self._look(
                        exc, lambda: self._saved_version(file_id, old_version, 0, None)
                    )
                    if found is not None:
                        dto = found
                        break
                    if attempt + 1 >= SAVE_ATTEMPTS:
                        raise
            return await self._keep_title(self._file_entry(dto), entry.name)

        def start() -> Awaitable[Any]:
            return self._call(
                "POST",
                f"{API}/files/file/{file_id}/edit_session",
                endpoint="edit-session",
                params={"fileSize": size},
                idempotent=True,  # as for create_session: no version exists until the end
            )

        async def landed(session: dict[str, Any]) -> dict[str, Any] | None:
            return await self._saved_version(file_id, old_version, size, session.get("created"))

        dto = await self._session_upload(start, src, size, landed)
        return await self._keep_title(self._file_entry(dto), entry.name)

    async def _saved_version(
        self, file_id: str, old_version: int, size: int, since: Any
    ) -> dict[str, Any] | None:
        """The file's DTO if a version newer than ``old_version`` of ``size`` bytes is there
        (saved after ``since``, when known): a save whose answer was lost."""
        dto = await self._call("GET", f"{API}/files/file/{file_id}", endpoint="file")
        if not isinstance(dto, dict) or int(dto.get("version") or 0) <= old_version:
            return None
        if int(dto.get("pureContentLength") or 0) != size:
            return None
        zoned = isinstance(since, str) and re.search(r"(Z|[+-]\d\d:\d\d)$", since.strip())
        opened = parse_date(since) if zoned else None
        updated = parse_date(dto.get("updated"))
        if opened is not None and updated is not None and updated < opened - 1:
            return None
        return dto

    async def _keep_title(self, entry: Entry, name: str) -> Entry:
        """Undo the server's re-title of a save (``Photo.JPG`` → ``Photo.jpg``, ``Makefile`` →
        ``Makefile.``): without it the file's path changes under the user at every save."""
        if entry.name == name or entry.name != server_title(name):
            return entry
        try:
            check_name(name)  # a title made elsewhere may be one a request cannot carry
            return await self._retitle(entry, name)
        except errors.DocfsError as exc:
            # the bytes are saved: that must not be reported as a failed upload
            log.warning(
                "DocSpace saved %r as %r and it could not be renamed back: %s",
                name,
                entry.name,
                exc,
            )
            return entry

    async def _session_upload(
        self,
        start: Callable[[], Awaitable[Any]],
        src: Path,
        size: int,
        landed: Callable[[dict[str, Any]], Awaitable[dict[str, Any] | None]],
    ) -> dict[str, Any]:
        """Chunks of exactly ``chunkUploadSize`` by number, then finalize (docs/protocols/
        docspace.md, "Chunked uploads").

        ``src`` is read as it is: the caller hands over a file nobody writes any more (the
        vfs uploads a snapshot). The request that saves (the single body, or ``finalize``)
        is not blindly repeatable: when its answer is lost, ``landed`` looks at the server;
        absent, the whole upload is done again in a new session.
        """
        for attempt in range(SAVE_ATTEMPTS):
            answer = await start()
            session = (
                answer.get("data") if isinstance(answer, dict) and "data" in answer else answer
            )
            if not isinstance(session, dict) or "id" not in session:
                raise errors.ProtocolError("DocSpace: the upload session answer has no id")
            uid = str(session["id"])
            try:
                done = await self._send_session(uid, src, size)
            except errors.RemoteUnavailable as exc:
                # a lost answer or a 5xx: the save may or may not have happened
                found = await self._look(exc, functools.partial(landed, session))
                if found is not None:
                    log.info("DocSpace: an upload had arrived; its answer was lost")
                    return found
                await self._abort_session(uid)
                if attempt + 1 >= SAVE_ATTEMPTS:
                    raise
                log.info("DocSpace: an upload did not arrive; sending it again")
                continue
            except errors.DocfsError:
                await self._abort_session(uid)
                raise
            file_dto = done.get("file") if isinstance(done, dict) else None
            if not isinstance(file_dto, dict):
                raise errors.ProtocolError("DocSpace: the upload finished without a file")
            return file_dto
        raise AssertionError("unreachable")

    async def _send_session(self, uid: str, src: Path, size: int) -> Any:
        """The bytes of one session, then the request that saves them; its answer."""
        if size < self.chunk_size:
            # "no chunks" mode: the whole body in one request saves the file
            whole = FilePart("file", src, CHUNK_FILENAME, length=size)
            return await self._chunk({"uid": uid}, whole, idempotent=False)
        for number in range(1, math.ceil(size / self.chunk_size) + 1):
            offset = (number - 1) * self.chunk_size
            length = min(self.chunk_size, size - offset)
            chunk = FilePart("file", src, CHUNK_FILENAME, offset=offset, length=length)
            # a numbered chunk lands in its slot: resending it is harmless
            params = {"uid": uid, "upload": "true", "chunkNumber": str(number)}
            await self._chunk(params, chunk, idempotent=True)
        return await self._chunk({"uid": uid, "finalize": "true"}, None, idempotent=False)

    async def _chunk(self, params: dict[str, str], part: FilePart | None, idempotent: bool) -> Any:
        """One ``ChunkedUploader.ashx`` request (``part``: the bytes it carries, streamed from
        the file); its errors are HTTP 200 + ``success:false``."""
        body: Multipart | None = None
        headers: dict[str, str] = {}
        if part is not None:
            body = Multipart([part])
            headers["Content-Type"] = body.content_type
        for attempt in range(2):
            generation = self.session.generation
            async with self._gate("POST"):
                response = await self.http.request(
                    "POST",
                    "/ChunkedUploader.ashx",
                    endpoint="chunk",
                    params=params,
                    body=body,
                    headers=headers,
                    idempotent=idempotent,
                    status_map=STATUS_MAP,
                )
            try:
                answer = response.json()
            except ValueError:
                raise errors.ProtocolError("DocSpace: the chunk answer is not JSON") from None
            if answer.get("success"):
                return answer.get("data")
            message = str(answer.get("message") or "chunk refused")
            denied = errors.PermissionDenied(f"DocSpace: {message}", status=403)
            if (
                attempt == 0
                and "not authorized" in message.lower()
                and await self._token_was_rejected(denied, generation)
            ):
                continue
            raise self._chunk_error(message)
        raise AssertionError("unreachable")

    @staticmethod
    def _chunk_error(message: str) -> errors.DocfsError:
        low = message.lower()
        if "chunk" in low and ("larger" in low or "size" in low):
            return errors.TooLarge(f"DocSpace: {message}")
        if "quota" in low or "exceeds" in low:
            return errors.QuotaExceeded(f"DocSpace: {message}")
        if "not authorized" in low or "expired" in low:
            return errors.PermissionDenied(f"DocSpace: {message}")
        return errors.ProtocolError(f"DocSpace: {message}")

    async def _abort_session(self, uid: str) -> None:
        # best effort: an abandoned session expires by itself after 12 hours
        with trio.move_on_after(10):
            with suppress(errors.DocfsError):
                await self.http.request(
                    "POST",
                    "/ChunkedUploader.ashx",
                    endpoint="chunk",
                    params={"uid": uid, "abort": "true"},
                    idempotent=True,
                )
