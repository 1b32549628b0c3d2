"""WebSub subscriber side against a fake hub, with the bridge's callback on a real server."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from collections.abc import Awaitable, Callable
from datetime import timedelta

import aiohttp
import pytest
from aiohttp import web

from bridge.activitypub.urls import Urls
from bridge.appkeys import CONTEXT
from bridge.context import BridgeContext
from bridge.ingest import websub
from bridge.ingest.poller import PollReport, poll_blog, run_poller
from bridge.store.base import Blog, NewBlog, OutboxActivity, WebSubSubscription
from bridge.store.sqlite import SQLiteStore
from tests.conftest import FakeClock, make_config
from tests.fakes.feedhost import FeedHost, Post, post
from tests.fakes.hub import FakeHub

Serve = Callable[[web.Application], Awaitable[str]]

LEASE = 10 * 86400
MAX_FEED_BYTES = 256 * 1024
LIMITS: dict[str, float] = {
    "fetch_timeout": 0.5,
    "min_poll_interval": 300,
    "max_poll_interval": 6 * 3600,
    "max_error_backoff": 24 * 3600,
    "poll_jitter": 0.1,
    "max_feed_bytes": MAX_FEED_BYTES,
    "websub_lease_seconds": LEASE,
}


@pytest.fixture
async def wctx(
    sqlite_store: SQLiteStore, http: aiohttp.ClientSession, clock: FakeClock, serve: Serve
) -> BridgeContext:
    """A context whose base URL is a real server carrying the WebSub callback routes."""
    config = make_config(limits=LIMITS)
    ctx = BridgeContext(
        config=config,
        store=sqlite_store,
        http=http,
        remote=http,
        urls=Urls(config.base_url),
        clock=clock,
    )
    app = web.Application()
    app[CONTEXT] = ctx
    app.add_routes(websub.routes)
    base = await serve(app)
    # The port is known only now; handlers read the context per request.
    ctx.config = make_config(base, limits=LIMITS)
    ctx.urls = Urls(ctx.config.base_url)
    return ctx


@pytest.fixture
async def hub(http: aiohttp.ClientSession, serve: Serve) -> FakeHub:
    fake = FakeHub(session=http)
    await fake.start(serve)
    return fake


@pytest.fixture
async def host(serve: Serve, hub: FakeHub) -> FeedHost:
    feed_host = FeedHost(items=[post(2), post(1)], hub=hub.url)
    await feed_host.start(serve)
    feed_host.self_url = feed_host.feed_url
    return feed_host


@pytest.fixture
async def blog(wctx: BridgeContext, host: FeedHost, clock: FakeClock) -> Blog:
    return await wctx.store.add_blog(NewBlog("fakeblog", host.feed_url), clock())


async def poll(ctx: BridgeContext) -> PollReport:
    current = await ctx.store.get_blog("fakeblog")
    assert current is not None
    return await poll_blog(ctx, current)


async def subscription(ctx: BridgeContext, blog: Blog) -> WebSubSubscription:
    sub = await ctx.store.get_websub(blog.id)
    assert sub is not None
    return sub


async def activities(ctx: BridgeContext, blog: Blog) -> list[OutboxActivity]:
    return await ctx.store.list_activities(blog.id, 1000)


async def next_poll_in(ctx: BridgeContext, clock: FakeClock) -> float:
    current = await ctx.store.get_blog("fakeblog")
    assert current is not None and current.feed.next_poll_at is not None
    return (current.feed.next_poll_at - clock()).total_seconds()


def fresh_posts(clock: FakeClock, count: int = 3) -> list[Post]:
    """Posts six hours apart, the newest an hour old: adaptive polling comes back in 3 hours."""
    return [
        Post(f"fresh-{i}", f"Frisch {i}", f"<p>{i}</p>", clock() - timedelta(hours=1 + 6 * i))
        for i in range(count)
    ]


async def subscribed(ctx: BridgeContext, hub: FakeHub, blog: Blog) -> WebSubSubscription:
    await poll(ctx)
    await hub.settled()
    sub = await subscription(ctx, blog)
    assert sub.status == "active"
    return sub


async def test_first_poll_subscribes_and_the_hub_verifies(
    wctx: BridgeContext, hub: FakeHub, host: FeedHost, blog: Blog, clock: FakeClock
) -> None:
    report = await poll(wctx)
    await hub.settled()

    assert report.outcome == "new-content"
    assert len(hub.requests) == 1
    form = hub.last
    assert form["hub.mode"] == "subscribe"
    assert form["hub.topic"] == host.feed_url
    assert form["hub.callback"] == wctx.urls.websub_callback("fakeblog")
    assert form["hub.lease_seconds"] == str(LEASE)
    assert len(form["hub.secret"]) == 64 and int(form["hub.secret"], 16) >= 0
    assert [v.confirmed for v in hub.verifications] == [True]
    sub = await subscription(wctx, blog)
    assert (sub.status, sub.hub_url, sub.topic_url) == ("active", hub.url, host.feed_url)
    assert sub.secret == form["hub.secret"]
    assert sub.lease_expires_at == clock() + timedelta(seconds=LEASE)


async def test_hub_named_in_a_link_header_is_used(
    wctx: BridgeContext, hub: FakeHub, host: FeedHost, blog: Blog
) -> None:
    host.hub = None
    host.self_url = None
    topic = f"{host.base}/canonical-feed"
    host.link_header = f'<{hub.url}>; rel="hub", <{topic}>; rel="self"'

    await poll(wctx)
    await hub.settled()

    assert hub.last["hub.topic"] == topic
    assert (await subscription(wctx, blog)).status == "active"


async def test_each_subscription_gets_its_own_secret(
    wctx: BridgeContext, hub: FakeHub, host: FeedHost, serve: Serve, clock: FakeClock
) -> None:
    other = FeedHost(items=[post(1)], hub=hub.url)
    await other.start(serve)
    await wctx.store.add_blog(NewBlog("fakeblog", host.feed_url), clock())
    second = await wctx.store.add_blog(NewBlog("otherblog", other.feed_url), clock())
    await poll(wctx)
    await poll_blog(wctx, second)
    await hub.settled()
    secrets = {form["hub.secret"] for form in hub.requests}
    assert len(secrets) == 2


async def test_active_subscription_polls_at_the_maximum_interval(
    wctx: BridgeContext, hub: FakeHub, host: FeedHost, blog: Blog, clock: FakeClock
) -> None:
    await subscribed(wctx, hub, blog)
    # Posts 6 hours apart: adaptive polling would come back in 3 hours.
    clock.advance(600)

    await poll(wctx)

    assert 6 * 3600 * 0.9 <= await next_poll_in(wctx, clock) <= 6 * 3600 * 1.1
    assert len(hub.requests) == 1  # no second subscription


async def test_signed_push_is_recorded_and_delivered(
    wctx: BridgeContext, hub: FakeHub, host: FeedHost, blog: Blog, clock: FakeClock
) -> None:
    await subscribed(wctx, hub, blog)
    clock.advance(600)
    host.items = [post(3)]  # a hub may push only what is new

    status = await hub.push(host.document())

    assert status == 200
    created = (await activities(wctx, blog))[-1]
    assert (created.type, created.deliver) == ("Create", True)
    assert created.entry_id == f"{host.base}/?p=post-3"
    assert await wctx.store.count_entries(blog.id) == 3
    # A partial document: the entries it does not list were not taken for vanished.
    assert host.hits["/posts/post-1"] == host.hits["/posts/post-2"] == 0
    assert len(await wctx.store.entries_in_feed(blog.id)) == 3


@pytest.mark.parametrize("method", ["sha1", "sha512"])
async def test_other_signature_methods_are_accepted(
    wctx: BridgeContext, hub: FakeHub, host: FeedHost, blog: Blog, method: str
) -> None:
    await subscribed(wctx, hub, blog)
    host.items.insert(0, post(3))

    assert await hub.push(host.document(), method=method) == 200

    assert len(await activities(wctx, blog)) == 3


@pytest.mark.parametrize(
    "bad",
    [
        {"secret": "not-the-secret"},
        {"signed": False},
        {"signature": "sha256="},
        {"signature": "md5=00112233"},
        {"signature": "garbage"},
    ],
)
async def test_push_with_a_bad_signature_is_acknowledged_and_ignored(
    wctx: BridgeContext,
    hub: FakeHub,
    host: FeedHost,
    blog: Blog,
    bad: dict[str, object],
    caplog: pytest.LogCaptureFixture,
) -> None:
    await subscribed(wctx, hub, blog)
    host.items.insert(0, post(3))

    status = await hub.push(host.document(), **bad)  # type: ignore[arg-type]

    assert 200 <= status < 300
    assert len(await activities(wctx, blog)) == 2
    assert await wctx.store.count_entries(blog.id) == 2
    assert sum("push ignored" in r.getMessage() for r in caplog.records) == 1


async def test_push_of_garbage_is_acknowledged_and_ignored(
    wctx: BridgeContext, hub: FakeHub, blog: Blog
) -> None:
    await subscribed(wctx, hub, blog)
    status = await hub.push(b"<html><body>not a feed</body></html>", content_type="text/html")
    assert 200 <= status < 300
    assert len(await activities(wctx, blog)) == 2


async def test_push_larger_than_the_cap_is_refused(
    wctx: BridgeContext, hub: FakeHub, blog: Blog
) -> None:
    await subscribed(wctx, hub, blog)
    assert await hub.push(b"x" * (MAX_FEED_BYTES + 1)) == 413
    assert len(await activities(wctx, blog)) == 2


async def test_push_without_content_length_is_capped_while_reading(
    wctx: BridgeContext, hub: FakeHub, blog: Blog, http: aiohttp.ClientSession
) -> None:
    await subscribed(wctx, hub, blog)

    async def chunks() -> object:
        for _ in range(MAX_FEED_BYTES // 4096 + 2):
            yield b"y" * 4096

    async with http.post(wctx.urls.websub_callback("fakeblog"), data=chunks()) as response:
        assert response.status == 413


async def test_callbacks_of_unknown_blogs_are_404(
    wctx: BridgeContext, http: aiohttp.ClientSession
) -> None:
    url = wctx.urls.websub_callback("nobody")
    params = {"hub.mode": "subscribe", "hub.topic": "x", "hub.challenge": "c"}
    async with http.get(url, params=params) as response:
        assert response.status == 404
    async with http.post(url, data=b"<rss/>") as response:
        assert response.status == 404


async def test_hub_refusing_the_subscription_leaves_polling_adaptive(
    wctx: BridgeContext, hub: FakeHub, host: FeedHost, blog: Blog, clock: FakeClock
) -> None:
    hub.subscribe_status = 500
    host.items = fresh_posts(clock)

    report = await poll(wctx)

    assert report.outcome == "new-content"
    sub = await subscription(wctx, blog)
    assert sub.status == "failed"
    assert sub.last_error is not None and "500" in sub.last_error
    assert (await wctx.store.get_blog("fakeblog")).feed.status == "ok"  # type: ignore[union-attr]
    assert 3 * 3600 * 0.9 <= await next_poll_in(wctx, clock) <= 3 * 3600 * 1.1

    # The hub is not asked again on every poll, only after the error backoff.
    clock.advance(3 * 3600)
    host.items.insert(0, Post("new", "Neu", "<p>neu</p>", clock()))
    report = await poll(wctx)
    assert report.created == 1
    assert len(hub.requests) == 1
    hub.subscribe_status = 202
    clock.advance(LIMITS["max_error_backoff"])
    await poll(wctx)
    await hub.settled()
    assert len(hub.requests) == 2
    assert (await subscription(wctx, blog)).status == "active"


async def test_unreachable_hub_counts_as_a_failed_subscription(
    wctx: BridgeContext, host: FeedHost, blog: Blog
) -> None:
    host.hub = "http://127.0.0.1:9/hub"  # discard port: nothing listens

    report = await poll(wctx)

    assert report.outcome == "new-content"
    sub = await subscription(wctx, blog)
    assert sub.status == "failed" and sub.last_error


async def test_verification_with_another_topic_is_404(
    wctx: BridgeContext, hub: FakeHub, host: FeedHost, blog: Blog
) -> None:
    hub.topic_override = f"{host.base}/some-other-feed"

    await poll(wctx)
    await hub.settled()

    assert [v.status for v in hub.verifications] == [404]
    assert (await subscription(wctx, blog)).status == "pending"


async def test_unsubscribe_we_did_not_ask_for_is_404(
    wctx: BridgeContext, hub: FakeHub, blog: Blog
) -> None:
    await subscribed(wctx, hub, blog)
    check = await hub.verify_intent(hub.last, mode="unsubscribe")
    assert check.status == 404
    assert (await subscription(wctx, blog)).status == "active"


async def test_denied_subscription_falls_back_to_polling_soon(
    wctx: BridgeContext, hub: FakeHub, blog: Blog, clock: FakeClock
) -> None:
    await subscribed(wctx, hub, blog)
    clock.advance(60)
    await poll(wctx)
    assert await next_poll_in(wctx, clock) > 5 * 3600

    assert await hub.deny(hub.last, "topic not allowed") == 200

    sub = await subscription(wctx, blog)
    assert sub.status == "failed"
    assert sub.last_error == "hub denied: topic not allowed"
    assert await next_poll_in(wctx, clock) <= 0
    assert [b.handle for b in await wctx.store.due_blogs(clock())] == ["fakeblog"]


async def test_lapsed_lease_means_adaptive_polling(
    wctx: BridgeContext, hub: FakeHub, host: FeedHost, blog: Blog, clock: FakeClock
) -> None:
    await subscribed(wctx, hub, blog)
    hub.verify = False  # the hub takes the new request but never confirms it
    clock.advance(LEASE + 60)
    host.items = fresh_posts(clock)

    await poll(wctx)

    assert 3 * 3600 * 0.9 <= await next_poll_in(wctx, clock) <= 3 * 3600 * 1.1
    assert len(hub.requests) == 2  # a lapsed lease means subscribing afresh
    assert (await subscription(wctx, blog)).status == "pending"


async def test_renewal_resubscribes_before_the_lease_ends(
    wctx: BridgeContext, hub: FakeHub, blog: Blog, clock: FakeClock
) -> None:
    first = await subscribed(wctx, hub, blog)
    clock.advance(LEASE - 3 * 86400)
    assert await websub.renew_expiring(wctx) == []  # not yet: three days left

    clock.advance(2 * 86400 + 3600)  # 23 hours left
    renewed = await websub.renew_expiring(wctx)
    await hub.settled()

    assert [s.blog_id for s in renewed] == [blog.id]
    assert len(hub.requests) == 2
    assert hub.last["hub.mode"] == "subscribe"
    assert hub.last["hub.secret"] == first.secret
    sub = await subscription(wctx, blog)
    assert sub.status == "active"
    assert sub.lease_expires_at == clock() + timedelta(seconds=LEASE)


async def test_failed_renewal_falls_back_to_polling(
    wctx: BridgeContext, hub: FakeHub, blog: Blog, clock: FakeClock
) -> None:
    await subscribed(wctx, hub, blog)
    clock.advance(LEASE - 3600)
    await poll(wctx)  # the lease still runs: next poll at the maximum interval
    assert await next_poll_in(wctx, clock) > 5 * 3600
    hub.subscribe_status = 503

    await websub.renew_expiring(wctx)

    assert (await subscription(wctx, blog)).status == "failed"
    assert await next_poll_in(wctx, clock) <= 0


async def test_run_poller_renews_leases(
    wctx: BridgeContext, hub: FakeHub, blog: Blog, clock: FakeClock
) -> None:
    await subscribed(wctx, hub, blog)
    clock.advance(LEASE - 3600)
    await poll(wctx)  # renewal is due now; the next poll, 6 hours out, is not
    stop = asyncio.Event()

    task = asyncio.create_task(run_poller(wctx, stop, tick=0.02))
    async with asyncio.timeout(5):
        await hub.wait_requests(2)
        await hub.settled()
    stop.set()
    await asyncio.wait_for(task, 1)

    assert (await subscription(wctx, blog)).lease_expires_at == clock() + timedelta(seconds=LEASE)


async def test_gone_feed_unsubscribes(
    wctx: BridgeContext, hub: FakeHub, host: FeedHost, blog: Blog
) -> None:
    await subscribed(wctx, hub, blog)
    host.feed_status = 410

    report = await poll(wctx)
    await hub.settled()

    assert report.outcome == "gone"
    assert hub.last["hub.mode"] == "unsubscribe"
    assert "hub.secret" not in hub.last
    assert hub.verifications[-1].confirmed
    assert await wctx.store.get_websub(blog.id) is None


def test_signature_matches_every_websub_method() -> None:
    body = b"<rss>payload</rss>"
    for method in ("sha1", "sha256", "sha384", "sha512"):
        digest = hmac.new(b"s3cret", body, getattr(hashlib, method)).hexdigest()
        assert websub.signature_matches(body, f"{method}={digest}", "s3cret")
        assert websub.signature_matches(body, f"{method.upper()}={digest.upper()}", "s3cret")
        assert not websub.signature_matches(body + b" ", f"{method}={digest}", "s3cret")
        assert not websub.signature_matches(body, f"{method}={digest}", "other")
    assert not websub.signature_matches(body, None, "s3cret")
    assert not websub.signature_matches(body, "", "s3cret")


async def test_feed_that_stops_naming_a_hub_is_unsubscribed(
    wctx: BridgeContext, hub: FakeHub, host: FeedHost, blog: Blog, clock: FakeClock
) -> None:
    await subscribed(wctx, hub, blog)
    host.hub = None
    clock.advance(600)

    report = await poll(wctx)
    await hub.settled()

    assert report.outcome == "new-content"
    assert [form["hub.mode"] for form in hub.requests] == ["subscribe", "unsubscribe"]
    assert hub.verifications[-1].mode == "unsubscribe" and hub.verifications[-1].confirmed
    assert await wctx.store.get_websub(blog.id) is None
    # Without a hub the next poll is adaptive again (not pinned to the maximum).
    host.items = fresh_posts(clock)
    clock.advance(600)
    await poll(wctx)
    assert await next_poll_in(wctx, clock) <= 3 * 3600 * 1.1
