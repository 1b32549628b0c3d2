"""The blog the fan-out bench posts from: its key, its followers and the post itself."""

from __future__ import annotations

import functools
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from bridge.activitypub import keys
from bridge.activitypub.urls import entry_slug
from bridge.context import BridgeContext
from bridge.entries import FeedEntry
from bridge.federation.outbox import record_change
from bridge.store.base import Blog, FeedState, Follower, KeyPair, NewBlog


@functools.cache
def bench_keypair() -> KeyPair:
    """One blog key for every run: a process parses its blogs' keys once (~40 ms each), so a
    fresh key per run would time a cost the bridge pays once per process lifetime."""
    return keys.generate_keypair("talkabout", datetime.now(UTC))


async def seed_blog(ctx: BridgeContext) -> Blog:
    now = ctx.clock()
    blog = await ctx.store.add_blog(NewBlog("talkabout", "http://127.0.0.1:9/feed"), now)
    await ctx.store.put_keypair_if_absent(replace(bench_keypair(), owner=blog.handle))
    await keys.ensure_keypair(ctx.store, blog.handle, now)
    await ctx.store.update_feed_state(
        blog.id, FeedState(status="ok", next_poll_at=now + timedelta(days=1), first_poll_done=True)
    )
    return blog


async def seed_followers(ctx: BridgeContext, blog: Blog, count: int, hosts: int, port: int) -> None:
    now = ctx.clock()
    async with ctx.store.transaction():
        for n in range(count):
            actor = f"http://h{n % hosts}.bench:{port}/users/u{n}"
            await ctx.store.put_follower(
                Follower(blog.id, actor, f"{actor}/inbox", None, "accepted", now)
            )


async def post(ctx: BridgeContext, blog: Blog) -> str:
    now = ctx.clock()
    entry = FeedEntry(
        id="https://www.talkabout.de/teilhaben-lassen/",
        link="https://www.talkabout.de/teilhaben-lassen/",
        title="Teilhaben lassen",
        content_html="<p>Ein Plädoyer für die Mitteilung. "
        + "Mit. Anderen. Teilen. " * 40
        + "</p>",
        published=now,
    )
    async with ctx.store.transaction():
        stored = await ctx.store.save_entry(blog.id, entry, entry_slug(entry.id), now)
        activity = await record_change(ctx, blog, stored, "create", deliver=True)
    return activity.activity_id
