"""DSpace 6: a collection's deep listing (issue 24.1) carries each item's files as the item's own
listing shows them, in the pages of the collection's listing (docs/protocols/dspace6.md, "A
walk")."""

from __future__ import annotations

from docfs.backends._http import HttpClient, Limits
from docfs.backends.base import Credentials, Entry, Op
from docfs.backends.dspace6 import DSpace6Backend
from docfs.emulators.base import EmulatorServer
from docfs.emulators.dspace6 import DSpace6Emulator
from tests.backends.overlap import most_at_once
from tests.conftest import FAST_RETRY, dspace6_backend


def emu(server: EmulatorServer) -> DSpace6Emulator:
    assert isinstance(server.emulator, DSpace6Emulator)
    return server.emulator


async def collection_entry(backend: DSpace6Backend, community: str, name: str) -> Entry:
    root = await backend.root()
    top = {e.name: e async for e in backend.list_dir(root)}
    return {e.name: e async for e in backend.list_dir(top[community])}[name]


def seed(e: DSpace6Emulator, n: int) -> tuple[str, str]:
    """A collection of ``n`` items (two files each, one with a thumbnail, one private file, one
    item mapped into a second collection) and that second collection."""
    com = e.add_community("Tree")
    col = e.add_collection("Walk", com)
    other = e.add_collection("Other", com)
    for i in range(n):
        item = e.add_item(col, f"Item {i:03d}")
        e.add_bitstream(item, "a.pdf", f"first {i}".encode())
        e.add_bitstream(item, "b.txt", f"second file of {i}".encode() * (i + 1))
        if i % 7 == 0:
            e.add_bitstream(item, "a.pdf.jpg", b"jpeg", bundle="THUMBNAIL")
        if i % 11 == 0:
            e.add_bitstream(item, "secret.txt", b"hidden", public=False)
        if i == 5:
            e.map_item(item, other)
    return col, other


async def test_deep_listing_equals_the_item_listings_and_costs_the_pages(
    dspace6: EmulatorServer,
) -> None:
    e = emu(dspace6)
    n = 230
    col, _ = seed(e, n)
    backend = dspace6_backend(dspace6, Credentials())
    await backend.connect()
    collection = await collection_entry(backend, "Tree", "Walk")
    e.clear_log()
    deep = [(item, files) async for item, files in backend.list_dir_deep(collection)]
    # the collection (numberItems) and its three pages: nothing per item
    assert len(e.requests()) == 1 + 3
    pages = e.requests("GET", rf"^/rest/collections/{col}/items$")
    assert len(pages) == 3
    assert all("expand=metadata%2Cbitstreams%2CparentCollectionList" in r.query for r in pages)
    shallow = [item async for item in backend.list_dir(collection)]
    assert [item for item, _ in deep] == shallow
    mapped = 0
    for item, files in deep:
        assert files is not None
        alone = [f async for f in backend.list_dir(item)]
        # Entry equality covers ids, names, sizes, versions, checksums, ops, meta
        assert list(files) == alone, item.name
        assert [f.thumbnail for f in files] == [f.thumbnail for f in alone]
        assert [f.extra for f in files] == [f.extra for f in alone]
        mapped += any(Op.REMOVE_WITH_DIR in f.ops for f in files)
    assert len(deep) == n
    names = {f.name for _, files in deep for f in files or []}
    assert names == {"a.pdf", "b.txt"}  # the private file and the thumbnails are not listed
    assert mapped == 1  # the mapped item's files go only with the item, as in its own listing
    await backend.aclose()


async def test_deep_listing_of_other_directories_is_the_plain_listing(
    dspace6: EmulatorServer,
) -> None:
    e = emu(dspace6)
    seed(e, 3)
    backend = dspace6_backend(dspace6)
    await backend.connect()
    root = await backend.root()
    top = [(entry, files) async for entry, files in backend.list_dir_deep(root)]
    assert [entry for entry, _ in top] == [entry async for entry in backend.list_dir(root)]
    assert all(files is None for _, files in top)
    await backend.aclose()


async def test_a_slow_page_holds_up_no_other_page(dspace6: EmulatorServer) -> None:
    """The pages are asked for through a window as wide as the client's concurrency cap: one
    slow page holds one slot, and the others, the last ones too, go through the rest (in
    batches the next batch waited for the slowest page of the one before)."""
    e = emu(dspace6)
    com = e.add_community("Tree")
    col = e.add_collection("Walk", com)
    for i in range(450):  # five pages
        e.add_item(col, f"Item {i:03d}")
    http = HttpClient(f"{dspace6.url}/rest", limits=Limits(concurrency=2), retry=FAST_RETRY)
    backend = DSpace6Backend(http, Credentials())
    await backend.connect()
    collection = await collection_entry(backend, "Tree", "Walk")
    e.clear_log()
    slow = 0.5
    e.plan_fault(method="GET", path=rf"^/rest/collections/{col}/items$", delay=slow)
    deep = [item async for item, _ in backend.list_dir_deep(collection)]
    assert sorted(item.name for item in deep) == [f"Item {i:03d}" for i in range(450)]
    pages = e.requests("GET", rf"^/rest/collections/{col}/items$")
    assert len(pages) == 5
    delayed = min(pages, key=lambda r: r.start)  # the first one to arrive got the delay
    assert [r.fault is not None for r in pages].count(True) == 1 and delayed.fault is not None
    # the four others, each alone in the other slot, all began while the slow one waited
    assert all(r.start < delayed.start + slow for r in pages)
    assert most_at_once([(r.start, r.end) for r in pages]) <= 2
    await backend.aclose()
