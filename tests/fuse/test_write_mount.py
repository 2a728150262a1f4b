"""Writing through a real mount with cp, rsync, mv, rm, mkdir, dd, setfattr and Python."""

from __future__ import annotations

import os
import re
import subprocess
import time
from pathlib import Path

import pytest

from docfs.emulators.base import EmulatorServer
from docfs.emulators.dspace6 import DSpace6Emulator
from tests.fuse.conftest import Mount, MountFactory

SIZES = [0, 1, 100, 4095, 4096, 4097, 65536, 65537, 300_000, 1 << 20]


def emu(server: EmulatorServer) -> DSpace6Emulator:
    assert isinstance(server.emulator, DSpace6Emulator)
    return server.emulator


def make_tree(root: Path) -> dict[str, bytes]:
    """60 files in 6 directories (the directories become items), 0 B to 20 MiB."""
    files: dict[str, bytes] = {}
    for d in range(6):
        for f in range(10):
            size = SIZES[f] if (d, f) != (5, 9) else 20 << 20
            rel = f"set-{d}/file-{f}.dat"
            data = os.urandom(size)
            (root / f"set-{d}").mkdir(parents=True, exist_ok=True)
            (root / rel).write_bytes(data)
            files[rel] = data
    return files


def server_files(e: DSpace6Emulator, collection: str) -> dict[str, bytes]:
    found: dict[str, bytes] = {}
    for item in e.items_of(collection):
        for b in e.bitstreams_of(item["uuid"]):
            found[f"{item['title']}/{b['name']}"] = e.bitstream_data(b["uuid"])
    return found


def setup_collection(e: DSpace6Emulator, name: str = "Incoming") -> tuple[str, str]:
    com = e.add_community("Lab")
    return com, e.add_collection(name, com)


def uploads(e: DSpace6Emulator) -> list[str]:
    return [f"{r.path}?{r.query}" for r in e.requests("POST", r"/bitstreams$")]


def test_cp_r_tree_into_a_collection(
    mount_factory: MountFactory, dspace6_server: EmulatorServer, tmp_path: Path
) -> None:
    e = emu(dspace6_server)
    _, col = setup_collection(e)
    tree = make_tree(tmp_path / "tree")
    m = mount_factory().start()
    target = m.path / "Lab" / "Incoming"
    m.run("ls", str(target))
    e.clear_log()
    result = m.run(
        "cp", "-r", *[str(p) for p in sorted((tmp_path / "tree").iterdir())], str(target)
    )
    assert result.returncode == 0, result.stderr
    assert server_files(e, col) == tree
    assert len(uploads(e)) == 60  # one upload per file
    assert len(e.requests("POST", r"/items$")) == 6  # one item per directory
    assert len(e.requests("POST")) == 66  # and nothing else was created
    assert e.requests("PUT") == []


def test_rsync_twice_then_changes(
    mount_factory: MountFactory, dspace6_server: EmulatorServer, tmp_path: Path
) -> None:
    e = emu(dspace6_server)
    _, col = setup_collection(e, "Mirror")
    src = tmp_path / "tree"
    tree = make_tree(src)
    m = mount_factory().start()
    target = m.path / "Lab" / "Mirror"
    e.clear_log()
    first = m.run("rsync", "-a", f"{src}/", f"{target}/", check=False)
    assert first.returncode == 0, first.stderr
    assert server_files(e, col) == tree
    sent = uploads(e)
    assert len(sent) == 60
    # no temporary name ever reached the server
    assert not [u for u in sent if re.search(r"name=\.", u)]
    assert not [r for r in e.requests() if re.search(r"\.[A-Za-z0-9]{6}(&|$)", r.query)]

    e.clear_log()
    second = m.run("rsync", "-a", "--itemize-changes", f"{src}/", f"{target}/", check=False)
    assert second.returncode == 0, second.stderr
    assert uploads(e) == [] and e.requests("PUT") == []
    assert not [ln for ln in second.stdout.splitlines() if ln.startswith(">f")]

    ids_before = {
        b["name"]: b["uuid"]
        for i in e.items_of(col)
        for b in e.bitstreams_of(i["uuid"])
        if i["title"] == "set-2"
    }
    time.sleep(1.1)
    (src / "set-2" / "file-3.dat").write_bytes(b"changed three")
    (src / "set-2" / "file-7.dat").write_bytes(b"changed seven, longer")
    e.clear_log()
    third = m.run("rsync", "-a", f"{src}/", f"{target}/", check=False)
    assert third.returncode == 0, third.stderr
    assert uploads(e) == []
    replaced = e.requests("PUT", r"/data$")
    assert sorted(r.path for r in replaced) == sorted(
        f"/rest/bitstreams/{ids_before[n]}/data" for n in ("file-3.dat", "file-7.dat")
    )
    files = server_files(e, col)
    assert files["set-2/file-3.dat"] == b"changed three"
    assert files["set-2/file-7.dat"] == b"changed seven, longer"


