"""What every ``docfs`` command shares: the usage error, exit statuses, argparse value types,
the state files of running mounts."""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from docfs import config
from docfs.options import Option, parse_cli

READY_FD_ENV = "DOCFS_READY_FD"


COMMANDS = config.COMMAND_WORDS


#: exit statuses a service manager can tell apart (systemd ``RestartPreventExitStatus=``): a
#: mistake in the command line or configuration, and a refused login, are not cured by restarting
EXIT_USAGE = 2


EXIT_AUTH = 77  # sysexits.h EX_NOPERM


class UsageError(Exception):
    """A mistake in the command line or configuration; printed without a traceback."""


def parse_size(text: str) -> int:
    try:
        return config.parse_size(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def argument_type(option: Option) -> Callable[[str], Any]:
    """An argparse type checking a value with the option's rule (``docfs.options``):
    ``--timeout -3`` is a usage error naming the option, not a traceback from deep inside."""

    def check(text: str) -> Any:
        try:
            return parse_cli(option, text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return check


def number(minimum: float, *, exclusive: bool = False) -> Callable[[str], float]:
    """An argparse type for a number of at least (or, ``exclusive``, more than) ``minimum``."""
    return argument_type(Option("", "number", "", minimum=minimum, exclusive=exclusive))


def whole(minimum: int, maximum: int | None = None) -> Callable[[str], int]:
    """An argparse type for a whole number in ``[minimum, maximum]``."""
    return argument_type(Option("", "whole", "", minimum=minimum, maximum=maximum))


def pick(*values: Any) -> Any:
    """The first value that is set: command line, then configuration, then built-in default."""
    return next((v for v in values if v is not None), None)


def read_state(path: Path) -> dict[str, Any] | None:
    try:
        state = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return state if isinstance(state, dict) else None


def alive(pid: int) -> bool:
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
