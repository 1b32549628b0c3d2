"""Polling blogs' feeds: one conditional GET per due blog, its outcome kept on the blog.

``poll_blog`` polls one blog now; ``run_poller`` is the loop that polls every due blog (a few at
a time, each under a lease in the store, so several processes can share the work) and renews
WebSub leases. Feed trouble never leaves ``poll_blog``: it becomes the blog's
visible state (``failing`` with the error and a backed-off next poll, or ``gone`` after a 410).
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import socket
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from bridge.backfeed.dialog import dialog_job
from bridge.context import BridgeContext
from bridge.entries import FeedMeta
from bridge.errors import BlogNotFound, FeedError, FeedGone
from bridge.ingest import websub
from bridge.ingest.document import IngestResult, ingest_document
from bridge.ingest.fetch import FetchResult, fetch_feed
from bridge.ingest.schedule import RECENT_POSTS, error_backoff, next_interval, push_interval
from bridge.store.base import Blog, FeedState

log = logging.getLogger(__name__)

Outcome = Literal["new-content", "not-modified", "error", "gone"]

POLL_CONCURRENCY = 8
RENEW_EVERY = timedelta(hours=1)
MIN_POLL_LEASE = 300.0
"""Seconds a claimed blog stays leased at least (see :func:`poll_lease_seconds`)."""
SHUTDOWN_GRACE = 5.0
"""Seconds running polls get to finish once the poller is told to stop."""


@dataclass(frozen=True)
class PollReport:
    """What one poll did.

    ``new-content`` means a full document was read and applied (the counts say what changed,
    possibly nothing); ``not-modified`` a 304; ``error`` a failure now shown on the blog;
    ``gone`` a 410 that stopped polling. ``dropped`` counts entries that left the feed's window
    but still exist on the blog.
    """

    handle: str
    outcome: Outcome
    created: int = 0
    updated: int = 0
    deleted: int = 0
    dropped: int = 0
    error: str | None = None


async def poll_blog(ctx: BridgeContext, blog: Blog) -> PollReport:
    """Poll one blog's feed now and store the outcome; feed errors are reported, not raised.

    Every poll that ends with a report is counted in ``ctx.metrics`` by its outcome.
    """
    started = asyncio.get_running_loop().time()
    report = await _poll(ctx, blog)
    ctx.metrics.count_poll(report.outcome, asyncio.get_running_loop().time() - started)
    if report.error is None and blog.settings.sink != "feed":
        # The blog's own comments are read with each poll of a blog that takes comments
        # (the dialog: answers written on the blog go back to the fediverse).
        await ctx.store.enqueue([dialog_job(blog.id, ctx.clock())], ctx.clock())
        ctx.jobs_ready.set()
    return report


async def _poll(ctx: BridgeContext, blog: Blog) -> PollReport:
    now = ctx.clock()
    limits = ctx.config.limits
    try:
        fetched = await fetch_feed(
            ctx.http,
            blog.feed_url,
            etag=blog.feed.etag,
            last_modified=blog.feed.last_modified,
            max_bytes=limits.max_feed_bytes,
            timeout=limits.fetch_timeout,
            user_agent=ctx.config.user_agent,
        )
        if fetched.status == 304:
            async with ctx.store.transaction():
                current = await ctx.store.get_blog_by_id(blog.id)
                if current is None:
                    raise BlogNotFound(f"blog {blog.handle!r} was removed while polling")
                await _store_success(ctx, current, fetched, now)
            await _follow_hub(ctx, blog, fetched, current.meta)
            return PollReport(blog.handle, "not-modified")

        async def finish(current: Blog, applied: IngestResult) -> None:
            await _store_success(ctx, current, fetched, now, revalidate=applied.unresolved > 0)

        result = await ingest_document(
            ctx, blog, fetched.body, fetched.content_type, url=fetched.url, finish=finish
        )
    except FeedGone as exc:
        return await _store_gone(ctx, blog, exc, now)
    except FeedError as exc:
        return await _store_failure(ctx, blog, exc, now)
    except BlogNotFound as exc:
        log.info("poll %s: %s", blog.handle, exc)
        return PollReport(blog.handle, "error", error=str(exc))
    await _follow_hub(ctx, blog, fetched, result.meta)
    return PollReport(
        blog.handle,
        "new-content",
        created=result.created,
        updated=result.updated,
        deleted=result.deleted,
        dropped=result.dropped,
    )


async def run_poller(
    ctx: BridgeContext,
    stop: asyncio.Event,
    *,
    tick: float = 5.0,
    concurrency: int = POLL_CONCURRENCY,
    renew_every: timedelta = RENEW_EVERY,
    worker: str | None = None,
    lease_seconds: float | None = None,
    shutdown_grace: float = SHUTDOWN_GRACE,
) -> None:
    """Poll due blogs until ``stop`` is set, ``concurrency`` at a time; renew WebSub leases.

    Blogs are leased from the store (``claim_due_blogs``) one free slot at a time, and each
    lease is released as soon as its poll is stored, so pollers in any number of processes
    share the blogs and none is polled twice at once; a dead poller's leases run out after
    ``lease_seconds`` (default: :func:`poll_lease_seconds`). ``worker`` names this poller in
    the leases (default: unique to the process and call).

    On stop it claims nothing more, gives running polls ``shutdown_grace`` seconds to finish,
    cancels the rest and releases their leases. Feed errors stay with their blog; anything
    else (the store failing, a bug) ends the loop with the exception, so the application
    notices instead of polling on half-broken.
    """
    worker = worker or poller_id()
    lease = poll_lease_seconds(ctx) if lease_seconds is None else lease_seconds
    running: dict[asyncio.Task[PollReport], Blog] = {}
    last_renewal: datetime | None = None
    try:
        while not stop.is_set():
            _collect(running)
            now = ctx.clock()
            if last_renewal is None or now - last_renewal >= renew_every:
                await websub.renew_expiring(ctx)
                last_renewal = now
            free = concurrency - len(running)
            claimed = await ctx.store.claim_due_blogs(now, free, lease, worker) if free else []
            for blog in claimed:
                task = asyncio.create_task(_poll_leased(ctx, blog, worker), name=f"poll-{blog.id}")
                running[task] = blog
            # Every slot taken: more may be due, so claim again as soon as a poll ends.
            # Otherwise nothing else is due until time passes.
            busy = len(claimed) == free
            await _pause(stop, running if busy else {}, None if busy else tick)
    finally:
        await _finish(running, shutdown_grace)


def poller_id() -> str:
    """A poller's name in its leases: unique to this process and call."""
    return f"{socket.gethostname()}/{os.getpid()}/poll-{uuid.uuid4().hex[:8]}"


