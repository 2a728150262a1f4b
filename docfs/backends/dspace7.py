"""DSpace 7 and later (7.6, 8.x, 9.x, 10.0): the Server REST API under ``/server/api``.

**URL.** The user gives the server's base URL, e.g. ``https://repository.example.org``; the
backend appends ``/server/api``. A URL that already ends in ``/server`` (the ``dspaceServer`` of
the root document) gets ``/api``, and one that ends in ``/api`` is used as it is.

**Mapping** (the same shape as DSpace 6; see ``shared/reference/dspace7.md`` section 15):

=====================  ==========================================================  ============
path                   object and listing call                                     mkdir inside
=====================  ==========================================================  ============
``/``                  top communities: ``core/communities/search/top``             community
``/Community``         sub-communities, then collections                            collection
``/…/Collection``      items via Discovery ``discover/search/objects?scope=``       item
``/…/Item``            ORIGINAL bitstreams, one ``embed=bundles/bitstreams`` call   (bundle)
``/…/Item/BUNDLE``     other bundles as directories, only with ``other_bundles``    —
=====================  ==========================================================  ============

Names are the objects' ``dc.title`` (duplicates are allowed: the vfs disambiguates). A file's
``size`` is ``sizeBytes``, its ``version`` the MD5 ``checkSum`` and its ``mtime`` the item's
``lastModified`` (DSpace has no per-bitstream date in JSON; the item's date changes whenever a
file is added or removed). Metadata fields appear in ``Entry.meta`` as ``dc.title`` etc.
(several values one per line) plus the read-only ``uuid``, ``handle``, ``checksum.md5`` (the
name DSpace 6 uses too; the content cache verifies downloads against it) and ``bundle``.

**Writes.** New files are multipart uploads into the item's ORIGINAL bundle (created when
missing). DSpace 7-9 cannot replace content: an overwrite uploads the new file under the same
name and metadata, deletes the old one and moves the new one to the old position in the bundle
(its uuid changes; when the upload's answer is lost, the bundle is searched for the new copy
before giving up, so the server never keeps both). On 10.0 ``PUT …/content`` is used where the
server enables it (it gives a new uuid too). Renames are ``dc.title`` patches; a move between
items is ``EXDEV``. A new item is made with the admin-only ``POST /core/items`` and, for
everybody else, through a workspace item that is deposited at once. A new archived item that
the search index does not list yet is kept visible from local knowledge for up to
``PENDING_GRACE`` (Discovery is index-based and lags behind); an item that goes into a
collection's review workflow is not listed until it is approved (a log line says so).

**Auth.** ``POST /authn/login`` with the CSRF token dance handled transparently (the token is
the ``DSPACE-XSRF-COOKIE`` cookie echoed in ``X-XSRF-TOKEN``; a CSRF 403 fetches a new one and
the request is repeated once), JWT refreshed before it expires, before long uploads and after a
401. Without credentials the mount is anonymous and read-only.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import logging
import os
import re
import tempfile
import time
import uuid as uuidlib
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterable, Mapping
from contextlib import aclosing, suppress
from datetime import date, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import httpx
import trio
from cachetools import LRUCache

from docfs import errors
from docfs.backends._http import HttpClient, Limits
from docfs.backends.base import Backend, Capabilities, Credentials, Entry, Kind, Op, Sink

log = logging.getLogger("docfs.dspace7")

JSON = dict[str, Any]

CSRF_HEADER = "DSPACE-XSRF-TOKEN"
CSRF_REQUEST_HEADER = "X-XSRF-TOKEN"
CSRF_COOKIE = "DSPACE-XSRF-COOKIE"
MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
#: page size for every listing: Discovery caps at 100 and maintainers advise no more elsewhere
PAGE_SIZE = 100
ORIGINAL = "ORIGINAL"
#: keys of Entry.meta that are not metadata fields and cannot be set
SYNTHETIC_META = frozenset({"uuid", "handle", "checksum.md5", "bundle", "entityType"})
METADATA_FIELD = re.compile(r"^[A-Za-z0-9]+\.[A-Za-z0-9_]+(\.[A-Za-z0-9_]+)?$")
#: a token with less than this share of its lifetime left is refreshed before an upload
UPLOAD_FRESHNESS = 0.5
#: how long a created item is shown although Discovery does not list it yet
PENDING_GRACE = 300.0

DIR_OPS = {
    "root": frozenset({Op.MKDIR}),
    "community": frozenset({Op.MKDIR, Op.REMOVE, Op.RENAME, Op.SET_META}),
    "collection": frozenset({Op.MKDIR, Op.REMOVE, Op.RENAME, Op.SET_META}),
    "item": frozenset({Op.CREATE_FILE, Op.REMOVE, Op.RENAME, Op.SET_META}),
    "bundle": frozenset({Op.CREATE_FILE, Op.REMOVE}),
    "bitstream": frozenset({Op.REPLACE, Op.REMOVE, Op.RENAME, Op.SET_META}),
}
API_SECTION = {
    "community": "core/communities",
    "collection": "core/collections",
    "item": "core/items",
    "bundle": "core/bundles",
    "bitstream": "core/bitstreams",
}


def api_prefix(base_url: str) -> str:
    """The path to append to the user's URL to reach ``/server/api`` (see module docstring)."""
    path = httpx.URL(base_url).path.rstrip("/")
    if path.endswith("/api"):
        return ""
    if path.endswith("/server"):
        return "/api"
    return "/server/api"


def jwt_expiry(token: str) -> float | None:
    """The ``exp`` claim of a JWT (seconds since the epoch), read without verifying it."""
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        return float(claims["exp"])
    except (IndexError, ValueError, KeyError, TypeError):
        return None


def parse_time(value: Any) -> float | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value).timestamp()
    except ValueError:
        return None


