"""DSpace 7's objects and what may be done to them, without HTTP.

The dataclasses (EPerson, communities, collections, items, bundles, bitstreams, workspace and
workflow items), the naming rules of uploads and replacements, ``State`` (the typed shared state
every part of the emulator works on) and ``Model``, the domain operations on it: creating,
archiving, touching, deleting, the permission model and JSON Patch of metadata. Callers hold
``State._state``.
"""

from __future__ import annotations

import hashlib
import mimetypes
import random
import re
import threading
import time
import uuid as uuidlib
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from docfs.emulators.dspace7.wire import HANDLE_PREFIX, JSON, METADATA_FIELD_RX, Fail, iso


def metadata_value(value: Any) -> dict[str, Any]:
    """A stored metadata value: the keys a client sent, ``value`` at least
    (docs/protocols/dspace7.md, "Shapes")."""
    if isinstance(value, dict):
        return dict(value)
    return {"value": value}


def _extension(name: str) -> str:
    """Commons IO ``FilenameUtils.getExtension``: after the last dot of the last path part."""
    base = re.split(r"[/\\]", name)[-1]
    return base.rpartition(".")[2] if "." in base else ""


def _remove_extension(name: str) -> str:
    """Commons IO ``FilenameUtils.removeExtension``."""
    base = re.split(r"[/\\]", name)[-1]
    if "." not in base:
        return name
    return name[: len(name) - len(_extension(name)) - 1]


def replaced_name(old: str | None, uploaded: str | None, replace_name: bool) -> str | None:
    """The name ``BitstreamServiceImpl.replace`` (10.0) gives the new bitstream: the uploaded
    filename with ``replaceName``; else the old name when the extensions agree, and otherwise
    the old base name, a dot and the uploaded file's extension (``report.pdf`` replaced by an
    upload named ``42`` becomes ``report.``)."""
    if replace_name:
        return uploaded
    if old is None or _extension(uploaded or "") == _extension(old):
        return old
    return f"{_remove_extension(old)}.{_extension(uploaded or '')}"


def guess_mime(name: str | None) -> str:
    """What ``bitstreamFormatService.guessFormat`` does: by extension, else "Unknown"."""
    if name:
        mime, _ = mimetypes.guess_type(name, strict=False)
        if mime:
            return mime
    return "application/octet-stream"


# ---- the model -------------------------------------------------------------------------------


@dataclass
class EPerson:
    uuid: str
    email: str
    password: str
    admin: bool = False
    #: part of the JWT signing key: bumping it (logout) invalidates every token of the person
    salt: int = 0


@dataclass
class DSO:
    """Base of every DSpace object; ``name`` is always the first ``dc.title`` value."""

    uuid: str
    metadata: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    handle: str | None = None
    #: eperson uuids with READ; None = anonymous READ (the usual policy)
    readers: set[str] | None = None
    #: eperson uuids with ADD/WRITE/REMOVE here and on everything below
    writers: set[str] = field(default_factory=set)
    last_modified: float = field(default_factory=time.time)

    type: str = "dso"

    @property
    def name(self) -> str | None:
        values = self.metadata.get("dc.title")
        if values:
            value = values[0].get("value")
            return None if value is None else str(value)
        return None

    def set_name(self, name: str) -> None:
        self.metadata["dc.title"] = [{"value": name}]


@dataclass
class Community(DSO):
    parent: str | None = None
    logo: str | None = None
    type: str = "community"


@dataclass
class Collection(DSO):
    parent: str = ""
    logo: str | None = None
    #: True if deposits go through a review workflow instead of being archived at once
    workflow: bool = False
    #: eperson uuids in the collection's SUBMIT group (ADD on the collection): they may start
    #: workspace items here and nothing else (WorkspaceItemRestRepository.createAndReturn)
    submitters: set[str] = field(default_factory=set)
    type: str = "collection"


@dataclass
class Item(DSO):
    owning: str | None = None
    mapped: list[str] = field(default_factory=list)
    in_archive: bool = True
    discoverable: bool = True
    withdrawn: bool = False
    submitter: str | None = None
    bundles: list[str] = field(default_factory=list)
    #: Discovery shows the item from this time on (Solr commit delay)
    indexed_at: float = 0.0
    entity_type: str | None = None
    next_sequence: int = 1
    type: str = "item"


@dataclass
class Bundle(DSO):
    item: str = ""
    bitstreams: list[str] = field(default_factory=list)
    primary: str | None = None
    type: str = "bundle"


