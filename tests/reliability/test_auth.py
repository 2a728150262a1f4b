"""Scenario 6: authentication. A session that expires mid-copy is renewed once, transparently;
wrong credentials stop ``docfs mount`` at start with a clear message and a non-zero exit code.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
from pathlib import Path

from docfs.emulators.dspace6 import DSpace6Emulator
from tests.conftest import ADMIN
from tests.reliability.conftest import Daemon, run
from tests.reliability.util import make_tree, read_tree


def logins(e: DSpace6Emulator) -> int:
    return len(e.requests("POST", r"^/rest/login$"))


def expire_when(e: DSpace6Emulator, uploads: int) -> threading.Thread:
    """Forget every session once the server has seen ``uploads`` uploads (mid-copy)."""

    def watch() -> None:
        deadline = time.monotonic() + 60
        while len(e.requests("POST", r"/bitstreams$")) < uploads:
            if time.monotonic() > deadline:
                return
            time.sleep(0.005)
        e.expire_sessions()

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


def test_a_session_expiring_mid_copy_is_renewed_once(
    daemon: Daemon, emulator: DSpace6Emulator, tmp_path: Path
) -> None:
    e = emulator
    com = e.add_community("Lab", public=False)
    col = e.add_collection("Private", com, public=False)
    item = e.add_item(col, "Batch", public=False)
    src = tmp_path / "src"
    files = {k.split("/")[1]: v for k, v in make_tree(src, 1, 30).items()}
    # read later, while the session is gone again: private, and not in the cache
    other = e.add_item(col, "Other", public=False)
    for name, data in files.items():
        e.add_bitstream(other, name, data, public=False)
    daemon.start()
    assert logins(e) == 1
    dest = daemon.path / "Lab" / "Private" / "Batch"
    os.listdir(dest)

    watcher = expire_when(e, 10)
    run("cp", *sorted(str(p) for p in (src / "set-0").iterdir()), str(dest))
    watcher.join()
    assert logins(e) == 2  # renewed once, and cp never noticed
    assert {b["name"]: e.bitstream_data(b["uuid"]) for b in e.bitstreams_of(item)} == files

    e.expire_sessions()
    out = tmp_path / "out"
    run("cp", "-r", str(daemon.path / "Lab" / "Private" / "Other"), str(out))
    assert read_tree(out) == files
    assert logins(e) == 3
    unauthorized = [r for r in e.requests() if r.status == 401]
    print(
        f"\nexpired sessions: {len(unauthorized)} requests answered 401, each session renewed "
        f"once ({logins(e)} logins in all); {2 * len(files)} files copied in and out"
    )


def test_wrong_credentials_fail_the_mount_at_start(daemon: Daemon, tmp_path: Path) -> None:
    wrong = (ADMIN[0], "not-the-password-42")
    daemon.path.mkdir()
    for detach in ((), ("--daemon",)):
        result = subprocess.run(
            daemon.command(*detach),
            env=Daemon.env(wrong),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 1, result.stderr
        output = result.stdout + result.stderr
        assert "refused the login" in output and "wrong e-mail or password" in output
        assert wrong[1] not in output
        assert "Traceback" not in output
        assert not os.path.ismount(daemon.path)
    assert wrong[1] not in daemon.log_text()
