"""Emulator of the DSpace 6.x legacy REST API (``/rest``), after ``shared/reference/dspace6.md``.

Everything lives under the ``/rest`` prefix, so a client's base URL is ``<server url>/rest``. The
state (communities, collections, items, bitstreams, policies, sessions) is held in memory behind
one lock, because uvicorn serves requests in its own thread while tests call the backdoor from
theirs. Bitstream bodies are kept as ``bytes`` with their MD5 computed once at store time, and the
items of a collection are kept sorted by UUID, so 20 MiB bodies and collections of thousands of
items stay cheap.

What the emulator reproduces (see the reference for the evidence): cookie login through
``/login`` (form body or query string only, ``JSESSIONID`` with ``Path=/rest/; HttpOnly``),
``/status``, anonymous READ of public objects, 401 for every failed permission (never 403), 500
for malformed ids, legacy numeric ids, the JSON shapes of section 4 with relative links, string
``archived``/``withdrawn`` and zone-less ``lastModified``, ``expand`` exactly as section 5 (split
on commas, case-sensitive, not trimmed, one level deep), paging cut *before* READ filtering and no
totals, the ``/items/{id}/bitstreams`` slice bug, the 500s of ``DELETE
/collections/{cid}/items/{iid}``, ``GET /handle/...`` and anonymous ``DELETE
/items/{id}/bitstreams/{bid}``, 415 for object bodies without a JSON/XML ``Content-Type``, 400
``text/plain`` for unknown or read-only properties, uploads into ORIGINAL with formats guessed like
``URLConnection.guessContentTypeFromName`` + the DSpace format registry, ``sequenceId`` -1 until
the next item update, ``/retrieve`` without ranges or validators (``Content-Length`` only up to
8 KiB, chunked above), HTML error pages, and a per-collection review (workflow) mode.

Deviations from the reference, and choices where it leaves one open:

* XML is not implemented. Responses are always JSON; a request whose ``Accept`` admits neither
  JSON, ``application/*`` nor ``*/*`` gets 406. An ``application/xml`` request body is accepted
  by the ``Content-Type`` check but answered 400 ``text/plain``.
* Plain HTTP on loopback: no ``CONFIDENTIAL`` redirect and no ``Secure`` cookie attribute.
  ``/shibboleth-login`` always fails with 401 (there is no Shibboleth in front).
* The server's "local" time zone, used for ``lastModified``, is ``server_tz`` (UTC by default).
* Groups are reduced to Anonymous and Administrator; other permissions are per-EPerson resource
  policies created with the backdoor ``grant``. An ``ADMIN`` policy on a community or collection
  works like DSpace's community/collection administrators: every action on everything below it.
  Uploading needs WRITE on the item (else 401) and ADD on it (the ORIGINAL bundle inherits the
  item's policies; else 500, as the reference describes for a missing bundle ADD).
* A collection or community has exactly one parent; items can be mapped into further collections
  with the backdoor ``map_item``. There are no logos (``logo`` is always ``null``), no withdrawal
  (``withdrawn`` is always ``"false"``), and no usage statistics.
* ``DELETE /items/{id}/bitstreams/{bid}``: as in the source, the item is looked up with WRITE
  first (401 when that fails); the bitstream DELETE check that follows answers 401 to a logged-in
  caller and 500 to an anonymous one (the NullPointerException of the reference).
* ``/items/{id}/bitstreams`` does not reset negative ``limit``/``offset`` (its source has no such
  check): they reach ``subList`` and answer 500, like ``offset > size``.
* ``find-by-metadata-field`` returns archived items that are READ-able and discoverable, for
  administrators too.
* The backdoor ``add_bitstream`` guesses the format from the registry's own extension list (the
  way content ingested through the web UI gets it, so ``.csv`` is "CSV"); uploads and renames
  through REST use the Java MIME table first, where ``.csv`` is unknown. ``add_bitstream`` assigns
  the next ``sequenceId`` at once, as an ingest does.
* Persistence is not implemented.
"""

from __future__ import annotations

import bisect
import hashlib
import json
import random
import re
import secrets
import threading
import uuid
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from typing import Any, ClassVar, TypeVar
from urllib.parse import parse_qsl

from starlette.datastructures import Headers, QueryParams
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from docfs.emulators.base import Emulator, ServerProfile
from docfs.emulators.thumbjpeg import thumbnail_jpeg

__all__ = ["ANONYMOUS", "DSpace6Emulator"]

#: ``grant(ANONYMOUS, uuid, action)`` gives an action to the Anonymous group (i.e. everybody).
ANONYMOUS = "anonymous"

_CONTEXT = "/rest"
_HANDLE_PREFIX = "123456789"
_CANONICAL_HANDLE = "http://hdl.handle.net/"
_SITE_NAME = "DSpace at My University"
_STREAM_CHUNK = 64 * 1024
#: Jersey buffers this much of an entity; bigger bodies go out chunked, without Content-Length
_BUFFER_LIMIT = 8192
_JAVA_INT_MAX = 2**31 - 1
_JAVA_INT_RE = re.compile(r"^[+-]?[0-9]+$")

_ACTIONS = frozenset({"READ", "WRITE", "DELETE", "ADD", "REMOVE", "ADMIN"})
_HIDDEN_FIELDS = frozenset({("dc", "description", "provenance")})


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


_TEXT_FIELDS = ("copyrightText", "introductoryText", "shortDescription", "sidebarText")
_DSO_FIELDS = frozenset({"uuid", "name", "handle", "type", "link", "expand"})
#: properties Jackson can set on each request body; getter-only ones (MetadataEntry's
#: schema/element/qualifier, Collection.logo) are missing on purpose and rejected with 400
_BODY_FIELDS: dict[str, frozenset[str]] = {
    "Community": _DSO_FIELDS
    | {"logo", "parentCommunity", "countItems", "subcommunities", "collections", *_TEXT_FIELDS},
    "Collection": _DSO_FIELDS
    | {"parentCommunity", "parentCommunityList", "items", "license", "numberItems", *_TEXT_FIELDS},
    "Item": _DSO_FIELDS
    | _words(
        "lastModified archived withdrawn parentCollection parentCollectionList "
        "parentCommunityList metadata bitstreams"
    ),
    "Bitstream": _DSO_FIELDS
    | _words(
        "bundleName description format mimeType sizeBytes parentObject retrieveLink checkSum "
        "sequenceId policies"
    ),
    "MetadataEntry": frozenset({"key", "value", "language"}),
    "ResourcePolicy": _words(
        "id action epersonId groupId resourceId resourceType rpDescription rpName rpType "
        "startDate endDate"
    ),
}

_DEFAULT_LICENSE = (
    "NOTE: PLACE YOUR OWN LICENSE HERE\n"
    "This sample license is provided for informational purposes only.\n"
)

#: The Dublin Core fields of DSpace's default metadata registry (dublin-core-types.xml).
_DC_FIELDS = _words("""
    contributor contributor.advisor contributor.author contributor.editor
    contributor.illustrator contributor.other coverage.spatial coverage.temporal creator date
    date.accessioned date.available date.copyright date.created date.issued date.submitted
    date.updated description description.abstract description.provenance
    description.sponsorship description.statementofresponsibility description.tableofcontents
    description.uri format format.extent format.medium format.mimetype identifier
    identifier.citation identifier.govdoc identifier.isbn identifier.ismn identifier.issn
    identifier.other identifier.sici identifier.uri language language.iso publisher relation
    relation.haspart relation.hasversion relation.isbasedon relation.isformatof
    relation.ispartof relation.ispartofseries relation.isreferencedby relation.isreplacedby
    relation.isversionof relation.replaces relation.requires relation.uri rights rights.holder
    rights.license rights.uri source source.uri subject subject.classification subject.ddc
    subject.lcc subject.lcsh subject.mesh subject.other title title.alternative type
""")


def _field_key(key: str) -> tuple[str, str, str | None]:
    parts = key.split(".")
    return parts[0], parts[1], parts[2] if len(parts) > 2 else None


_REGISTRY_FIELDS = frozenset(_field_key("dc." + f) for f in _DC_FIELDS)


@dataclass(frozen=True)
class _Format:
    short: str
    mime: str


_UNKNOWN = _Format("Unknown", "application/octet-stream")
_LICENSE = _Format("License", "text/plain; charset=utf-8")

#: DSpace's bitstream format registry (bitstream-formats.xml): MIME, short description, extensions
_FORMATS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("application/pdf", "Adobe PDF", ("pdf",)),
    ("text/xml", "XML", ("xml",)),
    ("text/plain", "Text", ("txt", "asc")),
    ("text/html", "HTML", ("htm", "html")),
    ("text/css", "CSS", ("css",)),
    ("text/csv", "CSV", ("csv",)),
    ("application/msword", "Microsoft Word", ("doc",)),
    (
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "Microsoft Word XML",
        ("docx",),
    ),
    ("application/vnd.ms-powerpoint", "Microsoft Powerpoint", ("ppt",)),
    ("application/vnd.ms-excel", "Microsoft Excel", ("xls",)),
    (
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "Microsoft Excel XML",
        ("xlsx",),
    ),
    ("image/jpeg", "JPEG", ("jpeg", "jpg", "jfif")),
    ("image/gif", "GIF", ("gif",)),
    ("image/png", "image/png", ("png",)),
    ("image/tiff", "TIFF", ("tiff", "tif")),
    ("image/jp2", "JPEG2000", ("jp2",)),
    ("audio/x-aiff", "AIFF", ("aiff", "aif", "aifc")),
    ("audio/basic", "audio/basic", ("au", "snd")),
    ("audio/x-wav", "WAV", ("wav",)),
    ("video/mpeg", "MPEG", ("mpeg", "mpg", "mpe")),
    ("text/richtext", "RTF", ("rtf",)),
    ("image/x-ms-bmp", "BMP", ("bmp",)),
    ("application/postscript", "Postscript", ("ps", "eps", "ai")),
    ("video/quicktime", "Video Quicktime", ("mov", "qt")),
    ("video/mp4", "Video MP4", ("mp4",)),
    ("application/x-latex", "LateX", ("latex",)),
    ("application/x-tex", "TeX", ("tex",)),
    ("application/x-dvi", "TeX dvi", ("dvi",)),
    ("application/sgml", "SGML", ("sgm", "sgml")),
    ("application/vnd.oasis.opendocument.text", "OpenDocument Text", ("odt",)),
)
_FORMAT_BY_MIME = {mime: _Format(short, mime) for mime, short, _ in _FORMATS}
_FORMAT_BY_EXT = {ext: _Format(short, mime) for mime, short, exts in _FORMATS for ext in exts}

