"""``docfs import DIR TARGET``: a local directory into an RSpace Workspace folder or notebook.

The layouts are the three of rspace-client's tree importer (``DocumentCreationStrategy`` in
rspace-os/rspace-client-python ``rspace_client/eln/dcs.py``, used by ``filetree_importer.py``),
which is what RSpace users script today:

``file``
    one Basic Document per file directly in DIR, named after the file (with its extension, so
    ``a.csv`` and ``a.txt`` stay two documents), its text field linking the file;
``subdir``
    one document per subdirectory of DIR, named after it, linking every file below it (with a
    table of their paths); files directly in DIR make one more document named after DIR;
``summary``
    one document named after DIR (or ``--name``) linking every file below DIR, in a table.

Each file is uploaded to the Gallery first (``POST /files`` with no folder: the Api Inbox of
the section its extension picks), then the document is created with its links in one
``POST /documents`` (``<fileId=N>`` in the text field; docs/protocols/rspace.md). A document so
exists only complete. Hidden files and directories are skipped, as the rspace-client does.
Unlike the rspace-client, no folder named after DIR is made: TARGET is where the documents go
(in a notebook they become its entries; a notebook holds no folders).

Running it again makes no duplicates: a document whose name TARGET holds already is skipped
(``skipped NAME: exists``), so an interrupted import is finished by running it again. Files
uploaded for a document whose creation then failed stay in the Api Inbox (RSpace has no
transaction across requests) and are uploaded again by the next run.

Like ``docfs share``, the work is done by the daemon serving TARGET's mount, with its own login,
through the control socket (``{"op": "rspace-import", "action": …}``), one request per file and
per document, so each prints its progress line as it finishes. The daemon reads the local files
itself: it runs as the same user on the same machine.
"""

from __future__ import annotations

import argparse
import html
import inspect
import os
import sys
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from docfs import control, errors
from docfs.backends.base import Kind
from docfs.backends.rspace import RSpaceBackend
from docfs.backends.rspace.commands import Mounted, locate, refresh, remote_id
from docfs.backends.rspace.common import _check_name, _sendable, section_for
from docfs.redact import Redactor

Json = dict[str, Any]
OP = "rspace-import"
LAYOUTS = ("file", "subdir", "summary")


# ---- what to make --------------------------------------------------------------------------


@dataclass(frozen=True)
class Planned:
    """One document to make: its name and the files it links, as (label, local path)."""

    name: str
    files: tuple[tuple[str, Path], ...]


@dataclass
class Plan:
    documents: list[Planned] = field(default_factory=list)
    #: what the layout leaves out, with why (printed, never silent)
    skipped: list[str] = field(default_factory=list)


def _visible(path: Path) -> bool:
    return not path.name.startswith(".")


def _files_below(root: Path) -> list[tuple[str, Path]]:
    """Every regular, non-hidden file below ``root`` (hidden directories skipped), sorted."""
    found: list[tuple[str, Path]] = []
    for here, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            path = Path(here) / name
            if _visible(path) and path.is_file():
                found.append((str(path.relative_to(root)), path))
    return found


def plan(src: Path, layout: str, name: str | None = None) -> Plan:
    """The documents ``layout`` makes of the directory ``src``."""
    if not src.is_dir():
        raise errors.InvalidArgument(f"{src}: not a directory")
    entries = sorted(p for p in src.iterdir() if _visible(p))
    out = Plan()
    if layout == "file":
        for path in entries:
            if path.is_file():
                out.documents.append(Planned(path.name, ((path.name, path),)))
            else:
                out.skipped.append(f"{path.name}/: a directory (--layout subdir imports those)")
    elif layout == "subdir":
        loose = tuple((p.name, p) for p in entries if p.is_file())
        if loose:
            out.documents.append(Planned(src.name, loose))
        for path in entries:
            if path.is_dir():
                below = tuple(_files_below(path))
                if below:
                    out.documents.append(Planned(path.name, below))
                else:
                    out.skipped.append(f"{path.name}/: no files")
    elif layout == "summary":
        every = tuple(_files_below(src))
        if every:
            out.documents.append(Planned(name or src.name, every))
    else:
        raise errors.InvalidArgument(f"no layout {layout!r} (one of {', '.join(LAYOUTS)})")
    if name is not None and layout != "summary":
        raise errors.InvalidArgument("--name names the one document of --layout summary")
    return out