def item_with_files(e: DSpace6Emulator, col: str, title: str, **files: bytes) -> str:
    item = e.add_item(col, title)
    for name, data in files.items():
        e.add_bitstream(item, name.replace("_", "."), data)
    return item


def test_cp_p_mv_rm_mkdir(
    mount_factory: MountFactory, dspace6_server: EmulatorServer, tmp_path: Path
) -> None:
    e = emu(dspace6_server)
    _, col = setup_collection(e)
    a = item_with_files(e, col, "A", one_txt=b"one", two_txt=b"two")
    b = item_with_files(e, col, "B")
    m = mount_factory().start()
    base = m.path / "Lab" / "Incoming"

    local = tmp_path / "stamped.txt"
    local.write_text("keep my time")
    os.utime(local, (1_500_000_000, 1_500_000_000))
    m.run("cp", "-p", str(local), str(base / "A"))
    assert (base / "A" / "stamped.txt").stat().st_mtime == 1_500_000_000
    time.sleep(1.1)
    assert (base / "A" / "stamped.txt").stat().st_mtime == 1_500_000_000

    e.clear_log()
    m.run("mv", str(base / "A" / "one.txt"), str(base / "A" / "uno.txt"))
    assert {x["name"] for x in e.bitstreams_of(a)} == {"uno.txt", "two.txt", "stamped.txt"}
    assert len(e.requests("PUT", r"^/rest/bitstreams/[^/]+$")) == 1

    m.run("mv", str(base / "A" / "two.txt"), str(base / "B" / "two.txt"))
    assert {x["name"] for x in e.bitstreams_of(a)} == {"uno.txt", "stamped.txt"}
    moved = {x["name"]: e.bitstream_data(x["uuid"]) for x in e.bitstreams_of(b)}
    assert moved == {"two.txt": b"two"}

    m.run("rm", "-r", str(base / "A"))
    assert e.get_object(a) is None
    assert not (base / "A").exists()

    nested = m.run("mkdir", "-p", str(base / "new-item" / "deeper"), check=False)
    assert nested.returncode != 0
    assert "Operation not permitted" in nested.stderr
    assert "new-item" in {i["title"] for i in e.items_of(col)}
    assert (base / "new-item").is_dir()


def test_rm_r_of_a_mapped_item_leaves_it_in_its_other_collection(
    mount_factory: MountFactory, dspace6_server: EmulatorServer
) -> None:
    """Issue 17.9: ``DELETE /items/{id}`` deletes an item from every collection it is mapped
    into, so ``rm -r`` takes it out of this collection only, files and all."""
    e = emu(dspace6_server)
    com, col = setup_collection(e)
    other = e.add_collection("Reading list", com)
    item = item_with_files(e, col, "Shared paper", paper_pdf=b"%PDF paper", data_csv=b"a,b\n")
    e.map_item(item, other)
    m = mount_factory().start()
    base = m.path / "Lab"
    assert sorted(os.listdir(base / "Incoming" / "Shared paper")) == ["data.csv", "paper.pdf"]
    # listed in the other collection too: each collection's directory is its own (one shared
    # directory would remember only the collection it was listed in last)
    assert sorted(os.listdir(base / "Reading list" / "Shared paper")) == ["data.csv", "paper.pdf"]
    e.clear_log()
    m.run("rm", "-r", str(base / "Incoming" / "Shared paper"))
    assert not (base / "Incoming" / "Shared paper").exists()
    assert e.items_of(col) == []
    assert [i["uuid"] for i in e.items_of(other)] == [item]
    assert {b["name"]: e.bitstream_data(b["uuid"]) for b in e.bitstreams_of(item)} == {
        "paper.pdf": b"%PDF paper",
        "data.csv": b"a,b\n",
    }
    assert [r.method for r in e.requests() if r.method != "GET"] == ["DELETE"]
    assert sorted(os.listdir(base / "Reading list" / "Shared paper")) == ["data.csv", "paper.pdf"]
    # where it lives nowhere else, rm -r deletes it
    m.run("rm", "-r", str(base / "Reading list" / "Shared paper"))
    assert e.get_object(item) is None


