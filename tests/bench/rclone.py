"""B11 of issue 24: docfs side by side with ``rclone mount``, the tool users would otherwise pick.

The same bytes are served twice on loopback: by the DSpace 6 emulator (for docfs) and by
``rclone serve webdav`` from a directory in ``/dev/shm`` (for ``rclone mount :webdav:
--vfs-cache-mode full``). WebDAV is rclone's closest equivalent of a repository API: one
``PROPFIND`` answers a directory's names, sizes and times, as a listing page does, and files are
plain GETs with ranges. Two measurements, each rep on a file or directory neither side has seen:

* a cold ``dd bs=1M`` of a big file (the same random bytes on both sides; rclone's copies are
  hard links, so it cannot know they are one file, as docfs cannot know its bitstreams are);
* a cold ``ls -l`` of a directory of N entries (items on the docfs side, empty directories on
  the rclone side: both are directories).

The two sources are different servers (the emulator is Python, rclone's is Go), so the row also
reports what a plain httpx download gets from each in the same run: the ratio of ratios says
which client gets closer to its own source. Only at 0 ms: rclone's server has no latency model.
Needs the Debian ``rclone`` package (``scripts/bench.sh`` installs it when B11 is selected);
without it the rows say so instead of being measured.
"""

from __future__ import annotations

import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

import httpx

from tests.bench.benchmarks import Context, Env, MiB, dd, ls_l
from tests.bench.direct import stream_url
from tests.bench.measure import Row, stopwatch
from tests.bench.mounts import MountProcess


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RcloneServe:
    """``rclone serve webdav DIR`` on a loopback port, in a process of its own."""

    def __init__(self, root: Path, log: Path, config: Path) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        argv = [
            "rclone",
            "serve",
            "webdav",
            str(root),
            "--addr",
            f"127.0.0.1:{self.port}",
            "--config",
            str(config),
        ]
        with open(log, "ab") as out:
            self.proc = subprocess.Popen(argv, stdout=out, stderr=out)
        deadline = time.monotonic() + 30
        while True:  # ready once it accepts connections
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.close()
                    raise RuntimeError(f"rclone serve webdav did not start: {log}") from None
                time.sleep(0.05)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


class RcloneMount(MountProcess):
    """``rclone mount :webdav: PATH --vfs-cache-mode full`` of an ``RcloneServe``."""

    def __init__(self, url: str, path: Path, cache: Path, config: Path) -> None:
        super().__init__(path, cache.parent / f"rclone-{path.name}.log")
        self.argv = [
            "rclone",
            "mount",
            ":webdav:",
            str(path),
            "--webdav-url",
            url,
            "--vfs-cache-mode",
            "full",
            "--cache-dir",
            str(cache),
            "--config",
            str(config),
        ]

    def start(self) -> RcloneMount:
        self._spawn(self.argv, dict(os.environ))
        return self


def _skipped(latency: float, reason: str) -> list[Row]:
    """The B11 rows, unmeasured, saying why (loudly on stderr too)."""
    print(f"\n!!! B11 NOT MEASURED: {reason}\n", file=sys.stderr, flush=True)
    rows = []
    for what in ("cold read", "cold ls -l"):
        row = Row(f"B11 {what}: docfs vs rclone mount", latency, "side by side (no target)")
        row.docfs_text = row.baseline_text = "NOT MEASURED"
        row.notes.append(f"B11 not measured: {reason}")
        rows.append(row)
    return rows


def bench_rclone(ctx: Context, latency: float) -> list[Row]:
    if shutil.which("rclone") is None:
        return _skipped(
            latency,
            "rclone is not installed (scripts/bench.sh runs apt-get install -y rclone when B11 "
            "is selected; that failed or was not run — no network?)",
        )
    shm = Path("/dev/shm") if os.access("/dev/shm", os.W_OK) else None
    source = Path(tempfile.mkdtemp(prefix="docfs-bench-rclone-", dir=shm))
    try:
        return _measure(ctx, latency, source)
    finally:
        shutil.rmtree(source, ignore_errors=True)


