"""``docfs verify LOCAL MOUNTED``: is the mounted copy of a tree the same as the local one?

Like ``rclone check``: both trees are walked side by side; files are paired by name (the names
the mount shows for the repository's names, ``docfs.vfs.names``), then compared by size and,
where the repository gives a checksum, by checksum. The mount's checksum is read from the
``user.docfs.checksum`` extended attribute, which the mount fills from its listings: nothing
is downloaded. ``--download`` reads the mounted bytes (and so downloads them) where the
repository gives no checksum, and compares digests of both sides.

The report uses ``rclone check --combined``'s marks: ``=`` same, ``*`` different, ``+`` only
here (missing on the mount), ``-`` only on the mount (missing here), ``!`` could not be
compared; files that programs keep to themselves (``.DS_Store``, swap files…), which a mount
never uploads, are left out on both sides and counted. The exit status is 0 only when the
trees are the same (``EXIT_*`` below).
"""

from __future__ import annotations

import argparse
import errno
import hashlib
import json
import os
import re
import stat
import sys
import time
import unicodedata
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal, TextIO

from docfs.commands.common import EXIT_USAGE, UsageError
from docfs.commands.status import human_size, human_time, progress_bar
from docfs.hashing import file_digest
from docfs.redact import Redactor
from docfs.vfs.names import LocalNames, with_suffix
from docfs.vfs.xattrs import CHECKSUM_XATTR

#: exit statuses: the same; a difference (also a file missing on either side); no difference
#: found, but some files could not be compared (read errors); usage errors are ``EXIT_USAGE`` (2)
EXIT_SAME = 0
EXIT_DIFFERENT = 1
EXIT_UNCHECKED = 3

#: the digest ``--download`` compares where the repository gives none
DOWNLOAD_ALGORITHM = "md5"

Status = Literal["same", "different", "only_local", "only_mounted", "error", "skipped"]
STATUSES: tuple[Status, ...] = (
    "same",
    "different",
    "only_local",
    "only_mounted",
    "error",
    "skipped",
)
MARKS: dict[Status, str] = {
    "same": "=",
    "different": "*",
    "only_local": "+",
    "only_mounted": "-",
    "error": "!",
}

#: ``name [3f2a].ext``: a name the mount gave one of several files of the same name
_SUFFIXED = re.compile(r"^(?P<stem>.*) \[(?P<id>[0-9a-f]{4,})\](?P<ext>\.[^.]*)?$")
#: errors of ``getxattr`` that mean "no checksum here" (not a docfs mount, none given)
_NO_ATTRIBUTE = {errno.ENODATA, errno.ENOTSUP, errno.EOPNOTSUPP}


@dataclass
class Outcome:
    """What one path (relative, ``/``-separated) came to."""

    path: str
    status: Status
    #: how ``same``/``different`` was decided: ``md5``, ``sha256``… (the repository's
    #: checksum), ``download-md5`` (both sides read), ``size`` (no checksum: sizes only)
    how: str = ""
    detail: str = ""


@dataclass
class _Pair:
    """A local file and the mounted file of the same name, to compare."""

    path: str
    local: Path
    mounted: Path
    local_size: int
    mounted_size: int


@dataclass
class Report:
    outcomes: list[Outcome] = field(default_factory=list)

    def count(self, status: Status) -> int:
        return sum(1 for o in self.outcomes if o.status == status)

    @property
    def exit_status(self) -> int:
        if any(o.status in ("different", "only_local", "only_mounted") for o in self.outcomes):
            return EXIT_DIFFERENT
        return EXIT_UNCHECKED if self.count("error") else EXIT_SAME

    def summary(self) -> str:
        same = [o for o in self.outcomes if o.status == "same"]
        by_size = sum(1 for o in same if o.how == "size")
        parts = [
            f"{len(same)} same" + (f" ({by_size} by size only: no checksum)" if by_size else ""),
            f"{self.count('different')} different",
            f"{self.count('only_local')} missing on the mount",
            f"{self.count('only_mounted')} missing locally",
        ]
        if self.count("error"):
            parts.append(f"{self.count('error')} not compared (errors)")
        if self.count("skipped"):
            parts.append(f"{self.count('skipped')} skipped")
        return "docfs verify: " + ", ".join(parts)


