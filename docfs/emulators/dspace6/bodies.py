"""DSpace 6 request plumbing: the request as the handlers see it, and the request bodies read
the way Jackson reads them (unknown or getter-only properties are a 400 ``text/plain``).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from starlette.datastructures import Headers, QueryParams

from docfs.emulators.dspace6.errors import HttpError
from docfs.emulators.dspace6.model import (
    ACTIONS,
    JAVA_INT_MAX,
    JAVA_WHITESPACE,
    TEXT_FIELDS,
    Meta,
    Policy,
    Repository,
    User,
    stored_value,
    words,
)

JAVA_INT_RE = re.compile(r"^[+-]?[0-9]+$")


DSO_FIELDS = frozenset({"uuid", "name", "handle", "type", "link", "expand"})
#: properties Jackson can set on each request body; getter-only ones (MetadataEntry's
#: schema/element/qualifier, Collection.logo) are missing on purpose and rejected with 400
BODY_FIELDS: dict[str, frozenset[str]] = {
    "Community": DSO_FIELDS
    | {"logo", "parentCommunity", "countItems", "subcommunities", "collections", *TEXT_FIELDS},
    "Collection": DSO_FIELDS
    | {"parentCommunity", "parentCommunityList", "items", "license", "numberItems", *TEXT_FIELDS},
    "Item": DSO_FIELDS
    | words(
        "lastModified archived withdrawn parentCollection parentCollectionList "
        "parentCommunityList metadata bitstreams"
    ),
    "Bitstream": DSO_FIELDS
    | words(
        "bundleName description format mimeType sizeBytes parentObject retrieveLink checkSum "
        "sequenceId policies"
    ),
    "MetadataEntry": frozenset({"key", "value", "language"}),
    "ResourcePolicy": words(
        "id action epersonId groupId resourceId resourceType rpDescription rpName rpType "
        "startDate endDate"
    ),
}


@dataclass
class Req:
    method: str
    query: QueryParams
    headers: Headers
    body: bytes
    who: User | None

    def param(self, name: str) -> str | None:
        return self.query.get(name)

    def int_param(self, name: str, default: int) -> int:
        raw = self.query.get(name)
        if raw is None:
            return default
        # JAX-RS answers 404 when a @QueryParam cannot be converted to its Java type
        if JAVA_INT_RE.match(raw) is None:
            raise HttpError(404)
        value = int(raw)
        if not -(2**31) <= value <= JAVA_INT_MAX:
            raise HttpError(404)
        return value

    @property
    def media_type(self) -> str | None:
        raw = self.headers.get("content-type")
        if raw is None:
            return None
        return raw.split(";", 1)[0].strip().lower()


def my_split(key: str) -> list[str | None]:
    """DSpace's ``Resource.mySplit``: dot-separated parts, a missing qualifier padded as None."""
    parts: list[str | None] = []
    prev = 0
    for i, ch in enumerate(key):
        if ch == ".":
            parts.append(key[prev:i])
            prev = i + 1
        elif i + 1 == len(key):
            parts.append(key[prev : i + 1])
    if len(parts) == 2:
        parts.append(None)
    return parts


