"""``docfs emulate`` and ``docfs demo``: serving a repository emulator (and mounting it)."""

from __future__ import annotations

import argparse
import logging
import os
import shlex
import shutil
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import trio

from docfs import errors
from docfs.commands.common import UsageError
from docfs.daemon import (
    MountConfig,
    serve,
)
from docfs.options import default
from docfs.redact import Redactor
from docfs.registry import REMOTE_TYPES, remote_type
from docfs.vfs.filesystem import Options

if TYPE_CHECKING:
    from docfs.emulators.base import EmulatorServer
    from docfs.emulators.launch import Account

log = logging.getLogger("docfs")


def _start_emulator(
    kind: str,
    account: Account,
    *,
    demo: bool,
    latency_ms: float,
    port: int,
    server_version: str | None = None,
    settings: dict[str, str] | None = None,
    role: str = "admin",
) -> tuple[EmulatorServer, Any]:
    """Build and serve an emulator; returns the running server and the emulator."""
    from docfs.emulators.base import EmulatorServer, UnknownServerOption
    from docfs.emulators.launch import UnknownDemo, build

    try:
        emulator = build(
            kind,
            account,
            demo=demo,
            latency_ms=latency_ms,
            server_version=server_version,
            settings=settings,
            role=role,
        )
    except (UnknownDemo, UnknownServerOption) as exc:
        raise UsageError(str(exc)) from None
    server = EmulatorServer(emulator, port=port)
    server.start()
    return server, emulator


def emulator_profiles_help() -> str:
    """The releases, settings and roles each emulator knows, for ``docfs emulate --help``."""
    from docfs.registry import emulator_class

    try:
        return "\n".join(emulator_class(kind).describe_profiles() for kind in sorted(REMOTE_TYPES))
    except ImportError:  # the emulators' extras are not installed
        return ""


def cmd_emulate(args: argparse.Namespace, redactor: Redactor) -> int:
    from docfs.emulators.launch import Account

    account = Account(
        user=args.user,
        password=args.password or os.environ.get("DOCFS_PASSWORD"),
        key=args.api_key or os.environ.get("DOCFS_TOKEN"),
        rate_limit=args.rate_limit,
    )
    settings: dict[str, str] = {}
    for item in args.setting:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--setting {item!r}: expected KEY=VALUE")
        settings[key.strip()] = value.strip()
    server, emulator = _start_emulator(
        args.type,
        account,
        demo=args.demo,
        latency_ms=args.latency_ms,
        port=args.port,
        server_version=args.server_version,
        settings=settings,
        role=args.role,
    )
    url = f"{server.url}{remote_type(args.type).api_path}"
    profile = emulator.server_profile
    shown = ", ".join(f"{k}={v}" for k, v in sorted(profile.settings.items()))
    print(
        f"docfs: {args.type} emulator serving at {url} (Ctrl-C to stop)"
        + (f"; version {profile.version}" if profile.version else "")
        + (f"; {shown}" if shown else ""),
        flush=True,
    )
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0


def cmd_demo(args: argparse.Namespace, redactor: Redactor) -> int:
    from docfs.emulators.launch import Account, demo_credentials

    kind = args.type
    mountpoint = Path(args.mountpoint or default_demo_mountpoint())
    mountpoint.mkdir(parents=True, exist_ok=True)
    # the demo logs in as the demo repository's administrator so that writes work too
    account = Account(user="demo@example.org", password="demo-password")
    server, emulator = _start_emulator(kind, account, demo=True, latency_ms=args.latency_ms, port=0)
    url = f"{server.url}{remote_type(kind).api_path}"
    cache = Path(tempfile.mkdtemp(prefix="docfs-demo-cache-"))
    config = MountConfig(
        remote_type=kind,
        url=url,
        mountpoint=mountpoint.resolve(),
        credentials=demo_credentials(kind, emulator, account),
        cache_dir=cache,
        cache_size=256 << 20,
        options=Options(dir_cache_time=default("dir_cache_time")),
    )

    def ready() -> None:
        print(
            f"\ndocfs demo: the demo {remote_type(kind).description} repository ({url}) "
            f"is mounted at {mountpoint}\n"
            f"Try, in another terminal:\n"
            + "".join(f"  {hint}\n" for hint in demo_hints(mountpoint))
            + "Press Ctrl-C here to unmount and stop.\n",
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


def demo_hints(mountpoint: Path) -> list[str]:
    """The commands the demo suggests; each works on every repository type's demo (a test
    runs them). The copy names its file ``*.txt``: some repositories file a file by its
    extension, and refuse one without (like ``hostname``) in most folders."""
    where = shlex.quote(str(mountpoint))  # pasted into a shell: a space must not split it
    csv = f"\"$(find {where} -name '*.csv' | head -1)\""
    return [
        f"ls -l {where}",
        f"find {where} | head -30",
        f"getfattr -d -R {where} | head -30",
        f"cat {csv}",
        f'cp /etc/hostname "$(dirname {csv})/hostname.txt"',
    ]


def default_demo_mountpoint() -> Path:
    home = Path.home()
    if os.access(home, os.W_OK):
        return home / "docfs-demo"
    return Path(tempfile.gettempdir()) / "docfs-demo"
