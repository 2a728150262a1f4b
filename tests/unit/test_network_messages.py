"""Network failures and bad numbers reach the user as one line that says what is wrong
(issue 23, item 7): a refused connection, an unknown host, a 404 from a wrong URL, --timeout -3."""

from __future__ import annotations

import errno
import os
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import trio

from docfs import cli, errors
from docfs.backends._http import HttpClient, RetryPolicy, transport_problem
from docfs.daemon import connect_backend
from docfs.emulators.base import EmulatorServer
from tests.conftest import ADMIN

DOCFS = [sys.executable, "-m", "docfs"]


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port  # nothing listens there once the socket is closed


def mount(
    source: str, mountpoint: Path, *extra: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*DOCFS, "mount", source, str(mountpoint), *extra],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )


def error_lines(stderr: str) -> list[str]:
    """The lines a user sees, without the timestamp the terminal format puts first."""
    return [line.split(" ", 2)[2] for line in stderr.strip().splitlines()]


def test_a_refused_connection_is_one_line_naming_host_and_port(tmp_path: Path) -> None:
    port = closed_port()
    result = mount(f"dspace6:http://127.0.0.1:{port}/rest", tmp_path)
    assert result.returncode == 1
    # no retry lines, no "giving up", no httpx class name: one line
    assert error_lines(result.stderr) == [
        f"ERROR docfs: cannot reach 127.0.0.1:{port} (connection refused)"
    ]


def test_a_404_to_the_login_says_the_url_is_probably_wrong(
    tmp_path: Path, dspace6: EmulatorServer
) -> None:
    env = {**os.environ, "DOCFS_USER": ADMIN[0], "DOCFS_PASSWORD": ADMIN[1]}
    # the DSpace 6 REST API lives below /rest: the server's root answers 404 to /login
    result = mount(f"dspace6:{dspace6.url}", tmp_path, env=env)
    assert result.returncode == 1
    assert error_lines(result.stderr) == [
        f"ERROR docfs: {dspace6.url}/login answered 404: is this the DSpace 6 REST URL? "
        "`docfs detect URL` can tell"
    ]


@pytest.mark.parametrize(
    ("kind", "hint"),
    [
        ("dspace7", "is this the DSpace 7+ server (https://HOST or …/server)? `docfs detect URL`"),
        ("rspace", "is this the RSpace server's address (https://HOST, without /api/v1)?"),
        ("opus2", "is this the Opus 2 tenant's address (https://TENANT, without /api)?"),
        ("docspace", "is this the DocSpace portal's address (https://PORTAL, without /api/2.0)?"),
    ],
)
def test_every_type_explains_a_404_at_the_start(kind: str, hint: str) -> None:
    class Lost:
        async def connect(self) -> None:
            error = errors.NotFound("GET http://h/x/status: HTTP 404", status=404)
            error.url = "http://h/x/status"
            raise error

    with pytest.raises(errors.DocfsError) as caught:
        trio.run(connect_backend, Lost(), kind)  # type: ignore[arg-type]
    assert str(caught.value).startswith(f"http://h/x/status answered 404: {hint}")


def test_a_404_later_than_the_start_stays_not_found() -> None:
    class Gone:
        async def connect(self) -> None:
            raise errors.NotFound("no such item")  # not an HTTP answer: nothing to explain

    with pytest.raises(errors.NotFound, match="no such item"):
        trio.run(connect_backend, Gone(), "dspace6")  # type: ignore[arg-type]


def test_a_refused_connection_found_in_trios_exception_group() -> None:
    async def main() -> str:
        port = closed_port()
        http = HttpClient(f"http://127.0.0.1:{port}", retry=RetryPolicy(attempts=2, base=0.01))
        try:
            with pytest.raises(errors.RemoteUnavailable) as caught:
                await http.request("GET", "/status", endpoint="status", auth=False)
        finally:
            await http.aclose()
        return f"{caught.value}|{port}"

    message, port = trio.run(main).split("|")
    assert message == f"cannot reach 127.0.0.1:{port} (connection refused)"


def _connect_error(cause: BaseException) -> httpx.ConnectError:
    try:
        try:
            raise cause
        except BaseException as exc:
            raise httpx.ConnectError(str(exc)) from exc
    except httpx.ConnectError as outer:
        return outer


@pytest.mark.parametrize(
    ("cause", "message"),
    [
        (
            socket.gaierror(socket.EAI_NONAME, "Name or service not known"),
            "repo.example.org: no such host",
        ),
        (
            OSError(errno.EHOSTUNREACH, "No route to host"),
            "cannot reach repo.example.org:443 (no route to host)",
        ),
        (
            ExceptionGroup("all failed", [ConnectionRefusedError(errno.ECONNREFUSED, "refused")]),
            "cannot reach repo.example.org:443 (connection refused)",
        ),
    ],
)
def test_transport_failures_in_the_users_terms(cause: BaseException, message: str) -> None:
    request = httpx.Request("GET", "https://repo.example.org/rest/status")
    assert transport_problem(request, _connect_error(cause)) == message


def test_a_read_timeout_names_the_option() -> None:
    request = httpx.Request("GET", "https://repo.example.org/rest/items")
    problem = transport_problem(request, httpx.ReadTimeout("timed out"))
    assert problem == (
        "GET https://repo.example.org/rest/items: repo.example.org:443 did not answer within "
        "the timeout (--timeout)"
    )


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (
            ["mount", "r", "/m", "--timeout", "-3"],
            "argument --timeout: must be more than 0, not -3",
        ),
        (["mount", "r", "/m", "--timeout", "0"], "argument --timeout: must be more than 0, not 0"),
        (["mount", "r", "/m", "--timeout", "soon"], "argument --timeout: expected a number"),
        (["mount", "r", "/m", "--timeout", "nan"], "argument --timeout: must be more than 0"),
        (["mount", "r", "/m", "--transfers", "0"], "argument --transfers: must be at least 1"),
        (["mount", "r", "/m", "--uid", "-1"], "argument --uid: must be at least 0, not -1"),
        (["mount", "r", "/m", "--write-back", "-1"], "argument --write-back: must be at least 0"),
        (["mount", "r", "/m", "--dir-cache-time", "-2"], "argument --dir-cache-time: must be"),
        (["sync", "/m", "--timeout", "-1"], "argument --timeout: must be more than 0"),
        (["emulate", "dspace6", "--port", "70000"], "argument --port: must be from 0 to 65535"),
        (["demo", "--latency-ms", "-5"], "argument --latency-ms: must be at least 0"),
    ],
)
def test_bad_numbers_are_usage_errors(
    argv: list[str], words: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as ended:
        cli.main(argv)
    assert ended.value.code == 2
    assert words in capsys.readouterr().err
