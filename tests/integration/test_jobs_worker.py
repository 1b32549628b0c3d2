"""The job worker against a real SQLite queue: outcomes, leases, limits, wake-ups, shutdown."""

from __future__ import annotations

import argparse
import asyncio
import logging
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from bridge.commands import deliveries
from bridge.context import BridgeContext
from bridge.errors import Rejected, RetryLater, StoreError
from bridge.jobs import Handler
from bridge.jobs.retry import RetryPolicy
from bridge.jobs.worker import JobWorker, default_worker_id
from bridge.store.base import Job, NewJob
from bridge.store.sqlite import SQLiteStore
from tests.conftest import FakeClock, make_config


def no_jitter(n: int) -> int:
    return 0


@asynccontextmanager
async def working(
    ctx: BridgeContext, handlers: dict[str, Handler], **options: Any
) -> AsyncIterator[JobWorker]:
    """A worker running in the background for the block; stopped cleanly after it."""
    options.setdefault("worker_id", "test-worker")
    options.setdefault("poll_interval", 0.02)
    options.setdefault("rand", no_jitter)
    worker = JobWorker(ctx, handlers, **options)
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    try:
        yield worker
    finally:
        stop.set()
        await asyncio.wait_for(task, 5)


async def until(check: Callable[[], Awaitable[bool]], timeout: float = 3.0) -> None:
    async with asyncio.timeout(timeout):
        # The store has no change notification: look again every 10 ms.
        while True:
            if await check():
                return
            await asyncio.sleep(0.01)


async def job_in(ctx: BridgeContext, job_id: int, state: str) -> Job:
    found: list[Job] = []

    async def check() -> bool:
        job = await ctx.store.get_job(job_id)
        assert job is not None
        found[:] = [job]
        return job.state == state

    await until(check)
    return found[0]


async def enqueue(ctx: BridgeContext, *jobs: NewJob) -> list[int]:
    await ctx.store.enqueue(list(jobs), ctx.clock())
    rows = await ctx.store.list_jobs("queued", limit=1000)
    by_key = {job.dedupe_key: job.id for job in rows}
    return [by_key[job.dedupe_key] for job in jobs]


def job(n: int, host: str | None = None, kind: str = "echo") -> NewJob:
    return NewJob(kind, {"n": n}, dedupe_key=f"{kind}:{n}", host=host)


async def test_done_jobs_record_status_and_attempt(ctx: BridgeContext) -> None:
    seen: list[int] = []

    async def echo(ctx: BridgeContext, job: Job) -> int | None:
        seen.append(job.payload["n"])
        return 202

    ids = await enqueue(ctx, job(1), job(2), job(3))
    async with working(ctx, {"echo": echo}):
        done = [await job_in(ctx, job_id, "done") for job_id in ids]
    assert sorted(seen) == [1, 2, 3]
    assert all(j.attempts == 1 and j.last_status == 202 and j.lease_until is None for j in done)


async def test_retry_later_then_success_on_schedule(ctx: BridgeContext, clock: FakeClock) -> None:
    calls: list[int] = []

    async def flaky(ctx: BridgeContext, job: Job) -> int | None:
        calls.append(job.attempts)
        if len(calls) == 1:
            raise RetryLater("inbox answered 503", 503)
        return 200

    [job_id] = await enqueue(ctx, job(1))
    async with working(ctx, {"echo": flaky}):
        await until(lambda: _attempts(ctx, job_id, 1))
        queued = await job_in(ctx, job_id, "queued")
        assert queued.attempts == 1 and queued.last_status == 503
        assert queued.last_error == "inbox answered 503"
        assert queued.run_at == clock.now + timedelta(seconds=15)  # 0**4 + 15, no jitter
        await asyncio.sleep(0.1)
        assert calls == [0]  # not due yet
        clock.advance(15)
        done = await job_in(ctx, job_id, "done")
    assert calls == [0, 1]
    assert done.attempts == 2 and done.last_status == 200


async def _true(value: bool) -> bool:
    return value


async def test_retry_after_is_honoured(ctx: BridgeContext, clock: FakeClock) -> None:
    async def busy(ctx: BridgeContext, job: Job) -> int | None:
        raise RetryLater("slow down", 429, retry_after=600)

    [job_id] = await enqueue(ctx, job(1))
    async with working(ctx, {"echo": busy}):
        await until(lambda: _attempts(ctx, job_id, 1))
    queued = await ctx.store.get_job(job_id)
    assert queued is not None and queued.state == "queued"
    assert queued.run_at == clock.now + timedelta(seconds=600)
    assert queued.last_status == 429


