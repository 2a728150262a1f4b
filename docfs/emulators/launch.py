"""Building an emulator for ``docfs emulate`` and ``docfs demo``: each repository's accounts.

The repositories log in differently (email and password, an API key, a token, either), so each
type's descriptor says how the account named on the command line is made (``AccountHook``:
the emulator's options, the account, what a demo mount logs in with) and which demo data it
gets. The account exists before the demo data is seeded, because some demo sets fill their
first user's own space.
"""

from __future__ import annotations

from typing import Any

from docfs.backends.base import Credentials
from docfs.emulators.base import Emulator
from docfs.registry import remote_type
from docfs.remotetype import Account, load

__all__ = ["Account", "UnknownDemo", "build", "demo_credentials", "seed_demo"]


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
    rtype = remote_type(kind)
    cls = rtype.emulator_class()
    profile = cls.make_profile(server_version, settings, role)
    options: dict[str, Any] = {
        "latency_ms": latency_ms,
        **cls.options_for(profile),
        **rtype.account.emulator_options(account),
    }
    emulator: Any = cls.__new__(cls)
    emulator.server_profile = profile
    emulator.__init__(**options)
    rtype.account.create(emulator, account, admin=role == "admin")
    if demo:
        seed_demo(kind, emulator)
    if role != "admin" and account.user and hasattr(emulator, "grant_role"):
        # after the demo data, so that the role covers every demo collection
        emulator.grant_role(account.user, role)
    result: Emulator = emulator
    return result


def seed_demo(kind: str, emulator: Any) -> None:
    """Fill ``emulator`` with its type's demo data set."""
    seeder = remote_type(kind).demo
    if seeder is None:
        raise UnknownDemo(f"no demo data for {kind}")
    load(seeder)(emulator)


def demo_credentials(kind: str, emulator: Any, account: Account) -> Credentials:
    """What a mount of this emulator logs in with (``docfs demo``)."""
    return remote_type(kind).account.credentials(emulator, account)
