"""Downloads follow reads (issue 25, item 1) at the vfs level: ``Filesystem.open``/``read``/
``release`` over the DSpace 6 emulator and its real backend, against the request log."""

from __future__ import annotations

import os
from pathlib import Path

import trio

from docfs.emulators.base import EmulatorServer
from docfs.emulators.dspace6 import DSpace6Emulator
from docfs.vfs.content import ContentCache
from docfs.vfs.filesystem import Filesystem, Options
from docfs.vfs.inodes import ROOT_INODE
from tests.conftest import ADMIN, dspace6_backend

SIZE = 48 << 20
RETRIEVE = r"/retrieve$"


async def test_open_fstat_close_then_a_sniff_then_the_whole_file(tmp_path: Path) -> None:
    e = DSpace6Emulator()
    e.add_user(*ADMIN, admin=True)
    data = os.urandom(SIZE)
    item = e.add_item(e.add_collection("Scans", e.add_community("Lab")), "Scan")
    e.add_bitstream(item, "scan.tif", data)
    # a small send buffer: loopback would queue megabytes the wire never carries (see
    # EmulatorServer); what a stopped download cost is then what bytes_out says
    with EmulatorServer(e, send_buffer=32 << 10) as server:
        backend = dspace6_backend(server)
        await backend.connect()
        content = ContentCache(tmp_path / "cache", 1 << 30, "t")
        fs = Filesystem(backend, await backend.root(), content, Options())
        async with trio.open_nursery() as nursery:
            fs.start(nursery)
            ino = ROOT_INODE
            for name in ("Lab", "Scans", "Scan", "scan.tif"):
                ino = (await fs.lookup(ino, name)).ino

            async def settled() -> list[int]:
                with trio.fail_after(20):
                    while not all(r.end for r in e.requests("GET", RETRIEVE)):
                        await trio.sleep(0.02)
                return [r.bytes_out for r in e.requests("GET", RETRIEVE)]

            e.clear_log()
            fh, _ = await fs.open(ino, write=False)
            assert (await fs.getattr(ino)).size == SIZE
            await fs.release(fh)
            await trio.sleep(0.1)  # a download started by the open would have begun
            assert await settled() == []

            fh, _ = await fs.open(ino, write=False)
            assert await fs.read(fh, 0, 4096) == data[:4096]
            await fs.release(fh)
            [sniffed] = await settled()
            assert sniffed <= 1 << 20

            fh, _ = await fs.open(ino, write=False)
            assert await fs.read(fh, 0, 4096) == data[:4096]  # the kept prefix: no request
            assert len(await settled()) == 1
            out = bytearray()
            while chunk := await fs.read(fh, len(out), 1 << 20):
                out += chunk
            await fs.release(fh)
            assert bytes(out) == data
            with trio.fail_after(20):
                while not content.contains(fs.inodes.get(ino).entry):  # verified, then kept
                    await trio.sleep(0.02)
            nursery.cancel_scope.cancel()
        await backend.aclose()
