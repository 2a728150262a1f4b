"""The fault proxy itself: clean traffic passes byte-identical, and each fault is what it says.

An upstream emulator with four endpoints (store a body, answer a streamed or a sized body of
any length, answer nothing) stands behind ``FaultProxy``; an httpx client with retries off
talks to the proxy, and what the client saw is checked against what the server's request log
and store say and what the proxy counted.
"""

from __future__ import annotations

import contextlib
import hashlib
import socket
import time
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from docfs.emulators.base import Emulator, EmulatorServer
from tests.reliability.faultproxy import READS, WRITES, FaultProxy, Rule, endpoint
from tests.reliability.util import wait_for

MiB = 1 << 20


def blob(size: int) -> bytes:
    """``size`` reproducible bytes that are not a repeating short pattern."""
    out = bytearray()
    n = 0
    while len(out) < size:
        out += hashlib.sha256(b"%d" % n).digest()
        n += 1
    return bytes(out[:size])


class Echo(Emulator):
    """Stores the bodies sent to ``/store/{name}``; answers ``/chunked/N`` and ``/sized/N``."""

    name = "echo"

    def __init__(self) -> None:
        super().__init__()
        self.stored: dict[str, bytes] = {}

    def routes(self) -> list[BaseRoute]:
        async def store(request: Request) -> Response:
            body = await request.body()
            self.stored[request.path_params["name"]] = body
            return JSONResponse({"size": len(body), "sha256": hashlib.sha256(body).hexdigest()})

        async def chunked(request: Request) -> Response:
            data = blob(int(request.path_params["size"]))

            async def pieces() -> AsyncIterator[bytes]:
                for at in range(0, len(data), 50_000):
                    yield data[at : at + 50_000]

            return StreamingResponse(pieces(), media_type="application/octet-stream")

        async def sized(request: Request) -> Response:
            return Response(blob(int(request.path_params["size"])))

        async def empty(request: Request) -> Response:
            return Response(status_code=204)

        return [
            Route("/store/{name}", store, methods=["POST", "PUT"]),
            Route("/chunked/{size:int}", chunked),
            Route("/sized/{size:int}", sized, methods=["GET", "HEAD"]),
            Route("/empty", empty, methods=["DELETE"]),
        ]


@pytest.fixture
def echo() -> Iterator[EmulatorServer]:
    with EmulatorServer(Echo()) as server:
        yield server


def store_of(server: EmulatorServer) -> dict[str, bytes]:
    assert isinstance(server.emulator, Echo)
    return server.emulator.stored


def everything() -> list[Rule]:
    return [Rule(WRITES | READS, rate=1.0)]


def finished(proxy: FaultProxy, count: int) -> bool:
    """The proxy has dealt with ``count`` requests completely."""
    return len(proxy.requests()) >= count and all(r.end for r in proxy.requests())


def test_clean_traffic_passes_byte_identical_over_one_kept_alive_connection(
    echo: EmulatorServer,
) -> None:
    big = blob(8 * MiB)
    with FaultProxy(echo.url) as proxy, httpx.Client(base_url=proxy.url, timeout=30) as client:
        # Content-Length bodies and a chunked one (a generator has no length), both ways
        sized = client.post("/store/sized", content=big)
        assert sized.json() == {"size": len(big), "sha256": hashlib.sha256(big).hexdigest()}
        streamed = client.put(
            "/store/streamed",
            content=(big[at : at + 100_000] for at in range(0, len(big), 100_000)),
        )
        assert streamed.status_code == 200
        assert client.get(f"/chunked/{8 * MiB}").content == big
        assert client.get(f"/sized/{8 * MiB}").content == big
        head = client.head("/sized/1000")
        assert head.headers["content-length"] == "1000" and head.content == b""
        assert client.delete("/empty").status_code == 204
        for n in (0, 1, 8191, 8193):
            assert client.get(f"/chunked/{n}").content == blob(n)
    assert store_of(echo) == {"sized": big, "streamed": big}
    assert proxy.injected == {}
    assert len(proxy.requests()) == 10
    assert proxy.connections == 1  # kept alive through every body and framing
    assert all(r.forwarded and r.status == r.upstream_status for r in proxy.requests())
    assert [r.endpoint for r in proxy.requests()][:2] == [
        "POST /store/sized",
        "PUT /store/streamed",
    ]


