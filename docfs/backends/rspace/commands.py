"""RSpace sharing from the command line: ``docfs share``, ``unshare``, ``shares``, ``mkdir``.

These commands act on paths inside a running RSpace mount. The object behind a path is the id
the mount shows as its ``user.docfs.id`` extended attribute (so odd or duplicate names never
matter); the remote is the one in the state file of the daemon serving the mount point (found
by walking up from the path). The command asks that daemon to do the work through its control
socket (``{"op": "rspace", "action": …}``): the mount is logged in already, so nothing asks for
credentials again and the server sees no second login. Only a daemon that does not answer
(an older docfs) makes the command talk to the server itself, with the credentials the mount
was started with: ``DOCFS_TOKEN`` (or ``DOCFS_USER``/``DOCFS_PASSWORD``, or
``--credentials-file``) for a ``rspace:URL`` mount, the configuration for a named remote.
Afterwards the mount is told to forget the listings that changed (as ``docfs refresh`` does),
so a new notebook shows up at once.

Sharing again with a group or user the item is already shared with (same permission) is the
state asked for: ``already shared with …``, exit 0 (RSpace itself refuses such a share with
401, which said nothing useful).

RSpace shares documents and notebooks only, with groups (by name, unique name, ``GP`` id or
number) and with users who are members of one of your groups (by username).
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import logging
import os
import sys
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import trio

from docfs import config, control, errors
from docfs.backends.base import Credentials, Entry, Kind
from docfs.backends.rspace import Group, RSpaceBackend, ShareInfo, ShareResult
from docfs.commands.common import alive, read_state
from docfs.daemon import MountConfig, build_backend, runtime_dir, state_file
from docfs.options import default
from docfs.redact import Redactor
from docfs.vfs.names import restore

log = logging.getLogger("docfs.sharing")

ID_XATTR = "user.docfs.id"
T = TypeVar("T")
Json = dict[str, Any]


# ---- where a path lives --------------------------------------------------------------------


@dataclass(frozen=True)
class Mounted:
    """A path inside a running docfs mount, and what the daemon says about that mount."""

    path: Path
    mountpoint: Path
    remote_type: str
    url: str
    #: the configured remote's name (``docfs mount NAME``); None for ``TYPE:URL``
    name: str | None
    control: Path | None


@dataclass(frozen=True)
class Access:
    """How to reach the server: the options that say where the credentials are."""

    credentials_file: Path | None = None
    config: Path | None = None


def _alive(pid: object) -> bool:
    """A running daemon's pid (``alive`` of the status commands: a zombie counts as gone)."""
    return isinstance(pid, int) and alive(pid)


def _state(mountpoint: Path) -> dict[str, Any] | None:
    data = read_state(state_file(mountpoint))
    return data if data is not None and _alive(data.get("pid")) else None


def _mounted(path: Path, mountpoint: Path, state: dict[str, Any]) -> Mounted:
    kind, _, url = str(state.get("remote", "")).partition(":")
    control_path = state.get("control")
    return Mounted(
        path=path,
        mountpoint=mountpoint,
        remote_type=kind,
        url=url,
        name=state.get("name") or None,
        control=Path(control_path) if control_path else None,
    )


def locate(path: Path) -> Mounted:
    """The mount holding ``path`` (which need not exist yet), from its daemon's state file."""
    # the daemon records its mount point resolved; a path given through a symlink must match
    real = Path(os.path.realpath(path))
    mountpoint = real
    while not os.path.ismount(mountpoint) and mountpoint.parent != mountpoint:
        mountpoint = mountpoint.parent
    state = _state(mountpoint)
    if state is None:
        raise errors.NotFound(f"{path} is not inside a running docfs mount")
    return _mounted(real, mountpoint, state)


