"""B13 of issue 22: ``--bwlimit 2M`` holds a 20 MiB copy at 2 MiB/s (± 10%).

A DSpace 6 item holds a 20 MiB bitstream; a mount with ``--bwlimit 2M`` copies it out with
``cp`` (the download, paced by the receiving thread) and copies a 20 MiB local file into the
item (the upload, paced as its body leaves; sync mode, so ``cp`` returns when the upload is
done). Each copy is timed around ``cp`` and its rate compared with the limit. Without a
limit the same copies take a fraction of a second on loopback, so the time is the limit's.
"""

from __future__ import annotations

import os
import subprocess
from functools import partial
from typing import TYPE_CHECKING

from tests.bench.measure import Row

if TYPE_CHECKING:
    from tests.bench.benchmarks import Context

MiB = 1 << 20
LIMIT = 2 * MiB
SIZE = 20 * MiB
#: the issue's target: the achieved rate within this share of the limit
TOLERANCE = 0.10


def bench_bwlimit(ctx: Context, latency: float) -> list[Row]:
    from tests.bench.benchmarks import Env

    reps = 1 if ctx.sizes.reps <= 3 else 3
    with Env(ctx, "bwlimit", latency) as env:
        emu = env.emu
        emu.make_blob("bw", SIZE, seed=22)
        collection = emu.add_collection("Line", emu.add_community("Shared"))
        sources = emu.add_items(collection, [f"down{i}" for i in range(reps)])
        emu.add_items(collection, [f"up{i}" for i in range(reps)])
        for item in sources:
            emu.add_bitstream(item, "big.bin", "bw")
        local = env.dir / "big.bin"
        local.write_bytes(os.urandom(SIZE))
        m = env.mount("--bwlimit", "2M")
        base = m.path / "Shared" / "Line"
        os.listdir(base)
        rows = []
        for direction in ("download", "upload"):
            row = Row(
                f"B13 cp of 20 MiB with --bwlimit 2M: {direction}",
                latency,
                "rate 2 MiB/s ± 10%",
            )
            for i in range(reps):
                if direction == "download":
                    os.listdir(base / f"down{i}")
                    argv = ["cp", str(base / f"down{i}" / "big.bin"), str(env.dir / f"out{i}")]
                else:
                    os.listdir(base / f"up{i}")
                    argv = ["cp", str(local), str(base / f"up{i}" / "big.bin")]
                run = env.run_docfs(m, partial(subprocess.run, argv, check=True))
                row.docfs.append(run)
                ctx.say(f"  B13 {direction} rep {i + 1}: {SIZE / run.seconds / MiB:.2f} MiB/s")
            seconds = row.docfs_median
            assert seconds is not None
            rate = SIZE / seconds
            row.docfs_text = f"{rate / MiB:.2f} MiB/s ({seconds:.1f} s)"
            row.baseline_text = f"limit {LIMIT / MiB:.1f} MiB/s"
            row.ratio_text = f"{rate / LIMIT:.3f}x the limit"
            row.verdict = abs(rate / LIMIT - 1) <= TOLERANCE
            rows.append(row)
        return rows
