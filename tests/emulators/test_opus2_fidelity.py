"""The Opus 2 emulator against ``docs/protocols/opus2.md``: what it is checked against, item by
item, the default profile's shapes, and an alternative profile, with plain httpx over loopback.

Opus 2 publishes no client library, so there is no vendor-client test here.
"""

from __future__ import annotations

import http.client
import json
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
import pytest

from docfs.backends.opus2 import ALTERNATIVE_PROFILE, DEFAULT_PROFILE
from docfs.emulators.base import EmulatorServer
from docfs.emulators.opus2 import READ, READ_WRITE, Opus2Emulator


@dataclass
class Tenant:
    emu: Opus2Emulator
    url: str
    client: httpx.Client
    project: str
    folder_a: str
    folder_b: str
    document: str
    field_text: str
    field_number: str
    team: str
    reader: str
    reader_email: str
    reader_token: str

    def as_reader(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers={"X-API-Token": self.reader_token})


def _seeded(**kwargs: Any) -> tuple[Opus2Emulator, dict[str, str]]:
    kwargs.setdefault("rate_limit", None)
    emu = Opus2Emulator(seed=11, **kwargs)
    reader = emu.add_user("reader@example.com", name="Reader")
    project = emu.add_project(
        "Smith v Jones", members={emu.default_user_id: READ_WRITE, reader: READ}
    )
    folder_a = emu.add_folder(project, "A")
    folder_b = emu.add_folder(project, "B", folder_a)
    ids = {
        "project": project,
        "folder_a": folder_a,
        "folder_b": folder_b,
        "field_text": emu.add_field(project, "Author"),
        "field_number": emu.add_field(project, "Bates Number", "number"),
        "team": emu.add_team("Litigators", [emu.default_user_id]),
        "reader": reader,
        "reader_email": "reader@example.com",
        "reader_token": emu.add_token(reader, name="reader"),
    }
    ids["document"] = emu.add_document(project, "claim.pdf", b"%PDF-1.4 claim", folder_id=folder_a)
    return emu, ids


@pytest.fixture
def tenant() -> Iterator[Tenant]:
    emu, ids = _seeded()
    with (
        EmulatorServer(emu) as server,
        httpx.Client(base_url=server.url, headers={"X-API-Token": emu.default_token}) as client,
    ):
        yield Tenant(emu, server.url, client, **ids)


@pytest.fixture(scope="module")
def shared_tenant() -> Iterator[Tenant]:
    """One tenant for the read-only checks that never change state."""
    emu, ids = _seeded()
    with (
        EmulatorServer(emu) as server,
        httpx.Client(base_url=server.url, headers={"X-API-Token": emu.default_token}) as client,
    ):
        yield Tenant(emu, server.url, client, **ids)


def error_of(response: httpx.Response, status: int) -> str:
    """Assert the API's error body (docs/protocols/opus2.md) and return its message."""
    assert response.status_code == status, response.text
    body = response.json()
    assert body["status"] == status and isinstance(body["message"], str) and body["message"]
    return str(body["message"])


def upload(
    client: httpx.Client,
    project: str,
    name: str,
    data: bytes,
    folder: str | None = None,
    *,
    reject: bool = False,
) -> httpx.Response:
    params = {"rejectDuplicate": "true"} if reject else {}
    form = {"folderId": folder} if folder else {}
    return client.post(
        f"/projects/{project}/documents", params=params, files={"file": (name, data)}, data=form
    )


# ---- 1. every route of the seed table exists, with 401 without a valid token -----------------

