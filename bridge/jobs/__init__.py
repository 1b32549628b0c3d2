"""Durable background work: job kinds, the handler contract, the worker and the retry policy.

A job is a row in the store (:class:`~bridge.store.records.Job`) with its own history. A
handler runs one attempt::

    async def handler(ctx: BridgeContext, job: Job) -> int | None

Returning means done (the value, an HTTP status or None, is kept as the job's last status);
raising :class:`~bridge.errors.RetryLater` asks for another attempt on the
:mod:`bridge.jobs.retry` schedule; raising :class:`~bridge.errors.Rejected` buries the job
(dead until ``feedfed deliveries retry``). Anything else a handler raises is a bug: the worker
logs its traceback and retries the job, which is never lost.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from bridge.context import BridgeContext
from bridge.store.records import Job

Handler = Callable[[BridgeContext, Job], Awaitable[int | None]]

FANOUT = "fanout"
"""Split one outgoing activity into one ``deliver`` job per follower inbox."""

DELIVER = "deliver"
"""Sign and POST one activity to one inbox."""

INBOUND = "inbound"
"""Process one activity received at an inbox (``bridge.federation.dispatch``)."""

PUSH = "push"
"""Publish, update or withdraw one comment or linkback in the blog (``bridge.backfeed.push``)."""

__all__ = ["DELIVER", "FANOUT", "INBOUND", "PUSH", "Handler"]
