"""Walking threads up and down with a fetch over a dictionary of documents."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from bridge.backfeed.threads import WalkLimits, first_id, walk_down, walk_up
from bridge.errors import RemoteHTTPError

POST = "https://bridge.example/users/talkabout/posts/abc"


class Web:
    """Documents by URL; counts fetches; 404 for the rest."""

    def __init__(self, *documents: dict[str, Any]) -> None:
        self.documents = {doc["id"]: doc for doc in documents}
        self.fetched: list[str] = []

    async def fetch(self, url: str) -> Mapping[str, Any]:
        self.fetched.append(url)
        if url not in self.documents:
            raise RemoteHTTPError(url, 404)
        return self.documents[url]


def note(note_id: str, parent: str | None, **extra: Any) -> dict[str, Any]:
    return {"id": note_id, "type": "Note", "inReplyTo": parent, "content": note_id, **extra}


async def known_is(*ids: str) -> Any:
    async def known(url: str) -> bool:
        return url in ids

    return known


async def test_walk_up_returns_the_chain_nearest_the_anchor_first() -> None:
    web = Web(note("https://b/1", "https://a/1"), note("https://a/1", POST))
    chain = await walk_up("https://b/1", web.fetch, await known_is(POST))
    assert chain.anchor == POST
    assert [doc["id"] for doc in chain.notes] == ["https://a/1", "https://b/1"]


async def test_walk_up_stops_at_a_known_comment_without_fetching_it() -> None:
    web = Web(note("https://b/1", "https://a/1"))
    chain = await walk_up("https://b/1", web.fetch, await known_is("https://a/1"))
    assert (chain.anchor, web.fetched) == ("https://a/1", ["https://b/1"])


async def test_walk_up_is_cycle_safe() -> None:
    web = Web(note("https://x/1", "https://y/1"), note("https://y/1", "https://x/1"))
    chain = await walk_up("https://x/1", web.fetch, await known_is(POST))
    assert chain.anchor is None and "loops" in chain.reason
    assert web.fetched == ["https://x/1", "https://y/1"]


async def test_walk_up_is_bounded_by_depth() -> None:
    docs = [note(f"https://n/{i}", f"https://n/{i + 1}") for i in range(50)]
    web = Web(*docs)
    chain = await walk_up("https://n/0", web.fetch, await known_is(POST), WalkLimits(max_depth=5))
    assert chain.anchor is None and len(web.fetched) == 5


async def test_walk_up_ends_at_a_top_that_answers_nothing_or_is_no_note() -> None:
    web = Web(note("https://a/1", None), {"id": "https://p/1", "type": "Person"})
    assert (await walk_up("https://a/1", web.fetch, await known_is(POST))).anchor is None
    assert "no note" in (await walk_up("https://p/1", web.fetch, await known_is(POST))).reason


async def test_walk_up_lets_fetch_errors_through() -> None:
    with pytest.raises(RemoteHTTPError):
        await walk_up("https://gone/1", Web().fetch, await known_is(POST))


async def test_walk_down_follows_paged_replies_breadth_first() -> None:
    a = note("https://a/1", POST, replies="https://a/1/replies")
    web = Web(
        {
            "id": "https://a/1/replies",
            "type": "OrderedCollection",
            "first": "https://a/1/replies?page=1",
        },
        {
            "id": "https://a/1/replies?page=1",
            "type": "OrderedCollectionPage",
            "orderedItems": ["https://b/1"],
            "next": "https://a/1/replies?page=2",
        },
        {
            "id": "https://a/1/replies?page=2",
            "type": "OrderedCollectionPage",
            "orderedItems": [note("https://a/2", "https://a/1")],
        },
        note(
            "https://b/1", "https://a/1", replies={"type": "Collection", "items": ["https://c/1"]}
        ),
        note("https://c/1", "https://b/1"),
    )
    walk = await walk_down([a], web.fetch)
    assert [first_id(doc) for doc in walk.notes] == ["https://b/1", "https://a/2", "https://c/1"]
    assert walk.problems == []


async def test_walk_down_fetches_items_embedded_by_another_origin() -> None:
    a = note("https://a/1", POST, replies="https://a/1/replies")
    forged = note("https://b/1", "https://a/1", content="forged")
    web = Web(
        {"id": "https://a/1/replies", "type": "Collection", "items": [forged]},
        note("https://b/1", "https://a/1", content="real"),
    )
    walk = await walk_down([a], web.fetch)
    assert [doc["content"] for doc in walk.notes] == ["real"]


async def test_walk_down_reads_fep_7888_context_collections_and_unwraps_creates() -> None:
    reply = note("https://ctx/2", "https://ctx/1")
    web = Web(
        {
            "id": "https://ctx/c",
            "type": "OrderedCollection",
            "orderedItems": [{"type": "Create", "object": reply}, "https://ctx/1"],
        },
        note("https://ctx/1", POST),
    )
    walk = await walk_down([], web.fetch, contexts=["https://ctx/c", "tag:x,2024:1"])
    assert [first_id(doc) for doc in walk.notes] == ["https://ctx/2", "https://ctx/1"]


async def test_walk_down_records_unreadable_sources_and_goes_on() -> None:
    a = note("https://a/1", POST, replies="https://a/1/replies")
    b = note("https://b/1", POST, replies="https://b/1/replies")
    web = Web(
        {"id": "https://b/1/replies", "type": "Collection", "items": ["https://c/1"]},
        note("https://c/1", "https://b/1"),
    )
    walk = await walk_down([a, b], web.fetch)
    assert [first_id(doc) for doc in walk.notes] == ["https://c/1"]
    assert len(walk.problems) == 1 and "https://a/1/replies" in walk.problems[0]


async def test_walk_down_is_bounded_and_cycle_safe() -> None:
    looping = {
        "id": "https://a/1/replies",
        "type": "OrderedCollectionPage",
        "orderedItems": ["https://a/1"],
        "next": "https://a/1/replies",
    }
    a = note("https://a/1", POST, replies="https://a/1/replies")
    web = Web(looping, a)
    walk = await walk_down([a], web.fetch, WalkLimits(max_items=10))
    assert walk.notes == []
    many = [note(f"https://m/{i}", POST) for i in range(30)]
    listing = {"id": "https://l", "type": "Collection", "items": [d["id"] for d in many]}
    web = Web(listing, *many)
    walk = await walk_down([], web.fetch, WalkLimits(max_items=5), contexts=["https://l"])
    assert len(web.fetched) == 5 and len(walk.notes) == 4
