"""Issue 22 without the kernel: the vfs offline (no request sent, stale listings served, the
probe brings it back), and the content cache's age limit and held (pinned) files."""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

import pytest
import trio

from docfs import errors
from docfs.backends.base import Entry, Kind
from docfs.emulators.base import EmulatorServer
from docfs.emulators.dspace6 import DSpace6Emulator
from docfs.vfs.content import ContentCache
from docfs.vfs.filesystem import Filesystem, Options
from docfs.vfs.inodes import ROOT_INODE
from docfs.vfs.offline import QUICK
from tests.conftest import ADMIN, dspace6_backend


def _sent(fs: Filesystem) -> int:
    return sum(s.requests for s in fs.backend.traffic().endpoints.values())


async def test_offline_reads_fail_fast_listings_stay_and_recovery_is_immediate(
    tmp_path: Path,
) -> None:
    e = DSpace6Emulator()
    e.add_user(*ADMIN, admin=True)
    item = e.add_item(e.add_collection("Data", e.add_community("Lab")), "Run")
    e.add_bitstream(item, "cached.txt", b"cached")
    e.add_bitstream(item, "uncached.txt", b"uncached")
    server = EmulatorServer(e)
    server.start()
    try:
        backend = dspace6_backend(server)
        await backend.connect()
        content = ContentCache(tmp_path / "cache", 1 << 30, "t")
        clock = [0.0]
        fs = Filesystem(
            backend, await backend.root(), content, Options(dir_cache_time=1.0),
            clock=lambda: clock[0],
        )  # fmt: skip
        # longer than the test: what ends the outage below is the read's own quick probe
        fs.offline.probe_every = 3600
        async with trio.open_nursery() as nursery:
            fs.start(nursery)
            ino = ROOT_INODE
            for name in ("Lab", "Data", "Run"):
                ino = (await fs.lookup(ino, name)).ino
            run = fs.inodes.get(ino)
            cached = (await fs.lookup(run.ino, "cached.txt")).ino
            uncached = (await fs.lookup(run.ino, "uncached.txt")).ino
            fh, _ = await fs.open(cached, write=False)
            assert await fs.read(fh, 0, 100) == b"cached"
            await fs.release(fh)

            server.stop()  # connection refused from now on
            clock[0] += 10  # every listing is stale
            names = ["cached.txt", "uncached.txt"]
            assert sorted(await fs.ensure_listed(run)) == names  # the retries, then offline
            assert fs.offline.offline
            clock[0] += 10
            sent = _sent(fs)
            assert sorted(await fs.ensure_listed(run)) == names
            assert _sent(fs) == sent  # a stale listing offline asks nobody
            fh, _ = await fs.open(cached, write=False)
            assert await fs.read(fh, 0, 100) == b"cached"
            await fs.release(fh)
            # worse than refused: a server that takes the connection and never answers (each
            # try would wait for the request timeout); an uncached read still fails fast
            hang = socket.socket()
            hang.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            hang.bind(("127.0.0.1", server.port))
            hang.listen(16)
            try:
                fh, _ = await fs.open(uncached, write=False)
                started = time.monotonic()
                with pytest.raises(errors.RemoteUnavailable):
                    await fs.read(fh, 0, 100)
                assert time.monotonic() - started < 1.0
                await fs.release(fh)
            finally:
                hang.close()  # its waiting connections are reset: the hanging probe ends
            report = fs.offline.report()
            assert report is not None and report["failed"] >= 1

            server = EmulatorServer(e, port=server.port)
            server.start()
            await trio.sleep(QUICK)  # (probes are at most this often)
            fh, _ = await fs.open(uncached, write=False)
            assert await fs.read(fh, 0, 100) == b"uncached"  # no remount, no waiting
            await fs.release(fh)
            assert not fs.offline.offline
            nursery.cancel_scope.cancel()
        await backend.aclose()
    finally:
        server.stop()


def _entry(eid: str, size: int) -> Entry:
    return Entry(eid, eid, Kind.FILE, size, None, "v1")


def test_max_age_evicts_unread_content_but_never_held_files(tmp_path: Path) -> None:
    now = [1000.0]
    cache = ContentCache(tmp_path, 1 << 30, "t", max_age=60, clock=lambda: now[0])
    src = tmp_path / "src"
    src.write_bytes(os.urandom(100))
    old, pinned, young = _entry("old", 100), _entry("pinned", 100), _entry("young", 100)
    cache.adopt(old, src)
    cache.adopt(pinned, src)
    assert cache.hold(pinned, "/a/pinned")
    now[0] += 50
    cache.adopt(young, src)
    now[0] += 20  # old and pinned unread for 70 s, young for 20 s
    assert cache.expire() == 1
    assert not cache.contains(old)
    assert cache.contains(pinned) and cache.contains(young)
    # held files do not count against the LRU limit, and survive a restart held
    assert cache.used == 100
    again = ContentCache(tmp_path, 1, "t")
    assert again.is_held(pinned) and again.contains(pinned) and not again.contains(young)
