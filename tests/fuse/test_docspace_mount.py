"""ONLYOFFICE DocSpace through a real mount: the acceptance list of issue 7, item by item.

Each test serves a ``DocSpaceEmulator`` on 127.0.0.1, mounts it with the docfs daemon and drives
the mount with real programs (``ls``, ``find``, ``cat``, ``cmp``, ``dd``, ``cp -r``, ``rsync -a``,
``mv``, ``rm -r``, ``mkdir``, ``getfattr``/``setfattr``) and Python file calls. What the programs
see is checked against the emulator's state; what it cost is checked against its request log,
its record of the byte ranges it sent and of the upload chunks it received.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from docfs.emulators.base import EmulatorServer
from docfs.emulators.docspace import DocSpaceEmulator, RateLimitConfig
from docfs.emulators.samples import large_blob
from docfs.vfs.content import BLOCK_SIZE
from tests.fuse.conftest import Mount

OWNER = ("owner@docspace.example", "docspace-password-1")
MiB = 1 << 20
API = "/api/2.0/files"
#: the requests that start an upload of a new file, and those that carry bytes
CREATE_SESSION = rf"^{API}/\d+/upload/create_session$"
EMPTY_FILE = rf"^{API}/\d+/file$"
CHUNK = r"^/ChunkedUploader\.ashx$"
SIMPLE_UPLOAD = rf"^{API}/\d+/(upload|insert)$"


class Portal:
    """One emulator on loopback and one (not yet started) mount of it."""

    def __init__(self, tmp_path: Path, **emulator_options: Any) -> None:
        self.emu = DocSpaceEmulator(user=OWNER[0], password=OWNER[1], **emulator_options)
        self.server = EmulatorServer(self.emu)
        self.mount = Mount("", tmp_path / "mnt", tmp_path / "cache")
        self.mount.kind = "docspace"
        self.my = self.emu.my_documents_id(OWNER[0])

    def start(self, *options: str, token: str | None = None) -> Mount:
        self.server.start()
        self.mount.url = self.server.url
        if token is not None:
            return self.mount.start(*options, token=token)
        return self.mount.start(*options, credentials=OWNER)

    def stop(self) -> None:
        self.mount.stop()
        self.server.stop()


@pytest.fixture
def open_portal(tmp_path: Path) -> Iterator[Callable[..., Portal]]:
    """Build portals with emulator options; each one is unmounted and stopped at the end."""
    made: list[Portal] = []

    def make(**emulator_options: Any) -> Portal:
        made.append(Portal(tmp_path, **emulator_options))
        return made[-1]

    yield make
    for p in made:
        p.stop()


@pytest.fixture
def portal(open_portal: Callable[..., Portal]) -> Portal:
    return open_portal()


def tree_of(emu: DocSpaceEmulator, folder_id: int, prefix: str = "") -> dict[str, bytes | None]:
    """The server's content below ``folder_id``: relative path → bytes (None for a folder)."""
    found: dict[str, bytes | None] = {}
    for kind, item, title in emu.children(folder_id):
        path = f"{prefix}{title}"
        if kind == "folder":
            found[path] = None
            found.update(tree_of(emu, item, path + "/"))
        else:
            found[path] = emu.file_content(item)
    return found


def local_tree(root: Path) -> dict[str, bytes | None]:
    return {
        str(p.relative_to(root)): (p.read_bytes() if p.is_file() else None)
        for p in sorted(root.rglob("*"))
    }


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def only(ids: list[int]) -> int:
    assert len(ids) == 1, ids
    return ids[0]


def api_get(url: str, path: str) -> Any:
    """``GET path`` through the portal's own API, logged in as the owner (not the mount)."""
    with httpx.Client(base_url=url) as client:
        login = client.post(
            "/api/2.0/authentication", json=dict(zip(("userName", "password"), OWNER, strict=True))
        )
        token = login.json()["response"]["token"]
        answer = client.get(path, headers={"Authorization": token})
        answer.raise_for_status()
        return answer.json()["response"]


# ---- browse ---------------------------------------------------------------------------------


