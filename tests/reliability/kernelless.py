"""Driving the vfs without the kernel from synchronous hypothesis tests, on every backend.

``TrioThread`` runs a trio loop (with the nursery a ``Filesystem`` needs) in a background thread
so that hypothesis rules, which are plain functions, can call the async vfs. ``Backdoor``
gives each backend a fresh *sandbox* directory per hypothesis example and reads the server's
side of it, so tests can compare the vfs, the server and a model.
"""

from __future__ import annotations

import itertools
import tempfile
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

import trio

from docfs.backends._http import HttpClient, Limits
from docfs.backends.base import Backend, Credentials
from docfs.backends.docspace import DocSpaceBackend
from docfs.backends.dspace7 import DSpace7Backend
from docfs.backends.opus2 import Opus2Backend
from docfs.backends.rspace import RSpaceBackend
from docfs.emulators.base import Emulator, EmulatorServer
from docfs.emulators.docspace import (
    TITLE_MAX_REQUEST,
    DocSpaceEmulator,
    sanitize_title,
    saved_title,
)
from docfs.emulators.dspace6 import DSpace6Emulator
from docfs.emulators.dspace6.model import stored_value
from docfs.emulators.dspace7 import DSpace7Emulator
from docfs.emulators.opus2 import Opus2Emulator
from docfs.emulators.rspace import DEFAULT_API_KEY as RSPACE_KEY
from docfs.emulators.rspace import RSpaceEmulator, section_for_filename
from docfs.vfs.content import ContentCache
from docfs.vfs.filesystem import Filesystem, Options
from docfs.vfs.inodes import ROOT_INODE
from tests.conftest import ADMIN, FAST_RETRY, dspace6_backend

T = TypeVar("T")


