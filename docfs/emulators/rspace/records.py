"""The records of the RSpace emulator's state: users, form fields, forms, records (folders,
notebooks, documents, Gallery files, snippets share one id sequence), groups and shares."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class User:
    id: int
    username: str
    email: str
    first_name: str
    last_name: str
    password: str
    api_key: str | None
    pi: bool = False
    enabled: bool = True
    api_enabled: bool = True
    home: int = 0
    folders: dict[str, int] = field(default_factory=dict)


@dataclass
class Field:
    id: int
    name: str
    type: str
    content: str
    modified: float
    column: int


@dataclass
class Form:
    id: int
    name: str
    fields: list[tuple[str, str]]
    version: int = 1


@dataclass
class Record:
    """One row of the shared record sequence: folder, notebook, document, media or snippet."""

    id: int
    kind: str  # FOLDER NOTEBOOK DOCUMENT MEDIA SNIPPET
    name: str
    owner: int
    parent: int | None
    created: float
    modified: float
    gallery: bool = False
    system: bool = False
    shared_folder: bool = False
    role: str = ""  # HOME GALLERY SECTION API_INBOX SHARED GROUP …
    section: str | None = None
    children: list[int] = field(default_factory=list)
    deleted: bool = False
    # documents
    form: int = 0
    fields: list[Field] = field(default_factory=list)
    tags: str | None = None
    version: int = 1
    signed: bool = False
    edit_locked: bool = False
    # media
    data: bytes = b""
    content_type: str = ""
    caption: str = ""
    blob_missing: bool = False
    file_locked: bool = False
    # snippets
    content: str = ""


@dataclass
class Group:
    id: int
    name: str
    unique_name: str
    type: str
    members: list[tuple[int, str]]
    folder: int
    snippet_folder: int


@dataclass
class Share:
    id: int
    item: int
    sharer: int
    target_type: str  # USER or GROUP
    target: int
    permission: str
    folder: int