def flatten_meta(obj: Mapping[str, Any]) -> dict[str, str]:
    """DSpace metadata as xattr-friendly strings: one line per value."""
    meta: dict[str, str] = {}
    for key, values in (obj.get("metadata") or {}).items():
        if isinstance(values, list):
            texts = [str(v.get("value")) for v in values if isinstance(v, dict) and v.get("value")]
            if texts:
                meta[key] = "\n".join(texts)
    meta["uuid"] = str(obj.get("uuid"))
    if obj.get("handle"):
        meta["handle"] = str(obj["handle"])
    if obj.get("entityType"):
        meta["entityType"] = str(obj["entityType"])
    checksum = obj.get("checkSum") or {}
    if checksum.get("value"):
        meta["checksum.md5"] = str(checksum["value"])
    if obj.get("bundleName"):
        meta["bundle"] = str(obj["bundleName"])
    return meta


def _cookie(request: httpx.Request, name: str) -> str | None:
    for pair in request.headers.get("cookie", "").split(";"):
        key, _, value = pair.strip().partition("=")
        if key == name and value:
            return str(value)
    return None


class DSpace7Session:
    """Login state: JWT bearer token plus the CSRF token pair (``http.session`` protocol)."""

    def __init__(self, credentials: Credentials, prefix: str) -> None:
        self._user = credentials.user
        self._password = credentials.password
        self._given_token = credentials.token
        self._jwt: str | None = credentials.token
        self._expires: float | None = None
        self._lifetime: float | None = None
        if self._jwt:
            self._note_expiry(self._jwt)
        self._prefix = prefix
        #: the last token seen in a DSPACE-XSRF-TOKEN header; sent back both as that header
        #: and as the DSPACE-XSRF-COOKIE cookie (the http client keeps no cookie jar)
        self._csrf: str | None = None
        #: the last rejection was a CSRF 403: fetch a token, the login itself is fine
        self._csrf_only = False
        #: an upload wants a token with plenty of lifetime left
        self._want_fresh = False
        #: DSpace 8+ serves GET /security/csrf; None until known
        self.csrf_endpoint: bool | None = None

    @property
    def can_login(self) -> bool:
        return bool(self._user and self._password)

    @property
    def authenticated(self) -> bool:
        return self._jwt is not None or self.can_login

    # ---- Session protocol ------------------------------------------------------------------

    def apply(self, request: httpx.Request) -> None:
        if self._jwt:
            request.headers["Authorization"] = f"Bearer {self._jwt}"
        if request.method in MUTATING:
            cookie = _cookie(request, CSRF_COOKIE)
            token = cookie or self._csrf
            if token:
                request.headers[CSRF_REQUEST_HEADER] = token
                if cookie is None:
                    existing = request.headers.get("cookie")
                    pair = f"{CSRF_COOKIE}={token}"
                    request.headers["cookie"] = f"{existing}; {pair}" if existing else pair

    def needs_login(self) -> bool:
        if self._want_fresh or self._csrf_only:
            return True
        if self._jwt is None:
            return self.can_login
        return self._near_expiry()

    async def login(self, http: HttpClient) -> None:
        self._want_fresh = False
        if self._csrf_only:
            self._csrf_only = False
            await self.ensure_csrf(http)
            if not self._near_expiry():
                return
        if self._jwt is not None and not self._expired() and await self._refresh(http):
            return
        if self.can_login:
            await self._password_login(http)
            return
        self._jwt = None
        if self._given_token is not None:
            raise errors.PermissionDenied("DSpace login token expired; no password to renew it")

    def note_csrf(self, response: httpx.Response) -> None:
        """Keep the token a response hands out (the backend's response hook calls this for
        every answer, a refused login's included)."""
        token = response.headers.get(CSRF_HEADER)
        if token:
            self._csrf = str(token)

    def expired(self, response: httpx.Response) -> bool:
        token = response.headers.get(CSRF_HEADER)
        status = response.status_code
        if status == 401 and self.can_login:
            # the token was revoked or expired early: log in again with the password
            self._jwt = None
            return True
        if status == 403 and response.request.method in MUTATING and token:
            # DSpace answers a bad or missing CSRF token with 403 and a fresh token
            self._csrf_only = True
            return True
        return False

    def secrets(self) -> Iterable[str]:
        return [s for s in (self._password, self._jwt, self._given_token, self._csrf) if s]

    # ---- token handling --------------------------------------------------------------------

    def want_fresh_token(self) -> None:
        """Ask for a refresh at the next request if less than half the lifetime is left
        (a long upload must not outlive its token: DSpace#12351)."""
        if self._jwt is None or self._expires is None or self._lifetime is None:
            return
        if self._expires - time.time() < self._lifetime * UPLOAD_FRESHNESS:
            self._want_fresh = True

    def _note_expiry(self, token: str) -> None:
        self._expires = jwt_expiry(token)
        self._lifetime = None if self._expires is None else max(1.0, self._expires - time.time())

    def _margin(self) -> float:
        return 0.0 if self._lifetime is None else min(300.0, self._lifetime / 4)

    def _near_expiry(self) -> bool:
        return self._expires is not None and time.time() >= self._expires - self._margin()

    def _expired(self) -> bool:
        return self._expires is not None and time.time() >= self._expires

    def _take_token(self, response: httpx.Response) -> None:
        header = response.headers.get("Authorization", "")
        token = header.replace("Bearer ", "").strip()
        if not token:
            raise errors.ProtocolError("DSpace login answered without an Authorization header")
        self._jwt = token
        self._note_expiry(token)

    async def ensure_csrf(self, http: HttpClient, *, force: bool = False) -> None:
        """Make sure a CSRF token is at hand: 8+ has ``GET /security/csrf``; on 7.x any
        response of the server may carry one (else the 403 of the first POST brings it)."""
        if not force and self._csrf:
            return
        if self.csrf_endpoint is False:
            # 7.x: the root document (read by connect) hands one out unless the server only
            # does so in the 403 of the first POST, which _password_login handles
            return
        try:
            await http.request(
                "GET", f"{self._prefix}/security/csrf", endpoint="security/csrf", auth=False
            )
        except errors.NotFound:
            self.csrf_endpoint = False
        else:
            self.csrf_endpoint = True  # and the hook kept the token it answered

    def _csrf_headers(self) -> dict[str, str]:
        token = self._csrf
        if not token:
            return {}
        return {CSRF_REQUEST_HEADER: token, "Cookie": f"{CSRF_COOKIE}={token}"}

    async def _password_login(self, http: HttpClient) -> None:
        await self.ensure_csrf(http)
        assert self._user is not None and self._password is not None
        for attempt in range(2):
            try:
                response = await http.request(
                    "POST",
                    f"{self._prefix}/authn/login",
                    endpoint="authn/login",
                    data={"user": self._user, "password": self._password},
                    headers=self._csrf_headers(),
                    auth=False,
                    idempotent=True,
                    status_map={401: errors.AuthenticationFailed},
                )
            except errors.AuthenticationFailed as exc:
                # the user must see what to fix, not an HTTP status of an URL
                raise errors.AuthenticationFailed(
                    f"DSpace refused the login of {self._user}: wrong e-mail or password "
                    f"(HTTP {exc.status})",
                    status=exc.status,
                ) from None
            except errors.PermissionDenied as exc:
                # a 403 here is the CSRF check (7.x hands out the token in that 403)
                if exc.status == 403 and attempt == 0:
                    continue
                raise
            self._take_token(response)
            log.info("logged in to DSpace as %s", self._user)
            return

    async def _refresh(self, http: HttpClient) -> bool:
        """``POST /authn/login`` with only the Bearer header gives a new token."""
        await self.ensure_csrf(http)
        headers = self._csrf_headers()
        headers["Authorization"] = f"Bearer {self._jwt}"
        try:
            response = await http.request(
                "POST",
                f"{self._prefix}/authn/login",
                endpoint="authn/login",
                headers=headers,
                auth=False,
                idempotent=True,
            )
            self._take_token(response)
        except errors.DocfsError as exc:
            log.info("token refresh failed (%s); logging in again", type(exc).__name__)
            return False
        log.debug("DSpace login token refreshed")
        return True


