"""DSpace 7's ``/core/bundles`` and ``/core/bitstreams`` routes other than the download: upload
into a bundle, reordering, moving, deleting, formats, lookup by item handle, and 10.0's
replacement of a file's content."""

from __future__ import annotations

import hashlib
import mimetypes
import re
from typing import Any

from starlette.responses import Response

from docfs.emulators.dspace7.context import Ctx
from docfs.emulators.dspace7.handlers import Handlers
from docfs.emulators.dspace7.model import Bitstream, Bundle, Item, guess_mime, replaced_name
from docfs.emulators.dspace7.wire import UUID_RX, Fail


class BitstreamRoutes(Handlers):
    """Bundles and bitstreams."""

    def _bundle_bitstreams(self, ctx: Ctx, uuid: str) -> Response:
        bundle = self._lookup(ctx, uuid, Bundle)
        assert isinstance(bundle, Bundle)
        return self._list(ctx, "bitstreams", [self._objects[u] for u in bundle.bitstreams])

    def _bundle_item(self, ctx: Ctx, uuid: str) -> Response:
        bundle = self._lookup(ctx, uuid, Bundle)
        assert isinstance(bundle, Bundle)
        return self._json(self._render(ctx, self._objects[bundle.item]))

    def _patch_bundle(self, ctx: Ctx, uuid: str) -> Response:
        """Metadata patches, plus ``move`` of ``/_links/bitstreams/<i>/href`` (reordering)."""
        bundle = self._lookup(ctx, uuid, Bundle)
        assert isinstance(bundle, Bundle)
        self._require_write(ctx, bundle)
        ops = self._json_body(ctx)
        if not isinstance(ops, list) or not ops:
            raise Fail(400)
        for op in ops:
            if isinstance(op, dict) and op.get("op") == "move":
                source = self._link_index(op.get("from"), len(bundle.bitstreams))
                target = self._link_index(op.get("path"), len(bundle.bitstreams))
                bundle.bitstreams.insert(target, bundle.bitstreams.pop(source))
            else:
                self._apply_patch(bundle, op)
        self._touch(bundle)
        return self._json(self._render(ctx, bundle))

    @staticmethod
    def _link_index(path: Any, length: int) -> int:
        found = re.fullmatch(r"/_links/bitstreams/(\d+)/href", str(path))
        if found is None or int(found.group(1)) >= length:
            raise Fail(400)
        return int(found.group(1))

    def _upload(self, ctx: Ctx, uuid: str) -> Response:
        bundle = self._objects.get(uuid)
        if not isinstance(bundle, Bundle):
            raise Fail(404)
        self._require_write(ctx, bundle)
        part, properties = self._multipart(ctx)
        name = properties.get("name") or part.filename
        metadata = properties.get("metadata") or {}
        if not isinstance(metadata, dict):
            raise Fail(422)
        stream = self._create_bitstream(bundle, name, part.data, None, metadata)
        return self._json(self._render(ctx, stream), 201)

    def _get_bitstream(self, ctx: Ctx, uuid: str) -> Response:
        """``findOne`` needs METADATA_READ (BitstreamMetadataReadPermissionEvaluatorPlugin):
        READ on the bitstream, or READ on its item and its first bundle — so an embargoed
        file's metadata is readable anonymously (findOneBitstreamTest_EmbargoedBitstream_Anon
        expects 200), while its content is not."""
        stream = self._objects.get(uuid)
        if not isinstance(stream, Bitstream):
            raise Fail(404)
        if not self._can_read(ctx.caller, stream):
            bundle = self._objects.get(stream.bundle or "")
            item = self._item_of(stream)
            if not (
                bundle is not None
                and item is not None
                and self._can_read(ctx.caller, bundle)
                and self._can_read(ctx.caller, item)
            ):
                raise Fail(401 if ctx.caller is None else 403)
        return self._json(self._render(ctx, stream))

    def _delete_bitstream(self, ctx: Ctx, uuid: str) -> Response:
        stream = self._lookup(ctx, uuid, Bitstream)
        assert isinstance(stream, Bitstream)
        if stream.logo_of is not None:
            raise Fail(422, "The bitstream is the logo of a community or collection")
        self._require_write(ctx, stream)
        self._delete(stream)
        return self._empty(204)

    def _bulk_delete(self, ctx: Ctx) -> Response:
        ops = self._json_body(ctx)
        if not isinstance(ops, list) or not ops:
            raise Fail(400)
        targets: list[Bitstream] = []
        for op in ops:
            found = re.fullmatch(f"/bitstreams/({UUID_RX})", str(op.get("path", "")))
            if not isinstance(op, dict) or op.get("op") != "remove" or found is None:
                raise Fail(422)
            stream = self._objects.get(found.group(1))
            if not isinstance(stream, Bitstream):
                raise Fail(422)
            self._require_write(ctx, stream)
            targets.append(stream)
        for stream in targets:
            self._delete(stream)
        return self._empty(204)

    def _bitstream_bundle(self, ctx: Ctx, uuid: str) -> Response:
        stream = self._lookup(ctx, uuid, Bitstream)
        assert isinstance(stream, Bitstream)
        bundle = self._objects.get(stream.bundle or "")
        if bundle is None:
            return self._empty(204)
        return self._json(self._render(ctx, bundle))

    def _move_bitstream(self, ctx: Ctx, uuid: str) -> Response:
        stream = self._lookup(ctx, uuid, Bitstream)
        assert isinstance(stream, Bitstream)
        found = self._one_uri(ctx, "bundles")
        if found is None:
            raise Fail(400)
        target = self._objects.get(found)
        if not isinstance(target, Bundle):
            raise Fail(422)
        if stream.bundle == target.uuid:
            raise Fail(400, "The provided bitstream is already in the target bundle")
        self._require_write(ctx, stream)
        self._require_write(ctx, target)
        source = self._objects.get(stream.bundle or "")
        if isinstance(source, Bundle):
            source.bitstreams.remove(stream.uuid)
            self._touch(source)
        stream.bundle = target.uuid
        target.bitstreams.append(stream.uuid)
        self._touch(stream)
        return self._json(self._render(ctx, target))

    # ---- a bundle's primary bitstream (PrimaryBitstreamController, 7.6+) ---------------------
    # POST sets it and is a 400 when the bundle has one; PUT replaces it and is a 400 when it
    # has none; DELETE clears it (400 when none); a bitstream of another bundle is a 422
    # (BundlePrimaryBitstreamLinkRepository.prepareBundleAndCheck). WRITE on the bundle.

    def _set_primary(self, ctx: Ctx, uuid: str) -> Response:
        bundle = self._lookup(ctx, uuid, Bundle)
        assert isinstance(bundle, Bundle)
        self._require_write(ctx, bundle)
        creating = ctx.request.method == "POST"
        if creating and bundle.primary is not None:
            raise Fail(400, f"Bundle '{bundle.name}' already has a primary bitstream.")
        if not creating and bundle.primary is None:
            raise Fail(400, f"Bundle '{bundle.name}' doesn't have a primary bitstream.")
        found = self._one_uri(ctx, "bitstreams")
        if found is None or not isinstance(self._objects.get(found), Bitstream):
            raise Fail(422, "URI does not resolve to an existing bitstream.")
        if found not in bundle.bitstreams:
            raise Fail(422, f"Bundle '{bundle.name}' does not contain bitstream {found}")
        bundle.primary = found
        self._touch(bundle)
        return self._json(self._render(ctx, bundle), 201 if creating else 200)

    def _clear_primary(self, ctx: Ctx, uuid: str) -> Response:
        bundle = self._lookup(ctx, uuid, Bundle)
        assert isinstance(bundle, Bundle)
        self._require_write(ctx, bundle)
        if bundle.primary is None:
            raise Fail(400, f"Bundle '{bundle.name}' doesn't have a primary bitstream.")
        bundle.primary = None
        self._touch(bundle)
        return self._empty(204)

    def _format(self, ctx: Ctx, uuid: str) -> Response:
        stream = self._lookup(ctx, uuid, Bitstream)
        assert isinstance(stream, Bitstream)
        known = stream.mime != "application/octet-stream"
        number = int(hashlib.md5(stream.mime.encode()).hexdigest()[:6], 16) if known else 1
        extension = mimetypes.guess_extension(stream.mime, strict=False) if known else None
        return self._json(
            {
                "id": number,
                "shortDescription": stream.mime if known else "Unknown",
                "description": stream.mime if known else "Unknown data format",
                "mimetype": stream.mime,
                "supportLevel": "KNOWN" if known else "UNKNOWN",
                "internal": False,
                "extensions": [extension.lstrip(".")] if extension else [],
                "type": "bitstreamformat",
                "_links": {"self": {"href": f"{ctx.api}/core/bitstreamformats/{number}"}},
            }
        )

    def _by_item_handle(self, ctx: Ctx) -> Response:
        item = self._objects.get(self._handles.get(ctx.param("handle") or "", ""))
        if not isinstance(item, Item):
            return self._empty(204)
        self._require_read(ctx, item)
        sequence = ctx.param("sequence")
        filename = ctx.param("filename")
        bundles = [self._objects[u] for u in item.bundles]
        bundles.sort(key=lambda b: b.name != "ORIGINAL")
        for bundle in bundles:
            assert isinstance(bundle, Bundle)
            for stream_id in bundle.bitstreams:
                stream = self._objects[stream_id]
                assert isinstance(stream, Bitstream)
                if (sequence and str(stream.sequence_id) == sequence) or (
                    not sequence and filename and stream.name == filename
                ):
                    return self._json(self._render(ctx, stream))
        return self._empty(204)

    def _replace_content(self, ctx: Ctx, uuid: str) -> Response:
        """10.0 (``BitstreamReplaceController``): a new bitstream (new uuid) takes the old one's
        place, metadata and policies — if ``replace-bitstream.enabled``; else
        ``BitstreamServiceImpl.replace`` throws IllegalStateException, answered 400."""
        old = self._objects.get(uuid)
        if not isinstance(old, Bitstream):
            raise Fail(404)
        # @PreAuthorize("hasPermission(#uuid, 'BITSTREAM','WRITE')") comes first
        self._require_write(ctx, old)
        part, _ = self._multipart(ctx)
        bundle = self._objects.get(old.bundle or "")
        if not isinstance(bundle, Bundle):
            raise Fail(400)
        if not self.replace_bitstream_enabled:
            raise Fail(400, "Bitstream replacement is not enabled")
        # @RequestParam(value = "replaceName", defaultValue = "true")
        replace_name = (ctx.param("replaceName") or "true").lower() == "true"
        new = Bitstream(
            uuid=self._new_uuid(),
            bundle=bundle.uuid,
            content=part.data,
            metadata={k: [dict(v) for v in vs] for k, vs in old.metadata.items()},
            readers=None if old.readers is None else set(old.readers),
            writers=set(old.writers),
            sequence_id=old.sequence_id,
        )
        new_name = replaced_name(old.name, part.filename, replace_name)
        if new_name is not None:
            new.set_name(new_name)
        new.mime = guess_mime(new.name)
        self._objects[new.uuid] = new
        bundle.bitstreams[bundle.bitstreams.index(old.uuid)] = new.uuid
        if bundle.primary == old.uuid:
            bundle.primary = new.uuid
        del self._objects[old.uuid]
        self._touch(new)
        return self._json(self._render(ctx, new), 201)
