"""The DSpace 6 repository held in memory: its objects and the operations on them.

Communities, collections, items (owned and mapped), bitstreams in bundles, resource policies,
EPersons and sessions, the metadata registry; lookups by UUID, legacy id and handle; the
permission check (resource policies, with ADMIN inherited down the tree); and the mutations REST
and the backdoor share (create, install, delete, unmap). ``Repository`` is the typed state every
other part of the emulator (rendering, request bodies, routes, backdoor) is a mixin over.
"""

from __future__ import annotations

import bisect
import hashlib
import random
import re
import threading
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from typing import Any, ClassVar, TypeVar

from docfs.emulators.base import Emulator
from docfs.emulators.dspace6.errors import HttpError
from docfs.emulators.dspace6.formats import Format

HANDLE_PREFIX = "123456789"
CANONICAL_HANDLE = "http://hdl.handle.net/"
JAVA_INT_MAX = 2**31 - 1
ACTIONS = frozenset({"READ", "WRITE", "DELETE", "ADD", "REMOVE", "ADMIN"})


def words(text: str) -> frozenset[str]:
    return frozenset(text.split())


def ordered_words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


TEXT_FIELDS = ("copyrightText", "introductoryText", "shortDescription", "sidebarText")

#: the dc fields of ``dspace/config/registries/dublin-core-types.xml`` (dspace-6_x), in the order
#: the file lists them: the registry ids follow it, and values are read back in id order
DC_FIELD_ORDER = ordered_words(
    """
    contributor contributor.advisor contributor.author contributor.editor
    contributor.illustrator contributor.other coverage.spatial coverage.temporal creator date
    date.accessioned date.available date.copyright date.created date.issued date.submitted
    identifier identifier.citation identifier.govdoc identifier.isbn identifier.issn
    identifier.sici identifier.ismn identifier.other identifier.uri description
    description.abstract description.provenance description.sponsorship
    description.statementofresponsibility description.tableofcontents description.uri format
    format.extent format.medium format.mimetype language language.iso publisher relation
    relation.isformatof relation.ispartof relation.ispartofseries relation.haspart
    relation.isversionof relation.hasversion relation.isbasedon relation.isreferencedby
    relation.requires relation.replaces relation.isreplacedby relation.uri rights rights.uri
    source source.uri subject subject.classification subject.ddc subject.lcc subject.lcsh
    subject.mesh subject.other title title.alternative type date.updated rights.holder
    rights.license
    """
)
DC_FIELDS = frozenset(DC_FIELD_ORDER)


def field_key(key: str) -> tuple[str, str, str | None]:
    parts = key.split(".")
    return parts[0], parts[1], parts[2] if len(parts) > 2 else None


REGISTRY_FIELDS = frozenset(field_key("dc." + f) for f in DC_FIELDS)
#: a field's place in the registry (its ``metadata_field_id`` order); fields registered later
#: through the backdoor come after these
FIELD_RANK = {field_key("dc." + f): rank for rank, f in enumerate(DC_FIELD_ORDER)}

#: what Java's ``String.trim`` strips: every character up to U+0020
JAVA_WHITESPACE = "".join(chr(c) for c in range(0x21))
#: kept by ``addMetadata`` although ``Character.isISOControl``
KEPT_CONTROLS = frozenset("\t\n\r")


def stored_value(value: str | None) -> str | None:
    """A value as ``DSpaceObjectServiceImpl.addMetadata`` (dspace-6_x) stores it: trimmed, ISO
    control characters other than tab, LF and CR made spaces; ``null`` stays ``null``."""
    if value is None:
        return None
    return "".join(
        " " if (ord(ch) < 0x20 or 0x7F <= ord(ch) <= 0x9F) and ch not in KEPT_CONTROLS else ch
        for ch in value.strip(JAVA_WHITESPACE)
    )


UUID_RE = re.compile(
    r"^([0-9a-fA-F]{1,8})-([0-9a-fA-F]{1,4})-([0-9a-fA-F]{1,4})-([0-9a-fA-F]{1,4})-"
    r"([0-9a-fA-F]{1,12})$"
)


@dataclass(eq=False)
class User:
    uuid: str
    email: str
    password: str
    admin: bool
    fullname: str


