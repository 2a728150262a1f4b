"""``ProcessNames``: what /proc says of a FUSE caller is read once a moment, not on every
opendir of a walk (README, "Benchmarks", B10), and read again after ``CALLER_TTL``."""

from __future__ import annotations

import ctypes
import threading
from collections.abc import Callable

import pytest

from docfs.vfs import thumbnails
from docfs.vfs.thumbnails import CALLER_TTL, CALLERS_KEPT, ProcessNames, process_name

PR_SET_NAME = 15


Rename = Callable[[str], None]


def _in_named_thread(body: Callable[[int, Rename], None]) -> None:
    """Run ``body(tid, rename)`` in a thread of our own, which it may rename."""
    errors: list[BaseException] = []

    def worker() -> None:
        libc = ctypes.CDLL(None, use_errno=True)

        def rename(name: str) -> None:
            assert libc.prctl(PR_SET_NAME, name.encode(), 0, 0, 0) == 0

        try:
            body(threading.get_native_id(), rename)
        except BaseException as exc:  # re-raised in the test's own thread
            errors.append(exc)

    thread = threading.Thread(target=worker)
    thread.start()
    thread.join()
    if errors:
        raise errors[0]


def test_a_caller_is_read_once_a_moment_and_again_after_the_ttl() -> None:
    now = [0.0]
    names = ProcessNames(clock=lambda: now[0])
    seen: list[str | None] = []

    def body(tid: int, rename: Rename) -> None:
        rename("walker-a")
        seen.append(names.known(tid, frozenset({"walker-a", "walker-b"})))
        rename("walker-b")
        assert process_name(tid) == "walker-b"
        now[0] += CALLER_TTL / 2
        seen.append(names.known(tid, frozenset({"walker-a", "walker-b"})))  # as read before
        now[0] += CALLER_TTL
        seen.append(names.known(tid, frozenset({"walker-a", "walker-b"})))  # read again

    _in_named_thread(body)
    assert seen == ["walker-a", "walker-a", "walker-b"]


def test_a_worker_thread_is_known_by_its_process_name_too() -> None:
    own = process_name(threading.get_native_id())
    assert own is not None
    names = ProcessNames()
    seen: list[str | None] = []

    def body(tid: int, rename: Rename) -> None:
        rename("pool-worker")
        seen.append(names.known(tid, frozenset({own})))
        seen.append(names.known(tid, frozenset({"pool-worker"})))
        seen.append(names.known(tid, frozenset({"nautilus"})))

    _in_named_thread(body)
    assert seen == [own, "pool-worker", None]


def test_the_callers_kept_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    reads: list[int] = []

    def fake_name(pid: int) -> str:
        reads.append(pid)
        return f"p{pid}"

    monkeypatch.setattr(thumbnails, "process_name", fake_name)
    monkeypatch.setattr(thumbnails, "_thread_group", lambda pid: pid)
    names = ProcessNames(clock=lambda: 0.0)
    for pid in range(1, CALLERS_KEPT + 2):
        assert names.known(pid, frozenset({f"p{pid}"})) == f"p{pid}"
    reads.clear()
    names.known(CALLERS_KEPT + 1, frozenset())  # the newest: still kept
    names.known(1, frozenset())  # the oldest: dropped, so read again
    assert reads == [1]
