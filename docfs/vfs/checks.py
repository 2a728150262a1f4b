"""Checks the write paths share: refusing an operation an entry does not allow, and
noticing an object that vanished from the server.

An operation an entry does not allow is refused here, before any request, with EPERM (EROFS
on a read-only mount) and one log line.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from docfs import errors
from docfs.backends.base import Op
from docfs.vfs.inodes import Node
from docfs.vfs.state import MountState


def refuse(state: MountState, node: Node, op: Op, what: str, name: str | None = None) -> None:
    """Raise unless ``op`` is allowed on ``node`` (or, given the ``name`` of the new entry,
    inside it). The message is the refusal's one log line (``fuse_ops`` logs it with the
    errno): it names the path refused — the new entry, not its parent — and the backend's
    hint of what to do instead."""
    if state.options.read_only:
        raise errors.ReadOnly(f"{what} {_refused_path(state, node, name)}: the mount is read-only")
    if node.local_only:
        return
    if not node.entry.allows(op):
        backend = state.backend
        hint = backend.refusal_hint(node.entry, op)
        raise errors.NotSupported(
            f"{what} {_refused_path(state, node, name)}: {backend.name} has no such "
            f"operation here{f'; {hint}' if hint else ''}"
        )


def _refused_path(state: MountState, node: Node, name: str | None) -> str:
    path = state.path(node)
    return path if name is None else f"{path.rstrip('/')}/{name}"


@contextlib.contextmanager
def vanishes(state: MountState, node: Node) -> Iterator[None]:
    """A 404 for ``node`` means it vanished from the server: its parent's listing, which
    still shows it, is stale. Re-list it on the next access, so ``ls`` agrees with ENOENT."""
    try:
        yield
    except errors.NotFound:
        state.invalidate(node.parent)
        raise
