"""Scenario 1: a flaky server. About a fifth of all requests fail at random, and nothing is lost.

The fault plan mixes every kind of transient failure a real server shows: 503 with and without
``Retry-After``, 429, 500, a connection reset right after the headers (for an upload: the server
stored it and the answer was lost) and in the middle of a body, and 2 s stalls. It is a flaky
server, not a dead one: the same request is never hit more than twice in a row (scenario 3 is
the dead server). Through a real mount: ``cp -r`` of 100 files in, ``rsync -a`` twice, and
``cp -r`` out through a second mount with an empty cache, so every byte is downloaded under
the same faults.
"""

from __future__ import annotations

import re
from pathlib import Path

from docfs.emulators.dspace6 import DSpace6Emulator
from tests.reliability.conftest import Daemon, run
from tests.reliability.util import (
    duplicates,
    make_tree,
    read_tree,
    server_tree,
    temp_names_on_server,
)


def plan_flaky_server(e: DSpace6Emulator) -> None:
    """~20% of requests fail; none more than twice in a row."""
    flaky = {"times": None, "max_streak": 2}
    e.plan_fault(status=503, probability=0.04, **flaky)
    e.plan_fault(status=503, retry_after="1", probability=0.015, **flaky)
    e.plan_fault(status=429, probability=0.04, **flaky)
    e.plan_fault(status=500, probability=0.05, **flaky)
    e.plan_fault(reset_after=0, probability=0.05, **flaky)
    e.plan_fault(reset_after=3000, probability=0.05, **flaky)
    # a few stalls shorter than --timeout: slow answers must not be taken for lost ones
    e.plan_fault(delay=2.0, probability=0.02, times=3, max_streak=1)


def test_cp_rsync_twice_and_cp_out_survive_a_flaky_server(
    daemon: Daemon, emulator: DSpace6Emulator, tmp_path: Path
) -> None:
    e = emulator
    lab = e.add_community("Lab")
    copied, mirrored = e.add_collection("Copied", lab), e.add_collection("Mirrored", lab)
    src = tmp_path / "src"
    tree = make_tree(src, dirs=4, per_dir=25)
    assert len(tree) == 100

    daemon.start()
    plan_flaky_server(e)
    base = daemon.path / "Lab"

    run("cp", "-r", *[str(p) for p in sorted(src.iterdir())], str(base / "Copied"))
    first = run("rsync", "-a", f"{src}/", f"{base / 'Mirrored'}/")
    assert first.returncode == 0
    uploads_before = len(e.requests("POST", r"/bitstreams$"))
    second = run("rsync", "-a", "--itemize-changes", f"{src}/", f"{base / 'Mirrored'}/")
    assert [ln for ln in second.stdout.splitlines() if ln.startswith(">f")] == []
    assert len(e.requests("POST", r"/bitstreams$")) == uploads_before
    daemon.stop()

    # a second mount with an empty cache: every file is downloaded through the faults
    reader = Daemon(daemon.url, tmp_path / "mnt2", tmp_path / "cache2", tmp_path / "d2.log")
    try:
        reader.start()
        out = tmp_path / "out"
        out.mkdir()
        run("cp", "-r", str(reader.path / "Lab" / "Copied"), str(out / "copied"))
        run("cp", "-r", str(reader.path / "Lab" / "Mirrored"), str(out / "mirrored"))
        reader.stop()
    finally:
        reader.cleanup()

    assert read_tree(out / "copied") == tree
    assert read_tree(out / "mirrored") == tree
    for collection in (copied, mirrored):
        assert server_tree(e, collection) == tree
        assert duplicates(e, collection) == []
        assert temp_names_on_server(e, collection) == []
    faulted = [r for r in e.requests() if r.fault]
    assert e.faults_injected == len(faulted) > 50
    share = len(faulted) / len(e.requests())
    logs = daemon.log_text() + reader.log_text()
    assert "Traceback" not in logs
    assert "internal error" not in logs
    retried = len(re.findall(r"retrying in|resuming|did not arrive|had arrived", logs))
    print(
        f"\nflaky server: {e.faults_injected} faults injected in {len(e.requests())} requests "
        f"({share:.0%}); {retried} retries logged; {2 * len(tree)} files checked on the server "
        f"and {2 * len(tree)} read back byte-identical; no duplicates, no temp names"
    )
