"""Opus 2 Platform (v8) inbound Documents API: projects, folders and documents as a filesystem.

The URL a user gives is the tenant's base URL (``https://xyz.example.com``). The backend appends
``profile.path_prefix`` (default: nothing, so the projects list is ``{tenant}/projects``) and the
endpoint paths of the vendor's article. The vendor publishes no Swagger, so everything the
article leaves open — paging parameters, JSON envelopes, id types, date format, the download
route, the upload encoding, optional endpoints — is an ``Opus2Profile`` setting. The defaults
are the default wire profile of docs/protocols/opus2.md; a customer who has the Swagger adapts
docfs with a TOML or JSON profile file instead of code.

Mapping:

========================  ==================================================================
filesystem                Opus 2 call
========================  ==================================================================
``/``                     GET ``projects`` (paged): one directory per project
``/<project>/…``          GET ``projects/{p}/folders`` (one flat, paged listing builds the tree)
                          + GET ``documents/folder/{f}`` (paged); documents at the project root
                          come from GET ``projects/{p}/documents`` (paged, ``folderId`` null)
file attributes           ``size``, ``updatedAt``, ``versionId`` from the listing, never per file
read                      GET ``…/documents/{d}/content`` (``Range`` when the profile allows)
new file                  POST ``documents?rejectDuplicate=true`` (multipart ``file``,
                          ``folderId``); a retry after a lost answer gets 409 and finds the
                          document that did arrive by listing the folder
overwrite                 POST ``…/documents/{d}/replace``: a new version, same id
``mv`` between folders    PUT ``…/documents/{d}/{folderId}`` (same project; else EXDEV)
mkdir / rmdir             POST ``folders`` / DELETE ``folders/{f}/`` (the profile's
                          ``folder_not_empty_status``, a guess, → ENOTEMPTY)
rename / rm of documents  not in the API: EPERM and a log line, no request (unless the
                          profile enables ``document_rename`` / ``document_delete``)
xattrs                    ``user.opus2.<field name>`` (GET ``fields`` + PUT ``…/fields/{id}``),
                          ``user.opus2.version`` and ``user.opus2.id`` (read-only)
refresh                   ``changed_since()``: GET ``documents?afterDate=…``
whole project             ``walk_project()``: the folders list + the project-wide documents list
========================  ==================================================================

Which defaults the vendor documents and which are guesses: docs/protocols/opus2.md and the
README. The vendor's only 409 is "You cannot delete the only version of a document"; a 409 is
never read as "folder not empty" unless the profile says that is what the tenant answers. The
download route is not in the vendor's article at all: a read that meets 404/405 there logs how
to set ``download_path``.

Every request counts against the tenant's rate limit (default 50 per rolling minute per token),
so ``Opus2Profile.limits()`` paces the client below it; a 429 that comes anyway is retried after
its ``Retry-After`` by the HTTP layer.

Modules: ``session`` (the API token), ``api`` (requests, paging and the entries built from the
answers), ``reading`` (listings, stat, downloads), ``backend`` (writes, the multipart upload
body; the class a mount uses). The wire profile lives in ``docfs.wire.opus2_profile``,
shared with the emulator; it is re-exported here.
"""

from __future__ import annotations

from docfs.backends.opus2.backend import Opus2Backend
from docfs.backends.opus2.session import Opus2Session
from docfs.wire.opus2_profile import (
    ALTERNATIVE_PROFILE,
    DEFAULT_PROFILE,
    Opus2Profile,
    load_profile,
)

__all__ = [
    "ALTERNATIVE_PROFILE",
    "DEFAULT_PROFILE",
    "Opus2Backend",
    "Opus2Profile",
    "Opus2Session",
    "load_profile",
]
