"""The DSpace 7+ emulator against the server's behaviour as ``docs/protocols/dspace7.md`` has it.

One numbered test per item of the emulator's fidelity checklist (each name says what it checks),
driven with plain httpx over loopback, plus the vendor-independent client ``dspace-rest-client``
running its own login, listing, creation, upload and download code against the emulator.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from email.utils import formatdate
from pathlib import Path
from typing import Any

import httpx
import pytest

from docfs.emulators.base import EmulatorServer
from docfs.emulators.dspace7 import DSpace7Emulator

ADMIN = ("admin@example.org", "admin-password-123")
USER = ("user@example.org", "user-password-456")
API = "/server/api"
UUID_RX = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}$")


@dataclass
class Tree:
    community: str
    sub: str
    collection: str
    item: str
    bundle: str
    bitstream: str


class Api:
    """An httpx client that speaks the CSRF dance the way a browser client does."""

    def __init__(self, server: EmulatorServer) -> None:
        self.base = server.url
        self.http = httpx.Client(base_url=server.url + API)

    def csrf(self) -> dict[str, str]:
        if self.http.cookies.get("DSPACE-XSRF-COOKIE") is None:
            self.http.get("/")
        return {"X-XSRF-TOKEN": self.http.cookies["DSPACE-XSRF-COOKIE"]}

    def login(self, user: str, password: str) -> str:
        response = self.http.post(
            "/authn/login", data={"user": user, "password": password}, headers=self.csrf()
        )
        assert response.status_code == 200
        token = response.headers["Authorization"].removeprefix("Bearer ")
        self.http.headers["Authorization"] = f"Bearer {token}"
        return token

    def send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {**self.csrf(), **kwargs.pop("headers", {})}
        return self.http.request(method, path, headers=headers, **kwargs)


def error_of(response: httpx.Response) -> dict[str, Any]:
    body = response.json()
    assert set(body) == {"timestamp", "status", "error", "message", "path"}
    assert body["status"] == response.status_code
    assert body["path"] == response.url.path
    return dict(body)


def decode_jwt(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    def part(text: str) -> dict[str, Any]:
        return dict(json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))))

    header, payload, _ = token.split(".")
    return part(header), part(payload)


def hrefs(data: Any) -> Iterator[str]:
    if isinstance(data, dict):
        for key, value in data.items():
            if key == "href" and isinstance(value, str):
                yield value
            else:
                yield from hrefs(value)
    elif isinstance(data, list):
        for value in data:
            yield from hrefs(value)


def multipart(name: str, content: bytes, properties: str | None = None) -> dict[str, Any]:
    files: dict[str, Any] = {"file": (name, content, "application/octet-stream")}
    if properties is not None:
        files["properties"] = (None, properties, "application/json")
    return {"files": files}


def start(**options: Any) -> tuple[DSpace7Emulator, EmulatorServer, Tree]:
    emulator = DSpace7Emulator(seed=3, user=ADMIN[0], password=ADMIN[1], **options)
    emulator.add_user(*USER)
    community = emulator.add_community("Top community")
    sub = emulator.add_community("Sub community", parent=community)
    collection = emulator.add_collection("Theses", community)
    item = emulator.add_item(collection, "An item")
    bitstream = emulator.add_bitstream(item, "hello.txt", b"0123456789")
    bundle = emulator.find("ORIGINAL", "bundle")[0]
    server = EmulatorServer(emulator)
    server.start()
    return emulator, server, Tree(community, sub, collection, item, bundle, bitstream)


@pytest.fixture
def env() -> Iterator[tuple[DSpace7Emulator, EmulatorServer, Tree]]:
    emulator, server, tree = start()
    yield emulator, server, tree
    server.stop()


@pytest.fixture
def api(env: tuple[DSpace7Emulator, EmulatorServer, Tree]) -> Iterator[Api]:
    client = Api(env[1])
    yield client
    client.http.close()


@pytest.fixture
def admin(api: Api) -> Api:
    api.login(*ADMIN)
    return api


Env = tuple[DSpace7Emulator, EmulatorServer, Tree]


# ---- 1-2: root document and links ---------------------------------------------------------


def test_01_root_document(api: Api) -> None:
    response = api.http.get("")
    assert response.status_code == 200
    root = response.json()
    assert root["type"] == "root"
    assert {"dspaceUI", "dspaceName", "dspaceServer", "dspaceVersion", "_links"} <= set(root)
    assert root["dspaceServer"].endswith("/server")
    assert root["dspaceVersion"].startswith("DSpace ")
    assert response.headers["content-type"].startswith("application/hal+json")


def test_02_links_are_absolute(env: Env, admin: Api) -> None:
    _, server, tree = env
    documents = [
        admin.http.get("").json(),
        admin.http.get(f"/core/items/{tree.item}", params={"embed": "bundles/bitstreams"}).json(),
        admin.http.get("/core/communities/search/top", params={"size": 1}).json(),
        admin.http.get(
            "/discover/search/objects", params={"scope": tree.collection, "dsoType": "ITEM"}
        ).json(),
    ]
    links = [h for doc in documents for h in hrefs(doc)]
    assert len(links) > 20
    assert all(h.startswith(server.url + API) for h in links)


# ---- 3-5: CSRF ------------------------------------------------------------------------------


def test_03_mutation_without_csrf_is_403_with_a_new_token(env: Env, api: Api) -> None:
    tree = env[2]
    for method, path in (
        ("POST", "/authn/login"),
        ("PUT", f"/core/items/{tree.item}"),
        ("PATCH", f"/core/bitstreams/{tree.bitstream}"),
        ("DELETE", f"/core/bitstreams/{tree.bitstream}"),
    ):
        response = httpx.request(method, api.base + API + path)
        assert response.status_code == 403
        assert error_of(response)["message"] == "Access is denied. Invalid CSRF token."
        token = response.headers["DSPACE-XSRF-TOKEN"]
        assert f"DSPACE-XSRF-COOKIE={token}" in response.headers["set-cookie"]
    # a mismatching pair is refused too, with yet another token
    cookie = api.csrf()["X-XSRF-TOKEN"]
    wrong = api.http.post("/authn/login", headers={"X-XSRF-TOKEN": "not-the-cookie"})
    assert wrong.status_code == 403
    assert error_of(wrong)["message"] == "Access is denied. Invalid CSRF token."
    assert wrong.headers["DSPACE-XSRF-TOKEN"] not in (cookie, "not-the-cookie")
    assert env[0].exists(tree.bitstream)


def test_04_csrf_cookie_flags(api: Api) -> None:
    plain = httpx.get(api.base + API + "/").headers["set-cookie"]
    assert "HttpOnly" in plain and "SameSite=Lax" in plain and "Secure" not in plain
    # uvicorn trusts X-Forwarded-Proto from loopback: the request counts as HTTPS
    secure = httpx.get(api.base + API + "/", headers={"X-Forwarded-Proto": "https"})
    flags = secure.headers["set-cookie"]
    assert "HttpOnly" in flags and "SameSite=None" in flags and "Secure" in flags


def test_05_security_csrf_endpoint_in_8_plus_only() -> None:
    _, server, _ = start(version="8.2")
    try:
        first = httpx.get(server.url + API + "/security/csrf")
        second = httpx.get(server.url + API + "/security/csrf")
        assert first.status_code == second.status_code == 204
        assert first.headers["DSPACE-XSRF-TOKEN"] != second.headers["DSPACE-XSRF-TOKEN"]
    finally:
        server.stop()
    _, server, _ = start(version="7.6.5")
    try:
        assert httpx.get(server.url + API + "/security/csrf").status_code == 404
    finally:
        server.stop()


# ---- 6-14: authentication ------------------------------------------------------------------


def test_06_login_answers_a_bearer_token_and_rotates_csrf(api: Api) -> None:
    sent = api.csrf()["X-XSRF-TOKEN"]
    response = api.http.post(
        "/authn/login",
        data={"user": ADMIN[0], "password": ADMIN[1]},
        headers={"X-XSRF-TOKEN": sent},
    )
    assert response.status_code == 200
    assert response.content == b""
    assert response.headers["Authorization"].startswith("Bearer ")
    rotated = response.headers["DSPACE-XSRF-TOKEN"]
    assert rotated != sent and api.http.cookies["DSPACE-XSRF-COOKIE"] == rotated


def test_07_bad_password(api: Api) -> None:
    response = api.http.post(
        "/authn/login", data={"user": ADMIN[0], "password": "wrong"}, headers=api.csrf()
    )
    assert response.status_code == 401
    assert error_of(response)["message"] == "Authentication failed!"
    assert 'password realm="DSpace REST API"' in response.headers["WWW-Authenticate"]
    assert "Authorization" not in response.headers


def test_08_other_methods_on_login_are_405(api: Api) -> None:
    assert api.http.get("/authn/login").status_code == 405
    for method in ("PUT", "PATCH", "DELETE"):
        response = api.send(method, "/authn/login")
        assert response.status_code == 405
        assert error_of(response)["error"] == "Method Not Allowed"


def test_09_jwt_claims_and_lifetime(api: Api) -> None:
    token = api.login(*ADMIN)
    header, claims = decode_jwt(token)
    assert header["alg"] == "HS256"
    assert {"eid", "sg", "exp"} <= set(claims)
    assert UUID_RX.match(claims["eid"])
    assert abs(claims["exp"] - (time.time() + 1800)) < 5


def test_10_refresh_with_only_the_bearer_token(api: Api) -> None:
    token = api.login(*ADMIN)
    response = api.send("POST", "/authn/login")
    assert response.status_code == 200
    renewed = response.headers["Authorization"].removeprefix("Bearer ")
    fresh = renewed != token  # a boolean: a failing assert must not print tokens
    assert fresh
    api.http.headers.pop("Authorization")
    anonymous = api.send("POST", "/authn/login")
    assert anonymous.status_code == 401


def test_11_bare_token_without_bearer_prefix(api: Api) -> None:
    token = api.login(*ADMIN)
    status = api.http.get("/authn/status", headers={"Authorization": token}).json()
    assert status["authenticated"] is True


def test_12_logout_invalidates_every_token_of_the_person(api: Api) -> None:
    first = api.login(*ADMIN)
    second = api.login(*ADMIN)
    assert api.send("POST", "/authn/logout").status_code == 204
    for token in (first, second):
        status = api.http.get("/authn/status", headers={"Authorization": f"Bearer {token}"})
        assert status.json()["authenticated"] is False


def test_13_status_answers_200_always(api: Api) -> None:
    anonymous = api.http.get("/authn/status")
    assert anonymous.status_code == 200
    body = anonymous.json()
    assert (body["authenticated"], body["type"], body["okay"]) == (False, "status", True)
    assert "WWW-Authenticate" in anonymous.headers
    api.http.headers["Authorization"] = "Bearer not.a.token"
    assert api.http.get("/authn/status").json()["authenticated"] is False
    api.login(*ADMIN)
    signed_in = api.http.get("/authn/status")
    body = signed_in.json()
    assert body["authenticated"] is True
    assert body["_embedded"]["eperson"]["email"] == ADMIN[0]
    assert "eperson" in body["_links"]
    assert "WWW-Authenticate" not in signed_in.headers


def test_14_short_lived_token_opens_restricted_content_briefly() -> None:
    emulator, server, tree = start(short_lived_lifetime=2.0)
    try:
        emulator.restrict(tree.bitstream, [ADMIN[0]])
        api = Api(server)
        api.login(*ADMIN)
        response = api.send("POST", "/authn/shortlivedtokens")
        assert response.status_code == 200
        token = response.json()["token"]
        expires = decode_jwt(token)[1]["exp"]
        assert expires - time.time() <= 2.0
        url = f"{server.url}{API}/core/bitstreams/{tree.bitstream}/content"
        # statuses are kept in variables: a failing assert must not print the token
        anonymous = httpx.get(url).status_code
        opened = httpx.get(url, params={"authentication-token": token})
        assert (anonymous, opened.status_code, opened.content) == (401, 200, b"0123456789")
        time.sleep(max(0.0, expires - time.time()) + 0.05)
        late = httpx.get(url, params={"authentication-token": token}).status_code
        assert late == 401
        # the short-lived token is no login token
        status = httpx.get(f"{server.url}{API}/authn/status", headers={"Authorization": token})
        assert status.json()["authenticated"] is False
        api.http.close()
    finally:
        server.stop()


# ---- 15-18: errors, permissions, status codes, pages ---------------------------------------


def test_15_errors_are_spring_json_with_dspace_messages(env: Env, api: Api) -> None:
    tree = env[2]
    unauthenticated = api.http.get("/core/items")
    assert error_of(unauthenticated)["message"] == "Authentication is required"
    api.login(*USER)
    forbidden = api.http.get("/core/items")
    assert error_of(forbidden)["message"] == "Access is denied"
    invalid = api.send(
        "POST", "/core/communities", content=b"{nope", headers={"Content-Type": "application/json"}
    )
    assert (invalid.status_code, error_of(invalid)["message"]) == (
        403,
        "Access is denied",
    )  # permission is checked first for a non-admin
    api.login(*ADMIN)
    bad = api.send(
        "POST", "/core/communities", content=b"{nope", headers={"Content-Type": "application/json"}
    )
    assert (bad.status_code, error_of(bad)["message"]) == (400, "Request is invalid or incorrect")
    unprocessable = api.send(
        "POST", "/core/collections", params={"parent": tree.item}, json={"metadata": {}}
    )
    assert unprocessable.status_code == 422
    assert error_of(unprocessable)["message"] == "Unprocessable or invalid entity"
    missing = api.http.get("/core/items/00000000-0000-4000-8000-000000000000")
    assert (missing.status_code, error_of(missing)["error"]) == (404, "Not Found")
    assert datetime.fromisoformat(error_of(missing)["timestamp"]).tzinfo is not None


def test_16_anonymous_gets_401_and_signed_in_without_rights_403(env: Env, api: Api) -> None:
    emulator, _, tree = env
    emulator.restrict(tree.item, [])
    assert api.http.get(f"/core/items/{tree.item}").status_code == 401
    api.login(*USER)
    assert api.http.get(f"/core/items/{tree.item}").status_code == 403
    api.login(*ADMIN)
    assert api.http.get(f"/core/items/{tree.item}").status_code == 200


def test_17b_a_metadata_patch_operation_takes_one_value(env: Env, admin: Api) -> None:
    """Released 7.x to 9.x: an operation's array gives its first value only (both ``add`` and
    ``replace``: DSpaceObjectMetadataPatchUtils.extractMetadataValueFromOperation, DSpace#12419);
    ``add`` without an index puts the value first, ``/-`` last (addAndShiftRightMetadata);
    an empty array is a 400."""
    emulator, _, tree = env
    path = f"/core/items/{tree.item}"

    def patch(*ops: dict[str, Any]) -> httpx.Response:
        return admin.send("PATCH", path, json=list(ops))

    two = [{"value": "One, A"}, {"value": "Two, B"}]
    assert patch({"op": "add", "path": "/metadata/dc.contributor.author", "value": two}).is_success
    assert emulator.metadata_of(tree.item)["dc.contributor.author"] == ["One, A"]
    first = {"op": "add", "path": "/metadata/dc.contributor.author", "value": [{"value": "Z"}]}
    last = {"op": "add", "path": "/metadata/dc.contributor.author/-", "value": {"value": "Y"}}
    assert patch(first, last).is_success
    assert emulator.metadata_of(tree.item)["dc.contributor.author"] == ["Z", "One, A", "Y"]
    assert patch({"op": "replace", "path": "/metadata/dc.contributor.author", "value": two})
    assert emulator.metadata_of(tree.item)["dc.contributor.author"] == ["One, A"]
    empty = patch({"op": "replace", "path": "/metadata/dc.contributor.author", "value": []})
    assert empty.status_code == 400
    assert emulator.metadata_of(tree.item)["dc.contributor.author"] == ["One, A"]


def test_17c_a_release_with_the_fix_adds_every_value() -> None:
    """DSpace#12428/#12467 (2026): ``add`` takes every value of its array, in order;
    ``replace`` still the first."""
    emulator, server, tree = start(patch_add_takes_all=True)
    try:
        api = Api(server)
        api.login(*ADMIN)
        path = f"/core/items/{tree.item}"
        two = [{"value": "One, A"}, {"value": "Two, B"}]
        add = {"op": "add", "path": "/metadata/dc.contributor.author", "value": two}
        assert api.send("PATCH", path, json=[add]).is_success
        assert emulator.metadata_of(tree.item)["dc.contributor.author"] == ["One, A", "Two, B"]
        replace = {"op": "replace", "path": "/metadata/dc.subject", "value": two}
        assert api.send("PATCH", path, json=[replace]).is_success
        assert emulator.metadata_of(tree.item)["dc.subject"] == ["One, A"]
    finally:
        server.stop()


def test_17_create_201_update_200_delete_204(env: Env, admin: Api) -> None:
    tree = env[2]
    created = admin.send(
        "POST",
        "/core/communities",
        json={"name": "N", "metadata": {"dc.title": [{"value": "N"}]}},
    )
    assert created.status_code == 201 and created.json()["name"] == "N"
    uuid = created.json()["uuid"]
    patched = admin.send(
        "PATCH",
        f"/core/communities/{uuid}",
        json=[{"op": "replace", "path": "/metadata/dc.title/0/value", "value": "M"}],
    )
    assert patched.status_code == 200 and patched.json()["name"] == "M"
    item = admin.http.get(f"/core/items/{tree.item}").json()
    item["metadata"]["dc.subject"] = [{"value": "physics"}]
    put = admin.send("PUT", f"/core/items/{tree.item}", json=item)
    assert put.status_code == 200
    assert put.json()["metadata"]["dc.subject"][0]["value"] == "physics"
    deleted = admin.send("DELETE", f"/core/communities/{uuid}")
    assert (deleted.status_code, deleted.content) == (204, b"")


def test_18_pages(env: Env, api: Api) -> None:
    emulator, _, tree = env
    for n in range(44):
        emulator.add_collection(f"C{n:02d}", tree.community)
    first = api.http.get(f"/core/communities/{tree.community}/collections").json()
    assert first["page"] == {"size": 20, "totalElements": 45, "totalPages": 3, "number": 0}
    assert len(first["_embedded"]["collections"]) == 20
    assert {"first", "self", "next", "last"} <= set(first["_links"])
    assert "prev" not in first["_links"]
    middle = api.http.get(
        f"/core/communities/{tree.community}/collections", params={"page": 1}
    ).json()
    assert {"first", "self", "next", "prev", "last"} <= set(middle["_links"])
    assert "page=0" in middle["_links"]["prev"]["href"]
    last = api.http.get(middle["_links"]["last"]["href"]).json()
    assert len(last["_embedded"]["collections"]) == 5
    assert "next" not in last["_links"]
    huge = api.http.get(
        f"/core/communities/{tree.community}/collections", params={"size": 5000}
    ).json()
    assert huge["page"]["size"] == 2000


# ---- 19-25: communities, collections, items, discovery, embeds -----------------------------


def test_19_community_tree(env: Env, api: Api) -> None:
    tree = env[2]
    top = api.http.get("/core/communities/search/top").json()
    assert [c["uuid"] for c in top["_embedded"]["communities"]] == [tree.community]
    subs = api.http.get(f"/core/communities/{tree.community}/subcommunities").json()
    assert [c["uuid"] for c in subs["_embedded"]["subcommunities"]] == [tree.sub]
    colls = api.http.get(f"/core/communities/{tree.community}/collections").json()
    assert [c["uuid"] for c in colls["_embedded"]["collections"]] == [tree.collection]
    community = top["_embedded"]["communities"][0]
    assert community["type"] == "community" and community["archivedItemsCount"] == 1
    assert {"collections", "subcommunities", "logo", "parentCommunity", "self"} <= set(
        community["_links"]
    )


def test_20_creating_communities_and_collections(env: Env, admin: Api) -> None:
    tree = env[2]
    body = {"name": "X", "metadata": {"dc.title": [{"value": "X"}]}}
    top = admin.send("POST", "/core/communities", json=body)
    sub = admin.send("POST", "/core/communities", params={"parent": tree.community}, json=body)
    coll = admin.send("POST", "/core/collections", params={"parent": tree.community}, json=body)
    assert [r.status_code for r in (top, sub, coll)] == [201, 201, 201]
    assert coll.json()["type"] == "collection"
    ghost = "00000000-0000-4000-8000-000000000000"
    for path in ("/core/communities", "/core/collections"):
        assert admin.send("POST", path, params={"parent": ghost}, json=body).status_code == 422


def test_21_discovery_lists_a_collections_items(env: Env, api: Api) -> None:
    emulator, _, tree = env
    assert api.http.get(f"/core/collections/{tree.collection}/items").status_code == 404
    other = emulator.add_collection("Other", tree.community)
    mapped = emulator.add_item(other, "Mapped in")
    emulator.map_item(mapped, tree.collection)
    emulator.add_item(tree.collection, "Withdrawn", withdrawn=True)
    emulator.add_item(tree.collection, "Private", discoverable=False)
    for n in range(120):
        emulator.add_item(tree.collection, f"Bulk {n:03d}")
    params = {"scope": tree.collection, "dsoType": "ITEM", "size": "500"}

    def names(client: httpx.Client) -> tuple[list[str], dict[str, Any]]:
        found: list[str] = []
        page = 0
        while True:
            query = {**params, "page": str(page)}
            answer = client.get("/discover/search/objects", params=query).json()
            result = answer["_embedded"]["searchResult"]
            for obj in result["_embedded"]["objects"]:
                found.append(obj["_embedded"]["indexableObject"]["name"])
            if page + 1 >= result["page"]["totalPages"]:
                return found, result["page"]
            page += 1

    anonymous, info = names(api.http)
    assert info["size"] == 100 and info["totalElements"] == 122
    assert "Mapped in" in anonymous and "An item" in anonymous
    assert "Withdrawn" not in anonymous and "Private" not in anonymous
    api.login(*ADMIN)
    everything, info = names(api.http)
    assert info["totalElements"] == 124
    assert {"Withdrawn", "Private"} <= set(everything)


def test_22_all_items_admin_only_and_mapped_items(env: Env, api: Api) -> None:
    emulator, _, tree = env
    other = emulator.add_collection("Other", tree.community)
    mapped = emulator.add_item(other, "Mapped")
    emulator.map_item(mapped, tree.collection)
    assert api.http.get("/core/items").status_code == 401
    api.login(*USER)
    assert api.http.get("/core/items").status_code == 403
    api.login(*ADMIN)
    everything = api.http.get("/core/items").json()
    assert everything["page"]["totalElements"] == 2
    only_mapped = api.http.get(f"/core/collections/{tree.collection}/mappedItems").json()
    assert [i["uuid"] for i in only_mapped["_embedded"]["mappedItems"]] == [mapped]


def test_23_post_items_is_for_site_admins(env: Env, api: Api) -> None:
    tree = env[2]
    body = {
        "name": "New",
        "metadata": {"dc.title": [{"value": "New"}]},
        "inArchive": True,
        "discoverable": True,
        "withdrawn": False,
        "type": "item",
    }
    params = {"owningCollection": tree.collection}
    assert api.send("POST", "/core/items", params=params, json=body).status_code == 401
    api.login(*USER)
    assert api.send("POST", "/core/items", params=params, json=body).status_code == 403
    api.login(*ADMIN)
    created = api.send("POST", "/core/items", params=params, json=body)
    assert created.status_code == 201
    assert created.json()["inArchive"] is True and created.json()["name"] == "New"
    not_archived = api.send("POST", "/core/items", params=params, json={**body, "inArchive": False})
    assert not_archived.status_code == 400
    ghost = {"owningCollection": "00000000-0000-4000-8000-000000000000"}
    assert api.send("POST", "/core/items", params=ghost, json=body).status_code == 400


def test_24_embed_bundles_and_bitstreams(env: Env, api: Api) -> None:
    emulator, _, tree = env
    for n in range(4):
        emulator.add_bitstream(tree.item, f"extra{n}.txt", b"x")
    item = api.http.get(
        f"/core/items/{tree.item}",
        params=[("embed", "bundles/bitstreams"), ("embed.size", "bitstreams=2")],
    ).json()
    bundles = item["_embedded"]["bundles"]
    assert bundles["page"]["totalElements"] == 1
    original = bundles["_embedded"]["bundles"][0]
    page = original["_embedded"]["bitstreams"]
    assert [b["name"] for b in page["_embedded"]["bitstreams"]] == ["hello.txt", "extra0.txt"]
    assert page["page"] == {"size": 2, "totalElements": 5, "totalPages": 3, "number": 0}
    # DSpace 8+ spells the nested size with its path; both forms are honoured
    by_path = api.http.get(
        f"/core/items/{tree.item}",
        params=[("embed", "bundles/bitstreams"), ("embed.size", "bundles/bitstreams=3")],
    ).json()
    nested = by_path["_embedded"]["bundles"]["_embedded"]["bundles"][0]["_embedded"]
    assert len(nested["bitstreams"]["_embedded"]["bitstreams"]) == 3


def test_25_no_embedded_without_embed_or_projection(env: Env, api: Api) -> None:
    tree = env[2]
    for path in (
        f"/core/items/{tree.item}",
        f"/core/communities/{tree.community}",
        f"/core/bundles/{tree.bundle}",
        f"/core/bitstreams/{tree.bitstream}",
    ):
        assert "_embedded" not in api.http.get(path).json()
    full = api.http.get(f"/core/items/{tree.item}", params={"projection": "full"}).json()
    assert "bundles" in full["_embedded"] and "owningCollection" in full["_embedded"]


# ---- 26-29: bundles and uploads ------------------------------------------------------------


def test_26_bundles(env: Env, admin: Api) -> None:
    tree = env[2]
    path = f"/core/items/{tree.item}/bundles"
    created = admin.send("POST", path, json={"name": "EXTRA", "metadata": {}})
    assert created.status_code == 201 and created.json()["name"] == "EXTRA"
    assert admin.send("POST", path, json={"name": "EXTRA", "metadata": {}}).status_code == 400
    assert admin.send("POST", path, json={"name": "ORIGINAL", "metadata": {}}).status_code == 400
    names = [b["name"] for b in admin.http.get(path).json()["_embedded"]["bundles"]]
    assert names == ["ORIGINAL", "EXTRA"]


def test_27_upload_into_a_bundle(env: Env, admin: Api) -> None:
    tree = env[2]
    path = f"/core/bundles/{tree.bundle}/bitstreams"
    content = b"some bytes\x00\r\n--not-a-boundary\r\n"
    plain = admin.send("POST", path, **multipart("data.bin", content))
    assert plain.status_code == 201
    body = plain.json()
    assert body["name"] == "data.bin" and body["bundleName"] == "ORIGINAL"
    assert body["sizeBytes"] == len(content)
    assert body["checkSum"] == {
        "checkSumAlgorithm": "MD5",
        "value": hashlib.md5(content).hexdigest(),
    }
    assert body["sequenceId"] is None
    named = admin.send(
        "POST",
        path,
        **multipart(
            "x.bin",
            b"x",
            '{"name": "chosen.txt", "metadata": {"dc.description": [{"value": "d"}]}}',
        ),
    )
    assert named.json()["name"] == "chosen.txt"
    assert named.json()["metadata"]["dc.description"][0]["value"] == "d"
    malformed = admin.send("POST", path, **multipart("y.bin", b"y", '{"name": '))
    assert malformed.status_code == 422
    ghost = "/core/bundles/00000000-0000-4000-8000-000000000000/bitstreams"
    assert admin.send("POST", ghost, **multipart("z.bin", b"z")).status_code == 404
    download = admin.http.get(f"/core/bitstreams/{body['uuid']}/content")
    assert download.content == content


def test_28_duplicate_names_in_a_bundle(env: Env, admin: Api) -> None:
    tree = env[2]
    path = f"/core/bundles/{tree.bundle}/bitstreams"
    first = admin.send("POST", path, **multipart("same.txt", b"1"))
    second = admin.send("POST", path, **multipart("same.txt", b"2"))
    assert first.status_code == second.status_code == 201
    assert first.json()["uuid"] != second.json()["uuid"]


def test_29_bundle_order(env: Env, admin: Api) -> None:
    emulator, _, tree = env
    emulator.add_bitstream(tree.item, "b.txt", b"b")
    emulator.add_bitstream(tree.item, "a.txt", b"a")
    listed = admin.http.get(f"/core/bundles/{tree.bundle}/bitstreams").json()
    assert [b["name"] for b in listed["_embedded"]["bitstreams"]] == ["hello.txt", "b.txt", "a.txt"]
    moved = admin.send(
        "PATCH",
        f"/core/bundles/{tree.bundle}",
        json=[
            {"op": "move", "from": "/_links/bitstreams/2/href", "path": "/_links/bitstreams/0/href"}
        ],
    )
    assert moved.status_code == 200
    listed = admin.http.get(f"/core/bundles/{tree.bundle}/bitstreams").json()
    assert [b["name"] for b in listed["_embedded"]["bitstreams"]] == ["a.txt", "hello.txt", "b.txt"]


# ---- 30-34: content --------------------------------------------------------------------------


def test_30_content_headers(env: Env, api: Api) -> None:
    tree = env[2]
    response = api.http.get(f"/core/bitstreams/{tree.bitstream}/content")
    assert response.status_code == 200 and response.content == b"0123456789"
    headers = response.headers
    assert headers["Content-Length"] == "10"
    assert headers["Accept-Ranges"] == "bytes"
    assert headers["ETag"] == f'"{hashlib.md5(b"0123456789").hexdigest()}"'
    assert headers["Cache-Control"] == "private,no-cache"
    assert headers["Content-Type"] == "text/plain;charset=UTF-8"
    assert headers["Content-Disposition"].startswith("attachment;")
    assert "Last-Modified" in headers and "Expires" in headers


def test_31_ranges_and_head(env: Env, api: Api) -> None:
    tree = env[2]
    url = f"/core/bitstreams/{tree.bitstream}/content"
    part = api.http.get(url, headers={"Range": "bytes=1-3"})
    assert (part.status_code, part.content) == (206, b"123")
    assert part.headers["Content-Range"] == "bytes 1-3/10"
    assert part.headers["Content-Length"] == "3"
    open_ended = api.http.get(url, headers={"Range": "bytes=7-"})
    assert (open_ended.status_code, open_ended.content) == (206, b"789")
    suffix = api.http.get(url, headers={"Range": "bytes=-2"})
    assert suffix.content == b"89"
    beyond = api.http.get(url, headers={"Range": "bytes=50-"})
    assert beyond.status_code == 416 and beyond.headers["Content-Range"] == "bytes */10"
    head = api.http.head(url)
    assert (head.status_code, head.content) == (200, b"")
    assert head.headers["Content-Length"] == "10" and "ETag" in head.headers


def test_31b_large_content_streams_in_chunks(env: Env, api: Api) -> None:
    emulator, _, tree = env
    content = bytes(range(256)) * (20 * 4096)  # 20 MiB
    uuid = emulator.add_bitstream(tree.item, "large.bin", content)
    emulator.plan_fault(method="GET", path="/content$", reset_after=3 * 1024 * 1024)
    with pytest.raises(httpx.TransportError):
        api.http.get(f"/core/bitstreams/{uuid}/content")
    (cut,) = emulator.requests("GET", "/content$")
    assert cut.bytes_out == 3 * 1024 * 1024  # cut inside the body, not before it
    whole = api.http.get(f"/core/bitstreams/{uuid}/content")
    assert hashlib.md5(whole.content).digest() == hashlib.md5(content).digest()


def test_32_conditional_requests(env: Env, api: Api) -> None:
    tree = env[2]
    url = f"/core/bitstreams/{tree.bitstream}/content"
    first = api.http.get(url)
    etag, modified = first.headers["ETag"], first.headers["Last-Modified"]
    assert api.http.get(url, headers={"If-None-Match": etag}).status_code == 304
    assert api.http.get(url, headers={"If-Modified-Since": modified}).status_code == 304
    earlier = formatdate(time.time() - 3600, usegmt=True)
    assert api.http.get(url, headers={"If-Modified-Since": earlier}).status_code == 200
    assert api.http.get(url, headers={"If-Match": '"other"'}).status_code == 416
    assert api.http.get(url, headers={"If-Match": etag}).status_code == 200
    assert api.http.get(url, headers={"If-Unmodified-Since": earlier}).status_code == 412


def test_33_content_permissions(env: Env, api: Api) -> None:
    emulator, _, tree = env
    emulator.restrict(tree.bitstream, [ADMIN[0]])
    url = f"/core/bitstreams/{tree.bitstream}/content"
    assert api.http.get(url).status_code == 401
    api.login(*USER)
    assert api.http.get(url).status_code == 403
    api.login(*ADMIN)
    assert api.http.get(url).status_code == 200
    assert (
        api.http.get("/core/bitstreams/00000000-0000-4000-8000-000000000000/content").status_code
        == 404
    )
    emulator.delete(tree.bitstream)
    assert api.http.get(url).status_code == 404


def test_34_content_disposition_per_version() -> None:
    emulator, server, tree = start()
    try:
        accented = emulator.add_bitstream(tree.item, "résumé.pdf", b"%PDF")
        unnamed = emulator.add_bitstream(tree.item, None, b"?", mime="application/pdf")
        get = httpx.Client(base_url=server.url + API).get
        value = get(f"/core/bitstreams/{accented}/content").headers["Content-Disposition"]
        encoded = base64.b64encode("résumé.pdf".encode()).decode()
        assert value == f'attachment;filename="=?UTF-8?B?{encoded}?="'
        value = get(f"/core/bitstreams/{unnamed}/content").headers["Content-Disposition"]
        assert value == f'attachment;filename="{unnamed}.pdf"'
    finally:
        server.stop()
    emulator, server, tree = start(version="10.0")
    try:
        accented = emulator.add_bitstream(tree.item, "résumé.pdf", b"%PDF")
        value = httpx.get(f"{server.url}{API}/core/bitstreams/{accented}/content").headers[
            "Content-Disposition"
        ]
        assert value == "attachment; filename=\"r?sum?.pdf\"; filename*=UTF-8''r%C3%A9sum%C3%A9.pdf"
    finally:
        server.stop()


# ---- 35-41: renames, moves, deletes, replacement, identifiers -------------------------------


def test_35_rename_by_patch(env: Env, admin: Api) -> None:
    emulator, _, tree = env
    response = admin.send(
        "PATCH",
        f"/core/bitstreams/{tree.bitstream}",
        json=[{"op": "replace", "path": "/metadata/dc.title/0/value", "value": "renamed.txt"}],
    )
    assert response.status_code == 200 and response.json()["name"] == "renamed.txt"
    assert emulator.name_of(tree.bitstream) == "renamed.txt"
    bad = admin.send(
        "PATCH",
        f"/core/bitstreams/{tree.bitstream}",
        json=[{"op": "replace", "path": "/metadata/dc.title/5/value", "value": "x"}],
    )
    assert bad.status_code == 422


def test_36_move_to_another_bundle(env: Env, admin: Api) -> None:
    emulator, _, tree = env
    target = emulator.add_bundle(tree.item, "EXTRA")
    response = admin.send(
        "PUT",
        f"/core/bitstreams/{tree.bitstream}/bundle",
        content=f"{admin.base}{API}/core/bundles/{target}\n".encode(),
        headers={"Content-Type": "text/uri-list"},
    )
    assert response.status_code == 200 and response.json()["uuid"] == target
    assert emulator.bitstreams(tree.item, "EXTRA") == [(tree.bitstream, "hello.txt")]
    assert admin.http.get(f"/core/bitstreams/{tree.bitstream}").json()["bundleName"] == "EXTRA"


def test_37_delete_and_logo(env: Env, admin: Api) -> None:
    emulator, _, tree = env
    assert admin.send("DELETE", f"/core/bitstreams/{tree.bitstream}").status_code == 204
    assert admin.send("DELETE", f"/core/bitstreams/{tree.bitstream}").status_code == 404
    logo = emulator.set_logo(tree.community, b"\x89PNG", "logo.png")
    assert admin.send("DELETE", f"/core/bitstreams/{logo}").status_code == 422
    assert admin.http.get(f"/core/communities/{tree.community}/logo").json()["uuid"] == logo


def test_38_bulk_delete(env: Env, admin: Api) -> None:
    emulator, _, tree = env
    other = emulator.add_bitstream(tree.item, "other.txt", b"o")
    response = admin.send(
        "PATCH",
        "/core/bitstreams",
        json=[
            {"op": "remove", "path": f"/bitstreams/{tree.bitstream}"},
            {"op": "remove", "path": f"/bitstreams/{other}"},
        ],
    )
    assert response.status_code == 204
    assert emulator.bitstreams(tree.item) == []


@pytest.mark.parametrize(
    ("version", "enabled", "expected"),
    [
        ("7.6", False, 405),  # no PUT mapping on …/content before 10.0 (BitstreamRestController)
        ("9.1", True, 405),
        ("10.0", False, 400),  # BitstreamServiceImpl.replace: IllegalStateException → 400
        ("10.0", True, 201),
    ],
)
def test_39_content_replacement_by_release_and_setting(
    version: str, enabled: bool, expected: int
) -> None:
    emulator, server, tree = start(version=version, replace_bitstream_enabled=enabled)
    try:
        api = Api(server)
        api.login(*ADMIN)
        response = api.send(
            "PUT",
            f"/core/bitstreams/{tree.bitstream}/content",
            params={"replaceName": "true"},
            **multipart("new.txt", b"new"),
        )
        assert response.status_code == expected
        if expected == 400:
            assert response.json()["message"] == "Bitstream replacement is not enabled"
            assert emulator.bitstreams(tree.item) == [(tree.bitstream, "hello.txt")]
        if expected == 201:
            new = response.json()
            assert new["uuid"] != tree.bitstream and new["name"] == "new.txt"
            assert not emulator.exists(tree.bitstream)
            assert emulator.bitstreams(tree.item) == [(new["uuid"], "new.txt")]
        api.http.close()
    finally:
        server.stop()


@pytest.mark.parametrize(
    ("old", "uploaded", "replace_name", "expected"),
    [
        ("report.pdf", "other.pdf", "false", "report.pdf"),  # same extension: old name kept
        ("report.pdf", "42", "false", "report."),  # old base name + uploaded (empty) extension
        ("report.pdf", "1234.data", "false", "report.data"),
        ("Makefile", "Makefile", "false", "Makefile"),
        ("report.pdf", "new.txt", None, "new.txt"),  # replaceName defaults to true
    ],
)
def test_39_replaced_name_follows_bitstream_service_replace(
    old: str, uploaded: str, replace_name: str | None, expected: str
) -> None:
    emulator, server, tree = start(version="10.0", replace_bitstream_enabled=True)
    try:
        stream = emulator.add_bitstream(tree.item, old, b"old")
        api = Api(server)
        api.login(*ADMIN)
        params = {"replaceName": replace_name} if replace_name is not None else {}
        response = api.send(
            "PUT",
            f"/core/bitstreams/{stream}/content",
            params=params,
            **multipart(uploaded, b"new"),
        )
        assert response.status_code == 201
        assert response.json()["name"] == expected
        api.http.close()
    finally:
        server.stop()


def test_40_pid_find(env: Env, api: Api) -> None:
    tree = env[2]
    handle = api.http.get(f"/core/items/{tree.item}").json()["handle"]
    found = api.http.get("/pid/find", params={"id": handle})
    assert found.status_code == 302
    assert found.headers["Location"] == f"{api.base}{API}/core/items/{tree.item}"
    assert api.http.get("/pid/find", params={"id": "123456789/999999"}).status_code == 404


def test_41_bitstream_by_item_handle(env: Env, api: Api) -> None:
    tree = env[2]
    handle = api.http.get(f"/core/items/{tree.item}").json()["handle"]
    path = "/core/bitstreams/search/byItemHandle"
    hit = api.http.get(path, params={"handle": handle, "filename": "hello.txt"})
    assert hit.status_code == 200 and hit.json()["uuid"] == tree.bitstream
    by_sequence = api.http.get(path, params={"handle": handle, "sequence": 1})
    assert by_sequence.json()["uuid"] == tree.bitstream
    miss = api.http.get(path, params={"handle": handle, "filename": "nope"})
    assert (miss.status_code, miss.content) == (204, b"")


# ---- 42-44: submission, dates, upload limit ---------------------------------------------------


def test_42_workspace_and_workflow_items(env: Env, api: Api) -> None:
    emulator, _, tree = env
    api.login(*USER)
    # not in the collection's SUBMIT group: no workspace item (ADD on the collection)
    refused = api.send(
        "POST", "/submission/workspaceitems", params={"owningCollection": tree.collection}
    )
    assert refused.status_code == 403
    emulator.grant_role(USER[0], "submitter")
    created = api.send(
        "POST", "/submission/workspaceitems", params={"owningCollection": tree.collection}
    )
    assert created.status_code == 201
    workspace = created.json()
    assert isinstance(workspace["id"], int) and workspace["type"] == "workspaceitem"
    ws_url = workspace["_links"]["self"]["href"]
    uri_list = {"content": f"{ws_url}\n".encode(), "headers": {"Content-Type": "text/uri-list"}}
    # no title and no license yet: the deposit is refused
    assert api.send("POST", "/workflow/workflowitems", **uri_list).status_code == 422
    patched = api.send(
        "PATCH",
        f"/submission/workspaceitems/{workspace['id']}",
        json=[
            {
                "op": "add",
                "path": "/sections/traditionalpageone/dc.title",
                "value": [{"value": "Deposit"}],
            },
            {"op": "add", "path": "/sections/license/granted", "value": "true"},
        ],
    )
    assert patched.status_code == 200
    assert patched.json()["sections"]["license"]["granted"] is True
    # a whole field's add in a submission initializes or replaces it, never appends
    # (ItemMetadataValueAddPatchOperation), so the same patch sent again changes nothing
    again = api.send(
        "PATCH",
        f"/submission/workspaceitems/{workspace['id']}",
        json=[
            {
                "op": "add",
                "path": "/sections/traditionalpageone/dc.title",
                "value": [{"value": "Deposit"}],
            }
        ],
    )
    titles = again.json()["sections"]["traditionalpageone"]["dc.title"]
    assert [t["value"] for t in titles] == ["Deposit"]
    item_uuid = api.http.get(
        f"/submission/workspaceitems/{workspace['id']}", params={"embed": "item"}
    ).json()["_embedded"]["item"]["uuid"]
    other = Api(env[1])
    other.login(*ADMIN)
    assert other.send("POST", "/workflow/workflowitems", **uri_list).status_code == 403
    other.http.close()
    # webui.submit.upload.required (true by default): no file, no deposit (UploadValidator)
    assert api.send("POST", "/workflow/workflowitems", **uri_list).status_code == 422
    errors_now = api.http.get(f"/submission/workspaceitems/{workspace['id']}").json()["errors"]
    assert [e["message"] for e in errors_now] == ["error.validation.filerequired"]
    bundle = api.send(
        "POST", f"/core/items/{item_uuid}/bundles", json={"name": "ORIGINAL", "metadata": {}}
    )
    assert bundle.status_code == 201  # the submitter may add to its own workspace item
    upload = api.send(
        "POST", f"/core/bundles/{bundle.json()['uuid']}/bitstreams", **multipart("a.txt", b"a")
    )
    assert upload.status_code == 201
    deposited = api.send("POST", "/workflow/workflowitems", **uri_list)
    assert (deposited.status_code, deposited.content) == (201, b"")
    assert emulator.item_state(item_uuid)["in_archive"]
    assert emulator.name_of(item_uuid) == "Deposit"
    # XmlWorkflowServiceImpl.start removes the submitter's policies: read only from now on
    stream = upload.json()["uuid"]
    assert api.send("DELETE", f"/core/bitstreams/{stream}").status_code == 403
    again = api.send(
        "POST", f"/core/bundles/{bundle.json()['uuid']}/bitstreams", **multipart("b.txt", b"b")
    )
    assert again.status_code == 403
    assert api.http.get(f"/core/bitstreams/{stream}/content").content == b"a"


def test_42_upload_not_required_when_the_setting_is_off() -> None:
    emulator, server, tree = start(upload_required=False)
    try:
        emulator.grant_role(USER[0], "submitter")
        api = Api(server)
        api.login(*USER)
        workspace = api.send(
            "POST", "/submission/workspaceitems", params={"owningCollection": tree.collection}
        ).json()
        api.send(
            "PATCH",
            f"/submission/workspaceitems/{workspace['id']}",
            json=[
                {
                    "op": "add",
                    "path": "/sections/traditionalpageone/dc.title",
                    "value": [{"value": "No file"}],
                },
                {"op": "add", "path": "/sections/license/granted", "value": True},
            ],
        )
        url = workspace["_links"]["self"]["href"]
        deposited = api.send(
            "POST",
            "/workflow/workflowitems",
            content=f"{url}\n".encode(),
            headers={"Content-Type": "text/uri-list"},
        )
        assert deposited.status_code == 201
        api.http.close()
    finally:
        server.stop()


def test_embargoed_bitstream_metadata_is_readable_anonymously(env: Env, api: Api) -> None:
    """findOneBitstreamTest_EmbargoedBitstream_Anon: 200 for the metadata (METADATA_READ via
    READ on item and bundle), while the content stays closed."""
    emulator, _, tree = env
    emulator.restrict(tree.bitstream, [])
    response = api.http.get(f"/core/bitstreams/{tree.bitstream}")
    assert response.status_code == 200 and response.json()["name"] == "hello.txt"
    assert api.http.get(f"/core/bitstreams/{tree.bitstream}/content").status_code == 401
    emulator.restrict(tree.item, [])  # no READ on the item: no metadata either
    assert api.http.get(f"/core/bitstreams/{tree.bitstream}").status_code == 401


@pytest.mark.parametrize("version", ["7.6", "10.0"])
def test_cover_pages_change_length_and_etag_for_non_admins(version: str) -> None:
    """BitstreamRestControllerIT.withCoverPageContentLengthAndEtagChanges (8.0+): the served
    PDF is another document; 7.6 sends its length but the stored checksum as ETag. Byte
    ranges are cut from the served document; administrators get the stored file."""
    emulator, server, tree = start(version=version, cover_pages=True)
    try:
        pdf = emulator.add_bitstream(tree.item, "paper.pdf", b"%PDF-1.4 body")
        md5 = hashlib.md5(b"%PDF-1.4 body").hexdigest()
        api = Api(server)
        whole = api.http.get(f"/core/bitstreams/{pdf}/content")
        assert whole.status_code == 200
        assert whole.content.endswith(b"%PDF-1.4 body") and len(whole.content) > 13
        assert int(whole.headers["Content-Length"]) == len(whole.content)
        expected_etag = md5 if version == "7.6" else hashlib.md5(f"coverpage:{md5}".encode())
        if not isinstance(expected_etag, str):
            expected_etag = expected_etag.hexdigest()
        assert whole.headers["ETag"] == f'"{expected_etag}"'
        part = api.http.get(f"/core/bitstreams/{pdf}/content", headers={"Range": "bytes=0-3"})
        assert (part.status_code, part.content) == (206, whole.content[:4])
        assert part.headers["Content-Range"] == f"bytes 0-3/{len(whole.content)}"
        # not a PDF: as stored
        assert api.http.get(f"/core/bitstreams/{tree.bitstream}/content").content == b"0123456789"
        api.login(*ADMIN)
        assert api.http.get(f"/core/bitstreams/{pdf}/content").content == b"%PDF-1.4 body"
        api.http.close()
    finally:
        server.stop()


def test_43_dates_are_iso_8601_with_offset(env: Env, api: Api) -> None:
    tree = env[2]
    stamp = api.http.get(f"/core/items/{tree.item}").json()["lastModified"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d\d:\d\d", stamp)
    assert datetime.fromisoformat(stamp).tzinfo is not None


def test_44_upload_over_the_limit_is_413() -> None:
    _, server, tree = start(max_upload_bytes=1000)
    try:
        api = Api(server)
        api.login(*ADMIN)
        path = f"/core/bundles/{tree.bundle}/bitstreams"
        too_big = api.send("POST", path, **multipart("big.bin", b"x" * 1001))
        assert too_big.status_code == 413 and error_of(too_big)["error"] == "Payload Too Large"
        assert api.send("POST", path, **multipart("ok.bin", b"x" * 1000)).status_code == 201
        api.http.close()
    finally:
        server.stop()


# ---- emulator options beyond the checklist --------------------------------------------------


def test_lazy_csrf_withholds_tokens_from_gets_until_the_first_post() -> None:
    _, server, _ = start(lazy_csrf=True, version="7.6.5")
    try:
        client = httpx.Client(base_url=server.url + API)
        assert "DSPACE-XSRF-TOKEN" not in client.get("/").headers
        refused = client.post("/authn/login", data={"user": ADMIN[0], "password": ADMIN[1]})
        assert refused.status_code == 403
        token = refused.headers["DSPACE-XSRF-TOKEN"]
        accepted = client.post(
            "/authn/login",
            data={"user": ADMIN[0], "password": ADMIN[1]},
            headers={"X-XSRF-TOKEN": token},
        )
        assert accepted.status_code == 200
        client.close()
    finally:
        server.stop()


def test_index_delay_and_rate_limit_options() -> None:
    emulator, server, tree = start(index_delay=60.0, rate_limit=(3, 60.0), rate_limit_retry_after=7)
    try:
        client = httpx.Client(base_url=server.url + API)
        emulator.reindex()  # the seeded item is committed to the index
        late = emulator.add_item(tree.collection, "Late")
        params = {"scope": tree.collection, "dsoType": "ITEM"}
        result = client.get("/discover/search/objects", params=params).json()
        objects = result["_embedded"]["searchResult"]["_embedded"]["objects"]
        assert [o["_embedded"]["indexableObject"]["name"] for o in objects] == ["An item"]
        assert client.get(f"/core/items/{late}").status_code == 200  # it exists all the same
        client.get("/")
        limited = client.get("/")
        assert limited.status_code == 429 and limited.headers["Retry-After"] == "7"
        client.close()
    finally:
        server.stop()


# ---- the vendor-independent client -------------------------------------------------------


@pytest.fixture
def quiet_root_logger() -> Iterator[None]:
    """dspace_rest_client calls logging.basicConfig at import; undo it after the test."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


