"""A file part that carries one slice of a file (a chunk of a DocSpace chunked upload),
streamed from disk by the shared encoder instead of read into memory first."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from docfs import errors
from docfs.backends._multipart import PIECE, SMALL_FILE, FilePart, Multipart

HEAD = (
    b'--B\r\nContent-Disposition: form-data; name="file"; filename="blob"\r\n'
    b"Content-Type: application/octet-stream\r\n\r\n"
)
TAIL = b"\r\n--B--\r\n"


async def read_all(body: Multipart) -> bytes:
    reader = body.open()
    try:
        return b"".join([piece async for piece in reader])
    finally:
        reader.close()


@pytest.mark.parametrize(
    ("offset", "length"),
    [(0, 10), (7, 5), (0, 0), (SMALL_FILE - 3, PIECE + 11)],
    ids=["head", "middle", "empty", "larger-than-a-piece"],
)
async def test_a_slice_sends_exactly_its_bytes(tmp_path: Path, offset: int, length: int) -> None:
    data = random.Random(3).randbytes(SMALL_FILE + 2 * PIECE)
    src = tmp_path / "staged"
    src.write_bytes(data)
    body = Multipart([FilePart("file", src, "blob", offset=offset, length=length)], "B")
    expected = HEAD + data[offset : offset + length] + TAIL
    assert body.length == len(expected)
    assert await read_all(body) == expected
    assert await read_all(body) == expected  # a retry reads the same slice again


async def test_a_slice_past_the_end_of_the_file_is_refused(tmp_path: Path) -> None:
    src = tmp_path / "staged"
    src.write_bytes(b"0123456789")
    body = Multipart([FilePart("file", src, "blob", offset=8, length=5)], "B")
    with pytest.raises(errors.Conflict):
        await read_all(body)


async def test_a_slice_does_not_mind_the_rest_of_the_file_growing(tmp_path: Path) -> None:
    # only the whole-file part insists on the size it had when the body was made
    src = tmp_path / "staged"
    src.write_bytes(b"0123456789")
    body = Multipart([FilePart("file", src, "blob", offset=2, length=4)], "B")
    with src.open("ab") as f:
        f.write(b"more")
    assert await read_all(body) == HEAD + b"2345" + TAIL
