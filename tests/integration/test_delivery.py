"""Delivery end to end: outbox → fan-out → signed POSTs to fake instances, and every answer.

The bridge side is real: its actor served by an aiohttp server on 127.0.0.1 (the fakes fetch
its key from there), a SQLite store, the job worker with the real fan-out and delivery
handlers, the guarded client. The fediverse side is :mod:`tests.fakes.instance`: servers under
test host names whose signature checks are written apart from ``bridge/``.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

import aiohttp
import pytest
from aiohttp import web

from bridge.activitypub import keys
from bridge.activitypub.addresses import AddressPolicy, open_remote_session
from bridge.activitypub.signatures import sign_cavage, sign_rfc9421
from bridge.activitypub.urls import Urls, entry_slug
from bridge.appkeys import CONTEXT
from bridge.context import BridgeContext
from bridge.entries import FeedEntry
from bridge.errors import Rejected, RetryLater, UnsupportedURL
from bridge.federation import followers_sync, inbox
from bridge.federation.delivery import Deliverer, enqueue_direct
from bridge.federation.fanout import interleave_hosts, run_fanout
from bridge.federation.followers_sync import sync_url
from bridge.federation.outbound import OutboundSigner, host_of, signed_headers, signing_key
from bridge.federation.outbox import ChangeKind, record_change
from bridge.ingest.parse import parse_feed
from bridge.jobs import DELIVER, FANOUT
from bridge.jobs.worker import JobWorker
from bridge.store.base import Blog, Follower, Job, KeyPair, NewBlog, NewJob, OutboxActivity
from bridge.store.sqlite import SQLiteStore
from bridge.web import routes as ap_routes
from tests.conftest import TALKABOUT, FakeClock, make_config
from tests.fakes import httpsig
from tests.fakes.instance import FakeActor, FakeInstance
from tests.fakes.instance_server import FakeServer
from tests.fakes.instance_signing import sign_request
from tests.fakes.process import free_port
from tests.fakes.resolver import MappingResolver

FEED_URL = "http://www.talkabout.de/feed/"
ENTRIES = parse_feed((TALKABOUT / "feed.rss").read_bytes(), url=FEED_URL).entries


def no_jitter(n: int) -> int:
    return 0


@pytest.fixture(scope="module")
def keypair() -> KeyPair:
    """One RSA key for the module: generating one per test would dominate its run time."""
    return keys.generate_keypair("talkabout", datetime(2026, 1, 1, tzinfo=UTC))


@dataclass
class Bridge:
    ctx: BridgeContext
    blog: Blog
    deliverer: Deliverer

    @property
    def actor(self) -> str:
        return self.ctx.urls.actor(self.blog.handle)

    async def follow(self, *actors: FakeActor) -> None:
        """Seed accepted followers, as the inbox stores them after a Follow."""
        for actor in actors:
            await self.ctx.store.put_follower(
                Follower(
                    self.blog.id,
                    actor.id,
                    actor.inbox,
                    actor.shared_inbox,
                    "accepted",
                    self.ctx.clock(),
                    f"{actor.id}#follow",
                )
            )

    async def publish(self, entry: FeedEntry, kind: ChangeKind = "create") -> OutboxActivity:
        """Record an entry's change as the poller does: the outbox activity and its fan-out."""
        store, now = self.ctx.store, self.ctx.clock()
        stored = await store.save_entry(self.blog.id, entry, entry_slug(entry.id), now)
        if kind == "delete":
            await store.mark_entry_deleted(self.blog.id, entry.id, now)
            stored = (await store.get_entries(self.blog.id, [entry.id]))[entry.id]
        async with store.transaction():
            return await record_change(self.ctx, self.blog, stored, kind, deliver=True)

    async def jobs(self, kind: str = DELIVER) -> list[Job]:
        jobs: dict[int, Job] = {}
        for state in ("queued", "running", "done", "dead"):
            for job in await self.ctx.store.list_jobs(state, kind=kind, limit=1000):  # type: ignore[arg-type]
                jobs[job.id] = job
        return list(jobs.values())

    async def job_for(self, inbox: str) -> Job | None:
        # Listing state by state may see a job twice as it moves on: its id is what counts.
        found = {job.id for job in await self.jobs() if job.payload["inbox"] == inbox}
        assert len(found) <= 1
        return await self.ctx.store.get_job(found.pop()) if found else None


