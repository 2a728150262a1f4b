"""File managers and docfs: the repository's thumbnails, and a guard against thumbnailers.

A file manager that shows a folder asks for a thumbnail of every file. It first looks in the
freedesktop thumbnail cache (the Thumbnail Managing Standard: ``$XDG_CACHE_HOME/thumbnails/
normal|large/<md5 of the file's URI>.png``, a PNG whose ``Thumb::URI`` and ``Thumb::MTime`` text
chunks must match the file); only when nothing valid is there does it run a thumbnailer, which
reads the original, often whole. On a mount that is a download of every file of the folder.

``ThumbnailWriter``: when a file manager (by ``/proc/PID/comm`` of the process that opens the
directory: ``DEFAULT_FILE_MANAGERS``) lists a directory, the repository's own thumbnails
(DSpace's THUMBNAIL bundle, DocSpace's ``thumbnailUrl``) are fetched in the background,
converted to PNG and written to that cache for the files as the mount shows them (the URI of the
mounted path, the mtime the mount reports), so the file manager finds them and never opens the
originals. Which files have a thumbnail comes with the listing (``Entry.thumbnail``): a listing
costs what it cost before, and only the thumbnails themselves are requests. ``find``, ``rsync``,
``du`` and other walks are no file manager: they cost no thumbnail at all. Bounded: one
directory at a time per mount, a few transfers at once, thumbnails already valid in the cache
are not fetched again, and a failure costs one debug line.

``ThumbnailerGuard``: when a known thumbnailer or indexer (by ``/proc/PID/comm``) opens a large
file whose bytes are neither in the content cache nor on their way (a whole-file download that
runs for another reader, every block of a ranged one), the open is refused at once (EACCES), so
a thumbnail costs no download; thumbnailers treat that as "no thumbnail" and remember the
failure.

FUSE gives the id of the calling *thread*; GLib and KIO list and read in worker threads, whose
names are not the program's, so a name matches the thread or the process it belongs to.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
import urllib.parse
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import trio

from docfs import errors
from docfs.backends.base import Backend, Thumbnail
from docfs.vfs import imagecodec

if TYPE_CHECKING:
    from docfs.vfs.inodes import Node
    from docfs.vfs.state import MountState

log = logging.getLogger("docfs.thumbnails")

#: process names (``/proc/PID/comm``, at most 15 characters) of programs that read files only
#: to make thumbnails or index them: GNOME, Xfce (tumbler) and KDE thumbnailers, and indexers
DEFAULT_THUMBNAILERS: tuple[str, ...] = (
    "tumblerd",
    "gdk-pixbuf-thum",  # gdk-pixbuf-thumbnailer, cut to 15 characters by the kernel
    "evince-thumbnai",
    "gsf-office-thum",
    "ffmpegthumbnail",
    "totem-video-thu",
    "gnome-thumbnail",
    "atril-thumbnail",
    "xreader-thumbna",
    "thumbnail.so",
    "thumbnailer",
    "kioworker",
    "kioslave5",
    "tracker-extract",
    "tracker-miner-f",
    "localsearch-ext",
    "baloo_file_extr",
    "baloo_file",
)
#: process names (``/proc/PID/comm``) of programs whose directory listings are a person looking
#: at the files, so the repository's thumbnails are written for them. Each lists in its own
#: process (GIO enumerates local and FUSE paths in the caller, GtkFileChooser too; KIO runs its
#: file worker as a thread of the application, or as ``kioworker``/``kioslave5`` elsewhere)
DEFAULT_FILE_MANAGERS: tuple[str, ...] = (
    "nautilus",  # GNOME Files
    "nemo",  # Cinnamon
    "nemo-desktop",
    "caja",  # MATE
    "thunar",  # Xfce
    "pcmanfm",  # LXDE
    "pcmanfm-qt",  # LXQt
    "dolphin",  # KDE
    "konqueror",
    "kioworker",  # KF6 out-of-process worker
    "kioslave5",  # KF5 out-of-process worker
    "xdg-desktop-por",  # xdg-desktop-portal-gtk/-gnome/-kde: the sandboxed file chooser
    "xfdesktop",
    "spacefm",
)
#: ``--thumbnail-max`` default where the backend streams whole files (no byte ranges)
DEFAULT_MAX_NO_RANGES = 10 << 20
#: the default where the backend has byte ranges: a thumbnailer may then read only part of a
#: file (a PDF's last and first pages), but image thumbnailers read every byte anyway
DEFAULT_MAX_RANGES = 16 << 20

#: the standard's sizes: directory name → longest side
SIZES = (("normal", 128), ("large", 256))
#: thumbnails fetched at once per mount
TRANSFERS = 3


def comm_name(name: str) -> str:
    """A program name as ``/proc/PID/comm`` shows it (the kernel keeps 15 bytes)."""
    return name.encode()[:15].decode(errors="ignore")


def process_name(pid: int) -> str | None:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return None  # gone already, or another PID namespace


def _thread_group(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("Tgid:"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return None


def known_name(pid: int, names: frozenset[str]) -> str | None:
    """The name in ``names`` of thread ``pid`` or of the process it belongs to, if any.

    FUSE reports the calling thread; GLib's worker threads are called ``pool-…`` or
    ``gdbus``, so the program's name is the thread group leader's ``comm``."""
    name = process_name(pid)
    if name is None:
        return None
    if name in names:
        return name
    group = _thread_group(pid)
    if group is None or group == pid:
        return None
    leader = process_name(group)
    return leader if leader in names else None


#: how long ``ProcessNames`` trusts what /proc said of a caller: a walk sends thousands of FUSE
#: requests a second from one process; a program that execs another one (a shell that runs
#: ``find``) is seen under its new name this long after at most
CALLER_TTL = 1.0
#: callers remembered at most (older ones are dropped first)
CALLERS_KEPT = 256


class ProcessNames:
    """``known_name`` for the callers of FUSE requests, with what /proc said of each kept for
    ``CALLER_TTL``: reading ``comm`` and ``status`` for every opendir of a walk was an eighth
    of the daemon's CPU time in a ``find`` of 5,000 directories (README, "Benchmarks", B10)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        #: pid → (when read, its name, its thread group leader's name if another thread's)
        self._seen: dict[int, tuple[float, str | None, str | None]] = {}

    def known(self, pid: int, names: frozenset[str]) -> str | None:
        """The name in ``names`` of thread ``pid`` or of the process it belongs to, if any."""
        now = self._clock()
        seen = self._seen.get(pid)
        if seen is None or now - seen[0] >= CALLER_TTL:
            name = process_name(pid)
            group = _thread_group(pid) if name is not None else None
            leader = process_name(group) if group is not None and group != pid else None
            seen = (now, name, leader)
            self._seen.pop(pid, None)  # re-inserted last: the dict keeps the oldest first
            self._seen[pid] = seen
            if len(self._seen) > CALLERS_KEPT:
                del self._seen[next(iter(self._seen))]
        _, name, leader = seen
        if name in names:
            return name
        return leader if leader in names else None


