"""Reading Opus 2 requests: the length rule of PUTs, query integers, JSON bodies, ``Range``
headers and ``multipart/form-data`` uploads (with RFC 5987 filenames), each refused with the
API's 400 when malformed."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote

from starlette.requests import Request

from docfs.emulators.opus2.wire import RANGE, ApiError


@dataclass
class Part:
    headers: dict[str, str]
    data: bytes
    name: str
    filename: str | None


def require_length(request: Request) -> None:
    # the vendor's note: a PUT without a body must say Content-Length: 0
    if request.method == "PUT" and not (
        "content-length" in request.headers or "transfer-encoding" in request.headers
    ):
        raise ApiError(411, "Length Required: send Content-Length: 0 with an empty PUT")


def int_query(query: Mapping[str, str], key: str, default: int, minimum: int) -> int:
    raw = query.get(key)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(400, f"Invalid value for {key}") from None
    if value < minimum:
        raise ApiError(400, f"Invalid value for {key}")
    return value


async def json_body(request: Request) -> Any:
    try:
        return json.loads(await request.body())
    except ValueError:
        raise ApiError(400, "Invalid JSON") from None


async def json_object(request: Request) -> dict[str, Any]:
    data = await json_body(request)
    if not isinstance(data, dict):
        raise ApiError(400, "Invalid JSON: expected an object")
    return data


def byte_range(header: str, length: int) -> tuple[int, int, int]:
    """(start, stop, status) for a single ``bytes=`` range; anything else is the whole body."""
    match = RANGE.match(header.strip())
    if match is None or (not match.group(1) and not match.group(2)):
        return 0, length, 200
    first, last = match.group(1), match.group(2)
    if not first:
        start, stop = max(0, length - int(last)), length
    else:
        start = int(first)
        stop = min(length, int(last) + 1) if last else length
    if start >= length or stop <= start:
        raise ApiError(
            416, "Requested range not satisfiable", headers={"Content-Range": f"bytes */{length}"}
        )
    return start, stop, 206


def rfc5987(name: str) -> str:
    return quote(name, safe="")


_PARAM = re.compile(r';\s*([A-Za-z0-9_*-]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^;]*)')


def _disposition(value: str) -> dict[str, str]:
    params: dict[str, str] = {}
    for key, raw in _PARAM.findall(";" + value.split(";", 1)[1] if ";" in value else ""):
        text = raw.strip()
        if text.startswith('"') and text.endswith('"'):
            text = re.sub(r"\\(.)", r"\1", text[1:-1])
            # browsers and httpx escape these three in the HTML5 encoding
            text = text.replace("%22", '"').replace("%0D", "\r").replace("%0A", "\n")
        key = key.lower()
        if key.endswith("*"):
            _charset, _, encoded = text.partition("''")
            params[key[:-1]] = unquote(encoded)
        else:
            params.setdefault(key, text)
    return params


def parse_multipart(content_type: str, body: bytes) -> dict[str, Part]:
    """The parts of a ``multipart/form-data`` body by field name (first one wins)."""
    kind, _, rest = content_type.partition(";")
    if kind.strip().lower() != "multipart/form-data":
        raise ApiError(400, "Expected multipart/form-data")
    boundary = _disposition("x" + ";" + rest).get("boundary") if rest else None
    if not boundary:
        raise ApiError(400, "Missing multipart boundary")
    delimiter = b"\r\n--" + boundary.encode("latin-1")
    pieces = (b"\r\n" + body).split(delimiter)
    parts: dict[str, Part] = {}
    for piece in pieces[1:]:
        if piece.startswith(b"--"):
            break
        head, sep, data = piece.removeprefix(b"\r\n").partition(b"\r\n\r\n")
        if not sep:
            raise ApiError(400, "Malformed multipart body")
        headers: dict[str, str] = {}
        for line in head.decode("utf-8", "replace").split("\r\n"):
            key, _, value = line.partition(":")
            headers[key.strip().lower()] = value.strip()
        params = _disposition(headers.get("content-disposition", ""))
        if "name" in params:
            parts.setdefault(
                params["name"], Part(headers, data, params["name"], params.get("filename"))
            )
    return parts
