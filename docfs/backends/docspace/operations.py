"""DocSpace's asynchronous file operations: delete (to the Trash, or at once) and move.

Deletes and moves start an operation that runs on the server; ``fileops`` reports it, and every
answer that lists operations dequeues all the finished ones of the user, so they are polled
under one lock and each finished record is kept for whoever waits for it.
"""

from collections.abc import Awaitable, Callable
from typing import Any

import trio

from docfs import errors
from docfs.backends.base import Entry, Kind
from docfs.backends.docspace.common import API, OP_DELETE, SAVE_ATTEMPTS, ST_FAILED, log, op_error
from docfs.backends.docspace.reading import DocSpaceReader


class DocSpaceOperations(DocSpaceReader):
    """Deletes and moves through ``fileops``, polled to the end."""

    # ---- file operations (delete, move) ---------------------------------------------------

    async def _run_operation(
        self,
        start: Callable[[], Awaitable[Any]],
        verify: Callable[[], Awaitable[bool]],
        *,
        answer_may_be_another: bool = False,
    ) -> None:
        """Start an asynchronous file operation and poll ``fileops`` until it is done
        (docs/protocols/docspace.md, "File operations").

        Every answer that lists operations dequeues all finished ones of the user, so the
        requests are serialised and every finished record is kept for whoever waits for it.
        If ours vanished unreported, ``verify`` decides from the entry's state.

        Starting one is not idempotent (a second delete of a file in Trash erases it): after
        a lost answer or a 5xx, the user's running operations are waited for, ``verify``
        looks, and only an operation that did not happen is started again.

        ``answer_may_be_another``: the answer is the *first* of the user's operations, not
        necessarily this one (``VirtualRoomsController.DeleteRoom`` answers
        ``GetOperationResults().FirstOrDefault()``). Ours is then the one that was not in
        the listing taken just before the start.
        """
        for attempt in range(SAVE_ATTEMPTS):
            known: set[str] = set()
            try:
                async with self._ops_lock:
                    if answer_may_be_another:
                        listed = await self._call("GET", f"{API}/files/fileops", endpoint="fileops")
                        self._record_operations(listed or [])
                        known = {str(op["id"]) for op in listed or [] if isinstance(op, dict)}
                        known |= self._running_ops | set(self._finished_ops)
                    answer = await start()
                    ops = answer if isinstance(answer, list) else [answer]
                    self._record_operations(ops)
            except errors.RemoteUnavailable as exc:
                if attempt + 1 >= SAVE_ATTEMPTS:
                    raise

                async def done() -> bool:
                    # it may have been started: let the user's operations finish, then look
                    await self._settle()
                    return await verify()

                if await self._look(exc, done):
                    log.info("DocSpace: a file operation had been started; its answer was lost")
                    return
                log.info("DocSpace: a file operation did not start; starting it again")
                continue
            break
        ids = [str(op["id"]) for op in ops if isinstance(op, dict) and "id" in op]
        if not ids and not answer_may_be_another:
            raise errors.ProtocolError("DocSpace: no file operation in the answer")
        op_id: str | None = ids[0] if ids else None
        if answer_may_be_another and op_id in known:
            op_id = None  # somebody else's: ours is found by polling
        deadline = trio.current_time() + self.operation_timeout
        delay = self.poll_interval
        while True:
            if op_id is not None:
                record = self._finished_ops.pop(op_id, None)
                if record is not None:
                    self._check_operation(record)
                    if answer_may_be_another and not await verify():
                        raise errors.RemoteUnavailable("DocSpace: the operation left it in place")
                    return
                if op_id not in self._running_ops:
                    if await verify():
                        return
                    raise errors.RemoteUnavailable(
                        "DocSpace: a file operation ended without a result"
                    )
            elif await verify():
                return
            if trio.current_time() > deadline:
                raise errors.RemoteUnavailable("DocSpace: a file operation did not finish")
            await trio.sleep(delay)
            delay = min(1.0, delay * 1.5)
            async with self._ops_lock:
                polled = await self._call("GET", f"{API}/files/fileops", endpoint="fileops")
                if op_id is not None:
                    self._running_ops.discard(op_id)
                self._record_operations(polled or [])
                if op_id is None:
                    # the first operation we had not seen before, of the same kind, is ours
                    fresh = [
                        str(op["id"])
                        for op in polled or []
                        if isinstance(op, dict)
                        and str(op.get("id")) not in known
                        and op.get("Operation") == OP_DELETE
                    ]
                    if fresh:
                        op_id = fresh[0]

    async def _settle(self) -> None:
        """Until none of the user's operations runs (or ``operation_timeout``)."""
        deadline = trio.current_time() + self.operation_timeout
        delay = self.poll_interval
        while trio.current_time() < deadline:
            async with self._ops_lock:
                polled = await self._call("GET", f"{API}/files/fileops", endpoint="fileops")
                self._record_operations(polled or [])
            running = [
                op
                for op in polled or []
                if isinstance(op, dict)
                and not op.get("finished")
                and int(op.get("status") or 0) <= 1
            ]
            if not running:
                return
            await trio.sleep(delay)
            delay = min(1.0, delay * 1.5)

    def _record_operations(self, ops: list[Any]) -> None:
        for op in ops:
            if not isinstance(op, dict) or "id" not in op:
                continue
            op_id = str(op["id"])
            if op.get("finished") or op.get("error") or int(op.get("status") or 0) > 1:
                self._running_ops.discard(op_id)
                self._finished_ops[op_id] = op
            else:
                self._running_ops.add(op_id)

    @staticmethod
    def _check_operation(record: dict[str, Any]) -> None:
        error = str(record.get("error") or "")
        if error or record.get("status") == ST_FAILED:
            raise op_error(error or "the file operation failed")

    async def _gone(self, entry: Entry) -> bool:
        """True when ``entry`` no longer exists where it was (deleted or in Trash)."""
        try:
            await self.stat(entry)
        except errors.NotFound:
            return True
        return False

    async def remove(self, entry: Entry) -> None:
        kind = entry.extra.get("kind")
        if kind in ("root", "rooms", "section"):
            raise errors.NotSupported(f"DocSpace: {entry.name!r} cannot be removed")
        item = self._raw_id(entry)
        body = {"deleteAfter": False, "immediately": self.permanent_delete}
        if entry.kind is Kind.DIR:
            await self._require_empty(entry)
            folder_kind = "rooms" if kind == "room" else "folder"
            path = f"{API}/files/{folder_kind}/{item}"
        else:
            path = f"{API}/files/file/{item}"

        async def start() -> Any:
            # not idempotent: a blind resend after a lost answer would empty it from Trash
            return await self._call(
                "DELETE",
                path,
                endpoint="delete",
                json=body,
                params={"ReturnSingleOperation": "true"},
                idempotent=False,
            )

        # a room is always deleted at once, never moved to the Trash, and the answer is the
        # user's first operation, maybe not this one (VirtualRoomsController.DeleteRoom)
        await self._run_operation(
            start, lambda: self._gone(entry), answer_may_be_another=kind == "room"
        )

    async def _require_empty(self, directory: Entry) -> None:
        page = await self._call(
            "GET",
            f"{API}/files/{self._raw_id(directory)}",
            endpoint="list",
            params={"count": 1, "startIndex": 0},
        )
        if isinstance(page, dict) and int(page.get("total") or 0) > 0:
            raise errors.NotEmpty(f"DocSpace: {directory.name!r} is not empty")

    async def _move(self, entry: Entry, new_parent: Entry) -> Entry:
        if entry.extra.get("kind") == "room" or new_parent.extra.get("kind") in ("root", "rooms"):
            raise errors.CrossDevice("DocSpace: rooms and the top level cannot take moves")
        dest = self._raw_id(new_parent)
        key = "fileIds" if entry.kind is Kind.FILE else "folderIds"
        body = {
            key: [int(self._raw_id(entry))],
            "destFolderId": int(dest),
            # Duplicate never merges folders and never drops a clashing file (docs/protocols/
            # docspace.md, "File operations")
            "conflictResolveType": "Duplicate",
            "deleteAfter": False,
            "returnSingleOperation": True,
        }

        async def start() -> Any:
            return await self._call(
                "PUT", f"{API}/files/fileops/move", endpoint="fileops", json=body, idempotent=False
            )

        async def arrived() -> bool:
            return (await self.stat(entry)).extra.get("parent") == new_parent.id

        await self._run_operation(start, arrived)
        moved = await self.stat(entry)
        if moved.extra.get("parent") != new_parent.id:
            raise errors.Conflict(f"DocSpace: {entry.name!r} was not moved")
        return moved
