"""Walking a repository through a real mount (issue 24.1): ``find`` and ``du`` cost the
listing's pages, not a request per directory below it, and see what they saw before."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import pytest

from docfs.emulators.base import Emulator, EmulatorServer
from docfs.emulators.docspace import DocSpaceEmulator
from docfs.emulators.dspace6 import DSpace6Emulator
from docfs.emulators.dspace7 import DSpace7Emulator
from tests.conformance.adapters import ADAPTERS, Adapter, DocSpaceAdapter
from tests.fuse.conftest import Mount, MountFactory

N = 230


def emu(server: EmulatorServer) -> DSpace6Emulator:
    assert isinstance(server.emulator, DSpace6Emulator)
    return server.emulator


def seed(e: DSpace6Emulator) -> tuple[str, dict[str, bytes], str]:
    """``Tree/Walk``: N items with two files each (item 5 also mapped into ``Tree/Other``);
    returns the collection, every file's bytes by its path below it, and the mapped item."""
    com = e.add_community("Tree")
    col = e.add_collection("Walk", com)
    other = e.add_collection("Other", com)
    files: dict[str, bytes] = {}
    mapped = ""
    for i in range(N):
        item = e.add_item(col, f"Item {i:03d}")
        for name, data in (("a.pdf", f"first {i}".encode()), ("b.txt", b"x" * (i + 1))):
            e.add_bitstream(item, name, data)
            files[f"Item {i:03d}/{name}"] = data
        if i == 5:
            e.map_item(item, other)
            mapped = item
    return col, files, mapped


def find_files(m: Mount, top: Path) -> dict[str, int]:
    """``find TOP -type f -printf '%P %s'``: path below TOP → size."""
    out = m.run("find", str(top), "-type", "f", "-printf", "%P\t%s\n").stdout
    return {p: int(s) for p, s in (line.split("\t") for line in out.splitlines())}


def test_find_and_du_over_a_collection_cost_its_pages(
    mount_factory: MountFactory, dspace6_server: EmulatorServer
) -> None:
    e = emu(dspace6_server)
    col, files, _ = seed(e)
    m = mount_factory().start()
    top = m.path / "Tree" / "Walk"
    m.run("ls", str(m.path / "Tree"))
    e.clear_log()
    assert find_files(m, top) == {path: len(data) for path, data in files.items()}
    # the collection (numberItems) and its 3 pages of 100 items, each with its items' files:
    # before, every item was one more request (N + 4 in all)
    pages = e.requests("GET", rf"^/rest/collections/{col}/items$")
    assert len(pages) == 3
    assert len(e.requests()) <= len(pages) + 2, [r.path for r in e.requests()]
    # what the walk listed is what the files are: names, sizes, checksums, contents
    for path in ("Item 000/a.pdf", "Item 117/b.txt", "Item 229/b.txt"):
        md5 = m.run("getfattr", "--only-values", "-n", "user.dspace.checksum.md5", str(top / path))
        assert md5.stdout == hashlib.md5(files[path]).hexdigest()
        assert (top / path).read_bytes() == files[path]
    # du over a fresh mount: the same pages
    e.clear_log()
    fresh = mount_factory(name="again", cache=m.cache.parent / "cache2").start()
    fresh.run("ls", str(fresh.path / "Tree"))
    e.clear_log()
    du = fresh.run("du", "-s", "--apparent-size", "-B1", str(fresh.path / "Tree" / "Walk"))
    assert int(du.stdout.split()[0]) >= sum(len(d) for d in files.values())
    assert len(e.requests()) <= 3 + 2, [r.path for r in e.requests()]


