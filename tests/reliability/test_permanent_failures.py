"""Scenario 2: permanent failures through a real mount of every backend.

An upload refused for good (401 even after a new login, 403, 413, 507) fails ``close()`` with
the errno that says why, keeps the bytes in ``<cache>/<remote>/lost+found/`` with a note of
where they were going, and the daemon goes on serving. An entry that vanished from the server
answers ENOENT, and the listing that still showed it is fetched again.
"""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import pytest

from tests.reliability.conftest import Target, run
from tests.reliability.util import write_and_close

REFUSALS = [
    (401, errno.EACCES, "Permission denied"),
    (403, errno.EACCES, "Permission denied"),
    (413, errno.EFBIG, "File too large"),
    (507, errno.ENOSPC, "No space left on device"),
]


def test_refused_uploads_fail_close_keep_the_data_and_the_daemon_serves(
    target: Target, tmp_path: Path
) -> None:
    t = target
    place = t.folder("Uploads", {"existing.txt": b"still readable"})
    daemon = t.daemon().start()
    folder = daemon.at(place)
    os.listdir(folder)

    for status, expected, message in REFUSALS:
        # every upload attempt is refused, including the one after the re-login a 401 earns
        t.plan_upload_fault(status=status, times=None)
        data = f"precious bytes refused with {status}\n".encode()
        with pytest.raises(OSError) as info:
            write_and_close(folder / f"refused-{status}.txt", data)
        assert info.value.errno == expected, (status, info.value)
        # what a program like cp shows
        local = tmp_path / f"cp-{status}.txt"
        local.write_bytes(data)
        result = run("cp", str(local), str(folder / f"copied-{status}.txt"), check=False)
        assert result.returncode != 0 and message in result.stderr, result.stderr
        t.e.clear_faults()

    kept = sorted(p for p in daemon.cache.rglob("lost+found/*") if not p.name.endswith(".json"))
    assert len(kept) == 2 * len(REFUSALS)
    for path in kept:
        note = json.loads(path.with_name(path.name + ".json").read_text())
        status = int(path.name.rsplit("-", 1)[1].split(".")[0])
        assert path.read_bytes() == f"precious bytes refused with {status}\n".encode()
        assert note["remote_path"].startswith("/" + "/".join(place.path) + "/")
        assert str(status) in note["error"]
    assert "lost+found" in daemon.log_text()

    # nothing half-made on the server, and the daemon keeps serving reads and writes
    assert t.files(place) == {"existing.txt": b"still readable"}
    assert sorted(os.listdir(folder)) == ["existing.txt"]
    assert (folder / "existing.txt").read_bytes() == b"still readable"
    write_and_close(folder / "accepted.txt", b"fine now")
    assert t.files(place) == {"existing.txt": b"still readable", "accepted.txt": b"fine now"}
    assert "Traceback" not in daemon.log_text()
    refused = len([r for r in t.e.requests() if r.fault])
    print(
        f"\npermanent failures [{t.name}]: {len(REFUSALS)} statuses, {refused} refused "
        f"requests, {len(kept)} files in lost+found"
    )


def test_a_vanished_entry_is_enoent(target: Target) -> None:
    t = target
    place = t.folder("Shrinking", {"gone.txt": b"soon deleted", "stays.txt": b"stays"})
    daemon = t.daemon().start()
    folder = daemon.at(place)
    assert sorted(os.listdir(folder)) == ["gone.txt", "stays.txt"]
    t.delete(place, "gone.txt")  # behind the mount's back; the listing is still fresh
    with pytest.raises(OSError) as info:
        (folder / "gone.txt").read_bytes()
    assert info.value.errno == errno.ENOENT
    if t.can("rename files"):
        with pytest.raises(OSError) as info:
            (folder / "gone.txt").rename(folder / "renamed.txt")
        assert info.value.errno == errno.ENOENT
    # the 404 told docfs the listing is stale: it is fetched again, without the ghost
    assert os.listdir(folder) == ["stays.txt"]
    assert (folder / "stays.txt").read_bytes() == b"stays"
    assert t.files(place) == {"stays.txt": b"stays"}