@dataclass
class ThumbnailerGuard:
    """Refuses opens of large uncached files by thumbnailers and indexers."""

    limit: int
    names: frozenset[str]

    @classmethod
    def build(cls, limit: int | None, names: Iterable[str], ranges: bool) -> ThumbnailerGuard:
        if limit is None:
            limit = DEFAULT_MAX_RANGES if ranges else DEFAULT_MAX_NO_RANGES
        return cls(limit, frozenset(comm_name(n) for n in names))

    def refusal(self, fs: MountState, ino: int, pid: int) -> str | None:
        """Why this open is refused (one log line), or None to let it through."""
        if self.limit <= 0 or not self.names:
            return None
        node = fs.inodes.find(ino)
        if node is None or node.is_dir or node.staged is not None or node.local:
            return None
        size = node.entry.size or 0
        if size <= self.limit or fs.content.arriving(node.entry):
            # cached, or every byte comes anyway: reading costs no transfer of its own
            return None
        name = known_name(pid, self.names)
        if name is None:
            return None
        return (
            f"{name} (pid {pid}) may not open {fs.path(node)} ({size} bytes, not cached): "
            f"thumbnailers and indexers are refused files over --thumbnail-max {self.limit}"
        )


def thumbnail_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "thumbnails"


def file_uri(path: str) -> str:
    """``file://`` URI of an absolute path, escaped as GLib's ``g_filename_to_uri`` does."""
    return "file://" + urllib.parse.quote(os.fsencode(path), safe="/!$&'()*+,:=@~")


def cache_name(uri: str) -> str:
    return hashlib.md5(uri.encode()).hexdigest() + ".png"


def is_valid(path: Path, uri: str, mtime: int) -> bool:
    """A cached thumbnail the file managers would accept for this URI and mtime."""
    try:
        text = imagecodec.png_text(path.read_bytes())
    except (OSError, imagecodec.Unsupported):
        return False
    return text.get("Thumb::URI") == uri and text.get("Thumb::MTime") == str(mtime)


@dataclass(frozen=True)
class Wanted:
    """A file of a listed directory as the mount shows it."""

    entry_id: str
    uri: str
    mtime: int
    size: int
    #: the file's ``Entry.thumbnail``: what ``Backend.thumbnail_data`` fetches
    ref: str


