"""Store contract, sink items: what each sink returned for each comment and linkback."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bridge.errors import StoreError
from bridge.store.base import Blog, NewBlog, SinkItemUpdate, Store
from bridge.store.tables import TABLES
from tests.contract.conftest import T0

NOTE = "https://m.example/users/anna/statuses/1"
LIKE = "https://m.example/users/anna#likes/7"


async def blog(store: Store, handle: str = "talk") -> Blog:
    return await store.add_blog(NewBlog(handle, f"https://{handle}.example/feed/"), T0)


def update(blog_id: int, **changes: object) -> SinkItemUpdate:
    fields: dict[str, object] = {
        "blog_id": blog_id,
        "kind": "comment",
        "item_id": NOTE,
        "sink": "wordpress",
        "state": "published",
    }
    fields.update(changes)
    return SinkItemUpdate(**fields)  # type: ignore[arg-type]


async def test_unknown_item_is_none(store: Store) -> None:
    b = await blog(store)
    assert await store.get_sink_item(b.id, "comment", NOTE, "wordpress") is None


async def test_put_then_get_round_trips(store: Store) -> None:
    b = await blog(store)
    put = await store.put_sink_item(update(b.id, remote_id="42", live=True), T0)
    got = await store.get_sink_item(b.id, "comment", NOTE, "wordpress")
    assert got == put
    assert (got.remote_id, got.state, got.live, got.last_error) == ("42", "published", True, None)
    assert got.created_at == got.updated_at == T0


async def test_key_is_blog_kind_item_and_sink(store: Store) -> None:
    b = await blog(store)
    other = await blog(store, "other")
    await store.put_sink_item(update(b.id, remote_id="42", live=True), T0)
    assert await store.get_sink_item(b.id, "linkback", NOTE, "wordpress") is None
    assert await store.get_sink_item(b.id, "comment", NOTE, "pingback") is None
    assert await store.get_sink_item(other.id, "comment", NOTE, "wordpress") is None


async def test_failure_keeps_remote_id_and_liveness(store: Store) -> None:
    b = await blog(store)
    await store.put_sink_item(update(b.id, remote_id="42", live=True), T0)
    later = T0 + timedelta(minutes=5)
    failed = await store.put_sink_item(
        update(b.id, state="failed", error="403 rest_cannot_edit"), later
    )
    assert (failed.remote_id, failed.live, failed.state) == ("42", True, "failed")
    assert failed.last_error == "403 rest_cannot_edit"
    assert (failed.created_at, failed.updated_at) == (T0, later)


async def test_success_clears_error_and_sets_liveness(store: Store) -> None:
    b = await blog(store)
    await store.put_sink_item(update(b.id, state="failed", error="timeout"), T0)
    first = await store.get_sink_item(b.id, "comment", NOTE, "wordpress")
    assert first is not None and first.live is False and first.remote_id is None
    await store.put_sink_item(update(b.id, remote_id="7", live=True), T0 + timedelta(seconds=1))
    withdrawn = await store.put_sink_item(
        update(b.id, state="withdrawn", live=False), T0 + timedelta(seconds=2)
    )
    assert (withdrawn.state, withdrawn.live, withdrawn.remote_id) == ("withdrawn", False, "7")
    assert withdrawn.last_error is None


async def test_list_by_state_newest_first_and_per_blog(store: Store) -> None:
    b = await blog(store)
    other = await blog(store, "other")
    await store.put_sink_item(update(b.id, state="failed", error="a"), T0)
    await store.put_sink_item(
        update(b.id, kind="linkback", item_id=LIKE, sink="pingback", state="failed", error="b"),
        T0 + timedelta(seconds=1),
    )
    await store.put_sink_item(
        update(other.id, state="failed", error="c"), T0 + timedelta(seconds=2)
    )
    await store.put_sink_item(
        update(b.id, item_id="https://x.example/ok", live=True), T0 + timedelta(seconds=3)
    )
    assert [i.last_error for i in await store.list_sink_items()] == ["c", "b", "a"]
    assert [i.last_error for i in await store.list_sink_items(b.id)] == ["b", "a"]
    assert [i.last_error for i in await store.list_sink_items(limit=1)] == ["c"]
    published = await store.list_sink_items(states=("published",))
    assert [i.item_id for i in published] == ["https://x.example/ok"]
    assert await store.list_sink_items(states=()) == []


async def test_count_since_is_per_blog_and_kind(store: Store) -> None:
    b = await blog(store)
    other = await blog(store, "other")
    for n in range(3):
        await store.put_sink_item(
            update(b.id, kind="linkback", item_id=f"{LIKE}{n}", sink="pingback"),
            T0 + timedelta(seconds=20 * n),
        )
    await store.put_sink_item(update(b.id), T0 + timedelta(seconds=50))
    await store.put_sink_item(
        update(other.id, kind="linkback", sink="pingback"), T0 + timedelta(seconds=50)
    )
    assert await store.count_sink_items_since(b.id, "linkback", T0) == 3
    assert await store.count_sink_items_since(b.id, "linkback", T0 + timedelta(seconds=20)) == 2
    assert await store.count_sink_items_since(b.id, "comment", T0) == 1
    assert await store.count_sink_items_since(b.id, "linkback", T0 + timedelta(minutes=2)) == 0


async def test_items_go_with_their_blog(store: Store) -> None:
    b = await blog(store)
    await store.put_sink_item(update(b.id, remote_id="1", live=True), T0)
    await store.remove_blog("talk")
    assert await store.list_sink_items(states=("published",)) == []


async def test_unknown_blog_is_refused(store: Store) -> None:
    with pytest.raises(StoreError):
        await store.put_sink_item(update(9999), T0)


def test_copy_knows_the_table() -> None:
    table = next(t for t in TABLES if t.name == "sink_items")
    assert table.key == ("blog_id", "kind", "item_id", "sink")
    assert "live" in table.bools and "updated_at" in table.times
