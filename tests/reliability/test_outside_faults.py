"""Issue 18: faults from outside (a failing or slow server) must not leave wrong state behind.

A failed overwrite must leave the file as the server holds it, attributes included: an mtime
meant for the new bytes on the old ones makes the next ``rsync`` skip the file for good.
Driven through the vfs without the kernel (``kernelless.py``) on DSpace 6 and DocSpace, where
the issue found it; ``tests/fuse/test_write_mount.py`` runs the same with rsync on a mount.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from docfs import errors
from docfs.emulators.base import EmulatorServer
from tests.reliability.kernelless import BACKDOORS, Backdoor, Vfs

#: 2021-01-01 00:00 UTC: the source's mtime, which rsync sets on its temporary file
OLD_MTIME = 1609459200.0

#: the request that stores a new version of an existing file, per backend
OVERWRITE = {
    "dspace6": ("PUT", r"/bitstreams/[^/]+/data$"),
    "docspace": ("POST", r"/edit_session$"),
}


@pytest.fixture(params=[b for b in BACKDOORS if b.name in OVERWRITE], ids=lambda b: b.name)
def backdoor_server(request: pytest.FixtureRequest) -> Iterator[tuple[Backdoor, EmulatorServer]]:
    backdoor: Backdoor = request.param
    with EmulatorServer(backdoor.emulator()) as server:
        yield backdoor, server


def _rsync_once(vfs: Vfs, folder: int, name: str, data: bytes) -> None:
    """What ``rsync -a`` does for one changed file: a temporary name, the source's mtime on
    it, then a rename over the target."""
    temp = f".{name}.Ab12Cd"
    fh = vfs.create(folder, temp)
    vfs.write_and_close(fh, data)
    ino = vfs.ino(*_path_of(vfs, folder), temp)

    async def finish() -> None:
        await vfs.fs.writes.setattr(ino, mtime=OLD_MTIME)
        await vfs.fs.writes.rename(folder, temp, folder, name)

    vfs.loop.call(finish)


def _path_of(vfs: Vfs, folder: int) -> tuple[str, ...]:
    return tuple(vfs.fs.path(vfs.fs.inodes.get(folder)).strip("/").split("/"))


def test_a_failed_overwrite_by_rename_keeps_the_old_mtime(
    backdoor_server: tuple[Backdoor, EmulatorServer],
) -> None:
    """Issue 18.1: the rename's upload fails (the server answers 500 every time); the target
    must still show the server's old version with its own mtime, so a second rsync sends the
    file again, and that one lands."""
    backdoor, server = backdoor_server
    sandbox = backdoor.sandbox(server.emulator)
    sandbox.add_file("d.txt", b"version-1\n")
    vfs = Vfs(backdoor, server)
    try:
        folder = vfs.ino(*sandbox.path)
        method, path = OVERWRITE[backdoor.name]
        server.emulator.plan_fault(method=method, path=path, status=500, times=None)
        with pytest.raises(errors.DocfsError):
            _rsync_once(vfs, folder, "d.txt", b"version-2\n")
        server.emulator.clear_faults()
        assert sandbox.files() == {"d.txt": b"version-1\n"}
        target = vfs.ino(*sandbox.path, "d.txt")
        attr = vfs.loop.call(vfs.fs.getattr, target)
        # rsync compares size and mtime: the same size with the source's mtime is "up to date"
        assert attr.mtime != OLD_MTIME
        assert vfs.read(target) == b"version-1\n"

        # the second rsync sees a difference and sends the file again
        _rsync_once(vfs, folder, "d.txt", b"version-2\n")
        assert sandbox.files() == {"d.txt": b"version-2\n"}
        target = vfs.ino(*sandbox.path, "d.txt")
        assert vfs.loop.call(vfs.fs.getattr, target).mtime == OLD_MTIME
    finally:
        vfs.close()
