"""Mounts under test: the docfs daemon and the do-nothing filesystem, each a subprocess.

Started as in ``tests/fuse/conftest.py`` (``python -m docfs mount`` in the foreground, ready once
the mount point is a mount), but at docfs's default log level — the product as shipped — and with
the daemon's pid at hand for its CPU seconds, RSS, and an optional py-spy profile.
"""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from tests.bench.emulator import PASSWORD, USER
from tests.bench.measure import cpu_seconds, rss_bytes


class MountProcess:
    """A FUSE daemon in a subprocess, mounted at ``path``."""

    def __init__(self, path: Path, log: Path) -> None:
        self.path = path
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def _spawn(self, argv: list[str], env: dict[str, str]) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(argv, env=env, stdout=log, stderr=log)
        deadline = time.monotonic() + 30
        while not os.path.ismount(self.path):
            if self.proc.poll() is not None:
                raise RuntimeError(f"{' '.join(argv[:4])} exited early:\n{self.log_tail()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"mount did not appear:\n{self.log_tail()}")
            time.sleep(0.02)

    def log_tail(self, chars: int = 3000) -> str:
        return self.log.read_text(errors="replace")[-chars:]

    def cpu(self) -> float:
        return cpu_seconds(self.pid)

    def rss(self) -> int:
        return rss_bytes(self.pid)

    def stop(self) -> None:
        if self.proc is None:
            return
        subprocess.run(["fusermount3", "-u", str(self.path)], check=False, capture_output=True)
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)
            subprocess.run(
                ["fusermount3", "-u", "-z", str(self.path)], check=False, capture_output=True
            )
        self.proc = None

    def __enter__(self) -> MountProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


@dataclass(frozen=True)
class Experiment:
    """Changes to the docfs side only, to measure a proposed optimisation before making it.

    ``read_ahead_kb`` raises the kernel read-ahead of the docfs mount (its BDI), which makes the
    kernel send 1 MiB reads instead of 128 KiB ones; ``no_fsync`` runs the daemon under
    ``eatmydata`` (fsync becomes a no-op), which shows what group-committed or off-loop
    fsyncs could gain. Neither is what docfs does today: a table made with them says so.
    """

    read_ahead_kb: int | None = None
    no_fsync: bool = False

    def describe(self) -> str:
        parts = []
        if self.read_ahead_kb:
            parts.append(f"docfs mounts with read_ahead_kb={self.read_ahead_kb}")
        if self.no_fsync:
            parts.append("docfs daemon under eatmydata (no fsync)")
        return "; ".join(parts)


def other_xattr_errno(path: Path) -> int:
    """What ``path``'s filesystem answers for an attribute it does not have (not user.*)."""
    try:
        os.getxattr(path, "security.selinux", follow_symlinks=False)
    except OSError as exc:
        return exc.errno or errno.ENODATA
    return errno.ENODATA


def set_read_ahead(path: Path, kib: int) -> None:
    """Set the kernel read-ahead of the filesystem mounted at ``path`` (root only)."""
    dev = os.stat(path).st_dev
    bdi = Path(f"/sys/class/bdi/{os.major(dev)}:{os.minor(dev)}/read_ahead_kb")
    bdi.write_text(f"{kib}\n")


class DocfsMount(MountProcess):
    """``docfs mount <remote> <path>`` with the benchmark account from the environment."""

    def __init__(
        self,
        remote: str,
        path: Path,
        cache: Path,
        *extra: str,
        experiment: Experiment | None = None,
    ) -> None:
        super().__init__(path, cache.parent / f"daemon-{path.name}.log")
        self.remote, self.cache, self.extra = remote, cache, extra
        self.experiment = experiment or Experiment()

    def start(self) -> DocfsMount:
        env = dict(os.environ, DOCFS_USER=USER, DOCFS_PASSWORD=PASSWORD)
        wrapper = ["eatmydata"] if self.experiment.no_fsync else []
        argv = [
            *wrapper,
            sys.executable,
            "-m",
            "docfs",
            "mount",
            self.remote,
            str(self.path),
            "--cache-dir",
            str(self.cache),
            *self.extra,
        ]
        self._spawn(argv, env)
        if self.experiment.read_ahead_kb:
            set_read_ahead(self.path, self.experiment.read_ahead_kb)
        return self

    def wait_downloads(self, timeout: float = 300.0) -> None:
        """Until no download is in flight (no ``.part`` file in the cache): a download is
        verified and kept after its last byte was read, and that work must be neither left
        out of the daemon's CPU nor overlap the baseline timed next."""
        deadline = time.monotonic() + timeout
        while any(self.cache.rglob("content/*.part")):
            if time.monotonic() > deadline:
                raise RuntimeError(f"downloads of {self.path} still in flight after {timeout} s")
            time.sleep(0.005)


class NullMount(MountProcess):
    """The do-nothing filesystem (``tests/bench/nullfs.py``)."""

    def __init__(
        self,
        path: Path,
        log: Path,
        *,
        file_size: int = 0,
        entries: int = 0,
        other_xattr_errno: int = errno.ENODATA,
    ) -> None:
        super().__init__(path, log)
        self.file_size, self.entries = file_size, entries
        self.other_xattr_errno = other_xattr_errno

    def start(self) -> NullMount:
        argv = [
            sys.executable,
            "-m",
            "tests.bench.nullfs",
            str(self.path),
            "--file-size",
            str(self.file_size),
            "--entries",
            str(self.entries),
            "--other-xattr-errno",
            str(self.other_xattr_errno),
        ]
        env = dict(os.environ)
        env.pop("DOCFS_PASSWORD", None)
        self._spawn(argv, env)
        return self
