"""The DSpace 6 (DSpace 7, DocSpace) emulator in a process of its own, driven through a pipe.

The benchmarks compare docfs with httpx scripts run by the harness. Were the emulator a thread
of the harness, the harness's own httpx client would compete with it for one GIL while the
docfs daemon (a separate process) would not: the baseline would be slowed and docfs flattered.
So the emulator serves from its own process, and everything the harness asks of it — seeding,
latency, request accounting — goes over a ``multiprocessing`` pipe as a named command. Bulk
data (file bodies, thousands of items) is made inside that process: nothing large crosses the
pipe, which is what keeps seeding 100,000 items quick.
"""

from __future__ import annotations

import multiprocessing
import os
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

from docfs.emulators.base import EmulatorServer
from docfs.emulators.docspace import DocSpaceEmulator
from docfs.emulators.dspace6 import DSpace6Emulator
from docfs.emulators.dspace7 import DSpace7Emulator

#: the benchmark account (a throw-away login of a loopback test server)
USER = "bench@example.org"
PASSWORD = "bench-password-1"


@dataclass
class Traffic:
    """What the emulator saw since its log was last cleared."""

    requests: int = 0
    bytes: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)

    def count(self, method: str, suffix: str = "") -> int:
        return sum(
            n for k, n in self.by_kind.items() if k.startswith(method + " ") and k.endswith(suffix)
        )


@dataclass
class _State:
    emulator: DSpace6Emulator | DSpace7Emulator | DocSpaceEmulator
    blobs: dict[str, bytes] = field(default_factory=dict)

    @property
    def dspace(self) -> DSpace6Emulator | DSpace7Emulator:
        """The emulator, for the commands that only DSpace's take."""
        assert not isinstance(self.emulator, DocSpaceEmulator), "a DSpace command on DocSpace"
        return self.emulator


def _kind(path: str) -> str:
    """``/rest/items/<uuid>/bitstreams`` → ``/items/*/bitstreams``: requests grouped by endpoint."""
    parts = path.removeprefix("/rest").split("/")
    return "/".join("*" if len(p) == 36 and p.count("-") == 4 else p for p in parts)


def _cmd_make_blob(s: _State, key: str, size: int, seed: int) -> None:
    rng = random.Random(seed)
    # in pieces: randbytes counts bits in a C int, which 256 MiB overflows
    pieces = [rng.randbytes(min(1 << 20, size - at)) for at in range(0, size, 1 << 20)]
    s.blobs[key] = b"".join(pieces)


def _cmd_add_community(s: _State, name: str) -> str:
    return s.dspace.add_community(name)


def _cmd_add_collection(s: _State, name: str, community: str) -> str:
    return s.dspace.add_collection(name, community)


def _cmd_add_items(s: _State, collection: str, titles: list[str]) -> list[str]:
    return [s.dspace.add_item(collection, t) for t in titles]


def _cmd_add_numbered_items(s: _State, collection: str, prefix: str, n: int) -> int:
    for i in range(n):
        s.dspace.add_item(collection, f"{prefix} {i:06d}")
    return n


def _walk_files(seed: int) -> Callable[[], tuple[tuple[str, bytes], ...]]:
    """B10's two files of an item, new sizes at each call (a few hundred bytes to 8 KiB, so
    that ``du`` adds up something real); the bodies are slices of one random buffer."""
    rng = random.Random(seed)
    body = rng.randbytes(8192)
    return lambda: tuple((name, body[: rng.randrange(200, 8192)]) for name in WALK_FILES)


#: the names of the files of each item of B10's collection
WALK_FILES = ("text.txt", "data.bin")


def _cmd_seed_walk(s: _State, collection: str, n: int, seed: int) -> int:
    """B10's collection: ``n`` items of two small files each, made here; returns their bytes."""
    files = _walk_files(seed)
    total = 0
    for i in range(n):
        item = s.dspace.add_item(collection, f"Item {i:05d}")
        for name, data in files():
            s.dspace.add_bitstream(item, name, data)
            total += len(data)
    return total


