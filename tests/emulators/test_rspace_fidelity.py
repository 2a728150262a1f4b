"""The RSpace emulator against the server behaviour described in docs/protocols/rspace.md.

Each test names the checklist items it covers (the numbered fidelity checklist the emulator was
first written against). Requests are plain httpx over loopback; the
last tests run the official client (PyPI ``rspace-client`` 2.7.x) against the emulator, which
is our evidence that it speaks the real protocol.
"""

from __future__ import annotations

import concurrent.futures
import csv
import io
import json
import re
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from docfs.emulators.base import EmulatorServer
from docfs.emulators.demo_rspace import seed_demo
from docfs.emulators.rspace import DEFAULT_API_KEY, RSpaceEmulator
from docfs.emulators.samples import minimal_pdf, png_image

TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
ERROR_KEYS = [
    "status",
    "httpCode",
    "internalCode",
    "message",
    "messageCode",
    "errors",
    "iso8601Timestamp",
    "data",
]
OTHER_KEY = "otherUsersApiKey0001"
#: Spring's HttpStatus enum names, which the ApiError "status" field carries
SPRING_STATUS = {
    400: "BAD_REQUEST",
    401: "UNAUTHORIZED",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    409: "CONFLICT",
    413: "PAYLOAD_TOO_LARGE",
    422: "UNPROCESSABLE_ENTITY",
    429: "TOO_MANY_REQUESTS",
    500: "INTERNAL_SERVER_ERROR",
}


class Api:
    """An emulator on loopback plus an httpx client holding the default user's key."""

    def __init__(self, emu: RSpaceEmulator, server: EmulatorServer) -> None:
        self.emu = emu
        self.server = server
        self.base = f"{server.url}/api/v1"
        self.http = httpx.Client(
            verify=False, base_url=self.base, headers={"apiKey": DEFAULT_API_KEY}
        )

    def get(self, path: str, **kw: Any) -> httpx.Response:
        return self.http.get(path, **kw)

    def post(self, path: str, **kw: Any) -> httpx.Response:
        return self.http.post(path, **kw)

    def put(self, path: str, **kw: Any) -> httpx.Response:
        return self.http.put(path, **kw)

    def delete(self, path: str, **kw: Any) -> httpx.Response:
        return self.http.delete(path, **kw)

    def as_user(self, key: str) -> httpx.Client:
        return httpx.Client(verify=False, base_url=self.base, headers={"apiKey": key})


def plain_get(url: str, **kw: Any) -> httpx.Response:
    # verify=False: plain HTTP on loopback, and it skips loading the CA bundle (~0.2 s)
    with httpx.Client(verify=False) as client:
        return client.get(url, **kw)


def plain_post(url: str, **kw: Any) -> httpx.Response:
    with httpx.Client(verify=False) as client:
        return client.post(url, **kw)


def _serve(emu: RSpaceEmulator, server_url: str | None = None) -> EmulatorServer:
    server = EmulatorServer(emu)
    # accepted sockets inherit TCP_NODELAY (else each keep-alive answer waits for a delayed ACK)
    server._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    server.start()
    emu.server_url = server_url or server.url
    return server


@pytest.fixture
def api() -> Iterator[Api]:
    emu = RSpaceEmulator(seed=3)
    emu.add_user("other", api_key=OTHER_KEY)
    server = _serve(emu)
    client = Api(emu, server)
    yield client
    client.http.close()
    server.stop()


