"""Opus 2's wire vocabulary: access levels, the fixed roles and templates, the error answer
(``ApiError``: ``{"status", "message"}``), and the wire profile.

The profile (``Opus2Profile``, ``DEFAULT_PROFILE``, ``ALTERNATIVE_PROFILE``) is imported here and
nowhere else in the package: every other module takes it from this one, so where it comes from
is one line to change.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from starlette.responses import JSONResponse, Response

from docfs.wire.opus2_profile import ALTERNATIVE_PROFILE, DEFAULT_PROFILE, Opus2Profile

READ_WRITE = "ReadWrite"
READ = "Read"
ACCESS = (READ, READ_WRITE)
CHUNK = 64 * 1024
FIELD_TYPES = ("text", "date", "number", "choice")
ROLES = (("role-admin", "Administrator"), ("role-user", "Standard user"), ("role-ext", "External"))
TEMPLATES = (("tpl-lit", "Litigation"), ("tpl-arb", "Arbitration"), ("tpl-blank", "Blank"))
DATE_ONLY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


class ApiError(Exception):
    """An error answer: ``{"status": …, "message": …}`` plus optional extra keys."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        headers: Mapping[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = dict(headers or {})
        self.extra = extra

    def response(self) -> Response:
        body = {"status": self.status, "message": self.message, **self.extra}
        return JSONResponse(body, status_code=self.status, headers=self.headers)


__all__ = [
    "ALTERNATIVE_PROFILE",
    "DEFAULT_PROFILE",
    "READ",
    "READ_WRITE",
    "ApiError",
    "Opus2Profile",
]