@dataclass
class Bitstream(DSO):
    bundle: str | None = None
    content: bytes = b""
    mime: str = "application/octet-stream"
    sequence_id: int | None = None
    #: the community/collection whose logo this is (logos belong to no bundle)
    logo_of: str | None = None
    #: the file is gone from the assetstore: /content answers 500 (DSpace#2898)
    asset_missing: bool = False
    type: str = "bitstream"
    #: (content, its MD5): a checksum is asked for by every listing and every download, and
    #: hashing 256 MiB per ranged request made the emulator the bottleneck of block reads
    _md5_of: tuple[bytes, str] | None = field(default=None, repr=False, compare=False)

    @property
    def md5(self) -> str:
        cached = self._md5_of
        if cached is None or cached[0] is not self.content:
            cached = self._md5_of = (self.content, hashlib.md5(self.content).hexdigest())
        return cached[1]


@dataclass
class WorkspaceItem:
    id: int
    item: str
    collection: str
    submitter: str
    license_granted: bool = False
    last_modified: float = field(default_factory=time.time)


@dataclass
class WorkflowItem:
    id: int
    item: str
    collection: str
    submitter: str


class State:
    """The emulator's state and settings, shared by every part of it (``DSpace7Emulator.__init__``
    sets them; see there for what the settings mean). Everything is guarded by ``_state``."""

    _state: threading.RLock
    #: uuids, the signing secret: reproducible from the seed
    _ids: random.Random
    version: str
    major: int
    jwt_lifetime: float
    short_lived_lifetime: float
    lazy_csrf: bool
    replace_bitstream_enabled: bool
    patch_add_takes_all: bool
    upload_required: bool
    cover_pages: bool
    max_upload_bytes: int
    index_delay: float
    rate_limit: tuple[int, float] | None
    rate_limit_retry_after: float
    _secret: bytes
    _epersons: dict[str, EPerson]
    _objects: dict[str, DSO]
    _handles: dict[str, str]
    _handle_counter: int
    _dois: dict[str, str]
    _workspace: dict[int, WorkspaceItem]
    _workflow: dict[int, WorkflowItem]
    _submission_counter: int
    #: request times inside the rate-limit window
    _recent: deque[float]


