"""Configuration files: the schema, secret sources, and errors that name file, line and key."""

from __future__ import annotations

import re
import sys
import tomllib
import types
from pathlib import Path

import pytest

from docfs import cli, config
from docfs.config import ConfigError, Secret
from docfs.emulators.base import EmulatorServer

README = Path(__file__).resolve().parents[2] / "README.md"

GOOD = """\
# my remotes
[defaults]
cache_size = "2G"
dir_cache_time = 30

[remotes.lab]
type = "dspace6"
url = "https://repo.example.org/rest"
user = "me@example.org"
password = { env = "LAB_PASSWORD" }
requests_per_minute = 120
concurrency = 3
dir_cache_time = 90

[remotes."second-site"]
type = "rspace"
url = "https://eln.example.org"
token = { file = "eln.token" }
write_back = 5
transfers = 2
read_only = true
direct_io = true
"""


def write(tmp_path: Path, text: str, mode: int = 0o600) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text)
    path.chmod(mode)
    return path


def error_of(tmp_path: Path, text: str, mode: int = 0o600) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        config.load(write(tmp_path, text, mode))
    return caught.value


def test_a_good_file_gives_remotes_with_defaults_applied(tmp_path: Path) -> None:
    cfg = config.load(write(tmp_path, GOOD))
    assert sorted(cfg.remotes) == ["lab", "second-site"]
    lab = cfg.remote("lab")
    assert (lab.type, lab.url, lab.user) == (
        "dspace6",
        "https://repo.example.org/rest",
        "me@example.org",
    )
    assert lab.cache_size == 2 << 30  # from [defaults]
    assert lab.dir_cache_time == 90  # its own value wins over [defaults]
    assert (lab.requests_per_minute, lab.concurrency) == (120, 3)
    assert lab.password == Secret("env", "LAB_PASSWORD", "remotes.lab.password", 10)
    site = cfg.remote("second-site")
    assert (site.write_back, site.transfers, site.read_only) == (5, 2, True)
    assert site.direct_io is True and lab.direct_io is None
    assert site.dir_cache_time == 30 and site.concurrency is None
    assert site.token is not None and site.token.source == "file"


@pytest.mark.parametrize(
    ("text", "line", "key", "words"),
    [
        ('[remotes.a]\ntype = "dspace6"\nurl = "https://x/rest"\npasword = "pw"\n', 4,
         "remotes.a.pasword", "did you mean 'password'"),
        ('[remotes.a]\ntype = "dspace9"\nurl = "https://x"\n', 2, "remotes.a.type",
         "unknown type 'dspace9'"),
        ('[remotes.a]\ntype = "dspace6"\nurl = "ftp://x"\n', 3, "remotes.a.url", "http://"),
        ('\n[remotes.a]\nurl = "https://x"\n', 2, "remotes.a", "missing 'type'"),
        ('[remotes.a]\ntype = "dspace6"\nurl = "https://x"\nconcurrency = 0\n', 4,
         "remotes.a.concurrency", "at least 1"),
        ('[remotes.a]\ntype = "dspace6"\nurl = "https://x"\nconcurrency = "4"\n', 4,
         "remotes.a.concurrency", "whole number"),
        ('[remotes.a]\ntype = "dspace6"\nurl = "https://x"\ncache_size = "lots"\n', 4,
         "remotes.a.cache_size", "not a size"),
        ('[defaults]\nrequests_per_minute = -1\n', 2, "defaults.requests_per_minute",
         "more than 0"),
        ('[defaults]\ntype = "dspace6"\n', 2, "defaults.type", "unknown setting"),
        ('[remotes.a]\ntype = "dspace6"\nurl = "https://x"\npassword = { vault = "x" }\n', 4,
         "remotes.a.password", "{ env = ... }"),
        ('[remotes.a]\ntype = "dspace6"\nurl = "https://x"\nprofile = "p.toml"\n', 4,
         "remotes.a.profile", "Opus 2"),
        ('[remotes.a]\ntype = "opus2"\nurl = "https://x"\n[remotes.a.profile]\npaging = "x"\n',
         4, "remotes.a.profile", "paging"),
        ('[remote.a]\ntype = "dspace6"\n', 1, "remote", "did you mean 'remotes'"),
        ('[remotes."a/b"]\ntype = "dspace6"\nurl = "https://x"\n', 1, 'remotes.a/b', "name"),
        ('[remotes.status]\ntype = "dspace6"\nurl = "https://x"\n', 1, 'remotes.status',
         "'status' is a docfs command"),
    ],
)  # fmt: skip
def test_errors_name_the_key_and_its_line(
    tmp_path: Path, text: str, line: int, key: str, words: str
) -> None:
    error = error_of(tmp_path, text)
    assert (error.line, error.key) == (line, key)
    assert str(error).startswith(f"{tmp_path / 'config.toml'}:{line}: {key}: ")
    assert words in str(error)


