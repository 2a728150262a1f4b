"""The shared base of the DSpace 7+ backend: its state, requests, entries and the
recovery helpers for lost answers. The parts (reading, uploads, submissions, changes) are
mixins over this class; ``DSpace7Backend`` (the package) combines them."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import aclosing, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import trio
from cachetools import LRUCache

from docfs import errors
from docfs.backends._dspace_checksum import bitstream_checksum
from docfs.backends._dspace_hints import dspace_refusal_hint
from docfs.backends._http import HttpClient, Limits
from docfs.backends._together import all_at_once
from docfs.backends.base import (
    Capabilities,
    Credentials,
    Entry,
    IdKind,
    Kind,
    Op,
    landing_window,
    until_visible,
)
from docfs.backends.dspace7.hal import (
    DEPOSIT_AFTER,
    DIR_OPS,
    JSON,
    ORIGINAL,
    PAGE_SIZE,
    PENDING_GRACE,
    api_prefix,
    flatten_meta,
    parse_time,
)
from docfs.backends.dspace7.session import DSpace7Session
from docfs.backends.http_backend import HttpBackend
from docfs.hashing import file_digest_async

log = logging.getLogger("docfs.dspace7")

_T = TypeVar("_T")


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


class DSpace7Core(HttpBackend):
    """The state every part of the DSpace 7+ backend shares, and what they all use: JSON
    requests and pages, entries from objects, the recovery helpers for lost answers."""

    name = "dspace7"
    capabilities = Capabilities(
        ops=frozenset(Op),
        ranges=True,
        # only a move between bundles of one item exists; everything else is EXDEV
        move=False,
        meta_namespace="dspace",
        duplicate_names=True,
        search=True,
        search_scoped=True,
        # item versions (/api/versioning): ITEM/.versions/ lists them; files have none
        dir_versions=True,
        versions_missing="DSpace 7 keeps versions of items (ITEM/.versions/), not of files",
        # dso/find, pid/find (hdl: and doi:): see docfs.backends.dspace7.finding
        resolves=frozenset({IdKind.ID, IdKind.HANDLE, IdKind.DOI}),
        deep=True,
    )
    #: the Angular UI's base URL, from the root document (``dspaceUI``), for ``web_url``
    ui_url: str = ""
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
        params: Mapping[str, str] | Sequence[tuple[str, str]] | None = None,
        nested: Callable[[JSON], JSON] | None = None,
        first_page: int = 0,
        ahead: bool = False,
    ) -> AsyncGenerator[JSON, None]:
        """Follow a paged list (by page number: absolute ``next`` hrefs may name a host
        the server believes it has, behind a proxy, rather than the one we reach).

        ``ahead``: once a page has told ``totalPages``, the following ones are asked for as
        many at a time as the remote's concurrency allows (yielded in order), so a long list
        costs a few round trips rather than one per page (a walk: docs/protocols/dspace7.md)."""
        page = first_page
        # a list of pairs: a parameter may repeat (embed=…&embed=…)
        pairs = list(params.items()) if isinstance(params, Mapping) else list(params or [])

        async def fetch(number: int) -> tuple[JSON, list[JSON]]:
            query = [*pairs, ("page", str(number)), ("size", str(PAGE_SIZE))]
            data = await self._json("GET", path, endpoint=endpoint, params=query)
            body = nested(data) if nested is not None else data
            return body, list((body.get("_embedded") or {}).get(rel) or [])

        while True:
            body, objs = await fetch(page)
            for obj in objs:
                yield obj
            info = body.get("page")
            if isinstance(info, dict):
                number = int(info.get("number", page))
                total = int(info.get("totalPages", 0))
                if number + 1 >= total:
                    return
                page = number + 1
                if ahead:
                    async for obj in self._pages_at_once(fetch, range(page, total)):
                        yield obj
                    return
            elif len(objs) < PAGE_SIZE:
                return
            else:
                page += 1

    async def _pages_at_once(
        self,
        fetch: Callable[[int], Awaitable[tuple[JSON, list[JSON]]]],
        numbers: Sequence[int],
    ) -> AsyncGenerator[JSON, None]:
        """The objects of pages ``numbers``, fetched ``concurrency`` at a time (the client's
        cap, which would queue any more anyway) and yielded in page order. A batch is yielded
        outside the nursery that fetched it: a generator must not suspend inside one."""
        width = max(1, self.http.limits.concurrency)
        for first in range(0, len(numbers), width):
            batch = numbers[first : first + width]
            answers = await all_at_once(fetch, batch)
            pages = [objs for _, objs in answers]
            for objs in pages:
                for obj in objs:
                    yield obj
            if any(not objs for objs in pages):
                # an empty page: the list shrank meanwhile, nothing lies beyond it
                return

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
            checksum=bitstream_checksum(obj.get("checkSum")),
            extra={
                "type": "bitstream",
                "uuid": uuid,
                "parent": bundle if bundle_name != ORIGINAL else item,
                "item": item,
                "bundle": bundle,
                "bundle_name": bundle_name,
            },
        )

    async def _original_bundle(self, item: str) -> str:
        """The uuid of the item's ORIGINAL bundle, created when missing."""
        hint = self._bundle_hint.get(item)
        if hint is not None:
            return hint
        return await self._named_bundle(item, ORIGINAL)

    async def _named_bundle(self, item: str, name: str) -> str:
        """The uuid of the item's bundle ``name``, created when missing."""

        async def find() -> str | None:
            listing = self._pages(f"core/items/{item}/bundles", "bundles", endpoint="items/bundles")
            async with aclosing(listing):
                async for bundle in listing:
                    if bundle.get("name") == name:
                        if name == ORIGINAL:
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
                    json={"name": name, "metadata": {}},
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
                found = await self._until(find, exc, f"the {name} bundle of item {item}")
                if found is not None:
                    return found
                continue
            if name == ORIGINAL:
                self._bundle_hint[item] = str(created["uuid"])
            return str(created["uuid"])
        raise errors.ProtocolError(f"item {item}: cannot find or create its {name} bundle")

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
            md5 = await file_digest_async(src)
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
