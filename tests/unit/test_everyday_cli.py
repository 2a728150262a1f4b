"""The everyday-use parts of the command that need no mount: the mount.fuse3 call form, log
formats, the FUSE pre-check, the rate-limit counters, upload progress and the status display."""

from __future__ import annotations

import io
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import trio
import trio.testing

from docfs import __version__, cli
from docfs.backends._http import COUNT_PIECE, HttpClient, RetryPolicy, TokenBucket, Transfer
from docfs.control import UploadMeter, transfer_json
from docfs.daemon import fuse_problem
from docfs.redact import Redactor

# ---- the mount.fuse3 call form -------------------------------------------------------------


def test_the_mount_helper_form_becomes_a_detached_mount() -> None:
    argv = [
        "myrepo:/Lab",
        "/mnt/x",
        "-o",
        "ro,allow_other,direct_io,cache_size=2G,dir_cache_time=5,dev,suid",
    ]
    assert cli.is_helper_call(argv)
    assert cli.helper_argv(argv) == [
        "mount",
        "myrepo:/Lab",
        "/mnt/x",
        "--read-only",
        "--allow-other",
        "--direct-io",
        "--cache-size",
        "2G",
        "--dir-cache-time",
        "5",
        "--daemon",
        "--quiet",
    ]


def test_mount_and_systemd_options_are_accepted_and_ignored() -> None:
    argv = ["r", "/m", "-o_netdev,x-systemd.automount,nofail,noauto,rw,defaults,comment=x", "-f"]
    assert cli.helper_argv(argv) == ["mount", "r", "/m"]  # -f: stays in the foreground


def test_kernel_flags_and_value_options_pass_through() -> None:
    argv = [
        "r",
        "/m",
        "-o",
        "noexec,uid=1000,gid=100,write_back=3,config=/etc/x.toml",
        "-o",
        "verbose=http",
    ]
    assert cli.helper_argv(argv)[3:] == [
        "--kernel-option",
        "noexec",
        "--uid",
        "1000",
        "--gid",
        "100",
        "--write-back",
        "3",
        "--config",
        "/etc/x.toml",
        "-v",
        "http",
        "--daemon",
        "--quiet",
    ]
    # and argparse takes the result
    args = cli.build_parser().parse_args(cli.helper_argv(argv))
    assert (args.kernel_option, args.uid, args.write_back, args.verbose) == (
        ["noexec"],
        1000,
        3.0,
        ["http"],
    )


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["r", "/m", "-o", "colour=blue"], "unknown mount option 'colour=blue'"),
        (["r", "/m", "-o", "ro=1"], "unknown mount option 'ro=1'"),
        (["r", "/m", "-x"], "unknown flag '-x'"),
        (["r"], "usage: docfs SOURCE MOUNTPOINT"),
        (["r", "/m", "-o"], "-o needs"),
    ],
)
def test_bad_helper_calls_are_usage_errors(argv: list[str], words: str) -> None:
    with pytest.raises(cli.UsageError, match=words):
        cli.helper_argv(argv)


def test_commands_are_not_helper_calls() -> None:
    assert not cli.is_helper_call(["status"])
    assert not cli.is_helper_call(["--version"])
    assert not cli.is_helper_call([])


def test_inline_remotes_are_told_from_configured_names() -> None:
    assert cli.is_inline("dspace6:https://repo/rest")
    assert cli.is_inline("nosuch:http://x")  # still inline: the type error comes later
    assert not cli.is_inline("myrepo")
    assert not cli.is_inline("myrepo:/Faculty of Science")


# ---- logs ----------------------------------------------------------------------------------