def test_syntax_errors_carry_the_line_from_the_toml_parser(tmp_path: Path) -> None:
    error = error_of(tmp_path, '[remotes.a]\ntype = "dspace6"\nurl = https://x\n')
    assert error.line == 3
    assert "not valid TOML" in str(error) and "line 3, column" not in str(error)


def test_a_secret_in_a_readable_file_is_refused_without_showing_it(tmp_path: Path) -> None:
    text = '[remotes.a]\ntype = "dspace6"\nurl = "https://x/rest"\npassword = "hunter2-secret"\n'
    error = error_of(tmp_path, text, mode=0o644)
    assert (error.line, error.key) == (4, "remotes.a.password")
    assert "chmod 600" in str(error) and "0644" in str(error)
    assert "hunter2-secret" not in str(error)
    # the same file, private: accepted, and the secret never shows in a repr
    cfg = config.load(write(tmp_path, text, mode=0o600))
    remote = cfg.remote("a")
    assert "hunter2-secret" not in repr(remote)
    assert config.credentials(remote).password == "hunter2-secret"


def test_secrets_from_a_file_are_fine_in_a_readable_config(tmp_path: Path) -> None:
    (tmp_path / "a.password").write_text("from-the-file\n")
    (tmp_path / "a.password").chmod(0o600)
    text = '[remotes.a]\ntype = "dspace6"\nurl = "https://x/rest"\nuser = "u"\n'
    text += 'password = { file = "a.password" }\n'
    remote = config.load(write(tmp_path, text, mode=0o644)).remote("a")
    creds = config.credentials(remote)
    assert (creds.user, creds.password) == ("u", "from-the-file")


def test_a_secret_file_others_can_read_is_refused_like_a_credentials_file(
    tmp_path: Path,
) -> None:
    secret = tmp_path / "a.password"
    secret.write_text("from-the-file\n")
    secret.chmod(0o640)
    text = '[remotes.a]\ntype = "dspace6"\nurl = "https://x/rest"\nuser = "u"\n'
    text += 'password = { file = "a.password" }\n'
    remote = config.load(write(tmp_path, text)).remote("a")
    with pytest.raises(ConfigError) as caught:
        config.credentials(remote)
    assert (caught.value.line, caught.value.key) == (5, "remotes.a.password")
    assert f"the secret file {secret} is readable by group or others; chmod 600 {secret}" in str(
        caught.value
    )
    assert "from-the-file" not in str(caught.value)


def test_type_dspace_is_accepted_and_detected_at_mount_time(
    tmp_path: Path, dspace6: EmulatorServer
) -> None:
    text = f'[remotes.repo]\ntype = "dspace"\nurl = "{dspace6.url}"\n'
    remote = config.load(write(tmp_path, text)).remote("repo")
    assert remote.type == "dspace"
    assert cli.remote_kind(remote) == ("dspace6", f"{dspace6.url}/rest")


