"""``docfs verify`` without a mount: pairing names, and comparing two plain trees."""

from __future__ import annotations

import errno
import io
from pathlib import Path

import pytest

from docfs.commands import verify
from docfs.commands.verify import (
    EXIT_DIFFERENT,
    EXIT_SAME,
    EXIT_UNCHECKED,
    Verifier,
    _Progress,
    pair_names,
)
from docfs.hashing import file_digest
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


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_long_run_on_a_terminal_shows_a_progress_line_and_clears_it(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    for root in (a, b):
        root.mkdir()
        for i in range(3):
            (root / f"f{i}").write_bytes(b"x" * i)
    screen = _Terminal()
    progress = _Progress(screen)
    progress.started -= 5  # a run that has been going for a while
    Verifier(False, progress).run(a, b)
    text = screen.getvalue()
    assert text.startswith("\r\x1b[Kdocfs verify: listing, 3 names so far")
    assert text.endswith("\r\x1b[K")  # the line is gone before the report is printed
    quiet = io.StringIO()  # not a terminal: no progress line at all
    Verifier(False, _Progress(quiet)).run(a, b)
    assert quiet.getvalue() == ""


def test_a_file_that_cannot_be_read_is_reported_and_exits_3(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    for root in (a, b):
        root.mkdir()
        (root / "ok").write_bytes(b"1")
        (root / "bad").write_bytes(b"2")

    def digest(path: Path, algorithm: str = "md5") -> str:
        if path == b / "bad":
            raise OSError(errno.EIO, "Input/output error")
        return file_digest(path, algorithm)

    monkeypatch.setattr(verify, "file_digest", digest)
    report = run(a, b, download=True).report
    assert [(o.path, o.status, o.detail) for o in report.outcomes] == [
        ("bad", "error", "mount: Input/output error"),
        ("ok", "same", ""),
    ]
    assert report.exit_status == EXIT_UNCHECKED
