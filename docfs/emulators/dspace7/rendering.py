"""DSpace 7's answers: HAL JSON of every object (``_links`` with absolute hrefs, ``embed=``
projections), Spring Data pages, the EPerson, workspace- and workflow-item shapes, and Spring
Boot's error JSON."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from starlette.responses import Response

from docfs.emulators.dspace7.context import Ctx
from docfs.emulators.dspace7.model import (
    DSO,
    Bitstream,
    Bundle,
    Collection,
    Community,
    EPerson,
    Item,
    Model,
    WorkflowItem,
    WorkspaceItem,
)
from docfs.emulators.dspace7.wire import (
    API_PATH,
    HAL,
    JSON,
    PAGE_DEFAULT,
    PAGE_MAX,
    REASONS,
    Fail,
    iso,
)


class Rendering(Model):
    """HAL shapes of the model's objects (callers hold the lock)."""

    # ---- responses -------------------------------------------------------------------------

    @staticmethod
    def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
        body = json.dumps(data, ensure_ascii=False).encode()
        response = Response(body, status_code=status, headers=headers)
        response.headers["content-type"] = HAL
        return response

    @staticmethod
    def _empty(status: int = 204, headers: dict[str, str] | None = None) -> Response:
        return Response(b"", status_code=status, headers=headers)

    @staticmethod
    def _error(fail: Fail, path: str) -> Response:
        if fail.status == 304:
            return Response(b"", status_code=304, headers=fail.headers)
        body = {
            "timestamp": iso(time.time()),
            "status": fail.status,
            "error": REASONS.get(fail.status, "Error"),
            "message": fail.message,
            "path": path,
        }
        response = Response(
            json.dumps(body).encode(), status_code=fail.status, headers=fail.headers
        )
        response.headers["content-type"] = "application/json;charset=UTF-8"
        return response

    # ---- objects ---------------------------------------------------------------------------

    def _url(self, ctx: Ctx, dso: DSO) -> str:
        section = {
            "community": "core/communities",
            "collection": "core/collections",
            "item": "core/items",
            "bundle": "core/bundles",
            "bitstream": "core/bitstreams",
        }[dso.type]
        return f"{ctx.api}/{section}/{dso.uuid}"

    @staticmethod
    def _metadata(dso: DSO) -> dict[str, list[dict[str, Any]]]:
        out: dict[str, list[dict[str, Any]]] = {}
        for key in sorted(dso.metadata):
            values = []
            for place, stored in enumerate(dso.metadata[key]):
                value = {"value": None, "language": None, "authority": None, "confidence": -1}
                value.update(stored)
                value["place"] = place
                values.append(value)
            out[key] = values
        return out

    def _render(
        self, ctx: Ctx, dso: DSO, embeds: dict[str, Any] | None = None, path: str = ""
    ) -> JSON:
        self_url = self._url(ctx, dso)
        data: JSON = {
            "id": dso.uuid,
            "uuid": dso.uuid,
            "name": dso.name,
            "handle": dso.handle,
            "metadata": self._metadata(dso),
        }
        links: dict[str, str] = {}
        if isinstance(dso, Community):
            data["archivedItemsCount"] = self._archived_count(dso)
            links = {r: f"{self_url}/{r}" for r in ("collections", "logo", "subcommunities")}
            links |= {r: f"{self_url}/{r}" for r in ("parentCommunity", "adminGroup")}
        elif isinstance(dso, Collection):
            data["archivedItemsCount"] = self._archived_count(dso)
            for rel in ("harvester", "itemtemplate", "license", "logo", "mappedItems"):
                links[rel] = f"{self_url}/{rel}"
            for rel in ("parentCommunity", "adminGroup", "submittersGroup", "workflowGroups"):
                links[rel] = f"{self_url}/{rel}"
        elif isinstance(dso, Item):
            data |= {
                "inArchive": dso.in_archive,
                "discoverable": dso.discoverable,
                "withdrawn": dso.withdrawn,
                "lastModified": iso(dso.last_modified),
                "entityType": dso.entity_type,
            }
            for rel in ("accessStatus", "bundles", "identifiers", "mappedCollections"):
                links[rel] = f"{self_url}/{rel}"
            for rel in ("owningCollection", "relationships", "version", "templateItemOf"):
                links[rel] = f"{self_url}/{rel}"
            links["thumbnail"] = f"{self_url}/thumbnail"
        elif isinstance(dso, Bundle):
            links = {r: f"{self_url}/{r}" for r in ("item", "bitstreams", "primaryBitstream")}
        elif isinstance(dso, Bitstream):
            bundle = self._objects.get(dso.bundle or "")
            data["handle"] = None
            data |= {
                "bundleName": bundle.name if bundle is not None else None,
                "sizeBytes": len(dso.content),
                "checkSum": {"checkSumAlgorithm": "MD5", "value": dso.md5},
                "sequenceId": dso.sequence_id,
            }
            for rel in ("content", "bundle", "format", "thumbnail", "accessStatus"):
                links[rel] = f"{self_url}/{rel}"
        data["type"] = dso.type
        data["_links"] = {rel: {"href": href} for rel, href in links.items()}
        data["_links"]["self"] = {"href": self_url}
        embedded = self._embedded(ctx, dso, ctx.embeds if embeds is None else embeds, path)
        if embedded:
            data["_embedded"] = embedded
        return data

    def _relations(self, ctx: Ctx, dso: DSO) -> dict[str, tuple[str, Any]]:
        """The embeddable relations of an object: rel → ("one", obj|None) or ("many", list)."""
        one = "one"
        many = "many"
        objs = self._objects
        if isinstance(dso, Community):
            return {
                "subcommunities": (many, self._sub(ctx, dso, Community)),
                "collections": (many, self._sub(ctx, dso, Collection)),
                "parentCommunity": (one, objs.get(dso.parent or "")),
                "logo": (one, objs.get(dso.logo or "")),
            }
        if isinstance(dso, Collection):
            return {
                "parentCommunity": (one, objs.get(dso.parent)),
                "logo": (one, objs.get(dso.logo or "")),
                "mappedItems": (many, self._mapped_into(ctx, dso)),
            }
        if isinstance(dso, Item):
            return {
                "bundles": (many, [objs[u] for u in dso.bundles]),
                "owningCollection": (one, objs.get(dso.owning or "")),
                "mappedCollections": (many, [objs[u] for u in dso.mapped if u in objs]),
            }
        if isinstance(dso, Bundle):
            return {
                "bitstreams": (many, [objs[u] for u in dso.bitstreams]),
                "item": (one, objs.get(dso.item)),
                "primaryBitstream": (one, objs.get(dso.primary or "")),
            }
        if isinstance(dso, Bitstream):
            return {"bundle": (one, objs.get(dso.bundle or ""))}
        return {}

    def _embedded(self, ctx: Ctx, dso: DSO, embeds: dict[str, Any], path: str) -> JSON:
        if not embeds:
            return {}
        relations = self._relations(ctx, dso)
        wanted = {rel: embeds["*"] for rel in relations} if "*" in embeds else embeds
        out: JSON = {}
        for rel, sub in wanted.items():
            if rel not in relations:
                continue
            kind, value = relations[rel]
            full = f"{path}{rel}"
            if kind == "one":
                out[rel] = None if value is None else self._render(ctx, value, sub, full + "/")
                continue
            # embed.size: the full path ("bundles/bitstreams=N", DSpace 8+) or the bare
            # relation name at any level ("bitstreams=N", 7.x); both are honoured
            size = ctx.embed_sizes.get(full) or ctx.embed_sizes.get(rel) or PAGE_DEFAULT
            url = f"{self._url(ctx, dso)}/{rel}"
            out[rel] = self._page_body(
                ctx, rel, value, url, 0, size, {}, self._drawer(ctx, sub, full + "/")
            )
        return out

    def _drawer(self, ctx: Ctx, embeds: dict[str, Any], path: str) -> Callable[[DSO], JSON]:
        """Render list members with ``embeds``; ``path`` is their relation path (for sizes)."""

        def draw(dso: DSO) -> JSON:
            return self._render(ctx, dso, embeds, path)

        return draw

    # ---- pages -----------------------------------------------------------------------------

    def _page_params(self, ctx: Ctx, default: int, cap: int) -> tuple[int, int]:
        """Spring Data's lenient paging: bad values fall back to the defaults, size is capped."""
        try:
            page = max(0, int(ctx.param("page") or 0))
        except ValueError:
            page = 0
        try:
            size = int(ctx.param("size") or default)
        except ValueError:
            size = default
        if size < 1:
            size = default
        return page, min(size, cap)

    def _page_body(
        self,
        ctx: Ctx,
        rel: str,
        objs: list[DSO],
        url: str,
        page: int,
        size: int,
        extra: dict[str, str],
        render: Callable[[DSO], JSON] | None = None,
    ) -> JSON:
        total = len(objs)
        pages = math.ceil(total / size) if total else 0
        chunk = objs[page * size : (page + 1) * size]
        draw = render or self._drawer(ctx, ctx.embeds, "")
        return {
            "_embedded": {rel: [draw(o) for o in chunk]},
            "_links": self._page_links(url, page, size, pages, extra),
            "page": {"size": size, "totalElements": total, "totalPages": pages, "number": page},
        }

    @staticmethod
    def _page_links(
        url: str, page: int, size: int, pages: int, extra: dict[str, str]
    ) -> dict[str, dict[str, str]]:
        def href(number: int) -> dict[str, str]:
            return {"href": f"{url}?{urlencode({**extra, 'page': number, 'size': size})}"}

        links = {"self": href(page)}
        if pages:
            links["first"] = href(0)
            links["last"] = href(pages - 1)
        if page > 0:
            links["prev"] = href(min(page, pages) - 1 if pages else 0)
        if page + 1 < pages:
            links["next"] = href(page + 1)
        return links

    def _list(self, ctx: Ctx, rel: str, objs: list[DSO], cap: int = PAGE_MAX) -> Response:
        page, size = self._page_params(ctx, PAGE_DEFAULT, cap)
        url = f"{ctx.api}{ctx.request.url.path[len(API_PATH) :]}"
        extra = {
            k: v for k, v in ctx.request.query_params.multi_items() if k not in ("page", "size")
        }
        return self._json(self._page_body(ctx, rel, objs, url, page, size, extra))

    def _sub(self, ctx: Ctx, community: DSO, kind: type[DSO]) -> list[DSO]:
        """Readable sub-communities or collections, sorted by name as DSpace does."""
        found = [
            d
            for d in self._objects.values()
            if isinstance(d, kind)
            and getattr(d, "parent", None) == community.uuid
            and self._can_read(ctx.caller, d)
        ]
        return sorted(found, key=lambda d: ((d.name or "").lower(), d.uuid))

    def _mapped_into(self, ctx: Ctx, collection: DSO) -> list[DSO]:
        return [
            d
            for d in self._objects.values()
            if isinstance(d, Item)
            and collection.uuid in d.mapped
            and d.in_archive
            and self._can_read(ctx.caller, d)
        ]

    # ---- people and submissions -------------------------------------------------------------

    def _eperson_json(self, ctx: Ctx, person: EPerson) -> JSON:
        url = f"{ctx.api}/eperson/epersons/{person.uuid}"
        return {
            "id": person.uuid,
            "uuid": person.uuid,
            "name": person.email,
            "handle": None,
            "metadata": {},
            "netid": None,
            "lastActive": iso(time.time()),
            "canLogIn": True,
            "email": person.email,
            "requireCertificate": False,
            "selfRegistered": False,
            "type": "eperson",
            "_links": {"groups": {"href": f"{url}/groups"}, "self": {"href": url}},
        }

    def _workspace_json(self, ctx: Ctx, ws: WorkspaceItem) -> JSON:
        item = self._objects[ws.item]
        url = f"{ctx.api}/submission/workspaceitems/{ws.id}"
        data: JSON = {
            "id": ws.id,
            "lastModified": iso(ws.last_modified),
            "sections": {
                "traditionalpageone": self._metadata(item),
                "license": {
                    "url": None,
                    "acceptanceDate": None,
                    "granted": ws.license_granted,
                },
                "upload": {"files": []},
            },
            "errors": self._validation_errors(ws),
            "type": "workspaceitem",
            "_links": {
                "collection": {"href": f"{url}/collection"},
                "item": {"href": f"{url}/item"},
                "submissionDefinition": {"href": f"{url}/submissionDefinition"},
                "submitter": {"href": f"{url}/submitter"},
                "self": {"href": url},
            },
        }
        embedded: JSON = {}
        if "item" in ctx.embeds or "*" in ctx.embeds:
            embedded["item"] = self._render(ctx, item, ctx.embeds.get("item", {}))
        if "collection" in ctx.embeds or "*" in ctx.embeds:
            embedded["collection"] = self._render(ctx, self._objects[ws.collection], {})
        if embedded:
            data["_embedded"] = embedded
        return data

    def _workflow_json(self, ctx: Ctx, wf: WorkflowItem) -> JSON:
        url = f"{ctx.api}/workflow/workflowitems/{wf.id}"
        return {
            "id": wf.id,
            "lastModified": iso(self._objects[wf.item].last_modified),
            "type": "workflowitem",
            "_links": {
                "collection": {"href": f"{url}/collection"},
                "item": {"href": f"{url}/item"},
                "submitter": {"href": f"{url}/submitter"},
                "self": {"href": url},
            },
        }
