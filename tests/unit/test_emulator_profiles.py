"""The release/settings/role framework of the emulators and ``docfs emulate``'s use of it."""

from __future__ import annotations

import subprocess
import sys

import pytest
from starlette.routing import BaseRoute

from docfs.emulators.base import Emulator, ServerSetting, UnknownServerOption, version_key


class _Toy(Emulator):
    name = "toy"
    versions = ("1.0", "2.0")
    server_settings = {
        "feature.enabled": ServerSetting("false", "a switch", ("true", "false")),
        "chunk": ServerSetting("10", "a size"),
    }
    roles = ("admin", "submitter")

    def routes(self) -> list[BaseRoute]:
        return []


def test_a_profile_defaults_to_the_newest_release_and_default_settings() -> None:
    profile = _Toy.make_profile()
    assert profile.version == "2.0"
    assert profile.settings == {"feature.enabled": "false", "chunk": "10"}
    assert not profile.flag("feature.enabled")
    assert profile.at_least("2.0") and not profile.at_least("2.1")


def test_settings_and_roles_are_checked() -> None:
    profile = _Toy.make_profile("1.0", {"feature.enabled": "true"}, "submitter")
    assert profile.flag("feature.enabled") and profile.role == "submitter"
    assert profile.setting("chunk") == "10"
    with pytest.raises(UnknownServerOption, match="unknown server version"):
        _Toy.make_profile("3.0")
    with pytest.raises(UnknownServerOption, match="unknown setting 'nope'"):
        _Toy.make_profile(None, {"nope": "1"})
    with pytest.raises(UnknownServerOption, match="must be one of"):
        _Toy.make_profile(None, {"feature.enabled": "maybe"})
    with pytest.raises(UnknownServerOption, match="unknown role"):
        _Toy.make_profile(None, None, "owner")


def test_an_instance_built_without_launch_has_the_default_profile() -> None:
    assert _Toy().server_profile == _Toy.make_profile()


def test_versions_compare_by_number() -> None:
    assert version_key("10.0") > version_key("9.1") > version_key("7.6.1")


def test_emulate_refuses_an_unknown_setting_with_a_usage_error() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "docfs", "emulate", "dspace6", "--port", "0", "--setting", "x=1"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "unknown setting 'x'" in result.stderr
    assert "Traceback" not in result.stderr
