"""Request parsing shared by the DocSpace handlers: body fields, multipart, byte ranges.

DTO binding is case-insensitive and lenient about types like ASP.NET's binder; the numbered
chunk length and the one-range rule follow ``docs/protocols/docspace.md`` ("Chunked
uploads" and §5).
"""

from __future__ import annotations

import importlib.util
import re
import urllib.parse
from dataclasses import dataclass, field
from typing import Any

from docfs.emulators.docspace.model import ValidationFailed, utf16_length


def lookup(body: dict[str, Any], name: str, default: Any = None) -> Any:
    """Case-insensitive JSON binding, as ASP.NET Core does it."""
    lowered = name.lower()
    for key, value in body.items():
        if key.lower() == lowered:
            return value
    return default


def as_bool(value: Any, default: bool = False) -> bool:
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1", "yes")
    return bool(value)


def as_int(value: Any, name: str) -> int:
    """Numbers may come as JSON numbers or strings (AllowReadingFromString)."""
    if isinstance(value, bool):
        raise ValidationFailed({name: [f"The value is not valid for {name}."]})
    if isinstance(value, int):
        return value
    if isinstance(value, str) and re.fullmatch(r"-?\d+", value.strip()):
        return int(value)
    raise ValidationFailed({name: [f"The value '{value}' is not valid for {name}."]})


def enum_value(value: Any, names: dict[str, int], name: str) -> int:
    """JsonStringEnumConverter: a name (any case) or a number."""
    if isinstance(value, str) and value.strip().lower() in names:
        return names[value.strip().lower()]
    number = as_int(value, name)
    if number not in names.values():
        raise ValidationFailed({name: [f"The value '{value}' is not valid for {name}."]})
    return number


@dataclass
class Part:
    """One part of a multipart/form-data body."""

    name: str
    filename: str | None
    content_type: str
    data: bytes
    #: the part's headers as the server's MultipartReader sees them (name, value), in order
    headers: list[tuple[str, str]] = field(default_factory=list)


def parse_multipart(body: bytes, content_type: str) -> list[Part]:
    """A small multipart/form-data reader (the emulator holds whole bodies in memory anyway)."""
    match = re.search(r'boundary="?([^";]+)"?', content_type)
    if not match:
        return []
    delimiter = b"--" + match.group(1).encode("latin-1")
    parts: list[Part] = []
    for raw in body.split(delimiter)[1:]:
        if raw.startswith(b"--"):
            break
        raw = raw.removeprefix(b"\r\n")
        head, sep, data = raw.partition(b"\r\n\r\n")
        if not sep:
            continue
        data = data.removesuffix(b"\r\n")
        headers: dict[str, str] = {}
        raw_headers: list[tuple[str, str]] = []
        for line in head.decode("utf-8", "replace").split("\r\n"):
            key, _, value = line.partition(":")
            headers[key.strip().lower()] = value.strip()
            raw_headers.append((key.strip(), value.strip()))
        disposition = headers.get("content-disposition", "")
        name = re.search(r'\bname="([^"]*)"', disposition)
        filename = re.search(r'filename="([^"]*)"', disposition)
        starred = re.search(r"filename\*=UTF-8''([^;]+)", disposition, re.IGNORECASE)
        fname = urllib.parse.unquote(starred.group(1)) if starred else None
        if fname is None and filename:
            fname = filename.group(1)
        parts.append(
            Part(
                name=name.group(1) if name else "",
                filename=fname,
                content_type=headers.get("content-type", "application/octet-stream"),
                data=data,
                headers=raw_headers,
            )
        )
    return parts


def numbered_chunk_length(content_length: int, content_type: str, part: Part) -> int:
    """What ``ChunkedUploaderHandler.cs`` (``UploadAsync``) takes as a numbered chunk's length.

    The handler never measures the file part: it subtracts from ``Content-Length`` the header
    lines of the first section counted as ``len(value) + len(key) + 2`` *characters* each, twice
    ``len("\\r\\n--" + boundary) + 2`` and 6. That is exact for a part with two ASCII headers
    (Content-Disposition and Content-Type, what a browser sends for a Blob); a part filename
    with ``é`` or CJK characters makes the chunk look longer than it is, and ``finalize`` then
    finds the sum of the chunks different from the session's size.
    """
    match = re.search(r'boundary="?([^";]+)"?', content_type)
    boundary = match.group(1) if match else ""
    headers_length = sum(utf16_length(v) + utf16_length(k) + 2 for k, v in part.headers)
    boundary_length = len(("\r\n--" + boundary).encode()) + 2
    return content_length - headers_length - boundary_length * 2 - 6


def parse_range(header: str, size: int) -> tuple[int, int] | None:
    """FileHandler.ProcessRangeHeader: first range only, no suffix form; END clamped.

    Returns (start, end inclusive); raises ValueError for what the server answers 400.
    """
    spec = header.strip()
    if not spec.lower().startswith("bytes="):
        return None
    first = spec[6:].split(",")[0].strip()
    start_text, dash, end_text = first.partition("-")
    if not dash or not start_text.strip().isdigit():
        raise ValueError("suffix or malformed range")
    start = int(start_text)
    end = int(end_text) if end_text.strip().isdigit() else size - 1
    end = min(end, size - 1)
    if start > end:
        raise ValueError("start beyond end")
    return start, end


#: uvicorn's h11 writer rejects a header value with leading whitespace; httptools writes it
LEADING_SPACE_SUPPORTED = importlib.util.find_spec("httptools") is not None
