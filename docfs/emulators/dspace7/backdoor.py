"""What tests (and the demo data) use to build, change and inspect a DSpace 7 repository behind
the client's back: ``add_*``, ``filter_media``, permissions, ``set_content``, ``expire_sessions``,
``approve_workflow``, ``reindex`` and the inspection helpers. Each takes the lock, so tests may
call them from another thread while the server runs."""

from __future__ import annotations

import math
import time
from collections.abc import Iterable
from typing import Any

from docfs.emulators.dspace7.model import (
    Bitstream,
    Collection,
    Community,
    EPerson,
    Item,
    Model,
    guess_mime,
)
from docfs.emulators.thumbjpeg import thumbnail_jpeg


class Backdoor(Model):
    """Building, changing and inspecting the repository."""

    # ---- building and changing the repository ------------------------------------------

    def add_user(self, email: str, password: str, *, admin: bool = False) -> str:
        """Create an EPerson who can log in with ``email``/``password``; returns its uuid."""
        with self._state:
            person = EPerson(uuid=self._new_uuid(), email=email, password=password, admin=admin)
            self._epersons[person.uuid] = person
            return person.uuid

    def add_community(
        self, name: str, *, parent: str | None = None, metadata: dict[str, Any] | None = None
    ) -> str:
        """Create a community (top-level unless ``parent``); returns its uuid."""
        with self._state:
            if parent is not None:
                self._get(parent, Community)
            community = Community(uuid=self._new_uuid(), parent=parent)
            self._init_dso(community, name, metadata)
            return community.uuid

    def add_collection(
        self,
        name: str,
        community: str,
        *,
        metadata: dict[str, Any] | None = None,
        workflow: bool = False,
    ) -> str:
        """Create a collection in ``community``; ``workflow`` sends deposits to review."""
        with self._state:
            self._get(community, Community)
            collection = Collection(uuid=self._new_uuid(), parent=community, workflow=workflow)
            self._init_dso(collection, name, metadata)
            return collection.uuid

    def add_item(
        self,
        collection: str,
        title: str,
        *,
        metadata: dict[str, Any] | None = None,
        discoverable: bool = True,
        withdrawn: bool = False,
        indexed: bool = True,
    ) -> str:
        """Create an archived item in ``collection``; ``indexed=False`` hides it from Discovery
        until ``reindex()`` (or until ``index_delay`` has passed)."""
        with self._state:
            self._get(collection, Collection)
            item = Item(
                uuid=self._new_uuid(),
                owning=collection,
                discoverable=discoverable,
                withdrawn=withdrawn,
            )
            self._init_dso(item, title, metadata)
            self._archive(item)
            if not indexed:
                item.indexed_at = math.inf
            return item.uuid

    def add_bundle(self, item: str, name: str) -> str:
        """Create a bundle (ORIGINAL, LICENSE, THUMBNAIL…) in ``item``; returns its uuid."""
        with self._state:
            return self._create_bundle(self._get(item, Item), name).uuid

    def add_bitstream(
        self,
        item: str,
        name: str | None,
        content: bytes,
        *,
        bundle: str = "ORIGINAL",
        mime: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> str:
        """Add a file to ``bundle`` of ``item`` (creating the bundle); returns its uuid.

        Seeded bitstreams get sequence ids as if installed by ItemService; ``name=None``
        makes an unnamed bitstream.
        """
        with self._state:
            owner = self._get(item, Item)
            assert isinstance(owner, Item)
            target = self._bundle_named(owner, bundle) or self._create_bundle(owner, bundle)
            stream = self._create_bitstream(target, name, content, mime, metadata)
            stream.sequence_id = owner.next_sequence
            owner.next_sequence += 1
            return stream.uuid

    #: MIME types of the formats the default thumbnail filters take (dspace.cfg of 7.x:
    #: JPEGFilter "BMP, GIF, JPEG, PNG", PDFBoxThumbnail "Adobe PDF")
    THUMBNAIL_INPUTS = frozenset(
        {"image/bmp", "image/gif", "image/jpeg", "image/png", "application/pdf"}
    )

    def filter_media(self, item: str | None = None) -> list[str]:
        """``dspace filter-media`` for thumbnails, on one item or all: each ORIGINAL bitstream
        of a thumbnail input format without one gets ``<name>.jpg`` (JPEG, at most
        ``thumbnail.maxwidth`` 175 px) in the THUMBNAIL bundle, with the source's READ policy
        (``MediaFilterServiceImpl.processBitstream``: ``inheritPolicies``). Adding it touches
        the item, as any bundle change does. Returns the new bitstreams' uuids."""
        made: list[str] = []
        with self._state:
            items = (
                [self._get(item, Item)]
                if item is not None
                else [o for o in self._objects.values() if isinstance(o, Item)]
            )
            for owner in items:
                assert isinstance(owner, Item)
                original = self._bundle_named(owner, "ORIGINAL")
                if original is None:
                    continue
                thumbs = self._bundle_named(owner, "THUMBNAIL")
                existing = set()
                if thumbs is not None:
                    existing = {self._objects[u].name for u in thumbs.bitstreams}
                for uuid in list(original.bitstreams):
                    source = self._objects[uuid]
                    assert isinstance(source, Bitstream)
                    name = f"{source.name}.jpg"
                    if source.mime not in self.THUMBNAIL_INPUTS or not source.name:
                        continue
                    if name in existing:
                        continue
                    if thumbs is None:
                        thumbs = self._create_bundle(owner, "THUMBNAIL")
                    data = thumbnail_jpeg(source.content, longest=175)
                    stream = self._create_bitstream(thumbs, name, data, "image/jpeg", None)
                    stream.readers = None if source.readers is None else set(source.readers)
                    stream.sequence_id = owner.next_sequence
                    owner.next_sequence += 1
                    made.append(stream.uuid)
        return made

    def set_logo(self, owner: str, content: bytes, name: str = "logo.png") -> str:
        """Give a community or collection a logo bitstream; returns the bitstream uuid."""
        with self._state:
            dso = self._get(owner, Community, Collection)
            assert isinstance(dso, Community | Collection)
            stream = Bitstream(uuid=self._new_uuid(), logo_of=owner, content=content)
            stream.mime = guess_mime(name)
            stream.set_name(name)
            self._objects[stream.uuid] = stream
            dso.logo = stream.uuid
            return stream.uuid

    def register_doi(self, item: str, doi: str) -> None:
        """Give ``item`` a DOI (``10.5072/…``), as a server with ``DOIIdentifierProvider``
        enabled does for items only; ``pid/find?id=doi:…`` then resolves it."""
        with self._state:
            self._get(item, Item)
            self._dois[doi.lower().removeprefix("doi:")] = item

    def map_item(self, item: str, collection: str) -> None:
        """Map ``item`` into a second collection (it shows there in Discovery)."""
        with self._state:
            target = self._get(item, Item)
            self._get(collection, Collection)
            assert isinstance(target, Item)
            if collection not in target.mapped and collection != target.owning:
                target.mapped.append(collection)

    def restrict(self, uuid: str, readers: Iterable[str] | None) -> None:
        """Set who may READ an object: emails, ``[]`` for administrators only, None for all."""
        with self._state:
            dso = self._get(uuid)
            dso.readers = None if readers is None else {self._person(e).uuid for e in readers}

    def grant_role(self, email: str, role: str) -> None:
        """``submitter``: make ``email`` a non-administrator in the SUBMIT group of every
        collection (as ``--role submitter`` does, after the demo data is seeded)."""
        with self._state:
            person = self._person(email)
            if role == "admin":
                person.admin = True
                return
            if role != "submitter":
                raise ValueError(f"unknown role {role!r}")
            person.admin = False
            for dso in self._objects.values():
                if isinstance(dso, Collection):
                    dso.submitters.add(person.uuid)

    def grant_submit(self, collection: str, email: str) -> None:
        """Put ``email`` into the SUBMIT group of one collection."""
        with self._state:
            target = self._get(collection, Collection)
            assert isinstance(target, Collection)
            target.submitters.add(self._person(email).uuid)

    def grant_write(self, uuid: str, email: str) -> None:
        """Let ``email`` add, change and remove things in (and below) the object."""
        with self._state:
            self._get(uuid).writers.add(self._person(email).uuid)

    def set_content(self, bitstream: str, content: bytes) -> None:
        """Change a file's bytes behind the client's back (checksum and dates follow)."""
        with self._state:
            stream = self._get(bitstream, Bitstream)
            assert isinstance(stream, Bitstream)
            stream.content = content
            self._touch(stream)

    def lose_asset(self, bitstream: str) -> None:
        """Remove a file's bytes from the "assetstore": its content answers 500 from now on."""
        with self._state:
            stream = self._get(bitstream, Bitstream)
            assert isinstance(stream, Bitstream)
            stream.asset_missing = True

    def set_name(self, uuid: str, name: str) -> None:
        """Rename any object (its ``dc.title``) behind the client's back."""
        with self._state:
            dso = self._get(uuid)
            dso.set_name(name)
            self._touch(dso)

    def set_metadata(self, uuid: str, field_name: str, values: list[str] | None) -> None:
        """Set (or with None remove) a metadata field of any object."""
        with self._state:
            dso = self._get(uuid)
            if values is None:
                dso.metadata.pop(field_name, None)
            else:
                dso.metadata[field_name] = [{"value": v} for v in values]
            self._touch(dso)

    def delete(self, uuid: str) -> None:
        """Delete any object (and everything below it) behind the client's back."""
        with self._state:
            self._delete(self._get(uuid))

    def expire_sessions(self, email: str | None = None) -> None:
        """Invalidate every login token (of one person, or of everybody), as a logout does."""
        with self._state:
            for person in self._epersons.values():
                if email is None or person.email == email:
                    person.salt += 1

    def approve_workflow(self, item: str) -> None:
        """Accept an item waiting in review: it is archived and appears in its collection."""
        with self._state:
            for wf_id, wf in list(self._workflow.items()):
                if wf.item == item:
                    del self._workflow[wf_id]
                    target = self._get(item, Item)
                    assert isinstance(target, Item)
                    self._archive(target)
                    return
            raise KeyError(item)

    def reindex(self) -> None:
        """Make every archived item visible in Discovery now (a Solr commit)."""
        with self._state:
            now = time.time()
            for dso in self._objects.values():
                if isinstance(dso, Item) and dso.indexed_at > now:
                    dso.indexed_at = now

    # ---- inspecting -------------------------------------------------------------------------

    def exists(self, uuid: str) -> bool:
        """True while an object with this uuid exists."""
        with self._state:
            return uuid in self._objects

    def object_type(self, uuid: str) -> str:
        """``community``, ``collection``, ``item``, ``bundle`` or ``bitstream``."""
        with self._state:
            return self._get(uuid).type

    def handle_of(self, uuid: str) -> str | None:
        """An object's handle (None: it has none, e.g. a bitstream or a workspace item)."""
        with self._state:
            return self._get(uuid).handle

    def name_of(self, uuid: str) -> str | None:
        """An object's name (its first ``dc.title``), None when it has none."""
        with self._state:
            return self._get(uuid).name

    def metadata_of(self, uuid: str) -> dict[str, list[str]]:
        """Metadata of an object as plain value lists."""
        with self._state:
            return {
                k: [str(v.get("value")) for v in values]
                for k, values in self._get(uuid).metadata.items()
            }

    def last_modified(self, uuid: str) -> float:
        """An object's last-modified time (what an item's ``lastModified`` shows)."""
        with self._state:
            return self._get(uuid).last_modified

    def content(self, bitstream: str) -> bytes:
        """The stored bytes of a file."""
        with self._state:
            stream = self._get(bitstream, Bitstream)
            assert isinstance(stream, Bitstream)
            return stream.content

    def find(self, name: str, kind: str | None = None) -> list[str]:
        """Uuids of the objects named ``name`` (optionally of one type)."""
        with self._state:
            return [
                d.uuid
                for d in self._objects.values()
                if d.name == name and (kind is None or d.type == kind)
            ]

    def bitstreams(self, item: str, bundle: str = "ORIGINAL") -> list[tuple[str, str | None]]:
        """(uuid, name) of the files of one bundle of an item, in bundle order."""
        with self._state:
            target = self._bundle_named(self._get(item, Item), bundle)
            if target is None:
                return []
            return [(u, self._objects[u].name) for u in target.bitstreams]

    def bundle_names(self, item: str) -> list[str]:
        """The names of an item's bundles, in the item's order."""
        with self._state:
            owner = self._get(item, Item)
            assert isinstance(owner, Item)
            return [self._objects[b].name or "" for b in owner.bundles]

    def primary_of(self, item: str, bundle: str = "ORIGINAL") -> str | None:
        """The uuid of a bundle's primary bitstream, None when it has none (or no bundle)."""
        with self._state:
            target = self._bundle_named(self._get(item, Item), bundle)
            return None if target is None else target.primary

    def set_primary(self, item: str, bitstream: str | None, bundle: str = "ORIGINAL") -> None:
        """Make ``bitstream`` the bundle's primary (None: no primary), as the web UI does."""
        with self._state:
            target = self._bundle_named(self._get(item, Item), bundle)
            assert target is not None and (bitstream is None or bitstream in target.bitstreams)
            target.primary = bitstream

    def item_state(self, item: str) -> dict[str, Any]:
        """inArchive / discoverable / withdrawn / owning collection / pending workflow."""
        with self._state:
            target = self._get(item, Item)
            assert isinstance(target, Item)
            return {
                "in_archive": target.in_archive,
                "discoverable": target.discoverable,
                "withdrawn": target.withdrawn,
                "owning": target.owning,
                "in_workflow": any(w.item == item for w in self._workflow.values()),
                "in_workspace": any(w.item == item for w in self._workspace.values()),
            }

    def workspace_items(self) -> list[str]:
        """Uuids of the items in somebody's workspace (made, not deposited)."""
        with self._state:
            return [w.item for w in self._workspace.values()]

    def items_in(self, collection: str) -> list[str]:
        """Uuids of the archived items owned by a collection (whatever Discovery shows)."""
        with self._state:
            return [
                d.uuid
                for d in self._objects.values()
                if isinstance(d, Item) and d.owning == collection and d.in_archive
            ]