async def _attempts(ctx: BridgeContext, job_id: int, count: int) -> bool:
    job = await ctx.store.get_job(job_id)
    return job is not None and job.attempts >= count and job.state != "running"


async def test_rejected_is_buried_at_once(ctx: BridgeContext) -> None:
    calls = Counter[int]()

    async def refuse(ctx: BridgeContext, job: Job) -> int | None:
        calls[job.id] += 1
        raise Rejected("inbox answered 404", 404)

    [job_id] = await enqueue(ctx, job(1))
    async with working(ctx, {"echo": refuse}):
        dead = await job_in(ctx, job_id, "dead")
        await asyncio.sleep(0.1)
    assert calls[job_id] == 1
    assert (
        dead.attempts == 1 and dead.last_status == 404 and dead.last_error == "inbox answered 404"
    )


async def test_exhausted_retries_bury_the_job(ctx: BridgeContext, clock: FakeClock) -> None:
    async def down(ctx: BridgeContext, job: Job) -> int | None:
        raise RetryLater("inbox answered 503", 503)

    [job_id] = await enqueue(ctx, job(1))
    async with working(ctx, {"echo": down}, retry_policy=RetryPolicy(max_retries=2)):
        for attempts in (1, 2):
            await until(lambda a=attempts: _attempts(ctx, job_id, a))  # type: ignore[misc]
            clock.advance(60)
        dead = await job_in(ctx, job_id, "dead")
    assert dead.attempts == 3 and dead.last_status == 503


async def test_a_handler_bug_is_logged_and_retried(
    ctx: BridgeContext, caplog: pytest.LogCaptureFixture
) -> None:
    async def buggy(ctx: BridgeContext, job: Job) -> int | None:
        raise KeyError("oops")

    [job_id] = await enqueue(ctx, job(1))
    with caplog.at_level(logging.INFO, logger="bridge.jobs.worker"):
        async with working(ctx, {"echo": buggy}):
            await until(lambda: _attempts(ctx, job_id, 1))
    queued = await ctx.store.get_job(job_id)
    assert queued is not None and queued.state == "queued"  # not lost
    assert queued.last_error == "KeyError: 'oops'"
    traced = [r for r in caplog.records if r.exc_info and "unexpected" in r.getMessage()]
    assert traced and "KeyError" in caplog.text
    outcome = [r.getMessage() for r in caplog.records if f"job {job_id} echo" in r.getMessage()]
    assert outcome and "attempt=1 retry in 15 s" in outcome[-1]


async def test_attempt_timeout_counts_as_a_failure(ctx: BridgeContext) -> None:
    async def hang(ctx: BridgeContext, job: Job) -> int | None:
        await asyncio.sleep(30)
        return 200

    [job_id] = await enqueue(ctx, job(1))
    async with working(ctx, {"echo": hang}, job_timeout=0.05):
        await until(lambda: _attempts(ctx, job_id, 1))
    queued = await ctx.store.get_job(job_id)
    assert queued is not None and queued.state == "queued"
    assert queued.last_error == "attempt took longer than 0.05 s"


async def test_expired_lease_of_another_worker_is_taken_over(
    ctx: BridgeContext, clock: FakeClock
) -> None:
    ran = asyncio.Event()

    async def echo(ctx: BridgeContext, job: Job) -> int | None:
        ran.set()
        return None

    [job_id] = await enqueue(ctx, job(1))
    [claimed] = await ctx.store.claim_jobs(["echo"], clock.now, 1, 60, "died-worker")
    assert claimed.id == job_id
    async with working(ctx, {"echo": echo}):
        await asyncio.sleep(0.15)
        assert not ran.is_set()  # the other worker's lease still holds
        clock.advance(61)
        ctx.jobs_ready.set()
        done = await job_in(ctx, job_id, "done")
    assert done.claimed_by == "test-worker"


