"""DSpace 6.x legacy REST API (``/rest``) as directories and files.

The remote URL is the REST webapp itself, e.g. ``https://repo.example.org/rest``.

Mapping (why these calls: docs/protocols/dspace6.md, "How the tree is listed"):

- root: the site; its children are the top-level communities (``GET /hierarchy``, one call);
- community: sub-communities and collections (``GET /communities/{id}?expand=…``, one call);
- collection: its archived items, paged by 100 until ``offset >= numberItems`` (short pages are
  not the end: READ filtering happens after paging), deduplicated by uuid;
- item: its ORIGINAL bitstreams (``GET /items/{id}?expand=bitstreams``: all bundles, unpaged —
  the paged endpoint is buggy); other bundles (thumbnails, extracted text, licences) are the
  server's derived files and are not shown;
- bitstream: a file; ``size`` = ``sizeBytes``, ``version`` = MD5, ``mtime`` = the item's
  ``lastModified`` (bitstreams have no date of their own; ``inherited_mtime``: the vfs keeps
  the date it first saw per version).

Removing an item (``rmdir``, the end of ``rm -r``) takes it out of the collection it is listed
in: ``DELETE /collections/{cid}/items/{iid}``, whose ``CollectionServiceImpl.removeItem`` unmaps
the item where it is mapped into other collections too and deletes it only where this was its
last one. ``DELETE /items/{id}`` is never used for that: ``ItemsResource.deleteItem`` deletes the
item from every collection at once. The files of an item that is mapped into several collections
belong to all of them, so ``rm`` does not delete them one by one: they go only with the item
(``Op.REMOVE_WITH_DIR``), and ``rm -r`` leaves the item, files and all, in its other collections.
See docs/protocols/dspace6.md.

Authentication is a ``JSESSIONID`` cookie from a form-encoded ``POST /login``; DSpace 6 answers
401 both for "not logged in" and "not allowed", so one re-login is tried before a 401 is
final. Anonymous mounts send no cookie at all.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import httpx
import trio

from docfs import errors, saf
from docfs.backends._dspace_checksum import bitstream_checksum
from docfs.backends._dspace_hints import dspace_refusal_hint
from docfs.backends._http import HttpClient, Limits
from docfs.backends._saf_deposit import Packages
from docfs.backends._thumbs import fetch_bytes, match_thumbnails
from docfs.backends._together import all_at_once
from docfs.backends.base import (
    Capabilities,
    Checksum,
    Credentials,
    Entry,
    IdKind,
    Kind,
    Op,
    Sink,
    Thumbnail,
)
from docfs.backends.dspace6 import finding, packages, searching
from docfs.backends.dspace6.metadata import (
    ITEM_OWN_KEYS,
    check_name,
    dc_key,
    update_item_metadata,
)
from docfs.backends.dspace6.session import JSON, CookieSession
from docfs.backends.http_backend import HttpBackend
from docfs.hashing import file_digest_async

log = logging.getLogger("docfs.backends.dspace6")

PAGE = 100
#: shared by every listed item and bitstream (one frozenset each would cost 200 bytes apiece)
ITEM_OPS = frozenset({Op.CREATE_FILE, Op.REMOVE, Op.RENAME, Op.SET_META})
BITSTREAM_OPS = frozenset({Op.REPLACE, Op.REMOVE, Op.RENAME})
#: files of an item mapped into several collections: removing one would remove it from the item
#: in every collection, so they go only with the item (which ``rmdir`` unmaps from here)
MAPPED_BITSTREAM_OPS = frozenset({Op.REPLACE, Op.REMOVE_WITH_DIR, Op.RENAME})
#: what ``_collection_items`` makes of each item's object
_T = TypeVar("_T")

#: what a walk's collection pages expand: the items' own fields and what their listing needs
ITEM_AND_FILES = "metadata,bitstreams,parentCollectionList"
SEND_JSON = {"Accept": "application/json", "Content-Type": "application/json"}
#: the editable text fields of communities and collections (PUT overwrites all of them)
CONTAINER_FIELDS = ("name", "copyrightText", "introductoryText", "shortDescription", "sidebarText")

SITE = "site"


def _sid(entry: Entry) -> str:
    """The server's uuid of an entry (an item's ``id`` also names the collection it is in)."""
    return entry.object_id or entry.id.partition("@")[0]


def parse_last_modified(value: object) -> float | None:
    """``lastModified`` in either of DSpace 6's forms; the server's zone is unknown: UTC."""
    if not isinstance(value, str) or not value:
        return None
    # the ``Timestamp`` form ("2017-03-23 11:15:28.61") of every listed item: fromisoformat is
    # ~35x faster than strptime, which was a tenth of the daemon's CPU in a 10,000-item listing
    if len(value) >= 19 and value[10] == " ":
        try:
            stamp = datetime.fromisoformat(value)
        except ValueError:
            pass
        else:
            return (stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)).timestamp()
    # ``Date.toString()``: "Thu Mar 23 11:15:28 CET 2017"; the zone name is dropped
    parts = value.split()
    if len(parts) == 6:
        try:
            stamp = datetime.strptime(" ".join(parts[:4] + parts[5:]), "%a %b %d %H:%M:%S %Y")
            return stamp.replace(tzinfo=UTC).timestamp()
        except ValueError:
            pass
    return None


def _parsed(response: httpx.Response, what: str) -> Any:
    """The JSON body of ``response``; anything else (HTML, a cut body) is a protocol error."""
    try:
        return response.json()
    except ValueError as exc:
        raise errors.ProtocolError(f"{what}: the answer is not JSON") from exc


def _object(value: object, what: str) -> dict[str, Any]:
    """``value`` if it is a JSON object, else the answer is malformed (EIO, not a crash)."""
    if not isinstance(value, dict):
        raise errors.ProtocolError(f"{what}: expected a JSON object, got {type(value).__name__}")
    return value


def _objects(value: object, what: str) -> list[dict[str, Any]]:
    """A JSON list of objects (``null`` or missing: empty)."""
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise errors.ProtocolError(f"{what}: expected a list of JSON objects")
    return value


def _thumbnail_refs(bitstreams: list[dict[str, Any]]) -> dict[str, str]:
    """ORIGINAL bitstream uuid → uuid of its THUMBNAIL bitstream, from an item's
    ``expand=bitstreams`` answer (each bitstream carries its ``bundleName``)."""
    pairs: dict[str, list[tuple[str, str]]] = {"ORIGINAL": [], "THUMBNAIL": []}
    for bs in bitstreams:
        target = pairs.get(str(bs.get("bundleName")))
        if target is not None and bs.get("name") and bs.get("uuid"):
            target.append((str(bs["uuid"]), str(bs["name"])))
    found = match_thumbnails(pairs["ORIGINAL"], pairs["THUMBNAIL"])
    return {t.file_id: t.ref for t in found}


def _uuid(obj: Mapping[str, Any], what: str, key: str = "uuid") -> str:
    value = obj.get(key)
    if not isinstance(value, str) or not value:
        raise errors.ProtocolError(f"{what}: an object without a {key!r}")
    return value


def _count(value: object, what: str) -> int:
    """A size or count: a non-negative integer (``null``: 0)."""
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise errors.ProtocolError(f"{what}: not a number: {value!r}")
    try:
        number = int(value)
    except ValueError:
        raise errors.ProtocolError(f"{what}: not a number: {value!r}") from None
    if number < 0:
        raise errors.ProtocolError(f"{what}: negative: {number}")
    return number


def _meta_of(metadata: object) -> dict[str, str]:
    """Item metadata as xattr values: repeated fields joined by newlines, in server order."""
    out: dict[str, str] = {}
    if not isinstance(metadata, list):
        return out
    # one pass, no per-key lists: this runs for every item of every listing page
    for m in metadata:
        if isinstance(m, dict):
            key = m.get("key")
            if isinstance(key, str):
                # interned: the same dozen keys repeat in every item of a listing
                key = sys.intern(key)
                value = m.get("value")
                text = value if isinstance(value, str) else str(value or "")
                before = out.get(key)
                out[key] = text if before is None else f"{before}\n{text}"
    return out


class DSpace6Backend(HttpBackend):
    name: ClassVar[str] = "dspace6"
    capabilities: ClassVar[Capabilities] = Capabilities(
        ops=frozenset(Op),
        ranges=False,
        move=False,
        meta_namespace="dspace",
        duplicate_names=True,
        search=True,
        versions_missing="the DSpace 6 REST API has no item or bitstream versions",
        # /handle/{prefix}/{suffix}, and a uuid tried per type: see dspace6/finding.py
        resolves=frozenset({IdKind.ID, IdKind.HANDLE}),
        deep=True,
    )
    # DSpace 6 documents no rate limit; a modest concurrency cap spares Tomcat's thread pool
    default_limits: ClassVar[Limits] = Limits(concurrency=8)

    def __init__(self, http: HttpClient, credentials: Credentials) -> None:
        super().__init__(http, credentials)
        self.session = CookieSession(credentials)
        http.session = self.session
        http.redactor.add(*credentials.secrets())
        # the DSpace 6 REST API never redirects to another host: such an answer is not DSpace
        # speaking (a captive portal, a hijack), so it is refused instead of followed
        http.foreign_redirects = False
        self._packages = Packages()

    def refusal_hint(self, entry: Entry, op: Op) -> str | None:
        return dspace_refusal_hint(entry, op, "DSpace 6")

    def search(self, scope: Entry | None, query: str, limit: int) -> AsyncIterator[Entry]:
        return searching.search(self, scope, query, limit)

    # ---- helpers ---------------------------------------------------------------------------

    async def _json(self, path: str, endpoint: str, params: Mapping[str, Any] | None = None) -> Any:
        response = await self.http.request(
            "GET", path, endpoint=endpoint, params=params, headers=JSON
        )
        return _parsed(response, f"GET {path}")

    async def _json_object(
        self, path: str, endpoint: str, params: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        return _object(await self._json(path, endpoint, params), f"GET {path}")

    def _container(self, obj: Mapping[str, Any], kind: str) -> Entry:
        # a malformed answer (wrong types, missing fields) is EIO with one log line: check the
        # shape before use instead of crashing on it
        uuid = _uuid(_object(obj, kind), kind)
        ops = {Op.MKDIR, Op.REMOVE, Op.RENAME}
        meta = {"handle": str(obj.get("handle") or ""), "uuid": uuid}
        for key in ("shortDescription", "introductoryText"):
            if obj.get(key):
                meta[key] = str(obj[key])
        if kind == "collection" and obj.get("numberItems") is not None:
            meta["numberItems"] = str(obj["numberItems"])
        return Entry(
            id=uuid,
            name=str(obj.get("name") or obj.get("handle") or uuid),
            kind=Kind.DIR,
            size=None,
            mtime=None,
            version="",
            meta=meta,
            ops=frozenset(ops),
            extra={"type": kind},
        )

    def _item(self, obj: Mapping[str, Any], collection: str | None) -> Entry:
        uuid = _uuid(_object(obj, "item"), "item")
        meta = _meta_of(obj.get("metadata"))
        meta["handle"] = str(obj.get("handle") or "")
        meta["uuid"] = uuid
        mtime = parse_last_modified(obj.get("lastModified"))
        return Entry(
            # an item mapped into several collections is one directory per collection: what
            # rmdir does depends on the collection it is removed from (see _remove_item), and
            # what is unlinked or hidden in one of them must not change the others
            id=f"{uuid}@{collection}" if collection else uuid,
            object_id=uuid,
            name=str(obj.get("name") or obj.get("handle") or uuid),
            kind=Kind.DIR,
            size=None,
            mtime=mtime,
            version=str(obj.get("lastModified") or ""),
            meta=meta,
            ops=ITEM_OPS,
            extra={"type": "item", "collection": collection or ""},
        )

    def _bitstream(
        self,
        obj: Mapping[str, Any],
        item: str,
        mtime: float | None,
        mapped: bool = False,
        item_handle: object = None,
    ) -> Entry:
        uuid = _uuid(_object(obj, "bitstream"), "bitstream")
        size = _count(obj.get("sizeBytes"), "bitstream sizeBytes")
        checksum = obj.get("checkSum") or {}
        md5 = str(checksum.get("value") or "") if isinstance(checksum, dict) else ""
        name = obj.get("name")
        if not name:
            # unnamed uploads exist (``name`` is optional on upload): give them a stable name
            name = f"bitstream-{uuid[:8]}"
        meta = {
            "uuid": uuid,
            "mimeType": str(obj.get("mimeType") or ""),
            "format": str(obj.get("format") or ""),
            "bundleName": str(obj.get("bundleName") or ""),
            "checksum.md5": md5,
            "sequenceId": str(obj.get("sequenceId")),
        }
        if obj.get("description"):
            meta["description"] = str(obj["description"])
        return Entry(
            id=uuid,
            name=str(name),
            kind=Kind.FILE,
            size=size,
            mtime=mtime,
            version=md5 or str(size),
            meta=meta,
            ops=MAPPED_BITSTREAM_OPS if mapped else BITSTREAM_OPS,
            inherited_mtime=True,  # the item's date: bitstreams have none
            checksum=bitstream_checksum(checksum),
            extra={
                "type": "bitstream",
                "item": item,
                "description": str(obj.get("description") or ""),
                # for web_url (the UI's file page is under the item's handle)
                "item_handle": str(item_handle or ""),
            },
        )

    @staticmethod
    def _type(entry: Entry) -> str:
        return entry.extra.get("type", "") if _sid(entry) != SITE else SITE

    # ---- read ------------------------------------------------------------------------------

    async def connect(self) -> None:
        await self.http.ensure_session()
        status = await self._json_object("/status", "status")
        if not self.session.anonymous and not status.get("authenticated"):
            raise errors.AuthenticationFailed("DSpace accepted the login but /status disagrees")

    async def root(self) -> Entry:
        return Entry(
            id=SITE,
            name="",
            kind=Kind.DIR,
            size=None,
            mtime=None,
            version="",
            ops=frozenset({Op.MKDIR}),
            extra={"type": SITE},
        )

    async def list_dir(self, directory: Entry) -> AsyncIterator[Entry]:
        kind = self._type(directory)
        if kind == SITE:
            tree = await self._json_object("/hierarchy", "hierarchy")
            for node in _objects(tree.get("community"), "hierarchy"):
                yield self._container({**node, "uuid": _uuid(node, "hierarchy", "id")}, "community")
        elif kind == "community":
            obj = await self._json_object(
                f"/communities/{_sid(directory)}",
                "community",
                {"expand": "subCommunities,collections"},
            )
            for sub in _objects(obj.get("subcommunities"), "subcommunities"):
                yield self._container(sub, "community")
            for col in _objects(obj.get("collections"), "collections"):
                yield self._container(col, "collection")
        elif kind == "collection":
            async for item, _ in self._collection_items(
                _sid(directory), "metadata", lambda item, obj: None
            ):
                yield item
        elif kind == "item":
            obj = await self._json_object(
                f"/items/{_sid(directory)}", "item", {"expand": "bitstreams,parentCollectionList"}
            )
            for entry in self._files_of(obj, _sid(directory)):
                yield entry
        else:
            raise errors.NotSupported(f"not a directory: {_sid(directory)}")

    async def list_dir_deep(
        self, directory: Entry
    ) -> AsyncIterator[tuple[Entry, Sequence[Entry] | None]]:
        """A collection's items each with its files: the item pages are asked with
        ``expand=bitstreams,parentCollectionList`` too, and ``CollectionsResource
        .getCollectionItems`` builds every item of a page with the same ``Item`` constructor
        as ``GET /items/{id}`` (docs/protocols/dspace6.md, "A walk"), so a walk costs the pages."""
        if self._type(directory) != "collection":
            async for entry in self.list_dir(directory):
                yield entry, None
            return
        async for item, files in self._collection_items(
            _sid(directory), ITEM_AND_FILES, lambda item, obj: self._files_of(obj, _sid(item))
        ):
            yield item, files

    def _files_of(self, obj: Mapping[str, Any], item: str) -> list[Entry]:
        """An item's files (its ORIGINAL bitstreams) from an answer with ``expand=bitstreams,
        parentCollectionList``."""
        mtime = parse_last_modified(obj.get("lastModified"))
        mapped = len(self._collections_of(obj)) > 1
        bitstreams = _objects(obj.get("bitstreams"), "bitstreams")
        # expand=bitstreams lists every bundle: the THUMBNAIL one tells, at no further
        # request, which files have a thumbnail (ItemsResource.java, Bitstream.java)
        thumbs = _thumbnail_refs(bitstreams)
        files = []
        for bs in bitstreams:
            if bs.get("bundleName") == "ORIGINAL":
                entry = self._bitstream(bs, item, mtime, mapped, obj.get("handle"))
                ref = thumbs.get(entry.id)
                files.append(entry if ref is None else replace(entry, thumbnail=ref))
        return files

    async def _collection_items(
        self,
        collection: str,
        expand: str,
        convert: Callable[[Entry, dict[str, Any]], _T],
    ) -> AsyncIterator[tuple[Entry, _T]]:
        """The items of ``collection``, each with ``convert(item, its object)``: all pages
        (``numberItems`` says how many) through a window as wide as the concurrency cap, each
        converted as it arrives (its JSON is not kept), then yielded in order (in batches, a
        batch waited for its slowest page; docs/protocols/dspace6.md, "A walk")."""
        info = await self._json_object(f"/collections/{collection}", "collection")
        total = _count(info.get("numberItems"), "numberItems")
        offsets = list(range(0, max(total, 1), PAGE))
        slots = trio.CapacityLimiter(max(1, self.http.limits.concurrency))

        async def fetch(offset: int) -> list[tuple[str, Entry, _T]]:
            async with slots:
                page = await self._json(
                    f"/collections/{collection}/items",
                    "collection.items",
                    {"limit": PAGE, "offset": offset, "expand": expand},
                )
            if not isinstance(page, list):
                raise errors.ProtocolError("collection items: answer is not a list")
            converted = []
            for obj in _objects(page, "collection items"):
                item = self._item(obj, collection)
                converted.append((_uuid(obj, "collection items"), item, convert(item, obj)))
            return converted

        pages = await all_at_once(fetch, offsets)
        seen: set[str] = set()
        for page in pages:
            for uuid, item, extra in page:
                if uuid not in seen:
                    seen.add(uuid)
                    yield item, extra
            # a short page is not the end (READ filtering happens after paging), but an empty
            # one is: nothing further can be listed for us
            if not page:
                return

    async def stat(self, entry: Entry) -> Entry:
        kind = self._type(entry)
        if kind == SITE:
            return await self.root()
        if kind == "community":
            return self._container(await self._json(f"/communities/{_sid(entry)}", kind), kind)
        if kind == "collection":
            return self._container(await self._json(f"/collections/{_sid(entry)}", kind), kind)
        if kind == "item":
            obj = await self._json(f"/items/{_sid(entry)}", "item", {"expand": "metadata"})
            return self._item(obj, entry.extra.get("collection"))
        obj = await self._json(f"/bitstreams/{_sid(entry)}", "bitstream")
        return self._bitstream(
            obj, entry.extra.get("item", ""), entry.mtime, False, entry.extra.get("item_handle")
        )

    async def download(
        self, entry: Entry, sink: Sink, start: int = 0, end: int | None = None
    ) -> None:
        await self.http.download(
            f"/bitstreams/{_sid(entry)}/retrieve",
            sink,
            endpoint="bitstream.retrieve",
            start=start,
            end=end,
            ranges=False,
        )

    # ---- thumbnails ------------------------------------------------------------------------

    async def thumbnail_data(self, thumbnail: Thumbnail) -> bytes:
        return await fetch_bytes(
            self.http, f"/bitstreams/{thumbnail.ref}/retrieve", "bitstream.retrieve"
        )

    # ---- write -----------------------------------------------------------------------------

    # ---- finding (docfs/backends/dspace6/finding.py) ---------------------------------------

    async def resolve(self, kind: str, key: str) -> Entry | None:
        return await finding.resolve(self, kind, key)

    def web_url(self, entry: Entry) -> str | None:
        return finding.web_url(self, entry)

    async def create_file(self, parent: Entry, name: str, src: Path) -> Entry:
        if self._type(parent) != "item":
            raise errors.NotSupported("DSpace 6: files can only be created inside an item")
        response = await self.http.request(
            "POST",
            f"/items/{_sid(parent)}/bitstreams",
            endpoint="bitstream.upload",
            params=self._upload_params(parent, name),
            headers={"Accept": "application/json", "Content-Type": "application/octet-stream"},
            body=src,
        )
        return self._bitstream(_parsed(response, "upload"), _sid(parent), time.time())

    # ---- deposit packages (issue 21: docfs/backends/dspace6/packages.py) ---------------------

    def package_file(self, parent: Entry, name: str) -> bool:
        return self._type(parent) == "item" and saf.is_package_file(name)

    async def apply_package_file(self, parent: Entry, name: str, src: Path) -> Entry:
        return await self._packages.apply(
            self,
            _sid(parent),
            parent,
            name,
            src,
            set_all=lambda item, values: packages.set_all(self, item, values),
            describe=lambda entry, text: packages.describe(self, entry, text),
        )

    def _upload_params(self, parent: Entry, name: str) -> dict[str, str]:
        line = self._packages.line(_sid(parent), name)
        if line is None or not line.description:
            return {"name": name}
        return {"name": name, "description": line.description}

    async def replace_file(self, entry: Entry, src: Path) -> Entry:
        await self.http.request(
            "PUT",
            f"/bitstreams/{_sid(entry)}/data",
            endpoint="bitstream.data",
            headers={"Content-Type": "application/octet-stream"},
            body=src,
        )
        # PUT answers an empty body; the new MD5 is what the server computes from our bytes
        size = src.stat().st_size
        digest = await file_digest_async(src, size=size)
        meta = dict(entry.meta)
        meta["checksum.md5"] = digest
        return replace(
            entry,
            size=size,
            mtime=time.time(),
            version=digest,
            meta=meta,
            checksum=Checksum("md5", digest),
        )

    async def mkdir(self, parent: Entry, name: str) -> Entry:
        kind = self._type(parent)
        if kind == "collection":
            response = await self.http.request(
                "POST",
                f"/collections/{_sid(parent)}/items",
                endpoint="item.create",
                headers=SEND_JSON,
                json={"metadata": [{"key": "dc.title", "value": name, "language": None}]},
            )
            obj = _object(_parsed(response, "new item"), "new item")
            if obj.get("archived") == "false":
                log.warning(
                    "item %r went into the collection's review workflow; it will not be "
                    "listed until it is approved",
                    name,
                )
            entry = self._item(obj, _sid(parent))
            if not entry.meta.get("dc.title"):
                entry = replace(entry, meta={**entry.meta, "dc.title": name})
            return entry
        if kind == "community":
            response = await self.http.request(
                "POST",
                f"/communities/{_sid(parent)}/collections",
                endpoint="collection.create",
                headers=SEND_JSON,
                json={"name": name},
            )
            return self._container(_parsed(response, "new collection"), "collection")
        if kind == SITE:
            response = await self.http.request(
                "POST",
                "/communities",
                endpoint="community.create",
                headers=SEND_JSON,
                json={"name": name},
            )
            return self._container(_parsed(response, "new community"), "community")
        raise errors.NotSupported("DSpace 6: an item cannot hold directories")

    @staticmethod
    def _collections_of(item: Mapping[str, Any]) -> list[str]:
        """The uuids of the collections an item is in (``parentCollectionList``)."""
        listed = item.get("parentCollectionList")
        if listed is None:
            return []
        return [_uuid(k, "parentCollectionList") for k in _objects(listed, "parentCollectionList")]

    async def _remove_item(self, entry: Entry, here: str | None = None) -> None:
        """Take the item out of the collection it is listed in; delete it only where that was
        its last collection (the server's ``removeItem`` decides, atomically).

        The collections are read first: a stale listing must not send the collection DELETE
        for a collection the item has already left, because ``removeItem`` deletes an item
        whose only collection is another one. It is sent once, never retried, for the same
        reason (a repeat after a lost answer would delete the item from its last collection).
        """
        obj = await self._json_object(
            f"/items/{_sid(entry)}", "item", {"expand": "parentCollectionList"}
        )
        collections = self._collections_of(obj)
        # the collection it is removed from: the listing an item was seen in last may be
        # another one, when it is mapped into several (one directory node for all of them)
        here = here or entry.extra.get("collection") or ""
        if not here:
            if len(collections) > 1:
                log.warning(
                    "DSpace 6: %r is in %d collections; remove it from one of them through that "
                    "collection's directory",
                    entry.name,
                    len(collections),
                )
                raise errors.NotSupported(f"{entry.name!r} is in several collections")
            here = collections[0] if collections else ""
        elif here not in collections:
            log.info("item %s had already left collection %s", _sid(entry), here)
            return
        if not here:
            # in no collection at all (a workflow leftover): only the item itself can go
            await self.http.request("DELETE", f"/items/{_sid(entry)}", endpoint="item.delete")
            return
        try:
            await self.http.request(
                "DELETE",
                f"/collections/{here}/items/{_sid(entry)}",
                endpoint="collection.item.delete",
                idempotent=False,
                # CollectionsResource.deleteCollectionItem answers every refusal (no REMOVE
                # on the item or the collection, 401/404) as 500: the item was just found
                status_map={500: errors.PermissionDenied},
            )
        except errors.PermissionDenied:
            log.warning(
                "DSpace 6 refused to take %r out of its collection: removing needs the REMOVE "
                "right on the item and on the collection",
                entry.name,
            )
            raise
        if len(collections) > 1:
            log.info(
                "%r was unmapped from this collection; it stays in %d other collection(s)",
                entry.name,
                len(collections) - 1,
            )

    async def remove_from(self, entry: Entry, parent: Entry) -> None:
        here = _sid(parent) if self._type(parent) == "collection" else None
        await self._remove(entry, here)

    async def remove(self, entry: Entry) -> None:
        await self._remove(entry, None)

    async def _remove(self, entry: Entry, here: str | None) -> None:
        if self._type(entry) == "item":
            try:
                await self._remove_item(entry, here)
            except errors.NotFound:
                log.info("item %s was already deleted on the server", _sid(entry))
            return
        paths = {
            "bitstream": f"/bitstreams/{_sid(entry)}",
            "item": f"/items/{_sid(entry)}",
            "collection": f"/collections/{_sid(entry)}",
            "community": f"/communities/{_sid(entry)}",
        }
        path = paths.get(self._type(entry))
        if path is None:
            raise errors.NotSupported("DSpace 6: the site cannot be removed")
        try:
            await self.http.request("DELETE", path, endpoint=f"{self._type(entry)}.delete")
        except errors.NotFound:
            # already gone (e.g. the answer to an earlier attempt was lost): the goal is met
            log.info("%s was already deleted on the server", path)

    async def rename(self, entry: Entry, new_parent: Entry, new_name: str) -> Entry:
        kind = self._type(entry)
        if kind == "bitstream":
            if _sid(new_parent) != entry.extra.get("item"):
                raise errors.CrossDevice("DSpace 6 cannot move a bitstream to another item")
            await self.http.request(
                "PUT",
                f"/bitstreams/{_sid(entry)}",
                endpoint="bitstream.update",
                headers=SEND_JSON,
                # the description is overwritten by this call: send the current one back
                json={"name": new_name, "description": entry.extra.get("description") or None},
            )
            return replace(entry, name=new_name)
        if kind == "item":
            if _sid(new_parent) != entry.extra.get("collection"):
                raise errors.CrossDevice("DSpace 6 cannot move an item to another collection")
            return await self.set_meta(entry, "dc.title", new_name)
        if kind in ("collection", "community"):
            plural = "collections" if kind == "collection" else "communities"
            current = await self._json_object(f"/{plural}/{_sid(entry)}", kind)
            body = {f: current.get(f) for f in CONTAINER_FIELDS}
            if kind == "collection":
                body["license"] = current.get("license")
            body["name"] = new_name
            await self.http.request(
                "PUT",
                f"/{plural}/{_sid(entry)}",
                endpoint=f"{kind}.update",
                headers=SEND_JSON,
                json=body,
            )
            return replace(entry, name=new_name)
        raise errors.NotSupported("DSpace 6: the site cannot be renamed")

    def check_name(self, parent: Entry, name: str, kind: Kind) -> None:
        check_name(name)  # every DSpace 6 name is a metadata value: metadata.py

    def meta_separator(self, entry: Entry, key: str) -> str | None:
        multiple = self._type(entry) == "item" and key not in ITEM_OWN_KEYS and dc_key(key)
        return "\n" if multiple else None

    async def update_meta(self, entry: Entry, changes: Mapping[str, list[str] | None]) -> Entry:
        if self._type(entry) != "item":
            raise errors.NotSupported("DSpace 6: metadata can only be set on items")
        await update_item_metadata(self.http, _sid(entry), entry.meta, changes)
        return await self.stat(entry)

    async def set_meta(self, entry: Entry, key: str, value: str | None) -> Entry:
        if self._type(entry) != "item":
            raise errors.NotSupported("DSpace 6: metadata can only be set on items")
        # the same requests as a metadata file: a PUT of the key's values, or DELETE + PUT of
        # the rest (docfs/backends/dspace6/metadata.py). A removal is sent even when the
        # listing did not show the key: the server's own answer decides whether it is there.
        await update_item_metadata(
            self.http,
            _sid(entry),
            {**entry.meta, key: ""} if value is None else entry.meta,
            {key: None if value is None else value.split("\n")},
        )
        return await self.stat(entry)
