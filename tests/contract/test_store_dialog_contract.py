"""Store contract, dialog sources: the validators of each post's comment source."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bridge.errors import StoreError
from bridge.store.base import Blog, NewBlog, Store
from tests.contract.conftest import T0

POST = "https://talk.example/?p=1234"
FEED = "https://talk.example/2026/01/post/feed/"


async def blog(store: Store, handle: str = "talk") -> Blog:
    return await store.add_blog(NewBlog(handle, f"https://{handle}.example/feed/"), T0)


async def test_unknown_source_is_none(store: Store) -> None:
    b = await blog(store)
    assert await store.get_dialog_source(b.id, POST) is None


async def test_put_then_get_round_trips(store: Store) -> None:
    b = await blog(store)
    put = await store.put_dialog_source(
        b.id, POST, FEED, etag='W/"ä-1"', last_modified="Sun, 21 Feb 2010 16:53:00 GMT", now=T0
    )
    got = await store.get_dialog_source(b.id, POST)
    assert got == put
    assert (got.url, got.etag, got.last_modified, got.checked_at) == (
        FEED,
        'W/"ä-1"',
        "Sun, 21 Feb 2010 16:53:00 GMT",
        T0,
    )


async def test_put_replaces_every_validator(store: Store) -> None:
    b = await blog(store)
    await store.put_dialog_source(b.id, POST, FEED, etag='"1"', last_modified="x", now=T0)
    later = T0 + timedelta(minutes=3)
    moved = FEED + "?moved"
    got = await store.put_dialog_source(b.id, POST, moved, etag=None, last_modified=None, now=later)
    assert (got.url, got.etag, got.last_modified, got.checked_at) == (moved, None, None, later)
    assert await store.get_dialog_source(b.id, POST) == got


async def test_key_is_blog_and_post(store: Store) -> None:
    b = await blog(store)
    other = await blog(store, "other")
    await store.put_dialog_source(b.id, POST, FEED, etag='"1"', last_modified=None, now=T0)
    await store.put_dialog_source(other.id, POST, FEED, etag='"2"', last_modified=None, now=T0)
    assert await store.get_dialog_source(b.id, POST + "&x") is None
    first = await store.get_dialog_source(b.id, POST)
    second = await store.get_dialog_source(other.id, POST)
    assert first is not None and second is not None
    assert (first.etag, second.etag) == ('"1"', '"2"')


async def test_unknown_blog_is_refused(store: Store) -> None:
    with pytest.raises(StoreError):
        await store.put_dialog_source(999, POST, FEED, etag=None, last_modified=None, now=T0)


async def test_sources_go_with_their_blog(store: Store) -> None:
    b = await blog(store)
    await store.put_dialog_source(b.id, POST, FEED, etag='"1"', last_modified=None, now=T0)
    await store.remove_blog(b.handle)
    again = await blog(store)
    assert await store.get_dialog_source(again.id, POST) is None
