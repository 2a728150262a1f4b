"""The ``docfs`` command: mount, unmount, status, sync, refresh, remotes, demo, emulate.

Secrets never come from the command line (argv is visible to every user via ``ps``): they come
from the configuration's secret sources, ``DOCFS_USER`` / ``DOCFS_PASSWORD`` / ``DOCFS_TOKEN``
or a ``--credentials-file``. Every expected failure ends as one clear line on stderr and a
non-zero exit status, not a traceback.

``docfs SOURCE MOUNTPOINT -o OPTIONS`` (no command word) is the call form of ``mount.fuse3``,
which ``mount -t fuse.docfs`` and ``/etc/fstab`` lines use: it mounts like ``docfs mount`` and
detaches once the mount is ready (like sshfs), unless ``-f`` is given.
"""

from __future__ import annotations

import argparse
import contextlib
import difflib
import errno
import gc
import json
import logging
import logging.handlers
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import trio

from docfs import __version__, completion, config, control, errors, registry
from docfs.backends.base import Credentials
from docfs.daemon import (
    PRIVATE_UMASK,
    MountConfig,
    build_backend,
    connect_backend,
    control_socket,
    default_cache_dir,
    fuse_problem,
    resolve_root,
    runtime_dir,
    serve,
    state_file,
)
from docfs.options import MOUNT_OPTIONS, OPTIONS, Option, default, parse_cli
from docfs.redact import Redactor
from docfs.registry import REMOTE_TYPES, families, remote_type, type_options
from docfs.remotetype import load
from docfs.vfs.filesystem import Options

if TYPE_CHECKING:
    from docfs.emulators.base import EmulatorServer
    from docfs.emulators.launch import Account

log = logging.getLogger("docfs")

READY_FD_ENV = "DOCFS_READY_FD"
LEVELS = ["debug", "info", "warning", "error"]
COMMANDS = config.COMMAND_WORDS


#: exit statuses a service manager can tell apart (systemd ``RestartPreventExitStatus=``): a
#: mistake in the command line or configuration, and a refused login, are not cured by restarting
EXIT_USAGE = 2
EXIT_AUTH = 77  # sysexits.h EX_NOPERM


class UsageError(Exception):
    """A mistake in the command line or configuration; printed without a traceback."""


