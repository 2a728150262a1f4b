"""HTTP plumbing of the DocSpace emulator: the rate limiter in front, authentication, the
handler dispatch (envelopes, errors, ``fields=``), request bodies and path references.
"""

from __future__ import annotations

import json
import time
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from docfs.emulators.base import (
    LoggedRequest,
    Receive,
    Scope,
    Send,
)
from docfs.emulators.docspace.backdoor import Backdoor
from docfs.emulators.docspace.model import (
    READ,
    TITLE_MAX_REQUEST,
    ApiError,
    FileObj,
    FolderObj,
    ValidationFailed,
    access_denied,
    not_found,
)
from docfs.emulators.docspace.rendering import trim_fields
from docfs.emulators.docspace.state import Created, Ctx, Handler, Unauthorized, Void
from docfs.emulators.docspace.wire import lookup


class Dispatch(Backdoor):
    """The ASGI entry (rate limiter), route building and the handler dispatch."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The global rate limiter sits in front of everything, like ASP.NET's middleware."""
        limiter = self._limiter
        if scope["type"] != "http" or limiter is None:
            await super().__call__(scope, receive, send)
            return
        key = self._limiter_key(scope)
        method = scope["method"]
        rejection = limiter.acquire(key, method, self.now())
        if rejection is not None:
            await self._reject(scope, send, limiter.config.status, rejection)
            return
        try:
            await super().__call__(scope, receive, send)
        finally:
            limiter.release(key, method)

    async def _reject(self, scope: Scope, send: Send, status: int, headers: dict[str, str]) -> None:
        stamp = time.monotonic()
        entry = LoggedRequest(
            method=scope["method"],
            path=scope["path"],
            query=scope.get("query_string", b"").decode("latin-1"),
            status=status,
            start=stamp,
            end=stamp,
            fault="rate-limited",
        )
        with self._lock:
            self.log.append(entry)
        raw = [(k.lower().encode(), v.encode()) for k, v in headers.items()]
        raw.append((b"content-length", b"0"))
        await send({"type": "http.response.start", "status": status, "headers": raw})
        await send({"type": "http.response.body", "body": b""})

    def _route(
        self, path: str, handler: Handler, methods: list[str], anonymous: bool = False
    ) -> Route:
        async def endpoint(request: Request) -> Response:
            return await self._dispatch(request, handler, anonymous)

        return Route(path, endpoint, methods=methods)

    async def _dispatch(self, request: Request, handler: Handler, anonymous: bool) -> Response:
        headers = {k.lower(): v for k, v in request.headers.items()}
        with self._state:
            self._advance()
            principal = self._authenticate(headers, dict(request.cookies))
        if principal is None and not anonymous:
            # the ASP.NET challenge: 401 with an empty body (§1.4)
            return Response(status_code=401)
        if principal is not None and not self._scope_allows(
            principal.scopes, request.url.path, request.method
        ):
            return Response(status_code=403)
        ctx = Ctx(request, principal, str(request.base_url).rstrip("/"))
        try:
            result = await handler(ctx)
        except ValidationFailed as exc:
            return self._validation_response(request, exc.errors)
        except ApiError as exc:
            return self._error_response(exc)
        except Unauthorized:
            return Response(status_code=401)
        status = 200
        if isinstance(result, Created):
            result, status = result.payload, 201
        fields = request.query_params.get("fields")
        if fields and not isinstance(result, Void):
            result = trim_fields(result, fields)
        return self._envelope(request, result, status)

    @staticmethod
    async def _body(ctx: Ctx, required: bool = True) -> dict[str, Any]:
        raw = await ctx.request.body()
        if not raw.strip():
            if required:
                raise ValidationFailed({"": ["A non-empty request body is required."]})
            return {}
        try:
            body = json.loads(raw)
        except ValueError:
            raise ValidationFailed({"$": ["The JSON value could not be converted."]}) from None
        if not isinstance(body, dict):
            raise ValidationFailed({"$": ["The JSON value could not be converted."]})
        return body

    @staticmethod
    def _title(body: dict[str, Any], name: str = "title") -> str:
        """A request DTO title: required, at most 165 characters."""
        title = lookup(body, name)
        if not isinstance(title, str) or not title.strip():
            raise ValidationFailed({name: [f"The {name} field is required."]})
        if len(title) > TITLE_MAX_REQUEST:
            raise ValidationFailed(
                {name: [f"The field {name} must be a string with a maximum length of 165."]}
            )
        return title

    def _folder_ref(self, ctx: Ctx, ref: str) -> FolderObj:
        user = ctx.user
        if ref in ("@my", "@trash"):
            if user is None:
                raise Unauthorized()
            folder_id = user.my_id if ref == "@my" else user.trash_id
            if not folder_id:
                raise not_found("My documents is not available for this user")
        elif ref.isdigit():
            folder_id = int(ref)
        else:
            raise not_found("The folder could not be found")
        folder = self.folders.get(folder_id)
        if folder is None:
            raise not_found("The folder could not be found")
        return folder

    def _file_ref(self, ctx: Ctx) -> FileObj:
        ref = ctx.request.path_params["fileId"]
        file = self.files.get(int(ref)) if ref.isdigit() else None
        if file is None:
            raise not_found("The file could not be found")
        if self._level(ctx.user, file.folder_id) < READ:
            raise access_denied()
        return file
