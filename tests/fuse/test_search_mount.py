"""Search and versions through a real mount (issue 20, items 2 and 3): ``.search``, ``.versions``.

Each test serves one emulator on 127.0.0.1 and mounts it with the docfs daemon. A search
through the mount is compared with the same query sent straight to the repository's own API
(the names it returns), its cost with the emulator's request log (one search request per page
of results), and every result is read back byte-identical to the server's content. The
hidden directories never show in ``ls`` or ``find``.
"""

from __future__ import annotations

import errno
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from docfs.emulators.base import EmulatorServer
from docfs.emulators.docspace import DocSpaceEmulator
from tests.fuse.conftest import Mount

DS_OWNER = ("owner@docspace.example", "docspace-password-1")


@pytest.fixture
def served() -> Iterator[list[EmulatorServer]]:
    servers: list[EmulatorServer] = []
    yield servers
    for server in servers:
        server.stop()


def serve(servers: list[EmulatorServer], emulator: Any) -> str:
    server = EmulatorServer(emulator)
    server.start()
    servers.append(server)
    return server.url


@pytest.fixture
def mounts() -> Iterator[list[Mount]]:
    made: list[Mount] = []
    yield made
    for m in made:
        m.stop()


def mount(made: list[Mount], kind: str, url: str, tmp_path: Path, *extra: str) -> Mount:
    m = Mount(url, tmp_path / "mnt", tmp_path / "cache", *extra)
    m.kind = kind
    made.append(m)
    return m


def mount_remote(made: list[Mount], kind: str, url: str, tmp_path: Path, token: str) -> Mount:
    """A named remote with the client's pacing off (the emulators here do not limit), so a
    test does not wait out the real servers' request rates; the token from DOCFS_TOKEN."""
    profile = ""
    if kind == "opus2":
        (tmp_path / "profile.json").write_text('{"rate_limit": 0}')
        profile = 'profile = "profile.json"\n'
    config = tmp_path / "docfs.toml"
    config.write_text(
        f'[remotes.r]\ntype = "{kind}"\nurl = "{url}"\ntoken = {{ env = "DOCFS_TOKEN" }}\n'
        f"requests_per_minute = 60000\n{profile}"
    )
    m = Mount("/", tmp_path / "mnt", tmp_path / "cache", "--config", str(config))
    m.kind = "r"  # "r:/": the named remote at its root
    made.append(m)
    return m.start(token=token)


