"""Issue 23.10: an operation the repository has no place for is refused with one log line that
names the refused path (not its parent), says the operation once and says what to do instead.

Driven through ``FuseOperations`` (where errors become errnos and log lines) over the vfs
without the kernel (``kernelless.py``), on every backend against its emulator; the lines are
compared whole.
"""

from __future__ import annotations

import errno
import logging
from collections.abc import Iterator
from typing import Any

import pyfuse3
import pytest

from docfs.emulators.base import EmulatorServer
from docfs.fuse_ops import FuseOperations
from tests.reliability.kernelless import BACKDOORS, Backdoor, Vfs

COPY_INTO = "copy the directory's files into the item (rsync -a src/ ITEM/, trailing slash)"
COPY_AS = "or copy the directory itself (rsync -a src COLLECTION/) to make it an item"


@pytest.fixture
def mounted(request: pytest.FixtureRequest) -> Iterator[tuple[Backdoor, Vfs, EmulatorServer]]:
    backdoor = next(b for b in BACKDOORS if b.name == request.param)
    with EmulatorServer(backdoor.emulator()) as server:
        vfs = Vfs(backdoor, server)
        try:
            yield backdoor, vfs, server
        finally:
            vfs.close()


def _refusal(
    vfs: Vfs, caplog: pytest.LogCaptureFixture, op: str, path: tuple[str, ...], name: str
) -> list[str]:
    """Run ``op`` (create, mkdir or unlink) of ``name`` in the directory ``path`` as the kernel
    would; it must fail with EPERM. Returns the lines ``docfs.fuse`` logged for it."""
    ops = FuseOperations(vfs.fs)
    parent = vfs.ino(*path)
    ctx: Any = None
    raw = name.encode()

    async def call() -> None:
        if op == "create":
            await ops.create(parent, raw, 0o644, 0, ctx)
        elif op == "mkdir":
            await ops.mkdir(parent, raw, 0o755, ctx)
        else:
            await ops.unlink(parent, raw, ctx)

    caplog.clear()
    with (
        caplog.at_level(logging.DEBUG, logger="docfs"),
        pytest.raises(pyfuse3.FUSEError) as failed,
    ):
        vfs.loop.call(call)
    assert failed.value.errno == errno.EPERM
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.INFO]


@pytest.mark.parametrize("mounted", ["dspace6", "dspace7"], indirect=True)
def test_dspace_refusals_name_the_path_and_say_what_to_do(
    mounted: tuple[Backdoor, Vfs, EmulatorServer], caplog: pytest.LogCaptureFixture
) -> None:
    backdoor, vfs, server = mounted
    item = backdoor.sandbox(server.emulator).path
    name = backdoor.name
    product = "DSpace 6" if name == "dspace6" else "DSpace 7"
    item_path = "/" + "/".join(item)
    # rsync -a src item/ where src has a subdirectory: an item holds no directories
    assert _refusal(vfs, caplog, "mkdir", item, "sub") == [
        f"mkdir {item_path}/sub: {name} has no such operation here; a {product} item holds "
        f"files only, no directories: {COPY_INTO}, or make a sibling item in the collection "
        "(EPERM)"
    ]
    # rsync -a src/ collection/: files go inside items
    assert _refusal(vfs, caplog, "create", ("Fuzz", "Runs"), "a.txt") == [
        f"create /Fuzz/Runs/a.txt: {name} has no such operation here; files go inside an "
        f"item: mkdir ITEM first, {COPY_AS} (EPERM)"
    ]
    assert _refusal(vfs, caplog, "create", ("Fuzz",), "a.txt") == [
        f"create /Fuzz/a.txt: {name} has no such operation here; a community holds "
        "collections: files go inside an item of a collection (mkdir here makes a "
        "collection, mkdir in that an item) (EPERM)"
    ]
    assert _refusal(vfs, caplog, "create", (), "a.txt") == [
        f"create /a.txt: {name} has no such operation here; the top level holds communities: "
        "files go inside an item (COMMUNITY/COLLECTION/ITEM); mkdir here makes a community "
        "(EPERM)"
    ]


@pytest.mark.parametrize("mounted", ["opus2"], indirect=True)
def test_opus2_refusals(
    mounted: tuple[Backdoor, Vfs, EmulatorServer], caplog: pytest.LogCaptureFixture
) -> None:
    backdoor, vfs, server = mounted
    sandbox = backdoor.sandbox(server.emulator)
    sandbox.add_file("old.pdf", b"%PDF")
    folder = "/" + "/".join(sandbox.path)
    assert _refusal(vfs, caplog, "unlink", sandbox.path, "old.pdf") == [
        f"unlink {folder}/old.pdf: opus2 has no such operation here; the Documents API cannot "
        "delete documents: delete it in Opus 2 (or set document_delete = true in the remote's "
        "wire profile if the tenant has the call) (EPERM)"
    ]
    assert _refusal(vfs, caplog, "mkdir", (), "new-project") == [
        "mkdir /new-project: opus2 has no such operation here; projects are made in Opus 2 "
        "itself: files and folders go inside a project (EPERM)"
    ]


@pytest.mark.parametrize("mounted", ["rspace"], indirect=True)
def test_rspace_refusals(
    mounted: tuple[Backdoor, Vfs, EmulatorServer], caplog: pytest.LogCaptureFixture
) -> None:
    backdoor, vfs, server = mounted
    sandbox = backdoor.sandbox(server.emulator)
    sandbox.add_file("notes.txt", b"notes")
    folder = "/" + "/".join(sandbox.path)
    assert _refusal(vfs, caplog, "unlink", sandbox.path, "notes.txt") == [
        f"unlink {folder}/notes.txt: rspace has no such operation here; the API cannot "
        "delete Gallery files: delete it in RSpace's web interface (EPERM)"
    ]
    lines = _refusal(vfs, caplog, "create", ("Gallery",), "photo.png")
    assert lines == [
        "create /Gallery/photo.png: rspace has no such operation here; the Gallery holds its "
        "sections only: copy files into Gallery/<section> (Audios, Chemistry, "
        "Documents, Images, Miscellaneous, Videos) (EPERM)"
    ]
    assert _refusal(vfs, caplog, "mkdir", ("Shared",), "mine") == [
        "mkdir /Shared/mine: rspace has no such operation here; RSpace makes and keeps this "
        "folder (and those in Shared) itself (EPERM)"
    ]
    assert _refusal(vfs, caplog, "create", (), "a.txt") == [
        "create /a.txt: rspace has no such operation here; RSpace keeps files in the Gallery: "
        "copy it into Gallery/<section>, or into a document's directory to attach it to the "
        "document (EPERM)"
    ]


@pytest.mark.parametrize("mounted", ["docspace"], indirect=True)
def test_docspace_refusals(
    mounted: tuple[Backdoor, Vfs, EmulatorServer], caplog: pytest.LogCaptureFixture
) -> None:
    _, vfs, _ = mounted
    assert _refusal(vfs, caplog, "create", (), "a.txt") == [
        "create /a.txt: docspace has no such operation here; the top level holds My "
        "documents, Rooms and Trash: files and folders go inside My documents or a room "
        "(EPERM)"
    ]
    assert _refusal(vfs, caplog, "create", ("Rooms",), "a.txt") == [
        "create /Rooms/a.txt: docspace has no such operation here; Rooms holds rooms only: "
        "mkdir Rooms/NAME makes a room; files go inside it (EPERM)"
    ]
