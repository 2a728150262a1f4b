"""The DSpace 6 ``/rest`` route table and dispatcher, login, and the service endpoints.

One Starlette route takes every path under ``/rest``; the table below is matched the way Jersey
matches (literal paths before templates, then the method, else 405; ``@Consumes``/``@Produces``
checked for 415/406), after Spring Security's login filters. See docs/protocols/dspace6.md.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from docfs.emulators.dspace6 import rendering
from docfs.emulators.dspace6.bodies import Req
from docfs.emulators.dspace6.errors import HttpError, html_error
from docfs.emulators.dspace6.model import HANDLE_PREFIX, Collection, Community, Item, User
from docfs.emulators.dspace6.rendering import CONTEXT, empty, expand_fields
from docfs.emulators.dspace6.routes_bitstreams import BitstreamRoutes
from docfs.emulators.dspace6.routes_containers import ContainerRoutes
from docfs.emulators.dspace6.routes_items import ItemRoutes

SITE_NAME = "DSpace at My University"


@dataclass(frozen=True)
class JerseyRoute:
    method: str
    pattern: re.Pattern[str]
    handler: Callable[..., Response]
    #: @Consumes({JSON, XML}): other Content-Types answer 415
    consumes: bool = False
    #: @Produces({JSON, XML}): an Accept without JSON answers 406 (XML is not implemented)
    produces: bool = False


BODY_TYPES = frozenset({"application/json", "application/xml"})


def accepts_json(accept: str | None) -> bool:
    if accept is None or not accept.strip():
        return True
    for part in accept.split(","):
        fields = [f.strip() for f in part.split(";")]
        media = fields[0].lower()
        q = 1.0
        for f in fields[1:]:
            if f.startswith("q="):
                try:
                    q = float(f[2:])
                except ValueError:
                    q = 0.0
        if q > 0 and media in ("application/json", "application/*", "*/*", "*"):
            return True
    return False


class Routes(ContainerRoutes, ItemRoutes, BitstreamRoutes):
    """The route table over every handler, the dispatcher, login/logout and the service pages."""

    _table: list[JerseyRoute]

    # ---- ASGI entry ---------------------------------------------------------------------------

    def routes(self) -> list[BaseRoute]:
        # every method reaches the dispatcher, which answers 405 the way Jersey does
        methods = ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"]
        return [Route(CONTEXT + "{path:path}", self._endpoint, methods=methods)]

    def _build_table(self) -> list[JerseyRoute]:
        seg = r"([^/]+)"

        def r(
            method: str,
            template: str,
            handler: Callable[..., Response],
            *,
            consumes: bool = False,
            produces: bool = False,
        ) -> JerseyRoute:
            pattern = re.compile("^" + template.replace("{}", seg) + "/?$")
            return JerseyRoute(method, pattern, handler, consumes, produces)

        # literal paths come before templates, as Jersey prefers them
        return [
            r("GET", "", self._h_index),
            r("GET", "/status", self._h_status),
            r("GET", "/test", self._h_test),
            r("GET", "/hierarchy", self._h_hierarchy, produces=True),
            r("GET", "/communities/top-communities", self._h_top_communities, produces=True),
            r("GET", "/communities", self._h_communities, produces=True),
            r("POST", "/communities", self._h_create_community, consumes=True, produces=True),
            r("GET", "/communities/{}", self._h_community, produces=True),
            r("PUT", "/communities/{}", self._h_update_community, consumes=True),
            r("DELETE", "/communities/{}", self._h_delete_community),
            r("GET", "/communities/{}/collections", self._h_community_collections, produces=True),
            r(
                "POST",
                "/communities/{}/collections",
                self._h_create_collection,
                consumes=True,
                produces=True,
            ),
            r("DELETE", "/communities/{}/collections/{}", self._h_delete_community_collection),
            r("GET", "/communities/{}/communities", self._h_subcommunities, produces=True),
            r(
                "POST",
                "/communities/{}/communities",
                self._h_create_subcommunity,
                consumes=True,
                produces=True,
            ),
            r("DELETE", "/communities/{}/communities/{}", self._h_delete_subcommunity),
            r(
                "POST",
                "/collections/find-collection",
                self._h_find_collection,
                consumes=True,
                produces=True,
            ),
            r("GET", "/collections", self._h_collections, produces=True),
            r("GET", "/collections/{}", self._h_collection, produces=True),
            r("PUT", "/collections/{}", self._h_update_collection, consumes=True),
            r("DELETE", "/collections/{}", self._h_delete_collection, consumes=True),
            r("GET", "/collections/{}/items", self._h_collection_items, produces=True),
            r("POST", "/collections/{}/items", self._h_create_item, consumes=True, produces=True),
            r(
                "DELETE",
                "/collections/{}/items/{}",
                self._h_delete_collection_item,
                consumes=True,
            ),
            r(
                "POST",
                "/items/find-by-metadata-field",
                self._h_find_by_metadata,
                consumes=True,
                produces=True,
            ),
            r("GET", "/items", self._h_items, produces=True),
            r("GET", "/items/{}", self._h_item, produces=True),
            r("DELETE", "/items/{}", self._h_delete_item),
            r("GET", "/items/{}/metadata", self._h_item_metadata, produces=True),
            r("POST", "/items/{}/metadata", self._h_add_metadata, consumes=True),
            r("PUT", "/items/{}/metadata", self._h_replace_metadata, consumes=True),
            r("DELETE", "/items/{}/metadata", self._h_clear_metadata),
            r("GET", "/items/{}/bitstreams", self._h_item_bitstreams, produces=True),
            r("POST", "/items/{}/bitstreams", self._h_upload),
            r("DELETE", "/items/{}/bitstreams/{}", self._h_delete_item_bitstream),
            r("GET", "/bitstreams", self._h_bitstreams, produces=True),
            r("GET", "/bitstreams/{}", self._h_bitstream, produces=True),
            r("PUT", "/bitstreams/{}", self._h_update_bitstream, consumes=True),
            r("DELETE", "/bitstreams/{}", self._h_delete_bitstream),
            r("GET", "/bitstreams/{}/retrieve", self._h_retrieve),
            r("PUT", "/bitstreams/{}/data", self._h_replace_data),
            r("GET", "/bitstreams/{}/policy", self._h_policies, produces=True),
            r("POST", "/bitstreams/{}/policy", self._h_add_policy, consumes=True, produces=True),
            r("DELETE", "/bitstreams/{}/policy/{}", self._h_delete_policy),
            r("GET", "/handle/{}/{}", self._h_handle, produces=True),
        ]

    async def _endpoint(self, request: Request) -> Response:
        path = request.path_params.get("path", "")
        if path and not path.startswith("/"):
            return html_error(404)
        body = await request.body()
        with self._state:
            who = self._session_user(request.cookies.get("JSESSIONID"))
        rq = Req(request.method.upper(), request.query_params, request.headers, body, who)
        sub = path.rstrip("/") if path != "/" else ""
        try:
            # Spring Security's filters answer these before Jersey sees the request
            if sub == "/login":
                return self._login(rq)
            if sub == "/logout":
                return self._logout(request.cookies.get("JSESSIONID"))
            if sub == "/shibboleth-login":
                raise HttpError(401, "Authentication Failed: Login failed")
            found = self._route(rq, sub)
            if isinstance(found, Response):
                return found
            route, args = found
            with self._state:
                return route.handler(rq, *args)
        except HttpError as exc:
            return exc.response()

    def _route(self, rq: Req, sub: str) -> tuple[JerseyRoute, tuple[str, ...]] | Response:
        """Jersey's matching: the best path template first, then the method (else 405)."""
        method = "GET" if rq.method == "HEAD" else rq.method
        matched: list[tuple[JerseyRoute, tuple[str, ...]]] = []
        for route in self._table:
            m = route.pattern.match(sub)
            if m is not None:
                matched.append((route, m.groups()))
        if not matched:
            return html_error(404)
        first = matched[0][0].pattern.pattern
        candidates = [(r, g) for r, g in matched if r.pattern.pattern == first]
        allowed = sorted({r.method for r, _ in candidates} | {"HEAD", "OPTIONS"})
        if method == "OPTIONS":
            return Response(b"", headers={"allow": ",".join(allowed)})
        for route, groups in candidates:
            if route.method == method:
                self._negotiate(rq, route)
                return route, groups
        response = html_error(405)
        response.headers["allow"] = ",".join(allowed)
        return response

    @staticmethod
    def _negotiate(rq: Req, route: JerseyRoute) -> None:
        if route.consumes:
            media = rq.media_type
            body_less = rq.method == "DELETE" and media is None
            if not body_less and media not in BODY_TYPES:
                raise HttpError(415)
        if route.produces and not accepts_json(rq.headers.get("accept")):
            raise HttpError(406)

    # ---- authentication -----------------------------------------------------------------------

    def _session_user(self, token: str | None) -> User | None:
        if token is None:
            return None
        email = self._sessions.get(token)
        return self._users.get(email) if email is not None else None

    def _login(self, rq: Req) -> Response:
        # request.getParameter: the first value wins, query string before a form body (which
        # the servlet container parses for POSTs only)
        params: dict[str, str] = {}
        for k, v in rq.query.multi_items():
            params.setdefault(k, v)
        if rq.method == "POST" and rq.media_type == "application/x-www-form-urlencoded":
            for k, v in parse_qsl(rq.body.decode("utf-8", "replace"), keep_blank_values=True):
                params.setdefault(k, v)
        email = params.get("email", "")
        password = params.get("password", "")
        with self._state:
            user = self._users.get(email.strip().lower())
            ok = user is not None and secrets.compare_digest(
                user.password.encode(), password.encode()
            )
            if not ok or user is None:
                raise HttpError(401, "Authentication Failed: Login failed")
            token = secrets.token_hex(16).upper()
            self._sessions[token] = user.email
            self._issued.append(token)
        response = empty()
        response.headers["set-cookie"] = f"JSESSIONID={token}; Path=/rest/; HttpOnly"
        return response

    def _logout(self, token: str | None) -> Response:
        with self._state:
            if token is not None:
                self._sessions.pop(token, None)
        return empty()

    # ---- handlers: service --------------------------------------------------------------------

    def _h_index(self, rq: Req) -> Response:
        rows = "".join(
            f"<tr><td>{r.method}</td><td>{CONTEXT}{self._template(r)}</td></tr>"
            for r in self._table
        )
        page = (
            "<html><head><title>DSpace REST - index</title></head><body>"
            "<h2>Index</h2><p>REST API for DSpace " + self.source_version + "</p>"
            "<table>" + rows + "</table></body></html>"
        )
        return Response(page.encode(), headers={"content-type": "text/html"})

    @staticmethod
    def _template(route: JerseyRoute) -> str:
        return route.pattern.pattern[1:-3].replace("([^/]+)", "{id}")

    def _h_status(self, rq: Req) -> Response:
        who = rq.who
        if who is None:
            major = self.source_version.split(".", 1)[0]
            return rendering.json_response(
                {
                    "okay": True,
                    "authenticated": False,
                    "email": None,
                    "fullname": None,
                    "sourceVersion": self.source_version,
                    "apiVersion": major,
                }
            )
        return rendering.json_response(
            {
                "okay": True,
                "authenticated": True,
                "email": who.email,
                "fullname": who.fullname,
                "sourceVersion": None,
                "apiVersion": None,
            }
        )

    def _h_test(self, rq: Req) -> Response:
        return Response(b"REST api is running.", headers={"content-type": "text/plain"})

    def _h_hierarchy(self, rq: Req) -> Response:
        def node(c: Community) -> dict[str, Any]:
            return {
                "id": c.uuid,
                "name": c.name,
                "handle": c.handle,
                "community": [
                    node(s) for s in self._by_name(c.subs) if self._can(rq.who, "READ", s)
                ],
                "collection": [
                    {"id": k.uuid, "name": k.name, "handle": k.handle}
                    for k in self._by_name(c.collections)
                    if self._can(rq.who, "READ", k)
                ],
            }

        tops = [c for c in self._by_name(self._communities.values()) if c.parent is None]
        return rendering.json_response(
            {
                "id": self._site_uuid,
                "name": SITE_NAME,
                "handle": f"{HANDLE_PREFIX}/0",
                "community": [node(c) for c in tops if self._can(rq.who, "READ", c)],
                "collection": [],
            }
        )

    def _h_handle(self, rq: Req, prefix: str, suffix: str) -> Response:
        handle = f"{prefix}/{suffix}"
        fields = expand_fields(rq.param("expand"))
        if handle == f"{HANDLE_PREFIX}/0":
            return rendering.json_response(
                {
                    "uuid": self._site_uuid,
                    "name": SITE_NAME,
                    "handle": handle,
                    "type": "site",
                    "link": f"{CONTEXT}/sites/{self._site_uuid}",
                    "expand": [],
                }
            )
        node = self._handles.get(handle)
        # the 404/401 thrown here is replaced by 500 in processFinally
        # (docs/protocols/dspace6.md, Errors)
        if node is None or not self._can(rq.who, "READ", node):
            raise HttpError(500)
        if isinstance(node, Community):
            return rendering.json_response(self._community_json(node, fields, rq.who))
        if isinstance(node, Collection):
            return rendering.json_response(self._collection_json(node, fields, rq.who, None))
        if isinstance(node, Item):
            return rendering.json_response(self._item_json(node, fields, rq.who))
        return rendering.json_response(self._plain_dso(node))