def only_rspace_mount() -> Mounted:
    """The one running RSpace mount of this user (for ``docfs shares`` without a path)."""
    found = []
    for file in sorted(runtime_dir().glob("mount-*.json")):
        state = read_state(file)
        if (
            state is not None
            and _alive(state.get("pid"))
            and str(state.get("remote", "")).startswith("rspace:")
            and state.get("mountpoint")
        ):
            found.append(state)
    if len(found) != 1:
        how = "no RSpace mount is running" if not found else "several RSpace mounts are running"
        raise errors.InvalidArgument(f"{how}: give a path inside the mount")
    mountpoint = Path(found[0]["mountpoint"])
    return _mounted(mountpoint, mountpoint, found[0])


def remote_id(path: Path) -> str:
    """The remote object's id, as the mount shows it (``user.docfs.id``)."""
    try:
        return os.getxattr(path, ID_XATTR).decode("utf-8")
    except FileNotFoundError:
        raise errors.NotFound(f"{path}: no such file or directory") from None
    except OSError as exc:
        raise errors.NotFound(f"{path}: the mount shows no id for it ({exc.strerror})") from None


# ---- the backend ---------------------------------------------------------------------------


def _credentials(mounted: Mounted, access: Access) -> tuple[Credentials, config.Remote | None]:
    """The mount's credentials: from the configured remote, or as ``docfs mount`` reads them."""
    # imported here: the command line imports this module to register the commands
    from docfs.commands.source import read_credentials

    if mounted.name is None:
        return read_credentials(access.credentials_file), None
    remote = config.load(access.config, explicit=access.config is not None).remote(mounted.name)
    if (remote.type, remote.url) != (mounted.remote_type, mounted.url):
        raise errors.InvalidArgument(
            f"the configured remote {mounted.name!r} is {remote.type}:{remote.url} now, "
            f"but {mounted.mountpoint} shows {mounted.remote_type}:{mounted.url}"
        )
    # a named remote never takes DOCFS_* from the environment: they may belong to another
    if access.credentials_file is not None:
        credentials = read_credentials(access.credentials_file, use_env=False)
    else:
        credentials = config.credentials(remote)
    if credentials.user is None and remote.user is not None:
        credentials = Credentials(remote.user, credentials.password, credentials.token)
    return credentials, remote


def open_backend(mounted: Mounted, access: Access, redactor: Redactor) -> RSpaceBackend:
    """A backend for the mount's remote (not yet connected)."""
    if mounted.remote_type != "rspace":
        raise errors.NotSupported(
            f"sharing is an RSpace feature; {mounted.mountpoint} is a {mounted.remote_type} mount"
        )
    credentials, remote = _credentials(mounted, access)
    redactor.add(*credentials.secrets())
    rpm = remote.requests_per_minute if remote is not None else None
    settings = MountConfig(
        remote_type=mounted.remote_type,
        url=mounted.url,
        mountpoint=mounted.mountpoint,
        credentials=credentials,
        timeout=(remote.timeout if remote is not None else None) or default("timeout"),
        concurrency=remote.concurrency if remote is not None else None,
        requests_per_second=rpm / 60 if rpm else None,
    )
    backend = build_backend(settings, redactor)
    if not isinstance(backend, RSpaceBackend):
        raise errors.NotSupported(f"{mounted.remote_type} has no sharing")
    return backend


def _with_backend(
    mounted: Mounted,
    access: Access,
    redactor: Redactor,
    work: Callable[[RSpaceBackend], Awaitable[T]],
) -> T:
    """Connect, run ``work``, close: one trio run per command."""

    async def run() -> T:
        backend = open_backend(mounted, access, redactor)
        try:
            await backend.connect()
            return await work(backend)
        finally:
            await backend.aclose()

    return trio.run(run)


