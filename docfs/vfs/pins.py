"""Pinned folders (issue 22): content kept on local disk for use without a network.

``docfs pin PATH`` lists everything below PATH and fetches every file into the content cache,
where it is *held* (``CacheIndex.hold``): never evicted, not counted against ``--cache-size``
but against its own budget, ``--pin-size`` (a pin that would exceed it is refused before
anything is fetched). The pinned paths are kept in ``<cache>/pins.json`` and the held files in
``<cache>/held.json``, so both survive a restart. Each time a directory below a pin is listed
again (its listing time ran out, or a change feed reported something), files that are new or
changed on the server (a new version is a new cache key) are fetched and held, and the older
copy is let go. ``docfs unpin`` turns the files back into ordinary cache content (LRU).

Pins are paths inside the mount (``/Community/Collection/Item``): what the user named, and
what survives a restart without asking the server.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import trio

from docfs import errors
from docfs.vfs.content import Handle
from docfs.vfs.inodes import ROOT_INODE, Node

if TYPE_CHECKING:
    from docfs.vfs.listings import Listings
    from docfs.vfs.state import MountState

log = logging.getLogger("docfs.vfs")

Json = dict[str, Any]
#: how often a pin in progress reports (files, bytes, ETA)
PROGRESS_EVERY = 0.5


def _under(path: str, top: str) -> bool:
    return top == "/" or path == top or path.startswith(top + "/")


def normal(path: str) -> str:
    """``/a/b`` for ``a/b/``, ``/a//b``: the form pins are kept in."""
    return "/" + "/".join(p for p in path.split("/") if p)


class PinList:
    """The pinned paths of a mount, kept in ``<cache>/pins.json``."""

    def __init__(self, cache_root: Path) -> None:
        self.file = cache_root / "pins.json"
        self.paths: list[str] = []
        try:
            loaded = json.loads(self.file.read_text())
        except (OSError, ValueError):
            loaded = []
        if isinstance(loaded, list):
            self.paths = sorted({normal(str(p)) for p in loaded})

    def covers(self, path: str) -> str | None:
        """The pin at or above ``path`` (None: not pinned)."""
        return next((p for p in self.paths if _under(path, p)), None)

    def add(self, path: str) -> None:
        # a pin below the new one is part of it now
        self.paths = sorted({p for p in self.paths if not _under(p, path)} | {path})
        self._save()

    def remove_below(self, path: str) -> list[str]:
        gone = [p for p in self.paths if _under(p, path)]
        self.paths = [p for p in self.paths if p not in gone]
        self._save()
        return gone

    def _save(self) -> None:
        tmp = self.file.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.paths))
        os.replace(tmp, self.file)


