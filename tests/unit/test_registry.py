"""A repository is one package plus one registration line (issue 19).

The generic layers (command line, configuration, daemon, detection, emulator launcher, option
table) name no repository: what differs per type comes from its descriptor
(``docfs/backends/<type>/descriptor.py``) through ``docfs.registry``.
"""

from __future__ import annotations

import argparse
import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

from docfs import config, options, registry
from docfs.cli import build_parser

ROOT = Path(__file__).resolve().parents[2]

#: the modules that must stay generic
GENERIC = [
    "docfs/cli.py",
    "docfs/config.py",
    "docfs/daemon.py",
    "docfs/detect.py",
    "docfs/completion.py",
    "docfs/options.py",
    "docfs/remotetype.py",
    "docfs/emulators/launch.py",
]


def _generic_files() -> list[Path]:
    files = [ROOT / p for p in GENERIC]
    commands = ROOT / "docfs" / "commands"
    return files + sorted(commands.glob("*.py"))


def _kernel_side_files() -> list[Path]:
    """The filesystem itself: it knows the backend protocol only. Its comments may name a
    repository as the example of a rule; its code and strings may not."""
    vfs = sorted((ROOT / "docfs" / "vfs").glob("*.py"))
    return [ROOT / "docfs" / "control.py", ROOT / "docfs" / "fuse_ops.py", *vfs]


def _code_words(tree: ast.AST) -> list[tuple[int, str]]:
    """(line, text) of every identifier and string constant that is not a docstring."""
    docstrings = {
        id(body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        and (body := node.body)
        and isinstance(body[0], ast.Expr)
        and isinstance(body[0].value, ast.Constant)
    }
    words: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            if id(node) not in docstrings:
                words.append((node.lineno, node.value))
        elif isinstance(node, ast.Name):
            words.append((node.lineno, node.id))
        elif isinstance(node, ast.Attribute):
            words.append((node.lineno, node.attr))
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            words.append((node.lineno, node.name))
    return words


@pytest.mark.parametrize("path", _kernel_side_files(), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_the_filesystem_code_names_no_repository(path: Path) -> None:
    pattern = re.compile("|".join(re.escape(w) for w in _names()), re.IGNORECASE)
    found = [
        f"{line}: {word!r}"
        for line, word in _code_words(ast.parse(path.read_text()))
        if pattern.search(word)
    ]
    assert not found, f"{path.name} names a repository in code:\n" + "\n".join(found)


def test_the_code_check_skips_docstrings_but_not_strings() -> None:
    tree = ast.parse('"""About DSpace."""\ndef f():\n    return kind == "rspace"\n')
    assert [w for _, w in _code_words(tree) if "space" in w.lower()] == ["rspace"]


def _names() -> list[str]:
    """Every registered type's name and label, and each family's name."""
    words = {t.name for t in registry.REGISTERED} | set(registry.families())
    words |= {t.label for t in registry.REGISTERED}
    # the labels' stems too: "DSpace 7+" must not appear as "DSpace", "Opus 2" as "Opus"
    words |= {t.label.split()[0] for t in registry.REGISTERED}
    return sorted(words)


@pytest.mark.parametrize("path", _generic_files(), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_generic_modules_name_no_repository(path: Path) -> None:
    """Code, strings and comments alike: a new type must not need an edit here."""
    text = path.read_text()
    pattern = re.compile("|".join(re.escape(w) for w in _names()), re.IGNORECASE)
    found = [
        f"{number}: {line.strip()}"
        for number, line in enumerate(text.splitlines(), 1)
        if pattern.search(line)
    ]
    assert not found, f"{path.name} names a repository:\n" + "\n".join(found)


def test_the_check_sees_a_repository_name() -> None:
    """The pattern above does find a type's name (a check that cannot fail proves nothing)."""
    pattern = re.compile("|".join(re.escape(w) for w in _names()), re.IGNORECASE)
    for t in registry.REGISTERED:
        assert pattern.search(f'if kind == "{t.name}":')
        assert pattern.search(f"# the {t.label} case")


def test_every_registered_type_has_a_descriptor_in_its_package() -> None:
    for t in registry.REGISTERED:
        package = t.backend.split(":")[0]
        assert (ROOT / package.replace(".", "/") / "descriptor.py").is_file(), t.name
        assert t.backend_class().__module__.startswith(package)
        assert registry.remote_type(t.name) is t


def test_type_options_reach_parser_config_and_mount_helper() -> None:
    """A descriptor's option appears as a flag, an -o name and a config key without any
    edit of the generic modules."""
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    mount_flags = {s for a in sub.choices["mount"]._actions for s in a.option_strings}
    from docfs.commands import helper

    for _, typed in registry.type_options():
        option = typed.option
        if option.flag:
            assert option.flag in mount_flags
        if option.helper:
            assert option.helper.rstrip("=") in {*helper._HELPER_FLAGS, *helper._HELPER_VALUES}
        if option.config:
            assert option.name in config._REMOTE_KEYS


def test_every_config_option_is_a_remote_field() -> None:
    """The table's config keys and ``config.Remote``'s fields are one list."""
    fields = set(config.Remote.__dataclass_fields__)
    for option in options.MOUNT_OPTIONS:
        if option.config:
            assert option.name in fields, option.name
            assert option.name in config._REMOTE_KEYS


def test_the_table_defaults_are_the_vfs_and_daemon_defaults() -> None:
    """Where the vfs keeps a default of its own (``Options``), it is the table's."""
    from docfs.daemon import MountConfig
    from docfs.vfs.filesystem import Options

    vfs = Options()
    for name in ("dir_cache_time", "transfers", "write_back", "thumbnail_max"):
        assert getattr(vfs, name) == options.default(name), name
    mount = MountConfig(remote_type=registry.DEMO_DEFAULT, url="https://x", mountpoint=Path("/"))
    assert mount.cache_size == options.default("cache_size") == 10 << 30
    assert mount.timeout == options.default("timeout")


def test_the_readme_options_table_is_the_option_table() -> None:
    """README's generated table is current (``scripts/manpage.py`` writes it)."""
    check = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "manpage.py"), "--check-readme"],
        capture_output=True,
        text=True,
    )
    assert check.returncode == 0, "README's options table is stale: run scripts/manpage.py"


