"""Reading through a real mount with real programs (issue: the filesystem, read side)."""

from __future__ import annotations

import concurrent.futures
import contextlib
import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from docfs.emulators.base import EmulatorServer
from docfs.emulators.demo_data import seed_dspace6
from docfs.emulators.dspace6 import DSpace6Emulator
from tests.fuse.conftest import Mount, MountFactory


def emu(server: EmulatorServer) -> DSpace6Emulator:
    assert isinstance(server.emulator, DSpace6Emulator)
    return server.emulator


def xattr(m: Mount, path: Path, name: str) -> str:
    return m.run("getfattr", "--only-values", "-n", name, str(path)).stdout


def timestamp(value: datetime) -> float:
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp()


def test_demo_tree_with_ls_find_cat_cmp_stat_getfattr_cp(
    mount_factory: MountFactory, dspace6_server: EmulatorServer, tmp_path: Path
) -> None:
    e = emu(dspace6_server)
    seed_dspace6(e)
    m = mount_factory().start()
    assert "Faculty of Science" in m.run("ls", "-l", str(m.path)).stdout
    found = [Path(p) for p in m.run("find", str(m.path)).stdout.splitlines()]
    files = [p for p in found if p.is_file()]
    assert len(files) >= 10
    for path in files:
        uuid = xattr(m, path, "user.docfs.id")
        data = e.bitstream_data(uuid)
        assert subprocess.run(["cmp", str(path), "-"], input=data).returncode == 0, path
        assert path.read_bytes() == data
        bitstream = e.get_object(uuid)
        assert bitstream is not None
        item = e.get_object(bitstream["parent"])
        assert item is not None
        st = path.stat()
        assert st.st_size == len(data)
        assert abs(st.st_mtime - timestamp(item["last_modified"])) < 1
    # repository metadata as extended attributes
    item_dir = files[0].parent
    dump = m.run("getfattr", "-d", str(item_dir)).stdout
    item_object = e.get_object(xattr(m, item_dir, "user.docfs.id"))
    assert item_object is not None
    title = item_object["name"]
    assert f'user.dspace.dc.title="{title}"' in dump
    assert "user.dspace.handle=" in dump
    assert "user.dspace.checksum.md5=" in m.run("getfattr", "-d", str(files[0])).stdout
    # cp -r of a collection out of the mount
    collection = item_dir.parent
    out = tmp_path / "copy"
    m.run("cp", "-r", str(collection), str(out))
    inside = sorted(str(p.relative_to(collection)) for p in collection.rglob("*") if p.is_file())
    copied = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert copied == inside and copied
    for name in copied:
        assert (out / name).read_bytes() == (collection / name).read_bytes()
    # browsing is no failure: none of it may be logged as a warning (ls -l asks every file
    # for security.selinux and the ACL names, which this filesystem does not store)
    m.run("ls", "-lR", str(m.path))
    assert " WARNING " not in m.log_text(), m.log_text()[-2000:]


def big_collection(e: DSpace6Emulator, n: int = 1050) -> str:
    com = e.add_community("Big")
    col = e.add_collection("Many", com)
    for i in range(n):
        e.add_item(col, f"Item {i:04d}")
    return col


def test_request_economy_of_listings_and_missing_names(
    mount_factory: MountFactory, dspace6_server: EmulatorServer
) -> None:
    e = emu(dspace6_server)
    col = big_collection(e)
    m = mount_factory().start()
    path = m.path / "Big" / "Many"
    m.run("ls", str(m.path / "Big"))
    e.clear_log()
    out = m.run("ls", "-l", str(path)).stdout
    assert out.count("Item ") == 1050
    assert len(e.requests("GET", rf"^/rest/collections/{col}/items$")) == 11
    assert len(e.requests()) == 12  # + the collection itself (numberItems); nothing per item
    e.clear_log()
    m.run("ls", "-l", str(path))
    assert e.requests() == []  # within the TTL
    for name in (".hidden", "autorun.inf", ".Trash-0", ".xdg-volume-info"):
        assert not (path / name).exists()
    assert e.requests() == []