class TrioThread:
    """A trio loop in a thread: ``call`` runs an async function there and returns its result."""

    def __init__(self) -> None:
        self._ready = threading.Event()
        self._token: trio.lowlevel.TrioToken | None = None
        self._stop: trio.Event | None = None
        self.nursery: trio.Nursery | None = None
        self._thread = threading.Thread(target=trio.run, args=(self._main,), daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("trio thread did not start")

    async def _main(self) -> None:
        self._token = trio.lowlevel.current_trio_token()
        self._stop = trio.Event()
        async with trio.open_nursery() as nursery:
            self.nursery = nursery
            self._ready.set()
            await self._stop.wait()
            nursery.cancel_scope.cancel()

    def call(self, fn: Callable[..., Awaitable[T]], *args: Any) -> T:
        return trio.from_thread.run(fn, *args, trio_token=self._token)

    def call_sync(self, fn: Callable[..., T], *args: Any) -> T:
        return trio.from_thread.run_sync(fn, *args, trio_token=self._token)

    def close(self) -> None:
        if self._stop is not None:
            trio.from_thread.run_sync(self._stop.set, trio_token=self._token)
        self._thread.join(10)


@dataclass
class Sandbox:
    """A fresh directory on the server for one example, reached by ``path`` from the root."""

    path: tuple[str, ...]
    #: put a file there behind the mount's back; returns its remote id
    add_file: Callable[[str, bytes], str]
    #: remote name → bytes of what the server holds there now
    files: Callable[[], dict[str, bytes]]


class Backdoor:
    """What the kernel-less tests need from one backend and its emulator."""

    name: str
    #: whether the repository lets a file be deleted, or renamed in place (else EPERM)
    removes_files = True
    renames_files = True
    #: whether a rename may change a file's extension (else EXDEV: ``mv`` copies instead)
    renames_extensions = True
    _labels = itertools.count(1)

    def emulator(self) -> Emulator:
        raise NotImplementedError

    def backend(self, server: EmulatorServer) -> Backend:
        raise NotImplementedError

    def sandbox(self, emulator: Emulator) -> Sandbox:
        raise NotImplementedError

    def label(self) -> str:
        return f"run-{next(self._labels)}"

    def refuses(self, name: str) -> bool:
        """Whether the server refuses ``name`` for a new file in a sandbox, or would store it
        under another name: docfs must then refuse it at once (EINVAL, nothing uploaded), and
        keep every other name exactly. Worked out from the emulator, not from docfs."""
        return False

    def overwrites(self, name: str) -> bool:
        """Whether a file the server holds as ``name`` can get new content and keep its name;
        where it cannot, docfs must refuse to open it for writing (EPERM), not rename it."""
        return True

    def known_bug(self, name: str, when: Literal["create", "overwrite"]) -> str | None:
        """Why docfs does not yet keep ``name`` when creating or overwriting such a file here,
        nor refuse it at once: a known bug whose fix belongs to a file this suite may not
        change (see the report of issue 9). None: the name is tested. Remove an entry when its
        fix lands."""
        return None


class DSpace6Backdoor(Backdoor):
    """Sandboxes are items (DSpace 6 keeps files only in items) of one collection."""

    name = "dspace6"

    def refuses(self, name: str) -> bool:
        # a name is a metadata value: addMetadata trims it and blanks control characters
        return stored_value(name) != name

    def emulator(self) -> Emulator:
        emulator = DSpace6Emulator()
        emulator.add_user(*ADMIN, admin=True)
        self._collection = emulator.add_collection("Runs", emulator.add_community("Fuzz"))
        return emulator

    def backend(self, server: EmulatorServer) -> Backend:
        return dspace6_backend(server, Credentials(*ADMIN))

    def sandbox(self, emulator: Emulator) -> Sandbox:
        assert isinstance(emulator, DSpace6Emulator)
        label = self.label()
        item = emulator.add_item(self._collection, label)

        def files() -> dict[str, bytes]:
            return {
                str(b["name"]): emulator.bitstream_data(b["uuid"])
                for b in emulator.bitstreams_of(item)
                if b["bundle"] == "ORIGINAL"
            }

        return Sandbox(
            path=("Fuzz", "Runs", label),
            add_file=lambda name, data: emulator.add_bitstream(item, name, data),
            files=files,
        )


class Opus2Backdoor(Backdoor):
    """Sandboxes are folders of one project (default wire profile: no document rename or
    delete in the API)."""

    name = "opus2"
    removes_files = False
    renames_files = False

    def refuses(self, name: str) -> bool:
        # the upload answers 400 "Invalid document name"
        return not name.strip() or "/" in name

    def emulator(self) -> Emulator:
        emulator = Opus2Emulator(rate_limit=None)
        self._project = emulator.add_project("Fuzz")
        self._token = emulator.default_token
        return emulator

    def backend(self, server: EmulatorServer) -> Backend:
        http = HttpClient(server.url, limits=Limits(concurrency=8), retry=FAST_RETRY)
        return Opus2Backend(http, Credentials(token=self._token))

    def sandbox(self, emulator: Emulator) -> Sandbox:
        assert isinstance(emulator, Opus2Emulator)
        label = self.label()
        project = self._project
        folder = emulator.add_folder(project, label)

        def files() -> dict[str, bytes]:
            return {
                str(d["name"]): emulator.document(str(d["id"]))["content"]
                for d in emulator.documents(project, folder)
            }

        return Sandbox(
            path=("Fuzz", label),
            add_file=lambda name, data: emulator.add_document(
                project, name, data, folder_id=folder
            ),
            files=files,
        )


class DSpace7Backdoor(Backdoor):
    """Sandboxes are items (DSpace 7 keeps files in the ORIGINAL bundle of an item) of one
    collection. An overwrite uploads a new bitstream and deletes the old one: the server's
    side is read by name, so the new uuid does not matter."""

    name = "dspace7"

    def known_bug(self, name: str, when: Literal["create", "overwrite"]) -> str | None:
        if when == "overwrite" and not name:
            return "DSpace7Backend._upload_and_swap names the new bitstream after the old uuid"
        return None

    def emulator(self) -> Emulator:
        emulator = DSpace7Emulator(user=ADMIN[0], password=ADMIN[1])
        self._collection = emulator.add_collection("Runs", emulator.add_community("Fuzz"))
        return emulator

    def backend(self, server: EmulatorServer) -> Backend:
        http = HttpClient(server.url, limits=Limits(concurrency=8), retry=FAST_RETRY)
        return DSpace7Backend(http, Credentials(*ADMIN))

    def sandbox(self, emulator: Emulator) -> Sandbox:
        assert isinstance(emulator, DSpace7Emulator)
        label = self.label()
        item = emulator.add_item(self._collection, label)

        def files() -> dict[str, bytes]:
            return {str(name): emulator.content(uuid) for uuid, name in emulator.bitstreams(item)}

        return Sandbox(
            path=("Fuzz", "Runs", label),
            add_file=lambda name, data: emulator.add_bitstream(item, name, data),
            files=files,
        )


class RSpaceBackdoor(Backdoor):
    """Sandboxes are folders of the Gallery's Documents section: the one place where RSpace
    creates and overwrites plain files (a document directory would link every new file into
    a text field, and its ``.html`` field files cannot be removed alone). The API has no call
    that deletes or renames a Gallery file."""

    name = "rspace"
    removes_files = False
    renames_files = False

    def refuses(self, name: str) -> bool:
        # the extension alone picks the section
        return section_for_filename(name) != "Documents" or not self.overwrites(name)

    def overwrites(self, name: str) -> bool:
        # a new version is named after the multipart filename, and a quote, backslash or line
        # break cannot go there unchanged (the emulator's parser undoes no escape, the
        # server's is not documented): docfs refuses them
        return not any(c in name for c in '"\\\r\n')

    def emulator(self) -> Emulator:
        emulator = RSpaceEmulator()  # throttling is off by default
        self._section = emulator.folder_id("Documents")
        return emulator

    def backend(self, server: EmulatorServer) -> Backend:
        http = HttpClient(server.url, limits=Limits(concurrency=8), retry=FAST_RETRY)
        return RSpaceBackend(http, Credentials(token=RSPACE_KEY))

    def sandbox(self, emulator: Emulator) -> Sandbox:
        assert isinstance(emulator, RSpaceEmulator)
        label = self.label()
        folder = emulator.add_folder(self._section, label)

        def files() -> dict[str, bytes]:
            return {
                str(r["name"]): emulator.file_data(int(r["id"]))
                for r in emulator.children(folder)
                if r["kind"] == "MEDIA"
            }

        return Sandbox(
            path=("Gallery", "Documents", label),
            add_file=lambda name, data: str(emulator.add_file(folder, name, data)),
            files=files,
        )


class DocSpaceBackdoor(Backdoor):
    """Sandboxes are folders of one room. The server keeps a file's extension on rename (it
    appends the old one), so docfs refuses such a rename with EXDEV and ``mv`` copies."""

    name = "docspace"
    renames_extensions = False
    user = ("owner@docspace.example", "docspace-password-1")

    def refuses(self, name: str) -> bool:
        # titles are trimmed, TAB * + : " < > ? | \\ / replaced and at most 165 characters long
        return sanitize_title(name) != name or len(name) > TITLE_MAX_REQUEST

    def overwrites(self, name: str) -> bool:
        # every save re-titles (FileDao.SaveFileAsync: "Photo.JPG" → "Photo.jpg", "Makefile"
        # → "Makefile."); docfs renames it back, which only a title a request can carry allows
        return saved_title(name) == name or (name != "" and not self.refuses(name))

    def emulator(self) -> Emulator:
        # the rate limiter has tests of its own (tests/backends); here it would only add waits
        emulator = DocSpaceEmulator(user=self.user[0], password=self.user[1], rate_limiting=False)
        self._room = emulator.add_room("Fuzz", owner=self.user[0])
        return emulator

    def backend(self, server: EmulatorServer) -> Backend:
        http = HttpClient(server.url, limits=Limits(concurrency=8), retry=FAST_RETRY)
        return DocSpaceBackend(http, Credentials(*self.user))

    def sandbox(self, emulator: Emulator) -> Sandbox:
        assert isinstance(emulator, DocSpaceEmulator)
        label = self.label()
        folder = emulator.add_folder(self._room, label, owner=self.user[0])

        def files() -> dict[str, bytes]:
            return {
                title: emulator.file_content(ident)
                for kind, ident, title in emulator.children(folder)
                if kind == "file"
            }

        return Sandbox(
            path=("Rooms", "Fuzz", label),
            add_file=lambda name, data: str(
                emulator.add_file(folder, name, data, owner=self.user[0])
            ),
            files=files,
        )


BACKDOORS: list[Backdoor] = [
    DSpace6Backdoor(),
    DSpace7Backdoor(),
    Opus2Backdoor(),
    RSpaceBackdoor(),
    DocSpaceBackdoor(),
]


class FakeClock:
    """The vfs's clock for listing freshness: tests move it past the TTL at will."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Vfs:
    """A ``Filesystem`` over one backend, with a private cache dir, run in a ``TrioThread``."""

    TTL = 60.0

    def __init__(self, backdoor: Backdoor, server: EmulatorServer) -> None:
        self.loop = TrioThread()
        self._tmp = tempfile.TemporaryDirectory(prefix="docfs-vfs-")
        self.clock = FakeClock()
        self.backend = backdoor.backend(server)
        self.fs = self.loop.call(self._build, Path(self._tmp.name), backdoor.name)

    async def _build(self, cache: Path, namespace: str) -> Filesystem:
        await self.backend.connect()
        content = ContentCache(cache / "cache", 64 << 20, namespace)
        options = Options(dir_cache_time=self.TTL)
        fs = Filesystem(self.backend, await self.backend.root(), content, options, clock=self.clock)
        assert self.loop.nursery is not None
        fs.start(self.loop.nursery)
        return fs

    def close(self) -> None:
        try:
            self.loop.call(self.backend.aclose)
            # SQLite objects belong to the thread that made them: the loop's
            self.loop.call_sync(self.fs.attrs.close)
        finally:
            self.loop.close()
            self._tmp.cleanup()

    def expire(self) -> None:
        """Let every listing go stale: the next access lists again."""
        self.clock.now += self.TTL + 1

    # ---- the calls a kernel would make -----------------------------------------------------

    def ino(self, *names: str) -> int:
        async def walk() -> int:
            ino = ROOT_INODE
            for name in names:
                ino = (await self.fs.lookup(ino, name)).ino
            return ino

        return self.loop.call(walk)

    def listdir(self, ino: int) -> dict[str, int]:
        """Name → inode, from opendir/readdir like ``ls``."""

        async def listing() -> dict[str, int]:
            dh = await self.fs.opendir(ino)
            try:
                return {name: attr.ino for name, attr in self.fs.readdir(dh, 0)}
            finally:
                self.fs.releasedir(dh)

        return self.loop.call(listing)

    def read(self, ino: int) -> bytes:
        async def read_all() -> bytes:
            fh, _ = await self.fs.open(ino, write=False)
            try:
                parts, offset = [], 0
                while chunk := await self.fs.read(fh, offset, 65536):
                    parts.append(chunk)
                    offset += len(chunk)
                return b"".join(parts)
            finally:
                await self.fs.release(fh)

        return self.loop.call(read_all)

    def create(self, folder: int, name: str) -> int:
        """``open(O_CREAT|O_EXCL)``: a handle of a new empty file (refusals come from here)."""

        async def create() -> int:
            fh, _ = await self.fs.create(folder, name, 0o644)
            return fh

        return self.loop.call(create)

    def write_and_close(self, fh: int, data: bytes) -> None:
        """Write ``data`` from offset 0 and close: the close uploads (and reports failures)."""

        async def finish() -> None:
            try:
                await self.fs.write(fh, 0, data)
                await self.fs.flush(fh)
            finally:
                await self.fs.release(fh)

        self.loop.call(finish)

    def overwrite(self, ino: int, data: bytes) -> None:
        """``open(O_WRONLY|O_TRUNC)``, write, close: a new version of an existing file."""

        async def overwrite() -> None:
            fh, _ = await self.fs.open(ino, write=True, truncate=True)
            try:
                await self.fs.write(fh, 0, data)
                await self.fs.flush(fh)
            finally:
                await self.fs.release(fh)

        self.loop.call(overwrite)
