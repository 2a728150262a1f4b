"""A protocol-faithful emulator of the DSpace 7+ Server REST API (``/server/api``, HAL JSON).

It follows ``shared/reference/dspace7.md``: the CSRF token dance (``DSPACE-XSRF-TOKEN`` header,
``DSPACE-XSRF-COOKIE`` cookie, a fresh token in every CSRF 403, ``GET /security/csrf`` from 8.0),
HS256 JWT bearer tokens with ``eid``/``sg``/``exp`` and a configurable lifetime, short-lived
download tokens, communities / collections / items / bundles / bitstreams with HAL ``_links``
(absolute hrefs) and Spring Data page objects, Discovery search with the real
``_embedded.searchResult`` nesting and its 100-per-page cap, ``embed=``/``embed.size=``
projections, bitstream content with HEAD, single byte ranges (206), a quoted-MD5 ``ETag``,
``Last-Modified`` and conditional requests (including DSpace's 416 for a failed ``If-Match``),
multipart upload into a bundle, JSON Patch on metadata (a bitstream rename is a ``dc.title``
patch), bundle reordering, the admin-only ``POST /core/items`` and the workspace-item →
workflow-item path for everybody else, and Spring Boot's error JSON for every failure.

Server versions differ in a few places (section 10 of the reference); ``version`` selects the
behaviour: ``"7.6"`` (no ``/security/csrf``), ``"8.x"``/``"9.x"``, and ``"10.0"`` (RFC 6266
``Content-Disposition`` and ``PUT …/content``, which answers 400 unless
``replace_bitstream_enabled``). Server settings (``docfs emulate dspace7 --setting``):
``replace-bitstream.enabled``, ``webui.submit.upload.required`` (a deposit without a file is
422) and ``citation-page.enable_globally`` (PDFs get a cover page for non-administrators); the
role ``submitter`` puts the user into every collection's SUBMIT group. What the server's source
says about each is in ``docs/protocols/dspace7.md``.

Emulator choices where the reference marks behaviour as unconfirmed are the ones it names as
"Emulator default (choice)". Further choices, all documented at the place they are made: a small
permission model (each object has an optional reader set and a writer set that is inherited by
everything below it), an unknown Discovery ``scope`` yields an empty result, a multi-range
``Range`` header is ignored (200 with the whole body), ``Content-Disposition`` is always
``attachment`` (no inline formats configured), a short-lived token is only accepted in
``?authentication-token=`` (DSpace signs it with another key than login tokens), and an optional
front-proxy rate limit answers 429 with ``Retry-After``.

Everything lives in memory behind one lock, so tests may call the backdoor methods (``add_*``,
``set_content``, ``expire_sessions``, ``approve_workflow``…) from another thread while the
server runs.
"""

from __future__ import annotations

import base64
import email.message
import email.utils
import hashlib
import hmac
import json
import logging
import math
import mimetypes
import random
import re
import threading
import time
import uuid as uuidlib
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from docfs.emulators.base import Emulator, ServerProfile, ServerSetting
from docfs.emulators.thumbjpeg import thumbnail_jpeg

JSON = dict[str, Any]
log = logging.getLogger("docfs.emulators.dspace7")

#: where the REST API lives below the server root (the webapp is deployed as ``/server``)
SERVER_PATH = "/server"
API_PATH = "/server/api"

CSRF_HEADER = "DSPACE-XSRF-TOKEN"
CSRF_REQUEST_HEADER = "X-XSRF-TOKEN"
CSRF_COOKIE = "DSPACE-XSRF-COOKIE"
MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
HAL = "application/hal+json;charset=UTF-8"
CHUNK = 64 * 1024

#: messages used by DSpaceApiExceptionControllerAdvice (reference section 1)
MESSAGES = {
    400: "Request is invalid or incorrect",
    401: "Authentication is required",
    403: "Access is denied",
    404: "The requested resource was not found",
    405: "Request method is not supported",
    413: "Maximum upload size exceeded",
    422: "Unprocessable or invalid entity",
    429: "Too many requests",
    500: "An exception has occurred",
}
REASONS = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    412: "Precondition Failed",
    413: "Payload Too Large",
    415: "Unsupported Media Type",
    416: "Requested Range Not Satisfiable",
    422: "Unprocessable Entity",
    429: "Too Many Requests",
    500: "Internal Server Error",
}
CSRF_MESSAGE = "Access is denied. Invalid CSRF token."
WWW_AUTHENTICATE = 'password realm="DSpace REST API"'
HANDLE_PREFIX = "123456789"
DISCOVERY_MAX = 100
PAGE_MAX = 2000
PAGE_DEFAULT = 20
SORT_FIELDS = ("score", "dc.title", "dc.date.issued", "dc.date.accessioned", "lastModified")
UUID_RX = "[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
RANGE_RX = re.compile(r"^bytes=\d*-\d*(,\s*\d*-\d*)*$")
METADATA_FIELD_RX = re.compile(r"^[A-Za-z0-9]+\.[A-Za-z0-9_]+(\.[A-Za-z0-9_]+)?$")


# ---- small helpers ---------------------------------------------------------------------------


def iso(ts: float) -> str:
    """DSpace's date format: ISO-8601 with milliseconds and an offset."""
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds")


def http_date(ts: float) -> str:
    return email.utils.formatdate(ts, usegmt=True)


def parse_http_date(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return email.utils.parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError):
        return None


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def metadata_value(value: Any) -> dict[str, Any]:
    """A stored metadata value: the keys a client sent, ``value`` at least (reference 4)."""
    if isinstance(value, dict):
        return dict(value)
    return {"value": value}


def tomcat_header(value: str) -> str:
    """A header value as Tomcat writes it: ISO-8859-1, with control characters and anything
    above U+00FF turned into spaces (``Http11OutputBuffer`` cannot send them). Without this, a
    bitstream whose name holds a NUL crashed the emulator's ``/content`` (the DSpace 6
    emulator's ``/retrieve`` had the same fix)."""
    return "".join(
        " " if (ord(c) < 32 and c != "\t") or ord(c) == 127 or ord(c) > 255 else c for c in value
    )


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


class Fail(Exception):
    """An error answer: becomes Spring Boot's error JSON (reference section 1)."""

    def __init__(
        self, status: int, message: str | None = None, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message or MESSAGES.get(status, REASONS.get(status, "Error")))
        self.status = status
        self.message = message or MESSAGES.get(status, REASONS.get(status, "Error"))
        self.headers = headers or {}


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


@dataclass
class Part:
    """One part of a multipart/form-data body."""

    name: str
    filename: str | None
    content_type: str | None
    data: bytes


@dataclass
class Ctx:
    """What a handler needs to know about the current request."""

    request: Request
    api: str
    caller: EPerson | None
    body: bytes
    embeds: dict[str, Any]
    embed_sizes: dict[str, int]

    @property
    def admin(self) -> bool:
        return self.caller is not None and self.caller.admin

    def param(self, name: str) -> str | None:
        return self.request.query_params.get(name)


Handler = Callable[..., Response]


# ---- multipart -------------------------------------------------------------------------------


