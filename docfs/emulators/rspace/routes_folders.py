"""RSpace handlers for ``/folders`` and ``POST /documents/move`` (``FolderApiController``,
``DocumentsApiController.moveDocuments``)."""

from __future__ import annotations

from starlette.responses import Response

from docfs.emulators.rspace.content import clean_name
from docfs.emulators.rspace.context import Ctx, int_arg
from docfs.emulators.rspace.errors import ApiError, illegal, not_found, unauthorised, validation
from docfs.emulators.rspace.records import Record
from docfs.emulators.rspace.rendering import Rendering, json_response

TREE_TYPES = ("folder", "notebook", "document", "snippet")


class FolderRoutes(Rendering):
    """The folder tree, folders and notebooks, and moving documents between them."""

    def _tree(self, ctx: Ctx) -> Response:
        page, size, order = self._paging(ctx)
        types: list[str] = []
        for raw in ctx.params("typesToInclude"):
            types.extend(t.strip() for t in raw.split(",") if t.strip())
        bad = [t for t in types if t not in TREE_TYPES]
        if bad:
            raise illegal(f"typesToInclude terms must be one of: {', '.join(TREE_TYPES)}")
        if ctx.args:
            folder = self._visible_folder(ctx, int_arg(ctx.args[0]))
            path = f"/folders/tree/{folder.id}"
        else:
            folder, path = self._records[ctx.user.home], "/folders/tree"
        wanted = {"FOLDER": "folder", "NOTEBOOK": "notebook", "DOCUMENT": "document"}
        wanted |= {"MEDIA": "document", "SNIPPET": "snippet"}
        children = []
        for cid in folder.children:
            rec = self._records[cid]
            if self._is_deleted(rec) or not self._can_read(ctx.user, rec):
                continue
            # the Gallery root stays visible whatever the filter
            if types and wanted[rec.kind] not in types and rec.role != "GALLERY":
                continue
            children.append(rec)
        children = self._sort(children, order)
        chunk = children[page * size : (page + 1) * size]
        return json_response(
            {
                "folderId": folder.id,
                "totalHits": len(children),
                "pageNumber": page,
                "records": [self._tree_item(ctx, r, folder.id) for r in chunk],
                # typesToInclude is not carried into the links (server behaviour)
                "_links": self._page_links(ctx, path, page, size, order, len(children)),
            }
        )

    def _get_folder(self, ctx: Ctx) -> Response:
        rec = self._visible_folder(ctx, int_arg(ctx.args[0]))
        with_path = (ctx.param("includePathToRootFolder") or "").lower() == "true"
        return json_response(self._folder_json(ctx, rec, with_path))

    def _create_folder(self, ctx: Ctx) -> Response:
        body = ctx.json()
        if not isinstance(body, dict):
            raise ApiError(400, "JSON parse error: expected an object", internal=40009)
        raw_name = body.get("name") or ""
        notebook = bool(body.get("notebook"))
        parent_id = body.get("parentFolderId")
        if len(raw_name) > 255:
            raise validation(("name", raw_name, "Name cannot be longer than 255 characters"))
        if parent_id is not None and (not isinstance(parent_id, int) or parent_id < 1):
            raise validation(("parentFolderId", parent_id, "must be greater than or equal to 1"))
        name = clean_name(raw_name) or ("Untitled Notebook" if notebook else "Untitled Folder")
        if parent_id is None:
            parent = self._records[ctx.user.home]
        else:
            found = self._rec(parent_id)
            if found is None:
                raise ApiError(500, f"Folder {parent_id} could not be loaded", internal=50001)
            parent = found
        self._check_folder_parent(ctx, parent, notebook)
        rec = self._new_record(
            "NOTEBOOK" if notebook else "FOLDER",
            name,
            ctx.user.id,
            parent.id,
            shared_folder=self._group_folder_of(parent) is not None,
        )
        return json_response(self._folder_json(ctx, rec), 201)

    def _check_folder_parent(self, ctx: Ctx, parent: Record, notebook: bool) -> None:
        if parent.kind == "NOTEBOOK":
            raise validation(
                (
                    "parentFolderId",
                    parent.id,
                    "Notebooks and folders cannot be created inside notebooks.",
                )
            )
        if parent.kind != "FOLDER":
            raise ApiError(500, f"Folder {parent.id} could not be loaded", internal=50001)
        if self._is_deleted(parent) or not self._can_read(ctx.user, parent):
            raise unauthorised(
                f"Unauthorized attempt by {ctx.user.username} to create a folder in [{parent.id}]"
            )
        if parent.gallery and notebook:
            raise validation(
                ("parentFolderId", parent.id, "Notebooks cannot be created in the Gallery.")
            )
        if parent.role == "GALLERY":
            raise validation(
                (
                    "parentFolderId",
                    parent.id,
                    "You cannot create a top-level folder in the Gallery; create folder in one "
                    "of the sub-galleries (Images, Documents etc.)",
                )
            )
        if parent.role in ("SHARED", "LABGROUPS", "COLLABGROUPS", "INDIVIDUAL"):
            raise illegal(f"Cannot create a folder in the system folder '{parent.name}'")
        if parent.owner != ctx.user.id and self._group_folder_of(parent) is None:
            raise unauthorised(
                f"Unauthorized attempt by {ctx.user.username} to create a folder in [{parent.id}]"
            )

    def _delete_folder(self, ctx: Ctx) -> Response:
        ident = int_arg(ctx.args[0])
        rec = self._rec(ident)
        if rec is None or rec.kind not in ("FOLDER", "NOTEBOOK"):
            raise not_found("Folder", ident)
        if rec.system or rec.role == "HOME":
            raise illegal("Cannot delete user home folder or a system folder")
        if self._is_deleted(rec) or rec.owner != ctx.user.id:
            raise unauthorised(
                f"Unauthorized attempt by {ctx.user.username} to delete folder [{ident}]"
            )
        self._soft_delete(rec)
        return Response(status_code=204)

    def _move(self, ctx: Ctx) -> Response:
        body = ctx.json()
        if not isinstance(body, dict):
            raise ApiError(400, "JSON parse error: expected an object", internal=40009)
        problems = [
            (k, body.get(k), "must not be null")
            for k in ("docId", "sourceFolderId", "targetFolderId")
            if not isinstance(body.get(k), int)
        ]
        if problems:
            raise validation(*problems, object_name="moveRequest")
        item = self._rec(body["docId"])
        source = self._rec(body["sourceFolderId"])
        target = self._rec(body["targetFolderId"])
        if item is None or source is None or target is None:
            raise illegal("Move failed: item, source or target folder does not exist")
        if self._is_deleted(item) or item.owner != ctx.user.id:
            raise unauthorised(f"Unauthorized attempt by {ctx.user.username} to move [{item.id}]")
        if item.id not in source.children and item.parent is not None:
            # WorkspaceServiceImpl.getMoveSourceFolder: a wrong source id is replaced by the
            # item's own parent, not refused
            actual = self._rec(item.parent)
            source = actual if actual is not None else source
        self._check_move(ctx, item, source, target)
        source.children.remove(item.id)
        target.children.append(item.id)
        item.parent = target.id
        item.modified = self._now()
        return Response(status_code=204)

    def _check_move(self, ctx: Ctx, item: Record, source: Record, target: Record) -> None:
        if item.kind == "MEDIA" or item.gallery:
            raise illegal("Move failed: Gallery items cannot be moved with this method")
        # WorkspaceServiceImpl.validateMove: IllegalArgumentException → 422
        if source.id == target.id:
            raise illegal(f"Source and target folder are the same. Id: {source.id}")
        if target.id == item.id:
            raise illegal(f"Attempt to move record with ID: {item.id} to itself")
        if item.id in target.children:
            raise illegal(f"Record with ID: {item.id} already in target folder")
        if (
            target.kind not in ("FOLDER", "NOTEBOOK")
            or target.gallery
            or target.role
            in (
                "SHARED",
                "LABGROUPS",
                "COLLABGROUPS",
                "INDIVIDUAL",
            )
        ):
            raise illegal(f"Move failed: [{target.id}] is not a valid target folder")
        if self._is_deleted(target) or not (
            target.owner == ctx.user.id or self._group_folder_of(target) is not None
        ):
            raise unauthorised(
                f"Unauthorized attempt by {ctx.user.username} to add an item to a folder"
            )
        # the model's move (BaseRecord.doMove / Folder.addChild) refuses these; the controller
        # turns the failed result into RuntimeException("document.move.errors.failed") → 500
        if any(a.id == item.id for a in self._ancestors(target)) or (
            target.kind == "NOTEBOOK" and item.kind != "DOCUMENT"
        ):
            raise ApiError(500, "Error performing move. ", internal=50001, errors=[""])
