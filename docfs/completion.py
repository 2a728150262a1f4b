"""Shell completion for bash, zsh and fish, from the argparse parser itself (argcomplete).

``docfs completion bash|zsh|fish`` prints the shell's hook; at each Tab the shell runs docfs
with argcomplete's environment, and ``autocomplete`` answers from the same parser the command
line uses, so commands and options can never drift from what docfs accepts. Values come from
where they live: configured remote names (and ``TYPE:`` prefixes) from the configuration file,
mount points of ``unmount``/``status``/``sync`` from the running mounts' state files.

argcomplete rather than shtab: shtab writes static scripts for bash, zsh and tcsh only; fish
and values known only at run time (remote names, running mounts) need a completer that runs.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Iterable
from typing import Any

from docfs import config
from docfs.registry import REMOTE_TYPES, families

SHELLS = ("bash", "zsh", "fish")

Completer = Callable[..., Iterable[str]]


def remote_names(parsed_args: argparse.Namespace | None = None, **_: Any) -> list[str]:
    """Configured remote names, then ``TYPE:`` for an inline remote."""
    path = getattr(parsed_args, "config", None)
    try:
        names = sorted(config.load(path, explicit=path is not None).remotes)
    except (config.ConfigError, OSError):
        names = []  # a broken configuration must not break the shell
    return [*names, *(f"{t}:" for t in sorted(REMOTE_TYPES)), *(f"{f}:" for f in families())]


def configured_names(parsed_args: argparse.Namespace | None = None, **_: Any) -> list[str]:
    return [n for n in remote_names(parsed_args) if not n.endswith(":")]


def mount_points(**_: Any) -> list[str]:
    """The mount points of this user's running docfs mounts."""
    from docfs.commands.status import running_mounts

    return sorted(str(s["mountpoint"]) for s in running_mounts() if s.get("mountpoint"))


#: (command, argument dest) → its completer; other arguments complete as argparse knows
COMPLETERS: dict[tuple[str, str], Completer] = {
    ("mount", "remote"): remote_names,
    ("check", "name"): configured_names,
    ("unmount", "mountpoint"): mount_points,
    ("status", "mountpoint"): mount_points,
    ("sync", "mountpoint"): mount_points,
}


def attach(parser: argparse.ArgumentParser) -> None:
    """Give the arguments in ``COMPLETERS`` their completer, in every sub-command."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for command, sub in action.choices.items():
                for arg in sub._actions:
                    completer = COMPLETERS.get((command, arg.dest))
                    if completer is not None:
                        arg.completer = completer
                attach(sub)


def asked() -> bool:
    """The shell's hook is asking for completions (argcomplete's protocol)."""
    return "_ARGCOMPLETE" in os.environ


def autocomplete(parser: argparse.ArgumentParser) -> None:
    """Answer the shell and exit when it asks for completions; otherwise do nothing (and
    do not import argcomplete: an ordinary command pays nothing for completion)."""
    if not asked():
        return
    import argcomplete

    attach(parser)
    argcomplete.autocomplete(parser)


def shell_code(shell: str) -> str:
    """The hook ``docfs completion SHELL`` prints, for the shell's startup file."""
    from argcomplete.shell_integration import shellcode

    return shellcode(["docfs"], shell=shell)


def cmd_completion(args: argparse.Namespace, redactor: object) -> int:
    print(shell_code(args.shell), end="")
    return 0


def register(subparsers: Any, parents: list[argparse.ArgumentParser]) -> None:
    """Add ``docfs completion SHELL``."""
    p = subparsers.add_parser(
        "completion",
        parents=parents,
        help="print the shell completion hook (bash, zsh, fish)",
        description='Print the Tab-completion hook for SHELL. bash: eval "$(docfs completion '
        'bash)" in ~/.bashrc; zsh: eval "$(docfs completion zsh)" in ~/.zshrc; fish: docfs '
        "completion fish | source in ~/.config/fish/config.fish.",
    )
    p.add_argument("shell", choices=SHELLS)
    p.set_defaults(func=cmd_completion)
