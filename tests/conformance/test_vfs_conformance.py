"""One suite of filesystem behaviour, run through the vfs (no kernel) over every backend.

Each repository joins through ``adapters.ADAPTERS``; tests that need a write operation are
gated on what the backend declares. Request counts come from the emulator's request log.
"""

from __future__ import annotations

import errno
import re
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import trio

from docfs import errors
from docfs.backends.base import Backend, Op
from docfs.emulators.base import Emulator, EmulatorServer
from docfs.vfs.content import ContentCache
from docfs.vfs.filesystem import Filesystem, Options
from docfs.vfs.inodes import ROOT_INODE
from tests.conformance.adapters import ADAPTERS, DATA, HELLO, Adapter, Seeded


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class World:
    adapter: Adapter
    emulator: Emulator
    seeded: Seeded
    backend: Backend
    fs: Filesystem
    clock: FakeClock

    async def ino(self, *names: str) -> int:
        ino = ROOT_INODE
        for name in names:
            ino = (await self.fs.lookup(ino, name)).ino
        return ino

    async def read(self, *names: str) -> bytes:
        fh, _ = await self.fs.open(await self.ino(*names), write=False)
        try:
            parts = []
            offset = 0
            while chunk := await self.fs.read(fh, offset, 131072):
                parts.append(chunk)
                offset += len(chunk)
            return b"".join(parts)
        finally:
            await self.fs.release(fh)

    async def write_file(self, names: tuple[str, ...], data: bytes) -> None:
        parent = await self.ino(*names[:-1])
        fh, _ = await self.fs.create(parent, names[-1], 0o644)
        await self.fs.write(fh, 0, data)
        await self.fs.flush(fh)
        await self.fs.release(fh)

    async def warm(self) -> int:
        """List the file directory (and its ancestors) so later counts see only the test's."""
        folder = await self.ino(*self.seeded.file_dir)
        await self.fs.opendir(folder)
        return folder

    def requests(self, path: str | None = None) -> int:
        return len(self.emulator.requests(path=path))

    def uploads(self) -> int:
        return len(self.emulator.requests("POST", self.adapter.upload_path))


@pytest.fixture(params=ADAPTERS, ids=lambda a: a.name)
def served(request: pytest.FixtureRequest) -> Iterator[tuple[Adapter, EmulatorServer, Seeded]]:
    adapter: Adapter = request.param
    emulator = adapter.emulator()
    seeded = adapter.seed(emulator)
    with EmulatorServer(emulator) as server:
        yield adapter, server, seeded


@pytest.fixture
async def world(
    served: tuple[Adapter, EmulatorServer, Seeded], tmp_path: Path, nursery: trio.Nursery
) -> AsyncIterator[World]:
    adapter, server, seeded = served
    backend = adapter.backend(server)
    await backend.connect()
    clock = FakeClock()
    content = ContentCache(tmp_path / "cache", 64 << 20, adapter.name)
    fs = Filesystem(backend, await backend.root(), content, Options(dir_cache_time=60), clock=clock)
    fs.start(nursery)
    yield World(adapter, server.emulator, seeded, backend, fs, clock)
    await backend.aclose()


async def test_walk_and_read(world: World) -> None:
    names = dict(
        world.fs.readdir(await world.fs.opendir(await world.ino(*world.seeded.file_dir)), 0)
    )
    assert {"hello.txt", "data.bin"} <= set(names)
    assert names["data.bin"].size == len(DATA)
    assert await world.read(*world.seeded.file_dir, "hello.txt") == HELLO
    assert await world.read(*world.seeded.file_dir, "data.bin") == DATA


async def test_second_read_costs_no_request(world: World) -> None:
    await world.read(*world.seeded.file_dir, "data.bin")
    before = world.requests()
    assert await world.read(*world.seeded.file_dir, "data.bin") == DATA
    assert world.requests() == before


async def test_listing_is_cached_for_the_ttl(world: World) -> None:
    await world.ino(*world.seeded.file_dir, "hello.txt")
    before = world.requests()
    await world.ino(*world.seeded.file_dir, "data.bin")
    await world.fs.getattr(await world.ino(*world.seeded.file_dir))
    assert world.requests() == before
    world.clock.now += 61
    await world.ino(*world.seeded.file_dir, "data.bin")
    assert world.requests() > before


@pytest.mark.parametrize(
    "name", [".hidden", "autorun.inf", ".Trash-0", ".xdg-volume-info", "missing.txt"]
)
async def test_missing_names_in_a_fresh_listing_cost_nothing(world: World, name: str) -> None:
    parent = await world.ino(*world.seeded.file_dir)
    await world.fs.opendir(parent)
    before = world.requests()
    with pytest.raises(errors.NotFound):
        await world.fs.lookup(parent, name)
    assert world.requests() == before


