"""Reading a DSpace 7+ repository: listings (communities, collections, Discovery for
items, one embedded request per item), stat, downloads, thumbnails and PDFs served with a
cover page."""

from __future__ import annotations

import dataclasses
import logging
import re
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import suppress

from docfs import errors
from docfs.backends._thumbs import fetch_bytes, match_thumbnails
from docfs.backends.base import Entry, Kind, Op, Sink, Thumbnail
from docfs.backends.dspace7.core import DSpace7Core
from docfs.backends.dspace7.hal import (
    API_SECTION,
    JSON,
    ORIGINAL,
    PAGE_SIZE,
    parse_time,
    primary_marked,
)

log = logging.getLogger("docfs.dspace7")


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


def _extra_of(entry: Entry) -> dict[str, str]:
    return {k: v for k, v in entry.extra.items() if k not in ("type", "uuid", "parent")}


class Reading(DSpace7Core):
    """Listing, stat, download and thumbnails."""

    # ---- Backend: reading ------------------------------------------------------------------

    async def connect(self) -> None:
        response = await self.http.request("GET", f"{self.api}/", endpoint="root", auth=False)
        root = self._decode(response)
        if root.get("type") != "root" or "dspaceVersion" not in root:
            raise errors.ProtocolError(f"{self.http.base_url} does not serve a DSpace 7+ API")
        self.version = str(root["dspaceVersion"])
        self.ui_url = str(root.get("dspaceUI") or "").rstrip("/")
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
        async for entry in self._list_dir(directory):
            # inside an earlier version of an item (searching.py): nothing can be written
            yield (
                dataclasses.replace(entry, read_only=True, ops=frozenset())
                if directory.read_only
                else entry
            )

    async def _list_dir(self, directory: Entry) -> AsyncIterator[Entry]:
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
            async for entry, _ in self._list_items(directory):
                yield entry
        elif kind == "item":
            for entry in await self._list_item(directory):
                yield entry
        elif kind == "bundle":
            async for entry in self._list_bundle(directory):
                yield entry
        else:
            raise errors.InvalidArgument(f"{directory.name}: not a directory")

    async def list_dir_deep(
        self, directory: Entry
    ) -> AsyncIterator[tuple[Entry, Sequence[Entry] | None]]:
        """A collection's items each with its files: the Discovery pages ask for the embeds of
        an item's own listing, which the server applies to every result's ``indexableObject``
        as to ``GET /core/items/{id}`` (docs/protocols/dspace7.md, "A walk")."""
        if self._type(directory) != "collection":
            async for entry in self.list_dir(directory):
                yield entry, None
            return
        async for item, obj in self._list_items(directory, deep=True):
            yield item, None if obj is None else await self._item_files(item, obj)

    async def _list_items(
        self, collection: Entry, deep: bool = False
    ) -> AsyncIterator[tuple[Entry, JSON | None]]:
        """The items of ``collection``, each with its search result's object when ``deep``
        (with the embeds of ``_item_params``) and None for those the index does not show."""
        uuid = self._uuid(collection)
        seen: set[str] = set()
        params = [("scope", uuid), ("dsoType", "ITEM")]
        source = self._pages(
            "discover/search/objects",
            "objects",
            endpoint="discover/search",
            params=params + self._item_params() if deep else params,
            nested=lambda data: (data.get("_embedded") or {}).get("searchResult") or {},
            # a walk waits for the whole collection: its pages at once, not one by one
            ahead=deep,
        )
        async for result in source:
            obj = (result.get("_embedded") or {}).get("indexableObject")
            # inserts while paging shift results between pages: never show one twice
            if not isinstance(obj, dict) or obj.get("uuid") in seen:
                continue
            seen.add(str(obj["uuid"]))
            yield self._dir(obj, "item", uuid), obj if deep else None
        for entry in await self._pending_items(uuid, seen):
            yield entry, None
        for draft in list(self._drafts.values()):
            # a workspace item is in no search index: shown from what we know
            if draft.collection == uuid and draft.entry.extra["uuid"] not in seen:
                yield draft.entry, None

    async def _pending_items(self, collection: str, seen: set[str]) -> list[Entry]:
        """Items we created that the search index does not show yet (docs/protocols/dspace7.md,
        "Discovery lags behind")."""
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
            # which file is its bundle's primary: an overwrite by upload-and-swap deletes the
            # old bitstream, which unsets it (BundleServiceImpl.removeBitstream), and sets it
            # again on the new one (BundlePrimaryBitstreamLinkRepository, 7.0+)
            ("embed", "bundles/primaryBitstream"),
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
        return await self._item_files(item, data)

    async def _item_files(self, item: Entry, data: JSON) -> list[Entry]:
        """The listing of ``item`` from its answer with the embeds of ``_item_params``."""
        uuid = self._uuid(item)
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
                primary = ((bundle.get("_embedded") or {}).get("primaryBitstream") or {}).get(
                    "uuid"
                )
                async for obj in self._bundle_files(bundle):
                    file = self._file(
                        obj, item=uuid, bundle=bundle_uuid, bundle_name=name, mtime=mtime
                    )
                    if primary is not None and obj.get("uuid") == primary:
                        file = primary_marked(file)
                    entries.append(file)
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
            # the stored MD5 is not that of the served bytes
            checksum=None,
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
