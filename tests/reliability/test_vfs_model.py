"""Scenario 7, model side: random operation sequences on the vfs agree with an in-memory model.

A hypothesis state machine creates, overwrites, appends to, truncates, reads, removes and
renames files in one directory, and lets the listing cache expire, through the vfs (no kernel)
on every backend. After every step the vfs listing equals the model, and so does the server:
every file with a final name is there with the model's bytes, while editor/desktop names
(``.DS_Store``) and temporary names (rsync's ``.a.txt.Ab12Cd``, ``c.tmp``) never reach it.
Renames follow the documented rules: a temporary or local file renamed to a final name is
uploaded (over an existing file: as its new version), and a server file renamed to a local or
temporary name is refused with EXDEV so that ``mv`` copies instead.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from docfs import errors
from docfs.emulators.base import EmulatorServer
from docfs.vfs.names import LocalNames
from tests.reliability.kernelless import BACKDOORS, Backdoor, Sandbox, Vfs

FINAL = ["a.txt", "b.txt", "Report 1.pdf", "caf\u00e9.txt"]
TEMPORARY = [".a.txt.Ab12Cd", "c.tmp"]
LOCAL_ONLY = [".DS_Store", ".b.txt.swp"]
NAMES = st.sampled_from(FINAL + TEMPORARY + LOCAL_ONLY)
DATA = st.binary(max_size=300)

_names = LocalNames()


def is_final(name: str) -> bool:
    """A name that is uploaded (not kept local, not temporary)."""
    return not _names.is_local_only(name) and not _names.is_temporary(name)


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

    def call(self, fn, *args):  # type: ignore[no-untyped-def]
        return self.vfs.loop.call(fn, *args)

    def child(self, name: str) -> int:
        return self.vfs.ino(*self.sandbox.path, name)

    def write(self, name: str, data: bytes, *, truncate: bool, offset: int = 0) -> None:
        fs = self.vfs.fs
        # resolve the inode first: a lookup goes through the loop too
        ino = self.child(name)

        async def write() -> None:
            fh, _ = await fs.open(ino, write=True, truncate=truncate)
            try:
                await fs.writes.write(fh, offset, data)
                await fs.writes.flush(fh)
            finally:
                await fs.release(fh)

        self.call(write)

    # ---- rules -----------------------------------------------------------------------------

    @rule(name=NAMES, data=DATA)
    def create(self, name: str, data: bytes) -> None:
        fs = self.vfs.fs

        async def create() -> None:
            fh, _ = await fs.writes.create(self.folder, name, 0o644)
            try:
                await fs.writes.write(fh, 0, data)
                await fs.writes.flush(fh)
            finally:
                await fs.release(fh)

        if name in self.model:
            with pytest.raises(errors.AlreadyExists):
                self.call(create)
            return
        self.call(create)
        self.model[name] = data

    @rule(name=NAMES, data=DATA)
    def overwrite(self, name: str, data: bytes) -> None:
        if name not in self.model:
            with pytest.raises(errors.NotFound):
                self.child(name)
            return
        self.write(name, data, truncate=True)
        self.model[name] = data

    @rule(name=NAMES, data=DATA)
    def append(self, name: str, data: bytes) -> None:
        if name in self.model:
            self.write(name, data, truncate=False, offset=len(self.model[name]))
            self.model[name] += data

    @rule(name=NAMES, size=st.integers(0, 400))
    def truncate(self, name: str, size: int) -> None:
        if name not in self.model:
            return
        ino = self.child(name)
        self.call(lambda: self.vfs.fs.writes.setattr(ino, size=size))
        old = self.model[name]
        self.model[name] = (old + b"\0" * size)[:size]

    @rule(name=NAMES)
    def read(self, name: str) -> None:
        if name in self.model:
            assert self.vfs.read(self.child(name)) == self.model[name]

    @rule(name=NAMES)
    def unlink(self, name: str) -> None:
        def go() -> None:
            self.call(self.vfs.fs.writes.unlink, self.folder, name)

        if name not in self.model:
            with pytest.raises(errors.NotFound):
                go()
        elif is_final(name) and not self.backdoor.removes_files:
            with pytest.raises(errors.NotSupported):
                go()
        else:
            go()
            del self.model[name]

    @rule(src=NAMES, dst=NAMES)
    def rename(self, src: str, dst: str) -> None:
        def go() -> None:
            self.call(self.vfs.fs.writes.rename, self.folder, src, self.folder, dst, 0)

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