async def probe(http: HttpClient) -> str | None:
    """The ``dspaceVersion`` if the URL serves a DSpace 7+ REST API, else None."""
    try:
        response = await http.request(
            "GET", f"{api_prefix(http.base_url)}/", endpoint="root", auth=False
        )
        data = response.json()
    except (errors.DocfsError, ValueError):
        return None
    if isinstance(data, dict) and data.get("type") == "root":
        return str(data.get("dspaceVersion") or "DSpace 7+")
    return None


class DSpace7Backend(Backend):
    """DSpace 7+ Server REST API; see the module docstring for the mapping."""

    name = "dspace7"
    capabilities = Capabilities(
        ops=frozenset(Op),
        ranges=True,
        # only a move between bundles of one item exists; everything else is EXDEV
        move=False,
        meta_namespace="dspace",
        duplicate_names=True,
    )
    # DSpace documents no request rate limit; its Solr-backed search is the bottleneck, so a
    # modest concurrency is kinder to shared servers. Uploads can be large: a longer timeout.
    default_limits = Limits(requests_per_second=None, burst=10, concurrency=4, timeout=120.0)

    def __init__(
        self,
        http: HttpClient,
        credentials: Credentials,
        *,
        other_bundles: bool = False,
        pending_grace: float = PENDING_GRACE,
    ) -> None:
        super().__init__(http, credentials)
        self.api = api_prefix(http.base_url)
        self.other_bundles = other_bundles
        self.pending_grace = pending_grace
        self.session = DSpace7Session(credentials, self.api)
        http.session = self.session
        # any answer may hand out a new CSRF token (a refused login's 403 does, and the login
        # is sent without the session): keep it from every response, as a cookie jar would
        http.client.event_hooks["response"].append(self._note_csrf)
        self.version: str | None = None
        self.major = 7
        #: learnt on first use: may this user call the admin-only POST /core/items?
        self._admin: bool | None = None
        #: learnt on first use (10.0 only): does PUT …/content exist?
        self._replace: bool | None = None
        # ORIGINAL bundle uuid per item uuid, learnt from listings: saves one request per
        # created file (cp -r into an item); a stale hint costs a 404 and one lookup
        self._bundle_hint: LRUCache[str, str] = LRUCache(maxsize=4096)
        #: collection uuid → item uuid → (created at, entry): created, not yet indexed
        self._pending: dict[str, dict[str, tuple[float, Entry]]] = {}

    # ---- plumbing --------------------------------------------------------------------------

    async def _note_csrf(self, response: httpx.Response) -> None:
        self.session.note_csrf(response)

    async def _json(
        self,
        method: str,
        path: str,
        *,
        endpoint: str,
        params: Any = None,
        status_map: Mapping[int, type[errors.DocfsError]] | None = None,
        **kwargs: Any,
    ) -> JSON:
        response = await self.http.request(
            method,
            f"{self.api}/{path}",
            endpoint=endpoint,
            params=params,
            status_map=status_map,
            **kwargs,
        )
        return self._decode(response)

    @staticmethod
    def _decode(response: httpx.Response) -> JSON:
        if not response.content:
            return {}
        try:
            data = response.json()
        except ValueError:
            raise errors.ProtocolError(f"{response.url.path}: answer is not JSON") from None
        if not isinstance(data, dict):
            raise errors.ProtocolError(f"{response.url.path}: unexpected JSON")
        return data

    async def _pages(
        self,
        path: str,
        rel: str,
        *,
        endpoint: str,
        params: Mapping[str, str] | None = None,
        nested: Callable[[JSON], JSON] | None = None,
        first_page: int = 0,
    ) -> AsyncGenerator[JSON, None]:
        """Follow a paged list (by page number: absolute ``next`` hrefs may name a host
        the server believes it has, behind a proxy, rather than the one we reach)."""
        page = first_page
        while True:
            query = {**(params or {}), "page": str(page), "size": str(PAGE_SIZE)}
            data = await self._json("GET", path, endpoint=endpoint, params=query)
            body = nested(data) if nested is not None else data
            objs = (body.get("_embedded") or {}).get(rel) or []
            for obj in objs:
                yield obj
            info = body.get("page")
            if isinstance(info, dict):
                number = int(info.get("number", page))
                if number + 1 >= int(info.get("totalPages", 0)):
                    return
                page = number + 1
            elif len(objs) < PAGE_SIZE:
                return
            else:
                page += 1

    def _ops(self, kind: str) -> frozenset[Op]:
        if not self.session.authenticated:
            return frozenset()  # anonymous mounts are read-only
        ops = DIR_OPS[kind]
        if kind == "item" and self.other_bundles:
            ops = ops | {Op.MKDIR}
        return ops

    @staticmethod
    def _uuid(entry: Entry) -> str:
        return entry.extra["uuid"]

    @staticmethod
    def _type(entry: Entry) -> str:
        return entry.extra.get("type", "")

    # ---- entries ---------------------------------------------------------------------------

    def _dir(self, obj: JSON, kind: str, parent: str, **extra: str) -> Entry:
        uuid = str(obj["uuid"])
        mtime = parse_time(obj.get("lastModified"))
        return Entry(
            id=f"{kind}:{uuid}",
            name=str(obj.get("name") or uuid),
            kind=Kind.DIR,
            size=None,
            mtime=mtime,
            version=str(obj.get("lastModified") or ""),
            meta=flatten_meta(obj),
            ops=self._ops(kind),
            extra={"type": kind, "uuid": uuid, "parent": parent, **extra},
        )

    def _file(
        self, obj: JSON, *, item: str, bundle: str, bundle_name: str, mtime: float | None
    ) -> Entry:
        uuid = str(obj["uuid"])
        checksum = (obj.get("checkSum") or {}).get("value")
        return Entry(
            id=f"bitstream:{uuid}",
            name=str(obj.get("name") or uuid),
            kind=Kind.FILE,
            size=int(obj.get("sizeBytes") or 0),
            mtime=mtime,
            version=str(checksum or uuid),
            meta=flatten_meta(obj),
            ops=self._ops("bitstream"),
            inherited_mtime=True,  # the item's date: bitstreams have none
            extra={
                "type": "bitstream",
                "uuid": uuid,
                "parent": bundle if bundle_name != ORIGINAL else item,
                "item": item,
                "bundle": bundle,
                "bundle_name": bundle_name,
            },
        )

    # ---- Backend: reading ------------------------------------------------------------------

    async def connect(self) -> None:
        response = await self.http.request("GET", f"{self.api}/", endpoint="root", auth=False)
        root = self._decode(response)
        if root.get("type") != "root" or "dspaceVersion" not in root:
            raise errors.ProtocolError(f"{self.http.base_url} does not serve a DSpace 7+ API")
        self.version = str(root["dspaceVersion"])
        found = re.search(r"(\d+)\.\d+", self.version)
        self.major = int(found.group(1)) if found else 7
        self.session.csrf_endpoint = self.major >= 8
        if self.session.authenticated:
            await self.http.ensure_session()

    async def root(self) -> Entry:
        return Entry(
            id="root",
            name="",
            kind=Kind.DIR,
            size=None,
            mtime=None,
            version="",
            ops=self._ops("root"),
            extra={"type": "root", "uuid": ""},
        )

    async def list_dir(self, directory: Entry) -> AsyncIterator[Entry]:
        kind = self._type(directory)
        if kind == "root":
            source = self._pages(
                "core/communities/search/top", "communities", endpoint="communities/top"
            )
            async for obj in source:
                yield self._dir(obj, "community", "")
        elif kind == "community":
            uuid = self._uuid(directory)
            for rel in ("subcommunities", "collections"):
                async for obj in self._pages(
                    f"core/communities/{uuid}/{rel}", rel, endpoint=f"communities/{rel}"
                ):
                    yield self._dir(
                        obj, "community" if rel == "subcommunities" else "collection", uuid
                    )
        elif kind == "collection":
            async for entry in self._list_items(directory):
                yield entry
        elif kind == "item":
            for entry in await self._list_item(directory):
                yield entry
        elif kind == "bundle":
            async for entry in self._list_bundle(directory):
                yield entry
        else:
            raise errors.InvalidArgument(f"{directory.name}: not a directory")

    async def _list_items(self, collection: Entry) -> AsyncIterator[Entry]:
        uuid = self._uuid(collection)
        seen: set[str] = set()
        source = self._pages(
            "discover/search/objects",
            "objects",
            endpoint="discover/search",
            params={"scope": uuid, "dsoType": "ITEM"},
            nested=lambda data: (data.get("_embedded") or {}).get("searchResult") or {},
        )
        async for result in source:
            obj = (result.get("_embedded") or {}).get("indexableObject")
            # inserts while paging shift results between pages: never show one twice
            if not isinstance(obj, dict) or obj.get("uuid") in seen:
                continue
            seen.add(str(obj["uuid"]))
            yield self._dir(obj, "item", uuid)
        for entry in await self._pending_items(uuid, seen):
            yield entry

    async def _pending_items(self, collection: str, seen: set[str]) -> list[Entry]:
        """Items we created that the search index does not show yet (reference section 8)."""
        pending = self._pending.get(collection, {})
        shown: list[Entry] = []
        for item_uuid, (created, entry) in list(pending.items()):
            if item_uuid in seen or time.monotonic() - created > self.pending_grace:
                del pending[item_uuid]
                continue
            try:
                shown.append(await self.stat(entry))
            except (errors.NotFound, errors.PermissionDenied):
                del pending[item_uuid]
        if not pending:
            self._pending.pop(collection, None)
        return shown

    def _item_params(self) -> list[tuple[str, str]]:
        size = str(PAGE_SIZE)
        # both spellings of the nested size: 7.x reads the bare relation name, 8+ the path
        return [
            ("embed", "bundles/bitstreams"),
            ("embed.size", f"bundles={size}"),
            ("embed.size", f"bitstreams={size}"),
            ("embed.size", f"bundles/bitstreams={size}"),
        ]

    async def _list_item(self, item: Entry) -> list[Entry]:
        """One request for the item's whole file tree; very large bundles page further."""
        uuid = self._uuid(item)
        data = await self._json(
            "GET", f"core/items/{uuid}", endpoint="items", params=self._item_params()
        )
        mtime = parse_time(data.get("lastModified"))
        bundles = ((data.get("_embedded") or {}).get("bundles") or {}).get("_embedded") or {}
        entries: list[Entry] = []
        for bundle in bundles.get("bundles") or []:
            name = str(bundle.get("name") or "")
            bundle_uuid = str(bundle["uuid"])
            if name == ORIGINAL:
                self._bundle_hint[uuid] = bundle_uuid
                async for obj in self._bundle_files(bundle):
                    entries.append(
                        self._file(
                            obj, item=uuid, bundle=bundle_uuid, bundle_name=name, mtime=mtime
                        )
                    )
            elif self.other_bundles:
                bundle_dir = self._dir(bundle, "bundle", uuid, item=uuid)
                entries.append(dataclasses.replace(bundle_dir, mtime=mtime))
        return entries

    async def _bundle_files(self, bundle: JSON) -> AsyncIterator[JSON]:
        embedded = (bundle.get("_embedded") or {}).get("bitstreams") or {}
        objs = (embedded.get("_embedded") or {}).get("bitstreams") or []
        for obj in objs:
            yield obj
        info = embedded.get("page") or {}
        if int(info.get("totalElements", len(objs))) <= len(objs):
            return
        # DSpace#8648: items with many files. Continue after the embedded first page; a
        # server that ignored embed.size sent a shorter page: list again and skip what we had
        resume = len(objs) == PAGE_SIZE
        skip = 0 if resume else len(objs)
        async for obj in self._pages(
            f"core/bundles/{bundle['uuid']}/bitstreams",
            "bitstreams",
            endpoint="bundles/bitstreams",
            first_page=1 if resume else 0,
        ):
            if skip:
                skip -= 1
                continue
            yield obj

    async def _list_bundle(self, bundle: Entry) -> AsyncIterator[Entry]:
        item = bundle.extra["item"]
        async for obj in self._pages(
            f"core/bundles/{self._uuid(bundle)}/bitstreams",
            "bitstreams",
            endpoint="bundles/bitstreams",
        ):
            yield self._file(
                obj,
                item=item,
                bundle=self._uuid(bundle),
                bundle_name=bundle.name,
                mtime=bundle.mtime,
            )

    async def stat(self, entry: Entry) -> Entry:
        kind = self._type(entry)
        if kind == "root":
            return await self.root()
        uuid = self._uuid(entry)
        if kind == "bitstream":
            obj = await self._json(
                "GET",
                f"core/bitstreams/{uuid}",
                endpoint="bitstreams",
                params={"embed": "bundle/item"},
            )
            bundle = (obj.get("_embedded") or {}).get("bundle") or {}
            item = (bundle.get("_embedded") or {}).get("item") or {}
            return self._file(
                obj,
                item=str(item.get("uuid") or entry.extra.get("item", "")),
                bundle=str(bundle.get("uuid") or entry.extra.get("bundle", "")),
                bundle_name=str(bundle.get("name") or entry.extra.get("bundle_name", "")),
                mtime=parse_time(item.get("lastModified")),
            )
        obj = await self._json("GET", f"{API_SECTION[kind]}/{uuid}", endpoint=kind + "s")
        fresh = self._dir(obj, kind, entry.extra.get("parent", ""), **_extra_of(entry))
        if kind == "bundle":
            fresh = dataclasses.replace(fresh, mtime=entry.mtime)
        return fresh

    async def download(
        self, entry: Entry, sink: Sink, start: int = 0, end: int | None = None
    ) -> None:
        if end is not None and end <= start:
            return
        await self.http.download(
            f"{self.api}/core/bitstreams/{self._uuid(entry)}/content",
            sink,
            endpoint="content",
            start=start,
            end=end,
            ranges=self.capabilities.ranges,
        )

    # ---- Backend: writing ------------------------------------------------------------------

    async def create_file(self, parent: Entry, name: str, src: Path) -> Entry:
        kind = self._type(parent)
        if kind == "bundle":
            item, bundle, bundle_name = parent.extra["item"], self._uuid(parent), parent.name
        elif kind == "item":
            item, bundle_name = self._uuid(parent), ORIGINAL
            bundle = await self._original_bundle(item)
        else:
            raise errors.NotSupported(f"{parent.name}: files live in items only")
        try:
            response = await self._upload(f"core/bundles/{bundle}/bitstreams", src, name, None)
        except errors.NotFound:
            if kind != "item":
                raise
            # the bundle hint was stale (someone removed the bundle): look it up once more
            self._bundle_hint.pop(item, None)
            bundle = await self._original_bundle(item)
            response = await self._upload(f"core/bundles/{bundle}/bitstreams", src, name, None)
        return self._file(
            self._decode(response),
            item=item,
            bundle=bundle,
            bundle_name=bundle_name,
            mtime=_server_time(response),
        )

    async def _original_bundle(self, item: str) -> str:
        """The uuid of the item's ORIGINAL bundle, created when missing."""
        hint = self._bundle_hint.get(item)
        if hint is not None:
            return hint
        for _ in range(2):
            listing = self._pages(f"core/items/{item}/bundles", "bundles", endpoint="items/bundles")
            async with aclosing(listing):
                async for bundle in listing:
                    if bundle.get("name") == ORIGINAL:
                        self._bundle_hint[item] = str(bundle["uuid"])
                        return str(bundle["uuid"])
            try:
                created = await self._json(
                    "POST",
                    f"core/items/{item}/bundles",
                    endpoint="items/bundles",
                    json={"name": ORIGINAL, "metadata": {}},
                    idempotent=False,
                    status_map={400: errors.AlreadyExists},
                )
            except errors.AlreadyExists:
                continue  # created meanwhile (or our lost answer): list again
            self._bundle_hint[item] = str(created["uuid"])
            return str(created["uuid"])
        raise errors.ProtocolError(f"item {item}: cannot find or create its ORIGINAL bundle")

    async def _upload(
        self,
        path: str,
        src: Path,
        name: str | None,
        properties: JSON | None,
        *,
        method: str = "POST",
        params: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        """One multipart request (``file`` + ``properties``), never retried blindly."""
        self.session.want_fresh_token()
        props = dict(properties or {})
        if name is not None:
            props["name"] = name
        body, content_type = await _multipart_file(src, name or src.name, props or None)
        try:
            return await self.http.request(
                method,
                f"{self.api}/{path}",
                endpoint="upload",
                params=params,
                body=body,
                headers={"Content-Type": content_type},
                idempotent=False,
                status_map={404: errors.NotFound, 422: errors.InvalidArgument},
            )
        finally:
            await trio.to_thread.run_sync(_unlink, body)

    async def replace_file(self, entry: Entry, src: Path) -> Entry:
        uuid = self._uuid(entry)
        item, bundle = entry.extra["item"], entry.extra["bundle"]
        bundle_name = entry.extra.get("bundle_name", ORIGINAL)
        if self.major >= 10 and self._replace is not False:
            try:
                response = await self._upload(
                    f"core/bitstreams/{uuid}/content",
                    src,
                    None,
                    None,
                    method="PUT",
                    params={"replaceName": "false"},
                )
            except errors.NotSupported:
                self._replace = False  # replace-bitstream.enabled is off on this server
            else:
                self._replace = True
                return self._file(
                    self._decode(response),
                    item=item,
                    bundle=bundle,
                    bundle_name=bundle_name,
                    mtime=_server_time(response),
                )
        return await self._upload_and_swap(entry, src)

    async def _upload_and_swap(self, entry: Entry, src: Path) -> Entry:
        """7-9: upload the new content beside the old, delete the old, restore the order."""
        uuid = self._uuid(entry)
        item, bundle = entry.extra["item"], entry.extra["bundle"]
        order = [
            obj
            async for obj in self._pages(
                f"core/bundles/{bundle}/bitstreams", "bitstreams", endpoint="bundles/bitstreams"
            )
        ]
        position = next((i for i, o in enumerate(order) if o.get("uuid") == uuid), None)
        if position is None:
            raise errors.NotFound(f"{entry.name}: gone from the server")
        old = order[position]
        metadata = {k: v for k, v in (old.get("metadata") or {}).items() if k != "dc.title"}
        name = str(old.get("name") or entry.name)
        try:
            response = await self._upload(
                f"core/bundles/{bundle}/bitstreams", src, name, {"metadata": metadata}
            )
        except errors.RemoteUnavailable:
            # the answer was lost, perhaps not the upload: look before failing, so that the
            # server does not keep the new copy beside the old one under the same name
            known = {str(o.get("uuid")) for o in order}
            arrived = await self._arrived(bundle, name, src, known)
            if arrived is None:
                raise
            log.info("the upload of %s had arrived; its answer was lost", name)
            new, stamp = arrived, time.time()
        else:
            new, stamp = self._decode(response), _server_time(response)
        try:
            await self._delete(f"core/bitstreams/{uuid}", "bitstreams")
        except errors.DocfsError:
            # keep the server as it was rather than leave two copies behind
            await self._delete(f"core/bitstreams/{new['uuid']}", "bitstreams")
            raise
        last = len(order) - 1  # the new one is last once the old one is gone
        if position != last:
            await self._json(
                "PATCH",
                f"core/bundles/{bundle}",
                endpoint="bundles",
                json=[
                    {
                        "op": "move",
                        "from": f"/_links/bitstreams/{last}/href",
                        "path": f"/_links/bitstreams/{position}/href",
                    }
                ],
            )
        return self._file(
            new,
            item=item,
            bundle=bundle,
            bundle_name=entry.extra.get("bundle_name", ORIGINAL),
            mtime=stamp,
        )

    async def _arrived(self, bundle: str, name: str, src: Path, known: set[str]) -> JSON | None:
        """A bitstream of ``bundle`` named ``name`` with ``src``'s bytes that is not one of
        ``known``: an upload whose answer was lost."""
        md5 = await trio.to_thread.run_sync(_md5_of, src)
        listing = self._pages(
            f"core/bundles/{bundle}/bitstreams", "bitstreams", endpoint="bundles/bitstreams"
        )
        async with aclosing(listing):
            async for obj in listing:
                checksum = (obj.get("checkSum") or {}).get("value")
                if obj.get("uuid") not in known and obj.get("name") == name and checksum == md5:
                    return obj
        return None

    async def _delete(self, path: str, endpoint: str) -> None:
        try:
            await self.http.request(
                "DELETE",
                f"{self.api}/{path}",
                endpoint=endpoint,
                status_map={422: errors.NotSupported},
            )
        except errors.NotFound:
            # the desired state holds; a DELETE retried after a lost answer lands here too
            log.info("%s was already gone", path)

    async def mkdir(self, parent: Entry, name: str) -> Entry:
        kind = self._type(parent)
        metadata = {"dc.title": [{"value": name}]}
        if kind == "root":
            obj = await self._json(
                "POST",
                "core/communities",
                endpoint="communities",
                json={"name": name, "metadata": metadata},
                status_map={422: errors.NotFound},
            )
            return self._dir(obj, "community", "")
        if kind == "community":
            obj = await self._json(
                "POST",
                "core/collections",
                endpoint="collections",
                params={"parent": self._uuid(parent)},
                json={"name": name, "metadata": metadata},
                status_map={422: errors.NotFound},
            )
            return self._dir(obj, "collection", self._uuid(parent))
        if kind == "collection":
            return await self._create_item(self._uuid(parent), name)
        if kind == "item" and self.other_bundles:
            obj = await self._json(
                "POST",
                f"core/items/{self._uuid(parent)}/bundles",
                endpoint="items/bundles",
                json={"name": name, "metadata": {}},
                status_map={400: errors.AlreadyExists},
            )
            entry = self._dir(obj, "bundle", self._uuid(parent), item=self._uuid(parent))
            return dataclasses.replace(entry, mtime=parent.mtime)
        raise errors.NotSupported(f"{parent.name}: no directories can be made here")

    async def _create_item(self, collection: str, name: str) -> Entry:
        """Admins create archived items directly; others go through a workspace item."""
        metadata = {
            "dc.title": [{"value": name}],
            # the default submission form also requires an issue date
            "dc.date.issued": [{"value": date.today().isoformat()}],
        }
        obj: JSON | None = None
        if self._admin is not False:
            try:
                obj = await self._json(
                    "POST",
                    "core/items",
                    endpoint="items",
                    params={"owningCollection": collection},
                    json={
                        "name": name,
                        "metadata": metadata,
                        "inArchive": True,
                        "discoverable": True,
                        "withdrawn": False,
                        "type": "item",
                    },
                    idempotent=False,
                    status_map={400: errors.NotFound},
                )
                self._admin = True
            except errors.PermissionDenied as exc:
                if exc.status != 403:
                    raise
                self._admin = False
        if obj is None:
            obj = await self._submit_item(collection, metadata)
        entry = self._dir(obj, "item", collection)
        if obj.get("inArchive"):
            self._pending.setdefault(collection, {})[entry.extra["uuid"]] = (
                time.monotonic(),
                entry,
            )
        return entry

    async def _submit_item(self, collection: str, metadata: JSON) -> JSON:
        """Workspace item → metadata and license → deposit (reference section 9)."""
        workspace = await self._json(
            "POST",
            "submission/workspaceitems",
            endpoint="submission",
            params={"owningCollection": collection, "embed": "item"},
            idempotent=False,
            status_map={422: errors.NotFound},
        )
        ws_id = workspace.get("id")
        url = ((workspace.get("_links") or {}).get("self") or {}).get("href")
        if ws_id is None or not url:
            raise errors.ProtocolError("workspace item without id or self link")
        ops = [
            {"op": "add", "path": f"/sections/traditionalpageone/{key}", "value": values}
            for key, values in metadata.items()
        ]
        ops.append({"op": "add", "path": "/sections/license/granted", "value": True})
        try:
            await self._json(
                "PATCH", f"submission/workspaceitems/{ws_id}", endpoint="submission", json=ops
            )
            deposit = await self.http.request(
                "POST",
                f"{self.api}/workflow/workflowitems",
                endpoint="workflow",
                body=f"{url}\n".encode(),
                headers={"Content-Type": "text/uri-list"},
                idempotent=False,
                status_map={422: errors.InvalidArgument},
            )
        except errors.DocfsError:
            # do not leave a half-made submission in the user's workspace
            with suppress(errors.DocfsError):
                await self._delete(f"submission/workspaceitems/{ws_id}", "submission")
            raise
        item = (workspace.get("_embedded") or {}).get("item")
        item_uuid = (item or {}).get("uuid")
        if not item_uuid:
            item_link = ((workspace.get("_links") or {}).get("item") or {}).get("href")
            if not item_link:
                raise errors.ProtocolError("workspace item without its item")
            item = self._decode(await self.http.request("GET", item_link, endpoint="items"))
            item_uuid = item.get("uuid")
        if deposit.content:
            # non-empty answer: a workflow item; the item waits for review, invisible
            log.info("new item %s waits in the collection's review workflow", name_of(item))
        return await self._json("GET", f"core/items/{item_uuid}", endpoint="items")

    async def remove(self, entry: Entry) -> None:
        kind = self._type(entry)
        uuid = self._uuid(entry)
        if kind in ("community", "collection", "item", "bundle"):
            await self._check_empty(entry)
        if kind == "item":
            self._pending.get(entry.extra.get("parent", ""), {}).pop(uuid, None)
            self._bundle_hint.pop(uuid, None)
        if kind not in API_SECTION:
            raise errors.NotSupported(f"{entry.name}: cannot be removed")
        await self._delete(f"{API_SECTION[kind]}/{uuid}", kind + "s")

    async def _check_empty(self, entry: Entry) -> None:
        """DSpace deletes recursively; rmdir must not: check with the cheapest listing."""
        listing = self.list_dir(entry)
        assert isinstance(listing, AsyncGenerator)
        async with aclosing(listing):
            async for _ in listing:
                raise errors.NotEmpty(f"{entry.name}: not empty")

    async def rename(self, entry: Entry, new_parent: Entry, new_name: str) -> Entry:
        kind = self._type(entry)
        if kind not in API_SECTION or kind == "bundle":
            raise errors.NotSupported(f"{entry.name}: cannot be renamed")
        same_parent = new_parent.extra.get("uuid", "") == entry.extra.get("parent", "")
        if not same_parent:
            entry = await self._move_between_bundles(entry, new_parent)
        if new_name != entry.name:
            entry = await self._set_title(entry, new_name)
        return entry

    async def _move_between_bundles(self, entry: Entry, target: Entry) -> Entry:
        """The one move DSpace has: a bitstream into another bundle of the same item."""
        item = entry.extra.get("item")
        if self._type(entry) != "bitstream" or not item:
            raise errors.CrossDevice(f"{entry.name}: DSpace cannot move this")
        target_kind = self._type(target)
        if target_kind == "item" and self._uuid(target) == item:
            bundle, bundle_name = await self._original_bundle(item), ORIGINAL
        elif target_kind == "bundle" and target.extra.get("item") == item:
            bundle, bundle_name = self._uuid(target), target.name
        else:
            raise errors.CrossDevice(f"{entry.name}: DSpace moves files only within an item")
        await self.http.request(
            "PUT",
            f"{self.api}/core/bitstreams/{self._uuid(entry)}/bundle",
            endpoint="bitstreams/bundle",
            body=f"{self.http.base_url}{self.api}/core/bundles/{bundle}\n".encode(),
            headers={"Content-Type": "text/uri-list"},
        )
        extra = {
            **entry.extra,
            "bundle": bundle,
            "bundle_name": bundle_name,
            "parent": item if bundle_name == ORIGINAL else bundle,
        }
        return dataclasses.replace(entry, extra=extra)

    async def _set_title(self, entry: Entry, title: str) -> Entry:
        op: JSON
        if "dc.title" in entry.meta:
            op = {"op": "replace", "path": "/metadata/dc.title/0/value", "value": title}
        else:
            op = {"op": "add", "path": "/metadata/dc.title", "value": [{"value": title}]}
        return await self._patch(entry, [op])

    async def set_meta(self, entry: Entry, key: str, value: str | None) -> Entry:
        if key in SYNTHETIC_META:
            raise errors.NotSupported(f"{key} is read-only")
        if not METADATA_FIELD.match(key):
            raise errors.InvalidArgument(
                f"{key}: not a metadata field (schema.element[.qualifier])"
            )
        if self._type(entry) not in API_SECTION:
            raise errors.NotSupported(f"{entry.name}: has no metadata")
        if value is None:
            if key not in entry.meta:
                raise errors.NoAttribute(key)
            op: JSON = {"op": "remove", "path": f"/metadata/{key}"}
        else:
            values = [{"value": line} for line in value.split("\n")]
            kind = "replace" if key in entry.meta else "add"
            op = {"op": kind, "path": f"/metadata/{key}", "value": values}
        return await self._patch(entry, [op])

    async def _patch(self, entry: Entry, ops: list[JSON]) -> Entry:
        kind = self._type(entry)
        obj = await self._json(
            "PATCH",
            f"{API_SECTION[kind]}/{self._uuid(entry)}",
            endpoint=kind + "s",
            json=ops,
            status_map={422: errors.InvalidArgument},
        )
        name = str(obj.get("name") or self._uuid(entry))
        version = entry.version if kind == "bitstream" else str(obj.get("lastModified") or "")
        mtime = (
            entry.mtime if kind in ("bitstream", "bundle") else parse_time(obj.get("lastModified"))
        )
        return dataclasses.replace(
            entry, name=name, meta=flatten_meta(obj), version=version, mtime=mtime
        )


def _extra_of(entry: Entry) -> dict[str, str]:
    return {k: v for k, v in entry.extra.items() if k not in ("type", "uuid", "parent")}


def name_of(obj: JSON | None) -> str:
    return str((obj or {}).get("name") or (obj or {}).get("uuid") or "?")


def _server_time(response: httpx.Response) -> float:
    """The server's clock at the answer: the item's lastModified moved to about then."""
    stamp = response.headers.get("Date")
    if stamp:
        try:
            return parsedate_to_datetime(stamp).timestamp()
        except (TypeError, ValueError):
            pass
    return time.time()


def _md5_of(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _unlink(path: Path) -> None:
    with suppress(FileNotFoundError):
        path.unlink()


async def _multipart_file(src: Path, filename: str, properties: JSON | None) -> tuple[Path, str]:
    """Write the multipart body to a temporary file beside ``src`` (HttpClient streams a
    ``Path`` from disk, so a large upload never sits in memory)."""
    boundary = uuidlib.uuid4().hex

    def write() -> Path:
        quoted = (
            filename.replace("\\", "\\\\").replace('"', "%22").replace("\r", "").replace("\n", "")
        )
        head = (
            f"--{boundary}\r\n"
            f'Content-Disposition: form-data; name="file"; filename="{quoted}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        tail = b"\r\n"
        if properties is not None:
            tail += (
                f"--{boundary}\r\n"
                'Content-Disposition: form-data; name="properties"\r\n'
                "Content-Type: application/json\r\n\r\n"
                f"{json.dumps(properties)}\r\n"
            ).encode()
        tail += f"--{boundary}--\r\n".encode()
        try:
            fd, name = tempfile.mkstemp(prefix=".docfs-upload-", dir=src.parent)
        except OSError:
            fd, name = tempfile.mkstemp(prefix="docfs-upload-")
        with os.fdopen(fd, "wb") as out, src.open("rb") as source:
            out.write(head)
            while chunk := source.read(1 << 20):
                out.write(chunk)
            out.write(tail)
        return Path(name)

    path = await trio.to_thread.run_sync(write)
    return path, f"multipart/form-data; boundary={boundary}"
