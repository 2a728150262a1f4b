"""The DSpace 6 backend against the DSpace 6 emulator over real HTTP on loopback."""

from __future__ import annotations

import hashlib
import logging
import os
from datetime import datetime
from pathlib import Path

import pytest
import trio

from docfs import errors
from docfs.backends.base import Checksum, Credentials, Entry, Kind, Op
from docfs.backends.dspace6 import DSpace6Backend, parse_last_modified
from docfs.emulators.base import EmulatorServer
from docfs.emulators.dspace6 import DSpace6Emulator
from tests.conftest import ADMIN, dspace6_backend


def emu(server: EmulatorServer) -> DSpace6Emulator:
    assert isinstance(server.emulator, DSpace6Emulator)
    return server.emulator


async def children(backend: DSpace6Backend, entry: Entry) -> dict[str, Entry]:
    return {e.name: e async for e in backend.list_dir(entry)}


async def walk_to(backend: DSpace6Backend, *names: str) -> Entry:
    entry = await backend.root()
    for name in names:
        entry = (await children(backend, entry))[name]
    return entry


def small_tree(e: DSpace6Emulator) -> dict[str, str]:
    com = e.add_community("Science")
    sub = e.add_community("Physics", com)
    col = e.add_collection("Theses", sub)
    item = e.add_item(col, "On Graphene", metadata={"dc.contributor.author": ["Doe, J", "Roe, R"]})
    bs = e.add_bitstream(item, "thesis.pdf", b"%PDF-1.4 hello")
    return {"com": com, "sub": sub, "col": col, "item": item, "bs": bs}


async def test_tree_mapping(dspace6: EmulatorServer) -> None:
    ids = small_tree(emu(dspace6))
    backend = dspace6_backend(dspace6)
    await backend.connect()
    root = await backend.root()
    assert Op.MKDIR in root.ops
    top = await children(backend, root)
    assert top["Science"].id == ids["com"] and top["Science"].kind is Kind.DIR
    sub = await children(backend, top["Science"])
    assert set(sub) == {"Physics"}
    item = await walk_to(backend, "Science", "Physics", "Theses", "On Graphene")
    assert item.object_id == ids["item"]  # its id also names the collection it is in
    assert item.meta["dc.contributor.author"] == "Doe, J\nRoe, R"
    assert item.allows(Op.CREATE_FILE) and not item.allows(Op.MKDIR)
    files = await children(backend, item)
    pdf = files["thesis.pdf"]
    assert pdf.kind is Kind.FILE
    assert pdf.size == len(b"%PDF-1.4 hello")
    assert pdf.version == hashlib.md5(b"%PDF-1.4 hello").hexdigest()
    assert pdf.mtime == item.mtime and item.mtime is not None
    await backend.aclose()


async def test_only_original_bitstreams_are_files(dspace6: EmulatorServer) -> None:
    e = emu(dspace6)
    ids = small_tree(e)
    e.add_bitstream(ids["item"], "thesis.pdf.jpg", b"jpeg", bundle="THUMBNAIL")
    backend = dspace6_backend(dspace6)
    item = await walk_to(backend, "Science", "Physics", "Theses", "On Graphene")
    assert set(await children(backend, item)) == {"thesis.pdf"}
    await backend.aclose()


async def test_large_collection_costs_one_request_per_page(dspace6: EmulatorServer) -> None:
    e = emu(dspace6)
    com = e.add_community("Big")
    col = e.add_collection("Many", com)
    items = [e.add_item(col, f"Item {i:04d}") for i in range(1050)]
    # private items in the middle of the second page (uuid order) make that page short
    hidden = sorted(items)[120:150]
    for uuid in hidden:
        e.set_public(uuid, False)
    backend = dspace6_backend(dspace6, Credentials())  # anonymous: filtering after paging
    collection = await walk_to(backend, "Big", "Many")
    e.clear_log()
    listed = [x async for x in backend.list_dir(collection)]
    assert len(listed) == 1050 - len(hidden)
    assert not {x.id for x in listed} & set(hidden)
    pages = e.requests("GET", rf"^/rest/collections/{col}/items$")
    assert len(pages) == 11
    assert len(e.requests()) == 12  # the pages plus one GET of the collection (numberItems)
    await backend.aclose()


