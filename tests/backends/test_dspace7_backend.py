"""The DSpace 7+ backend against the DSpace 7+ emulator, over real loopback HTTP.

Request counts come from the emulator's request log, so the tests pin down not only what the
backend shows but also what it costs the server.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any, Protocol

import httpx
import pytest
import trio

from docfs import errors
from docfs.backends._http import HttpClient, Limits, RetryPolicy
from docfs.backends.base import Checksum, Credentials, Entry, Kind, Op
from docfs.backends.dspace7 import DSpace7Backend, api_prefix, jwt_expiry, probe
from docfs.emulators.base import EmulatorServer
from docfs.emulators.dspace7 import DSpace7Emulator

ADMIN = ("admin@example.org", "admin-password-123")
USER = ("user@example.org", "user-password-456")
FAST_RETRY = RetryPolicy(attempts=5, base=0.01, cap=0.05)
API = "/server/api"
CONTENT_PATH = r"/core/bitstreams/[^/]+/content$"

Serve = Callable[..., tuple[DSpace7Emulator, EmulatorServer]]


@pytest.fixture
def serve() -> Iterator[Serve]:
    """Start an emulator (built with the given options) on loopback; stopped after the test."""
    servers: list[EmulatorServer] = []

    def start(**options: Any) -> tuple[DSpace7Emulator, EmulatorServer]:
        emulator = DSpace7Emulator(seed=7, user=ADMIN[0], password=ADMIN[1], **options)
        emulator.add_user(*USER)
        server = EmulatorServer(emulator)
        server.start()
        servers.append(server)
        return emulator, server

    yield start
    for server in servers:
        server.stop()


class Connect(Protocol):
    async def __call__(
        self,
        server: EmulatorServer,
        credentials: Credentials | None = None,
        url: str | None = None,
        **options: bool,
    ) -> DSpace7Backend: ...


@pytest.fixture
async def connect() -> AsyncIterator[Connect]:
    """Connect backends to an emulator; they are closed after the test."""
    opened: list[DSpace7Backend] = []

    async def open_backend(
        server: EmulatorServer,
        credentials: Credentials | None = None,
        url: str | None = None,
        **options: bool,
    ) -> DSpace7Backend:
        http = HttpClient(url or server.url, retry=FAST_RETRY)
        backend = DSpace7Backend(http, credentials or Credentials(*ADMIN), **options)
        opened.append(backend)
        await backend.connect()
        return backend

    yield open_backend
    for backend in opened:
        await backend.aclose()


async def listing(backend: DSpace7Backend, entry: Entry) -> list[Entry]:
    return [child async for child in backend.list_dir(entry)]


async def child(backend: DSpace7Backend, parent: Entry, name: str) -> Entry:
    for entry in await listing(backend, parent):
        if entry.name == name:
            return entry
    raise AssertionError(f"{name!r} not in {parent.name!r}")


async def walk(backend: DSpace7Backend, *names: str) -> Entry:
    entry = await backend.root()
    for name in names:
        entry = await child(backend, entry, name)
    return entry


async def fetch(
    backend: DSpace7Backend, entry: Entry, start: int = 0, end: int | None = None
) -> bytes:
    data = bytearray()

    async def sink(chunk: bytes) -> None:
        data.extend(chunk)

    await backend.download(entry, sink, start, end)
    return bytes(data)


def seed_item(emulator: DSpace7Emulator, files: dict[str, bytes] | None = None) -> tuple[str, str]:
    """Community "C" / collection "Coll" / item "Item" with ``files``; returns (coll, item)."""
    community = emulator.add_community("C")
    collection = emulator.add_collection("Coll", community)
    item = emulator.add_item(collection, "Item")
    for name, content in (files or {}).items():
        emulator.add_bitstream(item, name, content)
    return collection, item


def write(tmp_path: Path, name: str, content: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(content)
    return path


# ---- URL handling and detection ---------------------------------------------------------


def test_api_prefix_follows_the_url_the_user_gives() -> None:
    assert api_prefix("https://repo.example.org") == "/server/api"
    assert api_prefix("https://repo.example.org/") == "/server/api"
    assert api_prefix("https://repo.example.org/server") == "/api"
    assert api_prefix("https://repo.example.org/server/api/") == ""


async def test_connect_works_with_each_url_form_and_probe_detects_dspace7(
    serve: Serve, connect: Connect
) -> None:
    emulator, server = serve()
    seed_item(emulator)
    for url in (server.url, f"{server.url}/server", f"{server.url}{API}"):
        backend = await connect(server, url=url)
        assert [e.name for e in await listing(backend, await backend.root())] == ["C"]
        assert backend.version == "DSpace 9.1"
        await backend.aclose()
    http = HttpClient(server.url, retry=FAST_RETRY)
    assert await probe(http) == "DSpace 9.1"
    await http.aclose()
    elsewhere = HttpClient(f"{server.url}/rest", retry=FAST_RETRY)
    assert await probe(elsewhere) is None
    await elsewhere.aclose()


# ---- listing ------------------------------------------------------------------------------


async def test_listing_pages_through_communities_collections_and_discovery(
    serve: Serve, connect: Connect
) -> None:
    emulator, server = serve()
    community = emulator.add_community("Big")
    emulator.add_community("Sub", parent=community)
    for n in range(150):
        emulator.add_collection(f"Coll {n:03d}", community)
    target = emulator.find("Coll 007")[0]
    for n in range(250):
        emulator.add_item(target, f"Item {n:03d}")
    backend = await connect(server)
    emulator.clear_log()

    big = await child(backend, await backend.root(), "Big")
    children = await listing(backend, big)
    assert [e.name for e in children[:2]] == ["Sub", "Coll 000"]
    assert len(children) == 151
    assert children[0].extra["type"] == "community"
    assert {e.extra["type"] for e in children[1:]} == {"collection"}
    assert len(emulator.requests("GET", "/subcommunities$")) == 1
    assert len(emulator.requests("GET", "/collections$")) == 2  # 100 + 50

    collection = next(e for e in children if e.name == "Coll 007")
    items = await listing(backend, collection)
    assert sorted(e.name for e in items) == [f"Item {n:03d}" for n in range(250)]
    assert len({e.id for e in items}) == 250
    searches = emulator.requests("GET", "/discover/search/objects$")
    assert len(searches) == 3  # 100 + 100 + 50, no request per item
    assert all("size=100" in r.query for r in searches)
    assert all(e.kind is Kind.DIR and e.mtime is not None for e in items)


async def test_item_listing_is_one_request_with_original_files_only(
    serve: Serve, connect: Connect
) -> None:
    emulator, server = serve()
    _, item = seed_item(emulator, {"paper.pdf": b"%PDF-1.4 tiny", "data.csv": b"a,b\n1,2\n"})
    emulator.add_bitstream(item, "license.txt", b"license", bundle="LICENSE")
    emulator.set_metadata(emulator.bitstreams(item)[0][0], "dc.description", ["main text"])
    backend = await connect(server)
    entry = await walk(backend, "C", "Coll", "Item")
    # the first PDF of a collection costs one HEAD, once per mount: are PDFs served as stored
    # (no citation cover page)? After that a listing is one request
    await listing(backend, entry)
    assert len(emulator.requests("HEAD", CONTENT_PATH)) == 1
    emulator.clear_log()

    files = await listing(backend, entry)
    assert len(emulator.requests()) == 1
    assert [f.name for f in files] == ["paper.pdf", "data.csv"]
    paper = files[0]
    assert paper.kind is Kind.FILE
    assert paper.size == len(b"%PDF-1.4 tiny")
    assert paper.version == hashlib.md5(b"%PDF-1.4 tiny").hexdigest()
    assert paper.mtime == entry.mtime  # the item's lastModified
    assert paper.meta["dc.description"] == "main text"
    assert paper.meta["checksum.md5"] == paper.version
    assert paper.meta["bundle"] == "ORIGINAL"
    assert paper.ops == frozenset({Op.REPLACE, Op.REMOVE, Op.RENAME, Op.SET_META})
    assert Op.CREATE_FILE in entry.ops

    with_bundles = await connect(server, other_bundles=True)
    entries = await listing(with_bundles, await walk(with_bundles, "C", "Coll", "Item"))
    assert [e.name for e in entries] == ["paper.pdf", "data.csv", "LICENSE"]
    assert entries[2].is_dir
    assert [e.name for e in await listing(with_bundles, entries[2])] == ["license.txt"]


async def test_item_with_many_files_pages_after_the_embedded_page(
    serve: Serve, connect: Connect
) -> None:
    emulator, server = serve()
    _, item = seed_item(emulator, {f"f{n:03d}.txt": str(n).encode() for n in range(130)})
    backend = await connect(server)
    entry = await walk(backend, "C", "Coll", "Item")
    emulator.clear_log()
    files = await listing(backend, entry)
    assert [f.name for f in files] == [f"f{n:03d}.txt" for n in range(130)]
    assert len(emulator.requests("GET", f"/core/items/{item}$")) == 1
    assert len(emulator.requests("GET", "/core/bundles/.*/bitstreams$")) == 1


async def test_anonymous_mount_lists_public_objects_and_offers_no_writes(
    serve: Serve, connect: Connect
) -> None:
    emulator, server = serve()
    seed_item(emulator, {"a.txt": b"A"})
    hidden = emulator.add_community("Hidden")
    emulator.restrict(hidden, [])
    backend = await connect(server, Credentials())
    root = await backend.root()
    assert [e.name for e in await listing(backend, root)] == ["C"]
    assert root.ops == frozenset()
    files = await listing(backend, await walk(backend, "C", "Coll", "Item"))
    assert files[0].ops == frozenset()
    assert await fetch(backend, files[0]) == b"A"
    assert not emulator.requests("POST", "/authn/login")


# ---- stat ---------------------------------------------------------------------------------


async def test_stat_refreshes_files_and_directories(serve: Serve, connect: Connect) -> None:
    emulator, server = serve()
    _, item = seed_item(emulator, {"a.txt": b"old"})
    backend = await connect(server)
    entry = await walk(backend, "C", "Coll", "Item")
    (file,) = await listing(backend, entry)
    stream = emulator.bitstreams(item)[0][0]

    emulator.set_content(stream, b"new content")
    emulator.clear_log()
    fresh = await backend.stat(file)
    assert len(emulator.requests()) == 1
    assert fresh.size == len(b"new content")
    assert fresh.version != file.version
    assert fresh.mtime is not None and fresh.mtime >= (file.mtime or 0)

    emulator.set_name(item, "Renamed")
    assert (await backend.stat(entry)).name == "Renamed"
    emulator.delete(stream)
    with pytest.raises(errors.NotFound):
        await backend.stat(file)


# ---- download -----------------------------------------------------------------------------


async def test_download_is_byte_identical_and_ranges_use_206(
    serve: Serve, connect: Connect
) -> None:
    emulator, server = serve()
    content = os.urandom(3 * 1024 * 1024 + 17)
    seed_item(emulator, {"big.bin": content})
    backend = await connect(server)
    (file,) = await listing(backend, await walk(backend, "C", "Coll", "Item"))
    emulator.clear_log()

    assert await fetch(backend, file) == content
    assert await fetch(backend, file, 1_000_000, 1_000_000 + 4096) == content[1_000_000:1_004_096]
    assert await fetch(backend, file, len(content) - 10) == content[-10:]
    statuses = [r.status for r in emulator.requests("GET", "/content$")]
    assert statuses == [200, 206, 206]
    ranged = emulator.requests("GET", "/content$")[1]
    assert ranged.bytes_out == 4096  # only the asked-for block crossed the wire


async def test_download_resumes_with_a_range_after_a_reset_mid_body(
    serve: Serve, connect: Connect
) -> None:
    emulator, server = serve()
    content = os.urandom(20 * 1024 * 1024)
    seed_item(emulator, {"huge.bin": content})
    backend = await connect(server)
    (file,) = await listing(backend, await walk(backend, "C", "Coll", "Item"))
    emulator.plan_fault(method="GET", path="/content$", reset_after=5 * 1024 * 1024)
    emulator.clear_log()

    data = await fetch(backend, file)
    assert hashlib.sha256(data).digest() == hashlib.sha256(content).digest()
    attempts = emulator.requests("GET", "/content$")
    assert [r.status for r in attempts] == [200, 206]
    assert attempts[0].fault is not None
    assert attempts[0].bytes_out + attempts[1].bytes_out == len(content)


async def test_restricted_content_maps_to_permission_denied(serve: Serve, connect: Connect) -> None:
    emulator, server = serve()
    _, item = seed_item(emulator, {"secret.pdf": b"classified"})
    emulator.restrict(emulator.bitstreams(item)[0][0], [ADMIN[0]])
    for credentials in (Credentials(*USER), Credentials()):
        backend = await connect(server, credentials)
        (file,) = await listing(backend, await walk(backend, "C", "Coll", "Item"))
        with pytest.raises(errors.PermissionDenied):
            await fetch(backend, file)
    statuses = [r.status for r in emulator.requests("GET", "/content$")]
    assert 403 in statuses and 401 in statuses
    admin = await connect(server)
    (file,) = await listing(admin, await walk(admin, "C", "Coll", "Item"))
    assert await fetch(admin, file) == b"classified"


async def test_missing_asset_file_is_an_io_error(serve: Serve, connect: Connect) -> None:
    emulator, server = serve()
    _, item = seed_item(emulator, {"lost.pdf": b"gone"})
    emulator.lose_asset(emulator.bitstreams(item)[0][0])
    backend = await connect(server)
    (file,) = await listing(backend, await walk(backend, "C", "Coll", "Item"))
    emulator.clear_log()
    with pytest.raises(errors.RemoteUnavailable):
        await fetch(backend, file)
    assert [r.status for r in emulator.requests()] == [500] * FAST_RETRY.attempts


# ---- uploads ------------------------------------------------------------------------------


async def test_create_file_makes_the_original_bundle_then_reuses_it(
    serve: Serve, connect: Connect, tmp_path: Path
) -> None:
    emulator, server = serve()
    _, item = seed_item(emulator)
    backend = await connect(server)
    entry = await walk(backend, "C", "Coll", "Item")
    emulator.clear_log()

    created = await backend.create_file(entry, "résumé.pdf", write(tmp_path, "a", b"%PDF-1 x"))
    assert created.name == "résumé.pdf"
    assert created.size == 8
    assert created.version == hashlib.md5(b"%PDF-1 x").hexdigest()
    assert emulator.bundle_names(item) == ["ORIGINAL"]
    (uuid, name) = emulator.bitstreams(item)[0]
    assert (name, emulator.content(uuid)) == ("résumé.pdf", b"%PDF-1 x")
    assert len(emulator.requests("POST", "/core/items/.*/bundles$")) == 1

    emulator.clear_log()
    await backend.create_file(entry, "second.txt", write(tmp_path, "b", b"2"))
    # the bundle is known now: one request for the second file
    assert [(r.method, r.status) for r in emulator.requests()] == [("POST", 201)]
    assert [n for _, n in emulator.bitstreams(item)] == ["résumé.pdf", "second.txt"]
    assert [f.name for f in await listing(backend, entry)] == ["résumé.pdf", "second.txt"]


async def test_lost_upload_answer_is_not_retried_blindly(
    serve: Serve, connect: Connect, tmp_path: Path
) -> None:
    emulator, server = serve()
    seed_item(emulator, {"existing.txt": b"e"})
    backend = await connect(server)
    entry = await walk(backend, "C", "Coll", "Item")
    emulator.plan_fault(method="POST", path="/core/bundles/.*/bitstreams$", reset_after=0)
    emulator.clear_log()

    with pytest.raises(errors.RemoteUnavailable):
        await backend.create_file(entry, "new.txt", write(tmp_path, "n", b"payload"))
    assert len(emulator.requests("POST", "/bitstreams$")) == 1
    # the server did store it; a listing (what the vfs checks) shows it exactly once
    names = [f.name for f in await listing(backend, entry)]
    assert names.count("new.txt") == 1


async def test_overwrite_keeps_name_position_and_metadata(
    serve: Serve, connect: Connect, tmp_path: Path
) -> None:
    emulator, server = serve()
    _, item = seed_item(emulator, {"a.txt": b"A", "b.txt": b"B", "c.txt": b"C"})
    old_uuid = emulator.bitstreams(item)[1][0]
    emulator.set_metadata(old_uuid, "dc.description", ["the B file"])
    backend = await connect(server)
    files = await listing(backend, await walk(backend, "C", "Coll", "Item"))
    emulator.clear_log()

    new = await backend.replace_file(files[1], write(tmp_path, "b2", b"B, version 2"))
    assert [n for _, n in emulator.bitstreams(item)] == ["a.txt", "b.txt", "c.txt"]
    new_uuid = emulator.bitstreams(item)[1][0]
    assert new_uuid != old_uuid and not emulator.exists(old_uuid)
    assert emulator.content(new_uuid) == b"B, version 2"
    assert emulator.metadata_of(new_uuid)["dc.description"] == ["the B file"]
    assert (new.name, new.size, new.extra["uuid"]) == ("b.txt", 12, new_uuid)
    assert new.version != files[1].version
    methods = [r.method for r in emulator.requests()]
    assert methods == ["GET", "POST", "DELETE", "PATCH"]

    # the last file needs no reordering
    emulator.clear_log()
    await backend.replace_file(files[2], write(tmp_path, "c2", b"C2"))
    assert [r.method for r in emulator.requests()] == ["GET", "POST", "DELETE"]
    assert [n for _, n in emulator.bitstreams(item)] == ["a.txt", "b.txt", "c.txt"]


async def test_overwriting_the_primary_file_keeps_it_primary(
    serve: Serve, connect: Connect, tmp_path: Path
) -> None:
    """Upload-and-swap deletes the old bitstream, which unsets the bundle's primary
    (BundleServiceImpl.removeBitstream): the new one is made primary again, as 10.0's PUT
    …/content keeps it. The listing says which file is primary at no extra request."""
    emulator, server = serve()
    _, item = seed_item(emulator, {"a.txt": b"A", "b.txt": b"B"})
    emulator.set_primary(item, emulator.bitstreams(item)[1][0])
    backend = await connect(server)
    files = await listing(backend, await walk(backend, "C", "Coll", "Item"))
    assert [bool(f.extra.get("primary")) for f in files] == [False, True]
    emulator.clear_log()

    new = await backend.replace_file(files[1], write(tmp_path, "b2", b"B, version 2"))
    assert emulator.primary_of(item) == new.extra["uuid"] != files[1].extra["uuid"]
    assert new.extra.get("primary")
    assert len(emulator.requests("POST", "/primaryBitstream$")) == 1
    # a file that is not primary does not become it
    await backend.replace_file(files[0], write(tmp_path, "a2", b"A2"))
    assert emulator.primary_of(item) == new.extra["uuid"]


async def test_making_the_new_copy_primary_again_survives_a_lost_answer(
    serve: Serve, opened: list[DSpace7Backend], tmp_path: Path
) -> None:
    """The POST that makes the swapped-in bitstream primary again lands but its answer is
    lost: sent again it is a 400 (the bundle has a primary), so the PUT replaces it — the new
    copy is primary once, and the overwrite succeeds."""
    emulator, server = serve()
    _, item = seed_item(emulator, {"a.txt": b"A"})
    emulator.set_primary(item, emulator.bitstreams(item)[0][0])
    backend = await short_timeout(server, opened)
    (file,) = await listing(backend, await walk(backend, "C", "Coll", "Item"))
    emulator.plan_fault(method="POST", path="/primaryBitstream$", reset_after=0)
    new = await backend.replace_file(file, write(tmp_path, "a2", b"A2"))
    assert emulator.primary_of(item) == new.extra["uuid"]
    assert [n for _, n in emulator.bitstreams(item)] == ["a.txt"]
    assert len(emulator.requests("PUT", "/primaryBitstream$")) == 1  # the repeat was a PUT


async def test_overwrite_whose_upload_answer_is_lost_leaves_one_copy(
    serve: Serve, connect: Connect, tmp_path: Path
) -> None:
    emulator, server = serve()
    _, item = seed_item(emulator, {"a.txt": b"A", "b.txt": b"B", "c.txt": b"C"})
    old_uuid = emulator.bitstreams(item)[1][0]
    backend = await connect(server)
    files = await listing(backend, await walk(backend, "C", "Coll", "Item"))
    # the server stores the upload, then the connection drops before the answer
    emulator.plan_fault(method="POST", path="/core/bundles/.*/bitstreams$", reset_after=0)
    emulator.clear_log()

    new = await backend.replace_file(files[1], write(tmp_path, "b2", b"B, version 2"))
    assert len(emulator.requests("POST", "/bitstreams$")) == 1  # not sent twice
    assert [n for _, n in emulator.bitstreams(item)] == ["a.txt", "b.txt", "c.txt"]
    new_uuid = emulator.bitstreams(item)[1][0]
    assert not emulator.exists(old_uuid) and new.extra["uuid"] == new_uuid
    assert emulator.content(new_uuid) == b"B, version 2"


# ---- recovery of every write from faults (issue 18.3) --------------------------------------

#: the client's request timeout in the fault tests below: a held request outlasts it
SHORT = 0.5


async def short_timeout(
    server: EmulatorServer, opened: list[DSpace7Backend], user: tuple[str, str] = ADMIN
) -> DSpace7Backend:
    """A backend whose requests time out after ``SHORT`` seconds (a lost answer is then looked
    for during ``2 * SHORT``)."""
    http = HttpClient(server.url, retry=FAST_RETRY, limits=Limits(timeout=SHORT))
    backend = DSpace7Backend(http, Credentials(*user))
    opened.append(backend)
    await backend.connect()
    return backend


@pytest.fixture
async def opened() -> AsyncIterator[list[DSpace7Backend]]:
    backends: list[DSpace7Backend] = []
    yield backends
    for backend in backends:
        await backend.aclose()


async def test_overwrite_whose_upload_is_held_past_the_timeout_is_not_sent_twice(
    serve: Serve, opened: list[DSpace7Backend], tmp_path: Path
) -> None:
    emulator, server = serve()
    _, item = seed_item(emulator, {"a.txt": b"A", "b.txt": b"B", "c.txt": b"C"})
    backend = await short_timeout(server, opened)
    files = await listing(backend, await walk(backend, "C", "Coll", "Item"))
    # a proxy holds the upload longer than the client waits; the server stores it later
    emulator.plan_fault(method="POST", path="/core/bundles/.*/bitstreams$", hold=SHORT * 1.8)
    emulator.clear_log()

    new = await backend.replace_file(files[1], write(tmp_path, "b2", b"B, version 2"))
    assert len(emulator.requests("POST", "/bitstreams$")) == 1  # looked for, not sent again
    assert [n for _, n in emulator.bitstreams(item)] == ["a.txt", "b.txt", "c.txt"]
    assert emulator.bitstreams(item)[1][0] == new.extra["uuid"]
    assert emulator.content(new.extra["uuid"]) == b"B, version 2"

    # a gateway's 502 (the server never saw it): looked for, then sent again
    emulator.plan_fault(method="POST", path="/core/bundles/.*/bitstreams$", status=502)
    emulator.clear_log()
    newer = await backend.replace_file(new, write(tmp_path, "b3", b"B, version 3"))
    assert len(emulator.requests("POST", "/bitstreams$")) == 2
    assert [n for _, n in emulator.bitstreams(item)] == ["a.txt", "b.txt", "c.txt"]
    assert emulator.bitstreams(item)[1][0] == newer.extra["uuid"]
    assert emulator.content(newer.extra["uuid"]) == b"B, version 3"


async def test_overwrite_whose_reordering_answer_is_lost_succeeds_in_order(
    serve: Serve, opened: list[DSpace7Backend], tmp_path: Path
) -> None:
    emulator, server = serve()
    _, item = seed_item(emulator, {"a.txt": b"A", "b.txt": b"B", "c.txt": b"C"})
    backend = await short_timeout(server, opened)
    files = await listing(backend, await walk(backend, "C", "Coll", "Item"))
    bundle = r"/core/bundles/[^/]+$"

    # the move was made, its answer lost: the order read again says so, no second move
    emulator.plan_fault(method="PATCH", path=bundle, reset_after=0)
    new = await backend.replace_file(files[0], write(tmp_path, "a2", b"A2"))
    assert [n for _, n in emulator.bitstreams(item)] == ["a.txt", "b.txt", "c.txt"]
    assert emulator.bitstreams(item)[0][0] == new.extra["uuid"]
    assert len(emulator.requests("PATCH", bundle)) == 1

    # the move never reached the server (502): moved after the order was read again
    emulator.plan_fault(method="PATCH", path=bundle, status=502)
    emulator.clear_log()
    new = await backend.replace_file(new, write(tmp_path, "a3", b"A3"))
    assert [n for _, n in emulator.bitstreams(item)] == ["a.txt", "b.txt", "c.txt"]
    assert emulator.bitstreams(item)[0][0] == new.extra["uuid"]
    assert len(emulator.requests("PATCH", bundle)) == 2

    # held past the timeout, it lands late: waited for, not repeated (that would move c.txt)
    emulator.plan_fault(method="PATCH", path=bundle, hold=SHORT * 1.8)
    emulator.clear_log()
    new = await backend.replace_file(new, write(tmp_path, "a4", b"A4"))
    assert [n for _, n in emulator.bitstreams(item)] == ["a.txt", "b.txt", "c.txt"]
    assert len(emulator.requests("PATCH", bundle)) == 1

    # no move gets through at all: the content is stored all the same, and docfs follows it
    emulator.plan_fault(method="PATCH", path=bundle, status=500, times=None)
    new = await backend.replace_file(new, write(tmp_path, "a5", b"A5"))
    emulator.clear_faults()
    assert emulator.content(new.extra["uuid"]) == b"A5"
    assert sorted(n or "" for _, n in emulator.bitstreams(item)) == ["a.txt", "b.txt", "c.txt"]
    assert (await backend.stat(new)).size == 2


async def test_overwrite_whose_delete_answers_are_lost_keeps_the_new_copy(
    serve: Serve, opened: list[DSpace7Backend], tmp_path: Path
) -> None:
    emulator, server = serve()
    _, item = seed_item(emulator, {"a.txt": b"A", "b.txt": b"B"})
    old_uuid = emulator.bitstreams(item)[0][0]
    backend = await short_timeout(server, opened)
    files = await listing(backend, await walk(backend, "C", "Coll", "Item"))
    # the DELETE is done but its answer lost, and every retry fails: the old copy is gone,
    # so the new one is the file now (taking it away too would lose the file)
    emulator.plan_fault(method="DELETE", path="/core/bitstreams/", reset_after=0)
    emulator.plan_fault(method="DELETE", path="/core/bitstreams/", status=500, times=None)

    new = await backend.replace_file(files[0], write(tmp_path, "a2", b"A2"))
    emulator.clear_faults()
    assert not emulator.exists(old_uuid)
    assert emulator.bitstreams(item) == [
        (new.extra["uuid"], "a.txt"),
        (files[1].extra["uuid"], "b.txt"),
    ]
    assert emulator.content(new.extra["uuid"]) == b"A2"


async def test_rename_and_metadata_changes_survive_lost_answers(
    serve: Serve, opened: list[DSpace7Backend]
) -> None:
    emulator, server = serve()
    _, item = seed_item(emulator, {"a.txt": b"A"})
    backend = await short_timeout(server, opened)
    (file,) = await listing(backend, await walk(backend, "C", "Coll", "Item"))
    uuid = file.extra["uuid"]
    patch = r"/core/bitstreams/[^/]+$"

    # a rename is a replace of dc.title: safe to send again after a lost answer or a timeout
    emulator.plan_fault(method="PATCH", path=patch, reset_after=0)
    file = await backend.rename(file, await walk(backend, "C", "Coll", "Item"), "b.txt")
    assert emulator.bitstreams(item) == [(uuid, "b.txt")] and file.name == "b.txt"
    emulator.plan_fault(method="PATCH", path=patch, delay=SHORT * 1.5)
    file = await backend.rename(file, await walk(backend, "C", "Coll", "Item"), "c.txt")
    assert emulator.bitstreams(item) == [(uuid, "c.txt")] and file.name == "c.txt"

    # an add appends: after a lost answer the file is read again, and the add not repeated
    emulator.plan_fault(method="PATCH", path=patch, reset_after=0)
    emulator.clear_log()
    file = await backend.set_meta(file, "dc.description", "once")
    assert emulator.metadata_of(uuid)["dc.description"] == ["once"]
    assert len(emulator.requests("PATCH", patch)) == 1
    assert file.meta["dc.description"] == "once"
    # held past the timeout, it lands late: waited for, not sent twice
    emulator.plan_fault(method="PATCH", path=patch, hold=SHORT * 1.8)
    emulator.clear_log()
    file = await backend.set_meta(file, "dc.subject", "held")
    assert emulator.metadata_of(uuid)["dc.subject"] == ["held"]
    assert len(emulator.requests("PATCH", patch)) == 1
    # never processed (502): not there when read again, so it is sent again
    emulator.plan_fault(method="PATCH", path=patch, status=502)
    emulator.clear_log()
    file = await backend.set_meta(file, "dc.rights", "sent twice")
    assert emulator.metadata_of(uuid)["dc.rights"] == ["sent twice"]
    assert len(emulator.requests("PATCH", patch)) == 2
    # a remove whose answer is lost: gone when read again, so no 422 from a second remove
    emulator.plan_fault(method="PATCH", path=patch, reset_after=0)
    file = await backend.set_meta(file, "dc.rights", None)
    assert "dc.rights" not in emulator.metadata_of(uuid) and "dc.rights" not in file.meta


async def test_a_submitters_new_item_survives_lost_answers(
    serve: Serve, opened: list[DSpace7Backend], tmp_path: Path
) -> None:
    """Workspace item, its metadata, its ORIGINAL bundle and its deposit: each write is
    recovered after a lost answer, and nothing is made twice or left behind."""
    emulator, server = serve()
    community = emulator.add_community("C")
    collection = emulator.add_collection("Coll", community)
    emulator.grant_role(USER[0], "submitter")
    backend = await short_timeout(server, opened, USER)
    parent = await walk(backend, "C", "Coll")

    # the workspace item is made, its answer lost: found among the user's, not made again
    emulator.plan_fault(method="POST", path="/submission/workspaceitems$", reset_after=0)
    first = await backend.mkdir(parent, "First")
    assert len(emulator.requests("POST", "/submission/workspaceitems$")) == 1
    assert emulator.workspace_items() == [first.extra["uuid"]]
    # its metadata patch sets whole fields (repeatable): sent again, the title is there once
    emulator.plan_fault(method="PATCH", path="/submission/workspaceitems/", reset_after=0)
    second = await backend.mkdir(parent, "Second")
    assert len(emulator.requests("PATCH", "/submission/workspaceitems/")) == 3
    assert emulator.metadata_of(second.extra["uuid"])["dc.title"] == ["Second"]
    assert sorted(emulator.workspace_items()) == sorted([first.extra["uuid"], second.extra["uuid"]])

    # the ORIGINAL bundle's creation is held past the timeout: waited for, not failed
    emulator.plan_fault(method="POST", path="/core/items/[^/]+/bundles$", hold=SHORT * 1.8)
    await backend.create_file(first, "a.txt", write(tmp_path, "a", b"A"))
    assert emulator.bundle_names(first.extra["uuid"]) == ["ORIGINAL"]
    assert [n for _, n in emulator.bitstreams(first.extra["uuid"])] == ["a.txt"]
    await backend.create_file(second, "b.txt", write(tmp_path, "b", b"B"))

    # a deposit is held past the timeout and goes through late: the workspace item that is
    # gone tells, and it is not sent again
    emulator.plan_fault(method="POST", path="/workflow/workflowitems$", hold=SHORT * 1.8)
    await backend.settle()
    assert backend.held_back() == []
    assert len(emulator.requests("POST", "/workflow/workflowitems$")) == 2
    assert emulator.workspace_items() == []
    assert sorted(emulator.items_in(collection)) == sorted(
        [first.extra["uuid"], second.extra["uuid"]]
    )


async def test_move_between_bundles_whose_answer_is_lost_is_no_error(
    serve: Serve, connect: Connect
) -> None:
    """The PUT is retried after a lost answer, and the server refuses the second one: "The
    provided bitstream is already in the target bundle" (400). The move is done all the same."""
    emulator, server = serve()
    _, item = seed_item(emulator, {"a.txt": b"A"})
    emulator.add_bundle(item, "EXTRA")
    backend = await connect(server, other_bundles=True)
    entry = await walk(backend, "C", "Coll", "Item")
    (file,) = [e for e in await listing(backend, entry) if not e.is_dir]
    extra = await child(backend, entry, "EXTRA")
    emulator.plan_fault(method="PUT", path="/core/bitstreams/[^/]+/bundle$", reset_after=0)

    moved = await backend.rename(file, extra, "a.txt")
    assert emulator.bitstreams(item, "EXTRA") == [(file.extra["uuid"], "a.txt")]
    assert moved.extra["bundle_name"] == "EXTRA"
    assert [r.status for r in emulator.requests("PUT", "/bundle$")] == [200, 400]


