"""Faults from outside: every backend through a fault-injecting proxy, and nothing goes wrong.

``FaultProxy`` (``faultproxy.py``) stands between the mount and the emulator, as a bad network
or an overloaded gateway would, and hits a fifth of all write requests (every write endpoint
at least once: the first request of each is always hit) and a twentieth of the reads with a
seeded mix of faults, the first ones one of each kind: stalls longer than the mount's
``--timeout`` that pass the request on late or never, resets halfway through a request or an
answer, answers lost after the server processed the request, and 500/502/503/504/429 with and
without ``Retry-After``. Through that:

1. ``cp -r`` of a tree of files (0 B up to the largest size) into the mount;
2. ``rsync -a`` of a second version of the tree (other bytes, partly other sizes, dated 2021)
   over the copy where the backend can replace files (an overwrite by rename for every file),
   into a fresh directory where it cannot (RSpace's Gallery, Opus 2);
3. the same ``rsync -a`` again, which must find nothing to send;
4. where files can be renamed and deleted: ``mv`` of two files in the mount, and ``rsync -a
   --delete`` of the source without three files (the rename and delete endpoints).

Then, the proxy idle (a late request has landed), the server's state from the emulator's
backdoor must be exactly the source trees: nothing missing, nothing stale, no duplicates, no
temporary names; ``cp`` and ``rsync`` reported no error; lost+found is empty; and a fresh mount
straight to the emulator (no proxy, empty cache) reads every file back byte-identical.

CI runs 12 files of up to 2 MiB per backend; ``DOCFS_FAULT_FULL=1`` runs the acceptance size,
100 files of up to 8 MiB. ``DOCFS_FAULT_SEED`` picks another seed for the faults and
``DOCFS_FAULT_RATE`` another share of writes hit (0: a clean network, to tell a fault's harm
from the scenario's own). Every run
prints its figures (requests, faults by kind, the write endpoints hit, the time each step took).
Each check is made and reported, not just the first that fails, with the faulted requests and
the daemon's warnings as evidence.
"""

from __future__ import annotations

import math
import os
import random
import re
import time
from pathlib import Path

from tests.reliability.conftest import Target, run
from tests.reliability.faultproxy import KINDS, READS, WRITES, FaultProxy, Rule
from tests.reliability.targets import DocSpaceTarget
from tests.reliability.util import read_tree, temp_names_on_server, wait_for

MiB = 1 << 20
FULL = os.environ.get("DOCFS_FAULT_FULL", "") not in ("", "0")
#: files, their largest size, the directories they are spread over
FILES, MAX_SIZE, DIRS = (100, 8 * MiB, 4) if FULL else (12, 2 * MiB, 3)
SEED = int(os.environ.get("DOCFS_FAULT_SEED", "18"))
#: the mount's --timeout, and a stall that outlasts it
TIMEOUT = 2.0
STALL = TIMEOUT + 1.0
#: the share of writes and of reads hit (``DOCFS_FAULT_RATE=0``: the same run on a clean network)
WRITE_RATE = float(os.environ.get("DOCFS_FAULT_RATE", "0.2"))
READ_RATE = WRITE_RATE / 4
#: the error statuses are one kind among the others: twice the weight of each
WEIGHTS = {**dict.fromkeys(KINDS, 1.0), "status": 2.0}
#: a bound on each program that only stops a hang
LIMIT = 900.0 if FULL else 240.0
#: a date older than any copy: rsync -a must send every file again
OLD = time.mktime((2021, 1, 1, 0, 0, 0, 0, 0, -1))


def sizes(count: int, largest: int, seed: int) -> list[int]:
    """0 B, the largest size, 1 B, and the rest spread evenly on a log scale in between."""
    rng = random.Random(seed)
    spread = [int(math.exp(rng.uniform(math.log(2), math.log(largest)))) for _ in range(count - 3)]
    return [0, largest, 1, *spread][:count]


