"""RSpace handlers for ``/files`` (the Gallery: ``FilesApiController``) and ``/snippets``."""

from __future__ import annotations

import time
from collections.abc import Iterator

from starlette.responses import PlainTextResponse, Response, StreamingResponse

from docfs.emulators.rspace.content import (
    EXTENSION_UPGRADES,
    MEDIA_TYPE_SECTIONS,
    content_type_for,
    extension,
    image_matches,
    section_for_filename,
)
from docfs.emulators.rspace.context import Ctx, int_arg, parse_multipart
from docfs.emulators.rspace.errors import ApiError, illegal, not_found, unauthorised, validation
from docfs.emulators.rspace.rendering import Rendering, json_response, tomcat_header
from docfs.emulators.rspace.settings import CHUNK


class FileRoutes(Rendering):
    """Gallery files: listing, metadata (with the optional stale cache), download, upload,
    new versions; and snippets."""

    # ---- files -----------------------------------------------------------------------------

    def _list_files(self, ctx: Ctx) -> Response:
        page, size, order = self._paging(ctx)
        media_type = ctx.param("mediaType")
        if media_type is not None and media_type not in ("image", "av", "document", "chemistry"):
            raise validation(
                ("mediaType", media_type, "mediaType must be one of image, av, document, chemistry")
            )
        files = [
            r
            for r in self._records.values()
            if r.kind == "MEDIA" and not self._is_deleted(r) and r.owner == ctx.user.id
        ]
        if media_type == "document":
            others = set().union(*MEDIA_TYPE_SECTIONS.values())
            files = [f for f in files if f.section not in others]
        elif media_type is not None:
            files = [f for f in files if f.section in MEDIA_TYPE_SECTIONS[media_type]]
        files = self._sort(files, order)
        extra = [("mediaType", media_type)] if media_type else []
        return json_response(
            {
                "totalHits": len(files),
                "pageNumber": page,
                "files": [self._file_json(ctx, f) for f in files[page * size : (page + 1) * size]],
                "_links": self._page_links(ctx, "/files", page, size, order, len(files), extra),
            }
        )

    def _get_file(self, ctx: Ctx) -> Response:
        ident = int_arg(ctx.args[0])
        rec = self._visible(ctx, ident, ("MEDIA",), "File")
        if not self.stale_file_cache:
            return json_response(self._file_json(ctx, rec))
        # @Cacheable on the id alone: 10 entries, 3600 s, evicted only by renames
        cached = self._file_cache.get(ident)
        if cached is None or time.monotonic() - cached[1] > 3600:
            cached = (self._file_json(ctx, rec), time.monotonic())
            self._file_cache[ident] = cached
            while len(self._file_cache) > 10:
                self._file_cache.popitem(last=False)
        self._file_cache.move_to_end(ident)
        return json_response(cached[0])

    def _download(self, ctx: Ctx) -> Response:
        ident = int_arg(ctx.args[0])
        rec = self._visible(ctx, ident, ("MEDIA",), "File")
        data = b"" if rec.blob_missing else rec.data
        headers = {
            "Content-Disposition": tomcat_header(f'attachment; filename="{rec.name}"'),
            "X-Content-Type-Options": "nosniff",
        }
        if len(data) <= CHUNK:
            return Response(data, media_type=rec.content_type, headers=headers)

        def chunks() -> Iterator[bytes]:
            for i in range(0, len(data), CHUNK):
                yield data[i : i + CHUNK]

        # large bodies go out chunked, as the servlet container does for unbuffered copies
        return StreamingResponse(chunks(), media_type=rec.content_type, headers=headers)

    def _upload(self, ctx: Ctx) -> Response:
        fields, files = parse_multipart(ctx.body, ctx.headers.get("content-type", ""))
        if "file" not in files:
            raise ApiError(400, "Required request part 'file' is not present", internal=40004)
        filename, data = files["file"]
        caption = fields.get("caption", "")
        if len(caption) > 250:
            raise illegal("Caption cannot be longer than 250 characters")
        section = section_for_filename(filename)
        raw_folder = fields.get("folderId")
        if raw_folder:
            folder_id = int_arg(raw_folder, "folderId")
            target = self._rec(folder_id)
            if (
                target is None
                or target.kind != "FOLDER"
                or self._is_deleted(target)
                or not self._can_read(ctx.user, target)
            ):
                raise unauthorised(
                    f"Unauthorized attempt by {ctx.user.username} to add an item to a folder"
                )
            if target.shared_folder:
                # a shared folder as target is replaced by the section's Api Inbox
                target = self._gallery_inbox(ctx.user, section)
            elif not target.gallery or target.section != section:
                raise illegal(
                    f"Target folder (id={folder_id}) must be either Gallery folder {section} or a "
                    f"subfolder of {section}"
                )
        else:
            target = self._gallery_inbox(ctx.user, section)
        self._check_image(filename, data)
        rec = self._new_record(
            "MEDIA",
            filename,
            ctx.user.id,
            target.id,
            data=data,
            content_type=content_type_for(filename),
            caption=caption,
            section=section,
        )
        return json_response(self._file_json(ctx, rec), 201)

    @staticmethod
    def _check_image(filename: str, data: bytes) -> None:
        ext = extension(filename)
        if not image_matches(ext, data):
            raise illegal(
                f"File {filename} was rejected: its content does not match the {ext} type "
                "claimed by its file extension.",
                message_code="errors.upload.imageContentMismatch",
            )

    def _new_version(self, ctx: Ctx) -> Response:
        ident = int_arg(ctx.args[0])
        rec = self._rec(ident)
        if (
            rec is None
            or rec.kind != "MEDIA"
            or self._is_deleted(rec)
            or not self._can_edit(ctx.user, rec)
        ):
            raise not_found("File", ident)
        _, files = parse_multipart(ctx.body, ctx.headers.get("content-type", ""))
        if "file" not in files:
            raise ApiError(400, "Required request part 'file' is not present", internal=40004)
        filename, data = files["file"]
        old, new = extension(rec.name), extension(filename)
        if old != new and (old, new) not in EXTENSION_UPGRADES:
            raise illegal(
                f"The new file extension '{new}' must match the original extension '{old}'"
            )
        if rec.file_locked:
            raise ApiError(500, f"File [{ident}] is locked for editing", internal=50001)
        self._check_image(filename, data)
        if filename != rec.name:
            self._file_cache.pop(ident, None)  # rename events evict the cached ApiFile
        rec.name = filename
        rec.data = data
        rec.blob_missing = False
        rec.content_type = content_type_for(filename)
        rec.version += 1
        rec.modified = self._now()
        return json_response(self._file_json(ctx, rec), 201)

    # ---- snippets --------------------------------------------------------------------------

    def _get_snippet(self, ctx: Ctx) -> Response:
        rec = self._visible(ctx, int_arg(ctx.args[0]), ("SNIPPET",), "Snippet")
        return json_response(
            {
                "id": rec.id,
                "globalId": self._global_id(rec),
                "name": rec.name,
                "owner": self._user_json(self._users[rec.owner]),
                "content": rec.content,
                "_links": [ctx.link(f"/snippets/{rec.id}")],
            }
        )

    def _snippet_content(self, ctx: Ctx) -> Response:
        rec = self._visible(ctx, int_arg(ctx.args[0]), ("SNIPPET",), "Snippet")
        return PlainTextResponse(rec.content)