def _run(mounted: Mounted, access: Access, redactor: Redactor, action: str, args: Json) -> Any:
    """Run ``action`` with ``args`` in the mount's daemon, or (a daemon that does not know the
    request: an older docfs) here with credentials of our own. Returns the action's result."""
    if mounted.remote_type != "rspace":
        raise errors.NotSupported(
            f"sharing is an RSpace feature; {mounted.mountpoint} is a {mounted.remote_type} mount"
        )
    decode = _DECODERS[action]
    if mounted.control is not None:
        try:
            answer = control.call(
                mounted.control, {"op": "rspace", "action": action, "args": args}, timeout=120
            )
        except control.ControlError as exc:
            if "unknown request" not in str(exc):
                raise errors.RemoteUnavailable(
                    f"the mount at {mounted.mountpoint}: {exc}"
                ) from None
            log.debug("the mount does not share for us (%s); connecting ourselves", exc)
        else:
            if not answer.get("ok"):
                raise _error(answer)
            return decode(answer["result"])
    return _with_backend(mounted, access, redactor, lambda b: _ACTIONS[action](b, **args))


def _error(answer: Json) -> errors.DocfsError:
    """The daemon's error, as the class it raised (so the exit status is the same)."""
    cls = getattr(errors, str(answer.get("kind")), None)
    if not (isinstance(cls, type) and issubclass(cls, errors.DocfsError)):
        cls = errors.DocfsError
    return cls(str(answer.get("error", "the mount failed to do it")))


async def serve_control(backend: object, request: Json) -> Json:
    """The daemon's side of ``{"op": "rspace"}``: run the action with the mount's own backend
    (logged in already) and answer its result as JSON, or the error with its class name."""
    action = request.get("action")
    args = request.get("args")
    if action not in _ACTIONS:
        return {"ok": False, "kind": "InvalidArgument", "error": f"no sharing action {action!r}"}
    if not isinstance(args, dict):
        return {"ok": False, "kind": "InvalidArgument", "error": f"bad arguments for {action}"}
    if not isinstance(backend, RSpaceBackend):
        return {"ok": False, "kind": "NotSupported", "error": "sharing is an RSpace feature"}
    work = _ACTIONS[action]
    try:
        # checked before the call: a TypeError from inside the work is a bug, not bad input
        inspect.signature(work).bind(backend, **args)
    except TypeError:
        return {"ok": False, "kind": "InvalidArgument", "error": f"bad arguments for {action}"}
    try:
        result = await work(backend, **args)
    except errors.DocfsError as exc:
        return {"ok": False, "kind": type(exc).__name__, "error": str(exc)}
    return {"ok": True, "result": _encode(result)}


# ---- results as JSON (the control socket carries them) --------------------------------------


def _entry_json(entry: Entry) -> Json:
    return {
        "id": entry.id,
        "name": entry.name,
        "kind": entry.kind.value,
        "extra": dict(entry.extra),
    }


def _entry(data: Json) -> Entry:
    return Entry(
        id=str(data["id"]),
        name=str(data["name"]),
        kind=Kind(data["kind"]),
        size=None,
        mtime=None,
        version="",
        extra={str(k): str(v) for k, v in dict(data.get("extra") or {}).items()},
    )


def _share_json(share: ShareInfo) -> Json:
    return dataclasses.asdict(share)


def _names_json(names: dict[tuple[str, int], str]) -> list[Any]:
    return [[kind, ident, label] for (kind, ident), label in names.items()]


def _names_of(data: list[Any]) -> dict[tuple[str, int], str]:
    return {(str(kind), int(ident)): str(label) for kind, ident, label in data}


def _encode(result: object) -> Json:
    if isinstance(result, Shared):
        return {
            "item": _entry_json(result.item),
            "shares": [_share_json(s) for s in result.result.shares],
            "failed": list(result.result.failed),
            "missing": list(result.missing),
            "already": list(result.already),
            "names": _names_json(result.names),
        }
    if isinstance(result, Unshared):
        return {
            "item": _entry_json(result.item),
            "removed": [_share_json(s) for s in result.removed],
            "names": _names_json(result.names),
        }
    if isinstance(result, Listing):
        return {
            "item": _entry_json(result.item) if result.item is not None else None,
            "shares": [_share_json(s) for s in result.shares],
            "names": _names_json(result.names),
        }
    assert isinstance(result, Entry)
    return _entry_json(result)


