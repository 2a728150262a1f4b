"""Named remotes from a TOML file: ``docfs mount NAME[:/sub/path] MOUNTPOINT``.

The file is ``$XDG_CONFIG_HOME/docfs/config.toml`` (``~/.config/docfs/config.toml``), else
``/etc/docfs/config.toml``; ``--config`` or ``DOCFS_CONFIG`` name another one::

    [defaults]                      # optional: settings every remote inherits
    cache_size = "5G"

    [remotes.myrepo]
    type = "TYPE"                   # a registered repository type (docfs.registry)
    url = "https://repo.example.org/api"
    user = "me@example.org"
    password = { env = "MYREPO_PASSWORD" }   # or { file = … }, { credential = … }, { keyring = … }
    requests_per_minute = 120
    concurrency = 4

A secret is read from a file, an environment variable, ``$CREDENTIALS_DIRECTORY`` (systemd's
``LoadCredential=``) or the desktop keyring (when the ``keyring`` package is importable). A
secret written into the file itself is refused unless nobody else can read the file (mode 0600),
because a world-readable password is a leaked password. Every error names the file, the line and
the key, so a user can go straight to the mistake. Secrets are resolved only when a remote is
used, never while the file is parsed, and never appear in a ``repr`` or an error message.
"""

from __future__ import annotations

import difflib
import importlib
import os
import re
import stat
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from docfs import options
from docfs.backends.base import Credentials
from docfs.registry import REMOTE_TYPES, command_words, families, type_options

CONFIG_ENV = "DOCFS_CONFIG"
SYSTEM_CONFIG = Path("/etc/docfs/config.toml")

#: where a secret can come from (besides the file itself)
SECRET_SOURCES = ("file", "env", "credential", "keyring")
SECRET_KEYS = ("password", "token")

#: the shape of a remote name: nothing that reads as a path, a URL or an option
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
#: docfs's command words: ``docfs NAME MOUNTPOINT -o …`` (fstab) must not read as a command
COMMAND_WORDS = (
    "mount",
    "unmount",
    "status",
    "sync",
    "refresh",
    "resolve",
    "pin",
    "unpin",
    "pinned",
    "cache",
    "remotes",
    "demo",
    "emulate",
    *command_words(),  # the words only some repository types have
    "detect",
    "completion",
    "verify",
    "deposit",  # issue 21: SAF batches
    "export",
)


class ConfigError(Exception):
    """A mistake in the configuration; the message names file, line and key where known."""

    def __init__(
        self, message: str, *, path: Path | None = None, line: int | None = None, key: str = ""
    ) -> None:
        where = str(path) if path is not None else "config"
        if line is not None:
            where += f":{line}"
        if key:
            where += f": {key}"
        super().__init__(f"{where}: {message}")
        self.path, self.line, self.key = path, line, key


@dataclass(frozen=True)
class Secret:
    """Where one secret comes from. ``source`` is ``value`` for a secret written in the file."""

    source: str
    #: the path, variable, credential or keyring service name; the secret itself for ``value``
    ref: str = field(repr=False)
    key: str
    line: int | None = None

    def __repr__(self) -> str:
        shown = "***" if self.source == "value" else self.ref
        return f"Secret({self.source}={shown!r}, key={self.key!r})"


