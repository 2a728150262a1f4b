"""Scenario 7, real mount: 16 processes read, write, rename and list in one tree at once.

For every backend, each process works in its own directory and reads a shared one, checking
every answer against its own model (``concurrency_worker.py``). Nothing may deadlock (every
process ends within a bound), the daemon logs no error, and at the end the server holds exactly
what the models say. Where a backend cannot rename or delete files (RSpace's Gallery, Opus 2)
the processes leave those two actions out and say so; everything else is the same.

The run lasts ``DOCFS_CONCURRENCY_SECONDS``: by default 10 s for DSpace 6 and 3 s for the other
backends, to fit CI's budget (the issue's 60 s is the same test with the variable set).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from tests.reliability.conftest import Target

WORKERS = 16
SECONDS = os.environ.get("DOCFS_CONCURRENCY_SECONDS")


def test_sixteen_processes_agree_with_their_models(target: Target) -> None:
    t = target
    seconds = float(SECONDS or (10 if t.name == "dspace6" else 3))
    actions = ["write", "append", "read", "list"]
    actions += [
        a for a, need in (("rename", "rename files"), ("delete", "delete files")) if t.can(need)
    ]
    shared_files = {f"s{i}.txt": bytes([65 + i]) * (1000 * (i + 1)) for i in range(8)}
    shared = t.folder("shared", shared_files)
    places = {f"w{n:02d}": t.folder(f"w{n:02d}") for n in range(WORKERS)}
    daemon = t.daemon().start()
    worker = Path(__file__).with_name("concurrency_worker.py")
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                str(worker),
                str(daemon.at(place)),
                str(daemon.at(shared)),
                str(seconds),
                str(n),
                ",".join(actions),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n, place in enumerate(places.values())
    ]
    reports = []
    try:
        for proc in procs:
            # a bound well past the run's length: a process still busy then is deadlocked
            out, err = proc.communicate(timeout=seconds + 90)
            assert proc.returncode == 0, err
            reports.append(json.loads(out))
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(5)

    assert daemon.mounted()
    for own, report in zip(places, reports, strict=True):
        expected = {n: bytes.fromhex(h) for n, h in report["files"].items()}
        assert t.files(places[own]) == expected, own
        names = [n for n, _ in t.entries(places[own])]
        assert len(names) == len(set(names)), own
    assert t.files(shared) == shared_files
    log = daemon.log_text()
    assert not re.search(r" (ERROR|CRITICAL) |Traceback|internal error", log), log[-3000:]
    ops = sum(r["ops"] for r in reports)
    print(
        f"\nconcurrency [{t.name}]: {WORKERS} processes ({', '.join(actions)}), {ops} "
        f"operations in {seconds:.0f} s, {len(t.e.requests())} requests; server state matches "
        "every model"
    )
