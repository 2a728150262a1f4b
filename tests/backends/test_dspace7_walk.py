"""DSpace 7+: a collection's deep listing (issue 24.1) carries each item's files as the item's
own listing shows them, in the Discovery pages of the collection (docs/protocols/dspace7.md,
"A walk")."""

from __future__ import annotations

import pytest

from docfs.backends._http import HttpClient
from docfs.backends.base import Credentials, Op
from docfs.backends.dspace7 import DSpace7Backend
from docfs.emulators.base import EmulatorServer
from docfs.emulators.dspace7 import DSpace7Emulator
from tests.backends.overlap import most_at_once
from tests.backends.test_dspace7_backend import ADMIN, FAST_RETRY, USER


@pytest.mark.parametrize("version", ["7.6", "10.0"])
async def test_deep_listing_equals_the_item_listings_and_costs_the_pages(version: str) -> None:
    emulator = DSpace7Emulator(seed=7, user=ADMIN[0], password=ADMIN[1], version=version)
    emulator.add_user(*USER)
    com = emulator.add_community("C")
    col = emulator.add_collection("Coll", com)
    other = emulator.add_collection("Other", com)
    n = 130
    for i in range(n):
        uuid = emulator.add_item(col, f"Item {i:03d}")
        emulator.add_bitstream(uuid, "a.pdf", f"%PDF-1.4 {i}".encode())
        emulator.add_bitstream(uuid, "b.txt", b"x" * (i + 1))
        if i == 4:
            emulator.map_item(uuid, other)
    with EmulatorServer(emulator) as server:
        backend = DSpace7Backend(HttpClient(server.url, retry=FAST_RETRY), Credentials(*USER))
        await backend.connect()
        root = await backend.root()
        top = {e.name: e async for e in backend.list_dir(root)}
        collection = {e.name: e async for e in backend.list_dir(top["C"])}["Coll"]
        emulator.clear_log()
        deep = [(item, files) async for item, files in backend.list_dir_deep(collection)]
        searches = emulator.requests("GET", "/discover/search/objects$")
        assert len(searches) == 2  # two pages of 100 results, nothing per item
        assert all("embed=bundles%2Fbitstreams" in r.query for r in searches)
        # besides the pages: at most the one HEAD that tells whether PDFs get a cover page
        assert len(emulator.requests()) <= len(searches) + 1
        shallow = [item async for item in backend.list_dir(collection)]
        assert [item for item, _ in deep] == shallow
        mapped = 0
        for item, files in deep:
            assert files is not None
            alone = [f async for f in backend.list_dir(item)]
            assert list(files) == alone, item.name
            assert [f.extra for f in files] == [f.extra for f in alone]
            mapped += any(Op.REMOVE_WITH_DIR in f.ops for f in files)
        assert len(deep) == n and mapped == 1
        assert {f.name for _, files in deep for f in files or []} == {"a.pdf", "b.txt"}
        await backend.aclose()


async def test_deep_listing_asks_for_the_pages_after_the_first_at_once() -> None:
    # with latency, pages one after another would cost a round trip each: once the first
    # page has told totalPages, the others go out together (up to the client's concurrency)
    emulator = DSpace7Emulator(seed=7, user=ADMIN[0], password=ADMIN[1], latency_ms=300)
    emulator.add_user(*USER)
    col = emulator.add_collection("Coll", emulator.add_community("C"))
    n = 330  # four pages of 100
    for i in range(n):
        emulator.add_item(col, f"Item {i:03d}")
    with EmulatorServer(emulator) as server:
        backend = DSpace7Backend(HttpClient(server.url, retry=FAST_RETRY), Credentials(*USER))
        await backend.connect()
        top = {e.name: e async for e in backend.list_dir(await backend.root())}
        collection = {e.name: e async for e in backend.list_dir(top["C"])}["Coll"]
        emulator.clear_log()
        deep = [item async for item, _ in backend.list_dir_deep(collection)]
        assert [item.name for item in deep] == [f"Item {i:03d}" for i in range(n)]
        searches = emulator.requests("GET", "/discover/search/objects$")
        pages = sorted(
            int(dict(p.split("=") for p in r.query.split("&"))["page"]) for r in searches
        )
        assert pages == [0, 1, 2, 3]
        first = min(searches, key=lambda r: r.start)
        rest = [r for r in searches if r is not first]
        # the first page alone (it says how many there are: its answer comes after the
        # latency), then the three others together
        assert all(r.start >= first.start + 0.3 for r in rest)
        assert most_at_once([(r.start, r.end) for r in rest]) == 3
        await backend.aclose()
