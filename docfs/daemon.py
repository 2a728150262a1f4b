"""The mount daemon: builds backend, caches and vfs, owns the one trio nursery, and shuts down.

``serve`` logs in, finds the root (a sub-path of the remote if asked), mounts, opens the control
socket (``docfs status``, ``sync``, ``refresh``), and reports readiness once the mount answers a
``stat`` (to a parent waiting on a pipe for ``--daemon``, and to systemd with ``READY=1`` through
``NOTIFY_SOCKET``). It serves kernel requests until SIGINT/SIGTERM or an external
``fusermount3 -u``, then tells systemd ``STOPPING=1``, unmounts, uploads what the write-back
queue still holds (extending systemd's stop timeout while it makes progress) and closes the
HTTP client.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import re
import shutil
import signal
import socket
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyfuse3
import trio

from docfs import errors
from docfs.backends._http import HttpClient, Limits, rolling_window_bucket
from docfs.backends.base import Backend, Credentials, Entry
from docfs.control import ControlServer
from docfs.fuse_ops import FuseOperations
from docfs.options import default
from docfs.redact import Redactor
from docfs.registry import backend_class, remote_type
from docfs.vfs.content import ContentCache
from docfs.vfs.filesystem import Filesystem, Options
from docfs.vfs.names import assign_names
from docfs.vfs.thumbnails import DEFAULT_FILE_MANAGERS, ThumbnailWriter

log = logging.getLogger("docfs.daemon")


@dataclass
class MountConfig:
    remote_type: str
    url: str
    mountpoint: Path
    credentials: Credentials = field(default_factory=Credentials)
    cache_dir: Path = field(default_factory=lambda: default_cache_dir())
    cache_size: int = field(default_factory=lambda: default("cache_size"))
    #: evict content not read for this many seconds; keep this many bytes free (issue 22)
    cache_max_age: float | None = None
    cache_min_free: int = 0
    options: Options = field(default_factory=Options)
    timeout: float = field(default_factory=lambda: default("timeout"))
    concurrency: int | None = None
    requests_per_second: float | None = None
    #: mount this directory of the remote (``/Community/Collection``) instead of its root
    sub_path: str | None = None
    #: the configured remote's name, shown by ``docfs status``
    name: str | None = None
    #: other users may use the mount (the kernel still checks the modes: default_permissions)
    allow_other: bool = False
    #: verify the server's TLS certificate (against the system's CAs plus ``ca_bundle``)
    verify_tls: bool = True
    ca_bundle: Path | None = None
    #: the kernel's read-ahead for this mount in bytes (0: leave the kernel's 128 KiB). More
    #: helps bulk sequential reads, but the first read of a cold file then waits for more bytes
    read_ahead: int = 0
    #: write the repository's thumbnails into the freedesktop thumbnail cache on listings
    thumbnails: bool = False
    #: further kernel mount options (``nodev``, ``noexec``…) from ``-o``
    fuse_options: frozenset[str] = frozenset()
    #: keyword arguments for the backend class (its type's own options, a token file…)
    backend_options: dict[str, Any] = field(default_factory=dict)
    #: bytes per second for downloads and uploads together (``--bwlimit``); None: no limit
    bwlimit: int | None = None

    @property
    def namespace(self) -> str:
        """Cache sub-directory of this remote: type, host and a hash of URL, user (and sub-path).

        A sub-path mount gets its own namespace: two daemons must never share one write-back
        queue, and a mount of the whole remote may run next to it.
        """
        key = f"{self.url}\0{self.credentials.user or ''}"
        if self.sub_path:
            key += f"\0{self.sub_path}"
        digest = hashlib.sha256(key.encode())
        host = self.url.split("://", 1)[-1].split("/", 1)[0].replace(":", "_")
        return f"{self.remote_type}-{host}-{digest.hexdigest()[:10]}"

    @property
    def log_name(self) -> str:
        """The ``--daemon`` log's file name: ``<remote>.log`` after the configured remote's name
        (two remotes of one URL keep their lines apart), the namespace for ``TYPE:URL``; a
        sub-path mount, which may run next to the whole remote's, gets its own."""
        if self.name is None:
            return f"{self.namespace}.log"
        if not self.sub_path:
            return f"{self.name}.log"
        slug = re.sub(r"[^A-Za-z0-9._-]+", "_", self.sub_path.strip("/"))[:40]
        digest = hashlib.sha256(self.sub_path.encode()).hexdigest()[:6]
        return f"{self.name}-{slug}-{digest}.log"

    @property
    def remote(self) -> str:
        return f"{self.remote_type}:{self.url}"


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "docfs"