def _decode_shared(data: Json) -> Shared:
    return Shared(
        item=_entry(data["item"]),
        result=ShareResult(
            shares=tuple(ShareInfo(**s) for s in data["shares"]),
            failed=tuple(int(i) for i in data["failed"]),
        ),
        missing=tuple(data["missing"]),
        names=_names_of(data["names"]),
        already=tuple(data["already"]),
    )


def _decode_unshared(data: Json) -> Unshared:
    return Unshared(
        item=_entry(data["item"]),
        removed=[ShareInfo(**s) for s in data["removed"]],
        names=_names_of(data["names"]),
    )


def _decode_listing(data: Json) -> Listing:
    return Listing(
        item=_entry(data["item"]) if data["item"] is not None else None,
        shares=[ShareInfo(**s) for s in data["shares"]],
        names=_names_of(data["names"]),
    )


def refresh(mounted: Mounted, directory: Path) -> None:
    """Ask the mount to forget its listings at and below ``directory`` (best effort)."""
    if mounted.control is None:
        return
    inside = "/" + str(directory.relative_to(mounted.mountpoint)).strip(".").strip("/")
    try:
        control.call(mounted.control, {"op": "refresh", "path": inside})
    except control.ControlError as exc:
        log.warning("the mount did not refresh %s: %s", inside, exc)


# ---- what the commands do ------------------------------------------------------------------


def _check_shareable(item: Entry, path: Path | None, hint: str = "") -> None:
    if item.extra.get("type") not in ("DOCUMENT", "NOTEBOOK"):
        raise errors.NotSupported(
            f"{path}: RSpace shares documents and notebooks only, not folders or files{hint}"
        )


def _names(groups: Sequence[Group]) -> dict[tuple[str, int], str]:
    names = {("GROUP", g.id): f"group {g.name!r} (GP{g.id})" for g in groups}
    for g in groups:
        for uid, username, _ in g.members:
            names[("USER", uid)] = f"user {username!r}"
    return names


def _label(names: dict[tuple[str, int], str], kind: str, ident: int) -> str:
    return names.get((kind, ident), f"{kind.lower()} {ident}")


def _wanted(
    groups: Sequence[Group], group_specs: Sequence[str], users: Sequence[str]
) -> list[tuple[str, int]]:
    """The targets a ``share`` asks for, resolved the way the backend resolves them."""
    targets = [("GROUP", RSpaceBackend.pick_group(groups, spec).id) for spec in group_specs]
    for username in users:
        # the backend refuses unknown and ambiguous names; this only finds the known ones
        ids = {uid for g in groups for uid, name, _ in g.members if name == username}
        targets.extend(("USER", uid) for uid in sorted(ids))
    return targets


@dataclass(frozen=True)
class Shared:
    item: Entry
    result: ShareResult
    #: the targets asked for that got no share (refused)
    missing: tuple[str, ...]
    names: dict[tuple[str, int], str]
    #: the targets it was shared with already, with the permission asked for: nothing to do
    already: tuple[str, ...] = ()


async def do_share(
    backend: RSpaceBackend,
    *,
    item_id: str,
    path: str,
    groups: Sequence[str],
    users: Sequence[str],
    permission: str,
    folder_id: str | None,
    folder: str | None,
) -> Shared:
    item = await backend.entry_by_id(item_id)
    _check_shareable(item, Path(path))
    target_folder = await backend.entry_by_id(folder_id) if folder_id else None
    if target_folder is not None and target_folder.extra.get("type") != "FOLDER":
        raise errors.InvalidArgument(f"--folder {folder}: not a Workspace folder")
    known = await backend.groups()
    names = _names(known)
    wanted = _wanted(known, groups, users)
    existing = {(s.target_type, s.target_id): s for s in [s async for s in backend.shares(item)]}
    same = [t for t in wanted if t in existing and existing[t].permission == permission.upper()]
    for target in wanted:
        if target in existing and target not in same:
            raise errors.InvalidArgument(
                f"{item.name!r} is shared with {_label(names, *target)} as "
                f"{existing[target].permission.lower()} already: unshare it first to make it "
                f"{permission}"
            )
    # RSpace refuses (401) a share that exists: ask only for the new ones
    new_groups = [g for g in groups if ("GROUP", backend.pick_group(known, g).id) not in same]
    new_users = [u for u in users if not any(t in same for t in _wanted(known, (), [u]))]
    if new_groups or new_users:
        result = await backend.share(
            item, groups=new_groups, users=new_users, permission=permission, folder=target_folder
        )
    else:
        result = ShareResult(shares=(), failed=())
    made = {(s.target_type, s.target_id) for s in result.shares}
    missing = tuple(_label(names, *t) for t in wanted if t not in made and t not in same)
    already = tuple(_label(names, *t) for t in same)
    return Shared(item, result, missing, names, already)


def share(
    path: Path,
    *,
    groups: Sequence[str] = (),
    users: Sequence[str] = (),
    permission: str = "read",
    folder: Path | None = None,
    access: Access | None = None,
    redactor: Redactor | None = None,
) -> Shared:
    """Share the document or notebook at ``path``; ``folder`` is a group's shared folder."""
    if not groups and not users:
        raise errors.InvalidArgument("share with at least one --group or --user")
    mounted = locate(path)
    item_id = remote_id(path)
    folder_id = remote_id(folder) if folder is not None else None
    if folder is not None and locate(folder).mountpoint != mounted.mountpoint:
        raise errors.InvalidArgument(f"{folder} is not in the same mount as {path}")
    args = {
        "item_id": item_id,
        "path": str(path),
        "groups": list(groups),
        "users": list(users),
        "permission": permission,
        "folder_id": folder_id,
        "folder": str(folder) if folder is not None else None,
    }
    shared: Shared = _run(mounted, access or Access(), redactor or Redactor(), "share", args)
    refresh(mounted, mounted.path.parent)
    return shared


@dataclass(frozen=True)
class Unshared:
    item: Entry
    removed: list[ShareInfo]
    names: dict[tuple[str, int], str]


def unshare(
    path: Path,
    *,
    groups: Sequence[str] = (),
    users: Sequence[str] = (),
    access: Access | None = None,
    redactor: Redactor | None = None,
) -> Unshared:
    """Remove the shares of the item at ``path`` (with these groups/users only, if given)."""
    mounted = locate(path)
    args = {"item_id": remote_id(path), "path": str(path), "groups": groups, "users": users}
    outcome: Unshared = _run(
        mounted, access or Access(), redactor or Redactor(), "unshare", {**args}
    )
    refresh(mounted, mounted.path.parent)
    return outcome


async def do_unshare(
    backend: RSpaceBackend,
    *,
    item_id: str,
    path: str,
    groups: Sequence[str],
    users: Sequence[str],
) -> Unshared:
    item = await backend.entry_by_id(item_id)
    _check_shareable(item, Path(path))
    removed = await backend.unshare(item, groups=groups, users=users)
    return Unshared(item, removed, _names(await backend.groups()) if removed else {})


@dataclass(frozen=True)
class Listing:
    #: the document or notebook asked about; None: every share of the user
    item: Entry | None
    shares: list[ShareInfo]
    names: dict[tuple[str, int], str]


def shares(
    path: Path | None = None, *, access: Access | None = None, redactor: Redactor | None = None
) -> Listing:
    """The shares of the item at ``path``; all the user's shares for a mount point or no path."""
    if path is None:
        # every share of the user of the mount we are in, or of the only RSpace mount
        try:
            mounted = locate(Path.cwd())
        except errors.NotFound:
            mounted = only_rspace_mount()
        item_id = None
    else:
        mounted = locate(path)
        item_id = None if mounted.path == mounted.mountpoint else remote_id(path)

    args = {"item_id": item_id, "path": str(path), "mountpoint": str(mounted.mountpoint)}
    listing: Listing = _run(mounted, access or Access(), redactor or Redactor(), "shares", args)
    return listing


