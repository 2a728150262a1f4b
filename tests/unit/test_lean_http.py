"""The lean path for small request bodies (docfs/backends/_lean.py) against a bare HTTP/1.1
server on loopback whose every byte the test decides: reuse, idle closes, timeouts, chunked
answers and resets."""

from __future__ import annotations

import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import h11
import httpx
import pytest
import trio

from docfs import errors
from docfs.backends._http import HttpClient, Limits, RetryPolicy
from docfs.backends._lean import LEAN_BODY
from docfs.backends._threaded import ThreadingTransport
from docfs.emulators.base import EmulatorServer
from docfs.emulators.dspace6 import DSpace6Emulator
from tests.conftest import ADMIN


@dataclass
class Seen:
    """What the server saw: each request's method, target and body, and its connections."""

    requests: list[tuple[str, str, bytes]] = field(default_factory=list)
    connections: int = 0
    closed: int = 0
    closed_event: trio.Event = field(default_factory=trio.Event)


Answer = Callable[[trio.SocketStream, h11.Connection, int], Awaitable[bool]]


async def _request(stream: trio.SocketStream, conn: h11.Connection) -> tuple[h11.Request, bytes]:
    """Read one request (raises EOFError when the client closed the connection)."""
    request: h11.Request | None = None
    body = b""
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            data = await stream.receive_some(65536)
            if not data:
                raise EOFError
            conn.receive_data(data)
        elif isinstance(event, h11.Request):
            request = event
        elif isinstance(event, h11.Data):
            body += event.data
        elif isinstance(event, h11.EndOfMessage):
            assert request is not None
            return request, body
        elif isinstance(event, h11.ConnectionClosed):
            raise EOFError


async def ok(stream: trio.SocketStream, conn: h11.Connection, n: int) -> bool:
    """A keep-alive answer ``ok N``; the connection stays open."""
    text = f"ok {n}".encode()
    data = conn.send(h11.Response(status_code=200, headers=[("Content-Length", str(len(text)))]))
    await stream.send_all((data or b"") + (conn.send(h11.Data(data=text)) or b""))
    await stream.send_all(conn.send(h11.EndOfMessage()) or b"")
    return True


@asynccontextmanager
async def server(answer: Answer) -> AsyncIterator[tuple[str, Seen]]:
    """A loopback server answering each request with ``answer`` (False: close the connection)."""
    seen = Seen()

    async def handle(stream: trio.SocketStream) -> None:
        seen.connections += 1
        conn = h11.Connection(h11.SERVER)
        try:
            while True:
                try:
                    request, body = await _request(stream, conn)
                except EOFError:
                    return
                seen.requests.append((request.method.decode(), request.target.decode(), body))
                if not await answer(stream, conn, len(body)):
                    return
                conn.start_next_cycle()
        finally:
            await trio.aclose_forcefully(stream)
            seen.closed += 1
            seen.closed_event.set()

    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(partial(trio.serve_tcp, handle, 0, host="127.0.0.1"))
        port = listeners[0].socket.getsockname()[1]
        yield f"http://127.0.0.1:{port}", seen
        nursery.cancel_scope.cancel()


def client(url: str, timeout: float = 10.0) -> HttpClient:
    return HttpClient(
        url, limits=Limits(timeout=timeout), retry=RetryPolicy(attempts=3, base=0.01, cap=0.02)
    )


async def test_small_uploads_take_the_lean_path_on_one_kept_alive_connection() -> None:
    async with server(ok) as (url, seen):
        http = client(url)
        transport = http.client._transport
        assert isinstance(transport, ThreadingTransport)
        for i in range(3):
            response = await http.request(
                "POST",
                "/items/x/bitstreams",
                endpoint="upload",
                params={"name": f"f {i}&.bin"},
                body=bytes([i]) * 4096,
            )
            assert response.text == "ok 4096"
        # one connection for all three, and httpcore never saw them
        assert seen.connections == 1
        assert transport.lean_requests == 3
        assert [r[2][:1] for r in seen.requests] == [b"\0", b"\1", b"\2"]
        assert seen.requests[1][1] == "/items/x/bitstreams?name=f+1%26.bin"
        assert http.stats["upload"].bytes_sent == 3 * 4096
        # a body beyond LEAN_BODY still goes through httpcore
        response = await http.request("PUT", "/big", endpoint="big", body=b"b" * (LEAN_BODY + 1))
        assert response.text == f"ok {LEAN_BODY + 1}"
        assert transport.lean_requests == 3
        await http.aclose()


async def test_a_connection_the_server_closed_while_idle_is_not_used_again() -> None:
    async def answer_then_close(stream: trio.SocketStream, conn: h11.Connection, n: int) -> bool:
        await ok(stream, conn, n)
        return False  # closes without a "Connection: close" header, as an idle timeout does

    async with server(answer_then_close) as (url, seen):
        http = client(url)
        first = await http.request("POST", "/a", endpoint="a", body=b"1")
        await seen.closed_event.wait()
        # a POST is never sent twice: on the closed connection it would have failed for good
        second = await http.request("POST", "/a", endpoint="a", body=b"22")
        assert (first.text, second.text) == ("ok 1", "ok 2")
        assert seen.connections == 2
        await http.aclose()


async def test_no_answer_within_the_timeout_is_a_timeout_error() -> None:
    async def never(stream: trio.SocketStream, conn: h11.Connection, n: int) -> bool:
        await trio.sleep_forever()
        return False

    async with server(never) as (url, seen):
        http = client(url, timeout=0.3)
        with pytest.raises(
            errors.RemoteUnavailable, match="did not answer within the timeout"
        ) as e:
            await http.request("POST", "/slow", endpoint="slow", body=b"x")
        assert e.value.timed_out
        assert len(seen.requests) == 1  # a POST that may have been processed is not repeated
        await http.aclose()


