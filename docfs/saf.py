"""Simple Archive Format (SAF): the package layout of a repository's batch importer.

One item is one directory: ``dublin_core.xml`` (``<dublin_core [schema="dc"]>`` with
``<dcvalue element= qualifier= language=>VALUE</dcvalue>`` children), optional
``metadata_<schema>.xml`` files of the same shape with ``schema=`` set, a ``contents`` file
naming the content files one per line, each optionally followed by tab-separated
``bundle:NAME``, ``description:TEXT``, ``primary:true`` and ``permissions:…`` fields, and the
files themselves. A batch is a directory of such item directories. The reader follows the
importer's own (``ItemImportServiceImpl``: ``loadDublinCore``/``addDCValue``/
``processContentsFile``; see docs/protocols/dspace6.md, "Simple Archive Format"): qualifier
``none`` or empty means no qualifier, values are trimmed and empty ones skipped, blank
``contents`` lines are skipped, ``-r`` (register an asset-store file) lines are not for us.

This module only reads and writes the format; what a package becomes is the backend's part.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

DUBLIN_CORE = "dublin_core.xml"
CONTENTS = "contents"
_SCHEMA_FILE = re.compile(r"^metadata_([A-Za-z0-9_-]+)\.xml$")
#: a metadata key as the xattrs show it: schema.element[.qualifier]
_KEY = re.compile(r"^([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]+)(?:\.([A-Za-z0-9_-]+))?$")
#: the metadata schema the importer assumes when ``<dublin_core>`` has no ``schema=``
DEFAULT_SCHEMA = "dc"
#: the importer's other non-content files (``processHandleFile``, ``processCollectionFile``,
#: ``processRelationshipFile``): a handle to reuse, more target collections, relations. They
#: are never content; docfs does not apply them (a handle cannot be chosen over REST)
OTHER_FILES = ("handle", "collections", "relationships")
#: values the repository sets itself when it installs an item (``InstallItemServiceImpl.
#: populateMetadata``: accession and availability dates, a provenance line; the handle
#: provider adds ``dc.identifier.uri``): an export leaves them out, so a deposit of it does
#: not give the new item the old item's handle URI, dates and history
SERVER_SET_KEYS = frozenset(
    {"dc.date.accessioned", "dc.date.available", "dc.identifier.uri", "dc.description.provenance"}
)


class PackageError(ValueError):
    """A package file that is not in the format (bad XML, wrong root element)."""


def is_package_file(name: str) -> bool:
    """``name`` describes the item (metadata, list of files) rather than being content."""
    return name in (DUBLIN_CORE, CONTENTS, *OTHER_FILES) or _SCHEMA_FILE.match(name) is not None


def is_metadata_file(name: str) -> bool:
    return name == DUBLIN_CORE or _SCHEMA_FILE.match(name) is not None


@dataclass(frozen=True)
class Value:
    key: str
    value: str
    language: str | None = None


def parse_metadata(data: bytes, name: str = DUBLIN_CORE) -> list[Value]:
    """The values of a ``dublin_core.xml`` or ``metadata_<schema>.xml``, in file order."""
    try:
        # expat (2.4+) refuses entity-expansion bombs; external entities are never fetched
        root = ET.fromstring(data)
    except ET.ParseError as exc:
        raise PackageError(f"{name}: not well-formed XML ({exc})") from None
    if root.tag != "dublin_core":
        raise PackageError(f"{name}: the root element is <{root.tag}>, not <dublin_core>")
    schema = (root.get("schema") or DEFAULT_SCHEMA).strip()
    out: list[Value] = []
    for node in root.findall("dcvalue"):
        element = (node.get("element") or "").strip()
        if not element:
            raise PackageError(f"{name}: a <dcvalue> without element=")
        qualifier = (node.get("qualifier") or "").strip()
        if qualifier in ("", "none"):
            qualifier = ""
        value = "".join(node.itertext()).strip()
        if not value:
            continue  # the importer adds no empty values
        language = (node.get("language") or "").strip() or None
        key = f"{schema}.{element}" + (f".{qualifier}" if qualifier else "")
        out.append(Value(key, value, language))
    return out


def grouped(values: Iterable[Value]) -> dict[str, list[str]]:
    """key → its values in order (the shape the metadata xattrs have, one value a line)."""
    out: dict[str, list[str]] = {}
    for v in values:
        out.setdefault(v.key, []).append(v.value)
    return out


def metadata_files(meta: Mapping[str, str]) -> dict[str, bytes]:
    """File name → bytes of the metadata files for ``meta`` (key → values, one a line);
    keys that are not ``schema.element[.qualifier]`` (ids, handles, checksums) are left out."""
    by_schema: dict[str, list[tuple[str, str, str]]] = {}
    for key in sorted(meta):
        match = _KEY.match(key)
        if match is None:
            continue
        schema, element, qualifier = match.group(1), match.group(2), match.group(3) or "none"
        for value in meta[key].split("\n"):
            by_schema.setdefault(schema, []).append((element, qualifier, value))
    files: dict[str, bytes] = {}
    for schema, rows in by_schema.items():
        root = ET.Element("dublin_core")
        if schema != DEFAULT_SCHEMA:
            root.set("schema", schema)
        for element, qualifier, value in rows:
            node = ET.SubElement(root, "dcvalue", element=element, qualifier=qualifier)
            node.text = value
        ET.indent(root)
        body = ET.tostring(root, encoding="utf-8", xml_declaration=True) + b"\n"
        files[DUBLIN_CORE if schema == DEFAULT_SCHEMA else f"metadata_{schema}.xml"] = body
    return files


def is_metadata_key(key: str) -> bool:
    return _KEY.match(key) is not None


@dataclass(frozen=True)
class Line:
    """One line of ``contents``: a file and what the importer does with it."""

    name: str
    bundle: str | None = None
    description: str | None = None
    primary: bool = False
    permissions: str | None = None

    def text(self) -> str:
        fields = [self.name]
        if self.bundle:
            fields.append(f"bundle:{self.bundle}")
        if self.description:
            fields.append(f"description:{self.description}")
        if self.primary:
            fields.append("primary:true")
        if self.permissions:
            fields.append(f"permissions:{self.permissions}")
        return "\t".join(fields)


def parse_contents(text: str) -> list[Line]:
    """The lines of a ``contents`` file (registration lines, ``-r …``, are refused)."""
    out: list[Line] = []
    for raw in text.splitlines():
        if not raw.strip():
            continue
        if raw.strip().startswith("-r "):
            raise PackageError("contents: '-r' lines register files already in the asset store")
        name, *rest = raw.split("\t")
        fields: dict[str, str] = {}
        for field in rest:
            key, sep, value = field.partition(":")
            if sep:
                fields[key.strip()] = value
        out.append(
            Line(
                name=name.strip(),
                bundle=fields.get("bundle") or None,
                description=fields.get("description") or None,
                # the importer: primary only when the field says "true"
                primary=fields.get("primary", "").strip().lower() == "true",
                permissions=fields.get("permissions") or None,
            )
        )
    return out


def contents_text(lines: Iterable[Line]) -> str:
    return "".join(f"{line.text()}\n" for line in lines)
