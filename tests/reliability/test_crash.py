"""Scenario 4: SIGKILL of the daemon, then a restart: nothing half-done survives as done.

The daemon is killed during sync uploads, during write-back uploads, during a download and
while reads keep the content cache evicting. After a restart with the same cache directory the
mount works, every file on the server is whole and there exactly once, queued uploads complete,
and every file in the content cache is a complete, verified copy (a partial download is never
served as complete).

A kill leaves the mount point stale (ENOTCONN). ``docfs mount`` cannot reuse such a mount
point yet (``cli.py`` stats it and fails; the fix is listed in the report of issue 9), so these
tests unmount the stale mount point before the restart, as a user would with
``fusermount3 -u -z``.
"""

from __future__ import annotations

import errno
import hashlib
import os
import subprocess
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from docfs.emulators.dspace6 import DSpace6Emulator
from tests.reliability.conftest import Daemon, run
from tests.reliability.util import make_tree


def wait_for(condition: Callable[[], bool], limit: float = 60.0) -> None:
    """Poll until ``condition`` holds; the limit only stops a hang, it measures nothing."""
    deadline = time.monotonic() + limit
    while not condition():
        assert time.monotonic() < deadline, "the condition never came true"
        time.sleep(0.02)


def crash(daemon: Daemon) -> None:
    """SIGKILL; then what the mount point looks like, and the cleanup a user does."""
    daemon.kill()
    with pytest.raises(OSError) as info:
        os.listdir(daemon.path)  # (a stat may still be answered from the kernel's cache)
    assert info.value.errno == errno.ENOTCONN
    subprocess.run(["fusermount3", "-u", "-z", str(daemon.path)], check=True)


def server_files(e: DSpace6Emulator, item: str) -> dict[str, bytes]:
    return {b["name"]: e.bitstream_data(b["uuid"]) for b in e.bitstreams_of(item)}


def no_duplicates(e: DSpace6Emulator, item: str) -> bool:
    return max(Counter(b["name"] for b in e.bitstreams_of(item)).values(), default=1) == 1


def lab_item(e: DSpace6Emulator, title: str) -> str:
    return e.add_item(e.add_collection("Data", e.add_community("Lab")), title)


def test_kill_during_sync_uploads(
    daemon: Daemon, emulator: DSpace6Emulator, tmp_path: Path
) -> None:
    e = emulator
    item = lab_item(e, "Batch")
    files = {k.split("/")[1]: v for k, v in make_tree(tmp_path / "src", 1, 40).items()}
    src = tmp_path / "src" / "set-0"
    daemon.start()
    dest = daemon.path / "Lab" / "Data" / "Batch"
    os.listdir(dest)
    e.latency_ms = 40  # uploads take a while: the kill lands while one is being sent
    copy = subprocess.Popen(
        ["cp", *sorted(str(p) for p in src.iterdir()), str(dest)], stderr=subprocess.DEVNULL
    )
    wait_for(lambda: len(e.requests("POST", r"/bitstreams$")) >= 10)
    crash(daemon)
    assert copy.wait(30) != 0
    e.latency_ms = 0
    partial = server_files(e, item)
    assert partial and all(data == files[name] for name, data in partial.items())

    daemon.start()
    run("rsync", "-a", f"{src}/", f"{dest}/")
    assert server_files(e, item) == files
    assert no_duplicates(e, item)
    print(f"\ncrash during sync uploads: {len(partial)} of {len(files)} had arrived, all whole")


def test_kill_during_write_back_uploads(
    daemon: Daemon, emulator: DSpace6Emulator, tmp_path: Path
) -> None:
    e = emulator
    item = lab_item(e, "Queue")
    files = {k.split("/")[1]: v for k, v in make_tree(tmp_path / "src", 1, 30).items()}
    daemon.start("--write-back", "0", "--transfers", "2")
    dest = daemon.path / "Lab" / "Data" / "Queue"
    os.listdir(dest)
    e.latency_ms = 150
    run("cp", *sorted(str(p) for p in (tmp_path / "src" / "set-0").iterdir()), str(dest))
    wait_for(lambda: len(e.requests("POST", r"/bitstreams$")) >= 5)
    crash(daemon)
    e.latency_ms = 0
    before = len(e.bitstreams_of(item))
    assert 0 < before < len(files)

    daemon.start()  # a sync mount: the queue left on disk is uploaded all the same
    wait_for(lambda: len(e.bitstreams_of(item)) >= len(files))
    time.sleep(0.3)  # a duplicate would arrive now
    assert server_files(e, item) == files
    assert no_duplicates(e, item)
    assert sorted(os.listdir(dest)) == sorted(files)
    print(f"\ncrash during write-back: {before} uploaded before, the rest exactly once after")


def test_kill_during_a_download(daemon: Daemon, emulator: DSpace6Emulator) -> None:
    e = emulator
    item = lab_item(e, "Big")
    data = hashlib.sha256(b"big").digest() * (1_200_000 // 32)
    e.add_bitstream(item, "big.bin", data)
    daemon.start()
    folder = daemon.path / "Lab" / "Data" / "Big"
    os.listdir(folder)
    e.plan_fault(method="GET", path="/retrieve$", chunk_delay=0.1)
    reader = subprocess.Popen(["cat", str(folder / "big.bin")], stdout=subprocess.DEVNULL)

    def part_written() -> bool:
        return any(p.stat().st_size > 0 for p in daemon.cache.rglob("content/*.part"))

    wait_for(part_written)
    crash(daemon)
    reader.wait(30)

    daemon.start()
    assert not list(daemon.cache.rglob("content/*.part"))  # never served after a restart
    assert (folder / "big.bin").read_bytes() == data
    assert len(e.requests("GET", "/retrieve$")) == 2  # downloaded again, not trusted


def test_kill_while_the_cache_is_evicting(
    daemon: Daemon, emulator: DSpace6Emulator, tmp_path: Path
) -> None:
    e = emulator
    item = lab_item(e, "Many")
    files = {f"f{i:02d}.bin": hashlib.sha256(b"%d" % i).digest() * 1000 for i in range(30)}
    for name, data in files.items():
        e.add_bitstream(item, name, data)
    versions = {hashlib.md5(d).hexdigest() for d in files.values()}
    # 32 KB files through a 200 KiB cache: nearly every read evicts another file
    daemon.start("--cache-size", "200K")
    folder = daemon.path / "Lab" / "Data" / "Many"
    script = f"for i in 1 2 3 4 5 6 7 8; do cat {folder}/*.bin > /dev/null; done"
    reader = subprocess.Popen(["sh", "-c", script], stderr=subprocess.DEVNULL)
    wait_for(lambda: len(e.requests("GET", "/retrieve$")) >= 45)
    crash(daemon)
    reader.wait(30)

    daemon.start("--cache-size", "200K")
    for name, data in files.items():
        assert (folder / name).read_bytes() == data
    cached = [p for p in daemon.cache.rglob("content/*") if p.is_file() and p.suffix != ".part"]
    assert cached
    assert {hashlib.md5(p.read_bytes()).hexdigest() for p in cached} <= versions
    assert sum(p.stat().st_size for p in cached) <= 200 * 1024
    print(f"\ncrash during eviction: {len(cached)} cached files after, each a verified copy")
