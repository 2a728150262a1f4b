"""The systemd units in ``systemd/``: the settings the notify protocol and a clean stop rely on,
command lines that the docfs command accepts, and ``systemd-analyze verify`` where it exists."""

from __future__ import annotations

import re
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
    assert words[0] in ("docfs", f"{home}/.local/bin/docfs"), command
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
    text = text.replace("=%h/.local/bin/docfs ", f"={wrapper} ")
    instance = tmp_path / unit.name.replace("@", "@myrepo")
    instance.write_text(text)
    result = subprocess.run(
        [analyze, "verify", str(instance)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0 and not (result.stdout + result.stderr).strip(), result


@pytest.mark.parametrize("unit", [USER_UNIT, SYSTEM_UNIT], ids=["user", "system"])
def test_errors_a_restart_cannot_cure_end_the_unit(unit: Path) -> None:
    (statuses,) = values(unit, "RestartPreventExitStatus")
    assert {int(s) for s in statuses.split()} == {cli.EXIT_USAGE, cli.EXIT_AUTH}
    assert values(unit, "UMask") == ["0077"]
    # a missing program must fail the start, not hide behind env (exit 127, restarted forever)
    assert not any("/usr/bin/env" in v for _, _, v in settings(unit))


def test_the_user_unit_leaves_setuid_fusermount3_working() -> None:
    # seccomp settings imply NoNewPrivileges= in a user unit, which breaks fusermount3
    keys = {k for _, k, _ in settings(USER_UNIT)}
    assert not keys & {"NoNewPrivileges", "SystemCallFilter", "LockPersonality", "RestrictSUIDSGID"}


def test_the_system_unit_is_hardened_without_hiding_its_mount() -> None:
    keys = {k for _, k, _ in settings(SYSTEM_UNIT)}
    # each of these runs the service in a mount namespace of its own, where the FUSE mount
    # would be invisible to the rest of the system
    assert not keys & {
        "ProtectSystem",
        "ProtectHome",
        "PrivateTmp",
        "PrivateDevices",
        "PrivateMounts",
        "ProtectKernelTunables",
        "ProtectControlGroups",
        "ProtectProc",
        "ReadWritePaths",
    }
    assert values(SYSTEM_UNIT, "DeviceAllow") == ["/dev/fuse rw"]
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed: the exposure score is not checked")
    result = subprocess.run(
        [analyze, "security", "--offline=true", "--no-pager", str(SYSTEM_UNIT)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    if "--offline" in result.stderr:
        pytest.skip(f"this systemd-analyze cannot rate a unit file: {result.stderr.strip()}")
    match = re.search(r"Overall exposure level for \S+: ([0-9.]+)", result.stdout)
    assert match, result.stdout[-500:] + result.stderr
    assert float(match.group(1)) < 5.0, result.stdout[-2000:]