async def test_put_content_on_10_survives_a_lost_answer_and_a_gateway_error(
    serve: Serve, opened: list[DSpace7Backend], tmp_path: Path
) -> None:
    emulator, server = serve(version="10.0", replace_bitstream_enabled=True)
    _, item = seed_item(emulator, {"a.txt": b"A", "b.txt": b"B"})
    backend = await short_timeout(server, opened)
    files = await listing(backend, await walk(backend, "C", "Coll", "Item"))
    put = CONTENT_PATH

    # replaced, the answer lost: the old uuid is gone, the new one with these bytes is it
    emulator.plan_fault(method="PUT", path=put, reset_after=0)
    new = await backend.replace_file(files[0], write(tmp_path, "a2", b"A2"))
    assert len(emulator.requests("PUT", put)) == 1
    assert emulator.bitstreams(item)[0] == (new.extra["uuid"], "a.txt")
    assert emulator.content(new.extra["uuid"]) == b"A2"

    # never processed (502): the old uuid is still there, so it is sent again
    emulator.plan_fault(method="PUT", path=put, status=502)
    emulator.clear_log()
    newer = await backend.replace_file(new, write(tmp_path, "a3", b"A3"))
    assert len(emulator.requests("PUT", put)) == 2
    assert [n for _, n in emulator.bitstreams(item)] == ["a.txt", "b.txt"]
    assert emulator.content(newer.extra["uuid"]) == b"A3"