async def test_start_takes_back_jobs_of_its_earlier_life(
    ctx: BridgeContext, clock: FakeClock
) -> None:
    ran = asyncio.Event()

    async def echo(ctx: BridgeContext, job: Job) -> int | None:
        ran.set()
        return None

    [job_id] = await enqueue(ctx, job(1))
    # The same worker id claimed it with a long lease, then the process was killed.
    await ctx.store.claim_jobs(["echo"], clock.now, 1, 3600, "test-worker")
    async with working(ctx, {"echo": echo}):
        await asyncio.wait_for(ran.wait(), 2)
        await job_in(ctx, job_id, "done")


async def test_stop_waits_for_running_jobs_and_releases_the_rest(ctx: BridgeContext) -> None:
    started = asyncio.Event()
    quick_done = asyncio.Event()

    async def handler(ctx: BridgeContext, job: Job) -> int | None:
        if job.payload["n"] == 1:
            started.set()
            await asyncio.sleep(0.1)
            quick_done.set()
            return 200
        await asyncio.sleep(60)
        return 200

    quick, stuck = await enqueue(ctx, job(1), job(2))
    worker = JobWorker(
        ctx, {"echo": handler}, worker_id="w", poll_interval=0.02, shutdown_grace=0.3
    )
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    await asyncio.wait_for(started.wait(), 2)
    stop.set()
    await asyncio.wait_for(task, 3)
    assert quick_done.is_set()
    finished = await ctx.store.get_job(quick)
    released = await ctx.store.get_job(stuck)
    assert finished is not None and finished.state == "done"
    assert released is not None and released.state == "queued"
    assert released.claimed_by is None and released.attempts == 0  # no attempt was counted


async def test_per_host_limit_keeps_a_slow_host_from_starving_the_rest(
    ctx: BridgeContext,
) -> None:
    gate = asyncio.Event()
    running: Counter[str] = Counter()
    peak: Counter[str] = Counter()
    b_done = asyncio.Event()
    finished: list[str] = []

    async def handler(ctx: BridgeContext, job: Job) -> int | None:
        host = job.host or "-"
        running[host] += 1
        peak[host] = max(peak[host], running[host])
        try:
            if host == "slow.test":
                await gate.wait()
            finished.append(host)
            if finished.count("fast.test") == 3:
                b_done.set()
            return 200
        finally:
            running[host] -= 1

    slow = [job(n, "slow.test") for n in range(12)]
    fast = [job(100 + n, "fast.test") for n in range(3)]
    await enqueue(ctx, *slow, *fast)  # the slow host's jobs are due first
    async with working(ctx, {"echo": handler}, concurrency=8, per_host_limit=2):
        await asyncio.wait_for(b_done.wait(), 2)  # while the slow host holds its two slots
        assert running["slow.test"] == 2 and "slow.test" not in finished
        gate.set()
        await until(lambda: _true(len(finished) == 15))
    assert peak["slow.test"] == 2 and peak["fast.test"] <= 2


async def test_concurrency_bounds_jobs_without_a_host(ctx: BridgeContext) -> None:
    running = 0
    peak = 0

    async def handler(ctx: BridgeContext, job: Job) -> int | None:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.02)
        running -= 1
        return None

    ids = await enqueue(ctx, *(job(n) for n in range(12)))
    async with working(ctx, {"echo": handler}, concurrency=3):
        for job_id in ids:
            await job_in(ctx, job_id, "done")
    assert peak == 3


async def test_enqueueing_wakes_an_idle_worker_at_once(ctx: BridgeContext) -> None:
    ran = asyncio.Event()

    async def echo(ctx: BridgeContext, job: Job) -> int | None:
        ran.set()
        return None

    async with working(ctx, {"echo": echo}, poll_interval=30):
        await asyncio.sleep(0.1)  # idle: asleep for 30 s unless woken
        await ctx.store.enqueue([job(1)], ctx.clock())
        ctx.jobs_ready.set()
        await asyncio.wait_for(ran.wait(), 1)


async def test_only_kinds_with_a_handler_are_claimed(ctx: BridgeContext) -> None:
    async def echo(ctx: BridgeContext, job: Job) -> int | None:
        return None

    mine, other = await enqueue(ctx, job(1), job(2, kind="other"))
    async with working(ctx, {"echo": echo}):
        await job_in(ctx, mine, "done")
    untouched = await ctx.store.get_job(other)
    assert untouched is not None and untouched.state == "queued" and untouched.attempts == 0