@pytest.fixture
async def fediverse(clock: FakeClock, resolver: MappingResolver) -> AsyncIterator[FakeServer]:
    """Fake instances on one server; their names resolve for the bridge (to 127.0.0.1)."""
    server = FakeServer()
    await server.start()
    yield server
    await server.close()


FAKE_KEY = httpsig.new_key()
"""One key for every fake account: a fresh one per account would cost ~80 ms each."""


def add_instance(
    server: FakeServer, resolver: MappingResolver, name: str, clock: FakeClock
) -> FakeInstance:
    instance = server.instance(name, clock=clock, key=FAKE_KEY)
    resolver.names[instance.name] = ("127.0.0.1",)
    return instance


@pytest.fixture
async def bridge(
    request: pytest.FixtureRequest,
    sqlite_store: SQLiteStore,
    http: aiohttp.ClientSession,
    remote: aiohttp.ClientSession,
    clock: FakeClock,
    serve: Callable[[web.Application], Awaitable[str]],
    keypair: KeyPair,
    fediverse: FakeServer,
) -> AsyncIterator[Bridge]:
    """The bridge's actor on a real server, and a worker running fan-outs and deliveries."""
    placeholder = make_config()
    ctx = BridgeContext(
        config=placeholder,
        store=sqlite_store,
        http=http,
        remote=remote,
        urls=Urls(placeholder.base_url),
        clock=clock,
    )
    app = web.Application()
    app[CONTEXT] = ctx
    app.add_routes(ap_routes.routes)
    inbox.install(app)  # the key cache the synchronization endpoint verifies with
    app.add_routes(followers_sync.routes)
    base = await serve(app)
    # Ids carry the server's real address, known only once it listens.
    ctx.config = make_config(base)
    ctx.urls = Urls(base)
    blog = await sqlite_store.add_blog(NewBlog("talkabout", FEED_URL), clock())
    await sqlite_store.put_keypair_if_absent(keypair)
    deliverer = Deliverer(timeout=3)
    if not getattr(request, "param", {}).get("worker", True):
        yield Bridge(ctx, blog, deliverer)
        deliverer.close()
        return
    worker = JobWorker(
        ctx,
        {FANOUT: run_fanout, DELIVER: deliverer},
        worker_id="bridge",
        poll_interval=0.02,
        per_host_limit=2,
        rand=no_jitter,
    )
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    yield Bridge(ctx, blog, deliverer)
    stop.set()
    await asyncio.wait_for(task, 5)
    deliverer.close()


def digest_of(actor_ids: list[str]) -> str:
    """FEP-8fcf, computed here: XOR of SHA-256 of each id, in hex."""
    value = 0
    for actor_id in actor_ids:
        value ^= int.from_bytes(hashlib.sha256(actor_id.encode()).digest(), "big")
    return f"{value:064x}"


async def test_a_new_post_reaches_each_shared_inbox_once(
    bridge: Bridge, fediverse: FakeServer, resolver: MappingResolver, clock: FakeClock
) -> None:
    crowd = [add_instance(fediverse, resolver, f"crowd{n}.test", clock) for n in range(3)]
    many = [inst.add_actor(f"user{n}", key=FAKE_KEY) for inst in crowd for n in range(4)]
    loner = add_instance(fediverse, resolver, "loner.test", clock)
    solo = [loner.add_actor(f"solo{n}", shared_inbox=False, key=FAKE_KEY) for n in range(2)]
    await bridge.follow(*many, *solo)

    activity = await bridge.publish(ENTRIES[0])
    expected = {inst.base + "/inbox" for inst in crowd} | {actor.inbox for actor in solo}
    await fediverse.log.wait_until(lambda: set(fediverse.log.by_inbox) == expected, timeout=5)
    await asyncio.sleep(0.1)  # nothing more is on its way

    posts = fediverse.log.entries
    assert len(posts) == 5 and all(post.delivered for post in posts)
    assert fediverse.log.duplicates() == {}
    for post in posts:
        assert post.verdict.ok, post.verdict.reason
        assert post.verdict.key_id == f"{bridge.actor}#main-key"
        assert post.headers["Content-Type"] == "application/activity+json"
        assert post.activity == json.loads(json.dumps(activity.payload))
        assert post.type == "Create" and post.activity_id == activity.activity_id
    # Non-ASCII text travels as UTF-8, byte for byte what the outbox holds.
    assert "ä" in posts[0].body.decode("utf-8") or "ü" in posts[0].body.decode("utf-8")
    assert len({post.body for post in posts}) == 1
    for job in await bridge.jobs():
        assert job.state == "done" and job.attempts == 1 and job.last_status == 202


