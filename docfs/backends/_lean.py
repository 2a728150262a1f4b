"""Small request bodies on a bare HTTP/1.1 connection (h11 over a trio stream).

A 4 KiB upload through httpcore cost the daemon ~1.1 ms of CPU, most of it in httpcore's layers
(pool bookkeeping, one socket write for the headers and another for the body, events read one
by one through its backend), while the same request written by hand costs ~0.2-0.3 ms. For
``cp -r`` of many small files that overhead was the largest part of the time (issue 24, B5).

So requests whose body is known and small (``LEAN_BODY``: uploads of small files, logins,
JSON updates) skip httpcore: ``LeanPool`` writes the request in one ``send`` on a kept-alive
connection of its own and parses the answer with h11 (the HTTP/1.1 state machine httpcore uses
too). It sits below ``httpx.AsyncClient``: redirects, the origin check, sessions, retries,
rate limits, byte counting and the status → errno mapping of ``HttpClient`` are unchanged. Its
failures are httpx's transport errors (``ConnectError``, ``ReadTimeout``, ``RemoteProtocolError``
…) chained to their cause, so ``HttpClient`` words and retries them as it does httpcore's. All
other requests (downloads, listings, streamed bodies) still go through httpcore.
"""

from __future__ import annotations

import logging
import math
import select
import ssl
import time
from collections.abc import AsyncIterator
from typing import Any

import h11
import httpx
import trio

from docfs.redact import redact_url

#: ``-v http`` shows each lean exchange with its answer's headers, as ``-v httpcore`` shows
#: httpcore's; only the values of ``SHOWN`` headers: a login's answer carries the session's
#: token (DSpace 7 ``Authorization``, DSpace 6 ``Set-Cookie``), and docfs's own log never
#: holds a secret, whatever handler or filter it goes through
log = logging.getLogger("docfs.http.lean")
SHOWN = frozenset(
    {
        b"content-type",
        b"content-length",
        b"content-disposition",
        b"date",
        b"server",
        b"etag",
        b"last-modified",
        b"retry-after",
        b"connection",
        b"transfer-encoding",
    }
)

#: request bodies up to this size (with a Content-Length) take the lean path
LEAN_BODY = 64 << 10
#: an idle connection older than this is closed instead of reused (httpx's default too): a
#: server drops idle connections after its own timeout, and a request sent on a connection
#: the server is closing at that moment fails without an answer
KEEPALIVE = 5.0
#: idle connections kept per server (the client's concurrency cap bounds those in use)
MOST_IDLE = 16
#: bytes asked of the socket per read
READ_SIZE = 64 << 10
#: the most an answer's status line and headers may take (httpcore's limit; h11's own default
#: of 16 KiB would refuse a server with many or long cookies that httpcore accepts)
HEADERS_MAX = 100 << 10

Origin = tuple[str, str, int]


class _Connection:
    """One kept-alive connection: a trio stream and its h11 state."""

    def __init__(self, stream: trio.abc.Stream, sock: trio.socket.SocketType) -> None:
        self.stream = stream
        self.socket = sock
        self.h11 = h11.Connection(h11.CLIENT, max_incomplete_event_size=HEADERS_MAX)
        self.idle_since = 0.0

    def reusable(self) -> bool:
        """Still open on our side and the server's: an idle connection has nothing to read,
        so anything readable (EOF, or bytes nobody asked for) means it is done with."""
        if time.monotonic() - self.idle_since > KEEPALIVE:
            return False
        fd = self.socket.fileno()
        if fd < 0:
            return False
        poll = select.poll()
        poll.register(fd, select.POLLIN)
        # readable while idle: EOF, or bytes nobody asked for; either way it is done with
        return not poll.poll(0)

    async def close(self) -> None:
        await trio.aclose_forcefully(self.stream)


def _seconds(timeouts: dict[str, Any], key: str) -> float:
    value = timeouts.get(key)
    return math.inf if value is None else float(value)


