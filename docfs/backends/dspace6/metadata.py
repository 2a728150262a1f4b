"""DSpace 6 item metadata changed as a whole (a metadata file, issue 21; an xattr).

``PUT /items/{id}/metadata`` clears every field it names and adds the values given, in one
context committed at the end (``ItemsResource.updateItemMetadata``, dspace-6_x): all the
fields set by one edit go in that one request, so a field the registry lacks (a 500 from
``addMetadata``'s "bad_dublin_core") leaves the item as it was. No call removes one field:
a removal is ``DELETE`` of all metadata and a ``PUT`` of everything else that was there (so it
holds only fields the server has already accepted). The last step is a ``PUT``, never a
``POST``: ``addItemMetadata`` calls no ``itemService.update``, so values it adds all keep
place 1 (their order — the order of the authors — is then the database's), the item's
``lastModified`` stays and Discovery is not told; docs/protocols/dspace6.md.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

from docfs import errors
from docfs.backends._http import HttpClient

log = logging.getLogger("docfs.backends.dspace6")

SEND_JSON = {"Accept": "application/json", "Content-Type": "application/json"}
#: an item's keys that are not metadata fields (read-only in a metadata file)
ITEM_OWN_KEYS = frozenset({"handle", "uuid"})


#: what Java's ``String.trim`` strips: every character up to U+0020
JAVA_WHITESPACE = "".join(chr(c) for c in range(0x21))


def check_name(name: str) -> None:
    """Refuse a name DSpace 6 would store differently. Every name (item ``dc.title``,
    bitstream, collection, community) is a metadata value stored by ``addMetadata``
    (``DSpaceObjectServiceImpl``, dspace-6_x), which trims it the Java way and turns ISO
    control characters other than tab, LF and CR into spaces: a file created as ``"notes "``
    would come back as ``"notes"``, and lose its place under the user."""
    if name != name.strip(JAVA_WHITESPACE):
        raise errors.InvalidArgument(
            f"DSpace 6 trims names: {name!r} cannot be stored with its leading or trailing "
            "spaces or control characters"
        )
    if any((ord(ch) < 0x20 or 0x7F <= ord(ch) <= 0x9F) and ch not in "\t\n\r" for ch in name):
        raise errors.InvalidArgument(
            f"DSpace 6 turns control characters in names into spaces: {name!r} is refused"
        )


def dc_key(key: str) -> bool:
    """A key the metadata calls take: two or three dot-separated parts (``mySplit``)."""
    return key.count(".") in (1, 2) and all(key.split("."))


async def update_item_metadata(
    http: HttpClient, item: str, meta: Mapping[str, str], changes: Mapping[str, list[str] | None]
) -> None:
    """Apply ``changes`` (field → values, None or empty: remove) to item ``item``, whose
    metadata was ``meta``. Every key is checked before anything is sent."""
    for key in changes:
        if key in ITEM_OWN_KEYS:
            raise errors.NotSupported(f"DSpace 6: {key} is read-only")
        if not dc_key(key):
            # the server would skip such a key without a word
            raise errors.InvalidArgument(f"not a DSpace metadata key: {key!r}")
    path = f"/items/{item}/metadata"
    sets = {k: v for k, v in changes.items() if v}
    if sets:
        body = [
            {"key": key, "value": value, "language": None}
            for key, values in sorted(sets.items())
            for value in values
        ]
        await http.request(
            "PUT",
            path,
            endpoint="item.metadata",
            headers=SEND_JSON,
            json=body,
            # addMetadata's SQLException "bad_dublin_core … does not exist" answers 500
            status_map={500: errors.InvalidArgument},
        )
    removed = {k for k, v in changes.items() if not v and k in meta}
    if removed:
        await _remove_fields(http, item, removed)


async def _remove_fields(http: HttpClient, item: str, removed: set[str]) -> None:
    """Remove every value of the fields ``removed``: ``DELETE`` then ``PUT`` of the rest."""
    path = f"/items/{item}/metadata"
    response = await http.request(
        "GET", path, endpoint="item.metadata", headers={"Accept": "application/json"}
    )
    try:
        current: Any = response.json()
    except ValueError as exc:
        raise errors.ProtocolError(f"GET {path}: the answer is not JSON") from exc
    if not isinstance(current, list):
        raise errors.ProtocolError(f"GET {path}: expected a list of metadata entries")
    entries = [m for m in current if isinstance(m, dict) and isinstance(m.get("key"), str)]
    if not any(m["key"] in removed for m in entries):
        return  # already gone on the server
    # everything else goes back, the four fields DELETE keeps too: it keeps only their first
    # value (ItemsResource.deleteItemMetadata), and the PUT clears a key before adding, so a
    # second dc.identifier.uri (a DOI) survives and nothing is doubled
    keep = [
        {"key": m["key"], "value": m.get("value"), "language": m.get("language")}
        for m in entries
        if m["key"] not in removed
    ]
    await http.request("DELETE", path, endpoint="item.metadata")
    if not keep:
        return
    try:
        # a PUT, unlike a POST, numbers the places (the order read is the order sent), updates
        # lastModified and fires the event Discovery reindexes on; and it may be repeated
        await http.request("PUT", path, endpoint="item.metadata", headers=SEND_JSON, json=keep)
    except errors.DocfsError:
        # the one step that is not atomic: say exactly what to put back
        log.error(
            "DSpace 6: item %s lost its metadata while %s was removed; to restore, PUT %s: %s",
            item,
            ", ".join(sorted(removed)),
            path,
            json.dumps(keep, ensure_ascii=False),
        )
        raise