def build_backend(config: MountConfig, redactor: Redactor) -> Backend:
    rtype = remote_type(config.remote_type)
    cls = backend_class(config.remote_type)
    defaults = cls.default_limits
    implied = rtype.limits(config.backend_options) if rtype.limits is not None else None
    if implied is not None:
        # the type's options may know the server's limits better than the class default
        defaults = implied
    rate, burst = defaults.requests_per_second, defaults.burst
    if config.requests_per_second:
        # a configured requests_per_minute is the server's limit: it must hold in every
        # rolling minute, the bucket's burst included
        paced = rolling_window_bucket(config.requests_per_second * 60, 60.0, defaults.burst)
        rate, burst = paced.requests_per_second, paced.burst
    limits = Limits(
        requests_per_second=rate,
        burst=burst,
        concurrency=config.concurrency or defaults.concurrency,
        timeout=config.timeout,
        bandwidth=config.bwlimit or None,
    )
    http = HttpClient(
        config.url,
        limits=limits,
        redactor=redactor,
        verify=config.verify_tls,
        ca_bundle=config.ca_bundle,
    )
    return cls(http, config.credentials, **config.backend_options)


async def connect_backend(backend: Backend, kind: str) -> None:
    """``backend.connect()``, with a 404 to the first requests said as what it nearly always
    is: a URL that is not the repository's API (a missing ``/rest``, a path too many)."""
    try:
        await backend.connect()
    except errors.NotFound as exc:
        hint = remote_type(kind).wrong_url
        if exc.status != 404 or exc.url is None or not hint:
            raise
        raise errors.DocfsError(f"{exc.url} answered 404: {hint}") from None


async def resolve_root(backend: Backend, sub_path: str | None) -> Entry:
    """The entry a mount shows as its root: the remote's root, or the directory at ``sub_path``.

    Each step lists one directory and matches the names the mount would show (sanitised and
    de-duplicated exactly as the filesystem names them), so a path copied from a full mount of
    the same remote works here.
    """
    entry = await backend.root()
    walked = ""
    for part in (p for p in (sub_path or "").split("/") if p):
        children = [e async for e in backend.list_dir(entry)]
        named = assign_names(children, ((e.name, e.id) for e in children))
        child = named.get(part)
        if child is None:
            near = ", ".join(sorted(named)[:10]) or "nothing"
            raise errors.NotFound(f"{walked or '/'} has no {part!r} (it holds: {near})")
        walked += "/" + part
        if not child.is_dir:
            raise errors.NotADirectory(f"{walked} is a file, not a directory")
        entry = child
    return entry


def fuse_problem(
    device: Path = Path("/dev/fuse"),
    which: Callable[[str], str | None] = shutil.which,
    can_open: Callable[[Path], bool] = lambda path: os.access(path, os.R_OK | os.W_OK),
) -> str | None:
    """Why this system cannot mount FUSE filesystems, or None. Checked before connecting, so
    that a user without access learns it before the login, not from fuse_session_mount."""
    if not device.exists():
        return (
            f"{device} is missing: load the kernel module (modprobe fuse), or in a container "
            "pass the device in (docker run --device /dev/fuse --cap-add SYS_ADMIN)"
        )
    if not can_open(device):
        try:
            import grp

            group = grp.getgrgid(device.stat().st_gid).gr_name
        except (KeyError, OSError):
            group = "fuse"
        return (
            f"you may not open {device}: add yourself to its group "
            f"(sudo usermod -aG {group} $USER, then log in again) or ask an administrator "
            f"to make it usable (chmod 666 {device} is the usual setting)"
        )
    if which("fusermount3") is None:
        return "fusermount3 is missing: install FUSE 3 (apt-get install fuse3, dnf install fuse3)"
    return None


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


RUNTIME_ENV = "DOCFS_RUNTIME_DIR"


def runtime_dir() -> Path:
    """Where state files and control sockets live.

    ``DOCFS_RUNTIME_DIR`` if set; for root always ``/run/docfs``, so that a mount started from
    fstab at boot (no ``XDG_RUNTIME_DIR``) and ``docfs status`` in a login shell (with one) meet
    in the same place; else ``$XDG_RUNTIME_DIR/docfs``; else a private directory in /tmp, which
    must be ours and closed to others (anyone can create a name in /tmp first).
    """
    explicit = os.environ.get(RUNTIME_ENV)
    if explicit:
        path = Path(explicit)
    elif os.getuid() == 0 and os.access("/run", os.W_OK):
        path = Path("/run/docfs")
    elif os.environ.get("XDG_RUNTIME_DIR"):
        path = Path(os.environ["XDG_RUNTIME_DIR"]) / "docfs"
    else:
        base = Path(f"/tmp/docfs-{os.getuid()}")
        base.mkdir(mode=0o700, exist_ok=True)
        _check_private(base)
        path = base / "docfs"
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    _check_private(path)
    return path