ROUTES = [
    ("POST", "/tokens"),
    ("GET", "/tokens"),
    ("DELETE", "/tokens"),
    ("GET", "/roles"),
    ("GET", "/users"),
    ("GET", "/user/id/{reader}"),
    ("GET", "/user/byemail?email=reader@example.com"),
    ("POST", "/users"),
    ("GET", "/teams"),
    ("GET", "/teams/{team}/users"),
    ("PUT", "/teams/{team}/users/reader@example.com"),
    ("DELETE", "/teams/{team}/users/reader@example.com"),
    ("GET", "/projects"),
    ("GET", "/projects/{project}/"),
    ("POST", "/projects"),
    ("GET", "/projects/{project}/teams"),
    ("PUT", "/projects/{project}/teams/{team}"),
    ("DELETE", "/projects/{project}/teams/{team}"),
    ("GET", "/projects/{project}/users"),
    ("PUT", "/projects/{project}/users/reader@example.com"),
    ("DELETE", "/projects/{project}/users/reader@example.com"),
    ("GET", "/templates"),
    ("GET", "/projects/{project}/folders"),
    ("GET", "/projects/{project}/folders/A"),
    ("POST", "/projects/{project}/folders"),
    ("DELETE", "/projects/{project}/folders/{folder_b}/"),
    ("GET", "/projects/{project}/documents"),
    ("GET", "/projects/{project}/documents?afterDate=2026-01-01T00:00:00Z"),
    ("POST", "/projects/{project}/documents?rejectDuplicate=true"),
    ("GET", "/projects/{project}/documents/folder/{folder_a}"),
    ("GET", "/projects/{project}/documents/folder/{folder_a}?afterDate=2026-01-01T00:00:00Z"),
    ("GET", "/projects/{project}/documents/{document}"),
    ("PUT", "/projects/{project}/documents/{document}/{folder_b}"),
    ("POST", "/projects/{project}/documents/{document}/replace"),
    ("GET", "/projects/{project}/fields"),
    ("PUT", "/projects/{project}/documents/{document}/fields/{field_text}"),
    ("GET", "/projects/{project}/documents/{document}/content"),
]


def _fill(template: str, t: Tenant) -> str:
    return template.format(**{k: v for k, v in vars(t).items() if isinstance(v, str)})


@pytest.mark.parametrize(("method", "template"), ROUTES)
def test_every_route_refuses_a_missing_or_unknown_token(
    shared_tenant: Tenant, method: str, template: str
) -> None:
    path = _fill(template, shared_tenant)
    with httpx.Client(base_url=shared_tenant.url) as anonymous:
        missing = anonymous.request(method, path)
        unknown = anonymous.request(method, path, headers={"X-API-Token": "eyJunknown.x.y"})
        head = anonymous.head(path) if method == "GET" else None
    error_of(missing, 401)
    assert error_of(unknown, 401) == "The provided API token is invalid"
    if head is not None:
        assert head.status_code == 401 and head.content == b""