@dataclass(frozen=True)
class Remote:
    """One ``[remotes.NAME]`` table with ``[defaults]`` applied; ``None`` means "not set"."""

    name: str
    type: str
    url: str
    user: str | None = None
    password: Secret | None = None
    token: Secret | None = None
    requests_per_minute: float | None = None
    concurrency: int | None = None
    cache_size: int | None = None
    cache_dir: Path | None = None
    dir_cache_time: float | None = None
    write_back: float | None = None
    transfers: int | None = None
    read_only: bool | None = None
    direct_io: bool | None = None
    #: list the metadata files in directories (issue 21)
    metadata_files: bool | None = None
    timeout: float | None = None
    #: write the repository's thumbnails into the freedesktop thumbnail cache
    thumbnails: bool | None = None
    #: thumbnailers may not open uncached files larger than this (0: no guard)
    thumbnail_max: int | None = None
    #: process names (``/proc/PID/comm``) the guard treats as thumbnailers and indexers
    thumbnailers: tuple[str, ...] | None = None
    #: process names whose directory listings get the repository's thumbnails
    file_managers: tuple[str, ...] | None = None
    #: bytes per second for downloads and uploads together (0: no limit)
    bwlimit: int | None = None
    #: the most results one ``.search/QUERY/`` lists (issue 20)
    search_limit: int | None = None
    #: bytes pinned folders may hold (issue 22)
    pin_size: int | None = None
    #: seconds unread content stays cached (issue 22)
    cache_max_age: float | None = None
    #: bytes kept free on the cache's filesystem (issue 22)
    cache_min_free: int | None = None
    #: the repository type's own settings (``docfs.remotetype.TypeOption``), checked
    type_options: Mapping[str, Any] = field(default_factory=dict)
    source: Path | None = None
    line: int | None = None

    def secret_summary(self) -> str:
        """Where the secrets come from, for ``docfs remotes`` (never the secret itself)."""
        parts = []
        for secret in (self.password, self.token):
            if secret is None:
                continue
            kind = secret.key.rsplit(".", 1)[-1]
            if secret.source == "value":
                parts.append(f"{kind} written in the config file")
            else:
                parts.append(f"{kind} from {secret.source} {secret.ref}")
        return "; ".join(parts) or "anonymous"


@dataclass(frozen=True)
class Config:
    path: Path
    exists: bool
    remotes: Mapping[str, Remote]

    def remote(self, name: str) -> Remote:
        try:
            return self.remotes[name]
        except KeyError:
            pass
        if not self.exists:
            raise ConfigError(
                f"no remote {name!r}: this file does not exist (a remote can also be given as "
                "TYPE:URL)",
                path=self.path,
            )
        known = ", ".join(sorted(self.remotes)) or "none"
        hint = difflib.get_close_matches(name, list(self.remotes), n=1)
        also = f"; did you mean {hint[0]!r}?" if hint else ""
        raise ConfigError(f"no remote {name!r} (configured: {known}){also}", path=self.path)


def default_path(env: Mapping[str, str] | None = None) -> Path:
    """The configuration file to read when none is named on the command line."""
    env = os.environ if env is None else env
    if env.get(CONFIG_ENV):
        return Path(env[CONFIG_ENV]).expanduser()
    base = env.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    user = Path(base) / "docfs" / "config.toml"
    if not user.exists() and SYSTEM_CONFIG.exists():
        return SYSTEM_CONFIG
    return user


def split_source(text: str) -> tuple[str, str | None]:
    """``NAME[:/sub/path]`` → (name, sub-path or None)."""
    name, sep, sub = text.partition(":")
    if not sep:
        return name, None
    if not sub.startswith("/"):
        raise ConfigError(f"{text!r}: expected NAME or NAME:/sub/path (or TYPE:URL)")
    sub = "/" + "/".join(p for p in sub.split("/") if p)
    return name, None if sub == "/" else sub


# ---- reading the file ----------------------------------------------------------------------


def load(path: Path | None = None, *, explicit: bool = False) -> Config:
    """Parse the configuration file; a missing default file is an empty configuration."""
    path = path or default_path()
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        if explicit:
            raise ConfigError("no such file", path=path) from None
        return Config(path, False, {})
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc.strerror}", path=path) from None
    text = raw.decode("utf-8", errors="replace")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        found = re.search(r"\(at line (\d+), column \d+\)", message)
        line = int(found.group(1)) if found else None
        message = re.sub(r"\s*\(at line \d+, column \d+\)", "", message)
        raise ConfigError(f"not valid TOML: {message}", path=path, line=line) from None
    return _Parser(path, text, data).config()