async def test_changed_file_is_served_fresh_after_the_ttl(world: World) -> None:
    assert await world.read(*world.seeded.file_dir, "hello.txt") == HELLO
    world.seeded.change(b"changed behind the mount\n")
    # within the TTL the cached listing (and so the cached version) is still used
    assert await world.read(*world.seeded.file_dir, "hello.txt") == HELLO
    world.clock.now += 61
    assert await world.read(*world.seeded.file_dir, "hello.txt") == b"changed behind the mount\n"


async def test_inodes_are_stable(world: World) -> None:
    first = await world.ino(*world.seeded.file_dir, "hello.txt")
    world.clock.now += 61
    assert await world.ino(*world.seeded.file_dir, "hello.txt") == first


async def test_create_uploads_once(world: World) -> None:
    if Op.CREATE_FILE not in world.backend.capabilities.ops:
        pytest.skip(f"{world.adapter.name} cannot create files")
    await world.warm()
    world.emulator.clear_log()
    await world.write_file((*world.seeded.file_dir, "new.csv"), b"x,y\n1,2\n")
    assert world.uploads() == 1
    world.clock.now += 61
    assert await world.read(*world.seeded.file_dir, "new.csv") == b"x,y\n1,2\n"


async def test_temp_name_is_uploaded_once_under_its_final_name(world: World) -> None:
    if Op.CREATE_FILE not in world.backend.capabilities.ops:
        pytest.skip(f"{world.adapter.name} cannot create files")
    folder = await world.warm()
    world.emulator.clear_log()
    await world.write_file((*world.seeded.file_dir, ".final.txt.Ab12Cd"), b"rsync data")
    assert world.requests() == 0  # nothing leaves while the name is temporary
    await world.fs.rename(folder, ".final.txt.Ab12Cd", folder, "final.txt")
    assert world.uploads() == 1
    assert not [r for r in world.emulator.requests() if "Ab12Cd" in r.path + r.query]
    world.clock.now += 61
    assert await world.read(*world.seeded.file_dir, "final.txt") == b"rsync data"


async def test_rename_over_existing_file_makes_a_new_version(world: World) -> None:
    if Op.REPLACE not in world.backend.capabilities.ops:
        pytest.skip(f"{world.adapter.name} cannot replace content")
    folder = await world.ino(*world.seeded.file_dir)
    await world.write_file((*world.seeded.file_dir, ".hello.txt.XyZ123"), b"version 2\n")
    moved = await world.ino(*world.seeded.file_dir, ".hello.txt.XyZ123")
    world.emulator.clear_log()
    await world.fs.rename(folder, ".hello.txt.XyZ123", folder, "hello.txt")
    # the new bytes went to the server exactly once (``uploads() <= 1`` alone passed with
    # none), and as a new version: no request that creates a second file. A request the server
    # refused stored nothing (a default DSpace 10 answers the first PUT of new content with
    # 400, once per mount, and docfs uploads instead)
    carried = [
        r
        for r in world.emulator.requests()
        if r.method in ("POST", "PUT") and r.bytes_in >= len(b"version 2\n") and r.status < 400
    ]
    assert len(carried) == 1, [(r.method, r.path) for r in carried]
    assert world.uploads() <= 1
    # as rename(2) says: the name now leads to the source's inode, which reads the new bytes
    assert await world.ino(*world.seeded.file_dir, "hello.txt") == moved
    assert await world.read(*world.seeded.file_dir, "hello.txt") == b"version 2\n"
    world.clock.now += 61
    assert await world.ino(*world.seeded.file_dir, "hello.txt") == moved
    assert await world.read(*world.seeded.file_dir, "hello.txt") == b"version 2\n"
    names = [n for n, _ in world.fs.readdir(await world.fs.opendir(folder), 0)]
    assert names.count("hello.txt") == 1 and not [n for n in names if n.startswith("hello [")]


async def test_local_only_names_never_reach_the_server(world: World) -> None:
    await world.warm()
    world.emulator.clear_log()
    await world.write_file((*world.seeded.file_dir, ".DS_Store"), b"junk")
    await world.write_file((*world.seeded.file_dir, ".report.odt.swp"), b"swap")
    assert world.requests() == 0
    assert await world.read(*world.seeded.file_dir, ".DS_Store") == b"junk"


async def test_unsupported_operation_is_refused_without_a_request(world: World) -> None:
    # a directory that allows no file creation (e.g. the root) refuses locally
    root = world.fs.inodes.get(ROOT_INODE)
    if root.entry.allows(Op.CREATE_FILE):
        pytest.skip("the root allows files here")
    await world.fs.opendir(ROOT_INODE)
    before = world.requests()
    with pytest.raises(errors.NotSupported) as info:
        await world.fs.create(ROOT_INODE, "stray.txt", 0o644)
    assert info.value.errno == errno.EPERM
    assert world.requests() == before


