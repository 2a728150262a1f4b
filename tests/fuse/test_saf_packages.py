"""Issue 21 items 2 and 3: Simple Archive Format packages through a real mount.

``cp -r`` of a SAF archive into a collection makes one item per package with the XML's
metadata and the ``contents`` files (no XML or ``contents`` bitstream); ``docfs deposit``
killed half way and resumed makes every item once; ``docfs export`` → ``docfs deposit`` into
another collection reproduces the items (metadata and MD5s). Against the DSpace 6 and the
DSpace 7 emulator; DSpace 7 also as a submitter (workspace items, deposited on fsync).
``DOCFS_SAF_FULL=1`` deposits 200 items instead of 40.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from docfs.emulators.base import EmulatorServer
from docfs.emulators.dspace6 import DSpace6Emulator
from docfs.emulators.dspace7 import DSpace7Emulator
from tests.conftest import ADMIN
from tests.fuse.conftest import Mount

USER = ("depositor@example.org", "depositor-password-456")
BATCH = 200 if os.environ.get("DOCFS_SAF_FULL") else 40


# ---- a SAF archive ---------------------------------------------------------------------------


def dcvalue(element: str, qualifier: str, value: str, lang: str = "") -> str:
    extra = f' language="{lang}"' if lang else ""
    return f'  <dcvalue element="{element}" qualifier="{qualifier}"{extra}>{value}</dcvalue>\n'


@dataclass
class Package:
    """What one item directory of the archive should become."""

    meta: dict[str, list[str]]
    files: dict[str, bytes]
    descriptions: dict[str, str] = field(default_factory=dict)
    #: name → bundle, for files ``contents`` puts in a bundle other than ORIGINAL
    bundles: dict[str, str] = field(default_factory=dict)
    primary: str | None = None


def make_archive(
    root: Path, count: int, *, prefix: str = "item", extras: bool = True
) -> dict[str, Package]:
    """``count`` item directories ``item_000``…, each 2 or 3 files and a ``contents`` naming
    them (one with a description); every third also ``metadata_dcterms.xml``. With
    ``extras`` each also has ``license.txt`` in bundle LICENSE, and every other one makes its
    data file the primary bitstream."""
    root.mkdir(parents=True)
    made: dict[str, Package] = {}
    for n in range(count):
        d = root / f"{prefix}_{n:03d}"
        d.mkdir()
        title = f"Packaged {prefix} {n} é"
        meta = {
            "dc.title": [title],
            "dc.contributor.author": [f"Author, A{n}", "Author, Second"],
            "dc.subject": [f"topic-{n % 4}"],
        }
        dc = '<?xml version="1.0" encoding="UTF-8"?>\n<dublin_core>\n'
        dc += dcvalue("title", "none", title, "en")
        dc += dcvalue("contributor", "author", f"Author, A{n}")
        dc += dcvalue("contributor", "author", "Author, Second")
        dc += dcvalue("subject", "", f"topic-{n % 4}")
        dc += dcvalue("description", "abstract", "")  # empty: the importer skips it
        (d / "dublin_core.xml").write_text(dc + "</dublin_core>\n")
        if n % 3 == 0:
            meta["dcterms.audience"] = ["students"]
            (d / "metadata_dcterms.xml").write_text(
                '<?xml version="1.0"?>\n<dublin_core schema="dcterms">\n'
                + dcvalue("audience", "", "students")
                + "</dublin_core>\n"
            )
        files = {f"data-{n}.csv": os.urandom(100 + n), "readme.txt": f"item {n}\n".encode()}
        if n % 2 == 0:
            files["figure.png"] = os.urandom(3000)
        for name, data in files.items():
            (d / name).write_bytes(data)
        lines = [f"{name}\tbundle:ORIGINAL" for name in files]
        lines[0] += f"\tdescription:the data of item {n}"
        package = Package(meta, files, {f"data-{n}.csv": f"the data of item {n}"})
        if extras:
            files["license.txt"] = f"licence of item {n}\n".encode()
            (d / "license.txt").write_bytes(files["license.txt"])
            lines.append("license.txt\tbundle:LICENSE")
            package.bundles["license.txt"] = "LICENSE"
            if n % 2 == 0:
                lines[0] += "\tprimary:true"
                package.primary = f"data-{n}.csv"
        (d / "contents").write_text("\n".join(lines) + "\n")
        if n == 1:  # what DSpace's exporter writes too: never content, not applied
            (d / "handle").write_text("123456789/99\n")
        made[d.name] = package
    return made


# ---- the repositories ------------------------------------------------------------------------


@dataclass
class Item:
    meta: dict[str, list[str]]
    #: name → (bundle, md5, description)
    files: dict[str, tuple[str, str, str]]
    #: the name of the primary bitstream of the ORIGINAL bundle
    primary: str | None = None


class Repo:
    """One emulator, a mount of it, and a look at its items through the emulator."""

    kind = ""
    server: EmulatorServer

    def __init__(self, tmp: Path, role: str) -> None:
        self.tmp, self.role = tmp, role
        self.mount: Mount | None = None

    def start(self, *more: str) -> Mount:
        raise NotImplementedError

    #: the API can put files in other bundles and set the primary one
    placed = True

    def items(self, collection: str) -> dict[str, Item]:
        """title → the item, of every archived item of ``collection``."""
        raise NotImplementedError

    def values(self, collection: str, key: str) -> set[str]:
        """Every value of ``key`` over the items of ``collection``."""
        raise NotImplementedError


class D6(Repo):
    kind = "dspace6"
    placed = False  # the 6.x REST API uploads into ORIGINAL and knows no primary

    def __init__(self, tmp: Path, role: str) -> None:
        super().__init__(tmp, role)
        self.e = DSpace6Emulator()
        self.e.add_user(*ADMIN, admin=True)
        self.e.register_field("dcterms.audience")
        com = self.e.add_community("Lab")
        self.cols = {n: self.e.add_collection(n, com) for n in ("Incoming", "Copies")}
        self.server = EmulatorServer(self.e)
        self.server.start()

    def start(self, *more: str) -> Mount:
        self.mount = Mount(f"{self.server.url}/rest", self.tmp / "mnt", self.tmp / "cache")
        return self.mount.start(*more)

    def values(self, collection: str, key: str) -> set[str]:
        out: set[str] = set()
        for listed in self.e.items_of(self.cols[collection]):
            obj = self.e.get_object(listed["uuid"])
            assert obj is not None
            out.update(obj["metadata"].get(key, []))
        return out

    def items(self, collection: str) -> dict[str, Item]:
        out = {}
        for listed in self.e.items_of(self.cols[collection]):
            obj = self.e.get_object(listed["uuid"])
            assert obj is not None
            meta = {k: v for k, v in obj["metadata"].items() if k in META_KEYS}
            files = {
                b["name"]: (b["bundle"], b["md5"], b["description"] or "")
                for b in self.e.bitstreams_of(listed["uuid"])
                if b["bundle"] == "ORIGINAL"
            }
            out[obj["name"]] = Item(meta, files)
        return out


class D7(Repo):
    kind = "dspace7"

    def __init__(self, tmp: Path, role: str) -> None:
        super().__init__(tmp, role)
        self.e = DSpace7Emulator(user=ADMIN[0], password=ADMIN[1])
        self.e.add_user(*USER)
        com = self.e.add_community("Lab")
        self.cols = {n: self.e.add_collection(n, com) for n in ("Incoming", "Copies")}
        if role == "submitter":  # of the collections there are
            self.e.grant_role(USER[0], "submitter")
        self.server = EmulatorServer(self.e)
        self.server.start()

    def start(self, *more: str) -> Mount:
        self.mount = Mount(self.server.url, self.tmp / "mnt", self.tmp / "cache")
        self.mount.kind = "dspace7"
        return self.mount.start(*more, credentials=ADMIN if self.role == "admin" else USER)

    def values(self, collection: str, key: str) -> set[str]:
        out: set[str] = set()
        for uuid in self.e.items_in(self.cols[collection]):
            out.update(self.e.metadata_of(uuid).get(key, []))
        return out

    def items(self, collection: str) -> dict[str, Item]:
        out = {}
        for uuid in self.e.items_in(self.cols[collection]):
            meta = {k: v for k, v in self.e.metadata_of(uuid).items() if k in META_KEYS}
            files = {}
            primary = None
            for bundle in self.e.bundle_names(uuid):
                for bs, name in self.e.bitstreams(uuid, bundle):
                    data = self.e.content(bs)
                    description = self.e.metadata_of(bs).get("dc.description", [""])[0]
                    files[name or ""] = (bundle, hashlib.md5(data).hexdigest(), description)
                    if bs == self.e.primary_of(uuid):
                        primary = name
            out[self.e.name_of(uuid) or uuid] = Item(meta, files, primary)
        return out


META_KEYS = {"dc.title", "dc.contributor.author", "dc.subject", "dcterms.audience"}
CASES = [("dspace6", "admin"), ("dspace7", "admin"), ("dspace7", "submitter")]


@pytest.fixture(params=CASES, ids=["-".join(c) for c in CASES])
def repo(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Repo]:
    kind, role = request.param
    made: Repo = D6(tmp_path, role) if kind == "dspace6" else D7(tmp_path, role)
    yield made
    if made.mount is not None:
        made.mount.stop()
    made.server.stop()


def expected(packages: dict[str, Package], repo: Repo) -> dict[str, Item]:
    """What the packages become in ``repo`` (bundles and primary where its API has them)."""
    return {
        p.meta["dc.title"][0]: Item(
            p.meta,
            {
                name: (
                    p.bundles.get(name, "ORIGINAL") if repo.placed else "ORIGINAL",
                    hashlib.md5(data).hexdigest(),
                    p.descriptions.get(name, ""),
                )
                for name, data in p.files.items()
            },
            p.primary if repo.placed else None,
        )
        for p in packages.values()
    }


def docfs(*args: str, **kw: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "docfs", *args], capture_output=True, text=True, timeout=300, **kw
    )


def settle(m: Mount) -> None:
    """Submitters' workspace items are deposited by ``docfs sync`` (a no-op for admins)."""
    done = docfs("sync", str(m.path))
    assert done.returncode == 0, done.stderr


