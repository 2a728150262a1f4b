"""The content cache: LRU bound, shared downloads, early reads, restarts, verification."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import trio

from docfs import errors
from docfs.backends.base import Checksum, Entry, Kind, Sink
from docfs.vfs.content import ContentCache, Fetch


def entry(eid: str, data: bytes, version: str = "v1", md5: bool = False) -> Entry:
    checksum = Checksum("md5", hashlib.md5(data).hexdigest()) if md5 else None
    return Entry(eid, eid, Kind.FILE, len(data), None, version, checksum=checksum)


class Source:
    """Serves byte strings in chunks, counting downloads; can be paused between chunks."""

    def __init__(self) -> None:
        self.downloads = 0
        self.gate: trio.Event | None = None
        #: where each download began (after a kept prefix: past it)
        self.starts: list[int] = []
        #: bytes handed to the cache, in all
        self.sent = 0

    def fetch(self, data: bytes, chunk: int = 65536) -> Fetch:
        async def run(sink: Sink, start: int = 0) -> None:
            self.downloads += 1
            self.starts.append(start)
            for i in range(start, len(data), chunk):
                self.sent += len(data[i : i + chunk])
                await sink(data[i : i + chunk])
                if self.gate is not None and i == start:
                    await self.gate.wait()
                await trio.sleep(0)

        return run


async def read_all(cache: ContentCache, e: Entry, fetch: Fetch, nursery: trio.Nursery) -> bytes:
    handle = cache.open(e, fetch, nursery)
    try:
        return await cache.read(handle, 0, (e.size or 0) + 1)
    finally:
        cache.release(handle)


async def test_second_read_is_served_from_disk(tmp_path: Path) -> None:
    cache = ContentCache(tmp_path, 10 << 20, "t")
    src = Source()
    data = b"x" * 300_000
    e = entry("a", data)
    async with trio.open_nursery() as nursery:
        assert await read_all(cache, e, src.fetch(data), nursery) == data
        assert await read_all(cache, e, src.fetch(data), nursery) == data
    assert src.downloads == 1
    # a new cache over the same directory (a restart) still has it
    again = ContentCache(tmp_path, 10 << 20, "t")
    assert again.contains(e)


async def test_new_version_is_a_new_key(tmp_path: Path) -> None:
    cache = ContentCache(tmp_path, 10 << 20, "t")
    src = Source()
    async with trio.open_nursery() as nursery:
        assert await read_all(cache, entry("a", b"old", "v1"), src.fetch(b"old"), nursery) == b"old"
        assert await read_all(cache, entry("a", b"new!", "v2"), src.fetch(b"new!"), nursery) == (
            b"new!"
        )
    assert src.downloads == 2


async def test_concurrent_readers_share_one_download_and_read_early(tmp_path: Path) -> None:
    cache = ContentCache(tmp_path, 10 << 20, "t")
    src = Source()
    src.gate = trio.Event()
    data = bytes(range(256)) * 2048  # 512 KiB
    e = entry("a", data)
    async with trio.open_nursery() as nursery:
        h1 = cache.open(e, src.fetch(data), nursery)
        h2 = cache.open(e, src.fetch(data), nursery)
        # the first chunk has arrived, the rest is held back: a read of it answers now
        with trio.fail_after(5):
            assert await cache.read(h1, 0, 1000) == data[:1000]
        src.gate.set()
        assert await cache.read(h2, 400_000, 1000) == data[400_000:401_000]
        cache.release(h1)
        cache.release(h2)
    assert src.downloads == 1


async def test_cache_stays_within_its_bound(tmp_path: Path) -> None:
    limit = 1 << 20
    cache = ContentCache(tmp_path, limit, "t")
    src = Source()
    async with trio.open_nursery() as nursery:
        for i in range(12):  # 3 MiB in all, 256 KiB each
            data = bytes([i]) * (256 << 10)
            assert await read_all(cache, entry(f"f{i}", data), src.fetch(data), nursery) == data
            on_disk = sum(p.stat().st_size for p in (tmp_path / "content").iterdir())
            assert on_disk <= limit
    # the most recent files are the ones kept
    assert cache.contains(entry("f11", bytes([11]) * (256 << 10)))
    assert not cache.contains(entry("f0", bytes([0]) * (256 << 10)))


async def test_open_files_are_not_evicted(tmp_path: Path) -> None:
    cache = ContentCache(tmp_path, 600_000, "t")
    src = Source()
    big = b"a" * 500_000
    async with trio.open_nursery() as nursery:
        pinned = cache.open(entry("pinned", big), src.fetch(big), nursery)
        await cache.read(pinned, 0, len(big))
        other = b"b" * 500_000
        assert await read_all(cache, entry("other", other), src.fetch(other), nursery) == other
        assert await cache.read(pinned, 0, 10) == b"a" * 10
        cache.release(pinned)


async def test_truncated_download_is_an_error_and_not_cached(tmp_path: Path) -> None:
    cache = ContentCache(tmp_path, 10 << 20, "t")
    src = Source()
    e = entry("a", b"0123456789")
    async with trio.open_nursery() as nursery:
        handle = cache.open(e, src.fetch(b"01234"), nursery)
        with pytest.raises(errors.DocfsError):
            await cache.read(handle, 0, 10)
        cache.release(handle)
    assert not cache.contains(e)
    assert not list((tmp_path / "content").glob("*.part"))


async def test_checksum_mismatch_is_not_cached(tmp_path: Path) -> None:
    cache = ContentCache(tmp_path, 10 << 20, "t")
    src = Source()
    e = entry("a", b"right bytes", md5=True)
    async with trio.open_nursery() as nursery:
        handle = cache.open(e, src.fetch(b"wrong bytes"), nursery)
        await cache.read(handle, 0, 5)  # bytes arrive; the verdict comes at the end
        cache.release(handle)
    assert not cache.contains(e)


async def test_a_big_streamed_file_is_verified_after_its_last_byte(tmp_path: Path) -> None:
    # past INLINE_VERIFY the MD5 is taken by reading the file back in a worker thread once
    # every byte is in; readers got their bytes before, the cache keeps only a verified copy
    cache = ContentCache(tmp_path, 64 << 20, "t")
    data = os.urandom(3 << 20)
    wrong = data[:-1] + bytes([data[-1] ^ 1])
    good, bad = entry("good", data, md5=True), entry("bad", data, md5=True)
    async with trio.open_nursery() as nursery:
        assert await read_all(cache, good, Source().fetch(data), nursery) == data
        handle = cache.open(good, Source().fetch(data), nursery)
        await cache.complete(handle)
        cache.release(handle)
        handle = cache.open(bad, Source().fetch(wrong), nursery)
        assert await cache.read(handle, 0, 10) == wrong[:10]
        with pytest.raises(errors.ProtocolError, match="MD5 mismatch"):
            await cache.complete(handle)
        cache.release(handle)
    assert cache.contains(good) and not cache.contains(bad)
    assert not list((tmp_path / "content").glob("*.part"))


def test_part_files_left_by_a_crash_are_removed(tmp_path: Path) -> None:
    (tmp_path / "content").mkdir()
    (tmp_path / "content" / "abc.part").write_bytes(b"half")
    ContentCache(tmp_path, 1 << 20, "t")
    assert not (tmp_path / "content" / "abc.part").exists()


class RangeSource:
    """Serves byte ranges of one byte string, recording every range asked for."""

    def __init__(self, data: bytes, fail_at: int | None = None) -> None:
        self.data = data
        self.ranges: list[tuple[int, int]] = []
        self.fail_at = fail_at
        #: when set, every range stops after its first 64 KiB until ``go`` is set
        self.go: trio.Event | None = None

    async def fetch(self, sink: Sink, start: int, end: int) -> None:
        self.ranges.append((start, end))
        if self.fail_at is not None and start <= self.fail_at < end:
            raise errors.RemoteUnavailable("planned failure")
        for i in range(start, end, 65536):
            await sink(self.data[i : min(end, i + 65536)])
            await trio.sleep(0)
            if self.go is not None:
                await self.go.wait()

    async def whole(self, sink: Sink, offset: int) -> None:
        raise AssertionError("a ranged file must not be streamed whole")


async def test_ranged_read_fetches_only_the_blocks_it_touches(tmp_path: Path) -> None:
    from docfs.vfs.content import BLOCK_SIZE

    data = os.urandom(BLOCK_SIZE * 5 + 123)
    src = RangeSource(data)
    cache = ContentCache(tmp_path, 100 << 20, "t")
    e = entry("big", data)
    async with trio.open_nursery() as nursery:
        handle = cache.open(e, src.whole, nursery, src.fetch)
        middle = BLOCK_SIZE * 3 + 10
        assert await cache.read(handle, middle, 1000, nursery) == data[middle : middle + 1000]
        assert src.ranges == [(BLOCK_SIZE * 3, BLOCK_SIZE * 4)]
        cache.release(handle)
    assert not cache.contains(e)  # incomplete: not a cache entry


async def test_sequential_ranged_reader_gets_read_ahead_and_a_complete_file(
    tmp_path: Path,
) -> None:
    from docfs.vfs.content import BLOCK_SIZE

    data = os.urandom(BLOCK_SIZE * 6 + 7)
    src = RangeSource(data)
    cache = ContentCache(tmp_path, 100 << 20, "t")
    e = entry("seq", data, md5=True)
    async with trio.open_nursery() as nursery:
        handle = cache.open(e, src.whole, nursery, src.fetch)
        out = bytearray()
        step = 1 << 20
        while len(out) < len(data):
            chunk = await cache.read(handle, len(out), step, nursery)
            if len(out) == BLOCK_SIZE:
                # the sequential reader had block 1 requested before it asked for it
                await trio.sleep(0.01)
                assert (BLOCK_SIZE, 2 * BLOCK_SIZE) in src.ranges
            out.extend(chunk)
        assert bytes(out) == data
        cache.release(handle)
    assert len(src.ranges) == 7 and len(set(src.ranges)) == 7  # each block exactly once
    assert cache.contains(e)  # verified against its MD5 and kept


async def test_a_ranged_read_waits_for_its_bytes_not_the_whole_block(tmp_path: Path) -> None:
    from docfs.vfs.content import BLOCK_SIZE

    data = os.urandom(BLOCK_SIZE * 2)
    src = RangeSource(data)
    src.go = trio.Event()  # each block stalls after its first 64 KiB
    cache = ContentCache(tmp_path, 100 << 20, "t")
    e = entry("slow", data)
    async with trio.open_nursery() as nursery:
        handle = cache.open(e, src.whole, nursery, src.fetch)
        with trio.fail_after(5):
            assert await cache.read(handle, 0, 4096, nursery) == data[:4096]
            assert await cache.read(handle, 4096, 60000, nursery) == data[4096:64096]

        async def rest() -> bytes:
            return await cache.read(handle, 65536, 1000, nursery)

        with trio.move_on_after(0.2) as waited:
            await rest()  # beyond what arrived: it must wait
        assert waited.cancelled_caught
        src.go.set()
        with trio.fail_after(5):
            assert await rest() == data[65536:66536]
            whole = await cache.read(handle, 0, len(data), nursery)
        assert whole == data
        cache.release(handle)


async def test_failed_block_is_an_error_and_not_cached(tmp_path: Path) -> None:
    from docfs.vfs.content import BLOCK_SIZE

    data = os.urandom(BLOCK_SIZE * 2)
    src = RangeSource(data, fail_at=BLOCK_SIZE + 5)
    cache = ContentCache(tmp_path, 100 << 20, "t")
    e = entry("bad", data)
    async with trio.open_nursery() as nursery:
        handle = cache.open(e, src.whole, nursery, src.fetch)
        assert await cache.read(handle, 0, 10, nursery) == data[:10]
        with pytest.raises(errors.RemoteUnavailable):
            await cache.read(handle, BLOCK_SIZE, 10, nursery)
        cache.release(handle)
    assert not cache.contains(e)
    assert not list((tmp_path / "content").glob("*.part"))


# ---- downloads follow reads (issue 25) -------------------------------------------------------


def partials(root: Path) -> list[Path]:
    return list((root / "content").glob("*.partial"))


async def test_open_and_close_without_a_read_ask_for_nothing(tmp_path: Path) -> None:
    cache = ContentCache(tmp_path, 100 << 20, "t")
    src, ranged = Source(), RangeSource(b"r" * (1 << 20))
    data = b"s" * (1 << 20)
    async with trio.open_nursery() as nursery:
        cache.release(cache.open(entry("s", data), src.fetch(data), nursery))
        cache.release(cache.open(entry("r", ranged.data), ranged.whole, nursery, ranged.fetch))
        await trio.sleep(0.05)  # a download started by the open would have begun by now
    assert src.downloads == 0 and ranged.ranges == []


async def test_last_close_stops_a_stream_and_keeps_its_prefix(tmp_path: Path) -> None:
    cache = ContentCache(tmp_path, 100 << 20, "t")
    src = Source()
    data = os.urandom(8 << 20)
    e = entry("big", data, md5=True)
    async with trio.open_nursery() as nursery:
        handle = cache.open(e, src.fetch(data), nursery)
        assert await cache.read(handle, 0, 4096) == data[:4096]
        download = handle.download
        assert download is not None
        cache.release(handle)
        with trio.fail_after(5):
            await download.ended.wait()
        # the stream ran a little ahead of the 4 KiB asked for, then stopped at the close
        assert src.sent <= 512 << 10
        [kept] = partials(tmp_path)
        prefix = kept.stat().st_size
        assert 4096 <= prefix <= src.sent
        assert kept.read_bytes() == data[:prefix]
        # the same sniff again costs nothing, after a restart too
        again = ContentCache(tmp_path, 100 << 20, "t")
        handle = again.open(e, src.fetch(data), nursery)
        assert await again.read(handle, 0, 4096) == data[:4096]
        again.release(handle)
        assert src.downloads == 1
        # a whole read continues after the prefix and ends verified and cached
        assert await read_all(again, e, src.fetch(data), nursery) == data
    assert src.starts == [0, prefix]
    assert again.contains(e) and not partials(tmp_path)


async def test_a_continued_download_is_verified_whole(tmp_path: Path) -> None:
    cache = ContentCache(tmp_path, 100 << 20, "t")
    data = os.urandom(4 << 20)
    changed = data[:-1] + bytes([data[-1] ^ 1])  # what the server sends after the prefix
    e = entry("f", data, md5=True)
    async with trio.open_nursery() as nursery:
        handle = cache.open(e, Source().fetch(data), nursery)
        await cache.read(handle, 0, 4096)
        download = handle.download
        assert download is not None
        cache.release(handle)
        await download.ended.wait()
        assert partials(tmp_path)
        handle = cache.open(e, Source().fetch(changed), nursery)
        with pytest.raises(errors.ProtocolError, match="MD5 mismatch"):
            await cache.complete(handle)
        cache.release(handle)
    assert not cache.contains(e)
    assert not list((tmp_path / "content").iterdir())


async def test_a_small_read_at_the_start_of_a_ranged_file_fetches_little(tmp_path: Path) -> None:
    from docfs.vfs.blocks import BLOCK_SIZE, FIRST_FETCH

    data = os.urandom(BLOCK_SIZE * 3)
    src = RangeSource(data)
    cache = ContentCache(tmp_path, 100 << 20, "t")
    e = entry("r", data, md5=True)
    async with trio.open_nursery() as nursery:
        handle = cache.open(e, src.whole, nursery, src.fetch)
        assert await cache.read(handle, 0, 4096, nursery) == data[:4096]
        assert await cache.read(handle, 4096, 8192, nursery) == data[4096:12288]
        assert src.ranges == [(0, FIRST_FETCH)]
        blocks = handle.blocks
        assert blocks is not None
        with trio.fail_after(5):
            while blocks.pending:  # the first fetch ends (a close now would stop it)
                await trio.sleep(0.01)
        cache.release(handle)
        # kept: read again without a request, then the rest of the block from where it stopped
        assert [p.stat().st_size for p in partials(tmp_path)] == [FIRST_FETCH]
        handle = cache.open(e, src.whole, nursery, src.fetch)
        assert await cache.read(handle, 0, 4096, nursery) == data[:4096]
        assert src.ranges == [(0, FIRST_FETCH)]
        step = 128 << 10
        out = bytearray()
        while len(out) < len(data):
            out += await cache.read(handle, len(out), step, nursery)
        assert bytes(out) == data
        cache.release(handle)
    assert (FIRST_FETCH, BLOCK_SIZE) in src.ranges
    assert sum(end - start for start, end in src.ranges) == len(data)  # no byte twice
    assert cache.contains(e) and not partials(tmp_path)


async def test_last_close_stops_ranged_fetches_in_flight(tmp_path: Path) -> None:
    from docfs.vfs.content import BLOCK_SIZE

    data = os.urandom(BLOCK_SIZE * 6)
    src = RangeSource(data)
    src.go = trio.Event()  # every range stalls after its first 64 KiB
    cache = ContentCache(tmp_path, 100 << 20, "t")
    e = entry("r", data)
    async with trio.open_nursery() as nursery:
        handle = cache.open(e, src.whole, nursery, src.fetch)
        far = BLOCK_SIZE * 2
        await cache.read(handle, far, 65536, nursery)  # not sequential: its block only
        with trio.move_on_after(0.1):
            # sequential: the blocks after it start too, and stall
            await cache.read(handle, far + 65536, 65536, nursery)
        asked = list(src.ranges)
        assert len(asked) > 3
        blocks = handle.blocks
        assert blocks is not None
        cache.release(handle)
        with trio.fail_after(5):
            while blocks.pending:  # cancelled where they were
                await trio.sleep(0.01)
        src.go.set()
        await trio.sleep(0.05)
        assert blocks.received == 65536 * len(asked)  # nothing more arrived
        # the bytes that did are kept for the mount: read again, they cost nothing
        handle = cache.open(e, src.whole, nursery, src.fetch)
        assert await cache.read(handle, far, 65536, nursery) == data[far : far + 65536]
        assert src.ranges == asked
        cache.release(handle)
    assert not partials(tmp_path)  # not a run of bytes from the start: nothing on disk


async def test_a_close_lets_a_small_first_fetch_finish_and_keeps_it(tmp_path: Path) -> None:
    from docfs.vfs.blocks import BLOCK_SIZE, FIRST_FETCH

    data = os.urandom(BLOCK_SIZE * 6)
    src = RangeSource(data)
    src.go = trio.Event()  # the first fetch stalls after its first 64 KiB
    cache = ContentCache(tmp_path, 100 << 20, "t")
    e = entry("r", data)
    async with trio.open_nursery() as nursery:
        handle = cache.open(e, src.whole, nursery, src.fetch)
        assert await cache.read(handle, 0, 4096, nursery) == data[:4096]
        blocks = handle.blocks
        assert blocks is not None
        cache.release(handle)  # with the fetch in flight: little left of it, so it goes on
        src.go.set()
        with trio.fail_after(5):
            await blocks.ended.wait()
    [kept] = partials(tmp_path)
    assert kept.read_bytes() == data[:FIRST_FETCH]
    assert src.ranges == [(0, FIRST_FETCH)]


def test_room_to_spare_does_not_walk_the_cache(tmp_path: Path) -> None:
    """Issue 24 (B5): every adopted upload makes room first; with room to spare that must not
    go through every cached file (it did: ~0.1 ms per small file with 5,000 in the cache)."""
    import collections

    walks: list[int] = []

    class Counting(collections.OrderedDict[str, int]):
        def __iter__(self) -> Iterator[str]:
            walks.append(1)
            return super().__iter__()

    cache = ContentCache(tmp_path, 10 << 20, "t")
    src = tmp_path / "uploaded"
    src.write_bytes(b"x" * 4096)
    cache._files = Counting()
    for i in range(50):
        cache.adopt(entry(f"e{i}", b"x" * 4096), src)
    assert len(cache._files) == 50
    assert walks == []
    cache.limit = 4096 * 10  # now the least recently used must go: that walk is needed
    cache.adopt(entry("last", b"x" * 4096), src)
    assert len(cache._files) == 10 and walks


def test_an_adopted_upload_replaces_a_leftover_file_of_its_name(tmp_path: Path) -> None:
    """Adopting links the upload straight to its cache name (issue 24, B5); a file already
    there (left by an earlier run, unknown to the index) is replaced, not kept."""
    cache = ContentCache(tmp_path, 10 << 20, "t")
    new = entry("e1", b"new bytes")
    cache.path(cache.key(new)).write_bytes(b"stale")
    src = tmp_path / "uploaded"
    src.write_bytes(b"new bytes")
    cache.adopt(new, src)
    assert cache.path(cache.key(new)).read_bytes() == b"new bytes"
    assert os.stat(src).st_nlink == 2  # a link, not a copy
    assert not list(cache.dir.glob("*.part"))
