"""``docfs emulate``/``docfs demo`` accounts come from each type's descriptor (AccountHook):
the emulator's options, the account, and what a demo mount logs in with."""

from __future__ import annotations

from typing import Any

from docfs.backends.base import Credentials
from docfs.emulators.launch import Account, build, demo_credentials


def test_password_types_create_the_user_and_log_in_with_it() -> None:
    account = Account("a@example.org", "pw-secret-1")
    users: dict[str, Any] = {
        "dspace6": lambda e: [u.email for u in e._users.values() if u.admin],
        "dspace7": lambda e: [p.email for p in e._epersons.values() if p.admin],
        "docspace": lambda e: [u.email for u in e.users.values()],
    }
    for kind, emails in users.items():
        emulator: Any = build(kind, account, demo=False)
        assert emails(emulator) == ["a@example.org"], kind
        expected = Credentials(account.user, account.password)
        assert demo_credentials(kind, emulator, account) == expected


def test_rspace_takes_the_key_and_the_demo_mount_sends_it() -> None:
    from docfs.emulators.rspace import DEFAULT_API_KEY

    keyed = Account(key="myRSpaceKey0123456789")
    emulator: Any = build("rspace", keyed, demo=False)
    assert emulator._users[emulator.default_user].api_key == keyed.key
    assert demo_credentials("rspace", emulator, keyed) == Credentials(token=keyed.key)
    plain: Any = build("rspace", Account(), demo=False)
    assert demo_credentials("rspace", plain, Account()) == Credentials(token=DEFAULT_API_KEY)


def test_opus2_takes_token_and_rate_limit() -> None:
    account = Account(key="opus-token-1", rate_limit=7)
    emulator: Any = build("opus2", account, demo=False)
    assert emulator._rate_limit == 7
    assert demo_credentials("opus2", emulator, account) == Credentials(token="opus-token-1")
    default: Any = build("opus2", Account(), demo=False)
    assert default._rate_limit == 50  # the emulator's documented default per token
    assert demo_credentials("opus2", default, Account()) == Credentials(token=default.default_token)


def test_a_docspace_key_without_a_user_belongs_to_the_demo_account() -> None:
    key = "sk-" + "0" * 64
    emulator: Any = build("docspace", Account(key=key), demo=False)
    owner = next(u for u in emulator.users.values() if u.id == emulator._keys[key].user_id)
    assert owner.email in {u.email for u in emulator.users.values()}
    assert len(emulator.users) >= 1  # the demo account, made to own the key
