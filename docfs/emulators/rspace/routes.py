"""The RSpace ``/api/v1`` route table and dispatcher.

One Starlette route takes every path; ``POST /oauth/token`` is answered first, then the table
is matched (404 without a body for unknown paths, 405 with an ``ApiError``), and each API call
goes through the throttle, the upload size limit and quota, and authentication, in that order.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Mapping
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from docfs.emulators.base import version_key
from docfs.emulators.rspace.auth import Auth
from docfs.emulators.rspace.context import Ctx, Handler
from docfs.emulators.rspace.errors import ApiError
from docfs.emulators.rspace.limits import Limits
from docfs.emulators.rspace.rendering import json_response
from docfs.emulators.rspace.routes_documents import DocumentRoutes
from docfs.emulators.rspace.routes_files import FileRoutes
from docfs.emulators.rspace.routes_folders import FolderRoutes
from docfs.emulators.rspace.routes_sharing import SharingRoutes
from docfs.emulators.rspace.settings import API, MOVE_SINCE


class Routes(Auth, Limits, FolderRoutes, DocumentRoutes, FileRoutes, SharingRoutes):
    """The route table over every handler, the dispatcher, and ``/status``."""

    _route_table: list[tuple[re.Pattern[str], dict[str, Handler]]] | None

    # ---- routing ---------------------------------------------------------------------------

    def routes(self) -> list[BaseRoute]:
        methods = ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"]
        return [Route("/{path:path}", self._dispatch, methods=methods)]

    def _table(self) -> list[tuple[re.Pattern[str], dict[str, Handler]]]:
        if self._route_table is None:
            self._route_table = self._build_table()
        return self._route_table

    def _build_table(self) -> list[tuple[re.Pattern[str], dict[str, Handler]]]:
        t: list[tuple[str, dict[str, Handler]]] = [
            (r"/status", {"GET": self._status}),
            (r"/status/touch", {"POST": self._status}),
            (r"/folders/tree", {"GET": self._tree}),
            (r"/folders/tree/([^/]+)", {"GET": self._tree}),
            (r"/folders", {"POST": self._create_folder}),
            (r"/folders/([^/]+)", {"GET": self._get_folder, "DELETE": self._delete_folder}),
            (r"/documents", {"GET": self._list_documents, "POST": self._create_document}),
            (r"/documents/move", {"POST": self._move}),
            (
                r"/documents/([^/]+)",
                {
                    "GET": self._get_document,
                    "PUT": self._update_document,
                    "DELETE": self._delete_document,
                },
            ),
            (r"/files", {"GET": self._list_files, "POST": self._upload}),
            (r"/files/([^/]+)", {"GET": self._get_file}),
            (r"/files/([^/]+)/file", {"GET": self._download, "POST": self._new_version}),
            (r"/snippets/([^/]+)", {"GET": self._get_snippet}),
            (r"/snippets/([^/]+)/content", {"GET": self._snippet_content}),
            (
                r"/share",
                {"GET": self._list_shares, "POST": self._share, "PUT": self._update_share},
            ),
            (r"/share/([^/]+)", {"DELETE": self._unshare}),
            (r"/share/document/([^/]+)", {"GET": self._document_shares}),
            (r"/groups", {"GET": self._list_groups}),
            (r"/groups/([^/]+)", {"GET": self._get_group}),
        ]
        if version_key(self.version) < version_key(MOVE_SINCE):
            # no moveDocuments before 2.16: POST /documents/move meets /documents/{id} (405)
            t = [(p, h) for p, h in t if p != r"/documents/move"]
        return [(re.compile(p), h) for p, h in t]

    async def _dispatch(self, request: Request) -> Response:
        path = request.url.path
        if path == "/oauth/token":
            if request.method != "POST":
                return PlainTextResponse("Method Not Allowed", status_code=405)
            return self._oauth(await request.body(), request.headers.get("content-type", ""))
        if not path.startswith(API + "/"):
            return PlainTextResponse("Not Found", status_code=404)
        sub = path[len(API) :]
        matches = [(m, h) for p, h in self._table() if (m := p.fullmatch(sub)) is not None]
        if not matches:
            # unknown routes (and double-slash paths) have no ApiError body
            return PlainTextResponse("Not Found", status_code=404)
        handler = None
        args: tuple[str, ...] = ()
        for m, handlers in matches:
            if request.method in handlers:
                handler, args = handlers[request.method], m.groups()
                break
        if handler is None:
            allowed = sorted({meth for _, hs in matches for meth in hs})
            error = ApiError(
                405,
                f"Request method '{request.method}' is not supported",
                internal=40501,
                errors=[f"Supported methods are {', '.join(allowed)}"],
            )
            return json_response(error.body(), 405, {"Allow": ", ".join(allowed)})
        return await self._api_call(request, handler, args)

    async def _api_call(
        self, request: Request, handler: Handler, args: tuple[str, ...]
    ) -> Response:
        csv_wanted = "text/csv" in request.headers.get("accept", "")
        rate_headers: dict[str, str] = {}
        try:
            rate_headers = self._throttle(request.headers)
            too_large = ApiError(
                413, f"Maximum upload size of {self.max_upload} bytes exceeded", internal=41301
            )
            if int(request.headers.get("content-length") or 0) > self.max_upload:
                raise too_large
            body = await request.body()
            if len(body) > self.max_upload:  # chunked bodies carry no Content-Length
                raise too_large
            # registered for "/api/**/files" only, before authentication (WebConfig)
            if self.upload_quota is not None and request.url.path == API + "/files":
                rate_headers.update(self._upload_quota(request.method, request.headers, body))
            with self._state:
                user = self._authenticate(request.headers)
                ctx = Ctx(
                    user=user,
                    method=request.method,
                    args=args,
                    query=parse_qsl(request.url.query, keep_blank_values=True),
                    headers=request.headers,
                    body=body,
                    base=self._base(request) + API,
                )
                try:
                    response = handler(ctx)
                except (KeyError, TypeError, ValueError, AttributeError) as exc:
                    # what the server's catch-all handler answers for unexpected failures
                    raise ApiError(
                        500, f"Unexpected error: {type(exc).__name__}", internal=50001
                    ) from exc
        except ApiError as exc:
            rate_headers.update(exc.headers)
            if csv_wanted and request.url.path.startswith(API + "/documents/"):
                return self._csv_error(exc, rate_headers)
            return json_response(exc.body(), exc.status, rate_headers)
        for k, v in rate_headers.items():
            response.headers[k] = v
        return response

    def _base(self, request: Request) -> str:
        if self.server_url:
            return self.server_url
        # the configured URL is the listening address, never the client's Host header
        server = request.scope.get("server") or ("127.0.0.1", 80)
        return f"http://{server[0]}:{server[1]}"

    @staticmethod
    def _csv_error(exc: ApiError, headers: Mapping[str, str]) -> Response:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["status", "httpCode", "internalCode", "message", "errors"])
        body = exc.body()
        writer.writerow(
            [body["status"], exc.status, exc.internal, exc.message, ",".join(exc.errors)]
        )
        return Response(out.getvalue(), exc.status, headers=headers, media_type="text/csv")

    # ---- status ----------------------------------------------------------------------------

    def _status(self, ctx: Ctx) -> Response:
        return json_response({"message": "OK", "rspaceVersion": self.version})
