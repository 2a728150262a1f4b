"""The docfs command as a user runs it: mount --daemon, credentials, demo, emulate, unmount."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from docfs.emulators.base import EmulatorServer
from docfs.emulators.dspace6 import DSpace6Emulator
from tests.conftest import ADMIN

DOCFS = [sys.executable, "-m", "docfs"]


def env_without_secrets() -> dict[str, str]:
    env = dict(os.environ)
    for key in ("DOCFS_USER", "DOCFS_PASSWORD", "DOCFS_TOKEN"):
        env.pop(key, None)
    return env


def wait_for(predicate: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def seeded(server: EmulatorServer) -> DSpace6Emulator:
    e = server.emulator
    assert isinstance(e, DSpace6Emulator)
    com = e.add_community("Private", public=False)
    col = e.add_collection("Inside", com, public=False)
    item = e.add_item(col, "Secret item", public=False)
    e.add_bitstream(item, "note.txt", b"for members only\n", public=False)
    return e


def test_daemon_mode_with_a_credentials_file(
    dspace6_server: EmulatorServer, tmp_path: Path
) -> None:
    seeded(dspace6_server)
    creds = tmp_path / "creds"
    creds.write_text(f"# docfs credentials\nuser = {ADMIN[0]}\npassword = {ADMIN[1]}\n")
    creds.chmod(0o600)
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    result = subprocess.run(
        [
            *DOCFS,
            "mount",
            f"dspace6:{dspace6_server.url}/rest",
            str(mnt),
            "--daemon",
            "--credentials-file",
            str(creds),
            "--cache-dir",
            str(tmp_path / "cache"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env=env_without_secrets(),
    )
    assert result.returncode == 0, result.stderr
    assert "mounted at" in result.stdout
    assert os.path.ismount(mnt)  # ready when the command returned
    assert (mnt / "Private" / "Inside" / "Secret item" / "note.txt").read_text() == (
        "for members only\n"
    )
    pid = int(result.stdout.split("pid ")[1].split(",")[0])
    assert ADMIN[1].encode() not in Path(f"/proc/{pid}/cmdline").read_bytes()
    unmount = subprocess.run([*DOCFS, "unmount", str(mnt)], capture_output=True, text=True)
    assert unmount.returncode == 0, unmount.stderr
    wait_for(lambda: not Path(f"/proc/{pid}").exists() or _zombie(pid))
    assert not os.path.ismount(mnt)
    log_text = "".join(p.read_text() for p in (tmp_path / "cache").glob("*.log"))
    assert ADMIN[1] not in log_text


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1].startswith("Z")
    except OSError:
        return True


def test_wrong_password_fails_at_start_with_a_clear_message(
    dspace6_server: EmulatorServer, tmp_path: Path
) -> None:
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    env = env_without_secrets()
    env["DOCFS_USER"], env["DOCFS_PASSWORD"] = ADMIN[0], "not-the-password"
    result = subprocess.run(
        [
            *DOCFS,
            "mount",
            f"dspace6:{dspace6_server.url}/rest",
            str(mnt),
            "--cache-dir",
            str(tmp_path / "cache"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    # its own exit status, so that systemd's RestartPreventExitStatus= does not retry forever
    assert result.returncode == 77  # cli.EXIT_AUTH
    assert "HTTP 401" in result.stderr and "Traceback" not in result.stderr
    assert "not-the-password" not in result.stderr
    assert not os.path.ismount(mnt)


def test_bad_remote_and_mountpoint_are_usage_errors(tmp_path: Path) -> None:
    bad_type = subprocess.run(
        [*DOCFS, "mount", "nosuch:http://x", str(tmp_path)], capture_output=True, text=True
    )
    assert bad_type.returncode == 2 and "unknown repository type" in bad_type.stderr
    no_dir = subprocess.run(
        [*DOCFS, "mount", "dspace6:http://127.0.0.1:1/rest", str(tmp_path / "missing")],
        capture_output=True,
        text=True,
    )
    assert no_dir.returncode == 2 and "is not a directory" in no_dir.stderr


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def test_emulate_serves_the_demo_with_an_admin_account() -> None:
    port = free_port()
    env = env_without_secrets()
    env["DOCFS_PASSWORD"] = "emulated-admin-pw"
    proc = subprocess.Popen(
        [*DOCFS, "emulate", "dspace6", "--port", str(port), "--demo", "--user", "a@example.org"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert f"http://127.0.0.1:{port}/rest" in line
        with httpx.Client(base_url=f"http://127.0.0.1:{port}/rest") as client:
            assert client.get("/test").text == "REST api is running."
            login = client.post(
                "/login", data={"email": "a@example.org", "password": "emulated-admin-pw"}
            )
            assert login.status_code == 200 and "JSESSIONID" in login.cookies
            hierarchy = client.get("/hierarchy", headers={"Accept": "application/json"}).json()
            assert len(hierarchy["community"]) >= 2
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(15)


def test_demo_mounts_and_cleans_up_on_ctrl_c(tmp_path: Path) -> None:
    mnt = tmp_path / "demo"
    proc = subprocess.Popen(
        [*DOCFS, "demo", str(mnt)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env_without_secrets(),
    )
    try:
        wait_for(lambda: os.path.ismount(mnt) or proc.poll() is not None)
        assert proc.poll() is None
        assert "Faculty of Science" in os.listdir(mnt)
        csv = next(mnt.rglob("*.csv"))
        assert "," in csv.read_text().splitlines()[0]  # a real CSV header came through
        # the demo logs in as its administrator: writing works
        (csv.parent / "hello.txt").write_text("hello from the demo\n")
        assert (csv.parent / "hello.txt").read_text() == "hello from the demo\n"
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "Try, in another terminal" in out
    assert not os.path.ismount(mnt)


def printed_hints(proc: subprocess.Popen[str]) -> list[str]:
    """The commands the demo prints between "Try, in another terminal:" and "Press Ctrl-C"."""
    assert proc.stdout is not None
    lines: list[str] = []
    for line in proc.stdout:
        if line.startswith("Press Ctrl-C"):
            break
        lines.append(line.rstrip("\n"))
    start = lines.index("Try, in another terminal:")
    return [line.strip() for line in lines[start + 1 :] if line.strip()]


def run_hints(hints: list[str], cwd: Path) -> None:
    """Run each printed command as a user would paste it: each must succeed without a word on
    stderr (getfattr's note about absolute paths aside) and print something where it reads."""
    assert hints
    for command in hints:
        done = subprocess.run(
            ["bash", "-c", command], capture_output=True, text=True, cwd=cwd, timeout=60
        )
        noise = [
            line
            for line in done.stderr.splitlines()
            if "Removing leading '/' from absolute path names" not in line
        ]
        assert done.returncode == 0 and noise == [], f"{command}: {done.stderr}"
        if not command.startswith("cp "):
            assert done.stdout.strip(), f"{command} printed nothing"


@pytest.mark.parametrize("kind", ["dspace6", "dspace7", "rspace", "opus2", "docspace"])
def test_demo_of_every_repository_type(tmp_path: Path, kind: str) -> None:
    mnt = tmp_path / "my demo"  # the printed commands quote it
    proc = subprocess.Popen(
        [*DOCFS, "demo", "--type", kind, str(mnt)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env_without_secrets(),
    )
    try:
        wait_for(lambda: os.path.ismount(mnt) or proc.poll() is not None)
        assert proc.poll() is None, proc.communicate()[1]
        assert os.listdir(mnt)
        files = [p for p in mnt.rglob("*") if p.is_file()]
        assert sum(p.stat().st_size for p in files[:5]) > 0
        # a demo file reads back whole: as many bytes as its size says, not all zero
        first = next(p for p in files if p.stat().st_size > 0)
        data = first.read_bytes()
        assert len(data) == first.stat().st_size and data.strip(b"\0")
        # every command the demo suggests works on this repository (issue 23, item 11)
        run_hints(printed_hints(proc), tmp_path)
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert not os.path.ismount(mnt)


def test_emulate_takes_an_api_key_for_the_seeded_user() -> None:
    port = free_port()
    env = env_without_secrets()
    env["DOCFS_TOKEN"] = "cliGivenRspaceKey123"
    proc = subprocess.Popen(
        [*DOCFS, "emulate", "rspace", "--port", str(port), "--demo"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        assert f"http://127.0.0.1:{port}" in proc.stdout.readline()
        with httpx.Client(base_url=f"http://127.0.0.1:{port}/api/v1") as client:
            ok = client.get("/folders/tree", headers={"apiKey": "cliGivenRspaceKey123"})
            assert ok.status_code == 200
            assert client.get("/folders/tree", headers={"apiKey": "wrong"}).status_code == 401
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(15)


def test_detect_tells_dspace_6_from_dspace_7(tmp_path: Path) -> None:
    from docfs.emulators.dspace7 import DSpace7Emulator

    with EmulatorServer(DSpace6Emulator()) as six, EmulatorServer(DSpace7Emulator()) as seven:
        for url, expected in (
            (six.url, f"dspace6:{six.url}/rest"),
            (f"{six.url}/rest", f"dspace6:{six.url}/rest"),
            (seven.url, f"dspace7:{seven.url}"),
        ):
            result = subprocess.run([*DOCFS, "detect", url], capture_output=True, text=True)
            assert result.returncode == 0, result.stderr
            assert result.stdout.strip() == expected
        # and docfs mount dspace:URL mounts what it found
        mnt = tmp_path / "mnt"
        mnt.mkdir()
        env = env_without_secrets()
        proc = subprocess.Popen(
            [
                *DOCFS,
                "mount",
                f"dspace:{seven.url}",
                str(mnt),
                "--cache-dir",
                str(tmp_path / "cache"),
            ],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            wait_for(lambda: os.path.ismount(mnt) or proc.poll() is not None)
            assert proc.poll() is None, proc.communicate()[1]
        finally:
            subprocess.run(["fusermount3", "-u", str(mnt)], check=False)
            proc.wait(15)
    nothing = subprocess.run(
        [*DOCFS, "detect", "http://127.0.0.1:9"], capture_output=True, text=True
    )
    assert nothing.returncode == 2 and "neither DSpace" in nothing.stderr


def test_a_failed_daemon_mount_shows_this_attempts_log_lines_and_status(
    dspace6_server: EmulatorServer, tmp_path: Path
) -> None:
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    log_file = tmp_path / "docfs.log"
    log_file.write_text("2026-01-01 OLD-RUN-LINE unmounted\n")
    env = env_without_secrets()
    env["DOCFS_USER"], env["DOCFS_PASSWORD"] = ADMIN[0], "not-the-password"
    result = subprocess.run(
        [
            *DOCFS,
            "--log-file",
            str(log_file),
            "mount",
            f"dspace6:{dspace6_server.url}/rest",
            str(mnt),
            "--daemon",
            "--cache-dir",
            str(tmp_path / "cache"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert result.returncode == 77, result.stderr
    assert "HTTP 401" in result.stderr
    assert "OLD-RUN-LINE" not in result.stderr
    assert not os.path.ismount(mnt)


def test_daemon_logs_are_named_after_the_remote(
    dspace6_server: EmulatorServer, tmp_path: Path
) -> None:
    """Two configured remotes of one URL write ``<remote>.log`` each, not one shared file."""
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    cache = tmp_path / "cache"
    config = tmp_path / "config.toml"
    url = f"{dspace6_server.url}/rest"
    config.write_text(
        f'[remotes.lab]\ntype = "dspace6"\nurl = "{url}"\nuser = "{ADMIN[0]}"\n'
        'password = { env = "LAB_PASSWORD" }\n'
        f'[remotes.library]\ntype = "dspace6"\nurl = "{url}"\nuser = "{ADMIN[0]}"\n'
        'password = { env = "LIBRARY_PASSWORD" }\n'
    )
    env = env_without_secrets()
    env.update(LAB_PASSWORD="wrong-for-lab", LIBRARY_PASSWORD="wrong-for-library")
    for name in ("lab", "library"):
        argv = ["--config", str(config), "mount", name, str(mnt), "--daemon"]
        result = subprocess.run(
            [*DOCFS, *argv, "--cache-dir", str(cache)],
            capture_output=True,
            text=True,
            timeout=60,
            env=env,
        )
        assert result.returncode == 77, result.stderr
        assert f"last log lines ({cache / f'{name}.log'})" in result.stderr
    assert sorted(p.name for p in cache.glob("*.log")) == ["lab.log", "library.log"]
