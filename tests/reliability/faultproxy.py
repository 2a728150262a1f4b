"""A fault-injecting HTTP/1.1 proxy on loopback: a bad network between a mount and an emulator.

The emulators can misbehave on their own (``Emulator.plan_fault``), but only in ways the
emulator itself can stage. ``FaultProxy`` sits outside, as a real load balancer, gateway or
flaky link would: it listens on 127.0.0.1, the mount's URL points at it, and it relays every
request to one upstream emulator (never to anything but a loopback address), bodies streamed
in pieces whatever their size, ``Content-Length`` and chunked framing passed on byte for byte,
client connections kept alive across requests.

A seeded random draw per request, at the rate of the first ``Rule`` that matches it, picks one
of these faults:

``stall_pass``
    read the whole request, hold it longer than the client's timeout, then pass it on: the
    server stores it after the client gave up (the answer is lost after the server processed
    it, and the request lands *late*: a check made at the timeout does not see it yet)
``stall_drop``
    read the whole request, hold it until the client gives up (at most ``stall`` seconds), then
    close: the server never sees it
``reset_request``
    pass on the request head and half of its body (or half of the head when there is no body),
    then reset both connections: the server sees a broken request
``reset_response``
    pass the request on, then send the client the answer's head and half of its body (half of
    the head when the body is empty) and reset: processed, answer cut mid-body
``lost_answer``
    pass the request on, read the whole answer, then reset the client without a byte of it
``status``
    answer an error status itself (500, 502, 503, 504 or 429, with or without ``Retry-After``,
    as ``statuses`` lists) without passing the request on, as a gateway or rate limiter does

``max_streak`` keeps it a flaky network rather than a dead one: the same request (method, path
and query) is never hit more than that many times in a row. A ``Rule`` with ``cover`` also hits
the first request of each endpoint it matches (method and path with ids blanked), and
``each_kind_first`` makes the first faults one of each kind, so even a short run faults every
write endpoint and shows every kind of fault. ``injected`` counts what was done by kind, and
``log`` keeps every request with its fault, for a test's figures and its evidence.

Not a general proxy: no TLS, no ``CONNECT``, no ``Expect: 100-continue`` (httpx, docfs's
client, never sends it), and interim 1xx answers are dropped.

Threads, one per client connection; ``stop`` (or leaving the ``with`` block, or ``lifetime``
seconds, whichever comes first) closes every socket and ends every stall at once.
"""

from __future__ import annotations

import contextlib
import functools
import ipaddress
import random
import re
import select
import socket
import struct
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

KINDS = ("stall_pass", "stall_drop", "reset_request", "reset_response", "lost_answer", "status")

#: the error answers of a ``status`` fault: (status, Retry-After or None)
STATUSES: tuple[tuple[int, str | None], ...] = (
    (500, None),
    (502, None),
    (503, None),
    (503, "1"),
    (504, None),
    (429, None),
    (429, "1"),
)

#: how much of a body is relayed at once (an 8 MiB upload never sits in memory whole, except
#: where a fault must hold the whole request or answer)
PIECE = 64 * 1024
#: the longest request or status line and header block accepted
MAX_HEAD = 64 * 1024

#: ids in paths (numbers, UUIDs, long hex or opaque tokens) are blanked to name an endpoint
_ID = re.compile(
    r"(?<=/)(?:\d+|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|[0-9a-f]{16,})(?=/|$)",
    re.IGNORECASE,
)
HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-connection", "upgrade", "te"})


def endpoint(method: str, path: str) -> str:
    """``POST /api/2.0/files/{id}/upload``: a request's endpoint, its ids blanked."""
    return f"{method} {_ID.sub('{id}', path)}"


@dataclass(frozen=True)
class Rule:
    """Requests with one of ``methods`` (and a path matching ``path``) are hit at ``rate``."""

    methods: frozenset[str]
    rate: float
    path: str | None = None
    #: also hit the first request of every endpoint this rule matches
    cover: bool = False

    def matches(self, method: str, path: str) -> bool:
        if method not in self.methods:
            return False
        return self.path is None or re.search(self.path, path) is not None


WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
READS = frozenset({"GET", "HEAD"})


