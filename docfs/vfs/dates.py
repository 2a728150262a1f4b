"""Stable dates for files whose repository gives them none of their own (issue 25, item 4).

DSpace bitstreams have no date (DSpace 6 REST's ``BitstreamRest`` has no date field; DSpace 7's
bitstream representation neither), so their backends show the item's ``lastModified``
(``Entry.inherited_mtime``). One upload into the item then changed the date of every file in
it, and file managers remade every thumbnail. Here each (entry id, version) keeps the date it
had when docfs first saw it: the container's date at that moment (what the file showed before,
so nothing changes at an upgrade and a new file shows about when it arrived), or the time docfs
first saw it where there is no date at all. A new version (new checksum) is a new file: it gets
a date of its own, again from when it is first seen.

The dates live in ``<cache>/dates.sqlite`` (created 0600) and are read into a dict at start:
every listed file asks for its date, which must not cost a query. New rows are written in one
transaction per listing, without fsync: a row lost in a crash is only taken again, from the
container's date of that time.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from collections.abc import Iterable
from pathlib import Path

from docfs.backends.base import Entry


class FirstSeen:
    """(entry id, version) → the date shown for it, remembered across mounts."""

    def __init__(self, root: Path) -> None:
        path = root / "dates.sqlite"
        # created private before SQLite opens it (its journal takes the same mode)
        os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
        self._db = sqlite3.connect(path, isolation_level=None)
        self._db.execute("PRAGMA synchronous = OFF")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS seen (id TEXT, version TEXT, mtime REAL,"
            " PRIMARY KEY (id, version))"
        )
        self._rows: dict[tuple[str, str], float] = {
            (row[0], row[1]): row[2]
            for row in self._db.execute("SELECT id, version, mtime FROM seen")
        }

    @staticmethod
    def applies(entry: Entry) -> bool:
        return entry.inherited_mtime and not entry.is_dir

    def note(self, entries: Iterable[Entry]) -> None:
        """Remember the entries not seen before (one transaction for all of them)."""
        now = time.time()
        new: list[tuple[str, str, float]] = []
        for entry in entries:
            key = (entry.id, entry.version)
            if self.applies(entry) and key not in self._rows:
                when = entry.mtime if entry.mtime is not None else now
                self._rows[key] = when
                new.append((entry.id, entry.version, when))
        if not new:
            return
        try:
            with contextlib.closing(self._db.cursor()) as cursor:
                cursor.execute("BEGIN")
                cursor.executemany("INSERT OR IGNORE INTO seen VALUES (?, ?, ?)", new)
                cursor.execute("COMMIT")
        except sqlite3.Error:
            # a full or read-only disk: the dates hold for this mount, and are taken again
            with contextlib.suppress(sqlite3.Error):
                self._db.execute("ROLLBACK")

    def mtime(self, entry: Entry) -> float | None:
        """The date to show for ``entry`` (None: it has a date of its own)."""
        if not self.applies(entry):
            return None
        key = (entry.id, entry.version)
        if key not in self._rows:
            self.note((entry,))
        return self._rows[key]

    def close(self) -> None:
        self._db.close()
