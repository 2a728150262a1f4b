"""DSpace 7's identifiers and Discovery: ``/pid/find`` and ``/discover/search/objects`` (the
``_embedded.searchResult`` nesting, its 100-per-page cap, scopes, sorting, the index delay)."""

from __future__ import annotations

import re
import time
from typing import Any

from starlette.responses import Response

from docfs.emulators.dspace7.context import Ctx
from docfs.emulators.dspace7.handlers import Handlers
from docfs.emulators.dspace7.model import DSO, Collection, Community, Item
from docfs.emulators.dspace7.wire import (
    DISCOVERY_MAX,
    JSON,
    PAGE_DEFAULT,
    SORT_FIELDS,
    UUID_RX,
    Fail,
)


class DiscoveryRoutes(Handlers):
    """Identifiers and search."""

    def superseded(self, uuid: str) -> bool:
        """Whether the item is an earlier version of another (``versioning.VersioningRoutes``
        knows; this base knows no versions)."""
        return False

    def _pid_find(self, ctx: Ctx) -> Response:
        """``IdentifierRestController``: 302 to the object, 404 if no provider resolves the
        identifier. Handles as ``HandleIdentifierProvider`` reads them; DOIs (``doi:``,
        ``doi.org`` URLs) as ``DOIIdentifierProvider.getObjectByDOI`` does, found only once
        ``register_doi`` gave one (the emulator compares DOIs without case, as the DOI system
        does)."""
        identifier = (ctx.param("id") or "").strip()
        doi = re.match(r"^(?:doi:|https?://(?:dx\.)?doi\.org/)(10\..+)$", identifier, re.I)
        if doi is not None:
            dso = self._objects.get(self._dois.get(doi.group(1).lower(), ""))
        else:
            identifier = re.sub(r"^(hdl:|https?://hdl\.handle\.net/)", "", identifier)
            dso = self._objects.get(self._handles.get(identifier, ""))
        if dso is None:
            raise Fail(404)
        return self._empty(302, {"Location": self._url(ctx, dso)})

    def _dso_find(self, ctx: Ctx) -> Response:
        """``UUIDLookupRestController``: any object by uuid, as a 302 to its canonical URL after
        a READ check (401 anonymous, 403 logged in); 404 if no object has it. A missing or
        malformed ``uuid`` fails Spring's parameter binding: 400."""
        raw = (ctx.param("uuid") or "").strip()
        if not re.fullmatch(UUID_RX, raw):
            raise Fail(400)
        dso = self._objects.get(raw.lower())
        if dso is None:
            raise Fail(404)
        self._require_read(ctx, dso)
        return self._empty(302, {"Location": self._url(ctx, dso)})

    def _search(self, ctx: Ctx) -> Response:
        scope = ctx.param("scope")
        dso_type = (ctx.param("dsoType") or "").upper()
        query = ctx.param("query")
        sort_by, order = self._sort(ctx.param("sort"))
        candidates = self._search_candidates(ctx, scope, dso_type)
        if query and query.strip() not in ("*", "*:*"):
            terms = _parse_query(query)
            candidates = [d for d in candidates if _matches(d, terms)]
        candidates = self._sorted(candidates, sort_by, order)
        page, size = self._page_params(ctx, PAGE_DEFAULT, DISCOVERY_MAX)
        url = f"{ctx.api}/discover/search/objects"
        extra = {
            k: v for k, v in ctx.request.query_params.multi_items() if k not in ("page", "size")
        }

        def result(dso: DSO) -> JSON:
            return {
                "hitHighlights": {},
                "type": "discover",
                "_links": {"indexableObject": {"href": self._url(ctx, dso)}},
                "_embedded": {"indexableObject": self._render(ctx, dso)},
            }

        body = self._page_body(ctx, "objects", candidates, url, page, size, extra, render=result)
        return self._json(
            {
                "id": None,
                "scope": scope,
                "query": query,
                "appliedFilters": [],
                "sort": {"by": sort_by, "order": order},
                "configuration": ctx.param("configuration") or "default",
                "type": "discover",
                "_embedded": {"searchResult": body, "facets": []},
                "_links": {"self": {"href": str(ctx.request.url)}},
            }
        )

    @staticmethod
    def _sort(param: str | None) -> tuple[str, str]:
        if not param:
            return "score", "DESC"
        by, _, order = param.partition(",")
        order = (order or "ASC").upper()
        if by not in SORT_FIELDS or order not in ("ASC", "DESC"):
            raise Fail(400, f"The sort option {param} is invalid")
        return by, order

    def _search_candidates(self, ctx: Ctx, scope: str | None, dso_type: str) -> list[DSO]:
        """Indexed objects within scope that the caller may see, in index (creation) order."""
        now = time.time()
        collections: set[str] = set()
        if scope is not None:
            scope_obj = self._objects.get(scope)
            if not isinstance(scope_obj, Community | Collection):
                return []  # unknown scope: an empty result (emulator choice)
            collections = (
                {scope} if isinstance(scope_obj, Collection) else self._collections_under(scope_obj)
            )
        found: list[DSO] = []
        for dso in self._objects.values():
            if dso_type and dso.type.upper() != dso_type:
                continue
            if isinstance(dso, Item):
                if not dso.in_archive or dso.indexed_at > now:
                    continue
                if self.superseded(dso.uuid):
                    continue  # discovery.xml's default filter: latestVersion:true
                if not ctx.admin and (dso.withdrawn or not dso.discoverable):
                    continue
                if scope is not None and not (
                    dso.owning in collections or collections & set(dso.mapped)
                ):
                    continue
            elif isinstance(dso, Community | Collection):
                if scope is not None and not self._below(dso, scope):
                    continue
            else:
                continue
            if self._can_read(ctx.caller, dso):
                found.append(dso)
        return found

    def _below(self, dso: DSO, ancestor: str) -> bool:
        parent = self._parent(dso)
        while parent is not None:
            if parent.uuid == ancestor:
                return True
            parent = self._parent(parent)
        return False

    @staticmethod
    def _sorted(objs: list[DSO], by: str, order: str) -> list[DSO]:
        if by == "score":
            return objs
        if by == "lastModified":

            def key(d: DSO) -> Any:
                return d.last_modified
        else:

            def key(d: DSO) -> Any:
                values = d.metadata.get(by) or [{}]
                return (str(values[0].get("value") or "").lower(), d.uuid)

        return sorted(objs, key=key, reverse=order == "DESC")


