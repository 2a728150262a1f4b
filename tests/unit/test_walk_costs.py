"""What a walk costs the vfs per directory (README, "Benchmarks", B10): where the parent's deep
listing brought every sibling's listing, the sibling prefetch looks at each sibling once per
walk, not at the next eight on every opendir."""

from __future__ import annotations

import os
from pathlib import Path

import trio

from docfs.emulators.base import EmulatorServer
from docfs.emulators.dspace6 import DSpace6Emulator
from docfs.vfs.content import ContentCache
from docfs.vfs.filesystem import Filesystem
from docfs.vfs.inodes import ROOT_INODE
from docfs.vfs.thumbnails import process_name
from docfs.vfs.walks import Walkers
from tests.conftest import ADMIN, dspace6_backend

ITEMS = 60


class CountingClock:
    """``Freshness``'s clock: how often a listing's freshness was asked for."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self) -> float:
        self.calls += 1
        return 1000.0  # nothing goes stale during the test


async def test_a_walk_over_a_deep_listing_looks_at_each_sibling_once(tmp_path: Path) -> None:
    e = DSpace6Emulator()
    e.add_user(*ADMIN, admin=True)
    col = e.add_collection("Walk", e.add_community("Lab"))
    for i in range(ITEMS):
        e.add_bitstream(e.add_item(col, f"Item {i:03d}"), "a.txt", b"a")
    with EmulatorServer(e) as server:
        backend = dspace6_backend(server)
        await backend.connect()
        clock = CountingClock()
        fs = Filesystem(
            backend,
            await backend.root(),
            ContentCache(tmp_path / "c", 1 << 20, "t"),
            clock=clock,
        )
        me = process_name(os.getpid())
        assert me is not None
        fs.walkers = Walkers([me])  # this test is the walking program
        async with trio.open_nursery() as nursery:
            fs.start(nursery)
            lab = (await fs.lookup(ROOT_INODE, "Lab")).ino
            walk = (await fs.lookup(lab, "Walk")).ino
            dh = await fs.opendir(walk, os.getpid())  # the deep listing: every item's files
            items = [(name, attr.ino) for name, attr in fs.readdir(dh, 0)]
            fs.releasedir(dh)
            assert len(items) == ITEMS
            e.clear_log()
            clock.calls = 0
            for _, ino in items:  # as find opens them: in readdir's order
                handle = await fs.opendir(ino, os.getpid())
                assert [name for name, _ in fs.readdir(handle, 0)] == ["a.txt"]
                fs.releasedir(handle)
            assert e.requests() == []  # all listed by the collection's pages
            assert not fs.listings._prefetching
            # per opendir: its own listing's freshness, and at most one sibling newly looked
            # at (before, the next eight siblings on every opendir: about 9 per directory)
            assert clock.calls <= 3 * ITEMS
            nursery.cancel_scope.cancel()
        await backend.aclose()
