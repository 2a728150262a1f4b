"""Scenario 2: permanent failures through a real mount.

An upload refused for good (401 even after a new login, 403, 413, 507) fails ``close()`` with
the errno that says why, keeps the bytes in ``<cache>/<remote>/lost+found/`` with a note of
where they were going, and the daemon goes on serving. An entry that vanished from the server
answers ENOENT.
"""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import pytest

from docfs.emulators.dspace6 import DSpace6Emulator
from tests.reliability.conftest import Daemon, run

REFUSALS = [
    (401, errno.EACCES, "Permission denied"),
    (403, errno.EACCES, "Permission denied"),
    (413, errno.EFBIG, "File too large"),
    (507, errno.ENOSPC, "No space left on device"),
]


def write_and_close(path: Path, data: bytes) -> None:
    """open/write/close: the upload happens at close, so that is where its error shows."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


def test_refused_uploads_fail_close_keep_the_data_and_the_daemon_serves(
    daemon: Daemon, emulator: DSpace6Emulator, tmp_path: Path
) -> None:
    e = emulator
    item = e.add_item(e.add_collection("Data", e.add_community("Lab")), "Uploads")
    e.add_bitstream(item, "existing.txt", b"still readable")
    daemon.start()
    folder = daemon.path / "Lab" / "Data" / "Uploads"
    os.listdir(folder)

    for status, expected, message in REFUSALS:
        # every upload attempt is refused, including the one after the re-login a 401 earns
        e.plan_fault(method="POST", path=r"/bitstreams$", status=status, times=None)
        data = f"precious bytes refused with {status}\n".encode()
        with pytest.raises(OSError) as info:
            write_and_close(folder / f"refused-{status}.txt", data)
        assert info.value.errno == expected, (status, info.value)
        # what a program like cp shows
        local = tmp_path / f"cp-{status}.txt"
        local.write_bytes(data)
        result = run("cp", str(local), str(folder / f"copied-{status}.txt"), check=False)
        assert result.returncode != 0 and message in result.stderr, result.stderr
        e.clear_faults()

    kept = sorted(p for p in daemon.cache.rglob("lost+found/*") if not p.name.endswith(".json"))
    assert len(kept) == 2 * len(REFUSALS)
    for path in kept:
        note = json.loads(path.with_name(path.name + ".json").read_text())
        status = int(path.name.rsplit("-", 1)[1].split(".")[0])
        assert path.read_bytes() == f"precious bytes refused with {status}\n".encode()
        assert note["remote_path"].startswith("/Lab/Data/Uploads/")
        assert str(status) in note["error"]
    assert "lost+found" in daemon.log_text()

    # nothing half-made on the server, and the daemon keeps serving reads and writes
    assert {b["name"] for b in e.bitstreams_of(item)} == {"existing.txt"}
    assert sorted(os.listdir(folder)) == ["existing.txt"]
    assert (folder / "existing.txt").read_bytes() == b"still readable"
    write_and_close(folder / "accepted.txt", b"fine now")
    assert {b["name"] for b in e.bitstreams_of(item)} == {"existing.txt", "accepted.txt"}
    assert "Traceback" not in daemon.log_text()
    print(f"\npermanent failures: {len(REFUSALS)} statuses, {len(kept)} files in lost+found")


def test_a_vanished_entry_is_enoent(daemon: Daemon, emulator: DSpace6Emulator) -> None:
    e = emulator
    item = e.add_item(e.add_collection("Data", e.add_community("Lab")), "Shrinking")
    gone = e.add_bitstream(item, "gone.txt", b"soon deleted")
    e.add_bitstream(item, "stays.txt", b"stays")
    daemon.start()
    folder = daemon.path / "Lab" / "Data" / "Shrinking"
    assert sorted(os.listdir(folder)) == ["gone.txt", "stays.txt"]
    e.delete_object(gone)  # behind the mount's back; the listing is still fresh
    with pytest.raises(OSError) as info:
        (folder / "gone.txt").read_bytes()
    assert info.value.errno == errno.ENOENT
    with pytest.raises(OSError) as info:
        (folder / "gone.txt").rename(folder / "renamed.txt")
    assert info.value.errno == errno.ENOENT
    # the 404 told docfs the listing is stale: it is fetched again, without the ghost
    assert os.listdir(folder) == ["stays.txt"]
    assert (folder / "stays.txt").read_bytes() == b"stays"