async def test_worker_from_config_and_ids() -> None:
    sqlite = make_config(database={"url": "sqlite:///x.db"})
    postgres = make_config(database={"url": "postgresql://db/feedfed"})
    assert default_worker_id(sqlite) == default_worker_id(sqlite)  # stable: restarts reclaim
    assert default_worker_id(postgres) != default_worker_id(postgres)
    # A `feedfed worker`'s kinds are part of its stable id (in any order); serve's has none.
    inbound = default_worker_id(sqlite, ["inbound", "deliver"])
    assert inbound == default_worker_id(sqlite, ["deliver", "inbound"])
    assert inbound.endswith("/sqlite/deliver,inbound")
    assert len({default_worker_id(sqlite), inbound, default_worker_id(sqlite, ["push"])}) == 3


async def test_leases_of_running_jobs_are_renewed(ctx: BridgeContext, clock: FakeClock) -> None:
    release = asyncio.Event()
    started = asyncio.Event()

    async def long(ctx: BridgeContext, job: Job) -> int | None:
        started.set()
        await release.wait()
        return None

    [job_id] = await enqueue(ctx, job(1))
    async with working(ctx, {"echo": long}, lease_seconds=0.3):
        await asyncio.wait_for(started.wait(), 2)
        clock.advance(10)  # far past the first lease
        expected = clock.now + timedelta(seconds=0.3)

        async def renewed() -> bool:
            running = await ctx.store.get_job(job_id)
            return running is not None and running.lease_until == expected

        await until(renewed)
        # Renewed, so nobody else may take it over meanwhile.
        assert await ctx.store.claim_jobs(["echo"], clock.now, 5, 60, "other") == []
        release.set()
        await job_in(ctx, job_id, "done")


async def test_old_finished_jobs_are_pruned(ctx: BridgeContext, clock: FakeClock) -> None:
    async def echo(ctx: BridgeContext, job: Job) -> int | None:
        return None

    old, recent = await enqueue(ctx, job(1), job(2))
    await ctx.store.finish_job(old, clock.now - timedelta(days=8))
    await ctx.store.finish_job(recent, clock.now - timedelta(days=6))
    async with working(ctx, {"echo": echo}, lease_seconds=0.3, retention=7 * 86400):

        async def pruned() -> bool:
            return await ctx.store.get_job(old) is None

        await until(pruned)
    assert await ctx.store.get_job(recent) is not None


async def test_deliveries_status_and_retry_commands(
    ctx: BridgeContext, clock: FakeClock, capsys: pytest.CaptureFixture[str]
) -> None:
    parser = argparse.ArgumentParser(prog="feedfed")
    deliveries.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["deliveries", "status", "--dead", "5"])
    assert await args.action(args)(ctx) == 0
    assert "queue\n  empty" in capsys.readouterr().out

    inbox = "https://down.example/inbox"
    payload = {"blog": "b", "inbox": inbox, "activity_id": "https://bridge.example/a/1"}
    await ctx.store.enqueue(
        [
            NewJob("deliver", payload, "deliver:1", "down.example"),
            NewJob("deliver", {**payload, "inbox": "https://ok.example/inbox"}, "deliver:2"),
            NewJob("fanout", {"blog_id": 1}, "fanout:1"),
        ],
        clock.now,
    )
    [dead] = await ctx.store.claim_jobs(["deliver"], clock.now, 1, 60, "w")
    await ctx.store.bury_job(dead.id, clock.now, 404, "https://down.example/inbox answered 404")
    await ctx.store.record_host_failure("down.example", clock.now - timedelta(days=8))
    await ctx.store.mark_host_unavailable("down.example", clock.now)
    assert await args.action(args)(ctx) == 0
    out = capsys.readouterr().out
    assert "deliver  queued 1, dead 1, oldest due 2026-11-28T12:00:00+00:00" in out
    assert "fanout   queued 1" in out
    assert "down.example  UNAVAILABLE (skipped until heard from), 1 failures since" in out
    assert f"#{dead.id} deliver to {inbox} activity https://bridge.example/a/1" in out
    assert "after 1 attempts, last status 404" in out and "answered 404" in out
    assert "feedfed deliveries retry" in out

    retry = parser.parse_args(["deliveries", "retry", "--kind", "deliver", "--host", inbox])
    assert await retry.action(retry)(ctx) == 0
    out = capsys.readouterr().out
    assert "down.example: 1 failures forgotten" in out and "1 dead deliver jobs queued again" in out
    requeued = await ctx.store.get_job(dead.id)
    assert requeued is not None and requeued.state == "queued" and requeued.attempts == 0
    host = await ctx.store.get_host("down.example")
    assert host is not None and not host.unavailable and host.failures == 0
    assert await retry.action(retry)(ctx) == 0
    out = capsys.readouterr().out
    assert "down.example: no failures known" in out and "no dead deliver jobs to retry" in out