async def test_download_20_mib_byte_identical(dspace6: EmulatorServer) -> None:
    e = emu(dspace6)
    ids = small_tree(e)
    data = os.urandom(20 << 20)
    e.set_bitstream_data(ids["bs"], data)
    backend = dspace6_backend(dspace6)
    item = await walk_to(backend, "Science", "Physics", "Theses", "On Graphene")
    pdf = (await children(backend, item))["thesis.pdf"]
    received = bytearray()

    async def sink(chunk: bytes) -> None:
        received.extend(chunk)

    await backend.download(pdf, sink)
    assert hashlib.sha256(received).digest() == hashlib.sha256(data).digest()
    await backend.aclose()


async def test_reset_mid_download_is_retried(dspace6: EmulatorServer) -> None:
    e = emu(dspace6)
    ids = small_tree(e)
    data = os.urandom(3 << 20)
    e.set_bitstream_data(ids["bs"], data)
    backend = dspace6_backend(dspace6)
    item = await walk_to(backend, "Science", "Physics", "Theses", "On Graphene")
    pdf = (await children(backend, item))["thesis.pdf"]
    e.plan_fault(path=r"/retrieve$", reset_after=1 << 20)
    received = bytearray()

    async def sink(chunk: bytes) -> None:
        received.extend(chunk)

    await backend.download(pdf, sink)
    assert bytes(received) == data
    assert len(e.requests("GET", r"/retrieve$")) == 2
    await backend.aclose()


async def test_two_503_with_retry_after_then_success(dspace6: EmulatorServer) -> None:
    small_tree(emu(dspace6))
    backend = dspace6_backend(dspace6)
    emu(dspace6).plan_fault(path=r"^/rest/hierarchy$", status=503, retry_after="1", times=2)
    started = trio.current_time()
    top = await children(backend, await backend.root())
    assert "Science" in top
    assert trio.current_time() - started >= 1.9
    statuses = [r.status for r in emu(dspace6).requests(path=r"^/rest/hierarchy$")]
    assert statuses == [503, 503, 200]
    await backend.aclose()


async def test_upload_replace_rename_delete(dspace6: EmulatorServer, tmp_path: Path) -> None:
    e = emu(dspace6)
    ids = small_tree(e)
    backend = dspace6_backend(dspace6)
    item = await walk_to(backend, "Science", "Physics", "Theses", "On Graphene")
    src = tmp_path / "data.csv"
    src.write_bytes(b"a,b\n1,2\n")
    created = await backend.create_file(item, "data.csv", src)
    stored = {b["name"]: b for b in e.bitstreams_of(ids["item"])}
    assert e.bitstream_data(stored["data.csv"]["uuid"]) == b"a,b\n1,2\n"
    assert stored["data.csv"]["bundle"] == "ORIGINAL"
    assert created.id == stored["data.csv"]["uuid"]

    src.write_bytes(b"a,b\n3,4\n5,6\n")
    replaced = await backend.replace_file(created, src)
    assert replaced.id == created.id  # uuid kept
    assert replaced.version == hashlib.md5(b"a,b\n3,4\n5,6\n").hexdigest()
    assert e.bitstream_data(created.id) == b"a,b\n3,4\n5,6\n"
    listed = (await children(backend, item))["data.csv"]
    assert listed.version == replaced.version and listed.size == 12

    renamed = await backend.rename(listed, item, "table.csv")
    assert renamed.name == "table.csv"
    assert {b["name"] for b in e.bitstreams_of(ids["item"])} == {"thesis.pdf", "table.csv"}

    await backend.remove(renamed)
    assert {b["name"] for b in e.bitstreams_of(ids["item"])} == {"thesis.pdf"}
    await backend.remove(renamed)  # already gone: not an error
    await backend.aclose()


