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
server enables it (it gives a new uuid too; the part carries the entry's own name, since the
server derives the new name from it); a 400 or 405 to it switches the mount to upload-and-swap.
Every write has a recovery path after a lost answer: repeatable ones are retried, the others
are checked against the server's state (for as long as they may still land) and then resumed
or sent again (``docs/protocols/dspace7.md``, "Which writes may be sent twice").
Renames are ``dc.title`` patches; a move between items is ``EXDEV``. A new item is made with
the admin-only ``POST /core/items``; for everybody else it is a workspace item, shown at once,
that takes files and is deposited later — after ``deposit_after`` seconds of quiet, or when
``settle`` is called (fsync of a directory, ``docfs sync``, unmount) — because DSpace refuses
an empty deposit and the submitter cannot add files after it (``docs/protocols/dspace7.md``).
A new archived item that the search index does not list yet is kept visible from local
knowledge for up to ``PENDING_GRACE`` (Discovery is index-based and lags behind); an item that
goes into a collection's review workflow is not listed until it is approved (a log line says
so). Where the server adds a citation cover page to PDFs, they are listed with the served size
and marked ``transformed`` (read whole, not checked against the stored MD5).

**Auth.** ``POST /authn/login`` with the CSRF token dance handled transparently (the token is
the ``DSPACE-XSRF-COOKIE`` cookie echoed in ``X-XSRF-TOKEN``; a CSRF 403 fetches a new one and
the request is repeated once), JWT refreshed before it expires, before long uploads and after a
401. Without credentials the mount is anonymous and read-only.
"""

from __future__ import annotations

import base64
import dataclasses
import functools
import hashlib
import json
import logging
import re
import time
from collections.abc import (
    AsyncGenerator,
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
    Mapping,
)
from contextlib import aclosing, asynccontextmanager, suppress
from dataclasses import dataclass
from datetime import date, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any, TypeVar

import httpx
import trio
from cachetools import LRUCache

from docfs import errors
from docfs.backends._dspace_hints import dspace_refusal_hint
from docfs.backends._http import HttpClient, Limits
from docfs.backends._multipart import Field, FilePart, Multipart, Part
from docfs.backends._thumbs import fetch_bytes, match_thumbnails
from docfs.backends.base import (
    Capabilities,
    Credentials,
    Entry,
    Kind,
    Op,
    Sink,
    Thumbnail,
    landing_window,
    until_visible,
)
from docfs.backends.http_backend import HttpBackend

log = logging.getLogger("docfs.dspace7")

JSON = dict[str, Any]
_T = TypeVar("_T")

CSRF_HEADER = "DSPACE-XSRF-TOKEN"
CSRF_REQUEST_HEADER = "X-XSRF-TOKEN"
CSRF_COOKIE = "DSPACE-XSRF-COOKIE"
MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
#: page size for every listing: Discovery caps at 100 and maintainers advise no more elsewhere
PAGE_SIZE = 100
ORIGINAL = "ORIGINAL"
#: keys of Entry.meta that are not metadata fields and cannot be set
SYNTHETIC_META = frozenset(
    {"uuid", "handle", "checksum.md5", "bundle", "entityType", "stored.md5", "stored.size"}
)
METADATA_FIELD = re.compile(r"^[A-Za-z0-9]+\.[A-Za-z0-9_]+(\.[A-Za-z0-9_]+)?$")
#: a token with less than this share of its lifetime left is refreshed before an upload
UPLOAD_FRESHNESS = 0.5
#: how long a created item is shown although Discovery does not list it yet
PENDING_GRACE = 300.0
#: a non-administrator's new item is deposited after this long without changes in it
DEPOSIT_AFTER = 30.0

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

    def person(self) -> str | None:
        """The logged-in EPerson's uuid: the ``eid`` claim of the JWT (read, not verified)."""
        if not self._jwt:
            return None
        try:
            payload = self._jwt.split(".")[1]
            claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
            return str(claims["eid"])
        except (IndexError, ValueError, KeyError, TypeError):
            return None

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


@dataclass
class Draft:
    """A non-administrator's new item: a workspace item until it is deposited (README,
    "DSpace 7: new items of non-administrators")."""

    ws_id: int
    url: str
    collection: str
    entry: Entry
    #: monotonic time of the last change inside it
    touched: float
    #: uploads and other changes in flight inside it
    busy: int = 0
    #: why the last deposit was refused; cleared by the next change inside it
    problem: str | None = None
    #: the last refusal logged (each reason is logged once, not at every retry)
    told: str | None = None


def _is_pdf(name: str) -> bool:
    """DSpace guesses a format from the extension; cover pages go on ``application/pdf``."""
    return name.lower().endswith(".pdf")


def _thumbnail_refs(bundles: list[JSON], files: list[Entry]) -> dict[str, str]:
    """``bitstream:<uuid>`` of each ORIGINAL file in ``files`` → that of its THUMBNAIL
    bitstream, from the bundles ``embed=bundles/bitstreams`` put in the item's answer (every
    bundle, each with its first page of bitstreams: ItemRest's ``bundles`` link, BundleRest's
    ``bitstreams``). Only what the answer holds: a thumbnail past the embedded page costs no
    request and is not looked for."""
    thumbs: list[tuple[str, str]] = []
    for bundle in bundles:
        if bundle.get("name") != "THUMBNAIL":
            continue
        embedded = (bundle.get("_embedded") or {}).get("bitstreams") or {}
        for obj in (embedded.get("_embedded") or {}).get("bitstreams") or []:
            if isinstance(obj, dict) and obj.get("uuid") and obj.get("name"):
                thumbs.append((f"bitstream:{obj['uuid']}", str(obj["name"])))
    originals = [
        (e.id, e.name)
        for e in files
        if e.kind is Kind.FILE and e.extra.get("bundle_name") == ORIGINAL
    ]
    return {t.file_id: t.ref for t in match_thumbnails(originals, thumbs)} if thumbs else {}


