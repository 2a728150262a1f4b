"""DSpace 6 handlers for ``/communities`` and ``/collections``
(``CommunitiesResource``, ``CollectionsResource``; docs/protocols/dspace6.md)."""

from __future__ import annotations

from collections.abc import Iterable

from starlette.responses import Response

from docfs.emulators.dspace6 import rendering
from docfs.emulators.dspace6.bodies import Bodies, Req
from docfs.emulators.dspace6.errors import HttpError
from docfs.emulators.dspace6.model import Collection, Community, Item, container_name
from docfs.emulators.dspace6.rendering import Rendering, empty, expand_fields


class ContainerRoutes(Bodies, Rendering):
    """Communities and collections: listing, reading, creating, updating, deleting."""

    # ---- handlers: communities ----------------------------------------------------------------

    def _community_page(self, rq: Req, pool: Iterable[Community], default: int) -> Response:
        limit, offset = self._paging(rq, default)
        fields = expand_fields(rq.param("expand"))
        page = self._by_name(pool)[offset : offset + limit]
        return rendering.json_response(
            [self._community_json(c, fields, rq.who) for c in page if self._can(rq.who, "READ", c)]
        )

    def _h_communities(self, rq: Req) -> Response:
        return self._community_page(rq, self._communities.values(), 100)

    def _h_top_communities(self, rq: Req) -> Response:
        tops = (c for c in self._communities.values() if c.parent is None)
        return self._community_page(rq, tops, 20)

    def _h_community(self, rq: Req, cid: str) -> Response:
        c = self._find(rq.who, Community, cid, "READ")
        return rendering.json_response(
            self._community_json(c, expand_fields(rq.param("expand")), rq.who)
        )

    def _h_subcommunities(self, rq: Req, cid: str) -> Response:
        c = self._find(rq.who, Community, cid, "READ")
        return self._community_page(rq, c.subs, 20)

    def _h_community_collections(self, rq: Req, cid: str) -> Response:
        c = self._find(rq.who, Community, cid, "READ")
        limit, offset = self._paging(rq, 100)
        fields = expand_fields(rq.param("expand"))
        page = self._by_name(c.collections)[offset : offset + limit]
        return rendering.json_response(
            [self._collection_json(k, fields, rq.who) for k in page if self._can(rq.who, "READ", k)]
        )

    def _h_create_community(self, rq: Req) -> Response:
        body = self._container_body(rq, "Community")
        if rq.who is None or not rq.who.admin:
            raise HttpError(401)
        c = self._create_community(
            container_name(self._string(body, "name")), None, True, self._texts(body)
        )
        return rendering.json_response(self._community_json(c, [""], rq.who))

    def _h_create_subcommunity(self, rq: Req, cid: str) -> Response:
        body = self._container_body(rq, "Community")
        parent = self._find(rq.who, Community, cid, "WRITE")
        # CommunityService.create always adds an Anonymous READ policy
        c = self._create_community(
            container_name(self._string(body, "name")), parent, True, self._texts(body)
        )
        return rendering.json_response(self._community_json(c, [""], rq.who))

    def _h_create_collection(self, rq: Req, cid: str) -> Response:
        body = self._container_body(rq, "Collection")
        parent = self._find(rq.who, Community, cid, "WRITE")
        # CollectionService.create always adds Anonymous READ (and default item/bitstream READ)
        k = self._create_collection(
            container_name(self._string(body, "name")),
            parent,
            True,
            self._texts(body),
            license_text=self._string(body, "license"),
        )
        return rendering.json_response(self._collection_json(k, [""], rq.who))

    def _h_update_community(self, rq: Req, cid: str) -> Response:
        body = self._container_body(rq, "Community")
        c = self._find(rq.who, Community, cid, "WRITE")
        # every field is overwritten, nulls included
        c.name = container_name(self._string(body, "name"))
        c.texts = self._texts(body)
        return empty()

    def _h_delete_community(self, rq: Req, cid: str) -> Response:
        c = self._find(rq.who, Community, cid, "DELETE")
        self._delete_community(c)
        return empty()

    def _h_delete_community_collection(self, rq: Req, cid: str, kid: str) -> Response:
        c = self._find(rq.who, Community, cid, "REMOVE")
        k = self._resolve(Collection, kid)
        if k.community is not c:
            raise HttpError(404)
        self._delete_collection(k)  # its only parent: removing it deletes it
        return empty()

    def _h_delete_subcommunity(self, rq: Req, cid: str, sid: str) -> Response:
        c = self._find(rq.who, Community, cid, "REMOVE")
        sub = self._resolve(Community, sid)
        if sub.parent is not c:
            raise HttpError(404)
        self._delete_community(sub)
        return empty()

    # ---- handlers: collections ----------------------------------------------------------------

    def _h_collections(self, rq: Req) -> Response:
        limit, offset = self._paging(rq, 100)
        fields = expand_fields(rq.param("expand"))
        page = self._by_name(self._collections.values())[offset : offset + limit]
        return rendering.json_response(
            [self._collection_json(k, fields, rq.who) for k in page if self._can(rq.who, "READ", k)]
        )

    def _h_collection(self, rq: Req, kid: str) -> Response:
        k = self._find(rq.who, Collection, kid, "READ")
        page = self._paging(rq, 100)
        fields = expand_fields(rq.param("expand"))
        return rendering.json_response(self._collection_json(k, fields, rq.who, page))

    def _h_collection_items(self, rq: Req, kid: str) -> Response:
        k = self._find(rq.who, Collection, kid, "READ")
        limit, offset = self._paging(rq, 100)
        fields = expand_fields(rq.param("expand"))
        # the page is cut first (SQL LIMIT/OFFSET over archived items ordered by UUID), and
        # only then filtered, so it can be short although later pages hold entries
        page = [self._items[u] for u in k.items[offset : offset + limit]]
        return rendering.json_response(
            [self._item_json(i, fields, rq.who) for i in page if self._listed(rq.who, i)]
        )

    def _h_create_item(self, rq: Req, kid: str) -> Response:
        body = self._check_props(self._body_json(rq), "Item")
        k = self._find(rq.who, Collection, kid, "WRITE")
        if body is None:
            raise HttpError(500)
        metadata = self._parse_fields(
            self._metadata_entries(body.get("metadata")), strict_dots=True
        )
        item = self._create_item(k, metadata, public=self._is_public(k), review=k.workflow)
        return rendering.json_response(self._item_json(item, [""], rq.who, fresh=True))

    def _h_update_collection(self, rq: Req, kid: str) -> Response:
        body = self._container_body(rq, "Collection")
        k = self._find(rq.who, Collection, kid, "WRITE")
        k.name = container_name(self._string(body, "name"))
        k.license = self._string(body, "license")
        k.texts = self._texts(body)
        return empty()

    def _h_delete_collection(self, rq: Req, kid: str) -> Response:
        k = self._find(rq.who, Collection, kid, "DELETE")
        self._delete_collection(k)
        return empty()

    def _h_delete_collection_item(self, rq: Req, kid: str, iid: str) -> Response:
        # every 404/401 of this method is thrown without aborting the context first, so
        # processFinally turns it into 500 (docs/protocols/dspace6.md, Errors)
        try:
            k = self._resolve(Collection, kid)
            item = self._resolve(Item, iid)
        except HttpError:
            raise HttpError(500) from None
        if not (self._can(rq.who, "REMOVE", item) and self._can(rq.who, "REMOVE", k)):
            raise HttpError(500)
        self._remove_item_from(k, item)
        return empty()

    def _h_find_collection(self, rq: Req) -> Response:
        # the whole body is the name: JSON quotes around it would be part of it
        name = rq.body.decode("utf-8", "replace")
        for k in self._by_name(self._collections.values()):
            if self._can(rq.who, "READ", k) and k.name == name:
                return rendering.json_response(self._collection_json(k, [""], rq.who))
        return Response(b"", status_code=204)