async def test_files_carry_the_stored_md5_as_a_typed_checksum(
    dspace6: EmulatorServer, tmp_path: Path
) -> None:
    """``Entry.checksum`` is the bitstream's ``checkSum`` (the ``checksum.md5`` xattr stays):
    listed, stated, uploaded, and after an overwrite the MD5 of what was sent."""

    def md5(data: bytes) -> Checksum:
        return Checksum("md5", hashlib.md5(data).hexdigest())

    small_tree(emu(dspace6))
    backend = dspace6_backend(dspace6)
    item = await walk_to(backend, "Science", "Physics", "Theses", "On Graphene")
    listed = (await children(backend, item))["thesis.pdf"]
    assert listed.checksum == md5(b"%PDF-1.4 hello")
    assert listed.meta["checksum.md5"] == listed.checksum.value
    assert (await backend.stat(listed)).checksum == listed.checksum
    src = tmp_path / "data.csv"
    src.write_bytes(b"a,b\n1,2\n")
    created = await backend.create_file(item, "data.csv", src)
    assert created.checksum == md5(b"a,b\n1,2\n")
    src.write_bytes(b"a,b\n3,4\n")
    replaced = await backend.replace_file(created, src)
    assert replaced.checksum == md5(b"a,b\n3,4\n")
    assert replaced.meta["checksum.md5"] == replaced.checksum.value
    await backend.aclose()


async def test_removing_a_mapped_item_unmaps_it_and_keeps_its_files(
    dspace6: EmulatorServer,
) -> None:
    # DELETE /items/{id} would delete it from every collection (ItemsResource.deleteItem); the
    # collection route unmaps it here and deletes it only from its last collection
    e = emu(dspace6)
    ids = small_tree(e)
    other = e.add_collection("Reading list", ids["sub"])
    e.map_item(ids["item"], other)
    backend = dspace6_backend(dspace6)
    item = await walk_to(backend, "Science", "Physics", "Theses", "On Graphene")
    pdf = (await children(backend, item))["thesis.pdf"]
    # its files belong to both collections: they go only with the item, never alone
    assert pdf.allows(Op.REMOVE_WITH_DIR) and not pdf.allows(Op.REMOVE)
    e.clear_log()
    await backend.remove(item)
    assert [(r.method, r.path) for r in e.requests() if r.method != "GET"] == [
        ("DELETE", f"/rest/collections/{ids['col']}/items/{ids['item']}")
    ]
    assert e.items_of(ids["col"]) == []
    assert [i["uuid"] for i in e.items_of(other)] == [ids["item"]]
    assert [b["name"] for b in e.bitstreams_of(ids["item"])] == ["thesis.pdf"]
    # now in one collection: its files are ordinary, and removing it deletes it
    mapped_once = await walk_to(backend, "Science", "Physics", "Reading list", "On Graphene")
    assert (await children(backend, mapped_once))["thesis.pdf"].allows(Op.REMOVE)
    await backend.remove(mapped_once)
    assert e.items_of(other) == []
    with pytest.raises(KeyError):  # the item itself is gone
        e.bitstreams_of(ids["item"])
    await backend.aclose()


async def test_stale_item_entry_never_deletes_from_another_collection(
    dspace6: EmulatorServer,
) -> None:
    # the listing said the item is in "Theses"; meanwhile it was moved out (unmapped there):
    # a collection DELETE now would delete it from its only remaining collection
    e = emu(dspace6)
    ids = small_tree(e)
    other = e.add_collection("Reading list", ids["sub"])
    backend = dspace6_backend(dspace6)
    item = await walk_to(backend, "Science", "Physics", "Theses", "On Graphene")
    e.map_item(ids["item"], other)
    e.unmap_item(ids["item"], ids["col"])
    e.clear_log()
    await backend.remove(item)  # already gone from here: nothing to do
    assert [r.method for r in e.requests()] == ["GET"]
    assert [i["uuid"] for i in e.items_of(other)] == [ids["item"]]
    await backend.aclose()


