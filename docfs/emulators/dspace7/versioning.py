"""DSpace 7+ item versions (``/api/versioning``), read side, and a backdoor that makes them.

What the server does (``dspace-server-webapp``, ``app/rest/repository/``):

* ``GET /core/items/{uuid}/version`` (``ItemVersionLinkRepository.getItemVersion``): the
  ``version`` of an item, or **204** when it has none (``ItemRestRepositoryIT``);
* ``GET /versioning/versions/{id}`` (``VersionRestRepository``): ``{id, version, created,
  summary, submitterName, type: "version"}`` with links ``versionhistory`` and ``item``
  (``VersionConverter``, ``VersionRest``); ``…/{id}/versionhistory`` and ``…/{id}/item``
  follow them;
* ``GET /versioning/versionhistories/{id}/versions`` (``VersionsLinkRepository.getVersions``):
  a page (default 20) of the history's versions, newest first (``VersionDAOImpl``:
  ``versionNumber`` descending); ``embed=item`` embeds each version's item;
* reading needs READ on the item (``versioning.item.history.view.admin`` is false by
  default, ``versioning.cfg``); Discovery's default configuration shows only the latest
  version of an item (``discovery.xml``: ``latestVersion:true``).

The emulator creates versions only through the backdoor ``new_item_version`` (a new archived
item in the same collection with the old one's metadata and ORIGINAL files); the REST
``POST /versioning/versions`` is not emulated.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from starlette.responses import Response

from docfs.emulators.dspace7.context import Ctx
from docfs.emulators.dspace7.handlers import Handlers
from docfs.emulators.dspace7.model import Item
from docfs.emulators.dspace7.wire import JSON, Fail, iso

#: ``VersionsLinkRepository``: 20 per page unless asked
_PAGE_DEFAULT = 20


@dataclass
class ItemVersion:
    id: int
    number: int
    item: str
    history: int
    created: float
    summary: str
    submitter: str


class VersioningRoutes(Handlers):
    """``/core/items/{uuid}/version`` and ``/versioning/…``."""

    #: version id → version; history id → its version ids; item uuid → its version id
    _item_versions: dict[int, ItemVersion]
    _histories: dict[int, list[int]]
    _version_of: dict[str, int]

    def _versioning_state(self) -> None:
        self._item_versions, self._histories, self._version_of = {}, {}, {}

    def superseded(self, uuid: str) -> bool:
        """An earlier version of an item: Discovery's default configuration hides it."""
        version = self._item_versions.get(self._version_of.get(uuid, -1))
        if version is None:
            return False
        return version.number < max(
            self._item_versions[v].number for v in self._histories[version.history]
        )

    # ---- backdoor ----------------------------------------------------------------------------

    def new_item_version(self, item: str, summary: str = "", *, submitter: str = "") -> str:
        """A new version of ``item`` (the first call makes the history, ``item`` its version
        1): a new archived item with the same metadata and ORIGINAL files; returns its uuid."""
        backdoor: Any = self  # the Backdoor mixin of the same emulator
        with self._state:
            old = self._objects[item]
            if not isinstance(old, Item) or old.owning is None:
                raise ValueError(f"{item} is not an archived item")
            if item not in self._version_of:
                history = len(self._histories) + 1
                self._histories[history] = []
                self._add_version(item, history, 1, "", submitter)
            metadata = {key: [dict(v) for v in values] for key, values in old.metadata.items()}
            files = [(name, backdoor.content(uuid)) for uuid, name in backdoor.bitstreams(item)]
        new = backdoor.add_item(old.owning, old.name or "", metadata=metadata)
        for name, data in files:
            backdoor.add_bitstream(new, name, data)
        with self._state:
            history = self._item_versions[self._version_of[item]].history
            number = 1 + max(self._item_versions[v].number for v in self._histories[history])
            self._add_version(new, history, number, summary, submitter)
        return str(new)

    def _add_version(
        self, item: str, history: int, number: int, summary: str, submitter: str
    ) -> None:
        version = ItemVersion(
            len(self._item_versions) + 1, number, item, history, time.time(), summary, submitter
        )
        self._item_versions[version.id] = version
        self._histories[history].append(version.id)
        self._version_of[item] = version.id

    # ---- routes ------------------------------------------------------------------------------

    def _version_json(self, ctx: Ctx, version: ItemVersion) -> JSON:
        url = f"{ctx.api}/versioning/versions/{version.id}"
        body: JSON = {
            "id": version.id,
            "version": version.number,
            "created": iso(version.created),
            "summary": version.summary,
            "submitterName": version.submitter or None,
            "type": "version",
            "_links": {
                "self": {"href": url},
                "versionhistory": {"href": f"{url}/versionhistory"},
                "item": {"href": f"{url}/item"},
            },
        }
        if "item" in ctx.embeds:
            item = self._objects.get(version.item)
            if item is not None and self._can_read(ctx.caller, item):
                body["_embedded"] = {"item": self._render(ctx, item)}
        return body

    def _readable_version(self, ctx: Ctx, vid: str) -> ItemVersion:
        version = self._item_versions.get(int(vid))
        item = self._objects.get(version.item) if version is not None else None
        if version is None or item is None:
            raise Fail(404)
        self._require_read(ctx, item)
        return version

    def _item_version(self, ctx: Ctx, uuid: str) -> Response:
        item = self._lookup(ctx, uuid, Item)
        vid = self._version_of.get(item.uuid)
        if vid is None:
            return self._empty(204)
        return self._json(self._version_json(ctx, self._item_versions[vid]))

    def _get_version(self, ctx: Ctx, vid: str) -> Response:
        return self._json(self._version_json(ctx, self._readable_version(ctx, vid)))

    def _version_item(self, ctx: Ctx, vid: str) -> Response:
        version = self._readable_version(ctx, vid)
        return self._json(self._render(ctx, self._objects[version.item]))

    def _version_history(self, ctx: Ctx, vid: str) -> Response:
        version = self._readable_version(ctx, vid)
        return self._json(self._history_json(ctx, version.history))

    def _history_json(self, ctx: Ctx, history: int) -> JSON:
        url = f"{ctx.api}/versioning/versionhistories/{history}"
        return {
            "id": history,
            "draftVersion": False,
            "type": "versionhistory",
            "_links": {"self": {"href": url}, "versions": {"href": f"{url}/versions"}},
        }

    def _history_versions(self, ctx: Ctx, hid: str) -> Response:
        ids = self._histories.get(int(hid))
        if ids is None:
            raise Fail(404)
        versions = sorted(
            (self._item_versions[v] for v in ids), key=lambda v: v.number, reverse=True
        )
        page, size = self._page_params(ctx, _PAGE_DEFAULT, 100)
        chunk = versions[page * size : (page + 1) * size]
        total = len(versions)
        pages = -(-total // size) if total else 0
        url = f"{ctx.api}/versioning/versionhistories/{hid}/versions"
        return self._json(
            {
                "_embedded": {"versions": [self._version_json(ctx, v) for v in chunk]},
                "_links": self._page_links(url, page, size, pages, {}),
                "page": {"size": size, "totalElements": total, "totalPages": pages, "number": page},
            }
        )
