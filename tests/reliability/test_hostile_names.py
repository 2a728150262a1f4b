"""Scenario 5, names: a fuzzer throws hostile repository names at ``names.py`` and the vfs.

Names hold ``/`` and NUL, are ``.`` or ``..``, have leading and trailing spaces, run to 300
bytes, come as NFC/NFD twins, case twins and plain duplicates, and clash with the names docfs
keeps local (``desktop.ini``) or treats as temporary (``x.tmp``). Every entry must be visible
exactly once under a unique, stable, valid name, and looking that name up must reach that
entry (its content proves it). Run through the vfs on every backend; the same hostile names
are also listed through a real mount in ``test_hostile_answers.py``.

The other way round, names typed by a user (the local forms of the same hostile names) are
written through the vfs: each is either stored on the server exactly (and listed back under
the name typed) or, where the server would refuse or change it, refused at once with EINVAL.
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from starlette.responses import Response

from docfs import errors
from docfs.emulators.base import EmulatorServer
from docfs.vfs.names import MAX_NAME_BYTES, LocalNames, assign_names, restore, sanitize
from tests.reliability.kernelless import BACKDOORS, Backdoor, Sandbox, Vfs

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
    # what wire formats must escape: multipart filenames, Content-Disposition, form encoding
    'say "hi".txt',
    "back\\slash.pdf",
    "line\nbreak.txt",
    "crlf\r\n.txt",
    "tab\t.txt",
    "pct%22.txt",
    "a:b?.txt",
    "x" * 255,
    "\u00e9" * 150 + ".txt",  # 300 bytes
    "\u00e9" * 150 + ".txt ",
]

#: one directory with every special name and some case twins: an explicit example of each
#: test through the vfs, so every backend sees all of them (hypothesis draws only some)
ALL_SPECIAL = [*SPECIAL, "REPORT.pdf", "Caf\u00e9.TXT", 'SAY "HI".TXT']

_text = st.text(
    alphabet=st.characters(blacklist_categories=["Cs"], max_codepoint=0x2FFFF), max_size=12
)
_long = st.builds(lambda pad, tail: "\u00e9" * pad + tail, st.integers(120, 160), _text)
_name = st.one_of(st.sampled_from(SPECIAL), _text, _long)


@st.composite
def hostile_names(draw: st.DrawFn, max_size: int = 10) -> list[str]:
    """A directory's worth of names, with twins of some of them."""
    names = draw(st.lists(_name, min_size=1, max_size=max_size))
    for name in list(names):
        twin = draw(st.sampled_from(["", "nfd", "nfc", "upper", "lower", "same"]))
        if twin == "nfd":
            names.append(unicodedata.normalize("NFD", name))
        elif twin == "nfc":
            names.append(unicodedata.normalize("NFC", name))
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


@example(names=ALL_SPECIAL)
@settings(SETTINGS, max_examples=25)
@given(names=hostile_names())
def test_every_entry_is_visible_once_and_reachable_by_its_name(
    backdoor_server: tuple[Backdoor, EmulatorServer], names: list[str]
) -> None:
    """Files the server holds under hostile names (put there behind the mount's back) are
    listed once each under valid, unique names that stay the same in the next listing, and
    looking a listed name up reaches that very file. Names docfs keeps local elsewhere
    (``desktop.ini``) are no exception: on the server they are files like any other.

    Then every file is overwritten through the vfs: it keeps its name on the server and in
    the listing, or, where the repository would rename it, it cannot be opened for writing."""
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
        remote: dict[str, str] = {}  # local name → the server's name, from the content
        for name, ino in listing.items():
            assert vfs.ino(*sandbox.path, name) == ino  # round trip: name → the same entry
            data = vfs.read(ino)
            assert data.startswith(b"file "), data
            remote[name] = names[int(data[5:])]
        assert sorted(remote.values()) == sorted(names)  # every entry once, content proves it
        vfs.expire()
        assert vfs.listdir(folder) == listing  # stable: same names, same inodes
        _overwrite_every_file(backdoor, sandbox, vfs, folder, listing, remote)
    finally:
        vfs.close()