# google-api-core, pulled in through smart_open[all], warns about the Python version
@pytest.mark.filterwarnings("ignore::FutureWarning")
def test_dspace_rest_client_drives_the_emulator(
    env: Env, tmp_path: Path, quiet_root_logger: None
) -> None:
    # the package ships no type information
    from dspace_rest_client.client import DSpaceClient
    from dspace_rest_client.models import Item

    emulator, server, tree = env
    client = DSpaceClient(
        api_endpoint=server.url + API,
        username=ADMIN[0],
        password=ADMIN[1],
        solr_endpoint="http://127.0.0.1:9/solr",
    )
    assert client.authenticate() is True

    top = client.get_communities(top=True)
    assert [c.uuid for c in top] == [tree.community]
    collections = list(client.get_collections_iter(community=top[0]))
    assert [c.uuid for c in collections] == [tree.collection]

    community = client.create_community(
        None,
        {"name": "Client community", "metadata": {"dc.title": [{"value": "Client community"}]}},
    )
    collection = client.create_collection(
        community.uuid,
        {"name": "Client coll", "metadata": {"dc.title": [{"value": "Client coll"}]}},
    )
    assert emulator.object_type(collection.uuid) == "collection"
    item = client.create_item(
        collection.uuid,
        Item(
            {
                "type": "item",
                "inArchive": True,
                "discoverable": True,
                "metadata": {"dc.title": [{"value": "Client item"}]},
            }
        ),
    )
    assert item.uuid and emulator.name_of(item.uuid) == "Client item"
    bundle = client.create_bundle(item, "ORIGINAL")
    assert bundle.uuid and emulator.bundle_names(item.uuid) == ["ORIGINAL"]
    source = tmp_path / "upload.txt"
    source.write_bytes(b"uploaded by dspace-rest-client\n")
    bitstream = client.create_bitstream(bundle, "upload.txt", str(source), "text/plain")
    assert bitstream is not None and bitstream.sizeBytes == source.stat().st_size
    assert emulator.content(bitstream.uuid) == source.read_bytes()

    downloaded = client.download_bitstream(bitstream.uuid)
    assert downloaded is not None and downloaded.content == source.read_bytes()
    found = client.search_objects(scope=collection.uuid, dso_type="item")
    assert [d.uuid for d in found] == [item.uuid]
    items = list(client.search_objects_iter(scope=tree.collection, dso_type="item"))
    assert [d.uuid for d in items] == [tree.item]
    resolved = client.resolve_identifier_to_dso(emulator_handle(client, item.uuid))
    assert resolved is not None and resolved.uuid == item.uuid
    bundles = client.get_bundles(parent=item)
    assert [b.name for b in bundles] == ["ORIGINAL"]
    streams = client.get_bitstreams(bundle=bundles[0])
    assert [b.name for b in streams] == ["upload.txt"]
    client.session.close()


