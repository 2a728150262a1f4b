"""Scenario 7, real mount: 16 processes read, write, rename and list in one tree at once.

Each process works in its own item and reads a shared one, checking every answer against its
own model (``concurrency_worker.py``). Nothing may deadlock (every process ends within a bound),
the daemon logs no error, and at the end the server holds exactly what the models say. The run
lasts ``DOCFS_CONCURRENCY_SECONDS`` (10 s by default, to fit CI's budget; the issue's 60 s is
the same test with the variable set).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from docfs.emulators.dspace6 import DSpace6Emulator
from tests.reliability.conftest import Daemon

WORKERS = 16
SECONDS = float(os.environ.get("DOCFS_CONCURRENCY_SECONDS", "10"))


def test_sixteen_processes_agree_with_their_models(
    daemon: Daemon, emulator: DSpace6Emulator
) -> None:
    e = emulator
    col = e.add_collection("Tree", e.add_community("Lab"))
    shared = e.add_item(col, "shared")
    for i in range(8):
        e.add_bitstream(shared, f"s{i}.bin", bytes([i]) * (1000 * (i + 1)))
    items = {f"w{n:02d}": e.add_item(col, f"w{n:02d}") for n in range(WORKERS)}
    daemon.start()
    tree = daemon.path / "Lab" / "Tree"
    worker = Path(__file__).with_name("concurrency_worker.py")
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                str(worker),
                str(tree / own),
                str(tree / "shared"),
                str(SECONDS),
                str(n),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n, own in enumerate(items)
    ]
    reports = []
    for proc in procs:
        # a bound well past the run's length: a process still busy then is deadlocked
        out, err = proc.communicate(timeout=SECONDS + 90)
        assert proc.returncode == 0, err
        reports.append(json.loads(out))

    assert daemon.mounted()
    for own, report in zip(items, reports, strict=True):
        expected = {n: bytes.fromhex(h) for n, h in report["files"].items()}
        found = {b["name"]: e.bitstream_data(b["uuid"]) for b in e.bitstreams_of(items[own])}
        assert found == expected, own
    assert [b["name"] for b in e.bitstreams_of(shared)] == [f"s{i}.bin" for i in range(8)]
    log = daemon.log_text()
    assert not re.search(r" (ERROR|CRITICAL) |Traceback|internal error", log), log[-3000:]
    ops = sum(r["ops"] for r in reports)
    print(
        f"\nconcurrency: {WORKERS} processes, {ops} operations in {SECONDS:.0f} s, "
        f"{len(e.requests())} requests; server state matches every model"
    )