def test_cached_reads_cost_nothing_even_after_a_restart(
    mount_factory: MountFactory, dspace6_server: EmulatorServer
) -> None:
    e = emu(dspace6_server)
    com = e.add_community("C")
    col = e.add_collection("K", com)
    item = e.add_item(col, "I")
    data = os.urandom(3 << 20)
    e.add_bitstream(item, "blob.bin", data)
    m = mount_factory().start()
    target = m.path / "C" / "K" / "I" / "blob.bin"
    assert target.read_bytes() == data
    e.clear_log()
    assert target.read_bytes() == data
    assert e.requests(path="/retrieve$") == []
    m.stop()
    m2 = mount_factory().start()  # same cache dir
    assert (m2.path / "C" / "K" / "I" / "blob.bin").read_bytes() == data
    assert e.requests(path="/retrieve$") == []


def test_direct_io_reads_bypass_the_kernel_page_cache(
    mount_factory: MountFactory, dspace6_server: EmulatorServer, tmp_path: Path
) -> None:
    # seen by changing docfs's cached copy behind its back: a plain mount's second read is
    # answered by the kernel from its own copy, a --direct-io mount's by docfs every time
    e = emu(dspace6_server)
    item = e.add_item(e.add_collection("K", e.add_community("C")), "I")
    data = os.urandom(3 << 20)
    e.add_bitstream(item, "blob.bin", data)
    changed = bytes(b ^ 0xFF for b in data[:4096]) + data[4096:]
    seen, written = {}, {}
    for name, extra in (("plain", ()), ("direct", ("--direct-io",))):
        m = mount_factory(*extra, name=name, cache=tmp_path / f"cache-{name}").start()
        fd = os.open(m.path / "C" / "K" / "I" / "blob.bin", os.O_RDONLY)
        try:
            assert os.pread(fd, len(data) + 1, 0) == data
            deadline = time.monotonic() + 10  # kept once verified, just after the last read
            while not (copies := [p for p in m.cache.rglob("content/*") if p.suffix != ".part"]):
                assert time.monotonic() < deadline, "the download was never kept"
                time.sleep(0.01)
            (copy,) = copies
            with open(copy, "r+b") as fh:
                fh.write(changed[:4096])
            seen[name] = os.pread(fd, len(data) + 1, 0)  # the same open file, read again
        finally:
            os.close(fd)
        # writes take the same path (unaligned sizes, straight to docfs) and arrive whole
        written[name] = os.urandom(1_000_003)
        (m.path / "C" / "K" / "I" / f"{name}.bin").write_bytes(written[name])
        assert (m.path / "C" / "K" / "I" / f"{name}.bin").read_bytes() == written[name]
        m.stop()
    assert seen == {"plain": data, "direct": changed}
    stored = {b["name"]: e.bitstream_data(b["uuid"]) for b in e.bitstreams_of(item)}
    assert (stored["plain.bin"], stored["direct.bin"]) == (written["plain"], written["direct"])


def test_file_changed_behind_the_mount_is_fresh_after_the_ttl(
    mount_factory: MountFactory, dspace6_server: EmulatorServer
) -> None:
    e = emu(dspace6_server)
    com = e.add_community("C")
    col = e.add_collection("K", com)
    item = e.add_item(col, "I")
    bs = e.add_bitstream(item, "note.txt", b"first version\n")
    m = mount_factory("--dir-cache-time", "1").start()
    target = m.path / "C" / "K" / "I" / "note.txt"
    assert target.read_text() == "first version\n"
    e.set_bitstream_data(bs, b"second, longer version\n")
    time.sleep(2.2)  # listing TTL (1 s) and kernel attribute timeout (1 s)
    assert target.read_text() == "second, longer version\n"
    assert target.stat().st_size == len(b"second, longer version\n")


def _cache_bytes(root: Path) -> int:
    """Bytes in the cache's content files now (a download may rename its file meanwhile)."""
    total = 0
    for p in root.rglob("content/*"):
        with contextlib.suppress(FileNotFoundError):
            total += p.stat().st_size
    return total


