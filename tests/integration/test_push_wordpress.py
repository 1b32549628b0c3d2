"""Push jobs into the fake WordPress blog on 127.0.0.1, through the real push handler and
worker, with one retry per job (``limits.delivery_retries = 1``) and the fake clock moving the
retries along: a reply's push waits for the comment it answers, but never for ever; and
``feedfed blogs backfill`` brings what arrived under an earlier sink to the blog, once."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime

import aiohttp
import pytest

from bridge.activitypub.urls import entry_slug
from bridge.backfeed import push, pusher
from bridge.commands import backfill
from bridge.context import BridgeContext
from bridge.entries import FeedEntry
from bridge.errors import BlogNotFound, ConfigError
from bridge.jobs import PUSH
from bridge.jobs.worker import JobWorker
from bridge.sinks.base import Sink
from bridge.sinks.factory import SinkSettings, build_sink
from bridge.store.base import (
    Blog,
    BlogSettings,
    Comment,
    NewBlog,
    NewComment,
    NewReaction,
    Person,
)
from tests.conftest import FakeClock, make_config
from tests.fakes.wordpress_blog import APP_PASSWORD, USER, FakeWordPressBlog

POST_ID = 7
MAURICE = Person(
    "https://m.example/users/maurice", "Maurice", "@maurice@m.example", "https://m.example/@maurice"
)
MIRKO = Person(
    "https://g.example/users/mirko", "Mirko", "@mirko@g.example", "https://g.example/@mirko"
)
QUESTION = "https://m.example/users/maurice/statuses/1"
ANSWER = "https://g.example/users/mirko/statuses/2"


@pytest.fixture
async def wordpress(http: aiohttp.ClientSession) -> AsyncIterator[FakeWordPressBlog]:
    blog = FakeWordPressBlog(http)
    await blog.start()
    blog.add_post(POST_ID, "teilhaben-lassen", "Ein Plädoyer für die Mitteilung")
    yield blog
    await blog.stop()


@pytest.fixture
async def bctx(ctx: BridgeContext) -> BridgeContext:
    """The test context with one retry per job: a job's second attempt is its last."""
    limits = {"delivery_retries": 1, "job_poll_interval": 0.01}
    return replace(ctx, config=make_config(limits=limits))


async def setup(ctx: BridgeContext, wordpress: FakeWordPressBlog) -> tuple[Blog, str]:
    settings = BlogSettings(sink="wordpress", linkbacks_per_minute=100)
    blog = await ctx.store.add_blog(
        NewBlog("talk", f"{wordpress.url}/feed/", settings), ctx.clock()
    )
    entry = FeedEntry(
        id=f"{wordpress.url}/?p={POST_ID}",
        link=f"{wordpress.url}/teilhaben-lassen/",
        title="Ein Plädoyer für die Mitteilung",
    )
    await ctx.store.save_entry(blog.id, entry, entry_slug(entry.id), ctx.clock())
    return blog, entry.id


def NOW() -> datetime:
    return datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def sinks(http: aiohttp.ClientSession, wordpress: FakeWordPressBlog) -> push.SinkFactory:
    settings = SinkSettings(
        kind="wordpress",
        site_urls=(wordpress.url + "/",),
        wordpress_api_url=f"{wordpress.url}/wp-json",
        wordpress_user=USER,
        wordpress_application_password=APP_PASSWORD,
    )

    def build(ctx: BridgeContext, blog: Blog) -> Sink:
        return build_sink(settings, http, user_agent="feedfed-test", timeout=2.0, clock=ctx.clock)

    return build


async def comment(
    ctx: BridgeContext, blog: Blog, entry_id: str, author: Person, object_id: str, **fields: str
) -> Comment:
    new = NewComment(
        blog_id=blog.id,
        entry_id=entry_id,
        object_id=object_id,
        parent_id=fields.get("parent_id"),
        author=author,
        content_html=f"<p>{fields.get('text', 'Hallo')}</p>",
        published=datetime(2026, 11, 28, 11, 0, tzinfo=UTC),
        state="published",
    )
    added = await ctx.store.add_comment(new, ctx.clock())
    assert added is not None
    return added


async def attempt_all(ctx: BridgeContext, handler: push.Handler) -> None:
    """Let a real worker run every push job due now, then move the clock past any retry."""
    # From the configuration, as in production: the handler and the worker agree on which
    # attempt is a job's last.
    worker = JobWorker.from_config(ctx, {PUSH: handler}, worker_id="test")
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    try:
        async with asyncio.timeout(5):
            while True:
                running = await ctx.store.list_jobs("running", PUSH)
                queued = await ctx.store.list_jobs("queued", PUSH)
                if not running and all(job.run_at > ctx.clock() for job in queued):
                    break
                await asyncio.sleep(0.01)
    finally:
        stop.set()
        await task
    clock = ctx.clock
    assert isinstance(clock, FakeClock)
    clock.advance(600)  # beyond any wait the blog or the reply asked for