def hidden_never_listed(root: Path) -> None:
    """``ls`` and ``find`` of the whole mount show no hidden directory."""
    assert not {".search", ".versions"} & set(os.listdir(root))
    walked = subprocess.run(
        ["find", str(root)], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    assert "/.search" not in walked and "/.versions" not in walked


# ---- DocSpace ------------------------------------------------------------------------------


def docspace_api(url: str, path: str, **params: Any) -> Any:
    """``GET path`` through the portal's own API, logged in as the owner (not the mount)."""
    with httpx.Client(base_url=url) as client:
        login = client.post(
            "/api/2.0/authentication",
            json=dict(zip(("userName", "password"), DS_OWNER, strict=True)),
        )
        token = login.json()["response"]["token"]
        answer = client.get(path, params=params, headers={"Authorization": token})
        answer.raise_for_status()
        return answer.json()["response"]


def test_docspace_search_and_versions(
    served: list[EmulatorServer], mounts: list[Mount], tmp_path: Path
) -> None:
    emu = DocSpaceEmulator(user=DS_OWNER[0], password=DS_OWNER[1])
    my = emu.my_documents_id(DS_OWNER[0])
    reports = emu.add_folder(my, "Reports")
    year = emu.add_folder(reports, "2024 alpha")
    content = {
        emu.add_file(reports, "alpha-report.txt", b"report " * 300): b"report " * 300,
        emu.add_file(year, "Alpha notes.md", b"# notes\n"): b"# notes\n",
        emu.add_file(my, "ALPHA.csv", b"a,b\n1,2\n"): b"a,b\n1,2\n",
    }
    emu.add_file(reports, "beta.txt", b"beta")
    doc = emu.add_file(my, "doc.txt", b"version one\n")
    url = serve(served, emu)
    m = mount(mounts, "docspace", url, tmp_path, "--search-limit", "3")
    m.start(credentials=DS_OWNER)
    root = m.path

    # the folder's own search, straight through the API: the names the mount must show
    direct = docspace_api(url, f"/api/2.0/files/{reports}", filterValue="alpha")
    expected = {e["title"] for e in direct["folders"] + direct["files"]}
    assert expected == {"alpha-report.txt", "2024 alpha", "Alpha notes.md"}
    emu.log.clear()
    found = root / "My documents" / "Reports" / ".search" / "alpha"
    assert set(os.listdir(found)) == expected
    searches = [r for r in emu.requests("GET", rf"^/api/2\.0/files/{reports}$")]
    assert len(searches) == 1 and "filterValue=alpha" in searches[0].query  # one page
    # the results are the files themselves, read byte-identical
    for file_id, data in content.items():
        title = emu.files[file_id].title
        if title in expected:
            assert (found / title).read_bytes() == data
    assert (found / "2024 alpha" / "Alpha notes.md").read_bytes() == b"# notes\n"
    # the whole portal has 4 matches: cut to the --search-limit of 3, and the log says so
    assert "more than" not in m.log_text()
    everywhere = set(os.listdir(root / ".search" / "alpha"))
    assert len(everywhere) == 3 and everywhere < expected | {"ALPHA.csv"}
    assert "/.search/alpha: more than 3 results, showing the first 3" in m.log_text()

    # three overwrites through the mount: versions 2, 3, 4; the earlier ones stay readable
    written = [b"version one\n"]
    for n in (2, 3, 4):
        data = f"version {n}\n".encode() * n
        (root / "My documents" / "doc.txt").write_bytes(data)
        written.append(data)
    assert emu.files[doc].current.number == 4
    versions = root / "My documents" / ".versions" / "doc.txt"
    names = sorted(os.listdir(versions))
    assert [re.sub(r"\..*", "", n) for n in names] == ["v1", "v2", "v3"]
    assert all(re.fullmatch(r"v\d\.\d{4}-\d\d-\d\d\.txt", n) for n in names), names
    for n, name in enumerate(names):
        assert (versions / name).read_bytes() == written[n]
    # snapshots: nothing can be written in or to them, without a request
    emu.log.clear()
    with pytest.raises(OSError) as refused:
        (versions / names[0]).write_bytes(b"x")
    assert refused.value.errno == errno.EROFS
    with pytest.raises(OSError) as refused:
        (versions / "new.txt").write_bytes(b"x")
    assert refused.value.errno == errno.EROFS
    assert [r for r in emu.log if r.method != "GET"] == []
    # restoring is an ordinary overwrite: version 5 with version 2's bytes
    shutil.copyfile(versions / names[1], root / "My documents" / "doc.txt")
    assert emu.files[doc].current.number == 5
    assert emu.file_content(doc) == written[1]
    hidden_never_listed(root)


# ---- DSpace 7 ------------------------------------------------------------------------------


def test_dspace7_search_matches_discovery(
    served: list[EmulatorServer], mounts: list[Mount], tmp_path: Path
) -> None:
    from docfs.emulators.dspace7 import DSpace7Emulator
    from tests.conftest import ADMIN

    emu = DSpace7Emulator(user=ADMIN[0], password=ADMIN[1])
    com = emu.add_community("Lab")
    col = emu.add_collection("Incoming", com)
    other = emu.add_collection("Archive", com)
    files: dict[str, bytes] = {}
    for n, (where, title, subject) in enumerate(
        [
            (col, "Quantum optics", "Physics"),
            (col, "Cell biology", "Biology"),
            (other, "Solid state", "physics"),
            (other, "Physics of music", "Acoustics"),
        ]
    ):
        item = emu.add_item(where, title, metadata={"dc.subject": [subject]})
        files[title] = os.urandom(1000 + n)
        emu.add_bitstream(item, "paper.pdf", files[title])
    # 130 hits: two pages of Discovery's 100
    for n in range(130):
        emu.add_item(other, f"Sample {n:03}", metadata={"dc.subject": ["chemistry"]})
    # an item with two versions: the second has new bytes; Discovery shows only the latest
    first = emu.add_item(col, "Versioned")
    emu.add_bitstream(first, "data.csv", b"a,b\n1,2\n")
    latest = emu.new_item_version(first, "fixed a value")
    emu.set_content(emu.bitstreams(latest)[0][0], b"a,b\n1,3\n")
    url = serve(served, emu)
    m = mount(mounts, "dspace7", url, tmp_path).start()
    root = m.path

    def discovery(**params: str) -> set[str]:
        answer = httpx.get(f"{url}/server/api/discover/search/objects", params=params).json()
        objects = answer["_embedded"]["searchResult"]["_embedded"]["objects"]
        return {o["_embedded"]["indexableObject"]["name"] for o in objects}

    # a field query: the repository's own answer is what the directory holds
    expected = discovery(query="dc.subject:physics")
    assert expected == {"Quantum optics", "Solid state"}
    emu.log.clear()
    found = root / ".search" / "dc.subject:physics"
    assert set(os.listdir(found)) == expected
    assert len(emu.requests("GET", r"/discover/search/objects$")) == 1  # one page
    for title in expected:
        assert (found / title / "paper.pdf").read_bytes() == files[title]
    emu.log.clear()
    assert len(os.listdir(root / ".search" / "dc.subject:chemistry")) == 130
    pages = emu.requests("GET", r"/discover/search/objects$")
    assert sorted(re.findall(r"(?:^|&)page=(\d+)", "&".join(r.query for r in pages))) == [
        "0",
        "1",
    ]
    # a bare word searches every field; a collection scopes the search
    assert set(os.listdir(root / ".search" / "physics")) == discovery(query="physics")
    scoped = root / "Lab" / "Archive" / ".search" / "physics"
    assert set(os.listdir(scoped)) == discovery(query="physics", scope=other)
    assert set(os.listdir(scoped)) == {"Solid state", "Physics of music"}
    # item versions: ITEM/.versions/ holds the earlier ones as read-only directories
    versioned = root / "Lab" / "Incoming" / "Versioned"
    assert os.listdir(root / "Lab" / "Incoming").count("Versioned") == 1
    assert (versioned / "data.csv").read_bytes() == b"a,b\n1,3\n"
    (old,) = os.listdir(versioned / ".versions")
    assert re.fullmatch(r"v1\.\d{4}-\d\d-\d\d", old), old
    assert (versioned / ".versions" / old / "data.csv").read_bytes() == b"a,b\n1,2\n"
    with pytest.raises(OSError) as refused:
        (versioned / ".versions" / old / "new.txt").write_bytes(b"x")
    assert refused.value.errno == errno.EROFS
    # a file has no versions in DSpace: ENOENT, and the log says why
    with pytest.raises(FileNotFoundError):
        os.listdir(versioned / ".versions" / "data.csv")
    assert "keeps versions of items" in m.log_text()
    hidden_never_listed(root)


# ---- DSpace 6 ------------------------------------------------------------------------------


def test_dspace6_search_by_metadata_field(
    served: list[EmulatorServer], mounts: list[Mount], tmp_path: Path
) -> None:
    from docfs.emulators.dspace6 import DSpace6Emulator
    from tests.conftest import ADMIN

    emu = DSpace6Emulator()
    emu.add_user(*ADMIN, admin=True)
    com = emu.add_community("Lab")
    col = emu.add_collection("Incoming", com)
    data = {}
    for title, subject in [("Quantum optics", "Physics"), ("Cell biology", "Biology")]:
        item = emu.add_item(col, title, metadata={"dc.subject": [subject]})
        data[title] = os.urandom(777)
        emu.add_bitstream(item, "paper.pdf", data[title])
    url = serve(served, emu)
    m = mount(mounts, "dspace6", f"{url}/rest", tmp_path).start()
    root = m.path
    direct = httpx.post(
        f"{url}/rest/items/find-by-metadata-field",
        json={"key": "dc.subject", "value": "Physics"},
        headers={"Accept": "application/json"},
    ).json()
    expected = {i["name"] for i in direct}
    assert expected == {"Quantum optics"}
    emu.log.clear()
    found = root / ".search" / "dc.subject:Physics"
    assert set(os.listdir(found)) == expected
    assert len(emu.requests("POST", r"/items/find-by-metadata-field$")) == 1
    assert (found / "Quantum optics" / "paper.pdf").read_bytes() == data["Quantum optics"]
    # DSpace 6 has no word search: EINVAL with the syntax in the log
    with pytest.raises(OSError) as refused:
        os.listdir(root / ".search" / "physics")
    assert refused.value.errno == errno.EINVAL
    assert "FIELD:value" in m.log_text()
    hidden_never_listed(root)


# ---- RSpace --------------------------------------------------------------------------------


def test_rspace_search_matches_documents_query(
    served: list[EmulatorServer], mounts: list[Mount], tmp_path: Path
) -> None:
    from docfs.emulators.rspace import DEFAULT_API_KEY, RSpaceEmulator

    emu = RSpaceEmulator()
    home = emu.home_id()
    lab = emu.add_folder(home, "Lab")
    emu.add_document(lab, "PCR protocol", fields=["<p>anneal at 55C</p>"], tags="dna")
    emu.add_document(home, "Western blot", fields=["<p>run a PCR check first</p>"])
    emu.add_document(home, "Shopping", fields=["<p>milk</p>"], tags="dna")
    url = serve(served, emu)
    m = mount_remote(mounts, "rspace", url, tmp_path, DEFAULT_API_KEY)
    root = m.path

    def documents(**params: str) -> set[str]:
        answer = httpx.get(
            f"{url}/api/v1/documents", params=params, headers={"apiKey": DEFAULT_API_KEY}
        ).json()
        return {d["name"] for d in answer["documents"]}

    expected = documents(query="pcr")
    assert expected == {"PCR protocol", "Western blot"}
    emu.log.clear()
    found = root / ".search" / "pcr"
    assert set(os.listdir(found)) == expected
    assert len(emu.requests("GET", r"/api/v1/documents$")) == 1  # one page
    # a result is the document itself: the same directory as in the tree
    tree_doc = root / "Lab" / "PCR protocol"
    assert sorted(os.listdir(found / "PCR protocol")) == sorted(os.listdir(tree_doc))
    for name in os.listdir(tree_doc):
        assert (found / "PCR protocol" / name).read_bytes() == (tree_doc / name).read_bytes()
    # TYPE:text is one advanced term; a folder scopes it with a records term
    tagged = {"advancedQuery": '{"operator":"and","terms":[{"query":"dna","queryType":"tag"}]}'}
    assert set(os.listdir(root / ".search" / "tag:dna")) == documents(**tagged)
    assert set(os.listdir(root / "Lab" / ".search" / "tag:dna")) == {"PCR protocol"}
    # the API lists no earlier versions: ENOENT, with the reason in the log
    with pytest.raises(FileNotFoundError):
        os.listdir(root / "Lab" / ".versions" / "PCR protocol")
    assert "lists no earlier versions" in m.log_text()
    hidden_never_listed(root)


# ---- Opus 2 --------------------------------------------------------------------------------


def test_opus2_search_is_local_over_the_project_listing(
    served: list[EmulatorServer], mounts: list[Mount], tmp_path: Path
) -> None:
    from docfs.emulators.opus2 import Opus2Emulator

    emu = Opus2Emulator(rate_limit=None)
    project = emu.add_project("Acme v Globex")
    emu.add_field(project, "Custodian")
    awards = emu.add_folder(project, "Awards")
    data = {"Closing memo.txt": b"memo " * 50, "Order 1.txt": b"order", "Notes.txt": b"n"}
    emu.add_document(project, "Closing memo.txt", data["Closing memo.txt"])
    emu.add_document(
        project,
        "Order 1.txt",
        data["Order 1.txt"],
        folder_id=awards,
        fields={"Custodian": "J. Smith"},
    )
    emu.add_document(project, "Notes.txt", data["Notes.txt"], folder_id=awards)
    url = serve(served, emu)
    m = mount_remote(mounts, "opus2", url, tmp_path, emu.default_token)
    root = m.path
    emu.log.clear()
    # no search API: names and field values are matched here, over one (tree) listing of the
    # project, which the mount keeps
    assert set(os.listdir(root / ".search" / "memo")) == {"Closing memo.txt"}
    assert {r.path.rsplit("/", 1)[-1] for r in emu.log} <= {"projects", "folders", "documents"}
    # the listing is the mount's cached one: further searches send nothing
    emu.log.clear()
    assert set(os.listdir(root / ".search" / "Custodian:smith")) == {"Order 1.txt"}
    assert emu.log == []
    assert set(os.listdir(root / "Acme v Globex" / "Awards" / ".search" / "o")) == {
        "Order 1.txt",
        "Notes.txt",
    }
    found = root / ".search" / "smith"
    assert (found / "Order 1.txt").read_bytes() == data["Order 1.txt"]
    hidden_never_listed(root)
