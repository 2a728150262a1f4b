"""The vfs checks bytes against the typed ``Entry.checksum`` (any hashlib algorithm)."""

from __future__ import annotations

import hashlib
import os
import types
from pathlib import Path

import pytest
import trio

from docfs import errors
from docfs.backends.base import Checksum, Entry, Kind, Sink
from docfs.vfs import checksums
from docfs.vfs.content import BLOCK_SIZE, ContentCache
from docfs.vfs.staging import LostFound, Staging
from docfs.vfs.writeback import WriteBack


def file_entry(eid: str, data: bytes, checksum: Checksum | None, **meta: str) -> Entry:
    return Entry(eid, eid, Kind.FILE, len(data), None, "v1", meta=meta, checksum=checksum)


def sha256(data: bytes) -> Checksum:
    return Checksum("sha256", hashlib.sha256(data).hexdigest())


def test_expected_prefers_the_typed_checksum_and_normalises_it() -> None:
    typed = file_entry("a", b"x", Checksum("SHA256", "ABC"), **{"checksum.md5": "def"})
    assert checksums.expected(typed) == Checksum("sha256", "abc")
    # the visible xattr key is only metadata: the vfs checks the typed checksum alone
    assert checksums.expected(file_entry("b", b"x", None, **{"checksum.md5": "DEF"})) is None
    assert checksums.expected(file_entry("c", b"x", None)) is None
    # an algorithm this Python cannot compute is no checksum at all (the size still counts)
    assert checksums.expected(file_entry("d", b"x", Checksum("nohash", "00"))) is None


def stream(data: bytes):  # type: ignore[no-untyped-def]
    async def fetch(sink: Sink, start: int = 0) -> None:
        for i in range(start, len(data), 65536):
            await sink(data[i : i + 65536])

    return fetch


def ranges(data: bytes):  # type: ignore[no-untyped-def]
    async def fetch(sink: Sink, start: int, end: int) -> None:
        await sink(data[start:end])

    return fetch


@pytest.mark.parametrize("size", [1000, 3 << 20])  # verified inline, and in a worker thread
async def test_a_streamed_download_is_checked_against_a_sha256(tmp_path: Path, size: int) -> None:
    cache = ContentCache(tmp_path, 64 << 20, "t")
    data = os.urandom(size)
    wrong = data[:-1] + bytes([data[-1] ^ 1])
    good, bad = file_entry("good", data, sha256(data)), file_entry("bad", data, sha256(data))
    async with trio.open_nursery() as nursery:
        handle = cache.open(good, stream(data), nursery)
        assert await cache.complete(handle) is not None
        cache.release(handle)
        handle = cache.open(bad, stream(wrong), nursery)
        with pytest.raises(errors.ProtocolError, match="SHA256 mismatch"):
            await cache.complete(handle)
        cache.release(handle)
    assert cache.contains(good) and not cache.contains(bad)


async def test_a_block_filled_download_is_checked_against_a_sha256(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cache = ContentCache(tmp_path, 64 << 20, "t")
    data = os.urandom(BLOCK_SIZE + 100)
    wrong = data[:-1] + bytes([data[-1] ^ 1])
    good, bad = file_entry("good", data, sha256(data)), file_entry("bad", data, sha256(data))

    async def whole(sink: Sink, start: int = 0) -> None:
        raise AssertionError("a ranged file is not streamed whole")

    async with trio.open_nursery() as nursery:
        handle = cache.open(good, whole, nursery, ranges(data))
        await cache.complete(handle, nursery)
        cache.release(handle)
        handle = cache.open(bad, whole, nursery, ranges(wrong))
        with pytest.raises(errors.DocfsError):
            await cache.complete(handle, nursery)
        cache.release(handle)
    assert cache.contains(good) and not cache.contains(bad)
    assert "download of 'bad': SHA256 mismatch" in caplog.text


async def test_a_resumed_upload_is_recognised_by_any_algorithm(tmp_path: Path) -> None:
    backend = types.SimpleNamespace(on_recovery=lambda _: None)
    wb = WriteBack(tmp_path, backend, LostFound(tmp_path), delay=3600)  # type: ignore[arg-type]
    staged = Staging(tmp_path).new()
    os.write(staged.fd, b"the bytes")
    parent = Entry("p", "Item", Kind.DIR, None, None, "")
    job = await wb.enqueue(staged, parent, "f", None, "/Item/f", None, None)
    same = file_entry("f1", b"the bytes", sha256(b"the bytes"))
    other = file_entry("f2", b"the bytes", sha256(b"the byteZ"))
    assert await wb._same_content(same, job)
    assert not await wb._same_content(other, job)
    md5 = Checksum("md5", hashlib.md5(b"the bytes").hexdigest())
    assert await wb._same_content(file_entry("f3", b"the bytes", md5), job)