def test_every_route_works_with_a_valid_token(tenant: Tenant) -> None:
    c, p, emu = tenant.client, tenant.project, tenant.emu
    # tokens: add, list (no secret values), delete
    made = c.post("/tokens", json={"userId": tenant.reader, "name": "ci"})
    assert made.status_code == 201 and made.json()["token"].startswith("eyJ")
    listed = c.get("/tokens").json()
    assert {"ci", "docfs", "reader"} <= {t["name"] for t in listed}
    assert all("token" not in t for t in listed)
    assert c.request("DELETE", "/tokens", json={"userId": tenant.reader, "name": "ci"}).is_success
    gone = c.get("/projects", headers={"X-API-Token": made.json()["token"]})
    error_of(gone, 401)
    # users and roles
    assert {r["name"] for r in c.get("/roles").json()} >= {"Administrator"}
    assert c.get("/users").json()["total"] == 2
    assert c.get(f"/user/id/{tenant.reader}").json()["email"] == tenant.reader_email
    assert c.get("/user/byemail", params={"email": tenant.reader_email}).json()["id"] == (
        tenant.reader
    )
    error_of(c.get("/user/byemail"), 400)
    error_of(c.get("/user/byemail", params={"email": "nobody@example.com"}), 404)
    added = c.post("/users", json=[{"email": "new@example.com", "name": "New"}])
    assert added.status_code == 201 and added.json()[0]["email"] == "new@example.com"
    error_of(c.post("/users", json={"email": "new@example.com"}), 409)
    # teams
    assert [t["name"] for t in c.get("/teams").json()] == ["Litigators"]
    assert c.put(f"/teams/{tenant.team}/users/new@example.com").status_code == 200
    members = {u["email"] for u in c.get(f"/teams/{tenant.team}/users").json()}
    assert "new@example.com" in members
    assert c.delete(f"/teams/{tenant.team}/users/new@example.com").status_code == 200
    error_of(c.delete(f"/teams/{tenant.team}/users/new@example.com"), 404)
    # projects, their teams and users, templates
    assert c.get(f"/projects/{p}/").json()["name"] == "Smith v Jones"
    assert c.get(f"/projects/{p}").json()["id"] == p
    created = c.post("/projects", json={"name": "New matter", "templateId": "tpl-arb"})
    assert created.status_code == 201 and created.json()["access"] == READ_WRITE
    assert c.put(f"/projects/{p}/teams/{tenant.team}", json={"access": READ}).status_code == 200
    assert c.get(f"/projects/{p}/teams").json()[0]["access"] == READ
    assert c.delete(f"/projects/{p}/teams/{tenant.team}").status_code == 200
    assert c.put(f"/projects/{p}/users/new@example.com").status_code == 200
    assert "new@example.com" in {u["email"] for u in c.get(f"/projects/{p}/users").json()}
    assert c.delete(f"/projects/{p}/users/new@example.com").status_code == 200
    assert {t["name"] for t in c.get("/templates").json()} >= {"Litigation", "Arbitration"}
    # folders
    assert c.get(f"/projects/{p}/folders/A").json()["id"] == tenant.folder_a
    assert c.get(f"/projects/{p}/folders/{quote('/A/B', safe='')}").json()["id"] == (
        tenant.folder_b
    )
    error_of(c.get(f"/projects/{p}/folders/Nope"), 404)
    folder = c.post(f"/projects/{p}/folders", json={"name": "C", "parentId": None})
    assert folder.status_code == 201 and folder.json()["path"] == "/C"
    error_of(c.post(f"/projects/{p}/folders", json={"name": "C", "parentId": None}), 409)
    assert c.delete(f"/projects/{p}/folders/{folder.json()['id']}/").status_code == 200
    assert error_of(c.delete(f"/projects/{p}/folders/{tenant.folder_a}/"), 409) == (
        "Folder is not empty"
    )
    # documents
    doc = c.get(f"/projects/{p}/documents/{tenant.document}").json()
    assert set(doc) == {
        "id",
        "name",
        "folderId",
        "size",
        "mimeType",
        "version",
        "versionId",
        "checksum",
        "createdAt",
        "updatedAt",
        "fields",
    }
    assert doc["checksum"].startswith("sha256:") and doc["version"] == 1
    assert c.get(f"/projects/{p}/documents/folder/{tenant.folder_a}").json()["total"] == 1
    new = upload(c, p, "new.txt", b"new", tenant.folder_b, reject=True)
    assert new.status_code == 201 and new.json()["folderId"] == tenant.folder_b
    moved = c.put(f"/projects/{p}/documents/{tenant.document}/{tenant.folder_b}")
    assert moved.status_code == 200 and moved.json()["folderId"] == tenant.folder_b
    field = c.put(
        f"/projects/{p}/documents/{tenant.document}/fields/{tenant.field_number}",
        json={"value": 7},
    )
    values = {f["name"]: f["value"] for f in field.json()["fields"]}
    assert values == {"Author": None, "Bates Number": 7}
    fields = c.get(f"/projects/{p}/fields").json()
    assert {f["name"]: f["type"] for f in fields} == {"Author": "text", "Bates Number": "number"}
    content = c.get(f"/projects/{p}/documents/{tenant.document}/content")
    assert content.content == b"%PDF-1.4 claim"
    assert content.headers["etag"] == f'"{doc["versionId"]}"'
    error_of(c.get(f"/projects/{p}/documents/nope"), 404)
    error_of(c.get("/projects/nope/"), 404)
    error_of(c.get("/no/such/route"), 404)
    assert emu.document(tenant.document)["folderId"] == tenant.folder_b


def test_head_answers_every_get_route_with_headers_only(shared_tenant: Tenant) -> None:
    c = shared_tenant.client
    for method, template in ROUTES:
        if method != "GET":
            continue
        path = _fill(template, shared_tenant)
        got, head = c.get(path), c.head(path)
        assert head.status_code == got.status_code == 200, path
        assert head.content == b""
        assert head.headers["content-type"] == got.headers["content-type"]
        assert head.headers["content-length"] == got.headers["content-length"]


# ---- 2. pagination on every list route ------------------------------------------------------


