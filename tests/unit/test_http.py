"""The HTTP layer against a small real server on loopback: retries, limits, sessions, logs."""

from __future__ import annotations

import bisect
import errno
import functools
import logging
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio
import trio.testing
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from docfs import errors
from docfs.backends._http import (
    HttpClient,
    Limits,
    RetryPolicy,
    error_for_status,
    login_refused,
    parse_retry_after,
)
from docfs.backends.http_backend import HttpBackend
from docfs.daemon import MountConfig, build_backend
from docfs.emulators.base import Emulator, EmulatorServer
from docfs.redact import Redactor

BIG = bytes(range(256)) * 4096  # 1 MiB
SECRET = "s3cr3t-pa55word"
TOKEN = "tok-0123456789abcdef"


class Echo(Emulator):
    """A tiny server: plain answers, a streamed 1 MiB body, a login that issues a token."""

    name = "echo"

    def __init__(self) -> None:
        self.logins = 0
        self.valid_token: str | None = None
        self.concurrent = 0
        self.max_concurrent = 0
        super().__init__()

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/ok", self.ok, methods=["GET", "POST", "PUT"]),
            Route("/big", self.big),
            Route("/slow", self.slow),
            Route("/login", self.login, methods=["POST"]),
            Route("/private", self.private),
            Route("/status/{code:int}", self.status),
            Route("/cookie", self.cookie),
        ]

    async def ok(self, request: Request) -> Response:
        body = await request.body()
        return PlainTextResponse(f"ok {len(body)}")

    async def big(self, request: Request) -> Response:
        async def chunks() -> AsyncIterator[bytes]:
            for i in range(0, len(BIG), 65536):
                yield BIG[i : i + 65536]

        return StreamingResponse(chunks(), headers={"Content-Length": str(len(BIG))})

    async def slow(self, request: Request) -> Response:
        import anyio

        self.concurrent += 1
        self.max_concurrent = max(self.max_concurrent, self.concurrent)
        await anyio.sleep(0.1)
        self.concurrent -= 1
        return PlainTextResponse("slow")

    async def login(self, request: Request) -> Response:
        form = await request.form()
        if form.get("password") != SECRET:
            return PlainTextResponse("no", status_code=401)
        self.logins += 1
        self.valid_token = f"{TOKEN}{self.logins}"
        return PlainTextResponse(self.valid_token)

    async def private(self, request: Request) -> Response:
        if request.headers.get("authorization") != f"Bearer {self.valid_token}":
            return PlainTextResponse("expired", status_code=401)
        return PlainTextResponse("secret data")

    async def cookie(self, request: Request) -> Response:
        """Hands out a cookie and says which cookies came with the request."""
        answer = PlainTextResponse(request.headers.get("cookie", "(none)"))
        answer.set_cookie("sid", "server-chosen")
        return answer

    async def status(self, request: Request) -> Response:
        return PlainTextResponse("x", status_code=request.path_params["code"])


class TokenSession:
    def __init__(self, password: str) -> None:
        self.password = password
        self.token: str | None = None

    def apply(self, request: httpx.Request) -> None:
        if self.token:
            request.headers["Authorization"] = f"Bearer {self.token}"

    def needs_login(self) -> bool:
        return self.token is None

    async def login(self, http: HttpClient) -> None:
        response = await http.request(
            "POST",
            "/login",
            endpoint="login",
            data={"password": self.password},
            auth=False,
            status_map={401: errors.AuthenticationFailed},
        )
        self.token = response.text

    def expired(self, response: httpx.Response) -> bool:
        return response.status_code == 401

    def secrets(self) -> list[str]:
        return [s for s in (self.password, self.token) if s]


@pytest.fixture
def server() -> Iterator[EmulatorServer]:
    with EmulatorServer(Echo()) as srv:
        yield srv


def client(server: EmulatorServer, **limits: Any) -> HttpClient:
    return HttpClient(
        server.url,
        limits=Limits(**limits),
        retry=RetryPolicy(attempts=4, base=0.01, cap=0.05),
    )


def test_status_map_defaults_and_overrides() -> None:
    assert isinstance(error_for_status(404, "x"), errors.NotFound)
    assert isinstance(error_for_status(403, "x"), errors.PermissionDenied)
    assert isinstance(error_for_status(413, "x"), errors.TooLarge)
    assert isinstance(error_for_status(507, "x"), errors.QuotaExceeded)
    assert isinstance(error_for_status(502, "x"), errors.RemoteUnavailable)
    assert isinstance(error_for_status(500, "x", {500: errors.NotFound}), errors.NotFound)
    assert error_for_status(404, "x").errno == 2