def unlinkable(name: str) -> str | None:
    """Why a file cannot be linked from a document (checked before any upload, so a document
    that cannot be made leaves no files behind in the Gallery), or None."""
    if section_for(name) in ("Audios", "Videos"):
        return f"{name}: audio and video files cannot be linked into documents"
    if not _sendable(name):
        return f"{name}: RSpace cannot store this name unchanged (quote, backslash, line break)"
    return None


def content(files: Sequence[tuple[str, int]]) -> str:
    """The text field: one file's link alone, or a table of original path → Gallery file."""
    if len(files) == 1:
        return f"<p><fileId={files[0][1]}></p>"
    rows = "".join(
        f"<tr><td>{html.escape(label)}</td><td><fileId={ident}></td></tr>" for label, ident in files
    )
    return f"<table><tr><th>File</th><th>In the Gallery</th></tr>{rows}</table>"


# ---- the daemon's side ---------------------------------------------------------------------


async def do_target(backend: RSpaceBackend, *, target_id: str) -> Json:
    """What TARGET is, and the names of the documents in it already."""
    target = await backend.entry_by_id(target_id)
    kind = target.extra.get("type")
    if kind not in ("HOME", "FOLDER", "NOTEBOOK"):
        raise errors.NotSupported(
            f"{target.name!r}: import into a Workspace folder or a notebook, not a {kind}"
        )
    names = [
        e.name
        async for e in backend.list_dir(target)
        if e.kind is Kind.DIR and e.extra.get("type") == "DOCUMENT"
    ]
    return {"name": target.name, "type": kind, "documents": names}


async def do_upload(backend: RSpaceBackend, *, path: str, name: str) -> Json:
    src = Path(path)
    if not src.is_absolute() or not src.is_file():
        raise errors.InvalidArgument(f"{path}: not a regular file")
    info = await backend.upload_to_inbox(name, src)
    return {"id": int(info["id"]), "name": str(info.get("name", name))}


async def do_document(backend: RSpaceBackend, *, target_id: str, name: str, content: str) -> Json:
    target = await backend.entry_by_id(target_id)
    doc = await backend.create_document(target, name, content)
    return {"id": doc.id, "name": doc.name}


_ACTIONS: dict[str, Callable[..., Awaitable[Json]]] = {
    "target": do_target,
    "upload": do_upload,
    "document": do_document,
}


async def serve_control(backend: object, request: Json) -> Json:
    """``{"op": "rspace-import", "action": …, "args": {…}}`` with the mount's own backend."""
    action, args = request.get("action"), request.get("args")
    work = _ACTIONS.get(str(action))
    if work is None or not isinstance(args, dict):
        return {"ok": False, "kind": "InvalidArgument", "error": f"bad import request {action!r}"}
    if not isinstance(backend, RSpaceBackend):
        return {"ok": False, "kind": "NotSupported", "error": "import is an RSpace feature"}
    try:
        inspect.signature(work).bind(backend, **args)
    except TypeError:
        return {"ok": False, "kind": "InvalidArgument", "error": f"bad arguments for {action}"}
    try:
        return {"ok": True, "result": await work(backend, **args)}
    except errors.DocfsError as exc:
        return {"ok": False, "kind": type(exc).__name__, "error": str(exc)}


# ---- the client's side ---------------------------------------------------------------------


def _call(mounted: Mounted, action: str, args: Json) -> Json:
    if mounted.control is None:
        raise errors.NotSupported(f"the mount at {mounted.mountpoint} has no control socket")
    try:
        answer = control.call(
            mounted.control, {"op": OP, "action": action, "args": args}, timeout=300
        )
    except control.ControlError as exc:
        hint = " (a docfs too old to import: remount)" if "unknown request" in str(exc) else ""
        raise errors.RemoteUnavailable(f"the mount at {mounted.mountpoint}: {exc}{hint}") from None
    if not answer.get("ok"):
        cls = getattr(errors, str(answer.get("kind")), None)
        if not (isinstance(cls, type) and issubclass(cls, errors.DocfsError)):
            cls = errors.DocfsError
        raise cls(str(answer.get("error", "the mount failed to do it")))
    result = answer.get("result")
    if not isinstance(result, dict):
        raise errors.ProtocolError("the mount answered no result")
    return result