async def test_a_reply_goes_top_level_once_its_parents_push_gave_up(
    bctx: BridgeContext, http: aiohttp.ClientSession, wordpress: FakeWordPressBlog
) -> None:
    blog, entry_id = await setup(bctx, wordpress)
    handler = pusher.make_push_handler(sinks(http, wordpress))
    question = await comment(bctx, blog, entry_id, MAURICE, QUESTION, text="Frage?")
    wordpress.rate_limited = 2  # both attempts of the question's push answered 429
    await push.push_comment(bctx, question, "publish")
    await attempt_all(bctx, handler)
    await attempt_all(bctx, handler)
    dead = await bctx.store.list_jobs("dead", PUSH)
    assert len(dead) == 1 and wordpress.comments == {}
    record = await bctx.store.get_sink_item(blog.id, "comment", QUESTION, "wordpress")
    assert record is not None and (record.last_error or "").startswith(pusher.GAVE_UP)

    answer = await comment(bctx, blog, entry_id, MIRKO, ANSWER, parent_id=QUESTION, text="Antwort.")
    await push.push_comment(bctx, answer, "publish")
    await attempt_all(bctx, handler)

    # At once, top-level: the question's push is not coming (until someone retries it).
    [posted] = wordpress.comments.values()
    assert (posted.author_name, posted.parent, posted.post) == ("Mirko", 0, POST_ID)
    assert len(await bctx.store.list_jobs("dead", PUSH)) == 1


async def test_a_reply_whose_parent_is_still_pending_goes_top_level_on_its_last_attempt(
    bctx: BridgeContext,
    http: aiohttp.ClientSession,
    wordpress: FakeWordPressBlog,
    caplog: pytest.LogCaptureFixture,
) -> None:
    blog, entry_id = await setup(bctx, wordpress)
    handler = pusher.make_push_handler(sinks(http, wordpress))
    # The question's own push has not run (its job is still to come): the answer waits.
    await comment(bctx, blog, entry_id, MAURICE, QUESTION, text="Frage?")
    answer = await comment(bctx, blog, entry_id, MIRKO, ANSWER, parent_id=QUESTION, text="Antwort.")
    await push.push_comment(bctx, answer, "publish")
    await attempt_all(bctx, handler)
    assert wordpress.comments == {}
    [waiting] = await bctx.store.list_jobs("queued", PUSH)
    assert "waiting for comment" in (waiting.last_error or "")

    with caplog.at_level(logging.WARNING, logger="bridge.backfeed.pusher"):
        await attempt_all(bctx, handler)

    [posted] = wordpress.comments.values()
    assert (posted.author_name, posted.parent) == ("Mirko", 0)
    assert await bctx.store.list_jobs("dead", PUSH) == []
    assert any("goes to @talk top-level" in r.getMessage() for r in caplog.records)


async def test_backfill_brings_earlier_comments_to_a_new_sink_once(
    bctx: BridgeContext,
    http: aiohttp.ClientSession,
    wordpress: FakeWordPressBlog,
    capsys: pytest.CaptureFixture[str],
) -> None:
    blog, entry_id = await setup(bctx, wordpress)
    handler = pusher.make_push_handler(sinks(http, wordpress))
    # Under the feed sink, comments and a boost reached only the comment feeds.
    as_feed = replace(blog.settings, sink="feed")
    blog = await bctx.store.sync_config_blog(NewBlog("talk", blog.feed_url, as_feed), bctx.clock())
    question = await comment(bctx, blog, entry_id, MAURICE, QUESTION, text="Frage?")
    answer = await comment(bctx, blog, entry_id, MIRKO, ANSWER, parent_id=QUESTION, text="Ja.")
    boost = NewReaction(blog.id, entry_id, "boost", f"{ANSWER}/boost", MIRKO, question.published)
    assert await bctx.store.add_reaction(boost, bctx.clock()) is not None
    assert not await push.push_comment(bctx, question, "publish")
    assert not await push.push_comment(bctx, answer, "publish")
    # The blog gets the WordPress sink; a comment arriving now is pushed as usual.
    as_wordpress = replace(blog.settings, sink="wordpress")
    blog = await bctx.store.sync_config_blog(
        NewBlog("talk", blog.feed_url, as_wordpress), bctx.clock()
    )
    late = await comment(bctx, blog, entry_id, MAURICE, f"{QUESTION}/late", text="Nachtrag")
    assert await push.push_comment(bctx, late, "publish")
    await attempt_all(bctx, handler)
    assert [c.author_name for c in wordpress.comments.values()] == ["Maurice"]

    assert await backfill.run_backfill(bctx, "talk") == 0
    assert "queued 3 comment(s) and 1 linkback(s) for its wordpress sink" in capsys.readouterr().out
    await attempt_all(bctx, handler)
    await attempt_all(bctx, handler)  # the answer waited for the question's push

    # The late comment is not posted twice; the answer is threaded under the question.
    on_blog = {c.content: c for c in wordpress.comments.values()}
    assert sorted(on_blog) == ["<p>Frage?</p>", "<p>Ja.</p>", "<p>Nachtrag</p>"]
    assert on_blog["<p>Ja.</p>"].parent == on_blog["<p>Frage?</p>"].id
    pushes = await bctx.store.list_jobs("done", PUSH) + await bctx.store.list_jobs("dead", PUSH)
    assert any(job.payload["item"] == "linkback" for job in pushes)
    # Again: everything is queued or done already, nothing new goes out.
    assert await backfill.backfill(bctx, blog) == (0, 0)


async def test_backfill_refuses_a_blog_with_the_feed_sink(bctx: BridgeContext) -> None:
    settings = BlogSettings(sink="feed")
    blog = await bctx.store.add_blog(
        NewBlog("plain", "http://b.example/feed/", settings), bctx.clock()
    )
    with pytest.raises(ConfigError, match="feed sink"):
        await backfill.backfill(bctx, blog)
    with pytest.raises(BlogNotFound):
        await backfill.run_backfill(bctx, "nobody")
