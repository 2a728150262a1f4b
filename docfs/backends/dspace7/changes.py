"""Changes to what exists in DSpace 7+: remove (with mapped items taken out of one
collection only), rename (a ``dc.title`` patch, or a move between bundles), metadata
patches applied once whatever the network does."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import AsyncGenerator, Mapping
from contextlib import aclosing

from docfs import errors
from docfs.backends.base import Entry
from docfs.backends.dspace7.core import DSpace7Core
from docfs.backends.dspace7.hal import (
    API_SECTION,
    JSON,
    METADATA_FIELD,
    ORIGINAL,
    SYNTHETIC_META,
    flatten_meta,
    parse_time,
)

log = logging.getLogger("docfs.dspace7")


def field_ops(key: str, values: list[JSON], *, present: bool) -> list[JSON]:
    """The PATCH operations that set field ``key`` to exactly ``values`` (at least one), in
    order, on every release.

    The released 7.x to 9.x lines read one value of an operation's array, the first
    (``DSpaceObjectMetadataPatchUtils.extractMetadataValueFromOperation``; DSpace#12419), for
    ``add`` and ``replace`` alike, and an ``add`` without an index puts its value first
    (``addAndShiftRightMetadata`` at place 0); ``-`` puts it last. So: one ``replace`` (or the
    first ``add`` of a new field) with the first value, then one ``add`` of ``-`` per further
    value (docs/protocols/dspace7.md, "Metadata PATCH on real releases")."""
    head, *rest = values
    ops: list[JSON] = [
        {"op": "replace" if present else "add", "path": f"/metadata/{key}", "value": [head]}
    ]
    ops += [{"op": "add", "path": f"/metadata/{key}/-", "value": v} for v in rest]
    return ops


def _patched(obj: JSON, ops: list[JSON]) -> bool:
    """Does ``obj`` show the result of the metadata patch ``ops`` (as ``_set_title``,
    ``field_ops`` and ``update_meta`` build them)? False where it cannot tell."""
    metadata = obj.get("metadata") or {}

    def have(key: str) -> list[object]:
        return [v.get("value") for v in metadata.get(key) or [] if isinstance(v, dict)]

    # per field: (the whole field is known, the values expected at its end)
    expect: dict[str, tuple[bool, list[object]]] = {}
    for op in ops:
        parts = str(op.get("path", "")).split("/")
        if len(parts) < 3 or parts[1] != "metadata":
            return False
        key, kind, value = parts[2], op.get("op"), op.get("value")
        if kind == "remove" and len(parts) == 3:
            expect[key] = (True, [])
        elif kind in ("add", "replace") and len(parts) == 3 and isinstance(value, list):
            # one value per whole-field operation (field_ops); an add was sent for a field
            # believed empty
            first = value[0] if value else None
            expect[key] = (True, [first.get("value") if isinstance(first, dict) else first])
        elif kind == "add" and len(parts) == 4 and parts[3] == "-" and isinstance(value, dict):
            whole, tail = expect.get(key, (False, []))
            expect[key] = (whole, [*tail, value.get("value")])
        elif kind == "replace" and len(parts) == 5 and parts[4] == "value":
            index = int(parts[3]) if parts[3].isdigit() else -1
            now = have(key)
            if not (0 <= index < len(now) and now[index] == value):
                return False
        else:
            return False
    for key, (whole, tail) in expect.items():
        now = have(key)
        if (now if whole else now[len(now) - len(tail) :]) != tail:
            return False
    return True


class Changes(DSpace7Core):
    """rm, rmdir, rename and xattr changes."""

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
            values: list[JSON] = [{"value": line} for line in value.split("\n")]
            return await self._patch(entry, field_ops(key, values, present=key in entry.meta))
        return await self._patch(entry, [op])

    def meta_separator(self, entry: Entry, key: str) -> str | None:
        # every metadata field holds a list of values (one per line); the synthetic keys one
        multiple = key not in SYNTHETIC_META and bool(METADATA_FIELD.match(key))
        return "\n" if multiple else None

    async def update_meta(self, entry: Entry, changes: Mapping[str, list[str] | None]) -> Entry:
        """All changes as one JSON Patch (per changed field ``field_ops``, per removed one a
        ``remove``): the server applies a patch's operations in one transaction and
        commits only when all succeeded (docs/protocols/dspace7.md, "Metadata files"), so a
        refused value (422) leaves the object as it was. Keys are checked before sending."""
        if self._type(entry) not in API_SECTION:
            raise errors.NotSupported(f"{entry.name}: has no metadata")
        for key in changes:
            if key in SYNTHETIC_META:
                raise errors.NotSupported(f"{key} is read-only")
            if not METADATA_FIELD.match(key):
                raise errors.InvalidArgument(
                    f"{key}: not a metadata field (schema.element[.qualifier])"
                )
        ops: list[JSON] = []
        for key, values in sorted(changes.items()):
            if not values:
                if key in entry.meta:
                    ops.append({"op": "remove", "path": f"/metadata/{key}"})
                continue
            given: list[JSON] = [{"value": v} for v in values]
            ops += field_ops(key, given, present=key in entry.meta)
        if not ops:
            return entry
        return await self._patch(entry, ops)

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
