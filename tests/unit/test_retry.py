"""The one retry policy (docfs.retry) and the numbers each of the three loops gives it."""

from __future__ import annotations

import random

import pytest

from docfs.backends._http import RetryPolicy as HttpRetryPolicy
from docfs.retry import UNLIMITED, RetryPolicy
from docfs.vfs.writeback import UPLOAD_RETRY
from docfs.vfs.writes import CREATE_RETRY


def test_the_http_layer_uses_the_shared_policy() -> None:
    # one class: a policy built for an HttpClient is the policy every loop uses
    assert HttpRetryPolicy is RetryPolicy
    policy = RetryPolicy()
    assert (policy.attempts, policy.base, policy.cap, policy.max_retry_after) == (5, 0.2, 10, 60)


def test_full_jitter_stays_inside_the_doubling_window_and_is_capped() -> None:
    policy = RetryPolicy(base=0.2, cap=1.0)
    random.seed(7)
    for attempt, window in [(0, 0.2), (1, 0.4), (2, 0.8), (3, 1.0), (9, 1.0)]:
        pauses = [policy.backoff(attempt) for _ in range(200)]
        assert all(0 <= p <= window for p in pauses)
        assert max(pauses) > window * 0.8  # spread over the window, not a fixed pause


def test_retry_after_replaces_the_pause_up_to_its_cap() -> None:
    policy = RetryPolicy(max_retry_after=60)
    assert policy.backoff(3, retry_after=7.0) == 7.0
    assert policy.waits_for(None) and policy.waits_for(60.0)
    assert not policy.waits_for(61.0)


def test_attempts_count_every_try() -> None:
    policy = RetryPolicy(attempts=3)
    assert [policy.gives_up(a) for a in range(3)] == [False, False, True]
    assert not RetryPolicy(attempts=UNLIMITED).gives_up(10**6)


def test_the_vfs_creates_send_three_times_without_a_pause() -> None:
    # a lost create is looked for (not waited out) before it is sent again
    assert [CREATE_RETRY.gives_up(a) for a in range(3)] == [False, False, True]
    assert CREATE_RETRY.backoff(0) == CREATE_RETRY.backoff(1) == 0.0


@pytest.mark.parametrize(("attempt", "pause"), [(1, 2.0), (2, 4.0), (8, 256.0), (9, 300.0)])
def test_the_write_back_queue_doubles_its_pause_up_to_five_minutes(
    attempt: int, pause: float
) -> None:
    assert UPLOAD_RETRY.backoff(attempt) == pause
    assert not UPLOAD_RETRY.gives_up(attempt)


def test_a_queue_that_never_gives_up_does_not_overflow() -> None:
    # 2.0 ** 1100 overflows a float: a job failing for days must still get its five minutes
    assert UPLOAD_RETRY.backoff(1100) == 300.0
