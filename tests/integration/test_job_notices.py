"""Job notices on the real PostgreSQL: an enqueue in one store wakes the listeners of its
schema as it commits, a lost listening connection is logged and opened again, and a worker
on another store runs a job enqueued elsewhere long before its next poll."""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime

import aiohttp
import asyncpg
import pytest

from bridge.activitypub.urls import Urls
from bridge.context import BridgeContext
from bridge.federation.inbox import inbound_job
from bridge.jobs.worker import JobWorker
from bridge.store.base import Job
from bridge.store.postgres import PostgresStore
from bridge.store.records import NewInbound, NewJob
from tests.conftest import make_config
from tests.fakes.postgres import fresh_schema, migrated_store, postgres_url

pytestmark = pytest.mark.postgres

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
ACTOR = "https://m.example/users/jens"


@pytest.fixture
async def url() -> AsyncIterator[str]:
    async with fresh_schema(postgres_url()) as url:
        yield url


@pytest.fixture
async def writer(url: str) -> AsyncIterator[PostgresStore]:
    """The store that enqueues (standing for another process)."""
    async with migrated_store(url) as store:
        yield store


@pytest.fixture
def app_name() -> str:
    """The listening store's ``application_name``: how the test finds its connection."""
    return f"feedfed_notices_{secrets.token_hex(5)}"


@pytest.fixture
async def listener(url: str, writer: PostgresStore, app_name: str) -> AsyncIterator[PostgresStore]:
    """A second store on the same schema, its connections named ``app_name``."""
    store = await PostgresStore.open(f"{url}&application_name={app_name}")
    try:
        yield store
    finally:
        await store.close()


async def listening(app_name: str, not_pid: int | None = None) -> int:
    """The server pid of the connection named ``app_name`` that ran ``LISTEN`` (other than
    ``not_pid``), once there is one."""
    admin = await asyncpg.connect(postgres_url())
    try:
        async with asyncio.timeout(10):
            while True:
                pid = await admin.fetchval(
                    "SELECT pid FROM pg_stat_activity WHERE application_name = $1 "
                    "AND query LIKE 'LISTEN %' AND pid <> $2",
                    app_name,
                    not_pid or 0,
                )
                if pid is not None:
                    return int(pid)
                await asyncio.sleep(0.02)
    finally:
        await admin.close()


def job(n: int) -> NewJob:
    return NewJob("echo", {"n": n}, dedupe_key=f"echo:{n}")


async def woken_within(woken: asyncio.Event, seconds: float) -> None:
    await asyncio.wait_for(woken.wait(), seconds)
    woken.clear()


@asynccontextmanager
async def listening_jobs(listener: PostgresStore, app_name: str) -> AsyncIterator[asyncio.Event]:
    """``listener`` listening for job notices: the event is set by each one."""
    woken = asyncio.Event()
    task = asyncio.create_task(listener.listen_jobs(woken.set))
    try:
        await listening(app_name)
        await woken_within(woken, 5)  # listening started: look at the queue once
        yield woken
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def test_a_commit_wakes_the_listeners_of_its_schema_only(
    writer: PostgresStore, listener: PostgresStore, app_name: str
) -> None:
    async with listening_jobs(listener, app_name) as woken:
        async with fresh_schema(postgres_url()) as other_url, migrated_store(other_url) as other:
            assert await other.enqueue([job(1)], NOW) == 1
        async with writer.transaction():
            assert await writer.enqueue([job(1)], NOW) == 1
            await asyncio.sleep(0.3)
            assert not woken.is_set(), "woken by another schema, or before the commit"
        await woken_within(woken, 2)

        assert await writer.enqueue([job(1)], NOW) == 0  # nothing new: no notice
        await asyncio.sleep(0.3)
        assert not woken.is_set()

        claimed = await writer.claim_jobs(["echo"], NOW, 1, 60, "w")
        assert await writer.release_jobs("w", NOW) == 1  # claimable again: a notice
        await woken_within(woken, 2)
        await writer.bury_job(claimed[0].id, NOW, None, "x")
        assert await writer.requeue_dead(NOW) == 1
        await woken_within(woken, 2)


async def test_an_activity_stored_by_the_inbox_wakes_the_listeners(
    writer: PostgresStore, listener: PostgresStore, app_name: str
) -> None:
    # The inbox stores the activity and its job in one statement of its own, not through
    # enqueue: a web process's inbox must wake the worker processes all the same.
    async with listening_jobs(listener, app_name) as woken:
        note = NewInbound("m.example", "https://m.example/a/1", ACTOR, "Create", {}, None)
        assert await writer.store_inbound(note, inbound_job, NOW) is not None
        await woken_within(woken, 2)
        assert await writer.store_inbound(note, inbound_job, NOW) is None  # a duplicate
        await asyncio.sleep(0.3)
        assert not woken.is_set(), "woken by an activity that queued nothing"


async def test_a_lost_listening_connection_is_logged_and_opened_again(
    writer: PostgresStore,
    listener: PostgresStore,
    app_name: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="bridge.store.postgres.notices")
    woken = asyncio.Event()
    task = asyncio.create_task(
        listener.listen_jobs(woken.set, check_interval=0.5, retry_pause=0.05)
    )
    try:
        pid = await listening(app_name)
        await woken_within(woken, 5)
        admin = await asyncpg.connect(postgres_url())
        try:
            assert await admin.fetchval("SELECT pg_terminate_backend($1)", pid)
        finally:
            await admin.close()
        await listening(app_name, not_pid=pid)
        await woken_within(woken, 5)  # listening again: look at the queue once
        assert "job notice connection lost" in caplog.text
        assert not task.done()

        await writer.enqueue([job(1)], NOW)
        await woken_within(woken, 2)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def test_a_worker_runs_a_job_enqueued_elsewhere_long_before_its_next_poll(
    writer: PostgresStore,
    listener: PostgresStore,
    app_name: str,
    http: aiohttp.ClientSession,
    remote: aiohttp.ClientSession,
) -> None:
    config = make_config()
    ctx = BridgeContext(
        config=config, store=listener, http=http, remote=remote, urls=Urls(config.base_url)
    )
    ran: asyncio.Queue[Job] = asyncio.Queue()

    async def echo(ctx: BridgeContext, job: Job) -> int | None:
        await ran.put(job)
        return None

    # A poll every 10 minutes: within the test's seconds only a notice can wake the worker.
    worker = JobWorker(ctx, {"echo": echo}, worker_id="listening-worker", poll_interval=600)
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    try:
        await listening(app_name)
        await asyncio.sleep(0.2)  # the wake of listening's start has been claimed on
        for n in range(3):
            start = time.perf_counter()
            await writer.enqueue([job(n)], datetime.now(UTC))
            done = await asyncio.wait_for(ran.get(), 5)
            assert done.payload == {"n": n}
            assert time.perf_counter() - start < 2
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
    stored = await writer.list_jobs("done", limit=10)
    assert sorted(j.payload["n"] for j in stored) == [0, 1, 2]
    assert {j.claimed_by for j in stored} == {"listening-worker"}
