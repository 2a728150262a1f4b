"""Downloads follow reads (issue 25, item 1), through real mounts, against the request logs.

A file manager opens every file of a folder, ``fstat``s it and closes it, and sniffs the first
4 KiB of files whose type is unclear. On DSpace 6 (no byte ranges) each open used to start a
whole-file download that close did not stop; on DSpace 7 a sniff fetched a whole 4 MiB block.
Here: an open without a read asks for nothing, a 4 KiB read of a 48 MiB file costs at most
1 MiB (DSpace 6) or 256 KiB (DSpace 7), the same sniff again costs nothing (the prefix is
kept), and reading the file whole afterwards returns the right bytes, verified and cached.

The emulators run with a small socket send buffer (``EmulatorServer(send_buffer=)``): on
loopback the kernel would otherwise queue megabytes for the client, which count in
``bytes_out`` though over a real network they are never transferred once the client leaves.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from docfs.emulators.base import EmulatorServer, LoggedRequest
from docfs.emulators.dspace6 import DSpace6Emulator
from docfs.emulators.dspace7 import DSpace7Emulator
from tests.conftest import ADMIN
from tests.fuse.conftest import Mount, MountFactory

MIB = 1 << 20
SIZE = 48 * MIB
SEND_BUFFER = 32 << 10


def wait_for(condition: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.02)


def sniff(path: Path, size: int = 4096) -> bytes:
    """What a file manager does: open, fstat, read ``size`` bytes (if any), close."""
    fd = os.open(path, os.O_RDONLY)
    try:
        assert os.fstat(fd).st_size == SIZE
        return os.read(fd, size) if size else b""
    finally:
        os.close(fd)


def settled(requests: Callable[[], list[LoggedRequest]]) -> list[LoggedRequest]:
    """The content requests, once every one of them has ended at the server."""
    wait_for(lambda: all(r.end for r in requests()))
    return requests()


def check_visit(
    m: Mount, path: Path, data: bytes, content: Callable[[], list[LoggedRequest]], sniff_limit: int
) -> None:
    os.stat(path)  # listed: what follows is about content only
    sniff(path, 0)
    time.sleep(0.2)  # a download started by the open would show up by now
    assert content() == [], "open + fstat + close must ask for no content"

    assert sniff(path) == data[:4096]
    first = settled(content)
    sent = sum(r.bytes_out for r in first)
    assert len(first) == 1 and sent <= sniff_limit, (len(first), sent)
    # the prefix is kept: the same sniff again, and after it the whole file
    assert sniff(path) == data[:4096]
    assert len(settled(content)) == 1, "a sniff of kept bytes must cost nothing"
    # the stopped download's bytes become the kept prefix a moment after the server saw the
    # request end (the receiving thread hands over, then the cache renames the file)
    wait_for(lambda: bool(list(m.cache.rglob("content/*.partial"))))

    assert path.read_bytes() == data
    whole = settled(content)

    def kept() -> list[int]:
        files = m.cache.rglob("content/*")
        return [p.stat().st_size for p in files if p.suffix not in (".part", ".partial")]

    # the MD5 is checked once the last byte is in (in a thread): then the file is kept
    wait_for(lambda: kept() == [SIZE])
    assert not list(m.cache.rglob("content/*.partial"))
    print(
        f"\n{m.kind}: open+fstat+close 0 requests; 4 KiB sniff {sent} bytes in 1 request; "
        f"whole read afterwards {len(whole) - 1} more request(s), "
        f"{sum(r.bytes_out for r in whole[1:])} bytes"
    )


@pytest.fixture
def dspace6_server() -> Iterator[EmulatorServer]:
    # overrides tests/fuse/conftest.py's: the same emulator, with the small send buffer
    emulator = DSpace6Emulator()
    emulator.add_user(*ADMIN, admin=True)
    with EmulatorServer(emulator, send_buffer=SEND_BUFFER) as server:
        yield server


def test_dspace6_open_costs_nothing_and_a_sniff_at_most_1_mib(
    mount_factory: MountFactory, dspace6_server: EmulatorServer
) -> None:
    e = dspace6_server.emulator
    assert isinstance(e, DSpace6Emulator)
    data = os.urandom(SIZE)
    item = e.add_item(e.add_collection("Scans", e.add_community("Lab")), "Scan 1")
    e.add_bitstream(item, "scan.tif", data)
    m = mount_factory().start()
    path = m.path / "Lab" / "Scans" / "Scan 1" / "scan.tif"
    os.stat(path)
    e.clear_log()
    check_visit(m, path, data, lambda: e.requests("GET", r"/retrieve$"), MIB)


def test_dspace7_open_costs_nothing_and_a_sniff_at_most_256_kib(tmp_path: Path) -> None:
    e = DSpace7Emulator(user=ADMIN[0], password=ADMIN[1])
    data = os.urandom(SIZE)
    item = e.add_item(e.add_collection("Scans", e.add_community("Lab")), "Scan 1")
    e.add_bitstream(item, "scan.tif", data)
    with EmulatorServer(e, send_buffer=SEND_BUFFER) as server:
        m = Mount(server.url, tmp_path / "mnt", tmp_path / "cache")
        m.kind = "dspace7"
        m.start()
        try:
            path = m.path / "Lab" / "Scans" / "Scan 1" / "scan.tif"
            os.stat(path)
            e.clear_log()
            check_visit(
                m,
                path,
                data,
                lambda: e.requests("GET", r"/core/bitstreams/[^/]+/content$"),
                256 << 10,
            )
        finally:
            m.stop()
