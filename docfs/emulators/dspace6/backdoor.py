"""What tests drive the DSpace 6 emulator with: seeding content, users and rights, changes
behind the client's back, snapshots of the state, and ``dspace filter-media`` thumbnails."""

from __future__ import annotations

import bisect
import hashlib
from datetime import datetime
from typing import Any

from docfs.emulators.dspace6.formats import FORMAT_BY_MIME, LICENSE, format_from_registry
from docfs.emulators.dspace6.model import (
    ACTIONS,
    Bitstream,
    Collection,
    Community,
    Item,
    Meta,
    N,
    Node,
    Repository,
    User,
    field_key,
    number_places,
    ordered_metadata,
)
from docfs.emulators.thumbjpeg import thumbnail_jpeg

#: ``grant(ANONYMOUS, uuid, action)`` gives an action to the Anonymous group (i.e. everybody).
ANONYMOUS = "anonymous"


class Backdoor(Repository):
    """The Python side door tests use; every method takes the state lock."""

    def reset(self) -> None:
        """Back to an empty repository: no content, users or sessions, an empty request log,
        no planned faults. UUIDs start again from the constructor's seed."""
        with self._state:
            self._init_state()
        self.clear_log()
        self.clear_faults()
        with self._lock:
            self.faults_injected = 0

    def add_user(
        self, email: str, password: str, *, admin: bool = False, fullname: str | None = None
    ) -> str:
        """Create an EPerson (a member of Administrator when ``admin``); returns its uuid."""
        with self._state:
            key = email.strip().lower()
            user = User(self._new_uuid(), key, password, admin, fullname or key)
            self._users[key] = user
            return user.uuid

    def add_community(self, name: str, parent: str | None = None, *, public: bool = True) -> str:
        with self._state:
            above = self._backdoor(Community, parent) if parent is not None else None
            return self._create_community(name, above, public, {}).uuid

    def add_collection(
        self, name: str, community: str, *, public: bool = True, workflow: bool = False
    ) -> str:
        """A collection; with ``workflow`` new REST items go to review and are never listed."""
        with self._state:
            parent = self._backdoor(Community, community)
            return self._create_collection(name, parent, public, {}, workflow=workflow).uuid

    def add_item(
        self,
        collection: str,
        title: str,
        *,
        metadata: dict[str, list[str]] | None = None,
        public: bool = True,
        discoverable: bool = True,
        last_modified: datetime | None = None,
    ) -> str:
        """An archived item with ``dc.title`` and ``metadata`` (keys must be registry fields)."""
        with self._state:
            k = self._backdoor(Collection, collection)
            values = [Meta("dc", "title", None, title)]
            for key, texts in (metadata or {}).items():
                schema, element, qualifier = self._registry_field(key)
                values.extend(Meta(schema, element, qualifier, t) for t in texts)
            when = self._server_time(last_modified) if last_modified is not None else None
            item = self._create_item(k, values, public=public, discoverable=discoverable, when=when)
            return item.uuid

    def add_bitstream(
        self,
        item: str,
        name: str | None,
        data: bytes,
        *,
        bundle: str = "ORIGINAL",
        public: bool = True,
        description: str | None = None,
    ) -> str:
        """A bitstream as an ingest creates it (next ``sequenceId``; item time unchanged)."""
        with self._state:
            owner = self._backdoor(Item, item)
            top = max((b.sequence_id for bs in owner.bundles.values() for b in bs), default=0)
            fmt = LICENSE if bundle == "LICENSE" else format_from_registry(name)
            b = self._add_bitstream(
                owner,
                name,
                bytes(data),
                bundle=bundle,
                fmt=fmt,
                public=public,
                description=description,
                sequence_id=max(top, 0) + 1,
            )
            return b.uuid

    #: the formats the thumbnail filters of a default configuration take (dspace.cfg
    #: ``filter.plugins``: "JPEG Thumbnail" = JPEGFilter for BMP, GIF, JPEG, image/png;
    #: "PDFBox JPEG Thumbnail" = PDFBoxThumbnail for Adobe PDF). TIFF needs the optional
    #: ImageMagick filters, off by default.
    THUMBNAIL_INPUTS = frozenset({"BMP", "GIF", "JPEG", "image/png", "Adobe PDF"})

    def filter_media(self, item: str | None = None) -> list[str]:
        """``dspace filter-media`` for thumbnails, on one item or all: each ORIGINAL bitstream
        of a thumbnail input format without one gets ``<name>.jpg`` (format JPEG, at most
        ``thumbnail.maxwidth`` 80 px) in the THUMBNAIL bundle, with the source's policies
        (``MediaFilterServiceImpl.processBitstream``: ``inheritPolicies``; ``getFilteredName``
        of JPEGFilter/PDFBoxThumbnail); the item is then updated (``itemService.update``:
        sequence ids and ``lastModified``). Returns the new bitstreams' uuids."""
        made: list[str] = []
        with self._state:
            items = (
                [self._backdoor(Item, item)]
                if item is not None
                else [n for n in self._objects.values() if isinstance(n, Item)]
            )
            for owner in items:
                existing = {b.name for b in owner.bundles.get("THUMBNAIL", [])}
                created = False
                for b in list(owner.bundles.get("ORIGINAL", [])):
                    name = f"{b.name}.jpg"
                    if b.fmt.short not in self.THUMBNAIL_INPUTS or not b.name or name in existing:
                        continue
                    thumb = self._add_bitstream(
                        owner,
                        name,
                        thumbnail_jpeg(b.data),
                        bundle="THUMBNAIL",
                        fmt=FORMAT_BY_MIME["image/jpeg"],
                        public=self._is_public(b),
                        description="Generated Thumbnail",
                        sequence_id=-1,
                    )
                    made.append(thumb.uuid)
                    created = True
                if created:
                    self._update_item(owner)
        return made

    def grant(self, email: str, uuid: str, action: str) -> None:
        """Give an EPerson (or ``ANONYMOUS``) an action on an object, as a resource policy.

        Actions are those of DSpace: READ, WRITE, ADD, REMOVE, DELETE, and ADMIN, which on a
        community or collection covers every action on everything below it. Rights do not
        otherwise inherit: uploading to an item needs WRITE and ADD on that item.
        """
        action = action.upper()
        if action not in ACTIONS:
            raise ValueError(f"unknown action {action!r}")
        with self._state:
            node = self._backdoor(Node, uuid)
            if email == ANONYMOUS:
                node.policies.append(self._new_policy(action, group=self._anonymous_group))
                return
            user = self._users.get(email.strip().lower())
            if user is None:
                raise KeyError(f"no user {email!r}")
            node.policies.append(self._new_policy(action, eperson=user.uuid))

    def set_public(self, uuid: str, public: bool) -> None:
        """Add or remove the Anonymous READ policy of one object (children are not touched)."""
        with self._state:
            node = self._backdoor(Node, uuid)
            node.policies = [
                p
                for p in node.policies
                if not (p.action == "READ" and p.group == self._anonymous_group)
            ]
            if public:
                node.policies.extend(self._public_policies(True))

    def set_workflow(self, collection: str, workflow: bool) -> None:
        with self._state:
            self._backdoor(Collection, collection).workflow = workflow

    def set_discoverable(self, item: str, discoverable: bool) -> None:
        with self._state:
            self._backdoor(Item, item).discoverable = discoverable

    def map_item(self, item: str, collection: str) -> None:
        """Map an archived item into a further collection (DSpace's item mapper)."""
        with self._state:
            i = self._backdoor(Item, item)
            k = self._backdoor(Collection, collection)
            if k not in i.collections:
                i.collections.append(k)
                bisect.insort(k.items, i.uuid)

    def unmap_item(self, item: str, collection: str) -> None:
        """Take an item out of a collection as ``CollectionServiceImpl.removeItem`` does (it
        is deleted if that was its last collection), behind the client's back."""
        with self._state:
            self._remove_item_from(
                self._backdoor(Collection, collection), self._backdoor(Item, item)
            )

    def register_field(self, key: str) -> None:
        """Add ``schema.element[.qualifier]`` to the metadata registry."""
        with self._state:
            self._fields.add(field_key(key))

    def set_bitstream_data(self, uuid: str, data: bytes) -> None:
        """Change a file's content behind the client's back (size, MD5, item time follow)."""
        with self._state:
            b = self._backdoor(Bitstream, uuid)
            b.data = bytes(data)
            b.md5 = hashlib.md5(b.data).hexdigest()
            self._touch(b.item)

    def rename_bitstream(self, uuid: str, name: str) -> None:
        with self._state:
            b = self._backdoor(Bitstream, uuid)
            b.name = name
            self._touch(b.item)

    def delete_object(self, uuid: str) -> None:
        """Delete any object with everything below it (an item from all its collections)."""
        with self._state:
            node = self._backdoor(Node, uuid)
            if isinstance(node, Bitstream):
                self._remove_bitstream(node)
            elif isinstance(node, Item):
                self._delete_item(node)
            elif isinstance(node, Collection):
                self._delete_collection(node)
            elif isinstance(node, Community):
                self._delete_community(node)

    def set_metadata(self, item: str, key: str, values: list[str]) -> None:
        """Replace every value of one field of an item."""
        with self._state:
            i = self._backdoor(Item, item)
            target = self._registry_field(key)
            i.metadata = [m for m in i.metadata if m.field != target]
            added = [Meta(*target, v) for v in values]
            i.metadata.extend(added)
            number_places(i, added)
            self._touch(i)

    def touch(self, item: str, when: datetime | None = None) -> None:
        """Set an item's ``lastModified`` (now by default)."""
        with self._state:
            i = self._backdoor(Item, item)
            i.last_modified = self._server_time(when) if when is not None else self._now()

    def expire_sessions(self) -> None:
        """Forget every login: old cookies act as anonymous, clients must log in again."""
        with self._state:
            self._sessions.clear()

    def issued_sessions(self) -> list[str]:
        """Every ``JSESSIONID`` value handed out so far, expired ones included (secrets that
        must never show up in a client's logs)."""
        with self._state:
            return list(self._issued)

    def bitstream_data(self, uuid: str) -> bytes:
        with self._state:
            return self._backdoor(Bitstream, uuid).data

    def bitstreams_of(self, item: str) -> list[dict[str, Any]]:
        with self._state:
            i = self._backdoor(Item, item)
            return [
                {
                    "name": b.name,
                    "uuid": b.uuid,
                    "bundle": b.bundle,
                    "size": len(b.data),
                    "md5": b.md5,
                    "format": b.fmt.short,
                    "mime": b.fmt.mime,
                    "sequence_id": b.sequence_id,
                    "description": b.description,
                }
                for bundle in i.bundles.values()
                for b in bundle
            ]

    def items_of(self, collection: str) -> list[dict[str, Any]]:
        """The archived items of a collection in listing (UUID) order."""
        with self._state:
            k = self._backdoor(Collection, collection)
            return [{"uuid": u, "title": self._items[u].name} for u in k.items]

    def children_of(self, community: str) -> dict[str, list[dict[str, Any]]]:
        with self._state:
            c = self._backdoor(Community, community)
            return {
                "communities": [{"uuid": s.uuid, "name": s.name} for s in c.subs],
                "collections": [{"uuid": k.uuid, "name": k.name} for k in c.collections],
            }

    def get_object(self, uuid: str) -> dict[str, Any] | None:
        """A plain snapshot of one object, or None when it does not exist (or was deleted)."""
        with self._state:
            node = self._objects.get(uuid)
            if node is None:
                return None
            snap: dict[str, Any] = {
                "type": node.kind,
                "uuid": node.uuid,
                "legacy_id": node.legacy_id,
                "public": self._is_public(node),
            }
            if isinstance(node, Community):
                snap.update(
                    name=node.name,
                    handle=node.handle,
                    parent=node.parent.uuid if node.parent else None,
                )
            elif isinstance(node, Collection):
                snap.update(
                    name=node.name,
                    handle=node.handle,
                    parent=node.community.uuid,
                    workflow=node.workflow,
                    number_items=len(node.items),
                )
            elif isinstance(node, Item):
                snap.update(
                    name=node.name,
                    handle=node.handle,
                    parent=node.collections[0].uuid if node.collections else None,
                    collections=[k.uuid for k in node.collections],
                    submitted_to=node.submitted_to.uuid,
                    archived=node.archived,
                    discoverable=node.discoverable,
                    last_modified=node.last_modified,
                    metadata=self._metadata_dict(node),
                )
            elif isinstance(node, Bitstream):
                snap.update(
                    name=node.name,
                    parent=node.item.uuid if node.item else None,
                    bundle=node.bundle,
                    size=len(node.data),
                    md5=node.md5,
                    format=node.fmt.short,
                    mime=node.fmt.mime,
                    description=node.description,
                    sequence_id=node.sequence_id,
                )
            return snap

    # ---- backdoor helpers ---------------------------------------------------------------------

    def _backdoor(self, cls: type[N], uuid: str) -> N:
        node = self._objects.get(uuid)
        if not isinstance(node, cls):
            raise KeyError(f"no {cls.kind} {uuid!r}")
        return node

    def _registry_field(self, key: str) -> tuple[str, str, str | None]:
        if key.count(".") not in (1, 2):
            raise ValueError(f"malformed metadata key {key!r}")
        parsed = field_key(key)
        if parsed not in self._fields:
            raise ValueError(f"{key!r} is not in the metadata registry (see register_field)")
        return parsed

    def _server_time(self, when: datetime) -> datetime:
        if when.tzinfo is None:
            return when
        return when.astimezone(self.server_tz).replace(tzinfo=None)

    @staticmethod
    def _metadata_dict(item: Item) -> dict[str, list[str | None]]:
        out: dict[str, list[str | None]] = {}
        for m in ordered_metadata(item):
            out.setdefault(m.key, []).append(m.value)
        return out