async def test_move_between_items_is_exdev(dspace6: EmulatorServer) -> None:
    e = emu(dspace6)
    ids = small_tree(e)
    other = e.add_item(ids["col"], "Other")
    backend = dspace6_backend(dspace6)
    collection = await walk_to(backend, "Science", "Physics", "Theses")
    items = await children(backend, collection)
    pdf = (await children(backend, items["On Graphene"]))["thesis.pdf"]
    with pytest.raises(errors.CrossDevice):
        await backend.rename(pdf, items["Other"], "thesis.pdf")
    assert items["Other"].object_id == other
    await backend.aclose()


async def test_mkdir_creates_items_and_collections(dspace6: EmulatorServer) -> None:
    e = emu(dspace6)
    ids = small_tree(e)
    backend = dspace6_backend(dspace6)
    collection = await walk_to(backend, "Science", "Physics", "Theses")
    new_item = await backend.mkdir(collection, "A new item")
    assert new_item.kind is Kind.DIR
    assert "A new item" in {i["title"] for i in e.items_of(ids["col"])}
    physics = await walk_to(backend, "Science", "Physics")
    new_col = await backend.mkdir(physics, "Datasets")
    assert "Datasets" in {c["name"] for c in e.children_of(ids["sub"])["collections"]}
    assert new_col.extra["type"] == "collection"
    with pytest.raises(errors.NotSupported):
        await backend.mkdir(new_item, "nested")
    await backend.rename(new_item, collection, "Renamed item")
    assert "Renamed item" in {i["title"] for i in e.items_of(ids["col"])}
    await backend.remove(new_item)
    assert "Renamed item" not in {i["title"] for i in e.items_of(ids["col"])}
    await backend.aclose()


async def test_metadata_set_and_clear(dspace6: EmulatorServer) -> None:
    e = emu(dspace6)
    ids = small_tree(e)
    backend = dspace6_backend(dspace6)
    item = await walk_to(backend, "Science", "Physics", "Theses", "On Graphene")
    updated = await backend.set_meta(item, "dc.subject", "graphene\nnanoribbons")
    assert updated.meta["dc.subject"] == "graphene\nnanoribbons"
    updated = await backend.set_meta(updated, "dc.contributor.author", None)
    assert "dc.contributor.author" not in updated.meta
    assert updated.meta["dc.title"] == "On Graphene"
    assert updated.meta["dc.subject"] == "graphene\nnanoribbons"
    obj = e.get_object(ids["item"])
    assert obj is not None
    with pytest.raises(errors.InvalidArgument):
        await backend.set_meta(item, "title", "x")
    await backend.aclose()


