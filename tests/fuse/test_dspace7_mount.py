"""DSpace 7+ through a real mount: the acceptance tests of the DSpace 7 issue.

The same real-program checks as for DSpace 6 (``test_read_mount.py``, ``test_write_mount.py``,
``test_writeback_mount.py``), asserted against the DSpace 7 emulator's state and request log,
plus the two DSpace 7 items: a read from the middle of a large bitstream costs byte-range
requests only, and a login that expires (or is revoked) in the middle of a copy is renewed
without ``cp`` seeing an error.

Where DSpace 7 differs from 6 the assertions follow the mapping in the backend's docstring: an
overwrite is "upload new, delete old, restore the position" (the uuid changes, name and order
do not), items come from Discovery, and a new file in a fresh item first creates its ORIGINAL
bundle.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import json
import os
import re
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from docfs.backends.dspace7 import DSpace7Backend
from docfs.emulators.base import EmulatorServer, LoggedRequest
from docfs.emulators.demo_dspace7 import seed_demo
from docfs.emulators.dspace7 import DSpace7Emulator
from docfs.emulators.samples import large_blob
from docfs.vfs.blocks import BLOCK_SIZE, READ_AHEAD
from tests.conftest import ADMIN
from tests.fuse.conftest import Mount

API = "/server/api"
CONTENT = r"/core/bitstreams/[^/]+/content$"
UPLOAD = r"/core/bundles/[^/]+/bitstreams$"
DISCOVER = r"/discover/search/objects$"
LOGIN = r"/authn/login$"
USER = ("reader@example.org", "reader-password-789")
MIB = 1 << 20
SIZES = [0, 1, 100, 4095, 4096, 4097, 65536, 65537, 300_000, MIB]

Serve = Callable[..., DSpace7Emulator]
MountOf = Callable[..., Mount]


@pytest.fixture
def served() -> Iterator[tuple[Serve, list[EmulatorServer]]]:
    """A function that starts emulators on loopback, and the servers it started."""
    servers: list[EmulatorServer] = []

    def serve(**options: Any) -> DSpace7Emulator:
        emulator = DSpace7Emulator(user=ADMIN[0], password=ADMIN[1], **options)
        emulator.add_user(*USER)
        server = EmulatorServer(emulator)
        server.start()
        servers.append(server)
        return emulator

    yield serve, servers
    for server in servers:
        server.stop()


@pytest.fixture
def serve(served: tuple[Serve, list[EmulatorServer]]) -> Serve:
    """Start a DSpace 7 emulator (admin ``ADMIN``, plain user ``USER``) on loopback."""
    return served[0]


@pytest.fixture
def mount(served: tuple[Serve, list[EmulatorServer]], tmp_path: Path) -> Iterator[MountOf]:
    """``mount(emulator, *options, name=, cache=)``: a docfs daemon over that emulator."""
    made: list[Mount] = []

    def make(
        e: DSpace7Emulator, *extra: str, name: str = "mnt", cache: Path | None = None
    ) -> Mount:
        server = next(s for s in served[1] if s.emulator is e)
        m = Mount(server.url, tmp_path / name, cache or tmp_path / "cache", *extra)
        m.kind = "dspace7"
        made.append(m)
        return m

    yield make
    for m in made:
        m.stop()


# ---- helpers --------------------------------------------------------------------------------


def xattr(m: Mount, path: Path, name: str) -> str:
    return m.run("getfattr", "--only-values", "-n", name, str(path)).stdout


def uuid_of(m: Mount, path: Path) -> str:
    return xattr(m, path, "user.dspace.uuid")


def lab(e: DSpace7Emulator, collection: str = "Incoming") -> tuple[str, str]:
    com = e.add_community("Lab")
    return com, e.add_collection(collection, com)


def item_with(e: DSpace7Emulator, collection: str, title: str, files: dict[str, bytes]) -> str:
    item = e.add_item(collection, title)
    for name, data in files.items():
        e.add_bitstream(item, name, data)
    return item


def files_of(e: DSpace7Emulator, item: str) -> dict[str, bytes]:
    return {name or "": e.content(uuid) for uuid, name in e.bitstreams(item)}


def server_tree(e: DSpace7Emulator, collection: str) -> dict[str, bytes]:
    """``item title/file name`` → bytes, for every archived item of a collection."""
    return {
        f"{e.name_of(item)}/{name}": data
        for item in e.items_in(collection)
        for name, data in files_of(e, item).items()
    }


def make_tree(root: Path, biggest: int) -> dict[str, bytes]:
    """60 files in 6 directories (the directories become items), 0 B to ``biggest``."""
    files: dict[str, bytes] = {}
    for d in range(6):
        (root / f"set-{d}").mkdir(parents=True)
        for f in range(10):
            data = os.urandom(SIZES[f] if (d, f) != (5, 9) else biggest)
            (root / f"set-{d}" / f"file-{f}.dat").write_bytes(data)
            files[f"set-{d}/file-{f}.dat"] = data
    return files


def docfs(*args: str) -> subprocess.CompletedProcess[str]:
    """A docfs client command (``sync``, ``status``) against a running mount."""
    return subprocess.run(
        [sys.executable, "-m", "docfs", *args], capture_output=True, text=True, timeout=120
    )


def posts(e: DSpace7Emulator, path: str) -> list[LoggedRequest]:
    return e.requests("POST", path)


def writes_except_login(e: DSpace7Emulator) -> list[str]:
    """Every mutating request other than a login or token refresh, as ``METHOD path``."""
    return [
        f"{r.method} {r.path}"
        for r in e.requests()
        if r.method in ("POST", "PUT", "PATCH", "DELETE") and not r.path.endswith("/authn/login")
    ]


def max_overlap(requests: list[LoggedRequest]) -> int:
    """The largest number of requests that were being served at the same moment."""
    events = sorted([(r.start, 1) for r in requests] + [(r.end, -1) for r in requests])
    running = peak = 0
    for _, step in events:
        running += step
        peak = max(peak, running)
    return peak


def wait_until(predicate: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


# ---- reading --------------------------------------------------------------------------------


@pytest.fixture(params=["admin", "submitter"])
def role(request: pytest.FixtureRequest) -> str:
    """Who mounts: a site administrator, or an ordinary depositor (issue 17: the DSpace 7
    mount tests run as both where the difference matters)."""
    value: str = request.param
    return value


def test_demo_tree_with_ls_find_cat_cmp_stat_getfattr_cp(
    serve: Serve, mount: MountOf, tmp_path: Path, role: str
) -> None:
    e = serve()
    seed_demo(e)
    if role == "submitter":
        e.grant_role(USER[0], "submitter")  # as `docfs emulate dspace7 --demo --role submitter`
    m = mount(e).start(credentials=ADMIN if role == "admin" else USER)
    assert "Faculty of Science" in m.run("ls", "-l", str(m.path)).stdout
    found = [Path(p) for p in m.run("find", str(m.path)).stdout.splitlines()]
    files = [p for p in found if p.is_file()]
    items = {p.parent for p in files}
    assert len(items) == 4 and len(files) == 8
    for item_dir in items:
        item = uuid_of(m, item_dir)
        # ORIGINAL only: the LICENSE bundle's license.txt is not shown
        assert sorted(p.name for p in item_dir.iterdir()) == sorted(files_of(e, item))
        collection = item_dir.parent
        titles = [e.name_of(i) for i in e.items_in(uuid_of(m, collection))]
        assert sorted(p.name for p in collection.iterdir()) == sorted(t or "" for t in titles)
    for path in files:
        data = e.content(uuid_of(m, path))
        assert subprocess.run(["cmp", str(path), "-"], input=data).returncode == 0, path
        assert path.read_bytes() == data
        st = path.stat()
        assert st.st_size == len(data)
        # a file shows its item's lastModified (DSpace has no per-file date in JSON)
        assert abs(st.st_mtime - e.last_modified(uuid_of(m, path.parent))) < 0.01
    # repository metadata as extended attributes
    item_dir = next(p.parent for p in files if p.name == "measurements.csv")
    dump = m.run("getfattr", "-d", str(item_dir)).stdout
    assert 'user.dspace.dc.title="Lake Water Quality Measurements 2024"' in dump
    assert "user.dspace.dc.contributor.author=" in dump and "user.dspace.handle=" in dump
    file_dump = m.run("getfattr", "-d", str(item_dir / "measurements.csv")).stdout
    md5 = hashlib.md5(e.content(uuid_of(m, item_dir / "measurements.csv"))).hexdigest()
    assert f'user.dspace.checksum.md5="{md5}"' in file_dump
    # probes of shells and file managers in a listed directory cost no request
    e.clear_log()
    for name in (".hidden", "autorun.inf", ".Trash-0", ".xdg-volume-info"):
        assert not (item_dir / name).exists()
    assert e.requests() == []
    # cp -r of a collection out of the mount
    collection = item_dir.parent
    out = tmp_path / "copy"
    m.run("cp", "-r", str(collection), str(out))
    inside = sorted(str(p.relative_to(collection)) for p in collection.rglob("*") if p.is_file())
    copied = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert copied == inside and copied
    for name in copied:
        assert (out / name).read_bytes() == (collection / name).read_bytes()
    # docfs unmount stops the daemon and leaves no process behind
    proc = m.proc
    assert proc is not None
    result = subprocess.run(
        [sys.executable, "-m", "docfs", "unmount", str(m.path)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert proc.wait(15) == 0
    assert not os.path.ismount(m.path)
    m.proc = None


def test_listing_1050_items_costs_11_discovery_pages_then_nothing(
    serve: Serve, mount: MountOf
) -> None:
    e = serve()
    com = e.add_community("Big")
    col = e.add_collection("Many", com)
    for i in range(1050):
        e.add_item(col, f"Item {i:04d}")
    m = mount(e).start()
    path = m.path / "Big" / "Many"
    m.run("ls", str(m.path / "Big"))
    e.clear_log()
    out = m.run("ls", "-l", str(path)).stdout
    assert out.count("Item ") == 1050
    assert len(e.requests("GET", DISCOVER)) == 11  # 100 per page: Discovery's cap
    assert len(e.requests()) == 11  # nothing per item
    e.clear_log()
    m.run("ls", "-l", str(path))
    assert e.requests() == []  # within the TTL


def test_cached_reads_are_free_after_a_restart_and_changes_are_seen_after_the_ttl(
    serve: Serve, mount: MountOf
) -> None:
    e = serve()
    _, col = lab(e)
    item = e.add_item(col, "I")
    data = os.urandom(3 * MIB)
    e.add_bitstream(item, "blob.bin", data)
    note = e.add_bitstream(item, "note.txt", b"first version\n")
    m = mount(e, "--dir-cache-time", "1").start()
    folder = m.path / "Lab" / "Incoming" / "I"
    assert (folder / "blob.bin").read_bytes() == data
    assert (folder / "note.txt").read_text() == "first version\n"
    e.clear_log()
    assert (folder / "blob.bin").read_bytes() == data
    assert e.requests(path=CONTENT) == []
    m.stop()
    m2 = mount(e, "--dir-cache-time", "1").start()  # same cache dir
    assert (folder / "blob.bin").read_bytes() == data
    assert e.requests(path=CONTENT) == []
    e.set_content(note, b"second, longer version\n")
    time.sleep(2.2)  # listing TTL (1 s) and kernel attribute timeout (1 s)
    assert (folder / "note.txt").read_text() == "second, longer version\n"
    assert (folder / "note.txt").stat().st_size == len(b"second, longer version\n")
    m2.stop()


def test_cache_stays_within_its_bound(serve: Serve, mount: MountOf, tmp_path: Path) -> None:
    e = serve()
    _, col = lab(e)
    item = item_with(e, col, "I", {f"f{i:02d}.bin": bytes([i]) * MIB for i in range(12)})
    assert len(e.bitstreams(item)) == 12
    m = mount(e, "--cache-size", "4M", cache=tmp_path / "bounded").start()
    folder = m.path / "Lab" / "Incoming" / "I"
    biggest = 0
    for i in range(12):
        assert (folder / f"f{i:02d}.bin").read_bytes() == bytes([i]) * MIB
        used = sum(p.stat().st_size for p in (tmp_path / "bounded").rglob("content/*"))
        biggest = max(biggest, used)
    assert biggest <= 4 * MIB + MIB  # the bound plus one file in flight
    e.clear_log()
    assert (folder / "f11.bin").read_bytes() == bytes([11]) * MIB  # the newest is cached
    assert e.requests(path=CONTENT) == []


def test_concurrent_readers_and_one_download_for_two_readers(serve: Serve, mount: MountOf) -> None:
    e = serve()
    _, col = lab(e)
    blobs = {f"r{i}.bin": os.urandom(2 * MIB) for i in range(8)}
    shared = os.urandom(10 * MIB)
    item_with(e, col, "I", {**blobs, "shared.bin": shared})
    m = mount(e).start()
    folder = m.path / "Lab" / "Incoming" / "I"
    m.run("ls", str(folder))
    e.latency_ms = 300  # every request waits: serial downloads could not overlap
    e.clear_log()
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        results = dict(
            zip(blobs, pool.map(lambda n: (folder / n).read_bytes(), blobs), strict=True)
        )
    assert results == blobs
    downloads = e.requests("GET", CONTENT)
    # each file: a first FIRST_FETCH bytes for the small read at its start (issue 25: a
    # sniff must not cost a block), then the rest once the reader goes on; no byte twice
    assert len(downloads) == 16
    assert sum(r.bytes_out for r in downloads) == sum(map(len, blobs.values()))
    # as many in flight at once as the backend allows itself on one server
    assert max_overlap(downloads) == DSpace7Backend.default_limits.concurrency
    e.latency_ms = 0
    e.clear_log()
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        both = list(pool.map(lambda _: (folder / "shared.bin").read_bytes(), range(2)))
    assert both == [shared, shared]
    # ranged blocks: each byte was fetched once, whoever asked first
    blocks = e.requests("GET", CONTENT)
    assert sum(r.bytes_out for r in blocks) == len(shared)
    assert {r.status for r in blocks} == {206}


def test_reading_the_middle_of_a_100_mib_bitstream_costs_ranged_requests_only(
    serve: Serve, mount: MountOf
) -> None:
    # the 100 MiB, for real: large_blob builds it in well under a second and the
    # emulator serves it from that one bytes object (memoryview slices, no copies)
    size = 100 * MIB
    blob = large_blob(size, seed=8)
    e = serve()
    _, col = lab(e)
    item_with(e, col, "Big", {"video.bin": blob})
    m = mount(e).start()
    path = m.path / "Lab" / "Incoming" / "Big" / "video.bin"
    assert path.stat().st_size == size
    e.clear_log()
    out = subprocess.run(
        ["dd", f"if={path}", "bs=1M", "skip=50", "count=1", "status=none"],
        capture_output=True,
        check=True,
    ).stdout
    assert out == blob[50 * MIB : 51 * MIB]
    # read-ahead may still be arriving after dd has its bytes
    wait_until(lambda: all(r.end for r in e.requests(path=CONTENT)))
    downloads = e.requests("GET", CONTENT)
    assert downloads and {r.status for r in downloads} == {206}  # never the whole file
    # the block under the read, plus the read-ahead a sequential reader earns
    assert sum(r.bytes_out for r in downloads) <= (2 + READ_AHEAD) * BLOCK_SIZE
    assert e.requests(path=r"/content$") == downloads  # no HEAD or other probe either


# ---- writing --------------------------------------------------------------------------------


def test_cp_r_tree_into_a_collection(
    serve: Serve, mount: MountOf, tmp_path: Path, role: str
) -> None:
    e = serve()
    _, col = lab(e)
    tree = make_tree(tmp_path / "tree", 20 * MIB if role == "admin" else 2 * MIB)
    if role == "submitter":
        e.grant_role(USER[0], "submitter")
    m = mount(e).start(credentials=ADMIN if role == "admin" else USER)
    target = m.path / "Lab" / "Incoming"
    m.run("ls", str(target))
    e.clear_log()
    sources = [str(p) for p in sorted((tmp_path / "tree").iterdir())]
    result = m.run("cp", "-r", *sources, str(target), check=False)
    assert result.returncode == 0, result.stderr
    if role == "submitter":
        # workspace items until deposited: docfs sync deposits them
        assert server_tree(e, col) == {}
        assert docfs("sync", str(m.path)).returncode == 0
    assert server_tree(e, col) == tree
    assert len(posts(e, UPLOAD)) == 60  # one upload per file
    assert len(posts(e, r"/core/items/[^/]+/bundles$")) == 6  # and its ORIGINAL bundle
    if role == "admin":
        assert len(posts(e, r"/core/items$")) == 6  # one item per directory
        assert len(writes_except_login(e)) == 72  # nothing else was created or changed
    else:
        # the admin-only call once, then per directory: a workspace item, its title, date
        # and license (one PATCH), and its deposit
        assert [r.status for r in posts(e, r"/core/items$")] == [403]
        assert len(posts(e, r"/submission/workspaceitems$")) == 6
        assert len(e.requests("PATCH", r"/submission/workspaceitems/\d+$")) == 6
        assert [r.status for r in posts(e, r"/workflow/workflowitems$")] == [201] * 6
        assert len(writes_except_login(e)) == 1 + 6 + 6 + 6 + 6 + 60


def bundle_order(e: DSpace7Emulator, item: str) -> list[str]:
    return [name or "" for _, name in e.bitstreams(item)]


def test_rsync_twice_then_changes(serve: Serve, mount: MountOf, tmp_path: Path) -> None:
    e = serve()
    _, col = lab(e, "Mirror")
    src = tmp_path / "tree"
    tree = make_tree(src, 2 * MIB)
    m = mount(e).start()
    target = m.path / "Lab" / "Mirror"
    e.clear_log()
    first = m.run("rsync", "-a", f"{src}/", f"{target}/", check=False)
    assert first.returncode == 0, first.stderr
    assert server_tree(e, col) == tree
    assert len(posts(e, UPLOAD)) == 60
    # rsync's temporary names stayed local: nothing was uploaded under one and then renamed
    # (a dc.title PATCH) or deleted
    assert e.requests("PATCH") == [] and e.requests("DELETE") == []

    e.clear_log()
    second = m.run("rsync", "-a", "--itemize-changes", f"{src}/", f"{target}/", check=False)
    assert second.returncode == 0, second.stderr
    assert not [ln for ln in second.stdout.splitlines() if ln.startswith(">f")]
    assert writes_except_login(e) == []

    item = next(i for i in e.items_in(col) if e.name_of(i) == "set-2")
    before = {name: uuid for uuid, name in e.bitstreams(item)}
    order = bundle_order(e, item)
    # new sizes, so rsync sees the change whatever the clock's granularity
    (src / "set-2" / "file-3.dat").write_bytes(b"changed three")
    (src / "set-2" / "file-7.dat").write_bytes(b"changed seven, longer")
    e.clear_log()
    third = m.run("rsync", "-a", f"{src}/", f"{target}/", check=False)
    assert third.returncode == 0, third.stderr
    # DSpace 7-9 cannot replace content: each change is one upload and one delete of the old
    assert len(posts(e, UPLOAD)) == 2
    deleted = sorted(r.path for r in e.requests("DELETE"))
    assert deleted == sorted(
        f"{API}/core/bitstreams/{before[n]}" for n in ("file-3.dat", "file-7.dat")
    )
    assert bundle_order(e, item) == order  # same names in the same places
    after = {name: uuid for uuid, name in e.bitstreams(item)}
    assert {n for n in after if after[n] != before[n]} == {"file-3.dat", "file-7.dat"}
    changed = {"set-2/file-3.dat": b"changed three", "set-2/file-7.dat": b"changed seven, longer"}
    assert server_tree(e, col) == {**tree, **changed}
    # at once, a fourth run finds nothing to do: the names rsync renamed its temporary files
    # to show the new files straight away (not the temporary files' inodes)
    e.clear_log()
    fourth = m.run("rsync", "-a", "--itemize-changes", f"{src}/", f"{target}/", check=False)
    assert fourth.returncode == 0, fourth.stderr
    assert not [ln for ln in fourth.stdout.splitlines() if ln.startswith(">f")]
    assert writes_except_login(e) == []


def test_cp_p_mv_rm_mkdir(serve: Serve, mount: MountOf, tmp_path: Path) -> None:
    e = serve()
    _, col = lab(e)
    a = item_with(e, col, "A", {"one.txt": b"one", "two.txt": b"two"})
    b = item_with(e, col, "B", {})
    m = mount(e).start()
    base = m.path / "Lab" / "Incoming"

    local = tmp_path / "stamped.txt"
    local.write_text("keep my time")
    os.utime(local, (1_500_000_000, 1_500_000_000))
    m.run("cp", "-p", str(local), str(base / "A"))
    assert (base / "A" / "stamped.txt").stat().st_mtime == 1_500_000_000
    time.sleep(1.1)  # past the kernel's attribute timeout: the daemon remembers it
    assert (base / "A" / "stamped.txt").stat().st_mtime == 1_500_000_000

    e.clear_log()
    m.run("mv", str(base / "A" / "one.txt"), str(base / "A" / "uno.txt"))
    assert bundle_order(e, a) == ["uno.txt", "two.txt", "stamped.txt"]
    # a dc.title patch, nothing else
    assert writes_except_login(e) == [f"PATCH {API}/core/bitstreams/{e.find('uno.txt')[0]}"]

    # to another item: EXDEV, so mv copies and deletes
    e.clear_log()
    m.run("mv", str(base / "A" / "two.txt"), str(base / "B" / "two.txt"))
    assert bundle_order(e, a) == ["uno.txt", "stamped.txt"]
    assert files_of(e, b) == {"two.txt": b"two"}
    assert len(posts(e, UPLOAD)) == 1 and len(e.requests("DELETE")) == 1

    # over an existing file: the target gets the content (upload, delete the old), the
    # source goes
    uno, stamped = (u for u, _ in e.bitstreams(a))
    e.clear_log()
    m.run("mv", str(base / "A" / "uno.txt"), str(base / "A" / "stamped.txt"))
    assert files_of(e, a) == {"stamped.txt": b"one"}
    assert len(posts(e, UPLOAD)) == 1
    deleted = sorted(r.path for r in e.requests("DELETE"))
    assert deleted == sorted(f"{API}/core/bitstreams/{u}" for u in (uno, stamped))

    # an item's name is its title
    e.clear_log()
    m.run("mv", str(base / "B"), str(base / "Bee"))
    assert e.name_of(b) == "Bee"
    assert writes_except_login(e) == [f"PATCH {API}/core/items/{b}"]

    # rm -r of an item: its files first, then the item
    [(last, _)] = e.bitstreams(a)
    e.clear_log()
    m.run("rm", "-r", str(base / "A"))
    assert not e.exists(a) and not (base / "A").exists()
    deletes = [r.path for r in e.requests("DELETE")]
    assert deletes == [f"{API}/core/bitstreams/{last}", f"{API}/core/items/{a}"]

    # mkdir -p: a collection in a community, an item in a collection; an item holds files only
    m.run("mkdir", "-p", str(m.path / "Lab" / "New Collection" / "New Item"))
    [new_col] = e.find("New Collection", "collection")
    assert [e.name_of(i) for i in e.items_in(new_col)] == ["New Item"]
    nested = m.run("mkdir", "-p", str(base / "new-item" / "deeper"), check=False)
    assert nested.returncode != 0
    assert "Operation not permitted" in nested.stderr
    assert "new-item" in [e.name_of(i) for i in e.items_in(col)]
    assert (base / "new-item").is_dir() and not (base / "new-item" / "deeper").exists()
    assert e.find("deeper") == []


def test_overwrite_in_place_keeps_name_and_position(serve: Serve, mount: MountOf) -> None:
    e = serve()
    _, col = lab(e)
    item = item_with(
        e, col, "Edits", {"log.txt": b"line 1\n", "data.bin": b"0123456789", "last.txt": b"end"}
    )
    order = bundle_order(e, item)
    ids = {name: uuid for uuid, name in e.bitstreams(item)}
    m = mount(e).start()
    base = m.path / "Lab" / "Incoming" / "Edits"

    subprocess.run(f"echo 'line 2' >> '{base / 'log.txt'}'", shell=True, check=True)
    assert files_of(e, item)["log.txt"] == b"line 1\nline 2\n"

    m.run(
        "dd",
        "if=/dev/zero",
        f"of={base / 'data.bin'}",
        "bs=1",
        "count=2",
        "seek=3",
        "conv=notrunc",
        "status=none",
    )
    assert files_of(e, item)["data.bin"] == b"012\0\x0056789"

    with open(base / "data.bin", "r+b") as fh:
        fh.seek(8)
        fh.write(b"XYZ")
    assert files_of(e, item)["data.bin"] == b"012\0\x00567XYZ"
    # new content under the same names, in the same places; only the edited files are new
    assert bundle_order(e, item) == order
    now = {name: uuid for uuid, name in e.bitstreams(item)}
    assert now["last.txt"] == ids["last.txt"]
    assert now["log.txt"] != ids["log.txt"] and now["data.bin"] != ids["data.bin"]
    assert not e.exists(ids["log.txt"]) and not e.exists(ids["data.bin"])
    assert (base / "data.bin").read_bytes() == b"012\0\x00567XYZ"
    assert xattr(m, base / "data.bin", "user.dspace.uuid") == now["data.bin"]


def test_metadata_through_xattrs(serve: Serve, mount: MountOf) -> None:
    e = serve()
    _, col = lab(e)
    item = item_with(e, col, "Tagged", {"a.txt": b"a"})
    m = mount(e).start()
    path = m.path / "Lab" / "Incoming" / "Tagged"
    m.run("setfattr", "-n", "user.dspace.dc.subject", "-v", "soil", str(path))
    assert e.metadata_of(item)["dc.subject"] == ["soil"]
    assert xattr(m, path, "user.dspace.dc.subject") == "soil"
    m.run("setfattr", "-n", "user.dspace.dc.subject", "-v", "soil\nwater", str(path))
    assert e.metadata_of(item)["dc.subject"] == ["soil", "water"]
    m.run("setfattr", "-x", "user.dspace.dc.subject", str(path))
    assert "dc.subject" not in e.metadata_of(item)
    [(file_uuid, _)] = e.bitstreams(item)
    m.run("setfattr", "-n", "user.dspace.dc.description", "-v", "raw data", str(path / "a.txt"))
    assert e.metadata_of(file_uuid)["dc.description"] == ["raw data"]
    refused = m.run("setfattr", "-n", "user.dspace.uuid", "-v", "x", str(path), check=False)
    assert refused.returncode != 0


def test_an_ordinary_user_submits_items_and_a_refused_upload_keeps_its_data(
    serve: Serve, mount: MountOf, tmp_path: Path
) -> None:
    e = serve()
    _, col = lab(e)
    item_with(e, col, "Target", {"ok.txt": b"still here"})
    open_col = e.add_collection("Open", e.find("Lab", "community")[0])
    e.grant_submit(open_col, USER[0])
    # Discovery lags behind from now on: new items reach the index a minute late
    e.index_delay = 60.0
    m = mount(e, "--dir-cache-time", "1", cache=tmp_path / "c").start(credentials=USER)
    base = m.path / "Lab"

    # mkdir as a non-administrator: a workspace item, deposited once it holds a file
    e.clear_log()
    m.run("mkdir", str(base / "Open" / "My Item"))
    [item] = e.find("My Item", "item")
    assert e.item_state(item)["in_workspace"]
    assert [r.status for r in posts(e, r"/core/items$")] == [403]
    assert len(posts(e, r"/submission/workspaceitems$")) == 1
    (tmp_path / "mine.txt").write_bytes(b"my data")
    m.run("cp", str(tmp_path / "mine.txt"), str(base / "Open" / "My Item"))
    assert docfs("sync", str(m.path)).returncode == 0
    assert e.item_state(item)["in_archive"]
    assert [r.status for r in posts(e, r"/workflow/workflowitems$")] == [201]
    time.sleep(1.2)  # past the listing's TTL: Discovery still does not list the new item …
    assert "My Item" in m.run("ls", str(base / "Open")).stdout  # … docfs still shows it
    assert files_of(e, item) == {"mine.txt": b"my data"}

    # a real refusal: this user may read "Target" but not add to it (no planned fault)
    m.run("ls", str(base / "Incoming" / "Target"))
    e.clear_log()
    local = tmp_path / "precious.txt"
    local.write_bytes(b"do not lose me")
    result = m.run("cp", str(local), str(base / "Incoming" / "Target"), check=False)
    assert result.returncode != 0
    assert "Permission denied" in result.stderr
    assert [r.status for r in posts(e, UPLOAD)] == [403]
    kept = list((tmp_path / "c").rglob("lost+found/*precious.txt"))
    assert [p.read_bytes() for p in kept] == [b"do not lose me"]
    assert "precious.txt" in kept[0].with_name(kept[0].name + ".json").read_text()
    assert "lost+found" in m.log_text()
    # the daemon keeps serving
    assert (base / "Incoming" / "Target" / "ok.txt").read_bytes() == b"still here"


def test_local_only_files_never_leave(serve: Serve, mount: MountOf) -> None:
    e = serve()
    _, col = lab(e)
    item_with(e, col, "Work", {"a.txt": b"a"})
    m = mount(e).start()
    base = m.path / "Lab" / "Incoming" / "Work"
    m.run("ls", str(base))
    e.clear_log()
    for name in (".report.txt.swp", ".DS_Store", "._x", "~$doc.docx"):
        (base / name).write_bytes(b"scratch")
        assert (base / name).read_bytes() == b"scratch"
        (base / name).unlink()
    assert writes_except_login(e) == []


def test_write_back_queue_survives_sigkill_each_file_once(
    serve: Serve, mount: MountOf, tmp_path: Path
) -> None:
    e = serve()
    _, col = lab(e)
    item = item_with(e, col, "Batch", {})
    src = tmp_path / "src"
    src.mkdir()
    # 60 files rather than DSpace 6's 200: the property is the same, and after the restart
    # each queued job first looks whether it arrived (a listing of the growing item)
    files = {f"f{i:03d}.txt": f"file number {i}\n".encode() * (i % 7 + 1) for i in range(60)}
    for name, data in files.items():
        (src / name).write_bytes(data)
    m = mount(e, "--write-back", "30").start()
    dest = m.path / "Lab" / "Incoming" / "Batch"
    m.run("cp", "-r", *[str(p) for p in sorted(src.iterdir())], str(dest))
    assert posts(e, UPLOAD) == []  # nothing uploaded yet: close returned at once
    assert sorted(p.name for p in dest.iterdir()) == sorted(files)
    m.stop(kill=True)
    assert files_of(e, item) == {}

    m2 = mount(e).start()  # same cache dir: the queue resumes
    wait_until(lambda: len(e.bitstreams(item)) >= len(files))
    # the queue on disk is empty and no request is in flight: a duplicate would be here now
    wait_until(
        lambda: not list(m2.cache.rglob("queue/*.json")) and all(r.end for r in e.requests())
    )
    assert files_of(e, item) == files
    assert max(Counter(name for _, name in e.bitstreams(item)).values()) == 1
    assert len(posts(e, UPLOAD)) == len(files)
    m2.stop()


# ---- logins ---------------------------------------------------------------------------------


def test_login_expiring_or_revoked_mid_copy_is_renewed_without_an_error(
    serve: Serve, mount: MountOf, tmp_path: Path
) -> None:
    # tokens live 2 s (DSpace: 30 min) and every request takes at least 100 ms, so copying
    # 25 files (one upload each) takes longer than a token lives, whatever the machine's speed
    e = serve(jwt_lifetime=2.0)
    _, col = lab(e)
    inbox = item_with(e, col, "Inbox", {"first.txt": b"first"})
    vault = item_with(e, col, "Vault", {f"v{i:02d}.txt": b"%d\n" % i * 100 for i in range(12)})
    e.restrict(vault, [])  # reading it needs a valid login
    src = tmp_path / "src"
    src.mkdir()
    files = {f"n{i:02d}.txt": os.urandom(1000 + i) for i in range(25)}
    for name, data in files.items():
        (src / name).write_bytes(data)
    m = mount(e).start()
    base = m.path / "Lab" / "Incoming"
    m.run("ls", str(base / "Inbox"), str(base / "Vault"))
    e.latency_ms = 100
    e.clear_log()
    sources = [str(p) for p in sorted(src.iterdir())]
    copy = m.run("cp", "-r", *sources, str(base / "Inbox"), check=False)
    assert copy.returncode == 0, copy.stderr
    assert files_of(e, inbox) == {"first.txt": b"first", **files}
    assert len(posts(e, LOGIN)) >= 1  # the token was renewed during the copy
    assert len(posts(e, UPLOAD)) == len(files)  # and no upload was sent twice

    # a login revoked (a logout elsewhere) while a restricted item is copied out: as the 4th
    # download arrives (before its latency and its login check), so that request and the ones
    # after it meet the revocation (a thread polling the log could come too late on a loaded
    # machine: CI once saw every download through before the revocation)
    e.clear_log()
    revoked = threading.Event()

    def revoke_at_the_4th_download(request: LoggedRequest) -> None:
        content = request.method == "GET" and re.search(CONTENT, request.path)
        if content and not revoked.is_set() and len(e.requests("GET", CONTENT)) >= 4:
            e.expire_sessions(ADMIN[0])
            revoked.set()

    e.on_request = revoke_at_the_4th_download
    try:
        out = m.run("cp", "-r", str(base / "Vault"), str(tmp_path / "vault"), check=False)
    finally:
        e.on_request = None
    assert out.returncode == 0, out.stderr
    assert revoked.is_set()
    assert {p.name: p.read_bytes() for p in (tmp_path / "vault").iterdir()} == files_of(e, vault)
    assert 401 in {r.status for r in e.requests()}  # the revocation was noticed …
    assert [r.status for r in posts(e, LOGIN)][-1:] == [200]  # … and a new login made


# ---- issue 17: servers set up like the real ones -----------------------------------------------


def held_back(m: Mount) -> list[str]:
    status = docfs("status", str(m.path), "--json")
    assert status.returncode == 0, status.stderr
    report = json.loads(status.stdout)
    lines: list[str] = report["held_back"]
    return lines


def lost_found(cache: Path) -> list[Path]:
    return [p for p in cache.rglob("lost+found/*") if p.is_file()]


def test_a_submitter_copies_a_directory_into_a_default_dspace_10(
    serve: Serve, mount: MountOf, tmp_path: Path
) -> None:
    """The acceptance test of issue 17, item 3: a non-administrator, DSpace 10 with default
    settings (upload required, content replacement off), ``cp -r`` of 20 files — a 25 MiB
    one, names with é and CJK characters — into a collection: one item with all 20 files,
    byte-identical; an overwrite works; nothing in lost+found."""
    e = serve(version="10.0")
    lab(e)
    e.grant_role(USER[0], "submitter")
    src = tmp_path / "Thèse 论文"
    src.mkdir()
    names = [f"chapter-{n:02d}.txt" for n in range(15)]
    names += ["résumé.pdf", "数据.csv", "画像 über.png", "naïve notes.md", "big.bin"]
    files = {
        name: os.urandom(25 * MIB if name == "big.bin" else 100 + 37 * n)
        for n, name in enumerate(names)
    }
    for name, data in files.items():
        (src / name).write_bytes(data)
    cache = tmp_path / "c"
    m = mount(e, cache=cache).start(credentials=USER)
    target = m.path / "Lab" / "Incoming"
    result = m.run("cp", "-r", str(src), str(target), check=False)
    assert result.returncode == 0, result.stderr
    # a workspace item until deposited, shown as a directory meanwhile
    [item] = e.find(src.name, "item")
    assert e.item_state(item)["in_workspace"]
    assert sorted(os.listdir(target / src.name)) == sorted(names)
    (held,) = held_back(m)
    assert src.name in held
    # an overwrite while it waits (10.0 without replacement: one 400, then upload-and-swap)
    files["数据.csv"] = b"a,b\n1,2\n"
    (target / src.name / "数据.csv").write_bytes(files["数据.csv"])

    synced = docfs("sync", str(m.path))
    assert synced.returncode == 0, synced.stderr
    assert e.item_state(item)["in_archive"]
    assert [r.status for r in posts(e, r"/workflow/workflowitems$")] == [201]
    assert e.find(src.name, "item") == [item]  # one item
    assert files_of(e, item) == files  # all 20, byte-identical, under their own names
    assert [r.status for r in e.requests("PUT", CONTENT)] == [400]
    assert held_back(m) == []
    assert lost_found(cache) == []
    assert (target / src.name / "big.bin").read_bytes() == files["big.bin"]


def test_a_submitter_rsyncs_a_tree_and_each_directory_becomes_one_item(
    serve: Serve, mount: MountOf, tmp_path: Path
) -> None:
    e = serve()
    _, col = lab(e, "Mirror")
    e.grant_role(USER[0], "submitter")
    src = tmp_path / "tree"
    tree = {
        f"set-{d}/f{n}.txt": f"{d}/{n}\n".encode() * (n + 1) for d in range(2) for n in range(5)
    }
    for rel, data in tree.items():
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        (src / rel).write_bytes(data)
    cache = tmp_path / "c"
    m = mount(e, cache=cache).start(credentials=USER)
    target = m.path / "Lab" / "Mirror"
    first = m.run("rsync", "-a", f"{src}/", f"{target}/", check=False)
    assert first.returncode == 0, first.stderr
    assert len(held_back(m)) == 2
    assert docfs("sync", str(m.path)).returncode == 0
    assert server_tree(e, col) == tree
    assert [r.status for r in posts(e, r"/workflow/workflowitems$")] == [201, 201]
    assert lost_found(cache) == []
    e.clear_log()
    second = m.run("rsync", "-a", "--itemize-changes", f"{src}/", f"{target}/", check=False)
    assert second.returncode == 0, second.stderr
    assert writes_except_login(e) == []


def test_a_quiet_submission_is_deposited_and_unmount_deposits_the_rest(
    serve: Serve, mount: MountOf, tmp_path: Path
) -> None:
    """Without ``docfs sync``: fsync of the directory deposits it, and so does unmounting."""
    e = serve()
    lab(e)
    e.grant_role(USER[0], "submitter")
    m = mount(e).start(credentials=USER)
    target = m.path / "Lab" / "Incoming"
    for name in ("One", "Two"):
        (target / name).mkdir()
        (target / name / "a.txt").write_bytes(name.encode())
    fd = os.open(target / "One", os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    [one] = e.find("One", "item")
    [two] = e.find("Two", "item")
    assert e.item_state(one)["in_archive"] and e.item_state(two)["in_archive"]
    (target / "Three").mkdir()
    (target / "Three" / "b.txt").write_bytes(b"three")
    m.stop()
    [three] = e.find("Three", "item")
    assert e.item_state(three)["in_archive"]
    assert files_of(e, three) == {"b.txt": b"three"}


def test_every_pdf_reads_as_served_on_a_dspace_with_cover_pages(
    serve: Serve, mount: MountOf, tmp_path: Path
) -> None:
    """Issue 17, item 10: citation-page.enable_globally. stat size = bytes read, for every PDF
    (one of several blocks too), no MD5 rejection, no ranges mixing two renderings."""
    e = serve(version="9.1", cover_pages=True)
    _, col = lab(e)
    stored = {
        "small.pdf": b"%PDF-1.4 small",
        "big.pdf": b"%PDF-1.4 " + os.urandom(BLOCK_SIZE + MIB),
        "plain.txt": b"not a pdf",
    }
    item_with(e, col, "Paper", stored)
    m = mount(e).start(credentials=USER)
    base = m.path / "Lab" / "Incoming" / "Paper"
    e.clear_log()
    for name, data in stored.items():
        path = base / name
        body = path.read_bytes()
        assert os.stat(path).st_size == len(body)
        if name.endswith(".pdf"):
            assert body.endswith(data) and len(body) > len(data)
        else:
            assert body == data
    big = (base / "big.pdf").read_bytes()
    with open(base / "big.pdf", "rb") as fh:
        fh.seek(BLOCK_SIZE - 10)
        assert fh.read(100) == big[BLOCK_SIZE - 10 : BLOCK_SIZE + 90]
    [big_uuid] = [u for u, n in e.bitstreams(e.find("Paper", "item")[0]) if n == "big.pdf"]
    # read whole, once: no block requests over a document the server renders per request
    assert len(e.requests("GET", f"/core/bitstreams/{big_uuid}/content$")) == 1
    assert m.log_text().count("serves PDFs changed") == 1
    assert "MD5 mismatch" not in m.log_text()


def test_a_submission_left_by_a_killed_mount_is_reported_by_the_next(
    serve: Serve, mount: MountOf, tmp_path: Path
) -> None:
    e = serve()
    lab(e)
    e.grant_role(USER[0], "submitter")
    first = mount(e, cache=tmp_path / "c1").start(credentials=USER)
    (first.path / "Lab" / "Incoming" / "Cut short").mkdir()
    (first.path / "Lab" / "Incoming" / "Cut short" / "a.txt").write_bytes(b"a")
    first.stop(kill=True)
    [left] = e.find("Cut short", "item")
    assert e.item_state(left)["in_workspace"]
    second = mount(e, name="mnt2", cache=tmp_path / "c2").start(credentials=USER)
    (second.path / "Lab" / "Incoming" / "Next").mkdir()
    lines = held_back(second)
    assert any("Cut short" in line and "left in your DSpace workspace" in line for line in lines)
    assert "never deposited" in second.log_text()
    assert "held back   Cut short" in docfs("status", str(second.path)).stdout


def test_rm_r_of_a_mapped_item_takes_it_out_of_that_collection_only(
    serve: Serve, mount: MountOf
) -> None:
    """Issue 17.9, DSpace 7+: ``DELETE /core/items/{uuid}`` deletes an item from every
    collection, so ``rm -r`` of a mapped item unmaps it from the collection it was removed
    from (or hands ownership to another of its collections) and keeps its files."""
    e = serve()
    com, owner = lab(e)
    reading = e.add_collection("Reading list", com)
    shelf = e.add_collection("Shelf", com)
    files = {"paper.pdf": b"%PDF-1.4 paper", "data.csv": b"a,b\n"}
    item = item_with(e, owner, "Shared paper", files)
    e.map_item(item, reading)
    e.map_item(item, shelf)
    m = mount(e).start()
    base = m.path / "Lab"
    for col in ("Incoming", "Reading list", "Shelf"):
        assert sorted(os.listdir(base / col / "Shared paper")) == ["data.csv", "paper.pdf"]
    # from a collection it is mapped into: unmapped there, nothing deleted
    e.clear_log()
    m.run("rm", "-r", str(base / "Reading list" / "Shared paper"))
    assert not (base / "Reading list" / "Shared paper").exists()
    assert [(r.method, r.path) for r in e.requests() if r.method != "GET"] == [
        ("DELETE", f"{API}/core/items/{item}/mappedCollections/{reading}")
    ]
    assert files_of(e, item) == files
    # from its owning collection: another collection becomes the owner, files kept
    e.clear_log()
    m.run("rm", "-r", str(base / "Incoming" / "Shared paper"))
    assert [(r.method, r.path) for r in e.requests() if r.method != "GET"] == [
        ("PUT", f"{API}/core/items/{item}/owningCollection")
    ]
    assert e.items_in(owner) == [] and e.items_in(shelf) == [item]
    assert files_of(e, item) == files
    m.run("docfs", "refresh", str(base), check=False)
    # where it lives nowhere else, rm -r deletes it, files and all
    m.run("rm", "-r", str(base / "Shelf" / "Shared paper"))
    assert e.items_in(shelf) == []
    assert item not in {u for c in (owner, reading, shelf) for u in e.items_in(c)}