def poll_lease_seconds(ctx: BridgeContext) -> float:
    """How long a claimed blog stays ours: well past one poll, which the fetch timeout bounds.

    Should a poll outlast it anyway, another poller may poll the blog meanwhile; storing an
    entry twice at once is safe (:mod:`bridge.ingest.document`), merely wasted work.
    """
    return max(MIN_POLL_LEASE, 4 * ctx.config.limits.fetch_timeout)


async def _poll_leased(ctx: BridgeContext, blog: Blog, worker: str) -> PollReport:
    try:
        return await poll_blog(ctx, blog)
    finally:
        # After the outcome is stored (next poll in the future), so nobody polls it again
        # now; also when cancelled at shutdown, so another poller takes it at once.
        if not await ctx.store.release_blog_lease(blog.id, worker):
            log.warning("poll %s: the lease had run out before the poll ended", blog.handle)


def _collect(running: dict[asyncio.Task[PollReport], Blog]) -> None:
    """Forget finished polls; re-raise the first failure (the loop must not carry on)."""
    for task in [task for task in running if task.done()]:
        del running[task]
        task.result()


async def _pause(
    stop: asyncio.Event, running: dict[asyncio.Task[PollReport], Blog], timeout: float | None
) -> None:
    stopping = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait(
            [stopping, *running], timeout=timeout, return_when=asyncio.FIRST_COMPLETED
        )
    finally:
        stopping.cancel()


async def _finish(running: dict[asyncio.Task[PollReport], Blog], grace: float) -> None:
    if not running:
        return
    _, late = await asyncio.wait(list(running), timeout=grace)
    for task in late:
        task.cancel()
    results = await asyncio.gather(*running, return_exceptions=True)
    if late:
        log.warning("poller stopped: %d unfinished polls cancelled, leases released", len(late))
    for blog, result in zip(running.values(), results, strict=True):
        if isinstance(result, BaseException) and not isinstance(result, asyncio.CancelledError):
            # The loop is ending already (stop or another failure): say what this one was.
            log.error("poll %s failed during shutdown", blog.handle, exc_info=result)


