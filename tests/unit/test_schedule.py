"""Adaptive poll intervals and error backoff, with plain inputs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bridge.config import Limits
from bridge.ingest.schedule import error_backoff, next_interval, push_interval

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
LIMITS = Limits(
    min_poll_interval=300,
    max_poll_interval=6 * 3600,
    max_error_backoff=24 * 3600,
    poll_jitter=0.1,
)
MIDDLE = 0.5  # rand value that applies no jitter


def every(hours: float, count: int, start: datetime = T0) -> list[datetime]:
    return [start - timedelta(hours=hours * i) for i in range(count)]


def test_half_the_median_gap() -> None:
    # Posts every 4 hours: poll every 2 hours.
    assert next_interval(every(4, 6), LIMITS, MIDDLE) == 2 * 3600


def test_order_of_times_does_not_matter() -> None:
    times = every(4, 6)
    assert next_interval(list(reversed(times)), LIMITS, MIDDLE) == 2 * 3600


def test_median_ignores_one_long_pause() -> None:
    times = [*every(2, 5), T0 - timedelta(days=60)]
    assert next_interval(times, LIMITS, MIDDLE) == 3600


def test_only_recent_posts_count() -> None:
    # Twenty recent posts an hour apart; the blog's early years (weekly) no longer matter.
    times = [*every(1, 20), *every(24 * 7, 30, start=T0 - timedelta(days=400))]
    assert next_interval(times, LIMITS, MIDDLE) == 1800


def test_frequent_posting_is_clamped_to_the_minimum() -> None:
    assert next_interval(every(0.01, 10), LIMITS, MIDDLE) == LIMITS.min_poll_interval


def test_rare_posting_is_clamped_to_the_maximum() -> None:
    assert next_interval(every(24 * 30, 10), LIMITS, MIDDLE) == LIMITS.max_poll_interval


@pytest.mark.parametrize("times", [[], [T0], [T0, T0, T0]])
def test_no_rhythm_means_the_maximum(times: list[datetime]) -> None:
    assert next_interval(times, LIMITS, MIDDLE) == LIMITS.max_poll_interval


def test_identical_times_do_not_count_as_gaps() -> None:
    # A back catalogue imported at one instant must not drive polling to the minimum.
    times = [T0] * 10 + [T0 - timedelta(hours=8)]
    assert next_interval(times, LIMITS, MIDDLE) == 4 * 3600


def test_a_long_silence_slows_polling() -> None:
    times = every(1, 10)  # hourly: 30 minutes
    assert next_interval(times, LIMITS, MIDDLE, now=T0 + timedelta(minutes=30)) == 1800
    assert next_interval(times, LIMITS, MIDDLE, now=T0 + timedelta(hours=5)) == 9000


def test_future_dated_posts_do_not_break_the_silence_rule() -> None:
    times = every(2, 5, start=T0 + timedelta(days=3))
    assert next_interval(times, LIMITS, MIDDLE, now=T0) == 3600


def test_naive_times_are_read_as_utc() -> None:
    times = [t.replace(tzinfo=None) for t in every(4, 6)]
    assert next_interval(times, LIMITS, MIDDLE, now=T0) == 2 * 3600


def test_jitter_spans_plus_minus_the_configured_share() -> None:
    times = every(4, 6)
    low = next_interval(times, LIMITS, 0.0)
    high = next_interval(times, LIMITS, 0.999999)
    assert low == round(7200 * 0.9)
    assert high == pytest.approx(7200 * 1.1, abs=1)
    assert low < next_interval(times, LIMITS, 0.25) < 7200 < next_interval(times, LIMITS, 0.75)


def test_no_jitter_when_configured_off() -> None:
    limits = Limits(poll_jitter=0.0)
    assert next_interval(every(4, 6), limits, 0.0) == next_interval(every(4, 6), limits, 0.9)


@pytest.mark.parametrize("rand", [-0.1, 1.0, 2.0])
def test_rand_outside_the_unit_interval_is_refused(rand: float) -> None:
    with pytest.raises(ValueError):
        next_interval(every(4, 6), LIMITS, rand)


def test_push_interval_is_the_maximum() -> None:
    assert push_interval(LIMITS, MIDDLE) == LIMITS.max_poll_interval
    assert push_interval(LIMITS, 0.0) == round(LIMITS.max_poll_interval * 0.9)


def test_error_backoff_doubles_from_the_minimum() -> None:
    assert [error_backoff(n, LIMITS, MIDDLE) for n in range(1, 6)] == [300, 600, 1200, 2400, 4800]


def test_error_backoff_is_capped() -> None:
    assert error_backoff(9, LIMITS, MIDDLE) == 300 * 2**8
    assert error_backoff(10, LIMITS, MIDDLE) == LIMITS.max_error_backoff
    assert error_backoff(10_000, LIMITS, MIDDLE) == LIMITS.max_error_backoff


def test_error_backoff_zero_failures_is_the_minimum() -> None:
    assert error_backoff(0, LIMITS, MIDDLE) == LIMITS.min_poll_interval


def test_error_backoff_is_jittered() -> None:
    assert error_backoff(3, LIMITS, 0.0) == round(1200 * 0.9)
    assert error_backoff(3, LIMITS, 0.75) == round(1200 * 1.05)