class ThumbnailWriter:
    """Writes a directory's repository thumbnails into the freedesktop cache when a file manager
    lists it."""

    def __init__(
        self,
        fs: MountState,
        mountpoint: Path,
        root: Path | None = None,
        file_managers: Iterable[str] = DEFAULT_FILE_MANAGERS,
    ) -> None:
        self.fs = fs
        self.backend: Backend = fs.backend
        self.mountpoint = str(mountpoint)
        self.root = root or thumbnail_root()
        #: process names whose directory listings get thumbnails
        self.file_managers = frozenset(comm_name(n) for n in file_managers)
        #: who opens directories (every opendir asks)
        self.callers = ProcessNames()
        #: directories whose thumbnails are being fetched
        self._busy: set[int] = set()
        #: the files (id, version, thumbnail) each directory had when its thumbnails were last
        #: fetched
        self._done: dict[int, frozenset[tuple[str, str, str]]] = {}
        self._limiter = trio.CapacityLimiter(TRANSFERS)
        self._directories = trio.Semaphore(1)

    @staticmethod
    def supported(backend: Backend) -> bool:
        return type(backend).thumbnail_data is not Backend.thumbnail_data

    def opened(self, ino: int, pid: int) -> None:
        """Called when process ``pid`` opened directory ``ino`` (listed already): a file
        manager's listing gets its thumbnails; any other program's (``find``, ``rsync``, a
        backup) costs nothing more."""
        directory = self.fs.inodes.find(ino)
        if directory is None or not directory.is_dir:
            return
        if self.callers.known(pid, self.file_managers) is not None:
            self.listed(directory)

    def listed(self, directory: Node) -> None:
        """Start fetching the thumbnails of ``directory``'s files that the cache lacks."""
        nursery = self.fs._nursery
        if nursery is None or directory.ino in self._busy:
            return
        files = [self.fs.inodes.find(ino) for ino in (directory.children or {}).values()]
        nodes = [
            n
            for n in files
            if n is not None and not n.is_dir and n.staged is None and n.entry.thumbnail
        ]
        signature = frozenset((n.entry.id, n.entry.version, n.entry.thumbnail or "") for n in nodes)
        if not nodes or self._done.get(directory.ino) == signature:
            return
        files_seen: list[Wanted] = []
        for node in nodes:
            attr = self.fs.attr(node)
            uri = file_uri(self.mountpoint + self.fs.path(node))
            ref = node.entry.thumbnail or ""
            files_seen.append(Wanted(node.entry.id, uri, int(attr.mtime), attr.size, ref))
        self._busy.add(directory.ino)
        nursery.start_soon(self._fetch, directory, files_seen, signature)

    def _missing(self, files: list[Wanted]) -> list[Wanted]:
        """The files without a valid thumbnail in the cache (reads files: in a thread)."""
        return [
            f
            for f in files
            if not is_valid(self.root / "normal" / cache_name(f.uri), f.uri, f.mtime)
        ]

    async def _fetch(
        self, directory: Node, files: list[Wanted], signature: frozenset[tuple[str, str, str]]
    ) -> None:
        try:
            async with self._directories:
                wanted = await trio.to_thread.run_sync(self._missing, files)
                async with trio.open_nursery() as nursery:
                    for item in wanted:
                        nursery.start_soon(self._one, Thumbnail(item.entry_id, item.ref), item)
            self._done[directory.ino] = signature
        except errors.DocfsError as exc:
            log.debug("no thumbnails for %s: %s", self.fs.path(directory), exc)
        except Exception:
            # a bad answer costs the thumbnails of this directory, never the daemon
            log.warning("thumbnails of %s failed", self.fs.path(directory), exc_info=True)
        finally:
            self._busy.discard(directory.ino)

    async def _one(self, thumb: Thumbnail, item: Wanted) -> None:
        async with self._limiter:
            try:
                data = await self.backend.thumbnail_data(thumb)
                await trio.to_thread.run_sync(self.write, data, item)
            except (errors.DocfsError, imagecodec.Unsupported, OSError) as exc:
                log.debug("thumbnail of %s not written: %s", item.uri, exc)
            except Exception as exc:
                # a malformed image the decoder trips over (zlib, struct…): not a daemon bug
                log.debug("thumbnail of %s not written: %r", item.uri, exc)

    def write(self, data: bytes, item: Wanted) -> None:
        """Convert ``data`` and store it for ``item`` in every size the standard names."""
        image = imagecodec.decode(data)
        text = {
            "Thumb::URI": item.uri,
            "Thumb::MTime": str(item.mtime),
            "Thumb::Size": str(item.size),
            "Software": "docfs",
        }
        for directory, limit in SIZES:
            folder = self.root / directory
            folder.mkdir(parents=True, exist_ok=True, mode=0o700)
            png = imagecodec.encode_png(imagecodec.fit(image, limit), text)
            target = folder / cache_name(item.uri)
            # written whole under another name and renamed, as the standard asks: a reader
            # never sees half a file
            temp = folder / f".{target.name}.docfs-{os.getpid()}"
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                os.write(fd, png)
            finally:
                os.close(fd)
            os.replace(temp, target)