def test_overwrite_in_place(mount_factory: MountFactory, dspace6_server: EmulatorServer) -> None:
    e = emu(dspace6_server)
    _, col = setup_collection(e)
    item = item_with_files(e, col, "Edits", log_txt=b"line 1\n", data_bin=b"0123456789")
    ids = {x["name"]: x["uuid"] for x in e.bitstreams_of(item)}
    m = mount_factory().start()
    base = m.path / "Lab" / "Incoming" / "Edits"

    subprocess.run(f"echo 'line 2' >> '{base / 'log.txt'}'", shell=True, check=True)
    assert e.bitstream_data(ids["log.txt"]) == b"line 1\nline 2\n"

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
    assert e.bitstream_data(ids["data.bin"]) == b"012\0\x0056789"

    with open(base / "data.bin", "r+b") as fh:
        fh.seek(8)
        fh.write(b"XYZ")
    assert e.bitstream_data(ids["data.bin"]) == b"012\0\x00567XYZ"
    # same objects, new content
    assert {x["name"]: x["uuid"] for x in e.bitstreams_of(item)} == ids
    assert (base / "data.bin").read_bytes() == b"012\0\x00567XYZ"


def test_metadata_through_xattrs(
    mount_factory: MountFactory, dspace6_server: EmulatorServer
) -> None:
    e = emu(dspace6_server)
    _, col = setup_collection(e)
    item = item_with_files(e, col, "Tagged")
    m = mount_factory().start()
    path = m.path / "Lab" / "Incoming" / "Tagged"
    m.run("setfattr", "-n", "user.dspace.dc.subject", "-v", "soil", str(path))
    tagged = e.get_object(item)
    assert tagged is not None and tagged["metadata"]["dc.subject"] == ["soil"]
    assert (
        m.run("getfattr", "--only-values", "-n", "user.dspace.dc.subject", str(path)).stdout
        == "soil"
    )
    m.run("setfattr", "-x", "user.dspace.dc.subject", str(path))
    untagged = e.get_object(item)
    assert untagged is not None and "dc.subject" not in untagged["metadata"]


def _uploads_refused_once(
    mount_factory: MountFactory, dspace6_server: EmulatorServer, tmp_path: Path
) -> tuple[DSpace6Emulator, str, Mount, Path]:
    """A mount of an item "Target" (with ``ok.txt``) whose next upload the server refuses
    (403): the emulator, the collection, the mount and the item's directory."""
    e = emu(dspace6_server)
    _, col = setup_collection(e)
    item_with_files(e, col, "Target", ok_txt=b"still here")
    m = mount_factory(cache=tmp_path / "c").start()
    base = m.path / "Lab" / "Incoming" / "Target"
    m.run("ls", str(base))
    e.plan_fault(method="POST", path=r"/bitstreams$", status=403)
    return e, col, m, base


def test_refused_upload_keeps_data_and_daemon_serves(
    mount_factory: MountFactory, dspace6_server: EmulatorServer, tmp_path: Path
) -> None:
    _, _, m, base = _uploads_refused_once(mount_factory, dspace6_server, tmp_path)
    local = tmp_path / "precious.txt"
    local.write_bytes(b"do not lose me")
    result = m.run("cp", str(local), str(base), check=False)
    assert result.returncode != 0
    assert "Permission denied" in result.stderr
    kept = list((tmp_path / "c").rglob("lost+found/*precious.txt"))
    assert [p.read_bytes() for p in kept] == [b"do not lose me"]
    assert "precious.txt" in kept[0].with_name(kept[0].name + ".json").read_text()
    assert "lost+found" in m.log_text()
    assert (base / "ok.txt").read_bytes() == b"still here"  # the daemon keeps serving


@pytest.mark.parametrize("how", ["python", "cp"])
def test_writing_a_name_again_right_after_its_upload_failed_reaches_the_server(
    mount_factory: MountFactory, dspace6_server: EmulatorServer, tmp_path: Path, how: str
) -> None:
    """A failed new file is dropped from the mount, but the kernel keeps its name for up to a
    second: writing the name again in that second reached the dropped inode, and its bytes
    were silently lost (a resumed ``docfs deposit`` lost a package file so). The open of a
    dropped inode is ESTALE: the kernel looks the name up again and makes a new file."""
    e, col, m, base = _uploads_refused_once(mount_factory, dspace6_server, tmp_path)
    with pytest.raises(PermissionError):
        (base / "again.txt").write_bytes(b"first try")
    local = tmp_path / "again.txt"
    local.write_bytes(b"second try")
    if how == "cp":
        m.run("cp", str(local), str(base / "again.txt"))
    else:
        (base / "again.txt").write_bytes(b"second try")
    assert server_files(e, col)["Target/again.txt"] == b"second try"
    assert (base / "again.txt").read_bytes() == b"second try"


