"""The control channel of a running mount: ``docfs status``, ``docfs sync``, ``docfs refresh``.

Each mount daemon listens on a Unix socket next to its state file in the runtime directory
(``mount-<hash>.sock``, mode 0600 in a 0700 directory, so only its owner can talk to it). We
chose a socket over an extended attribute on the root because ``sync`` must stream progress and
wait for minutes, and because status must work even when the mount itself hangs.

The protocol is one JSON object per line. The client sends one request, ``{"op": "status"}``,
``{"op": "sync", "timeout": 600}``, ``{"op": "refresh", "path": "/a/b"}``,
``{"op": "locate", "ino": 42}`` (the path of an inode, for ``docfs resolve``), ``pin``/``unpin``/
``pinned``/``cache-clear`` with a ``path`` (issue 22: offline use) or a repository
type's own request (``RemoteType.control_ops``); the server answers
with zero or more ``{"progress": …}`` lines and one final line with ``"ok"`` true or false.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import trio

from docfs.errors import DocfsError
from docfs.registry import control_handler
from docfs.remotetype import load

if TYPE_CHECKING:
    from docfs.backends.traffic import Transfer
    from docfs.vfs.filesystem import Filesystem
    from docfs.vfs.writeback import Job, WriteBack

log = logging.getLogger("docfs.control")

#: the longest request line a server reads; requests are a few dozen bytes
MAX_REQUEST = 64 * 1024
#: how often ``sync`` reports progress, and the upload meter samples
TICK = 0.5
#: the window over which the upload rate (for the ETA) is measured
RATE_WINDOW = 20.0

Json = dict[str, Any]
#: the requests of offline use and cache control (issue 22)
PIN_OPS = ("pin", "unpin", "pinned", "cache-clear")


class ControlError(Exception):
    """The mount did not answer, or answered with an error."""


# ---- upload progress -----------------------------------------------------------------------


def transfer_json(transfer: Transfer) -> Json:
    """One upload in flight as ``docfs status`` shows it (either mode)."""
    return {
        "path": transfer.path,
        "size": transfer.size,
        # a multipart body is a little larger than the file: never more than all of it
        "sent": min(transfer.sent, transfer.size),
        "rate": transfer.rate,
        "eta": transfer.eta,
        "elapsed": time.monotonic() - transfer.started,
    }


@dataclass
class UploadMeter:
    """Progress per queued upload and the recent upload rate of the whole queue.

    Bytes sent come from the HTTP layer's count of each upload's request bodies as they
    leave (``Backend.uploading``), keyed by job id; a job's rate and ETA run from the start
    of its upload, not from the first time somebody asked.
    """

    clock: Callable[[], float] = time.monotonic
    #: (time, bytes done in total) samples of the last RATE_WINDOW seconds
    samples: deque[tuple[float, int]] = field(default_factory=deque)
    #: size of every job seen in the queue, by id (gone from the queue: done)
    seen: dict[str, int] = field(default_factory=dict)
    finished_bytes: int = 0

    def sample(self, wb: WriteBack, transfers: Mapping[str, Transfer]) -> dict[str, int]:
        """Record where every upload stands; returns bytes sent per job id."""
        now = self.clock()
        sent = {
            key: min(t.sent, wb.jobs[key].size)
            for key, t in transfers.items()
            if key in wb.jobs and wb.jobs[key].inflight
        }
        for job_id in list(self.seen):
            if job_id not in wb.jobs:
                # gone from the queue: uploaded (a failure is rare and moves its bytes aside)
                self.finished_bytes += self.seen.pop(job_id)
        for job in wb.jobs.values():
            self.seen.setdefault(job.id, job.size)
        done = self.finished_bytes + sum(sent.values())
        self.samples.append((now, done))
        while len(self.samples) > 2 and now - self.samples[0][0] > RATE_WINDOW:
            self.samples.popleft()
        return sent

    def rate(self) -> float | None:
        """Bytes per second over the recent window, None until there is something to measure."""
        if len(self.samples) < 2:
            return None
        (t0, b0), (t1, b1) = self.samples[0], self.samples[-1]
        if t1 <= t0 or b1 <= b0:
            return None
        return (b1 - b0) / (t1 - t0)

    def report(self, wb: WriteBack, transfers: Mapping[str, Transfer]) -> Json:
        """Pending uploads with their progress; paths are as seen below the mount point."""
        sent = self.sample(wb, transfers)
        now_wall = time.time()
        files = [
            self._file(job, sent.get(job.id, 0), transfers.get(job.id), now_wall)
            for job in wb.jobs.values()
        ]
        files.sort(key=lambda f: (f["state"] != "uploading", f["path"]))
        remaining = sum(f["size"] - f["sent"] for f in files)
        rate = self.rate()
        return {
            "pending": len(files),
            "bytes_total": sum(f["size"] for f in files),
            "bytes_left": remaining,
            "rate": rate,
            "eta": remaining / rate if rate and remaining else (0.0 if not files else None),
            "uploaded": wb.uploaded,
            "files": files,
        }

    def _file(self, job: Job, sent: int, transfer: Transfer | None, now_wall: float) -> Json:
        uploading = job.inflight and transfer is not None
        state = "uploading" if job.inflight else "retrying" if job.attempts else "queued"
        return {
            "path": job.path,
            "size": job.size,
            "sent": sent,
            "state": state,
            "attempts": job.attempts,
            "due_in": max(0.0, job.due - now_wall) if not job.inflight else 0.0,
            "rate": transfer.rate if uploading and transfer is not None else None,
            "eta": transfer.eta if uploading and transfer is not None else None,
        }


# ---- the server ----------------------------------------------------------------------------


class ControlServer:
    """Serves status, sync and refresh for one mounted ``Filesystem``."""

    def __init__(self, fs: Filesystem, path: Path, identity: Json) -> None:
        self.fs = fs
        self.path = path
        #: what does not change while the mount lives: remote, mount point, pid…
        self.identity = identity
        self.started = time.monotonic()
        self.meter = UploadMeter()

    async def serve(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        # a socket left by a daemon that crashed is stale: its mount point is ours now
        self.path.unlink(missing_ok=True)
        sock = trio.socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            await sock.bind(str(self.path))
            os.chmod(self.path, 0o600)
            sock.listen(16)
            listener = trio.SocketListener(sock)
        except BaseException:
            sock.close()
            raise
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._sample)
                await nursery.start(trio.serve_listeners, self._handle, [listener])
                task_status.started()
        finally:
            self.path.unlink(missing_ok=True)

    async def _sample(self) -> None:
        """Keep the upload rate current even when nobody asks for status."""
        while True:
            wb = self.fs.writeback
            if wb is not None and (wb.jobs or self.meter.seen):
                self.meter.sample(wb, self._transfers())
            await trio.sleep(TICK)

    async def _handle(self, stream: trio.SocketStream) -> None:
        async with stream:
            try:
                request = await _read_request(stream)
                await self.dispatch(request, lambda line: _send(stream, line))
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                pass  # the client went away (Ctrl-C on docfs sync)
            except ControlError as exc:
                with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
                    await _send(stream, _refusal(str(exc)))
            except Exception:
                log.exception("control request failed")
                with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
                    await _send(stream, _refusal("internal error (see the mount's log)"))

    async def dispatch(self, request: Json, send: Callable[[Json], Any]) -> None:
        op = request.get("op")
        if op == "status":
            await send({"ok": True, "status": self.status()})
        elif op == "sync":
            timeout = request.get("timeout")
            await send(await self.sync(send, float(timeout) if timeout is not None else None))
        elif op == "refresh":
            path = request.get("path")
            if not isinstance(path, str):
                raise ControlError("refresh needs a path")
            await send({"ok": True, **self.refresh(path)})
        elif op == "locate":
            # docfs resolve: where in the tree the object behind a hidden path's inode is
            ino = request.get("ino")
            if not isinstance(ino, int):
                raise ControlError("locate needs an inode number")
            path = self.fs.locate(ino)
            if path is None:
                raise ControlError(f"inode {ino} is not known to the mount")
            await send({"ok": True, "path": path})
        elif op in PIN_OPS:
            await self.offline_use(str(op), request, send)
        elif isinstance(op, str) and (handler := control_handler(op)) is not None:
            # a repository type's own request (RSpace's share/unshare/shares/mkdir --notebook),
            # done with the mount's own login; loaded by name from the type's descriptor
            serve = load(handler)
            await send(await serve(self.fs.backend, request))
        else:
            raise ControlError(f"unknown request {op!r}")

    # ---- status ----------------------------------------------------------------------------

    def _transfers(self) -> dict[str, Transfer]:
        """The uploads in flight by key (a write-back job's id)."""
        return {t.key: t for t in self.fs.backend.traffic().transfers}

    def status(self) -> Json:
        fs = self.fs
        traffic = fs.backend.traffic()
        endpoints = {
            name: {
                "requests": s.requests,
                "errors": s.errors,
                "retries": s.retries,
                "bytes_sent": s.bytes_sent,
                "bytes_received": s.bytes_received,
            }
            for name, s in sorted(traffic.endpoints.items())
        }
        waits, waited = traffic.rate_limit_waits, traffic.rate_limit_seconds
        wb = fs.writeback
        return {
            **self.identity,
            "uptime": time.monotonic() - self.started,
            "read_only": fs.options.read_only,
            "direct_io": fs.options.direct_io,
            "write_back": fs.options.write_back,
            "cache": {"used": fs.content.used, "limit": fs.content.limit},
            "requests": {
                "total": sum(e["requests"] for e in endpoints.values()),
                "errors": sum(e["errors"] for e in endpoints.values()),
                "retries": sum(e["retries"] for e in endpoints.values()),
                "endpoints": endpoints,
            },
            "rate_limit": {"waits": waits, "seconds": waited},
            # --bwlimit: bytes per second (None: none), and the waits for it
            "bandwidth": {
                "limit": traffic.bandwidth_limit,
                "waits": traffic.bandwidth_waits,
                "seconds": traffic.bandwidth_seconds,
            },
            "uploads": self.meter.report(wb, self._transfers()) if wb is not None else _no_queue(),
            # every upload in flight, in both modes (sync mode has no queue to show them)
            "transfers": [transfer_json(t) for t in traffic.transfers],
            "lost_found": _lost_found_count(fs.lost_found.dir),
            # e.g. DSpace submissions not deposited yet
            "held_back": fs.backend.held_back(),
            # offline use (issue 22): pinned folders, and whether the server answers
            "pinned": fs.pinning.summary(),
            "offline": fs.offline.report(),
        }

    # ---- sync ------------------------------------------------------------------------------

    async def sync(self, send: Callable[[Json], Any], timeout: float | None) -> Json:
        """Upload everything queued now; wait until the queue is empty (or ``timeout``)."""
        wb = self.fs.writeback
        if wb is None or not wb.jobs:
            await self.fs.backend.settle()
            return {"ok": True, "uploaded": 0, "failed": [], "pending": []}
        since = time.time()
        watched: dict[str, str] = {}
        drained = trio.Event()

        async def drain() -> None:
            await wb.drain()
            drained.set()

        with trio.move_on_after(timeout if timeout is not None else float("inf")):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(drain)
                while not drained.is_set():
                    watched.update({j.id: j.path for j in wb.jobs.values()})
                    await send({"progress": self.meter.report(wb, self._transfers())})
                    with trio.move_on_after(TICK):
                        await drained.wait()
                nursery.cancel_scope.cancel()
        watched.update({j.id: j.path for j in wb.jobs.values()})
        await self.fs.backend.settle()
        failures = _failures_since(self.fs.lost_found.dir, since)
        failed = [
            {"path": path, "error": failures[path]}
            for job_id, path in sorted(watched.items(), key=lambda kv: kv[1])
            if job_id not in wb.jobs and path in failures
        ]
        pending = sorted(j.path for j in wb.jobs.values())
        uploaded = sum(1 for j in watched if j not in wb.jobs) - len(failed)
        return {
            "ok": not failed and not pending,
            "uploaded": uploaded,
            "failed": failed,
            "pending": pending,
            "error": _sync_error(failed, pending),
        }

    # ---- offline use and cache control (issue 22): pin, unpin, pinned, cache-clear ---------

    async def offline_use(self, op: str, request: Json, send: Callable[[Json], Any]) -> None:
        """``docfs pin``/``unpin``/``pinned``/``cache clear``; a refusal (over the pin
        budget, not in the mount) is the request's error line."""
        path = request.get("path", "/")
        if not isinstance(path, str):
            raise ControlError(f"{op} needs a path")
        try:
            if op == "pin":

                async def progress(report: Json) -> None:
                    await send({"progress": report})

                await send(await self.fs.pin(path, progress))
            elif op == "unpin":
                await send(self.fs.unpin(path))
            elif op == "pinned":
                await send(self.fs.pinned())
            else:
                answer = self.fs.cache_clear(path)
                log.info("cache clear %s: %d files, %d bytes", path, answer["files"],
                         answer["bytes"])  # fmt: skip
                await send(answer)
        except DocfsError as exc:
            raise ControlError(str(exc)) from None

    # ---- refresh ---------------------------------------------------------------------------

    def refresh(self, path: str) -> Json:
        """Forget cached listings at and below ``path`` (a path inside the mount)."""
        dropped = self.fs.refresh(path)
        log.info("refresh %s: %d cached listings dropped", path, dropped)
        return {"dropped": dropped}


def _refusal(message: str) -> Json:
    """The answer to a request the server could not carry out (as opposed to a failed sync)."""
    return {"ok": False, "error": message, "refused": True}


def _no_queue() -> Json:
    return {
        "pending": 0,
        "bytes_total": 0,
        "bytes_left": 0,
        "rate": None,
        "eta": 0.0,
        "uploaded": 0,
        "files": [],
    }


def _lost_found_count(directory: Path) -> int:
    try:
        return sum(1 for _ in directory.glob("*.json"))
    except OSError:
        return 0


def _failures_since(directory: Path, since: float) -> dict[str, str]:
    """remote path → error of the uploads that ended in lost+found since ``since``."""
    found: dict[str, str] = {}
    for sidecar in sorted(directory.glob("*.json")) if directory.is_dir() else []:
        try:
            note = json.loads(sidecar.read_text())
        except (OSError, ValueError):
            continue
        if note.get("time", 0) >= since - 1:
            found[str(note.get("remote_path"))] = str(note.get("error"))
    return found


def _sync_error(failed: list[Json], pending: list[str]) -> str | None:
    if failed:
        return f"{len(failed)} uploads failed (their data is in lost+found)"
    if pending:
        return f"timed out with {len(pending)} uploads still queued"
    return None


async def _read_request(stream: trio.SocketStream) -> Json:
    data = b""
    while b"\n" not in data:
        chunk = await stream.receive_some(4096)
        if not chunk:
            break
        data += chunk
        if len(data) > MAX_REQUEST:
            raise ControlError("request too long")
    try:
        request = json.loads(data.split(b"\n", 1)[0])
    except ValueError:
        raise ControlError("request is not JSON") from None
    if not isinstance(request, dict):
        raise ControlError("request is not a JSON object")
    return request


async def _send(stream: trio.SocketStream, message: Json) -> None:
    await stream.send_all(json.dumps(message).encode() + b"\n")


# ---- the client ----------------------------------------------------------------------------


def call(
    socket_path: Path,
    request: Json,
    *,
    progress: Callable[[Json], None] | None = None,
    timeout: float | None = 30.0,
) -> Json:
    """Send ``request`` to the mount listening at ``socket_path``; return its final answer.

    ``timeout`` bounds the wait for each line, so a long ``sync`` that keeps reporting progress
    is never cut short. Raises ``ControlError`` when nobody answers.
    """
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        try:
            sock.connect(str(socket_path))
            sock.sendall(json.dumps(request).encode() + b"\n")
            reader = sock.makefile("rb")
            for raw in reader:
                message = json.loads(raw)
                if "progress" in message:
                    if progress is not None:
                        progress(message["progress"])
                    continue
                if message.get("refused"):
                    raise ControlError(str(message["error"]))
                return dict(message)
        except (FileNotFoundError, ConnectionRefusedError):
            raise ControlError(f"the mount does not answer at {socket_path}") from None
        except TimeoutError:
            raise ControlError(f"the mount did not answer within {timeout:g} s") from None
        except ValueError:
            raise ControlError("the mount sent an answer that is not JSON") from None
    raise ControlError("the mount closed the connection without an answer")
