"""RSpace through a real mount: the acceptance list of issue 5, driven by real programs.

The demo data set (``docfs.emulators.demo_rspace``) is served on loopback. Request counts come
from the emulator's log. Most tests mount a named remote from a configuration file, only so that
the client's pacing (RSpace's documented 15 requests per 15 s) can be lifted for the test; the
sharing test mounts ``rspace:URL`` with ``DOCFS_TOKEN``, as a user would.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import os
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from docfs import errors
from docfs.backends.rspace import commands as sharing
from docfs.emulators.base import EmulatorServer
from docfs.emulators.demo_rspace import seed_demo
from docfs.emulators.rspace import DEFAULT_API_KEY, RSpaceEmulator
from docfs.redact import Redactor
from tests.fuse.conftest import Mount

TREE = r"^/api/v1/folders/tree/\d+$"
KINETICS = ("Projects", "Enzyme kinetics")
RUN1 = (*KINETICS, "Kinetics of lactase, run 1")
NOTES = (*KINETICS, "Literature notes")
NOTEBOOK = ("Lab notebook 2026",)
RUNS = ("Gallery", "Documents", "plate-reader runs")


@dataclass
class Lab:
    emu: RSpaceEmulator
    mount: Mount
    config: Path

    def path(self, *parts: str) -> Path:
        return self.mount.path.joinpath(*parts)

    def id_of(self, name: str, kind: str | None = None) -> int:
        (ident,) = self.emu.find(name, kind=kind)
        return ident

    def writes(self) -> list[str]:
        """Every request that could change something on the server."""
        return [f"{r.method} {r.path}" for r in self.emu.requests() if r.method != "GET"]


def serve_demo() -> tuple[RSpaceEmulator, EmulatorServer]:
    emu = RSpaceEmulator()
    seed_demo(emu)
    return emu, EmulatorServer(emu)


@pytest.fixture
def runtime(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private runtime directory: the daemon's state file, read by ``docfs share``."""
    path = tmp_path / "run"
    monkeypatch.setenv("DOCFS_RUNTIME_DIR", str(path))
    return path


@pytest.fixture
def lab(tmp_path: Path, runtime: Path) -> Iterator[Lab]:
    with running_lab(tmp_path, RSpaceEmulator()) as mounted:
        yield mounted


@contextlib.contextmanager
def running_lab(tmp_path: Path, emu: RSpaceEmulator) -> Iterator[Lab]:
    """``emu`` with the demo data, mounted as the configured remote "lab"."""
    seed_demo(emu)
    with EmulatorServer(emu) as server:
        key = tmp_path / "api-key"
        key.write_text(DEFAULT_API_KEY)
        key.chmod(0o600)
        config = tmp_path / "config.toml"
        config.write_text(
            "[remotes.lab]\n"
            'type = "rspace"\n'
            f'url = "{server.url}"\n'
            f'token = {{ file = "{key}" }}\n'
            "requests_per_minute = 60000\n"
            "concurrency = 8\n"
        )
        # "lab:/" is the configured remote "lab" at its root (NAME[:/sub/path])
        mount = Mount("/", tmp_path / "mnt", tmp_path / "cache", "--config", str(config))
        mount.kind = "lab"
        mount.start(credentials=None)
        try:
            yield Lab(emu, mount, config)
        finally:
            mount.stop()


