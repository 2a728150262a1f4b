"""A protocol-faithful emulator of the DSpace 7+ Server REST API (``/server/api``, HAL JSON).

It follows the server's source as ``docs/protocols/dspace7.md`` describes it: the CSRF token dance
(``DSPACE-XSRF-TOKEN`` header, ``DSPACE-XSRF-COOKIE`` cookie, a fresh token in every CSRF 403,
``GET /security/csrf`` from 8.0), HS256 JWT bearer tokens with ``eid``/``sg``/``exp`` and a
configurable lifetime, short-lived download tokens, communities / collections / items / bundles /
bitstreams with HAL ``_links`` (absolute hrefs) and Spring Data page objects, Discovery search with
the real ``_embedded.searchResult`` nesting and its 100-per-page cap, ``embed=``/``embed.size=``
projections, bitstream content with HEAD, single byte ranges (206), a quoted-MD5 ``ETag``,
``Last-Modified`` and conditional requests (including DSpace's 416 for a failed ``If-Match``),
multipart upload into a bundle, JSON Patch on metadata (a bitstream rename is a ``dc.title``
patch), bundle reordering, the admin-only ``POST /core/items`` and the workspace-item →
workflow-item path for everybody else, and Spring Boot's error JSON for every failure.

Server versions differ in a few places (``docs/protocols/dspace7.md``, "Release differences");
``version`` selects the behaviour: ``"7.6"`` (no ``/security/csrf``), ``"8.x"``/``"9.x"``, and
``"10.0"`` (RFC 6266 ``Content-Disposition`` and ``PUT …/content``, which answers 400 unless
``replace_bitstream_enabled``). Server settings (``docfs emulate dspace7 --setting``):
``replace-bitstream.enabled``, ``webui.submit.upload.required`` (a deposit without a file is 422)
and ``citation-page.enable_globally`` (PDFs get a cover page for non-administrators); the role
``submitter`` puts the user into every collection's SUBMIT group. What the server's source says
about each is in ``docs/protocols/dspace7.md``.

Where the server's source leaves behaviour open, the emulator's choice is named as such in
``docs/protocols/dspace7.md``. Further choices, all documented at the place they are made: a small
permission model (each object has an optional reader set and a writer set that is inherited by
everything below it), an unknown Discovery ``scope`` yields an empty result, a multi-range
``Range`` header is ignored (200 with the whole body), ``Content-Disposition`` is always
``attachment`` (no inline formats configured), a short-lived token is only accepted in
``?authentication-token=`` (DSpace signs it with another key than login tokens), and an optional
front-proxy rate limit answers 429 with ``Retry-After``.

Everything lives in memory behind one lock, so tests may call the backdoor methods (``add_*``,
``set_content``, ``expire_sessions``, ``approve_workflow``…) from another thread while the
server runs.

The package, by responsibility (each route group is a mixin over the typed shared state, see
``emulator.py``): ``wire`` (paths, names, limits, ``Fail``), ``model`` (objects, ``State``,
domain operations, permissions), ``context`` (the request context, multipart parsing),
``rendering`` (HAL shapes, pages, error JSON), ``handlers`` (what the route groups share),
``auth``, ``objects``, ``bitstreams``, ``content``, ``discovery``, ``submission`` (the handlers
by resource), ``routes`` (the route table and dispatcher), ``backdoor`` (what tests use) and
``emulator`` (settings and the class itself).
"""

from docfs.emulators.dspace7.context import Ctx, Part, first_json_value, parse_multipart
from docfs.emulators.dspace7.emulator import DSpace7Emulator
from docfs.emulators.dspace7.model import (
    DSO,
    Bitstream,
    Bundle,
    Collection,
    Community,
    EPerson,
    Item,
    WorkflowItem,
    WorkspaceItem,
    guess_mime,
    metadata_value,
    replaced_name,
)
from docfs.emulators.dspace7.wire import API_PATH, SERVER_PATH, Fail, iso, tomcat_header

__all__ = [
    "API_PATH",
    "DSO",
    "SERVER_PATH",
    "Bitstream",
    "Bundle",
    "Collection",
    "Community",
    "Ctx",
    "DSpace7Emulator",
    "EPerson",
    "Fail",
    "Item",
    "Part",
    "WorkflowItem",
    "WorkspaceItem",
    "first_json_value",
    "guess_mime",
    "iso",
    "metadata_value",
    "parse_multipart",
    "replaced_name",
    "tomcat_header",
]
