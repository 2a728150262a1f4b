"""An httpx transport that moves big downloads off the trio thread.

The daemon serves every FUSE request on one trio thread. A download on that thread competes
with the reads it feeds: receiving and parsing 256 MiB costs as much CPU as serving them, and
both queue on the same loop. Requests marked with the ``THREADED`` extension (``download()``
sets it) are therefore sent by a synchronous httpx transport in a worker thread, and their body
is received by a thread of its own that reads the socket without pause into a bounded buffer
(``BUFFER``), waking the trio side only when it waits for bytes. The first bytes are read by the
thread that received the headers: a quick first byte, and a small body needs no second thread.
Everything else — listings, uploads, logins — stays on the async transport, as do redirects,
retries, sessions and error mapping, which live above the transport in ``HttpClient`` and work
the same for both.
"""

from __future__ import annotations

import collections
import contextlib
import threading
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import trio

from docfs.backends._bandwidth import Bandwidth
from docfs.backends._lean import LeanPool

#: request extension that sends a request through the thread
THREADED = "docfs.threaded"
#: received bytes not yet taken by the trio side; beyond this the receiving thread waits (the
#: cache's writer queues up to its own BACKLOG besides)
BUFFER = 4 << 20
#: ... but at first only this much, and then at most twice what the trio side has taken: a
#: reader that takes a few KiB and leaves (a file manager sniffing a type) must not have had
#: megabytes received for it, while a reader that keeps taking soon has the whole BUFFER
#: (bounded by what was taken alone, B1's cold read was ~14% slower: the thread waited)
FIRST_BUFFER = 64 << 10
#: ... and only as much as was taken (not twice) until the reader has taken this much: a
#: sniffer's read-ahead of 128 KiB must not grow the buffer and the batches to hundreds of KiB
#: (on a loaded machine a 4 KiB sniff of a file without byte ranges then cost 1.4 MiB, where
#: the acceptance of issue 25 allows 1 MiB); a sequential reader is past it in a millisecond
RAMP = 1 << 20
#: bytes are handed over in batches: the first read alone, then from FIRST_BATCH doubling up
#: to MOST_BATCH (few wake-ups of the trio thread, each with a batch worth its cost)
FIRST_BATCH = 64 << 10
MOST_BATCH = 1 << 20