@dataclass
class ProxiedRequest:
    """One request through the proxy, what was done to it and what came of it."""

    method: str
    path: str
    query: str
    fault: str | None = None
    #: the whole request reached the server
    forwarded: bool = False
    #: the status the server answered (0: no answer from it) and the one the client got
    upstream_status: int = 0
    status: int = 0
    request_bytes: int = 0
    response_bytes: int = 0
    start: float = 0.0
    end: float = 0.0
    #: wall-clock time it arrived, to match it with the lines of a daemon's log
    arrived: float = field(default_factory=time.time)

    @property
    def endpoint(self) -> str:
        return endpoint(self.method, self.path)

    def __str__(self) -> str:
        query = f"?{self.query}" if self.query else ""
        if not self.forwarded:
            server = "never reached the server"
        elif self.fault == "stall_pass":
            server = f"reached the server late, which answered {self.upstream_status}"
        else:
            server = f"the server answered {self.upstream_status}"
        client = {
            "reset_response": "the client got a cut answer",
            "lost_answer": "the client got no answer",
            "reset_request": "the client's connection was reset",
            "stall_drop": "the client got no answer",
            "stall_pass": "the client had timed out",
        }.get(self.fault or "", f"the client got {self.status or 'nothing'}")
        stamp = time.strftime("%H:%M:%S", time.localtime(self.arrived))
        stamp += f",{int(self.arrived * 1000) % 1000:03d}"
        return (
            f"{stamp} {self.method} {self.path}{query} [{self.fault or 'clean'}]: {server}; "
            f"{client} ({self.end - self.start:.2f} s)"
        )


class _Gone(Exception):
    """A peer closed its connection (or ours was closed by ``stop``)."""