async def test_deliveries_carry_the_followers_synchronization_digest(
    bridge: Bridge, fediverse: FakeServer, resolver: MappingResolver, clock: FakeClock
) -> None:
    shared = add_instance(fediverse, resolver, "shared.test", clock)
    fans = [shared.add_actor(f"fan{n}", key=FAKE_KEY) for n in range(3)]
    other = add_instance(fediverse, resolver, "other.test", clock)
    lone = other.add_actor("lone", shared_inbox=False, key=FAKE_KEY)
    await bridge.follow(*fans, lone)

    await bridge.publish(ENTRIES[0])
    await fediverse.log.wait_until(lambda: len(fediverse.log.entries) == 2, timeout=5)
    by_host = {post.host: post for post in fediverse.log.entries}
    for host, followers in (("shared.test", fans), ("other.test", [lone])):
        sync = by_host[host].sync
        assert sync == {
            "collectionId": f"{bridge.actor}/followers",
            "url": f"{bridge.actor}/followers_synchronization",
            "digest": digest_of([actor.id for actor in followers]),
        }
    assert sync_url(bridge.ctx.urls, "talkabout") == f"{bridge.actor}/followers_synchronization"


async def test_edit_and_deletion_follow_the_post(
    bridge: Bridge, fediverse: FakeServer, resolver: MappingResolver, clock: FakeClock
) -> None:
    site = add_instance(fediverse, resolver, "site.test", clock)
    await bridge.follow(site.add_actor("reader", key=FAKE_KEY))
    entry = ENTRIES[1]
    created = await bridge.publish(entry)
    clock.advance(60)
    updated = await bridge.publish(replace(entry, title="Neuer Titel"), "update")
    clock.advance(60)
    deleted = await bridge.publish(entry, "delete")
    await site.wait_until(lambda: len(site.log.deliveries()) == 3, timeout=5)
    got = {post.type: post for post in site.log.deliveries()}
    assert got["Create"].activity_id == created.activity_id
    assert got["Update"].activity_id == updated.activity_id
    assert got["Update"].activity["object"]["name"] == "Neuer Titel"
    assert got["Delete"].activity_id == deleted.activity_id
    assert got["Delete"].activity["object"]["type"] == "Tombstone"
    assert all(post.verdict.ok for post in got.values())


async def test_an_unfollowed_reader_gets_nothing_more(
    bridge: Bridge, fediverse: FakeServer, resolver: MappingResolver, clock: FakeClock
) -> None:
    site = add_instance(fediverse, resolver, "site.test", clock)
    stays, leaves = (
        site.add_actor("stays", shared_inbox=False, key=FAKE_KEY),
        site.add_actor("leaves", shared_inbox=False, key=FAKE_KEY),
    )
    await bridge.follow(stays, leaves)
    await bridge.publish(ENTRIES[0])
    await site.wait_until(lambda: len(site.log.deliveries()) == 2, timeout=5)
    assert await bridge.ctx.store.remove_follower(bridge.blog.id, leaves.id)
    await bridge.publish(ENTRIES[1])
    await site.wait_until(lambda: len(site.log.deliveries()) == 3, timeout=5)
    await asyncio.sleep(0.1)
    assert site.log.by_inbox == {stays.inbox: 2, leaves.inbox: 1}


async def test_a_host_down_for_a_while_gets_the_post_after_it_recovers(
    bridge: Bridge, fediverse: FakeServer, resolver: MappingResolver, clock: FakeClock
) -> None:
    down = add_instance(fediverse, resolver, "down.test", clock)
    up = add_instance(fediverse, resolver, "up.test", clock)
    await bridge.follow(
        down.add_actor("patient", key=FAKE_KEY), up.add_actor("happy", key=FAKE_KEY)
    )
    down.fail_with(503, count=2)
    activity = await bridge.publish(ENTRIES[0])

    await up.wait_until(lambda: len(up.log.deliveries()) == 1)
    await down.wait_until(lambda: len(down.received) == 1)
    job = await _settled(bridge, down.base + "/inbox", attempts=1)
    assert job.state == "queued" and job.last_status == 503
    assert job.run_at == clock.now + timedelta(seconds=15)  # Mastodon's first wait
    health = await bridge.ctx.store.get_host(down.authority)
    assert health is not None and health.failures == 1 and not health.unavailable

    clock.advance(15)
    bridge.ctx.jobs_ready.set()
    await down.wait_until(lambda: len(down.received) == 2)
    job = await _settled(bridge, down.base + "/inbox", attempts=2)
    assert job.run_at == clock.now + timedelta(seconds=16)
    clock.advance(16)
    bridge.ctx.jobs_ready.set()
    await down.wait_until(lambda: len(down.log.deliveries()) == 1)

    [post] = down.log.deliveries()
    assert post.verdict.ok and post.activity_id == activity.activity_id
    assert [entry.status for entry in down.received] == [503, 503, 202]
    job = await _settled(bridge, down.base + "/inbox", attempts=3)
    assert job.state == "done"
    health = await bridge.ctx.store.get_host(down.authority)
    assert health is not None and health.failures == 0 and health.last_success_at == clock.now


