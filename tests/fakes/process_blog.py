"""A bridge run as real ``feedfed`` processes on one database (a SQLite file by default): its
environment, one blog with one post, replies to that post from fake actors, and the comments
they became."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from bridge.activitypub import keys
from bridge.activitypub.urls import Urls, entry_slug
from bridge.config import load_config
from bridge.context import open_context
from bridge.entries import FeedEntry
from bridge.store import open_store
from bridge.store.base import FeedState, NewBlog
from tests.fakes.instance_actors import FakeActor
from tests.fakes.process import feedfed_env, free_port

PUBLIC = "https://www.w3.org/ns/activitystreams#Public"
ALL_STATES = ("published", "held", "duplicate", "spam", "rejected", "deleted")


def bridge_env(tmp_path: Path, config: str = "", database_url: str | None = None) -> dict[str, str]:
    """The environment of bridge processes: a free port, the config file (``config``, TOML)
    in ``tmp_path``, loopback peers allowed; the database ``database_url``, by default a
    SQLite file in ``tmp_path``."""
    (tmp_path / "feedfed.toml").write_text(config, encoding="utf-8")
    extra = {
        "FEEDFED_CONFIG": str(tmp_path / "feedfed.toml"),
        "FEEDFED_ALLOW_PRIVATE_ADDRESSES": "1",
    }
    if database_url is not None:
        extra["FEEDFED_DATABASE_URL"] = database_url
    return feedfed_env(tmp_path, free_port(), extra)


async def seed(env: dict[str, str]) -> str:
    """A blog with one post, not due for polling; the post's object id."""
    config = load_config(env=env)
    async with open_context(config, migrate=True) as ctx:
        now = ctx.clock()
        blog = await ctx.store.add_blog(NewBlog("talkabout", "http://127.0.0.1:9/feed"), now)
        await keys.ensure_keypair(ctx.store, blog.handle, now)
        polled = FeedState(status="ok", last_polled_at=now, next_poll_at=now + timedelta(days=1))
        await ctx.store.update_feed_state(blog.id, polled)
        entry = FeedEntry(
            id="http://www.talkabout.de/?p=1234",
            link="http://www.talkabout.de/ein-pladoyer/",
            title="Ein Plädoyer für die Mitteilung",
            content_html="<p>teilhaben lassen</p>",
            published=now,
        )
        stored = await ctx.store.save_entry(blog.id, entry, entry_slug(entry.id), now)
        return Urls(config.base_url).article(blog.handle, stored.slug)


def reply(actor: FakeActor, article: str, text: str) -> dict[str, object]:
    """A public ``Create`` of a note by ``actor`` answering ``article``."""
    note = {
        "id": actor.new_id(),
        "type": "Note",
        "attributedTo": actor.id,
        "inReplyTo": article,
        "content": f"<p>{text}</p>",
        "published": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        "to": [PUBLIC],
        "cc": [actor.followers],
    }
    return actor.activity("Create", note, to=[PUBLIC], cc=[actor.followers])


async def comment_ids(env: dict[str, str]) -> list[str]:
    """The object ids of the talkabout blog's comments, in every state (repeats kept)."""
    store = await open_store(env["FEEDFED_DATABASE_URL"])
    try:
        blog = await store.get_blog("talkabout")
        assert blog is not None
        found: list[str] = []
        while page := await store.list_comments(
            blog.id, states=ALL_STATES, limit=500, offset=len(found)
        ):
            found += [comment.object_id for comment in page]
        return found
    finally:
        await store.close()


async def comments(env: dict[str, str]) -> int:
    """How many comments the talkabout blog has, in every state."""
    store = await open_store(env["FEEDFED_DATABASE_URL"])
    try:
        blog = await store.get_blog("talkabout")
        assert blog is not None
        return await store.count_comments(blog.id, states=ALL_STATES)
    finally:
        await store.close()


async def inbound_jobs(env: dict[str, str]) -> dict[str, int]:
    """The ``inbound`` jobs of the queue, counted by state."""
    store = await open_store(env["FEEDFED_DATABASE_URL"])
    try:
        return {c.state: c.count for c in await store.job_counts() if c.kind == "inbound"}
    finally:
        await store.close()