@dataclass(eq=False)
class Policy:
    id: int
    action: str
    eperson: str | None = None
    group: str | None = None
    start_ms: int | None = None
    end_ms: int | None = None
    rp_type: str | None = "TYPE_CUSTOM"
    rp_name: str | None = None
    rp_description: str | None = None


@dataclass(eq=False)
class Meta:
    schema: str
    element: str
    qualifier: str | None
    #: ``null`` is a stored value too (``addMetadata`` with a null value)
    value: str | None
    language: str | None = None
    #: ``MetadataValue.place``: 1 when created, numbered 1..n per field only by an ``update``
    place: int = 1

    @property
    def field(self) -> tuple[str, str, str | None]:
        return self.schema, self.element, self.qualifier

    @property
    def key(self) -> str:
        parts = [self.schema, self.element] + ([self.qualifier] if self.qualifier else [])
        return ".".join(parts)


@dataclass(eq=False, kw_only=True)
class Node:
    kind: ClassVar[str] = "dso"
    plural: ClassVar[str] = "dsos"
    uuid: str
    legacy_id: int
    policies: list[Policy] = field(default_factory=list)


@dataclass(eq=False, kw_only=True)
class Community(Node):
    kind: ClassVar[str] = "community"
    plural: ClassVar[str] = "communities"
    name: str | None
    handle: str
    parent: Community | None = None
    subs: list[Community] = field(default_factory=list)
    collections: list[Collection] = field(default_factory=list)
    texts: dict[str, str | None] = field(default_factory=dict)


@dataclass(eq=False, kw_only=True)
class Collection(Node):
    kind: ClassVar[str] = "collection"
    plural: ClassVar[str] = "collections"
    name: str | None
    handle: str
    community: Community
    #: uuids of the archived items (owned and mapped), kept sorted: the listing order
    items: list[str] = field(default_factory=list)
    workflow: bool = False
    texts: dict[str, str | None] = field(default_factory=dict)
    license: str | None = None


@dataclass(eq=False, kw_only=True)
class Item(Node):
    kind: ClassVar[str] = "item"
    plural: ClassVar[str] = "items"
    handle: str | None
    submitted_to: Collection
    #: owning collection first, then mapped ones; empty while the item is in review
    collections: list[Collection] = field(default_factory=list)
    metadata: list[Meta] = field(default_factory=list)
    archived: bool = True
    withdrawn: bool = False
    discoverable: bool = True
    last_modified: datetime = field(default_factory=lambda: datetime(1970, 1, 1))
    bundles: dict[str, list[Bitstream]] = field(default_factory=dict)

    @property
    def name(self) -> str | None:
        for m in ordered_metadata(self):
            if m.field == ("dc", "title", None):
                return m.value
        return None


def container_name(value: str | None) -> str:
    """A community's or collection's name as ``setMetadata(context, dso, "name", value)``
    stores it (``CommunityServiceImpl``/``CollectionServiceImpl``, dspace-6_x): a null or blank
    name becomes "Untitled" (the i18n default), any other goes through ``addMetadata``."""
    stored = stored_value(value)
    return stored if stored else "Untitled"


def ordered_metadata(item: Item) -> list[Meta]:
    """An item's values in the order a fresh load gives them: ``DSpaceObject.metadata`` is
    ``@OrderBy("metadataField, place")`` (dspace-6_x), i.e. registry id, then place.

    Values of one field with the same place (added without an ``update``: ``POST
    /items/{id}/metadata``) come in whatever order the database returns; the emulator gives
    them newest first, so a client that relies on an order the server does not promise sees it
    fail here rather than on a real server.
    """
    unranked = len(FIELD_RANK)
    indexed = list(enumerate(item.metadata))
    indexed.sort(
        key=lambda pair: (
            FIELD_RANK.get(pair[1].field, unranked),
            pair[1].key,
            pair[1].place,
            -pair[0],
        )
    )
    return [m for _, m in indexed]


def number_places(item: Item, added: Iterable[Meta] = ()) -> None:
    """``DSpaceObjectServiceImpl.update`` (dspace-6_x): the values in the order the request
    holds them — as loaded (``ordered_metadata``), then the ones it ``added`` — get places
    1..n per field (``getMetadataValuePlace``)."""
    new = list(added)
    held = [m for m in ordered_metadata(item) if not any(m is a for a in new)] + new
    last: dict[tuple[str, str, str | None], int] = {}
    for m in held:
        last[m.field] = last.get(m.field, 0) + 1
        m.place = last[m.field]