async def test_a_chunked_answer_with_connection_close() -> None:
    async def chunked(stream: trio.SocketStream, conn: h11.Connection, n: int) -> bool:
        head = conn.send(h11.Response(status_code=201, headers=[("Connection", "close")]))
        await stream.send_all(head or b"")
        for part in (b'{"id": ', f"{n}".encode(), b"}"):
            await stream.send_all(conn.send(h11.Data(data=part)) or b"")
        await stream.send_all(conn.send(h11.EndOfMessage()) or b"")
        return False

    async with server(chunked) as (url, seen):
        http = client(url)
        for size in (3, 5):
            response = await http.request("POST", "/c", endpoint="c", body=b"z" * size)
            assert response.status_code == 201
            assert response.json() == {"id": size}
        assert seen.connections == 2
        await http.aclose()


async def test_a_body_that_comes_after_its_headers_is_streamed_and_the_connection_kept() -> None:
    big = bytes(range(256)) * 1024  # 256 KiB: more than one read

    async def late_body(stream: trio.SocketStream, conn: h11.Connection, n: int) -> bool:
        head = h11.Response(status_code=200, headers=[("Content-Length", str(len(big)))])
        await stream.send_all(conn.send(head) or b"")
        # the client has the headers alone: the body must come through the stream
        await trio.sleep(0.05)
        await stream.send_all(conn.send(h11.Data(data=big)) or b"")
        await stream.send_all(conn.send(h11.EndOfMessage()) or b"")
        return True

    async with server(late_body) as (url, seen):
        http = client(url)
        for _ in range(2):
            response = await http.request("POST", "/l", endpoint="l", body=b"q")
            assert response.content == big
        assert seen.connections == 1
        await http.aclose()


async def test_an_answer_with_80_kib_of_headers_is_taken_as_httpcore_takes_it() -> None:
    async def big_headers(stream: trio.SocketStream, conn: h11.Connection, n: int) -> bool:
        # more than one read's worth: h11's own limit (16 KiB) applies to headers in pieces
        cookies = [("Set-Cookie", f"c{i}={'v' * 1000}") for i in range(80)]
        head = h11.Response(status_code=200, headers=[("Content-Length", "2"), *cookies])
        await stream.send_all((conn.send(head) or b"") + (conn.send(h11.Data(data=b"ok")) or b""))
        await stream.send_all(conn.send(h11.EndOfMessage()) or b"")
        return True

    async with server(big_headers) as (url, _):
        http = client(url)
        response = await http.request("POST", "/h", endpoint="h", body=b"x")
        assert response.text == "ok" and len(response.headers.get_list("set-cookie")) == 80
        await http.aclose()


async def test_a_reset_mid_answer_is_retried_for_an_idempotent_request() -> None:
    async def cut_first(stream: trio.SocketStream, conn: h11.Connection, n: int) -> bool:
        if len(seen.requests) == 1:
            await stream.send_all(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npart")
            return False
        return await ok(stream, conn, n)

    async with server(cut_first) as (url, seen):
        http = client(url)
        response = await http.request("PUT", "/p", endpoint="p", body=b"abc")
        assert response.text == "ok 3"
        assert len(seen.requests) == 2
        assert http.stats["p"].retries == 1
        await http.aclose()


async def test_a_refused_connection_says_so() -> None:
    async with server(ok) as (url, _):
        pass  # the port is free again
    http = client(url)
    with pytest.raises(errors.RemoteUnavailable, match="connection refused"):
        await http.request("POST", "/a", endpoint="a", body=b"1")
    await http.aclose()


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/items/1/bitstreams", {"name": "a b+c&d=e/f%g?h#i ü.bin"}),
        ("/items/1/bitstreams", {"name": "x", "description": "ä & ö"}),
        ("/login", None),
        ("/a/b%20c", {"q": ""}),
    ],
)
async def test_the_url_built_in_one_piece_is_the_one_httpx_merges(
    path: str, params: dict[str, str] | None
) -> None:
    http = HttpClient("http://127.0.0.1:9/rest/")
    request, _ = http._build("POST", path, params, None, None, None, b"x")
    assert request.url == http.client.build_request("POST", path, params=params).url
    assert isinstance(request.url, httpx.URL)
    await http.aclose()


async def test_over_tls_the_certificate_is_checked_and_a_trusted_one_works(tmp_path: Path) -> None:
    """Small POSTs over https take the lean path too: an untrusted certificate is said as
    such (not retried), a CA bundle makes it trusted."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    request = ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2"]
    names = ["-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"]
    files = ["-keyout", str(key), "-out", str(cert)]
    subprocess.run([*request, *names, *files], check=True, capture_output=True)
    form = {"email": ADMIN[0], "password": ADMIN[1]}
    emulator = DSpace6Emulator()
    emulator.add_user(*ADMIN, admin=True)
    with EmulatorServer(emulator, certfile=str(cert), keyfile=str(key)) as server:
        untrusted = HttpClient(f"{server.url}/rest")
        with pytest.raises(errors.RemoteUnavailable, match="certificate is not trusted"):
            await untrusted.request("POST", "/login", endpoint="login", data=form, auth=False)
        assert untrusted.stats["login"].requests == 1
        await untrusted.aclose()
        trusted = HttpClient(f"{server.url}/rest", ca_bundle=cert)
        for _ in range(2):
            response = await trusted.request(
                "POST", "/login", endpoint="login", data=form, auth=False
            )
            assert response.cookies.get("JSESSIONID")
        transport = trusted.client._transport
        assert isinstance(transport, ThreadingTransport) and transport.lean_requests == 2
        await trusted.aclose()