def test_keyring_is_an_optional_extra() -> None:
    project = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())
    extra = project["project"]["optional-dependencies"]["keyring"]
    assert [req.split(">")[0] for req in extra] == ["keyring"]
    assert not any("keyring" in d for d in project["project"]["dependencies"])


def test_secret_sources_env_and_systemd_credentials(tmp_path: Path) -> None:
    text = '[remotes.a]\ntype = "rspace"\nurl = "https://x"\ntoken = { env = "A_TOKEN" }\n'
    text += '[remotes.b]\ntype = "rspace"\nurl = "https://x"\ntoken = { credential = "b" }\n'
    cfg = config.load(write(tmp_path, text))
    assert config.credentials(cfg.remote("a"), {"A_TOKEN": "tok-a"}).token == "tok-a"
    creds_dir = tmp_path / "creds"
    creds_dir.mkdir()
    (creds_dir / "b").write_text("tok-b\n")
    env = {"CREDENTIALS_DIRECTORY": str(creds_dir)}
    assert config.credentials(cfg.remote("b"), env).token == "tok-b"


@pytest.mark.parametrize(
    ("text", "env", "line", "words"),
    [
        ('token = { env = "NOPE" }', {}, 4, "NOPE is not set"),
        ('token = { file = "missing.token" }', {}, 4, "cannot read the secret file"),
        ('token = { credential = "x" }', {}, 4, "CREDENTIALS_DIRECTORY is not set"),
        ('token = { credential = "x" }', {"CREDENTIALS_DIRECTORY": "/nonexistent"}, 4,
         "cannot read the systemd credential x"),
    ],
)  # fmt: skip
def test_unresolvable_secrets_say_where_they_looked(
    tmp_path: Path, text: str, env: dict[str, str], line: int, words: str
) -> None:
    full = f'[remotes.a]\ntype = "rspace"\nurl = "https://x"\n{text}\n'
    remote = config.load(write(tmp_path, full)).remote("a")
    with pytest.raises(ConfigError) as caught:
        config.credentials(remote, env)
    assert (caught.value.line, caught.value.key) == (line, "remotes.a.token")
    assert words in str(caught.value)


def test_keyring_is_optional(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = '[remotes.a]\ntype = "rspace"\nurl = "https://x"\ntoken = { keyring = "docfs" }\n'
    remote = config.load(write(tmp_path, text)).remote("a")
    monkeypatch.setitem(sys.modules, "keyring", None)  # as if not installed
    with pytest.raises(ConfigError, match=r"pip install 'docfs\[keyring\]'"):
        config.credentials(remote)
    fake = types.ModuleType("keyring")
    store = {("docfs", "a"): "tok-from-keyring"}

    def get_password(service: str, user: str) -> str | None:
        return store.get((service, user))

    monkeypatch.setattr(fake, "get_password", get_password, raising=False)
    monkeypatch.setitem(sys.modules, "keyring", fake)
    assert config.credentials(remote).token == "tok-from-keyring"
    store.clear()
    with pytest.raises(ConfigError, match="keyring set docfs a"):
        config.credentials(remote)


def test_unknown_remote_names_list_what_is_configured(tmp_path: Path) -> None:
    cfg = config.load(write(tmp_path, GOOD))
    with pytest.raises(ConfigError, match=r"no remote 'labb' \(configured: lab, second-site\)"):
        cfg.remote("labb")
    missing = config.load(tmp_path / "absent.toml")
    assert not missing.exists and not missing.remotes
    with pytest.raises(ConfigError, match="no such file"):
        config.load(tmp_path / "absent.toml", explicit=True)


def test_default_path_follows_xdg_then_etc(tmp_path: Path) -> None:
    env = {"XDG_CONFIG_HOME": str(tmp_path)}
    assert config.default_path(env) == tmp_path / "docfs" / "config.toml"
    assert config.default_path({**env, "DOCFS_CONFIG": "/x/y.toml"}) == Path("/x/y.toml")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("lab", ("lab", None)),
        ("lab:/", ("lab", None)),
        ("lab:/A/B/", ("lab", "/A/B")),
        ("lab://A//B", ("lab", "/A/B")),
        ("lab:/Faculty of Science", ("lab", "/Faculty of Science")),
    ],
)
def test_split_source(text: str, expected: tuple[str, str | None]) -> None:
    assert config.split_source(text) == expected