def test_browse_with_ls_and_find_and_read(lab: Lab) -> None:
    emu, m = lab.emu, lab.mount
    # Home: one tree page
    emu.clear_log()
    home = m.run("ls", "-l", str(m.path)).stdout
    assert {"Gallery", "Projects", "Lab notebook 2026", "Shared", "Templates"} <= {
        line.split(maxsplit=8)[-1] for line in home.splitlines()[1:]
    }
    assert [r.path for r in emu.requests()] == [f"/api/v1/folders/tree/{emu.home_id()}"]

    # a notebook: one tree page; its entries are directories, never fetched one by one
    emu.clear_log()
    entries = m.run("ls", "-l", str(lab.path(*NOTEBOOK))).stdout
    assert "2026-03-02 PCR of lacZ" in entries and entries.count("\nd") == 2
    assert [r.path for r in emu.requests()] == [f"/api/v1/folders/tree/{lab.id_of(*NOTEBOOK)}"]

    # a document directory: its fields and linked files from one GET /documents/{id}
    m.run("ls", str(lab.path(*KINETICS)))
    emu.clear_log()
    listing = m.run("ls", "-l", str(lab.path(*RUN1))).stdout
    doc = lab.id_of(RUN1[-1])
    assert [r.path for r in emu.requests()] == [f"/api/v1/documents/{doc}"]
    protocol = lab.id_of("PCR protocol.pdf")
    sizes = {line.split(maxsplit=8)[-1]: int(line.split()[4]) for line in listing.splitlines()[1:]}
    assert sizes == {
        "Objective.html": len(emu.fields(doc)["Objective"].encode()),
        "Method.html": len(emu.fields(doc)["Method"].encode()),
        "Results.html": len(emu.fields(doc)["Results"].encode()),
        "PCR protocol.pdf": len(emu.file_data(protocol)),
        "kinetics-run1.csv": len(emu.file_data(lab.id_of("kinetics-run1.csv"))),
        "kinetics-plot.png": len(emu.file_data(lab.id_of("kinetics-plot.png"))),
    }

    # a Gallery folder of 105 files: its two tree pages and the paged /files listing for sizes
    m.run("ls", str(lab.path(*RUNS[:2])))
    emu.clear_log()
    runs = m.run("ls", "-l", str(lab.path(*RUNS))).stdout.splitlines()[1:]
    assert len(runs) == 105
    run7 = next(line for line in runs if line.endswith(" run-007.csv"))
    assert int(run7.split()[4]) == len(emu.file_data(lab.id_of("run-007.csv")))
    calls = Counter(r.path for r in emu.requests())
    runs_id = lab.id_of(RUNS[-1])
    assert calls[f"/api/v1/folders/tree/{runs_id}"] == 2
    assert calls["/api/v1/files"] <= 2
    assert sum(calls.values()) == calls[f"/api/v1/folders/tree/{runs_id}"] + calls["/api/v1/files"]

    # find over the whole mount: every directory listed once (the big folder: its two pages),
    # every document fetched once, no file fetched one by one, nothing downloaded
    emu.clear_log()
    found = m.run("find", str(m.path)).stdout.splitlines()
    assert str(lab.path(*NOTES, "Data.html")) in found
    assert str(lab.path("Shared", "LabGroups", "Kinetics Lab_SHARED", NOTES[-1])) in found
    assert str(lab.path("Gallery", "Images", "gel-2026-03-02.png")) in found
    trees = Counter(r.path for r in emu.requests("GET", TREE))
    assert trees.pop(f"/api/v1/folders/tree/{runs_id}", 0) <= 2
    assert set(trees.values()) == {1}
    # RUN1 is still cached; the shared "Literature notes" is one document in two places
    docs = Counter(r.path for r in emu.requests("GET", r"^/api/v1/documents/\d+$"))
    assert set(docs.values()) == {1}
    unlisted = [NOTES[-1], "2026-03-02 PCR of lacZ", "2026-03-03 Plasmid prep"]
    assert set(docs) == {f"/api/v1/documents/{lab.id_of(name)}" for name in unlisted}
    assert emu.requests("GET", r"^/api/v1/files/\d+") == []

    # cat a field and a linked file
    method = m.run("cat", str(lab.path(*RUN1, "Method.html"))).stdout
    assert method == emu.fields(doc)["Method"] and "PCR protocol.pdf" in method
    pdf = subprocess.run(
        ["cat", str(lab.path(*RUN1, "PCR protocol.pdf"))], capture_output=True, check=True
    ).stdout
    assert pdf == emu.file_data(protocol) and pdf.startswith(b"%PDF-")


def make_data(root: Path) -> dict[str, bytes]:
    """A small data folder: measurements, notes and a sub-folder (all 'Documents' types)."""
    files = {
        "plate-1.csv": b"well,od600\nA1,0.113\nA2,0.241\n",
        "plate-2.csv": b"well,od600\nA1,0.108\n" * 40,
        "notes.txt": b"Reader warmed up for 10 min.\n",
        "fits/summary.md": b"# Fits\nKm = 2.6 mM\n",
    }
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    return files


