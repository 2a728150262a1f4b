"""What to mount: the source (``NAME[:/sub/path]`` or ``TYPE:URL``), its credentials, the mount
point, and every option resolved (command line, then configuration, then ``docfs.options``)."""

from __future__ import annotations

import argparse
import difflib
import errno
import logging
import os
import re
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import trio

from docfs import config, errors, registry
from docfs.backends.base import Credentials
from docfs.commands.common import UsageError, pick
from docfs.daemon import MountConfig, default_cache_dir
from docfs.options import OPTIONS, default
from docfs.registry import REMOTE_TYPES, families, remote_type, type_options
from docfs.vfs.filesystem import Options

log = logging.getLogger("docfs")


def _toml_credentials(path: Path, text: str) -> dict[str, str] | None:
    """The file read as TOML (``user = "me"``), the format of the configuration; None when it
    is not TOML made of strings, i.e. the older ``key = value`` lines (where ``password =
    123456`` is the text "123456", not a TOML number)."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        return None
    if not all(isinstance(value, str) for value in data.values()):
        return None
    for key in data:
        if key not in ("user", "password", "token"):
            hint = difflib.get_close_matches(key, ["user", "password", "token"], n=1)
            also = f"; did you mean {hint[0]!r}?" if hint else ""
            raise UsageError(f"{path}: unknown key {key!r} (known: user, password, token){also}")
    return dict(data)


def read_credentials(path: Path | None, *, use_env: bool = True) -> Credentials:
    """Credentials from ``path`` (TOML, or the older ``key = value`` lines) or the
    environment."""
    values = {
        "user": os.environ.get("DOCFS_USER") if use_env else None,
        "password": os.environ.get("DOCFS_PASSWORD") if use_env else None,
        "token": os.environ.get("DOCFS_TOKEN") if use_env else None,
    }
    if path is not None:
        try:
            text = path.read_text()
            mode = path.stat().st_mode
        except OSError as exc:
            raise UsageError(f"cannot read credentials file {path}: {exc.strerror}") from None
        toml = _toml_credentials(path, text)
        if toml is not None and mode & 0o077 and ({"password", "token"} & toml.keys()):
            raise UsageError(f"{path} is readable by group or others; chmod 600 {path}")
        values.update(toml or {})
        for number, line in enumerate([] if toml is not None else text.splitlines(), 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            key, sep, value = line.partition("=")
            key = key.strip().lower()
            if not sep or key not in values:
                raise UsageError(
                    f"{path}:{number}: expected 'user = …', 'password = …' or 'token = …'"
                )
            values[key] = value.strip()
            if key != "user" and mode & 0o077:
                # a secret others can read is no secret: refuse before it is ever used
                raise UsageError(f"{path} is readable by group or others; chmod 600 {path}")
    if values["user"] and not values["password"] and not values["token"]:
        # a login name alone would mount anonymously without a word: the user meant to log in
        where = f"{path}" if path is not None and "user" in text else "DOCFS_USER"
        raise UsageError(
            f"{where} names a user but no password or token is given: set DOCFS_PASSWORD "
            "(read -rs DOCFS_PASSWORD; export DOCFS_PASSWORD) or a 'password = …' line in "
            "--credentials-file, or unset DOCFS_USER to mount anonymously"
        )
    return Credentials(values["user"], values["password"], values["token"])


_INLINE = re.compile(r"[A-Za-z0-9_]+:https?://")  # also "FAMILY:URL" (detected)


def is_inline(source: str) -> bool:
    """``TYPE:URL`` (as opposed to ``NAME[:/sub/path]`` of a configured remote)."""
    return _INLINE.match(source) is not None


def source_mistake(source: str) -> str | None:
    """What is wrong with a mount source that looks like a mistyped ``TYPE:URL``, if anything."""
    types = sorted(REMOTE_TYPES)
    if source.startswith(("http://", "https://")):
        detect = "".join(
            f" (or {family}:{source} to detect {registry.family_label(family)}; "
            f"`docfs detect {source}` tells)"
            for family in families()
        )
        return (
            f"{source!r} is a URL without its repository type: give it as "
            f"TYPE:{source} with TYPE one of {', '.join(types)}{detect}"
        )
    kind, sep, rest = source.partition(":")
    if not sep or rest.startswith("/"):
        return None  # NAME or NAME:/sub/path
    if kind in REMOTE_TYPES or kind in families():
        if not rest.startswith(("http://", "https://")):
            return f"remote {source!r}: the URL must start with http:// or https://"
        return None
    if rest.startswith(("http://", "https://")) or "//" in rest:
        hint = difflib.get_close_matches(kind, [*types, *families()], n=1)
        also = f"; did you mean {hint[0]!r}?" if hint else ""
        return f"unknown repository type {kind!r} (known: {', '.join(types)}){also}"
    return None


def parse_remote(text: str) -> tuple[str, str]:
    mistake = source_mistake(text)
    if mistake is not None:
        raise UsageError(mistake)
    kind, sep, url = text.partition(":")
    if not sep or not url.startswith(("http://", "https://")):
        raise UsageError(f"remote {text!r}: expected TYPE:URL, e.g. {registry.example()}")
    if kind in families():
        # "FAMILY:URL": ask the server which member of the family it is
        from docfs.detect import detect

        try:
            return trio.run(detect, kind, url)
        except errors.DocfsError as exc:
            raise UsageError(str(exc)) from None
    try:
        remote_type(kind)
    except KeyError as exc:
        raise UsageError(str(exc.args[0])) from None
    return kind, url


def remote_kind(remote: config.Remote) -> tuple[str, str]:
    """A configured remote's type and URL; a family's name (``type = FAMILY``) is detected
    as ``FAMILY:URL`` on the command line is."""
    if remote.type in families():
        return parse_remote(f"{remote.type}:{remote.url}")
    return remote.type, remote.url


def backend_options(remote: config.Remote) -> dict[str, Any]:
    """The backend's keyword arguments from the configured remote: its type's own settings
    (``docfs.remotetype.TypeOption``) and, where the backend re-reads it, the token file."""
    rtype = REMOTE_TYPES.get(remote.type)
    if rtype is None:
        return {}  # a family: the detected type's backend takes its defaults
    options: dict[str, Any] = {}
    for typed in rtype.options:
        name = typed.option.name
        if name not in remote.type_options:
            continue
        value = remote.type_options[name]
        try:
            options[typed.backend_kwarg] = typed.to_backend(value) if typed.to_backend else value
        except ValueError as exc:
            raise config.ConfigError(
                str(exc), path=remote.source, key=f"remotes.{remote.name}.{name}"
            ) from None
    token_file = config.token_file(remote) if rtype.token_file else None
    if token_file is not None:
        # a regenerated token is picked up from the file after a 401, without a restart
        options["token_file"] = token_file
    return options


def _type_flags(args: argparse.Namespace, kind: str, options: dict[str, Any]) -> dict[str, Any]:
    """The repository types' own flags given on the command line (``docfs.remotetype``), as
    the backend's keyword arguments; a flag of another type is a usage error."""
    result = dict(options)
    for rtype, typed in type_options():
        option = typed.option
        value = getattr(args, option.dest, None) if option.dest else None
        if value is None or value is False:
            continue
        owners = registry.option_owners(option.name)
        if kind not in {t.name for t in owners}:
            labels = " and ".join(t.label for t in owners)
            raise UsageError(f"{option.flag} is an option of {labels} remotes")
        if rtype.name == kind:
            try:
                converted = typed.to_backend(value) if typed.to_backend else value
            except ValueError as exc:
                raise UsageError(f"{option.flag}: {exc}") from None
            result[typed.backend_kwarg] = converted
    return result


