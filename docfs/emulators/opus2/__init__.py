"""Opus 2 Platform (v8) inbound Documents API emulator, after ``docs/protocols/opus2.md``.

Every route of the vendor's table (tokens, roles, users, teams, projects with their teams and
users, templates, folders, documents with ``afterDate`` and ``rejectDuplicate``, folder
listings, move, replace, fields) plus the download route of the wire profile, served under
``profile.path_prefix``. Behaviour that the vendor documents: the ``X-API-Token`` header (a
``Bearer`` token works too), 200/201 and the 400/401/403/404/409/500 errors with their messages,
HEAD on every GET route, POST and PATCH interchangeable on update routes, 411 for a PUT with
neither a body nor ``Content-Length: 0``, the system switch "Allowing access to the integrations
API" and the per-project switch "Download docs via API", read-only project members, and a rate
limiter of ``rate_limit`` requests per rolling ``rate_window`` seconds per token (429 or, by
profile, 503, with ``Retry-After`` and ``X-RateLimit-*``). Everything the vendor leaves open
follows the ``Opus2Profile`` the emulator is built with, so the same state can be served in the
documented default profile or in an alternative one.

State is in memory and guarded by one lock, because tests call the backdoor methods (``add_*``,
``replace_document``, ``set_download_via_api``…) from their own thread while uvicorn serves.

``docfs emulate opus2 --token T --rate-limit N`` maps to ``Opus2Emulator(token=T, rate_limit=N)``
(``--demo``: ``demo_opus2.seed_demo``); the token then belongs to the seeded default user, who
has Read/Write on the demo projects. ``profile=Opus2Profile.load(path)`` serves another profile.
Planned faults (500s, stalls, resets mid-body) and latency come from the ``Emulator`` base; a
planned error status answers with the base's HTML body, not the JSON error body of this API.

The package, by responsibility (each route group is a mixin over the typed shared state, see
``emulator.py``): ``wire`` (access levels, roles, templates, ``ApiError``, and the one import of
the wire profile), ``model`` (the tenant's objects, ``State``, the clock, domain operations),
``parsing`` (request bodies, ranges, multipart), ``rendering`` (JSON shapes, pages, download
bodies), ``backdoor`` (what tests use), ``handlers`` (what the route groups share), ``people``,
``projects``, ``folders``, ``documents`` (the handlers by resource), ``routes`` (the route table
and request pipeline) and ``emulator`` (settings and the class itself).
"""

from docfs.emulators.opus2.emulator import Opus2Emulator
from docfs.emulators.opus2.wire import READ, READ_WRITE, ApiError

__all__ = ["READ", "READ_WRITE", "ApiError", "Opus2Emulator"]
