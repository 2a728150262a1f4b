"""``Opus2Emulator``: one tenant served in one wire profile, put together from the model, the
route groups and the backdoor (see the package docstring for what it covers).

The parts are mixins over one typed shared-state base (``model.State``), layered so that each
uses only what is below it: ``Model`` → ``Rendering`` → ``Backdoor`` (the routes create users,
tokens and projects through the backdoor's methods, as the original class did) → ``Handlers`` →
the route groups (``PeopleRoutes``, ``ProjectRoutes``, ``FolderRoutes``, ``DocumentRoutes``) →
``Routes``. Mixins rather than collaborator objects because every handler works on the same
objects under the same lock and with settings tests change on the emulator itself (the clock,
rate limit, profile): collaborators would each need a back-reference to the emulator, and the
move would have had to rewrite the methods instead of moving them unchanged.
"""

from __future__ import annotations

import random
import threading
from collections import deque
from typing import Any

from starlette.exceptions import HTTPException

from docfs.emulators.base import Emulator, ServerProfile, ServerSetting, UnknownServerOption
from docfs.emulators.opus2.model import Document, Folder, Project, Team, Token, User
from docfs.emulators.opus2.routes import Routes
from docfs.emulators.opus2.wire import ALTERNATIVE_PROFILE, DEFAULT_PROFILE, Opus2Profile


class Opus2Emulator(Routes, Emulator):
    """A tenant of the Opus 2 Platform with its inbound Documents API."""

    name = "opus2"
    #: the vendor publishes no Swagger: what the article leaves open is the wire profile,
    #: selectable here (``docfs emulate opus2 --setting wire_profile=alternative``)
    server_settings = {
        "wire_profile": ServerSetting(
            "default",
            "the default wire profile, or the alternative one of the tests "
            "(prefix /api/v8, bearer auth, offset paging, …; docs/protocols/opus2.md)",
            ("default", "alternative"),
        ),
        "folder_not_empty_status": ServerSetting(
            "409", "status of DELETE folders/{f}/ on a folder that is not empty (a guess)"
        ),
    }

    @classmethod
    def options_for(cls, profile: ServerProfile) -> dict[str, Any]:
        wire = ALTERNATIVE_PROFILE if profile.setting("wire_profile") == "alternative" else None
        raw = profile.setting("folder_not_empty_status")
        base = wire or DEFAULT_PROFILE
        try:
            if int(raw) != base.folder_not_empty_status:
                wire = base.replace(folder_not_empty_status=int(raw))
        except ValueError:
            raise UnknownServerOption(
                f"opus2: folder_not_empty_status must be a 4xx status, not {raw!r}"
            ) from None
        return {"profile": wire} if wire is not None else {}

    def __init__(
        self,
        *,
        latency_ms: float = 0.0,
        seed: int | None = None,
        profile: Opus2Profile | None = None,
        token: str | None = None,
        rate_limit: int | None = 50,
        rate_window: float = 60.0,
        token_ttl: float | None = None,
        api_enabled: bool = True,
    ) -> None:
        """``token``: the default user's API token (generated when omitted); ``rate_limit``:
        requests per ``rate_window`` seconds per token (``None`` or 0: unlimited);
        ``token_ttl``: lifetime in seconds of tokens made from now on (``None``: no expiry)."""
        # routes() runs inside the base constructor and needs these
        self.profile = profile or DEFAULT_PROFILE
        self._state = threading.RLock()
        self._ids = random.Random(seed)
        self._counter = 1000
        self._clock_offset = 0.0
        self._frozen_at: float | None = None
        self._rate_limit = rate_limit or 0
        self._rate_window = rate_window
        self._token_ttl = token_ttl
        self._api_enabled = api_enabled
        self._hits: dict[str, deque[float]] = {}
        self._users: dict[str, User] = {}
        self._tokens: dict[str, Token] = {}
        self._teams: dict[str, Team] = {}
        self._projects: dict[str, Project] = {}
        self._folders: dict[str, Folder] = {}
        self._documents: dict[str, Document] = {}
        super().__init__(latency_ms=latency_ms, seed=seed)
        # unknown routes and wrong methods answer with this API's JSON error body too; Starlette
        # types handlers for any Exception, this one only ever receives HTTPException
        self._app.add_exception_handler(HTTPException, self._starlette_error)  # type: ignore[arg-type]
        self.default_user_id = self.add_user("docfs@example.com", name="docfs API user", admin=True)
        self.default_token = self.add_token(self.default_user_id, name="docfs", value=token)

    # a backdoor helper kept here: it reads the ``Emulator`` base's request log, and the mixins
    # do not derive from ``Emulator``
    def rate_limited(self) -> int:
        """How many requests the rate limiter refused so far (from the request log)."""
        status = self.profile.rate_limit_status
        return sum(1 for r in self.requests() if r.status == status and r.fault is None)
