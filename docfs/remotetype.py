"""What a repository type tells the rest of docfs about itself: the ``RemoteType`` descriptor.

Each repository package (``docfs/backends/<type>/descriptor.py``) builds one ``RemoteType`` and
``docfs/registry.py`` lists them. The command line, the configuration, the daemon, detection and
the emulator launcher ask the descriptor and never name a repository: its URL forms, backend
class, own options and how they reach the backend, the limits rule, extra commands, how an
emulator's account is made and what a demo mount logs in with, its detection probe, its
emulator and demo data.

Classes and functions that pull in more than this module are named as import strings
(``"package.module:attr"``) and loaded on use: mounting must never import the emulators'
Starlette and uvicorn, and ``docfs completion`` must stay quick.
"""

from __future__ import annotations

import importlib
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from docfs.backends.base import Credentials
from docfs.options import Option

if TYPE_CHECKING:
    from docfs.backends.traffic import Limits


def load(spec: str) -> Any:
    """The object an import string names: ``"docfs.backends.x:XBackend"``."""
    module, _, attr = spec.partition(":")
    return getattr(importlib.import_module(module), attr)


@dataclass(frozen=True)
class Account:
    """What ``docfs emulate`` was asked for; any part may be missing."""

    user: str | None = None
    password: str | None = None
    key: str | None = None  # API key or token
    rate_limit: int | None = None


class AccountHook:
    """How an emulator's account is made and what a mount of it logs in with.

    The default suits a repository that logs in with user and password; a type whose login is
    an API key or token overrides what differs.
    """

    def emulator_options(self, account: Account) -> dict[str, Any]:
        """Keyword arguments of the emulator class for this account."""
        return {}

    def create(self, emulator: Any, account: Account, *, admin: bool) -> None:
        """Create the account (before the demo data: some demo sets fill its own space)."""
        if account.user and account.password and hasattr(emulator, "add_user"):
            emulator.add_user(account.user, account.password, admin=admin)

    def credentials(self, emulator: Any, account: Account) -> Credentials:
        """What ``docfs demo``'s mount of this emulator logs in with."""
        return Credentials(account.user, account.password)


@dataclass(frozen=True)
class TypeOption:
    """A repository type's own option and how its value reaches the backend class."""

    option: Option
    #: the backend's keyword argument the value is given as
    backend_kwarg: str
    #: the value as the backend takes it (``not hide_trash`` → ``show_trash``, a profile file →
    #: the loaded profile); ValueError/OSError/TypeError say why it cannot be used
    to_backend: Callable[[Any], Any] | None = None


@dataclass(frozen=True)
class Command:
    """A command word only this type has (``docfs share``); ``register`` adds its parsers."""

    words: tuple[str, ...]
    #: import string of ``register(subparsers, parents=[…])``
    register: str


@dataclass(frozen=True)
class RemoteType:
    name: str
    #: the name a person uses, in messages and help (the product and its version)
    label: str
    description: str
    #: import string of the backend class
    backend: str
    #: import string of the emulator class
    emulator: str
    #: path of the API below the server's root, as served by the emulator
    api_path: str = ""
    #: what a 404 to the first request most likely means (the user gave the wrong URL)
    wrong_url: str = ""
    #: the URL form of ``TYPE:URL``, for messages and help (``https://host/rest``)
    url_form: str = "https://host"
    options: tuple[TypeOption, ...] = ()
    #: the backend takes ``token_file=`` and re-reads a regenerated token from it after a 401
    token_file: bool = False
    #: the limits the backend's options imply (a wire profile knows its tenant's rate limit),
    #: or None for the backend class's documented ``default_limits``
    limits: Callable[[Mapping[str, Any]], Limits | None] | None = None
    commands: tuple[Command, ...] = ()
    #: control-socket requests only this type's mounts answer: ``op`` → import string of
    #: ``async handler(backend, request) → answer`` (what its extra commands ask the daemon)
    control_ops: Mapping[str, str] = field(default_factory=dict)
    #: ``FAMILY:URL`` asks each member's probe in registration order
    family: str | None = None
    #: ``url → the URL to mount as this type``, or None when the server is not of this type
    probe: Callable[[str], Awaitable[str | None]] | None = None
    account: AccountHook = field(default_factory=AccountHook)
    #: import string of ``seed(emulator)``, the demo data set
    demo: str | None = None
    #: what ``docfs emulate --api-key`` is for this type ("LABEL: an API key")
    key_help: str = ""
    #: what ``docfs emulate --rate-limit`` means for this type, if anything
    rate_limit_help: str = ""
    #: import string of ``parse_ref(text) -> (IdKind, key) | None``: what ``docfs resolve``
    #: makes of an id, handle or web URL of this type (None: not a reference it knows)
    refs: str | None = None

    def backend_class(self) -> Any:
        return load(self.backend)

    def emulator_class(self) -> Any:
        return load(self.emulator)
