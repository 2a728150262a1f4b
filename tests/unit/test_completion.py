"""Shell completion (argcomplete, from the parser) and the manual page (argparse-manpage, from
the parser): commands, options, configured remote names and running mount points complete; the
committed man page is the parser's."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def complete(line: str, tmp_path: Path, **env: str) -> list[str]:
    """What Tab offers after ``line``, asked the way the shell hook asks."""
    out = tmp_path / "completions"
    environment = {
        **os.environ,
        "_ARGCOMPLETE": "1",
        "_ARGCOMPLETE_IFS": "\n",
        "COMP_LINE": line,
        "COMP_POINT": str(len(line)),
        "_ARGCOMPLETE_STDOUT_FILENAME": str(out),
        **env,
    }
    done = subprocess.run(
        [sys.executable, "-m", "docfs"], env=environment, capture_output=True, timeout=30
    )
    assert done.returncode == 0, done.stderr
    return [word.strip() for word in out.read_text().split("\n") if word.strip()]


@pytest.fixture
def home(tmp_path: Path) -> dict[str, str]:
    """A configuration with two remotes and one running mount, in private directories."""
    (tmp_path / "cfg" / "docfs").mkdir(parents=True)
    (tmp_path / "cfg" / "docfs" / "config.toml").write_text(
        '[remotes.lab]\ntype = "dspace6"\nurl = "https://a/rest"\n'
        '[remotes.library]\ntype = "dspace"\nurl = "https://b"\n'
    )
    run = tmp_path / "run"
    run.mkdir()
    # a live daemon's state file (this process stands in for the daemon)
    state = {"pid": os.getpid(), "mountpoint": "/home/me/lab", "remote": "dspace6:https://a"}
    (run / "mount-1234.json").write_text(json.dumps(state))
    return {"XDG_CONFIG_HOME": str(tmp_path / "cfg"), "DOCFS_RUNTIME_DIR": str(run)}


def test_commands_and_options_complete(tmp_path: Path, home: dict[str, str]) -> None:
    assert complete("docfs mo", tmp_path, **home) == ["mount"]
    assert complete("docfs sh", tmp_path, **home) == ["share", "shares"]
    assert complete("docfs mount --read", tmp_path, **home) == ["--read-only", "--read-ahead"]
    assert complete("docfs completion ", tmp_path, **home)[-3:] == ["bash", "zsh", "fish"]


def test_remote_names_and_types_complete_for_mount(tmp_path: Path, home: dict[str, str]) -> None:
    assert complete("docfs mount l", tmp_path, **home) == ["lab", "library"]
    assert complete("docfs mount ds", tmp_path, **home) == ["dspace6:", "dspace7:", "dspace:"]
    assert complete("docfs remotes check li", tmp_path, **home) == ["library"]


def test_running_mount_points_complete(tmp_path: Path, home: dict[str, str]) -> None:
    assert complete("docfs unmount /", tmp_path, **home) == ["/home/me/lab"]
    assert complete("docfs sync /home", tmp_path, **home) == ["/home/me/lab"]


def test_the_bash_hook_registers_the_completion() -> None:
    hook = subprocess.run(
        [sys.executable, "-m", "docfs", "completion", "bash"], capture_output=True, text=True
    )
    assert hook.returncode == 0
    registered = subprocess.run(
        ["bash", "-c", 'eval "$1"; complete -p docfs', "bash", hook.stdout],
        capture_output=True,
        text=True,
    )
    assert registered.returncode == 0, registered.stderr
    assert registered.stdout.split()[-1] == "docfs" and "-F" in registered.stdout


@pytest.mark.parametrize(("shell", "words"), [("zsh", "compdef"), ("fish", "complete")])
def test_zsh_and_fish_hooks(shell: str, words: str) -> None:
    hook = subprocess.run(
        [sys.executable, "-m", "docfs", "completion", shell], capture_output=True, text=True
    )
    assert hook.returncode == 0 and words in hook.stdout and "docfs" in hook.stdout


def test_the_installed_man_page_is_the_parsers() -> None:
    check = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "manpage.py"), "--check"],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "40"},
    )
    assert check.returncode == 0, "man/docfs.1 is stale: run .venv/bin/python scripts/manpage.py"
    page = (ROOT / "man" / "docfs.1").read_text()
    assert page.startswith('.TH DOCFS "1"')
    for command in ("mount", "unmount", "status", "sync", "completion"):
        assert f"\\fBdocfs\\fR \\fI\\,{command}\\/\\fR" in page