def parse_size(text: str) -> int:
    try:
        return config.parse_size(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def argument_type(option: Option) -> Callable[[str], Any]:
    """An argparse type checking a value with the option's rule (``docfs.options``):
    ``--timeout -3`` is a usage error naming the option, not a traceback from deep inside."""

    def check(text: str) -> Any:
        try:
            return parse_cli(option, text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return check


def number(minimum: float, *, exclusive: bool = False) -> Callable[[str], float]:
    """An argparse type for a number of at least (or, ``exclusive``, more than) ``minimum``."""
    return argument_type(Option("", "number", "", minimum=minimum, exclusive=exclusive))


def whole(minimum: int, maximum: int | None = None) -> Callable[[str], int]:
    """An argparse type for a whole number in ``[minimum, maximum]``."""
    return argument_type(Option("", "whole", "", minimum=minimum, maximum=maximum))


# ---- logging -------------------------------------------------------------------------------

#: syslog priorities, which journald reads from a ``<N>`` prefix on each line
_PRIORITY = {logging.DEBUG: 7, logging.INFO: 6, logging.WARNING: 4, logging.ERROR: 3}


class JournalFormatter(logging.Formatter):
    """``<6>docfs.vfs: message``: journald adds the time and turns ``<N>`` into the priority."""

    def format(self, record: logging.LogRecord) -> str:
        priority = _PRIORITY.get(record.levelno, 2 if record.levelno > logging.ERROR else 6)
        text = super().format(record)
        # a traceback spans lines; each becomes its own journal entry of the same priority
        return "\n".join(f"<{priority}>{line}" for line in text.splitlines())


def under_journal(env: Mapping[str, str], stream: Any) -> bool:
    """True if ``stream`` goes to journald (which stamps each line itself).

    ``JOURNAL_STREAM`` names the device and inode of the journal socket; it is inherited by
    children whose stderr went elsewhere, so it counts only if it is really our stream. Without
    it, ``INVOCATION_ID`` says systemd started us, whose default for output is the journal.
    """
    journal = env.get("JOURNAL_STREAM")
    if journal:
        try:
            device, inode = (int(x) for x in journal.split(":"))
            info = os.fstat(stream.fileno())
        except (ValueError, OSError, AttributeError):
            return False
        return (info.st_dev, info.st_ino) == (device, inode)
    return bool(env.get("INVOCATION_ID"))


def logger_name(module: str) -> str:
    """``-v http`` → ``docfs.http``; full names (``docfs.vfs``, ``httpx``) stay as they are."""
    if module in ("httpx", "httpcore") or module.startswith(("docfs", "httpx.", "httpcore.")):
        return module
    return f"docfs.{module}"


def check_verbose(modules: Sequence[str]) -> None:
    """Refuse ``-v NAME`` where no logger is called NAME (a typo would silently log nothing)."""
    if not modules:
        return
    import importlib
    import pkgutil

    import docfs

    # the loggers exist once their modules are imported; the emulators are not part of a mount
    for info in pkgutil.walk_packages(docfs.__path__, "docfs."):
        if not info.name.startswith(("docfs.emulators", "docfs.__main__")):
            with contextlib.suppress(ImportError):
                importlib.import_module(info.name)
    known = {"httpx", "httpcore", *logging.root.manager.loggerDict}
    for module in modules:
        name = logger_name(module)
        if any(k == name or k.startswith(name + ".") for k in known):
            continue
        short = sorted(k.removeprefix("docfs.") for k in known if k.startswith("docfs."))
        hint = difflib.get_close_matches(module, short, n=1)
        also = f"; did you mean {hint[0]!r}?" if hint else f" (known: {', '.join(short)})"
        raise UsageError(f"-v {module}: no such module{also}")


def setup_logging(
    level: str,
    redactor: Redactor,
    stream: IO[str] | None = None,
    *,
    log_file: Path | None = None,
    verbose: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
) -> None:
    env = os.environ if env is None else env
    handler: logging.Handler
    stamped = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    if log_file is not None:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        # the log names every file read and written: the user's alone, whatever the umask
        os.close(os.open(log_file, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600))
        with contextlib.suppress(OSError):
            if log_file.stat().st_uid == os.getuid():
                log_file.chmod(0o600)
        # WatchedFileHandler reopens the file after logrotate moved it away
        handler = logging.handlers.WatchedFileHandler(log_file)
        handler.setFormatter(stamped)
    else:
        out = stream or sys.stderr
        handler = logging.StreamHandler(out)
        journal = under_journal(env, out)
        handler.setFormatter(JournalFormatter("%(name)s: %(message)s") if journal else stamped)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # httpx logs every request at INFO and httpcore traces every header at DEBUG; ours are enough
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("httpcore").setLevel(logging.WARNING)
    for module in verbose:
        logging.getLogger(logger_name(module)).setLevel(logging.DEBUG)
    redactor.install(root)


# ---- what to mount -------------------------------------------------------------------------


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


def _pick(*values: Any) -> Any:
    """The first value that is set: command line, then configuration, then built-in default."""
    return next((v for v in values if v is not None), None)


def _backend_options(remote: config.Remote) -> dict[str, Any]:
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
            converted = typed.to_backend(value) if typed.to_backend else value
            result[typed.backend_kwarg] = converted
    return result


def _given(args: argparse.Namespace, remote: config.Remote, name: str) -> Any:
    """An option's value: the command line, then the configuration, then the table's default."""
    option = OPTIONS[name]
    given = getattr(args, option.dest, None) if option.dest else None
    if given is not None and option.negated:
        given = False if given else None  # --no-thumbnails: off; absent: not said
    configured = getattr(remote, name, None) if option.config else None
    return _pick(given, configured, default(name))


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
    rpm = r.requests_per_minute
    return MountConfig(
        remote_type=kind,
        url=url,
        mountpoint=mountpoint,
        credentials=credentials,
        cache_dir=_pick(_given(args, r, "cache_dir"), default_cache_dir()),
        cache_size=_given(args, r, "cache_size"),
        options=Options(
            read_only=bool(_given(args, r, "read_only")),
            direct_io=bool(_given(args, r, "direct_io")),
            thumbnail_max=_given(args, r, "thumbnail_max"),
            thumbnailers=_given(args, r, "thumbnailers"),
            file_managers=_given(args, r, "file_managers"),
            dir_cache_time=_given(args, r, "dir_cache_time"),
            write_back=_given(args, r, "write_back"),
            transfers=_given(args, r, "transfers"),
            uid=_pick(_given(args, r, "uid"), os.getuid()),
            gid=_pick(_given(args, r, "gid"), os.getgid()),
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
        backend_options=_type_flags(
            args, kind, _backend_options(remote) if remote is not None else {}
        ),
    )


# ---- the mount.fuse3 call form -------------------------------------------------------------

_ALL_OPTIONS = (*MOUNT_OPTIONS, *(o.option for _, o in type_options()))
#: ``-o`` options that map to a docfs flag or option (``docfs.options``)
_HELPER_FLAGS = {o.helper: o.flag for o in _ALL_OPTIONS if o.kind == "flag" and o.helper and o.flag}
_HELPER_VALUES = {
    o.helper.rstrip("="): o.flag for o in _ALL_OPTIONS if o.kind != "flag" and o.helper and o.flag
}
#: kernel mount flags passed on to the FUSE mount
_HELPER_KERNEL = {"noexec", "nosuid", "nodev"}
#: options for mount(8), systemd or the kernel defaults that docfs accepts and leaves alone
_HELPER_IGNORED = {
    "rw", "defaults", "_netdev", "nofail", "auto", "noauto", "user", "users", "nouser", "owner",
    "group", "dev", "suid", "exec", "atime", "noatime", "relatime", "strictatime", "nodiratime",
    "diratime", "async", "lazytime", "silent", "loud",
}  # fmt: skip
_HELPER_IGNORED_PREFIXES = ("x-", "comment=")


def mistyped_command(argv: Sequence[str]) -> str | None:
    """``docfs stauts`` / ``docfs mout R M``: a near-miss of a command that is no mount source.

    The mount-helper form ``docfs SOURCE MOUNTPOINT`` takes any first word, so a typo would be
    taken for a source; a word close to a command, without the two positional words a mount
    needs, is reported as the command it resembles.
    """
    if not argv or argv[0].startswith("-") or argv[0] in COMMANDS:
        return None
    word = argv[0]
    if ":" in word or "/" in word:
        return None
    hint = difflib.get_close_matches(word, list(COMMANDS), n=1, cutoff=0.7)
    positional = [w for w in argv[1:] if not w.startswith("-")]
    if hint and len(positional) != 1:
        return f"unknown command {word!r}; did you mean {hint[0]!r}? (see docfs --help)"
    return None


def is_helper_call(argv: Sequence[str]) -> bool:
    """``docfs SOURCE MOUNTPOINT …``: the first word is neither a command nor an option."""
    return bool(argv) and not argv[0].startswith("-") and argv[0] not in COMMANDS


def helper_argv(argv: Sequence[str]) -> list[str]:
    """Translate ``SOURCE MOUNTPOINT -o a,b=c [-f]`` into ``mount SOURCE MOUNTPOINT …``."""
    positional: list[str] = []
    options: list[str] = []
    foreground = False
    words = iter(argv)
    for word in words:
        if word == "-o":
            value = next(words, None)
            if value is None:
                raise UsageError("-o needs a list of options")
            options.append(value)
        elif word.startswith("-o"):
            options.append(word[2:])
        elif word == "-f":
            foreground = True
        elif word in ("-n", "-s", "-v"):
            continue  # mount(8) helper flags: no mtab, sloppy, verbose
        elif word.startswith("-"):
            raise UsageError(
                f"unknown flag {word!r} (usage: docfs SOURCE MOUNTPOINT [-o OPTIONS] [-f])"
            )
        else:
            positional.append(word)
    if len(positional) != 2:
        raise UsageError("usage: docfs SOURCE MOUNTPOINT [-o OPTIONS] [-f]")
    result = ["mount", *positional]
    for option in (o.strip() for group in options for o in group.split(",")):
        result += _helper_option(option)
    if not foreground:
        # mount(8) helpers say nothing on success
        result += ["--daemon", "--quiet"]
    return result


def _helper_option(option: str) -> list[str]:
    key, sep, value = option.partition("=")
    if not option or option in _HELPER_IGNORED or option.startswith(_HELPER_IGNORED_PREFIXES):
        return []
    if not sep and key in _HELPER_FLAGS:
        return [_HELPER_FLAGS[key]]
    if not sep and key in _HELPER_KERNEL:
        return ["--kernel-option", key]
    if sep and key in _HELPER_VALUES:
        return [_HELPER_VALUES[key], value]
    known = sorted([*_HELPER_FLAGS, *(f"{k}=" for k in _HELPER_VALUES), *_HELPER_KERNEL])
    raise UsageError(f"unknown mount option {option!r} (docfs knows: {', '.join(known)})")


def tune_gc() -> None:
    """Fewer cyclic-GC passes: a listing of 10,000 items allocates ~300,000 dicts and strings,
    and with Python's default (a young pass every 700 allocations, full passes that walk every
    cached node) a cold 10,000-entry ``ls -l`` cost the daemon 1.21 CPU s; with this, 1.01 s.
    Reference counting frees almost everything the daemon makes: it builds few cycles."""
    gc.freeze()  # what start-up made lives as long as the daemon
    gc.set_threshold(50_000, 20, 50)


def run_foreground(mount: MountConfig, redactor: Redactor) -> int:
    ready_fd = os.environ.pop(READY_FD_ENV, None)

    def ready() -> None:
        if ready_fd is not None:
            os.write(int(ready_fd), b"ready\n")
            os.close(int(ready_fd))

    tune_gc()
    # the daemon's cache, queue, log and runtime files are the user's alone (issue 18.4)
    os.umask(PRIVATE_UMASK)
    try:
        trio.run(serve, mount, redactor, ready)
    except errors.AuthenticationFailed as exc:
        log.error("%s", exc)
        return EXIT_AUTH
    except errors.DocfsError as exc:
        log.error("%s", exc)
        return 1
    return 0


def run_daemon(args: argparse.Namespace, mount: MountConfig) -> int:
    """Start a detached copy of this command and return once its mount is ready."""
    read_end, write_end = os.pipe()
    log_path = args.log_file or mount.cache_dir / mount.log_name
    # the cache directory and the log are the user's alone (issue 18.4); this process may be
    # a caller's (tests run the CLI in-process), so its umask is given back
    umask = os.umask(PRIVATE_UMASK)
    try:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        os.close(os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600))
    finally:
        os.umask(umask)
    argv = [a for a in args.argv if a not in ("--daemon", "-d")]
    env = dict(os.environ, **{READY_FD_ENV: str(write_end)})
    # the child writes to a file, not to our journal stream: it must stamp its own lines
    for key in ("JOURNAL_STREAM", "INVOCATION_ID"):
        env.pop(key, None)
    with open(log_path, "ab") as log_file:
        # where this attempt's lines start: a failure shows those, not the previous run's
        start = log_file.tell()
        child = subprocess.Popen(
            [sys.executable, "-m", "docfs", *argv],
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=log_file,
            env=env,
            pass_fds=(write_end,),
            start_new_session=True,
        )
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        answer = pipe.read()
    if answer.startswith(b"ready"):
        if not args.quiet:
            print(f"docfs: mounted at {mount.mountpoint} (pid {child.pid}, log {log_path})")
        return 0
    status = child.wait(timeout=30)
    with open(log_path, "rb") as log_file:
        log_file.seek(start)
        tail = log_file.read().decode(errors="replace").strip().splitlines()[-3:]
    print(f"docfs: mount failed; last log lines ({log_path}):", file=sys.stderr)
    for line in tail:
        print(f"  {line}", file=sys.stderr)
    return status if status in (EXIT_USAGE, EXIT_AUTH) else 1


def clear_stale_states() -> None:
    """Remove the state files and control sockets of daemons that died without cleaning up
    (SIGKILL, OOM): they would stay in the runtime directory for good (issue 18.8)."""
    for path in runtime_dir().glob("mount-*.json"):
        state = read_state(path)
        if state is None:
            with contextlib.suppress(OSError):
                # unreadable: maybe a daemon is writing it right now; only an old one is stale
                if time.time() - path.stat().st_mtime < 60:
                    continue
        elif isinstance(state.get("pid"), int) and _alive(state["pid"]):
            continue
        log.debug("removing the state of a daemon that is gone: %s", path.name)
        path.unlink(missing_ok=True)
        path.with_suffix(".sock").unlink(missing_ok=True)


def cmd_mount(args: argparse.Namespace, redactor: Redactor) -> int:
    mount = mount_config(args)
    redactor.add(*mount.credentials.secrets())
    problem = fuse_problem()
    if problem is not None:
        print(f"docfs: cannot mount: {problem}", file=sys.stderr)
        return 1
    clear_stale_states()
    if args.daemon:
        return run_daemon(args, mount)
    return run_foreground(mount, redactor)


def cmd_detect(args: argparse.Namespace, redactor: Redactor) -> int:
    """Print which type of a family a URL serves, as the TYPE:URL to mount."""
    problems = []
    for family in families():
        try:
            kind, url = parse_remote(f"{family}:{args.url}")
        except UsageError as exc:
            problems.append(str(exc))
            continue
        print(f"{kind}:{url}")
        return 0
    raise UsageError("; ".join(problems) or "no repository type can be detected")
    return 0


def cmd_unmount(args: argparse.Namespace, redactor: Redactor) -> int:
    mountpoint = Path(args.mountpoint).resolve()
    state = read_state(state_file(mountpoint)) or {}
    result = subprocess.run(
        ["fusermount3", "-u", str(mountpoint)], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        print(f"docfs: cannot unmount {mountpoint}: {result.stderr.strip()}", file=sys.stderr)
        return 1
    pid = state.get("pid")
    if not (isinstance(pid, int) and _alive(pid)):
        clear_stale_states()  # a killed daemon's mount: its state goes with it
    if args.no_wait or not isinstance(pid, int):
        return 0
    # the daemon uploads what its write-back queue holds before it exits: wait for that,
    # showing its progress (its control socket answers until the queue is empty)
    queue = Path(state["queue"]) if state.get("queue") else None
    socket_path = Path(state["control"]) if state.get("control") else None
    line = ProgressLine()
    next_poll = 0.0
    while _alive(pid):
        if queue is not None and socket_path is not None and time.monotonic() >= next_poll:
            next_poll = time.monotonic() + 0.5
            try:
                report = control.call(socket_path, {"op": "status"}, timeout=5.0)["status"]
            except (control.ControlError, KeyError):
                report = None
            if report is not None and report["uploads"]["pending"]:
                line.show(report["uploads"])
        time.sleep(0.1)
    line.done()
    return 0


# ---- status, sync, refresh -----------------------------------------------------------------


def read_state(path: Path) -> dict[str, Any] | None:
    try:
        state = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return state if isinstance(state, dict) else None


def stale_mounts() -> list[str]:
    """Mount points of daemons that died without unmounting (they answer ENOTCONN)."""
    found = []
    for path in sorted(runtime_dir().glob("mount-*.json")):
        state = read_state(path) or {}
        pid, where = state.get("pid"), state.get("mountpoint")
        dead = isinstance(pid, int) and not _alive(pid)
        if dead and isinstance(where, str) and _stale(Path(where)):
            found.append(where)
    return found


def running_mounts() -> list[dict[str, Any]]:
    """The state of every live docfs mount of this user."""
    found = []
    for path in sorted(runtime_dir().glob("mount-*.json")):
        state = read_state(path)
        if state is not None and isinstance(state.get("pid"), int) and _alive(state["pid"]):
            found.append(state)
    return found


def _mount_state(mountpoint: str) -> dict[str, Any]:
    path = Path(mountpoint).resolve()
    state = read_state(state_file(path))
    if state is None or not isinstance(state.get("pid"), int) or not _alive(state["pid"]):
        if _stale(path):
            raise UsageError(f"stale mount at {path}: run `docfs unmount {path}`")
        raise UsageError(f"no docfs mount at {path}")
    return state


def _stale(mountpoint: Path) -> bool:
    """The mount point of a daemon that died answers ENOTCONN until it is unmounted."""
    try:
        os.statvfs(mountpoint)
    except OSError as exc:
        return exc.errno == errno.ENOTCONN
    return False


def _socket(state: dict[str, Any]) -> Path:
    return Path(state.get("control") or control_socket(Path(state["mountpoint"])))


def cmd_status(args: argparse.Namespace, redactor: Redactor) -> int:
    states = [_mount_state(args.mountpoint)] if args.mountpoint else running_mounts()
    reports: list[dict[str, Any]] = []
    failed = False
    for stale in [] if args.mountpoint else stale_mounts():
        failed = True
        reports.append({"mountpoint": stale, "error": f"stale mount: run `docfs unmount {stale}`"})
    for state in states:
        try:
            reports.append(control.call(_socket(state), {"op": "status"})["status"])
        except control.ControlError as exc:
            failed = True
            reports.append({"mountpoint": state.get("mountpoint"), "error": str(exc)})
    if args.json:
        print(json.dumps(reports if not args.mountpoint else reports[0], indent=2))
    elif not reports:
        print("docfs: no mounts")
    else:
        print("\n".join(format_status(r) for r in reports), end="")
    return 1 if failed else 0


def human_size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


def human_time(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


def progress_bar(done: int, total: int, width: int = 20) -> str:
    filled = width if total <= 0 else min(width, done * width // total)
    return "[" + "#" * filled + "-" * (width - filled) + "]"


def format_status(report: dict[str, Any]) -> str:
    """The human form of one mount's status (``docfs status``)."""
    if "error" in report:
        return f"{report.get('mountpoint')}\n  not answering: {report['error']}\n"
    name = report.get("name") or ""
    if name and report.get("sub_path"):
        name += f":{report['sub_path']}"
    mode = ", read-only" if report.get("read_only") else ""
    if report.get("write_back") is not None:
        mode += f", write-back {report['write_back']:g} s"
    if report.get("direct_io"):
        mode += ", direct I/O"
    cache, requests, rate, uploads = (
        report["cache"],
        report["requests"],
        report["rate_limit"],
        report["uploads"],
    )
    share = cache["used"] * 100 // cache["limit"] if cache["limit"] else 0
    lines = [
        f"{report['mountpoint']}: {name + ' ' if name else ''}({report['remote']}){mode}",
        f"  pid {report['pid']}, up {human_time(report['uptime'])}",
        f"  cache     {human_size(cache['used'])} of {human_size(cache['limit'])} ({share}%)",
        f"  requests  {requests['total']}, errors {requests['errors']}, "
        f"retries {requests['retries']}; rate-limit waits {rate['waits']} "
        f"({rate['seconds']:.1f} s)",
    ]
    for endpoint, e in requests["endpoints"].items():
        lines.append(
            f"    {endpoint:<28} {e['requests']:>7}  errors {e['errors']:<4} "
            f"retries {e['retries']:<4} sent {human_size(e['bytes_sent'])}, "
            f"received {human_size(e['bytes_received'])}"
        )
    lines.append(format_uploads(uploads))
    if report.get("write_back") is None:
        # sync mode: no queue, but the uploads of files being closed are in flight
        lines.extend(format_transfer(t) for t in report.get("transfers", []))
    if report.get("lost_found"):
        lines.append(f"  lost+found  {report['lost_found']} files kept after failed uploads")
    for held in report.get("held_back") or []:
        lines.append(f"  held back   {held}")
    return "\n".join(lines) + "\n"


def format_transfer(t: dict[str, Any]) -> str:
    """One upload in flight: ``[####------]  40.0 MiB of 80.0 MiB, 8.0 MiB/s, ETA 5 s  /a/b``."""
    rate = f"{human_size(t['rate'])}/s" if t.get("rate") else "starting"
    return (
        f"    {progress_bar(t['sent'], t['size'])} {human_size(t['sent'])} of "
        f"{human_size(t['size'])}, {rate}, ETA {human_time(t.get('eta'))}  {t['path']}"
    )


def format_uploads(uploads: dict[str, Any]) -> str:
    if not uploads["pending"]:
        return f"  uploads   none pending ({uploads['uploaded']} done)"
    rate = f", {human_size(uploads['rate'])}/s" if uploads.get("rate") else ""
    lines = [
        f"  uploads   {uploads['pending']} pending, {human_size(uploads['bytes_left'])} left"
        f"{rate}, ETA {human_time(uploads['eta'])}"
    ]
    for f in uploads["files"]:
        if f["state"] == "uploading":
            share = f["sent"] * 100 // f["size"] if f["size"] else 100
            rate = f"{human_size(f['rate'])}/s  " if f.get("rate") else ""
            detail = f"{share:3d}%  {rate}ETA {human_time(f['eta'])}"
        elif f["state"] == "retrying":
            detail = f"retry {f['attempts']} in {human_time(f['due_in'])}"
        else:
            detail = f"queued, starts in {human_time(f['due_in'])}"
        lines.append(
            f"    {progress_bar(f['sent'], f['size'])} {human_size(f['size']):>10}  "
            f"{detail}  {f['path']}"
        )
    return "\n".join(lines)


def progress_text(uploads: dict[str, Any]) -> str:
    """``docfs sync``/``unmount``'s progress: files and bytes left, rate, ETA."""
    total, left = uploads["bytes_total"], uploads["bytes_left"]
    rate = f", {human_size(uploads['rate'])}/s" if uploads.get("rate") else ""
    return (
        f"docfs: {uploads['pending']} uploads left, {human_size(total - left)} of "
        f"{human_size(total)} sent{rate}, ETA {human_time(uploads['eta'])}"
    )


class ProgressLine:
    """A progress line that stays current: on a terminal one line rewritten in place (bytes
    move every half second even for one big file); otherwise (a log, a pipe) a plain line
    when the number of files changes or every ``every`` seconds, not a flood."""

    def __init__(self, stream: Any = None, every: float = 10.0) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.live = bool(getattr(self.stream, "isatty", lambda: False)())
        self.every = every
        self._last: tuple[int, float] | None = None
        self._drawn = False

    def show(self, uploads: dict[str, Any]) -> None:
        text = progress_text(uploads)
        now = time.monotonic()
        if self.live:
            self.stream.write(f"\r\x1b[K{text}")
            self._drawn = True
        elif (
            self._last is None
            or self._last[0] != uploads["pending"]
            or now - self._last[1] >= self.every
        ):
            self.stream.write(text + "\n")
            self._last = (uploads["pending"], now)
        else:
            return
        self.stream.flush()

    def done(self) -> None:
        """End the line in place, so what follows starts on a line of its own."""
        if self._drawn:
            self.stream.write("\n")
            self.stream.flush()
            self._drawn = False


def cmd_sync(args: argparse.Namespace, redactor: Redactor) -> int:
    state = _mount_state(args.mountpoint)
    line = ProgressLine()
    request: dict[str, Any] = {"op": "sync", "timeout": args.timeout}
    try:
        answer = control.call(_socket(state), request, progress=line.show, timeout=60.0)
    except control.ControlError as exc:
        line.done()
        print(f"docfs: sync failed: {exc}", file=sys.stderr)
        return 1
    line.done()
    if answer.get("ok"):
        print(f"docfs: all uploads done ({answer['uploaded']} uploaded)")
        return 0
    print(f"docfs: {answer.get('error')}", file=sys.stderr)
    for failure in answer.get("failed", []):
        print(f"  failed: {failure['path']}: {failure['error']}", file=sys.stderr)
    for path in answer.get("pending", []):
        print(f"  still queued: {path}", file=sys.stderr)
    return 1


def find_mount(path: Path) -> tuple[dict[str, Any], str]:
    """The mount holding ``path`` and the path inside it (``/a/b``)."""
    for candidate in (Path(os.path.abspath(path)), path.resolve()):
        for base in (candidate, *candidate.parents):
            state = read_state(state_file(base))
            if state is not None and isinstance(state.get("pid"), int) and _alive(state["pid"]):
                inside = candidate.relative_to(base).as_posix()
                return state, "/" if inside == "." else f"/{inside}"
    raise UsageError(f"{path} is not inside a docfs mount")


def cmd_refresh(args: argparse.Namespace, redactor: Redactor) -> int:
    state, inside = find_mount(Path(args.path))
    try:
        answer = control.call(_socket(state), {"op": "refresh", "path": inside})
    except control.ControlError as exc:
        print(f"docfs: refresh failed: {exc}", file=sys.stderr)
        return 1
    print(f"docfs: {answer['dropped']} cached listings dropped under {args.path}")
    return 0


# ---- remotes -------------------------------------------------------------------------------


def cmd_remotes(args: argparse.Namespace, redactor: Redactor) -> int:
    cfg = config.load(args.config, explicit=args.config is not None)
    if args.action == "check":
        return check_remote(cfg, args.name, args.timeout, redactor)
    if not cfg.exists:
        print(f"docfs: no configuration file at {cfg.path}")
        return 0
    if not cfg.remotes:
        print(f"docfs: {cfg.path} configures no remotes")
        return 0
    width = max(len(n) for n in cfg.remotes)
    for remote in cfg.remotes.values():
        user = f" as {remote.user}" if remote.user else ""
        print(
            f"{remote.name:<{width}}  {remote.type:<8} {remote.url}{user} "
            f"({remote.secret_summary()})"
        )
    return 0


def check_remote(cfg: config.Config, source: str, timeout: float | None, redactor: Redactor) -> int:
    """Log in and list the root (or sub-path); print what was found or a precise error."""
    name, sub_path = config.split_source(source)
    remote = cfg.remote(name)
    credentials = config.credentials(remote)
    redactor.add(*credentials.secrets())
    kind, url = remote_kind(remote)
    mount = MountConfig(
        remote_type=kind,
        url=url,
        mountpoint=Path("/"),
        credentials=credentials,
        timeout=_pick(timeout, remote.timeout, default("timeout")),
        sub_path=sub_path,
        backend_options=_backend_options(remote),
    )
    who = f"as {credentials.user}" if credentials.user else "anonymously"
    try:
        names = trio.run(_list_root, mount, redactor)
    except errors.DocfsError as exc:
        print(f"{name}: FAILED ({remote.type} {remote.url} {who}): {exc}", file=sys.stderr)
        return 1
    print(f"{name}: ok: {remote.type} {remote.url}, logged in {who}")
    shown = ", ".join(names[:20]) + (f", … ({len(names) - 20} more)" if len(names) > 20 else "")
    print(f"{sub_path or '/'} holds {len(names)} entries{': ' + shown if names else ''}")
    return 0


async def _list_root(mount: MountConfig, redactor: Redactor) -> list[str]:
    backend = build_backend(mount, redactor)
    try:
        await connect_backend(backend, mount.remote_type)
        root = await resolve_root(backend, mount.sub_path)
        return sorted([e.name + ("/" if e.is_dir else "") async for e in backend.list_dir(root)])
    finally:
        await backend.aclose()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie (exited, not yet reaped by its parent) counts as gone
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0] != "Z"
    except (OSError, IndexError):
        return False


def _start_emulator(
    kind: str,
    account: Account,
    *,
    demo: bool,
    latency_ms: float,
    port: int,
    server_version: str | None = None,
    settings: dict[str, str] | None = None,
    role: str = "admin",
) -> tuple[EmulatorServer, Any]:
    """Build and serve an emulator; returns the running server and the emulator."""
    from docfs.emulators.base import EmulatorServer, UnknownServerOption
    from docfs.emulators.launch import UnknownDemo, build

    try:
        emulator = build(
            kind,
            account,
            demo=demo,
            latency_ms=latency_ms,
            server_version=server_version,
            settings=settings,
            role=role,
        )
    except (UnknownDemo, UnknownServerOption) as exc:
        raise UsageError(str(exc)) from None
    server = EmulatorServer(emulator, port=port)
    server.start()
    return server, emulator


def _emulator_profiles_help() -> str:
    """The releases, settings and roles each emulator knows, for ``docfs emulate --help``."""
    from docfs.registry import emulator_class

    try:
        return "\n".join(emulator_class(kind).describe_profiles() for kind in sorted(REMOTE_TYPES))
    except ImportError:  # the emulators' extras are not installed
        return ""


def cmd_emulate(args: argparse.Namespace, redactor: Redactor) -> int:
    from docfs.emulators.launch import Account

    account = Account(
        user=args.user,
        password=args.password or os.environ.get("DOCFS_PASSWORD"),
        key=args.api_key or os.environ.get("DOCFS_TOKEN"),
        rate_limit=args.rate_limit,
    )
    settings: dict[str, str] = {}
    for item in args.setting:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--setting {item!r}: expected KEY=VALUE")
        settings[key.strip()] = value.strip()
    server, emulator = _start_emulator(
        args.type,
        account,
        demo=args.demo,
        latency_ms=args.latency_ms,
        port=args.port,
        server_version=args.server_version,
        settings=settings,
        role=args.role,
    )
    url = f"{server.url}{remote_type(args.type).api_path}"
    profile = emulator.server_profile
    shown = ", ".join(f"{k}={v}" for k, v in sorted(profile.settings.items()))
    print(
        f"docfs: {args.type} emulator serving at {url} (Ctrl-C to stop)"
        + (f"; version {profile.version}" if profile.version else "")
        + (f"; {shown}" if shown else ""),
        flush=True,
    )
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0


def cmd_demo(args: argparse.Namespace, redactor: Redactor) -> int:
    from docfs.emulators.launch import Account, demo_credentials

    kind = args.type
    mountpoint = Path(args.mountpoint or default_demo_mountpoint())
    mountpoint.mkdir(parents=True, exist_ok=True)
    # the demo logs in as the demo repository's administrator so that writes work too
    account = Account(user="demo@example.org", password="demo-password")
    server, emulator = _start_emulator(kind, account, demo=True, latency_ms=args.latency_ms, port=0)
    url = f"{server.url}{remote_type(kind).api_path}"
    cache = Path(tempfile.mkdtemp(prefix="docfs-demo-cache-"))
    config = MountConfig(
        remote_type=kind,
        url=url,
        mountpoint=mountpoint.resolve(),
        credentials=demo_credentials(kind, emulator, account),
        cache_dir=cache,
        cache_size=256 << 20,
        options=Options(dir_cache_time=default("dir_cache_time")),
    )

    def ready() -> None:
        print(
            f"\ndocfs demo: the demo {remote_type(kind).description} repository ({url}) "
            f"is mounted at {mountpoint}\n"
            f"Try, in another terminal:\n"
            + "".join(f"  {hint}\n" for hint in demo_hints(mountpoint))
            + "Press Ctrl-C here to unmount and stop.\n",
            flush=True,
        )

    try:
        trio.run(serve, config, redactor, ready)
    except errors.DocfsError as exc:
        log.error("%s", exc)
        return 1
    finally:
        server.stop()
        shutil.rmtree(cache, ignore_errors=True)
    return 0


def demo_hints(mountpoint: Path) -> list[str]:
    """The commands the demo suggests; each works on every repository type's demo (a test
    runs them). The copy names its file ``*.txt``: some repositories file a file by its
    extension, and refuse one without (like ``hostname``) in most folders."""
    where = shlex.quote(str(mountpoint))  # pasted into a shell: a space must not split it
    csv = f"\"$(find {where} -name '*.csv' | head -1)\""
    return [
        f"ls -l {where}",
        f"find {where} | head -30",
        f"getfattr -d -R {where} | head -30",
        f"cat {csv}",
        f'cp /etc/hostname "$(dirname {csv})/hostname.txt"',
    ]


def default_demo_mountpoint() -> Path:
    home = Path.home()
    if os.access(home, os.W_OK):
        return home / "docfs-demo"
    return Path(tempfile.gettempdir()) / "docfs-demo"


def _logging_options(parser: argparse.ArgumentParser, *, top: bool) -> None:
    """``--log-level``, ``--log-file``, ``-v``, ``--config``: before or after the command word."""
    # after the command word the defaults are suppressed, so they do not override a value
    # given before it
    default: Any = None if top else argparse.SUPPRESS
    parser.add_argument("--log-level", choices=LEVELS, default="info" if top else argparse.SUPPRESS)
    parser.add_argument("--log-file", type=Path, default=default, help="log here instead of stderr")
    parser.add_argument(
        "-v",
        "--verbose",
        action="append",
        metavar="MODULE",
        default=[] if top else argparse.SUPPRESS,
        help="debug messages of one module: http, vfs, writeback, "
        f"backends.{registry.DEMO_DEFAULT}, httpx…",
    )
    parser.add_argument(
        "--config",
        type=Path,
        default=default,
        help="configuration file (default: $XDG_CONFIG_HOME/docfs/config.toml)",
    )


def add_flag(parser: argparse.ArgumentParser, option: Option, *, owner: str = "") -> None:
    """The option's flag, its help (and default) and its check from the table."""
    assert option.flag is not None
    text = f"{owner}: {option.flag_help()}" if owner else option.flag_help()
    names = (option.flag, *option.aliases)
    if option.kind == "flag":
        # None when absent: the configuration, then the default, decide
        parser.add_argument(*names, action="store_true", default=None, help=text or None)
    else:
        parser.add_argument(
            *names, type=argument_type(option), metavar=option.metavar, help=text or None
        )


def _mount_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    mount = sub.add_parser(
        "mount",
        parents=[common],
        help="mount a repository",
        description="Mount a configured remote (NAME or NAME:/sub/path) or TYPE:URL. Options "
        "left out come from the remote's configuration, then from the defaults shown.",
    )
    mount.add_argument(
        "remote",
        help=f"NAME[:/sub/path] from the configuration, or TYPE:URL ({registry.example()})",
    )
    mount.add_argument("mountpoint")
    mount.add_argument("-d", "--daemon", action="store_true", help="detach once mounted")
    for option in MOUNT_OPTIONS:
        if option.flag is not None and not option.global_flag:
            add_flag(mount, option)
    seen = set()
    for _, typed in type_options():
        if typed.option.flag is not None and typed.option.name not in seen:
            seen.add(typed.option.name)
            owners = " and ".join(t.label for t in registry.option_owners(typed.option.name))
            add_flag(mount, typed.option, owner=owners)
    mount.add_argument("--kernel-option", action="append", help=argparse.SUPPRESS)
    mount.add_argument("--quiet", action="store_true", help=argparse.SUPPRESS)
    mount.set_defaults(func=cmd_mount)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="docfs",
        description="Mount document repositories as a filesystem. "
        "'docfs SOURCE MOUNTPOINT -o OPTIONS' is the form mount.fuse3 uses (fstab).",
    )
    parser.add_argument("--version", action="version", version=f"docfs {__version__}")
    _logging_options(parser, top=True)
    common = argparse.ArgumentParser(add_help=False)
    _logging_options(common, top=False)
    sub = parser.add_subparsers(dest="command", required=True)
    _mount_parser(sub, common)

    unmount = sub.add_parser("unmount", parents=[common], help="unmount a docfs mount")
    unmount.add_argument("mountpoint")
    unmount.add_argument(
        "--no-wait", action="store_true", help="do not wait for queued uploads to finish"
    )
    unmount.set_defaults(func=cmd_unmount)

    status = sub.add_parser(
        "status", parents=[common], help="show mounts, cache, requests, uploads"
    )
    status.add_argument("mountpoint", nargs="?", help="default: every mount of yours")
    status.add_argument("--json", action="store_true", help="machine-readable")
    status.set_defaults(func=cmd_status)

    sync = sub.add_parser("sync", parents=[common], help="wait until every queued upload is done")
    sync.add_argument("mountpoint")
    sync.add_argument(
        "--timeout", type=number(0, exclusive=True), help="give up after this many seconds"
    )
    sync.set_defaults(func=cmd_sync)

    refresh = sub.add_parser(
        "refresh", parents=[common], help="forget cached listings at and below PATH"
    )
    refresh.add_argument("path")
    refresh.set_defaults(func=cmd_refresh)

    remotes = sub.add_parser("remotes", parents=[common], help="list or check configured remotes")
    remotes.set_defaults(func=cmd_remotes, action=None)
    actions = remotes.add_subparsers(dest="action")
    check = actions.add_parser(
        "check", parents=[common], help="log in and list the root of NAME[:/sub/path]"
    )
    check.add_argument("name")
    add_flag(check, OPTIONS["timeout"])

    demo = sub.add_parser("demo", parents=[common], help="serve the demo repository and mount it")
    demo.add_argument("mountpoint", nargs="?")
    demo.add_argument("--latency-ms", type=number(0), default=0.0)
    demo.add_argument(
        "--type",
        default=registry.DEMO_DEFAULT,
        choices=sorted(REMOTE_TYPES),
        help="which repository",
    )
    demo.set_defaults(func=cmd_demo)

    emulate = sub.add_parser(
        "emulate",
        parents=[common],
        help="serve a repository emulator on 127.0.0.1",
        epilog=_emulator_profiles_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    emulate.add_argument("type", choices=sorted(REMOTE_TYPES))
    emulate.add_argument("--port", type=whole(0, 65535), default=8080)
    emulate.add_argument("--demo", action="store_true", help="seed the demo data")
    emulate.add_argument("--latency-ms", type=number(0), default=0.0)
    emulate.add_argument("--user", help="create an administrator with this login")
    emulate.add_argument(
        "--password", help="its password (or DOCFS_PASSWORD; this is a test server)"
    )
    emulate.add_argument(
        "--api-key",
        "--token",
        dest="api_key",
        help="an API key or token accepted for the seeded user (or DOCFS_TOKEN); "
        + "; ".join(t.key_help for t in registry.REGISTERED if t.key_help),
    )
    emulate.add_argument(
        "--rate-limit",
        type=whole(1),
        help="; ".join(t.rate_limit_help for t in registry.REGISTERED if t.rate_limit_help)
        or "requests per minute, where the emulator limits them",
    )
    emulate.add_argument(
        "--server-version", help="behave like this release of the server (default: the newest)"
    )
    emulate.add_argument(
        "--setting",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a server configuration setting (repeatable; see the list below)",
    )
    emulate.add_argument(
        "--role",
        default="admin",
        help="the role of the --user account: admin, or submitter where the type has it",
    )
    emulate.set_defaults(func=cmd_emulate)
    detect = sub.add_parser(
        "detect",
        parents=[common],
        help="tell which repository type a URL serves: "
        + "; ".join(registry.family_label(f) for f in families()),
    )
    detect.add_argument("url")
    detect.set_defaults(func=cmd_detect)
    for command in registry.commands():
        load(command.register)(sub, parents=[common])
    completion.register(sub, parents=[common])
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    # PYTHON_ARGCOMPLETE_OK: the shell asks for completions; answered (and exited) here
    if completion.asked():
        completion.autocomplete(build_parser())
    words = list(sys.argv[1:] if argv is None else argv)
    try:
        mistyped = mistyped_command(words)
        if mistyped is not None:
            raise UsageError(mistyped)
        if is_helper_call(words):
            words = helper_argv(words)
    except UsageError as exc:
        print(f"docfs: {exc}", file=sys.stderr)
        return EXIT_USAGE
    args = build_parser().parse_args(words)
    args.argv = words
    redactor = Redactor()
    try:
        check_verbose(args.verbose)
        setup_logging(args.log_level, redactor, log_file=args.log_file, verbose=args.verbose)
        result: int = args.func(args, redactor)
        return result
    except (UsageError, config.ConfigError) as exc:
        print(f"docfs: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except errors.AuthenticationFailed as exc:
        print(f"docfs: {exc}", file=sys.stderr)
        return EXIT_AUTH
    except errors.DocfsError as exc:
        print(f"docfs: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