def emulator_handle(client: Any, uuid: str) -> str:
    response = client.get_item(uuid)
    return str(response.json()["handle"])


# ---- mapped items: unmap and owner change (MappedCollectionRestController,
# ItemOwningCollectionUpdateRestController) ------------------------------------------------


def test_43_unmapping_and_moving_a_mapped_item(env: Env, admin: Api) -> None:
    emulator, server, tree = env
    other = emulator.add_collection("Reading list", tree.community)
    third = emulator.add_collection("Shelf", tree.community)
    emulator.map_item(tree.item, other)
    base = f"{server.url}{API}"
    # the owning collection cannot be unmapped
    owning = admin.send("DELETE", f"/core/items/{tree.item}/mappedCollections/{tree.collection}")
    assert owning.status_code == 422
    assert error_of(owning)["message"] == "Collection given same as owningCollection of item."
    # a collection the item is not in: silently nothing (204), so a repeat is harmless
    assert (
        admin.send("DELETE", f"/core/items/{tree.item}/mappedCollections/{third}").status_code
        == 204
    )
    unknown = admin.send("DELETE", f"/core/items/{tree.item}/mappedCollections/{tree.bundle}")
    assert unknown.status_code == 422
    # unmapping keeps the item, its files and its owner
    assert (
        admin.send("DELETE", f"/core/items/{tree.item}/mappedCollections/{other}").status_code
        == 204
    )
    assert emulator.exists(tree.item) and emulator.items_in(tree.collection) == [tree.item]
    mapped = admin.http.get(f"/core/items/{tree.item}/mappedCollections").json()
    assert mapped["_embedded"]["mappedCollections"] == []
    # a new owner: the old one no longer holds it, a collection it was mapped into owns it
    emulator.map_item(tree.item, other)
    uri = {"Content-Type": "text/uri-list"}
    moved = admin.send(
        "PUT",
        f"/core/items/{tree.item}/owningCollection",
        content=f"{base}/core/collections/{other}\n",
        headers=uri,
    )
    assert moved.status_code == 200 and moved.json()["uuid"] == other
    assert emulator.items_in(tree.collection) == [] and emulator.items_in(other) == [tree.item]
    assert emulator.bitstreams(tree.item) == [(tree.bitstream, "hello.txt")]
    again = admin.send(
        "PUT",
        f"/core/items/{tree.item}/owningCollection",
        content=f"{base}/core/collections/{other}\n",
        headers=uri,
    )
    assert again.status_code == 400
    assert error_of(again)["message"] == "The provided collection is already the owning collection"