def two_versions(src1: Path, src2: Path) -> tuple[dict[str, bytes], dict[str, bytes]]:
    """Two versions of one tree: other bytes throughout, and a third of the sizes differ."""
    rng = random.Random(SEED)
    v1: dict[str, bytes] = {}
    v2: dict[str, bytes] = {}
    for i, size in enumerate(sizes(FILES, MAX_SIZE, SEED)):
        # .txt: every backend takes it where these tests write (RSpace: Documents)
        rel = f"set-{i % DIRS}/file-{i:03d}.txt"
        v1[rel] = rng.randbytes(size)
        v2[rel] = rng.randbytes(size if i % 3 else size + 17)
    for root, tree in ((src1, v1), (src2, v2)):
        for rel, data in tree.items():
            path = root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
    for rel in v2:
        os.utime(src2 / rel, (OLD, OLD))
    return v1, v2


def differences(label: str, found: dict[str, bytes], expected: dict[str, bytes]) -> list[str]:
    """What is missing, stale (other bytes) or extra in ``found``, in a few lines."""
    missing = sorted(set(expected) - set(found))
    extra = sorted(set(found) - set(expected))
    stale = sorted(n for n in set(found) & set(expected) if found[n] != expected[n])
    problems = []
    for what, names in (("missing", missing), ("extra", extra), ("stale", stale)):
        if names:
            problems.append(f"{label}: {len(names)} {what}: {', '.join(names[:8])}")
    return problems


def reported(label: str, result: object) -> list[str]:
    """An exit status other than 0, or anything on stderr, is an error reported to the user."""
    code = getattr(result, "returncode", None)
    err = str(getattr(result, "stderr", "")).strip()
    if code == 0 and not err:
        return []
    return [f"{label} exited {code}: {err[-1500:]}"]


def evidence(proxy: FaultProxy, logs: str, problems: list[str]) -> str:
    """The faults injected, the daemon's warnings, and what it said about each file named in
    a problem (where a retry concluded "did not arrive" too early, say)."""
    faulted = [str(r) for r in proxy.faulted()]
    lines = logs.splitlines()
    warnings = [ln for ln in lines if re.search(r"WARNING|ERROR|Traceback|lost\+found", ln)]
    named = {m.group(1) for p in problems for m in re.finditer(r"(file-\d+)", p)}
    about = [
        ln
        for ln in lines
        if " DEBUG " not in ln and ln not in warnings and any(n in ln for n in named)
    ]
    return (
        f"\n--- faults injected ({len(faulted)}):\n"
        + "\n".join(faulted[:80])
        + f"\n--- daemon warnings and errors ({len(warnings)}):\n"
        + "\n".join(warnings[:80])
        + f"\n--- what the daemon said about the files named above ({len(about)}):\n"
        + "\n".join(about[:60])
    )


def rename_and_delete(dest: Path, src: Path, tree: dict[str, bytes]) -> list[str]:
    """``mv`` two files in the mount (and in ``src``), remove three from ``src`` and ``rsync
    -a --delete``: the rename and delete endpoints under the same faults. ``tree`` follows.

    What is left on the server is checked with the rest; here, what the programs said.
    """
    problems: list[str] = []
    names = sorted(tree)
    for rel in names[1:3]:
        new = rel.replace("file-", "renamed-")
        moved = run("mv", str(dest / rel), str(dest / new), timeout=LIMIT, check=False)
        problems += reported(f"mv {rel}", moved)
        (src / rel).rename(src / new)
        tree[new] = tree.pop(rel)
    gone = names[-3:]
    for rel in gone:
        (src / rel).unlink()
        del tree[rel]
    changed = ("rsync", "-a", "--delete", "--itemize-changes", f"{src}/", f"{dest}/")
    third = run(*changed, timeout=LIMIT, check=False)
    problems += reported("rsync -a --delete (3)", third)
    deleted = {ln.split(None, 1)[1] for ln in third.stdout.splitlines() if ln.startswith("*del")}
    if not set(gone) <= deleted:
        problems.append(f"rsync -a --delete (3) did not delete {sorted(set(gone) - deleted)}")
    return problems