class DSpace7Backend(HttpBackend):
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
        deposit_after: float = DEPOSIT_AFTER,
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
        #: learnt on first use (10.0 only): does PUT …/content replace content?
        self._replace: bool | None = None
        self._replace_probe = trio.Lock()
        # ORIGINAL bundle uuid per item uuid, learnt from listings: saves one request per
        # created file (cp -r into an item); a stale hint costs a 404 and one lookup
        self._bundle_hint: LRUCache[str, str] = LRUCache(maxsize=4096)
        #: collection uuid → item uuid → (created at, entry): created, not yet indexed
        self._pending: dict[str, dict[str, tuple[float, Entry]]] = {}
        #: item uuid → a non-administrator's new item, not deposited yet
        self._drafts: dict[str, Draft] = {}
        self.deposit_after = deposit_after
        self._drafts_changed = trio.Event()
        self._deposit_lock = trio.Lock()
        #: workspace items found at start that this mount did not make: id → line
        self._orphans: dict[int, str] = {}
        #: every workspace item this mount made (one made while the start's listing ran is
        #: no orphan)
        self._made: set[int] = set()
        self._orphans_checked = False
        #: collection (or item) uuid → does the server add a cover page to its PDFs for us?
        self._cover: dict[str, bool] = {}
        self._cover_logged = False

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

    def refusal_hint(self, entry: Entry, op: Op) -> str | None:
        return dspace_refusal_hint(entry, op, "DSpace 7")

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
            # an item mapped into several collections is one directory per collection: what
            # rmdir does depends on the collection it is removed from (see remove_from), and
            # what is unlinked or hidden in one of them must not change the others
            id=f"{kind}:{uuid}@{parent}" if kind == "item" and parent else f"{kind}:{uuid}",
            object_id=f"{kind}:{uuid}",
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
        for draft in list(self._drafts.values()):
            # a workspace item is in no search index: shown from what we know
            if draft.collection == uuid and draft.entry.extra["uuid"] not in seen:
                yield draft.entry

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
            # whether the item is mapped into other collections decides what rm of a file does
            ("embed", "mappedCollections"),
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
        embedded = data.get("_embedded") or {}
        bundles = (embedded.get("bundles") or {}).get("_embedded") or {}
        mapped = ((embedded.get("mappedCollections") or {}).get("_embedded") or {}).get(
            "mappedCollections"
        )
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
        thumbs = _thumbnail_refs(bundles.get("bundles") or [], entries)
        if thumbs:
            entries = [
                dataclasses.replace(e, thumbnail=thumbs[e.id]) if e.id in thumbs else e
                for e in entries
            ]
        if mapped:
            # removing a file would remove it from the item in every collection: the files go
            # only with the item, whose rmdir takes it out of this collection alone
            entries = [
                dataclasses.replace(e, ops=(e.ops - {Op.REMOVE}) | {Op.REMOVE_WITH_DIR})
                if e.kind is Kind.FILE and Op.REMOVE in e.ops
                else e
                for e in entries
            ]
        return await self._as_served(entries, item.extra.get("parent") or uuid, uuid)

    async def _as_served(self, entries: list[Entry], scope: str, item: str) -> list[Entry]:
        """PDFs as the server serves them to us. With citation cover pages
        (``citation-page.enable_globally`` or per collection/community; never for
        administrators) ``/content`` sends another document than the stored one: its length and
        (8.0+) its ETag differ from ``sizeBytes`` and the MD5 (BitstreamRestController,
        CitationDocumentServiceImpl). One HEAD per collection tells; where it does, each PDF's
        served length is asked for, so ``stat`` and ``read`` agree."""
        pdfs = [i for i, e in enumerate(entries) if e.kind is Kind.FILE and _is_pdf(e.name)]
        verdict = self._cover.get(scope)
        if not pdfs or verdict is False:
            return entries
        out = list(entries)
        for i in pdfs:
            try:
                served = await self._served(out[i])
            except errors.DocfsError as exc:
                # not readable (an embargo) or no answer: this one tells nothing, the next may
                log.debug("cannot tell how %s is served: %s", out[i].name, exc)
                continue
            if served is None:
                self._cover[scope] = self._cover[item] = False
                return out
            self._cover[scope] = self._cover[item] = True
            out[i] = served
        return out

    async def _served(self, entry: Entry) -> Entry | None:
        """``entry`` with the served size, if the server changes its bytes; else None (a
        ``DocfsError`` if it does not say, e.g. an embargoed file)."""
        response = await self.http.request(
            "HEAD",
            f"{self.api}/core/bitstreams/{self._uuid(entry)}/content",
            endpoint="content",
        )
        length = response.headers.get("Content-Length")
        etag = response.headers.get("ETag", "").strip().removeprefix("W/").strip('"')
        md5 = entry.meta.get("checksum.md5", "")
        if length is None or not length.isdigit():
            return None
        served = int(length)
        if served == entry.size and etag in ("", md5):
            return None
        if not self._cover_logged:
            self._cover_logged = True
            log.warning(
                "this DSpace serves PDFs changed (a citation cover page: %s has %d bytes stored, "
                "%d served): such files show their served size, are read whole and are not "
                "checked against the stored MD5",
                entry.name,
                entry.size or 0,
                served,
            )
        meta = {k: v for k, v in entry.meta.items() if k != "checksum.md5"}
        meta["stored.md5"] = md5
        meta["stored.size"] = str(entry.size)
        return dataclasses.replace(
            entry,
            size=served,
            version=f"served:{etag}:{served}:{entry.version}",
            meta=meta,
            transformed=True,
        )

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
            item_uuid = str(item.get("uuid") or entry.extra.get("item", ""))
            fresh = self._file(
                obj,
                item=item_uuid,
                bundle=str(bundle.get("uuid") or entry.extra.get("bundle", "")),
                bundle_name=str(bundle.get("name") or entry.extra.get("bundle_name", "")),
                mtime=parse_time(item.get("lastModified")),
            )
            if self._cover.get(item_uuid) and _is_pdf(fresh.name):
                with suppress(errors.DocfsError):  # unreadable: shown as stored
                    fresh = await self._served(fresh) or fresh
            return fresh
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
            # a transformed body is rendered per request: a resume must not splice two
            ranges=self.capabilities.ranges and not entry.transformed,
        )

    # ---- Backend: thumbnails ---------------------------------------------------------------

    async def thumbnail_data(self, thumbnail: Thumbnail) -> bytes:
        uuid = thumbnail.ref.removeprefix("bitstream:")
        return await fetch_bytes(self.http, f"{self.api}/core/bitstreams/{uuid}/content", "content")

    # ---- Backend: writing ------------------------------------------------------------------

    async def create_file(self, parent: Entry, name: str, src: Path) -> Entry:
        async with self._changing(parent.extra.get("item") or self._uuid(parent)):
            return await self._create_file(parent, name, src)

    async def _create_file(self, parent: Entry, name: str, src: Path) -> Entry:
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

        async def find() -> str | None:
            listing = self._pages(f"core/items/{item}/bundles", "bundles", endpoint="items/bundles")
            async with aclosing(listing):
                async for bundle in listing:
                    if bundle.get("name") == ORIGINAL:
                        self._bundle_hint[item] = str(bundle["uuid"])
                        return str(bundle["uuid"])
            return None

        for attempt in range(3):
            found = await find()
            if found is not None:
                return found
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
            except errors.RemoteUnavailable as exc:
                # a second one is refused (ItemRestRepository.addBundleToItem: "The bundle name
                # already exists"), but the one sent may still land: wait for it, not fail
                if attempt == 2:
                    raise
                found = await self._until(find, exc, f"the ORIGINAL bundle of item {item}")
                if found is not None:
                    return found
                continue
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
        filename: str | None = None,
    ) -> httpx.Response:
        """One multipart request (``file`` + ``properties``), never retried blindly. The
        part's filename is ``filename``, else ``name``: never the staging file's own name,
        which a 10.0 replace would make part of the file's name."""
        self.session.want_fresh_token()
        props = dict(properties or {})
        if name is not None:
            props["name"] = name
        parts: list[Part] = [FilePart("file", src, filename or name or src.name)]
        if props:
            parts.append(Field("properties", json.dumps(props), "application/json"))
        body = Multipart(parts)
        return await self.http.request(
            method,
            f"{self.api}/{path}",
            endpoint="upload",
            params=params,
            body=body,
            headers={"Content-Type": body.content_type},
            idempotent=False,
            status_map={404: errors.NotFound, 422: errors.InvalidArgument},
        )

    async def replace_file(self, entry: Entry, src: Path) -> Entry:
        async with self._changing(entry.extra.get("item", "")):
            return await self._replace_file(entry, src)

    async def _replace_file(self, entry: Entry, src: Path) -> Entry:
        if self.major >= 10 and self._replace is not False:
            if self._replace is None:
                # the first overwrite of the mount finds out; the others wait for its answer
                # (one failed PUT per mount, however many files are overwritten at once)
                async with self._replace_probe:
                    replaced = await self._put_content(entry, src)
            else:
                replaced = await self._put_content(entry, src)
            if replaced is not None:
                return replaced
        return await self._upload_and_swap(entry, src)

    async def _put_content(self, entry: Entry, src: Path) -> Entry | None:
        """10.0's ``PUT …/content`` (BitstreamReplaceController); None where the server does
        not replace content (then ``_replace`` is False for the rest of the mount)."""
        item, bundle = entry.extra["item"], entry.extra["bundle"]
        bundle_name = entry.extra.get("bundle_name", ORIGINAL)
        if self._replace is False:
            return None
        try:
            replaced = await self._put_once(entry, src)
        except (errors.NotSupported, errors.InvalidArgument) as exc:
            # 10.0 with replace-bitstream.enabled=false (the default): the service throws
            # IllegalStateException, answered 400; a server without the endpoint 405.
            # Once per mount: every later overwrite goes straight to upload-and-swap.
            if exc.status not in (400, 405):
                raise
            self._replace = False
            log.info(
                "this DSpace does not replace file content (PUT …/content answered %s): "
                "an overwrite uploads a new copy and deletes the old one",
                exc.status,
            )
        else:
            self._replace = True
            obj, stamp = replaced
            return self._file(obj, item=item, bundle=bundle, bundle_name=bundle_name, mtime=stamp)
        return None

    async def _put_once(self, entry: Entry, src: Path) -> tuple[JSON, float]:
        """``PUT …/content`` is not repeatable: it puts a new bitstream (new uuid) in the old
        one's place, so a second PUT to the old uuid is a 404. After a lost answer: if the
        old uuid is gone, the new bitstream with these bytes in its bundle is the answer;
        if it is still there once the PUT can no longer land, it is sent again."""
        uuid = self._uuid(entry)
        bundle = entry.extra["bundle"]
        md5: str | None = None
        for attempt in range(3):
            try:
                # the entry's own name as the part's filename: with replaceName=false
                # BitstreamServiceImpl.replace keeps the old name only when the extensions
                # agree (else old base name + uploaded extension)
                response = await self._upload(
                    f"core/bitstreams/{uuid}/content",
                    src,
                    None,
                    None,
                    method="PUT",
                    params={"replaceName": "false"},
                    filename=entry.name,
                )
            except errors.RemoteUnavailable as exc:
                if attempt == 2:
                    raise
                if md5 is None:
                    md5 = await trio.to_thread.run_sync(_md5_of, src)
                look = functools.partial(self._replaced, uuid, bundle, entry.name, src, md5)
                found = await self._until(look, exc, entry.name)
                if found is not None:
                    log.info("the new content of %s had arrived; its answer was lost", entry.name)
                    return found, time.time()
                log.info("the new content of %s did not arrive; sending it again", entry.name)
            else:
                return self._decode(response), _server_time(response)
        raise AssertionError("unreachable")

    async def _replaced(
        self, uuid: str, bundle: str, name: str, src: Path, md5: str
    ) -> JSON | None:
        """The bitstream that a ``PUT …/content`` of ``src`` to ``uuid`` put in its place, if
        it did (the old uuid is gone then)."""
        if await self._exists(f"core/bitstreams/{uuid}", "bitstreams") is not False:
            return None
        return await self._arrived(bundle, name, src, {uuid}, md5=md5)

    async def _upload_and_swap(self, entry: Entry, src: Path) -> Entry:
        """7-9: upload the new content beside the old, delete the old, restore the order.

        Each step has its own recovery (issue 18.3): a lost answer to the upload is looked for
        (and waited for, where it may still land) before the upload is sent again; once the
        old bitstream is deleted the new content is committed, and the reordering after it is
        checked against the bundle and never fails the write."""
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
        known = {str(o.get("uuid")) for o in order}
        new, stamp = await self._upload_once(bundle, src, name, {"metadata": metadata}, known)
        try:
            await self._delete(f"core/bitstreams/{uuid}", "bitstreams")
        except errors.DocfsError:
            if await self._exists(f"core/bitstreams/{uuid}", "bitstreams") is not False:
                # the old one is still there (or nobody can tell): take the new one away
                # rather than leave two copies behind — never when the old one is gone
                with suppress(errors.DocfsError):
                    await self._delete(f"core/bitstreams/{new['uuid']}", "bitstreams")
                raise
            log.info("the old copy of %s was deleted; its answer was lost", name)
        # the new one is last once the old one is gone
        await self._restore_position(bundle, str(new["uuid"]), len(order) - 1, position, name)
        return self._file(
            new,
            item=item,
            bundle=bundle,
            bundle_name=entry.extra.get("bundle_name", ORIGINAL),
            mtime=stamp,
        )

    async def _upload_once(
        self, bundle: str, src: Path, name: str, properties: JSON, known: set[str]
    ) -> tuple[JSON, float]:
        """POST a new bitstream into ``bundle``; after a lost answer, look for it (for as
        long as it may still land) before sending it again, so that the server never keeps
        two copies. ``known`` are the bundle's bitstreams from before."""
        md5: str | None = None
        for attempt in range(3):
            try:
                response = await self._upload(
                    f"core/bundles/{bundle}/bitstreams", src, name, properties
                )
            except errors.RemoteUnavailable as exc:
                if attempt == 2:
                    raise
                if md5 is None:
                    md5 = await trio.to_thread.run_sync(_md5_of, src)
                look = functools.partial(self._arrived, bundle, name, src, known, md5=md5)
                arrived = await self._until(look, exc, name)
                if arrived is not None:
                    log.info("the upload of %s had arrived; its answer was lost", name)
                    return arrived, time.time()
                log.info("the upload of %s did not arrive; sending it again", name)
            else:
                return self._decode(response), _server_time(response)
        raise AssertionError("unreachable")

    async def _restore_position(
        self, bundle: str, new: str, last: int, position: int, name: str
    ) -> None:
        """Move the new bitstream from ``last`` to the old one's place in the bundle (``move``
        of ``/_links/bitstreams/<i>/href``). A move is not idempotent (sent twice, it moves
        another file), so after a lost answer the bundle's order is read again and the move
        recomputed from it. The content is committed by now: a failure here costs the order
        only, one warning, never the write."""

        async def where() -> tuple[int, int] | None:
            """(current, wanted) index of the new bitstream; None if it is gone."""
            listing = self._pages(
                f"core/bundles/{bundle}/bitstreams", "bitstreams", endpoint="bundles/bitstreams"
            )
            order = [str(o.get("uuid")) async for o in listing]
            if new not in order:
                return None
            return order.index(new), min(position, len(order) - 1)

        problem: errors.DocfsError | None = None
        try:
            places: tuple[int, int] | None = (last, position)
            for attempt in range(3):
                if attempt:
                    places = await where()
                if places is None or places[0] == places[1]:
                    return  # in its place (or removed meanwhile: nothing to order)
                current, wanted = places
                try:
                    await self._json(
                        "PATCH",
                        f"core/bundles/{bundle}",
                        endpoint="bundles",
                        idempotent=False,
                        json=[
                            {
                                "op": "move",
                                "from": f"/_links/bitstreams/{current}/href",
                                "path": f"/_links/bitstreams/{wanted}/href",
                            }
                        ],
                    )
                    return
                except errors.RemoteUnavailable as exc:
                    problem = exc

                    async def moved() -> bool | None:
                        now = await where()
                        return True if now is None or now[0] == now[1] else None

                    if await self._until(moved, exc, name):
                        log.info("%s was put in its place; the answer was lost", name)
                        return
        except errors.DocfsError as exc:
            problem = exc
        log.warning(
            "%s: the new content is stored, but it could not be put back in its place in "
            "the bundle (%s)",
            name,
            problem,
        )

    async def _until(
        self,
        look: Callable[[], Awaitable[_T | None]],
        exc: errors.RemoteUnavailable,
        what: str,
    ) -> _T | None:
        """What ``look`` finds of a request whose answer was lost, or None once it can no
        longer land. A reset or a 500 ends the exchange: one look tells. A timeout or a
        gateway's 502/504 does not: the request may still be held on the way or be processed,
        so "not there" means "not visible yet" for twice the request timeout (issue 18.2,
        the rule ``vfs/writes.py`` applies to creates)."""
        return await until_visible(look, landing_window(exc, self.http.limits.timeout), what)

    async def _exists(self, path: str, endpoint: str) -> bool | None:
        """Does ``path`` exist? None if the server does not say."""
        try:
            await self._json("GET", path, endpoint=endpoint)
        except errors.NotFound:
            return False
        except errors.DocfsError:
            return None
        return True

    async def _arrived(
        self, bundle: str, name: str, src: Path, known: set[str], *, md5: str | None = None
    ) -> JSON | None:
        """A bitstream of ``bundle`` named ``name`` with ``src``'s bytes that is not one of
        ``known``: an upload whose answer was lost."""
        if md5 is None:
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
            if not self._orphans_checked:
                # the first item of a non-administrator in this mount: first say which
                # submissions earlier mounts (or the web interface) left undeposited — asked
                # here, not at every mount's start, where it would cost every user requests
                self._orphans_checked = True
                await self._find_orphans()
            return await self._start_submission(collection, name, metadata)
        entry = self._dir(obj, "item", collection)
        if obj.get("inArchive"):
            self._pending.setdefault(collection, {})[entry.extra["uuid"]] = (
                time.monotonic(),
                entry,
            )
        return entry

    # ---- a non-administrator's new items: workspace item first, deposit later -----------------

    async def _start_submission(self, collection: str, name: str, metadata: JSON) -> Entry:
        """A workspace item with its title, date and license, shown as a directory at once.

        It is deposited later (``_deposit``): the default submission configuration requires a
        file (``webui.submit.upload.required``, true by default in UploadConfiguration.java;
        UploadValidator's ``error.validation.filerequired`` makes SubmissionService.
        createWorkflowItem answer 422), and once deposited the submitter may no longer add
        files (XmlWorkflowServiceImpl.start removes the submitter's policies on the item).
        """
        workspace = await self._new_workspace_item(collection)
        ws_id = workspace.get("id")
        url = ((workspace.get("_links") or {}).get("self") or {}).get("href")
        if ws_id is None or not url:
            raise errors.ProtocolError("workspace item without id or self link")
        self._made.add(int(ws_id))
        ops = [
            {"op": "add", "path": f"/sections/traditionalpageone/{key}", "value": values}
            for key, values in metadata.items()
        ]
        ops.append({"op": "add", "path": "/sections/license/granted", "value": True})
        try:
            # each op sets (a whole field's add "initializes or replaces" it in a submission:
            # ItemMetadataValueAddPatchOperation; the license add grants it): safe to repeat
            await self._json(
                "PATCH",
                f"submission/workspaceitems/{ws_id}",
                endpoint="submission",
                json=ops,
                idempotent=True,
            )
            item = (workspace.get("_embedded") or {}).get("item")
            item_uuid = (item or {}).get("uuid")
            if not item_uuid:
                item_link = ((workspace.get("_links") or {}).get("item") or {}).get("href")
                if not item_link:
                    raise errors.ProtocolError("workspace item without its item")
                item = self._decode(await self.http.request("GET", item_link, endpoint="items"))
                item_uuid = item.get("uuid")
            obj = await self._json("GET", f"core/items/{item_uuid}", endpoint="items")
        except errors.DocfsError:
            # do not leave a half-made submission in the user's workspace
            with suppress(errors.DocfsError):
                await self._delete(f"submission/workspaceitems/{ws_id}", "submission")
            raise
        entry = self._dir(obj, "item", collection)
        self._drafts[entry.extra["uuid"]] = Draft(
            int(ws_id), str(url), collection, entry, time.monotonic()
        )
        self._drafts_changed.set()
        log.info(
            "new item %s is a workspace item until it is deposited (%gs after the last change "
            "in it, on fsync of its directory, docfs sync or unmount)",
            name,
            self.deposit_after,
        )
        return entry

    async def _new_workspace_item(self, collection: str) -> JSON:
        """``POST /submission/workspaceitems``; after a lost answer, the submitter's workspace
        items are read (for as long as the POST may still land) and an empty one in this
        collection that this mount has not seen is taken as ours, rather than leaving it
        behind and making another (issue 18.3)."""
        for attempt in range(3):
            try:
                return await self._json(
                    "POST",
                    "submission/workspaceitems",
                    endpoint="submission",
                    params={"owningCollection": collection, "embed": "item"},
                    idempotent=False,
                    status_map={422: errors.NotFound},
                )
            except errors.RemoteUnavailable as exc:
                if attempt == 2:
                    raise
                look = functools.partial(self._unclaimed_workspace_item, collection)
                found = await self._until(look, exc, "new workspace item")
                if found is not None:
                    log.info("workspace item %s had been made; its answer was lost", found["id"])
                    return found
                log.info("the new workspace item did not arrive; asking again")
        raise AssertionError("unreachable")

    async def _unclaimed_workspace_item(self, collection: str) -> JSON | None:
        """An untitled workspace item of this user in ``collection`` that is neither one of
        this mount's nor one found at its start: one whose creation answer was lost."""
        person = self.session.person()
        if not person:
            return None
        seen = self._made | set(self._orphans)
        listing = self._pages(
            "submission/workspaceitems/search/findBySubmitter",
            "workspaceitems",
            endpoint="submission",
            params={"uuid": person, "embed": "collection"},
        )
        async with aclosing(listing):
            async for ws in listing:
                ws_id = ws.get("id")
                owner = ((ws.get("_embedded") or {}).get("collection") or {}).get("uuid")
                if (
                    isinstance(ws_id, int)
                    and ws_id not in seen
                    and owner == collection
                    and _workspace_title(ws) == "(untitled)"
                ):
                    self._made.add(ws_id)  # claimed: a concurrent look must not take it too
                    return await self._json(
                        "GET",
                        f"submission/workspaceitems/{ws_id}",
                        endpoint="submission",
                        params={"embed": "item"},
                    )
        return None

    @asynccontextmanager
    async def _changing(self, item: str) -> AsyncIterator[None]:
        """A change inside ``item``: a draft is not deposited while one runs, and its quiet
        period starts again after it."""
        draft = self._drafts.get(item)
        if draft is None:
            yield
            return
        async with self._deposit_lock:
            pass  # a deposit under way finishes first (then the item is no draft any more)
        draft.busy += 1
        try:
            yield
        finally:
            draft.busy -= 1
            draft.touched = time.monotonic()
            draft.problem = None  # a changed item may be accepted now: the timer tries again
            self._drafts_changed.set()

    async def run(self) -> None:
        """Deposit drafts that have been quiet for ``deposit_after`` seconds."""
        while True:
            now = time.monotonic()
            due = [
                d
                for d in self._drafts.values()
                if not d.busy and not d.problem and now - d.touched >= self.deposit_after
            ]
            for draft in due:
                await self._deposit(draft)
            waits = [
                d.touched + self.deposit_after - now
                for d in self._drafts.values()
                if not d.busy and not d.problem
            ]
            self._drafts_changed = trio.Event()
            with trio.move_on_after(max(0.05, min(waits)) if waits else 3600.0):
                await self._drafts_changed.wait()

    async def settle(self) -> None:
        """Deposit every draft now (fsync of a directory, ``docfs sync``, unmount)."""
        for draft in list(self._drafts.values()):
            while draft.busy:
                await trio.sleep(0.05)  # an upload into it is still running
            await self._deposit(draft)
        # a refusal was logged by _deposit (once per reason); held_back() lists what is left

    def held_back(self) -> list[str]:
        drafts = [
            f"{d.entry.name}: workspace item {d.ws_id}, not deposited yet"
            + (f" ({d.problem})" if d.problem else "")
            for d in self._drafts.values()
        ]
        return drafts + [line for ws, line in self._orphans.items() if ws not in self._made]

    async def _find_orphans(self) -> None:
        """Workspace items of this user that no draft of this mount accounts for — e.g. left
        by a mount that was killed before its deposit: one warning, and ``docfs status``."""
        try:
            person = self.session.person()
            if not person:
                status = await self._json("GET", "authn/status", endpoint="authn/status")
                person = ((status.get("_embedded") or {}).get("eperson") or {}).get("uuid")
            if not person:
                href = ((status.get("_links") or {}).get("eperson") or {}).get("href", "")
                person = str(href).rstrip("/").rpartition("/")[2]
            if not person:
                return
            found = [
                ws
                async for ws in self._pages(
                    "submission/workspaceitems/search/findBySubmitter",
                    "workspaceitems",
                    endpoint="submission",
                    params={"uuid": str(person)},
                )
            ]
        except errors.DocfsError as exc:
            log.debug("cannot list this user's workspace items: %s", exc)
            return
        self._orphans = {
            int(ws["id"]): f"{_workspace_title(ws)}: workspace item {ws['id']} left in your "
            "DSpace workspace, not deposited (deposit or delete it in the web interface)"
            for ws in found
            if isinstance(ws.get("id"), int) and ws["id"] not in self._made
        }
        if self._orphans:
            log.warning(
                "%d submissions in your DSpace workspace were never deposited (e.g. by a mount "
                "that was stopped before it could): %s",
                len(self._orphans),
                "; ".join(self._orphans.values()),
            )

    async def _deposit(self, draft: Draft) -> None:
        """``POST /workflow/workflowitems`` with the workspace item's URL; never raises.

        A deposit consumes the workspace item (it becomes a workflow item or is archived), so
        one sent twice is refused, never doubled; and a workspace item that is gone after an
        error means the deposit went through. After a lost answer it is looked for (for as
        long as the deposit may still land) and then sent again (issue 18.3)."""
        item = draft.entry.extra["uuid"]
        ws_path = f"submission/workspaceitems/{draft.ws_id}"

        async def consumed() -> bool | None:
            return True if await self._exists(ws_path, "submission") is False else None

        async with self._deposit_lock:
            if self._drafts.get(item) is not draft:
                return  # deposited or removed meanwhile
            for attempt in range(3):
                try:
                    deposit = await self.http.request(
                        "POST",
                        f"{self.api}/workflow/workflowitems",
                        endpoint="workflow",
                        body=f"{draft.url}\n".encode(),
                        headers={"Content-Type": "text/uri-list"},
                        idempotent=False,
                        status_map={422: errors.InvalidArgument},
                    )
                    break
                except errors.RemoteUnavailable as exc:
                    if await self._until(consumed, exc, draft.entry.name):
                        deposit = None
                        break
                    if attempt == 2:
                        # no answer is no refusal: tried again after the next quiet period
                        log.info(
                            "deposit of %s got no answer (%s); trying again later",
                            draft.entry.name,
                            exc,
                        )
                        draft.touched = time.monotonic()
                        return
                except errors.DocfsError as exc:
                    if await consumed():
                        deposit = None  # an earlier try landed late: this one was refused
                        break
                    problem = await self._refusal(draft, exc)
                    if problem != draft.told:
                        log.warning(
                            "cannot deposit the new item %s (it stays a workspace item, %d, "
                            "in your DSpace workspace): %s",
                            draft.entry.name,
                            draft.ws_id,
                            problem,
                        )
                    draft.problem = draft.told = problem
                    return
            del self._drafts[item]
        if deposit is None:
            # gone from the workspace, the answer lost: archived or in review, shown while
            # the index may lag (a stat drops it if we may not see it)
            log.info("new item %s had been deposited; its answer was lost", draft.entry.name)
        elif deposit.content:
            # a workflow item: the item waits for review, invisible until approved
            log.info("new item %s was deposited and waits in review", draft.entry.name)
            return
        else:
            log.info("new item %s was deposited", draft.entry.name)
        self._pending.setdefault(draft.collection, {})[item] = (time.monotonic(), draft.entry)

    async def _refusal(self, draft: Draft, exc: errors.DocfsError) -> str:
        """Why a deposit was refused, in words (the workspace item's ``errors`` say it)."""
        if exc.status != 422:
            return str(exc)
        with suppress(errors.DocfsError):
            ws = await self._json(
                "GET", f"submission/workspaceitems/{draft.ws_id}", endpoint="submission"
            )
            messages = [
                str(e.get("message")) for e in ws.get("errors") or [] if isinstance(e, dict)
            ]
            if "error.validation.filerequired" in messages:
                return "DSpace requires at least one file in it"
            if messages:
                return "DSpace refused it: " + ", ".join(messages)
        return "DSpace refused it (422)"

    async def remove(self, entry: Entry) -> None:
        kind = self._type(entry)
        uuid = self._uuid(entry)
        if kind in ("community", "collection", "item", "bundle"):
            await self._check_empty(entry)
        if kind == "item":
            self._pending.get(entry.extra.get("parent", ""), {}).pop(uuid, None)
            self._bundle_hint.pop(uuid, None)
            draft = self._drafts.get(uuid)
            if draft is not None:
                # rmdir of an item not deposited yet: the whole submission goes
                async with self._deposit_lock:
                    self._drafts.pop(uuid, None)
                await self._delete(f"submission/workspaceitems/{draft.ws_id}", "submission")
                return
        elif kind in ("bitstream", "bundle"):
            async with self._changing(entry.extra.get("item", "")):
                await self._delete(f"{API_SECTION[kind]}/{uuid}", kind + "s")
            return
        if kind not in API_SECTION:
            raise errors.NotSupported(f"{entry.name}: cannot be removed")
        await self._delete(f"{API_SECTION[kind]}/{uuid}", kind + "s")

    async def remove_from(self, entry: Entry, parent: Entry) -> None:
        # one item directory may be listed in several collections: what its rmdir does
        # depends on the collection it is removed from, the parent given here
        if (
            self._type(entry) == "item"
            and self._type(parent) == "collection"
            and self._uuid(entry) not in self._drafts
            and await self._leave_collection(entry, self._uuid(parent))
        ):
            return
        await self.remove(entry)

    async def _leave_collection(self, entry: Entry, here: str) -> bool:
        """``rmdir`` of an item that is in other collections too: take it out of this one only.

        ``DELETE /core/items/{uuid}`` deletes an item from every collection it is in
        (``ItemServiceImpl.delete``), so where the item lives elsewhere docfs unmaps it from the
        collection it was listed in (``MappedCollectionRestController``) or, where that is its
        owning collection, makes one of its mapped collections the owner
        (``ItemOwningCollectionUpdateRestController``; needs ADMIN on the owning collection).
        False when the item is in no other collection: then it is deleted as before.
        See docs/protocols/dspace7.md, "Mapped items".
        """
        uuid = self._uuid(entry)
        owner = await self._json("GET", f"core/items/{uuid}/owningCollection", endpoint="items")
        owning = str(owner.get("uuid") or "")
        listed = await self._json("GET", f"core/items/{uuid}/mappedCollections", endpoint="items")
        mapped = [
            str(c["uuid"])
            for c in ((listed.get("_embedded") or {}).get("mappedCollections") or [])
            if c.get("uuid")
        ]
        others = [c for c in [owning, *mapped] if c and c != here]
        if not others or not here:
            return False
        if here in mapped:
            # a collection the item is no longer in is a silent 204: safe to repeat
            await self.http.request(
                "DELETE",
                f"{self.api}/core/items/{uuid}/mappedCollections/{here}",
                endpoint="items/mappedCollections",
            )
        elif here == owning:
            target = next(c for c in mapped if c != here)

            async def owned_by_target() -> bool | None:
                now = await self._json(
                    "GET", f"core/items/{uuid}/owningCollection", endpoint="items"
                )
                return True if str(now.get("uuid") or "") == target else None

            try:
                for attempt in range(3):
                    try:
                        await self.http.request(
                            "PUT",
                            f"{self.api}/core/items/{uuid}/owningCollection",
                            endpoint="items/owningCollection",
                            body=f"{self.http.base_url}{self.api}/core/collections/{target}\n".encode(),
                            headers={"Content-Type": "text/uri-list"},
                            idempotent=False,
                            # "already the owning collection": a concurrent or earlier change
                            status_map={400: errors.Conflict},
                        )
                        break
                    except errors.Conflict:
                        if not await owned_by_target():
                            raise
                        break
                    except errors.RemoteUnavailable as exc:
                        # answer lost: not sent again before it can no longer land (18.2)
                        if await self._until(owned_by_target, exc, entry.name):
                            break
                        if attempt == 2:
                            raise
            except errors.PermissionDenied:
                log.warning(
                    "DSpace 7+ refused to hand %r over to another of its collections: taking "
                    "an item out of its owning collection needs ADMIN on that collection",
                    entry.name,
                )
                raise
        else:
            log.info("item %s had already left collection %s", uuid, here)
            return True
        log.info(
            "%r was taken out of this collection; it stays in %d other collection(s)",
            entry.name,
            len(others),
        )
        return True

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
        uuid = self._uuid(entry)
        try:
            await self.http.request(
                "PUT",
                f"{self.api}/core/bitstreams/{uuid}/bundle",
                endpoint="bitstreams/bundle",
                body=f"{self.http.base_url}{self.api}/core/bundles/{bundle}\n".encode(),
                headers={"Content-Type": "text/uri-list"},
                # a PUT, retried after a lost answer: the second one is refused with 400 "already
                # in the target bundle" (BitstreamRestRepository.performBitstreamMove)
                status_map={400: errors.Conflict},
            )
        except errors.Conflict:
            now = await self._json("GET", f"core/bitstreams/{uuid}/bundle", endpoint="bitstreams")
            if str(now.get("uuid") or "") != bundle:
                raise errors.InvalidArgument(f"{entry.name}: DSpace refused the move") from None
            log.info("%s was moved already; the answer was lost", entry.name)
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
        item = self._uuid(entry) if kind == "item" else entry.extra.get("item", "")
        async with self._changing(item):
            obj = await self._patch_once(f"{API_SECTION[kind]}/{self._uuid(entry)}", kind, ops)
        name = str(obj.get("name") or self._uuid(entry))
        version = entry.version if kind == "bitstream" else str(obj.get("lastModified") or "")
        mtime = (
            entry.mtime if kind in ("bitstream", "bundle") else parse_time(obj.get("lastModified"))
        )
        fresh = dataclasses.replace(
            entry, name=name, meta=flatten_meta(obj), version=version, mtime=mtime
        )
        draft = self._drafts.get(item) if kind == "item" else None
        if draft is not None:
            draft.entry = fresh  # the collection shows it from here until it is deposited
        return fresh

    async def _patch_once(self, path: str, kind: str, ops: list[JSON]) -> JSON:
        """A metadata PATCH that is applied once, whatever the network does (issue 18.3).

        ``replace`` sets a value: repeated, it sets it again, so a patch of replaces only is
        retried like a PUT. ``add`` appends (DSpaceObjectMetadataAddOperation: "appending if
        index is 0 or left out") and ``remove`` of a missing field is a 422: after a lost
        answer the object is read again, for as long as the patch may still land, and the
        patch is sent again only if its result is not there."""
        endpoint = kind + "s"
        status_map = {422: errors.InvalidArgument}
        if all(op.get("op") == "replace" for op in ops):
            return await self._json(
                "PATCH", path, endpoint=endpoint, json=ops, idempotent=True, status_map=status_map
            )

        async def applied() -> JSON | None:
            obj = await self._json("GET", path, endpoint=endpoint)
            return obj if _patched(obj, ops) else None

        for attempt in range(3):
            try:
                return await self._json(
                    "PATCH",
                    path,
                    endpoint=endpoint,
                    json=ops,
                    idempotent=False,
                    status_map=status_map,
                )
            except errors.RemoteUnavailable as exc:
                if attempt == 2:
                    raise
                obj = await self._until(applied, exc, path)
                if obj is not None:
                    log.info("the change of %s had arrived; its answer was lost", path)
                    return obj
                log.info("the change of %s did not arrive; sending it again", path)
        raise AssertionError("unreachable")


