"""ActivityStreams ``OrderedCollection`` documents and their pages (outbox, followers, featured).

A collection document names its size and its first (and optionally last) page; pages are
numbered from 1 at ``{collection}?page={n}`` and list their items in order. Like the objects,
these are built without ``@context`` (the web layer adds it with
:func:`bridge.activitypub.jsonld.with_context`); items embedded in a page lose any
``@context`` of their own, since a recorded activity is a top-level document with one.
"""

from __future__ import annotations

from typing import Any

from bridge.activitypub.jsonld import without_context


def ordered_collection(
    collection_id: str, total: int, *, first: str | None, last: str | None = None
) -> dict[str, Any]:
    """The collection document: ``totalItems`` and links to its pages.

    Pass ``first=page_url(collection_id, 1)`` when the collection has items, ``None`` when
    it is empty (an empty collection has no pages to walk).
    """
    if total < 0:
        raise ValueError(f"a collection cannot hold {total} items")
    collection: dict[str, Any] = {
        "id": collection_id,
        "type": "OrderedCollection",
        "totalItems": total,
    }
    if first is not None:
        collection["first"] = first
    if last is not None:
        collection["last"] = last
    return collection


def ordered_collection_page(
    page_id: str,
    collection_id: str,
    items: list[Any],
    *,
    next_id: str | None,
    prev_id: str | None,
    start_index: int | None = None,
) -> dict[str, Any]:
    """One page: its ``orderedItems`` (ids or embedded documents) and its neighbours.

    ``start_index`` is the 0-based position of the first item in the whole collection.
    """
    page: dict[str, Any] = {
        "id": page_id,
        "type": "OrderedCollectionPage",
        "partOf": collection_id,
    }
    if start_index is not None:
        page["startIndex"] = start_index
    if next_id is not None:
        page["next"] = next_id
    if prev_id is not None:
        page["prev"] = prev_id
    page["orderedItems"] = [
        without_context(item) if isinstance(item, dict) else item for item in items
    ]
    return page


def page_url(collection_id: str, page: int) -> str:
    """The URL of page ``page`` (1-based) of a collection."""
    if page < 1:
        raise ValueError(f"pages are numbered from 1, not {page}")
    return f"{collection_id}?page={page}"


def page_count(total: int, page_size: int) -> int:
    """How many pages ``total`` items fill (0 for an empty collection)."""
    _check_sizes(total, page_size)
    return -(-total // page_size)


def page_links(
    collection_id: str, page: int, total: int, page_size: int
) -> tuple[str | None, str | None]:
    """``(next, prev)`` of page ``page``: ``None`` where there is no such page.

    ``next`` exists while items remain after this page; ``prev`` for every page but the
    first (a page past the end, served empty, still links back one page).
    """
    if page < 1:
        raise ValueError(f"pages are numbered from 1, not {page}")
    _check_sizes(total, page_size)
    next_id = page_url(collection_id, page + 1) if page * page_size < total else None
    prev_id = page_url(collection_id, page - 1) if page > 1 else None
    return next_id, prev_id


def page_offset(page: int, page_size: int) -> int:
    """The 0-based index of the first item on page ``page``."""
    if page < 1:
        raise ValueError(f"pages are numbered from 1, not {page}")
    _check_sizes(0, page_size)
    return (page - 1) * page_size


def _check_sizes(total: int, page_size: int) -> None:
    if total < 0:
        raise ValueError(f"a collection cannot hold {total} items")
    if page_size < 1:
        raise ValueError(f"a page must hold at least one item, not {page_size}")