def test_cp_and_rsync_twice_through_a_faulty_network(target: Target, tmp_path: Path) -> None:
    t = target
    if isinstance(t, DocSpaceTarget):
        # a portal configured with 1 MiB chunks (files:uploader:chunk-size): the larger files
        # go through a chunked upload session of several requests, each one faulted too
        t.e.chunk_upload_size = MiB
    overwrite = t.can("rename files") and t.can("delete files")
    copied = t.container("Copied")
    mirrored = copied if overwrite else t.container("Mirrored")
    src1, src2 = tmp_path / "v1", tmp_path / "v2"
    v1, v2 = two_versions(src1, src2)

    proxy = FaultProxy(
        t.server.url, stall=STALL, seed=SEED, weights=WEIGHTS, each_kind_first=True
    ).start()
    problems: list[str] = []
    took: dict[str, float] = {}
    t.front = proxy.url
    daemon = t.daemon()
    try:
        daemon.start("--timeout", str(TIMEOUT))
        # from here on (the mount is up): a fifth of the writes, every write endpoint once
        proxy.plan(Rule(WRITES, WRITE_RATE, cover=WRITE_RATE > 0), Rule(READS, READ_RATE))
        mounted = len(proxy.requests())

        began = time.monotonic()
        cp = run(
            "cp",
            "-r",
            *map(str, sorted(src1.iterdir())),
            str(daemon.at(copied)),
            timeout=LIMIT,
            check=False,
        )
        took["cp"] = time.monotonic() - began
        problems += reported("cp -r", cp)

        dest = f"{daemon.at(mirrored)}/"
        began = time.monotonic()
        first = run("rsync", "-a", f"{src2}/", dest, timeout=LIMIT, check=False)
        problems += reported("rsync -a (1)", first)
        took["rsync 1"] = time.monotonic() - began
        began = time.monotonic()
        again = run(
            "rsync", "-a", "--itemize-changes", f"{src2}/", dest, timeout=LIMIT, check=False
        )
        took["rsync 2"] = time.monotonic() - began
        problems += reported("rsync -a (2)", again)
        sent = [ln for ln in again.stdout.splitlines() if ln.startswith(">f")]
        if sent:
            problems.append(f"rsync -a (2) sent {len(sent)} files again: {sent[:5]}")

        if overwrite:
            began = time.monotonic()
            problems += rename_and_delete(daemon.at(mirrored), src2, v2)
            took["mv, rsync --delete"] = time.monotonic() - began

        proxy.plan()  # clean from here on; a stalled request still lands before the checks
        daemon.stop()
        wait_for(lambda: all(r.end for r in proxy.requests()), limit=STALL * 4)
    finally:
        t.front = None
        proxy.stop()
    logs = daemon.log_text()

    # the server's state, from the emulator's backdoor
    expected = {copied: v2} if overwrite else {copied: v1, mirrored: v2}
    for place, tree in expected.items():
        label = f"server {'/'.join(place.path)}"
        problems += differences(label, t.tree(place), tree)
        dups = t.duplicates(place)
        if dups:
            problems.append(f"{label}: duplicates {dups[:8]}")
        temps = temp_names_on_server(t, place)
        if temps:
            problems.append(f"{label}: temporary names {temps[:8]}")
    lost = daemon.cache / "lost+found"
    if lost.exists() and any(lost.iterdir()):
        problems.append(f"lost+found holds {sorted(p.name for p in lost.iterdir())[:8]}")
    if "Traceback" in logs or "internal error" in logs:
        problems.append("the daemon logged a traceback or an internal error")

    # a fresh mount straight to the emulator, with an empty cache, reads every byte back
    began = time.monotonic()
    fresh = t.daemon("fresh").start()
    for place, tree in expected.items():
        problems += differences(
            f"read back {'/'.join(place.path)}", read_tree(fresh.at(place)), tree
        )
    fresh.stop()
    took["read back"] = time.monotonic() - began

    hit = sorted({r.endpoint for r in proxy.faulted() if r.method in WRITES})
    writes = sorted({r.endpoint for r in proxy.requests()[mounted:] if r.method in WRITES})
    retried = len(re.findall(r"retrying in|resuming|did not arrive|had arrived", logs))
    print(
        f"\nfault proxy [{t.name}] seed {SEED}, {FILES} files up to {MAX_SIZE // MiB} MiB, "
        f"{'overwrite' if overwrite else 'fresh directory'}: {proxy.summary()}; "
        f"write endpoints faulted {len(hit)} of {len(writes)} ({'; '.join(hit)}); "
        f"{retried} retries logged; "
        + ", ".join(f"{k} {v:.1f} s" for k, v in took.items())
        + (f"; {len(problems)} problems" if problems else "; all checks passed")
    )
    assert problems == [], "\n".join(problems) + evidence(proxy, logs, problems)
