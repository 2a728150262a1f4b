"""The mount options, each declared once: name, kind, default, help, flag, ``-o`` name, config key.

From ``MOUNT_OPTIONS`` (and each repository type's own options, declared the same way in its
descriptor) come the ``docfs mount`` flags, the ``-o`` options of the ``mount.fuse3`` form, the
configuration keys with their checks, the built-in defaults a mount falls back to, and the
README's option table (``scripts/manpage.py --readme`` writes it; a test checks it is current).
The command line and the configuration check a value with the same rule (``parse_cli`` and
``check_config``), so ``--transfers 0`` and ``transfers = 0`` fail with the same words.

This module imports nothing of docfs: the backends' descriptors declare their options with it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

#: ``flag``: present or not (``--read-only``, ``-o ro``); the others take a value
Kind = Literal["flag", "bool", "size", "number", "whole", "path", "names", "text"]


def parse_size(text: str | int) -> int:
    """Bytes from ``512M``, ``10G``, ``1.5GiB`` or a plain number of bytes."""
    if isinstance(text, int):
        if text < 0:
            raise ValueError(f"not a size: {text}")
        return text
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(i?b)?\s*", text, re.IGNORECASE)
    if not match:
        raise ValueError(f"not a size: {text!r} (e.g. 512M, 10G)")
    number, unit = float(match.group(1)), match.group(2).lower()
    return int(number * 1024 ** " kmgt".index(unit or " "))


def kind_of(value: object) -> str:
    """How a TOML value is named in an error (``expected a number, not a string``)."""
    names = {bool: "a boolean", int: "a number", float: "a number", str: "a string"}
    names.update({list: "an array", dict: "a table"})
    return names.get(type(value), type(value).__name__)


@dataclass(frozen=True)
class Option:
    """One option of ``docfs mount``, the ``-o`` list and the configuration."""

    #: the configuration key, and the name the value goes by in the code
    name: str
    kind: Kind
    help: str
    #: the built-in value when neither the command line nor the configuration sets one
    default: Any = None
    #: how the default reads in help and README when it is not a plain value ("yours")
    default_text: str | None = None
    #: ``--cache-size``; None: not on the command line
    flag: str | None = None
    #: other spellings of the flag (``--token`` for ``--api-key``)
    aliases: tuple[str, ...] = ()
    #: the ``-o`` name (a bare word for a flag, ``name=`` for a value); None: not an ``-o``
    helper: str | None = None
    #: a key of ``[remotes.NAME]`` (and, with ``defaults``, of ``[defaults]``)
    config: bool = False
    defaults: bool = True
    #: for numbers: the smallest value, and whether it is itself excluded
    minimum: float | None = None
    exclusive: bool = False
    maximum: int | None = None
    metavar: str | None = None
    #: the flag sets the opposite of the configured value (``--no-thumbnails``: thumbnails off)
    negated: bool = False
    #: the configuration also takes ``false`` for "not set" (``write_back = false``)
    false_is_unset: bool = False
    #: the flag is declared by the command line's own options (``--config``, ``-v``), not here
    global_flag: bool = False
    #: a check of the configured value beyond its kind: ``(value, config file) → value``; it
    #: raises ValueError with the message to show
    check: Callable[[Any, Path], Any] | None = None

    @property
    def dest(self) -> str | None:
        """The argparse attribute the flag fills (``--no-thumbnails`` → ``no_thumbnails``)."""
        if self.flag is None:
            return None
        return self.flag.lstrip("-").replace("-", "_")

    def default_shown(self) -> str | None:
        if self.default_text is not None:
            return self.default_text
        if self.kind == "flag":
            return "on" if self.default else "off"
        if self.default is None:
            return None
        if isinstance(self.default, float):
            return f"{self.default:g}"
        return str(self.default)

    def flag_help(self) -> str:
        shown = self.default_shown()
        if shown is None or self.kind == "flag" or "(default" in self.help:
            return self.help
        return f"{self.help} (default: {shown})" if self.help else f"default: {shown}"


# ---- one rule per kind, for the command line and the configuration --------------------------


def _range(option: Option, value: float) -> None:
    low = option.minimum
    high = option.maximum
    if option.kind == "whole" and high is not None and low is not None:
        if value < low or value > high:
            raise ValueError(f"must be from {low:g} to {high}, not {value:g}")
        return
    if low is None:
        return
    if (not math.isfinite(value)) or value < low or (option.exclusive and value == low):
        relation = "more than" if option.exclusive else "at least"
        raise ValueError(f"must be {relation} {low:g}, not {_shown(value)}")


def _shown(value: float) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def parse_cli(option: Option, text: str) -> Any:
    """The value of ``--flag TEXT`` or ``-o name=TEXT``; ValueError says what is wrong."""
    if option.kind == "size":
        return parse_size(text)
    if option.kind == "number":
        try:
            value = float(text)
        except ValueError:
            raise ValueError(f"expected a number, not {text!r}") from None
        low = option.minimum
        if low is not None and (
            not math.isfinite(value) or value < low or (option.exclusive and value == low)
        ):
            relation = "more than" if option.exclusive else "at least"
            raise ValueError(f"must be {relation} {low:g}, not {text}")
        return value
    if option.kind == "whole":
        try:
            whole = int(text)
        except ValueError:
            raise ValueError(f"expected a whole number, not {text!r}") from None
        _range(option, whole)
        return whole
    if option.kind == "path":
        return Path(text)
    return text


def check_config(option: Option, value: object, source: Path) -> Any:
    """A configured value checked against the option's kind; ValueError says what is wrong."""
    if option.false_is_unset and value is False:
        return None
    if option.kind in ("flag", "bool"):
        if not isinstance(value, bool):
            raise ValueError(f"expected true or false, not {kind_of(value)}")
        result: Any = value
    elif option.kind == "number":
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"expected a number, not {kind_of(value)}")
        _range(option, float(value))
        result = float(value)
    elif option.kind == "whole":
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"expected a whole number, not {kind_of(value)}")
        _range(option, value)
        result = value
    elif option.kind == "size":
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise ValueError(f'expected a size such as "10G", not {kind_of(value)}')
        result = parse_size(value)
    elif option.kind == "path":
        if not isinstance(value, str) or not value:
            raise ValueError(f"expected a path, not {kind_of(value)}")
        result = Path(value).expanduser()
    elif option.kind == "names":
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise ValueError(f"expected a list of program names, not {kind_of(value)}")
        result = tuple(value)
    else:
        result = value
    return option.check(result, source) if option.check is not None else result


