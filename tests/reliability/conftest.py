"""Reliability suite: real mounts of the docfs daemon against a misbehaving emulator.

Tests that use the ``daemon`` fixture run the real ``docfs mount`` command in a subprocess
against a DSpace 6 emulator on 127.0.0.1; tests that use ``target`` do the same once per
backend (``targets.TARGETS``: DSpace 6, DSpace 7, RSpace, DocSpace, Opus 2). Both need
/dev/fuse and fusermount3; where either is missing they are skipped with a loud message (like
``tests/fuse``), never silently. The hypothesis tests drive the vfs without the kernel and
always run.
"""

from __future__ import annotations

import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis.configuration import set_hypothesis_home_dir

from docfs.emulators.base import EmulatorServer
from docfs.emulators.dspace6 import DSpace6Emulator
from tests.conftest import ADMIN
from tests.fuse.conftest import FUSE_MISSING, fuse_unavailable
from tests.reliability.targets import TARGETS, TIMEOUT, Daemon, Target

__all__ = ["TIMEOUT", "Daemon", "Target", "run"]

# hypothesis keeps a cache of constants under ``.hypothesis`` in the working directory, which
# is the repository (and pytest then warns about it): keep it in the temp directory instead
set_hypothesis_home_dir(Path(tempfile.gettempdir()) / "docfs-hypothesis")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if FUSE_MISSING is None:
        return
    mounts = [
        i
        for i in items
        if "tests/reliability/" in str(i.fspath)
        and {"daemon", "target"} & set(getattr(i, "fixturenames", ()))
    ]
    fuse_unavailable(mounts, "reliability mount")


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


@pytest.fixture(params=TARGETS, ids=lambda cls: cls.name)
def target(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Target]:
    """One backend's emulator on loopback; its daemons are cleaned up after the test."""
    with request.param(tmp_path) as t:
        yield t