def test_a_refused_login_says_what_to_fix_not_the_url() -> None:
    refused = error_for_status(401, "POST https://h/login: 401", {401: errors.AuthenticationFailed})
    error = login_refused("DSpace", "a@b.org", "wrong e-mail or password", refused)
    assert isinstance(error, errors.AuthenticationFailed)
    assert str(error) == "DSpace refused the login of a@b.org: wrong e-mail or password (HTTP 401)"
    assert error.status == 401


def test_parse_retry_after() -> None:
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after(None) is None
    assert parse_retry_after("garbage") is None
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0


async def test_two_503_with_retry_after_then_success(server: EmulatorServer) -> None:
    server.emulator.plan_fault(path="^/ok$", status=503, retry_after="1", times=2)
    http = client(server)
    started = trio.current_time()
    response = await http.request("GET", "/ok", endpoint="ok")
    assert response.text == "ok 0"
    assert trio.current_time() - started >= 1.9  # Retry-After was honoured twice
    assert [r.status for r in server.emulator.requests(path="^/ok$")] == [503, 503, 200]
    assert http.stats["ok"].retries == 2
    await http.aclose()


async def test_429_is_retried_even_for_post(server: EmulatorServer) -> None:
    server.emulator.plan_fault(method="POST", path="^/ok$", status=429, retry_after="0")
    http = client(server)
    response = await http.request("POST", "/ok", endpoint="ok", body=b"abc")
    assert response.text == "ok 3"
    assert len(server.emulator.requests("POST", "^/ok$")) == 2
    await http.aclose()


async def test_a_backends_final_error_stops_the_retries_at_once(server: EmulatorServer) -> None:
    # RSpace's upload quota answers 429 like a throttle: the backend says it is final
    def quota(response: httpx.Response, message: str) -> errors.DocfsError | None:
        if "X-Upload-Limit-Limit" in response.headers:
            return errors.DiskQuotaExceeded(message, status=response.status_code)
        return None

    server.emulator.plan_fault(
        method="POST", path="^/ok$", status=429, headers={"X-Upload-Limit-Limit": "1.0"}, times=3
    )
    http = client(server)
    http.final_error = quota
    with pytest.raises(errors.DiskQuotaExceeded) as refused:
        await http.request("POST", "/ok", endpoint="ok", body=b"abc")
    assert refused.value.errno == errno.EDQUOT and "HTTP 429" in str(refused.value)
    assert len(server.emulator.requests("POST", "^/ok$")) == 1
    server.emulator.clear_faults()
    # an ordinary 429 still goes to the retries
    server.emulator.plan_fault(method="POST", path="^/ok$", status=429, retry_after="0")
    assert (await http.request("POST", "/ok", endpoint="ok", body=b"abc")).status_code == 200
    await http.aclose()


async def test_500_is_retried_for_get_but_not_for_post(server: EmulatorServer) -> None:
    server.emulator.plan_fault(path="^/ok$", status=500, times=1)
    http = client(server)
    assert (await http.request("GET", "/ok", endpoint="ok")).status_code == 200
    server.emulator.plan_fault(method="POST", path="^/ok$", status=500, times=1)
    with pytest.raises(errors.RemoteUnavailable):
        await http.request("POST", "/ok", endpoint="ok", body=b"x")
    assert len(server.emulator.requests("POST")) == 1
    await http.aclose()


async def test_permanent_errors_are_not_retried(server: EmulatorServer) -> None:
    http = client(server)
    with pytest.raises(errors.NotFound):
        await http.request("GET", "/status/404", endpoint="s")
    with pytest.raises(errors.PermissionDenied):
        await http.request("GET", "/status/403", endpoint="s")
    assert len(server.emulator.requests(path="^/status")) == 2
    await http.aclose()


async def test_gives_up_after_the_attempts(server: EmulatorServer) -> None:
    server.emulator.plan_fault(path="^/ok$", status=503, times=None)
    http = client(server)
    with pytest.raises(errors.RemoteUnavailable):
        await http.request("GET", "/ok", endpoint="ok")
    assert len(server.emulator.requests(path="^/ok$")) == 4
    await http.aclose()


