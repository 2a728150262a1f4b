"""Reliability suite: real mounts of the docfs daemon against a misbehaving emulator.

Tests that use the ``daemon`` fixture run the real ``docfs mount`` command in a subprocess
against a DSpace 6 emulator on 127.0.0.1 and need /dev/fuse and fusermount3; where either is
missing they are skipped with a loud message (like ``tests/fuse``), never silently. The
hypothesis tests drive the vfs without the kernel and always run.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis.configuration import set_hypothesis_home_dir

from docfs.emulators.base import EmulatorServer
from docfs.emulators.dspace6 import DSpace6Emulator
from tests.conftest import ADMIN
from tests.fuse.conftest import FUSE_MISSING

#: every fault plan and subprocess bound in this suite is short: the whole suite runs in CI
TIMEOUT = "3"

# hypothesis keeps a cache of constants under ``.hypothesis`` in the working directory, which
# is the repository (and pytest then warns about it): keep it in the temp directory instead
set_hypothesis_home_dir(Path(tempfile.gettempdir()) / "docfs-hypothesis")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if FUSE_MISSING is None:
        return
    mounts = [
        i
        for i in items
        if "tests/reliability/" in str(i.fspath) and "daemon" in getattr(i, "fixturenames", ())
    ]
    if mounts:
        print(f"\n!!! RELIABILITY MOUNT TESTS SKIPPED: {FUSE_MISSING} !!!\n", file=sys.stderr)
    for item in mounts:
        item.add_marker(pytest.mark.skip(reason=f"FUSE unavailable: {FUSE_MISSING}"))


class Daemon:
    """One ``docfs mount`` process; can be stopped cleanly, killed, and started again."""

    def __init__(self, url: str, path: Path, cache: Path, log: Path) -> None:
        self.url, self.path, self.cache, self.log = url, path, cache, log
        self.proc: subprocess.Popen[bytes] | None = None

    def command(self, *args: str) -> list[str]:
        return [
            sys.executable,
            "-m",
            "docfs",
            "--log-level",
            "debug",
            "mount",
            f"dspace6:{self.url}",
            str(self.path),
            "--cache-dir",
            str(self.cache),
            "--timeout",
            TIMEOUT,
            *args,
        ]

    @staticmethod
    def env(credentials: tuple[str, str] | None = ADMIN) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("DOCFS_")}
        if credentials is not None:
            env["DOCFS_USER"], env["DOCFS_PASSWORD"] = credentials
        return env

    def start(self, *args: str, credentials: tuple[str, str] | None = ADMIN) -> Daemon:
        """Mount and return once the mount point is served."""
        self.path.mkdir(parents=True, exist_ok=True)
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                self.command(*args), env=self.env(credentials), stdout=log, stderr=log
            )
        deadline = time.monotonic() + 20
        while not self.mounted():
            if self.proc.poll() is not None:
                raise RuntimeError(f"docfs exited early:\n{self.log_text()[-3000:]}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"mount did not appear:\n{self.log_text()[-3000:]}")
            time.sleep(0.05)
        return self

    def mounted(self) -> bool:
        """Served by a live daemon (a dead daemon's mount point answers ENOTCONN)."""
        try:
            # statfs reaches the daemon; stat may be answered from the kernel's attribute cache
            os.statvfs(self.path)
        except OSError:
            return False
        return os.path.ismount(self.path)

    def kill(self) -> None:
        """SIGKILL: no unmount, no cleanup, exactly what a crash leaves behind."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)
        self.proc = None

    def stop(self) -> None:
        if self.proc is None:
            return
        subprocess.run(["fusermount3", "-u", str(self.path)], check=False, capture_output=True)
        try:
            self.proc.wait(30)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait(5)
            self.proc = None

    def cleanup(self) -> None:
        """Whatever state the test left: no process, no mount."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        self.proc = None
        subprocess.run(
            ["fusermount3", "-u", "-z", str(self.path)], check=False, capture_output=True
        )

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


def run(*cmd: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess[str]:
    """A program on the mount, with a bound so that a hang fails the test instead of CI."""
    result = subprocess.run(list(cmd), capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f"{cmd[0]} failed ({result.returncode}): {result.stderr[-2000:]}")
    return result


@pytest.fixture
def dspace6_server() -> Iterator[EmulatorServer]:
    emulator = DSpace6Emulator()
    emulator.add_user(*ADMIN, admin=True)
    with EmulatorServer(emulator) as server:
        yield server


@pytest.fixture
def emulator(dspace6_server: EmulatorServer) -> DSpace6Emulator:
    assert isinstance(dspace6_server.emulator, DSpace6Emulator)
    return dspace6_server.emulator


@pytest.fixture
def daemon(tmp_path: Path, dspace6_server: EmulatorServer) -> Iterator[Daemon]:
    """A (not yet started) daemon for ``<tmp>/mnt`` with its cache in ``<tmp>/cache``."""
    d = Daemon(
        f"{dspace6_server.url}/rest", tmp_path / "mnt", tmp_path / "cache", tmp_path / "daemon.log"
    )
    try:
        yield d
    finally:
        d.cleanup()
