"""Opus 2's ``RemoteType``: the Platform v8 inbound Documents API, logged in with a token; its
wire profile (``profile`` in the configuration) and the rate limit that profile documents."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from docfs.backends.base import Credentials
from docfs.options import Option
from docfs.remotetype import Account, AccountHook, RemoteType, TypeOption

if TYPE_CHECKING:
    from docfs.backends.traffic import Limits

#: requests per minute per token of the emulator, unless ``--rate-limit`` says otherwise
EMULATOR_RATE_LIMIT = 50


def _check_profile(value: object, config_file: Path) -> Path | dict[str, Any]:
    """A file (relative to the configuration file) or a table of the profile's settings."""
    if isinstance(value, str):
        path = Path(value).expanduser()
        return path if path.is_absolute() else config_file.parent / path
    if isinstance(value, dict):
        from docfs.backends.opus2 import Opus2Profile

        try:
            Opus2Profile.from_mapping(value)
        except TypeError as exc:
            raise ValueError(str(exc)) from None
        return value
    from docfs.options import kind_of

    raise ValueError(f"expected a file name or a table, not {kind_of(value)}")


def _load_profile(value: Path | dict[str, Any]) -> Any:
    from docfs.backends.opus2 import load_profile

    try:
        return load_profile(value)
    except (OSError, ValueError, TypeError) as exc:
        detail = exc.strerror if isinstance(exc, OSError) else str(exc)
        raise ValueError(f"cannot use the wire profile: {detail}") from None


def _limits(backend_options: Mapping[str, Any]) -> Limits | None:
    """A wire profile knows its tenant's rate limit better than the class default."""
    profile = backend_options.get("profile")
    return None if profile is None else profile.limits()


class _Token(AccountHook):
    def emulator_options(self, account: Account) -> dict[str, Any]:
        rate = account.rate_limit if account.rate_limit is not None else EMULATOR_RATE_LIMIT
        return {"rate_limit": rate, **({"token": account.key} if account.key else {})}

    def create(self, emulator: Any, account: Account, *, admin: bool) -> None:
        return None  # the token came with the options

    def credentials(self, emulator: Any, account: Account) -> Credentials:
        return Credentials(token=account.key or emulator.default_token)


OPUS2 = RemoteType(
    name="opus2",
    label="Opus 2",
    description="Opus 2 Platform v8 inbound Documents API",
    backend="docfs.backends.opus2:Opus2Backend",
    emulator="docfs.emulators.opus2:Opus2Emulator",
    wrong_url="is this the Opus 2 tenant's address (https://TENANT, without /api)?",
    url_form="https://tenant",
    options=(
        TypeOption(
            Option(
                "profile",
                "text",
                "the wire profile, a file or a table",
                config=True,
                defaults=False,
                check=_check_profile,
            ),
            "profile",
            _load_profile,
        ),
    ),
    token_file=True,
    limits=_limits,
    account=_Token(),
    demo="docfs.emulators.demo_opus2:seed_demo",
    key_help="Opus 2: a token",
    rate_limit_help=f"Opus 2: requests per minute per token (default {EMULATOR_RATE_LIMIT})",
    refs="docfs.backends.opus2.finding:parse_ref",
)