#: what the mount process creates (cache, staging, lost+found, queue, log, state, socket) is
#: its user's alone, whatever umask it was started with; files on the mount are not affected:
#: their modes come from the kernel, already masked by the calling program's umask
PRIVATE_UMASK = 0o077


def keep_private(path: Path) -> None:
    """Close a directory docfs keeps its data in to other users, if it is ours."""
    with contextlib.suppress(OSError):
        info = path.stat()
        if info.st_uid == os.getuid() and stat.S_IMODE(info.st_mode) & 0o077:
            path.chmod(stat.S_IMODE(info.st_mode) & 0o700)


def _check_private(path: Path) -> None:
    info = path.lstat()
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid():
        raise errors.DocfsError(f"{path} is not a directory of ours: refusing to use it")
    if stat.S_IMODE(info.st_mode) & 0o077:
        path.chmod(0o700)


def state_file(mountpoint: Path) -> Path:
    """Where a running daemon says who it is (read by ``docfs unmount`` and ``docfs status``)."""
    digest = hashlib.sha256(str(mountpoint).encode()).hexdigest()[:16]
    return runtime_dir() / f"mount-{digest}.json"


def control_socket(mountpoint: Path) -> Path:
    """The control socket of the mount at ``mountpoint`` (see ``docfs.control``)."""
    return state_file(mountpoint).with_suffix(".sock")


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


#: how much longer systemd should wait for the stop, granted again while uploads progress
STOP_EXTENSION_USEC = 90_000_000


async def _drain(fs: Filesystem, stopper: Stopper) -> None:
    """Upload what the write-back queue still holds before exiting."""
    wb = fs.writeback
    if wb is None or not wb.pending():
        return
    log.info("waiting for %d queued uploads (Ctrl-C again to leave them queued)", wb.pending())
    last = -1

    def progress(left: int) -> None:
        nonlocal last
        if left != last:
            log.info("uploads left: %d", left)
            # systemd would kill a stop that outlives TimeoutStopSec: ask for more time, but
            # only while the queue is shrinking, so a stuck upload still ends in a kill
            notify_systemd(
                f"STATUS=uploading: {left} left\nEXTEND_TIMEOUT_USEC={STOP_EXTENSION_USEC}"
            )
            last = left

    with stopper.drain:
        await wb.drain(progress)
    # what stays queued must be on disk before the daemon goes
    await wb.sync()
    if wb.pending():
        log.warning("%d uploads stay queued in %s", wb.pending(), wb.dir)
    else:
        log.info("all queued uploads are done")


def fuse_options(config: MountConfig) -> set[str]:
    options = set(pyfuse3.default_options)  # default_permissions: the kernel checks modes
    # a repository holds documents, never devices or set-uid programs, whoever mounts it
    options |= {f"fsname=docfs-{config.remote_type}", "subtype=docfs", "noatime"}
    options |= {"nosuid", "nodev"}
    if config.options.read_only:
        options.add("ro")
    if config.allow_other:
        options.add("allow_other")
    return options | set(config.fuse_options)


def _identity(config: MountConfig, cache_root: Path) -> dict[str, Any]:
    return {
        "pid": os.getpid(),
        "mountpoint": str(config.mountpoint),
        "remote": config.remote,
        "name": config.name,
        "sub_path": config.sub_path,
        "cache_dir": str(cache_root),
    }


def set_read_ahead(mountpoint: Path, size: int) -> None:
    """Raise the kernel's read-ahead of the mount (its BDI in sysfs).

    With the kernel's default of 128 KiB a sequential reader reaches the daemon as 128 KiB
    requests, each a round trip through the trio thread; larger ones save daemon CPU per byte
    read, but a cold file's first read then waits for more of its bytes (benchmark B8: +7-14 ms
    at 256 KiB-1 MiB), so it is an option, off by default. Only root may write the setting:
    others keep the default (one debug line).
    """
    if size <= 0:
        return
    dev = os.stat(mountpoint).st_dev
    knob = Path(f"/sys/class/bdi/{os.major(dev)}:{os.minor(dev)}/read_ahead_kb")
    try:
        knob.write_text(str(max(4, size >> 10)))
    except OSError as exc:
        log.debug("kernel read-ahead of %s left as it is: %s", mountpoint, exc.strerror)


