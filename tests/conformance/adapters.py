"""How the conformance suite drives each repository's emulator.

The suite is written once against ``Adapter``; each repository type joins with one adapter
class and one line in ``ADAPTERS``. An adapter seeds the same small tree in its emulator —
``<container>/<dir>/{hello.txt, data.bin}`` — and says where, and which request paths are
content downloads and listings, so request counts can be asserted from the emulator's log.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from docfs.backends._http import HttpClient, Limits
from docfs.backends.base import Backend, Credentials
from docfs.backends.docspace import DocSpaceBackend
from docfs.backends.dspace7 import DSpace7Backend
from docfs.backends.opus2 import ALTERNATIVE_PROFILE, Opus2Backend
from docfs.backends.rspace import RSpaceBackend
from docfs.emulators.base import Emulator, EmulatorServer, ServerProfile
from docfs.emulators.docspace import DocSpaceEmulator
from docfs.emulators.dspace6 import DSpace6Emulator
from docfs.emulators.dspace7 import DSpace7Emulator
from docfs.emulators.opus2 import Opus2Emulator
from docfs.emulators.rspace import DEFAULT_API_KEY as RSPACE_KEY
from docfs.emulators.rspace import RSpaceEmulator
from tests.conftest import ADMIN, FAST_RETRY, dspace6_backend

HELLO = b"hello, repository\n"
DATA = os.urandom(700_000)


@dataclass
class Seeded:
    """Where the standard tree lives, as local path components from the mount root."""

    file_dir: tuple[str, ...]  # a directory holding files (files can be created here)
    dir_parent: tuple[str, ...]  # a directory where mkdir works
    change: Callable[[bytes], object]  # replace hello.txt's content behind the mount's back
    ids: dict[str, str] = field(default_factory=dict)


class Adapter:
    name: str
    #: the emulator class, for its releases and settings
    emulator_class: type[Emulator]
    #: which release and server settings the emulator behaves like (None: its defaults)
    profile: ServerProfile | None = None
    download_path: str  # regex of content download requests
    list_path: str  # regex of listing requests
    upload_path: str  # regex of the request that carries a new file's bytes
    #: backends with a change feed: what marks a feed request, and the listings it replaces
    changes_query: str = ""
    scope_list_path: str = ""
    #: backends with tree listings: the request that lists a whole scope's folders
    tree_list_path: str = ""

    def emulator(self) -> Emulator:
        raise NotImplementedError

    def profiled(self, **options: Any) -> Emulator:
        """The emulator class built with ``options`` and what ``profile`` asks for."""
        extra = self.emulator_class.options_for(self.profile) if self.profile else {}
        emulator = self.emulator_class(**{**options, **extra})
        if self.profile is not None:
            emulator.server_profile = self.profile
        return emulator

    def seed(self, emulator: Emulator) -> Seeded:
        raise NotImplementedError

    def backend(self, server: EmulatorServer) -> Backend:
        raise NotImplementedError

    def remote_url(self, server: EmulatorServer) -> str:
        """The URL a user gives ``docfs mount TYPE:URL``."""
        return server.url

    def credentials(self) -> Credentials:
        """What the mount test puts in DOCFS_USER / DOCFS_PASSWORD / DOCFS_TOKEN."""
        return Credentials(*ADMIN)

    def deny_writes(self, emulator: Emulator) -> None:
        """Make the next upload fail with a permission error."""
        emulator.plan_fault(method="POST", status=403)


class DSpace6Adapter(Adapter):
    name = "dspace6"
    download_path = r"/retrieve$"
    upload_path = r"/items/[^/]+/bitstreams$"
    list_path = r"^/rest/(hierarchy|communities/[^/]+|collections/[^/]+/items|items/[^/]+)$"

    emulator_class = DSpace6Emulator

    def emulator(self) -> Emulator:
        emulator = self.profiled()
        assert isinstance(emulator, DSpace6Emulator)
        emulator.add_user(*ADMIN, admin=True)
        return emulator

    def seed(self, emulator: Emulator) -> Seeded:
        assert isinstance(emulator, DSpace6Emulator)
        com = emulator.add_community("Lab")
        col = emulator.add_collection("Datasets", com)
        item = emulator.add_item(col, "Run 1")
        hello = emulator.add_bitstream(item, "hello.txt", HELLO)
        emulator.add_bitstream(item, "data.bin", DATA)
        return Seeded(
            file_dir=("Lab", "Datasets", "Run 1"),
            dir_parent=("Lab", "Datasets"),
            change=lambda data: emulator.set_bitstream_data(hello, data),
            ids={"item": item, "collection": col},
        )

    def remote_url(self, server: EmulatorServer) -> str:
        return f"{server.url}/rest"

    def backend(self, server: EmulatorServer) -> Backend:
        return dspace6_backend(server, Credentials(*ADMIN))


class Opus2Adapter(Adapter):
    name = "opus2"
    download_path = r"/(content|download)$"
    upload_path = r"/projects/[^/]+/documents$"
    changes_query = "afterDate"
    scope_list_path = r"^/projects/[^/]+/(folders|documents/folder/[^/]+)$"
    tree_list_path = r"^/projects/[^/]+/folders$"
    list_path = r"^/projects(/[^/]+/(folders|documents(/folder/[^/]+)?))?$"

    emulator_class = Opus2Emulator

    def emulator(self) -> Emulator:
        return self.profiled(rate_limit=None)

    def seed(self, emulator: Emulator) -> Seeded:
        assert isinstance(emulator, Opus2Emulator)
        project = emulator.add_project("Lab")
        datasets = emulator.add_folder(project, "Datasets")
        run = emulator.add_folder(project, "Run 1", datasets)
        hello = emulator.add_document(project, "hello.txt", HELLO, folder_id=run)
        emulator.add_document(project, "data.bin", DATA, folder_id=run)
        self.token = emulator.default_token
        return Seeded(
            file_dir=("Lab", "Datasets", "Run 1"),
            dir_parent=("Lab", "Datasets"),
            change=lambda data: emulator.replace_document(hello, data),
            ids={"project": project},
        )

    def backend(self, server: EmulatorServer) -> Backend:
        http = HttpClient(server.url, limits=Limits(concurrency=8), retry=FAST_RETRY)
        return Opus2Backend(http, self.credentials())

    def credentials(self) -> Credentials:
        return Credentials(token=self.token)


class Opus2AlternativeAdapter(Opus2Adapter):
    """The same tenant under the alternative wire profile: proof that a profile adapts docfs."""

    name = "opus2-alt"
    download_path = r"/(content|download)$"
    list_path = r"^/api/v8/projects(/[^/]+/(folders|documents(/folder/[^/]+)?))?$"
    upload_path = r"^/api/v8/projects/[^/]+/documents$"
    scope_list_path = r"^/api/v8/projects/[^/]+/(folders|documents/folder/[^/]+)$"
    tree_list_path = r"^/api/v8/projects/[^/]+/folders$"

    def emulator(self) -> Emulator:
        return Opus2Emulator(rate_limit=None, profile=ALTERNATIVE_PROFILE)

    def backend(self, server: EmulatorServer) -> Backend:
        http = HttpClient(server.url, limits=Limits(concurrency=8), retry=FAST_RETRY)
        return Opus2Backend(http, self.credentials(), profile=ALTERNATIVE_PROFILE)


class DocSpaceAdapter(Adapter):
    name = "docspace"
    download_path = r"/filehandler\.ashx$"
    list_path = r"^/api/2\.0/files/(\d+|rooms|@root)$"
    upload_path = r"ChunkedUploader\.ashx$|^/api/2\.0/files/\d+/(upload|file)$"
    user = ("owner@docspace.example", "docspace-password-1")

    emulator_class = DocSpaceEmulator

    def emulator(self) -> Emulator:
        return self.profiled(user=self.user[0], password=self.user[1])

    def seed(self, emulator: Emulator) -> Seeded:
        assert isinstance(emulator, DocSpaceEmulator)
        owner = self.user[0]
        my = emulator.my_documents_id(owner)
        lab = emulator.add_folder(my, "Lab", owner=owner)
        datasets = emulator.add_folder(lab, "Datasets", owner=owner)
        run = emulator.add_folder(datasets, "Run 1", owner=owner)
        hello = emulator.add_file(run, "hello.txt", HELLO, owner=owner)
        emulator.add_file(run, "data.bin", DATA, owner=owner)
        return Seeded(
            file_dir=("My documents", "Lab", "Datasets", "Run 1"),
            dir_parent=("My documents", "Lab", "Datasets"),
            change=lambda data: emulator.add_version(hello, data),
        )

    def backend(self, server: EmulatorServer) -> Backend:
        http = HttpClient(server.url, limits=Limits(concurrency=8), retry=FAST_RETRY)
        return DocSpaceBackend(http, self.credentials())

    def credentials(self) -> Credentials:
        return Credentials(*self.user)


class DSpace7Adapter(Adapter):
    name = "dspace7"
    download_path = r"/content$"
    list_path = (
        r"/server/api/(core/communities/search/top|core/communities/[^/]+/"
        r"(subcommunities|collections)|discover/search/objects|core/items/[^/]+)$"
    )
    upload_path = r"/core/bundles/[^/]+/bitstreams$"

    emulator_class = DSpace7Emulator

    def emulator(self) -> Emulator:
        return self.profiled(user=ADMIN[0], password=ADMIN[1])

    def seed(self, emulator: Emulator) -> Seeded:
        assert isinstance(emulator, DSpace7Emulator)
        com = emulator.add_community("Lab")
        col = emulator.add_collection("Datasets", com)
        item = emulator.add_item(col, "Run 1")
        hello = emulator.add_bitstream(item, "hello.txt", HELLO)
        emulator.add_bitstream(item, "data.bin", DATA)
        return Seeded(
            file_dir=("Lab", "Datasets", "Run 1"),
            dir_parent=("Lab", "Datasets"),
            change=lambda data: emulator.set_content(hello, data),
            ids={"item": item},
        )

    def backend(self, server: EmulatorServer) -> Backend:
        http = HttpClient(server.url, limits=Limits(concurrency=8), retry=FAST_RETRY)
        return DSpace7Backend(http, Credentials(*ADMIN))


class RSpaceAdapter(Adapter):
    """Files live in a document's directory (Gallery files linked from its fields)."""

    name = "rspace"
    download_path = r"/files/\d+/file$"
    list_path = r"^/api/v1/(folders/tree(/\d+)?|files|documents/\d+)$"
    upload_path = r"^/api/v1/files$"

    emulator_class = RSpaceEmulator

    def emulator(self) -> Emulator:
        return self.profiled()  # throttling is off by default

    def seed(self, emulator: Emulator) -> Seeded:
        assert isinstance(emulator, RSpaceEmulator)
        lab = emulator.add_folder(emulator.home_id(), "Lab")
        datasets = emulator.add_folder(lab, "Datasets")
        run = emulator.add_document(datasets, "Run 1")
        hello = emulator.add_file(None, "hello.txt", HELLO)
        data = emulator.add_file(None, "data.bin", DATA)
        emulator.link_file(run, hello)
        emulator.link_file(run, data)
        return Seeded(
            file_dir=("Lab", "Datasets", "Run 1"),
            dir_parent=("Lab", "Datasets"),
            change=lambda new: emulator.replace_file_data(hello, new),
        )

    def backend(self, server: EmulatorServer) -> Backend:
        http = HttpClient(server.url, limits=Limits(concurrency=8), retry=FAST_RETRY)
        return RSpaceBackend(http, self.credentials())

    def credentials(self) -> Credentials:
        return Credentials(token=RSPACE_KEY)


