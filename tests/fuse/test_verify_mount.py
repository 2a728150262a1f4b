"""``docfs verify`` and ``user.docfs.checksum`` through real mounts (issue 22, item 3).

A local tree is compared with its copy in the DSpace 6 emulator, whose listings carry each
bitstream's MD5: the request log proves that nothing is downloaded. RSpace gives no checksum:
there ``--download`` reads the mounted bytes. The tree has the issue's 500 files: the run
takes a few seconds (listings and local MD5s only), so CI runs it whole.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from docfs.commands.verify import EXIT_DIFFERENT, EXIT_SAME
from docfs.emulators.base import EmulatorServer
from docfs.emulators.dspace6 import DSpace6Emulator
from docfs.emulators.rspace import RSpaceEmulator
from tests.fuse.conftest import MountFactory
from tests.fuse.test_rspace_mount import RUNS, running_lab

FILES = 500
RETRIEVE = r"^/rest/bitstreams/[^/]+/retrieve$"
FILE_DATA = r"^/api/v1/files/\d+/file$"


def verify(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "docfs", "verify", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=300,
    )


def local_tree(root: Path, items: dict[str, int]) -> dict[str, dict[str, bytes]]:
    """``root/<item>/file-NNN.bin`` with random bytes; returns item → name → data."""
    rnd = random.Random(22)
    tree: dict[str, dict[str, bytes]] = {}
    for item, count in items.items():
        (root / item).mkdir(parents=True)
        files = tree[item] = {}
        for i in range(count):
            data = rnd.randbytes(rnd.randrange(0, 40_000))
            files[f"file-{i:03d}.bin"] = data
            (root / item / f"file-{i:03d}.bin").write_bytes(data)
    return tree


def test_verify_against_dspace6_reads_checksums_without_downloading(
    mount_factory: MountFactory, dspace6_server: EmulatorServer, tmp_path: Path
) -> None:
    e = dspace6_server.emulator
    assert isinstance(e, DSpace6Emulator)
    local = tmp_path / "local"
    tree = local_tree(local, {"Item A": FILES // 2, "Item B": FILES - FILES // 2})
    collection = e.add_collection("Data", e.add_community("Lab"))
    uuids: dict[str, str] = {}
    for item, files in tree.items():
        handle = e.add_item(collection, item)
        for name, data in files.items():
            uuids[f"{item}/{name}"] = e.add_bitstream(handle, name, data)
    # listings are fetched again at once: the change behind the mount's back is seen
    m = mount_factory("--dir-cache-time", "0").start()
    mounted = m.path / "Lab" / "Data"

    first = next(iter(uuids))
    value = m.run("getfattr", "--only-values", "-n", "user.docfs.checksum", str(mounted / first))
    assert value.stdout == "md5:" + hashlib.md5(tree["Item A"]["file-000.bin"]).hexdigest()

    e.clear_log()
    same = verify(local, mounted)
    assert same.returncode == EXIT_SAME, same.stdout + same.stderr
    lines = same.stdout.splitlines()
    assert len(lines) == FILES and all(line.startswith("= ") for line in lines), lines[:5]
    assert all(line.endswith("[md5]") for line in lines), lines[:5]
    assert f"{FILES} same" in same.stderr
    assert e.requests("GET", RETRIEVE) == []
    assert e.requests() != []  # the listings were asked for (nothing was cached before)

    # one local byte changed (same size), one file deleted on the server
    changed = local / "Item B" / "file-007.bin"
    flipped = bytearray(changed.read_bytes())
    flipped[len(flipped) // 2] ^= 0xFF
    changed.write_bytes(bytes(flipped))
    e.delete_object(uuids["Item A/file-003.bin"])
    e.clear_log()
    differ = verify(local, mounted)
    assert differ.returncode == EXIT_DIFFERENT, differ.stdout + differ.stderr
    problems = [line for line in differ.stdout.splitlines() if not line.startswith("= ")]
    assert len(problems) == 2, problems
    assert problems[0] == "+ Item A/file-003.bin"
    assert problems[1].startswith("* Item B/file-007.bin  (md5 ")
    assert e.requests("GET", RETRIEVE) == []

    report = json.loads(verify(local, mounted, "--json").stdout)
    assert report["exit_status"] == EXIT_DIFFERENT and not report["same"]
    assert report["counts"]["only_local"] == 1 and report["counts"]["different"] == 1
    assert report["counts"]["same"] == FILES - 2
    assert {f["path"] for f in report["files"] if f["status"] != "same"} == {
        "Item A/file-003.bin",
        "Item B/file-007.bin",
    }
    assert e.requests("GET", RETRIEVE) == []

    # a file being written here has no checksum until its upload is done: then the new one
    target = mounted / "Item B" / "file-001.bin"
    with target.open("r+b") as f:
        f.write(b"new bytes")
        f.flush()
        # asked in this process: a child would close its copy of the descriptor on exec, and
        # every close is a FUSE flush, which uploads
        with pytest.raises(OSError) as absent:
            os.getxattr(target, "user.docfs.checksum")
        assert absent.value.errno == errno.ENODATA
    uploaded = hashlib.md5(target.read_bytes()).hexdigest()
    value = m.run("getfattr", "--only-values", "-n", "user.docfs.checksum", str(target))
    assert value.stdout == f"md5:{uploaded}"
    assert e.bitstream_data(uuids["Item B/file-001.bin"])[:9] == b"new bytes"


def test_verify_download_where_the_repository_gives_no_checksum(tmp_path: Path) -> None:
    emu = RSpaceEmulator()
    local = tmp_path / "local"
    local.mkdir()
    rnd = random.Random(7)
    files = {f"run-{i}.csv": rnd.randbytes(5000 + i) for i in range(4)}
    for name, data in files.items():
        (local / name).write_bytes(data)
    with running_lab(tmp_path, emu) as lab:
        (runs,) = emu.find(RUNS[-1])
        folder = emu.add_folder(runs, "verify-set")
        for name, data in files.items():
            emu.add_file(folder, name, data)
        mounted = lab.path(*RUNS, "verify-set")
        probe = lab.mount.run(
            "getfattr", "-n", "user.docfs.checksum", str(mounted / "run-0.csv"), check=False
        )
        assert probe.returncode != 0 and "No such attribute" in probe.stderr

        # one byte changed here: sizes alone cannot tell
        flipped = bytearray(files["run-2.csv"])
        flipped[100] ^= 0x01
        (local / "run-2.csv").write_bytes(bytes(flipped))
        emu.clear_log()
        sizes = verify(local, mounted)
        assert sizes.returncode == EXIT_SAME, sizes.stdout + sizes.stderr
        assert "4 same (4 by size only: no checksum)" in sizes.stderr
        assert emu.requests("GET", FILE_DATA) == []

        read = verify(local, mounted, "--download")
        assert read.returncode == EXIT_DIFFERENT, read.stdout + read.stderr
        lines = read.stdout.splitlines()
        assert [line.split()[0] for line in lines] == ["=", "=", "*", "="]
        assert lines[2].startswith("* run-2.csv  (md5 ")
        assert lines[0] == "= run-0.csv [download-md5]"
        assert len(emu.requests("GET", FILE_DATA)) == len(files)
