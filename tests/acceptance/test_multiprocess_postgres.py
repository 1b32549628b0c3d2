"""Two web processes and two workers on one PostgreSQL deliver one post to 2,000 inboxes on
200 hosts, and one worker is killed (SIGKILL) midway: every inbox still gets the post, and
only what the dead worker held at the kill may come twice.

The real ``feedfed`` runs in four subprocesses against one fresh schema: ``serve
--no-workers`` twice (two ports, one public base URL) and ``worker --kinds
deliver,fanout,inbound`` twice. The store is seeded before any of them starts (a blog, 2,000
accepted followers with personal inboxes, ten on each of 200 fake hosts at 127.0.0.2 …
127.0.0.201, and a new post recorded with its fan-out job), as if a poller had just found
the post. The hosts check every signature with the blog's key, which they fetch from the
two web processes in turns, and answer after 30 ms, so the kill lands mid-delivery.

The job lease is 5 s: the surviving worker takes the dead one's jobs over when their
leases run out. Jobs the dead worker held at the kill are read from the queue right after
it (state ``running``, claimed under its process id: the claimed-ahead, the running, and
the finished whose outcome was not written yet): an inbox may receive the post twice only
if its job is among them.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from pathlib import Path

import pytest

from bridge.activitypub import keys
from bridge.activitypub.urls import entry_slug
from bridge.config import load_config
from bridge.context import open_context
from bridge.entries import FeedEntry
from bridge.federation.outbox import record_change
from bridge.jobs import DELIVER
from bridge.store import open_store
from bridge.store.base import FeedState, Follower, NewBlog, Store
from bridge.store.records import Job, JobState
from tests.fakes.inbox_hosts import InboxHosts
from tests.fakes.postgres import fresh_schema, postgres_url
from tests.fakes.process import feedfed_env, free_port
from tests.fakes.process_roles import feedfed, read, wait_http

pytestmark = pytest.mark.postgres

HOSTS = 200
PER_HOST = 10
INBOXES = HOSTS * PER_HOST
KILL_AT = INBOXES // 4
DELAY = 0.03
WORKER_CONCURRENCY = 16
LEASE = 5

CONFIG = f"""
[limits]
worker_concurrency = {WORKER_CONCURRENCY}
per_host_concurrency = 4
job_lease_seconds = {LEASE}
job_poll_interval = 0.2
delivery_timeout = 10.0
"""


@pytest.fixture
async def database_url() -> AsyncIterator[str]:
    async with fresh_schema(postgres_url()) as url:
        yield url


async def seed(env: dict[str, str], followers: list[tuple[str, str]]) -> str:
    """Blog, followers, and a new post with its fan-out job; returns the activity id."""
    config = load_config(env=env)
    async with open_context(config) as ctx:
        now = ctx.clock()
        blog = await ctx.store.add_blog(NewBlog("talkabout", "http://127.0.0.1:9/feed/"), now)
        await keys.ensure_keypair(ctx.store, blog.handle, now)
        # Polled a moment ago: no poller would touch it while the test runs.
        polled = FeedState(
            status="ok",
            last_polled_at=now,
            last_success_at=now,
            next_poll_at=now + timedelta(days=1),
            poll_interval=86400,
            first_poll_done=True,
        )
        await ctx.store.update_feed_state(blog.id, polled)
        for actor_id, inbox in followers:
            await ctx.store.put_follower(Follower(blog.id, actor_id, inbox, None, "accepted", now))
        entry = FeedEntry(
            id="https://www.talkabout.de/neuer-beitrag/",
            link="https://www.talkabout.de/neuer-beitrag/",
            title="Teilhaben lassen",
            content_html="<p>Über das Mitteilen.</p>",
            published=now,
        )
        async with ctx.store.transaction():
            stored = await ctx.store.save_entry(blog.id, entry, entry_slug(entry.id), now)
            activity = await record_change(ctx, blog, stored, "create", deliver=True)
        return activity.activity_id


@pytest.fixture
async def queue(database_url: str) -> AsyncIterator[Store]:
    """The test's own view of the queue (a store on the same schema)."""
    store = await open_store(database_url)
    try:
        yield store
    finally:
        await store.close()


async def deliver_jobs(queue: Store, state: JobState) -> list[Job]:
    return await queue.list_jobs(state, DELIVER, limit=INBOXES + 1)


