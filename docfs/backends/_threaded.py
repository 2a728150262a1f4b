"""An httpx transport that moves big downloads off the trio thread.

The daemon serves every FUSE request on one trio thread. A download on that thread competes
with the reads it feeds: receiving and parsing 256 MiB costs as much CPU as serving them, and
both queue on the same loop. Requests marked with the ``THREADED`` extension (``download()``
sets it) are therefore sent by a synchronous httpx transport in a worker thread, and their body
is pulled there in batches: the first as soon as any bytes are there (a quick first byte),
then from 64 KiB growing to 1 MiB (few thread hops). Everything else — listings, uploads,
logins — stays on the async transport, as do redirects, retries, sessions and error mapping,
which live above the transport in ``HttpClient`` and work the same for both.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import trio

#: request extension that sends a request through the thread
THREADED = "docfs.threaded"
#: the second batch; each later one is twice the one before, up to MOST_BATCH
FIRST_BATCH = 64 << 10
MOST_BATCH = 1 << 20


class _ThreadStream(httpx.AsyncByteStream):
    """A synchronous response body read in a worker thread, batch by batch."""

    def __init__(self, stream: httpx.SyncByteStream) -> None:
        self._stream = stream
        self._chunks: Iterator[bytes] = iter(stream)
        #: the first batch is whatever the first read brings
        self._want = 1
        self._done = False
        self._failure: Exception | None = None
        #: the first batch, read by the thread that received the headers (see ``prime``)
        self._first: bytes | None = None

    def prime(self) -> None:
        """(the sending thread) Read the first batch now: a reader waiting for the first byte
        is spared one more hand-over to a thread and back. A failure surfaces when read."""
        try:
            self._first = self._pull()
        except Exception as exc:
            self._failure = exc
            self._done = True

    def _pull(self) -> bytes:
        parts: list[bytes] = []
        got = 0
        try:
            for chunk in self._chunks:
                parts.append(chunk)
                got += len(chunk)
                if got >= self._want:
                    return b"".join(parts)
        except Exception as exc:
            if not parts:
                raise
            # the bytes that did arrive are delivered first: a resumed download asks only
            # for what is missing after them
            self._failure = exc
        self._done = True
        return b"".join(parts)

    async def __aiter__(self) -> AsyncIterator[bytes]:
        first, self._first = self._first, None
        if first:
            self._want = FIRST_BATCH
            yield first
        while not self._done:
            # abandoned on cancel: the read has its own timeout, and aclose() ends it
            data = await trio.to_thread.run_sync(self._pull, abandon_on_cancel=True)
            self._want = min(max(self._want * 2, FIRST_BATCH), MOST_BATCH)
            if data:
                yield data
        if self._failure is not None:
            raise self._failure

    async def aclose(self) -> None:
        self._done = True
        with contextlib.suppress(httpx.HTTPError, OSError):
            await trio.to_thread.run_sync(self._stream.close, abandon_on_cancel=True)


class ThreadingTransport(httpx.AsyncBaseTransport):
    """``THREADED`` requests go to a sync transport in a thread, the rest to the async one."""

    def __init__(self, verify: Any, limits: httpx.Limits | None = None) -> None:
        pool = limits or httpx.Limits()
        self._async = httpx.AsyncHTTPTransport(verify=verify, limits=pool)
        self._sync = httpx.HTTPTransport(verify=verify, limits=pool)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if not request.extensions.get(THREADED):
            return await self._async.handle_async_request(request)
        lock = threading.Lock()
        abandoned = False
        answer: httpx.Response | None = None

        def send() -> tuple[httpx.Response, _ThreadStream]:
            nonlocal answer
            response = self._sync.handle_request(request)
            assert isinstance(response.stream, httpx.SyncByteStream)
            body = _ThreadStream(response.stream)
            with lock:
                answer = response
                if abandoned:
                    # nobody will read or close it: give the connection back now
                    response.close()
                    return response, body
            # the first bytes usually come with the headers: read them in this thread, one
            # hand-over fewer before the first byte (a cancel meanwhile closes the response,
            # and prime keeps the failure for a reader that will never come)
            body.prime()
            return response, body

        try:
            response, body = await trio.to_thread.run_sync(send, abandon_on_cancel=True)
        except BaseException:
            with lock:
                abandoned = True
                if answer is not None:
                    answer.close()
            raise
        return httpx.Response(
            response.status_code,
            headers=response.headers,
            stream=body,
            extensions=response.extensions,
        )

    async def aclose(self) -> None:
        await self._async.aclose()
        await trio.to_thread.run_sync(self._sync.close)
