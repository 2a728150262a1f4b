"""Spare files: made in a worker thread after the first need, handed out by rename, never wrong."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from pathlib import Path

import trio

from docfs.vfs.spares import SpareFiles
from docfs.vfs.staging import Staging


async def _until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    with trio.fail_after(timeout):
        while not condition():
            await trio.sleep(0.01)


async def test_nothing_is_made_before_the_first_take(tmp_path: Path) -> None:
    spares = SpareFiles(tmp_path, keep=8)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(spares.run)
        await trio.sleep(0.1)
        assert spares.made == 0 and not any(spares.dir.iterdir())
        # the first take finds none (the caller creates its own file) and asks for a batch
        assert not spares.take(tmp_path / "first")
        await _until(lambda: spares.made == 8)
        for i in range(8):
            dest = tmp_path / f"f{i}"
            assert spares.take(dest)
            info = dest.stat()
            assert info.st_size == 0 and stat.S_IMODE(info.st_mode) == 0o600
        # taking went below half: the pool was refilled meanwhile, without being asked again
        await _until(lambda: spares.made >= 12)
        nursery.cancel_scope.cancel()
    assert spares.served == 8 and spares.missed == 1


async def test_a_spare_removed_behind_its_back_is_skipped(tmp_path: Path) -> None:
    spares = SpareFiles(tmp_path, keep=4)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(spares.run)
        spares.take(tmp_path / "x")
        await _until(lambda: spares.made == 4)
        for spare in list(spares.dir.iterdir())[:3]:
            spare.unlink()
        assert spares.take(tmp_path / "y")
        assert (tmp_path / "y").exists()
        nursery.cancel_scope.cancel()


async def test_staging_uses_spares_and_a_stale_pool_is_cleared(tmp_path: Path) -> None:
    (tmp_path / "spare").mkdir()
    (tmp_path / "spare" / "old").write_bytes(b"left by an earlier run")
    spares = SpareFiles(tmp_path, keep=4)
    assert not any(spares.dir.iterdir())
    staging = Staging(tmp_path, spares)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(spares.run)
        first = staging.new()  # no spare yet: created in place
        await _until(lambda: spares.made == 4)
        second = staging.new()
        assert spares.served == 1
        for staged in (first, second):
            os.write(staged.fd, b"data")
            assert staged.path.read_bytes() == b"data" and staged.path.parent == staging.dir
            staging.discard(staged)
        nursery.cancel_scope.cancel()