class _Parser:
    """Checks one parsed file against the schema, naming key and line in every error."""

    def __init__(self, path: Path, text: str, data: dict[str, Any]) -> None:
        self.path = path
        self.data = data
        self.lines = key_lines(text)

    def error(self, key: str, message: str) -> ConfigError:
        return ConfigError(message, path=self.path, line=self.line_of(key), key=key)

    def line_of(self, key: str) -> int | None:
        # a key set inline (``password = { env = … }``) has no line of its own: use its parent's
        while key:
            if key in self.lines:
                return self.lines[key]
            key = key.rpartition(".")[0]
        return None

    def config(self) -> Config:
        for key in self.data:
            if key not in ("defaults", "remotes"):
                raise self.error(key, _unknown(key, ["defaults", "remotes"]))
        defaults = self.table("defaults", self.data.get("defaults", {}))
        for key, value in defaults.items():
            if key not in _SETTINGS:
                raise self.error(f"defaults.{key}", _unknown(key, list(_SETTINGS)))
            _SETTINGS[key](self, f"defaults.{key}", value)
        remotes = self.table("remotes", self.data.get("remotes", {}))
        result: dict[str, Remote] = {}
        for name, table in remotes.items():
            result[name] = self.remote(name, self.table(f"remotes.{name}", table), defaults)
        self.check_private(list(result.values()))
        return Config(self.path, True, result)

    def table(self, key: str, value: object) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.error(key, f"expected a table ([{key}]), not {_kind(value)}")
        return value

    def remote(self, name: str, table: dict[str, Any], defaults: dict[str, Any]) -> Remote:
        prefix = f"remotes.{name}"
        if not _NAME.fullmatch(name):
            raise self.error(prefix, "a remote name uses letters, digits, '.', '_' and '-'")
        if name in COMMAND_WORDS:
            raise self.error(prefix, f"{name!r} is a docfs command: choose another name")
        for key in table:
            if key not in _REMOTE_KEYS:
                raise self.error(f"{prefix}.{key}", _unknown(key, list(_REMOTE_KEYS)))
        kind = self.string(prefix, table, "type", required=True)
        assert kind is not None
        # a family's name: the mount asks the server which member it is, as for FAMILY:URL
        if kind not in REMOTE_TYPES and kind not in families():
            known = ", ".join([*sorted(REMOTE_TYPES), *families()])
            raise self.error(f"{prefix}.type", f"unknown type {kind!r} (known: {known})")
        url = self.string(prefix, table, "url", required=True)
        assert url is not None
        if not url.startswith(("http://", "https://")):
            raise self.error(f"{prefix}.url", f"expected an http:// or https:// URL, not {url!r}")
        values: dict[str, Any] = {}
        for key, check in _SETTINGS.items():
            if key in table:
                values[key] = check(self, f"{prefix}.{key}", table[key])
            elif key in defaults:
                values[key] = check(self, f"defaults.{key}", defaults[key])
        own = self.own_settings(prefix, kind, table)
        return Remote(
            name=name,
            type=kind,
            url=url,
            user=self.string(prefix, table, "user"),
            password=self.secret(prefix, table, "password"),
            token=self.secret(prefix, table, "token"),
            type_options=own,
            source=self.path,
            line=self.line_of(prefix),
            **values,
        )

    def string(
        self, prefix: str, table: dict[str, Any], key: str, *, required: bool = False
    ) -> str | None:
        value = table.get(key)
        if value is None:
            if required:
                raise self.error(prefix, f"missing {key!r}")
            return None
        if not isinstance(value, str) or not value:
            raise self.error(f"{prefix}.{key}", f"expected a non-empty string, not {_kind(value)}")
        return value

    def secret(self, prefix: str, table: dict[str, Any], key: str) -> Secret | None:
        value = table.get(key)
        full = f"{prefix}.{key}"
        if value is None:
            return None
        if isinstance(value, str):
            return Secret("value", value, full, self.line_of(full))
        if isinstance(value, dict) and len(value) == 1:
            ((source, ref),) = value.items()
            if source in SECRET_SOURCES and isinstance(ref, str) and ref:
                return Secret(source, ref, full, self.line_of(full))
        choices = ", ".join(f"{{ {s} = ... }}" for s in SECRET_SOURCES)
        raise self.error(full, f"expected one of {choices}, or the secret as a string")

    def own_settings(self, prefix: str, kind: str, table: dict[str, Any]) -> dict[str, Any]:
        """The repository type's own settings, each checked; another type's are refused."""
        found: dict[str, Any] = {}
        for key, option in _TYPE_KEYS.items():
            if key not in table:
                continue
            owners = [t for t, o in type_options() if o.option.name == key]
            if kind not in {t.name for t in owners}:
                labels = " and ".join(t.label for t in owners)
                raise self.error(f"{prefix}.{key}", f"{key!r} is a setting of {labels} remotes")
            found[key] = self.check(option, f"{prefix}.{key}", table[key])
        return found

    def check(self, option: options.Option, key: str, value: object) -> Any:
        try:
            return options.check_config(option, value, self.path)
        except ValueError as exc:
            raise self.error(key, str(exc)) from None

    def check_private(self, remotes: list[Remote]) -> None:
        inline = [
            s
            for r in remotes
            for s in (r.password, r.token)
            if s is not None and s.source == "value"
        ]
        if not inline:
            return
        mode = self.path.stat().st_mode
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            first = inline[0]
            raise ConfigError(
                f"a secret written in the file needs a private file (mode is "
                f"{stat.S_IMODE(mode):04o}): run 'chmod 600 {self.path}', or read it from a "
                f"file, an environment variable, a systemd credential or the keyring",
                path=self.path,
                line=first.line,
                key=first.key,
            )