def _given(args: argparse.Namespace, remote: config.Remote, name: str) -> Any:
    """An option's value: the command line, then the configuration, then the table's default."""
    option = OPTIONS[name]
    given = getattr(args, option.dest, None) if option.dest else None
    if given is not None and option.negated:
        given = False if given else None  # --no-thumbnails: off; absent: not said
    configured = getattr(remote, name, None) if option.config else None
    return pick(given, configured, default(name))


def clear_stale_mount(mountpoint: Path) -> Path:
    """A mount point left by a killed daemon answers ENOTCONN: unmount it and go on."""
    try:
        # statfs always reaches the filesystem; stat may be answered from the kernel's cache
        os.statvfs(mountpoint)
    except OSError as exc:
        if exc.errno != errno.ENOTCONN:
            return mountpoint.resolve()
        log.warning("%s is a stale mount left by a stopped daemon: unmounting it", mountpoint)
        subprocess.run(
            ["fusermount3", "-u", "-z", str(mountpoint)], capture_output=True, check=False
        )
    return mountpoint.resolve()


def mounted_filesystem(path: Path, mountinfo: Path = Path("/proc/self/mountinfo")) -> str | None:
    """The type of the file system mounted at ``path`` (``fuse.docfs``…), or None."""
    try:
        lines = mountinfo.read_text().splitlines()
    except OSError:
        return None
    found = None
    for line in lines:
        fields = line.split(" ")
        if len(fields) < 10 or "-" not in fields:
            continue
        target = fields[4].replace("\\040", " ").replace("\\011", "\t").replace("\\134", "\\")
        if target == str(path):
            found = fields[fields.index("-") + 1]  # the last one mounted there is the visible one
    return found


