"""``docfs import`` through a real RSpace mount: the layouts of rspace-client's tree importer,
into a Workspace folder and into a notebook, and a second run that makes no duplicates.

One mount serves every case (a mount costs seconds); the emulator is the judge: the documents,
their parents, the Gallery files their text fields link, and those files' bytes.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from docfs import errors
from docfs.backends.rspace import importing
from docfs.emulators.rspace import RSpaceEmulator
from docfs.redact import Redactor
from tests.fuse.test_rspace_mount import NOTEBOOK, Lab, running_lab

LINKED = re.compile(r'data-rsfileid="(\d+)"')


@pytest.fixture
def lab(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Lab]:
    # a private runtime directory: the daemon's state file, read to find the mount
    monkeypatch.setenv("DOCFS_RUNTIME_DIR", str(tmp_path / "run"))
    with running_lab(tmp_path, RSpaceEmulator()) as mounted:
        yield mounted


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """``docfs import …`` as the command line parses and runs it."""
    parser = argparse.ArgumentParser(prog="docfs")
    importing.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["import", *argv])
    code = args.func(args, Redactor())
    out, err = capsys.readouterr()
    return code, out, err


def documents(emu: RSpaceEmulator, parent: int) -> dict[str, dict[str, bytes]]:
    """The documents in ``parent``: name → {linked Gallery file's name: its bytes}."""
    found: dict[str, dict[str, bytes]] = {}
    for child in emu.children(parent):
        if child["kind"] != "DOCUMENT":
            continue
        html = "".join(emu.fields(child["id"]).values())
        linked = [int(i) for i in LINKED.findall(html)]
        found[child["name"]] = {emu.record(i)["name"]: emu.file_data(i) for i in linked}
    return found


def write(root: Path, files: dict[str, bytes]) -> None:
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)


def test_import_per_file_into_a_folder_and_per_subdir_into_a_notebook_twice(
    lab: Lab, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    emu, m = lab.emu, lab.mount
    runs = tmp_path / "runs"
    three = {
        "plate-1.csv": b"well,od600\nA1,0.113\n",
        "plate-2.csv": b"well,od600\nA1,0.108\n" * 300,
        "notes.txt": "Lesegerät 10 min vorgewärmt\n".encode(),
        ".hidden": b"not imported",
    }
    write(runs, three)
    folder = m.path / "Imports"
    m.run("mkdir", str(folder))

    code, out, err = run(capsys, str(runs), str(folder))
    assert code == 0, err
    assert out.count("uploaded ") == 3 and out.count("created ") == 3, out
    assert "3 created, 0 existed already, 0 failed" in out
    imported = documents(emu, lab.id_of("Imports", "FOLDER"))
    # one document per file, named after it, linking exactly that file, byte-identical
    assert imported == {n: {n: d} for n, d in three.items() if n != ".hidden"}
    assert sorted(p.name for p in folder.iterdir()) == ["notes.txt", "plate-1.csv", "plate-2.csv"]

    # per subdirectory into a notebook: each subdirectory one entry linking all its files
    samples = tmp_path / "samples"
    subdirs = {
        "day 1/a.csv": b"1,2\n",
        "day 1/b.txt": b"first day\n",
        "day 2/c.csv": b"3,4\n" * 1000,
    }
    write(samples, subdirs)
    notebook = m.path.joinpath(*NOTEBOOK)
    code, out, err = run(capsys, "--layout", "subdir", str(samples), str(notebook))
    assert code == 0, err
    assert out.count("uploaded ") == 3 and out.count("created ") == 2, out
    entries = documents(emu, lab.id_of(NOTEBOOK[-1], "NOTEBOOK"))
    assert entries["day 1"] == {"a.csv": b"1,2\n", "b.txt": b"first day\n"}
    assert entries["day 2"] == {"c.csv": b"3,4\n" * 1000}

    # again, both: nothing new on the server, each document reported as there already
    before = len(lab.writes())
    code, out, err = run(capsys, str(runs), str(folder))
    assert (code, out.count("skipped ")) == (0, 3), (out, err)
    code, out, err = run(capsys, "--layout", "subdir", str(samples), str(notebook))
    assert (code, out.count("skipped ")) == (0, 2), (out, err)
    assert "0 created, 2 existed already, 0 failed" in out
    assert lab.writes()[before:] == []
    assert len(emu.find("day 1", kind="DOCUMENT")) == 1

    # an interrupted import is finished by a second run: a new file only is added
    (runs / "plate-3.csv").write_bytes(b"well,od600\nA1,0.5\n")
    code, out, _ = run(capsys, str(runs), str(folder))
    assert code == 0 and "1 created, 3 existed already" in out
    assert documents(emu, lab.id_of("Imports", "FOLDER"))["plate-3.csv"] == {
        "plate-3.csv": b"well,od600\nA1,0.5\n"
    }


def test_import_summary_and_its_refusals(
    lab: Lab, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    emu, m = lab.emu, lab.mount
    data = tmp_path / "study"
    write(data, {"raw/a.csv": b"a\n", "b.txt": b"b\n", "clip.mp3": b"ID3 not linkable"})
    folder = m.path / "Summaries"
    m.run("mkdir", str(folder))
    before = len(lab.writes())
    code, out, err = run(capsys, "--layout", "summary", str(data), str(folder))
    # audio cannot be linked into a document: one clear line, exit 1, nothing uploaded
    assert code == 1 and "0 created" in out
    assert err.strip().splitlines() == [
        "docfs: import 'study': clip.mp3: audio and video files cannot be linked into documents"
    ]
    assert lab.writes()[before:] == []
    assert documents(emu, lab.id_of("Summaries", "FOLDER")) == {}

    (data / "clip.mp3").unlink()
    code, out, err = run(
        capsys, "--layout", "summary", "--name", "Study files", str(data), str(folder)
    )
    assert code == 0, err
    assert documents(emu, lab.id_of("Summaries", "FOLDER")) == {
        "Study files": {"a.csv": b"a\n", "b.txt": b"b\n"}
    }
    (doc,) = emu.find("Study files", kind="DOCUMENT")
    assert "raw/a.csv" in "".join(emu.fields(doc).values())  # the table keeps the path

    # a document is no import target
    with pytest.raises(errors.NotSupported, match="Workspace folder or a notebook"):
        run(capsys, str(data), str(folder / "Study files"))
