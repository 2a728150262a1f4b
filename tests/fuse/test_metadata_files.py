"""Metadata files (issue 21) through real mounts against the emulators.

``DIR/.metadata.json`` and ``DIR/.metadata/NAME.json`` answer a lookup with the object's
metadata as JSON; writing one (in place, ``sed -i``, a script's temporary file renamed onto
it, rsync) sends exactly the keys that changed in one metadata request, refuses read-only keys
(EPERM) and keys changed on the server meanwhile (EBUSY), and with ``--metadata-files`` they
are listed, so ``rsync -a`` out and back in costs nothing the second time.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from docfs.emulators.base import EmulatorServer, LoggedRequest
from docfs.emulators.opus2 import Opus2Emulator
from docfs.emulators.rspace import RSpaceEmulator
from tests.conformance.adapters import (
    DSpace6Adapter,
    DSpace7Adapter,
    Opus2Adapter,
    RSpaceAdapter,
    Seeded,
)
from tests.fuse.conftest import Mount

ADAPTERS = {"dspace6": DSpace6Adapter, "dspace7": DSpace7Adapter}


class Served:
    def __init__(self, kind: str, tmp: Path, *options: str) -> None:
        adapter = ADAPTERS[kind]()
        self.kind = kind
        self.emulator: Any = adapter.emulator()
        self.seeded: Seeded = adapter.seed(self.emulator)
        self.item = self.seeded.ids["item"]
        self.set_subject(["old"])
        self.server = EmulatorServer(self.emulator)
        self.server.start()
        self.mount = Mount(adapter.remote_url(self.server), tmp / "mnt", tmp / "cache", *options)
        self.mount.kind = kind
        self.mount.start()
        self.dir = self.mount.path.joinpath(*self.seeded.file_dir)

    def set_subject(self, values: list[str]) -> None:
        self.emulator.set_metadata(self.item, "dc.subject", values)

    def subject(self) -> list[str]:
        if self.kind == "dspace6":
            snap = self.emulator.get_object(self.item)
            return list(snap["metadata"].get("dc.subject", []))
        return list(self.emulator.metadata_of(self.item).get("dc.subject", []))

    def writes(self) -> list[LoggedRequest]:
        return [r for r in self.emulator.requests() if r.method != "GET"]

    def close(self) -> None:
        self.mount.stop()
        self.server.stop()


@pytest.fixture(params=["dspace6", "dspace7"])
def served(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Served]:
    s = Served(request.param, tmp_path)
    try:
        yield s
    finally:
        s.close()


def _getfattr(path: Path, name: str) -> str:
    return os.getxattr(path, name).decode()


def test_sed_and_a_renamed_temp_file_each_send_one_metadata_request(served: Served) -> None:
    meta = served.dir / ".metadata.json"
    # hidden from listings, answered by name
    assert ".metadata.json" not in os.listdir(served.dir)
    assert ".metadata" not in os.listdir(served.dir)
    shown = json.loads(meta.read_text())
    assert shown["dc.subject"] == ["old"] and shown["dc.title"] == ["Run 1"]
    assert json.loads((served.dir / ".metadata" / "hello.txt.json").read_text())

    served.emulator.clear_log()
    subprocess.run(["sed", "-i", 's/"old"/"from-sed"/', str(meta)], check=True)
    writes = served.writes()
    assert len(writes) == 1, writes
    assert served.subject() == ["from-sed"]
    assert _getfattr(served.dir, "user.dspace.dc.subject") == "from-sed"
    assert json.loads(meta.read_text())["dc.subject"] == ["from-sed"]

    served.emulator.clear_log()
    data = json.loads(meta.read_text())
    data["dc.subject"] = ["from-python", "second"]
    with tempfile.NamedTemporaryFile(
        "w", dir=served.dir, prefix=".metadata.json.", delete=False
    ) as tmp:
        json.dump(data, tmp)
    os.replace(tmp.name, meta)
    writes = served.writes()
    assert len(writes) == 1, writes
    assert served.subject() == ["from-python", "second"]
    assert _getfattr(served.dir, "user.dspace.dc.subject") == "from-python\nsecond"
    # read at once through the name the rename left: the new metadata
    assert json.loads(meta.read_text())["dc.subject"] == ["from-python", "second"]
    assert not any(n.startswith((".metadata.json.", "sed")) for n in os.listdir(served.dir))


def test_a_read_only_key_is_eperm_and_sends_nothing(served: Served) -> None:
    meta = served.dir / ".metadata.json"
    data = json.loads(meta.read_text())
    data["uuid"] = "00000000-0000-0000-0000-000000000000"
    data["dc.subject"] = ["never"]
    served.emulator.clear_log()
    with pytest.raises(OSError) as caught, open(meta, "w") as out:
        json.dump(data, out)
    assert caught.value.errno == errno.EPERM
    assert served.writes() == []
    assert served.subject() == ["old"]


def test_invalid_json_is_einval_at_close(served: Served) -> None:
    meta = served.dir / ".metadata.json"
    served.emulator.clear_log()
    with pytest.raises(OSError) as caught, open(meta, "w") as out:
        out.write('{"dc.subject": [1, 2]}')
    assert caught.value.errno == errno.EINVAL
    assert served.writes() == []


def test_a_key_changed_on_both_sides_is_ebusy(served: Served) -> None:
    meta = served.dir / ".metadata.json"
    data = json.loads(meta.read_text())  # read: the base of the comparison
    served.set_subject(["server-side"])
    data["dc.subject"] = ["mine"]
    served.emulator.clear_log()
    with pytest.raises(OSError) as caught, open(meta, "w") as out:
        json.dump(data, out)
    assert caught.value.errno == errno.EBUSY
    assert served.writes() == []
    assert served.subject() == ["server-side"]
    assert "changed on the server since the file was read" in served.mount.log_text()
    # a key only the server changed is kept: the writer's other change goes through
    data = json.loads(meta.read_text())
    served.set_subject(["server-again"])
    data["dc.title"] = ["Run 1 renamed"]
    with open(meta, "w") as out:
        json.dump(data, out)
    assert served.subject() == ["server-again"]


def test_rsync_out_and_back_in_with_metadata_files(tmp_path: Path) -> None:
    served = Served("dspace7", tmp_path, "--metadata-files")
    try:
        top = served.mount.path / "Lab"
        backup = tmp_path / "backup"
        subprocess.run(["rsync", "-a", f"{top}/", str(backup)], check=True)
        item = backup.joinpath(*served.seeded.file_dir[1:])
        assert json.loads((item / ".metadata.json").read_text())["dc.subject"] == ["old"]
        assert (item / ".metadata" / "hello.txt.json").is_file()
        assert (item / "hello.txt").is_file()

        served.emulator.clear_log()
        subprocess.run(["rsync", "-a", f"{backup}/", str(top)], check=True)
        assert served.emulator.requests() == []

        subprocess.run(["sed", "-i", 's/"old"/"edited"/', str(item / ".metadata.json")], check=True)
        served.emulator.clear_log()
        subprocess.run(["rsync", "-a", f"{backup}/", str(top)], check=True)
        assert len(served.writes()) == 1, served.writes()
        assert served.subject() == ["edited"]

        # the mtime rsync gave the edited file is kept with its new content: nothing to do
        served.emulator.clear_log()
        subprocess.run(["rsync", "-a", f"{backup}/", str(top)], check=True)
        assert served.emulator.requests() == []
    finally:
        served.close()


def test_rspace_document_tags_edited_in_its_metadata_file(tmp_path: Path) -> None:
    adapter = RSpaceAdapter()
    emulator = adapter.emulator()
    assert isinstance(emulator, RSpaceEmulator)
    seeded = adapter.seed(emulator)
    with EmulatorServer(emulator) as server:
        mount = Mount(adapter.remote_url(server), tmp_path / "mnt", tmp_path / "cache")
        mount.kind = "rspace"
        token = adapter.credentials().token
        mount.start(token=token)
        try:
            meta = mount.path.joinpath(*seeded.file_dir) / ".metadata.json"
            data = json.loads(meta.read_text())
            assert data.get("tags", []) == []
            data["tags"] = ["alpha", "beta"]
            emulator.clear_log()
            with open(meta, "w") as out:
                json.dump(data, out)
            writes = [r for r in emulator.requests() if r.method != "GET"]
            assert [(r.method, r.status) for r in writes] == [("PUT", 200)], writes
            assert json.loads(meta.read_text())["tags"] == ["alpha", "beta"]
            doc = emulator.find("Run 1", kind="DOCUMENT")[0]
            assert emulator.record(doc)["tags"] == "alpha,beta"
        finally:
            mount.stop()


def test_a_files_metadata_file_in_dot_metadata(served: Served) -> None:
    """``.metadata/hello.txt.json``, replaced by a temporary file written beside it: one
    bitstream patch on DSpace 7; on DSpace 6, whose bitstreams have no writable metadata,
    EPERM before any request (the temporary file stays)."""
    meta = served.dir / ".metadata" / "hello.txt.json"
    data = json.loads(meta.read_text())
    assert data["checksum.md5"]
    data["dc.description"] = ["a greeting"]
    with tempfile.NamedTemporaryFile(
        "w", dir=meta.parent, prefix=".hello.txt.json.", delete=False
    ) as tmp:
        json.dump(data, tmp)
    served.emulator.clear_log()
    if served.kind == "dspace6":
        with pytest.raises(OSError) as caught:
            os.replace(tmp.name, meta)
        assert caught.value.errno == errno.EPERM
        assert served.writes() == []
        assert Path(tmp.name).exists()
        return
    os.replace(tmp.name, meta)
    writes = served.writes()
    assert [(r.method, "bitstreams" in r.path) for r in writes] == [("PATCH", True)], writes
    assert json.loads(meta.read_text())["dc.description"] == ["a greeting"]
    assert _getfattr(served.dir / "hello.txt", "user.dspace.dc.description") == "a greeting"


def test_opus2_document_fields_edited_in_its_metadata_file(tmp_path: Path) -> None:
    """An Opus 2 document is a file: its fields are in ``.metadata/NAME.json``. One changed
    field is one field PUT; a number field given a word is EINVAL, the server's refusal."""
    adapter = Opus2Adapter()
    emulator = adapter.emulator()
    assert isinstance(emulator, Opus2Emulator)
    seeded = adapter.seed(emulator)
    emulator.add_field(seeded.ids["project"], "Author", "text")
    emulator.add_field(seeded.ids["project"], "Bates Number", "number")
    with EmulatorServer(emulator) as server:
        mount = Mount(adapter.remote_url(server), tmp_path / "mnt", tmp_path / "cache")
        mount.kind = "opus2"
        mount.start(token=adapter.credentials().token)
        try:
            meta = mount.path.joinpath(*seeded.file_dir) / ".metadata" / "hello.txt.json"
            data = json.loads(meta.read_text())
            data["Author"] = "R. Smith"
            emulator.clear_log()
            with open(meta, "w") as out:
                json.dump(data, out)
            writes = [r for r in emulator.requests() if r.method != "GET"]
            assert [(r.method, "/fields/" in r.path) for r in writes] == [("PUT", True)], writes
            assert json.loads(meta.read_text())["Author"] == "R. Smith"
            hello = mount.path.joinpath(*seeded.file_dir) / "hello.txt"
            assert os.getxattr(hello, "user.opus2.Author") == b"R. Smith"

            data = json.loads(meta.read_text())
            data["Bates Number"] = "not a number"
            emulator.clear_log()
            with pytest.raises(OSError) as caught, open(meta, "w") as out:
                json.dump(data, out)
            assert caught.value.errno == errno.EINVAL
            # the server refused the one field PUT (its message is in the log); nothing changed
            refused = [r.status for r in emulator.requests() if r.method != "GET"]
            assert refused == [400]
            assert "Bates Number" in mount.log_text()
            assert "Bates Number" not in json.loads(meta.read_text())
        finally:
            mount.stop()


