"""The daemon's side of ``docfs share`` & co. (``{"op": "rspace"}`` on the control socket):
a malformed request is an answer naming what is wrong, never a crash or a call with bad
arguments; errors come back with their class, so the command exits as it would have."""

from __future__ import annotations

from typing import Any

import pytest

from docfs import errors
from docfs.backends.rspace import RSpaceBackend
from docfs.backends.rspace import commands as sharing


class _Backend(RSpaceBackend):
    def __init__(self) -> None:  # no server: the requests below never reach it
        pass


@pytest.mark.parametrize(
    ("request_", "answer"),
    [
        ({"action": "nope", "args": {}}, ("InvalidArgument", "no sharing action 'nope'")),
        ({"action": "share", "args": {"bogus": 1}}, ("InvalidArgument", "bad arguments for share")),
        ({"action": "share"}, ("InvalidArgument", "bad arguments for share")),
    ],
)
async def test_bad_requests_are_answered(request_: dict[str, Any], answer: tuple[str, str]) -> None:
    reply = await sharing.serve_control(_Backend(), {"op": "rspace", **request_})
    assert (reply["ok"], reply["kind"], reply["error"]) == (False, *answer)


async def test_only_an_rspace_mount_shares() -> None:
    reply = await sharing.serve_control(object(), {"op": "rspace", "action": "shares", "args": {}})
    assert (reply["kind"], reply["error"]) == ("NotSupported", "sharing is an RSpace feature")


def test_the_daemons_error_comes_back_as_its_class() -> None:
    error = sharing._error({"ok": False, "kind": "PermissionDenied", "error": "not yours"})
    assert type(error) is errors.PermissionDenied and str(error) == "not yours"
    # a name that is no docfs error class is a plain DocfsError, never something importable
    error = sharing._error({"ok": False, "kind": "SystemExit", "error": "x"})
    assert type(error) is errors.DocfsError
