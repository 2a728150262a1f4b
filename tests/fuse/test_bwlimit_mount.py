"""``--bwlimit`` through a real mount (issue 22.4): downloads and uploads wait for the one
budget, and ``docfs status`` shows it. The rate itself is measured by benchmark B13, not here:
the test counts the waits, never the time."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from docfs.emulators.base import EmulatorServer
from docfs.emulators.dspace6 import DSpace6Emulator
from tests.fuse.conftest import MountFactory


def status(mnt: Path, *more: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "docfs", "status", str(mnt), *more],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )


def test_downloads_and_uploads_wait_for_the_limit_and_status_shows_it(
    mount_factory: MountFactory,
    dspace6_server: EmulatorServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DOCFS_RUNTIME_DIR", str(tmp_path / "run"))
    e = dspace6_server.emulator
    assert isinstance(e, DSpace6Emulator)
    item = e.add_item(e.add_collection("K", e.add_community("C")), "I")
    data = os.urandom(768 << 10)
    e.add_bitstream(item, "big.bin", data)
    m = mount_factory("--bwlimit", "1M").start()
    folder = m.path / "C" / "K" / "I"

    before = json.loads(status(m.path, "--json").stdout)["bandwidth"]
    assert before == {"limit": 1 << 20, "waits": 0, "seconds": 0.0}
    assert (folder / "big.bin").read_bytes() == data
    read = json.loads(status(m.path, "--json").stdout)["bandwidth"]
    # 768 KiB through a bucket of 128 KiB: the receiving thread had to wait
    assert read["waits"] > 0 and read["seconds"] > 0

    (folder / "up.bin").write_bytes(data)
    assert e.bitstream_data(bitstream_id(folder / "up.bin")) == data
    written = json.loads(status(m.path, "--json").stdout)["bandwidth"]
    assert written["waits"] > read["waits"] and written["seconds"] > read["seconds"]
    assert "  bwlimit   1.0 MiB/s for downloads and uploads together; waits " in (
        status(m.path).stdout
    )


def bitstream_id(path: Path) -> str:
    return os.getxattr(path, "user.docfs.id").decode()