@pytest.mark.parametrize("how", ["xattr", "metadata file"])
async def test_removing_a_field_keeps_the_others_whole_and_updates_the_item(
    dspace6: EmulatorServer, how: str
) -> None:
    # a real server keeps only the first value of four fields on DELETE …/metadata, leaves
    # values added by POST at place 1 (order undefined) and does not update the item for a
    # POST (ItemsResource.addItemMetadata/deleteItemMetadata, dspace-6_x)
    e = emu(dspace6)
    ids = small_tree(e)
    before = e.get_object(ids["item"])
    assert before is not None
    handle_uri = before["metadata"]["dc.identifier.uri"][0]
    authors = ["Zeta, Z", "Alpha, A", "Mu, M"]
    e.set_metadata(ids["item"], "dc.contributor.author", authors)
    e.set_metadata(ids["item"], "dc.identifier.uri", [handle_uri, "https://doi.org/10.1/x"])
    e.set_metadata(ids["item"], "dc.subject", ["graphene"])
    e.touch(ids["item"], datetime(2017, 3, 23, 11, 15, 28))
    backend = dspace6_backend(dspace6)
    item = await walk_to(backend, "Science", "Physics", "Theses", "On Graphene")
    if how == "xattr":
        updated = await backend.set_meta(item, "dc.subject", None)
    else:
        updated = await backend.update_meta(item, {"dc.subject": None})
    assert "dc.subject" not in updated.meta
    assert updated.meta["dc.contributor.author"] == "\n".join(authors)
    assert updated.meta["dc.identifier.uri"] == f"{handle_uri}\nhttps://doi.org/10.1/x"
    after = e.get_object(ids["item"])
    assert after is not None
    stored = after["metadata"]
    assert stored["dc.contributor.author"] == authors
    assert len(stored["dc.description.provenance"]) == 1  # restored, not doubled
    # the item was updated: its date moved, so other clients see the change
    assert updated.version != item.version
    await backend.aclose()


async def test_set_meta_refuses_what_the_server_would_misread_or_reject(
    dspace6: EmulatorServer,
) -> None:
    e = emu(dspace6)
    ids = small_tree(e)
    backend = dspace6_backend(dspace6)
    item = await walk_to(backend, "Science", "Physics", "Theses", "On Graphene")
    # Resource.mySplit reads "dc.title." as dc.title: sent, it would retitle the item
    with pytest.raises(errors.InvalidArgument):
        await backend.set_meta(item, "dc.title.", "Retitled")
    # a field the registry lacks: addMetadata's "bad_dublin_core" SQLException, a 500
    with pytest.raises(errors.InvalidArgument):
        await backend.set_meta(item, "dc.nosuchfield", "x")
    after = e.get_object(ids["item"])
    assert after is not None and after["metadata"]["dc.title"] == ["On Graphene"]
    await backend.aclose()


async def test_names_the_server_would_trim_are_refused_before_sending(
    dspace6: EmulatorServer, tmp_path: Path
) -> None:
    # every DSpace 6 name is a metadata value: addMetadata trims it and blanks controls
    # (DSpaceObjectServiceImpl, dspace-6_x), so " notes.txt" would come back as "notes.txt"
    e = emu(dspace6)
    ids = small_tree(e)
    backend = dspace6_backend(dspace6)
    item = await walk_to(backend, "Science", "Physics", "Theses", "On Graphene")
    src = tmp_path / "notes"
    src.write_bytes(b"n")
    # what the server does with such a name (the reason for the refusal)
    made = await backend.create_file(item, " notes.txt\x01", src)
    assert made.name == "notes.txt"
    for name in (" notes.txt", "notes.txt ", "a\x01b.txt", "a\x85b"):
        with pytest.raises(errors.InvalidArgument):
            backend.check_name(item, name, Kind.FILE)
    collection = await walk_to(backend, "Science", "Physics", "Theses")
    with pytest.raises(errors.InvalidArgument):
        backend.check_name(collection, "Trailing ", Kind.DIR)
    for name in ("résumé.pdf", "a\tb.txt", "論文.pdf", "x"):
        backend.check_name(item, name, Kind.FILE)
    assert ids["item"] == item.object_id
    await backend.aclose()


async def test_relogin_once_on_401_after_the_session_expired(dspace6: EmulatorServer) -> None:
    e = emu(dspace6)
    ids = small_tree(e)
    secret = e.add_collection("Internal", ids["com"], public=False)
    backend = dspace6_backend(dspace6)
    science = await walk_to(backend, "Science")
    internal = (await children(backend, science))["Internal"]
    e.expire_sessions()
    e.clear_log()
    # the old cookie is now anonymous: the private collection answers 401 → one re-login
    assert (await backend.stat(internal)).id == secret
    assert len(e.requests("POST", r"^/rest/login$")) == 1
    assert [r.status for r in e.requests("GET", rf"^/rest/collections/{secret}$")] == [401, 200]
    await backend.aclose()