def _log_lines(env: dict[str, str], *, verbose: tuple[str, ...] = ()) -> list[str]:
    stream = io.StringIO()
    redactor = Redactor()
    redactor.add("s3cr3t-pass")
    root = logging.getLogger()
    saved = root.handlers[:], root.level, root.filters[:]
    try:
        cli.setup_logging("info", redactor, stream, verbose=verbose, env=env)
        logging.getLogger("docfs.vfs").debug("vfs detail")
        logging.getLogger("docfs.http").debug("GET /items -> 200 password=s3cr3t-pass")
        logging.getLogger("docfs.daemon").warning("server slow")
    finally:
        root.handlers[:], root.filters[:] = saved[0], saved[2]
        root.setLevel(saved[1])
        for name in ("docfs.http", "docfs.vfs"):
            logging.getLogger(name).setLevel(logging.NOTSET)
    return stream.getvalue().splitlines()


def test_log_lines_carry_timestamps_outside_systemd() -> None:
    lines = _log_lines({})
    assert len(lines) == 1
    assert lines[0].endswith("WARNING docfs.daemon: server slow")
    assert lines[0][:4].isdigit()  # starts with the date


def test_under_systemd_lines_have_a_priority_and_no_timestamp() -> None:
    assert _log_lines({"INVOCATION_ID": "abc"}) == ["<4>docfs.daemon: server slow"]


def test_verbose_module_shows_its_debug_lines_only_and_redacted() -> None:
    lines = _log_lines({"INVOCATION_ID": "abc"}, verbose=("http",))
    assert lines == [
        "<7>docfs.http: GET /items -> 200 password=***",
        "<4>docfs.daemon: server slow",
    ]


def test_journal_stream_counts_only_if_it_is_our_stderr(tmp_path: Path) -> None:
    target = tmp_path / "journal"
    target.write_text("")
    info = target.stat()
    with open(target, "w") as ours, open(tmp_path / "other", "w") as other:
        env = {"JOURNAL_STREAM": f"{info.st_dev}:{info.st_ino}"}
        assert cli.under_journal(env, ours)
        assert not cli.under_journal(env, other)
        assert not cli.under_journal({"JOURNAL_STREAM": "garbage"}, ours)
    assert cli.under_journal({"INVOCATION_ID": "x"}, io.StringIO())
    assert not cli.under_journal({}, io.StringIO())


def test_log_file_gets_timestamped_lines(tmp_path: Path) -> None:
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    log_file = tmp_path / "logs" / "docfs.log"
    try:
        cli.setup_logging("info", Redactor(), log_file=log_file, env={"INVOCATION_ID": "x"})
        logging.getLogger("docfs.daemon").info("hello file")
        for handler in root.handlers:
            handler.flush()
    finally:
        for handler in root.handlers:
            handler.close()
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
    (line,) = log_file.read_text().splitlines()
    assert line.endswith("INFO docfs.daemon: hello file") and line[:4].isdigit()


def test_logger_names() -> None:
    assert cli.logger_name("http") == "docfs.http"
    assert cli.logger_name("backends.dspace6") == "docfs.backends.dspace6"
    assert cli.logger_name("docfs.vfs") == "docfs.vfs"
    assert cli.logger_name("httpx") == "httpx"


# ---- packaging -----------------------------------------------------------------------------


def test_fuse_problem_names_what_is_missing(tmp_path: Path) -> None:
    assert fuse_problem(tmp_path, lambda name: f"/usr/bin/{name}") is None
    no_device = fuse_problem(tmp_path / "fuse", lambda name: f"/usr/bin/{name}")
    assert no_device is not None and "fuse is missing" in no_device and "modprobe" in no_device
    no_helper = fuse_problem(tmp_path, lambda name: None)
    assert no_helper is not None and "fusermount3 is missing" in no_helper


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        cli.main(["--version"])
    assert done.value.code == 0
    assert capsys.readouterr().out.strip() == f"docfs {__version__}"


# ---- rate-limit counters and upload progress -----------------------------------------------


