"""The backend protocol: what every repository module implements, ID-based and cache-free.

A backend turns one repository's REST API into directories and files (``Entry``). It never
caches, never knows about inodes or FUSE, and declares which write operations exist where
(``Capabilities`` for the backend as a whole, ``Entry.ops`` for each object), so the vfs can
refuse an unsupported operation locally, without a request.
"""

from __future__ import annotations

import enum
import logging
import time
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar, TypeVar

import trio

from docfs.backends.traffic import Limits, Traffic, Transfer
from docfs.errors import DocfsError, NotSupported, RemoteUnavailable

#: Receives downloaded bytes in order; awaited so a slow consumer applies back-pressure.
Sink = Callable[[bytes], Awaitable[None]]

log = logging.getLogger("docfs.backends")
_T = TypeVar("_T")


class Kind(enum.Enum):
    DIR = "dir"
    FILE = "file"


class Op(enum.Enum):
    """Write operations. On a directory entry CREATE_FILE/MKDIR mean "inside this directory"."""

    CREATE_FILE = "create_file"
    REPLACE = "replace_file"
    MKDIR = "mkdir"
    REMOVE = "remove"
    RENAME = "rename"
    SET_META = "set_meta"
    #: the entry cannot be removed alone, only with its directory (e.g. the fields of an RSpace
    #: document): unlinking it hides it locally, and removing the directory removes it for real
    REMOVE_WITH_DIR = "remove_with_dir"


@dataclass(frozen=True, slots=True)
class Checksum:
    """A digest the repository gives for a file's stored bytes (``Entry.checksum``)."""

    #: lower-case ``hashlib`` name: ``md5``, ``sha256``…
    algorithm: str
    #: lower-case hex digest
    value: str


@dataclass(frozen=True, slots=True)
class Entry:
    """One remote object as the filesystem sees it."""

    id: str
    name: str
    kind: Kind
    size: int | None
    mtime: float | None
    version: str
    meta: Mapping[str, str] = field(default_factory=dict)
    read_only: bool = False
    #: operations the repository allows on (or, for directories, inside) this entry
    ops: frozenset[Op] = frozenset()
    #: backend-private details needed for later calls (object type, parent id, description…)
    extra: Mapping[str, str] = field(default_factory=dict, compare=False)
    #: ``Backend.changes`` can report what changed anywhere below this directory (e.g. an
    #: Opus 2 project): stale listings below it are refreshed with one request, not relisted
    change_scope: bool = False
    #: ``meta`` is incomplete (a listing did not carry everything): the vfs asks ``stat`` for
    #: the full set before it answers an extended-attribute request
    partial_meta: bool = False
    #: a directory just created that already has children (e.g. an RSpace document's fields):
    #: the vfs lists it instead of assuming it is empty
    prefilled: bool = False
    #: the server changes the bytes it serves from those it stores (e.g. a PDF cover page):
    #: ``size`` is the served size, ``meta`` carries no checksum of the served bytes, and the
    #: file is read whole, never in byte ranges (two ranges could come from two renderings)
    transformed: bool = False
    #: the server's id of the object where ``id`` names one of several places it appears in
    #: (a DSpace item mapped into several collections is one directory per collection, each
    #: with its own ``id``); None: ``id`` is the server's id. ``user.docfs.id`` shows this one
    object_id: str | None = None
    #: the server honours byte ranges for this file (with ``Capabilities.ranges``); False: it
    #: sends a body made for each request (e.g. a DocSpace watermark), read only whole
    byte_ranges: bool = True
    #: ``mtime`` is the date of the directory holding the entry (the repository has none of
    #: its own, e.g. a DSpace bitstream): the vfs shows the date it first saw this version
    #: of the entry instead (``docfs.vfs.dates``), so a change to a sibling changes nothing
    inherited_mtime: bool = False
    #: the repository made a thumbnail of this file, and the listing said so: what
    #: ``Backend.thumbnail_data`` needs to fetch it (a bitstream id, a file id and version);
    #: taken from the listing itself, so knowing about thumbnails costs no request
    thumbnail: str | None = field(default=None, compare=False)
    #: the repository's digest of the stored bytes (what a complete download is checked
    #: against); None where it gives none, or where ``transformed`` makes it not apply
    checksum: Checksum | None = None

    @property
    def is_dir(self) -> bool:
        return self.kind is Kind.DIR

    def allows(self, op: Op) -> bool:
        return not self.read_only and op in self.ops


