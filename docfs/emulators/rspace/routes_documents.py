"""RSpace handlers for ``/documents`` (``DocumentsApiController``): listing and search,
reading (JSON or CSV), creating, updating and deleting."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import UTC, datetime
from typing import Any

from starlette.responses import Response

from docfs.emulators.rspace.content import clean_name
from docfs.emulators.rspace.context import Ctx, int_arg
from docfs.emulators.rspace.errors import ApiError, illegal, not_found, unauthorised, validation
from docfs.emulators.rspace.records import Field, Form, Record, User
from docfs.emulators.rspace.rendering import Rendering, iso, json_response

#: what ``DocumentTagManagerImpl.apiSaveTagForDocument`` refuses in a tag, checked in this order
TAG_FORBIDDEN = ("<", ">", "\\", "/")


class DocumentRoutes(Rendering):
    """Documents: search, forms, fields, tags."""

    def _readable_documents(self, user: User) -> list[Record]:
        return [
            r
            for r in self._records.values()
            if r.kind == "DOCUMENT" and not self._is_deleted(r) and self._can_read(user, r)
        ]

    def _list_documents(self, ctx: Ctx) -> Response:
        page, size, order = self._paging(ctx)
        query, advanced = ctx.param("query"), ctx.param("advancedQuery")
        filt = ctx.param("filter")
        if query is not None and len(query) > 2000:
            raise validation(("query", query[:20], "Max query length is 2000."))
        if query and advanced:
            raise illegal("Please specify either a 'query' or an 'advancedQuery', not both")
        docs = self._readable_documents(ctx.user)
        if filt == "sharedWithMe":
            docs = [d for d in docs if d.owner != ctx.user.id]
        elif filt == "favorites":
            docs = []
        elif filt:
            raise validation(("filter", filt, "must be one of favorites, sharedWithMe"))
        if query:
            self._check_term(query)
            docs = [d for d in docs if self._matches(d, "global", query)]
        elif advanced:
            docs = self._advanced(docs, advanced)
        docs = self._sort(docs, order)
        extra = [
            (k, v)
            for k, v in (("query", query), ("advancedQuery", advanced), ("filter", filt))
            if v
        ]
        return json_response(
            {
                "totalHits": len(docs),
                "pageNumber": page,
                "documents": [
                    self._doc_json(ctx, d, False) for d in docs[page * size : (page + 1) * size]
                ],
                "_links": self._page_links(ctx, "/documents", page, size, order, len(docs), extra),
            }
        )

    @staticmethod
    def _check_term(term: str) -> None:
        if len(term.strip()) < 2:
            raise illegal("Search term must be at least 2 characters")

    def _matches(self, doc: Record, kind: str, term: str) -> bool:
        needle = term.casefold().strip("*")
        text = {
            "name": doc.name,
            "tag": doc.tags or "",
            "fullText": " ".join(re.sub("<[^>]+>", " ", f.content) for f in doc.fields),
            "form": self._forms[doc.form].name,
            "owner": self._users[doc.owner].username,
        }
        if kind == "global":
            return any(needle in v.casefold() for v in text.values()) or needle == (
                self._global_id(doc).casefold()
            )
        if kind in text:
            return needle in text[kind].casefold()
        if kind in ("created", "lastModified"):
            low, _, high = term.partition(";")
            ts = doc.created if kind == "created" else doc.modified
            return self._in_range(ts, low, high)
        if kind == "records":
            ids = {int(x) for x in re.findall(r"\d+", term)}
            return any(r.id in ids for r in (doc, *self._ancestors(doc)))
        return needle in " ".join(text.values()).casefold()

    @staticmethod
    def _in_range(ts: float, low: str, high: str) -> bool:
        def parse(value: str, end: bool) -> float | None:
            if not value:
                return None
            try:
                dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError:
                raise illegal(f"Cannot parse the search term {value}") from None
            if dt.tzinfo is None:
                dt = dt.replace(tzinfo=UTC)
            stamp = dt.timestamp()
            return stamp + 86400 if end and len(value) == 10 else stamp

        lo, hi = parse(low, False), parse(high, True)
        return (lo is None or ts >= lo) and (hi is None or ts < hi)

    def _advanced(self, docs: list[Record], raw: str) -> list[Record]:
        try:
            query = json.loads(raw)
            terms = [(t["queryType"], str(t["query"])) for t in query["terms"]]
            operator = str(query.get("operator", "and")).lower()
        except (ValueError, KeyError, TypeError):
            raise illegal(f"Cannot parse the search term {raw[:50]}") from None
        if not terms:
            raise illegal("No search term provided")
        if any(kind == "records" for kind, _ in terms) and len(terms) < 2:
            raise illegal("Filtering by folder/document IDs must also include a search term")
        for kind, term in terms:
            if kind not in ("records", "created", "lastModified"):
                self._check_term(term)
        combine = all if operator == "and" else any
        return [d for d in docs if combine(self._matches(d, k, t) for k, t in terms)]

    def _get_document(self, ctx: Ctx) -> Response:
        ident = int_arg(ctx.args[0])
        doc = self._visible(ctx, ident, ("DOCUMENT",), "Document")
        if "text/csv" in ctx.headers.get("accept", ""):
            out = io.StringIO()
            writer = csv.writer(out, lineterminator="\n")
            writer.writerow(["id", "globalId", "name", "type", "lastModified", "content"])
            for f in doc.fields:
                writer.writerow([f.id, f"FD{f.id}", f.name, f.type, iso(f.modified), f.content])
            return Response(out.getvalue(), media_type="text/csv")
        return json_response(self._doc_json(ctx, doc, True))

    def _resolve_form(self, spec: Any) -> Form:
        if spec is None:
            return self._forms[self.basic_form]
        if not isinstance(spec, dict):
            raise illegal("form must be an object with an id or a globalId")
        ident, gid = spec.get("id"), spec.get("globalId")
        from_gid = None
        if gid is not None:
            match = re.fullmatch(r"(?:FM|IT)(\d+)", str(gid))
            if match is None:
                raise illegal(f"Invalid syntax of oid [{gid}]")
            from_gid = int(match.group(1))
        if ident is not None and from_gid is not None and ident != from_gid:
            raise illegal(f"Form id {ident} and globalId {gid} do not match")
        chosen = ident if ident is not None else from_gid
        if chosen is None:
            return self._forms[self.basic_form]
        if chosen not in self._forms:
            raise illegal(f"Form with id [{chosen}] does not exist")
        return self._forms[chosen]

    def _document_target(self, ctx: Ctx, parent_id: Any) -> Record:
        if parent_id is None:
            return self._api_inbox(ctx.user)
        if not isinstance(parent_id, int) or parent_id < 1:
            raise validation(("parentFolderId", parent_id, "must be greater than or equal to 1"))
        target = self._rec(parent_id)
        if (
            target is None
            or target.kind not in ("FOLDER", "NOTEBOOK")
            or self._is_deleted(target)
            or not self._can_read(ctx.user, target)
        ):
            raise unauthorised(
                f"Unauthorized attempt by {ctx.user.username} to add an item to a folder"
            )
        roles = {a.role for a in (target, *self._ancestors(target))}
        if target.gallery or roles & {"TEMPLATES", "SHARED", "GROUP"}:
            raise illegal(
                f"Workspace Target folder (id={target.id}) must be in the workspace, not in the "
                "Gallery, Templates or Shared folders"
            )
        return target

    def _api_inbox(self, user: User) -> Record:
        home = self._records[user.home]
        for cid in home.children:
            rec = self._records[cid]
            if rec.role == "API_INBOX" and not rec.deleted:
                return rec
        return self._new_record(
            "FOLDER", "Api Inbox", user.id, home.id, system=True, role="API_INBOX"
        )

    def _create_document(self, ctx: Ctx) -> Response:
        body = ctx.json()
        if not isinstance(body, dict):
            raise ApiError(400, "JSON parse error: expected an object", internal=40009)
        raw_name = body.get("name") or ""
        if len(raw_name) > 255:
            raise validation(("name", raw_name, "Name cannot be longer than 255 characters"))
        tags = self._check_tags(body.get("tags"))
        form = self._resolve_form(body.get("form"))
        target = self._document_target(ctx, body.get("parentFolderId"))
        incoming = body.get("fields")
        if incoming is not None and (
            not isinstance(incoming, list) or len(incoming) != len(form.fields)
        ):
            count = len(incoming) if isinstance(incoming, list) else 0
            raise illegal(f'"fields" array should have {len(form.fields)} fields, but had {count}')
        now = self._now()
        fields = [
            Field(self._next("field"), fname, ftype, "", now, i)
            for i, (fname, ftype) in enumerate(form.fields)
        ]
        for i, (fld, spec) in enumerate(zip(fields, incoming or [], strict=False)):
            self._apply_field(ctx, fld, spec, i)
        doc = self._new_record(
            "DOCUMENT",
            clean_name(raw_name) or "Untitled document",
            ctx.user.id,
            target.id,
            form=form.id,
            fields=fields,
            tags=tags,
        )
        return json_response(self._doc_json(ctx, doc, True), 201)

    @staticmethod
    def _check_tags(tags: Any) -> str | None:
        if tags is None:
            return None
        if not isinstance(tags, str):
            raise illegal("tags must be a comma-separated string")
        if len(tags) > 8000:
            raise validation(("tags", tags[:20], "size must be between 0 and 8000"))
        # DocumentTagManagerImpl.apiSaveTagForDocument, per comma-separated tag; Java's
        # split drops trailing empty strings, and what is stored is the tags joined again
        values = java_split_commas(tags)
        for tag in values:
            for forbidden in TAG_FORBIDDEN:
                if forbidden in tag:
                    raise illegal(f"The value: {forbidden} may not be used in tags")
        return ",".join(values)

    @staticmethod
    def _check_stored_tags(doc: Record) -> None:
        """apiSaveTagForDocument first maps the document's stored tags by value
        (``Collectors.toMap``): a value stored twice throws ``IllegalStateException``
        ("Duplicate key"), which the API's advice maps to nothing but the generic 500, on
        every later change of that document's tags. Duplicates are not refused on the way in
        ("tag values … are unique for a given document" is only assumed)."""
        values = java_split_commas(doc.tags or "")
        if len(set(values)) != len(values):
            raise ApiError(500, "Unexpected error: IllegalStateException", internal=50001)

    def _update_document(self, ctx: Ctx) -> Response:
        ident = int_arg(ctx.args[0])
        doc = self._visible(ctx, ident, ("DOCUMENT",), "Document")
        if not self._can_edit(ctx.user, doc):
            raise not_found("Document", ident)
        body = ctx.json()
        if not isinstance(body, dict):
            raise ApiError(400, "JSON parse error: expected an object", internal=40009)
        if doc.signed:
            raise validation(("id", ident, "This document has already been signed."))
        if doc.edit_locked:
            raise ApiError(
                409,
                f"Document [{ident}] is currently being edited by another user",
                internal=40901,
            )
        raw_name = body.get("name")
        if isinstance(raw_name, str) and len(raw_name) > 255:
            raise validation(("name", raw_name, "Name cannot be longer than 255 characters"))
        tags = self._check_tags(body.get("tags"))
        if tags is not None:
            self._check_stored_tags(doc)
        if body.get("form") is not None and self._resolve_form(body["form"]).id != doc.form:
            raise illegal("The form of a document cannot be changed")
        updates = self._match_fields(doc, body.get("fields"))
        for fld, spec in updates:
            self._apply_field(ctx, fld, spec, fld.column)
        if isinstance(raw_name, str) and clean_name(raw_name):
            doc.name = clean_name(raw_name)[:255]
        if "tags" in body and body["tags"] is not None:
            doc.tags = tags or None
        doc.version += 1
        doc.modified = self._now()
        return json_response(self._doc_json(ctx, doc, True))

    @staticmethod
    def _match_fields(doc: Record, incoming: Any) -> list[tuple[Field, Any]]:
        """All fields in order (ids optional) or a subset with ids, as the server accepts."""
        if not incoming:
            return []
        if not isinstance(incoming, list):
            raise illegal('"fields" must be an array')
        by_id = {f.id: f for f in doc.fields}
        if len(incoming) == len(doc.fields):
            pairs = list(zip(doc.fields, incoming, strict=True))
            if all(not isinstance(s, dict) or s.get("id") in (None, f.id) for f, s in pairs):
                return pairs
        result = []
        for spec in incoming:
            ident = spec.get("id") if isinstance(spec, dict) else None
            if ident not in by_id:
                raise illegal(
                    f"At least one ID in the incoming form fields does not exist in form "
                    f"[{doc.form}]. Persisted field form IDs are {sorted(by_id)}; supplied IDs "
                    f"are [{ident}]."
                )
            result.append((by_id[ident], spec))
        return result

    def _delete_document(self, ctx: Ctx) -> Response:
        ident = int_arg(ctx.args[0])
        doc = self._rec(ident)
        if (
            doc is None
            or doc.kind != "DOCUMENT"
            or self._is_deleted(doc)
            or doc.owner != ctx.user.id
        ):
            raise not_found("Document", ident)
        if self._group_folder_of(doc) is not None:
            raise illegal("Item to delete must be in user's folder tree, not a shared folder")
        self._soft_delete(doc)
        return Response(status_code=204)


def java_split_commas(text: str) -> list[str]:
    """``text.split(",")`` in Java: trailing empty strings are dropped ("" stays [""])."""
    parts = text.split(",")
    if text == "":
        return parts
    while parts and parts[-1] == "":
        parts.pop()
    return parts
