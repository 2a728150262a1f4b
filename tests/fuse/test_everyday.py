"""Everyday use through real mounts: configured remotes and sub-paths, the systemd notify
protocol, status/sync/refresh over the control socket, journald-style logs, and the
``mount -t fuse.docfs`` / fstab call form through the real ``mount`` command.

The README's examples (configuration file, fstab line) are read from the README itself, so what
it shows is what these tests run.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from docfs import cli, control
from docfs.emulators.base import EmulatorServer
from docfs.emulators.dspace6 import DSpace6Emulator
from tests.conftest import ADMIN

DOCFS = [sys.executable, "-m", "docfs"]
README = Path(__file__).resolve().parents[2] / "README.md"


def wait_until(predicate: Callable[[], Any], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def readme_block(section: str, language: str, contains: str) -> str:
    """The fenced block in README section ``section`` that contains ``contains``."""
    text = README.read_text().split(f"\n## {section}", 1)[1].split("\n## ", 1)[0]
    blocks: list[tuple[str, str]] = re.findall(r"```(\w*)\n(.*?)```", text, re.S)
    return next(body for lang, body in blocks if lang == language and contains in body)


def emu(server: EmulatorServer) -> DSpace6Emulator:
    assert isinstance(server.emulator, DSpace6Emulator)
    return server.emulator


def seed(e: DSpace6Emulator) -> dict[str, str]:
    """/Lab/Incoming/Batch/hello.txt plus a dozen items to list."""
    lab = e.add_community("Lab")
    incoming = e.add_collection("Incoming", lab)
    batch = e.add_item(incoming, "Batch")
    e.add_bitstream(batch, "hello.txt", b"hello from the repository\n")
    archive = e.add_collection("Archive", lab)
    for n in range(12):
        e.add_bitstream(e.add_item(archive, f"Record {n:02d}"), "data.csv", b"a,b\n1,2\n")
    return {"lab": lab, "incoming": incoming, "batch": batch}


class Env:
    """An isolated user environment: config, cache and runtime directories of its own."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp = tmp_path
        # a Unix socket path must stay under 108 bytes: pytest's tmp paths can be longer
        self.runtime = Path(tempfile.mkdtemp(prefix="dfs-", dir="/tmp"))
        self.config_home = tmp_path / "config"
        self.cache_home = tmp_path / "xdgcache"
        self.vars = {k: v for k, v in os.environ.items() if not k.startswith("DOCFS_")}
        for key in ("NOTIFY_SOCKET", "INVOCATION_ID", "JOURNAL_STREAM", "CREDENTIALS_DIRECTORY"):
            self.vars.pop(key, None)
        self.vars.update(
            DOCFS_RUNTIME_DIR=str(self.runtime),
            XDG_CONFIG_HOME=str(self.config_home),
            XDG_CACHE_HOME=str(self.cache_home),
        )
        self.procs: list[subprocess.Popen[bytes]] = []
        self.mounts: list[Path] = []

    def write_config(self, text: str) -> Path:
        path = self.config_home / "docfs" / "config.toml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        return path

    def run(
        self, *args: str, check: bool = False, extra: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        """``docfs ARGS`` run by ``cli.main`` in this process, in this environment.

        The commands that talk to a mount are clients: running them in-process saves a Python
        start-up per call (seconds on a busy CI machine). A ``mount --daemon`` still starts its
        daemon as a separate process, and the real executable runs in the mount-helper test.
        """
        out, err = io.StringIO(), io.StringIO()
        root = logging.getLogger()
        saved_logging = root.handlers[:], root.filters[:], root.level
        saved_env = dict(os.environ)
        os.environ.clear()
        os.environ.update({**self.vars, **(extra or {})})
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                try:
                    code = cli.main(list(args))
                except SystemExit as exc:  # argparse's --help and usage errors
                    code = exc.code if isinstance(exc.code, int) else 2
        finally:
            os.environ.clear()
            os.environ.update(saved_env)
            root.handlers[:], root.filters[:] = saved_logging[0], saved_logging[1]
            root.setLevel(saved_logging[2])
        result = subprocess.CompletedProcess(["docfs", *args], code, out.getvalue(), err.getvalue())
        if check:
            result.check_returncode()
        return result

    def mountpoint(self, name: str) -> Path:
        path = self.tmp / name
        path.mkdir()
        self.mounts.append(path)
        return path

    def start(
        self, *args: str, extra: dict[str, str] | None = None, log: Path | None = None
    ) -> subprocess.Popen[bytes]:
        out = open(log or self.tmp / "daemon.log", "ab")  # noqa: SIM115 - the child keeps it
        proc = subprocess.Popen(
            [*DOCFS, *args], env={**self.vars, **(extra or {})}, stdout=out, stderr=out
        )
        out.close()
        self.procs.append(proc)
        return proc

    def daemon_pids(self) -> list[int]:
        pids = []
        for state in self.runtime.glob("mount-*.json"):
            try:
                pids.append(int(json.loads(state.read_text())["pid"]))
            except (OSError, ValueError, KeyError):
                continue
        return pids

    def cleanup(self) -> None:
        for path in self.mounts:
            subprocess.run(["fusermount3", "-u", "-z", str(path)], capture_output=True)
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
        for pid in self.daemon_pids():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        shutil.rmtree(self.runtime, ignore_errors=True)


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    environment = Env(tmp_path)
    yield environment
    environment.cleanup()


def admin_env() -> dict[str, str]:
    return {"DOCFS_USER": ADMIN[0], "DOCFS_PASSWORD": ADMIN[1]}


def readme_config(env: Env, url: str) -> Path:
    """The README's configuration, pointed at the emulator, with its password file."""
    text = readme_block("Configuration", "toml", "[remotes.myrepo]")
    text = text.replace("https://repo.example.org/rest", url)
    text = text.replace('user = "me@example.org"', f'user = "{ADMIN[0]}"')
    path = env.write_config(text)
    secret = path.parent / "myrepo.password"
    secret.write_text(ADMIN[1] + "\n")
    secret.chmod(0o600)
    return path


# ---- configured remotes --------------------------------------------------------------------


def test_configured_remote_sub_path_mount_status_and_rate_limit(
    env: Env, dspace6_server: EmulatorServer
) -> None:
    e = emu(dspace6_server)
    seed(e)
    readme_config(env, f"{dspace6_server.url}/rest")

    listed = env.run("remotes")
    assert listed.returncode == 0, listed.stderr
    assert re.search(
        r"^myrepo\s+dspace6\s+http://127\.0\.0\.1:\d+/rest as admin", listed.stdout, re.M
    )
    assert "password from file myrepo.password" in listed.stdout

    check = env.run("remotes", "check", "myrepo:/Lab")
    assert check.returncode == 0, check.stderr
    assert f"logged in as {ADMIN[0]}" in check.stdout
    assert "/Lab holds 2 entries: Archive/, Incoming/" in check.stdout
    missing = env.run("remotes", "check", "myrepo:/Nope")
    assert missing.returncode == 1 and "/ has no 'Nope' (it holds: Lab)" in missing.stderr

    e.clear_log()  # the checks above logged in too
    mnt = env.mountpoint("lab")
    mounted = env.run("mount", "myrepo:/Lab", str(mnt), "--daemon")
    assert mounted.returncode == 0, mounted.stderr
    assert sorted(os.listdir(mnt)) == ["Archive", "Incoming"]
    assert (mnt / "Incoming" / "Batch" / "hello.txt").read_text() == "hello from the repository\n"
    assert len(list((mnt / "Archive").glob("*/data.csv"))) == 12

    status = json.loads(env.run("status", str(mnt), "--json", check=True).stdout)
    assert (status["name"], status["sub_path"]) == ("myrepo", "/Lab")
    assert status["mountpoint"] == str(mnt)
    assert status["remote"] == f"dspace6:{dspace6_server.url}/rest"
    assert status["cache"]["limit"] == 10 << 30  # cache_size from [defaults]
    assert status["cache"]["used"] == len(b"hello from the repository\n")
    logins = status["requests"]["endpoints"]["login"]["requests"]
    assert logins == len(e.requests("POST", r"/login$")) == 1
    assert status["requests"]["total"] == sum(
        x["requests"] for x in status["requests"]["endpoints"].values()
    )
    # requests_per_minute = 300 (5/s, bursts of 10): listing 15 directories had to wait
    assert status["rate_limit"]["waits"] > 0 and status["rate_limit"]["seconds"] > 0
    everyone = json.loads(env.run("status", "--json", check=True).stdout)
    assert [s["mountpoint"] for s in everyone] == [str(mnt)]
    human = env.run("status", check=True).stdout
    assert f"{mnt}: myrepo:/Lab (dspace6:" in human and "uploads   none pending" in human

    assert env.run("unmount", str(mnt)).returncode == 0
    assert not os.path.ismount(mnt)
    gone = env.run("status", str(mnt))
    assert gone.returncode == 2 and "no docfs mount at" in gone.stderr


def test_config_errors_and_bad_secrets_are_reported_without_mounting(
    env: Env, dspace6_server: EmulatorServer
) -> None:
    env.write_config('[remotes.myrepo]\ntype = "dspace6"\nurl = "http://x/rest"\nuser = 1\n')
    mnt = env.mountpoint("m")
    bad = env.run("mount", "myrepo", str(mnt))
    assert bad.returncode == 2
    assert bad.stderr.strip().endswith(
        "config.toml:4: remotes.myrepo.user: expected a non-empty string, not a number"
    )
    env.write_config(
        f'[remotes.myrepo]\ntype = "dspace6"\nurl = "{dspace6_server.url}/rest"\n'
        f'user = "{ADMIN[0]}"\npassword = {{ env = "MYREPO_PW" }}\n'
    )
    unset = env.run("mount", "myrepo", str(mnt))
    assert unset.returncode == 2 and "MYREPO_PW is not set" in unset.stderr
    wrong = env.run("remotes", "check", "myrepo", extra={"MYREPO_PW": "wrong-password-x"})
    assert wrong.returncode == 1 and "HTTP 401" in wrong.stderr
    assert "wrong-password-x" not in wrong.stderr + wrong.stdout
    assert not os.path.ismount(mnt)


# ---- systemd -------------------------------------------------------------------------------


@pytest.mark.parametrize("abstract", [False, True], ids=["path", "abstract"])
def test_notify_protocol_and_journald_logs(
    env: Env, dspace6_server: EmulatorServer, abstract: bool
) -> None:
    e = emu(dspace6_server)
    ids = seed(e)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    if abstract:
        name = f"docfs-test-{uuid.uuid4().hex}"
        sock.bind("\0" + name)
        address = "@" + name
    else:
        address = str(env.runtime / "notify")
        sock.bind(address)
    sock.settimeout(60)
    mnt = env.mountpoint("mnt")
    log = env.tmp / "journal.log"
    proc = env.start(
        "-v",
        "http",
        "mount",
        f"dspace6:{dspace6_server.url}/rest",
        str(mnt),
        "--write-back",
        "3600",
        extra={**admin_env(), "NOTIFY_SOCKET": address, "INVOCATION_ID": "0123abcd"},
        log=log,
    )
    try:
        assert sock.recv(4096) == b"READY=1"
        # READY=1 comes once the mount answers: it does, at once
        assert os.path.ismount(mnt) and os.listdir(mnt) == ["Lab"]
        (mnt / "Lab" / "Incoming" / "Batch" / "late.txt").write_text("queued at stop\n")
        proc.send_signal(signal.SIGTERM)
        messages = [sock.recv(4096).decode()]
        while "EXTEND_TIMEOUT_USEC" not in messages[-1]:
            messages.append(sock.recv(4096).decode())
        assert proc.wait(60) == 0
    finally:
        sock.close()
    assert messages[0] == "STOPPING=1"
    assert messages[-1] == "STATUS=uploading: 1 left\nEXTEND_TIMEOUT_USEC=90000000"
    # the stop uploaded the queue
    names = [b["name"] for b in e.bitstreams_of(ids["batch"])]
    assert sorted(names) == ["hello.txt", "late.txt"]
    lines = log.read_text().splitlines()
    assert lines and all(re.match(r"<[3-7]>[a-z0-9._]+: ", line) for line in lines), lines[:5]
    assert not any(re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d", line) for line in lines)
    assert any(line.startswith("<7>docfs.http: GET") for line in lines)  # -v http
    assert not any(line.startswith("<7>docfs.vfs") for line in lines)  # other modules: info
    assert "<6>docfs.daemon: mount at" in log.read_text()
    assert ADMIN[1] not in log.read_text()


# ---- status, sync, refresh -----------------------------------------------------------------


def test_status_lists_pending_uploads_and_sync_waits_for_them(
    env: Env, dspace6_server: EmulatorServer
) -> None:
    e = emu(dspace6_server)
    ids = seed(e)
    mnt = env.mountpoint("mnt")
    result = env.run(
        "mount",
        f"dspace6:{dspace6_server.url}/rest",
        str(mnt),
        "--daemon",
        "--write-back",
        "3600",
        extra=admin_env(),
    )
    assert result.returncode == 0, result.stderr
    batch = mnt / "Lab" / "Incoming" / "Batch"
    files = {f"new-{n}.txt": f"file {n}\n".encode() * (n + 1) for n in range(3)}
    for name, data in files.items():
        (batch / name).write_bytes(data)

    status = json.loads(env.run("status", str(mnt), "--json", check=True).stdout)
    uploads = status["uploads"]
    assert uploads["pending"] == 3 and uploads["bytes_total"] == sum(map(len, files.values()))
    assert sorted(f["path"] for f in uploads["files"]) == [
        f"/Lab/Incoming/Batch/{n}" for n in sorted(files)
    ]
    for f in uploads["files"]:
        assert f["state"] == "queued" and f["sent"] == 0 and f["due_in"] > 3000
        assert f["size"] == len(files[f["path"].rsplit("/", 1)[1]])
    assert status["write_back"] == 3600
    human = env.run("status", str(mnt), check=True).stdout
    assert "3 pending" in human and re.search(r"queued, starts in (59 min|1 h)", human)
    assert e.requests("POST", r"/bitstreams$") == []

    synced = env.run("sync", str(mnt))
    assert synced.returncode == 0, synced.stderr
    assert "all uploads done (3 uploaded)" in synced.stdout
    # sync returned after the uploads, not before: the server has every file now
    on_server = {b["name"]: e.bitstream_data(b["uuid"]) for b in e.bitstreams_of(ids["batch"])}
    assert {k: on_server[k] for k in files} == files
    after = json.loads(env.run("status", str(mnt), "--json", check=True).stdout)
    assert after["uploads"]["pending"] == 0 and after["uploads"]["uploaded"] == 3
    assert after["requests"]["endpoints"]["bitstream.upload"]["requests"] == 3


def test_sync_fails_naming_the_upload_that_failed(env: Env, dspace6_server: EmulatorServer) -> None:
    e = emu(dspace6_server)
    ids = seed(e)
    mnt = env.mountpoint("mnt")
    result = env.run(
        "mount",
        f"dspace6:{dspace6_server.url}/rest",
        str(mnt),
        "--daemon",
        "--write-back",
        "3600",
        extra=admin_env(),
    )
    assert result.returncode == 0, result.stderr
    batch = mnt / "Lab" / "Incoming" / "Batch"
    (batch / "one.txt").write_text("one\n")
    (batch / "two.txt").write_text("two\n")
    e.plan_fault(method="POST", path=r"/bitstreams$", status=403, times=1)
    synced = env.run("sync", str(mnt))
    assert synced.returncode == 1
    arrived = {b["name"] for b in e.bitstreams_of(ids["batch"])} - {"hello.txt"}
    assert len(arrived) == 1
    (lost,) = {"one.txt", "two.txt"} - arrived
    assert "1 uploads failed (their data is in lost+found)" in synced.stderr
    assert re.search(rf"failed: /Lab/Incoming/Batch/{lost}: .*HTTP 403", synced.stderr)
    status = json.loads(env.run("status", str(mnt), "--json", check=True).stdout)
    assert status["lost_found"] == 1 and status["uploads"]["pending"] == 0
    assert status["requests"]["endpoints"]["bitstream.upload"]["errors"] == 1


def test_status_shows_the_progress_of_a_running_upload(
    env: Env, dspace6_server: EmulatorServer
) -> None:
    e = emu(dspace6_server)
    ids = seed(e)
    mnt = env.mountpoint("mnt")
    result = env.run(
        "mount",
        f"dspace6:{dspace6_server.url}/rest",
        str(mnt),
        "--daemon",
        "--write-back",
        "0",
        extra=admin_env(),
    )
    assert result.returncode == 0, result.stderr
    size = 48 << 20
    # the server sits on the upload for a while: the client fills the socket buffers and waits
    e.plan_fault(method="POST", path=r"/bitstreams$", delay=4.0, times=1)
    with open(mnt / "Lab" / "Incoming" / "Batch" / "big.bin", "wb") as out:
        out.write(os.urandom(1 << 20) * 48)
    (state,) = [json.loads(p.read_text()) for p in env.runtime.glob("mount-*.json")]
    seen: dict[str, Any] = {}

    def uploading() -> bool:
        # asked in-process: a new python per poll could miss the few seconds the upload takes
        status = control.call(Path(state["control"]), {"op": "status"})["status"]
        files = status["uploads"]["files"]
        if files and files[0]["state"] == "uploading" and files[0]["sent"] > 0:
            seen.update(files[0], human=cli.format_status(status))
            return True
        return False

    wait_until(uploading)
    assert seen["path"] == "/Lab/Incoming/Batch/big.bin" and seen["size"] == size
    assert 0 < seen["sent"] < size
    assert seen["eta"] is not None and seen["eta"] > 0
    line = next(x for x in seen["human"].splitlines() if x.endswith("/Batch/big.bin"))
    assert re.search(r"\[#*-+\]\s+48\.0 MiB\s+\d+%  ([\d.]+ [KM]iB/s  )?ETA ", line), line
    assert env.run("sync", str(mnt)).returncode == 0
    (big,) = [b for b in e.bitstreams_of(ids["batch"]) if b["name"] == "big.bin"]
    assert len(e.bitstream_data(big["uuid"])) == size


def test_status_shows_a_sync_mode_upload_with_the_bytes_that_left(
    env: Env, dspace6_server: EmulatorServer, tmp_path: Path
) -> None:
    """Without write-back a file uploads while close() waits: status shows it in flight,
    with bytes counted as they leave (growing under a slow uplink), rate and ETA."""
    e = emu(dspace6_server)
    seed(e)
    mnt = env.mountpoint("mnt")
    result = env.run(
        "mount", f"dspace6:{dspace6_server.url}/rest", str(mnt), "--daemon", extra=admin_env()
    )
    assert result.returncode == 0, result.stderr
    size = 12 << 20
    e.upload_bandwidth = 2 << 20  # six seconds of upload
    src = tmp_path / "big.bin"
    src.write_bytes(os.urandom(size))
    (state,) = [json.loads(p.read_text()) for p in env.runtime.glob("mount-*.json")]
    copy = subprocess.Popen(["cp", str(src), str(mnt / "Lab" / "Incoming" / "Batch")])
    samples: list[dict[str, Any]] = []

    def two_moments_in_flight() -> bool:
        # asked in-process: a new python per poll could miss the seconds the upload takes
        status = control.call(Path(state["control"]), {"op": "status"})["status"]
        for t in status["transfers"]:
            if 0 < t["sent"] < size:
                sent = status["requests"]["endpoints"]["bitstream.upload"]["bytes_sent"]
                samples.append({**t, "endpoint_sent": sent, "human": cli.format_status(status)})
        return len({s["sent"] for s in samples}) >= 2

    wait_until(two_moments_in_flight)
    # and as a script sees it: docfs status --json, later, has more bytes sent
    later = json.loads(env.run("status", str(mnt), "--json", check=True).stdout)
    (flying,) = later["transfers"]
    assert samples[0]["sent"] < samples[-1]["sent"] <= flying["sent"] < size
    assert copy.wait(60) == 0
    first, last = samples[0], samples[-1]
    assert first["path"] == last["path"] == "/Lab/Incoming/Batch/big.bin"
    assert first["size"] == size and first["sent"] < last["sent"] < size
    # the endpoint counter counts what left too, not the whole body at the start
    assert last["endpoint_sent"] < size
    assert last["rate"] > 0 and last["eta"] > 0
    line = next(x for x in last["human"].splitlines() if x.endswith("/Batch/big.bin"))
    assert re.search(r"\[#*-+\] [\d.]+ [KM]iB of 12\.0 MiB, [\d.]+ [KM]iB/s, ETA \d+ s  /", line)
    status = json.loads(env.run("status", str(mnt), "--json", check=True).stdout)
    assert status["transfers"] == []
    assert status["requests"]["endpoints"]["bitstream.upload"]["bytes_sent"] >= size


def test_refresh_drops_cached_listings(env: Env, dspace6_server: EmulatorServer) -> None:
    e = emu(dspace6_server)
    ids = seed(e)
    mnt = env.mountpoint("mnt")
    result = env.run(
        "mount",
        f"dspace6:{dspace6_server.url}/rest",
        str(mnt),
        "--daemon",
        "--dir-cache-time",
        "3600",
        extra=admin_env(),
    )
    assert result.returncode == 0, result.stderr
    incoming = mnt / "Lab" / "Incoming"
    assert os.listdir(incoming) == ["Batch"]
    e.add_item(ids["incoming"], "Added behind the mount's back")
    # every readdir reaches docfs (the kernel keeps no directory contents): docfs's listing is
    # trusted for an hour
    assert os.listdir(incoming) == ["Batch"]
    refreshed = env.run("refresh", str(mnt / "Lab"))
    assert refreshed.returncode == 0, refreshed.stderr
    counted = re.search(r"(\d+) cached listings dropped", refreshed.stdout)
    assert counted is not None, refreshed.stdout
    dropped = int(counted.group(1))
    assert dropped == 2  # /Lab and /Lab/Incoming; /Lab/Archive was never listed
    assert sorted(os.listdir(incoming)) == ["Added behind the mount's back", "Batch"]
    nothing = env.run("refresh", str(mnt / "Lab" / "Archive"))
    assert "0 cached listings dropped" in nothing.stdout
    outside = env.run("refresh", str(env.tmp))
    assert outside.returncode == 2 and "is not inside a docfs mount" in outside.stderr


# ---- mount -t fuse.docfs and fstab ---------------------------------------------------------

HELPER_SCRIPT = """\
set -eu
# mount(8) clears PATH for its helpers, so mount.fuse3 finds docfs only in the system's
# directories: in this private mount namespace, our docfs is /usr/local/bin/docfs
mount --bind "$BIN" /usr/local/bin
trap 'umount -l "$MP" 2>/dev/null || true; umount -l "$MP2" 2>/dev/null || true' EXIT
{mount_command}
echo "== findmnt"; findmnt -no FSTYPE,OPTIONS "$MP"
echo "== ls"; ls "$MP/Lab"
echo "== cat"; cat "$MP/Lab/Incoming/Batch/hello.txt"
echo "== write"
if (echo x > "$MP/Lab/Incoming/Batch/new.txt") 2>/dev/null; then echo written; else echo refused; fi
echo "== status"; docfs status "$MP" --json | tr -d '\\n'; echo
umount "$MP"
echo "== fstab"
mount --fstab "$FSTAB" "$MP2"
findmnt -no FSTYPE,OPTIONS "$MP2"
ls "$MP2/Lab"
umount "$MP2"
echo "== done"
"""


def test_mount_helper_form_through_the_real_mount_command_and_fstab(
    env: Env, dspace6_server: EmulatorServer
) -> None:
    if shutil.which("unshare") is None or shutil.which("mount.fuse3") is None:
        pytest.fail("this test needs unshare and mount.fuse3 (util-linux, fuse3)")
    seed(emu(dspace6_server))
    readme_config(env, f"{dspace6_server.url}/rest")
    bin_dir = env.tmp / "bin"
    bin_dir.mkdir()
    wrapper = bin_dir / "docfs"
    wrapper.write_text(f'#!/bin/sh\nexec {sys.executable} -m docfs "$@"\n')
    wrapper.chmod(0o755)
    mp, mp2 = env.mountpoint("repo"), env.mountpoint("repo2")
    # the README's fstab line, pointed at our mount point
    line = (
        readme_block("fstab and `mount -t fuse.docfs`", "", "fuse.docfs").strip().splitlines()[-1]
    )
    assert line.split()[:3] == ["myrepo", "/mnt/repo", "fuse.docfs"]
    fstab = env.tmp / "fstab"
    fstab.write_text(line.replace("/mnt/repo", str(mp2)) + "\n")
    # the README's mount command, as root, pointed at our mount point
    command = readme_block("fstab and `mount -t fuse.docfs`", "bash", "mount -t fuse.docfs")
    words = shlex.split(next(x for x in command.splitlines() if "mount -t" in x))
    assert words[:4] == ["sudo", "mount", "-t", "fuse.docfs"]
    words = [str(mp) if w == "/mnt/repo" else w for w in words[1:]]
    script = env.tmp / "helper.sh"
    script.write_text(HELPER_SCRIPT.replace("{mount_command}", shlex.join(words)))
    result = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "sh", str(script)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**env.vars, "BIN": str(bin_dir), "MP": str(mp), "MP2": str(mp2), "FSTAB": str(fstab)},
    )
    logs = "\n".join(p.read_text() for p in env.cache_home.rglob("*.log"))
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}\n{logs}"
    sections = dict(re.findall(r"== (\w+)\n(.*?)(?=\n== |\Z)", result.stdout, re.S))
    fstype, options = sections["findmnt"].split()
    assert fstype == "fuse.docfs"
    assert {"ro", "nosuid", "nodev", "allow_other"} <= set(options.split(","))
    assert sections["ls"].split() == ["Archive", "Incoming"]
    assert sections["cat"] == "hello from the repository"
    assert sections["write"] == "refused"
    status = json.loads(sections["status"])
    assert (status["name"], status["read_only"]) == ("myrepo", True)
    assert status["cache"]["limit"] == 2 << 30  # cache_size=2G
    fstab_type, fstab_options = sections["fstab"].splitlines()[0].split()
    assert fstab_type == "fuse.docfs" and "ro" in fstab_options.split(",")
    assert sections["fstab"].splitlines()[1:] == ["Archive", "Incoming"]
    assert "done" in sections
    # both daemons went away with their mounts: no state file is left
    wait_until(lambda: not env.daemon_pids())


