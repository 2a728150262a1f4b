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
* DSpace 7: Discovery pages of the collection's items (at most 100 a page) with
  ``embed=bundles/bitstreams`` applied to each result's ``indexableObject``, as the emulator
  honours it (the DSpace Angular UI sends ``embed=`` on search results, e.g. ``embed=thumbnail``;
  whether a real server also follows a two-level embed there is not verified).

Targets (issue 24): requests ≤ 1.1x the baseline's, time ≤ 1.5x.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import statistics
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import httpx

from docfs.backends.dspace6 import DSpace6Backend
from docfs.backends.dspace7 import DSpace7Backend
from tests.bench.benchmarks import Context, Env
from tests.bench.direct import JSON, PAGE, Direct
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
    top = sorted(run.kinds.items(), key=lambda kv: -kv[1])[:4]
    return ", ".join(f"{k} x{n}" for k, n in top)


def walk_rows(ctx: Context, latency: float, kind: str) -> list[Row]:
    """B10's two rows (find, du) for the DSpace 6 or DSpace 7 emulator."""
    n = ctx.sizes.walk_items
    reps = min(ctx.sizes.reps, MAX_REPS)
    with Env(ctx, f"walk-{kind}", latency, kind) as env, contextlib.ExitStack() as stack:
        emu = env.emu
        collection = emu.add_collection("Walk", emu.add_community("Tree"))
        with stopwatch() as seeding:
            seeded = emu.seed_walk(collection, n)
        expect = Listing(2 * n, seeded)
        baseline: Callable[[], Listing]
        if kind == "dspace6":
            concurrency = DSpace6Backend.default_limits.concurrency
            how = f"{PAGE}-item pages with expand=bitstreams"
            direct = env.direct  # logged in before any clock starts, as the daemon is

            def baseline() -> Listing:
                return walk_dspace6(direct, collection, concurrency)

        else:
            concurrency = DSpace7Backend.default_limits.concurrency
            how = f"Discovery pages of {DSPACE7_PAGE} with embed=bundles/bitstreams"
            client = stack.enter_context(
                httpx.Client(base_url=f"{emu.url}/server/api", timeout=120)
            )

            def baseline() -> Listing:
                return walk_dspace7(client, collection, concurrency)

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
                top = m.path / "Tree"
                top.stat()
                list(top.iterdir())  # the path above the collection is not what is timed
                walk = partial(actions[what], top / "Walk")
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
            row.notes.append(
                f"{kind} {what}: a fresh daemon per run, cold; the direct script sends "
                f"{concurrency} requests at a time (docfs's default concurrency for {kind}); "
                f"{reps} runs each; seeding took {seeding():.2f} s; docfs requests (median "
                "run): "
                f"{_kinds_note(sorted(row.docfs, key=lambda r: r.requests)[len(row.docfs) // 2])}"
            )
        return list(rows.values())


def bench_walk(ctx: Context, latency: float) -> list[Row]:
    return [*walk_rows(ctx, latency, "dspace6"), *walk_rows(ctx, latency, "dspace7")]