def test_documents_folders_projects_and_users_are_paged(tenant: Tenant) -> None:
    emu, c, p = tenant.emu, tenant.client, tenant.project
    for i in range(249):
        emu.add_document(p, f"d{i:03}.txt", b"x", folder_id=tenant.folder_b)
    for i in range(118):
        emu.add_folder(p, f"F{i:03}")
    for i in range(4):
        emu.add_project(f"Extra {i}")
    routes = {
        f"/projects/{p}/documents": 250,
        f"/projects/{p}/documents/folder/{tenant.folder_b}": 249,
        f"/projects/{p}/folders": 120,
        "/projects": 5,
        "/users": 2,
    }
    for path, total in routes.items():
        first = c.get(path).json()
        assert first["page"] == 1 and first["pageSize"] == 100 and first["total"] == total
        assert len(first["items"]) == min(100, total)
        seen = [i["id"] for i in first["items"]]
        page = 2
        while len(seen) < total:
            body = c.get(path, params={"page": page}).json()
            seen += [i["id"] for i in body["items"]]
            page += 1
        assert len(set(seen)) == total, path
        past = c.get(path, params={"page": page, "pageSize": 100}).json()
        assert past["items"] == [] and past["total"] == total
    small = c.get("/projects", params={"page": 2, "pageSize": 2}).json()
    assert len(small["items"]) == 2 and small["pageSize"] == 2
    clamped = c.get(f"/projects/{p}/documents", params={"pageSize": 2000}).json()
    assert clamped["pageSize"] == 500 and len(clamped["items"]) == 250
    error_of(c.get("/projects", params={"page": 0}), 400)
    error_of(c.get("/projects", params={"pageSize": "ten"}), 400)


# ---- 3. afterDate filters strictly after updatedAt; updates bump updatedAt ------------------


def test_after_date_is_strictly_after_and_updates_bump_updated_at(tenant: Tenant) -> None:
    emu, c, p = tenant.emu, tenant.client, tenant.project
    emu.freeze_clock(1_900_000_000.0)
    replaced = emu.add_document(p, "r.txt", b"1", folder_id=tenant.folder_a)
    moved = emu.add_document(p, "m.txt", b"1", folder_id=tenant.folder_a)
    tagged = emu.add_document(p, "t.txt", b"1", folder_id=tenant.folder_a)
    emu.add_document(p, "untouched.txt", b"1", folder_id=tenant.folder_a)
    stamp = DEFAULT_PROFILE.format_date(1_900_000_000.0)
    assert stamp == "2030-03-17T17:46:40Z"

    def names(path: str, after: str) -> set[str]:
        items = c.get(path, params={"afterDate": after}).json()["items"]
        return {i["name"] for i in items}

    docs = f"/projects/{p}/documents"
    assert names(docs, stamp) == set()  # equal is not after
    assert {"r.txt", "m.txt", "t.txt", "untouched.txt"} <= names(docs, "2030-03-17T17:46:39Z")
    emu.advance_clock(60)
    files = {"file": ("r.txt", b"2")}
    assert c.post(f"{docs}/{replaced}/replace", files=files).is_success
    assert c.put(f"{docs}/{moved}/{tenant.folder_b}").is_success
    field = f"{docs}/{tagged}/fields/{tenant.field_text}"
    assert c.put(field, json={"value": "A. Author"}).is_success
    assert names(docs, stamp) == {"r.txt", "m.txt", "t.txt"}
    assert names(f"{docs}/folder/{tenant.folder_a}", stamp) == {"r.txt", "t.txt"}
    assert names(f"{docs}/folder/{tenant.folder_b}", stamp) == {"m.txt"}
    message = error_of(c.get(docs, params={"afterDate": "yesterday"}), 400)
    assert message == "Invalid timestamp format. Use format yyyy-MM-ddTHH:mm:ssZ"


# ---- 4. rejectDuplicate is the only guard against duplicates -------------------------------


