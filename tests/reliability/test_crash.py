"""Scenario 4: SIGKILL of the daemon, then a restart: nothing half-done survives as done.

For every backend, the daemon is killed during sync uploads, during write-back uploads, during
a download and while reads keep the content cache evicting. After a restart with the same
cache directory the mount works, every file on the server is whole and there exactly once,
queued uploads complete, and every file in the content cache is a complete, verified copy (a
partial download is never served as complete).

A kill leaves the mount point stale (ENOTCONN). The restart is an ordinary ``docfs mount`` on
that same mount point: it must clean the stale mount itself (and say so in its log), as a user
restarting a crashed daemon would expect.
"""

from __future__ import annotations

import errno
import hashlib
import os
import subprocess
from pathlib import Path

import pytest

from tests.reliability.conftest import Daemon, Target, run
from tests.reliability.targets import Place
from tests.reliability.util import flat_files, wait_for, write_files


def crash(daemon: Daemon) -> None:
    """SIGKILL; then what the mount point looks like (the restart must clean it up)."""
    daemon.kill()
    with pytest.raises(OSError) as info:
        os.listdir(daemon.path)  # (a stat may still be answered from the kernel's cache)
    assert info.value.errno == errno.ENOTCONN


def restart(daemon: Daemon, *args: str) -> None:
    """Mount again on the stale mount point, with the same cache."""
    before = daemon.log_text().count("stale mount")
    daemon.start(*args)
    assert daemon.log_text().count("stale mount") == before + 1


def no_duplicates(t: Target, place: Place) -> bool:
    names = [n for n, _ in t.entries(place)]
    return len(names) == len(set(names))


def test_kill_during_sync_uploads(target: Target, tmp_path: Path) -> None:
    t = target
    place = t.folder("Batch")
    files = flat_files(40)
    sources = write_files(tmp_path / "src", files)
    daemon = t.daemon().start()
    dest = daemon.at(place)
    os.listdir(dest)
    t.e.latency_ms = 40  # uploads take a while: the kill lands while one is being sent
    copy = subprocess.Popen(["cp", *sources, str(dest)], stderr=subprocess.DEVNULL)
    wait_for(lambda: t.uploads() >= 10)
    crash(daemon)
    assert copy.wait(30) != 0
    t.e.latency_ms = 0
    partial = t.files(place)
    assert partial and all(data == files[name] for name, data in partial.items())

    restart(daemon)
    run("rsync", "-a", f"{tmp_path / 'src'}/", f"{dest}/")
    assert t.files(place) == files
    assert no_duplicates(t, place)
    print(
        f"\ncrash during sync uploads [{t.name}]: {len(partial)} of {len(files)} had arrived, "
        "all whole"
    )


def test_kill_during_write_back_uploads(target: Target, tmp_path: Path) -> None:
    t = target
    place = t.folder("Queue")
    files = flat_files(30)
    sources = write_files(tmp_path / "src", files)
    daemon = t.daemon().start("--write-back", "0", "--transfers", "2")
    dest = daemon.at(place)
    os.listdir(dest)
    t.e.latency_ms = 150
    run("cp", *sources, str(dest))
    wait_for(lambda: t.uploads() >= 5)
    crash(daemon)
    t.e.latency_ms = 0
    before = len(t.entries(place))
    assert 0 < before < len(files)

    restart(daemon)  # a sync mount: the queue left on disk is uploaded all the same
    wait_for(lambda: len(t.entries(place)) >= len(files))

    def settled() -> bool:
        # nothing left in the queue on disk and no request in flight: no upload can follow,
        # so a duplicate would be on the server now
        queued = list(daemon.cache.rglob("queue/*.json"))
        return not queued and all(r.end for r in t.e.requests())

    wait_for(settled)
    assert t.files(place) == files
    assert no_duplicates(t, place)
    assert sorted(os.listdir(dest)) == sorted(files)
    print(
        f"\ncrash during write-back [{t.name}]: {before} uploaded before, the rest exactly "
        "once after"
    )


def test_kill_during_a_download(target: Target) -> None:
    t = target
    data = hashlib.sha256(b"big").digest() * (1_200_000 // 32)
    place = t.folder("Big", {"big.txt": data})
    daemon = t.daemon().start()
    folder = daemon.at(place)
    os.listdir(folder)
    # the answer trickles out, 64 KiB every 0.2 s: the whole file would take almost 4 s
    t.e.plan_fault(method="GET", path=t.adapter.download_path, chunk_delay=0.2)
    reader = subprocess.Popen(
        ["cat", str(folder / "big.txt")], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )

    def part_written() -> bool:
        # allocated blocks, not the size: a ranged download makes its .part sparse, at its
        # full size, before the first byte arrives
        return any(p.stat().st_blocks > 0 for p in daemon.cache.rglob("content/*.part"))

    def sent() -> int:
        return sum(r.bytes_out for r in t.downloads())

    # the kill lands when a part of the file, and only a part, is on disk
    wait_for(part_written)
    killed_with = sent()
    assert killed_with < len(data)
    crash(daemon)
    reader.wait(30)

    restart(daemon)
    assert not list(daemon.cache.rglob("content/*.part"))  # never served after a restart
    assert (folder / "big.txt").read_bytes() == data
    assert len(t.downloads()) == 2  # downloaded again, not trusted
    print(
        f"\ncrash during a download [{t.name}]: killed with {killed_with} of {len(data)} bytes "
        "sent and a partial .part on disk; downloaded again after the restart"
    )


def test_kill_while_the_cache_is_evicting(target: Target) -> None:
    t = target
    files = {f"f{i:02d}.txt": hashlib.sha256(b"%d" % i).digest() * 1000 for i in range(30)}
    place = t.folder("Many", files)
    versions = {hashlib.md5(d).hexdigest() for d in files.values()}
    # 32 KB files through a 200 KiB cache: nearly every read evicts another file
    daemon = t.daemon().start("--cache-size", "200K")
    folder = daemon.at(place)
    script = f"for i in 1 2 3 4 5 6 7 8; do cat '{folder}'/*.txt > /dev/null; done"
    reader = subprocess.Popen(["sh", "-c", script], stderr=subprocess.DEVNULL)
    wait_for(lambda: len(t.downloads()) >= 45)
    crash(daemon)
    reader.wait(30)

    restart(daemon, "--cache-size", "200K")
    for name, data in files.items():
        assert (folder / name).read_bytes() == data
    # the cache is read with the daemon gone: a running one may evict a file as it is read
    daemon.stop()
    cached = [p for p in daemon.cache.rglob("content/*") if p.is_file() and p.suffix != ".part"]
    assert cached
    assert {hashlib.md5(p.read_bytes()).hexdigest() for p in cached} <= versions
    assert sum(p.stat().st_size for p in cached) <= 200 * 1024
    print(
        f"\ncrash during eviction [{t.name}]: {len(cached)} cached files after, each a "
        "verified copy"
    )