def test_a_killed_daemon_leaves_no_state_behind_the_next_mount(
    env: Env, dspace6_server: EmulatorServer
) -> None:
    """Issue 18.8: after SIGKILL the daemon's ``mount-*.json`` and ``.sock`` stayed in the
    runtime directory for good, and ``docfs status`` said "no docfs mount" about a mount point
    that answers ENOTCONN. The next mount removes them; status names the stale mount."""
    seed(emu(dspace6_server))
    source = f"dspace6:{dspace6_server.url}/rest"
    first = env.mountpoint("first")
    env.start("mount", source, str(first), extra=admin_env())
    wait_until(lambda: list(env.runtime.glob("mount-*.sock")) and os.listdir(first))
    left = sorted(env.runtime.glob("mount-*"))
    assert [p.suffix for p in left] == [".json", ".sock"]
    (pid,) = env.daemon_pids()
    os.kill(pid, signal.SIGKILL)
    wait_until(lambda: env.procs[0].poll() is not None)

    status = env.run("status", str(first))
    assert status.returncode == 2
    assert f"stale mount at {first}: run `docfs unmount {first}`" in status.stderr
    everyone = env.run("status")
    assert everyone.returncode == 1 and f"stale mount: run `docfs unmount {first}`" in (
        everyone.stdout
    )

    second = env.mountpoint("second")
    mounted = env.run("mount", source, str(second), "--daemon", extra=admin_env())
    assert mounted.returncode == 0, mounted.stderr
    assert all(p.exists() is False for p in left)  # the dead daemon's files are gone
    assert len(list(env.runtime.glob("mount-*.json"))) == 1  # the new daemon's
    assert env.run("unmount", str(second)).returncode == 0
    assert env.run("unmount", str(first)).returncode == 0
    gone = env.run("status", str(first))
    assert gone.returncode == 2 and "no docfs mount at" in gone.stderr
    assert list(env.runtime.glob("mount-*")) == []
