"""The poller against a real fake blog on 127.0.0.1 and a real SQLite file."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import timedelta

import aiohttp
import pytest
from aiohttp import web

from bridge.activitypub.urls import Urls, entry_slug
from bridge.context import BridgeContext
from bridge.ingest.document import ingest_document
from bridge.ingest.poller import PollReport, poll_blog, run_poller
from bridge.store.base import Blog, NewBlog, OutboxActivity
from bridge.store.sqlite import SQLiteStore
from tests.conftest import TALKABOUT, FakeClock, make_config
from tests.fakes.feedhost import FeedHost, post

Serve = Callable[[web.Application], Awaitable[str]]

LIMITS = {
    "fetch_timeout": 0.4,
    "min_poll_interval": 300,
    "max_poll_interval": 6 * 3600,
    "max_error_backoff": 24 * 3600,
    "poll_jitter": 0.1,
    "max_feed_bytes": 1024 * 1024,
}


@pytest.fixture
def pctx(sqlite_store: SQLiteStore, http: aiohttp.ClientSession, clock: FakeClock) -> BridgeContext:
    config = make_config(limits=LIMITS)
    return BridgeContext(
        config=config,
        store=sqlite_store,
        http=http,
        remote=http,
        urls=Urls(config.base_url),
        clock=clock,
    )


@pytest.fixture
async def host(serve: Serve) -> FeedHost:
    feed_host = FeedHost(items=[post(2), post(1)])
    await feed_host.start(serve)
    return feed_host


@pytest.fixture
async def blog(pctx: BridgeContext, host: FeedHost, clock: FakeClock) -> Blog:
    return await pctx.store.add_blog(NewBlog("fakeblog", host.feed_url), clock())


async def poll(ctx: BridgeContext, handle: str = "fakeblog") -> PollReport:
    current = await ctx.store.get_blog(handle)
    assert current is not None
    return await poll_blog(ctx, current)


async def reload(ctx: BridgeContext, handle: str = "fakeblog") -> Blog:
    current = await ctx.store.get_blog(handle)
    assert current is not None
    return current


async def activities(ctx: BridgeContext, blog: Blog) -> list[OutboxActivity]:
    return await ctx.store.list_activities(blog.id, 1000)


def guid(host: FeedHost, n: int) -> str:
    return f"{host.base}/?p=post-{n}"


async def test_first_poll_of_the_talkabout_feed_fills_the_outbox_without_delivery(
    pctx: BridgeContext, serve: Serve, clock: FakeClock
) -> None:
    host = FeedHost(body=(TALKABOUT / "feed.rss").read_bytes())
    await host.start(serve)
    blog = await pctx.store.add_blog(NewBlog("talkabout", host.feed_url), clock())

    report = await poll(pctx, "talkabout")

    assert report == PollReport("talkabout", "new-content", created=2)
    recorded = await activities(pctx, blog)
    assert [(a.type, a.deliver) for a in recorded] == [("Create", False), ("Create", False)]
    # Oldest first: the February 14 post before the February 21 one.
    assert [a.entry_id for a in recorded] == [
        "http://www.talkabout.de/?p=1201",
        "http://www.talkabout.de/?p=1234",
    ]
    assert recorded[1].payload["object"]["id"] == pctx.urls.article(
        "talkabout", entry_slug("http://www.talkabout.de/?p=1234")
    )
    after = await reload(pctx, "talkabout")
    assert after.feed.first_poll_done
    assert after.feed.status == "ok"
    assert after.feed.failures == 0
    assert after.meta.title == "talkabout"
    assert await pctx.store.count_entries(blog.id) == 2
    # Nothing but the feed was requested: the posts' links on www.talkabout.de were not touched.
    assert list(host.hits) == ["/feed"]


async def test_new_entry_on_a_later_poll_is_delivered(
    pctx: BridgeContext, host: FeedHost, blog: Blog, clock: FakeClock
) -> None:
    await poll(pctx)
    clock.advance(3600)
    host.items.insert(0, post(3))

    report = await poll(pctx)

    assert report == PollReport("fakeblog", "new-content", created=1)
    recorded = await activities(pctx, blog)
    assert [(a.type, a.deliver) for a in recorded] == [
        ("Create", False),
        ("Create", False),
        ("Create", True),
    ]
    assert recorded[-1].entry_id == guid(host, 3)
    assert recorded[-1].payload["object"]["url"] == host.post_url("post-3")
    assert await pctx.store.count_entries(blog.id) == 3


async def test_unchanged_feed_answers_304_and_records_nothing(
    pctx: BridgeContext, host: FeedHost, blog: Blog, clock: FakeClock
) -> None:
    await poll(pctx)
    first = await reload(pctx)
    assert first.feed.etag
    clock.advance(7200)

    report = await poll(pctx)

    assert report == PollReport("fakeblog", "not-modified")
    conditional = host.feed_requests()[-1]
    assert conditional["If-None-Match"] == first.feed.etag
    assert conditional["If-Modified-Since"] == first.feed.last_modified
    assert "feedfed" in conditional["User-Agent"]
    assert len(await activities(pctx, blog)) == 2
    second = await reload(pctx)
    assert second.feed.etag == first.feed.etag
    assert second.feed.last_polled_at == clock()
    assert second.feed.next_poll_at is not None and second.feed.next_poll_at > clock()


async def test_full_refetch_of_the_same_content_changes_nothing(
    pctx: BridgeContext, host: FeedHost, blog: Blog, clock: FakeClock
) -> None:
    host.validators = False
    await poll(pctx)
    clock.advance(600)

    report = await poll(pctx)

    assert report == PollReport("fakeblog", "new-content")
    assert "If-None-Match" not in host.feed_requests()[-1]
    assert len(await activities(pctx, blog)) == 2


async def test_edited_entry_records_an_update(
    pctx: BridgeContext, host: FeedHost, blog: Blog, clock: FakeClock
) -> None:
    await poll(pctx)
    clock.advance(600)
    host.items[1] = post(1, content="<p>Korrigierter Inhalt</p>")

    report = await poll(pctx)

    assert report == PollReport("fakeblog", "new-content", updated=1)
    update = (await activities(pctx, blog))[-1]
    assert (update.type, update.deliver, update.entry_id) == ("Update", True, guid(host, 1))
    assert "Korrigierter Inhalt" in update.payload["object"]["content"]
    stored = await pctx.store.get_entries(blog.id, [guid(host, 1)])
    assert stored[guid(host, 1)].entry.content_html == "<p>Korrigierter Inhalt</p>"


async def test_reordered_and_repeated_entries_change_nothing(
    pctx: BridgeContext, host: FeedHost, blog: Blog, clock: FakeClock
) -> None:
    await poll(pctx)
    clock.advance(600)
    host.items = [post(1), post(2), post(1)]

    report = await poll(pctx)

    assert report == PollReport("fakeblog", "new-content")
    assert len(await activities(pctx, blog)) == 2
    assert host.hits["/posts/post-1"] == host.hits["/posts/post-2"] == 0


@pytest.mark.parametrize("status", [404, 410])
async def test_vanished_entry_whose_page_is_gone_is_deleted(
    pctx: BridgeContext, host: FeedHost, blog: Blog, clock: FakeClock, status: int
) -> None:
    await poll(pctx)
    clock.advance(600)
    host.items = [post(2)]
    host.post_status["post-1"] = status

    report = await poll(pctx)

    assert report == PollReport("fakeblog", "new-content", deleted=1)
    delete = (await activities(pctx, blog))[-1]
    assert (delete.type, delete.deliver, delete.entry_id) == ("Delete", True, guid(host, 1))
    assert delete.payload["object"]["type"] == "Tombstone"
    stored = (await pctx.store.get_entries(blog.id, [guid(host, 1)]))[guid(host, 1)]
    assert stored.deleted_at == clock()
    assert await pctx.store.count_entries(blog.id) == 1
    assert host.hits["/posts/post-1"] == 1
    assert host.hits["/posts/post-2"] == 0


async def test_vanished_entry_whose_page_exists_just_left_the_window(
    pctx: BridgeContext, host: FeedHost, blog: Blog, clock: FakeClock
) -> None:
    await poll(pctx)
    clock.advance(600)
    host.items = [post(3), post(2)]

    report = await poll(pctx)

    assert report == PollReport("fakeblog", "new-content", created=1, dropped=1)
    assert [a.type for a in await activities(pctx, blog)] == ["Create"] * 3
    stored = (await pctx.store.get_entries(blog.id, [guid(host, 1)]))[guid(host, 1)]
    assert stored.deleted_at is None and not stored.in_feed
    assert await pctx.store.count_entries(blog.id) == 3
    assert host.hits["/posts/post-1"] == 1

    # Out of the window it is not asked about again; back in the feed, it is simply listed.
    clock.advance(600)
    await poll(pctx)
    assert host.hits["/posts/post-1"] == 1
    host.items = [post(3), post(2), post(1)]
    clock.advance(600)
    report = await poll(pctx)
    assert report == PollReport("fakeblog", "new-content")
    stored = (await pctx.store.get_entries(blog.id, [guid(host, 1)]))[guid(host, 1)]
    assert stored.in_feed
    assert len(await activities(pctx, blog)) == 3


async def test_vanished_entry_whose_page_cannot_be_reached_is_asked_again(
    pctx: BridgeContext, host: FeedHost, blog: Blog, clock: FakeClock
) -> None:
    await poll(pctx)
    host.items = [post(2)]
    host.post_delay = 2.0  # beyond the fetch timeout

    report = await poll(pctx)

    assert report == PollReport("fakeblog", "new-content")
    stored = (await pctx.store.get_entries(blog.id, [guid(host, 1)]))[guid(host, 1)]
    assert stored.in_feed and stored.deleted_at is None
    host.post_delay = 0.0
    host.post_status["post-1"] = 404
    report = await poll(pctx)
    assert report == PollReport("fakeblog", "new-content", deleted=1)


async def test_deleted_entry_that_comes_back_is_created_again(
    pctx: BridgeContext, host: FeedHost, blog: Blog, clock: FakeClock
) -> None:
    await poll(pctx)
    host.items = [post(2)]
    host.post_status["post-1"] = 404
    await poll(pctx)
    host.items = [post(2), post(1)]
    host.post_status.clear()

    report = await poll(pctx)

    assert report == PollReport("fakeblog", "new-content", created=1)
    recorded = await activities(pctx, blog)
    assert [a.type for a in recorded][-2:] == ["Delete", "Create"]
    assert await pctx.store.count_entries(blog.id) == 2
    # Under a new object id: Mastodon keeps a tombstone for the deleted one and would refuse
    # a Create of it.
    first = next(a for a in recorded if a.entry_id == guid(host, 1) and a.type == "Create")
    delete, again = recorded[-2:]
    old_id = first.payload["object"]["id"]
    assert delete.payload["object"] == {**delete.payload["object"], "id": old_id}
    new_id = again.payload["object"]["id"]
    assert new_id != old_id
    # An edit after that keeps the new id, and a second return gets yet another.
    clock.advance(600)
    host.items[1] = post(1, content="<p>Wieder da, korrigiert</p>")
    await poll(pctx)
    update = (await activities(pctx, blog))[-1]
    assert (update.type, update.payload["object"]["id"]) == ("Update", new_id)
    host.items = [post(2)]
    host.post_status["post-1"] = 410
    await poll(pctx)
    host.items = [post(2), post(1)]
    host.post_status.clear()
    await poll(pctx)
    third = (await activities(pctx, blog))[-1]
    assert third.type == "Create"
    assert third.payload["object"]["id"] not in (old_id, new_id)


async def test_permanent_redirect_moves_the_feed_url(
    pctx: BridgeContext, host: FeedHost, clock: FakeClock
) -> None:
    host.moves["/old-feed"] = "/feed"
    await pctx.store.add_blog(NewBlog("fakeblog", f"{host.base}/old-feed"), clock())

    report = await poll(pctx)

    assert report.outcome == "new-content"
    assert (await reload(pctx)).feed_url == host.feed_url
    clock.advance(600)
    await poll(pctx)
    assert host.hits["/old-feed"] == 1
    assert host.hits["/feed"] == 2


async def test_gone_feed_stops_polling(
    pctx: BridgeContext, host: FeedHost, blog: Blog, clock: FakeClock
) -> None:
    await poll(pctx)
    host.feed_status = 410

    report = await poll(pctx)

    assert report.outcome == "gone"
    assert report.error is not None and "410" in report.error
    after = await reload(pctx)
    assert after.feed.status == "gone"
    assert after.feed.last_error is not None and "gone" in after.feed.last_error
    clock.advance(365 * 86400)
    assert await pctx.store.due_blogs(clock()) == []
    assert await pctx.store.count_entries(blog.id) == 2


FAILURES: dict[str, dict[str, object]] = {
    # Cut off before the first item: a broken document that lists no entries.
    "malformed": {"body": b"<?xml version='1.0'?><rss version='2.0'><channel><title>Cut</ti"},
    "html": {
        "body": b"<!DOCTYPE html><html><head><title>Hi</title></head><body>hi</body></html>",
        "content_type": "text/html",
    },
    "huge": {"huge_bytes": 50 * 1024 * 1024},
    "timeout": {"delay": 2.0},
    "server-error": {"feed_status": 500},
}


@pytest.mark.parametrize("failure", sorted(FAILURES))
async def test_feed_failure_backs_off_and_stores_nothing(
    pctx: BridgeContext,
    host: FeedHost,
    blog: Blog,
    clock: FakeClock,
    failure: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    for name, value in FAILURES[failure].items():
        setattr(host, name, value)

    report = await poll(pctx)

    assert report.outcome == "error"
    assert report.error
    logged = [r.getMessage() for r in caplog.records if r.name == "bridge.ingest.poller"]
    assert logged == [f"poll fakeblog failed: {report.error}"]
    assert "\n" not in logged[0]
    after = await reload(pctx)
    assert after.feed.status == "failing"
    assert after.feed.failures == 1
    assert after.feed.last_error == report.error
    assert not after.feed.first_poll_done
    assert after.feed.next_poll_at is not None
    backoff = (after.feed.next_poll_at - clock()).total_seconds()
    assert 300 * 0.9 <= backoff <= 300 * 1.1
    assert await pctx.store.count_entries(blog.id) == 0
    assert await activities(pctx, blog) == []
    assert after.meta == blog.meta


async def test_failures_after_success_keep_everything_and_back_off_further(
    pctx: BridgeContext, host: FeedHost, blog: Blog, clock: FakeClock
) -> None:
    await poll(pctx)
    good = await reload(pctx)
    host.feed_status = 500

    await poll(pctx)
    clock.advance(600)
    report = await poll(pctx)

    assert report.error is not None and "500" in report.error
    after = await reload(pctx)
    assert after.feed.failures == 2
    assert after.feed.etag == good.feed.etag
    assert after.feed.last_success_at == good.feed.last_success_at
    assert after.feed.next_poll_at is not None
    assert 600 * 0.9 <= (after.feed.next_poll_at - clock()).total_seconds() <= 600 * 1.1
    assert len(await activities(pctx, blog)) == 2
    assert await pctx.store.count_entries(blog.id) == 2


async def test_failing_blog_recovers(
    pctx: BridgeContext, host: FeedHost, blog: Blog, clock: FakeClock
) -> None:
    host.feed_status = 500
    await poll(pctx)
    await poll(pctx)
    host.feed_status = None
    clock.advance(600)

    report = await poll(pctx)

    assert report == PollReport("fakeblog", "new-content", created=2)
    after = await reload(pctx)
    assert (after.feed.status, after.feed.failures, after.feed.last_error) == ("ok", 0, None)
    assert after.feed.first_poll_done
    assert [a.deliver for a in await activities(pctx, blog)] == [False, False]


async def test_next_poll_follows_the_posting_rate(
    pctx: BridgeContext, host: FeedHost, blog: Blog, clock: FakeClock
) -> None:
    host.items = [post(n, hours=4) for n in range(6, 0, -1)]  # a post every 4 hours
    clock.now = host.items[0].published + timedelta(hours=1)

    await poll(pctx)

    after = await reload(pctx)
    assert after.feed.next_poll_at is not None
    interval = (after.feed.next_poll_at - clock()).total_seconds()
    assert after.feed.poll_interval == interval
    assert 7200 * 0.9 <= interval <= 7200 * 1.1


async def test_concurrent_documents_for_one_blog_record_each_entry_once(
    pctx: BridgeContext, host: FeedHost, blog: Blog
) -> None:
    await poll(pctx)
    host.items.insert(0, post(3))
    body = host.document()
    current = await reload(pctx)

    results = await asyncio.gather(
        *(
            ingest_document(pctx, current, body, "application/rss+xml", url=host.feed_url)
            for _ in range(3)
        )
    )

    assert sorted(r.created for r in results) == [0, 0, 1]
    assert [a.type for a in await activities(pctx, blog)] == ["Create"] * 3


async def test_run_poller_polls_due_blogs_until_stopped(
    pctx: BridgeContext, serve: Serve, clock: FakeClock
) -> None:
    hosts = [FeedHost(items=[post(1)]) for _ in range(3)]
    for index, feed_host in enumerate(hosts):
        await feed_host.start(serve)
        await pctx.store.add_blog(NewBlog(f"blog{index}", feed_host.feed_url), clock())
    hosts[2].feed_status = 410
    stop = asyncio.Event()

    task = asyncio.create_task(run_poller(pctx, stop, tick=0.02, concurrency=2))
    async with asyncio.timeout(5):
        for feed_host in hosts:
            await feed_host.wait_hits("/feed", 1)
        await asyncio.sleep(0.1)  # several more ticks: nothing is due again yet
    stop.set()
    await asyncio.wait_for(task, 1)

    assert [h.hits["/feed"] for h in hosts] == [1, 1, 1]
    states = [(await reload(pctx, f"blog{i}")).feed.status for i in range(3)]
    assert states == ["ok", "ok", "gone"]

    clock.advance(7 * 3600)  # past the maximum interval: the live blogs are due, not the gone one
    stop = asyncio.Event()
    task = asyncio.create_task(run_poller(pctx, stop, tick=0.02))
    async with asyncio.timeout(5):
        await hosts[0].wait_hits("/feed", 2)
        await hosts[1].wait_hits("/feed", 2)
    stop.set()
    await asyncio.wait_for(task, 1)
    assert hosts[2].hits["/feed"] == 1