async def _settled(bridge: Bridge, inbox: str, attempts: int) -> Job:
    async with asyncio.timeout(3):
        while True:
            job = await bridge.job_for(inbox)
            if job is not None and job.attempts >= attempts and job.state != "running":
                return job
            await asyncio.sleep(0.01)


async def test_429_with_retry_after_waits_as_asked(
    bridge: Bridge, fediverse: FakeServer, resolver: MappingResolver, clock: FakeClock
) -> None:
    busy = add_instance(fediverse, resolver, "busy.test", clock)
    await bridge.follow(busy.add_actor("reader", key=FAKE_KEY))
    busy.fail_with(429, count=1, retry_after="120")
    await bridge.publish(ENTRIES[0])
    job = await _settled(bridge, busy.base + "/inbox", attempts=1)
    assert job.state == "queued" and job.last_status == 429
    assert job.run_at == clock.now + timedelta(seconds=120)
    clock.advance(120)
    bridge.ctx.jobs_ready.set()
    await busy.wait_until(lambda: len(busy.log.deliveries()) == 1)


async def test_404_is_dead_at_once(
    bridge: Bridge, fediverse: FakeServer, resolver: MappingResolver, clock: FakeClock
) -> None:
    site = add_instance(fediverse, resolver, "site.test", clock)
    await bridge.follow(site.add_actor("reader", key=FAKE_KEY))
    site.fail_with(404)
    await bridge.publish(ENTRIES[0])
    job = await _settled(bridge, site.base + "/inbox", attempts=1)
    assert job.state == "dead" and job.last_status == 404
    clock.advance(3600)
    bridge.ctx.jobs_ready.set()
    await asyncio.sleep(0.15)
    assert len(site.received) == 1  # never tried again
    health = await bridge.ctx.store.get_host(site.authority)
    assert health is None or health.failures == 0  # it answered: no failure counted


async def test_410_removes_the_follower(
    bridge: Bridge, fediverse: FakeServer, resolver: MappingResolver, clock: FakeClock
) -> None:
    site = add_instance(fediverse, resolver, "site.test", clock)
    deleted, alive = (
        site.add_actor("deleted", shared_inbox=False, key=FAKE_KEY),
        site.add_actor("alive", shared_inbox=False, key=FAKE_KEY),
    )
    await bridge.follow(deleted, alive)
    site.gone(deleted)
    await bridge.publish(ENTRIES[0])
    job = await _settled(bridge, deleted.inbox, attempts=1)
    assert job.state == "done" and job.last_status == 410
    store = bridge.ctx.store
    assert await store.get_follower(bridge.blog.id, deleted.id) is None
    assert await store.get_follower(bridge.blog.id, alive.id) is not None


async def test_410_from_a_shared_inbox_removes_nobody(
    bridge: Bridge, fediverse: FakeServer, resolver: MappingResolver, clock: FakeClock
) -> None:
    site = add_instance(fediverse, resolver, "site.test", clock)
    reader = site.add_actor("reader", key=FAKE_KEY)
    await bridge.follow(reader)
    site.fail_with(410)
    await bridge.publish(ENTRIES[0])
    job = await _settled(bridge, site.base + "/inbox", attempts=1)
    assert job.state == "dead" and job.last_status == 410
    assert await bridge.ctx.store.get_follower(bridge.blog.id, reader.id) is not None