async def do_shares(
    backend: RSpaceBackend, *, item_id: str | None, path: str, mountpoint: str
) -> Listing:
    item = await backend.entry_by_id(item_id) if item_id else None
    if item is not None:
        _check_shareable(item, Path(path), f" (or the mount point {mountpoint} for all)")
    found = [s async for s in backend.shares(item)]
    return Listing(item, found, _names(await backend.groups()) if found else {})


def make_notebook(
    path: Path, *, access: Access | None = None, redactor: Redactor | None = None
) -> Entry:
    """A new notebook at ``path`` (its parent: a Workspace folder of the mount)."""
    if os.path.lexists(path):
        raise errors.AlreadyExists(f"{path} already exists")
    parent = path.parent
    mounted = locate(parent)
    parent_id = remote_id(parent)
    # the name as the mount would send it (a visible substitute for '/' turns back into '/')
    name = restore(path.name)

    args = {"parent_id": parent_id, "name": name}
    notebook: Entry = _run(mounted, access or Access(), redactor or Redactor(), "notebook", args)
    refresh(mounted, mounted.path)
    return notebook


async def do_notebook(backend: RSpaceBackend, *, parent_id: str, name: str) -> Entry:
    return await backend.mkdir_notebook(await backend.entry_by_id(parent_id), name)


#: what ``{"op": "rspace", "action": …}`` runs, and how its JSON answer is read back
_ACTIONS: dict[str, Callable[..., Awaitable[Any]]] = {
    "share": do_share,
    "unshare": do_unshare,
    "shares": do_shares,
    "notebook": do_notebook,
}
_DECODERS: dict[str, Callable[[Any], Any]] = {
    "share": _decode_shared,
    "unshare": _decode_unshared,
    "shares": _decode_listing,
    "notebook": _entry,
}


# ---- the commands --------------------------------------------------------------------------


def _access(args: argparse.Namespace) -> Access:
    return Access(getattr(args, "credentials_file", None), getattr(args, "config", None))


def _item(entry: Entry) -> str:
    return f"{entry.name!r} ({entry.id})"


def cmd_share(args: argparse.Namespace, redactor: Redactor) -> int:
    done = share(
        Path(args.path),
        groups=args.group or (),
        users=args.user or (),
        permission=args.permission,
        folder=Path(args.folder) if args.folder else None,
        access=_access(args),
        redactor=redactor,
    )
    for s in done.result.shares:
        who = _label(done.names, s.target_type, s.target_id)
        print(f"shared {_item(done.item)} with {who}, {s.permission.lower()} (share {s.id})")
    for target in done.already:
        print(f"{_item(done.item)} is already shared with {target}, {args.permission}")
    for target in done.missing:
        print(
            f"docfs: could not share {_item(done.item)} with {target}: RSpace refused "
            "(not allowed)",
            file=sys.stderr,
        )
    if done.result.failed and not done.missing:
        failed = ", ".join(str(i) for i in done.result.failed)
        print(f"docfs: RSpace could not share item(s) {failed}", file=sys.stderr)
    return 1 if done.missing or done.result.failed else 0


def cmd_unshare(args: argparse.Namespace, redactor: Redactor) -> int:
    done = unshare(
        Path(args.path),
        groups=args.group or (),
        users=args.user or (),
        access=_access(args),
        redactor=redactor,
    )
    for s in done.removed:
        who = _label(done.names, s.target_type, s.target_id)
        print(f"unshared {_item(done.item)} from {who} (share {s.id})")
    if not done.removed:
        asked = " with those groups or users" if args.group or args.user else ""
        # nothing left to remove is the state asked for: not a failure
        print(f"docfs: {_item(done.item)} was not shared{asked}", file=sys.stderr)
    return 0