async def test_overwrite_on_10_uses_put_content_and_keeps_the_name(
    serve: Serve, connect: Connect, tmp_path: Path
) -> None:
    """Item 2 of issue 17: BitstreamServiceImpl.replace with replaceName=false keeps the old
    name only when the uploaded filename has the same extension. The staging file is named
    "42" or "<job>.data": sent as the filename, report.pdf became "report." on a real server."""
    emulator, server = serve(version="10.0", replace_bitstream_enabled=True)
    _, item = seed_item(emulator, {"report.pdf": b"A", "Makefile": b"all:", "b.txt": b"B"})
    backend = await connect(server)
    files = await listing(backend, await walk(backend, "C", "Coll", "Item"))
    emulator.clear_log()
    new = await backend.replace_file(files[0], write(tmp_path, "42", b"A2"))
    await backend.replace_file(files[1], write(tmp_path, "job.data", b"all: docs"))
    assert [(r.method, r.status) for r in emulator.requests()] == [("PUT", 201)] * 2
    assert [n for _, n in emulator.bitstreams(item)] == ["report.pdf", "Makefile", "b.txt"]
    assert new.name == "report.pdf"
    assert emulator.content(new.extra["uuid"]) == b"A2"


async def test_overwrite_on_10_keeps_a_quote_bearing_name_and_copies_nothing(
    serve: Serve, connect: Connect, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Spring reads the part's filename with ``ContentDisposition.parse``, which undoes the
    quoted pairs ``\\"`` and ``\\\\`` but no percent encoding: the old encoder sent a quote
    as ``%22``, so ``notes.t"x`` came back as ``notes.t%22x`` (another extension). The
    upload streams the staging file as it is: no temporary copy beside it or in /tmp."""

    def no_temp_files(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the upload made a temporary copy")

    monkeypatch.setattr("tempfile.mkstemp", no_temp_files)
    emulator, server = serve(version="10.0", replace_bitstream_enabled=True)
    _, item = seed_item(emulator, {'notes.t"x': b"A", "back\\slash.txt": b"B"})
    backend = await connect(server)
    files = await listing(backend, await walk(backend, "C", "Coll", "Item"))
    staged = tmp_path / "staged"
    staged.mkdir()
    new = await backend.replace_file(files[0], write(staged, "42", b"A2"))
    await backend.replace_file(files[1], write(staged, "43", b"B2"))
    assert [n for _, n in emulator.bitstreams(item)] == ['notes.t"x', "back\\slash.txt"]
    assert emulator.content(new.extra["uuid"]) == b"A2"
    assert sorted(os.listdir(staged)) == ["42", "43"]


async def test_overwrite_on_a_default_10_falls_back_after_one_400(
    serve: Serve, connect: Connect, tmp_path: Path
) -> None:
    """Item 1 of issue 17: with replace-bitstream.enabled=false (the default) DSpace 10
    answers PUT …/content with 400 ("Bitstream replacement is not enabled"), not 405. The
    backend falls back to upload-and-swap, and asks only once per mount."""
    emulator, server = serve(version="10.0")
    _, item = seed_item(emulator, {"a.txt": b"A", "b.txt": b"B"})
    backend = await connect(server)
    files = await listing(backend, await walk(backend, "C", "Coll", "Item"))
    replaced = await backend.replace_file(files[0], write(tmp_path, "a3", b"A3"))
    again = await backend.replace_file(replaced, write(tmp_path, "a4", b"A4"))
    other = await backend.replace_file(files[1], write(tmp_path, "b2", b"B2"))
    assert [r.status for r in emulator.requests("PUT", "/content$")] == [400]
    assert emulator.content(again.extra["uuid"]) == b"A4"
    assert emulator.content(other.extra["uuid"]) == b"B2"
    assert emulator.bitstreams(item) == [
        (again.extra["uuid"], "a.txt"),
        (other.extra["uuid"], "b.txt"),
    ]


async def test_upload_over_the_server_limit_is_too_large(
    serve: Serve, connect: Connect, tmp_path: Path
) -> None:
    emulator, server = serve(max_upload_bytes=1024)
    seed_item(emulator)
    backend = await connect(server)
    entry = await walk(backend, "C", "Coll", "Item")
    with pytest.raises(errors.TooLarge):
        await backend.create_file(entry, "big.bin", write(tmp_path, "big", b"x" * 4096))


# ---- directories --------------------------------------------------------------------------


async def test_mkdir_makes_communities_collections_and_items_as_admin(
    serve: Serve, connect: Connect
) -> None:
    emulator, server = serve()
    backend = await connect(server)
    community = await backend.mkdir(await backend.root(), "New community")
    collection = await backend.mkdir(community, "New collection")
    item = await backend.mkdir(collection, "New item")
    assert (community.extra["type"], collection.extra["type"]) == ("community", "collection")
    assert emulator.object_type(item.extra["uuid"]) == "item"
    assert emulator.item_state(item.extra["uuid"])["in_archive"]
    assert len(emulator.requests("POST", f"{API}/core/items$")) == 1
    assert [e.name for e in await listing(backend, collection)] == ["New item"]
    assert Op.CREATE_FILE in item.ops


async def test_mkdir_item_as_non_admin_is_a_workspace_item_until_settled(
    serve: Serve, connect: Connect, tmp_path: Path
) -> None:
    """Item 3 of issue 17: a submitter's new item is a workspace item, listed at once, that
    takes files and is deposited (with them) on ``settle``; DSpace refuses an empty deposit
    (webui.submit.upload.required, 422 error.validation.filerequired)."""
    emulator, server = serve()
    community = emulator.add_community("C")
    collection = emulator.add_collection("Coll", community)
    emulator.grant_role(USER[0], "submitter")
    backend = await connect(server, Credentials(*USER))
    parent = await walk(backend, "C", "Coll")

    first = await backend.mkdir(parent, "Mine")
    second = await backend.mkdir(parent, "Mine too")
    assert emulator.metadata_of(first.extra["uuid"])["dc.title"] == ["Mine"]
    assert emulator.item_state(first.extra["uuid"])["in_workspace"]
    # the admin-only call is tried once; the 403 is remembered
    assert [r.status for r in emulator.requests("POST", f"{API}/core/items$")] == [403]
    assert emulator.requests("POST", "/workflow/workflowitems$") == []
    assert sorted(e.name for e in await listing(backend, parent)) == ["Mine", "Mine too"]
    assert second.name == "Mine too"
    for n, item in enumerate((first, second)):
        for name in ("a.txt", "b.txt"):
            await backend.create_file(item, name, write(tmp_path, f"{n}{name}", name.encode()))
    assert len(backend.held_back()) == 2

    await backend.settle()
    assert [r.status for r in emulator.requests("POST", "/workflow/workflowitems$")] == [201] * 2
    assert backend.held_back() == []
    for item in (first, second):
        assert emulator.item_state(item.extra["uuid"])["in_archive"]
        assert [n for _, n in emulator.bitstreams(item.extra["uuid"])] == ["a.txt", "b.txt"]
    assert sorted(emulator.items_in(collection)) == sorted(
        [first.extra["uuid"], second.extra["uuid"]]
    )
    assert sorted(e.name for e in await listing(backend, parent)) == ["Mine", "Mine too"]


async def test_an_empty_submission_is_held_back_and_said_so(
    serve: Serve, connect: Connect, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    emulator, server = serve()
    community = emulator.add_community("C")
    emulator.add_collection("Coll", community)
    emulator.grant_role(USER[0], "submitter")
    backend = await connect(server, Credentials(*USER))
    parent = await walk(backend, "C", "Coll")
    empty = await backend.mkdir(parent, "Empty")  # the old code deposited here: 422, EINVAL
    await backend.settle()
    await backend.settle()
    assert [r.status for r in emulator.requests("POST", "/workflow/workflowitems$")] == [422] * 2
    (held,) = backend.held_back()
    assert "Empty" in held and "requires at least one file" in held
    refusals = [r for r in caplog.records if "cannot deposit the new item Empty" in r.message]
    assert len(refusals) == 1  # said once, not at every try
    assert [e.name for e in await listing(backend, parent)] == ["Empty"]
    # a file in it, and the quiet period alone deposits it
    backend.deposit_after = 0.1
    async with trio.open_nursery() as nursery:
        nursery.start_soon(backend.run)
        await backend.create_file(empty, "x.txt", write(tmp_path, "x", b"x"))
        with trio.fail_after(10):
            while backend.held_back():
                await trio.sleep(0.02)
        nursery.cancel_scope.cancel()
    assert emulator.item_state(empty.extra["uuid"])["in_archive"]
    statuses = [r.status for r in emulator.requests("POST", "/workflow/workflowitems$")]
    assert statuses == [422, 422, 201]


async def test_a_quiet_submission_is_deposited_by_the_backend_task(
    serve: Serve, connect: Connect, tmp_path: Path
) -> None:
    emulator, server = serve()
    community = emulator.add_community("C")
    emulator.add_collection("Coll", community)
    emulator.grant_role(USER[0], "submitter")
    backend = await connect(server, Credentials(*USER))
    backend.deposit_after = 0.2
    parent = await walk(backend, "C", "Coll")
    async with trio.open_nursery() as nursery:
        nursery.start_soon(backend.run)
        item = await backend.mkdir(parent, "Quiet")
        await backend.create_file(item, "x.txt", write(tmp_path, "x", b"x"))
        with trio.fail_after(10):
            while backend.held_back():
                await trio.sleep(0.02)
        nursery.cancel_scope.cancel()
    assert emulator.item_state(item.extra["uuid"])["in_archive"]


async def test_failed_submission_setup_leaves_nothing_behind(
    serve: Serve, connect: Connect
) -> None:
    emulator, server = serve()
    community = emulator.add_community("C")
    emulator.add_collection("Coll", community)
    emulator.grant_role(USER[0], "submitter")
    backend = await connect(server, Credentials(*USER))
    parent = await walk(backend, "C", "Coll")
    emulator.plan_fault(method="PATCH", path="/submission/workspaceitems/", status=422)
    with pytest.raises(errors.InvalidArgument):
        await backend.mkdir(parent, "Refused")
    assert [r.status for r in emulator.requests("DELETE", "/submission/")] == [204]
    assert emulator.find("Refused") == []


async def test_rmdir_of_a_submission_removes_the_workspace_item(
    serve: Serve, connect: Connect
) -> None:
    emulator, server = serve()
    community = emulator.add_community("C")
    emulator.add_collection("Coll", community)
    emulator.grant_role(USER[0], "submitter")
    backend = await connect(server, Credentials(*USER))
    parent = await walk(backend, "C", "Coll")
    item = await backend.mkdir(parent, "Mistake")
    await backend.remove(item)
    assert not emulator.exists(item.extra["uuid"])
    assert backend.held_back() == []
    assert await listing(backend, parent) == []


async def test_item_in_review_is_created_but_not_listed(
    serve: Serve, connect: Connect, tmp_path: Path
) -> None:
    emulator, server = serve()
    community = emulator.add_community("C")
    emulator.add_collection("Reviewed", community, workflow=True)
    emulator.grant_role(USER[0], "submitter")
    backend = await connect(server, Credentials(*USER))
    parent = await walk(backend, "C", "Reviewed")
    entry = await backend.mkdir(parent, "Waiting")
    await backend.create_file(entry, "x.txt", write(tmp_path, "x", b"x"))
    await backend.settle()
    assert emulator.item_state(entry.extra["uuid"])["in_workflow"]
    assert await listing(backend, parent) == []
    emulator.approve_workflow(entry.extra["uuid"])
    assert [e.name for e in await listing(backend, parent)] == ["Waiting"]


async def test_new_item_stays_visible_until_the_index_has_it(
    serve: Serve, connect: Connect
) -> None:
    emulator, server = serve(index_delay=3600)
    community = emulator.add_community("C")
    emulator.add_collection("Coll", community)
    backend = await connect(server)
    parent = await walk(backend, "C", "Coll")
    created = await backend.mkdir(parent, "Fresh")
    emulator.clear_log()
    assert [e.name for e in await listing(backend, parent)] == ["Fresh"]
    assert len(emulator.requests("GET", "/core/items/")) == 1  # the one re-check
    emulator.reindex()
    emulator.clear_log()
    assert [e.id for e in await listing(backend, parent)] == [created.id]
    assert not emulator.requests("GET", "/core/items/")  # indexed now: no re-check
    emulator.delete(created.extra["uuid"])
    assert await listing(backend, parent) == []


# ---- rename, remove, metadata -------------------------------------------------------------


async def test_rename_patches_the_title_and_moves_only_within_an_item(
    serve: Serve, connect: Connect
) -> None:
    emulator, server = serve()
    collection, item = seed_item(emulator, {"a.txt": b"A"})
    other = emulator.add_item(collection, "Other item")
    backend = await connect(server, other_bundles=True)
    entry = await walk(backend, "C", "Coll", "Item")
    (file,) = [e for e in await listing(backend, entry) if not e.is_dir]

    renamed = await backend.rename(file, entry, "b.txt")
    assert renamed.name == "b.txt" and renamed.id == file.id
    assert emulator.bitstreams(item) == [(file.extra["uuid"], "b.txt")]
    assert len(emulator.requests("PATCH", "/core/bitstreams/")) == 1

    item_entry = await backend.rename(entry, await walk(backend, "C", "Coll"), "Item 2")
    assert emulator.name_of(item) == "Item 2"
    assert item_entry.name == "Item 2"

    target = await walk(backend, "C", "Coll", "Other item")
    with pytest.raises(errors.CrossDevice):
        await backend.rename(renamed, target, "b.txt")
    assert emulator.bitstreams(other) == []

    emulator.add_bundle(item, "EXTRA")
    extra = await child(backend, item_entry, "EXTRA")
    moved = await backend.rename(renamed, extra, "c.txt")
    assert emulator.bitstreams(item, "EXTRA") == [(file.extra["uuid"], "c.txt")]
    assert emulator.bitstreams(item) == []
    assert moved.extra["bundle_name"] == "EXTRA"


async def test_remove_files_and_empty_directories_only(serve: Serve, connect: Connect) -> None:
    emulator, server = serve()
    collection, item = seed_item(emulator, {"a.txt": b"A"})
    backend = await connect(server)
    coll_entry = await walk(backend, "C", "Coll")
    item_entry = await child(backend, coll_entry, "Item")
    (file,) = await listing(backend, item_entry)

    with pytest.raises(errors.NotEmpty):
        await backend.remove(item_entry)
    with pytest.raises(errors.NotEmpty):
        await backend.remove(coll_entry)
    assert emulator.exists(item)
    await backend.remove(file)
    assert emulator.bitstreams(item) == []
    await backend.remove(file)  # already gone: the wanted state holds
    await backend.remove(item_entry)
    assert not emulator.exists(item)
    await backend.remove(coll_entry)
    assert not emulator.exists(collection)


async def test_set_meta_adds_replaces_and_removes_fields(serve: Serve, connect: Connect) -> None:
    emulator, server = serve()
    _, item = seed_item(emulator, {"a.txt": b"A"})
    backend = await connect(server)
    item_entry = await walk(backend, "C", "Coll", "Item")
    (file,) = await listing(backend, item_entry)
    uuid = file.extra["uuid"]

    file = await backend.set_meta(file, "dc.description", "first")
    assert emulator.metadata_of(uuid)["dc.description"] == ["first"]
    file = await backend.set_meta(file, "dc.description", "one\ntwo")
    assert emulator.metadata_of(uuid)["dc.description"] == ["one", "two"]
    assert file.meta["dc.description"] == "one\ntwo"
    file = await backend.set_meta(file, "dc.description", None)
    assert "dc.description" not in emulator.metadata_of(uuid)
    with pytest.raises(errors.NoAttribute):
        await backend.set_meta(file, "dc.description", None)
    with pytest.raises(errors.NotSupported):
        await backend.set_meta(file, "checksum.md5", "0" * 32)
    with pytest.raises(errors.InvalidArgument):
        await backend.set_meta(file, "not a field", "x")

    item_entry = await backend.set_meta(item_entry, "dc.subject", "physics")
    assert emulator.metadata_of(item)["dc.subject"] == ["physics"]
    assert item_entry.meta["dc.subject"] == "physics"


async def test_every_value_of_a_field_reaches_a_released_server(
    serve: Serve, opened: list[DSpace7Backend], tmp_path: Path
) -> None:
    """A released server takes one value per PATCH operation (DSpace#12419): several values
    of one field, new or replacing, all arrive, in order and with their languages — from an
    xattr, a metadata file's change, and a deposit package applied a second time (a resumed
    ``docfs deposit``, which once left the item with its first values only); a lost answer
    does not add them twice."""
    emulator, server = serve()
    _, item = seed_item(emulator, {"a.txt": b"A"})
    backend = await short_timeout(server, opened)
    item_entry = await walk(backend, "C", "Coll", "Item")
    patch = r"/core/items/[^/]+$"

    emulator.plan_fault(method="PATCH", path=patch, reset_after=0)
    emulator.clear_log()
    item_entry = await backend.set_meta(item_entry, "dc.subject", "one\ntwo\nthree")
    assert emulator.metadata_of(item)["dc.subject"] == ["one", "two", "three"]
    assert len(emulator.requests("PATCH", patch)) == 1
    item_entry = await backend.set_meta(item_entry, "dc.subject", "four\nfive")
    assert emulator.metadata_of(item)["dc.subject"] == ["four", "five"]
    item_entry = await backend.update_meta(
        item_entry, {"dc.subject": ["six", "seven"], "dc.rights": ["r1", "r2"]}
    )
    assert emulator.metadata_of(item)["dc.subject"] == ["six", "seven"]
    assert emulator.metadata_of(item)["dc.rights"] == ["r1", "r2"]

    package = write(
        tmp_path,
        "dublin_core.xml",
        b'<dublin_core><dcvalue element="contributor" qualifier="author">Author, A</dcvalue>'
        b'<dcvalue element="contributor" qualifier="author">Author, B</dcvalue>'
        b'<dcvalue element="title" qualifier="none" language="fr">Titre</dcvalue>'
        b'<dcvalue element="title" qualifier="none">Title</dcvalue></dublin_core>',
    )
    for _ in range(2):  # the second time every key exists already
        item_entry = await backend.apply_package_file(item_entry, "dublin_core.xml", package)
        assert emulator.metadata_of(item)["dc.contributor.author"] == ["Author, A", "Author, B"]
        assert emulator.metadata_of(item)["dc.title"] == ["Titre", "Title"]
        # an archived item is public: its metadata with the languages, as a client reads it
        titles = httpx.get(f"{server.url}{API}/core/items/{item}").json()["metadata"]["dc.title"]
        assert [t.get("language") for t in titles] == ["fr", None]


# ---- authentication, CSRF, permissions, rate limits ----------------------------------------


async def test_bad_credentials_fail_to_connect(serve: Serve, connect: Connect) -> None:
    _, server = serve()
    with pytest.raises(errors.AuthenticationFailed):
        await connect(server, Credentials(ADMIN[0], "wrong password"))


async def test_a_refused_login_says_what_to_fix(serve: Serve, connect: Connect) -> None:
    _, server = serve()
    with pytest.raises(errors.AuthenticationFailed) as refused:
        await connect(server, Credentials(ADMIN[0], "wrong password"))
    assert str(refused.value) == (
        f"DSpace refused the login of {ADMIN[0]}: wrong e-mail or password (HTTP 401)"
    )


async def test_token_is_refreshed_before_expiry_and_renewed_after_revocation(
    serve: Serve,
    connect: Connect,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    emulator, server = serve(jwt_lifetime=600)
    _, item = seed_item(emulator, {"a.txt": b"A"})
    emulator.restrict(item, [])  # administrators only
    backend = await connect(server)
    entry = await walk(backend, "C", "Coll", "Item")
    first = backend.session._jwt
    assert first is not None
    expires = jwt_expiry(first)
    assert expires is not None
    emulator.clear_log()

    # inside the refresh margin (the last quarter of the lifetime), not yet expired: the
    # backend's clock is moved there, the server's is not, so no real time has to pass
    ahead = expires - time.time() - 60

    class Later:
        @staticmethod
        def time() -> float:
            return time.time() + ahead

    monkeypatch.setattr("docfs.backends.dspace7.session.time", Later)
    assert (await backend.stat(entry)).name == "Item"
    logins = emulator.requests("POST", "/authn/login$")
    assert len(logins) == 1 and logins[0].status == 200
    refreshed = backend.session._jwt != first
    assert refreshed
    assert logins[0].bytes_in == 0  # a refresh carries no password, only the token

    # every token revoked: a revoked token counts as anonymous, so the restricted item
    # answers 401 and the backend logs in again with the password
    emulator.expire_sessions()
    emulator.clear_log()
    assert (await backend.stat(entry)).name == "Item"
    statuses = [(r.method, r.status) for r in emulator.requests()]
    assert statuses == [("GET", 401), ("POST", 200), ("GET", 200)]
    assert emulator.requests("POST")[0].bytes_in > 0  # this time with the password


async def test_token_revoked_before_an_upload_is_renewed_without_an_error(
    serve: Serve, connect: Connect, tmp_path: Path
) -> None:
    emulator, server = serve()
    _, item = seed_item(emulator, {"a.txt": b"A"})
    backend = await connect(server)
    entry = await walk(backend, "C", "Coll", "Item")
    await listing(backend, entry)
    emulator.expire_sessions()
    emulator.clear_log()
    await backend.create_file(entry, "b.txt", write(tmp_path, "b", b"B"))
    # a 401 means the server did not take the upload: sending it again is safe
    assert [r.status for r in emulator.requests("POST", "/bitstreams$")] == [401, 201]
    assert [n for _, n in emulator.bitstreams(item)] == ["a.txt", "b.txt"]


async def test_csrf_token_is_obtained_from_a_403_on_7x(
    serve: Serve, connect: Connect, tmp_path: Path
) -> None:
    emulator, server = serve(version="7.6.5", lazy_csrf=True)
    _, item = seed_item(emulator, {"a.txt": b"A"})
    backend = await connect(server)
    assert [(r.method, r.status) for r in emulator.requests()] == [
        ("GET", 200),
        ("POST", 403),
        ("POST", 200),
    ]
    entry = await walk(backend, "C", "Coll", "Item")
    await listing(backend, entry)
    # the token is lost: the 403 brings a new one, the upload is repeated
    backend.session._csrf = None
    emulator.clear_log()
    await backend.create_file(entry, "b.txt", write(tmp_path, "b", b"B"))
    posts = [r.status for r in emulator.requests("POST", "/bitstreams$")]
    assert posts == [403, 201]
    assert [n for _, n in emulator.bitstreams(item)] == ["a.txt", "b.txt"]


async def test_8x_uses_the_csrf_endpoint_before_logging_in(serve: Serve, connect: Connect) -> None:
    emulator, server = serve(version="8.2", lazy_csrf=True)
    await connect(server)
    assert [(r.method, r.path) for r in emulator.requests()][:3] == [
        ("GET", f"{API}/"),
        ("GET", f"{API}/security/csrf"),
        ("POST", f"{API}/authn/login"),
    ]
    assert [r.status for r in emulator.requests("POST", "/authn/login$")] == [200]


async def test_missing_rights_map_to_permission_denied(
    serve: Serve, connect: Connect, tmp_path: Path
) -> None:
    emulator, server = serve()
    _, item = seed_item(emulator, {"a.txt": b"A"})
    user = await connect(server, Credentials(*USER))
    entry = await walk(user, "C", "Coll", "Item")
    (file,) = await listing(user, entry)
    with pytest.raises(errors.PermissionDenied) as denied:
        await user.create_file(entry, "b.txt", write(tmp_path, "b", b"B"))
    assert denied.value.status == 403
    with pytest.raises(errors.PermissionDenied):
        await user.remove(file)
    with pytest.raises(errors.PermissionDenied):
        await user.mkdir(await user.root(), "Mine")
    assert emulator.bitstreams(item) == [(file.extra["uuid"], "a.txt")]


async def test_rate_limited_requests_are_retried_after_retry_after(
    serve: Serve, connect: Connect
) -> None:
    emulator, server = serve()
    seed_item(emulator)
    backend = await connect(server)
    collection = await walk(backend, "C", "Coll")
    emulator.plan_fault(method="GET", path="/discover/", status=429, retry_after="0.1", times=2)
    emulator.clear_log()
    started = trio.current_time()
    assert [e.name for e in await listing(backend, collection)] == ["Item"]
    assert [r.status for r in emulator.requests("GET", "/discover/")] == [429, 429, 200]
    assert trio.current_time() - started >= 0.2

    # the emulator's own front-proxy limit: 2 requests per second (a shorter window made
    # the listing miss the limit on a loaded machine, where connecting can take 0.3 s)
    limited, server2 = serve(rate_limit=(2, 1.0), rate_limit_retry_after=1.0)
    seed_item(limited)
    backend2 = await connect(server2)  # root document and login
    assert [e.name for e in await listing(backend2, await backend2.root())] == ["C"]
    assert [r.status for r in limited.requests()] == [200, 200, 429, 200]


async def test_secrets_never_reach_the_log(
    serve: Serve, connect: Connect, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    emulator, server = serve()
    _, item = seed_item(emulator, {"a.txt": b"A"})
    emulator.restrict(item, [])
    # docfs's own loggers (httpcore's DEBUG trace prints raw response headers; keeping it
    # quiet is the daemon's logging setup, not the backend's)
    caplog.set_level(logging.DEBUG, logger="docfs")
    backend = await connect(server)
    tokens = [backend.session._jwt]
    entry = await walk(backend, "C", "Coll", "Item")
    await backend.create_file(entry, "b.txt", write(tmp_path, "b", b"B"))
    emulator.expire_sessions()
    await listing(backend, entry)  # 401, login again
    tokens.append(backend.session._jwt)
    with pytest.raises(errors.AuthenticationFailed) as failed:
        await connect(server, Credentials(ADMIN[0], "another-secret-pw"))
    # booleans and counts only: a failing assert must not print a secret either
    renewed = None not in tokens and tokens[0] != tokens[1]
    assert renewed
    text = caplog.text + str(failed.value)
    assert "logged in" in text  # the log was captured at all
    secrets = [ADMIN[1], "another-secret-pw", *(t for t in tokens if t)]
    assert sum(secret in text for secret in secrets) == 0


# ---- servers that change what they serve (issue 17, items 10 and 12) ---------------------------


@pytest.mark.parametrize("version", ["7.6", "10.0"])
async def test_pdfs_with_a_cover_page_are_listed_as_served(
    serve: Serve, connect: Connect, version: str, caplog: pytest.LogCaptureFixture
) -> None:
    """citation-page.enable_globally: a non-administrator gets another document than the
    stored one. The entry says the served size, carries no MD5 of the stored bytes (the
    cache would reject the served ones) and is marked transformed (read whole)."""
    emulator, server = serve(version=version, cover_pages=True)
    stored = {"a.pdf": b"%PDF-1.4 A", "b.pdf": b"%PDF-1.4 BB", "c.txt": b"C"}
    seed_item(emulator, stored)
    backend = await connect(server, Credentials(*USER))
    files = await listing(backend, await walk(backend, "C", "Coll", "Item"))
    for entry in files[:2]:
        body = await fetch(backend, entry)
        assert body.endswith(stored[entry.name]) and body != stored[entry.name]
        assert entry.transformed and entry.size == len(body) != int(entry.meta["stored.size"])
        assert "checksum.md5" not in entry.meta
        stated = await backend.stat(entry)
        assert (stated.size, stated.transformed) == (entry.size, True)
    assert not files[2].transformed and files[2].size == 1
    assert files[2].meta["checksum.md5"] == hashlib.md5(b"C").hexdigest()
    said = [r for r in caplog.records if "serves PDFs changed" in r.message]
    assert len(said) == 1
    # an administrator gets the stored files: nothing is adapted
    admin = await connect(server)
    for entry in (await listing(admin, await walk(admin, "C", "Coll", "Item")))[:2]:
        assert not entry.transformed
        assert hashlib.md5(await fetch(admin, entry)).hexdigest() == entry.meta["checksum.md5"]


async def test_files_carry_the_stored_md5_as_a_typed_checksum(
    serve: Serve, connect: Connect, tmp_path: Path
) -> None:
    """``Entry.checksum`` is the bitstream's ``checkSum`` (the ``checksum.md5`` xattr stays):
    listed, stated, uploaded, overwritten (upload-and-swap on 7.6, ``PUT …/content`` on 10.0);
    a PDF served with a cover page has none (its stored MD5 is not that of the served bytes)."""

    def md5(data: bytes) -> Checksum:
        return Checksum("md5", hashlib.md5(data).hexdigest())

    for version in ("7.6", "10.0"):
        emulator, server = serve(version=version, replace_bitstream_enabled=True)
        seed_item(emulator, {"a.txt": b"A"})
        backend = await connect(server)
        item = await walk(backend, "C", "Coll", "Item")
        (listed,) = await listing(backend, item)
        assert listed.checksum == md5(b"A")
        assert listed.meta["checksum.md5"] == listed.checksum.value
        assert (await backend.stat(listed)).checksum == listed.checksum
        created = await backend.create_file(item, "b.txt", write(tmp_path, "b", b"B"))
        assert created.checksum == md5(b"B")
        replaced = await backend.replace_file(listed, write(tmp_path, "a2", b"A2"))
        assert replaced.checksum == md5(b"A2"), version
    emulator, server = serve(cover_pages=True)
    seed_item(emulator, {"a.pdf": b"%PDF-1.4 A"})
    backend = await connect(server, Credentials(*USER))
    (served,) = await listing(backend, await walk(backend, "C", "Coll", "Item"))
    assert served.transformed and served.checksum is None
    assert (await backend.stat(served)).checksum is None


async def test_embargoed_file_is_listed_and_stated_but_not_read_anonymously(
    serve: Serve, connect: Connect
) -> None:
    """findOneBitstreamTest_EmbargoedBitstream_Anon: the metadata answers 200 anonymously."""
    emulator, server = serve()
    _, item = seed_item(emulator, {"open.txt": b"open", "later.pdf": b"%PDF-1.4 later"})
    emulator.restrict(emulator.bitstreams(item)[1][0], [])
    backend = await connect(server, Credentials())
    files = await listing(backend, await walk(backend, "C", "Coll", "Item"))
    assert [f.name for f in files] == ["open.txt", "later.pdf"]
    stated = await backend.stat(files[1])
    assert (stated.name, stated.size) == ("later.pdf", len(b"%PDF-1.4 later"))
    with pytest.raises(errors.PermissionDenied):
        await fetch(backend, files[1])
    assert await fetch(backend, files[0]) == b"open"


async def test_submissions_an_earlier_mount_left_behind_are_reported(
    serve: Serve, connect: Connect, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A mount killed before its deposit leaves a workspace item: the next mount says so
    (a warning and ``held_back``, which ``docfs status`` shows) instead of hiding it."""
    emulator, server = serve()
    community = emulator.add_community("C")
    emulator.add_collection("Coll", community)
    emulator.grant_role(USER[0], "submitter")
    killed = await connect(server, Credentials(*USER))
    item = await killed.mkdir(await walk(killed, "C", "Coll"), "Interrupted")
    await killed.create_file(item, "a.txt", write(tmp_path, "a", b"a"))
    # … and that mount is gone without a deposit; the next one makes an item of its own
    later = await connect(server, Credentials(*USER))
    mine = await later.mkdir(await walk(later, "C", "Coll"), "Mine")
    orphan, draft = sorted(later.held_back())
    assert "Interrupted" in orphan and "left in your DSpace workspace" in orphan
    assert "Mine" in draft
    assert any("never deposited" in r.message for r in caplog.records)
    assert emulator.item_state(item.extra["uuid"])["in_workspace"]  # left as it was
    await later.create_file(mine, "b.txt", write(tmp_path, "b", b"b"))
    await later.settle()
    assert later.held_back() == [orphan]  # its own was deposited, the other is not touched
    assert emulator.item_state(item.extra["uuid"])["in_workspace"]


async def test_an_embargoed_first_pdf_does_not_hide_the_cover_pages_of_the_rest(
    serve: Serve, connect: Connect
) -> None:
    emulator, server = serve(cover_pages=True)
    _, item = seed_item(emulator, {"closed.pdf": b"%PDF-1.4 closed", "open.pdf": b"%PDF-1.4 open"})
    emulator.restrict(emulator.bitstreams(item)[0][0], [])
    backend = await connect(server, Credentials(*USER))
    closed, opened = await listing(backend, await walk(backend, "C", "Coll", "Item"))
    assert not closed.transformed and closed.size == len(b"%PDF-1.4 closed")
    body = await fetch(backend, opened)
    assert opened.transformed and opened.size == len(body) and body.endswith(b"%PDF-1.4 open")


async def test_overwrites_at_once_on_a_default_10_cost_one_failed_put(
    serve: Serve, connect: Connect, tmp_path: Path
) -> None:
    emulator, server = serve(version="10.0")
    names = {f"f{n}.txt": b"old" for n in range(4)}
    _, item = seed_item(emulator, names)
    backend = await connect(server)
    files = await listing(backend, await walk(backend, "C", "Coll", "Item"))
    async with trio.open_nursery() as nursery:
        for n, entry in enumerate(files):
            src = write(tmp_path, f"new{n}", f"new {n}".encode())
            nursery.start_soon(backend.replace_file, entry, src)
    assert [r.status for r in emulator.requests("PUT", "/content$")] == [400]
    assert sorted(files_of_item(emulator, item).values()) == [f"new {n}".encode() for n in range(4)]


def files_of_item(emulator: DSpace7Emulator, item: str) -> dict[str, bytes]:
    return {name or "": emulator.content(uuid) for uuid, name in emulator.bitstreams(item)}


async def test_taking_a_mapped_item_out_of_a_collection_survives_lost_answers(
    serve: Serve, opened: list[DSpace7Backend]
) -> None:
    """rmdir of a mapped item: the unmap (a repeat is a silent 204) is retried after a lost
    answer; the owner change is not repeated blindly: after a lost answer the owner is read
    again and found changed."""
    emulator, server = serve()
    collection, item = seed_item(emulator, {"a.txt": b"A"})
    community = emulator.find("C", "community")[0]
    mapped = emulator.add_collection("Mapped", community)
    other = emulator.add_collection("Other", community)
    emulator.map_item(item, mapped)
    emulator.map_item(item, other)
    backend = await short_timeout(server, opened)
    in_mapped = await walk(backend, "C", "Mapped", "Item")
    # held past the client's timeout, then carried out: the answer is lost
    emulator.plan_fault(method="DELETE", path="/mappedCollections/", hold=SHORT * 1.8)
    await backend.remove_from(in_mapped, await walk(backend, "C", "Mapped"))
    # the unmap is safe to repeat (a collection the item has left answers 204): it was
    assert len(emulator.requests("DELETE", "/mappedCollections/")) == 2
    assert item not in emulator.items_in(mapped) and emulator.exists(item)

    in_owner = await walk(backend, "C", "Coll", "Item")
    emulator.plan_fault(method="PUT", path="/owningCollection$", hold=SHORT * 1.8)
    await backend.remove_from(in_owner, await walk(backend, "C", "Coll"))
    assert len(emulator.requests("PUT", "/owningCollection$")) == 1
    assert emulator.items_in(collection) == [] and emulator.items_in(other) == [item]
    assert emulator.bitstreams(item)[0][1] == "a.txt"
