"""Writing file content to DSpace 7+: new files (multipart into the ORIGINAL bundle),
overwrites (10.0's ``PUT …/content`` or upload-and-swap), each with its recovery after a lost
answer (docs/protocols/dspace7.md, "Which writes may be sent twice")."""

from __future__ import annotations

import functools
import json
import logging
import time
from collections.abc import Mapping
from contextlib import suppress
from email.utils import parsedate_to_datetime
from pathlib import Path

import httpx

from docfs import errors
from docfs.backends._multipart import Field, FilePart, Multipart, Part
from docfs.backends.base import Entry
from docfs.backends.dspace7.core import DSpace7Core
from docfs.backends.dspace7.hal import JSON, ORIGINAL, primary_marked
from docfs.hashing import file_digest_async

log = logging.getLogger("docfs.dspace7")


def _server_time(response: httpx.Response) -> float:
    """The server's clock at the answer: the item's lastModified moved to about then."""
    stamp = response.headers.get("Date")
    if stamp:
        try:
            return parsedate_to_datetime(stamp).timestamp()
        except (TypeError, ValueError):
            pass
    return time.time()


class Uploads(DSpace7Core):
    """New files and overwrites."""

    # ---- Backend: writing ------------------------------------------------------------------

    async def create_file(self, parent: Entry, name: str, src: Path) -> Entry:
        async with self._changing(parent.extra.get("item") or self._uuid(parent)):
            return await self._create_file(parent, name, src)

    async def _create_file(self, parent: Entry, name: str, src: Path) -> Entry:
        kind = self._type(parent)
        if kind == "bundle":
            item, bundle, bundle_name = parent.extra["item"], self._uuid(parent), parent.name
        elif kind == "item":
            item, bundle_name = self._uuid(parent), ORIGINAL
            bundle = await self._original_bundle(item)
        else:
            raise errors.NotSupported(f"{parent.name}: files live in items only")
        try:
            response = await self._upload(f"core/bundles/{bundle}/bitstreams", src, name, None)
        except errors.NotFound:
            if kind != "item":
                raise
            # the bundle hint was stale (someone removed the bundle): look it up once more
            self._bundle_hint.pop(item, None)
            bundle = await self._original_bundle(item)
            response = await self._upload(f"core/bundles/{bundle}/bitstreams", src, name, None)
        return self._file(
            self._decode(response),
            item=item,
            bundle=bundle,
            bundle_name=bundle_name,
            mtime=_server_time(response),
        )

    async def _upload(
        self,
        path: str,
        src: Path,
        name: str | None,
        properties: JSON | None,
        *,
        method: str = "POST",
        params: Mapping[str, str] | None = None,
        filename: str | None = None,
    ) -> httpx.Response:
        """One multipart request (``file`` + ``properties``), never retried blindly. The
        part's filename is ``filename``, else ``name``: never the staging file's own name,
        which a 10.0 replace would make part of the file's name."""
        self.session.want_fresh_token()
        props = dict(properties or {})
        if name is not None:
            props["name"] = name
        parts: list[Part] = [FilePart("file", src, filename or name or src.name)]
        if props:
            parts.append(Field("properties", json.dumps(props), "application/json"))
        body = Multipart(parts)
        return await self.http.request(
            method,
            f"{self.api}/{path}",
            endpoint="upload",
            params=params,
            body=body,
            headers={"Content-Type": body.content_type},
            idempotent=False,
            status_map={404: errors.NotFound, 422: errors.InvalidArgument},
        )

    async def replace_file(self, entry: Entry, src: Path) -> Entry:
        async with self._changing(entry.extra.get("item", "")):
            return await self._replace_file(entry, src)

    async def _replace_file(self, entry: Entry, src: Path) -> Entry:
        if self.major >= 10 and self._replace is not False:
            if self._replace is None:
                # the first overwrite of the mount finds out; the others wait for its answer
                # (one failed PUT per mount, however many files are overwritten at once)
                async with self._replace_probe:
                    replaced = await self._put_content(entry, src)
            else:
                replaced = await self._put_content(entry, src)
            if replaced is not None:
                return replaced
        return await self._upload_and_swap(entry, src)

    async def _put_content(self, entry: Entry, src: Path) -> Entry | None:
        """10.0's ``PUT …/content`` (BitstreamReplaceController); None where the server does
        not replace content (then ``_replace`` is False for the rest of the mount)."""
        item, bundle = entry.extra["item"], entry.extra["bundle"]
        bundle_name = entry.extra.get("bundle_name", ORIGINAL)
        if self._replace is False:
            return None
        try:
            replaced = await self._put_once(entry, src)
        except (errors.NotSupported, errors.InvalidArgument) as exc:
            # 10.0 with replace-bitstream.enabled=false (the default): the service throws
            # IllegalStateException, answered 400; a server without the endpoint 405.
            # Once per mount: every later overwrite goes straight to upload-and-swap.
            if exc.status not in (400, 405):
                raise
            self._replace = False
            log.info(
                "this DSpace does not replace file content (PUT …/content answered %s): "
                "an overwrite uploads a new copy and deletes the old one",
                exc.status,
            )
        else:
            self._replace = True
            obj, stamp = replaced
            return self._file(obj, item=item, bundle=bundle, bundle_name=bundle_name, mtime=stamp)
        return None

    async def _put_once(self, entry: Entry, src: Path) -> tuple[JSON, float]:
        """``PUT …/content`` is not repeatable: it puts a new bitstream (new uuid) in the old
        one's place, so a second PUT to the old uuid is a 404. After a lost answer: if the
        old uuid is gone, the new bitstream with these bytes in its bundle is the answer;
        if it is still there once the PUT can no longer land, it is sent again."""
        uuid = self._uuid(entry)
        bundle = entry.extra["bundle"]
        md5: str | None = None
        for attempt in range(3):
            try:
                # the entry's own name as the part's filename: with replaceName=false
                # BitstreamServiceImpl.replace keeps the old name only when the extensions
                # agree (else old base name + uploaded extension)
                response = await self._upload(
                    f"core/bitstreams/{uuid}/content",
                    src,
                    None,
                    None,
                    method="PUT",
                    params={"replaceName": "false"},
                    filename=entry.name,
                )
            except errors.RemoteUnavailable as exc:
                if attempt == 2:
                    raise
                if md5 is None:
                    md5 = await file_digest_async(src)
                look = functools.partial(self._replaced, uuid, bundle, entry.name, src, md5)
                found = await self._until(look, exc, entry.name)
                if found is not None:
                    log.info("the new content of %s had arrived; its answer was lost", entry.name)
                    return found, time.time()
                log.info("the new content of %s did not arrive; sending it again", entry.name)
            else:
                return self._decode(response), _server_time(response)
        raise AssertionError("unreachable")

    async def _replaced(
        self, uuid: str, bundle: str, name: str, src: Path, md5: str
    ) -> JSON | None:
        """The bitstream that a ``PUT …/content`` of ``src`` to ``uuid`` put in its place, if
        it did (the old uuid is gone then)."""
        if await self._exists(f"core/bitstreams/{uuid}", "bitstreams") is not False:
            return None
        return await self._arrived(bundle, name, src, {uuid}, md5=md5)

    async def _upload_and_swap(self, entry: Entry, src: Path) -> Entry:
        """7-9: upload the new content beside the old, delete the old, restore the order.

        Each step has its own recovery (issue 18.3): a lost answer to the upload is looked for
        (and waited for, where it may still land) before the upload is sent again; once the
        old bitstream is deleted the new content is committed, and the reordering after it is
        checked against the bundle and never fails the write."""
        uuid = self._uuid(entry)
        item, bundle = entry.extra["item"], entry.extra["bundle"]
        order = [
            obj
            async for obj in self._pages(
                f"core/bundles/{bundle}/bitstreams", "bitstreams", endpoint="bundles/bitstreams"
            )
        ]
        position = next((i for i, o in enumerate(order) if o.get("uuid") == uuid), None)
        if position is None:
            raise errors.NotFound(f"{entry.name}: gone from the server")
        old = order[position]
        metadata = {k: v for k, v in (old.get("metadata") or {}).items() if k != "dc.title"}
        name = str(old.get("name") or entry.name)
        known = {str(o.get("uuid")) for o in order}
        new, stamp = await self._upload_once(bundle, src, name, {"metadata": metadata}, known)
        try:
            await self._delete(f"core/bitstreams/{uuid}", "bitstreams")
        except errors.DocfsError:
            if await self._exists(f"core/bitstreams/{uuid}", "bitstreams") is not False:
                # the old one is still there (or nobody can tell): take the new one away
                # rather than leave two copies behind — never when the old one is gone
                with suppress(errors.DocfsError):
                    await self._delete(f"core/bitstreams/{new['uuid']}", "bitstreams")
                raise
            log.info("the old copy of %s was deleted; its answer was lost", name)
        # the new one is last once the old one is gone
        await self._restore_position(bundle, str(new["uuid"]), len(order) - 1, position, name)
        fresh = self._file(
            new,
            item=item,
            bundle=bundle,
            bundle_name=entry.extra.get("bundle_name", ORIGINAL),
            mtime=stamp,
        )
        if entry.extra.get("primary"):
            # deleting the old bitstream unset the bundle's primary
            # (BundleServiceImpl.removeBitstream); 10.0's PUT …/content keeps it, so do we
            try:
                await self._make_primary(fresh)
            except errors.DocfsError as exc:
                log.warning("%s is no longer its bundle's primary file: %s", name, exc)
            else:
                fresh = primary_marked(fresh)
        return fresh

    async def _upload_once(
        self, bundle: str, src: Path, name: str, properties: JSON, known: set[str]
    ) -> tuple[JSON, float]:
        """POST a new bitstream into ``bundle``; after a lost answer, look for it (for as
        long as it may still land) before sending it again, so that the server never keeps
        two copies. ``known`` are the bundle's bitstreams from before."""
        md5: str | None = None
        for attempt in range(3):
            try:
                response = await self._upload(
                    f"core/bundles/{bundle}/bitstreams", src, name, properties
                )
            except errors.RemoteUnavailable as exc:
                if attempt == 2:
                    raise
                if md5 is None:
                    md5 = await file_digest_async(src)
                look = functools.partial(self._arrived, bundle, name, src, known, md5=md5)
                arrived = await self._until(look, exc, name)
                if arrived is not None:
                    log.info("the upload of %s had arrived; its answer was lost", name)
                    return arrived, time.time()
                log.info("the upload of %s did not arrive; sending it again", name)
            else:
                return self._decode(response), _server_time(response)
        raise AssertionError("unreachable")

    async def _restore_position(
        self, bundle: str, new: str, last: int, position: int, name: str
    ) -> None:
        """Move the new bitstream from ``last`` to the old one's place in the bundle (``move``
        of ``/_links/bitstreams/<i>/href``). A move is not idempotent (sent twice, it moves
        another file), so after a lost answer the bundle's order is read again and the move
        recomputed from it. The content is committed by now: a failure here costs the order
        only, one warning, never the write."""

        async def where() -> tuple[int, int] | None:
            """(current, wanted) index of the new bitstream; None if it is gone."""
            listing = self._pages(
                f"core/bundles/{bundle}/bitstreams", "bitstreams", endpoint="bundles/bitstreams"
            )
            order = [str(o.get("uuid")) async for o in listing]
            if new not in order:
                return None
            return order.index(new), min(position, len(order) - 1)

        problem: errors.DocfsError | None = None
        try:
            places: tuple[int, int] | None = (last, position)
            for attempt in range(3):
                if attempt:
                    places = await where()
                if places is None or places[0] == places[1]:
                    return  # in its place (or removed meanwhile: nothing to order)
                current, wanted = places
                try:
                    await self._json(
                        "PATCH",
                        f"core/bundles/{bundle}",
                        endpoint="bundles",
                        idempotent=False,
                        json=[
                            {
                                "op": "move",
                                "from": f"/_links/bitstreams/{current}/href",
                                "path": f"/_links/bitstreams/{wanted}/href",
                            }
                        ],
                    )
                    return
                except errors.RemoteUnavailable as exc:
                    problem = exc

                    async def moved() -> bool | None:
                        now = await where()
                        return True if now is None or now[0] == now[1] else None

                    if await self._until(moved, exc, name):
                        log.info("%s was put in its place; the answer was lost", name)
                        return
        except errors.DocfsError as exc:
            problem = exc
        log.warning(
            "%s: the new content is stored, but it could not be put back in its place in "
            "the bundle (%s)",
            name,
            problem,
        )

    async def _make_primary(self, entry: Entry) -> None:
        """Make ``entry`` its bundle's primary bitstream: ``POST core/bundles/{uuid}/
        primaryBitstream`` (``PrimaryBitstreamController``, 7.6+), which answers 400 when the
        bundle has a primary already — then ``PUT`` replaces it, so a repeat after a lost
        answer ends in the same state."""
        bundle = entry.extra["bundle"]
        body = f"{self.http.base_url}{self.api}/core/bitstreams/{self._uuid(entry)}\n".encode()
        path = f"core/bundles/{bundle}/primaryBitstream"
        headers = {"Content-Type": "text/uri-list"}
        try:
            await self._json(
                "POST",
                path,
                endpoint="bundles/primaryBitstream",
                body=body,
                headers=headers,
                idempotent=True,
                status_map={400: errors.AlreadyExists},
            )
        except errors.AlreadyExists:
            # the bundle has a primary already (maybe ours, from a lost answer): replace it
            await self._json(
                "PUT",
                path,
                endpoint="bundles/primaryBitstream",
                body=body,
                headers=headers,
                idempotent=True,
            )