def test_reject_duplicate_is_the_only_guard(tenant: Tenant) -> None:
    c, p, a = tenant.client, tenant.project, tenant.folder_a
    first = upload(c, p, "same.txt", b"same", a)
    second = upload(c, p, "same.txt", b"same", a)
    assert first.status_code == second.status_code == 201
    assert first.json()["id"] != second.json()["id"]
    refused = upload(c, p, "same.txt", b"same", a, reject=True)
    error_of(refused, 409)
    assert refused.json()["message"] == "Duplicate document"
    assert refused.json()["documentId"] == first.json()["id"]
    assert upload(c, p, "same.txt", b"other bytes", a, reject=True).status_code == 201
    assert upload(c, p, "renamed.txt", b"same", a, reject=True).status_code == 201
    assert upload(c, p, "same.txt", b"same", tenant.folder_b, reject=True).status_code == 201
    assert upload(c, p, "same.txt", b"same", None, reject=True).status_code == 201
    names = [d["name"] for d in tenant.emu.documents(p, a)]
    assert names.count("same.txt") == 3


def test_upload_errors(tenant: Tenant) -> None:
    c, p = tenant.client, tenant.project
    error_of(c.post(f"/projects/{p}/documents", files={"other": ("x", b"x")}), 400)
    error_of(c.post(f"/projects/{p}/documents", content=b"{}"), 400)
    error_of(upload(c, p, "x.txt", b"x", "no-such-folder"), 404)
    root = upload(c, p, "Root file.txt", b"x")
    assert root.status_code == 201 and root.json()["folderId"] is None


# ---- 5. replace keeps the id and makes a new version ---------------------------------------


def test_replace_keeps_the_id_and_changes_version_fields(tenant: Tenant) -> None:
    c, p, d = tenant.client, tenant.project, tenant.document
    before = c.get(f"/projects/{p}/documents/{d}").json()
    after = c.post(
        f"/projects/{p}/documents/{d}/replace", files={"file": ("claim-v2.pdf", b"%PDF v2!")}
    ).json()
    assert after["id"] == before["id"] and after["name"] == "claim.pdf"
    assert after["version"] == 2 and after["versionId"] != before["versionId"]
    assert after["size"] == 8 and after["checksum"] != before["checksum"]
    content = c.get(f"/projects/{p}/documents/{d}/content")
    assert content.content == b"%PDF v2!" and content.headers["etag"] == f'"{after["versionId"]}"'
    renamed = c.post(
        f"/projects/{p}/documents/{d}/replace",
        params={"replaceName": "true"},
        files={"file": ("claim-v3.pdf", b"v3")},
    ).json()
    assert renamed["name"] == "claim-v3.pdf" and renamed["version"] == 3
    error_of(c.post(f"/projects/{p}/documents/nope/replace", files={"file": ("x", b"x")}), 404)


# ---- 6. the rate limiter ------------------------------------------------------------------


def test_rate_limiter_counts_every_request_in_a_rolling_window() -> None:
    emu, ids = _seeded(rate_limit=3, rate_window=1.0)
    with (
        EmulatorServer(emu) as server,
        httpx.Client(base_url=server.url, headers={"X-API-Token": emu.default_token}) as c,
    ):
        remaining = [
            c.head("/projects").headers["x-ratelimit-remaining"],
            c.get("/roles").headers["x-ratelimit-remaining"],
            c.get("/projects").headers["x-ratelimit-remaining"],
        ]
        assert remaining == ["2", "1", "0"]
        refused = c.head("/projects")
        assert refused.status_code == 429
        assert refused.headers["retry-after"] == "1"
        assert refused.headers["x-ratelimit-limit"] == "3"
        assert refused.headers["x-ratelimit-remaining"] == "0"
        assert int(refused.headers["x-ratelimit-reset"]) >= 1
        error_of(c.get("/projects"), 429)
        # the window is per token
        reader = c.get("/projects", headers={"X-API-Token": ids["reader_token"]})
        assert reader.status_code == 200
        time.sleep(1.05)
        assert c.get("/projects").status_code == 200
        emu.set_rate_limit(None)
        assert all(c.get("/roles").status_code == 200 for _ in range(10))
    assert emu.rate_limited() == 2