class _ThreadStream(httpx.AsyncByteStream):
    """A synchronous response body received by a thread of its own, taken in batches.

    The receiving thread never waits for the trio side to ask: when it had to, each batch
    cost a hand-over to trio and back during which the socket was not read.
    """

    def __init__(
        self,
        stream: httpx.SyncByteStream,
        token: trio.lowlevel.TrioToken,
        bandwidth: Bandwidth | None = None,
    ) -> None:
        self._stream = stream
        #: ``--bwlimit``: the receiving thread waits for each chunk's share before it reads on,
        #: so the socket (and the line) is read no faster than the limit
        self._bandwidth = bandwidth
        self._chunks: Iterator[bytes] = iter(stream)
        self._token = token
        self._lock = threading.Lock()
        self._room = threading.Condition(self._lock)
        self._buffer: collections.deque[bytes] = collections.deque()
        self._buffered = 0
        #: no more bytes will come: the body is complete, or ``_failure`` ended it
        self._ended = False
        self._failure: Exception | None = None
        #: the reader is gone; the receiving thread stops and closes the stream
        self._closed = False
        self._receiving = False
        #: the size of the next batch (see FIRST_BATCH)
        self._want = 1
        #: body bytes received so far, and taken by the reader
        self._received = 0
        self._taken = 0
        #: set (through the trio token) when bytes arrive for a reader waiting on it
        self._arrived: trio.Event | None = None

    def start(self, length: int | None) -> None:
        """(the sending thread) Read the first bytes now; the reader starts a thread for the rest.

        The first bytes usually come with the headers: a reader waiting for its first byte is
        spared a hand-over, and a body that fits in them (``length``: its Content-Length)
        needs no thread. A failure is kept for the reader."""
        self._receive(first_only=True)
        with self._lock:
            if self._ended or self._closed:
                return
            whole = length is not None and self._received >= length
            if whole:
                # from here on this receiver closes the stream if the reader leaves meanwhile
                self._receiving = True
        if whole:
            self._receive()  # the end of the body: no read waits for the network
        # else the reader starts the receiving thread once it has taken the first bytes
        # (``__aiter__``): started now, it would compete for the GIL with the trio thread
        # that is about to answer the first read

    def _receive(self, first_only: bool = False) -> None:
        failure: Exception | None = None
        parts: list[bytes] = []
        got = 0
        try:
            for chunk in self._chunks:
                parts.append(chunk)
                got += len(chunk)
                self._received += len(chunk)
                if self._bandwidth is not None:
                    self._bandwidth.take_blocking(len(chunk), self._pause)
                if got < self._want and not first_only:
                    continue
                # one hand-over per batch, joined here rather than on the trio thread
                if not self._hand_over(parts[0] if len(parts) == 1 else b"".join(parts)):
                    parts = []
                    break
                parts, got = [], 0
                if first_only:
                    self._want = FIRST_BATCH
                    return
                # batches grow with what the reader took too: bytes gathered for a batch are
                # received as much as those in the buffer
                self._want = min(self._want * 2, MOST_BATCH, max(FIRST_BATCH, self._lead()))
        except Exception as exc:
            failure = exc
        if parts:
            self._hand_over(b"".join(parts))
        with self._lock:
            self._ended = True
            self._failure = failure
            self._receiving = False
            close = self._closed
            self._wake()
        if close:
            self._close_stream()  # the reader left while this thread was receiving

    def _pause(self, seconds: float) -> None:
        """(the receiving thread) Wait ``seconds`` for the bandwidth limit, or until the reader
        leaves (``_leave`` wakes this wait)."""
        deadline = time.monotonic() + seconds
        with self._lock:
            while not self._closed and (left := deadline - time.monotonic()) > 0:
                self._room.wait(left)

    def _hand_over(self, batch: bytes) -> bool:
        """Queue ``batch`` for the reader (waiting while the buffer is full); False if the
        reader is gone."""
        with self._lock:
            # the batch must fit beside what is buffered (an empty buffer takes any batch):
            # checking the buffer alone let it overshoot by a whole batch, up to 1 MiB
            while (
                self._buffered
                and self._buffered + len(batch) > min(BUFFER, max(FIRST_BUFFER, self._lead()))
                and not self._closed
            ):
                self._room.wait()
            if self._closed:
                return False
            self._buffer.append(batch)
            self._buffered += len(batch)
            self._wake()
            return True

    def _lead(self) -> int:
        """How far the receiving thread may run ahead of what the reader took (see RAMP)."""
        taken = self._taken
        return taken if taken < RAMP else 2 * taken

    def _wake(self) -> None:
        """(with the lock held) Wake the reader if it waits."""
        arrived, self._arrived = self._arrived, None
        if arrived is not None:
            # after the daemon is gone nobody is waiting any more
            with contextlib.suppress(trio.RunFinishedError):
                self._token.run_sync_soon(arrived.set)

    def _close_stream(self) -> None:
        with contextlib.suppress(httpx.HTTPError, OSError):
            self._stream.close()

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while True:
            with self._lock:
                chunks = list(self._buffer)
                self._buffer.clear()
                self._taken += self._buffered
                self._buffered = 0
                self._room.notify()
                ended, failure = self._ended, self._failure
                arrived = None
                begin = False
                if not chunks and not ended:
                    arrived = self._arrived = trio.Event()
                    if not self._receiving:
                        self._receiving = begin = True
            if begin:
                threading.Thread(target=self._receive, name="docfs-receive", daemon=True).start()
            # the bytes that did arrive are delivered before a failure: a resumed download
            # asks only for what is missing after them
            for chunk in chunks:
                yield chunk
            if arrived is not None:
                await arrived.wait()
            elif ended and not chunks:
                if failure is not None:
                    raise failure
                return

    def _leave(self) -> bool:
        """The reader is gone: stop the receiving thread. True if the caller must close the
        stream (no thread is receiving; one that is closes it when its read returns)."""
        with self._lock:
            self._closed = True
            self._room.notify()
            return not self._receiving

    def abandon(self) -> None:
        """Nobody will read the body: stop receiving it and give the connection back (or close
        it). Returns at once."""
        if self._leave():
            self._close_stream()

    async def aclose(self) -> None:
        if self._leave():
            # a finished body gives its connection back to the pool; a failed one closes its
            # socket: in a thread, as any blocking call
            await trio.to_thread.run_sync(self._close_stream, abandon_on_cancel=True)


class ThreadingTransport(httpx.AsyncBaseTransport):
    """``THREADED`` requests go to a sync transport in a thread, the rest to the async one."""

    def __init__(
        self, verify: Any, limits: httpx.Limits | None = None, bandwidth: Bandwidth | None = None
    ) -> None:
        pool = limits or httpx.Limits()
        self._bandwidth = bandwidth
        self._async = httpx.AsyncHTTPTransport(verify=verify, limits=pool)
        self._sync = httpx.HTTPTransport(verify=verify, limits=pool)
        #: small request bodies (uploads of small files) skip httpcore (see _lean.py)
        self._lean = LeanPool(verify)

    @property
    def lean_requests(self) -> int:
        """Requests sent on the lean path so far."""
        return self._lean.requests

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if not request.extensions.get(THREADED):
            if self._lean.takes(request):
                return await self._lean.handle(request)
            return await self._async.handle_async_request(request)
        token = trio.lowlevel.current_trio_token()
        lock = threading.Lock()
        abandoned = False
        answer: _ThreadStream | None = None

        def send() -> tuple[httpx.Response, _ThreadStream]:
            nonlocal answer
            response = self._sync.handle_request(request)
            assert isinstance(response.stream, httpx.SyncByteStream)
            body = _ThreadStream(response.stream, token, self._bandwidth)
            with lock:
                answer = body
                if abandoned:
                    # nobody will read or close it: give the connection back now
                    body.abandon()
                    return response, body
            length = response.headers.get("Content-Length")
            # a cancel meanwhile abandons it; a failure waits for a reader that never comes
            body.start(int(length) if length and length.isdigit() else None)
            return response, body

        try:
            response, body = await trio.to_thread.run_sync(send, abandon_on_cancel=True)
        except BaseException:
            with lock:
                abandoned = True
                if answer is not None:
                    answer.abandon()
            raise
        return httpx.Response(
            response.status_code,
            headers=response.headers,
            stream=body,
            extensions=response.extensions,
        )

    async def aclose(self) -> None:
        await self._lean.aclose()
        await self._async.aclose()
        await trio.to_thread.run_sync(self._sync.close)