async def test_failed_upload_keeps_the_data(world: World) -> None:
    if Op.CREATE_FILE not in world.backend.capabilities.ops:
        pytest.skip(f"{world.adapter.name} cannot create files")
    world.adapter.deny_writes(world.emulator)
    with pytest.raises(errors.PermissionDenied) as info:
        await world.write_file((*world.seeded.file_dir, "denied.txt"), b"precious")
    assert info.value.errno == errno.EACCES
    kept = [p for p in world.fs.lost_found.dir.iterdir() if not p.name.endswith(".json")]
    assert [p.read_bytes() for p in kept] == [b"precious"]
    # the daemon keeps serving
    assert await world.read(*world.seeded.file_dir, "hello.txt") == HELLO


async def test_mkdir_where_the_mapping_allows(world: World) -> None:
    if Op.MKDIR not in world.backend.capabilities.ops:
        pytest.skip(f"{world.adapter.name} cannot create directories")
    parent = await world.ino(*world.seeded.dir_parent)
    attr = await world.fs.mkdir(parent, "Fresh", 0o755)
    assert await world.ino(*world.seeded.dir_parent, "Fresh") == attr.ino
    world.clock.now += 61
    assert await world.ino(*world.seeded.dir_parent, "Fresh") == attr.ino


async def test_read_only_mount_refuses_writes(world: World) -> None:
    world.fs.options.read_only = True
    folder = await world.warm()
    before = world.requests()
    with pytest.raises(errors.ReadOnly) as info:
        await world.fs.create(folder, "x.txt", 0o644)
    assert info.value.errno == errno.EROFS
    assert world.requests() == before


async def test_lost_answer_to_an_upload_creates_no_duplicate(world: World) -> None:
    if Op.CREATE_FILE not in world.backend.capabilities.ops:
        pytest.skip(f"{world.adapter.name} cannot create files")
    await world.warm()
    # the server stores the upload, then the connection drops before the answer arrives
    world.emulator.plan_fault(method="POST", reset_after=0)
    await world.write_file((*world.seeded.file_dir, "once.csv"), b"exactly once\n")
    world.clock.now += 61
    folder = await world.ino(*world.seeded.file_dir)
    names = [name for name, _ in world.fs.readdir(await world.fs.opendir(folder), 0)]
    assert names.count("once.csv") == 1
    assert not [n for n in names if n.startswith("once [")]  # no suffixed twin either
    assert await world.read(*world.seeded.file_dir, "once.csv") == b"exactly once\n"


async def test_rm_r_of_the_file_directory(world: World) -> None:
    folder = await world.warm()
    parent = await world.ino(*world.seeded.dir_parent)
    children = dict(world.fs.readdir(await world.fs.opendir(folder), 0))
    nodes = {name: world.fs.inodes.get(attr.ino) for name, attr in children.items()}
    removable = (Op.REMOVE, Op.REMOVE_WITH_DIR)
    folder_node = world.fs.inodes.get(folder)
    if not folder_node.entry.allows(Op.REMOVE) or not all(
        any(n.entry.allows(op) for op in removable) for n in nodes.values()
    ):
        pytest.skip(f"{world.adapter.name}: these files cannot be removed")
    for name in nodes:  # what rm -r does: the files, then the directory
        await world.fs.unlink(folder, name)
    assert world.fs.readdir(await world.fs.opendir(folder), 0) == []
    await world.fs.rmdir(parent, world.seeded.file_dir[-1])
    world.clock.now += 61
    with pytest.raises(errors.NotFound):
        await world.ino(*world.seeded.file_dir)


async def test_change_feed_refreshes_a_scope_with_one_request(world: World) -> None:
    if not world.backend.capabilities.changes:
        pytest.skip(f"{world.adapter.name} has no change feed")
    assert await world.read(*world.seeded.file_dir, "hello.txt") == HELLO
    world.seeded.change(b"changed behind the mount\n")
    world.clock.now += 61
    world.emulator.clear_log()
    assert await world.read(*world.seeded.file_dir, "hello.txt") == b"changed behind the mount\n"
    log = world.emulator.requests()
    feed = [r for r in log if world.adapter.changes_query in r.query]
    relisted = [r for r in log if re.search(world.adapter.scope_list_path, r.path)]
    assert len(feed) == 1 and relisted == []


async def test_a_scope_is_listed_whole_with_one_tree_listing(world: World) -> None:
    if not world.backend.capabilities.tree:
        pytest.skip(f"{world.adapter.name} lists directory by directory")
    world.emulator.clear_log()
    names = dict(
        world.fs.readdir(await world.fs.opendir(await world.ino(*world.seeded.file_dir)), 0)
    )
    assert {"hello.txt", "data.bin"} <= set(names)
    folder_lists = world.emulator.requests("GET", world.adapter.tree_list_path)
    assert len(folder_lists) == 1  # not one per directory on the way down
