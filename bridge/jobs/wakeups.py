"""How a worker learns of jobs enqueued by other processes without waiting for its next poll.

A store that can tell offers ``listen_jobs`` (PostgreSQL: ``LISTEN``/``NOTIFY``,
:mod:`bridge.store.postgres.notices`; SQLite: datagrams between the processes sharing the file,
:mod:`bridge.store.sqlite.processes`); the worker runs it beside its claim loop and it sets the
process's ``ctx.jobs_ready``, as a local enqueue does. Polling every ``job_poll_interval``
stays the fallback either way.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Protocol, runtime_checkable

from bridge.context import BridgeContext


@runtime_checkable
class JobNoticeSource(Protocol):
    """A store that tells when jobs became claimable, in any process."""

    async def listen_jobs(self, wake: Callable[[], None]) -> None:
        """Call ``wake`` for each notice (and when listening starts), until cancelled."""
        ...


def start_listening(ctx: BridgeContext, name: str) -> asyncio.Task[None] | None:
    """Run the store's job notices into ``ctx.jobs_ready`` in a task; None when the store
    has none to give."""
    store = ctx.store
    if not isinstance(store, JobNoticeSource):
        return None
    return asyncio.create_task(store.listen_jobs(ctx.jobs_ready.set), name=name)
