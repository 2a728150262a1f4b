"""B10 of issue 24: walking a whole collection (``find -type f | wc -l``, ``du -s``).

A collection of N items with two small files each is seeded inside the emulator process. Each
docfs run walks it through a daemon of its own with an empty cache (nothing listed yet: a cold
walk, as a first ``rsync -a`` or ``du -sh`` is), timed around the real program and accounted
with the requests the emulator logged. The baseline is a direct httpx script that learns the
same thing — every file's name and size — with the fewest requests the API allows, sending
them with the concurrency docfs is allowed against that backend (its
``default_limits.concurrency``):

* DSpace 6: the collection (``numberItems``), then its item pages with ``expand=bitstreams``
  (one page holds the files of 100 items; docs/protocols/dspace6.md, "JSON shapes, expand").
  The API sets no maximum ``limit``; the baseline pages at 100, the page size docfs lists with,
  so the ratio counts per-item requests, not a bigger page.
* DocSpace: the room's pages of folders, and the pages of every file below it
  (``filterType=FilesOnly`` lists recursively, each file with its ``folderId`` and size:
  ONLYOFFICE/DocSpace-server ``products/ASC.Files/Core/Core/Dao/TeamlabDao/FileDao.cs``,
  ``withSubfolders`` defaults to true and applies once a filter is set); at most 100 entries a
  page, paced as docfs paces itself (its default 24.5 requests/s, burst 25: the portal's 1500
  a minute). The emulator's own
  limiter is off, since its 60 s window would carry one run's requests into the next one.
* DSpace 7: Discovery pages of the collection's items (at most 100 a page) with
  ``embed=bundles/bitstreams`` applied to each result's ``indexableObject``, as the emulator
  honours it (the DSpace Angular UI sends ``embed=`` on search results, e.g. ``embed=thumbnail``;
  whether a real server also follows a two-level embed there is not verified).

Targets (issue 24): requests ≤ 1.1x the baseline's, time ≤ 1.5x.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import re
import statistics
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import httpx

from docfs.backends.docspace import DocSpaceBackend
from docfs.backends.dspace6 import DSpace6Backend
from docfs.backends.dspace7 import DSpace7Backend
from tests.bench.benchmarks import Context, Env
from tests.bench.direct import JSON, PAGE, Direct
from tests.bench.emulator import PASSWORD, USER
from tests.bench.measure import Row, Run, stopwatch

#: repetitions of B10 (each docfs run is a fresh daemon walking N items: minutes at 20 ms)
MAX_REPS = 3


@dataclass(frozen=True)
class Listing:
    """What a walk learned: how many files and their total size."""

    files: int
    size: int


def _pool_map(concurrency: int, fn: Callable[[int], list[Any]], args: list[int]) -> list[Any]:
    """``fn`` over ``args`` by ``concurrency`` threads; the results flattened, in order."""
    out: list[Any] = []
    with concurrent.futures.ThreadPoolExecutor(concurrency) as pool:
        for part in pool.map(fn, args):
            out.extend(part)
    return out


def walk_dspace6(direct: Direct, collection: str, concurrency: int) -> Listing:
    """Every file of a DSpace 6 collection: ``numberItems``, then the pages of items with
    their bitstreams, ``concurrency`` at a time."""
    info = direct.client.get(f"/collections/{collection}", headers=JSON)
    info.raise_for_status()
    total = int(info.json()["numberItems"])

    def page(offset: int) -> list[Any]:
        response = direct.client.get(
            f"/collections/{collection}/items",
            params={"limit": PAGE, "offset": offset, "expand": "bitstreams"},
            headers=JSON,
        )
        response.raise_for_status()
        return [
            b
            for item in response.json()
            for b in item.get("bitstreams") or []
            if b.get("bundleName") == "ORIGINAL"
        ]

    files = _pool_map(concurrency, page, list(range(0, total, PAGE)))
    return Listing(len(files), sum(int(b["sizeBytes"]) for b in files))


#: the DSpace 7 Discovery page cap (DiscoverConfiguration: at most 100 results a page)
DSPACE7_PAGE = 100


def walk_dspace7(client: httpx.Client, collection: str, concurrency: int) -> Listing:
    """Every file of a DSpace 7 collection: the first Discovery page (it says how many pages
    there are), then the others ``concurrency`` at a time, each item with its bundles and
    their bitstreams embedded."""

    def page(number: int) -> tuple[int, list[Any]]:
        response = client.get(
            "/discover/search/objects",
            params=[
                ("scope", collection),
                ("dsoType", "ITEM"),
                ("page", str(number)),
                ("size", str(DSPACE7_PAGE)),
                ("embed", "bundles/bitstreams"),
                ("embed.size", "bundles/bitstreams=100"),
            ],
        )
        response.raise_for_status()
        result = response.json()["_embedded"]["searchResult"]
        files = []
        for hit in result.get("_embedded", {}).get("objects", []):
            item = hit["_embedded"]["indexableObject"]
            for bundle in item["_embedded"]["bundles"]["_embedded"]["bundles"]:
                if bundle["name"] == "ORIGINAL":
                    files.extend(bundle["_embedded"]["bitstreams"]["_embedded"]["bitstreams"])
        return int(result["page"]["totalPages"]), files

    pages, files = page(0)
    files += _pool_map(concurrency, lambda n: page(n)[1], list(range(1, pages)))
    return Listing(len(files), sum(int(b["sizeBytes"]) for b in files))


#: DocSpace's largest page (``count`` is [Range(1, 100)], GetFolderRequestDto.cs)
DOCSPACE_PAGE = 100


class Pace:
    """A token bucket (``rate`` a second, ``burst`` at once) shared by threads: the baseline
    keeps the pace docfs's default limits impose on it for DocSpace."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate, self.burst = rate, burst
        self.tokens = float(burst)
        self.stamp = time.monotonic()
        self.lock = threading.Lock()

    def wait(self) -> None:
        with self.lock:
            now = time.monotonic()
            self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
            self.stamp = now
            self.tokens -= 1
            delay = -self.tokens / self.rate if self.tokens < 0 else 0.0
        if delay:
            time.sleep(delay)