def gallery_files(emu: RSpaceEmulator, folder: int, prefix: str = "") -> dict[str, bytes]:
    found: dict[str, bytes] = {}
    for child in emu.children(folder):
        if child["kind"] == "MEDIA":
            found[prefix + child["name"]] = emu.file_data(child["id"])
        else:
            found |= gallery_files(emu, child["id"], f"{prefix}{child['name']}/")
    return found


def test_cp_r_and_rsync_twice_into_a_gallery_section(lab: Lab, tmp_path: Path) -> None:
    emu, m = lab.emu, lab.mount
    documents = lab.path("Gallery", "Documents")
    data = make_data(tmp_path / "plate-reader")
    emu.clear_log()
    m.run("cp", "-r", str(tmp_path / "plate-reader"), str(documents))
    (copied,) = emu.find("plate-reader", kind="FOLDER")
    assert gallery_files(emu, copied) == data
    assert len(emu.requests("POST", r"^/api/v1/folders$")) == 2  # plate-reader, fits
    assert len(emu.requests("POST", r"^/api/v1/files$")) == len(data)
    assert (documents / "plate-reader" / "fits" / "summary.md").read_bytes() == data[
        "fits/summary.md"
    ]

    # rsync -a: one upload per file under its final name; the second run uploads nothing
    emu.clear_log()
    target = f"{documents}/synced/"
    first = m.run("rsync", "-a", f"{tmp_path / 'plate-reader'}/", target, check=False)
    assert first.returncode == 0, first.stderr
    (synced,) = emu.find("synced", kind="FOLDER")
    assert gallery_files(emu, synced) == data
    assert len(emu.requests("POST", r"^/api/v1/files$")) == len(data)
    assert all(not name.startswith(".") for name in gallery_files(emu, synced))
    emu.clear_log()
    again = m.run("rsync", "-a", "--itemize-changes", f"{tmp_path / 'plate-reader'}/", target)
    assert [ln for ln in again.stdout.splitlines() if ln.startswith((">f", "cd"))] == []
    assert lab.writes() == []


def test_edit_a_field_mkdir_and_rm_r_a_document(lab: Lab) -> None:
    emu, m = lab.emu, lab.mount
    notes = lab.id_of(NOTES[-1])
    field = lab.path(*NOTES, "Data.html")
    emu.clear_log()
    # Python r+: read, rewrite in place, truncate; close sends the field with one PUT
    with open(field, "r+", encoding="utf-8") as f:
        text = f.read()
        f.seek(0)
        f.write(text.replace("Lineweaver-Burk plot", "Eadie-Hofstee plot"))
        f.truncate()
    assert lab.writes() == [f"PUT /api/v1/documents/{notes}"]
    assert "Eadie-Hofstee plot" in emu.fields(notes)["Data"]
    assert field.read_text() == emu.fields(notes)["Data"]

    # mkdir: a folder in a Workspace folder, a new entry (document) in a notebook
    emu.clear_log()
    m.run("mkdir", str(lab.path("Projects", "Crystallography")))
    m.run("mkdir", str(lab.path(*NOTEBOOK, "2026-03-04 Western blot")))
    assert lab.writes() == ["POST /api/v1/folders", "POST /api/v1/documents"]
    (folder,) = emu.find("Crystallography")
    assert emu.record(folder)["kind"] == "FOLDER"
    assert emu.record(folder)["parent"] == lab.id_of("Projects")
    (entry,) = emu.find("2026-03-04 Western blot")
    assert emu.record(entry)["kind"] == "DOCUMENT"
    assert emu.record(entry)["parent"] == lab.id_of(*NOTEBOOK)
    # a new document has its field at once (it is listed, not assumed empty)
    assert os.listdir(lab.path(*NOTEBOOK, "2026-03-04 Western blot")) == ["Data.html"]

    # rm of one field alone is only hidden here: no request, the document keeps it
    doc = lab.id_of("2026-03-03 Plasmid prep")
    emu.clear_log()
    m.run("rm", str(lab.path(*NOTEBOOK, "2026-03-03 Plasmid prep", "Data.html")))
    assert lab.writes() == [] and "Miniprep" in emu.fields(doc)["Data"]
    # rm -r of the document directory deletes the document, with one request
    m.run("rm", "-r", str(lab.path(*NOTEBOOK, "2026-03-03 Plasmid prep")))
    assert lab.writes() == [f"DELETE /api/v1/documents/{doc}"]
    assert emu.record(doc)["deleted"]
    assert "2026-03-03 Plasmid prep" not in os.listdir(lab.path(*NOTEBOOK))