async def test_double_knock_falls_back_to_cavage_and_remembers(
    bridge: Bridge, fediverse: FakeServer, resolver: MappingResolver, clock: FakeClock
) -> None:
    old = add_instance(fediverse, resolver, "old.test", clock)
    old.reject_rfc9421 = True
    new = add_instance(fediverse, resolver, "new.test", clock)
    await bridge.follow(
        old.add_actor("reader", key=FAKE_KEY), new.add_actor("reader", key=FAKE_KEY)
    )

    await bridge.publish(ENTRIES[0])
    await fediverse.log.wait_until(lambda: len(fediverse.log.deliveries()) == 2, timeout=5)
    assert [(e.status, e.verdict.scheme) for e in old.received] == [
        (401, "rfc9421"),
        (202, "cavage"),
    ]
    assert [(e.status, e.verdict.scheme) for e in new.received] == [(202, "rfc9421")]
    for site in (old, new):
        await _settled(bridge, site.base + "/inbox", attempts=1)
    store = bridge.ctx.store
    old_host, new_host = await store.get_host(old.authority), await store.get_host(new.authority)
    assert old_host is not None and old_host.signature_scheme == "cavage"
    assert new_host is not None and new_host.signature_scheme == "rfc9421"

    await bridge.publish(ENTRIES[1])
    await fediverse.log.wait_until(lambda: len(fediverse.log.deliveries()) == 4, timeout=5)
    assert [e.verdict.scheme for e in old.received[2:]] == ["cavage"]  # straight away
    assert [e.verdict.scheme for e in new.received[1:]] == ["rfc9421"]


async def test_per_host_limit_holds_on_real_deliveries(
    bridge: Bridge, fediverse: FakeServer, resolver: MappingResolver, clock: FakeClock
) -> None:
    slow = add_instance(fediverse, resolver, "slow.test", clock)
    slow.delay = 0.05
    await bridge.follow(
        *(slow.add_actor(f"r{n}", shared_inbox=False, key=FAKE_KEY) for n in range(8))
    )
    await bridge.publish(ENTRIES[0])
    await slow.wait_until(lambda: len(slow.log.deliveries()) == 8, timeout=5)
    assert slow.peak_in_flight == 2  # the fixture's per_host_limit


async def test_direct_sends_are_signed_deduplicated_and_unsynchronized(
    bridge: Bridge, fediverse: FakeServer, resolver: MappingResolver, clock: FakeClock
) -> None:
    site = add_instance(fediverse, resolver, "site.test", clock)
    reader = site.add_actor("reader", key=FAKE_KEY)
    await bridge.follow(reader)
    accept = {
        "@context": "https://www.w3.org/ns/activitystreams",
        "id": f"{bridge.actor}/activities/accept-1",
        "type": "Accept",
        "actor": bridge.actor,
        "object": {"id": f"{reader.id}#follow", "type": "Follow", "actor": reader.id},
    }
    assert await enqueue_direct(bridge.ctx, bridge.blog, accept, [reader.inbox, reader.inbox]) == 1
    assert await enqueue_direct(bridge.ctx, bridge.blog, accept, [reader.inbox]) == 0
    post = await site.wait_for(lambda e: e.type == "Accept")
    assert post.verdict.ok and post.url == reader.inbox
    assert post.activity == accept
    assert post.sync is None
    with pytest.raises(ValueError):
        await enqueue_direct(bridge.ctx, bridge.blog, {"type": "Accept"}, [reader.inbox])


@pytest.mark.parametrize("bridge", [{"worker": False}], indirect=True)
async def test_fan_out_pages_and_reruns_enqueue_nothing_twice(
    bridge: Bridge, fediverse: FakeServer, resolver: MappingResolver, clock: FakeClock
) -> None:
    hosts = [add_instance(fediverse, resolver, f"h{n}.test", clock) for n in range(5)]
    await bridge.follow(*(host.add_actor("reader", key=FAKE_KEY) for host in hosts))
    inboxes = sorted(host.base + "/inbox" for host in hosts)
    ctx, store = bridge.ctx, bridge.ctx.store
    activity = await bridge.publish(ENTRIES[0])  # enqueues the first page's fan-out

    async def run_page(page_size: int) -> Job:
        [job] = await store.claim_jobs([FANOUT], clock(), 1, 60, "test")
        await run_fanout(ctx, job, page_size=page_size)
        return job

    first = await run_page(2)
    assert first.payload == {
        "blog_id": bridge.blog.id,
        "activity_id": activity.activity_id,
        "after": "",
    }
    counts = await store.job_counts()
    await store.release_jobs("test", clock())  # the process died before finishing the page
    assert (await run_page(2)).id == first.id
    assert await store.job_counts() == counts  # the rerun added nothing
    await store.finish_job(first.id, clock())
    second = await run_page(2)
    assert second.payload["after"] == inboxes[1]
    await store.finish_job(second.id, clock())
    third = await run_page(2)
    assert third.payload["after"] == inboxes[3]
    await store.finish_job(third.id, clock())
    assert await store.claim_jobs([FANOUT], clock(), 1, 60, "test") == []  # a short page ends it
    queued = await store.list_jobs("queued", kind=DELIVER, limit=100)
    assert sorted(job.payload["inbox"] for job in queued) == inboxes
    assert {job.dedupe_key for job in queued} == {
        f"deliver:{activity.activity_id}:{inbox}" for inbox in inboxes
    }
    assert {job.host for job in queued} == {host.authority for host in hosts}

    worker = JobWorker(ctx, {DELIVER: bridge.deliverer}, worker_id="w", poll_interval=0.02)
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    await fediverse.log.wait_until(lambda: len(fediverse.log.deliveries()) == 5, timeout=5)
    stop.set()
    await task
    assert fediverse.log.duplicates() == {}


