"""A Simple Archive Format package written into an item directory becomes that item's metadata.

Shared by the DSpace backends (docs/protocols/dspace6.md, "Simple Archive Format"). The vfs
hands a package file (``dublin_core.xml``, ``metadata_<schema>.xml``, ``contents``) written
into an item to ``Backend.apply_package_file`` instead of uploading it as a bitstream:

- a metadata file sets every key it names to the values it gives, in one request where the
  API allows (the keys it does not name are left alone: a new item's title and date stay
  unless the file sets them);
- ``contents`` is remembered per item for the rest of the mount: a file it lists that is
  already in the item gets its description now, one written later gets it with its upload
  (``Packages.line``). Files the item holds that ``contents`` does not list are kept (docfs
  never drops written data; the importer would have ignored them): one log line names them.

cp and rsync write a directory's files in the source's directory order, so ``contents`` may
come before or after the files it names; both orders end in the same item.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from pathlib import Path

from docfs import errors, saf
from docfs.backends.base import Backend, Entry, Kind

log = logging.getLogger("docfs.backends.saf")

#: the bundle a file goes to when ``contents`` names none (the importer's default)
DEFAULT_BUNDLE = "ORIGINAL"

SetAll = Callable[[Entry, list[saf.Value]], Awaitable[Entry]]
Describe = Callable[[Entry, str], Awaitable[Entry]]
#: put a file where its ``contents`` line says (bundle, primary); None where the API cannot
Place = Callable[[Entry, saf.Line], Awaitable[Entry]]


class Packages:
    """The ``contents`` lines a backend has been given, per item id (one mount's life)."""

    def __init__(self) -> None:
        self._lines: dict[str, dict[str, saf.Line]] = {}

    def line(self, item_id: str, name: str) -> saf.Line | None:
        return self._lines.get(item_id, {}).get(name)

    async def apply(
        self,
        backend: Backend,
        item_id: str,
        item: Entry,
        name: str,
        src: Path,
        *,
        set_all: SetAll,
        describe: Describe,
        place: Place | None = None,
    ) -> Entry:
        """Apply package file ``name`` (bytes in ``src``) to ``item``; the item as it is now."""
        if name in saf.OTHER_FILES:
            log.info("%s: the package's %s file is not applied", item.name, name)
            return item
        data = src.read_bytes()
        try:
            if saf.is_metadata_file(name):
                values = saf.parse_metadata(data, name)
                if not values:
                    return item
                return await set_all(item, values)
            lines = saf.parse_contents(data.decode("utf-8"))
        except (saf.PackageError, UnicodeDecodeError) as exc:
            raise errors.InvalidArgument(str(exc)) from None
        self._lines[item_id] = {line.name: line for line in lines}
        await self._arrange(backend, item, lines, describe, place)
        return item

    async def _arrange(
        self,
        backend: Backend,
        item: Entry,
        lines: list[saf.Line],
        describe: Describe,
        place: Place | None,
    ) -> None:
        """Give the files already in the item what ``contents`` says about them."""
        present = {e.name: e async for e in backend.list_dir(item) if e.kind is Kind.FILE}
        for line in lines:
            self.note_unsupported(line, placed=place is not None)
            entry = present.get(line.name)
            if entry is None:
                continue  # written later: the backend's upload reads the line
            if line.description:
                now = entry.extra.get("description") or entry.meta.get("dc.description")
                if now != line.description:
                    entry = await describe(entry, line.description)
            if place is not None and (moves(line) or line.primary):
                await place(entry, line)
        listed = {line.name for line in lines}
        stray = sorted(n for n in present if n not in listed)
        if stray:
            log.info(
                "%s: kept %d file(s) its contents file does not list: %s",
                item.name,
                len(stray),
                ", ".join(stray[:5]),
            )

    @staticmethod
    def note_unsupported(line: saf.Line, *, placed: bool) -> None:
        """Say which fields of ``line`` this backend does not apply (``placed``: it applies
        bundles and primary)."""
        if not placed and moves(line):
            log.warning(
                "%s: bundle:%s not applied, the file goes to ORIGINAL", line.name, line.bundle
            )
        if not placed and line.primary:
            log.warning("%s: primary:true not applied", line.name)
        if line.permissions:
            log.warning("%s: permissions not applied", line.name)


def moves(line: saf.Line) -> bool:
    """The line puts its file in a bundle other than the default one."""
    return bool(line.bundle) and line.bundle != DEFAULT_BUNDLE
