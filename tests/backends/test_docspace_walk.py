"""DocSpace: a folder's deep listing (issue 24.1) fills in its leaf subfolders from one
recursive FilesOnly listing, as their own listings show them (docs/protocols/docspace.md, "A
walk")."""

from __future__ import annotations

from docfs.backends.base import Entry
from docfs.backends.docspace import DocSpaceBackend
from tests.backends.overlap import most_at_once
from tests.backends.test_docspace_backend import OWNER, Serve, children, opened, walk
from tests.backends.test_docspace_backend import reaper as reaper  # a fixture
from tests.backends.test_docspace_backend import serve as serve  # a fixture


async def deep_of(backend: DocSpaceBackend, directory: Entry) -> list[tuple[Entry, list[Entry]]]:
    return [
        (entry, list(files) if files is not None else [])
        async for entry, files in backend.list_dir_deep(directory)
        if entry.is_dir and files is not None
    ]


async def test_deep_listing_fills_leaf_folders_from_a_recursive_listing(serve: Serve) -> None:
    emu, url = serve()
    room = emu.add_room("Walk", owner=OWNER)
    n = 150
    for i in range(n):
        folder = emu.add_folder(room, f"Item {i:03d}", owner=OWNER)
        emu.add_file(folder, "a.docx", f"first {i}".encode(), owner=OWNER)
        emu.add_file(folder, "b.txt", b"x" * (i + 1), owner=OWNER)
    nested = emu.add_folder(room, "Nested", owner=OWNER)
    emu.add_file(emu.add_folder(nested, "Deeper", owner=OWNER), "c.txt", b"c", owner=OWNER)
    emu.add_file(room, "top.txt", b"top", owner=OWNER)
    async with opened(url) as backend:
        directory = await walk(backend, "Rooms", "Walk")
        emu.clear_log()
        everything = [pair async for pair in backend.list_dir_deep(directory)]
        lists = emu.requests("GET", rf"/api/2\.0/files/{room}$")
        # 153 entries in 2 pages, 302 files below in 4 recursive pages; nothing per folder
        assert len(lists) == len(emu.requests()) == 2 + 4
        assert sum("filterType=1" in r.query for r in lists) == 4
        plain = await children(backend, directory)
        assert sorted(e.name for e, _ in everything) == sorted(plain)
        filled = {entry.name: files for entry, files in everything if files is not None}
        # the folders without subfolders, not "Nested" (whose own listing has a folder)
        assert set(filled) == {f"Item {i:03d}" for i in range(n)}
        for entry, files in everything:
            assert entry == plain[entry.name]
            if files is not None:
                alone = [e async for e in backend.list_dir(entry)]
                assert sorted(files, key=lambda e: e.name) == sorted(alone, key=lambda e: e.name)
                assert [f.extra for f in sorted(files, key=lambda e: e.name)] == [
                    f.extra for f in sorted(alone, key=lambda e: e.name)
                ]


async def test_few_leaves_keep_the_plain_listing(serve: Serve) -> None:
    emu, url = serve()
    room = emu.add_room("Small", owner=OWNER)
    folder = emu.add_folder(room, "One", owner=OWNER)
    for i in range(150):
        emu.add_file(folder, f"f{i:03d}.txt", b"x", owner=OWNER)
    async with opened(url) as backend:
        directory = await walk(backend, "Rooms", "Small")
        emu.clear_log()
        assert await deep_of(backend, directory) == []
        # two pages of files below would cost more than listing the one folder
        assert all("filterType" not in r.query for r in emu.requests())
        assert len(emu.requests()) == 1


async def test_many_files_deeper_down_stop_the_recursive_listing(serve: Serve) -> None:
    """The subfolders' ``filesCount`` cannot tell what deeper folders hold: when the first
    recursive page's ``total`` says it would cost more pages than the leaves it fills, the
    walk stops there (one request) and the leaves are listed one by one."""
    emu, url = serve()
    room = emu.add_room("Mixed", owner=OWNER)
    for i in range(3):
        emu.add_file(emu.add_folder(room, f"Leaf {i}", owner=OWNER), "a.txt", b"a", owner=OWNER)
    deep = emu.add_folder(emu.add_folder(room, "Big", owner=OWNER), "Deeper", owner=OWNER)
    for i in range(250):
        emu.add_file(deep, f"f{i:03d}.txt", b"x", owner=OWNER)
    async with opened(url) as backend:
        directory = await walk(backend, "Rooms", "Mixed")
        emu.clear_log()
        assert await deep_of(backend, directory) == []
        recursive = [r for r in emu.requests() if "filterType=1" in r.query]
        assert len(recursive) == 1 and len(emu.requests()) == 2


async def test_the_recursive_pages_after_the_first_go_out_together(serve: Serve) -> None:
    """Once the first recursive page told ``total``, the other pages are asked for at once
    (up to the concurrency cap, 8 here): with latency, batches of four cost a round trip
    more for every four pages."""
    # 300 ms: a loaded machine's scheduling stalls must not pull the five apart
    emu, url = serve(latency_ms=300)
    room = emu.add_room("Wide", owner=OWNER)
    for i in range(260):  # 520 files below: six recursive pages
        folder = emu.add_folder(room, f"Item {i:03d}", owner=OWNER)
        emu.add_file(folder, "a.txt", b"a", owner=OWNER)
        emu.add_file(folder, "b.txt", b"b", owner=OWNER)
    async with opened(url) as backend:
        directory = await walk(backend, "Rooms", "Wide")
        emu.clear_log()
        filled = await deep_of(backend, directory)
        assert len(filled) == 260 and all(len(files) == 2 for _, files in filled)
        recursive = sorted(
            (r for r in emu.requests() if "filterType=1" in r.query), key=lambda r: r.start
        )
        assert len(recursive) == 6
        first, rest = recursive[0], recursive[1:]
        assert all(r.start >= first.start + 0.3 for r in rest)
        assert most_at_once([(r.start, r.end) for r in rest]) == 5
