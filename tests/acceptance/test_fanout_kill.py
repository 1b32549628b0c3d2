"""A bridge killed (SIGKILL) in the middle of a fan-out to 500 inboxes delivers to every one of
them after a restart: the real ``feedfed serve`` in a subprocess, fake instances on loopback.

The store is seeded before the first start (a blog, 500 accepted followers with personal
inboxes on five hosts, one new post recorded with its fan-out job), as if the poller had just
found the post. The fakes answer slowly enough (50 ms a POST) that the kill lands midway.
The job lease is five minutes, so only the restarted worker taking back its own unfinished
jobs at start makes the deadline: nothing waits for leases to run out.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path

import aiohttp

from bridge.activitypub import keys
from bridge.activitypub.urls import entry_slug
from bridge.config import load_config
from bridge.context import open_context
from bridge.entries import FeedEntry
from bridge.federation.outbox import record_change
from bridge.store.base import FeedState, Follower, NewBlog
from tests.fakes import httpsig
from tests.fakes.instance import FakeActor, FakeInstance
from tests.fakes.instance_server import FakeServer
from tests.fakes.process import feedfed_env, free_port

HOSTS = 5
PER_HOST = 100
FOLLOWERS = HOSTS * PER_HOST
KILL_AFTER = 100
CONCURRENCY = 20  # 4 per host on 5 hosts: at most this many deliveries are in flight

CONFIG = """
[limits]
worker_concurrency = 32
per_host_concurrency = 4
job_lease_seconds = 300
job_poll_interval = 0.2
delivery_timeout = 10.0
"""


def output(log: Path) -> str:
    """What the bridge has written to its log so far."""
    return log.read_text(encoding="utf-8", errors="replace")


async def wait_until_serving(base: str, proc: asyncio.subprocess.Process, log: Path) -> None:
    async with aiohttp.ClientSession() as session:
        for _ in range(300):
            if proc.returncode is not None:
                raise AssertionError(f"feedfed serve exited {proc.returncode}:\n{output(log)}")
            try:
                async with session.get(f"{base}/.well-known/nodeinfo") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientConnectionError:
                pass
            await asyncio.sleep(0.05)
    raise AssertionError(f"feedfed serve did not answer within 15 s:\n{output(log)}")


@asynccontextmanager
async def feedfed_serve(
    env: dict[str, str], log: Path
) -> AsyncIterator[asyncio.subprocess.Process]:
    """``feedfed serve`` in a subprocess, output appended to ``log``; SIGTERM at the end."""
    with log.open("ab") as out:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bridge", "serve", env=env, stdout=out, stderr=out
        )
    try:
        await wait_until_serving(env["FEEDFED_BASE_URL"], proc, log)
        yield proc
    finally:
        if proc.returncode is None:
            proc.terminate()
            await asyncio.wait_for(proc.wait(), 15)


async def seed(env: dict[str, str], followers: list[FakeActor]) -> str:
    """Blog, followers, and a new post with its fan-out job; returns the activity id."""
    config = load_config(env=env)
    async with open_context(config) as ctx:
        now = ctx.clock()
        blog = await ctx.store.add_blog(NewBlog("talkabout", "http://127.0.0.1:9/feed/"), now)
        await keys.ensure_keypair(ctx.store, blog.handle, now)
        # Polled a moment ago: the poller leaves it alone while the test runs.
        await ctx.store.update_feed_state(
            blog.id,
            FeedState(
                status="ok",
                last_polled_at=now,
                last_success_at=now,
                next_poll_at=now + timedelta(days=1),
                poll_interval=86400,
                first_poll_done=True,
            ),
        )
        for actor in followers:
            follower = Follower(blog.id, actor.id, actor.inbox, None, "accepted", now)
            await ctx.store.put_follower(follower)
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


async def test_sigkill_mid_fan_out_then_restart_delivers_to_every_inbox(tmp_path: Path) -> None:
    key = httpsig.new_key()
    servers = [FakeServer() for _ in range(HOSTS)]
    followers: list[FakeActor] = []
    for server in servers:
        # Each server is one "host": 127.0.0.1 on a port of its own.
        instance = server.add(FakeInstance("127.0.0.1", key=key))
        instance.delay = 0.05
        followers += [
            instance.add_actor(f"u{n}", key=key, shared_inbox=False) for n in range(PER_HOST)
        ]
        await server.start()
    try:
        (tmp_path / "feedfed.toml").write_text(CONFIG)
        env = feedfed_env(
            tmp_path,
            free_port(),
            {
                "FEEDFED_CONFIG": str(tmp_path / "feedfed.toml"),
                "FEEDFED_ALLOW_PRIVATE_ADDRESSES": "1",
            },
        )
        activity_id = await seed(env, followers)
        log = tmp_path / "bridge.log"

        def delivered() -> Counter[str]:
            counts: Counter[str] = Counter()
            for server in servers:
                for entry in server.log.deliveries():
                    assert entry.verdict.ok, entry.verdict.reason
                    assert entry.activity_id == activity_id
                    counts[entry.url] += 1
            return counts

        async def until(inboxes: int, timeout: float) -> None:
            try:
                async with asyncio.timeout(timeout):
                    # The fakes count as requests come: look often, so the kill lands early.
                    while True:
                        if len(delivered()) >= inboxes:
                            return
                        await asyncio.sleep(0.002)
            except TimeoutError:
                got = len(delivered())
                raise AssertionError(f"{got} of {inboxes} inboxes reached in {timeout} s") from None

        async with feedfed_serve(env, log) as first:
            await until(KILL_AFTER, timeout=20)
            os.kill(first.pid, signal.SIGKILL)
            await first.wait()
        at_kill = len(delivered())
        assert KILL_AFTER <= at_kill < FOLLOWERS, f"the kill came too late: {at_kill}"

        async with feedfed_serve(env, log):
            await until(FOLLOWERS, timeout=30)
        counts = delivered()
        assert set(counts) == {actor.inbox for actor in followers}
        twice = {inbox: n for inbox, n in counts.items() if n > 1}
        # Only what was in flight at the kill may have come twice.
        assert len(twice) <= CONCURRENCY and max(counts.values()) <= 2, twice
        text = output(log)
        assert "took back" in text and "jobs an earlier run left unfinished" in text
    finally:
        for server in servers:
            await server.close()