def test_cache_stays_within_its_bound(
    mount_factory: MountFactory, dspace6_server: EmulatorServer, tmp_path: Path
) -> None:
    e = emu(dspace6_server)
    com = e.add_community("C")
    col = e.add_collection("K", com)
    item = e.add_item(col, "I")
    size = 1 << 20
    for i in range(12):
        e.add_bitstream(item, f"f{i:02d}.bin", bytes([i]) * size)
    m = mount_factory("--cache-size", "4M", cache=tmp_path / "bounded").start()
    folder = m.path / "C" / "K" / "I"
    biggest = 0
    for i in range(12):
        assert (folder / f"f{i:02d}.bin").read_bytes() == bytes([i]) * size
        biggest = max(biggest, _cache_bytes(tmp_path / "bounded"))
    assert biggest <= 4 * size + size  # the bound plus one file in flight
    # the newest files are still cached: reading them again downloads nothing
    e.clear_log()
    assert (folder / "f11.bin").read_bytes() == bytes([11]) * size
    assert e.requests(path="/retrieve$") == []


def test_concurrent_readers_and_shared_downloads(
    mount_factory: MountFactory, dspace6_server: EmulatorServer
) -> None:
    e = emu(dspace6_server)
    com = e.add_community("C")
    col = e.add_collection("K", com)
    item = e.add_item(col, "I")
    blobs = {f"r{i}.bin": os.urandom(2 << 20) for i in range(8)}
    for name, data in blobs.items():
        e.add_bitstream(item, name, data)
    shared = os.urandom(4 << 20)
    e.add_bitstream(item, "shared.bin", shared)
    m = mount_factory().start()
    folder = m.path / "C" / "K" / "I"
    m.run("ls", str(folder))
    e.latency_ms = 300  # every request waits: serial downloads could not overlap
    e.clear_log()
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        results = dict(
            zip(blobs, pool.map(lambda n: (folder / n).read_bytes(), blobs), strict=True)
        )
    assert results == blobs
    downloads = e.requests("GET", "/retrieve$")
    assert len(downloads) == 8
    latest_start = max(r.start for r in downloads)
    earliest_end = min(r.end for r in downloads)
    assert latest_start < earliest_end  # all eight were in flight at once
    # two readers of one uncached file: one download
    e.clear_log()
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        both = list(pool.map(lambda _: (folder / "shared.bin").read_bytes(), range(2)))
    assert both == [shared, shared]
    assert len(e.requests("GET", "/retrieve$")) == 1


def test_unmount_leaves_no_process_behind(mount_factory: MountFactory) -> None:
    m = mount_factory().start()
    proc = m.proc
    assert proc is not None
    result = subprocess.run(
        [sys.executable, "-m", "docfs", "unmount", str(m.path)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert proc.wait(15) == 0
    assert not os.path.ismount(m.path)
    m.proc = None


def test_sigterm_unmounts_cleanly(mount_factory: MountFactory) -> None:
    m = mount_factory().start()
    assert m.proc is not None
    m.proc.terminate()
    assert m.proc.wait(15) == 0
    assert not os.path.ismount(m.path)
    m.proc = None


def test_read_ahead_option_sets_the_mounts_kernel_read_ahead(
    mount_factory: MountFactory, dspace6_server: EmulatorServer, tmp_path: Path
) -> None:
    seed_dspace6(emu(dspace6_server))
    plain = mount_factory(name="plain").start()
    # two mounts of one remote may not share a cache (and its write-back queue)
    tuned = mount_factory("--read-ahead", "2M", name="tuned", cache=tmp_path / "cache2").start()

    def read_ahead_kb(path: Path) -> int:
        dev = os.stat(path).st_dev
        knob = Path(f"/sys/class/bdi/{os.major(dev)}:{os.minor(dev)}/read_ahead_kb")
        return int(knob.read_text())

    if os.geteuid() != 0:
        assert read_ahead_kb(tuned.path) == read_ahead_kb(plain.path)  # only root may change it
        return
    deadline = time.monotonic() + 10  # set by the daemon right after its mount answers
    while read_ahead_kb(tuned.path) != 2048 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert read_ahead_kb(tuned.path) == 2048
    assert read_ahead_kb(plain.path) != 2048  # the default leaves the kernel's value