#: Java 8's content-types.properties, as used by URLConnection.guessContentTypeFromName
_JAVA_MIME: dict[str, str] = {
    **dict.fromkeys(("pdf",), "application/pdf"),
    **dict.fromkeys(("eps", "ai", "ps"), "application/postscript"),
    **dict.fromkeys(("rtf",), "application/rtf"),
    **dict.fromkeys(("dvi",), "application/x-dvi"),
    **dict.fromkeys(("latex",), "application/x-latex"),
    **dict.fromkeys(("tex",), "application/x-tex"),
    **dict.fromkeys(("zip",), "application/zip"),
    **dict.fromkeys(("tar",), "application/x-tar"),
    **dict.fromkeys(("gtar",), "application/x-gtar"),
    **dict.fromkeys(("sh", "shar"), "application/x-shar"),
    **dict.fromkeys(("snd", "au"), "audio/basic"),
    **dict.fromkeys(("aifc", "aif", "aiff"), "audio/aiff"),
    **dict.fromkeys(("wav",), "audio/x-wav"),
    **dict.fromkeys(("gif",), "image/gif"),
    **dict.fromkeys(("jfif", "jpe", "jpg", "jpeg"), "image/jpeg"),
    **dict.fromkeys(("tif", "tiff"), "image/tiff"),
    **dict.fromkeys(("png",), "image/png"),
    **dict.fromkeys(("bmp",), "image/bmp"),
    **dict.fromkeys(("htm", "html"), "text/html"),
    **dict.fromkeys(
        ("text", "c", "cc", "c++", "h", "pl", "txt", "java", "el"),
        "text/plain",
    ),
    **dict.fromkeys(("tsv",), "text/tab-separated-values"),
    **dict.fromkeys(("mpg", "mpe", "mpeg"), "video/mpeg"),
    **dict.fromkeys(("mov", "qt"), "video/quicktime"),
    **dict.fromkeys(("avi",), "application/x-troff-msvideo"),
    **dict.fromkeys(("xml",), "application/xml"),
}

_REASONS = {
    400: "Bad Request",
    401: "Unauthorized",
    404: "Not Found",
    405: "Method Not Allowed",
    406: "Not Acceptable",
    415: "Unsupported Media Type",
    500: "Internal Server Error",
}
_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_UUID_RE = re.compile(
    r"^([0-9a-fA-F]{1,8})-([0-9a-fA-F]{1,4})-([0-9a-fA-F]{1,4})-([0-9a-fA-F]{1,4})-"
    r"([0-9a-fA-F]{1,12})$"
)


# ---- model -----------------------------------------------------------------------------------


@dataclass(eq=False)
class _User:
    uuid: str
    email: str
    password: str
    admin: bool
    fullname: str


@dataclass(eq=False)
class _Policy:
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
class _Meta:
    schema: str
    element: str
    qualifier: str | None
    value: str
    language: str | None = None

    @property
    def field(self) -> tuple[str, str, str | None]:
        return self.schema, self.element, self.qualifier

    @property
    def key(self) -> str:
        parts = [self.schema, self.element] + ([self.qualifier] if self.qualifier else [])
        return ".".join(parts)


@dataclass(eq=False, kw_only=True)
class _Node:
    kind: ClassVar[str] = "dso"
    plural: ClassVar[str] = "dsos"
    uuid: str
    legacy_id: int
    policies: list[_Policy] = field(default_factory=list)


@dataclass(eq=False, kw_only=True)
class _Community(_Node):
    kind: ClassVar[str] = "community"
    plural: ClassVar[str] = "communities"
    name: str | None
    handle: str
    parent: _Community | None = None
    subs: list[_Community] = field(default_factory=list)
    collections: list[_Collection] = field(default_factory=list)
    texts: dict[str, str | None] = field(default_factory=dict)


@dataclass(eq=False, kw_only=True)
class _Collection(_Node):
    kind: ClassVar[str] = "collection"
    plural: ClassVar[str] = "collections"
    name: str | None
    handle: str
    community: _Community
    #: uuids of the archived items (owned and mapped), kept sorted: the listing order
    items: list[str] = field(default_factory=list)
    workflow: bool = False
    texts: dict[str, str | None] = field(default_factory=dict)
    license: str | None = None


@dataclass(eq=False, kw_only=True)
class _Item(_Node):
    kind: ClassVar[str] = "item"
    plural: ClassVar[str] = "items"
    handle: str | None
    submitted_to: _Collection
    #: owning collection first, then mapped ones; empty while the item is in review
    collections: list[_Collection] = field(default_factory=list)
    metadata: list[_Meta] = field(default_factory=list)
    archived: bool = True
    withdrawn: bool = False
    discoverable: bool = True
    last_modified: datetime = field(default_factory=lambda: datetime(1970, 1, 1))
    bundles: dict[str, list[_Bitstream]] = field(default_factory=dict)

    @property
    def name(self) -> str | None:
        for m in self.metadata:
            if m.field == ("dc", "title", None):
                return m.value
        return None


@dataclass(eq=False, kw_only=True)
class _Bitstream(_Node):
    kind: ClassVar[str] = "bitstream"
    plural: ClassVar[str] = "bitstreams"
    name: str | None
    description: str | None
    data: bytes
    md5: str
    fmt: _Format
    sequence_id: int
    bundle: str
    item: _Item | None
    source: str | None = None


_N = TypeVar("_N", bound=_Node)


# ---- request plumbing ------------------------------------------------------------------------


class _HttpError(Exception):
    """Ends a request with an error status; bodies follow the reference's emulator defaults."""

    def __init__(self, status: int, message: str | None = None, *, plain: bool = False) -> None:
        super().__init__(status, message)
        self.status = status
        self.message = message
        self.plain = plain

    def response(self) -> Response:
        if self.plain:
            return Response(
                (self.message or _REASONS.get(self.status, "")).encode(),
                status_code=self.status,
                headers={"content-type": "text/plain"},
            )
        return _html_error(self.status, self.message)


def _html_error(status: int, message: str | None = None) -> Response:
    """A small Tomcat-like error page: DSpace's errors carry no entity of their own."""
    reason = _REASONS.get(status, "Error")
    text = message or reason
    body = (
        "<!DOCTYPE html><html><head><title>Apache Tomcat - Error report</title></head><body>"
        f"<h1>HTTP Status {status} - {reason}</h1><hr/>"
        f"<p><b>type</b> Status report</p><p><b>message</b> {text}</p>"
        "<hr/><h3>Apache Tomcat</h3></body></html>"
    )
    return Response(
        body.encode(), status_code=status, headers={"content-type": "text/html;charset=utf-8"}
    )


@dataclass
class _Req:
    method: str
    query: QueryParams
    headers: Headers
    body: bytes
    who: _User | None

    def param(self, name: str) -> str | None:
        return self.query.get(name)

    def int_param(self, name: str, default: int) -> int:
        raw = self.query.get(name)
        if raw is None:
            return default
        # JAX-RS answers 404 when a @QueryParam cannot be converted to its Java type
        if _JAVA_INT_RE.match(raw) is None:
            raise _HttpError(404)
        value = int(raw)
        if not -(2**31) <= value <= _JAVA_INT_MAX:
            raise _HttpError(404)
        return value

    @property
    def media_type(self) -> str | None:
        raw = self.headers.get("content-type")
        if raw is None:
            return None
        return raw.split(";", 1)[0].strip().lower()


@dataclass(frozen=True)
class _Route:
    method: str
    pattern: re.Pattern[str]
    handler: Callable[..., Response]
    #: @Consumes({JSON, XML}): other Content-Types answer 415
    consumes: bool = False
    #: @Produces({JSON, XML}): an Accept without JSON answers 406 (XML is not implemented)
    produces: bool = False


_BODY_TYPES = frozenset({"application/json", "application/xml"})


def _accepts_json(accept: str | None) -> bool:
    if accept is None or not accept.strip():
        return True
    for part in accept.split(","):
        fields = [f.strip() for f in part.split(";")]
        media = fields[0].lower()
        q = 1.0
        for f in fields[1:]:
            if f.startswith("q="):
                try:
                    q = float(f[2:])
                except ValueError:
                    q = 0.0
        if q > 0 and media in ("application/json", "application/*", "*/*", "*"):
            return True
    return False


def _json_response(payload: object, status: int = 200) -> Response:
    body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
    return Response(body, status_code=status, headers={"content-type": "application/json"})


def _empty() -> Response:
    return Response(b"", status_code=200)


def _my_split(key: str) -> list[str | None]:
    """DSpace's ``Resource.mySplit``: dot-separated parts, a missing qualifier padded as None."""
    parts: list[str | None] = []
    prev = 0
    for i, ch in enumerate(key):
        if ch == ".":
            parts.append(key[prev:i])
            prev = i + 1
        elif i + 1 == len(key):
            parts.append(key[prev : i + 1])
    if len(parts) == 2:
        parts.append(None)
    return parts