def walk_docspace(client: httpx.Client, room: int, concurrency: int, pace: Pace) -> Listing:
    """Every file of a DocSpace room of folders: the pages of its folders (their names), and
    the pages of all files below it (``filterType=1``, FilesOnly, lists recursively because
    ``withSubFolders`` defaults to true: FileDao.cs, see the module docstring), each with its
    ``folderId`` and ``pureContentLength``; the first page of each says how many there are."""

    def page(files: bool, start: int) -> tuple[int, list[Any]]:
        pace.wait()
        params = {"count": str(DOCSPACE_PAGE), "startIndex": str(start)}
        if files:
            params["filterType"] = "1"
        response = client.get(f"/files/{room}", params=params)
        response.raise_for_status()
        body = response.json()["response"]
        return int(body["total"]), body["files" if files else "folders"]

    (folder_total, folders), (file_total, files) = _pool_map(
        2, lambda f: [page(bool(f), 0)], [0, 1]
    )
    rest = [(False, k) for k in range(DOCSPACE_PAGE, folder_total, DOCSPACE_PAGE)]
    rest += [(True, k) for k in range(DOCSPACE_PAGE, file_total, DOCSPACE_PAGE)]
    with concurrent.futures.ThreadPoolExecutor(concurrency) as pool:
        for (is_files, _), (_, part) in zip(rest, pool.map(lambda a: page(*a), rest), strict=True):
            (files if is_files else folders).extend(part)
    known = {f["id"] for f in folders}
    if any(f["folderId"] not in known for f in files):
        raise RuntimeError("DocSpace: a file outside the room's folders")
    return Listing(len(files), sum(int(f.get("pureContentLength") or 0) for f in files))


