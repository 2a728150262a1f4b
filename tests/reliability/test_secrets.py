"""Scenario 8: secrets stay secret, other users stay out, TLS certificates are checked.

Passwords and session cookies never appear in the daemon's argv (``/proc/PID/cmdline``), its
log at debug level (after logins, a session renewal, retries and failed uploads), exception
messages, or ``docfs status``. Other users cannot enter a mount unless ``--allow-other`` is
given. Certificates are verified by default; a CA bundle makes a private CA trusted, and
turning verification off logs a warning.
"""

from __future__ import annotations

import errno
import logging
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from docfs import errors
from docfs.backends._http import HttpClient, Limits
from docfs.emulators.base import EmulatorServer
from docfs.emulators.dspace6 import DSpace6Emulator
from tests.conftest import ADMIN, FAST_RETRY
from tests.reliability.conftest import Daemon, run

PASSWORD = ADMIN[1]
NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--"]


def test_no_secret_in_argv_logs_errors_or_status(
    daemon: Daemon, emulator: DSpace6Emulator, tmp_path: Path
) -> None:
    e = emulator
    item = e.add_item(e.add_collection("Data", e.add_community("Lab")), "Box")
    e.add_bitstream(item, "a.txt", b"alpha")
    e.add_bitstream(item, "c.txt", b"gamma")
    daemon.start()
    assert daemon.proc is not None
    argv = Path(f"/proc/{daemon.proc.pid}/cmdline").read_bytes().decode(errors="replace")
    folder = daemon.path / "Lab" / "Data" / "Box"
    assert (folder / "a.txt").read_bytes() == b"alpha"
    e.expire_sessions()  # a renewal: a second password use, a second cookie
    (folder / "b.txt").write_bytes(b"beta")
    e.plan_fault(path="/retrieve$", status=503, times=2)  # retries are logged
    assert (folder / "c.txt").read_bytes() == b"gamma"
    e.plan_fault(method="POST", path="/bitstreams$", status=403)  # an error with its request
    with pytest.raises(OSError) as info:
        (folder / "refused.txt").write_bytes(b"no")
    assert info.value.errno == errno.EACCES
    status = run(sys.executable, "-m", "docfs", "status", str(daemon.path), "--json")
    assert '"mountpoint"' in status.stdout
    daemon.stop()

    cookies = e.issued_sessions()
    assert len(cookies) == 2
    log = daemon.log_text()
    assert "logged in" in log and "retrying" in log and "lost+found" in log
    for where, text in (("argv", argv), ("log", log), ("status", status.stdout + status.stderr)):
        for secret in (PASSWORD, *cookies):
            assert secret not in text, f"a secret in the {where}"
    print(f"\nsecrets: {len(cookies) + 1} secrets checked in argv, {len(log)} B of log, status")


async def test_no_secret_in_exception_messages(dspace6_server: EmulatorServer) -> None:
    token = "sekrit-token-0123456789"
    url = f"http://user:{token}@127.0.0.1:{dspace6_server.port}/rest"
    http = HttpClient(url, limits=Limits(concurrency=2), retry=FAST_RETRY)
    dspace6_server.emulator.plan_fault(status=500, times=None)
    try:
        with pytest.raises(errors.RemoteUnavailable) as info:
            await http.request("GET", "/status", endpoint="status", params={"token": token})
    finally:
        await http.aclose()
    assert token not in str(info.value) and token not in repr(info.value)
    assert "/status" in str(info.value)


@pytest.fixture
def public_mountpoint() -> Iterator[Path]:
    """A mount point other users can reach (pytest's own temp directory is private)."""
    path = Path(tempfile.mkdtemp(prefix="docfs-others-"))
    path.chmod(0o755)
    try:
        yield path / "mnt"
    finally:
        subprocess.run(["fusermount3", "-u", "-z", str(path / "mnt")], capture_output=True)
        shutil.rmtree(path, ignore_errors=True)


def test_other_users_stay_out_unless_allow_other(
    daemon: Daemon, emulator: DSpace6Emulator, public_mountpoint: Path
) -> None:
    e = emulator
    item = e.add_item(e.add_collection("Data", e.add_community("Lab")), "Box")
    e.add_bitstream(item, "a.txt", b"for everyone who may")
    daemon.path = public_mountpoint
    daemon.start()
    target = str(public_mountpoint / "Lab" / "Data" / "Box" / "a.txt")
    refused = run(*NOBODY, "cat", target, check=False)
    assert refused.returncode != 0 and "Permission denied" in refused.stderr
    daemon.stop()
    daemon.start("--allow-other")
    allowed = run(*NOBODY, "cat", target, check=False)
    assert allowed.returncode == 0 and allowed.stdout == "for everyone who may"
    daemon.stop()


# ---- TLS --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """A self-signed certificate for 127.0.0.1 (a private CA of one)."""
    where = tmp_path_factory.mktemp("tls")
    cert, key = where / "cert.pem", where / "key.pem"
    request = ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2"]
    names = ["-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"]
    files = ["-keyout", str(key), "-out", str(cert)]
    subprocess.run([*request, *names, *files], check=True, capture_output=True)
    return str(cert), str(key)


@pytest.fixture
def https_server(certificate: tuple[str, str]) -> Iterator[EmulatorServer]:
    emulator = DSpace6Emulator()
    with EmulatorServer(emulator, certfile=certificate[0], keyfile=certificate[1]) as server:
        yield server


async def status(http: HttpClient) -> int:
    try:
        return (await http.request("GET", "/status", endpoint="status")).status_code
    finally:
        await http.aclose()


async def test_certificates_are_verified_by_default(https_server: EmulatorServer) -> None:
    http = HttpClient(f"{https_server.url}/rest", retry=FAST_RETRY)
    with pytest.raises(errors.RemoteUnavailable) as info:
        await status(http)
    assert "certificate is not trusted" in str(info.value)
    assert http.stats["status"].requests == 1  # not retried: it would fail the same way
    assert https_server.emulator.requests() == []


async def test_a_ca_bundle_makes_a_private_ca_trusted(
    https_server: EmulatorServer, certificate: tuple[str, str]
) -> None:
    http = HttpClient(f"{https_server.url}/rest", ca_bundle=Path(certificate[0]))
    assert await status(http) == 200


async def test_turning_verification_off_warns(
    https_server: EmulatorServer, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="docfs.http"):
        http = HttpClient(f"{https_server.url}/rest", verify=False)
    assert await status(http) == 200
    assert [r for r in caplog.records if "verification is OFF" in r.getMessage()]


def test_nothing_secret_in_the_environment_of_this_suite() -> None:
    # the suite passes credentials to the daemon by environment only; make sure it does not
    # leak them into its own environment (where every child process would inherit them)
    assert PASSWORD not in "".join(os.environ.values())
