"""A walking program's listings (issue 24.1) at the vfs level, over the DSpace 6 emulator: the
directories after the one it opens are listed ahead, a few at a time; other programs' are not."""

from __future__ import annotations

import os
from pathlib import Path

import trio

from docfs.emulators.base import EmulatorServer
from docfs.emulators.dspace6 import DSpace6Emulator
from docfs.vfs.content import ContentCache
from docfs.vfs.filesystem import Filesystem
from docfs.vfs.inodes import ROOT_INODE
from docfs.vfs.listings import PREFETCH_SIBLINGS
from docfs.vfs.thumbnails import process_name
from docfs.vfs.walks import Walkers
from tests.conftest import ADMIN, dspace6_backend

COLLECTIONS = 10


def seed(e: DSpace6Emulator) -> list[str]:
    com = e.add_community("Lab")
    cols = [e.add_collection(f"Col {i}", com) for i in range(COLLECTIONS)]
    for col in cols:
        e.add_bitstream(e.add_item(col, "Run"), "a.txt", b"a")
    return cols


async def test_a_walk_lists_the_next_siblings_ahead(tmp_path: Path) -> None:
    e = DSpace6Emulator()
    e.add_user(*ADMIN, admin=True)
    cols = seed(e)
    e.latency_ms = 30
    with EmulatorServer(e) as server:
        backend = dspace6_backend(server)
        await backend.connect()
        fs = Filesystem(backend, await backend.root(), ContentCache(tmp_path / "c", 1 << 20, "t"))
        me = process_name(os.getpid())
        assert me is not None
        fs.walkers = Walkers([me])  # this test is the walking program
        async with trio.open_nursery() as nursery:
            fs.start(nursery)
            lab = (await fs.lookup(ROOT_INODE, "Lab")).ino
            await fs.opendir(lab, os.getpid())
            e.clear_log()
            first = (await fs.lookup(lab, "Col 0")).ino
            await fs.opendir(first, os.getpid())

            def listed() -> set[str]:
                return {c for c in cols if e.requests("GET", rf"^/rest/collections/{c}/items$")}

            with trio.fail_after(20):
                while len(listed()) < 1 + PREFETCH_SIBLINGS:
                    await trio.sleep(0.02)
            assert listed() == set(cols[: 1 + PREFETCH_SIBLINGS])
            # never more than the bound at once (the opened one's listing came before)
            spans = sorted((r.start, r.end) for r in e.requests()[2:])
            assert max(sum(s <= t < end for s, end in spans) for t, _ in spans) <= 4
            # the walk's next directories are ready; opening them costs nothing
            settled = len(e.requests())
            await fs.opendir((await fs.lookup(lab, "Col 1")).ino, os.getpid())
            assert len(e.requests("GET", rf"^/rest/collections/{cols[1]}$")) == 1
            # opening Col 1 moved the window: Col 5 is now listed ahead
            with trio.fail_after(20):
                while cols[5] not in listed():
                    await trio.sleep(0.02)
            assert len(e.requests()) > settled
            nursery.cancel_scope.cancel()
        await backend.aclose()


async def test_other_programs_list_only_what_they_open(tmp_path: Path) -> None:
    e = DSpace6Emulator()
    e.add_user(*ADMIN, admin=True)
    cols = seed(e)
    with EmulatorServer(e) as server:
        backend = dspace6_backend(server)
        await backend.connect()
        fs = Filesystem(backend, await backend.root(), ContentCache(tmp_path / "c", 1 << 20, "t"))
        fs.walkers = Walkers(["find"])
        async with trio.open_nursery() as nursery:
            fs.start(nursery)
            lab = (await fs.lookup(ROOT_INODE, "Lab")).ino
            await fs.opendir(lab, os.getpid())
            e.clear_log()
            await fs.opendir((await fs.lookup(lab, "Col 0")).ino, os.getpid())
            # a prefetch is scheduled inside opendir: none was, and nothing else is listed
            assert not fs.listings._prefetching
            siblings = [fs.inodes.get((await fs.lookup(lab, f"Col {i}")).ino) for i in (1, 2)]
            assert all(node.listed_at is None for node in siblings)
            assert [r for r in e.requests() if cols[0] not in r.path] == []
            # and its collection pages carry no files (a plain listing)
            assert all("bitstreams" not in r.query for r in e.requests())
            nursery.cancel_scope.cancel()
        await backend.aclose()