class Model(State):
    """Domain operations on the repository (callers hold the lock)."""

    def _new_uuid(self) -> str:
        return str(uuidlib.UUID(int=self._ids.getrandbits(128), version=4))

    def _new_handle(self, uuid: str) -> str:
        self._handle_counter += 1
        handle = f"{HANDLE_PREFIX}/{self._handle_counter}"
        self._handles[handle] = uuid
        return handle

    def _init_dso(self, dso: DSO, name: str | None, metadata: dict[str, Any] | None) -> None:
        for key, values in (metadata or {}).items():
            seq = values if isinstance(values, list) else [values]
            dso.metadata[key] = [metadata_value(v) for v in seq]
        if name is not None:
            dso.set_name(name)
        if not isinstance(dso, Item):
            dso.handle = self._new_handle(dso.uuid)
        self._objects[dso.uuid] = dso

    def _archive(self, item: Item) -> None:
        """Install an item: handle, system metadata, Discovery visibility."""
        now = time.time()
        item.in_archive = True
        if item.handle is None:
            item.handle = self._new_handle(item.uuid)
        stamp = iso(now)
        item.metadata.setdefault("dc.date.accessioned", [{"value": stamp}])
        item.metadata.setdefault("dc.date.available", [{"value": stamp}])
        item.metadata.setdefault(
            "dc.identifier.uri", [{"value": f"http://hdl.handle.net/{item.handle}"}]
        )
        item.indexed_at = now + self.index_delay
        item.last_modified = now

    def _get(self, uuid: str, *kinds: type[DSO]) -> DSO:
        dso = self._objects.get(uuid)
        if dso is None or (kinds and not isinstance(dso, kinds)):
            raise KeyError(uuid)
        return dso

    def _person(self, email: str) -> EPerson:
        for person in self._epersons.values():
            if person.email.lower() == email.lower():
                return person
        raise KeyError(email)

    def _bundle_named(self, item: DSO, name: str) -> Bundle | None:
        assert isinstance(item, Item)
        for uuid in item.bundles:
            bundle = self._objects[uuid]
            if isinstance(bundle, Bundle) and bundle.name == name:
                return bundle
        return None

    def _create_bundle(self, item: DSO, name: str) -> Bundle:
        assert isinstance(item, Item)
        bundle = Bundle(uuid=self._new_uuid(), item=item.uuid)
        bundle.set_name(name)
        self._objects[bundle.uuid] = bundle
        item.bundles.append(bundle.uuid)
        self._touch(item)
        return bundle

    def _create_bitstream(
        self,
        bundle: Bundle,
        name: str | None,
        content: bytes,
        mime: str | None,
        metadata: dict[str, Any] | None,
    ) -> Bitstream:
        stream = Bitstream(uuid=self._new_uuid(), bundle=bundle.uuid, content=content)
        for key, values in (metadata or {}).items():
            seq = values if isinstance(values, list) else [values]
            stream.metadata[key] = [metadata_value(v) for v in seq]
        if name is not None:
            stream.set_name(name)
        stream.mime = mime or guess_mime(name)
        self._objects[stream.uuid] = stream
        bundle.bitstreams.append(stream.uuid)
        self._touch(stream)
        return stream

    def _touch(self, dso: DSO) -> None:
        """Update last-modified; bitstream and bundle changes also touch the item, as
        BundleServiceImpl does through ``itemService.updateLastModified``."""
        now = time.time()
        dso.last_modified = now
        item = self._item_of(dso)
        if item is not None and item is not dso:
            item.last_modified = now

    def _item_of(self, dso: DSO) -> Item | None:
        if isinstance(dso, Item):
            return dso
        if isinstance(dso, Bitstream) and dso.bundle is not None:
            dso = self._objects.get(dso.bundle) or dso
        if isinstance(dso, Bundle):
            found = self._objects.get(dso.item)
            return found if isinstance(found, Item) else None
        return None

    def _parent(self, dso: DSO) -> DSO | None:
        parent: str | None = None
        if isinstance(dso, Bitstream):
            parent = dso.bundle or dso.logo_of
        elif isinstance(dso, Bundle):
            parent = dso.item
        elif isinstance(dso, Item):
            parent = dso.owning
        elif isinstance(dso, Collection | Community):
            parent = dso.parent
        return self._objects.get(parent) if parent else None

    def _delete(self, dso: DSO) -> None:
        for child in self._children(dso):
            self._delete(child)
        self._objects.pop(dso.uuid, None)
        if dso.handle:
            self._handles.pop(dso.handle, None)
        if isinstance(dso, Bitstream) and dso.bundle in self._objects:
            bundle = self._objects[dso.bundle]
            assert isinstance(bundle, Bundle)
            bundle.bitstreams.remove(dso.uuid)
            if bundle.primary == dso.uuid:
                bundle.primary = None
            self._touch(bundle)
        elif isinstance(dso, Bundle) and dso.item in self._objects:
            item = self._objects[dso.item]
            assert isinstance(item, Item)
            item.bundles.remove(dso.uuid)
            self._touch(item)
        elif isinstance(dso, Item):
            for other in self._objects.values():
                if isinstance(other, Item) and dso.uuid in other.mapped:
                    other.mapped.remove(dso.uuid)
            for table in (self._workspace, self._workflow):
                for key in [k for k, w in table.items() if w.item == dso.uuid]:
                    del table[key]

    def _children(self, dso: DSO) -> list[DSO]:
        if isinstance(dso, Bundle):
            return [self._objects[u] for u in dso.bitstreams]
        if isinstance(dso, Item):
            return [self._objects[u] for u in dso.bundles]
        found: list[DSO] = []
        for other in list(self._objects.values()):
            if (
                (isinstance(other, Community) and other.parent == dso.uuid)
                or (isinstance(other, Collection) and other.parent == dso.uuid)
                or (isinstance(other, Item) and other.owning == dso.uuid)
            ):
                found.append(other)
        logo = getattr(dso, "logo", None)
        if logo and logo in self._objects:
            found.append(self._objects[logo])
        return found

    # ---- permissions -------------------------------------------------------------------------

    def _can_read(self, caller: EPerson | None, dso: DSO) -> bool:
        if caller is not None and caller.admin:
            return True
        if isinstance(dso, Item) and not dso.in_archive:
            # workspace and workflow items are private to their submitter
            return caller is not None and caller.uuid == dso.submitter
        if dso.readers is None:
            return True
        return caller is not None and caller.uuid in dso.readers

    def _can_write(self, caller: EPerson | None, dso: DSO | None) -> bool:
        if caller is None:
            return False
        if caller.admin:
            return True
        item = self._item_of(dso) if dso is not None else None
        if item is not None and not item.in_archive and item.submitter == caller.uuid:
            return any(w.item == item.uuid for w in self._workspace.values())
        while dso is not None:
            if caller.uuid in dso.writers:
                return True
            dso = self._parent(dso)
        return False

    # ---- derived facts -----------------------------------------------------------------------

    def _archived_count(self, dso: DSO) -> int:
        collections = {dso.uuid} if isinstance(dso, Collection) else self._collections_under(dso)
        return sum(
            1
            for d in self._objects.values()
            if isinstance(d, Item) and d.in_archive and d.owning in collections
        )

    def _collections_under(self, community: DSO) -> set[str]:
        found: set[str] = set()
        for child in self._children(community):
            if isinstance(child, Collection):
                found.add(child.uuid)
            elif isinstance(child, Community):
                found |= self._collections_under(child)
        return found

    def _validation_errors(self, ws: WorkspaceItem) -> list[JSON]:
        item = self._objects[ws.item]
        found: list[JSON] = []
        if not item.name:
            found.append(
                {
                    "message": "error.validation.required",
                    "paths": ["/sections/traditionalpageone/dc.title"],
                }
            )
        if not ws.license_granted:
            found.append(
                {"message": "error.validation.license.notgranted", "paths": ["/sections/license"]}
            )
        original = self._bundle_named(item, "ORIGINAL")
        if self.upload_required and (original is None or not original.bitstreams):
            # ItemServiceImpl.hasUploadedFiles: a bitstream in the ORIGINAL bundle
            found.append(
                {"message": "error.validation.filerequired", "paths": ["/sections/upload"]}
            )
        return found

    # ---- metadata patches --------------------------------------------------------------------

    def _apply_patch(self, dso: DSO, op: Any) -> None:
        """JSON Patch on ``/metadata/…`` (RestContract metadata-patch.md) and the item flags."""
        if not isinstance(op, dict) or not isinstance(op.get("path"), str):
            raise Fail(400)
        kind, path, value = op.get("op"), op["path"], op.get("value")
        if isinstance(dso, Item) and path in ("/withdrawn", "/discoverable") and kind == "replace":
            flag = value if isinstance(value, bool) else str(value).lower() == "true"
            setattr(dso, path[1:], flag)
            return
        parts = path.split("/")
        if len(parts) < 3 or parts[1] != "metadata" or not METADATA_FIELD_RX.match(parts[2]):
            raise Fail(422)
        key = parts[2]
        values = dso.metadata.get(key, [])
        index = parts[3] if len(parts) > 3 else None
        attribute = parts[4] if len(parts) > 4 else None
        if kind == "add":
            new = self._patch_values(value, every=self.patch_add_takes_all)
            if index == "-":
                dso.metadata[key] = values + new
            else:
                # any other index, or none, is place 0: DSpaceObjectMetadataAddOperation.add
                # passes 0 unless the path ends in "-", and addAndShiftRightMetadata puts the
                # value first (docs/protocols/dspace7.md, "Metadata PATCH on real releases")
                dso.metadata[key] = new + values
        elif kind == "replace":
            if index is None:
                # clearMetadata of the field, then one value (replaceMetadataFieldMetadata); a
                # missing field is simply set
                dso.metadata[key] = self._patch_values(value, every=False)
            else:
                position = self._index(index, len(values))
                if attribute is None:
                    values[position] = metadata_value(value)
                elif attribute in ("value", "language", "authority", "confidence"):
                    values[position][attribute] = value
                else:
                    raise Fail(422)
        elif kind == "remove":
            if key not in dso.metadata:
                raise Fail(422)
            if index is None:
                del dso.metadata[key]
            else:
                del values[self._index(index, len(values))]
                if not values:
                    del dso.metadata[key]
        else:
            raise Fail(422)

    @staticmethod
    def _patch_values(value: Any, *, every: bool) -> list[dict[str, Any]]:
        """The metadata values of a PATCH operation's ``value``.

        ``DSpaceObjectMetadataPatchUtils.extractMetadataValueFromOperation`` on the released
        7.x to 9.x lines reads one value: the first element of an array, the rest is ignored
        (DSpace#12419). The fix (DSpace#12428 on dspace-7_x, #12467 on main, 2026) lets
        ``add`` take them all; ``replace`` keeps the first only. An empty array or no value
        is "Could not extract MetadataValue Object from Operation", a 400."""
        seq = value if isinstance(value, list) else [value]
        if not seq or seq[0] is None:
            raise Fail(400)
        return [metadata_value(v) for v in (seq if every else seq[:1])]

    @staticmethod
    def _index(text: str, length: int) -> int:
        if not text.isdigit() or int(text) >= length:
            raise Fail(422)
        return int(text)