def topic_and_hub(
    links: Iterable[tuple[str, str]], meta: FeedMeta, feed_url: str
) -> tuple[str, str | None]:
    """The WebSub topic (the feed's self URL) and hub: HTTP Link headers first, then the feed."""
    header: dict[str, str] = {}
    for rel, href in links:
        header.setdefault(rel, href)
    hub = header.get("hub") or meta.hub_url
    topic = header.get("self") or meta.self_url or feed_url
    return topic, hub


async def _follow_hub(ctx: BridgeContext, blog: Blog, fetched: FetchResult, meta: FeedMeta) -> None:
    topic, hub = topic_and_hub(fetched.links, meta, fetched.moved_to or blog.feed_url)
    await websub.ensure_subscription(ctx, blog, hub, topic)


async def _store_success(
    ctx: BridgeContext, blog: Blog, fetched: FetchResult, now: datetime, *, revalidate: bool = False
) -> None:
    # ``revalidate``: entries whose fate is still open must be looked at again, which a 304
    # for the unchanged feed would prevent; so no validators are kept this time.
    limits = ctx.config.limits
    subscription = await ctx.store.get_websub(blog.id)
    if websub.is_active(subscription, now):
        interval = push_interval(limits, random.random())
    else:
        recent = await ctx.store.list_entries(blog.id, RECENT_POSTS)
        times = [stored.sort_time for stored in recent]
        interval = next_interval(times, limits, random.random(), now=now)
    state = FeedState(
        status="ok",
        etag=None if revalidate else fetched.etag,
        last_modified=None if revalidate else fetched.last_modified,
        last_polled_at=now,
        last_success_at=now,
        next_poll_at=now + timedelta(seconds=interval),
        poll_interval=interval,
        failures=0,
        last_error=None,
        # A 304 answers validators that only a successful poll could have stored.
        first_poll_done=True,
    )
    if fetched.moved_to:
        log.info("poll %s: feed moved permanently to %s", blog.handle, fetched.moved_to)
    await ctx.store.update_feed_state(blog.id, state, feed_url=fetched.moved_to)


async def _store_failure(
    ctx: BridgeContext, blog: Blog, exc: FeedError, now: datetime
) -> PollReport:
    log.warning("poll %s failed: %s", blog.handle, exc)
    limits = ctx.config.limits
    async with ctx.store.transaction():
        current = await ctx.store.get_blog_by_id(blog.id) or blog
        failures = current.feed.failures + 1
        delay = error_backoff(failures, limits, random.random())
        state = FeedState(
            status="failing",
            etag=current.feed.etag,
            last_modified=current.feed.last_modified,
            last_polled_at=now,
            last_success_at=current.feed.last_success_at,
            next_poll_at=now + timedelta(seconds=delay),
            poll_interval=delay,
            failures=failures,
            last_error=str(exc),
            first_poll_done=current.feed.first_poll_done,
        )
        await ctx.store.update_feed_state(blog.id, state)
    return PollReport(blog.handle, "error", error=str(exc))


async def _store_gone(ctx: BridgeContext, blog: Blog, exc: FeedGone, now: datetime) -> PollReport:
    error = f"{exc}: the feed is gone, polling stopped"
    log.warning("poll %s: %s", blog.handle, error)
    async with ctx.store.transaction():
        current = await ctx.store.get_blog_by_id(blog.id) or blog
        state = FeedState(
            status="gone",
            etag=None,
            last_modified=None,
            last_polled_at=now,
            last_success_at=current.feed.last_success_at,
            next_poll_at=None,
            poll_interval=0,
            failures=current.feed.failures,
            last_error=error,
            first_poll_done=current.feed.first_poll_done,
        )
        await ctx.store.update_feed_state(blog.id, state)
    subscription = await ctx.store.get_websub(blog.id)
    if subscription is not None and subscription.status in ("pending", "active"):
        await websub.unsubscribe(ctx, blog)
    return PollReport(blog.handle, "gone", error=error)