def _overwrite_every_file(
    backdoor: Backdoor,
    sandbox: Sandbox,
    vfs: Vfs,
    folder: int,
    listing: dict[str, int],
    remote: dict[str, str],
) -> None:
    """New content for every file of ``listing``: the server's names do not change, nor do the
    local names and inodes — also where an overwrite makes a new id (DSpace 7) and the name
    holds a suffix made from the id: it stays the one made from the first id."""
    before = set(sandbox.files())
    written: dict[int, bytes] = {}
    for name, ino in listing.items():
        if backdoor.known_bug(remote[name], "overwrite") is not None:
            continue
        data = f"new {ino}".encode()
        if not backdoor.overwrites(remote[name]):
            with pytest.raises(errors.NotSupported):  # EPERM at open, nothing sent
                vfs.overwrite(ino, data)
            continue
        vfs.overwrite(ino, data)
        written[ino] = data
    assert set(sandbox.files()) == before  # no file was renamed on the server
    vfs.expire()
    again = vfs.listdir(folder)
    assert again == listing
    for ino, data in written.items():
        assert vfs.read(ino) == data


# ---- names written through the vfs on every backend -----------------------------------------


def _uploaded_names(names: list[str], backdoor: Backdoor) -> list[str]:
    """The legal local names a user could type for ``names``, once each, that go to the server.

    Names docfs keeps local or treats as temporary never reach it (``test_vfs_model.py``
    covers them), and names a known bug still changes on this backend are left out."""
    local = LocalNames()
    typed = dict.fromkeys(sanitize(n) for n in names)
    return [
        n
        for n in typed
        if not local.is_local_only(n)
        and not local.is_temporary(n)
        and backdoor.known_bug(restore(n), "create") is None
    ]


@example(names=ALL_SPECIAL)
@settings(SETTINGS, max_examples=15)
@given(names=hostile_names())
def test_a_written_name_is_kept_exactly_or_refused_at_once(
    backdoor_server: tuple[Backdoor, EmulatorServer], names: list[str]
) -> None:
    """Round trip of names the server accepts: created through the vfs, a file is stored on
    the server under exactly the name typed (``restore`` of it) and listed back under it. A
    name the server refuses, or would store changed (DocSpace's ``a:b`` → ``a_b``), is
    refused by ``create`` with EINVAL before anything is uploaded; no other name is."""
    backdoor, server = backdoor_server
    typed = _uploaded_names(names, backdoor)
    sandbox = backdoor.sandbox(server.emulator)
    vfs = Vfs(backdoor, server)
    try:
        folder = vfs.ino(*sandbox.path)
        kept: dict[str, tuple[int, bytes]] = {}
        for i, name in enumerate(typed):
            data = f"file {i}".encode()
            try:
                fh = vfs.create(folder, name)
            except errors.InvalidArgument:
                assert backdoor.refuses(restore(name)), f"{name!r} was refused"
                continue
            assert not backdoor.refuses(restore(name)), f"{name!r} was not refused at once"
            vfs.write_and_close(fh, data)
            kept[name] = (vfs.ino(*sandbox.path, name), data)
        assert sandbox.files() == {restore(n): data for n, (_, data) in kept.items()}
        vfs.expire()
        listing = vfs.listdir(folder)
        assert listing == {n: ino for n, (ino, _) in kept.items()}  # same names, same inodes
        for name, (ino, data) in kept.items():
            assert vfs.read(ino) == data, name
    finally:
        vfs.close()


def test_lone_surrogates_in_a_listing_do_not_hide_the_directory(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Issue 18.5: a server that escapes non-ASCII in its JSON can send a lone surrogate
    (``"\\ud800"``) in a name: a string of UTF-16 units cut in the middle of a pair, which
    Java and .NET strings can hold. The emulator is made to escape its JSON that way here.
    Every entry of that directory stays listed, under a valid name that reaches its own
    file."""
    import docfs.emulators.dspace6.rendering as dspace6_rendering

    def escaped(payload: object, status: int = 200) -> Response:
        body = json.dumps(payload, ensure_ascii=True).encode()
        return Response(body, status_code=status, headers={"content-type": "application/json"})

    monkeypatch.setattr(dspace6_rendering, "json_response", escaped)
    backdoor = BACKDOORS[0]
    assert backdoor.name == "dspace6"
    names = ["ok.txt", "\ud800", "a\udcff.txt", "a\ud800.txt", "a\ufffd.txt"]
    with EmulatorServer(backdoor.emulator()) as server:
        sandbox = backdoor.sandbox(server.emulator)
        for i, name in enumerate(names):
            sandbox.add_file(name, f"file {i}".encode())
        vfs = Vfs(backdoor, server)
        try:
            folder = vfs.ino(*sandbox.path)
            listing = vfs.listdir(folder)
            assert len(listing) == len(names) and all(is_valid(n) for n in listing)
            for name in listing:
                name.encode("utf-8")
            contents = {vfs.read(vfs.ino(*sandbox.path, n)) for n in listing}
            assert contents == {f"file {i}".encode() for i in range(len(names))}
            vfs.expire()
            assert vfs.listdir(folder) == listing
        finally:
            vfs.close()
