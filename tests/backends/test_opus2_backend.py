"""The Opus 2 backend against its emulator over real loopback HTTP.

Request counts come from the emulator's request log, so "one listing, not one request per
file" and "refused locally, without a request" are checked on the wire.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import trio

from docfs import errors
from docfs.backends._http import HttpClient, Limits, RetryPolicy
from docfs.backends.base import Checksum, Credentials, Entry, Kind, Op
from docfs.backends.opus2 import (
    ALTERNATIVE_PROFILE,
    DEFAULT_PROFILE,
    Opus2Backend,
    Opus2Profile,
)
from docfs.backends.opus2.backend import upload_body
from docfs.emulators.base import EmulatorServer
from docfs.emulators.opus2 import READ, READ_WRITE, Opus2Emulator

Serve = Callable[..., tuple[Opus2Emulator, str]]


@pytest.fixture
def serve() -> Iterator[Serve]:
    """Start emulators on loopback (unlimited rate unless a test asks); stop them afterwards."""
    servers: list[EmulatorServer] = []

    def start(**kwargs: Any) -> tuple[Opus2Emulator, str]:
        kwargs.setdefault("rate_limit", None)
        emu = Opus2Emulator(seed=7, **kwargs)
        server = EmulatorServer(emu)
        server.start()
        servers.append(server)
        return emu, server.url

    yield start
    for server in servers:
        server.stop()


@asynccontextmanager
async def opened(
    url: str,
    token: str | None,
    *,
    profile: Opus2Profile | None = None,
    limits: Limits | None = None,
    token_file: Path | None = None,
) -> AsyncIterator[Opus2Backend]:
    http = HttpClient(url, limits=limits or Limits(), retry=RetryPolicy(base=0.01, cap=0.05))
    backend = Opus2Backend(http, Credentials(token=token), profile=profile, token_file=token_file)
    try:
        yield backend
    finally:
        await backend.aclose()


async def children(backend: Opus2Backend, directory: Entry) -> dict[str, Entry]:
    return {e.name: e async for e in backend.list_dir(directory)}


async def walk(backend: Opus2Backend, *names: str) -> Entry:
    entry = await backend.root()
    for name in names:
        entry = (await children(backend, entry))[name]
    return entry


def payload(size: int, seed: int = 1) -> bytes:
    return random.Random(seed).randbytes(size)


class Sink:
    def __init__(self) -> None:
        self.data = bytearray()

    async def __call__(self, chunk: bytes) -> None:
        self.data += chunk


# ---- listing ----------------------------------------------------------------------------------


async def test_root_lists_the_projects_of_the_token_user(serve: Serve) -> None:
    emu, url = serve()
    emu.add_project("Alpha")
    other = emu.add_user("reader@example.com")
    emu.add_project("Archive", members={emu.default_user_id: READ, other: READ_WRITE})
    emu.add_project("Hidden", members={other: READ_WRITE})
    async with opened(url, emu.default_token) as backend:
        projects = await children(backend, await backend.root())
    assert sorted(projects) == ["Alpha", "Archive"]
    assert projects["Alpha"].is_dir and projects["Alpha"].allows(Op.MKDIR)
    assert projects["Archive"].read_only and not projects["Archive"].ops
    assert len(emu.requests("GET", r"^/projects$")) == 1


async def test_listing_pages_through_documents_with_few_requests(serve: Serve) -> None:
    emu, url = serve()
    project = emu.add_project("Big")
    folder = emu.add_folder(project, "Disclosure")
    for i in range(250):
        emu.add_document(project, f"doc-{i:03}.txt", b"x" * i, folder_id=folder)
    profile = DEFAULT_PROFILE.replace(page_size=100)
    async with opened(url, emu.default_token, profile=profile) as backend:
        disclosure = await walk(backend, "Big", "Disclosure")
        emu.clear_log()
        entries = await children(backend, disclosure)
    assert len(entries) == 250
    doc = entries["doc-042.txt"]
    assert doc.size == 42 and not doc.is_dir and doc.mtime is not None
    assert doc.version == emu.document(doc.extra["document"])["versionId"]
    listing = emu.requests("GET", r"/documents/folder/")
    assert len(listing) == 3  # 100 + 100 + 50, the total says when to stop
    assert all("pageSize=100" in r.query for r in listing)
    # one flat folders listing, and nothing per file
    assert len(emu.requests()) == 4


async def test_project_root_holds_top_folders_and_root_documents(serve: Serve) -> None:
    emu, url = serve()
    project = emu.add_project("Case")
    emu.seed_tree(
        project,
        {"Pleadings": {"Claim.pdf": b"%PDF", "Drafts": {"v1.txt": b"one"}}, "Notes.txt": b"n"},
    )
    async with opened(url, emu.default_token) as backend:
        case = await walk(backend, "Case")
        top = await children(backend, case)
        pleadings = await children(backend, top["Pleadings"])
        drafts = await children(backend, pleadings["Drafts"])
    assert sorted(top) == ["Notes.txt", "Pleadings"]
    assert sorted(pleadings) == ["Claim.pdf", "Drafts"]
    assert list(drafts) == ["v1.txt"] and drafts["v1.txt"].size == 3
    assert top["Pleadings"].allows(Op.REMOVE) and top["Pleadings"].allows(Op.CREATE_FILE)
    assert top["Notes.txt"].allows(Op.REPLACE) and not top["Notes.txt"].allows(Op.REMOVE)


async def test_walk_project_reads_a_whole_project_in_two_requests(serve: Serve) -> None:
    emu, url = serve()
    project = emu.add_project("Case")
    emu.seed_tree(
        project,
        {
            "Z last": {"Deep": {"Deeper": {"leaf.txt": b"leaf"}}},
            "A first": {"a.txt": b"a"},
            "root.txt": b"r",
        },
    )
    async with opened(url, emu.default_token) as backend:
        case = await walk(backend, "Case")
        emu.clear_log()
        pairs = [pair async for pair in backend.walk_project(case)]
        assert len(emu.requests()) == 2
        by_path: dict[str, list[str]] = {}
        seen = {case.id}
        for parent, entry in pairs:
            assert parent in seen  # parents come first
            seen.add(entry.id)
            by_path.setdefault(parent, []).append(entry.name)
        # the same tree as directory by directory
        for parent_id, names in by_path.items():
            directory = (
                next(e for _, e in pairs if e.id == parent_id) if parent_id != case.id else case
            )
            assert sorted(names) == sorted(await children(backend, directory))
    assert sorted(e.name for _, e in pairs) == [
        "A first",
        "Deep",
        "Deeper",
        "Z last",
        "a.txt",
        "leaf.txt",
        "root.txt",
    ]


async def test_stat_of_each_kind_and_of_vanished_objects(serve: Serve) -> None:
    emu, url = serve()
    project = emu.add_project("P")
    sub = emu.ensure_path(project, "/A/B")
    doc = emu.add_document(project, "d.txt", b"abc", folder_id=sub)
    async with opened(url, emu.default_token) as backend:
        p = await walk(backend, "P")
        b = await walk(backend, "P", "A", "B")
        d = (await children(backend, b))["d.txt"]
        assert (await backend.stat(p)).name == "P"
        assert (await backend.stat(b)).extra["path"] == "/A/B"
        emu.replace_document(doc, b"abcdef")
        fresh = await backend.stat(d)
        assert fresh.size == 6 and fresh.version != d.version and fresh.id == d.id
        emu.delete_document(doc)
        with pytest.raises(errors.NotFound):
            await backend.stat(d)
        emu.delete_folder(b.extra["folder"])
        with pytest.raises(errors.NotFound):
            await backend.stat(b)
        # a new folder at the same path is another folder
        emu.ensure_path(project, "/A/B")
        with pytest.raises(errors.NotFound):
            await backend.stat(b)


# ---- reading ------------------------------------------------------------------------------


async def test_download_multi_mib_survives_a_mid_body_reset(serve: Serve) -> None:
    emu, url = serve()
    project = emu.add_project("P")
    data = payload(5 * 1024 * 1024)
    emu.add_document(project, "big.bin", data)
    emu.plan_fault(method="GET", path=r"/content$", reset_after=1_500_000)
    async with opened(url, emu.default_token) as backend:
        entry = await walk(backend, "P", "big.bin")
        sink = Sink()
        await backend.download(entry, sink)
    assert bytes(sink.data) == data
    gets = emu.requests("GET", r"/content$")
    assert len(gets) == 2 and gets[0].fault is not None
    # the resume asked for the missing bytes only
    assert gets[1].status == 206 and gets[1].bytes_out == len(data) - 1_500_000


async def test_ranged_read_fetches_only_the_range(serve: Serve) -> None:
    emu, url = serve()
    project = emu.add_project("P")
    data = payload(300_000, seed=2)
    emu.add_document(project, "f.bin", data)
    async with opened(url, emu.default_token) as backend:
        entry = await walk(backend, "P", "f.bin")
        sink = Sink()
        await backend.download(entry, sink, start=100_000, end=100_100)
    assert bytes(sink.data) == data[100_000:100_100]
    (get,) = emu.requests("GET", r"/content$")
    assert get.status == 206 and get.bytes_out == 100


async def test_download_switched_off_for_the_project_is_permission_denied(serve: Serve) -> None:
    emu, url = serve()
    project = emu.add_project("P", download_via_api=False)
    emu.add_document(project, "f.txt", b"secret")
    async with opened(url, emu.default_token) as backend:
        entry = await walk(backend, "P", "f.txt")
        with pytest.raises(errors.PermissionDenied):
            await backend.download(entry, Sink())


# ---- writing --------------------------------------------------------------------------------


async def test_create_file_is_safe_to_repeat_after_a_lost_answer(
    serve: Serve, tmp_path: Path
) -> None:
    emu, url = serve()
    project = emu.add_project("P")
    folder = emu.add_folder(project, "In")
    src = tmp_path / "report.pdf"
    src.write_bytes(b"%PDF-1.4 report")
    # the server stores the upload, then the connection drops before the answer arrives
    emu.plan_fault(method="POST", path=r"/documents$", reset_after=0)
    async with opened(url, emu.default_token) as backend:
        parent = await walk(backend, "P", "In")
        with pytest.raises(errors.RemoteUnavailable):
            await backend.create_file(parent, "report.pdf", src)
        again = await backend.create_file(parent, "report.pdf", src)
    stored = emu.documents(project, folder)
    assert [d["name"] for d in stored] == ["report.pdf"]
    assert again.extra["document"] == stored[0]["id"] and again.size == src.stat().st_size
    posts = emu.requests("POST", r"/documents$")
    assert len(posts) == 2 and all("rejectDuplicate=true" in r.query for r in posts)
    assert posts[1].status == 409


async def test_create_large_file_streams_and_leaves_no_temp_file(
    serve: Serve, tmp_path: Path
) -> None:
    emu, url = serve()
    emu.add_project("P")
    data = payload(3 * 1024 * 1024, seed=3)
    src = tmp_path / "scan.tif"
    src.write_bytes(data)
    async with opened(url, emu.default_token) as backend:
        entry = await backend.create_file(await walk(backend, "P"), 'Scan ü "1".tif', src)
    doc = emu.document(entry.extra["document"])
    assert doc["content"] == data and doc["name"] == 'Scan ü "1".tif'
    assert doc["folderId"] is None and entry.meta["version"] == "1"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scan.tif"]


async def test_replace_makes_a_new_version_with_the_same_id(serve: Serve, tmp_path: Path) -> None:
    emu, url = serve()
    project = emu.add_project("P")
    doc = emu.add_document(project, "memo.txt", b"draft")
    src = tmp_path / "memo.txt"
    src.write_bytes(b"final text")
    async with opened(url, emu.default_token) as backend:
        before = await walk(backend, "P", "memo.txt")
        after = await backend.replace_file(before, src)
    assert after.id == before.id and after.version != before.version
    assert after.meta["version"] == "2" and after.size == len(b"final text")
    assert emu.document(doc)["content"] == b"final text"
    assert len(emu.requests("POST", r"/replace$")) == 1


async def test_names_the_server_refuses_are_refused_at_once(serve: Serve, tmp_path: Path) -> None:
    # the server answers 400 "Invalid document name" for a blank name or one with a slash
    # (docfs restores a local U+2215 to "/"), and "Invalid folder name" for an empty folder name
    # or one with a slash: check_name refuses them with EINVAL before any upload, else the
    # data of a new file is refused only at close and ends in lost+found
    emu, url = serve()
    project = emu.add_project("P")
    emu.add_folder(project, "In")
    src = tmp_path / "x.txt"
    src.write_bytes(b"x")
    async with opened(url, emu.default_token) as backend:
        parent = await walk(backend, "P", "In")
        emu.clear_log()
        for name in ("", " ", "\t\n", "a/b.txt", "/", "in/"):
            with pytest.raises(errors.InvalidArgument, match="Opus 2"):
                backend.check_name(parent, name, Kind.FILE)
            with pytest.raises(errors.InvalidArgument):
                await backend.create_file(parent, name, src)
        for name in ("", "a/b"):
            with pytest.raises(errors.InvalidArgument, match="Opus 2"):
                backend.check_name(parent, name, Kind.DIR)
            with pytest.raises(errors.InvalidArgument):
                await backend.mkdir(parent, name)
        assert emu.requests() == []
        for name in (" x", "x ", ".", "..x", 'q"x.txt', "back\\slash.pdf", "a\u2215b.txt"):
            backend.check_name(parent, name, Kind.FILE)
        # a folder may be blank (the server only refuses empty names and slashes)
        backend.check_name(parent, " ", Kind.DIR)


HOSTILE_NAMES = (
    "back\\slash.pdf",
    "pct%22.txt",
    "lower%0d%0a.txt",
    "upper%0D%0A.txt",
    'q"x.txt',
    '"quoted".txt',
    "end\\",
    "line\nbreak.txt",
    "cr\rret.txt",
    "semi;colon=1.txt",
    "filename*=UTF-8''evil.txt",
    "per%cent%.txt",
    "tick'.txt",
    "ü € 漢字.txt",
    " lead and trail ",
)


async def test_upload_filenames_are_stored_exactly(serve: Serve, tmp_path: Path) -> None:
    # the server unescapes quoted pairs and %22/%0D/%0A in filename="…" and prefers
    # filename*=UTF-8''…: a name must never come back changed
    emu, url = serve()
    project = emu.add_project("P")
    folder = emu.add_folder(project, "In")
    src = tmp_path / "x.txt"
    src.write_bytes(b"content")
    async with opened(url, emu.default_token) as backend:
        parent = await walk(backend, "P", "In")
        made = {name: await backend.create_file(parent, name, src) for name in HOSTILE_NAMES}
    assert {name: entry.name for name, entry in made.items()} == {n: n for n in HOSTILE_NAMES}
    assert sorted(d["name"] for d in emu.documents(project, folder)) == sorted(HOSTILE_NAMES)
    # without filename* (a profile setting) only the HTML5 sequences themselves are lost
    plain = [n for n in HOSTILE_NAMES if not any(c in n.upper() for c in ("%22", "%0D", "%0A"))]
    other = emu.add_folder(project, "Plain")
    profile = DEFAULT_PROFILE.replace(upload_filename_star=False)
    async with opened(url, emu.default_token, profile=profile) as backend:
        parent = await walk(backend, "P", "Plain")
        made = {name: await backend.create_file(parent, name, src) for name in plain}
    assert {name: entry.name for name, entry in made.items()} == {n: n for n in plain}
    assert sorted(d["name"] for d in emu.documents(project, other)) == sorted(plain)


async def test_upload_filename_follows_the_shared_quoting_rule_plus_filename_star(
    tmp_path: Path,
) -> None:
    # filename="…" as the shared encoder quotes every name (a backslash and a quote as quoted
    # pairs, line breaks in the HTML5 form encoding, UTF-8 as is), then filename*=UTF-8''…,
    # which the server prefers; the file streams from the staged file itself
    src = tmp_path / "staged"
    src.write_bytes(b"content")
    body = upload_body(DEFAULT_PROFILE, src, 'a\\b"c\r\nü.txt', {"folderId": "7"})
    reader = body.open()
    try:
        sent = b"".join([piece async for piece in reader])
    finally:
        reader.close()
    assert sent.endswith(b"content\r\n--" + body.boundary.encode() + b"--\r\n")
    assert (
        'name="file"; filename="a\\\\b\\"c%0D%0Aü.txt"; '
        "filename*=UTF-8''a%5Cb%22c%0D%0A%C3%BC.txt\r\n"
    ).encode() in sent
    assert sent.index(b'name="folderId"') < sent.index(b'name="file"')


async def test_replace_keeps_a_name_the_upload_route_would_refuse(
    serve: Serve, tmp_path: Path
) -> None:
    # a replace keeps the document's name (reference §2: unless replaceName=true), so the
    # multipart filename carries no name; the server still refuses a blank or "/" filename
    emu, url = serve()
    project = emu.add_project("P")
    names = (" ", "a/b.txt", "/", 'q"x\\y%22.txt')
    docs = {name: emu.add_document(project, name, b"old") for name in names}
    src = tmp_path / "new.bin"
    src.write_bytes(b"new content")
    async with opened(url, emu.default_token) as backend:
        listed = await children(backend, await walk(backend, "P"))
        for name in names:
            after = await backend.replace_file(listed[name], src)
            assert after.name == name and after.meta["version"] == "2"
    for name, did in docs.items():
        stored = emu.document(did)
        assert stored["name"] == name and stored["content"] == b"new content"
    assert all("replaceName" not in r.query for r in emu.requests("POST", r"/replace$"))


async def test_mkdir_and_rmdir(serve: Serve) -> None:
    emu, url = serve()
    project = emu.add_project("P")
    async with opened(url, emu.default_token) as backend:
        p = await walk(backend, "P")
        outer = await backend.mkdir(p, "Outer")
        inner = await backend.mkdir(outer, "Inner")
        assert inner.extra["path"] == "/Outer/Inner" and inner.is_dir
        with pytest.raises(errors.AlreadyExists):
            await backend.mkdir(p, "Outer")
        with pytest.raises(errors.NotEmpty):
            await backend.remove(outer)
        await backend.remove(inner)
        await backend.remove(outer)
    assert emu.folders(project) == []
    deletes = emu.requests("DELETE")
    assert [r.status for r in deletes] == [409, 200, 200]
    assert all(r.path.endswith("/") for r in deletes)  # the seed's DELETE folders/{id}/


async def test_folder_not_empty_status_is_the_profiles_and_a_409_keeps_the_vendors_meaning(
    serve: Serve, caplog: pytest.LogCaptureFixture
) -> None:
    # the vendor's only 409 is "You cannot delete the only version of a document"; which
    # status a non-empty folder gets is a guess of the wire profile
    profile = DEFAULT_PROFILE.replace(folder_not_empty_status=400)
    emu, url = serve(profile=profile)
    project = emu.add_project("P")
    outer = emu.add_folder(project, "Outer")
    emu.add_folder(project, "Inner", outer)
    async with opened(url, emu.default_token, profile=profile) as backend:
        folder = await walk(backend, "P", "Outer")
        with pytest.raises(errors.NotEmpty):
            await backend.remove(folder)
        assert [r.status for r in emu.requests("DELETE")] == [400]
    # a server that answers 409 there means something else: not ENOTEMPTY
    emu, url = serve()
    project = emu.add_project("P")
    outer = emu.add_folder(project, "Outer")
    emu.add_folder(project, "Inner", outer)
    async with opened(url, emu.default_token, profile=profile) as backend:
        folder = await walk(backend, "P", "Outer")
        with pytest.raises(errors.NotSupported) as refused:
            await backend.remove(folder)
        assert not isinstance(refused.value, errors.NotEmpty) and refused.value.status == 409
    # a document delete answered with the vendor's 409 is a refusal (EPERM), not EEXIST
    alt = ALTERNATIVE_PROFILE  # the profile with the optional DELETE documents route
    emu, url = serve(profile=alt)
    project = emu.add_project("P")
    emu.add_document(project, "only.pdf", b"%PDF only")
    emu.plan_fault(
        method="DELETE",
        path=r"/documents/",
        status=409,
        body=b'{"status":409,"message":"You cannot delete the only version of a document"}',
    )
    async with opened(url, emu.default_token, profile=alt) as backend:
        doc = (await children(backend, await walk(backend, "P")))["only.pdf"]
        with caplog.at_level(logging.WARNING), pytest.raises(errors.NotSupported):
            await backend.remove(doc)
    assert "You cannot delete the only version of a document" in caplog.text


async def test_a_download_route_the_tenant_lacks_says_how_to_set_it(
    serve: Serve, caplog: pytest.LogCaptureFixture
) -> None:
    emu, url = serve()
    project = emu.add_project("P")
    emu.add_document(project, "a.pdf", b"%PDF a")
    emu.add_document(project, "b.pdf", b"%PDF b")
    guessed = DEFAULT_PROFILE.replace(download_path="projects/{projectId}/files/{documentId}")
    async with opened(url, emu.default_token, profile=guessed) as backend:
        docs = await children(backend, await walk(backend, "P"))
        with caplog.at_level(logging.WARNING):
            for name in ("a.pdf", "b.pdf"):
                with pytest.raises(errors.NotFound):
                    await backend.download(docs[name], Sink())
    hints = [r for r in caplog.records if "set download_path" in r.getMessage()]
    assert len(hints) == 1 and "does not document" in hints[0].getMessage()


async def test_move_between_folders_and_refused_operations(serve: Serve) -> None:
    emu, url = serve()
    project = emu.add_project("P")
    other = emu.add_project("Q")
    a = emu.add_folder(project, "A")
    b = emu.add_folder(project, "B")
    doc = emu.add_document(project, "x.txt", b"x", folder_id=a)
    async with opened(url, emu.default_token) as backend:
        top = await children(backend, await walk(backend, "P"))
        entry = (await children(backend, top["A"]))["x.txt"]
        moved = await backend.rename(entry, top["B"], "x.txt")
        assert moved.id == entry.id and moved.extra["folder"] == b
        assert emu.document(doc)["folderId"] == b
        emu.clear_log()
        with pytest.raises(errors.NotSupported):
            await backend.rename(moved, top["B"], "renamed.txt")
        with pytest.raises(errors.NotSupported):
            await backend.rename(moved, top["A"], "renamed.txt")  # never half done
        with pytest.raises(errors.NotSupported):
            await backend.remove(moved)
        with pytest.raises(errors.NotSupported):
            await backend.rename(top["A"], top["B"], "A")
        # no call moves a document to another project or a project's top level, and mv's
        # copy + delete fallback cannot delete: refused, not EXDEV
        with pytest.raises(errors.NotSupported):
            await backend.rename(moved, await walk(backend, "Q"), "x.txt")
        with pytest.raises(errors.NotSupported):
            await backend.rename(moved, await walk(backend, "P"), "x.txt")
    assert not [r for r in emu.requests() if r.method != "GET"]
    assert emu.document(doc)["folderId"] == b and emu.documents(other) == []


async def test_fields_are_typed_metadata(serve: Serve) -> None:
    emu, url = serve()
    project = emu.add_project("P")
    emu.add_field(project, "Author")
    emu.add_field(project, "Bates Number", "number")
    emu.add_field(project, "Privilege", "choice", ["Privileged", "Not privileged"])
    doc = emu.add_document(project, "e.pdf", b"%PDF", fields={"Author": "R. Smith"})
    async with opened(url, emu.default_token) as backend:
        entry = await walk(backend, "P", "e.pdf")
        assert entry.meta == {"Author": "R. Smith", "id": doc, "version": "1"}
        entry = await backend.set_meta(entry, "Bates Number", "42")
        assert entry.meta["Bates Number"] == "42"
        entry = await backend.set_meta(entry, "Privilege", "Privileged")
        with pytest.raises(errors.InvalidArgument, match="Bates Number"):
            await backend.set_meta(entry, "Bates Number", "forty-two")
        with pytest.raises(errors.InvalidArgument):
            await backend.set_meta(entry, "Privilege", "Maybe")
        with pytest.raises(errors.NotSupported):
            await backend.set_meta(entry, "No such field", "x")
        with pytest.raises(errors.ReadOnly):
            await backend.set_meta(entry, "version", "9")
        entry = await backend.set_meta(entry, "Author", None)
        with pytest.raises(errors.NoAttribute):
            await backend.set_meta(entry, "Author", None)
    values = {f["name"]: f["value"] for f in emu.document(doc)["fields"]}
    assert values == {"Author": None, "Bates Number": 42, "Privilege": "Privileged"}
    assert entry.version == emu.document(doc)["versionId"]  # metadata is not content


async def test_changed_since_asks_with_after_date(serve: Serve) -> None:
    emu, url = serve()
    project = emu.add_project("P")
    folder = emu.add_folder(project, "F")
    changed = emu.add_document(project, "a.txt", b"a", folder_id=folder)
    emu.add_document(project, "b.txt", b"b", folder_id=folder)
    async with opened(url, emu.default_token) as backend:
        p = await walk(backend, "P")
        f = (await children(backend, p))["F"]
        since = emu.now() + 5
        emu.advance_clock(10)
        emu.replace_document(changed, b"a2")
        emu.clear_log()
        found = [e async for e in backend.changed_since(p, since)]
        in_folder = [e async for e in backend.changed_since(f, since)]
    assert [e.name for e in found] == ["a.txt"] and found[0].size == 2
    assert [e.name for e in in_folder] == ["a.txt"]
    requests = emu.requests()
    assert len(requests) == 2 and all("afterDate=" in r.query for r in requests)


# ---- authentication and permissions --------------------------------------------------------


async def test_a_bad_token_fails_authentication(serve: Serve) -> None:
    emu, url = serve()
    async with opened(url, "eyJ-not-a-token") as backend:
        with pytest.raises(errors.AuthenticationFailed):
            await backend.connect()
    async with opened(url, None) as backend:
        with pytest.raises(errors.AuthenticationFailed):
            await backend.connect()
    assert len(emu.requests()) == 1  # no token at all: refused before any request


async def test_a_revoked_inline_token_is_final(serve: Serve) -> None:
    emu, url = serve()
    emu.add_project("P")
    async with opened(url, emu.default_token) as backend:
        root = await backend.root()
        await children(backend, root)
        emu.revoke_token(emu.default_token)
        with pytest.raises(errors.AuthenticationFailed):
            await children(backend, root)
    assert [r.status for r in emu.requests()] == [200, 401]


async def test_an_expired_token_is_read_again_from_its_file(serve: Serve, tmp_path: Path) -> None:
    emu, url = serve()
    emu.add_project("P")
    token_file = tmp_path / "token"
    token_file.write_text(emu.default_token + "\n")
    async with opened(url, None, token_file=token_file) as backend:
        root = await backend.root()
        assert list(await children(backend, root)) == ["P"]
        emu.expire_token(emu.default_token)
        token_file.write_text(emu.add_token(emu.default_user_id, name="regenerated"))
        assert list(await children(backend, root)) == ["P"]
    assert [r.status for r in emu.requests()] == [200, 401, 200]


async def test_read_only_and_missing_access_map_to_permission_errors(
    serve: Serve, tmp_path: Path
) -> None:
    emu, url = serve()
    reader = emu.add_user("reader@example.com")
    token = emu.add_token(reader)
    project = emu.add_project("Shared", members={reader: READ, emu.default_user_id: READ_WRITE})
    secret = emu.add_project("Secret")
    emu.add_document(project, "r.txt", b"read me")
    src = tmp_path / "n.txt"
    src.write_bytes(b"new")
    async with opened(url, token) as backend:
        shared = await walk(backend, "Shared")
        doc = (await children(backend, shared))["r.txt"]
        assert shared.read_only and doc.read_only and not doc.allows(Op.REPLACE)
        sink = Sink()
        await backend.download(doc, sink)
        assert bytes(sink.data) == b"read me"
        # the vfs would refuse these locally; the server refuses them too
        with pytest.raises(errors.PermissionDenied):
            await backend.create_file(shared, "n.txt", src)
        with pytest.raises(errors.PermissionDenied):
            await backend.mkdir(shared, "New")
        hidden = Entry(
            id=f"p:{secret}",
            name="Secret",
            kind=shared.kind,
            size=None,
            mtime=None,
            version="",
            extra={"type": "project", "project": secret},
        )
        with pytest.raises(errors.PermissionDenied):
            await backend.stat(hidden)
    assert emu.documents(project) and len(emu.documents(project)) == 1


async def test_integrations_api_switched_off(serve: Serve) -> None:
    emu, url = serve(api_enabled=False)
    async with opened(url, emu.default_token) as backend:
        with pytest.raises(errors.PermissionDenied):
            await backend.connect()


async def test_the_token_never_reaches_logs_or_errors(
    serve: Serve, caplog: pytest.LogCaptureFixture
) -> None:
    emu, url = serve()
    emu.add_project("P", download_via_api=False)
    caplog.set_level(logging.DEBUG)
    messages: list[str] = []
    async with opened(url, emu.default_token) as backend:
        p = await walk(backend, "P")
        emu.add_document(p.extra["project"], "f", b"x")
        f = (await children(backend, p))["f"]
        with pytest.raises(errors.PermissionDenied) as denied:
            await backend.download(f, Sink())
        messages.append(str(denied.value))
        emu.revoke_token(emu.default_token)
        with pytest.raises(errors.AuthenticationFailed) as refused:
            await backend.stat(p)
        messages.append(str(refused.value))
    assert caplog.records
    for text in [*messages, caplog.text]:
        assert emu.default_token not in text


# ---- rate limiting ------------------------------------------------------------------------------


async def test_a_429_is_retried_after_retry_after(serve: Serve) -> None:
    emu, url = serve(rate_limit=4, rate_window=1.0)
    emu.add_project("P")
    async with opened(url, emu.default_token) as backend:
        root = await backend.root()
        started = trio.current_time()
        for _ in range(6):
            assert list(await children(backend, root)) == ["P"]
        elapsed = trio.current_time() - started
        assert backend.http.stats["projects"].retries >= 1
    refused = [r for r in emu.requests() if r.status == 429]
    assert refused and emu.rate_limited() == len(refused)
    assert elapsed >= 0.9  # it waited for the Retry-After of one second
    assert len([r for r in emu.requests() if r.status == 200]) == 6


async def test_client_pacing_draws_no_429_for_thirty_uploads(serve: Serve, tmp_path: Path) -> None:
    emu, url = serve(rate_limit=20, rate_window=1.0)
    project = emu.add_project("P")
    folder = emu.add_folder(project, "Inbox")
    profile = DEFAULT_PROFILE.replace(rate_limit=20, rate_window=1.0)
    sources = []
    for i in range(30):
        src = tmp_path / f"file{i:02}.txt"
        src.write_bytes(f"file {i}\n".encode())
        sources.append(src)
    async with opened(url, emu.default_token, profile=profile, limits=profile.limits()) as backend:
        inbox = await walk(backend, "P", "Inbox")
        started = trio.current_time()
        for src in sources:  # one after the other, as cp -r does
            await backend.create_file(inbox, src.name, src)
        elapsed = trio.current_time() - started
    assert emu.rate_limited() == 0
    assert sorted(d["name"] for d in emu.documents(project, folder)) == [s.name for s in sources]
    assert elapsed >= 1.0  # it queued: 30 uploads do not fit in one 1-second window of 20


def test_default_limits_stay_under_fifty_per_minute() -> None:
    limits = Opus2Backend.default_limits
    assert limits.requests_per_second is not None
    worst_minute = limits.burst + limits.requests_per_second * 60
    assert worst_minute <= 50 and worst_minute >= 45


# ---- the alternative profile -------------------------------------------------------------------


async def test_the_backend_adapts_to_another_wire_profile(serve: Serve, tmp_path: Path) -> None:
    profile = ALTERNATIVE_PROFILE.replace(page_size=3)
    emu, url = serve(profile=profile)
    project = emu.add_project("Alt")
    emu.add_field(project, "Pages", "number")
    folder = emu.add_folder(project, "Docs")
    data = payload(400_000, seed=5)
    for i in range(7):
        emu.add_document(project, f"n{i}.txt", f"{i}".encode(), folder_id=folder)
    big = emu.add_document(project, "big.bin", data, folder_id=folder)
    emu.plan_fault(method="GET", path=r"/download$", reset_after=100_000)
    src = tmp_path / "up.txt"
    src.write_bytes(b"uploaded")
    async with opened(url, emu.default_token, profile=profile) as backend:
        docs = await walk(backend, "Alt", "Docs")
        listing = await children(backend, docs)
        assert len(listing) == 8 and listing["big.bin"].size == len(data)
        sink = Sink()
        await backend.download(listing["big.bin"], sink)
        assert bytes(sink.data) == data
        created = await backend.create_file(docs, "up.txt", src)
        sub = await backend.mkdir(docs, "Sub")
        renamed = await backend.rename(created, sub, "moved.txt")
        tagged = await backend.set_meta(renamed, "Pages", "12")
        # this profile deletes documents, so mv's copy + delete fallback works: EXDEV
        with pytest.raises(errors.CrossDevice):
            await backend.rename(tagged, await walk(backend, "Alt"), "moved.txt")
        await backend.remove(listing["n0.txt"])
    assert tagged.name == "moved.txt" and tagged.meta["Pages"] == "12"
    stored = emu.document(created.extra["document"])
    assert stored["content"] == b"uploaded" and stored["name"] == "moved.txt"
    assert isinstance(stored["id"], int) and str(stored["folderId"]) == sub.extra["folder"]
    assert len(emu.documents(project, folder)) == 7
    log = emu.requests()
    assert all(r.path.startswith("/api/v8/") for r in log)
    pages = [r for r in log if r.path.endswith(f"/documents/folder/{folder}")]
    assert len(pages) == 3 and "offset=6&limit=3" in pages[-1].query
    downloads = [r for r in log if r.path == f"/api/v8/projects/{project}/documents/{big}/download"]
    assert [r.status for r in downloads] == [200, 200]  # no ranges: the retry starts again


async def test_503_rate_limiting_is_retried_too(serve: Serve) -> None:
    emu, url = serve(profile=ALTERNATIVE_PROFILE, rate_limit=2, rate_window=1.0)
    emu.add_project("Alt")
    async with opened(url, emu.default_token, profile=ALTERNATIVE_PROFILE) as backend:
        root = await backend.root()
        for _ in range(3):
            assert list(await children(backend, root)) == ["Alt"]
    assert [r.status for r in emu.requests()].count(503) >= 1


async def test_profiles_load_from_toml_and_json(tmp_path: Path) -> None:
    toml = tmp_path / "tenant.toml"
    toml.write_text(
        '[profile]\npath_prefix = "/api/v8"\npaging = "offset"\npage_param = "offset"\n'
        'size_param = "limit"\nitems_key = "data"\ntotal_key = "totalCount"\nrate_window = 60\n'
    )
    profile = Opus2Profile.load(toml)
    assert profile.paging == "offset" and profile.items_key == "data"
    assert profile.rate_window == 60.0 and profile.ranges is True
    as_json = tmp_path / "tenant.json"
    as_json.write_text(json.dumps({"ranges": False, "total_key": None}))
    loaded = Opus2Profile.load(as_json)
    assert loaded.ranges is False and loaded.total_key is None
    with pytest.raises(ValueError, match="unknown setting"):
        Opus2Profile.from_mapping({"pageSize": 10})
    with pytest.raises(ValueError, match="wrong type"):
        Opus2Profile.from_mapping({"page_size": "10"})
    with pytest.raises(ValueError, match="paging"):
        Opus2Profile.from_mapping({"paging": "cursor"})
    backend = Opus2Backend(
        HttpClient("http://127.0.0.1:9"), Credentials(token="t"), profile=as_json
    )
    assert backend.profile == loaded and backend.capabilities.ranges is False
    assert (
        Opus2Backend.capabilities.ranges is True and backend.capabilities.meta_namespace == "opus2"
    )
    await backend.aclose()


async def test_a_document_carries_the_servers_sha256_as_its_typed_checksum(
    serve: Serve, tmp_path: Path
) -> None:
    # the default profile's ``checksum`` is "sha256:<hex>" (docs/protocols/opus2.md): a listed,
    # a stat'ed and a newly uploaded document all give it as Entry.checksum
    emu, url = serve()
    project = emu.add_project("P")
    data = payload(3000)
    emu.add_document(project, "a.bin", data)
    src = tmp_path / "b.bin"
    src.write_bytes(payload(5000, seed=2))
    async with opened(url, emu.default_token) as backend:
        listed = (await children(backend, await walk(backend, "P")))["a.bin"]
        stated = await backend.stat(listed)
        made = await backend.create_file(await walk(backend, "P"), "b.bin", src)
    want = Checksum("sha256", hashlib.sha256(data).hexdigest())
    assert listed.checksum == want
    assert stated.checksum == want
    assert made.checksum == Checksum("sha256", hashlib.sha256(src.read_bytes()).hexdigest())


async def test_a_large_upload_streams_from_the_staged_file_without_a_copy(
    serve: Serve, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the body used to be spooled into a temporary file next to the source (a second copy of
    # every upload over 1 MiB); it is streamed from the staged file now
    def no_temp(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("an upload made a temporary copy")

    monkeypatch.setattr(tempfile, "mkstemp", no_temp)
    emu, url = serve()
    emu.add_project("P")
    data = payload(3 << 20)
    src = tmp_path / "big.bin"
    src.write_bytes(data)
    async with opened(url, emu.default_token) as backend:
        parent = await walk(backend, "P")
        made = await backend.create_file(parent, "big.bin", src)
        again = await backend.replace_file(made, src)
    assert made.size == again.size == len(data)
    assert emu.document(made.meta["id"])["content"] == data
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.bin"]
