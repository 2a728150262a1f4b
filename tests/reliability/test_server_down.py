"""Scenario 3: the server goes away (connection refused) and comes back, without a remount.

While it is down, cached listings (also past their TTL) and cached contents stay readable, an
uncached read fails with EIO after the retries instead of hanging, a write in sync mode fails
``close()`` and keeps the bytes in lost+found, and a write in write-back mode is accepted and
waits in the queue. When the server is back, everything works again and the queue drains.
"""

from __future__ import annotations

import errno
import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from docfs.emulators.base import EmulatorServer
from docfs.emulators.dspace6 import DSpace6Emulator
from tests.reliability.conftest import Daemon, run


def wait_for(condition: Callable[[], bool], limit: float = 60.0) -> None:
    """Poll until ``condition`` holds; the limit only stops a hang, it measures nothing."""
    deadline = time.monotonic() + limit
    while not condition():
        assert time.monotonic() < deadline, "the condition never came true"
        time.sleep(0.1)


def test_browsing_reading_and_writing_while_the_server_is_down(
    daemon: Daemon,
    dspace6_server: EmulatorServer,
    emulator: DSpace6Emulator,
    tmp_path: Path,
) -> None:
    e = emulator
    item = e.add_item(e.add_collection("Data", e.add_community("Lab")), "Run")
    e.add_bitstream(item, "cached.txt", b"read before the outage")
    e.add_bitstream(item, "uncached.txt", b"read after the outage")
    daemon.start("--dir-cache-time", "1")
    queued = Daemon(daemon.url, tmp_path / "wb", tmp_path / "wb-cache", tmp_path / "wb.log")
    queued.start("--write-back", "0", "--dir-cache-time", "1")
    try:
        folder = daemon.path / "Lab" / "Data" / "Run"
        assert sorted(os.listdir(folder)) == ["cached.txt", "uncached.txt"]
        assert (folder / "cached.txt").read_bytes() == b"read before the outage"
        wb_folder = queued.path / "Lab" / "Data" / "Run"
        os.listdir(wb_folder)

        dspace6_server.stop()  # connection refused from now on
        time.sleep(1.1)  # every listing is past its TTL
        started = time.monotonic()
        assert sorted(os.listdir(folder)) == ["cached.txt", "uncached.txt"]
        noticed = time.monotonic() - started
        assert (folder / "cached.txt").read_bytes() == b"read before the outage"
        started = time.monotonic()
        failed = run("cat", str(folder / "uncached.txt"), check=False, timeout=60)
        took = time.monotonic() - started
        assert failed.returncode != 0 and "Input/output error" in failed.stderr
        with pytest.raises(OSError) as info:
            (folder / "written.txt").write_bytes(b"written while down")
        assert info.value.errno == errno.EIO
        kept = [p for p in daemon.cache.rglob("lost+found/*written.txt")]
        assert [p.read_bytes() for p in kept] == [b"written while down"]
        (wb_folder / "queued.txt").write_bytes(b"queued while down")  # close() succeeds
        assert (wb_folder / "queued.txt").read_bytes() == b"queued while down"

        back = EmulatorServer(e, port=dspace6_server.port)
        back.start()
        try:
            assert (folder / "uncached.txt").read_bytes() == b"read after the outage"
            (folder / "after.txt").write_bytes(b"written after the outage")
            wait_for(lambda: "queued.txt" in {b["name"] for b in e.bitstreams_of(item)})
            files = {b["name"]: e.bitstream_data(b["uuid"]) for b in e.bitstreams_of(item)}
            assert files == {
                "cached.txt": b"read before the outage",
                "uncached.txt": b"read after the outage",
                "after.txt": b"written after the outage",
                "queued.txt": b"queued while down",
            }
            time.sleep(1.1)
            assert sorted(os.listdir(folder)) == sorted(files)
            queued.stop()
            daemon.stop()
        finally:
            back.stop()
    finally:
        queued.cleanup()
    assert "Traceback" not in daemon.log_text() + queued.log_text()
    print(
        f"\nserver down: the first request gave up after {noticed:.1f} s of retries (cached "
        f"listings served); an uncached read then failed with EIO in {took:.2f} s"
    )