class LeanPool:
    """Kept-alive connections for small requests, per server (see the module's docstring)."""

    def __init__(self, verify: ssl.SSLContext | bool) -> None:
        self._tls: ssl.SSLContext | None = None
        if isinstance(verify, ssl.SSLContext):
            self._tls = verify
        elif verify:
            self._tls = ssl.create_default_context()
        else:
            self._tls = ssl.create_default_context()
            self._tls.check_hostname = False
            self._tls.verify_mode = ssl.CERT_NONE
        self._idle: dict[Origin, list[_Connection]] = {}
        #: requests sent this way (tests tell by it which path a request took)
        self.requests = 0

    @staticmethod
    def takes(request: httpx.Request) -> bool:
        """True for a request whose body has a Content-Length of at most ``LEAN_BODY``."""
        length = request.headers.get("Content-Length")
        return (
            length is not None
            and length.isdigit()
            and 0 < int(length) <= LEAN_BODY
            and request.url.scheme in ("http", "https")
        )

    async def handle(self, request: httpx.Request) -> httpx.Response:
        timeouts: dict[str, Any] = request.extensions.get("timeout", {})
        url = request.url
        port = url.port or (443 if url.scheme == "https" else 80)
        where: Origin = (url.scheme, url.host, port)
        body = b"".join([chunk async for chunk in request.stream])  # type: ignore[union-attr]
        self.requests += 1
        conn = self._reuse(where) or await self._connect(where, _seconds(timeouts, "connect"))
        phase = "write"
        try:
            try:
                data = conn.h11.send(
                    h11.Request(
                        method=request.method, target=url.raw_path, headers=request.headers.raw
                    )
                )
                data = (data or b"") + (conn.h11.send(h11.Data(data=body)) or b"")
                data += conn.h11.send(h11.EndOfMessage()) or b""
            except h11.LocalProtocolError as exc:
                raise httpx.LocalProtocolError(str(exc)) from exc
            with trio.fail_after(_seconds(timeouts, "write")):
                await conn.stream.send_all(data)
            phase = "read"
            event = await _next(conn, _seconds(timeouts, "read"))
            while isinstance(event, h11.InformationalResponse):
                event = await _next(conn, _seconds(timeouts, "read"))
            if not isinstance(event, h11.Response):
                raise httpx.RemoteProtocolError(
                    "the server closed the connection without an answer"
                )
        except BaseException as exc:
            await conn.close()
            translated = _translated(exc, phase)
            if translated is exc:
                raise
            raise translated from exc
        if log.isEnabledFor(logging.DEBUG):
            log.debug(
                "%s %s -> %d %s",
                request.method,
                redact_url(str(url)),
                event.status_code,
                [(n, v if n.lower() in SHOWN else b"...") for n, v in event.headers.raw_items()],
            )
        extensions = {
            "http_version": b"HTTP/" + event.http_version,
            "reason_phrase": event.reason,
        }
        try:
            # a small answer usually came whole with its headers: taken at once, the
            # connection goes back to the pool now and no stream is read piece by piece
            chunks, complete = _buffered(conn)
        except BaseException as exc:
            await conn.close()
            translated = _translated(exc, "read")
            if translated is exc:
                raise
            raise translated from exc
        if complete:
            self.release(where, conn)
            response = httpx.Response(
                event.status_code,
                headers=event.headers.raw_items(),
                content=b"".join(chunks),
                extensions=extensions,
            )
            if not any(name == b"content-length" for name, _ in event.headers):
                # httpx adds a Content-Length for content given here; the server sent none
                del response.headers["Content-Length"]
            return response
        return httpx.Response(
            event.status_code,
            headers=event.headers.raw_items(),
            stream=_Body(self, where, conn, _seconds(timeouts, "read"), chunks),
            extensions=extensions,
        )

    def _reuse(self, where: Origin) -> _Connection | None:
        idle = self._idle.get(where)
        while idle:
            conn = idle.pop()
            if conn.reusable():
                return conn
            # closing a plain socket needs no await; a TLS one is dropped the same way
            conn.socket.close()
        return None

    async def _connect(self, where: Origin, timeout: float) -> _Connection:
        scheme, host, port = where
        try:
            with trio.fail_after(timeout):
                tcp = await trio.open_tcp_stream(host, port)
                stream: trio.abc.Stream = tcp
                if scheme == "https":
                    assert self._tls is not None
                    tls = trio.SSLStream(
                        tcp, self._tls, server_hostname=host, https_compatible=True
                    )
                    try:
                        await tls.do_handshake()
                    except BaseException:
                        await trio.aclose_forcefully(tcp)
                        raise
                    stream = tls
        except trio.TooSlowError as exc:
            raise httpx.ConnectTimeout("no connection within the timeout") from exc
        except (OSError, trio.BrokenResourceError, ssl.SSLError) as exc:
            raise httpx.ConnectError(str(exc) or type(exc).__name__) from exc
        return _Connection(stream, tcp.socket)

    def release(self, where: Origin, conn: _Connection) -> None:
        """A connection whose answer was read to its end goes back to the idle ones, unless
        the exchange leaves it unusable (the server said ``Connection: close``)."""
        if conn.h11.our_state is not h11.DONE or conn.h11.their_state is not h11.DONE:
            conn.socket.close()
            return
        conn.h11.start_next_cycle()
        conn.idle_since = time.monotonic()
        idle = self._idle.setdefault(where, [])
        if len(idle) >= MOST_IDLE:
            conn.socket.close()
            return
        idle.append(conn)

    async def aclose(self) -> None:
        idle, self._idle = self._idle, {}
        for conns in idle.values():
            for conn in conns:
                await conn.close()


