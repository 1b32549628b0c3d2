"""Attempt outcomes, written to the queue in batches.

A worker records each finished attempt as an :class:`Outcome` and goes on at once; an
:class:`OutcomeRecorder` writes them, one transaction for all the outcomes that arrived
while the previous batch was being written, the successes in one statement
(``JobStore.finish_jobs``). This spares the queue a commit, and a statement, per job. A
written job is dropped from the worker's held jobs (it no longer needs its lease renewed).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from bridge.context import BridgeContext
from bridge.store.records import Job


@dataclass(frozen=True)
class Outcome:
    """How one attempt ended, waiting to be written to the queue."""

    job: Job
    state: Literal["done", "retry", "dead"]
    at: datetime
    status: int | None = None
    error: str | None = None
    run_at: datetime | None = None


class OutcomeRecorder:
    """Collects outcomes and writes them in batches to ``ctx.store``.

    ``held`` is the worker's map of the jobs it holds (by id); each job of a batch leaves it
    once the batch was written, or failed to be.
    """

    def __init__(self, ctx: BridgeContext, held: dict[int, Job]) -> None:
        self.ctx = ctx
        self._held = held
        self._outcomes: list[Outcome] = []
        self._ready = asyncio.Event()
        self._closing = False

    def open(self) -> None:
        """Accept outcomes again after :meth:`close` (a worker's new run)."""
        self._closing = False

    def close(self) -> None:
        """Make :meth:`run` return once it has written what it is writing."""
        self._closing = True
        self._ready.set()

    def record(self, outcome: Outcome) -> None:
        """Queue an outcome for the next batch."""
        self._outcomes.append(outcome)
        self._ready.set()

    async def run(self) -> None:
        """Write outcomes as they come, each batch in one transaction, until closed."""
        while not self._closing:
            await self._ready.wait()
            self._ready.clear()
            await self.flush()

    async def flush(self) -> None:
        """Write every outcome recorded so far, in one transaction."""
        batch, self._outcomes = self._outcomes, []
        if not batch:
            return
        store = self.ctx.store
        done = [(o.job.id, o.at, o.status) for o in batch if o.state == "done"]
        failed = [o for o in batch if o.state != "done"]
        try:
            if not failed:
                await store.finish_jobs(done)  # one statement: atomic by itself
                return
            async with store.transaction():
                await store.finish_jobs(done)
                for o in failed:
                    if o.state == "retry" and o.run_at is not None:
                        await store.retry_job(o.job.id, o.at, o.run_at, o.status, o.error)
                    else:
                        await store.bury_job(o.job.id, o.at, o.status, o.error)
        finally:
            # Written or not, these jobs are no longer ours to renew: if the write failed
            # they stay claimed and run again once their lease ends (or the worker restarts,
            # which the failure brings about). Late, but never lost.
            for o in batch:
                self._held.pop(o.job.id, None)