class _Reader:
    """Buffered reads from a socket: lines of a head, exact lengths, pieces."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = bytearray()

    def _fill(self) -> None:
        try:
            data = self.sock.recv(PIECE)
        except OSError as exc:
            raise _Gone(str(exc)) from None
        if not data:
            raise _Gone("closed")
        self.buf += data

    def at_eof(self) -> bool:
        """Wait for the next byte; True if the peer closed instead (between requests)."""
        if self.buf:
            return False
        try:
            self._fill()
        except _Gone:
            return True
        return False

    def readline(self) -> bytes:
        while True:
            at = self.buf.find(b"\n")
            if at >= 0:
                line = bytes(self.buf[: at + 1])
                del self.buf[: at + 1]
                return line
            if len(self.buf) > MAX_HEAD:
                raise _Gone("line too long")
            self._fill()

    def read(self, most: int) -> bytes:
        """Up to ``most`` bytes, at least one."""
        if not self.buf:
            self._fill()
        piece = bytes(self.buf[:most])
        del self.buf[: len(piece)]
        return piece

    def read_head(self) -> list[bytes]:
        """The start line and header lines (raw, with their line ends) up to the blank line."""
        lines: list[bytes] = []
        size = 0
        while True:
            line = self.readline()
            size += len(line)
            if size > MAX_HEAD:
                raise _Gone("head too long")
            if line in (b"\r\n", b"\n"):
                if not lines:
                    continue  # a stray line end between messages (RFC 9112, 2.2)
                return lines
            lines.append(line)


Sink = Callable[[bytes], None]


def _discard(_: bytes) -> None:
    return None


@dataclass
class _Head:
    """A parsed request or response head; ``headers`` keep their order and spelling."""

    start: str
    headers: list[tuple[str, str]]

    @classmethod
    def parse(cls, lines: list[bytes]) -> _Head:
        start = lines[0].decode("latin-1").rstrip("\r\n")
        headers = []
        for raw in lines[1:]:
            name, _, value = raw.decode("latin-1").partition(":")
            headers.append((name.strip(), value.strip()))
        return cls(start, headers)

    def get(self, name: str) -> str | None:
        for k, v in self.headers:
            if k.lower() == name:
                return v
        return None

    def tokens(self, name: str) -> set[str]:
        return {
            t.strip().lower()
            for k, v in self.headers
            if k.lower() == name
            for t in v.split(",")
            if t.strip()
        }

    def without_hop_by_hop(self) -> list[tuple[str, str]]:
        drop = HOP_BY_HOP | self.tokens("connection")
        return [(k, v) for k, v in self.headers if k.lower() not in drop]

    @staticmethod
    def encode(start: str, headers: Iterable[tuple[str, str]]) -> bytes:
        lines = [start, *(f"{k}: {v}" for k, v in headers)]
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


@dataclass
class _Framing:
    """How a body is delimited: chunked, by length, until the connection closes, or none."""

    chunked: bool = False
    length: int | None = None
    until_close: bool = False

    @property
    def empty(self) -> bool:
        return not self.chunked and not self.until_close and not self.length


def _request_framing(head: _Head) -> _Framing:
    if "chunked" in head.tokens("transfer-encoding"):
        return _Framing(chunked=True)
    length = head.get("content-length")
    return _Framing(length=int(length) if length else 0)


def _response_framing(method: str, status: int, head: _Head) -> _Framing:
    if method == "HEAD" or status < 200 or status in (204, 304):
        return _Framing(length=0)
    if "chunked" in head.tokens("transfer-encoding"):
        return _Framing(chunked=True)
    length = head.get("content-length")
    if length is not None:
        return _Framing(length=int(length))
    return _Framing(until_close=True)


def _relay(reader: _Reader, framing: _Framing, sink: Sink, *, cut: bool = False) -> int:
    """Pass a body on, framing and all, byte for byte; the raw bytes passed.

    ``cut``: stop halfway through the body (through its first chunk when chunked; through the
    last chunk's line when that is all there is) and return: the rest stays unread.
    """
    sent = 0

    def out(data: bytes) -> None:
        nonlocal sent
        sink(data)
        sent += len(data)

    def copy(count: int) -> None:
        while count > 0:
            piece = reader.read(min(PIECE, count))
            out(piece)
            count -= len(piece)

    if framing.chunked:
        while True:
            line = reader.readline()
            size = int(line.split(b";", 1)[0].strip() or b"0", 16)
            if cut and size == 0:
                out(line[: len(line) // 2])
                return sent
            out(line)
            if cut:
                copy(size // 2)
                return sent
            if size == 0:
                while True:  # trailers, up to the blank line
                    trailer = reader.readline()
                    out(trailer)
                    if trailer in (b"\r\n", b"\n"):
                        return sent
            copy(size)
            out(reader.readline())  # the chunk's CRLF
    if framing.until_close:
        while True:
            try:
                piece = reader.read(PIECE)
            except _Gone:
                return sent
            if cut:
                out(piece[: max(1, len(piece) // 2)])
                return sent
            out(piece)
    length = framing.length or 0
    copy(length // 2 if cut else length)
    return sent


def _reset(sock: socket.socket | None) -> None:
    """Close with RST instead of FIN: the peer sees ``Connection reset by peer``."""
    if sock is None:
        return
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def _check_loopback(host: str) -> None:
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(host, None)}
    except socket.gaierror as exc:
        raise ValueError(f"fault proxy: cannot resolve {host!r}: {exc}") from None
    for address in addresses:
        if not ipaddress.ip_address(str(address).split("%")[0]).is_loopback:
            raise ValueError(
                f"fault proxy: {host!r} is not a loopback address ({address}); it only ever "
                "relays to 127.0.0.1 or ::1"
            )


@dataclass
class _Decision:
    kind: str
    status: int = 0
    retry_after: str | None = None

    @property
    def label(self) -> str:
        if self.kind != "status":
            return self.kind
        return f"status {self.status}" + (
            f" Retry-After {self.retry_after}" if self.retry_after else ""
        )


@dataclass
class FaultProxy:
    """Relay HTTP/1.1 from ``127.0.0.1:port`` to ``upstream`` and inject faults on the way."""

    upstream: str
    #: faults are drawn for requests matching these, first match wins; none: a clean relay
    rules: list[Rule] = field(default_factory=list)
    #: how long a stall holds a request: longer than the client's timeout
    stall: float = 3.0
    seed: int = 0
    #: relative weights of the fault kinds (a kind missing here is never picked)
    weights: dict[str, float] = field(default_factory=lambda: dict.fromkeys(KINDS, 1.0))
    statuses: tuple[tuple[int, str | None], ...] = STATUSES
    max_streak: int | None = 2
    #: the first faults drawn take each kind of ``weights`` once (in a seeded order) before
    #: the weights decide: a short run still sees every kind
    each_kind_first: bool = False
    #: seconds after ``start`` at which the proxy stops by itself, whatever the test does
    lifetime: float = 900.0

    def __post_init__(self) -> None:
        parts = urlsplit(self.upstream)
        if parts.scheme != "http" or not parts.hostname or not parts.port:
            raise ValueError(f"fault proxy: upstream must be http://HOST:PORT, not {self.upstream}")
        _check_loopback(parts.hostname)
        unknown = set(self.weights) - set(KINDS)
        if unknown:
            raise ValueError(f"fault proxy: unknown fault kinds {sorted(unknown)}")
        self._target = (parts.hostname, parts.port)
        self._random = random.Random(self.seed)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._streaks: dict[tuple[str, str, str], int] = {}
        self._covered: set[str] = set()
        self._first_kinds = [k for k in KINDS if self.weights.get(k, 0) > 0]
        self._random.shuffle(self._first_kinds)
        if not self.each_kind_first:
            self._first_kinds.clear()
        self._sockets: set[socket.socket] = set()
        self._threads: list[threading.Thread] = []
        self._listener: socket.socket | None = None
        self._timer: threading.Timer | None = None
        #: faults injected, by kind (``status`` faults by status and Retry-After)
        self.injected: Counter[str] = Counter()
        #: every request, in the order they arrived
        self.log: list[ProxiedRequest] = []
        #: client connections accepted
        self.connections = 0
        self.port = 0

    # ---- lifecycle -----------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> FaultProxy:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        listener.settimeout(0.2)
        self._listener = listener
        self.port = listener.getsockname()[1]
        self._spawn(self._accept, "faultproxy-accept")
        self._timer = threading.Timer(self.lifetime, self.stop)
        self._timer.daemon = True
        self._timer.start()
        return self

    def stop(self) -> None:
        """Close every socket, end every stall and wait for the threads (idempotent)."""
        self._stop.set()
        if self._timer is not None and self._timer is not threading.current_thread():
            self._timer.cancel()
        with self._lock:
            sockets = list(self._sockets)
            threads = list(self._threads)
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        for thread in threads:
            if thread is not threading.current_thread():
                thread.join(5)
        if self._listener is not None:
            self._listener.close()

    @property
    def running(self) -> bool:
        with self._lock:
            return any(t.is_alive() for t in self._threads)

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _spawn(self, run: Callable[[], None], name: str) -> None:
        thread = threading.Thread(target=run, name=name, daemon=True)
        with self._lock:
            self._threads = [t for t in self._threads if t.is_alive()]
            self._threads.append(thread)
        thread.start()

    def _track(self, sock: socket.socket) -> socket.socket:
        with self._lock:
            self._sockets.add(sock)
        if self._stop.is_set():  # stop ran between the accept or connect and here
            sock.shutdown(socket.SHUT_RDWR)
        return sock

    def _forget(self, sock: socket.socket | None, *, reset: bool = False) -> None:
        if sock is None:
            return
        with self._lock:
            self._sockets.discard(sock)
        if reset:
            _reset(sock)
        else:
            sock.close()

    # ---- plan and figures ----------------------------------------------------------------

    def plan(self, *rules: Rule) -> None:
        """Replace the rules (none: relay cleanly from now on)."""
        with self._lock:
            self.rules = list(rules)

    def faulted(self) -> list[ProxiedRequest]:
        with self._lock:
            return [r for r in self.log if r.fault]

    def requests(self) -> list[ProxiedRequest]:
        with self._lock:
            return list(self.log)

    def summary(self) -> str:
        """``N requests on C connections, M faults injected (kind: n, ...)``: figures."""
        with self._lock:
            total = len(self.log)
            kinds = ", ".join(f"{k}: {n}" for k, n in sorted(self.injected.items()))
            count = sum(self.injected.values())
        return (
            f"{total} requests on {self.connections} connections, {count} faults injected "
            f"({kinds or 'none'})"
        )

    def _decide(self, method: str, path: str, query: str) -> _Decision | None:
        with self._lock:
            rule = next((r for r in self.rules if r.matches(method, path)), None)
            key = (method, path, query)
            streak = self._streaks.pop(key, 0)
            if rule is None or (self.max_streak is not None and streak >= self.max_streak):
                return None
            name = endpoint(method, path)
            first = rule.cover and name not in self._covered
            self._covered.add(name)
            if not first and self._random.random() >= rule.rate:
                return None
            kinds = [k for k in KINDS if self.weights.get(k, 0) > 0]
            if not kinds:
                return None
            if self._first_kinds:
                kind = self._first_kinds.pop()
            else:
                kind = self._random.choices(kinds, [self.weights[k] for k in kinds])[0]
            decision = _Decision(kind)
            if kind == "status":
                decision.status, decision.retry_after = self._random.choice(self.statuses)
            self._streaks[key] = streak + 1
            self.injected[decision.label] += 1
            return decision

    # ---- relaying ------------------------------------------------------------------------

    def _accept(self) -> None:
        assert self._listener is not None
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            client.settimeout(None)
            client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                self.connections += 1
            self._track(client)
            self._spawn(functools.partial(self._serve, client), "faultproxy-conn")

    def _connect(self) -> socket.socket:
        sock = socket.create_connection(self._target, timeout=10)
        sock.settimeout(120)  # an answer slower than this is a hang in the test, not a fault
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return self._track(sock)

    def _serve(self, client: socket.socket) -> None:
        """Relay the requests of one client connection until either side closes."""
        reader = _Reader(client)
        upstream: _Upstream | None = None
        try:
            while not self._stop.is_set() and not reader.at_eof():
                keep, upstream = self._one(client, reader, upstream)
                if not keep:
                    break
        except (_Gone, OSError, ValueError):
            pass  # a peer went away (or sent garbage): this connection is over
        finally:
            if upstream is not None:
                self._forget(upstream.sock)
            self._forget(client)

    def _one(
        self, client: socket.socket, reader: _Reader, upstream: _Upstream | None
    ) -> tuple[bool, _Upstream | None]:
        """Relay one request and its answer; (keep the client connection, upstream left)."""
        head = _Head.parse(reader.read_head())
        method, target, version = head.start.split(" ", 2)
        parts = urlsplit(target)
        entry = ProxiedRequest(method, parts.path, parts.query, start=time.monotonic())
        with self._lock:
            self.log.append(entry)
        try:
            framing = _request_framing(head)
            keep = version == "HTTP/1.1" and "close" not in head.tokens("connection")
            decision = self._decide(method, entry.path, entry.query)
            entry.fault = decision.label if decision else None
            headers = [*head.without_hop_by_hop()]
            out_head = _Head.encode(head.start, headers)
            if decision is None:
                return self._pass(client, reader, upstream, entry, out_head, framing, keep)
            if upstream is not None:  # a fault ends this client connection's upstream
                self._forget(upstream.sock)
                upstream = None
            return self._inject(decision, client, reader, entry, out_head, framing, keep), None
        finally:
            entry.end = time.monotonic()

    def _pass(
        self,
        client: socket.socket,
        reader: _Reader,
        upstream: _Upstream | None,
        entry: ProxiedRequest,
        out_head: bytes,
        framing: _Framing,
        keep: bool,
    ) -> tuple[bool, _Upstream | None]:
        if upstream is None or not upstream.alive():
            if upstream is not None:
                self._forget(upstream.sock)
            upstream = _Upstream(self._connect())
        upstream.sock.sendall(out_head)
        entry.request_bytes = _relay(reader, framing, upstream.sock.sendall)
        entry.forwarded = True
        answer, status, rframing, close_up = self._answer_head(upstream, entry.method)
        entry.upstream_status = entry.status = status
        keep = keep and not rframing.until_close
        client.sendall(self._client_head(answer, keep))
        entry.response_bytes = _relay(upstream.reader, rframing, client.sendall)
        if close_up:
            self._forget(upstream.sock)
            upstream = None
        return keep, upstream

    def _answer_head(self, upstream: _Upstream, method: str) -> tuple[_Head, int, _Framing, bool]:
        """Read the answer's head (interim 1xx answers are dropped: docfs never asks for
        them); its status, framing and whether the server closes the connection after it."""
        while True:
            answer = _Head.parse(upstream.reader.read_head())
            status = int(answer.start.split(" ", 2)[1])
            if status >= 200 or status == 101:
                break
        framing = _response_framing(method, status, answer)
        close = "close" in answer.tokens("connection") or framing.until_close
        return answer, status, framing, close

    @staticmethod
    def _client_head(answer: _Head, keep: bool) -> bytes:
        headers = answer.without_hop_by_hop()
        if not keep:
            headers.append(("Connection", "close"))
        return _Head.encode(answer.start, headers)

    def _read_request(self, reader: _Reader, framing: _Framing) -> bytes:
        body = bytearray()
        _relay(reader, framing, body.extend)
        return bytes(body)

    def _inject(
        self,
        decision: _Decision,
        client: socket.socket,
        reader: _Reader,
        entry: ProxiedRequest,
        out_head: bytes,
        framing: _Framing,
        keep: bool,
    ) -> bool:
        """Carry out one fault; whether the client connection stays usable."""
        kind = decision.kind
        if kind == "status":
            entry.request_bytes = _relay(reader, framing, _discard)
            body = f"<html><body><h1>{decision.status} (fault proxy)</h1></body></html>".encode()
            headers = [("Content-Type", "text/html"), ("Content-Length", str(len(body)))]
            if decision.retry_after is not None:
                headers.append(("Retry-After", decision.retry_after))
            if not keep:
                headers.append(("Connection", "close"))
            client.sendall(_Head.encode(f"HTTP/1.1 {decision.status} Fault", headers) + body)
            entry.status = decision.status
            return keep
        if kind == "stall_drop":
            entry.request_bytes = _relay(reader, framing, _discard)
            self._until_client_leaves(client, self.stall)
            self._forget(client, reset=True)
            return False
        if kind == "stall_pass":
            body = self._read_request(reader, framing)
            entry.request_bytes = len(body)
            self._stop.wait(self.stall)
            if self._stop.is_set():
                return False
            upstream = _Upstream(self._connect())
            try:
                upstream.sock.sendall(out_head + body)
                entry.forwarded = True
                answer, status, rframing, _ = self._answer_head(upstream, entry.method)
                entry.upstream_status = status
                raw = bytearray(self._client_head(answer, False))
                _relay(upstream.reader, rframing, raw.extend)
            finally:
                self._forget(upstream.sock)
            try:  # the client has most likely given up by now
                client.sendall(raw)
                entry.status = status
            except OSError:
                pass
            return False
        upstream = _Upstream(self._connect())
        try:
            if kind == "reset_request":
                if framing.empty:
                    upstream.sock.sendall(out_head[: len(out_head) // 2])
                else:
                    upstream.sock.sendall(out_head)
                    entry.request_bytes = _relay(reader, framing, upstream.sock.sendall, cut=True)
                self._forget(upstream.sock, reset=True)
                self._forget(client, reset=True)
                return False
            upstream.sock.sendall(out_head)
            entry.request_bytes = _relay(reader, framing, upstream.sock.sendall)
            entry.forwarded = True
            answer, status, rframing, _ = self._answer_head(upstream, entry.method)
            entry.upstream_status = status
            if kind == "lost_answer":
                entry.response_bytes = _relay(upstream.reader, rframing, _discard)
                self._forget(client, reset=True)
                return False
            assert kind == "reset_response"
            head = self._client_head(answer, keep)
            if rframing.empty:
                client.sendall(head[: len(head) // 2])
            else:
                client.sendall(head)
                entry.response_bytes = _relay(upstream.reader, rframing, client.sendall, cut=True)
            entry.status = status
            self._forget(client, reset=True)
            return False
        finally:
            self._forget(upstream.sock)

    def _until_client_leaves(self, client: socket.socket, limit: float) -> None:
        """Wait until the client closes its end (it timed out) or ``limit`` seconds pass."""
        deadline = time.monotonic() + limit
        while not self._stop.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                return
            readable, _, _ = select.select([client], [], [], min(left, 0.2))
            if readable:
                try:
                    if not client.recv(PIECE, socket.MSG_PEEK):
                        return
                except OSError:
                    return
                # the client sent more (a pipelined request): it is still there; keep waiting
                time.sleep(min(left, 0.05))


class _Upstream:
    """A connection to the emulator, kept alive across a client connection's requests."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.reader = _Reader(sock)

    def alive(self) -> bool:
        """False if the server closed it while idle (its keep-alive timeout): reconnect
        before sending rather than lose a request to that race."""
        readable, _, _ = select.select([self.sock], [], [], 0)
        return not readable and not self.reader.buf
