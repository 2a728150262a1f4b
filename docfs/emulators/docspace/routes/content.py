"""Handlers for content: ``filehandler.ashx`` downloads and thumbnails, and the "storage"
redirect target (``docs/protocols/docspace.md`` §5).
"""

from __future__ import annotations

import hashlib
import mimetypes
import re
import secrets
import urllib.parse
from collections.abc import AsyncIterator

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from docfs.emulators.docspace.model import (
    CONVERTIBLE,
    READ,
    STREAM_CHUNK,
    ApiError,
    BytesContent,
    Content,
    DownloadRecord,
    User,
)
from docfs.emulators.docspace.routes.base import Dispatch
from docfs.emulators.docspace.wire import parse_range
from docfs.emulators.samples import minimal_pdf


def watermarked_pdf(title: str, data: bytes, text: str, user: User | None) -> bytes:
    """The converter's output for a watermarked room: a PDF unlike the stored bytes.

    A real server renders the document with the watermark (text, user name, e-mail, IP,
    date, room name per ``WatermarkAdditions``); ours is stable for a user and a version so
    that tests can compare two downloads.
    """
    digest = hashlib.sha256(data).hexdigest()
    who = user.email if user is not None else "anonymous"
    return minimal_pdf(title, [f"Watermark: {text}", f"Viewer: {who}", f"Content {digest}"])


def _html(status: int, message: str) -> Response:
    body = f"<html><body><h1>{status}</h1><p>{message}</p></body></html>"
    return Response(body, status, media_type="text/html; charset=utf-8")


def _storage_range(header: str, size: int) -> tuple[int, int] | None:
    """RFC 9110 single-range semantics, suffix ranges included (what S3 does)."""
    spec = header.strip()
    if not spec.lower().startswith("bytes="):
        return None
    first = spec[6:].split(",")[0].strip()
    start_text, _, end_text = first.partition("-")
    if not start_text:
        length = int(end_text)
        return max(0, size - length), size - 1
    start = int(start_text)
    end = min(int(end_text), size - 1) if end_text else size - 1
    if start > end:
        raise ValueError("unsatisfiable")
    return start, end


async def _stream(content: Content, start: int, end: int) -> AsyncIterator[bytes]:
    """The body in 64 KiB messages, so a planned reset can cut it mid-way."""
    pos = start
    while pos < end:
        nxt = min(end, pos + STREAM_CHUNK)
        yield content.read(pos, nxt)
        pos = nxt


