"""Finding DSpace 7+ objects by identifier, and their pages in the web UI (issue 20).

``resolve`` asks the server's own lookup endpoints, one request each (docs/protocols/dspace7.md,
"Finding objects by identifier"):

- a uuid: ``GET dso/find?uuid=`` (``UUIDLookupRestController``): 302 to the object, 404 if none;
- a handle: ``GET pid/find?id=hdl:prefix/suffix`` (``IdentifierRestController``): 302 to the
  object, 404 if no identifier provider knows it, 501 if it is not resolvable;
- a DOI: the same endpoint with ``id=doi:10.…``, answered only by servers whose identifier
  service has the DOI provider configured (it is off in a stock install: then 404).

The redirect is followed (to the object's canonical ``core/...`` URL), so the object comes back
with the lookup: one exchange, two HTTP round trips. A bitstream found so needs one more
request (``core/bitstreams/{id}?embed=bundle/item``) for the item it belongs to.

Web pages are those of the Angular UI whose URL the root document gives (``dspaceUI``):
``/communities/{uuid}``, ``/collections/{uuid}``, ``/items/{uuid}``,
``/bitstreams/{uuid}/download``.
"""

from __future__ import annotations

import re

from docfs import errors
from docfs.backends.base import Entry, IdKind, Kind
from docfs.backends.dspace7.core import DSpace7Core
from docfs.backends.dspace7.hal import JSON

#: a uuid as DSpace writes it (``java.util.UUID.toString``)
UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
#: the UI's page of each object type
UI_SECTION = {"community": "communities", "collection": "collections", "item": "items"}


class Finding(DSpace7Core):
    """``resolve`` and ``web_url``."""

    async def resolve(self, kind: str, key: str) -> Entry | None:
        if kind == IdKind.ID:
            if not UUID.match(key):
                return None  # not a DSpace id: no request (the server would answer 400)
            path, params, endpoint = "dso/find", {"uuid": key.lower()}, "dso/find"
        elif kind == IdKind.HANDLE:
            path, params, endpoint = "pid/find", {"id": f"hdl:{key}"}, "pid/find"
        elif kind == IdKind.DOI:
            path, params, endpoint = "pid/find", {"id": f"doi:{key}"}, "pid/find"
        else:
            return None
        try:
            obj = await self._json("GET", path, endpoint=endpoint, params=params)
        except errors.NotFound:
            return None
        except errors.DocfsError as exc:
            if exc.status == 501:  # IdentifierNotResolvableException: nothing to find
                return None
            raise
        return await self._found(obj)

    async def _found(self, obj: JSON) -> Entry | None:
        kind = str(obj.get("type") or "")
        if kind in ("community", "collection", "item"):
            # parent "": the id the tree uses for an item names the collection it is listed
            # in; the vfs matches this one to the tree's by ``object_id``
            return self._dir(obj, kind, "")
        if kind == "bitstream":
            stub = Entry(
                id=f"bitstream:{obj['uuid']}",
                name=str(obj.get("name") or ""),
                kind=Kind.FILE,
                size=None,
                mtime=None,
                version="",
                extra={"type": "bitstream", "uuid": str(obj["uuid"])},
            )
            return await self.stat(stub)
        return None  # a site, an EPerson…: nothing the tree shows

    def web_url(self, entry: Entry) -> str | None:
        if not self.ui_url:
            return None
        kind = entry.extra.get("type", "")
        uuid = entry.extra.get("uuid", "")
        if kind == "root":
            return self.ui_url
        if kind == "bitstream" and uuid:
            return f"{self.ui_url}/bitstreams/{uuid}/download"
        if kind == "bundle":
            kind, uuid = "item", entry.extra.get("item", "")
        section = UI_SECTION.get(kind)
        return f"{self.ui_url}/{section}/{uuid}" if section and uuid else None
