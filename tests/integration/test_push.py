"""The push job end to end: real store, real worker, a real blog on 127.0.0.1 receiving
webmentions (Y's ``WebmentionSink``), and the fake clock moving retries along."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

import aiohttp
from aiohttp import web

from bridge.activitypub.urls import entry_slug
from bridge.backfeed import push, pusher
from bridge.context import BridgeContext
from bridge.entries import FeedEntry
from bridge.jobs import PUSH
from bridge.jobs.worker import JobWorker
from bridge.sinks.access import BlogAccess
from bridge.sinks.base import Sink
from bridge.sinks.webmention import WebmentionSink
from bridge.store.base import Blog, BlogSettings, NewBlog, NewComment, NewReaction, Person
from bridge.store.sqlite import SQLiteStore

ANNA = Person("https://m.example/users/anna", "Anna", "@anna@m.example", "https://m.example/@anna")
NOTE = "https://m.example/users/anna/statuses/1"
BOOST = "https://m.example/users/anna/statuses/2/activity"


@dataclass
class Blogside:
    """A blog whose posts name a webmention endpoint; ``down`` makes it answer 503."""

    received: list[tuple[str, str]] = field(default_factory=list)
    down: bool = False

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/2026/hallo/", self.post)
        app.router.add_post("/webmention", self.webmention)
        return app

    async def post(self, request: web.Request) -> web.Response:
        if self.down:
            return web.Response(status=503)
        return web.Response(
            text="<html><body>Hallo</body></html>",
            content_type="text/html",
            headers={"Link": '</webmention>; rel="webmention"'},
        )

    async def webmention(self, request: web.Request) -> web.Response:
        if self.down:
            return web.Response(status=503)
        form = await request.post()
        self.received.append((str(form["source"]), str(form["target"])))
        return web.Response(status=202)


async def setup(ctx: BridgeContext, base: str) -> tuple[Blog, str]:
    settings = BlogSettings(sink="webmention", linkbacks_per_minute=100)
    blog = await ctx.store.add_blog(NewBlog("talk", f"{base}/feed/", settings), ctx.clock())
    post = f"{base}/2026/hallo/"
    entry = FeedEntry(id=f"{base}/?p=1", link=post, title="Hallo Welt")
    await ctx.store.save_entry(blog.id, entry, entry_slug(entry.id), ctx.clock())
    return blog, entry.id


def factory(session: aiohttp.ClientSession) -> push.SinkFactory:
    def build(ctx: BridgeContext, blog: Blog) -> Sink:
        access = BlogAccess(session, push.blog_hosts(blog), timeout=2.0, clock=ctx.clock)
        return WebmentionSink(access)

    return build


async def run_worker(
    ctx: BridgeContext, handler: push.Handler, until: Callable[[], Awaitable[bool]]
) -> None:
    """Run a real worker until ``until()`` holds (or two seconds pass)."""
    worker = JobWorker(ctx, {PUSH: handler}, worker_id="test", poll_interval=0.01)
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    try:
        async with asyncio.timeout(2):
            # Polls the store: the worker signals nothing a test could wait on.
            while not await until():  # noqa: ASYNC110
                await asyncio.sleep(0.01)
    finally:
        stop.set()
        await task


async def queue_empty(ctx: BridgeContext) -> bool:
    counts = await ctx.store.job_counts()
    return not any(c.count for c in counts if c.kind == PUSH and c.state in ("queued", "running"))


async def nothing_due(ctx: BridgeContext) -> bool:
    running = await ctx.store.list_jobs("running", PUSH)
    queued = await ctx.store.list_jobs("queued", PUSH)
    return not running and all(job.run_at > ctx.clock() for job in queued)


async def add_comment(ctx: BridgeContext, blog: Blog, entry_id: str) -> None:
    new = NewComment(
        blog_id=blog.id,
        entry_id=entry_id,
        object_id=NOTE,
        parent_id=None,
        author=ANNA,
        content_html="<p>Schön!</p>",
        published=datetime(2026, 1, 1, tzinfo=UTC),
        state="published",
    )
    comment = await ctx.store.add_comment(new, ctx.clock())
    assert comment is not None
    await push.push_comment(ctx, comment, "publish")


async def test_a_comment_reaches_the_blog_once_even_when_pushed_twice(
    ctx: BridgeContext,
    serve: Callable[[web.Application], Awaitable[str]],
    http: aiohttp.ClientSession,
) -> None:
    blog_side = Blogside()
    base = await serve(blog_side.app())
    blog, entry_id = await setup(ctx, base)
    await add_comment(ctx, blog, entry_id)
    handler = pusher.make_push_handler(factory(http))
    await run_worker(ctx, handler, lambda: queue_empty(ctx))
    # The same push again (a retried inbound job with another key): nothing new is sent.
    await push.enqueue_push(ctx, blog, "comment", NOTE, "publish", version="again")
    await run_worker(ctx, handler, lambda: queue_empty(ctx))
    assert len(blog_side.received) == 1
    source, target = blog_side.received[0]
    assert target == f"{base}/2026/hallo/" and "/comments/" in source
    item = await ctx.store.get_sink_item(blog.id, "comment", NOTE, "webmention")
    assert item is not None and item.live and item.state == "published"


async def test_edit_resends_and_delete_withdraws(
    ctx: BridgeContext,
    serve: Callable[[web.Application], Awaitable[str]],
    http: aiohttp.ClientSession,
) -> None:
    blog_side = Blogside()
    base = await serve(blog_side.app())
    blog, entry_id = await setup(ctx, base)
    await add_comment(ctx, blog, entry_id)
    handler = pusher.make_push_handler(factory(http))
    await run_worker(ctx, handler, lambda: queue_empty(ctx))
    edited = await ctx.store.edit_comment(NOTE, "<p>Sehr schön!</p>", None, ctx.clock(), {})
    assert edited is not None
    await push.push_comment(ctx, edited, "update", version="1")
    await run_worker(ctx, handler, lambda: queue_empty(ctx))
    deleted = await ctx.store.delete_comment(NOTE, ctx.clock())
    assert deleted is not None
    await push.push_comment(ctx, deleted, "withdraw")
    await run_worker(ctx, handler, lambda: queue_empty(ctx))
    assert len(blog_side.received) == 3
    item = await ctx.store.get_sink_item(blog.id, "comment", NOTE, "webmention")
    assert item is not None and item.state == "withdrawn" and not item.live
    # A withdrawn item is not withdrawn again, and an update of it is skipped.
    await push.enqueue_push(ctx, blog, "comment", NOTE, "withdraw", version="x")
    await run_worker(ctx, handler, lambda: queue_empty(ctx))
    assert len(blog_side.received) == 3


async def test_a_blog_down_for_an_hour_gets_everything_once_after_a_restart(
    ctx: BridgeContext,
    serve: Callable[[web.Application], Awaitable[str]],
    http: aiohttp.ClientSession,
    tmp_path: object,
) -> None:
    blog_side = Blogside(down=True)
    base = await serve(blog_side.app())
    blog, entry_id = await setup(ctx, base)
    await add_comment(ctx, blog, entry_id)
    reaction = await ctx.store.add_reaction(
        NewReaction(blog.id, entry_id, "boost", BOOST, ANNA, datetime(2026, 1, 1, tzinfo=UTC)),
        ctx.clock(),
    )
    assert reaction is not None
    await push.push_reaction(ctx, reaction, "publish")
    handler = pusher.make_push_handler(factory(http))

    async def all_failed_once() -> bool:
        return len(await ctx.store.list_sink_items(blog.id)) == 2

    await run_worker(ctx, handler, all_failed_once)
    assert blog_side.received == []
    # Restart: a new store object on the same file, a new worker; an hour passes.
    assert isinstance(ctx.store, SQLiteStore)
    path = ctx.store._path
    await ctx.store.close()
    store = await SQLiteStore.open(path)
    ctx2 = replace(ctx, store=store)
    try:
        for _ in range(12):
            ctx.clock.advance(300)  # type: ignore[attr-defined]
            await run_worker(ctx2, handler, lambda: nothing_due(ctx2))
            if len(blog_side.received) == 2:
                break
            if _ == 5:
                blog_side.down = False
        assert sorted(t for _s, t in blog_side.received) == [f"{base}/2026/hallo/"] * 2
        assert await store.list_sink_items(blog.id) == []
    finally:
        await store.close()
