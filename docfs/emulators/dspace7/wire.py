"""DSpace 7's wire vocabulary: where the API lives, header and cookie names, limits, the
date formats and the error exception every handler raises (``Fail``, rendered by
``rendering.Rendering._error`` as Spring Boot's error JSON)."""

from __future__ import annotations

import base64
import email.utils
import re
from datetime import UTC, datetime
from typing import Any

JSON = dict[str, Any]

#: where the REST API lives below the server root (the webapp is deployed as ``/server``)
SERVER_PATH = "/server"
API_PATH = "/server/api"

CSRF_HEADER = "DSPACE-XSRF-TOKEN"
CSRF_REQUEST_HEADER = "X-XSRF-TOKEN"
CSRF_COOKIE = "DSPACE-XSRF-COOKIE"
MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
HAL = "application/hal+json;charset=UTF-8"
CHUNK = 64 * 1024

#: messages used by DSpaceApiExceptionControllerAdvice (docs/protocols/dspace7.md, "Errors")
MESSAGES = {
    400: "Request is invalid or incorrect",
    401: "Authentication is required",
    403: "Access is denied",
    404: "The requested resource was not found",
    405: "Request method is not supported",
    413: "Maximum upload size exceeded",
    422: "Unprocessable or invalid entity",
    429: "Too many requests",
    500: "An exception has occurred",
}
REASONS = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    412: "Precondition Failed",
    413: "Payload Too Large",
    415: "Unsupported Media Type",
    416: "Requested Range Not Satisfiable",
    422: "Unprocessable Entity",
    429: "Too Many Requests",
    500: "Internal Server Error",
}
CSRF_MESSAGE = "Access is denied. Invalid CSRF token."
WWW_AUTHENTICATE = 'password realm="DSpace REST API"'
HANDLE_PREFIX = "123456789"
DISCOVERY_MAX = 100
PAGE_MAX = 2000
PAGE_DEFAULT = 20
SORT_FIELDS = ("score", "dc.title", "dc.date.issued", "dc.date.accessioned", "lastModified")
UUID_RX = "[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
RANGE_RX = re.compile(r"^bytes=\d*-\d*(,\s*\d*-\d*)*$")
METADATA_FIELD_RX = re.compile(r"^[A-Za-z0-9]+\.[A-Za-z0-9_]+(\.[A-Za-z0-9_]+)?$")


def iso(ts: float) -> str:
    """DSpace's date format: ISO-8601 with milliseconds and an offset."""
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds")


def http_date(ts: float) -> str:
    return email.utils.formatdate(ts, usegmt=True)


def parse_http_date(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return email.utils.parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError):
        return None


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def tomcat_header(value: str) -> str:
    """A header value as Tomcat writes it: ISO-8859-1, with control characters and anything
    above U+00FF turned into spaces (``Http11OutputBuffer`` cannot send them). Without this, a
    bitstream whose name holds a NUL crashed the emulator's ``/content`` (the DSpace 6
    emulator's ``/retrieve`` had the same fix)."""
    return "".join(
        " " if (ord(c) < 32 and c != "\t") or ord(c) == 127 or ord(c) > 255 else c for c in value
    )


class Fail(Exception):
    """An error answer: becomes Spring Boot's error JSON (docs/protocols/dspace7.md, "Errors")."""

    def __init__(
        self, status: int, message: str | None = None, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message or MESSAGES.get(status, REASONS.get(status, "Error")))
        self.status = status
        self.message = message or MESSAGES.get(status, REASONS.get(status, "Error"))
        self.headers = headers or {}
