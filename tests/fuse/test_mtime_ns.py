"""Issue 23.13: an mtime set through the mount comes back to the nanosecond, also after a
remount and through the write-back queue, so ``cp -p``/``rsync -a`` then ``stat`` agree and
``rsync --modify-window=-1`` (nanosecond comparison) finds nothing to send the second time.

Before the fix mtimes were float seconds (``.129353603`` came back as ``.129353728``).
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from docfs.emulators.base import EmulatorServer
from docfs.emulators.dspace6 import DSpace6Emulator
from tests.fuse.conftest import MountFactory

#: 2021-03-04 05:06:07.129353603 UTC: the last digits are the ones a float of seconds loses
STAMP = "2021-03-04 05:06:07.129353603"
STAMP_NS = int(datetime(2021, 3, 4, 5, 6, 7, tzinfo=UTC).timestamp()) * 10**9 + 129_353_603


def _collection(server: EmulatorServer) -> tuple[DSpace6Emulator, str]:
    emulator = server.emulator
    assert isinstance(emulator, DSpace6Emulator)
    return emulator, emulator.add_collection("Incoming", emulator.add_community("Lab"))


def _wait_for(what: str, condition: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def test_touch_and_utime_keep_nanoseconds_across_a_remount(
    mount_factory: MountFactory, dspace6_server: EmulatorServer
) -> None:
    emulator, collection = _collection(dspace6_server)
    item = emulator.add_item(collection, "Paper")
    emulator.add_bitstream(item, "a.txt", b"first")
    emulator.add_bitstream(item, "b.txt", b"second")
    m = mount_factory().start()
    folder = m.path / "Lab" / "Incoming" / "Paper"
    # touch -d in UTC: the same instant whatever the machine's zone
    subprocess.run(
        ["touch", "-d", STAMP, str(folder / "a.txt")], check=True, env={**os.environ, "TZ": "UTC"}
    )
    other = STAMP_NS + 987_654_321
    os.utime(folder / "b.txt", ns=(other, other))
    assert os.stat(folder / "a.txt").st_mtime_ns == STAMP_NS
    assert os.stat(folder / "b.txt").st_mtime_ns == other
    m.stop()
    m.start()
    assert os.stat(folder / "a.txt").st_mtime_ns == STAMP_NS
    assert os.stat(folder / "b.txt").st_mtime_ns == other


def test_rsync_with_nanosecond_window_sends_nothing_the_second_time(
    mount_factory: MountFactory, dspace6_server: EmulatorServer, tmp_path: Path
) -> None:
    emulator, _ = _collection(dspace6_server)
    src = tmp_path / "src"
    src.mkdir()
    for n in range(3):
        path = src / f"f{n}.txt"
        path.write_bytes(b"x" * (n + 1))
        os.utime(path, ns=(STAMP_NS + n, STAMP_NS + n))
    m = mount_factory().start()
    target = m.path / "Lab" / "Incoming"
    # no trailing slash: src becomes an item
    rsync = ["rsync", "-a", "--modify-window=-1", "--itemize-changes", str(src), f"{target}/"]
    first = m.run(*rsync)
    assert [ln for ln in first.stdout.splitlines() if ln.startswith(">f")], first.stdout
    assert len(emulator.requests("POST", r"/bitstreams$")) == 3
    for n in range(3):
        assert os.stat(target / "src" / f"f{n}.txt").st_mtime_ns == STAMP_NS + n
    emulator.clear_log()
    second = m.run(*rsync)
    assert not [ln for ln in second.stdout.splitlines() if ln.startswith(">f")], second.stdout
    assert emulator.requests("POST", r"/bitstreams$") == []
    assert emulator.requests("PUT") == []


def test_a_queued_upload_keeps_its_nanoseconds_through_a_crash(
    mount_factory: MountFactory, dspace6_server: EmulatorServer, tmp_path: Path
) -> None:
    """``cp -p`` in write-back mode, the daemon killed before the upload: the next mount
    uploads the queued file and remembers the job's mtime for it, to the nanosecond."""
    emulator, collection = _collection(dspace6_server)
    item = emulator.add_item(collection, "Queued")
    local = tmp_path / "c.txt"
    local.write_bytes(b"queued bytes")
    os.utime(local, ns=(STAMP_NS, STAMP_NS))
    m = mount_factory("--write-back", "3600").start()
    folder = m.path / "Lab" / "Incoming" / "Queued"
    m.run("cp", "-p", str(local), str(folder / "c.txt"))
    assert os.stat(folder / "c.txt").st_mtime_ns == STAMP_NS
    m.stop(kill=True)
    assert emulator.bitstreams_of(item) == []  # still only in the queue
    m.start("--write-back", "3600")
    _wait_for("the queued upload", lambda: len(emulator.bitstreams_of(item)) == 1)
    # the queue entry goes once the upload is recorded (attributes included)
    _wait_for("the queue to empty", lambda: not list(m.cache.rglob("queue/*.json")))
    assert os.stat(folder / "c.txt").st_mtime_ns == STAMP_NS