class Pinning:
    """Pins, unpins and keeps pinned folders current (the state is the ``MountState``)."""

    def __init__(self, state: MountState, listings: Listings) -> None:
        self.state = state
        self.listings = listings
        #: cache keys being fetched for a pin (a listing again meanwhile adds nothing)
        self._fetching: set[str] = set()
        #: the content handles of those fetches (their bytes so far show in the progress)
        self._handles: dict[str, Handle] = {}
        state.on_listed.append(self._listed)

    # ---- the control channel's requests ----------------------------------------------------

    async def resolve(self, path: str) -> Node:
        """The node of ``path`` inside the mount, listing what is needed on the way."""
        node = self.state.inodes.get(ROOT_INODE)
        for part in (p for p in path.split("/") if p):
            if not node.is_dir:
                raise errors.NotADirectory(self.state.path(node))
            ino = (await self.listings.ensure_listed(node)).get(part)
            if ino is None:
                raise errors.NotFound(f"{path}: no such file or directory in the mount")
            node = self.state.inodes.get(ino)
        return node

    async def files_below(self, top: Node) -> list[Node]:
        """Every remote file at or below ``top``, each directory listed (if stale)."""
        found: list[Node] = []
        todo = [top]
        while todo:
            node = todo.pop()
            if not node.is_dir:
                if node.staged is None and not node.local:
                    found.append(node)
                continue
            for ino in (await self.listings.ensure_listed(node)).values():
                child = self.state.inodes.find(ino)
                if child is not None and child.parent == node.ino:
                    todo.append(child)
        return found

    async def pin(self, path: str, progress: Callable[[Json], Awaitable[None]]) -> Json:
        """Pin ``path``: list it, check the budget, fetch and hold every file below it."""
        state, content = self.state, self.state.content
        path = normal(path)
        files = await self.files_below(await self.resolve(path))
        missing = [n for n in files if not content.is_held(n.entry)]
        needed = sum(n.entry.size or 0 for n in missing)
        held = content.held_bytes
        limit = state.options.pin_size
        if held + needed > limit:
            raise errors.QuotaExceeded(
                f"pinning {path} needs {needed} more bytes; {held} of the --pin-size limit "
                f"{limit} are pinned already"
            )
        state.pins.add(path)
        log.info("pin %s: %d files, %d bytes to fetch", path, len(missing), needed)
        done = {"files": len(files) - len(missing), "bytes": 0}
        total = {"files": len(files), "bytes": needed}
        failed: list[str] = []
        started = time.monotonic()

        def report() -> Json:
            elapsed = time.monotonic() - started
            # the bytes of files still arriving count as they come (one big file moves too)
            arrived = min(total["bytes"], done["bytes"] + self._arriving())
            rate = arrived / elapsed if elapsed > 0 and arrived else None
            left = total["bytes"] - arrived
            return {
                "files": done["files"],
                "files_total": total["files"],
                "bytes": arrived,
                "bytes_total": total["bytes"],
                "eta": left / rate if rate else (0.0 if not left else None),
            }

        async def one(node: Node, limiter: trio.CapacityLimiter) -> None:
            async with limiter:
                try:
                    await self.fetch(node, save=False)
                except errors.DocfsError as exc:
                    failed.append(f"{state.path(node)}: {exc}")
                    return
            done["files"] += 1
            done["bytes"] += node.entry.size or 0

        limiter = trio.CapacityLimiter(state.options.transfers)
        try:
            async with trio.open_nursery() as nursery:
                for node in missing:
                    nursery.start_soon(one, node, limiter)
                while nursery.child_tasks:
                    await progress(report())
                    with trio.move_on_after(PROGRESS_EVERY):
                        while nursery.child_tasks:
                            await trio.sleep(0.05)
        finally:
            content.save_held()  # once for the whole pin (a file of every held key)
        answer = {"ok": not failed, "path": path, **report(), "failed": failed}
        if failed:
            answer["error"] = (
                f"{len(failed)} files could not be fetched; they are fetched when their "
                "folder is listed again"
            )
        return answer

    def unpin(self, path: str) -> Json:
        path = normal(path)
        above = self.state.pins.covers(path)
        if above is not None and above != path:
            raise errors.InvalidArgument(f"{path} is inside the pin of {above}: unpin that")
        gone = self.state.pins.remove_below(path)
        if not gone:
            raise errors.NotFound(f"{path} is not pinned")
        content = self.state.content
        keys = [k for k, label in content.held.items() if self.state.pins.covers(label) is None]
        freed = sum(content.size_of(k) for k in keys)
        content.unhold(keys)
        log.info("unpin %s: %d files (%d bytes) are ordinary cache content again", path,
                 len(keys), freed)  # fmt: skip
        return {"ok": True, "unpinned": gone, "files": len(keys), "bytes": freed}

    def pinned(self) -> Json:
        """Every pin with the files and bytes held for it."""
        content = self.state.content
        pins = []
        for top in self.state.pins.paths:
            keys = [k for k, label in content.held.items() if _under(label, top)]
            pins.append(
                {"path": top, "files": len(keys), "bytes": sum(content.size_of(k) for k in keys)}
            )
        return {"ok": True, "pins": pins, **self.summary()}

    def summary(self) -> Json:
        """Pinned files and bytes of the whole mount (``docfs status``)."""
        content = self.state.content
        return {
            "folders": len(self.state.pins.paths),
            "files": len(content.held),
            "bytes": content.held_bytes,
            "limit": self.state.options.pin_size,
        }

    # ---- fetching --------------------------------------------------------------------------

    async def fetch(self, node: Node, *, save: bool = True) -> None:
        """Fetch the whole content of ``node`` (if not cached) and hold it for its pin."""
        state, content = self.state, self.state.content
        key = content.key(node.entry)
        self._fetching.add(key)
        handle = state.open_content(node)
        self._handles[key] = handle
        try:
            await content.complete(handle)
            content.hold(node.entry, state.path(node), save=save)
        finally:
            content.release(handle)
            self._fetching.discard(key)
            self._handles.pop(key, None)

    def _arriving(self) -> int:
        """Bytes received so far by the fetches still running."""
        total = 0
        for handle in self._handles.values():
            if handle.download is not None and not handle.download.done:
                total += handle.download.received
            elif handle.blocks is not None and not handle.blocks.done:
                total += handle.blocks.received
        return total

    def _listed(self, node: Node) -> None:
        """A directory was listed: inside a pin, fetch what is new or changed there."""
        state = self.state
        if state.pins.covers(state.path(node)) is None or state._nursery is None:
            return
        for ino in node.child_names().values():
            child = state.inodes.find(ino)
            if child is None or child.parent != node.ino:
                continue
            if child.is_dir:
                if child.children is None:
                    state.nursery.start_soon(self._list_new, child)
            elif (
                child.staged is None
                and not child.local
                and not state.content.is_held(child.entry)
                and state.content.key(child.entry) not in self._fetching
            ):
                # a new version replaces the copy held now: only the difference counts
                label, content = state.path(child), state.content
                replaced = sum(content.size_of(k) for k, v in content.held.items() if v == label)
                size = (child.entry.size or 0) - replaced
                if content.held_bytes + size > state.options.pin_size:
                    log.warning("pin: not fetching %r: --pin-size would be exceeded", label)
                    continue
                state.nursery.start_soon(self._keep_current, child)

    async def _list_new(self, node: Node) -> None:
        """A new directory inside a pin: listing it fetches its files (``_listed``)."""
        try:
            await self.listings.ensure_listed(node)
        except errors.DocfsError as exc:
            log.warning("pin: cannot list %r: %s", self.state.path(node), exc)

    async def _keep_current(self, node: Node) -> None:
        try:
            await self.fetch(node)
        except errors.DocfsError as exc:
            log.warning("pin: cannot fetch %r: %s", self.state.path(node), exc)
        else:
            log.info("pin: fetched %r (new or changed on the server)", self.state.path(node))