def _java_str(value: str | None) -> str:
    """Java string concatenation: a null reference prints as ``null``."""
    return "null" if value is None else value


def _header_text(value: str) -> str:
    """A header value as Tomcat writes it: ISO-8859-1, with control characters and anything
    above U+00FF turned into spaces (it cannot encode them). Without this, a bitstream whose
    name holds a NUL or a character such as U+2215 crashed the emulator's ``/retrieve``."""
    return "".join(
        " " if (ord(c) < 32 and c != "\t") or ord(c) == 127 or ord(c) > 255 else c for c in value
    )


def _java_mime(name: str) -> str | None:
    """``URLConnection.guessContentTypeFromName`` with Java 8's MIME table."""
    dot = name.rfind(".")
    if dot < 0 or name.rfind("/") > dot:
        return None
    return _JAVA_MIME.get(name[dot + 1 :].lower())


def _format_from_rest_name(name: str) -> _Format:
    mime = _java_mime(name)
    if mime is None:
        return _UNKNOWN
    return _FORMAT_BY_MIME.get(mime, _UNKNOWN)


def _format_from_registry(name: str | None) -> _Format:
    if not name or "." not in name:
        return _UNKNOWN
    return _FORMAT_BY_EXT.get(name.rsplit(".", 1)[1].lower(), _UNKNOWN)


def _expand_fields(raw: str | None) -> list[str]:
    # Java's String.split: no trimming, case kept, trailing empty strings dropped
    if raw is None:
        return []
    parts = raw.split(",")
    while len(parts) > 1 and parts[-1] == "":
        parts.pop()
    return parts


def _wants(fields: list[str], option: str) -> bool:
    return option in fields or "all" in fields


def _timestamp_string(value: datetime) -> str:
    """``java.sql.Timestamp.toString()``: fractional seconds with trailing zeros trimmed."""
    nanos = f"{value.microsecond * 1000:09d}".rstrip("0") or "0"
    return f"{value:%Y-%m-%d %H:%M:%S}.{nanos}"


def _date_string(value: datetime, tz: tzinfo) -> str:
    """``java.util.Date.toString()``: ``EEE MMM dd HH:mm:ss zzz yyyy`` (English names)."""
    zone = value.replace(tzinfo=tz).tzname() or "UTC"
    return (
        f"{_DAYS[value.weekday()]} {_MONTHS[value.month - 1]} {value:%d %H:%M:%S} "
        f"{zone} {value.year}"
    )


def _java_uuid(raw: str) -> str | None:
    """``UUID.fromString`` (lenient about group lengths), canonicalised; None if invalid."""
    m = _UUID_RE.match(raw)
    if m is None:
        return None
    a, b, c, d, e = (int(g, 16) for g in m.groups())
    return str(uuid.UUID(int=(a << 96) | (b << 80) | (c << 64) | (d << 48) | e))


async def _chunks(data: bytes) -> AsyncIterator[bytes]:
    view = memoryview(data)
    for start in range(0, len(data), _STREAM_CHUNK):
        yield bytes(view[start : start + _STREAM_CHUNK])


# ---- the emulator ----------------------------------------------------------------------------