async def test_idle_session_is_renewed_before_listing(dspace6: EmulatorServer) -> None:
    # an expired session does not fail a listing, it just hides private entries: renew first
    e = emu(dspace6)
    ids = small_tree(e)
    e.add_collection("Internal", ids["com"], public=False)
    backend = dspace6_backend(dspace6)
    science = await walk_to(backend, "Science")
    assert "Internal" in await children(backend, science)
    e.expire_sessions()
    backend.session.idle_timeout = 0.0
    e.clear_log()
    assert "Internal" in await children(backend, science)
    assert len(e.requests("POST", r"^/rest/login$")) == 1
    await backend.aclose()


async def test_bad_credentials(dspace6: EmulatorServer) -> None:
    backend = dspace6_backend(dspace6, Credentials(ADMIN[0], "wrong-password"))
    with pytest.raises(errors.AuthenticationFailed):
        await backend.connect()
    await backend.aclose()


async def test_a_refused_login_says_what_to_fix(dspace6: EmulatorServer) -> None:
    backend = dspace6_backend(dspace6, Credentials(ADMIN[0], "wrong-password"))
    with pytest.raises(errors.AuthenticationFailed) as refused:
        await backend.connect()
    await backend.aclose()
    assert str(refused.value) == (
        f"DSpace refused the login of {ADMIN[0]}: wrong e-mail or password (HTTP 401)"
    )


async def test_anonymous_sees_public_and_gets_401_on_private(dspace6: EmulatorServer) -> None:
    e = emu(dspace6)
    ids = small_tree(e)
    secret = e.add_collection("Internal", ids["com"], public=False)
    backend = dspace6_backend(dspace6, Credentials())
    await backend.connect()
    science = await walk_to(backend, "Science")
    assert "Internal" not in await children(backend, science)
    private = Entry(secret, "Internal", Kind.DIR, None, None, "", extra={"type": "collection"})
    with pytest.raises(errors.PermissionDenied):
        await backend.stat(private)
    # the administrator sees it
    admin = dspace6_backend(dspace6)
    assert "Internal" in await children(admin, await walk_to(admin, "Science"))
    await backend.aclose()
    await admin.aclose()


async def test_no_secret_in_any_log_record(
    dspace6: EmulatorServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # httpcore's trace prints every header
    # (an earlier test may have run docfs's log setup, which quiets httpcore)
    caplog.set_level(logging.DEBUG, logger="httpcore")
    small_tree(emu(dspace6))
    backend = dspace6_backend(dspace6)
    # installed on the handlers as the daemon's log setup does
    caplog.handler.addFilter(backend.http.redactor)
    await backend.connect()
    emu(dspace6).expire_sessions()
    await children(backend, await backend.root())
    cookie = backend.session._cookie
    assert cookie
    # the login's answer was logged (its Set-Cookie by name only)
    assert any(
        r.name == "docfs.http.lean" and "set-cookie" in r.getMessage() for r in caplog.records
    )
    text = caplog.text + "".join(str(r.args) for r in caplog.records)
    assert ADMIN[1] not in text
    assert cookie not in text
    await backend.aclose()


def test_last_modified_forms() -> None:
    assert parse_last_modified("2017-03-23 11:15:28.61") == pytest.approx(1490267728.61)
    assert parse_last_modified("2017-03-23 11:15:28") == 1490267728.0
    assert parse_last_modified("Thu Mar 23 11:15:28 CET 2017") == 1490267728.0
    assert parse_last_modified(None) is None
    assert parse_last_modified("garbage") is None
    # the fast path must not widen what is accepted into nonsense
    assert parse_last_modified("2017-03-23") is None
    assert parse_last_modified("2017-03-23 25:15:28") is None
    assert parse_last_modified("2017-03-23T11:15:28") is None