def _measure(ctx: Context, latency: float, source: Path) -> list[Row]:
    s = ctx.sizes
    size, entries, reps = s.big_file, s.listing, s.reps
    with Env(ctx, "rclone", latency) as env:
        emu = env.emu
        config = env.dir / "rclone.conf"  # absent: rclone then needs and writes nothing
        # docfs's side: reps cold copies of one blob, reps collections of N items
        emu.make_blob("big", size, seed=11)
        community = emu.add_community("Side")
        files = emu.add_collection("Files", community)
        items = emu.add_items(files, [f"r{i}" for i in range(reps)])
        ids = [emu.add_bitstream(item, "big.bin", "big") for item in items]
        lists = [emu.add_collection(f"list{i}", community) for i in range(reps)]
        for c in lists:
            emu.add_numbered_items(c, "Item", entries)
        # rclone's side: the same bytes (the emulator makes them from the same seed: fetched
        # once, untimed), hard-linked under reps names; reps directories of N directories
        url = f"{emu.api}/bitstreams/{ids[0]}/retrieve"
        with httpx.Client(timeout=300) as client, client.stream("GET", url) as response:
            response.raise_for_status()
            with open(source / "big0.bin", "wb") as out:
                for chunk in response.iter_bytes(MiB):
                    out.write(chunk)
        for i in range(1, reps):
            os.link(source / "big0.bin", source / f"big{i}.bin")
        for i in range(reps):
            for j in range(entries):
                (source / f"list{i}" / f"Item {j:06d}").mkdir(parents=True)
        serve = RcloneServe(source, env.dir / "rclone-serve.log", config)
        try:
            rc = RcloneMount(serve.url + "/", env.dir / "rclone", env.dir / "rclone-cache", config)
            env.mounts.append(rc)
            rc.start()
            m = env.mount()
            base = m.path / "Side"
            for i in range(reps):  # metadata first: B11 times contents, as B1 does
                os.stat(base / "Files" / f"r{i}" / "big.bin")
                os.stat(rc.path / f"big{i}.bin")
            return [
                _read_row(env, m, rc, serve.url, ids, base, size),
                _list_row(env, m, rc, base, entries),
            ]
        finally:
            for mount in env.mounts:  # before their server goes
                mount.stop()
            serve.close()


def _read_row(
    env: Env, m: MountProcess, rc: MountProcess, url: str, ids: list[str], base: Path, size: int
) -> Row:
    s = env.ctx.sizes
    row = Row(
        f"B11 cold read {size // MiB} MiB (dd bs=1M): docfs (DSpace 6) vs rclone mount "
        "--vfs-cache-mode full (rclone serve webdav)",
        env.latency_ms,
        "side by side (no target)",
        sense="speed",
    )
    sources: dict[str, list[float]] = {"emulator": [], "rclone serve": []}
    with httpx.Client(timeout=300) as client:
        for i in range(s.reps):
            path = base / "Files" / f"r{i}" / "big.bin"
            row.docfs.append(env.run_docfs(m, partial(dd, path, size)))
            with stopwatch() as elapsed:
                dd(rc.path / f"big{i}.bin", size)
            row.baseline.append(elapsed())
            # each source's own speed, for the ratio of ratios (warm on the server's side)
            with stopwatch() as elapsed:
                stream_url(client, f"{env.emu.api}/bitstreams/{ids[i]}/retrieve", size)
            sources["emulator"].append(elapsed())
            with stopwatch() as elapsed:
                stream_url(client, f"{url}/big{i}.bin", size)
            sources["rclone serve"].append(elapsed())
            env.ctx.say(
                f"  B11 read rep {i + 1}: docfs {row.docfs[-1].seconds:.3f} s, rclone "
                f"{row.baseline[-1]:.3f} s; httpx from the emulator {sources['emulator'][-1]:.3f}"
                f" s, from rclone serve {sources['rclone serve'][-1]:.3f} s"
            )
    emu_s, rc_s = (statistics.median(v) for v in sources.values())
    docfs_s, rclone_s = row.docfs_median or 1, row.baseline_median or 1
    row.notes.append(
        f"ratio: rclone time / docfs time. Each against its own source (httpx stream = 1): "
        f"docfs {emu_s / docfs_s:.2f} of the emulator's {size / emu_s / 1e6:.0f} MB/s, rclone "
        f"{rc_s / rclone_s:.2f} of rclone serve's {size / rc_s / 1e6:.0f} MB/s"
    )
    return row


def _list_row(env: Env, m: MountProcess, rc: MountProcess, base: Path, entries: int) -> Row:
    s = env.ctx.sizes
    row = Row(
        f"B11 cold ls -l of {entries:,} entries: docfs (DSpace 6) vs rclone mount (webdav)",
        env.latency_ms,
        "side by side (no target)",
    )
    for i in range(s.reps):
        os.listdir(base)  # the path above is not what is timed
        row.docfs.append(env.run_docfs(m, partial(ls_l, base / f"list{i}", entries)))
        with stopwatch() as elapsed:
            ls_l(rc.path / f"list{i}", entries)
        row.baseline.append(elapsed())
        env.ctx.say(
            f"  B11 ls -l rep {i + 1}: docfs {row.docfs[-1].seconds:.3f} s "
            f"({row.docfs[-1].requests} req), rclone {row.baseline[-1]:.3f} s"
        )
    row.notes.append(
        "ls -l ratio: docfs time / rclone time; rclone lists a directory with one PROPFIND "
        "(Depth: 1), docfs pages the collection 100 items at a time"
    )
    return row
