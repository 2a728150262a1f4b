"""Shared fixtures: emulators served on loopback, and backends connected to them."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

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