def test_browse_my_documents_rooms_and_trash(portal: Portal) -> None:
    e, owner = portal.emu, OWNER[0]
    reports = e.add_folder(portal.my, "Reports", owner=owner)
    year = e.add_folder(reports, "2024", owner=owner)
    files = {
        "My documents/notes.txt": e.add_file(portal.my, "notes.txt", b"first notes\n"),
        "My documents/empty.txt": e.add_file(portal.my, "empty.txt", b""),
        "My documents/Reports/2024/q1.csv": e.add_file(year, "q1.csv", b"a,b\n1,2\n"),
    }
    many = e.add_folder(portal.my, "Many", owner=owner)
    numbered = [e.add_file(many, f"f{n:03d}.txt", b"%d\n" % n) for n in range(230)]
    # a sample: the client paces itself to 1500 requests a minute, one download per file
    for n in (0, 99, 100, 229):
        files[f"My documents/Many/f{n:03d}.txt"] = numbered[n]
    marketing = e.add_room("Marketing", owner=owner)
    images = e.add_folder(marketing, "Images", owner=owner)
    files["Rooms/Marketing/Images/logo.png"] = e.add_file(images, "logo.png", os.urandom(5000))
    files["Rooms/Marketing/Brochure.pdf"] = e.add_file(marketing, "Brochure.pdf", b"%PDF-1.4\n")
    apollo = e.add_room("Project Apollo", owner=owner, room_type=2)
    files["Rooms/Project Apollo/plan.txt"] = e.add_file(apollo, "plan.txt", b"go\n")
    gone = e.add_file(portal.my, "deleted.txt", b"in the bin\n")
    e.move_file(gone, e.trash_id(owner))
    files["Trash/deleted.txt"] = gone
    # DocSpace allows two files of one title in a folder: both show, under distinct names
    twins = [e.add_file(reports, "summary.txt", data) for data in (b"one\n", b"two\n")]
    m = portal.start()

    assert m.run("ls", str(m.path)).stdout.splitlines() == ["My documents", "Rooms", "Trash"]
    assert m.run("ls", "-1", str(m.path / "Rooms")).stdout.splitlines() == [
        "Marketing",
        "Project Apollo",
    ]
    m.run("ls", str(m.path / "My documents"))
    e.clear_log()
    listing = m.run("ls", "-l", str(m.path / "My documents" / "Many")).stdout.splitlines()
    assert [line.split()[-1] for line in listing[1:]] == [f"f{n:03d}.txt" for n in range(230)]
    pages = e.requests("GET", rf"^{API}/{many}$")
    # 230 entries: three pages of at most 100, and nothing per file
    assert sorted(r.query for r in pages) == [
        f"count=100&startIndex={start}" for start in (0, 100, 200)
    ]
    assert len(e.requests()) == 3

    found = {
        str(Path(p).relative_to(m.path)) for p in m.run("find", str(m.path)).stdout.splitlines()
    }
    assert set(files) <= found
    assert {"My documents/Reports", "My documents/Reports/2024", "Rooms/Marketing/Images"} <= found
    for rel, file_id in files.items():
        path = m.path / rel
        data = e.file_content(file_id)
        assert subprocess.run(["cmp", str(path), "-"], input=data).returncode == 0, rel
        st = path.stat()
        assert st.st_size == len(data)
        assert abs(st.st_mtime - e.files[file_id].modified) < 1
    assert m.run("cat", str(m.path / "My documents" / "notes.txt")).stdout == "first notes\n"
    shown = sorted((m.path / "My documents" / "Reports").glob("summary*.txt"))
    assert len(shown) == 2 and shown[0].name != shown[1].name
    assert sorted(p.read_bytes() for p in shown) == [e.file_content(t) for t in twins]
    # an empty file has no pureContentLength: size 0, and reading it costs no download
    assert not [d for d in e.download_log() if d.file_id == files["My documents/empty.txt"]]

    dump = m.run("getfattr", "-d", str(m.path / "Rooms" / "Marketing" / "Brochure.pdf")).stdout
    assert f'user.docspace.id="{files["Rooms/Marketing/Brochure.pdf"]}"' in dump
    assert 'user.docspace.version="1"' in dump
    room_dump = m.run("getfattr", "-d", str(m.path / "Rooms" / "Project Apollo")).stdout
    assert 'user.docspace.room_type="2"' in room_dump

    # Trash is read-only: refused locally, nothing is sent
    e.clear_log()
    refused = m.run("touch", str(m.path / "Trash" / "new.txt"), check=False)
    assert refused.returncode != 0
    assert m.run("rm", str(m.path / "Trash" / "deleted.txt"), check=False).returncode != 0
    # and the Rooms section takes rooms (mkdir), not files
    assert m.run("touch", str(m.path / "Rooms" / "loose.txt"), check=False).returncode != 0
    assert [r for r in e.requests() if r.method != "GET"] == []
    assert e.file_info(gone)["in_trash"]


# ---- ranged reads -----------------------------------------------------------------------------