async def test_fan_out_skips_unavailable_hosts_and_they_wait(
    bridge: Bridge, fediverse: FakeServer, resolver: MappingResolver, clock: FakeClock
) -> None:
    dead = add_instance(fediverse, resolver, "dead.test", clock)
    alive = add_instance(fediverse, resolver, "alive.test", clock)
    await bridge.follow(
        dead.add_actor("reader", key=FAKE_KEY), alive.add_actor("reader", key=FAKE_KEY)
    )
    store = bridge.ctx.store
    # The host has failed every delivery for eight days: the next failure marks it.
    await store.record_host_failure(dead.authority, clock.now - timedelta(days=8))
    dead.fail_with(503)
    await bridge.publish(ENTRIES[0])
    job = await _settled(bridge, dead.base + "/inbox", attempts=1)
    assert job.state == "queued"
    health = await store.get_host(dead.authority)
    assert health is not None and health.unavailable
    clock.advance(3600)
    bridge.ctx.jobs_ready.set()
    await bridge.publish(ENTRIES[1])
    await alive.wait_until(lambda: len(alive.log.deliveries()) == 2)
    await asyncio.sleep(0.1)
    assert len(dead.received) == 1  # its queued job is skipped, the new post not even queued
    assert len([j for j in await bridge.jobs() if j.host == dead.authority]) == 1
    # Heard from again (its server sent us something): its waiting delivery goes out.
    dead.clear_failures()
    await store.record_host_success(dead.authority, clock.now)
    bridge.ctx.jobs_ready.set()
    await dead.wait_until(lambda: len(dead.log.deliveries()) == 1)


async def test_unreachable_inbox_is_retried_and_counted_against_the_host(
    bridge: Bridge, resolver: MappingResolver, clock: FakeClock
) -> None:
    resolver.names["closed.test"] = ("127.0.0.1",)
    inbox = f"http://closed.test:{free_port()}/inbox"  # nothing listens there
    job = Job(
        1,
        DELIVER,
        {"blog": "talkabout", "inbox": inbox, "activity": {"id": "x:1"}},
        None,
        host_of(inbox),
        "running",
        0,
        clock.now,
        None,
        None,
        None,
        None,
        clock.now,
        clock.now,
    )
    with pytest.raises(RetryLater, match="talking to"):
        await bridge.deliverer(bridge.ctx, job)
    health = await bridge.ctx.store.get_host(host_of(inbox))
    assert health is not None and health.failures == 1


async def test_the_guard_refuses_private_inboxes(
    bridge: Bridge, resolver: MappingResolver, clock: FakeClock
) -> None:
    inbox = "http://127.0.0.1:9/inbox"
    job = Job(
        1,
        DELIVER,
        {"blog": "talkabout", "inbox": inbox, "activity": {"id": "x:1"}},
        None,
        host_of(inbox),
        "running",
        0,
        clock.now,
        None,
        None,
        None,
        None,
        clock.now,
        clock.now,
    )
    async with open_remote_session(
        AddressPolicy(), user_agent="test", resolver=resolver
    ) as guarded:
        ctx = replace(bridge.ctx, remote=guarded)
        with pytest.raises(Rejected, match="loopback"):
            await bridge.deliverer(ctx, job)


