"""RSpace's ``RemoteType``: the ELN API v1, logged in with an API key; its extra commands
(``docfs share``, ``unshare``, ``shares``, ``mkdir --notebook``) are in ``commands.py``,
``docfs import`` in ``importing.py``."""

from __future__ import annotations

from typing import Any

from docfs.backends.base import Credentials
from docfs.remotetype import Account, AccountHook, Command, RemoteType


class _ApiKey(AccountHook):
    """RSpace logs in with an API key only: the emulator takes it, the demo mount sends it."""

    def emulator_options(self, account: Account) -> dict[str, Any]:
        return {"api_key": account.key} if account.key else {}

    def create(self, emulator: Any, account: Account, *, admin: bool) -> None:
        return None  # the emulator's user exists already; the key came with the options

    def credentials(self, emulator: Any, account: Account) -> Credentials:
        from docfs.emulators.rspace import DEFAULT_API_KEY

        return Credentials(token=account.key or DEFAULT_API_KEY)


RSPACE = RemoteType(
    name="rspace",
    label="RSpace",
    description="RSpace ELN API v1",
    backend="docfs.backends.rspace:RSpaceBackend",
    emulator="docfs.emulators.rspace:RSpaceEmulator",
    wrong_url="is this the RSpace server's address (https://HOST, without /api/v1)?",
    commands=(
        Command(("share", "unshare", "shares", "mkdir"), "docfs.backends.rspace.commands:register"),
        Command(("import",), "docfs.backends.rspace.importing:register"),
    ),
    control_ops={
        "rspace": "docfs.backends.rspace.commands:serve_control",
        "rspace-import": "docfs.backends.rspace.importing:serve_control",
    },
    account=_ApiKey(),
    demo="docfs.emulators.demo_rspace:seed_demo",
    key_help="RSpace: an API key",
    refs="docfs.backends.rspace.finding:parse_ref",
)
