"""The Opus 2 wire profile: everything about the format the vendor has not published.

The vendor's article names the endpoints but not the paging parameters, JSON envelopes, id
types, date format, download route or upload encoding (docs/protocols/opus2.md). Each of those
is a setting of ``Opus2Profile``; the backend reads the settings it needs, the emulator serves
whatever profile it is given. Both import this module and neither owns it, so a test can run
the backend against an emulator speaking another profile and prove it adapts.
"""

from __future__ import annotations

import dataclasses
import json
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from docfs.backends.traffic import Limits

__all__ = ["ALTERNATIVE_PROFILE", "DEFAULT_PROFILE", "Opus2Profile", "load_profile"]


@dataclass(frozen=True)
class Opus2Profile:
    """Everything about the wire format that the vendor has not published.

    The defaults and which of them are guesses: docs/protocols/opus2.md.

    The backend reads the settings it needs; the emulator serves whatever profile it is given,
    so tests can prove the backend adapts to another one.
    """

    #: path between the tenant URL and the endpoints, e.g. ``/api/v8``
    path_prefix: str = ""
    #: ``header``: ``<auth_header>: <token>``; ``bearer``: ``Authorization: Bearer <token>``
    auth: Literal["header", "bearer"] = "header"
    auth_header: str = "X-API-Token"
    #: ``page``: page number + page size; ``offset``: item offset + limit
    paging: Literal["page", "offset"] = "page"
    #: query parameter carrying the page number (``page`` paging) or the offset
    page_param: str = "page"
    #: query parameter carrying the page size (or limit)
    size_param: str = "pageSize"
    first_page: int = 1
    #: the page size the backend asks for: the server's maximum, every request counts
    page_size: int = 500
    #: the server's default and maximum page size (used by the emulator)
    default_page_size: int = 100
    max_page_size: int = 500
    #: key of the array in a paged answer; its total count (``None``: the server sends none)
    items_key: str = "items"
    total_key: str | None = "total"
    #: ids are JSON numbers (else opaque strings); ids sent in JSON bodies follow suit
    numeric_ids: bool = False
    #: strftime/strptime format of dates in JSON and in ``afterDate`` (always UTC)
    date_format: str = "%Y-%m-%dT%H:%M:%SZ"
    #: download route, relative to the prefix. NOT in the vendor's article (only the project
    #: setting "Download docs via API" is): a guess, to be set per tenant
    download_path: str = "projects/{projectId}/documents/{documentId}/content"
    #: the download route honours single byte ranges
    ranges: bool = True
    #: multipart part names of an upload
    upload_file_part: str = "file"
    upload_folder_part: str = "folderId"
    #: also send the name as ``filename*=UTF-8''…`` (RFC 6266/5987), which the server prefers to
    #: ``filename="…"``; RFC 7578 forbids it in form data, so a server that refuses or misreads
    #: it can be told ``false`` (names with ``\`` or ``%22``/``%0D``/``%0A`` may then change)
    upload_filename_star: bool = True
    #: project key telling the token user's access (``ReadWrite`` / ``Read``); ``None``: unknown
    access_key: str | None = "access"
    #: the tenant's rate limit: requests per rolling window of ``rate_window`` seconds per token
    rate_limit: int = 50
    rate_window: float = 60.0
    #: status the server answers when the limit is exceeded (429, or 503 on some tenants)
    rate_limit_status: int = 429
    #: optional endpoints that some tenants have (not in the vendor's table):
    #: DELETE ``projects/{p}/documents/{d}``
    document_delete: bool = False
    #: PATCH ``projects/{p}/documents/{d}`` with ``{"name": …}``
    document_rename: bool = False
    #: status of DELETE ``folders/{f}/`` on a folder that still holds something (a guess: the
    #: vendor documents no answer for it; its only 409 is "You cannot delete the only version
    #: of a document"); this status from that route is ENOTEMPTY, any other keeps its meaning
    folder_not_empty_status: int = 409

    def __post_init__(self) -> None:
        if self.auth not in ("header", "bearer"):
            raise ValueError(f"opus2 profile: auth must be 'header' or 'bearer', not {self.auth!r}")
        if self.paging not in ("page", "offset"):
            raise ValueError(f"opus2 profile: paging must be 'page' or 'offset': {self.paging!r}")
        if min(self.page_size, self.default_page_size, self.max_page_size) < 1:
            raise ValueError("opus2 profile: page sizes must be positive")
        if self.rate_limit < 0 or self.rate_window <= 0:
            raise ValueError("opus2 profile: rate_limit must be >= 0 and rate_window > 0")
        if self.rate_limit_status not in (429, 503):
            raise ValueError("opus2 profile: rate_limit_status must be 429 or 503")
        if not 400 <= self.folder_not_empty_status <= 499:
            raise ValueError("opus2 profile: folder_not_empty_status must be a 4xx status")
        if "{projectId}" not in self.download_path or "{documentId}" not in self.download_path:
            raise ValueError("opus2 profile: download_path needs {projectId} and {documentId}")

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> Opus2Profile:
        """Build a profile from configuration values, checking names and types."""
        defaults = cls()
        names = {f.name for f in dataclasses.fields(cls)}
        values: dict[str, Any] = {}
        for key, value in data.items():
            if key not in names:
                raise ValueError(f"opus2 profile: unknown setting {key!r}")
            values[key] = _checked_setting(key, value, getattr(defaults, key))
        return cls(**values)

    @classmethod
    def load(cls, path: Path) -> Opus2Profile:
        """Read a profile from TOML (a ``[profile]`` table or top-level keys) or JSON."""
        text = path.read_text(encoding="utf-8")
        data = json.loads(text) if path.suffix.lower() == ".json" else tomllib.loads(text)
        if isinstance(data, dict) and isinstance(data.get("profile"), dict):
            data = data["profile"]
        if not isinstance(data, dict):
            raise ValueError(f"opus2 profile {path}: expected a table of settings")
        return cls.from_mapping(data)

    def replace(self, **changes: Any) -> Opus2Profile:
        return dataclasses.replace(self, **changes)

    def limits(self) -> Limits:
        """Client pacing that can never exceed ``rate_limit`` in any rolling window.

        A token bucket lets through at most ``burst + rate * window`` requests in a window, so
        the rate is what is left of the limit after the burst, minus one for arrival jitter.
        """
        if self.rate_limit <= 0:
            return Limits(concurrency=4, timeout=60.0)
        burst = max(1, min(5, self.rate_limit // 10))
        spare = max(1, self.rate_limit - burst - 1)
        return Limits(
            requests_per_second=spare / self.rate_window,
            burst=burst,
            concurrency=4,
            timeout=60.0,
        )

    def format_date(self, when: float) -> str:
        return datetime.fromtimestamp(when, UTC).strftime(self.date_format)

    def parse_date(self, value: object) -> float | None:
        """Seconds since the epoch from a JSON date (ISO 8601 or the profile's format)."""
        if not isinstance(value, str) or not value:
            return None
        try:
            stamp = datetime.fromisoformat(value)
        except ValueError:
            try:
                stamp = datetime.strptime(value, self.date_format)
            except ValueError:
                return None
        if stamp.tzinfo is None:
            stamp = stamp.replace(tzinfo=UTC)
        return stamp.timestamp()


_NULLABLE = frozenset({"total_key", "access_key"})


def _checked_setting(key: str, value: Any, default: Any) -> Any:
    if value is None and key in _NULLABLE:
        return None
    ok: bool
    if isinstance(default, bool):
        ok = isinstance(value, bool)
    elif isinstance(default, float):
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        value = float(value) if ok else value
    elif isinstance(default, int):
        ok = isinstance(value, int) and not isinstance(value, bool)
    else:
        ok = isinstance(value, str)
    if not ok:
        raise ValueError(f"opus2 profile: {key} has the wrong type ({type(value).__name__})")
    return value


#: the reference's default wire profile
DEFAULT_PROFILE = Opus2Profile()

#: a deliberately different profile that tests (and the emulator) use to prove the backend
#: adapts by configuration: prefixed paths, bearer auth, offset paging in a ``data`` envelope,
#: numeric ids, fractional-second dates, another download route without ranges, other upload
#: part names, 503 for rate limiting, and the two optional document endpoints
ALTERNATIVE_PROFILE = Opus2Profile(
    path_prefix="/api/v8",
    auth="bearer",
    paging="offset",
    page_param="offset",
    size_param="limit",
    page_size=200,
    default_page_size=50,
    max_page_size=200,
    items_key="data",
    total_key="totalCount",
    numeric_ids=True,
    date_format="%Y-%m-%dT%H:%M:%S.%fZ",
    download_path="projects/{projectId}/documents/{documentId}/download",
    ranges=False,
    upload_file_part="document",
    upload_folder_part="parentFolderId",
    access_key=None,
    rate_limit_status=503,
    document_delete=True,
    document_rename=True,
)


def load_profile(source: Opus2Profile | Mapping[str, Any] | Path | str | None) -> Opus2Profile:
    """A profile from an object, a mapping of settings, a file path, or ``None`` (default)."""
    if source is None:
        return DEFAULT_PROFILE
    if isinstance(source, Opus2Profile):
        return source
    if isinstance(source, str | Path):
        return Opus2Profile.load(Path(source))
    return Opus2Profile.from_mapping(source)
