"""Simple Archive Format packages written into a DSpace 6 item (docs/protocols/dspace6.md).

The shared part is ``docfs.backends._saf_deposit``; here are the two DSpace 6 requests it
needs. Metadata: one ``PUT /items/{id}/metadata`` with every value of every key the file
names — ``ItemsResource.updateItemMetadata`` replaces the values of the keys it is given and
leaves the others alone, so a package file is applied whole or not at all. Descriptions:
``PUT /bitstreams/{id}`` (``BitstreamResource.updateBitstream`` overwrites name and
description together, so the name is sent back), or the ``description`` query parameter of
the upload (``ItemsResource.addItemBitstream``) for a file written after ``contents``. The
DSpace 6 REST API has no way to choose a bundle (uploads go to ORIGINAL) or a primary
bitstream: those ``contents`` fields are logged as not applied.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from docfs import errors, saf
from docfs.backends.base import Entry

if TYPE_CHECKING:
    from docfs.backends.dspace6 import DSpace6Backend

SEND_JSON = {"Content-Type": "application/json", "Accept": "application/json"}


async def set_all(backend: DSpace6Backend, item: Entry, values: list[saf.Value]) -> Entry:
    """Every key in ``values`` gets exactly those values (in order), in one request."""
    uuid = item.object_id or item.id.partition("@")[0]
    body = [{"key": v.key, "value": v.value, "language": v.language} for v in values]
    await backend.http.request(
        "PUT",
        f"/items/{uuid}/metadata",
        endpoint="item.metadata",
        headers=SEND_JSON,
        json=body,
        # addMetadata's SQLException "bad_dublin_core … does not exist" answers 500, and the
        # whole request is rolled back (ItemsResource.updateItemMetadata)
        status_map={500: errors.InvalidArgument},
    )
    return await backend.stat(item)


async def describe(backend: DSpace6Backend, entry: Entry, text: str) -> Entry:
    """Set a bitstream's description (its name sent back unchanged)."""
    await backend.http.request(
        "PUT",
        f"/bitstreams/{entry.object_id or entry.id}",
        endpoint="bitstream.update",
        headers=SEND_JSON,
        json={"name": entry.name, "description": text},
    )
    return replace(entry, extra={**entry.extra, "description": text})