def cmd_shares(args: argparse.Namespace, redactor: Redactor) -> int:
    listing = shares(
        Path(args.path) if args.path else None, access=_access(args), redactor=redactor
    )
    if not listing.shares:
        print(
            "nothing is shared" if listing.item is None else f"{_item(listing.item)} is not shared"
        )
        return 0
    rows = [
        (
            str(s.id),
            s.permission.lower(),
            _label(listing.names, s.target_type, s.target_id),
            f"{s.item_name!r} ({s.item_id})",
        )
        for s in listing.shares
    ]
    header = ("SHARE", "PERMISSION", "WITH", "ITEM")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(3)]
    for row in [header, *rows]:
        print("  ".join(c.ljust(w) for c, w in zip(row[:3], widths, strict=True)) + "  " + row[3])
    return 0


def cmd_mkdir(args: argparse.Namespace, redactor: Redactor) -> int:
    path = Path(args.path)
    if not args.notebook:
        # a folder (or, in a notebook, a new entry) is an ordinary mkdir through the mount
        try:
            path.mkdir()
        except OSError as exc:
            print(f"docfs: cannot create {path}: {exc.strerror}", file=sys.stderr)
            return 1
        return 0
    notebook = make_notebook(path, access=_access(args), redactor=redactor)
    print(f"created notebook {path} ({notebook.id})")
    return 0


def register(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
    parents: Sequence[argparse.ArgumentParser] = (),
) -> None:
    """Add ``share``, ``unshare``, ``shares`` and ``mkdir`` to the ``docfs`` command."""
    creds_help = (
        'only when the mount does not answer (an older docfs): file with token = "…" (or '
        "user/password) (default: as the mount: DOCFS_TOKEN… for rspace:URL, the configuration "
        "for a named remote)"
    )
    targets_help = "a group: its name, unique name, GP id or number (repeatable)"

    p = subparsers.add_parser(
        "share",
        parents=list(parents),
        help="share a mounted RSpace document or notebook",
        description="Share the document or notebook at PATH (inside an RSpace mount) with "
        "groups and users.",
    )
    p.add_argument("path", help="a document or notebook inside an RSpace mount")
    p.add_argument("--group", action="append", metavar="NAME|ID", help=targets_help)
    p.add_argument("--user", action="append", metavar="NAME", help="a member of one of your groups")
    p.add_argument("--permission", choices=("read", "edit"), default="read")
    p.add_argument(
        "--folder", metavar="PATH", help="the group's shared folder (or a sub-folder) to share into"
    )
    p.add_argument("--credentials-file", type=Path, help=creds_help)
    p.set_defaults(func=cmd_share)

    p = subparsers.add_parser(
        "unshare",
        parents=list(parents),
        help="remove the shares of a mounted RSpace document or notebook",
    )
    p.add_argument("path")
    p.add_argument("--group", action="append", metavar="NAME|ID", help="only with this group")
    p.add_argument("--user", action="append", metavar="NAME", help="only with this user")
    p.add_argument("--credentials-file", type=Path, help=creds_help)
    p.set_defaults(func=cmd_unshare)

    p = subparsers.add_parser(
        "shares",
        parents=list(parents),
        help="list RSpace shares: of one document or notebook, or all of them",
    )
    p.add_argument(
        "path",
        nargs="?",
        help="a document or notebook; the mount point (or nothing) lists every share",
    )
    p.add_argument("--credentials-file", type=Path, help=creds_help)
    p.set_defaults(func=cmd_shares)

    p = subparsers.add_parser(
        "mkdir",
        parents=list(parents),
        help="make a directory in a mount; --notebook makes an RSpace notebook",
    )
    p.add_argument("path")
    p.add_argument(
        "--notebook", action="store_true", help="a notebook (in an RSpace Workspace folder)"
    )
    p.add_argument("--credentials-file", type=Path, help=creds_help)
    p.set_defaults(func=cmd_mkdir)