def _cmd_seed_walk_room(s: _State, n: int, seed: int) -> tuple[int, int]:
    """B10 on DocSpace: a room of ``n`` folders of two small files each (the collection and
    items of DSpace); returns the room's id and the files' bytes."""
    assert isinstance(s.emulator, DocSpaceEmulator)
    files = _walk_files(seed)
    room = s.emulator.add_room("Walk", owner=USER)
    total = 0
    for i in range(n):
        folder = s.emulator.add_folder(room, f"Item {i:05d}", owner=USER)
        for name, data in files():
            s.emulator.add_file(folder, name, data, owner=USER)
            total += len(data)
    return room, total


def _cmd_add_bitstream(s: _State, item: str, name: str, blob: str) -> str:
    return s.dspace.add_bitstream(item, name, s.blobs[blob])


def _cmd_set_latency(s: _State, ms: float) -> None:
    s.emulator.latency_ms = ms


def _cmd_set_bandwidth(s: _State, per_second: float) -> None:
    s.emulator.bandwidth = per_second


def _cmd_clear_log(s: _State) -> None:
    s.emulator.clear_log()


def _cmd_traffic(s: _State) -> Traffic:
    traffic = Traffic()
    for r in s.emulator.requests():
        traffic.requests += 1
        traffic.bytes += r.bytes_in + r.bytes_out
        kind = f"{r.method} {_kind(r.path)}"
        traffic.by_kind[kind] = traffic.by_kind.get(kind, 0) + 1
    return traffic


def _cmd_bitstream_count(s: _State, item: str) -> int:
    # only the DSpace 6 benchmarks (B5) count an item's bitstreams
    assert isinstance(s.emulator, DSpace6Emulator)
    return len(s.emulator.bitstreams_of(item))


def _cmd_wait_bitstreams(s: _State, item: str, n: int, timeout: float) -> bool:
    """Block until ``item`` holds ``n`` bitstreams (polled here, not over the pipe)."""
    assert isinstance(s.emulator, DSpace6Emulator)  # as in _cmd_bitstream_count
    deadline = time.monotonic() + timeout
    while len(s.emulator.bitstreams_of(item)) < n:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def _cmd_seed_visit_folder(s: _State, item: str, scale_down: int) -> tuple[list[str], int]:
    """B12's 60-file folder in ``item``, made here, and the media filter's thumbnails of it;
    returns the names that got one and the folder's size."""
    from tests.fuse import file_manager  # the visit's folder, shared with its acceptance test

    files = file_manager.make_folder(scale_down)
    for name, data in files.items():
        s.dspace.add_bitstream(item, name, data)
    s.dspace.filter_media(item)
    # both DSpace versions' default thumbnail filters take these of the folder's formats
    thumbnailed = [n for n in files if n.endswith((".pdf", ".png", ".jpg"))]
    return thumbnailed, sum(len(d) for d in files.values())


_COMMANDS: dict[str, Callable[..., Any]] = {
    name.removeprefix("_cmd_"): fn for name, fn in globals().items() if name.startswith("_cmd_")
}


def _serve(conn: Connection, latency_ms: float, kind: str) -> None:
    """Child process: serve the emulator on loopback and answer commands until ``stop``."""
    emulator: DSpace6Emulator | DSpace7Emulator | DocSpaceEmulator
    if kind == "dspace7":
        emulator = DSpace7Emulator(latency_ms=latency_ms, seed=1)
    elif kind == "docspace":
        # without the portal's request limiter: docfs paces itself to it (its default limits)
        # and so does the baseline, but the limiter's window would carry one run's requests
        # over into the next one's
        emulator = DocSpaceEmulator(latency_ms=latency_ms, seed=1, rate_limiting=False)
    else:
        emulator = DSpace6Emulator(latency_ms=latency_ms, seed=1)
    emulator.add_user(USER, PASSWORD, admin=True)
    state = _State(emulator)
    with EmulatorServer(emulator) as server:
        conn.send((server.url, os.getpid()))
        while True:
            name, kwargs = conn.recv()
            if name == "stop":
                conn.send(None)
                return
            try:
                conn.send(("ok", _COMMANDS[name](state, **kwargs)))
            except Exception as exc:  # reported to the harness, which raises it there
                conn.send(("error", f"{type(exc).__name__}: {exc}"))