def test_last_mib_of_a_200_mib_file_costs_ranged_requests_for_that_region_only(
    portal: Portal, tmp_path: Path
) -> None:
    size = 200 * MiB
    room = portal.emu.add_room("Data", owner=OWNER[0])
    # generated by the emulator block by block (PatternContent): never 200 MiB in memory
    big = portal.emu.add_file(room, "big.bin", size=size, owner=OWNER[0])
    m = portal.start()
    path = m.path / "Rooms" / "Data" / "big.bin"
    assert path.stat().st_size == size
    portal.emu.clear_log()

    tail = tmp_path / "tail.bin"
    m.run("dd", f"if={path}", f"of={tail}", "bs=1M", "skip=199", "count=1", "status=none")
    assert tail.read_bytes() == portal.emu.file_bytes(big, size - MiB, size)

    sent = portal.emu.download_log()
    assert sent, "the tail was not downloaded"
    # the cache fetches whole blocks: the region is the block(s) holding the last MiB
    region_start = (size - MiB) // BLOCK_SIZE * BLOCK_SIZE
    for record in sent:
        assert (record.file_id, record.version, record.status) == (big, 1, 206)
        assert record.range is not None and record.range.startswith("bytes=")
        assert region_start <= record.start < record.end <= size
    assert sum(r.end - r.start for r in sent) <= size - region_start
    assert min(r.start for r in sent) <= size - MiB and max(r.end for r in sent) == size
    # every request went to the download handler, and nothing else was downloaded
    downloads = portal.emu.requests("GET", r"^/filehandler\.ashx$")
    assert len(downloads) == len(sent)
    assert sum(r.bytes_out for r in downloads) == sum(r.end - r.start for r in sent)

    portal.emu.clear_log()
    again = tmp_path / "again.bin"
    m.run("dd", f"if={path}", f"of={again}", "bs=1M", "skip=199", "count=1", "status=none")
    assert again.read_bytes() == tail.read_bytes()
    assert portal.emu.download_log() == []  # served from the cache


# ---- cp -r and rsync -a -----------------------------------------------------------------------


def make_project(root: Path) -> dict[str, bytes | None]:
    (root / "sub" / "deeper").mkdir(parents=True)
    (root / "a.txt").write_bytes(b"alpha\n")
    (root / "empty.dat").write_bytes(b"")
    (root / "sub" / "b.csv").write_bytes(b"x,y\n1,2\n")
    (root / "sub" / "d.md").write_bytes(b"# d\n")
    (root / "sub" / "deeper" / "c.bin").write_bytes(os.urandom(300_000))
    return local_tree(root)


def test_cp_r_then_rsync_a_twice(portal: Portal, tmp_path: Path) -> None:
    e = portal.emu
    room = e.add_room("Shared", owner=OWNER[0])
    src = tmp_path / "project"
    tree = make_project(src)
    non_empty = sum(1 for data in tree.values() if data)
    m = portal.start()

    e.clear_log()
    m.run("cp", "-r", str(src), str(m.path / "My documents"))
    project = only(e.find(portal.my, "project"))
    assert tree_of(e, project) == tree
    # one session per non-empty file, the empty one created directly, one POST per folder
    assert len(e.requests("POST", CREATE_SESSION)) == non_empty
    assert len(e.requests("POST", EMPTY_FILE)) == 1
    assert len(e.requests("POST", rf"^{API}/folder/\d+$")) == 3
    assert e.requests("POST", SIMPLE_UPLOAD) == [] and e.requests("PUT") == []

    e.clear_log()
    target = m.path / "Rooms" / "Shared" / "project"
    first = m.run("rsync", "-a", f"{src}/", f"{target}/", check=False)
    assert first.returncode == 0, first.stderr
    copy = only(e.find(room, "project"))
    # the tree arrived under its final names: rsync's temporary ".name.XXXXXX" never did
    assert tree_of(e, copy) == tree
    assert len(e.requests("POST", CREATE_SESSION)) == non_empty
    assert e.requests("PUT", rf"^{API}/file/\d+$") == []  # no rename of a temporary file
    for rel, data in tree.items():
        if data is not None:
            # rsync -a set the times; the mount keeps them (within a float's precision)
            shown, local = (target / rel).stat(), (src / rel).stat()
            assert abs(shown.st_mtime_ns - local.st_mtime_ns) < 1000

    e.clear_log()
    second = m.run("rsync", "-a", "--itemize-changes", f"{src}/", f"{target}/")
    assert not [ln for ln in second.stdout.splitlines() if ln.startswith(">f")]
    assert [r for r in e.requests() if r.method != "GET"] == []
    assert e.chunk_log() == []


# ---- overwrite --------------------------------------------------------------------------------


