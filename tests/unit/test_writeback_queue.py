"""The write-back queue's durability: entries on disk at close, fsyncs group-committed."""

from __future__ import annotations

import json
import os
import types
from pathlib import Path

import pytest
import trio

from docfs.backends.base import Entry, Kind
from docfs.vfs import writeback
from docfs.vfs.staging import LostFound, Staging
from docfs.vfs.writeback import WriteBack


def queue(tmp_path: Path) -> WriteBack:
    backend = types.SimpleNamespace(http=types.SimpleNamespace(on_recovery=[]))
    return WriteBack(tmp_path, backend, LostFound(tmp_path), delay=3600)  # type: ignore[arg-type]


async def test_close_writes_the_entry_and_the_syncer_commits_a_group(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced: list[int] = []
    real_fsync = os.fsync

    def counting_fsync(fd: int) -> None:
        synced.append(fd)
        real_fsync(fd)

    monkeypatch.setattr(writeback.os, "fsync", counting_fsync)
    wb = queue(tmp_path)
    staging = Staging(tmp_path)
    parent = Entry("p", "Item", Kind.DIR, None, None, "")
    jobs = []
    for i in range(10):
        staged = staging.new()
        os.write(staged.fd, f"file {i}".encode())
        jobs.append(await wb.enqueue(staged, parent, f"f{i}", None, f"/Item/f{i}", None, None))
    # at close: data and entry are in the queue directory, not one fsync on the trio thread
    assert synced == []
    for job in jobs:
        assert json.loads((wb.dir / f"{job.id}.json").read_text())["name"] == job.name
        assert (wb.dir / f"{job.id}.data").read_bytes() == f"file {jobs.index(job)}".encode()
    # fsync(2) of one queued file waits for the group commit, which covers all ten at once
    await wb.sync()
    assert len(synced) == 2 * len(jobs) + 1  # data and entry of each, then the directory
    synced.clear()
    await wb.wait_durable(jobs[3].id)
    assert synced == []  # already durable: nothing more to wait for


async def test_wait_durable_wakes_the_syncer(tmp_path: Path) -> None:
    wb = queue(tmp_path)
    staged = Staging(tmp_path).new()
    os.write(staged.fd, b"x")
    parent = Entry("p", "Item", Kind.DIR, None, None, "")
    job = await wb.enqueue(staged, parent, "f", None, "/Item/f", None, None)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(wb._syncer)
        with trio.fail_after(5):
            await wb.wait_durable(job.id)
        assert job.id not in wb._unsynced and job.id not in wb._syncing
        nursery.cancel_scope.cancel()
