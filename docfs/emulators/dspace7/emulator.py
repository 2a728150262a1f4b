"""``DSpace7Emulator``: the settings of one emulated server, put together from the model, the
route groups and the backdoor (see the package docstring for what it covers).

The parts are mixins over one typed shared-state base (``model.State``), layered so that each
uses only what is below it: ``Model`` → ``Rendering`` → ``Handlers`` → the route groups
(``Auth``, ``ObjectRoutes``, ``BitstreamRoutes``, ``ContentRoutes``, ``DiscoveryRoutes``,
``SubmissionRoutes``) → ``Routes`` (table and dispatcher); ``Backdoor`` sits on ``Model``. Mixins,
not collaborator objects, because every handler works on the same objects under the same lock
and with settings tests change on the emulator itself (``index_delay``, ``lazy_csrf``…): split
into collaborators, each would need a back-reference to the emulator for those, and the move
would have had to rewrite every method instead of moving it unchanged.
"""

from __future__ import annotations

import random
import threading
from collections import deque
from typing import Any

from docfs.emulators.base import Emulator, ServerProfile, ServerSetting
from docfs.emulators.dspace7.backdoor import Backdoor
from docfs.emulators.dspace7.model import DSO, EPerson, WorkflowItem, WorkspaceItem
from docfs.emulators.dspace7.routes import Routes


class DSpace7Emulator(Backdoor, Routes, Emulator):
    """In-memory DSpace 7+ server; see the package docstring for what it covers."""

    name = "dspace7"
    versions = ("7.6", "8.0", "9.1", "10.0")
    server_settings = {
        "replace-bitstream.enabled": ServerSetting(
            "false",
            "10.0: PUT /core/bitstreams/{uuid}/content replaces a file (versioning.cfg); "
            "off, it answers 400",
            ("true", "false"),
        ),
        "webui.submit.upload.required": ServerSetting(
            "true",
            "depositing a workspace item needs a file: else 422 error.validation.filerequired "
            "(UploadConfiguration.isRequired)",
            ("true", "false"),
        ),
        "citation-page.enable_globally": ServerSetting(
            "false",
            "PDF downloads of non-administrators get a cover page: Content-Length and ETag "
            "differ from sizeBytes and the MD5 (CitationDocumentServiceImpl)",
            ("true", "false"),
        ),
    }
    roles = ("admin", "submitter")

    @classmethod
    def options_for(cls, profile: ServerProfile) -> dict[str, Any]:
        return {
            "version": profile.version,
            "replace_bitstream_enabled": profile.flag("replace-bitstream.enabled"),
            "upload_required": profile.flag("webui.submit.upload.required"),
            "cover_pages": profile.flag("citation-page.enable_globally"),
        }

    def __init__(
        self,
        *,
        latency_ms: float = 0.0,
        seed: int | None = None,
        version: str = "9.1",
        user: str | None = None,
        password: str | None = None,
        jwt_lifetime: float = 1800.0,
        short_lived_lifetime: float = 2.0,
        lazy_csrf: bool = False,
        replace_bitstream_enabled: bool = False,
        upload_required: bool = True,
        cover_pages: bool = False,
        max_upload_bytes: int = 512 * 1024 * 1024,
        index_delay: float = 0.0,
        rate_limit: tuple[int, float] | None = None,
        rate_limit_retry_after: float = 1.0,
        patch_add_takes_all: bool = False,
    ) -> None:
        """Create an empty repository.

        ``version`` selects 7.6 / 8.x / 9.x / 10.0 behaviour; ``user``/``password`` create a
        site administrator; ``jwt_lifetime`` and ``short_lived_lifetime`` are in seconds;
        ``lazy_csrf`` withholds CSRF tokens from GET responses (so a client has to use the
        403 of its first POST); ``index_delay`` delays Discovery visibility of new items;
        ``rate_limit=(n, seconds)`` emulates a front proxy that answers 429 beyond n requests
        per window; ``patch_add_takes_all`` is a release with DSpace#12428/#12467 (2026), whose
        metadata PATCH ``add`` takes every value of an array (released lines take the first).
        """
        self._state = threading.RLock()
        self._ids = random.Random(seed)
        self.version = version
        self.major = int(version.split(".")[0])
        self.jwt_lifetime = jwt_lifetime
        self.short_lived_lifetime = short_lived_lifetime
        self.lazy_csrf = lazy_csrf
        self.replace_bitstream_enabled = replace_bitstream_enabled
        self.patch_add_takes_all = patch_add_takes_all
        #: webui.submit.upload.required (default true in UploadConfiguration.java)
        self.upload_required = upload_required
        #: citation-page.enable_globally: PDFs are served with a cover page to non-admins
        self.cover_pages = cover_pages
        self.max_upload_bytes = max_upload_bytes
        self.index_delay = index_delay
        self.rate_limit = rate_limit
        self.rate_limit_retry_after = rate_limit_retry_after
        self._secret = self._ids.randbytes(32)
        self._epersons: dict[str, EPerson] = {}
        self._objects: dict[str, DSO] = {}
        self._handles: dict[str, str] = {}
        self._handle_counter = 0
        #: registered DOIs (lower case, without ``doi:``) → item uuid; empty, like a stock
        #: server without the DOI provider, until ``register_doi``
        self._dois: dict[str, str] = {}
        self._workspace: dict[int, WorkspaceItem] = {}
        self._workflow: dict[int, WorkflowItem] = {}
        self._submission_counter = 0
        self._recent: deque[float] = deque()
        self._versioning_state()
        super().__init__(latency_ms=latency_ms, seed=seed)
        self._table = self._route_table()
        if user is not None and password is not None:
            self.add_user(user, password, admin=True)