# ---- the table ------------------------------------------------------------------------------

_THUMBNAILS = "(~/.cache/thumbnails) when a directory is listed"

#: every option a mount of any repository type has, in the order ``docfs mount --help`` shows
MOUNT_OPTIONS: tuple[Option, ...] = (
    Option(
        "read_only",
        "flag",
        "refuse every write with EROFS, without a request",
        flag="--read-only",
        helper="ro",
        config=True,
    ),
    Option(
        "direct_io",
        "flag",
        "serve reads past the kernel's page cache: big sequential reads (cp, rsync, dd) "
        "faster and held in memory once, not twice; many small reads slower (each one asks "
        "docfs); shared mmap of a file is refused",
        flag="--direct-io",
        helper="direct_io",
        config=True,
    ),
    Option(
        "metadata_files",
        "flag",
        "list each object's metadata file (.metadata.json, .metadata/NAME.json) in its "
        "directory, so rsync -a and cp -r copy them too; without it they answer only when "
        "named (see Metadata in the README)",
        flag="--metadata-files",
        helper="metadata_files",
        config=True,
    ),
    Option(
        "thumbnails",
        "flag",
        "do not write the repository's own thumbnails into the desktop's thumbnail cache "
        + _THUMBNAILS,
        default=True,
        flag="--no-thumbnails",
        helper="no_thumbnails",
        config=True,
        negated=True,
    ),
    Option(
        "thumbnail_max",
        "size",
        "refuse thumbnailers and indexers (tumblerd, evince-thumbnailer, tracker…) files "
        "over this size that are not cached (default: 10M, 16M where the server has byte "
        "ranges; 0: let them read everything)",
        flag="--thumbnail-max",
        helper="thumbnail_max=",
        config=True,
    ),
    Option(
        "thumbnailers",
        "names",
        "the process names the thumbnail guard refuses, replacing the built-in list",
        config=True,
    ),
    Option(
        "file_managers",
        "names",
        "the process names whose listings get the repository's thumbnails, replacing the "
        "built-in list",
        config=True,
    ),
    Option(
        "allow_other", "flag", "let other users in", flag="--allow-other", helper="allow_other"
    ),
    Option(
        "allow_non_empty",
        "flag",
        "mount over a directory that has files in it (they are hidden while mounted)",
        flag="--allow-non-empty",
        helper="nonempty",
    ),
    Option(
        "cache_dir",
        "path",
        "",
        default_text="$XDG_CACHE_HOME/docfs",
        flag="--cache-dir",
        helper="cache_dir=",
        config=True,
    ),
    Option(
        "cache_size",
        "size",
        "",
        default="10G",
        flag="--cache-size",
        helper="cache_size=",
        config=True,
    ),
    # ---- offline use and cache control (issue 22) ----
    Option(
        "pin_size",
        "size",
        "bytes pinned folders (docfs pin) may hold; not counted in --cache-size",
        default="10G",
        flag="--pin-size",
        helper="pin_size=",
        config=True,
    ),
    Option(
        "cache_max_age",
        "number",
        "evict cached content not read for this many seconds (pinned content stays)",
        default_text="none",
        flag="--cache-max-age",
        helper="cache_max_age=",
        config=True,
        minimum=0,
        exclusive=True,
        metavar="SECONDS",
    ),
    Option(
        "cache_min_free",
        "size",
        "keep this much free on the cache's filesystem: evict, then refuse downloads (ENOSPC)",
        default=0,
        flag="--cache-min-free",
        helper="cache_min_free=",
        config=True,
    ),
    Option(
        "read_ahead",
        "size",
        "raise the kernel read-ahead of the mount (e.g. 1M) for bulk sequential reads; "
        "it delays the first byte of a cold file (default: 0, the kernel's 128K; needs root)",
        default=0,
        flag="--read-ahead",
        helper="read_ahead=",
    ),
    # ---- finding things (issue 20: .search) ----
    Option(
        "search_limit",
        "whole",
        "at most this many results of one search in .search/QUERY/ (a log line says when "
        "a search is cut)",
        default=1000,
        flag="--search-limit",
        helper="search_limit=",
        config=True,
        minimum=1,
    ),
    Option(
        "dir_cache_time",
        "number",
        "seconds listings are kept",
        default=60.0,
        flag="--dir-cache-time",
        helper="dir_cache_time=",
        config=True,
        minimum=0,
    ),
    Option(
        "timeout",
        "number",
        "idle seconds per request; uploads 1 s/MiB more",
        default=30.0,
        flag="--timeout",
        helper="timeout=",
        config=True,
        minimum=0,
        exclusive=True,
    ),
    Option(
        "write_back",
        "number",
        "close() returns at once; a durable queue uploads after SECONDS",
        flag="--write-back",
        helper="write_back=",
        config=True,
        minimum=0,
        metavar="SECONDS",
        false_is_unset=True,
    ),
    Option(
        "ca_bundle",
        "path",
        "also trust the CA certificates in this PEM file",
        flag="--ca-bundle",
        helper="ca_bundle=",
    ),
    Option(
        "insecure",
        "flag",
        "do not verify the server's TLS certificate (a warning is logged)",
        flag="--insecure",
        helper="insecure",
    ),
    Option(
        "transfers",
        "whole",
        "parallel uploads in write-back mode",
        default=4,
        flag="--transfers",
        helper="transfers=",
        config=True,
        minimum=1,
    ),
    Option(
        "uid",
        "whole",
        "owner shown for every file",
        default_text="yours",
        flag="--uid",
        helper="uid=",
        minimum=0,
    ),
    Option(
        "gid",
        "whole",
        "group shown for every file",
        default_text="yours",
        flag="--gid",
        helper="gid=",
        minimum=0,
    ),
    Option(
        "credentials_file",
        "path",
        'file with user = "…", password = "…" or token = "…" (TOML; unquoted '
        "values as in older files are read too) "
        "(default: the remote's configuration; for TYPE:URL DOCFS_USER, DOCFS_PASSWORD, "
        "DOCFS_TOKEN)",
        flag="--credentials-file",
        helper="credentials_file=",
    ),
    Option(
        "requests_per_minute",
        "number",
        "client-side limit; holds in every rolling minute, bursts included",
        default_text="the server's documented limit",
        flag="--requests-per-minute",
        helper="requests_per_minute=",
        config=True,
        minimum=0,
        exclusive=True,
    ),
    Option(
        "concurrency",
        "whole",
        "requests at once",
        default_text="the server's documented limit",
        config=True,
        minimum=1,
    ),
    # ---- issue 22: bandwidth ----
    Option(
        "bwlimit",
        "size",
        "bytes per second for downloads and uploads together (e.g. 2M, 500K): a shared line "
        "keeps room for others during a big copy; 0: no limit",
        default=0,
        default_text="off",
        flag="--bwlimit",
        helper="bwlimit=",
        config=True,
        metavar="RATE",
    ),
    # the command line's own options, which ``-o`` also takes
    Option("config", "path", "configuration file", flag="--config", helper="config=",
           global_flag=True),
    Option("log_file", "path", "log here instead of stderr", flag="--log-file",
           helper="log_file=", global_flag=True),
    Option("log_level", "text", "debug, info, warning or error", default="info",
           flag="--log-level", helper="log_level=", global_flag=True),
    Option("verbose", "text", "debug messages of one module", flag="-v", helper="verbose=",
           global_flag=True),
)  # fmt: skip

