"""Fidelity of the DSpace 6 emulator to the server behaviour described in
docs/protocols/dspace6.md (one test per point), plus the fault plan, the request log and the
demo data.

Every test talks real HTTP over loopback to a fresh emulator served by ``EmulatorServer``.
"""

from __future__ import annotations

import hashlib
import json
import re
import socket
import struct
import time
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
import pytest

from docfs.emulators.base import EmulatorServer
from docfs.emulators.demo_data import seed_dspace6
from docfs.emulators.dspace6 import ANONYMOUS, DSpace6Emulator
from docfs.emulators.samples import large_blob, minimal_pdf, png_image

ADMIN, ADMIN_PW = "admin@example.org", "admin-pw"
USER, USER_PW = "user@example.org", "user-pw"
JSON = {"Accept": "application/json"}
#: plain HTTP on loopback: skipping certificate loading saves ~0.1 s per client
PLAIN: dict[str, Any] = {"verify": False, "timeout": 20}
DEFAULT_EXPAND = {
    "community": ["parentCommunity", "collections", "subCommunities", "logo", "all"],
    "collection": ["parentCommunityList", "parentCommunity", "items", "license", "logo", "all"],
    "item": [
        "metadata",
        "parentCollection",
        "parentCollectionList",
        "parentCommunityList",
        "bitstreams",
        "all",
    ],
    "bitstream": ["parent", "policies", "all"],
}


@dataclass
class Tree:
    community: str
    sub: str
    collection: str
    item: str
    bitstream: str
    private_community: str
    private_collection: str
    private_item: str
    private_bitstream: str


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[DSpace6Emulator, str]]:
    # one server for the module (starting uvicorn costs more than most tests); every test
    # gets the emulator reset to an empty repository
    emulator = DSpace6Emulator(seed=7)
    with _serve(emulator) as srv:
        yield emulator, srv.url + "/rest"


@pytest.fixture
def emu(served: tuple[DSpace6Emulator, str]) -> DSpace6Emulator:
    e = served[0]
    e.reset()
    e.add_user(ADMIN, ADMIN_PW, admin=True, fullname="Ada Admin")
    e.add_user(USER, USER_PW, fullname="Uma User")
    return e


@pytest.fixture
def tree(emu: DSpace6Emulator) -> Tree:
    top = emu.add_community("Top")
    sub = emu.add_community("Sub", top)
    coll = emu.add_collection("Theses", sub)
    item = emu.add_item(coll, "A thesis", metadata={"dc.contributor.author": ["Doe, Jane"]})
    bit = emu.add_bitstream(item, "thesis.pdf", minimal_pdf("A thesis"))
    ptop = emu.add_community("Hidden", public=False)
    pcoll = emu.add_collection("Secret", top, public=False)
    pitem = emu.add_item(coll, "Embargoed", public=False)
    pbit = emu.add_bitstream(item, "private.txt", b"secret", public=False)
    return Tree(top, sub, coll, item, bit, ptop, pcoll, pitem, pbit)


def _serve(emu: DSpace6Emulator) -> EmulatorServer:
    """An ``EmulatorServer`` whose connections have TCP_NODELAY.

    ``EmulatorServer`` binds a socket created with protocol 0, so asyncio does not set
    TCP_NODELAY on accepted connections; uvicorn writes headers and body separately, and Nagle
    plus the client's delayed ACK then cost ~40 ms per response. Accepted sockets inherit the
    option from the listening one on Linux. (Requested fix: set it in ``EmulatorServer``.)
    """
    server = EmulatorServer(emu)
    server._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return server


@pytest.fixture
def base(served: tuple[DSpace6Emulator, str], emu: DSpace6Emulator) -> str:
    assert emu is served[0]
    return served[1]


@pytest.fixture
def anon(base: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=base, headers=JSON, **PLAIN) as client:
        yield client


@contextmanager
def _login(base: str, email: str, password: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=base, headers=JSON, **PLAIN) as client:
        response = client.post("/login", data={"email": email, "password": password})
        assert response.status_code == 200
        yield client


@pytest.fixture
def admin(base: str) -> Iterator[httpx.Client]:
    with _login(base, ADMIN, ADMIN_PW) as client:
        yield client


@pytest.fixture
def user(base: str) -> Iterator[httpx.Client]:
    with _login(base, USER, USER_PW) as client:
        yield client


def _is_json(response: httpx.Response) -> bool:
    try:
        json.loads(response.content)
    except ValueError:
        return False
    return True


def _upload(client: httpx.Client, item: str, data: bytes, name: str | None) -> httpx.Response:
    params = {"name": name} if name is not None else {}
    headers = {"Content-Type": "application/octet-stream"}
    return client.post(f"/items/{item}/bitstreams", params=params, content=data, headers=headers)


# ---- 1-8: authentication and service endpoints ------------------------------------------------


def test_01_login_with_form_body_sets_session_cookie(base: str) -> None:
    with httpx.Client(base_url=base, **PLAIN) as client:
        r = client.post("/login", data={"email": USER, "password": USER_PW})
        assert r.status_code == 200
        assert r.content == b""
        cookie = r.headers["set-cookie"]
        assert re.match(r"JSESSIONID=[0-9A-F]{32};", cookie)
        attributes = [a.strip() for a in cookie.split(";")[1:]]
        assert "Path=/rest/" in attributes
        assert "HttpOnly" in attributes
        assert client.get("/status").json()["authenticated"] is True


def test_02_login_with_query_string_via_get(base: str) -> None:
    with httpx.Client(base_url=base, headers=JSON, **PLAIN) as client:
        r = client.get("/login", params={"email": USER, "password": USER_PW})
        assert r.status_code == 200
        assert "JSESSIONID=" in r.headers["set-cookie"]
        assert client.get("/status").json()["email"] == USER


def test_03_wrong_password_is_401_with_html(base: str) -> None:
    with httpx.Client(base_url=base, headers=JSON, **PLAIN) as client:
        r = client.post("/login", data={"email": USER, "password": "wrong"})
        assert r.status_code == 401
        assert r.headers["content-type"].startswith("text/html")
        assert "Authentication Failed: Login failed" in r.text
        assert not _is_json(r)
        assert "set-cookie" not in r.headers


def test_04_json_login_body_does_not_authenticate(base: str) -> None:
    with httpx.Client(base_url=base, headers=JSON, **PLAIN) as client:
        r = client.post("/login", json={"email": USER, "password": USER_PW})
        assert r.status_code == 401
        assert "set-cookie" not in r.headers
        assert client.get("/status").json()["authenticated"] is False


@pytest.mark.parametrize("method", ["POST", "GET", "DELETE", "PUT"])
def test_05_logout_with_any_method_ends_the_session(base: str, method: str) -> None:
    with _login(base, USER, USER_PW) as client:
        assert client.get("/status").json()["authenticated"] is True
        r = client.request(method, "/logout")
        assert r.status_code == 200
        assert r.content == b""
        # the old cookie is still sent, and now stands for nobody
        assert "JSESSIONID" in client.cookies
        assert client.get("/status").json()["authenticated"] is False


def test_06_rest_dspace_token_header_is_ignored(base: str, anon: httpx.Client, tree: Tree) -> None:
    with _login(base, ADMIN, ADMIN_PW) as admin_client:
        token = admin_client.cookies["JSESSIONID"]
    headers = {"rest-dspace-token": token}
    assert anon.get("/status", headers=headers).json()["authenticated"] is False
    assert anon.get(f"/items/{tree.private_item}", headers=headers).status_code == 401