def parse_multipart(body: bytes, content_type: str) -> list[Part]:
    """Split a multipart/form-data body into its parts (what Spring's resolver does)."""
    header = email.message.Message()
    header["content-type"] = content_type
    boundary = header.get_param("boundary")
    if not isinstance(boundary, str) or not boundary:
        raise Fail(400, "Request is not a multipart request")
    delimiter = b"\r\n--" + boundary.encode("latin-1")
    chunks = (b"\r\n" + body).split(delimiter)
    parts: list[Part] = []
    for chunk in chunks[1:]:
        if chunk.startswith(b"--"):
            break
        head, sep, data = chunk.partition(b"\r\n\r\n")
        if not sep:
            raise Fail(400, "Malformed multipart body")
        message = email.message.Message()
        for line in head.decode("utf-8", "replace").split("\r\n"):
            key, colon, value = line.partition(":")
            if colon:
                message[key.strip()] = value.strip()
        name = message.get_param("name", header="content-disposition")
        filename = message.get_filename()
        parts.append(
            Part(
                name=name if isinstance(name, str) else "",
                filename=filename,
                content_type=message.get("content-type"),
                data=data,
            )
        )
    return parts


def first_json_value(text: str) -> Any:
    """Parse the first JSON value of ``text`` and ignore what follows, as Jackson does."""
    return json.JSONDecoder().raw_decode(text.strip())[0]


# ---- the emulator ----------------------------------------------------------------------------


