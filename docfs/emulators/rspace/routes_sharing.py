"""RSpace handlers for ``/share`` and ``/groups`` (``ShareApiController``,
``GroupApiController``)."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from docfs.emulators.rspace.context import Ctx, int_arg
from docfs.emulators.rspace.errors import ApiError, illegal, not_found, unauthorised, validation
from docfs.emulators.rspace.records import Share
from docfs.emulators.rspace.rendering import ORDERS, Rendering, json_response


class SharingRoutes(Rendering):
    """Sharing documents and notebooks with groups and users, and the caller's groups."""

    def _share(self, ctx: Ctx) -> Response:
        body = ctx.json()
        if not isinstance(body, dict):
            raise ApiError(400, "JSON parse error: expected an object", internal=40009)
        items = body.get("itemsToShare") or []
        groups = body.get("groups") or []
        users = body.get("users") or []
        problems: list[tuple[str, Any, str]] = []
        if not isinstance(items, list) or not 1 <= len(items) <= 255:
            problems.append(("itemsToShare", items, "size must be between 1 and 255"))
        if not groups and not users:
            problems.append(("groups", groups, "At least one user or group must be specified"))
        targets: list[tuple[str, dict[str, Any]]] = []
        for kind, specs in (("GROUP", groups), ("USER", users)):
            for spec in specs if isinstance(specs, list) else []:
                perm = str(spec.get("permission") or "READ").upper()
                if perm not in ("READ", "EDIT") or not isinstance(spec.get("id"), int):
                    problems.append(("permission", spec.get("permission"), "must be READ or EDIT"))
                targets.append((kind, {**spec, "permission": perm}))
        if problems:
            raise validation(*problems, object_name="sharePost")
        created: list[Share] = []
        failed: list[int] = []
        for raw in items:
            for kind, spec in targets:
                share = self._share_one(ctx.user, raw, kind, spec)
                if share is None:
                    failed.append(raw)
                else:
                    created.append(share)
        if not created:
            raise unauthorised(
                f"Unauthorized attempt by {ctx.user.username} to share items {items}"
            )
        return json_response(
            {
                "shareInfos": [self._share_json(ctx, s) for s in created],
                "failedShares": list(dict.fromkeys(failed)),
                "_links": [],
            },
            201,
        )

    def _list_shares(self, ctx: Ctx) -> Response:
        orders = (*ORDERS, "sharee asc", "sharee desc")
        page, size, order = self._paging(ctx, orders)
        query = ctx.param("query")
        wanted: set[int] = set()
        for raw in ctx.params("sharedItemIds"):
            wanted.update(int_arg(x, "sharedItemIds") for x in raw.split(",") if x.strip())
        shares = [s for s in self._shares.values() if s.sharer == ctx.user.id]
        if wanted:
            shares = [s for s in shares if s.item in wanted]
        if query:
            q = query.casefold()
            shares = [
                s
                for s in shares
                if q in self._records[s.item].name.casefold()
                or q in (str(s.item), self._global_id(self._records[s.item]).casefold())
            ]
        key_name, _, direction = order.partition(" ")

        def key(s: Share) -> Any:
            if key_name == "sharee":
                target = (
                    self._users[s.target].username
                    if s.target_type == "USER"
                    else self._groups[s.target].name
                )
                return (target.casefold(), s.id)
            if key_name == "name":
                return (self._records[s.item].name.casefold(), s.id)
            return (s.id,)

        shares.sort(key=key, reverse=direction == "desc")
        extra = [("query", query)] if query else []
        result: dict[str, Any] = {
            "totalHits": len(shares),
            "pageNumber": page,
            "shares": [self._share_json(ctx, s) for s in shares[page * size : (page + 1) * size]],
            # server bug reproduced: ApiShareSearchResult links point at /forms
            "_links": self._page_links(ctx, "/forms", page, size, order, len(shares), extra),
        }
        if wanted:
            result["folderShares"] = []
        return json_response(result)

    def _update_share(self, ctx: Ctx) -> Response:
        body = ctx.json()
        ident = body.get("shareId") if isinstance(body, dict) else None
        share = self._shares.get(ident) if isinstance(ident, int) else None
        if share is None or share.sharer != ctx.user.id:
            raise not_found("Share", ident)
        perm = str(body.get("permission") or "").upper()
        if perm not in ("READ", "EDIT"):
            raise illegal(f"Invalid permission {perm}")
        share.permission = perm
        return Response(status_code=204)

    def _unshare(self, ctx: Ctx) -> Response:
        ident = int_arg(ctx.args[0])
        share = self._shares.get(ident)
        if share is None or share.sharer != ctx.user.id:
            raise not_found("Share", ident)
        self._remove_share(share)
        return Response(status_code=204)

    def _document_shares(self, ctx: Ctx) -> Response:
        ident = int_arg(ctx.args[0])
        doc = self._rec(ident)
        if doc is None or doc.kind not in ("DOCUMENT", "NOTEBOOK") or doc.owner != ctx.user.id:
            raise not_found("Document", ident)
        return json_response(
            {
                "sharedDocId": doc.id,
                "sharedDocName": doc.name,
                "directShares": [self._share_json(ctx, s) for s in self._shares_for(doc)],
                "notebookShares": [],
                "_links": [],
            }
        )

    def _list_groups(self, ctx: Ctx) -> Response:
        groups = [g for g in self._groups.values() if self._member(g, ctx.user)]
        groups.sort(key=lambda g: (g.name.casefold(), g.id))
        return json_response([self._group_json(g) for g in groups])

    def _get_group(self, ctx: Ctx) -> Response:
        ident = int_arg(ctx.args[0])
        group = self._groups.get(ident)
        if group is None or not self._member(group, ctx.user):
            raise not_found("Group", ident)
        return json_response(self._group_json(group))