# ---- the keys ------------------------------------------------------------------------------

Check = Callable[[_Parser, str, object], Any]


def _checker(option: options.Option) -> Check:
    def check(parser: _Parser, key: str, value: object) -> Any:
        return parser.check(option, key, value)

    return check


#: settings a remote may have and ``[defaults]`` may give to every remote (``docfs.options``)
_SETTINGS: dict[str, Check] = {
    o.name: _checker(o) for o in options.MOUNT_OPTIONS if o.config and o.defaults
}
#: the repository types' own settings: in a remote's table only, for its type only
_TYPE_KEYS: dict[str, options.Option] = {
    o.option.name: o.option for _, o in type_options() if o.option.config
}
_REMOTE_KEYS = {"type": None, "url": None, "user": None}
_REMOTE_KEYS.update(dict.fromkeys(_TYPE_KEYS))
_REMOTE_KEYS.update(dict.fromkeys(SECRET_KEYS))
_REMOTE_KEYS.update(dict.fromkeys(_SETTINGS))


_kind = options.kind_of
parse_size = options.parse_size


def _unknown(key: str, known: list[str]) -> str:
    hint = difflib.get_close_matches(key, known, n=1)
    return f"unknown setting {key!r}" + (f"; did you mean {hint[0]!r}?" if hint else "")


# ---- where keys are ------------------------------------------------------------------------

_HEADER = re.compile(r"\s*\[\[?\s*(?P<name>[^\]#]+?)\s*\]\]?\s*(?:#.*)?")
_ASSIGN = re.compile(
    r"\s*(?P<key>(?:\"[^\"]*\"|'[^']*'|[A-Za-z0-9_-]+)(?:\s*\.\s*(?:\"[^\"]*\"|'[^']*'|[A-Za-z0-9_-]+))*)\s*="
)
_PART = re.compile(r"\"([^\"]*)\"|'([^']*)'|([A-Za-z0-9_-]+)")


def _dotted(text: str) -> str:
    return ".".join(a or b or c for a, b, c in _PART.findall(text))


