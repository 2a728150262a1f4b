"""Clocks, process accounting, medians and the result table.

Every benchmark produces one ``Row``: the medians of the docfs runs and of the baseline runs
(each run of one interleaved with one of the other, so drift affects both alike), their ratio
expressed the way the issue states the target (a speed ratio for "≥", a time ratio for "≤"),
and per docfs run the requests and bytes the emulator saw and the daemon's CPU seconds.
"""

from __future__ import annotations

import contextlib
import os
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

_TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU of process ``pid`` (all its threads) so far."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICK


def rss_bytes(pid: int, key: str = "VmRSS") -> int:
    """Resident set (``VmRSS``) or its peak (``VmHWM``) of process ``pid``."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    raise KeyError(key)


def tree_size(path: str) -> int:
    """Bytes in the regular files below ``path`` (what the cache really holds on disk)."""
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            with contextlib.suppress(FileNotFoundError):  # evicted meanwhile
                total += os.lstat(os.path.join(root, name)).st_size
    return total


@contextmanager
def stopwatch() -> Iterator[Callable[[], float]]:
    """``with stopwatch() as elapsed: …``; ``elapsed()`` is frozen when the block ends."""
    start = time.perf_counter()
    end: float | None = None

    def elapsed() -> float:
        return (end if end is not None else time.perf_counter()) - start

    try:
        yield elapsed
    finally:
        end = time.perf_counter()


@dataclass
class Run:
    """One docfs run: its time and what it cost."""

    seconds: float
    requests: int = 0
    bytes: int = 0
    cpu: float = 0.0
    #: requests by endpoint ("GET /collections/*/items" → count)
    kinds: dict[str, int] = field(default_factory=dict)


@dataclass
class Row:
    bench: str
    latency_ms: float
    target: str
    docfs: list[Run] = field(default_factory=list)
    baseline: list[float] = field(default_factory=list)
    baseline_requests: list[int] = field(default_factory=list)
    #: "speed": ratio = baseline/docfs (higher is better); "time": docfs/baseline (lower is)
    sense: str = "time"
    limit: float | None = None
    backend: str = "dspace6"
    #: overrides the computed verdict (benchmarks whose pass condition is not a ratio)
    verdict: bool | None = None
    #: shown instead of times, for measurements that are not durations (RSS, cache size)
    docfs_text: str | None = None
    baseline_text: str | None = None
    ratio_text: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def docfs_median(self) -> float | None:
        return statistics.median(r.seconds for r in self.docfs) if self.docfs else None

    @property
    def baseline_median(self) -> float | None:
        return statistics.median(self.baseline) if self.baseline else None

    @property
    def ratio(self) -> float | None:
        d, b = self.docfs_median, self.baseline_median
        if d is None or b is None or d <= 0 or b <= 0:
            return None
        return b / d if self.sense == "speed" else d / b

    @property
    def passed(self) -> bool | None:
        if self.verdict is not None:
            return self.verdict
        ratio = self.ratio
        if ratio is None or self.limit is None:
            return None
        return ratio >= self.limit if self.sense == "speed" else ratio <= self.limit

    def median_of(self, attr: str) -> float:
        values = [getattr(r, attr) for r in self.docfs]
        return statistics.median(values) if values else 0.0


def human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


def human_seconds(s: float | None) -> str:
    if s is None:
        return "—"
    return f"{s * 1000:.1f} ms" if s < 1 else f"{s:.2f} s"


COLUMNS = (
    "benchmark",
    "backend",
    "latency",
    "docfs median",
    "baseline median",
    "ratio",
    "target",
    "pass",
    "requests",
    "bytes moved",
    "daemon CPU s",
)


def row_cells(row: Row) -> list[str]:
    ratio = row.ratio
    ratio_text = row.ratio_text or ("—" if ratio is None else f"{ratio:.2f}x")
    passed = row.passed
    verdict = "—" if passed is None else ("PASS" if passed else "FAIL")
    requests = f"{row.median_of('requests'):.0f}" if row.docfs else "—"
    if row.baseline_requests:
        requests += f" ({statistics.median(row.baseline_requests):.0f})"
    return [
        row.bench,
        row.backend,
        f"{row.latency_ms:.0f} ms",
        row.docfs_text or human_seconds(row.docfs_median),
        row.baseline_text or human_seconds(row.baseline_median),
        ratio_text,
        row.target,
        verdict,
        requests,
        human_bytes(row.median_of("bytes")) if row.docfs else "—",
        f"{row.median_of('cpu'):.2f}" if row.docfs else "—",
    ]


def render_table(rows: list[Row]) -> str:
    """A Markdown table (readable in a terminal, pasteable into the README)."""
    lines = [row_cells(r) for r in rows]
    widths = [max(len(c), *(len(line[i]) for line in lines)) for i, c in enumerate(COLUMNS)]

    def fmt(cells: list[str] | tuple[str, ...]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    out = [fmt(COLUMNS), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    out.extend(fmt(line) for line in lines)
    return "\n".join(out)
