"""The list of repository types, one registration line each, and the lookups over it.

A repository is one package, ``docfs/backends/<type>/``, whose ``descriptor.py`` builds its
``RemoteType`` (``docfs.remotetype``); registering it is one line in ``REGISTERED``. Everything
above the backends (command line, configuration, daemon, detection, emulator launcher) asks
here and names no repository. A family's members (``dspace:URL``) are probed in the order
they are registered.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from docfs.backends.docspace.descriptor import DOCSPACE
from docfs.backends.dspace6.descriptor import DSPACE6
from docfs.backends.dspace7.descriptor import DSPACE7
from docfs.backends.opus2.descriptor import OPUS2
from docfs.backends.rspace.descriptor import RSPACE
from docfs.remotetype import Command, RemoteType, TypeOption

if TYPE_CHECKING:
    from docfs.backends.http_backend import HttpBackend
    from docfs.emulators.base import Emulator

REGISTERED: tuple[RemoteType, ...] = (
    DSPACE7,  # before DSpace 6: a dspace:URL is asked first whether it is DSpace 7+
    DSPACE6,
    RSPACE,
    OPUS2,
    DOCSPACE,
)

REMOTE_TYPES: dict[str, RemoteType] = {t.name: t for t in REGISTERED}

#: what ``docfs demo`` serves when no ``--type`` is given
DEMO_DEFAULT = DSPACE6.name


def remote_type(name: str) -> RemoteType:
    try:
        return REMOTE_TYPES[name]
    except KeyError:
        known = ", ".join(sorted(REMOTE_TYPES))
        raise KeyError(f"unknown repository type {name!r} (known: {known})") from None


def backend_class(name: str) -> type[HttpBackend]:
    cls: type[HttpBackend] = remote_type(name).backend_class()
    return cls


def emulator_class(name: str) -> type[Emulator]:
    cls: type[Emulator] = remote_type(name).emulator_class()
    return cls


def families() -> dict[str, tuple[RemoteType, ...]]:
    """``family`` → its members in probe order (``dspace`` → DSpace 7+, DSpace 6)."""
    found: dict[str, list[RemoteType]] = {}
    for t in REGISTERED:
        if t.family is not None and t.probe is not None:
            found.setdefault(t.family, []).append(t)
    return {name: tuple(members) for name, members in found.items()}


def family_label(family: str) -> str:
    """``DSpace 7+ or DSpace 6``: what ``family:URL`` tells apart."""
    return " or ".join(t.label for t in families()[family])


def type_options() -> list[tuple[RemoteType, TypeOption]]:
    """Every type's own options, each with its type; one option may serve several types."""
    return [(t, o) for t in REGISTERED for o in t.options]


def option_owners(name: str) -> list[RemoteType]:
    """The types that have the option ``name``."""
    return [t for t, o in type_options() if o.option.name == name]


def commands() -> list[Command]:
    """The command words only some types have (``docfs share``), in registration order."""
    return [c for t in REGISTERED for c in t.commands]


def control_handler(op: str) -> str | None:
    """The import string of the handler of a type's own control request ``op``, if any."""
    return next((t.control_ops[op] for t in REGISTERED if op in t.control_ops), None)


def command_words() -> tuple[str, ...]:
    return tuple(w for c in commands() for w in c.words)


def example() -> str:
    """A ``TYPE:URL`` for help texts and messages: the first registered type's URL form."""
    first = REMOTE_TYPES[DEMO_DEFAULT]
    return f"{first.name}:{first.url_form}"
