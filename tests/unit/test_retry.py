"""The retry policy: Mastodon's (Sidekiq's) schedule, jitter, Retry-After, giving up."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest

from bridge.jobs.retry import SIDEKIQ_SCHEDULE, RetryPolicy, backoff, parse_retry_after

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def no_jitter(n: int) -> int:
    return 0


def most_jitter(n: int) -> int:
    return n - 1


def test_sidekiq_formula_without_and_with_jitter() -> None:
    # count ** 4 + 15 + rand(10) * (count + 1)
    assert [backoff(c, no_jitter) for c in range(4)] == [15, 16, 31, 96]
    assert [backoff(c, most_jitter) for c in range(4)] == [15 + 9, 16 + 18, 31 + 27, 96 + 36]
    asked: list[int] = []
    backoff(3, lambda n: asked.append(n) or 5)
    assert asked == [10]  # rand(10), as Sidekiq


def test_sixteen_retries_spanning_about_two_days() -> None:
    policy = RetryPolicy()
    waits = [policy.delay(attempt, rand=no_jitter) for attempt in range(1, 18)]
    assert waits[:16] == [float(w) for w in SIDEKIQ_SCHEDULE]
    assert waits[16] is None  # the 17th attempt (16th retry) failed: give up
    assert SIDEKIQ_SCHEDULE[-1] == 15**4 + 15  # the last wait is about 14 hours
    total = timedelta(seconds=policy.total_wait())
    assert timedelta(days=2) < total < timedelta(days=3)
    jittered = sum(backoff(c, most_jitter) for c in range(16))
    assert timedelta(seconds=jittered) < timedelta(days=3)


def test_delays_grow() -> None:
    waits = [RetryPolicy().delay(a, rand=no_jitter) for a in range(1, 17)]
    assert all(b is not None and a is not None and b > a for a, b in itertools.pairwise(waits))


def test_jitter_comes_from_the_injected_rand() -> None:
    policy = RetryPolicy()
    low = policy.delay(5, rand=no_jitter)
    high = policy.delay(5, rand=most_jitter)
    assert low is not None and high is not None
    assert high - low == 9 * 5


def test_retry_after_is_honoured_when_longer_and_capped() -> None:
    policy = RetryPolicy(max_retry_after=3600)
    assert policy.delay(1, retry_after=600, rand=no_jitter) == 600
    assert policy.delay(1, retry_after=5, rand=no_jitter) == 15  # shorter: the schedule wins
    assert policy.delay(1, retry_after=10**9, rand=no_jitter) == 3600
    assert policy.delay(17, retry_after=600, rand=no_jitter) is None  # exhausted all the same


def test_next_run_and_custom_retries() -> None:
    policy = RetryPolicy(max_retries=2)
    assert policy.next_run(NOW, 1, rand=no_jitter) == NOW + timedelta(seconds=15)
    assert policy.next_run(NOW, 2, rand=no_jitter) == NOW + timedelta(seconds=16)
    assert policy.next_run(NOW, 3, rand=no_jitter) is None
    with pytest.raises(ValueError):
        policy.delay(0)


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("120", 120.0),
        (" 7 ", 7.0),
        ("Sat, 28 Nov 2026 12:05:00 GMT", 300.0),
        ("Sat, 28 Nov 2026 11:00:00 GMT", 0.0),  # in the past: now
        ("soon", None),
        ("-5", None),
        ("99999999999999999999", None),
        (None, None),
    ],
)
def test_parse_retry_after(header: str | None, seconds: float | None) -> None:
    assert parse_retry_after(header, NOW) == seconds


def test_the_last_attempt_is_the_one_after_the_last_retry() -> None:
    policy = RetryPolicy(max_retries=2)
    assert [policy.gives_up_after(n) for n in (1, 2, 3, 4)] == [False, False, True, True]
    assert [policy.delay(n, rand=lambda _n: 0) is None for n in (1, 2, 3)] == [False, False, True]
    with pytest.raises(ValueError):
        policy.gives_up_after(0)
