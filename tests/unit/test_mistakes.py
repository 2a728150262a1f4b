"""The mistakes people make on the command line get one line that says what to do instead."""

from __future__ import annotations

import pytest

from docfs import cli


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
