"""Building an emulator for ``docfs emulate`` and ``docfs demo``: each repository's accounts.

The repositories log in differently — DSpace with email and password, RSpace with an API key,
Opus 2 with a token, DocSpace with either — so each type says here how the account named on the
command line is created, and which demo data it gets. The account exists before the demo data
is seeded, because some demo sets fill their first user's own space (DocSpace's My documents).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

from docfs.backends.base import Credentials
from docfs.emulators.base import Emulator
from docfs.registry import emulator_class


@dataclass(frozen=True)
class Account:
    """What ``docfs emulate`` was asked for; any part may be missing."""

    user: str | None = None
    password: str | None = None
    key: str | None = None  # API key or token
    rate_limit: int | None = None


class UnknownDemo(Exception):
    """The repository type has no demo data set."""


def build(
    kind: str,
    account: Account,
    *,
    demo: bool,
    latency_ms: float = 0.0,
    server_version: str | None = None,
    settings: dict[str, str] | None = None,
    role: str = "admin",
) -> Emulator:
    """An emulator of ``kind`` with the account created and, with ``demo``, the demo data.

    ``server_version``, ``settings`` and ``role`` select the release, the configuration and the
    seeded user's role; unknown ones raise ``UnknownServerOption``.
    """
    cls = emulator_class(kind)
    profile = cls.make_profile(server_version, settings, role)
    options: dict[str, Any] = {"latency_ms": latency_ms, **cls.options_for(profile)}
    if kind == "rspace" and account.key:
        options["api_key"] = account.key
    if kind == "opus2":
        options["rate_limit"] = account.rate_limit if account.rate_limit is not None else 50
        if account.key:
            options["token"] = account.key
    emulator: Any = cls.__new__(cls)
    emulator.server_profile = profile
    emulator.__init__(**options)
    if kind in ("dspace6", "dspace7", "docspace") and account.user and account.password:
        emulator.add_user(account.user, account.password, admin=role == "admin")
    if kind == "docspace" and account.key:
        owner = account.user or _first_docspace_user(emulator)
        emulator.add_api_key(owner, key=account.key)
    if demo:
        seed_demo(kind, emulator)
    if role != "admin" and account.user and hasattr(emulator, "grant_role"):
        # after the demo data, so that the role covers every demo collection
        emulator.grant_role(account.user, role)
    result: Emulator = emulator
    return result


def _first_docspace_user(emulator: Any) -> str:
    if not emulator.users:
        seed_demo("docspace", emulator)  # creates the demo account
    email: str = next(iter(emulator.users.values())).email
    return email


def seed_demo(kind: str, emulator: Any) -> None:
    """Fill ``emulator`` with its demo data set (``demo_<type>.seed_demo`` or ``seed_<type>``)."""
    for module, attr in (
        (f"docfs.emulators.demo_{kind}", "seed_demo"),
        ("docfs.emulators.demo_data", f"seed_{kind}"),
    ):
        try:
            seed = getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError):
            continue
        seed(emulator)
        return
    raise UnknownDemo(f"no demo data for {kind}")


def demo_credentials(kind: str, emulator: Any, account: Account) -> Credentials:
    """What a mount of this emulator logs in with (``docfs demo``)."""
    if kind == "opus2":
        return Credentials(token=account.key or emulator.default_token)
    if kind == "rspace":
        from docfs.emulators.rspace import DEFAULT_API_KEY

        return Credentials(token=account.key or DEFAULT_API_KEY)
    return Credentials(account.user, account.password)
