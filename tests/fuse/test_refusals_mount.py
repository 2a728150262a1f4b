"""Issue 23.10 on a real mount: rsync's trailing slash in a DSpace collection and item, as the
README's table says, and the one log line each refusal gives."""

from __future__ import annotations

import re
from pathlib import Path

from docfs.emulators.base import EmulatorServer
from docfs.emulators.dspace6 import DSpace6Emulator
from tests.fuse.conftest import MountFactory


def test_rsync_trailing_slash_in_collections_and_items(
    mount_factory: MountFactory, dspace6_server: EmulatorServer, tmp_path: Path
) -> None:
    emulator = dspace6_server.emulator
    assert isinstance(emulator, DSpace6Emulator)
    collection = emulator.add_collection("Incoming", emulator.add_community("Lab"))
    item = emulator.add_item(collection, "Paper")
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.txt").write_text("a")
    m = mount_factory().start()
    coll = m.path / "Lab" / "Incoming"
    # into an item: with the slash the files go in, without it src would be a directory there
    assert m.run("rsync", "-a", f"{src}/", f"{coll}/Paper/", check=False).returncode == 0
    assert [b["name"] for b in emulator.bitstreams_of(item)] == ["a.txt"]
    refused = m.run("rsync", "-a", str(src), f"{coll}/Paper/", check=False)
    assert refused.returncode != 0 and "Operation not permitted" in refused.stderr
    # into a collection: without the slash src becomes an item, with it the files are refused
    assert m.run("rsync", "-a", str(src), f"{coll}/", check=False).returncode == 0
    assert sorted(i["title"] for i in emulator.items_of(collection)) == ["Paper", "src"]
    refused = m.run("rsync", "-a", f"{src}/", f"{coll}/", check=False)
    assert refused.returncode != 0 and "Operation not permitted" in refused.stderr
    # one warning each (rsync's second try of the mkdir is the same line: debug level)
    lines = [ln for ln in m.log_text().splitlines() if " WARNING " in ln and "operation" in ln]
    assert len(lines) == 2, lines
    assert re.search(
        r"docfs\.fuse: mkdir /Lab/Incoming/Paper/src: dspace6 has no such operation here; a "
        r"DSpace 6 item holds files only, no directories: .* \(EPERM\)$",
        lines[0],
    ), lines[0]
    assert re.search(
        r"docfs\.fuse: create /Lab/Incoming/\.a\.txt\.\w+: dspace6 has no such operation "
        r"here; files go inside an item: mkdir ITEM first, .* \(EPERM\)$",
        lines[1],
    ), lines[1]
