"""OrderedCollection documents and their pages: links, sizes, and walking them end to end."""

from __future__ import annotations

from typing import Any

import pytest

from bridge.activitypub.collections import (
    ordered_collection,
    ordered_collection_page,
    page_count,
    page_links,
    page_offset,
    page_url,
)
from bridge.activitypub.jsonld import AS_CONTEXT

OUTBOX = "https://bridge.example/users/talkabout/outbox"
PAGE_SIZE = 20


def serve_page(items: list[str], page: int, page_size: int = PAGE_SIZE) -> dict[str, Any]:
    """What the web layer does for ``?page=n``, on a plain list instead of the store."""
    offset = page_offset(page, page_size)
    next_id, prev_id = page_links(OUTBOX, page, len(items), page_size)
    return ordered_collection_page(
        page_url(OUTBOX, page),
        OUTBOX,
        items[offset : offset + page_size],
        next_id=next_id,
        prev_id=prev_id,
        start_index=offset,
    )


def walk(items: list[str], page_size: int = PAGE_SIZE) -> tuple[list[str], int]:
    """Follow ``first`` and ``next`` like a remote server: the items seen and pages fetched."""
    total = len(items)
    collection = ordered_collection(
        OUTBOX,
        total,
        first=page_url(OUTBOX, 1) if total else None,
        last=page_url(OUTBOX, page_count(total, page_size)) if total else None,
    )
    assert collection["totalItems"] == total
    seen: list[str] = []
    fetched = 0
    link = collection.get("first")
    while link is not None:
        page = serve_page(items, int(link.rsplit("=", 1)[1]), page_size)
        fetched += 1
        assert page["partOf"] == OUTBOX
        seen.extend(page["orderedItems"])
        link = page.get("next")
    return seen, fetched


def test_empty_collection_has_no_pages() -> None:
    collection = ordered_collection(OUTBOX, 0, first=None)
    assert collection == {"id": OUTBOX, "type": "OrderedCollection", "totalItems": 0}
    assert page_count(0, PAGE_SIZE) == 0
    assert page_links(OUTBOX, 1, 0, PAGE_SIZE) == (None, None)
    assert walk([]) == ([], 0)


def test_one_item_is_one_page() -> None:
    assert page_count(1, PAGE_SIZE) == 1
    assert page_links(OUTBOX, 1, 1, PAGE_SIZE) == (None, None)
    collection = ordered_collection(OUTBOX, 1, first=page_url(OUTBOX, 1))
    assert collection["first"] == f"{OUTBOX}?page=1"
    assert "last" not in collection
    page = serve_page(["a"], 1)
    assert page == {
        "id": f"{OUTBOX}?page=1",
        "type": "OrderedCollectionPage",
        "partOf": OUTBOX,
        "startIndex": 0,
        "orderedItems": ["a"],
    }


def test_exactly_one_full_page_has_no_next() -> None:
    items = [f"item{i}" for i in range(PAGE_SIZE)]
    assert page_count(PAGE_SIZE, PAGE_SIZE) == 1
    page = serve_page(items, 1)
    assert len(page["orderedItems"]) == PAGE_SIZE
    assert "next" not in page and "prev" not in page


def test_one_more_than_a_page_makes_two() -> None:
    items = [f"item{i}" for i in range(PAGE_SIZE + 1)]
    assert page_count(PAGE_SIZE + 1, PAGE_SIZE) == 2
    first = serve_page(items, 1)
    assert first["next"] == f"{OUTBOX}?page=2"
    assert "prev" not in first
    second = serve_page(items, 2)
    assert second["orderedItems"] == [f"item{PAGE_SIZE}"]
    assert second["startIndex"] == PAGE_SIZE
    assert second["prev"] == f"{OUTBOX}?page=1"
    assert "next" not in second


@pytest.mark.parametrize(
    ("count", "pages"), [(0, 0), (1, 1), (19, 1), (20, 1), (21, 2), (40, 2), (45, 3)]
)
def test_walking_every_page_yields_every_item_once_in_order(count: int, pages: int) -> None:
    items = [f"https://bridge.example/activities/{i}" for i in range(count)]
    seen, fetched = walk(items)
    assert seen == items
    assert fetched == pages


def test_page_past_the_end_is_empty_and_links_back() -> None:
    page = serve_page(["a", "b"], 3, page_size=1)
    assert page["orderedItems"] == []
    assert "next" not in page
    assert page["prev"] == f"{OUTBOX}?page=2"


def test_embedded_documents_lose_their_context() -> None:
    create = {"@context": AS_CONTEXT, "id": "https://bridge.example/a/1", "type": "Create"}
    page = ordered_collection_page(
        page_url(OUTBOX, 1), OUTBOX, [create, "https://x.example/2"], next_id=None, prev_id=None
    )
    assert page["orderedItems"] == [
        {"id": "https://bridge.example/a/1", "type": "Create"},
        "https://x.example/2",
    ]
    assert "@context" in create  # the recorded payload itself is not touched
    assert "@context" not in page and "startIndex" not in page


def test_collection_with_last_page() -> None:
    collection = ordered_collection(
        OUTBOX, 45, first=page_url(OUTBOX, 1), last=page_url(OUTBOX, page_count(45, 20))
    )
    assert collection["last"] == f"{OUTBOX}?page=3"


@pytest.mark.parametrize("call", [
    lambda: page_url(OUTBOX, 0),
    lambda: page_links(OUTBOX, 0, 5, 20),
    lambda: page_links(OUTBOX, 1, -1, 20),
    lambda: page_count(5, 0),
    lambda: page_offset(0, 20),
    lambda: page_offset(1, 0),
    lambda: ordered_collection(OUTBOX, -1, first=None),
])  # fmt: skip
def test_invalid_numbers_are_refused(call: Any) -> None:
    with pytest.raises(ValueError):
        call()


def test_page_offset() -> None:
    assert page_offset(1, 20) == 0
    assert page_offset(3, 20) == 40