class _Progress:
    """One line on a terminal, rewritten in place, shown once a run has taken a second."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.live = stream.isatty()
        self.started = time.monotonic()
        self._shown = 0.0
        self._drawn = False

    def show(self, text: str) -> None:
        now = time.monotonic()
        if not self.live or now - self.started < 1.0 or now - self._shown < 0.2:
            return
        self._shown = now
        self.stream.write(f"\r\x1b[K{text}")
        self.stream.flush()
        self._drawn = True

    def done(self) -> None:
        if self._drawn:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
            self._drawn = False


def _key(name: str) -> str:
    # a repository may store names in another Unicode form than the local disk (NFD on macOS)
    return unicodedata.normalize("NFC", name)


def pair_names(
    local: list[str], mounted: list[str]
) -> tuple[list[tuple[str, str]], list[str], list[str], dict[str, list[str]]]:
    """Pair a directory's local names with the names the mount shows.

    Returns the pairs, local names without a partner, mounted names without one, and local
    names the repository holds several files of (the mount shows them as ``name [id].ext``).
    """
    pairs: list[tuple[str, str]] = []
    left = set(mounted)
    unpaired: list[str] = []
    for name in local:
        if name in left:
            pairs.append((name, name))
            left.discard(name)
        else:
            unpaired.append(name)
    by_key: dict[str, list[str]] = {}
    for name in left:
        by_key.setdefault(_key(name), []).append(name)
    alone: list[str] = []
    for name in unpaired:
        found = by_key.get(_key(name), [])
        if len(found) == 1:
            pairs.append((name, found[0]))
            left.discard(found[0])
        else:
            alone.append(name)
    duplicates: dict[str, list[str]] = {}
    wanted = {_key(n): n for n in alone}
    for name in sorted(left):
        match = _SUFFIXED.match(name)
        if match is None:
            continue
        base = match["stem"] + (match["ext"] or "")
        owner = wanted.get(_key(base))
        if owner is not None and with_suffix(_key(base), match["id"]) == _key(name):
            duplicates.setdefault(owner, []).append(name)
    for owner, names in duplicates.items():
        alone.remove(owner)
        left.difference_update(names)
    return pairs, alone, sorted(left), duplicates


class Verifier:
    """Walks LOCAL and MOUNTED side by side and compares what it pairs."""

    def __init__(self, download: bool, progress: _Progress) -> None:
        self.download = download
        self.progress = progress
        self.local_only = LocalNames()
        self.report = Report()
        self.listed = 0

    def add(self, path: str, status: Status, how: str = "", detail: str = "") -> None:
        self.report.outcomes.append(Outcome(path, status, how, detail))

    # ---- the walk -----------------------------------------------------------------------

    def _entries(self, where: Path, rel: str) -> dict[str, os.DirEntry[str]] | None:
        try:
            with os.scandir(where) as found:
                return {e.name: e for e in found}
        except OSError as exc:
            self.add(rel or ".", "error", detail=f"cannot list {where}: {exc.strerror or exc}")
            return None

    def walk(self, local: Path, mounted: Path, rel: str = "") -> Iterator[_Pair]:
        here = self._entries(local, rel)
        there = self._entries(mounted, rel)
        if here is None or there is None:
            return
        self.listed += len(here)
        self.progress.show(f"docfs verify: listing, {self.listed} names so far")
        kept: dict[str, dict[str, os.DirEntry[str]]] = {"here": {}, "there": {}}
        for side, entries in (("here", here), ("there", there)):
            for name, entry in entries.items():
                if self.local_only.is_local_only(name):
                    # never uploaded by a mount: not part of either copy
                    self.add(_join(rel, name), "skipped", detail="kept local by design")
                else:
                    kept[side][name] = entry
        pairs, alone, extra, duplicates = pair_names(sorted(kept["here"]), sorted(kept["there"]))
        for name, names in sorted(duplicates.items()):
            self.add(
                _join(rel, name),
                "different",
                detail=f"the repository holds {len(names)} files of this name: " + ", ".join(names),
            )
        for name in alone:
            yield from self._one_side(kept["here"][name], _join(rel, name), "only_local")
        for name in extra:
            yield from self._one_side(kept["there"][name], _join(rel, name), "only_mounted")
        for name, shown in sorted(pairs):
            yield from self._pair(kept["here"][name], kept["there"][shown], _join(rel, name))

    def _one_side(self, entry: os.DirEntry[str], rel: str, status: Status) -> Iterator[_Pair]:
        """Every file at and below ``entry``, reported as present on one side only."""
        try:
            if entry.is_symlink():
                self.add(rel, "skipped", detail="symbolic link (not followed)")
            elif entry.is_dir(follow_symlinks=False):
                with os.scandir(entry.path) as inner:
                    children = sorted(inner, key=lambda e: e.name)
                for child in children:
                    if not self.local_only.is_local_only(child.name):
                        yield from self._one_side(child, _join(rel, child.name), status)
            else:
                self.add(rel, status)
        except OSError as exc:
            self.add(rel, "error", detail=exc.strerror or str(exc))

    def _pair(self, here: os.DirEntry[str], there: os.DirEntry[str], rel: str) -> Iterator[_Pair]:
        try:
            if here.is_symlink():
                self.add(rel, "skipped", detail="symbolic link (not followed)")
                return
            local_dir = here.is_dir(follow_symlinks=False)
            mounted_dir = there.is_dir(follow_symlinks=False)
            if local_dir and mounted_dir:
                yield from self.walk(Path(here.path), Path(there.path), rel)
                return
            if local_dir != mounted_dir:
                kinds = ("a directory", "a file") if local_dir else ("a file", "a directory")
                self.add(rel, "different", detail=f"{kinds[0]} here, {kinds[1]} on the mount")
                return
            mine, theirs = here.stat(follow_symlinks=False), there.stat(follow_symlinks=False)
            if not stat.S_ISREG(mine.st_mode):
                self.add(rel, "skipped", detail="not a regular file")
                return
        except OSError as exc:
            self.add(rel, "error", detail=exc.strerror or str(exc))
            return
        yield _Pair(rel, Path(here.path), Path(there.path), mine.st_size, theirs.st_size)

    # ---- comparing ------------------------------------------------------------------------

    def compare(self, pair: _Pair) -> tuple[Outcome, int]:
        """The outcome for one pair, and the bytes read to decide it."""
        if pair.local_size != pair.mounted_size:
            detail = f"size {pair.local_size} here, {pair.mounted_size} on the mount"
            return Outcome(pair.path, "different", "size", detail), 0
        try:
            given = _repository_checksum(pair.mounted)
        except OSError as exc:
            return Outcome(pair.path, "error", detail=f"mount: {exc.strerror or exc}"), 0
        if given is not None:
            algorithm, value = given
            try:
                mine = file_digest(pair.local, algorithm)
            except OSError as exc:
                return Outcome(pair.path, "error", detail=f"here: {exc.strerror or exc}"), 0
            if mine == value:
                return Outcome(pair.path, "same", algorithm), pair.local_size
            detail = f"{algorithm} {mine} here, {value} on the mount"
            return Outcome(pair.path, "different", algorithm, detail), pair.local_size
        if not self.download:
            return Outcome(pair.path, "same", "size"), 0
        how = f"download-{DOWNLOAD_ALGORITHM}"
        digests = []
        for side, path in (("here", pair.local), ("mount", pair.mounted)):
            try:
                digests.append(file_digest(path, DOWNLOAD_ALGORITHM))
            except OSError as exc:
                return Outcome(pair.path, "error", detail=f"{side}: {exc.strerror or exc}"), 0
        if digests[0] == digests[1]:
            return Outcome(pair.path, "same", how), 2 * pair.local_size
        detail = f"{DOWNLOAD_ALGORITHM} {digests[0]} here, {digests[1]} on the mount"
        return Outcome(pair.path, "different", how, detail), 2 * pair.local_size

    def run(self, local: Path, mounted: Path) -> Report:
        pairs = list(self.walk(local, mounted))
        started = time.monotonic()
        total = sum(p.local_size for p in pairs)
        hashed = 0
        for done, pair in enumerate(pairs):
            elapsed = time.monotonic() - started
            rate = hashed / elapsed if elapsed > 0 and hashed else None
            self.progress.show(
                f"docfs verify: {progress_bar(done, len(pairs))} {done}/{len(pairs)} files, "
                f"{human_size(hashed)} read"
                + (f", {human_size(rate)}/s, ETA {human_time(total / rate)}" if rate else "")
            )
            outcome, read = self.compare(pair)
            hashed += read
            self.report.outcomes.append(outcome)
        self.progress.done()
        self.report.outcomes.sort(key=lambda o: o.path)
        return self.report


def _join(rel: str, name: str) -> str:
    return f"{rel}/{name}" if rel else name


def _repository_checksum(path: Path) -> tuple[str, str] | None:
    """``(algorithm, hex)`` from the mount's ``user.docfs.checksum``, or None where there is
    none (or it names an algorithm this Python cannot compute)."""
    try:
        raw = os.getxattr(path, CHECKSUM_XATTR, follow_symlinks=False)
    except OSError as exc:
        if exc.errno in _NO_ATTRIBUTE:
            return None
        raise
    algorithm, _, value = raw.decode("utf-8", "replace").partition(":")
    algorithm = algorithm.strip().lower()
    if not value or algorithm not in hashlib.algorithms_available:
        return None
    return algorithm, value.strip().lower()


def _check_dir(path: str, what: str) -> Path:
    where = Path(path)
    if not where.is_dir():
        raise UsageError(f"{what} {path}: not a directory")
    return where


def cmd_verify(args: argparse.Namespace, redactor: Redactor) -> int:
    local = _check_dir(args.local, "LOCAL")
    mounted = _check_dir(args.mounted, "MOUNTED")
    verifier = Verifier(args.download, _Progress(sys.stderr))
    report = verifier.run(local, mounted)
    if args.json:
        print(
            json.dumps(
                {
                    "local": str(local),
                    "mounted": str(mounted),
                    "same": report.exit_status == EXIT_SAME,
                    "exit_status": report.exit_status,
                    "counts": {s: report.count(s) for s in STATUSES},
                    "files": [asdict(o) for o in report.outcomes],
                },
                indent=2,
            )
        )
        return report.exit_status
    for o in report.outcomes:
        if o.status == "skipped":
            continue
        how = f" [{o.how}]" if o.status == "same" else ""
        detail = f"  ({o.detail})" if o.detail else ""
        print(f"{MARKS[o.status]} {o.path}{how}{detail}")
    print(report.summary(), file=sys.stderr)
    return report.exit_status


EPILOG = f"""\
marks: = same, * different, + missing on the mount, - missing locally, ! not compared
exit status: {EXIT_SAME} the trees are the same; {EXIT_DIFFERENT} they differ (or a file is missing
  on either side); {EXIT_UNCHECKED} no difference found, but some files could not be compared;
  {EXIT_USAGE} usage error"""


def register(sub: Any, parents: list[argparse.ArgumentParser]) -> None:
    """``docfs verify``'s parser."""
    verify = sub.add_parser(
        "verify",
        parents=parents,
        help="compare a local tree with a mounted copy (names, sizes, checksums)",
        description="Compare the local tree LOCAL with MOUNTED, a directory in a docfs mount,\n"
        "like rclone check: names, sizes and, where the repository gives checksums,\n"
        "checksums (from the mount's user.docfs.checksum attribute: nothing is downloaded).",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    verify.add_argument("local", metavar="LOCAL")
    verify.add_argument("mounted", metavar="MOUNTED")
    verify.add_argument(
        "--download",
        action="store_true",
        help="where the repository gives no checksum, read the mounted file (download it) and "
        f"compare {DOWNLOAD_ALGORITHM} digests",
    )
    verify.add_argument("--json", action="store_true", help="machine-readable")
    verify.set_defaults(func=cmd_verify)