async def test_download_resumes_after_a_reset_mid_body(server: EmulatorServer) -> None:
    server.emulator.plan_fault(path="^/big$", reset_after=300_000)
    http = client(server)
    received = bytearray()

    async def sink(chunk: bytes) -> None:
        received.extend(chunk)

    n = await http.download("/big", sink, endpoint="big")
    assert n == len(BIG)
    assert bytes(received) == BIG
    assert len(server.emulator.requests(path="^/big$")) == 2
    await http.aclose()


async def test_download_of_a_byte_window_without_ranges(server: EmulatorServer) -> None:
    http = client(server)
    received = bytearray()

    async def sink(chunk: bytes) -> None:
        received.extend(chunk)

    await http.download("/big", sink, endpoint="big", start=100_000, end=100_100)
    assert bytes(received) == BIG[100_000:100_100]
    await http.aclose()


async def test_concurrency_cap(server: EmulatorServer) -> None:
    http = client(server, concurrency=2)
    async with trio.open_nursery() as nursery:
        for _ in range(6):
            nursery.start_soon(functools.partial(http.request, "GET", "/slow", endpoint="slow"))
    assert isinstance(server.emulator, Echo)
    assert server.emulator.max_concurrent == 2
    await http.aclose()


async def test_token_bucket_rate_limit(server: EmulatorServer) -> None:
    http = client(server, requests_per_second=20.0, burst=1)
    started = trio.current_time()
    for _ in range(6):
        await http.request("GET", "/ok", endpoint="ok")
    # 1 immediately, then 5 more at 20/s
    assert trio.current_time() - started >= 0.24
    await http.aclose()


