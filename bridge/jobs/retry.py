"""When to try a failed job again: Mastodon's delivery schedule, as a pure policy.

Mastodon delivers with Sidekiq (``ActivityPub::DeliveryWorker``, ``retry: 16``) and Sidekiq's
default backoff: before retry number ``count`` (0 for the first retry) it waits
``count ** 4 + 15 + rand(10) * (count + 1)`` seconds. Sixteen retries after the first attempt
add up to about 2.1 days (the jitter spreads a burst of failures so they do not come back in
step): long enough to ride out a server that is down over a weekend, short enough that a dead
one stops costing work. :data:`SIDEKIQ_SCHEDULE` lists the waits without jitter.

A server may ask for more patience with ``Retry-After`` (429, 503): honoured when it asks for
longer than the schedule would wait, capped at :attr:`RetryPolicy.max_retry_after` so a hostile
server cannot park our jobs forever.
"""

from __future__ import annotations

import email.utils
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

Rand = Callable[[int], int]
"""``rand(n)``: a whole number in ``[0, n)``, as Ruby's ``rand(n)``; injected in tests."""

SIDEKIQ_RETRIES = 16
JITTER_STEPS = 10
BASE_DELAY = 15
DEFAULT_MAX_RETRY_AFTER = 24 * 60 * 60


def backoff(count: int, rand: Rand = random.randrange) -> int:
    """Seconds before retry number ``count`` (0-based): Sidekiq's default formula."""
    if count < 0:
        raise ValueError(f"retry count cannot be negative: {count}")
    return count**4 + BASE_DELAY + rand(JITTER_STEPS) * (count + 1)


SIDEKIQ_SCHEDULE: tuple[int, ...] = tuple(
    backoff(count, lambda _n: 0) for count in range(SIDEKIQ_RETRIES)
)
"""The waits of the 16 retries without jitter: 15 s, 16 s, 31 s, … 50,640 s (14 h)."""


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently a failed job is retried.

    ``max_retries`` counts retries after the first attempt (so a job is tried at most
    ``max_retries + 1`` times); ``max_retry_after`` caps a server's ``Retry-After`` wish.
    """

    max_retries: int = SIDEKIQ_RETRIES
    max_retry_after: float = DEFAULT_MAX_RETRY_AFTER

    def delay(
        self, attempts: int, *, retry_after: float | None = None, rand: Rand = random.randrange
    ) -> float | None:
        """Seconds to wait after the failure of attempt number ``attempts`` (1-based).

        ``None`` when the retries are exhausted: the job is given up.
        """
        if self.gives_up_after(attempts):
            return None
        wait = float(backoff(attempts - 1, rand))
        if retry_after is not None and retry_after > wait:
            wait = min(retry_after, self.max_retry_after)
        return wait

    def gives_up_after(self, attempts: int) -> bool:
        """Whether a failure of attempt number ``attempts`` (1-based) is the job's last."""
        if attempts < 1:
            raise ValueError(f"a failure comes after at least one attempt, not {attempts}")
        return attempts - 1 >= self.max_retries

    def next_run(
        self,
        now: datetime,
        attempts: int,
        *,
        retry_after: float | None = None,
        rand: Rand = random.randrange,
    ) -> datetime | None:
        """When to try again after attempt ``attempts`` failed at ``now``; None: give up."""
        wait = self.delay(attempts, retry_after=retry_after, rand=rand)
        return None if wait is None else now + timedelta(seconds=wait)

    def total_wait(self) -> float:
        """Seconds from the first failure to the last retry, without jitter."""
        return float(sum(backoff(count, lambda _n: 0) for count in range(self.max_retries)))


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """``Retry-After`` (RFC 9110 Section 10.2.3) in seconds from ``now``; None if unusable.

    Both forms: delay-seconds (``120``) and an HTTP-date. A date in the past means "now" (0).
    """
    if value is None:
        return None
    text = value.strip()
    if text.isdigit():
        # Ten digits are three centuries: anything longer is garbage, not patience.
        return float(text) if len(text) <= 10 else None
    try:
        moment = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, (moment - now).total_seconds())
