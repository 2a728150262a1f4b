"""DSpace 7's route table and dispatcher: one Starlette catch-all route under which the table
matches method and path (405 for a known path with another method), checks the front proxy's
rate limit and CSRF, reads the body under the upload limit and turns ``Fail`` into Spring Boot's
error JSON."""

from __future__ import annotations

import logging
import re
import time
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from docfs.emulators.dspace7.auth import Auth
from docfs.emulators.dspace7.bitstreams import BitstreamRoutes
from docfs.emulators.dspace7.content import ContentRoutes
from docfs.emulators.dspace7.context import Ctx, Handler
from docfs.emulators.dspace7.discovery import DiscoveryRoutes
from docfs.emulators.dspace7.model import Bitstream, Bundle, Collection, Community, Item
from docfs.emulators.dspace7.objects import ObjectRoutes
from docfs.emulators.dspace7.submission import SubmissionRoutes
from docfs.emulators.dspace7.versioning import VersioningRoutes
from docfs.emulators.dspace7.wire import (
    API_PATH,
    CSRF_HEADER,
    CSRF_MESSAGE,
    MUTATING,
    PAGE_MAX,
    UUID_RX,
    Fail,
)

log = logging.getLogger("docfs.emulators.dspace7")


class Routes(
    Auth,
    ObjectRoutes,
    BitstreamRoutes,
    ContentRoutes,
    VersioningRoutes,  # before DiscoveryRoutes: its ``superseded`` is the one that counts
    DiscoveryRoutes,
    SubmissionRoutes,
):
    """Every route group, the table that maps requests to them, and the dispatcher."""

    _table: list[tuple[str, re.Pattern[str], Handler]]

    def routes(self) -> list[BaseRoute]:
        methods = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
        return [Route("/{path:path}", self._endpoint, methods=methods)]

    def _route_table(self) -> list[tuple[str, re.Pattern[str], Handler]]:
        u = f"(?P<uuid>{UUID_RX})"
        routes: list[tuple[str, str, Handler]] = [
            ("GET", "/?", self._root),
            ("POST", "/authn/login", self._login),
            ("POST", "/authn/logout", self._logout),
            ("GET", "/authn/status", self._status),
            ("POST", "/authn/shortlivedtokens", self._short_lived),
            ("GET", f"/eperson/epersons/{u}", self._eperson),
            ("GET", "/core/communities", self._all_communities),
            ("POST", "/core/communities", self._create_community),
            ("GET", "/core/communities/search/top", self._top_communities),
            ("GET", f"/core/communities/{u}", self._get_dso(Community)),
            ("PATCH", f"/core/communities/{u}", self._patch_dso(Community)),
            ("DELETE", f"/core/communities/{u}", self._delete_dso(Community)),
            ("GET", f"/core/communities/{u}/subcommunities", self._subcommunities),
            ("GET", f"/core/communities/{u}/collections", self._community_collections),
            ("GET", f"/core/communities/{u}/logo", self._logo(Community)),
            ("GET", f"/core/communities/{u}/parentCommunity", self._parent_community(Community)),
            ("GET", "/core/collections", self._all_collections),
            ("POST", "/core/collections", self._create_collection),
            ("GET", f"/core/collections/{u}", self._get_dso(Collection)),
            ("PATCH", f"/core/collections/{u}", self._patch_dso(Collection)),
            ("DELETE", f"/core/collections/{u}", self._delete_dso(Collection)),
            ("GET", f"/core/collections/{u}/mappedItems", self._mapped_items),
            ("GET", f"/core/collections/{u}/logo", self._logo(Collection)),
            ("GET", f"/core/collections/{u}/parentCommunity", self._parent_community(Collection)),
            ("GET", "/core/items", self._all_items),
            ("POST", "/core/items", self._create_item),
            ("GET", f"/core/items/{u}", self._get_dso(Item)),
            ("PUT", f"/core/items/{u}", self._put_item),
            ("PATCH", f"/core/items/{u}", self._patch_dso(Item)),
            ("DELETE", f"/core/items/{u}", self._delete_dso(Item)),
            ("GET", f"/core/items/{u}/bundles", self._item_bundles),
            ("POST", f"/core/items/{u}/bundles", self._create_bundle_route),
            ("GET", f"/core/items/{u}/owningCollection", self._owning_collection),
            ("GET", f"/core/items/{u}/mappedCollections", self._mapped_collections),
            (
                "DELETE",
                f"/core/items/{u}/mappedCollections/(?P<collection>{UUID_RX})",
                self._unmap_item,
            ),
            ("PUT", f"/core/items/{u}/owningCollection", self._move_item),
            ("GET", f"/core/bundles/{u}", self._get_dso(Bundle)),
            ("PATCH", f"/core/bundles/{u}", self._patch_bundle),
            ("DELETE", f"/core/bundles/{u}", self._delete_dso(Bundle)),
            ("GET", f"/core/bundles/{u}/bitstreams", self._bundle_bitstreams),
            ("POST", f"/core/bundles/{u}/bitstreams", self._upload),
            ("GET", f"/core/bundles/{u}/item", self._bundle_item),
            ("POST", f"/core/bundles/{u}/primaryBitstream", self._set_primary),
            ("PUT", f"/core/bundles/{u}/primaryBitstream", self._set_primary),
            ("DELETE", f"/core/bundles/{u}/primaryBitstream", self._clear_primary),
            ("GET", "/core/bitstreams/search/byItemHandle", self._by_item_handle),
            ("PATCH", "/core/bitstreams", self._bulk_delete),
            ("GET", f"/core/bitstreams/{u}", self._get_bitstream),
            ("PATCH", f"/core/bitstreams/{u}", self._patch_dso(Bitstream)),
            ("DELETE", f"/core/bitstreams/{u}", self._delete_bitstream),
            ("GET", f"/core/bitstreams/{u}/content", self._content),
            ("HEAD", f"/core/bitstreams/{u}/content", self._content),
            ("GET", f"/core/bitstreams/{u}/bundle", self._bitstream_bundle),
            ("PUT", f"/core/bitstreams/{u}/bundle", self._move_bitstream),
            ("GET", f"/core/bitstreams/{u}/format", self._format),
            ("GET", "/pid/find", self._pid_find),
            ("GET", "/dso/find", self._dso_find),
            ("GET", "/discover/search/objects", self._search),
            ("GET", f"/core/items/{u}/version", self._item_version),
            ("GET", r"/versioning/versions/(?P<vid>\d+)", self._get_version),
            ("GET", r"/versioning/versions/(?P<vid>\d+)/item", self._version_item),
            ("GET", r"/versioning/versions/(?P<vid>\d+)/versionhistory", self._version_history),
            ("GET", r"/versioning/versionhistories/(?P<hid>\d+)/versions", self._history_versions),
            ("POST", "/submission/workspaceitems", self._create_workspace_item),
            ("GET", "/submission/workspaceitems/search/findBySubmitter", self._by_submitter),
            ("GET", r"/submission/workspaceitems/(?P<wsid>\d+)", self._get_workspace_item),
            ("PATCH", r"/submission/workspaceitems/(?P<wsid>\d+)", self._patch_workspace_item),
            ("POST", r"/submission/workspaceitems/(?P<wsid>\d+)", self._workspace_upload),
            ("DELETE", r"/submission/workspaceitems/(?P<wsid>\d+)", self._delete_workspace),
            ("POST", "/workflow/workflowitems", self._deposit),
            ("GET", r"/workflow/workflowitems/(?P<wfid>\d+)", self._get_workflow_item),
        ]
        if self.major >= 8:
            routes.append(("GET", "/security/csrf", self._csrf))
        if self.major >= 10:
            # BitstreamReplaceController (new in 10.0) is always mapped; whether replacement is
            # enabled is checked by BitstreamServiceImpl.replace (400 when off). Before 10.0
            # only GET and HEAD exist on …/content: a PUT answers 405.
            routes.append(("PUT", f"/core/bitstreams/{u}/content", self._replace_content))
        return [(m, re.compile(p + "$"), h) for m, p, h in routes]

    async def _endpoint(self, request: Request) -> Response:
        path = request.url.path
        method = request.method
        issue_token = self._wants_token(request)
        try:
            if not (path == API_PATH or path.startswith(API_PATH + "/")):
                raise Fail(404)
            self._check_rate()
            if method in MUTATING and not self._csrf_ok(request):
                issue_token = True
                raise Fail(403, CSRF_MESSAGE)
            handler, groups = self._match(method, path[len(API_PATH) :] or "/")
            body = await self._read_body(request) if method in MUTATING else b""
            ctx = self._context(request, body)
            with self._state:
                response = handler(ctx, **groups)
        except Fail as fail:
            response = self._error(fail, path)
        except Exception:
            log.exception("%s %s failed", method, path)
            response = self._error(Fail(500), path)
        if response.headers.get(CSRF_HEADER) is None and issue_token:
            self._attach_token(request, response)
        return response

    def _match(self, method: str, sub: str) -> tuple[Handler, dict[str, str]]:
        allowed = False
        lookup = "GET" if method == "HEAD" else method
        for route_method, pattern, handler in self._table:
            found = pattern.match(sub)
            if found is None:
                continue
            allowed = True
            if route_method == method or (route_method == lookup and method == "HEAD"):
                return handler, found.groupdict()
        raise Fail(405 if allowed else 404)

    def _context(self, request: Request, body: bytes) -> Ctx:
        embeds: dict[str, Any] = {}
        for value in request.query_params.getlist("embed"):
            for path in value.split(","):
                node = embeds
                for rel in filter(None, path.strip().split("/")):
                    node = node.setdefault(rel, {})
        if request.query_params.get("projection") == "full":
            # the full projection embeds every relation, two levels deep
            embeds.setdefault("*", {"*": {}})
        sizes: dict[str, int] = {}
        for value in request.query_params.getlist("embed.size"):
            rel, _, size = value.partition("=")
            if size.isdigit():
                sizes[rel.strip("/")] = max(1, min(PAGE_MAX, int(size)))
        base = f"{request.url.scheme}://{request.url.netloc}"
        with self._state:
            caller = self._caller(request, allow_short_lived=request.url.path.endswith("/content"))
        return Ctx(
            request=request,
            api=base + API_PATH,
            caller=caller,
            body=body,
            embeds=embeds,
            embed_sizes=sizes,
        )

    async def _read_body(self, request: Request) -> bytes:
        """Read the body, refusing (413) past the upload limit without keeping the excess."""
        limit = self.max_upload_bytes + 1024 * 1024
        chunks: list[bytes] = []
        total = 0
        async for chunk in request.stream():
            total += len(chunk)
            if total <= limit:
                chunks.append(chunk)
        if total > limit:
            raise Fail(413)
        return b"".join(chunks)

    def _check_rate(self) -> None:
        if self.rate_limit is None:
            return
        count, window = self.rate_limit
        now = time.monotonic()
        with self._state:
            while self._recent and self._recent[0] <= now - window:
                self._recent.popleft()
            if len(self._recent) >= count:
                retry = f"{self.rate_limit_retry_after:g}"
                raise Fail(429, headers={"Retry-After": retry})
            self._recent.append(now)