async def test_session_login_and_relogin_once_on_expiry(
    server: EmulatorServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    http = client(server)
    session = TokenSession(SECRET)
    http.session = session
    assert (await http.request("GET", "/private", endpoint="p")).text == "secret data"
    emulator = server.emulator
    assert isinstance(emulator, Echo)
    emulator.valid_token = "something else"  # the server forgot our session
    assert (await http.request("GET", "/private", endpoint="p")).text == "secret data"
    assert emulator.logins == 2
    # no secret value reaches any log record
    assert SECRET not in caplog.text
    assert TOKEN not in caplog.text
    await http.aclose()


async def test_bad_credentials_are_final(server: EmulatorServer) -> None:
    http = client(server)
    http.session = TokenSession("wrong")
    with pytest.raises(errors.AuthenticationFailed):
        await http.request("GET", "/private", endpoint="p")
    assert len(server.emulator.requests(path="^/login$")) == 1
    await http.aclose()


async def test_connection_refused_is_remote_unavailable() -> None:
    http = HttpClient("http://127.0.0.1:9", retry=RetryPolicy(attempts=2, base=0.01, cap=0.01))
    with pytest.raises(errors.RemoteUnavailable):
        await http.request("GET", "/x", endpoint="x")
    await http.aclose()


async def test_downloads_are_received_in_a_worker_thread(
    server: EmulatorServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The body of a download is received off the trio thread, in batches that grow to 1 MiB."""
    import threading

    from docfs.backends import _threaded

    seen: set[str] = set()
    hand_over = _threaded._ThreadStream._hand_over

    def spy(self: _threaded._ThreadStream, batch: bytes) -> bool:
        seen.add(threading.current_thread().name)
        return hand_over(self, batch)

    http = client(server)
    sizes: list[int] = []

    async def sink(chunk: bytes) -> None:
        sizes.append(len(chunk))

    monkeypatch.setattr(_threaded._ThreadStream, "_hand_over", spy)
    try:
        assert await http.download("/big", sink, endpoint="big") == len(BIG)
        # a plain request stays on the trio thread's async transport
        await http.request("GET", "/ok", endpoint="ok")
    finally:
        monkeypatch.undo()
        await http.aclose()
    assert threading.current_thread().name not in seen and seen
    assert sum(sizes) == len(BIG)
    # the first read alone (a quick first byte; the server sends 64 KiB pieces), then batches
    # from 64 KiB growing: few hops for the rest (7 for this 1 MiB: within the first RAMP
    # bytes a batch must fit beside the buffer and grows only with what the reader took)
    assert sizes[0] <= 65536 and min(sizes[1:-1]) >= 65536 and len(sizes) <= 7


async def test_a_body_that_comes_with_the_headers_needs_no_receiving_thread(
    server: EmulatorServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading

    started: list[str] = []

    class Counted(threading.Thread):
        def start(self) -> None:
            if self.name == "docfs-receive":  # trio may start workers of its own meanwhile
                started.append(self.name)
            super().start()

    # _threaded starts its receiving thread through the stdlib's threading.Thread
    monkeypatch.setattr("docfs.backends._threaded.threading.Thread", Counted)
    http = client(server)
    got = bytearray()

    async def keep(chunk: bytes) -> None:
        got.extend(chunk)

    await http.download("/ok", keep, endpoint="ok")
    assert bytes(got) == b"ok 0" and started == []
    await http.download("/big", keep, endpoint="big")  # 1 MiB: more than the first read
    assert started == ["docfs-receive"]
    await http.aclose()


async def test_a_slow_reader_holds_the_receiving_thread_back(
    server: EmulatorServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the receiving thread reads ahead of the reader, but only BUFFER bytes: a reader that
    # cannot keep up must not make the daemon hold a whole big body in memory
    from docfs.backends import _threaded

    monkeypatch.setattr(_threaded, "BUFFER", 128 << 10)
    monkeypatch.setattr(_threaded, "MOST_BATCH", 64 << 10)
    most = 0
    hand_over = _threaded._ThreadStream._hand_over

    def spy(self: _threaded._ThreadStream, batch: bytes) -> bool:
        nonlocal most
        kept = hand_over(self, batch)
        most = max(most, self._buffered)
        return kept

    monkeypatch.setattr(_threaded._ThreadStream, "_hand_over", spy)
    http = client(server)
    got = bytearray()

    async def slow(chunk: bytes) -> None:
        got.extend(chunk)
        await trio.sleep(0.02)

    await http.download("/big", slow, endpoint="big")
    await http.aclose()
    assert bytes(got) == BIG
    assert 0 < most <= (128 + 64) << 10


async def test_a_reader_that_took_little_keeps_the_receiving_thread_close() -> None:
    # a file manager's sniff takes one read-ahead and stops. Until the reader has taken RAMP
    # bytes, the thread's buffer and its batches are each bounded by what the reader took, so
    # it holds at most twice that ahead; doubling both (as before) let it hold four times as
    # much, and under CPU load a 4 KiB sniff of a file without byte ranges cost 1.4 MiB
    from docfs.backends import _threaded

    chunk = 64 << 10

    class Endless(httpx.SyncByteStream):
        """A body that never ends, in exact 64 KiB pieces (as loopback gives them)."""

        closed = False

        def __iter__(self) -> Iterator[bytes]:
            while not self.closed:
                yield b"x" * chunk

        def close(self) -> None:
            self.closed = True

    body = Endless()
    stream = _threaded._ThreadStream(body, trio.lowlevel.current_trio_token())
    stream.start(None)
    got = 0
    async for piece in stream:
        got += len(piece)
        if got >= 128 << 10:
            break  # the reader pauses here; the thread runs on until it is bounded
    await trio.sleep(0.3)
    with stream._lock:
        taken, ahead = stream._taken, stream._received - stream._taken
    await stream.aclose()
    assert taken < _threaded.RAMP
    assert 0 < ahead <= 2 * max(_threaded.FIRST_BUFFER, taken), (taken, ahead)
    with trio.fail_after(5):
        while not body.closed:
            await trio.sleep(0.01)


async def test_a_reader_that_leaves_stops_the_receiving_thread(server: EmulatorServer) -> None:
    import threading

    def receiving() -> bool:
        return any(t.name == "docfs-receive" for t in threading.enumerate())

    server.emulator.bandwidth = 256 << 10  # the 1 MiB body would take 4 s
    http = client(server)
    got = bytearray()

    async def keep(chunk: bytes) -> None:
        got.extend(chunk)

    # the first 100 KiB, then the reader is gone (the server knows no ranges here)
    await http.download("/big", keep, endpoint="big", end=100 << 10)
    assert bytes(got) == BIG[: 100 << 10]
    with trio.fail_after(2):  # not the 3 s the rest of the body would take
        while receiving():
            await trio.sleep(0.02)
    server.emulator.bandwidth = 0
    got.clear()
    with trio.fail_after(10):
        await http.download("/big", keep, endpoint="big")
    assert bytes(got) == BIG
    await http.aclose()


async def test_a_cancelled_download_leaves_the_client_usable(server: EmulatorServer) -> None:
    server.emulator.plan_fault(path="^/big$", delay=0.5)
    http = client(server)

    async def sink(chunk: bytes) -> None:
        pass

    with trio.move_on_after(0.1) as scope:
        await http.download("/big", sink, endpoint="big")
    assert scope.cancelled_caught
    got = bytearray()

    async def keep(chunk: bytes) -> None:
        got.extend(chunk)

    with trio.fail_after(10):
        await http.download("/big", keep, endpoint="big")
    assert bytes(got) == BIG
    await http.aclose()


async def test_threaded_download_maps_error_statuses(server: EmulatorServer) -> None:
    http = client(server)

    async def sink(chunk: bytes) -> None:
        raise AssertionError("no body for an error")

    with pytest.raises(errors.NotFound):
        await http.download("/status/404", sink, endpoint="status")
    assert len(server.emulator.requests(path="^/status/404$")) == 1
    await http.aclose()


async def test_cookies_a_server_sets_are_not_sent_back(server: EmulatorServer) -> None:
    # sessions apply their own cookies: a jar would resend stale ones after a re-login
    http = client(server)
    first = await http.request("GET", "/cookie", endpoint="cookie")
    assert first.cookies.get("sid") == "server-chosen"  # a session can still read it
    second = await http.request("GET", "/cookie", endpoint="cookie", headers={"Cookie": "a=1"})
    assert second.text == "a=1"
    third = await http.request("GET", "/cookie", endpoint="cookie")
    assert third.text == "(none)"
    await http.aclose()


async def test_emulator_bandwidth_paces_each_answer_on_its_own(server: EmulatorServer) -> None:
    # the benchmarks' WAN model: every response body trickles at the set rate, and two
    # responses at once each get the whole rate (one TCP stream each, not a shared link)
    server.emulator.bandwidth = 8 << 20
    http = client(server)
    sizes: list[int] = []

    async def fetch() -> None:
        sizes.append(len((await http.request("GET", "/big", endpoint="big")).content))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(fetch)
        nursery.start_soon(fetch)
    await http.aclose()
    assert sizes == [len(BIG)] * 2
    first, second = server.emulator.log[-2:]
    for entry in (first, second):
        assert entry.end - entry.start >= 0.9 * len(BIG) / (8 << 20)
    overlap = min(first.end, second.end) - max(first.start, second.start)
    assert overlap >= 0.5 * (first.end - first.start)


async def test_a_configured_requests_per_minute_holds_in_every_rolling_minute(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    """Issue 18.7: ``requests_per_minute = 120`` became 2/s plus the class's burst of 10, so
    the first minute of a copy sent 130 requests and drew 429s. Timed on trio's clock (the
    test runs under a mock clock that jumps), so it takes no real minute."""
    config = MountConfig(
        remote_type="dspace6",
        url="http://127.0.0.1:9/rest",
        mountpoint=tmp_path,
        requests_per_second=120 / 60,
    )
    backend = build_backend(config, Redactor())
    assert isinstance(backend, HttpBackend)
    bucket = backend.http._bucket
    assert bucket is not None
    granted: list[float] = []
    with trio.move_on_after(200):
        while True:
            await bucket.acquire()
            granted.append(trio.current_time())
    assert len(granted) > 300
    for i, start in enumerate(granted):
        in_window = bisect.bisect_left(granted, start + 60.0) - i
        assert in_window <= 120, f"{in_window} requests in the minute from {start:.1f} s"
    await backend.http.aclose()


async def test_the_answer_to_an_upload_is_awaited_longer_the_bigger_it_is(
    server: EmulatorServer,
) -> None:
    """Issue 18.2: ``timeout`` is idle time per request; a server storing a big upload may be
    silent longer than that before it answers. A 2 MiB POST whose answer comes 1 s after its
    last byte is no timeout at ``timeout=0.5`` (0.5 s + 1 s per MiB)."""
    http = client(server, timeout=0.5)
    server.emulator.plan_fault(method="POST", path="^/ok$", hold=1.0)
    response = await http.request("POST", "/ok", endpoint="ok", body=b"x" * (2 << 20))
    assert response.text == f"ok {2 << 20}"
    # a small request keeps the plain timeout
    server.emulator.plan_fault(method="POST", path="^/ok$", hold=1.0)
    with pytest.raises(errors.RemoteUnavailable):
        await http.request("POST", "/ok", endpoint="ok", body=b"x")
    await http.aclose()
