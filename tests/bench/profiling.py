"""py-spy profiles of the docfs daemon during a benchmark, and a summary of where time went.

``py-spy record --format raw`` writes collapsed stacks (``frame;frame;… count``); the summary
lists the functions with the most samples on top of the stack (self) and anywhere in it
(inclusive), which is the evidence the issue asks for before anything is optimised. py-spy is
optional (``pip install py-spy``); without it the benchmarks run unprofiled.
"""

from __future__ import annotations

import collections
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def py_spy() -> str | None:
    here = Path(sys.executable).parent / "py-spy"
    return str(here) if here.exists() else shutil.which("py-spy")


@contextmanager
def record(pid: int, out: Path, rate: int = 200) -> Iterator[None]:
    """Sample process ``pid`` while the block runs; collapsed stacks go to ``out``."""
    exe = py_spy()
    if exe is None:
        print("py-spy not installed: no profile (pip install py-spy)", file=sys.stderr)
        yield
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen(
        [exe, "record", "--format", "raw", "--rate", str(rate), "-p", str(pid), "-o", str(out)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    time.sleep(0.5)  # py-spy needs a moment to attach before the first sample
    try:
        yield
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def _short_path(path: str) -> str:
    for marker in ("site-packages/", "/work/main/", "lib/python3"):
        if marker in path:
            path = path.split(marker, 1)[1]
    return path


def _frame(frame: str, *, line: bool) -> str:
    """``read (/…/docfs/vfs/content.py:226)`` → ``read (docfs/vfs/content.py)`` (or ``:226``)."""
    name, _, where = frame.partition(" (")
    path, _, number = where.rstrip(")").rpartition(":")
    path = _short_path(path or number)
    if line and number.isdigit():
        path = f"{path}:{number}"
    return f"{name} ({path})" if path else name


def _stacks(raw: Path) -> Iterator[tuple[list[str], int]]:
    for text in raw.read_text(errors="replace").splitlines():
        stack, _, count = text.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        # py-spy may lead with the process or thread: not a frame
        frames = [f for f in stack.split(";") if f and not f.startswith(("process ", "thread "))]
        if frames:
            yield frames, int(count)


def summarize(raw: Path, top: int = 12) -> str:
    """Where the daemon's samples went: functions by self time, docfs lines by self time,
    docfs functions by inclusive time."""
    by_self: collections.Counter[str] = collections.Counter()
    by_line: collections.Counter[str] = collections.Counter()
    by_incl: collections.Counter[str] = collections.Counter()
    total = 0
    for frames, count in _stacks(raw):
        total += count
        by_self[_frame(frames[-1], line=False)] += count
        for f in reversed(frames):
            if "docfs/" in f:
                by_line[_frame(f, line=True) + ("" if f is frames[-1] else " (and below)")] += count
                break
        for name in {_frame(f, line=False) for f in frames if "docfs/" in f}:
            by_incl[name] += count
    if not total:
        return f"{raw.name}: no samples\n"
    lines = [f"{raw.name}: {total} samples of the daemon (idle time not sampled)"]
    for title, counter in (
        ("functions by self time", by_self),
        ("innermost docfs line on the stack", by_line),
        ("docfs functions by inclusive time", by_incl),
    ):
        lines.append(f"  top {top} {title}:")
        lines.extend(f"    {100 * n / total:5.1f}%  {name}" for name, n in counter.most_common(top))
    return "\n".join(lines) + "\n"
