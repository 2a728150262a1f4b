"""Write-back mode: a durable on-disk upload queue with parallel workers.

``close()`` puts a hard link to the staged file (a copy where links fail) and a JSON job into
``<cache>/queue/`` (renamed into place) and returns; after the delay, ``transfers`` workers
upload due jobs through the backend (and so through its rate limiter). A job lives on disk
until its upload is confirmed, so a crash or restart resumes where it stopped. Every job found
at start-up may have been sent before the crash, so each is checked against the server first
(same name and size, and MD5 where the repository gives one): a resumed queue uploads every
file exactly once. Transient failures are retried with backoff; permanent ones move the bytes
to lost+found.

Durability: a queued file survives a crash of the daemon at once (it is in the kernel's page
cache); against a crash of the machine it is made durable by fsyncs that a syncer task
group-commits in a worker thread, a fraction of a second later. Three fsyncs per ``close()`` on
the trio thread made ``cp -r`` of small files 8x slower than uploading them directly; an
explicit ``fsync(2)`` still waits for its file's group commit.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import shutil
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import trio

from docfs import errors
from docfs.backends.base import Backend, Checksum, Entry, Kind, Op
from docfs.hashing import file_digest_async
from docfs.retry import UNLIMITED, RetryPolicy
from docfs.vfs import checksums
from docfs.vfs.spares import SpareFiles
from docfs.vfs.staging import LostFound, Staged

log = logging.getLogger("docfs.writeback")


def entry_to_json(entry: Entry) -> dict[str, Any]:
    """Every field of ``entry`` as JSON: a field left out would come back as its default after
    a restart (an item's ``object_id``, a file that must be read whole…)."""
    data: dict[str, Any] = {}
    for f in dataclasses.fields(Entry):
        value = getattr(entry, f.name)
        if isinstance(value, Kind):
            value = value.value
        elif isinstance(value, frozenset):
            value = sorted(op.value for op in value)
        elif isinstance(value, Mapping):
            value = dict(value)
        elif isinstance(value, Checksum):
            value = {"algorithm": value.algorithm, "value": value.value}
        data[f.name] = value
    return data


def entry_from_json(data: dict[str, Any]) -> Entry:
    """The inverse of ``entry_to_json``; a field a queue file from an older docfs lacks takes
    its default."""
    known = {f.name for f in dataclasses.fields(Entry)}
    values = {key: value for key, value in data.items() if key in known}
    values["kind"] = Kind(data["kind"])
    values["ops"] = frozenset(Op(v) for v in data.get("ops", ()))
    if isinstance(checksum := data.get("checksum"), dict):
        values["checksum"] = Checksum(str(checksum["algorithm"]), str(checksum["value"]))
    return Entry(**values)


@dataclass
class Job:
    id: str
    name: str
    parent: dict[str, Any]
    target: dict[str, Any] | None
    size: int
    #: the data's MD5 ("" unless an older docfs queued it: see ``enqueue``)
    md5: str
    due: float
    path: str
    attempts: int = 0
    #: the upload was sent at least once: check the server before sending it again
    sent: bool = False
    #: seconds: what a queue file of an older docfs holds (read as ``mtime_ns`` on load)
    mtime: float | None = None
    mode: int | None = None
    #: the mtime to remember for the uploaded version, in integer nanoseconds
    mtime_ns: int | None = None
    inflight: bool = field(default=False, compare=False)

    def to_json(self) -> dict[str, Any]:
        # shallow: asdict deep-copies parent and target, a tenth of a millisecond per save,
        # and json.dumps reads this at once
        return {name: getattr(self, name) for name in _SAVED}


#: what a queue entry's JSON holds (``inflight`` is this run's business only)
_SAVED = tuple(f.name for f in fields(Job) if f.name != "inflight")

Done = Callable[[Job, Entry], None]

#: seconds the syncer waits after the first unsynced save before its group commit
SYNC_WINDOW = 0.25

#: a queued upload is tried until it lands or is refused for good; the pause after a
#: transient failure doubles from 2 s up to five minutes (no jitter: one client's queue)
UPLOAD_RETRY = RetryPolicy(attempts=UNLIMITED, base=1.0, cap=300.0, jitter=False)


class WriteBack:
    def __init__(
        self,
        root: Path,
        backend: Backend,
        lost_found: LostFound,
        *,
        delay: float,
        transfers: int = 4,
        spares: SpareFiles | None = None,
        retry: RetryPolicy = UPLOAD_RETRY,
    ) -> None:
        self.dir = root / "queue"
        self.retry = retry
        self.spares = spares
        self.dir.mkdir(parents=True, exist_ok=True)
        self.backend = backend
        self.lost_found = lost_found
        self.delay = delay
        self.transfers = max(1, transfers)
        self.jobs: dict[str, Job] = {}
        self.on_done: Done | None = None
        self.uploaded = 0
        self._wake = trio.Event()
        self._changed = trio.Event()
        #: jobs whose files still need an fsync, and those being fsynced now
        self._unsynced: set[str] = set()
        self._syncing: set[str] = set()
        self._sync_wanted = trio.Event()
        self._synced = trio.Event()
        # after an outage, upload at once rather than at the end of each job's backoff
        backend.on_recovery(self.nudge)
        self._load()

    # ---- persistence -----------------------------------------------------------------------

    def _load(self) -> None:
        now = time.time()
        for meta in sorted(self.dir.glob("*.json")):
            try:
                data = json.loads(meta.read_text())
                job = Job(**data)
                if job.mtime_ns is None and job.mtime is not None:
                    # an older docfs's seconds: the nanoseconds it showed for them
                    job.mtime_ns, job.mtime = int(job.mtime * 1e9), None
            except (ValueError, TypeError) as exc:
                log.error("unreadable queue entry %s (%s): moved aside", meta, exc)
                meta.rename(meta.with_suffix(".broken"))
                continue
            # the last run may have sent any of its jobs (it does not record that on disk
            # before each request): the server is checked before each is sent again
            job.sent = True
            if not self._data(job.id).exists():
                log.error("queue entry %s has no data; dropped", meta)
                meta.unlink()
                continue
            # nothing holds these files open any more: no reason to wait for the delay
            job.due = now
            self.jobs[job.id] = job
        for tmp in self.dir.glob("*.tmp"):
            tmp.unlink()
        for data in self.dir.glob("*.data"):
            if data.stem not in self.jobs:
                data.unlink()
        if self.jobs:
            log.info("write-back queue: %d uploads left from the last run", len(self.jobs))

    def _data(self, job_id: str) -> Path:
        return self.dir / f"{job_id}.data"

    def _save(self, job: Job, durable: bool = False) -> None:
        """Write the job's JSON (atomically, by rename); ``durable`` fsyncs it first — in a
        worker thread, never on the trio thread — else the syncer commits it soon."""
        tmp = self.dir / f"{job.id}.json.tmp"
        taken = self.spares is not None and self.spares.take(tmp)
        # a spare is empty: opened without O_TRUNC, since ext4 treats a truncated file's close
        # as "replace via truncate" and starts writing it back at once (~0.04 ms of CPU and
        # more of waiting on the trio thread per job; issue 24, B5)
        flags = os.O_WRONLY if taken else os.O_WRONLY | os.O_CREAT | os.O_TRUNC
        with open(os.open(tmp, flags, 0o600), "w") as fh:
            # one write of the C encoder's string: json.dump streams through the Python
            # encoder in small writes, ~3x the time (32 vs 11 µs a job)
            fh.write(json.dumps(job.to_json()))
            if durable:
                fh.flush()
                os.fsync(fh.fileno())
        os.rename(tmp, self.dir / f"{job.id}.json")
        if not durable:
            self._unsynced.add(job.id)
            self._sync_wanted.set()

    def _fsync(self, job_ids: list[str]) -> None:
        """(worker thread) Make these jobs' files and the queue directory durable."""
        for job_id in job_ids:
            for path in (self._data(job_id), self.dir / f"{job_id}.json"):
                try:
                    fd = os.open(path, os.O_RDONLY)
                except FileNotFoundError:
                    continue  # uploaded and removed meanwhile
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)
        fd = os.open(self.dir, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    async def _syncer(self) -> None:
        """Group commit: every job saved since the last round gets its fsyncs in one thread."""
        while True:
            await self._sync_wanted.wait()
            # a short window gathers a bigger group, and a job uploaded within it needs no
            # fsync at all (its files are gone): at 0 ms latency most of a cp -r's jobs
            await trio.sleep(SYNC_WINDOW)
            self._sync_wanted = trio.Event()
            await self.sync()

    async def sync(self) -> None:
        """Make every job saved so far durable."""
        batch = sorted(self._unsynced)
        if not batch:
            return
        self._unsynced.difference_update(batch)
        self._syncing.update(batch)
        try:
            await trio.to_thread.run_sync(self._fsync, batch)
        finally:
            self._syncing.difference_update(batch)
            self._synced.set()
            self._synced = trio.Event()

    async def wait_durable(self, job_id: str) -> None:
        """Until the job's files are on disk (what ``fsync(2)`` of a queued file waits for)."""
        while job_id in self._unsynced or job_id in self._syncing:
            if job_id in self._unsynced:
                # now, not after the syncer's window: fsync(2) is waiting
                await self.sync()
            else:
                await self._synced.wait()

    def _remove(self, job: Job) -> None:
        self.jobs.pop(job.id, None)
        self._unsynced.discard(job.id)  # gone: nothing left to make durable
        (self.dir / f"{job.id}.json").unlink(missing_ok=True)
        self._data(job.id).unlink(missing_ok=True)
        self._changed.set()
        self._changed = trio.Event()

    # ---- what the vfs calls ----------------------------------------------------------------

    async def enqueue(
        self,
        staged: Staged,
        parent: Entry,
        name: str,
        target: Entry | None,
        local_path: str,
        mtime_ns: int | None,
        mode: int | None,
    ) -> Job:
        job_id = uuid.uuid4().hex
        data = self._data(job_id)
        # the queue takes a hard link: the vfs must copy the staged file before changing it
        staged.shared = True
        if staged.size < 1 << 20:
            _stash(staged.path, data)
        else:
            # a big file's bytes (copied where links fail) would stall every FUSE request
            await trio.to_thread.run_sync(_stash, staged.path, data)
        job = Job(
            id=job_id,
            name=name,
            parent=entry_to_json(parent),
            target=entry_to_json(target) if target is not None else None,
            size=data.stat().st_size,
            # not hashed here: only a lost answer or a restart needs the digest, and the data
            # file (a snapshot nobody changes) gives it then (``_same_content``); hashing
            # every file on the trio thread at close cost ~0.05 ms a small file (issue 24, B5)
            md5="",
            due=time.time() + self.delay,
            path=local_path,
            mtime_ns=mtime_ns,
            mode=mode,
        )
        self._save(job)
        self.jobs[job.id] = job
        self._wake.set()
        return job

    def rename(self, job_id: str, parent: Entry, name: str, local_path: str) -> None:
        job = self.jobs.get(job_id)
        if job is not None:
            job.parent, job.name, job.path = entry_to_json(parent), name, local_path
            self._save(job)

    def cancel(self, job_id: str) -> bool:
        """Drop a job that has not started; False if it is being uploaded right now."""
        job = self.jobs.get(job_id)
        if job is None:
            return True
        if job.inflight:
            return False
        self._remove(job)
        return True

    def pending(self) -> int:
        return len(self.jobs)

    def nudge(self) -> None:
        """Make every waiting job due now (the server is reachable again)."""
        now = time.time()
        for job in self.jobs.values():
            job.due = min(job.due, now)
        self._wake.set()

    async def wait_for(self, job_id: str) -> None:
        while job_id in self.jobs:
            await self._changed.wait()

    async def drain(self, progress: Callable[[int], None] | None = None) -> None:
        for job in self.jobs.values():
            job.due = min(job.due, time.time())
        self._wake.set()
        while self.jobs:
            if progress is not None:
                progress(len(self.jobs))
            with trio.move_on_after(1):
                await self._changed.wait()

    # ---- workers ---------------------------------------------------------------------------

    async def run(self) -> None:
        send, receive = trio.open_memory_channel[Job](0)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._syncer)
            for _ in range(self.transfers):
                nursery.start_soon(self._worker, receive.clone())
            while True:
                now = time.time()
                due = [j for j in self.jobs.values() if not j.inflight and j.due <= now]
                for job in sorted(due, key=lambda j: j.due):
                    job.inflight = True
                    await send.send(job)
                pending = [j.due for j in self.jobs.values() if not j.inflight]
                wait = max(0.0, min(pending) - time.time()) if pending else 3600.0
                with trio.move_on_after(wait):
                    await self._wake.wait()
                self._wake = trio.Event()

    async def _worker(self, receive: trio.MemoryReceiveChannel[Job]) -> None:
        async for job in receive:
            try:
                await self._upload(job)
            finally:
                job.inflight = False

    async def _upload(self, job: Job) -> None:
        parent = entry_from_json(job.parent)
        target = entry_from_json(job.target) if job.target else None
        try:
            entry = await self._already_there(job, parent, target) if job.sent else None
            if entry is None:
                # in memory only: every job found at start-up counts as sent (see _load), so
                # no fsync has to wait before each upload
                job.sent = True
                data = self._data(job.id)
                # counted as it leaves, for docfs status and sync (see HttpClient.uploading)
                with self.backend.uploading(job.path, job.size, key=job.id):
                    if target is not None:
                        entry = await self.backend.replace_file(target, data)
                    else:
                        entry = await self.backend.create_file(parent, job.name, data)
        except (errors.RemoteUnavailable, trio.TooSlowError) as exc:
            if self.retry.gives_up(job.attempts):  # never with the default UPLOAD_RETRY
                self._give_up(job, exc)
                return
            job.attempts += 1
            # job.attempts counts from 1 here: the first pause is 2 s
            pause = self.retry.backoff(job.attempts)
            if isinstance(exc, errors.RemoteUnavailable) and exc.timed_out:
                # the upload may still land (held by a proxy, or still being stored): look
                # for it only once it can no longer, or it is sent twice (issue 18.2)
                pause = max(pause, 2 * self.backend.request_timeout)
            job.due = time.time() + pause
            self._save(job)
            log.warning(
                "upload of %s failed (%s); retry %d in %.0f s",
                job.path,
                exc,
                job.attempts,
                job.due - time.time(),
            )
            self._wake.set()
            return
        except errors.DocfsError as exc:
            self._give_up(job, exc)
            return
        self.uploaded += 1
        if self.on_done is not None:
            try:
                self.on_done(job, entry)
            except Exception:
                log.exception("after the upload of %s", job.path)
        self._remove(job)
        log.info("uploaded %s (%d bytes, write-back)", job.path, job.size)

    def _give_up(self, job: Job, exc: BaseException) -> None:
        """The upload failed for good: its bytes go to lost+found, the job goes."""
        staged = Staged(self._data(job.id), -1)
        kept = self.lost_found.keep(staged, job.path, str(exc))
        log.error("upload of %s failed: %s; the data is kept in %s", job.path, exc, kept)
        self._remove(job)

    async def _same_content(self, entry: Entry, job: Job) -> bool:
        """``entry`` on the server holds the job's bytes: same size, and same digest where
        the repository gives one (the job's MD5, or its data hashed in that algorithm)."""
        if entry.size != job.size:
            return False
        checksum = checksums.expected(entry)
        if checksum is None:
            return True
        if checksum.algorithm == "md5" and job.md5:
            return checksum.value == job.md5  # hashed at close by an older docfs
        digest = await file_digest_async(self._data(job.id), checksum.algorithm, size=job.size)
        return checksum.value == digest

    async def _already_there(self, job: Job, parent: Entry, target: Entry | None) -> Entry | None:
        """After a crash or a lost answer: did the upload arrive?"""
        if target is not None:
            with contextlib.suppress(errors.NotFound):
                current = await self.backend.stat(target)
                if await self._same_content(current, job):
                    return current
            return None
        async for entry in self.backend.list_dir(parent):
            if entry.name == job.name and await self._same_content(entry, job):
                log.info("%s had arrived before the restart; not sending it again", job.path)
                return entry
        return None


def _stash(src: Path, dst: Path) -> None:
    """Hard-link ``src`` to ``dst`` (a copy where links fail)."""
    try:
        os.link(src, dst)
    except OSError:
        shutil.copyfile(src, dst)
