"""The mistakes people make on the command line get one line that says what to do instead."""

from __future__ import annotations

from pathlib import Path

import pytest

from docfs import cli
from docfs.daemon import fuse_problem


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = cli.main(list(argv))
    return code, capsys.readouterr().err.strip()


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["stauts"], "docfs: unknown command 'stauts'; did you mean 'status'? (see docfs --help)"),
        (
            ["mout", "myrepo", "/m"],
            "docfs: unknown command 'mout'; did you mean 'mount'? (see docfs --help)",
        ),
    ],
)
def test_a_mistyped_command_is_named(
    capsys: pytest.CaptureFixture[str], argv: list[str], expected: str
) -> None:
    assert run(capsys, *argv) == (2, expected)


def test_a_source_that_looks_like_a_remote_is_still_a_mount_helper_call() -> None:
    # "docfs SOURCE MOUNTPOINT": a remote may be called anything, even close to a command
    assert cli.mistyped_command(["mout", "/mnt/x"]) is None
    assert cli.mistyped_command(["myrepo:/Lab", "/mnt/x", "-o", "ro"]) is None


def test_a_bare_url_is_told_to_name_its_type(capsys: pytest.CaptureFixture[str]) -> None:
    code, err = run(capsys, "mount", "https://repo.example.org/rest", "/tmp")
    assert code == 2
    assert err.startswith(
        "docfs: 'https://repo.example.org/rest' is a URL without its repository type: "
        "give it as TYPE:https://repo.example.org/rest with TYPE one of docspace, dspace6"
    )
    assert "docfs detect https://repo.example.org/rest" in err
    assert "this file does not exist" not in err


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        (
            "dspace6:htps://repo/rest",
            "docfs: remote 'dspace6:htps://repo/rest': the URL must start with http:// or https://",
        ),
        (
            "dspac6:https://repo/rest",
            "docfs: unknown repository type 'dspac6' (known: docspace, dspace6, dspace7, opus2, "
            "rspace); did you mean 'dspace6'?",
        ),
    ],
)
def test_a_mistyped_remote_says_what_is_wrong(
    capsys: pytest.CaptureFixture[str], source: str, expected: str
) -> None:
    assert run(capsys, "mount", source, "/tmp") == (2, expected)


def test_an_unknown_verbose_module_is_refused_with_a_hint(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert run(capsys, "-v", "htpp", "status") == (
        2,
        "docfs: -v htpp: no such module; did you mean 'http'?",
    )
    cli.check_verbose(["http", "vfs", "backends.dspace6", "httpx", "docfs.writes"])


def test_a_device_the_user_may_not_open_is_named_before_connecting(tmp_path: Path) -> None:
    device = tmp_path / "fuse"
    device.touch()
    problem = fuse_problem(device, lambda name: f"/usr/bin/{name}", lambda path: False)
    assert problem is not None
    assert problem.startswith(f"you may not open {device}: add yourself to its group (sudo usermod")
    assert fuse_problem(device, lambda name: f"/usr/bin/{name}", lambda path: True) is None


def test_a_user_without_a_password_is_refused_not_mounted_anonymously(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("DOCFS_PASSWORD", "DOCFS_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DOCFS_USER", "me@example.org")
    with pytest.raises(cli.UsageError, match="DOCFS_USER names a user but no password or token"):
        cli.read_credentials(None)
    monkeypatch.setenv("DOCFS_PASSWORD", "pw")
    assert cli.read_credentials(None).user == "me@example.org"
    monkeypatch.delenv("DOCFS_USER")
    assert cli.read_credentials(None).user is None  # anonymous on purpose
