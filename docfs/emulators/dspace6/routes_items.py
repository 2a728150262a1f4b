"""DSpace 6 handlers for ``/items`` (``ItemsResource``; docs/protocols/dspace6.md)."""

from __future__ import annotations

from datetime import datetime

from starlette.responses import Response

from docfs.emulators.dspace6 import rendering
from docfs.emulators.dspace6.bodies import Bodies, Req, my_split
from docfs.emulators.dspace6.errors import HttpError
from docfs.emulators.dspace6.formats import UNKNOWN, format_from_rest_name
from docfs.emulators.dspace6.model import (
    Bitstream,
    Item,
    Meta,
    Policy,
    java_uuid,
    ordered_metadata,
    stored_value,
)
from docfs.emulators.dspace6.rendering import Rendering, empty, expand_fields

#: the fields ``DELETE /items/{id}/metadata`` puts back, in the order it adds them
SYSTEM_FIELDS = (
    ("dc", "date", "accessioned"),
    ("dc", "date", "available"),
    ("dc", "identifier", "uri"),
    ("dc", "description", "provenance"),
)


class ItemRoutes(Bodies, Rendering):
    """Items: listing, reading, deleting, their metadata, their bitstreams and uploads."""

    def _h_items(self, rq: Req) -> Response:
        limit, offset = self._paging(rq, 100)
        fields = expand_fields(rq.param("expand"))
        page = list(self._items.values())[offset : offset + limit]
        return rendering.json_response(
            [self._item_json(i, fields, rq.who) for i in page if self._listed(rq.who, i)]
        )

    def _h_item(self, rq: Req, iid: str) -> Response:
        item = self._find(rq.who, Item, iid, "READ")
        return rendering.json_response(
            self._item_json(item, expand_fields(rq.param("expand")), rq.who)
        )

    def _h_delete_item(self, rq: Req, iid: str) -> Response:
        # ItemsResource.deleteItem → ItemServiceImpl.delete: DELETE (findItem) and REMOVE
        # (rawDelete) on the item, then the item goes from every collection it is mapped into
        # (clearCollections) — unlike DELETE /collections/{cid}/items/{iid}, which unmaps
        item = self._find(rq.who, Item, iid, "DELETE")
        if not self._can(rq.who, "REMOVE", item):
            raise HttpError(500)  # the AuthorizeException is rethrown as 500
        self._delete_item(item)
        return empty()

    def _h_item_metadata(self, rq: Req, iid: str) -> Response:
        item = self._find(rq.who, Item, iid, "READ")
        return rendering.json_response(self._visible_metadata(item, rq.who))

    def _h_add_metadata(self, rq: Req, iid: str) -> Response:
        # ItemsResource.addItemMetadata (dspace-6_x) adds and commits without
        # itemService.update: lastModified stays, no MODIFY_METADATA event (Discovery is not
        # reindexed) and the new values keep place 1, so their order is the database's
        values = self._metadata_body(rq)
        item = self._find(rq.who, Item, iid, "WRITE")
        item.metadata.extend(values)
        return empty()

    def _h_replace_metadata(self, rq: Req, iid: str) -> Response:
        # ItemsResource.updateItemMetadata: clearMetadata (every language) for each key, then
        # addMetadata for each entry, then itemService.update (places, lastModified, event)
        raw = self._body_json(rq)
        if raw is None:
            raise HttpError(500)
        entries = self._metadata_entries(raw)
        values = self._parse_fields(entries, strict_dots=False)
        item = self._find(rq.who, Item, iid, "WRITE")
        # every key present is cleared (all languages), even when its values are all null
        cleared = set()
        for entry in entries:
            parts = my_split(self._string(entry, "key") or "")
            if len(parts) == 3:
                cleared.add((parts[0] or "", parts[1] or "", parts[2]))
        item.metadata = [m for m in item.metadata if m.field not in cleared] + values
        self._update_item(item, values)
        return empty()

    def _h_clear_metadata(self, rq: Req, iid: str) -> Response:
        # ItemsResource.deleteItemMetadata: the first value of four fields is read, everything
        # is cleared and the four are added back — as null values where the item had none
        # (addMetadata of a null) — and no itemService.update follows (lastModified stays)
        item = self._find(rq.who, Item, iid, "WRITE")
        loaded = ordered_metadata(item)
        kept = []
        for qualified in SYSTEM_FIELDS:
            first = next((m for m in loaded if m.field == qualified), None)
            kept.append(Meta(*qualified, None if first is None else first.value))
        item.metadata = kept
        return empty()

    def _h_item_bitstreams(self, rq: Req, iid: str) -> Response:
        item = self._find(rq.who, Item, iid, "READ")
        limit = rq.int_param("limit", 20)
        offset = rq.int_param("offset", 0)
        listing = self._readable_bitstreams(item, rq.who)
        size = len(listing)
        # ItemsResource.getItemBitstreams: the slice bug, with Java subList's range checks
        end = size if offset + limit > size - offset else offset + limit
        if offset < 0 or end > size or offset > end:
            raise HttpError(500)
        return rendering.json_response(
            [self._bitstream_json(b, [], rq.who) for b in listing[offset:end]]
        )

    def _h_upload(self, rq: Req, iid: str) -> Response:
        item = self._find(rq.who, Item, iid, "WRITE")
        if not self._can(rq.who, "ADD", item):
            raise HttpError(500)  # AuthorizeException on the bundle → processException
        # setName/setDescription go through addMetadata (trimmed, controls blanked); the
        # format is guessed from the name as sent (ItemsResource.addItemBitstream)
        raw_name = rq.param("name")
        name = stored_value(raw_name)
        description = stored_value(rq.param("description"))
        group = rq.param("groupId")
        had_original = bool(item.bundles.get("ORIGINAL"))
        embargo = self._embargo(rq, group) if group is not None else None
        self._update_item(item)  # addBitstream updates the item before attaching the bitstream
        b = self._add_bitstream(
            item,
            name,
            rq.body,
            bundle="ORIGINAL",
            fmt=format_from_rest_name(raw_name) if raw_name is not None else UNKNOWN,
            public=self._is_public(item),
            description=description,
            sequence_id=-1,
        )
        b.source = "DSpace REST API"
        # the embargo loop runs over the ORIGINAL bundles found *before* the upload, so on an
        # item without one no policy is created; when it runs, it adds the group policy
        if embargo is not None and had_original:
            b.policies.append(embargo)
        return rendering.json_response(self._bitstream_json(b, [""], rq.who))

    def _embargo(self, rq: Req, group_raw: str) -> Policy:
        group = group_raw if group_raw.isdigit() else java_uuid(group_raw)
        if group is None:
            raise HttpError(500)
        start_ms = None
        year, month, day = (rq.param(p) for p in ("year", "month", "day"))
        if year is not None or month is not None or day is not None:
            today = datetime.now(self.server_tz)
            start = today.replace(
                year=rq.int_param("year", today.year) if year is not None else today.year,
                month=rq.int_param("month", today.month) if month is not None else today.month,
                day=rq.int_param("day", today.day) if day is not None else today.day,
                hour=0,
                minute=0,
                second=0,
                microsecond=0,
            )
            start_ms = int(start.timestamp() * 1000)
        return self._new_policy("READ", group=group, start_ms=start_ms)

    def _h_delete_item_bitstream(self, rq: Req, iid: str, bid: str) -> Response:
        item = self._find(rq.who, Item, iid, "WRITE")
        b = self._resolve(Bitstream, bid)
        if not self._can(rq.who, "DELETE", b):
            # the log line calls getUser(headers).getEmail(): null for anonymous callers
            raise HttpError(500 if rq.who is None else 401)
        if b.item is item:
            self._remove_bitstream(b)
        return empty()

    def _h_find_by_metadata(self, rq: Req) -> Response:
        entry = self._check_props(self._body_json(rq), "MetadataEntry")
        if entry is None:
            raise HttpError(500)
        key = self._string(entry, "key")
        if key is None:
            raise HttpError(500)
        parts = my_split(key)
        if not 2 <= len(parts) <= 3:
            raise HttpError(404)
        target = (parts[0] or "", parts[1] or "", parts[2])
        if target not in self._fields:
            raise HttpError(500)  # IllegalArgumentException("No such metadata field")
        value = self._string(entry, "value")
        fields = expand_fields(rq.param("expand"))
        found = [
            i
            for i in self._items.values()
            if i.archived
            and i.discoverable
            and any(m.field == target and m.value == value for m in i.metadata)
            and self._can(rq.who, "READ", i)
        ]
        return rendering.json_response([self._item_json(i, fields, rq.who) for i in found])