async def until(
    condition: str, check: Callable[[], Awaitable[bool]], timeout: float, logs: list[Path]
) -> None:
    """Wait until ``check()`` is true (polled every 10 ms), else fail with the logs' tails."""
    try:
        async with asyncio.timeout(timeout):
            # The hosts count as requests come: look often, so the kill lands early.
            while True:
                if await check():
                    return
                await asyncio.sleep(0.01)
    except TimeoutError:
        tails = [f"--- {log.name}\n{(await read(log))[-3000:]}" for log in logs]
        raise AssertionError(f"not within {timeout} s: {condition}\n" + "\n".join(tails)) from None


async def test_two_web_two_workers_one_killed_every_inbox_receives_the_post(
    tmp_path: Path, database_url: str, queue: Store
) -> None:
    (tmp_path / "feedfed.toml").write_text(CONFIG, encoding="utf-8")
    web_ports = [free_port(), free_port()]
    envs = [
        feedfed_env(
            tmp_path,
            port,
            {
                "FEEDFED_CONFIG": str(tmp_path / "feedfed.toml"),
                "FEEDFED_DATABASE_URL": database_url,
                "FEEDFED_ALLOW_PRIVATE_ADDRESSES": "1",
            },
        )
        for port in web_ports
    ]
    # One public name for both web processes, as behind a load balancer: web1's address.
    envs[1]["FEEDFED_BASE_URL"] = envs[0]["FEEDFED_BASE_URL"]
    web_bases = [f"http://127.0.0.1:{port}" for port in web_ports]
    logs = {name: tmp_path / f"{name}.log" for name in ("web1", "web2", "worker1", "worker2")}

    async with InboxHosts(HOSTS, PER_HOST, web_bases=web_bases, delay=DELAY) as hosts:
        followers = hosts.followers()
        activity_id = await seed(envs[0], followers)
        kinds = ("worker", "--kinds", "deliver,fanout,inbound")
        async with (
            feedfed(envs[0], logs["web1"], "serve", "--no-workers") as web1,
            feedfed(envs[1], logs["web2"], "serve", "--no-workers") as web2,
        ):
            await wait_http(f"{web_bases[0]}/healthz", web1, logs["web1"])
            await wait_http(f"{web_bases[1]}/healthz", web2, logs["web2"])
            async with (
                feedfed(envs[0], logs["worker1"], *kinds) as victim,
                feedfed(envs[1], logs["worker2"], *kinds) as survivor,
            ):

                async def reached_kill_point() -> bool:
                    return hosts.delivered() >= KILL_AT

                await until(f"{KILL_AT} inboxes reached", reached_kill_point, 30, [*logs.values()])
                os.kill(victim.pid, signal.SIGKILL)
                await victim.wait()
                at_kill = hosts.delivered()
                # Nobody can take the dead worker's jobs before their leases (5 s) run out.
                running = await deliver_jobs(queue, "running")
                held = [job for job in running if f"/{victim.pid}/" in (job.claimed_by or "")]
                held_inboxes = {job.payload["inbox"] for job in held}
                assert KILL_AT <= at_kill < INBOXES, f"the kill came too late: {at_kill}"
                assert held, "the killed worker held no job: it was not killed midway"

                async def all_done() -> bool:
                    done = await deliver_jobs(queue, "done")
                    return len(done) == INBOXES

                await until("every delivery done", all_done, 60, [*logs.values()])
                assert survivor.returncode is None, "the surviving worker died"
                done = await deliver_jobs(queue, "done")

    counts = hosts.counts()
    assert hosts.refused == []
    assert set(counts) == {inbox for _, inbox in followers}
    assert {i for ids in hosts.received.values() for i in ids} == {activity_id}
    twice = {inbox: n for inbox, n in counts.items() if n > 1}
    # Only what the dead worker held at the kill may have come twice, and at most twice.
    assert set(twice) <= held_inboxes, set(twice) - held_inboxes
    assert len(twice) <= len(held)
    assert all(n == 2 for n in twice.values()), twice
    assert sum(counts.values()) == INBOXES + len(twice)
    # Both workers did part of the work; the survivor finished what the dead one held.
    finishers = {job.claimed_by for job in done}
    assert len(finishers) == 2, finishers
    assert not {job.id for job in held} & {
        job.id for job in done if f"/{victim.pid}/" in (job.claimed_by or "")
    }
    # Every host fetched the blog's key once, from the two web processes in turns.
    assert hosts.key_fetches == {web_bases[0]: HOSTS // 2, web_bases[1]: HOSTS // 2}
    print(
        f"kill at {at_kill} inboxes; the dead worker held {len(held)} deliveries; "
        f"{len(twice)} inboxes received the post twice"
    )