class DSpace6Emulator(Emulator):
    """In-memory DSpace 6.x ``/rest`` server with a Python backdoor for tests."""

    name = "dspace6"
    #: ``/status`` ``sourceVersion``; the REST behaviour emulated here is that of the
    #: ``dspace-6_x`` branch, which the 6.x releases share
    versions = ("6.3", "6.4")

    @classmethod
    def options_for(cls, profile: ServerProfile) -> dict[str, Any]:
        return {"source_version": profile.version}

    def __init__(
        self,
        *,
        latency_ms: float = 0.0,
        seed: int | None = None,
        source_version: str = "6.3",
    ) -> None:
        self.source_version = source_version
        #: the server's local zone: ``lastModified`` is written in it, without a designator
        self.server_tz: tzinfo = UTC
        self._state = threading.RLock()
        self._seed = seed
        self._init_state()
        self._table = self._build_table()
        super().__init__(latency_ms=latency_ms, seed=seed)

    def _init_state(self) -> None:
        self._ids = random.Random(self._seed)
        self._users: dict[str, _User] = {}
        self._sessions: dict[str, str] = {}
        #: every session cookie ever handed out (expired ones too), for leak scans in tests
        self._issued: list[str] = []
        self._objects: dict[str, _Node] = {}
        self._legacy: dict[tuple[str, int], _Node] = {}
        self._handles: dict[str, _Node] = {}
        self._items: dict[str, _Item] = {}
        self._bitstreams: dict[str, _Bitstream] = {}
        self._communities: dict[str, _Community] = {}
        self._collections: dict[str, _Collection] = {}
        self._fields = set(_REGISTRY_FIELDS)
        self._counters: dict[str, int] = {}
        self._anonymous_group = self._new_uuid()
        self._admin_group = self._new_uuid()
        self._site_uuid = self._new_uuid()

    # ---- ASGI entry ---------------------------------------------------------------------------

    def routes(self) -> list[BaseRoute]:
        # every method reaches the dispatcher, which answers 405 the way Jersey does
        methods = ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"]
        return [Route(_CONTEXT + "{path:path}", self._endpoint, methods=methods)]

    def _build_table(self) -> list[_Route]:
        seg = r"([^/]+)"

        def r(
            method: str,
            template: str,
            handler: Callable[..., Response],
            *,
            consumes: bool = False,
            produces: bool = False,
        ) -> _Route:
            pattern = re.compile("^" + template.replace("{}", seg) + "/?$")
            return _Route(method, pattern, handler, consumes, produces)

        # literal paths come before templates, as Jersey prefers them
        return [
            r("GET", "", self._h_index),
            r("GET", "/status", self._h_status),
            r("GET", "/test", self._h_test),
            r("GET", "/hierarchy", self._h_hierarchy, produces=True),
            r("GET", "/communities/top-communities", self._h_top_communities, produces=True),
            r("GET", "/communities", self._h_communities, produces=True),
            r("POST", "/communities", self._h_create_community, consumes=True, produces=True),
            r("GET", "/communities/{}", self._h_community, produces=True),
            r("PUT", "/communities/{}", self._h_update_community, consumes=True),
            r("DELETE", "/communities/{}", self._h_delete_community),
            r("GET", "/communities/{}/collections", self._h_community_collections, produces=True),
            r(
                "POST",
                "/communities/{}/collections",
                self._h_create_collection,
                consumes=True,
                produces=True,
            ),
            r("DELETE", "/communities/{}/collections/{}", self._h_delete_community_collection),
            r("GET", "/communities/{}/communities", self._h_subcommunities, produces=True),
            r(
                "POST",
                "/communities/{}/communities",
                self._h_create_subcommunity,
                consumes=True,
                produces=True,
            ),
            r("DELETE", "/communities/{}/communities/{}", self._h_delete_subcommunity),
            r(
                "POST",
                "/collections/find-collection",
                self._h_find_collection,
                consumes=True,
                produces=True,
            ),
            r("GET", "/collections", self._h_collections, produces=True),
            r("GET", "/collections/{}", self._h_collection, produces=True),
            r("PUT", "/collections/{}", self._h_update_collection, consumes=True),
            r("DELETE", "/collections/{}", self._h_delete_collection, consumes=True),
            r("GET", "/collections/{}/items", self._h_collection_items, produces=True),
            r("POST", "/collections/{}/items", self._h_create_item, consumes=True, produces=True),
            r(
                "DELETE",
                "/collections/{}/items/{}",
                self._h_delete_collection_item,
                consumes=True,
            ),
            r(
                "POST",
                "/items/find-by-metadata-field",
                self._h_find_by_metadata,
                consumes=True,
                produces=True,
            ),
            r("GET", "/items", self._h_items, produces=True),
            r("GET", "/items/{}", self._h_item, produces=True),
            r("DELETE", "/items/{}", self._h_delete_item),
            r("GET", "/items/{}/metadata", self._h_item_metadata, produces=True),
            r("POST", "/items/{}/metadata", self._h_add_metadata, consumes=True),
            r("PUT", "/items/{}/metadata", self._h_replace_metadata, consumes=True),
            r("DELETE", "/items/{}/metadata", self._h_clear_metadata),
            r("GET", "/items/{}/bitstreams", self._h_item_bitstreams, produces=True),
            r("POST", "/items/{}/bitstreams", self._h_upload),
            r("DELETE", "/items/{}/bitstreams/{}", self._h_delete_item_bitstream),
            r("GET", "/bitstreams", self._h_bitstreams, produces=True),
            r("GET", "/bitstreams/{}", self._h_bitstream, produces=True),
            r("PUT", "/bitstreams/{}", self._h_update_bitstream, consumes=True),
            r("DELETE", "/bitstreams/{}", self._h_delete_bitstream),
            r("GET", "/bitstreams/{}/retrieve", self._h_retrieve),
            r("PUT", "/bitstreams/{}/data", self._h_replace_data),
            r("GET", "/bitstreams/{}/policy", self._h_policies, produces=True),
            r("POST", "/bitstreams/{}/policy", self._h_add_policy, consumes=True, produces=True),
            r("DELETE", "/bitstreams/{}/policy/{}", self._h_delete_policy),
            r("GET", "/handle/{}/{}", self._h_handle, produces=True),
        ]

    async def _endpoint(self, request: Request) -> Response:
        path = request.path_params.get("path", "")
        if path and not path.startswith("/"):
            return _html_error(404)
        body = await request.body()
        with self._state:
            who = self._session_user(request.cookies.get("JSESSIONID"))
        rq = _Req(request.method.upper(), request.query_params, request.headers, body, who)
        sub = path.rstrip("/") if path != "/" else ""
        try:
            # Spring Security's filters answer these before Jersey sees the request
            if sub == "/login":
                return self._login(rq)
            if sub == "/logout":
                return self._logout(request.cookies.get("JSESSIONID"))
            if sub == "/shibboleth-login":
                raise _HttpError(401, "Authentication Failed: Login failed")
            found = self._route(rq, sub)
            if isinstance(found, Response):
                return found
            route, args = found
            with self._state:
                return route.handler(rq, *args)
        except _HttpError as exc:
            return exc.response()

    def _route(self, rq: _Req, sub: str) -> tuple[_Route, tuple[str, ...]] | Response:
        """Jersey's matching: the best path template first, then the method (else 405)."""
        method = "GET" if rq.method == "HEAD" else rq.method
        matched: list[tuple[_Route, tuple[str, ...]]] = []
        for route in self._table:
            m = route.pattern.match(sub)
            if m is not None:
                matched.append((route, m.groups()))
        if not matched:
            return _html_error(404)
        first = matched[0][0].pattern.pattern
        candidates = [(r, g) for r, g in matched if r.pattern.pattern == first]
        allowed = sorted({r.method for r, _ in candidates} | {"HEAD", "OPTIONS"})
        if method == "OPTIONS":
            return Response(b"", headers={"allow": ",".join(allowed)})
        for route, groups in candidates:
            if route.method == method:
                self._negotiate(rq, route)
                return route, groups
        response = _html_error(405)
        response.headers["allow"] = ",".join(allowed)
        return response

    @staticmethod
    def _negotiate(rq: _Req, route: _Route) -> None:
        if route.consumes:
            media = rq.media_type
            body_less = rq.method == "DELETE" and media is None
            if not body_less and media not in _BODY_TYPES:
                raise _HttpError(415)
        if route.produces and not _accepts_json(rq.headers.get("accept")):
            raise _HttpError(406)

    # ---- authentication -----------------------------------------------------------------------

    def _session_user(self, token: str | None) -> _User | None:
        if token is None:
            return None
        email = self._sessions.get(token)
        return self._users.get(email) if email is not None else None

    def _login(self, rq: _Req) -> Response:
        # request.getParameter: the first value wins, query string before a form body (which
        # the servlet container parses for POSTs only)
        params: dict[str, str] = {}
        for k, v in rq.query.multi_items():
            params.setdefault(k, v)
        if rq.method == "POST" and rq.media_type == "application/x-www-form-urlencoded":
            for k, v in parse_qsl(rq.body.decode("utf-8", "replace"), keep_blank_values=True):
                params.setdefault(k, v)
        email = params.get("email", "")
        password = params.get("password", "")
        with self._state:
            user = self._users.get(email.strip().lower())
            ok = user is not None and secrets.compare_digest(
                user.password.encode(), password.encode()
            )
            if not ok or user is None:
                raise _HttpError(401, "Authentication Failed: Login failed")
            token = secrets.token_hex(16).upper()
            self._sessions[token] = user.email
            self._issued.append(token)
        response = _empty()
        response.headers["set-cookie"] = f"JSESSIONID={token}; Path=/rest/; HttpOnly"
        return response

    def _logout(self, token: str | None) -> Response:
        with self._state:
            if token is not None:
                self._sessions.pop(token, None)
        return _empty()

    # ---- ids, lookups, permissions ------------------------------------------------------------

    def _new_uuid(self) -> str:
        return str(uuid.UUID(int=self._ids.getrandbits(128), version=4))

    def _next(self, counter: str) -> int:
        self._counters[counter] = self._counters.get(counter, 0) + 1
        return self._counters[counter]

    def _new_handle(self, node: _Node) -> str:
        handle = f"{_HANDLE_PREFIX}/{self._next('handle')}"
        self._handles[handle] = node
        return handle

    def _register(self, node: _Node) -> None:
        self._objects[node.uuid] = node
        self._legacy[(node.kind, node.legacy_id)] = node

    def _now(self) -> datetime:
        return datetime.now(self.server_tz).replace(tzinfo=None)

    def _resolve(self, cls: type[_N], raw: str) -> _N:
        """``findByIdOrLegacyId``: digits are a legacy id, else a UUID; anything else is 500."""
        node: _Node | None
        if raw.isascii() and raw.isdigit():
            number = int(raw)
            if number > _JAVA_INT_MAX:
                raise _HttpError(500)
            node = self._legacy.get((cls.kind, number))
        else:
            canonical = _java_uuid(raw)
            if canonical is None:
                raise _HttpError(500)
            node = self._objects.get(canonical)
        if not isinstance(node, cls):
            raise _HttpError(404)
        return node

    def _find(self, who: _User | None, cls: type[_N], raw: str, action: str) -> _N:
        node = self._resolve(cls, raw)
        if not self._can(who, action, node):
            raise _HttpError(401)
        return node

    def _ancestors(self, node: _Node) -> Iterable[_Node]:
        """The node, then every container above it (for inherited ADMIN rights)."""
        yield node
        if isinstance(node, _Bitstream):
            if node.item is not None:
                yield from self._ancestors(node.item)
        elif isinstance(node, _Item):
            for coll in node.collections or [node.submitted_to]:
                yield from self._ancestors(coll)
        elif isinstance(node, _Collection):
            yield from self._ancestors(node.community)
        elif isinstance(node, _Community) and node.parent is not None:
            yield from self._ancestors(node.parent)

    def _policy_applies(self, policy: _Policy, who: _User | None) -> bool:
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

    def _can(self, who: _User | None, action: str, node: _Node) -> bool:
        if who is not None and who.admin:
            return True
        for level, holder in enumerate(self._ancestors(node)):
            for policy in holder.policies:
                grants = policy.action == "ADMIN" or (level == 0 and policy.action == action)
                if grants and self._policy_applies(policy, who):
                    return True
        return False

    def _is_public(self, node: _Node) -> bool:
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
    ) -> _Policy:
        return _Policy(self._next("policy"), action, eperson, group, start_ms)

    def _public_policies(self, public: bool) -> list[_Policy]:
        return [self._new_policy("READ", group=self._anonymous_group)] if public else []

    def _listed(self, who: _User | None, item: _Item) -> bool:
        """``ItemService.isItemListedForUser``: admins, or READ on a discoverable item."""
        if who is not None and who.admin:
            return True
        return item.discoverable and self._can(who, "READ", item)

    def _paging(self, rq: _Req, default_limit: int) -> tuple[int, int]:
        limit = rq.int_param("limit", default_limit)
        offset = rq.int_param("offset", 0)
        if limit < 0 or offset < 0:
            return 100, 0
        return limit, offset

    # ---- JSON representations -----------------------------------------------------------------

    def _dso(self, node: _Node, name: str | None, handle: str | None) -> dict[str, Any]:
        return {
            "uuid": node.uuid,
            "name": name,
            "handle": handle,
            "type": node.kind,
            "link": f"{_CONTEXT}/{node.plural}/{node.uuid}",
            "expand": [],
        }

    def _plain_dso(self, node: _Node) -> dict[str, Any]:
        if isinstance(node, _Item):
            return self._dso(node, node.name, node.handle)
        if isinstance(node, _Community | _Collection):
            return self._dso(node, node.name, node.handle)
        if isinstance(node, _Bitstream):
            return self._dso(node, node.name, None)
        return self._dso(node, None, None)

    def _community_json(
        self, c: _Community, fields: list[str], who: _User | None
    ) -> dict[str, Any]:
        out = self._dso(c, c.name, c.handle)
        skipped: list[str] = []
        parent = None
        if _wants(fields, "parentCommunity"):
            if c.parent is not None:
                parent = self._community_json(c.parent, [], who)
        else:
            skipped.append("parentCommunity")
        collections: list[dict[str, Any]] = []
        if _wants(fields, "collections"):
            collections = [
                self._collection_json(k, [], who)
                for k in self._by_name(c.collections)
                if self._can(who, "READ", k)
            ]
        else:
            skipped.append("collections")
        subs: list[dict[str, Any]] = []
        if _wants(fields, "subCommunities"):
            subs = [
                self._community_json(s, [], who)
                for s in self._by_name(c.subs)
                if self._can(who, "READ", s)
            ]
        else:
            skipped.append("subCommunities")
        if not _wants(fields, "logo"):
            skipped.append("logo")
        out["expand"] = skipped + ([] if "all" in fields else ["all"])
        out.update(
            {
                "logo": None,
                "parentCommunity": parent,
                **{k: c.texts.get(k) or "" for k in _TEXT_FIELDS},
                "countItems": self._count_items(c),
                "subcommunities": subs,
                "collections": collections,
            }
        )
        return out

    def _collection_json(
        self,
        k: _Collection,
        fields: list[str],
        who: _User | None,
        page: tuple[int, int] | None = (100, 0),
    ) -> dict[str, Any]:
        out = self._dso(k, k.name, k.handle)
        skipped: list[str] = []
        parents: list[dict[str, Any]] = []
        if _wants(fields, "parentCommunityList"):
            parents = [self._community_json(c, [], who) for c in self._community_chain(k)]
        else:
            skipped.append("parentCommunityList")
        parent = None
        if _wants(fields, "parentCommunity"):
            parent = self._community_json(k.community, [], who)
        else:
            skipped.append("parentCommunity")
        items: list[dict[str, Any]] = []
        if _wants(fields, "items"):
            uuids = k.items if page is None else k.items[page[1] : page[1] + page[0]]
            items = [
                self._item_json(self._items[u], [], who)
                for u in uuids
                if self._listed(who, self._items[u])
            ]
        else:
            skipped.append("items")
        license_text = None
        if _wants(fields, "license"):
            license_text = k.license or _DEFAULT_LICENSE
        else:
            skipped.append("license")
        if not _wants(fields, "logo"):
            skipped.append("logo")
        out["expand"] = skipped + ([] if "all" in fields else ["all"])
        out.update(
            {
                "logo": None,
                "parentCommunity": parent,
                "parentCommunityList": parents,
                "items": items,
                "license": license_text,
                **{f: k.texts.get(f) or "" for f in _TEXT_FIELDS},
                "numberItems": len(k.items),
            }
        )
        return out

    def _item_json(
        self, i: _Item, fields: list[str], who: _User | None, *, fresh: bool = False
    ) -> dict[str, Any]:
        out = self._dso(i, i.name, i.handle)
        skipped: list[str] = []
        metadata = None
        if _wants(fields, "metadata"):
            metadata = self._visible_metadata(i, who)
        else:
            skipped.append("metadata")
        parent = None
        if _wants(fields, "parentCollection") and i.collections:
            parent = self._collection_json(i.collections[0], [], who)
        else:
            skipped.append("parentCollection")
        parent_list = None
        if _wants(fields, "parentCollectionList"):
            parent_list = [self._collection_json(k, [], who) for k in i.collections]
        else:
            skipped.append("parentCollectionList")
        communities = None
        if _wants(fields, "parentCommunityList"):
            communities = [self._community_json(c, [], who) for c in self._item_communities(i)]
        else:
            skipped.append("parentCommunityList")
        bitstreams = None
        if _wants(fields, "bitstreams"):
            bitstreams = [
                self._bitstream_json(b, [], who) for b in self._readable_bitstreams(i, who)
            ]
        else:
            skipped.append("bitstreams")
        out["expand"] = skipped + ([] if "all" in fields else ["all"])
        modified = (
            _date_string(i.last_modified, self.server_tz)
            if fresh
            else _timestamp_string(i.last_modified)
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

    def _bitstream_json(
        self, b: _Bitstream, fields: list[str], who: _User | None
    ) -> dict[str, Any]:
        out = self._dso(b, b.name, None)
        skipped: list[str] = []
        parent = None
        if _wants(fields, "parent"):
            parent = self._plain_dso(b.item) if b.item is not None else None
        else:
            skipped.append("parent")
        policies = None
        if _wants(fields, "policies"):
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
                "retrieveLink": f"{_CONTEXT}/bitstreams/{b.uuid}/retrieve",
                "checkSum": {"value": b.md5, "checkSumAlgorithm": "MD5"},
                "sequenceId": b.sequence_id,
                "policies": policies,
            }
        )
        return out

    @staticmethod
    def _policy_json(p: _Policy, b: _Bitstream) -> dict[str, Any]:
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
    def _meta_json(m: _Meta) -> dict[str, Any]:
        return {
            "key": m.key,
            "value": m.value,
            "language": m.language,
            "schema": m.schema,
            "element": m.element,
            "qualifier": m.qualifier,
        }

    def _visible_metadata(self, i: _Item, who: _User | None) -> list[dict[str, Any]]:
        # MetadataExposureService hides metadata.hide.* fields from everyone but administrators
        admin = who is not None and who.admin
        return [self._meta_json(m) for m in i.metadata if admin or m.field not in _HIDDEN_FIELDS]

    def _readable_bitstreams(self, i: _Item, who: _User | None) -> list[_Bitstream]:
        return [b for bundle in i.bundles.values() for b in bundle if self._can(who, "READ", b)]

    @staticmethod
    def _by_name(nodes: Iterable[_N]) -> list[_N]:
        return sorted(nodes, key=lambda n: (getattr(n, "name", None) or "", n.uuid))

    @staticmethod
    def _community_chain(k: _Collection) -> list[_Community]:
        chain: list[_Community] = []
        c: _Community | None = k.community
        while c is not None:
            chain.append(c)
            c = c.parent
        return chain

    def _item_communities(self, i: _Item) -> list[_Community]:
        seen: dict[str, _Community] = {}
        for k in i.collections:
            for c in self._community_chain(k):
                seen.setdefault(c.uuid, c)
        return list(seen.values())

    def _count_items(self, c: _Community) -> int:
        uuids: set[str] = set()
        stack = [c]
        while stack:
            node = stack.pop()
            for k in node.collections:
                uuids.update(k.items)
            stack.extend(node.subs)
        return len(uuids)

    # ---- request bodies -----------------------------------------------------------------------

    def _body_json(self, rq: _Req) -> Any:
        if rq.media_type == "application/xml":
            raise _HttpError(
                400, "XML request bodies are not supported by this emulator", plain=True
            )
        if not rq.body.strip():
            return None
        try:
            return json.loads(rq.body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise _HttpError(
                400, f"Unexpected character in JSON input: {exc}", plain=True
            ) from None

    @staticmethod
    def _check_props(obj: Any, cls: str) -> dict[str, Any] | None:
        """Jackson's view of a body: unknown or getter-only properties are a 400."""
        if obj is None:
            return None
        if not isinstance(obj, dict):
            raise _HttpError(
                400, f"Can not deserialize instance of org.dspace.rest.common.{cls}", plain=True
            )
        for key in obj:
            if key not in _BODY_FIELDS[cls]:
                raise _HttpError(
                    400,
                    f'Unrecognized field "{key}" (class org.dspace.rest.common.{cls}), '
                    "not marked as ignorable",
                    plain=True,
                )
        return obj

    @staticmethod
    def _string(obj: dict[str, Any], key: str) -> str | None:
        value = obj.get(key)
        if value is None or isinstance(value, str):
            return value
        if isinstance(value, bool | int | float):
            return json.dumps(value)
        raise _HttpError(400, f"Can not deserialize String out of {key}", plain=True)

    def _metadata_entries(self, raw: Any) -> list[dict[str, Any]]:
        if raw is None:
            return []
        if not isinstance(raw, list):
            raise _HttpError(400, "Can not deserialize java.util.List out of object", plain=True)
        entries = []
        for entry in raw:
            checked = self._check_props(entry, "MetadataEntry")
            if checked is None:
                raise _HttpError(500)  # a null entry: NullPointerException in the resource
            entries.append(checked)
        return entries

    def _parse_fields(self, entries: list[dict[str, Any]], *, strict_dots: bool) -> list[_Meta]:
        """Turn MetadataEntry bodies into values; checks the registry (unknown field → 500).

        ``strict_dots`` is item creation, where a key without a dot ends in an index error (500);
        the metadata endpoints skip keys that do not have two or three parts.
        """
        out: list[_Meta] = []
        for entry in entries:
            key = self._string(entry, "key")
            if key is None:
                raise _HttpError(500)
            parts = _my_split(key)
            if len(parts) < 2:
                if strict_dots:
                    raise _HttpError(500)
                continue
            if len(parts) > 3 and not strict_dots:
                continue
            schema, element, qualifier = parts[0] or "", parts[1] or "", parts[2]
            if (schema, element, qualifier) not in self._fields:
                raise _HttpError(500)  # SQLException("bad_dublin_core ...")
            value = self._string(entry, "value")
            if value is None:
                continue
            out.append(_Meta(schema, element, qualifier, value, self._string(entry, "language")))
        return out

    # ---- mutations shared by REST and the backdoor --------------------------------------------

    def _touch(self, item: _Item | None) -> None:
        if item is not None:
            item.last_modified = self._now()

    def _update_item(self, item: _Item) -> None:
        """``ItemService.update``: bitstreams still at -1 get the next sequence ids, in order."""
        top = max((b.sequence_id for bundle in item.bundles.values() for b in bundle), default=0)
        for bundle in item.bundles.values():
            for b in bundle:
                if b.sequence_id < 0:
                    top = max(top, 0) + 1
                    b.sequence_id = top
        self._touch(item)

    def _create_community(
        self, name: str | None, parent: _Community | None, public: bool, texts: dict[str, Any]
    ) -> _Community:
        c = _Community(
            uuid=self._new_uuid(),
            legacy_id=self._next("community"),
            name=name,
            handle="",
            parent=parent,
            texts={k: texts.get(k) for k in _TEXT_FIELDS},
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
        community: _Community,
        public: bool,
        texts: dict[str, Any],
        *,
        workflow: bool = False,
        license_text: str | None = None,
    ) -> _Collection:
        k = _Collection(
            uuid=self._new_uuid(),
            legacy_id=self._next("collection"),
            name=name,
            handle="",
            community=community,
            workflow=workflow,
            texts={f: texts.get(f) for f in _TEXT_FIELDS},
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
        coll: _Collection,
        metadata: list[_Meta],
        *,
        public: bool,
        discoverable: bool = True,
        review: bool = False,
        when: datetime | None = None,
    ) -> _Item:
        item = _Item(
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
        if review:
            # in review: no handle, not in the collection, readable by administrators only
            return item
        item.policies = self._public_policies(public)
        self._install(item, coll, when or self._now())
        return item

    def _install(self, item: _Item, coll: _Collection, when: datetime) -> None:
        """``InstallItemService``: handle, accession dates, URI and provenance, then archive."""
        item.handle = self._new_handle(item)
        utc = when.replace(tzinfo=self.server_tz).astimezone(UTC)
        stamp = f"{utc:%Y-%m-%dT%H:%M:%S}Z"
        present = {m.field for m in item.metadata}
        for qualifier, value in (("accessioned", stamp), ("available", stamp)):
            if ("dc", "date", qualifier) not in present:
                item.metadata.append(_Meta("dc", "date", qualifier, value))
        if ("dc", "date", "issued") not in present:
            item.metadata.append(_Meta("dc", "date", "issued", stamp[:10]))
        item.metadata.append(_Meta("dc", "identifier", "uri", _CANONICAL_HANDLE + item.handle))
        bitstreams = sum(len(b) for b in item.bundles.values())
        provenance = f"Made available in DSpace on {stamp} (GMT). No. of bitstreams: {bitstreams}"
        item.metadata.append(_Meta("dc", "description", "provenance", provenance, "en"))
        item.archived = True
        item.collections = [coll]
        bisect.insort(coll.items, item.uuid)

    def _add_bitstream(
        self,
        item: _Item,
        name: str | None,
        data: bytes,
        *,
        bundle: str,
        fmt: _Format,
        public: bool,
        description: str | None,
        sequence_id: int,
    ) -> _Bitstream:
        b = _Bitstream(
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

    def _remove_bitstream(self, b: _Bitstream) -> None:
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

    def _delete_item(self, item: _Item) -> None:
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
    def _unlist(k: _Collection, item: _Item) -> None:
        pos = bisect.bisect_left(k.items, item.uuid)
        if pos < len(k.items) and k.items[pos] == item.uuid:
            del k.items[pos]

    def _remove_item_from(self, k: _Collection, item: _Item) -> None:
        """``CollectionService.removeItem``: unmap, or delete the item if it was the last one."""
        self._unlist(k, item)
        if k in item.collections:
            item.collections.remove(k)
        if not item.collections:
            self._delete_item(item)
        else:
            self._touch(item)

    def _delete_collection(self, k: _Collection) -> None:
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

    def _delete_community(self, c: _Community) -> None:
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

    # ---- handlers: service --------------------------------------------------------------------

    def _h_index(self, rq: _Req) -> Response:
        rows = "".join(
            f"<tr><td>{r.method}</td><td>{_CONTEXT}{self._template(r)}</td></tr>"
            for r in self._table
        )
        page = (
            "<html><head><title>DSpace REST - index</title></head><body>"
            "<h2>Index</h2><p>REST API for DSpace " + self.source_version + "</p>"
            "<table>" + rows + "</table></body></html>"
        )
        return Response(page.encode(), headers={"content-type": "text/html"})

    @staticmethod
    def _template(route: _Route) -> str:
        return route.pattern.pattern[1:-3].replace("([^/]+)", "{id}")

    def _h_status(self, rq: _Req) -> Response:
        who = rq.who
        if who is None:
            major = self.source_version.split(".", 1)[0]
            return _json_response(
                {
                    "okay": True,
                    "authenticated": False,
                    "email": None,
                    "fullname": None,
                    "sourceVersion": self.source_version,
                    "apiVersion": major,
                }
            )
        return _json_response(
            {
                "okay": True,
                "authenticated": True,
                "email": who.email,
                "fullname": who.fullname,
                "sourceVersion": None,
                "apiVersion": None,
            }
        )

    def _h_test(self, rq: _Req) -> Response:
        return Response(b"REST api is running.", headers={"content-type": "text/plain"})

    def _h_hierarchy(self, rq: _Req) -> Response:
        def node(c: _Community) -> dict[str, Any]:
            return {
                "id": c.uuid,
                "name": c.name,
                "handle": c.handle,
                "community": [
                    node(s) for s in self._by_name(c.subs) if self._can(rq.who, "READ", s)
                ],
                "collection": [
                    {"id": k.uuid, "name": k.name, "handle": k.handle}
                    for k in self._by_name(c.collections)
                    if self._can(rq.who, "READ", k)
                ],
            }

        tops = [c for c in self._by_name(self._communities.values()) if c.parent is None]
        return _json_response(
            {
                "id": self._site_uuid,
                "name": _SITE_NAME,
                "handle": f"{_HANDLE_PREFIX}/0",
                "community": [node(c) for c in tops if self._can(rq.who, "READ", c)],
                "collection": [],
            }
        )

    def _h_handle(self, rq: _Req, prefix: str, suffix: str) -> Response:
        handle = f"{prefix}/{suffix}"
        fields = _expand_fields(rq.param("expand"))
        if handle == f"{_HANDLE_PREFIX}/0":
            return _json_response(
                {
                    "uuid": self._site_uuid,
                    "name": _SITE_NAME,
                    "handle": handle,
                    "type": "site",
                    "link": f"{_CONTEXT}/sites/{self._site_uuid}",
                    "expand": [],
                }
            )
        node = self._handles.get(handle)
        # the 404/401 thrown here is replaced by 500 in processFinally (section 8)
        if node is None or not self._can(rq.who, "READ", node):
            raise _HttpError(500)
        if isinstance(node, _Community):
            return _json_response(self._community_json(node, fields, rq.who))
        if isinstance(node, _Collection):
            return _json_response(self._collection_json(node, fields, rq.who, None))
        if isinstance(node, _Item):
            return _json_response(self._item_json(node, fields, rq.who))
        return _json_response(self._plain_dso(node))

    # ---- handlers: communities ----------------------------------------------------------------

    def _community_page(self, rq: _Req, pool: Iterable[_Community], default: int) -> Response:
        limit, offset = self._paging(rq, default)
        fields = _expand_fields(rq.param("expand"))
        page = self._by_name(pool)[offset : offset + limit]
        return _json_response(
            [self._community_json(c, fields, rq.who) for c in page if self._can(rq.who, "READ", c)]
        )

    def _h_communities(self, rq: _Req) -> Response:
        return self._community_page(rq, self._communities.values(), 100)

    def _h_top_communities(self, rq: _Req) -> Response:
        tops = (c for c in self._communities.values() if c.parent is None)
        return self._community_page(rq, tops, 20)

    def _h_community(self, rq: _Req, cid: str) -> Response:
        c = self._find(rq.who, _Community, cid, "READ")
        return _json_response(self._community_json(c, _expand_fields(rq.param("expand")), rq.who))

    def _h_subcommunities(self, rq: _Req, cid: str) -> Response:
        c = self._find(rq.who, _Community, cid, "READ")
        return self._community_page(rq, c.subs, 20)

    def _h_community_collections(self, rq: _Req, cid: str) -> Response:
        c = self._find(rq.who, _Community, cid, "READ")
        limit, offset = self._paging(rq, 100)
        fields = _expand_fields(rq.param("expand"))
        page = self._by_name(c.collections)[offset : offset + limit]
        return _json_response(
            [self._collection_json(k, fields, rq.who) for k in page if self._can(rq.who, "READ", k)]
        )

    def _container_body(self, rq: _Req, cls: str) -> dict[str, Any]:
        body = self._check_props(self._body_json(rq), cls)
        if body is None:
            raise _HttpError(500)  # a null entity: NullPointerException in the resource
        return body

    def _texts(self, body: dict[str, Any]) -> dict[str, Any]:
        return {k: self._string(body, k) for k in _TEXT_FIELDS}

    def _h_create_community(self, rq: _Req) -> Response:
        body = self._container_body(rq, "Community")
        if rq.who is None or not rq.who.admin:
            raise _HttpError(401)
        c = self._create_community(self._string(body, "name"), None, True, self._texts(body))
        return _json_response(self._community_json(c, [""], rq.who))

    def _h_create_subcommunity(self, rq: _Req, cid: str) -> Response:
        body = self._container_body(rq, "Community")
        parent = self._find(rq.who, _Community, cid, "WRITE")
        # CommunityService.create always adds an Anonymous READ policy
        c = self._create_community(self._string(body, "name"), parent, True, self._texts(body))
        return _json_response(self._community_json(c, [""], rq.who))

    def _h_create_collection(self, rq: _Req, cid: str) -> Response:
        body = self._container_body(rq, "Collection")
        parent = self._find(rq.who, _Community, cid, "WRITE")
        # CollectionService.create always adds Anonymous READ (and default item/bitstream READ)
        k = self._create_collection(
            self._string(body, "name"),
            parent,
            True,
            self._texts(body),
            license_text=self._string(body, "license"),
        )
        return _json_response(self._collection_json(k, [""], rq.who))

    def _h_update_community(self, rq: _Req, cid: str) -> Response:
        body = self._container_body(rq, "Community")
        c = self._find(rq.who, _Community, cid, "WRITE")
        # every field is overwritten, nulls included
        c.name = self._string(body, "name")
        c.texts = self._texts(body)
        return _empty()

    def _h_delete_community(self, rq: _Req, cid: str) -> Response:
        c = self._find(rq.who, _Community, cid, "DELETE")
        self._delete_community(c)
        return _empty()

    def _h_delete_community_collection(self, rq: _Req, cid: str, kid: str) -> Response:
        c = self._find(rq.who, _Community, cid, "REMOVE")
        k = self._resolve(_Collection, kid)
        if k.community is not c:
            raise _HttpError(404)
        self._delete_collection(k)  # its only parent: removing it deletes it
        return _empty()

    def _h_delete_subcommunity(self, rq: _Req, cid: str, sid: str) -> Response:
        c = self._find(rq.who, _Community, cid, "REMOVE")
        sub = self._resolve(_Community, sid)
        if sub.parent is not c:
            raise _HttpError(404)
        self._delete_community(sub)
        return _empty()

    # ---- handlers: collections ----------------------------------------------------------------

    def _h_collections(self, rq: _Req) -> Response:
        limit, offset = self._paging(rq, 100)
        fields = _expand_fields(rq.param("expand"))
        page = self._by_name(self._collections.values())[offset : offset + limit]
        return _json_response(
            [self._collection_json(k, fields, rq.who) for k in page if self._can(rq.who, "READ", k)]
        )

    def _h_collection(self, rq: _Req, kid: str) -> Response:
        k = self._find(rq.who, _Collection, kid, "READ")
        page = self._paging(rq, 100)
        fields = _expand_fields(rq.param("expand"))
        return _json_response(self._collection_json(k, fields, rq.who, page))

    def _h_collection_items(self, rq: _Req, kid: str) -> Response:
        k = self._find(rq.who, _Collection, kid, "READ")
        limit, offset = self._paging(rq, 100)
        fields = _expand_fields(rq.param("expand"))
        # the page is cut first (SQL LIMIT/OFFSET over archived items ordered by UUID), and
        # only then filtered, so it can be short although later pages hold entries
        page = [self._items[u] for u in k.items[offset : offset + limit]]
        return _json_response(
            [self._item_json(i, fields, rq.who) for i in page if self._listed(rq.who, i)]
        )

    def _h_create_item(self, rq: _Req, kid: str) -> Response:
        body = self._check_props(self._body_json(rq), "Item")
        k = self._find(rq.who, _Collection, kid, "WRITE")
        if body is None:
            raise _HttpError(500)
        metadata = self._parse_fields(
            self._metadata_entries(body.get("metadata")), strict_dots=True
        )
        item = self._create_item(k, metadata, public=self._is_public(k), review=k.workflow)
        return _json_response(self._item_json(item, [""], rq.who, fresh=True))

    def _h_update_collection(self, rq: _Req, kid: str) -> Response:
        body = self._container_body(rq, "Collection")
        k = self._find(rq.who, _Collection, kid, "WRITE")
        k.name = self._string(body, "name")
        k.license = self._string(body, "license")
        k.texts = self._texts(body)
        return _empty()

    def _h_delete_collection(self, rq: _Req, kid: str) -> Response:
        k = self._find(rq.who, _Collection, kid, "DELETE")
        self._delete_collection(k)
        return _empty()

    def _h_delete_collection_item(self, rq: _Req, kid: str, iid: str) -> Response:
        # every 404/401 of this method is thrown without aborting the context first, so
        # processFinally turns it into 500 (section 8)
        try:
            k = self._resolve(_Collection, kid)
            item = self._resolve(_Item, iid)
        except _HttpError:
            raise _HttpError(500) from None
        if not (self._can(rq.who, "REMOVE", item) and self._can(rq.who, "REMOVE", k)):
            raise _HttpError(500)
        self._remove_item_from(k, item)
        return _empty()

    def _h_find_collection(self, rq: _Req) -> Response:
        # the whole body is the name: JSON quotes around it would be part of it
        name = rq.body.decode("utf-8", "replace")
        for k in self._by_name(self._collections.values()):
            if self._can(rq.who, "READ", k) and k.name == name:
                return _json_response(self._collection_json(k, [""], rq.who))
        return Response(b"", status_code=204)

    # ---- handlers: items ----------------------------------------------------------------------

    def _h_items(self, rq: _Req) -> Response:
        limit, offset = self._paging(rq, 100)
        fields = _expand_fields(rq.param("expand"))
        page = list(self._items.values())[offset : offset + limit]
        return _json_response(
            [self._item_json(i, fields, rq.who) for i in page if self._listed(rq.who, i)]
        )

    def _h_item(self, rq: _Req, iid: str) -> Response:
        item = self._find(rq.who, _Item, iid, "READ")
        return _json_response(self._item_json(item, _expand_fields(rq.param("expand")), rq.who))

    def _h_delete_item(self, rq: _Req, iid: str) -> Response:
        # ItemsResource.deleteItem → ItemServiceImpl.delete: DELETE (findItem) and REMOVE
        # (rawDelete) on the item, then the item goes from every collection it is mapped into
        # (clearCollections) — unlike DELETE /collections/{cid}/items/{iid}, which unmaps
        item = self._find(rq.who, _Item, iid, "DELETE")
        if not self._can(rq.who, "REMOVE", item):
            raise _HttpError(500)  # the AuthorizeException is rethrown as 500
        self._delete_item(item)
        return _empty()

    def _h_item_metadata(self, rq: _Req, iid: str) -> Response:
        item = self._find(rq.who, _Item, iid, "READ")
        return _json_response(self._visible_metadata(item, rq.who))

    def _metadata_body(self, rq: _Req) -> list[_Meta]:
        raw = self._body_json(rq)
        if raw is None:
            raise _HttpError(500)
        return self._parse_fields(self._metadata_entries(raw), strict_dots=False)

    def _h_add_metadata(self, rq: _Req, iid: str) -> Response:
        values = self._metadata_body(rq)
        item = self._find(rq.who, _Item, iid, "WRITE")
        item.metadata.extend(values)
        self._update_item(item)
        return _empty()

    def _h_replace_metadata(self, rq: _Req, iid: str) -> Response:
        raw = self._body_json(rq)
        if raw is None:
            raise _HttpError(500)
        entries = self._metadata_entries(raw)
        values = self._parse_fields(entries, strict_dots=False)
        item = self._find(rq.who, _Item, iid, "WRITE")
        # every key present is cleared (all languages), even when its values are all null
        cleared = set()
        for entry in entries:
            parts = _my_split(self._string(entry, "key") or "")
            if len(parts) == 3:
                cleared.add((parts[0] or "", parts[1] or "", parts[2]))
        item.metadata = [m for m in item.metadata if m.field not in cleared] + values
        self._update_item(item)
        return _empty()

    def _h_clear_metadata(self, rq: _Req, iid: str) -> Response:
        item = self._find(rq.who, _Item, iid, "WRITE")
        kept = []
        for qualified in (
            ("dc", "date", "accessioned"),
            ("dc", "date", "available"),
            ("dc", "identifier", "uri"),
            ("dc", "description", "provenance"),
        ):
            first = next((m for m in item.metadata if m.field == qualified), None)
            if first is not None:
                kept.append(_Meta(*qualified, first.value))
        item.metadata = kept
        self._update_item(item)
        return _empty()

    def _h_item_bitstreams(self, rq: _Req, iid: str) -> Response:
        item = self._find(rq.who, _Item, iid, "READ")
        limit = rq.int_param("limit", 20)
        offset = rq.int_param("offset", 0)
        listing = self._readable_bitstreams(item, rq.who)
        size = len(listing)
        # ItemsResource.getItemBitstreams: the slice bug, with Java subList's range checks
        end = size if offset + limit > size - offset else offset + limit
        if offset < 0 or end > size or offset > end:
            raise _HttpError(500)
        return _json_response([self._bitstream_json(b, [], rq.who) for b in listing[offset:end]])

    def _h_upload(self, rq: _Req, iid: str) -> Response:
        item = self._find(rq.who, _Item, iid, "WRITE")
        if not self._can(rq.who, "ADD", item):
            raise _HttpError(500)  # AuthorizeException on the bundle → processException
        name = rq.param("name")
        description = rq.param("description")
        group = rq.param("groupId")
        had_original = bool(item.bundles.get("ORIGINAL"))
        embargo = self._embargo(rq, group) if group is not None else None
        self._update_item(item)  # addBitstream updates the item before attaching the bitstream
        b = self._add_bitstream(
            item,
            name,
            rq.body,
            bundle="ORIGINAL",
            fmt=_format_from_rest_name(name) if name is not None else _UNKNOWN,
            public=self._is_public(item),
            description=description,
            sequence_id=-1,
        )
        b.source = "DSpace REST API"
        # the embargo loop runs over the ORIGINAL bundles found *before* the upload, so on an
        # item without one no policy is created; when it runs, it adds the group policy
        if embargo is not None and had_original:
            b.policies.append(embargo)
        return _json_response(self._bitstream_json(b, [""], rq.who))

    def _embargo(self, rq: _Req, group_raw: str) -> _Policy:
        group = group_raw if group_raw.isdigit() else _java_uuid(group_raw)
        if group is None:
            raise _HttpError(500)
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

    def _h_delete_item_bitstream(self, rq: _Req, iid: str, bid: str) -> Response:
        item = self._find(rq.who, _Item, iid, "WRITE")
        b = self._resolve(_Bitstream, bid)
        if not self._can(rq.who, "DELETE", b):
            # the log line calls getUser(headers).getEmail(): null for anonymous callers
            raise _HttpError(500 if rq.who is None else 401)
        if b.item is item:
            self._remove_bitstream(b)
        return _empty()

    def _h_find_by_metadata(self, rq: _Req) -> Response:
        entry = self._check_props(self._body_json(rq), "MetadataEntry")
        if entry is None:
            raise _HttpError(500)
        key = self._string(entry, "key")
        if key is None:
            raise _HttpError(500)
        parts = _my_split(key)
        if not 2 <= len(parts) <= 3:
            raise _HttpError(404)
        target = (parts[0] or "", parts[1] or "", parts[2])
        if target not in self._fields:
            raise _HttpError(500)  # IllegalArgumentException("No such metadata field")
        value = self._string(entry, "value")
        fields = _expand_fields(rq.param("expand"))
        found = [
            i
            for i in self._items.values()
            if i.archived
            and i.discoverable
            and any(m.field == target and m.value == value for m in i.metadata)
            and self._can(rq.who, "READ", i)
        ]
        return _json_response([self._item_json(i, fields, rq.who) for i in found])

    # ---- handlers: bitstreams -----------------------------------------------------------------

    def _h_bitstreams(self, rq: _Req) -> Response:
        limit, offset = self._paging(rq, 100)
        fields = _expand_fields(rq.param("expand"))
        page = list(self._bitstreams.values())[offset : offset + limit]
        return _json_response(
            [self._bitstream_json(b, fields, rq.who) for b in page if self._can(rq.who, "READ", b)]
        )

    def _h_bitstream(self, rq: _Req, bid: str) -> Response:
        b = self._find(rq.who, _Bitstream, bid, "READ")
        return _json_response(self._bitstream_json(b, _expand_fields(rq.param("expand")), rq.who))

    def _h_retrieve(self, rq: _Req, bid: str) -> Response:
        b = self._find(rq.who, _Bitstream, bid, "READ")
        headers = {
            "content-type": b.fmt.mime,
            # raw name, no escaping: that is what DSpace sends
            "content-disposition": _header_text(f'attachment; filename="{_java_str(b.name)}"'),
        }
        if len(b.data) <= _BUFFER_LIMIT:
            return Response(b.data, headers=headers)
        return StreamingResponse(_chunks(b.data), headers=headers)

    def _bitstream_body(self, rq: _Req) -> dict[str, Any]:
        body = self._check_props(self._body_json(rq), "Bitstream")
        if body is None:
            raise _HttpError(500)
        return body

    def _h_update_bitstream(self, rq: _Req, bid: str) -> Response:
        body = self._bitstream_body(rq)
        sequence = body.get("sequenceId")
        if sequence is not None and (isinstance(sequence, bool) or not isinstance(sequence, int)):
            raise _HttpError(400, "Can not deserialize Integer out of sequenceId", plain=True)
        policies = None
        if body.get("policies") is not None:
            policies = self._policies_from(body["policies"])
        b = self._find(rq.who, _Bitstream, bid, "WRITE")
        name = self._string(body, "name")
        if name is None:
            raise _HttpError(500)  # getMimeType(null): NullPointerException
        b.description = self._string(body, "description")
        b.fmt = _format_from_rest_name(name)
        b.name = name
        if sequence is not None and sequence != -1:
            b.sequence_id = sequence
        if policies is not None:
            b.policies = policies
        self._touch(b.item)
        return _empty()

    def _policies_from(self, raw: Any) -> list[_Policy]:
        if not isinstance(raw, list):
            raise _HttpError(400, "Can not deserialize policies", plain=True)
        policies = []
        for entry in raw:
            body = self._check_props(entry, "ResourcePolicy")
            if body is None:
                raise _HttpError(500)
            policies.append(self._policy_from(body))
        return policies

    def _policy_from(self, body: dict[str, Any]) -> _Policy:
        action = self._string(body, "action")
        if action not in _ACTIONS:
            raise _HttpError(400, f"Can not construct Action from {action!r}", plain=True)
        dates = []
        for key in ("startDate", "endDate"):
            value = body.get(key)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
                raise _HttpError(400, f"Can not deserialize Date out of {key}", plain=True)
            dates.append(value)
        policy = self._new_policy(
            action,
            eperson=self._string(body, "epersonId"),
            group=self._string(body, "groupId"),
            start_ms=dates[0],
        )
        policy.end_ms = dates[1]
        policy.rp_name = self._string(body, "rpName")
        policy.rp_description = self._string(body, "rpDescription")
        return policy

    def _h_replace_data(self, rq: _Req, bid: str) -> Response:
        b = self._find(rq.who, _Bitstream, bid, "WRITE")
        b.data = rq.body
        b.md5 = hashlib.md5(rq.body).hexdigest()
        self._touch(b.item)
        return _empty()

    def _h_delete_bitstream(self, rq: _Req, bid: str) -> Response:
        b = self._find(rq.who, _Bitstream, bid, "DELETE")
        self._remove_bitstream(b)
        return _empty()

    def _h_policies(self, rq: _Req, bid: str) -> Response:
        b = self._find(rq.who, _Bitstream, bid, "READ")
        return _json_response([self._policy_json(p, b) for p in b.policies])

    def _h_add_policy(self, rq: _Req, bid: str) -> Response:
        body = self._check_props(self._body_json(rq), "ResourcePolicy")
        b = self._find(rq.who, _Bitstream, bid, "WRITE")
        if body is None:
            raise _HttpError(500)
        policy = self._policy_from(body)
        b.policies.append(policy)
        self._touch(b.item)
        return _json_response(self._policy_json(policy, b))

    def _h_delete_policy(self, rq: _Req, bid: str, pid: str) -> Response:
        b = self._find(rq.who, _Bitstream, bid, "WRITE")
        match = next((p for p in b.policies if str(p.id) == pid), None)
        if match is None:
            raise _HttpError(404)
        b.policies.remove(match)
        self._touch(b.item)
        return _empty()

    # ---- backdoor -----------------------------------------------------------------------------

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
            user = _User(self._new_uuid(), key, password, admin, fullname or key)
            self._users[key] = user
            return user.uuid

    def add_community(self, name: str, parent: str | None = None, *, public: bool = True) -> str:
        with self._state:
            above = self._backdoor(_Community, parent) if parent is not None else None
            return self._create_community(name, above, public, {}).uuid

    def add_collection(
        self, name: str, community: str, *, public: bool = True, workflow: bool = False
    ) -> str:
        """A collection; with ``workflow`` new REST items go to review and are never listed."""
        with self._state:
            parent = self._backdoor(_Community, community)
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
            k = self._backdoor(_Collection, collection)
            values = [_Meta("dc", "title", None, title)]
            for key, texts in (metadata or {}).items():
                schema, element, qualifier = self._registry_field(key)
                values.extend(_Meta(schema, element, qualifier, t) for t in texts)
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
            owner = self._backdoor(_Item, item)
            top = max((b.sequence_id for bs in owner.bundles.values() for b in bs), default=0)
            fmt = _LICENSE if bundle == "LICENSE" else _format_from_registry(name)
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
                [self._backdoor(_Item, item)]
                if item is not None
                else [n for n in self._objects.values() if isinstance(n, _Item)]
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
                        fmt=_FORMAT_BY_MIME["image/jpeg"],
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
        if action not in _ACTIONS:
            raise ValueError(f"unknown action {action!r}")
        with self._state:
            node = self._backdoor(_Node, uuid)
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
            node = self._backdoor(_Node, uuid)
            node.policies = [
                p
                for p in node.policies
                if not (p.action == "READ" and p.group == self._anonymous_group)
            ]
            if public:
                node.policies.extend(self._public_policies(True))

    def set_workflow(self, collection: str, workflow: bool) -> None:
        with self._state:
            self._backdoor(_Collection, collection).workflow = workflow

    def set_discoverable(self, item: str, discoverable: bool) -> None:
        with self._state:
            self._backdoor(_Item, item).discoverable = discoverable

    def map_item(self, item: str, collection: str) -> None:
        """Map an archived item into a further collection (DSpace's item mapper)."""
        with self._state:
            i = self._backdoor(_Item, item)
            k = self._backdoor(_Collection, collection)
            if k not in i.collections:
                i.collections.append(k)
                bisect.insort(k.items, i.uuid)

    def unmap_item(self, item: str, collection: str) -> None:
        """Take an item out of a collection as ``CollectionServiceImpl.removeItem`` does (it
        is deleted if that was its last collection), behind the client's back."""
        with self._state:
            self._remove_item_from(
                self._backdoor(_Collection, collection), self._backdoor(_Item, item)
            )

    def register_field(self, key: str) -> None:
        """Add ``schema.element[.qualifier]`` to the metadata registry."""
        with self._state:
            self._fields.add(_field_key(key))

    def set_bitstream_data(self, uuid: str, data: bytes) -> None:
        """Change a file's content behind the client's back (size, MD5, item time follow)."""
        with self._state:
            b = self._backdoor(_Bitstream, uuid)
            b.data = bytes(data)
            b.md5 = hashlib.md5(b.data).hexdigest()
            self._touch(b.item)

    def rename_bitstream(self, uuid: str, name: str) -> None:
        with self._state:
            b = self._backdoor(_Bitstream, uuid)
            b.name = name
            self._touch(b.item)

    def delete_object(self, uuid: str) -> None:
        """Delete any object with everything below it (an item from all its collections)."""
        with self._state:
            node = self._backdoor(_Node, uuid)
            if isinstance(node, _Bitstream):
                self._remove_bitstream(node)
            elif isinstance(node, _Item):
                self._delete_item(node)
            elif isinstance(node, _Collection):
                self._delete_collection(node)
            elif isinstance(node, _Community):
                self._delete_community(node)

    def set_metadata(self, item: str, key: str, values: list[str]) -> None:
        """Replace every value of one field of an item."""
        with self._state:
            i = self._backdoor(_Item, item)
            target = self._registry_field(key)
            i.metadata = [m for m in i.metadata if m.field != target]
            i.metadata.extend(_Meta(*target, v) for v in values)
            self._touch(i)

    def touch(self, item: str, when: datetime | None = None) -> None:
        """Set an item's ``lastModified`` (now by default)."""
        with self._state:
            i = self._backdoor(_Item, item)
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
            return self._backdoor(_Bitstream, uuid).data

    def bitstreams_of(self, item: str) -> list[dict[str, Any]]:
        with self._state:
            i = self._backdoor(_Item, item)
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
            k = self._backdoor(_Collection, collection)
            return [{"uuid": u, "title": self._items[u].name} for u in k.items]

    def children_of(self, community: str) -> dict[str, list[dict[str, Any]]]:
        with self._state:
            c = self._backdoor(_Community, community)
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
            if isinstance(node, _Community):
                snap.update(
                    name=node.name,
                    handle=node.handle,
                    parent=node.parent.uuid if node.parent else None,
                )
            elif isinstance(node, _Collection):
                snap.update(
                    name=node.name,
                    handle=node.handle,
                    parent=node.community.uuid,
                    workflow=node.workflow,
                    number_items=len(node.items),
                )
            elif isinstance(node, _Item):
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
            elif isinstance(node, _Bitstream):
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

    def _backdoor(self, cls: type[_N], uuid: str) -> _N:
        node = self._objects.get(uuid)
        if not isinstance(node, cls):
            raise KeyError(f"no {cls.kind} {uuid!r}")
        return node

    def _registry_field(self, key: str) -> tuple[str, str, str | None]:
        if key.count(".") not in (1, 2):
            raise ValueError(f"malformed metadata key {key!r}")
        parsed = _field_key(key)
        if parsed not in self._fields:
            raise ValueError(f"{key!r} is not in the metadata registry (see register_field)")
        return parsed

    def _server_time(self, when: datetime) -> datetime:
        if when.tzinfo is None:
            return when
        return when.astimezone(self.server_tz).replace(tzinfo=None)

    @staticmethod
    def _metadata_dict(item: _Item) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for m in item.metadata:
            out.setdefault(m.key, []).append(m.value)
        return out