def test_split_source_refuses_a_relative_sub_path() -> None:
    with pytest.raises(ConfigError, match="NAME:/sub/path"):
        config.split_source("lab:A/B")


@pytest.mark.parametrize(
    ("text", "size"),
    [("512M", 512 << 20), ("10G", 10 << 30), ("1.5GiB", 3 << 29), ("100", 100), (7, 7)],
)
def test_parse_size(text: str | int, size: int) -> None:
    assert config.parse_size(text) == size


def test_key_lines_follow_tables_and_skip_multiline_strings() -> None:
    text = '[a]\nx = """\ny = 1\n"""\nz = 2\n[b."c-d"]\nw = 3\n[b.e]\n'
    assert config.key_lines(text) == {
        "a": 1,
        "a.x": 2,
        "a.z": 5,
        "b": 6,  # opened by its first sub-table
        "b.c-d": 6,
        "b.c-d.w": 7,
        "b.e": 8,
    }


def test_the_readme_example_parses(tmp_path: Path) -> None:
    """The configuration shown in the README is valid as printed."""
    section = README.read_text().split("## Configuration", 1)[1].split("\n## ", 1)[0]
    example = re.search(r"```toml\n(.*?)```", section, re.S)
    assert example is not None
    cfg = config.load(write(tmp_path, example.group(1)))
    assert sorted(cfg.remotes) == ["matters", "myrepo"]
    assert cfg.remote("myrepo").password == Secret(
        "file", "myrepo.password", "remotes.myrepo.password", 9
    )
    assert cfg.remote("matters").type_options["profile"] == tmp_path / "opus2-profile.toml"


def test_the_offline_and_cache_settings_are_configuration_keys(tmp_path: Path) -> None:
    """Issue 22's --pin-size, --cache-max-age and --cache-min-free are keys of a remote too,
    read with the same rules as their flags."""
    from docfs.cli import build_parser
    from docfs.commands.source import _given

    path = tmp_path / "config.toml"
    path.write_text(
        '[remotes.lab]\ntype = "dspace6"\nurl = "https://h/rest"\n'
        'pin_size = "5G"\ncache_max_age = 3600\ncache_min_free = "1G"\n'
    )
    remote = config.load(path, explicit=True).remote("lab")
    args = build_parser().parse_args(["mount", "lab", str(tmp_path)])
    assert _given(args, remote, "pin_size") == 5 << 30
    assert _given(args, remote, "cache_max_age") == 3600
    assert _given(args, remote, "cache_min_free") == 1 << 30
    flagged = build_parser().parse_args(["mount", "lab", str(tmp_path), "--pin-size", "1G"])
    assert _given(flagged, remote, "pin_size") == 1 << 30


def test_requests_per_minute_is_a_flag_as_well_as_a_key(tmp_path: Path) -> None:
    """``--requests-per-minute`` (and ``-o requests_per_minute=``) beat the configured value."""
    from docfs.cli import build_parser
    from docfs.commands.source import _given

    path = tmp_path / "config.toml"
    path.write_text('[remotes.lab]\ntype = "rspace"\nurl = "https://h"\nrequests_per_minute = 30\n')
    remote = config.load(path, explicit=True).remote("lab")
    plain = build_parser().parse_args(["mount", "lab", str(tmp_path)])
    assert _given(plain, remote, "requests_per_minute") == 30
    flagged = build_parser().parse_args(
        ["mount", "lab", str(tmp_path), "--requests-per-minute", "600"]
    )
    assert _given(flagged, remote, "requests_per_minute") == 600