def test_a_status_fault_answers_without_reaching_the_server(echo: EmulatorServer) -> None:
    proxy = FaultProxy(
        echo.url, everything(), weights={"status": 1}, statuses=((503, "1"),), max_streak=None
    )
    with proxy, httpx.Client(base_url=proxy.url) as client:
        answer = client.post("/store/a", content=b"x" * 5000)
        assert answer.status_code == 503 and answer.headers["retry-after"] == "1"
        again = client.post("/store/b", content=b"y")  # the connection is still usable
        assert again.status_code == 503
    assert store_of(echo) == {}
    assert echo.emulator.requests() == []
    assert proxy.injected == {"status 503 Retry-After 1": 2}
    assert proxy.connections == 1


def test_stall_pass_lands_the_request_after_the_client_gave_up(echo: EmulatorServer) -> None:
    proxy = FaultProxy(echo.url, everything(), weights={"stall_pass": 1}, stall=1.5)
    with proxy, httpx.Client(base_url=proxy.url, timeout=0.5) as client:
        with pytest.raises(httpx.ReadTimeout):
            client.post("/store/late", content=b"late bytes")
        gave_up = time.monotonic()
        wait_for(lambda: "late" in store_of(echo), limit=10)
    (logged,) = echo.emulator.requests("POST")
    assert logged.start > gave_up  # the server saw it only after the client's timeout
    assert store_of(echo) == {"late": b"late bytes"}
    assert proxy.injected == {"stall_pass": 1}