def expect_errno(code: int, action: object, *args: object) -> None:
    assert callable(action)
    with pytest.raises(OSError) as failure:
        action(*args)
    assert failure.value.errno == code, (errno.errorcode[code], failure.value)


def write_file(path: Path, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)


def test_refused_operations_return_their_errno_without_a_request(lab: Lab) -> None:
    emu, m = lab.emu, lab.mount
    documents = lab.path("Gallery", "Documents")
    readme = documents / "README.txt"
    # list what is touched first, so that only the refusals are left in the log
    m.run("ls", "-R", str(lab.path("Projects")), str(documents), str(lab.path(*NOTEBOOK)))
    emu.clear_log()
    # Gallery files cannot be deleted, renamed or moved; nothing moves into the Gallery (EPERM,
    # not EXDEV: mv's copy + delete would leave the undeletable original behind)
    expect_errno(errno.EPERM, os.unlink, readme)
    expect_errno(errno.EPERM, os.rename, readme, documents / "README-old.txt")
    expect_errno(errno.EPERM, os.rename, readme, documents / "plate-reader runs" / "README.txt")
    expect_errno(errno.EPERM, os.rename, lab.path(*RUN1), documents / RUN1[-1])
    # folders cannot be renamed; system folders cannot be removed; rmdir keeps ENOTEMPTY
    expect_errno(errno.EPERM, os.rename, lab.path("Projects"), lab.path("Projects 2026"))
    expect_errno(errno.EPERM, os.rmdir, lab.path("Templates"))
    expect_errno(errno.ENOTEMPTY, os.rmdir, lab.path(*KINETICS))
    # no folders directly under Gallery, none inside a document
    expect_errno(errno.EPERM, os.mkdir, lab.path("Gallery", "Spectra"))
    expect_errno(errno.EPERM, os.mkdir, lab.path(*RUN1, "attachments"))
    # plain files do not go into Workspace folders; a file for another section is refused
    # when it is created, before a byte is staged
    expect_errno(errno.EPERM, write_file, lab.path("Projects", "notes.txt"), b"notes\n")
    expect_errno(errno.EINVAL, write_file, documents / "gel.png", b"not in Documents")
    assert "gel.png" not in os.listdir(documents)
    assert not list(m.cache.glob("*/lost+found/*gel.png"))
    # read-only and foreign extended attributes
    expect_errno(errno.EPERM, os.setxattr, readme, "user.rspace.owner", b"someone")
    expect_errno(errno.ENOTSUP, os.setxattr, readme, "user.other.key", b"x")
    assert lab.writes() == []
    log = m.log_text()
    assert "RSpace puts 'gel.png' in the Gallery section Images, not Documents" in log
    assert "RSpace keeps files in the Gallery" in log  # says where plain files go
    # the same through the shell's programs: mv of a Gallery file leaves no copy behind
    for cmd in (
        ["rm", str(readme)],
        ["mv", str(lab.path("Projects")), str(lab.path("P2"))],
        ["mv", str(readme), str(documents / "plate-reader runs")],
    ):
        result = m.run(*cmd, check=False)
        assert result.returncode != 0 and "Operation not permitted" in result.stderr
    assert lab.writes() == []
    assert "README.txt" not in os.listdir(documents / "plate-reader runs")