def test_07_status_fields_anonymous_and_logged_in(anon: httpx.Client, user: httpx.Client) -> None:
    r = anon.get("/status")
    assert r.status_code == 200
    assert r.json() == {
        "okay": True,
        "authenticated": False,
        "email": None,
        "fullname": None,
        "sourceVersion": "6.3",
        "apiVersion": "6",
    }
    r = user.get("/status")
    assert r.status_code == 200
    assert r.json() == {
        "okay": True,
        "authenticated": True,
        "email": USER,
        "fullname": "Uma User",
        "sourceVersion": None,
        "apiVersion": None,
    }


def test_08_test_endpoint(anon: httpx.Client) -> None:
    r = anon.get("/test")
    assert r.status_code == 200
    assert r.text == "REST api is running."


# ---- 9-11: permissions and ids ----------------------------------------------------------------


def test_09_anonymous_reads_public_objects_only(anon: httpx.Client, tree: Tree) -> None:
    assert anon.get(f"/communities/{tree.community}").status_code == 200
    assert anon.get(f"/collections/{tree.collection}").status_code == 200
    assert anon.get(f"/items/{tree.item}").status_code == 200
    assert anon.get(f"/bitstreams/{tree.bitstream}").status_code == 200
    assert anon.get(f"/bitstreams/{tree.bitstream}/retrieve").status_code == 200
    assert anon.get(f"/communities/{tree.private_community}").status_code == 401
    assert anon.get(f"/collections/{tree.private_collection}").status_code == 401
    assert anon.get(f"/items/{tree.private_item}").status_code == 401
    assert anon.get(f"/bitstreams/{tree.private_bitstream}").status_code == 401
    assert anon.get(f"/bitstreams/{tree.private_bitstream}/retrieve").status_code == 401


def test_10_missing_permission_is_401_never_403(
    user: httpx.Client, emu: DSpace6Emulator, tree: Tree
) -> None:
    meta = [{"key": "dc.title", "value": "x"}]
    attempts = [
        user.get(f"/items/{tree.private_item}"),
        user.get(f"/bitstreams/{tree.private_bitstream}/retrieve"),
        user.get(f"/collections/{tree.private_collection}/items"),
        user.post(f"/items/{tree.item}/metadata", json=meta),
        user.put(f"/items/{tree.item}/metadata", json=meta),
        user.delete(f"/items/{tree.item}/metadata"),
        user.delete(f"/items/{tree.item}"),
        _upload(user, tree.item, b"data", "a.txt"),
        user.put(f"/bitstreams/{tree.bitstream}", json={"name": "b.pdf"}),
        user.put(f"/bitstreams/{tree.bitstream}/data", content=b"new"),
        user.delete(f"/bitstreams/{tree.bitstream}"),
        user.post(f"/collections/{tree.collection}/items", json={"metadata": meta}),
        user.put(f"/collections/{tree.collection}", json={"name": "x"}),
        user.delete(f"/collections/{tree.collection}"),
        user.post(f"/communities/{tree.community}/collections", json={"name": "x"}),
        user.post(f"/communities/{tree.community}/communities", json={"name": "x"}),
        user.put(f"/communities/{tree.community}", json={"name": "x"}),
        user.delete(f"/communities/{tree.community}"),
        user.post("/communities", json={"name": "x"}),
    ]
    assert [r.status_code for r in attempts] == [401] * len(attempts)
    # the same user succeeds once granted the action
    emu.grant(USER, tree.item, "WRITE")
    assert user.post(f"/items/{tree.item}/metadata", json=meta).status_code == 200


def test_11_legacy_numeric_ids_and_invalid_ids(
    anon: httpx.Client, emu: DSpace6Emulator, tree: Tree
) -> None:
    for kind, uuid in [
        ("items", tree.item),
        ("bitstreams", tree.bitstream),
        ("collections", tree.collection),
        ("communities", tree.community),
    ]:
        snapshot = emu.get_object(uuid)
        assert snapshot is not None
        r = anon.get(f"/{kind}/{snapshot['legacy_id']}")
        assert r.status_code == 200
        assert r.json()["uuid"] == uuid
        assert anon.get(f"/{kind}/not-a-uuid").status_code == 500
    assert anon.get("/items/999999").status_code == 404
    assert anon.get("/items/00000000-0000-4000-8000-000000000000").status_code == 404


# ---- 12-21: JSON shapes and expand ------------------------------------------------------------


def test_12_common_object_fields_and_relative_links(anon: httpx.Client, tree: Tree) -> None:
    for kind, plural, uuid in [
        ("community", "communities", tree.community),
        ("collection", "collections", tree.collection),
        ("item", "items", tree.item),
        ("bitstream", "bitstreams", tree.bitstream),
    ]:
        body = anon.get(f"/{plural}/{uuid}").json()
        assert {"uuid", "name", "handle", "type", "link", "expand"} <= body.keys()
        assert body["uuid"] == uuid
        assert body["type"] == kind
        assert body["link"] == f"/rest/{plural}/{uuid}"
        if kind == "bitstream":
            assert body["handle"] is None
        else:
            assert re.fullmatch(r"123456789/\d+", body["handle"])
    assert anon.get(f"/items/{tree.item}").json()["name"] == "A thesis"


def test_13_archived_and_withdrawn_are_strings(anon: httpx.Client, tree: Tree) -> None:
    body = anon.get(f"/items/{tree.item}").json()
    assert body["archived"] == "true"
    assert body["withdrawn"] == "false"