def test_rate_limit_defaults_to_fifty_and_can_answer_503() -> None:
    emu = Opus2Emulator(seed=1)
    with (
        EmulatorServer(emu) as server,
        httpx.Client(base_url=server.url, headers={"X-API-Token": emu.default_token}) as c,
    ):
        assert c.get("/roles").headers["x-ratelimit-limit"] == "50"
        statuses = [c.head("/roles").status_code for _ in range(50)]
    assert statuses[:49] == [200] * 49 and statuses[49] == 429
    other = Opus2Emulator(
        seed=1, profile=DEFAULT_PROFILE.replace(rate_limit_status=503), rate_limit=1
    )
    with (
        EmulatorServer(other) as server,
        httpx.Client(base_url=server.url, headers={"X-API-Token": other.default_token}) as c,
    ):
        assert c.get("/roles").status_code == 200
        busy = c.get("/roles")
    error_of(busy, 503)
    assert busy.headers["retry-after"] == "60"


# ---- 7. download switch and read-only users ------------------------------------------------


def test_download_switch_and_read_only_users_produce_403(tenant: Tenant) -> None:
    emu, c, p, d = tenant.emu, tenant.client, tenant.project, tenant.document
    emu.set_download_via_api(p, False)
    assert "disabled" in error_of(c.get(f"/projects/{p}/documents/{d}/content"), 403)
    assert c.head(f"/projects/{p}/documents/{d}/content").status_code == 403
    assert c.get(f"/projects/{p}/documents/{d}").status_code == 200  # metadata still readable
    assert c.get(f"/projects/{p}/").json()["downloadViaApi"] is False
    emu.set_download_via_api(p, True)
    with tenant.as_reader() as r:
        assert r.get(f"/projects/{p}/").json()["access"] == READ
        assert r.get(f"/projects/{p}/documents/{d}/content").content == b"%PDF-1.4 claim"
        refused = [
            upload(r, p, "x.txt", b"x", tenant.folder_a),
            r.post(f"/projects/{p}/documents/{d}/replace", files={"file": ("x", b"x")}),
            r.put(f"/projects/{p}/documents/{d}/{tenant.folder_b}"),
            r.put(f"/projects/{p}/documents/{d}/fields/{tenant.field_text}", json={"value": "x"}),
            r.post(f"/projects/{p}/folders", json={"name": "X", "parentId": None}),
            r.delete(f"/projects/{p}/folders/{tenant.folder_b}/"),
            r.post("/projects", json={"name": "Mine"}),
            r.put(f"/projects/{p}/users/{tenant.reader_email}", json={"access": READ_WRITE}),
        ]
        for response in refused:
            error_of(response, 403)
        emu.set_access(p, tenant.reader, None)
        assert r.get("/projects").json()["items"] == []
        error_of(r.get(f"/projects/{p}/folders"), 403)
    assert emu.document(d)["version"] == 1 and len(emu.folders(p)) == 2


def test_system_switch_and_token_expiry() -> None:
    emu, _ = _seeded()
    with (
        EmulatorServer(emu) as server,
        httpx.Client(base_url=server.url, headers={"X-API-Token": emu.default_token}) as c,
    ):
        emu.set_api_enabled(False)
        assert "integrations API" in error_of(c.get("/projects"), 403)
        emu.set_api_enabled(True)
        bearer = c.get("/projects", headers={"Authorization": f"Bearer {emu.default_token}"})
        assert bearer.status_code == 200
        # the tenant's clock, not sleeping: a loaded machine cannot make this flaky
        short = emu.add_token(emu.default_user_id, name="short", ttl=30)
        lasting = emu.add_token(emu.default_user_id, name="lasting", ttl=3600)
        assert c.get("/projects", headers={"X-API-Token": short}).status_code == 200
        emu.advance_clock(31)
        expired = c.get("/projects", headers={"X-API-Token": short})
        assert error_of(expired, 401) == "The provided API token has expired"
        assert c.get("/projects", headers={"X-API-Token": lasting}).status_code == 200


# ---- 8. PUT needs a length; PATCH and POST are interchangeable on updates --------------------


def test_put_without_body_needs_content_length_zero(tenant: Tenant) -> None:
    p, d, b = tenant.project, tenant.document, tenant.folder_b
    path = f"/projects/{p}/documents/{d}/{b}"
    parts = urlsplit(tenant.url)
    connection = http.client.HTTPConnection(parts.hostname or "", parts.port)
    try:
        connection.putrequest("PUT", path)
        connection.putheader("X-API-Token", tenant.emu.default_token)
        connection.endheaders()  # neither a body nor Content-Length
        answer = connection.getresponse()
        body = json.loads(answer.read())
    finally:
        connection.close()
    assert answer.status == 411 and body["status"] == 411
    assert tenant.emu.document(d)["folderId"] == tenant.folder_a
    ok = tenant.client.put(path, headers={"Content-Length": "0"})
    assert ok.status_code == 200 and ok.json()["folderId"] == b


