"""Local state of the write path: staged files, lost+found, and remembered attributes.

- ``Staging`` holds the local copy of every file open for writing (and of files that never
  leave this machine: editor swap files, desktop droppings, rsync temp files before their
  rename), under ``<cache>/staging/``.
- ``LostFound`` keeps the bytes of an upload that failed, with a JSON sidecar saying where they
  were going and why they did not get there, so written data is never silently dropped.
- ``AttrStore`` remembers the mtime and mode that ``cp -p``/``rsync -a`` set, per (entry id,
  version), in a small SQLite file: repositories have no place for them, and without them a
  second ``rsync -a`` would copy everything again.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import os
import shutil
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from docfs.vfs.spares import SpareFiles

log = logging.getLogger("docfs.staging")


@dataclass
class Staged:
    """A local file standing in for a remote one while it is written."""

    path: Path
    fd: int
    dirty: bool = False
    writers: int = 0
    #: the write-back queue holds a hard link to this file: copy it before changing it
    shared: bool = False

    @property
    def size(self) -> int:
        return os.fstat(self.fd).st_size


class Staging:
    def __init__(self, root: Path, spares: SpareFiles | None = None) -> None:
        self.dir = root / "staging"
        self.spares = spares
        # staged files of a previous run belonged to handles that no longer exist: what was
        # not uploaded then went to lost+found (or the write-back queue keeps its own copies)
        shutil.rmtree(self.dir, ignore_errors=True)
        self.dir.mkdir(parents=True)
        self._names = itertools.count(1)

    def new(self, source: Path | None = None) -> Staged:
        path = self.dir / f"{next(self._names)}"
        if source is not None:
            shutil.copyfile(source, path)
            # copyfile gives the umask's mode: a staged copy of a private file stays private
            os.chmod(path, 0o600)
            return Staged(path, os.open(path, os.O_RDWR))
        if self.spares is not None and self.spares.take(path):
            return Staged(path, os.open(path, os.O_RDWR))
        return Staged(path, os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600))

    def discard(self, staged: Staged) -> None:
        with contextlib.suppress(OSError):
            os.close(staged.fd)
        staged.path.unlink(missing_ok=True)


class LostFound:
    def __init__(self, root: Path) -> None:
        self.dir = root / "lost+found"

    def keep(self, staged: Staged, remote_path: str, error: str) -> Path:
        """Copy the staged bytes here with a sidecar; returns the data file's path."""
        self.dir.mkdir(parents=True, exist_ok=True)
        stamp = time.strftime("%Y%m%d-%H%M%S")
        base = os.path.basename(remote_path) or "unnamed"
        target = self.dir / f"{stamp}-{base}"
        n = 1
        while target.exists():
            n += 1
            target = self.dir / f"{stamp}-{n}-{base}"
        shutil.copyfile(staged.path, target)
        # the bytes may be a file its owner made 0600: never readable by others here (18.4)
        os.chmod(target, 0o600)
        sidecar = target.with_name(target.name + ".json")
        sidecar.write_text(
            json.dumps({"remote_path": remote_path, "time": time.time(), "error": error}, indent=2)
        )
        os.chmod(sidecar, 0o600)
        return target


class AttrStore:
    """SQLite on disk, a dict in memory: every listed entry asks ``get``, so it must not query.

    Mtimes are integer nanoseconds (``mtime_ns``): a float of seconds keeps only about seven
    digits after the point, so ``.129353603`` came back as ``.129353728`` and ``rsync
    --modify-window=-1`` or ``cp -p`` then ``stat`` saw another time. The ``mtime`` column of
    seconds is still written, for an older docfs reading the same cache directory."""

    def __init__(self, root: Path) -> None:
        self._db = sqlite3.connect(root / "attrs.sqlite", isolation_level=None)
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS attrs (id TEXT, version TEXT, mtime REAL, mode INTEGER,"
            " mtime_ns INTEGER, PRIMARY KEY (id, version))"
        )
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(attrs)")}
        if "mtime_ns" not in columns:
            # a table of an older docfs: its float seconds become the nanoseconds that docfs
            # showed for them (``int(mtime * 1e9)``), so no file's mtime changes on upgrade;
            # the digits the float lost stay lost, what is set from now on is kept exactly
            with self._db:
                self._db.execute("BEGIN")
                self._db.execute("ALTER TABLE attrs ADD COLUMN mtime_ns INTEGER")
                old = self._db.execute(
                    "SELECT id, version, mtime FROM attrs WHERE mtime IS NOT NULL"
                ).fetchall()
                self._db.executemany(
                    "UPDATE attrs SET mtime_ns = ? WHERE id = ? AND version = ?",
                    [(int(mtime * 1e9), id_, version) for id_, version, mtime in old],
                )
        self._rows: dict[tuple[str, str], tuple[int | None, int | None]] = {
            (row[0], row[1]): (row[2], row[3])
            for row in self._db.execute("SELECT id, version, mtime_ns, mode FROM attrs")
        }

    def get(self, entry_id: str, version: str) -> tuple[int | None, int | None]:
        """(mtime in nanoseconds, mode) remembered for this version, or Nones."""
        return self._rows.get((entry_id, version), (None, None))

    def put(self, entry_id: str, version: str, mtime_ns: int | None, mode: int | None) -> None:
        if mtime_ns is None and mode is None:
            if self._rows.pop((entry_id, version), None) is not None:
                self._db.execute(
                    "DELETE FROM attrs WHERE id = ? AND version = ?", (entry_id, version)
                )
            return
        self._rows[(entry_id, version)] = (mtime_ns, mode)
        seconds = None if mtime_ns is None else mtime_ns / 1e9
        self._db.execute(
            "INSERT OR REPLACE INTO attrs (id, version, mtime, mode, mtime_ns)"
            " VALUES (?, ?, ?, ?, ?)",
            (entry_id, version, seconds, mode, mtime_ns),
        )

    def close(self) -> None:
        self._db.close()