def test_14_last_modified_format_and_no_dates_elsewhere(
    anon: httpx.Client, emu: DSpace6Emulator, tree: Tree
) -> None:
    item = emu.add_item(
        tree.collection, "Dated", last_modified=datetime(2017, 3, 23, 11, 15, 28, 610000)
    )
    assert anon.get(f"/items/{item}").json()["lastModified"] == "2017-03-23 11:15:28.61"
    whole = emu.add_item(
        tree.collection, "Whole second", last_modified=datetime(2020, 1, 2, 3, 4, 5)
    )
    assert anon.get(f"/items/{whole}").json()["lastModified"] == "2020-01-02 03:04:05.0"
    live = anon.get(f"/items/{tree.item}").json()["lastModified"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.(0|\d*[1-9])", live)
    for path in (
        f"/communities/{tree.community}",
        f"/collections/{tree.collection}",
        f"/bitstreams/{tree.bitstream}",
    ):
        keys = anon.get(path, params={"expand": "all"}).json().keys()
        assert not [k for k in keys if "date" in k.lower() or "modified" in k.lower()]


def test_15_unexpanded_relations_and_null_fields(anon: httpx.Client, tree: Tree) -> None:
    item = anon.get(f"/items/{tree.item}").json()
    for key in (
        "parentCollection",
        "parentCollectionList",
        "parentCommunityList",
        "metadata",
        "bitstreams",
    ):
        assert key in item
        assert item[key] is None
    community = anon.get(f"/communities/{tree.community}").json()
    assert community["subcommunities"] == []
    assert community["collections"] == []
    assert community["parentCommunity"] is None
    assert community["logo"] is None
    collection = anon.get(f"/collections/{tree.collection}").json()
    assert collection["items"] == []
    assert collection["parentCommunityList"] == []
    assert collection["license"] is None
    bitstream = anon.get(f"/bitstreams/{tree.bitstream}").json()
    assert "description" in bitstream
    assert bitstream["description"] is None
    assert bitstream["parentObject"] is None
    assert bitstream["policies"] is None


def test_16_default_expand_lists_and_expansion(anon: httpx.Client, tree: Tree) -> None:
    for kind, path in [
        ("community", f"/communities/{tree.community}"),
        ("collection", f"/collections/{tree.collection}"),
        ("item", f"/items/{tree.item}"),
        ("bitstream", f"/bitstreams/{tree.bitstream}"),
    ]:
        assert anon.get(path).json()["expand"] == DEFAULT_EXPAND[kind]
        every = anon.get(path, params={"expand": "all"}).json()
        assert every["expand"] == []
    item = anon.get(f"/items/{tree.item}", params={"expand": "metadata"}).json()
    assert item["expand"] == [e for e in DEFAULT_EXPAND["item"] if e != "metadata"]
    assert isinstance(item["metadata"], list)
    every = anon.get(f"/items/{tree.item}", params={"expand": "all"}).json()
    assert every["parentCollection"]["uuid"] == tree.collection
    assert [c["uuid"] for c in every["parentCommunityList"]] == [tree.sub, tree.community]
    assert isinstance(every["bitstreams"], list)


def test_17_expand_is_case_sensitive_and_not_trimmed(anon: httpx.Client, tree: Tree) -> None:
    body = anon.get(f"/items/{tree.item}", params={"expand": "metadata, bitstreams"}).json()
    assert isinstance(body["metadata"], list)
    assert body["bitstreams"] is None
    assert "bitstreams" in body["expand"]
    body = anon.get(f"/items/{tree.item}", params={"expand": "Metadata,ALL"}).json()
    assert body["metadata"] is None
    assert body["expand"] == DEFAULT_EXPAND["item"]


def test_18_expanded_children_are_not_expanded(anon: httpx.Client, tree: Tree) -> None:
    item = anon.get(f"/items/{tree.item}", params={"expand": "all"}).json()
    parent = item["parentCollection"]
    assert parent["expand"] == DEFAULT_EXPAND["collection"]
    assert parent["items"] == []
    assert parent["parentCommunity"] is None
    for bitstream in item["bitstreams"]:
        assert bitstream["expand"] == DEFAULT_EXPAND["bitstream"]
        assert bitstream["parentObject"] is None
    community = anon.get(f"/communities/{tree.community}", params={"expand": "all"}).json()
    assert community["subcommunities"][0]["collections"] == []


def test_19_subcommunities_name_and_hierarchy_shape(anon: httpx.Client, tree: Tree) -> None:
    body = anon.get(f"/communities/{tree.community}", params={"expand": "subCommunities"}).json()
    assert "subCommunities" not in body
    assert [c["uuid"] for c in body["subcommunities"]] == [tree.sub]
    assert "subCommunities" not in body["expand"]
    hierarchy = anon.get("/hierarchy").json()
    assert {"id", "name", "handle", "community", "collection"} == hierarchy.keys()
    top = next(c for c in hierarchy["community"] if c["id"] == tree.community)
    assert top["community"][0]["id"] == tree.sub
    handle = anon.get(f"/collections/{tree.collection}").json()["handle"]
    assert top["community"][0]["collection"] == [
        {"id": tree.collection, "name": "Theses", "handle": handle}
    ]
    assert "uuid" not in top


def test_20_checksum_and_retrieve_link(anon: httpx.Client, tree: Tree) -> None:
    body = anon.get(f"/bitstreams/{tree.bitstream}").json()
    expected = hashlib.md5(minimal_pdf("A thesis")).hexdigest()
    assert body["checkSum"] == {"value": expected, "checkSumAlgorithm": "MD5"}
    assert body["retrieveLink"] == f"/rest/bitstreams/{tree.bitstream}/retrieve"


def test_21_metadata_entries_and_hidden_fields(
    anon: httpx.Client, admin: httpx.Client, tree: Tree
) -> None:
    entries = anon.get(f"/items/{tree.item}/metadata").json()
    title = next(e for e in entries if e["key"] == "dc.title")
    assert title == {
        "key": "dc.title",
        "value": "A thesis",
        "language": None,
        "schema": "dc",
        "element": "title",
        "qualifier": None,
    }
    author = next(e for e in entries if e["key"] == "dc.contributor.author")
    assert (author["element"], author["qualifier"]) == ("contributor", "author")
    assert not [e for e in entries if e["key"] == "dc.description.provenance"]
    expanded = anon.get(f"/items/{tree.item}", params={"expand": "metadata"}).json()["metadata"]
    assert not [e for e in expanded if e["key"] == "dc.description.provenance"]
    # DSpace's MetadataExposureService shows hidden fields to administrators
    assert [
        e
        for e in admin.get(f"/items/{tree.item}/metadata").json()
        if e["key"] == "dc.description.provenance"
    ]


# ---- 22-28: paging ----------------------------------------------------------------------------


def test_22_default_limits(anon: httpx.Client, emu: DSpace6Emulator) -> None:
    parent = emu.add_community("Parent")
    subs = [emu.add_community(f"Sub {n:03d}", parent) for n in range(25)]
    for n in range(104):
        emu.add_community(f"Top {n:03d}")
    coll = emu.add_collection("Many", subs[0])
    for n in range(104):
        emu.add_collection(f"Coll {n:03d}", subs[1])
    for n in range(105):
        emu.add_item(coll, f"Item {n}")
    item = emu.add_item(coll, "Many files")
    for n in range(25):
        emu.add_bitstream(item, f"f{n}.txt", b"x")
    assert len(anon.get("/communities/top-communities").json()) == 20
    assert len(anon.get(f"/communities/{parent}/communities").json()) == 20
    assert len(anon.get(f"/items/{item}/bitstreams").json()) == 20
    assert len(anon.get("/communities").json()) == 100
    assert len(anon.get(f"/collections/{coll}/items").json()) == 100
    assert len(anon.get("/items").json()) == 100
    assert len(anon.get("/collections").json()) == 100
    assert len(anon.get(f"/communities/{subs[1]}/collections").json()) == 100
    assert len(anon.get("/bitstreams").json()) == 25  # all there are: the limit is 100
    assert len(anon.get("/communities/top-communities", params={"limit": 200}).json()) == 105


def test_23_negative_paging_means_limit_100_offset_0(
    anon: httpx.Client, emu: DSpace6Emulator
) -> None:
    for n in range(110):
        emu.add_community(f"C{n:03d}")
    first = anon.get("/communities", params={"limit": 100, "offset": 0}).json()
    for params in ({"limit": -1}, {"offset": -3, "limit": 5}, {"limit": -5, "offset": 40}):
        page = anon.get("/communities/top-communities", params=params).json()
        assert [c["uuid"] for c in page] == [c["uuid"] for c in first]


def test_24_list_responses_carry_no_total(anon: httpx.Client, tree: Tree) -> None:
    for path in (
        "/communities",
        "/communities/top-communities",
        f"/communities/{tree.community}/communities",
        f"/communities/{tree.sub}/collections",
        "/collections",
        f"/collections/{tree.collection}/items",
        "/items",
        f"/items/{tree.item}/bitstreams",
        "/bitstreams",
    ):
        body = anon.get(path).json()
        assert isinstance(body, list), path
        assert body, path


def test_25_pages_are_cut_before_read_filtering(anon: httpx.Client, emu: DSpace6Emulator) -> None:
    coll = emu.add_collection("Mixed", emu.add_community("C"))
    for n in range(10):
        emu.add_item(coll, f"Item {n}")
    ordered = [i["uuid"] for i in emu.items_of(coll)]
    for uuid in ordered[:3]:
        emu.set_public(uuid, False)
    first = anon.get(f"/collections/{coll}/items", params={"limit": 5, "offset": 0}).json()
    second = anon.get(f"/collections/{coll}/items", params={"limit": 5, "offset": 5}).json()
    assert [i["uuid"] for i in first] == ordered[3:5]
    assert [i["uuid"] for i in second] == ordered[5:10]


def test_26_collection_items_by_uuid_with_mapped_and_discoverable(
    anon: httpx.Client, admin: httpx.Client, emu: DSpace6Emulator
) -> None:
    community = emu.add_community("C")
    coll = emu.add_collection("Main", community)
    other = emu.add_collection("Other", community)
    owned = [emu.add_item(coll, f"Item {n}") for n in range(30)]
    mapped = emu.add_item(other, "Mapped in")
    emu.map_item(mapped, coll)
    hidden = emu.add_item(coll, "Not discoverable", discoverable=False)
    listed = [i["uuid"] for i in anon.get(f"/collections/{coll}/items").json()]
    assert listed == sorted([*owned, mapped])
    assert hidden not in listed
    as_admin = [i["uuid"] for i in admin.get(f"/collections/{coll}/items").json()]
    assert as_admin == sorted([*owned, mapped, hidden])
    assert anon.get(f"/collections/{coll}").json()["numberItems"] == 32


def test_27_item_bitstreams_slice_bug(anon: httpx.Client, emu: DSpace6Emulator) -> None:
    item = emu.add_item(emu.add_collection("K", emu.add_community("C")), "Five files")
    names = [f"f{n}.txt" for n in range(5)]
    for name in names:
        emu.add_bitstream(item, name, name.encode())

    def page(limit: int, offset: int) -> list[str] | int:
        r = anon.get(f"/items/{item}/bitstreams", params={"limit": limit, "offset": offset})
        return [b["name"] for b in r.json()] if r.status_code == 200 else r.status_code

    assert page(2, 0) == names[0:2]
    # offset + limit (4) > size - offset (3): everything from offset, more than limit
    assert page(2, 2) == names[2:5]
    assert page(2, 4) == names[4:5]
    assert page(2, 6) == 500


def test_28_item_expand_bitstreams_all_bundles_unpaged(
    anon: httpx.Client, emu: DSpace6Emulator
) -> None:
    item = emu.add_item(emu.add_collection("K", emu.add_community("C")), "Bundles")
    for n in range(22):
        emu.add_bitstream(item, f"page{n}.pdf", b"%PDF")
    emu.add_bitstream(item, "page0.pdf.jpg", b"jpg", bundle="THUMBNAIL")
    emu.add_bitstream(item, "page0.pdf.txt", b"txt", bundle="TEXT")
    emu.add_bitstream(item, "hidden.pdf", b"%PDF", public=False)
    body = anon.get(f"/items/{item}", params={"expand": "bitstreams"}).json()
    bundles = [b["bundleName"] for b in body["bitstreams"]]
    assert len(bundles) == 24
    assert bundles.count("ORIGINAL") == 22
    assert {"THUMBNAIL", "TEXT"} <= set(bundles)
    assert "hidden.pdf" not in [b["name"] for b in body["bitstreams"]]


# ---- 29-35: statuses of writes ----------------------------------------------------------------


def test_29_creations_200_with_entity_updates_and_deletes_200_empty(
    admin: httpx.Client, emu: DSpace6Emulator
) -> None:
    r = admin.post("/communities", json={"name": "New top"})
    assert (r.status_code, r.json()["type"]) == (200, "community")
    top = r.json()["uuid"]
    r = admin.post(f"/communities/{top}/communities", json={"name": "New sub"})
    assert (r.status_code, r.json()["type"]) == (200, "community")
    sub = r.json()["uuid"]
    r = admin.post(f"/communities/{sub}/collections", json={"name": "New coll"})
    assert (r.status_code, r.json()["type"]) == (200, "collection")
    coll = r.json()["uuid"]
    r = admin.post(
        f"/collections/{coll}/items", json={"metadata": [{"key": "dc.title", "value": "N"}]}
    )
    assert (r.status_code, r.json()["type"]) == (200, "item")
    item = r.json()["uuid"]
    r = _upload(admin, item, b"hello", "hello.txt")
    assert (r.status_code, r.json()["type"]) == (200, "bitstream")
    bit = r.json()["uuid"]
    empty_ok = [
        admin.put(f"/communities/{top}", json={"name": "Renamed"}),
        admin.put(f"/collections/{coll}", json={"name": "Renamed"}),
        admin.put(f"/items/{item}/metadata", json=[{"key": "dc.title", "value": "T"}]),
        admin.post(f"/items/{item}/metadata", json=[{"key": "dc.subject", "value": "s"}]),
        admin.put(f"/bitstreams/{bit}", json={"name": "renamed.txt"}),
        admin.put(f"/bitstreams/{bit}/data", content=b"new content"),
        admin.delete(f"/bitstreams/{bit}"),
        admin.delete(f"/items/{item}/metadata"),
        admin.delete(f"/items/{item}"),
        admin.delete(f"/collections/{coll}", headers={"Content-Type": "application/json"}),
        admin.delete(f"/communities/{top}"),
    ]
    assert [(r.status_code, r.content) for r in empty_ok] == [(200, b"")] * len(empty_ok)
    assert emu.get_object(top) is None
    assert emu.get_object(sub) is None


def test_30_top_community_creation_needs_site_admin(
    user: httpx.Client, admin: httpx.Client, emu: DSpace6Emulator
) -> None:
    community = emu.add_community("Granted")
    emu.grant(USER, community, "ADMIN")  # even a community administrator may not
    assert user.post("/communities", json={"name": "Mine"}).status_code == 401
    assert admin.post("/communities", json={"name": "Mine"}).status_code == 200


def test_31_object_bodies_need_json_or_xml_content_type(admin: httpx.Client, tree: Tree) -> None:
    body = json.dumps({"name": "x"}).encode()
    meta = json.dumps([{"key": "dc.title", "value": "x"}]).encode()
    for content_type in (None, "text/plain", "application/x-www-form-urlencoded"):
        headers = {"Content-Type": content_type} if content_type else {}
        for method, path, payload in [
            ("POST", "/communities", body),
            ("PUT", f"/communities/{tree.community}", body),
            ("POST", f"/communities/{tree.community}/collections", body),
            ("PUT", f"/collections/{tree.collection}", body),
            ("POST", f"/collections/{tree.collection}/items", b'{"metadata":[]}'),
            ("POST", f"/items/{tree.item}/metadata", meta),
            ("PUT", f"/items/{tree.item}/metadata", meta),
            ("PUT", f"/bitstreams/{tree.bitstream}", body),
        ]:
            r = admin.request(method, path, content=payload, headers=headers)
            assert r.status_code == 415, (method, path, content_type)
    ok = admin.put(
        f"/communities/{tree.community}",
        content=body,
        headers={"Content-Type": "application/json; charset=UTF-8"},
    )
    assert ok.status_code == 200


def test_32_errors_have_no_json_body(anon: httpx.Client, admin: httpx.Client, tree: Tree) -> None:
    errors = [
        anon.get(f"/items/{tree.private_item}"),  # 401
        anon.get("/items/00000000-0000-4000-8000-000000000000"),  # 404
        anon.get("/items/bogus"),  # 500
        anon.get("/handle/123456789/99999"),  # 500
        admin.post("/communities", content=b"{}", headers={"Content-Type": "text/plain"}),  # 415
        anon.patch(f"/items/{tree.item}"),  # 405
        admin.post("/communities", json={"name": "x", "bogus": 1}),  # 400
    ]
    assert [r.status_code for r in errors] == [401, 404, 500, 500, 415, 405, 400]
    for r in errors:
        assert not r.headers["content-type"].startswith("application/json")
        assert not _is_json(r)
    assert errors[-1].headers["content-type"].startswith("text/plain")


def test_33_delete_collection_item_and_handle_quirks_answer_500(
    user: httpx.Client, admin: httpx.Client, anon: httpx.Client, tree: Tree
) -> None:
    json_ct = {"Content-Type": "application/json"}
    missing = "00000000-0000-4000-8000-000000000000"
    assert (
        admin.delete(f"/collections/{tree.collection}/items/{missing}", headers=json_ct).status_code
        == 500
    )
    assert (
        user.delete(
            f"/collections/{tree.collection}/items/{tree.item}", headers=json_ct
        ).status_code
        == 500
    )
    assert anon.delete(f"/collections/{tree.collection}/items/{tree.item}").status_code == 500
    assert anon.get("/handle/123456789/99999").status_code == 500
    private_handle = admin.get(f"/items/{tree.private_item}").json()["handle"]
    assert anon.get(f"/handle/{private_handle}").status_code == 500
    public = anon.get(f"/items/{tree.item}").json()
    r = anon.get(f"/handle/{public['handle']}")
    assert (r.status_code, r.json()["uuid"]) == (200, tree.item)


def test_34_unmapping_from_last_collection_deletes_the_item(
    admin: httpx.Client, emu: DSpace6Emulator
) -> None:
    community = emu.add_community("C")
    first = emu.add_collection("First", community)
    second = emu.add_collection("Second", community)
    item = emu.add_item(first, "Mapped twice")
    emu.map_item(item, second)
    r = admin.delete(f"/collections/{first}/items/{item}")
    assert r.status_code == 200
    assert admin.get(f"/items/{item}").status_code == 200
    assert emu.items_of(first) == []
    r = admin.delete(f"/collections/{second}/items/{item}")
    assert r.status_code == 200
    assert admin.get(f"/items/{item}").status_code == 404


def test_34b_deleting_a_mapped_item_removes_it_from_every_collection(
    admin: httpx.Client, emu: DSpace6Emulator
) -> None:
    # ItemsResource.deleteItem → ItemServiceImpl.delete → clearCollections: not an unmap
    community = emu.add_community("C")
    first = emu.add_collection("First", community)
    second = emu.add_collection("Second", community)
    item = emu.add_item(first, "Mapped twice")
    emu.map_item(item, second)
    assert admin.delete(f"/items/{item}").status_code == 200
    assert admin.get(f"/items/{item}").status_code == 404
    assert emu.items_of(first) == [] and emu.items_of(second) == []
    assert DSpace6Emulator.versions == ("6.3", "6.4")
    status = DSpace6Emulator(**DSpace6Emulator.options_for(DSpace6Emulator.make_profile("6.4")))
    assert status.source_version == "6.4"


def test_35_find_collection_by_exact_raw_name(
    anon: httpx.Client, admin: httpx.Client, tree: Tree
) -> None:
    json_ct = {"Content-Type": "application/json"}
    r = anon.post("/collections/find-collection", content=b"Theses", headers=json_ct)
    assert (r.status_code, r.json()["uuid"]) == (200, tree.collection)
    r = anon.post("/collections/find-collection", content=b'"Theses"', headers=json_ct)
    assert (r.status_code, r.content) == (204, b"")
    r = anon.post("/collections/find-collection", content=b"theses", headers=json_ct)
    assert r.status_code == 204
    r = anon.post("/collections/find-collection", content=b"Secret", headers=json_ct)
    assert r.status_code == 204
    r = admin.post("/collections/find-collection", content=b"Secret", headers=json_ct)
    assert (r.status_code, r.json()["uuid"]) == (200, tree.private_collection)


# ---- 36-39: metadata --------------------------------------------------------------------------


def _values(client: httpx.Client, item: str, key: str) -> list[tuple[str | None, str | None]]:
    entries = client.get(f"/items/{item}/metadata").json()
    return [(e["value"], e["language"]) for e in entries if e["key"] == key]


def test_36_metadata_append_replace_skip_and_registry(
    admin: httpx.Client, emu: DSpace6Emulator, tree: Tree
) -> None:
    item = tree.item
    r = admin.post(
        f"/items/{item}/metadata",
        json=[
            {"key": "dc.subject", "value": "physics", "language": "en"},
            {"key": "dc.subject", "value": "Physik", "language": "de"},
        ],
    )
    assert r.status_code == 200
    r = admin.post(f"/items/{item}/metadata", json=[{"key": "dc.subject", "value": "optics"}])
    # POST adds without itemService.update: all three keep place 1, their order is not defined
    assert sorted(_values(admin, item, "dc.subject"), key=str) == sorted(
        [("physics", "en"), ("Physik", "de"), ("optics", None)], key=str
    )
    r = admin.put(
        f"/items/{item}/metadata",
        json=[
            {"key": "dc.subject", "value": "quantum", "language": "en"},
            {"key": "title", "value": "skipped: no dot"},
            {"key": "dc.title.alternative.extra", "value": "skipped: four parts"},
        ],
    )
    assert r.status_code == 200
    assert _values(admin, item, "dc.subject") == [("quantum", "en")]
    assert _values(admin, item, "dc.title") == [("A thesis", None)]
    assert _values(admin, item, "dc.contributor.author") == [("Doe, Jane", None)]
    before = emu.get_object(item)
    r = admin.post(f"/items/{item}/metadata", json=[{"key": "dc.nosuchfield", "value": "x"}])
    assert r.status_code == 500
    r = admin.put(f"/items/{item}/metadata", json=[{"key": "dc.subject.bogus", "value": "x"}])
    assert r.status_code == 500
    after = emu.get_object(item)
    assert before is not None and after is not None
    assert after["metadata"] == before["metadata"]


def test_37_delete_metadata_keeps_four_system_fields(
    admin: httpx.Client, user: httpx.Client, emu: DSpace6Emulator, tree: Tree
) -> None:
    emu.grant(USER, tree.item, "WRITE")
    (handle_uri,) = [v for v, _ in _values(admin, tree.item, "dc.identifier.uri")]
    # PUT numbers the places (a POST would leave both at 1, and "first" undefined)
    admin.put(
        f"/items/{tree.item}/metadata",
        json=[
            {"key": "dc.identifier.uri", "value": handle_uri},
            {"key": "dc.identifier.uri", "value": "http://second"},
        ],
    )
    before = admin.get(f"/items/{tree.item}").json()["lastModified"]
    r = user.delete(f"/items/{tree.item}/metadata")
    assert (r.status_code, r.content) == (200, b"")
    snapshot = emu.get_object(tree.item)
    assert snapshot is not None
    kept = snapshot["metadata"]
    assert sorted(kept) == sorted(
        [
            "dc.date.accessioned",
            "dc.date.available",
            "dc.identifier.uri",
            "dc.description.provenance",
        ]
    )
    assert all(len(values) == 1 for values in kept.values())
    assert kept["dc.identifier.uri"][0].startswith("http://hdl.handle.net/123456789/")
    visible = [e["key"] for e in user.get(f"/items/{tree.item}/metadata").json()]
    assert sorted(visible) == ["dc.date.accessioned", "dc.date.available", "dc.identifier.uri"]
    assert user.get(f"/items/{tree.item}").json()["name"] is None
    # deleteItemMetadata calls no itemService.update: lastModified stays
    assert admin.get(f"/items/{tree.item}").json()["lastModified"] == before


def test_37b_delete_metadata_adds_null_values_for_missing_system_fields(
    admin: httpx.Client, emu: DSpace6Emulator, tree: Tree
) -> None:
    # an item in review has no handle, no accession dates and no provenance yet: the four
    # getMetadataFirstValue are null, and addMetadata of a null stores a null value
    emu.set_workflow(tree.collection, True)
    r = admin.post(
        f"/collections/{tree.collection}/items",
        json={"metadata": [{"key": "dc.title", "value": "In review"}]},
    )
    item = r.json()["uuid"]
    assert admin.delete(f"/items/{item}/metadata").status_code == 200
    entries = admin.get(f"/items/{item}/metadata").json()
    assert sorted((e["key"], e["value"]) for e in entries) == [
        ("dc.date.accessioned", None),
        ("dc.date.available", None),
        ("dc.description.provenance", None),
        ("dc.identifier.uri", None),
    ]


def test_36b_metadata_values_null_trimmed_and_only_put_updates_the_item(
    admin: httpx.Client, emu: DSpace6Emulator, tree: Tree
) -> None:
    item = tree.item
    emu.touch(item, datetime(2017, 3, 23, 11, 15, 28))
    stamp = admin.get(f"/items/{item}").json()["lastModified"]
    r = admin.post(
        f"/items/{item}/metadata",
        json=[
            {"key": "dc.subject", "value": "  spaced\u0007out\t", "language": " en "},
            {"key": "dc.rights", "value": None},
        ],
    )
    assert r.status_code == 200
    # addMetadata trims (Java's trim: everything up to U+0020) and blanks other controls;
    # a null value is stored as a null value
    assert _values(admin, item, "dc.subject") == [("spaced out", "en")]
    assert _values(admin, item, "dc.rights") == [(None, None)]
    # ItemsResource.addItemMetadata has no itemService.update: lastModified is unchanged
    assert admin.get(f"/items/{item}").json()["lastModified"] == stamp
    # a null value in a PUT clears the key and stores a null: it is no removal
    r = admin.put(f"/items/{item}/metadata", json=[{"key": "dc.subject", "value": None}])
    assert r.status_code == 200
    assert _values(admin, item, "dc.subject") == [(None, None)]
    # PUT updates the item and numbers the places: the order sent is the order read back
    authors = ["Zeta, Z", "Alpha, A", "Mu, M"]
    r = admin.put(
        f"/items/{item}/metadata",
        json=[{"key": "dc.contributor.author", "value": a} for a in authors],
    )
    assert r.status_code == 200
    assert [v for v, _ in _values(admin, item, "dc.contributor.author")] == authors
    assert admin.get(f"/items/{item}").json()["lastModified"] != stamp


def test_38_item_creation_with_dotless_key_is_500(
    admin: httpx.Client, emu: DSpace6Emulator, tree: Tree
) -> None:
    before = emu.items_of(tree.collection)
    r = admin.post(
        f"/collections/{tree.collection}/items", json={"metadata": [{"key": "title", "value": "x"}]}
    )
    assert r.status_code == 500
    assert emu.items_of(tree.collection) == before
    r = admin.post(
        f"/collections/{tree.collection}/items",
        json={"metadata": [{"key": "dc.title", "value": "ok"}]},
    )
    assert r.status_code == 200


def test_39_find_by_metadata_field(
    anon: httpx.Client, admin: httpx.Client, emu: DSpace6Emulator, tree: Tree
) -> None:
    coll = tree.collection
    wanted = emu.add_item(coll, "Match", metadata={"dc.subject": ["graphene"]})
    emu.add_item(coll, "Private match", metadata={"dc.subject": ["graphene"]}, public=False)
    emu.add_item(coll, "Hidden match", metadata={"dc.subject": ["graphene"]}, discoverable=False)
    emu.add_item(coll, "Other", metadata={"dc.subject": ["silicon"]})
    query = {"key": "dc.subject", "value": "graphene"}
    r = anon.post("/items/find-by-metadata-field", json=query)
    assert r.status_code == 200
    assert [i["uuid"] for i in r.json()] == [wanted]
    assert len(admin.post("/items/find-by-metadata-field", json=query).json()) == 2
    r = anon.post("/items/find-by-metadata-field", json={"key": "subject", "value": "graphene"})
    assert r.status_code == 404


# ---- 40-47: bitstreams ------------------------------------------------------------------------


def test_40_upload_into_original_with_size_md5_and_format(
    admin: httpx.Client, emu: DSpace6Emulator, tree: Tree
) -> None:
    item = emu.add_item(tree.collection, "Fresh")
    assert emu.bitstreams_of(item) == []
    data = minimal_pdf("Uploaded")
    r = _upload(admin, item, data, "a.pdf")
    assert r.status_code == 200
    body = r.json()
    assert body["type"] == "bitstream"
    assert body["bundleName"] == "ORIGINAL"
    assert body["sizeBytes"] == len(data)
    assert body["checkSum"]["value"] == hashlib.md5(data).hexdigest()
    assert (body["format"], body["mimeType"]) == ("Adobe PDF", "application/pdf")
    assert emu.bitstream_data(body["uuid"]) == data
    odd = _upload(admin, item, b"\x00\x01", "blob.weird").json()
    assert (odd["format"], odd["mimeType"]) == ("Unknown", "application/octet-stream")
    text = _upload(admin, item, b"hi", "notes.txt").json()
    assert (text["format"], text["mimeType"]) == ("Text", "text/plain")


def test_40b_sequence_id_is_minus_one_until_the_next_item_update(
    admin: httpx.Client, emu: DSpace6Emulator, tree: Tree
) -> None:
    item = emu.add_item(tree.collection, "Sequenced")
    emu.add_bitstream(item, "existing.txt", b"1")
    first = _upload(admin, item, b"2", "second.txt").json()
    assert first["sequenceId"] == -1
    assert admin.get(f"/bitstreams/{first['uuid']}").json()["sequenceId"] == -1
    second = _upload(admin, item, b"3", "third.txt").json()
    assert second["sequenceId"] == -1
    assert admin.get(f"/bitstreams/{first['uuid']}").json()["sequenceId"] == 2
    admin.put(f"/items/{item}/metadata", json=[{"key": "dc.subject", "value": "x"}])
    assert admin.get(f"/bitstreams/{second['uuid']}").json()["sequenceId"] == 3


def test_41_upload_without_name(admin: httpx.Client, tree: Tree) -> None:
    body = _upload(admin, tree.item, b"anonymous bytes", None).json()
    assert body["name"] is None
    assert body["format"] == "Unknown"
    r = admin.get(f"/bitstreams/{body['uuid']}/retrieve")
    assert r.headers["content-disposition"] == 'attachment; filename="null"'


def test_42_duplicate_names_coexist(admin: httpx.Client, emu: DSpace6Emulator, tree: Tree) -> None:
    a = _upload(admin, tree.item, b"first", "same.txt")
    b = _upload(admin, tree.item, b"second", "same.txt")
    assert a.status_code == b.status_code == 200
    assert a.json()["uuid"] != b.json()["uuid"]
    same = [x for x in emu.bitstreams_of(tree.item) if x["name"] == "same.txt"]
    assert sorted(x["size"] for x in same) == [5, 6]


def test_43_replacing_data_keeps_identity(admin: httpx.Client, tree: Tree) -> None:
    before = admin.get(f"/bitstreams/{tree.bitstream}").json()
    new = b"completely different content" * 100
    r = admin.put(f"/bitstreams/{tree.bitstream}/data", content=new)
    assert (r.status_code, r.content) == (200, b"")
    after = admin.get(f"/bitstreams/{tree.bitstream}").json()
    for key in ("uuid", "name", "format", "mimeType", "sequenceId", "bundleName"):
        assert after[key] == before[key]
    assert after["sizeBytes"] == len(new)
    assert after["checkSum"]["value"] == hashlib.md5(new).hexdigest()
    assert admin.get(f"/bitstreams/{tree.bitstream}/retrieve").content == new


def test_44_rename_reguesses_format_and_keeps_a_null_description(
    admin: httpx.Client, emu: DSpace6Emulator, tree: Tree
) -> None:
    uuid = emu.add_bitstream(tree.item, "report.pdf", b"%PDF-1.4", description="Final report")
    r = admin.put(f"/bitstreams/{uuid}", json={"name": "report.txt"})
    assert (r.status_code, r.content) == (200, b"")
    body = admin.get(f"/bitstreams/{uuid}").json()
    assert body["name"] == "report.txt"
    assert (body["format"], body["mimeType"]) == ("Text", "text/plain")
    # setDescription(null) → setMetadataSingleValue skips a null: the description stays
    assert body["description"] == "Final report"
    r = admin.put(f"/bitstreams/{uuid}", json={"name": " report.pdf", "description": " A\x01B\n"})
    body = admin.get(f"/bitstreams/{uuid}").json()
    # name and description are stored the way addMetadata stores values: trimmed, controls blank
    assert (body["name"], body["format"], body["description"]) == (
        "report.pdf",
        "Adobe PDF",
        "A B",
    )
    assert admin.put(f"/bitstreams/{uuid}", json={"description": "no name"}).status_code == 500
    r = admin.put(f"/bitstreams/{uuid}", json={"name": "x.pdf", "schema": "dc"})
    assert r.status_code == 400


def test_44b_names_are_stored_as_metadata_values(
    admin: httpx.Client, emu: DSpace6Emulator, tree: Tree
) -> None:
    # Bitstream.setName and the containers' setMetadata("name") store through addMetadata:
    # trimmed, controls blanked; a blank container name becomes "Untitled"
    r = _upload(admin, tree.item, b"n", " notes.txt\x01")
    # the format is guessed from the name as sent, whose extension is "txt\x01": unknown
    assert (r.json()["name"], r.json()["format"]) == ("notes.txt", "Unknown")
    r = admin.post("/communities", json={"name": "  "})
    assert r.json()["name"] == "Untitled"
    r = admin.post(f"/communities/{r.json()['uuid']}/collections", json={"name": " Theses\t"})
    collection = r.json()["uuid"]
    assert r.json()["name"] == "Theses"
    assert admin.put(f"/collections/{collection}", json={"name": None}).status_code == 200
    assert admin.get(f"/collections/{collection}").json()["name"] == "Untitled"


def test_45_delete_bitstream(admin: httpx.Client, tree: Tree) -> None:
    r = admin.delete(f"/bitstreams/{tree.bitstream}")
    assert (r.status_code, r.content) == (200, b"")
    assert admin.get(f"/bitstreams/{tree.bitstream}").status_code == 404
    listing = admin.get(f"/items/{tree.item}", params={"expand": "bitstreams"}).json()
    assert tree.bitstream not in [b["uuid"] for b in listing["bitstreams"]]
    assert tree.bitstream not in [
        b["uuid"] for b in admin.get(f"/items/{tree.item}/bitstreams").json()
    ]


def test_46_anonymous_delete_of_item_bitstream_is_500(
    anon: httpx.Client, user: httpx.Client, emu: DSpace6Emulator, tree: Tree
) -> None:
    path = f"/items/{tree.item}/bitstreams/{tree.bitstream}"
    # WRITE on the item passes the item lookup; the bitstream DELETE check then fails, and the
    # log line dereferences the (null) anonymous user
    emu.grant(ANONYMOUS, tree.item, "WRITE")
    assert anon.delete(path).status_code == 500
    assert user.delete(path).status_code == 401  # a logged-in caller gets the real 401
    assert emu.get_object(tree.bitstream) is not None
    emu.grant(ANONYMOUS, tree.bitstream, "DELETE")
    assert anon.delete(path).status_code == 200
    assert emu.get_object(tree.bitstream) is None


def test_47_retrieve_ignores_range_and_sends_no_validators(
    anon: httpx.Client, emu: DSpace6Emulator, tree: Tree
) -> None:
    small = emu.add_bitstream(tree.item, "my notes (v2).txt", b"0123456789" * 100)
    r = anon.get(f"/bitstreams/{small}/retrieve", headers={"Range": "bytes=10-19"})
    assert r.status_code == 200
    assert r.content == b"0123456789" * 100
    assert r.headers["content-type"] == "text/plain"
    assert r.headers["content-disposition"] == 'attachment; filename="my notes (v2).txt"'
    assert r.headers["content-length"] == "1000"
    for header in ("etag", "last-modified", "accept-ranges", "content-range"):
        assert header not in r.headers
    big_data = bytes(range(256)) * 100
    big = emu.add_bitstream(tree.item, "big.pdf", big_data)
    r = anon.get(f"/bitstreams/{big}/retrieve", headers={"Range": "bytes=0-0"})
    assert (r.status_code, r.content) == (200, big_data)
    assert r.headers["content-type"] == "application/pdf"
    assert "content-length" not in r.headers
    assert r.headers["transfer-encoding"] == "chunked"


def test_48_hierarchy_lists_readable_nodes(
    anon: httpx.Client, admin: httpx.Client, emu: DSpace6Emulator, tree: Tree
) -> None:
    lonely = emu.add_community("Lonely")
    body = anon.get("/hierarchy").json()
    assert body["handle"] == "123456789/0"
    assert body["collection"] == []
    ids = {c["id"]: c for c in body["community"]}
    assert tree.community in ids and lonely in ids
    assert tree.private_community not in ids
    assert ids[lonely]["community"] == [] and ids[lonely]["collection"] == []
    top = ids[tree.community]
    assert tree.private_collection not in [k["id"] for k in top["collection"]]
    admin_body = admin.get("/hierarchy").json()
    admin_top = next(c for c in admin_body["community"] if c["id"] == tree.community)
    assert tree.private_collection in [k["id"] for k in admin_top["collection"]]


def test_49_items_created_under_workflow_are_not_listed(
    admin: httpx.Client, emu: DSpace6Emulator, tree: Tree
) -> None:
    review = emu.add_collection("Reviewed", tree.community, workflow=True)
    body = {"metadata": [{"key": "dc.title", "value": "Pending", "language": "en"}]}
    r = admin.post(f"/collections/{review}/items", json=body)
    assert r.status_code == 200
    created = r.json()
    assert created["archived"] == "false"
    assert created["handle"] is None
    assert admin.get(f"/collections/{review}/items").json() == []
    assert admin.get(f"/collections/{review}").json()["numberItems"] == 0
    plain = admin.post(f"/collections/{tree.collection}/items", json=body).json()
    assert plain["archived"] == "true"
    # the creation response carries java.util.Date.toString(), later GETs the Timestamp form
    assert re.fullmatch(
        r"[A-Z][a-z]{2} [A-Z][a-z]{2} \d\d \d\d:\d\d:\d\d \w+ \d{4}", plain["lastModified"]
    )
    assert plain["uuid"] in [
        i["uuid"] for i in admin.get(f"/collections/{tree.collection}/items").json()
    ]


def test_negotiation_and_query_parameter_conversion(anon: httpx.Client, tree: Tree) -> None:
    path = f"/items/{tree.item}"
    # XML is not implemented (documented deviation): JSON for */*, 406 when only XML is wanted
    assert anon.get(path, headers={"Accept": "*/*"}).json()["uuid"] == tree.item
    browser = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
    assert anon.get(path, headers={"Accept": browser}).status_code == 200
    assert anon.get(path, headers={"Accept": "application/xml"}).status_code == 406
    # JAX-RS answers 404 when a query parameter does not convert to its Java type
    assert anon.get("/communities", params={"limit": "ten"}).status_code == 404
    assert anon.get("/communities", params={"offset": " 1"}).status_code == 404


# ---- fault plan, request log, sessions, scale --------------------------------------------------


def test_planned_503_with_retry_after(anon: httpx.Client, emu: DSpace6Emulator) -> None:
    emu.plan_fault(method="GET", path=r"^/rest/status$", status=503, retry_after="7")
    r = anon.get("/status")
    assert r.status_code == 503
    assert r.headers["retry-after"] == "7"
    assert anon.get("/status").status_code == 200
    assert emu.faults_injected == 1


def test_planned_reset_cuts_a_retrieve_mid_body(
    anon: httpx.Client, emu: DSpace6Emulator, tree: Tree
) -> None:
    data = large_blob(1 << 20, seed=3)
    uuid = emu.add_bitstream(tree.item, "one-mib.bin", data)
    emu.plan_fault(method="GET", path=r"/retrieve$", reset_after=200_000)
    received = bytearray()
    with (
        pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)),
        anon.stream("GET", f"/bitstreams/{uuid}/retrieve") as r,
    ):
        assert r.status_code == 200
        for chunk in r.iter_raw():
            received += chunk
    assert 0 < len(received) < len(data)
    assert bytes(received) == data[: len(received)]
    assert anon.get(f"/bitstreams/{uuid}/retrieve").content == data