def test_patch_and_post_are_interchangeable_on_updates(tenant: Tenant) -> None:
    c, p, d = tenant.client, tenant.project, tenant.document
    docs = f"/projects/{p}/documents/{d}"
    assert c.patch(f"{docs}/{tenant.folder_b}").json()["folderId"] == tenant.folder_b
    assert c.post(f"{docs}/{tenant.folder_a}").json()["folderId"] == tenant.folder_a
    field = f"{docs}/fields/{tenant.field_number}"
    assert c.patch(field, json={"value": 3}).json()["fields"][1]["value"] == 3
    assert c.post(field, json={"value": 4}).json()["fields"][1]["value"] == 4
    patched = c.patch(f"{docs}/replace", files={"file": ("claim.pdf", b"patched")})
    assert patched.json()["version"] == 2
    # PUT is not an update verb for replace: the path then reads as a move to folder "replace"
    error_of(c.put(f"{docs}/replace", files={"file": ("claim.pdf", b"put")}), 404)
    assert tenant.emu.document(d)["content"] == b"patched"
    assert "number" in error_of(c.put(field, json={"value": "four"}), 400)
    error_of(c.put(field, content=b"{not json"), 400)


# ---- the rest of the default profile -------------------------------------------------------


def test_byte_ranges_on_the_download_route(tenant: Tenant) -> None:
    c, p = tenant.client, tenant.project
    data = bytes(range(256)) * 40
    d = tenant.emu.add_document(p, "r.bin", data)
    url = f"/projects/{p}/documents/{d}/content"
    assert c.get(url).headers["accept-ranges"] == "bytes"
    part = c.get(url, headers={"Range": "bytes=100-199"})
    assert part.status_code == 206 and part.content == data[100:200]
    assert part.headers["content-range"] == f"bytes 100-199/{len(data)}"
    tail = c.get(url, headers={"Range": "bytes=-10"})
    assert tail.status_code == 206 and tail.content == data[-10:]
    assert c.get(url, headers={"Range": "bytes=0-1,5-6"}).status_code == 200
    refused = c.get(url, headers={"Range": f"bytes={len(data)}-"})
    assert refused.status_code == 416 and refused.headers["content-range"] == f"bytes */{len(data)}"


def test_a_20_mib_body_streams_and_a_planned_reset_cuts_it(tenant: Tenant) -> None:
    emu, c, p = tenant.emu, tenant.client, tenant.project
    data = random.Random(20).randbytes(20 * 1024 * 1024)
    d = emu.add_document(p, "bundle.pdf", data)
    url = f"/projects/{p}/documents/{d}/content"
    assert c.get(url).content == data
    emu.plan_fault(method="GET", path=r"/content$", reset_after=5 * 1024 * 1024)
    received = 0
    with pytest.raises(httpx.TransportError), c.stream("GET", url) as response:
        assert response.headers["content-length"] == str(len(data))
        for chunk in response.iter_raw():
            received += len(chunk)
    cut = emu.requests("GET", r"/content$")[-1]
    assert cut.fault == "reset_after=5242880" and cut.bytes_out == 5 * 1024 * 1024
    assert received <= 5 * 1024 * 1024


def test_folders_by_name_and_by_path(tenant: Tenant) -> None:
    c, p, emu = tenant.client, tenant.project, tenant.emu
    twin = emu.add_folder(p, "B")  # a second "B", at the top level
    by_name = c.get(f"/projects/{p}/folders/B").json()
    by_path = c.get(f"/projects/{p}/folders/{quote('/B', safe='')}").json()
    nested = c.get(f"/projects/{p}/folders/{quote('A/B', safe='')}").json()
    assert by_path["id"] == twin and by_path["parentId"] is None
    assert nested["id"] == tenant.folder_b and nested["parentId"] == tenant.folder_a
    assert by_name["id"] in {twin, tenant.folder_b}
    flat = c.get(f"/projects/{p}/folders").json()["items"]
    assert [f["path"] for f in flat] == ["/A", "/A/B", "/B"]
    spaced = emu.add_folder(p, "the folder")
    assert c.get(f"/projects/{p}/folders/the%20folder").json()["id"] == spaced


