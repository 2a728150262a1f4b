"""The DSpace 7+ REST API's shapes that every part of the backend reads: HAL objects
with their metadata, the API sections, the page size, the ORIGINAL bundle."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import httpx

from docfs.backends.base import Entry, Op

JSON = dict[str, Any]

#: page size for every listing: Discovery caps at 100 and maintainers advise no more elsewhere
PAGE_SIZE = 100
ORIGINAL = "ORIGINAL"
#: keys of Entry.meta that are not metadata fields and cannot be set
SYNTHETIC_META = frozenset(
    {"uuid", "handle", "checksum.md5", "bundle", "entityType", "stored.md5", "stored.size"}
)
METADATA_FIELD = re.compile(r"^[A-Za-z0-9]+\.[A-Za-z0-9_]+(\.[A-Za-z0-9_]+)?$")
#: how long a created item is shown although Discovery does not list it yet
PENDING_GRACE = 300.0
#: a non-administrator's new item is deposited after this long without changes in it
DEPOSIT_AFTER = 30.0

DIR_OPS = {
    "root": frozenset({Op.MKDIR}),
    "community": frozenset({Op.MKDIR, Op.REMOVE, Op.RENAME, Op.SET_META}),
    "collection": frozenset({Op.MKDIR, Op.REMOVE, Op.RENAME, Op.SET_META}),
    "item": frozenset({Op.CREATE_FILE, Op.REMOVE, Op.RENAME, Op.SET_META}),
    "bundle": frozenset({Op.CREATE_FILE, Op.REMOVE}),
    "bitstream": frozenset({Op.REPLACE, Op.REMOVE, Op.RENAME, Op.SET_META}),
}
API_SECTION = {
    "community": "core/communities",
    "collection": "core/collections",
    "item": "core/items",
    "bundle": "core/bundles",
    "bitstream": "core/bitstreams",
}


def api_prefix(base_url: str) -> str:
    """The path to append to the user's URL to reach ``/server/api`` (see module docstring)."""
    path = httpx.URL(base_url).path.rstrip("/")
    if path.endswith("/api"):
        return ""
    if path.endswith("/server"):
        return "/api"
    return "/server/api"


def parse_time(value: Any) -> float | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value).timestamp()
    except ValueError:
        return None


def flatten_meta(obj: Mapping[str, Any]) -> dict[str, str]:
    """DSpace metadata as xattr-friendly strings: one line per value."""
    meta: dict[str, str] = {}
    for key, values in (obj.get("metadata") or {}).items():
        if isinstance(values, list):
            texts = [str(v.get("value")) for v in values if isinstance(v, dict) and v.get("value")]
            if texts:
                meta[key] = "\n".join(texts)
    meta["uuid"] = str(obj.get("uuid"))
    if obj.get("handle"):
        meta["handle"] = str(obj["handle"])
    if obj.get("entityType"):
        meta["entityType"] = str(obj["entityType"])
    checksum = obj.get("checkSum") or {}
    if checksum.get("value"):
        meta["checksum.md5"] = str(checksum["value"])
    if obj.get("bundleName"):
        meta["bundle"] = str(obj["bundleName"])
    return meta


def primary_marked(entry: Entry) -> Entry:
    """``entry``, a bitstream, marked as its bundle's primary (``extra["primary"]``)."""
    return dataclasses.replace(entry, extra={**entry.extra, "primary": "1"})
