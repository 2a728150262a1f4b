"""The DocSpace backend against its emulator over real loopback HTTP.

Request counts come from the emulator's request log, so "a page per 100 entries, not a request
per file", "refused locally, without a request" and "the upload went in N chunks" are checked
on the wire.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

from docfs import errors
from docfs.backends._http import HttpClient, Limits, RetryPolicy
from docfs.backends.base import Credentials, Entry, Kind, Op
from docfs.backends.docspace import DocSpaceBackend
from docfs.emulators.base import EmulatorServer
from docfs.emulators.docspace import DocSpaceEmulator, RateLimitConfig

OWNER, OWNER_PW = "owner@example.com", "owner-secret-pw"
READER, READER_PW = "reader@example.com", "reader-secret-pw"
MiB = 1024 * 1024

Serve = Callable[..., tuple[DocSpaceEmulator, str]]


@pytest.fixture(scope="module")
def reaper() -> Iterator[list[threading.Thread]]:
    """Stops servers in the background (uvicorn's shutdown takes ~0.2 s); joined at the end."""
    threads: list[threading.Thread] = []
    yield threads
    for thread in threads:
        thread.join(15)


def stop_later(reaper: list[threading.Thread], servers: list[EmulatorServer]) -> None:
    for server in servers:
        thread = threading.Thread(target=server.stop, name="stop-emulator")
        thread.start()
        reaper.append(thread)


@pytest.fixture
def serve(reaper: list[threading.Thread]) -> Iterator[Serve]:
    """Emulators on loopback (limiter off unless a test asks); stopped afterwards."""
    servers: list[EmulatorServer] = []

    def start(**kwargs: Any) -> tuple[DocSpaceEmulator, str]:
        kwargs.setdefault("rate_limiting", False)
        kwargs.setdefault("operation_delay", 0.05)
        emu = DocSpaceEmulator(user=OWNER, password=OWNER_PW, seed=5, **kwargs)
        emu.add_user(READER, READER_PW, admin=False)
        server = EmulatorServer(emu)
        server.start()
        servers.append(server)
        return emu, server.url

    yield start
    stop_later(reaper, servers)


@asynccontextmanager
async def opened(
    url: str,
    user: str | None = OWNER,
    password: str | None = OWNER_PW,
    token: str | None = None,
    connect: bool = True,
    **options: Any,
) -> AsyncIterator[DocSpaceBackend]:
    http = HttpClient(url, limits=Limits(), retry=RetryPolicy(base=0.01, cap=0.05))
    backend = DocSpaceBackend(
        http, Credentials(user=user, password=password, token=token), **options
    )
    try:
        if connect:
            await backend.connect()
        yield backend
    finally:
        await backend.aclose()


async def children(backend: DocSpaceBackend, directory: Entry) -> dict[str, Entry]:
    return {e.name: e async for e in backend.list_dir(directory)}


async def walk(backend: DocSpaceBackend, *names: str) -> Entry:
    entry = await backend.root()
    for name in names:
        entry = (await children(backend, entry))[name]
    return entry


async def fetch(
    backend: DocSpaceBackend, entry: Entry, start: int = 0, end: int | None = None
) -> bytes:
    out = bytearray()

    async def sink(chunk: bytes) -> None:
        out.extend(chunk)

    await backend.download(entry, sink, start, end)
    return bytes(out)


def payload(size: int, seed: int = 1) -> bytes:
    return random.Random(seed).randbytes(size)


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def logins(emu: DocSpaceEmulator) -> int:
    return len(emu.requests("POST", r"/api/2\.0/authentication$"))


# ---- listing, stat, mapping ---------------------------------------------------------------


async def test_root_sections_in_one_request(serve: Serve) -> None:
    emu, url = serve()
    async with opened(url) as backend:
        emu.clear_log()
        sections = [e async for e in backend.list_dir(await backend.root())]
        assert [e.name for e in sections] == ["My documents", "Rooms", "Trash"]
        assert len(emu.requests("GET")) == 1
        my, rooms, trash = sections
        assert my.ops == {Op.CREATE_FILE, Op.MKDIR}
        assert rooms.ops == {Op.MKDIR}
        assert trash.read_only and not trash.allows(Op.REMOVE)
    async with opened(url, show_trash=False) as backend:
        names = [e.name async for e in backend.list_dir(await backend.root())]
        assert names == ["My documents", "Rooms"]


async def test_listing_pages_by_100(serve: Serve) -> None:
    emu, url = serve()
    my_id = emu.my_documents_id(OWNER)
    for i in range(230):
        emu.add_file(my_id, f"file-{i:03}.txt", b"x" * (i % 7), owner=OWNER)
    emu.add_folder(my_id, "zz-folder", owner=OWNER)
    async with opened(url) as backend:
        my = await walk(backend, "My documents")
        emu.clear_log()
        entries = [e async for e in backend.list_dir(my)]
        assert len(entries) == 231
        assert entries[0].name == "zz-folder" and entries[0].kind is Kind.DIR  # folders first
        pages = emu.requests("GET", rf"/api/2\.0/files/{my_id}$")
        assert len(pages) == 3 == len(emu.requests())
        assert all("count=100" in p.query for p in pages)
        assert [p.query.split("startIndex=")[1] for p in pages] == ["0", "100", "200"]


async def test_rooms_listing_pages(serve: Serve) -> None:
    emu, url = serve()
    for i in range(105):
        emu.add_room(f"Room {i:03}", owner=OWNER)
    async with opened(url) as backend:
        rooms = await walk(backend, "Rooms")
        emu.clear_log()
        names = [e.name async for e in backend.list_dir(rooms)]
        assert len(names) == 105 and names[0] == "Room 000"
        assert len(emu.requests("GET", r"/api/2\.0/files/rooms$")) == 2


async def test_entry_fields(serve: Serve) -> None:
    emu, url = serve(tz_offset_minutes=-300)
    my_id = emu.my_documents_id(OWNER)
    file_id = emu.add_file(my_id, "data.bin", b"12345", owner=OWNER)
    emu.add_file(my_id, "empty.txt", b"", owner=OWNER)
    # a folder whose numeric id equals the file's: the entries must not collide
    while emu.add_folder(my_id, "dir", owner=OWNER) < file_id:
        pass
    async with opened(url) as backend:
        kids = await children(backend, await walk(backend, "My documents"))
        data, empty = kids["data.bin"], kids["empty.txt"]
        assert data.size == 5 and empty.size == 0
        assert data.mtime is not None and abs(data.mtime - emu.now()) < 30
        assert data.id == f"f{file_id}" and data.id not in {e.id for e in kids.values() if e.is_dir}
        assert data.meta["id"] == str(file_id) and data.meta["version"] == "1"
        assert data.meta["created_by"] and data.ops >= {Op.REPLACE, Op.RENAME, Op.REMOVE}
        old_version = data.version
        emu.add_version(file_id, b"123456")
        fresh = await backend.stat(data)
        assert fresh.version != old_version and fresh.size == 6
        assert (await backend.stat(kids["dir"])).name == "dir"


async def test_stat_sees_deletions_behind_our_back(serve: Serve) -> None:
    emu, url = serve()
    my_id = emu.my_documents_id(OWNER)
    trashed = emu.add_file(my_id, "trashed.txt", b"t", owner=OWNER)
    gone = emu.add_file(my_id, "gone.txt", b"g", owner=OWNER)
    async with opened(url) as backend:
        kids = await children(backend, await walk(backend, "My documents"))
        emu.move_file(trashed, emu.trash_id(OWNER))
        emu.remove_file(gone)
        for name in ("trashed.txt", "gone.txt"):
            with pytest.raises(errors.NotFound):
                await backend.stat(kids[name])
        in_trash = await children(backend, await walk(backend, "Trash"))
        assert in_trash["trashed.txt"].read_only and in_trash["trashed.txt"].ops == frozenset()


async def test_read_only_member_gets_no_write_ops(serve: Serve, tmp_path: Path) -> None:
    emu, url = serve()
    room = emu.add_room("Shared", owner=OWNER)
    emu.add_file(room, "doc.txt", b"d", owner=OWNER)
    emu.share_room(room, READER, "read")
    async with opened(url, READER, READER_PW) as backend:
        sections = await children(backend, await backend.root())
        assert "My documents" in sections and sections["Rooms"].ops == frozenset()
        shared = (await children(backend, sections["Rooms"]))["Shared"]
        assert shared.ops == frozenset()
        doc = (await children(backend, shared))["doc.txt"]
        assert doc.ops == frozenset()
        assert await fetch(backend, doc) == b"d"
        # the server refuses too, and the refusal is a permission error, not a dead token
        with pytest.raises(errors.PermissionDenied):
            await backend.replace_file(doc, write(tmp_path, "x", b"new"))
        assert emu.file_content(int(doc.meta["id"])) == b"d"


# ---- downloads ----------------------------------------------------------------------------


async def test_download_whole_and_ranges(serve: Serve) -> None:
    emu, url = serve()
    data = payload(300_000)
    emu.add_file(emu.my_documents_id(OWNER), "r.bin", data, owner=OWNER)
    async with opened(url) as backend:
        entry = (await children(backend, await walk(backend, "My documents")))["r.bin"]
        emu.clear_log()
        assert await fetch(backend, entry) == data
        assert await fetch(backend, entry, 1000, 2000) == data[1000:2000]
        assert await fetch(backend, entry, 299_000) == data[299_000:]
        assert await fetch(backend, entry, 299_000, 400_000) == data[299_000:]
        downloads = emu.requests("GET", "/filehandler.ashx")
        assert [d.status for d in downloads] == [200, 206, 206, 206]
        assert [d.bytes_out for d in downloads] == [300_000, 1000, 1000, 1000]
        assert all(f"version={entry.meta['version']}" in d.query for d in downloads)


async def test_download_pins_the_listed_version(serve: Serve) -> None:
    emu, url = serve()
    file_id = emu.add_file(emu.my_documents_id(OWNER), "v.txt", b"first", owner=OWNER)
    async with opened(url) as backend:
        entry = (await children(backend, await walk(backend, "My documents")))["v.txt"]
        emu.add_version(file_id, b"second version")
        # the entry's version is the cache key: its bytes must stay those of that version
        assert await fetch(backend, entry) == b"first"
        assert await fetch(backend, await backend.stat(entry)) == b"second version"


async def test_large_download_survives_a_reset(serve: Serve) -> None:
    emu, url = serve()
    file_id = emu.add_file(emu.my_documents_id(OWNER), "big.bin", size=20 * MiB, owner=OWNER)
    expected = emu.file_content(file_id)
    async with opened(url) as backend:
        entry = (await children(backend, await walk(backend, "My documents")))["big.bin"]
        assert entry.size == 20 * MiB
        emu.clear_log()
        emu.plan_fault(method="GET", path="/filehandler.ashx", reset_after=5 * MiB)
        assert await fetch(backend, entry) == expected
        first, second = emu.requests("GET", "/filehandler.ashx")
        assert first.fault and first.bytes_out == 5 * MiB
        # resumed with a range for the missing part only
        assert second.status == 206 and second.bytes_out == 15 * MiB


async def test_redirected_download_keeps_the_token_home(serve: Serve) -> None:
    emu, url = serve()
    data = payload(70_000, seed=3)
    emu.add_file(emu.my_documents_id(OWNER), "s3.bin", data, owner=OWNER)
    with EmulatorServer(emu) as storage:  # another port: another origin
        emu.set_download_redirect(True, storage.url)
        async with opened(url) as backend:
            entry = (await children(backend, await walk(backend, "My documents")))["s3.bin"]
            assert await fetch(backend, entry) == data
            assert await fetch(backend, entry, 10, 20) == data[10:20]
        assert len(emu.storage_requests) == 2
        assert not any(with_auth for _, with_auth in emu.storage_requests)


async def test_download_denied_is_permission_denied(serve: Serve) -> None:
    emu, url = serve()
    room = emu.add_room("No downloads", owner=OWNER, deny_download=True)
    emu.add_file(room, "secret.txt", b"s", owner=OWNER)
    emu.share_room(room, READER, "read")
    async with opened(url, READER, READER_PW) as backend:
        entry = (await children(backend, await walk(backend, "Rooms", "No downloads")))[
            "secret.txt"
        ]
        with pytest.raises(errors.PermissionDenied):
            await fetch(backend, entry)
        assert logins(emu) == 1  # a real refusal, not an expired token


# ---- uploads and versions -------------------------------------------------------------------


async def test_create_small_empty_and_chunked_files(serve: Serve, tmp_path: Path) -> None:
    emu, url = serve(chunk_upload_size=64 * 1024)
    my_id = emu.my_documents_id(OWNER)
    async with opened(url) as backend:
        assert backend.chunk_size == 64 * 1024  # read from GET files/settings
        my = await walk(backend, "My documents")
        emu.clear_log()
        small = await backend.create_file(my, "small.txt", write(tmp_path, "s", b"hello"))
        assert small.name == "small.txt" and small.size == 5
        assert len(emu.requests("POST", "/ChunkedUploader.ashx")) == 1
        empty = await backend.create_file(my, "empty.dat", write(tmp_path, "e", b""))
        assert empty.size == 0 and emu.file_content(int(empty.meta["id"])) == b""
        assert emu.requests("POST", rf"/files/{my_id}/file$")
        data = payload(200_000)
        emu.clear_log()
        big = await backend.create_file(my, "big.bin", write(tmp_path, "b", data))
        assert emu.file_content(int(big.meta["id"])) == data
        chunks = emu.requests("POST", "/ChunkedUploader.ashx")
        assert len(chunks) == 5  # 4 numbered chunks + finalize
        numbered = [c for c in chunks if "chunkNumber" in c.query]
        assert [c.query.split("chunkNumber=")[1] for c in numbered] == ["1", "2", "3", "4"]
        assert "finalize=true" in chunks[-1].query
        odt = await backend.create_file(my, "letter.odt", write(tmp_path, "o", b"odt"))
        assert odt.name == "letter.odt"  # the session path never converts


async def test_create_never_overwrites_an_unseen_namesake(serve: Serve, tmp_path: Path) -> None:
    emu, url = serve()
    my_id = emu.my_documents_id(OWNER)
    async with opened(url) as backend:
        my = await walk(backend, "My documents")
        emu.add_file(my_id, "report.txt", b"someone else's", owner=OWNER)
        mine = await backend.create_file(my, "report.txt", write(tmp_path, "r", b"mine"))
        assert mine.name == "report (1).txt"
        assert emu.file_content(emu.find(my_id, "report.txt")[0]) == b"someone else's"


async def test_lost_create_answer_is_found_not_resent(serve: Serve, tmp_path: Path) -> None:
    """Issue 18.3: the saving request's answer is lost after the server stored the file: the
    backend finds it (that size, created after the session opened) instead of failing."""
    emu, url = serve()
    async with opened(url) as backend:
        my = await walk(backend, "My documents")
        emu.plan_fault(method="POST", path="/ChunkedUploader.ashx", reset_after=0)
        entry = await backend.create_file(my, "lost.txt", write(tmp_path, "l", b"payload"))
        assert entry.name == "lost.txt" and entry.size == 7
        assert len(emu.requests("POST", "/ChunkedUploader.ashx")) == 1
        names = [e.name async for e in backend.list_dir(my)]
        assert names.count("lost.txt") == 1


async def test_replace_makes_new_versions(serve: Serve, tmp_path: Path) -> None:
    emu, url = serve(chunk_upload_size=64 * 1024)
    file_id = emu.add_file(emu.my_documents_id(OWNER), "doc.txt", b"v1", owner=OWNER)
    async with opened(url) as backend:
        entry = (await children(backend, await walk(backend, "My documents")))["doc.txt"]
        data = payload(150_000, seed=9)
        second = await backend.replace_file(entry, write(tmp_path, "v2", data))
        assert second.id == entry.id and second.version != entry.version
        assert second.meta["version"] == "2" and emu.file_content(file_id) == data
        assert len(emu.requests("POST", r"/files/file/\d+/edit_session")) == 1
        third = await backend.replace_file(second, write(tmp_path, "v3", b""))
        assert third.size == 0 and third.meta["version"] == "3"
        assert emu.file_info(file_id)["versions"] == 3


async def test_locked_file_cannot_be_replaced(serve: Serve, tmp_path: Path) -> None:
    emu, url = serve()
    file_id = emu.add_file(emu.my_documents_id(OWNER), "busy.txt", b"b", owner=OWNER)
    async with opened(url) as backend:
        entry = (await children(backend, await walk(backend, "My documents")))["busy.txt"]
        emu.set_editing(file_id)
        with pytest.raises(errors.PermissionDenied):
            await backend.replace_file(entry, write(tmp_path, "x", b"new"))
        assert emu.file_info(file_id)["versions"] == 1


# ---- directories, renames, moves, removal ---------------------------------------------------


async def test_mkdir_folder_and_room(serve: Serve) -> None:
    emu, url = serve()
    async with opened(url) as backend:
        sections = await children(backend, await backend.root())
        folder = await backend.mkdir(sections["My documents"], "Projects")
        assert folder.is_dir and folder.ops >= {Op.CREATE_FILE, Op.MKDIR, Op.RENAME}
        room = await backend.mkdir(sections["Rooms"], "Team")
        assert room.meta["room_type"] == "5"
        assert emu.folder_info(int(room.meta["id"]))["room_type"] == 5
        with pytest.raises(errors.NotSupported):
            await backend.mkdir(await backend.root(), "Nope")


async def test_names_the_server_would_rewrite_are_refused_locally(
    serve: Serve, tmp_path: Path
) -> None:
    emu, url = serve()
    async with opened(url) as backend:
        my = await walk(backend, "My documents")
        emu.clear_log()
        for bad in ("a:b.txt", "what?.txt", " padded.txt", "x" * 166):
            with pytest.raises(errors.InvalidArgument):
                await backend.create_file(my, bad, write(tmp_path, "n", b"n"))
            with pytest.raises(errors.InvalidArgument):
                await backend.mkdir(my, bad)
        assert emu.requests() == []


async def test_rename_in_place(serve: Serve) -> None:
    emu, url = serve()
    my_id = emu.my_documents_id(OWNER)
    file_id = emu.add_file(my_id, "old.txt", b"o", owner=OWNER)
    folder_id = emu.add_folder(my_id, "Old folder", owner=OWNER)
    room_id = emu.add_room("Old room", owner=OWNER)
    async with opened(url) as backend:
        sections = await children(backend, await backend.root())
        my = sections["My documents"]
        kids = await children(backend, my)
        renamed = await backend.rename(kids["old.txt"], my, "new.txt")
        assert renamed.name == "new.txt" == emu.file_info(file_id)["title"]
        folder = await backend.rename(kids["Old folder"], my, "New folder")
        assert folder.name == "New folder" == emu.folder_info(folder_id)["title"]
        room = (await children(backend, sections["Rooms"]))["Old room"]
        assert (await backend.rename(room, sections["Rooms"], "New room")).name == "New room"
        assert emu.folder_info(room_id)["title"] == "New room"
        assert not emu.requests("PUT", "/fileops/move")


async def test_extension_change_is_cross_device_without_a_request(serve: Serve) -> None:
    emu, url = serve()
    emu.add_file(emu.my_documents_id(OWNER), "notes.txt", b"n", owner=OWNER)
    async with opened(url) as backend:
        my = await walk(backend, "My documents")
        notes = (await children(backend, my))["notes.txt"]
        emu.clear_log()
        with pytest.raises(errors.CrossDevice):
            await backend.rename(notes, my, "notes.md")
        assert emu.requests() == []


async def test_move_waits_for_the_operation(serve: Serve) -> None:
    emu, url = serve(operation_delay=0.3)
    my_id = emu.my_documents_id(OWNER)
    file_id = emu.add_file(my_id, "a.txt", b"a", owner=OWNER)
    dst_id = emu.add_folder(my_id, "dst", owner=OWNER)
    emu.add_file(dst_id, "a.txt", b"already there", owner=OWNER)
    sub_id = emu.add_folder(my_id, "sub", owner=OWNER)
    async with opened(url) as backend:
        my = await walk(backend, "My documents")
        kids = await children(backend, my)
        moved = await backend.rename(kids["a.txt"], kids["dst"], "b.txt")
        # done when the call returns: no merge, no overwrite, the clash left alone
        assert emu.file_info(file_id)["folder_id"] == dst_id and moved.name == "b.txt"
        assert sorted(t for _, _, t in emu.children(dst_id)) == ["a.txt", "b.txt"]
        moved_dir = await backend.rename(kids["sub"], kids["dst"], "sub")
        assert emu.folder_info(sub_id)["parent_id"] == dst_id and moved_dir.name == "sub"
        assert len(emu.requests("PUT", "/fileops/move")) == 2
        rooms = await walk(backend, "Rooms")
        with pytest.raises(errors.CrossDevice):
            await backend.rename(moved, rooms, "b.txt")


async def test_remove_goes_to_trash_and_waits(serve: Serve) -> None:
    emu, url = serve(operation_delay=0.15)
    my_id = emu.my_documents_id(OWNER)
    file_id = emu.add_file(my_id, "old.txt", b"o", owner=OWNER)
    full = emu.add_folder(my_id, "full", owner=OWNER)
    emu.add_file(full, "inside.txt", b"i", owner=OWNER)
    empty = emu.add_folder(my_id, "empty", owner=OWNER)
    async with opened(url) as backend:
        kids = await children(backend, await walk(backend, "My documents"))
        await backend.remove(kids["old.txt"])
        assert emu.file_info(file_id)["in_trash"]  # finished before remove() returned
        with pytest.raises(errors.NotEmpty):
            await backend.remove(kids["full"])
        await backend.remove(kids["empty"])
        assert emu.folder_info(empty)["in_trash"] and full in emu.folders
        assert "old.txt" in await children(backend, await walk(backend, "Trash"))
    async with opened(url, permanent_delete=True) as backend:
        inside = await children(backend, await walk(backend, "My documents", "full"))
        await backend.remove(inside["inside.txt"])
        assert emu.children(full) == []
        assert "inside.txt" not in await children(backend, await walk(backend, "Trash"))


async def test_remove_empty_room(serve: Serve) -> None:
    emu, url = serve()
    room_id = emu.add_room("Temporary", owner=OWNER)
    async with opened(url) as backend:
        room = await walk(backend, "Rooms", "Temporary")
        assert Op.REMOVE in room.ops
        await backend.remove(room)
        assert room_id not in emu.folders


async def test_operation_result_swallowed_by_another_client(serve: Serve) -> None:
    emu, url = serve(operation_delay=0.2)
    file_id = emu.add_file(emu.my_documents_id(OWNER), "contested.txt", b"c", owner=OWNER)
    # a long poll interval and the emulator's clock (not sleeps) fix the order of events, so a
    # loaded machine cannot reorder them: the other client always reads the result first
    async with opened(url, poll_interval=3.0) as backend:
        entry = (await children(backend, await walk(backend, "My documents")))["contested.txt"]
        token = httpx.post(
            f"{url}/api/2.0/authentication", json={"userName": OWNER, "password": OWNER_PW}
        ).json()["response"]["token"]

        async def other_client() -> None:
            while emu.pending_operations() == 0:
                await trio.sleep(0.01)
            emu.advance_clock(1.0)  # the operation is due: finished at the next look
            async with httpx.AsyncClient(headers={"Authorization": token}) as client:
                seen = (await client.get(f"{url}/api/2.0/files/fileops")).json()["response"]
            assert [op["finished"] for op in seen] == [True]  # it took our record

        async with trio.open_nursery() as nursery:
            nursery.start_soon(other_client)
            await backend.remove(entry)
        assert emu.file_info(file_id)["in_trash"]


async def test_failed_operation_raises(serve: Serve) -> None:
    emu, url = serve()
    my_id = emu.my_documents_id(OWNER)
    file_id = emu.add_file(my_id, "edited.txt", b"e", owner=OWNER)
    async with opened(url) as backend:
        entry = (await children(backend, await walk(backend, "My documents")))["edited.txt"]
        emu.set_editing(file_id)
        with pytest.raises(errors.PermissionDenied):
            await backend.remove(entry)
        assert not emu.file_info(file_id)["in_trash"]


# ---- metadata -------------------------------------------------------------------------------


async def test_comment_metadata(serve: Serve) -> None:
    emu, url = serve()
    file_id = emu.add_file(emu.my_documents_id(OWNER), "m.txt", b"m", owner=OWNER)
    async with opened(url) as backend:
        entry = (await children(backend, await walk(backend, "My documents")))["m.txt"]
        assert entry.meta["comment"] == "Uploaded" and "web_url" in entry.meta
        updated = await backend.set_meta(entry, "comment", "reviewed by QA")
        assert updated.meta["comment"] == "reviewed by QA"
        assert emu.file_info(file_id)["comment"] == "reviewed by QA"
        with pytest.raises(errors.NotSupported):
            await backend.set_meta(entry, "version", "9")


async def test_comments_need_edit_history_which_room_editors_lack(serve: Serve) -> None:
    # UpdateCommentAsync checks FileSecurity's EditHistory: in a room a room manager or content
    # creator has it, an editor (who may write new versions) does not
    emu, url = serve()
    room = emu.add_room("Shared", owner=OWNER)
    file_id = emu.add_file(room, "doc.txt", b"d", owner=OWNER)
    emu.share_room(room, READER, "editor")
    async with opened(url, READER, READER_PW) as backend:
        doc = await walk(backend, "Rooms", "Shared", "doc.txt")
        assert doc.allows(Op.REPLACE) and not doc.allows(Op.SET_META)
        assert "editors cannot" in (backend.refusal_hint(doc, Op.SET_META) or "")
        # what the server answers if asked anyway
        with pytest.raises(errors.PermissionDenied):
            await backend.set_meta(doc, "comment", "checked")
    assert emu.file_info(file_id)["comment"] == "Uploaded"
    emu.share_room(room, READER, "content_creator")
    async with opened(url, READER, READER_PW) as backend:
        doc = await walk(backend, "Rooms", "Shared", "doc.txt")
        assert doc.allows(Op.SET_META)
        assert (await backend.set_meta(doc, "comment", "checked")).meta["comment"] == "checked"


# ---- authentication -------------------------------------------------------------------------


async def test_bad_credentials(serve: Serve) -> None:
    emu, url = serve()
    with pytest.raises(errors.AuthenticationFailed) as caught:
        async with opened(url, OWNER, "not-the-password"):
            pass
    assert "not-the-password" not in str(caught.value)
    emu.add_user("tfa@example.com", "tfa-password", two_factor="app")
    with pytest.raises(errors.AuthenticationFailed, match="two-factor"):
        async with opened(url, "tfa@example.com", "tfa-password"):
            pass


async def test_dead_token_on_403_endpoint_logs_in_again(serve: Serve) -> None:
    emu, url = serve()
    emu.add_file(emu.my_documents_id(OWNER), "f.txt", b"f", owner=OWNER)
    async with opened(url) as backend:
        my = await walk(backend, "My documents")
        assert logins(emu) == 1
        emu.expire_tokens()
        # GET files/{id} is anonymous-allowed: a dead token gets 403, not 401
        assert [e.name async for e in backend.list_dir(my)] == ["f.txt"]
        assert logins(emu) == 2
        assert len(emu.requests("GET", r"/api/2\.0/authentication$")) == 1
        emu.expire_tokens()
        entry = (await children(backend, my))["f.txt"]
        assert logins(emu) == 3
        emu.expire_tokens()
        assert await fetch(backend, entry) == b"f"
        assert logins(emu) == 4


async def test_dead_token_on_401_endpoint_logs_in_again(serve: Serve) -> None:
    emu, url = serve()
    async with opened(url) as backend:
        emu.expire_tokens()
        names = [e.name async for e in backend.list_dir(await backend.root())]
        assert names[0] == "My documents" and logins(emu) == 2
        assert [r.status for r in emu.requests("GET", "@root")] == [401, 200]


async def test_token_renewed_before_it_expires(serve: Serve) -> None:
    emu, url = serve(token_lifetime=0.6)
    async with opened(url) as backend:
        await trio.sleep(0.6)
        await walk(backend, "My documents")
        assert logins(emu) == 2
        assert all(r.status < 400 for r in emu.requests())


async def test_api_key(serve: Serve) -> None:
    emu, url = serve()
    key = emu.add_api_key(OWNER)
    async with opened(url, None, None, token=key) as backend:
        assert "My documents" in await children(backend, await backend.root())
        assert logins(emu) == 0
        emu.revoke_api_key(key)
        with pytest.raises(errors.AuthenticationFailed):
            await walk(backend, "My documents", "anything")


async def test_other_users_documents_are_denied(serve: Serve) -> None:
    emu, url = serve()
    reader_my = emu.my_documents_id(READER)
    async with opened(url) as backend:
        fake = Entry(id=f"d{reader_my}", name="x", kind=Kind.DIR, size=None, mtime=None, version="")
        with pytest.raises(errors.PermissionDenied):
            [e async for e in backend.list_dir(fake)]
        with pytest.raises(errors.NotFound):
            await backend.stat(
                Entry(id="f999999", name="x", kind=Kind.FILE, size=1, mtime=None, version="")
            )


async def test_secrets_stay_out_of_logs(serve: Serve, caplog: pytest.LogCaptureFixture) -> None:
    emu, url = serve()
    caplog.set_level(logging.DEBUG)
    async with opened(url) as backend:
        emu.expire_tokens()
        await walk(backend, "My documents")  # @root answers 401: a logged re-login
        used = list(backend.session.secrets())
    with pytest.raises(errors.AuthenticationFailed) as refused:
        async with opened(url, OWNER, "wrong-" + OWNER_PW):
            pass
    assert "session expired" in caplog.text and logins(emu) == 3
    assert OWNER_PW in used and len(used) == 2  # the password and the live token
    for secret in used:
        assert secret not in caplog.text and secret not in str(refused.value)


# ---- limits -------------------------------------------------------------------------------


def test_default_limits_match_the_documented_ones() -> None:
    limits = DocSpaceBackend.default_limits
    assert limits.concurrency == 50 and DocSpaceBackend.WRITE_CONCURRENCY == 15
    assert limits.requests_per_second is not None
    # worst case inside one minute: the full bucket plus a minute of refill
    assert limits.burst + 60 * limits.requests_per_second <= 1500


async def test_429_and_503_with_retry_after_are_absorbed(serve: Serve) -> None:
    emu, url = serve(
        rate_limiting=True, rate_limits=RateLimitConfig(per_window=2, window_seconds=1)
    )
    async with opened(url) as backend:  # the login counts for the IP, settings for the user
        my = await walk(backend, "My documents")
        names = [e.name async for e in backend.list_dir(my)]
        assert names == []
        statuses = [r.status for r in emu.requests()]
        assert 429 in statuses and statuses[-1] == 200
        emu.set_rate_limits(None)
        emu.plan_fault(method="GET", path="/files/", status=503, retry_after="0", times=2)
        assert [e.name async for e in backend.list_dir(my)] == []
        assert [r.status for r in emu.requests()][-3:] == [503, 503, 200]


async def test_write_concurrency_is_capped(serve: Serve, tmp_path: Path) -> None:
    emu, url = serve(latency_ms=100, rate_limiting=True)
    async with opened(url) as backend:
        my = await walk(backend, "My documents")
        src = write(tmp_path, "c", b"c")

        async def create(i: int) -> None:
            await backend.create_file(my, f"c{i}.txt", src)

        async with trio.open_nursery() as nursery:
            for i in range(20):
                nursery.start_soon(create, i)
        assert len(emu.children(emu.my_documents_id(OWNER))) == 20
        assert all(r.status != 429 for r in emu.requests())


# ---- what the server's source says (issue 17) and recovery of every write (issue 18) --------


async def test_chunked_upload_of_non_ascii_names(serve: Serve, tmp_path: Path) -> None:
    """17.4: numbered chunks are measured from Content-Length minus the part header counted
    in characters (ChunkedUploaderHandler.cs): a non-ASCII part filename broke finalize."""
    emu, url = serve(chunk_upload_size=64 * 1024)
    data = payload(150_000, seed=4)
    async with opened(url) as backend:
        my = await walk(backend, "My documents")
        for name in ("résumé.txt", "報告書 2024.bin"):
            entry = await backend.create_file(my, name, write(tmp_path, "n", data))
            assert entry.name == name and entry.size == len(data)
            assert emu.file_content(int(entry.meta["id"])) == data
            again = await backend.replace_file(entry, write(tmp_path, "n2", data[::-1]))
            assert again.name == name
            assert emu.file_content(int(entry.meta["id"])) == data[::-1]
    assert [r.number for r in emu.chunk_log()].count(3) == 4  # 3 numbered chunks each time


async def test_saves_keep_the_names_the_server_retitles(serve: Serve, tmp_path: Path) -> None:
    """17.8: every save lower-cases the extension and gives a name without one a trailing
    dot (FileDao.SaveFileAsync); overwriting Photo.JPG and Makefile keeps both names."""
    emu, url = serve(chunk_upload_size=64 * 1024)
    my_id = emu.my_documents_id(OWNER)
    photo = emu.add_file(my_id, "Photo.JPG", b"jpeg", owner=OWNER)
    async with opened(url) as backend:
        my = await walk(backend, "My documents")
        made = await backend.create_file(my, "Makefile", write(tmp_path, "m", b"all:\n"))
        assert (
            made.name == "Makefile" and emu.file_info(int(made.meta["id"]))["title"] == "Makefile"
        )
        listing = await children(backend, my)
        for name, body in (
            ("Photo.JPG", b"x" * 100),  # one request
            ("Makefile", payload(100_000)),  # numbered chunks
            ("Photo.JPG", b""),  # saveediting
        ):
            entry = await backend.replace_file(listing[name], write(tmp_path, "b", body))
            assert entry.name == name
            listing = await children(backend, my)
            assert set(listing) == {"Photo.JPG", "Makefile"}
    assert emu.file_info(photo)["title"] == "Photo.JPG"


async def test_long_comments_are_refused_not_cut(serve: Serve) -> None:
    """17.12: FileDao.UpdateCommentAsync keeps 255 characters without a word: refuse more."""
    emu, url = serve()
    file_id = emu.add_file(emu.my_documents_id(OWNER), "c.txt", b"c", owner=OWNER)
    async with opened(url) as backend:
        entry = (await children(backend, await walk(backend, "My documents")))["c.txt"]
        with pytest.raises(errors.InvalidArgument, match="255"):
            await backend.set_meta(entry, "comment", "é" * 256)
        assert not emu.requests("PUT", r"/comment$")
        updated = await backend.set_meta(entry, "comment", "é" * 255)
        assert emu.file_info(file_id)["comment"] == "é" * 255 == updated.meta["comment"]


async def test_room_deletion_waits_for_its_own_operation(serve: Serve) -> None:
    """17.6: DELETE rooms/{id} answers the user's *first* operation (here one of the web UI
    that never ends); the backend finds its own and the room is gone when remove returns."""
    emu, url = serve()
    emu.hold_operation(OWNER)
    async with opened(url, operation_timeout=3.0) as backend:
        rooms = await walk(backend, "Rooms")
        room = await backend.mkdir(rooms, "Short-lived")
        await backend.remove(room)
        assert "Short-lived" not in await children(backend, rooms)
        assert not emu.find(emu.rooms_root_id, "Short-lived")
        # rooms never go to the Trash
        trash = await children(backend, await walk(backend, "Trash"))
        assert "Short-lived" not in trash


def fault_on_query(emu: DocSpaceEmulator, needle: str) -> None:
    """Let planned faults hit only requests whose query holds ``needle`` (``finalize``)."""
    take = emu._take_fault

    def only(method: str, path: str, query: str) -> Any:
        return take(method, path, query) if needle in query else None

    emu._take_fault = only  # type: ignore[method-assign]


@pytest.mark.parametrize("fault", ["reset", "500"])
@pytest.mark.parametrize(
    "case",
    ["create", "create-chunked", "create-empty", "replace", "replace-chunked", "replace-empty"],
)
async def test_every_save_recovers_from_a_fault(
    serve: Serve, tmp_path: Path, case: str, fault: str
) -> None:
    """18.3: the request that saves (one body, finalize, POST …/file, saveediting) answered
    with a reset after the server acted, or a 500 before it did: no error, one file, the
    right bytes (found when it had arrived, sent again when it had not)."""
    emu, url = serve(chunk_upload_size=64 * 1024)
    my_id = emu.my_documents_id(OWNER)
    old_id = emu.add_file(my_id, "old.txt", b"old", owner=OWNER)
    size = {"chunked": 150_000, "empty": 0}.get(case.partition("-")[2], 1000)
    data = payload(size, seed=len(case))
    if case == "create-empty":
        method, where = "POST", r"/file$"
    elif case == "replace-empty":
        method, where = "PUT", r"/saveediting$"
    else:
        method, where = "POST", r"/ChunkedUploader.ashx$"
        if case.endswith("chunked"):
            fault_on_query(emu, "finalize")
    kind: dict[str, Any] = {"reset_after": 0} if fault == "reset" else {"status": 500}
    async with opened(url) as backend:
        my = await walk(backend, "My documents")
        listing = await children(backend, my)
        emu.plan_fault(method=method, path=where, **kind)
        src = write(tmp_path, "d", data)
        if case.startswith("create"):
            entry = await backend.create_file(my, "new.txt", src)
            file_id = int(entry.meta["id"])
            assert emu.find(my_id, "new.txt") == [file_id]
        else:
            entry = await backend.replace_file(listing["old.txt"], src)
            file_id = old_id
            assert entry.id == f"f{old_id}"
            # one new version: a save that had arrived is not made again
            assert emu.file_info(old_id)["versions"] == 2
        assert emu.faults_injected == 1
        assert entry.size == size and emu.file_content(file_id) == data
        names = sorted([e.name async for e in backend.list_dir(my)])
        assert names == (["new.txt", "old.txt"] if case.startswith("create") else ["old.txt"])


@pytest.mark.parametrize("fault", ["reset", "500"])
async def test_delete_and_move_recover_from_a_fault(serve: Serve, fault: str) -> None:
    """18.3: DELETE and fileops/move are not blindly repeatable (a second delete of a file in
    Trash erases it): after a fault the backend waits, looks, and starts only what did not."""
    emu, url = serve()
    my_id = emu.my_documents_id(OWNER)
    gone_id = emu.add_file(my_id, "gone.txt", b"g", owner=OWNER)
    emu.add_file(my_id, "moved.txt", b"m", owner=OWNER)
    emu.add_folder(my_id, "dest", owner=OWNER)
    kind: dict[str, Any] = {"reset_after": 0} if fault == "reset" else {"status": 500}
    async with opened(url) as backend:
        my = await walk(backend, "My documents")
        listing = await children(backend, my)
        emu.plan_fault(method="DELETE", path=r"/files/file/\d+$", **kind)
        await backend.remove(listing["gone.txt"])
        emu.plan_fault(method="PUT", path=r"/fileops/move$", **kind)
        moved = await backend.rename(listing["moved.txt"], listing["dest"], "moved.txt")
        assert emu.faults_injected == 2
        assert moved.extra["parent"] == listing["dest"].id
        assert sorted(await children(backend, my)) == ["dest"]
        assert sorted(await children(backend, listing["dest"])) == ["moved.txt"]
        # in the Trash once, not erased from it by a second delete
        trash = await children(backend, await walk(backend, "Trash"))
        assert list(trash) == ["gone.txt"] and trash["gone.txt"].id == f"f{gone_id}"
        rooms = await walk(backend, "Rooms")
        room = await backend.mkdir(rooms, "Brief")
        emu.plan_fault(method="DELETE", path=r"/files/rooms/\d+$", **kind)
        await backend.remove(room)
        assert emu.faults_injected == 3 and "Brief" not in await children(backend, rooms)


async def test_files_of_a_watermarked_room_are_listed_as_served(
    serve: Serve, caplog: pytest.LogCaptureFixture
) -> None:
    """17.10: FileHandler.ashx.cs serves documents of a room with a watermark as PDFs (other
    length, Range ignored): the entry's size is the served length, read whole, one log line."""
    emu, url = serve()
    room = emu.add_room("Marked", owner=OWNER)
    emu.set_watermark(room)
    folder = emu.add_folder(room, "inner", owner=OWNER)
    emu.add_file(room, "a.txt", b"some text", owner=OWNER)
    emu.add_file(folder, "b.pdf", b"%PDF-1.4 original", owner=OWNER)
    emu.add_file(room, "c.png", b"\x89PNG picture", owner=OWNER)
    caplog.set_level(logging.WARNING, logger="docfs.docspace")
    async with opened(url) as backend:
        marked = await walk(backend, "Rooms", "Marked")
        files = await children(backend, marked)
        files.update(await children(backend, files["inner"]))
        for name in ("a.txt", "b.pdf"):
            entry = files[name]
            body = await fetch(backend, entry)
            assert body.startswith(b"%PDF") and len(body) == entry.size
            assert not entry.byte_ranges
            assert Op.REPLACE not in entry.ops  # a write would start from the PDF
            assert (await backend.stat(entry)).size == entry.size
            # a read in the middle comes from the whole body, not a second rendering's bytes
            assert await fetch(backend, entry, 10, 30) == body[10:30]
        assert files["c.png"].size == len(b"\x89PNG picture") and files["c.png"].byte_ranges
        again = await children(backend, marked)
        assert again["a.txt"].size == files["a.txt"].size
    lengths = [r for r in emu.requests("GET", "/filehandler.ashx")]
    assert len(lengths) == 2 + 2 * 2  # one length probe per file version, then the reads
    assert len([r for r in caplog.records if "watermark" in r.getMessage()]) == 1


async def test_a_save_slower_than_the_timeout_is_waited_for_not_repeated(
    serve: Serve, tmp_path: Path
) -> None:
    """18.3 with the lesson of 18.2: the saving request got no answer within the timeout and
    the server stores it a moment later: "not there yet" is not "absent". The backend looks
    again, later, and finds it; it neither fails nor sends a second copy."""
    emu, url = serve()
    emu.save_delay = 1.2
    http = HttpClient(url, limits=Limits(timeout=0.4), retry=RetryPolicy(base=0.01, cap=0.05))
    backend = DocSpaceBackend(http, Credentials(user=OWNER, password=OWNER_PW))
    try:
        await backend.connect()
        my = await walk(backend, "My documents")
        entry = await backend.create_file(my, "slow.txt", write(tmp_path, "s", b"slowly"))
        assert entry.name == "slow.txt" and emu.file_content(int(entry.meta["id"])) == b"slowly"
        saves = [r for r in emu.requests("POST", "/ChunkedUploader.ashx")]
        assert len(saves) == 1  # looked for, not sent again (nor aborted)
        emu.save_delay = 0.0
        assert emu.find(emu.my_documents_id(OWNER), "slow.txt") == [int(entry.meta["id"])]
    finally:
        await backend.aclose()
