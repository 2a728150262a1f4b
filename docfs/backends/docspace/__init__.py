"""ONLYOFFICE DocSpace backend: rooms, folders and files of a DocSpace portal.

The URL a user gives is the portal's base URL (``https://portal.example.com``); this module
appends ``/api/2.0/…`` for the REST API and uses the portal's two handlers at its root,
``/filehandler.ashx`` (downloads) and ``/ChunkedUploader.ashx`` (upload chunks). What the
server's source says about the points below is in ``docs/protocols/docspace.md``.

Mapping:

* root: ``My documents`` (``@my``, when the account has one), ``Rooms`` (one directory per
  room) and, with ``show_trash`` (default), ``Trash`` read-only;
* folders are directories, files are files: size = ``pureContentLength`` (absent → 0),
  mtime = ``updated``, ``Entry.version`` = ``version.versionGroup.size``. Files and folders
  have separate id sequences, so entry ids are ``f<id>`` and ``d<id>``;
* reads: ``filehandler.ashx?action=download&fileid=N&version=V`` with one ``Range`` (never a
  suffix range); the version pins the bytes to the entry's version. A 302 to storage is
  followed; httpx drops the ``Authorization`` header when the redirect leaves the portal's origin;
* new file → chunked session (``upload/create_session``, ``createNewIfExist``, chunks of exactly
  ``chunkUploadSize`` by number, each part named ``blob``, then ``finalize``): sessions never
  auto-convert. Empty files go through ``POST …/file`` with ``enableExternalExt``;
* overwrite → ``edit_session`` of the same file id (a new version); empty content through
  ``saveediting``. Every save lower-cases the extension (``Makefile`` → ``Makefile.``): the
  name is given back by a rename. A save whose answer is lost is looked for, then redone;
* files of a room with a watermark: size = what a download sends (the server's PDF), read
  whole;
* mkdir → folder; in ``Rooms`` → a new room (``room_type``, default CustomRoom);
* rename in a folder → ``PUT file/{id}`` / ``folder/{id}`` / ``rooms/{id}``. The server cannot
  change a file's extension (it appends the old one), so such a rename raises ``CrossDevice``:
  ``mv`` then copies and deletes, which is the only way there is. Names the server would rewrite
  (``TAB * + : " < > ? | \\ /``, leading or trailing spaces, over 165 characters) are refused
  with EINVAL instead of being stored under another name;
* move → ``fileops/move`` with ``Duplicate`` (never merges folders or drops a clashing file),
  polled to completion, then a rename if the name changes;
* delete → ``DELETE`` to Trash (``permanent_delete=True`` deletes at once), polled; a folder or
  room must be empty (ENOTEMPTY otherwise). A room is always deleted at once, and its answer
  may be another operation: ours is found among the new ones;
* metadata: xattrs ``user.docspace.<key>``; ``comment`` (the current version's comment) is
  writable, at most 255 characters (the server would cut a longer one).

Auth: a login token from ``POST /api/2.0/authentication`` sent raw in ``Authorization``, renewed
before its ``expires``; an API key ``sk-…`` given as the token is sent as ``Bearer``. Many Files
endpoints answer 403 rather than 401 for a dead token: on a 403 the backend asks
``GET /api/2.0/authentication`` and logs in again once if the answer is ``false``.

Modules: ``common`` (constants, names and titles, the envelope), ``session`` (login token or
API key), ``api`` (requests, the re-login on a 403, entries from DTOs), ``reading`` (listings,
watermarked rooms, downloads, thumbnails), ``operations`` (the asynchronous file operations:
delete to the Trash, move), ``uploads`` (chunked sessions, saves and their recovery) and
``backend`` (the class a mount uses: the rest of the writes and the refusal hints).
"""

from __future__ import annotations

from docfs.backends.docspace.backend import DocSpaceBackend
from docfs.backends.docspace.session import DocSpaceSession

__all__ = ["DocSpaceBackend", "DocSpaceSession"]