def find_files(path: Path, expect: int) -> None:
    """``find PATH -type f | wc -l``; fails unless it counts ``expect`` files."""
    out = subprocess.run(
        ["sh", "-c", 'find "$1" -type f | wc -l', "find", str(path)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    if int(out) != expect:
        raise RuntimeError(f"find {path}: {out.strip()} files, expected {expect}")


def du_s(path: Path) -> None:
    """``du -s PATH``; fails on an error or an empty answer."""
    out = subprocess.run(["du", "-s", str(path)], capture_output=True, text=True, check=True)
    if not out.stdout.split() or int(out.stdout.split()[0]) <= 0:
        raise RuntimeError(f"du -s {path}: {out.stdout!r}")


def _ratio_row(row: Row) -> None:
    """The verdict on both targets, and both ratios in the ratio column."""
    time_ratio = row.ratio
    base = statistics.median(row.baseline_requests) if row.baseline_requests else 0
    req_ratio = row.median_of("requests") / base if base else None
    if time_ratio is None or req_ratio is None:
        return
    row.ratio_text = f"{time_ratio:.2f}x time, {req_ratio:.2f}x requests"
    row.verdict = time_ratio <= 1.5 and req_ratio <= 1.1


def _kinds_note(run: Run) -> str:
    """The run's requests by endpoint, the most frequent first (DocSpace's numeric ids, which
    the emulator's log keeps, are grouped as ``*`` like DSpace's uuids)."""
    kinds: dict[str, int] = {}
    for kind, n in run.kinds.items():
        key = re.sub(r"/\d+(?=/|$)", "/*", kind)
        kinds[key] = kinds.get(key, 0) + n
    top = sorted(kinds.items(), key=lambda kv: -kv[1])[:4]
    return ", ".join(f"{k} x{n}" for k, n in top)


@dataclass
class Side:
    """One backend's B10 setup: where the walked collection is and the baseline that lists it."""

    top: str
    name: str
    expect: Listing
    concurrency: int
    how: str
    baseline: Callable[[], Listing]
    #: docfs's default request rate and burst for the backend, if it has one
    pace: tuple[float, int] | None = None


def _dspace6_side(env: Env, n: int) -> Side:
    emu = env.emu
    collection = emu.add_collection("Walk", emu.add_community("Tree"))
    expect = Listing(2 * n, emu.seed_walk(collection, n))
    concurrency = DSpace6Backend.default_limits.concurrency
    direct = env.direct  # logged in before any clock starts, as the daemon is
    return Side(
        "Tree",
        "Walk",
        expect,
        concurrency,
        f"{PAGE}-item pages with expand=bitstreams",
        lambda: walk_dspace6(direct, collection, concurrency),
    )


def _dspace7_side(env: Env, n: int, stack: contextlib.ExitStack) -> Side:
    emu = env.emu
    collection = emu.add_collection("Walk", emu.add_community("Tree"))
    expect = Listing(2 * n, emu.seed_walk(collection, n))
    concurrency = DSpace7Backend.default_limits.concurrency
    client = stack.enter_context(httpx.Client(base_url=f"{emu.url}/server/api", timeout=120))
    return Side(
        "Tree",
        "Walk",
        expect,
        concurrency,
        f"Discovery pages of {DSPACE7_PAGE} with embed=bundles/bitstreams",
        lambda: walk_dspace7(client, collection, concurrency),
    )


def _docspace_side(env: Env, n: int, stack: contextlib.ExitStack) -> Side:
    emu = env.emu
    room, size = emu.seed_walk_room(n)
    limits = DocSpaceBackend.default_limits
    client = stack.enter_context(httpx.Client(base_url=f"{emu.url}/api/2.0", timeout=120))
    login = client.post("/authentication", json={"userName": USER, "password": PASSWORD})
    login.raise_for_status()
    client.headers["Authorization"] = login.json()["response"]["token"]
    rate = limits.requests_per_second or 1e9
    return Side(
        "Rooms",
        "Walk",
        Listing(2 * n, size),
        limits.concurrency,
        f"{DOCSPACE_PAGE}-entry pages of folders + recursive FilesOnly pages, {rate:g}/s",
        lambda: walk_docspace(client, room, limits.concurrency, Pace(rate, limits.burst)),
        pace=(rate, limits.burst),
    )


def walk_rows(ctx: Context, latency: float, kind: str) -> list[Row]:
    """B10's two rows (find, du) for one backend's emulator."""
    n = ctx.sizes.walk_items
    reps = min(ctx.sizes.reps, MAX_REPS)
    with Env(ctx, f"walk-{kind}", latency, kind) as env, contextlib.ExitStack() as stack:
        with stopwatch() as seeding:
            if kind == "dspace6":
                side = _dspace6_side(env, n)
            elif kind == "dspace7":
                side = _dspace7_side(env, n, stack)
            else:
                side = _docspace_side(env, n, stack)
        expect, how, concurrency, baseline = side.expect, side.how, side.concurrency, side.baseline
        if baseline() != expect:  # also warms the baseline's connections
            raise RuntimeError(f"B10 {kind}: the baseline saw {baseline()}, not {expect}")
        label = f"{n:,} items x 2 files"
        rows = {
            "find": Row(
                f"B10 cold find -type f (wc -l), {label}, vs direct {how}",
                latency,
                "time ≤ 1.5x; requests ≤ 1.1x",
                limit=1.5,
                backend=kind,
            ),
            "du": Row(
                f"B10 cold du -s, {label}, vs direct {how}",
                latency,
                "time ≤ 1.5x; requests ≤ 1.1x",
                limit=1.5,
                backend=kind,
            ),
        }
        actions: dict[str, Callable[[Path], None]] = {
            "find": lambda p: find_files(p, expect.files),
            "du": du_s,
        }
        for i in range(reps):
            for what, row in rows.items():
                # a daemon of its own with an empty cache: nothing is listed yet
                m = env.mount(name=f"{what}{i}")
                top = m.path / side.top
                top.stat()
                list(top.iterdir())  # the path above the collection is not what is timed
                walk = partial(actions[what], top / side.name)
                with env.profiled(f"B10-{what}", m):
                    row.docfs.append(env.run_docfs(m, walk))
                m.stop()
                secs, reqs = env.run_direct(baseline)
                row.baseline.append(secs)
                row.baseline_requests.append(reqs)
                ctx.say(
                    f"  B10 {what} {kind} {latency:g} ms rep {i + 1}: docfs "
                    f"{row.docfs[-1].seconds:.2f} s ({row.docfs[-1].requests} req), direct "
                    f"{secs:.2f} s ({reqs} req)"
                )
        for what, row in rows.items():
            _ratio_row(row)
            if side.pace:
                rate, burst = side.pace
                least = max(0.0, (row.median_of("requests") - burst) / rate)
                row.notes.append(
                    f"{kind} {what}: docfs paces itself to {rate:g} requests/s (burst {burst}), "
                    f"so its {row.median_of('requests'):.0f} requests take at least "
                    f"{least:.1f} s whatever the latency"
                )
            row.notes.append(
                f"{kind} {what}: a fresh daemon per run, cold; the direct script sends "
                f"{concurrency} requests at a time (docfs's default concurrency for {kind}); "
                f"{reps} runs each; seeding took {seeding():.2f} s; docfs requests (median "
                "run): "
                f"{_kinds_note(sorted(row.docfs, key=lambda r: r.requests)[len(row.docfs) // 2])}"
            )
        return list(rows.values())


def bench_walk(ctx: Context, latency: float) -> list[Row]:
    return [*(row for kind in KINDS for row in walk_rows(ctx, latency, kind))]


#: B10's backends: both DSpace APIs and DocSpace (its backdoor makes a room of folders and
#: files directly, in-process; RSpace was not tried)
KINDS = ("dspace6", "dspace7", "docspace")
