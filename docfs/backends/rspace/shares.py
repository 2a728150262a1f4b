"""RSpace groups and shares: what ``docfs share`` lists, makes and removes."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

from docfs import errors
from docfs.backends.base import Entry
from docfs.backends.rspace.common import DOCUMENT, NOTEBOOK, PAGE, _json, _num
from docfs.backends.rspace.entries import RSpaceEntries
from docfs.backends.rspace.records import Group, ShareInfo, ShareResult


class RSpaceSharing(RSpaceEntries):
    """Groups and shares of documents and notebooks (``/groups``, ``/share``)."""

    async def groups(self) -> list[Group]:
        """The groups the user belongs to (``GET /groups``, a bare array)."""
        data = await self._get("/groups", endpoint="groups.list")
        return [
            Group(
                id=int(g["id"]),
                name=str(g.get("name") or ""),
                unique_name=str(g.get("uniqueName") or ""),
                type=str(g.get("type") or ""),
                shared_folder_id=g.get("sharedFolderId"),
                members=tuple(
                    (int(m["id"]), str(m.get("username") or ""), str(m.get("role") or ""))
                    for m in g.get("members") or []
                ),
            )
            for g in data
        ]

    @staticmethod
    def pick_group(groups: Sequence[Group], spec: str) -> Group:
        """The one group ``spec`` names: display name, unique name, ``GP`` id or number."""
        ident = spec[2:] if spec.upper().startswith("GP") and spec[2:].isdigit() else spec
        matches = [
            g
            for g in groups
            if (ident.isdigit() and g.id == int(ident)) or spec in (g.name, g.unique_name)
        ]
        if len(matches) != 1:
            found = "no" if not matches else "several"
            raise errors.InvalidArgument(f"{found} groups match {spec!r}")
        return matches[0]

    @staticmethod
    def _shareable(entry: Entry) -> int:
        if entry.extra.get("type") not in (DOCUMENT, NOTEBOOK):
            raise errors.NotSupported("RSpace shares documents and notebooks only")
        return _num(entry)

    async def share(
        self,
        entry: Entry,
        *,
        groups: Sequence[str] = (),
        users: Sequence[str] = (),
        permission: str = "read",
        folder: Entry | None = None,
    ) -> ShareResult:
        """Share a document or notebook with groups (name or id) and users (username)."""
        item = self._shareable(entry)
        perm = permission.upper()
        if perm not in ("READ", "EDIT"):
            raise errors.InvalidArgument("permission is read or edit")
        if not groups and not users:
            raise errors.InvalidArgument("share with at least one group or user")
        known = await self.groups()
        group_specs = []
        for spec in groups:
            group = self.pick_group(known, spec)
            body: dict[str, Any] = {"id": group.id, "permission": perm}
            if folder is not None:
                body["sharedFolderId"] = _num(folder)
            group_specs.append(body)
        user_specs = []
        for username in users:
            ids = {uid for g in known for uid, name, _ in g.members if name == username}
            if len(ids) != 1:
                raise errors.InvalidArgument(f"{username!r} is not a member of your groups")
            user_specs.append({"id": ids.pop(), "permission": perm})
        try:
            response = await self._send_json(
                "POST",
                "/share",
                {"itemsToShare": [item], "groups": group_specs, "users": user_specs},
                endpoint="share.create",
                status_map={401: errors.PermissionDenied, 422: errors.InvalidArgument},
            )
        except errors.PermissionDenied:
            # the server answers 401 when not one of the shares could be made
            raise errors.PermissionDenied(
                f"RSpace shared {entry.name!r} with none of them: already shared with them, "
                "or not yours to share"
            ) from None
        data = _json(response)
        # the server says failedShares; older documentation says failedShareIds
        failed = data.get("failedShares", data.get("failedShareIds")) or []
        return ShareResult(
            shares=tuple(ShareInfo.from_json(s) for s in data.get("shareInfos") or []),
            failed=tuple(int(x) for x in failed),
        )

    async def _item_shares(self, item: int) -> list[ShareInfo]:
        return [s async for s in self._share_pages({"sharedItemIds": str(item)})]

    async def _share_pages(self, params: Mapping[str, str]) -> AsyncIterator[ShareInfo]:
        page = 0
        while True:
            data = await self._get(
                "/share",
                endpoint="share.list",
                params={**params, "pageSize": PAGE, "pageNumber": page, "orderBy": "name asc"},
            )
            shares = data.get("shares") or []
            for s in shares:
                yield ShareInfo.from_json(s)
            page += 1
            # the listing's links point at /forms (a server bug): count pages ourselves
            if not shares or page * PAGE >= int(data.get("totalHits", 0)):
                return

    async def shares(self, entry: Entry | None = None) -> AsyncIterator[ShareInfo]:
        """The user's shares, all or those of one document or notebook (paged)."""
        params = {"sharedItemIds": str(self._shareable(entry))} if entry is not None else {}
        async for share in self._share_pages(params):
            yield share

    async def unshare(
        self, entry: Entry, *, groups: Sequence[str] = (), users: Sequence[str] = ()
    ) -> list[ShareInfo]:
        """Remove the shares of ``entry`` (only those with these groups/users if given).

        Returns the shares removed: ``DELETE /share/{id}`` takes share ids, found by listing.
        """
        item = self._shareable(entry)
        targets: set[tuple[str, int]] = set()
        if groups or users:
            known = await self.groups()
            targets |= {("GROUP", self.pick_group(known, g).id) for g in groups}
            for username in users:
                ids = {uid for g in known for uid, name, _ in g.members if name == username}
                targets |= {("USER", uid) for uid in ids}
        removed: list[ShareInfo] = []
        for share in await self._item_shares(item):
            if targets and (share.target_type, share.target_id) not in targets:
                continue
            await self._call(
                "DELETE",
                f"/share/{share.id}",
                endpoint="share.delete",
                status_map={404: errors.NotFound},
            )
            removed.append(share)
        return removed