def test_rspace_2_15_with_upload_quota_mv_and_cp_fail_at_once(
    tmp_path: Path, runtime: Path
) -> None:
    """A 2.15 server (no move API) with the upload quota on (1 MB per hour): ``mv`` of a
    document fails locally without a move request, an empty folder moves by mv's copy and
    delete, and ``cp`` over the quota gets EDQUOT from one request, not twenty."""
    emu = RSpaceEmulator(version="2.15.0", upload_quota=(1.0, 1000.0))
    with running_lab(tmp_path, emu) as lab:
        m = lab.mount
        m.run("ls", "-R", str(lab.path("Projects")), str(lab.path(*RUNS)))
        emu.clear_log()
        moved = m.run("mv", str(lab.path(*RUN1)), str(lab.path("Projects")), check=False)
        assert moved.returncode != 0 and "Operation not permitted" in moved.stderr
        assert RUN1[-1] in os.listdir(lab.path(*KINETICS))
        os.mkdir(lab.path(*KINETICS, "empty"))
        m.run("mv", str(lab.path(*KINETICS, "empty")), str(lab.path("Projects")))
        assert "empty" in os.listdir(lab.path("Projects"))
        assert "empty" not in os.listdir(lab.path(*KINETICS))
        assert not emu.requests("POST", "/documents/move")
        assert "no move API (POST /documents/move is new in RSpace 2.16)" in m.log_text()

        source = tmp_path / "run.txt"
        source.write_bytes(b"r" * (600 * 1024))
        m.run("cp", str(source), str(lab.path(*RUNS, "run-1.txt")))
        emu.clear_log()
        copied = m.run("cp", str(source), str(lab.path(*RUNS, "run-2.txt")), check=False)
        assert copied.returncode != 0 and "Disk quota exceeded" in copied.stderr
        assert [r.status for r in emu.requests("POST", "/files$")] == [429]
        assert "the RSpace upload quota is used up (limit 1.0 MB per hour" in m.log_text()


# ---- sharing from the command line ---------------------------------------------------------