def test_overwrite_is_a_new_version_of_the_same_file(portal: Portal, tmp_path: Path) -> None:
    e = portal.emu
    log_id = e.add_file(portal.my, "log.txt", b"line 1\n", owner=OWNER[0])
    data_id = e.add_file(portal.my, "data.bin", b"0123456789", owner=OWNER[0])
    m = portal.start()
    base = m.path / "My documents"

    e.clear_log()
    subprocess.run(f"echo 'line 2' >> '{base / 'log.txt'}'", shell=True, check=True)
    assert e.file_content(log_id) == b"line 1\nline 2\n"
    assert e.find(portal.my, "log.txt") == [log_id]
    assert len(e.requests("POST", rf"^{API}/file/{log_id}/edit_session$")) == 1
    assert e.requests("POST", CREATE_SESSION) == []
    history = api_get(portal.server.url, f"{API}/file/{log_id}/history")
    assert [(v["id"], v["version"]) for v in history] == [(log_id, 2), (log_id, 1)]

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
    assert e.file_content(data_id) == b"012\0\x0056789"
    with open(base / "data.bin", "r+b") as fh:
        fh.seek(8)
        fh.write(b"XYZ")
    assert e.file_content(data_id) == b"012\0\x00567XYZ"
    (base / "data.bin").write_bytes(b"")  # truncated to nothing: still a version, not a delete
    assert e.file_content(data_id) == b""
    info = e.file_info(data_id)
    assert (info["versions"], info["folder_id"]) == (4, portal.my)
    assert [e.file_content(data_id, v) for v in (1, 2)] == [b"0123456789", b"012\0\x0056789"]

    local = tmp_path / "log.txt"
    local.write_bytes(b"replaced by cp\n")
    m.run("cp", str(local), str(base / "log.txt"))
    assert e.file_content(log_id) == b"replaced by cp\n"
    assert e.file_info(log_id)["versions"] == 3
    assert (base / "log.txt").read_bytes() == b"replaced by cp\n"


# ---- chunked uploads --------------------------------------------------------------------------


