"""Search in DSpace 7+ (issue 20): Discovery, ``GET /api/discover/search/objects``.

``DiscoveryRestController.getSearchObjects`` (dspace-server-webapp) takes ``query`` (handed
to Solr as ``q`` by ``DiscoverQueryBuilder``: Lucene syntax, so ``dc.subject:physics``
searches one field), ``scope`` (the uuid of a community or collection) and ``dsoType``, and
answers ``_embedded.searchResult`` pages of at most 100 results, each wrapping the object as
``_embedded.indexableObject``. Items, collections and communities are found, as in the web
UI's default search. See docs/protocols/dspace7.md, "Search".

Item versions (``/api/versioning``, docs/protocols/dspace7.md "Item versions"): an item's
``version`` (204: it has none), that version's history, and the history's versions page by
page (newest first) with each version's item embedded — three requests for a short history.
An earlier version is its own (archived, no longer discoverable) item: shown as a read-only
directory of its files. A bitstream has no versions.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator

from docfs import errors
from docfs.backends.base import Entry, Version
from docfs.backends.dspace7.core import DSpace7Core
from docfs.backends.dspace7.hal import parse_time

#: the Discovery object types that are directories here, by their ``type``
_KINDS = {"item": "item", "collection": "collection", "community": "community"}


class Searching(DSpace7Core):
    """``Backend.search`` over Discovery, ``Backend.versions`` of items."""

    async def search(self, scope: Entry | None, query: str, limit: int) -> AsyncIterator[Entry]:
        params = {"query": query}
        kind = self._type(scope) if scope is not None else "root"
        if kind in ("community", "collection"):
            params["scope"] = self._uuid(scope) if scope is not None else ""
        elif kind != "root":
            # Discovery scopes only by community or collection
            raise errors.NotSupported(
                f"DSpace 7: search can be limited to a community or collection, not a {kind}"
            )
        sent = 0
        seen: set[str] = set()
        async for result in self._pages(
            "discover/search/objects",
            "objects",
            endpoint="discover/search",
            params=params,
            nested=lambda data: (data.get("_embedded") or {}).get("searchResult") or {},
        ):
            obj = (result.get("_embedded") or {}).get("indexableObject")
            if not isinstance(obj, dict) or "uuid" not in obj:
                continue
            found = _KINDS.get(str(obj.get("type")))
            # inserts while paging shift results between pages: never show one twice
            if found is None or obj["uuid"] in seen:
                continue
            seen.add(str(obj["uuid"]))
            yield self._dir(obj, found, "")
            sent += 1
            if sent >= limit:
                return

    async def versions(self, entry: Entry) -> list[Version]:
        if self._type(entry) != "item":
            raise errors.NotSupported(
                "DSpace 7: items have versions (ITEM/.versions/), files and collections do not"
            )
        response = await self.http.request(
            "GET", f"{self.api}/core/items/{self._uuid(entry)}/version", endpoint="item-version"
        )
        if response.status_code == 204 or not response.content:
            return []  # ItemVersionLinkRepository: no version, no content
        mine = self._decode(response)
        history = await self._json(
            "GET", f"versioning/versions/{mine['id']}/versionhistory", endpoint="versionhistory"
        )
        current = int(mine.get("version") or 0)
        out: list[Version] = []
        async for version in self._pages(
            f"versioning/versionhistories/{history['id']}/versions",
            "versions",
            endpoint="versionhistory-versions",
            params={"embed": "item"},
        ):
            number = int(version.get("version") or 0)
            item = (version.get("_embedded") or {}).get("item")
            if not isinstance(item, dict) or "uuid" not in item or not 0 < number < current:
                continue  # a newer version, or one whose item we may not read
            old = self._dir(item, "item", "")
            out.append(
                Version(
                    number,
                    parse_time(version.get("created")),
                    dataclasses.replace(old, read_only=True, ops=frozenset()),
                )
            )
        return sorted(out, key=lambda v: v.number)