class DSpace7Emulator(Emulator):
    """In-memory DSpace 7+ server; see the module docstring for what it covers."""

    name = "dspace7"
    versions = ("7.6", "8.0", "9.1", "10.0")
    server_settings = {
        "replace-bitstream.enabled": ServerSetting(
            "false",
            "10.0: PUT /core/bitstreams/{uuid}/content replaces a file (versioning.cfg); "
            "off, it answers 400",
            ("true", "false"),
        ),
        "webui.submit.upload.required": ServerSetting(
            "true",
            "depositing a workspace item needs a file: else 422 error.validation.filerequired "
            "(UploadConfiguration.isRequired)",
            ("true", "false"),
        ),
        "citation-page.enable_globally": ServerSetting(
            "false",
            "PDF downloads of non-administrators get a cover page: Content-Length and ETag "
            "differ from sizeBytes and the MD5 (CitationDocumentServiceImpl)",
            ("true", "false"),
        ),
    }
    roles = ("admin", "submitter")

    @classmethod
    def options_for(cls, profile: ServerProfile) -> dict[str, Any]:
        return {
            "version": profile.version,
            "replace_bitstream_enabled": profile.flag("replace-bitstream.enabled"),
            "upload_required": profile.flag("webui.submit.upload.required"),
            "cover_pages": profile.flag("citation-page.enable_globally"),
        }

    def __init__(
        self,
        *,
        latency_ms: float = 0.0,
        seed: int | None = None,
        version: str = "9.1",
        user: str | None = None,
        password: str | None = None,
        jwt_lifetime: float = 1800.0,
        short_lived_lifetime: float = 2.0,
        lazy_csrf: bool = False,
        replace_bitstream_enabled: bool = False,
        upload_required: bool = True,
        cover_pages: bool = False,
        max_upload_bytes: int = 512 * 1024 * 1024,
        index_delay: float = 0.0,
        rate_limit: tuple[int, float] | None = None,
        rate_limit_retry_after: float = 1.0,
    ) -> None:
        """Create an empty repository.

        ``version`` selects 7.6 / 8.x / 9.x / 10.0 behaviour; ``user``/``password`` create a
        site administrator; ``jwt_lifetime`` and ``short_lived_lifetime`` are in seconds;
        ``lazy_csrf`` withholds CSRF tokens from GET responses (so a client has to use the
        403 of its first POST); ``index_delay`` delays Discovery visibility of new items;
        ``rate_limit=(n, seconds)`` emulates a front proxy that answers 429 beyond n requests
        per window.
        """
        self._state = threading.RLock()
        self._ids = random.Random(seed)
        self.version = version
        self.major = int(version.split(".")[0])
        self.jwt_lifetime = jwt_lifetime
        self.short_lived_lifetime = short_lived_lifetime
        self.lazy_csrf = lazy_csrf
        self.replace_bitstream_enabled = replace_bitstream_enabled
        #: webui.submit.upload.required (default true in UploadConfiguration.java)
        self.upload_required = upload_required
        #: citation-page.enable_globally: PDFs are served with a cover page to non-admins
        self.cover_pages = cover_pages
        self.max_upload_bytes = max_upload_bytes
        self.index_delay = index_delay
        self.rate_limit = rate_limit
        self.rate_limit_retry_after = rate_limit_retry_after
        self._secret = self._ids.randbytes(32)
        self._epersons: dict[str, EPerson] = {}
        self._objects: dict[str, DSO] = {}
        self._handles: dict[str, str] = {}
        self._handle_counter = 0
        self._workspace: dict[int, WorkspaceItem] = {}
        self._workflow: dict[int, WorkflowItem] = {}
        self._submission_counter = 0
        self._recent: deque[float] = deque()
        super().__init__(latency_ms=latency_ms, seed=seed)
        self._table = self._route_table()
        if user is not None and password is not None:
            self.add_user(user, password, admin=True)

    def routes(self) -> list[BaseRoute]:
        methods = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
        return [Route("/{path:path}", self._endpoint, methods=methods)]

    # ---- backdoor: building and changing the repository ------------------------------------

    def _new_uuid(self) -> str:
        return str(uuidlib.UUID(int=self._ids.getrandbits(128), version=4))

    def _new_handle(self, uuid: str) -> str:
        self._handle_counter += 1
        handle = f"{HANDLE_PREFIX}/{self._handle_counter}"
        self._handles[handle] = uuid
        return handle

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

    # ---- backdoor: inspecting -------------------------------------------------------------

    def exists(self, uuid: str) -> bool:
        """True while an object with this uuid exists."""
        with self._state:
            return uuid in self._objects

    def object_type(self, uuid: str) -> str:
        """``community``, ``collection``, ``item``, ``bundle`` or ``bitstream``."""
        with self._state:
            return self._get(uuid).type

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

    # ---- model internals (callers hold the lock) -----------------------------------------

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

    def _require_read(self, ctx: Ctx, dso: DSO) -> None:
        if not self._can_read(ctx.caller, dso):
            raise Fail(401 if ctx.caller is None else 403)

    def _require_write(self, ctx: Ctx, dso: DSO | None) -> None:
        if not self._can_write(ctx.caller, dso):
            raise Fail(401 if ctx.caller is None else 403)

    def _require_admin(self, ctx: Ctx) -> None:
        if ctx.caller is None:
            raise Fail(401)
        if not ctx.caller.admin:
            raise Fail(403)

    def _lookup(self, ctx: Ctx, uuid: str, kind: type[DSO]) -> DSO:
        dso = self._objects.get(uuid)
        if dso is None or not isinstance(dso, kind):
            raise Fail(404)
        self._require_read(ctx, dso)
        return dso

    # ---- tokens --------------------------------------------------------------------------

    def _sign(self, person: EPerson, kind: str, lifetime: float) -> str:
        header = b64url(json.dumps({"alg": "HS256"}, separators=(",", ":")).encode())
        claims = {
            "eid": person.uuid,
            "sg": [],
            # whole seconds, truncated, as java.util.Date becomes a JWT NumericDate
            "exp": math.floor(time.time() + lifetime),
            # tokens issued within one second must still differ (refresh gives a new one)
            "jti": uuidlib.uuid4().hex,
        }
        payload = b64url(json.dumps(claims, separators=(",", ":")).encode())
        signature = hmac.new(
            self._key(person, kind), f"{header}.{payload}".encode(), hashlib.sha256
        ).digest()
        return f"{header}.{payload}.{b64url(signature)}"

    def _key(self, person: EPerson, kind: str) -> bytes:
        return self._secret + f":{kind}:{person.uuid}:{person.salt}".encode()

    def _verify(self, token: str, kind: str) -> EPerson | None:
        """The token's EPerson, or None if it is malformed, forged, revoked or expired."""
        try:
            header, payload, signature = token.strip().split(".")
            claims = json.loads(b64url_decode(payload))
            person = self._epersons.get(str(claims.get("eid")))
            if person is None:
                return None
            expected = hmac.new(
                self._key(person, kind), f"{header}.{payload}".encode(), hashlib.sha256
            ).digest()
            if not hmac.compare_digest(expected, b64url_decode(signature)):
                return None
            if float(claims["exp"]) <= time.time():
                return None
            return person
        except (ValueError, KeyError, TypeError, AttributeError):
            return None

    def _caller(self, request: Request, *, allow_short_lived: bool) -> EPerson | None:
        """Who is asking: Bearer header (``Bearer `` removed with ``replace``, so a bare token
        works), the ``Authorization-cookie`` cookie, or a short-lived token in the query."""
        header = request.headers.get("authorization") or request.cookies.get("Authorization-cookie")
        if header:
            # an expired or invalid token makes the request anonymous (reference 3)
            person = self._verify(header.replace("Bearer ", ""), "login")
            if person is not None:
                return person
        token = request.query_params.get("authentication-token")
        if token and allow_short_lived:
            return self._verify(token, "short")
        return None

    # ---- the dispatcher ------------------------------------------------------------------

    def _route_table(self) -> list[tuple[str, re.Pattern[str], Handler]]:
        u = f"(?P<uuid>{UUID_RX})"
        routes: list[tuple[str, str, Handler]] = [
            ("GET", "/?", self._root),
            ("POST", "/authn/login", self._login),
            ("POST", "/authn/logout", self._logout),
            ("GET", "/authn/status", self._status),
            ("POST", "/authn/shortlivedtokens", self._short_lived),
            ("GET", f"/eperson/epersons/{u}", self._eperson),
            ("GET", "/core/communities", self._all_communities),
            ("POST", "/core/communities", self._create_community),
            ("GET", "/core/communities/search/top", self._top_communities),
            ("GET", f"/core/communities/{u}", self._get_dso(Community)),
            ("PATCH", f"/core/communities/{u}", self._patch_dso(Community)),
            ("DELETE", f"/core/communities/{u}", self._delete_dso(Community)),
            ("GET", f"/core/communities/{u}/subcommunities", self._subcommunities),
            ("GET", f"/core/communities/{u}/collections", self._community_collections),
            ("GET", f"/core/communities/{u}/logo", self._logo(Community)),
            ("GET", f"/core/communities/{u}/parentCommunity", self._parent_community(Community)),
            ("GET", "/core/collections", self._all_collections),
            ("POST", "/core/collections", self._create_collection),
            ("GET", f"/core/collections/{u}", self._get_dso(Collection)),
            ("PATCH", f"/core/collections/{u}", self._patch_dso(Collection)),
            ("DELETE", f"/core/collections/{u}", self._delete_dso(Collection)),
            ("GET", f"/core/collections/{u}/mappedItems", self._mapped_items),
            ("GET", f"/core/collections/{u}/logo", self._logo(Collection)),
            ("GET", f"/core/collections/{u}/parentCommunity", self._parent_community(Collection)),
            ("GET", "/core/items", self._all_items),
            ("POST", "/core/items", self._create_item),
            ("GET", f"/core/items/{u}", self._get_dso(Item)),
            ("PUT", f"/core/items/{u}", self._put_item),
            ("PATCH", f"/core/items/{u}", self._patch_dso(Item)),
            ("DELETE", f"/core/items/{u}", self._delete_dso(Item)),
            ("GET", f"/core/items/{u}/bundles", self._item_bundles),
            ("POST", f"/core/items/{u}/bundles", self._create_bundle_route),
            ("GET", f"/core/items/{u}/owningCollection", self._owning_collection),
            ("GET", f"/core/items/{u}/mappedCollections", self._mapped_collections),
            (
                "DELETE",
                f"/core/items/{u}/mappedCollections/(?P<collection>{UUID_RX})",
                self._unmap_item,
            ),
            ("PUT", f"/core/items/{u}/owningCollection", self._move_item),
            ("GET", f"/core/bundles/{u}", self._get_dso(Bundle)),
            ("PATCH", f"/core/bundles/{u}", self._patch_bundle),
            ("DELETE", f"/core/bundles/{u}", self._delete_dso(Bundle)),
            ("GET", f"/core/bundles/{u}/bitstreams", self._bundle_bitstreams),
            ("POST", f"/core/bundles/{u}/bitstreams", self._upload),
            ("GET", f"/core/bundles/{u}/item", self._bundle_item),
            ("GET", "/core/bitstreams/search/byItemHandle", self._by_item_handle),
            ("PATCH", "/core/bitstreams", self._bulk_delete),
            ("GET", f"/core/bitstreams/{u}", self._get_bitstream),
            ("PATCH", f"/core/bitstreams/{u}", self._patch_dso(Bitstream)),
            ("DELETE", f"/core/bitstreams/{u}", self._delete_bitstream),
            ("GET", f"/core/bitstreams/{u}/content", self._content),
            ("HEAD", f"/core/bitstreams/{u}/content", self._content),
            ("GET", f"/core/bitstreams/{u}/bundle", self._bitstream_bundle),
            ("PUT", f"/core/bitstreams/{u}/bundle", self._move_bitstream),
            ("GET", f"/core/bitstreams/{u}/format", self._format),
            ("GET", "/pid/find", self._pid_find),
            ("GET", "/discover/search/objects", self._search),
            ("POST", "/submission/workspaceitems", self._create_workspace_item),
            ("GET", "/submission/workspaceitems/search/findBySubmitter", self._by_submitter),
            ("GET", r"/submission/workspaceitems/(?P<wsid>\d+)", self._get_workspace_item),
            ("PATCH", r"/submission/workspaceitems/(?P<wsid>\d+)", self._patch_workspace_item),
            ("POST", r"/submission/workspaceitems/(?P<wsid>\d+)", self._workspace_upload),
            ("DELETE", r"/submission/workspaceitems/(?P<wsid>\d+)", self._delete_workspace),
            ("POST", "/workflow/workflowitems", self._deposit),
            ("GET", r"/workflow/workflowitems/(?P<wfid>\d+)", self._get_workflow_item),
        ]
        if self.major >= 8:
            routes.append(("GET", "/security/csrf", self._csrf))
        if self.major >= 10:
            # BitstreamReplaceController (new in 10.0) is always mapped; whether replacement is
            # enabled is checked by BitstreamServiceImpl.replace (400 when off). Before 10.0
            # only GET and HEAD exist on …/content: a PUT answers 405.
            routes.append(("PUT", f"/core/bitstreams/{u}/content", self._replace_content))
        return [(m, re.compile(p + "$"), h) for m, p, h in routes]

    async def _endpoint(self, request: Request) -> Response:
        path = request.url.path
        method = request.method
        issue_token = self._wants_token(request)
        try:
            if not (path == API_PATH or path.startswith(API_PATH + "/")):
                raise Fail(404)
            self._check_rate()
            if method in MUTATING and not self._csrf_ok(request):
                issue_token = True
                raise Fail(403, CSRF_MESSAGE)
            handler, groups = self._match(method, path[len(API_PATH) :] or "/")
            body = await self._read_body(request) if method in MUTATING else b""
            ctx = self._context(request, body)
            with self._state:
                response = handler(ctx, **groups)
        except Fail as fail:
            response = self._error(fail, path)
        except Exception:
            log.exception("%s %s failed", method, path)
            response = self._error(Fail(500), path)
        if response.headers.get(CSRF_HEADER) is None and issue_token:
            self._attach_token(request, response)
        return response

    def _match(self, method: str, sub: str) -> tuple[Handler, dict[str, str]]:
        allowed = False
        lookup = "GET" if method == "HEAD" else method
        for route_method, pattern, handler in self._table:
            found = pattern.match(sub)
            if found is None:
                continue
            allowed = True
            if route_method == method or (route_method == lookup and method == "HEAD"):
                return handler, found.groupdict()
        raise Fail(405 if allowed else 404)

    def _context(self, request: Request, body: bytes) -> Ctx:
        embeds: dict[str, Any] = {}
        for value in request.query_params.getlist("embed"):
            for path in value.split(","):
                node = embeds
                for rel in filter(None, path.strip().split("/")):
                    node = node.setdefault(rel, {})
        if request.query_params.get("projection") == "full":
            # the full projection embeds every relation, two levels deep
            embeds.setdefault("*", {"*": {}})
        sizes: dict[str, int] = {}
        for value in request.query_params.getlist("embed.size"):
            rel, _, size = value.partition("=")
            if size.isdigit():
                sizes[rel.strip("/")] = max(1, min(PAGE_MAX, int(size)))
        base = f"{request.url.scheme}://{request.url.netloc}"
        with self._state:
            caller = self._caller(request, allow_short_lived=request.url.path.endswith("/content"))
        return Ctx(
            request=request,
            api=base + API_PATH,
            caller=caller,
            body=body,
            embeds=embeds,
            embed_sizes=sizes,
        )

    async def _read_body(self, request: Request) -> bytes:
        """Read the body, refusing (413) past the upload limit without keeping the excess."""
        limit = self.max_upload_bytes + 1024 * 1024
        chunks: list[bytes] = []
        total = 0
        async for chunk in request.stream():
            total += len(chunk)
            if total <= limit:
                chunks.append(chunk)
        if total > limit:
            raise Fail(413)
        return b"".join(chunks)

    def _check_rate(self) -> None:
        if self.rate_limit is None:
            return
        count, window = self.rate_limit
        now = time.monotonic()
        with self._state:
            while self._recent and self._recent[0] <= now - window:
                self._recent.popleft()
            if len(self._recent) >= count:
                retry = f"{self.rate_limit_retry_after:g}"
                raise Fail(429, headers={"Retry-After": retry})
            self._recent.append(now)

    # ---- CSRF ----------------------------------------------------------------------------

    def _wants_token(self, request: Request) -> bool:
        """A response carries a fresh token when the request had no CSRF cookie (except GETs
        in lazy mode, which exercises the clients' retry-on-403 path)."""
        if request.cookies.get(CSRF_COOKIE):
            return False
        return not (self.lazy_csrf and request.method in ("GET", "HEAD"))

    @staticmethod
    def _csrf_ok(request: Request) -> bool:
        cookie = request.cookies.get(CSRF_COOKIE)
        header = request.headers.get(CSRF_REQUEST_HEADER)
        return bool(cookie) and bool(header) and hmac.compare_digest(cookie or "", header or "")

    @staticmethod
    def _attach_token(request: Request, response: Response) -> None:
        token = str(uuidlib.uuid4())
        response.headers[CSRF_HEADER] = token
        if request.url.scheme == "https":
            flags = "HttpOnly; SameSite=None; Secure"
        else:
            flags = "HttpOnly; SameSite=Lax"
        response.headers.append("set-cookie", f"{CSRF_COOKIE}={token}; Path={SERVER_PATH}; {flags}")

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

    # ---- rendering -----------------------------------------------------------------------

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

    # ---- root, authentication ------------------------------------------------------------

    def _root(self, ctx: Ctx) -> Response:
        base = ctx.api[: -len(API_PATH)]
        endpoints = {
            "authn": "authn",
            "communities": "core/communities",
            "collections": "core/collections",
            "items": "core/items",
            "bundles": "core/bundles",
            "bitstreams": "core/bitstreams",
            "bitstreamformats": "core/bitstreamformats",
            "discover": "discover",
            "pid": "pid",
            "workspaceitems": "submission/workspaceitems",
            "workflowitems": "workflow/workflowitems",
            "epersons": "eperson/epersons",
        }
        if self.major >= 8:
            endpoints["security"] = "security"
        return self._json(
            {
                "dspaceUI": base,
                "dspaceName": "DSpace emulator (docfs)",
                "dspaceServer": base + SERVER_PATH,
                "dspaceVersion": f"DSpace {self.version}",
                "type": "root",
                "_links": {k: {"href": f"{ctx.api}/{v}"} for k, v in endpoints.items()},
            }
        )

    def _csrf(self, ctx: Ctx) -> Response:
        response = self._empty(204)
        self._attach_token(ctx.request, response)
        return response

    def _login(self, ctx: Ctx) -> Response:
        form = self._form(ctx)
        user = form.get("user") or ctx.param("user")
        password = form.get("password") or ctx.param("password")
        person: EPerson | None = None
        if user is not None and password is not None:
            try:
                candidate = self._person(user)
            except KeyError:
                candidate = None
            if candidate is not None and hmac.compare_digest(candidate.password, password):
                person = candidate
        elif ctx.caller is not None:
            person = ctx.caller  # refresh: only the Bearer header was sent
        if person is None:
            raise Fail(401, "Authentication failed!", {"WWW-Authenticate": WWW_AUTHENTICATE})
        token = self._sign(person, "login", self.jwt_lifetime)
        response = self._empty(200, {"Authorization": f"Bearer {token}"})
        self._attach_token(ctx.request, response)  # the CSRF token rotates on login
        return response

    @staticmethod
    def _form(ctx: Ctx) -> dict[str, str]:
        content_type = ctx.request.headers.get("content-type", "")
        if not ctx.body or "x-www-form-urlencoded" not in content_type:
            return {}
        return dict(parse_qsl(ctx.body.decode("utf-8", "replace"), keep_blank_values=True))

    def _logout(self, ctx: Ctx) -> Response:
        if ctx.caller is not None:
            ctx.caller.salt += 1  # invalidates every token of that EPerson
        response = self._empty(204)
        self._attach_token(ctx.request, response)
        return response

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

    def _status(self, ctx: Ctx) -> Response:
        person = ctx.caller
        data: JSON = {
            "okay": True,
            "authenticated": person is not None,
            "type": "status",
            "_links": {"self": {"href": f"{ctx.api}/authn/status"}},
        }
        headers = {}
        if person is None:
            headers["WWW-Authenticate"] = WWW_AUTHENTICATE
        else:
            data["authenticationMethod"] = "password"
            data["_links"]["eperson"] = {"href": f"{ctx.api}/eperson/epersons/{person.uuid}"}
            data["_links"]["specialGroups"] = {"href": f"{ctx.api}/authn/status/specialGroups"}
            data["_embedded"] = {"eperson": self._eperson_json(ctx, person)}
        return self._json(data, headers=headers)

    def _eperson(self, ctx: Ctx, uuid: str) -> Response:
        person = self._epersons.get(uuid)
        if person is None:
            raise Fail(404)
        if ctx.caller is None:
            raise Fail(401)
        if not (ctx.caller.admin or ctx.caller is person):
            raise Fail(403)
        return self._json(self._eperson_json(ctx, person))

    def _short_lived(self, ctx: Ctx) -> Response:
        if ctx.caller is None:
            raise Fail(401)
        token = self._sign(ctx.caller, "short", self.short_lived_lifetime)
        return self._json(
            {
                "token": token,
                "type": "shortlivedtoken",
                "_links": {"self": {"href": f"{ctx.api}/authn/shortlivedtokens"}},
            }
        )

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
            for op in ops:
                self._apply_patch(dso, op)
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

    @staticmethod
    def _json_body(ctx: Ctx) -> Any:
        try:
            return json.loads(ctx.body or b"null")
        except ValueError:
            raise Fail(400) from None

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
            new = [metadata_value(v) for v in (value if isinstance(value, list) else [value])]
            if index is None or index == "-":
                dso.metadata[key] = values + new
            else:
                position = self._index(index, len(values) + 1)
                dso.metadata[key] = values[:position] + new + values[position:]
        elif kind == "replace":
            if index is None:
                # a whole-field replace of a missing field just sets it (emulator choice)
                seq = value if isinstance(value, list) else [value]
                dso.metadata[key] = [metadata_value(v) for v in seq]
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
    def _index(text: str, length: int) -> int:
        if not text.isdigit() or int(text) >= length:
            raise Fail(422)
        return int(text)

    def _create_body(self, ctx: Ctx) -> dict[str, Any]:
        data = self._json_body(ctx)
        if not isinstance(data, dict):
            raise Fail(400)
        metadata = data.get("metadata") or {}
        if not isinstance(metadata, dict):
            raise Fail(422)
        return data

    def _new_dso(self, dso: DSO, data: dict[str, Any]) -> DSO:
        """Name from ``metadata.dc.title`` only: DSpace derives ``name``, it never reads it."""
        self._init_dso(dso, None, data.get("metadata") or {})
        return dso

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

    @staticmethod
    def _one_uri(ctx: Ctx, section: str) -> str | None:
        """The uuid of the one ``/core/<section>/<uuid>`` a ``text/uri-list`` body names (None
        when it names another kind, or not exactly one); 415 for another content type."""
        if "text/uri-list" not in ctx.request.headers.get("content-type", ""):
            raise Fail(415, "Unsupported Media Type")
        lines = [
            line.strip()
            for line in ctx.body.decode("utf-8", "replace").splitlines()
            if line.strip() and not line.startswith("#")
        ]
        found = re.search(f"/core/{section}/({UUID_RX})$", lines[0]) if len(lines) == 1 else None
        return found.group(1) if found else None

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

    # ---- bundles and bitstreams ----------------------------------------------------------

    def _bundle_bitstreams(self, ctx: Ctx, uuid: str) -> Response:
        bundle = self._lookup(ctx, uuid, Bundle)
        assert isinstance(bundle, Bundle)
        return self._list(ctx, "bitstreams", [self._objects[u] for u in bundle.bitstreams])

    def _bundle_item(self, ctx: Ctx, uuid: str) -> Response:
        bundle = self._lookup(ctx, uuid, Bundle)
        assert isinstance(bundle, Bundle)
        return self._json(self._render(ctx, self._objects[bundle.item]))

    def _patch_bundle(self, ctx: Ctx, uuid: str) -> Response:
        """Metadata patches, plus ``move`` of ``/_links/bitstreams/<i>/href`` (reordering)."""
        bundle = self._lookup(ctx, uuid, Bundle)
        assert isinstance(bundle, Bundle)
        self._require_write(ctx, bundle)
        ops = self._json_body(ctx)
        if not isinstance(ops, list) or not ops:
            raise Fail(400)
        for op in ops:
            if isinstance(op, dict) and op.get("op") == "move":
                source = self._link_index(op.get("from"), len(bundle.bitstreams))
                target = self._link_index(op.get("path"), len(bundle.bitstreams))
                bundle.bitstreams.insert(target, bundle.bitstreams.pop(source))
            else:
                self._apply_patch(bundle, op)
        self._touch(bundle)
        return self._json(self._render(ctx, bundle))

    @staticmethod
    def _link_index(path: Any, length: int) -> int:
        found = re.fullmatch(r"/_links/bitstreams/(\d+)/href", str(path))
        if found is None or int(found.group(1)) >= length:
            raise Fail(400)
        return int(found.group(1))

    def _multipart(self, ctx: Ctx) -> tuple[Part, dict[str, Any]]:
        """The ``file`` part and the parsed ``properties`` of an upload."""
        content_type = ctx.request.headers.get("content-type", "")
        if not content_type.startswith("multipart/"):
            raise Fail(400)
        parts = parse_multipart(ctx.body, content_type)
        files = [p for p in parts if p.name == "file"]
        if not files:
            raise Fail(400, "No file was uploaded")
        if len(files[0].data) > self.max_upload_bytes:
            raise Fail(413)
        properties: dict[str, Any] = {}
        for part in parts:
            if part.name == "properties":
                try:
                    parsed = first_json_value(part.data.decode("utf-8"))
                except (ValueError, UnicodeDecodeError):
                    raise Fail(422) from None
                if not isinstance(parsed, dict):
                    raise Fail(422)
                properties = parsed
        return files[0], properties

    def _upload(self, ctx: Ctx, uuid: str) -> Response:
        bundle = self._objects.get(uuid)
        if not isinstance(bundle, Bundle):
            raise Fail(404)
        self._require_write(ctx, bundle)
        part, properties = self._multipart(ctx)
        name = properties.get("name") or part.filename
        metadata = properties.get("metadata") or {}
        if not isinstance(metadata, dict):
            raise Fail(422)
        stream = self._create_bitstream(bundle, name, part.data, None, metadata)
        return self._json(self._render(ctx, stream), 201)

    def _get_bitstream(self, ctx: Ctx, uuid: str) -> Response:
        """``findOne`` needs METADATA_READ (BitstreamMetadataReadPermissionEvaluatorPlugin):
        READ on the bitstream, or READ on its item and its first bundle — so an embargoed
        file's metadata is readable anonymously (findOneBitstreamTest_EmbargoedBitstream_Anon
        expects 200), while its content is not."""
        stream = self._objects.get(uuid)
        if not isinstance(stream, Bitstream):
            raise Fail(404)
        if not self._can_read(ctx.caller, stream):
            bundle = self._objects.get(stream.bundle or "")
            item = self._item_of(stream)
            if not (
                bundle is not None
                and item is not None
                and self._can_read(ctx.caller, bundle)
                and self._can_read(ctx.caller, item)
            ):
                raise Fail(401 if ctx.caller is None else 403)
        return self._json(self._render(ctx, stream))

    def _delete_bitstream(self, ctx: Ctx, uuid: str) -> Response:
        stream = self._lookup(ctx, uuid, Bitstream)
        assert isinstance(stream, Bitstream)
        if stream.logo_of is not None:
            raise Fail(422, "The bitstream is the logo of a community or collection")
        self._require_write(ctx, stream)
        self._delete(stream)
        return self._empty(204)

    def _bulk_delete(self, ctx: Ctx) -> Response:
        ops = self._json_body(ctx)
        if not isinstance(ops, list) or not ops:
            raise Fail(400)
        targets: list[Bitstream] = []
        for op in ops:
            found = re.fullmatch(f"/bitstreams/({UUID_RX})", str(op.get("path", "")))
            if not isinstance(op, dict) or op.get("op") != "remove" or found is None:
                raise Fail(422)
            stream = self._objects.get(found.group(1))
            if not isinstance(stream, Bitstream):
                raise Fail(422)
            self._require_write(ctx, stream)
            targets.append(stream)
        for stream in targets:
            self._delete(stream)
        return self._empty(204)

    def _bitstream_bundle(self, ctx: Ctx, uuid: str) -> Response:
        stream = self._lookup(ctx, uuid, Bitstream)
        assert isinstance(stream, Bitstream)
        bundle = self._objects.get(stream.bundle or "")
        if bundle is None:
            return self._empty(204)
        return self._json(self._render(ctx, bundle))

    def _move_bitstream(self, ctx: Ctx, uuid: str) -> Response:
        stream = self._lookup(ctx, uuid, Bitstream)
        assert isinstance(stream, Bitstream)
        found = self._one_uri(ctx, "bundles")
        if found is None:
            raise Fail(400)
        target = self._objects.get(found)
        if not isinstance(target, Bundle):
            raise Fail(422)
        if stream.bundle == target.uuid:
            raise Fail(400, "The provided bitstream is already in the target bundle")
        self._require_write(ctx, stream)
        self._require_write(ctx, target)
        source = self._objects.get(stream.bundle or "")
        if isinstance(source, Bundle):
            source.bitstreams.remove(stream.uuid)
            self._touch(source)
        stream.bundle = target.uuid
        target.bitstreams.append(stream.uuid)
        self._touch(stream)
        return self._json(self._render(ctx, target))

    def _format(self, ctx: Ctx, uuid: str) -> Response:
        stream = self._lookup(ctx, uuid, Bitstream)
        assert isinstance(stream, Bitstream)
        known = stream.mime != "application/octet-stream"
        number = int(hashlib.md5(stream.mime.encode()).hexdigest()[:6], 16) if known else 1
        extension = mimetypes.guess_extension(stream.mime, strict=False) if known else None
        return self._json(
            {
                "id": number,
                "shortDescription": stream.mime if known else "Unknown",
                "description": stream.mime if known else "Unknown data format",
                "mimetype": stream.mime,
                "supportLevel": "KNOWN" if known else "UNKNOWN",
                "internal": False,
                "extensions": [extension.lstrip(".")] if extension else [],
                "type": "bitstreamformat",
                "_links": {"self": {"href": f"{ctx.api}/core/bitstreamformats/{number}"}},
            }
        )

    def _by_item_handle(self, ctx: Ctx) -> Response:
        item = self._objects.get(self._handles.get(ctx.param("handle") or "", ""))
        if not isinstance(item, Item):
            return self._empty(204)
        self._require_read(ctx, item)
        sequence = ctx.param("sequence")
        filename = ctx.param("filename")
        bundles = [self._objects[u] for u in item.bundles]
        bundles.sort(key=lambda b: b.name != "ORIGINAL")
        for bundle in bundles:
            assert isinstance(bundle, Bundle)
            for stream_id in bundle.bitstreams:
                stream = self._objects[stream_id]
                assert isinstance(stream, Bitstream)
                if (sequence and str(stream.sequence_id) == sequence) or (
                    not sequence and filename and stream.name == filename
                ):
                    return self._json(self._render(ctx, stream))
        return self._empty(204)

    # ---- content ---------------------------------------------------------------------------

    def _content(self, ctx: Ctx, uuid: str) -> Response:
        stream = self._objects.get(uuid)
        if not isinstance(stream, Bitstream):
            raise Fail(404)
        self._require_read(ctx, stream)
        if stream.asset_missing:
            raise Fail(500)
        data = self._served_bytes(ctx, stream)  # a snapshot: later changes do not disturb it
        size = len(data)
        etag = f'"{stream.md5}"'
        if data is not stream.content and self.major >= 8:
            # 8.0+ BitstreamResource: a cover-paged document's ETag is the MD5 of
            # "coverpage:" + the stored checksum; 7.6 sends the stored checksum regardless
            etag = '"' + hashlib.md5(f"coverpage:{stream.md5}".encode()).hexdigest() + '"'
        modified = math.floor(stream.last_modified)
        headers = {
            "ETag": etag,
            "Last-Modified": http_date(modified),
            "Accept-Ranges": "bytes",
            "Cache-Control": "private,no-cache",
            "Expires": http_date(time.time() + 3600),
            "Content-Disposition": self._disposition(stream),
        }
        self._preconditions(ctx.request, etag, modified, headers)
        start, end, status = self._range(ctx.request.headers.get("range"), size)
        headers["Content-Type"] = stream.mime + (
            ";charset=UTF-8" if stream.mime.startswith("text/") else ""
        )
        headers["Content-Length"] = str(end - start)
        if status == 206:
            headers["Content-Range"] = f"bytes {start}-{end - 1}/{size}"
        if ctx.request.method == "HEAD":
            return Response(b"", status_code=status, headers=headers)
        return StreamingResponse(self._chunks(data, start, end), status, headers)

    def _served_bytes(self, ctx: Ctx, stream: Bitstream) -> bytes:
        """What ``/content`` sends: with ``citation-page.enable_globally`` a PDF gets a cover
        page for everybody but administrators (CitationDocumentServiceImpl.
        isCitationEnabledForBitstream: PDF MIME type and ``!authorizeService.isAdmin``). The
        length of the answer is the cover-paged document's (BitstreamResource.contentLength),
        and Spring cuts byte ranges out of that document, not out of the stored file."""
        if not self.cover_pages or ctx.admin or stream.mime != "application/pdf":
            return stream.content
        item = self._item_of(stream)
        title = (item.name if item is not None else None) or ""
        cover = (
            "%PDF-1.4\n% cover page generated by the repository\n"
            f"% {title}\n% {item.handle if item is not None else ''}\n"
        ).encode()
        return cover + stream.content

    @staticmethod
    async def _chunks(data: bytes, start: int, end: int) -> AsyncIterator[bytes]:
        view = memoryview(data)
        for offset in range(start, end, CHUNK):
            yield bytes(view[offset : min(end, offset + CHUNK)])

    @staticmethod
    def _preconditions(request: Request, etag: str, modified: int, headers: dict[str, str]) -> None:
        """HttpHeadersInitializer's checks, in its order and with its statuses."""
        if_match = request.headers.get("if-match")
        if if_match and if_match.strip() != "*" and etag not in _etags(if_match):
            raise Fail(416, "Precondition If-Match failed", headers)
        unmodified = parse_http_date(request.headers.get("if-unmodified-since"))
        if unmodified is not None and modified > unmodified:
            raise Fail(412, "Precondition If-Unmodified-Since failed", headers)
        if_none = request.headers.get("if-none-match")
        if if_none:
            if if_none.strip() == "*" or etag in _etags(if_none):
                raise _NotModified(headers)
            return
        since = parse_http_date(request.headers.get("if-modified-since"))
        if since is not None and modified <= since:
            raise _NotModified(headers)

    @staticmethod
    def _range(header: str | None, size: int) -> tuple[int, int, int]:
        """(start, end-exclusive, status) for a Range header; one range only."""
        if not header:
            return 0, size, 200
        header = header.strip()
        unsatisfiable = Fail(
            416, "Requested range not satisfiable", {"Content-Range": f"bytes */{size}"}
        )
        if not RANGE_RX.match(header):
            raise unsatisfiable
        if "," in header:
            return 0, size, 200  # multi-range: answered with the whole body (emulator choice)
        first, _, last = header[len("bytes=") :].partition("-")
        if not first and not last:
            raise unsatisfiable
        if not first:
            start, end = max(0, size - int(last)), size
        else:
            start = int(first)
            end = size if not last else min(size, int(last) + 1)
        if start >= size or start >= end:
            raise unsatisfiable
        return start, end, 206

    def _disposition(self, stream: Bitstream) -> str:
        return tomcat_header(self._raw_disposition(stream))

    def _raw_disposition(self, stream: Bitstream) -> str:
        name = stream.name
        if name is None:
            extension = mimetypes.guess_extension(stream.mime, strict=False)
            name = stream.uuid + (extension or "")
        if self.major >= 10:
            fallback = name.encode("ascii", "replace").decode("ascii").replace('"', "_")
            return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"
        if name.isascii():
            return f'attachment;filename="{name}"'
        encoded = base64.b64encode(name.encode()).decode("ascii")
        return f'attachment;filename="=?UTF-8?B?{encoded}?="'

    def _replace_content(self, ctx: Ctx, uuid: str) -> Response:
        """10.0 (``BitstreamReplaceController``): a new bitstream (new uuid) takes the old one's
        place, metadata and policies — if ``replace-bitstream.enabled``; else
        ``BitstreamServiceImpl.replace`` throws IllegalStateException, answered 400."""
        old = self._objects.get(uuid)
        if not isinstance(old, Bitstream):
            raise Fail(404)
        # @PreAuthorize("hasPermission(#uuid, 'BITSTREAM','WRITE')") comes first
        self._require_write(ctx, old)
        part, _ = self._multipart(ctx)
        bundle = self._objects.get(old.bundle or "")
        if not isinstance(bundle, Bundle):
            raise Fail(400)
        if not self.replace_bitstream_enabled:
            raise Fail(400, "Bitstream replacement is not enabled")
        # @RequestParam(value = "replaceName", defaultValue = "true")
        replace_name = (ctx.param("replaceName") or "true").lower() == "true"
        new = Bitstream(
            uuid=self._new_uuid(),
            bundle=bundle.uuid,
            content=part.data,
            metadata={k: [dict(v) for v in vs] for k, vs in old.metadata.items()},
            readers=None if old.readers is None else set(old.readers),
            writers=set(old.writers),
            sequence_id=old.sequence_id,
        )
        new_name = replaced_name(old.name, part.filename, replace_name)
        if new_name is not None:
            new.set_name(new_name)
        new.mime = guess_mime(new.name)
        self._objects[new.uuid] = new
        bundle.bitstreams[bundle.bitstreams.index(old.uuid)] = new.uuid
        if bundle.primary == old.uuid:
            bundle.primary = new.uuid
        del self._objects[old.uuid]
        self._touch(new)
        return self._json(self._render(ctx, new), 201)

    # ---- identifiers and discovery ---------------------------------------------------------

    def _pid_find(self, ctx: Ctx) -> Response:
        identifier = (ctx.param("id") or "").strip()
        identifier = re.sub(r"^(hdl:|https?://hdl\.handle\.net/)", "", identifier)
        dso = self._objects.get(self._handles.get(identifier, ""))
        if dso is None:
            raise Fail(404)
        return self._empty(302, {"Location": self._url(ctx, dso)})

    def _search(self, ctx: Ctx) -> Response:
        scope = ctx.param("scope")
        dso_type = (ctx.param("dsoType") or "").upper()
        query = ctx.param("query")
        sort_by, order = self._sort(ctx.param("sort"))
        candidates = self._search_candidates(ctx, scope, dso_type)
        if query and query.strip() not in ("*", "*:*"):
            needle = query.strip().lower()
            candidates = [d for d in candidates if needle in (d.name or "").lower()]
        candidates = self._sorted(candidates, sort_by, order)
        page, size = self._page_params(ctx, PAGE_DEFAULT, DISCOVERY_MAX)
        url = f"{ctx.api}/discover/search/objects"
        extra = {
            k: v for k, v in ctx.request.query_params.multi_items() if k not in ("page", "size")
        }

        def result(dso: DSO) -> JSON:
            return {
                "hitHighlights": {},
                "type": "discover",
                "_links": {"indexableObject": {"href": self._url(ctx, dso)}},
                "_embedded": {"indexableObject": self._render(ctx, dso)},
            }

        body = self._page_body(ctx, "objects", candidates, url, page, size, extra, render=result)
        return self._json(
            {
                "id": None,
                "scope": scope,
                "query": query,
                "appliedFilters": [],
                "sort": {"by": sort_by, "order": order},
                "configuration": ctx.param("configuration") or "default",
                "type": "discover",
                "_embedded": {"searchResult": body, "facets": []},
                "_links": {"self": {"href": str(ctx.request.url)}},
            }
        )

    @staticmethod
    def _sort(param: str | None) -> tuple[str, str]:
        if not param:
            return "score", "DESC"
        by, _, order = param.partition(",")
        order = (order or "ASC").upper()
        if by not in SORT_FIELDS or order not in ("ASC", "DESC"):
            raise Fail(400, f"The sort option {param} is invalid")
        return by, order

    def _search_candidates(self, ctx: Ctx, scope: str | None, dso_type: str) -> list[DSO]:
        """Indexed objects within scope that the caller may see, in index (creation) order."""
        now = time.time()
        collections: set[str] = set()
        if scope is not None:
            scope_obj = self._objects.get(scope)
            if not isinstance(scope_obj, Community | Collection):
                return []  # unknown scope: an empty result (emulator choice)
            collections = (
                {scope} if isinstance(scope_obj, Collection) else self._collections_under(scope_obj)
            )
        found: list[DSO] = []
        for dso in self._objects.values():
            if dso_type and dso.type.upper() != dso_type:
                continue
            if isinstance(dso, Item):
                if not dso.in_archive or dso.indexed_at > now:
                    continue
                if not ctx.admin and (dso.withdrawn or not dso.discoverable):
                    continue
                if scope is not None and not (
                    dso.owning in collections or collections & set(dso.mapped)
                ):
                    continue
            elif isinstance(dso, Community | Collection):
                if scope is not None and not self._below(dso, scope):
                    continue
            else:
                continue
            if self._can_read(ctx.caller, dso):
                found.append(dso)
        return found

    def _below(self, dso: DSO, ancestor: str) -> bool:
        parent = self._parent(dso)
        while parent is not None:
            if parent.uuid == ancestor:
                return True
            parent = self._parent(parent)
        return False

    @staticmethod
    def _sorted(objs: list[DSO], by: str, order: str) -> list[DSO]:
        if by == "score":
            return objs
        if by == "lastModified":

            def key(d: DSO) -> Any:
                return d.last_modified
        else:

            def key(d: DSO) -> Any:
                values = d.metadata.get(by) or [{}]
                return (str(values[0].get("value") or "").lower(), d.uuid)

        return sorted(objs, key=key, reverse=order == "DESC")

    # ---- submission and workflow -----------------------------------------------------------

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

    def _workspace_item(self, ctx: Ctx, wsid: str) -> WorkspaceItem:
        ws = self._workspace.get(int(wsid))
        if ws is None:
            raise Fail(404)
        if ctx.caller is None:
            raise Fail(401)
        if not (ctx.caller.admin or ctx.caller.uuid == ws.submitter):
            raise Fail(403)
        return ws

    def _create_workspace_item(self, ctx: Ctx) -> Response:
        if ctx.caller is None:
            raise Fail(401)
        collection = self._objects.get(ctx.param("owningCollection") or "")
        if not isinstance(collection, Collection):
            raise Fail(422)
        # ADD on the collection: its SUBMIT group, or who may write it (admins and the like)
        if ctx.caller.uuid not in collection.submitters:
            self._require_write(ctx, collection)
        item = Item(
            uuid=self._new_uuid(),
            owning=collection.uuid,
            in_archive=False,
            submitter=ctx.caller.uuid,
        )
        self._objects[item.uuid] = item
        self._submission_counter += 1
        ws = WorkspaceItem(
            id=self._submission_counter,
            item=item.uuid,
            collection=collection.uuid,
            submitter=ctx.caller.uuid,
        )
        self._workspace[ws.id] = ws
        return self._json(self._workspace_json(ctx, ws), 201)

    def _by_submitter(self, ctx: Ctx) -> Response:
        """WorkspaceItemRestRepository.findBySubmitter: READ on the EPerson (oneself or an
        administrator), a page of ``_embedded.workspaceitems``."""
        person = self._epersons.get(ctx.param("uuid") or "")
        if ctx.caller is None:
            raise Fail(401)
        if person is None:
            raise Fail(400)
        if not (ctx.caller.admin or ctx.caller is person):
            raise Fail(403)
        found = sorted(
            (w for w in self._workspace.values() if w.submitter == person.uuid),
            key=lambda w: w.id,
        )
        page, size = self._page_params(ctx, PAGE_DEFAULT, PAGE_MAX)
        chunk = found[page * size : (page + 1) * size]
        pages = math.ceil(len(found) / size) if found else 0
        url = f"{ctx.api}/submission/workspaceitems/search/findBySubmitter"
        return self._json(
            {
                "_embedded": {"workspaceitems": [self._workspace_json(ctx, w) for w in chunk]},
                "_links": self._page_links(url, page, size, pages, {"uuid": person.uuid}),
                "page": {
                    "size": size,
                    "totalElements": len(found),
                    "totalPages": pages,
                    "number": page,
                },
            }
        )

    def _get_workspace_item(self, ctx: Ctx, wsid: str) -> Response:
        return self._json(self._workspace_json(ctx, self._workspace_item(ctx, wsid)))

    def _patch_workspace_item(self, ctx: Ctx, wsid: str) -> Response:
        ws = self._workspace_item(ctx, wsid)
        item = self._objects[ws.item]
        ops = self._json_body(ctx)
        if not isinstance(ops, list) or not ops:
            raise Fail(400)
        for op in ops:
            if not isinstance(op, dict):
                raise Fail(422)
            path = str(op.get("path", ""))
            parts = path.split("/")
            if path == "/sections/license/granted" and op.get("op") in ("add", "replace"):
                ws.license_granted = str(op.get("value")).lower() == "true"
            elif (
                len(parts) >= 4 and parts[1] == "sections" and parts[2] not in ("license", "upload")
            ):
                change = {**op, "path": "/metadata/" + "/".join(parts[3:])}
                if op.get("op") == "add" and len(parts) == 4:
                    # a whole field's add "initializes or replaces" it in a submission
                    # (submit/factory/impl/ItemMetadataValueAddPatchOperation: replaceValue),
                    # unlike an archived object's add, which appends
                    change["op"] = "replace"
                self._apply_patch(item, change)
            else:
                raise Fail(422)
        ws.last_modified = time.time()
        self._touch(item)
        return self._json(self._workspace_json(ctx, ws))

    def _workspace_upload(self, ctx: Ctx, wsid: str) -> Response:
        ws = self._workspace_item(ctx, wsid)
        item = self._objects[ws.item]
        part, _ = self._multipart(ctx)
        bundle = self._bundle_named(item, "ORIGINAL") or self._create_bundle(item, "ORIGINAL")
        self._create_bitstream(bundle, part.filename, part.data, None, None)
        return self._json(self._workspace_json(ctx, ws), 201)

    def _delete_workspace(self, ctx: Ctx, wsid: str) -> Response:
        ws = self._workspace_item(ctx, wsid)
        del self._workspace[ws.id]
        self._delete(self._objects[ws.item])
        return self._empty(204)

    def _deposit(self, ctx: Ctx) -> Response:
        if ctx.caller is None:
            raise Fail(401)
        if "text/uri-list" not in ctx.request.headers.get("content-type", ""):
            raise Fail(415, "Unsupported Media Type")
        text = ctx.body.decode("utf-8", "replace").strip()
        found = re.search(r"/submission/workspaceitems/(\d+)\s*$", text)
        ws = self._workspace.get(int(found.group(1))) if found else None
        if ws is None:
            raise Fail(422)
        if ctx.caller.uuid != ws.submitter:
            raise Fail(403)
        item = self._objects[ws.item]
        assert isinstance(item, Item)
        # SubmissionService.createWorkflowItem: any validation error of the workspace item
        # is a 422 (the emulator's rules: a title, a granted license, and — with
        # webui.submit.upload.required — a file: UploadValidator's error.validation.filerequired)
        if self._validation_errors(ws):
            raise Fail(422, "Start workflow failed due to validation error on workspaceitem")
        del self._workspace[ws.id]
        collection = self._objects[ws.collection]
        assert isinstance(collection, Collection)
        if not collection.workflow:
            self._archive(item)
            return self._empty(201)
        self._submission_counter += 1
        wf = WorkflowItem(self._submission_counter, item.uuid, collection.uuid, ws.submitter)
        self._workflow[wf.id] = wf
        return self._json(self._workflow_json(ctx, wf), 201)

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

    def _get_workflow_item(self, ctx: Ctx, wfid: str) -> Response:
        wf = self._workflow.get(int(wfid))
        if wf is None:
            raise Fail(404)
        if ctx.caller is None:
            raise Fail(401)
        if not (ctx.caller.admin or ctx.caller.uuid == wf.submitter):
            raise Fail(403)
        return self._json(self._workflow_json(ctx, wf))


class _NotModified(Fail):
    """304: raised out of the precondition checks, answered without a body."""

    def __init__(self, headers: dict[str, str]) -> None:
        super().__init__(304, "Not Modified", headers)


def _etags(header: str) -> list[str]:
    return [tag.strip().removeprefix("W/") for tag in header.split(",")]
