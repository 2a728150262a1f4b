"""The one multipart/form-data encoder (docfs/backends/_multipart.py): its bytes, its filename
rule, and its streaming through the HTTP layer (no temp copy, exact length, retries)."""

from __future__ import annotations

import email.parser
import email.policy
import os
import tempfile
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from docfs import errors
from docfs.backends._http import HttpClient, Limits, RetryPolicy
from docfs.backends._multipart import PIECE, Field, FilePart, Multipart, quote_filename
from docfs.emulators.base import Emulator, EmulatorServer


async def read_all(body: Multipart) -> bytes:
    reader = body.open()
    try:
        return b"".join([piece async for piece in reader])
    finally:
        reader.close()


def parse(body: bytes, content_type: str) -> list[EmailMessage]:
    """The body parsed back by the standard library's MIME parser (the reference)."""
    text = f"Content-Type: {content_type}\r\n\r\n".encode() + body
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(text)
    assert isinstance(message, EmailMessage)
    assert message.is_multipart() and not message.defects
    return [part for part in message.iter_parts() if isinstance(part, EmailMessage)]


def reference(boundary: str, parts: list[tuple[str, bytes]]) -> bytes:
    """RFC 7578's layout written out by hand: each part's header block and content."""
    out = b""
    for head, content in parts:
        out += f"--{boundary}\r\n{head}\r\n\r\n".encode() + content + b"\r\n"
    return out + f"--{boundary}--\r\n".encode()


async def test_bytes_equal_the_reference_layout(tmp_path: Path) -> None:
    src = tmp_path / "staged"
    src.write_bytes(b"file content\r\n--not-a-boundary\r\n")
    body = Multipart(
        [
            FilePart("file", src, "report.pdf"),
            Field("properties", '{"name": "r"}', "application/json"),
            Field("plain", "x"),
        ],
        boundary="B0UNDARY",
    )
    expected = reference(
        "B0UNDARY",
        [
            (
                'Content-Disposition: form-data; name="file"; filename="report.pdf"\r\n'
                "Content-Type: application/octet-stream",
                src.read_bytes(),
            ),
            (
                'Content-Disposition: form-data; name="properties"\r\n'
                "Content-Type: application/json",
                b'{"name": "r"}',
            ),
            ('Content-Disposition: form-data; name="plain"', b"x"),
        ],
    )
    data = await read_all(body)
    assert data == expected
    assert body.length == len(expected)
    assert body.content_type == "multipart/form-data; boundary=B0UNDARY"


@pytest.mark.parametrize(
    "name",
    ['q"uote.txt', "back\\slash.txt", "trailing\\", "résumé 日本.txt", '\\"both"\\.bin'],
)
async def test_filenames_come_back_as_sent(tmp_path: Path, name: str) -> None:
    """A quoted-string parser (Spring's ContentDisposition, the stdlib's) reads the name
    exactly; UTF-8 goes as is (RFC 7578 section 4.2)."""
    src = tmp_path / "staged"
    src.write_bytes(b"abc")
    body = Multipart([Field("a", "1"), FilePart("file", src, name)])
    parts = parse(await read_all(body), body.content_type)
    assert [p.get_param("name", header="content-disposition") for p in parts] == ["a", "file"]
    assert parts[1].get_filename() == name
    assert parts[1].get_payload(decode=True) == b"abc"


async def test_line_breaks_keep_the_header_whole(tmp_path: Path) -> None:
    src = tmp_path / "staged"
    src.write_bytes(b"abc")
    assert quote_filename("a\r\nb") == "a%0D%0Ab"
    body = Multipart([FilePart("file", src, "a\r\nb")])
    data = await read_all(body)
    (part,) = parse(data, body.content_type)
    assert part.get_filename() == "a%0D%0Ab"
    assert part.get_payload(decode=True) == b"abc"