class Bodies(Repository):
    """Parsing and checking of JSON request bodies (communities, items, metadata, policies)."""

    def _paging(self, rq: Req, default_limit: int) -> tuple[int, int]:
        limit = rq.int_param("limit", default_limit)
        offset = rq.int_param("offset", 0)
        if limit < 0 or offset < 0:
            return 100, 0
        return limit, offset

    def _body_json(self, rq: Req) -> Any:
        if rq.media_type == "application/xml":
            raise HttpError(
                400, "XML request bodies are not supported by this emulator", plain=True
            )
        if not rq.body.strip():
            return None
        try:
            return json.loads(rq.body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise HttpError(400, f"Unexpected character in JSON input: {exc}", plain=True) from None

    @staticmethod
    def _check_props(obj: Any, cls: str) -> dict[str, Any] | None:
        """Jackson's view of a body: unknown or getter-only properties are a 400."""
        if obj is None:
            return None
        if not isinstance(obj, dict):
            raise HttpError(
                400, f"Can not deserialize instance of org.dspace.rest.common.{cls}", plain=True
            )
        for key in obj:
            if key not in BODY_FIELDS[cls]:
                raise HttpError(
                    400,
                    f'Unrecognized field "{key}" (class org.dspace.rest.common.{cls}), '
                    "not marked as ignorable",
                    plain=True,
                )
        return obj

    @staticmethod
    def _string(obj: dict[str, Any], key: str) -> str | None:
        value = obj.get(key)
        if value is None or isinstance(value, str):
            return value
        if isinstance(value, bool | int | float):
            return json.dumps(value)
        raise HttpError(400, f"Can not deserialize String out of {key}", plain=True)

    def _metadata_entries(self, raw: Any) -> list[dict[str, Any]]:
        if raw is None:
            return []
        if not isinstance(raw, list):
            raise HttpError(400, "Can not deserialize java.util.List out of object", plain=True)
        entries = []
        for entry in raw:
            checked = self._check_props(entry, "MetadataEntry")
            if checked is None:
                raise HttpError(500)  # a null entry: NullPointerException in the resource
            entries.append(checked)
        return entries

    def _parse_fields(self, entries: list[dict[str, Any]], *, strict_dots: bool) -> list[Meta]:
        """Turn MetadataEntry bodies into values; checks the registry (unknown field → 500).

        ``strict_dots`` is item creation, where a key without a dot ends in an index error (500);
        the metadata endpoints skip keys that do not have two or three parts.
        """
        out: list[Meta] = []
        for entry in entries:
            key = self._string(entry, "key")
            if key is None:
                raise HttpError(500)
            parts = my_split(key)
            if len(parts) < 2:
                if strict_dots:
                    raise HttpError(500)
                continue
            if len(parts) > 3 and not strict_dots:
                continue
            schema, element, qualifier = parts[0] or "", parts[1] or "", parts[2]
            if (schema, element, qualifier) not in self._fields:
                raise HttpError(500)  # SQLException("bad_dublin_core ...")
            # addMetadata (DSpaceObjectServiceImpl, dspace-6_x) stores a null value as a null
            # value (it is no removal), trims the value and the language and blanks controls
            language = self._string(entry, "language")
            out.append(
                Meta(
                    schema,
                    element,
                    qualifier,
                    stored_value(self._string(entry, "value")),
                    None if language is None else language.strip(JAVA_WHITESPACE),
                )
            )
        return out

    def _container_body(self, rq: Req, cls: str) -> dict[str, Any]:
        body = self._check_props(self._body_json(rq), cls)
        if body is None:
            raise HttpError(500)  # a null entity: NullPointerException in the resource
        return body

    def _texts(self, body: dict[str, Any]) -> dict[str, Any]:
        return {k: self._string(body, k) for k in TEXT_FIELDS}

    def _metadata_body(self, rq: Req) -> list[Meta]:
        raw = self._body_json(rq)
        if raw is None:
            raise HttpError(500)
        return self._parse_fields(self._metadata_entries(raw), strict_dots=False)

    def _bitstream_body(self, rq: Req) -> dict[str, Any]:
        body = self._check_props(self._body_json(rq), "Bitstream")
        if body is None:
            raise HttpError(500)
        return body

    def _policies_from(self, raw: Any) -> list[Policy]:
        if not isinstance(raw, list):
            raise HttpError(400, "Can not deserialize policies", plain=True)
        policies = []
        for entry in raw:
            body = self._check_props(entry, "ResourcePolicy")
            if body is None:
                raise HttpError(500)
            policies.append(self._policy_from(body))
        return policies

    def _policy_from(self, body: dict[str, Any]) -> Policy:
        action = self._string(body, "action")
        if action not in ACTIONS:
            raise HttpError(400, f"Can not construct Action from {action!r}", plain=True)
        dates = []
        for key in ("startDate", "endDate"):
            value = body.get(key)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
                raise HttpError(400, f"Can not deserialize Date out of {key}", plain=True)
            dates.append(value)
        policy = self._new_policy(
            action,
            eperson=self._string(body, "epersonId"),
            group=self._string(body, "groupId"),
            start_ms=dates[0],
        )
        policy.end_ms = dates[1]
        policy.rp_name = self._string(body, "rpName")
        policy.rp_description = self._string(body, "rpDescription")
        return policy
