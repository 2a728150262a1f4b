"""Search in DSpace 7+ (issue 20): Discovery, ``GET /api/discover/search/objects``.

``DiscoveryRestController.getSearchObjects`` (dspace-server-webapp) takes ``query`` (handed
to Solr as ``q`` by ``DiscoverQueryBuilder``: Lucene syntax, so ``dc.subject:physics``
searches one field), ``scope`` (the uuid of a community or collection) and ``dsoType``, and
answers ``_embedded.searchResult`` pages of at most 100 results, each wrapping the object as
``_embedded.indexableObject``. Items, collections and communities are found, as in the web
UI's default search. See docs/protocols/dspace7.md, "Search".
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from docfs import errors
from docfs.backends.base import Entry
from docfs.backends.dspace7.core import DSpace7Core

#: the Discovery object types that are directories here, by their ``type``
_KINDS = {"item": "item", "collection": "collection", "community": "community"}


class Finding(DSpace7Core):
    """``Backend.search`` over Discovery."""

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
