"""One authenticated API request as the handlers see it, and the request parsing they share
(a ``Long`` path argument, a multipart body)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from starlette.responses import Response

from docfs.emulators.rspace.errors import ApiError
from docfs.emulators.rspace.records import User


@dataclass
class Ctx:
    """One authenticated API request, as the handlers see it."""

    user: User
    method: str
    args: tuple[str, ...]
    query: list[tuple[str, str]]
    headers: Mapping[str, str]
    body: bytes
    base: str

    def param(self, name: str) -> str | None:
        for k, v in self.query:
            if k == name:
                return v
        return None

    def params(self, name: str) -> list[str]:
        return [v for k, v in self.query if k == name]

    def json(self) -> Any:
        if not self.body.strip():
            raise ApiError(400, "Required request body is missing", internal=40009)
        try:
            return json.loads(self.body)
        except ValueError:
            raise ApiError(
                400, "JSON parse error: malformed request body", internal=40009
            ) from None

    def link(self, path: str, rel: str = "self") -> dict[str, str]:
        return {"link": f"{self.base}{path}", "rel": rel}


Handler = Callable[[Ctx], Response]


def int_arg(value: str, name: str = "id") -> int:
    try:
        return int(value)
    except ValueError:
        raise ApiError(
            400,
            f"Failed to convert value of type 'java.lang.String' to required type 'java.lang.Long'"
            f'; For input string: "{value}"',
            internal=40006,
            errors=[f"{name} should be of type java.lang.Long"],
        ) from None


def parse_multipart(body: bytes, content_type: str) -> tuple[dict[str, str], dict[str, Any]]:
    """Form fields and file parts (``name → (filename, bytes)``) of a multipart body."""
    match = re.search(r'boundary="?([^";]+)"?', content_type)
    if not content_type.lower().startswith("multipart/form-data") or match is None:
        raise ApiError(
            415,
            f"Content type '{content_type}' not supported",
            internal=41501,
        )
    delimiter = b"--" + match.group(1).encode("latin-1")
    fields: dict[str, str] = {}
    files: dict[str, Any] = {}
    for chunk in body.split(delimiter)[1:]:
        if chunk.startswith(b"--"):
            break
        head, sep, data = chunk.partition(b"\r\n\r\n")
        if not sep:
            continue
        data = data[:-2] if data.endswith(b"\r\n") else data
        disposition = ""
        for line in head.decode("utf-8", "replace").split("\r\n"):
            if line.lower().startswith("content-disposition:"):
                disposition = line
        name = re.search(r'\bname="([^"]*)"', disposition)
        filename = re.search(r'\bfilename="([^"]*)"', disposition)
        if name is None:
            continue
        if filename is not None:
            files[name.group(1)] = (filename.group(1), data)
        else:
            fields[name.group(1)] = data.decode("utf-8", "replace")
    return fields, files
