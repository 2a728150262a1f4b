"""Requests, paging and entries of the Opus 2 backend: the state every other part shares.

``Opus2Api`` holds the profile, the session and the request helpers; the entries built from
the server's JSON (projects, folders, documents) live here too, since reads and writes both
answer with them.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from docfs import errors
from docfs.backends._http import HttpClient, StatusMap
from docfs.backends.base import Capabilities, Checksum, Credentials, Entry, IdKind, Kind, Op
from docfs.backends.http_backend import HttpBackend
from docfs.backends.opus2.session import Opus2Session
from docfs.wire.opus2_profile import DEFAULT_PROFILE, Opus2Profile, load_profile

log = logging.getLogger("docfs.backends.opus2")

_T_PROJECT = "project"
_T_FOLDER = "folder"
_T_DOCUMENT = "document"
_ROOT_ID = "opus2:/"
#: meta keys docfs sets itself; a project field of the same name is hidden behind them
_RESERVED_META = frozenset({"id", "version"})
#: multipart bodies up to this size are built in memory, larger ones in a temporary file
#: seconds subtracted from an ``afterDate`` cut-off (see ``changed_since``)
_AFTER_DATE_MARGIN = 1.0

_AUTH: StatusMap = {401: errors.AuthenticationFailed}
#: a 409 anywhere else is the vendor's "You cannot delete the only version of a document": a
#: refusal (EPERM), never "exists" or "not empty"
_DELETE: StatusMap = {**_AUTH, 403: errors.PermissionDenied, 409: errors.NotSupported}

_DOC_OPS = frozenset({Op.REPLACE, Op.SET_META, Op.RENAME})
_DIR_OPS = frozenset({Op.CREATE_FILE, Op.MKDIR})


class Opus2Api(HttpBackend):
    """The shared state and request helpers of the Opus 2 backend (see ``Opus2Backend``)."""

    name = "opus2"
    # class-level: everything some profile can do; instances narrow it to their profile
    capabilities = Capabilities(
        ops=frozenset(Op),
        ranges=True,
        move=True,
        meta_namespace="opus2",
        duplicate_names=True,
        # documents and projects by id: see docfs/backends/opus2/finding.py
        resolves=frozenset({IdKind.ID}),
        changes=True,  # afterDate: one request refreshes a whole project
        tree=True,  # one flat folders listing (and the documents list) fills a project
        # no search endpoint: the mount matches names and fields over its cached listings
        search_local=True,
        versions_missing=(
            "the Opus 2 API documents no way to list or download a document's earlier "
            "versions (only POST …/replace makes one)"
        ),
    )
    default_limits = DEFAULT_PROFILE.limits()

    def __init__(
        self,
        http: HttpClient,
        credentials: Credentials,
        *,
        profile: Opus2Profile | Mapping[str, Any] | Path | str | None = None,
        token_file: Path | None = None,
    ) -> None:
        super().__init__(http, credentials)
        self.profile = load_profile(profile)
        # The protocol declares capabilities per class; a profile decides ranges per tenant, so
        # the instance shadows the class attribute (mypy forbids a plain assignment to a ClassVar).
        object.__setattr__(
            self,
            "capabilities",
            dataclasses.replace(type(self).capabilities, ranges=self.profile.ranges),
        )
        self.session = Opus2Session(self.profile, credentials.token, token_file)
        #: the download-route hint is logged once per mount
        self._download_hinted = False
        http.session = self.session

    # ---- helpers ------------------------------------------------------------------------

    def _path(self, *parts: str) -> str:
        prefix = self.profile.path_prefix.strip("/")
        joined = "/".join(p.strip("/") for p in parts)
        return f"/{prefix}/{joined}" if prefix else f"/{joined}"

    def _project_path(self, pid: str, *rest: str) -> str:
        return self._path("projects", _q(pid), *rest)

    def _json_id(self, value: str) -> str | int:
        return int(value) if self.profile.numeric_ids else value

    @staticmethod
    def _json(response: httpx.Response) -> Any:
        try:
            return response.json()
        except ValueError:
            raise errors.ProtocolError(
                f"opus2: {response.request.method} {response.request.url.path}: answer is not JSON"
            ) from None

    async def _get(
        self, path: str, *, endpoint: str, params: Mapping[str, Any] | None = None
    ) -> Any:
        response = await self.http.request(
            "GET", path, endpoint=endpoint, params=params, status_map=_AUTH
        )
        return self._json(response)

    async def _pages(
        self, path: str, *, endpoint: str, params: Mapping[str, Any] | None = None
    ) -> AsyncIterator[Mapping[str, Any]]:
        """Yield the items of a paged list, stopping as soon as the answer shows the end."""
        profile = self.profile
        seen = 0
        index = 0
        while True:
            query = dict(params or {})
            if profile.paging == "page":
                query[profile.page_param] = profile.first_page + index
            else:
                query[profile.page_param] = seen
            query[profile.size_param] = profile.page_size
            body = await self._get(path, endpoint=endpoint, params=query)
            items, total, size = self._unwrap(body)
            for item in items:
                yield item
            seen += len(items)
            index += 1
            if not items or not isinstance(body, dict):
                return
            if total is not None:
                if seen >= total:
                    return
            elif size is not None and len(items) < size:
                return
            # neither a total nor the page size in the answer: only an empty page ends the list

    def _unwrap(self, body: Any) -> tuple[list[Mapping[str, Any]], int | None, int | None]:
        if isinstance(body, list):
            raw: Any = body
            total = size = None
        elif isinstance(body, dict):
            raw = body.get(self.profile.items_key)
            total = (
                _int_or_none(body.get(self.profile.total_key)) if self.profile.total_key else None
            )
            size = _int_or_none(body.get(self.profile.size_param))
        else:
            raw = None
            total = size = None
        if not isinstance(raw, list) or not all(isinstance(i, dict) for i in raw):
            raise errors.ProtocolError(
                f"opus2: paged answer without a list under {self.profile.items_key!r}"
            )
        return raw, total, size

    # ---- entries --------------------------------------------------------------------------

    def _project_entry(self, data: Mapping[str, Any]) -> Entry:
        pid = _sid(data.get("id"))
        access = data.get(self.profile.access_key) if self.profile.access_key else None
        writable = access is None or str(access).replace("/", "").lower() != "read"
        return Entry(
            id=f"p:{pid}",
            name=str(data.get("name") or pid),
            kind=Kind.DIR,
            size=None,
            mtime=self.profile.parse_date(data.get("updatedAt")),
            version=str(data.get("updatedAt") or ""),
            meta={"id": pid},
            read_only=not writable,
            ops=_DIR_OPS if writable else frozenset(),
            extra={"type": _T_PROJECT, "project": pid, "writable": _flag(writable)},
            change_scope=True,
        )

    def _folder_entry(
        self, data: Mapping[str, Any], pid: str, writable: bool, base_path: str = ""
    ) -> Entry:
        fid = _sid(data.get("id"))
        name = str(data.get("name") or fid)
        path = data.get("path")
        if not isinstance(path, str) or not path:
            path = f"{base_path}/{name}"  # a profile without paths: build it from the parent
        parent = data.get("parentId")
        return Entry(
            id=f"f:{pid}:{fid}",
            name=name,
            kind=Kind.DIR,
            size=None,
            mtime=self.profile.parse_date(data.get("updatedAt")),
            version=str(data.get("updatedAt") or ""),
            meta={"id": fid},
            read_only=not writable,
            ops=(_DIR_OPS | {Op.REMOVE}) if writable else frozenset(),
            extra={
                "type": _T_FOLDER,
                "project": pid,
                "folder": fid,
                "parent": _sid(parent) if parent is not None else "",
                "path": path,
                "writable": _flag(writable),
            },
        )

    def _document_entry(self, data: Mapping[str, Any], pid: str, writable: bool) -> Entry:
        did = _sid(data.get("id"))
        version = data.get("version")
        version_id = data.get("versionId")
        checksum = data.get("checksum")
        meta: dict[str, str] = {}
        fields = data.get("fields")
        if isinstance(fields, list):
            for item in fields:
                if isinstance(item, dict) and item.get("name") and item.get("value") is not None:
                    meta[str(item["name"])] = _meta_text(item["value"])
        meta["id"] = did
        if version is not None:
            meta["version"] = str(version)
        ops = set(_DOC_OPS)
        if self.profile.document_delete:
            ops.add(Op.REMOVE)
        return Entry(
            id=f"d:{pid}:{did}",
            name=str(data.get("name") or did),
            kind=Kind.FILE,
            size=_int_or_none(data.get("size")),
            mtime=self.profile.parse_date(data.get("updatedAt")),
            # versionId changes with every replace; field updates leave it (content unchanged)
            version=str(version_id or checksum or version or ""),
            meta=meta,
            read_only=not writable,
            ops=frozenset(ops) if writable else frozenset(),
            extra={
                "type": _T_DOCUMENT,
                "project": pid,
                "document": did,
                "folder": _sid(data.get("folderId")) if data.get("folderId") is not None else "",
                "checksum": str(checksum or ""),
                "writable": _flag(writable),
            },
            checksum=_checksum(checksum),
        )

    @staticmethod
    def _writable(entry: Entry) -> bool:
        return entry.extra.get("writable", "yes") == "yes"


def _q(value: str) -> str:
    """One path segment: ids and names are opaque, so even ``/`` is escaped."""
    return quote(value, safe="")


def _sid(value: object) -> str:
    if value is None or isinstance(value, bool) or not isinstance(value, str | int):
        raise errors.ProtocolError(f"opus2: unexpected id {value!r}")
    return str(value)


def _flag(value: bool) -> str:
    return "yes" if value else "no"


def _int_or_none(value: object) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return int(value)


def _as_object(data: Any) -> Mapping[str, Any]:
    if not isinstance(data, dict) or "id" not in data:
        raise errors.ProtocolError("opus2: expected a JSON object with an id")
    return data


def _meta_text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ", ".join(_meta_text(v) for v in value)
    return str(value)


def _typed_value(definition: Mapping[str, Any], value: str) -> Any:
    """The JSON value for a field: numbers as numbers; text that is no number is sent as is,
    so that the server, which owns the validation, answers with its own 400."""
    if definition.get("type") == "number":
        for parse in (int, float):
            try:
                return parse(value)
            except ValueError:
                continue
    return value


def _checksum(value: object) -> Checksum | None:
    """The typed form of a document's ``checksum`` (``sha256:<hex>`` in the default profile,
    docs/protocols/opus2.md); None for a value in any other form."""
    if not isinstance(value, str):
        return None
    algorithm, sep, digest = value.partition(":")
    algorithm, digest = algorithm.strip().lower(), digest.strip().lower()
    if not sep or algorithm not in hashlib.algorithms_guaranteed or not digest:
        return None
    if digest.strip("0123456789abcdef"):
        return None
    return Checksum(algorithm, digest)


def _refused(action: str, entry: Entry, endpoint: str) -> errors.NotSupported:
    log.info("opus2: cannot %s %r: the API has no %s endpoint", action, entry.name, endpoint)
    return errors.NotSupported(f"opus2: the API cannot {action} {entry.name!r}")


def _check_name(name: str, kind: Kind) -> None:
    """The server's rule (emulator, found by the name fuzzer of tests/reliability): a document
    name must not be blank, a folder name not empty, and neither may hold a slash (a local
    U+2215 DIVISION SLASH becomes ``/`` when docfs restores names); the server answers 400
    for the others."""
    what = "folder" if kind is Kind.DIR else "document"
    if "/" in name:
        raise errors.InvalidArgument(f"Opus 2 refuses a {what} name with a slash: {name!r}")
    if not (name if kind is Kind.DIR else name.strip()):
        raise errors.InvalidArgument(f"Opus 2 refuses a blank {what} name: {name!r}")


def _replace_filename(name: str) -> str:
    """A filename for a replace upload, which keeps the document's name: the name itself
    (extension and all, in case the server looks at it) unless the server would refuse it."""
    safe = name.replace("/", "_")
    return safe if safe.strip() else "document"