def command(*argv: str) -> argparse.Namespace:
    """Parse ``docfs …`` as the CLI does: ``--config`` before the command, then ours."""
    parser = argparse.ArgumentParser(prog="docfs")
    parser.add_argument("--config", type=Path)
    sharing.register(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(argv)


def run_command(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    args = command(*argv)
    code = args.func(args, Redactor())
    out, err = capsys.readouterr()
    return code, out, err


def test_extended_attributes_tags_and_shares(
    lab: Lab, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    emu, m = lab.emu, lab.mount
    doc = lab.path(*RUN1)
    ident = lab.id_of(RUN1[-1])
    shown = m.run("getfattr", "-d", str(doc)).stdout
    assert f'user.rspace.globalId="SD{ident}"' in shown and 'user.rspace.owner="user1a"' in shown
    # tags, form and shares are not in the tree listing: the first xattr read fetches them
    assert "user.rspace.form=" in shown and "user.rspace.shares=" in shown
    seeded_tags = emu.record(ident)["tags"]
    assert seeded_tags  # the demo document has tags
    tags = m.run("getfattr", "-n", "user.rspace.tags", "--only-values", str(doc)).stdout
    assert tags == seeded_tags
    gel = lab.path("Gallery", "Images", "gel-2026-03-02.png")
    assert m.run("getfattr", "-n", "user.rspace.caption", "--only-values", str(gel)).stdout == (
        "Agarose gel"
    )
    # setfattr writes the tags with one PUT; the document then shows tags, form and shares
    emu.clear_log()
    m.run("setfattr", "-n", "user.rspace.tags", "-v", "kinetics,lactase,2026", str(doc))
    assert lab.writes() == [f"PUT /api/v1/documents/{ident}"]
    assert emu.record(ident)["tags"] == "kinetics,lactase,2026"

    def attr(name: str) -> str:
        return m.run("getfattr", "-n", name, "--only-values", str(doc)).stdout

    assert attr("user.rspace.tags") == "kinetics,lactase,2026"
    assert attr("user.rspace.form") == "Experiment"
    assert attr("user.rspace.shares") == "[]"
    m.run("setfattr", "-x", "user.rspace.tags", str(doc))
    assert emu.record(ident)["tags"] is None and attr("user.rspace.tags") == ""
    bad = m.run("setfattr", "-n", "user.rspace.tags", "-v", "a<b", str(doc), check=False)
    assert bad.returncode != 0 and "Invalid argument" in bad.stderr

    # docfs shares on a mount of a named remote: the key comes from the configuration, never
    # from the environment (which may hold another remote's)
    monkeypatch.setenv("DOCFS_TOKEN", "wrongButWellFormedKey1")
    notes = lab.path(*NOTES)
    located = sharing.locate(notes)
    assert (located.remote_type, located.name, located.mountpoint) == ("rspace", "lab", m.path)
    code, out, _ = run_command(capsys, "--config", str(lab.config), "shares", str(notes))
    header, row = out.splitlines()
    assert code == 0 and header.split() == ["SHARE", "PERMISSION", "WITH", "ITEM"]
    assert row.split()[1:3] == ["edit", "group"] and "'Kinetics Lab'" in row
    assert f"'Literature notes' ({lab.id_of(NOTES[-1])})" in row


@pytest.fixture
def token_mount(
    tmp_path: Path, runtime: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[RSpaceEmulator, Mount, str]]:
    """``docfs mount rspace:URL`` with the API key in DOCFS_TOKEN, as in the README."""
    emu, server = serve_demo()
    with server:
        mount = Mount(server.url, tmp_path / "mnt", tmp_path / "cache")
        mount.kind = "rspace"
        # the server's 15 requests per 15 s paced this test to 75 s; pacing has tests of its own
        mount.start("--requests-per-minute", "60000", token=DEFAULT_API_KEY)
        # docfs share & co. work through the running mount: they need no key of their own
        monkeypatch.delenv("DOCFS_TOKEN", raising=False)
        try:
            yield emu, mount, server.url
        finally:
            mount.stop()


def test_share_unshare_shares_and_mkdir_notebook(
    token_mount: tuple[RSpaceEmulator, Mount, str], capsys: pytest.CaptureFixture[str]
) -> None:
    from rspace_client.eln.eln import ELNClient

    emu, m, url = token_mount
    run1 = m.path.joinpath(*RUN1)
    doc = emu.find(RUN1[-1])[0]
    (demo_share,) = emu.shares()  # "Literature notes" with the lab's group
    lab_group = demo_share["target"]

    # into a sub-folder of the group's shared folder, made through the mount
    enzymes = m.path / "Shared" / "LabGroups" / "Kinetics Lab_SHARED" / "Enzymes"
    m.run("mkdir", str(enzymes))
    code, out, err = run_command(
        capsys,
        *("share", str(run1), "--group", "Kinetics Lab", "--permission", "edit"),
        *("--folder", str(enzymes)),
    )
    assert code == 0, err
    assert f"shared '{RUN1[-1]}' (SD{doc}) with group 'Kinetics Lab' (GP{lab_group}), edit" in out
    (made,) = [s for s in emu.shares() if s["item"] == doc]
    assert made["folder"] == emu.find("Enzymes")[0]
    # the official client sees the share
    client = ELNClient(url, DEFAULT_API_KEY)
    listed = client.get_shared_items()["shares"]
    mine = [s for s in listed if s["sharedItemId"] == doc]
    assert [(s["sharedTargetType"], s["sharedTargetId"], s["permission"]) for s in mine] == [
        ("GROUP", lab_group, "EDIT")
    ]
    # sharing with the same group again is the state asked for: success, and no request that
    # RSpace would refuse (it answers 401 to an existing share); next to a new target, that
    # target is shared and the existing share named
    emu.clear_log()
    code, out, err = run_command(
        capsys, "share", str(run1), "--group", f"GP{lab_group}", "--permission", "edit"
    )
    assert (code, err) == (0, "")
    assert out == (
        f"'{RUN1[-1]}' (SD{doc}) is already shared with group 'Kinetics Lab' (GP{lab_group}), "
        "edit\n"
    )
    assert not [r for r in emu.requests() if r.method == "POST"]
    # asked for read where it is shared for edit: said, not silently changed
    with pytest.raises(errors.InvalidArgument) as refused:
        run_command(capsys, "share", str(run1), "--group", str(lab_group), "--user", "user2b")
    assert str(refused.value) == (
        f"'{RUN1[-1]}' is shared with group 'Kinetics Lab' (GP{lab_group}) as edit already: "
        "unshare it first to make it read"
    )
    code, out, err = run_command(
        capsys,
        *("share", str(run1), "--group", str(lab_group), "--user", "user2b"),
        *("--permission", "edit"),
    )
    assert (code, err) == (0, "")
    assert "with user 'user2b', edit" in out
    assert f"is already shared with group 'Kinetics Lab' (GP{lab_group}), edit" in out
    # the command line as a user types it: one answer, no log lines (no login, no
    # "connected"), and no key in the environment
    typed = subprocess.run(
        [
            sys.executable,
            "-m",
            "docfs",
            "share",
            str(run1),
            "--user",
            "user2b",
            "--permission",
            "edit",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (typed.returncode, typed.stderr) == (0, "")
    assert typed.stdout == f"'{RUN1[-1]}' (SD{doc}) is already shared with user 'user2b', edit\n"

    # docfs shares: of one document, and (from inside the mount, without a path) all of them
    code, out, _ = run_command(capsys, "shares", str(run1))
    assert code == 0 and len(out.splitlines()) == 3 and "user 'user2b'" in out
    with contextlib.chdir(m.path / "Projects"):
        code, out, _ = run_command(capsys, "shares")
    assert code == 0 and "'Literature notes'" in out and len(out.splitlines()) == 4

    # unshare only the group, then everything
    code, out, _ = run_command(capsys, "unshare", str(run1), "--group", "Kinetics Lab")
    assert code == 0 and f"from group 'Kinetics Lab' (GP{lab_group})" in out
    assert [
        s["sharedTargetType"]
        for s in client.get_shared_items()["shares"]
        if s["sharedItemId"] == doc
    ] == ["USER"]
    code, out, _ = run_command(capsys, "unshare", str(run1))
    assert code == 0 and "from user 'user2b'" in out
    assert [s for s in client.get_shared_items()["shares"] if s["sharedItemId"] == doc] == []
    client.close()
    code, out, err = run_command(capsys, "unshare", str(run1))
    assert code == 0 and out == "" and "was not shared" in err
    assert run_command(capsys, "shares", str(run1))[1] == f"'{RUN1[-1]}' (SD{doc}) is not shared\n"

    # things RSpace cannot share
    with pytest.raises(errors.NotSupported):
        run_command(capsys, "share", str(m.path / "Projects"), "--group", "Kinetics Lab")
    with pytest.raises(errors.InvalidArgument):
        run_command(capsys, "share", str(run1), "--group", "No Such Lab")
    with pytest.raises(errors.NotFound):
        run_command(capsys, "share", "/tmp", "--group", "Kinetics Lab")

    # mkdir --notebook: a notebook, shown by the mount at once
    code, out, _ = run_command(capsys, "mkdir", "--notebook", str(m.path / "Projects" / "ELN 2"))
    assert code == 0 and "created notebook" in out
    (notebook,) = emu.find("ELN 2")
    assert emu.record(notebook)["kind"] == "NOTEBOOK"
    assert emu.record(notebook)["parent"] == emu.find("Projects")[0]
    assert "ELN 2" in os.listdir(m.path / "Projects")
    assert m.run("mkdir", str(m.path / "Projects" / "ELN 2" / "Day 1"), check=False).returncode == 0
    assert emu.record(emu.find("Day 1")[0])["kind"] == "DOCUMENT"
    with pytest.raises(errors.NotSupported):
        run_command(capsys, "mkdir", "--notebook", str(m.path.joinpath(*NOTEBOOK, "nested")))
    with pytest.raises(errors.AlreadyExists):
        run_command(capsys, "mkdir", "--notebook", str(m.path / "Projects" / "ELN 2"))
    # without --notebook, docfs mkdir is mkdir(2) through the mount
    assert run_command(capsys, "mkdir", str(m.path / "Projects" / "Plain"))[0] == 0
    assert emu.record(emu.find("Plain")[0])["kind"] == "FOLDER"
    code, _, err = run_command(capsys, "mkdir", str(m.path / "Projects" / "Plain"))
    assert code == 1 and "File exists" in err
