"""What a DSpace 7 handler is given: the request context (``Ctx``: caller, embeds, body) and
the parsed parts of a multipart or JSON body."""

from __future__ import annotations

import email.message
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from docfs.emulators.dspace7.model import EPerson
from docfs.emulators.dspace7.wire import Fail


@dataclass
class Part:
    """One part of a multipart/form-data body."""

    name: str
    filename: str | None
    content_type: str | None
    data: bytes


@dataclass
class Ctx:
    """What a handler needs to know about the current request."""

    request: Request
    api: str
    caller: EPerson | None
    body: bytes
    embeds: dict[str, Any]
    embed_sizes: dict[str, int]

    @property
    def admin(self) -> bool:
        return self.caller is not None and self.caller.admin

    def param(self, name: str) -> str | None:
        return self.request.query_params.get(name)


Handler = Callable[..., Response]


# ---- multipart -------------------------------------------------------------------------------


def parse_multipart(body: bytes, content_type: str) -> list[Part]:
    """Split a multipart/form-data body into its parts (what Spring's resolver does)."""
    header = email.message.Message()
    header["content-type"] = content_type
    boundary = header.get_param("boundary")
    if not isinstance(boundary, str) or not boundary:
        raise Fail(400, "Request is not a multipart request")
    delimiter = b"\r\n--" + boundary.encode("latin-1")
    chunks = (b"\r\n" + body).split(delimiter)
    parts: list[Part] = []
    for chunk in chunks[1:]:
        if chunk.startswith(b"--"):
            break
        head, sep, data = chunk.partition(b"\r\n\r\n")
        if not sep:
            raise Fail(400, "Malformed multipart body")
        message = email.message.Message()
        for line in head.decode("utf-8", "replace").split("\r\n"):
            key, colon, value = line.partition(":")
            if colon:
                message[key.strip()] = value.strip()
        name = message.get_param("name", header="content-disposition")
        filename = message.get_filename()
        parts.append(
            Part(
                name=name if isinstance(name, str) else "",
                filename=filename,
                content_type=message.get("content-type"),
                data=data,
            )
        )
    return parts


def first_json_value(text: str) -> Any:
    """Parse the first JSON value of ``text`` and ignore what follows, as Jackson does."""
    return json.JSONDecoder().raw_decode(text.strip())[0]
