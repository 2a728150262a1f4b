"""Finding things through a real mount (issue 20, items 2 and 3): ``.search`` and ``.versions``.

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
    m = mount(mounts, "docspace", url, tmp_path).start(credentials=DS_OWNER)
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
    for file_id, data in content.items():
        title = emu.files[file_id].title
        if (found / title).exists():
            assert (found / title).read_bytes() == data
    # the whole portal: My documents and Rooms, one request each for one page of results
    everywhere = set(os.listdir(root / ".search" / "alpha"))
    assert everywhere == expected | {"ALPHA.csv"}

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
