"""The HTTP layer every backend talks through.

One place for: HTTP status → ``DocfsError`` mapping; retries with exponential backoff and jitter
that honour ``Retry-After``; a token-bucket rate limiter and a concurrency cap per remote; the
session hook (log in, attach credentials, re-login once when the server says the session
expired); request accounting per endpoint; log lines without secrets.

Bodies are given as ``bytes``, a ``Path`` (streamed from disk and re-opened on every attempt) or
a ``StreamBody`` (a body of known length opened again for every attempt: a multipart upload, see
``_multipart.py``), so a retry or a re-login never needs the whole upload in memory
(``_http_body.py``). The status table and the words for transport failures are in
``_http_errors.py``, TLS, origins and the cookie-less httpx client in ``_http_transport.py``;
their names are importable from here too.
"""

from __future__ import annotations

import contextvars
import email.utils
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import httpx
import trio

from docfs import errors
from docfs.backends._bandwidth import Bandwidth
from docfs.backends._http_body import COUNT_PIECE as COUNT_PIECE
from docfs.backends._http_body import SMALL_BODY as SMALL_BODY
from docfs.backends._http_body import Body as Body
from docfs.backends._http_body import BodyReader as BodyReader
from docfs.backends._http_body import CountingStream, body_length, open_content
from docfs.backends._http_body import StreamBody as StreamBody
from docfs.backends._http_errors import DEFAULT_STATUS_MAP as DEFAULT_STATUS_MAP
from docfs.backends._http_errors import StatusMap as StatusMap
from docfs.backends._http_errors import certificate_problem
from docfs.backends._http_errors import error_for_status as error_for_status
from docfs.backends._http_errors import login_refused as login_refused
from docfs.backends._http_errors import transport_problem as transport_problem
from docfs.backends._http_transport import Client, origin
from docfs.backends._http_transport import tls_context as tls_context
from docfs.backends._threaded import THREADED, ThreadingTransport

# re-exported: callers that build a client give it its ``Limits``
from docfs.backends.traffic import EndpointStats as EndpointStats
from docfs.backends.traffic import Limits as Limits
from docfs.backends.traffic import Transfer as Transfer
from docfs.redact import Redactor, redact_url

# re-exported: the policy moved to docfs.retry (one policy for every retry loop)
from docfs.retry import RetryPolicy as RetryPolicy

log = logging.getLogger("docfs.http")

IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})
#: statuses worth another try; 429/503 also for non-idempotent requests (not processed)
RETRY_ALWAYS = frozenset({429, 503})
RETRY_IDEMPOTENT = frozenset({500, 502, 504})
#: after a request found the server unreachable through all its retries, later requests make
#: one try each for this long: browsing cached data during an outage stays quick, and each
#: request still probes, so the end of the outage is noticed at once
DOWN_HOLD = 10.0
#: headers that carry credentials in some API; never sent to another origin
CREDENTIAL_HEADERS = frozenset(
    {"authorization", "proxy-authorization", "cookie", "apikey", "x-api-key", "x-api-token"}
)

#: after the last byte of an upload, the server may take this long per byte to store it
#: (write, checksum, index) before it answers: the answer is awaited ``timeout`` plus that
#: (1 s per MiB). Without it, a big upload timed out while the server was still storing it,
#: and the upload was sent again (issue 18.2)
STORE_SECONDS_PER_BYTE = 1.0 / (1 << 20)

#: a rate-limit wait at least this long (seconds) gets a log line
LONG_WAIT = 5.0


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or HTTP date)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