class ContentRoutes(Dispatch):
    """``filehandler.ashx`` (downloads, thumbnails) and the storage URLs."""

    def _thumb(
        self, fileid: str, version: str, headers: dict[str, str], request: Request
    ) -> Response:
        """``FileHandler.ThumbnailFile``: 404 unknown, 403 no download right, 204 while the
        thumbnail is not Created, else the stored image with its length."""
        with self._state:
            self._advance()
            principal = self._authenticate(headers, dict(request.cookies))
            user = principal.user if principal else None
            file = self.files.get(int(fileid)) if fileid.isdigit() else None
            if file is None:
                return Response(status_code=404)
            if self._level(user, file.folder_id) < READ or self._deny_download(
                user, file.folder_id
            ):
                return Response(status_code=403)
            wanted = int(version) if version.isdigit() and int(version) > 0 else None
            thumb = file.thumbnail
            if thumb is None or thumb[0] != (wanted or file.current.number):
                return Response(status_code=204)
            return Response(thumb[1], 200, media_type=thumb[2])

    async def _h_download(self, request: Request) -> Response:
        """FileHandler.DownloadFile: one byte range, the leading-space Content-Range (§5)."""
        q = request.query_params
        headers = {k.lower(): v for k, v in request.headers.items()}
        if q.get("action") == "thumb":
            return self._thumb(q.get("fileid", ""), q.get("version", ""), headers, request)
        if q.get("action") not in ("download", "stream"):
            return _html(400, "Invalid action")
        with self._state:
            self._advance()
            principal = self._authenticate(headers, dict(request.cookies))
            user = principal.user if principal else None
            fileid = q.get("fileid", "")
            file = self.files.get(int(fileid)) if fileid.isdigit() else None
            if file is None:
                return _html(404, "The file could not be found")
            if self._level(user, file.folder_id) < READ or self._deny_download(
                user, file.folder_id
            ):
                return _html(403, "Access denied")
            version = file.current
            if q.get("version", "").isdigit() and int(q["version"]) > 0:
                try:
                    version = self._version(file, int(q["version"]))
                except ApiError:
                    return _html(404, "The file version could not be found")
            title = file.title
            source = (file.id, version.number)
            room = self._room_of(file.folder_id)
            if room is not None and room.watermark is not None and file.ext in CONVERTIBLE:
                # FileHandler.ashx.cs: IsWatermarkEnabled → ext = ".pdf" and the converter's
                # stream is sent whole (length = its own length, Range never consulted)
                body = watermarked_pdf(title, version.content.all(), room.watermark, user)
                pdf_title = title[: len(title) - len(file.ext)] + ".pdf"
                return self._send_content(BytesContent(body), pdf_title, None, False, source)
            if self.download_redirect:
                return self._redirect_to_storage(request, file.id, version.number)
        return self._send_content(
            version.content, title, headers.get("range"), self.leading_space, source
        )

    def _redirect_to_storage(self, request: Request, file_id: int, version: int) -> Response:
        key = secrets.token_urlsafe(24)
        self._storage_links[key] = (file_id, version, self.now() + 3600)
        base = self.storage_base or str(request.base_url).rstrip("/")
        return Response(status_code=302, headers={"Location": f"{base}/storage/{key}"})

    async def _h_storage(self, request: Request) -> Response:
        """The "S3" behind redirect mode: signed URL, standard Range semantics, no auth."""
        headers = {k.lower(): v for k, v in request.headers.items()}
        with self._state:
            self.storage_requests.append(
                (request.url.path, "authorization" in headers or "cookie" in headers)
            )
            link = self._storage_links.get(request.path_params["key"])
            file = self.files.get(link[0]) if link else None
            if link is None or file is None or link[2] < self.now():
                return _html(403, "Request has expired")
            content = self._version(file, link[1]).content
            title = file.title
        return self._send_content(
            content, title, headers.get("range"), False, (link[0], link[1]), storage=True
        )

    def _send_content(
        self,
        content: Content,
        title: str,
        range_header: str | None,
        leading_space: bool,
        source: tuple[int, int],
        storage: bool = False,
    ) -> Response:
        size = content.size
        media = mimetypes.guess_type(title)[0] or "application/octet-stream"
        # the plain-ASCII fallback name; control characters (a NUL in a title) cannot go into
        # a header at all (Kestrel refuses them), so they become "_" like the other misfits
        ascii_name = re.sub(r'[\x00-\x1f\x7f?"]', "_", title.encode("ascii", "replace").decode())
        headers = {
            "Accept-Ranges": "bytes",
            "Content-Disposition": (
                f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''"
                + urllib.parse.quote(title)
            ),
        }
        start, end, status = 0, size - 1, 200
        if range_header:
            try:
                parsed = (
                    _storage_range(range_header, size)
                    if storage
                    else parse_range(range_header, size)
                )
            except ValueError:
                refused = 400 if not storage else 416
                self._record_download(source, range_header, 0, 0, refused)
                return _html(refused, "Invalid range")
            if parsed is not None:
                start, end = parsed
                status = 206
                prefix = " " if leading_space else ""
                headers["Content-Range"] = f"{prefix}bytes {start}-{end}/{size}"
        self._record_download(source, range_header, start, end + 1, status)
        headers["Content-Length"] = str(end - start + 1)
        return StreamingResponse(
            _stream(content, start, end + 1), status, headers=headers, media_type=media
        )

    def _record_download(
        self, source: tuple[int, int], range_header: str | None, start: int, end: int, status: int
    ) -> None:
        record = DownloadRecord(source[0], source[1], range_header, start, max(start, end), status)
        with self._state:
            self._downloads.append(record)