# ---- cp -r and rsync -a ----------------------------------------------------------------------


def copy_contents_last(sources: list[str], target: Path) -> None:
    """Copy item directories writing ``contents`` after every file it names (``rsync``
    writes it first, in name order; ``cp`` in directory order)."""
    for source in map(Path, sources):
        (target / source.name).mkdir()
        for f in sorted(source.iterdir(), key=lambda p: p.name == "contents"):
            (target / source.name / f.name).write_bytes(f.read_bytes())


@pytest.mark.parametrize("copier", ["cp", "rsync", "contents-last"])
def test_copying_a_saf_archive_makes_one_item_per_package(
    repo: Repo, tmp_path: Path, copier: str
) -> None:
    """Three packages copied into a collection: three items with the XML's metadata and the
    ``contents`` files with their descriptions; no ``dublin_core.xml``/``contents`` bitstream."""
    packages = make_archive(tmp_path / "archive", 3)
    m = repo.start()
    target = m.path / "Lab" / "Incoming"
    sources = [str(p) for p in sorted((tmp_path / "archive").iterdir())]
    if copier == "cp":
        result = m.run("cp", "-r", *sources, str(target), check=False)
        assert result.returncode == 0, result.stderr + m.log_text()[-3000:]
    elif copier == "rsync":
        result = m.run("rsync", "-a", *sources, f"{target}/", check=False)
        assert result.returncode == 0, result.stderr + m.log_text()[-3000:]
    else:
        copy_contents_last(sources, target)
    settle(m)
    assert repo.items("Incoming") == expected(packages, repo)
    # the package files stay visible in the mount while it runs (rsync set their times)
    assert (target / "item_001" / "dublin_core.xml").exists()