class TokenBucket:
    """Client-side rate limit: ``rate`` requests per second with bursts of ``burst``.

    ``waits`` and ``waited`` count the requests that had to wait for a token (also behind
    another waiter) and the seconds they spent, for ``docfs status``.
    """

    def __init__(self, rate: float, burst: int) -> None:
        self.rate = rate
        self.burst = float(burst)
        self._tokens = float(burst)
        self._stamp: float | None = None
        self._lock = trio.Lock()
        self.waits = 0
        self.waited = 0.0

    async def acquire(self) -> None:
        started = trio.current_time()
        # a request queued behind a sleeping one waits for the rate limit too
        delayed = self._lock.locked()
        async with self._lock:
            while True:
                now = trio.current_time()
                if self._stamp is not None:
                    self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
                self._stamp = now
                # a hair short of a token counts as one: a wait of 1e-16 s does not move a
                # clock that reads 100 s, and the loop would spin without end
                if self._tokens >= 1 - 1e-9:
                    self._tokens -= 1
                    if delayed:
                        self.waits += 1
                        self.waited += now - started
                        if now - started >= LONG_WAIT:
                            # visible, so a slow copy is not mistaken for a hang
                            log.info(
                                "request budget: waited %.1f s for the server's rate limit",
                                now - started,
                            )
                    return
                delayed = True
                await trio.sleep((1 - self._tokens) / self.rate)


