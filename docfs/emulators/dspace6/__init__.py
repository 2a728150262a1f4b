"""Emulator of the DSpace 6.x legacy REST API (``/rest``), after docs/protocols/dspace6.md.

Everything lives under the ``/rest`` prefix, so a client's base URL is ``<server url>/rest``. The
state (communities, collections, items, bitstreams, policies, sessions) is held in memory behind
one lock, because uvicorn serves requests in its own thread while tests call the backdoor from
theirs. Bitstream bodies are kept as ``bytes`` with their MD5 computed once at store time, and the
items of a collection are kept sorted by UUID, so 20 MiB bodies and collections of thousands of
items stay cheap.

What the emulator reproduces (docs/protocols/dspace6.md, "The /rest API as the emulator reproduces
it", names the server files): cookie login through ``/login`` (form body or query string only,
``JSESSIONID`` with ``Path=/rest/; HttpOnly``), ``/status``, anonymous READ of public objects, 401
for every failed permission (never 403), 500 for malformed ids, legacy numeric ids, the JSON shapes
of ``rest/common/*.java`` with relative links, string ``archived``/``withdrawn`` and zone-less
``lastModified``, ``expand`` as the server parses it (split on commas, case-sensitive, not trimmed,
one level deep), paging cut *before* READ filtering and no totals, the ``/items/{id}/bitstreams``
slice bug, the 500s of ``DELETE /collections/{cid}/items/{iid}``, ``GET /handle/...`` and anonymous
``DELETE /items/{id}/bitstreams/{bid}``, 415 for object bodies without a JSON/XML ``Content-Type``,
400 ``text/plain`` for unknown or read-only properties, uploads into ORIGINAL with formats guessed
like ``URLConnection.guessContentTypeFromName`` + the DSpace format registry, ``sequenceId`` -1
until the next item update, ``/retrieve`` without ranges or validators (``Content-Length`` only up
to 8 KiB, chunked above), HTML error pages, and a per-collection review (workflow) mode.

Deviations from the server, and choices where its source leaves one open:

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
  item's policies; else 500, as ``processException`` answers a missing bundle ADD).
* A collection or community has exactly one parent; items can be mapped into further collections
  with the backdoor ``map_item``. There are no logos (``logo`` is always ``null``), no withdrawal
  (``withdrawn`` is always ``"false"``), and no usage statistics.
* ``DELETE /items/{id}/bitstreams/{bid}``: as in the source, the item is looked up with WRITE
  first (401 when that fails); the bitstream DELETE check that follows answers 401 to a logged-in
  caller and 500 to an anonymous one (the server's NullPointerException).
* ``/items/{id}/bitstreams`` does not reset negative ``limit``/``offset`` (its source has no such
  check): they reach ``subList`` and answer 500, like ``offset > size``.
* ``find-by-metadata-field`` returns archived items that are READ-able and discoverable, for
  administrators too.
* The backdoor ``add_bitstream`` guesses the format from the registry's own extension list (the
  way content ingested through the web UI gets it, so ``.csv`` is "CSV"); uploads and renames
  through REST use the Java MIME table first, where ``.csv`` is unknown. ``add_bitstream`` assigns
  the next ``sequenceId`` at once, as an ingest does.
* Persistence is not implemented.

The package is split by responsibility: ``model`` (the repository's state and its operations),
``formats`` (the format registry), ``rendering`` (JSON shapes) and ``errors`` (error pages),
``bodies`` (request bodies as Jackson reads them), ``routes`` (the route table, dispatch, login)
with ``routes_containers``/``routes_items``/``routes_bitstreams`` (handlers by resource), and
``backdoor`` (what tests use). Each part is a mixin over ``model.Repository``, the one typed
state they share: the handlers and the backdoor work on the same objects under the same lock,
and mixins keep every method a plain ``self._x`` call, as it was in the single class.
"""

from __future__ import annotations

import threading
from datetime import UTC
from typing import Any

from docfs.emulators.base import ServerProfile
from docfs.emulators.dspace6.backdoor import ANONYMOUS, Backdoor
from docfs.emulators.dspace6.routes import Routes

__all__ = ["ANONYMOUS", "DSpace6Emulator"]


class DSpace6Emulator(Routes, Backdoor):
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
        self.server_tz = UTC
        self._state = threading.RLock()
        self._seed = seed
        self._init_state()
        self._table = self._build_table()
        super().__init__(latency_ms=latency_ms, seed=seed)