@pytest.mark.parametrize("editor", ["vim", "ed"])
def test_an_editor_saves_a_metadata_file_with_one_patch(tmp_path: Path, editor: str) -> None:
    """vim (with its backup copy) and ed (in place) each send one metadata request."""
    if shutil.which(editor) is None:
        pytest.skip(f"{editor} is not installed here")
    served = Served("dspace7", tmp_path)
    try:
        meta = served.dir / ".metadata.json"
        served.emulator.clear_log()
        if editor == "vim":
            command = ["vim", "-u", "NONE", "-N", "-es", "-c", "set writebackup"]
            subprocess.run([*command, "-c", "%s/old/edited/", "-c", "wq", str(meta)], check=True)
        else:
            subprocess.run(
                ["ed", "-s", str(meta)], input=",s/old/edited/\nw\nq\n", text=True, check=True
            )
        assert [r.method for r in served.writes()] == ["PATCH"]
        assert served.subject() == ["edited"]
    finally:
        served.close()


def test_several_keys_and_a_removal_in_one_write(served: Served) -> None:
    """Two fields set and one removed: DSpace 7 one PATCH; DSpace 6 one PUT for the fields
    set, then the removal (DELETE of all metadata, PUT of the rest: its only way; a POST would
    leave the item's date, Discovery and the order of its values as they were)."""
    meta = served.dir / ".metadata.json"
    data = json.loads(meta.read_text())
    del data["dc.subject"]
    data["dc.subject.other"] = ["x", "y"]
    data["dc.relation.ispartof"] = ["Series"]
    served.emulator.clear_log()
    with open(meta, "w") as out:
        json.dump(data, out)
    sent = [r.method for r in served.writes()]
    assert sent == (["PATCH"] if served.kind == "dspace7" else ["PUT", "DELETE", "PUT"])
    after = json.loads(meta.read_text())
    assert "dc.subject" not in after
    assert after["dc.subject.other"] == ["x", "y"]
    assert after["dc.relation.ispartof"] == ["Series"]
    assert after["dc.title"] == ["Run 1"]
    assert served.subject() == []
