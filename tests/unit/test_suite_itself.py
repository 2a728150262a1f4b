"""The test suite's own rules (issue 18): no green CI run without FUSE, skip reasons visible.

Each runs pytest on a few tests of this suite in a subprocess and reads what it reports.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def pytest_run(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if k not in ("CI", "DOCFS_TEST_HIDE_FUSE")}
    environment.update(env)
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_without_fuse_a_ci_run_fails_and_a_local_run_skips_loudly() -> None:
    """``CI=true`` on a machine without /dev/fuse or fusermount3 skipped 30 mount tests and
    exited 0; it must fail. Elsewhere the tests are skipped, with a loud line."""
    tests = "tests/fuse/test_cli.py"
    on_ci = pytest_run("--co", "-q", tests, CI="true", DOCFS_TEST_HIDE_FUSE="1")
    assert on_ci.returncode != 0, on_ci.stdout
    assert "CI=true, but" in on_ci.stderr and "need FUSE" in on_ci.stderr
    local = pytest_run("-q", "-rs", tests, "-k", "demo", DOCFS_TEST_HIDE_FUSE="1")
    assert local.returncode == 0, local.stdout + local.stderr
    assert "FUSE MOUNT TESTS SKIPPED" in local.stderr
    assert "FUSE unavailable: FUSE hidden by DOCFS_TEST_HIDE_FUSE" in local.stdout


def test_the_skip_reason_of_a_trio_test_is_printed() -> None:
    """``-rs`` showed "_pytest/python.py:187: Skipped" for every skipped async test: pytest-trio
    re-raises the skip without its reason."""
    path = "tests/conformance/test_vfs_conformance.py"
    lines = (ROOT / path).read_text().splitlines()
    (line,) = [n for n, text in enumerate(lines, 1) if "has no change feed" in text]
    test = f"{path}::test_change_feed_refreshes_a_scope_with_one_request[dspace6]"
    result = pytest_run("-q", "-rs", test)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"test_vfs_conformance.py:{line}: dspace6 has no change feed" in result.stdout
    assert "_pytest/python.py" not in result.stdout
