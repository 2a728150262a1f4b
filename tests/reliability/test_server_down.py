"""Scenario 3: the server goes away (connection refused) and comes back, without a remount.

For every backend: while it is down, cached listings (also past their TTL) and cached contents
stay readable, an uncached read fails with EIO after the retries instead of hanging, a write in
sync mode fails ``close()`` and keeps the bytes in lost+found, and a write in write-back mode is
accepted and waits in the queue. When the server is back, everything works again and the queue
drains.
"""

from __future__ import annotations

import errno
import os
import time

import pytest

from tests.reliability.conftest import Target, run
from tests.reliability.util import wait_for


def test_browsing_reading_and_writing_while_the_server_is_down(target: Target) -> None:
    t = target
    place = t.folder(
        "Run",
        {"cached.txt": b"read before the outage", "uncached.txt": b"read after the outage"},
    )
    daemon = t.daemon().start("--dir-cache-time", "1")
    queued = t.daemon("wb").start("--write-back", "0", "--dir-cache-time", "1")
    folder = daemon.at(place)
    assert sorted(os.listdir(folder)) == ["cached.txt", "uncached.txt"]
    assert (folder / "cached.txt").read_bytes() == b"read before the outage"
    wb_folder = queued.at(place)
    os.listdir(wb_folder)

    t.down()  # connection refused from now on
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
    kept = list(daemon.cache.rglob("lost+found/*written.txt"))
    assert [p.read_bytes() for p in kept] == [b"written while down"]
    (wb_folder / "queued.txt").write_bytes(b"queued while down")  # close() succeeds
    assert (wb_folder / "queued.txt").read_bytes() == b"queued while down"

    t.up()
    assert (folder / "uncached.txt").read_bytes() == b"read after the outage"
    (folder / "after.txt").write_bytes(b"written after the outage")
    wait_for(lambda: "queued.txt" in t.files(place), step=0.1)
    files = t.files(place)
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
    assert "Traceback" not in daemon.log_text() + queued.log_text()
    print(
        f"\nserver down [{t.name}]: the first request gave up after {noticed:.1f} s of retries "
        f"(cached listings served); an uncached read then failed with EIO in {took:.2f} s"
    )