def test_request_log_records_requests(anon: httpx.Client, emu: DSpace6Emulator, tree: Tree) -> None:
    emu.clear_log()
    anon.get(f"/items/{tree.item}", params={"expand": "all"})
    anon.get(f"/items/{tree.private_item}")
    anon.get(f"/bitstreams/{tree.bitstream}/retrieve")
    entries = emu.requests("GET", r"^/rest/items/")
    assert [(e.path, e.status) for e in entries] == [
        (f"/rest/items/{tree.item}", 200),
        (f"/rest/items/{tree.private_item}", 401),
    ]
    assert entries[0].query == "expand=all"
    download = emu.requests(path=r"/retrieve$")[0]
    assert download.bytes_out == len(emu.bitstream_data(tree.bitstream))


def test_expired_sessions_become_anonymous(user: httpx.Client, emu: DSpace6Emulator) -> None:
    assert user.get("/status").json()["authenticated"] is True
    emu.expire_sessions()
    assert user.get("/status").json()["authenticated"] is False


def test_large_collection_pages_and_big_bodies_are_fast(
    admin: httpx.Client, emu: DSpace6Emulator
) -> None:
    coll = emu.add_collection("Big", emu.add_community("Scale"))
    uuids = {emu.add_item(coll, f"Item {n:04d}") for n in range(1050)}
    started = time.monotonic()
    number = admin.get(f"/collections/{coll}").json()["numberItems"]
    seen: list[str] = []
    for offset in range(0, number, 100):
        page = admin.get(f"/collections/{coll}/items", params={"offset": offset}).json()
        seen += [i["uuid"] for i in page]
    assert seen == sorted(uuids)
    item = next(iter(uuids))
    data = large_blob(20 << 20, seed=20)
    uploaded = _upload(admin, item, data, "twenty.bin").json()
    assert uploaded["checkSum"]["value"] == hashlib.md5(data).hexdigest()
    assert admin.get(f"/bitstreams/{uploaded['uuid']}/retrieve").content == data
    assert time.monotonic() - started < 15