@dataclass(frozen=True)
class Thumbnail:
    """A preview image the repository made of one file (DSpace's THUMBNAIL bundle, DocSpace's
    ``thumbnailUrl``): file managers are given it instead of reading the file."""

    #: the ``Entry.id`` of the file it shows
    file_id: str
    #: backend-private: what ``thumbnail_data`` needs (the file's ``Entry.thumbnail``)
    ref: str


@dataclass(frozen=True, slots=True)
class Version:
    """One earlier version of a file (``Backend.versions``)."""

    #: the repository's version number (1 is the first)
    number: int
    #: when the version was stored (epoch seconds), if the repository says
    created: float | None
    #: a read-only FILE entry ``Backend.download`` reads this version's bytes from
    entry: Entry


@dataclass(frozen=True)
class Capabilities:
    """What a backend can do at all; ``Entry.ops`` says where."""

    ops: frozenset[Op] = frozenset()
    #: download() honours start/end with real byte ranges (else it streams from byte 0)
    ranges: bool = False
    #: rename() can move between directories (else a move is EXDEV)
    move: bool = False
    #: extended attributes are ``user.<meta_namespace>.<key>``
    meta_namespace: str = "docfs"
    #: the server may hold two children with the same name in one directory
    duplicate_names: bool = True
    #: ``changes()`` is implemented for entries with ``change_scope``
    changes: bool = False
    #: ``list_tree()`` lists a whole change scope at once (cheaper than directory by directory)
    tree: bool = False
    #: the kinds of identifier ``resolve()`` looks up (``IdKind``): the vfs's hidden
    #: ``.by-<kind>`` directories exist for these and answer ENOENT for the others
    resolves: frozenset[str] = frozenset()
    # ---- finding things (issue 20): what ``search``/``versions`` can answer -------------
    #: ``search()`` answers for the whole repository (``scope`` None)
    search: bool = False
    #: ``search()`` can be limited to the subtree below a directory (``scope`` an Entry)
    search_scoped: bool = False
    #: no search API, but listings worth searching: ``.search`` matches names and metadata
    #: over the mount's own (cached) listings below the scope, without ``search()``
    search_local: bool = False
    #: why there is no search, for the log line of a refused ``.search`` lookup
    search_missing: str = "the repository's API has no search"
    #: ``versions()`` lists a file's earlier versions
    versions: bool = False
    #: ``versions()`` also answers for directories (``DIR/.versions/`` lists DIR's own
    #: earlier versions as directories, e.g. DSpace 7 item versions)
    dir_versions: bool = False
    #: why there are no versions, for the log line of a refused ``.versions`` lookup
    versions_missing: str = "the repository's API lists no earlier versions of a file"
    #: ``list_dir_deep()`` gives child directories' listings with the children, in the same
    #: requests (e.g. DSpace 6 items with their files): a walk costs the pages, not one
    #: request per child; the vfs asks for it only when a program walks the tree
    deep: bool = False


class IdKind:
    """Kinds of identifier ``Backend.resolve`` may look up (``Capabilities.resolves``)."""

    #: the repository's own id of an object (a DSpace uuid, an RSpace global id…)
    ID = "id"
    #: a Handle System handle, ``prefix/suffix``
    HANDLE = "handle"
    #: a DOI, ``10.prefix/suffix``
    DOI = "doi"