async def test_a_worker_can_run_again_after_it_stopped(ctx: BridgeContext) -> None:
    async def echo(ctx: BridgeContext, job: Job) -> int | None:
        return None

    worker = JobWorker(ctx, {"echo": echo}, worker_id="again", poll_interval=0.02)
    for n in (1, 2):
        [job_id] = await enqueue(ctx, job(n))
        stop = asyncio.Event()
        task = asyncio.create_task(worker.run(stop))
        await job_in(ctx, job_id, "done")
        stop.set()
        await asyncio.wait_for(task, 2)


async def test_a_failing_store_stops_the_worker_and_loses_no_job(
    ctx: BridgeContext, tmp_path: Path
) -> None:
    ran: list[int] = []

    async def closes_the_store(ctx: BridgeContext, job: Job) -> int | None:
        ran.append(job.id)
        if len(ran) == 1:
            await ctx.store.close()  # the database goes away while the job runs
        return 200

    [job_id] = await enqueue(ctx, job(1))
    worker = JobWorker(ctx, {"echo": closes_the_store}, worker_id="w", poll_interval=0.02)
    with pytest.raises(StoreError, match="closed"):
        await asyncio.wait_for(worker.run(asyncio.Event()), 3)

    # The supervisor starts it again (here: with the database back): the job is redone.
    reopened = await SQLiteStore.open(str(tmp_path / "feedfed.db"))
    try:
        again = replace(ctx, store=reopened)
        stuck = await reopened.get_job(job_id)
        assert stuck is not None and stuck.state == "running"  # its outcome never got written
        async with working(again, {"echo": closes_the_store}, worker_id="w"):
            await job_in(again, job_id, "done")
        assert ran == [job_id, job_id]
    finally:
        await reopened.close()


async def test_the_next_jobs_are_claimed_ahead_but_never_more_than_twice_the_slots(
    ctx: BridgeContext,
) -> None:
    """With every slot busy the worker already holds the jobs that follow (a finished job's
    successor starts without a round trip to the queue), but no more than ``concurrency``
    of them, and a host at its limit gets nothing claimed beyond it."""
    release = asyncio.Event()
    running = 0
    peak = 0

    async def handler(ctx: BridgeContext, job: Job) -> int | None:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await release.wait()
        running -= 1
        return 200

    hostless = [job(n) for n in range(10)]
    one_host = [job(100 + n, "one.test") for n in range(6)]
    await enqueue(ctx, *hostless, *one_host)
    async with working(ctx, {"echo": handler}, concurrency=3, per_host_limit=2):

        async def held() -> int:
            counts = {(c.kind, c.state): c.count for c in await ctx.store.job_counts()}
            return counts.get(("echo", "running"), 0)

        await until(lambda: _true(running == 3))
        await asyncio.sleep(0.1)  # time for any further claim
        assert await held() == 6, "3 running and 3 more ready"
        release.set()
        await until(lambda: _true_async_count(ctx, "done", 16))
    assert peak == 3


async def _true_async_count(ctx: BridgeContext, state: str, count: int) -> bool:
    counts = {(c.kind, c.state): c.count for c in await ctx.store.job_counts()}
    return counts.get(("echo", state), 0) == count


async def test_a_batch_of_outcomes_mixing_success_and_failure_is_written_whole(
    ctx: BridgeContext,
) -> None:
    async def handler(ctx: BridgeContext, job: Job) -> int | None:
        n = job.payload["n"]
        if n % 3 == 1:
            raise RetryLater("busy", 503)
        if n % 3 == 2:
            raise Rejected("gone", 404)
        return 202

    ids = await enqueue(ctx, *(job(n) for n in range(9)))
    async with working(ctx, {"echo": handler}):
        for n, job_id in enumerate(ids):
            state = ("done", "queued", "dead")[n % 3]
            if state == "queued":
                found = await job_in(ctx, job_id, "queued")
                assert found.attempts == 1 and found.last_status == 503
            else:
                found = await job_in(ctx, job_id, state)
                assert found.last_status == (202 if state == "done" else 404)
