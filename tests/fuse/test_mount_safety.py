"""Mounting must never hide or share what it should not: a live mount, files in the mount
point, or the cache and write-back queue of a remote that another daemon already serves."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import ADMIN
from tests.fuse.conftest import Mount, MountFactory

DOCFS = [sys.executable, "-m", "docfs"]


def mount_cmd(mount: Mount, path: Path, *more: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOCFS_")}
    env["DOCFS_USER"], env["DOCFS_PASSWORD"] = ADMIN
    return subprocess.run(
        [
            *DOCFS,
            "mount",
            f"dspace6:{mount.url}",
            str(path),
            "--daemon",
            "--cache-dir",
            str(mount.cache),
            *more,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )


def test_a_live_docfs_mount_is_not_mounted_over(mount_factory: MountFactory) -> None:
    first = mount_factory().start()
    result = mount_cmd(first, first.path)
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"docfs: {first.path} is already a docfs mount: unmount it first (docfs unmount "
        f"{first.path}); docfs status lists what is mounted"
    )
    # still one mount there, and it still answers
    mounts = [
        line
        for line in Path("/proc/self/mountinfo").read_text().splitlines()
        if f" {first.path} " in line
    ]
    assert len(mounts) == 1
    os.statvfs(first.path)  # raises ENOTCONN if the first daemon had been disturbed
    assert first.proc is not None and first.proc.poll() is None


def test_a_second_mount_of_the_same_remote_and_cache_is_refused(
    mount_factory: MountFactory, tmp_path: Path
) -> None:
    first = mount_factory().start()
    other = tmp_path / "other"
    other.mkdir()
    result = mount_cmd(first, other)
    assert result.returncode == 1, result.stderr
    assert first.proc is not None
    assert f"another docfs mount (pid {first.proc.pid}) of this remote uses the cache" in (
        result.stderr
    ), result.stderr
    assert not os.path.ismount(other)


def test_a_non_empty_mount_point_needs_allow_non_empty(
    mount_factory: MountFactory, tmp_path: Path
) -> None:
    mnt = tmp_path / "busy"
    mnt.mkdir()
    (mnt / "notes.txt").write_text("mine")
    probe = mount_factory(name="unused")
    refused = mount_cmd(probe, mnt)
    assert refused.returncode == 2
    assert f"mount point {mnt} is not empty" in refused.stderr
    assert "--allow-non-empty" in refused.stderr
    assert not os.path.ismount(mnt)
    allowed = mount_cmd(probe, mnt, "--allow-non-empty")
    try:
        assert allowed.returncode == 0, allowed.stderr
        assert os.path.ismount(mnt)
    finally:
        subprocess.run([*DOCFS, "unmount", str(mnt)], capture_output=True, timeout=60)
    assert (mnt / "notes.txt").read_text() == "mine"