#: one query term: ``field:value`` or a bare ``value`` (``"a phrase"`` kept whole)
_TERM = re.compile(r'(?:([A-Za-z][\w.]*):)?("[^"]*"|\S+)')


def _parse_query(query: str) -> list[tuple[str | None, list[str]]]:
    """The Lucene terms of ``query`` as (field or None, the value's tokens).

    The server hands ``query`` to Solr as ``q`` (``DiscoverQueryBuilder`` →
    ``SolrServiceImpl.resolveToSolrQuery``, dspace-api): ``dc.subject:physics`` searches the
    field of that name, a bare word the default field every metadata value is copied into
    (``search_text``, ``dspace/solr/search/conf/schema.xml``). Values are tokenized and lower-
    cased (``text`` field type), so a word matches a whole word; ``word*`` matches a prefix.
    The emulator requires every term (it knows no ``OR``/``NOT``)."""
    return [
        (field_name or None, _tokens(value.strip('"')))
        for field_name, value in _TERM.findall(query.strip())
        if _tokens(value.strip('"'))
    ]


def _tokens(text: str) -> list[str]:
    return re.findall(r"[\w*]+", text.lower())


def _matches(dso: DSO, terms: list[tuple[str | None, list[str]]]) -> bool:
    for field_name, wanted in terms:
        if field_name is None:
            values = [str(v.get("value") or "") for vs in dso.metadata.values() for v in vs]
            values.append(dso.name or "")
        else:
            values = [str(v.get("value") or "") for v in dso.metadata.get(field_name) or []]
        if not any(_phrase_in(wanted, _tokens(value)) for value in values):
            return False
    return True


def _phrase_in(wanted: list[str], tokens: list[str]) -> bool:
    """``wanted`` occurs in ``tokens`` as consecutive words (a trailing ``*``: a prefix)."""

    def same(want: str, have: str) -> bool:
        return have.startswith(want[:-1]) if want.endswith("*") else have == want

    width = len(wanted)
    return any(
        all(same(w, h) for w, h in zip(wanted, tokens[i : i + width], strict=True))
        for i in range(len(tokens) - width + 1)
    )