def test_43_moving_an_item_needs_admin_on_its_owning_collection(env: Env, api: Api) -> None:
    emulator, server, tree = env
    other = emulator.add_collection("Reading list", tree.community)
    emulator.map_item(tree.item, other)
    api.login(*USER)
    moved = api.send(
        "PUT",
        f"/core/items/{tree.item}/owningCollection",
        content=f"{server.url}{API}/core/collections/{other}\n",
        headers={"Content-Type": "text/uri-list"},
    )
    assert moved.status_code == 403
    unmapped = api.send("DELETE", f"/core/items/{tree.item}/mappedCollections/{other}")
    assert unmapped.status_code == 403
    assert emulator.items_in(tree.collection) == [tree.item]


def test_a_patch_is_all_or_nothing(admin: Api, env: Env) -> None:
    """DSpaceRestRepository.patch commits once, after the last operation
    (ResourcePatch.patch runs them in order): a failing operation keeps none of them."""
    emulator, _, tree = env
    before = admin.http.get(f"/core/items/{tree.item}").json()["metadata"]
    patched = admin.send(
        "PATCH",
        f"/core/items/{tree.item}",
        json=[
            {"op": "add", "path": "/metadata/dc.subject", "value": [{"value": "kept?"}]},
            {"op": "remove", "path": "/metadata/dc.no.such"},
        ],
    )
    assert patched.status_code == 422
    assert admin.http.get(f"/core/items/{tree.item}").json()["metadata"] == before
    assert "dc.subject" not in emulator.metadata_of(tree.item)


