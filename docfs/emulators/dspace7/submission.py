"""DSpace 7's submission path for non-administrators: ``/submission/workspaceitems`` (create,
patch sections, upload, delete, find by submitter) and ``/workflow/workflowitems`` (deposit)."""

from __future__ import annotations

import math
import re
import time

from starlette.responses import Response

from docfs.emulators.dspace7.context import Ctx
from docfs.emulators.dspace7.handlers import Handlers
from docfs.emulators.dspace7.model import Collection, Item, WorkflowItem, WorkspaceItem
from docfs.emulators.dspace7.wire import PAGE_DEFAULT, PAGE_MAX, Fail


class SubmissionRoutes(Handlers):
    """Workspace and workflow items."""

    def _workspace_item(self, ctx: Ctx, wsid: str) -> WorkspaceItem:
        ws = self._workspace.get(int(wsid))
        if ws is None:
            raise Fail(404)
        if ctx.caller is None:
            raise Fail(401)
        if not (ctx.caller.admin or ctx.caller.uuid == ws.submitter):
            raise Fail(403)
        return ws

    def _create_workspace_item(self, ctx: Ctx) -> Response:
        if ctx.caller is None:
            raise Fail(401)
        collection = self._objects.get(ctx.param("owningCollection") or "")
        if not isinstance(collection, Collection):
            raise Fail(422)
        # ADD on the collection: its SUBMIT group, or who may write it (admins and the like)
        if ctx.caller.uuid not in collection.submitters:
            self._require_write(ctx, collection)
        item = Item(
            uuid=self._new_uuid(),
            owning=collection.uuid,
            in_archive=False,
            submitter=ctx.caller.uuid,
        )
        self._objects[item.uuid] = item
        self._submission_counter += 1
        ws = WorkspaceItem(
            id=self._submission_counter,
            item=item.uuid,
            collection=collection.uuid,
            submitter=ctx.caller.uuid,
        )
        self._workspace[ws.id] = ws
        return self._json(self._workspace_json(ctx, ws), 201)

    def _by_submitter(self, ctx: Ctx) -> Response:
        """WorkspaceItemRestRepository.findBySubmitter: READ on the EPerson (oneself or an
        administrator), a page of ``_embedded.workspaceitems``."""
        person = self._epersons.get(ctx.param("uuid") or "")
        if ctx.caller is None:
            raise Fail(401)
        if person is None:
            raise Fail(400)
        if not (ctx.caller.admin or ctx.caller is person):
            raise Fail(403)
        found = sorted(
            (w for w in self._workspace.values() if w.submitter == person.uuid),
            key=lambda w: w.id,
        )
        page, size = self._page_params(ctx, PAGE_DEFAULT, PAGE_MAX)
        chunk = found[page * size : (page + 1) * size]
        pages = math.ceil(len(found) / size) if found else 0
        url = f"{ctx.api}/submission/workspaceitems/search/findBySubmitter"
        return self._json(
            {
                "_embedded": {"workspaceitems": [self._workspace_json(ctx, w) for w in chunk]},
                "_links": self._page_links(url, page, size, pages, {"uuid": person.uuid}),
                "page": {
                    "size": size,
                    "totalElements": len(found),
                    "totalPages": pages,
                    "number": page,
                },
            }
        )

    def _get_workspace_item(self, ctx: Ctx, wsid: str) -> Response:
        return self._json(self._workspace_json(ctx, self._workspace_item(ctx, wsid)))

    def _patch_workspace_item(self, ctx: Ctx, wsid: str) -> Response:
        ws = self._workspace_item(ctx, wsid)
        item = self._objects[ws.item]
        ops = self._json_body(ctx)
        if not isinstance(ops, list) or not ops:
            raise Fail(400)
        for op in ops:
            if not isinstance(op, dict):
                raise Fail(422)
            path = str(op.get("path", ""))
            parts = path.split("/")
            if path == "/sections/license/granted" and op.get("op") in ("add", "replace"):
                ws.license_granted = str(op.get("value")).lower() == "true"
            elif (
                len(parts) >= 4 and parts[1] == "sections" and parts[2] not in ("license", "upload")
            ):
                change = {**op, "path": "/metadata/" + "/".join(parts[3:])}
                if op.get("op") == "add" and len(parts) == 4:
                    # a whole field's add "initializes or replaces" it in a submission
                    # (submit/factory/impl/ItemMetadataValueAddPatchOperation: replaceValue),
                    # unlike an archived object's add, which appends
                    change["op"] = "replace"
                self._apply_patch(item, change)
            else:
                raise Fail(422)
        ws.last_modified = time.time()
        self._touch(item)
        return self._json(self._workspace_json(ctx, ws))

    def _workspace_upload(self, ctx: Ctx, wsid: str) -> Response:
        ws = self._workspace_item(ctx, wsid)
        item = self._objects[ws.item]
        part, _ = self._multipart(ctx)
        bundle = self._bundle_named(item, "ORIGINAL") or self._create_bundle(item, "ORIGINAL")
        self._create_bitstream(bundle, part.filename, part.data, None, None)
        return self._json(self._workspace_json(ctx, ws), 201)

    def _delete_workspace(self, ctx: Ctx, wsid: str) -> Response:
        ws = self._workspace_item(ctx, wsid)
        del self._workspace[ws.id]
        self._delete(self._objects[ws.item])
        return self._empty(204)

    def _deposit(self, ctx: Ctx) -> Response:
        if ctx.caller is None:
            raise Fail(401)
        if "text/uri-list" not in ctx.request.headers.get("content-type", ""):
            raise Fail(415, "Unsupported Media Type")
        text = ctx.body.decode("utf-8", "replace").strip()
        found = re.search(r"/submission/workspaceitems/(\d+)\s*$", text)
        ws = self._workspace.get(int(found.group(1))) if found else None
        if ws is None:
            raise Fail(422)
        if ctx.caller.uuid != ws.submitter:
            raise Fail(403)
        item = self._objects[ws.item]
        assert isinstance(item, Item)
        # SubmissionService.createWorkflowItem: any validation error of the workspace item
        # is a 422 (the emulator's rules: a title, a granted license, and — with
        # webui.submit.upload.required — a file: UploadValidator's error.validation.filerequired)
        if self._validation_errors(ws):
            raise Fail(422, "Start workflow failed due to validation error on workspaceitem")
        del self._workspace[ws.id]
        collection = self._objects[ws.collection]
        assert isinstance(collection, Collection)
        if not collection.workflow:
            self._archive(item)
            return self._empty(201)
        self._submission_counter += 1
        wf = WorkflowItem(self._submission_counter, item.uuid, collection.uuid, ws.submitter)
        self._workflow[wf.id] = wf
        return self._json(self._workflow_json(ctx, wf), 201)

    def _get_workflow_item(self, ctx: Ctx, wfid: str) -> Response:
        wf = self._workflow.get(int(wfid))
        if wf is None:
            raise Fail(404)
        if ctx.caller is None:
            raise Fail(401)
        if not (ctx.caller.admin or ctx.caller.uuid == wf.submitter):
            raise Fail(403)
        return self._json(self._workflow_json(ctx, wf))
