"""Write-back mode through a real mount: a durable queue that survives SIGKILL."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from docfs.emulators.base import EmulatorServer
from docfs.emulators.dspace6 import DSpace6Emulator
from tests.fuse.conftest import MountFactory


def emu(server: EmulatorServer) -> DSpace6Emulator:
    assert isinstance(server.emulator, DSpace6Emulator)
    return server.emulator


def target_item(e: DSpace6Emulator) -> str:
    com = e.add_community("Lab")
    col = e.add_collection("Incoming", com)
    return e.add_item(col, "Batch")


def make_files(root: Path, n: int) -> dict[str, bytes]:
    root.mkdir(parents=True)
    files = {f"f{i:03d}.txt": f"file number {i}\n".encode() * (i % 7 + 1) for i in range(n)}
    for name, data in files.items():
        (root / name).write_bytes(data)
    return files


def wait_until(predicate: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def on_server(e: DSpace6Emulator, item: str) -> dict[str, bytes]:
    return {b["name"]: e.bitstream_data(b["uuid"]) for b in e.bitstreams_of(item)}


def test_queue_survives_sigkill_and_uploads_each_file_exactly_once(
    mount_factory: MountFactory, dspace6_server: EmulatorServer, tmp_path: Path
) -> None:
    e = emu(dspace6_server)
    item = target_item(e)
    files = make_files(tmp_path / "src", 200)
    m = mount_factory("--write-back", "30").start()
    dest = m.path / "Lab" / "Incoming" / "Batch"
    started = time.monotonic()
    m.run("cp", "-r", *[str(p) for p in sorted((tmp_path / "src").iterdir())], str(dest))
    copy_time = time.monotonic() - started
    assert e.requests("POST", r"/bitstreams$") == []  # nothing uploaded yet: close returned
    assert sorted(p.name for p in dest.iterdir()) == sorted(files)  # visible at once
    assert (dest / "f007.txt").read_bytes() == files["f007.txt"]
    m.stop(kill=True)
    assert on_server(e, item) == {}

    m2 = mount_factory().start()  # same cache dir: the queue resumes
    wait_until(lambda: len(e.bitstreams_of(item)) >= 200)
    time.sleep(0.5)
    assert on_server(e, item) == files
    names = Counter(b["name"] for b in e.bitstreams_of(item))
    assert max(names.values()) == 1
    assert len(e.requests("POST", r"/bitstreams$")) == 200
    m2.stop()
    print(f"cp of 200 files in write-back mode took {copy_time:.2f} s")


def test_kill_during_uploads_does_not_duplicate(
    mount_factory: MountFactory, dspace6_server: EmulatorServer, tmp_path: Path
) -> None:
    e = emu(dspace6_server)
    item = target_item(e)
    files = make_files(tmp_path / "src", 60)
    m = mount_factory("--write-back", "0", "--transfers", "4").start()
    dest = m.path / "Lab" / "Incoming" / "Batch"
    m.run("ls", str(dest))
    e.latency_ms = 150  # uploads are slow: the kill lands while some are in flight
    m.run("cp", "-r", *[str(p) for p in sorted((tmp_path / "src").iterdir())], str(dest))
    wait_until(lambda: len(e.requests("POST", r"/bitstreams$")) >= 8)
    m.stop(kill=True)
    e.latency_ms = 0
    m2 = mount_factory("--write-back", "0").start()
    wait_until(lambda: len(e.bitstreams_of(item)) >= 60)
    time.sleep(1.0)
    assert on_server(e, item) == files
    assert max(Counter(b["name"] for b in e.bitstreams_of(item)).values()) == 1
    m2.stop()


def test_unmount_waits_for_the_queue_and_renames_apply_to_it(
    mount_factory: MountFactory, dspace6_server: EmulatorServer, tmp_path: Path
) -> None:
    e = emu(dspace6_server)
    item = target_item(e)
    m = mount_factory("--write-back", "3").start()
    dest = m.path / "Lab" / "Incoming" / "Batch"
    (dest / "draft.txt").write_bytes(b"final words")
    (dest / "draft.txt").rename(dest / "final.txt")
    (dest / "scratch.txt").write_bytes(b"never mind")
    (dest / "scratch.txt").unlink()
    for i in range(5):
        (dest / f"more-{i}.txt").write_bytes(b"x" * i)
    assert m.proc is not None
    result = subprocess.run(
        [sys.executable, "-m", "docfs", "unmount", str(m.path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    # the progress line (not a terminal here: plain lines)
    assert re.search(r"^docfs: [1-6] uploads left, \d+ B of \d+ B sent", result.stderr, re.M)
    assert m.proc.poll() is not None  # unmount returned after the daemon finished
    m.proc = None
    assert on_server(e, item) == {
        "final.txt": b"final words",
        **{f"more-{i}.txt": b"x" * i for i in range(5)},
    }
    sent = [r.query for r in e.requests("POST", r"/bitstreams$")]
    assert not [q for q in sent if "draft" in q or "scratch" in q]


def test_a_queued_file_keeps_its_bytes_while_it_is_written_again(
    mount_factory: MountFactory, dspace6_server: EmulatorServer, tmp_path: Path
) -> None:
    """The queue holds a hard link to the staged file: the next write must copy it first."""
    e = emu(dspace6_server)
    item = target_item(e)
    m = mount_factory("--write-back", "3600").start()
    f = m.path / "Lab" / "Incoming" / "Batch" / "notes.txt"
    f.write_bytes(b"first version\n")
    (queued,) = list(m.cache.rglob("queue/*.data"))
    assert queued.read_bytes() == b"first version\n"
    with open(f, "r+b") as fh:  # written again while the first version waits in the queue
        fh.seek(0)
        fh.write(b"SECOND")
        fh.flush()  # write(2) returns once the daemon has written the staged file
        assert queued.read_bytes() == b"first version\n"
    # the close queued the new version instead (the first job had not started: dropped)
    (newer,) = list(m.cache.rglob("queue/*.data"))
    assert newer.read_bytes() == b"SECONDversion\n"
    assert f.read_bytes() == b"SECONDversion\n"
    subprocess.run([sys.executable, "-m", "docfs", "sync", str(m.path)], check=True, timeout=60)
    wait_until(lambda: on_server(e, item) == {"notes.txt": b"SECONDversion\n"})
    assert len(e.requests("POST", r"/bitstreams$")) == 1
