"""The ``docfs`` command: mount, unmount, status, sync, refresh, pin, unpin, pinned, cache,
remotes, demo, emulate.

Secrets never come from the command line (argv is visible to every user via ``ps``): they come
from the configuration's secret sources, ``DOCFS_USER`` / ``DOCFS_PASSWORD`` / ``DOCFS_TOKEN``
or a ``--credentials-file``. Every expected failure ends as one clear line on stderr and a
non-zero exit status, not a traceback.

``docfs SOURCE MOUNTPOINT -o OPTIONS`` (no command word) is the call form of ``mount.fuse3``,
which ``mount -t fuse.docfs`` and ``/etc/fstab`` lines use: it mounts like ``docfs mount`` and
detaches once the mount is ready (like sshfs), unless ``-f`` is given.

This module builds the parser (the mount flags from ``docfs.options`` and the repository types'
descriptors), sets up logging and runs the command; the commands themselves live in
``docfs.commands``, one module per concern.
"""

from __future__ import annotations

import argparse
import contextlib
import difflib
import logging
import logging.handlers
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, Any

from docfs import __version__, completion, config, errors, registry
from docfs.commands import resolve, verify
from docfs.commands.common import EXIT_AUTH, EXIT_USAGE, UsageError, argument_type, number, whole
from docfs.commands.emulate import cmd_demo, cmd_emulate, emulator_profiles_help
from docfs.commands.helper import helper_argv, is_helper_call, mistyped_command
from docfs.commands.mount import cmd_detect, cmd_mount, cmd_unmount
from docfs.commands.packages import register as register_packages
from docfs.commands.pin import cmd_cache_clear, cmd_pin, cmd_pinned, cmd_unpin
from docfs.commands.remotes import cmd_remotes
from docfs.commands.source import (
    is_inline,
    mount_config,
    parse_remote,
    read_credentials,
    remote_kind,
    source_mistake,
)
from docfs.commands.status import (
    ProgressLine,
    cmd_refresh,
    cmd_status,
    cmd_sync,
    format_status,
    human_size,
    human_time,
    progress_bar,
    running_mounts,
)
from docfs.options import MOUNT_OPTIONS, OPTIONS, Option
from docfs.redact import Redactor
from docfs.registry import REMOTE_TYPES, families, type_options
from docfs.remotetype import load

log = logging.getLogger("docfs")

#: names other modules and the tests take from here
__all__ = [
    "EXIT_AUTH",
    "EXIT_USAGE",
    "JournalFormatter",
    "ProgressLine",
    "UsageError",
    "__version__",
    "build_parser",
    "check_verbose",
    "format_status",
    "helper_argv",
    "human_size",
    "human_time",
    "is_helper_call",
    "is_inline",
    "logger_name",
    "main",
    "mistyped_command",
    "mount_config",
    "parse_remote",
    "progress_bar",
    "read_credentials",
    "remote_kind",
    "running_mounts",
    "setup_logging",
    "source_mistake",
    "under_journal",
]

LEVELS = ["debug", "info", "warning", "error"]


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

    resolve.add_parser(sub, common)
    # ---- offline use and cache control (issue 22) ----
    pin = sub.add_parser(
        "pin", parents=[common], help="fetch everything below PATH and keep it for offline use"
    )
    pin.add_argument("paths", nargs="+", metavar="PATH")
    pin.set_defaults(func=cmd_pin)
    unpin = sub.add_parser(
        "unpin", parents=[common], help="let pinned content below PATH be evicted again"
    )
    unpin.add_argument("paths", nargs="+", metavar="PATH")
    unpin.set_defaults(func=cmd_unpin)
    pinned = sub.add_parser("pinned", parents=[common], help="list pinned folders")
    pinned.add_argument("path", nargs="?", help="only the mount holding PATH")
    pinned.add_argument("--json", action="store_true", help="machine-readable")
    pinned.set_defaults(func=cmd_pinned)
    cache = sub.add_parser("cache", parents=[common], help="control a mount's content cache")
    cache_actions = cache.add_subparsers(dest="action", required=True)
    clear = cache_actions.add_parser(
        "clear", parents=[common], help="drop cached, unpinned content below PATH"
    )
    clear.add_argument("path", nargs="?", help="default: all of every mount")
    clear.set_defaults(func=cmd_cache_clear)

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
        epilog=emulator_profiles_help(),
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
    register_packages(sub, parents=[common])  # deposit, export (issue 21)
    for command in registry.commands():
        load(command.register)(sub, parents=[common])
    verify.register(sub, parents=[common])
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
