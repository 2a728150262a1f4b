"""The RSpace backend against its emulator over real loopback HTTP.

Request counts come from the emulator's request log, so "one request per page, not per file",
"one GET per document directory" and "refused locally, without a request" are checked on the
wire, as are the odd statuses (401 for folders, 404 for documents), re-login and throttling.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

from docfs import errors
from docfs.backends._http import HttpClient, Limits, RetryPolicy
from docfs.backends.base import Credentials, Entry, Kind, Op
from docfs.backends.rspace import RSpaceBackend
from docfs.emulators.base import EmulatorServer
from docfs.emulators.rspace import (
    DEFAULT_API_KEY,
    DEFAULT_PASSWORD,
    DEFAULT_USERNAME,
    RSpaceEmulator,
)
from docfs.emulators.samples import png_image

FAST_RETRY = RetryPolicy(attempts=5, base=0.01, cap=0.05)
CLIENT = ("docfs-app", "s3cr3t-client-secret")

Serve = Callable[..., tuple[RSpaceEmulator, EmulatorServer]]


@pytest.fixture
def serve() -> Iterator[Serve]:
    """Start RSpace emulators on loopback; stop them afterwards."""
    servers: list[EmulatorServer] = []

    def start(**kwargs: Any) -> tuple[RSpaceEmulator, EmulatorServer]:
        emu = RSpaceEmulator(seed=5, **kwargs)
        server = EmulatorServer(emu)
        # accepted sockets inherit TCP_NODELAY; without it every keep-alive answer waits
        # ~40 ms for a delayed ACK (the listening socket is created with proto 0)
        server._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        server.start()
        emu.server_url = server.url
        servers.append(server)
        return emu, server

    yield start
    for server in servers:
        server.stop()


def backend_for(server: EmulatorServer, credentials: Credentials | None = None) -> RSpaceBackend:
    # verify=False: plain HTTP on loopback, and it skips loading the CA bundle (~0.2 s)
    transport = httpx.AsyncHTTPTransport(verify=False)
    http = HttpClient(server.url, limits=Limits(), retry=FAST_RETRY, transport=transport)
    return RSpaceBackend(http, credentials or Credentials(token=DEFAULT_API_KEY))


async def connected(
    server: EmulatorServer, credentials: Credentials | None = None
) -> RSpaceBackend:
    backend = backend_for(server, credentials)
    await backend.connect()
    return backend


async def children(backend: RSpaceBackend, directory: Entry) -> list[Entry]:
    return [e async for e in backend.list_dir(directory)]


async def child(backend: RSpaceBackend, directory: Entry, name: str) -> Entry:
    for entry in await children(backend, directory):
        if entry.name == name:
            return entry
    raise AssertionError(f"{name!r} not in {directory.name!r}")


async def walk(backend: RSpaceBackend, *names: str) -> Entry:
    entry = await backend.root()
    for name in names:
        entry = await child(backend, entry, name)
    return entry


async def read(backend: RSpaceBackend, entry: Entry) -> bytes:
    parts: list[bytes] = []

    async def sink(chunk: bytes) -> None:
        parts.append(chunk)

    await backend.download(entry, sink)
    return b"".join(parts)


def count(emu: RSpaceEmulator, method: str, path: str) -> int:
    return len(emu.requests(method, path))


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


# --------------------------------------------------------------------------------------------
# reading


async def test_home_listing_is_one_request_and_carries_ops(serve: Serve) -> None:
    emu, server = serve()
    home = emu.home_id()
    emu.add_folder(home, "Projects")
    emu.add_folder(home, "Lab notebook", notebook=True)
    emu.add_document(home, "Loose doc")
    backend = await connected(server)
    root = await backend.root()
    assert root.is_dir and root.allows(Op.MKDIR) and not root.allows(Op.CREATE_FILE)
    emu.clear_log()
    entries = {e.name: e for e in await children(backend, root)}
    assert count(emu, "GET", r"^/api/v1/folders/tree") == 1
    assert len(emu.requests()) == 1
    assert set(entries) == {
        "Gallery",
        "Shared",
        "Templates",
        "Projects",
        "Lab notebook",
        "Loose doc",
    }
    assert entries["Gallery"].ops == frozenset()
    assert not entries["Shared"].allows(Op.MKDIR)
    assert entries["Templates"].allows(Op.MKDIR) and not entries["Templates"].allows(Op.REMOVE)
    assert entries["Projects"].ops >= {Op.MKDIR, Op.REMOVE, Op.RENAME}
    assert entries["Lab notebook"].extra["type"] == "NOTEBOOK"
    doc = entries["Loose doc"]
    assert doc.is_dir and doc.ops >= {Op.CREATE_FILE, Op.REMOVE, Op.RENAME, Op.SET_META}
    assert doc.meta["globalId"].startswith("SD") and doc.meta["owner"] == DEFAULT_USERNAME
    assert doc.extra["meta"] == "partial"


async def test_gallery_pages_and_sizes_without_a_request_per_file(serve: Serve) -> None:
    emu, server = serve()
    runs = emu.add_folder(emu.folder_id("Documents"), "runs")
    payloads = {f"run-{i:03d}.csv": os.urandom(50 + i) for i in range(230)}
    for name, data in payloads.items():
        emu.add_file(runs, name, data)
    backend = await connected(server)
    folder = await walk(backend, "Gallery", "Documents", "runs")
    assert folder.allows(Op.CREATE_FILE) and folder.extra["section"] == "Documents"
    emu.clear_log()
    entries = await children(backend, folder)
    assert {e.name: e.size for e in entries} == {n: len(d) for n, d in payloads.items()}
    assert all(e.version == "1" and e.mtime for e in entries)
    assert count(emu, "GET", r"/folders/tree/") == 3  # 100 + 100 + 30, following totalHits
    assert 1 <= count(emu, "GET", r"^/api/v1/files$") <= 3
    assert count(emu, "GET", r"^/api/v1/files/\d+$") == 0
    assert all("pageSize=100" in r.query for r in emu.requests("GET", r"^/api/v1/files$"))

    # the index is reused: a second listing costs the tree pages only
    emu.clear_log()
    await children(backend, folder)
    assert count(emu, "GET", r"^/api/v1/files") == 0
    assert count(emu, "GET", r"/folders/tree/") == 3

    # a new version behind our back: its newer lastModified makes the index re-read it
    changed = emu.find("run-007.csv")[0]
    emu.replace_file_data(changed, b"x" * 5000)
    emu.clear_log()
    by_name = {e.name: e for e in await children(backend, folder)}
    assert by_name["run-007.csv"].size == 5000 and by_name["run-007.csv"].version == "2"
    assert count(emu, "GET", r"^/api/v1/files$") == 1  # newest first: found on page 0


async def test_document_directory_costs_one_request(serve: Serve) -> None:
    emu, server = serve()
    form = emu.add_form(
        "Experiment", [("Objective", "text"), ("Method", "text"), ("Yield", "number")]
    )
    png = png_image(seed=4)
    image = emu.add_file(emu.folder_id("Images"), "gel.png", png)
    pdf = emu.add_file(emu.folder_id("Documents"), "protocol.pdf", b"%PDF-1.4 tiny")
    doc = emu.add_document(
        emu.home_id(),
        "Run 1",
        form=form,
        fields={"Objective": f"Find Km <fileId={image}>", "Method": f"<p>See</p><fileId={pdf}>"},
        tags="kinetics",
    )
    emu.link_file(doc, image, 1)  # the same image linked from a second field: listed once
    backend = await connected(server)
    directory = await walk(backend, "Run 1")
    emu.clear_log()
    entries = {e.name: e for e in await children(backend, directory)}
    assert len(emu.requests()) == 1 and count(emu, "GET", rf"^/api/v1/documents/{doc}$") == 1
    assert set(entries) == {
        "Objective.html",
        "Method.html",
        "Yield.html",
        "gel.png",
        "protocol.pdf",
    }
    fields = emu.fields(doc)
    assert await read(backend, entries["Objective.html"]) == fields["Objective"].encode()
    assert entries["Objective.html"].size == len(fields["Objective"].encode())
    assert fields["Objective"].startswith("<p>Find Km")  # normalised by the server
    assert entries["gel.png"].size == len(png) and await read(backend, entries["gel.png"]) == png
    assert entries["Yield.html"].allows(Op.REPLACE) and not entries["Yield.html"].allows(Op.REMOVE)


async def test_multi_mib_download_survives_a_mid_body_reset(serve: Serve) -> None:
    emu, server = serve()
    data = os.urandom(3 * 1024 * 1024 + 17)
    file_id = emu.add_file(emu.folder_id("Miscellaneous"), "big.bin", data)
    backend = await connected(server)
    entry = await walk(backend, "Gallery", "Miscellaneous", "big.bin")
    assert entry.size == len(data)
    emu.clear_log()
    emu.plan_fault(path=rf"/files/{file_id}/file$", reset_after=1_000_000)
    assert await read(backend, entry) == data
    downloads = emu.requests("GET", rf"/files/{file_id}/file$")
    assert len(downloads) == 2 and downloads[0].fault and emu.faults_injected == 1


async def test_missing_blob_is_an_io_error(serve: Serve) -> None:
    emu, server = serve()
    file_id = emu.add_file(emu.folder_id("Documents"), "gone.txt", b"content")
    emu.set_file_flags(file_id, blob_missing=True)
    backend = await connected(server)
    entry = await walk(backend, "Gallery", "Documents", "gone.txt")
    with pytest.raises(errors.RemoteUnavailable):
        await read(backend, entry)


# --------------------------------------------------------------------------------------------
# writing


async def test_upload_into_gallery_folder_and_section_check(
    serve: Serve, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    emu, server = serve()
    sub = emu.add_folder(emu.folder_id("Documents"), "data")
    backend = await connected(server)
    folder = await walk(backend, "Gallery", "Documents", "data")
    payload = os.urandom(70_000)
    entry = await backend.create_file(folder, "notes.txt", write(tmp_path, "a", payload))
    assert entry.name == "notes.txt" and entry.size == len(payload) and entry.version == "1"
    assert emu.file_data(int(entry.extra["id"])) == payload
    assert emu.record(int(entry.extra["id"]))["parent"] == sub
    assert [e.name for e in await children(backend, folder)] == ["notes.txt"]

    emu.clear_log()
    with caplog.at_level(logging.WARNING), pytest.raises(errors.InvalidArgument):
        await backend.create_file(folder, "photo.png", write(tmp_path, "b", png_image()))
    assert emu.requests() == []  # refused locally
    assert "Images" in caplog.text


async def test_uploads_stream_from_the_staged_file(
    serve: Serve, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a new Gallery file and a new version are sent by the shared multipart encoder, piece by
    # piece from the staged file; the whole file is never read into memory first
    emu, server = serve()
    emu.add_folder(emu.folder_id("Documents"), "data")
    backend = await connected(server)
    folder = await walk(backend, "Gallery", "Documents", "data")
    staged = write(tmp_path, "a", os.urandom(2_500_000))
    real = Path.read_bytes

    def read_bytes(self: Path) -> bytes:
        if self == staged:
            raise AssertionError("the upload read the whole file into memory")
        return real(self)

    monkeypatch.setattr(Path, "read_bytes", read_bytes)
    entry = await backend.create_file(folder, "big.csv", staged)
    again = await backend.replace_file(entry, staged)
    assert emu.file_data(int(entry.extra["id"])) == real(staged)
    assert (entry.size, again.size, again.version) == (2_500_000, 2_500_000, "2")


async def test_new_version_keeps_name_and_bumps_version(serve: Serve, tmp_path: Path) -> None:
    # the server's GET /files/{id} may be cached (stale); the backend trusts the POST answer
    emu, server = serve(stale_file_cache=True)
    file_id = emu.add_file(emu.folder_id("Documents"), "report.txt", b"v1")
    backend = await connected(server)
    entry = await walk(backend, "Gallery", "Documents", "report.txt")
    assert (await backend.stat(entry)).version == "1"  # now in the server's cache
    updated = await backend.replace_file(entry, write(tmp_path, "tmp-upload", b"version two"))
    assert updated.id == entry.id and updated.name == "report.txt" and updated.version == "2"
    assert updated.size == len(b"version two")
    listed = await child(backend, await walk(backend, "Gallery", "Documents"), "report.txt")
    assert (listed.version, listed.size) == ("2", len(b"version two"))
    assert emu.file_data(file_id) == b"version two" and emu.record(file_id)["name"] == "report.txt"
    # the server decides the extension rule: a locked file answers 500, not retried as a POST
    emu.set_file_flags(file_id, locked=True)
    emu.clear_log()
    with pytest.raises(errors.RemoteUnavailable):
        await backend.replace_file(updated, write(tmp_path, "x", b"three"))
    assert count(emu, "POST", r"/file$") == 1


async def test_lost_upload_answer_is_not_retried_and_listing_shows_it(
    serve: Serve, tmp_path: Path
) -> None:
    emu, server = serve()
    backend = await connected(server)
    folder = await walk(backend, "Gallery", "Miscellaneous")
    emu.clear_log()
    emu.plan_fault(method="POST", path=r"^/api/v1/files$", reset_after=0)
    with pytest.raises(errors.RemoteUnavailable):
        await backend.create_file(folder, "data.bin", write(tmp_path, "d", b"\x00" * 10))
    assert count(emu, "POST", r"^/api/v1/files$") == 1
    # the server did store it: checking by listing (what the vfs does) finds the file
    inbox_or_folder = [e.name for e in await children(backend, folder)]
    assert "data.bin" in inbox_or_folder


async def test_new_file_in_document_is_uploaded_and_linked(serve: Serve, tmp_path: Path) -> None:
    emu, server = serve()
    doc = emu.add_document(emu.home_id(), "Experiment", fields=["<p>Intro</p>"])
    backend = await connected(server)
    directory = await walk(backend, "Experiment")
    png = png_image(seed=8)
    emu.clear_log()
    entry = await backend.create_file(directory, "plot.png", write(tmp_path, "p", png))
    assert entry.name == "plot.png" and entry.size == len(png)
    assert count(emu, "POST", r"^/api/v1/files$") == 1
    assert count(emu, "PUT", rf"^/api/v1/documents/{doc}$") == 1
    file_id = int(entry.extra["id"])
    assert f'data-rsfileid="{file_id}"' in emu.fields(doc)["Data"]
    assert emu.fields(doc)["Data"].startswith("<p>Intro</p>")
    assert "plot.png" in [e.name for e in await children(backend, directory)]
    # audio cannot be linked: refused before any upload
    emu.clear_log()
    with pytest.raises(errors.InvalidArgument):
        await backend.create_file(directory, "talk.mp3", write(tmp_path, "m", b"ID3"))
    assert emu.requests() == []


async def test_writing_a_field_file_updates_the_document(serve: Serve, tmp_path: Path) -> None:
    emu, server = serve()
    doc = emu.add_document(emu.home_id(), "Notes", fields=["<p>old</p>"])
    backend = await connected(server)
    field = await walk(backend, "Notes", "Data.html")
    updated = await backend.replace_file(field, write(tmp_path, "f", b"<p> new text <p>second"))
    content = emu.fields(doc)["Data"]
    assert content == "<p>new text</p>\n<p>second</p>"  # the server's normalisation
    assert updated.size == len(content.encode()) and updated.version != field.version
    assert await read(backend, updated) == content.encode()
    # signed documents are read-only; a document open in the web editor is busy (409)
    emu.set_document_flags(doc, signed=True)
    with pytest.raises(errors.ReadOnly):
        await backend.replace_file(updated, write(tmp_path, "g", b"x"))
    emu.set_document_flags(doc, signed=False, edit_locked=True)
    with pytest.raises(errors.Conflict):
        await backend.replace_file(updated, write(tmp_path, "h", b"x"))


async def test_plain_file_in_workspace_is_refused_locally(
    serve: Serve, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    emu, server = serve()
    backend = await connected(server)
    root = await backend.root()
    emu.clear_log()
    with caplog.at_level(logging.WARNING), pytest.raises(errors.NotSupported):
        await backend.create_file(root, "data.csv", write(tmp_path, "c", b"a,b\n"))
    assert emu.requests() == []
    assert "Gallery/Documents" in caplog.text


async def test_mkdir_folder_notebook_entry_and_refusals(serve: Serve) -> None:
    emu, server = serve()
    nb = emu.add_folder(emu.home_id(), "Notebook", notebook=True)
    backend = await connected(server)
    root = await backend.root()
    folder = await backend.mkdir(root, "Exp 1")
    assert folder.extra["type"] == "FOLDER" and folder.name == "Exp 1"
    assert emu.record(int(folder.extra["id"]))["parent"] == emu.home_id()
    notebook = await child(backend, root, "Notebook")
    entry = await backend.mkdir(notebook, "Day 1")
    assert entry.extra["type"] == "DOCUMENT" and emu.record(int(entry.extra["id"]))["parent"] == nb
    new_nb = await backend.mkdir_notebook(folder, "NB 2")
    assert emu.record(int(new_nb.extra["id"]))["kind"] == "NOTEBOOK"
    section = await walk(backend, "Gallery", "Images")
    sub = await backend.mkdir(section, "gels")
    assert sub.extra["type"] == "GFOLDER" and sub.extra["section"] == "Images"
    assert sub.allows(Op.CREATE_FILE)
    gallery = await walk(backend, "Gallery")
    emu.clear_log()
    with pytest.raises(errors.NotSupported):
        await backend.mkdir(gallery, "top-level")
    with pytest.raises(errors.InvalidArgument):
        await backend.mkdir(root, " padded ")
    with pytest.raises(errors.NotSupported):
        await backend.mkdir_notebook(section, "nb in gallery")
    assert emu.requests() == []


async def test_remove_folders_documents_and_refusals(serve: Serve) -> None:
    emu, server = serve()
    home = emu.home_id()
    empty = emu.add_folder(home, "empty")
    full = emu.add_folder(home, "full")
    emu.add_document(full, "inside")
    doc = emu.add_document(home, "doomed")
    emu.add_file(emu.folder_id("Documents"), "keep.txt", b"k")
    backend = await connected(server)
    root = await backend.root()
    entries = {e.name: e for e in await children(backend, root)}
    await backend.remove(entries["empty"])
    assert emu.record(empty)["deleted"]
    emu.clear_log()
    with pytest.raises(errors.NotEmpty):
        await backend.remove(entries["full"])
    assert count(emu, "DELETE", ".") == 0 and not emu.record(full)["deleted"]
    await backend.remove(entries["doomed"])
    assert emu.record(doc)["deleted"]
    field = await walk(backend, "full", "inside", "Data.html")
    gfile = await walk(backend, "Gallery", "Documents", "keep.txt")
    emu.clear_log()
    for entry in (entries["Shared"], field, gfile):
        with pytest.raises(errors.NotSupported):
            await backend.remove(entry)
    assert emu.requests() == []


async def test_rename_and_move(serve: Serve) -> None:
    emu, server = serve()
    home = emu.home_id()
    src = emu.add_folder(home, "src")
    dst = emu.add_folder(home, "dst")
    doc = emu.add_document(src, "draft")
    sub = emu.add_folder(src, "sub")
    emu.add_file(emu.folder_id("Documents"), "a.txt", b"a")
    backend = await connected(server)
    root = await backend.root()
    top = {e.name: e for e in await children(backend, root)}
    inner = {e.name: e for e in await children(backend, top["src"])}

    renamed = await backend.rename(inner["draft"], top["src"], "final")
    assert emu.record(doc)["name"] == "final" and renamed.name == "final"
    moved = await backend.rename(renamed, top["dst"], "final v2")
    assert emu.record(doc)["parent"] == dst and emu.record(doc)["name"] == "final v2"
    assert moved.extra["parent"] == str(dst)
    folder = await backend.rename(inner["sub"], top["dst"], "sub")
    assert emu.record(sub)["parent"] == dst and folder.extra["parent"] == str(dst)

    gfile = await walk(backend, "Gallery", "Documents", "a.txt")
    images = await walk(backend, "Gallery", "Images")
    documents = await walk(backend, "Gallery", "Documents")
    emu.clear_log()
    with pytest.raises(errors.NotSupported):
        await backend.rename(folder, top["dst"], "renamed folder")
    # moves no API call makes are EPERM, not EXDEV: mv's copy + delete cannot delete the
    # original Gallery file, and a document copied into the Gallery would stop half way
    for entry, target in ((gfile, images), (moved, images), (folder, documents)):
        with pytest.raises(errors.NotSupported) as refused:
            await backend.rename(entry, target, entry.name)
        assert not isinstance(refused.value, errors.CrossDevice)
    with pytest.raises(errors.NotSupported):
        await backend.rename(gfile, documents, "b.txt")
    assert emu.requests() == []


async def test_metadata_as_xattrs(serve: Serve) -> None:
    emu, server = serve()
    doc = emu.add_document(emu.home_id(), "Tagged", tags="alpha,beta")
    emu.add_file(emu.folder_id("Images"), "cap.png", png_image(), caption="A caption")
    backend = await connected(server)
    listed = await walk(backend, "Tagged")
    full = await backend.stat(listed)
    assert full.meta["tags"] == "alpha,beta" and full.meta["form"] == "Basic Document"
    assert full.meta["globalId"] == f"SD{doc}" and full.meta["owner"] == DEFAULT_USERNAME
    assert json.loads(full.meta["shares"]) == []
    updated = await backend.set_meta(full, "tags", "gamma")
    assert emu.record(doc)["tags"] == "gamma" and updated.meta["tags"] == "gamma"
    cleared = await backend.set_meta(updated, "tags", None)
    assert emu.record(doc)["tags"] is None and cleared.meta["tags"] == ""
    with pytest.raises(errors.NotSupported):
        await backend.set_meta(full, "form", "Other")
    emu.clear_log()
    for bad in ("a<b", "x>y", "back\\slash", "a/b"):
        with pytest.raises(errors.InvalidArgument):
            await backend.set_meta(full, "tags", bad)
    assert emu.requests() == []  # DocumentTagManagerImpl's four, refused locally
    # a tag written twice would make every later tag change of the document fail (500):
    # refused locally, as is a change to a document that already holds a repeat
    for repeated in ("a,a", "x,y,x,", "a,,b,,c"):
        with pytest.raises(errors.InvalidArgument):
            await backend.set_meta(full, "tags", repeated)
    assert emu.requests() == []
    broken = emu.add_document(emu.home_id(), "Repeated", tags="dup,dup")
    entry = await backend.stat(await walk(backend, "Repeated"))
    emu.clear_log()
    with pytest.raises(errors.InvalidArgument):
        await backend.set_meta(entry, "tags", "fine")
    assert emu.record(broken)["tags"] == "dup,dup" and emu.requests() == []
    image = await walk(backend, "Gallery", "Images", "cap.png")
    assert image.meta["caption"] == "A caption" and image.meta["globalId"].startswith("GL")
    assert (await backend.stat(image)).version == image.version


# --------------------------------------------------------------------------------------------
# authentication, permissions, limits


async def test_bad_or_missing_key_fails_authentication(serve: Serve) -> None:
    _, server = serve()
    with pytest.raises(errors.AuthenticationFailed):
        await connected(server, Credentials(token="wrongKeyButWellFormed123"))
    with pytest.raises(errors.AuthenticationFailed):
        await connected(server, Credentials())


async def test_oauth_login_refresh_and_relogin(
    serve: Serve, caplog: pytest.LogCaptureFixture
) -> None:
    emu, server = serve(oauth_clients=dict([CLIENT]), token_lifetime=2.0)
    creds = Credentials(user=DEFAULT_USERNAME, password=DEFAULT_PASSWORD, token=":".join(CLIENT))
    with caplog.at_level(logging.DEBUG):
        backend = await connected(server, creds)
        root = await backend.root()
        assert count(emu, "POST", "^/oauth/token$") == 1
        # the server forgets the token: one 401, one refresh grant, the request succeeds
        emu.expire_tokens()
        emu.clear_log()
        await children(backend, root)
        statuses = [r.status for r in emu.requests("GET", "/folders/tree")]
        assert statuses == [401, 200] and count(emu, "POST", "^/oauth/token$") == 1
        # before expiry the session refreshes on its own: no 401 at all
        await trio.sleep(1.9)
        emu.clear_log()
        await children(backend, root)
        assert count(emu, "POST", "^/oauth/token$") == 1
        assert [r.status for r in emu.requests("GET", "/folders/tree")] == [200]
    assert DEFAULT_PASSWORD not in caplog.text and CLIENT[1] not in caplog.text
    with pytest.raises(errors.AuthenticationFailed):
        await connected(
            server, Credentials(user=DEFAULT_USERNAME, password="nope", token=":".join(CLIENT))
        )


async def test_permission_statuses_map_to_errors(serve: Serve) -> None:
    emu, server = serve()
    emu.add_user("other", api_key="otherUsersApiKey0001")
    private = emu.add_folder(emu.home_id("other"), "private")
    foreign_doc = emu.add_document(private, "secret", username="other")
    backend = await connected(server)
    fake_folder = Entry(
        id=f"FL{private}",
        name="private",
        kind=Kind.DIR,
        size=0,
        mtime=None,
        version="",
        extra={"type": "FOLDER", "id": str(private), "parent": "1"},
    )
    with pytest.raises(errors.PermissionDenied):  # folders: 401 means "forbidden"
        await children(backend, fake_folder)
    with pytest.raises(errors.NotFound):  # stat of a forbidden or deleted folder: gone
        await backend.stat(fake_folder)
    fake_doc = Entry(
        id=f"SD{foreign_doc}",
        name="secret",
        kind=Kind.DIR,
        size=0,
        mtime=None,
        version="",
        extra={"type": "DOCUMENT", "id": str(foreign_doc), "parent": str(private)},
    )
    with pytest.raises(errors.NotFound):  # documents: 404 hides existence
        await backend.stat(fake_doc)


async def test_throttling_429_without_retry_after_is_waited_out(serve: Serve) -> None:
    emu, server = serve(throttling=True, rate_limit=(4, 1.0))
    backend = await connected(server)
    root = await backend.root()
    for _ in range(4):
        assert len(await children(backend, root)) == 3
    limited = [r for r in emu.requests() if r.status == 429]
    assert limited, "the emulator should have throttled"
    assert all(r.status in (200, 429) for r in emu.requests())


async def test_planned_429_with_retry_after_is_retried(serve: Serve) -> None:
    emu, server = serve()
    backend = await connected(server)
    root = await backend.root()
    emu.clear_log()
    emu.plan_fault(path="/folders/tree", status=429, retry_after="0.1")
    assert len(await children(backend, root)) == 3
    assert [r.status for r in emu.requests()] == [429, 200]


async def test_upload_over_the_quota_is_edquot_at_once_with_the_limits(
    serve: Serve, tmp_path: Path
) -> None:
    # APIFileUploadThrottlingInterceptor: 429 / 42902 with X-Upload-Limit-*; re-sending the
    # body cannot help (it was 20 sends within a minute before), so one request, EDQUOT
    emu, server = serve(upload_quota=(1.0, 1000.0))
    backend = await connected(server)
    folder = await walk(backend, "Gallery", "Documents")
    half = write(tmp_path, "half", b"h" * (600 * 1024))
    await backend.create_file(folder, "first.txt", half)
    emu.clear_log()
    with pytest.raises(errors.DiskQuotaExceeded) as refused:
        await backend.create_file(folder, "second.txt", half)
    assert refused.value.errno == errno.EDQUOT
    assert "1.0 MB per hour" in str(refused.value) and "0.4 MB left" in str(refused.value)
    assert [(r.method, r.status) for r in emu.requests()] == [("POST", 429)]
    # the request throttle's 429 is still waited out and retried
    emu.plan_fault(path="/folders/tree", status=429, retry_after="0.05")
    assert await children(backend, folder)


async def test_move_before_2_16_fails_locally_without_a_move_request(
    serve: Serve, caplog: pytest.LogCaptureFixture
) -> None:
    emu, server = serve(version="2.15.0")
    home = emu.home_id()
    src = emu.add_folder(home, "src")
    emu.add_folder(home, "dst")
    emu.add_document(src, "draft")
    emu.add_folder(src, "empty")
    full = emu.add_folder(src, "full")
    emu.add_document(full, "inside")
    backend = await connected(server)
    top = {e.name: e for e in await children(backend, await backend.root())}
    inner = {e.name: e for e in await children(backend, top["src"])}
    emu.clear_log()
    with caplog.at_level(logging.WARNING):
        for name in ("draft", "full"):
            with pytest.raises(errors.NotSupported) as refused:
                await backend.rename(inner[name], top["dst"], name)
            assert not isinstance(refused.value, errors.CrossDevice)
    assert "no move API (POST /documents/move is new in RSpace 2.16)" in caplog.text
    # mkdir + rmdir does what a move of an empty folder would: EXDEV, mv falls back
    with pytest.raises(errors.CrossDevice):
        await backend.rename(inner["empty"], top["dst"], "empty")
    assert count(emu, "POST", "/documents/move") == 0
    assert all(r.method == "GET" for r in emu.requests())
    # renaming a document in place needs no move
    renamed = await backend.rename(inner["draft"], top["src"], "final")
    assert renamed.name == "final"


async def test_move_the_server_refuses_with_500_is_eperm_and_not_resent(
    serve: Serve, caplog: pytest.LogCaptureFixture
) -> None:
    emu, server = serve()
    top = emu.add_folder(emu.home_id(), "top")
    emu.add_folder(top, "inner")
    backend = await connected(server)
    outer = await walk(backend, "top")
    inner = await walk(backend, "top", "inner")
    emu.clear_log()
    with caplog.at_level(logging.WARNING), pytest.raises(errors.NotSupported) as refused:
        await backend.rename(outer, inner, "top")
    assert refused.value.status == 500 and refused.value.errno == errno.EPERM
    assert count(emu, "POST", "/documents/move") == 1
    assert "RSpace refused to move 'top' into 'inner'" in caplog.text
    assert "Error performing move" in caplog.text


# --------------------------------------------------------------------------------------------
# sharing


async def test_share_list_and_unshare(serve: Serve) -> None:
    emu, server = serve()
    emu.add_user("colleague", api_key="colleagueApiKey00001")
    group = emu.add_group("Kinetics Lab", [DEFAULT_USERNAME, "colleague"])
    emu.add_group("Other Lab", [DEFAULT_USERNAME])
    doc = emu.add_document(emu.home_id(), "Shared doc")
    emu.add_folder(emu.home_id(), "plain folder")
    backend = await connected(server)
    entry = await walk(backend, "Shared doc")
    groups = {g.name: g for g in await backend.groups()}
    assert set(groups) == {"Kinetics Lab", "Other Lab"}
    assert [m[1] for m in groups["Kinetics Lab"].members] == [DEFAULT_USERNAME, "colleague"]

    result = await backend.share(entry, groups=["Kinetics Lab"], permission="edit")
    assert result.failed == () and len(result.shares) == 1
    share = result.shares[0]
    assert (share.item_id, share.target_id, share.permission) == (doc, group, "EDIT")
    assert [s.id async for s in backend.shares(entry)] == [share.id]
    assert json.loads((await backend.stat(entry)).meta["shares"])[0]["id"] == share.id

    # a second share with the same group fails for that item, the user share succeeds
    again = await backend.share(entry, groups=[f"GP{group}"], users=["colleague"])
    assert again.failed == (doc,) and [s.target_type for s in again.shares] == ["USER"]
    assert len([s async for s in backend.shares()]) == 2

    removed = await backend.unshare(entry, groups=["Kinetics Lab"])
    assert [(s.id, s.target_type, s.target_id) for s in removed] == [(share.id, "GROUP", group)]
    assert [s["targetType"] for s in emu.shares()] == ["USER"]
    assert len(await backend.unshare(entry)) == 1 and emu.shares() == []

    folder = await walk(backend, "plain folder")
    with pytest.raises(errors.NotSupported):
        await backend.share(folder, groups=["Kinetics Lab"])
    with pytest.raises(errors.InvalidArgument):
        await backend.share(entry, groups=["No Such Lab"])


async def test_entry_by_id_for_every_kind_of_object(serve: Serve) -> None:
    """The entries ``docfs share`` and ``mkdir --notebook`` build from ``user.docfs.id``."""
    emu, server = serve()
    emu.add_user("colleague", api_key="colleagueApiKey00001")
    group = emu.add_group("Kinetics Lab", [DEFAULT_USERNAME, "colleague"])
    home = emu.home_id()
    folder = emu.add_folder(home, "Projects")
    notebook = emu.add_folder(folder, "Notebook", notebook=True)
    doc = emu.add_document(folder, "Doc", tags="a,b")
    sub = emu.add_folder(emu.folder_id("Images"), "gels")
    png = emu.add_file(sub, "gel.png", png_image())
    theirs = emu.add_document(emu.home_id("colleague"), "Theirs")
    emu.add_share(theirs, group=group)
    backend = await connected(server)

    async def kind_of(gid: str) -> tuple[str, str, bool]:
        entry = await backend.entry_by_id(gid)
        return entry.extra["type"], entry.name, entry.extra["owned"] == "1"

    assert await kind_of(f"FL{home}") == ("HOME", DEFAULT_USERNAME, True)
    assert await kind_of(f"FL{folder}") == ("FOLDER", "Projects", True)
    assert await kind_of(f"NB{notebook}") == ("NOTEBOOK", "Notebook", True)
    assert await kind_of(f"GF{emu.gallery_id()}") == ("GALLERY", "Gallery", True)
    assert await kind_of(f"GF{emu.folder_id('Images')}") == ("SECTION", "Images", True)
    assert await kind_of(f"GF{sub}") == ("GFOLDER", "gels", True)
    # a document comes complete (tags, form, shares) and carries its parent for later moves
    entry = await backend.entry_by_id(f"sd{doc}")
    assert (entry.extra["type"], entry.extra["parent"]) == ("DOCUMENT", str(folder))
    assert entry.meta["tags"] == "a,b" and json.loads(entry.meta["shares"]) == []
    assert entry.allows(Op.REMOVE)
    # someone else's document shared with us: no parent, not ours to remove
    other = await backend.entry_by_id(f"SD{theirs}")
    assert other.extra["parent"] == "" and not other.allows(Op.REMOVE)
    media = await backend.entry_by_id(f"GL{png}")
    assert media.kind is Kind.FILE and media.size == len(png_image())
    assert media.extra["section"] == "Images"
    # the new notebook goes where the entry says
    made = await backend.mkdir_notebook(await backend.entry_by_id(f"FL{folder}"), "NB 2")
    assert emu.record(int(made.extra["id"]))["parent"] == folder
    emu.clear_log()
    for bad in ("SD", "12", "SD12/FD3", "XX12x"):
        with pytest.raises(errors.InvalidArgument):
            await backend.entry_by_id(bad)
    with pytest.raises(errors.NotSupported):
        await backend.entry_by_id(f"FM{doc}")
    assert emu.requests() == []
    with pytest.raises(errors.NotFound):
        await backend.entry_by_id("SD999999")


async def test_check_name_refuses_what_the_server_would_refuse_without_a_request(
    serve: Serve,
) -> None:
    emu, server = serve()
    nb = emu.add_folder(emu.home_id(), "Notebook", notebook=True)
    emu.add_document(nb, "Entry")
    backend = await connected(server)
    root = await backend.root()
    images = await walk(backend, "Gallery", "Images")
    documents = await walk(backend, "Gallery", "Documents")
    entry = await walk(backend, "Notebook", "Entry")
    emu.clear_log()
    # the extension picks the section: the log names the right one
    backend.check_name(images, "gel.png", Kind.FILE)
    backend.check_name(documents, "data.CSV", Kind.FILE)
    for parent, name in ((images, "data.csv"), (documents, "gel.png"), (documents, "raw.dat")):
        with pytest.raises(errors.InvalidArgument, match="belongs in Gallery/"):
            backend.check_name(parent, name, Kind.FILE)
    # a document links any file but audio and video
    backend.check_name(entry, "protocol.pdf", Kind.FILE)
    with pytest.raises(errors.InvalidArgument):
        backend.check_name(entry, "talk.mp4", Kind.FILE)
    # folder and document names the server would trim or cut
    backend.check_name(root, "Exp 1", Kind.DIR)
    for bad in (" padded", "two\nlines", "x" * 256, ""):
        with pytest.raises(errors.InvalidArgument):
            backend.check_name(root, bad, Kind.DIR)
    assert emu.requests() == []
