"""Handlers for delete, move, copy, empty trash and the ``fileops`` status.

See ``docs/protocols/docspace.md`` §8.
"""

from __future__ import annotations

from typing import Any

from docfs.emulators.docspace.model import (
    CONFLICT_NAMES,
    OP_COPY,
    OP_DELETE,
    OP_MOVE,
    Operation,
    User,
    ValidationFailed,
    access_denied,
)
from docfs.emulators.docspace.routes.base import Dispatch
from docfs.emulators.docspace.state import Ctx
from docfs.emulators.docspace.wire import as_bool, as_int, enum_value, lookup


class OperationRoutes(Dispatch):
    """Deletes and the asynchronous ``fileops``."""

    async def _h_delete_file(self, ctx: Ctx) -> Any:
        body = await self._body(ctx)
        user = ctx.need_user()
        with self._state:
            file = self._file_ref(ctx)
            return self._queue_delete(ctx, user, body, [file.id], [])

    async def _h_delete_folder(self, ctx: Ctx) -> Any:
        body = await self._body(ctx)
        user = ctx.need_user()
        with self._state:
            folder = self._folder_ref(ctx, ctx.request.path_params["folderId"])
            self._require_read(user, folder.id)
            if folder.parent_id is None:
                raise access_denied()
            return self._queue_delete(ctx, user, body, [], [folder.id])

    def _queue_delete(
        self, ctx: Ctx, user: User, body: dict[str, Any], files: list[int], folders: list[int]
    ) -> Any:
        immediately = as_bool(lookup(body, "immediately"))

        def apply() -> None:
            for folder_id in folders:
                self._delete_folder(user, folder_id, immediately)
            for file_id in files:
                self._delete_file(user, file_id, immediately)

        op = self._start_operation(
            user, OP_DELETE, not as_bool(lookup(body, "deleteAfter")), apply, files, folders
        )
        return self._operations_answer(ctx, user, body, op)

    def _operations_answer(self, ctx: Ctx, user: User, body: dict[str, Any], op: Operation) -> Any:
        """The operation list, or only ``op`` with ``returnSingleOperation`` (query or body).

        Either way every finished task of the user is dequeued (§8.4).
        """
        results = self._operation_results(user)
        single = ctx.request.query_params.get("ReturnSingleOperation") or lookup(
            body, "returnSingleOperation"
        )
        if as_bool(single):
            return next((o for o in results if o["id"] == op.id), self._op_dto(op))
        return results

    @staticmethod
    def _ids(body: dict[str, Any], name: str) -> list[int]:
        values = lookup(body, name) or []
        if not isinstance(values, list):
            raise ValidationFailed({name: [f"The JSON value could not be converted for {name}."]})
        return [as_int(v, name) for v in values]

    async def _h_ops_delete(self, ctx: Ctx) -> Any:
        body = await self._body(ctx)
        user = ctx.need_user()
        with self._state:
            return self._queue_delete(
                ctx, user, body, self._ids(body, "fileIds"), self._ids(body, "folderIds")
            )

    async def _h_ops_move(self, ctx: Ctx) -> Any:
        return await self._queue_transfer(ctx, copy=False)

    async def _h_ops_copy(self, ctx: Ctx) -> Any:
        return await self._queue_transfer(ctx, copy=True)

    async def _queue_transfer(self, ctx: Ctx, copy: bool) -> Any:
        body = await self._body(ctx)
        user = ctx.need_user()
        files, folders = self._ids(body, "fileIds"), self._ids(body, "folderIds")
        if lookup(body, "destFolderId") is None:
            raise ValidationFailed({"destFolderId": ["The destFolderId field is required."]})
        dest = as_int(lookup(body, "destFolderId"), "destFolderId")
        resolve = enum_value(
            lookup(body, "conflictResolveType", 0), CONFLICT_NAMES, "conflictResolveType"
        )
        with self._state:
            op = self._start_operation(
                user,
                OP_COPY if copy else OP_MOVE,
                not as_bool(lookup(body, "deleteAfter")),
                lambda: self._transfer(user, files, folders, dest, resolve, copy),
                files,
                folders,
            )
            return self._operations_answer(ctx, user, body, op)

    async def _h_ops_empty_trash(self, ctx: Ctx) -> Any:
        user = ctx.need_user()
        with self._state:
            trash = user.trash_id
            files = [f.id for f in self._files_in(trash, True)]
            folders = [f.id for f in self._subfolders(trash)]
            return self._queue_delete(ctx, user, {"immediately": True}, files, folders)

    async def _h_operations(self, ctx: Ctx) -> Any:
        user = ctx.need_user()
        with self._state:
            return self._operation_results(user, ctx.request.query_params.get("id"))
