"""What every emulator shares: request log, fault plans, latency, and a loopback server.

An emulator subclasses ``Emulator`` and provides ``routes()``; ``Emulator.app`` wraps them in an
ASGI middleware that records each request (method, path, query, status, bytes, start and end
time), applies the configured latency and, if set, a per-response bandwidth (over a long path
one TCP stream gets a window per round trip however fast the link) and an upload bandwidth for
request bodies, and carries out planned
faults: an error status with optional ``Retry-After``, a stall, a connection cut after N bytes
of the body, a made-up answer body (invalid JSON, wrong types, missing fields), a
``Content-Length`` that lies, or a redirect to another host. Tests drive all of that through the
Python "backdoor" methods; ``EmulatorServer`` serves the app with uvicorn on 127.0.0.1 in a
background thread, so clients talk real HTTP over loopback.
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


#: the largest piece of a body slowed by ``Fault.chunk_delay``
SLOW_PIECE = 64 * 1024


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
    #: a proxy or a busy server holds the whole request this long and then passes it on,
    #: whether or not the client still waits: a client whose timeout is shorter gives up, and
    #: the server acts on the request after that (``delay`` instead drops a request whose
    #: client left: the app then sees a disconnect, not the body)
    hold: float = 0.0
    #: cut the connection after this many body bytes (0 = right after the headers)
    reset_after: int | None = None
    #: a slow body: wait this long before each chunk of it, at most ``SLOW_PIECE`` bytes (a
    #: download still running when a test kills the client)
    chunk_delay: float = 0.0
    #: how many matching requests it hits; None = every one
    times: int | None = 1
    probability: float = 1.0
    #: answer this body instead of the real one (with ``status``, 200 by default): malformed
    #: answers such as invalid JSON, wrong types or missing fields
    body: bytes | None = None
    content_type: str = "application/json"
    #: send the real answer under this ``Content-Length``: shorter than the body, the answer
    #: looks complete but is cut; longer, the connection closes before the promised end
    content_length: int | None = None
    #: answer 302 to this origin (``http://host:port``), keeping the path and query
    redirect: str | None = None
    #: a flaky server, not a dead one: never hit the same request (method, path and query)
    #: more than this many times in a row
    max_streak: int | None = None

    def matches(self, method: str, path: str) -> bool:
        if self.method and self.method.upper() != method:
            return False
        return not (self.path and not re.search(self.path, path))

    @property
    def answers_itself(self) -> bool:
        """True if the fault replaces the answer (the app never sees the request)."""
        return self.status is not None or self.body is not None or self.redirect is not None


class UnknownServerOption(ValueError):
    """``--server-version`` or ``--setting`` named something this emulator does not know."""


@dataclass(frozen=True)
class ServerSetting:
    """A configuration value of the real server that changes what the emulator does."""

    default: str
    help: str
    #: the values it may take; empty: any
    choices: tuple[str, ...] = ()


@dataclass(frozen=True)
class ServerProfile:
    """Which release of the server is emulated and with which configuration settings.

    Real servers answer differently by release and by setting (a DSpace 10 with bitstream
    replacement off answers 400 where one with it on answers 200); one emulator answering one way
    is how such differences stayed hidden, so the release and the settings are explicit.
    """

    version: str
    settings: dict[str, str] = field(default_factory=dict)
    role: str = "admin"

    def setting(self, key: str) -> str:
        return self.settings[key]

    def flag(self, key: str) -> bool:
        return self.settings[key].strip().lower() in ("1", "true", "yes", "on")

    def at_least(self, version: str) -> bool:
        return version_key(self.version) >= version_key(version)


def version_key(version: str) -> tuple[int, ...]:
    """``"7.6.1"`` → ``(7, 6, 1)``, for comparing releases."""
    return tuple(int(part) for part in re.findall(r"\d+", version))


class ConnectionCut(Exception):
    """Raised inside the app to make uvicorn drop the connection mid-response."""


class Emulator:
    """Base of every emulator: subclasses implement ``routes`` and their own backdoor."""

    name = "emulator"
    #: the server releases this emulator can behave like, oldest first; the last is the default
    versions: tuple[str, ...] = ()
    #: the server's configuration settings it honours (``--setting KEY=VALUE``)
    server_settings: dict[str, ServerSetting] = {}
    #: the roles ``--role`` may give the seeded user
    roles: tuple[str, ...] = ("admin",)

    @classmethod
    def make_profile(
        cls,
        version: str | None = None,
        settings: dict[str, str] | None = None,
        role: str = "admin",
    ) -> ServerProfile:
        """Check a release, settings and role against what this emulator knows."""
        if version is None:
            version = cls.versions[-1] if cls.versions else ""
        elif version not in cls.versions:
            known = ", ".join(cls.versions) or "none"
            raise UnknownServerOption(
                f"{cls.name}: unknown server version {version!r} (known: {known})"
            )
        values = {key: spec.default for key, spec in cls.server_settings.items()}
        for key, value in (settings or {}).items():
            spec = cls.server_settings.get(key)
            if spec is None:
                known = ", ".join(sorted(cls.server_settings)) or "none"
                raise UnknownServerOption(f"{cls.name}: unknown setting {key!r} (known: {known})")
            if spec.choices and value not in spec.choices:
                raise UnknownServerOption(
                    f"{cls.name}: setting {key} must be one of {', '.join(spec.choices)}"
                )
            values[key] = value
        if role not in cls.roles:
            raise UnknownServerOption(
                f"{cls.name}: unknown role {role!r} (known: {', '.join(cls.roles)})"
            )
        return ServerProfile(version, values, role)

    @classmethod
    def options_for(cls, profile: ServerProfile) -> dict[str, Any]:
        """Constructor keyword arguments that make an instance behave as ``profile`` says."""
        return {}

    @classmethod
    def describe_profiles(cls) -> str:
        """A few lines for ``docfs emulate --help``: releases, settings and roles."""
        lines = [f"{cls.name}: versions {', '.join(cls.versions) or '(one behaviour)'}"]
        lines += [
            f"  --setting {key}=VALUE  {spec.help} (default {spec.default})"
            for key, spec in sorted(cls.server_settings.items())
        ]
        if len(cls.roles) > 1:
            lines.append(f"  --role {'|'.join(cls.roles)}")
        return "\n".join(lines)

    def __init__(self, *, latency_ms: float = 0.0, seed: int | None = None) -> None:
        if not hasattr(self, "server_profile"):
            #: the release and settings this instance behaves like (``launch.build`` sets it)
            self.server_profile: ServerProfile = type(self).make_profile()
        self.latency_ms = latency_ms
        #: bytes per second each response body is paced to (0: as fast as loopback goes)
        self.bandwidth = 0.0
        #: bytes per second request bodies are read at (0: at once): a slow uplink, under
        #: which a client's upload progress can be watched (uvicorn stops reading the socket
        #: while the app has not taken what it buffered, so the client is held back too)
        self.upload_bandwidth = 0.0
        self.log: list[LoggedRequest] = []
        #: tests: called with each request as it arrives, before its latency, fault and
        #: handler (something must change at the server at an exact request, not when a
        #: thread polling the log gets round to it)
        self.on_request: Callable[[LoggedRequest], None] | None = None
        self.faults: list[Fault] = []
        self.faults_injected = 0
        #: (method, path, query) → faults in a row, for ``Fault.max_streak``
        self._streaks: dict[tuple[str, str, str], int] = {}
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

    def _take_fault(self, method: str, path: str, query: str) -> Fault | None:
        key = (method, path, query)
        with self._lock:
            streak = self._streaks.pop(key, 0)
            for fault in self.faults:
                if fault.max_streak is not None and streak >= fault.max_streak:
                    continue
                if fault.matches(method, path) and (
                    fault.probability >= 1 or self._random.random() < fault.probability
                ):
                    if fault.times is not None:
                        fault.times -= 1
                        if fault.times <= 0:
                            self.faults.remove(fault)
                    self.faults_injected += 1
                    self._streaks[key] = streak + 1
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
        if self.on_request is not None:
            self.on_request(entry)
        if self.latency_ms:
            await anyio.sleep(self.latency_ms / 1000)
        fault = self._take_fault(entry.method, entry.path, entry.query)

        async def counting_receive() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                entry.bytes_in += len(message.get("body", b""))
                if self.upload_bandwidth:
                    await anyio.sleep(len(message.get("body", b"")) / self.upload_bandwidth)
            return message

        app_receive: Receive = counting_receive
        try:
            if fault is not None:
                entry.fault = _describe(fault)
                if fault.delay:
                    await anyio.sleep(fault.delay)
                if fault.hold:
                    app_receive = await _held(counting_receive, fault.hold)
                if fault.answers_itself:
                    await _drain(app_receive)
                    await self._send_fault(fault, entry, send, scope)
                    return
            await self._app(scope, app_receive, self._wrap_send(send, entry, fault))
        except ConnectionCut:
            # uvicorn closes the connection when an app fails after the response started
            raise
        finally:
            entry.end = time.monotonic()

    def _wrap_send(self, send: Send, entry: LoggedRequest, fault: Fault | None) -> Send:
        budget = fault.reset_after if fault is not None else None
        pause = fault.chunk_delay if fault is not None else 0.0
        if fault is not None and fault.content_length is not None:
            return _lying_send(send, entry, fault.content_length)
        rate = self.bandwidth
        paced = 0  # body bytes sent under ``rate``
        began = 0.0

        async def wrapped(message: Message) -> None:
            nonlocal budget, paced, began
            if message["type"] == "http.response.start":
                entry.status = message["status"]
                await send(message)
                if budget == 0:
                    raise ConnectionCut("planned reset after the headers")
                return
            if message["type"] == "http.response.body":
                # a chance for Starlette's disconnect listener to cancel the body: uvicorn's
                # send returns at once, without a checkpoint, once the client is gone, so an
                # app streaming from memory went on "sending" (and counting in ``bytes_out``)
                # the rest of the body nobody received, blocking its loop meanwhile; a real
                # server's write fails when the client has left (Tomcat: ClientAbortException)
                await anyio.lowlevel.checkpoint()
            if message["type"] == "http.response.body" and (pause or rate):
                # slowed or paced whatever the app's framing: an answer sent as one message
                # still trickles out in pieces, each after the pause or at the rate
                body = message.get("body", b"")
                if len(body) > SLOW_PIECE:
                    more = message.get("more_body", False)
                    for at in range(0, len(body), SLOW_PIECE):
                        last = at + SLOW_PIECE >= len(body)
                        piece = body[at : at + SLOW_PIECE]
                        await wrapped(
                            {"type": message["type"], "body": piece, "more_body": more or not last}
                        )
                    return
                if pause:
                    await anyio.sleep(pause)
                if rate:
                    if not paced:
                        began = time.monotonic()
                    paced += len(body)
                    # against the start, not piece by piece: sleeps that overrun do not add up
                    ahead = began + paced / rate - time.monotonic()
                    if ahead > 0:
                        await anyio.sleep(ahead)
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

    async def _send_fault(
        self, fault: Fault, entry: LoggedRequest, send: Send, scope: Scope
    ) -> None:
        headers: list[tuple[bytes, bytes]] = []
        if fault.redirect is not None:
            status = fault.status or 302
            body = b""
            target = fault.redirect.rstrip("/") + scope["path"]
            if scope.get("query_string"):
                target += "?" + scope["query_string"].decode("latin-1")
            headers.append((b"location", target.encode("latin-1")))
        elif fault.body is not None:
            status = fault.status or 200
            body = fault.body
            headers.append((b"content-type", fault.content_type.encode("latin-1")))
        else:
            assert fault.status is not None
            status = fault.status
            body = f"<html><body><h1>HTTP Status {status}</h1></body></html>".encode()
            headers.append((b"content-type", b"text/html;charset=utf-8"))
        headers.append((b"content-length", str(len(body)).encode()))
        if fault.retry_after is not None:
            headers.append((b"retry-after", fault.retry_after.encode()))
        for k, v in fault.headers.items():
            headers.append((k.lower().encode(), v.encode()))
        entry.status = status
        entry.bytes_out = len(body)
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def _lying_send(send: Send, entry: LoggedRequest, length: int) -> Send:
    """Send the app's answer under ``Content-Length: length`` whatever its real size.

    A shorter length ends the body there, so the client sees a complete but cut answer; a
    longer one sends the whole body and then drops the connection (the server cannot keep
    the promise).
    """
    left = length

    async def wrapped(message: Message) -> None:
        nonlocal left
        if message["type"] == "http.response.start":
            entry.status = message["status"]
            headers = [
                (k, v)
                for k, v in message.get("headers", [])
                if k.lower() not in (b"content-length", b"transfer-encoding")
            ]
            headers.append((b"content-length", str(length).encode()))
            await send({**message, "headers": headers})
            return
        if message["type"] != "http.response.body":
            await send(message)
            return
        if left < 0:
            return  # the answer is complete for the client: the rest is swallowed
        body = message.get("body", b"")[:left]
        more = bool(message.get("more_body"))
        left -= len(body)
        entry.bytes_out += len(body)
        if left == 0:
            # the promised length is reached: that is the end of the answer for the client
            left = -1
            await send({"type": "http.response.body", "body": body, "more_body": False})
        elif not more:
            await send({"type": "http.response.body", "body": body, "more_body": True})
            raise ConnectionCut("planned reset: the body is shorter than its Content-Length")
        else:
            await send({"type": "http.response.body", "body": body, "more_body": True})

    return wrapped


def _describe(fault: Fault) -> str:
    parts = []
    if fault.status is not None:
        parts.append(f"status={fault.status}")
    if fault.delay:
        parts.append(f"delay={fault.delay}")
    if fault.hold:
        parts.append(f"hold={fault.hold}")
    if fault.reset_after is not None:
        parts.append(f"reset_after={fault.reset_after}")
    if fault.chunk_delay:
        parts.append(f"chunk_delay={fault.chunk_delay}")
    if fault.body is not None:
        parts.append(f"body={len(fault.body)}B")
    if fault.content_length is not None:
        parts.append(f"content_length={fault.content_length}")
    if fault.redirect is not None:
        parts.append("redirect")
    return ",".join(parts) or "fault"


async def _held(receive: Receive, hold: float) -> Receive:
    """Take the whole request body now, wait ``hold`` seconds, then give the app that body
    even if the client has gone meanwhile (uvicorn would answer a disconnect instead)."""
    body: list[Message] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break  # the client left before the body was complete: nothing to pass on
        body.append(message)
        if not message.get("more_body"):
            break
    await anyio.sleep(hold)

    async def replay() -> Message:
        return body.pop(0) if body else await receive()

    return replay


async def _drain(receive: Receive) -> None:
    while True:
        message = await receive()
        if message["type"] != "http.request" or not message.get("more_body"):
            return


class EmulatorServer:
    """Serve an emulator with uvicorn on 127.0.0.1 in a background thread."""

    def __init__(
        self,
        emulator: Emulator,
        port: int = 0,
        host: str = "127.0.0.1",
        *,
        certfile: str | None = None,
        keyfile: str | None = None,
        send_buffer: int | None = None,
    ) -> None:
        """``certfile``/``keyfile`` (PEM) serve HTTPS, for tests of certificate checks.

        ``send_buffer`` fixes the kernel's send buffer of every connection (SO_SNDBUF). On
        loopback Linux grows it to megabytes, and bytes the server queued there still count in
        ``bytes_out`` when a client leaves early, though over a real network they were never
        transferred: tests of how much an abandoned download costs set it small."""
        self.emulator = emulator
        self.host = host
        self.certfile, self.keyfile = certfile, keyfile
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # asyncio leaves Nagle on for sockets it did not create: ~40 ms per small response
        self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if send_buffer is not None:
            # accepted connections inherit it
            self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, send_buffer)
        self._sock.bind((host, port))
        self.port: int = self._sock.getsockname()[1]
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        scheme = "https" if self.certfile else "http"
        return f"{scheme}://{self.host}:{self.port}"

    def start(self) -> str:
        config = uvicorn.Config(
            self.emulator,
            log_level="error",
            lifespan="off",
            access_log=False,
            timeout_keep_alive=30,
            ssl_certfile=self.certfile,
            ssl_keyfile=self.keyfile,
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
