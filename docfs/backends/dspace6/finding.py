"""Finding DSpace 6 objects by identifier, and their pages in the web UI (issue 20).

A handle is one request: ``GET /handle/{prefix}/{suffix}`` (``HandleResource.getObject``),
which answers the community, collection or item. Every failure of it — no such handle, or no
READ on the object — is a 500, because ``processFinally`` replaces the 404/401 it threw
(docs/protocols/dspace6.md, "Errors" and "Finding objects by identifier"): a 500 here is "not
found", and it is not retried.

A uuid has no lookup of its own in the DSpace 6 REST API (no endpoint takes a uuid of unknown
type): it is tried as an item, then a bitstream, a collection and a community, each a ``GET``
that answers 404 when the uuid is not of that type — one request for an item, at most four.

Web pages are those of the JSPUI/XMLUI at the server's root (the REST URL without ``/rest``):
``/handle/{handle}`` for communities, collections and items, and
``/bitstream/handle/{item handle}/{name}?sequence={n}`` for a file.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING
from urllib.parse import quote

from docfs import errors
from docfs.backends.base import Entry, IdKind

if TYPE_CHECKING:
    from docfs.backends.dspace6 import DSpace6Backend

UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
#: the types a uuid is tried as, most likely first, and the path of each
UUID_TYPES = (("item", "items"), ("bitstream", "bitstreams"), ("collection", "collections"))
UUID_TYPES_LAST = ("community", "communities")
EXPAND = {"item": "metadata", "bitstream": "parent"}


async def resolve(backend: DSpace6Backend, kind: str, key: str) -> Entry | None:
    if kind == IdKind.HANDLE:
        return await _by_handle(backend, key)
    if kind == IdKind.ID and UUID.match(key):
        for what, section in (*UUID_TYPES, UUID_TYPES_LAST):
            try:
                obj = await backend._json_object(
                    f"/{section}/{key.lower()}", f"{section}.find", _params(what)
                )
            except errors.NotFound:
                continue
            return _entry(backend, obj, what)
    return None


def _params(what: str) -> dict[str, str]:
    return {"expand": EXPAND[what]} if what in EXPAND else {}


async def _by_handle(backend: DSpace6Backend, handle: str) -> Entry | None:
    prefix, _, suffix = handle.partition("/")
    if not prefix or not suffix or "/" in suffix:
        return None
    try:
        response = await backend.http.request(
            "GET",
            f"/handle/{quote(prefix, safe='')}/{quote(suffix, safe='')}",
            endpoint="handle",
            params={"expand": "metadata"},
            headers={"Accept": "application/json"},
            # every failure is a 500 (see the module docstring): not worth a retry
            idempotent=False,
            status_map={500: errors.NotFound},
        )
    except errors.NotFound:
        return None
    try:
        obj = response.json()
    except ValueError:
        raise errors.ProtocolError(f"GET /handle/{handle}: answer is not JSON") from None
    if not isinstance(obj, dict):
        raise errors.ProtocolError(f"GET /handle/{handle}: unexpected JSON")
    return _entry(backend, obj, str(obj.get("type") or ""))


def _entry(backend: DSpace6Backend, obj: dict[str, object], what: str) -> Entry | None:
    if what in ("community", "collection"):
        return backend._container(obj, what)
    if what == "item":
        # no collection: the vfs matches it to the tree's per-collection id by object_id
        return backend._item(obj, None)
    if what == "bitstream":
        parent = obj.get("parentObject")
        parent = parent if isinstance(parent, dict) else {}
        return backend._bitstream(
            obj, str(parent.get("uuid") or ""), None, False, parent.get("handle")
        )
    return None  # the site: nothing the tree shows


def web_url(backend: DSpace6Backend, entry: Entry) -> str | None:
    site = str(backend.http.base_url).rstrip("/")
    site = site[: -len("/rest")] if site.endswith("/rest") else site
    kind = entry.extra.get("type", "")
    if kind == "site":
        return site
    if kind == "bitstream":
        handle = entry.extra.get("item_handle", "")
        if not handle:
            return None
        sequence = entry.meta.get("sequenceId", "")
        query = f"?sequence={sequence}" if sequence.lstrip("-").isdigit() else ""
        return f"{site}/bitstream/handle/{handle}/{quote(entry.name)}{query}"
    handle = entry.meta.get("handle", "")
    return f"{site}/handle/{handle}" if handle else None