def test_35_mib_file_uploads_in_chunks_of_exactly_the_configured_size(
    open_portal: Callable[..., Portal], tmp_path: Path
) -> None:
    # 8 MiB rather than the 10 MiB default: the client must take the size from the portal's
    # settings (a bigger chunk is refused, a smaller one never completes the session)
    chunk = 8 * MiB
    size = 35 * MiB
    portal = open_portal(chunk_upload_size=chunk)
    e = portal.emu
    local = tmp_path / "scan.tif"
    local.write_bytes(large_blob(size))
    m = portal.start()
    e.clear_log()
    m.run("cp", str(local), str(m.path / "My documents"))

    file_id = only(e.find(portal.my, "scan.tif"))
    assert e.file_info(file_id)["size"] == size
    assert sha256(e.file_content(file_id)) == sha256(local.read_bytes())
    assert len(e.requests("POST", CREATE_SESSION)) == 1
    received = e.chunk_log()
    assert [c.size for c in received] == [chunk, chunk, chunk, chunk, 3 * MiB]
    assert sorted(c.number or 0 for c in received) == [1, 2, 3, 4, 5]
    assert len({c.session_id for c in received}) == 1
    assert len([r for r in e.requests("POST", CHUNK) if "finalize=true" in r.query]) == 1

    # one changed byte in the middle: a new version of the same id, again in exact chunks,
    # staged from the cached copy of the upload (nothing is downloaded)
    e.clear_log()
    m.run(
        "dd",
        "if=/dev/zero",
        f"of={m.path / 'My documents' / 'scan.tif'}",
        "bs=1",
        "count=1",
        f"seek={size // 2}",
        "conv=notrunc",
        "status=none",
    )
    assert e.file_info(file_id)["versions"] == 2
    assert e.file_bytes(file_id, size // 2 - 1, size // 2 + 2)[1] == 0
    assert len(e.requests("POST", rf"^{API}/file/{file_id}/edit_session$")) == 1
    assert [c.size for c in e.chunk_log()] == [chunk, chunk, chunk, chunk, 3 * MiB]
    assert e.download_log() == []


# ---- asynchronous file operations --------------------------------------------------------------


def operations_polled(e: DocSpaceEmulator) -> int:
    return len(e.requests("GET", rf"^{API}/fileops$"))


def test_mv_waits_for_the_move_operation(open_portal: Callable[..., Portal]) -> None:
    # every file operation runs 0.3 s on the server: a client that did not poll would return
    # before the emulator's state changed, and the checks below read that state directly
    portal = open_portal(operation_delay=0.3)
    e, owner = portal.emu, OWNER[0]
    inbox = e.add_folder(portal.my, "Inbox", owner=owner)
    filed = e.add_folder(portal.my, "Filed", owner=owner)
    a = e.add_file(inbox, "a.txt", b"aaa\n", owner=owner)
    b = e.add_file(inbox, "b.txt", b"bbb\n", owner=owner)
    old = e.add_folder(inbox, "Old", owner=owner)
    e.add_file(old, "c.txt", b"ccc\n", owner=owner)
    m = portal.start()
    base = m.path / "My documents"
    m.run("ls", str(base / "Inbox"), str(base / "Filed"))

    e.clear_log()
    m.run("mv", str(base / "Inbox" / "a.txt"), str(base / "Filed"))
    assert e.file_info(a)["folder_id"] == filed
    assert len(e.requests("PUT", rf"^{API}/fileops/move$")) == 1
    assert operations_polled(e) >= 1 and e.pending_operations() == 0

    e.clear_log()
    m.run("mv", str(base / "Inbox" / "b.txt"), str(base / "Filed" / "bravo.txt"))
    assert (e.file_info(b)["folder_id"], e.file_info(b)["title"]) == (filed, "bravo.txt")
    assert len(e.requests("PUT", rf"^{API}/file/{b}$")) == 1

    e.clear_log()
    m.run("mv", str(base / "Inbox" / "Old"), str(base / "Filed"))
    assert e.folder_info(old)["parent_id"] == filed
    assert operations_polled(e) >= 1 and e.pending_operations() == 0
    assert (base / "Filed" / "Old" / "c.txt").read_bytes() == b"ccc\n"

    # a rename in place is one PUT, no file operation
    e.clear_log()
    m.run("mv", str(base / "Filed" / "a.txt"), str(base / "Filed" / "alpha.txt"))
    assert e.file_info(a)["title"] == "alpha.txt"
    assert [r.method + " " + r.path for r in e.requests() if r.method != "GET"] == [
        f"PUT {API}/file/{a}"
    ]

    # DocSpace keeps a file's extension on rename: mv falls back to copy + delete
    m.run("mv", str(base / "Filed" / "alpha.txt"), str(base / "Filed" / "alpha.md"))
    assert e.file_info(a)["in_trash"]
    copy = only(e.find(filed, "alpha.md"))
    assert e.file_content(copy) == b"aaa\n"
    assert sorted(p.name for p in (base / "Filed").iterdir()) == ["Old", "alpha.md", "bravo.txt"]
    assert sorted(p.name for p in (base / "Inbox").iterdir()) == []

    # onto an existing file: the target gets a new version, the source goes to the Trash
    e.clear_log()
    m.run("mv", "-f", str(base / "Filed" / "bravo.txt"), str(base / "Filed" / "alpha.md"))
    assert (e.file_content(copy), e.file_info(copy)["versions"]) == (b"bbb\n", 2)
    assert e.file_info(b)["in_trash"] and e.pending_operations() == 0
    assert sorted(p.name for p in (base / "Filed").iterdir()) == ["Old", "alpha.md"]


def test_rm_r_waits_for_the_deletions_and_mkdir_makes_folders_and_rooms(
    open_portal: Callable[..., Portal],
) -> None:
    portal = open_portal(operation_delay=0.3)
    e, owner = portal.emu, OWNER[0]
    old = e.add_folder(portal.my, "Old", owner=owner)
    older = e.add_folder(old, "Older", owner=owner)
    c = e.add_file(old, "c.txt", b"ccc\n", owner=owner)
    d = e.add_file(older, "d.txt", b"ddd\n", owner=owner)
    m = portal.start()
    base = m.path / "My documents"

    e.clear_log()
    m.run("rm", "-r", str(base / "Old"))
    assert e.file_info(c)["in_trash"] and e.file_info(d)["in_trash"]
    assert e.folder_info(old)["in_trash"] and e.folder_info(older)["in_trash"]
    assert len(e.requests("DELETE")) == 4  # two files, then two (by then empty) folders
    assert operations_polled(e) >= 1 and e.pending_operations() == 0
    assert not (base / "Old").exists()
    assert {"c.txt", "d.txt", "Old", "Older"} <= set(os.listdir(m.path / "Trash"))

    m.run("mkdir", "-p", str(base / "New" / "Inner"))
    new = only(e.find(portal.my, "New"))
    inner = only(e.find(new, "Inner"))
    rooms = m.path / "Rooms"
    m.run("mkdir", str(rooms / "Team Room"))
    room = only(e.find(e.rooms_root_id, "Team Room"))
    assert e.folder_info(room)["room_type"] == 5  # CustomRoom
    (rooms / "Team Room" / "hello.txt").write_bytes(b"hi\n")
    assert e.file_content(only(e.find(room, "hello.txt"))) == b"hi\n"
    m.run("mv", str(rooms / "Team Room"), str(rooms / "Crew Room"))
    assert e.folder_info(room)["title"] == "Crew Room"
    assert os.listdir(rooms / "Crew Room") == ["hello.txt"]
    m.run("rm", "-r", str(rooms / "Crew Room"))
    assert e.find(e.rooms_root_id, "Crew Room") == [] and e.pending_operations() == 0

    busy = m.run("rmdir", str(base / "New"), check=False)
    assert busy.returncode != 0 and "not empty" in busy.stderr
    m.run("rmdir", str(base / "New" / "Inner"))
    assert e.folder_info(inner)["in_trash"] and e.pending_operations() == 0

    # an operation that fails on the server fails the call, and the file stays
    (base / "New" / "open.docx").write_bytes(b"PK")
    edited = only(e.find(new, "open.docx"))
    e.set_editing(edited)  # someone has it open in the editor
    refused = m.run("rm", str(base / "New" / "open.docx"), check=False)
    assert refused.returncode != 0 and "Permission denied" in refused.stderr
    assert not e.file_info(edited)["in_trash"] and e.pending_operations() == 0
    assert (base / "New" / "open.docx").read_bytes() == b"PK"


# ---- rate limits ------------------------------------------------------------------------------


def read_in_parallel(folder: Path) -> dict[str, str]:
    """``sha256sum`` of every file of ``folder``, all at once: file name → digest."""
    result = subprocess.run(
        "ls | xargs -P 32 -n 1 sha256sum",
        shell=True,
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return {name: digest for digest, name in (ln.split() for ln in result.stdout.splitlines())}


def test_a_burst_of_429_or_503_answers_is_absorbed(portal: Portal) -> None:
    e = portal.emu
    blobs: dict[str, dict[str, bytes]] = {}
    for room_name in ("Cloud", "Workspace"):
        room = e.add_room(room_name, owner=OWNER[0])
        blobs[room_name] = {f"r{n:02d}.bin": os.urandom(40_000 + n) for n in range(16)}
        for name, data in blobs[room_name].items():
            e.add_file(room, name, data, owner=OWNER[0])
    m = portal.start()
    # 16 parallel readers against a portal that takes 10 requests per 2 s: DocSpace's own
    # limiter (429 + Retry-After + X-RateLimit-*), then the older platform's rule (503)
    for room_name, limits in (
        ("Cloud", RateLimitConfig(per_window=10, window_seconds=2.0, daily_writes=None)),
        ("Workspace", RateLimitConfig.workspace(per_window=10, window_seconds=2.0)),
    ):
        folder = m.path / "Rooms" / room_name
        m.run("ls", str(folder))
        e.set_rate_limits(limits)
        e.clear_log()
        digests = read_in_parallel(folder)
        e.set_rate_limits(None)
        expected = {n: sha256(d) for n, d in blobs[room_name].items()}
        assert digests == expected
        rejected = [r for r in e.requests() if r.fault == "rate-limited"]
        assert len(rejected) >= len(expected) - limits.per_window
        assert {r.status for r in rejected} == {limits.status}
        # every file was served once in the end, none twice
        served = [d.file_id for d in e.download_log() if d.status in (200, 206)]
        assert len(served) == len(set(served)) == len(expected)
    assert "retrying" in m.log_text()


# ---- metadata and credentials ----------------------------------------------------------------


def test_api_key_mount_with_comment_xattr(portal: Portal) -> None:
    e = portal.emu
    key = e.add_api_key(OWNER[0])
    file_id = e.add_file(portal.my, "report.pdf", b"%PDF-1.4\n", owner=OWNER[0])
    m = portal.start(token=key)
    path = m.path / "My documents" / "report.pdf"
    names = m.run("getfattr", "-d", "-m", "-", str(path)).stdout
    assert "user.docspace.comment=" in names and "user.docfs.id=" in names
    m.run("setfattr", "-n", "user.docspace.comment", "-v", "reviewed by QA", str(path))
    assert e.file_info(file_id)["comment"] == "reviewed by QA"
    value = m.run("getfattr", "--only-values", "-n", "user.docspace.comment", str(path)).stdout
    assert value == "reviewed by QA"
    assert e.requests("POST", r"^/api/2\.0/authentication$") == []  # a key needs no login
    leaked = key in m.log_text()
    assert not leaked, "the API key is in the daemon's log"


def test_an_expired_login_token_is_renewed_once(portal: Portal) -> None:
    e = portal.emu
    later = e.add_folder(portal.my, "Later", owner=OWNER[0])
    e.add_file(later, "x.txt", b"x\n", owner=OWNER[0])
    m = portal.start()
    m.run("ls", str(m.path / "My documents"))
    assert e.expire_tokens(OWNER[0]) == 1
    e.clear_log()
    assert (m.path / "My documents" / "Later" / "x.txt").read_bytes() == b"x\n"
    # the listing is allowed anonymously, so a dead token gets 403 there, not 401: the client
    # asks whether it is still authenticated, logs in once and repeats the request
    calls = [(r.method, r.path, r.status) for r in e.requests()]
    assert calls[:4] == [
        ("GET", f"{API}/{later}", 403),
        ("GET", "/api/2.0/authentication", 200),
        ("POST", "/api/2.0/authentication", 200),
        ("GET", f"{API}/{later}", 200),
    ]
    assert len(e.requests("POST", r"^/api/2\.0/authentication$")) == 1
    leaked = OWNER[1] in m.log_text()
    assert not leaked, "the password is in the daemon's log"


def test_permanent_delete_and_hidden_trash_options(tmp_path: Path) -> None:
    emu = DocSpaceEmulator(user=OWNER[0], password=OWNER[1])
    my = emu.my_documents_id(OWNER[0])
    doomed = emu.add_file(my, "doomed.txt", b"bye", owner=OWNER[0])
    with EmulatorServer(emu) as server:
        m = Mount(server.url, tmp_path / "mnt", tmp_path / "cache")
        m.kind = "docspace"
        m.start("--permanent-delete", "--hide-trash", credentials=OWNER)
        try:
            assert sorted(os.listdir(m.path)) == ["My documents", "Rooms"]
            (m.path / "My documents" / "doomed.txt").unlink()
            with pytest.raises(KeyError):  # gone for good, not in the Trash
                emu.file_info(doomed)
        finally:
            m.stop()


def test_names_docspace_would_rewrite_are_refused_at_once(tmp_path: Path) -> None:
    emu = DocSpaceEmulator(user=OWNER[0], password=OWNER[1])
    with EmulatorServer(emu) as server:
        m = Mount(server.url, tmp_path / "mnt", tmp_path / "cache")
        m.kind = "docspace"
        m.start(credentials=OWNER)
        try:
            folder = m.path / "My documents"
            m.run("ls", str(folder))
            emu.clear_log()
            touched = m.run("touch", str(folder / "a:b.txt"), check=False)
            assert touched.returncode != 0 and "Invalid argument" in touched.stderr
            made = m.run("mkdir", str(folder / "what?"), check=False)
            assert made.returncode != 0 and "Invalid argument" in made.stderr
            assert [r for r in emu.requests() if r.method != "GET"] == []
            assert not list((tmp_path / "cache").rglob("lost+found/*"))
        finally:
            m.stop()


# ---- issues 17 and 18: what the server's source says ------------------------------------------


def test_cp_r_of_accented_cjk_and_25_mib_files_keeps_names_and_bytes(
    portal: Portal, tmp_path: Path
) -> None:
    """Issue 17 acceptance: 20 files, one of 25 MiB (three numbered chunks of the default
    10 MiB), names with é and CJK characters; the server computes chunk lengths from the
    part header in characters (ChunkedUploaderHandler.cs), so a non-ASCII part filename
    failed every file of a chunk or more."""
    src = tmp_path / "trip"
    src.mkdir()
    names = [f"photo-{i:02}.bin" for i in range(14)] + [
        "Résumé.txt",
        "café menu.md",
        "北京 旅行記.txt",
        "東京タワー.bin",
        "Makefile",
        "Photo.JPG",
    ]
    files: dict[str, bytes] = {}
    for i, name in enumerate(names):
        size = 25 * MiB if name == "東京タワー.bin" else 1000 * (i + 1)
        files[name] = large_blob(size, seed=i) if size > MiB else os.urandom(size)
        (src / name).write_bytes(files[name])
    m = portal.start()
    m.run("cp", "-r", str(src), str(m.path / "My documents"))
    trip = only(portal.emu.find(portal.my, "trip"))
    assert tree_of(portal.emu, trip) == files
    for name, data in files.items():
        assert sha256((m.path / "My documents" / "trip" / name).read_bytes()) == sha256(data)
    assert not (m.cache / "lost+found").exists() or not list((m.cache / "lost+found").iterdir())


def test_overwriting_photo_jpg_and_makefile_keeps_both_names(portal: Portal) -> None:
    """Issue 17.8 acceptance: every save lower-cases the extension and gives a name without
    one a trailing dot (FileDao.SaveFileAsync); the path must not change under the user."""
    e = portal.emu
    photo = e.add_file(portal.my, "Photo.JPG", b"old photo", owner=OWNER[0])
    make = e.add_file(portal.my, "Makefile", b"all:\n", owner=OWNER[0])
    m = portal.start()
    my = m.path / "My documents"
    (my / "Photo.JPG").write_bytes(b"new photo, longer")
    with open(my / "Makefile", "ab") as handle:
        handle.write(b"\ttrue\n")
    assert e.file_info(photo)["title"] == "Photo.JPG" and e.file_info(make)["title"] == "Makefile"
    assert e.file_content(make) == b"all:\n\ttrue\n"
    assert sorted(os.listdir(my)) == ["Makefile", "Photo.JPG"]
    assert (my / "Photo.JPG").read_bytes() == b"new photo, longer"


def test_a_writer_during_an_upload_cannot_change_what_is_sent(
    open_portal: Callable[..., Portal], tmp_path: Path
) -> None:
    """Issue 18.6: a second writer opened the file while its upload was in flight and changed
    the staged bytes between the declared size and the chunks ("uploadSize != bytesTotal",
    EIO). The upload now reads a snapshot; the second close uploads the second content."""
    portal = open_portal(chunk_upload_size=256 * 1024)
    e = portal.emu
    m = portal.start()
    target = m.path / "My documents" / "busy.bin"
    first, second = os.urandom(600_000), os.urandom(300_000)
    # the first chunk is held for a moment, so the second writer comes in mid-upload
    e.plan_fault(method="POST", path=CHUNK, delay=1.0)
    errors: list[BaseException] = []

    def write_first() -> None:
        try:
            target.write_bytes(first)
        except OSError as exc:
            errors.append(exc)

    writer = threading.Thread(target=write_first)
    writer.start()
    deadline = time.monotonic() + 20
    while not e.requests("POST", CHUNK):  # the upload has started
        assert time.monotonic() < deadline, "the first upload never started"
        time.sleep(0.01)
    target.write_bytes(second)
    writer.join(30)
    assert errors == []
    file_id = only(e.find(portal.my, "busy.bin"))
    # the second content goes up when the last writer has closed (maybe in the background)
    while e.file_info(file_id)["versions"] < 2:
        assert time.monotonic() < deadline, "the second upload never came"
        time.sleep(0.05)
    history = [v["pureContentLength"] for v in api_get(m.url, f"{API}/file/{file_id}/history")]
    assert sorted(history) == [300_000, 600_000]  # both uploads arrived, each whole
    assert e.file_content(file_id) == second
    assert target.read_bytes() == second


def test_every_file_of_a_watermarked_room_reads_as_its_size_says(portal: Portal) -> None:
    """Issue 17.10 acceptance: documents in a room with a watermark come as PDFs of another
    length, whole, whatever the Range (FileHandler.ashx.cs); stat size = bytes read, the
    cache keeps them, a read in the middle gets the same body, one log line."""
    e = portal.emu
    room = e.add_room("Confidential", owner=OWNER[0])
    e.set_watermark(room, "CONFIDENTIAL")
    stored = {
        "Contract.pdf": b"%PDF-1.4 " + os.urandom(3000),
        "Minutes.txt": b"minutes " * 500,
        "big.docx": large_blob(6 * MiB, seed=2),  # stored bigger than a block of ranged reads
        "seal.png": os.urandom(2000),
    }
    for name, data in stored.items():
        e.add_file(room, name, data, owner=OWNER[0])
    m = portal.start()
    folder = m.path / "Rooms" / "Confidential"
    for name in stored:
        path = folder / name
        body = path.read_bytes()
        assert len(body) == path.stat().st_size, name
        if name == "seal.png":
            assert body == stored[name]
        else:
            assert body.startswith(b"%PDF") and body != stored[name]
            with open(path, "rb") as handle:
                handle.seek(len(body) // 2)
                assert handle.read(100) == body[len(body) // 2 : len(body) // 2 + 100]
    e.clear_log()
    for name in stored:
        (folder / name).read_bytes()
    assert e.requests("GET", "/filehandler.ashx") == []  # all served from the cache
    assert m.log_text().count("converted to watermarked PDFs") == 1
    # a write would start from the PDF: refused before anything is sent
    with pytest.raises(PermissionError), open(folder / "Minutes.txt", "ab") as handle:
        handle.write(b"more")
    assert "watermark" in m.log_text().split("converted to watermarked PDFs")[1]
    assert e.requests("POST") == [] and e.requests("PUT") == []


def test_cp_r_rsync_and_rm_r_through_a_fifth_of_writes_failing(
    open_portal: Callable[..., Portal], tmp_path: Path
) -> None:
    """Issue 18.3: a 500 or a lost answer on one in five writes (saves, deletes, moves): no
    error reaches cp/rsync/rm, the server ends up as the source, nothing in lost+found."""
    # a fixed seed: the faults drawn depend on it, not on luck (an unseeded run once drew 3)
    portal = open_portal(seed=1805)
    e = portal.emu
    src = tmp_path / "faulty"
    src.mkdir()
    for i in range(24):
        (src / f"f{i:02}.dat").write_bytes(os.urandom(500 + 97 * i))
    (src / "empty.txt").write_bytes(b"")
    m = portal.start()
    writes = [
        ("POST", CHUNK),
        ("POST", EMPTY_FILE),
        ("PUT", rf"^{API}/file/\d+/saveediting$"),
        ("DELETE", rf"^{API}/file/\d+$"),
        ("PUT", rf"^{API}/fileops/move$"),
    ]
    for method, path in writes:
        for kind in ({"status": 500}, {"reset_after": 0}):
            e.plan_fault(
                method=method, path=path, probability=0.1, times=None, max_streak=2, **kind
            )
    target = m.path / "My documents" / "faulty"
    m.run("cp", "-r", str(src), str(m.path / "My documents"))
    for i in range(0, 24, 2):  # new content for half of them, then rsync them over
        (src / f"f{i:02}.dat").write_bytes(os.urandom(700 + i))
    done = m.run("rsync", "-a", f"{src}/", f"{target}/", check=False)
    assert done.returncode == 0, done.stderr
    folder = only(e.find(portal.my, "faulty"))
    assert tree_of(e, folder) == local_tree(src)
    m.run("mkdir", str(target / "sub"))
    m.run("mv", str(target / "f01.dat"), str(target / "sub" / "f01.dat"))
    m.run("rm", "-r", str(target / "sub"), str(target / "f03.dat"))
    assert "f01.dat" not in local_tree(target) and "f03.dat" not in os.listdir(target)
    print("faults injected:", e.faults_injected)
    assert e.faults_injected > 5
    lost = m.cache / "lost+found"
    assert not lost.exists() or not list(lost.iterdir())
