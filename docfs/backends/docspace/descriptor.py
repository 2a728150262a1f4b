"""ONLYOFFICE DocSpace's ``RemoteType``: API 2.0; its Trash options (``--permanent-delete``,
``--hide-trash``) and its accounts (a password, an API key ``sk-…``, or both)."""

from __future__ import annotations

from typing import Any

from docfs.options import Option
from docfs.remotetype import Account, AccountHook, RemoteType, TypeOption, load

DEMO = "docfs.emulators.demo_docspace:seed_demo"


class _PasswordOrKey(AccountHook):
    def create(self, emulator: Any, account: Account, *, admin: bool) -> None:
        super().create(emulator, account, admin=admin)
        if account.key:
            if not account.user and not emulator.users:
                load(DEMO)(emulator)  # creates the demo account, who owns the key
            owner = account.user or next(iter(emulator.users.values())).email
            emulator.add_api_key(owner, key=account.key)


DOCSPACE = RemoteType(
    name="docspace",
    label="DocSpace",
    description="ONLYOFFICE DocSpace API 2.0",
    backend="docfs.backends.docspace:DocSpaceBackend",
    emulator="docfs.emulators.docspace:DocSpaceEmulator",
    wrong_url="is this the DocSpace portal's address (https://PORTAL, without /api/2.0)?",
    url_form="https://portal",
    options=(
        TypeOption(
            Option(
                "permanent_delete",
                "flag",
                "rm deletes at once instead of moving to the Trash",
                flag="--permanent-delete",
                helper="permanent_delete",
            ),
            "permanent_delete",
        ),
        TypeOption(
            Option(
                "hide_trash",
                "flag",
                "do not show the Trash directory",
                flag="--hide-trash",
                helper="hide_trash",
            ),
            "show_trash",
            lambda hide: not hide,
        ),
    ),
    account=_PasswordOrKey(),
    demo=DEMO,
    key_help="DocSpace: an API key sk-…",
    refs="docfs.backends.docspace.finding:parse_ref",
)
