"""``docfs import``'s plan (which documents each layout makes of a directory) and the text
field linking the files, without a server."""

from __future__ import annotations

from pathlib import Path

import pytest

from docfs import errors
from docfs.backends.rspace.importing import content, plan, unlinkable


def tree(root: Path, *files: str) -> Path:
    for rel in files:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(rel)
    return root


def shape(root: Path, layout: str, name: str | None = None) -> dict[str, list[str]]:
    return {d.name: [label for label, _ in d.files] for d in plan(root, layout, name).documents}


def test_each_layout_makes_its_documents(tmp_path: Path) -> None:
    root = tree(
        tmp_path / "run",
        "a.csv",
        "a.txt",
        ".secret",
        "day 1/x.csv",
        "day 1/deep/y.csv",
        "day 1/.hidden/z.csv",
        "empty/.keep",
    )
    # per file: the extension stays in the name (a.csv and a.txt are two documents)
    assert shape(root, "file") == {"a.csv": ["a.csv"], "a.txt": ["a.txt"]}
    assert plan(root, "file").skipped == [
        "day 1/: a directory (--layout subdir imports those)",
        "empty/: a directory (--layout subdir imports those)",
    ]
    # per subdirectory: the loose files make a document named after DIR
    assert shape(root, "subdir") == {
        "run": ["a.csv", "a.txt"],
        "day 1": ["x.csv", "deep/y.csv"],  # a directory's files before its subdirectories'
    }
    assert plan(root, "subdir").skipped == ["empty/: no files"]
    assert shape(root, "summary", "All") == {
        "All": ["a.csv", "a.txt", "day 1/x.csv", "day 1/deep/y.csv"]
    }


def test_refusals(tmp_path: Path) -> None:
    root = tree(tmp_path / "run", "a.csv")
    with pytest.raises(errors.InvalidArgument, match="not a directory"):
        plan(root / "a.csv", "file")
    with pytest.raises(errors.InvalidArgument, match="--name"):
        plan(root, "file", "All")
    assert (
        unlinkable("take.mp4") == "take.mp4: audio and video files cannot be linked into documents"
    )
    assert unlinkable('say "hi".txt') is not None
    assert unlinkable("plot.png") is None


def test_content_links_each_file_and_escapes_paths() -> None:
    assert content([("a.csv", 7)]) == "<p><fileId=7></p>"
    table = content([("a&b/x.csv", 7), ("y.csv", 8)])
    assert "<td>a&amp;b/x.csv</td><td><fileId=7></td>" in table
    assert table.count("<fileId=") == 2
