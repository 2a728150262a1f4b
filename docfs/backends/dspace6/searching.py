"""Search in DSpace 6 (issue 20): ``POST /rest/items/find-by-metadata-field``.

The DSpace 6 REST API (dspace-rest, ``ItemsResource.findItemsByMetadataField``) finds the
archived items whose metadata field ``key`` (``schema.element[.qualifier]``) holds exactly
``value`` (``ItemService.findByMetadataField``: equality, not words), all in one unpaged
answer, over the whole repository. A query is therefore ``FIELD:value``
(``dc.subject:Physics``); a bare word has no server-side search here and is refused with a
log line. ``/filtered-items`` (the reports module, off by default) is not used. DSpace 6
keeps no versions a REST client can read.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from docfs import errors
from docfs.backends.base import Entry

if TYPE_CHECKING:
    from docfs.backends.dspace6 import DSpace6Backend

_FIELD = re.compile(r"([a-zA-Z]\w*\.\w+(?:\.\w+)?):(.+)", re.DOTALL)


async def search(
    backend: DSpace6Backend, scope: Entry | None, query: str, limit: int
) -> AsyncIterator[Entry]:
    if scope is not None and scope.extra.get("type") != "root":
        raise errors.NotSupported("DSpace 6: find-by-metadata-field searches the whole repository")
    field = _FIELD.fullmatch(query.strip())
    if field is None:
        raise errors.InvalidArgument(
            "DSpace 6 searches one metadata field for an exact value: write FIELD:value, "
            "e.g. dc.subject:Physics"
        )
    response = await backend.http.request(
        "POST",
        "/items/find-by-metadata-field",
        endpoint="items.find-by-metadata-field",
        params={"expand": "metadata"},
        headers={"Accept": "application/json"},
        json={"key": field.group(1), "value": field.group(2)},
    )
    found = response.json()
    if not isinstance(found, list):
        raise errors.ProtocolError("DSpace 6: find-by-metadata-field did not answer a list")
    for sent, obj in enumerate(found):
        if sent >= limit:
            return
        yield backend._item(obj, None)