class RemoteEmulator:
    """Handle on an emulator process; its methods are the benchmark's backdoor."""

    def __init__(self, latency_ms: float = 0.0, kind: str = "dspace6") -> None:
        """``kind``: the DSpace 6 emulator (most benchmarks), DSpace 7 (byte ranges) or
        DocSpace (B10)."""
        ctx = multiprocessing.get_context("spawn")
        self._conn, child = ctx.Pipe()
        self._proc = ctx.Process(target=_serve, args=(child, latency_ms, kind), daemon=True)
        self._proc.start()
        child.close()
        self.url, self.pid = self._conn.recv()
        self.kind = kind
        #: the DSpace 6 REST root (what ``Direct`` talks to)
        self.api = f"{self.url}/rest"
        #: what ``docfs mount`` is given
        self.remote = {"dspace7": f"dspace7:{self.url}", "docspace": f"docspace:{self.url}"}.get(
            kind, f"dspace6:{self.api}"
        )

    def call(self, name: str, /, **kwargs: Any) -> Any:
        self._conn.send((name, kwargs))
        status, value = self._conn.recv()
        if status == "error":
            raise RuntimeError(f"emulator command {name}: {value}")
        return value

    def make_blob(self, key: str, size: int, seed: int = 0) -> None:
        self.call("make_blob", key=key, size=size, seed=seed)

    def add_community(self, name: str) -> str:
        return str(self.call("add_community", name=name))

    def add_collection(self, name: str, community: str) -> str:
        return str(self.call("add_collection", name=name, community=community))

    def add_items(self, collection: str, titles: list[str]) -> list[str]:
        return list(self.call("add_items", collection=collection, titles=titles))

    def add_item(self, collection: str, title: str) -> str:
        return self.add_items(collection, [title])[0]

    def add_numbered_items(self, collection: str, prefix: str, n: int) -> None:
        self.call("add_numbered_items", collection=collection, prefix=prefix, n=n)

    def seed_walk(self, collection: str, n: int, seed: int = 10) -> int:
        """``n`` items of two small files each in ``collection``; returns their total size."""
        return int(self.call("seed_walk", collection=collection, n=n, seed=seed))

    def seed_walk_room(self, n: int, seed: int = 10) -> tuple[int, int]:
        """DocSpace: a room of ``n`` folders of two small files; its id and the files' size."""
        room, total = self.call("seed_walk_room", n=n, seed=seed)
        return int(room), int(total)

    def add_bitstream(self, item: str, name: str, blob: str) -> str:
        return str(self.call("add_bitstream", item=item, name=name, blob=blob))

    def set_latency(self, ms: float) -> None:
        self.call("set_latency", ms=ms)

    def set_bandwidth(self, per_second: float) -> None:
        """Pace every response body to this many bytes per second (0: unpaced)."""
        self.call("set_bandwidth", per_second=per_second)

    def clear_log(self) -> None:
        self.call("clear_log")

    def traffic(self) -> Traffic:
        value = self.call("traffic")
        assert isinstance(value, Traffic)
        return value

    def bitstream_count(self, item: str) -> int:
        return int(self.call("bitstream_count", item=item))

    def wait_bitstreams(self, item: str, n: int, timeout: float = 600.0) -> bool:
        return bool(self.call("wait_bitstreams", item=item, n=n, timeout=timeout))

    def cpu_seconds(self) -> float:
        from tests.bench.measure import cpu_seconds

        return cpu_seconds(self.pid)

    def close(self) -> None:
        if self._proc.is_alive():
            try:
                self._conn.send(("stop", {}))
                self._conn.recv()
            except (OSError, EOFError):
                pass
            self._proc.join(10)
            if self._proc.is_alive():
                self._proc.kill()
                self._proc.join(5)
        self._conn.close()

    def __enter__(self) -> RemoteEmulator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
