"""``docfs mount``, ``unmount`` and ``detect``: running the daemon in the foreground or detached."""

from __future__ import annotations

import argparse
import contextlib
import gc
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import trio

from docfs import control, errors
from docfs.commands.common import (
    EXIT_AUTH,
    EXIT_USAGE,
    READY_FD_ENV,
    UsageError,
    alive,
    read_state,
)
from docfs.commands.source import mount_config, parse_remote
from docfs.commands.status import ProgressLine
from docfs.daemon import (
    PRIVATE_UMASK,
    MountConfig,
    fuse_problem,
    runtime_dir,
    serve,
    state_file,
)
from docfs.redact import Redactor
from docfs.registry import families

log = logging.getLogger("docfs")


def tune_gc() -> None:
    """Fewer cyclic-GC passes: a listing of 10,000 items allocates ~300,000 dicts and strings,
    and with Python's default (a young pass every 700 allocations, full passes that walk every
    cached node) a cold 10,000-entry ``ls -l`` cost the daemon 1.21 CPU s; with this, 1.01 s.
    Reference counting frees almost everything the daemon makes: it builds few cycles."""
    gc.freeze()  # what start-up made lives as long as the daemon
    gc.set_threshold(50_000, 20, 50)


def run_foreground(mount: MountConfig, redactor: Redactor) -> int:
    ready_fd = os.environ.pop(READY_FD_ENV, None)

    def ready() -> None:
        if ready_fd is not None:
            os.write(int(ready_fd), b"ready\n")
            os.close(int(ready_fd))

    tune_gc()
    # the daemon's cache, queue, log and runtime files are the user's alone (issue 18.4)
    os.umask(PRIVATE_UMASK)
    try:
        trio.run(serve, mount, redactor, ready)
    except errors.AuthenticationFailed as exc:
        log.error("%s", exc)
        return EXIT_AUTH
    except errors.DocfsError as exc:
        log.error("%s", exc)
        return 1
    return 0


def run_daemon(args: argparse.Namespace, mount: MountConfig) -> int:
    """Start a detached copy of this command and return once its mount is ready."""
    read_end, write_end = os.pipe()
    log_path = args.log_file or mount.cache_dir / mount.log_name
    # the cache directory and the log are the user's alone (issue 18.4); this process may be
    # a caller's (tests run the CLI in-process), so its umask is given back
    umask = os.umask(PRIVATE_UMASK)
    try:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        os.close(os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600))
    finally:
        os.umask(umask)
    argv = [a for a in args.argv if a not in ("--daemon", "-d")]
    env = dict(os.environ, **{READY_FD_ENV: str(write_end)})
    # the child writes to a file, not to our journal stream: it must stamp its own lines
    for key in ("JOURNAL_STREAM", "INVOCATION_ID"):
        env.pop(key, None)
    with open(log_path, "ab") as log_file:
        # where this attempt's lines start: a failure shows those, not the previous run's
        start = log_file.tell()
        child = subprocess.Popen(
            [sys.executable, "-m", "docfs", *argv],
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=log_file,
            env=env,
            pass_fds=(write_end,),
            start_new_session=True,
        )
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        answer = pipe.read()
    if answer.startswith(b"ready"):
        if not args.quiet:
            print(f"docfs: mounted at {mount.mountpoint} (pid {child.pid}, log {log_path})")
        return 0
    status = child.wait(timeout=30)
    with open(log_path, "rb") as log_file:
        log_file.seek(start)
        tail = log_file.read().decode(errors="replace").strip().splitlines()[-3:]
    print(f"docfs: mount failed; last log lines ({log_path}):", file=sys.stderr)
    for line in tail:
        print(f"  {line}", file=sys.stderr)
    return status if status in (EXIT_USAGE, EXIT_AUTH) else 1


def clear_stale_states() -> None:
    """Remove the state files and control sockets of daemons that died without cleaning up
    (SIGKILL, OOM): they would stay in the runtime directory for good (issue 18.8)."""
    for path in runtime_dir().glob("mount-*.json"):
        state = read_state(path)
        if state is None:
            with contextlib.suppress(OSError):
                # unreadable: maybe a daemon is writing it right now; only an old one is stale
                if time.time() - path.stat().st_mtime < 60:
                    continue
        elif isinstance(state.get("pid"), int) and alive(state["pid"]):
            continue
        log.debug("removing the state of a daemon that is gone: %s", path.name)
        path.unlink(missing_ok=True)
        path.with_suffix(".sock").unlink(missing_ok=True)


def cmd_mount(args: argparse.Namespace, redactor: Redactor) -> int:
    mount = mount_config(args)
    redactor.add(*mount.credentials.secrets())
    problem = fuse_problem()
    if problem is not None:
        print(f"docfs: cannot mount: {problem}", file=sys.stderr)
        return 1
    clear_stale_states()
    if args.daemon:
        return run_daemon(args, mount)
    return run_foreground(mount, redactor)


def cmd_detect(args: argparse.Namespace, redactor: Redactor) -> int:
    """Print which type of a family a URL serves, as the TYPE:URL to mount."""
    problems = []
    for family in families():
        try:
            kind, url = parse_remote(f"{family}:{args.url}")
        except UsageError as exc:
            problems.append(str(exc))
            continue
        print(f"{kind}:{url}")
        return 0
    raise UsageError("; ".join(problems) or "no repository type can be detected")
    return 0


def cmd_unmount(args: argparse.Namespace, redactor: Redactor) -> int:
    mountpoint = Path(args.mountpoint).resolve()
    state = read_state(state_file(mountpoint)) or {}
    result = subprocess.run(
        ["fusermount3", "-u", str(mountpoint)], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        print(f"docfs: cannot unmount {mountpoint}: {result.stderr.strip()}", file=sys.stderr)
        return 1
    pid = state.get("pid")
    if not (isinstance(pid, int) and alive(pid)):
        clear_stale_states()  # a killed daemon's mount: its state goes with it
    if args.no_wait or not isinstance(pid, int):
        return 0
    # the daemon uploads what its write-back queue holds before it exits: wait for that,
    # showing its progress (its control socket answers until the queue is empty)
    queue = Path(state["queue"]) if state.get("queue") else None
    socket_path = Path(state["control"]) if state.get("control") else None
    line = ProgressLine()
    next_poll = 0.0
    while alive(pid):
        if queue is not None and socket_path is not None and time.monotonic() >= next_poll:
            next_poll = time.monotonic() + 0.5
            try:
                report = control.call(socket_path, {"op": "status"}, timeout=5.0)["status"]
            except (control.ControlError, KeyError):
                report = None
            if report is not None and report["uploads"]["pending"]:
                line.show(report["uploads"])
        time.sleep(0.1)
    line.done()
    return 0
