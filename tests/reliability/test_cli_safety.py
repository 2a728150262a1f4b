"""Reliability at the command line: stale mount points, credentials files, TLS, vanished files.

Each of these failed before its fix in docfs/cli.py, docfs/daemon.py or docfs/vfs/filesystem.py.
"""

from __future__ import annotations

import errno
import os
import subprocess
import time
from pathlib import Path

import pytest

from docfs.emulators.dspace6 import DSpace6Emulator
from tests.conftest import ADMIN
from tests.reliability.conftest import Daemon


def test_a_stale_mount_point_is_cleaned_by_the_next_mount(
    daemon: Daemon, emulator: DSpace6Emulator
) -> None:
    """cli.py/daemon.py: ENOTCONN on the mount point → fusermount3 -u -z, then mount."""
    e = emulator
    item = e.add_item(e.add_collection("Data", e.add_community("Lab")), "Box")
    e.add_bitstream(item, "a.txt", b"alpha")
    daemon.start()
    daemon.kill()
    with pytest.raises(OSError) as info:
        os.listdir(daemon.path)
    assert info.value.errno == errno.ENOTCONN
    daemon.start()  # no manual fusermount3 in between
    assert (daemon.path / "Lab" / "Data" / "Box" / "a.txt").read_bytes() == b"alpha"
    assert "stale" in daemon.log_text()


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o644])
def test_a_credentials_file_readable_by_others_is_refused(
    daemon: Daemon, tmp_path: Path, mode: int
) -> None:
    """cli.read_credentials: refuse group/world-readable files holding a password/token."""
    creds = tmp_path / "creds"
    creds.write_text(f"user = {ADMIN[0]}\npassword = {ADMIN[1]}\n")
    creds.chmod(mode)
    daemon.path.mkdir()
    result = subprocess.run(
        daemon.command("--credentials-file", str(creds), "--daemon"),
        env=Daemon.env(None),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "readable by" in result.stderr and "chmod 600" in result.stderr
    assert ADMIN[1] not in result.stderr
    assert not os.path.ismount(daemon.path)


def test_a_private_credentials_file_is_accepted(
    daemon: Daemon, emulator: DSpace6Emulator, tmp_path: Path
) -> None:
    creds = tmp_path / "creds"
    creds.write_text(f"user = {ADMIN[0]}\npassword = {ADMIN[1]}\n")
    creds.chmod(0o600)
    emulator.add_community("Lab")
    daemon.start("--credentials-file", str(creds), credentials=None)
    assert os.listdir(daemon.path) == ["Lab"]


def test_insecure_option_warns(daemon: Daemon, tmp_path: Path) -> None:
    """cli/daemon: --ca-bundle FILE and --insecure reach HttpClient(verify=, ca_bundle=)."""
    daemon.path.mkdir()
    result = subprocess.run(
        [*daemon.command("--insecure"), "--help"], capture_output=True, text=True, timeout=60
    )
    assert "--ca-bundle" in result.stdout and "--insecure" in result.stdout


def test_a_repository_file_named_like_a_local_only_name_can_be_opened(
    daemon: Daemon, emulator: DSpace6Emulator
) -> None:
    """filesystem.lookup: a name in the fresh listing is found even if it looks local-only."""
    e = emulator
    item = e.add_item(e.add_collection("Data", e.add_community("Lab")), "Box")
    for name in ("desktop.ini", "Thumbs.db", ".hidden", "notes~"):
        e.add_bitstream(item, name, name.encode())
    daemon.start()
    folder = daemon.path / "Lab" / "Data" / "Box"
    names = sorted(os.listdir(folder))
    assert names == sorted(["desktop.ini", "Thumbs.db", ".hidden", "notes~"])
    time.sleep(1.2)  # past the kernel's entry timeout: the next open asks docfs (lookup)
    for name in names:
        assert (folder / name).read_bytes() == name.encode()


def test_a_404_on_read_refreshes_the_listing(daemon: Daemon, emulator: DSpace6Emulator) -> None:
    """filesystem read path: NotFound from a download → invalidate the parent's listing."""
    e = emulator
    item = e.add_item(e.add_collection("Data", e.add_community("Lab")), "Box")
    gone = e.add_bitstream(item, "gone.txt", b"soon deleted")
    e.add_bitstream(item, "stays.txt", b"stays")
    daemon.start()
    folder = daemon.path / "Lab" / "Data" / "Box"
    assert sorted(os.listdir(folder)) == ["gone.txt", "stays.txt"]
    e.delete_object(gone)
    with pytest.raises(OSError) as info:
        (folder / "gone.txt").read_bytes()
    assert info.value.errno == errno.ENOENT
    time.sleep(0.1)
    assert os.listdir(folder) == ["stays.txt"]
