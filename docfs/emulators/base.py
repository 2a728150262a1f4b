"""What every emulator shares: request log, fault plans, latency, and a loopback server.

An emulator subclasses ``Emulator`` and provides ``routes()``; ``Emulator.app`` wraps them in an
ASGI middleware that records each request (method, path, query, status, bytes, start and end
time), applies the configured latency, and carries out planned faults: an error status with
optional ``Retry-After``, a stall, or a connection cut after N bytes of the body. Tests drive all
of that through the Python "backdoor" methods; ``EmulatorServer`` serves the app with uvicorn on
127.0.0.1 in a background thread, so clients talk real HTTP over loopback.
"""

from __future__ import annotations

import random
import re
import socket
import threading
import time
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any

import anyio
import uvicorn
from starlette.applications import Starlette
from starlette.routing import BaseRoute

from docfs.redact import redact_url

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


@dataclass
class LoggedRequest:
    method: str
    path: str
    query: str
    status: int = 0
    bytes_in: int = 0
    bytes_out: int = 0
    start: float = 0.0
    end: float = 0.0
    fault: str | None = None


@dataclass
class Fault:
    """A planned misbehaviour for requests matching ``method`` and the ``path`` regex."""

    method: str | None = None
    path: str | None = None
    status: int | None = None
    retry_after: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    #: cut the connection after this many body bytes (0 = right after the headers)
    reset_after: int | None = None
    #: how many matching requests it hits; None = every one
    times: int | None = 1
    probability: float = 1.0

    def matches(self, method: str, path: str) -> bool:
        if self.method and self.method.upper() != method:
            return False
        return not (self.path and not re.search(self.path, path))


class ConnectionCut(Exception):
    """Raised inside the app to make uvicorn drop the connection mid-response."""


class Emulator:
    """Base of every emulator: subclasses implement ``routes`` and their own backdoor."""

    name = "emulator"

    def __init__(self, *, latency_ms: float = 0.0, seed: int | None = None) -> None:
        self.latency_ms = latency_ms
        self.log: list[LoggedRequest] = []
        self.faults: list[Fault] = []
        self.faults_injected = 0
        self._lock = threading.Lock()
        self._random = random.Random(seed)
        self._app = Starlette(routes=self.routes())

    def routes(self) -> list[BaseRoute]:
        raise NotImplementedError

    # ---- backdoor -------------------------------------------------------------------------

    def plan_fault(self, **kwargs: Any) -> Fault:
        fault = Fault(**kwargs)
        with self._lock:
            self.faults.append(fault)
        return fault

    def clear_faults(self) -> None:
        with self._lock:
            self.faults.clear()

    def clear_log(self) -> None:
        with self._lock:
            self.log.clear()

    def requests(self, method: str | None = None, path: str | None = None) -> list[LoggedRequest]:
        """Logged requests, optionally filtered by method and a path regex."""
        with self._lock:
            entries = list(self.log)
        return [
            r
            for r in entries
            if (method is None or r.method == method.upper())
            and (path is None or re.search(path, r.path))
        ]

    # ---- ASGI -----------------------------------------------------------------------------

    def _take_fault(self, method: str, path: str) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if fault.matches(method, path) and (
                    fault.probability >= 1 or self._random.random() < fault.probability
                ):
                    if fault.times is not None:
                        fault.times -= 1
                        if fault.times <= 0:
                            self.faults.remove(fault)
                    self.faults_injected += 1
                    return fault
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        entry = LoggedRequest(
            method=scope["method"],
            path=scope["path"],
            query=redact_url(scope.get("query_string", b"").decode("latin-1")),
            start=time.monotonic(),
        )
        with self._lock:
            self.log.append(entry)
        if self.latency_ms:
            await anyio.sleep(self.latency_ms / 1000)
        fault = self._take_fault(entry.method, entry.path)

        async def counting_receive() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                entry.bytes_in += len(message.get("body", b""))
            return message

        try:
            if fault is not None:
                entry.fault = _describe(fault)
                if fault.delay:
                    await anyio.sleep(fault.delay)
                if fault.status is not None:
                    await _drain(counting_receive)
                    await self._send_fault(fault, entry, send)
                    return
            await self._app(scope, counting_receive, self._wrap_send(send, entry, fault))
        except ConnectionCut:
            # uvicorn closes the connection when an app fails after the response started
            raise
        finally:
            entry.end = time.monotonic()

    def _wrap_send(self, send: Send, entry: LoggedRequest, fault: Fault | None) -> Send:
        budget = fault.reset_after if fault is not None else None

        async def wrapped(message: Message) -> None:
            nonlocal budget
            if message["type"] == "http.response.start":
                entry.status = message["status"]
                await send(message)
                if budget == 0:
                    raise ConnectionCut("planned reset after the headers")
                return
            if message["type"] == "http.response.body":
                body = message.get("body", b"")
                if budget is not None and len(body) >= budget:
                    part = body[:budget]
                    if part:
                        entry.bytes_out += len(part)
                        await send({"type": "http.response.body", "body": part, "more_body": True})
                    raise ConnectionCut("planned reset mid-body")
                if budget is not None:
                    budget -= len(body)
                entry.bytes_out += len(body)
            await send(message)

        return wrapped

    async def _send_fault(self, fault: Fault, entry: LoggedRequest, send: Send) -> None:
        assert fault.status is not None
        body = f"<html><body><h1>HTTP Status {fault.status}</h1></body></html>".encode()
        headers = [(b"content-type", b"text/html;charset=utf-8")]
        headers.append((b"content-length", str(len(body)).encode()))
        if fault.retry_after is not None:
            headers.append((b"retry-after", fault.retry_after.encode()))
        for k, v in fault.headers.items():
            headers.append((k.lower().encode(), v.encode()))
        entry.status = fault.status
        entry.bytes_out = len(body)
        await send({"type": "http.response.start", "status": fault.status, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def _describe(fault: Fault) -> str:
    parts = []
    if fault.status is not None:
        parts.append(f"status={fault.status}")
    if fault.delay:
        parts.append(f"delay={fault.delay}")
    if fault.reset_after is not None:
        parts.append(f"reset_after={fault.reset_after}")
    return ",".join(parts) or "fault"


async def _drain(receive: Receive) -> None:
    while True:
        message = await receive()
        if message["type"] != "http.request" or not message.get("more_body"):
            return


class EmulatorServer:
    """Serve an emulator with uvicorn on 127.0.0.1 in a background thread."""

    def __init__(self, emulator: Emulator, port: int = 0, host: str = "127.0.0.1") -> None:
        self.emulator = emulator
        self.host = host
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # asyncio leaves Nagle on for sockets it did not create: ~40 ms per small response
        self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._sock.bind((host, port))
        self.port: int = self._sock.getsockname()[1]
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> str:
        config = uvicorn.Config(
            self.emulator,
            log_level="error",
            lifespan="off",
            access_log=False,
            timeout_keep_alive=30,
        )
        self._server = uvicorn.Server(config)
        server = self._server
        self._thread = threading.Thread(
            target=lambda: server.run(sockets=[self._sock]), name="emulator", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + 10
        while not server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("emulator did not start")
            time.sleep(0.01)
        return self.url

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(10)
        self._sock.close()

    def __enter__(self) -> EmulatorServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
