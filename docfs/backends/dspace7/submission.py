"""New directories in DSpace 7+: communities, collections, bundles and items — an
administrator's archived at once, everybody else's a workspace item deposited later
(docs/protocols/dspace7.md, "New items of a non-administrator")."""

from __future__ import annotations

import dataclasses
import functools
import logging
import time
from contextlib import aclosing, suppress
from datetime import date

import trio

from docfs import errors
from docfs.backends.base import Entry
from docfs.backends.dspace7.core import Draft, DSpace7Core
from docfs.backends.dspace7.hal import JSON

log = logging.getLogger("docfs.dspace7")


def _workspace_title(ws: JSON) -> str:
    """A workspace item's title, from its traditionalpageone section."""
    section = (ws.get("sections") or {}).get("traditionalpageone") or {}
    values = section.get("dc.title") or []
    if values and isinstance(values[0], dict) and values[0].get("value"):
        return str(values[0]["value"])
    return "(untitled)"


class Submissions(DSpace7Core):
    """mkdir, and the drafts of non-administrators until they are deposited."""

    async def mkdir(self, parent: Entry, name: str) -> Entry:
        kind = self._type(parent)
        metadata = {"dc.title": [{"value": name}]}
        if kind == "root":
            obj = await self._json(
                "POST",
                "core/communities",
                endpoint="communities",
                json={"name": name, "metadata": metadata},
                status_map={422: errors.NotFound},
            )
            return self._dir(obj, "community", "")
        if kind == "community":
            obj = await self._json(
                "POST",
                "core/collections",
                endpoint="collections",
                params={"parent": self._uuid(parent)},
                json={"name": name, "metadata": metadata},
                status_map={422: errors.NotFound},
            )
            return self._dir(obj, "collection", self._uuid(parent))
        if kind == "collection":
            return await self._create_item(self._uuid(parent), name)
        if kind == "item" and self.other_bundles:
            obj = await self._json(
                "POST",
                f"core/items/{self._uuid(parent)}/bundles",
                endpoint="items/bundles",
                json={"name": name, "metadata": {}},
                status_map={400: errors.AlreadyExists},
            )
            entry = self._dir(obj, "bundle", self._uuid(parent), item=self._uuid(parent))
            return dataclasses.replace(entry, mtime=parent.mtime)
        raise errors.NotSupported(f"{parent.name}: no directories can be made here")

    async def _create_item(self, collection: str, name: str) -> Entry:
        """Admins create archived items directly; others go through a workspace item."""
        metadata = {
            "dc.title": [{"value": name}],
            # the default submission form also requires an issue date
            "dc.date.issued": [{"value": date.today().isoformat()}],
        }
        obj: JSON | None = None
        if self._admin is not False:
            try:
                obj = await self._json(
                    "POST",
                    "core/items",
                    endpoint="items",
                    params={"owningCollection": collection},
                    json={
                        "name": name,
                        "metadata": metadata,
                        "inArchive": True,
                        "discoverable": True,
                        "withdrawn": False,
                        "type": "item",
                    },
                    idempotent=False,
                    status_map={400: errors.NotFound},
                )
                self._admin = True
            except errors.PermissionDenied as exc:
                if exc.status != 403:
                    raise
                self._admin = False
        if obj is None:
            if not self._orphans_checked:
                # the first item of a non-administrator in this mount: first say which
                # submissions earlier mounts (or the web interface) left undeposited — asked
                # here, not at every mount's start, where it would cost every user requests
                self._orphans_checked = True
                await self._find_orphans()
            return await self._start_submission(collection, name, metadata)
        entry = self._dir(obj, "item", collection)
        if obj.get("inArchive"):
            self._pending.setdefault(collection, {})[entry.extra["uuid"]] = (
                time.monotonic(),
                entry,
            )
        return entry

    # ---- a non-administrator's new items: workspace item first, deposit later -----------------

    async def _start_submission(self, collection: str, name: str, metadata: JSON) -> Entry:
        """A workspace item with its title, date and license, shown as a directory at once.

        It is deposited later (``_deposit``): the default submission configuration requires a
        file (``webui.submit.upload.required``, true by default in UploadConfiguration.java;
        UploadValidator's ``error.validation.filerequired`` makes SubmissionService.
        createWorkflowItem answer 422), and once deposited the submitter may no longer add
        files (XmlWorkflowServiceImpl.start removes the submitter's policies on the item).
        """
        workspace = await self._new_workspace_item(collection)
        ws_id = workspace.get("id")
        url = ((workspace.get("_links") or {}).get("self") or {}).get("href")
        if ws_id is None or not url:
            raise errors.ProtocolError("workspace item without id or self link")
        self._made.add(int(ws_id))
        ops = [
            {"op": "add", "path": f"/sections/traditionalpageone/{key}", "value": values}
            for key, values in metadata.items()
        ]
        ops.append({"op": "add", "path": "/sections/license/granted", "value": True})
        try:
            # each op sets (a whole field's add "initializes or replaces" it in a submission:
            # ItemMetadataValueAddPatchOperation; the license add grants it): safe to repeat
            await self._json(
                "PATCH",
                f"submission/workspaceitems/{ws_id}",
                endpoint="submission",
                json=ops,
                idempotent=True,
            )
            item = (workspace.get("_embedded") or {}).get("item")
            item_uuid = (item or {}).get("uuid")
            if not item_uuid:
                item_link = ((workspace.get("_links") or {}).get("item") or {}).get("href")
                if not item_link:
                    raise errors.ProtocolError("workspace item without its item")
                item = self._decode(await self.http.request("GET", item_link, endpoint="items"))
                item_uuid = item.get("uuid")
            obj = await self._json("GET", f"core/items/{item_uuid}", endpoint="items")
        except errors.DocfsError:
            # do not leave a half-made submission in the user's workspace
            with suppress(errors.DocfsError):
                await self._delete(f"submission/workspaceitems/{ws_id}", "submission")
            raise
        entry = self._dir(obj, "item", collection)
        self._drafts[entry.extra["uuid"]] = Draft(
            int(ws_id), str(url), collection, entry, time.monotonic()
        )
        self._drafts_changed.set()
        log.info(
            "new item %s is a workspace item until it is deposited (%gs after the last change "
            "in it, on fsync of its directory, docfs sync or unmount)",
            name,
            self.deposit_after,
        )
        return entry

    async def _new_workspace_item(self, collection: str) -> JSON:
        """``POST /submission/workspaceitems``; after a lost answer, the submitter's workspace
        items are read (for as long as the POST may still land) and an empty one in this
        collection that this mount has not seen is taken as ours, rather than leaving it
        behind and making another (issue 18.3)."""
        for attempt in range(3):
            try:
                return await self._json(
                    "POST",
                    "submission/workspaceitems",
                    endpoint="submission",
                    params={"owningCollection": collection, "embed": "item"},
                    idempotent=False,
                    status_map={422: errors.NotFound},
                )
            except errors.RemoteUnavailable as exc:
                if attempt == 2:
                    raise
                look = functools.partial(self._unclaimed_workspace_item, collection)
                found = await self._until(look, exc, "new workspace item")
                if found is not None:
                    log.info("workspace item %s had been made; its answer was lost", found["id"])
                    return found
                log.info("the new workspace item did not arrive; asking again")
        raise AssertionError("unreachable")

    async def _unclaimed_workspace_item(self, collection: str) -> JSON | None:
        """An untitled workspace item of this user in ``collection`` that is neither one of
        this mount's nor one found at its start: one whose creation answer was lost."""
        person = self.session.person()
        if not person:
            return None
        seen = self._made | set(self._orphans)
        listing = self._pages(
            "submission/workspaceitems/search/findBySubmitter",
            "workspaceitems",
            endpoint="submission",
            params={"uuid": person, "embed": "collection"},
        )
        async with aclosing(listing):
            async for ws in listing:
                ws_id = ws.get("id")
                owner = ((ws.get("_embedded") or {}).get("collection") or {}).get("uuid")
                if (
                    isinstance(ws_id, int)
                    and ws_id not in seen
                    and owner == collection
                    and _workspace_title(ws) == "(untitled)"
                ):
                    self._made.add(ws_id)  # claimed: a concurrent look must not take it too
                    return await self._json(
                        "GET",
                        f"submission/workspaceitems/{ws_id}",
                        endpoint="submission",
                        params={"embed": "item"},
                    )
        return None

    async def run(self) -> None:
        """Deposit drafts that have been quiet for ``deposit_after`` seconds."""
        while True:
            now = time.monotonic()
            due = [
                d
                for d in self._drafts.values()
                if not d.busy and not d.problem and now - d.touched >= self.deposit_after
            ]
            for draft in due:
                await self._deposit(draft)
            waits = [
                d.touched + self.deposit_after - now
                for d in self._drafts.values()
                if not d.busy and not d.problem
            ]
            self._drafts_changed = trio.Event()
            with trio.move_on_after(max(0.05, min(waits)) if waits else 3600.0):
                await self._drafts_changed.wait()

    async def settle(self) -> None:
        """Deposit every draft now (fsync of a directory, ``docfs sync``, unmount)."""
        for draft in list(self._drafts.values()):
            while draft.busy:
                await trio.sleep(0.05)  # an upload into it is still running
            await self._deposit(draft)
        # a refusal was logged by _deposit (once per reason); held_back() lists what is left

    def held_back(self) -> list[str]:
        drafts = [
            f"{d.entry.name}: workspace item {d.ws_id}, not deposited yet"
            + (f" ({d.problem})" if d.problem else "")
            for d in self._drafts.values()
        ]
        return drafts + [line for ws, line in self._orphans.items() if ws not in self._made]

    async def _find_orphans(self) -> None:
        """Workspace items of this user that no draft of this mount accounts for — e.g. left
        by a mount that was killed before its deposit: one warning, and ``docfs status``."""
        try:
            person = self.session.person()
            if not person:
                status = await self._json("GET", "authn/status", endpoint="authn/status")
                person = ((status.get("_embedded") or {}).get("eperson") or {}).get("uuid")
            if not person:
                href = ((status.get("_links") or {}).get("eperson") or {}).get("href", "")
                person = str(href).rstrip("/").rpartition("/")[2]
            if not person:
                return
            found = [
                ws
                async for ws in self._pages(
                    "submission/workspaceitems/search/findBySubmitter",
                    "workspaceitems",
                    endpoint="submission",
                    params={"uuid": str(person)},
                )
            ]
        except errors.DocfsError as exc:
            log.debug("cannot list this user's workspace items: %s", exc)
            return
        self._orphans = {
            int(ws["id"]): f"{_workspace_title(ws)}: workspace item {ws['id']} left in your "
            "DSpace workspace, not deposited (deposit or delete it in the web interface)"
            for ws in found
            if isinstance(ws.get("id"), int) and ws["id"] not in self._made
        }
        if self._orphans:
            log.warning(
                "%d submissions in your DSpace workspace were never deposited (e.g. by a mount "
                "that was stopped before it could): %s",
                len(self._orphans),
                "; ".join(self._orphans.values()),
            )

    async def _deposit(self, draft: Draft) -> None:
        """``POST /workflow/workflowitems`` with the workspace item's URL; never raises.

        A deposit consumes the workspace item (it becomes a workflow item or is archived), so
        one sent twice is refused, never doubled; and a workspace item that is gone after an
        error means the deposit went through. After a lost answer it is looked for (for as
        long as the deposit may still land) and then sent again (issue 18.3)."""
        item = draft.entry.extra["uuid"]
        ws_path = f"submission/workspaceitems/{draft.ws_id}"

        async def consumed() -> bool | None:
            return True if await self._exists(ws_path, "submission") is False else None

        async with self._deposit_lock:
            if self._drafts.get(item) is not draft:
                return  # deposited or removed meanwhile
            for attempt in range(3):
                try:
                    deposit = await self.http.request(
                        "POST",
                        f"{self.api}/workflow/workflowitems",
                        endpoint="workflow",
                        body=f"{draft.url}\n".encode(),
                        headers={"Content-Type": "text/uri-list"},
                        idempotent=False,
                        status_map={422: errors.InvalidArgument},
                    )
                    break
                except errors.RemoteUnavailable as exc:
                    if await self._until(consumed, exc, draft.entry.name):
                        deposit = None
                        break
                    if attempt == 2:
                        # no answer is no refusal: tried again after the next quiet period
                        log.info(
                            "deposit of %s got no answer (%s); trying again later",
                            draft.entry.name,
                            exc,
                        )
                        draft.touched = time.monotonic()
                        return
                except errors.DocfsError as exc:
                    if await consumed():
                        deposit = None  # an earlier try landed late: this one was refused
                        break
                    problem = await self._refusal(draft, exc)
                    if problem != draft.told:
                        log.warning(
                            "cannot deposit the new item %s (it stays a workspace item, %d, "
                            "in your DSpace workspace): %s",
                            draft.entry.name,
                            draft.ws_id,
                            problem,
                        )
                    draft.problem = draft.told = problem
                    return
            del self._drafts[item]
        if deposit is None:
            # gone from the workspace, the answer lost: archived or in review, shown while
            # the index may lag (a stat drops it if we may not see it)
            log.info("new item %s had been deposited; its answer was lost", draft.entry.name)
        elif deposit.content:
            # a workflow item: the item waits for review, invisible until approved
            log.info("new item %s was deposited and waits in review", draft.entry.name)
            return
        else:
            log.info("new item %s was deposited", draft.entry.name)
        self._pending.setdefault(draft.collection, {})[item] = (time.monotonic(), draft.entry)

    async def _refusal(self, draft: Draft, exc: errors.DocfsError) -> str:
        """Why a deposit was refused, in words (the workspace item's ``errors`` say it)."""
        if exc.status != 422:
            return str(exc)
        with suppress(errors.DocfsError):
            ws = await self._json(
                "GET", f"submission/workspaceitems/{draft.ws_id}", endpoint="submission"
            )
            messages = [
                str(e.get("message")) for e in ws.get("errors") or [] if isinstance(e, dict)
            ]
            if "error.validation.filerequired" in messages:
                return "DSpace requires at least one file in it"
            if messages:
                return "DSpace refused it: " + ", ".join(messages)
        return "DSpace refused it (422)"