# ---- demo data ---------------------------------------------------------------------------------


def _pdf_is_consistent(data: bytes) -> bool:
    start = int(data.rsplit(b"startxref\n", 1)[1].split(b"\n", 1)[0])
    table = data[start:].split(b"trailer", 1)[0].decode().splitlines()
    entries = [line for line in table[2:] if line.endswith("n ")]
    return data.startswith(b"%PDF-1.4") and all(
        data[int(e[:10]) :].startswith(f"{n} 0 obj".encode()) for n, e in enumerate(entries, 1)
    )


def _png_is_consistent(data: bytes) -> bool:
    pos, kinds = 8, []
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length : pos + 12 + length])
        if zlib.crc32(kind + body) & 0xFFFFFFFF != crc:
            return False
        kinds.append(kind)
        pos += 12 + length
    return data.startswith(b"\x89PNG\r\n\x1a\n") and kinds[0] == b"IHDR" and kinds[-1] == b"IEND"


def _demo_snapshot(emu: DSpace6Emulator) -> dict[str, object]:
    """What a client sees of the demo repository, anonymously and as its administrator."""
    with _serve(emu) as srv, httpx.Client(base_url=srv.url + "/rest", headers=JSON, **PLAIN) as c:
        hierarchy = c.get("/hierarchy").json()
        public = c.get("/items", params={"expand": "bitstreams,metadata"}).json()
        with _login(srv.url + "/rest", "demo@example.org", "demo") as admin_client:
            every = admin_client.get("/items", params={"expand": "bitstreams"}).json()
    files = {(b["name"], b["checkSum"]["value"]) for i in every for b in i["bitstreams"]}
    return {"hierarchy": hierarchy, "public": public, "every": every, "files": files}


