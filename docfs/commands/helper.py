"""The ``mount.fuse3`` call form: ``docfs SOURCE MOUNTPOINT -o a,b=c`` read as ``docfs mount``;
the ``-o`` names come from ``docfs.options`` and the repository types' descriptors."""

from __future__ import annotations

import difflib
from collections.abc import Sequence

from docfs.commands.common import COMMANDS, UsageError
from docfs.options import MOUNT_OPTIONS
from docfs.registry import type_options

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