def rolling_window_bucket(limit: float, window: float = 60.0, max_burst: int = 10) -> Limits:
    """Rate and burst of a token bucket that never lets more than ``limit`` requests through in
    any rolling ``window`` seconds (a server's "N requests per minute").

    A bucket lets through up to ``burst + rate * window`` in a window: its burst comes on top of
    its rate. So the rate gets what is left of the limit after the burst, minus one for a
    request on the window's edge (the rule the Opus 2 profile uses, ``Opus2Profile.limits``).
    Only ``requests_per_second`` and ``burst`` of the result are meant to be used.
    """
    burst = max(1, min(max_burst, int(limit // 10)))
    spare = max(0.5, limit - burst - 1)
    return Limits(requests_per_second=spare / window, burst=burst)


#: the upload the current task is doing. Task-local, not global: trio gives each task its own
#: copy of the context, so concurrent uploads never count into each other; it carries the
#: upload from the filesystem through a backend's calls (whose signatures know nothing of it)
#: down to the request bodies
_TRANSFER: contextvars.ContextVar[Transfer | None] = contextvars.ContextVar(
    "docfs_transfer", default=None
)


class Session(Protocol):
    """A backend's login state, attached to each request (cookie, bearer token, API key…)."""

    def apply(self, request: httpx.Request) -> None: ...

    def needs_login(self) -> bool: ...

    async def login(self, http: HttpClient) -> None: ...

    def expired(self, response: httpx.Response) -> bool:
        """True if ``response`` says the session is gone and one re-login may help."""
        ...

    def secrets(self) -> Iterable[str]: ...


@dataclass
class _Attempt:
    relogged: bool = False
    tries: int = 0
    last_error: errors.DocfsError | None = field(default=None)
    #: ``HttpClient.logins`` when the request was sent: a 401 to it needs a new login only if
    #: no other request logged in again meanwhile
    login_epoch: int = 0
    #: tries that got no answer at all (connection refused, reset, timeout)
    unanswered: int = 0


class HttpClient:
    """An httpx.AsyncClient with docfs's retry, rate, session and accounting rules."""

    def __init__(
        self,
        base_url: str,
        *,
        limits: Limits | None = None,
        retry: RetryPolicy | None = None,
        redactor: Redactor | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        headers: Mapping[str, str] | None = None,
        verify: bool = True,
        ca_bundle: Path | None = None,
    ) -> None:
        self.limits = limits or Limits()
        self.retry = retry or RetryPolicy()
        self.redactor = redactor or Redactor()
        self.session: Session | None = None
        self.stats: dict[str, EndpointStats] = {}
        #: uploads in flight (``uploading``), for ``docfs status`` and the write-back meter
        self.transfers: dict[int, Transfer] = {}
        self._bucket = (
            TokenBucket(self.limits.requests_per_second, self.limits.burst)
            if self.limits.requests_per_second
            else None
        )
        self._slots = trio.CapacityLimiter(self.limits.concurrency)
        #: ``--bwlimit``: one byte budget for the bodies this client sends and receives
        self.bandwidth = Bandwidth(self.limits.bandwidth) if self.limits.bandwidth else None
        self._login_lock = trio.Lock()
        #: logins done so far (see ``_Attempt.login_epoch``)
        self.logins = 0
        #: trio time until which the server counts as unreachable (see ``DOWN_HOLD``)
        self._down_until: float | None = None
        #: the server answered at least once (see ``_went_down``)
        self._answered_once = False
        #: called when the server answers again after it was unreachable (the write-back
        #: queue retries at once instead of at the end of its backoff)
        self.on_recovery: list[Callable[[], None]] = []
        #: called when the server stops answering (the vfs serves what it has meanwhile)
        self.on_unreachable: list[Callable[[], None]] = []
        #: follow a redirect to another origin (without credentials); a backend whose API never
        #: redirects elsewhere turns this off, and such a redirect is then a protocol error
        self.foreign_redirects = True
        #: a backend's own reading of an error answer, before the status decides: an error to
        #: raise at once, never retried, or None (e.g. RSpace's upload quota answers 429 like a
        #: throttle, but no wait within a retry would help: see ``_judge``)
        self.final_error: Callable[[httpx.Response, str], errors.DocfsError | None] | None = None
        self.base_url = base_url.rstrip("/")
        if not verify:
            log.warning(
                "TLS certificate verification is OFF for %s: anyone on the way can read and "
                "change the traffic, credentials included",
                redact_url(self.base_url),
            )
        tls = tls_context(verify, ca_bundle)
        self.client = Client(
            base_url=self.base_url,
            # downloads run in worker threads (see _threaded.py); tests may pass their own
            transport=transport or ThreadingTransport(tls, bandwidth=self.bandwidth),
            timeout=httpx.Timeout(self.limits.timeout, connect=min(10.0, self.limits.timeout)),
            headers=dict(headers or {}),
            follow_redirects=True,
            verify=tls,
            # runs for every request of a redirect chain too: credentials stay at home
            event_hooks={"request": [self._check_origin]},
        )
        self._origin = origin(self.client.base_url)

    async def _check_origin(self, request: httpx.Request) -> None:
        """Strip credentials from a request that a redirect sends to another origin.

        httpx drops ``Authorization`` and the manual ``Cookie`` header on such redirects, but
        not API-key headers, and its cookie jar adds cookies by host (not port) again.
        """
        if origin(request.url) == self._origin:
            return
        where = f"{request.method} {redact_url(str(request.url))}"
        if not self.foreign_redirects:
            raise errors.ProtocolError(f"{where}: the server redirected to another host; refused")
        for name, value in list(request.headers.items()):
            if name.lower() in CREDENTIAL_HEADERS or self.redactor.redact(value) != value:
                del request.headers[name]
        log.debug("following a redirect to another host without credentials: %s", where)

    async def aclose(self) -> None:
        await self.client.aclose()

    def _stat(self, endpoint: str) -> EndpointStats:
        return self.stats.setdefault(endpoint, EndpointStats())

    @contextmanager
    def uploading(self, path: str, size: int, key: str | None = None) -> Iterator[Transfer]:
        """Count the request bodies sent inside this block (in this task) as the upload of
        ``path`` (``size`` bytes); ``key`` finds it again (a write-back job's id)."""
        transfer = Transfer(path, size, key or path, time.monotonic())
        self.transfers[id(transfer)] = transfer
        token = _TRANSFER.set(transfer)
        try:
            yield transfer
        finally:
            _TRANSFER.reset(token)
            del self.transfers[id(transfer)]

    def total_requests(self) -> int:
        return sum(s.requests for s in self.stats.values())

    def rate_limit_waits(self) -> tuple[int, float]:
        """Requests that waited for the client-side rate limit, and the seconds they waited."""
        if self._bucket is None:
            return 0, 0.0
        return self._bucket.waits, self._bucket.waited

    async def ensure_session(self) -> None:
        session = self.session
        if session is None or not session.needs_login():
            return
        async with self._login_lock:
            if session.needs_login():
                await session.login(self)
                self.logins += 1
                self.redactor.add(*session.secrets())

    async def _relogin(self, stale: Session, epoch: int) -> None:
        async with self._login_lock:
            if self.logins != epoch:
                # several requests saw the session expire at once: the first one renewed it
                return
            await stale.login(self)
            self.logins += 1
            self.redactor.add(*stale.secrets())

    def _build(
        self,
        method: str,
        url: str,
        params: Mapping[str, Any] | None,
        headers: Mapping[str, str] | None,
        json: Any,
        data: Mapping[str, str] | None,
        body: Body,
        threaded: bool = False,
    ) -> tuple[httpx.Request, Any]:
        content, handle = open_content(body)
        if url.startswith("/") and not url.startswith("//") and "?" not in url:
            # the whole URL as one string: httpx parses (and checks char by char) a relative
            # URL, its merge with the base and the merge of the params each on their own,
            # ~0.16 ms of a small upload's CPU; one parse gives the same URL (issue 24, B5)
            url = self.base_url + url
            if params:
                url = f"{url}?{httpx.QueryParams(params)}"
            params = None
        request = self.client.build_request(
            method,
            url,
            params=params,
            headers=headers,
            json=json,
            data=data,
            content=content,
            extensions={THREADED: True} if threaded else None,
        )
        size = body_length(body)
        if isinstance(body, Path | StreamBody):
            request.headers["Content-Length"] = str(size)
            request.headers.pop("Transfer-Encoding", None)
        if size:
            # ``timeout`` is per-request idle time (connect, each read, each write); the wait
            # for the answer to an upload grows with its size (see STORE_SECONDS_PER_BYTE)
            timeout = self.limits.timeout
            request.extensions["timeout"] = httpx.Timeout(
                timeout,
                connect=min(10.0, timeout),
                read=timeout + size * STORE_SECONDS_PER_BYTE,
            ).as_dict()
        return request, handle

    @asynccontextmanager
    async def stream(
        self,
        method: str,
        url: str,
        *,
        endpoint: str,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        json: Any = None,
        data: Mapping[str, str] | None = None,
        body: Body = None,
        idempotent: bool | None = None,
        status_map: StatusMap | None = None,
        auth: bool = True,
        threaded: bool = False,
    ) -> AsyncIterator[httpx.Response]:
        """Send one request with retries; yield the response with its body unread.

        Non-2xx answers become ``DocfsError`` after the retries. Failures after the headers
        arrived (a reset mid-body) are the caller's to retry: see ``download``. ``threaded``
        bodies are received in a worker thread (big downloads; see ``_threaded.py``).
        """
        if idempotent is None:
            idempotent = method.upper() in IDEMPOTENT
        stat = self._stat(endpoint)
        state = _Attempt()
        while True:
            if auth:
                await self.ensure_session()
            session = self.session if auth else None
            request, handle = self._build(
                method, url, params, headers, json, data, body, threaded and body is None
            )
            counter = None
            if body is not None:
                # bytes count as they leave, not before (see CountingStream)
                counter = CountingStream(request.stream, stat, _TRANSFER.get(), self.bandwidth)
                request.stream = counter
            if session is not None:
                state.login_epoch = self.logins
                session.apply(request)
            verdict: float | bool | None = None
            try:
                if self._bucket is not None:
                    await self._bucket.acquire()
                async with self._slots:
                    response = await self._send(request, stat, state, idempotent, body)
                    if response is None:
                        verdict = self.retry.backoff(state.tries, None)
                    else:
                        try:
                            verdict = await self._judge(
                                response, session, state, idempotent, status_map, stat
                            )
                            if verdict is True:
                                yield response
                                return
                        finally:
                            await response.aclose()
            finally:
                if handle is not None:
                    handle.close()
            if counter is not None and (transfer := _TRANSFER.get()) is not None:
                # the attempt is sent again (or the error ends the upload): its bytes start over
                transfer.sent -= counter.counted
            if verdict is False:
                # log in again outside the concurrency slot: the login needs a slot too
                assert session is not None
                await self._relogin(session, state.login_epoch)
                continue
            state.tries += 1
            if state.tries >= self._attempts():
                assert state.last_error is not None
                if state.unanswered == state.tries:
                    self._went_down()
                # the caller reports the error in its own one line (the mount's start, the
                # FUSE operation, the upload): the attempts are detail for -v http
                log.debug("giving up after %d attempts: %s", state.tries, state.last_error)
                raise state.last_error
            stat.retries += 1
            log.debug("retrying in %.2f s after: %s", verdict or 0, state.last_error)
            await trio.sleep(verdict or 0)

    async def _send(
        self,
        request: httpx.Request,
        stat: EndpointStats,
        state: _Attempt,
        idempotent: bool,
        body: Body,
    ) -> httpx.Response | None:
        """Send once; ``None`` means a transport failure worth another try."""
        stat.requests += 1
        try:
            response = await self.client.send(request, stream=True)
            self._answered()
            return response
        except httpx.ConnectError as exc:
            problem = certificate_problem(exc)
            if problem is None:
                self._transport_failed(request, exc, stat, state, idempotent)
                return None
            stat.errors += 1
            # not a network hiccup: every retry would fail the same way, so say so at once
            raise errors.RemoteUnavailable(
                f"{request.method} {redact_url(str(request.url))}: the server's TLS certificate "
                f"is not trusted ({problem.verify_message}); a private CA can be added with a "
                "CA bundle"
            ) from None
        except httpx.TransportError as exc:
            self._transport_failed(request, exc, stat, state, idempotent)
            return None

    def _attempts(self) -> int:
        down = self._down_until is not None and trio.current_time() < self._down_until
        return 1 if down else self.retry.attempts

    def _went_down(self) -> None:
        if self._down_until is None:
            # a server that never answered (a wrong host or port at the start) is said by the
            # error itself; one that answered before went down, which is news worth a line
            log.log(
                logging.WARNING if self._answered_once else logging.DEBUG,
                "the server is unreachable; until it answers, requests are not retried",
            )
            for callback in self.on_unreachable:
                callback()
        self._down_until = trio.current_time() + DOWN_HOLD

    def _answered(self) -> None:
        """Any answer (even an error status) proves the server is reachable."""
        self._answered_once = True
        if self._down_until is None:
            return
        self._down_until = None
        log.info("the server answers again")
        for callback in self.on_recovery:
            callback()

    def _transport_failed(
        self,
        request: httpx.Request,
        exc: httpx.TransportError,
        stat: EndpointStats,
        state: _Attempt,
        idempotent: bool,
    ) -> None:
        """Record a failed send; raise unless another try is safe."""
        state.unanswered += 1
        stat.errors += 1
        state.last_error = errors.RemoteUnavailable(transport_problem(request, exc))
        state.last_error.timed_out = isinstance(exc, httpx.TimeoutException)
        if not idempotent and not isinstance(exc, httpx.ConnectError):
            # the server may have processed it: only the caller can tell
            raise state.last_error from None

    def _server_message(self, response: httpx.Response) -> str:
        """The server's own words for an error (a JSON ``message``/``detail``/``error``), cut
        short and without secrets, so EINVAL and friends say what the server objected to."""
        if "json" not in response.headers.get("content-type", ""):
            return ""
        try:
            body = response.json()
        except ValueError:
            return ""
        if not isinstance(body, dict):
            return ""
        for key in ("message", "detail", "error", "error_description"):
            value = body.get(key)
            if isinstance(value, str) and value.strip():
                return f" ({self.redactor.redact(value.strip())[:200]})"
            if isinstance(value, dict) and isinstance(value.get("message"), str):
                return f" ({self.redactor.redact(value['message'].strip())[:200]})"
        return ""

    async def _judge(
        self,
        response: httpx.Response,
        session: Session | None,
        state: _Attempt,
        idempotent: bool,
        status_map: StatusMap | None,
        stat: EndpointStats,
    ) -> float | bool:
        """True: success; False: log in again; a number: retry after that many seconds.

        Raises the mapped error when the answer is final.
        """
        status = response.status_code
        request = response.request
        if session is not None and not state.relogged and session.expired(response):
            state.relogged = True
            log.info("session expired (HTTP %d); logging in again", status)
            return False
        if status < 400:
            if log.isEnabledFor(logging.DEBUG):  # the URL is not redacted for nothing
                log.debug("%s %s -> %d", request.method, redact_url(str(request.url)), status)
            return True
        await response.aread()
        stat.bytes_received += len(response.content)
        stat.errors += 1
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        detail = self._server_message(response)
        message = f"{request.method} {redact_url(str(request.url))}: HTTP {status}{detail}"
        final = self.final_error(response, message) if self.final_error is not None else None
        if final is not None:
            state.last_error = final
            raise final
        error = error_for_status(status, message, status_map)
        error.url = redact_url(str(request.url))
        if isinstance(error, errors.RateLimited):
            error.retry_after = retry_after
        state.last_error = error
        retryable = status in RETRY_ALWAYS or (idempotent and status in RETRY_IDEMPOTENT)
        if not retryable or (retry_after is not None and retry_after > self.retry.max_retry_after):
            raise error
        return self.retry.backoff(state.tries, retry_after)

    async def request(
        self,
        method: str,
        url: str,
        *,
        endpoint: str,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        json: Any = None,
        data: Mapping[str, str] | None = None,
        body: Body = None,
        idempotent: bool | None = None,
        status_map: StatusMap | None = None,
        auth: bool = True,
    ) -> httpx.Response:
        """Send one request with retries and return the response with its body read.

        A connection lost while reading the body of an idempotent request is retried too.
        """
        if idempotent is None:
            idempotent = method.upper() in IDEMPOTENT
        for attempt in range(self.retry.attempts):
            try:
                async with self.stream(
                    method,
                    url,
                    endpoint=endpoint,
                    params=params,
                    headers=headers,
                    json=json,
                    data=data,
                    body=body,
                    idempotent=idempotent,
                    status_map=status_map,
                    auth=auth,
                ) as response:
                    await response.aread()
                    self._stat(endpoint).bytes_received += len(response.content)
                    return response
            except httpx.TransportError as exc:
                if not idempotent or attempt + 1 >= self.retry.attempts:
                    raise errors.RemoteUnavailable(
                        f"{method} {redact_url(url)}: connection lost reading the answer"
                    ) from exc
                self._stat(endpoint).retries += 1
                await trio.sleep(self.retry.backoff(attempt, None))
        raise AssertionError("unreachable")

    async def download(
        self,
        url: str,
        sink: Callable[[bytes], Any],
        *,
        endpoint: str,
        start: int = 0,
        end: int | None = None,
        ranges: bool = False,
        params: Mapping[str, Any] | None = None,
        status_map: StatusMap | None = None,
    ) -> int:
        """Stream bytes [start, end) of ``url`` into ``sink``; resume after a lost connection.

        With ``ranges`` a resume asks for the missing bytes only; without, the body is fetched
        again from byte 0 and the part already delivered is skipped. Returns bytes delivered.
        """
        delivered = 0
        for attempt in range(self.retry.attempts):
            headers: dict[str, str] = {}
            skip = 0
            if ranges and (start + delivered > 0 or end is not None):
                last = "" if end is None else str(end - 1)
                headers["Range"] = f"bytes={start + delivered}-{last}"
            else:
                skip = start + delivered
            try:
                async with self.stream(
                    "GET",
                    url,
                    endpoint=endpoint,
                    params=params,
                    headers=headers,
                    status_map=status_map,
                    threaded=True,
                ) as response:
                    if ranges and headers and response.status_code == 200:
                        skip = start + delivered  # server ignored Range
                    async for chunk in response.aiter_bytes():
                        self._stat(endpoint).bytes_received += len(chunk)
                        if skip:
                            if len(chunk) <= skip:
                                skip -= len(chunk)
                                continue
                            chunk = chunk[skip:]
                            skip = 0
                        if end is not None:
                            room = end - start - delivered
                            if room <= 0:
                                break
                            chunk = chunk[:room]
                        delivered += len(chunk)
                        result = sink(chunk)
                        if result is not None:
                            await result
                    return delivered
            except httpx.TransportError as exc:
                if attempt + 1 >= self.retry.attempts:
                    raise errors.RemoteUnavailable(
                        f"GET {redact_url(url)}: connection lost after {delivered} bytes"
                    ) from exc
                self._stat(endpoint).retries += 1
                log.info(
                    "download of %s interrupted after %d bytes; resuming",
                    redact_url(url),
                    delivered,
                )
                await trio.sleep(self.retry.backoff(attempt, None))
        raise AssertionError("unreachable")
