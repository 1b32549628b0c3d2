"""Store contract, feed polling leases: ``claim_due_blogs`` and ``release_blog_lease``.

Pollers in several processes share the blogs by leasing them: a claimed blog is nobody
else's until it is released or its lease runs out (its poller died).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from bridge.store import open_store
from bridge.store.base import Blog, FeedState, NewBlog, Store
from bridge.store.records import FeedStatus
from tests.contract.conftest import T0


@pytest.fixture
async def other(store: Store, store_url: str) -> AsyncIterator[Store]:
    """A second, independent instance on the database of ``store`` (migrated by it)."""
    second = await open_store(store_url)
    try:
        yield second
    finally:
        await second.close()


async def _blog(
    store: Store, handle: str, next_poll_in: float | None = None, status: FeedStatus = "new"
) -> Blog:
    blog = await store.add_blog(NewBlog(handle, f"https://{handle}.example/feed"), T0)
    if next_poll_in is not None or status != "new":
        next_poll = None if next_poll_in is None else T0 + timedelta(seconds=next_poll_in)
        await store.update_feed_state(blog.id, FeedState(status=status, next_poll_at=next_poll))
    fresh = await store.get_blog_by_id(blog.id)
    assert fresh is not None
    return fresh


async def test_claim_leases_due_blogs_in_due_order(store: Store) -> None:
    await _blog(store, "later", next_poll_in=60)
    await _blog(store, "overdue", next_poll_in=-600)
    await _blog(store, "fresh")  # never polled
    await _blog(store, "due", next_poll_in=-1)
    await _blog(store, "gone", next_poll_in=-900, status="gone")
    claimed = await store.claim_due_blogs(T0, 10, 60, "w1")
    assert [b.handle for b in claimed] == ["fresh", "overdue", "due"]
    # A claimed blog is the same record the store hands out elsewhere.
    fresh = await store.get_blog("fresh")
    assert claimed[0] == fresh


async def test_a_short_claim_takes_the_never_polled_then_the_most_overdue(store: Store) -> None:
    # The claim walks the never-polled and the due blogs separately (index order, stopping at
    # the limit): the order across the two walks is what this pins down.
    await _blog(store, "due", next_poll_in=-1)
    await _blog(store, "fresh1")
    await _blog(store, "overdue", next_poll_in=-600)
    await _blog(store, "fresh2")
    await _blog(store, "later", next_poll_in=60)
    first = await store.claim_due_blogs(T0, 1, 60, "w1")
    second = await store.claim_due_blogs(T0, 2, 60, "w1")
    third = await store.claim_due_blogs(T0, 2, 60, "w1")
    assert {first[0].handle, second[0].handle} == {"fresh1", "fresh2"}
    assert [b.handle for b in second[1:] + third] == ["overdue", "due"]
    assert await store.claim_due_blogs(T0, 5, 60, "w1") == []


async def test_claim_respects_the_limit_and_skips_leased_blogs(store: Store) -> None:
    for n in range(5):
        await _blog(store, f"b{n}", next_poll_in=-n)
    first = await store.claim_due_blogs(T0, 2, 60, "w1")
    second = await store.claim_due_blogs(T0, 10, 60, "w2")
    assert len(first) == 2 and len(second) == 3
    assert {b.id for b in first}.isdisjoint(b.id for b in second)
    assert await store.claim_due_blogs(T0 + timedelta(seconds=59), 10, 60, "w3") == []


async def test_expired_leases_are_taken_over(store: Store, other: Store) -> None:
    blog = await _blog(store, "orphan", next_poll_in=-5)
    assert [b.id for b in await store.claim_due_blogs(T0, 10, 30, "dead")] == [blog.id]
    assert await other.claim_due_blogs(T0 + timedelta(seconds=29), 10, 30, "w2") == []
    taken = await other.claim_due_blogs(T0 + timedelta(seconds=30), 10, 30, "w2")
    assert [b.id for b in taken] == [blog.id]
    # The dead poller's late release cannot free what is now another's.
    assert await store.release_blog_lease(blog.id, "dead") is False
    assert await store.claim_due_blogs(T0 + timedelta(seconds=31), 10, 30, "w3") == []
    assert await other.release_blog_lease(blog.id, "w2") is True


async def test_release_frees_the_blog_for_the_next_claim(store: Store) -> None:
    blog = await _blog(store, "polled", next_poll_in=-5)
    assert len(await store.claim_due_blogs(T0, 10, 300, "w1")) == 1
    assert await store.release_blog_lease(blog.id, "w2") is False, "not w2's lease"
    assert await store.claim_due_blogs(T0, 10, 300, "w2") == []
    assert await store.release_blog_lease(blog.id, "w1") is True
    assert await store.release_blog_lease(blog.id, "w1") is False, "released already"
    assert [b.id for b in await store.claim_due_blogs(T0, 10, 300, "w2")] == [blog.id]


async def test_a_polled_blog_is_not_due_after_release(store: Store) -> None:
    blog = await _blog(store, "done", next_poll_in=-5)
    [claimed] = await store.claim_due_blogs(T0, 10, 300, "w1")
    polled = FeedState(status="ok", last_polled_at=T0, next_poll_at=T0 + timedelta(minutes=15))
    await store.update_feed_state(claimed.id, polled)
    assert await store.release_blog_lease(blog.id, "w1")
    assert await store.claim_due_blogs(T0 + timedelta(minutes=14), 10, 300, "w2") == []
    again = await store.claim_due_blogs(T0 + timedelta(minutes=15), 10, 300, "w2")
    assert [b.id for b in again] == [blog.id]
    assert again[0].feed == polled


async def test_lease_state_survives_feed_state_updates(store: Store) -> None:
    blog = await _blog(store, "busy", next_poll_in=-5)
    await store.claim_due_blogs(T0, 10, 300, "w1")
    # The poll stores its outcome (not due for a while) before releasing: still leased.
    await store.update_feed_state(blog.id, FeedState(status="failing", next_poll_at=T0))
    assert await store.claim_due_blogs(T0, 10, 300, "w2") == []
    assert await store.release_blog_lease(blog.id, "w1")


async def test_removed_blogs_release_nothing(store: Store) -> None:
    blog = await _blog(store, "bye", next_poll_in=-5)
    await store.claim_due_blogs(T0, 10, 300, "w1")
    await store.remove_blog("bye")
    assert await store.release_blog_lease(blog.id, "w1") is False


async def _drain(store: Store, worker: str, claimed: list[tuple[str, int]]) -> None:
    while batch := await store.claim_due_blogs(T0, 3, 60, worker):
        claimed.extend((worker, blog.id) for blog in batch)
        # Let the other claimers in between, as real pollers would while fetching.
        await asyncio.sleep(0)


async def test_concurrent_claims_never_lease_a_blog_twice(store: Store, other: Store) -> None:
    for n in range(60):
        await _blog(store, f"c{n}", next_poll_in=None if n % 3 else -n)
    claimed: list[tuple[str, int]] = []
    await asyncio.gather(
        *(_drain(store, f"a{w}", claimed) for w in range(4)),
        *(_drain(other, f"b{w}", claimed) for w in range(4)),
    )
    twice = [blog_id for blog_id, n in Counter(b for _, b in claimed).items() if n > 1]
    assert twice == [], "no blog may be leased by two pollers"
    # Which instance wins how many is up to the scheduler; that none is claimed twice is not.
    assert len(claimed) == 60


async def test_expired_leases_go_to_exactly_one_claimer(store: Store, other: Store) -> None:
    for n in range(20):
        await _blog(store, f"e{n}", next_poll_in=-1)
    assert len(await store.claim_due_blogs(T0, 20, 30, "crashed")) == 20
    later = T0 + timedelta(seconds=31)
    first, second = await asyncio.gather(
        store.claim_due_blogs(later, 20, 30, "w1"), other.claim_due_blogs(later, 20, 30, "w2")
    )
    ids = [b.id for b in first] + [b.id for b in second]
    assert sorted(ids) == sorted(set(ids)) and len(ids) == 20