def test_45_primary_bitstream_of_a_bundle(env: Env, admin: Api) -> None:
    """PrimaryBitstreamController (7.6+) and BundlePrimaryBitstreamLinkRepository: POST sets
    (400 when set already), PUT replaces (400 when none), DELETE clears (400 when none), a
    bitstream of another bundle is a 422 (issue 21: ``contents``' ``primary:true``)."""
    emulator, _, tree = env
    path = f"/core/bundles/{tree.bundle}/primaryBitstream"
    uri = {"headers": {"Content-Type": "text/uri-list"}}

    def body(uuid: str) -> bytes:
        return f"{admin.base}{API}/core/bitstreams/{uuid}\n".encode()

    assert admin.send("PUT", path, content=body(tree.bitstream), **uri).status_code == 400
    assert admin.send("DELETE", path).status_code == 400
    made = admin.send("POST", path, content=body(tree.bitstream), **uri)
    assert made.status_code == 201 and made.json()["uuid"] == tree.bundle
    assert emulator.primary_of(tree.item) == tree.bitstream
    assert admin.send("POST", path, content=body(tree.bitstream), **uri).status_code == 400
    other = emulator.add_bitstream(tree.item, "other.txt", b"o")
    assert admin.send("PUT", path, content=body(other), **uri).status_code == 200
    assert emulator.primary_of(tree.item) == other
    emulator.add_bundle(tree.item, "EXTRA")
    elsewhere = emulator.add_bitstream(tree.item, "x.txt", b"x", bundle="EXTRA")
    assert admin.send("PUT", path, content=body(elsewhere), **uri).status_code == 422
    assert admin.send("DELETE", path).status_code == 204
    assert emulator.primary_of(tree.item) is None


