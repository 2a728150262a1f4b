"""The hidden-directory framework (issue 20, ``docfs.vfs.hidden``) at the vfs level, over a
small in-memory backend and a test provider: hidden, cached, read-only, same inode."""

from __future__ import annotations

import errno
import logging
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest

from docfs import errors
from docfs.backends.base import Backend, Capabilities, Credentials, Entry, Kind, Op, Sink
from docfs.vfs.content import ContentCache
from docfs.vfs.filesystem import Filesystem, Options
from docfs.vfs.hidden import HiddenProvider, VirtualDir
from docfs.vfs.inodes import ROOT_INODE, Node
from docfs.vfs.state import MountState

ALL = frozenset(Op)


#: one server object ("i") listed in "A" under a per-place id (like a DSpace item, which is
#: one directory per collection it is in); an index finds it by its own id
PER_PLACE = Entry("i@a", "I", Kind.DIR, None, 1.0, "1", ops=ALL, object_id="i")
BY_OBJECT = Entry("i", "I", Kind.DIR, None, 1.0, "1", ops=ALL, object_id="i")


def _entry(entry_id: str, name: str, kind: Kind = Kind.DIR) -> Entry:
    size = None if kind is Kind.DIR else 3
    return Entry(entry_id, name, kind, size, 1.0, "1", ops=ALL)


class TreeBackend(Backend):
    """root → A → f (and B, which only an index finds before ``A`` is listed)."""

    name = "tree"
    capabilities = Capabilities(ops=ALL)

    def __init__(self) -> None:
        super().__init__(Credentials())
        self.children = {
            "root": [_entry("a", "A")],
            "a": [_entry("f", "f", Kind.FILE), _entry("b", "B"), PER_PLACE],
            "b": [],
            "i@a": [],
            "i": [],
        }
        self.calls: list[str] = []

    async def root(self) -> Entry:
        return _entry("root", "")

    async def list_dir(self, directory: Entry) -> AsyncIterator[Entry]:
        self.calls.append(f"list {directory.id}")
        for entry in self.children[directory.id]:
            yield entry

    async def stat(self, entry: Entry) -> Entry:
        self.calls.append(f"stat {entry.id}")
        return entry

    async def download(
        self, entry: Entry, sink: Sink, start: int = 0, end: int | None = None
    ) -> None:
        await sink(b"abc"[start:end])

    async def mkdir(self, parent: Entry, name: str) -> Entry:
        self.calls.append(f"mkdir {name}")
        return _entry(name, name)

    async def set_meta(self, entry: Entry, key: str, value: str | None) -> Entry:
        self.calls.append(f"set_meta {key}")
        return entry


class Index(VirtualDir):
    """Resolves an id to the backend's entry; ``sub`` is a nested virtual directory."""

    def __init__(self, backend: TreeBackend) -> None:
        self.backend = backend
        self.asked: list[str] = []

    async def child(self, name: str) -> Entry | VirtualDir | None:
        self.asked.append(name)
        if name == "sub":
            return Listed()
        if name == "i":
            return BY_OBJECT
        for entries in self.backend.children.values():
            for entry in entries:
                if entry.id == name:
                    return entry
        return None


class Listed(VirtualDir):
    frozen_children = True

    async def child(self, name: str) -> Entry | VirtualDir | None:
        return _entry("v1", "v1", Kind.FILE) if name == "v1" else None

    async def list(self) -> Sequence[tuple[str, Entry | VirtualDir]] | None:
        return [("v1", _entry("v1", "v1", Kind.FILE))]


class IndexProvider(HiddenProvider):
    name = ".index"

    def __init__(self) -> None:
        self.opened: list[Index] = []

    def missing(self, backend: Backend, where: Entry) -> str | None:
        return None

    def open(self, state: MountState, where: Node) -> VirtualDir:
        assert isinstance(state.backend, TreeBackend)
        self.opened.append(Index(state.backend))
        return self.opened[-1]


class Absent(HiddenProvider):
    name = ".absent"
    root_only = False

    def missing(self, backend: Backend, where: Entry) -> str | None:
        return f"{backend.name} has no API for it"

    def open(self, state: MountState, where: Node) -> VirtualDir:
        raise AssertionError("never opened")


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def _mount(tmp_path: Path) -> tuple[Filesystem, TreeBackend, IndexProvider, Clock]:
    backend, provider, clock = TreeBackend(), IndexProvider(), Clock()
    content = ContentCache(tmp_path / "cache", 1 << 20, "t")
    fs = Filesystem(
        backend,
        await backend.root(),
        content,
        Options(dir_cache_time=10),
        clock=clock,
        hidden=[provider, Absent()],
    )
    return fs, backend, provider, clock


async def _names(fs: Filesystem, ino: int) -> list[str]:
    dh = await fs.opendir(ino)
    try:
        return [name for name, _ in fs.readdir(dh, 0)]
    finally:
        fs.releasedir(dh)


async def test_a_hidden_directory_is_in_no_listing_but_answers_a_lookup(tmp_path: Path) -> None:
    fs, _backend, provider, _ = await _mount(tmp_path)
    assert await _names(fs, ROOT_INODE) == ["A"]
    index = (await fs.lookup(ROOT_INODE, ".index")).ino
    assert fs.attr(fs.inodes.get(index)).mode & 0o777 == 0o555
    assert await _names(fs, ROOT_INODE) == ["A"]
    # not in a subdirectory: .index is a root-only name
    a = (await fs.lookup(ROOT_INODE, "A")).ino
    with pytest.raises(errors.NotFound):
        await fs.lookup(a, ".index")
    # the same virtual directory each time
    assert (await fs.lookup(ROOT_INODE, ".index")).ino == index
    assert len(provider.opened) == 1


