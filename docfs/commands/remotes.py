"""``docfs remotes`` and ``docfs remotes check``: the configured remotes."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import trio

from docfs import config, errors
from docfs.commands.common import pick
from docfs.commands.source import backend_options, remote_kind
from docfs.daemon import (
    MountConfig,
    build_backend,
    connect_backend,
    resolve_root,
)
from docfs.options import default
from docfs.redact import Redactor


def cmd_remotes(args: argparse.Namespace, redactor: Redactor) -> int:
    cfg = config.load(args.config, explicit=args.config is not None)
    if args.action == "check":
        return check_remote(cfg, args.name, args.timeout, redactor)
    if not cfg.exists:
        print(f"docfs: no configuration file at {cfg.path}")
        return 0
    if not cfg.remotes:
        print(f"docfs: {cfg.path} configures no remotes")
        return 0
    width = max(len(n) for n in cfg.remotes)
    for remote in cfg.remotes.values():
        user = f" as {remote.user}" if remote.user else ""
        print(
            f"{remote.name:<{width}}  {remote.type:<8} {remote.url}{user} "
            f"({remote.secret_summary()})"
        )
    return 0


def check_remote(cfg: config.Config, source: str, timeout: float | None, redactor: Redactor) -> int:
    """Log in and list the root (or sub-path); print what was found or a precise error."""
    name, sub_path = config.split_source(source)
    remote = cfg.remote(name)
    credentials = config.credentials(remote)
    redactor.add(*credentials.secrets())
    kind, url = remote_kind(remote)
    mount = MountConfig(
        remote_type=kind,
        url=url,
        mountpoint=Path("/"),
        credentials=credentials,
        timeout=pick(timeout, remote.timeout, default("timeout")),
        sub_path=sub_path,
        backend_options=backend_options(remote),
    )
    who = f"as {credentials.user}" if credentials.user else "anonymously"
    try:
        names = trio.run(_list_root, mount, redactor)
    except errors.DocfsError as exc:
        print(f"{name}: FAILED ({remote.type} {remote.url} {who}): {exc}", file=sys.stderr)
        return 1
    print(f"{name}: ok: {remote.type} {remote.url}, logged in {who}")
    shown = ", ".join(names[:20]) + (f", … ({len(names) - 20} more)" if len(names) > 20 else "")
    print(f"{sub_path or '/'} holds {len(names)} entries{': ' + shown if names else ''}")
    return 0


async def _list_root(mount: MountConfig, redactor: Redactor) -> list[str]:
    backend = build_backend(mount, redactor)
    try:
        await connect_backend(backend, mount.remote_type)
        root = await resolve_root(backend, mount.sub_path)
        return sorted([e.name + ("/" if e.is_dir else "") async for e in backend.list_dir(root)])
    finally:
        await backend.aclose()