# ---- docfs deposit and docfs export ----------------------------------------------------------


def map_lines(path: Path) -> list[tuple[str, str]]:
    return [tuple(line.split(" ", 1)) for line in path.read_text().splitlines()]  # type: ignore[misc]


def test_deposit_killed_half_way_and_resumed_makes_every_item_once(
    repo: Repo, tmp_path: Path
) -> None:
    packages = make_archive(tmp_path / "archive", BATCH)
    m = repo.start()
    target = m.path / "Lab" / "Incoming"
    mapfile = tmp_path / "batch.map"
    args = ["deposit", str(tmp_path / "archive"), str(target), "--mapfile", str(mapfile)]
    first = subprocess.Popen(
        [sys.executable, "-m", "docfs", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    deadline = time.monotonic() + 120
    while not (mapfile.exists() and len(mapfile.read_text().splitlines()) >= BATCH // 2):
        assert first.poll() is None, first.communicate()
        assert time.monotonic() < deadline, "the deposit did not get half way"
        time.sleep(0.01)
    first.send_signal(signal.SIGKILL)
    first.wait(10)
    assert len(map_lines(mapfile)) < BATCH  # really interrupted
    again = docfs(*args)
    assert again.returncode != 0 and "--resume" in again.stderr  # no silent second batch
    resumed = docfs(*args, "--resume")
    assert resumed.returncode == 0, resumed.stderr + m.log_text()[-3000:]
    assert "[" in resumed.stderr  # the progress lines
    settle(m)
    lines = map_lines(mapfile)
    assert sorted(d for d, _ in lines) == sorted(packages)  # each item directory once
    assert len({h for _, h in lines}) == BATCH
    assert repo.items("Incoming") == expected(packages, repo)  # every item once, complete


def test_export_then_deposit_into_another_collection_reproduces_the_items(
    repo: Repo, tmp_path: Path
) -> None:
    # without other bundles and primary: export writes what the item directory shows
    packages = make_archive(tmp_path / "archive", 4, extras=False)
    m = repo.start()
    incoming, copies = m.path / "Lab" / "Incoming", m.path / "Lab" / "Copies"
    made = docfs(
        "deposit", str(tmp_path / "archive"), str(incoming), "--mapfile", str(tmp_path / "a.map")
    )
    assert made.returncode == 0, made.stderr
    settle(m)
    before = repo.items("Incoming")
    assert before == expected(packages, repo)
    exported = docfs("export", str(incoming), str(tmp_path / "out"))
    assert exported.returncode == 0, exported.stderr
    assert sorted(os.listdir(tmp_path / "out")) == [f"item_{n:03d}" for n in range(4)]
    again = docfs(
        "deposit", str(tmp_path / "out"), str(copies), "--mapfile", str(tmp_path / "b.map")
    )
    assert again.returncode == 0, again.stderr + m.log_text()[-3000:]
    settle(m)
    assert repo.items("Copies") == before  # metadata, names, MD5s and descriptions
    # what the repository set when it installed the originals is not carried over: each
    # copy has its own handle URI (and the originals' are not among them)
    old, new = (repo.values(c, "dc.identifier.uri") for c in ("Incoming", "Copies"))
    assert len(old) == len(new) == 4 and not old & new


def test_resume_finishes_an_item_the_interrupted_run_had_begun(tmp_path: Path) -> None:
    """Killed between making an item and writing its map line: ``--resume`` finishes that
    item (from ``MAPFILE.pending``) instead of making it a second time."""
    repo: Repo = D6(tmp_path, "admin")
    try:
        packages = make_archive(tmp_path / "archive", 3)
        m = repo.start()
        target = m.path / "Lab" / "Incoming"
        mapfile = tmp_path / "batch.map"
        first = docfs(
            "deposit",
            str(tmp_path / "archive" / "item_000"),
            str(target),
            "--mapfile",
            str(mapfile),
        )
        assert first.returncode == 0, first.stderr
        # what a run killed inside item_001 leaves: its pending line, the item with part
        # of its files, no map line
        title = packages["item_001"].meta["dc.title"][0]
        (mapfile.parent / "batch.map.pending").write_text(f"item_001 {title}\n")
        (target / title).mkdir()
        for name in ("dublin_core.xml", "readme.txt"):
            (target / title / name).write_bytes(
                (tmp_path / "archive" / "item_001" / name).read_bytes()
            )
        resumed = docfs(
            "deposit", str(tmp_path / "archive"), str(target), "--mapfile", str(mapfile), "--resume"
        )
        assert resumed.returncode == 0, resumed.stderr + m.log_text()[-3000:]
        assert "2 item(s) deposited, 1 already" in resumed.stdout
        assert repo.items("Incoming") == expected(packages, repo)
        assert [d for d, _ in map_lines(mapfile)] == ["item_000", "item_001", "item_002"]
        assert not (mapfile.parent / "batch.map.pending").exists()
    finally:
        if repo.mount is not None:
            repo.mount.stop()
        repo.server.stop()


@pytest.mark.parametrize("kind", ["dspace6", "dspace7"])
def test_a_package_copied_into_a_write_back_mount_is_applied_not_queued(
    tmp_path: Path, kind: str
) -> None:
    """With ``--write-back`` the files are queued, the package files applied at close."""
    repo: Repo = D6(tmp_path, "admin") if kind == "dspace6" else D7(tmp_path, "admin")
    try:
        packages = make_archive(tmp_path / "archive", 2)
        m = repo.start("--write-back", "0")
        target = m.path / "Lab" / "Incoming"
        sources = [str(p) for p in sorted((tmp_path / "archive").iterdir())]
        result = m.run("cp", "-r", *sources, str(target), check=False)
        assert result.returncode == 0, result.stderr
        settle(m)
        assert repo.items("Incoming") == expected(packages, repo)
    finally:
        if repo.mount is not None:
            repo.mount.stop()
        repo.server.stop()


def test_a_refused_package_stops_the_batch_and_resume_finishes_it(tmp_path: Path) -> None:
    """The server refuses an item's metadata (a field it does not know): the copy of
    ``dublin_core.xml`` fails, ``deposit`` stops with exit 1 naming the item, the bytes are in
    lost+found, the mount lives on; with the file fixed, ``--resume`` finishes that item."""
    repo: Repo = D6(tmp_path, "admin")
    try:
        packages = make_archive(tmp_path / "archive", 3)
        broken = tmp_path / "archive" / "item_001" / "dublin_core.xml"
        good = broken.read_text()
        broken.write_text(good.replace('element="subject"', 'element="nosuchfield"'))
        m = repo.start()
        target = m.path / "Lab" / "Incoming"
        mapfile = tmp_path / "batch.map"
        args = ["deposit", str(tmp_path / "archive"), str(target), "--mapfile", str(mapfile)]
        first = docfs(*args)
        assert first.returncode == 1, first.stderr
        assert "item_001" in first.stderr and "--resume" in first.stderr
        assert [d for d, _ in map_lines(mapfile)] == ["item_000"]
        kept = list((tmp_path / "cache").rglob("*dublin_core.xml"))
        assert any("nosuchfield" in p.read_text() for p in kept)
        broken.write_text(good)
        resumed = docfs(*args, "--resume")
        assert resumed.returncode == 0, resumed.stderr + m.log_text()[-3000:]
        assert repo.items("Incoming") == expected(packages, repo)
    finally:
        if repo.mount is not None:
            repo.mount.stop()
        repo.server.stop()
