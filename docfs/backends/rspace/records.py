"""Plain records of RSpace answers: groups and shares (``docfs share``), Gallery media sizes."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Group:
    id: int
    name: str
    unique_name: str
    type: str
    shared_folder_id: int | None
    #: (user id, username, role)
    members: tuple[tuple[int, str, str], ...]


@dataclass(frozen=True)
class ShareInfo:
    id: int
    item_id: int
    item_name: str
    target_id: int
    target_type: str
    permission: str

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ShareInfo:
        return cls(
            id=int(data["id"]),
            item_id=int(data["sharedItemId"]),
            # the model says shareItemName; the spec's example says sharedItemName
            item_name=str(data.get("shareItemName") or data.get("sharedItemName") or ""),
            target_id=int(data["sharedTargetId"]),
            target_type=str(data["sharedTargetType"]),
            permission=str(data["permission"]),
        )


@dataclass(frozen=True)
class ShareResult:
    shares: tuple[ShareInfo, ...]
    #: ids of items that could not be shared
    failed: tuple[int, ...]


@dataclass
class _MediaInfo:
    size: int
    version: int
    caption: str
    #: server time (whole seconds) when this was read
    fetched: float
    #: the tree's ``lastModified`` this was checked against; another value makes it stale
    modified: float | None = None

    def stale(self, modified: float) -> bool:
        if self.modified is not None:
            return self.modified != modified
        return self.fetched <= modified


@dataclass
class _FilesCursor:
    """How far one directory listing has read the ``/files`` pages."""

    page: int = 0
    done: bool = False
