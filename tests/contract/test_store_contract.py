"""The store contract: every backend must pass these, unchanged.

Backends are the ``backend`` fixture's params; PostgreSQL joins with the scale-out work.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from bridge.entries import FeedEntry, FeedMeta, Image
from bridge.errors import BlogExists, BlogNotFound, StoreError
from bridge.store.base import (
    BlogSettings,
    FeedState,
    KeyPair,
    NewActivity,
    NewBlog,
    Store,
    WebSubSubscription,
)
from tests.contract.conftest import T0


def entry(n: int, **changes: object) -> FeedEntry:
    base = FeedEntry(
        id=f"https://blog.example/?p={n}",
        link=f"https://blog.example/post-{n}/",
        title=f"Post {n} – „Grüße“",
        content_html=f"<p>Text {n}</p>",
        published=T0 + timedelta(days=n),
        categories=("Social Media", "PR"),
        images=(Image(url=f"https://blog.example/{n}.jpg", alt="cc gholzer, Flickr"),),
        language="de",
    )
    return FeedEntry(**{**base.__dict__, **changes})  # type: ignore[arg-type]


async def test_migrations_are_idempotent(store: Store) -> None:
    assert await store.migrate() == []
    assert await store.pending_migrations() == []


async def test_blog_lifecycle(store: Store) -> None:
    settings = BlogSettings(object_type="Note", display_name="Talk")
    blog = await store.add_blog(NewBlog("talkabout", "https://t.example/feed", settings), T0)
    assert blog.handle == "talkabout" and blog.settings == settings
    assert blog.feed.status == "new" and not blog.feed.first_poll_done
    assert blog.created_at == T0
    with pytest.raises(BlogExists):
        await store.add_blog(NewBlog("talkabout", "https://other.example/feed"), T0)
    assert (await store.get_blog("talkabout")) == blog
    assert (await store.get_blog_by_id(blog.id)) == blog
    assert await store.get_blog("nobody") is None

    meta = FeedMeta(title="talkabout", home_url="https://t.example", language="de")
    await store.update_blog_meta(blog.id, meta)
    assert (await store.get_blog("talkabout")).meta == meta  # type: ignore[union-attr]

    await store.add_blog(NewBlog("aaa", "https://a.example/feed"), T0)
    assert [b.handle for b in await store.list_blogs()] == ["aaa", "talkabout"]
    await store.remove_blog("aaa")
    with pytest.raises(BlogNotFound):
        await store.remove_blog("aaa")
    assert [b.handle for b in await store.list_blogs()] == ["talkabout"]


async def test_feed_state_and_due_blogs(store: Store) -> None:
    a = await store.add_blog(NewBlog("a", "https://a.example/feed"), T0)
    b = await store.add_blog(NewBlog("b", "https://b.example/feed"), T0)
    assert {x.handle for x in await store.due_blogs(T0)} == {"a", "b"}
    state = FeedState(
        status="ok",
        etag='"v1"',
        last_modified="Sun, 21 Feb 2010 16:53:00 GMT",
        last_polled_at=T0,
        last_success_at=T0,
        next_poll_at=T0 + timedelta(minutes=10),
        poll_interval=600,
        first_poll_done=True,
    )
    await store.update_feed_state(a.id, state, feed_url="https://a.example/moved")
    stored = await store.get_blog("a")
    assert stored is not None and stored.feed == state
    assert stored.feed_url == "https://a.example/moved"
    assert [x.handle for x in await store.due_blogs(T0)] == ["b"]
    assert {x.handle for x in await store.due_blogs(T0 + timedelta(minutes=10))} == {"a", "b"}
    await store.update_feed_state(b.id, FeedState(status="gone", last_error="410 Gone"))
    assert [x.handle for x in await store.due_blogs(T0 + timedelta(days=1))] == ["a"]


async def test_config_blog_sync_keeps_moved_url(store: Store) -> None:
    new = NewBlog("cfg", "https://c.example/feed", BlogSettings(), from_config=True)
    blog = await store.sync_config_blog(new, T0)
    assert blog.from_config
    await store.update_feed_state(blog.id, FeedState(status="ok"), feed_url="https://c.example/v2")
    again = await store.sync_config_blog(
        NewBlog("cfg", "https://c.example/feed", BlogSettings(object_type="Note"), True), T0
    )
    assert again.feed_url == "https://c.example/v2"
    assert again.settings.object_type == "Note"
    changed = await store.sync_config_blog(NewBlog("cfg", "https://new.example/feed"), T0)
    assert changed.feed_url == "https://new.example/feed"


async def test_entries_roundtrip_and_order(store: Store) -> None:
    blog = await store.add_blog(NewBlog("e", "https://e.example/feed"), T0)
    for n in (1, 3, 2):
        await store.save_entry(blog.id, entry(n), f"slug{n}", T0)
    listed = await store.list_entries(blog.id, limit=10)
    assert [s.slug for s in listed] == ["slug3", "slug2", "slug1"]
    assert listed[0].entry == entry(3)
    assert listed[0].content_hash == entry(3).content_hash()
    assert [s.slug for s in await store.list_entries(blog.id, limit=1, offset=1)] == ["slug2"]
    assert await store.count_entries(blog.id) == 3

    got = await store.get_entries(blog.id, [entry(1).id, "https://nope.example/"])
    assert list(got) == [entry(1).id]
    assert (await store.get_entry_by_slug(blog.id, "slug2")).entry == entry(2)  # type: ignore[union-attr]


async def test_entry_by_article_answers_blog_and_entry_together(store: Store) -> None:
    blog = await store.add_blog(NewBlog("e", "https://e.example/feed"), T0)
    other = await store.add_blog(NewBlog("o", "https://o.example/feed"), T0)
    await store.update_feed_state(
        blog.id, FeedState(status="ok", etag='"v1"', failures=2, last_error="timeout")
    )
    await store.update_blog_meta(blog.id, FeedMeta(title="Ein Blog", language="de"))
    saved = await store.save_entry(blog.id, entry(1), "s1", T0)
    await store.save_entry(other.id, entry(2), "s2", T0)
    found = await store.entry_by_article("e", "s1")
    assert found == (await store.get_blog("e"), saved.ref)
    assert found is not None and found[1].entry_id == entry(1).id
    assert found is not None and found[0].meta.title == "Ein Blog" and found[0].feed.failures == 2
    # The slug must be the blog's own; unknown handles and slugs name nothing.
    assert await store.entry_by_article("e", "s2") is None
    other_entry = await store.get_entry_by_slug(other.id, "s2")
    assert other_entry is not None
    assert await store.entry_by_article("o", "s2") == (other, other_entry.ref)
    assert await store.entry_by_article("nobody", "s1") is None
    assert await store.entry_by_article("e", "nothing") is None
    # Deleted entries are answered too (the caller decides what a deleted post means).
    await store.mark_entry_deleted(blog.id, entry(1).id, T0 + timedelta(hours=2))
    gone = await store.entry_by_article("e", "s1")
    assert gone is not None and gone[1].deleted_at == T0 + timedelta(hours=2)


async def test_entry_edit_delete_and_in_feed(store: Store) -> None:
    blog = await store.add_blog(NewBlog("e", "https://e.example/feed"), T0)
    first = await store.save_entry(blog.id, entry(1), "s1", T0)
    edited = await store.save_entry(blog.id, entry(1, title="Neu"), "s1", T0 + timedelta(hours=1))
    assert edited.first_seen_at == first.first_seen_at
    assert edited.changed_at == T0 + timedelta(hours=1)
    assert edited.content_hash != first.content_hash

    resaved = await store.save_entry(blog.id, entry(1, title="Neu"), "s1", T0 + timedelta(hours=5))
    assert resaved.changed_at == T0 + timedelta(hours=1), "unchanged content is not an edit"

    await store.set_in_feed(blog.id, [entry(1).id], False)
    assert await store.entries_in_feed(blog.id) == []
    await store.mark_entry_deleted(blog.id, entry(1).id, T0 + timedelta(hours=2))
    gone = await store.get_entry_by_slug(blog.id, "s1")
    assert gone is not None and gone.deleted_at == T0 + timedelta(hours=2)
    assert await store.count_entries(blog.id) == 0
    assert await store.list_entries(blog.id, limit=10) == []
    # A post that comes back is live again, under the slug it comes back with.
    back = await store.save_entry(blog.id, entry(1), "s2", T0 + timedelta(hours=3))
    assert back.deleted_at is None and back.in_feed and back.slug == "s2"
    assert await store.get_entry_by_slug(blog.id, "s1") is None
    assert await store.get_entry_by_slug(blog.id, "s2") == back


async def test_outbox(store: Store) -> None:
    blog = await store.add_blog(NewBlog("o", "https://o.example/feed"), T0)
    payload = {"type": "Create", "object": {"content": "Grüße “quoted”"}}
    one = await store.add_activity(
        NewActivity(blog.id, "https://b/act/1", "Create", entry(1).id, payload, False), T0
    )
    two = await store.add_activity(
        NewActivity(blog.id, "https://b/act/2", "Update", entry(1).id, payload, True), T0
    )
    assert one.seq < two.seq
    assert await store.get_activity("https://b/act/1") == one
    assert await store.list_activities(blog.id, limit=10) == [one, two]
    assert await store.list_activities(blog.id, limit=10, after_seq=one.seq) == [two]
    with pytest.raises(StoreError):
        await store.add_activity(
            NewActivity(blog.id, "https://b/act/1", "Create", entry(1).id, payload, True), T0
        )


async def test_keys_first_writer_wins(store: Store) -> None:
    first = KeyPair("talkabout", "PRIVATE-1", "PUBLIC-1", T0)
    assert await store.put_keypair_if_absent(first) == first
    assert await store.put_keypair_if_absent(KeyPair("talkabout", "P2", "p2", T0)) == first
    assert await store.get_keypair("talkabout") == first
    assert await store.get_keypair("nobody") is None


async def test_followers_empty(store: Store) -> None:
    blog = await store.add_blog(NewBlog("f", "https://f.example/feed"), T0)
    assert await store.count_followers(blog.id) == 0
    assert await store.list_followers(blog.id, limit=10) == []


async def test_websub(store: Store) -> None:
    blog = await store.add_blog(NewBlog("w", "https://w.example/feed"), T0)
    sub = WebSubSubscription(
        blog.id,
        "https://hub.example/",
        "https://w.example/feed",
        "s3cret",
        "active",
        lease_expires_at=T0 + timedelta(hours=1),
        updated_at=T0,
    )
    await store.put_websub(sub)
    assert await store.get_websub(blog.id) == sub
    assert await store.websubs_expiring(T0) == []
    assert await store.websubs_expiring(T0 + timedelta(hours=2)) == [sub]
    await store.delete_websub(blog.id)
    assert await store.get_websub(blog.id) is None


async def test_removing_a_blog_removes_what_it_owns(store: Store) -> None:
    blog = await store.add_blog(NewBlog("r", "https://r.example/feed"), T0)
    await store.save_entry(blog.id, entry(1), "s1", T0)
    await store.put_keypair_if_absent(KeyPair("r", "priv", "pub", T0))
    await store.remove_blog("r")
    again = await store.add_blog(NewBlog("r", "https://r.example/feed"), T0)
    assert await store.count_entries(again.id) == 0
    assert await store.get_keypair("r") is None


async def test_transaction_rolls_back_together(store: Store) -> None:
    blog = await store.add_blog(NewBlog("t", "https://t.example/feed"), T0)
    with pytest.raises(RuntimeError):
        async with store.transaction():
            await store.save_entry(blog.id, entry(1), "s1", T0)
            await store.update_blog_meta(blog.id, FeedMeta(title="half"))
            raise RuntimeError("crash in the middle")
    assert await store.count_entries(blog.id) == 0
    assert (await store.get_blog("t")).meta.title is None  # type: ignore[union-attr]


async def test_concurrent_writers_do_not_interleave(store: Store) -> None:
    blog = await store.add_blog(NewBlog("c", "https://c.example/feed"), T0)

    async def writer(n: int) -> None:
        async with store.transaction():
            await store.save_entry(blog.id, entry(n), f"s{n}", T0)
            await asyncio.sleep(0)
            await store.add_activity(
                NewActivity(blog.id, f"https://b/a/{n}", "Create", entry(n).id, {}, True), T0
            )

    await asyncio.gather(*(writer(n) for n in range(20)))
    assert await store.count_entries(blog.id) == 20
    assert len(await store.list_activities(blog.id, limit=100)) == 20
