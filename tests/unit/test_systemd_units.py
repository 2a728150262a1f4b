"""The systemd units in ``systemd/``: the settings the notify protocol and a clean stop rely on,
command lines that the docfs command accepts, and ``systemd-analyze verify`` where it exists."""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from docfs import cli

UNITS = Path(__file__).resolve().parents[2] / "systemd"
USER_UNIT = UNITS / "docfs@.service"
SYSTEM_UNIT = UNITS / "docfs-system@.service"


def settings(unit: Path) -> list[tuple[str, str, str]]:
    """(section, key, value) in file order; systemd allows a key more than once."""
    found, section = [], ""
    for line in unit.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        found.append((section, key.strip(), value.strip()))
    return found


def values(unit: Path, key: str) -> list[str]:
    return [v for _, k, v in settings(unit) if k == key]


def docfs_words(command: str, home: str = "/home/me") -> list[str]:
    """The arguments a unit's command line gives the docfs command (``%i`` = myrepo)."""
    command = command.replace("%i", "myrepo").replace("%h", home)
    command = command.replace("${CACHE_DIRECTORY}", "/var/cache/docfs")
    words = shlex.split(command.lstrip("-"))
    if words[0] == "/usr/bin/env":
        words = words[1:]
    assert words[0] == "docfs", command
    return words[1:]


@pytest.mark.parametrize("unit", [USER_UNIT, SYSTEM_UNIT], ids=["user", "system"])
def test_units_are_notify_services_that_restart_and_stop_cleanly(unit: Path) -> None:
    assert values(unit, "Type") == ["notify"]
    assert values(unit, "NotifyAccess") == ["main"]
    assert values(unit, "Restart") == ["on-failure"]
    assert values(unit, "TimeoutStopSec")  # room for the upload drain (extended by docfs)
    (start,) = values(unit, "ExecStart")
    args = cli.build_parser().parse_args(docfs_words(start))
    assert (args.command, args.remote, args.daemon) == ("mount", "myrepo", False)
    (stop,) = values(unit, "ExecStop")
    stop_args = cli.build_parser().parse_args(docfs_words(stop))
    assert (stop_args.command, stop_args.mountpoint) == ("unmount", args.mountpoint)
    # a stale mount left by a crash is cleared before the start, ignoring failure ("-")
    assert any(v.startswith("-fusermount3 -u -z") for v in values(unit, "ExecStartPre"))


def test_the_user_unit_mounts_under_home_and_the_system_unit_for_everyone() -> None:
    (start,) = values(USER_UNIT, "ExecStart")
    assert cli.build_parser().parse_args(docfs_words(start)).mountpoint == "/home/me/docfs/myrepo"
    assert values(USER_UNIT, "WantedBy") == ["default.target"]
    (system_start,) = values(SYSTEM_UNIT, "ExecStart")
    args = cli.build_parser().parse_args(docfs_words(system_start))
    assert args.allow_other and args.mountpoint == "/mnt/docfs/myrepo"
    assert values(SYSTEM_UNIT, "After") == ["network-online.target"]
    assert values(SYSTEM_UNIT, "LoadCredential") == ["%i:/etc/docfs/credentials/%i"]
    assert values(SYSTEM_UNIT, "WantedBy") == ["multi-user.target"]


@pytest.mark.parametrize("unit", [USER_UNIT, SYSTEM_UNIT], ids=["user", "system"])
def test_systemd_analyze_finds_nothing_to_complain_about(unit: Path, tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        # the checks above still ran; this one needs systemd's own parser
        pytest.skip("systemd-analyze is not installed")
    # systemd-analyze checks that each command exists: point "docfs" at an executable one
    wrapper = tmp_path / "docfs"
    wrapper.write_text(f'#!/bin/sh\nexec {sys.executable} -m docfs "$@"\n')
    wrapper.chmod(0o755)
    text = unit.read_text().replace("=docfs ", f"={wrapper} ")
    instance = tmp_path / unit.name.replace("@", "@myrepo")
    instance.write_text(text)
    result = subprocess.run(
        [analyze, "verify", str(instance)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0 and not (result.stdout + result.stderr).strip(), result
