"""Stable per-file dates (issue 25, item 4), through a real mount on DSpace 6.

DSpace bitstreams have no date, so a file showed its item's ``lastModified``: one upload into
the item changed the date of every file in it, and file managers remade every thumbnail. A
file keeps the date it showed when docfs first saw its (id, checksum), across remounts; a new
version of it is a new file, with a new date.
"""

from __future__ import annotations

import os
import stat
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

from docfs.emulators.base import EmulatorServer
from docfs.emulators.dspace6 import DSpace6Emulator
from tests.fuse.conftest import MountFactory


def wait_for(condition: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.05)


def test_a_files_date_does_not_follow_its_siblings(
    mount_factory: MountFactory, dspace6_server: EmulatorServer, tmp_path: Path
) -> None:
    e = dspace6_server.emulator
    assert isinstance(e, DSpace6Emulator)
    long_ago = datetime(2021, 3, 4, 5, 6, 7)
    col = e.add_collection("Photos", e.add_community("Lab"))
    item = e.add_item(col, "Trip", last_modified=long_ago)
    a = e.add_bitstream(item, "a.jpg", b"A" * 1000)
    m = mount_factory("--dir-cache-time", "1").start()
    folder = m.path / "Lab" / "Photos" / "Trip"
    a_date = (folder / "a.jpg").stat().st_mtime
    item_date = folder.stat().st_mtime
    assert a_date == item_date  # first seen: the date it showed before

    # someone uploads a sibling: the item's date moves on, a.jpg's does not
    e.add_bitstream(item, "b.jpg", b"B" * 2000)
    e.touch(item, long_ago + timedelta(days=400))
    wait_for(lambda: "b.jpg" in os.listdir(folder))
    assert folder.stat().st_mtime > item_date
    assert (folder / "a.jpg").stat().st_mtime == a_date
    b_date = (folder / "b.jpg").stat().st_mtime
    assert b_date == folder.stat().st_mtime  # new here: the date it shows now

    # remembered in the cache directory, privately, across a remount
    m.stop()
    [db] = m.cache.rglob("dates.sqlite")
    assert stat.S_IMODE(db.stat().st_mode) == 0o600
    e.touch(item, long_ago + timedelta(days=800))
    m2 = mount_factory("--dir-cache-time", "1", name="again").start()
    folder = m2.path / "Lab" / "Photos" / "Trip"
    assert folder.stat().st_mtime > b_date
    assert (folder / "a.jpg").stat().st_mtime == a_date
    assert (folder / "b.jpg").stat().st_mtime == b_date

    # a new version of a.jpg is a new file: it takes the item's date of now
    e.set_bitstream_data(a, b"C" * 10)
    wait_for(lambda: (folder / "a.jpg").stat().st_size == 10)
    assert (folder / "a.jpg").stat().st_mtime == folder.stat().st_mtime > a_date
    assert (folder / "b.jpg").stat().st_mtime == b_date
