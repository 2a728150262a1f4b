"""The ``docfs`` command: mount, unmount, demo, emulate.

Secrets never come from the command line (argv is visible to every user via ``ps``): they come
from ``DOCFS_USER`` / ``DOCFS_PASSWORD`` / ``DOCFS_TOKEN`` or a ``--credentials-file``. Every
expected failure ends as one clear line on stderr and a non-zero exit status, not a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import trio

from docfs import __version__, errors
from docfs.backends.base import Credentials
from docfs.daemon import MountConfig, default_cache_dir, serve, state_file
from docfs.redact import Redactor
from docfs.registry import REMOTE_TYPES, remote_type
from docfs.vfs.filesystem import Options

if TYPE_CHECKING:
    from docfs.emulators.base import EmulatorServer

log = logging.getLogger("docfs")

READY_FD_ENV = "DOCFS_READY_FD"


class UsageError(Exception):
    """A mistake in the command line or configuration; printed without a traceback."""


def parse_size(text: str) -> int:
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(i?b)?\s*", text, re.IGNORECASE)
    if not match:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (e.g. 512M, 10G)")
    number, unit = float(match.group(1)), match.group(2).lower()
    return int(number * 1024 ** " kmgt".index(unit or " "))


def setup_logging(level: str, redactor: Redactor, stream: object = None) -> None:
    handler = logging.StreamHandler(stream or sys.stderr)  # type: ignore[arg-type]
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # httpx logs every request at INFO and httpcore traces every header at DEBUG; ours are enough
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("httpcore").setLevel(logging.WARNING)
    redactor.install(root)


def read_credentials(path: Path | None) -> Credentials:
    """Credentials from ``path`` (``key = value`` lines) or the environment."""
    values = {
        "user": os.environ.get("DOCFS_USER"),
        "password": os.environ.get("DOCFS_PASSWORD"),
        "token": os.environ.get("DOCFS_TOKEN"),
    }
    if path is not None:
        try:
            text = path.read_text()
        except OSError as exc:
            raise UsageError(f"cannot read credentials file {path}: {exc.strerror}") from None
        for number, line in enumerate(text.splitlines(), 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            key, sep, value = line.partition("=")
            key = key.strip().lower()
            if not sep or key not in values:
                raise UsageError(
                    f"{path}:{number}: expected 'user = …', 'password = …' or 'token = …'"
                )
            values[key] = value.strip()
    return Credentials(values["user"], values["password"], values["token"])


def parse_remote(text: str) -> tuple[str, str]:
    kind, sep, url = text.partition(":")
    if not sep or not url.startswith(("http://", "https://")):
        raise UsageError(f"remote {text!r}: expected TYPE:URL, e.g. dspace6:https://host/rest")
    try:
        remote_type(kind)
    except KeyError as exc:
        raise UsageError(str(exc.args[0])) from None
    return kind, url


def mount_config(args: argparse.Namespace) -> MountConfig:
    kind, url = parse_remote(args.remote)
    mountpoint = Path(args.mountpoint).resolve()
    if not mountpoint.is_dir():
        raise UsageError(f"mount point {mountpoint} is not a directory")
    return MountConfig(
        remote_type=kind,
        url=url,
        mountpoint=mountpoint,
        credentials=read_credentials(args.credentials_file),
        cache_dir=args.cache_dir,
        cache_size=args.cache_size,
        options=Options(
            read_only=args.read_only,
            dir_cache_time=args.dir_cache_time,
            write_back=args.write_back,
            transfers=args.transfers,
        ),
        timeout=args.timeout,
    )


def run_foreground(config: MountConfig, redactor: Redactor) -> int:
    ready_fd = os.environ.pop(READY_FD_ENV, None)

    def ready() -> None:
        if ready_fd is not None:
            os.write(int(ready_fd), b"ready\n")
            os.close(int(ready_fd))

    try:
        trio.run(serve, config, redactor, ready)
    except errors.DocfsError as exc:
        log.error("%s", exc)
        return 1
    return 0


def run_daemon(args: argparse.Namespace, config: MountConfig) -> int:
    """Start a detached copy of this command and return once its mount is ready."""
    read_end, write_end = os.pipe()
    log_path = config.cache_dir / f"{config.namespace}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    argv = [a for a in sys.argv[1:] if a not in ("--daemon", "-d")]
    env = dict(os.environ, **{READY_FD_ENV: str(write_end)})
    with open(log_path, "ab") as log_file:
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
        print(f"docfs: mounted at {config.mountpoint} (pid {child.pid}, log {log_path})")
        return 0
    child.wait(timeout=30)
    tail = log_path.read_text(errors="replace").strip().splitlines()[-3:]
    print(f"docfs: mount failed; last log lines ({log_path}):", file=sys.stderr)
    for line in tail:
        print(f"  {line}", file=sys.stderr)
    return 1


def cmd_mount(args: argparse.Namespace, redactor: Redactor) -> int:
    config = mount_config(args)
    redactor.add(*config.credentials.secrets())
    if args.daemon:
        return run_daemon(args, config)
    return run_foreground(config, redactor)


def cmd_unmount(args: argparse.Namespace, redactor: Redactor) -> int:
    mountpoint = Path(args.mountpoint).resolve()
    state_path = state_file(mountpoint)
    try:
        state = json.loads(state_path.read_text())
    except (OSError, ValueError):
        state = {}
    result = subprocess.run(
        ["fusermount3", "-u", str(mountpoint)], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        print(f"docfs: cannot unmount {mountpoint}: {result.stderr.strip()}", file=sys.stderr)
        return 1
    pid = state.get("pid")
    if args.no_wait or not isinstance(pid, int):
        return 0
    # the daemon uploads what its write-back queue holds before it exits: wait for that
    queue = Path(state["queue"]) if state.get("queue") else None
    shown = -1
    while _alive(pid):
        left = len(list(queue.glob("*.json"))) if queue is not None and queue.is_dir() else 0
        if left and left != shown:
            print(f"docfs: waiting for {left} queued uploads…", file=sys.stderr, flush=True)
            shown = left
        time.sleep(0.2)
    return 0


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie (exited, not yet reaped by its parent) counts as gone
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0] != "Z"
    except (OSError, IndexError):
        return False


def seed_demo(kind: str, emulator: Any) -> None:
    """Fill ``emulator`` with its demo data set (``demo_<type>.seed_demo`` or ``seed_<type>``)."""
    for module, attr in (
        (f"docfs.emulators.demo_{kind}", "seed_demo"),
        ("docfs.emulators.demo_data", f"seed_{kind}"),
    ):
        try:
            seed = getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError):
            continue
        seed(emulator)
        return
    raise UsageError(f"no demo data for {kind}")


def _start_emulator(
    kind: str, *, demo: bool, latency_ms: float, port: int, user: str | None, password: str | None
) -> EmulatorServer:
    """Build and serve an emulator; returns the running EmulatorServer."""
    from docfs.emulators.base import EmulatorServer
    from docfs.registry import emulator_class

    emulator: Any = emulator_class(kind)(latency_ms=latency_ms)
    if demo:
        seed_demo(kind, emulator)
    if user and password:
        emulator.add_user(user, password, admin=True)
    server = EmulatorServer(emulator, port=port)
    server.start()
    return server


def cmd_emulate(args: argparse.Namespace, redactor: Redactor) -> int:
    password = args.password or os.environ.get("DOCFS_PASSWORD")
    server = _start_emulator(
        args.type,
        demo=args.demo,
        latency_ms=args.latency_ms,
        port=args.port,
        user=args.user,
        password=password,
    )
    url = f"{server.url}{remote_type(args.type).api_path}"
    print(f"docfs: {args.type} emulator serving at {url} (Ctrl-C to stop)", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0


def cmd_demo(args: argparse.Namespace, redactor: Redactor) -> int:
    kind = "dspace6"
    mountpoint = Path(args.mountpoint or default_demo_mountpoint())
    mountpoint.mkdir(parents=True, exist_ok=True)
    # the demo logs in as the demo repository's administrator so that writes work too
    user, password = "demo@example.org", "demo"
    server = _start_emulator(
        kind, demo=True, latency_ms=args.latency_ms, port=0, user=user, password=password
    )
    url = f"{server.url}{remote_type(kind).api_path}"
    cache = Path(tempfile.mkdtemp(prefix="docfs-demo-cache-"))
    config = MountConfig(
        remote_type=kind,
        url=url,
        mountpoint=mountpoint.resolve(),
        credentials=Credentials(user, password),
        cache_dir=cache,
        cache_size=256 << 20,
        options=Options(dir_cache_time=60),
    )

    def ready() -> None:
        print(
            f"\ndocfs demo: the demo DSpace 6 repository ({url}) is mounted at {mountpoint}\n"
            f"Try, in another terminal:\n"
            f"  ls -l {mountpoint}\n"
            f"  find {mountpoint} | head -30\n"
            f"  getfattr -d -R {mountpoint} | head -30\n"
            f"  cat \"$(find {mountpoint} -name '*.csv' | head -1)\"\n"
            f'  cp /etc/hostname "$(dirname "$(find {mountpoint} -name \'*.csv\' | head -1)")"/\n'
            f"Press Ctrl-C here to unmount and stop.\n",
            flush=True,
        )

    try:
        trio.run(serve, config, redactor, ready)
    except errors.DocfsError as exc:
        log.error("%s", exc)
        return 1
    finally:
        server.stop()
        shutil.rmtree(cache, ignore_errors=True)
    return 0


def default_demo_mountpoint() -> Path:
    home = Path.home()
    if os.access(home, os.W_OK):
        return home / "docfs-demo"
    return Path(tempfile.gettempdir()) / "docfs-demo"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="docfs", description="Mount document repositories as a filesystem."
    )
    parser.add_argument("--version", action="version", version=f"docfs {__version__}")
    parser.add_argument(
        "--log-level", default="info", choices=["debug", "info", "warning", "error"]
    )
    sub = parser.add_subparsers(dest="command", required=True)

    mount = sub.add_parser("mount", help="mount a repository")
    mount.add_argument("remote", help="TYPE:URL, e.g. dspace6:https://repo.example.org/rest")
    mount.add_argument("mountpoint")
    mount.add_argument("-d", "--daemon", action="store_true", help="detach once mounted")
    mount.add_argument("--read-only", action="store_true")
    mount.add_argument("--cache-dir", type=Path, default=default_cache_dir())
    mount.add_argument("--cache-size", type=parse_size, default=parse_size("10G"))
    mount.add_argument(
        "--dir-cache-time", type=float, default=60.0, help="seconds listings are kept"
    )
    mount.add_argument("--timeout", type=float, default=30.0, help="seconds per request")
    mount.add_argument(
        "--write-back",
        type=float,
        metavar="SECONDS",
        help="close() returns at once; a durable queue uploads after SECONDS",
    )
    mount.add_argument(
        "--transfers", type=int, default=4, help="parallel uploads in write-back mode"
    )
    mount.add_argument(
        "--credentials-file",
        type=Path,
        help="file with 'user = …', 'password = …' or 'token = …' lines "
        "(default: DOCFS_USER, DOCFS_PASSWORD, DOCFS_TOKEN)",
    )
    mount.add_argument(
        "--log-level",
        dest="log_level_sub",
        default=None,
        choices=["debug", "info", "warning", "error"],
    )
    mount.set_defaults(func=cmd_mount)

    unmount = sub.add_parser("unmount", help="unmount a docfs mount")
    unmount.add_argument("mountpoint")
    unmount.add_argument(
        "--no-wait", action="store_true", help="do not wait for queued uploads to finish"
    )
    unmount.set_defaults(func=cmd_unmount)

    demo = sub.add_parser("demo", help="serve the demo repository and mount it")
    demo.add_argument("mountpoint", nargs="?")
    demo.add_argument("--latency-ms", type=float, default=0.0)
    demo.set_defaults(func=cmd_demo)

    emulate = sub.add_parser("emulate", help="serve a repository emulator on 127.0.0.1")
    emulate.add_argument("type", choices=sorted(REMOTE_TYPES))
    emulate.add_argument("--port", type=int, default=8080)
    emulate.add_argument("--demo", action="store_true", help="seed the demo data")
    emulate.add_argument("--latency-ms", type=float, default=0.0)
    emulate.add_argument("--user", help="create an administrator with this login")
    emulate.add_argument(
        "--password", help="its password (or DOCFS_PASSWORD; this is a test server)"
    )
    emulate.set_defaults(func=cmd_emulate)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    redactor = Redactor()
    level = getattr(args, "log_level_sub", None) or args.log_level
    setup_logging(level, redactor)
    try:
        result: int = args.func(args, redactor)
        return result
    except UsageError as exc:
        print(f"docfs: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
