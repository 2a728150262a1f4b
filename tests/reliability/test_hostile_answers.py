"""Scenario 5, answers: malformed server answers through a real mount are EIO, never a crash.

Each case plants one malformed answer on a directory or file the mount has not read yet:
invalid JSON, a truncated body, wrong types, missing fields, a ``Content-Length`` shorter or
longer than the body, and a redirect to another host. The program sees EIO, the daemon logs the
problem (one line per failed call, never a traceback), sends no credential to the other host,
does not keep a cut file as if it were complete, and goes on serving. The same hostile names the
fuzzer uses are also listed through the mount, where the kernel checks them too.
"""

from __future__ import annotations

import errno
import json
import os
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import pytest
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from docfs.emulators.base import Emulator, EmulatorServer
from docfs.emulators.dspace6 import DSpace6Emulator
from tests.conftest import ADMIN
from tests.reliability.conftest import Daemon
from tests.reliability.test_hostile_names import SPECIAL, is_valid

BIG = bytes(range(256)) * 120  # 30 KiB: sent chunked by the emulator


class Elsewhere(Emulator):
    """Another host: answers every request with a plausible listing and records its headers."""

    name = "elsewhere"

    def __init__(self) -> None:
        self.seen: list[dict[str, str]] = []
        super().__init__()

    def routes(self) -> list[BaseRoute]:
        async def anything(request: Request) -> Response:
            self.seen.append(dict(request.headers))
            return JSONResponse({"uuid": "forged", "name": "forged", "bitstreams": []})

        return [Route("/{path:path}", anything, methods=["GET", "POST", "PUT", "DELETE"])]


@pytest.fixture
def elsewhere() -> Iterator[EmulatorServer]:
    # another address on the loopback network: a different host, still this machine
    with EmulatorServer(Elsewhere(), host="127.0.0.2") as server:
        yield server


@dataclass
class Case:
    """One malformed answer: planted on the item's listing (or a file's download)."""

    name: str
    fault: dict[str, object]
    download: bool = False
    #: False where every real byte still arrives (only the promise was wrong): the reader gets
    #: the right bytes, but the copy is not kept, since the download did not end cleanly
    eio: bool = True
    item: str = field(default="", init=False)


def cases(elsewhere_url: str) -> list[Case]:
    forged_types = json.dumps({"uuid": "x", "name": "x", "bitstreams": "not a list"}).encode()
    forged_fields = json.dumps(
        {"uuid": "x", "bitstreams": [{"name": "a.txt", "bundleName": "ORIGINAL"}]}
    ).encode()
    return [
        Case("invalid-json", {"body": b'{"uuid": "x", "bitstreams": [{'}),
        Case("wrong-types", {"body": forged_types}),
        Case("missing-fields", {"body": forged_fields}),
        Case("html-page", {"body": b"<html>maintenance</html>", "content_type": "text/html"}),
        Case("truncated-body", {"reset_after": 40, "times": None}),
        Case("short-length", {"content_length": 30}),
        Case("redirect-elsewhere", {"redirect": elsewhere_url}),
        Case("file-short-length", {"content_length": 1000}, download=True),
        Case(
            "file-long-length",
            {"content_length": len(BIG) + 500, "times": None},
            download=True,
            eio=False,
        ),
    ]


def wait_for(condition: Callable[[], bool], limit: float = 30.0) -> None:
    """Poll until ``condition`` holds; the limit only stops a hang, it measures nothing."""
    deadline = time.monotonic() + limit
    while not condition():
        assert time.monotonic() < deadline, "the condition never came true"
        time.sleep(0.05)


def fails_with_eio(action: Callable[[], object]) -> None:
    with pytest.raises(OSError) as info:
        action()
    assert info.value.errno == errno.EIO, info.value


def test_malformed_answers_are_eio_and_the_daemon_keeps_serving(
    daemon: Daemon,
    emulator: DSpace6Emulator,
    elsewhere: EmulatorServer,
    tmp_path: Path,
) -> None:
    e = emulator
    col = e.add_collection("Data", e.add_community("Lab"))
    plan = cases(elsewhere.url)
    for case in plan:
        case.item = e.add_item(col, case.name)
        e.add_bitstream(case.item, "big.bin", BIG)
    daemon.start()
    base = daemon.path / "Lab" / "Data"
    os.listdir(base)

    lines_per_case: dict[str, int] = {}
    for case in plan:
        before = len(daemon.log_text().splitlines())
        if case.download:
            os.listdir(base / case.name)
            path = "/rest/bitstreams/[^/]+/retrieve$"
            e.plan_fault(method="GET", path=path, **case.fault)
            if case.eio:
                fails_with_eio((base / case.name / "big.bin").read_bytes)
            else:
                assert (base / case.name / "big.bin").read_bytes() == BIG
                # the download goes on (and fails) after the reader had every byte
                failed = daemon.log_text().count("download of 'big.bin' failed")

                def one_more_failure(n: int = failed) -> bool:
                    return daemon.log_text().count("big.bin' failed") > n

                wait_for(one_more_failure)
        else:
            path = f"^/rest/items/{case.item}$"
            e.plan_fault(method="GET", path=path, **case.fault)
            fails_with_eio(partial(os.listdir, base / case.name))
        e.clear_faults()
        new = daemon.log_text().splitlines()[before:]
        problems = [ln for ln in new if re.search(r" (WARNING|ERROR|CRITICAL) ", ln)]
        assert problems, f"{case.name}: no log line says what went wrong"
        # one line per failed call (a download's own failure adds one)
        assert len(problems) <= (2 if case.download else 1), problems
        lines_per_case[case.name] = len(problems)

    log = daemon.log_text()
    assert "Traceback" not in log and "internal error" not in log
    assert elsewhere.emulator.requests() == []  # the redirect was not followed at all
    assert daemon.mounted()
    # the daemon goes on serving, and no cut download was kept as if it were complete
    for case in plan:
        assert os.listdir(base / case.name) == ["big.bin"]
        assert (base / case.name / "big.bin").read_bytes() == BIG
    # complete entries only (a ``.part`` is a download still running, never served as done)
    cached = [p for p in daemon.cache.rglob("content/*") if p.is_file() and p.suffix != ".part"]
    assert cached and all(p.read_bytes() == BIG for p in cached)
    eio = sum(c.eio for c in plan)
    print(f"\nmalformed answers: {eio} of {len(plan)} EIO; warning lines each: {lines_per_case}")


def test_hostile_names_through_a_real_mount(daemon: Daemon, emulator: DSpace6Emulator) -> None:
    e = emulator
    item = e.add_item(e.add_collection("Data", e.add_community("Lab")), "Names")
    names = [n for n in SPECIAL if n not in ("desktop.ini", "Thumbs.db", ".hidden", ".DS_Store")]
    names += ["x", "x", "X", "\u00e9t\u00e9", "e\u0301te\u0301"]  # duplicates and twins
    for i, name in enumerate(names):
        e.add_bitstream(item, name, f"file {i}".encode())
    daemon.start()
    folder = daemon.path / "Lab" / "Data" / "Names"
    listed = os.listdir(folder)
    assert len(listed) == len(set(listed)) == len(names)
    assert all(is_valid(n) for n in listed)
    contents = {(folder / n).read_bytes() for n in listed}
    assert contents == {f"file {i}".encode() for i in range(len(names))}
    assert sorted(os.listdir(folder)) == sorted(listed)  # stable
    assert ADMIN[1] not in daemon.log_text()