def test_stall_drop_never_reaches_the_server(echo: EmulatorServer) -> None:
    proxy = FaultProxy(echo.url, everything(), weights={"stall_drop": 1}, stall=30)
    with proxy, httpx.Client(base_url=proxy.url, timeout=0.5) as client:
        started = time.monotonic()
        with pytest.raises(httpx.ReadTimeout):
            client.post("/store/dropped", content=b"never")
    # the client's close ends the stall: no waiting out the 30 s
    wait_for(lambda: finished(proxy, 1), limit=10)
    (entry,) = proxy.requests()
    assert entry.end - started < 30
    assert not entry.forwarded and echo.emulator.requests() == []
    assert proxy.injected == {"stall_drop": 1}


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_reset_request_cuts_the_body_halfway(echo: EmulatorServer, chunked: bool) -> None:
    data = blob(MiB)
    body = (data[at : at + 65536] for at in range(0, len(data), 65536)) if chunked else data
    proxy = FaultProxy(echo.url, everything(), weights={"reset_request": 1})
    with proxy, httpx.Client(base_url=proxy.url, timeout=10) as client:
        with pytest.raises(httpx.TransportError):
            client.post("/store/cut", content=body)
        wait_for(lambda: finished(proxy, 1))
    (entry,) = proxy.requests()
    assert not entry.forwarded
    # Content-Length: half the body; chunked: the first chunk's line and half its data
    assert entry.request_bytes == (len("10000\r\n") + 32768 if chunked else len(data) // 2)
    assert store_of(echo) == {}
    assert all(r.bytes_in < len(data) for r in echo.emulator.requests())


def test_reset_request_without_a_body_sends_half_a_head(echo: EmulatorServer) -> None:
    proxy = FaultProxy(echo.url, everything(), weights={"reset_request": 1})
    with proxy, httpx.Client(base_url=proxy.url, timeout=10) as client:
        with pytest.raises(httpx.TransportError):
            client.delete("/empty")
        wait_for(lambda: finished(proxy, 1))
    assert echo.emulator.requests() == []  # half a head is no request


@pytest.mark.parametrize("path", ["/sized/100000", "/chunked/100000", "/empty"])
def test_reset_response_cuts_the_answer_after_the_server_answered(
    echo: EmulatorServer, path: str
) -> None:
    proxy = FaultProxy(echo.url, everything(), weights={"reset_response": 1})
    method = "DELETE" if path == "/empty" else "GET"
    with proxy, httpx.Client(base_url=proxy.url, timeout=10) as client:
        with pytest.raises(httpx.TransportError):
            client.request(method, path)
        wait_for(lambda: finished(proxy, 1))
    (entry,) = proxy.requests()
    assert entry.forwarded and entry.upstream_status in (200, 204)
    (logged,) = echo.emulator.requests(method, path)
    assert logged.status == entry.upstream_status
    if method == "GET":
        assert 0 < entry.response_bytes < 100_000  # part of the body went out, not all


def test_lost_answer_is_processed_but_never_answered(echo: EmulatorServer) -> None:
    proxy = FaultProxy(echo.url, everything(), weights={"lost_answer": 1})
    with proxy, httpx.Client(base_url=proxy.url, timeout=10) as client:
        with pytest.raises(httpx.TransportError):
            client.post("/store/kept", content=b"stored all the same")
        wait_for(lambda: finished(proxy, 1))
    assert store_of(echo) == {"kept": b"stored all the same"}
    (entry,) = proxy.requests()
    assert entry.forwarded and entry.upstream_status == 200 and entry.status == 0


def test_the_rate_is_seeded_and_every_fault_is_counted(echo: EmulatorServer) -> None:
    def run(seed: int) -> list[int]:
        proxy = FaultProxy(
            echo.url,
            [Rule(READS, rate=0.2)],
            weights={"status": 1},
            statuses=((500, None),),
            seed=seed,
        )
        with proxy, httpx.Client(base_url=proxy.url) as client:
            seen = [client.get(f"/sized/{n}").status_code for n in range(200)]
        assert seen.count(500) == proxy.injected["status 500"] == len(proxy.faulted())
        assert [r.path for r in proxy.faulted()] == [
            f"/sized/{n}" for n, status in enumerate(seen) if status == 500
        ]
        return seen

    first = run(seed=7)
    assert 20 <= first.count(500) <= 60  # about a fifth of 200
    assert run(seed=7) == first  # the same seed, the same faults
    assert run(seed=8) != first


def test_max_streak_and_cover(echo: EmulatorServer) -> None:
    proxy = FaultProxy(
        echo.url,
        [Rule(WRITES, rate=0.0, cover=True), Rule(READS, rate=1.0)],
        weights={"status": 1},
        statuses=((500, None),),
        max_streak=2,
    )
    with proxy, httpx.Client(base_url=proxy.url) as client:
        reads = [client.get("/sized/5").status_code for _ in range(6)]
        # rate 0 with cover: only the first request of each endpoint is hit
        writes = [client.post(f"/store/{n}", content=b"").status_code for n in (1, 2, 3)]
        other = client.put("/store/4", content=b"").status_code
    assert reads == [500, 500, 200, 500, 500, 200]  # never more than 2 in a row
    assert writes == [500, 200, 200]
    assert other == 500  # another method is another endpoint
    assert endpoint("POST", "/store/17/x") == "POST /store/{id}/x"


@pytest.mark.parametrize("upstream", ["http://10.1.2.3:80", "http://192.0.2.1:8080"])
def test_only_loopback_upstreams(upstream: str) -> None:
    with pytest.raises(ValueError, match="loopback"):
        FaultProxy(upstream)


def test_stop_ends_stalls_at_once_and_the_lifetime_stops_it(echo: EmulatorServer) -> None:
    proxy = FaultProxy(echo.url, everything(), weights={"stall_pass": 1}, stall=600).start()
    with socket.create_connection(("127.0.0.1", proxy.port)) as sock:
        sock.sendall(b"POST /store/x HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\n\r\nx")
        wait_for(lambda: proxy.injected["stall_pass"] == 1)
        started = time.monotonic()
        proxy.stop()
        assert time.monotonic() - started < 5 and not proxy.running
    assert store_of(echo) == {}  # a stopped stall passes nothing on

    timed = FaultProxy(echo.url, lifetime=0.3).start()
    wait_for(lambda: not timed.running, limit=10)
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", timed.port), timeout=2)


def test_each_kind_first(echo: EmulatorServer) -> None:
    # status weighs 5 to 1: without each_kind_first, three draws would mostly be statuses
    weights = {"status": 5.0, "lost_answer": 1.0, "reset_response": 1.0}
    proxy = FaultProxy(
        echo.url, everything(), weights=weights, each_kind_first=True, max_streak=None
    )
    with proxy, httpx.Client(base_url=proxy.url) as client:
        for n in range(3):
            with contextlib.suppress(httpx.TransportError):
                client.get(f"/sized/{n + 10}")
    kinds = sorted(str(r.fault).split()[0] for r in proxy.faulted())
    assert kinds == ["lost_answer", "reset_response", "status"]
