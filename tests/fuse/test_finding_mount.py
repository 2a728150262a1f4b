"""Finding things through a real mount (issue 20, item 1): the hidden ``.by-id``,
``.by-handle`` and ``.by-doi`` directories, ``docfs resolve`` and ``user.docfs.url``, against
the emulators' request logs.

One mount per repository type keeps the cost low: each test walks every check for its type.
"""

from __future__ import annotations

import errno
import os
import subprocess
import sys
from pathlib import Path

import pytest

from docfs.emulators.base import EmulatorServer
from docfs.emulators.docspace import DocSpaceEmulator
from docfs.emulators.dspace6 import DSpace6Emulator
from docfs.emulators.dspace7 import DSpace7Emulator
from docfs.emulators.opus2 import Opus2Emulator
from docfs.emulators.rspace import DEFAULT_API_KEY, RSpaceEmulator
from tests.conftest import ADMIN
from tests.fuse.conftest import Mount

HIDDEN = (".by-id", ".by-handle", ".by-doi", ".search", ".versions")


def expect_errno(code: int, action: object, *args: object) -> None:
    with pytest.raises(OSError) as raised:
        action(*args)  # type: ignore[operator]
    assert raised.value.errno == code, raised.value


def resolve(m: Mount, ref: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "docfs", "resolve", ref, "--mount", str(m.path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def never_walked_into(m: Mount, tmp_path: Path) -> None:
    """``ls -a``, ``find`` and ``rsync -a`` see no hidden directory, even after one was used."""
    listed = m.run("ls", "-a", str(m.path)).stdout.split()
    assert not set(listed) & set(HIDDEN)
    found = m.run("find", str(m.path)).stdout.splitlines()
    assert found and not [p for p in found if any(f"/{h}" in p for h in HIDDEN)]
    copy = tmp_path / "copy"
    m.run("rsync", "-a", f"{m.path}/", f"{copy}/")
    copied = [str(p.relative_to(copy)) for p in copy.rglob("*")]
    assert copied and not [p for p in copied if any(h in p for h in HIDDEN)]


def read_only_inside(m: Mount, hidden: Path, known_dir: Path, known_file: Path) -> None:
    """Writes in a hidden directory are EROFS (the caller checks no request went out).

    (A rename of a directory through its hidden path would be ESTALE from the kernel before
    docfs is asked: a directory has one dentry, and the lookup inside rename cannot move it.)"""
    expect_errno(errno.EROFS, (hidden / "new.txt").write_bytes, b"x")
    expect_errno(errno.EROFS, os.mkdir, hidden / "new")
    expect_errno(errno.EROFS, os.rename, known_file, m.path / "elsewhere")
    expect_errno(errno.EROFS, os.unlink, known_file)
    expect_errno(errno.EROFS, os.rmdir, known_dir)
    expect_errno(errno.EROFS, os.setxattr, hidden, "user.dspace.x", b"1")


def test_dspace6_by_handle_by_id_resolve_and_url(tmp_path: Path) -> None:
    e = DSpace6Emulator()
    e.add_user(*ADMIN, admin=True)
    coll = e.add_collection("Theses", e.add_community("Lab"))
    item = e.add_item(coll, "Thesis")
    e.add_bitstream(item, "thesis.pdf", b"%PDF thesis")
    e.add_bitstream(item, "data.csv", b"a,b\n1,2\n")
    handle = (e.get_object(item) or {})["handle"]
    prefix, suffix = handle.split("/")
    with EmulatorServer(e) as server:
        m = Mount(f"{server.url}/rest", tmp_path / "mnt", tmp_path / "cache").start()
        try:
            e.clear_log()
            by_handle = m.path / ".by-handle" / prefix / suffix
            assert sorted(os.listdir(by_handle)) == ["data.csv", "thesis.pdf"]
            assert (by_handle / "thesis.pdf").read_bytes() == b"%PDF thesis"
            assert len(e.requests("GET", r"/rest/handle/")) == 1
            # cached: a second look costs nothing
            assert sorted(os.listdir(by_handle)) == ["data.csv", "thesis.pdf"]
            assert len(e.requests("GET", r"/rest/handle/")) == 1
            # a missing handle: ENOENT, one request (the server's 500 is not retried)
            expect_errno(errno.ENOENT, os.listdir, m.path / ".by-handle" / prefix / "999999")
            assert len(e.requests("GET", r"/rest/handle/")) == 2

            # the same inode as in the tree
            in_tree = m.path / "Lab" / "Theses" / "Thesis"
            assert os.stat(in_tree).st_ino == os.stat(by_handle).st_ino
            e.clear_log()
            assert sorted(os.listdir(m.path / ".by-id" / item)) == ["data.csv", "thesis.pdf"]
            assert len(e.requests("GET", r"/rest/items/")) == 1
            assert os.stat(m.path / ".by-id" / item).st_ino == os.stat(in_tree).st_ino

            out = resolve(m, f"https://repo.example.org/handle/{handle}")
            assert out == str(in_tree)
            assert resolve(m, item) == str(in_tree)

            site = server.url
            url = os.getxattr(in_tree, "user.docfs.url").decode()
            assert url == f"{site}/handle/{handle}"
            pdf = os.getxattr(in_tree / "thesis.pdf", "user.docfs.url").decode()
            assert pdf == f"{site}/bitstream/handle/{handle}/thesis.pdf?sequence=1"
            # read-only, ENOTSUP like user.docfs.id: cp -a of a copied-out file skips it quietly
            expect_errno(errno.ENOTSUP, os.setxattr, in_tree, "user.docfs.url", b"x")

            pdf_id = next(b["uuid"] for b in e.bitstreams_of(item) if b["name"] == "thesis.pdf")
            by_id_pdf = m.path / ".by-id" / pdf_id
            assert by_id_pdf.read_bytes() == b"%PDF thesis"
            assert os.stat(by_id_pdf).st_ino == os.stat(in_tree / "thesis.pdf").st_ino
            e.clear_log()
            # (in .by-id: the kernel's lookup of a new name that is no uuid costs no request)
            read_only_inside(m, m.path / ".by-id", by_handle, by_id_pdf)
            assert e.requests() == []

            # DSpace 6 resolves no DOIs: ENOENT at once, with the reason in the log
            e.clear_log()
            expect_errno(errno.ENOENT, os.listdir, m.path / ".by-doi")
            assert e.requests() == []
            assert ".by-doi: dspace6 has no lookup by doi" in m.log_text()
            never_walked_into(m, tmp_path)
        finally:
            m.stop()


def test_dspace7_by_handle_by_id_resolve_and_url(tmp_path: Path) -> None:
    e = DSpace7Emulator(user=ADMIN[0], password=ADMIN[1])
    coll = e.add_collection("Theses", e.add_community("Lab"))
    item = e.add_item(coll, "Thesis")
    e.add_bitstream(item, "thesis.pdf", b"%PDF thesis")
    e.register_doi(item, "10.5072/thesis-1")
    handle = e.handle_of(item) or ""
    prefix, suffix = handle.split("/")
    with EmulatorServer(e) as server:
        m = Mount(server.url, tmp_path / "mnt", tmp_path / "cache")
        m.kind = "dspace7"
        m.start()
        try:
            e.clear_log()
            by_handle = m.path / ".by-handle" / prefix / suffix
            assert os.listdir(by_handle) == ["thesis.pdf"]
            assert (by_handle / "thesis.pdf").read_bytes() == b"%PDF thesis"
            assert len(e.requests("GET", r"/pid/find$")) == 1
            e.clear_log()
            assert os.listdir(m.path / ".by-id" / item) == ["thesis.pdf"]
            assert len(e.requests("GET", r"/dso/find$")) == 1
            # a DOI (where the server has the DOI provider): one request each, found or not
            e.clear_log()
            assert os.listdir(m.path / ".by-doi" / "10.5072" / "thesis-1") == ["thesis.pdf"]
            expect_errno(errno.ENOENT, os.stat, m.path / ".by-doi" / "10.5072" / "x1")
            assert len(e.requests("GET", r"/pid/find$")) == 2

            in_tree = m.path / "Lab" / "Theses" / "Thesis"
            assert os.stat(in_tree).st_ino == os.stat(by_handle).st_ino
            assert resolve(m, f"{server.url}/handle/{handle}") == str(in_tree)
            assert resolve(m, f"{server.url}/items/{item}") == str(in_tree)
            assert resolve(m, "https://doi.org/10.5072/thesis-1") == str(in_tree)
            url = os.getxattr(in_tree, "user.docfs.url").decode()
            assert url == f"{server.url}/items/{item}"
            never_walked_into(m, tmp_path)
        finally:
            m.stop()


def test_rspace_by_global_id(tmp_path: Path) -> None:
    emu = RSpaceEmulator()
    home = emu.home_id()
    projects = emu.add_folder(home, "Projects")
    doc = emu.add_document(projects, "Run 1", fields=["<p>lactase</p>"])
    plot = emu.add_file(None, "plot.png", b"\x89PNG plot")
    with EmulatorServer(emu) as server:
        m = Mount(server.url, tmp_path / "mnt", tmp_path / "cache")
        m.kind = "rspace"
        m.start(credentials=None, token=DEFAULT_API_KEY)
        try:
            emu.clear_log()
            os.stat(m.path / ".by-id" / f"SD{doc}")
            assert [r.path for r in emu.requests()] == [f"/api/v1/documents/{doc}"]
            fields = os.listdir(m.path / ".by-id" / f"SD{doc}")
            assert len(fields) == 1 and fields[0].endswith(".html")
            emu.clear_log()
            assert (m.path / ".by-id" / f"GL{plot}").read_bytes() == b"\x89PNG plot"
            assert next(r.path for r in emu.requests()) == f"/api/v1/files/{plot}"
            emu.clear_log()
            expect_errno(errno.ENOENT, os.stat, m.path / ".by-id" / "SD999999")
            assert len(emu.requests()) == 1
            expect_errno(errno.ENOENT, os.stat, m.path / ".by-handle" / "1" / "2")
            assert len(emu.requests()) == 1  # no handles in RSpace: no request

            in_tree = m.path / "Projects" / "Run 1"  # the mount's root is the Home folder
            assert os.stat(in_tree).st_ino == os.stat(m.path / ".by-id" / f"SD{doc}").st_ino
            page = f"{server.url}/workspace/editor/structuredDocument/{doc}"
            assert resolve(m, page) == str(in_tree)
            url = os.getxattr(in_tree, "user.docfs.url").decode()
            assert url == f"{server.url}/globalId/SD{doc}"
        finally:
            m.stop()


def test_docspace_by_file_and_folder_id(tmp_path: Path) -> None:
    owner = ("owner@docspace.example", "docspace-password-1")
    emu = DocSpaceEmulator(user=owner[0], password=owner[1])
    my = emu.my_documents_id(owner[0])
    folder = emu.add_folder(my, "Reports")
    report = emu.add_file(folder, "q1.txt", b"quarter one\n")
    with EmulatorServer(emu) as server:
        m = Mount(server.url, tmp_path / "mnt", tmp_path / "cache")
        m.kind = "docspace"
        m.start(credentials=owner)
        try:
            emu.clear_log()
            assert (m.path / ".by-id" / f"f{report}").read_bytes() == b"quarter one\n"
            assert len(emu.requests("GET", rf"/api/2.0/files/file/{report}$")) == 1
            emu.clear_log()
            assert os.listdir(m.path / ".by-id" / f"d{folder}") == ["q1.txt"]
            assert len(emu.requests("GET", rf"/api/2.0/files/folder/{folder}$")) == 1
            page = f"{server.url}/doceditor?fileid={report}"
            path = Path(resolve(m, page))
            assert path.read_bytes() == b"quarter one\n"
            assert (
                os.getxattr(path, "user.docfs.url")
                .decode()
                .startswith(f"{server.url}/doceditor?fileid={report}")
            )
        finally:
            m.stop()


def test_opus2_by_document_id(tmp_path: Path) -> None:
    emu = Opus2Emulator(rate_limit=None)
    project = emu.add_project("Smith v Jones")
    doc = emu.add_document(project, "Claim.txt", b"claim\n")
    with EmulatorServer(emu) as server:
        m = Mount(server.url, tmp_path / "mnt", tmp_path / "cache")
        m.kind = "opus2"
        m.start(credentials=None, token=emu.default_token)
        try:
            emu.clear_log()
            by_id = m.path / ".by-id" / f"{project}:{doc}"
            assert by_id.read_bytes() == b"claim\n"
            gets = [r for r in emu.requests("GET") if "/content" not in r.path]
            assert len(gets) == 1 and gets[0].path.endswith(f"/documents/{doc}")
            assert resolve(m, f"d:{project}:{doc}") == str(by_id)
            in_tree = m.path / "Smith v Jones" / "Claim.txt"
            assert os.stat(in_tree).st_ino == os.stat(by_id).st_ino
            # Opus 2 documents no web addresses: no user.docfs.url
            expect_errno(errno.ENODATA, os.getxattr, in_tree, "user.docfs.url")
        finally:
            m.stop()