@pytest.mark.parametrize("name", [".report.txt.swp", ".DS_Store", "._x", "~$doc.docx"])
def test_local_only_files_never_leave(
    mount_factory: MountFactory, dspace6_server: EmulatorServer, name: str
) -> None:
    e = emu(dspace6_server)
    _, col = setup_collection(e)
    item_with_files(e, col, "Work")
    m = mount_factory().start()
    base = m.path / "Lab" / "Incoming" / "Work"
    m.run("ls", str(base))
    e.clear_log()
    (base / name).write_bytes(b"scratch")
    assert (base / name).read_bytes() == b"scratch"
    (base / name).unlink()
    assert e.requests("POST") == [] and e.requests("PUT") == [] and e.requests("DELETE") == []


def test_shell_redirections_reach_the_server(
    mount_factory: MountFactory, dspace6_server: EmulatorServer
) -> None:
    e = emu(dspace6_server)
    _, col = setup_collection(e)
    item = item_with_files(e, col, "Shell", out_txt=b"old content\n", gone_txt=b"to be emptied")
    ids = {x["name"]: x["uuid"] for x in e.bitstreams_of(item)}
    m = mount_factory().start()
    base = m.path / "Lab" / "Incoming" / "Shell"
    # dash opens with O_TRUNC, dup2s and closes the original descriptor before writing
    subprocess.run(["sh", "-c", f"echo new content > '{base / 'out.txt'}'"], check=True)
    assert e.bitstream_data(ids["out.txt"]) == b"new content\n"
    # truncating to empty without writing reaches the server when the shell closes it
    subprocess.run(["sh", "-c", f": > '{base / 'gone.txt'}'"], check=True)
    assert e.bitstream_data(ids["gone.txt"]) == b""
    assert {x["name"]: x["uuid"] for x in e.bitstreams_of(item)} == ids  # same objects


def test_rsync_after_a_failed_overwrite_sends_the_file_again(
    mount_factory: MountFactory, dspace6_server: EmulatorServer, tmp_path: Path
) -> None:
    """Issue 18.1: rsync's rename over ``d.txt`` fails (PUT …/data answers 500 each time).
    The mount must go on showing the old version with its own mtime, so the next rsync sends
    the file again; before the fix it showed the source's mtime and rsync skipped the file."""
    e = emu(dspace6_server)
    _, col = setup_collection(e)
    item = item_with_files(e, col, "Sync", d_txt=b"version-1\n")
    src = tmp_path / "src"
    src.mkdir()
    (src / "d.txt").write_bytes(b"version-2\n")  # same size, other bytes
    os.utime(src / "d.txt", (1_609_459_200, 1_609_459_200))
    m = mount_factory().start()
    target = m.path / "Lab" / "Incoming" / "Sync"
    m.run("ls", str(target))
    # the first answer comes after the kernel's 1 s attribute cache has expired: the stat
    # below must reach the daemon, not the attributes rsync's lstat left in the kernel
    e.plan_fault(method="PUT", path=r"/bitstreams/[^/]+/data$", status=500, delay=1.2)
    e.plan_fault(method="PUT", path=r"/bitstreams/[^/]+/data$", status=500, times=None)
    first = m.run("rsync", "-a", f"{src}/", f"{target}/", check=False)
    assert first.returncode == 23, first.stderr
    e.clear_faults()
    assert (target / "d.txt").stat().st_mtime != 1_609_459_200
    second = m.run("rsync", "-a", "--itemize-changes", f"{src}/", f"{target}/")
    assert "d.txt" in second.stdout  # sent again
    assert {b["name"]: e.bitstream_data(b["uuid"]) for b in e.bitstreams_of(item)} == {
        "d.txt": b"version-2\n"
    }


def test_cp_through_a_proxy_slower_than_the_timeout_makes_one_file(
    mount_factory: MountFactory, dspace6_server: EmulatorServer, tmp_path: Path
) -> None:
    """Issue 18.2: with ``--timeout 1`` the upload's POST is held 1.6 s (as a slow proxy
    would) and then acted on; before the fix ``cp`` exited 0 and the server had two files."""
    e = emu(dspace6_server)
    _, col = setup_collection(e)
    item = item_with_files(e, col, "Slow")
    m = mount_factory("--timeout", "1").start()
    target = m.path / "Lab" / "Incoming" / "Slow"
    m.run("ls", str(target))
    local = tmp_path / "once.txt"
    local.write_bytes(b"exactly once\n")
    e.plan_fault(method="POST", path=r"/items/[^/]+/bitstreams$", hold=1.6)
    m.run("cp", str(local), str(target))
    deadline = time.monotonic() + 30
    while not all(r.end for r in e.requests()):  # the held POST has been acted on
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert [(b["name"], e.bitstream_data(b["uuid"])) for b in e.bitstreams_of(item)] == [
        ("once.txt", b"exactly once\n")
    ]
    assert len(uploads(e)) == 1
