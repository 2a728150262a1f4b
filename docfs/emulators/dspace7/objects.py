"""DSpace 7's ``/core/communities``, ``/core/collections`` and ``/core/items`` routes, and the
GET/PATCH/DELETE every object kind shares."""

from __future__ import annotations

import copy

from starlette.responses import Response

from docfs.emulators.dspace7.context import Ctx, Handler
from docfs.emulators.dspace7.handlers import Handlers
from docfs.emulators.dspace7.model import DSO, Collection, Community, Item, metadata_value
from docfs.emulators.dspace7.wire import Fail


class ObjectRoutes(Handlers):
    """Communities, collections, items."""

    # ---- generic object routes -----------------------------------------------------------

    def _get_dso(self, kind: type[DSO]) -> Handler:
        def handler(ctx: Ctx, uuid: str) -> Response:
            return self._json(self._render(ctx, self._lookup(ctx, uuid, kind)))

        return handler

    def _patch_dso(self, kind: type[DSO]) -> Handler:
        def handler(ctx: Ctx, uuid: str) -> Response:
            dso = self._lookup(ctx, uuid, kind)
            self._require_write(ctx, dso)
            ops = self._json_body(ctx)
            if not isinstance(ops, list) or not ops:
                raise Fail(400)
            # all or nothing: the server runs the operations in order and commits once, after
            # the last (DSpaceRestRepository.patch, ResourcePatch.patch); a failing operation
            # aborts the request's context, so the earlier ones are not kept either
            before = copy.deepcopy(dso.metadata)
            flags = {f: getattr(dso, f) for f in ("withdrawn", "discoverable") if hasattr(dso, f)}
            try:
                for op in ops:
                    self._apply_patch(dso, op)
            except Fail:
                dso.metadata = before
                for name, value in flags.items():
                    setattr(dso, name, value)
                raise
            self._touch(dso)
            return self._json(self._render(ctx, dso))

        return handler

    def _delete_dso(self, kind: type[DSO]) -> Handler:
        def handler(ctx: Ctx, uuid: str) -> Response:
            dso = self._lookup(ctx, uuid, kind)
            if isinstance(dso, Community) and dso.parent is None:
                self._require_admin(ctx)
            else:
                self._require_write(ctx, dso)
            self._delete(dso)
            return self._empty(204)

        return handler

    # ---- communities and collections -----------------------------------------------------

    def _all_communities(self, ctx: Ctx) -> Response:
        found = [
            d
            for d in self._objects.values()
            if isinstance(d, Community) and self._can_read(ctx.caller, d)
        ]
        return self._list(ctx, "communities", sorted(found, key=lambda d: (d.name or "").lower()))

    def _top_communities(self, ctx: Ctx) -> Response:
        found = [
            d
            for d in self._objects.values()
            if isinstance(d, Community) and d.parent is None and self._can_read(ctx.caller, d)
        ]
        found.sort(key=lambda d: ((d.name or "").lower(), d.uuid))
        return self._list(ctx, "communities", list(found))

    def _subcommunities(self, ctx: Ctx, uuid: str) -> Response:
        community = self._lookup(ctx, uuid, Community)
        return self._list(ctx, "subcommunities", self._sub(ctx, community, Community))

    def _community_collections(self, ctx: Ctx, uuid: str) -> Response:
        community = self._lookup(ctx, uuid, Community)
        return self._list(ctx, "collections", self._sub(ctx, community, Collection))

    def _all_collections(self, ctx: Ctx) -> Response:
        found = [
            d
            for d in self._objects.values()
            if isinstance(d, Collection) and self._can_read(ctx.caller, d)
        ]
        return self._list(ctx, "collections", sorted(found, key=lambda d: (d.name or "").lower()))

    def _create_community(self, ctx: Ctx) -> Response:
        parent_id = ctx.param("parent")
        parent: DSO | None = None
        if ctx.caller is None:
            raise Fail(401)
        if parent_id is not None:
            parent = self._objects.get(parent_id)
            if not isinstance(parent, Community):
                raise Fail(422)
            self._require_write(ctx, parent)
        else:
            self._require_admin(ctx)
        data = self._create_body(ctx)
        community = self._new_dso(Community(uuid=self._new_uuid(), parent=parent_id), data)
        return self._json(self._render(ctx, community), 201)

    def _create_collection(self, ctx: Ctx) -> Response:
        if ctx.caller is None:
            raise Fail(401)
        parent_id = ctx.param("parent")
        if parent_id is None:
            raise Fail(400)
        parent = self._objects.get(parent_id)
        if not isinstance(parent, Community):
            raise Fail(422)
        self._require_write(ctx, parent)
        data = self._create_body(ctx)
        collection = self._new_dso(Collection(uuid=self._new_uuid(), parent=parent_id), data)
        return self._json(self._render(ctx, collection), 201)

    def _logo(self, kind: type[DSO]) -> Handler:
        def handler(ctx: Ctx, uuid: str) -> Response:
            dso = self._lookup(ctx, uuid, kind)
            logo = self._objects.get(getattr(dso, "logo", None) or "")
            if logo is None:
                return self._empty(204)
            return self._json(self._render(ctx, logo))

        return handler

    def _parent_community(self, kind: type[DSO]) -> Handler:
        def handler(ctx: Ctx, uuid: str) -> Response:
            dso = self._lookup(ctx, uuid, kind)
            parent = self._objects.get(getattr(dso, "parent", None) or "")
            if parent is None:
                return self._empty(204)
            return self._json(self._render(ctx, parent))

        return handler

    def _mapped_items(self, ctx: Ctx, uuid: str) -> Response:
        collection = self._lookup(ctx, uuid, Collection)
        return self._list(ctx, "mappedItems", self._mapped_into(ctx, collection))

    # ---- items ---------------------------------------------------------------------------

    def _all_items(self, ctx: Ctx) -> Response:
        self._require_admin(ctx)
        found = [d for d in self._objects.values() if isinstance(d, Item) and d.in_archive]
        return self._list(ctx, "items", list(found))

    def _create_item(self, ctx: Ctx) -> Response:
        # @PreAuthorize("hasAuthority('ADMIN')"): checked before anything else is looked at
        self._require_admin(ctx)
        collection = self._objects.get(ctx.param("owningCollection") or "")
        if not isinstance(collection, Collection):
            raise Fail(400)
        data = self._create_body(ctx)
        if data.get("inArchive") is False:
            raise Fail(400)
        item = Item(
            uuid=self._new_uuid(),
            owning=collection.uuid,
            discoverable=bool(data.get("discoverable", True)),
            withdrawn=bool(data.get("withdrawn", False)),
            submitter=ctx.caller.uuid if ctx.caller else None,
        )
        self._new_dso(item, data)
        self._archive(item)
        return self._json(self._render(ctx, item), 201)

    def _put_item(self, ctx: Ctx, uuid: str) -> Response:
        item = self._lookup(ctx, uuid, Item)
        assert isinstance(item, Item)
        self._require_write(ctx, item)
        data = self._create_body(ctx)
        if data.get("uuid") not in (None, uuid):
            raise Fail(400)
        item.metadata = {}
        self._init_dso(item, None, data.get("metadata") or {})
        item.discoverable = bool(data.get("discoverable", item.discoverable))
        item.withdrawn = bool(data.get("withdrawn", item.withdrawn))
        self._touch(item)
        return self._json(self._render(ctx, item))

    def _item_bundles(self, ctx: Ctx, uuid: str) -> Response:
        item = self._lookup(ctx, uuid, Item)
        assert isinstance(item, Item)
        return self._list(ctx, "bundles", [self._objects[u] for u in item.bundles])

    def _create_bundle_route(self, ctx: Ctx, uuid: str) -> Response:
        item = self._lookup(ctx, uuid, Item)
        self._require_write(ctx, item)
        data = self._create_body(ctx)
        name = data.get("name")
        if not isinstance(name, str) or not name:
            raise Fail(422)
        if self._bundle_named(item, name) is not None:
            raise Fail(400, f"The bundle name {name} already exists in the item")
        bundle = self._create_bundle(item, name)
        for key, values in (data.get("metadata") or {}).items():
            if key != "dc.title":
                seq = values if isinstance(values, list) else [values]
                bundle.metadata[key] = [metadata_value(v) for v in seq]
        return self._json(self._render(ctx, bundle), 201)

    def _owning_collection(self, ctx: Ctx, uuid: str) -> Response:
        item = self._lookup(ctx, uuid, Item)
        assert isinstance(item, Item)
        owner = self._objects.get(item.owning or "")
        if owner is None:
            return self._empty(204)
        return self._json(self._render(ctx, owner))

    def _mapped_collections(self, ctx: Ctx, uuid: str) -> Response:
        item = self._lookup(ctx, uuid, Item)
        assert isinstance(item, Item)
        found = [self._objects[u] for u in item.mapped if u in self._objects]
        return self._list(ctx, "mappedCollections", found)

    def _unmap_item(self, ctx: Ctx, uuid: str, collection: str) -> Response:
        """MappedCollectionRestController.deleteCollectionToItemRelation: 422 for an unknown
        item or collection and for the owning collection; a collection the item is not in is
        a silent 204; removing needs REMOVE on the collection (CollectionServiceImpl.removeItem
        authorizes it before it unmaps)."""
        item = self._objects.get(uuid)
        target = self._objects.get(collection)
        if not isinstance(item, Item) or not isinstance(target, Collection):
            raise Fail(422, "Not a valid collection or item uuid.")
        self._require_read(ctx, item)
        if item.owning == collection:
            raise Fail(422, "Collection given same as owningCollection of item.")
        if collection in item.mapped:
            self._require_write(ctx, target)
            item.mapped.remove(collection)
            self._touch(item)
        return self._empty(204)

    def _move_item(self, ctx: Ctx, uuid: str) -> Response:
        """ItemOwningCollectionUpdateRestController.move: WRITE on the item first
        (@PreAuthorize), one collection in a text/uri-list (else 422), archived or withdrawn
        items only (400), not the current owner (400), then ADMIN on the current owning
        collection, else the answer is 403 (@PostAuthorize of a null). ItemServiceImpl.move adds
        the item to the target and removes it from the old owner, so a collection it was mapped
        into becomes its owner and the old owner no longer holds it."""
        item = self._lookup(ctx, uuid, Item)
        assert isinstance(item, Item)
        self._require_write(ctx, item)
        found = self._one_uri(ctx, "collections")
        target = self._objects.get(found) if found else None
        if not isinstance(target, Collection):
            raise Fail(
                422, "The collection doesn't exist or the data cannot be resolved to a collection."
            )
        if not (item.in_archive or item.withdrawn):
            raise Fail(400, "Only archived or withdrawn items can be moved between collections")
        if item.owning == target.uuid:
            raise Fail(400, "The provided collection is already the owning collection")
        owner = self._objects.get(item.owning or "")
        caller = ctx.caller
        if not (
            caller is not None
            and (caller.admin or (owner is not None and caller.uuid in owner.writers))
        ):
            raise Fail(403)
        if target.uuid in item.mapped:
            item.mapped.remove(target.uuid)
        item.owning = target.uuid
        self._touch(item)
        return self._json(self._render(ctx, target))