async def test_token_bucket_counts_waits_and_seconds(
    autojump_clock: trio.testing.MockClock,
) -> None:
    bucket = TokenBucket(rate=2.0, burst=2)
    for _ in range(2):
        await bucket.acquire()
    assert (bucket.waits, bucket.waited) == (0, 0.0)  # the burst costs nothing
    start = trio.current_time()
    async with trio.open_nursery() as nursery:
        for _ in range(4):
            nursery.start_soon(bucket.acquire)
    assert bucket.waits == 4
    # tokens come every 0.5 s: the four waited 0.5, 1.0, 1.5 and 2.0 s
    assert trio.current_time() - start == pytest.approx(2.0)
    assert bucket.waited == pytest.approx(5.0)


@pytest.fixture
def autojump_clock() -> trio.testing.MockClock:
    return trio.testing.MockClock(autojump_threshold=0)


class _Job:
    def __init__(self, job_id: str, size: int, inflight: bool, path: str) -> None:
        self.id, self.size, self.inflight, self.path = job_id, size, inflight, path
        self.attempts, self.due = 0, 0.0


class _Queue:
    def __init__(self, directory: Path, jobs: list[_Job]) -> None:
        self.dir = directory
        self.jobs = {j.id: j for j in jobs}
        self.uploaded = 0


def test_upload_meter_gives_progress_rate_and_eta(tmp_path: Path) -> None:
    now = [100.0]
    meter = UploadMeter(clock=lambda: now[0])
    queue = _Queue(tmp_path, [_Job("a", 1000, True, "/x/a"), _Job("b", 500, False, "/x/b")])
    # the upload of a started 4 s before anybody asked: its ETA runs from then, not from the
    # first status poll (issue 23, item 4)
    upload = Transfer("/x/a", 1000, "a", time.monotonic() - 4.0)
    transfers = {"a": upload}
    report = meter.report(queue, transfers)  # type: ignore[arg-type]
    assert [f["sent"] for f in report["files"]] == [0, 0]
    assert report["files"][0]["eta"] is None  # nothing sent yet: no rate to tell
    upload.sent = 500  # 500 B in 4 s: 125 B/s, 500 B to go
    first = meter.report(queue, transfers)["files"][0]  # type: ignore[arg-type]
    assert first["rate"] == pytest.approx(125.0, rel=0.05)
    assert first["eta"] == pytest.approx(4.0, rel=0.05)
    upload.sent = 250
    now[0] += 1.0
    report = meter.report(queue, {"a": upload})  # type: ignore[arg-type]
    first, second = report["files"]
    assert (first["path"], first["state"], first["sent"]) == ("/x/a", "uploading", 250)
    assert (second["state"], second["sent"], second["eta"]) == ("queued", 0, None)
    # a finished job counts as sent for the queue's rate
    del queue.jobs["a"]
    now[0] += 1.0
    report = meter.report(queue, {})  # type: ignore[arg-type]
    assert report["pending"] == 1 and report["rate"] == pytest.approx(500.0)
    assert report["bytes_left"] == 500


def test_a_transfer_never_shows_more_than_its_file() -> None:
    # a multipart body carries a few hundred bytes more than the file
    report = transfer_json(Transfer("/a", 1000, "/a", time.monotonic() - 1.0, sent=1300))
    assert report["sent"] == 1000 and report["eta"] == 0.0


async def test_request_bodies_count_as_they_leave_into_the_upload() -> None:
    """Bytes count when the connection took them (each 1 MiB piece once the next is asked
    for), per endpoint and into the upload the task is doing; a retry starts over."""
    seen: list[tuple[int, int]] = []
    attempts = [0]
    body = b"z" * (3 * COUNT_PIECE + 10)

    async def handler(request: httpx.Request) -> httpx.Response:
        attempts[0] += 1
        assert isinstance(request.stream, httpx.AsyncByteStream)
        async for piece in request.stream:
            # before the transport takes the next piece, what it took so far is counted
            seen.append((len(piece), transfer.sent))
        return httpx.Response(503 if attempts[0] == 1 else 201)

    http = HttpClient(
        "http://x", transport=httpx.MockTransport(handler), retry=RetryPolicy(base=0.0)
    )
    with http.uploading("/lab/big.bin", len(body)) as transfer:
        await http.request("POST", "/upload", endpoint="upload", body=body)
        assert transfer.sent == len(body)  # the second attempt's bytes, not both attempts'
    await http.aclose()
    sizes = [COUNT_PIECE, COUNT_PIECE, COUNT_PIECE, 10]
    assert seen == [
        *[(n, sum(sizes[:i])) for i, n in enumerate(sizes)],
        *[(n, sum(sizes[:i])) for i, n in enumerate(sizes)],
    ]
    assert http.stats["upload"].bytes_sent == 2 * len(body)  # both attempts left
    assert http.transfers == {}