def test_the_readme_first_table_gives_the_table_defaults() -> None:
    """The hand-written table of common options in "Using it" states the same defaults."""
    section = (ROOT / "README.md").read_text().split("## Using it", 1)[1].split("<!--", 1)[0]
    rows = re.findall(r"^\| `(--[a-z-]+)[^`]*` \| ([^|]*) \|", section, re.M)
    by_flag = {o.flag: o for o in options.MOUNT_OPTIONS if o.flag}
    checked = 0
    for flag, cell in rows:
        option = by_flag.get(flag)
        if option is None:
            continue
        shown = "off" if option.negated else option.default_shown()
        if shown is None:
            continue
        assert cell.strip().strip("`").startswith(shown), (flag, cell, shown)
        checked += 1
    assert checked >= 8


def _mount_args(*words: str) -> argparse.Namespace:
    args = build_parser().parse_args(["mount", *words])
    args.argv = ["mount", *words]
    return args


def test_a_type_flag_reaches_its_backend_and_is_refused_for_another_type(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from docfs import cli

    for name in ("DOCFS_USER", "DOCFS_PASSWORD", "DOCFS_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    mount = cli.mount_config(
        _mount_args("docspace:https://portal", str(tmp_path), "--hide-trash", "--permanent-delete")
    )
    assert mount.backend_options == {"show_trash": False, "permanent_delete": True}
    plain = cli.mount_config(_mount_args("docspace:https://portal", str(tmp_path)))
    assert plain.backend_options == {}
    with pytest.raises(cli.UsageError, match="--hide-trash is an option of DocSpace remotes"):
        cli.mount_config(_mount_args("dspace6:https://x/rest", str(tmp_path), "--hide-trash"))


def test_a_configured_type_setting_reaches_its_backend_with_its_limits(tmp_path: Path) -> None:
    from docfs.commands.source import backend_options

    path = tmp_path / "config.toml"
    path.write_text(
        '[remotes.m]\ntype = "opus2"\nurl = "https://t"\n[remotes.m.profile]\nrate_limit = 30\n'
    )
    remote = config.load(path).remote("m")
    kwargs = backend_options(remote)
    opus2 = registry.remote_type("opus2")
    assert opus2.limits is not None
    limits = opus2.limits(kwargs)
    assert limits is not None and limits == kwargs["profile"].limits()
    assert limits != opus2.backend_class().default_limits


def test_the_control_channel_finds_a_types_own_requests() -> None:
    from docfs.backends.rspace.commands import serve_control
    from docfs.remotetype import load

    handler = registry.control_handler("rspace")
    assert handler is not None and load(handler) is serve_control
    assert registry.control_handler("status") is None
