"""``docfs verify`` without a mount: pairing names, and comparing two plain trees."""

from __future__ import annotations

import io
from pathlib import Path

from docfs.commands.verify import (
    EXIT_DIFFERENT,
    EXIT_SAME,
    Verifier,
    _Progress,
    pair_names,
)
from docfs.vfs.names import assign_names


def test_names_pair_exactly_then_by_unicode_form() -> None:
    nfd = "cafe\u0301.txt"
    pairs, alone, extra, dups = pair_names(["a.txt", nfd, "b.txt"], ["a.txt", "café.txt", "c.txt"])
    assert sorted(pairs) == [("a.txt", "a.txt"), (nfd, "café.txt")]
    assert alone == ["b.txt"] and extra == ["c.txt"] and dups == {}


def test_namesakes_on_the_server_are_a_difference_not_two_missing_files() -> None:
    # the names the mount gives two files called "report.pdf" (and one called "x")
    shown = sorted(
        assign_names(["1", "2", "3"], [("report.pdf", "1"), ("report.pdf", "2"), ("x", "3")])
    )
    pairs, alone, extra, dups = pair_names(["report.pdf", "x"], shown)
    assert pairs == [("x", "x")] and alone == [] and extra == []
    assert list(dups) == ["report.pdf"] and len(dups["report.pdf"]) == 2


def run(local: Path, mounted: Path, download: bool = False) -> Verifier:
    verifier = Verifier(download, _Progress(io.StringIO()))
    verifier.run(local, mounted)
    return verifier


def test_plain_trees_compare_by_size_and_with_download_by_content(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    for root in (a, b):
        (root / "sub").mkdir(parents=True)
        (root / "sub" / "same.txt").write_bytes(b"hello")
        (root / ".DS_Store").write_bytes(root.name.encode())  # never uploaded: left out
    (a / "sub" / "flip.txt").write_bytes(b"abc")
    (b / "sub" / "flip.txt").write_bytes(b"abd")
    (a / "only-here").mkdir()
    (a / "only-here" / "f").write_bytes(b"1")
    (b / "only-there.txt").write_bytes(b"2")

    sizes = run(a, b).report
    got = {o.path: (o.status, o.how) for o in sizes.outcomes if o.status != "skipped"}
    assert got == {
        "only-here/f": ("only_local", ""),
        "only-there.txt": ("only_mounted", ""),
        "sub/flip.txt": ("same", "size"),
        "sub/same.txt": ("same", "size"),
    }
    assert sizes.count("skipped") == 2 and sizes.exit_status == EXIT_DIFFERENT

    (a / "only-here" / "f").unlink()
    (a / "only-here").rmdir()
    (b / "only-there.txt").unlink()
    assert run(a, b).report.exit_status == EXIT_SAME
    content = run(a, b, download=True).report
    assert content.exit_status == EXIT_DIFFERENT
    assert [(o.path, o.how) for o in content.outcomes if o.status == "different"] == [
        ("sub/flip.txt", "download-md5")
    ]