def test_status_display_shows_bars_and_etas() -> None:
    report = {
        "pid": 7,
        "mountpoint": "/home/me/repo",
        "remote": "dspace6:https://repo/rest",
        "name": "myrepo",
        "sub_path": "/Lab",
        "uptime": 3700,
        "read_only": False,
        "write_back": 10.0,
        "cache": {"used": 512 << 20, "limit": 2 << 30},
        "requests": {
            "total": 12,
            "errors": 1,
            "retries": 1,
            "endpoints": {
                "item": {
                    "requests": 12,
                    "errors": 1,
                    "retries": 1,
                    "bytes_sent": 0,
                    "bytes_received": 2048,
                }
            },
        },
        "rate_limit": {"waits": 3, "seconds": 1.25},
        "uploads": {
            "pending": 2,
            "bytes_total": 300,
            "bytes_left": 250,
            "rate": 10.0,
            "eta": 25.0,
            "uploaded": 4,
            "files": [
                {"path": "/Lab/a", "size": 200, "sent": 50, "state": "uploading", "attempts": 0,
                 "due_in": 0.0, "rate": 10.0, "eta": 15.0},
                {"path": "/Lab/b", "size": 100, "sent": 0, "state": "retrying", "attempts": 2,
                 "due_in": 4.0, "eta": None},
            ],
        },
        "lost_found": 0,
        "held_back": ["Thesis: workspace item 7, not deposited yet"],
    }  # fmt: skip
    text = cli.format_status(report)
    assert "  held back   Thesis: workspace item 7, not deposited yet" in text
    assert "/home/me/repo: myrepo:/Lab (dspace6:https://repo/rest), write-back 10 s" in text
    assert "up 1 h 01 min" in text
    assert "512.0 MiB of 2.0 GiB (25%)" in text
    assert "requests  12, errors 1, retries 1; rate-limit waits 3 (1.2 s)" in text
    assert "2 pending, 250 B left, 10 B/s, ETA 25 s" in text
    assert "[#####---------------]      200 B   25%  10 B/s  ETA 15 s  /Lab/a" in text
    assert "retry 2 in 4 s  /Lab/b" in text


def test_human_units() -> None:
    assert cli.human_size(0) == "0 B"
    assert cli.human_size(1536) == "1.5 KiB"
    assert cli.human_time(59.6) == "1 min 00 s"
    assert cli.human_time(None) == "?"
    assert cli.progress_bar(1, 0) == "[" + "#" * 20 + "]"