async def test_bad_payloads_are_rejected(bridge: Bridge, clock: FakeClock) -> None:
    def job(payload: dict[str, object]) -> Job:
        return Job(
            1,
            DELIVER,
            payload,
            None,
            "x.test",
            "running",
            0,
            clock.now,
            None,
            None,
            None,
            None,
            clock.now,
            clock.now,
        )

    for payload, problem in [
        ({"inbox": "http://x.test/inbox", "activity": {}}, "lacks 'blog'"),
        ({"blog": "nobody", "inbox": "http://x.test/inbox", "activity": {}}, "no longer exists"),
        ({"blog": "talkabout", "inbox": "http://x.test/inbox"}, "names no activity"),
        (
            {"blog": "talkabout", "inbox": "http://x.test/inbox", "activity_id": "http://no/1"},
            "not in the outbox",
        ),
    ]:
        with pytest.raises(Rejected, match=problem):
            await bridge.deliverer(bridge.ctx, job(payload))


def test_signatures_match_the_reference_signers_and_the_independent_verifier(
    keypair: KeyPair,
) -> None:
    now = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
    url = "https://mastodon.example/users/alice/inbox?x=1"
    body = json.dumps({"id": "https://bridge.example/a/1", "name": "Grüße"}).encode()
    headers = {"Content-Type": "application/activity+json"}
    key_id = "https://bridge.example/users/talkabout#main-key"
    key = signing_key(keypair.private_pem)
    for scheme, reference in (("cavage", sign_cavage), ("rfc9421", sign_rfc9421)):
        ours = signed_headers(scheme, "POST", url, headers, body, key_id=key_id, key=key, now=now)  # type: ignore[arg-type]
        theirs = reference(
            "POST", url, headers, body, key_id=key_id, private_key_pem=keypair.private_pem, now=now
        )
        # PKCS#1 v1.5 is deterministic: the same input gives the very same signature.
        assert {k: v for k, v in ours.items() if k in theirs} == theirs
        sent = {**headers, **ours}
        request = httpsig.Request.for_url("POST", url, sent, body)
        pending = httpsig.check_request(request, now=now, max_skew=timedelta(hours=1))
        assert pending.key_id == key_id
        pending.holds(httpsig.load_public(keypair.public_pem))
    # Signed GETs (authorized fetch) cover (request-target) host date, as the reference does.
    get = "https://mastodon.example/users/alice?page=1"
    ours = signed_headers("cavage", "GET", get, {}, None, key_id=key_id, key=key, now=now)
    theirs = sign_cavage(
        "GET", get, {}, None, key_id=key_id, private_key_pem=keypair.private_pem, now=now
    )
    assert ours == theirs
    assert 'headers="(request-target) host date"' in ours["Signature"]
    # The FEP-8fcf header is covered too when present.
    sync = {**headers, "Collection-Synchronization": 'collectionId="a", url="b", digest="00"'}
    for scheme in ("cavage", "rfc9421"):
        ours = signed_headers(scheme, "POST", url, sync, body, key_id=key_id, key=key, now=now)  # type: ignore[arg-type]
        assert "collection-synchronization" in (ours.get("Signature-Input") or ours["Signature"])
        request = httpsig.Request.for_url("POST", url, {**sync, **ours}, body)
        httpsig.check_request(request, now=now).holds(httpsig.load_public(keypair.public_pem))


def test_host_keys() -> None:
    assert host_of("https://Mastodon.Social/inbox") == "mastodon.social"
    assert host_of("https://a.example:443/inbox") == "a.example"
    assert host_of("http://a.example:8080/inbox") == "a.example:8080"
    assert host_of("http://127.0.0.2:9/x") == "127.0.0.2:9"


@pytest.mark.parametrize("bridge", [{"worker": False}], indirect=True)
async def test_recording_and_its_fan_out_commit_together(bridge: Bridge, clock: FakeClock) -> None:
    ctx, store, entry = bridge.ctx, bridge.ctx.store, ENTRIES[1]
    stored = await store.save_entry(bridge.blog.id, entry, entry_slug(entry.id), clock())
    backfill = await record_change(ctx, bridge.blog, stored, "create", deliver=False)
    assert await store.list_jobs("queued", kind=FANOUT) == []  # the back catalogue stays home

    class Crash(Exception):
        pass

    with pytest.raises(Crash):
        async with store.transaction():
            lost = await record_change(ctx, bridge.blog, stored, "update", deliver=True)
            raise Crash
    assert await store.get_activity(lost.activity_id) is None
    assert await store.list_jobs("queued", kind=FANOUT) == []

    kept = await record_change(ctx, bridge.blog, stored, "update", deliver=True)
    [job] = await store.list_jobs("queued", kind=FANOUT)
    assert job.payload["activity_id"] == kept.activity_id != backfill.activity_id
    assert job.dedupe_key == f"fanout:{kept.activity_id}"