def _workspace_title(ws: JSON) -> str:
    """A workspace item's title, from its traditionalpageone section."""
    section = (ws.get("sections") or {}).get("traditionalpageone") or {}
    values = section.get("dc.title") or []
    if values and isinstance(values[0], dict) and values[0].get("value"):
        return str(values[0]["value"])
    return "(untitled)"


def _patched(obj: JSON, ops: list[JSON]) -> bool:
    """Does ``obj`` show the result of the metadata patch ``ops`` (as ``_set_title`` and
    ``set_meta`` build them)? False where it cannot tell."""
    metadata = obj.get("metadata") or {}
    for op in ops:
        parts = str(op.get("path", "")).split("/")
        if len(parts) < 3 or parts[1] != "metadata":
            return False
        have = [v.get("value") for v in metadata.get(parts[2]) or [] if isinstance(v, dict)]
        kind, value = op.get("op"), op.get("value")
        if kind == "remove" and len(parts) == 3:
            ok = not have
        elif kind in ("add", "replace") and len(parts) == 3 and isinstance(value, list):
            want = [v.get("value") for v in value if isinstance(v, dict)]
            # an add appends to what the field held (which we believed empty)
            ok = have[-len(want) :] == want if kind == "add" else have == want
        elif kind == "replace" and len(parts) == 5 and parts[4] == "value":
            index = int(parts[3]) if parts[3].isdigit() else -1
            ok = 0 <= index < len(have) and have[index] == value
        else:
            return False
        if not ok:
            return False
    return True


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