OPTIONS: dict[str, Option] = {o.name: o for o in MOUNT_OPTIONS}


def default(name: str) -> Any:
    """The built-in default of a mount option (sizes in bytes)."""
    option = OPTIONS[name]
    if option.kind == "size" and isinstance(option.default, str):
        return parse_size(option.default)
    return option.default


def config_options(options: Iterable[Option]) -> dict[str, Option]:
    return {o.name: o for o in options if o.config}


def markdown_table(options: Iterable[Option], type_options: Iterable[tuple[str, Option]]) -> str:
    """The README's option table: one row per option, the repository's own ones last."""
    rows = [
        "| option | `-o` | config key | default | meaning |",
        "|---|---|---|---|---|",
    ]

    def row(option: Option, owner: str = "") -> str:
        flag = f"`{option.flag}`" if option.flag else ""
        helper = f"`{option.helper}`" if option.helper else ""
        key = f"`{option.name}`" if option.config else ""
        # a negated flag is off unless given; its configuration key is on
        shown = "off" if option.negated else option.default_shown()
        text = option.help.replace("|", "\\|") or "-"
        if owner:
            text = f"{owner}: {text}"
        return f"| {flag} | {helper} | {key} | {shown or ''} | {text} |"

    rows += [row(o) for o in options if not o.global_flag]
    rows += [row(o, owner) for owner, o in type_options]
    return "\n".join(rows) + "\n"
