"""Scenario 7, model side: random operation sequences on the vfs agree with an in-memory model.

A hypothesis state machine creates, overwrites, appends to, truncates, reads, removes and
renames files in one directory, and lets the listing cache expire, through the vfs (no kernel)
on every backend. After every step the vfs listing equals the model, and so does the server:
every file with a final name is there with the model's bytes, while editor/desktop names
(``.DS_Store``) and temporary names (rsync's ``.a.txt.Ab12Cd``, ``c.tmp``) never reach it.
Renames follow the documented rules: a temporary or local file renamed to a final name is
uploaded (over an existing file: as its new version), and a server file renamed to a local or
temporary name is refused with EXDEV so that ``mv`` copies instead.

What a repository cannot do is refused as documented, and the ``Backdoor`` flags say which:
no delete or rename of a file (Opus 2 documents, RSpace Gallery files) is EPERM, and a rename
that changes the extension where the server keeps the old one (DocSpace) is EXDEV. The
directory starts with a few files put on the server behind the mount's back, and most steps
pick a name the directory holds, so removals and renames act on real files.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)

from docfs import errors
from docfs.emulators.base import EmulatorServer
from docfs.vfs.names import LocalNames
from tests.reliability.kernelless import BACKDOORS, Backdoor, Sandbox, Vfs

FINAL = ["a.txt", "b.txt", "Report 1.pdf", "caf\u00e9.txt", "A.TXT"]
TEMPORARY = [".a.txt.Ab12Cd", "c.tmp"]
LOCAL_ONLY = [".DS_Store", ".b.txt.swp"]
NAMES = st.sampled_from(FINAL + TEMPORARY + LOCAL_ONLY)
DATA = st.binary(max_size=300)

T = TypeVar("T")

_names = LocalNames()


def is_final(name: str) -> bool:
    """A name that is uploaded (not kept local, not temporary)."""
    return not _names.is_local_only(name) and not _names.is_temporary(name)


def extension(name: str) -> str:
    """The extension as servers that keep it on rename see it (``.pdf``, or ``""``)."""
    _stem, dot, ext = name.rpartition(".")
    return f".{ext.lower()}" if dot else ""


assert all(is_final(n) for n in FINAL)
assert not any(is_final(n) for n in TEMPORARY + LOCAL_ONLY)


class VfsModel(RuleBasedStateMachine):
    """Subclassed per backend with ``backdoor`` and ``server`` set."""

    backdoor: Backdoor
    server: EmulatorServer

    def __init__(self) -> None:
        super().__init__()
        self.sandbox: Sandbox = self.backdoor.sandbox(self.server.emulator)
        self.vfs = Vfs(self.backdoor, self.server)
        self.model: dict[str, bytes] = {}
        self.folder = self.vfs.ino(*self.sandbox.path)

    def teardown(self) -> None:
        self.vfs.close()

    # ---- helpers ---------------------------------------------------------------------------

    def call(self, fn: Callable[..., Awaitable[T]], *args: Any) -> T:
        return self.vfs.loop.call(fn, *args)

    def child(self, name: str) -> int:
        return self.vfs.ino(*self.sandbox.path, name)

    def pick(self, data: st.DataObject) -> str:
        """A name for an operation on a file: mostly one the directory holds, so overwrites,
        removals and renames act on files that exist (uniform names left most renames and
        removals on the ENOENT path); sometimes any name, so that path is still taken."""
        held = sorted(self.model)
        if held and data.draw(st.integers(0, 3), label="held") > 0:
            return data.draw(st.sampled_from(held), label="name")
        return data.draw(NAMES, label="name")

    def write(self, name: str, data: bytes, *, truncate: bool, offset: int = 0) -> None:
        fs = self.vfs.fs
        # resolve the inode first: a lookup goes through the loop too
        ino = self.child(name)

        async def write() -> None:
            fh, _ = await fs.open(ino, write=True, truncate=truncate)
            try:
                await fs.write(fh, offset, data)
                await fs.flush(fh)
            finally:
                await fs.release(fh)

        self.call(write)

    # ---- rules -----------------------------------------------------------------------------

    @initialize(files=st.dictionaries(st.sampled_from(FINAL), DATA, max_size=3))
    def server_files(self, files: dict[str, bytes]) -> None:
        """Files put on the server behind the mount's back: the steps then act on files docfs
        knows only from a listing, in a directory that is not empty. (Opus 2 lists a whole
        project at once, so the new directory was listed already: let that listing expire.)"""
        for name, data in files.items():
            self.sandbox.add_file(name, data)
        self.model.update(files)
        self.vfs.expire()

    @rule(name=NAMES, data=DATA)
    def create(self, name: str, data: bytes) -> None:
        fs = self.vfs.fs

        async def create() -> None:
            fh, _ = await fs.create(self.folder, name, 0o644)
            try:
                await fs.write(fh, 0, data)
                await fs.flush(fh)
            finally:
                await fs.release(fh)

        if name in self.model:
            with pytest.raises(errors.AlreadyExists):
                self.call(create)
            return
        self.call(create)
        self.model[name] = data

    @rule(pick=st.data(), data=DATA)
    def overwrite(self, pick: st.DataObject, data: bytes) -> None:
        name = self.pick(pick)
        if name not in self.model:
            with pytest.raises(errors.NotFound):
                self.child(name)
            return
        self.write(name, data, truncate=True)
        self.model[name] = data

    @rule(pick=st.data(), data=DATA)
    def append(self, pick: st.DataObject, data: bytes) -> None:
        name = self.pick(pick)
        if name in self.model:
            self.write(name, data, truncate=False, offset=len(self.model[name]))
            self.model[name] += data

    @rule(pick=st.data(), size=st.integers(0, 400))
    def truncate(self, pick: st.DataObject, size: int) -> None:
        name = self.pick(pick)
        if name not in self.model:
            return
        ino = self.child(name)
        self.call(lambda: self.vfs.fs.setattr(ino, size=size))
        old = self.model[name]
        self.model[name] = (old + b"\0" * size)[:size]

    @rule(pick=st.data())
    def read(self, pick: st.DataObject) -> None:
        name = self.pick(pick)
        if name in self.model:
            assert self.vfs.read(self.child(name)) == self.model[name]

    @rule(pick=st.data())
    def unlink(self, pick: st.DataObject) -> None:
        name = self.pick(pick)

        def go() -> None:
            self.call(self.vfs.fs.unlink, self.folder, name)

        if name not in self.model:
            with pytest.raises(errors.NotFound):
                go()
        elif is_final(name) and not self.backdoor.removes_files:
            with pytest.raises(errors.NotSupported):
                go()
        else:
            go()
            del self.model[name]

    @rule(pick=st.data(), dst=NAMES)
    def rename(self, pick: st.DataObject, dst: str) -> None:
        src = self.pick(pick)

        def go() -> None:
            self.call(self.vfs.fs.rename, self.folder, src, self.folder, dst, 0)

        if src not in self.model:
            with pytest.raises(errors.NotFound):
                go()
            return
        if src == dst:
            go()
            return
        if is_final(src) and not is_final(dst):
            # a server file cannot become a local one: mv falls back to copy + delete
            with pytest.raises(errors.CrossDevice):
                go()
            return
        if is_final(src) and is_final(dst):
            # over an existing file: new version of the target, then the source is deleted
            allowed = (
                self.backdoor.removes_files if dst in self.model else self.backdoor.renames_files
            )
            if not allowed:
                with pytest.raises(errors.NotSupported):
                    go()
                return
            if (
                dst not in self.model
                and not self.backdoor.renames_extensions
                and extension(src) != extension(dst)
            ):
                # the server would keep the old extension (DocSpace): mv copies instead
                with pytest.raises(errors.CrossDevice):
                    go()
                return
        go()
        self.model[dst] = self.model.pop(src)

    @rule()
    def expire(self) -> None:
        self.vfs.expire()

    # ---- invariants ------------------------------------------------------------------------

    @invariant()
    def listing_matches_the_model(self) -> None:
        assert set(self.vfs.listdir(self.folder)) == set(self.model)

    @invariant()
    def server_holds_exactly_the_final_names(self) -> None:
        expected = {n: d for n, d in self.model.items() if is_final(n)}
        assert self.sandbox.files() == expected


@pytest.fixture(scope="module", params=BACKDOORS, ids=lambda b: b.name)
def backdoor_server(request: pytest.FixtureRequest) -> Iterator[tuple[Backdoor, EmulatorServer]]:
    backdoor: Backdoor = request.param
    with EmulatorServer(backdoor.emulator()) as server:
        yield backdoor, server


def test_random_operations_agree_with_the_model(
    backdoor_server: tuple[Backdoor, EmulatorServer],
) -> None:
    backdoor, server = backdoor_server
    machine = type(
        f"VfsModel_{backdoor.name}", (VfsModel,), {"backdoor": backdoor, "server": server}
    )
    run_state_machine_as_test(
        machine,
        settings=settings(
            max_examples=int(os.environ.get("DOCFS_MODEL_EXAMPLES", "25")),
            stateful_step_count=30,
            deadline=None,
            database=None,
            derandomize=True,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )
