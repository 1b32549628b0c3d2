"""The worker loop: claim due jobs, run their handlers concurrently, record each outcome.

One :class:`JobWorker` per process runs every job kind it has a handler for:

* it claims batches under a lease (``JobStore.claim_jobs``) and renews the lease of every job
  it holds, so a job whose process died is taken over once the lease runs out;
* at most ``concurrency`` jobs run at once, and at most ``per_host_limit`` of them talk to the
  same remote host: a slow server cannot hold every slot. Claimed jobs wait in a small local
  buffer until they may start (:mod:`bridge.jobs.slots`);
* outcomes: a handler that returns is done; :class:`~bridge.errors.RetryLater` is retried on
  the :class:`~bridge.jobs.retry.RetryPolicy` schedule (buried once exhausted);
  :class:`~bridge.errors.Rejected` is buried at once; any other exception is a bug: logged with
  its traceback and retried like a transient failure, so no job is ever lost to one;
* every attempt is counted in ``ctx.metrics`` by kind and outcome, deliveries also by the
  host class of their answer (:func:`bridge.metrics.host_class`);
* outcomes are written in batches (:mod:`bridge.jobs.outcomes`): a job's slot is free at
  once, the job stays claimed until its outcome is stored;
* it wakes when this process enqueues (``ctx.jobs_ready``), when another one does and the
  store can tell (PostgreSQL ``NOTIFY``, :mod:`bridge.jobs.wakeups`), when a slot frees up,
  or every ``poll_interval`` seconds (retries come due with time, and notices are only a
  shortcut);
* on stop it claims nothing more, lets running jobs finish for ``shutdown_grace`` seconds,
  cancels the rest, stores the outcomes it has and puts every job it still holds back in the
  queue.

A failing store stops the worker with the store's error (after releasing what it can): the
application's supervisor logs it and starts the worker again after a pause.

Restarts: on SQLite a worker's id is stable (:func:`default_worker_id`: the host, and the
kinds of a ``feedfed worker``) and the worker releases, at start, what an earlier life of that
id left running (a SIGKILL mid-delivery is redone at once, not after the lease); the store
lets one live process hold an id (:meth:`JobWorker.hold_id`). With a shared PostgreSQL every
process has its own id and orphaned jobs come back when their lease ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import socket
import uuid
from collections.abc import Collection, Mapping
from datetime import timedelta
from typing import Literal, Protocol, runtime_checkable

from bridge.config import Config
from bridge.context import BridgeContext
from bridge.errors import Rejected, RetryLater
from bridge.jobs import DELIVER, Handler
from bridge.jobs.outcomes import Outcome, OutcomeRecorder
from bridge.jobs.retry import Rand, RetryPolicy
from bridge.jobs.slots import JobSlots
from bridge.jobs.wakeups import start_listening
from bridge.store.records import Job

log = logging.getLogger(__name__)

PRUNE_INTERVAL = 60 * 60.0
"""Seconds between deletions of old finished jobs."""


def default_worker_id(config: Config, kinds: Collection[str] | None = None) -> str:
    """A worker id for this process: unique on PostgreSQL; stable on SQLite, where
    ``kinds`` (a ``feedfed worker``'s) tell its worker from ``feedfed serve``'s."""
    host = socket.gethostname()
    if config.database_url.startswith("sqlite:"):
        return f"{host}/sqlite" if kinds is None else f"{host}/sqlite/{','.join(sorted(kinds))}"
    return f"{host}/{os.getpid()}/{uuid.uuid4().hex[:8]}"


@runtime_checkable
class WorkerIdLocks(Protocol):
    """A store whose worker ids are stable and must be held by one live process (SQLite)."""

    def hold_worker_id(self, worker_id: str) -> None:
        """Hold the id for this process; raise :class:`~bridge.errors.StoreError` while
        another process holds it."""
        ...


class JobWorker:
    """Runs the jobs of the kinds in ``handlers`` until told to stop (see the module docstring).

    Durations are seconds. ``job_timeout`` bounds one attempt of any handler;
    ``retention`` is how long finished jobs are kept before they are pruned (None: never).
    """

    def __init__(
        self,
        ctx: BridgeContext,
        handlers: Mapping[str, Handler],
        *,
        worker_id: str,
        concurrency: int = 32,
        per_host_limit: int = 4,
        lease_seconds: float = 300.0,
        poll_interval: float = 1.0,
        retry_policy: RetryPolicy | None = None,
        job_timeout: float = 300.0,
        shutdown_grace: float = 10.0,
        retention: float | None = 7 * 24 * 60 * 60.0,
        rand: Rand = random.randrange,
    ) -> None:
        if not handlers:
            raise ValueError("a worker needs at least one handler")
        self.ctx = ctx
        self.handlers = dict(handlers)
        self.worker_id = worker_id
        self.slots = JobSlots(concurrency, per_host_limit)
        self.lease_seconds = lease_seconds
        self.poll_interval = poll_interval
        self.retry_policy = retry_policy or RetryPolicy()
        self.job_timeout = job_timeout
        self.shutdown_grace = shutdown_grace
        self.retention = retention
        self.rand = rand
        self._held: dict[int, Job] = {}  # claimed by us: running or waiting for a host slot
        self._freed = asyncio.Event()
        self._outcomes = OutcomeRecorder(ctx, self._held)
        # Claim in batches: with few slots free, wait for more rather than pay one claim
        # (a write) per finished job.
        self._refill = max(1, concurrency // 4)

    @classmethod
    def from_config(
        cls, ctx: BridgeContext, handlers: Mapping[str, Handler], worker_id: str | None = None
    ) -> JobWorker:
        """A worker with the ``[limits]`` of the context's configuration."""
        limits = ctx.config.limits
        return cls(
            ctx,
            handlers,
            worker_id=worker_id or default_worker_id(ctx.config),
            concurrency=limits.worker_concurrency,
            per_host_limit=limits.per_host_concurrency,
            lease_seconds=limits.job_lease_seconds,
            poll_interval=limits.job_poll_interval,
            retry_policy=RetryPolicy(max_retries=limits.delivery_retries),
            retention=limits.done_job_retention,
        )

    def hold_id(self) -> None:
        """Make sure no other live process works under this worker's id (SQLite: the id is
        stable); raises :class:`~bridge.errors.StoreError` if one does. :meth:`run` does
        this too; a process calls it first to refuse to start rather than retry."""
        if isinstance(self.ctx.store, WorkerIdLocks):
            self.ctx.store.hold_worker_id(self.worker_id)

    async def run(self, stop: asyncio.Event) -> None:
        """Work until ``stop`` is set, then shut down cleanly (see the module docstring).

        May be called again after it returned (a supervisor restarting a crashed worker).
        """
        self.hold_id()
        self._outcomes.open()
        store = self.ctx.store
        released = await store.release_jobs(self.worker_id, self.ctx.clock())
        if released:
            log.warning(
                "worker %s took back %d jobs an earlier run left unfinished",
                self.worker_id,
                released,
            )
        upkeep = asyncio.create_task(self._upkeep(), name=f"jobs-upkeep-{self.worker_id}")
        recorder = asyncio.create_task(self._outcomes.run(), name=f"jobs-record-{self.worker_id}")
        listener = start_listening(self.ctx, f"jobs-listen-{self.worker_id}")
        log.info(
            "worker %s started kinds=%s concurrency=%d per_host=%d",
            self.worker_id,
            ",".join(sorted(self.handlers)),
            self.slots.concurrency,
            self.slots.per_host_limit,
        )
        helpers = (upkeep, recorder) if listener is None else (upkeep, recorder, listener)
        try:
            while not stop.is_set():
                for helper in helpers:
                    if helper.done():
                        helper.result()  # the store failed under it: stop, and say why
                self.ctx.jobs_ready.clear()
                self._freed.clear()
                timeout: float | None = None  # nearly full: wait for slots, not for time
                if self.slots.wanted() >= self._refill:
                    if not await self._claim():
                        continue  # a full batch: more may be due
                    timeout = self.poll_interval
                await self._sleep(stop, timeout, helpers)
        finally:
            for helper in helpers:
                if helper is not recorder and not helper.done():
                    helper.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await helper
            await self._shutdown(recorder)

    # claiming and starting

    async def _claim(self) -> bool:
        """Claim what fits; True when the queue had no more due jobs for us."""
        limit = self.slots.wanted()
        if limit <= 0:
            return False
        jobs = await self.ctx.store.claim_jobs(
            self.handlers.keys(),
            self.ctx.clock(),
            limit,
            self.lease_seconds,
            self.worker_id,
            skip_hosts=self.slots.busy_hosts(),
        )
        for job in jobs:
            self._held[job.id] = job
        self.slots.add(jobs)
        self._start_ready()
        return len(jobs) < limit

    def _start_ready(self) -> None:
        for job in self.slots.ready():
            self._start(job)

    def _start(self, job: Job) -> None:
        task = asyncio.create_task(self._attempt(job), name=f"job-{job.id}-{job.kind}")
        self.slots.started(task, job)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        job = self.slots.finished(task)
        if task.cancelled():
            self._held.pop(job.id, None)  # released at shutdown
        elif (error := task.exception()) is not None:
            # The worker's own bookkeeping failed: no outcome; the job stays claimed until
            # its lease ends (or this worker restarts), then it runs again.
            self._held.pop(job.id, None)
            log.error("job %d (%s): no outcome: %r", job.id, job.kind, error, exc_info=error)
        self._start_ready()
        # The claim loop wakes only when a batch is worth claiming: waking it for every
        # finished job would cost more loop time than the job's own bookkeeping.
        if self.slots.wanted() >= self._refill:
            self._freed.set()

    async def _sleep(
        self, stop: asyncio.Event, timeout: float | None, helpers: tuple[asyncio.Task[None], ...]
    ) -> None:
        waits = [
            asyncio.create_task(event.wait()) for event in (stop, self.ctx.jobs_ready, self._freed)
        ]
        try:
            await asyncio.wait(
                [*waits, *helpers], timeout=timeout, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            for waiter in waits:
                waiter.cancel()

    # one attempt

    async def _attempt(self, job: Job) -> None:
        handler = self.handlers[job.kind]
        attempt = job.attempts + 1
        started = asyncio.get_running_loop().time()
        try:
            async with asyncio.timeout(self.job_timeout):
                status = await handler(self.ctx, job)
        except RetryLater as exc:
            self._retry(job, attempt, exc.status, str(exc), exc.retry_after, started, exc)
        except Rejected as exc:
            self._outcomes.record(Outcome(job, "dead", self.ctx.clock(), exc.status, str(exc)))
            self._log(job, attempt, "rejected", exc.status, started, str(exc))
            self._count(job, "dead", started, exc.status, exc)
        except TimeoutError as exc:
            error = f"attempt took longer than {self.job_timeout:g} s"
            self._retry(job, attempt, None, error, None, started, exc)
        except Exception as exc:
            # A bug in a handler: keep the traceback, and keep the job (it is retried).
            log.exception("job %d (%s) failed with an unexpected error", job.id, job.kind)
            self._retry(job, attempt, None, f"{type(exc).__name__}: {exc}", None, started, exc)
        else:
            self._outcomes.record(Outcome(job, "done", self.ctx.clock(), status))
            self._log(job, attempt, "done", status, started)
            self._count(job, "done", started, status)

    def _retry(
        self,
        job: Job,
        attempt: int,
        status: int | None,
        error: str,
        retry_after: float | None,
        started: float,
        exc: BaseException,
    ) -> None:
        now = self.ctx.clock()
        run_at = self.retry_policy.next_run(now, attempt, retry_after=retry_after, rand=self.rand)
        if run_at is None:
            self._outcomes.record(Outcome(job, "dead", now, status, error))
            self._log(job, attempt, "gave up", status, started, error)
            self._count(job, "dead", started, status, exc)
            return
        self._outcomes.record(Outcome(job, "retry", now, status, error, run_at))
        wait = (run_at - now).total_seconds()
        self._log(job, attempt, f"retry in {wait:.0f} s", status, started, error)
        self._count(job, "retry", started, status, exc)

    def _count(
        self,
        job: Job,
        outcome: Literal["done", "retry", "dead"],
        started: float,
        status: int | None,
        exc: BaseException | None = None,
    ) -> None:
        """Count the attempt in the process's metrics; deliveries also by host class."""
        metrics = self.ctx.metrics
        metrics.count_job(job.kind, outcome, asyncio.get_running_loop().time() - started)
        if job.kind == DELIVER:
            metrics.count_delivery(outcome, status, exc)

    def _log(
        self,
        job: Job,
        attempt: int,
        outcome: str,
        status: int | None,
        started: float,
        error: str | None = None,
    ) -> None:
        elapsed = asyncio.get_running_loop().time() - started
        level = logging.INFO if outcome == "done" else logging.WARNING
        log.log(
            level,
            "job %d %s host=%s attempt=%d %s status=%s %.3fs%s",
            job.id,
            job.kind,
            job.host or "-",
            attempt,
            outcome,
            status if status is not None else "-",
            elapsed,
            f" error={error[:300]}" if error else "",
        )

    # leases, pruning, shutdown

    async def _upkeep(self) -> None:
        """Renew the leases of held jobs; now and then delete old finished jobs."""
        interval = max(self.lease_seconds / 3, 0.05)
        loop = asyncio.get_running_loop()
        next_prune = loop.time()
        while True:
            await asyncio.sleep(interval)
            await self._renew_leases()
            if self.retention is not None and loop.time() >= next_prune:
                next_prune = loop.time() + PRUNE_INTERVAL
                before = self.ctx.clock() - timedelta(seconds=self.retention)
                pruned = await self.ctx.store.prune_jobs(before)
                if pruned:
                    log.info("pruned %d finished jobs older than %s", pruned, before)

    async def _renew_leases(self) -> None:
        until = self.ctx.clock() + timedelta(seconds=self.lease_seconds)
        for job in list(self._held.values()):
            if await self.ctx.store.extend_lease(job.id, self.worker_id, until):
                continue
            log.warning("job %d (%s): lease lost, another worker may run it", job.id, job.kind)
            if self.slots.drop_waiting(job):
                self._held.pop(job.id, None)

    async def _shutdown(self, recorder: asyncio.Task[None]) -> None:
        self.slots.clear_waiting()
        if self.slots.running:
            _, late = await asyncio.wait(list(self.slots.running), timeout=self.shutdown_grace)
            for task in late:
                task.cancel()
            if late:
                await asyncio.wait(late)
                log.warning("worker %s cancelled %d unfinished jobs", self.worker_id, len(late))
        # Not cancelled: a batch cut off mid-transaction would be rolled back and redone.
        self._outcomes.close()
        if not recorder.done():
            await recorder
        await self._outcomes.flush()
        released = await self.ctx.store.release_jobs(self.worker_id, self.ctx.clock())
        self._held.clear()
        log.info("worker %s stopped; %d jobs back in the queue", self.worker_id, released)