@dataclass
class Outcome:
    created: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)


def import_tree(
    src: Path,
    target: Path,
    *,
    layout: str = "file",
    name: str | None = None,
    say: Callable[[str], None] = print,
    warn: Callable[[str], None] = lambda line: print(line, file=sys.stderr),
) -> Outcome:
    """Import ``src`` into the folder or notebook at ``target`` (inside an RSpace mount)."""
    todo = plan(src.resolve(), layout, name)
    mounted = locate(target)
    if mounted.remote_type != "rspace":
        raise errors.NotSupported(
            f"import is an RSpace feature; {mounted.mountpoint} is a {mounted.remote_type} mount"
        )
    target_id = remote_id(target)
    where = _call(mounted, "target", {"target_id": target_id})
    existing = set(where["documents"])
    outcome = Outcome()
    for line in todo.skipped:
        say(f"skipped {line}")
    for doc in todo.documents:
        if doc.name in existing:
            say(f"skipped {doc.name!r}: {where['name']!r} has a document of that name already")
            outcome.skipped.append(doc.name)
            continue
        refused = [why for _, path in doc.files if (why := unlinkable(path.name))]
        try:
            _check_name(doc.name)  # checked again by the daemon, but after the uploads
        except errors.InvalidArgument as exc:
            refused.append(str(exc))
        if refused:
            warn(f"docfs: import {doc.name!r}: {'; '.join(refused)}")
            outcome.failed.append(doc.name)
            continue
        try:
            linked: list[tuple[str, int]] = []
            for label, path in doc.files:
                info = _call(mounted, "upload", {"path": str(path), "name": path.name})
                say(f"uploaded {label} to the Gallery (GL{info['id']})")
                linked.append((label, int(info["id"])))
            made = _call(
                mounted,
                "document",
                {"target_id": target_id, "name": doc.name, "content": content(linked)},
            )
        except errors.RemoteUnavailable:
            raise  # the mount is gone: nothing further can work
        except errors.DocfsError as exc:
            warn(f"docfs: import {doc.name!r}: {exc}")
            outcome.failed.append(doc.name)
            continue
        say(f"created {made['name']!r} ({made['id']}) linking {len(linked)} file(s)")
        outcome.created.append(doc.name)
        existing.add(doc.name)
    refresh(mounted, mounted.path)
    return outcome


def cmd_import(args: argparse.Namespace, redactor: Redactor) -> int:
    outcome = import_tree(Path(args.dir), Path(args.target), layout=args.layout, name=args.name)
    print(
        f"{len(outcome.created)} created, {len(outcome.skipped)} existed already, "
        f"{len(outcome.failed)} failed"
    )
    return 1 if outcome.failed else 0


def register(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
    parents: Sequence[argparse.ArgumentParser] = (),
) -> None:
    """Add ``import`` to the ``docfs`` command."""
    p = subparsers.add_parser(
        "import",
        parents=list(parents),
        help="import a local directory into an RSpace folder or notebook as documents",
        description="Upload the files of DIR to the Gallery and make RSpace documents linking "
        "them in TARGET (a Workspace folder or notebook inside a running RSpace mount). "
        "Documents whose name TARGET holds already are skipped: running it again finishes an "
        "interrupted import without duplicates.",
    )
    p.add_argument("dir", metavar="DIR", help="the local directory to import")
    p.add_argument("target", metavar="TARGET", help="a Workspace folder or notebook in the mount")
    p.add_argument(
        "--layout",
        choices=LAYOUTS,
        default="file",
        help="file: a document per file; subdir: a document per subdirectory; summary: one "
        "document linking every file (default: file)",
    )
    p.add_argument("--name", help="the summary document's name (default: DIR's name)")
    p.set_defaults(func=cmd_import)
