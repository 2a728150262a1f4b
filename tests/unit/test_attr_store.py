"""Issue 23.13: remembered mtimes are integer nanoseconds; a cache of an older docfs (float
seconds in the ``attrs`` table) stays readable."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from docfs.vfs.staging import AttrStore

STAMP = 1_614_834_367_129_353_603


def test_nanoseconds_survive_a_reopen(tmp_path: Path) -> None:
    store = AttrStore(tmp_path)
    store.put("a", "v1", STAMP, 0o600)
    store.put("b", "v1", None, 0o644)
    store.close()
    again = AttrStore(tmp_path)
    assert again.get("a", "v1") == (STAMP, 0o600)
    assert again.get("b", "v1") == (None, 0o644)
    again.close()


def test_a_table_of_float_seconds_is_migrated(tmp_path: Path) -> None:
    db = sqlite3.connect(tmp_path / "attrs.sqlite")
    db.execute(
        "CREATE TABLE attrs (id TEXT, version TEXT, mtime REAL, mode INTEGER,"
        " PRIMARY KEY (id, version))"
    )
    db.execute("INSERT INTO attrs VALUES ('old', 'v', 1614834367.25, 420)")
    db.execute("INSERT INTO attrs VALUES ('mode-only', 'v', NULL, 384)")
    db.commit()
    db.close()
    store = AttrStore(tmp_path)
    # what the older docfs showed for it (int(mtime * 1e9) of the float): no change on upgrade
    shown = 1_614_834_367_249_999_872
    assert store.get("old", "v") == (shown, 420)
    assert store.get("mode-only", "v") == (None, 384)
    store.put("old", "v2", STAMP, None)
    store.close()
    again = AttrStore(tmp_path)
    assert again.get("old", "v") == (shown, 420)
    assert again.get("old", "v2") == (STAMP, None)
    again.close()