def mountpoint_problem(mountpoint: Path, *, allow_non_empty: bool) -> str | None:
    """Why mounting at ``mountpoint`` would hide something, or None."""
    kind = mounted_filesystem(mountpoint)
    if kind is not None and kind.startswith("fuse.docfs"):
        return (
            f"{mountpoint} is already a docfs mount: unmount it first (docfs unmount "
            f"{mountpoint}); docfs status lists what is mounted"
        )
    if not allow_non_empty:
        try:
            with os.scandir(mountpoint) as entries:
                occupied = any(True for _ in entries)
        except OSError:
            occupied = False
        if occupied:
            return (
                f"mount point {mountpoint} is not empty: its files would be hidden while the "
                "mount lasts; give an empty directory, or --allow-non-empty (-o nonempty) to "
                "mount over them anyway"
            )
    return None


def mount_config(args: argparse.Namespace) -> MountConfig:
    source: str = args.remote
    remote: config.Remote | None = None
    sub_path: str | None = None
    mistake = source_mistake(source)
    if mistake is not None:
        raise UsageError(mistake)
    if is_inline(source):
        kind, url = parse_remote(source)
        credentials = read_credentials(args.credentials_file)
    else:
        name, sub_path = config.split_source(source)
        remote = config.load(args.config, explicit=args.config is not None).remote(name)
        kind, url = remote_kind(remote)
        # a named remote never takes DOCFS_* from the environment: they may belong to another
        credentials = (
            read_credentials(args.credentials_file, use_env=False)
            if args.credentials_file
            else config.credentials(remote)
        )
        if credentials.user is None and remote.user is not None:
            credentials = Credentials(remote.user, credentials.password, credentials.token)
    mountpoint = clear_stale_mount(Path(args.mountpoint).absolute())
    if not mountpoint.is_dir():
        raise UsageError(f"mount point {mountpoint} is not a directory")
    problem = mountpoint_problem(mountpoint, allow_non_empty=args.allow_non_empty)
    if problem is not None:
        raise UsageError(problem)
    r = remote or config.Remote(name="", type=kind, url=url)
    rpm = _given(args, r, "requests_per_minute")
    return MountConfig(
        remote_type=kind,
        url=url,
        mountpoint=mountpoint,
        credentials=credentials,
        cache_dir=pick(_given(args, r, "cache_dir"), default_cache_dir()),
        cache_size=_given(args, r, "cache_size"),
        cache_max_age=_given(args, r, "cache_max_age"),
        cache_min_free=_given(args, r, "cache_min_free"),
        options=Options(
            read_only=bool(_given(args, r, "read_only")),
            direct_io=bool(_given(args, r, "direct_io")),
            metadata_files=bool(_given(args, r, "metadata_files")),
            thumbnail_max=_given(args, r, "thumbnail_max"),
            thumbnailers=_given(args, r, "thumbnailers"),
            file_managers=_given(args, r, "file_managers"),
            dir_cache_time=_given(args, r, "dir_cache_time"),
            write_back=_given(args, r, "write_back"),
            transfers=_given(args, r, "transfers"),
            search_limit=_given(args, r, "search_limit"),
            uid=pick(_given(args, r, "uid"), os.getuid()),
            gid=pick(_given(args, r, "gid"), os.getgid()),
            pin_size=_given(args, r, "pin_size"),
        ),
        timeout=_given(args, r, "timeout"),
        concurrency=_given(args, r, "concurrency"),
        requests_per_second=rpm / 60 if rpm else None,
        sub_path=sub_path,
        name=remote.name if remote is not None else None,
        allow_other=bool(_given(args, r, "allow_other")),
        verify_tls=not _given(args, r, "insecure"),
        ca_bundle=_given(args, r, "ca_bundle"),
        fuse_options=frozenset(args.kernel_option or ()),
        read_ahead=_given(args, r, "read_ahead"),
        thumbnails=bool(_given(args, r, "thumbnails")),
        bwlimit=_given(args, r, "bwlimit") or None,
        backend_options=_type_flags(
            args, kind, backend_options(remote) if remote is not None else {}
        ),
    )
