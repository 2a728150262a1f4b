"""Names: sanitising, collisions, local-only and temporary names."""

from __future__ import annotations

from docfs.vfs.names import (
    MAX_NAME_BYTES,
    LocalNames,
    assign_names,
    restore,
    sanitize,
    short_id,
)


def test_slash_and_nul_are_replaced_visibly_and_reversibly() -> None:
    local = sanitize("a/b\0c")
    assert "/" not in local and "\0" not in local
    assert restore(local) == "a/b\0c"


def test_dot_names_are_escaped() -> None:
    assert sanitize(".") not in (".", "..")
    assert sanitize("..") not in (".", "..")
    assert sanitize(".") != sanitize("..")
    assert restore(sanitize("..")) == ".."


def test_empty_name_gets_a_placeholder() -> None:
    assert sanitize("") == "_"


def test_long_names_are_cut_on_a_utf8_boundary_with_an_id_suffix() -> None:
    name = "é" * 300 + ".pdf"
    local = sanitize(name, "id-1")
    raw = local.encode("utf-8")
    assert len(raw) <= MAX_NAME_BYTES
    raw.decode("utf-8")  # still valid UTF-8
    assert local.endswith(".pdf")
    assert short_id("id-1", 6) in local
    assert sanitize(name, "id-2") != local


def test_colliding_siblings_get_stable_id_suffixes() -> None:
    entries = ["x", "y", "z"]
    pairs = [("report.pdf", "id-a"), ("report.pdf", "id-b"), ("other.pdf", "id-c")]
    names = assign_names(entries, pairs)
    assert set(names.values()) == {"x", "y", "z"}
    assert names["other.pdf"] == "z"
    colliding = sorted(n for n in names if n.startswith("report"))
    assert colliding == sorted(
        [f"report [{short_id('id-a')}].pdf", f"report [{short_id('id-b')}].pdf"]
    )
    # the same listing in another order yields the same names
    again = assign_names(list(reversed(entries)), list(reversed(pairs)))
    assert {k: v for k, v in again.items()} == names


def test_collision_created_by_sanitising_is_resolved() -> None:
    names = assign_names(["a", "b"], [("a/b", "1"), ("a\u2215b", "2")])
    assert len(names) == 2


def test_local_only_names() -> None:
    local = LocalNames()
    for name in (
        ".file.txt.swp",
        ".DS_Store",
        "._x",
        ".Trash-0",
        "Thumbs.db",
        "desktop.ini",
        ".~lock.report.odt#",
        "~$report.docx",
        ".hidden",
        "autorun.inf",
        ".xdg-volume-info",
        ".directory",
    ):
        assert local.is_local_only(name), name
    for name in ("report.pdf", "data.csv", "swp", ".bashrc", "Thumbs.db.txt"):
        assert not local.is_local_only(name), name


def test_local_only_patterns_are_configurable() -> None:
    local = LocalNames(["*.bak"])
    assert local.is_local_only("x.bak")
    assert not local.is_local_only(".DS_Store")


def test_local_only_patterns_match_as_fnmatch_does_each_alone() -> None:
    """The patterns are one expression now (issue 24, B5): no pattern may leak into another
    (an alternation without groups would let ``a|b*`` anchor wrongly), none match partway."""
    import fnmatch

    patterns = ["*.bak", "~$*", ".~lock.*#", "[!a]x", "q?z", "a.b"]
    local = LocalNames(patterns)
    names = ["x.bak", "x.bak2", "~$doc", "a~$doc", ".~lock.x#", ".~lock.x#y", "bx", "ax", "qaz"]
    names += ["qz", "a.b", "aXb", "a.bc", "", "\n.bak", "x.bak\n"]
    for name in names:
        assert local.is_local_only(name) == any(fnmatch.fnmatchcase(name, p) for p in patterns)
    assert not LocalNames([]).is_local_only("x")


def test_rsync_temp_names_are_temporary() -> None:
    local = LocalNames()
    assert local.is_temporary(".data.csv.Ab3xZ9")
    assert not local.is_temporary("data.csv")
    assert not local.is_temporary(".bashrc")


def test_lone_surrogates_become_valid_stable_unique_names() -> None:
    """Issue 18.5: JSON can carry a lone surrogate escape (``"\\ud800"``), which no UTF-8 name
    holds; one such name made the whole directory fail with UnicodeEncodeError."""
    names = ["\ud800", "\udcff", "a\ud800.txt", "a\udcff.txt", "a\ufffd.txt", "\ud800\udcff"]
    pairs = [(n, f"id-{i}") for i, n in enumerate(names)]
    result = assign_names([eid for _, eid in pairs], pairs)
    assert sorted(result.values()) == sorted(eid for _, eid in pairs)  # none lost, none twice
    for local in result:
        local.encode("utf-8")  # valid UTF-8, so the kernel can be given it
        assert local not in ("", ".", "..") and "/" not in local
        assert len(local.encode("utf-8")) <= MAX_NAME_BYTES
    assert assign_names([eid for _, eid in reversed(pairs)], list(reversed(pairs))) == result
    assert result["a\ufffd.txt"] == "id-4"  # a real U+FFFD keeps its name
    assert sanitize("a\ud800.txt", "id-2").endswith(".txt")
