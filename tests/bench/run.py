"""Run the benchmarks of issue 10 and print one table: ``python -m tests.bench.run``.

``bash scripts/bench.sh`` is the documented way in (it checks FUSE and uses the project's
virtual environment). Options: ``--quick`` (3 repetitions, smaller sizes: for iterating),
``--only B1,B3`` (those benchmarks' groups), ``--latencies 0,20``, ``--reps N``, ``--profile``
(py-spy the daemon during the docfs runs; profiled times are not the ones to quote) and
``--out DIR`` (where ``table.md``, ``results.json`` and profiles go; a new temporary directory
by default) and ``--strict`` (exit status 1 when a target is missed).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import shutil
import sys
import tempfile
import time
import traceback
from pathlib import Path

from tests.bench import profiling
from tests.bench.benchmarks import GROUPS, Context, Group, Sizes
from tests.bench.measure import Row, render_table
from tests.bench.mounts import Experiment


def machine() -> str:
    model = "unknown CPU"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as f:
        mem_kib = int(f.readline().split()[1])
    return (
        f"{os.cpu_count()} CPUs ({model}), {mem_kib / 1024 / 1024:.1f} GiB RAM, "
        f"Linux {platform.release()}, Python {platform.python_version()}"
    )


def selected(groups: tuple[Group, ...], only: str | None) -> list[Group]:
    if not only:
        return list(groups)
    wanted = {w.strip().upper() for w in only.split(",") if w.strip()}
    unknown = wanted - {i.upper() for g in groups for i in g.ids}
    if unknown:
        raise SystemExit(f"unknown benchmark(s): {', '.join(sorted(unknown))}")
    return [g for g in groups if wanted & {i.upper() for i in g.ids}]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer reps, smaller sizes")
    parser.add_argument("--only", help="comma-separated benchmark ids, e.g. B1,B3")
    parser.add_argument("--latencies", default="0,20", help="emulator latencies in ms")
    parser.add_argument("--reps", type=int, help="repetitions (default 5, quick 3)")
    parser.add_argument("--profile", action="store_true", help="py-spy the daemon")
    parser.add_argument("--out", type=Path, help="directory for table.md, results.json")
    parser.add_argument("--strict", action="store_true", help="exit 1 if a target is missed")
    parser.add_argument(
        "--read-ahead-kb",
        type=int,
        help="EXPERIMENT: set the docfs mounts' kernel read-ahead (root; e.g. 1024)",
    )
    parser.add_argument(
        "--no-fsync",
        action="store_true",
        help="EXPERIMENT: run the docfs daemon under eatmydata (fsync does nothing)",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    sizes = Sizes.quick() if args.quick else Sizes()
    if args.reps:
        sizes.reps = args.reps
    latencies = tuple(float(x) for x in args.latencies.split(","))
    out = args.out or Path(tempfile.mkdtemp(prefix="docfs-bench-"))
    out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="work-", dir=out))
    experiment = Experiment(read_ahead_kb=args.read_ahead_kb, no_fsync=args.no_fsync)
    if experiment.no_fsync and shutil.which("eatmydata") is None:
        raise SystemExit("--no-fsync needs eatmydata (apt-get install eatmydata)")
    ctx = Context(sizes, work, profile=args.profile, experiment=experiment)
    rows: list[Row] = []
    #: the groups that failed (their rows say NOT MEASURED); the run exits 1 when any did
    failed: list[str] = []
    started = time.monotonic()
    load_before = os.getloadavg()[0]
    try:
        for group in selected(GROUPS, args.only):
            for latency in group.latencies or latencies:
                if group.latencies is None and latency not in latencies:
                    continue
                ctx.say(f"{'/'.join(group.ids)} at {latency:g} ms …")
                t = time.monotonic()
                try:
                    rows.extend(group.fn(ctx, latency))
                except Exception as exc:
                    # a full run takes half an hour: one failing benchmark must not lose the
                    # others' rows; it gets a row that says it was not measured, and why
                    traceback.print_exc()
                    failed.append(f"{'/'.join(group.ids)} at {latency:g} ms")
                    rows.append(
                        Row(
                            f"{'/'.join(group.ids)} NOT MEASURED: {type(exc).__name__}: {exc}",
                            latency,
                            "—",
                            verdict=False,
                            docfs_text="—",
                        )
                    )
                ctx.say(f"  ({time.monotonic() - t:.0f} s)")
                # so far, in case the run is cut short
                (out / "table.md").write_text(render_table(rows) + "\n")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    rows.sort(key=lambda r: (r.bench.split()[0], r.latency_ms))
    table = render_table(rows)
    notes = [f"- {r.bench.split()[0]} at {r.latency_ms:g} ms: {n}" for r in rows for n in r.notes]
    header = (
        f"docfs benchmarks ({'quick' if args.quick else 'full'}: medians of {sizes.reps} "
        f"runs) of docfs {os.environ.get('DOCFS_BENCH_REVISION', '(working tree)')} on "
        f"{machine()}; total {time.monotonic() - started:.0f} s; load average (1 min) "
        f"{load_before:.1f} at the start, {os.getloadavg()[0]:.1f} at the end"
    )
    legend = (
        "ratio: for 'speed ≥' targets baseline time / docfs time (higher is better), for "
        "'time ≤' targets docfs time / baseline time (lower is better). requests: per docfs "
        "run (the baseline's in brackets); bytes moved: HTTP bodies both ways per docfs run; "
        "daemon CPU s: per docfs run."
    )
    if experiment.describe():
        header += f"\nEXPERIMENT, not docfs as it is: {experiment.describe()}"
    if args.profile:
        header += "\nPROFILED (py-spy attached): times are not the ones to quote"
    text = "\n".join([header, "", table, "", legend, *notes]) + "\n"
    (out / "table.md").write_text(text)
    (out / "results.json").write_text(
        json.dumps([dataclasses.asdict(r) for r in rows], indent=1, default=str)
    )
    for prof in ctx.profiles:
        summary = profiling.summarize(prof)
        (prof.with_suffix(".summary")).write_text(summary)
        print(summary, file=sys.stderr)
    print(text)
    print(f"(saved in {out})", file=sys.stderr)
    if failed:
        print(f"bench: NOT MEASURED (failed, see above): {', '.join(failed)}", file=sys.stderr)
        return 1
    missed = [r for r in rows if r.passed is False]
    return 1 if args.strict and missed else 0


if __name__ == "__main__":
    sys.exit(main())