def test_demo_data_is_deterministic_and_well_formed() -> None:
    started = time.monotonic()
    emu = DSpace6Emulator(seed=1)
    seed_dspace6(emu, admin=("demo@example.org", "demo"))
    assert time.monotonic() - started < 5
    snap = _demo_snapshot(emu)
    hierarchy = snap["hierarchy"]
    assert isinstance(hierarchy, dict)
    tops = [n["name"] for n in hierarchy["community"]]
    assert tops == ["Faculty of Humanities", "Faculty of Science", "University Library"]
    science = hierarchy["community"][1]
    assert [n["name"] for n in science["community"]] == ["Department of Physics"]
    public, every = snap["public"], snap["every"]
    assert isinstance(public, list) and isinstance(every, list)
    assert (len(public), len(every)) == (9, 10)  # the tenth is in the private collection
    names = {b["name"]: b for i in public for b in i["bitstreams"]}
    assert names["simulation-output.bin"]["sizeBytes"] == 64 << 20
    assert {"README.txt", "profiles.csv", "thesis.pdf", "map.png"} <= names.keys()
    for item in public:
        keys = {m["key"] for m in item["metadata"]}
        assert {"dc.title", "dc.contributor.author", "dc.date.issued"} <= keys
        assert {"dc.description.abstract", "dc.subject"} <= keys
        for b in item["bitstreams"]:
            data = emu.bitstream_data(b["uuid"])
            assert hashlib.md5(data).hexdigest() == b["checkSum"]["value"]
            if b["name"].endswith(".pdf"):
                assert _pdf_is_consistent(data), b["name"]
            if b["name"].endswith(".png"):
                assert _png_is_consistent(data), b["name"]
    # a second emulator seeded the same way holds the same files (its UUIDs may differ)
    again = DSpace6Emulator(seed=2)
    seed_dspace6(again, admin=("demo@example.org", "demo"))
    files = snap["files"]
    assert isinstance(files, set) and len(files) >= 20
    assert _demo_snapshot(again)["files"] == files


def test_demo_pdf_and_png_helpers() -> None:
    assert _pdf_is_consistent(minimal_pdf("Title (with) \\ specials", ["line"]))
    assert _png_is_consistent(png_image(17, 5, 1))
    assert png_image(17, 5, 1) == png_image(17, 5, 1)
    assert large_blob(3 << 20, seed=1)[: 1 << 20] != large_blob(3 << 20, seed=1)[1 << 20 : 2 << 20]
