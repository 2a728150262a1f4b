"""What an HTTP answer or a failed request means to the user.

The one table from a status to a ``DocfsError`` (backends override single entries per call),
the one-line explanation of a transport failure (no route, refused, no such host, a timeout)
in the user's terms, and the one wording of a refused login. Used by the client in
``_http.py``; importable from there too.
"""

from __future__ import annotations

import errno
import socket
import ssl
from collections.abc import Iterator, Mapping

import httpx

from docfs import errors
from docfs.redact import redact_url

StatusMap = Mapping[int, type[errors.DocfsError]]

#: the default status → error table; backends override single entries per call
DEFAULT_STATUS_MAP: dict[int, type[errors.DocfsError]] = {
    400: errors.InvalidArgument,
    401: errors.PermissionDenied,
    403: errors.PermissionDenied,
    404: errors.NotFound,
    405: errors.NotSupported,
    409: errors.AlreadyExists,
    410: errors.NotFound,
    412: errors.Conflict,
    413: errors.TooLarge,
    415: errors.ProtocolError,
    422: errors.InvalidArgument,
    423: errors.PermissionDenied,
    429: errors.RateLimited,
    507: errors.QuotaExceeded,
}


def error_for_status(
    status: int, message: str, overrides: StatusMap | None = None
) -> errors.DocfsError:
    """Map an HTTP status to the matching error (the single place where this happens)."""
    if overrides and status in overrides:
        return overrides[status](message, status=status)
    cls = DEFAULT_STATUS_MAP.get(status)
    if cls is None:
        cls = errors.RemoteUnavailable if status >= 500 else errors.ProtocolError
    return cls(message, status=status)


def certificate_problem(exc: BaseException) -> ssl.SSLCertVerificationError | None:
    """The certificate verification failure behind a connect error, if that is what it is."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLCertVerificationError):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def causes(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and everything behind it: causes, contexts and the members of exception
    groups (trio reports a refused connection as a group of one failure per address)."""
    pending = [exc]
    seen: set[int] = set()
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        if isinstance(current, BaseExceptionGroup):
            pending.extend(current.exceptions)
        for linked in (current.__cause__, current.__context__):
            if linked is not None:
                pending.append(linked)


#: errno of a failed connect → the words for it
_CONNECT_ERRNOS = {
    errno.ECONNREFUSED: "connection refused",
    errno.EHOSTUNREACH: "no route to host",
    errno.ENETUNREACH: "network unreachable",
    errno.ECONNRESET: "connection reset",
}


def transport_problem(request: httpx.Request, exc: httpx.TransportError) -> str:
    """One line saying why a request got no answer, in the user's terms (host and port, what
    went wrong), not httpx's class name: "cannot reach HOST:PORT (connection refused)",
    "HOST: no such host"."""
    url = request.url
    host = url.host
    port = url.port or {"http": 80, "https": 443}.get(url.scheme)
    where = f"{host}:{port}"
    for cause in causes(exc):
        if isinstance(cause, socket.gaierror):
            if cause.errno in (socket.EAI_NONAME, getattr(socket, "EAI_NODATA", None)):
                return f"{host}: no such host"
            return f"{host}: the name cannot be looked up now ({cause.strerror})"
    for cause in causes(exc):
        if isinstance(cause, OSError) and cause.errno in _CONNECT_ERRNOS:
            return f"cannot reach {where} ({_CONNECT_ERRNOS[cause.errno]})"
    if isinstance(exc, httpx.ConnectTimeout):
        return f"cannot reach {where} (no answer to the connection within the timeout)"
    if isinstance(exc, httpx.TimeoutException):
        return (
            f"{request.method} {redact_url(str(url))}: {where} did not answer within the "
            "timeout (--timeout)"
        )
    if isinstance(exc, httpx.ConnectError):
        return f"cannot reach {where} ({exc or 'connection failed'})"
    if isinstance(exc, httpx.RemoteProtocolError):
        return f"{request.method} {redact_url(str(url))}: {where} closed the connection"
    return f"{request.method} {redact_url(str(url))}: {type(exc).__name__}"


def login_refused(
    product: str, user: str | None, why: str, exc: errors.DocfsError
) -> errors.AuthenticationFailed:
    """The error for a login the server refused (``exc``, an ``AuthenticationFailed`` of the
    login request): what the user must fix, not an HTTP status of a URL. Raise it ``from None``
    (the request's error says nothing more)."""
    return errors.AuthenticationFailed(
        f"{product} refused the login of {user}: {why} (HTTP {exc.status})", status=exc.status
    )
