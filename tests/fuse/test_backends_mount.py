"""Every registered repository through a real mount, driven by real programs.

The conformance suite proves the semantics through the vfs; this proves the whole stack —
CLI, daemon, FUSE, backend, HTTP — for each repository type, the way a user runs it.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from docfs.emulators.base import EmulatorServer
from tests.conformance.adapters import ADAPTERS, DATA, HELLO, Adapter, Seeded
from tests.fuse.conftest import Mount

#: an inline TYPE:URL mount has no wire profile; the alternative Opus 2 profile is mounted
#: through a configured remote in test_opus2_mount.py; the releases and settings of the
#: conformance matrix are mounted too (``DOCFS_MATRIX=full``: all of them)
MOUNTABLE = [
    a
    for a in ADAPTERS
    if a.name != "opus2-alt"
    and (a.profile is None or a.profile.settings.get("wire_profile") != "alternative")
]


@pytest.fixture(params=MOUNTABLE, ids=lambda a: a.name)
def mounted(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[Adapter, EmulatorServer, Seeded, Mount]]:
    adapter: Adapter = request.param
    emulator = adapter.emulator()
    seeded = adapter.seed(emulator)
    with EmulatorServer(emulator) as server:
        mount = Mount(adapter.remote_url(server), tmp_path / "mnt", tmp_path / "cache")
        mount.kind = adapter.name.split("@")[0]  # "dspace7@7.6": the type, then the release
        creds = adapter.credentials()
        if creds.token:
            mount.start(token=creds.token)
        else:
            assert creds.user and creds.password
            mount.start(credentials=(creds.user, creds.password))
        try:
            yield adapter, server, seeded, mount
        finally:
            mount.stop()


def test_browse_read_write_rename(
    mounted: tuple[Adapter, EmulatorServer, Seeded, Mount], tmp_path: Path
) -> None:
    adapter, server, seeded, m = mounted
    folder = m.path.joinpath(*seeded.file_dir)
    # browse: ls -l and find see the seeded tree
    listing = m.run("ls", "-l", str(folder)).stdout
    assert "hello.txt" in listing and "data.bin" in listing
    found = m.run("find", str(m.path)).stdout.splitlines()
    assert str(folder / "data.bin") in found
    # read: cat and cmp against the seeded bytes, stat size matches
    assert m.run("cat", str(folder / "hello.txt")).stdout.encode() == HELLO
    assert subprocess.run(["cmp", str(folder / "data.bin"), "-"], input=DATA).returncode == 0
    assert (folder / "data.bin").stat().st_size == len(DATA)
    assert "user.docfs.id" in m.run("getfattr", "-d", str(folder / "data.bin")).stdout
    # write: cp in (one upload), then read it back after the listing is refetched
    local = tmp_path / "notes.csv"
    local.write_bytes(b"a,b\n1,2\n")
    server.emulator.clear_log()
    m.run("cp", str(local), str(folder))
    assert len(server.emulator.requests("POST", adapter.upload_path)) == 1
    assert (folder / "notes.csv").read_bytes() == b"a,b\n1,2\n"
    # rsync: a temp name never reaches the server, one upload under the final name
    server.emulator.clear_log()
    (tmp_path / "sync").mkdir()
    (tmp_path / "sync" / "synced.txt").write_bytes(b"rsynced\n")
    result = m.run("rsync", "-a", f"{tmp_path / 'sync'}/", f"{folder}/", check=False)
    assert result.returncode == 0, result.stderr
    assert len(server.emulator.requests("POST", adapter.upload_path)) == 1
    assert not [r for r in server.emulator.requests() if ".synced.txt." in r.path + r.query]
    assert (folder / "synced.txt").read_bytes() == b"rsynced\n"
    # a second rsync finds nothing to do
    server.emulator.clear_log()
    again = m.run("rsync", "-a", "--itemize-changes", f"{tmp_path / 'sync'}/", f"{folder}/")
    assert not [ln for ln in again.stdout.splitlines() if ln.startswith(">f")]
    assert server.emulator.requests("POST", adapter.upload_path) == []
