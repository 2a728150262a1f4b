"""The write-back queue's durability: entries on disk at close, fsyncs group-committed."""

from __future__ import annotations

import json
import os
import types
from pathlib import Path

import pytest
import trio

from docfs.backends.base import Entry, Kind
from docfs.vfs.staging import LostFound, Staging
from docfs.vfs.writeback import Job, WriteBack


def queue(tmp_path: Path) -> WriteBack:
    recoveries: list[object] = []
    backend = types.SimpleNamespace(on_recovery=recoveries.append)
    return WriteBack(tmp_path, backend, LostFound(tmp_path), delay=3600)  # type: ignore[arg-type]


def counted_fsyncs(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The descriptors ``os.fsync`` is called with from now on (the calls still happen)."""
    synced: list[int] = []
    real_fsync = os.fsync

    def counting_fsync(fd: int) -> None:
        synced.append(fd)
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", counting_fsync)
    return synced


async def queued_files(wb: WriteBack, tmp_path: Path, count: int) -> list[Job]:
    """``count`` small files closed into the queue, as ``/Item/f<i>``."""
    staging = Staging(tmp_path)
    parent = Entry("p", "Item", Kind.DIR, None, None, "")
    jobs = []
    for i in range(count):
        staged = staging.new()
        os.write(staged.fd, f"file {i}".encode())
        jobs.append(await wb.enqueue(staged, parent, f"f{i}", None, f"/Item/f{i}", None, None))
    return jobs


async def test_close_writes_the_entry_and_the_syncer_commits_a_group(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced = counted_fsyncs(monkeypatch)
    wb = queue(tmp_path)
    jobs = await queued_files(wb, tmp_path, 10)
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


def test_a_queued_entry_keeps_every_field_across_a_restart() -> None:
    import dataclasses

    from docfs.backends.base import Checksum, Entry, Kind, Op
    from docfs.vfs.writeback import entry_from_json, entry_to_json

    entry = Entry(
        id="item-uuid@collection-uuid",
        name="Shared paper",
        kind=Kind.DIR,
        size=None,
        mtime=1.5,
        version="v",
        meta={"dc.title": "Shared paper"},
        read_only=True,
        ops=frozenset({Op.CREATE_FILE, Op.REMOVE}),
        extra={"collection": "collection-uuid"},
        change_scope=True,
        partial_meta=True,
        prefilled=True,
        transformed=True,
        object_id="item-uuid",
        byte_ranges=False,
        inherited_mtime=True,
        thumbnail="thumb-uuid",
        checksum=Checksum("md5", "0" * 32),
    )
    # every field differs from its default, so a field the JSON leaves out shows
    for f in dataclasses.fields(Entry):
        if f.default is not dataclasses.MISSING:
            assert getattr(entry, f.name) != f.default, f.name
    back = entry_from_json(json.loads(json.dumps(entry_to_json(entry))))
    assert {f.name: getattr(back, f.name) for f in dataclasses.fields(Entry)} == {
        f.name: getattr(entry, f.name) for f in dataclasses.fields(Entry)
    }


async def test_a_queued_mtime_is_kept_in_nanoseconds_and_old_entries_still_load(
    tmp_path: Path,
) -> None:
    """Issue 23.13: a job's mtime survives a restart to the nanosecond; an entry written by
    an older docfs (float seconds in ``mtime``) loads with the same instant in nanoseconds."""
    stamp = 1_614_834_367_129_353_603
    wb = queue(tmp_path)
    staged = Staging(tmp_path).new()
    os.write(staged.fd, b"x")
    parent = Entry("p", "Item", Kind.DIR, None, None, "")
    job = await wb.enqueue(staged, parent, "f", None, "/Item/f", stamp, 0o640)
    old = json.loads((wb.dir / f"{job.id}.json").read_text())
    del old["mtime_ns"]
    old.update(id="old", mtime=1_614_834_367.5)
    (wb.dir / "old.json").write_text(json.dumps(old))
    os.link(wb.dir / f"{job.id}.data", wb.dir / "old.data")
    again = queue(tmp_path)
    assert again.jobs[job.id].mtime_ns == stamp and again.jobs[job.id].mode == 0o640
    assert again.jobs["old"].mtime_ns == 1_614_834_367_500_000_000


async def test_a_job_uploaded_before_the_group_commit_costs_no_fsync(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 24 (B5): at 0 ms latency most jobs of a ``cp -r`` are uploaded within the
    syncer's window; their files are gone, so the commit has nothing to fsync for them."""
    synced = counted_fsyncs(monkeypatch)
    wb = queue(tmp_path)
    jobs = await queued_files(wb, tmp_path, 3)
    for job in jobs[:2]:
        wb._remove(job)  # what a finished upload does
    await wb.sync()
    assert len(synced) == 2 + 1  # the one queued job's data and entry, then the directory
    synced.clear()
    staged = Staging(tmp_path / "more").new()
    os.write(staged.fd, b"uploaded at once")
    parent = Entry("p", "Item", Kind.DIR, None, None, "")
    wb._remove(await wb.enqueue(staged, parent, "g", None, "/Item/g", None, None))
    await wb.sync()
    assert synced == []  # not even the directory: nothing of the job's is left to commit


async def test_close_does_not_hash_and_a_lost_answer_is_judged_by_the_data_file(
    tmp_path: Path,
) -> None:
    """Issue 24 (B5): closing a file into the queue no longer reads it for an MD5; when the
    server's copy must be compared (a lost answer, a restart), the data file gives the MD5,
    and an entry queued by an older docfs still compares by the MD5 it saved."""
    import hashlib

    from docfs.backends.base import Checksum

    wb = queue(tmp_path)
    [job] = await queued_files(wb, tmp_path, 1)
    assert job.md5 == ""
    right = hashlib.md5(b"file 0").hexdigest()

    def remote(md5: str) -> Entry:
        return Entry("r", "f0", Kind.FILE, 6, None, "v", checksum=Checksum("md5", md5))

    assert await wb._same_content(remote(right), job)
    assert not await wb._same_content(remote("0" * 32), job)
    older = Job(**{**job.to_json(), "md5": "1" * 32})
    assert await wb._same_content(remote("1" * 32), older)
    assert not await wb._same_content(remote(right), older)


async def test_an_entry_written_into_a_spare_is_not_truncated_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 24 (B5): a spare is empty, and opening it with O_TRUNC made ext4 start writing
    the entry back at its close (its "replace via truncate" rule), on the trio thread."""
    from docfs.vfs.spares import SpareFiles

    spares = SpareFiles(tmp_path)
    spares._ready.extend(spares._make([spares.dir / str(i) for i in range(4)]))
    backend = types.SimpleNamespace(on_recovery=[].append)
    wb = WriteBack(tmp_path, backend, LostFound(tmp_path), delay=3600, spares=spares)  # type: ignore[arg-type]
    opened: list[int] = []
    real_open = os.open

    def recording_open(path: object, flags: int, *args: int) -> int:
        if str(path).endswith(".json.tmp"):
            opened.append(flags)
        return real_open(path, flags, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "open", recording_open)
    [job] = await queued_files(wb, tmp_path, 1)
    assert spares.served == 1  # the entry went into a spare
    assert len(opened) == 1 and not opened[0] & os.O_TRUNC
    assert json.loads((wb.dir / f"{job.id}.json").read_text())["name"] == "f0"
