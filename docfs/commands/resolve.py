"""``docfs resolve ID|HANDLE|URL [--mount MOUNTPOINT]``: the mounted path of an object.

The reference is read by the mount's repository type (``RemoteType.refs``: a handle, an id,
a web page of the repository…) into a kind and a key; the object is
then looked up through the mount's hidden ``.by-<kind>/<key>`` (one resolve request, cached
like a listing), and the mount says where its inode sits: in the tree where the mount knows the
object, else under the hidden directory (a path that works all the same).
"""

from __future__ import annotations

import argparse
import errno
import os
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from docfs import control
from docfs.commands.common import UsageError
from docfs.commands.status import _socket, find_mount, running_mounts
from docfs.redact import Redactor
from docfs.registry import REMOTE_TYPES
from docfs.remotetype import RemoteType, load


def _type_of(state: dict[str, Any]) -> RemoteType:
    name = str(state.get("remote") or "").split(":", 1)[0]
    rtype = REMOTE_TYPES.get(name)
    if rtype is None:
        raise UsageError(f"the mount at {state.get('mountpoint')} has no known type ({name!r})")
    return rtype


def parse(rtype: RemoteType, text: str) -> tuple[str, str] | None:
    """``(kind, key)`` of ``text`` for repositories of ``rtype`` (None: not theirs)."""
    if rtype.refs is None:
        return None
    found: tuple[str, str] | None = load(rtype.refs)(text)
    return found


def _choose(ref: str, where: str | None) -> dict[str, Any]:
    """The mount to ask: the one given, the one holding the working directory, or the only
    mount whose type knows the reference (preferring one of the URL's host)."""
    if where is not None:
        return find_mount(Path(where))[0]
    try:
        return find_mount(Path.cwd())[0]
    except UsageError:
        pass
    fitting = [s for s in running_mounts() if parse(_type_of(s), ref) is not None]
    host = urlsplit(ref).hostname if "://" in ref else None
    if host and len(fitting) > 1:
        same = [s for s in fitting if urlsplit(str(s["remote"]).split(":", 1)[1]).hostname == host]
        fitting = same or fitting
    if len(fitting) == 1:
        return fitting[0]
    if not fitting:
        raise UsageError(f"no running docfs mount knows references like {ref!r}")
    points = ", ".join(str(s.get("mountpoint")) for s in fitting)
    raise UsageError(f"several mounts could hold {ref!r} ({points}): give --mount")


def cmd_resolve(args: argparse.Namespace, redactor: Redactor) -> int:
    state = _choose(args.ref, args.mount)
    rtype = _type_of(state)
    found = parse(rtype, args.ref)
    if found is None:
        raise UsageError(f"{args.ref!r} is no id, handle or web address of {rtype.label}")
    kind, key = found
    mountpoint = Path(str(state["mountpoint"]))
    hidden = mountpoint / f".by-{kind}" / key
    try:
        ino = os.stat(hidden).st_ino
    except OSError as exc:
        what = "not found" if exc.errno == errno.ENOENT else os.strerror(exc.errno or errno.EIO)
        print(f"docfs: {args.ref}: {what} ({kind} {key} in {rtype.label})", file=sys.stderr)
        return 1
    try:
        answer = control.call(_socket(state), {"op": "locate", "ino": ino})
    except control.ControlError as exc:
        # the object is there all the same: its hidden path works
        print(f"docfs: the mount did not say where {hidden} is in the tree: {exc}", file=sys.stderr)
        print(hidden)
        return 0
    print(mountpoint / str(answer["path"]).lstrip("/"))
    return 0


def add_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    """``docfs resolve``'s parser (called by ``docfs.cli``)."""
    resolve = sub.add_parser(
        "resolve",
        parents=[common],
        help="print the mounted path of an id, handle or web address",
        description=(
            "Print the path in a running mount of the object an id, handle, DOI or web address "
            "names (see README, 'Finding things')."
        ),
    )
    resolve.add_argument("ref", metavar="ID|HANDLE|URL")
    resolve.add_argument("--mount", metavar="MOUNTPOINT", help="the mount to look in")
    resolve.set_defaults(func=cmd_resolve)
