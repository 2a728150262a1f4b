"""The mount daemon: builds backend, caches and vfs, owns the one trio nursery, and shuts down.

``serve`` logs in, mounts, reports readiness (to a parent waiting on a pipe for ``--daemon``,
and to systemd through ``NOTIFY_SOCKET``), serves kernel requests until SIGINT/SIGTERM or an
external ``fusermount3 -u``, then unmounts and closes the HTTP client.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import signal
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pyfuse3
import trio

from docfs import errors
from docfs.backends._http import HttpClient, Limits
from docfs.backends.base import Backend, Credentials
from docfs.fuse_ops import FuseOperations
from docfs.redact import Redactor
from docfs.registry import backend_class
from docfs.vfs.content import ContentCache
from docfs.vfs.filesystem import Filesystem, Options

log = logging.getLogger("docfs.daemon")


@dataclass
class MountConfig:
    remote_type: str
    url: str
    mountpoint: Path
    credentials: Credentials = field(default_factory=Credentials)
    cache_dir: Path = field(default_factory=lambda: default_cache_dir())
    cache_size: int = 10 << 30
    options: Options = field(default_factory=Options)
    timeout: float = 30.0
    concurrency: int | None = None
    requests_per_second: float | None = None

    @property
    def namespace(self) -> str:
        """Cache sub-directory of this remote: type, host and a hash of URL and user."""
        digest = hashlib.sha256(f"{self.url}\0{self.credentials.user or ''}".encode())
        host = self.url.split("://", 1)[-1].split("/", 1)[0].replace(":", "_")
        return f"{self.remote_type}-{host}-{digest.hexdigest()[:10]}"


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "docfs"


def build_backend(config: MountConfig, redactor: Redactor) -> Backend:
    cls = backend_class(config.remote_type)
    defaults = cls.default_limits
    limits = Limits(
        requests_per_second=config.requests_per_second or defaults.requests_per_second,
        burst=defaults.burst,
        concurrency=config.concurrency or defaults.concurrency,
        timeout=config.timeout,
    )
    http = HttpClient(config.url, limits=limits, redactor=redactor)
    return cls(http, config.credentials)


def notify_systemd(message: str) -> None:
    """Send ``message`` (e.g. ``READY=1``) to systemd if it started us as Type=notify."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return
    if address.startswith("@"):
        address = "\0" + address[1:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        try:
            sock.connect(address)
            sock.sendall(message.encode())
        except OSError as exc:
            log.warning("could not notify systemd: %s", exc)


def runtime_dir() -> Path:
    base = os.environ.get("XDG_RUNTIME_DIR") or f"/tmp/docfs-{os.getuid()}"
    path = Path(base) / "docfs"
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


def state_file(mountpoint: Path) -> Path:
    """Where a running daemon says who it is (read by ``docfs unmount``)."""
    digest = hashlib.sha256(str(mountpoint).encode()).hexdigest()[:16]
    return runtime_dir() / f"mount-{digest}.json"


class Stopper:
    """SIGINT/SIGTERM: the first unmounts; one during the final upload drain abandons it
    (the queue stays on disk and resumes at the next mount)."""

    def __init__(self) -> None:
        self.unmounting = False
        self.drain = trio.CancelScope()

    async def watch(self) -> None:
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM, signal.SIGHUP) as signals:
            async for signum in signals:
                name = signal.Signals(signum).name
                if not self.unmounting:
                    log.info("got %s: unmounting", name)
                    self.unmounting = True
                    pyfuse3.terminate()
                else:
                    log.warning("got %s: leaving the remaining uploads queued for next time", name)
                    self.drain.cancel()


async def _drain(fs: Filesystem, stopper: Stopper) -> None:
    """Upload what the write-back queue still holds before exiting."""
    wb = fs.writeback
    if wb is None or not wb.pending():
        return
    log.info("waiting for %d queued uploads (Ctrl-C again to leave them queued)", wb.pending())

    def progress(left: int) -> None:
        log.info("uploads left: %d", left)

    with stopper.drain:
        await wb.drain(progress)
    if wb.pending():
        log.warning("%d uploads stay queued in %s", wb.pending(), wb.dir)
    else:
        log.info("all queued uploads are done")


async def serve(
    config: MountConfig, redactor: Redactor, ready: Callable[[], None] | None = None
) -> None:
    """Mount and serve until unmounted or signalled."""
    backend = build_backend(config, redactor)
    try:
        await backend.connect()
        root = await backend.root()
        cache_root = config.cache_dir / config.namespace
        cache_root.mkdir(parents=True, exist_ok=True)
        content = ContentCache(cache_root, config.cache_size, config.namespace)
        fs = Filesystem(backend, root, content, config.options)
        ops = FuseOperations(fs)
        fuse_options = set(pyfuse3.default_options)
        fuse_options |= {f"fsname=docfs-{config.remote_type}", "subtype=docfs", "noatime"}
        if config.options.read_only:
            fuse_options.add("ro")
        try:
            pyfuse3.init(ops, str(config.mountpoint), fuse_options)
        except RuntimeError as exc:
            raise errors.DocfsError(f"cannot mount on {config.mountpoint}: {exc}") from None
        log.info("mounted %s at %s", config.remote_type, config.mountpoint)
        state = state_file(config.mountpoint)
        state.write_text(
            json.dumps(
                {
                    "pid": os.getpid(),
                    "mountpoint": str(config.mountpoint),
                    "remote": f"{config.remote_type}:{config.url}",
                    "cache": str(cache_root),
                    "queue": str(fs.writeback.dir) if fs.writeback else None,
                }
            )
        )
        mounted = True
        try:
            async with trio.open_nursery() as nursery:
                fs.start(nursery)
                stopper = Stopper()
                nursery.start_soon(stopper.watch)
                if ready is not None:
                    ready()
                notify_systemd("READY=1")
                await pyfuse3.main(min_tasks=4, max_tasks=64)
                notify_systemd("STOPPING=1")
                stopper.unmounting = True
                pyfuse3.close(unmount=True)
                mounted = False
                log.info("unmounted %s", config.mountpoint)
                await _drain(fs, stopper)
                nursery.cancel_scope.cancel()
        finally:
            if mounted:
                pyfuse3.close(unmount=True)
                log.info("unmounted %s", config.mountpoint)
            state.unlink(missing_ok=True)
            fs.attrs.close()
    finally:
        await backend.aclose()
