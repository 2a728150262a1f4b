"""DSpace 7 and later (7.6, 8.x, 9.x, 10.0): the Server REST API under ``/server/api``.

**URL.** The user gives the server's base URL, e.g. ``https://repository.example.org``; the
backend appends ``/server/api``. A URL that already ends in ``/server`` (the ``dspaceServer`` of
the root document) gets ``/api``, and one that ends in ``/api`` is used as it is.

**Mapping** (the same shape as DSpace 6; why these calls: docs/protocols/dspace7.md, "How the
tree is listed"):

=====================  ==========================================================  ============
path                   object and listing call                                     mkdir inside
=====================  ==========================================================  ============
``/``                  top communities: ``core/communities/search/top``             community
``/Community``         sub-communities, then collections                            collection
``/…/Collection``      items via Discovery ``discover/search/objects?scope=``       item
``/…/Item``            ORIGINAL bitstreams, one ``embed=bundles/bitstreams`` call   (bundle)
``/…/Item/BUNDLE``     other bundles as directories, only with ``other_bundles``    —
=====================  ==========================================================  ============

Names are the objects' ``dc.title`` (duplicates are allowed: the vfs disambiguates). A file's
``size`` is ``sizeBytes``, its ``version`` the MD5 ``checkSum`` and its ``mtime`` the item's
``lastModified`` (DSpace has no per-bitstream date in JSON; the item's date changes whenever a
file is added or removed). Metadata fields appear in ``Entry.meta`` as ``dc.title`` etc.
(several values one per line) plus the read-only ``uuid``, ``handle``, ``checksum.md5`` (the
name DSpace 6 uses too; the content cache verifies downloads against it) and ``bundle``.

**Writes.** New files are multipart uploads into the item's ORIGINAL bundle (created when
missing). DSpace 7-9 cannot replace content: an overwrite uploads the new file under the same
name and metadata, deletes the old one and moves the new one to the old position in the bundle
(its uuid changes; when the upload's answer is lost, the bundle is searched for the new copy
before giving up, so the server never keeps both). On 10.0 ``PUT …/content`` is used where the
server enables it (it gives a new uuid too; the part carries the entry's own name, since the
server derives the new name from it); a 400 or 405 to it switches the mount to upload-and-swap.
Every write has a recovery path after a lost answer: repeatable ones are retried, the others
are checked against the server's state (for as long as they may still land) and then resumed
or sent again (``docs/protocols/dspace7.md``, "Which writes may be sent twice").
Renames are ``dc.title`` patches; a move between items is ``EXDEV``. A new item is made with
the admin-only ``POST /core/items``; for everybody else it is a workspace item, shown at once,
that takes files and is deposited later — after ``deposit_after`` seconds of quiet, or when
``settle`` is called (fsync of a directory, ``docfs sync``, unmount) — because DSpace refuses
an empty deposit and the submitter cannot add files after it (``docs/protocols/dspace7.md``).
A new archived item that the search index does not list yet is kept visible from local
knowledge for up to ``PENDING_GRACE`` (Discovery is index-based and lags behind); an item that
goes into a collection's review workflow is not listed until it is approved (a log line says
so). Where the server adds a citation cover page to PDFs, they are listed with the served size
and marked ``transformed`` (read whole, not checked against the stored MD5).

**Auth.** ``POST /authn/login`` with the CSRF token dance handled transparently (the token is
the ``DSPACE-XSRF-COOKIE`` cookie echoed in ``X-XSRF-TOKEN``; a CSRF 403 fetches a new one and
the request is repeated once), JWT refreshed before it expires, before long uploads and after a
401. Without credentials the mount is anonymous and read-only.
"""

from __future__ import annotations

from docfs import errors
from docfs.backends._http import HttpClient
from docfs.backends.dspace7.changes import Changes
from docfs.backends.dspace7.core import Draft as Draft
from docfs.backends.dspace7.core import DSpace7Core as DSpace7Core
from docfs.backends.dspace7.finding import Finding
from docfs.backends.dspace7.hal import api_prefix as api_prefix
from docfs.backends.dspace7.packages import PackageDeposit
from docfs.backends.dspace7.reading import Reading
from docfs.backends.dspace7.searching import Searching
from docfs.backends.dspace7.session import DSpace7Session as DSpace7Session
from docfs.backends.dspace7.session import jwt_expiry as jwt_expiry
from docfs.backends.dspace7.submission import Submissions
from docfs.backends.dspace7.uploads import Uploads


async def probe(http: HttpClient) -> str | None:
    """The ``dspaceVersion`` if the URL serves a DSpace 7+ REST API, else None."""
    try:
        response = await http.request(
            "GET", f"{api_prefix(http.base_url)}/", endpoint="root", auth=False
        )
        data = response.json()
    except (errors.DocfsError, ValueError):
        return None
    if isinstance(data, dict) and data.get("type") == "root":
        return str(data.get("dspaceVersion") or "DSpace 7+")
    return None


class DSpace7Backend(PackageDeposit, Reading, Uploads, Submissions, Changes, Finding, Searching):
    """DSpace 7+ Server REST API; see the module docstring for the mapping. Each part is a
    module of this package: ``core`` (shared state and requests), ``reading``, ``uploads``,
    ``submission`` and ``changes``; ``session`` logs in, ``hal`` reads the JSON."""
