"""The list of repository types: name → backend class and emulator class.

Adding a repository is one line here plus its backend and emulator modules. Classes are named
as import strings so that mounting never imports the emulator stack (Starlette, uvicorn).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from docfs.backends.http_backend import HttpBackend
    from docfs.emulators.base import Emulator


@dataclass(frozen=True)
class RemoteType:
    name: str
    backend: str
    emulator: str
    #: path of the API below the server's root, as served by the emulator
    api_path: str
    description: str
    #: what a 404 to the first request most likely means (the user gave the wrong URL)
    wrong_url: str = ""


REMOTE_TYPES: dict[str, RemoteType] = {
    t.name: t
    for t in (
        RemoteType(
            "dspace6",
            "docfs.backends.dspace6:DSpace6Backend",
            "docfs.emulators.dspace6:DSpace6Emulator",
            "/rest",
            "DSpace 6.x legacy REST API",
            "is this the DSpace 6 REST URL? `docfs detect URL` can tell",
        ),
        RemoteType(
            "rspace",
            "docfs.backends.rspace:RSpaceBackend",
            "docfs.emulators.rspace:RSpaceEmulator",
            "",
            "RSpace ELN API v1",
            "is this the RSpace server's address (https://HOST, without /api/v1)?",
        ),
        RemoteType(
            "opus2",
            "docfs.backends.opus2:Opus2Backend",
            "docfs.emulators.opus2:Opus2Emulator",
            "",
            "Opus 2 Platform v8 inbound Documents API",
            "is this the Opus 2 tenant's address (https://TENANT, without /api)?",
        ),
        RemoteType(
            "docspace",
            "docfs.backends.docspace:DocSpaceBackend",
            "docfs.emulators.docspace:DocSpaceEmulator",
            "",
            "ONLYOFFICE DocSpace API 2.0",
            "is this the DocSpace portal's address (https://PORTAL, without /api/2.0)?",
        ),
        RemoteType(
            "dspace7",
            "docfs.backends.dspace7:DSpace7Backend",
            "docfs.emulators.dspace7:DSpace7Emulator",
            "/server/api",
            "DSpace 7 and later: Server REST API",
            "is this the DSpace 7+ server (https://HOST or …/server)? `docfs detect URL` can tell",
        ),
    )
}


def _load(spec: str) -> object:
    module, _, attr = spec.partition(":")
    return getattr(importlib.import_module(module), attr)


def remote_type(name: str) -> RemoteType:
    try:
        return REMOTE_TYPES[name]
    except KeyError:
        known = ", ".join(sorted(REMOTE_TYPES))
        raise KeyError(f"unknown repository type {name!r} (known: {known})") from None


def backend_class(name: str) -> type[HttpBackend]:
    cls = _load(remote_type(name).backend)
    return cls  # type: ignore[return-value]


def emulator_class(name: str) -> type[Emulator]:
    cls = _load(remote_type(name).emulator)
    return cls  # type: ignore[return-value]