def _buffered(conn: _Connection) -> tuple[list[bytes], bool]:
    """The body bytes h11 already holds, and whether they are the whole body (errors
    untranslated)."""
    chunks: list[bytes] = []
    while True:
        event = conn.h11.next_event()
        if isinstance(event, h11.Data):
            chunks.append(bytes(event.data))
        elif isinstance(event, h11.EndOfMessage):
            return chunks, True
        elif event is h11.NEED_DATA:
            return chunks, False
        else:
            raise httpx.RemoteProtocolError("the server closed the connection mid-answer")


async def _next(conn: _Connection, read_timeout: float) -> Any:
    """The next h11 event, reading from the socket as h11 asks (errors untranslated)."""
    while True:
        event = conn.h11.next_event()
        if event is not h11.NEED_DATA:
            return event
        with trio.fail_after(read_timeout):
            data = await conn.stream.receive_some(READ_SIZE)
        conn.h11.receive_data(bytes(data))


def _translated(exc: BaseException, phase: str) -> BaseException:
    """httpx's transport error for a failure of the lean path; other exceptions unchanged."""
    if isinstance(exc, httpx.TransportError):
        return exc
    if isinstance(exc, trio.TooSlowError):
        if phase == "write":
            return httpx.WriteTimeout("the server took no bytes within the timeout")
        return httpx.ReadTimeout("no answer within the timeout")
    if isinstance(exc, h11.RemoteProtocolError):
        return httpx.RemoteProtocolError(str(exc))
    if isinstance(exc, h11.LocalProtocolError):
        return httpx.LocalProtocolError(str(exc))
    if isinstance(exc, OSError | trio.BrokenResourceError | trio.ClosedResourceError):
        return httpx.ReadError(str(exc) or type(exc).__name__)
    return exc


class _Body(httpx.AsyncByteStream):
    """The answer's body, read from the connection as it is asked for; a body read to its end
    gives the connection back to the pool, anything else closes it."""

    def __init__(
        self,
        pool: LeanPool,
        where: Origin,
        conn: _Connection,
        timeout: float,
        first: list[bytes],
    ) -> None:
        self._pool = pool
        #: the body bytes that came with the headers
        self._first = first
        self._where = where
        self._conn: _Connection | None = conn
        self._timeout = timeout
        self._complete = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        first, self._first = self._first, []
        for chunk in first:
            yield chunk
        conn = self._conn
        if conn is None or self._complete:
            return
        while True:
            try:
                event = await _next(conn, self._timeout)
            except BaseException as exc:
                self._conn = None
                await conn.close()
                translated = _translated(exc, "read")
                if translated is exc:
                    raise
                raise translated from exc
            if isinstance(event, h11.Data):
                yield bytes(event.data)
            elif isinstance(event, h11.EndOfMessage):
                self._complete = True
                return
            else:
                self._conn = None
                await conn.close()
                raise httpx.RemoteProtocolError("the server closed the connection mid-answer")

    async def aclose(self) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        if self._complete:
            self._pool.release(self._where, conn)
        else:
            await conn.close()
