"""The JSON shapes of DSpace 6's REST answers (``org.dspace.rest.common.*``), and the Java
renderings of strings and dates inside them.

docs/protocols/dspace6.md describes the shapes (relative links, string ``archived``,
``expand`` one level deep, zone-less ``lastModified``).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterable
from datetime import datetime, tzinfo
from typing import Any

from starlette.responses import Response

from docfs.emulators.dspace6.model import (
    TEXT_FIELDS,
    Bitstream,
    Collection,
    Community,
    Item,
    Meta,
    N,
    Node,
    Policy,
    Repository,
    User,
    ordered_metadata,
)

CONTEXT = "/rest"
STREAM_CHUNK = 64 * 1024
#: Jersey buffers this much of an entity; bigger bodies go out chunked, without Content-Length
BUFFER_LIMIT = 8192
HIDDEN_FIELDS = frozenset({("dc", "description", "provenance")})

DEFAULT_LICENSE = (
    "NOTE: PLACE YOUR OWN LICENSE HERE\n"
    "This sample license is provided for informational purposes only.\n"
)


DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def json_response(payload: object, status: int = 200) -> Response:
    body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
    return Response(body, status_code=status, headers={"content-type": "application/json"})


def empty() -> Response:
    return Response(b"", status_code=200)


def java_str(value: str | None) -> str:
    """Java string concatenation: a null reference prints as ``null``."""
    return "null" if value is None else value


def header_text(value: str) -> str:
    """A header value as Tomcat writes it: ISO-8859-1, with control characters and anything
    above U+00FF turned into spaces (it cannot encode them). Without this, a bitstream whose
    name holds a NUL or a character such as U+2215 crashed the emulator's ``/retrieve``."""
    return "".join(
        " " if (ord(c) < 32 and c != "\t") or ord(c) == 127 or ord(c) > 255 else c for c in value
    )


def expand_fields(raw: str | None) -> list[str]:
    # Java's String.split: no trimming, case kept, trailing empty strings dropped
    if raw is None:
        return []
    parts = raw.split(",")
    while len(parts) > 1 and parts[-1] == "":
        parts.pop()
    return parts


def wants(fields: list[str], option: str) -> bool:
    return option in fields or "all" in fields


def timestamp_string(value: datetime) -> str:
    """``java.sql.Timestamp.toString()``: fractional seconds with trailing zeros trimmed."""
    nanos = f"{value.microsecond * 1000:09d}".rstrip("0") or "0"
    return f"{value:%Y-%m-%d %H:%M:%S}.{nanos}"


def date_string(value: datetime, tz: tzinfo) -> str:
    """``java.util.Date.toString()``: ``EEE MMM dd HH:mm:ss zzz yyyy`` (English names)."""
    zone = value.replace(tzinfo=tz).tzname() or "UTC"
    return (
        f"{DAYS[value.weekday()]} {MONTHS[value.month - 1]} {value:%d %H:%M:%S} {zone} {value.year}"
    )


async def chunks(data: bytes) -> AsyncIterator[bytes]:
    view = memoryview(data)
    for start in range(0, len(data), STREAM_CHUNK):
        yield bytes(view[start : start + STREAM_CHUNK])