def key_lines(text: str) -> dict[str, int]:
    """Line number of every table header and key (``remotes.myrepo.url`` → 7).

    tomllib reports positions of syntax errors only; schema errors find their line here. The
    scan follows table headers and skips multi-line strings, which is all a config file uses.
    """
    lines: dict[str, int] = {}
    table = ""
    in_string: str | None = None
    for number, line in enumerate(text.splitlines(), 1):
        if in_string is not None:
            if line.count(in_string) % 2 == 1:
                in_string = None
            continue
        header = _HEADER.fullmatch(line)
        if header is not None:
            table = _dotted(header.group("name"))
            # ``[remotes.a]`` also opens ``remotes`` if nothing did before
            parts = table.split(".")
            for end in range(1, len(parts) + 1):
                lines.setdefault(".".join(parts[:end]), number)
            continue
        assign = _ASSIGN.match(line)
        if assign is None:
            continue
        key = _dotted(assign.group("key"))
        full = f"{table}.{key}" if table else key
        lines.setdefault(full, number)
        rest = line[assign.end() :]
        for quote in ('"""', "'''"):
            if rest.count(quote) % 2 == 1:
                in_string = quote
    return lines


# ---- secrets -------------------------------------------------------------------------------


def resolve_secret(secret: Secret, remote: Remote, env: Mapping[str, str] | None = None) -> str:
    """The secret's value; an error names the key and where the value was looked for."""
    env = os.environ if env is None else env

    def fail(message: str) -> ConfigError:
        return ConfigError(message, path=remote.source, line=secret.line, key=secret.key)

    if secret.source == "value":
        return secret.ref
    if secret.source == "file":
        path = Path(secret.ref).expanduser()
        if not path.is_absolute() and remote.source is not None:
            path = remote.source.parent / path
        try:
            value = path.read_text().strip()
            mode = path.stat().st_mode
        except OSError as exc:
            raise fail(f"cannot read the secret file {path}: {exc.strerror}") from None
        if mode & 0o077:
            # the rule --credentials-file follows: a secret others can read is no secret
            raise fail(f"the secret file {path} is readable by group or others; chmod 600 {path}")
    elif secret.source == "env":
        value = env.get(secret.ref, "")
        if not value:
            raise fail(f"the environment variable {secret.ref} is not set")
    elif secret.source == "credential":
        directory = env.get("CREDENTIALS_DIRECTORY")
        if not directory:
            raise fail(
                "CREDENTIALS_DIRECTORY is not set: systemd credentials exist only in a unit "
                f"with LoadCredential={secret.ref}:…"
            )
        try:
            value = (Path(directory) / secret.ref).read_text().strip()
        except OSError as exc:
            raise fail(f"cannot read the systemd credential {secret.ref}: {exc.strerror}") from None
    else:
        value = _from_keyring(secret, remote, fail)
    if not value:
        raise fail(f"the secret from {secret.source} {secret.ref} is empty")
    return value


def _from_keyring(secret: Secret, remote: Remote, fail: Callable[[str], ConfigError]) -> str:
    try:
        # optional: only people who use a desktop keyring need the package
        keyring = importlib.import_module("keyring")
    except ImportError:
        raise fail(
            "the keyring package is not installed (pip install 'docfs[keyring]', or pip "
            "install keyring)"
        ) from None
    try:
        value = keyring.get_password(secret.ref, remote.name)
    except Exception as exc:  # keyring backends raise their own types
        raise fail(f"the keyring failed: {type(exc).__name__}") from None
    if not value:
        raise fail(
            f"no entry in the keyring for service {secret.ref!r} and user {remote.name!r} "
            f"(keyring set {secret.ref} {remote.name})"
        )
    return str(value)


def credentials(remote: Remote, env: Mapping[str, str] | None = None) -> Credentials:
    """The remote's user and secrets, read from their sources now."""
    password = resolve_secret(remote.password, remote, env) if remote.password else None
    token = resolve_secret(remote.token, remote, env) if remote.token else None
    return Credentials(remote.user, password, token)


def token_file(remote: Remote) -> Path | None:
    """The file a token is read from, so a backend can re-read a regenerated token."""
    secret = remote.token
    if secret is None or secret.source != "file":
        return None
    path = Path(secret.ref).expanduser()
    if not path.is_absolute() and remote.source is not None:
        path = remote.source.parent / path
    return path
