"""Repository names ↔ POSIX names, and the names programs keep to themselves.

Repository names may hold ``/`` or NUL, be ``.``/``..``, exceed 255 bytes, or repeat within
one directory. ``sanitize`` maps one name deterministically to a legal one; ``assign_names``
gives every entry of a listing a unique local name, with a suffix derived from the entry id
for colliding siblings (``report [3f2a].pdf``), so the same listing always yields the same
names. ``restore`` is the inverse of the character substitutions for names the user types.
"""

from __future__ import annotations

import fnmatch
import hashlib
import re
from collections.abc import Callable, Iterable, Sequence
from typing import TypeVar

MAX_NAME_BYTES = 255

# visible look-alikes: unlikely in real names, and obvious to a reader
_SUBSTITUTES = {"/": "\u2215", "\0": "\u2400"}
_DOT_NAMES = {".": "\uff0e", "..": "\uff0e\uff0e"}
_RESTORE = {v: k for k, v in _SUBSTITUTES.items()}
#: a surrogate code point: never valid on its own in UTF-8
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")

#: names that programs create for themselves; they stay in the local staging area
DEFAULT_LOCAL_ONLY: tuple[str, ...] = (
    ".*.swp",
    ".*.swo",
    ".*.swx",
    ".*.swpx",
    "4913",  # vim probes whether it may create files with this name
    "*~",
    ".#*",
    "~$*",
    ".~lock.*#",
    ".directory",
    ".DS_Store",
    "._*",
    ".Trash",
    ".Trash-*",
    ".xdg-volume-info",
    "autorun.inf",
    ".hidden",
    "desktop.ini",
    "Thumbs.db",
    ".goutputstream-*",
    ".fuse_hidden*",
    # a metadata file's temporary copies (issue 21, docfs.vfs.metafiles): sed -i writes
    # "sedXXXXXX" beside the file, scripts ".metadata.json.*", rsync "..metadata.json.XXXXXX";
    # kept here until renamed (onto the metadata file, or to a final name: then uploaded)
    "sed??????",
    ".metadata.json.*",
    "..metadata.json.*",
)

# rsync writes ".name.XXXXXX" and renames it into place; other tools use similar patterns
_TEMP = (
    re.compile(r"^\..+\.[A-Za-z0-9]{6}$"),  # rsync
    re.compile(r"^.+\.tmp\d*$"),
    re.compile(r"^\.?.+\.part$"),
    re.compile(r"^\.~.+\.tmp$"),
)

E = TypeVar("E")


def _cut(name: str, limit: int) -> str:
    """Longest prefix of ``name`` whose UTF-8 form fits ``limit`` bytes."""
    raw = name.encode("utf-8")[:limit]
    return raw.decode("utf-8", errors="ignore")


def _split_ext(name: str) -> tuple[str, str]:
    stem, dot, ext = name.rpartition(".")
    if not dot or not stem or len(ext) > 16 or " " in ext:
        return name, ""
    return stem, "." + ext


def short_id(entry_id: str, length: int = 4) -> str:
    # surrogatepass: an id with a lone surrogate still hashes (and always to the same value)
    return hashlib.sha1(entry_id.encode("utf-8", "surrogatepass")).hexdigest()[:length]


def with_suffix(name: str, suffix: str) -> str:
    """``name`` with `` [suffix]`` before its extension, cut to fit 255 bytes."""
    stem, ext = _split_ext(name)
    tail = f" [{suffix}]{ext}"
    room = MAX_NAME_BYTES - len(tail.encode("utf-8"))
    if room <= 0:
        return _cut(f"[{suffix}]", MAX_NAME_BYTES)
    return _cut(stem, room) + tail


def sanitize(name: str, entry_id: str = "") -> str:
    """A legal POSIX name for a repository name (deterministic)."""
    if name in _DOT_NAMES:
        return _DOT_NAMES[name]
    if not name:
        name = "_"
    for bad, good in _SUBSTITUTES.items():
        name = name.replace(bad, good)
    if _LONE_SURROGATE.search(name):
        # JSON may carry a lone surrogate escape (Java and .NET servers send them), which no
        # UTF-8 name can hold: show U+FFFD instead, with a suffix from the original, so
        # "a\ud800" and "a\udcff" (and a real "a\ufffd") stay apart and keep their names
        original = name
        name = _LONE_SURROGATE.sub("\ufffd", name)
        name = with_suffix(name, short_id(entry_id or original, 6))
    if len(name.encode("utf-8")) > MAX_NAME_BYTES:
        # a cut name alone could collide with another long name: keep an id-derived suffix
        name = with_suffix(name, short_id(entry_id or name, 6))
    return name


def restore(local: str) -> str:
    """The repository name for a local name typed by a user (inverse substitutions)."""
    for dot, good in _DOT_NAMES.items():
        if local == good:
            return dot
    for good, bad in _RESTORE.items():
        local = local.replace(good, bad)
    return local


def assign_names(
    entries: Sequence[E],
    name_of: Iterable[tuple[str, str]],
    suffix_id: Callable[[str], str] = str,
) -> dict[str, E]:
    """Unique local names for one directory listing.

    ``name_of`` yields ``(remote name, entry id)`` for each of ``entries`` in the same order.
    Siblings whose sanitised names collide all get a suffix from their own id, so no entry's
    name depends on which of its namesakes the server listed first. ``suffix_id`` maps an id to
    the one its suffix is made from: a file that got a new id by being overwritten (DSpace 7)
    keeps its name.
    """
    pairs: list[tuple[str, str]] = []
    kept: list[E] = []
    seen: set[str] = set()
    for (name, eid), entry in zip(name_of, entries, strict=True):
        # one object listed twice (pages that shift while they are read) is still one entry:
        # giving it two names would show it twice
        if eid not in seen:
            seen.add(eid)
            pairs.append((name, eid))
            kept.append(entry)
    local = [sanitize(name, suffix_id(eid)) for name, eid in pairs]
    counts: dict[str, int] = {}
    for n in local:
        counts[n] = counts.get(n, 0) + 1
    result: dict[str, E] = {}
    for (_, eid), base, entry in zip(pairs, local, kept, strict=True):
        name = base
        if counts[base] > 1:
            length = 4
            sid = suffix_id(eid)
            name = with_suffix(base, short_id(sid, length))
            while name in result or name in counts:
                length += 2
                name = with_suffix(base, short_id(sid, length))
        result[name] = entry
    return result


class LocalNames:
    """Which names stay local (never uploaded) and which are temporary (uploaded on rename)."""

    def __init__(self, local_only: Iterable[str] = DEFAULT_LOCAL_ONLY) -> None:
        self.patterns = tuple(local_only)
        # the patterns as one expression: asked twice per file a cp -r writes, fnmatch over
        # each pattern in turn cost ~15 us a name (issue 24, B5); the same matches
        self._local_only = (
            re.compile("|".join(f"(?:{fnmatch.translate(p)})" for p in self.patterns))
            if self.patterns
            else None
        )

    def is_local_only(self, name: str) -> bool:
        return self._local_only is not None and self._local_only.match(name) is not None

    def is_temporary(self, name: str) -> bool:
        return any(p.match(name) for p in _TEMP)