class Rendering(Repository):
    """The JSON of communities, collections, items, bitstreams, policies and metadata."""

    def _dso(self, node: Node, name: str | None, handle: str | None) -> dict[str, Any]:
        return {
            "uuid": node.uuid,
            "name": name,
            "handle": handle,
            "type": node.kind,
            "link": f"{CONTEXT}/{node.plural}/{node.uuid}",
            "expand": [],
        }

    def _plain_dso(self, node: Node) -> dict[str, Any]:
        if isinstance(node, Item):
            return self._dso(node, node.name, node.handle)
        if isinstance(node, Community | Collection):
            return self._dso(node, node.name, node.handle)
        if isinstance(node, Bitstream):
            return self._dso(node, node.name, None)
        return self._dso(node, None, None)

    def _community_json(self, c: Community, fields: list[str], who: User | None) -> dict[str, Any]:
        out = self._dso(c, c.name, c.handle)
        skipped: list[str] = []
        parent = None
        if wants(fields, "parentCommunity"):
            if c.parent is not None:
                parent = self._community_json(c.parent, [], who)
        else:
            skipped.append("parentCommunity")
        collections: list[dict[str, Any]] = []
        if wants(fields, "collections"):
            collections = [
                self._collection_json(k, [], who)
                for k in self._by_name(c.collections)
                if self._can(who, "READ", k)
            ]
        else:
            skipped.append("collections")
        subs: list[dict[str, Any]] = []
        if wants(fields, "subCommunities"):
            subs = [
                self._community_json(s, [], who)
                for s in self._by_name(c.subs)
                if self._can(who, "READ", s)
            ]
        else:
            skipped.append("subCommunities")
        if not wants(fields, "logo"):
            skipped.append("logo")
        out["expand"] = skipped + ([] if "all" in fields else ["all"])
        out.update(
            {
                "logo": None,
                "parentCommunity": parent,
                **{k: c.texts.get(k) or "" for k in TEXT_FIELDS},
                "countItems": self._count_items(c),
                "subcommunities": subs,
                "collections": collections,
            }
        )
        return out

    def _collection_json(
        self,
        k: Collection,
        fields: list[str],
        who: User | None,
        page: tuple[int, int] | None = (100, 0),
    ) -> dict[str, Any]:
        out = self._dso(k, k.name, k.handle)
        skipped: list[str] = []
        parents: list[dict[str, Any]] = []
        if wants(fields, "parentCommunityList"):
            parents = [self._community_json(c, [], who) for c in self._community_chain(k)]
        else:
            skipped.append("parentCommunityList")
        parent = None
        if wants(fields, "parentCommunity"):
            parent = self._community_json(k.community, [], who)
        else:
            skipped.append("parentCommunity")
        items: list[dict[str, Any]] = []
        if wants(fields, "items"):
            uuids = k.items if page is None else k.items[page[1] : page[1] + page[0]]
            items = [
                self._item_json(self._items[u], [], who)
                for u in uuids
                if self._listed(who, self._items[u])
            ]
        else:
            skipped.append("items")
        license_text = None
        if wants(fields, "license"):
            license_text = k.license or DEFAULT_LICENSE
        else:
            skipped.append("license")
        if not wants(fields, "logo"):
            skipped.append("logo")
        out["expand"] = skipped + ([] if "all" in fields else ["all"])
        out.update(
            {
                "logo": None,
                "parentCommunity": parent,
                "parentCommunityList": parents,
                "items": items,
                "license": license_text,
                **{f: k.texts.get(f) or "" for f in TEXT_FIELDS},
                "numberItems": len(k.items),
            }
        )
        return out

    def _item_json(
        self, i: Item, fields: list[str], who: User | None, *, fresh: bool = False
    ) -> dict[str, Any]:
        out = self._dso(i, i.name, i.handle)
        skipped: list[str] = []
        metadata = None
        if wants(fields, "metadata"):
            metadata = self._visible_metadata(i, who)
        else:
            skipped.append("metadata")
        parent = None
        if wants(fields, "parentCollection") and i.collections:
            parent = self._collection_json(i.collections[0], [], who)
        else:
            skipped.append("parentCollection")
        parent_list = None
        if wants(fields, "parentCollectionList"):
            parent_list = [self._collection_json(k, [], who) for k in i.collections]
        else:
            skipped.append("parentCollectionList")
        communities = None
        if wants(fields, "parentCommunityList"):
            communities = [self._community_json(c, [], who) for c in self._item_communities(i)]
        else:
            skipped.append("parentCommunityList")
        bitstreams = None
        if wants(fields, "bitstreams"):
            bitstreams = [
                self._bitstream_json(b, [], who) for b in self._readable_bitstreams(i, who)
            ]
        else:
            skipped.append("bitstreams")
        out["expand"] = skipped + ([] if "all" in fields else ["all"])
        modified = (
            date_string(i.last_modified, self.server_tz)
            if fresh
            else timestamp_string(i.last_modified)
        )
        out.update(
            {
                "lastModified": modified,
                "archived": "true" if i.archived else "false",
                "withdrawn": "true" if i.withdrawn else "false",
                "parentCollection": parent,
                "parentCollectionList": parent_list,
                "parentCommunityList": communities,
                "metadata": metadata,
                "bitstreams": bitstreams,
            }
        )
        return out

    def _bitstream_json(self, b: Bitstream, fields: list[str], who: User | None) -> dict[str, Any]:
        out = self._dso(b, b.name, None)
        skipped: list[str] = []
        parent = None
        if wants(fields, "parent"):
            parent = self._plain_dso(b.item) if b.item is not None else None
        else:
            skipped.append("parent")
        policies = None
        if wants(fields, "policies"):
            policies = [self._policy_json(p, b) for p in b.policies]
        else:
            skipped.append("policies")
        out["expand"] = skipped + ([] if "all" in fields else ["all"])
        out.update(
            {
                "bundleName": b.bundle,
                "description": b.description,
                "format": b.fmt.short,
                "mimeType": b.fmt.mime,
                "sizeBytes": len(b.data),
                "parentObject": parent,
                "retrieveLink": f"{CONTEXT}/bitstreams/{b.uuid}/retrieve",
                "checkSum": {"value": b.md5, "checkSumAlgorithm": "MD5"},
                "sequenceId": b.sequence_id,
                "policies": policies,
            }
        )
        return out

    @staticmethod
    def _policy_json(p: Policy, b: Bitstream) -> dict[str, Any]:
        return {
            "id": p.id,
            "action": p.action,
            "epersonId": p.eperson,
            "groupId": p.group,
            "resourceId": b.uuid,
            "resourceType": "bitstream",
            "rpDescription": p.rp_description,
            "rpName": p.rp_name,
            "rpType": p.rp_type,
            "startDate": p.start_ms,
            "endDate": p.end_ms,
        }

    @staticmethod
    def _meta_json(m: Meta) -> dict[str, Any]:
        return {
            "key": m.key,
            "value": m.value,
            "language": m.language,
            "schema": m.schema,
            "element": m.element,
            "qualifier": m.qualifier,
        }

    def _visible_metadata(self, i: Item, who: User | None) -> list[dict[str, Any]]:
        # MetadataExposureService hides metadata.hide.* fields from everyone but administrators
        admin = who is not None and who.admin
        return [
            self._meta_json(m) for m in ordered_metadata(i) if admin or m.field not in HIDDEN_FIELDS
        ]

    def _readable_bitstreams(self, i: Item, who: User | None) -> list[Bitstream]:
        return [b for bundle in i.bundles.values() for b in bundle if self._can(who, "READ", b)]

    @staticmethod
    def _by_name(nodes: Iterable[N]) -> list[N]:
        return sorted(nodes, key=lambda n: (getattr(n, "name", None) or "", n.uuid))

    @staticmethod
    def _community_chain(k: Collection) -> list[Community]:
        chain: list[Community] = []
        c: Community | None = k.community
        while c is not None:
            chain.append(c)
            c = c.parent
        return chain

    def _item_communities(self, i: Item) -> list[Community]:
        seen: dict[str, Community] = {}
        for k in i.collections:
            for c in self._community_chain(k):
                seen.setdefault(c.uuid, c)
        return list(seen.values())

    def _count_items(self, c: Community) -> int:
        uuids: set[str] = set()
        stack = [c]
        while stack:
            node = stack.pop()
            for k in node.collections:
                uuids.update(k.items)
            stack.extend(node.subs)
        return len(uuids)