@dataclass(eq=False, kw_only=True)
class Bitstream(Node):
    kind: ClassVar[str] = "bitstream"
    plural: ClassVar[str] = "bitstreams"
    name: str | None
    description: str | None
    data: bytes
    md5: str
    fmt: Format
    sequence_id: int
    bundle: str
    item: Item | None
    source: str | None = None


N = TypeVar("N", bound=Node)


def java_uuid(raw: str) -> str | None:
    """``UUID.fromString`` (lenient about group lengths), canonicalised; None if invalid."""
    m = UUID_RE.match(raw)
    if m is None:
        return None
    a, b, c, d, e = (int(g, 16) for g in m.groups())
    return str(uuid.UUID(int=(a << 96) | (b << 80) | (c << 64) | (d << 48) | e))


class Repository(Emulator):
    """The emulator's state and its domain operations, under one lock (``_state``): uvicorn
    serves requests in its own thread while tests call the backdoor from theirs."""

    #: ``/status`` ``sourceVersion``
    source_version: str
    #: the server's local zone: ``lastModified`` is written in it, without a designator
    server_tz: tzinfo
    _state: threading.RLock
    _seed: int | None

    def _init_state(self) -> None:
        self._ids = random.Random(self._seed)
        self._users: dict[str, User] = {}
        self._sessions: dict[str, str] = {}
        #: every session cookie ever handed out (expired ones too), for leak scans in tests
        self._issued: list[str] = []
        self._objects: dict[str, Node] = {}
        self._legacy: dict[tuple[str, int], Node] = {}
        self._handles: dict[str, Node] = {}
        self._items: dict[str, Item] = {}
        self._bitstreams: dict[str, Bitstream] = {}
        self._communities: dict[str, Community] = {}
        self._collections: dict[str, Collection] = {}
        self._fields = set(REGISTRY_FIELDS)
        self._counters: dict[str, int] = {}
        self._anonymous_group = self._new_uuid()
        self._admin_group = self._new_uuid()
        self._site_uuid = self._new_uuid()

    # ---- ids, lookups, permissions ------------------------------------------------------------

    def _new_uuid(self) -> str:
        return str(uuid.UUID(int=self._ids.getrandbits(128), version=4))

    def _next(self, counter: str) -> int:
        self._counters[counter] = self._counters.get(counter, 0) + 1
        return self._counters[counter]

    def _new_handle(self, node: Node) -> str:
        handle = f"{HANDLE_PREFIX}/{self._next('handle')}"
        self._handles[handle] = node
        return handle

    def _register(self, node: Node) -> None:
        self._objects[node.uuid] = node
        self._legacy[(node.kind, node.legacy_id)] = node

    def _now(self) -> datetime:
        return datetime.now(self.server_tz).replace(tzinfo=None)

    def _resolve(self, cls: type[N], raw: str) -> N:
        """``findByIdOrLegacyId``: digits are a legacy id, else a UUID; anything else is 500."""
        node: Node | None
        if raw.isascii() and raw.isdigit():
            number = int(raw)
            if number > JAVA_INT_MAX:
                raise HttpError(500)
            node = self._legacy.get((cls.kind, number))
        else:
            canonical = java_uuid(raw)
            if canonical is None:
                raise HttpError(500)
            node = self._objects.get(canonical)
        if not isinstance(node, cls):
            raise HttpError(404)
        return node

    def _find(self, who: User | None, cls: type[N], raw: str, action: str) -> N:
        node = self._resolve(cls, raw)
        if not self._can(who, action, node):
            raise HttpError(401)
        return node

    def _ancestors(self, node: Node) -> Iterable[Node]:
        """The node, then every container above it (for inherited ADMIN rights)."""
        yield node
        if isinstance(node, Bitstream):
            if node.item is not None:
                yield from self._ancestors(node.item)
        elif isinstance(node, Item):
            for coll in node.collections or [node.submitted_to]:
                yield from self._ancestors(coll)
        elif isinstance(node, Collection):
            yield from self._ancestors(node.community)
        elif isinstance(node, Community) and node.parent is not None:
            yield from self._ancestors(node.parent)

    def _policy_applies(self, policy: Policy, who: User | None) -> bool:
        now_ms = int(datetime.now(UTC).timestamp() * 1000)
        if policy.start_ms is not None and policy.start_ms > now_ms:
            return False
        if policy.end_ms is not None and policy.end_ms <= now_ms:
            return False
        if policy.group == self._anonymous_group:
            return True
        if who is None:
            return False
        if policy.group == self._admin_group:
            return who.admin
        return policy.eperson == who.uuid

    def _can(self, who: User | None, action: str, node: Node) -> bool:
        if who is not None and who.admin:
            return True
        for level, holder in enumerate(self._ancestors(node)):
            for policy in holder.policies:
                grants = policy.action == "ADMIN" or (level == 0 and policy.action == action)
                if grants and self._policy_applies(policy, who):
                    return True
        return False

    def _is_public(self, node: Node) -> bool:
        return any(
            p.action == "READ" and p.group == self._anonymous_group and p.start_ms is None
            for p in node.policies
        )

    def _new_policy(
        self,
        action: str,
        *,
        eperson: str | None = None,
        group: str | None = None,
        start_ms: int | None = None,
    ) -> Policy:
        return Policy(self._next("policy"), action, eperson, group, start_ms)

    def _public_policies(self, public: bool) -> list[Policy]:
        return [self._new_policy("READ", group=self._anonymous_group)] if public else []

    def _listed(self, who: User | None, item: Item) -> bool:
        """``ItemService.isItemListedForUser``: admins, or READ on a discoverable item."""
        if who is not None and who.admin:
            return True
        return item.discoverable and self._can(who, "READ", item)

    # ---- mutations shared by REST and the backdoor --------------------------------------------

    def _touch(self, item: Item | None) -> None:
        if item is not None:
            item.last_modified = self._now()

    def _update_item(self, item: Item, added: Iterable[Meta] = ()) -> None:
        """``ItemService.update``: bitstreams still at -1 get the next sequence ids, in order;
        the metadata gets its places (``added``: values this request appended)."""
        top = max((b.sequence_id for bundle in item.bundles.values() for b in bundle), default=0)
        for bundle in item.bundles.values():
            for b in bundle:
                if b.sequence_id < 0:
                    top = max(top, 0) + 1
                    b.sequence_id = top
        number_places(item, added)
        self._touch(item)

    def _create_community(
        self, name: str | None, parent: Community | None, public: bool, texts: dict[str, Any]
    ) -> Community:
        c = Community(
            uuid=self._new_uuid(),
            legacy_id=self._next("community"),
            name=name,
            handle="",
            parent=parent,
            texts={k: texts.get(k) for k in TEXT_FIELDS},
            policies=self._public_policies(public),
        )
        c.handle = self._new_handle(c)
        self._register(c)
        self._communities[c.uuid] = c
        if parent is not None:
            parent.subs.append(c)
        return c

    def _create_collection(
        self,
        name: str | None,
        community: Community,
        public: bool,
        texts: dict[str, Any],
        *,
        workflow: bool = False,
        license_text: str | None = None,
    ) -> Collection:
        k = Collection(
            uuid=self._new_uuid(),
            legacy_id=self._next("collection"),
            name=name,
            handle="",
            community=community,
            workflow=workflow,
            texts={f: texts.get(f) for f in TEXT_FIELDS},
            license=license_text,
            policies=self._public_policies(public),
        )
        k.handle = self._new_handle(k)
        self._register(k)
        self._collections[k.uuid] = k
        community.collections.append(k)
        return k

    def _create_item(
        self,
        coll: Collection,
        metadata: list[Meta],
        *,
        public: bool,
        discoverable: bool = True,
        review: bool = False,
        when: datetime | None = None,
    ) -> Item:
        item = Item(
            uuid=self._new_uuid(),
            legacy_id=self._next("item"),
            handle=None,
            submitted_to=coll,
            metadata=list(metadata),
            archived=False,
            discoverable=discoverable,
            last_modified=when or self._now(),
        )
        self._register(item)
        self._items[item.uuid] = item
        # CollectionsResource.addCollectionItem: workspaceItemService.update → itemService.update
        number_places(item, list(item.metadata))
        if review:
            # in review: no handle, not in the collection, readable by administrators only
            return item
        item.policies = self._public_policies(public)
        self._install(item, coll, when or self._now())
        return item

    def _install(self, item: Item, coll: Collection, when: datetime) -> None:
        """``InstallItemService``: handle, accession dates, URI and provenance, then archive."""
        item.handle = self._new_handle(item)
        utc = when.replace(tzinfo=self.server_tz).astimezone(UTC)
        stamp = f"{utc:%Y-%m-%dT%H:%M:%S}Z"
        present = {m.field for m in item.metadata}
        for qualifier, value in (("accessioned", stamp), ("available", stamp)):
            if ("dc", "date", qualifier) not in present:
                item.metadata.append(Meta("dc", "date", qualifier, value))
        if ("dc", "date", "issued") not in present:
            item.metadata.append(Meta("dc", "date", "issued", stamp[:10]))
        item.metadata.append(Meta("dc", "identifier", "uri", CANONICAL_HANDLE + item.handle))
        bitstreams = sum(len(b) for b in item.bundles.values())
        provenance = f"Made available in DSpace on {stamp} (GMT). No. of bitstreams: {bitstreams}"
        item.metadata.append(Meta("dc", "description", "provenance", provenance, "en"))
        # created and installed in one go: every value was added by this request, in order
        number_places(item, list(item.metadata))
        item.archived = True
        item.collections = [coll]
        bisect.insort(coll.items, item.uuid)

    def _add_bitstream(
        self,
        item: Item,
        name: str | None,
        data: bytes,
        *,
        bundle: str,
        fmt: Format,
        public: bool,
        description: str | None,
        sequence_id: int,
    ) -> Bitstream:
        b = Bitstream(
            uuid=self._new_uuid(),
            legacy_id=self._next("bitstream"),
            name=name,
            description=description,
            data=data,
            md5=hashlib.md5(data).hexdigest(),
            fmt=fmt,
            sequence_id=sequence_id,
            bundle=bundle,
            item=item,
            policies=self._public_policies(public),
        )
        self._register(b)
        self._bitstreams[b.uuid] = b
        item.bundles.setdefault(bundle, []).append(b)
        return b

    def _remove_bitstream(self, b: Bitstream) -> None:
        """``deleted=true``: detached from its bundle, policies gone, later GETs answer 404."""
        if b.item is not None:
            bundle = b.item.bundles.get(b.bundle, [])
            if b in bundle:
                bundle.remove(b)
            self._touch(b.item)
        b.item = None
        b.policies = []
        self._objects.pop(b.uuid, None)
        self._legacy.pop((b.kind, b.legacy_id), None)
        self._bitstreams.pop(b.uuid, None)

    def _delete_item(self, item: Item) -> None:
        for bundle in list(item.bundles.values()):
            for b in list(bundle):
                self._remove_bitstream(b)
        for k in item.collections:
            self._unlist(k, item)
        item.collections = []
        self._objects.pop(item.uuid, None)
        self._legacy.pop((item.kind, item.legacy_id), None)
        self._items.pop(item.uuid, None)
        if item.handle is not None:
            self._handles.pop(item.handle, None)

    @staticmethod
    def _unlist(k: Collection, item: Item) -> None:
        pos = bisect.bisect_left(k.items, item.uuid)
        if pos < len(k.items) and k.items[pos] == item.uuid:
            del k.items[pos]

    def _remove_item_from(self, k: Collection, item: Item) -> None:
        """``CollectionService.removeItem``: unmap, or delete the item if it was the last one."""
        self._unlist(k, item)
        if k in item.collections:
            item.collections.remove(k)
        if not item.collections:
            self._delete_item(item)
        else:
            self._touch(item)

    def _delete_collection(self, k: Collection) -> None:
        for u in list(k.items):
            item = self._items.get(u)
            if item is not None:
                self._remove_item_from(k, item)
        for item in [i for i in self._items.values() if i.submitted_to is k and not i.archived]:
            self._delete_item(item)
        if k in k.community.collections:
            k.community.collections.remove(k)
        self._objects.pop(k.uuid, None)
        self._legacy.pop((k.kind, k.legacy_id), None)
        self._collections.pop(k.uuid, None)
        self._handles.pop(k.handle, None)

    def _delete_community(self, c: Community) -> None:
        for sub in list(c.subs):
            self._delete_community(sub)
        for k in list(c.collections):
            self._delete_collection(k)
        if c.parent is not None and c in c.parent.subs:
            c.parent.subs.remove(c)
        self._objects.pop(c.uuid, None)
        self._legacy.pop((c.kind, c.legacy_id), None)
        self._communities.pop(c.uuid, None)
        self._handles.pop(c.handle, None)