async def test_filename_star_for_a_server_that_wants_it(tmp_path: Path) -> None:
    src = tmp_path / "staged"
    src.write_bytes(b"")
    body = Multipart([FilePart("file", src, 'é"', filename_star=True)], boundary="b")
    data = await read_all(body)
    assert b'filename="\xc3\xa9\\""; filename*=UTF-8\'\'%C3%A9%22\r\n' in data
    (part,) = parse(data, body.content_type)
    assert part.get_payload(decode=True) == b""


async def test_a_large_file_goes_in_pieces_and_again_from_the_start(tmp_path: Path) -> None:
    content = os.urandom(2 * PIECE + 12345)
    src = tmp_path / "staged"
    src.write_bytes(content)
    body = Multipart([FilePart("file", src, "big.bin")])
    reader = body.open()
    pieces = [piece async for piece in reader]
    reader.close()
    assert max(len(p) for p in pieces) <= PIECE
    assert sum(len(p) for p in pieces) == body.length
    (part,) = parse(b"".join(pieces), body.content_type)
    assert part.get_payload(decode=True) == content
    # a second attempt reads the same bytes from the start
    assert await read_all(body) == b"".join(pieces)


async def test_a_file_that_changes_size_fails_the_attempt(tmp_path: Path) -> None:
    src = tmp_path / "staged"
    src.write_bytes(b"abc")
    body = Multipart([FilePart("file", src, "f")])
    src.write_bytes(b"abcd")
    with pytest.raises(errors.Conflict):
        await read_all(body)


class Catcher(Emulator):
    """Keeps every multipart body it is sent; the first answer is a 429 (retried even for a
    POST), and while a body arrives it looks whether anything appeared beside the source."""

    name = "catcher"

    def __init__(self, watch: Path) -> None:
        self.watch = watch
        self.bodies: list[tuple[str, bytes]] = []
        self.seen: list[list[str]] = []
        super().__init__()

    def routes(self) -> list[BaseRoute]:
        return [Route("/up", self.up, methods=["POST"])]

    async def up(self, request: Request) -> Response:
        self.seen.append(sorted(os.listdir(self.watch)))
        self.bodies.append((request.headers["content-type"], await request.body()))
        if request.headers.get("transfer-encoding"):
            return PlainTextResponse("chunked", status_code=400)
        status = 429 if len(self.bodies) == 1 else 200
        return PlainTextResponse(request.headers["content-length"], status_code=status)


@pytest.fixture
def catcher(tmp_path: Path) -> Iterator[EmulatorServer]:
    (tmp_path / "src").mkdir()
    with EmulatorServer(Catcher(tmp_path / "src")) as srv:
        yield srv


async def test_sent_streamed_with_its_length_retried_whole_and_never_copied(
    catcher: EmulatorServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_temp_files(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the encoder made a temporary file")

    for name in ("mkstemp", "NamedTemporaryFile", "TemporaryFile", "SpooledTemporaryFile"):
        monkeypatch.setattr(tempfile, name, no_temp_files)
    content = os.urandom(PIECE + 999)
    src = tmp_path / "src" / "staged"
    src.write_bytes(content)
    body = Multipart([Field("a", "1"), FilePart("file", src, 'na"me.bin')])
    http = HttpClient(
        catcher.url, limits=Limits(), retry=RetryPolicy(attempts=3, base=0.01, cap=0.02)
    )
    try:
        response = await http.request(
            "POST",
            "/up",
            endpoint="up",
            body=body,
            headers={"Content-Type": body.content_type},
            idempotent=False,
        )
    finally:
        await http.aclose()
    emulator = catcher.emulator
    assert isinstance(emulator, Catcher)
    assert response.text == str(body.length)
    assert len(emulator.bodies) == 2  # the 429, then the retry
    expected = await read_all(body)
    assert [b for _, b in emulator.bodies] == [expected, expected]
    assert emulator.seen == [["staged"], ["staged"]]
    parts = parse(expected, emulator.bodies[1][0])
    assert parts[1].get_filename() == 'na"me.bin'
    assert parts[1].get_payload(decode=True) == content
