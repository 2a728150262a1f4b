"""Shared fixtures: emulators served on loopback, and backends connected to them."""

from __future__ import annotations

import traceback
from collections.abc import Generator, Iterator

import pluggy
import pytest
from _pytest.outcomes import Skipped

from docfs.backends._http import HttpClient, Limits, RetryPolicy
from docfs.backends.base import Credentials
from docfs.backends.dspace6 import DSpace6Backend
from docfs.emulators.base import EmulatorServer
from docfs.emulators.dspace6 import DSpace6Emulator

ADMIN = ("admin@example.org", "admin-password-123")

#: fast retries for tests: the behaviour is the same, the waiting shorter
FAST_RETRY = RetryPolicy(attempts=5, base=0.01, cap=0.05)


@pytest.fixture
def dspace6() -> Iterator[EmulatorServer]:
    emulator = DSpace6Emulator()
    emulator.add_user(*ADMIN, admin=True)
    with EmulatorServer(emulator) as server:
        yield server


def dspace6_backend(
    server: EmulatorServer, credentials: Credentials | None = None
) -> DSpace6Backend:
    http = HttpClient(f"{server.url}/rest", limits=Limits(concurrency=8), retry=FAST_RETRY)
    return DSpace6Backend(http, credentials if credentials is not None else Credentials(*ADMIN))


def _skip_in(error: BaseException | None) -> Skipped | None:
    """The one ``pytest.skip`` inside a trio test's exception group, if that is what it holds."""
    queue, leaves = [error], []
    while queue:
        current = queue.pop()
        if isinstance(current, BaseExceptionGroup):
            queue.extend(current.exceptions)
        elif current is not None:
            leaves.append(current)
    return leaves[0] if len(leaves) == 1 and isinstance(leaves[0], Skipped) else None


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pluggy.Result[pytest.TestReport], None]:
    """Give a trio test's skip its reason and place back.

    pytest-trio (0.8) re-raises a ``pytest.skip(reason)`` from inside trio as a bare
    ``pytest.skip()``: ``-rs`` then showed only "_pytest/python.py:187: Skipped" for every
    such test. The original skip is the context of the bare one."""
    outcome = yield
    report = outcome.get_result()
    if call.excinfo is None or not report.skipped or not isinstance(report.longrepr, tuple):
        return
    original = _skip_in(call.excinfo.value.__context__)
    if original is None or not original.msg:
        return
    path, lineno = report.longrepr[0], report.longrepr[1]
    for frame, line in traceback.walk_tb(original.__traceback__):
        if "_pytest" not in frame.f_code.co_filename:
            path, lineno = frame.f_code.co_filename, line
    report.longrepr = (path, lineno, f"Skipped: {original.msg}")