@dataclass(frozen=True)
class Credentials:
    """Secrets for one remote. ``repr`` never shows them."""

    user: str | None = None
    password: str | None = field(default=None, repr=False)
    token: str | None = field(default=None, repr=False)

    def secrets(self) -> list[str]:
        return [s for s in (self.password, self.token) if s]


def landing_window(exc: RemoteUnavailable, timeout: float) -> float:
    """How long a request whose answer was lost may still land on the server.

    A reset or a 500 ends the exchange: what the server did, it has done. A timeout or a
    gateway's 502/504 does not: a proxy may hold the request, or the server may still be
    storing it, and it may land after the client gave up (issue 18.2). Until twice the request
    timeout has passed, "not there" then only means "not visible yet"."""
    if not exc.timed_out and exc.status not in (502, 504):
        return 0.0
    return 2 * timeout


async def until_visible(
    look: Callable[[], Awaitable[_T | None]], window: float, what: str
) -> _T | None:
    """What ``look`` finds of a request whose answer was lost, or None once ``window`` seconds
    (see ``landing_window``) have passed without it: looked for again with growing pauses.
    Shared by the vfs's creates and the backends' own recovery, so both wait alike."""
    deadline = trio.current_time() + window
    pause = 0.25
    while True:
        found = await look()
        if found is not None:
            return found
        left = deadline - trio.current_time()
        if left <= 0:
            return None
        log.info("%s: not visible yet; looking again in %.1f s", what, min(pause, left))
        await trio.sleep(min(pause, left))
        pause *= 2