async def _announce(
    mountpoint: Path, ready: Callable[[], None] | None, read_ahead: int = 0
) -> None:
    """Say "ready" once the mount answers: a ``stat`` of its root has made the round trip."""
    # the stat blocks until the kernel's FUSE_INIT and GETATTR are served by pyfuse3.main in
    # this very process, so it runs in a thread; abandoned if the mount ends first
    await trio.to_thread.run_sync(os.stat, mountpoint, abandon_on_cancel=True)
    await trio.to_thread.run_sync(set_read_ahead, mountpoint, read_ahead, abandon_on_cancel=True)
    log.info("mount at %s answers", mountpoint)
    if ready is not None:
        ready()
    notify_systemd("READY=1")


async def serve(
    config: MountConfig, redactor: Redactor, ready: Callable[[], None] | None = None
) -> None:
    """Mount and serve until unmounted or signalled."""
    cache_root = config.cache_dir / config.namespace
    with lock_cache(cache_root):
        await _serve(config, redactor, ready)


@contextlib.contextmanager
def lock_cache(cache_root: Path) -> Iterator[None]:
    """Hold the remote's cache directory (content, staging, write-back queue) for this mount.

    Two daemons sharing one cache index and one write-back queue would upload each other's
    queued files and evict each other's open files; the second mount is refused while the
    first holds the lock (the kernel drops it when the holder dies, so a crash leaves none).
    """
    cache_root.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = cache_root / "mount.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown"
            raise errors.DocfsError(
                f"another docfs mount (pid {holder}) of this remote uses the cache {cache_root}: "
                "two mounts must not share one cache and write-back queue; unmount that one "
                "first (docfs status lists it), or give this one another --cache-dir"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)


async def _serve(
    config: MountConfig, redactor: Redactor, ready: Callable[[], None] | None = None
) -> None:
    backend = build_backend(config, redactor)
    try:
        await connect_backend(backend, config.remote_type)
        root = await resolve_root(backend, config.sub_path)
        cache_root = config.cache_dir / config.namespace
        cache_root.mkdir(parents=True, exist_ok=True)
        # made before the umask was ours, or by an older docfs: close them to others (18.4)
        keep_private(cache_root)
        if config.cache_dir == default_cache_dir():
            keep_private(config.cache_dir)
        content = ContentCache(
            cache_root,
            config.cache_size,
            config.namespace,
            max_age=config.cache_max_age,
            min_free=config.cache_min_free,
        )
        fs = Filesystem(backend, root, content, config.options)
        if config.thumbnails and ThumbnailWriter.supported(backend):
            managers = config.options.file_managers
            fs.thumbnails = ThumbnailWriter(
                fs,
                config.mountpoint,
                file_managers=DEFAULT_FILE_MANAGERS if managers is None else managers,
            )
        ops = FuseOperations(fs)
        try:
            pyfuse3.init(ops, str(config.mountpoint), fuse_options(config))
        except RuntimeError as exc:
            raise errors.DocfsError(f"cannot mount on {config.mountpoint}: {exc}") from None
        log.info("mounted %s%s at %s", config.remote, config.sub_path or "", config.mountpoint)
        state = state_file(config.mountpoint)
        mounted = True
        try:
            identity = _identity(config, cache_root)
            control = ControlServer(fs, control_socket(config.mountpoint), identity)
            queue = str(fs.writeback.dir) if fs.writeback else None
            state.write_text(json.dumps({**identity, "queue": queue, "control": str(control.path)}))
            async with trio.open_nursery() as nursery:
                fs.start(nursery)
                stopper = Stopper()
                nursery.start_soon(stopper.watch)
                await nursery.start(control.serve)
                nursery.start_soon(_announce, config.mountpoint, ready, config.read_ahead)
                await pyfuse3.main(min_tasks=4, max_tasks=64)
                notify_systemd("STOPPING=1")
                stopper.unmounting = True
                pyfuse3.close(unmount=True)
                mounted = False
                log.info("unmounted %s", config.mountpoint)
                await _drain(fs, stopper)
                await fs.backend.settle()  # e.g. deposit submissions (see the backend's docstring)
                nursery.cancel_scope.cancel()
        finally:
            if mounted:
                pyfuse3.close(unmount=True)
                log.info("unmounted %s", config.mountpoint)
            state.unlink(missing_ok=True)
            fs.attrs.close()
            fs.dates.close()
    finally:
        await backend.aclose()