async def test_an_object_the_tree_knows_is_the_same_inode(tmp_path: Path) -> None:
    fs, _backend, _provider, _ = await _mount(tmp_path)
    a = (await fs.lookup(ROOT_INODE, "A")).ino
    f = (await fs.lookup(a, "f")).ino
    index = (await fs.lookup(ROOT_INODE, ".index")).ino
    assert (await fs.lookup(index, "f")).ino == f
    assert (await fs.lookup(index, "a")).ino == a
    assert fs.path(fs.inodes.get(f)) == "/A/f"


async def test_an_object_found_first_by_index_keeps_its_inode_in_the_tree(tmp_path: Path) -> None:
    fs, _backend, _provider, _ = await _mount(tmp_path)
    index = (await fs.lookup(ROOT_INODE, ".index")).ino
    b = (await fs.lookup(index, "b")).ino
    assert fs.path(fs.inodes.get(b)) == "/.index/b"
    assert await _names(fs, b) == []  # listed like any directory of the repository
    a = (await fs.lookup(ROOT_INODE, "A")).ino
    assert (await fs.lookup(a, "B")).ino == b
    assert fs.path(fs.inodes.get(b)) == "/A/B"


async def test_an_object_listed_under_a_per_place_id_is_the_same_inode(tmp_path: Path) -> None:
    # the tree first, then the index
    fs, _backend, _provider, _ = await _mount(tmp_path)
    a = (await fs.lookup(ROOT_INODE, "A")).ino
    in_tree = (await fs.lookup(a, "I")).ino
    index = (await fs.lookup(ROOT_INODE, ".index")).ino
    assert (await fs.lookup(index, "i")).ino == in_tree
    # the index first, then the tree: the listing takes the node over, inode and all
    fs, _backend, _provider, _ = await _mount(tmp_path / "again")
    index = (await fs.lookup(ROOT_INODE, ".index")).ino
    found = (await fs.lookup(index, "i")).ino
    a = (await fs.lookup(ROOT_INODE, "A")).ino
    assert (await fs.lookup(a, "I")).ino == found
    assert fs.path(fs.inodes.get(found)) == "/A/I"
    assert fs.inodes.get(found).entry.id == "i@a"  # the tree's own entry from now on


async def test_lookups_are_cached_for_the_ttl_found_or_not(tmp_path: Path) -> None:
    fs, _backend, provider, clock = await _mount(tmp_path)
    index = (await fs.lookup(ROOT_INODE, ".index")).ino
    asked = provider.opened[0].asked
    await fs.lookup(index, "f")
    with pytest.raises(errors.NotFound):
        await fs.lookup(index, "nothing")
    await fs.lookup(index, "f")
    with pytest.raises(errors.NotFound):
        await fs.lookup(index, "nothing")
    assert asked == ["f", "nothing"]
    # listed: what was found so far
    assert await _names(fs, index) == ["f"]
    clock.now = 11
    await fs.lookup(index, "f")
    assert asked == ["f", "nothing", "f"]


async def test_a_virtual_directory_that_lists_itself(tmp_path: Path) -> None:
    fs, _backend, _provider, _ = await _mount(tmp_path)
    index = (await fs.lookup(ROOT_INODE, ".index")).ino
    sub = (await fs.lookup(index, "sub")).ino
    assert await _names(fs, sub) == ["v1"]
    v1 = (await fs.lookup(sub, "v1")).ino
    with pytest.raises(errors.ReadOnly):
        await fs.open(v1, write=True)
    with pytest.raises(errors.ReadOnly):
        await fs.setattr(v1, size=0)


async def test_writes_in_a_hidden_directory_are_erofs_without_a_request(tmp_path: Path) -> None:
    fs, backend, _provider, _ = await _mount(tmp_path)
    a = (await fs.lookup(ROOT_INODE, "A")).ino
    index = (await fs.lookup(ROOT_INODE, ".index")).ino
    await fs.lookup(index, "f")
    backend.calls.clear()
    attempts = [
        fs.create(index, "new", 0o644),
        fs.mkdir(index, "new", 0o755),
        fs.unlink(index, "f"),
        fs.rmdir(index, "a"),
        fs.rename(index, "f", a, "g"),
        fs.rename(a, "f", index, "g"),
        fs.setxattr(index, "user.docfs.x", b"1"),
        fs.removexattr(index, "user.docfs.x"),
        fs.setattr(index, mode=0o700),
    ]
    for attempt in attempts:
        with pytest.raises(errors.ReadOnly) as raised:
            await attempt
        assert raised.value.errno == errno.EROFS
    assert backend.calls == []


async def test_a_backend_without_the_api_answers_enoent_with_a_reason(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    fs, backend, _provider, _ = await _mount(tmp_path)
    a = (await fs.lookup(ROOT_INODE, "A")).ino
    backend.calls.clear()
    with caplog.at_level(logging.INFO, logger="docfs.vfs"):
        with pytest.raises(errors.NotFound):
            await fs.lookup(a, ".absent")
        with pytest.raises(errors.NotFound):
            await fs.lookup(ROOT_INODE, ".absent")
    lines = [r.getMessage() for r in caplog.records if r.levelno >= logging.INFO]
    assert lines == [".absent: tree has no API for it (ENOENT)"]
    assert backend.calls == []