class Backend(ABC):
    """One repository API. Read methods are required; write methods raise NotSupported.

    The protocol knows no HTTP: a backend owns its client (``docfs.backends.http_backend``
    for the HTTP ones) and hands the rest of docfs only what it needs — its traffic counters,
    the uploads in flight, a note when the server is back, its request timeout."""

    name: ClassVar[str]
    capabilities: ClassVar[Capabilities]
    #: the server's documented limits (rate, concurrency), used unless the user sets others
    default_limits: ClassVar[Limits] = Limits()

    def __init__(self, credentials: Credentials) -> None:
        self.credentials = credentials

    # ---- what the vfs and the control channel may ask of any backend ----------------------

    def traffic(self) -> Traffic:
        """Requests so far per endpoint, rate-limit waits, uploads in flight."""
        return Traffic()

    def uploading(
        self, path: str, size: int, key: str | None = None
    ) -> AbstractContextManager[Transfer]:
        """Count what is sent inside this block (in this task) as the upload of ``path``;
        ``key`` finds it again in ``traffic().transfers`` (a write-back job's id)."""
        return _uncounted(path, size, key)

    def on_recovery(self, callback: Callable[[], None]) -> None:  # noqa: B027 - optional
        """Call ``callback`` whenever the server answers again after it was unreachable."""

    def on_unreachable(self, callback: Callable[[], None]) -> None:  # noqa: B027 - optional
        """Call ``callback`` when the server stops answering (every try of a request went
        unanswered); ``on_recovery`` says when it is back. The vfs goes offline meanwhile."""

    @property
    def request_timeout(self) -> float:
        """Seconds one request may take before it counts as lost (see ``landing_window``)."""
        return self.default_limits.timeout

    async def connect(self) -> None:  # noqa: B027 - optional hook
        """Log in (if credentials were given) and check the server answers."""

    @abstractmethod
    async def root(self) -> Entry: ...

    @abstractmethod
    def list_dir(self, directory: Entry) -> AsyncIterator[Entry]:
        """Stream the children of ``directory``, page by page."""

    @abstractmethod
    async def stat(self, entry: Entry) -> Entry:
        """Fetch the current state of ``entry`` (NotFound if it is gone)."""

    @abstractmethod
    async def download(
        self, entry: Entry, sink: Sink, start: int = 0, end: int | None = None
    ) -> None:
        """Send bytes [start, end) of the file to ``sink`` (whole file from 0 without ranges)."""

    def check_name(self, parent: Entry, name: str, kind: Kind) -> None:  # noqa: B027
        """Raise ``InvalidArgument`` for a name the repository would refuse or store changed.

        Called before a new name is used (create, mkdir, rename), so the error comes at once,
        with EINVAL, and not at close time from a failed upload."""

    def list_tree(self, scope: Entry) -> AsyncIterator[tuple[str, Entry]]:
        """``(parent directory id, entry)`` for everything below ``scope``, parents first.
        Only for backends whose capabilities say ``tree``."""
        raise NotSupported(f"{self.name}: no tree listing")

    async def list_dir_deep(
        self, directory: Entry
    ) -> AsyncIterator[tuple[Entry, Sequence[Entry] | None]]:
        """The children of ``directory`` (as ``list_dir``), each child directory with its own
        complete listing where the same answers carried it (None: not known, list it later).
        Backends whose capabilities say ``deep`` override this; the default is ``list_dir``."""
        async for entry in self.list_dir(directory):
            yield entry, None

    def refusal_hint(self, entry: Entry, op: Op) -> str | None:
        """A sentence for the log when ``op`` is refused on ``entry``: what to do instead."""
        return None

    def changes(self, scope: Entry, since: float) -> AsyncIterator[tuple[str, Entry]]:
        """``(parent directory id, entry)`` for what changed below ``scope`` after ``since``
        (epoch seconds). Deletions need not be reported: full listings still happen now and
        then. Only for backends whose capabilities say ``changes``."""
        raise NotSupported(f"{self.name}: no change feed")

    async def thumbnail_data(self, thumbnail: Thumbnail) -> bytes:
        """The image bytes (JPEG or PNG as the server stores them) of ``thumbnail``, whose
        ``ref`` is the ``Entry.thumbnail`` a listing gave. Backends whose repository makes no
        thumbnails keep this default (and never set ``Entry.thumbnail``)."""
        raise NotSupported(f"{self.name}: no thumbnails")

    # ---- finding objects (issue 20) -------------------------------------------------------

    async def resolve(self, kind: str, key: str) -> Entry | None:
        """The object whose identifier of ``kind`` (one of ``capabilities.resolves``) is
        ``key``, found with one request; None if the server knows no such object."""
        raise NotSupported(f"{self.name}: cannot look objects up by {kind}")

    def web_url(self, entry: Entry) -> str | None:
        """The page of ``entry`` in the repository's web interface (None: it has none)."""
        return None

    # ---- finding things (issue 20) ----------------------------------------------------------

    def search(self, scope: Entry | None, query: str, limit: int) -> AsyncIterator[Entry]:
        """The objects the repository's own search finds for ``query`` (in its own query
        language), in its order, at most ``limit``, one request per result page; below the
        directory ``scope`` (None: everywhere; only with ``Capabilities.search_scoped``).
        The entries may be files or directories from anywhere in the tree."""
        raise NotSupported(f"{self.name}: {self.capabilities.search_missing}")

    async def versions(self, entry: Entry) -> list[Version]:
        """The earlier versions of the file ``entry`` (the current one left out), oldest
        first, each with an ``Entry`` of its own (another id than ``entry``'s). Only for
        backends whose capabilities say ``versions`` (files) or ``dir_versions``
        (directories)."""
        raise NotSupported(f"{self.name}: {self.capabilities.versions_missing}")

    async def create_file(self, parent: Entry, name: str, src: Path) -> Entry:
        raise NotSupported(f"{self.name}: cannot create files")

    async def replace_file(self, entry: Entry, src: Path) -> Entry:
        raise NotSupported(f"{self.name}: cannot replace file content")

    async def mkdir(self, parent: Entry, name: str) -> Entry:
        raise NotSupported(f"{self.name}: cannot create directories")

    async def remove(self, entry: Entry) -> None:
        raise NotSupported(f"{self.name}: cannot remove")

    async def remove_from(self, entry: Entry, parent: Entry) -> None:
        """``rmdir``/``unlink`` of ``entry`` in the directory ``parent``. One remote object can
        be listed in several directories (a DSpace item mapped into several collections), and
        its removal from one of them may mean something else than deleting it: a backend where
        that is so overrides this; the others delete."""
        await self.remove(entry)

    async def rename(self, entry: Entry, new_parent: Entry, new_name: str) -> Entry:
        raise NotSupported(f"{self.name}: cannot rename")

    async def set_meta(self, entry: Entry, key: str, value: str | None) -> Entry:
        raise NotSupported(f"{self.name}: cannot set metadata")

    # ---- metadata files (issue 21): the whole metadata of an object at once ---------------

    def meta_separator(self, entry: Entry, key: str) -> str | None:
        """Where the repository allows several values for ``key`` of ``entry``: what joins
        them in ``entry.meta`` (a newline for DSpace fields, a comma for RSpace tags); a
        metadata file shows them as a JSON list. None: one value, shown as a string."""
        return None

    async def update_meta(self, entry: Entry, changes: Mapping[str, list[str] | None]) -> Entry:
        """Apply ``changes`` (key → its new values, None: remove the key) to ``entry``'s
        metadata, all or nothing where the repository allows it, and return the entry as the
        server now has it. A read-only key raises ``NotSupported``, a value the repository
        refuses ``InvalidArgument`` — before anything is sent where that can be known.

        This default checks every key with ``meta_writable`` first, then sends one
        ``set_meta`` per key (repositories whose API changes one field per request); an
        error after some keys were sent names them. A backend whose API changes several keys
        at once overrides it with that."""
        for key in changes:
            if not self.meta_writable(entry, key):
                raise NotSupported(f"{self.name}: {key} is read-only")
        done: list[str] = []
        for key, values in sorted(changes.items()):
            try:
                entry = await self.set_meta(
                    entry, key, None if values is None else "\n".join(values)
                )
            except DocfsError as exc:
                if done:
                    exc.args = (f"{exc}; changed already: {', '.join(done)}",)
                raise
            done.append(key)
        return entry

    def meta_writable(self, entry: Entry, key: str) -> bool:
        """``set_meta`` may change ``key`` of ``entry`` (checked before a metadata file's
        changes are sent, so a read-only key refuses the whole file)."""
        return True

    # ---- deposit packages (issue 21) -------------------------------------------------------

    def package_file(self, parent: Entry, name: str) -> bool:
        """Is a file ``name`` written into ``parent`` part of a deposit package (it describes
        the object, e.g. its metadata) rather than content? The vfs hands such a file to
        ``apply_package_file`` instead of uploading it, and keeps it visible for the mount's
        life (so ``rsync -a``'s rename and time setting find it)."""
        return False

    async def apply_package_file(self, parent: Entry, name: str, src: Path) -> Entry:
        """Apply package file ``name`` (its bytes in ``src``) to ``parent``; ``parent`` now."""
        raise NotSupported(f"{self.name}: takes no deposit packages")

    async def run(self) -> None:  # noqa: B027 - optional hook
        """Background duties for the life of the mount (the daemon's nursery runs it)."""

    async def settle(self) -> None:  # noqa: B027 - optional hook
        """Finish what the backend holds back (e.g. a DSpace submission not yet deposited):
        called on ``fsync`` of a directory, by ``docfs sync`` and before unmounting."""

    def held_back(self) -> list[str]:
        """What the backend still holds back, one line each (shown by ``docfs status``)."""
        return []

    async def aclose(self) -> None:  # noqa: B027 - optional hook
        """Release the connection(s); called once when the mount ends."""


@contextmanager
def _uncounted(path: str, size: int, key: str | None) -> Iterator[Transfer]:
    """``Backend.uploading`` of a backend that counts nothing: a transfer nobody fills in."""
    yield Transfer(path, size, key or path, time.monotonic())
