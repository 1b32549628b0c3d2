"""When to poll a feed next: adaptive to the blog's posting rate, backing off on errors.

Pure functions. Randomness comes in as ``rand`` (a number in ``[0, 1)``) so that callers pass
``random.random()`` and tests pass fixed values.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from itertools import pairwise
from statistics import median

from bridge.config import Limits

# Enough posts to see a rhythm, few enough that a blog changing pace is noticed soon.
RECENT_POSTS = 20

# 2**30 times any sane minimum interval is far beyond any cap; stops the power from growing
# without bound after months of failures.
MAX_BACKOFF_EXPONENT = 30


def next_interval(
    published_times: Sequence[datetime],
    limits: Limits,
    rand: float,
    *,
    now: datetime | None = None,
) -> int:
    """Seconds until the next poll, from when the blog's recent posts were published.

    The base is half the median gap between the most recent posts (a blog posting daily is
    polled twice a day), so on average a new post is seen within a quarter of the blog's rhythm.
    When ``now`` is given, the current silence counts too: a blog quiet for longer than its
    usual gap is polled as if that silence were its gap, so dormant blogs slow down.
    With fewer than two distinct times there is no rhythm and the maximum interval applies.
    The base is clamped to ``[min_poll_interval, max_poll_interval]`` and then jittered by
    ``±poll_jitter`` so that blogs added together do not stay in lockstep.
    """
    times = sorted({_aware(t) for t in published_times}, reverse=True)[:RECENT_POSTS]
    if len(times) < 2:
        base = float(limits.max_poll_interval)
    else:
        gaps = [(newer - older).total_seconds() for newer, older in pairwise(times)]
        gap = median(gaps)
        if now is not None:
            gap = max(gap, (_aware(now) - times[0]).total_seconds())
        base = gap / 2
    clamped = min(max(base, limits.min_poll_interval), limits.max_poll_interval)
    return _jitter(clamped, limits.poll_jitter, rand)


def push_interval(limits: Limits, rand: float) -> int:
    """Seconds until the next poll of a feed whose hub pushes: the maximum interval, jittered.

    The poll is only a safety net for pushes the hub failed to send.
    """
    return _jitter(float(limits.max_poll_interval), limits.poll_jitter, rand)


def error_backoff(failures: int, limits: Limits, rand: float) -> int:
    """Seconds until the next attempt after ``failures`` consecutive failed polls.

    Doubles from ``min_poll_interval`` (the first failure waits that long), capped at
    ``max_error_backoff``, then jittered by ``±poll_jitter``.
    """
    exponent = min(max(failures - 1, 0), MAX_BACKOFF_EXPONENT)
    base = min(limits.min_poll_interval * 2**exponent, limits.max_error_backoff)
    return _jitter(float(base), limits.poll_jitter, rand)


def _jitter(seconds: float, jitter: float, rand: float) -> int:
    if not 0 <= rand < 1:
        raise ValueError(f"rand must be in [0, 1), got {rand}")
    factor = 1 + jitter * (2 * rand - 1)
    return max(1, round(seconds * factor))


def _aware(value: datetime) -> datetime:
    # Feeds without a zone in their dates come out naive; reading them as UTC keeps the
    # arithmetic possible and is what feedparser assumes.
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