async def test_the_partial_followers_collection_answers_signed_requests_only(
    bridge: Bridge, fediverse: FakeServer, resolver: MappingResolver, clock: FakeClock
) -> None:
    mine = add_instance(fediverse, resolver, "mine.test", clock)
    theirs = add_instance(fediverse, resolver, "theirs.test", clock)
    ours = [mine.add_actor(f"fan{n}", key=FAKE_KEY) for n in range(3)]
    await bridge.follow(*ours, theirs.add_actor("other", key=FAKE_KEY))
    url = sync_url(bridge.ctx.urls, "talkabout")

    status, document = await mine.fetch(url)  # signed by mine.test's instance actor
    assert status == 200
    assert document["id"] == url and document["type"] == "OrderedCollection"
    assert sorted(document["orderedItems"]) == sorted(actor.id for actor in ours)
    assert document["totalItems"] == 3
    status, document = await theirs.fetch(url, signed_by=theirs.actors["other"])
    assert status == 200 and document["orderedItems"] == [theirs.actors["other"].id]

    async with mine.session.get(url, headers={"Accept": "application/activity+json"}) as resp:
        assert resp.status == 401  # unsigned: the list is nobody else's business
    actor = mine.instance_actor
    headers, _ = sign_request(
        "GET", url, b"", key=actor.key, key_id=actor.key_id, now=clock.now - timedelta(hours=2)
    )
    async with mine.session.get(url, headers=headers) as resp:
        assert resp.status == 401
    await bridge.ctx.store.block_domain("mine.test", None, clock.now)
    assert (await mine.fetch(url))[0] == 403
    missing = sync_url(bridge.ctx.urls, "nobody")
    assert (await theirs.fetch(missing))[0] == 404


async def test_the_signing_threads_sign_many_at_once_and_hand_back_errors(
    keypair: KeyPair,
) -> None:
    signer = OutboundSigner(threads=2)
    now = datetime(2026, 5, 1, tzinfo=UTC)
    headers = {"Content-Type": "application/activity+json"}
    key_id = "https://bridge.test/users/talkabout#main-key"
    try:
        inboxes = [f"https://h{n}.test/users/u{n}/inbox" for n in range(40)]
        signed = await asyncio.gather(
            *(
                signer.sign(
                    "rfc9421",
                    "POST",
                    inbox,
                    headers,
                    b"{}",
                    key_id=key_id,
                    private_pem=keypair.private_pem,
                    now=now,
                )
                for inbox in inboxes
            )
        )
        key = signing_key(keypair.private_pem)
        for inbox, result in zip(inboxes, signed, strict=True):
            expected = signed_headers(
                "rfc9421", "POST", inbox, headers, b"{}", key_id=key_id, key=key, now=now
            )
            assert result == expected, "each delivery gets its own request's signature"
        with pytest.raises(UnsupportedURL):
            await signer.sign(
                "cavage",
                "POST",
                "not a url",
                headers,
                b"{}",
                key_id=key_id,
                private_pem=keypair.private_pem,
                now=now,
            )
        # A delivery that gives up while its signature waits does not disturb the others.
        doomed = asyncio.ensure_future(
            signer.sign(
                "cavage",
                "POST",
                inboxes[0],
                headers,
                b"{}",
                key_id=key_id,
                private_pem=keypair.private_pem,
                now=now,
            )
        )
        doomed.cancel()
        after = await signer.sign(
            "cavage",
            "POST",
            inboxes[1],
            headers,
            b"{}",
            key_id=key_id,
            private_pem=keypair.private_pem,
            now=now,
        )
        assert "Signature" in after and after["Host"] == "h1.test"
    finally:
        signer.close()
    assert signer._workers == [], "close stops the threads"


def test_a_page_is_enqueued_host_after_host_in_turns() -> None:
    def new(inbox: str) -> NewJob:
        return NewJob(DELIVER, {"inbox": inbox}, host=host_of(inbox))

    page = [
        *(new(f"https://a.test/u/{n}/inbox") for n in range(3)),
        new("https://b.test/inbox"),
        *(new(f"https://c.test/u/{n}/inbox") for n in range(2)),
    ]
    turns = [job.payload["inbox"] for job in interleave_hosts(page)]
    assert turns == [
        "https://a.test/u/0/inbox",
        "https://b.test/inbox",
        "https://c.test/u/0/inbox",
        "https://a.test/u/1/inbox",
        "https://c.test/u/1/inbox",
        "https://a.test/u/2/inbox",
    ]
    assert interleave_hosts([]) == []
