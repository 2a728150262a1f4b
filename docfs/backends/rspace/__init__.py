"""RSpace ELN (REST API v1) as directories and files.

The remote URL is the server's base URL, e.g. ``https://rspace.example.org``; every API call
goes to ``{url}/api/v1/…`` and OAuth tokens come from ``{url}/oauth/token``.

Mapping (the server behaviour it relies on: docs/protocols/rspace.md):

- root: the user's Home folder; its children come from ``GET /folders/tree/{home}`` pages of
  100, following ``totalHits`` (never the ``next`` links, which drop filters and may point to
  another host). Workspace folders and notebooks are directories; so is the ``Gallery``, its
  sections and their sub-folders. Snippets are not shown.
- a document is a directory: one ``<field name>.html`` file per field (the content exactly as
  the server returns it) plus the Gallery files linked from its fields, all from one
  ``GET /documents/{id}``.
- Gallery media are files. The tree has no sizes, so sizes and versions come from the paged
  ``GET /files`` listing (100 per page), kept in an index that is refreshed only for files whose
  tree ``lastModified`` is newer than the moment they were indexed: ``ls -l`` of a Gallery folder
  costs its tree pages plus, at most, a few ``/files`` pages, never one request per file.

Writes: a new file in a Gallery folder → ``POST /files`` (refused at create, EINVAL, by
``check_name`` when the extension belongs to another section: the log names the right one);
overwriting a Gallery file → ``POST /files/{id}/file`` (a new version under the same name); a
new file in a document directory → upload to the Gallery (the section's ``Api Inbox``) and a
``<fileId=N>`` link appended to the document's first text field; writing a field file →
``PUT /documents/{id}``;
mkdir → ``POST /folders`` (in a notebook: ``POST /documents``, a new entry;
``mkdir_notebook`` makes notebooks); rmdir → ``DELETE /folders/{id}`` after checking emptiness;
removing a document directory → ``DELETE /documents/{id}``; renaming a document → ``PUT``;
moving a document, folder or notebook → ``POST /documents/move`` (only from RSpace 2.16: on an
older server, told by ``GET /status``, a move fails locally; see ``_no_move_api``). The API cannot
rename a folder,
nor delete, rename or move a Gallery file, nor move anything into the Gallery: those fail locally
with EPERM, a log line and no request (not EXDEV: ``mv``'s copy-and-delete would leave the
undeletable original behind). Workspace folders take no plain files (EPERM).

Metadata (``user.rspace.*``): ``globalId`` and ``owner`` everywhere, ``caption`` on Gallery
files; documents also ``tags`` (writable), ``form`` and ``shares`` (JSON) — those three only on
entries from ``stat()`` (the tree has no tags), which ``extra["meta"] == "partial"`` signals.

Authentication: an API key (``Credentials.token`` alone) sent as the ``apiKey`` header, or OAuth
(``Credentials.user`` + ``password``, with ``token`` = ``"client_id:client_secret"``): a password
grant, refreshed before expiry and once on a 401. RSpace answers 401 also for "forbidden" on
folders and 404 for forbidden documents and files, so statuses are mapped per call. Throttled
servers answer 429 without ``Retry-After``; the wait comes from ``X-Rate-Limit-WaitTimeMillis``.
An upload over the server's upload quota (``api.fileuploadRateLimit.enabled``) also answers 429,
with ``X-Upload-Limit-*`` headers: that is EDQUOT at once, never re-sent (see ``_quota_error`

Modules: ``common`` (constants, status maps, small helpers), ``session`` (API key or OAuth),
``api`` (requests, uploads, the state every part shares), ``entries`` (entries from the
server's records), ``shares`` (groups and shares, for ``docfs share``), ``reading`` (listings,
stat, downloads) and ``backend`` (writes: the class a mount uses).
"""

from __future__ import annotations

from docfs.backends.rspace.backend import RSpaceBackend
from docfs.backends.rspace.common import section_for
from docfs.backends.rspace.records import Group, ShareInfo, ShareResult
from docfs.backends.rspace.session import ApiKeySession, OAuthSession

__all__ = [
    "ApiKeySession",
    "Group",
    "OAuthSession",
    "RSpaceBackend",
    "ShareInfo",
    "ShareResult",
    "section_for",
]