def release(
    base: type[Adapter], version: str | None = None, settings: dict[str, str] | None = None
) -> Adapter:
    """``base`` against the emulator behaving like ``version`` with ``settings``: the same
    filesystem contract must hold on every release and configuration we emulate."""
    adapter = base()
    adapter.profile = base.emulator_class.make_profile(version, settings)
    words = [adapter.profile.version] if version else []
    words += [f"{k}={v}" for k, v in sorted((settings or {}).items())]
    adapter.name = f"{base.name}@{','.join(words)}"
    return adapter


def full_matrix() -> list[Adapter]:
    """Every release of every emulator with its default settings, and the newest release with
    each of its two-valued settings switched from the default (``DOCFS_MATRIX=full``)."""
    found: list[Adapter] = []
    for base in (DSpace6Adapter, DSpace7Adapter, Opus2Adapter, DocSpaceAdapter, RSpaceAdapter):
        cls = base.emulator_class
        found += [release(base, version) for version in cls.versions]
        for key, spec in sorted(cls.server_settings.items()):
            # the Opus 2 wire profile is the client's setting as much as the server's: it has
            # an adapter of its own
            if len(spec.choices) == 2 and key != "wire_profile":
                other = next(c for c in spec.choices if c != spec.default)
                found.append(release(base, None, {key: other}))
    return [*found, Opus2AlternativeAdapter()]


#: in CI: each emulator's default, the alternative Opus 2 profile, and the releases and settings
#: that change what docfs must do (the oldest DSpace 7, DSpace 10 with replacement on, RSpace
#: without the move API and with the upload quota); ``DOCFS_MATRIX=full`` runs every release
#: and setting (see README, "Tests")
ADAPTERS: list[Adapter] = (
    full_matrix()
    if os.environ.get("DOCFS_MATRIX") == "full"
    else [
        DSpace6Adapter(),
        DSpace7Adapter(),
        Opus2Adapter(),
        Opus2AlternativeAdapter(),
        DocSpaceAdapter(),
        RSpaceAdapter(),
        release(DSpace7Adapter, "7.6"),
        release(DSpace7Adapter, "10.0"),
        release(DSpace7Adapter, "10.0", {"replace-bitstream.enabled": "true"}),
        release(RSpaceAdapter, "2.15", {"api.fileuploadRateLimit.enabled": "true"}),
    ]
)
