"""What every group of DSpace 7 handlers shares: the permission checks that answer 401/403/404,
and reading JSON, ``text/uri-list`` and multipart bodies."""

from __future__ import annotations

import json
import re
from typing import Any

from docfs.emulators.dspace7.context import Ctx, Part, first_json_value, parse_multipart
from docfs.emulators.dspace7.model import DSO
from docfs.emulators.dspace7.rendering import Rendering
from docfs.emulators.dspace7.wire import UUID_RX, Fail


class Handlers(Rendering):
    """Base of the route groups (``auth``, ``objects``, ``bitstreams``, ``content``,
    ``discovery``, ``submission``)."""

    def _require_read(self, ctx: Ctx, dso: DSO) -> None:
        if not self._can_read(ctx.caller, dso):
            raise Fail(401 if ctx.caller is None else 403)

    def _require_write(self, ctx: Ctx, dso: DSO | None) -> None:
        if not self._can_write(ctx.caller, dso):
            raise Fail(401 if ctx.caller is None else 403)

    def _require_admin(self, ctx: Ctx) -> None:
        if ctx.caller is None:
            raise Fail(401)
        if not ctx.caller.admin:
            raise Fail(403)

    def _lookup(self, ctx: Ctx, uuid: str, kind: type[DSO]) -> DSO:
        dso = self._objects.get(uuid)
        if dso is None or not isinstance(dso, kind):
            raise Fail(404)
        self._require_read(ctx, dso)
        return dso

    # ---- request bodies --------------------------------------------------------------------

    @staticmethod
    def _json_body(ctx: Ctx) -> Any:
        try:
            return json.loads(ctx.body or b"null")
        except ValueError:
            raise Fail(400) from None

    def _create_body(self, ctx: Ctx) -> dict[str, Any]:
        data = self._json_body(ctx)
        if not isinstance(data, dict):
            raise Fail(400)
        metadata = data.get("metadata") or {}
        if not isinstance(metadata, dict):
            raise Fail(422)
        return data

    def _new_dso(self, dso: DSO, data: dict[str, Any]) -> DSO:
        """Name from ``metadata.dc.title`` only: DSpace derives ``name``, it never reads it."""
        self._init_dso(dso, None, data.get("metadata") or {})
        return dso

    @staticmethod
    def _one_uri(ctx: Ctx, section: str) -> str | None:
        """The uuid of the one ``/core/<section>/<uuid>`` a ``text/uri-list`` body names (None
        when it names another kind, or not exactly one); 415 for another content type."""
        if "text/uri-list" not in ctx.request.headers.get("content-type", ""):
            raise Fail(415, "Unsupported Media Type")
        lines = [
            line.strip()
            for line in ctx.body.decode("utf-8", "replace").splitlines()
            if line.strip() and not line.startswith("#")
        ]
        found = re.search(f"/core/{section}/({UUID_RX})$", lines[0]) if len(lines) == 1 else None
        return found.group(1) if found else None

    def _multipart(self, ctx: Ctx) -> tuple[Part, dict[str, Any]]:
        """The ``file`` part and the parsed ``properties`` of an upload."""
        content_type = ctx.request.headers.get("content-type", "")
        if not content_type.startswith("multipart/"):
            raise Fail(400)
        parts = parse_multipart(ctx.body, content_type)
        files = [p for p in parts if p.name == "file"]
        if not files:
            raise Fail(400, "No file was uploaded")
        if len(files[0].data) > self.max_upload_bytes:
            raise Fail(413)
        properties: dict[str, Any] = {}
        for part in parts:
            if part.name == "properties":
                try:
                    parsed = first_json_value(part.data.decode("utf-8"))
                except (ValueError, UnicodeDecodeError):
                    raise Fail(422) from None
                if not isinstance(parsed, dict):
                    raise Fail(422)
                properties = parsed
        return files[0], properties
