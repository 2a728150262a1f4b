"""Scenario 6: authentication, for every backend that has a login to lose.

A session or token that expires mid-copy is renewed once, transparently (DSpace 6 and 7 and
DocSpace log in with the password again, RSpace's OAuth session uses its refresh token); wrong
credentials stop ``docfs mount`` at start with a clear message and a non-zero exit code, and the
wrong secret is printed nowhere.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
from pathlib import Path

from tests.reliability.conftest import Target, run
from tests.reliability.targets import clean_env
from tests.reliability.util import flat_files, read_tree, write_files


def expire_when(t: Target, uploads: int) -> threading.Thread:
    """Forget every session once the server has seen ``uploads`` uploads (mid-copy)."""

    def watch() -> None:
        deadline = time.monotonic() + 60
        while t.uploads() < uploads:
            if time.monotonic() > deadline:
                return
            time.sleep(0.005)
        t.expire()

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


def test_a_session_expiring_mid_copy_is_renewed_once(target: Target, tmp_path: Path) -> None:
    t = target
    t.require("renew a login")
    files = flat_files(30)
    sources = write_files(tmp_path / "src", files)
    place = t.folder("Batch", private=True)
    # read later, while the session is gone again: private, and not in the cache
    other = t.folder("Other", files, private=True)
    daemon = t.daemon(login=True).start()
    assert t.logins() == 1
    dest = daemon.at(place)
    os.listdir(dest)

    watcher = expire_when(t, 10)
    run("cp", *sources, str(dest))
    watcher.join()
    assert t.logins() == 2  # renewed once, and cp never noticed
    assert t.files(place) == files

    t.expire()
    out = tmp_path / "out"
    run("cp", "-r", str(daemon.at(other)), str(out))
    assert read_tree(out) == files
    assert t.logins() == 3
    refused = [r for r in t.e.requests() if r.status in (401, 403)]
    assert refused  # the server did refuse the dead session: the renewals were needed
    print(
        f"\nexpired sessions [{t.name}]: {len(refused)} requests refused, each session "
        f"renewed once ({t.logins()} logins in all); {2 * len(files)} files copied in and out"
    )


def test_wrong_credentials_fail_the_mount_at_start(target: Target) -> None:
    t = target
    remote, wrong = t.wrong_remote()
    daemon = t.daemon(remote=remote)
    daemon.path.mkdir()
    for detach in ((), ("--daemon",)):
        result = subprocess.run(
            daemon.command(*detach),
            env=clean_env(remote.secrets),
            capture_output=True,
            text=True,
            timeout=60,
        )
        # 77: the login was refused (a service manager does not restart for that)
        assert result.returncode == 77, result.stderr
        output = result.stdout + result.stderr
        assert all(part in output.lower() for part in t.refusal), output[-2000:]
        assert wrong not in output
        assert "Traceback" not in output
        assert not os.path.ismount(daemon.path)
    assert wrong not in daemon.log_text()
