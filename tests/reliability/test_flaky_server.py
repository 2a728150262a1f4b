"""Scenario 1: a flaky server. About a fifth of all requests fail at random, and nothing is lost.

The fault plan mixes every kind of transient failure a real server shows: 503 with and without
``Retry-After``, 429, 500, a connection reset right after the headers (for an upload: the server
stored it and the answer was lost) and in the middle of a body, and 2 s stalls. It is a flaky
server, not a dead one: the same request is never hit more than twice in a row (scenario 3 is
the dead server). Through a real mount of every backend: ``cp -r`` of a tree in, ``rsync -a``
twice, and ``cp -r`` out through a second mount with an empty cache, so every byte is
downloaded under the same faults. DSpace 6 copies 4 by 25 files; the other backends 2 by 10, to
fit CI's budget (the fault mix and every check are the same).
"""

from __future__ import annotations

import re
from pathlib import Path

from docfs.emulators.base import Emulator
from tests.reliability.conftest import Target, run
from tests.reliability.util import make_tree, read_tree, temp_names_on_server


def plan_flaky_server(e: Emulator) -> None:
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


def test_cp_rsync_twice_and_cp_out_survive_a_flaky_server(target: Target, tmp_path: Path) -> None:
    t, e = target, target.e
    copied, mirrored = t.container("Copied"), t.container("Mirrored")
    src = tmp_path / "src"
    tree = make_tree(src, *t.flaky_tree)

    daemon = t.daemon().start()
    plan_flaky_server(e)
    run("cp", "-r", *[str(p) for p in sorted(src.iterdir())], str(daemon.at(copied)))
    first = run("rsync", "-a", f"{src}/", f"{daemon.at(mirrored)}/")
    assert first.returncode == 0
    uploads_before = t.uploads()
    second = run("rsync", "-a", "--itemize-changes", f"{src}/", f"{daemon.at(mirrored)}/")
    assert [ln for ln in second.stdout.splitlines() if ln.startswith(">f")] == []
    assert t.uploads() == uploads_before
    daemon.stop()

    # a second mount with an empty cache: every file is downloaded through the faults
    reader = t.sibling(daemon, "mnt2").start()
    out = tmp_path / "out"
    out.mkdir()
    run("cp", "-r", str(reader.at(copied)), str(out / "copied"))
    run("cp", "-r", str(reader.at(mirrored)), str(out / "mirrored"))
    reader.stop()

    assert read_tree(out / "copied") == tree
    assert read_tree(out / "mirrored") == tree
    for place in (copied, mirrored):
        assert t.tree(place) == tree
        assert t.duplicates(place) == []
        assert temp_names_on_server(t, place) == []
    # rsync's temporary name never reached the server, not even as a rename to the final one
    assert t.renames() == 0
    faulted = [r for r in e.requests() if r.fault]
    assert e.faults_injected == len(faulted) > len(tree) // 2
    share = len(faulted) / len(e.requests())
    logs = daemon.log_text() + reader.log_text()
    assert "Traceback" not in logs
    assert "internal error" not in logs
    retried = len(re.findall(r"retrying in|resuming|did not arrive|had arrived", logs))
    print(
        f"\nflaky server [{t.name}]: {e.faults_injected} faults injected in {len(e.requests())} "
        f"requests ({share:.0%}); {retried} retries logged; {2 * len(tree)} files checked on "
        f"the server and {2 * len(tree)} read back byte-identical; no duplicates, no temp names"
    )
