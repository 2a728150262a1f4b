"""``docfs status``, ``sync`` and ``refresh``: asking a running mount through its control socket."""

from __future__ import annotations

import argparse
import errno
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from docfs import control
from docfs.commands.common import UsageError, alive, read_state
from docfs.daemon import (
    control_socket,
    runtime_dir,
    state_file,
)
from docfs.redact import Redactor


def stale_mounts() -> list[str]:
    """Mount points of daemons that died without unmounting (they answer ENOTCONN)."""
    found = []
    for path in sorted(runtime_dir().glob("mount-*.json")):
        state = read_state(path) or {}
        pid, where = state.get("pid"), state.get("mountpoint")
        dead = isinstance(pid, int) and not alive(pid)
        if dead and isinstance(where, str) and _stale(Path(where)):
            found.append(where)
    return found


def running_mounts() -> list[dict[str, Any]]:
    """The state of every live docfs mount of this user."""
    found = []
    for path in sorted(runtime_dir().glob("mount-*.json")):
        state = read_state(path)
        if state is not None and isinstance(state.get("pid"), int) and alive(state["pid"]):
            found.append(state)
    return found


def _mount_state(mountpoint: str) -> dict[str, Any]:
    path = Path(mountpoint).resolve()
    state = read_state(state_file(path))
    if state is None or not isinstance(state.get("pid"), int) or not alive(state["pid"]):
        if _stale(path):
            raise UsageError(f"stale mount at {path}: run `docfs unmount {path}`")
        raise UsageError(f"no docfs mount at {path}")
    return state


def _stale(mountpoint: Path) -> bool:
    """The mount point of a daemon that died answers ENOTCONN until it is unmounted."""
    try:
        os.statvfs(mountpoint)
    except OSError as exc:
        return exc.errno == errno.ENOTCONN
    return False


def _socket(state: dict[str, Any]) -> Path:
    return Path(state.get("control") or control_socket(Path(state["mountpoint"])))


def cmd_status(args: argparse.Namespace, redactor: Redactor) -> int:
    states = [_mount_state(args.mountpoint)] if args.mountpoint else running_mounts()
    reports: list[dict[str, Any]] = []
    failed = False
    for stale in [] if args.mountpoint else stale_mounts():
        failed = True
        reports.append({"mountpoint": stale, "error": f"stale mount: run `docfs unmount {stale}`"})
    for state in states:
        try:
            reports.append(control.call(_socket(state), {"op": "status"})["status"])
        except control.ControlError as exc:
            failed = True
            reports.append({"mountpoint": state.get("mountpoint"), "error": str(exc)})
    if args.json:
        print(json.dumps(reports if not args.mountpoint else reports[0], indent=2))
    elif not reports:
        print("docfs: no mounts")
    else:
        print("\n".join(format_status(r) for r in reports), end="")
    return 1 if failed else 0


def human_size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