# ---- an alternative profile -----------------------------------------------------------------


def test_the_emulator_serves_an_alternative_profile() -> None:
    emu = Opus2Emulator(seed=3, profile=ALTERNATIVE_PROFILE, rate_limit=None)
    project = emu.add_project("Alt")
    folder = emu.add_folder(project, "F")
    for i in range(60):
        emu.add_document(project, f"{i:02}.txt", b"abc", folder_id=folder)
    auth = {"Authorization": f"Bearer {emu.default_token}"}
    with (
        EmulatorServer(emu) as server,
        httpx.Client(base_url=server.url + "/api/v8", headers=auth) as c,
    ):
        error_of(httpx.get(f"{server.url}/projects", headers=auth), 404)  # prefix required
        page = c.get(f"/projects/{project}/documents", params={"offset": 55}).json()
        assert page["offset"] == 55 and page["limit"] == 50 and page["totalCount"] == 60
        assert len(page["data"]) == 5 and isinstance(page["data"][0]["id"], int)
        assert page["data"][0]["folderId"] == int(folder)
        error_of(
            c.post(f"/projects/{project}/folders", json={"name": "X", "parentId": folder}), 400
        )
        made = c.post(f"/projects/{project}/folders", json={"name": "X", "parentId": int(folder)})
        assert made.status_code == 201 and made.json()["parentId"] == int(folder)
        doc = page["data"][0]["id"]
        content = c.get(
            f"/projects/{project}/documents/{doc}/download", headers={"Range": "bytes=1-"}
        )
        assert content.status_code == 200 and content.content == b"abc"
        assert "accept-ranges" not in content.headers
        up = c.post(
            f"/projects/{project}/documents",
            files={"document": ("new.txt", b"n")},
            data={"parentFolderId": folder},
        )
        assert up.status_code == 201 and up.json()["folderId"] == int(folder)
        assert up.json()["updatedAt"].endswith("Z") and "." in up.json()["updatedAt"]
        renamed = c.patch(f"/projects/{project}/documents/{doc}", json={"name": "renamed.txt"})
        assert renamed.json()["name"] == "renamed.txt"
        assert c.delete(f"/projects/{project}/documents/{doc}").status_code == 200
        error_of(c.get(f"/projects/{project}/documents/{doc}"), 404)
    assert len(emu.documents(project, folder)) == 60


def test_wire_profiles_and_the_folder_guess_are_server_settings() -> None:
    """Both wire profiles through the release/settings framework (``docfs emulate opus2
    --setting wire_profile=alternative``), and the undocumented non-empty-folder status."""
    assert Opus2Emulator.options_for(Opus2Emulator.make_profile()) == {}
    alternative = Opus2Emulator.make_profile(settings={"wire_profile": "alternative"})
    assert Opus2Emulator.options_for(alternative) == {"profile": ALTERNATIVE_PROFILE}
    guessed = Opus2Emulator.make_profile(settings={"folder_not_empty_status": "400"})
    options = Opus2Emulator.options_for(guessed)
    assert options["profile"] == DEFAULT_PROFILE.replace(folder_not_empty_status=400)
    emu, ids = _seeded(**options)
    with (
        EmulatorServer(emu) as server,
        httpx.Client(base_url=server.url, headers={"X-API-Token": emu.default_token}) as c,
    ):
        folder = f"/projects/{ids['project']}/folders/{ids['folder_a']}/"
        assert error_of(c.delete(folder), 400) == "Folder is not empty"
    emu, ids = _seeded(**Opus2Emulator.options_for(alternative))
    with (
        EmulatorServer(emu) as server,
        httpx.Client(
            base_url=server.url, headers={"Authorization": f"Bearer {emu.default_token}"}
        ) as c,
    ):
        listed = c.get("/api/v8/projects").json()
        assert [p["name"] for p in listed["data"]] == ["Smith v Jones"]
