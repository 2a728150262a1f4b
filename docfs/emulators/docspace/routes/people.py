"""Handlers for authentication, people, API keys and the files settings.

See ``docs/protocols/docspace.md`` §1.
"""

from __future__ import annotations

import secrets
import urllib.parse
from typing import Any

from docfs.emulators.docspace.model import (
    CONVERTIBLE,
    FILE_TYPES,
    MUST_CONVERT,
    ApiError,
    User,
    invalid_operation,
    not_found,
)
from docfs.emulators.docspace.routes.base import Dispatch
from docfs.emulators.docspace.state import VOID, Ctx
from docfs.emulators.docspace.wire import as_bool, as_int, lookup


class PeopleRoutes(Dispatch):
    """``/authentication``, ``/people/@self``, ``/keys``, ``files/settings``."""

    async def _h_login(self, ctx: Ctx) -> Any:
        body = await self._body(ctx)
        login = str(lookup(body, "userName") or "")
        password = str(lookup(body, "password") or "")
        client = ctx.request.client
        key = (login.lower(), client.host if client else "?")
        with self._state:
            now = self.now()
            if self._login_blocked.get(key, 0.0) > now:
                raise ApiError(
                    403,
                    "Too many login attempts. Please try again later.",
                    "ASC.Web.Core.BruteForceCredentialException",
                    detailed=False,
                )
            user = next((u for u in self.users.values() if u.email.lower() == key[0]), None)
            if user is None or not secrets.compare_digest(user.password, password):
                self._login_failed(key, now)
                raise ApiError(401, "User authentication failed", detailed=False)
            self._login_failures.pop(key, None)
            if user.disabled:
                raise invalid_operation("The user is disabled")
            if user.two_factor is not None:
                return self._two_factor_answer(ctx, user)
            token = self._issue_token(user)
            answer: dict[str, Any] = {"token": self._token_value(token)}
            if not as_bool(lookup(body, "session")) and token.expires != float("inf"):
                answer["expires"] = self._date(token.expires)
            return answer

    def _login_failed(self, key: tuple[str, str], now: float) -> None:
        """BruteForceLoginManager: N failures within the period block the pair."""
        failures = [t for t in self._login_failures.get(key, []) if t > now - self.login_window]
        failures.append(now)
        self._login_failures[key] = failures
        if len(failures) >= self.login_attempts:
            self._login_blocked[key] = now + self.login_block
            self._login_failures.pop(key, None)

    def _two_factor_answer(self, ctx: Ctx, user: User) -> dict[str, Any]:
        confirm = f"{ctx.base}/wizard?type=TfaActivation&email={urllib.parse.quote(user.email)}"
        if user.two_factor == "sms":
            return {"sms": True, "phoneNoise": "+1 *** *** 42", "confirmUrl": confirm}
        return {"tfa": True, "tfaKey": "", "confirmUrl": confirm}

    async def _h_is_authenticated(self, ctx: Ctx) -> Any:
        return ctx.principal is not None

    async def _h_logout(self, ctx: Ctx) -> Any:
        auth = ctx.request.headers.get("authorization", "")
        raw = ctx.request.cookies.get("asc_auth_key") or auth.removeprefix("Bearer ").strip()
        with self._state:
            self._tokens.pop(raw, None)
        return VOID

    async def _h_self(self, ctx: Ctx) -> Any:
        user = ctx.need_user()
        with self._state:
            dto = self._employee(user.id, ctx.base)
        dto.update(
            email=user.email,
            userName=user.email.split("@")[0],
            isAdmin=user.admin,
            isOwner=False,
            isVisitor=False,
            status=1,
            activationStatus=1,
        )
        return dto

    async def _h_create_key(self, ctx: Ctx) -> Any:
        if self.server_version < (3, 1, 0):
            raise not_found("Not found")
        body = await self._body(ctx)
        user = ctx.need_user()
        permissions = lookup(body, "permissions") or ["*"]
        days = lookup(body, "expiresInDays")
        key = self.add_api_key(
            user.email,
            scopes=[str(p) for p in permissions],
            name=str(lookup(body, "name") or "key"),
            expires_in_days=as_int(days, "expiresInDays") if days is not None else None,
        )
        with self._state:
            return self._key_dto(self._keys[key], with_key=True)

    async def _h_list_keys(self, ctx: Ctx) -> Any:
        if self.server_version < (3, 1, 0):
            raise not_found("Not found")
        user = ctx.need_user()
        with self._state:
            return [self._key_dto(k, False) for k in self._keys.values() if k.user_id == user.id]

    async def _h_settings(self, ctx: Ctx) -> Any:
        exts_convert = sorted(MUST_CONVERT) if self.conversion else []
        every = sorted({e for exts in FILE_TYPES.values() for e in exts})
        return {
            "chunkUploadSize": self.chunk_upload_size,
            "maxUploadThreadCount": 15,
            "maxUploadFilesCount": 5,
            "extsUploadable": every,
            "extsMustConvert": exts_convert,
            "extsConvertible": {e: CONVERTIBLE[e] for e in sorted(CONVERTIBLE)},
            "storeOriginalFiles": bool(ctx.user and ctx.user.store_original),
            "updateIfExist": self.update_if_exist,
            "fileDownloadUrlString": f"{ctx.base}/filehandler.ashx?action=download&fileid={{0}}",
            "fileWebViewerUrlString": f"{ctx.base}/doceditor?fileid={{0}}",
        }

    async def _h_update_if_exist(self, ctx: Ctx) -> Any:
        body = await self._body(ctx)
        with self._state:
            # stored, not consulted by uploads (§6.2, "Emulator choices")
            self.update_if_exist = as_bool(lookup(body, "set"))
            return self.update_if_exist