def test_runtime_dir_is_private(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from docfs.daemon import runtime_dir

    target = tmp_path / "rt"
    monkeypatch.setenv("DOCFS_RUNTIME_DIR", str(target))
    assert runtime_dir() == target
    assert (target.stat().st_mode & 0o777) == 0o700
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    if os.getuid() == 0:
        os.chown(foreign, 12345, 12345)
        monkeypatch.setenv("DOCFS_RUNTIME_DIR", str(foreign))
        with pytest.raises(Exception, match="not a directory of ours"):
            runtime_dir()


def test_mount_says_what_is_missing_before_connecting(tmp_path: Path) -> None:
    empty = tmp_path / "bin"
    empty.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOCFS_")}
    env["PATH"] = str(empty)  # no fusermount3 anywhere
    mnt = tmp_path / "mnt"  # empty: a non-empty mount point is refused for its own reason
    mnt.mkdir()
    result = subprocess.run(
        [sys.executable, "-m", "docfs", "mount", "dspace6:http://127.0.0.1:9/rest", str(mnt)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert result.returncode == 1
    assert result.stderr.strip() == (
        "docfs: cannot mount: fusermount3 is missing: install FUSE 3 "
        "(apt-get install fuse3, dnf install fuse3)"
    )


# ---- --credentials-file: TOML, and the older lines ------------------------------------------


def _creds_file(tmp_path: Path, text: str, mode: int = 0o600) -> Path:
    path = tmp_path / "creds"
    path.write_text(text)
    path.chmod(mode)
    return path


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('user = "me@example.org"\npassword = "pa ss=word"\n', ("me@example.org", "pa ss=word")),
        ("# old lines\nuser = me@x.org\npassword = pa ss=word\n", ("me@x.org", "pa ss=word")),
        # valid TOML, but a number: the older format's text, not 123456 the integer
        ("user = me\npassword = 123456\n", ("me", "123456")),
        ('user = "me"\npassword = "123456"\n', ("me", "123456")),
    ],
)  # fmt: skip
def test_credentials_file_reads_toml_and_older_lines(
    tmp_path: Path, text: str, expected: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for key in ("DOCFS_USER", "DOCFS_PASSWORD", "DOCFS_TOKEN"):
        monkeypatch.delenv(key, raising=False)
    creds = cli.read_credentials(_creds_file(tmp_path, text))
    assert (creds.user, creds.password) == expected


def test_a_toml_credentials_file_others_can_read_is_refused(tmp_path: Path) -> None:
    path = _creds_file(tmp_path, 'token = "secret-token-1"\n', mode=0o644)
    with pytest.raises(cli.UsageError) as caught:
        cli.read_credentials(path, use_env=False)
    assert str(caught.value) == f"{path} is readable by group or others; chmod 600 {path}"


def test_a_toml_credentials_file_names_an_unknown_key(tmp_path: Path) -> None:
    path = _creds_file(tmp_path, 'usr = "me"\npassword = "x"\n')
    with pytest.raises(cli.UsageError) as caught:
        cli.read_credentials(path, use_env=False)
    assert str(caught.value) == (
        f"{path}: unknown key 'usr' (known: user, password, token); did you mean 'user'?"
    )


# ---- docfs sync / unmount progress ----------------------------------------------------------


def _uploads(pending: int, left: int, rate: float | None = 2 << 20) -> dict[str, object]:
    total = 80 << 20
    eta = left / rate if rate else None
    return {"pending": pending, "bytes_total": total, "bytes_left": left, "rate": rate, "eta": eta}


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_on_a_terminal_is_one_line_rewritten_in_place() -> None:
    out = _Terminal()
    line = cli.ProgressLine(out)
    line.show(_uploads(1, 60 << 20))
    line.show(_uploads(1, 40 << 20))  # one big file: the bytes move, the count does not
    line.done()
    assert out.getvalue() == (
        "\r\x1b[Kdocfs: 1 uploads left, 20.0 MiB of 80.0 MiB sent, 2.0 MiB/s, ETA 30 s"
        "\r\x1b[Kdocfs: 1 uploads left, 40.0 MiB of 80.0 MiB sent, 2.0 MiB/s, ETA 20 s\n"
    )


def test_progress_elsewhere_is_plain_lines_not_a_flood() -> None:
    out = io.StringIO()
    line = cli.ProgressLine(out, every=3600)
    line.show(_uploads(2, 60 << 20, rate=None))
    line.show(_uploads(2, 50 << 20))  # same count, soon after: nothing
    line.show(_uploads(1, 40 << 20))
    line.done()
    assert out.getvalue() == (
        "docfs: 2 uploads left, 20.0 MiB of 80.0 MiB sent, ETA ?\n"
        "docfs: 1 uploads left, 40.0 MiB of 80.0 MiB sent, 2.0 MiB/s, ETA 20 s\n"
    )
