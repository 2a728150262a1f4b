"""``--bwlimit`` (issue 22.4): one byte budget for a mount's downloads and uploads.

Paced on trio's mock clock (the ``autojump_clock`` fixture jumps over every sleep): the times
asserted are the clock's, exact, and no test waits in real time for them.
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
import trio
import trio.testing

from docfs.backends._bandwidth import Bandwidth
from docfs.backends._http_body import COUNT_PIECE, CountingStream
from docfs.backends._threaded import _ThreadStream
from docfs.backends.http_backend import HttpBackend
from docfs.backends.traffic import EndpointStats
from docfs.cli import build_parser, format_status, helper_argv
from docfs.commands.source import _given
from docfs.config import Remote
from docfs.daemon import MountConfig, build_backend
from docfs.redact import Redactor

MiB = 1 << 20


async def chunks(total: int, size: int = MiB) -> AsyncIterator[bytes]:
    for start in range(0, total, size):
        yield b"x" * min(size, total - start)


async def test_an_upload_body_leaves_at_the_limit(autojump_clock: trio.testing.MockClock) -> None:
    bandwidth = Bandwidth(MiB, burst=COUNT_PIECE, clock=trio.current_time)
    body = CountingStream(chunks(4 * MiB), EndpointStats(), None, bandwidth)
    start = trio.current_time()
    handed: list[float] = []
    async for piece in body:
        assert len(piece) == COUNT_PIECE
        handed.append(trio.current_time() - start)
    # the first piece from the full bucket, then one piece per quarter second: 1 MiB/s
    assert handed == pytest.approx([k * 0.25 for k in range(16)])
    assert bandwidth.waits == 15 and bandwidth.waited == pytest.approx(handed[-1])


async def test_concurrent_transfers_share_one_rate(autojump_clock: trio.testing.MockClock) -> None:
    rate, piece = 512 << 10, 64 << 10
    bandwidth = Bandwidth(rate, burst=piece, clock=trio.current_time)
    start = trio.current_time()
    granted: list[tuple[float, str]] = []
    finished: dict[str, float] = {}

    async def transfer(name: str) -> None:
        for _ in range(20):
            await bandwidth.take(piece)
            granted.append((trio.current_time() - start, name))
        finished[name] = trio.current_time() - start

    async with trio.open_nursery() as nursery:
        nursery.start_soon(transfer, "download")
        nursery.start_soon(transfer, "upload")
    # together at the rate (after the burst) ...
    assert max(finished.values()) == pytest.approx((40 * piece - piece) / rate)
    # ... and in turns: neither waits for the other to finish
    assert min(finished.values()) >= max(finished.values()) - 2 * piece / rate
    # in no stretch of time did more than the burst plus the rate go
    for i, (t0, _) in enumerate(granted):
        for j in range(i, len(granted)):
            t1 = granted[j][0]
            assert (j - i + 1) * piece <= piece + rate * (t1 - t0) + 1e-6


async def test_a_receiving_thread_and_an_upload_draw_from_one_budget(
    autojump_clock: trio.testing.MockClock,
) -> None:
    bandwidth = Bandwidth(MiB, burst=64 << 10, clock=trio.current_time)
    # what a download's receiving thread does with 1 MiB it has just read (see _threaded.py)
    paused: list[float] = []
    bandwidth.take_blocking(MiB, paused.append)
    assert paused == [pytest.approx((MiB - (64 << 10)) / MiB)]
    # an upload starting now waits behind the download's share
    start = trio.current_time()
    await bandwidth.take(MiB // 2)
    assert trio.current_time() - start == pytest.approx(paused[0] + 0.5)


async def test_an_idle_bucket_refills_to_its_burst_only(
    autojump_clock: trio.testing.MockClock,
) -> None:
    bandwidth = Bandwidth(2 * MiB, clock=trio.current_time)
    assert bandwidth.burst == 2 * MiB / 8  # an eighth of a second at the rate
    await bandwidth.take(4 * MiB)
    await trio.sleep(3600)  # a long pause saves up no more than the burst
    start = trio.current_time()
    await bandwidth.take(4 * MiB)
    assert trio.current_time() - start == pytest.approx((4 * MiB - bandwidth.burst) / (2 * MiB))


class _Body(httpx.SyncByteStream):
    def __init__(self, parts: list[bytes]) -> None:
        self.parts = parts
        self.closed = threading.Event()

    def __iter__(self) -> Iterator[bytes]:
        yield from self.parts

    def close(self) -> None:
        self.closed.set()


class _Counting(Bandwidth):
    def __init__(self, delay: float) -> None:
        super().__init__(MiB)
        self.delay = delay
        self.charged: list[int] = []

    def reserve(self, size: int) -> float:
        self.charged.append(size)
        return self.delay


async def test_the_receiving_thread_charges_every_byte_it_reads() -> None:
    body = _Body([b"a" * 1000, b"b" * 70_000, b"c" * 5])
    bandwidth = _Counting(0.0)
    stream = _ThreadStream(body, trio.lowlevel.current_trio_token(), bandwidth)
    await trio.to_thread.run_sync(stream.start, None)
    got = b"".join([chunk async for chunk in stream])
    assert got == b"".join(body.parts)
    assert bandwidth.charged == [1000, 70_000, 5]


async def test_a_reader_that_leaves_ends_the_receiving_threads_wait() -> None:
    body = _Body([b"a" * 1000, b"b" * 1000])
    # an hour's wait for the first chunk's share: only the reader's leaving ends it
    stream = _ThreadStream(body, trio.lowlevel.current_trio_token(), _Counting(3600.0))
    starting = threading.Thread(target=stream.start, args=(None,), daemon=True)
    starting.start()
    with trio.fail_after(60):  # a guard against a hang, not a measurement
        while not stream._bandwidth or not stream._bandwidth.charged:  # type: ignore[attr-defined]
            await trio.sleep(0.01)
        await stream.aclose()
        await trio.to_thread.run_sync(starting.join)
    assert not starting.is_alive()


def test_bwlimit_from_flag_helper_option_and_config(tmp_path: Path) -> None:
    parser = build_parser()
    args = parser.parse_args(["mount", "x:y", str(tmp_path), "--bwlimit", "2M"])
    remote = Remote(name="", type="dspace6", url="http://h")
    assert _given(args, remote, "bwlimit") == 2 * MiB
    helper = parser.parse_args(helper_argv(["x:y", str(tmp_path), "-o", "bwlimit=500K"]))
    assert _given(helper, remote, "bwlimit") == 500 << 10
    configured = Remote(name="r", type="dspace6", url="http://h", bwlimit=MiB)
    assert _given(parser.parse_args(["mount", "x:y", str(tmp_path)]), configured, "bwlimit") == MiB


async def test_the_mount_builds_one_bucket_and_status_shows_it(tmp_path: Path) -> None:
    config = MountConfig("dspace6", "http://127.0.0.1:9/rest", tmp_path, bwlimit=2 * MiB)
    backend = build_backend(config, Redactor())
    assert isinstance(backend, HttpBackend)
    bandwidth = backend.http.bandwidth
    assert bandwidth is not None and bandwidth.rate == 2 * MiB
    # the same bucket paces the downloads' receiving threads
    assert backend.http.client._transport._bandwidth is bandwidth  # type: ignore[attr-defined]
    traffic = backend.traffic()
    assert traffic.bandwidth_limit == 2 * MiB
    await backend.http.aclose()
    unlimited = build_backend(MountConfig("dspace6", "http://h/rest", tmp_path), Redactor())
    assert isinstance(unlimited, HttpBackend) and unlimited.http.bandwidth is None
    await unlimited.http.aclose()

    report = {
        "mountpoint": "/m",
        "remote": "dspace6:http://h/rest",
        "pid": 1,
        "uptime": 1.0,
        "cache": {"used": 0, "limit": 1},
        "requests": {"total": 0, "errors": 0, "retries": 0, "endpoints": {}},
        "rate_limit": {"waits": 0, "seconds": 0.0},
        "bandwidth": {"limit": 2 * MiB, "waits": 3, "seconds": 1.5},
        "uploads": {"pending": 0, "uploaded": 0},
    }
    assert "  bwlimit   2.0 MiB/s for downloads and uploads together; waits 3 (1.5 s)" in (
        format_status(report)
    )