def human_time(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


def progress_bar(done: int, total: int, width: int = 20) -> str:
    filled = width if total <= 0 else min(width, done * width // total)
    return "[" + "#" * filled + "-" * (width - filled) + "]"


def format_status(report: dict[str, Any]) -> str:
    """The human form of one mount's status (``docfs status``)."""
    if "error" in report:
        return f"{report.get('mountpoint')}\n  not answering: {report['error']}\n"
    name = report.get("name") or ""
    if name and report.get("sub_path"):
        name += f":{report['sub_path']}"
    mode = ", read-only" if report.get("read_only") else ""
    if report.get("write_back") is not None:
        mode += f", write-back {report['write_back']:g} s"
    if report.get("direct_io"):
        mode += ", direct I/O"
    cache, requests, rate, uploads = (
        report["cache"],
        report["requests"],
        report["rate_limit"],
        report["uploads"],
    )
    share = cache["used"] * 100 // cache["limit"] if cache["limit"] else 0
    lines = [
        f"{report['mountpoint']}: {name + ' ' if name else ''}({report['remote']}){mode}",
        f"  pid {report['pid']}, up {human_time(report['uptime'])}",
        f"  cache     {human_size(cache['used'])} of {human_size(cache['limit'])} ({share}%)",
        f"  requests  {requests['total']}, errors {requests['errors']}, "
        f"retries {requests['retries']}; rate-limit waits {rate['waits']} "
        f"({rate['seconds']:.1f} s)",
    ]
    for endpoint, e in requests["endpoints"].items():
        lines.append(
            f"    {endpoint:<28} {e['requests']:>7}  errors {e['errors']:<4} "
            f"retries {e['retries']:<4} sent {human_size(e['bytes_sent'])}, "
            f"received {human_size(e['bytes_received'])}"
        )
    bandwidth = report.get("bandwidth") or {}
    if bandwidth.get("limit"):
        lines.append(
            f"  bwlimit   {human_size(bandwidth['limit'])}/s for downloads and uploads together; "
            f"waits {bandwidth['waits']} ({bandwidth['seconds']:.1f} s)"
        )
    lines.append(format_uploads(uploads))
    if report.get("write_back") is None:
        # sync mode: no queue, but the uploads of files being closed are in flight
        lines.extend(format_transfer(t) for t in report.get("transfers", []))
    if report.get("lost_found"):
        lines.append(f"  lost+found  {report['lost_found']} files kept after failed uploads")
    for held in report.get("held_back") or []:
        lines.append(f"  held back   {held}")
    lines.extend(format_offline_use(report))
    return "\n".join(lines) + "\n"


def format_offline_use(report: dict[str, Any]) -> list[str]:
    """Pinned files and bytes, and the outage if the server does not answer (issue 22)."""
    lines = []
    pinned = report.get("pinned")
    if pinned and pinned.get("folders"):
        lines.append(
            f"  pinned    {pinned['files']} files, {human_size(pinned['bytes'])} of "
            f"{human_size(pinned['limit'])} in {pinned['folders']} pinned folders"
        )
    offline = report.get("offline")
    if offline:
        since = time.strftime("%H:%M", time.localtime(offline["since"]))
        lines.append(
            f"  offline since {since}, {offline['failed']} requests failed, "
            f"retrying every {offline['retry_every']:g} s"
        )
    return lines


def format_transfer(t: dict[str, Any]) -> str:
    """One upload in flight: ``[####------]  40.0 MiB of 80.0 MiB, 8.0 MiB/s, ETA 5 s  /a/b``."""
    rate = f"{human_size(t['rate'])}/s" if t.get("rate") else "starting"
    return (
        f"    {progress_bar(t['sent'], t['size'])} {human_size(t['sent'])} of "
        f"{human_size(t['size'])}, {rate}, ETA {human_time(t.get('eta'))}  {t['path']}"
    )


def format_uploads(uploads: dict[str, Any]) -> str:
    if not uploads["pending"]:
        return f"  uploads   none pending ({uploads['uploaded']} done)"
    rate = f", {human_size(uploads['rate'])}/s" if uploads.get("rate") else ""
    lines = [
        f"  uploads   {uploads['pending']} pending, {human_size(uploads['bytes_left'])} left"
        f"{rate}, ETA {human_time(uploads['eta'])}"
    ]
    for f in uploads["files"]:
        if f["state"] == "uploading":
            share = f["sent"] * 100 // f["size"] if f["size"] else 100
            rate = f"{human_size(f['rate'])}/s  " if f.get("rate") else ""
            detail = f"{share:3d}%  {rate}ETA {human_time(f['eta'])}"
        elif f["state"] == "retrying":
            detail = f"retry {f['attempts']} in {human_time(f['due_in'])}"
        else:
            detail = f"queued, starts in {human_time(f['due_in'])}"
        lines.append(
            f"    {progress_bar(f['sent'], f['size'])} {human_size(f['size']):>10}  "
            f"{detail}  {f['path']}"
        )
    return "\n".join(lines)


def progress_text(uploads: dict[str, Any]) -> str:
    """``docfs sync``/``unmount``'s progress: files and bytes left, rate, ETA."""
    total, left = uploads["bytes_total"], uploads["bytes_left"]
    rate = f", {human_size(uploads['rate'])}/s" if uploads.get("rate") else ""
    return (
        f"docfs: {uploads['pending']} uploads left, {human_size(total - left)} of "
        f"{human_size(total)} sent{rate}, ETA {human_time(uploads['eta'])}"
    )


class ProgressLine:
    """A progress line that stays current: on a terminal one line rewritten in place (bytes
    move every half second even for one big file); otherwise (a log, a pipe) a plain line
    when ``step`` of the report changes (the number of files left) or every ``every``
    seconds, not a flood. ``text`` words a report (the upload queue's by default)."""

    def __init__(
        self,
        stream: Any = None,
        every: float = 10.0,
        *,
        text: Callable[[dict[str, Any]], str] | None = None,
        step: Callable[[dict[str, Any]], object] | None = lambda report: report["pending"],
    ) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.live = bool(getattr(self.stream, "isatty", lambda: False)())
        self.every = every
        self.text = text or progress_text
        self.step = step
        self._last: tuple[object, float] | None = None
        self._drawn = False

    def show(self, report: dict[str, Any]) -> None:
        text = self.text(report)
        now = time.monotonic()
        step = self.step(report) if self.step is not None else None
        if self.live:
            self.stream.write(f"\r\x1b[K{text}")
            self._drawn = True
        elif self._last is None or self._last[0] != step or now - self._last[1] >= self.every:
            self.stream.write(text + "\n")
            self._last = (step, now)
        else:
            return
        self.stream.flush()

    def done(self) -> None:
        """End the line in place, so what follows starts on a line of its own."""
        if self._drawn:
            self.stream.write("\n")
            self.stream.flush()
            self._drawn = False


def cmd_sync(args: argparse.Namespace, redactor: Redactor) -> int:
    state = _mount_state(args.mountpoint)
    line = ProgressLine()
    request: dict[str, Any] = {"op": "sync", "timeout": args.timeout}
    try:
        answer = control.call(_socket(state), request, progress=line.show, timeout=60.0)
    except control.ControlError as exc:
        line.done()
        print(f"docfs: sync failed: {exc}", file=sys.stderr)
        return 1
    line.done()
    if answer.get("ok"):
        print(f"docfs: all uploads done ({answer['uploaded']} uploaded)")
        return 0
    print(f"docfs: {answer.get('error')}", file=sys.stderr)
    for failure in answer.get("failed", []):
        print(f"  failed: {failure['path']}: {failure['error']}", file=sys.stderr)
    for path in answer.get("pending", []):
        print(f"  still queued: {path}", file=sys.stderr)
    return 1


def find_mount(path: Path) -> tuple[dict[str, Any], str]:
    """The mount holding ``path`` and the path inside it (``/a/b``)."""
    for candidate in (Path(os.path.abspath(path)), path.resolve()):
        for base in (candidate, *candidate.parents):
            state = read_state(state_file(base))
            if state is not None and isinstance(state.get("pid"), int) and alive(state["pid"]):
                inside = candidate.relative_to(base).as_posix()
                return state, "/" if inside == "." else f"/{inside}"
    raise UsageError(f"{path} is not inside a docfs mount")


def cmd_refresh(args: argparse.Namespace, redactor: Redactor) -> int:
    state, inside = find_mount(Path(args.path))
    try:
        answer = control.call(_socket(state), {"op": "refresh", "path": inside})
    except control.ControlError as exc:
        print(f"docfs: refresh failed: {exc}", file=sys.stderr)
        return 1
    print(f"docfs: {answer['dropped']} cached listings dropped under {args.path}")
    return 0