# ---- 44: lookups by identifier (issue 20) ---------------------------------------------------


def test_44_pid_find_and_dso_find_redirect_to_the_object(env: Env, api: Api) -> None:
    """``IdentifierRestController`` and ``UUIDLookupRestController`` (docs/protocols/dspace7.md,
    "Finding objects by identifier"): 302 to the canonical URL, 404, 400, and READ on dso/find."""
    emulator, server, tree = env
    handle = emulator.handle_of(tree.item)
    canonical = f"{server.url}{API}/core/items/{tree.item}"
    found = api.http.get("/pid/find", params={"id": f"hdl:{handle}"})
    assert (found.status_code, found.headers["Location"]) == (302, canonical)
    assert api.http.get("/pid/find", params={"id": "hdl:123456789/999999"}).status_code == 404
    # a stock server has no DOI provider: no DOI is found until one is registered
    assert api.http.get("/pid/find", params={"id": "doi:10.5072/x"}).status_code == 404
    emulator.register_doi(tree.item, "10.5072/X")
    for doi in ("doi:10.5072/x", "https://doi.org/10.5072/X"):
        found = api.http.get("/pid/find", params={"id": doi})
        assert (found.status_code, found.headers["Location"]) == (302, canonical)
    for uuid, section in ((tree.item, "items"), (tree.bitstream, "bitstreams")):
        found = api.http.get("/dso/find", params={"uuid": uuid})
        assert found.status_code == 302
        assert found.headers["Location"] == f"{server.url}{API}/core/{section}/{uuid}"
    missing = "00000000-0000-4000-8000-000000000000"
    assert api.http.get("/dso/find", params={"uuid": missing}).status_code == 404
    assert api.http.get("/dso/find", params={"uuid": "not-a-uuid"}).status_code == 400
    emulator.restrict(tree.item, [])
    assert api.http.get("/dso/find", params={"uuid": tree.item}).status_code == 401
    # pid/find checks nothing: the redirected GET does
    assert api.http.get("/pid/find", params={"id": f"hdl:{handle}"}).status_code == 302
    api.login(*USER)
    assert api.http.get("/dso/find", params={"uuid": tree.item}).status_code == 403
