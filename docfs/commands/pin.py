"""``docfs pin``, ``unpin``, ``pinned`` and ``cache clear``: offline use and cache control.

Each asks the mount holding PATH through its control socket (``docfs.control``); the mount
does the work (``docfs.vfs.pins``). ``pin`` shows a progress line (files, bytes, ETA) while the
mount fetches.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from docfs import control
from docfs.commands.status import (
    ProgressLine,
    _socket,
    find_mount,
    human_size,
    human_time,
    progress_bar,
    running_mounts,
)
from docfs.redact import Redactor

#: a pin of many files may take long; the mount reports progress every half second
PIN_TIMEOUT = 120.0


def pin_progress_text(p: dict[str, Any]) -> str:
    return (
        f"docfs: pinning {progress_bar(p['bytes'], p['bytes_total'])} {p['files']} of "
        f"{p['files_total']} files, {human_size(p['bytes'])} of "
        f"{human_size(p['bytes_total'])}, ETA {human_time(p.get('eta'))}"
    )


def _ask(path: str, request: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    state, inside = find_mount(Path(path))
    return control.call(_socket(state), {**request, "path": inside}, **kwargs)


def cmd_pin(args: argparse.Namespace, redactor: Redactor) -> int:
    status = 0
    for path in args.paths:
        line = ProgressLine(every=5.0, text=pin_progress_text, step=None)
        try:
            answer = _ask(path, {"op": "pin"}, progress=line.show, timeout=PIN_TIMEOUT)
        except control.ControlError as exc:
            line.done()
            print(f"docfs: pin {path}: {exc}", file=sys.stderr)
            status = 1
            continue
        line.done()
        print(
            f"docfs: pinned {path}: {answer['files']} of {answer['files_total']} files, "
            f"{human_size(answer['bytes'])} fetched"
        )
        if not answer.get("ok"):
            status = 1
            print(f"docfs: {answer.get('error')}", file=sys.stderr)
            for failure in answer.get("failed", []):
                print(f"  not fetched: {failure}", file=sys.stderr)
    return status


def cmd_unpin(args: argparse.Namespace, redactor: Redactor) -> int:
    status = 0
    for path in args.paths:
        try:
            answer = _ask(path, {"op": "unpin"})
        except control.ControlError as exc:
            print(f"docfs: unpin {path}: {exc}", file=sys.stderr)
            status = 1
            continue
        print(
            f"docfs: unpinned {', '.join(answer['unpinned'])}: {answer['files']} files "
            f"({human_size(answer['bytes'])}) may be evicted again"
        )
    return status


def cmd_pinned(args: argparse.Namespace, redactor: Redactor) -> int:
    """Every pin of every mount (or of the mount holding PATH)."""
    states = [find_mount(Path(args.path))[0]] if args.path else running_mounts()
    reports: list[dict[str, Any]] = []
    failed = False
    for state in states:
        try:
            answer = control.call(_socket(state), {"op": "pinned"})
        except control.ControlError as exc:
            failed = True
            reports.append({"mountpoint": state.get("mountpoint"), "error": str(exc)})
            continue
        answer.pop("ok", None)
        reports.append({"mountpoint": state.get("mountpoint"), **answer})
    if args.json:
        print(json.dumps(reports, indent=2))
        return 1 if failed else 0
    for report in reports:
        where = report["mountpoint"]
        if "error" in report:
            print(f"{where}: not answering: {report['error']}")
            continue
        for pin in report["pins"]:
            print(
                f"{where.rstrip('/')}{pin['path']}  {pin['files']} files, "
                f"{human_size(pin['bytes'])}"
            )
    return 1 if failed else 0


def cmd_cache_clear(args: argparse.Namespace, redactor: Redactor) -> int:
    """Drop cached, unpinned, unmodified content below PATH (no PATH: of every mount)."""
    targets: list[tuple[dict[str, Any], str]] = (
        [find_mount(Path(args.path))] if args.path else [(s, "/") for s in running_mounts()]
    )
    status = 0
    for state, inside in targets:
        try:
            answer = control.call(_socket(state), {"op": "cache-clear", "path": inside})
        except control.ControlError as exc:
            print(f"docfs: cache clear {state.get('mountpoint')}: {exc}", file=sys.stderr)
            status = 1
            continue
        print(
            f"docfs: {answer['files']} cached files ({human_size(answer['bytes'])}) dropped "
            f"under {str(state.get('mountpoint')).rstrip('/')}{inside}"
        )
    return status
