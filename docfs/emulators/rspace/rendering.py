"""The JSON shapes of RSpace's answers (users, folders, tree items, forms, files, fields,
documents, shares, groups), and the paged listings with their absolute ``_links``."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlencode

from starlette.responses import Response

from docfs.emulators.rspace.context import Ctx
from docfs.emulators.rspace.errors import validation
from docfs.emulators.rspace.model import Store
from docfs.emulators.rspace.records import Field, Form, Group, Record, Share, User

DEFAULT_ORDER = "lastModified desc"
ORDERS = (
    "name asc",
    "name desc",
    "created asc",
    "created desc",
    "lastModified asc",
    "lastModified desc",
)
LINKED_FILE_RE = re.compile(r'data-rsfileid="(\d+)"')


def iso(ts: float) -> str:
    """``yyyy-MM-dd'T'HH:mm:ss.SSS'Z'`` in UTC, as ISO8601DateTimeSerialiser writes it."""
    dt = datetime.fromtimestamp(ts, UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def tomcat_header(value: str) -> str:
    """A header value as Tomcat writes it: ISO-8859-1, with control characters and anything
    above U+00FF turned into spaces (``Http11OutputBuffer`` cannot send them). The download's
    ``Content-Disposition`` holds the file name unescaped: without this a name with a NUL or a
    character such as U+2215 crashed the emulator instead of being sent."""
    return "".join(
        " " if (ord(c) < 32 and c != "\t") or ord(c) == 127 or ord(c) > 255 else c for c in value
    )


def json_response(
    data: Any, status: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    # the server pretty-prints its JSON
    body = json.dumps(data, indent=2, ensure_ascii=False).encode("utf-8")
    return Response(body, status_code=status, media_type="application/json", headers=headers)


class Rendering(Store):
    """The JSON models, and the pagination every listing shares."""

    # ---- JSON models -----------------------------------------------------------------------

    def _user_json(self, user: User) -> dict[str, Any]:
        return {
            "id": user.id,
            "username": user.username,
            "email": user.email,
            "firstName": user.first_name,
            "lastName": user.last_name,
            "homeFolderId": user.home,
            "workbenchId": None,
            "hasPiRole": user.pi,
            "hasSysAdminRole": False,
            "_links": [],
        }

    def _folder_json(self, ctx: Ctx, rec: Record, with_path: bool = False) -> dict[str, Any]:
        path = None
        if with_path:
            home = ctx.user.home
            path = [
                self._folder_json(ctx, a)
                for a in self._ancestors(rec)
                if a.id != home and a.kind in ("FOLDER", "NOTEBOOK")
            ]
        return {
            "id": rec.id,
            "globalId": self._global_id(rec),
            "name": rec.name,
            "created": iso(rec.created),
            "lastModified": iso(rec.modified),
            "parentFolderId": rec.parent if rec.owner == ctx.user.id else None,
            "notebook": rec.kind == "NOTEBOOK",
            "systemFolder": rec.system,
            "sharedFolder": rec.shared_folder,
            "mediaType": rec.section if rec.gallery and rec.role != "GALLERY" else None,
            "pathToRootFolder": path,
            "_links": [ctx.link(f"/folders/{rec.id}")],
        }

    def _tree_item(self, ctx: Ctx, rec: Record, listed: int) -> dict[str, Any]:
        item: dict[str, Any] = {
            "id": rec.id,
            "globalId": self._global_id(rec),
            "name": rec.name,
            "created": iso(rec.created),
            "lastModified": iso(rec.modified),
            "parentFolderId": listed,
            "type": rec.kind,
        }
        if rec.kind == "FOLDER":
            item["systemFolder"] = rec.system
            item["sharedFolder"] = rec.shared_folder
        path = {
            "FOLDER": "/folders/",
            "NOTEBOOK": "/folders/",
            "DOCUMENT": "/documents/",
            "MEDIA": "/files/",
            "SNIPPET": "/snippets/",
        }[rec.kind]
        item["_links"] = [ctx.link(f"{path}{rec.id}")]
        item["owner"] = self._user_json(self._users[rec.owner])
        return item

    def _form_json(self, ctx: Ctx, form: Form) -> dict[str, Any]:
        return {
            "id": form.id,
            "globalId": f"FM{form.id}",
            "stableId": f"{form.id}{form.name.replace(' ', '')[:8]}",
            "version": form.version,
            "name": form.name,
            "tags": None,
            "formState": "PUBLISHED",
            "accessControl": {"ownerType": "WRITE", "groupType": "READ", "worldType": "READ"},
            "iconId": -1,
            "_links": [ctx.link(f"/forms/{form.id}")],
        }

    def _file_json(self, ctx: Ctx, rec: Record) -> dict[str, Any]:
        return {
            "id": rec.id,
            "globalId": self._global_id(rec),
            "name": rec.name,
            "caption": rec.caption,
            "contentType": rec.content_type,
            "created": iso(rec.created),
            "size": len(rec.data),
            "version": rec.version,
            "parentFolderId": rec.parent,
            "_links": [
                ctx.link(f"/files/{rec.id}"),
                ctx.link(f"/files/{rec.id}/file", "enclosure"),
            ],
        }

    def _field_json(self, ctx: Ctx, fld: Field) -> dict[str, Any]:
        files = []
        for fid in dict.fromkeys(int(x) for x in LINKED_FILE_RE.findall(fld.content)):
            media = self._rec(fid)
            if media is not None and media.kind == "MEDIA" and not self._is_deleted(media):
                files.append(self._file_json(ctx, media))
        return {
            "id": fld.id,
            "globalId": f"FD{fld.id}",
            "name": fld.name,
            "type": fld.type,
            "content": fld.content,
            "lastModified": iso(fld.modified),
            "columnIndex": fld.column,
            "files": files,
            "listOfMaterials": [],
            "_links": [],
        }

    def _doc_json(self, ctx: Ctx, rec: Record, full: bool) -> dict[str, Any]:
        own = rec.owner == ctx.user.id
        parent = self._rec(rec.parent) if rec.parent is not None else None
        data: dict[str, Any] = {
            "id": rec.id,
            "globalId": self._global_id(rec),
            "version": rec.version,
            "name": rec.name,
            "created": iso(rec.created),
            "lastModified": iso(rec.modified),
            "parentFolderId": rec.parent if own else None,
            "grandParentId": parent.parent if own and parent is not None else None,
            "signed": rec.signed,
            "tags": rec.tags,
            "tagMetaData": rec.tags,
            "form": self._form_json(ctx, self._forms[rec.form]),
            "owner": self._user_json(self._users[rec.owner]),
        }
        if full:
            data["fields"] = [self._field_json(ctx, f) for f in rec.fields]
        data["_links"] = [ctx.link(f"/documents/{rec.id}")]
        return data

    def _share_json(self, ctx: Ctx, share: Share) -> dict[str, Any]:
        item = self._records[share.item]
        return {
            "id": share.id,
            "sharedItemId": share.item,
            "shareItemName": item.name,
            "sharedTargetId": share.target,
            "sharedTargetType": share.target_type,
            "permission": share.permission,
            "_links": [ctx.link(f"/share/{share.id}")],
        }

    def _group_json(self, group: Group) -> dict[str, Any]:
        rank = {"PI": 0, "LAB_ADMIN": 1}
        members = sorted(
            group.members, key=lambda m: (rank.get(m[1], 2), self._users[m[0]].username)
        )
        return {
            "id": group.id,
            "globalId": f"GP{group.id}",
            "name": group.name,
            "uniqueName": group.unique_name,
            "type": group.type,
            "sharedFolderId": group.folder,
            "sharedSnippetFolderId": group.snippet_folder,
            "raid": None,
            "members": [
                {"id": uid, "username": self._users[uid].username, "role": role}
                for uid, role in members
            ],
            "_links": [],
        }

    # ---- pagination ------------------------------------------------------------------------

    def _paging(self, ctx: Ctx, orders: Sequence[str] = ORDERS) -> tuple[int, int, str]:
        problems: list[tuple[str, Any, str]] = []
        number = size = 0
        raw_number, raw_size = ctx.param("pageNumber"), ctx.param("pageSize")
        try:
            number = int(raw_number) if raw_number not in (None, "") else 0
            if number < 0:
                problems.append(("pageNumber", number, "Page number must be 0 or greater."))
        except ValueError:
            problems.append(("pageNumber", raw_number, "Failed to convert pageNumber"))
        try:
            size = int(raw_size) if raw_size not in (None, "") else 20
            if not 1 <= size <= 100:
                problems.append(("pageSize", size, "Page size must be between 1 and 100."))
        except ValueError:
            problems.append(("pageSize", raw_size, "Failed to convert pageSize"))
        order = ctx.param("orderBy") or DEFAULT_ORDER
        if order not in orders:
            problems.append(
                ("orderBy", order, f"Invalid order by clause {order} - should be one of {orders}")
            )
        if problems:
            raise validation(*problems, object_name="apiPaginationCriteria")
        return number, size, order

    @staticmethod
    def _sort(items: list[Record], order: str) -> list[Record]:
        key_name, _, direction = order.partition(" ")
        keys: dict[str, Callable[[Record], Any]] = {
            "name": lambda r: (r.name.casefold(), r.id),
            "created": lambda r: (r.created, r.id),
            "lastModified": lambda r: (r.modified, r.id),
            "sharee": lambda r: (r.name.casefold(), r.id),
        }
        return sorted(items, key=keys[key_name], reverse=direction == "desc")

    @staticmethod
    def _page_links(
        ctx: Ctx,
        path: str,
        page: int,
        size: int,
        order: str,
        total: int,
        extra: Sequence[tuple[str, str]] = (),
    ) -> list[dict[str, str]]:
        def url(n: int) -> str:
            query: list[tuple[str, str]] = []
            if size != 20:
                query.append(("pageSize", str(size)))
            query.append(("pageNumber", str(n)))
            if order != DEFAULT_ORDER:
                query.append(("orderBy", order))
            query.extend(extra)
            return f"{ctx.base}{path}?{urlencode(query, quote_via=quote)}"

        links = []
        if page > 0:
            links.append({"link": url(page - 1), "rel": "prev"})
        if page - 1 > 0:
            links.append({"link": url(0), "rel": "first"})
        if total > (page + 1) * size:
            links.append({"link": url(page + 1), "rel": "next"})
        if total > (page + 2) * size:
            links.append({"link": url((total - 1) // size), "rel": "last"})
        links.append({"link": url(page), "rel": "self"})
        return links