def assert_error(response: httpx.Response, status: int, internal: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert list(body) == ERROR_KEYS
    assert body["httpCode"] == status and body["internalCode"] == internal
    assert body["status"] == SPRING_STATUS[status]
    return body


def upload(api: Api, name: str, data: bytes, **fields: Any) -> httpx.Response:
    return api.post("/files", files={"file": (name, data)}, data=fields)


# --------------------------------------------------------------------------------------------
# authentication (items 1-6)


def test_01_missing_credentials(api: Api) -> None:
    body = assert_error(plain_get(f"{api.base}/status"), 401, 40101)
    assert body["errors"] == ["Authorisation error"]
    assert body["message"].startswith("API authentication information is missing")


def test_02_invalid_and_unknown_keys(api: Api) -> None:
    bad = plain_get(f"{api.base}/status", headers={"apiKey": "????"})
    body = assert_error(bad, 401, 40101)
    assert body["message"] == "API key invalid - must match regexp:[A-Za-z_0-9]+"
    unknown = plain_get(f"{api.base}/status", headers={"apiKey": "wellFormedButUnknown1"})
    assert "could not be authenticated for token" in assert_error(unknown, 401, 40101)["message"]
    assert "wellFormedButUnknown1" not in unknown.text  # the token is abbreviated


def test_03_api_key_wins_over_authorization(api: Api) -> None:
    both = plain_get(
        f"{api.base}/status",
        headers={"apiKey": DEFAULT_API_KEY, "Authorization": "Bearer nonsense"},
    )
    assert both.status_code == 200
    bad_bearer = plain_get(f"{api.base}/status", headers={"Authorization": "Token x y"})
    assert "Bearer" in assert_error(bad_bearer, 401, 40101)["message"]


def test_04_bad_key_wins_over_not_found(api: Api) -> None:
    other = api.emu.add_file(None, "x.txt", b"x", username="other")
    assert api.get(f"/files/{other}").status_code == 404  # good key: hidden
    assert_error(
        plain_get(f"{api.base}/files/{other}", headers={"apiKey": "bad_key_123456"}), 401, 40101
    )


def test_05_06_status_needs_auth_and_sets_no_cookie(api: Api) -> None:
    response = api.get("/status")
    assert response.status_code == 200
    assert response.json() == {"message": "OK", "rspaceVersion": "2.16.0"}
    assert "set-cookie" not in response.headers
    assert plain_get(f"{api.base}/status").status_code == 401


def test_oauth_password_grant_bearer_and_expiry() -> None:
    emu = RSpaceEmulator(oauth_clients={"app": "secret"}, token_lifetime=60)
    server = _serve(emu)
    try:
        form = {"grant_type": "password", "client_id": "app", "client_secret": "secret"}
        bad = plain_post(
            f"{server.url}/oauth/token", data={**form, "username": "user1a", "password": "x"}
        )
        assert bad.status_code == 400
        good = plain_post(
            f"{server.url}/oauth/token",
            data={**form, "username": "user1a", "password": "user1a-Passw0rd"},
        )
        tokens = good.json()
        assert set(tokens) == {"scope", "access_token", "refresh_token", "expires_in"}
        auth = {"Authorization": f"Bearer {tokens['access_token']}"}
        assert plain_get(f"{server.url}/api/v1/status", headers=auth).status_code == 200
        emu.expire_tokens()
        expired = plain_get(f"{server.url}/api/v1/status", headers=auth)
        assert assert_error(expired, 401, 40101)["message"] == "OAuth token is invalid or expired."
        refreshed = plain_post(
            f"{server.url}/oauth/token",
            data={**form, "grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
        )
        auth = {"Authorization": f"Bearer {refreshed.json()['access_token']}"}
        assert plain_get(f"{server.url}/api/v1/status", headers=auth).status_code == 200
    finally:
        server.stop()


# --------------------------------------------------------------------------------------------
# conventions (items 7-13)


def test_07_09_nulls_links_and_timestamps(api: Api) -> None:
    folder = api.post("/folders", json={"name": "F"}).json()
    assert folder["mediaType"] is None and folder["pathToRootFolder"] is None
    assert folder["_links"] == [{"link": f"{api.base}/folders/{folder['id']}", "rel": "self"}]
    assert TIMESTAMP.match(folder["created"]) and TIMESTAMP.match(folder["lastModified"])
    doc = api.post("/documents", json={}).json()
    assert doc["tags"] is None and "tags" in doc
    assert doc["fields"][0]["_links"] == [] and doc["owner"]["_links"] == []
    assert TIMESTAMP.match(doc["fields"][0]["lastModified"])


def test_08_links_come_from_the_configured_url() -> None:
    emu = RSpaceEmulator()
    server = _serve(emu, server_url="https://eln.example.org")
    try:
        response = plain_get(
            f"{server.url}/api/v1/folders/tree",
            headers={"apiKey": DEFAULT_API_KEY, "Host": "evil.example.com"},
        )
        links = [link["link"] for link in response.json()["_links"]]
        assert links == ["https://eln.example.org/api/v1/folders/tree?pageNumber=0"]
    finally:
        server.stop()


def test_10_pagination_defaults_and_validation(api: Api) -> None:
    home = api.emu.home_id()
    for i in range(25):
        api.emu.add_document(home, f"doc {i:02d}")
    listing = api.get("/documents").json()
    assert listing["pageNumber"] == 0 and len(listing["documents"]) == 20
    names = [d["name"] for d in listing["documents"]]
    assert names == [f"doc {i:02d}" for i in range(24, 4, -1)]  # lastModified desc
    for size in (0, 101):
        body = assert_error(api.get("/documents", params={"pageSize": size}), 400, 40002)
        assert body["errors"] == ["pageSize: Page size must be between 1 and 100."]
    body = assert_error(api.get("/documents", params={"pageNumber": -1}), 400, 40002)
    assert body["errors"] == ["pageNumber: Page number must be 0 or greater."]
    past = api.get("/documents", params={"pageNumber": 9}).json()
    assert past["documents"] == [] and past["totalHits"] == 25
    assert api.get("/documents", params={"pageSize": 100}).status_code == 200


def test_11_link_order_and_query_strings(api: Api) -> None:
    home = api.emu.home_id()
    for i in range(9):
        api.emu.add_document(home, f"d{i}")
    listing = api.get("/documents", params={"pageSize": 2, "pageNumber": 2, "orderBy": "name asc"})
    links = listing.json()["_links"]
    assert [link["rel"] for link in links] == ["prev", "first", "next", "last", "self"]
    base = f"{api.base}/documents?pageSize=2&pageNumber="
    assert links[0]["link"] == base + "1&orderBy=name%20asc"
    assert links[3]["link"] == base + "4&orderBy=name%20asc"
    first_page = api.get("/documents", params={"pageNumber": 0}).json()["_links"]
    assert first_page == [{"link": f"{api.base}/documents?pageNumber=0", "rel": "self"}]
    second = api.get("/documents", params={"pageSize": 5, "pageNumber": 1}).json()["_links"]
    assert [link["rel"] for link in second] == ["prev", "self"]  # no first when prev is 0
    searched = api.get("/documents", params={"query": "d1"}).json()["_links"]
    assert searched[-1]["link"].endswith("pageNumber=0&query=d1")


def test_12_tree_links_drop_types_and_share_links_point_at_forms(api: Api) -> None:
    home = api.emu.home_id()
    for i in range(3):
        api.emu.add_folder(home, f"f{i}")
    tree = api.get("/folders/tree", params={"typesToInclude": "folder", "pageSize": 2}).json()
    assert tree["_links"][0]["rel"] == "next"
    assert "typesToInclude" not in tree["_links"][0]["link"]
    doc = api.emu.add_document(home, "to share")
    group = api.emu.add_group("Lab", ["user1a", "other"])
    api.emu.add_share(doc, group=group)
    shares = api.get("/share").json()
    assert shares["_links"][-1]["link"] == f"{api.base}/forms?pageNumber=0"


def test_13_one_id_sequence_and_global_id_prefixes(api: Api) -> None:
    folder = api.post("/folders", json={}).json()
    notebook = api.post("/folders", json={"notebook": True}).json()
    doc = api.post("/documents", json={}).json()
    media = upload(api, "a.txt", b"a").json()
    ids = [folder["id"], notebook["id"], doc["id"], media["id"]]
    assert len(set(ids)) == 4 and ids == sorted(ids)
    assert folder["globalId"] == f"FL{folder['id']}" and notebook["globalId"].startswith("NB")
    assert doc["globalId"].startswith("SD") and media["globalId"].startswith("GL")
    assert doc["form"]["globalId"].startswith("FM") and doc["fields"][0]["globalId"].startswith(
        "FD"
    )
    gallery = api.emu.gallery_id()
    assert api.get(f"/folders/{gallery}").json()["globalId"] == f"GF{gallery}"


# --------------------------------------------------------------------------------------------
# folders and the tree (items 14-25)


def test_14_create_folder_and_notebook_defaults(api: Api) -> None:
    created = api.post("/folders", json={})
    assert created.status_code == 201
    body = created.json()
    assert body["name"] == "Untitled Folder" and body["parentFolderId"] == api.emu.home_id()
    notebook = api.post("/folders", json={"notebook": True}).json()
    assert notebook["name"] == "Untitled Notebook" and notebook["globalId"].startswith("NB")
    assert notebook["notebook"] is True


def test_15_folder_creation_rules(api: Api) -> None:
    nb = api.post("/folders", json={"notebook": True}).json()["id"]
    inside = assert_error(api.post("/folders", json={"parentFolderId": nb}), 400, 40002)
    assert "Notebooks and folders cannot be created inside notebooks." in inside["errors"][0]
    gallery = api.emu.gallery_id()
    top = assert_error(api.post("/folders", json={"parentFolderId": gallery}), 400, 40002)
    assert "You cannot create a top-level folder in the Gallery" in top["errors"][0]
    images = api.emu.folder_id("Images")
    assert_error(
        api.post("/folders", json={"parentFolderId": images, "notebook": True}), 400, 40002
    )
    assert api.post("/folders", json={"parentFolderId": images}).status_code == 201
    assert_error(api.post("/folders", json={"parentFolderId": -1111}), 400, 40002)
    other_home = api.emu.home_id("other")
    assert_error(api.post("/folders", json={"parentFolderId": other_home}), 401, 40101)
    shared = api.emu.folder_id("LabGroups")
    assert api.post("/folders", json={"parentFolderId": shared}).status_code == 422
    assert_error(api.post("/folders", json={"parentFolderId": 999999}), 500, 50001)


def test_16_duplicate_names_are_allowed(api: Api) -> None:
    a = api.post("/folders", json={"name": "Same"}).json()
    b = api.post("/folders", json={"name": "Same"}).json()
    assert a["id"] != b["id"]
    names = [r["name"] for r in api.get("/folders/tree").json()["records"]]
    assert names.count("Same") == 2


def test_17_home_listing_has_the_gallery(api: Api) -> None:
    tree = api.get("/folders/tree", params={"typesToInclude": "notebook"}).json()
    assert list(tree) == ["folderId", "totalHits", "pageNumber", "records", "_links"]
    assert tree["folderId"] == api.emu.home_id()
    gallery = [r for r in tree["records"] if r["name"] == "Gallery"]
    assert len(gallery) == 1 and gallery[0]["type"] == "FOLDER"
    assert gallery[0]["globalId"].startswith("GF") and gallery[0]["systemFolder"] is True
    assert tree["_links"] == [{"link": f"{api.base}/folders/tree?pageNumber=0", "rel": "self"}]


def test_18_gallery_sections(api: Api) -> None:
    gallery = api.emu.gallery_id()
    sections = api.get(f"/folders/tree/{gallery}").json()["records"]
    assert len(sections) == 8
    assert {s["name"] for s in sections} == {
        "Images",
        "Audios",
        "Videos",
        "Chemistry",
        "Documents",
        "Miscellaneous",
        "PdfDocuments",
        "Snippets",
    }
    for section in sections:
        assert api.get(f"/folders/tree/{section['id']}").status_code == 200
        body = assert_error(api.delete(f"/folders/{section['id']}"), 422, 42201)
        assert body["message"] == "Cannot delete user home folder or a system folder"


def test_19_tree_records(api: Api) -> None:
    home = api.emu.home_id()
    folder = api.emu.add_folder(home, "F")
    api.emu.add_document(folder, "D")
    api.emu.add_folder(folder, "N", notebook=True)
    media = api.emu.add_file(api.emu.folder_id("Documents"), "m.txt", b"m")
    records = {r["name"]: r for r in api.get(f"/folders/tree/{folder}").json()["records"]}
    assert all(
        r["parentFolderId"] == folder and r["owner"]["username"] == "user1a"
        for r in records.values()
    )
    assert records["D"]["_links"][0]["link"].endswith(f"/documents/{records['D']['id']}")
    assert records["N"]["_links"][0]["link"].endswith(f"/folders/{records['N']['id']}")
    assert "systemFolder" not in records["D"] and "sharedFolder" not in records["N"]
    docs = api.get(f"/folders/tree/{api.emu.folder_id('Documents')}").json()["records"]
    item = next(r for r in docs if r["id"] == media)
    assert item["type"] == "MEDIA" and item["_links"] == [
        {"link": f"{api.base}/files/{media}", "rel": "self"}
    ]
    assert list(item) == [
        "id",
        "globalId",
        "name",
        "created",
        "lastModified",
        "parentFolderId",
        "type",
        "_links",
        "owner",
    ]


def test_20_types_to_include(api: Api) -> None:
    section = api.emu.folder_id("Documents")
    api.emu.add_file(section, "m.txt", b"m")
    api.emu.add_folder(section, "sub")
    only_folders = api.get(f"/folders/tree/{section}", params={"typesToInclude": "folder"}).json()
    assert [r["type"] for r in only_folders["records"]] == ["FOLDER"]
    with_docs = api.get(f"/folders/tree/{section}", params=[("typesToInclude", "document")]).json()
    assert [r["type"] for r in with_docs["records"]] == ["MEDIA"]
    assert_error(api.get("/folders/tree", params={"typesToInclude": "foo"}), 422, 42201)


def test_21_deleted_unreadable_and_missing_folders(api: Api) -> None:
    folder = api.emu.add_folder(api.emu.home_id(), "gone")
    api.emu.delete(folder)
    assert_error(api.get(f"/folders/{folder}"), 401, 40101)
    other = api.emu.add_folder(api.emu.home_id("other"), "theirs")
    assert_error(api.get(f"/folders/{other}"), 401, 40101)
    body = assert_error(api.get("/folders/987654"), 404, 50301)
    assert body["errors"] == [""]


def test_22_gallery_media_type_and_parent_only_for_owner(api: Api) -> None:
    sub = api.post("/folders", json={"parentFolderId": api.emu.folder_id("Documents"), "name": "s"})
    info = api.get(
        f"/folders/{sub.json()['id']}", params={"includePathToRootFolder": "true"}
    ).json()
    assert info["mediaType"] == "Documents" and info["globalId"].startswith("GF")
    assert [f["name"] for f in info["pathToRootFolder"]] == ["Documents", "Gallery"]
    api.emu.add_group("Lab", ["other", "user1a"])  # "other" is the PI and owns its folder
    group_folder = api.get("/groups").json()[0]["sharedFolderId"]
    assert api.get(f"/folders/{group_folder}").json()["parentFolderId"] is None  # not the owner
    own = api.post("/folders", json={"parentFolderId": group_folder}).json()
    assert own["parentFolderId"] == group_folder and own["sharedFolder"] is True


def test_23_deleting_a_non_empty_folder(api: Api) -> None:
    folder = api.post("/folders", json={"name": "full"}).json()["id"]
    doc = api.post("/documents", json={"parentFolderId": folder}).json()["id"]
    assert api.delete(f"/folders/{folder}").status_code == 204
    names = [r["name"] for r in api.get("/folders/tree").json()["records"]]
    assert "full" not in names
    assert api.get(f"/documents/{doc}").status_code == 404


def test_24_no_folder_rename_route(api: Api) -> None:
    folder = api.post("/folders", json={}).json()["id"]
    assert_error(api.put(f"/folders/{folder}", json={"name": "x"}), 405, 40501)


def test_25_move(api: Api) -> None:
    home = api.emu.home_id()
    a = api.emu.add_folder(home, "a")
    b = api.emu.add_folder(home, "b")
    doc = api.emu.add_document(a, "d")
    nb = api.emu.add_folder(a, "nb", notebook=True)
    sub = api.emu.add_folder(a, "sub")
    for item in (doc, nb, sub):
        move = {"docId": item, "sourceFolderId": a, "targetFolderId": b}
        assert api.post("/documents/move", json=move).status_code == 204
        assert api.emu.record(item)["parent"] == b
    same = {"docId": doc, "sourceFolderId": b, "targetFolderId": b}
    assert_error(api.post("/documents/move", json=same), 422, 42201)
    stale = {"docId": doc, "sourceFolderId": a, "targetFolderId": b}
    assert_error(api.post("/documents/move", json=stale), 422, 42201)


# --------------------------------------------------------------------------------------------
# documents (items 26-35)


def test_26_create_empty_document(api: Api) -> None:
    created = api.post("/documents", json={})
    assert created.status_code == 201
    doc = created.json()
    assert doc["name"] == "Untitled document" and doc["form"]["name"] == "Basic Document"
    assert [(f["name"], f["type"]) for f in doc["fields"]] == [("Data", "text")]
    inbox = api.get(f"/folders/{doc['parentFolderId']}").json()
    assert inbox["name"] == "Api Inbox" and inbox["parentFolderId"] == api.emu.home_id()
    again = api.post("/documents", json={}).json()
    assert again["parentFolderId"] == doc["parentFolderId"]  # created once, on demand


def test_27_wrong_field_count(api: Api) -> None:
    form = api.emu.add_form("Three", [("A", "text"), ("B", "text"), ("C", "number")])
    response = api.post("/documents", json={"form": {"id": form}, "fields": [{"content": "x"}]})
    assert (
        assert_error(response, 422, 42201)["message"]
        == '"fields" array should have 3 fields, but had 1'
    )


def test_28_document_targets(api: Api) -> None:
    gallery_folder = api.emu.folder_id("Images")
    assert_error(api.post("/documents", json={"parentFolderId": gallery_folder}), 422, 42201)
    assert_error(api.post("/documents", json={"parentFolderId": 999999}), 401, 40101)


def test_29_html_normalisation_and_links(api: Api) -> None:
    pdf = upload(api, "p.pdf", minimal_pdf("x")).json()["id"]
    audio = upload(api, "a.mp3", b"ID3").json()["id"]
    doc = api.post(
        "/documents",
        json={"fields": [{"content": f"<p> Add <p> See <a href='x'>here</a><fileId={pdf}>"}]},
    )
    field = doc.json()["fields"][0]
    assert field["content"].startswith(
        "<p>Add</p>\n<p>See <a href='x'>here</a><div class=\"attachmentDiv"
    )
    assert f"/Streamfile/{pdf}" in field["content"]
    assert [f["id"] for f in field["files"]] == [pdf]
    assert_error(
        api.post("/documents", json={"fields": [{"content": f"<fileId={audio}>"}]}), 422, 42201
    )
    theirs = api.emu.add_file(None, "t.txt", b"t", username="other")
    body = assert_error(
        api.post("/documents", json={"fields": [{"content": f"<fileId={theirs}>"}]}), 422, 42201
    )
    assert f"fileId={theirs}" in body["message"]


def test_30_update_revisions_signed_and_busy(api: Api) -> None:
    doc = api.post("/documents", json={"name": "v"}).json()
    updated = api.put(
        f"/documents/{doc['id']}", json={"fields": [{"id": doc["fields"][0]["id"], "content": "x"}]}
    )
    assert updated.status_code == 200 and updated.json()["version"] == doc["version"] + 1
    api.emu.set_document_flags(doc["id"], signed=True)
    assert_error(api.put(f"/documents/{doc['id']}", json={"name": "n"}), 400, 40002)
    api.emu.set_document_flags(doc["id"], signed=False, edit_locked=True)
    assert_error(api.put(f"/documents/{doc['id']}", json={"name": "n"}), 409, 40901)


def test_31_documents_hide_existence(api: Api) -> None:
    media = upload(api, "m.txt", b"m").json()["id"]
    theirs = api.emu.add_document(api.emu.home_id("other"), "theirs")
    deleted = api.post("/documents", json={}).json()["id"]
    api.delete(f"/documents/{deleted}")
    for ident in (media, theirs, deleted):
        body = assert_error(api.get(f"/documents/{ident}"), 404, 50301)
        assert body["errors"] == [""]
        assert body["message"] == (
            f"Document with id [{ident}] could not be retrieved - possibly it has been deleted, "
            "does not exist, or you do not have permission to access it."
        )


def test_32_delete_document(api: Api) -> None:
    doc = api.post("/documents", json={}).json()["id"]
    assert api.delete(f"/documents/{doc}").status_code == 204
    assert api.get(f"/documents/{doc}").status_code == 404
    api.emu.add_group("Lab", ["user1a", "other"])
    group_folder = api.get("/groups").json()[0]["sharedFolderId"]
    in_shared = api.post("/documents", json={"parentFolderId": group_folder})
    assert in_shared.status_code == 422  # group folders are Shared folders: not a target
    inside = api.emu.add_document(group_folder, "in group folder", username="user1a")
    assert_error(api.delete(f"/documents/{inside}"), 422, 42201)


def test_33_csv(api: Api) -> None:
    form = api.emu.add_form("Two", [("A", "text"), ("B", "string")])
    doc = api.emu.add_document(api.emu.home_id(), "csv", form=form, fields=['a, "quoted"', "b"])
    response = api.get(f"/documents/{doc}", headers={"Accept": "text/csv"})
    rows = list(csv.reader(io.StringIO(response.text)))
    assert response.headers["content-type"].startswith("text/csv")
    assert rows[0] == ["id", "globalId", "name", "type", "lastModified", "content"]
    assert len(rows) == 3 and rows[1][2] == "A" and rows[2][5] == "b"
    missing = api.get("/documents/999999", headers={"Accept": "text/csv"})
    assert missing.status_code == 404
    error_rows = list(csv.reader(io.StringIO(missing.text)))
    assert error_rows[0] == ["status", "httpCode", "internalCode", "message", "errors"]
    assert error_rows[1][:3] == ["NOT_FOUND", "404", "50301"]


def test_34_document_search(api: Api) -> None:
    api.emu.add_folder(api.emu.home_id(), "pcr folder")
    api.emu.add_document(api.emu.home_id(), "pcr run", tags="dna")
    api.emu.add_document(api.emu.home_id(), "western blot", fields=["<p>pcr mentioned</p>"])
    found = api.get("/documents", params={"query": "pcr"}).json()
    assert sorted(d["name"] for d in found["documents"]) == ["pcr run", "western blot"]
    assert all(d["globalId"].startswith("SD") for d in found["documents"])
    assert_error(api.get("/documents", params={"query": "x" * 2001}), 400, 40002)
    advanced = json.dumps({"operator": "and", "terms": [{"query": "dna", "queryType": "tag"}]})
    both = api.get("/documents", params={"query": "pcr", "advancedQuery": advanced})
    assert_error(both, 422, 42201)
    tagged = api.get("/documents", params={"advancedQuery": advanced}).json()
    assert [d["name"] for d in tagged["documents"]] == ["pcr run"]
    assert api.get("/documents", params={"query": "p"}).status_code == 422  # too short


def test_35_names(api: Api) -> None:
    body = assert_error(api.post("/folders", json={"name": "n" * 256}), 400, 40002)
    assert "Name cannot be longer than 255 characters" in body["errors"][0]
    assert_error(api.post("/documents", json={"name": "n" * 256}), 400, 40002)
    doc = api.post("/documents", json={"name": "  two\nlines  "}).json()
    assert doc["name"] == "two lines"
    renamed = api.put(f"/documents/{doc['id']}", json={"name": " a\nb "}).json()
    assert renamed["name"] == "a b"
    slash = api.post("/folders", json={"name": "a/b: c"}).json()
    assert slash["name"] == "a/b: c"


# --------------------------------------------------------------------------------------------
# files (items 36-46)


def test_36_37_sections_by_extension_and_api_inbox(api: Api) -> None:
    expected = {
        "a.png": "Images",
        "b.PDF": "Documents",
        "c.mp3": "Audios",
        "d.mov": "Videos",
        "e.mol": "Chemistry",
        "f.dat": "Miscellaneous",
        "file": "Miscellaneous",
    }
    for name, section in expected.items():
        data = png_image() if name.endswith("png") else b"x"
        response = upload(api, name, data)
        assert response.status_code == 201, response.text
        parent = api.get(f"/folders/{response.json()['parentFolderId']}").json()
        assert parent["name"] == "Api Inbox" and parent["mediaType"] == section


def test_38_folder_in_the_wrong_section(api: Api) -> None:
    documents = api.emu.folder_id("Documents")
    misc = api.emu.folder_id("Miscellaneous")
    wrong = assert_error(upload(api, "notes.txt", b"x", folderId=misc), 422, 42201)
    assert wrong["message"] == (
        f"Target folder (id={misc}) must be either Gallery folder Documents or a subfolder "
        "of Documents"
    )
    assert_error(upload(api, "data.dat", b"x", folderId=documents), 422, 42201)
    assert upload(api, "notes.txt", b"x", folderId=documents).status_code == 201
    assert_error(upload(api, "notes.txt", b"x", folderId=999999), 401, 40101)


def test_39_40_41_image_sniffing_content_type_and_shape(api: Api) -> None:
    fake = assert_error(upload(api, "fake.png", b"not an image"), 422, 42201)
    assert fake["messageCode"] == "errors.upload.imageContentMismatch"
    real = upload(api, "real.png", png_image()).json()
    assert real["contentType"] == "image/x-png" and real["caption"] == ""
    assert list(real) == [
        "id",
        "globalId",
        "name",
        "caption",
        "contentType",
        "created",
        "size",
        "version",
        "parentFolderId",
        "_links",
    ]
    assert "lastModified" not in real and real["version"] == 1
    assert [link["rel"] for link in real["_links"]] == ["self", "enclosure"]
    captioned = upload(api, "c.txt", b"c", caption="hello").json()
    assert captioned["caption"] == "hello"


def test_42_new_versions(api: Api) -> None:
    txt = upload(api, "a.txt", b"one").json()
    new = api.post(f"/files/{txt['id']}/file", files={"file": ("renamed.txt", b"two!")})
    assert new.status_code == 201
    body = new.json()
    assert (body["id"], body["version"], body["name"], body["size"]) == (
        txt["id"],
        2,
        "renamed.txt",
        4,
    )
    assert body["_links"][1] == txt["_links"][1]
    assert_error(api.post(f"/files/{txt['id']}/file", files={"file": ("a.md", b"x")}), 422, 42201)
    doc = upload(api, "w.doc", b"doc").json()
    assert (
        api.post(f"/files/{doc['id']}/file", files={"file": ("w.docx", b"docx")}).status_code == 201
    )


def test_43_no_delete_rename_or_move_for_files(api: Api) -> None:
    media = upload(api, "a.txt", b"a").json()["id"]
    assert_error(api.delete(f"/files/{media}"), 405, 40501)
    assert_error(api.put(f"/files/{media}", json={"name": "b.txt"}), 405, 40501)
    move = {"docId": media, "sourceFolderId": 1, "targetFolderId": api.emu.home_id()}
    assert api.post("/documents/move", json=move).status_code == 422


def test_44_download_headers_and_range_ignored(api: Api) -> None:
    data = bytes(range(256)) * 1024  # 256 KiB: streamed in chunks
    media = api.emu.add_file(api.emu.folder_id("Miscellaneous"), "blob.bin", data)
    response = api.get(f"/files/{media}/file", headers={"Range": "bytes=0-9"})
    assert response.status_code == 200 and response.content == data
    assert response.headers["content-disposition"] == 'attachment; filename="blob.bin"'
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "accept-ranges" not in response.headers and "etag" not in response.headers


def test_45_file_listing_media_types(api: Api) -> None:
    upload(api, "a.png", png_image())
    upload(api, "b.txt", b"b")
    upload(api, "c.mp3", b"c")
    everything = api.get("/files").json()
    assert everything["totalHits"] == 3
    images = api.get("/files", params={"mediaType": "image"}).json()
    assert [f["name"] for f in images["files"]] == ["a.png"]
    assert [f["name"] for f in api.get("/files", params={"mediaType": "av"}).json()["files"]] == [
        "c.mp3"
    ]
    assert_error(api.get("/files", params={"mediaType": "foo"}), 400, 40002)


def test_46_upload_size_limit() -> None:
    emu = RSpaceEmulator(max_upload=100_000)
    server = _serve(emu)
    try:
        response = plain_post(
            f"{server.url}/api/v1/files",
            files={"file": ("big.bin", b"x" * 200_000)},
            headers={"apiKey": DEFAULT_API_KEY},
        )
        assert_error(response, 413, 41301)
    finally:
        server.stop()


def test_stale_file_cache_mode() -> None:
    emu = RSpaceEmulator(stale_file_cache=True)
    server = _serve(emu)
    try:
        client = httpx.Client(
            verify=False, base_url=f"{server.url}/api/v1", headers={"apiKey": DEFAULT_API_KEY}
        )
        media = client.post("/files", files={"file": ("a.txt", b"one")}).json()["id"]
        assert client.get(f"/files/{media}").json()["version"] == 1
        client.post(f"/files/{media}/file", files={"file": ("a.txt", b"two")})
        assert client.get(f"/files/{media}").json()["version"] == 1  # cached, stale
        client.post(f"/files/{media}/file", files={"file": ("b.txt", b"three")})
        assert client.get(f"/files/{media}").json()["version"] == 3  # rename evicts
        client.close()
    finally:
        server.stop()


# --------------------------------------------------------------------------------------------
# sharing and groups (items 47-50)


def _lab(api: Api) -> tuple[int, int]:
    group = api.emu.add_group("Lab", ["user1a", "other"])
    doc = api.post("/documents", json={"name": "shared doc"}).json()["id"]
    return group, doc


def test_47_share(api: Api) -> None:
    group, doc = _lab(api)
    response = api.post(
        "/share", json={"itemsToShare": [doc], "groups": [{"id": group, "permission": ""}]}
    )
    assert response.status_code == 201
    body = response.json()
    assert list(body) == ["shareInfos", "failedShares", "_links"] and body["_links"] == []
    info = body["shareInfos"][0]
    assert info["shareItemName"] == "shared doc" and info["permission"] == "READ"
    assert (info["sharedItemId"], info["sharedTargetId"], info["sharedTargetType"]) == (
        doc,
        group,
        "GROUP",
    )
    # the colleague now sees it in the group folder and can read it
    other = api.as_user(OTHER_KEY)
    assert other.get(f"/documents/{doc}").status_code == 200
    other.close()


def test_48_folders_and_gallery_files_cannot_be_shared(api: Api) -> None:
    group, doc = _lab(api)
    folder = api.post("/folders", json={}).json()["id"]
    media = upload(api, "a.txt", b"a").json()["id"]
    for item in (folder, media):
        response = api.post("/share", json={"itemsToShare": [item], "groups": [{"id": group}]})
        assert_error(response, 401, 40101)
    mixed = api.post("/share", json={"itemsToShare": [doc, media], "groups": [{"id": group}]})
    assert mixed.status_code == 201 and mixed.json()["failedShares"] == [media]


def test_49_unshare(api: Api) -> None:
    group, doc = _lab(api)
    share = api.post("/share", json={"itemsToShare": [doc], "groups": [{"id": group}]}).json()
    share_id = share["shareInfos"][0]["id"]
    other = api.as_user(OTHER_KEY)
    assert other.delete(f"/share/{share_id}").status_code == 404  # not the sharer
    other.close()
    assert api.delete(f"/share/{share_id}").status_code == 204
    assert_error(api.delete(f"/share/{share_id}"), 404, 50301)
    assert api.get("/share").json()["totalHits"] == 0


def test_50_groups(api: Api) -> None:
    api.emu.add_user("aaron", api_key="aaronsApiKey00000001")
    api.emu.add_group("Zeta", ["user1a"])
    api.emu.add_group("Alpha", ["other", "user1a", "aaron"], pi="user1a", admins=["other"])
    groups = api.get("/groups").json()
    assert isinstance(groups, list) and [g["name"] for g in groups] == ["Alpha", "Zeta"]
    members = [(m["username"], m["role"]) for m in groups[0]["members"]]
    assert members == [("user1a", "PI"), ("other", "LAB_ADMIN"), ("aaron", "USER")]
    assert groups[0]["globalId"] == f"GP{groups[0]['id']}" and groups[0]["_links"] == []


# --------------------------------------------------------------------------------------------
# errors and limits (items 51-53)


def test_51_error_body_everywhere(api: Api) -> None:
    for response in (
        api.get("/documents/999999"),
        api.get("/files/abc"),
        api.post("/folders", content=b"{not json", headers={"Content-Type": "application/json"}),
        api.post("/files", files={"other": ("x.txt", b"x")}),
    ):
        assert list(response.json()) == ERROR_KEYS
    assert api.get("/files/abc").json()["internalCode"] == 40006
    assert api.post("/files", files={"other": ("x.txt", b"x")}).json()["internalCode"] == 40004
    unknown = api.get("/no/such/route")
    assert unknown.status_code == 404 and not unknown.headers["content-type"].startswith(
        "application/json"
    )
    double = api.http.delete(f"{api.base}//documents/1")
    assert double.status_code == 404


def test_52_rate_headers_even_on_401(api: Api) -> None:
    for response in (api.get("/status"), plain_get(f"{api.base}/status")):
        assert response.headers["X-Rate-Limit-Limit"] == "10"
        assert response.headers["X-Rate-Limit-Remaining"] == "10.0"
        assert response.headers["X-Rate-Limit-WaitTimeMillis"] == "100"
        assert "X-Rate-Limit-Remaining-day" in response.headers


def test_53_throttling() -> None:
    # a long window, so that no token refills while a slow machine sends the 16 requests
    emu = RSpaceEmulator(throttling=True, rate_limit=(15, 600.0))
    server = _serve(emu)
    try:

        def one(_: int) -> httpx.Response:
            return plain_get(f"{server.url}/api/v1/status", headers={"apiKey": DEFAULT_API_KEY})

        with concurrent.futures.ThreadPoolExecutor(16) as pool:
            responses = list(pool.map(one, range(16)))
        limited = [r for r in responses if r.status_code == 429]
        assert len(limited) == 1 and sum(r.status_code == 200 for r in responses) == 15
        body = assert_error(limited[0], 429, 42901)
        assert body["message"].startswith(
            "Too many requests: please restrict requests to no more than 15"
        )
        assert "retry-after" not in limited[0].headers
        assert int(limited[0].headers["X-Rate-Limit-WaitTimeMillis"]) > 0
        assert limited[0].headers["X-Rate-Limit-Limit"] == "15"
    finally:
        server.stop()


# --------------------------------------------------------------------------------------------
# the official client, rspace-client 2.7.x (Appendix A)


def test_official_client_against_the_emulator(api: Api, tmp_path: Path) -> None:
    from rspace_client.eln.eln import ELNClient
    from rspace_client.exceptions import ApiError, AuthenticationError

    client = ELNClient(api.server.url, DEFAULT_API_KEY)
    assert client.get_status()["message"] == "OK"
    with pytest.raises(AuthenticationError):
        ELNClient(api.server.url, "wrongButWellFormedKey1", max_retries=0).get_status()

    home = client.list_folder_tree()
    assert "Gallery" in [r["name"] for r in home["records"]]
    folder = client.create_folder("Client folder")
    assert client.get_folder(folder["globalId"])["name"] == "Client folder"
    nb = client.create_folder("Client notebook", parent_folder_id=folder["id"], notebook=True)
    filtered = client.list_folder_tree(folder["id"], ["folder", "notebook"])
    assert [r["id"] for r in filtered["records"]] == [nb["id"]]

    # files: upload (section routing by filename), info, download, new version
    source = tmp_path / "results.csv"
    source.write_bytes(b"a,b\n1,2\n")
    with source.open("rb") as fh:
        uploaded = client.upload_file(fh, caption="from the client")
    assert uploaded["caption"] == "from the client" and uploaded["name"] == "results.csv"
    assert client.get_file_info(uploaded["id"])["size"] == 8
    target = tmp_path / "downloaded.csv"
    client.download_file(uploaded["id"], str(target))
    assert target.read_bytes() == b"a,b\n1,2\n"
    source.write_bytes(b"a,b\n3,4\n5,6\n")
    with source.open("rb") as fh:
        assert client.update_file(fh, uploaded["id"])["version"] == 2
    image = tmp_path / "gel.png"
    image.write_bytes(png_image())
    with image.open("rb") as fh:
        client.upload_file(fh)
    images = client.get_files()  # the client defaults to mediaType=image
    assert [f["name"] for f in images["files"]] == ["gel.png"]

    # documents: create with a linked file, get, CSV, update, append, search
    doc = client.create_document(
        name="Client doc",
        parent_folder_id=folder["id"],
        tags=["pcr", "client"],
        fields=[{"content": f"Results: <fileId={uploaded['id']}>"}],
    )
    assert doc["fields"][0]["files"][0]["id"] == uploaded["id"]
    assert client.get_document(doc["globalId"])["tags"] == "pcr,client"
    assert client.get_document_csv(doc["id"]).startswith(
        "id,globalId,name,type,lastModified,content"
    )
    field_id = doc["fields"][0]["id"]
    updated = client.update_document(
        doc["id"], name="Client doc v2", fields=[{"id": field_id, "content": "new"}]
    )
    assert updated["name"] == "Client doc v2" and updated["fields"][0]["content"] == "<p>new</p>"
    appended = client.append_content(doc["id"], "<p>more</p>")
    assert appended["fields"][0]["content"].endswith("<p>more</p>")
    assert [d["id"] for d in client.get_documents(query="Client")["documents"]] == [doc["id"]]
    for i in range(3):
        client.create_document(name=f"paged {i}")
    from rspace_client.client_base import Pagination

    streamed = list(client.stream_documents(Pagination(page_size=2)))
    assert len(streamed) == 4  # follows the absolute next links

    # sharing and groups
    group = api.emu.add_group("Client Lab", ["user1a", "other"])
    assert [g["id"] for g in client.get_groups()] == [group]
    shared = client.shareDocuments([doc["id"]], group, permission="EDIT")
    share_id = shared["shareInfos"][0]["id"]
    assert [s["id"] for s in client.get_shared_items()["shares"]] == [share_id]
    client.unshareItem(share_id)
    assert client.get_shared_items()["totalHits"] == 0

    client.delete_folder(nb["id"])
    assert api.emu.record(nb["id"])["deleted"]
    # known client bug (Appendix A): delete_document sends a double slash; the emulator, like a
    # strict server, answers 404
    with pytest.raises(ApiError) as failure:
        client.delete_document(doc["id"])
    assert failure.value.response_status_code == 404
    assert not api.emu.record(doc["id"])["deleted"]
    client.close()


def test_official_gallery_filesystem_reads_the_demo(api: Api) -> None:
    from rspace_client.eln.fs import GalleryFilesystem

    seed_demo(api.emu)
    fs = GalleryFilesystem(api.server.url, DEFAULT_API_KEY)
    sections = fs.listdir("/")
    assert len(sections) == 8
    assert all(s.startswith("GF") for s in sections)
    images = next(s for s in sections if fs.getinfo(f"/{s}").raw["rspace"]["name"] == "Images")
    items = fs.listdir(f"/{images}")
    names = {fs.getinfo(f"/{images}/{item}").raw["rspace"]["name"] for item in items}
    assert {"gel-2026-03-02.png", "kinetics-plot.png", "Examples"} <= names
    gel = next(
        i for i in items if fs.getinfo(f"/{images}/{i}").raw["rspace"]["name"].startswith("gel")
    )
    assert fs.readbytes(f"/{images}/{gel}") == png_image(seed=3)


# --------------------------------------------------------------------------------------------
# releases and settings (issue 17; docs/protocols/rspace.md)


def test_release_2_15_has_no_move_route_and_2_16_has() -> None:
    # DocumentsApi.moveDocuments is new in 2.16.0; before it POST /documents/move meets the
    # /documents/{id} mapping, which has no POST
    profile = RSpaceEmulator.make_profile("2.15")
    emu = RSpaceEmulator(**RSpaceEmulator.options_for(profile))
    home = emu.home_id()
    a, b = emu.add_folder(home, "a"), emu.add_folder(home, "b")
    doc = emu.add_document(a, "d")
    server = _serve(emu)
    try:
        headers = {"apiKey": DEFAULT_API_KEY}
        status = plain_get(f"{server.url}/api/v1/status", headers=headers).json()
        assert status["rspaceVersion"] == "2.15.0"
        move = {"docId": doc, "sourceFolderId": a, "targetFolderId": b}
        refused = plain_post(f"{server.url}/api/v1/documents/move", json=move, headers=headers)
        assert_error(refused, 405, 40501)
        assert "POST" not in refused.headers["allow"]
        assert emu.record(doc)["parent"] == a
    finally:
        server.stop()
    assert RSpaceEmulator.options_for(RSpaceEmulator.make_profile())["version"] == "2.16.0"


def test_failed_move_in_the_model_answers_500(api: Api) -> None:
    # a move BaseRecord.move/Folder.addChild refuses comes back from WorkspaceServiceImpl as a
    # failed result: RuntimeException("document.move.errors.failed") → 500, not 422
    home = api.emu.home_id()
    top = api.emu.add_folder(home, "top")
    inner = api.emu.add_folder(top, "inner")
    into_child = {"docId": top, "sourceFolderId": home, "targetFolderId": inner}
    body = assert_error(api.post("/documents/move", json=into_child), 500, 50001)
    assert body["message"].startswith("Error performing move.")
    notebook = api.emu.add_folder(home, "nb", notebook=True)
    folder_into_notebook = {"docId": inner, "sourceFolderId": top, "targetFolderId": notebook}
    assert_error(api.post("/documents/move", json=folder_into_notebook), 500, 50001)
    assert api.emu.record(top)["parent"] == home and api.emu.record(inner)["parent"] == top
    # validateMove's own refusals stay 422, with the server's messages
    same = {"docId": inner, "sourceFolderId": top, "targetFolderId": top}
    body = assert_error(api.post("/documents/move", json=same), 422, 42201)
    assert body["message"] == f"Source and target folder are the same. Id: {top}"
    # a wrong source id is replaced by the item's own parent (getMoveSourceFolder)
    wrong_source = {"docId": inner, "sourceFolderId": notebook, "targetFolderId": home}
    assert api.post("/documents/move", json=wrong_source).status_code == 204
    assert api.emu.record(inner)["parent"] == home


def test_upload_quota_429_with_upload_limit_headers() -> None:
    profile = RSpaceEmulator.make_profile(
        settings={
            "api.fileuploadRateLimit.enabled": "true",
            "api.user.fileuploadRateLimit.hour": "1",
        }
    )
    options = RSpaceEmulator.options_for(profile)
    assert options["upload_quota"] == (1.0, 1000.0)
    emu = RSpaceEmulator(**options)
    server = _serve(emu)
    headers = {"apiKey": DEFAULT_API_KEY}
    try:
        url = f"{server.url}/api/v1/files"
        half = b"x" * (600 * 1024)
        # a full allowance lets one upload through, then the hour has 1 - 0.586 MB left
        first = plain_post(url, files={"file": ("a.txt", half)}, headers=headers)
        assert first.status_code == 201
        assert first.headers["X-Upload-Limit-Limit"] == "1.0"
        left = float(first.headers["X-Upload-Limit-Remaining"])
        assert 0.41 < left < 0.42
        # a new version is not "/api/**/files": not counted
        version = f"{url}/{first.json()['id']}/file"
        again = plain_post(version, files={"file": ("a.txt", half)}, headers=headers)
        assert again.status_code == 201 and "X-Upload-Limit-Limit" not in again.headers
        over = plain_post(url, files={"file": ("b.txt", half)}, headers=headers)
        body = assert_error(over, 429, 42902)
        assert body["message"] == (
            "File upload limit exceeded: please restrict upload to no more than 1 Mb per 3600  "
            "seconds on average"
        )
        assert body["errors"] == [""] and "retry-after" not in over.headers
        assert over.headers["X-Upload-Limit-Limit"] == "1.0"
        assert 0.41 < float(over.headers["X-Upload-Limit-Remaining"]) < 0.42
        # the quota is per raw key: an unknown one has a full allowance, then fails to log in
        other = plain_post(url, files={"file": ("c.txt", half)}, headers={"apiKey": "nobody1"})
        assert_error(other, 401, 40101)
        assert len(emu.find("b.txt")) == 0
    finally:
        server.stop()


def test_tags_refuse_the_four_characters_of_the_tag_manager(api: Api) -> None:
    doc = api.emu.add_document(api.emu.home_id(), "tagged")
    for bad, char in (("a<b", "<"), ("ok,x>y", ">"), ("back\\slash", "\\"), ("a/b", "/")):
        body = assert_error(api.put(f"/documents/{doc}", json={"tags": bad}), 422, 42201)
        assert body["message"] == f"The value: {char} may not be used in tags"
    assert api.put(f"/documents/{doc}", json={"tags": "fine,tags"}).status_code == 200


def test_tags_are_split_the_java_way_and_a_stored_repeat_breaks_later_changes(api: Api) -> None:
    # DocumentTagManagerImpl.apiSaveTagForDocument: split(",") drops trailing empty tags;
    # values are not checked for repeats on the way in, but the stored ones are mapped by
    # value (Collectors.toMap) before every later change: a repeat is then a generic 500
    doc = api.emu.add_document(api.emu.home_id(), "tagged")
    assert api.put(f"/documents/{doc}", json={"tags": "a,b,,"}).status_code == 200
    assert api.get(f"/documents/{doc}").json()["tags"] == "a,b"
    assert api.put(f"/documents/{doc}", json={"tags": "a,a"}).status_code == 200
    assert api.get(f"/documents/{doc}").json()["tags"] == "a,a"
    assert_error(api.put(f"/documents/{doc}", json={"tags": "b"}), 500, 50001)
    # a PUT without tags does not reach the tag manager
    assert api.put(f"/documents/{doc}", json={"name": "renamed"}).status_code == 200
    assert api.get(f"/documents/{doc}").json()["tags"] == "a,a"