def test_ls_lists_without_the_files_and_mapped_items_keep_their_rules(
    mount_factory: MountFactory, dspace6_server: EmulatorServer
) -> None:
    e = emu(dspace6_server)
    col, _, mapped = seed(e)
    m = mount_factory().start()
    top = m.path / "Tree" / "Walk"
    m.run("ls", str(m.path / "Tree"))
    e.clear_log()
    # one level only (ls): the plain pages, without the items' files
    assert m.run("ls", str(top)).stdout.count("Item ") == N
    pages = e.requests("GET", rf"^/rest/collections/{col}/items$")
    assert len(pages) == 3 and all("bitstreams" not in r.query for r in pages)
    # a walk after it within the TTL: the items one by one, as before
    e.clear_log()
    assert len(find_files(m, top)) == 2 * N
    assert len(e.requests("GET", r"^/rest/items/")) == N
    # a walk's listing of the mapped item: its files go only with the item (rm hides one
    # locally, the item's rmdir unmaps it here and keeps it, files and all, in Other)
    other = mount_factory(name="walked", cache=m.cache.parent / "cache3").start()
    walked = other.path / "Tree" / "Walk"
    other.run("ls", str(other.path / "Tree"))
    assert len(find_files(other, walked)) == 2 * N
    e.clear_log()
    subprocess.run(["rm", "-r", str(walked / "Item 005")], check=True)
    assert e.requests("DELETE", r"^/rest/bitstreams/") == []
    assert not (walked / "Item 005").exists()
    assert sorted(p.name for p in (other.path / "Tree" / "Other" / "Item 005").iterdir()) == [
        "a.pdf",
        "b.txt",
    ]
    assert e.get_object(mapped) is not None


def _seed_other(adapter: Adapter, emulator: Emulator, n: int) -> tuple[Path, dict[str, int]]:
    """``n`` directories of two files where ``adapter``'s repository keeps them: DSpace 7 items
    of a collection ``Tree/Walk``, DocSpace folders of ``My documents/Walk``."""
    sizes: dict[str, int] = {}
    if isinstance(emulator, DSpace7Emulator):
        col = emulator.add_collection("Walk", emulator.add_community("Tree"))
        for i in range(n):
            item = emulator.add_item(col, f"Item {i:03d}")
            for name, data in (("a.txt", f"first {i}".encode()), ("b.txt", b"x" * (i + 1))):
                emulator.add_bitstream(item, name, data)
                sizes[f"Item {i:03d}/{name}"] = len(data)
        return Path("Tree", "Walk"), sizes
    assert isinstance(emulator, DocSpaceEmulator) and isinstance(adapter, DocSpaceAdapter)
    owner = adapter.user[0]
    top = emulator.add_folder(emulator.my_documents_id(owner), "Walk", owner=owner)
    for i in range(n):
        folder = emulator.add_folder(top, f"Item {i:03d}", owner=owner)
        for name, data in (("a.txt", f"first {i}".encode()), ("b.txt", b"x" * (i + 1))):
            emulator.add_file(folder, name, data, owner=owner)
            sizes[f"Item {i:03d}/{name}"] = len(data)
    return Path("My documents", "Walk"), sizes


@pytest.mark.parametrize("kind", ["dspace7", "docspace"])
def test_find_costs_the_pages_on_dspace7_and_docspace(kind: str, tmp_path: Path) -> None:
    """DSpace 7: the collection's 2 Discovery pages (and one HEAD for the cover-page check);
    DocSpace: the folder's 2 pages and 3 pages of the files below it. Before: one request more
    per directory (130)."""
    adapter = next(a for a in ADAPTERS if a.name == kind)
    emulator = adapter.emulator()
    where, sizes = _seed_other(adapter, emulator, 130)
    with EmulatorServer(emulator) as server:
        m = Mount(adapter.remote_url(server), tmp_path / "mnt", tmp_path / "cache")
        m.kind = kind
        creds = adapter.credentials()
        assert creds.user and creds.password
        m.start(credentials=(creds.user, creds.password))
        try:
            m.run("ls", str(m.path / where.parent))
            emulator.clear_log()
            assert find_files(m, m.path / where) == sizes
            assert len(emulator.requests()) <= 5 + 1, [r.path for r in emulator.requests()]
        finally:
            m.stop()
