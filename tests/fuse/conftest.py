"""Real mounts: the docfs daemon in a subprocess, an emulator on loopback, real programs.

These tests need /dev/fuse and fusermount3. Where either is missing they are skipped with a
loud message on stderr — never silently — because nothing else proves the mount works; under
CI (``CI=true``) the run fails instead: a CI machine without FUSE must not pass by skipping.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

import pytest

from docfs.emulators.base import EmulatorServer
from docfs.emulators.dspace6 import DSpace6Emulator
from tests.conftest import ADMIN

FUSE_MISSING = (
    # lets a test see what a machine without FUSE does with the suite
    "FUSE hidden by DOCFS_TEST_HIDE_FUSE"
    if os.environ.get("DOCFS_TEST_HIDE_FUSE")
    else "no /dev/fuse"
    if not os.path.exists("/dev/fuse")
    else "no fusermount3 (apt-get install fuse3)"
    if shutil.which("fusermount3") is None
    else None
)


def on_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def fuse_unavailable(items: list[pytest.Item], what: str) -> None:
    """FUSE is missing: skip ``items`` with a loud line; under CI fail the run instead."""
    if FUSE_MISSING is None or not items:
        return
    if on_ci():
        raise pytest.UsageError(
            f"CI=true, but {len(items)} {what} tests need FUSE: {FUSE_MISSING}. "
            "Failing instead of skipping them"
        )
    print(f"\n!!! {what.upper()} TESTS SKIPPED: {FUSE_MISSING} !!!\n", file=sys.stderr)
    for item in items:
        item.add_marker(pytest.mark.skip(reason=f"FUSE unavailable: {FUSE_MISSING}"))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    fuse_unavailable([i for i in items if "tests/fuse/" in str(i.fspath)], "FUSE mount")


class Mount:
    """One docfs daemon serving ``url`` at ``path``."""

    def __init__(self, url: str, path: Path, cache: Path, *extra: str) -> None:
        self.url, self.path, self.cache, self.extra = url, path, cache, extra
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = cache.parent / f"daemon-{path.name}.log"

    #: the repository type in ``TYPE:URL``
    kind = "dspace6"

    def start(
        self,
        *more: str,
        credentials: tuple[str, str] | None = ADMIN,
        token: str | None = None,
    ) -> Mount:
        self.path.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ)
        for key in ("DOCFS_USER", "DOCFS_PASSWORD", "DOCFS_TOKEN"):
            env.pop(key, None)
        if token:
            env["DOCFS_TOKEN"] = token
        elif credentials:
            env["DOCFS_USER"], env["DOCFS_PASSWORD"] = credentials
        args = [
            sys.executable,
            "-m",
            "docfs",
            "--log-level",
            "debug",
            "mount",
            f"{self.kind}:{self.url}",
            str(self.path),
            "--cache-dir",
            str(self.cache),
            *self.extra,
            *more,
        ]
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(args, env=env, stdout=log, stderr=log)
        deadline = time.monotonic() + 20
        while not os.path.ismount(self.path):
            if self.proc.poll() is not None:
                raise RuntimeError(f"docfs exited early:\n{self.log.read_text()[-3000:]}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"mount did not appear:\n{self.log.read_text()[-3000:]}")
            time.sleep(0.05)
        return self

    def stop(self, kill: bool = False) -> None:
        if self.proc is None:
            return
        if kill:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)
            subprocess.run(
                ["fusermount3", "-u", "-z", str(self.path)], check=False, capture_output=True
            )
        else:
            subprocess.run(["fusermount3", "-u", str(self.path)], check=False, capture_output=True)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
                raise
        self.proc = None

    def run(
        self,
        *cmd: str,
        check: bool = True,
        cwd: Path | None = None,
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            list(cmd), capture_output=True, text=True, check=check, cwd=cwd, timeout=120
        )

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


class MountFactory(Protocol):
    """What ``mount_factory`` gives: a :class:`Mount` of the DSpace 6 emulator at
    ``tmp_path/name``, caching in ``cache`` (``tmp_path/cache`` by default)."""

    def __call__(self, *extra: str, name: str = "mnt", cache: Path | None = None) -> Mount: ...


@pytest.fixture
def dspace6_server() -> Iterator[EmulatorServer]:
    emulator = DSpace6Emulator()
    emulator.add_user(*ADMIN, admin=True)
    with EmulatorServer(emulator) as server:
        yield server


@pytest.fixture
def mount_factory(tmp_path: Path, dspace6_server: EmulatorServer) -> Iterator[MountFactory]:
    mounts: list[Mount] = []

    class _Mount(Mount):
        def __init__(self, *extra: str, name: str = "mnt", cache: Path | None = None) -> None:
            super().__init__(
                f"{dspace6_server.url}/rest",
                tmp_path / name,
                cache or tmp_path / "cache",
                *extra,
            )
            mounts.append(self)

    yield _Mount
    for m in mounts:
        m.stop()
